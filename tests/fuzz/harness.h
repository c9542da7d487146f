/* tests/fuzz/harness.h - what the libFuzzer harnesses share: the real proxy started in-process on
 * a topology, and one client exchange with it over loopback. */
#ifndef TESTS_FUZZ_HARNESS_H
#define TESTS_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Starts one proxy worker on <topology_json> (the store's import format), with the GeoLite2 City
 * database, a temporary SQLite store, 127.0.0.0/8 trusted and the <n_settings> key/value pairs of
 * <settings> (proxy_config_set() keys) over the defaults. Aborts on any failure: a harness that
 * cannot start has nothing to fuzz. Everything stays up until the process exits. */
struct proxy *fuzz_proxy_start(const char *topology_json, const char *const settings[][2],
                               size_t n_settings);

/* What the check of a client's answers needs to know of each request it sent, in order. */
struct fuzz_asked {
    bool head;   /* a HEAD: its final response has no body, whatever its framing says */
    bool http10; /* an HTTP/1.0 request: no interim response, no chunked coding for it */
};

/* Sends <data> to 127.0.0.1:<port> on a fresh connection (which closes with a reset) and reads
 * until the proxy closes or 2 s pass without a byte, into <got> (<got_cap> bytes at most, what
 * comes after is dropped). It half-closes once <half_close_after> final responses to the
 * <n_asked> requests <asked> have come whole (0: at once; -1: never): the proxy takes the end of
 * a keep-alive connection while a request is in flight for a client gone. Returns the bytes
 * kept. */
size_t fuzz_client_exchange(int port, const uint8_t *data, size_t size,
                            const struct fuzz_asked *asked, size_t n_asked, long half_close_after,
                            uint8_t *got, size_t got_cap);

/* The header being parsed, as llhttp hands it over in pieces, for the checks of what the proxy
 * sends: name and value cut at the buffers' sizes (what the checks compare is short). */
struct fuzz_header {
    char name[256], value[8192];
    size_t name_len, value_len;
    bool in_value;
};

/* For llhttp's on_header_field and on_header_value: a name piece after a value starts the next
 * header. */
void fuzz_header_field(struct fuzz_header *h, const char *at, size_t len);
void fuzz_header_value(struct fuzz_header *h, const char *at, size_t len);
/* For on_header_value_complete, before the caller's own checks: drops the value's trailing
 * whitespace (not part of it, RFC 9112 5) and returns a breach no proxy output may have (a
 * hop-by-hop name: Keep-Alive, TE, Trailer, Proxy-*), or NULL. */
const char *fuzz_header_complete(struct fuzz_header *h);
/* For a trailer field (one after its message's head) once complete: a breach no proxy output may
 * have (a field that frames, routes, forwards or is hop-by-hop: RFC 9110 6.5.1), or NULL. */
const char *fuzz_trailer_check(const struct fuzz_header *h);
/* The name, or the whole value, in any case. */
bool fuzz_header_is(const struct fuzz_header *h, const char *name);
bool fuzz_value_is(const struct fuzz_header *h, const char *value);
/* Before the next header or message. */
void fuzz_header_reset(struct fuzz_header *h);

/* A message's framing headers, counted as each header completes (zeroed per message). */
struct fuzz_framing {
    int n_content_length, n_transfer_encoding;
    bool chunked_only; /* the last Transfer-Encoding says "chunked" and nothing else */
};

/* Counts <h> if it is Content-Length or Transfer-Encoding. */
void fuzz_framing_note(struct fuzz_framing *f, const struct fuzz_header *h);
/* Whether the framing is one a proxy writes: Content-Length or Transfer-Encoding (only
 * "chunked"), never both, never repeated. */
bool fuzz_framing_ok(const struct fuzz_framing *f);

/* Parses <got>, what a client got back for the <n_asked> requests of <asked>, as HTTP/1.1
 * responses (llhttp, strict; the last body may end early, as when the origin cuts it; the bytes
 * after a 101 are a tunnel's) and aborts on the first breach of what the proxy promises a client:
 * at most one final response per request, nothing after one that says Connection: close, no
 * hop-by-hop header (but a 101's Upgrade and Connection: upgrade), no control character in a
 * reason, at most one Via, Content-Length or Transfer-Encoding (only "chunked"), never both,
 * never repeated, no trailer field that fuzz_trailer_check() refuses, and neither an interim
 * response nor chunked coding to an HTTP/1.0 request. */
void fuzz_check_responses(const uint8_t *got, size_t len, const struct fuzz_asked *asked,
                          size_t n_asked);

/* Reports what the proxy sent (to <whom>) that breaks a promise, with the bytes it came in, and
 * aborts: the fuzzer keeps the input. */
_Noreturn void fuzz_fail(const char *whom, const char *what, const void *data, size_t len);

#endif

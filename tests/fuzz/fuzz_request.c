/* tests/fuzz/fuzz_request.c - libFuzzer harness over the whole request path of the edge proxy.
 *
 * The real proxy runs in this process (one worker, the GeoLite2 City database, a temporary SQLite
 * store) in front of a strict origin: threads here that parse every request the proxy forwards
 * with llhttp (no lenient flag) and check what the proxy promises of it, aborting on the first
 * breach: one Host, one X-Forwarded-For ending with an address, one X-Forwarded-Proto, one
 * X-Forwarded-Host (none when Host is empty: HTTP/1.0 naming none), one Via; no hop-by-hop header
 * (Connection and Upgrade only for a WebSocket upgrade); Content-Length or Transfer-Encoding (only
 * "chunked"), never both, never repeated; no Expect (the proxy answers 100-continue itself). The
 * origin answers each request with a short 200 (101 for an upgrade, then closes).
 *
 * Each input is sent as-is by a client on a fresh loopback connection, which reads the answers,
 * half-closes once the requests that came whole (as llhttp reads the input) are answered, and
 * reads on until the proxy is done with it; what it got must pass fuzz_check_responses()
 * (harness.h): no more answers than requests, well formed, framed as a proxy frames them, no
 * hop-by-hop headers. An input that starts like a PROXY protocol header
 * ("PROX" for version 1, "\r\n\r\n" for the start of version 2's signature) goes to a listener
 * that expects one, so the header parser is fuzzed too. Whatever the bytes, the proxy must
 * answer or close without a crash, a sanitizer report or a hang (the read is bounded by a 2 s
 * timeout, and a hang shows as a libFuzzer timeout), and whatever it forwards must pass the
 * origin's checks. Built and run by `make fuzz` (long) and `make fuzz-smoke` (a short run, part
 * of `make check`). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include "proxy/proxy.h"
#include "tests/fuzz/harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORIGINS 3

static int plain_port, proxy_protocol_port;

/* ---- the strict origin ---- */

enum counted {
    C_HOST,
    C_XFF,
    C_XF_PROTO,
    C_XF_HOST,
    C_VIA,
    C_EXPECT,
    C_CONNECTION,
    C_UPGRADE,
    C_REQUEST_ID
};

struct origin_conn {
    int fd;
    llhttp_t parser;
    struct fuzz_header hd; /* the one being parsed */
    int count[C_REQUEST_ID + 1];
    struct fuzz_framing framing;
    bool xff_ends_with_address, connection_upgrade_only, upgrade_websocket, request_id_fits,
        host_empty;
    bool in_trailers;   /* past the head: fields now are trailers */
    const char *breach; /* the first broken promise of this request */
};

static int on_message_begin(llhttp_t *p)
{
    struct origin_conn *o = p->data;
    memset(o->count, 0, sizeof(o->count));
    o->framing = (struct fuzz_framing){0};
    fuzz_header_reset(&o->hd);
    o->breach = NULL;
    o->in_trailers = false;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct origin_conn *o = p->data;
    fuzz_header_field(&o->hd, at, len);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct origin_conn *o = p->data;
    fuzz_header_value(&o->hd, at, len);
    return 0;
}

/* Whether the last item of a comma-separated list is an IP address: the peer, as the proxy
 * appends it (the socket's, or the PROXY protocol header's). */
static bool ends_with_address(const char *list, size_t len)
{
    size_t start = len;
    while (start > 0 && list[start - 1] != ',' && list[start - 1] != ' ')
        start--;
    char item[64];
    unsigned char addr[16];
    if (len - start >= sizeof(item))
        return false;
    memcpy(item, list + start, len - start);
    item[len - start] = '\0';
    return inet_pton(AF_INET, item, addr) == 1 || inet_pton(AF_INET6, item, addr) == 1;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct origin_conn *o = p->data;
    const struct fuzz_header *hd = &o->hd;
    const char *breach = fuzz_header_complete(&o->hd);
    if (breach == NULL && o->in_trailers)
        breach = fuzz_trailer_check(hd);
    if (breach == NULL && o->in_trailers && fuzz_header_is(hd, "X-Request-ID"))
        breach = "a request ID in a trailer";
    if (breach)
        o->breach = breach;
    fuzz_framing_note(&o->framing, hd);
    if (fuzz_header_is(hd, "Host")) {
        o->count[C_HOST]++;
        o->host_empty = hd->value_len == 0;
    } else if (fuzz_header_is(hd, "X-Forwarded-For")) {
        o->count[C_XFF]++;
        o->xff_ends_with_address = ends_with_address(hd->value, hd->value_len);
    } else if (fuzz_header_is(hd, "X-Forwarded-Proto"))
        o->count[C_XF_PROTO]++;
    else if (fuzz_header_is(hd, "X-Forwarded-Host"))
        o->count[C_XF_HOST]++;
    else if (fuzz_header_is(hd, "Via"))
        o->count[C_VIA]++;
    else if (fuzz_header_is(hd, "Expect")) {
        o->count[C_EXPECT]++;
    } else if (fuzz_header_is(hd, "Connection")) {
        o->count[C_CONNECTION]++;
        o->connection_upgrade_only = fuzz_value_is(hd, "upgrade");
    } else if (fuzz_header_is(hd, "Upgrade")) {
        o->count[C_UPGRADE]++;
        o->upgrade_websocket = fuzz_value_is(hd, "websocket");
    } else if (fuzz_header_is(hd, "X-Request-ID")) {
        o->count[C_REQUEST_ID]++;
        o->request_id_fits = hd->value_len > 0 && hd->value_len <= 128;
        for (size_t i = 0; i < hd->value_len; i++)
            o->request_id_fits &= hd->value[i] > ' ' && hd->value[i] < 0x7f;
    }
    fuzz_header_reset(&o->hd);
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct origin_conn *o = p->data;
    const int *n = o->count;
    o->in_trailers = true;
    if (n[C_HOST] != 1)
        o->breach = "not one Host";
    else if (n[C_XFF] != 1 || !o->xff_ends_with_address)
        o->breach = "not one X-Forwarded-For ending with an address";
    else if (n[C_XF_PROTO] != 1 || n[C_XF_HOST] != !o->host_empty || n[C_VIA] != 1)
        o->breach = "not one X-Forwarded-Proto, X-Forwarded-Host (none for no host) and Via";
    else if (n[C_REQUEST_ID] != 1 || !o->request_id_fits)
        o->breach = "not one request ID of 1 to 128 visible characters";
    else if (!fuzz_framing_ok(&o->framing))
        o->breach = "Content-Length and Transfer-Encoding not as sent by a proxy";
    else if (n[C_CONNECTION] || n[C_UPGRADE]) {
        bool websocket = n[C_CONNECTION] == 1 && o->connection_upgrade_only && n[C_UPGRADE] == 1 &&
                         o->upgrade_websocket;
        if (!websocket)
            o->breach = "Connection or Upgrade forwarded outside a WebSocket upgrade";
    }
    if (o->breach == NULL && n[C_EXPECT]) /* the proxy answers 100-continue itself */
        o->breach = "an Expect forwarded";
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct origin_conn *o = p->data;
    if (o->breach)
        return 0; /* reported by the caller, with the bytes */
    if (llhttp_get_upgrade(p)) {
        static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                        "Connection: Upgrade\r\n\r\n";
        (void)!send(o->fd, switching, sizeof(switching) - 1, MSG_NOSIGNAL);
        return 0;
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    size_t len = sizeof(ok) - 1 - (llhttp_get_method(p) == HTTP_HEAD ? 2 : 0);
    (void)!send(o->fd, ok, len, MSG_NOSIGNAL);
    return 0;
}

static const llhttp_settings_t origin_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* Serves one connection from the proxy until it closes (or a minute passes without a byte). */
static void *origin_conn_main(void *arg)
{
    struct origin_conn *o = arg;
    struct timeval tv = {60, 0};
    setsockopt(o->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    llhttp_init(&o->parser, HTTP_REQUEST, &origin_settings);
    o->parser.data = o;
    char buf[65536];
    ssize_t n;
    while ((n = recv(o->fd, buf, sizeof(buf), 0)) > 0) {
        llhttp_errno_t err = llhttp_execute(&o->parser, buf, (size_t)n);
        if (o->breach)
            fuzz_fail("the origin", o->breach, buf, (size_t)n);
        if (err == HPE_PAUSED_UPGRADE)
            break; /* answered 101; the tunnel's bytes are not HTTP */
        if (err != HPE_OK)
            fuzz_fail("the origin", llhttp_get_error_reason(&o->parser), buf, (size_t)n);
    }
    close(o->fd);
    free(o);
    return NULL;
}

static void *origin_main(void *arg)
{
    int listener = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            continue;
        struct origin_conn *o = calloc(1, sizeof(*o));
        pthread_t thread;
        if (o == NULL)
            abort();
        o->fd = fd;
        if (pthread_create(&thread, NULL, origin_conn_main, o) != 0)
            abort();
        pthread_detach(thread);
    }
    return NULL;
}

static int origin_start(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t thread;
    if (listener < 0 || bind(listener, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(listener, 64) != 0 || getsockname(listener, (struct sockaddr *)&sin, &len) != 0 ||
        pthread_create(&thread, NULL, origin_main, (void *)(intptr_t)listener) != 0) {
        perror("fuzz: the origin");
        abort();
    }
    return ntohs(sin.sin_port);
}

/* ---- what the client asked ---- */

/* The requests of an input, as llhttp (strict, like the proxy's) reads them: what the check of
 * the answers needs to know of each. The proxy is stricter (it refuses what llhttp lets
 * through, and heads over its limits) and stops at a request that ends the connection, so it
 * may answer fewer, never more. A HEAD is one from its target on, for both. */
struct asking {
    struct fuzz_asked *asked;
    size_t n, cap;
    size_t n_whole; /* of them, read to their end */
};

static int ask_message_begin(llhttp_t *p)
{
    struct asking *a = p->data;
    if (a->n < a->cap)
        a->asked[a->n++] = (struct fuzz_asked){0};
    return 0;
}

/* The method is known once the target starts, and so is the proxy's answer's want of a body,
 * even if it refuses the rest of the head. */
static int ask_url(llhttp_t *p, const char *at, size_t len)
{
    struct asking *a = p->data;
    (void)at;
    (void)len;
    a->asked[a->n - 1].head = llhttp_get_method(p) == HTTP_HEAD;
    return 0;
}

static int ask_headers_complete(llhttp_t *p)
{
    struct asking *a = p->data;
    struct fuzz_asked *q = &a->asked[a->n - 1];
    q->http10 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0;
    return 0;
}

static int ask_message_complete(llhttp_t *p)
{
    struct asking *a = p->data;
    a->n_whole++;
    return 0;
}

static const llhttp_settings_t ask_settings = {
    .on_message_begin = ask_message_begin,
    .on_url = ask_url,
    .on_headers_complete = ask_headers_complete,
    .on_message_complete = ask_message_complete,
};

/* Where the requests start: after the PROXY protocol header the input starts with, if any
 * (version 1 ends with the first CRLF of its 107 bytes at most; version 2 says its length). */
static size_t proxy_header_len(const uint8_t *data, size_t size)
{
    static const uint8_t v2[12] = "\r\n\r\n\0\r\nQUIT\n";
    if (size >= 16 && memcmp(data, v2, sizeof(v2)) == 0) {
        size_t len = 16 + ((size_t)data[14] << 8 | data[15]);
        return len < size ? len : size;
    }
    if (size >= 5 && memcmp(data, "PROXY", 5) == 0) {
        const uint8_t *crlf = memmem(data, size < 107 ? size : 107, "\r\n", 2);
        return crlf ? (size_t)(crlf + 2 - data) : size;
    }
    return 0;
}

/* Fills <asked> (room for <cap>) with the requests of <data>; returns how many there are, and in
 * <n_whole> how many of them are there whole. An Upgrade the proxy does not tunnel is served as a
 * plain request and parsing goes on, so it goes on here too (a tunnel's bytes taken for requests
 * only loosen the check). */
static size_t requests_asked(const uint8_t *data, size_t size, struct fuzz_asked *asked, size_t cap,
                             size_t *n_whole)
{
    struct asking a = {.asked = asked, .cap = cap};
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &ask_settings);
    parser.data = &a;
    const char *at = (const char *)data, *end = at + size;
    while (at < end && llhttp_execute(&parser, at, (size_t)(end - at)) == HPE_PAUSED_UPGRADE) {
        at = llhttp_get_error_pos(&parser);
        llhttp_resume_after_upgrade(&parser);
    }
    *n_whole = a.n_whole;
    return a.n;
}

/* ---- the harness ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Three regions (Europe, North America, Asia), so that located clients are routed apart. */
    static const struct {
        const char *name;
        double lat, lon;
    } regions[ORIGINS] = {
        {"eu-west", 53.3, -6.3}, {"us-east", 39.0, -77.5}, {"ap-south", 1.3, 103.8}};
    char topology[1024];
    size_t len = (size_t)snprintf(topology, sizeof(topology), "{\"regions\":[");
    for (int i = 0; i < ORIGINS; i++)
        len += (size_t)snprintf(topology + len, sizeof(topology) - len,
                                "%s{\"name\":\"%s\",\"lat\":%g,\"lon\":%g,"
                                "\"origins\":[{\"address\":\"127.0.0.1:%d\"}]}",
                                i ? "," : "", regions[i].name, regions[i].lat, regions[i].lon,
                                origin_start());
    snprintf(topology + len, sizeof(topology) - len, "]}");
    static const char *const settings[][2] = {
        {"listen", "127.0.0.1:0"},
        {"listen-proxy-protocol", "127.0.0.1:0"},
        {"max-body-size", "64k"},
        {"response-header-timeout", "1s"},
        {"request-id-header", "X-Request-ID"},
    };
    struct proxy *proxy =
        fuzz_proxy_start(topology, settings, sizeof(settings) / sizeof(settings[0]));
    plain_port = proxy_listen_port(proxy, 0);
    proxy_protocol_port = proxy_listen_port(proxy, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool proxy_header =
        size >= 4 && (memcmp(data, "PROX", 4) == 0 || memcmp(data, "\r\n\r\n", 4) == 0);
    size_t skip = proxy_header ? proxy_header_len(data, size) : 0, cap = size - skip + 1, n_whole;
    struct fuzz_asked *asked = malloc(cap * sizeof(*asked));
    if (asked == NULL)
        abort();
    size_t n_asked = requests_asked(data + skip, size - skip, asked, cap, &n_whole);
    static uint8_t got[1 << 20];
    size_t got_len = fuzz_client_exchange(proxy_header ? proxy_protocol_port : plain_port, data,
                                          size, asked, n_asked, (long)n_whole, got, sizeof(got));
    fuzz_check_responses(got, got_len, asked, n_asked);
    free(asked);
    return 0;
}

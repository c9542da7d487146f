/* tests/fuzz/fuzz_response.c - libFuzzer harness over the response path of the edge proxy.
 *
 * The real proxy runs in this process (one worker, no health checks, passive ejection off) in
 * front of one origin: a thread here that answers every connection by reading the request head
 * and sending the current input's bytes, then closing. The input's first byte picks the client's
 * request (GET, HEAD, a POST with "Expect: 100-continue", a WebSocket upgrade, an HTTP/1.0 GET),
 * so that bodiless responses, interim responses, tunnels and bodies for a client without chunked
 * coding are reached; the rest is the origin's answer. The
 * client reads until the proxy closes. Whatever the origin says, the proxy must relay it, answer
 * 502/504 or close, without a crash, a sanitizer report or a hang, and what the client gets must
 * parse as HTTP/1.1 responses (llhttp, strict; a body may end early, as when the origin cuts it)
 * with nothing after the last, without hop-by-hop headers (but a 101's Upgrade and Connection:
 * upgrade), with no control character in a reason, at most one Via, and Content-Length or
 * Transfer-Encoding (only "chunked", and never to the HTTP/1.0 client), never both, never
 * repeated; the harness aborts otherwise.
 * Built and run by `make fuzz` and `make fuzz-smoke`, like fuzz_request. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
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

static const char *const requests[] = {
    "GET /r HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "HEAD /r HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ("POST /r HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
     "Connection: close\r\n\r\nbody"),
    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe",
    "GET /r HTTP/1.0\r\n\r\n", /* not kept alive: the client reads until the proxy closes */
};

/* What the origin answers with: the current input, copied, since libFuzzer's is only lent for
 * one call and a retried connection may come late. */
static pthread_mutex_t answer_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *answer;
static size_t answer_len;
static int proxy_port;

/* Reads the request head (or gives up after 1 s or 64 KiB), sends the answer and closes. */
static void origin_serve(int fd)
{
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char head[65536];
    size_t got = 0;
    while (got < sizeof(head) - 1) {
        ssize_t n = recv(fd, head + got, sizeof(head) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        head[got] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    pthread_mutex_lock(&answer_lock);
    size_t len = answer_len;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy && len)
        memcpy(copy, answer, len);
    pthread_mutex_unlock(&answer_lock);
    for (size_t sent = 0; copy && sent < len;) {
        ssize_t n = send(fd, copy + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    free(copy);
    close(fd);
}

static void *origin_main(void *arg)
{
    int listener = *(int *)arg;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd >= 0)
            origin_serve(fd);
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static int listener;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t thread;
    if (listener < 0 || bind(listener, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(listener, 64) != 0 || getsockname(listener, (struct sockaddr *)&sin, &len) != 0 ||
        pthread_create(&thread, NULL, origin_main, &listener) != 0) {
        perror("fuzz: the origin");
        abort();
    }
    char topology[256];
    snprintf(topology, sizeof(topology),
             "{\"regions\":[{\"name\":\"fuzz\",\"lat\":0,\"lon\":0,"
             "\"origins\":[{\"address\":\"127.0.0.1:%d\"}]}]}",
             ntohs(sin.sin_port));
    static const char *const settings[][2] = {
        {"listen", "127.0.0.1:0"},
        {"passive-failures", "0"},
        {"response-header-timeout", "1s"},
        {"origin-read-timeout", "1s"},
    };
    struct proxy *proxy =
        fuzz_proxy_start(topology, settings, sizeof(settings) / sizeof(settings[0]));
    proxy_port = proxy_listen_port(proxy, 0);
    return 0;
}

/* ---- what the client got ---- */

struct client_view {
    bool head_request, http10, upgraded;
    struct fuzz_header hd; /* the one being parsed */
    int n_via, n_upgrade;
    struct fuzz_framing framing;
    const char *breach;
};

static int view_message_begin(llhttp_t *p)
{
    struct client_view *v = p->data;
    v->n_via = v->n_upgrade = 0;
    v->framing = (struct fuzz_framing){0};
    fuzz_header_reset(&v->hd);
    return 0;
}

static int view_status(llhttp_t *p, const char *at, size_t len)
{
    struct client_view *v = p->data;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            v->breach = "a control character in the status reason";
    }
    return 0;
}

static int view_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct client_view *v = p->data;
    fuzz_header_field(&v->hd, at, len);
    return 0;
}

static int view_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct client_view *v = p->data;
    fuzz_header_value(&v->hd, at, len);
    return 0;
}

static int view_header_value_complete(llhttp_t *p)
{
    struct client_view *v = p->data;
    const struct fuzz_header *hd = &v->hd;
    const char *breach = fuzz_header_complete(&v->hd);
    if (breach)
        v->breach = breach;
    fuzz_framing_note(&v->framing, hd);
    if (fuzz_header_is(hd, "Via"))
        v->n_via++;
    else if (fuzz_header_is(hd, "Upgrade"))
        v->n_upgrade++;
    else if (fuzz_header_is(hd, "Connection") && !fuzz_value_is(hd, "close") &&
             !fuzz_value_is(hd, "keep-alive") &&
             !(fuzz_value_is(hd, "upgrade") && llhttp_get_status_code(p) == 101))
        v->breach = "a Connection header the proxy did not write";
    fuzz_header_reset(&v->hd);
    return 0;
}

static int view_headers_complete(llhttp_t *p)
{
    struct client_view *v = p->data;
    int status = llhttp_get_status_code(p);
    if (v->n_via > 1) /* none in the proxy's own answers (502, 504) */
        v->breach = "more than one Via";
    else if (!fuzz_framing_ok(&v->framing))
        v->breach = "Content-Length and Transfer-Encoding not as a proxy writes them";
    else if (v->http10 && v->framing.n_transfer_encoding > 0)
        v->breach = "Transfer-Encoding to an HTTP/1.0 client";
    else if (v->n_upgrade && status != 101)
        v->breach = "Upgrade relayed outside a 101";
    v->upgraded = status == 101;
    /* A HEAD's final response has no body, whatever its framing headers say. */
    return v->head_request && status >= 200 ? 1 : 0;
}

static const llhttp_settings_t view_settings = {
    .on_message_begin = view_message_begin,
    .on_status = view_status,
    .on_header_field = view_header_field,
    .on_header_value = view_header_value,
    .on_header_value_complete = view_header_value_complete,
    .on_headers_complete = view_headers_complete,
};

/* Parses what the client got; the tunnel's bytes after a 101 are not HTTP. */
static void view_check(const uint8_t *got, size_t len, const char *request)
{
    struct client_view v = {.head_request = request[0] == 'H',
                            .http10 = strstr(request, "HTTP/1.0") != NULL};
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &view_settings);
    parser.data = &v;
    llhttp_errno_t err = llhttp_execute(&parser, (const char *)got, len);
    if (v.breach)
        fuzz_fail("the client", v.breach, got, len);
    if (err != HPE_OK && !(err == HPE_PAUSED_UPGRADE && v.upgraded))
        fuzz_fail("the client", llhttp_get_error_reason(&parser), got, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *request = requests[data[0] % (sizeof(requests) / sizeof(requests[0]))];
    pthread_mutex_lock(&answer_lock);
    free(answer);
    answer_len = size - 1;
    answer = malloc(size);
    if (answer)
        memcpy(answer, data + 1, answer_len);
    pthread_mutex_unlock(&answer_lock);
    static uint8_t got[1 << 20];
    size_t got_len = fuzz_client_exchange(proxy_port, (const uint8_t *)request, strlen(request), 0,
                                          got, sizeof(got));
    view_check(got, got_len, request);
    return 0;
}

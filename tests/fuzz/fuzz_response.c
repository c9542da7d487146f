/* tests/fuzz/fuzz_response.c - libFuzzer harness over the response path of the edge proxy.
 *
 * The real proxy runs in this process (one worker, no health checks, passive ejection off) in
 * front of one origin: a thread here that answers every connection by reading the request head
 * and sending the current input's bytes, then closing. The input's first byte picks the client's
 * request (GET, HEAD, a POST with "Expect: 100-continue", a WebSocket upgrade, an HTTP/1.0 GET),
 * so that bodiless responses, interim responses, tunnels and bodies for a client without chunked
 * coding are reached; the rest is the origin's answer. The client reads until the proxy closes.
 * Whatever the origin says, the proxy must relay it, answer 502/504 or close, without a crash, a
 * sanitizer report or a hang, and what the client gets must pass fuzz_check_responses()
 * (harness.h): one final response at most, well formed, framed as a proxy frames it, without
 * hop-by-hop headers; the harness aborts otherwise.
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
    /* The bytes the WebSocket request sends ahead of a 101 are a next request to the proxy
     * when the origin refuses the upgrade (which the proxy may refuse in turn). */
    struct fuzz_asked asked[2] = {
        {.head = request[0] == 'H', .http10 = strstr(request, "HTTP/1.0") != NULL}};
    size_t n_asked = strstr(request, "Upgrade") ? 2 : 1;
    size_t got_len = fuzz_client_exchange(proxy_port, (const uint8_t *)request, strlen(request),
                                          asked, n_asked, -1, got, sizeof(got));
    fuzz_check_responses(got, got_len, asked, n_asked);
    return 0;
}

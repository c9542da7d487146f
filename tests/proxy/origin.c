/* tests/proxy/origin.c - a scriptable origin server for the proxy tests, deliberately not built
 * on libevent or llhttp so that it shares no code with what it tests. Thread per connection,
 * blocking sockets, on 127.0.0.1 at a kernel-chosen port, which it prints on stdout.
 *
 * usage: origin NAME [normal|reset|once|stale|fail] [PORT]   ("fail": 503 to everything;
 *   "stale": answer the first request it gets, then close every connection a request comes on)
 *   ("reset": close every connection as soon as a request arrives; "once": answer the first
 *   request of a connection, then read the next one whole, or only its head if it has the field
 *   "X-Once: head", and close without answering; PORT:
 *   bind that port, with SO_REUSEADDR, to come back where a killed origin was)
 *
 * The request path picks the behaviour:
 *   /size/N  N bytes, Content-Length     /chunked/N  N bytes, chunked      /eof/N  close-delimited
 *   /eof-reset/N  close-delimited, the connection then reset (SO_LINGER 0) instead of closed
 *   /echo    reads the body, answers "BYTES SUM"  /headers  the request head as body
 *   (the head is the body too for any OPTIONS, and for any path whose query is "?headers")
 *   /slow/MS answers after MS ms         /stall      head, 5 of 10 bytes, then silence
 *   /stall/N Content-Length N, N/2 bytes, then silence
 *   /counted/N  N bytes, Content-Length, byte i being 'a' + i % 23 (order and loss show)
 *   /counted/N/K  the same, with a pause of 300 ms after the first K bytes
 *   /late-204   a 204 announcing 4 bytes of body, which come 200 ms later (they may not)
 *   /late-204-chunked  the same with the chunked coding
 *   /close   closes without answering    /cut/N      Content-Length N, N/2 bytes, close
 *   /reason-ctl a control character in the reason phrase
 *   /garbled an invalid status line      /cl-conflict two different Content-Length values
 *   /status-cr  a CR in the status line followed by a header line ("\rXSet-Cookie: ...")
 *   /fold-split a header value folded onto a line that comes 200 ms later
 *   /proxy-fields  a Proxy-Status (RFC 9209) and a Proxy-Authenticate
 *   /name-bad   a header whose name is no token ("X(Y")
 *   /conn-framing  a Connection header naming Content-Length, Date and X-Gone
 *   /chunk-no-crlf  chunked, with two bytes other than CRLF after the first chunk's data
 *   /bare    "HTTP/1.1 204", no reason phrase and no header at all
 *   /interim 103 Early Hints, then 200   /continue   100 Continue before reading the body
 *   /interim-garbled  100 Continue, then not a status line
 *   /interim-body     103 announcing (and followed by) 4 bytes of body, then 200
 *   /ws      101 Switching Protocols, then echoes bytes    /status/N  status N
 *   /ws-slow the same, reading nothing for the first 500 ms
 *   /ws-bare 101 without Connection: upgrade, then bytes     /dated  a 200 with a Date of 1994
 *   /redirect/self  302 to itself by its own address (and Content-Location)
 *   /redirect/away  302 to another site
 *   /redirect/net-path  302 to itself by a network-path reference ("//127.0.0.1:PORT/...")
 *   /early/N  N bytes, Content-Length, before reading any of the request body; then the
 *             connection ends with a lingering close (the rest of the request read and dropped)
 *   /trailers  chunked: the request's trailer lines (or "none"), then trailer fields of its own,
 *              X-Checksum among framing, routing, forwarding and hop-by-hop ones
 *   /trailers-bad  chunked, with a trailer field whose name is no token ("X : 1")
 *   anything else: 200 "NAME\n"
 * Every response carries X-Origin (NAME), X-Conn (connection number) and X-Req (request number on
 * the connection). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *name;
static int own_port; /* where it listens: /redirect/self names it */
static bool reset_mode, once_mode, fail_mode, stale_mode;
static atomic_int answered; /* requests answered, in stale mode */
static atomic_int connections;

struct conn {
    int fd, id, requests;
    bool head_request;
    bool said_close; /* a response on it said "close": another request is an error of the proxy */
    char buf[1 << 16];
    size_t len;          /* bytes buffered in <buf> */
    char trailers[1024]; /* the last chunked request body's trailer lines, each ended by "\n" */
};

static bool write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool fill(struct conn *c)
{
    if (c->len == sizeof(c->buf))
        return false;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one CRLF-terminated line (without CRLF) into <line>. */
static bool read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *crlf = memmem(c->buf, c->len, "\r\n", 2);
        if (crlf) {
            size_t n = (size_t)(crlf - c->buf);
            if (n >= size)
                return false;
            memcpy(line, c->buf, n);
            line[n] = '\0';
            consume(c, n + 2);
            return true;
        }
        if (!fill(c))
            return false;
    }
}

/* Reads <n> body bytes (or to EOF if n < 0), adding them to the count and sum. */
static bool read_body_bytes(struct conn *c, int64_t n, uint64_t *count, uint32_t *sum)
{
    while (n != 0) {
        if (c->len == 0 && !fill(c))
            return n < 0;
        size_t take = n < 0 || (uint64_t)n > c->len ? c->len : (size_t)n;
        for (size_t i = 0; i < take; i++)
            *sum += (unsigned char)c->buf[i];
        *count += take;
        consume(c, take);
        if (n > 0)
            n -= (int64_t)take;
    }
    return true;
}

static bool read_chunked(struct conn *c, uint64_t *count, uint32_t *sum)
{
    char line[256];
    for (;;) {
        if (!read_line(c, line, sizeof(line)))
            return false;
        uint64_t size = strtoull(line, NULL, 16);
        if (size == 0)
            break;
        if (!read_body_bytes(c, (int64_t)size, count, sum) || !read_line(c, line, sizeof(line)))
            return false;
    }
    size_t len = 0;
    while (read_line(c, line, sizeof(line)) && line[0] != '\0') {
        if (len < sizeof(c->trailers) - 1)
            len += (size_t)snprintf(c->trailers + len, sizeof(c->trailers) - len, "%s\n", line);
    }
    return true;
}

/* Head and body in one write, so a kill -9 can only fall between responses, never inside one. */
static void respond(struct conn *c, int status, const char *extra, const char *body, size_t len)
{
    char out[40000];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d X\r\nX-Origin: %s\r\nX-Conn: %d\r\nX-Req: %d\r\n%s"
                     "Content-Length: %zu\r\n\r\n",
                     status, name, c->id, c->requests, extra ? extra : "", len);
    if (c->head_request)
        len = 0;
    if (len <= sizeof(out) - (size_t)n) {
        memcpy(out + n, body, len);
        write_all(c->fd, out, (size_t)n + len);
    } else {
        write_all(c->fd, out, (size_t)n);
        write_all(c->fd, body, len);
    }
}

static void send_pattern(int fd, uint64_t n, bool chunked)
{
    static char block[65536];
    if (block[0] == 0)
        memset(block, 'x', sizeof(block));
    while (n > 0) {
        size_t take = n > sizeof(block) ? sizeof(block) : (size_t)n;
        if (chunked) {
            char size[32];
            int len = snprintf(size, sizeof(size), "%zx\r\n", take);
            if (!write_all(fd, size, (size_t)len))
                return;
        }
        if (!write_all(fd, block, take) || (chunked && !write_all(fd, "\r\n", 2)))
            return;
        n -= take;
    }
    if (chunked)
        write_all(fd, "0\r\n\r\n", 5);
}

/* A 200 of <n> pattern bytes, with Content-Length or chunked; the head alone for a HEAD. */
static void send_sized(const struct conn *c, long n, bool chunked)
{
    int fd = c->fd;
    char h[256];
    int len =
        chunked
            ? snprintf(h, sizeof(h),
                       "HTTP/1.1 200 OK\r\nX-Origin: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                       name)
            : snprintf(h, sizeof(h),
                       "HTTP/1.1 200 OK\r\nX-Origin: %s\r\nContent-Length: %ld\r\n\r\n", name, n);
    write_all(fd, h, (size_t)len);
    if (!c->head_request)
        send_pattern(fd, (uint64_t)n, chunked);
}

/* Serves one request; returns false when the connection is to be closed. */
/* Answers made in advance: <first>, then, 200 ms later, <then> if any. */
struct canned {
    const char *path, *first, *then;
};

static const struct canned canned_answers[] = {
    {"/bare", "HTTP/1.1 204\r\n\r\n", NULL},
    {"/garbled", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nhi", NULL},
    {"/reason-ctl", "HTTP/1.1 200 O\001K\r\nContent-Length: 2\r\n\r\nhi", NULL},
    {"/status-cr", "HTTP/1.1 200 OK\rXSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nhi", NULL},
    {"/cl-conflict", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     NULL},
    {"/chunk-no-crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokAB0\r\n\r\n",
     NULL},
    {"/interim-garbled", "HTTP/1.1 100 Continue\r\n\r\nXYZ garbage\r\n\r\n", NULL},
    {"/late-204", "HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n", "204\n"},
    {"/late-204-chunked", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
     "4\r\n204\n\r\n0\r\n\r\n"},
    {"/fold-split", "HTTP/1.1 200 OK\r\nX-A: aa\r\n", " bb\r\nContent-Length: 2\r\n\r\nhi"},
    {"/conn-framing",
     "HTTP/1.1 200 OK\r\nConnection: Content-Length, Date, X-Gone\r\nX-Gone: 1\r\n"
     "Content-Length: 5\r\n\r\nhello",
     NULL},
    {"/name-bad", "HTTP/1.1 200 OK\r\nX(Y: 1\r\nContent-Length: 2\r\n\r\nhi", NULL},
    {"/proxy-fields",
     "HTTP/1.1 200 OK\r\nProxy-Status: cache.example; hit\r\nProxy-Authenticate: Basic\r\n"
     "Content-Length: 2\r\n\r\nhi",
     NULL},
};

static const struct canned *canned_answer(const char *path)
{
    for (size_t i = 0; i < sizeof(canned_answers) / sizeof(canned_answers[0]); i++) {
        if (strcmp(path, canned_answers[i].path) == 0)
            return &canned_answers[i];
    }
    return NULL;
}

static bool serve(struct conn *c)
{
    char line[8192], method[16], path[4096], head[32768];
    size_t head_len = 0;
    int64_t content_length = -1;
    bool chunked = false, expect = false, close_after = false, upgrade = false, head_only = false;

    if (!read_line(c, line, sizeof(line)) || sscanf(line, "%15s %4095s", method, path) != 2)
        return false;
    head_len += (size_t)snprintf(head + head_len, sizeof(head) - head_len, "%s\n", line);
    while (read_line(c, line, sizeof(line)) && line[0] != '\0') {
        if (head_len < sizeof(head) - 1)
            head_len += (size_t)snprintf(head + head_len, sizeof(head) - head_len, "%s\n", line);
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            content_length = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line, "chunked"))
            chunked = true;
        else if (strncasecmp(line, "Expect:", 7) == 0)
            expect = true;
        else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close"))
            close_after = true;
        else if (strcasecmp(line, "X-Once: head") == 0)
            head_only = true;
        else if (strncasecmp(line, "Upgrade:", 8) == 0)
            upgrade = true;
    }
    c->requests++;
    c->head_request = strcmp(method, "HEAD") == 0;
    if (reset_mode || (once_mode && head_only && c->requests > 1) ||
        (stale_mode && atomic_fetch_add(&answered, 1) > 0))
        return false;
    if (strcmp(path, "/continue") == 0 && expect)
        write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    long n = 0;
    if (sscanf(path, "/early/%ld", &n) == 1) {
        send_sized(c, n, false);
        shutdown(c->fd, SHUT_WR);
        while (recv(c->fd, c->buf, sizeof(c->buf), 0) > 0)
            ;
        return false;
    }
    if (sscanf(path, "/noread/%ld", &n) == 1) { /* takes none of the body, for n ms */
        usleep((useconds_t)n * 1000);
        return false;
    }
    uint64_t count = 0;
    uint32_t sum = 0;
    c->trailers[0] = '\0';
    bool body_ok = chunked
                       ? read_chunked(c, &count, &sum)
                       : read_body_bytes(c, content_length > 0 ? content_length : 0, &count, &sum);
    if (!body_ok || (once_mode && c->requests > 1))
        return false;
    if (fail_mode) {
        respond(c, 503, NULL, "failing\n", 8);
        return true;
    }

    char body[256];
    const struct canned *canned = canned_answer(path);
    if (canned) {
        write_all(c->fd, canned->first, strlen(canned->first));
        if (canned->then) {
            usleep(200000);
            write_all(c->fd, canned->then, strlen(canned->then));
        }
    } else if (sscanf(path, "/size/%ld", &n) == 1 || sscanf(path, "/chunked/%ld", &n) == 1) {
        send_sized(c, n, path[1] == 'c');
    } else if (sscanf(path, "/eof/%ld", &n) == 1 || sscanf(path, "/eof-reset/%ld", &n) == 1) {
        char h[256];
        int len = snprintf(h, sizeof(h),
                           "HTTP/1.1 200 OK\r\nX-Origin: %s\r\nConnection: close\r\n\r\n", name);
        write_all(c->fd, h, (size_t)len);
        send_pattern(c->fd, (uint64_t)n, false);
        if (path[4] == '-') { /* the end is a reset: no end of the body at all */
            usleep(100000);
            struct linger reset = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        }
        return false;
    } else if (strcmp(path, "/echo") == 0 || strcmp(path, "/continue") == 0) {
        int len = snprintf(body, sizeof(body), "%llu %u\n", (unsigned long long)count, sum);
        respond(c, 200, NULL, body, (size_t)len);
    } else if (strcmp(path, "/headers") == 0 || strcmp(method, "OPTIONS") == 0 ||
               (strchr(path, '?') && strcmp(strchr(path, '?'), "?headers") == 0)) {
        respond(c, 200, NULL, head, head_len);
    } else if (sscanf(path, "/slow/%ld", &n) == 1) {
        usleep((useconds_t)n * 1000);
        int len = snprintf(body, sizeof(body), "%s\n", name);
        respond(c, 200, NULL, body, (size_t)len);
    } else if (sscanf(path, "/counted/%ld", &n) == 1) {
        char h[256], block[4600]; /* a multiple of 23: byte i of the body is block[i % 4600] */
        long pause_at = -1;
        sscanf(path, "/counted/%*d/%ld", &pause_at);
        int len = snprintf(
            h, sizeof(h), "HTTP/1.1 200 OK\r\nX-Conn: %d\r\nContent-Length: %ld\r\n\r\n", c->id, n);
        for (size_t i = 0; i < sizeof(block); i++)
            block[i] = (char)('a' + i % 23);
        write_all(c->fd, h, (size_t)len);
        for (long sent = 0; sent < n && !c->head_request;) {
            long offset = sent % (long)sizeof(block), take = (long)sizeof(block) - offset;
            if (take > n - sent)
                take = n - sent;
            if (sent < pause_at && take > pause_at - sent)
                take = pause_at - sent;
            if (!write_all(c->fd, block + offset, (size_t)take))
                return false;
            sent += take;
            if (sent == pause_at)
                usleep(300000);
        }
    } else if (strncmp(path, "/trailers", 9) == 0) {
        const char *got = c->trailers[0] ? c->trailers : "none\n";
        const char *own = strcmp(path, "/trailers-bad") == 0
                              ? "X : 1\r\n"
                              : "X-Checksum: 5eb63bbbe01eeed0\r\nContent-Length: 99\r\n"
                                "Host: evil.example\r\nKeep-Alive: timeout=1\r\n"
                                "X-Forwarded-For: 6.6.6.6\r\nX-Gone: 1\r\n";
        char out[4096];
        int len =
            snprintf(out, sizeof(out),
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n"
                     "Connection: X-Gone\r\n\r\n%zx\r\n%s\r\n0\r\n%s\r\n",
                     strlen(got), got, own);
        write_all(c->fd, out, (size_t)len);
    } else if (strcmp(path, "/stall") == 0) {
        write_all(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 44);
        sleep(10);
        return false;
    } else if (strcmp(path, "/close") == 0) {
        return false;
    } else if (sscanf(path, "/cut/%ld", &n) == 1 || sscanf(path, "/stall/%ld", &n) == 1) {
        char h[256];
        int len = snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", n);
        write_all(c->fd, h, (size_t)len);
        send_pattern(c->fd, (uint64_t)n / 2, false);
        if (path[1] == 's')
            sleep(10); /* silence */
        else
            usleep(100000); /* then the end */
        return false;
    } else if (strcmp(path, "/http10-close") == 0) { /* says close, among keep-alive, and stays */
        const char *old = c->said_close ? "HTTP/1.0 500 Reused\r\nContent-Length: 7\r\n\r\nreused\n"
                                        : "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n"
                                          "Content-Length: 4\r\n\r\nold\n";
        c->said_close = true;
        write_all(c->fd, old, strlen(old));
    } else if (strcmp(path, "/http10") == 0) { /* an HTTP/1.0 server: the end after it */
        const char *old = "HTTP/1.0 200 OK\r\nVia: 1.0 old\r\nContent-Length: 4\r\n\r\nold\n";
        write_all(c->fd, old, strlen(old));
        return false;
    } else if (strcmp(path, "/interim-body") == 0) {
        const char *hints = "HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\nbody";
        write_all(c->fd, hints, strlen(hints));
        respond(c, 200, NULL, "final\n", 6);
    } else if (strcmp(path, "/interim") == 0) {
        const char *hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
        write_all(c->fd, hints, strlen(hints));
        respond(c, 200, NULL, "final\n", 6);
    } else if (strcmp(path, "/ws-bare") == 0 && upgrade) {
        const char *r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes";
        write_all(c->fd, r, strlen(r));
    } else if ((strcmp(path, "/ws") == 0 || strcmp(path, "/ws-slow") == 0 ||
                strcmp(path, "/ws-logged") == 0) &&
               upgrade) {
        const char *r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n";
        write_all(c->fd, r, strlen(r));
        if (strcmp(path, "/ws-slow") == 0)
            usleep(500 * 1000);
        for (;;) { /* echo until EOF */
            if (c->len == 0 && !fill(c))
                return false;
            if (!write_all(c->fd, c->buf, c->len))
                return false;
            c->len = 0;
        }
    } else if (strcmp(path, "/redirect/self") == 0 || strcmp(path, "/redirect/away") == 0 ||
               strcmp(path, "/redirect/net-path") == 0) {
        char extra[256];
        if (path[10] == 'n')
            snprintf(extra, sizeof(extra),
                     "Location: //127.0.0.1:%d/landing\r\nContent-Location: //127.0.0.1:%d\r\n",
                     own_port, own_port);
        else if (path[10] == 's')
            snprintf(extra, sizeof(extra),
                     "Location: http://127.0.0.1:%d/landing?from=self\r\n"
                     "Content-Location: HTTP://127.0.0.1:%d/redirect/self\r\n",
                     own_port, own_port);
        else
            snprintf(extra, sizeof(extra), "Location: https://elsewhere.example/landing\r\n");
        respond(c, 302, extra, "moved\n", 6);
    } else if (strcmp(path, "/dated") == 0) {
        respond(c, 200, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", "dated\n", 6);
    } else if (sscanf(path, "/status/%ld", &n) == 1) {
        int len = snprintf(body, sizeof(body), "%ld\n", n);
        respond(c, (int)n, NULL, body, (size_t)len);
    } else {
        int len = snprintf(body, sizeof(body), "%s\n", name);
        respond(c, 200, NULL, body, (size_t)len);
    }
    return !close_after;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    while (serve(c))
        ;
    close(c->fd);
    free(c);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: origin NAME [normal|reset] [PORT]\n");
        return 2;
    }
    name = argv[1];
    reset_mode = argc > 2 && strcmp(argv[2], "reset") == 0;
    once_mode = argc > 2 && strcmp(argv[2], "once") == 0;
    stale_mode = argc > 2 && strcmp(argv[2], "stale") == 0;
    fail_mode = argc > 2 && strcmp(argv[2], "fail") == 0;
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons((uint16_t)(argc > 3 ? atoi(argv[3]) : 0))};
    socklen_t len = sizeof(sin);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("origin");
        return 1;
    }
    own_port = ntohs(sin.sin_port);
    printf("%d\n", own_port);
    fflush(stdout);
    for (;;) {
        int cfd = accept(fd, NULL, NULL);
        if (cfd < 0)
            continue;
        int nodelay = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));
        struct conn *c = calloc(1, sizeof(*c));
        c->fd = cfd;
        c->id = atomic_fetch_add(&connections, 1) + 1;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            close(cfd);
            free(c);
        }
        pthread_attr_destroy(&attr);
    }
}

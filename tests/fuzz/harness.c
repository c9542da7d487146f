/* tests/fuzz/harness.c - the proxy and the client side shared by the libFuzzer harnesses. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include "common/log.h"
#include "db/db.h"
#include "geo/geo.h"
#include "gslb/gslb.h"
#include "proxy/proxy.h"
#include "tests/fuzz/harness.h"

static char fuzz_dir[] = "/tmp/gslb-fuzz-XXXXXX";

/* At exit (libFuzzer's, after its runs): the topology store and its directory go. A crash leaves
 * them, beside its artifact. */
static void fuzz_dir_remove(void)
{
    static const char *const files[] = {"gslb.db", "gslb.db-wal", "gslb.db-shm"};
    char path[64];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, files[i]);
        unlink(path);
    }
    rmdir(fuzz_dir);
}

struct proxy *fuzz_proxy_start(const char *topology_json, const char *const settings[][2],
                               size_t n_settings)
{
    char err[512], *dir = fuzz_dir, db_path[64], city[512];
    const char *geo_dir = getenv("GSLB_GEOIP_DIR");
    snprintf(city, sizeof(city), "%s/GeoLite2-City.mmdb",
             geo_dir && *geo_dir ? geo_dir : "data/geoip");
    const char *specs[] = {city};

    signal(SIGPIPE, SIG_IGN);
    log_threshold = LOG_LEVEL_ERR;
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(fuzz_dir_remove);
    snprintf(db_path, sizeof(db_path), "%s/gslb.db", dir);
    struct db *db = db_open(db_path, err, sizeof(err));
    if (db == NULL ||
        db_import_json(db, topology_json, strlen(topology_json), "fuzz", err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
    db_close(db);
    struct geo *geo = geo_open(specs, 1, err, sizeof(err));
    struct gslb_watch *watch = geo ? gslb_watch_start(db_path, 1000, err, sizeof(err)) : NULL;
    struct proxy_config cfg;
    proxy_config_defaults(&cfg);
    int rc = watch ? 0 : -1;
    if (rc == 0)
        rc = proxy_config_set(&cfg, "trusted-proxies", "127.0.0.0/8", err, sizeof(err));
    if (rc == 0)
        rc = proxy_config_set(&cfg, "workers", "1", err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < n_settings; i++) {
        if ((rc = proxy_config_set(&cfg, settings[i][0], settings[i][1], err, sizeof(err))) != 0)
            fprintf(stderr, "fuzz: setting %s = %s: %s\n", settings[i][0], settings[i][1], err);
    }
    struct proxy *proxy = rc == 0 ? proxy_create(&cfg, geo, watch, NULL, err, sizeof(err)) : NULL;
    if (proxy == NULL) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
    return proxy;
}

/* libFuzzer's SIGALRM (for -timeout) can interrupt a blocking connect, which then completes in
 * the background: wait for it and read its outcome. */
static bool connect_finish(int fd)
{
    if (errno != EINTR)
        return false;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof(err);
    while (poll(&pfd, 1, 2000) < 0 && errno == EINTR)
        ;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        errno = err ? err : errno;
        return false;
    }
    return true;
}

static size_t responses_whole(const uint8_t *got, size_t len, const struct fuzz_asked *asked,
                              size_t n_asked);

size_t fuzz_client_exchange(int port, const uint8_t *data, size_t size,
                            const struct fuzz_asked *asked, size_t n_asked, long half_close_after,
                            uint8_t *got, size_t got_cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {2, 0};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* Close with a reset: tens of thousands of runs must not leave the port range in TIME_WAIT. */
    struct linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && !connect_finish(fd)) {
        perror("fuzz: connect to the proxy"); /* the proxy stopped accepting */
        abort();
    }
    size_t sent = 0;
    while (sent < size) {
        ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the proxy may refuse and close early */
        sent += (size_t)n;
    }
    bool open = true;
    if (half_close_after == 0) {
        shutdown(fd, SHUT_WR);
        open = false;
    }
    uint8_t buf[65536];
    size_t got_len = 0;
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        size_t keep = got_cap - got_len < (size_t)n ? got_cap - got_len : (size_t)n;
        if (keep > 0)
            memcpy(got + got_len, buf, keep);
        got_len += keep;
        if (open && half_close_after > 0 &&
            responses_whole(got, got_len, asked, n_asked) >= (size_t)half_close_after) {
            shutdown(fd, SHUT_WR);
            open = false;
        }
    }
    close(fd);
    return got_len;
}

static void header_append(char *buf, size_t cap, size_t *len, const char *at, size_t n)
{
    size_t room = cap - 1 - *len;
    n = n < room ? n : room;
    memcpy(buf + *len, at, n);
    *len += n;
    buf[*len] = '\0';
}

void fuzz_header_field(struct fuzz_header *h, const char *at, size_t len)
{
    if (h->in_value)
        fuzz_header_reset(h);
    header_append(h->name, sizeof(h->name), &h->name_len, at, len);
}

void fuzz_header_value(struct fuzz_header *h, const char *at, size_t len)
{
    h->in_value = true;
    header_append(h->value, sizeof(h->value), &h->value_len, at, len);
}

const char *fuzz_header_complete(struct fuzz_header *h)
{
    while (h->value_len > 0 &&
           (h->value[h->value_len - 1] == ' ' || h->value[h->value_len - 1] == '\t'))
        h->value[--h->value_len] = '\0';
    if (fuzz_header_is(h, "Keep-Alive") || fuzz_header_is(h, "TE") ||
        fuzz_header_is(h, "Trailer") ||
        (h->name_len > 6 && strncasecmp(h->name, "Proxy-", 6) == 0)) /* bare "Proxy-" is none */
        return "a hop-by-hop header went on";
    return NULL;
}

const char *fuzz_trailer_check(const struct fuzz_header *h)
{
    static const char *const never[] = {
        "Content-Length",   "Transfer-Encoding", "Host",
        "Connection",       "Upgrade",           "Via",
        "Forwarded",        "X-Forwarded-For",   "X-Forwarded-Proto",
        "X-Forwarded-Host",
    };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        if (fuzz_header_is(h, never[i]))
            return "a trailer field that frames, routes, forwards or is hop-by-hop";
    }
    return NULL;
}

bool fuzz_header_is(const struct fuzz_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

bool fuzz_value_is(const struct fuzz_header *h, const char *value)
{
    return h->value_len == strlen(value) && strncasecmp(h->value, value, h->value_len) == 0;
}

void fuzz_header_reset(struct fuzz_header *h)
{
    h->name_len = h->value_len = 0;
    h->name[0] = h->value[0] = '\0';
    h->in_value = false;
}

void fuzz_framing_note(struct fuzz_framing *f, const struct fuzz_header *h)
{
    if (fuzz_header_is(h, "Content-Length")) {
        f->n_content_length++;
    } else if (fuzz_header_is(h, "Transfer-Encoding")) {
        f->n_transfer_encoding++;
        f->chunked_only = fuzz_value_is(h, "chunked");
    }
}

bool fuzz_framing_ok(const struct fuzz_framing *f)
{
    if (f->n_content_length > 1 || f->n_transfer_encoding > 1)
        return false;
    if (f->n_transfer_encoding)
        return f->n_content_length == 0 && f->chunked_only;
    return true;
}

/* ---- what a client got back ---- */

struct client_view {
    const struct fuzz_asked *asked;
    size_t n_asked, n_final; /* final responses begun so far (a 101 is one) */
    size_t n_whole;          /* and ended */
    struct fuzz_header hd;   /* the one being parsed */
    int n_via, n_upgrade;
    bool upgraded;
    bool in_trailers; /* past the head: fields now are trailers */
    struct fuzz_framing framing;
    const char *breach;
};

static int view_message_begin(llhttp_t *p)
{
    struct client_view *v = p->data;
    v->n_via = v->n_upgrade = 0;
    v->in_trailers = false;
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
    if (breach == NULL && v->in_trailers)
        breach = fuzz_trailer_check(hd);
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
    bool final = status >= 200 || status == 101;
    if (v->n_final >= v->n_asked) {
        v->breach = "a response to no request";
        return 0;
    }
    const struct fuzz_asked *q = &v->asked[v->n_final];
    if (final)
        v->n_final++;
    if (v->n_via > 1) /* none in the proxy's own answers */
        v->breach = "more than one Via";
    else if (!fuzz_framing_ok(&v->framing))
        v->breach = "Content-Length and Transfer-Encoding not as a proxy writes them";
    else if (q->http10 && v->framing.n_transfer_encoding > 0)
        v->breach = "Transfer-Encoding to an HTTP/1.0 client";
    else if (q->http10 && !final)
        v->breach = "an interim response to an HTTP/1.0 request";
    else if (v->n_upgrade && status != 101)
        v->breach = "Upgrade relayed outside a 101";
    v->upgraded = status == 101;
    v->in_trailers = true;
    /* A HEAD's final response has no body, whatever its framing headers say. */
    return q->head && status >= 200 ? 1 : 0;
}

static int view_message_complete(llhttp_t *p)
{
    struct client_view *v = p->data;
    int status = llhttp_get_status_code(p);
    if (status >= 200 || status == 101)
        v->n_whole++;
    return 0;
}

static const llhttp_settings_t view_settings = {
    .on_message_begin = view_message_begin,
    .on_message_complete = view_message_complete,
    .on_status = view_status,
    .on_header_field = view_header_field,
    .on_header_value = view_header_value,
    .on_header_value_complete = view_header_value_complete,
    .on_headers_complete = view_headers_complete,
};

static llhttp_errno_t view_parse(struct client_view *v, llhttp_t *parser, const uint8_t *got,
                                 size_t len)
{
    llhttp_init(parser, HTTP_RESPONSE, &view_settings);
    parser->data = v;
    return llhttp_execute(parser, (const char *)got, len);
}

/* How many final responses to <asked> have come whole in <got>. */
static size_t responses_whole(const uint8_t *got, size_t len, const struct fuzz_asked *asked,
                              size_t n_asked)
{
    struct client_view v = {.asked = asked, .n_asked = n_asked};
    llhttp_t parser;
    view_parse(&v, &parser, got, len);
    return v.n_whole;
}

void fuzz_check_responses(const uint8_t *got, size_t len, const struct fuzz_asked *asked,
                          size_t n_asked)
{
    struct client_view v = {.asked = asked, .n_asked = n_asked};
    llhttp_t parser;
    llhttp_errno_t err = view_parse(&v, &parser, got, len);
    if (v.breach)
        fuzz_fail("the client", v.breach, got, len);
    if (err == HPE_OK || (err == HPE_PAUSED_UPGRADE && v.upgraded))
        return;
    fuzz_fail("the client", llhttp_get_error_reason(&parser), got, len);
}

_Noreturn void fuzz_fail(const char *whom, const char *what, const void *data, size_t len)
{
    fprintf(stderr, "fuzz: the proxy sent %s what breaks a promise: %s\n---\n%.*s\n---\n", whom,
            what, (int)len, (const char *)data);
    abort();
}

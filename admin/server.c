/* admin/server.c - the admin listener: libmicrohttpd set-up, request bodies, security headers,
 * the embedded console files, and the dispatch of /api/v1 requests to their handlers.
 *
 * libmicrohttpd calls the access handler at least twice per request: first with the headers
 * only, where the route is matched and the caller authenticated, so an unauthenticated or
 * oversized request is refused before its body is read; then with body pieces; then once more
 * with nothing, where the handler runs. Every answer, errors and console files included, carries
 * the same security headers; API answers are never cached.
 *
 * On a loopback listener the Host header must name loopback too: a page on another site that
 * rebinds its DNS name to 127.0.0.1 must not reach the first-run setup or anything else.
 *
 * Under TLS (admin-tls-cert, admin-tls-key) libmicrohttpd serves through GnuTLS, which says only
 * that the pair did not load; the files are read with OpenSSL first, so an error names the file.
 * Only TLS 1.2 and 1.3 are offered. libmicrohttpd's own messages are rate-limited: a client can
 * make it log one per connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "admin/admin_int.h"
#include "common/addr.h"
#include "common/log.h"
#include "common/units.h"
#include "common/xalloc.h"
#include "db/db.h"

#define API_PREFIX "/api/v1"
#define CSP                                                                                        \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* ---- configuration ---- */

void admin_config_defaults(struct admin_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:9090");
    cfg->session_ttl_ms = 8 * 3600 * 1000;
}

int admin_config_set(struct admin_config *cfg, const char *key, const char *value, char *err,
                     size_t errlen)
{
    char *dst = NULL;
    size_t cap = 0;
    if (strcmp(key, "admin-listen") == 0) {
        dst = cfg->listen;
        cap = sizeof(cfg->listen);
    } else if (strcmp(key, "admin-tls-cert") == 0) {
        dst = cfg->tls_cert;
        cap = sizeof(cfg->tls_cert);
    } else if (strcmp(key, "admin-tls-key") == 0) {
        dst = cfg->tls_key;
        cap = sizeof(cfg->tls_key);
    } else if (strcmp(key, "admin-session-ttl") == 0) {
        int ms;
        if (parse_duration_ms(value, &ms) != 0 || ms < 60000) {
            snprintf(err, errlen, "admin-session-ttl: expected a duration of at least 1m");
            return -EINVAL;
        }
        cfg->session_ttl_ms = ms;
        return 0;
    } else {
        return -ENOENT;
    }
    if (strlen(value) >= cap) {
        snprintf(err, errlen, "%s: too long", key);
        return -EINVAL;
    }
    snprintf(dst, cap, "%s", value);
    return 0;
}

/* Splits "ADDR:PORT" or "[V6]:PORT" into <host> and <port>. */
static int listen_split(const char *listen, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -EINVAL;
    const char *h = listen;
    size_t len = (size_t)(colon - listen);
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    if (len == 0 || len >= hostlen || strlen(colon + 1) >= portlen)
        return -EINVAL;
    memcpy(host, h, len);
    host[len] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

bool admin_listen_is_loopback(const char *listen)
{
    char host[128], port[16];
    struct ip_addr a;
    if (listen_split(listen, host, sizeof(host), port, sizeof(port)) != 0 ||
        ip_addr_parse(host, &a) != 0)
        return strncmp(listen, "localhost:", 10) == 0;
    a = ip_addr_unmap_v4(&a);
    if (a.family == AF_INET)
        return a.bytes[0] == 127;
    static const uint8_t v6_loopback[16] = {[15] = 1};
    return memcmp(a.bytes, v6_loopback, 16) == 0;
}

/* ---- store connections ---- */

struct db *admin_db_acquire(struct admin *admin, char *err, size_t errlen)
{
    struct db *db = NULL;
    pthread_mutex_lock(&admin->lock);
    if (admin->n_idle > 0)
        db = admin->idle[--admin->n_idle];
    pthread_mutex_unlock(&admin->lock);
    return db ? db : db_open(admin->cfg.db_path, err, errlen);
}

void admin_db_release(struct admin *admin, struct db *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&admin->lock);
    if (admin->n_idle < ADMIN_DB_POOL) {
        admin->idle[admin->n_idle++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&admin->lock);
    db_close(db);
}

/* ---- answers ---- */

static void answer_set(struct admin_request *req, int status, char *text, size_t len)
{
    free(req->answer);
    req->answered = true;
    req->status = status;
    req->answer = text;
    req->answer_len = len;
    req->content_type = "application/json";
}

void admin_reply_text(struct admin_request *req, int status, const char *text, size_t len)
{
    char *copy = xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    answer_set(req, status, copy, len);
}

void admin_reply_json(struct admin_request *req, int status, json_t *body)
{
    /* Escaping '/' keeps "</script>" out of any answer, whatever reads it. */
    char *text = json_dumps(body, JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (text == NULL)
        abort(); /* only when out of memory */
    answer_set(req, status, text, strlen(text));
}

/* The machine code of an error the console branches on; <code> NULL takes the status's own. */
static const char *error_code(int status, const char *code)
{
    if (code)
        return code;
    return status == 401 ? "auth" : status == 412 ? "stale" : status == 429 ? "throttled" : NULL;
}

static void reply_error_v(struct admin_request *req, int status, const char *code,
                          const char *field, const char *fmt, va_list ap)
{
    char message[1024];
    vsnprintf(message, sizeof(message), fmt, ap);
    json_t *error = json_object();
    json_object_set_new(error, "field", field ? json_string(field) : json_null());
    if ((code = error_code(status, code)) != NULL)
        json_object_set_new(error, "code", json_string(code));
    /* Messages may quote request bytes that are not UTF-8: jansson refuses those. */
    json_t *m = json_string(message);
    json_object_set_new(error, "message", m ? m : json_string("invalid request"));
    json_t *body = json_object();
    json_object_set_new(body, "error", error);
    admin_reply_json(req, status, body);
}

void admin_reply_error(struct admin_request *req, int status, const char *field, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(req, status, NULL, field, fmt, ap);
    va_end(ap);
}

void admin_reply_error_code(struct admin_request *req, int status, const char *code,
                            const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(req, status, code, field, fmt, ap);
    va_end(ap);
}

void admin_reply_db(struct admin_request *req, int rc, const char *err)
{
    admin_reply_db_object(req, rc, err, NULL);
}

void admin_reply_db_object(struct admin_request *req, int rc, const char *err, const char *prefix)
{
    char field[256] = "";
    const char *colon = strstr(err, ": ");
    size_t len = colon ? (size_t)(colon - err) : 0;
    /* db/ messages start with the field's path ("regions[eu-west].lat: ..."); "db: ..." and
     * prose do not name one. */
    if (len > 0 && len < sizeof(field) && memchr(err, ' ', len) == NULL &&
        !(len == 2 && memcmp(err, "db", 2) == 0)) {
        memcpy(field, err, len);
        field[len] = '\0';
    }
    int status = rc == -EINVAL                   ? 400
                 : rc == -ENOENT                 ? 404
                 : rc == -EEXIST || rc == -EBUSY ? 409
                 : rc == -ESTALE                 ? 412
                                                 : 500;
    if (status == 500)
        log_err("admin: %s %s: %s", req->method, req->route ? req->route->pattern : "?", err);
    /* "regions[4].name" names "name" of the region in the request's body; "services[www].pools[
     * eu-west].origins[0].weight" names "weight" of an origin, ".pools[eu-west].min_healthy" the
     * pool's own field when the body was a pool. */
    const char *inner = field;
    if (prefix && strncmp(field, prefix, strlen(prefix)) == 0) {
        bool pool_body = req->route && strcmp(req->route->pattern, ADMIN_POOL_PATTERN) == 0;
        const char *end = strcmp(prefix, "services[") == 0 && strstr(field, "].origins[")
                              ? strstr(field, "].origins[") + 1
                          : pool_body && strstr(field, "].pools[") ? strstr(field, "].pools[") + 1
                                                                   : field;
        end = strstr(end, "].");
        if (end)
            inner = end + 2;
        /* db/ names a duplicate by the object ("regions[eu-west]: already exists"): what the
         * body got wrong is its name, or an origin's address. */
        if (rc == -EEXIST)
            inner = strstr(field, ".origins") ? "address" : "name";
    }
    admin_reply_error(req, status, inner[0] ? inner : NULL, "%s", err);
}

void admin_reply_done(struct admin_request *req, int rc, const char *err)
{
    if (rc == 0)
        admin_reply_json(req, 200, json_object());
    else
        admin_reply_db(req, rc, err);
}

json_t *admin_body_json(struct admin_request *req)
{
    json_error_t jerr;
    json_t *body =
        json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        admin_reply_error(req, 400, NULL, "JSON syntax error at line %d, column %d: %s", jerr.line,
                          jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        admin_reply_error(req, 400, NULL, "expected a JSON object");
        return NULL;
    }
    return body;
}

const char *admin_query(struct admin_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *admin_header(struct admin_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* ---- responses on the wire ---- */

static void security_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
}

static enum MHD_Result send_answer(struct admin_request *req)
{
    if (!req->answered)
        admin_reply_error(req, 500, NULL, "no answer");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(req->answer_len, req->answer, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    security_headers(r);
    MHD_add_response_header(r, "Content-Type", req->content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (req->admin->tls)
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    if (req->set_cookie[0])
        MHD_add_response_header(r, "Set-Cookie", req->set_cookie);
    if (req->retry_after[0])
        MHD_add_response_header(r, "Retry-After", req->retry_after);
    if (req->etag[0])
        MHD_add_response_header(r, "ETag", req->etag);
    if (req->status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"gslb\"");
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)req->status, r);
    MHD_destroy_response(r);
    return rc;
}

const struct admin_asset *admin_asset_find(const char *path)
{
    for (size_t i = 0; i < admin_n_assets; i++) {
        if (strcmp(admin_assets[i].path, path) == 0)
            return &admin_assets[i];
    }
    return NULL;
}

static enum MHD_Result send_asset(struct admin_request *req, const char *url)
{
    const struct admin_asset *a = admin_asset_find(strcmp(url, "/") == 0 ? "/index.html" : url);
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        admin_reply_error(req, 405, NULL, "the console's files are read-only");
        return send_answer(req);
    }
    if (a == NULL) {
        admin_reply_error(req, 404, NULL, "no such file");
        return send_answer(req);
    }
    const char *inm = admin_header(req, "If-None-Match");
    bool fresh = inm && a->etag && strcmp(inm, a->etag) == 0;
    struct MHD_Response *r =
        fresh ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(a->size, (void *)(uintptr_t)a->data,
                                                MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    security_headers(r);
    MHD_add_response_header(r, "Content-Type", a->content_type);
    MHD_add_response_header(r, "Cache-Control", "no-cache"); /* revalidate by ETag */
    if (a->etag)
        MHD_add_response_header(r, "ETag", a->etag);
    if (req->admin->tls)
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    enum MHD_Result rc =
        MHD_queue_response(req->conn, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- requests ---- */

static bool host_is_loopback(const char *host)
{
    if (host == NULL)
        return false;
    char name[128];
    size_t len = strlen(host);
    if (len >= sizeof(name))
        return false;
    memcpy(name, host, len + 1);
    char *end = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    if (name[0] == '[') {
        if (end == NULL)
            return false;
        *end = '\0';
        memmove(name, name + 1, strlen(name));
    } else if (end) {
        *end = '\0';
    }
    if (strcasecmp(name, "localhost") == 0)
        return true;
    char listen[160];
    snprintf(listen, sizeof(listen), "[%s]:1", name);
    return admin_listen_is_loopback(listen);
}

/* A state-changing request from a browser names its page's origin: it must be ours. */
static bool origin_allowed(struct admin_request *req)
{
    const char *origin = admin_header(req, "Origin"), *host = admin_header(req, "Host");
    if (origin == NULL)
        return true;
    const char *scheme = req->admin->tls ? "https://" : "http://";
    size_t slen = strlen(scheme);
    return host && strncmp(origin, scheme, slen) == 0 && strcmp(origin + slen, host) == 0;
}

static bool is_unsafe(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

static void client_address(struct admin_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct ip_addr a;
    snprintf(req->client, sizeof(req->client), "unknown");
    if (ci && ci->client_addr && ip_addr_from_sockaddr(ci->client_addr, &a) == 0) {
        a = ip_addr_unmap_v4(&a);
        ip_addr_format(&a, req->client, sizeof(req->client));
    }
}

/* The first call: route, authenticate, check the body's size and type. Returns false when
 * <req> is answered already. */
static bool request_begin(struct admin_request *req, const char *path)
{
    bool known = false;
    req->route = admin_route_match(req->method, path, req->params, &req->n_params, &known);
    if (req->route == NULL) {
        if (known)
            admin_reply_error(req, 405, NULL, "%s is not allowed here", req->method);
        else
            admin_reply_error(req, 404, NULL, "no such API route");
        return false;
    }
    if (is_unsafe(req->method) && !origin_allowed(req)) {
        admin_reply_error(req, 403, NULL, "cross-origin request refused");
        return false;
    }
    req->body_max = req->route->flags & ADMIN_LARGE_BODY ? ADMIN_IMPORT_MAX : ADMIN_BODY_MAX;
    const char *length = admin_header(req, "Content-Length");
    if (length && strtoull(length, NULL, 10) > req->body_max) {
        admin_reply_error(req, 413, NULL, "request body larger than %zu bytes", req->body_max);
        return false;
    }
    char err[256];
    if ((req->db = admin_db_acquire(req->admin, err, sizeof(err))) == NULL) {
        log_err("admin: %s", err);
        admin_reply_error(req, 503, NULL, "the store is not available");
        return false;
    }
    if (!(req->route->flags & ADMIN_PUBLIC) && !admin_authenticate(req))
        return false;
    /* Only JSON bodies: a cross-site HTML form cannot send one without a CORS preflight. */
    const char *type = admin_header(req, "Content-Type");
    bool has_body =
        (length && strcmp(length, "0") != 0) || admin_header(req, "Transfer-Encoding") != NULL;
    if (has_body && (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
                     (type[16] != '\0' && type[16] != ';'))) {
        admin_reply_error(req, 415, NULL, "request bodies must be application/json");
        return false;
    }
    return true;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    struct admin *admin = cls;
    struct admin_request *req = *con_cls;
    (void)version;
    if (req == NULL) {
        req = xcalloc(1, sizeof(*req));
        req->admin = admin;
        req->conn = conn;
        req->method = method;
        *con_cls = req;
        client_address(req);
        if (admin->loopback && !host_is_loopback(admin_header(req, "Host"))) {
            admin_reply_error(req, 421, NULL,
                              "this console listens on loopback: use localhost or 127.0.0.1");
            return send_answer(req);
        }
        if (strncmp(url, API_PREFIX "/", sizeof(API_PREFIX)) != 0)
            return send_asset(req, url);
        if (!request_begin(req, url + sizeof(API_PREFIX) - 1))
            return send_answer(req);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->body_too_large || req->body_len + n > req->body_max) {
            req->body_too_large = true;
            return MHD_YES;
        }
        req->body = xrealloc(req->body, req->body_len + n + 1);
        memcpy(req->body + req->body_len, upload_data, n);
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return MHD_YES;
    }
    if (req->answered) /* queued already; libmicrohttpd should not call again */
        return MHD_YES;
    if (req->body_too_large)
        admin_reply_error(req, 413, NULL, "request body larger than %zu bytes", req->body_max);
    else
        req->route->handler(req);
    if (req->status < 400 && is_unsafe(req->method))
        log_info("admin: %s %s by %s from %s: %d", method, url, req->actor[0] ? req->actor : "-",
                 req->client, req->status);
    return send_answer(req);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct admin *admin = cls;
    struct admin_request *req = *con_cls;
    (void)conn;
    (void)toe;
    if (req == NULL)
        return;
    admin_db_release(admin, req->db);
    free(req->body);
    free(req->answer);
    free(req);
    *con_cls = NULL;
}

bool admin_log_allow(struct admin_log_limit *l, const char *kind, int64_t now_ms,
                     uint64_t *suppressed_out)
{
    bool allow = true;
    size_t slot = 0;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < ADMIN_LOG_KINDS; i++) {
        if (l->kinds[i].kind == kind) {
            slot = i;
            break;
        }
        /* Else the free slot, or the one quiet for longest (its count is forgotten). */
        if (l->kinds[slot].kind != NULL &&
            (l->kinds[i].kind == NULL || l->kinds[i].last_ms < l->kinds[slot].last_ms))
            slot = i;
    }
    if (l->kinds[slot].kind != kind) {
        l->kinds[slot].kind = kind;
        l->kinds[slot].suppressed = 0;
    } else if (now_ms - l->kinds[slot].last_ms < 1000) {
        l->kinds[slot].suppressed++;
        allow = false;
    }
    if (allow) {
        *suppressed_out = l->kinds[slot].suppressed;
        l->kinds[slot].suppressed = 0;
        l->kinds[slot].last_ms = now_ms;
    }
    pthread_mutex_unlock(&l->lock);
    return allow;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct admin *admin = cls;
    struct timespec ts;
    uint64_t suppressed = 0;
    char line[512];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (!admin_log_allow(&admin->log_limit, fmt, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                         &suppressed))
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    if (suppressed > 0)
        log_warn("admin: %s (and %" PRIu64 " more like it in the last seconds, not logged)", line,
                 suppressed);
    else
        log_warn("admin: %s", line);
}

/* ---- start and stop ---- */

/* The contents of the file <path> that the setting <key> names, or NULL with the reason in <err>.
 */
static char *file_read(const char *key, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s: %s", key, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0, got;
    char *buf = xmalloc(cap + 1);
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap && cap < (1u << 20))
            buf = xrealloc(buf, (cap *= 2) + 1);
        else if (len == cap)
            break;
    }
    bool bad = ferror(f) || len == cap;
    fclose(f);
    if (bad || len == 0) {
        snprintf(err, errlen, "%s: %s: %s", key, path,
                 len == 0 ? "empty" : "unreadable or too large");
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static int no_passphrase(char *buf, int size, int rwflag, void *data)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)data;
    return -1; /* never prompt on the terminal: an encrypted key is refused */
}

/* Checks that the files read hold a PEM certificate and the private key that goes with it. The
 * listener's TLS library would refuse them too, but without saying which file is wrong. */
static int tls_files_check(const struct admin *admin, char *err, size_t errlen)
{
    BIO *cert_bio = BIO_new_mem_buf(admin->cert_pem, -1);
    BIO *key_bio = BIO_new_mem_buf(admin->key_pem, -1);
    X509 *cert = cert_bio ? PEM_read_bio_X509(cert_bio, NULL, no_passphrase, NULL) : NULL;
    EVP_PKEY *key = key_bio ? PEM_read_bio_PrivateKey(key_bio, NULL, no_passphrase, NULL) : NULL;
    int rc = -EINVAL;
    if (cert == NULL)
        snprintf(err, errlen, "admin-tls-cert: %s: no PEM certificate", admin->cfg.tls_cert);
    else if (key == NULL)
        snprintf(err, errlen, "admin-tls-key: %s: no PEM private key (or one with a passphrase)",
                 admin->cfg.tls_key);
    else if (X509_check_private_key(cert, key) != 1)
        snprintf(err, errlen, "admin-tls-key: %s: not the key of the certificate in %s",
                 admin->cfg.tls_key, admin->cfg.tls_cert);
    else
        rc = 0;
    EVP_PKEY_free(key);
    X509_free(cert);
    BIO_free(key_bio);
    BIO_free(cert_bio);
    ERR_clear_error(); /* this thread's queue: nothing else should find these errors */
    return rc;
}

/* GnuTLS priorities for the console: TLS 1.2 and 1.3 only, our cipher order first. */
static char tls_priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE";

struct admin *admin_start(const struct admin_config *cfg, struct geo *geo, struct gslb_watch *watch,
                          struct gslb_prober *prober, struct proxy *proxy, char *err, size_t errlen)
{
    struct admin *admin = xcalloc(1, sizeof(*admin));
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM},
                    *ai = NULL;
    char host[128], port[16];
    admin->cfg = *cfg;
    admin->geo = geo;
    admin->watch = watch;
    admin->prober = prober;
    admin->proxy = proxy;
    pthread_mutex_init(&admin->lock, NULL);
    pthread_mutex_init(&admin->log_limit.lock, NULL);

    if (listen_split(cfg->listen, host, sizeof(host), port, sizeof(port)) != 0 ||
        getaddrinfo(strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, port, &hints, &ai) != 0) {
        snprintf(err, errlen, "admin-listen: '%s' is not ADDR:PORT or [V6]:PORT", cfg->listen);
        goto fail;
    }
    admin->loopback = admin_listen_is_loopback(cfg->listen);
    if (!!cfg->tls_cert[0] != !!cfg->tls_key[0]) {
        snprintf(err, errlen, "admin-tls-cert and admin-tls-key go together");
        goto fail;
    }
    admin->tls = cfg->tls_cert[0] != '\0';
    if (admin->tls &&
        ((admin->cert_pem = file_read("admin-tls-cert", cfg->tls_cert, err, errlen)) == NULL ||
         (admin->key_pem = file_read("admin-tls-key", cfg->tls_key, err, errlen)) == NULL ||
         tls_files_check(admin, err, errlen) != 0))
        goto fail;
    /* The store must open (and migrate) now, not at the first request. */
    struct db *db = admin_db_acquire(admin, err, errlen);
    if (db == NULL)
        goto fail;
    admin_db_release(admin, db);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (admin->tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem options[] = {
        {MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr},
        {MHD_OPTION_THREAD_POOL_SIZE, 2, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 128, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 << 10, NULL},
        {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
        {admin->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, admin->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, admin->key_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, tls_priorities},
        {MHD_OPTION_END, 0, NULL},
    };
    admin->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, access_handler, admin, MHD_OPTION_EXTERNAL_LOGGER,
                         mhd_log, admin, MHD_OPTION_NOTIFY_COMPLETED, request_completed, admin,
                         MHD_OPTION_ARRAY, options, MHD_OPTION_END);
    if (admin->daemon == NULL) {
        snprintf(err, errlen, "admin: cannot serve on %s%s", cfg->listen,
                 admin->tls ? " (address in use, or admin-tls-cert and admin-tls-key unusable?)"
                            : " (address in use?)");
        goto fail;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(admin->daemon, MHD_DAEMON_INFO_BIND_PORT);
    admin->port = info ? info->port : 0;
    freeaddrinfo(ai);
    return admin;
fail:
    if (ai)
        freeaddrinfo(ai);
    admin_stop(admin);
    return NULL;
}

void admin_stop(struct admin *admin)
{
    if (admin == NULL)
        return;
    if (admin->daemon)
        MHD_stop_daemon(admin->daemon);
    for (size_t i = 0; i < admin->n_idle; i++)
        db_close(admin->idle[i]);
    pthread_mutex_destroy(&admin->lock);
    pthread_mutex_destroy(&admin->log_limit.lock);
    free(admin->cert_pem);
    if (admin->key_pem)
        memset(admin->key_pem, 0, strlen(admin->key_pem));
    free(admin->key_pem);
    free(admin);
}

int admin_port(const struct admin *admin)
{
    return admin ? admin->port : -1;
}

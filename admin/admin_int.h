/* admin/admin_int.h - internals shared by the files of the admin module (server, router, auth,
 * handlers). Nothing outside admin/ includes this header.
 *
 * The console's static files (the files of admin/console and admin/openapi.json) are compiled into
 * the binary by a generator that writes $(BUILD)/admin/assets.c, defining admin_assets[] and
 * admin_n_assets with the struct below.
 *
 * Threads: every handler runs on one of libmicrohttpd's pool threads, with a store connection of
 * its own (req->db) for the request's duration. Handlers validate, call public module APIs and
 * set exactly one answer with the reply functions. */
#ifndef ADMIN_ADMIN_INT_H
#define ADMIN_ADMIN_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/admin.h"

/* One embedded file, served as is. */
struct admin_asset {
    const char *path;         /* "/index.html": absolute, as requested */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t size;
    const char *etag; /* quoted strong ETag, e.g. "\"3f2a...\"" */
};

extern const struct admin_asset admin_assets[];
extern const size_t admin_n_assets;

/* The embedded file at <path>, or NULL. */
const struct admin_asset *admin_asset_find(const char *path);

#define ADMIN_DB_POOL    4 /* idle store connections kept */
#define ADMIN_MAX_PARAMS 4
#define ADMIN_BODY_MAX   (64u << 10) /* request bodies, except... */
#define ADMIN_IMPORT_MAX (8u << 20)  /* ...a whole topology */
#define ADMIN_USER_LOCK  5  /* failed logins in a row for one user name before a lock-out */
#define ADMIN_IP_LOCK    20 /* and for one client address */
#define ADMIN_LOCK_BASE  30000
#define ADMIN_LOCK_MAX   (15 * 60000)

struct MHD_Daemon;
struct MHD_Connection;
struct db;

#define ADMIN_LOG_KINDS 16 /* libmicrohttpd messages told apart by the rate limit */

/* libmicrohttpd logs one warning per bad client (plain HTTP on a TLS port, say), which a client
 * can repeat at will: at most one line a second per message kind (its format string). */
struct admin_log_limit {
    pthread_mutex_t lock;
    struct {
        const char *kind; /* the format string, compared by address; NULL: free */
        int64_t last_ms;
        uint64_t suppressed;
    } kinds[ADMIN_LOG_KINDS];
};

struct admin {
    struct admin_config cfg;
    struct geo *geo;
    struct gslb_watch *watch;
    struct gslb_prober *prober;
    struct proxy *proxy;
    struct MHD_Daemon *daemon;
    bool tls, loopback;
    int port;
    char *cert_pem, *key_pem;
    pthread_mutex_t lock; /* guards the pool of idle store connections */
    struct db *idle[ADMIN_DB_POOL];
    size_t n_idle;
    struct admin_log_limit log_limit;
};

struct admin_request;
typedef void (*admin_handler_fn)(struct admin_request *req);

/* Route flags. */
#define ADMIN_PUBLIC     1u /* no authentication */
#define ADMIN_LARGE_BODY 2u /* up to ADMIN_IMPORT_MAX */

/* The pattern of one pool's settings, whose errors name the pool's own fields. */
#define ADMIN_POOL_PATTERN "/services/{service}/pools/{region}"

struct admin_route {
    const char *method;
    const char *pattern; /* under /api/v1; "{name}" matches one path segment */
    admin_handler_fn handler;
    unsigned flags;
};

extern const struct admin_route admin_routes[];
extern const size_t admin_n_routes;

/* The route for <method> and <path> (under /api/v1), with the decoded values of its {params}.
 * NULL with *<path_known> true when the path exists for other methods (405), false for 404. */
const struct admin_route *admin_route_match(const char *method, const char *path,
                                            char params[ADMIN_MAX_PARAMS][256], size_t *n_params,
                                            bool *path_known);

struct admin_request {
    struct admin *admin;
    struct MHD_Connection *conn;
    const struct admin_route *route;
    const char *method;
    char params[ADMIN_MAX_PARAMS][256];
    size_t n_params;
    char client[64]; /* peer address, for throttling and logs */
    /* Body, accumulated by the server. */
    char *body;
    size_t body_len, body_max;
    bool body_too_large;
    /* Who is asking (set by admin_authenticate): a user through a session, or a token. */
    struct db *db;
    bool authenticated, via_token;
    char user[80];    /* user or token name */
    char actor[100];  /* for the audit log: the user name, or "token:NAME" */
    char session[80]; /* the session id from the cookie, when logged in by one */
    char csrf[80];    /* the session's CSRF token */
    /* The answer. */
    bool answered;
    int status;
    char *answer; /* owned */
    size_t answer_len;
    const char *content_type;
    char set_cookie[256];
    char retry_after[24];
    char etag[32]; /* "\"VERSION\"" for a whole topology, else empty */
};

/* ---- server.c: answers ---- */

/* Answers <status> with <body> (takes the reference). */
void admin_reply_json(struct admin_request *req, int status, json_t *body);
/* Answers <status> with JSON text <text> (copied). */
void admin_reply_text(struct admin_request *req, int status, const char *text, size_t len);
/* {"error":{"field":<field or null>,"code":...,"message":"..."}}. "code" is there for the errors a
 * client branches on: "auth" (401), "stale" (412), "throttled" (429), and those a handler names. */
void admin_reply_error(struct admin_request *req, int status, const char *field, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* The same with the machine code <code> ("csrf"). */
void admin_reply_error_code(struct admin_request *req, int status, const char *code,
                            const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The answer for a db/ result <rc> with message <err>: 400 for -EINVAL (naming the field the
 * message starts with), 404, 409, 412 for -ESTALE, else 500 (logged). */
void admin_reply_db(struct admin_request *req, int rc, const char *err);
/* The same for an edit of one object whose body was the request's: a field under <prefix>
 * ("regions[", "services[") is named relative to that object ("lat", "check.path"), and a
 * duplicate by the body's "name" or "address". */
void admin_reply_db_object(struct admin_request *req, int rc, const char *err, const char *prefix);
/* The answer to a change that returns nothing: {} for <rc> 0, else as admin_reply_db. */
void admin_reply_done(struct admin_request *req, int rc, const char *err);
/* Parses the request body as a JSON object; answers 400 and returns NULL when it is not one. */
json_t *admin_body_json(struct admin_request *req);
/* The query parameter <key>, or NULL. */
const char *admin_query(struct admin_request *req, const char *key);
/* The request header <name>, or NULL. */
const char *admin_header(struct admin_request *req, const char *name);
/* Store connections from the pool. */
struct db *admin_db_acquire(struct admin *admin, char *err, size_t errlen);
void admin_db_release(struct admin *admin, struct db *db);

/* Whether a line of <kind> may be logged at <now_ms> (a monotonic clock): at most one a second
 * per kind. When it may, *<suppressed_out> is how many of that kind were held back since the
 * last one logged. Thread-safe; <l> starts zeroed with its lock initialized. */
bool admin_log_allow(struct admin_log_limit *l, const char *kind, int64_t now_ms,
                     uint64_t *suppressed_out);

/* ---- auth.c ---- */

/* Works out who sent <req> (Bearer token or session cookie) and enforces the CSRF token on
 * state-changing requests made with a cookie. Answers 401 or 403 itself and returns false when
 * the request may not go on. */
bool admin_authenticate(struct admin_request *req);

/* The login-throttling key of the client address <client> (as in req->client): "ip:ADDR" for
 * IPv4, "ip:PREFIX/64" for IPv6, so one subscriber's /64 counts as one client. */
void admin_throttle_key(const char *client, char *out, size_t outlen);

/* Whether first-run setup may be done by <client> (as in req->client): always on a loopback
 * listener (<listener_loopback>), else only from a loopback address. */
bool admin_setup_allowed(bool listener_loopback, const char *client);

void admin_setup_get(struct admin_request *req);
void admin_setup_post(struct admin_request *req);
void admin_login(struct admin_request *req);
void admin_logout(struct admin_request *req);
void admin_session_get(struct admin_request *req);
void admin_users_list(struct admin_request *req);
void admin_users_add(struct admin_request *req);
void admin_users_remove(struct admin_request *req);
void admin_users_password(struct admin_request *req);
void admin_tokens_list(struct admin_request *req);
void admin_tokens_add(struct admin_request *req);
void admin_tokens_remove(struct admin_request *req);

/* ---- topology.c ---- */

void admin_version_get(struct admin_request *req);
void admin_topology_get(struct admin_request *req);
void admin_topology_put(struct admin_request *req);
void admin_regions_list(struct admin_request *req);
void admin_regions_add(struct admin_request *req);
void admin_region_get(struct admin_request *req);
void admin_region_put(struct admin_request *req);
void admin_region_patch(struct admin_request *req);
void admin_region_remove(struct admin_request *req);
void admin_region_state(struct admin_request *req);
void admin_services_list(struct admin_request *req);
void admin_services_add(struct admin_request *req);
void admin_service_get(struct admin_request *req);
void admin_service_put(struct admin_request *req);
void admin_service_patch(struct admin_request *req);
void admin_service_remove(struct admin_request *req);
void admin_pools_list(struct admin_request *req);
void admin_pool_get(struct admin_request *req);
void admin_pool_put(struct admin_request *req);
void admin_pool_patch(struct admin_request *req);
void admin_origins_add(struct admin_request *req);
void admin_origin_get(struct admin_request *req);
void admin_origin_put(struct admin_request *req);
void admin_origin_patch(struct admin_request *req);
void admin_origin_remove(struct admin_request *req);
void admin_origin_state(struct admin_request *req);
void admin_rules_list(struct admin_request *req);
void admin_rules_add(struct admin_request *req);
void admin_rule_remove(struct admin_request *req);

/* ---- status.c ---- */

void admin_route_explain(struct admin_request *req);
void admin_health_get(struct admin_request *req);
void admin_health_history(struct admin_request *req);
void admin_audit_get(struct admin_request *req);
void admin_stats_get(struct admin_request *req);
void admin_countries_get(struct admin_request *req);
void admin_openapi_get(struct admin_request *req);

#endif

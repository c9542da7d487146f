/* db/db.h - the topology store: regions, services, pools, origins, rules, settings, audit log.
 *
 * Hides SQLite from every other module. The topology travels as the plain structs below: loaded
 * whole (db_topology_load), imported and exported whole as JSON, or edited one object at a time.
 * Every write is one IMMEDIATE transaction that validates the complete resulting topology, stores
 * it, appends an audit entry and bumps the config version, so a reader sees either the old or the
 * new topology and nothing invalid is ever stored. WAL mode makes a committed change survive a
 * crash or kill -9.
 *
 * Rows are identified by their natural keys (region and service names, origin addresses within a
 * pool); row ids are internal and change when a write rewrites the tables.
 *
 * A struct db is one SQLite connection: use it from one thread at a time; several processes and
 * connections may share the file. */
#ifndef DB_DB_H
#define DB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits that keep every decision bounded; validation refuses topologies beyond them. */
#define DB_MAX_REGIONS 256

enum db_region_state { DB_REGION_ACTIVE, DB_REGION_DRAINING, DB_REGION_DISABLED };
enum db_origin_state { DB_ORIGIN_ENABLED, DB_ORIGIN_DRAINING, DB_ORIGIN_DISABLED };
/* How a service orders its regions: by distance from the client, or in the order of its pools. */
enum db_policy { DB_POLICY_NEAREST, DB_POLICY_FAILOVER };
enum db_match { DB_MATCH_CIDR, DB_MATCH_COUNTRY, DB_MATCH_CONTINENT };
enum db_check_type { DB_CHECK_INHERIT, DB_CHECK_HTTP, DB_CHECK_HTTPS, DB_CHECK_TCP, DB_CHECK_NONE };
/* An operator's override of health checks: "auto" follows them, "up" and "down" overrule them. */
enum db_health_force { DB_FORCE_AUTO, DB_FORCE_UP, DB_FORCE_DOWN };
/* How a region that went down comes back: by itself after the hold-down, or when an operator
 * resumes it (and it has been healthy for the hold-down). */
enum db_failback { DB_FAILBACK_AUTO, DB_FAILBACK_MANUAL };

/* Health-check settings of a pool or an origin; zero or NULL fields inherit, field by field, from
 * the pool (for an origin) and then from the daemon's defaults. */
struct db_check {
    enum db_check_type type;
    char *path;   /* HTTP(S) path, starts with '/' */
    char *host;   /* Host header */
    char *expect; /* status list such as "200-399" or "200,204" */
    char *body;   /* substring the response body must contain (GET only) */
    char *method; /* "GET" (the default) or "HEAD" */
    int interval_ms, timeout_ms, rise, fall;
};

struct db_region {
    char *name;         /* [a-z0-9][a-z0-9-]*, at most 63 characters */
    char *display_name; /* free text, may be NULL */
    double lat, lon;
    enum db_region_state state;
    enum db_health_force force;
};

struct db_origin {
    char *address; /* host:port, [v6]:port or name:port */
    int weight;    /* 0..1000 */
    enum db_origin_state state;
    enum db_health_force force;
    struct db_check check;
    bool tls;          /* HTTPS to the origin */
    char *tls_name;    /* the name for SNI and the certificate check; NULL: the address's host */
    bool tls_insecure; /* accept any certificate (tls_verify false in JSON) */
};

/* The origins of one service in one region. The region serves the service while at least
 * <min_healthy> of them are usable (enabled, weighted, healthy) and their weight is at least
 * <min_weight_percent> of the weight of the pool's origins that are not disabled. */
struct db_pool {
    char *region;
    struct db_origin *origins;
    size_t n_origins;
    int min_healthy;        /* 1..1000, default 1 */
    int min_weight_percent; /* 0..100, default 0 */
    enum db_failback failback;
    int holddown_ms;       /* failback hold-down; 0: the daemon's default */
    struct db_check check; /* defaults for the pool's origins */
};

struct db_rule {
    enum db_match match;
    char *value; /* CIDR, ISO country or continent code */
    char **regions;
    size_t n_regions;
};

struct db_service {
    char *name;
    char **hosts; /* "www.example.com", "*.example.com" or "*" */
    size_t n_hosts;
    enum db_policy policy;
    bool sticky;     /* consistent hashing of the client address over a region's origins */
    char **fallback; /* regions for clients with no location, in order */
    size_t n_fallback;
    struct db_pool *pools;
    size_t n_pools;
    struct db_rule *rules; /* in order */
    size_t n_rules;
};

struct db_topology {
    int64_t version; /* the config version it was loaded at */
    struct db_region *regions;
    size_t n_regions;
    struct db_service *services;
    size_t n_services;
};

struct db_audit_entry {
    int64_t id;
    int64_t time_ms; /* Unix time */
    char *actor, *action, *object;
    char *before, *after; /* JSON text, or NULL */
};

struct db; /* opaque; owned by the caller of db_open() */

/* Opens (creating if needed) the database at <path>, enables WAL and foreign keys and applies
 * pending migrations in one transaction. Returns NULL and writes the reason into <err>. */
struct db *db_open(const char *path, char *err, size_t errlen);
void db_close(struct db *db); /* accepts NULL */

/* Current config version: increases on every committed change. Returns 0 or -EIO. */
int db_config_version(struct db *db, int64_t *version_out);
/* Schema version applied by the migrations. */
int db_schema_version(struct db *db, int *version_out);

/* Loads the whole topology consistently. The caller frees it with db_topology_free(). */
int db_topology_load(struct db *db, struct db_topology **topo_out, char *err, size_t errlen);
void db_topology_free(struct db_topology *topo); /* accepts NULL */

/* Checks every field and every reference; the message names the first offending field.
 * Returns 0 or -EINVAL. */
int db_topology_validate(const struct db_topology *topo, char *err, size_t errlen);

/* Parses a topology document (full or short form, see README) into <topo_out> and validates it.
 * Returns 0, or -EINVAL with the offending field named in <err>. */
int db_topology_from_json(const char *text, size_t len, struct db_topology **topo_out, char *err,
                          size_t errlen);
/* Canonical JSON text of <topo> (the caller frees it); export, import, export is a fixed point. */
char *db_topology_to_json(const struct db_topology *topo);

/* Replaces the whole topology with the document <text>, all or nothing. */
int db_import_json(struct db *db, const char *text, size_t len, const char *actor, char *err,
                   size_t errlen);
/* The same, but only while the stored config version is <expected> (a negative <expected>: any),
 * checked in the import's own transaction: -ESTALE when it moved on, and nothing changes. */
int db_import_json_if(struct db *db, const char *text, size_t len, int64_t expected,
                      const char *actor, char *err, size_t errlen);
/* The stored topology as canonical JSON (the caller frees it), or NULL with <err> filled. */
char *db_export_json(struct db *db, char *err, size_t errlen);

/* Object edits. Each returns 0, -EINVAL (invalid field), -ENOENT (no such object), -EEXIST
 * (already there), -EBUSY (still referenced) or -EIO, with a message in <err>. <actor> names who
 * made the change in the audit log. Inputs are copied. */
int db_region_add(struct db *db, const struct db_region *region, const char *actor, char *err,
                  size_t errlen);
int db_region_set(struct db *db, const struct db_region *region, const char *actor, char *err,
                  size_t errlen);
/* The _set_if edits: the same, but only while the stored config version is <expected> (negative:
 * any), checked in the edit's own transaction: -ESTALE when it moved on, and nothing changes. */
int db_region_set_if(struct db *db, const struct db_region *region, int64_t expected,
                     const char *actor, char *err, size_t errlen);
int db_region_remove(struct db *db, const char *name, const char *actor, char *err, size_t errlen);
/* Adds or replaces a service's own fields; pools and rules of <service> are ignored (an existing
 * service keeps its own). */
int db_service_add(struct db *db, const struct db_service *service, const char *actor, char *err,
                   size_t errlen);
int db_service_set(struct db *db, const struct db_service *service, const char *actor, char *err,
                   size_t errlen);
int db_service_set_if(struct db *db, const struct db_service *service, int64_t expected,
                      const char *actor, char *err, size_t errlen);
int db_service_remove(struct db *db, const char *name, const char *actor, char *err, size_t errlen);
/* Origins live in the pool of <service> in <region>; adding the first creates the pool and
 * removing the last removes it. */
int db_origin_add(struct db *db, const char *service, const char *region,
                  const struct db_origin *origin, const char *actor, char *err, size_t errlen);
int db_origin_set(struct db *db, const char *service, const char *region,
                  const struct db_origin *origin, const char *actor, char *err, size_t errlen);
int db_origin_set_if(struct db *db, const char *service, const char *region,
                     const struct db_origin *origin, int64_t expected, const char *actor, char *err,
                     size_t errlen);
int db_origin_remove(struct db *db, const char *service, const char *region, const char *address,
                     const char *actor, char *err, size_t errlen);
/* Appends <rule> to the rules of <service>, or removes the rule at <index> (0-based). */
int db_rule_add(struct db *db, const char *service, const struct db_rule *rule, const char *actor,
                char *err, size_t errlen);
int db_rule_remove(struct db *db, const char *service, size_t index, const char *actor, char *err,
                   size_t errlen);

/* Replaces the settings of the pool of <service> in <pool>->region (quorum, failback, hold-down,
 * check defaults); its origins stay as they are. */
int db_pool_set(struct db *db, const char *service, const struct db_pool *pool, const char *actor,
                char *err, size_t errlen);
int db_pool_set_if(struct db *db, const char *service, const struct db_pool *pool, int64_t expected,
                   const char *actor, char *err, size_t errlen);
/* An operator's "resume" of a region: lifts its health override (back to auto) and its
 * manual-failback holds in every service, so it comes back once healthy. */
int db_region_resume(struct db *db, const char *name, const char *actor, char *err, size_t errlen);

/* Settings: free-form key/value pairs for the modules (keys [a-z0-9_.-]+). */
int db_setting_get(struct db *db, const char *key, char **value_out); /* -ENOENT if unset */
int db_setting_set(struct db *db, const char *key, const char *value, const char *actor, char *err,
                   size_t errlen);

/* Audit entries, newest first, with id below <before_id> (0: from the newest). The caller frees the
 * array with db_audit_free(). */
int db_audit_list(struct db *db, int64_t before_id, size_t limit,
                  struct db_audit_entry **entries_out, size_t *n_out);
void db_audit_free(struct db_audit_entry *entries, size_t n);

/* Health as the daemon sees it. <object> is "origin SERVICE/REGION/ADDRESS" or
 * "region SERVICE/REGION". */
struct db_health_row {
    char *object;
    bool up;
    int64_t time_ms; /* since when (state) or when it changed (history) */
    char *reason;
};

/* Stores the current state of <object>; with <transition>, also appends it to the history. */
int db_health_record(struct db *db, const char *object, bool up, int64_t time_ms,
                     const char *reason, bool transition);
/* Drops the current state of <object> (NULL: of every object), one no longer configured; its
 * history stays. */
int db_health_forget(struct db *db, const char *object);
/* Current states by object, or the newest <limit> changes first. Free with db_health_free(). */
int db_health_state(struct db *db, struct db_health_row **rows_out, size_t *n_out);
int db_health_history(struct db *db, size_t limit, struct db_health_row **rows_out, size_t *n_out);
void db_health_free(struct db_health_row *rows, size_t n);

/* Manual failback: the daemon holds a region out of a service ("SERVICE/REGION") after it went
 * down until an operator resumes the region (db_region_resume). Holds are rows like health rows
 * (<up> is false); set and list them here. */
int db_failback_hold(struct db *db, const char *object, bool held, int64_t time_ms,
                     const char *reason);
int db_failback_holds(struct db *db, struct db_health_row **rows_out, size_t *n_out);

/* Names of enum values as they appear in JSON, and their parsers (return 0 or -EINVAL). */
const char *db_region_state_name(enum db_region_state state);
const char *db_origin_state_name(enum db_origin_state state);
const char *db_policy_name(enum db_policy policy);
const char *db_match_name(enum db_match match);
int db_region_state_parse(const char *name, enum db_region_state *state_out);
int db_origin_state_parse(const char *name, enum db_origin_state *state_out);
int db_policy_parse(const char *name, enum db_policy *policy_out);
const char *db_health_force_name(enum db_health_force force);
int db_health_force_parse(const char *name, enum db_health_force *force_out);
const char *db_failback_name(enum db_failback failback);
const char *db_check_type_name(enum db_check_type type); /* http https tcp none */
int db_check_type_parse(const char *name, enum db_check_type *type_out);
int db_failback_parse(const char *name, enum db_failback *failback_out);

/* Lookups in a loaded topology; NULL when absent. */
const struct db_region *db_topology_region(const struct db_topology *topo, const char *name);
const struct db_service *db_topology_service(const struct db_topology *topo, const char *name);

/* ---- admin users, sessions, API tokens and login throttling (db/auth.c) ----
 *
 * Passwords are kept as scrypt hashes, session ids and tokens as SHA-256 hashes: the store never
 * holds anything that logs its reader in. User and token changes are audited (without a hash). */

#define DB_USER_NAME_MAX 64
#define DB_PASSWORD_MIN  10
#define DB_PASSWORD_MAX  1024
#define DB_SECRET_HEX    64 /* session ids and CSRF tokens: 256 random bits in hex */
#define DB_TOKEN_PREFIX  "gslb_"
#define DB_TOKEN_LEN     (5 + DB_SECRET_HEX)

struct db_user {
    char *name;
    int64_t created_ms;
};

struct db_token {
    int64_t id;
    char *name, *created_by;
    int64_t created_ms, last_used_ms; /* last_used_ms: 0 when never used; to the minute */
};

struct db_session {
    char *user;
    char csrf[DB_SECRET_HEX + 1];
    int64_t expires_ms;
};

/* Names: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool db_user_name_valid(const char *name);
/* Adds a user with <password> (10..1024 bytes). Returns 0, -EINVAL (field named in <err>),
 * -EEXIST or -EIO. */
int db_user_add(struct db *db, const char *name, const char *password, const char *actor, char *err,
                size_t errlen);
/* The same, but only while no user exists at all (first-run setup): -EEXIST otherwise. */
int db_user_setup(struct db *db, const char *name, const char *password, char *err, size_t errlen);
/* Replaces the password and ends the user's sessions; the API tokens they created stay valid
 * (they are credentials of their own, revoked one by one). -ENOENT for an unknown user. */
int db_user_password_set(struct db *db, const char *name, const char *password, const char *actor,
                         char *err, size_t errlen);
/* The same when <actor> sets another user's password without knowing the current one (every
 * user is an administrator): audited as "user.password_reset" rather than "user.password". */
int db_user_password_reset(struct db *db, const char *name, const char *password, const char *actor,
                           char *err, size_t errlen);
/* Removes the user, their sessions and the API tokens they created (created_by <name>), each
 * revocation audited, in one transaction. -ENOENT for an unknown user. */
int db_user_remove(struct db *db, const char *name, const char *actor, char *err, size_t errlen);
/* The same, but -EBUSY when <name> is the last user, checked inside the removal's transaction
 * (the admin API: nobody could log in afterwards). */
int db_user_remove_keep_one(struct db *db, const char *name, const char *actor, char *err,
                            size_t errlen);
int db_user_count(struct db *db, int64_t *n_out);
int db_user_list(struct db *db, struct db_user **users_out, size_t *n_out);
void db_user_free(struct db_user *users, size_t n);
/* 0 when <password> is <name>'s, -EACCES when not or when there is no such user (taking as
 * long either way), -EIO. */
int db_user_verify(struct db *db, const char *name, const char *password);

/* A new session of <user> for <ttl_ms>: writes its id (the cookie value) and CSRF token, both
 * DB_SECRET_HEX hex digits. Only the id's hash is stored. */
int db_session_create(struct db *db, const char *user, int64_t ttl_ms,
                      char id_out[DB_SECRET_HEX + 1], char csrf_out[DB_SECRET_HEX + 1]);
/* The live session with <id>: 0, -ENOENT (unknown or expired) or -EIO. Free with
 * db_session_fini(). */
int db_session_get(struct db *db, const char *id, struct db_session *out);
void db_session_fini(struct db_session *session);
int db_session_delete(struct db *db, const char *id);

/* A new API token named <name>: writes it ("gslb_" and 64 hex digits) into <token_out>, shown
 * this once; only its hash is kept. -EINVAL, -EEXIST (name taken) or -EIO. */
int db_token_add(struct db *db, const char *name, const char *actor,
                 char token_out[DB_TOKEN_LEN + 1], int64_t *id_out, char *err, size_t errlen);
int db_token_list(struct db *db, struct db_token **tokens_out, size_t *n_out);
void db_token_free(struct db_token *tokens, size_t n);
/* Revokes the token with <id>: -ENOENT when there is none. */
int db_token_remove(struct db *db, int64_t id, const char *actor, char *err, size_t errlen);
/* Whose is <token>: 0 with its name in <name_out> (the caller frees it), -ENOENT or -EIO.
 * Records the use (to the minute). */
int db_token_check(struct db *db, const char *token, char **name_out);

/* Login throttling by <key> (e.g. "user:NAME", "ip:ADDR"): -EAGAIN with the time left while
 * locked out, else 0. */
int db_login_throttled(struct db *db, const char *key, int64_t *retry_after_ms_out);
/* Counts a failure; from the <threshold>th in a row on, locks <key> out for <base_ms>, doubling
 * with each further failure up to <max_ms>. */
int db_login_failed(struct db *db, const char *key, int threshold, int64_t base_ms, int64_t max_ms);
int db_login_succeeded(struct db *db, const char *key);

/* ---- single topology objects as JSON, for the admin API (db/json.c) ---- */

/* Parse one region, service, origin or rule in the shape the topology document gives it; fields
 * are named from the object ("lat", "check.path"). Only the shape is checked here: the edit
 * functions validate the result against the whole topology. Free with the matching _fini. A
 * region may not carry "origins" (the short form of the document). */
int db_region_from_json(const char *text, size_t len, struct db_region *out, char *err,
                        size_t errlen);
int db_service_from_json(const char *text, size_t len, struct db_service *out, char *err,
                         size_t errlen);
int db_origin_from_json(const char *text, size_t len, struct db_origin *out, char *err,
                        size_t errlen);
int db_rule_from_json(const char *text, size_t len, struct db_rule *out, char *err, size_t errlen);
/* A pool's own settings (region, min_healthy, min_weight_percent, failback, holddown_ms, check),
 * for db_pool_set; "origins" is refused. */
int db_pool_from_json(const char *text, size_t len, struct db_pool *out, char *err, size_t errlen);
void db_region_fini(struct db_region *region);
void db_service_fini(struct db_service *service);
void db_origin_fini(struct db_origin *origin);
void db_rule_fini(struct db_rule *rule);
void db_pool_fini(struct db_pool *pool);
/* Compact JSON of one object, as in the topology document (the caller frees it). */
char *db_region_to_json(const struct db_region *region);
char *db_service_to_json(const struct db_service *service);
char *db_origin_to_json(const struct db_origin *origin);
char *db_rule_to_json(const struct db_rule *rule);

#endif

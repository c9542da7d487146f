/* db/store.c - the SQLite side of db/: schema migrations, transactions, whole-topology reads and
 * writes, the config version, settings and the audit log.
 *
 * Writers use BEGIN IMMEDIATE, so two writers (gslbctl and the admin console, say) serialize on
 * the write lock instead of failing at commit; a busy timeout covers the wait. synchronous=FULL
 * in WAL mode makes a commit durable against power loss too, which costs nothing at the rate
 * operators make changes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "db/db_int.h"

#define BUSY_TIMEOUT_MS 10000

/* Migration N takes the schema from version N to N + 1. Append only; never edit a shipped one. */
static const char *const migrations[] = {
    "CREATE TABLE config_version (id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  version INTEGER NOT NULL);"
    "INSERT INTO config_version VALUES (1, 0);"
    "CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, display_name TEXT,"
    "  lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),"
    "  lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'draining', 'disabled')));"
    "CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  policy TEXT NOT NULL CHECK (policy IN ('nearest', 'failover')),"
    "  sticky INTEGER NOT NULL CHECK (sticky IN (0, 1)));"
    "CREATE TABLE service_hosts ("
    "  service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL, host TEXT NOT NULL UNIQUE, PRIMARY KEY (service_id, position));"
    "CREATE TABLE service_fallback ("
    "  service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL, region_id INTEGER NOT NULL REFERENCES regions (id),"
    "  PRIMARY KEY (service_id, position));"
    "CREATE TABLE pools (id INTEGER PRIMARY KEY,"
    "  service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,"
    "  region_id INTEGER NOT NULL REFERENCES regions (id), position INTEGER NOT NULL,"
    "  UNIQUE (service_id, region_id));"
    "CREATE TABLE origins (id INTEGER PRIMARY KEY,"
    "  pool_id INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL, address TEXT NOT NULL,"
    "  weight INTEGER NOT NULL CHECK (weight BETWEEN 0 AND 1000),"
    "  state TEXT NOT NULL CHECK (state IN ('enabled', 'draining', 'disabled')),"
    "  check_type INTEGER NOT NULL DEFAULT 0, check_path TEXT, check_host TEXT, check_expect TEXT,"
    "  check_body TEXT, check_interval_ms INTEGER NOT NULL DEFAULT 0,"
    "  check_timeout_ms INTEGER NOT NULL DEFAULT 0, check_rise INTEGER NOT NULL DEFAULT 0,"
    "  check_fall INTEGER NOT NULL DEFAULT 0, UNIQUE (pool_id, address));"
    "CREATE TABLE rules (id INTEGER PRIMARY KEY,"
    "  service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  match TEXT NOT NULL CHECK (match IN ('cidr', 'country', 'continent')),"
    "  value TEXT NOT NULL, UNIQUE (service_id, position));"
    "CREATE TABLE rule_regions (rule_id INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL, region_id INTEGER NOT NULL REFERENCES regions (id),"
    "  PRIMARY KEY (rule_id, position));"
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL, before TEXT, after TEXT,"
    "  config_version INTEGER NOT NULL);",
    /* 1 -> 2: health state as the daemon last saw it, and a bounded history of changes. */
    "CREATE TABLE health_state (object TEXT PRIMARY KEY, up INTEGER NOT NULL,"
    "  since_ms INTEGER NOT NULL, reason TEXT NOT NULL);"
    "CREATE TABLE health_history (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
    "  object TEXT NOT NULL, up INTEGER NOT NULL, reason TEXT NOT NULL);",
    /* 2 -> 3: operators' health overrides. */
    "ALTER TABLE regions ADD COLUMN health TEXT NOT NULL DEFAULT 'auto'"
    "  CHECK (health IN ('auto', 'up', 'down'));"
    "ALTER TABLE origins ADD COLUMN health TEXT NOT NULL DEFAULT 'auto'"
    "  CHECK (health IN ('auto', 'up', 'down'));",
    /* 3 -> 4: per-pool quorum, failback and check defaults; regions held out by manual failback. */
    "ALTER TABLE pools ADD COLUMN min_healthy INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE pools ADD COLUMN min_weight_percent INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN failback TEXT NOT NULL DEFAULT 'auto'"
    "  CHECK (failback IN ('auto', 'manual'));"
    "ALTER TABLE pools ADD COLUMN holddown_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN check_type INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN check_path TEXT;"
    "ALTER TABLE pools ADD COLUMN check_host TEXT;"
    "ALTER TABLE pools ADD COLUMN check_expect TEXT;"
    "ALTER TABLE pools ADD COLUMN check_body TEXT;"
    "ALTER TABLE pools ADD COLUMN check_interval_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN check_timeout_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN check_rise INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pools ADD COLUMN check_fall INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE failback_holds (object TEXT PRIMARY KEY, since_ms INTEGER NOT NULL,"
    "  reason TEXT NOT NULL);",
    /* admin console: users, sessions, API tokens, login throttling (IF NOT EXISTS: this entry was
     * written alongside another migration, so either order leaves the same schema). */
    "CREATE TABLE IF NOT EXISTS admin_users (name TEXT PRIMARY KEY, password TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS admin_sessions (id_hash TEXT PRIMARY KEY,"
    "  user TEXT NOT NULL REFERENCES admin_users (name) ON DELETE CASCADE, csrf TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS api_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL UNIQUE, created_by TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, last_used_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS login_failures (key TEXT PRIMARY KEY, failures INTEGER NOT NULL,"
    "  last_ms INTEGER NOT NULL, locked_until_ms INTEGER NOT NULL);",
    /* 5 -> 6: the HTTP method of checks (GET or HEAD). */
    "ALTER TABLE origins ADD COLUMN check_method TEXT;"
    "ALTER TABLE pools ADD COLUMN check_method TEXT;",
    /* 6 -> 7: HTTPS to origins. */
    "ALTER TABLE origins ADD COLUMN tls INTEGER NOT NULL DEFAULT 0 CHECK (tls IN (0, 1));"
    "ALTER TABLE origins ADD COLUMN tls_name TEXT;"
    "ALTER TABLE origins ADD COLUMN tls_insecure INTEGER NOT NULL DEFAULT 0"
    "  CHECK (tls_insecure IN (0, 1));",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int sql_fail(struct db *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "db: %s: %s", what, sqlite3_errmsg(db->conn));
    return -EIO;
}

static int exec(struct db *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "db: %s", msg ? msg : sqlite3_errmsg(db->conn));
    sqlite3_free(msg);
    return -EIO;
}

static int prepare(struct db *db, const char *sql, sqlite3_stmt **stmt, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(db->conn, sql, -1, stmt, NULL) == SQLITE_OK)
        return 0;
    return sql_fail(db, "prepare", err, errlen);
}

/* Runs a statement that returns no rows, then resets it for the next bindings. */
static int step_done(struct db *db, sqlite3_stmt *stmt, char *err, size_t errlen)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE ? 0 : sql_fail(db, "write", err, errlen);
}

static void bind_text_or_null(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text)
        sqlite3_bind_text(stmt, index, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, index);
}

static char *column_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t ? xstrdup((const char *)t) : NULL;
}

int db_tx_begin(struct db *db, bool write, char *err, size_t errlen)
{
    return exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN", err, errlen);
}

int db_tx_commit(struct db *db, char *err, size_t errlen)
{
    return exec(db, "COMMIT", err, errlen);
}

void db_tx_rollback(struct db *db)
{
    if (!sqlite3_get_autocommit(db->conn))
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
}

static int migrate(struct db *db, char *err, size_t errlen)
{
    int version = 0, rc;
    if ((rc = exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", err,
                   errlen)) ||
        (rc = db_tx_begin(db, true, err, errlen)))
        return rc;
    if ((rc = db_schema_version(db, &version)) != 0) {
        sql_fail(db, "schema_version", err, errlen);
        goto out;
    }
    if (version > N_MIGRATIONS) {
        snprintf(err, errlen, "db: %s has schema version %d, newer than this gslb knows (%d)",
                 db->path, version, N_MIGRATIONS);
        rc = -EINVAL;
        goto out;
    }
    for (int v = version; v < N_MIGRATIONS; v++) {
        if ((rc = exec(db, migrations[v], err, errlen)) != 0)
            goto out;
    }
    if (version < N_MIGRATIONS) {
        char sql[96];
        snprintf(sql, sizeof(sql),
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
                 N_MIGRATIONS);
        if ((rc = exec(db, sql, err, errlen)) != 0)
            goto out;
    }
    rc = db_tx_commit(db, err, errlen);
out:
    if (rc != 0)
        db_tx_rollback(db);
    return rc;
}

/* Switching a new file to WAL mode needs an exclusive lock, and SQLite returns SQLITE_BUSY without
 * calling the busy handler while another process opens the same new file, so wait here instead,
 * as long as the busy timeout. */
static bool wal_enable(struct db *db)
{
    for (int waited_ms = 0;; waited_ms += 10) {
        sqlite3_stmt *stmt = NULL;
        int step = SQLITE_ERROR;
        if (sqlite3_prepare_v2(db->conn, "PRAGMA journal_mode=WAL", -1, &stmt, NULL) == SQLITE_OK)
            step = sqlite3_step(stmt);
        bool wal =
            step == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(stmt, 0), "wal") == 0;
        sqlite3_finalize(stmt);
        if (wal || step != SQLITE_BUSY || waited_ms >= BUSY_TIMEOUT_MS)
            return wal;
        sqlite3_sleep(10);
    }
}

struct db *db_open(const char *path, char *err, size_t errlen)
{
    struct db *db = xcalloc(1, sizeof(*db));
    db->path = xstrdup(path);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db->conn, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "db: cannot open %s: %s", path,
                 db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db->conn, BUSY_TIMEOUT_MS);
    if (!wal_enable(db)) {
        snprintf(err, errlen, "db: %s: cannot switch to WAL mode: %s", path,
                 sqlite3_errmsg(db->conn));
        goto fail;
    }
    if (exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL", err, errlen) != 0 ||
        migrate(db, err, errlen) != 0)
        goto fail;
    return db;
fail:
    db_close(db);
    return NULL;
}

void db_close(struct db *db)
{
    if (db == NULL)
        return;
    sqlite3_close(db->conn);
    free(db->path);
    free(db);
}

static int int64_query(struct db *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -EIO;
    if (sqlite3_prepare_v2(db->conn, sql, -1, &stmt, NULL) == SQLITE_OK) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_ROW) {
            *out = sqlite3_column_int64(stmt, 0);
            rc = 0;
        } else if (step == SQLITE_DONE) {
            rc = -ENOENT;
        }
    }
    sqlite3_finalize(stmt);
    return rc;
}

int db_config_version(struct db *db, int64_t *version_out)
{
    return int64_query(db, "SELECT version FROM config_version WHERE id = 1", version_out);
}

int db_schema_version(struct db *db, int *version_out)
{
    int64_t v = 0;
    int rc = int64_query(db, "SELECT max(version) FROM schema_version", &v);
    *version_out = (int)v; /* max() over no rows is NULL, read as 0 */
    return rc;
}

/* ---- whole-topology read ---- */

static int read_strv(struct db *db, sqlite3_stmt *stmt, int64_t id, char ***v_out, size_t *n_out,
                     char *err, size_t errlen)
{
    size_t cap = 0;
    int step;
    sqlite3_bind_int64(stmt, 1, id);
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n_out == cap) {
            cap = cap ? cap * 2 : 4;
            *v_out = xreallocarray(*v_out, cap, sizeof(char *));
        }
        (*v_out)[(*n_out)++] = column_text(stmt, 0);
    }
    sqlite3_reset(stmt);
    return step == SQLITE_DONE ? 0 : sql_fail(db, "read", err, errlen);
}

/* The ten check_* columns, from column <col>. */
#define CHECK_COLUMNS                                                                              \
    "check_type, check_path, check_host, check_expect, check_body, check_interval_ms, "            \
    "check_timeout_ms, check_rise, check_fall, check_method"

static void check_read(sqlite3_stmt *stmt, int col, struct db_check *c)
{
    c->type = (enum db_check_type)sqlite3_column_int(stmt, col);
    c->path = column_text(stmt, col + 1);
    c->host = column_text(stmt, col + 2);
    c->expect = column_text(stmt, col + 3);
    c->body = column_text(stmt, col + 4);
    c->interval_ms = sqlite3_column_int(stmt, col + 5);
    c->timeout_ms = sqlite3_column_int(stmt, col + 6);
    c->rise = sqlite3_column_int(stmt, col + 7);
    c->fall = sqlite3_column_int(stmt, col + 8);
    c->method = column_text(stmt, col + 9);
}

static void check_bind(sqlite3_stmt *stmt, int param, const struct db_check *c)
{
    sqlite3_bind_int(stmt, param, (int)c->type);
    bind_text_or_null(stmt, param + 1, c->path);
    bind_text_or_null(stmt, param + 2, c->host);
    bind_text_or_null(stmt, param + 3, c->expect);
    bind_text_or_null(stmt, param + 4, c->body);
    sqlite3_bind_int(stmt, param + 5, c->interval_ms);
    sqlite3_bind_int(stmt, param + 6, c->timeout_ms);
    sqlite3_bind_int(stmt, param + 7, c->rise);
    sqlite3_bind_int(stmt, param + 8, c->fall);
    bind_text_or_null(stmt, param + 9, c->method);
}

static void origin_read(sqlite3_stmt *stmt, struct db_origin *o)
{
    o->address = column_text(stmt, 0);
    o->weight = sqlite3_column_int(stmt, 1);
    db_origin_state_parse((const char *)sqlite3_column_text(stmt, 2), &o->state);
    db_health_force_parse((const char *)sqlite3_column_text(stmt, 3), &o->force);
    o->tls = sqlite3_column_int(stmt, 4) != 0;
    o->tls_name = column_text(stmt, 5);
    o->tls_insecure = sqlite3_column_int(stmt, 6) != 0;
    check_read(stmt, 7, &o->check);
}

static void pool_read(sqlite3_stmt *stmt, struct db_pool *pool)
{
    pool->region = column_text(stmt, 1);
    pool->min_healthy = sqlite3_column_int(stmt, 2);
    pool->min_weight_percent = sqlite3_column_int(stmt, 3);
    db_failback_parse((const char *)sqlite3_column_text(stmt, 4), &pool->failback);
    pool->holddown_ms = sqlite3_column_int(stmt, 5);
    check_read(stmt, 6, &pool->check);
}

enum read_stmt {
    RS_REGIONS,
    RS_SERVICES,
    RS_HOSTS,
    RS_FALLBACK,
    RS_POOLS,
    RS_ORIGINS,
    RS_RULES,
    RS_RULE_REGIONS,
    RS_COUNT
};

static const char *const read_sql[RS_COUNT] = {
    "SELECT name, display_name, lat, lon, state, health FROM regions ORDER BY id",
    "SELECT id, name, policy, sticky FROM services ORDER BY id",
    "SELECT host FROM service_hosts WHERE service_id = ? ORDER BY position",
    "SELECT r.name FROM service_fallback f JOIN regions r ON r.id = f.region_id"
    "  WHERE f.service_id = ? ORDER BY f.position",
    "SELECT p.id, r.name, p.min_healthy, p.min_weight_percent, p.failback, p.holddown_ms,"
    "  p." CHECK_COLUMNS " FROM pools p JOIN regions r ON r.id = p.region_id"
    "  WHERE p.service_id = ? ORDER BY p.position",
    "SELECT address, weight, state, health, tls, tls_name, tls_insecure, " CHECK_COLUMNS
    "  FROM origins WHERE pool_id = ? ORDER BY position",
    "SELECT id, match, value FROM rules WHERE service_id = ? ORDER BY position",
    "SELECT r.name FROM rule_regions x JOIN regions r ON r.id = x.region_id"
    "  WHERE x.rule_id = ? ORDER BY x.position",
};

/* Reads the pools and rules of the service with row <id>. */
static int service_children_read(struct db *db, sqlite3_stmt **st, int64_t id, struct db_service *s,
                                 char *err, size_t errlen)
{
    int rc, step;
    if ((rc = read_strv(db, st[RS_HOSTS], id, &s->hosts, &s->n_hosts, err, errlen)) ||
        (rc = read_strv(db, st[RS_FALLBACK], id, &s->fallback, &s->n_fallback, err, errlen)))
        return rc;
    sqlite3_bind_int64(st[RS_POOLS], 1, id);
    while ((step = sqlite3_step(st[RS_POOLS])) == SQLITE_ROW) {
        s->pools = xreallocarray(s->pools, s->n_pools + 1, sizeof(*s->pools));
        struct db_pool *pool = memset(&s->pools[s->n_pools++], 0, sizeof(*pool));
        pool_read(st[RS_POOLS], pool);
        sqlite3_bind_int64(st[RS_ORIGINS], 1, sqlite3_column_int64(st[RS_POOLS], 0));
        while (sqlite3_step(st[RS_ORIGINS]) == SQLITE_ROW) {
            pool->origins =
                xreallocarray(pool->origins, pool->n_origins + 1, sizeof(*pool->origins));
            origin_read(st[RS_ORIGINS],
                        memset(&pool->origins[pool->n_origins++], 0, sizeof(struct db_origin)));
        }
        sqlite3_reset(st[RS_ORIGINS]);
    }
    sqlite3_reset(st[RS_POOLS]);
    if (step != SQLITE_DONE)
        return sql_fail(db, "read pools", err, errlen);
    sqlite3_bind_int64(st[RS_RULES], 1, id);
    while ((step = sqlite3_step(st[RS_RULES])) == SQLITE_ROW) {
        s->rules = xreallocarray(s->rules, s->n_rules + 1, sizeof(*s->rules));
        struct db_rule *rule = memset(&s->rules[s->n_rules++], 0, sizeof(*rule));
        rule->match = !strcmp((const char *)sqlite3_column_text(st[RS_RULES], 1), "cidr")
                          ? DB_MATCH_CIDR
                      : !strcmp((const char *)sqlite3_column_text(st[RS_RULES], 1), "country")
                          ? DB_MATCH_COUNTRY
                          : DB_MATCH_CONTINENT;
        rule->value = column_text(st[RS_RULES], 2);
        rc = read_strv(db, st[RS_RULE_REGIONS], sqlite3_column_int64(st[RS_RULES], 0),
                       &rule->regions, &rule->n_regions, err, errlen);
        if (rc != 0)
            break;
    }
    sqlite3_reset(st[RS_RULES]);
    return rc ? rc : step == SQLITE_DONE ? 0 : sql_fail(db, "read rules", err, errlen);
}

int db_topology_read(struct db *db, struct db_topology **topo_out, char *err, size_t errlen)
{
    sqlite3_stmt *st[RS_COUNT] = {0};
    struct db_topology *topo = xcalloc(1, sizeof(*topo));
    int rc = 0, step;

    for (int i = 0; i < RS_COUNT && rc == 0; i++)
        rc = prepare(db, read_sql[i], &st[i], err, errlen);
    if (rc != 0 || (rc = db_config_version(db, &topo->version)) != 0) {
        rc = rc ? rc : sql_fail(db, "config version", err, errlen);
        goto out;
    }
    while ((step = sqlite3_step(st[RS_REGIONS])) == SQLITE_ROW) {
        topo->regions = xreallocarray(topo->regions, topo->n_regions + 1, sizeof(*topo->regions));
        struct db_region *r = &topo->regions[topo->n_regions++];
        r->name = column_text(st[RS_REGIONS], 0);
        r->display_name = column_text(st[RS_REGIONS], 1);
        r->lat = sqlite3_column_double(st[RS_REGIONS], 2);
        r->lon = sqlite3_column_double(st[RS_REGIONS], 3);
        db_region_state_parse((const char *)sqlite3_column_text(st[RS_REGIONS], 4), &r->state);
        db_health_force_parse((const char *)sqlite3_column_text(st[RS_REGIONS], 5), &r->force);
    }
    if (step != SQLITE_DONE) {
        rc = sql_fail(db, "read regions", err, errlen);
        goto out;
    }
    while (rc == 0 && (step = sqlite3_step(st[RS_SERVICES])) == SQLITE_ROW) {
        topo->services =
            xreallocarray(topo->services, topo->n_services + 1, sizeof(*topo->services));
        struct db_service *s = memset(&topo->services[topo->n_services++], 0, sizeof(*s));
        s->name = column_text(st[RS_SERVICES], 1);
        db_policy_parse((const char *)sqlite3_column_text(st[RS_SERVICES], 2), &s->policy);
        s->sticky = sqlite3_column_int(st[RS_SERVICES], 3) != 0;
        rc =
            service_children_read(db, st, sqlite3_column_int64(st[RS_SERVICES], 0), s, err, errlen);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = sql_fail(db, "read services", err, errlen);
out:
    for (int i = 0; i < RS_COUNT; i++)
        sqlite3_finalize(st[i]);
    if (rc == 0)
        *topo_out = topo;
    else
        db_topology_free(topo);
    return rc;
}

int db_topology_load(struct db *db, struct db_topology **topo_out, char *err, size_t errlen)
{
    int rc = db_tx_begin(db, false, err, errlen);
    if (rc == 0)
        rc = db_topology_read(db, topo_out, err, errlen);
    if (rc == 0)
        rc = db_tx_commit(db, err, errlen);
    db_tx_rollback(db);
    return rc;
}

/* ---- whole-topology write ---- */

enum write_stmt {
    WS_REGION,
    WS_SERVICE,
    WS_HOST,
    WS_FALLBACK,
    WS_POOL,
    WS_ORIGIN,
    WS_RULE,
    WS_RULE_REGION,
    WS_COUNT
};

static const char *const write_sql[WS_COUNT] = {
    "INSERT INTO regions (name, display_name, lat, lon, state, health) VALUES (?, ?, ?, ?, ?, ?)",
    "INSERT INTO services (name, policy, sticky) VALUES (?, ?, ?)",
    "INSERT INTO service_hosts (service_id, position, host) VALUES (?, ?, ?)",
    "INSERT INTO service_fallback (service_id, position, region_id)"
    "  SELECT ?, ?, id FROM regions WHERE name = ?",
    "INSERT INTO pools (service_id, position, region_id, min_healthy, min_weight_percent, failback,"
    "  holddown_ms, " CHECK_COLUMNS ")"
    "  SELECT ?1, ?2, id, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17"
    "  FROM regions WHERE name = ?3",
    "INSERT INTO origins (pool_id, position, address, weight, state, health, tls, tls_name,"
    "  tls_insecure, " CHECK_COLUMNS
    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO rules (service_id, position, match, value) VALUES (?, ?, ?, ?)",
    "INSERT INTO rule_regions (rule_id, position, region_id)"
    "  SELECT ?, ?, id FROM regions WHERE name = ?",
};

/* Inserts (<owner>, position, <names>[i]) rows with <stmt>. */
static int write_list(struct db *db, sqlite3_stmt *stmt, int64_t owner, char *const *names,
                      size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(stmt, 1, owner);
        sqlite3_bind_int64(stmt, 2, (int64_t)i);
        sqlite3_bind_text(stmt, 3, names[i], -1, SQLITE_TRANSIENT);
        int rc = step_done(db, stmt, err, errlen);
        if (rc == 0 && sqlite3_changes(db->conn) != 1) {
            snprintf(err, errlen, "db: no region named '%s'", names[i]);
            rc = -EINVAL;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int origin_write(struct db *db, sqlite3_stmt *stmt, int64_t pool_id, size_t position,
                        const struct db_origin *o, char *err, size_t errlen)
{
    sqlite3_bind_int64(stmt, 1, pool_id);
    sqlite3_bind_int64(stmt, 2, (int64_t)position);
    sqlite3_bind_text(stmt, 3, o->address, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt, 4, o->weight);
    sqlite3_bind_text(stmt, 5, db_origin_state_name(o->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, db_health_force_name(o->force), -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, o->tls);
    bind_text_or_null(stmt, 8, o->tls_name);
    sqlite3_bind_int(stmt, 9, o->tls_insecure);
    check_bind(stmt, 10, &o->check);
    return step_done(db, stmt, err, errlen);
}

static int service_write(struct db *db, sqlite3_stmt **st, const struct db_service *s, char *err,
                         size_t errlen)
{
    int rc;
    sqlite3_bind_text(st[WS_SERVICE], 1, s->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st[WS_SERVICE], 2, db_policy_name(s->policy), -1, SQLITE_STATIC);
    sqlite3_bind_int(st[WS_SERVICE], 3, s->sticky);
    if ((rc = step_done(db, st[WS_SERVICE], err, errlen)))
        return rc;
    int64_t sid = sqlite3_last_insert_rowid(db->conn);
    if ((rc = write_list(db, st[WS_HOST], sid, s->hosts, s->n_hosts, err, errlen)) ||
        (rc = write_list(db, st[WS_FALLBACK], sid, s->fallback, s->n_fallback, err, errlen)))
        return rc;
    for (size_t i = 0; i < s->n_pools; i++) {
        const struct db_pool *pool = &s->pools[i];
        sqlite3_bind_int64(st[WS_POOL], 1, sid);
        sqlite3_bind_int64(st[WS_POOL], 2, (int64_t)i);
        sqlite3_bind_text(st[WS_POOL], 3, pool->region, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st[WS_POOL], 4, pool->min_healthy);
        sqlite3_bind_int(st[WS_POOL], 5, pool->min_weight_percent);
        sqlite3_bind_text(st[WS_POOL], 6, db_failback_name(pool->failback), -1, SQLITE_STATIC);
        sqlite3_bind_int(st[WS_POOL], 7, pool->holddown_ms);
        check_bind(st[WS_POOL], 8, &pool->check);
        if ((rc = step_done(db, st[WS_POOL], err, errlen)))
            return rc;
        int64_t pid = sqlite3_last_insert_rowid(db->conn);
        for (size_t j = 0; j < pool->n_origins; j++) {
            if ((rc = origin_write(db, st[WS_ORIGIN], pid, j, &pool->origins[j], err, errlen)))
                return rc;
        }
    }
    for (size_t i = 0; i < s->n_rules; i++) {
        const struct db_rule *rule = &s->rules[i];
        sqlite3_bind_int64(st[WS_RULE], 1, sid);
        sqlite3_bind_int64(st[WS_RULE], 2, (int64_t)i);
        sqlite3_bind_text(st[WS_RULE], 3, db_match_name(rule->match), -1, SQLITE_STATIC);
        sqlite3_bind_text(st[WS_RULE], 4, rule->value, -1, SQLITE_TRANSIENT);
        if ((rc = step_done(db, st[WS_RULE], err, errlen)) ||
            (rc = write_list(db, st[WS_RULE_REGION], sqlite3_last_insert_rowid(db->conn),
                             rule->regions, rule->n_regions, err, errlen)))
            return rc;
    }
    return 0;
}

int db_topology_write(struct db *db, const struct db_topology *topo, char *err, size_t errlen)
{
    sqlite3_stmt *st[WS_COUNT] = {0};
    int rc = exec(db, "DELETE FROM services; DELETE FROM regions", err, errlen);

    for (int i = 0; i < WS_COUNT && rc == 0; i++)
        rc = prepare(db, write_sql[i], &st[i], err, errlen);
    for (size_t i = 0; rc == 0 && i < topo->n_regions; i++) {
        const struct db_region *r = &topo->regions[i];
        sqlite3_bind_text(st[WS_REGION], 1, r->name, -1, SQLITE_TRANSIENT);
        bind_text_or_null(st[WS_REGION], 2, r->display_name);
        sqlite3_bind_double(st[WS_REGION], 3, r->lat);
        sqlite3_bind_double(st[WS_REGION], 4, r->lon);
        sqlite3_bind_text(st[WS_REGION], 5, db_region_state_name(r->state), -1, SQLITE_STATIC);
        sqlite3_bind_text(st[WS_REGION], 6, db_health_force_name(r->force), -1, SQLITE_STATIC);
        rc = step_done(db, st[WS_REGION], err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < topo->n_services; i++)
        rc = service_write(db, st, &topo->services[i], err, errlen);
    for (int i = 0; i < WS_COUNT; i++)
        sqlite3_finalize(st[i]);
    return rc;
}

/* ---- change bookkeeping, settings, audit ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int db_change_record(struct db *db, const char *actor, const char *action, const char *object,
                     const char *before, const char *after, char *err, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int64_t version = 0;
    int rc;
    if ((rc = exec(db, "UPDATE config_version SET version = version + 1 WHERE id = 1", err,
                   errlen)) ||
        (rc = db_config_version(db, &version) ? sql_fail(db, "config version", err, errlen) : 0) ||
        (rc = prepare(db,
                      "INSERT INTO audit (time_ms, actor, action, object, before, after,"
                      " config_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      &stmt, err, errlen)))
        goto out;
    sqlite3_bind_int64(stmt, 1, now_ms());
    sqlite3_bind_text(stmt, 2, actor ? actor : "unknown", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, action, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, object, -1, SQLITE_TRANSIENT);
    bind_text_or_null(stmt, 5, before);
    bind_text_or_null(stmt, 6, after);
    sqlite3_bind_int64(stmt, 7, version);
    rc = step_done(db, stmt, err, errlen);
out:
    sqlite3_finalize(stmt);
    return rc;
}

int db_setting_get(struct db *db, const char *key, char **value_out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -EIO;
    if (sqlite3_prepare_v2(db->conn, "SELECT value FROM settings WHERE key = ?", -1, &stmt, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(stmt);
        if (step == SQLITE_ROW)
            *value_out = column_text(stmt, 0);
        rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -ENOENT : -EIO;
    }
    sqlite3_finalize(stmt);
    return rc;
}

static bool setting_key_is_valid(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > 100)
        return false;
    return strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

int db_setting_set(struct db *db, const char *key, const char *value, const char *actor, char *err,
                   size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    char *before = NULL;
    int rc;
    if (!setting_key_is_valid(key)) {
        snprintf(err, errlen, "settings.key: '%s' must match [a-z0-9_.-]+", key);
        return -EINVAL;
    }
    if ((rc = db_tx_begin(db, true, err, errlen)))
        return rc;
    rc = db_setting_get(db, key, &before);
    if (rc == -EIO ||
        (rc = prepare(db, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", &stmt, err,
                      errlen)))
        goto out;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, value, -1, SQLITE_TRANSIENT);
    if ((rc = step_done(db, stmt, err, errlen)) ||
        (rc = db_change_record(db, actor, "setting.set", key, before, value, err, errlen)))
        goto out;
    rc = db_tx_commit(db, err, errlen);
out:
    sqlite3_finalize(stmt);
    free(before);
    db_tx_rollback(db);
    return rc;
}

/* Health rows are written by the daemon's prober, not by operators: no config version bump and
 * no audit entry. The history keeps the newest 10,000 changes. */
int db_health_record(struct db *db, const char *object, bool up, int64_t time_ms,
                     const char *reason, bool transition)
{
    static const char *const sql[] = {
        "INSERT OR REPLACE INTO health_state (object, up, since_ms, reason) VALUES (?, ?, ?, ?)",
        "INSERT INTO health_history (time_ms, object, up, reason) VALUES (?3, ?1, ?2, ?4)",
    };
    char err[256];
    int rc = db_tx_begin(db, true, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < (transition ? 2u : 1u); i++) {
        sqlite3_stmt *stmt = NULL;
        if ((rc = prepare(db, sql[i], &stmt, err, sizeof(err))) == 0) {
            sqlite3_bind_text(stmt, 1, object, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(stmt, 2, up);
            sqlite3_bind_int64(stmt, 3, time_ms);
            sqlite3_bind_text(stmt, 4, reason, -1, SQLITE_TRANSIENT);
            rc = step_done(db, stmt, err, sizeof(err));
        }
        sqlite3_finalize(stmt);
    }
    if (rc == 0 && transition)
        rc = exec(db,
                  "DELETE FROM health_history WHERE id <= (SELECT max(id) FROM health_history) - "
                  "10000",
                  err, sizeof(err));
    if (rc == 0)
        rc = db_tx_commit(db, err, sizeof(err));
    db_tx_rollback(db);
    return rc;
}

int db_health_forget(struct db *db, const char *object)
{
    char err[256];
    sqlite3_stmt *stmt = NULL;
    int rc = prepare(
        db, object ? "DELETE FROM health_state WHERE object = ?" : "DELETE FROM health_state",
        &stmt, err, sizeof(err));
    if (rc == 0) {
        if (object)
            sqlite3_bind_text(stmt, 1, object, -1, SQLITE_TRANSIENT);
        rc = step_done(db, stmt, err, sizeof(err));
    }
    sqlite3_finalize(stmt);
    return rc;
}

void db_items_free(void *items, size_t n, size_t size, db_item_fini_fn item_fini)
{
    for (size_t i = 0; i < n; i++)
        item_fini((char *)items + i * size);
    free(items);
}

int db_rows_read(sqlite3_stmt *stmt, size_t size, db_row_read_fn row_read,
                 db_item_fini_fn item_fini, void **items_out, size_t *n_out)
{
    char *items = NULL;
    size_t n = 0;
    int step = SQLITE_ERROR;
    while (stmt && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        items = xreallocarray(items, n + 1, size);
        row_read(stmt, items + n++ * size);
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_DONE) {
        db_items_free(items, n, size, item_fini);
        items = NULL;
        n = 0;
    }
    *items_out = items;
    *n_out = n;
    return step == SQLITE_DONE ? 0 : -EIO;
}

static void health_row_read(sqlite3_stmt *stmt, void *item)
{
    struct db_health_row *row = item;
    row->object = column_text(stmt, 0);
    row->up = sqlite3_column_int(stmt, 1) != 0;
    row->time_ms = sqlite3_column_int64(stmt, 2);
    row->reason = column_text(stmt, 3);
}

static void health_row_fini(void *item)
{
    struct db_health_row *row = item;
    free(row->object);
    free(row->reason);
}

/* Rows of <table> newest first (history) or by object (state), as db_health_row. */
static int health_rows(struct db *db, const char *sql, size_t limit,
                       struct db_health_row **rows_out, size_t *n_out)
{
    sqlite3_stmt *stmt = NULL;
    void *rows;
    if (sqlite3_prepare_v2(db->conn, sql, -1, &stmt, NULL) == SQLITE_OK)
        sqlite3_bind_int64(stmt, 1, (int64_t)limit);
    int rc = db_rows_read(stmt, sizeof(**rows_out), health_row_read, health_row_fini, &rows, n_out);
    *rows_out = rows;
    return rc;
}

int db_health_state(struct db *db, struct db_health_row **rows_out, size_t *n_out)
{
    return health_rows(db,
                       "SELECT object, up, since_ms, reason FROM health_state ORDER BY object "
                       "LIMIT ?1",
                       1000000, rows_out, n_out);
}

int db_health_history(struct db *db, size_t limit, struct db_health_row **rows_out, size_t *n_out)
{
    return health_rows(db,
                       "SELECT object, up, time_ms, reason FROM health_history ORDER BY id DESC "
                       "LIMIT ?1",
                       limit, rows_out, n_out);
}

int db_failback_hold(struct db *db, const char *object, bool held, int64_t time_ms,
                     const char *reason)
{
    sqlite3_stmt *stmt = NULL;
    char err[256];
    int rc = prepare(db,
                     held ? "INSERT OR REPLACE INTO failback_holds (object, since_ms, reason)"
                            " VALUES (?1, ?2, ?3)"
                          : "DELETE FROM failback_holds WHERE object = ?1",
                     &stmt, err, sizeof(err));
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, object, -1, SQLITE_TRANSIENT);
        if (held) {
            sqlite3_bind_int64(stmt, 2, time_ms);
            sqlite3_bind_text(stmt, 3, reason, -1, SQLITE_TRANSIENT);
        }
        rc = step_done(db, stmt, err, sizeof(err));
    }
    sqlite3_finalize(stmt);
    return rc;
}

int db_failback_holds(struct db *db, struct db_health_row **rows_out, size_t *n_out)
{
    return health_rows(db,
                       "SELECT object, 0, since_ms, reason FROM failback_holds ORDER BY object "
                       "LIMIT ?1",
                       1000000, rows_out, n_out);
}

int db_failback_release(struct db *db, const char *region, char *err, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    /* Objects are "SERVICE/REGION" and names are [a-z0-9-]: compare the part after the '/'. */
    int rc =
        prepare(db, "DELETE FROM failback_holds WHERE substr(object, instr(object, '/') + 1) = ?1",
                &stmt, err, errlen);
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, region, -1, SQLITE_TRANSIENT);
        rc = step_done(db, stmt, err, errlen);
    }
    sqlite3_finalize(stmt);
    return rc;
}

void db_health_free(struct db_health_row *rows, size_t n)
{
    db_items_free(rows, n, sizeof(*rows), health_row_fini);
}

static void audit_entry_read(sqlite3_stmt *stmt, void *item)
{
    struct db_audit_entry *e = item;
    e->id = sqlite3_column_int64(stmt, 0);
    e->time_ms = sqlite3_column_int64(stmt, 1);
    e->actor = column_text(stmt, 2);
    e->action = column_text(stmt, 3);
    e->object = column_text(stmt, 4);
    e->before = column_text(stmt, 5);
    e->after = column_text(stmt, 6);
}

static void audit_entry_fini(void *item)
{
    struct db_audit_entry *e = item;
    free(e->actor);
    free(e->action);
    free(e->object);
    free(e->before);
    free(e->after);
}

int db_audit_list(struct db *db, int64_t before_id, size_t limit,
                  struct db_audit_entry **entries_out, size_t *n_out)
{
    sqlite3_stmt *stmt = NULL;
    void *entries;
    if (sqlite3_prepare_v2(db->conn,
                           "SELECT id, time_ms, actor, action, object, before, after FROM audit"
                           " WHERE ?1 <= 0 OR id < ?1 ORDER BY id DESC LIMIT ?2",
                           -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(stmt, 1, before_id);
        sqlite3_bind_int64(stmt, 2, (int64_t)limit);
    }
    int rc = db_rows_read(stmt, sizeof(**entries_out), audit_entry_read, audit_entry_fini, &entries,
                          n_out);
    *entries_out = entries;
    return rc;
}

void db_audit_free(struct db_audit_entry *entries, size_t n)
{
    db_items_free(entries, n, sizeof(*entries), audit_entry_fini);
}

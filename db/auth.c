/* db/auth.c - who may use the admin console and API: users with scrypt password hashes, login
 * sessions, API tokens and the state that throttles repeated failed logins.
 *
 * Nothing secret is stored in a form that lets its holder in: passwords as scrypt hashes with a
 * random salt ("scrypt$LOG2N$R$P$SALT$HASH", hex), session ids and API tokens as SHA-256 hashes
 * (both are 256 random bits, so a plain hash is enough; they are looked up by hash). A CSRF token
 * is stored as is: it only counts together with the session cookie.
 *
 * User and token changes go to the audit log (never with a hash), without bumping the config
 * version: they change who may edit the topology, not the topology. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "db/db_int.h"

/* scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s): what OWASP suggests for scrypt. */
#define SCRYPT_LOG2N  15
#define SCRYPT_R      8
#define SCRYPT_P      1
#define SCRYPT_MAXMEM (64u << 20)
#define SALT_BYTES    16
#define HASH_BYTES    32
#define SECRET_BYTES  32

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_decode(const char *in, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = in[2 * i + k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return -EINVAL;
        }
        out[i] = (unsigned char)v;
    }
    return in[2 * n] == '\0' || in[2 * n] == '$' ? 0 : -EINVAL;
}

/* <n> random bytes as 2n hex digits into <out> (2n + 1 bytes). */
static int random_hex(char *out, size_t n)
{
    unsigned char buf[64];
    if (n > sizeof(buf) || RAND_bytes(buf, (int)n) != 1)
        return -EIO;
    hex_encode(buf, n, out);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

static void sha256_hex(const char *text, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), digest);
    hex_encode(digest, sizeof(digest), out);
}

static int scrypt_raw(const char *password, const unsigned char *salt, int log2n, int r, int p,
                      unsigned char *out)
{
    if (log2n < 10 || log2n > 20 || r < 1 || r > 32 || p < 1 || p > 16)
        return -EINVAL;
    return EVP_PBE_scrypt(password, strlen(password), salt, SALT_BYTES, (uint64_t)1 << log2n,
                          (uint64_t)r, (uint64_t)p, SCRYPT_MAXMEM, out, HASH_BYTES) == 1
               ? 0
               : -EIO;
}

/* Checks the length of <password> and hashes it into a new "scrypt$..." string, *<hash_out>
 * (the caller frees it). Returns 0, or -EINVAL or -EIO with the reason in <err>. */
static int password_hash(const char *password, char **hash_out, char *err, size_t errlen)
{
    unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
    char salt_hex[2 * SALT_BYTES + 1], hash_hex[2 * HASH_BYTES + 1];
    size_t len = strlen(password);
    *hash_out = NULL;
    if (len < DB_PASSWORD_MIN) {
        snprintf(err, errlen, "password: at least %d characters", DB_PASSWORD_MIN);
        return -EINVAL;
    }
    if (len > DB_PASSWORD_MAX) {
        snprintf(err, errlen, "password: at most %d bytes", DB_PASSWORD_MAX);
        return -EINVAL;
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        scrypt_raw(password, salt, SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P, hash) != 0) {
        snprintf(err, errlen, "password: cannot hash (out of memory?)");
        return -EIO;
    }
    hex_encode(salt, sizeof(salt), salt_hex);
    hex_encode(hash, sizeof(hash), hash_hex);
    len = 32 + sizeof(salt_hex) + sizeof(hash_hex);
    *hash_out = xmalloc(len);
    snprintf(*hash_out, len, "scrypt$%d$%d$%d$%s$%s", SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P, salt_hex,
             hash_hex);
    OPENSSL_cleanse(hash, sizeof(hash));
    return 0;
}

/* Whether <password> matches <stored>; compares in constant time. */
static bool password_matches(const char *password, const char *stored)
{
    unsigned char salt[SALT_BYTES], want[HASH_BYTES], got[HASH_BYTES];
    int log2n, r, p, off = 0;
    if (sscanf(stored, "scrypt$%d$%d$%d$%n", &log2n, &r, &p, &off) != 3 || off == 0 ||
        strlen(stored + off) != 2 * SALT_BYTES + 1 + 2 * HASH_BYTES ||
        hex_decode(stored + off, salt, SALT_BYTES) != 0 ||
        hex_decode(stored + off + 2 * SALT_BYTES + 1, want, HASH_BYTES) != 0 ||
        scrypt_raw(password, salt, log2n, r, p, got) != 0)
        return false;
    bool same = CRYPTO_memcmp(want, got, HASH_BYTES) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return same;
}

bool db_user_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > DB_USER_NAME_MAX)
        return false;
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
        return false;
    return name[0] != '.' && name[0] != '-';
}

/* The same check for user and token names; <field> names the field in <err>. */
static int name_check(const char *field, const char *name, char *err, size_t errlen)
{
    if (db_user_name_valid(name))
        return 0;
    snprintf(err, errlen,
             "%s: 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", field,
             DB_USER_NAME_MAX);
    return -EINVAL;
}

/* ---- SQL helpers ---- */

static int sql_fail(struct db *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "db: %s: %s", what, sqlite3_errmsg(db->conn));
    return -EIO;
}

static char *column_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t ? xstrdup((const char *)t) : NULL;
}

/* Prepares <sql> into *<stmt> (the caller finalizes it, also on failure) and binds the text
 * parameters <a>, <b> (NULL: not bound) to ?1 and ?2 and the integers <n1>, <n2> to ?3 and ?4, as
 * far as <sql> has them. Returns 0 or -EIO. */
static int prepare_bound(struct db *db, const char *sql, const char *a, const char *b, int64_t n1,
                         int64_t n2, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(db->conn, sql, -1, stmt, NULL) != SQLITE_OK)
        return -EIO;
    int params = sqlite3_bind_parameter_count(*stmt);
    if (a && params >= 1)
        sqlite3_bind_text(*stmt, 1, a, -1, SQLITE_TRANSIENT);
    if (b && params >= 2)
        sqlite3_bind_text(*stmt, 2, b, -1, SQLITE_TRANSIENT);
    if (params >= 3)
        sqlite3_bind_int64(*stmt, 3, n1);
    if (params >= 4)
        sqlite3_bind_int64(*stmt, 4, n2);
    return 0;
}

/* Runs <sql> with parameters bound as prepare_bound() does; returns rows changed or -EIO. */
static int run(struct db *db, const char *sql, const char *a, const char *b, int64_t n1, int64_t n2)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -EIO;
    if (prepare_bound(db, sql, a, b, n1, n2, &stmt) == 0 && sqlite3_step(stmt) == SQLITE_DONE)
        rc = sqlite3_changes(db->conn);
    sqlite3_finalize(stmt);
    return rc;
}

/* Runs the query <sql> (parameters bound as prepare_bound() does) up to its first row, left in
 * *<stmt> for the caller, who finalizes it. Returns 0, -ENOENT when there is no row, or -EIO. */
static int row_get(struct db *db, const char *sql, const char *a, const char *b, int64_t n1,
                   int64_t n2, sqlite3_stmt **stmt)
{
    if (prepare_bound(db, sql, a, b, n1, n2, stmt) != 0)
        return -EIO;
    int step = sqlite3_step(*stmt);
    return step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -ENOENT : -EIO;
}

/* Appends an audit entry at the current config version (which it does not bump). */
static int audit(struct db *db, const char *actor, const char *action, const char *object,
                 const char *before, const char *after)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -EIO;
    if (sqlite3_prepare_v2(db->conn,
                           "INSERT INTO audit (time_ms, actor, action, object, before, after,"
                           " config_version) SELECT ?, ?, ?, ?, ?, ?, version FROM config_version"
                           " WHERE id = 1",
                           -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(stmt, 1, now_ms());
    sqlite3_bind_text(stmt, 2, actor ? actor : "unknown", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, object, -1, SQLITE_TRANSIENT);
    if (before)
        sqlite3_bind_text(stmt, 5, before, -1, SQLITE_TRANSIENT);
    if (after)
        sqlite3_bind_text(stmt, 6, after, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : -EIO;
out:
    sqlite3_finalize(stmt);
    return rc;
}

/* {"name":"<name>"} with <name> JSON-escaped (names are restricted, but be exact anyway). */
static char *name_json(const char *key, const char *name)
{
    size_t len = strlen(name) * 6 + strlen(key) + 16;
    char *out = xmalloc(len), *p = out;
    p += sprintf(p, "{\"%s\":\"", key);
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        if (*s == '"' || *s == '\\')
            p += sprintf(p, "\\%c", *s);
        else if (*s < 0x20)
            p += sprintf(p, "\\u%04x", *s);
        else
            *p++ = (char)*s;
    }
    strcpy(p, "\"}");
    return out;
}

/* What an audit entry about a user or token keeps of it: nothing, or {"name": ...} as the entry's
 * "before" (a removal) or "after" (an addition). */
enum snapshot { SNAPSHOT_NONE, SNAPSHOT_BEFORE, SNAPSHOT_AFTER };

/* Appends the audit entry for <action> on the <kind> ("user", "token") named <name>. */
static int audit_name(struct db *db, const char *actor, const char *action, const char *kind,
                      const char *name, enum snapshot snapshot)
{
    char object[100], *snap = snapshot == SNAPSHOT_NONE ? NULL : name_json("name", name);
    snprintf(object, sizeof(object), "%s %s", kind, name);
    int rc = audit(db, actor, action, object, snapshot == SNAPSHOT_BEFORE ? snap : NULL,
                   snapshot == SNAPSHOT_AFTER ? snap : NULL);
    free(snap);
    return rc;
}

/* ---- users ---- */

static int user_add(struct db *db, const char *name, const char *password, bool only_first,
                    const char *actor, char *err, size_t errlen)
{
    char *hash = NULL;
    int rc;
    if ((rc = name_check("username", name, err, errlen)) != 0)
        return rc;
    /* Hash before taking the write lock: it takes a tenth of a second. */
    if ((rc = password_hash(password, &hash, err, errlen)) != 0)
        return rc;
    if ((rc = db_tx_begin(db, true, err, errlen)) != 0)
        goto out;
    int64_t n_users = 0;
    if (db_user_count(db, &n_users) != 0) {
        rc = sql_fail(db, "users", err, errlen);
        goto out;
    }
    if (only_first && n_users > 0) {
        snprintf(err, errlen, "setup: an administrator exists already; log in instead");
        rc = -EEXIST;
        goto out;
    }
    rc = run(db, "INSERT OR IGNORE INTO admin_users (name, password, created_ms) VALUES (?, ?, ?)",
             name, hash, now_ms(), 0);
    if (rc == 0) {
        snprintf(err, errlen, "username: '%s' exists already", name);
        rc = -EEXIST;
        goto out;
    }
    if (rc < 0 || audit_name(db, actor, "user.add", "user", name, SNAPSHOT_AFTER) != 0) {
        rc = sql_fail(db, "add user", err, errlen);
        goto out;
    }
    rc = db_tx_commit(db, err, errlen);
out:
    db_tx_rollback(db);
    free(hash);
    return rc;
}

int db_user_add(struct db *db, const char *name, const char *password, const char *actor, char *err,
                size_t errlen)
{
    return user_add(db, name, password, false, actor, err, errlen);
}

int db_user_setup(struct db *db, const char *name, const char *password, char *err, size_t errlen)
{
    char actor[100];
    snprintf(actor, sizeof(actor), "setup:%s", name);
    return user_add(db, name, password, true, actor, err, errlen);
}

/* Sets <name>'s password, audited as <action>. */
static int password_set(struct db *db, const char *name, const char *password, const char *actor,
                        const char *action, char *err, size_t errlen)
{
    char *hash = NULL;
    int rc;
    if ((rc = password_hash(password, &hash, err, errlen)) != 0)
        return rc;
    if ((rc = db_tx_begin(db, true, err, errlen)) != 0)
        goto out;
    rc = run(db, "UPDATE admin_users SET password = ?2 WHERE name = ?1", name, hash, 0, 0);
    if (rc == 0) {
        snprintf(err, errlen, "users[%s]: no such user", name);
        rc = -ENOENT;
        goto out;
    }
    /* A new password ends the user's other sessions. */
    if (rc < 0 || run(db, "DELETE FROM admin_sessions WHERE user = ?", name, NULL, 0, 0) < 0 ||
        audit_name(db, actor, action, "user", name, SNAPSHOT_NONE) != 0) {
        rc = sql_fail(db, "set password", err, errlen);
        goto out;
    }
    rc = db_tx_commit(db, err, errlen);
out:
    db_tx_rollback(db);
    free(hash);
    return rc;
}

int db_user_password_set(struct db *db, const char *name, const char *password, const char *actor,
                         char *err, size_t errlen)
{
    return password_set(db, name, password, actor, "user.password", err, errlen);
}

int db_user_password_reset(struct db *db, const char *name, const char *password, const char *actor,
                           char *err, size_t errlen)
{
    return password_set(db, name, password, actor, "user.password_reset", err, errlen);
}

/* Revokes every API token <creator> created (created_by is the user name for a token made in a
 * session or by gslbctl as that user), each with its own audit entry. Inside the caller's write
 * transaction. Returns 0 or -EIO. */
static int tokens_revoke_created_by(struct db *db, const char *creator, const char *actor)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare_bound(db, "SELECT name FROM api_tokens WHERE created_by = ?1 ORDER BY id",
                           creator, NULL, 0, 0, &stmt);
    int step;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        if (name == NULL ||
            audit_name(db, actor, "token.remove", "token", name, SNAPSHOT_BEFORE) != 0)
            rc = -EIO;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -EIO;
    sqlite3_finalize(stmt);
    if (rc == 0 && run(db, "DELETE FROM api_tokens WHERE created_by = ?1", creator, NULL, 0, 0) < 0)
        rc = -EIO;
    return rc;
}

/* Removes <name>; with <keep_one>, never the last user, checked under the write lock so that
 * two removals at once cannot both pass the check. */
static int user_remove(struct db *db, const char *name, bool keep_one, const char *actor, char *err,
                       size_t errlen)
{
    int rc;
    if ((rc = db_tx_begin(db, true, err, errlen)) != 0)
        return rc;
    int64_t n_users = 0;
    if (keep_one && db_user_count(db, &n_users) != 0) {
        rc = sql_fail(db, "users", err, errlen);
        goto out;
    }
    if (keep_one && n_users <= 1) {
        snprintf(err, errlen, "the last user cannot be removed here (gslbctl user remove can)");
        rc = -EBUSY;
        goto out;
    }
    if (run(db, "DELETE FROM admin_sessions WHERE user = ?", name, NULL, 0, 0) < 0 ||
        (rc = run(db, "DELETE FROM admin_users WHERE name = ?", name, NULL, 0, 0)) < 0) {
        rc = sql_fail(db, "remove user", err, errlen);
        goto out;
    }
    if (rc == 0) {
        snprintf(err, errlen, "users[%s]: no such user", name);
        rc = -ENOENT;
        goto out;
    }
    /* The tokens they made go with them: a removed user must not keep a way in. */
    if (audit_name(db, actor, "user.remove", "user", name, SNAPSHOT_BEFORE) != 0 ||
        tokens_revoke_created_by(db, name, actor) != 0) {
        rc = sql_fail(db, "remove user", err, errlen);
        goto out;
    }
    rc = db_tx_commit(db, err, errlen);
out:
    db_tx_rollback(db);
    return rc;
}

int db_user_remove(struct db *db, const char *name, const char *actor, char *err, size_t errlen)
{
    return user_remove(db, name, false, actor, err, errlen);
}

int db_user_remove_keep_one(struct db *db, const char *name, const char *actor, char *err,
                            size_t errlen)
{
    return user_remove(db, name, true, actor, err, errlen);
}

int db_user_count(struct db *db, int64_t *n_out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = row_get(db, "SELECT count(*) FROM admin_users", NULL, NULL, 0, 0, &stmt);
    if (rc == 0)
        *n_out = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return rc == 0 ? 0 : -EIO;
}

static void user_read(sqlite3_stmt *stmt, void *item)
{
    struct db_user *u = item;
    u->name = column_text(stmt, 0);
    u->created_ms = sqlite3_column_int64(stmt, 1);
}

static void user_fini(void *item)
{
    struct db_user *u = item;
    free(u->name);
}

int db_user_list(struct db *db, struct db_user **users_out, size_t *n_out)
{
    sqlite3_stmt *stmt = NULL;
    void *users;
    prepare_bound(db, "SELECT name, created_ms FROM admin_users ORDER BY name", NULL, NULL, 0, 0,
                  &stmt); /* a failure leaves <stmt> NULL, which db_rows_read reports */
    int rc = db_rows_read(stmt, sizeof(**users_out), user_read, user_fini, &users, n_out);
    *users_out = users;
    return rc;
}

void db_user_free(struct db_user *users, size_t n)
{
    db_items_free(users, n, sizeof(*users), user_fini);
}

int db_user_verify(struct db *db, const char *name, const char *password)
{
    /* A hash of a random password, so an unknown user costs as much time as a known one. */
    static const char decoy[] = "scrypt$15$8$1$00000000000000000000000000000000$"
                                "0000000000000000000000000000000000000000000000000000000000000000";
    sqlite3_stmt *stmt = NULL;
    int rc =
        row_get(db, "SELECT password FROM admin_users WHERE name = ?1", name, NULL, 0, 0, &stmt);
    char *stored = rc == 0 ? column_text(stmt, 0) : NULL;
    sqlite3_finalize(stmt);
    if (rc == -EIO)
        return rc;
    bool ok = password_matches(password, stored ? stored : decoy);
    rc = stored && ok ? 0 : -EACCES;
    free(stored);
    return rc;
}

/* ---- sessions ---- */

int db_session_create(struct db *db, const char *user, int64_t ttl_ms,
                      char id_out[DB_SECRET_HEX + 1], char csrf_out[DB_SECRET_HEX + 1])
{
    char id_hash[2 * SHA256_DIGEST_LENGTH + 1];
    int64_t now = now_ms();
    if (random_hex(id_out, SECRET_BYTES) != 0 || random_hex(csrf_out, SECRET_BYTES) != 0)
        return -EIO;
    sha256_hex(id_out, id_hash);
    sqlite3_stmt *stmt = NULL;
    int rc = -EIO;
    /* Expired sessions go whenever a new one comes. */
    if (run(db, "DELETE FROM admin_sessions WHERE expires_ms <= ?3", NULL, NULL, now, 0) < 0 ||
        sqlite3_prepare_v2(
            db->conn,
            "INSERT INTO admin_sessions (id_hash, user, csrf, created_ms, expires_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, id_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, user, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, csrf_out, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 4, now);
    sqlite3_bind_int64(stmt, 5, now + ttl_ms);
    rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : -EIO;
out:
    sqlite3_finalize(stmt);
    return rc;
}

int db_session_get(struct db *db, const char *id, struct db_session *out)
{
    char id_hash[2 * SHA256_DIGEST_LENGTH + 1];
    sqlite3_stmt *stmt = NULL;
    memset(out, 0, sizeof(*out));
    if (strlen(id) != DB_SECRET_HEX)
        return -ENOENT;
    sha256_hex(id, id_hash);
    int rc = row_get(db,
                     "SELECT user, csrf, expires_ms FROM admin_sessions"
                     " WHERE id_hash = ?1 AND expires_ms > ?3",
                     id_hash, NULL, now_ms(), 0, &stmt);
    if (rc == 0) {
        out->user = column_text(stmt, 0);
        snprintf(out->csrf, sizeof(out->csrf), "%s", (const char *)sqlite3_column_text(stmt, 1));
        out->expires_ms = sqlite3_column_int64(stmt, 2);
    }
    sqlite3_finalize(stmt);
    return rc;
}

void db_session_fini(struct db_session *session)
{
    free(session->user);
    session->user = NULL;
}

int db_session_delete(struct db *db, const char *id)
{
    char id_hash[2 * SHA256_DIGEST_LENGTH + 1];
    sha256_hex(id, id_hash);
    return run(db, "DELETE FROM admin_sessions WHERE id_hash = ?", id_hash, NULL, 0, 0) < 0 ? -EIO
                                                                                            : 0;
}

/* ---- API tokens ---- */

int db_token_add(struct db *db, const char *name, const char *actor,
                 char token_out[DB_TOKEN_LEN + 1], int64_t *id_out, char *err, size_t errlen)
{
    char hash[2 * SHA256_DIGEST_LENGTH + 1];
    int rc;
    if ((rc = name_check("name", name, err, errlen)) != 0)
        return rc;
    memcpy(token_out, DB_TOKEN_PREFIX, sizeof(DB_TOKEN_PREFIX) - 1);
    if (random_hex(token_out + sizeof(DB_TOKEN_PREFIX) - 1, SECRET_BYTES) != 0) {
        snprintf(err, errlen, "token: no random bytes");
        return -EIO;
    }
    sha256_hex(token_out, hash);
    if ((rc = db_tx_begin(db, true, err, errlen)) != 0)
        return rc;
    rc = run(db,
             "INSERT OR IGNORE INTO api_tokens (name, hash, created_by, created_ms)"
             " VALUES (?1, ?2, '', ?3)",
             name, hash, now_ms(), 0);
    if (rc == 0) {
        snprintf(err, errlen, "name: a token named '%s' exists already", name);
        rc = -EEXIST;
        goto out;
    }
    *id_out = sqlite3_last_insert_rowid(db->conn);
    if (rc < 0 ||
        run(db, "UPDATE api_tokens SET created_by = ?1 WHERE name = ?2", actor ? actor : "unknown",
            name, 0, 0) < 0 ||
        audit_name(db, actor, "token.add", "token", name, SNAPSHOT_AFTER) != 0) {
        rc = sql_fail(db, "add token", err, errlen);
        goto out;
    }
    rc = db_tx_commit(db, err, errlen);
out:
    db_tx_rollback(db);
    if (rc != 0)
        OPENSSL_cleanse(token_out, DB_TOKEN_LEN + 1);
    return rc;
}

static void token_read(sqlite3_stmt *stmt, void *item)
{
    struct db_token *t = item;
    t->id = sqlite3_column_int64(stmt, 0);
    t->name = column_text(stmt, 1);
    t->created_by = column_text(stmt, 2);
    t->created_ms = sqlite3_column_int64(stmt, 3);
    t->last_used_ms = sqlite3_column_int64(stmt, 4);
}

static void token_fini(void *item)
{
    struct db_token *t = item;
    free(t->name);
    free(t->created_by);
}

int db_token_list(struct db *db, struct db_token **tokens_out, size_t *n_out)
{
    sqlite3_stmt *stmt = NULL;
    void *tokens;
    prepare_bound(db,
                  "SELECT id, name, created_by, created_ms, coalesce(last_used_ms, 0)"
                  " FROM api_tokens ORDER BY id",
                  NULL, NULL, 0, 0,
                  &stmt); /* a failure leaves <stmt> NULL, which db_rows_read reports */
    int rc = db_rows_read(stmt, sizeof(**tokens_out), token_read, token_fini, &tokens, n_out);
    *tokens_out = tokens;
    return rc;
}

void db_token_free(struct db_token *tokens, size_t n)
{
    db_items_free(tokens, n, sizeof(*tokens), token_fini);
}

int db_token_remove(struct db *db, int64_t id, const char *actor, char *err, size_t errlen)
{
    char *name = NULL;
    sqlite3_stmt *stmt = NULL;
    int rc;
    if ((rc = db_tx_begin(db, true, err, errlen)) != 0)
        return rc;
    rc = row_get(db, "SELECT name FROM api_tokens WHERE id = ?3", NULL, NULL, id, 0, &stmt);
    if (rc == 0)
        name = column_text(stmt, 0);
    sqlite3_finalize(stmt);
    if (rc == -ENOENT) {
        snprintf(err, errlen, "tokens[%lld]: no such token", (long long)id);
        goto out;
    }
    if (rc != 0 || run(db, "DELETE FROM api_tokens WHERE id = ?3", NULL, NULL, id, 0) != 1 ||
        audit_name(db, actor, "token.remove", "token", name, SNAPSHOT_BEFORE) != 0) {
        rc = sql_fail(db, "remove token", err, errlen);
        goto out;
    }
    rc = db_tx_commit(db, err, errlen);
out:
    db_tx_rollback(db);
    free(name);
    return rc;
}

int db_token_check(struct db *db, const char *token, char **name_out)
{
    char hash[2 * SHA256_DIGEST_LENGTH + 1];
    sqlite3_stmt *stmt = NULL;
    int64_t now = now_ms(), last = 0;
    *name_out = NULL;
    if (strlen(token) != DB_TOKEN_LEN || strncmp(token, DB_TOKEN_PREFIX, 5) != 0)
        return -ENOENT;
    sha256_hex(token, hash);
    int rc = row_get(db, "SELECT name, coalesce(last_used_ms, 0) FROM api_tokens WHERE hash = ?1",
                     hash, NULL, 0, 0, &stmt);
    if (rc == 0) {
        *name_out = column_text(stmt, 0);
        last = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_finalize(stmt);
    /* "Last used" to the minute: no write per request for a busy automation. */
    if (rc == 0 && now - last >= 60000)
        run(db, "UPDATE api_tokens SET last_used_ms = ?3 WHERE hash = ?1", hash, NULL, now, 0);
    return rc;
}

/* ---- login throttling ---- */

int db_login_throttled(struct db *db, const char *key, int64_t *retry_after_ms_out)
{
    sqlite3_stmt *stmt = NULL;
    int64_t now = now_ms();
    *retry_after_ms_out = 0;
    int rc = row_get(db, "SELECT locked_until_ms FROM login_failures WHERE key = ?1", key, NULL, 0,
                     0, &stmt);
    int64_t until = rc == 0 ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    if (rc == -ENOENT)
        return 0; /* no failures */
    if (rc == 0 && until > now) {
        *retry_after_ms_out = until - now;
        rc = -EAGAIN;
    }
    return rc;
}

int db_login_failed(struct db *db, const char *key, int threshold, int64_t base_ms, int64_t max_ms)
{
    sqlite3_stmt *stmt = NULL;
    int64_t now = now_ms();
    int rc = -EIO;
    /* Past the threshold each failure locks the key out, twice as long as the last time. A quiet
     * day forgets old failures. */
    if (run(db, "DELETE FROM login_failures WHERE last_ms < ?3", NULL, NULL, now - 86400000, 0) <
            0 ||
        row_get(db,
                "INSERT INTO login_failures (key, failures, last_ms, locked_until_ms)"
                " VALUES (?1, 1, ?3, 0) ON CONFLICT (key) DO UPDATE SET"
                " failures = failures + 1, last_ms = ?3 RETURNING failures",
                key, NULL, now, 0, &stmt) != 0)
        goto out;
    int64_t failures = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    stmt = NULL;
    rc = 0;
    if (failures >= threshold) {
        int64_t lock = base_ms;
        for (int64_t i = threshold; i < failures && lock < max_ms; i++)
            lock *= 2;
        if (lock > max_ms)
            lock = max_ms;
        if (run(db, "UPDATE login_failures SET locked_until_ms = ?3 WHERE key = ?1", key, NULL,
                now + lock, 0) < 0)
            rc = -EIO;
    }
out:
    sqlite3_finalize(stmt);
    return rc;
}

int db_login_succeeded(struct db *db, const char *key)
{
    return run(db, "DELETE FROM login_failures WHERE key = ?", key, NULL, 0, 0) < 0 ? -EIO : 0;
}

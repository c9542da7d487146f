/* admin/auth.c - who is asking: API tokens and session cookies, the CSRF check, and the routes
 * that manage them (first-run setup, login, logout, users, tokens).
 *
 * A browser logs in and gets an HttpOnly, SameSite=Strict session cookie (Secure under TLS) and a
 * CSRF token it must send back in X-CSRF-Token on every state-changing request; automation sends
 * "Authorization: Bearer gslb_..." and needs no CSRF token (a browser never adds that header by
 * itself). Failed logins count against the user name and the client address; past a few in a row
 * both are locked out for a while, doubling up to a quarter of an hour, with 429 and Retry-After
 * (an IPv6 client counts by its /64, an IPv4 one by its address).
 * A locked-out name is refused even with the right password, so guessing cannot go on in the
 * background. First-run setup on a listener that is not loopback answers only loopback clients.
 * Secrets never reach the log. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/addr.h"
#include "common/log.h"
#include "db/db.h"

#define COOKIE "gslb_session"

/* Compares two strings in time that depends only on their lengths. */
static bool secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* Records who is asking: <user>, logged in by the session <id> with CSRF token <csrf>. */
static void session_caller(struct admin_request *req, const char *user, const char *id,
                           const char *csrf)
{
    snprintf(req->user, sizeof(req->user), "%s", user);
    snprintf(req->actor, sizeof(req->actor), "%s", user);
    snprintf(req->session, sizeof(req->session), "%s", id);
    snprintf(req->csrf, sizeof(req->csrf), "%s", csrf);
}

bool admin_authenticate(struct admin_request *req)
{
    const char *auth = admin_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        char *name = NULL;
        int rc = db_token_check(req->db, auth + 7, &name);
        if (rc != 0) {
            free(name);
            if (rc == -EIO)
                admin_reply_error(req, 500, NULL, "cannot read the tokens");
            else
                admin_reply_error(req, 401, NULL, "invalid or revoked API token");
            return false;
        }
        req->authenticated = req->via_token = true;
        snprintf(req->user, sizeof(req->user), "%s", name);
        snprintf(req->actor, sizeof(req->actor), "token:%s", name);
        free(name);
        return true;
    }
    const char *id = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, COOKIE);
    struct db_session s;
    if (id == NULL || db_session_get(req->db, id, &s) != 0) {
        admin_reply_error(req, 401, NULL, "log in first (or send an API token)");
        return false;
    }
    req->authenticated = true;
    session_caller(req, s.user, id, s.csrf);
    db_session_fini(&s);
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        const char *token = admin_header(req, "X-CSRF-Token");
        if (token == NULL || !secret_equal(token, req->csrf)) {
            admin_reply_error_code(req, 403, "csrf", NULL, "missing or wrong X-CSRF-Token header");
            return false;
        }
    }
    return true;
}

/* Reads the string <key> of <body>; answers 400 naming it and returns NULL when missing. */
static const char *body_string(struct admin_request *req, json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        admin_reply_error(req, 400, key, "%s: expected a string", key);
        return NULL;
    }
    return json_string_value(v);
}

/* Refuses keys other than <allowed> (NULL-terminated); true when <body> is fine. */
static bool body_keys(struct admin_request *req, json_t *body, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            admin_reply_error(req, 400, NULL, "%s: unknown field", key);
            return false;
        }
    }
    return true;
}

/* Sets the session cookie to <id> for <max_age_s> seconds (0 ends it); Secure under TLS. */
static void cookie_set(struct admin_request *req, const char *id, int max_age_s)
{
    snprintf(req->set_cookie, sizeof(req->set_cookie),
             COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s", id, max_age_s,
             req->admin->tls ? "; Secure" : "");
}

/* Starts a session for <user>, who is then the caller: the cookie goes into the answer, which
 * says who and the CSRF token. */
static void session_start(struct admin_request *req, const char *user, int status)
{
    char id[DB_SECRET_HEX + 1], csrf[DB_SECRET_HEX + 1];
    int ttl_ms = req->admin->cfg.session_ttl_ms;
    if (db_session_create(req->db, user, ttl_ms, id, csrf) != 0) {
        admin_reply_error(req, 500, NULL, "cannot create a session");
        return;
    }
    cookie_set(req, id, ttl_ms / 1000);
    session_caller(req, user, id, csrf);
    json_t *answer = json_object();
    json_object_set_new(answer, "user", json_string(user));
    json_object_set_new(answer, "csrf", json_string(csrf));
    admin_reply_json(req, status, answer);
}

/* Parses {"username", "password"}; false when answered. */
static bool credentials(struct admin_request *req, json_t **body_out, const char **user,
                        const char **password)
{
    static const char *const keys[] = {"username", "password", NULL};
    json_t *body = admin_body_json(req);
    *body_out = body;
    return body && body_keys(req, body, keys) &&
           (*user = body_string(req, body, "username")) != NULL &&
           (*password = body_string(req, body, "password")) != NULL;
}

bool admin_setup_allowed(bool listener_loopback, const char *client)
{
    struct ip_addr a;
    if (listener_loopback)
        return true;
    if (ip_addr_parse(client, &a) != 0)
        return false;
    a = ip_addr_unmap_v4(&a);
    static const uint8_t v6_loopback[16] = {[15] = 1};
    return a.family == AF_INET ? a.bytes[0] == 127 : memcmp(a.bytes, v6_loopback, 16) == 0;
}

/* Whoever reaches a listener on the network first would own the appliance: there, the first
 * administrator comes from the machine itself. Answers 403 and returns false otherwise. */
static bool setup_from_here(struct admin_request *req)
{
    if (admin_setup_allowed(req->admin->loopback, req->client))
        return true;
    log_warn("admin: first-run setup refused to %s (not loopback)", req->client);
    admin_reply_error_code(req, 403, "setup_local", NULL,
                           "first-run setup works only from this machine: run 'gslbctl user add "
                           "NAME' here, or open the console from the machine itself");
    return false;
}

void admin_setup_get(struct admin_request *req)
{
    int64_t n = 0;
    if (db_user_count(req->db, &n) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the users");
        return;
    }
    if (n == 0 && !setup_from_here(req))
        return;
    json_t *answer = json_object();
    json_object_set_new(answer, "needed", json_boolean(n == 0));
    admin_reply_json(req, 200, answer);
}

void admin_setup_post(struct admin_request *req)
{
    json_t *body;
    const char *user, *password;
    char err[512];
    if (!setup_from_here(req))
        return;
    if (credentials(req, &body, &user, &password)) {
        int rc = db_user_setup(req->db, user, password, err, sizeof(err));
        if (rc == 0) {
            log_warn("admin: first administrator '%s' created from %s", user, req->client);
            session_start(req, user, 201);
        } else {
            admin_reply_db(req, rc, err);
        }
    }
    json_decref(body);
}

void admin_throttle_key(const char *client, char *out, size_t outlen)
{
    struct ip_addr a;
    if (ip_addr_parse(client, &a) == 0 && a.family == AF_INET6) {
        /* One IPv6 subscriber usually holds a whole /64: per /128, a client could pick a fresh
         * address for every few guesses. */
        struct ip_cidr net = {.net = a, .prefix = 64};
        memset(net.net.bytes + 8, 0, 8);
        char text[INET6_ADDRSTRLEN + 8];
        ip_cidr_format(&net, text, sizeof(text));
        snprintf(out, outlen, "ip:%s", text);
        return;
    }
    snprintf(out, outlen, "ip:%s", client);
}

static void retry_after(struct admin_request *req, int64_t ms)
{
    snprintf(req->retry_after, sizeof(req->retry_after), "%" PRId64, (ms + 999) / 1000);
    admin_reply_error(req, 429, NULL, "too many failed logins: try again in %" PRId64 " s",
                      (ms + 999) / 1000);
}

void admin_login(struct admin_request *req)
{
    json_t *body;
    const char *user, *password;
    char user_key[128], ip_key[128];
    int64_t wait_user = 0, wait_ip = 0;
    if (!credentials(req, &body, &user, &password))
        goto out;
    if (!db_user_name_valid(user)) {
        admin_reply_error(req, 401, NULL, "wrong user name or password");
        goto out;
    }
    snprintf(user_key, sizeof(user_key), "user:%s", user);
    admin_throttle_key(req->client, ip_key, sizeof(ip_key));
    int rc_user = db_login_throttled(req->db, user_key, &wait_user);
    int rc_ip = db_login_throttled(req->db, ip_key, &wait_ip);
    if (rc_user == -EAGAIN || rc_ip == -EAGAIN) {
        retry_after(req, wait_user > wait_ip ? wait_user : wait_ip);
        goto out;
    }
    int rc = db_user_verify(req->db, user, password);
    if (rc == -EACCES) {
        db_login_failed(req->db, user_key, ADMIN_USER_LOCK, ADMIN_LOCK_BASE, ADMIN_LOCK_MAX);
        db_login_failed(req->db, ip_key, ADMIN_IP_LOCK, ADMIN_LOCK_BASE, ADMIN_LOCK_MAX);
        log_warn("admin: failed login as '%s' from %s", user, req->client);
        admin_reply_error(req, 401, NULL, "wrong user name or password");
        goto out;
    }
    if (rc != 0) {
        admin_reply_error(req, 500, NULL, "cannot check the password");
        goto out;
    }
    db_login_succeeded(req->db, user_key);
    db_login_succeeded(req->db, ip_key);
    log_info("admin: '%s' logged in from %s", user, req->client);
    session_start(req, user, 200);
out:
    json_decref(body);
}

void admin_logout(struct admin_request *req)
{
    if (req->session[0])
        db_session_delete(req->db, req->session);
    cookie_set(req, "", 0);
    admin_reply_json(req, 200, json_object());
}

void admin_session_get(struct admin_request *req)
{
    json_t *answer = json_object();
    json_object_set_new(answer, "user", json_string(req->user));
    json_object_set_new(answer, "csrf", req->via_token ? json_null() : json_string(req->csrf));
    json_object_set_new(answer, "token", json_boolean(req->via_token));
    admin_reply_json(req, 200, answer);
}

/* ---- users ---- */

void admin_users_list(struct admin_request *req)
{
    struct db_user *users;
    size_t n;
    if (db_user_list(req->db, &users, &n) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the users");
        return;
    }
    json_t *list = json_array(), *answer = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *u = json_object();
        json_object_set_new(u, "name", json_string(users[i].name));
        json_object_set_new(u, "created_ms", json_integer(users[i].created_ms));
        json_array_append_new(list, u);
    }
    db_user_free(users, n);
    json_object_set_new(answer, "users", list);
    admin_reply_json(req, 200, answer);
}

void admin_users_add(struct admin_request *req)
{
    json_t *body;
    const char *user, *password;
    char err[512];
    if (credentials(req, &body, &user, &password)) {
        int rc = db_user_add(req->db, user, password, req->actor, err, sizeof(err));
        if (rc == 0) {
            json_t *answer = json_object();
            json_object_set_new(answer, "name", json_string(user));
            admin_reply_json(req, 201, answer);
        } else {
            admin_reply_db(req, rc, err);
        }
    }
    json_decref(body);
}

void admin_users_remove(struct admin_request *req)
{
    char err[512];
    int rc = db_user_remove_keep_one(req->db, req->params[0], req->actor, err, sizeof(err));
    admin_reply_done(req, rc, err);
}

/* A session changing its own password must give the current one, so a session left open (or
 * stolen) cannot lock its owner out; another user's password (or any, through a token, which
 * is no user) is an administrator's reset, audited as such. */
void admin_users_password(struct admin_request *req)
{
    static const char *const keys[] = {"password", "current_password", NULL};
    const char *password, *current = NULL;
    char err[512];
    bool own = !req->via_token && strcmp(req->params[0], req->user) == 0;
    json_t *body = admin_body_json(req);
    if (body == NULL || !body_keys(req, body, keys) ||
        (password = body_string(req, body, "password")) == NULL ||
        (own && (current = body_string(req, body, "current_password")) == NULL))
        goto out;
    if (own) {
        int rc = db_user_verify(req->db, req->user, current);
        if (rc == -EACCES) {
            log_warn("admin: '%s' gave a wrong current password from %s", req->user, req->client);
            admin_reply_error(req, 403, "current_password",
                              "current_password: not your current password");
            goto out;
        }
        if (rc != 0) {
            admin_reply_error(req, 500, NULL, "cannot check the password");
            goto out;
        }
    }
    int rc =
        own ? db_user_password_set(req->db, req->params[0], password, req->actor, err, sizeof(err))
            : db_user_password_reset(req->db, req->params[0], password, req->actor, err,
                                     sizeof(err));
    if (rc != 0) {
        admin_reply_db(req, rc, err);
    } else if (own) {
        session_start(req, req->params[0], 200); /* the old sessions are gone, this one too */
    } else {
        log_warn("admin: password of '%s' reset by %s from %s", req->params[0], req->actor,
                 req->client);
        admin_reply_json(req, 200, json_object());
    }
out:
    json_decref(body);
}

/* ---- API tokens ---- */

void admin_tokens_list(struct admin_request *req)
{
    struct db_token *tokens;
    size_t n;
    if (db_token_list(req->db, &tokens, &n) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the tokens");
        return;
    }
    json_t *list = json_array(), *answer = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_object();
        json_object_set_new(t, "id", json_integer(tokens[i].id));
        json_object_set_new(t, "name", json_string(tokens[i].name));
        json_object_set_new(t, "created_by", json_string(tokens[i].created_by));
        json_object_set_new(t, "created_ms", json_integer(tokens[i].created_ms));
        json_object_set_new(t, "last_used_ms",
                            tokens[i].last_used_ms ? json_integer(tokens[i].last_used_ms)
                                                   : json_null());
        json_array_append_new(list, t);
    }
    db_token_free(tokens, n);
    json_object_set_new(answer, "tokens", list);
    admin_reply_json(req, 200, answer);
}

void admin_tokens_add(struct admin_request *req)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    char err[512], token[DB_TOKEN_LEN + 1];
    int64_t id = 0;
    json_t *body = admin_body_json(req);
    if (body && body_keys(req, body, keys) && (name = body_string(req, body, "name")) != NULL) {
        int rc = db_token_add(req->db, name, req->actor, token, &id, err, sizeof(err));
        if (rc == 0) {
            json_t *answer = json_object();
            json_object_set_new(answer, "id", json_integer(id));
            json_object_set_new(answer, "name", json_string(name));
            json_object_set_new(answer, "token", json_string(token));
            admin_reply_json(req, 201, answer);
            memset(token, 0, sizeof(token));
        } else {
            admin_reply_db(req, rc, err);
        }
    }
    json_decref(body);
}

void admin_tokens_remove(struct admin_request *req)
{
    char err[512], *end;
    long long id = strtoll(req->params[0], &end, 10);
    if (*end != '\0' || id <= 0) {
        admin_reply_error(req, 404, "id", "no such token");
        return;
    }
    int rc = db_token_remove(req->db, id, req->actor, err, sizeof(err));
    admin_reply_done(req, rc, err);
}

/* tests/admin/test_api.c - the admin JSON API over real HTTP: a real gslbd with its console on
 * a loopback port chosen by the OS, a real SQLite store, requests written byte by byte.
 *
 * The route list comes from admin/openapi.json: every route must refuse a caller without
 * credentials, and the description must list exactly the routes the server has (admin_routes[]).
 * Then the security properties one by one: first-run setup only once, cookie flags, CSRF,
 * cross-origin refusal, login throttling, API tokens and their revocation, script-like names,
 * security headers, body limits, DNS-rebinding Host headers; then the topology routes, the audit
 * trail they leave, and GET /route against gslbctl route. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin_int.h"
#include "db/db.h"
#include "tests/proxy/harness.h"

#define CSP                                                                                        \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
#define PASSWORD "correct horse battery"

static struct proc gslbd;
static int port;
static char cookie[160], csrf[80];

static const char topology[] =
    "{\"regions\": ["
    "{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26},"
    "{\"name\": \"us-east\", \"lat\": 39.04, \"lon\": -77.49}],"
    "\"services\": [{\"name\": \"www\", \"hosts\": [\"www.example.com\"], \"pools\": ["
    "{\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:9001\"}]},"
    "{\"region\": \"us-east\", \"origins\": [{\"address\": \"127.0.0.1:9002\"}]}]}]}";

struct http {
    int status;
    struct resp r;
    json_t *json; /* the body, when it is JSON */
};

static void http_free(struct http *h)
{
    json_decref(h->json);
    resp_free(&h->r);
}

/* Sends <method> <path> with <body> (NULL: none) and extra header lines <headers> ("" or lines
 * ending in \r\n). */
static struct http http(const char *method, const char *path, const char *body, const char *headers)
{
    struct http h = {0};
    size_t len = body ? strlen(body) : 0;
    char *raw = malloc(len + 4096);
    int n = snprintf(raw, 4096, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s",
                     method, path, port, headers);
    if (body)
        n += snprintf(raw + n, 4096 - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", len);
    n += snprintf(raw + n, 4096 - (size_t)n, "\r\n");
    if (body)
        memcpy(raw + n, body, len + 1);
    h.status = request(port, raw, &h.r);
    free(raw);
    if (h.r.body && h.r.body_len)
        h.json = json_loadb(h.r.body, h.r.body_len, 0, NULL);
    return h;
}

/* The same as the logged-in user: session cookie and CSRF token, then <headers>. */
static struct http as_admin_with(const char *method, const char *path, const char *body,
                                 const char *headers)
{
    char all[1024];
    snprintf(all, sizeof(all), "Cookie: %s\r\nX-CSRF-Token: %s\r\n%s", cookie, csrf, headers);
    return http(method, path, body, all);
}

static struct http as_admin(const char *method, const char *path, const char *body)
{
    return as_admin_with(method, path, body, "");
}

static const char *jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* Checks that <h> answered <status> and, with <field>, that its error names that field; frees
 * <h>. */
static void expect_answer(struct http h, int status, const char *field)
{
    if (h.status != status)
        fail_msg("answered %d, expected %d: %.300s", h.status, status, h.r.body ? h.r.body : "");
    if (field)
        assert_string_equal(jstr(json_object_get(h.json, "error"), "field"), field);
    http_free(&h);
}

/* Checks that <h> answered <status> with the error code <code>; frees <h>. */
static void expect_code(struct http h, int status, const char *code)
{
    if (h.status != status)
        fail_msg("answered %d, expected %d: %.300s", h.status, status, h.r.body ? h.r.body : "");
    const char *got = jstr(json_object_get(h.json, "error"), "code");
    if (got == NULL || strcmp(got, code) != 0)
        fail_msg("error code %s, expected %s: %.300s", got ? got : "(none)", code, h.r.body);
    http_free(&h);
}

/* Logs <user> in; fills <cookie_out> ("gslb_session=...") and <csrf_out>. Returns the status. */
static int login(const char *user, const char *password, char *cookie_out, char *csrf_out)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", user, password);
    struct http h = http("POST", "/api/v1/login", body, "");
    int status = h.status;
    if (status == 200) {
        const char *set = resp_header(&h.r, "Set-Cookie");
        assert_non_null(set);
        snprintf(cookie_out, 160, "%.*s", (int)strcspn(set, ";"), set);
        snprintf(csrf_out, 80, "%s", jstr(h.json, "csrf"));
    }
    http_free(&h);
    return status;
}

static int group_setup(void **state)
{
    char err[512];
    (void)state;
    harness_init("gslb-admin");
    struct db *db = db_open(db_path, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(db_import_json(db, topology, strlen(topology), "test", err, sizeof(err)), 0);
    db_close(db);
    static const char *const extra[] = {"--admin-listen", "127.0.0.1:0", NULL};
    gslbd = gslbd_start(extra);
    port = gslbd_admin_port(&gslbd);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    gslbd_stop(&gslbd);
    harness_fini();
    return 0;
}

/* ---- the route list ---- */

static json_t *openapi_load(void)
{
    json_error_t jerr;
    json_t *doc = json_load_file("admin/openapi.json", 0, &jerr);
    if (doc == NULL)
        fail_msg("admin/openapi.json: %s", jerr.text);
    return doc;
}

/* <method> ("get", "GET") in upper (<upper>) or lower case into <out>. */
static void method_case(const char *method, bool upper, char out[8])
{
    size_t i;
    for (i = 0; method[i] && i < 7; i++)
        out[i] =
            (char)(upper ? toupper((unsigned char)method[i]) : tolower((unsigned char)method[i]));
    out[i] = '\0';
}

/* <pattern> with every {param} replaced by "x" (or "1" for numbers). */
static void concrete(const char *pattern, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 2 < outlen;) {
        if (*p == '{') {
            bool number = strncmp(p, "{id}", 4) == 0 || strncmp(p, "{index}", 7) == 0;
            out[n++] = number ? '1' : 'x';
            p = strchr(p, '}') + 1;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

static void openapi_lists_exactly_the_server_routes(void **state)
{
    (void)state;
    json_t *doc = openapi_load(), *paths = json_object_get(doc, "paths"), *item;
    const char *path;
    size_t n_ops = 0;
    json_object_foreach(paths, path, item)
    {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op)
        {
            char upper[8];
            method_case(method, true, upper);
            bool found = false;
            for (size_t r = 0; r < admin_n_routes && !found; r++)
                found = strcmp(admin_routes[r].method, upper) == 0 &&
                        strcmp(admin_routes[r].pattern, path) == 0;
            if (!found)
                fail_msg("openapi.json lists %s %s, which the server does not have", upper, path);
            /* Public routes and only they say "security": []. */
            json_t *security = json_object_get(op, "security");
            bool public_op = security && json_array_size(security) == 0;
            for (size_t r = 0; r < admin_n_routes; r++) {
                if (strcmp(admin_routes[r].method, upper) == 0 &&
                    strcmp(admin_routes[r].pattern, path) == 0)
                    assert_int_equal(public_op, (admin_routes[r].flags & ADMIN_PUBLIC) != 0);
            }
            n_ops++;
        }
    }
    for (size_t r = 0; r < admin_n_routes; r++) {
        json_t *ops = json_object_get(paths, admin_routes[r].pattern);
        char lower[8];
        method_case(admin_routes[r].method, false, lower);
        if (json_object_get(ops, lower) == NULL)
            fail_msg("the server has %s %s, which openapi.json does not list",
                     admin_routes[r].method, admin_routes[r].pattern);
    }
    assert_int_equal(n_ops, admin_n_routes);
    /* And the server serves this very file. */
    struct http h = http("GET", "/api/v1/openapi.json", NULL, "");
    assert_int_equal(h.status, 200);
    assert_true(json_equal(h.json, doc));
    http_free(&h);
    json_decref(doc);
}

static void every_route_refuses_unauthenticated_access(void **state)
{
    (void)state;
    json_t *doc = openapi_load(), *item;
    const char *path;
    int checked = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op)
        {
            json_t *security = json_object_get(op, "security");
            if (security && json_array_size(security) == 0)
                continue; /* public: setup, login, this description */
            char url[512], upper[8];
            method_case(method, true, upper);
            snprintf(url, sizeof(url), "/api/v1");
            concrete(path, url + 7, sizeof(url) - 7);
            bool has_body = json_object_get(op, "requestBody") != NULL;
            /* No credentials; then a forged cookie; then a made-up token. */
            const char *tries[] = {"", "Cookie: gslb_session=00112233\r\n",
                                   "Authorization: Bearer gslb_0000000000000000000000000000000000"
                                   "000000000000000000000000000000\r\n"};
            for (int t = 0; t < 3; t++) {
                struct http h = http(upper, url, has_body ? "{}" : NULL, tries[t]);
                if (h.status != 401)
                    fail_msg("%s %s with %s: %d, expected 401", upper, url,
                             t == 0 ? "no credentials" : tries[t], h.status);
                assert_non_null(json_object_get(json_object_get(h.json, "error"), "message"));
                http_free(&h);
            }
            checked++;
        }
    }
    assert_true(checked >= 40);
    json_decref(doc);
}

/* ---- first run, sessions, CSRF ---- */

static void setup_creates_the_first_admin_once_and_logs_in(void **state)
{
    (void)state;
    struct http h = http("GET", "/api/v1/setup", NULL, "");
    assert_int_equal(h.status, 200);
    assert_true(json_is_true(json_object_get(h.json, "needed")));
    http_free(&h);

    expect_answer(
        http("POST", "/api/v1/setup", "{\"username\":\"root\",\"password\":\"short\"}", ""), 400,
        "password");

    h = http("POST", "/api/v1/setup", "{\"username\":\"admin\",\"password\":\"" PASSWORD "\"}", "");
    assert_int_equal(h.status, 201);
    const char *set = resp_header(&h.r, "Set-Cookie");
    assert_non_null(set);
    assert_non_null(strstr(set, "HttpOnly"));
    assert_non_null(strstr(set, "SameSite=Strict"));
    assert_non_null(strstr(set, "Max-Age="));
    assert_null(strstr(set, "Secure")); /* plain HTTP here */
    assert_string_equal(jstr(h.json, "user"), "admin");
    assert_int_equal(strlen(jstr(h.json, "csrf")), 64);
    http_free(&h);

    /* A second setup, even with other credentials, is refused: an admin exists. */
    expect_answer(http("POST", "/api/v1/setup",
                       "{\"username\":\"mallory\",\"password\":\"" PASSWORD "\"}", ""),
                  409, NULL);
    h = http("GET", "/api/v1/setup", NULL, "");
    assert_true(json_is_false(json_object_get(h.json, "needed")));
    http_free(&h);

    assert_int_equal(login("admin", "wrong password!", cookie, csrf), 401);
    assert_int_equal(login("admin", PASSWORD, cookie, csrf), 200);
    h = as_admin("GET", "/api/v1/session", NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(jstr(h.json, "user"), "admin");
    assert_string_equal(jstr(h.json, "csrf"), csrf);
    http_free(&h);
}

static void setup_on_a_network_listener_is_for_loopback_clients_only(void **state)
{
    (void)state;
    /* A loopback listener (this test's) only has loopback clients: as before. */
    assert_true(admin_setup_allowed(true, "127.0.0.1"));
    /* On 0.0.0.0 or a public address, only the machine itself may create the first user. */
    assert_true(admin_setup_allowed(false, "127.0.0.1"));
    assert_true(admin_setup_allowed(false, "127.1.2.3"));
    assert_true(admin_setup_allowed(false, "::1"));
    assert_true(admin_setup_allowed(false, "::ffff:127.0.0.1"));
    assert_false(admin_setup_allowed(false, "192.0.2.7"));
    assert_false(admin_setup_allowed(false, "2001:db8::1"));
    assert_false(admin_setup_allowed(false, "::"));
    assert_false(admin_setup_allowed(false, "unknown"));
}

static void state_changes_need_the_csrf_token(void **state)
{
    (void)state;
    char headers[512];
    const char *region = "{\"name\":\"ap-south\",\"lat\":19.07,\"lon\":72.88}";
    snprintf(headers, sizeof(headers), "Cookie: %s\r\n", cookie);
    expect_code(http("POST", "/api/v1/regions", region, headers), 403, "csrf");
    snprintf(headers, sizeof(headers), "Cookie: %s\r\nX-CSRF-Token: %064d\r\n", cookie, 0);
    expect_code(http("POST", "/api/v1/regions", region, headers), 403, "csrf");
    expect_code(http("GET", "/api/v1/regions", NULL, ""), 401, "auth");
    /* A page of another origin, even with the token, is refused. */
    expect_answer(
        as_admin_with("POST", "/api/v1/regions", region, "Origin: http://evil.example\r\n"), 403,
        NULL);
    /* Form posts (not JSON) are refused before anything happens. */
    expect_answer(as_admin_with("POST", "/api/v1/logout", NULL,
                                "Content-Type: text/plain\r\nContent-Length: 2\r\n"),
                  415, NULL);
    expect_answer(as_admin("GET", "/api/v1/regions/ap-south", NULL), 404, NULL); /* not stored */
    expect_answer(as_admin("POST", "/api/v1/regions", region), 201, NULL);
    expect_answer(as_admin("DELETE", "/api/v1/regions/ap-south", NULL), 200, NULL);
}

static void repeated_failed_logins_are_throttled(void **state)
{
    (void)state;
    char c[160], t[80];
    expect_answer(as_admin("POST", "/api/v1/users",
                           "{\"username\":\"victim\",\"password\":\"" PASSWORD "\"}"),
                  201, NULL);
    for (int i = 0; i < ADMIN_USER_LOCK; i++)
        assert_int_equal(login("victim", "not the password", c, t), 401);
    /* Locked out now: even the right password waits. */
    char body[128];
    snprintf(body, sizeof(body), "{\"username\":\"victim\",\"password\":\"%s\"}", PASSWORD);
    struct http h = http("POST", "/api/v1/login", body, "");
    assert_int_equal(h.status, 429);
    const char *retry = resp_header(&h.r, "Retry-After");
    assert_non_null(retry);
    assert_true(atoi(retry) >= 1 && atoi(retry) <= ADMIN_LOCK_BASE / 1000);
    assert_string_equal(jstr(json_object_get(h.json, "error"), "code"), "throttled");
    http_free(&h);
    /* Other users are not locked out by it. */
    assert_int_equal(login("admin", PASSWORD, c, t), 200);
}

static void login_throttling_keys_ipv6_clients_by_their_64(void **state)
{
    (void)state;
    char a[128], b[128];
    admin_throttle_key("2001:db8:1:2:aaaa::1", a, sizeof(a));
    admin_throttle_key("2001:db8:1:2:bbbb:cccc:dddd:eeee", b, sizeof(b));
    assert_string_equal(a, "ip:2001:db8:1:2::/64");
    assert_string_equal(a, b); /* another address of the same /64: the same client */
    admin_throttle_key("2001:db8:1:3::1", b, sizeof(b));
    assert_string_not_equal(a, b);
    admin_throttle_key("192.0.2.7", a, sizeof(a));
    assert_string_equal(a, "ip:192.0.2.7");
    admin_throttle_key("192.0.2.8", b, sizeof(b));
    assert_string_not_equal(a, b);
    admin_throttle_key("unknown", a, sizeof(a));
    assert_string_equal(a, "ip:unknown");
}

static void api_tokens_work_without_csrf_and_can_be_revoked(void **state)
{
    (void)state;
    struct http h = as_admin("POST", "/api/v1/tokens", "{\"name\":\"ci\"}");
    assert_int_equal(h.status, 201);
    char auth[160];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", jstr(h.json, "token"));
    json_int_t id = json_integer_value(json_object_get(h.json, "id"));
    http_free(&h);

    h = as_admin("GET", "/api/v1/tokens", NULL);
    assert_int_equal(h.status, 200);
    assert_null(strstr(h.r.body, "gslb_")); /* never the secret again */
    http_free(&h);

    h = http("PATCH", "/api/v1/regions/us-east", "{\"display_name\":\"Virginia\"}", auth);
    assert_int_equal(h.status, 200);
    assert_string_equal(jstr(h.json, "display_name"), "Virginia");
    http_free(&h);
    h = http("GET", "/api/v1/audit?limit=1", NULL, auth);
    json_t *e = json_array_get(json_object_get(h.json, "entries"), 0);
    assert_string_equal(jstr(e, "actor"), "token:ci");
    assert_string_equal(jstr(e, "object"), "region us-east");
    assert_string_equal(jstr(json_object_get(e, "after"), "display_name"), "Virginia");
    assert_null(json_object_get(json_object_get(e, "before"), "display_name"));
    http_free(&h);

    char path[64];
    snprintf(path, sizeof(path), "/api/v1/tokens/%lld", (long long)id);
    expect_answer(as_admin("DELETE", path, NULL), 200, NULL);
    expect_answer(http("GET", "/api/v1/regions", NULL, auth), 401, NULL);
}

/* ---- hostile input and headers ---- */

static void script_names_are_rejected_and_text_stays_inert(void **state)
{
    (void)state;
    struct http h = as_admin("POST", "/api/v1/regions",
                             "{\"name\":\"<script>alert(1)</script>\",\"lat\":1,\"lon\":2}");
    assert_int_equal(h.status, 400);
    assert_string_equal(jstr(json_object_get(h.json, "error"), "field"), "name");
    assert_null(strstr(h.r.body, "</script>")); /* the echo is escaped */
    http_free(&h);

    expect_answer(
        as_admin("PATCH", "/api/v1/regions/eu-west",
                 "{\"display_name\":\"<script>alert(1)</script><img src=x onerror=alert(2)>\"}"),
        200, NULL);
    h = as_admin("GET", "/api/v1/regions/eu-west", NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(jstr(h.json, "display_name"),
                        "<script>alert(1)</script><img src=x onerror=alert(2)>");
    assert_null(strstr(h.r.body, "</script>"));
    assert_string_equal(resp_header(&h.r, "Content-Type"), "application/json");
    assert_string_equal(resp_header(&h.r, "X-Content-Type-Options"), "nosniff");
    http_free(&h);

    expect_answer(as_admin("POST", "/api/v1/services", "{\"name\":\"api\",\"hosts\":[\"<b>\"]}"),
                  400, NULL);
}

static void libmicrohttpd_messages_are_limited_to_one_a_second_per_kind(void **state)
{
    (void)state;
    static struct admin_log_limit l = {.lock = PTHREAD_MUTEX_INITIALIZER};
    static const char plain[] = "plain HTTP on a TLS port", other[] = "something else";
    uint64_t n = 99;
    assert_true(admin_log_allow(&l, plain, 10000, &n));
    assert_int_equal(n, 0);
    for (int i = 1; i <= 50; i++)
        assert_false(admin_log_allow(&l, plain, 10000 + i * 10, &n)); /* within the second */
    assert_true(admin_log_allow(&l, other, 10500, &n)); /* another kind has its own allowance */
    assert_int_equal(n, 0);
    assert_true(admin_log_allow(&l, plain, 11000, &n));
    assert_int_equal(n, 50); /* the next line says how many were held back */
    assert_false(admin_log_allow(&l, plain, 11999, &n));
    assert_true(admin_log_allow(&l, plain, 12000, &n));
    assert_int_equal(n, 1);
    /* More kinds than slots: the quietest is forgotten, nothing is refused for lack of room. */
    static const char many[ADMIN_LOG_KINDS + 4][2] = {{0}};
    for (size_t i = 0; i < ADMIN_LOG_KINDS + 4; i++)
        assert_true(admin_log_allow(&l, many[i], 20000 + (int64_t)i, &n));
    assert_false(admin_log_allow(&l, many[ADMIN_LOG_KINDS + 3], 20500, &n));
}

static void every_answer_carries_the_security_headers(void **state)
{
    (void)state;
    struct http answers[4] = {
        as_admin("GET", "/api/v1/version", NULL),
        http("GET", "/api/v1/nothing-here", NULL, ""),
        http("GET", "/", NULL, ""),
        http("GET", "/api/v1/regions", NULL, ""),
    };
    for (int i = 0; i < 4; i++) {
        struct http *h = &answers[i];
        assert_string_equal(resp_header(&h->r, "Content-Security-Policy"), CSP);
        assert_string_equal(resp_header(&h->r, "X-Frame-Options"), "DENY");
        assert_string_equal(resp_header(&h->r, "X-Content-Type-Options"), "nosniff");
        assert_string_equal(resp_header(&h->r, "Referrer-Policy"), "no-referrer");
        if (i != 2)
            assert_string_equal(resp_header(&h->r, "Cache-Control"), "no-store");
        http_free(h);
    }
    assert_int_equal(answers[1].status, 404);
    assert_int_equal(answers[3].status, 401);
}

static void loopback_console_refuses_foreign_host_names(void **state)
{
    (void)state;
    /* A page whose DNS name was rebound to 127.0.0.1 sends its own name as Host. */
    char raw[256];
    struct resp r;
    snprintf(raw, sizeof(raw),
             "GET /api/v1/setup HTTP/1.1\r\nHost: attacker.example:%d\r\nConnection: close\r\n\r\n",
             port);
    assert_int_equal(request(port, raw, &r), 421);
    resp_free(&r);
    snprintf(raw, sizeof(raw),
             "GET /api/v1/setup HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n", port);
    assert_int_equal(request(port, raw, &r), 200);
    resp_free(&r);
}

static void oversized_bodies_are_refused_unread(void **state)
{
    (void)state;
    expect_answer(as_admin_with("PUT", "/api/v1/topology", NULL,
                                "Content-Type: application/json\r\nContent-Length: 9000000\r\n"),
                  413, NULL);
    expect_answer(as_admin_with("POST", "/api/v1/regions", NULL,
                                "Content-Type: application/json\r\nContent-Length: 100000\r\n"),
                  413, NULL);
}

/* ---- the topology through the API ---- */

static json_int_t config_version(void)
{
    struct http h = as_admin("GET", "/api/v1/version", NULL);
    json_int_t v = json_integer_value(json_object_get(h.json, "config_version"));
    http_free(&h);
    return v;
}

static void edits_validate_name_the_field_and_store_nothing_invalid(void **state)
{
    (void)state;
    json_int_t before = config_version();
    expect_answer(
        as_admin("POST", "/api/v1/regions", "{\"name\":\"sa-east\",\"lat\":95,\"lon\":1}"), 400,
        "lat");
    expect_answer(as_admin("POST", "/api/v1/services/www/pools/eu-west/origins",
                           "{\"address\":\"127.0.0.1:9003\",\"weight\":5000}"),
                  400, "weight");
    expect_answer(as_admin("POST", "/api/v1/regions",
                           "{\"name\":\"sa-east\",\"lat\":-23.5,\"lon\":-46.6,\"colour\":\"red\"}"),
                  400, "colour");
    expect_answer(
        as_admin("PUT", "/api/v1/regions/eu-west", "{\"name\":\"eu-north\",\"lat\":1,\"lon\":1}"),
        400, NULL);
    expect_answer(as_admin("DELETE", "/api/v1/regions/us-east", NULL), 409, NULL); /* in use */
    /* A duplicate names the body's own field, not the stored object. */
    expect_answer(as_admin("POST", "/api/v1/regions", "{\"name\":\"eu-west\",\"lat\":1,\"lon\":1}"),
                  409, "name");
    expect_answer(
        as_admin("POST", "/api/v1/services", "{\"name\":\"www\",\"hosts\":[\"a.example\"]}"), 409,
        "name");
    expect_answer(as_admin("POST", "/api/v1/services/www/pools/eu-west/origins",
                           "{\"address\":\"127.0.0.1:9001\"}"),
                  409, "address");
    expect_answer(as_admin("PUT", "/api/v1/topology", "{\"regions\":[{\"name\":\"x\",\"lat\":1}]}"),
                  400, "regions[0].lon");
    assert_int_equal(config_version(), before);
}

static void origins_rules_and_states_change_through_the_api(void **state)
{
    (void)state;
    expect_answer(as_admin("POST", "/api/v1/services/www/pools/eu-west/origins",
                           "{\"address\":\"[::1]:9003\",\"weight\":3}"),
                  201, NULL);
    struct http h =
        as_admin("POST", "/api/v1/services/www/pools/eu-west/origins/%5B%3A%3A1%5D%3A9003/state",
                 "{\"action\":\"drain\"}");
    assert_int_equal(h.status, 200);
    assert_string_equal(jstr(h.json, "state"), "draining");
    http_free(&h);
    h = as_admin("POST", "/api/v1/services/www/pools/eu-west/origins/%5B%3A%3A1%5D%3A9003/state",
                 "{\"action\":\"force-down\"}");
    assert_string_equal(jstr(h.json, "health"), "down");
    http_free(&h);
    h = as_admin("GET", "/api/v1/services/www/pools/eu-west", NULL);
    assert_int_equal(json_array_size(json_object_get(h.json, "origins")), 2);
    http_free(&h);
    expect_answer(
        as_admin("DELETE", "/api/v1/services/www/pools/eu-west/origins/%5B%3A%3A1%5D%3A9003", NULL),
        200, NULL);

    h = as_admin("POST", "/api/v1/services/www/rules",
                 "{\"match\":{\"country\":\"de\"},\"regions\":[\"us-east\"]}");
    assert_int_equal(h.status, 201);
    assert_int_equal(json_integer_value(json_object_get(h.json, "index")), 0);
    assert_string_equal(jstr(json_object_get(json_object_get(h.json, "rule"), "match"), "country"),
                        "DE");
    http_free(&h);
    h = as_admin("PATCH", "/api/v1/services/www", "{\"sticky\":true}");
    assert_int_equal(h.status, 200);
    assert_true(json_is_true(json_object_get(h.json, "sticky")));
    assert_int_equal(json_array_size(json_object_get(h.json, "rules")), 1); /* kept */
    http_free(&h);
    expect_answer(as_admin("PUT", "/api/v1/services/www",
                           "{\"hosts\":[\"www.example.com\"],\"rules\":[]}"), /* not here */
                  400, "rules");
    expect_answer(as_admin("DELETE", "/api/v1/services/www/rules/0", NULL), 200, NULL);

    h = as_admin("POST", "/api/v1/regions/us-east/state", "{\"action\":\"disable\"}");
    assert_string_equal(jstr(h.json, "state"), "disabled");
    http_free(&h);
    expect_answer(as_admin("POST", "/api/v1/regions/us-east/state", "{\"action\":\"explode\"}"),
                  400, "action");
    h = as_admin("POST", "/api/v1/regions/us-east/state", "{\"action\":\"enable\"}");
    assert_string_equal(jstr(h.json, "state"), "active");
    http_free(&h);
}

static void audit_log_pages_back_through_every_change(void **state)
{
    (void)state;
    struct http h = as_admin("GET", "/api/v1/audit?limit=3", NULL);
    json_t *entries = json_object_get(h.json, "entries");
    assert_int_equal(json_array_size(entries), 3);
    json_int_t next = json_integer_value(json_object_get(h.json, "next_before"));
    json_int_t last = json_integer_value(json_object_get(json_array_get(entries, 2), "id"));
    assert_int_equal(next, last);
    assert_string_equal(jstr(json_array_get(entries, 0), "actor"), "admin");
    http_free(&h);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/audit?before=%lld&limit=1000", (long long)next);
    h = as_admin("GET", path, NULL);
    entries = json_object_get(h.json, "entries");
    assert_true(json_array_size(entries) > 3);
    assert_true(json_integer_value(json_object_get(json_array_get(entries, 0), "id")) < next);
    assert_true(json_is_null(json_object_get(h.json, "next_before")));
    /* User and token changes are there too, without secrets. */
    bool user_added = false;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        user_added |= strcmp(jstr(e, "action"), "user.add") == 0;
    }
    assert_true(user_added);
    assert_null(strstr(h.r.body, "scrypt"));
    http_free(&h);
    expect_answer(as_admin("GET", "/api/v1/audit?limit=0", NULL), 400, "limit");
}

static void route_explains_exactly_like_gslbctl(void **state)
{
    (void)state;
    /* The snapshot's version: never ahead of the store, and behind it only until the daemon has
     * taken the previous test's last change (gslbctl reads the store itself). */
    struct http h;
    json_int_t snap_version;
    for (int64_t end = now_ms() + 3000;;) {
        h = as_admin("GET", "/api/v1/route?ip=81.2.69.142&host=www.example.com", NULL);
        assert_int_equal(h.status, 200);
        snap_version = json_integer_value(json_object_get(h.json, "config_version"));
        assert_true(snap_version > 0 && snap_version <= config_version());
        if (snap_version == config_version() || now_ms() > end)
            break;
        http_free(&h);
        sleep_ms(50);
    }
    assert_string_equal(jstr(h.json, "region"), "eu-west");
    assert_string_equal(jstr(json_object_get(h.json, "geo"), "country"), "GB");
    json_object_del(h.json, "config_version"); /* the rest is gslbctl route's object */

    char cmd[1024], out[8192] = "";
    snprintf(cmd, sizeof(cmd),
             "%s/gslbctl --db %s --geoip %s route 81.2.69.142 --host www.example.com", build,
             db_path, city);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    json_t *cli = json_loads(out, 0, NULL);
    assert_non_null(cli);
    assert_true(json_equal(cli, h.json));
    json_decref(cli);
    http_free(&h);

    expect_answer(as_admin("GET", "/api/v1/route?ip=not-an-ip&host=www.example.com", NULL), 400,
                  "ip");
}

static void whole_topology_export_and_import(void **state)
{
    (void)state;
    struct http h = as_admin("GET", "/api/v1/topology", NULL);
    assert_int_equal(h.status, 200);
    char *doc = strdup(h.r.body);
    http_free(&h);
    json_int_t before = config_version();
    h = as_admin("PUT", "/api/v1/topology", doc);
    assert_int_equal(h.status, 200);
    assert_int_equal(json_integer_value(json_object_get(h.json, "config_version")), before + 1);
    http_free(&h);
    h = as_admin("GET", "/api/v1/topology", NULL);
    assert_string_equal(h.r.body, doc);
    http_free(&h);
    free(doc);
}

static void whole_topology_replace_checks_the_version_named(void **state)
{
    (void)state;
    struct http h = as_admin("GET", "/api/v1/topology", NULL);
    char etag[32], headers[64], *doc = strdup(h.r.body);
    snprintf(etag, sizeof(etag), "%s", resp_header(&h.r, "ETag"));
    http_free(&h);
    json_int_t before = config_version();
    char want[32];
    snprintf(want, sizeof(want), "\"%lld\"", (long long)before);
    assert_string_equal(etag, want);

    /* An older version: 412, code "stale", nothing changes. */
    snprintf(headers, sizeof(headers), "If-Match: \"%lld\"\r\n", (long long)before - 1);
    h = as_admin_with("PUT", "/api/v1/topology", doc, headers);
    assert_true(json_is_null(json_object_get(json_object_get(h.json, "error"), "field")));
    expect_code(h, 412, "stale");
    expect_code(as_admin_with("PUT", "/api/v1/topology", doc, "If-Match: yesterday\r\n"), 412,
                "stale");
    assert_int_equal(config_version(), before);

    /* The current one: replaced, and the answer's ETag is the new version. */
    snprintf(headers, sizeof(headers), "If-Match: %s\r\n", etag);
    h = as_admin_with("PUT", "/api/v1/topology", doc, headers);
    assert_int_equal(h.status, 200);
    snprintf(want, sizeof(want), "\"%lld\"", (long long)before + 1);
    assert_string_equal(resp_header(&h.r, "ETag"), want);
    http_free(&h);
    /* ...which the same If-Match cannot do twice. */
    expect_code(as_admin_with("PUT", "/api/v1/topology", doc, headers), 412, "stale");
    assert_int_equal(config_version(), before + 1);
    free(doc);
}

static void object_edits_check_the_version_named(void **state)
{
    (void)state;
    struct http h = as_admin("GET", "/api/v1/regions/us-east", NULL);
    char etag[32], stale[64], current[64];
    assert_non_null(resp_header(&h.r, "ETag"));
    snprintf(etag, sizeof(etag), "%s", resp_header(&h.r, "ETag"));
    http_free(&h);
    json_int_t before = config_version();
    char want[32];
    snprintf(want, sizeof(want), "\"%lld\"", (long long)before);
    assert_string_equal(etag, want);
    snprintf(stale, sizeof(stale), "If-Match: \"%lld\"\r\n", (long long)before - 1);
    snprintf(current, sizeof(current), "If-Match: %s\r\n", etag);

    /* Another version, or no version at all: 412 "stale" on every object's PUT and PATCH, nothing
     * changes. */
    expect_code(
        as_admin_with("PATCH", "/api/v1/regions/us-east", "{\"display_name\":\"Old\"}", stale), 412,
        "stale");
    expect_code(as_admin_with("PUT", "/api/v1/regions/us-east",
                              "{\"name\":\"us-east\",\"lat\":39.04,\"lon\":-77.49}", stale),
                412, "stale");
    expect_code(as_admin_with("PATCH", "/api/v1/services/www", "{\"policy\":\"failover\"}", stale),
                412, "stale");
    expect_code(
        as_admin_with("PATCH", "/api/v1/services/www/pools/eu-west", "{\"min_healthy\":1}", stale),
        412, "stale");
    expect_code(as_admin_with("PATCH", "/api/v1/services/www/pools/eu-west/origins/127.0.0.1:9001",
                              "{\"weight\":7}", stale),
                412, "stale");
    expect_code(as_admin_with("PATCH", "/api/v1/regions/us-east", "{\"display_name\":\"Old\"}",
                              "If-Match: yesterday\r\n"),
                412, "stale");
    assert_int_equal(config_version(), before);

    /* The current one: changed once; the same If-Match cannot do it twice. */
    h = as_admin_with("PATCH", "/api/v1/regions/us-east", "{\"display_name\":\"Ashburn\"}",
                      current);
    assert_int_equal(h.status, 200);
    assert_string_equal(jstr(h.json, "display_name"), "Ashburn");
    http_free(&h);
    assert_int_equal(config_version(), before + 1);
    expect_code(
        as_admin_with("PATCH", "/api/v1/regions/us-east", "{\"display_name\":\"X\"}", current), 412,
        "stale");
    /* Without If-Match, as before: last write wins. */
    expect_answer(as_admin("PATCH", "/api/v1/services/www/pools/eu-west/origins/127.0.0.1:9001",
                           "{\"weight\":7}"),
                  200, NULL);
}

static void pool_settings_change_without_touching_origins(void **state)
{
    (void)state;
    const char *path = "/api/v1/services/www/pools/eu-west";
    struct http h = as_admin("PUT", path,
                             "{\"region\":\"eu-west\",\"failback\":\"manual\","
                             "\"holddown_ms\":5000,\"check\":{\"path\":\"/healthz\"}}");
    assert_int_equal(h.status, 200);
    assert_string_equal(jstr(h.json, "failback"), "manual");
    assert_int_equal(json_integer_value(json_object_get(h.json, "holddown_ms")), 5000);
    assert_int_equal(json_array_size(json_object_get(h.json, "origins")), 1);
    http_free(&h);

    h = as_admin("PATCH", path, "{\"min_weight_percent\":50}");
    assert_int_equal(h.status, 200);
    assert_int_equal(json_integer_value(json_object_get(h.json, "min_weight_percent")), 50);
    assert_string_equal(jstr(h.json, "failback"), "manual"); /* merged */
    assert_string_equal(jstr(json_object_get(h.json, "check"), "path"), "/healthz");
    http_free(&h);
    h = as_admin("GET", "/api/v1/audit?limit=1", NULL);
    json_t *e = json_array_get(json_object_get(h.json, "entries"), 0);
    assert_string_equal(jstr(e, "action"), "pool.set");
    assert_string_equal(jstr(e, "object"), "pool www/eu-west");
    http_free(&h);

    json_int_t before = config_version();
    expect_answer(as_admin("PUT", path, "{\"min_healthy\":0}"), 400, "min_healthy");
    expect_answer(as_admin("PUT", path, "{\"min_healthy\":5}"), 400, "min_healthy");
    expect_answer(as_admin("PUT", path, "{\"failback\":\"later\"}"), 400, "failback");
    expect_answer(as_admin("PUT", path, "{\"check\":{\"path\":\"x\"}}"), 400, "check.path");
    expect_answer(as_admin("PUT", path, "{\"origins\":[]}"), 400, "origins");
    expect_answer(as_admin("PUT", path, "{\"region\":\"us-east\"}"), 400, "region");
    expect_answer(as_admin("PUT", "/api/v1/services/www/pools/nowhere", "{}"), 404, NULL);
    assert_int_equal(config_version(), before);

    /* A GET's answer, origins included, goes back as it is; {} is every default again. */
    h = as_admin("GET", path, NULL);
    char *doc = strdup(h.r.body);
    http_free(&h);
    expect_answer(as_admin("PUT", path, doc), 200, NULL);
    free(doc);
    h = as_admin("PUT", path, "{}");
    assert_int_equal(h.status, 200);
    assert_null(json_object_get(h.json, "failback")); /* defaults are left out */
    assert_null(json_object_get(h.json, "min_weight_percent"));
    assert_int_equal(json_array_size(json_object_get(h.json, "origins")), 1);
    http_free(&h);
}

static void manual_failback_holds_show_and_resume_lifts_them(void **state)
{
    (void)state;
    char err[256];
    /* Holds belong to pools that fail back by hand: gslbd's prober drops any other it finds when
     * it takes a new configuration, which reaches it within a second of a commit (the earlier
     * tests' included). */
    const char *pool = "/api/v1/services/www/pools/us-east";
    expect_answer(as_admin("PUT", pool, "{\"failback\":\"manual\"}"), 200, NULL);
    sleep_ms(1500);
    struct db *db = db_open(db_path, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(db_failback_hold(db, "www/us-east", true, now_ms(), "down at 12:00"), 0);
    db_close(db);
    struct http h = as_admin("GET", "/api/v1/health", NULL);
    json_t *holds = json_object_get(h.json, "holds");
    assert_int_equal(json_array_size(holds), 1);
    assert_string_equal(jstr(json_array_get(holds, 0), "object"), "www/us-east");
    assert_string_equal(jstr(json_array_get(holds, 0), "reason"), "down at 12:00");
    assert_true(json_integer_value(json_object_get(json_array_get(holds, 0), "since_ms")) > 0);
    http_free(&h);
    expect_answer(as_admin("POST", "/api/v1/regions/us-east/state", "{\"action\":\"resume\"}"), 200,
                  NULL);
    h = as_admin("GET", "/api/v1/health", NULL);
    assert_int_equal(json_array_size(json_object_get(h.json, "holds")), 0);
    http_free(&h);
    expect_answer(as_admin("PUT", pool, "{}"), 200, NULL); /* every default again */
}

static void dashboard_routes_answer(void **state)
{
    (void)state;
    struct http h = as_admin("GET", "/api/v1/countries", NULL);
    assert_true(json_array_size(json_object_get(h.json, "countries")) > 200);
    http_free(&h);
    /* A host no service serves: counted as unrouted, not as a region called "none". */
    char raw[256];
    struct resp r;
    snprintf(raw, sizeof(raw),
             "GET / HTTP/1.1\r\nHost: nobody.example\r\nConnection: close\r\n\r\n");
    assert_true(request(gslbd.port, raw, &r) >= 400);
    resp_free(&r);
    h = as_admin("GET", "/api/v1/stats", NULL);
    assert_int_equal(h.status, 200);
    json_t *regions = json_object_get(h.json, "regions"), *item;
    size_t i;
    assert_true(json_is_array(regions));
    json_array_foreach(regions, i, item)
    {
        assert_string_not_equal(jstr(item, "region"), "none");
    }
    json_t *unrouted = json_object_get(h.json, "unrouted");
    assert_true(json_integer_value(json_object_get(unrouted, "requests")) >= 1);
    assert_true(json_is_object(json_object_get(unrouted, "by_class")));
    assert_true(json_integer_value(json_object_get(h.json, "time_ms")) > 0);
    http_free(&h);
    h = as_admin("GET", "/api/v1/health", NULL);
    assert_true(json_is_array(json_object_get(h.json, "objects")));
    assert_true(json_is_array(json_object_get(h.json, "holds")));
    http_free(&h);
    h = as_admin("GET", "/api/v1/health/history?limit=5", NULL);
    assert_true(json_is_array(json_object_get(h.json, "changes")));
    http_free(&h);
}

static void users_and_tokens_from_gslbctl_work_in_the_api(void **state)
{
    (void)state;
    char cmd[1024], token[128] = "", c[160], t[80];
    snprintf(cmd, sizeof(cmd),
             "echo 'operator password 1' | %s/gslbctl --db %s --actor cli:test user add operator",
             build, db_path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(login("operator", "operator password 1", c, t), 200);
    snprintf(cmd, sizeof(cmd), "%s/gslbctl --db %s token add deploy 2>/dev/null", build, db_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(fgets(token, sizeof(token), p));
    assert_int_equal(pclose(p), 0);
    token[strcspn(token, "\n")] = '\0';
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    struct http h = http("GET", "/api/v1/session", NULL, auth);
    assert_int_equal(h.status, 200);
    assert_string_equal(jstr(h.json, "user"), "deploy");
    http_free(&h);
    snprintf(cmd, sizeof(cmd), "%s/gslbctl --db %s token remove deploy", build, db_path);
    assert_int_equal(system(cmd), 0);
    expect_answer(http("GET", "/api/v1/session", NULL, auth), 401, NULL);
}

static void removing_a_user_revokes_the_tokens_they_created(void **state)
{
    (void)state;
    char c[160], t[80], headers[512], auth[160];
    expect_answer(as_admin("POST", "/api/v1/users",
                           "{\"username\":\"leaver\",\"password\":\"" PASSWORD "\"}"),
                  201, NULL);
    assert_int_equal(login("leaver", PASSWORD, c, t), 200);
    snprintf(headers, sizeof(headers), "Cookie: %s\r\nX-CSRF-Token: %s\r\n", c, t);
    struct http h = http("POST", "/api/v1/tokens", "{\"name\":\"leavers-ci\"}", headers);
    assert_int_equal(h.status, 201);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", jstr(h.json, "token"));
    http_free(&h);
    expect_answer(http("GET", "/api/v1/session", NULL, auth), 200, NULL);

    /* A new password ends sessions but leaves tokens: they are credentials of their own. */
    expect_answer(
        as_admin("PUT", "/api/v1/users/leaver/password", "{\"password\":\"another password 2\"}"),
        200, NULL);
    expect_answer(http("GET", "/api/v1/session", NULL, auth), 200, NULL);

    expect_answer(as_admin("DELETE", "/api/v1/users/leaver", NULL), 200, NULL);
    expect_answer(http("GET", "/api/v1/session", NULL, auth), 401, NULL);
    h = as_admin("GET", "/api/v1/tokens", NULL);
    assert_null(strstr(h.r.body, "leavers-ci"));
    http_free(&h);
    h = as_admin("GET", "/api/v1/audit?limit=2", NULL);
    json_t *entries = json_object_get(h.json, "entries");
    assert_string_equal(jstr(json_array_get(entries, 0), "action"), "token.remove");
    assert_string_equal(jstr(json_array_get(entries, 0), "object"), "token leavers-ci");
    assert_string_equal(jstr(json_array_get(entries, 0), "actor"), "admin");
    assert_string_equal(jstr(json_array_get(entries, 1), "action"), "user.remove");
    http_free(&h);
}

static void own_password_change_needs_the_current_one_and_resets_are_audited(void **state)
{
    (void)state;
    char c[160], t[80], headers[512];
    expect_answer(as_admin("POST", "/api/v1/users",
                           "{\"username\":\"changer\",\"password\":\"" PASSWORD "\"}"),
                  201, NULL);
    assert_int_equal(login("changer", PASSWORD, c, t), 200);
    snprintf(headers, sizeof(headers), "Cookie: %s\r\nX-CSRF-Token: %s\r\n", c, t);
    const char *path = "/api/v1/users/changer/password";
    expect_answer(http("PUT", path, "{\"password\":\"new password 123\"}", headers), 400,
                  "current_password");
    expect_answer(http("PUT", path,
                       "{\"current_password\":\"not my password\","
                       "\"password\":\"new password 123\"}",
                       headers),
                  403, "current_password");
    assert_int_equal(login("changer", PASSWORD, c, t), 200); /* unchanged */
    snprintf(headers, sizeof(headers), "Cookie: %s\r\nX-CSRF-Token: %s\r\n", c, t);
    struct http h = http("PUT", path,
                         "{\"current_password\":\"" PASSWORD "\","
                         "\"password\":\"new password 123\"}",
                         headers);
    assert_int_equal(h.status, 200);
    assert_non_null(jstr(h.json, "csrf")); /* a new session */
    http_free(&h);
    assert_int_equal(login("changer", "new password 123", c, t), 200);
    h = as_admin("GET", "/api/v1/audit?limit=1", NULL);
    json_t *e = json_array_get(json_object_get(h.json, "entries"), 0);
    assert_string_equal(jstr(e, "action"), "user.password");
    assert_string_equal(jstr(e, "actor"), "changer");
    http_free(&h);

    /* Another user's password: an administrator's reset, no current password, audited as one. */
    expect_answer(as_admin("PUT", path, "{\"password\":\"reset password 1\"}"), 200, NULL);
    h = as_admin("GET", "/api/v1/audit?limit=1", NULL);
    e = json_array_get(json_object_get(h.json, "entries"), 0);
    assert_string_equal(jstr(e, "action"), "user.password_reset");
    assert_string_equal(jstr(e, "actor"), "admin");
    assert_string_equal(jstr(e, "object"), "user changer");
    http_free(&h);
    assert_int_equal(login("changer", "reset password 1", c, t), 200);
    expect_answer(as_admin("DELETE", "/api/v1/users/changer", NULL), 200, NULL);
}

struct remover {
    pthread_barrier_t *start;
    const char *name;
    int rc;
};

static void *remover_run(void *arg)
{
    struct remover *r = arg;
    char err[512];
    struct db *db = db_open(db_path, err, sizeof(err));
    pthread_barrier_wait(r->start);
    r->rc = db ? db_user_remove_keep_one(db, r->name, "test", err, sizeof(err)) : -EIO;
    db_close(db);
    return NULL;
}

static void two_removals_at_once_cannot_remove_the_last_users(void **state)
{
    (void)state;
    char err[512];
    struct db *db = db_open(db_path, err, sizeof(err));
    assert_non_null(db);
    /* The last test: every user goes, then two at a time race to remove each other. */
    struct db_user *users;
    size_t n;
    assert_int_equal(db_user_list(db, &users, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(db_user_remove(db, users[i].name, "test", err, sizeof(err)), 0);
    db_user_free(users, n);
    for (int round = 0; round < 5; round++) {
        struct remover r[2] = {{.name = "racer-a"}, {.name = "racer-b"}};
        pthread_barrier_t start;
        pthread_t t[2];
        assert_int_equal(db_user_add(db, "racer-a", PASSWORD, "test", err, sizeof(err)), 0);
        assert_int_equal(db_user_add(db, "racer-b", PASSWORD, "test", err, sizeof(err)), 0);
        pthread_barrier_init(&start, NULL, 2);
        for (int i = 0; i < 2; i++) {
            r[i].start = &start;
            pthread_create(&t[i], NULL, remover_run, &r[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&start);
        /* One went, the other was refused: a user is left. */
        assert_true((r[0].rc == 0 && r[1].rc == -EBUSY) || (r[0].rc == -EBUSY && r[1].rc == 0));
        int64_t left = 0;
        assert_int_equal(db_user_count(db, &left), 0);
        assert_int_equal(left, 1);
        assert_int_equal(db_user_remove_keep_one(db, r[0].rc == 0 ? "racer-b" : "racer-a", "t", err,
                                                 sizeof(err)),
                         -EBUSY);
        assert_non_null(strstr(err, "last user"));
        assert_int_equal(
            db_user_remove(db, r[0].rc == 0 ? "racer-b" : "racer-a", "test", err, sizeof(err)), 0);
    }
    db_close(db);
}

static void logout_ends_the_session(void **state)
{
    (void)state;
    struct http h = as_admin("POST", "/api/v1/logout", NULL);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(resp_header(&h.r, "Set-Cookie"), "Max-Age=0"));
    http_free(&h);
    expect_answer(as_admin("GET", "/api/v1/session", NULL), 401, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(openapi_lists_exactly_the_server_routes),
        cmocka_unit_test(every_route_refuses_unauthenticated_access),
        cmocka_unit_test(setup_creates_the_first_admin_once_and_logs_in),
        cmocka_unit_test(setup_on_a_network_listener_is_for_loopback_clients_only),
        cmocka_unit_test(state_changes_need_the_csrf_token),
        cmocka_unit_test(repeated_failed_logins_are_throttled),
        cmocka_unit_test(login_throttling_keys_ipv6_clients_by_their_64),
        cmocka_unit_test(api_tokens_work_without_csrf_and_can_be_revoked),
        cmocka_unit_test(script_names_are_rejected_and_text_stays_inert),
        cmocka_unit_test(libmicrohttpd_messages_are_limited_to_one_a_second_per_kind),
        cmocka_unit_test(every_answer_carries_the_security_headers),
        cmocka_unit_test(loopback_console_refuses_foreign_host_names),
        cmocka_unit_test(oversized_bodies_are_refused_unread),
        cmocka_unit_test(edits_validate_name_the_field_and_store_nothing_invalid),
        cmocka_unit_test(origins_rules_and_states_change_through_the_api),
        cmocka_unit_test(audit_log_pages_back_through_every_change),
        cmocka_unit_test(route_explains_exactly_like_gslbctl),
        cmocka_unit_test(whole_topology_export_and_import),
        cmocka_unit_test(whole_topology_replace_checks_the_version_named),
        cmocka_unit_test(object_edits_check_the_version_named),
        cmocka_unit_test(pool_settings_change_without_touching_origins),
        cmocka_unit_test(manual_failback_holds_show_and_resume_lifts_them),
        cmocka_unit_test(dashboard_routes_answer),
        cmocka_unit_test(users_and_tokens_from_gslbctl_work_in_the_api),
        cmocka_unit_test(removing_a_user_revokes_the_tokens_they_created),
        cmocka_unit_test(own_password_change_needs_the_current_one_and_resets_are_audited),
        cmocka_unit_test(logout_ends_the_session),
        cmocka_unit_test(two_removals_at_once_cannot_remove_the_last_users),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* tests/admin/test_tls.c - the admin console over HTTPS (admin-tls-cert, admin-tls-key): a real
 * gslbd with a certificate made by Debian's openssl command, its console on a loopback port chosen
 * by the OS, and an OpenSSL client written here that does not verify the (self-signed)
 * certificate.
 *
 * First-run setup and login work over TLS and the session cookie is Secure; the session then
 * works for reads and CSRF-protected changes, whose Origin must be the https:// one; plain HTTP
 * to the port gets no answer (and a flood of it logs a line a second); only TLS 1.2 and 1.3 are
 * accepted (a TLS 1.1 client is refused, when this OpenSSL can still make one); and a key file that
 * holds no key, or the key of another certificate, keeps gslbd from starting with a message that
 * names admin-tls-key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/proxy/harness.h"

#define PASSWORD "correct horse battery"

static struct proc gslbd;
static int port;
static SSL_CTX *client_ctx;
static char cert[160], key[160], cookie[160], csrf[80];

/* ---- an HTTPS client ---- */

struct https {
    int status; /* -1: no answer */
    char *raw;  /* the whole answer, head and body */
    json_t *json;
};

static void https_free(struct https *h)
{
    json_decref(h->json);
    free(h->raw);
}

/* The value of header <name> in <h>'s head, copied into <out> ("" when missing). */
static const char *https_header(const struct https *h, const char *name, char *out, size_t len)
{
    const char *end = h->raw ? strstr(h->raw, "\r\n\r\n") : NULL;
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = h->raw ? strstr(h->raw, "\r\n") : NULL; p && p < end;
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n + strspn(p + 3 + n, " ");
            snprintf(out, len, "%.*s", (int)strcspn(v, "\r"), v);
            break;
        }
    }
    return out;
}

/* Sends <method> <path> with the JSON <body> (NULL: none) and extra header lines <headers> on a
 * new TLS connection, and reads the answer until the server closes (Connection: close). */
static struct https https(const char *method, const char *path, const char *body,
                          const char *headers)
{
    struct https h = {.status = -1};
    char addr[32], head[2048];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s", method,
                     path, port, headers);
    if (body)
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", strlen(body));
    snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");

    BIO *b = BIO_new_ssl_connect(client_ctx);
    int fd = -1;
    BIO_set_conn_hostname(b, addr);
    if (BIO_do_connect(b) <= 0 || BIO_get_fd(b, &fd) < 0) {
        BIO_free_all(b);
        return h;
    }
    struct timeval tv = {10, 0}; /* a silent server fails the test instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (BIO_do_handshake(b) <= 0 || BIO_puts(b, head) <= 0 || (body && BIO_puts(b, body) <= 0)) {
        BIO_free_all(b);
        return h;
    }
    size_t cap = 16384, len = 0;
    h.raw = malloc(cap + 1);
    for (int got; (got = BIO_read(b, h.raw + len, (int)(cap - len))) > 0;) {
        len += (size_t)got;
        if (len == cap)
            h.raw = realloc(h.raw, (cap *= 2) + 1);
    }
    h.raw[len] = '\0';
    BIO_free_all(b);
    const char *sep = strstr(h.raw, "\r\n\r\n");
    if (strncmp(h.raw, "HTTP/1.1 ", 9) == 0 && sep) {
        h.status = atoi(h.raw + 9);
        h.json = json_loads(sep + 4, 0, NULL);
    }
    return h;
}

/* The same with the session cookie and CSRF token of the logged-in user, then <headers>. */
static struct https as_admin(const char *method, const char *path, const char *body,
                             const char *headers)
{
    char all[1024];
    snprintf(all, sizeof(all), "Cookie: %s\r\nX-CSRF-Token: %s\r\n%s", cookie, csrf, headers);
    return https(method, path, body, all);
}

/* Checks that <h> answered <status>; frees <h>. */
static void expect_status(struct https h, int status)
{
    if (h.status != status)
        fail_msg("answered %d, expected %d: %.300s", h.status, status, h.raw ? h.raw : "");
    https_free(&h);
}

/* Posts the admin's credentials to <path>, which must answer <status> with a Secure, HttpOnly,
 * SameSite=Strict session cookie; keeps that session for as_admin(). */
static void log_in_at(const char *path, int status)
{
    char set[256];
    struct https h =
        https("POST", path, "{\"username\":\"admin\",\"password\":\"" PASSWORD "\"}", "");
    assert_int_equal(h.status, status);
    https_header(&h, "Set-Cookie", set, sizeof(set));
    assert_non_null(strstr(set, "; Secure"));
    assert_non_null(strstr(set, "; HttpOnly"));
    assert_non_null(strstr(set, "; SameSite=Strict"));
    snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(set, ";"), set);
    snprintf(csrf, sizeof(csrf), "%s", json_string_value(json_object_get(h.json, "csrf")));
    assert_true(strncmp(cookie, "gslb_session=", 13) == 0);
    assert_int_equal(strlen(csrf), 64);
    https_free(&h);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    harness_init("gslb-admin-tls");
    topology_import(db_path, "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, "
                             "\"lon\": -6.26}]}");
    make_certificate("console", "localhost", cert, key);
    const char *extra[] = {
        "--admin-listen", "127.0.0.1:0", "--admin-tls-cert", cert, "--admin-tls-key", key, NULL};
    gslbd = gslbd_start(extra);
    port = gslbd_admin_port(&gslbd);
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL); /* self-signed */
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    gslbd_stop(&gslbd);
    SSL_CTX_free(client_ctx);
    harness_fini();
    return 0;
}

/* ---- tests ---- */

static void setup_and_login_work_over_https_with_a_secure_cookie(void **state)
{
    (void)state;
    char value[256];
    struct https h = https("GET", "/api/v1/setup", NULL, "");
    assert_int_equal(h.status, 200);
    assert_true(json_is_true(json_object_get(h.json, "needed")));
    assert_string_equal(https_header(&h, "Strict-Transport-Security", value, sizeof(value)),
                        "max-age=31536000");
    https_free(&h);

    log_in_at("/api/v1/setup", 201);
    h = as_admin("GET", "/api/v1/session", NULL, "");
    assert_int_equal(h.status, 200);
    https_free(&h);
    log_in_at("/api/v1/login", 200);
    h = as_admin("GET", "/api/v1/session", NULL, "");
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "user")), "admin");
    https_free(&h);
}

static void changes_need_the_https_origin(void **state)
{
    (void)state;
    char origin[128];
    const char *region = "{\"name\":\"us-east\",\"lat\":39.04,\"lon\":-77.49}";
    snprintf(origin, sizeof(origin), "Origin: http://127.0.0.1:%d\r\n", port);
    expect_status(as_admin("POST", "/api/v1/regions", region, origin), 403);
    snprintf(origin, sizeof(origin), "Origin: https://127.0.0.1:%d\r\n", port);
    expect_status(as_admin("POST", "/api/v1/regions", region, origin), 201);
    expect_status(as_admin("DELETE", "/api/v1/regions/us-east", NULL, ""), 200);
}

static void logout_clears_the_cookie_securely(void **state)
{
    (void)state;
    char value[256];
    struct https h = as_admin("POST", "/api/v1/logout", NULL, "");
    assert_int_equal(h.status, 200);
    https_header(&h, "Set-Cookie", value, sizeof(value));
    assert_non_null(strstr(value, "Max-Age=0"));
    assert_non_null(strstr(value, "; Secure"));
    https_free(&h);
    expect_status(as_admin("GET", "/api/v1/session", NULL, ""), 401);
}

static void plain_http_gets_no_answer(void **state)
{
    (void)state;
    char raw[256];
    struct resp r;
    snprintf(raw, sizeof(raw),
             "GET /api/v1/setup HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", port);
    assert_int_equal(request(port, raw, &r), -1);
    resp_free(&r);
    /* Each such client makes libmicrohttpd log a warning: a flood of them logs one line a second
     * per kind, not one per client. */
    FILE *f = fopen(gslbd.log, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long start = ftell(f);
    for (int i = 0; i < 30; i++) {
        assert_int_equal(request(port, raw, &r), -1);
        resp_free(&r);
    }
    /* A second later, the next one says how many were left out. */
    usleep(1100 * 1000);
    assert_int_equal(request(port, raw, &r), -1);
    resp_free(&r);
    usleep(200 * 1000);
    fseek(f, start, SEEK_SET);
    char line[1024];
    int lines = 0, counted = 0;
    while (fgets(line, sizeof(line), f)) {
        lines += strstr(line, "admin: ") != NULL;
        counted += strstr(line, "more like it") != NULL;
    }
    fclose(f);
    if (lines > 4 || counted != 1)
        fail_msg("%d lines for 31 plain HTTP clients, %d with a count", lines, counted);
    /* And the console still answers over TLS afterwards. */
    expect_status(https("GET", "/api/v1/setup", NULL, ""), 200);
}

/* A TLS handshake with the console by a client limited to versions <min>..<max>: 1 when it
 * succeeds, 0 when the server refuses, -1 when this OpenSSL cannot offer those versions. */
static int handshake_with(int min, int max)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* TLS 1.1 needs SHA-1 signatures, which security level 1 and up forbid. */
    if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max) ||
        (max < TLS1_2_VERSION && !SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"))) {
        SSL_CTX_free(ctx);
        return -1;
    }
    BIO *b = BIO_new_ssl_connect(ctx);
    BIO_set_conn_hostname(b, addr);
    ERR_clear_error();
    int rc = BIO_do_connect(b) > 0 && BIO_do_handshake(b) > 0 ? 1 : 0;
    unsigned long e = ERR_peek_last_error();
    if (rc == 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        (ERR_GET_REASON(e) == SSL_R_NO_PROTOCOLS_AVAILABLE ||
         ERR_GET_REASON(e) == SSL_R_NO_CIPHERS_AVAILABLE))
        rc = -1; /* refused by our own side: nothing was asked of the server */
    ERR_clear_error();
    BIO_free_all(b);
    SSL_CTX_free(ctx);
    return rc;
}

static void only_tls_1_2_and_1_3_are_accepted(void **state)
{
    (void)state;
    assert_int_equal(handshake_with(TLS1_3_VERSION, TLS1_3_VERSION), 1);
    assert_int_equal(handshake_with(TLS1_2_VERSION, TLS1_2_VERSION), 1);
    int old = handshake_with(TLS1_1_VERSION, TLS1_1_VERSION);
    if (old < 0)
        print_message("this OpenSSL cannot offer TLS 1.1: not asked\n");
    else
        assert_int_equal(old, 0);
    old = handshake_with(TLS1_VERSION, TLS1_VERSION);
    if (old >= 0)
        assert_int_equal(old, 0);
}

/* Runs gslbd on this test's store with the console's TLS files <cert_path> and <key_path>; it
 * must exit 1 (within the timeout) with a message containing <want>. */
static void gslbd_refuses(const char *cert_path, const char *key_path, const char *want)
{
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof(cmd),
             "timeout 20 %s/gslbd --db %s --geoip %s --listen 127.0.0.1:0 --metrics-listen "
             "127.0.0.1:0 --workers 1 --health-checks none --admin-listen 127.0.0.1:0 "
             "--admin-tls-cert %s --admin-tls-key %s 2>&1",
             build, db_path, city, cert_path, key_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 || strstr(out, want) == NULL)
        fail_msg("gslbd with --admin-tls-key %s: status %d, expected exit 1 naming '%s':\n%s",
                 key_path, status, want, out);
    assert_null(strstr(out, "BEGIN")); /* never a key or certificate in the log */
}

static void a_bad_key_file_keeps_gslbd_from_starting(void **state)
{
    (void)state;
    char bad[160], other_cert[160], other_key[160], want[256];
    snprintf(bad, sizeof(bad), "%s/garbage.key", dir);
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    snprintf(want, sizeof(want), "admin-tls-key: %s: no PEM private key", bad);
    gslbd_refuses(cert, bad, want);

    make_certificate("other", "localhost", other_cert, other_key);
    snprintf(want, sizeof(want), "admin-tls-key: %s: not the key of the certificate", other_key);
    gslbd_refuses(cert, other_key, want);

    snprintf(want, sizeof(want), "admin-tls-key: %s/missing.key: No such file", dir);
    snprintf(bad, sizeof(bad), "%s/missing.key", dir);
    gslbd_refuses(cert, bad, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(setup_and_login_work_over_https_with_a_secure_cookie),
        cmocka_unit_test(changes_need_the_https_origin),
        cmocka_unit_test(logout_clears_the_cookie_securely),
        cmocka_unit_test(plain_http_gets_no_answer),
        cmocka_unit_test(only_tls_1_2_and_1_3_are_accepted),
        cmocka_unit_test(a_bad_key_file_keeps_gslbd_from_starting),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

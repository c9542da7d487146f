/* tests/proxy/test_tls.c - HTTPS listeners end to end: a real gslbd terminating TLS with two
 * certificates made by Debian's openssl command, real origin processes behind it, and an OpenSSL
 * client written here that checks what it was served: the certificate the SNI name picked, the
 * routing, the forwarding headers, keep-alive and a large body over one session. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "tests/proxy/harness.h"

/* Every process a test starts lives here, so that teardown stops it even after a failure. */
static struct proc eu, us, gslbd, tls_server;
static int tls_port;
static SSL_CTX *client_ctx;
static char cert_a[160], key_a[160], cert_b[160], key_b[160];

/* ---- a TLS client ---- */

struct tls {
    int fd;
    SSL *ssl;
};

static bool tls_open(int port, const char *sni, struct tls *t)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5, 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return false;
    t->ssl = SSL_new(client_ctx);
    if (sni)
        SSL_set_tlsext_host_name(t->ssl, sni);
    SSL_set_fd(t->ssl, t->fd);
    return SSL_connect(t->ssl) == 1;
}

static void tls_close(struct tls *t)
{
    if (t->ssl) {
        SSL_shutdown(t->ssl);
        SSL_free(t->ssl);
    }
    close(t->fd);
}

/* Sends <raw> and reads one response with a Content-Length into a new buffer (the caller frees
 * it); returns its status, -1 when none came whole. */
static int tls_request(struct tls *t, const char *raw, char **resp_out, size_t *len_out)
{
    size_t cap = 1 << 16, len = 0, need = 0;
    char *buf = malloc(cap + 1);
    *resp_out = buf;
    *len_out = 0;
    if (SSL_write(t->ssl, raw, (int)strlen(raw)) <= 0)
        return -1;
    for (;;) {
        buf[len] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        if (end && need == 0) {
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            need = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (need && len >= need)
            break;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            *resp_out = buf;
        }
        int n = SSL_read(t->ssl, buf + len, (int)(cap - len));
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    *len_out = len;
    return atoi(buf + 9);
}

static X509 *tls_peer_certificate(struct tls *t)
{
    return SSL_get1_peer_certificate(t->ssl);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    char topo[1024];
    harness_init("gslb-tls");
    eu = origin_start("eu-west", NULL, 0);
    us = origin_start("us-east", NULL, 0);
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26,"
             " \"origins\": [{\"address\": \"127.0.0.1:%d\"}]},"
             " {\"name\": \"us-east\", \"lat\": 39.04, \"lon\": -77.49,"
             " \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]}",
             eu.port, us.port);
    topology_import(db_path, topo);
    make_certificate("a.example", "a.example", cert_a, key_a);
    make_certificate("b.example", "b.example", cert_b, key_b);
    /* a.example's self-signed certificate is also the CA origins are checked against */
    const char *extra[] = {"--listen-tls",
                           "127.0.0.1:0",
                           "--tls-cert",
                           cert_a,
                           "--tls-key",
                           key_a,
                           "--tls-cert",
                           cert_b,
                           "--tls-key",
                           key_b,
                           "--origin-ca-file",
                           cert_a,
                           NULL};
    gslbd = gslbd_start(extra);
    tls_port = listener_port(&gslbd, 1);
    assert_true(tls_port > 0);
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL); /* self-signed: checked by name */
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    proc_stop(&gslbd, SIGKILL);
    proc_stop(&eu, SIGKILL);
    proc_stop(&us, SIGKILL);
    proc_stop(&tls_server, SIGKILL);
    SSL_CTX_free(client_ctx);
    harness_fini();
    return 0;
}

/* ---- tests ---- */

static void https_requests_are_routed_and_the_origin_hears_https(void **state)
{
    (void)state;
    struct tls t;
    char *resp;
    size_t len;
    assert_true(tls_open(tls_port, "a.example", &t));
    assert_true(SSL_version(t.ssl) >= TLS1_2_VERSION);
    assert_int_equal(tls_request(&t,
                                 "GET /headers HTTP/1.1\r\nHost: a.example\r\n"
                                 "X-Forwarded-For: 81.2.69.142\r\n\r\n",
                                 &resp, &len),
                     200);
    assert_non_null(strstr(resp, "X-Origin: eu-west\r\n"));
    assert_non_null(strstr(resp, "X-Forwarded-Proto: https\n"));
    assert_non_null(strstr(resp, "X-Forwarded-Host: a.example\n"));
    free(resp);
    tls_close(&t);
}

static void the_sni_name_picks_the_certificate(void **state)
{
    (void)state;
    static const struct {
        const char *sni, *expect;
    } cases[] = {{"b.example", "b.example"},
                 {"a.example", "a.example"},
                 {"other.example", "a.example"},
                 {NULL, "a.example"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls t;
        assert_true(tls_open(tls_port, cases[i].sni, &t));
        X509 *cert = tls_peer_certificate(&t);
        assert_non_null(cert);
        if (X509_check_host(cert, cases[i].expect, 0, 0, NULL) != 1)
            fail_msg("SNI %s: not served the certificate of %s", cases[i].sni ? cases[i].sni : "-",
                     cases[i].expect);
        X509_free(cert);
        tls_close(&t);
    }
}

static void one_session_carries_keep_alive_requests_and_a_large_body(void **state)
{
    (void)state;
    struct tls t;
    char *resp;
    size_t len;
    assert_true(tls_open(tls_port, "b.example", &t));
    assert_int_equal(tls_request(&t, "GET / HTTP/1.1\r\nHost: b.example\r\n\r\n", &resp, &len),
                     200);
    free(resp);
    assert_int_equal(
        tls_request(&t, "GET /size/1048576 HTTP/1.1\r\nHost: b.example\r\n\r\n", &resp, &len), 200);
    const char *body = strstr(resp, "\r\n\r\n") + 4;
    assert_int_equal(len - (size_t)(body - resp), 1048576);
    free(resp);
    /* An origin redirecting to itself sends the client to https://its host. */
    assert_int_equal(
        tls_request(&t, "GET /redirect/self HTTP/1.1\r\nHost: b.example\r\n\r\n", &resp, &len),
        302);
    assert_non_null(strstr(resp, "\r\nLocation: https://b.example/landing?from=self\r\n"));
    free(resp);
    tls_close(&t);
}

static void plain_http_on_the_tls_port_gets_no_answer(void **state)
{
    (void)state;
    struct resp r;
    assert_int_equal(request(tls_port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), -1);
    resp_free(&r);
    /* The plain listener still works beside it. */
    assert_int_equal(request(gslbd.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
}

/* ---- HTTPS to origins, against Debian's openssl s_server ---- */

/* Routes host o.example to an origin speaking TLS with a.example's certificate, reached with
 * the origin settings <tls_json>; returns the status of a GET through the plain listener. */
static int get_through_tls_origin(int port, const char *tls_json)
{
    char topo[1024];
    struct resp r;
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26}],"
             " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]},"
             " {\"name\": \"secure\", \"hosts\": [\"o.example\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\", %s}]}]}]}",
             eu.port, port, tls_json);
    topology_import(db_path, topo);
    sleep_ms(600); /* the watch publishes the new snapshot */
    int status = request(gslbd.port, "GET / HTTP/1.1\r\nHost: o.example\r\n\r\n", &r);
    if (status == 200 && strstr(r.body, "s_server") == NULL)
        status = -2; /* not the TLS origin's page */
    resp_free(&r);
    return status;
}

static void origins_are_reached_over_tls_with_their_certificates_checked(void **state)
{
    (void)state;
    tls_server = tls_server_start(cert_a, key_a);
    int port = tls_server.port;
    /* The right name: verified against origin-ca-file, served. */
    assert_int_equal(get_through_tls_origin(port, "\"tls\": true, \"tls_name\": \"a.example\""),
                     200);
    /* A name the certificate does not carry: refused, the client gets 502. */
    assert_int_equal(get_through_tls_origin(port, "\"tls\": true, \"tls_name\": \"b.example\""),
                     502);
    /* The same, told not to check: served. */
    assert_int_equal(get_through_tls_origin(
                         port, "\"tls\": true, \"tls_name\": \"b.example\", \"tls_verify\": false"),
                     200);
    /* An address the certificate does not name, checked: refused. */
    assert_int_equal(get_through_tls_origin(port, "\"tls\": true"), 502);
    proc_stop(&tls_server, SIGTERM);
}

static void a_key_that_does_not_load_is_named(void **state)
{
    (void)state;
    char cmd[2048], line[512], all[4096] = "";
    snprintf(cmd, sizeof(cmd),
             "%s/gslbd --check-config --db %s --geoip %s --listen 127.0.0.1:0 --metrics-listen '' "
             "--admin-listen '' --listen-tls 127.0.0.1:0 --tls-cert %s --tls-key %s/missing.key "
             "2>&1",
             build, db_path, city, cert_a, dir);
    FILE *out = popen(cmd, "r");
    while (fgets(line, sizeof(line), out))
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    int status = pclose(out);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    if (strstr(all, "tls-key") == NULL)
        fail_msg("no tls-key in: %s", all);
}

static void exits_cleanly(void **state)
{
    (void)state;
    gslbd_stop(&gslbd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_requests_are_routed_and_the_origin_hears_https),
        cmocka_unit_test(the_sni_name_picks_the_certificate),
        cmocka_unit_test(one_session_carries_keep_alive_requests_and_a_large_body),
        cmocka_unit_test(plain_http_on_the_tls_port_gets_no_answer),
        cmocka_unit_test(origins_are_reached_over_tls_with_their_certificates_checked),
        cmocka_unit_test(a_key_that_does_not_load_is_named),
        cmocka_unit_test(exits_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

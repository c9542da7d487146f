/* tests/proxy/test_tls.c - HTTPS listeners end to end: a real gslbd terminating TLS with two
 * certificates made by Debian's openssl command, real origin processes behind it, and an OpenSSL
 * client written here that checks what it was served: the certificate the SNI name picked, the
 * routing, the forwarding headers, keep-alive and a large body over one session. A second gslbd,
 * whose certificates, keys and origin CAs come from a config file, has them renewed, moved and
 * broken under it, with SIGHUP: new connections get what the files hold, open ones (mid-handshake
 * too) carry on, and a file that does not load keeps everything as it was. A third gslbd staples
 * OCSP responses that `openssl ocsp` signed for certificates of a small CA of the test's: the
 * client asks for status and checks the staple it gets is the served certificate's, that a pair
 * without a response file gets none, that SIGHUP reads response files again, and that a response
 * past its nextUpdate is no longer sent; a response that does not fit refuses the start. A fourth
 * shows that new connections to a TLS origin resume its last session, and never another
 * origin's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
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
static struct proc eu, us, gslbd, tls_server, reloading, stapling, resuming, two_names_server,
    limited, stalled;
static int tls_port, reloading_tls_port, stapling_tls_port;
static SSL_CTX *client_ctx;
static char cert_a[160], key_a[160], cert_b[160], key_b[160];
/* The reloading gslbd's config file, its pairs (r.example and s.example at start, t.example
 * added later) and its origin CA file. */
static char reload_conf[160], cert_r[160], key_r[160], cert_s[160], key_s[160], cert_added[160],
    key_added[160], origin_ca[160];
/* The stapling gslbd's config file and CA; c.example's and e.example's certificates are the CA's,
 * d.example's is self-signed. c has a response file from the start, e gets one later. */
static char staple_conf[160], ca_cert[160], ca_key[160], cert_c[160], key_c[160], ocsp_c[170],
    cert_d[160], key_d[160], ocsp_d[170], cert_e[160], key_e[160], ocsp_e[170];

/* ---- a TLS client ---- */

struct tls {
    int fd;
    SSL *ssl;
};

/* A TCP connection to <port>, no TLS yet, with a receive buffer of <rcvbuf> bytes (0: the
 * kernel's). */
static bool tcp_connect_rcvbuf(int port, int rcvbuf, struct tls *t)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5, 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->ssl = NULL;
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (rcvbuf > 0)
        setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    return connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

static bool tcp_connect(int port, struct tls *t)
{
    return tcp_connect_rcvbuf(port, 0, t);
}

static bool tls_handshake(struct tls *t, const char *sni)
{
    t->ssl = SSL_new(client_ctx);
    if (sni)
        SSL_set_tlsext_host_name(t->ssl, sni);
    SSL_set_fd(t->ssl, t->fd);
    return SSL_connect(t->ssl) == 1;
}

static bool tls_open(int port, const char *sni, struct tls *t)
{
    return tcp_connect(port, t) && tls_handshake(t, sni);
}

static void tls_close(struct tls *t)
{
    if (t->ssl) {
        SSL_shutdown(t->ssl);
        SSL_free(t->ssl);
    }
    if (t->fd >= 0)
        close(t->fd);
    t->ssl = NULL;
    t->fd = -1;
}

/* Sends <raw> (unless empty) and reads one response with a Content-Length into a new buffer (the
 * caller frees it); returns its status, -1 when none came whole. */
static int tls_request(struct tls *t, const char *raw, char **resp_out, size_t *len_out)
{
    size_t cap = 1 << 16, len = 0, need = 0;
    char *buf = malloc(cap + 1);
    *resp_out = buf;
    *len_out = 0;
    if (*raw && SSL_write(t->ssl, raw, (int)strlen(raw)) <= 0)
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

/* The certificate a new connection to <port> with SNI <sni> is served (the caller frees it), or
 * NULL when the handshake fails. */
static X509 *served_certificate(int port, const char *sni)
{
    struct tls t = {.fd = -1};
    X509 *cert = tls_open(port, sni, &t) ? tls_peer_certificate(&t) : NULL;
    tls_close(&t);
    return cert;
}

/* The (first) certificate of the PEM file <path>; the caller frees it. */
static X509 *certificate_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(cert);
    return cert;
}

/* Whether a new connection to <port> with <sni> is served <want>, polling for up to <limit_ms>
 * (a reload reaches the workers when they are woken). */
static bool serves(int port, const char *sni, X509 *want, int limit_ms)
{
    for (int64_t end = now_ms() + limit_ms;; sleep_ms(50)) {
        X509 *got = served_certificate(port, sni);
        bool same = got && X509_cmp(got, want) == 0;
        X509_free(got);
        if (same || now_ms() >= end)
            return same;
    }
}

/* The same for the certificate in the file <path>. */
static bool serves_file(int port, const char *sni, const char *path, int limit_ms)
{
    X509 *want = certificate_file(path);
    bool same = serves(port, sni, want, limit_ms);
    X509_free(want);
    return same;
}

/* Whether <p>'s log has a line holding both <a> and <b>, polling for up to <limit_ms>. */
static bool log_has(const struct proc *p, const char *a, const char *b, int limit_ms)
{
    char line[1024];
    for (int64_t end = now_ms() + limit_ms;; sleep_ms(50)) {
        bool found = false;
        FILE *f = fopen(p->log, "r");
        while (f && !found && fgets(line, sizeof(line), f))
            found = strstr(line, a) && strstr(line, b);
        if (f)
            fclose(f);
        if (found || now_ms() >= end)
            return found;
    }
}

/* The same for the reloading gslbd, which then has applied its config file. */
static void reload(void)
{
    gslbd_sighup(&reloading);
}

/* Writes the reloading gslbd's config file: its pairs, its origin CA file, and <more>. */
static void reload_conf_write(const char *pairs, const char *more)
{
    FILE *f = fopen(reload_conf, "w");
    assert_non_null(f);
    fprintf(f, "%sorigin-ca-file %s\npassive-failures 0\n%s", pairs, origin_ca, more);
    fclose(f);
}

static void file_copy(const char *from, const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* The gslb_connections_active gauge of <p>. */
static int connections_active(const struct proc *p)
{
    struct resp r;
    int n = -1;
    if (request(p->metrics_port, "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
                &r) == 200) {
        const char *at = strstr(r.body, "\ngslb_connections_active ");
        n = at ? atoi(at + 25) : -1;
    }
    resp_free(&r);
    return n;
}

/* ---- OCSP: what a client asking for status is stapled ---- */

enum { NO_STAPLE = -2, STAPLE_NOT_FOR_IT = -1 }; /* else the V_OCSP_CERTSTATUS_* of the staple */

/* Shakes hands with <port> (SNI <sni>, at most TLS <max_version>), asking for the certificate's
 * status, and checks the certificate served is the one of the file <want_cert>. Returns what the
 * stapled response says about that certificate, when the CA signed it, else one of the above. */
static int stapled_status(int port, const char *sni, int max_version, const char *want_cert)
{
    struct tls t = {.fd = -1};
    const unsigned char *der = NULL;
    int status = STAPLE_NOT_FOR_IT, reason;
    ASN1_GENERALIZEDTIME *revoked_at, *this_update, *next_update;
    X509 *want = certificate_file(want_cert), *ca = certificate_file(ca_cert);
    X509_STORE *trusted = X509_STORE_new();
    X509_STORE_add_cert(trusted, ca);

    assert_true(tcp_connect(port, &t));
    t.ssl = SSL_new(client_ctx);
    SSL_set_max_proto_version(t.ssl, max_version);
    if (sni)
        SSL_set_tlsext_host_name(t.ssl, sni);
    SSL_set_tlsext_status_type(t.ssl, TLSEXT_STATUSTYPE_ocsp);
    SSL_set_fd(t.ssl, t.fd);
    assert_int_equal(SSL_connect(t.ssl), 1);
    assert_int_equal(SSL_version(t.ssl), max_version);
    X509 *served = tls_peer_certificate(&t);
    assert_non_null(served);
    if (X509_cmp(served, want) != 0)
        fail_msg("SNI %s: not served %s", sni ? sni : "-", want_cert);
    long len = SSL_get_tlsext_status_ocsp_resp(t.ssl, &der);
    OCSP_RESPONSE *resp = len > 0 ? d2i_OCSP_RESPONSE(NULL, &der, len) : NULL;
    OCSP_BASICRESP *basic = resp ? OCSP_response_get1_basic(resp) : NULL;
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, served, ca);
    if (len <= 0)
        status = NO_STAPLE;
    else if (resp == NULL || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
             basic == NULL || OCSP_basic_verify(basic, NULL, trusted, 0) != 1 ||
             OCSP_resp_find_status(basic, id, &status, &reason, &revoked_at, &this_update,
                                   &next_update) != 1)
        status = STAPLE_NOT_FOR_IT;
    ERR_clear_error();
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    X509_free(served);
    X509_STORE_free(trusted);
    X509_free(ca);
    X509_free(want);
    tls_close(&t);
    return status;
}

/* The same over TLS 1.2 and 1.3 (the staple travels in different messages), which must agree. */
static int stapled(int port, const char *sni, const char *want_cert)
{
    int tls12 = stapled_status(port, sni, TLS1_2_VERSION, want_cert);
    int tls13 = stapled_status(port, sni, TLS1_3_VERSION, want_cert);
    assert_int_equal(tls12, tls13);
    return tls13;
}

/* Writes to <out> a response the CA signs for <cert>, good, with thisUpdate a minute ago and
 * nextUpdate <next_in> seconds from now (none when <has_next> is false): what `openssl ocsp`
 * cannot make, as it counts in whole minutes and days. */
static void ocsp_response_write(const char *cert, long next_in, bool has_next, const char *out)
{
    X509 *leaf = certificate_file(cert), *ca = certificate_file(ca_cert);
    FILE *f = fopen(ca_key, "r");
    assert_non_null(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(key);
    OCSP_BASICRESP *basic = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, ca);
    ASN1_TIME *this_update = X509_gmtime_adj(NULL, -60);
    ASN1_TIME *next_update = has_next ? X509_gmtime_adj(NULL, next_in) : NULL;
    assert_non_null(OCSP_basic_add1_status(basic, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, this_update,
                                           next_update));
    assert_int_equal(OCSP_basic_sign(basic, ca, key, EVP_sha256(), NULL, 0), 1);
    OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
    unsigned char *der = NULL;
    int len = i2d_OCSP_RESPONSE(resp, &der);
    assert_true(len > 0);
    f = fopen(out, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(der, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    ASN1_TIME_free(next_update);
    ASN1_TIME_free(this_update);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_free(leaf);
}

/* Writes the stapling gslbd's config file with the pairs of <first>, <second> and <third>, each
 * given by its certificate path (the key is beside it). */
static void staple_conf_write(const char *first, const char *second, const char *third)
{
    const char *certs[] = {first, second, third};
    FILE *f = fopen(staple_conf, "w");
    assert_non_null(f);
    for (size_t i = 0; i < 3; i++)
        fprintf(f, "tls-cert %s\ntls-key %.*s.key\n", certs[i], (int)strlen(certs[i]) - 4,
                certs[i]);
    fclose(f);
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

    /* The reloading gslbd: pairs r and s from its file, and an origin CA file that trusts b,
     * not the a.example certificate the TLS origin will show. */
    make_certificate("r.example", "r.example", cert_r, key_r);
    make_certificate("s.example", "s.example", cert_s, key_s);
    make_certificate("t.example", "t.example", cert_added, key_added);
    snprintf(reload_conf, sizeof(reload_conf), "%s/reload.conf", dir);
    snprintf(origin_ca, sizeof(origin_ca), "%s/origin-ca.pem", dir);
    file_copy(cert_b, origin_ca);
    char pairs[1024];
    snprintf(pairs, sizeof(pairs), "tls-cert %s\ntls-key %s\ntls-cert %s\ntls-key %s\n", cert_r,
             key_r, cert_s, key_s);
    reload_conf_write(pairs, "max-header-size 64k\n");
    const char *reload_extra[] = {"--config", reload_conf, "--listen-tls", "127.0.0.1:0", NULL};
    reloading = gslbd_start(reload_extra);
    reloading_tls_port = listener_port(&reloading, 1);
    assert_true(reloading_tls_port > 0);

    /* The stapling gslbd: c (stapled), d (self-signed, no response) and e (none yet). */
    make_certificate("ca", "ca.example", ca_cert, ca_key);
    make_issued_certificate("c.example", "c.example", ca_cert, ca_key, cert_c, key_c);
    make_issued_certificate("e.example", "e.example", ca_cert, ca_key, cert_e, key_e);
    make_certificate("d.example", "d.example", cert_d, key_d);
    snprintf(ocsp_c, sizeof(ocsp_c), "%s.ocsp", cert_c);
    snprintf(ocsp_d, sizeof(ocsp_d), "%s.ocsp", cert_d);
    snprintf(ocsp_e, sizeof(ocsp_e), "%s.ocsp", cert_e);
    make_ocsp_response(cert_c, ca_cert, ca_key, false, ocsp_c);
    snprintf(staple_conf, sizeof(staple_conf), "%s/staple.conf", dir);
    staple_conf_write(cert_c, cert_d, cert_e);
    const char *staple_extra[] = {"--config", staple_conf, "--listen-tls", "127.0.0.1:0", NULL};
    stapling = gslbd_start(staple_extra);
    stapling_tls_port = listener_port(&stapling, 1);
    assert_true(stapling_tls_port > 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    proc_stop(&gslbd, SIGKILL);
    proc_stop(&reloading, SIGKILL);
    proc_stop(&stapling, SIGKILL);
    proc_stop(&eu, SIGKILL);
    proc_stop(&us, SIGKILL);
    proc_stop(&tls_server, SIGKILL);
    proc_stop(&resuming, SIGKILL);
    proc_stop(&two_names_server, SIGKILL);
    proc_stop(&limited, SIGKILL);
    proc_stop(&stalled, SIGKILL);
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
                 {"b.example.", "b.example"}, /* fully qualified: the first until 2026-12-07 */
                 {"B.Example", "b.example"},
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

/* A client still sending its request body when its connection ends (the origin answered before
 * reading it) gets all of it through, dropped, then reads the answer: the lingering close works
 * on a TLS connection too, whose session closes its socket when freed. */
static void a_tls_client_still_sending_reads_its_answer(void **state)
{
    (void)state;
    struct tls t;
    char *resp;
    size_t len;
    static char chunk[1 << 14];
    memset(chunk, 'b', sizeof(chunk));
    const char head[] =
        "POST /early/1000 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4194304\r\n\r\n";
    assert_true(tls_open(tls_port, "a.example", &t));
    assert_int_equal(SSL_write(t.ssl, head, (int)strlen(head)), (int)strlen(head));
    for (int i = 0; i < 256; i++) {
        assert_int_equal(SSL_write(t.ssl, chunk, (int)sizeof(chunk)), (int)sizeof(chunk));
        if (i == 0)
            sleep_ms(300); /* the answer has come, and the connection has ended */
    }
    assert_int_equal(tls_request(&t, "", &resp, &len), 200);
    const char *body = strstr(resp, "\r\n\r\n") + 4;
    assert_int_equal(len - (size_t)(body - resp), 1000);
    free(resp);
    tls_close(&t);
}

/* A TLS client that ends its sending (a close_notify) after its last request gets the answer, as
 * a plain client does after a FIN; until 2026-12-07 it got a 499 and a close. The close_notify
 * at once, and 100 ms later. */
static void a_tls_client_that_ends_after_its_last_request_gets_the_answer(void **state)
{
    (void)state;
    const char req[] = "GET /slow/300 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n";
    for (int wait = 0; wait < 2; wait++) {
        struct tls t;
        char *resp;
        size_t len;
        assert_true(tls_open(tls_port, "a.example", &t));
        assert_int_equal(SSL_write(t.ssl, req, (int)strlen(req)), (int)strlen(req));
        sleep_ms(wait * 100);
        assert_int_equal(SSL_shutdown(t.ssl), 0); /* sent; the peer's not yet */
        if (tls_request(&t, "", &resp, &len) != 200)
            fail_msg("close_notify after %d ms: no answer", wait * 100);
        free(resp);
        tls_close(&t);
    }
    /* An answer larger than the socket buffers, still being written when the close_notify comes:
     * the close that follows it must not be a reset that destroys its end (until 2026-12-07 the
     * unread close_notify made it one). */
    {
        struct tls big;
        char *resp;
        size_t len;
        const char ask[] =
            "GET /size/40000000 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n";
        assert_true(tls_open(tls_port, "a.example", &big));
        assert_int_equal(SSL_write(big.ssl, ask, (int)strlen(ask)), (int)strlen(ask));
        sleep_ms(200);
        assert_int_equal(SSL_shutdown(big.ssl), 0);
        sleep_ms(300);
        assert_int_equal(tls_request(&big, "", &resp, &len), 200);
        const char *at = strstr(resp, "\r\n\r\n") + 4;
        assert_int_equal(len - (size_t)(at - resp), 40000000);
        free(resp);
        tls_close(&big);
    }

    /* Behind a pipelined request, the last one is answered too, and then the connection ends. */
    struct tls t;
    const char two[] = "GET /slow/200 HTTP/1.1\r\nHost: a.example\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n";
    assert_true(tls_open(tls_port, "a.example", &t));
    assert_int_equal(SSL_write(t.ssl, two, (int)strlen(two)), (int)strlen(two));
    assert_int_equal(SSL_shutdown(t.ssl), 0);
    static char got[8192];
    size_t len = 0;
    for (int n; len < sizeof(got) - 1 &&
                (n = SSL_read(t.ssl, got + len, (int)(sizeof(got) - 1 - len))) > 0;)
        len += (size_t)n;
    got[len] = '\0';
    const char *second = strstr(got, "HTTP/1.1 200 ");
    assert_non_null(second);
    assert_non_null(strstr(second + 1, "HTTP/1.1 200 "));
    tls_close(&t);
}

/* An orderly end is a close_notify, as from nginx, after an answer and after a refusal alike:
 * a client tells the end of a body that only the end of the connection delimits from a cut one
 * (none was sent until 2026-12-07; found by a robustness test). */
static void an_orderly_end_sends_a_close_notify(void **state)
{
    (void)state;
    const char *asks[] = {"GET /eof/100000 HTTP/1.0\r\nHost: a.example\r\n\r\n",
                          "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
                          "GET / HTTP/1.1\r\n\r\n"}; /* no Host: a 400 */
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        struct tls t;
        assert_true(tls_open(tls_port, "a.example", &t));
        assert_int_equal(SSL_write(t.ssl, asks[i], (int)strlen(asks[i])), (int)strlen(asks[i]));
        char buf[16384];
        size_t got = 0;
        int n;
        while ((n = SSL_read(t.ssl, buf, sizeof(buf))) > 0)
            got += (size_t)n;
        if (SSL_get_error(t.ssl, n) != SSL_ERROR_ZERO_RETURN)
            fail_msg("%s: %zu bytes, then no close_notify", asks[i], got);
        tls_close(&t);
    }
}

/* Plain HTTP sent to the TLS port gets a plain 400 that says so, as from nginx, not a bare
 * reset (until 2026-12-07; found by a differential test). */
static void plain_http_to_the_tls_port_gets_a_plain_400(void **state)
{
    (void)state;
    struct tls t;
    assert_true(tcp_connect(tls_port, &t));
    const char req[] = "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";
    assert_int_equal(send(t.fd, req, strlen(req), 0), (ssize_t)strlen(req));
    char got[1024];
    size_t len = 0;
    for (ssize_t n;
         len < sizeof(got) - 1 && (n = recv(t.fd, got + len, sizeof(got) - 1 - len, 0)) > 0;)
        len += (size_t)n;
    got[len] = '\0';
    assert_int_equal(strncmp(got, "HTTP/1.1 400 ", 13), 0);
    assert_non_null(strstr(got, "plain HTTP was sent to an HTTPS port"));
    close(t.fd);
    struct resp r; /* the plain listener still works beside it */
    assert_int_equal(request(gslbd.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
}

/* Whether a handshake offering ALPN <protos> (wire format) succeeds; <chosen>: what was agreed. */
static bool alpn_handshake(const char *protos, size_t len, char *chosen, size_t cap)
{
    struct tls t;
    assert_true(tcp_connect(tls_port, &t));
    t.ssl = SSL_new(client_ctx);
    SSL_set_tlsext_host_name(t.ssl, "a.example");
    assert_int_equal(SSL_set_alpn_protos(t.ssl, (const unsigned char *)protos, (unsigned)len), 0);
    SSL_set_fd(t.ssl, t.fd);
    bool ok = SSL_connect(t.ssl) == 1;
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (ok)
        SSL_get0_alpn_selected(t.ssl, &p, &n);
    snprintf(chosen, cap, "%.*s", (int)n, p ? (const char *)p : "");
    tls_close(&t);
    return ok;
}

/* HTTP/1.1 (or 1.0) is agreed when offered; a client offering h2 alone gets the fatal
 * no_application_protocol alert (RFC 7301 3.2), not a session whose bytes would be refused. */
static void alpn_agrees_on_http_1_or_refuses_the_handshake(void **state)
{
    (void)state;
    char chosen[32];
    assert_true(alpn_handshake("\x02h2\x08http/1.1", 12, chosen, sizeof(chosen)));
    assert_string_equal(chosen, "http/1.1");
    assert_true(alpn_handshake("\x08http/1.0", 9, chosen, sizeof(chosen)));
    assert_string_equal(chosen, "http/1.0");
    assert_false(alpn_handshake("\x02h2", 3, chosen, sizeof(chosen)));
    ERR_clear_error();
}

/* A TLS client past max-connections gets the close alone: the plain 503 that plain clients get
 * would reach it as a broken record. */
static void a_tls_client_past_the_connection_limit_is_closed_without_plain_bytes(void **state)
{
    (void)state;
    const char *extra[] = {
        "--listen-tls",      "127.0.0.1:0", "--tls-cert",       cert_a, "--tls-key", key_a,
        "--max-connections", "1",           "--metrics-listen", "",     NULL};
    limited = gslbd_start(extra);
    int port = listener_port(&limited, 1);
    struct tls held, refused;
    assert_true(tls_open(port, "a.example", &held));
    assert_true(tcp_connect(port, &refused));
    assert_int_equal(send(refused.fd, "\x16\x03\x01", 3, 0), 3); /* accepted now */
    char got[64];
    assert_int_equal(recv(refused.fd, got, sizeof(got), 0), 0);
    tls_close(&refused);
    tls_close(&held);
    sleep_ms(100);
    char *resp;
    size_t len;
    struct tls t;
    assert_true(tls_open(port, "a.example", &t));
    assert_int_equal(tls_request(&t, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", &resp, &len),
                     200);
    free(resp);
    tls_close(&t);
    gslbd_stop(&limited);
}

/* A TLS client that reads nothing is dropped once its response has not moved for
 * keepalive-timeout, however many requests with bodies it sends meanwhile: each body's start and
 * end change the read timeout, which once restarted the pending write timeout with it
 * (libevent's bufferevent_set_timeouts() adds both events again). */
static void a_tls_client_that_reads_nothing_is_dropped_while_it_sends(void **state)
{
    (void)state;
    const char *extra[] = {
        "--listen-tls",        "127.0.0.1:0", "--tls-cert",      cert_a, "--tls-key", key_a,
        "--keepalive-timeout", "2s",          "--client-sndbuf", "16k",  NULL};
    stalled = gslbd_start(extra);
    struct tls t;
    assert_true(tcp_connect_rcvbuf(listener_port(&stalled, 1), 4096, &t));
    assert_true(tls_handshake(&t, "a.example"));
    /* 100 kB: more than the sockets hold, less than the 256 KiB at which gslbd stops reading */
    const char get[] = "GET /size/100000 HTTP/1.1\r\nHost: a.example\r\n\r\n";
    const char post[] = "POST /size/10 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1\r\n\r\nx";
    assert_int_equal(SSL_write(t.ssl, get, (int)strlen(get)), (int)strlen(get));
    int64_t start = now_ms(), failed_at = -1;
    for (int i = 0; i < 10 && failed_at < 0; i++) {
        sleep_ms(700);
        if (SSL_write(t.ssl, post, (int)strlen(post)) <= 0)
            failed_at = now_ms() - start;
    }
    /* Dropped at 2 s; the first send after that still leaves, the next fails. */
    if (failed_at < 0 || failed_at > 5000)
        fail_msg("still served after %lld ms of sending without reading",
                 (long long)(now_ms() - start));
    tls_close(&t);
    gslbd_stop(&stalled);
}

/* ---- HTTPS to origins, against Debian's openssl s_server ---- */

/* Routes host o.example to an origin speaking TLS with a.example's certificate on <port>,
 * reached with the origin settings <tls_json>; returns the status of a GET through the plain
 * listener of gslbd <through>. */
static int get_through_tls_origin_of(const struct proc *through, int port, const char *tls_json)
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
    int status = request(through->port, "GET / HTTP/1.1\r\nHost: o.example\r\n\r\n", &r);
    if (status == 200 && strstr(r.body, "s_server") == NULL)
        status = -2; /* not the TLS origin's page */
    resp_free(&r);
    return status;
}

static int get_through_tls_origin(int port, const char *tls_json)
{
    return get_through_tls_origin_of(&gslbd, port, tls_json);
}

static void origins_are_reached_over_tls_with_their_certificates_checked(void **state)
{
    (void)state;
    tls_server = tls_server_start(cert_a, key_a);
    int port = tls_server.port;
    /* The right name: verified against origin-ca-file, served. */
    assert_int_equal(get_through_tls_origin(port, "\"tls\": true, \"tls_name\": \"a.example\""),
                     200);
    /* A name the certificate does not carry: refused, the client gets 502, and the log says
     * why (nothing did until 2026-12-07; found by a robustness test). */
    assert_int_equal(get_through_tls_origin(port, "\"tls\": true, \"tls_name\": \"b.example\""),
                     502);
    assert_true(log_has(&gslbd, "TLS with origin", "certificate: hostname mismatch", 3000));
    /* The same, told not to check: served. */
    assert_int_equal(get_through_tls_origin(
                         port, "\"tls\": true, \"tls_name\": \"b.example\", \"tls_verify\": false"),
                     200);
    /* An address the certificate does not name, checked: refused. */
    assert_int_equal(get_through_tls_origin(port, "\"tls\": true"), 502);
    proc_stop(&tls_server, SIGTERM);
}

/* ---- TLS sessions resumed with origins ---- */

/* gslb_origin_tls_handshakes_total{resumed="true"} (or "false") of gslbd <p>; -1 if unread. */
static long origin_handshakes(const struct proc *p, bool resumed)
{
    struct resp r;
    char series[80];
    long n = -1;
    snprintf(series, sizeof(series), "\ngslb_origin_tls_handshakes_total{resumed=\"%s\"} ",
             resumed ? "true" : "false");
    if (request(p->metrics_port, "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
                &r) == 200) {
        const char *at = strstr(r.body, series);
        n = at ? atol(at + strlen(series)) : -1;
    }
    resp_free(&r);
    return n;
}

/* A GET of <host> through the resuming gslbd: its status, -2 for a page not the TLS origin's. */
static int get_from_resuming(const char *host)
{
    char raw[256];
    struct resp r;
    snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host);
    int status = request(resuming.port, raw, &r);
    if (status == 200 && strstr(r.body, "s_server") == NULL)
        status = -2;
    resp_free(&r);
    return status;
}

/* Asserts the resuming gslbd's handshake counters read <full> and <resumed>. */
#define assert_handshakes(full, resumed)                                                           \
    do {                                                                                           \
        assert_int_equal(origin_handshakes(&resuming, false), (full));                             \
        assert_int_equal(origin_handshakes(&resuming, true), (resumed));                           \
    } while (0)

static void new_origin_connections_resume_the_session_of_their_own_origin_only(void **state)
{
    (void)state;
    char cert[160], key[160], topo[1024];
    /* One s_server, whose certificate carries two names, reached as two origins: c.example and
     * d.example. It resumes any session it issued whatever the SNI (TLS 1.3 ties none to it), so
     * a session handed from one origin to the other would show as resumed. */
    make_certificate("two-names", "c.example,DNS:d.example", cert, key); /* a second SAN entry */
    two_names_server = tls_server_start(cert, key);
    const char *extra[] = {"--origin-ca-file", cert, "--max-idle-per-origin", "0", NULL};
    resuming = gslbd_start(extra); /* no pooling: every request opens an origin connection */
    /* Other hosts keep going to the plain origin, as the tests after this one expect. */
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26}],"
             " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]},"
             " {\"name\": \"c\", \"hosts\": [\"c.example\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\","
             "   \"tls\": true, \"tls_name\": \"c.example\"}]}]},"
             " {\"name\": \"d\", \"hosts\": [\"d.example\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\","
             "   \"tls\": true, \"tls_name\": \"d.example\"}]}]}]}",
             eu.port, two_names_server.port, two_names_server.port);
    topology_import(db_path, topo);
    int status = -1;
    for (int64_t end = now_ms() + 5000; (status = get_from_resuming("c.example")) != 200;) {
        if (now_ms() >= end)
            fail_msg("c.example: %d, not the TLS origin's page; see %s", status, resuming.log);
        sleep_ms(50); /* until the watch publishes the topology */
    }
    assert_handshakes(1, 0); /* the first connection: a full handshake */
    for (int i = 0; i < 4; i++)
        assert_int_equal(get_from_resuming("c.example"), 200);
    assert_handshakes(1, 4); /* each later one resumed the session the one before got */

    /* The same server as d.example: c.example's session is not offered. */
    assert_int_equal(get_from_resuming("d.example"), 200);
    assert_handshakes(2, 4);
    assert_int_equal(get_from_resuming("d.example"), 200);
    assert_handshakes(2, 5);
    assert_int_equal(get_from_resuming("c.example"), 200); /* its own session is still kept */
    assert_handshakes(2, 6);

    /* SIGHUP makes a new origin context (the CAs may have changed): sessions made under the old
     * one are not offered. The worker takes it when woken, so a request may still go first. */
    gslbd_sighup(&resuming);
    long full = 2;
    for (int64_t end = now_ms() + 5000; full == 2 && now_ms() < end; sleep_ms(50)) {
        assert_int_equal(get_from_resuming("c.example"), 200);
        full = origin_handshakes(&resuming, false);
    }
    assert_int_equal(full, 3);
    long resumed = origin_handshakes(&resuming, true);
    assert_int_equal(get_from_resuming("c.example"), 200);
    assert_handshakes(3, resumed + 1);
    gslbd_stop(&resuming);
    proc_stop(&two_names_server, SIGTERM);
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

/* ---- SIGHUP: certificates, keys and origin CAs read again (the reloading gslbd) ---- */

/* Waits until the gslb_connections_active gauge of the reloading gslbd reads <want>. */
static void wait_connections(int want)
{
    int n = -1;
    for (int64_t end = now_ms() + 3000; (n = connections_active(&reloading)) != want;) {
        if (now_ms() >= end)
            fail_msg("%d client connections open, not %d", n, want);
        sleep_ms(25);
    }
}

static void renewed_files_serve_new_connections_after_sighup_while_open_ones_carry_on(void **state)
{
    (void)state;
    struct tls kept = {.fd = -1}, pending = {.fd = -1};
    char *resp;
    size_t len;
    int port = reloading_tls_port;
    X509 *before = certificate_file(cert_r);
    assert_true(serves(port, "r.example", before, 0));
    assert_true(serves_file(port, "s.example", cert_s, 0));
    wait_connections(0);
    /* A session that has done a request, and a connection accepted whose handshake has not
     * started: both from before the reload. */
    assert_true(tls_open(port, "r.example", &kept));
    assert_int_equal(tls_request(&kept, "GET / HTTP/1.1\r\nHost: r.example\r\n\r\n", &resp, &len),
                     200);
    free(resp);
    assert_true(tcp_connect(port, &pending));
    wait_connections(2);

    /* What certbot does: new files at the same paths (here a new key too). */
    make_certificate("r.example", "r.example", cert_r, key_r);
    X509 *renewed = certificate_file(cert_r);
    assert_int_not_equal(X509_cmp(before, renewed), 0);
    reload();
    assert_true(serves(port, "r.example", renewed, 5000));
    assert_true(serves(port, NULL, renewed, 0)); /* still the first pair: the default */
    assert_true(serves_file(port, "s.example", cert_s, 0));
    assert_int_equal(proc_log_count(&reloading, "takes effect at restart"), 0);

    /* The session from before carries on, keep-alive. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            tls_request(&kept, "GET / HTTP/1.1\r\nHost: r.example\r\n\r\n", &resp, &len), 200);
        free(resp);
    }
    /* The connection from before shakes hands now, with the contexts it was accepted with: the
     * SNI callback looks through the old pairs (r.example's is the first, s.example's does not
     * match) and it gets the old certificate. */
    assert_true(tls_handshake(&pending, "r.example"));
    X509 *got = tls_peer_certificate(&pending);
    assert_non_null(got);
    assert_int_equal(X509_cmp(got, before), 0);
    X509_free(got);
    assert_int_equal(
        tls_request(&pending, "GET / HTTP/1.1\r\nHost: r.example\r\n\r\n", &resp, &len), 200);
    free(resp);
    tls_close(&pending);
    tls_close(&kept);
    X509_free(renewed);
    X509_free(before);
}

/* The pairs t.example then r.example, as the config file lists them from the second reload on. */
static void reload_conf_write_added_r(const char *more)
{
    char pairs[1024];
    snprintf(pairs, sizeof(pairs), "tls-cert %s\ntls-key %s\ntls-cert %s\ntls-key %s\n", cert_added,
             key_added, cert_r, key_r);
    reload_conf_write(pairs, more);
}

static void pairs_may_move_come_and_go_on_sighup(void **state)
{
    (void)state;
    int port = reloading_tls_port;
    reload_conf_write_added_r(
        "max-header-size 64k\n"); /* t.example added first, r second, s gone */
    reload();
    assert_true(serves_file(port, NULL, cert_added, 5000));
    assert_true(serves_file(port, "r.example", cert_r, 0));
    assert_true(serves_file(port, "t.example", cert_added, 0));
    assert_true(serves_file(port, "s.example", cert_added, 0)); /* nobody names it now */
    assert_int_equal(proc_log_count(&reloading, "takes effect at restart"), 0);
}

static void a_file_that_does_not_load_on_sighup_keeps_every_running_context(void **state)
{
    (void)state;
    int port = reloading_tls_port;
    char named[300];
    X509 *added_before = certificate_file(cert_added), *r_before = certificate_file(cert_r);
    /* t.example is renewed, but r's key is now garbage, and heads get smaller in the same reload.
     */
    make_certificate("t.example", "t.example", cert_added, key_added);
    FILE *f = fopen(key_r, "w");
    assert_non_null(f);
    fprintf(f, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    fclose(f);
    reload_conf_write_added_r("max-header-size 2k\n");
    reload();
    snprintf(named, sizeof(named), "tls-key: %s", key_r);
    assert_true(log_has(&reloading, "proxy: SIGHUP: ", named, 2000));
    int big = 0;
    for (int64_t end = now_ms() + 3000; (big = request_with_big_header(reloading.port)) != 431;) {
        if (now_ms() >= end)
            break;
        sleep_ms(25);
    }
    assert_int_equal(big, 431); /* the rest of the file applied */
    assert_int_equal(waitpid(reloading.pid, NULL, WNOHANG), 0);
    /* Nothing half-applied: t.example's old certificate, not its renewed file; r's as before. */
    assert_true(serves(port, NULL, added_before, 0));
    assert_true(serves(port, "r.example", r_before, 0));

    /* A key that loads but is not the certificate's: refused the same way. */
    file_copy(key_s, key_r);
    reload();
    assert_int_equal(proc_log_count(&reloading, named), 2);
    assert_true(serves(port, NULL, added_before, 0));
    assert_true(serves(port, "r.example", r_before, 0));

    /* A good pair again: everything the files hold now serves. */
    make_certificate("r.example", "r.example", cert_r, key_r);
    reload();
    assert_true(serves_file(port, "r.example", cert_r, 5000));
    assert_true(serves_file(port, NULL, cert_added, 0));
    assert_int_equal(proc_log_count(&reloading, named), 2);
    X509_free(added_before);
    X509_free(r_before);
}

/* A session the reloading gslbd issued (a ticket, TLS 1.3) after one request; the caller frees
 * it. */
static SSL_SESSION *session_of_a_request(int port)
{
    struct tls t = {.fd = -1};
    char *resp;
    size_t len;
    assert_true(tls_open(port, NULL, &t));
    assert_int_equal(tls_request(&t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &resp, &len), 200);
    free(resp);
    SSL_SESSION *sess = SSL_get1_session(t.ssl); /* the ticket came with the response */
    tls_close(&t);
    assert_non_null(sess);
    return sess;
}

/* Whether a new connection of <ctx> offering <sess> (NULL: none) resumes it; <*got>, unless
 * NULL, takes the connection's session. */
static bool resumes_with(SSL_CTX *ctx, int port, SSL_SESSION *sess, SSL_SESSION **got)
{
    struct tls t = {.fd = -1};
    assert_true(tcp_connect(port, &t));
    t.ssl = SSL_new(ctx);
    if (sess)
        SSL_set_session(t.ssl, sess);
    SSL_set_fd(t.ssl, t.fd);
    assert_int_equal(SSL_connect(t.ssl), 1);
    bool reused = SSL_session_reused(t.ssl) == 1;
    if (got)
        *got = SSL_get1_session(t.ssl);
    tls_close(&t);
    return reused;
}

/* Whether a new connection offering <sess> resumes it. */
static bool resumes(int port, SSL_SESSION *sess)
{
    return resumes_with(client_ctx, port, sess, NULL);
}

/* Clients keep the tickets gslbd gave them across a SIGHUP, which makes every context anew: the
 * new ones take the running ones' ticket keys, so the tickets still resume sessions. */
static void tickets_issued_before_a_sighup_resume_sessions_after_it(void **state)
{
    (void)state;
    int port = reloading_tls_port;
    int failed = proc_log_count(&reloading, "proxy: SIGHUP: ");
    SSL_SESSION *sess = session_of_a_request(port);
    assert_true(resumes(port, sess));
    reload();
    assert_true(resumes(port, sess));
    reload();
    assert_true(resumes(port, sess));
    assert_int_equal(proc_log_count(&reloading, "proxy: SIGHUP: "), failed); /* both reloads took */
    SSL_SESSION_free(sess);
}

/* The name of the key that sealed <sess>'s ticket: its first 16 bytes, as OpenSSL lays tickets
 * out and gslbd's key ring names its keys. */
static void ticket_key_name(const SSL_SESSION *sess, unsigned char name[16])
{
    const unsigned char *ticket;
    size_t len;
    SSL_SESSION_get0_ticket(sess, &ticket, &len);
    assert_true(len > 16);
    memcpy(name, ticket, 16);
}

/* With tls-ticket-rotate 1s: tickets issued within the second share a key, the next second's
 * come under a new one, a ticket under the previous key still resumes, and clients are told a
 * ticket lives two periods. */
static void ticket_keys_rotate_and_the_previous_one_still_opens(void **state)
{
    (void)state;
    int port = reloading_tls_port;
    char pairs[1024];
    unsigned char first[16], again[16], later[16];
    snprintf(pairs, sizeof(pairs), "tls-cert %s\ntls-key %s\ntls-cert %s\ntls-key %s\n", cert_r,
             key_r, cert_s, key_s);
    reload_conf_write(pairs, "max-header-size 64k\ntls-ticket-rotate 1s\n");
    reload();
    SSL_SESSION *sess = session_of_a_request(port), *same = session_of_a_request(port);
    ticket_key_name(sess, first);
    ticket_key_name(same, again);
    assert_memory_equal(first, again, 16);
    assert_int_equal(SSL_SESSION_get_ticket_lifetime_hint(sess), 2);
    sleep_ms(1200);
    SSL_SESSION *next = session_of_a_request(port);
    ticket_key_name(next, later);
    assert_memory_not_equal(first, later, 16);
    assert_true(resumes(port, sess));
    assert_true(resumes(port, next));
    SSL_SESSION_free(sess);
    SSL_SESSION_free(same);
    SSL_SESSION_free(next);
}

/* Writes a tls-ticket-key-file of <n> keys, in order; each line holds one's 80 bytes (name, HMAC
 * key, AES key) in base64. */
static void ticket_key_file_write(const char *path, int n, unsigned char (*keys)[80])
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# the first key seals, all open\n");
    for (int i = 0; i < n; i++) {
        unsigned char text[109];
        assert_int_equal(EVP_EncodeBlock(text, keys[i], 80), 108);
        fprintf(f, "%s\n", text);
    }
    fclose(f);
}

/* Two gslbd with the same tls-ticket-key-file (two machines a client may be sent to) resume each
 * other's sessions, a gslbd without it does not; a new key put first seals from the next SIGHUP
 * while tickets under the one below it still open; a file that does not load is logged with its
 * line and changes nothing. */
static void a_shared_ticket_key_file_resumes_sessions_on_another_gslbd(void **state)
{
    (void)state;
    char keys[160], pairs[1024], more[256], named[256];
    unsigned char key[2][80], got[16];
    snprintf(keys, sizeof(keys), "%s/tickets.keys", dir);
    assert_int_equal(RAND_bytes(key[0], 80), 1);
    ticket_key_file_write(keys, 1, key);
    snprintf(pairs, sizeof(pairs), "tls-cert %s\ntls-key %s\ntls-cert %s\ntls-key %s\n", cert_r,
             key_r, cert_s, key_s);
    snprintf(more, sizeof(more), "max-header-size 64k\ntls-ticket-key-file %s\n", keys);
    int failed = proc_log_count(&reloading, "proxy: SIGHUP: ");
    reload_conf_write(pairs, more);
    reload();
    assert_int_equal(proc_log_count(&reloading, "proxy: SIGHUP: "), failed);
    const char *twin_extra[] = {
        "--listen-tls",          "127.0.0.1:0", "--tls-cert",       cert_r, "--tls-key", key_r,
        "--tls-ticket-key-file", keys,          "--metrics-listen", "",     NULL};
    struct proc twin = gslbd_start(twin_extra);
    int twin_port = listener_port(&twin, 1);

    SSL_SESSION *sess = session_of_a_request(reloading_tls_port);
    ticket_key_name(sess, got);
    assert_memory_equal(got, key[0], 16); /* the file's key (named by its first bytes) sealed it */
    assert_true(resumes(twin_port, sess));
    assert_false(resumes(tls_port, sess)); /* its own keys open none of these */

    /* Rotated: a new key first, the old one below it, on both. */
    memcpy(key[1], key[0], 80);
    assert_int_equal(RAND_bytes(key[0], 80), 1);
    ticket_key_file_write(keys, 2, key);
    reload();
    gslbd_sighup(&twin);
    SSL_SESSION *next = session_of_a_request(twin_port);
    ticket_key_name(next, got);
    assert_memory_equal(got, key[0], 16);
    assert_true(resumes(reloading_tls_port, next));
    assert_true(resumes(reloading_tls_port, sess)); /* under the key below: still opens */

    /* A broken file: named with its line, and the keys in use stay. */
    FILE *f = fopen(keys, "w");
    assert_non_null(f);
    fprintf(f, "# a key cut short\nc2hvcnQ=\n");
    fclose(f);
    reload();
    snprintf(named, sizeof(named), "tls-ticket-key-file: %s: line 2: ", keys);
    assert_true(log_has(&reloading, "proxy: SIGHUP: ", named, 2000));
    assert_true(resumes(reloading_tls_port, next));

    gslbd_stop(&twin);
    reload_conf_write(pairs, "max-header-size 64k\n"); /* back to its own keys */
    reload();
    assert_false(resumes(reloading_tls_port, next));
    SSL_SESSION_free(sess);
    SSL_SESSION_free(next);
}

/* A TLS 1.2 client without tickets resumes its session by ID, before a SIGHUP and after it,
 * although the reload makes every server context (and so OpenSSL's own cache) anew, and after
 * closing without a close_notify. */
static void sessions_resumed_by_id_survive_a_sighup(void **state)
{
    (void)state;
    int port = reloading_tls_port;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_SESSION *sess = NULL;
    assert_false(resumes_with(ctx, port, NULL, &sess));
    unsigned int id_len;
    SSL_SESSION_get_id(sess, &id_len);
    assert_true(id_len > 0); /* a session ID, no ticket */
    assert_true(resumes_with(ctx, port, sess, NULL));
    reload();
    assert_true(resumes_with(ctx, port, sess, NULL));
    /* A client that just closes its socket, no close_notify (many do), keeps its session too. */
    struct tls t = {.fd = -1};
    assert_true(tcp_connect(port, &t));
    t.ssl = SSL_new(ctx);
    SSL_set_session(t.ssl, sess);
    SSL_set_fd(t.ssl, t.fd);
    assert_int_equal(SSL_connect(t.ssl), 1);
    assert_true(SSL_session_reused(t.ssl));
    SSL_set_quiet_shutdown(t.ssl, 1); /* the client side keeps it: nothing is sent */
    SSL_shutdown(t.ssl);
    close(t.fd);
    t.fd = -1;
    sleep_ms(300); /* gslbd reads the end of the stream */
    tls_close(&t);
    assert_true(resumes_with(ctx, port, sess, NULL));
    SSL_SESSION_free(sess);
    SSL_CTX_free(ctx);
}

/* A GET of o.example through the reloading gslbd, until it answers <want> (up to 5 s). */
static int get_o_example_until(int want)
{
    int status = -1;
    for (int64_t end = now_ms() + 5000; now_ms() < end; sleep_ms(50)) {
        struct resp r;
        status = request(reloading.port, "GET / HTTP/1.1\r\nHost: o.example\r\n\r\n", &r);
        if (status == 200 && strstr(r.body, "s_server") == NULL)
            status = -2;
        resp_free(&r);
        if (status == want)
            break;
    }
    return status;
}

static void the_origin_ca_file_is_read_again_on_sighup(void **state)
{
    (void)state;
    char named[300];
    tls_server = tls_server_start(cert_a, key_a);
    /* origin-ca-file holds b's certificate, which does not vouch for a.example's. */
    assert_int_equal(get_through_tls_origin_of(&reloading, tls_server.port,
                                               "\"tls\": true, \"tls_name\": \"a.example\""),
                     502);
    file_copy(cert_a, origin_ca);
    reload();
    assert_int_equal(get_o_example_until(200), 200);
    /* A CA file gone missing keeps the CAs read last. */
    assert_int_equal(unlink(origin_ca), 0);
    reload();
    snprintf(named, sizeof(named), "origin-ca-file: %s", origin_ca);
    assert_true(log_has(&reloading, "proxy: SIGHUP: ", named, 2000));
    assert_int_equal(get_o_example_until(200), 200);
    proc_stop(&tls_server, SIGTERM);
}

/* ---- OCSP stapling (the stapling gslbd) ---- */

static void clients_asking_for_status_get_the_served_certificates_own_response(void **state)
{
    (void)state;
    int port = stapling_tls_port;
    assert_int_equal(stapled(port, "c.example", cert_c), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(stapled(port, NULL, cert_c), V_OCSP_CERTSTATUS_GOOD); /* the first pair */
    /* SNI moves these handshakes off c's context, and off its response: d and e have no file. */
    assert_int_equal(stapled(port, "d.example", cert_d), NO_STAPLE);
    assert_int_equal(stapled(port, "e.example", cert_e), NO_STAPLE);
    /* A client that does not ask is sent nothing. */
    struct tls t;
    const unsigned char *der = NULL;
    assert_true(tls_open(port, "c.example", &t));
    assert_true(SSL_get_tlsext_status_ocsp_resp(t.ssl, &der) <= 0);
    tls_close(&t);
}

static void a_response_file_written_after_start_is_stapled_after_sighup(void **state)
{
    (void)state;
    int port = stapling_tls_port;
    make_ocsp_response(cert_e, ca_cert, ca_key, false, ocsp_e);
    /* d first now: handshakes start on a context that staples nothing and SNI moves them. */
    staple_conf_write(cert_d, cert_c, cert_e);
    gslbd_sighup(&stapling);
    assert_int_equal(proc_log_count(&stapling, "proxy: SIGHUP: "), 0);
    assert_int_equal(stapled(port, "e.example", cert_e), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(stapled(port, "c.example", cert_c), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(stapled(port, NULL, cert_d), NO_STAPLE);
}

static void a_response_that_does_not_fit_on_sighup_keeps_every_running_staple(void **state)
{
    (void)state;
    int port = stapling_tls_port;
    char named[300];
    /* c's response beside d's self-signed certificate: no issuer in d's chain to match it by. */
    file_copy(ocsp_c, ocsp_d);
    /* and e's renewed response garbled, which must not replace the one e has either */
    FILE *f = fopen(ocsp_e, "w");
    assert_non_null(f);
    fputs("not DER\n", f);
    fclose(f);
    gslbd_sighup(&stapling);
    snprintf(named, sizeof(named), "tls-cert: %s: ", ocsp_d);
    assert_true(log_has(&stapling, "proxy: SIGHUP: ", named, 2000));
    assert_true(log_has(&stapling, named, "issuer", 0));
    assert_int_equal(waitpid(stapling.pid, NULL, WNOHANG), 0);
    assert_int_equal(stapled(port, "e.example", cert_e), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(stapled(port, "c.example", cert_c), V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(stapled(port, "d.example", cert_d), NO_STAPLE);

    /* d's fixed, e's still garbled: named in its turn. */
    assert_int_equal(unlink(ocsp_d), 0);
    gslbd_sighup(&stapling);
    snprintf(named, sizeof(named), "tls-cert: %s: not a DER-encoded OCSP response", ocsp_e);
    assert_true(log_has(&stapling, "proxy: SIGHUP: ", named, 2000));
    assert_int_equal(stapled(port, "e.example", cert_e), V_OCSP_CERTSTATUS_GOOD);

    make_ocsp_response(cert_e, ca_cert, ca_key, false, ocsp_e);
    gslbd_sighup(&stapling);
    assert_int_equal(proc_log_count(&stapling, "proxy: SIGHUP: "), 2);
}

static void a_response_past_its_next_update_is_no_longer_stapled(void **state)
{
    (void)state;
    int port = stapling_tls_port;
    const char *warning = "OCSP response expired";
    ocsp_response_write(cert_e, 3, true, ocsp_e);
    time_t expiry = time(NULL) + 3;
    gslbd_sighup(&stapling);
    assert_int_equal(proc_log_count(&stapling, "proxy: SIGHUP: "), 2); /* loaded */
    /* Until then it is stapled (unless this machine is too slow to tell). */
    int before = stapled(port, "e.example", cert_e);
    if (time(NULL) < expiry)
        assert_int_equal(before, V_OCSP_CERTSTATUS_GOOD);
    assert_int_equal(proc_log_count(&stapling, warning), 0);
    while (time(NULL) <= expiry)
        sleep_ms(100);
    assert_int_equal(stapled(port, "e.example", cert_e), NO_STAPLE);
    assert_int_equal(stapled(port, "e.example", cert_e), NO_STAPLE);
    assert_int_equal(stapled(port, "c.example", cert_c), V_OCSP_CERTSTATUS_GOOD);
    assert_true(log_has(&stapling, warning, ocsp_e, 0));
    assert_int_equal(proc_log_count(&stapling, warning), 1); /* four handshakes, one warning */

    /* The operator's cron job catches up: stapled again. */
    make_ocsp_response(cert_e, ca_cert, ca_key, false, ocsp_e);
    gslbd_sighup(&stapling);
    assert_int_equal(stapled(port, "e.example", cert_e), V_OCSP_CERTSTATUS_GOOD);
}

/* Runs gslbd on <cert> (key <key>) with <check> ("--check-config" or ""), bounded by timeout(1);
 * returns its exit status and what it printed in <out>. */
static int gslbd_once(const char *check, const char *cert, const char *key, char *out, size_t len)
{
    char cmd[2048], line[512];
    snprintf(cmd, sizeof(cmd),
             "timeout 20 %s/gslbd %s --db %s --geoip %s --listen 127.0.0.1:0 --metrics-listen '' "
             "--admin-listen '' --listen-tls 127.0.0.1:0 --tls-cert %s --tls-key %s 2>&1",
             build, check, db_path, city, cert, key);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p))
        strncat(out, line, len - strlen(out) - 1);
    int status = pclose(p);
    if (strstr(out, "Sanitizer") || strstr(out, "runtime error"))
        fail_msg("a sanitizer report: %s", out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void a_response_that_does_not_fit_refuses_the_start(void **state)
{
    (void)state;
    static const struct {
        const char *what, *expect;
    } cases[] = {
        {"other", "not for this certificate"}, /* c's response beside e's certificate */
        {"garbled", "not a DER-encoded OCSP response"},
        {"no-issuer", "issuer"}, /* c's response beside d's self-signed one */
        {"expired", "expired at"},
        {"no-next-update", "no nextUpdate"},
    };
    char cert[200], key[200], ocsp[210], named[300], out[4096];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool self_signed = strcmp(cases[i].what, "no-issuer") == 0;
        snprintf(cert, sizeof(cert), "%s/%s.pem", dir, cases[i].what);
        snprintf(key, sizeof(key), "%s/%s.key", dir, cases[i].what);
        snprintf(ocsp, sizeof(ocsp), "%s.ocsp", cert);
        file_copy(self_signed ? cert_d : cert_e, cert);
        file_copy(self_signed ? key_d : key_e, key);
        if (strcmp(cases[i].what, "garbled") == 0) {
            file_copy(key, ocsp); /* a PEM file where DER belongs */
        } else if (strcmp(cases[i].what, "expired") == 0) {
            ocsp_response_write(cert, -30, true, ocsp);
        } else if (strcmp(cases[i].what, "no-next-update") == 0) {
            ocsp_response_write(cert, 0, false, ocsp);
        } else {
            file_copy(ocsp_c, ocsp);
        }
        int status = gslbd_once("--check-config", cert, key, out, sizeof(out));
        snprintf(named, sizeof(named), "tls-cert: %s: ", ocsp);
        if (status == 0 || strstr(out, named) == NULL || strstr(out, cases[i].expect) == NULL)
            fail_msg("%s: exit %d, without '%s' and '%s' in: %s", cases[i].what, status, named,
                     cases[i].expect, out);
    }
    /* Not only the check: gslbd itself refuses to start (on the last file, which has no
     * nextUpdate), and with the file gone it starts. */
    int status = gslbd_once("", cert, key, out, sizeof(out));
    if (status == 0 || status == 124 || strstr(out, ocsp) == NULL)
        fail_msg("started (exit %d): %s", status, out);
    assert_int_equal(unlink(ocsp), 0);
    assert_int_equal(gslbd_once("--check-config", cert, key, out, sizeof(out)), 0);

    /* A response that says the certificate is revoked fits: it is stapled (clients should hear
     * it), with a warning. */
    make_ocsp_response(cert, ca_cert, ca_key, true, ocsp);
    assert_int_equal(gslbd_once("--check-config", cert, key, out, sizeof(out)), 0);
    snprintf(named, sizeof(named),
             "tls-cert: %s: the OCSP response says the certificate is revoked", ocsp);
    if (strstr(out, named) == NULL)
        fail_msg("no warning '%s' in: %s", named, out);
}

static void exits_cleanly(void **state)
{
    (void)state;
    gslbd_stop(&gslbd);
    gslbd_stop(&reloading);
    gslbd_stop(&stapling);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_requests_are_routed_and_the_origin_hears_https),
        cmocka_unit_test(the_sni_name_picks_the_certificate),
        cmocka_unit_test(one_session_carries_keep_alive_requests_and_a_large_body),
        cmocka_unit_test(a_tls_client_still_sending_reads_its_answer),
        cmocka_unit_test(a_tls_client_that_ends_after_its_last_request_gets_the_answer),
        cmocka_unit_test(an_orderly_end_sends_a_close_notify),
        cmocka_unit_test(plain_http_to_the_tls_port_gets_a_plain_400),
        cmocka_unit_test(alpn_agrees_on_http_1_or_refuses_the_handshake),
        cmocka_unit_test(a_tls_client_past_the_connection_limit_is_closed_without_plain_bytes),
        cmocka_unit_test(a_tls_client_that_reads_nothing_is_dropped_while_it_sends),
        cmocka_unit_test(origins_are_reached_over_tls_with_their_certificates_checked),
        cmocka_unit_test(new_origin_connections_resume_the_session_of_their_own_origin_only),
        cmocka_unit_test(a_key_that_does_not_load_is_named),
        cmocka_unit_test(renewed_files_serve_new_connections_after_sighup_while_open_ones_carry_on),
        cmocka_unit_test(tickets_issued_before_a_sighup_resume_sessions_after_it),
        cmocka_unit_test(ticket_keys_rotate_and_the_previous_one_still_opens),
        cmocka_unit_test(a_shared_ticket_key_file_resumes_sessions_on_another_gslbd),
        cmocka_unit_test(sessions_resumed_by_id_survive_a_sighup),
        cmocka_unit_test(pairs_may_move_come_and_go_on_sighup),
        cmocka_unit_test(a_file_that_does_not_load_on_sighup_keeps_every_running_context),
        cmocka_unit_test(the_origin_ca_file_is_read_again_on_sighup),
        cmocka_unit_test(clients_asking_for_status_get_the_served_certificates_own_response),
        cmocka_unit_test(a_response_file_written_after_start_is_stapled_after_sighup),
        cmocka_unit_test(a_response_that_does_not_fit_on_sighup_keeps_every_running_staple),
        cmocka_unit_test(a_response_past_its_next_update_is_no_longer_stapled),
        cmocka_unit_test(a_response_that_does_not_fit_refuses_the_start),
        cmocka_unit_test(exits_cleanly),
    };
    harness_test_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

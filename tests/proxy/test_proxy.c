/* tests/proxy/test_proxy.c - gslbd as a client and an origin see it: the real daemon on
 * 127.0.0.1, real origin processes (tests/proxy/origin.c, sharing no code with the proxy), a real
 * SQLite file and the GeoLite2 City database, raw sockets on the client side so malformed
 * requests reach the proxy byte for byte. Every process started here is stopped by PID. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "tests/proxy/harness.h"

#ifdef __SANITIZE_ADDRESS__
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static char access_log[128];
static struct proc eu, eu_bad, eu_once, eu_stale, us, ap, gslbd;

static char *get_from(const char *xff, const char *host, const char *path, int *status)
{
    char raw[1024];
    struct resp r;
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: %s\r\nX-Forwarded-For: %s\r\n\r\n", path,
             host, xff);
    *status = request(gslbd.port, raw, &r);
    return r.body;
}

/* ---- fixtures ---- */

static void file_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    char topo[4096];
    harness_init("gslb-proxy");
    snprintf(access_log, sizeof(access_log), "%s/access.log", dir);
    eu = origin_start("eu-west", NULL, 0);
    eu_bad = origin_start("eu-bad", "reset", 0);
    us = origin_start("us-east", NULL, 0);
    ap = origin_start("ap-southeast", NULL, 0);
    eu_once = origin_start("eu-once", "once", 0);
    eu_stale = origin_start("eu-stale", "stale", 0);
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26},"
             " {\"name\": \"us-east\", \"lat\": 39.04, \"lon\": -77.49},"
             " {\"name\": \"ap-southeast\", \"lat\": 1.35, \"lon\": 103.82}],"
             " \"services\": ["
             "  {\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
             "    {\"region\": \"ap-southeast\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]},"
             "    {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]},"
             "    {\"region\": \"us-east\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]},"
             "  {\"name\": \"retry\", \"hosts\": [\"retry.test\"], \"pools\": ["
             "    {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\"},"
             "                                          {\"address\": \"127.0.0.1:%d\"}]}]},"
             "  {\"name\": \"dead\", \"hosts\": [\"dead.test\"], \"pools\": ["
             "    {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:1\"}]},"
             "    {\"region\": \"us-east\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]},"
             "  {\"name\": \"once\", \"hosts\": [\"once.test\"], \"pools\": ["
             "    {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]},"
             "    {\"region\": \"us-east\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]},"
             "  {\"name\": \"stale\", \"hosts\": [\"stale.test\"], \"pools\": ["
             "    {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\"},"
             "                                          {\"address\": \"127.0.0.1:%d\"}]}]},"
             "  {\"name\": \"gone\", \"hosts\": [\"gone.test\"], \"pools\": ["
             "    {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:1\"}]}]},"
             "  {\"name\": \"down\", \"hosts\": [\"down.test\"], \"pools\": ["
             "    {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\","
             "      \"state\": \"disabled\"}]}]}]}",
             ap.port, eu.port, us.port, eu_bad.port, eu.port, us.port, eu_once.port, us.port,
             eu_stale.port, eu_once.port, eu.port);
    topology_import(db_path, topo);
    const char *extra[] = {"--access-log",
                           access_log,
                           "--client-header-timeout",
                           "1s",
                           "--keepalive-timeout",
                           "2s",
                           "--response-header-timeout",
                           "1500ms",
                           "--origin-read-timeout",
                           "1500ms",
                           "--max-header-size",
                           "16k",
                           "--max-headers",
                           "50",
                           "--max-connections",
                           "400",
                           NULL};
    gslbd = gslbd_start(extra);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    proc_stop(&gslbd, SIGKILL); /* normally stopped already by the last test */
    proc_stop(&eu, SIGKILL);
    proc_stop(&eu_bad, SIGKILL);
    proc_stop(&us, SIGKILL);
    proc_stop(&ap, SIGKILL);
    proc_stop(&eu_once, SIGKILL);
    proc_stop(&eu_stale, SIGKILL);
    harness_fini();
    return 0;
}

/* ---- routing ---- */

static void routes_clients_by_their_forwarded_address(void **state)
{
    (void)state;
    static const char *const cases[][2] = {{"81.2.69.142", "eu-west\n"},
                                           {"8.8.8.8", "us-east\n"},
                                           {"1.1.1.1", "ap-southeast\n"},
                                           {"2001:4860:4860::8888", "us-east\n"},
                                           {"203.0.113.9, 81.2.69.142", "eu-west\n"},
                                           /* empty items are skipped (RFC 9110 5.6.1) */
                                           {" 81.2.69.142 ,  ", "eu-west\n"},
                                           {"81.2.69.142, ,127.0.0.1", "eu-west\n"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status;
        char *body = get_from(cases[i][0], "example.com", "/", &status);
        assert_int_equal(status, 200);
        assert_string_equal(body, cases[i][1]);
        free(body);
    }
}

static void ignores_forwarded_address_from_an_untrusted_peer(void **state)
{
    (void)state;
    struct conn *c = conn_open_from(gslbd.port, "127.0.0.2");
    struct resp r;
    conn_send(c, "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    /* 127.0.0.2 has no location: the first pool (ap-southeast) serves, not the American one. */
    assert_string_equal(r.body, "ap-southeast\n");
    resp_free(&r);
    conn_send(c, "GET /headers HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_non_null(strstr(r.body, "X-Forwarded-For: 127.0.0.2\n")); /* the client's is dropped */
    resp_free(&r);
    conn_close(c);
}

/* `gslbd --check-config --KEY VALUE` (<value> as the shell reads it) exits 2 naming <key>. */
static void check_config_refuses(const char *key, const char *value)
{
    char cmd[1024], out[1024] = "";
    snprintf(cmd, sizeof(cmd), "%s/gslbd --db %s --geoip %s --%s %s --check-config 2>&1", build,
             db_path, city, key, value);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    assert_int_equal(WEXITSTATUS(pclose(f)), 2);
    assert_non_null(strstr(out, key));
}

/* client-ip-header: a trusted peer names the client in X-Real-IP (any case), X-Forwarded-For no
 * longer counts for the address (it is still forwarded, appended to); an untrusted peer's is
 * ignored. The origin gets one X-Real-IP, naming the client found, whoever the peer (until
 * 2026-12-07 an untrusted client's own went through). A name that is no header name, or one gslbd
 * sets or acts on, is refused, named. */
static void takes_the_client_from_the_configured_header(void **state)
{
    (void)state;
    const char *extra[] = {"--client-ip-header", "x-real-ip", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    static const char *const cases[][3] = {
        {"8.8.8.8", "81.2.69.142", "us-east"},
        {"81.2.69.142", "8.8.8.8", "eu-west"},
        {"8.8.8.8, 127.0.0.1", "81.2.69.142", "us-east"}, /* trusted hops are walked over */
    };
    char raw[512];
    struct resp r;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(raw, sizeof(raw),
                 "GET /headers HTTP/1.1\r\nHost: example.com\r\nX-Real-IP: %s\r\n"
                 "X-Forwarded-For: %s\r\n\r\n",
                 cases[i][0], cases[i][1]);
        assert_int_equal(request(d.port, raw, &r), 200);
        assert_string_equal(resp_header(&r, "x-origin"), cases[i][2]);
        char xff[128];
        snprintf(xff, sizeof(xff), "X-Forwarded-For: %s, 127.0.0.1\n", cases[i][1]);
        assert_non_null(strstr(r.body, xff));
        char *real = strcasestr(r.body, "\nX-Real-IP: ");
        assert_non_null(real);
        assert_int_equal(strncmp(real + 12, cases[i][0], 7), 0); /* 8.8.8.8 or 81.2.69.142 */
        assert_null(strcasestr(real + 1, "\nX-Real-IP:"));
        resp_free(&r);
    }
    struct conn *c = conn_open_from(d.port, "127.0.0.2");
    conn_send(c, "GET /headers HTTP/1.1\r\nHost: example.com\r\nX-Real-IP: 8.8.8.8\r\n"
                 "x-real-ip: 8.8.4.4\r\nX_Real_IP: 8.8.2.2\r\nX_Forwarded_For: 8.8.3.3\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(resp_header(&r, "x-origin"), "ap-southeast"); /* 127.0.0.2: nowhere */
    assert_non_null(strcasestr(r.body, "\nX-Real-IP: 127.0.0.2\n"));
    assert_null(strstr(r.body, "8.8.")); /* nor look-alikes a CGI server would read as ours */
    resp_free(&r);
    /* Nor as a trailer field (until 2026-12-07 it went on there). */
    conn_send(c, "POST /trailers HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n1\r\nx\r\n0\r\nX-Real-IP: 6.6.6.6\r\nX_REAL_IP: 6.6.6.6\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(r.body, "none\n"); /* the trailer fields the origin got */
    resp_free(&r);
    conn_close(c);
    gslbd_stop(&d);

    check_config_refuses("client-ip-header", "'X Real'");
    check_config_refuses("client-ip-header", "forwarded"); /* not a list of addresses */
    check_config_refuses("client-ip-header", "Via");
    check_config_refuses("client-ip-header", "x-forwarded-host");
}

/* A client's own RFC 7239 Forwarded (forwarded-header off) goes on from a trusted peer only: from
 * any other it is made up, as its X-Forwarded-For is (until 2026-12-07 it went through). */
static void forwards_a_clients_forwarded_header_from_trusted_peers_only(void **state)
{
    (void)state;
    const char raw[] = "GET /headers HTTP/1.1\r\nHost: a\r\nForwarded: for=9.9.9.9\r\n\r\n";
    struct resp r;
    assert_int_equal(request(gslbd.port, raw, &r), 200);
    assert_non_null(strstr(r.body, "\nForwarded: for=9.9.9.9\n"));
    resp_free(&r);
    struct conn *c = conn_open_from(gslbd.port, "127.0.0.2");
    conn_send(c, raw);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "9.9.9.9"));
    resp_free(&r);
    conn_close(c);
}

/* Polls <path> for up to <limit_ms> for a line holding <needle>, copied into <line>: the access
 * log's writer thread flushes every 200 ms, later on a loaded machine. */
static bool file_line_with(const char *path, const char *needle, char *line, size_t cap,
                           int limit_ms)
{
    for (int64_t end = now_ms() + limit_ms;; sleep_ms(50)) {
        bool found = false;
        FILE *f = fopen(path, "r");
        while (f && !found && fgets(line, (int)cap, f))
            found = strstr(line, needle) != NULL;
        if (f)
            fclose(f);
        if (found || now_ms() >= end)
            return found;
    }
}

/* The ID of request-id-header as the origin got it, from a /headers echo ("" if none). */
static void echoed_request_id(const struct resp *r, char *id, size_t cap)
{
    const char *at = strstr(r->body, "X-Request-ID: ");
    size_t len = at ? strcspn(at + 14, "\n") : 0;
    snprintf(id, cap, "%.*s", (int)len, at ? at + 14 : "");
    assert_null(at ? strstr(at + 1, "X-Request-ID: ") : NULL); /* one, never two */
}

static bool is_our_request_id(const char *id)
{
    return id && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

/* request-id-header: every forwarded request carries an ID, a trusted peer's own (one that fits)
 * or a new one, also in the access log and on gslbd's own answers to forwarded requests. */
static void carries_a_request_id(void **state)
{
    (void)state;
    char log_path[300], raw[512], id[200], first[200] = "", line[4096];
    snprintf(log_path, sizeof(log_path), "%s/request-id.log", dir);
    const char *extra[] = {"--request-id-header",
                           "X-Request-ID",
                           "--access-log",
                           log_path,
                           "--metrics-listen",
                           "",
                           NULL};
    struct proc d = gslbd_start(extra);
    static const struct {
        const char *source, *given; /* given: the client's header lines */
        bool kept;
    } cases[] = {
        {"127.0.0.2", "X-Request-ID: forged\r\n", false}, /* untrusted */
        {"127.0.0.2", "", false},
        {"127.0.0.1", "x-request-id: abc-123/x\r\n", true},
        {"127.0.0.1", "X-Request-ID: a\r\nX-Request-ID: b\r\n", false}, /* which one? */
        {"127.0.0.1", "X-Request-ID: two words\r\n", false},
        {"127.0.0.1", "X-Request-ID: \r\n", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conn *c = conn_open_from(d.port, cases[i].source);
        struct resp r;
        snprintf(raw, sizeof(raw), "GET /case%zu?headers HTTP/1.1\r\nHost: a\r\n%s\r\n", i,
                 cases[i].given);
        conn_send(c, raw);
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        echoed_request_id(&r, id, sizeof(id));
        if (cases[i].kept)
            assert_string_equal(id, "abc-123/x");
        else if (!is_our_request_id(id))
            fail_msg("case %zu: request ID \"%s\"", i, id);
        if (!cases[i].kept && first[0] != '\0')
            assert_string_not_equal(id, first); /* a new one each time */
        if (!cases[i].kept)
            snprintf(first, sizeof(first), "%s", id);
        resp_free(&r);
        conn_close(c);
        char needle[32];
        snprintf(needle, sizeof(needle), "/case%zu?headers", i);
        assert_true(file_line_with(log_path, needle, line, sizeof(line), 5000));
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "request_id")), id);
        json_decref(j);
    }
    /* A longer one than 128 characters is not taken. */
    snprintf(raw, sizeof(raw), "GET /headers HTTP/1.1\r\nHost: a\r\nX-Request-ID: %0129d\r\n\r\n",
             7);
    struct resp r;
    assert_int_equal(request(d.port, raw, &r), 200);
    echoed_request_id(&r, id, sizeof(id));
    assert_true(is_our_request_id(id));
    resp_free(&r);
    /* gslbd's own 502 for a forwarded request names its ID. */
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: gone.test\r\n\r\n", &r), 502);
    assert_true(is_our_request_id(resp_header(&r, "x-request-id")));
    resp_free(&r);
    gslbd_stop(&d);

    static const char *const refused[] = {"Via", "x-forwarded-for", "'X Req'"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        check_config_refuses("request-id-header", refused[i]);
}

/* The chain is forwarded as one line, the peer last, wherever the client's X-Forwarded-For
 * headers were among the others: until 2026-12-07 the peer was appended after the headers that
 * followed the first one, so that the origin got a broken head (nginx: 400). Via likewise (only
 * the last Via was kept). */
static void forwards_one_x_forwarded_for_and_one_via_line_wherever_they_were(void **state)
{
    (void)state;
    struct resp r;
    int status = request(gslbd.port,
                         "GET /headers HTTP/1.1\r\nX-Forwarded-For: 203.0.113.9\r\nHost: a\r\n"
                         "Via: 1.0 cdn\r\nX-A: 1\r\nX-Forwarded-For: 81.2.69.142\r\nVia: 1.1 lb\r\n"
                         "X-B: 2\r\n\r\n",
                         &r);
    assert_int_equal(status, 200);
    const char *b = r.body;
    const char *xff = strstr(b, "\nX-Forwarded-For: 203.0.113.9, 81.2.69.142, 127.0.0.1\n");
    assert_non_null(xff);
    assert_ptr_equal(strstr(b, "X-Forwarded-For"), xff + 1); /* one line */
    assert_null(strstr(xff + 2, "X-Forwarded-For"));
    assert_non_null(strstr(b, "\nX-A: 1\n"));
    assert_non_null(strstr(b, "\nX-B: 2\n"));
    const char *via = strstr(b, "\nVia: 1.0 cdn, 1.1 lb, 1.1 gslb\n"); /* Via alike */
    assert_non_null(via);
    assert_ptr_equal(strstr(b, "Via:"), via + 1);
    assert_null(strstr(via + 2, "Via:"));
    resp_free(&r);
    /* The request that found it: curl's order, the body's headers after the chain. */
    status = request(gslbd.port,
                     "POST /headers HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 81.2.69.142\r\n"
                     "Content-Length: 3\r\nContent-Type: text/plain\r\n\r\nabc",
                     &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "\nX-Forwarded-For: 81.2.69.142, 127.0.0.1\n"));
    assert_non_null(strstr(r.body, "\nContent-Type: text/plain\n"));
    assert_non_null(strstr(r.body, "\nContent-Length: 3\n"));
    resp_free(&r);
}

static void redirects_to_the_origin_itself_point_at_the_proxy_instead(void **state)
{
    (void)state;
    struct resp r;
    char port[16];
    assert_int_equal(request(gslbd.port,
                             "GET /redirect/self HTTP/1.1\r\nHost: www.example.com:8080\r\n"
                             "X-Forwarded-For: 81.2.69.142\r\n\r\n",
                             &r),
                     302);
    assert_string_equal(resp_header(&r, "location"),
                        "http://www.example.com:8080/landing?from=self");
    assert_string_equal(resp_header(&r, "content-location"),
                        "http://www.example.com:8080/redirect/self");
    snprintf(port, sizeof(port), ":%d", eu.port);
    assert_null(strstr(r.head, port)); /* the origin's address appears nowhere */
    assert_null(strstr(r.head, "127.0.0.1"));
    resp_free(&r);
    /* A redirect to another site is the origin's business: left as it is. */
    assert_int_equal(request(gslbd.port,
                             "GET /redirect/away HTTP/1.1\r\nHost: www.example.com\r\n"
                             "X-Forwarded-For: 81.2.69.142\r\n\r\n",
                             &r),
                     302);
    assert_string_equal(resp_header(&r, "location"), "https://elsewhere.example/landing");
    resp_free(&r);
    /* A network-path reference to the origin, and (HTTP/1.0 naming no host) the path alone:
     * until 2026-12-07 both went on with the origin's address (found by a differential test). */
    static const char *const cases[][4] = {
        {"GET /redirect/net-path HTTP/1.1\r\nHost: www.example.com\r\n",
         "//www.example.com/landing", "//www.example.com"},
        {"GET /redirect/net-path HTTP/1.0\r\n", "/landing", "/"},
        {"GET /redirect/self HTTP/1.0\r\n", "/landing?from=self", "/redirect/self"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char raw[256];
        snprintf(raw, sizeof(raw), "%sX-Forwarded-For: 81.2.69.142\r\n\r\n", cases[i][0]);
        assert_int_equal(request(gslbd.port, raw, &r), 302);
        assert_string_equal(resp_header(&r, "location"), cases[i][1]);
        assert_string_equal(resp_header(&r, "content-location"), cases[i][2]);
        assert_null(strstr(r.head, "127.0.0.1"));
        resp_free(&r);
    }
}

/* <date>, a Date value, is an IMF-fixdate within a minute of now. */
static void assert_date_is_now(const char *date)
{
    assert_non_null(date);
    struct tm tm = {0};
    const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        fail_msg("Date: %s is not an IMF-fixdate", date);
    time_t t = timegm(&tm), now = time(NULL);
    if (t < now - 60 || t > now + 60)
        fail_msg("Date: %s is not now", date);
}

static void forwards_without_hop_by_hop_headers_and_with_forwarding_headers(void **state)
{
    (void)state;
    struct resp r;
    int status = request(gslbd.port,
                         "GET /headers HTTP/1.1\r\nHost: Example.com:8080\r\n"
                         "Connection: keep-alive, X-Secret, Upgrade\r\nX-Secret: 1\r\n"
                         "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: x\r\n"
                         "Upgrade: h2c\r\nX-Kept: yes\r\nX-Forwarded-For: 81.2.69.142\r\n"
                         "X-Spaced: \t a  b \t \r\n\r\n",
                         &r);
    assert_int_equal(status, 200);
    const char *b = r.body;
    assert_non_null(strstr(b, "GET /headers HTTP/1.1\n"));
    assert_non_null(strstr(b, "Host: Example.com:8080\n"));
    assert_non_null(strstr(b, "X-Kept: yes\n"));
    assert_non_null(strstr(b, "X-Spaced: a  b\n")); /* no whitespace around a value */
    assert_non_null(strstr(b, "X-Forwarded-For: 81.2.69.142, 127.0.0.1\n"));
    assert_non_null(strstr(b, "X-Forwarded-Proto: http\n"));
    assert_non_null(strstr(b, "X-Forwarded-Host: Example.com:8080\n"));
    assert_non_null(strstr(b, "Via: 1.1 gslb\n"));
    assert_null(strcasestr(b, "X-Secret"));
    assert_null(strcasestr(b, "Keep-Alive"));
    assert_null(strcasestr(b, "\nTE:"));
    assert_null(strcasestr(b, "Proxy-Authorization"));
    assert_null(strcasestr(b, "Upgrade")); /* h2c is not forwarded */
    assert_non_null(strstr(r.head, "Via: 1.1 gslb\r\n"));
    assert_date_is_now(resp_header(&r, "date")); /* the origin sent none (RFC 9110 6.6.1) */
    char port[16];
    snprintf(port, sizeof(port), ":%d", eu.port);
    assert_null(strstr(r.head, port)); /* no origin address in the response */
    resp_free(&r);

    /* An origin's own Date goes on as it was, alone. */
    assert_int_equal(request(gslbd.port, "GET /dated HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    assert_string_equal(resp_header(&r, "date"), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_null(strstr(strstr(r.head, "Date:") + 1, "Date:"));
    resp_free(&r);

    /* "close" names a header too, and a name may follow it. */
    status = request(gslbd.port,
                     "GET /headers HTTP/1.1\r\nHost: a\r\nConnection: close ,X-Other\r\n"
                     "X-Other: 1\r\nClose: 1\r\nX-Kept: yes\r\n\r\n",
                     &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "X-Kept: yes\n"));
    assert_null(strcasestr(r.body, "X-Other"));
    assert_null(strcasestr(r.body, "\nClose:"));
    resp_free(&r);
    status = request(gslbd.port, "GET /headers HTTP/1.1\r\nHost: a\r\nClose: 1\r\n\r\n", &r);
    assert_int_equal(status, 200);
    assert_non_null(strcasestr(r.body, "\nClose: 1")); /* named by no Connection header */
    resp_free(&r);

    /* A header with an empty value is one all the same, and names match in any case. */
    status = request(gslbd.port,
                     "GET /headers HTTP/1.1\r\nHost: a\r\nKeep-Alive:\r\nTE: \r\nPROXY-X: 1\r\n"
                     "tRAILER:\r\nx-kept: yes\r\n\r\n",
                     &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "x-kept: yes\n"));
    assert_null(strcasestr(r.body, "Keep-Alive"));
    assert_null(strcasestr(r.body, "\nTE:"));
    assert_null(strcasestr(r.body, "Proxy-X"));
    assert_null(strcasestr(r.body, "Trailer"));
    resp_free(&r);

    /* An origin's Connection naming a field the proxy acts on does not remove it: a response
     * whose Content-Length went would run into the next one (found by a differential test). */
    struct conn *c = conn_open(gslbd.port);
    conn_send(c, "GET /conn-framing HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(resp_header(&r, "content-length"), "5");
    assert_string_equal(r.body, "hello");
    assert_null(resp_header(&r, "x-gone"));
    resp_free(&r);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    resp_free(&r);
    conn_close(c);

    /* Of the Proxy-* fields, RFC 9209's Proxy-Status is end to end: what an intermediary behind
     * the origin says of its handling goes on (until 2026-12-07 it was dropped with the rest). */
    assert_int_equal(request(gslbd.port, "GET /proxy-fields HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    assert_string_equal(resp_header(&r, "proxy-status"), "cache.example; hit");
    assert_null(resp_header(&r, "proxy-authenticate"));
    resp_free(&r);

    /* A WebSocket upgrade goes on as exactly that, whatever else the client's Upgrade headers
     * list (this origin answers 200, so the tunnel never opens). */
    status = request(gslbd.port,
                     "GET /headers HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
                     &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "\nUpgrade: websocket\nConnection: upgrade\n"));
    assert_null(strstr(r.body, "h2c"));
    resp_free(&r);
}

static void keeps_connections_alive_on_both_sides(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    char conn_id[32] = "";
    for (int i = 0; i < 4; i++) {
        conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n");
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "us-east\n");
        if (i == 0)
            snprintf(conn_id, sizeof(conn_id), "%s", resp_header(&r, "x-conn"));
        else
            assert_string_equal(resp_header(&r, "x-conn"), conn_id); /* pooled origin connection */
        resp_free(&r);
    }
    conn_close(c);
}

static void answers_pipelined_requests_in_order(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "GET /slow/200 HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n"
                 "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /status/202 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    int expect[] = {200, 201, 200, 202};
    for (int i = 0; i < 4; i++) {
        assert_true(conn_response(c, &r, i == 2));
        assert_int_equal(r.status, expect[i]);
        resp_free(&r);
    }
    assert_true(conn_closed(c));
    conn_close(c);
}

/* 400 requests of 500 bytes in one go behind a slow one: the proxy stops reading at 64 KiB
 * buffered and reads on as the queue drains, in order, losing nothing. */
static void reads_on_after_pausing_for_a_client_far_ahead(void **state)
{
    (void)state;
    enum { N = 400, SIZE = 500 };
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    char *all = malloc((size_t)N * SIZE + 1), *at = all;
    for (int i = 0; i < N; i++) {
        int len = sprintf(at, "GET %s HTTP/1.1\r\nHost: a\r\nX-Pad: ", i == 0 ? "/slow/300" : "/");
        memset(at + len, 'p', (size_t)(SIZE - len - 4));
        memcpy(at + SIZE - 4, "\r\n\r\n", 4);
        at += SIZE;
    }
    conn_write(c, all, (size_t)N * SIZE);
    free(all);
    for (int i = 0; i < N; i++) {
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    conn_close(c);
}

static void serves_http10_clients(void **state)
{
    (void)state;
    struct resp r;
    struct conn *c = conn_open(gslbd.port);
    conn_send(c, "GET / HTTP/1.0\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n"); /* no Host: fine in 1.0 */
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "us-east\n");
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);

    /* Forwarded as HTTP/1.1 with an empty Host (RFC 9112 3.2), and no X-Forwarded-Host: there
     * is no host to tell of (until 2026-12-07 it was sent empty). */
    assert_int_equal(request(gslbd.port, "GET /headers HTTP/1.0\r\n\r\n", &r), 200);
    assert_non_null(strstr(r.body, "\nHost: \n"));
    assert_null(strcasestr(r.body, "X-Forwarded-Host"));
    /* Via names the version each message came in (RFC 9110 7.6.3); it said 1.1 until
     * 2026-12-07. */
    assert_non_null(strstr(r.body, "\nVia: 1.0 gslb\n"));
    resp_free(&r);
    assert_int_equal(request(gslbd.port, "GET /http10 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    assert_string_equal(resp_header(&r, "via"), "1.0 old, 1.0 gslb");
    assert_string_equal(r.body, "old\n");
    resp_free(&r);

    /* "close" among an HTTP/1.0 message's Connection options wins over its keep-alive (RFC 9112
     * 9.3), the client's and the origin's alike: both connections were kept until 2026-12-07
     * (llhttp 8 heeds it in HTTP/1.1 only; found by a differential test). The origin answers
     * 500 to a request on a connection after it said close. */
    c = conn_open(gslbd.port);
    conn_send(c, "GET /http10-close HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);
    assert_int_equal(request(gslbd.port, "GET /http10-close HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);

    /* An empty Expect list expects nothing (RFC 9110 10.1.1; a 417 until 2026-12-07). */
    assert_int_equal(
        request(gslbd.port, "GET /headers HTTP/1.1\r\nHost: a\r\nExpect:\r\nExpect: ,\r\n\r\n", &r),
        200);
    assert_null(strcasestr(r.body, "Expect"));
    resp_free(&r);
    /* An HTTP/1.0 client's Expect is ignored (RFC 9110 10.1.1): no 417, nothing forwarded. */
    assert_int_equal(request(gslbd.port, "GET /headers HTTP/1.0\r\nExpect: 200-ok\r\n\r\n", &r),
                     200);
    assert_null(strcasestr(r.body, "Expect"));
    resp_free(&r);

    /* Close-delimited to a 1.0 client, which must see the close at the body's end, not at the
     * keep-alive timeout (2 s); a chunked body goes to it bare (RFC 9112 6.1), closed the same. */
    const char *asks[] = {"GET /eof/1000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                          "GET /chunked/100000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                          "GET /chunked/1000 HTTP/1.0\r\n\r\n"};
    const size_t sizes[] = {1000, 100000, 1000};
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        c = conn_open(gslbd.port);
        int64_t start = now_ms();
        conn_send(c, asks[i]);
        assert_true(conn_response(c, &r, false));
        assert_true(now_ms() - start < 1500);
        assert_null(resp_header(&r, "transfer-encoding"));
        assert_string_equal(resp_header(&r, "connection"), "close");
        assert_int_equal(r.body_len, sizes[i]);
        assert_null(memchr(r.body, '\r', r.body_len)); /* no chunk framing: all pattern */
        resp_free(&r);
        conn_close(c);
    }
}

/* Bytes a client sends after its last request (a stray line end here; a TLS close_notify) are
 * not answered with a reset at the close, which would destroy the end of the answer still in
 * flight: gslbd lingers (until 2026-12-07 a slow reader lost megabytes; found by a differential
 * test against nginx). */
static void lingers_on_bytes_sent_after_the_last_request(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    /* More than the socket buffers hold: gslbd still writes when the stray bytes come. */
    conn_send(c, "GET /size/40000000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    sleep_ms(200);
    conn_send(c, "\r\n");
    sleep_ms(300);
    bool whole = conn_response(c, &r, false);
    if (!whole)
        fail_msg("%zu of 40000000 bytes, then %s", r.body_len,
                 c->eof ? "the end" : strerror(errno));
    assert_int_equal(r.body_len, 40000000);
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);
}

/* A client may half-close once its last request is sent (Connection: close, or HTTP/1.0): the
 * answer still comes, whether the request was there at accept or came in two pieces. */
static void answers_a_last_request_after_its_client_half_closes(void **state)
{
    (void)state;
    static const char *const pieces[][2] = {
        {"GET /slow/200 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
         "X-Forwarded-For: 8.8.8.8\r\n\r\n",
         NULL},
        {"GET /slow/200 HTTP/1.1\r\nHost: a\r\n",
         "Connection: close\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n"},
        {"GET /slow/200 HTTP/1.0\r\n", "X-Forwarded-For: 8.8.8.8\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        struct resp r;
        struct conn *c = conn_open(gslbd.port);
        conn_send(c, pieces[i][0]);
        if (pieces[i][1]) {
            sleep_ms(100); /* the proxy has read the first piece and waits for the rest */
            conn_send(c, pieces[i][1]);
        }
        shutdown(c->fd, SHUT_WR);
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "us-east\n");
        resp_free(&r);
        assert_true(conn_closed(c));
        conn_close(c);
    }

    /* Pipelined requests and then the end: those read whole are answered in order, a partial
     * one behind them is not, and the connection closes. Until 2026-12-07 the end came while
     * the first was forwarded and both got a 499 and no answer. */
    for (int partial = 0; partial < 2; partial++) {
        struct resp r;
        struct conn *c = conn_open(gslbd.port);
        conn_send(c, "GET /slow/200 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n");
        if (partial)
            conn_send(c, "GET / HTTP/1.1\r\nHo");
        shutdown(c->fd, SHUT_WR);
        for (int i = 0; i < 2; i++) {
            assert_true(conn_response(c, &r, false));
            assert_int_equal(r.status, i == 0 ? 200 : 201);
            resp_free(&r);
        }
        assert_true(conn_fill(c) == false && c->len == 0); /* nothing more, the end */
        conn_close(c);
    }
    /* So are pipelined requests that wait for a client slow to take the answers before them
     * (256 KiB of them queued): the end does not drop them. */
    {
        enum { N = 8 };
        struct resp r;
        struct conn *c = conn_open(gslbd.port);
        for (int i = 0; i < N; i++)
            conn_send(c, "GET /size/100000 HTTP/1.1\r\nHost: a\r\n\r\n");
        shutdown(c->fd, SHUT_WR);
        sleep_ms(300); /* the client takes nothing for a while */
        for (int i = 0; i < N; i++) {
            if (!conn_response(c, &r, false))
                fail_msg("answer %d of %d missing", i + 1, N);
            assert_int_equal(r.body_len, 100000);
            resp_free(&r);
        }
        assert_true(conn_closed(c));
        conn_close(c);
    }

    /* A partial request and then the end, nothing in flight: closed at once, not at the header
     * timeout (1 s here); so a partial PROXY header. Found by the fuzzer, slowed by the wait. */
    static const char *const cut[][2] = {{"GET / HT", NULL}, {"PROX", "127.0.0.1"}};
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        struct proc *d = NULL, pp;
        int port = gslbd.port;
        if (cut[i][1]) {
            const char *extra[] = {"--listen-proxy-protocol",
                                   "127.0.0.1:0",
                                   "--metrics-listen",
                                   "",
                                   "--client-header-timeout",
                                   "1s",
                                   NULL};
            pp = gslbd_start(extra);
            d = &pp;
            port = listener_port(d, 1);
        }
        struct conn *c = conn_open(port);
        int64_t start = now_ms();
        conn_send(c, cut[i][0]);
        shutdown(c->fd, SHUT_WR);
        assert_true(conn_closed(c));
        if (now_ms() - start > 500)
            fail_msg("\"%s\" and the end: closed after %lld ms", cut[i][0],
                     (long long)(now_ms() - start));
        conn_close(c);
        if (d)
            gslbd_stop(d);
    }
    /* A FIN behind nothing but a keep-alive request in flight is the client leaving: that
     * request is abandoned, as nginx does (no answer is written to a client gone). */
    struct conn *c = conn_open(gslbd.port);
    conn_send(c, "GET /slow/300 HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(50);
    shutdown(c->fd, SHUT_WR);
    assert_true(conn_fill(c) == false && c->len == 0);
    conn_close(c);
}

/* A header name is a token (RFC 9110 5.1): with any other character, in a request's head or
 * trailer it is a 400, in a response's a 502. llhttp checks it, and gslbd relies on it. */
static void refuses_header_names_that_are_no_tokens(void **state)
{
    (void)state;
    const char bad[] = "()<>@,;\\\"/[]?={} \t\x01\x7f\x80\xff";
    char raw[256];
    struct resp r;
    for (size_t i = 0; i < sizeof(bad) - 1; i++) {
        snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX%cY: 1\r\n\r\n", bad[i]);
        if (request(gslbd.port, raw, &r) != 400)
            fail_msg("a name with 0x%02x: %d", (unsigned char)bad[i], r.status);
        resp_free(&r);
        snprintf(raw, sizeof(raw),
                 "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "1\r\nx\r\n0\r\nX%cY: 1\r\n\r\n",
                 bad[i]);
        if (request(gslbd.port, raw, &r) != 400)
            fail_msg("a trailer name with 0x%02x: %d", (unsigned char)bad[i], r.status);
        resp_free(&r);
    }
    assert_int_equal(request(gslbd.port, "GET /name-bad HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    resp_free(&r);
}

static void refuses_request_smuggling_and_malformed_requests(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400},
        {"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 400},
        /* What llhttp's loose mode took for a CRLF: any two bytes after a chunk's data, a CR and
         * any byte. The first smuggled a second request ("40" read as "0"). */
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n40\r\n\r\n"
         "GET /smuggled HTTP/1.1\r\nHost: a\r\nX: yyyyyyyyyyyy\r\n\r\n\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\rZhello\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\rZ",
         400},
        {"GET / HTTP/1.1\r\nHost: a\r\n\rZ", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX(y): a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a.example:abc\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a.example:999999\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a.example:65536\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
        {"GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET nowhere HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
        {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505}, /* llhttp's "invalid" versions */
        {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
        {"GET / HTTP/1.2x\r\nHost: a\r\n\r\n", 400},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505}, /* an HTTP/2 client's preface */
        {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405},
        {"TRACE / HTTP/1.1\r\nHost: a\r\nCookie: secret\r\n\r\n", 405},
        {"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
        {"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n\r\n", 417},
        {"GET / HTTP/1.1\r\nHost: a\r\nExpect:\r\nExpect: 200-ok\r\n\r\n", 417},
        {"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501}, /* methods llhttp does not know */
        {"GETX / HTTP/1.1\r\nHost: a\r\n\r\n", 501},
        {"G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"FOO\x7f / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"FOO / HTTP/x.1\r\nHost: a\r\n\r\n", 400}, /* not a request line */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conn *c = conn_open(gslbd.port);
        struct resp r;
        conn_send(c, cases[i].raw);
        if (!conn_response(c, &r, false))
            fail_msg("case %zu: no response", i);
        if (r.status != cases[i].status)
            fail_msg("case %zu: status %d, expected %d", i, r.status, cases[i].status);
        assert_string_equal(resp_header(&r, "connection"), "close");
        assert_date_is_now(resp_header(&r, "date"));
        if (r.status == 405) /* RFC 9110 15.5.6 */
            assert_string_equal(resp_header(&r, "allow"),
                                "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
        assert_true(conn_closed(c));
        resp_free(&r);
        conn_close(c);
    }
}

/* A header value is refused when it goes on after a line break (obs-fold) wherever the reads
 * cut the head, and taken whole when a read cuts the value itself. Until 2026-12-07 a fold at
 * the start of a read passed for a value split by reads, and was forwarded joined. */
static void refuses_obs_fold_wherever_the_reads_cut_the_head(void **state)
{
    (void)state;
    static const struct {
        const char *first, *rest;
        int status;
    } cases[] = {
        {"GET /?headers HTTP/1.1\r\nHost: a\r\nX-A: aa\r\n", " bb\r\n\r\n", 400},
        {"GET /?headers HTTP/1.1\r\nHost: a\r\nX-A: aa\r", "\n\tbb\r\n\r\n", 400},
        {"GET /?headers HTTP/1.1\r\nHost: a\r\nX-A: aa", "bb\r\n\r\n", 200},
        {"GET /?headers HTTP/1.1\r\nHost: a\r\nX-A: aa ", "bb\r\n\r\n", 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conn *c = conn_open(gslbd.port);
        struct resp r;
        conn_send(c, cases[i].first);
        sleep_ms(150); /* two reads */
        conn_send(c, cases[i].rest);
        assert_true(conn_response(c, &r, false));
        if (r.status != cases[i].status)
            fail_msg("case %zu: status %d", i, r.status);
        if (r.status == 200)
            assert_non_null(strstr(r.body, i == 2 ? "X-A: aabb\n" : "X-A: aa bb\n"));
        resp_free(&r);
        conn_close(c);
    }
}

static void accepts_absolute_form_and_chunked_uploads(void **state)
{
    (void)state;
    struct resp r;
    int status =
        request(gslbd.port, "GET http://example.com/headers HTTP/1.1\r\nHost: ignored\r\n\r\n", &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "GET /headers HTTP/1.1\n"));
    assert_non_null(strstr(r.body, "Host: example.com\n"));
    resp_free(&r);
    status =
        request(gslbd.port, "GET HTTPS://www.example.com HTTP/1.1\r\nHost: ignored\r\n\r\n", &r);
    assert_int_equal(status, 200); /* no path: "/" */
    resp_free(&r);
    status = request(gslbd.port,
                     "GET https://example.com/headers HTTP/1.1\r\nHost: ignored\r\n\r\n", &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "GET /headers HTTP/1.1\n"));
    assert_non_null(strstr(r.body, "Host: example.com\n"));
    resp_free(&r);
    /* Hosts with ports and IPv6 literals. */
    static const char *const hosts[] = {"[::1]:8080", "[::ffff:10.0.0.1]", "a.example:65535",
                                        "a.example:", "xn--bcher-kva.example"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char raw[160];
        snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", hosts[i]);
        if (request(gslbd.port, raw, &r) != 200)
            fail_msg("Host: %s: %d", hosts[i], r.status);
        resp_free(&r);
    }
    /* Percent-encodings in the path, and a bare '%' in the query, which is the origin's. */
    status = request(gslbd.port, "GET /a%2Fb%c3%A9?q=100% HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(status, 200);
    resp_free(&r);
    /* A query without a path, and an OPTIONS without either (RFC 9112 3.2.1, 3.2.4). */
    status = request(gslbd.port, "GET http://example.com?headers HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "GET /?headers HTTP/1.1\n"));
    assert_non_null(strstr(r.body, "Host: example.com\n"));
    resp_free(&r);
    status = request(gslbd.port, "OPTIONS http://example.com HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r.body, "OPTIONS * HTTP/1.1\n"));
    resp_free(&r);
    status = request(gslbd.port,
                     "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
                     &r);
    assert_int_equal(status, 200);
    assert_string_equal(r.body, "5 495\n"); /* 97+98+99+100+101 */
    resp_free(&r);
}

/* RFC 9110 7.6.2: an OPTIONS with Max-Forwards: 0 is answered by the proxy; a larger one is
 * forwarded counted down; other methods keep theirs. */
static void counts_down_max_forwards_on_options(void **state)
{
    (void)state;
    struct resp r;
    assert_int_equal(
        request(gslbd.port, "OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n", &r), 200);
    assert_non_null(strstr(r.body, "Max-Forwards was 0"));
    assert_null(resp_header(&r, "x-origin")); /* the origin was not asked */
    /* What the proxy allows (RFC 9110 9.3.7; none until 2026-12-07). */
    assert_string_equal(resp_header(&r, "allow"), "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
    resp_free(&r);
    assert_int_equal(
        request(gslbd.port, "OPTIONS /x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 10\r\n\r\n", &r), 200);
    assert_non_null(strstr(r.body, "OPTIONS /x HTTP/1.1\n"));
    assert_non_null(strstr(r.body, "Max-Forwards: 9\n"));
    assert_null(strstr(r.body, "Max-Forwards: 10"));
    resp_free(&r);
    assert_int_equal(
        request(gslbd.port, "GET /headers HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n", &r),
        200);
    assert_non_null(strstr(r.body, "Max-Forwards: 0\n"));
    resp_free(&r);
    assert_int_equal(
        request(gslbd.port, "OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: 1x\r\n\r\n", &r), 400);
    resp_free(&r);
}

/* A 304 reaches the client without Content-Length (RFC 9110 8.6 allows one, but clients on llhttp 8
 * read that many bytes after it as a body) and without the body a careless origin sent anyway;
 * the connection goes on with the next response intact. */
static void relays_304_without_a_length_or_a_body(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    for (int i = 0; i < 2; i++) {
        conn_send(c, "GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 304);
        assert_null(resp_header(&r, "content-length"));
        resp_free(&r);
        conn_send(c, "GET /headers HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        assert_memory_equal(r.body, "GET /headers HTTP/1.1\n", 22);
        resp_free(&r);
    }
    conn_close(c);
}

static void refuses_invalid_origin_responses_with_502(void **state)
{
    (void)state;
    struct resp r;
    assert_int_equal(request(gslbd.port, "GET /garbled HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    resp_free(&r);
    assert_int_equal(request(gslbd.port, "GET /cl-conflict HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    resp_free(&r);
    assert_int_equal(request(gslbd.port, "GET /reason-ctl HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    resp_free(&r);
    /* A CR not followed by LF, which llhttp's loose mode took for a CRLF: a header of the
     * origin's reason phrase would have reached the client as a header of its own. */
    assert_int_equal(request(gslbd.port, "GET /status-cr HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    assert_null(resp_header(&r, "set-cookie"));
    resp_free(&r);
    /* Obs-fold at the start of a read, which once passed for a value split by reads. */
    assert_int_equal(request(gslbd.port, "GET /fold-split HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    resp_free(&r);
    /* Two bytes other than CRLF after a chunk's data: cut, never relayed as a whole body. */
    struct conn *c = conn_open(gslbd.port);
    conn_send(c, "GET /chunk-no-crlf HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(conn_response(c, &r, false));
    resp_free(&r);
    conn_close(c);
    /* A status of one or two digits, which llhttp 8 lets through; 600-999 go on. */
    assert_int_equal(request(gslbd.port, "GET /status/2 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    resp_free(&r);
    assert_int_equal(request(gslbd.port, "GET /status/99 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 502);
    resp_free(&r);
    assert_int_equal(request(gslbd.port, "GET /status/999 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 999);
    resp_free(&r);
}

static void relays_interim_responses_as_interim(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "GET /interim HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 103);
    assert_non_null(resp_header(&r, "link"));
    resp_free(&r);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "final\n");
    resp_free(&r);
    conn_close(c);
    /* An interim response, then garbage: the interim goes first, then our 502, and nothing
     * after it. */
    c = conn_open(gslbd.port);
    conn_send(c, "GET /interim-garbled HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 100);
    resp_free(&r);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 502);
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);
    /* An interim response has no body, whatever it announces (RFC 9112 6.3): the bytes after
     * its head are where the next status line should be, so 502, and the client never gets
     * them (found by the response fuzzer: they were relayed as if a body). */
    c = conn_open(gslbd.port);
    conn_send(c, "GET /interim-body HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 103);
    assert_null(resp_header(&r, "content-length"));
    resp_free(&r);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 502);
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);
}

/* Sends <raw> on <c> and reads the response into <r>; returns its status. */
static int exchange(struct conn *c, const char *raw, struct resp *r)
{
    conn_send(c, raw);
    assert_true(conn_response(c, r, false));
    return r->status;
}

/* A 204 carries no body and no Content-Length (the test origin sends both): the client gets
 * neither, and its next request is answered on the same connection. */
static void a_204_goes_out_without_content_length_or_body(void **state)
{
    (void)state;
    static const char next[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    assert_int_equal(exchange(c, "GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 204);
    assert_null(resp_header(&r, "content-length"));
    resp_free(&r);
    assert_int_equal(exchange(c, next, &r), 200); /* not the 204's body read as a response */
    assert_non_null(resp_header(&r, "x-origin")); /* an origin's whole answer */
    resp_free(&r);
    /* A head of nothing but its status line, without a reason phrase. */
    assert_int_equal(exchange(c, "GET /bare HTTP/1.1\r\nHost: a\r\n\r\n", &r), 204);
    assert_true(strncmp(r.head, "HTTP/1.1 204 \r\n", 15) == 0);
    resp_free(&r);
    /* The announced body comes after the head: that origin connection must not be reused, or
     * the next request would read it as its response. */
    assert_int_equal(exchange(c, "GET /late-204 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 204);
    resp_free(&r);
    assert_int_equal(exchange(c, next, &r), 200);
    resp_free(&r);
    assert_int_equal(exchange(c, "GET /late-204-chunked HTTP/1.1\r\nHost: a\r\n\r\n", &r), 204);
    resp_free(&r);
    assert_int_equal(exchange(c, next, &r), 200);
    resp_free(&r);
    conn_close(c);
}

static void a_reused_origin_connection_gets_a_whole_read_timeout(void **state)
{
    (void)state;
    /* The pooled connection idles 3 s of a 4 s read timeout; the next request's 2 s answer
     * must still arrive. */
    const char *extra[] = {"--origin-read-timeout",
                           "4s",
                           "--origin-idle-timeout",
                           "30s",
                           "--response-header-timeout",
                           "10s",
                           "--metrics-listen",
                           "",
                           NULL};
    struct proc d = gslbd_start(extra);
    struct resp r;
    assert_int_equal(request(d.port, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
    sleep_ms(3000);
    assert_int_equal(request(d.port, "GET /slow/2000 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
    /* A response head slower than origin-read-timeout but within response-header-timeout comes
     * through: the read timeout starts with the head (until 2026-12-07 the shorter one won; found
     * by a differential test). */
    const char *slow_head[] = {"--origin-read-timeout",
                               "500ms",
                               "--response-header-timeout",
                               "3s",
                               "--metrics-listen",
                               "",
                               NULL};
    struct proc h = gslbd_start(slow_head);
    assert_int_equal(request(h.port, "GET /slow/1000 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
    gslbd_stop(&h);
    /* Nor does an upload on it that takes longer than the read timeout: the origin's clocks
     * start once it has the whole body. */
    struct conn *c = conn_open(d.port);
    conn_send(c, "PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello");
    sleep_ms(4500);
    conn_send(c, "world");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "10 1084\n");
    resp_free(&r);
    conn_close(c);
    gslbd_stop(&d);
}

static void supports_expect_100_continue(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "POST /continue HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 100);
    resp_free(&r);
    conn_send(c, "hello");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "5 532\n");
    resp_free(&r);
    conn_close(c);

    /* The 100 is gslbd's own, sent as it reads the body, and the Expect is not forwarded: an
     * origin that never answers one (this one, here) kept a client waiting for it until a 408
     * (curl: its own 1 s timer) until 2026-12-07 (found by a differential test; nginx and Envoy
     * answer it themselves). Once per request, retries included. */
    c = conn_open(gslbd.port);
    int64_t start = now_ms();
    conn_send(c, "POST /headers HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 100);
    assert_true(now_ms() - start < 500);
    resp_free(&r);
    conn_send(c, "hello");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_null(strcasestr(r.body, "Expect"));
    resp_free(&r);
    conn_close(c);
}

/* A connection through the gslbd on <port> to the origin's WebSocket echo at <path>, past its
 * 101. */
static struct conn *websocket_open_at(int port, const char *path)
{
    struct conn *c = conn_open(port);
    struct resp r;
    char raw[256];
    snprintf(raw, sizeof(raw),
             "GET %s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
             path);
    conn_send(c, raw);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 101);
    /* Its hop-by-hop headers are the proxy's own, as on any response. */
    assert_string_equal(resp_header(&r, "upgrade"), "websocket");
    assert_string_equal(resp_header(&r, "connection"), "upgrade");
    assert_null(resp_header(&r, "keep-alive"));
    assert_null(resp_header(&r, "x-hop"));
    resp_free(&r);
    return c;
}

static struct conn *websocket_open(int port)
{
    return websocket_open_at(port, "/ws");
}

/* The first line of the (JSON) access log that contains <needle>, parsed; a failure if none
 * comes within 5 s. */
static json_t *access_log_entry(const char *needle)
{
    char line[4096];
    if (!file_line_with(access_log, needle, line, sizeof(line), 5000))
        fail_msg("no access log line with %s", needle);
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    if (j == NULL)
        fail_msg("access log line is not JSON: %s", line);
    return j;
}

static void tunnels_websocket_upgrades_both_ways(void **state)
{
    (void)state;
    struct conn *c = websocket_open_at(gslbd.port, "/ws-logged");
    size_t frames = 0;
    for (int i = 0; i < 3; i++) {
        char msg[2048], echo[2048] = "";
        int n = snprintf(msg, sizeof(msg), "frame-%d-\x81\x7f binary", i);
        if (i == 2) { /* more than a head's worth, for the log's counts */
            memset(msg + n, 'w', 1500);
            n += 1500;
        }
        frames += (size_t)n;
        conn_write(c, msg, (size_t)n);
        size_t got = 0;
        while (got < (size_t)n) {
            if (c->len == 0 && !conn_fill(c))
                fail_msg("tunnel closed");
            size_t take = c->len < (size_t)n - got ? c->len : (size_t)n - got;
            memcpy(echo + got, c->buf, take);
            conn_consume(c, take);
            got += take;
        }
        assert_memory_equal(echo, msg, (size_t)n);
    }
    conn_close(c);
    /* Logged as the tunnel ends, with its bytes both ways besides the heads. */
    json_t *j = access_log_entry("/ws-logged");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 101);
    assert_true((size_t)json_integer_value(json_object_get(j, "bytes_in")) > frames + 100);
    assert_true((size_t)json_integer_value(json_object_get(j, "bytes_out")) > frames + 50);
    assert_true((size_t)json_integer_value(json_object_get(j, "bytes_out")) < frames + 400);
    json_decref(j);
    /* A 101 must say Connection: upgrade (RFC 9110 7.8); one that does not is no switch the
     * client could follow: 502, and nothing of what came after it. */
    c = conn_open(gslbd.port);
    conn_send(c, "GET /ws-bare HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "\r\n");
    struct resp r;
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 502);
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);
    /* In HTTP/1.0 an Upgrade is ignored (RFC 9110 7.8): a plain request, without it. */
    c = conn_open(gslbd.port);
    conn_send(c,
              "GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_null(resp_header(&r, "upgrade"));
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);
}

/* The value of the counter <name> (no labels) on gslbd <d>'s /metrics. */
/* The value of series <name> (name and labels) of <d>'s /metrics, or 0 when it has none. */
static uint64_t series_value_of(const struct proc *d, const char *name, bool *present)
{
    struct resp r;
    char want[256];
    assert_int_equal(request(d->metrics_port,
                             "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r),
                     200);
    snprintf(want, sizeof(want), "\n%s ", name);
    const char *at = strstr(r.body, want);
    uint64_t value = at ? strtoull(at + strlen(want), NULL, 10) : 0;
    *present = at != NULL;
    resp_free(&r);
    return value;
}

static uint64_t counter_value_of(const struct proc *d, const char *name)
{
    bool present;
    uint64_t value = series_value_of(d, name, &present);
    if (!present)
        fail_msg("no %s in /metrics", name);
    return value;
}

/* The same on the main gslbd. */
static uint64_t counter_value(const char *name)
{
    return counter_value_of(&gslbd, name);
}

/* The counter <name> of <d> once it reaches <want>, or as it is after <limit_ms>: a worker counts
 * what a system call did after the call, so a client may have the bytes a moment before the
 * count has them (seen on a loaded machine: a splice's bytes read, then a count short of them). */
static uint64_t counter_reaching(const struct proc *d, const char *name, uint64_t want,
                                 int limit_ms)
{
    bool present; /* a series may come with its first count */
    uint64_t value = series_value_of(d, name, &present);
    for (int64_t end = now_ms() + limit_ms; value < want && now_ms() < end;) {
        sleep_ms(20);
        value = series_value_of(d, name, &present);
    }
    return value;
}

/* A WebSocket client that sends and never reads what comes back is dropped once it has taken
 * nothing for keepalive-timeout (2 s here): the tunnel does not hold the connection. */
static void a_tunnel_client_that_stops_reading_is_dropped(void **state)
{
    (void)state;
    struct conn *c = websocket_open(gslbd.port);
    uint64_t slow = counter_value("gslb_slow_clients_dropped_total");
    /* Echoed back and never read, until every buffer on the way is full (bounded: 64 MB). */
    static char block[65536];
    memset(block, 'w', sizeof(block));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < 1024 && send(c->fd, block, sizeof(block), MSG_NOSIGNAL) > 0; i++)
        sleep_ms(i < 16 ? 0 : 1);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
    sleep_ms(4000);
    assert_true(conn_closed(c)); /* what was echoed, then the end (5 s receive timeout) */
    conn_close(c);
    assert_int_equal(counter_value("gslb_slow_clients_dropped_total"), slow + 1);
}

/* A client that sends its last bytes and half-closes gets all of the origin's answer to them:
 * its end is passed on once they have gone out, and the other way stays open until the origin
 * ends too (a WebSocket close frame and its answer). Until 2026-12-07 the origin connection was
 * freed at the client's end, with what was still queued for it. */
static void a_tunnel_passes_each_end_on_after_the_bytes_before_it(void **state)
{
    (void)state;
    /* The origin reads nothing for 500 ms: bytes wait in gslbd when the client's end comes. */
    struct conn *c = websocket_open_at(gslbd.port, "/ws-slow");
    static char block[1 << 20];
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (char)('a' + i % 23);
    conn_write(c, block, sizeof(block));
    assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
    size_t got = 0;
    while (got < sizeof(block) && (c->len > 0 || conn_fill(c))) {
        size_t take = c->len < sizeof(block) - got ? c->len : sizeof(block) - got;
        assert_memory_equal(c->buf, block + got, take);
        conn_consume(c, take);
        got += take;
    }
    assert_int_equal(got, sizeof(block)); /* every byte echoed, */
    assert_true(conn_closed(c));          /* then the origin's end */
    conn_close(c);
}

/* A tunnel with no byte either way for tunnel-timeout is closed; one with traffic is not. */
static void closes_a_tunnel_idle_for_the_tunnel_timeout(void **state)
{
    (void)state;
    const char *extra[] = {"--tunnel-timeout", "1s", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    struct conn *busy = websocket_open(d.port), *idle = websocket_open(d.port);
    int64_t start = now_ms();
    for (int i = 0; i < 6; i++) { /* a byte each way every 300 ms, for 1.8 s */
        sleep_ms(300);
        conn_write(busy, "x", 1);
        assert_true(busy->len > 0 || conn_fill(busy));
        conn_consume(busy, busy->len);
    }
    assert_true(conn_closed(idle)); /* already, or within the 5 s receive timeout */
    assert_true(now_ms() - start < 4000);
    conn_write(busy, "y", 1); /* still open */
    assert_true(conn_fill(busy));
    assert_int_equal(busy->buf[0], 'y');
    conn_close(busy);
    conn_close(idle);
    gslbd_stop(&d);
}

/* ---- failures ---- */

static void fails_over_to_the_next_region_when_an_origin_is_unreachable(void **state)
{
    (void)state;
    int status;
    char *body = get_from("81.2.69.142", "dead.test", "/", &status);
    assert_int_equal(status, 200);
    assert_string_equal(body, "us-east\n");
    free(body);
}

static void retries_idempotent_requests_only(void **state)
{
    (void)state;
    int status, ok = 0, bad = 0;
    for (int i = 0; i < 4; i++) { /* eu-bad resets every connection; GET goes on to eu-west */
        char *body = get_from("81.2.69.142", "retry.test", "/", &status);
        assert_int_equal(status, 200);
        assert_string_equal(body, "eu-west\n");
        free(body);
    }
    for (int i = 0; i < 4; i++) {
        struct resp r;
        status = request(gslbd.port,
                         "POST / HTTP/1.1\r\nHost: retry.test\r\nContent-Length: 0\r\n"
                         "X-Forwarded-For: 81.2.69.142\r\n\r\n",
                         &r);
        ok += status == 200;
        bad += status == 502;
        resp_free(&r);
    }
    assert_int_equal(ok + bad, 4);
    assert_true(bad >= 1); /* a POST the origin dropped is not sent again */
}

/* A pooled connection the origin drops after reading a POST: the origin may have acted on it,
 * and its body is gone, so it must not be sent anywhere else. */
static void never_replays_a_post_dropped_on_a_pooled_connection(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "GET / HTTP/1.1\r\nHost: once.test\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(r.body, "eu-once\n"); /* that origin connection is now pooled */
    resp_free(&r);
    conn_send(c, "POST /echo HTTP/1.1\r\nHost: once.test\r\nX-Forwarded-For: 81.2.69.142\r\n"
                 "Content-Length: 11\r\n\r\nhello=world");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 502); /* not us-east, and not a hang */
    resp_free(&r);
    conn_close(c);
    /* A GET in the same situation is idempotent: it goes to the same origin again, on a new
     * connection (a pooled one closed under us says nothing of the origin), not to the next
     * region, and it is no failure of the origin's (a single origin gave 502 until 2026-12-07). */
    char failures[160];
    snprintf(failures, sizeof(failures),
             "gslb_origin_failures_total{region=\"eu-west\",origin=\"127.0.0.1:%d\"}",
             eu_once.port);
    bool present;
    uint64_t failed = series_value_of(&gslbd, failures, &present);
    c = conn_open(gslbd.port);
    for (int i = 0; i < 3; i++) {
        conn_send(c, "GET / HTTP/1.1\r\nHost: once.test\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n");
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "eu-once\n");
        assert_string_equal(resp_header(&r, "x-req"), "1"); /* each on a new connection */
        resp_free(&r);
    }
    /* So does an idempotent request with a body small enough to be kept (64 KiB), whole or with
     * its rest still to come: what was sent goes again, the rest follows. Until 2026-12-07 any
     * body made it a 502. */
    conn_send(c, "PUT /echo HTTP/1.1\r\nHost: once.test\r\nX-Forwarded-For: 81.2.69.142\r\n"
                 "Content-Length: 11\r\n\r\nhello=world");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(strncmp(r.body, "11 ", 3), 0);
    assert_string_equal(resp_header(&r, "x-req"), "1");
    resp_free(&r);
    conn_send(c, "PUT /echo HTTP/1.1\r\nHost: once.test\r\nX-Forwarded-For: 81.2.69.142\r\n"
                 "X-Once: head\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    sleep_ms(200); /* the pooled connection has failed, the new one has the first chunk */
    conn_send(c, "6\r\n=world\r\n0\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(strncmp(r.body, "11 ", 3), 0);
    assert_string_equal(resp_header(&r, "x-req"), "1");
    resp_free(&r);
    /* A larger one is not kept: the origin dropped it, the client sent it, 502. */
    static char big[70000 + 512];
    int n = snprintf(big, sizeof(big),
                     "PUT /echo HTTP/1.1\r\nHost: once.test\r\nX-Forwarded-For: 81.2.69.142\r\n"
                     "Content-Length: 70000\r\n\r\n");
    memset(big + n, 'b', 70000);
    conn_write(c, big, (size_t)n + 70000);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 502);
    resp_free(&r);
    conn_close(c);
    /* The stale retries were no failures; the 502 is one, as the POST's was. */
    assert_int_equal(series_value_of(&gslbd, failures, &present), failed + 1);

    /* Each origin's stale pooled connection gets its new one: eu-stale's pooled one and then its
     * new one fail (a try, a failure), and eu-once's pooled one, stale too, is no try, so the
     * request ends there on a new connection. Until 2026-12-07 only the first origin's stale
     * connection was, and this was a 502 (found by a differential test). */
    for (int i = 0; i < 2; i++) { /* round robin: one pooled connection each */
        assert_int_equal(request(gslbd.port,
                                 "GET / HTTP/1.1\r\nHost: stale.test\r\n"
                                 "X-Forwarded-For: 81.2.69.142\r\n\r\n",
                                 &r),
                         200);
        assert_string_equal(r.body, i == 0 ? "eu-stale\n" : "eu-once\n");
        resp_free(&r);
    }
    assert_int_equal(
        request(gslbd.port,
                "GET / HTTP/1.1\r\nHost: stale.test\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n", &r),
        200);
    assert_string_equal(r.body, "eu-once\n");
    assert_string_equal(resp_header(&r, "x-req"), "1");
    resp_free(&r);
}

static void answers_503_502_and_504_for_each_kind_of_failure(void **state)
{
    (void)state;
    int status;
    free(get_from("81.2.69.142", "down.test", "/", &status));
    assert_int_equal(status, 503); /* the only origin is disabled */
    free(get_from("81.2.69.142", "gone.test", "/", &status));
    assert_int_equal(status, 502); /* nothing listens */
    int64_t start = now_ms();
    free(get_from("81.2.69.142", "a", "/slow/4000?timed-out", &status));
    assert_int_equal(status, 504); /* response-header-timeout 1.5 s */
    assert_true(now_ms() - start < 3500);
    /* The log has the wait for the head that never came. */
    json_t *j = access_log_entry("/slow/4000?timed-out");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 504);
    double upstream_ms = json_real_value(json_object_get(j, "upstream_ms"));
    if (upstream_ms < 1400 || upstream_ms > 3500)
        fail_msg("upstream_ms %.3f for a 504 after 1.5 s", upstream_ms);
    json_decref(j);
}

/* gslbd's own 502, 503 and 504 (and its OPTIONS answer) leave a keep-alive connection open, also
 * for thousands of pipelined requests answered in one read; one with a body left unread closes. */
static void keeps_the_connection_open_after_its_own_answers(void **state)
{
    (void)state;
    const char *asks[] = {
        "GET / HTTP/1.1\r\nHost: down.test\r\n\r\n", "GET / HTTP/1.1\r\nHost: gone.test\r\n\r\n",
        "GET /garbled HTTP/1.1\r\nHost: a\r\n\r\n", "GET /slow/4000 HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n"};
    const int want[] = {503, 502, 502, 504, 200};
    const char *get = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n";
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        conn_send(c, asks[i]);
        assert_true(conn_response(c, &r, false));
        if (r.status != want[i] || resp_header(&r, "connection"))
            fail_msg("ask %zu: status %d (expected %d), Connection: %s", i, r.status, want[i],
                     resp_header(&r, "connection") ? resp_header(&r, "connection") : "none");
        assert_date_is_now(resp_header(&r, "date"));
        resp_free(&r);
        conn_send(c, get);
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "eu-west\n");
        resp_free(&r);
    }
    enum { PIPELINED = 2000 };
    size_t one = strlen(asks[0]);
    char *many = malloc(one * PIPELINED + 1);
    for (size_t i = 0; i < PIPELINED; i++)
        memcpy(many + i * one, asks[0], one);
    many[one * PIPELINED] = '\0';
    conn_send(c, many);
    free(many);
    for (int i = 0; i < PIPELINED; i++) {
        if (!conn_response(c, &r, false) || r.status != 503)
            fail_msg("pipelined request %d: no 503", i);
        resp_free(&r);
    }
    conn_send(c, get);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    resp_free(&r);
    conn_send(c, "POST / HTTP/1.1\r\nHost: down.test\r\nContent-Length: 3\r\n\r\nabc");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 503);
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);
}

/* A client that leaves in the middle of a download leaves response bytes queued for it; its
 * connection's buffers are reused for the next client (one worker), which must get its own
 * response and nothing of the other's. */
static void a_client_that_leaves_mid_response_leaves_nothing_for_the_next(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        struct conn *a = conn_open(gslbd.port);
        conn_send(a, "GET /size/50000000 HTTP/1.1\r\nHost: a\r\n\r\n");
        sleep_ms(300); /* both sockets' buffers fill, the proxy queues the rest */
        conn_close(a);
        sleep_ms(100);
        struct resp r;
        struct conn *b = conn_open(gslbd.port);
        conn_send(b, "GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n");
        while (b->len < 12 && conn_fill(b))
            ;
        assert_true(b->len >= 12 && memcmp(b->buf, "HTTP/1.1 201", 12) == 0); /* first bytes */
        assert_true(conn_response(b, &r, false));
        assert_int_equal(r.status, 201);
        resp_free(&r);
        conn_close(b);
    }
}

/* Whether the <len> bytes at <body> are the origin's /counted pattern. */
static bool counted_pattern(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (body[i] != (char)('a' + i % 23))
            return false;
    }
    return true;
}

static void cuts_the_client_when_the_origin_cuts_a_response(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "GET /cut/200000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(conn_response(c, &r, false)); /* never a complete-looking response */
    assert_int_equal(r.status, 200);
    assert_true(r.body_len < 200000);
    resp_free(&r);
    conn_close(c);

    c = conn_open(gslbd.port);
    int64_t start = now_ms();
    conn_send(c, "GET /stall HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(conn_response(c, &r, false)); /* origin-read-timeout 1.5 s */
    assert_true(now_ms() - start < 4000);
    resp_free(&r);
    conn_close(c);

    /* The same with bodies large enough to go through a pipe (bodypipe.c). */
    uint64_t spliced = counter_value("gslb_spliced_bytes_total");
    c = conn_open(gslbd.port);
    conn_send(c, "GET /cut/2000000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_true(r.body_len < 2000000);
    resp_free(&r);
    conn_close(c);
    c = conn_open(gslbd.port);
    start = now_ms();
    conn_send(c, "GET /stall/2000000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(conn_response(c, &r, false));
    assert_true(r.body_len >= 16384 && r.body_len < 2000000);
    assert_true(now_ms() - start < 4000);
    resp_free(&r);
    conn_close(c);
    assert_true(counter_value("gslb_spliced_bytes_total") > spliced);
}

/* A large Content-Length body goes origin socket -> pipe -> client socket (splice): every byte
 * arrives in order, the client and origin connections carry on with the next request, and the
 * spliced bytes are counted. */
static void large_bodies_are_spliced_intact_and_connections_carry_on(void **state)
{
    (void)state;
    uint64_t before = counter_value("gslb_spliced_bytes_total");
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    char conn_id[16];
    conn_send(c, "GET /counted/3000000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 3000000);
    assert_true(counted_pattern(r.body, r.body_len));
    snprintf(conn_id, sizeof(conn_id), "%s", resp_header(&r, "x-conn"));
    resp_free(&r);
    conn_send(c, "GET /counted/100000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.body_len, 100000);
    assert_true(counted_pattern(r.body, r.body_len));
    assert_string_equal(resp_header(&r, "x-conn"), conn_id); /* the origin connection, pooled */
    resp_free(&r);
    conn_close(c);
    /* all but what came in the first read with each head (at most 16 KiB) */
    uint64_t spliced =
        counter_reaching(&gslbd, "gslb_spliced_bytes_total", before + 3100000 - 2 * 16384, 2000) -
        before;
    if (spliced < 3100000 - 2 * 16384 || spliced > 3100000)
        fail_msg("%llu bytes spliced", (unsigned long long)spliced);
}

/* A client that goes away while a body is being spliced to it costs nothing but its request. */
static void a_client_leaving_mid_splice_leaves_the_proxy_serving(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        struct conn *c = conn_open(gslbd.port);
        conn_send(c, "GET /counted/20000000 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_true(conn_fill(c)); /* the head and the start of the body */
        conn_close(c);
    }
    struct resp r;
    assert_int_equal(request(gslbd.port, "GET /counted/200000 HTTP/1.1\r\nHost: a\r\n\r\n", &r),
                     200);
    assert_int_equal(r.body_len, 200000);
    assert_true(counted_pattern(r.body, r.body_len));
    resp_free(&r);
}

/* Asks for <path> (50 MB) and reads nothing for 4 s, then all there is; returns the bytes. */
static uint64_t bytes_before_the_drop(const char *path)
{
    char raw[128];
    struct conn *c = conn_open(gslbd.port);
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path);
    conn_send(c, raw);
    sleep_ms(4000); /* far less than 50 MB fits in the sockets' buffers meanwhile */
    uint64_t got = 0;
    while (conn_fill(c)) {
        got += c->len;
        conn_consume(c, c->len);
    }
    conn_close(c);
    return got;
}

/* A client that stops reading is dropped once its socket has taken nothing for
 * keepalive-timeout (2 s here), whether the body is spliced or buffered, and the origin is not
 * blamed. */
static void a_client_that_stops_reading_is_dropped(void **state)
{
    (void)state;
    uint64_t errors = counter_value("gslb_upstream_errors_total");
    uint64_t spliced = counter_value("gslb_spliced_bytes_total");
    uint64_t slow = counter_value("gslb_slow_clients_dropped_total");
    uint64_t got = bytes_before_the_drop("/counted/50000000");
    assert_true(got > 16384 && got < 50000000);
    assert_true(counter_value("gslb_spliced_bytes_total") > spliced);
    spliced = counter_value("gslb_spliced_bytes_total");
    got = bytes_before_the_drop("/chunked/50000000"); /* chunked: the buffered path */
    assert_true(got > 16384 && got < 50000000);
    assert_int_equal(counter_value("gslb_spliced_bytes_total"), spliced);
    assert_int_equal(counter_value("gslb_upstream_errors_total"), errors);
    assert_int_equal(counter_value("gslb_slow_clients_dropped_total"), slow + 2);
}

/* ---- limits and timeouts ---- */

/* Writes a request head of exactly <size> bytes to <raw>: GET, <fields> and the padding, in an
 * X-Pad value's leading whitespace or, with no fields (HTTP/1.0), in the target. */
static void head_of_size(char *raw, int size, const char *fields)
{
    bool in_target = *fields == '\0';
    int fixed = (int)(strlen("GET / HTTP/1.1\r\n") + strlen(fields) + strlen("\r\n")) +
                (in_target ? 0 : (int)strlen("X-Pad:v\r\n"));
    int pad = size - fixed, n = sprintf(raw, "GET /");
    if (in_target) {
        memset(raw + n, 'u', (size_t)pad);
        n += pad;
    }
    n += sprintf(raw + n, " HTTP/1.%d\r\n%s", in_target ? 0 : 1, fields);
    if (!in_target) {
        n += sprintf(raw + n, "X-Pad:");
        memset(raw + n, ' ', (size_t)pad);
        n += pad;
        n += sprintf(raw + n, "v\r\n");
    }
    strcpy(raw + n, "\r\n");
    assert_int_equal(strlen(raw), (size_t)size);
}

static void enforces_header_limits_with_431_and_414(void **state)
{
    (void)state;
    char *raw = malloc(40000);
    struct resp r;
    int n = sprintf(raw, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(raw + n, 'b', 20000);
    strcpy(raw + n + 20000, "\r\n\r\n");
    assert_int_equal(request(gslbd.port, raw, &r), 431);
    resp_free(&r);
    /* The same refusal of a HEAD has no body (RFC 9110 9.3.2): the method is known first. */
    n = sprintf(raw, "HEAD / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(raw + n, 'b', 20000);
    strcpy(raw + n + 20000, "\r\n\r\n");
    struct conn *c = conn_open(gslbd.port);
    conn_send(c, raw);
    assert_true(conn_response(c, &r, true));
    assert_int_equal(r.status, 431);
    resp_free(&r);
    char after[64];
    assert_int_equal(c->len, 0);
    assert_int_equal(recv(c->fd, after, sizeof(after), 0), 0);
    conn_close(c);
    n = sprintf(raw, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 60; i++)
        n += sprintf(raw + n, "X-H%d: v\r\n", i);
    strcpy(raw + n, "\r\n");
    assert_int_equal(request(gslbd.port, raw, &r), 431);
    resp_free(&r);
    /* A target that alone is over the head limit (16 KiB here) is too long a URI, RFC 9112 3. */
    n = sprintf(raw, "GET /");
    memset(raw + n, 'u', 20000);
    strcpy(raw + n + 20000, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(request(gslbd.port, raw, &r), 414);
    assert_non_null(strstr(r.body, "too long"));
    resp_free(&r);
    /* A shorter one is forwarded; headers that take the head over the limit are a 431. */
    n = sprintf(raw, "GET /");
    memset(raw + n, 'u', 3000);
    n += 3000;
    n += sprintf(raw + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(request(gslbd.port, raw, &r), 200);
    resp_free(&r);
    n -= 2;
    n += sprintf(raw + n, "X-Big: ");
    memset(raw + n, 'b', 14000);
    strcpy(raw + n + 14000, "\r\n\r\n");
    assert_int_equal(request(gslbd.port, raw, &r), 431);
    resp_free(&r);
    /* The limit counts the head's bytes as sent, whitespace around values and line ends too,
     * the last ones included: until 2026-12-07 a value padded with 16,360 spaces passed a 16 KiB
     * limit, and then a head 4 bytes over it. Exactly 16384 bytes pass, one more is a 431 (a 414
     * with no header field), with a body or not. */
    static const char *const fields[] = {"Host: a\r\n", "Host: a\r\nContent-Length: 1\r\n", ""};
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (int size = 16384; size <= 16385; size++) {
            head_of_size(raw, size, fields[f]);
            if (strstr(fields[f], "Content-Length"))
                strcat(raw, "b");
            /* 0: forwarded (a 200, or the test origin's 502 for a target over its 8 KiB) */
            int want = size == 16384 ? 0 : *fields[f] ? 431 : 414;
            int got = request(gslbd.port, raw, &r);
            if (want ? got != want : got == 431 || got == 414)
                fail_msg("a head of %d bytes with %s: %d", size, *fields[f] ? fields[f] : "none",
                         got);
            resp_free(&r);
        }
    }
    free(raw);
}

static void times_out_slow_heads_and_idle_keepalives(void **state)
{
    (void)state;
    struct resp r;
    struct conn *c = conn_open(gslbd.port);
    int64_t start = now_ms();
    conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\n"); /* and never the blank line */
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 408);
    assert_true(now_ms() - start >= 900 && now_ms() - start < 3000);
    assert_true(conn_closed(c));
    resp_free(&r);
    conn_close(c);

    c = conn_open(gslbd.port);
    conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    resp_free(&r);
    start = now_ms();
    assert_true(conn_closed(c)); /* keepalive-timeout 2 s */
    assert_true(now_ms() - start >= 1500 && now_ms() - start < 4000);
    conn_close(c);
}

/* 300 idle clients, half of them silent (handed over by the kernel after a second) and half
 * with an unfinished head, all held open (a client-header-timeout of 20 s): new clients are
 * served before and while every one of them is in. */
static void idle_connections_never_block_new_clients(void **state)
{
    (void)state;
    const char *extra[] = {"--client-header-timeout", "20s", NULL};
    struct proc d = gslbd_start(extra);
    const char get[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n";
    struct conn *idle[300];
    struct resp r;
    uint64_t active = counter_value_of(&d, "gslb_connections_active");
    for (int i = 0; i < 300; i++) {
        idle[i] = conn_open(d.port);
        if (i % 2)
            conn_send(idle[i], "GET / HTTP/1.1\r\n");
    }
    assert_int_equal(request(d.port, get, &r), 200);
    assert_string_equal(r.body, "us-east\n");
    resp_free(&r);
    /* The wait ends as soon as all are in; a loaded machine may take more than a second. */
    for (int64_t end = now_ms() + 8000;
         counter_value_of(&d, "gslb_connections_active") < active + 300 && now_ms() < end;)
        sleep_ms(50);
    assert_true(counter_value_of(&d, "gslb_connections_active") >= active + 300);
    assert_int_equal(request(d.port, get, &r), 200);
    assert_string_equal(r.body, "us-east\n");
    resp_free(&r);
    for (int i = 0; i < 300; i++)
        conn_close(idle[i]);
    gslbd_stop(&d);
}

/* ---- streaming ---- */

/* The number after <prefix> on the line of /proc/<pid>/<file> that starts with it, or -1. */
static long proc_number(pid_t pid, const char *file, const char *prefix)
{
    char path[64], line[256];
    long value = -1;
    size_t len = strlen(prefix);
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, prefix, len) == 0)
            value = strtol(line + len, NULL, 10);
    }
    if (f)
        fclose(f);
    return value;
}

static long rss_kib(pid_t pid)
{
    return proc_number(pid, "status", "VmRSS:");
}

static uint64_t stream_bytes(void)
{
    const char *env = getenv("GSLB_STREAM_BYTES");
    if (env && *env)
        return strtoull(env, NULL, 10);
    return SANITIZED ? (256ULL << 20) : (1ULL << 30);
}

static void streams_a_large_download_with_bounded_memory(void **state)
{
    (void)state;
    uint64_t total = stream_bytes();
    char raw[256];
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    long base = rss_kib(gslbd.pid), peak = base;
    snprintf(raw, sizeof(raw), "GET /size/%llu HTTP/1.1\r\nHost: a\r\n\r\n",
             (unsigned long long)total);
    conn_send(c, raw);
    /* Read the head, then the body in pieces, sampling the proxy's memory as we go. */
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
        assert_true(conn_fill(c));
    conn_consume(c, (size_t)(end - c->buf) + 4);
    uint64_t got = 0;
    while (got < total) {
        uint64_t n =
            conn_read_bytes(c, total - got < (16u << 20) ? total - got : (16u << 20), NULL);
        if (n == 0)
            break;
        got += n;
        long now = rss_kib(gslbd.pid);
        peak = now > peak ? now : peak;
    }
    assert_true(got == total);
    (void)r;
    conn_close(c);
    printf("# download %llu MiB: proxy RSS %ld KiB -> peak %ld KiB\n",
           (unsigned long long)(total >> 20), base, peak);
    if (!SANITIZED)
        assert_true(peak - base < 32 * 1024);
}

static void streams_a_large_upload_with_bounded_memory(void **state)
{
    (void)state;
    uint64_t total = stream_bytes();
    char raw[256], *block = malloc(1 << 16);
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    memset(block, 'u', 1 << 16);
    long base = rss_kib(gslbd.pid), peak = base;
    snprintf(raw, sizeof(raw), "PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %llu\r\n\r\n",
             (unsigned long long)total);
    conn_send(c, raw);
    for (uint64_t sent = 0; sent < total; sent += 1 << 16) {
        conn_write(c, block, 1 << 16);
        if ((sent & ((16u << 20) - 1)) == 0) {
            long now = rss_kib(gslbd.pid);
            peak = now > peak ? now : peak;
        }
    }
    assert_true(conn_response(c, &r, false));
    char expect[64];
    snprintf(expect, sizeof(expect), "%llu %u\n", (unsigned long long)total,
             (unsigned)((total * 'u') & 0xffffffffu));
    assert_string_equal(r.body, expect);
    resp_free(&r);
    conn_close(c);
    free(block);
    printf("# upload %llu MiB: proxy RSS %ld KiB -> peak %ld KiB\n",
           (unsigned long long)(total >> 20), base, peak);
    if (!SANITIZED)
        assert_true(peak - base < 32 * 1024);
}

static void relays_chunked_and_close_delimited_bodies(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "GET /chunked/300000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(resp_header(&r, "transfer-encoding"), "chunked");
    assert_int_equal(r.body_len, 300000);
    resp_free(&r);
    conn_send(c, "GET /eof/70000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false)); /* re-framed as chunked for a 1.1 client */
    assert_string_equal(resp_header(&r, "transfer-encoding"), "chunked");
    assert_int_equal(r.body_len, 70000);
    resp_free(&r);
    conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); /* and the connection lives on */
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* A close-delimited body ended by a reset is cut for the client (no last chunk), not passed
     * on as whole. */
    conn_send(c, "GET /eof-reset/5000 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5000);
    resp_free(&r);
    conn_close(c);
}

/* Trailer fields of chunked messages go on both ways (RFC 9110 6.5), but none that frames,
 * routes, forwards or is hop-by-hop; one whose name is no token (here a space before its colon,
 * which llhttp 8 lets through) refuses the request (400) or cuts the response before its last
 * chunk. */
static void relays_trailer_fields_both_ways(void **state)
{
    (void)state;
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "POST /trailers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n0\r\nX-Sum: 42\r\nContent-Length: 5\r\n"
                 "X-Forwarded-For: 6.6.6.6\r\nx_forwarded_for: 6.6.6.6\r\nTE: trailers\r\n"
                 "X-Note: a b\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "X-Sum: 42\nX-Note: a b\n"); /* what the origin got */
    assert_string_equal(r.trailers, "X-Checksum: 5eb63bbbe01eeed0\r\n");
    assert_null(resp_header(&r, "trailer")); /* hop-by-hop, as RFC 2616 listed it */
    resp_free(&r);
    conn_send(c, "GET /trailers HTTP/1.1\r\nHost: a\r\n\r\n"); /* the connection goes on */
    assert_true(conn_response(c, &r, false));
    assert_string_equal(r.body, "none\n");
    assert_string_equal(r.trailers, "X-Checksum: 5eb63bbbe01eeed0\r\n");
    resp_free(&r);
    conn_send(c, "GET /trailers-bad HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(conn_response(c, &r, false)); /* no last chunk: visibly incomplete */
    assert_string_equal(r.body, "none\n");
    resp_free(&r);
    conn_close(c);

    /* An HTTP/1.0 client gets the body alone, ended by the close. */
    assert_int_equal(request(gslbd.port, "GET /trailers HTTP/1.0\r\nHost: a\r\n\r\n", &r), 200);
    assert_string_equal(r.body, "none\n");
    resp_free(&r);

    c = conn_open(gslbd.port);
    conn_send(c, "POST /trailers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n0\r\nX : 1\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 400); /* llhttp's strict mode refuses the name before we see it */
    assert_true(conn_closed(c));
    resp_free(&r);
    conn_close(c);

    /* A Connection: close among the trailer fields, which llhttp heeds, ends the connection
     * after the answer, which says so (since 2026-12-07); what follows gets none (it got a 400
     * for "Data after Connection: close", an answer to no request: found by the fuzzer). */
    c = conn_open(gslbd.port);
    conn_send(c, "POST /trailers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n0\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "none\n"); /* the origin got no trailer fields */
    assert_string_equal(resp_header(&r, "connection"), "close");
    assert_int_equal(c->len, 0);
    char byte;
    assert_int_equal(recv(c->fd, &byte, 1, 0), 0);
    resp_free(&r);
    conn_close(c);
}

/* ---- observability and live changes ---- */

static void exposes_prometheus_metrics(void **state)
{
    (void)state;
    struct resp r;
    char raw[128];
    snprintf(raw, sizeof(raw), "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_int_equal(request(gslbd.metrics_port, raw, &r), 200);
    assert_non_null(
        strstr(r.body, "gslb_requests_total{service=\"www\",region=\"eu-west\",code=\"2xx\"}"));
    assert_non_null(strstr(r.body, "gslb_upstream_latency_seconds_bucket{service=\"www\""));
    assert_non_null(strstr(r.body, "gslb_connections_active "));
    assert_non_null(strstr(r.body, "gslb_retries_total "));
    assert_non_null(strstr(r.body, "gslb_geo_lookups_total "));
    const char *name = "\ngslb_decision_seconds_total ", *decided = strstr(r.body, name);
    assert_non_null(decided);
    assert_true(strtod(decided + strlen(name), NULL) > 0); /* requests were routed before */
    resp_free(&r);
}

/* Each origin's series: the requests it answered by status class (gslbd's own 502 after its
 * failure included), its failed attempts, and its latency (sum and count). */
static void counts_requests_failures_and_latency_per_origin(void **state)
{
    (void)state;
    const char *extra[] = {"--passive-failures", "0", NULL}; /* nothing ejected */
    struct proc d = gslbd_start(extra);
    char ok[160], latency[160], failed[160], failures[160], eu_failures[160];
    snprintf(ok, sizeof(ok),
             "gslb_origin_requests_total{region=\"eu-west\",origin=\"127.0.0.1:%d\",code=\"2xx\"}",
             eu.port);
    snprintf(latency, sizeof(latency),
             "gslb_origin_latency_seconds_count{region=\"eu-west\",origin=\"127.0.0.1:%d\"}",
             eu.port);
    snprintf(eu_failures, sizeof(eu_failures),
             "gslb_origin_failures_total{region=\"eu-west\",origin=\"127.0.0.1:%d\"}", eu.port);
    snprintf(failed, sizeof(failed), "%s",
             "gslb_origin_requests_total{region=\"eu-west\",origin=\"127.0.0.1:1\",code=\"5xx\"}");
    snprintf(failures, sizeof(failures), "%s",
             "gslb_origin_failures_total{region=\"eu-west\",origin=\"127.0.0.1:1\"}");
    struct resp r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            request(d.port, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n",
                    &r),
            200);
        assert_string_equal(r.body, "eu-west\n");
        resp_free(&r);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: gone.test\r\n\r\n", &r), 502);
        resp_free(&r);
    }
    /* Counted as each request ends, a moment after its answer may have reached us. */
    assert_int_equal(counter_reaching(&d, ok, 3, 2000), 3);
    assert_int_equal(counter_reaching(&d, latency, 3, 2000), 3);
    assert_int_equal(counter_reaching(&d, failed, 2, 2000), 2);
    assert_int_equal(counter_value_of(&d, failures), 2); /* one attempt each: its only origin */
    bool present;
    assert_int_equal(series_value_of(&d, eu_failures, &present), 0);
    assert_false(present); /* only series with something to say are written */

    /* A client that leaves before the origin answers is a 499 of the service's, not the
     * origin's doing: its series has no 4xx (it had until 2026-12-07). */
    struct conn *c = conn_open(d.port);
    conn_send(c, "GET /slow/300 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n");
    sleep_ms(50);
    conn_close(c);
    assert_int_equal(
        counter_reaching(&d, "gslb_requests_total{service=\"www\",region=\"eu-west\",code=\"4xx\"}",
                         1, 2000),
        1);
    char client_gone[160];
    snprintf(client_gone, sizeof(client_gone),
             "gslb_origin_requests_total{region=\"eu-west\",origin=\"127.0.0.1:%d\",code=\"4xx\"}",
             eu.port);
    assert_int_equal(series_value_of(&d, client_gone, &present), 0);
    assert_false(present);
    gslbd_stop(&d);
}

static void writes_one_access_log_line_per_request(void **state)
{
    (void)state;
    struct resp r;
    assert_int_equal(request(gslbd.port,
                             "GET /slow/150?logged HTTP/1.1\r\nHost: dead.test\r\n"
                             "X-Forwarded-For: 81.2.69.142\r\nUser-Agent: t\"\\\xc3\xa9\tz\r\n\r\n",
                             &r),
                     200);
    resp_free(&r);
    json_t *j = access_log_entry("/slow/150?logged");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "81.2.69.142");
    assert_string_equal(json_string_value(json_object_get(j, "country")), "GB");
    assert_string_equal(json_string_value(json_object_get(j, "service")), "dead");
    assert_string_equal(json_string_value(json_object_get(j, "region")), "us-east");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "referer")), ""); /* none sent */
    /* Escaped, bytes outside ASCII one by one (\u00c3\u00a9: the request is not known to be
     * UTF-8); jansson reads them back as the characters U+00C3 U+00A9. */
    assert_string_equal(json_string_value(json_object_get(j, "user_agent")),
                        "t\"\\\xc3\x83\xc2\xa9\tz");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "retries")), 1);
    assert_true(json_integer_value(json_object_get(j, "bytes_out")) > 0);
    /* The origin took 150 ms to answer; the whole request took at least that. */
    double upstream_ms = json_real_value(json_object_get(j, "upstream_ms"));
    double duration_ms = json_real_value(json_object_get(j, "duration_ms"));
    if (upstream_ms < 145 || upstream_ms > 5000 || duration_ms < upstream_ms)
        fail_msg("upstream_ms %.3f, duration_ms %.3f", upstream_ms, duration_ms);
    json_decref(j);

    /* A request refused before its method was known: no method (llhttp's 0 read "DELETE"
     * until 2026-12-07), and the peer as the client (it was "?"). */
    struct conn *c = conn_open_from(gslbd.port, "127.0.0.3");
    conn_send(c, "\x16\x03\x01 / HTTP/1.1\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 400);
    resp_free(&r);
    conn_close(c);
    j = access_log_entry("\"peer\":\"127.0.0.3\"");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "-");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "127.0.0.3");
    json_decref(j);
}

static void applies_a_committed_topology_change_within_a_second(void **state)
{
    (void)state;
    char err[512];
    struct db *db = db_open(db_path, err, sizeof(err));
    char name[] = "eu-west";
    struct db_region r = {name, NULL, 53.35, -6.26, DB_REGION_DISABLED, DB_FORCE_AUTO};
    assert_int_equal(db_region_set(db, &r, "test", err, sizeof(err)), 0);
    int64_t start = now_ms();
    char *body = NULL;
    int status;
    do {
        free(body);
        sleep_ms(50);
        body = get_from("81.2.69.142", "a", "/", &status);
    } while (strcmp(body, "eu-west\n") == 0 && now_ms() - start < 3000);
    int64_t took = now_ms() - start;
    assert_string_equal(body, "us-east\n");
    assert_true(took < 1000);
    free(body);
    r.state = DB_REGION_ACTIVE;
    assert_int_equal(db_region_set(db, &r, "test", err, sizeof(err)), 0);
    db_close(db);
    printf("# a committed change took effect in %lld ms\n", (long long)took);
}

/* ---- separate daemons: connection and body limits, graceful shutdown ---- */

static void refuses_clients_beyond_the_connection_limit(void **state)
{
    (void)state;
    const char *extra[] = {"--max-connections", "5", NULL};
    struct proc d = gslbd_start(extra);
    struct conn *held[5];
    for (int i = 0; i < 5; i++) {
        held[i] = conn_open(d.port);
        conn_send(held[i], "GET / HTTP/1.1\r\n"); /* accepted now, not in a second */
    }
    sleep_ms(100);
    /* Refused with more than a page of request unread: still a FIN after the 503, not a reset
     * (which some clients take to destroy what they received). */
    char big[6200];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %06000d\r\n\r\n", 0);
    struct conn *c = conn_open(d.port);
    conn_send(c, big);
    struct resp r;
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 503);
    /* Its length was once one short; like gslbd's other answers since 2026-12-07. */
    assert_string_equal(r.body, "503 Service Unavailable: too many clients\n");
    assert_date_is_now(resp_header(&r, "date"));
    assert_string_equal(resp_header(&r, "cache-control"), "no-store");
    resp_free(&r);
    assert_int_equal(c->len, 0); /* nothing after it */
    char byte;
    assert_int_equal(recv(c->fd, &byte, 1, 0), 0);
    conn_close(c);
    /* Logged (it was only counted until 2026-12-07): no request read, the bytes dropped. */
    char line[2048];
    assert_true(file_line_with(d.log, "\"status\":503", line, sizeof(line), 5000));
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "-");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "127.0.0.1");
    assert_true(json_integer_value(json_object_get(j, "bytes_in")) >= 6000);
    assert_true(json_integer_value(json_object_get(j, "bytes_out")) > 100);
    json_decref(j);
    for (int i = 0; i < 5; i++)
        conn_close(held[i]);
    sleep_ms(100);
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);

    /* Idle keep-alive connections never keep a new client out: at the limit the oldest idle one
     * is closed to make room (until 2026-12-07 five idle ones made every new client a 503 for
     * keepalive-timeout; found by a differential test; nginx reuses its idle ones so too). */
    for (int i = 0; i < 5; i++) {
        held[i] = conn_open(d.port);
        conn_send(held[i], "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_true(conn_response(held[i], &r, false));
        resp_free(&r);
    }
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
    assert_true(conn_closed(held[0])); /* the oldest, closed */
    for (int i = 1; i < 5; i++) {      /* the others still serve */
        conn_send(held[i], "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_true(conn_response(held[i], &r, false));
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    assert_int_equal(counter_value_of(&d, "gslb_connections_idle_closed_total"), 1);
    for (int i = 0; i < 5; i++)
        conn_close(held[i]);
    gslbd_stop(&d);
}

/* The origin's last bytes may wait in the pipe for a client that stopped reading: the origin is
 * done then, so its read timeout must not fire (it once did, cutting the body with a 504). With
 * client-sndbuf 16k and a client receive buffer of 4 KiB, some 30 KiB fit in the sockets: of an
 * 80,000-byte body, 17,000 come first, the origin pauses (gslbd waits on it, its read timeout
 * set), the rest comes, all but what the sockets take waits in the pipe, and the client reads
 * nothing for twice origin-read-timeout. */
static void a_spliced_body_waiting_for_its_client_outlasts_the_origin_read_timeout(void **state)
{
    (void)state;
    const char *extra[] = {"--client-sndbuf",
                           "16k",
                           "--origin-read-timeout",
                           "500ms",
                           "--keepalive-timeout",
                           "10s",
                           "--log-level",
                           "debug", /* why a body was not spliced, should it not be */
                           NULL};
    struct proc d = gslbd_start(extra);
    struct conn *c = conn_open_rcvbuf(d.port, 4096);
    conn_send(c, "GET /counted/80000/17000 HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(1300); /* the origin's pause, then twice its read timeout */
    struct resp r;
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 80000);
    assert_true(counted_pattern(r.body, r.body_len));
    resp_free(&r);
    uint64_t spliced = counter_reaching(&d, "gslb_spliced_bytes_total", 80000 - 16384, 2000);
    if (spliced < 80000 - 16384)
        fail_msg("only %llu bytes spliced; see %s", (unsigned long long)spliced, d.log);
    conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); /* and the connection carries on */
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    resp_free(&r);
    conn_close(c);
    gslbd_stop(&d);
}

/* A client that pipelines requests and takes none of the answers has them queued only up to the
 * high-water mark (256 KiB): the next request waits until the client reads. Without that, its
 * 1,000 requests of 70 bytes would have gslbd hold 16 MB of answers for it. */
static void pipelined_requests_wait_while_their_client_reads_nothing(void **state)
{
    (void)state;
    static const char get[] =
        "GET /size/16000 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n";
    enum { N = 1000 };
    const char *extra[] = {"--client-sndbuf", "16k", NULL};
    struct proc d = gslbd_start(extra);
    struct conn *c = conn_open_rcvbuf(d.port, 4096);
    char *all = malloc(N * (sizeof(get) - 1));
    for (int i = 0; i < N; i++)
        memcpy(all + i * (sizeof(get) - 1), get, sizeof(get) - 1);
    conn_write(c, all, N * (sizeof(get) - 1));
    free(all);
    sleep_ms(1000);
    uint64_t answered = counter_value_of(
        &d, "gslb_requests_total{service=\"www\",region=\"eu-west\",code=\"2xx\"}");
    if (answered > 40)
        fail_msg("%llu of %d requests answered to a client that read nothing",
                 (unsigned long long)answered, N);
    for (int i = 0; i < N; i++) { /* once it reads, all come, whole and in order */
        struct resp r;
        assert_true(conn_response(c, &r, false));
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 16000);
        resp_free(&r);
    }
    conn_close(c);
    gslbd_stop(&d);
}

/* With defer-accept (the default) a client that connects and says nothing waits in the kernel,
 * not among max-connections, until it speaks or a second has passed; then it is served as any
 * other. "defer-accept no" (here applied by SIGHUP) takes silent clients at once. */
static void silent_clients_wait_in_the_kernel_until_they_speak(void **state)
{
    (void)state;
    static const char get[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    char conf[160];
    snprintf(conf, sizeof(conf), "%s/defer.conf", dir);
    file_write(conf, "max-connections 2\n");
    const char *extra[] = {"--config", conf, NULL};
    struct proc d = gslbd_start(extra);
    struct conn *silent[2] = {conn_open(d.port), conn_open(d.port)};
    sleep_ms(200);
    struct resp r;
    assert_int_equal(request(d.port, get, &r), 200); /* the silent ones do not count yet */
    resp_free(&r);
    /* The kernel hands them over at its first SYN-ACK retransmission, 1 s after they
     * connected; up to the third (7 s) is allowed, for a loaded machine. The wait watches the
     * metrics, not requests: a request's connection, while open, takes one of the two places,
     * and a silent client handed over then got the 503 (seen on a loaded machine). */
    int64_t start = now_ms();
    while (counter_value_of(&d, "gslb_connections_active") < 2 && now_ms() - start < 9000)
        sleep_ms(50);
    int status = request(d.port, get, &r);
    resp_free(&r);
    if (status != 503) { /* where the kernel has them: SYN-RECV, or queued for accept */
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "ss -tanoi '( sport = :%d or dport = :%d )' >&2", d.port,
                 d.port);
        (void)!system(cmd);
        fail_msg("silent clients not counted after %lld ms (status %d)",
                 (long long)(now_ms() - start), status);
    }
    sleep_ms(200);
    conn_send(silent[0], get);
    assert_true(conn_response(silent[0], &r, false));
    assert_int_equal(r.status, 200);
    resp_free(&r);
    conn_close(silent[0]);
    conn_close(silent[1]);

    file_write(conf, "max-connections 2\ndefer-accept no\n");
    gslbd_sighup(&d);
    sleep_ms(100); /* the workers take it when woken, just after */
    silent[0] = conn_open(d.port);
    silent[1] = conn_open(d.port);
    sleep_ms(200);
    assert_int_equal(request(d.port, get, &r), 503); /* taken at once, they count */
    resp_free(&r);
    conn_close(silent[0]);
    conn_close(silent[1]);
    gslbd_stop(&d);
}

/* Started under a soft limit of 256 open files, gslbd raises it to what max-connections 1000
 * may take with one worker (4 per connection, 1024, and 148 for the worker), within the hard
 * limit, and warns when the hard limit is below 2 per connection and the rest. The test's own
 * limit is lowered only for the start and put back by the teardown, whatever happens. */
static struct rlimit files_before;
static struct proc limited;

static int files_limit_restore(void **state)
{
    (void)state;
    setrlimit(RLIMIT_NOFILE, &files_before);
    if (limited.pid > 0)
        gslbd_stop(&limited);
    return 0;
}

static void raises_the_open_file_limit_for_max_connections(void **state)
{
    (void)state;
    struct rlimit low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &files_before), 0);
    low = files_before;
    low.rlim_cur = low.rlim_max < 256 ? low.rlim_max : 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    const char *extra[] = {"--max-connections", "1000", "--workers", "1",
                           "--metrics-listen",  "",     NULL};
    limited = gslbd_start(extra);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &files_before), 0);
    long room = 1000 * 4 + 1024 + 148, need = 1000 * 2 + 1024 + 148;
    long want = files_before.rlim_max == RLIM_INFINITY || (long)files_before.rlim_max >= room
                    ? room
                    : (long)files_before.rlim_max;
    assert_int_equal(proc_number(limited.pid, "limits", "Max open files"), want);
    char log[8192] = "";
    FILE *f = fopen(limited.log, "r");
    assert_non_null(f);
    size_t n = fread(log, 1, sizeof(log) - 1, f);
    log[n] = '\0';
    fclose(f);
    assert_true((strstr(log, "needs at least 3172 open descriptors") != NULL) == (want < need));
}

static void refuses_bodies_beyond_the_body_limit(void **state)
{
    (void)state;
    const char *extra[] = {"--max-body-size", "1000", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    struct resp r;
    assert_int_equal(
        request(d.port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", &r), 413);
    resp_free(&r);
    char raw[4096];
    int n = sprintf(raw, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += sprintf(raw + n, "258\r\n"); /* 600 bytes each */
        memset(raw + n, 'c', 600);
        n += 600;
        n += sprintf(raw + n, "\r\n");
    }
    strcpy(raw + n, "0\r\n\r\n");
    assert_int_equal(request(d.port, raw, &r), 413);
    resp_free(&r);
    /* A chunk is refused by its size, before its bytes come (they never do here): past the
     * limit a 413, past 2^63 - 1 bytes a 400, whatever the limit. */
    const char *chunked = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    snprintf(raw, sizeof(raw), "%s3e9\r\nabc", chunked);
    assert_int_equal(request(d.port, raw, &r), 413);
    resp_free(&r);
    snprintf(raw, sizeof(raw), "%s8000000000000000\r\nabc", chunked);
    assert_int_equal(request(d.port, raw, &r), 400);
    assert_non_null(strstr(r.body, "chunk size"));
    resp_free(&r);
    snprintf(raw, sizeof(raw), "%s3e8\r\n%01000d\r\n0\r\n\r\n", chunked, 0);
    assert_int_equal(request(d.port, raw, &r), 200);    /* 1000 bytes: the limit itself */
    assert_int_equal(strtoull(r.body, NULL, 10), 1000); /* /echo: the count, then a sum */
    resp_free(&r);
    assert_int_equal(
        request(d.port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", &r),
        200);
    resp_free(&r);
    gslbd_stop(&d);
}

/* Sends a byte on <c> (whose peer has half-closed) and tells whether the peer answered it with
 * a reset, i.e. has closed its socket: the error the reset leaves on ours. */
static bool conn_reset_by_peer(struct conn *c)
{
    if (send(c->fd, "x", 1, MSG_NOSIGNAL) != 1)
        return true;
    sleep_ms(100);
    int err = 0;
    socklen_t len = sizeof(err);
    assert_int_equal(getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    return err != 0;
}

/* A connection on which a 4 MiB upload, of which only the head was sent, got its 413 and then
 * the proxy's end of the connection. */
static struct conn *upload_refused(int port)
{
    struct conn *c = conn_open(port);
    struct resp r;
    conn_send(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 413);
    resp_free(&r);
    assert_true(conn_closed(c));
    return c;
}

/* A connection that ends while its client is still sending (an answer before the end of the
 * request body) ends with a lingering close: the response, a FIN, and what the client still
 * sends dropped, never a reset that would fail the client's sends or destroy the end of the
 * response it has not read yet. */
static void closes_with_a_lingering_close_while_the_client_still_sends(void **state)
{
    (void)state;
    const char *extra[] = {"--max-body-size",
                           "2m",
                           "--client-sndbuf",
                           "2m",
                           "--lingering-timeout",
                           "2s",
                           "--lingering-time",
                           "5s",
                           NULL};
    struct proc d = gslbd_start(extra);
    static char chunk[1 << 16];
    memset(chunk, 'b', sizeof(chunk));
    struct resp r;

    /* gslbd's own 413, the moment the head shows the body is too large: a client that sends
     * its 4 MiB before it reads gets through all of it (dropped), then reads the 413. */
    struct conn *c = conn_open(d.port);
    conn_send(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n");
    for (int i = 0; i < 64; i++) {
        conn_write(c, chunk, sizeof(chunk));
        if (i == 0)
            sleep_ms(300); /* the 413 has come, and the connection has ended */
    }
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 413);
    resp_free(&r);
    assert_true(conn_closed(c));
    conn_close(c);

    /* An origin that answers before reading the body: the 1 MB response is whole in gslbd's
     * socket (client-sndbuf) when it closes, the client has read 4 KiB of it and is still
     * sending; all of it arrives. */
    c = conn_open_rcvbuf(d.port, 4096);
    conn_send(c, "POST /early/1000000 HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n");
    conn_write(c, chunk, sizeof(chunk));
    sleep_ms(500);
    conn_write(c, chunk, 4096);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1000000);
    /* It says the connection ends (until 2026-12-07 it did not, and a client could send its
     * next request into the close). */
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    assert_true(conn_closed(c));
    assert_int_equal(counter_value_of(&d, "gslb_connections_lingering"), 1);
    conn_close(c); /* the client's close ends the lingering at once */
    sleep_ms(100);
    assert_int_equal(counter_value_of(&d, "gslb_connections_lingering"), 0);

    /* A client that goes silent is closed after lingering-timeout (2 s; each byte that comes
     * starts the wait again)... */
    c = upload_refused(d.port);
    sleep_ms(1000);
    assert_false(conn_reset_by_peer(c)); /* at 1 s: dropped */
    sleep_ms(1000);
    assert_false(conn_reset_by_peer(c)); /* at 2.1 s: 1.1 s after the last byte */
    sleep_ms(2500);
    assert_true(conn_reset_by_peer(c)); /* at 4.7 s, closed 2 s after the last byte */
    conn_close(c);

    /* ...and one that goes on sending after lingering-time (5 s) in all. */
    c = upload_refused(d.port);
    int64_t start = now_ms();
    while (!conn_reset_by_peer(c) && now_ms() - start < 8000)
        sleep_ms(200);
    int64_t took = now_ms() - start;
    assert_true(took >= 4700 && took < 7500);
    conn_close(c);
    assert_int_equal(counter_value_of(&d, "gslb_connections_lingering"), 0);
    gslbd_stop(&d);
}

/* SIGTERM to <d>: new clients are refused, the request in flight completes, exit status 0. */
static void sigterm_finishes_in_flight(struct proc d)
{
    struct conn *c = conn_open(d.port);
    struct resp r;
    conn_send(c, "GET /slow/1000 HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(200);
    kill(d.pid, SIGTERM);
    sleep_ms(200);
    /* New clients are refused... */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d.port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    close(fd);
    /* ...and the one in flight completes. */
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    conn_close(c);
    int status = -1;
    for (int i = 0; i < 100 && waitpid(d.pid, &status, WNOHANG) == 0; i++)
        sleep_ms(50);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void finishes_requests_in_flight_on_sigterm(void **state)
{
    (void)state;
    const char *extra[] = {"--metrics-listen", "", "--shutdown-timeout", "5s", NULL};
    sigterm_finishes_in_flight(gslbd_start(extra));

    /* One still waiting for its origin at the deadline gets a 503 and is logged (until
     * 2026-12-07 it was closed unanswered and unlogged; found by a differential test). */
    char log_path[200], line[1024];
    snprintf(log_path, sizeof(log_path), "%s/cut.log", dir);
    const char *cut[] = {"--metrics-listen", "",  "--shutdown-timeout", "300ms", "--access-log",
                         log_path,           NULL};
    struct proc d = gslbd_start(cut);
    struct conn *c = conn_open(d.port);
    struct resp r;
    conn_send(c, "GET /slow/3000 HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(200);
    int64_t start = now_ms();
    kill(d.pid, SIGTERM);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 503);
    assert_true(now_ms() - start < 2000);
    resp_free(&r);
    conn_close(c);
    int status = -1;
    for (int i = 0; i < 100 && waitpid(d.pid, &status, WNOHANG) == 0; i++)
        sleep_ms(50);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!file_line_with(log_path, "\"/slow/3000\"", line, sizeof(line), 2000))
        fail_msg("no log line for the request cut off");
    assert_non_null(strstr(line, "\"status\":503"));
}

/* A lingering close goes on through a SIGTERM: the client, still sending, reads all of an answer
 * its kernel had not delivered yet (a reset would destroy that part), and gslbd exits once it
 * closes, long before shutdown-timeout. */
static void a_lingering_close_outlasts_sigterm(void **state)
{
    (void)state;
    const char *extra[] = {
        "--client-sndbuf", "2m", "--metrics-listen", "", "--shutdown-timeout", "5s", NULL};
    struct proc d = gslbd_start(extra);
    static char chunk[1 << 16];
    memset(chunk, 'b', sizeof(chunk));
    struct conn *c = conn_open_rcvbuf(d.port, 4096);
    conn_send(c, "POST /early/1000000 HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n");
    conn_write(c, chunk, sizeof(chunk));
    sleep_ms(500); /* answered, and lingering */
    kill(d.pid, SIGTERM);
    sleep_ms(300);
    conn_write(c, chunk, sizeof(chunk));
    struct resp r;
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1000000);
    resp_free(&r);
    assert_true(conn_closed(c));
    int64_t closed = now_ms();
    conn_close(c);
    siginfo_t exited = {0}; /* left unreaped (WNOWAIT) for gslbd_stop's checks */
    while (waitid(P_PID, (id_t)d.pid, &exited, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           exited.si_pid == 0 && now_ms() - closed < 3000)
        sleep_ms(20);
    assert_int_equal(exited.si_pid, d.pid);
    gslbd_stop(&d);
}

/* The CPU time (user + system) of process <pid> so far, in milliseconds. */
static long process_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    unsigned long utime = 0, stime = 0;
    const char *after_name = strrchr(buf, ')'); /* fields 14 and 15, after the command name */
    assert_non_null(after_name);
    assert_int_equal(sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &utime, &stime),
                     2);
    return (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* busy-poll: after its last work a worker polls for the configured time, then sleeps; it serves
 * and shuts down as any other. */
static void a_busy_polling_worker_spins_for_its_window_then_sleeps(void **state)
{
    (void)state;
    const char *extra[] = {"--metrics-listen", "",  "--shutdown-timeout", "5s", "--busy-poll",
                           "300000us",         NULL};
    struct proc d = gslbd_start(extra);
    struct resp r;
    sleep_ms(500); /* start-up's own work is over, and so is its spin */
    long before = process_cpu_ms(d.pid);
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
    sleep_ms(1000);
    long spun = process_cpu_ms(d.pid) - before;
    /* It polled after the request: up to 300 ms of CPU, less on a machine busy enough to give
     * it a share of a core (seen: under 100 ms); a worker that sleeps at once takes a few. */
    if (spun < 30)
        fail_msg("%ld ms of CPU in the second after a request", spun);
    assert_true(spun <= 700); /* ...and then went to sleep */
    before = process_cpu_ms(d.pid);
    sleep_ms(1000);
    assert_true(process_cpu_ms(d.pid) - before <= 100); /* idle: asleep */
    sigterm_finishes_in_flight(d);
}

static void keeps_client_connections_across_topology_changes(void **state)
{
    (void)state;
    char err[512], name[] = "us-east";
    struct conn *c = conn_open(gslbd.port);
    struct resp r;
    conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(r.body, "us-east\n");
    resp_free(&r);
    conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    char eu_conn[32];
    snprintf(eu_conn, sizeof(eu_conn), "%s", resp_header(&r, "x-conn")); /* pooled now */
    resp_free(&r);
    struct db *db = db_open(db_path, err, sizeof(err));
    struct db_region region = {name, NULL, 39.04, -77.49, DB_REGION_DRAINING, DB_FORCE_AUTO};
    assert_int_equal(db_region_set(db, &region, "test", err, sizeof(err)), 0);
    sleep_ms(700);
    /* Same client connection, new topology: the American client now goes to Europe, on the
     * pooled origin connection of before (the change left that origin as it was; every pooled
     * connection was closed at a change until 2026-12-07). */
    conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(r.body, "eu-west\n");
    assert_string_equal(resp_header(&r, "x-conn"), eu_conn);
    resp_free(&r);
    region.state = DB_REGION_ACTIVE;
    assert_int_equal(db_region_set(db, &region, "test", err, sizeof(err)), 0);
    db_close(db);
    conn_close(c);
}

/* A PROXY protocol v2 header for a TCP over IPv4 connection from <src>. */
static size_t proxy_v2_header(uint8_t *out, const char *src)
{
    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    memcpy(out, sig, 12);
    out[12] = 0x21; /* version 2, PROXY */
    out[13] = 0x11; /* TCP over IPv4 */
    out[14] = 0;
    out[15] = 12;
    inet_pton(AF_INET, src, out + 16);
    inet_pton(AF_INET, "127.0.0.1", out + 20);
    out[24] = 0x30, out[25] = 0x39, out[26] = 0, out[27] = 80;
    return 28;
}

/* A PROXY protocol v2 header from <src> whose TLVs (one NOOP) make its length field <body>. */
static size_t proxy_v2_header_of(uint8_t *out, const char *src, size_t body)
{
    proxy_v2_header(out, src);
    size_t tlv = body - 12 - 3;
    out[14] = (uint8_t)(body >> 8), out[15] = (uint8_t)body;
    out[28] = 0x04; /* PP2_TYPE_NOOP */
    out[29] = (uint8_t)(tlv >> 8), out[30] = (uint8_t)tlv;
    memset(out + 31, 'T', tlv);
    return 16 + body;
}

static void believes_the_proxy_protocol_from_trusted_peers_only(void **state)
{
    (void)state;
    char log_path[200], logged[1024];
    snprintf(log_path, sizeof(log_path), "%s/pp.log", dir);
    const char *extra[] = {"--listen-proxy-protocol",
                           "127.0.0.1:0",
                           "--metrics-listen",
                           "",
                           "--access-log",
                           log_path,
                           NULL};
    struct proc d = gslbd_start(extra);
    int pp_port = listener_port(&d, 1); /* the PROXY listener is the second one */
    struct resp r;
    struct conn *c = conn_open(pp_port);
    conn_send(c, "PROXY TCP4 81.2.69.142 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_string_equal(r.body, "eu-west\n"); /* located by the PROXY source address */
    resp_free(&r);
    conn_close(c);

    uint8_t raw[256];
    size_t len = proxy_v2_header(raw, "1.1.1.1");
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    memcpy(raw + len, req, strlen(req));
    c = conn_open(pp_port);
    conn_write(c, raw, len + strlen(req));
    assert_true(conn_response(c, &r, false));
    assert_string_equal(r.body, "ap-southeast\n");
    resp_free(&r);
    conn_close(c);
    /* The log's client is the PROXY source, its peer the balancer that sent the header. */
    if (!file_line_with(log_path, "\"client\":\"1.1.1.1\"", logged, sizeof(logged), 5000))
        fail_msg("no log line for 1.1.1.1");
    assert_non_null(strstr(logged, "\"peer\":\"127.0.0.1\""));

    /* TLVs make a v2 header up to 64 KiB long (the spec's bound); they are dropped as they come,
     * here in pieces. Until 2026-12-07 one over 536 bytes closed the connection. */
    static uint8_t big[16 + 65535 + 64];
    const size_t bodies[] = {600, 4000, 65535};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        len = proxy_v2_header_of(big, "81.2.69.142", bodies[i]);
        memcpy(big + len, req, strlen(req));
        c = conn_open(pp_port);
        conn_write(c, big, 100);
        sleep_ms(20);
        conn_write(c, big + 100, len - 200);
        sleep_ms(20);
        conn_write(c, big + len - 100, 100 + strlen(req));
        assert_true(conn_response(c, &r, false));
        assert_string_equal(r.body, "eu-west\n");
        resp_free(&r);
        conn_close(c);
    }

    /* From an untrusted peer the header is not believed: it is just a malformed request. */
    c = conn_open_from(pp_port, "127.0.0.2");
    conn_send(c, "PROXY TCP4 81.2.69.142 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 400);
    resp_free(&r);
    conn_close(c);

    /* And garbage instead of a header closes the connection, as does a version 1 line not in
     * the spec's form (double spaces, a signed or zero-padded port, a word after UNKNOWN were
     * taken until 2026-12-07)... */
    const char *garbage[] = {"PROXY TCP9 x y z\r\n",
                             "PROXY TCP4  81.2.69.142 127.0.0.1 1 80\r\n",
                             "PROXY TCP4 81.2.69.142 127.0.0.1 +1 80\r\n",
                             "PROXY TCP4 81.2.69.142 127.0.0.1 01 80\r\n",
                             "PROXY TCP4 81.2.69.142 127.0.0.1 1 80 \r\n",
                             "PROXY UNKNOWNS\r\n"};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        c = conn_open(pp_port);
        conn_send(c, garbage[i]);
        conn_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        if (!conn_closed(c))
            fail_msg("taken: %s", garbage[i]);
        conn_close(c);
    }
    /* ...as does a version 1 line over the spec's 107 bytes (CRLF included), one at it passes. */
    for (int size = 107; size <= 108; size++) {
        char line[256];
        int n = sprintf(line, "PROXY UNKNOWN ");
        memset(line + n, 'x', (size_t)(size - 2 - n));
        strcpy(line + size - 2, "\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        c = conn_open(pp_port);
        conn_send(c, line);
        bool answered = conn_response(c, &r, false);
        assert_true(answered == (size == 107));
        if (answered) {
            assert_int_equal(r.status, 200);
            resp_free(&r);
        }
        conn_close(c);
    }
    gslbd_stop(&d);
}

static void takes_settings_from_the_file_with_flags_winning(void **state)
{
    (void)state;
    char path[160], bin[300], cmd[2048], log_path[200], text[4096];
    snprintf(path, sizeof(path), "%s/gslbd.conf", dir);
    /* Lines of any length (one was cut at 1,023 bytes, its rest read as a key) and a '#' inside
     * a value (a comment only at the start or after a blank; both until 2026-12-07). */
    snprintf(log_path, sizeof(log_path), "%s/a#b.log", dir);
    char *long_comment = text + snprintf(text, sizeof(text), "# ");
    memset(long_comment, 'x', 2000);
    snprintf(long_comment + 2000, sizeof(text) - 2002,
             "\nworkers 1\nmax-body-size = 10   # bytes\nlisten 127.0.0.1:1\n"
             "metrics-listen\naccess-log %s\n",
             log_path);
    file_write(path, text);
    /* The file's listen (port 1, not ours to bind) is replaced by the flag's. */
    const char *extra[] = {"--config", path, NULL};
    struct proc d = gslbd_start(extra);
    struct resp r;
    assert_int_equal(request(d.port,
                             "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
                             "hello world",
                             &r),
                     413); /* the file's max-body-size applies */
    resp_free(&r);
    assert_true(file_line_with(log_path, "\"status\":413", text, sizeof(text), 5000));
    gslbd_stop(&d);
    check_config_refuses("metrics-listen", "127.0.0.1:abc"); /* named "listen" until 2026-12-07 */
    /* Numbers as written: strtod() and strtol() took hexadecimal, signs and exponents, and a
     * fraction where a count is meant (0x10 was 16 s; until 2026-12-07). */
    check_config_refuses("connect-timeout", "0x10");
    check_config_refuses("max-body-size", "1e3");
    check_config_refuses("workers", "+2");
    check_config_refuses("health-rise", "1.5");

    /* A bad value is refused naming the key, and --check-config says so with status 2. */
    file_write(path, "connect-timeout soon\n");
    snprintf(bin, sizeof(bin), "%s/gslbd", build);
    snprintf(cmd, sizeof(cmd), "%s --config %s --db %s --geoip %s --check-config 2>&1", bin, path,
             db_path, city);
    FILE *out = popen(cmd, "r");
    char line[512], all[2048] = "";
    while (fgets(line, sizeof(line), out))
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    int status = pclose(out);
    assert_int_equal(WEXITSTATUS(status), 2);
    assert_non_null(strstr(all, "connect-timeout"));
    file_write(path,
               "workers 1\nconnect-timeout 1s\nworkers 2\n"); /* the last won until 2026-12-07 */
    out = popen(cmd, "r");
    all[0] = '\0';
    while (fgets(line, sizeof(line), out))
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    assert_int_equal(WEXITSTATUS(pclose(out)), 2);
    assert_non_null(strstr(all, "workers: given more than once"));
    file_write(path, "no-such-key 1\n");
    out = popen(cmd, "r");
    all[0] = '\0';
    while (fgets(line, sizeof(line), out))
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    assert_int_equal(WEXITSTATUS(pclose(out)), 2);
    assert_non_null(strstr(all, "no-such-key"));
}

static void sighup_applies_the_config_file_and_names_what_needs_a_restart(void **state)
{
    (void)state;
    char conf[160];
    snprintf(conf, sizeof(conf), "%s/reload.conf", dir);
    file_write(conf, "max-header-size 64k\naccess-log-format json\n");
    const char *extra[] = {"--config", conf, "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    assert_int_equal(request_with_big_header(d.port), 200);
    struct resp r;

    file_write(conf, "# smaller heads now\nmax-header-size 2k\naccess-log-format combined\n"
                     "busy-poll 1ms\n");
    gslbd_sighup(&d);
    sleep_ms(100); /* the workers take it when woken, just after */
    assert_int_equal(request_with_big_header(d.port), 431); /* applied without a restart */
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
    /* Each one that needs a restart is named (only the first was until 2026-12-07). */
    assert_int_equal(
        proc_log_count(&d, "changed, taking effect at restart: busy-poll, access-log-format"), 1);

    /* A broken file changes nothing. */
    file_write(conf, "max-header-size lots\n");
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    for (int64_t end = now_ms() + 5000;
         proc_log_count(&d, "keeping the running configuration") == 0 && now_ms() < end;)
        sleep_ms(25);
    assert_int_equal(proc_log_count(&d, "keeping the running configuration"), 1);
    assert_int_equal(request_with_big_header(d.port), 431);
    gslbd_stop(&d);
}

static void reopens_the_access_log_on_sighup(void **state)
{
    (void)state;
    char log_path[160], moved[170];
    snprintf(log_path, sizeof(log_path), "%s/rotate.log", dir);
    snprintf(moved, sizeof(moved), "%s.1", log_path);
    const char *extra[] = {
        "--access-log", log_path, "--access-log-format", "combined", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    struct resp r;
    char line[1024];
    assert_int_equal(request(d.port, "GET /before HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    resp_free(&r);
    assert_true(file_line_with(log_path, "/before", line, sizeof(line), 5000));
    assert_int_equal(rename(log_path, moved), 0); /* what logrotate does */
    gslbd_sighup(&d);
    assert_int_equal(
        request(d.port,
                "GET /after?q=\"x\" HTTP/1.1\r\nHost: a\r\nReferer: http://r.example/\r\n"
                "User-Agent: t\"ester\\1\r\n\r\n",
                &r),
        200);
    resp_free(&r);
    assert_true(file_line_with(log_path, "/after", line, sizeof(line), 5000));
    /* Combined format, quotes and backslashes escaped as nginx escapes them:
     * 127.0.0.1 - - [date] "GET /after?q=\x22x\x22 HTTP/1.1" 200 N "referer" "user agent" */
    assert_non_null(strstr(line, "127.0.0.1 - - ["));
    assert_non_null(strstr(line, "\"GET /after?q=\\x22x\\x22 HTTP/1.1\" 200 "));
    assert_non_null(strstr(line, " \"http://r.example/\" \"t\\x22ester\\x5C1\"\n"));
    assert_false(file_line_with(moved, "/after", line, sizeof(line), 0)); /* the new file only */
    /* Requests refused before they were routed: what of the request line was read ("- -" for
     * none), no version before it came ("GET  HTTP/0.0" and "DELETE  HTTP/0.0" until
     * 2026-12-07). */
    static const char *const refused[][2] = {
        {"GET /bad?x HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", "\"GET /bad?x HTTP/1.1\" 400 "},
        {"\x16\x03\x01 / HTTP/1.1\r\n\r\n", "\"- -\" 400 "},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(request(d.port, refused[i][0], &r), 400);
        resp_free(&r);
        if (!file_line_with(log_path, refused[i][1], line, sizeof(line), 5000))
            fail_msg("no line with %s", refused[i][1]);
    }
    gslbd_stop(&d);
}

static void serves_ipv6_listeners_and_sends_rfc7239_forwarded(void **state)
{
    (void)state;
    const char *extra[] = {"--listen",
                           "[::1]:0",
                           "--forwarded-header",
                           "yes",
                           "--trusted-proxies",
                           "::1/128",
                           "--metrics-listen",
                           "",
                           NULL};
    struct proc d = gslbd_start(extra);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
                                .sin6_port = htons((uint16_t)listener_port(&d, 1))};
    struct timeval tv = {5, 0};
    inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
    struct conn *c = calloc(1, sizeof(*c));
    c->fd = fd;
    struct resp r;
    conn_send(c, "GET /headers HTTP/1.1\r\nHost: www.example.com\r\n"
                 "X-Forwarded-For: 2001:4860:4860::8888\r\nForwarded: for=1.2.3.4\r\n\r\n");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "x-origin"), "us-east"); /* located by the IPv6 XFF */
    assert_non_null(strstr(r.body, "X-Forwarded-For: 2001:4860:4860::8888, ::1\n"));
    /* A trusted peer's chain goes on, ours appended (RFC 7239 4; until 2026-12-07 it was
     * replaced). */
    assert_non_null(strstr(r.body, "Forwarded: for=1.2.3.4, for=\"[2001:4860:4860::8888]\";"
                                   "proto=http;host=\"www.example.com\"\n"));
    resp_free(&r);
    conn_send(c, "GET /headers HTTP/1.0\r\n\r\n"); /* no host: no host= either */
    assert_true(conn_response(c, &r, false));
    assert_non_null(strstr(r.body, "Forwarded: for=\"[::1]\";proto=http\n"));
    resp_free(&r);
    conn_close(c);
    gslbd_stop(&d);
}

static void closes_pooled_origin_connections_after_their_idle_timeout(void **state)
{
    (void)state;
    const char *extra[] = {"--origin-idle-timeout", "300ms", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    struct resp r;
    char first[32];
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    snprintf(first, sizeof(first), "%s", resp_header(&r, "x-conn"));
    resp_free(&r);
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    assert_string_equal(resp_header(&r, "x-conn"), first); /* reused from the pool */
    resp_free(&r);
    sleep_ms(700);
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
    assert_string_not_equal(resp_header(&r, "x-conn"), first); /* the pooled one was closed */
    resp_free(&r);
    gslbd_stop(&d);
}

static void times_out_a_stalled_request_body_with_408(void **state)
{
    (void)state;
    const char *extra[] = {"--client-body-timeout", "500ms", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    struct conn *c = conn_open(d.port);
    struct resp r;
    int64_t start = now_ms();
    conn_send(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly a part");
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 408);
    assert_true(now_ms() - start >= 400 && now_ms() - start < 3000);
    resp_free(&r);
    conn_close(c);
    gslbd_stop(&d);
}

/* An origin that takes none of a request body for origin-read-timeout gets it no longer: the
 * client gets a 504 (until 2026-12-07 the upload held both connections until the origin closed,
 * its client gone or not; found by a robustness test; nginx's proxy_send_timeout). */
static void gives_up_on_an_origin_that_stops_reading_the_request(void **state)
{
    (void)state;
    const char *extra[] = {"--origin-read-timeout", "1s", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    struct conn *c = conn_open(d.port);
    struct resp r;
    conn_send(c, "POST /noread/8000 HTTP/1.1\r\nHost: a\r\nContent-Length: 50000000\r\n\r\n");
    static char chunk[65536];
    size_t sent = 0;
    int64_t start = now_ms(), last = start;
    while (now_ms() - last < 300 && now_ms() - start < 5000) { /* until the sockets are full */
        ssize_t n = send(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            last = now_ms();
        } else {
            sleep_ms(10);
        }
    }
    assert_true(sent < 50000000);
    assert_true(conn_response(c, &r, false));
    assert_int_equal(r.status, 504);
    assert_non_null(strstr(r.body, "stopped reading"));
    if (now_ms() - last > 4000) /* the origin itself closes at 8 s */
        fail_msg("answered %lld ms after the last byte the origin took",
                 (long long)(now_ms() - last));
    resp_free(&r);
    conn_close(c);
    gslbd_stop(&d);
}

static void gives_up_on_an_origin_that_does_not_accept_within_the_connect_timeout(void **state)
{
    (void)state;
    char topo[512], db2[160];
    /* An origin whose accept queue is full: further SYNs are dropped and connects hang. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    getsockname(lfd, (struct sockaddr *)&sin, &len);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&sin, sizeof(sin));
    }
    sleep_ms(100);
    snprintf(db2, sizeof(db2), "%s/blackhole.db", dir);
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26,"
             " \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]}",
             ntohs(sin.sin_port));
    topology_import(db2, topo);
    const char *extra[] = {"--db", db2, "--connect-timeout", "400ms", "--metrics-listen", "", NULL};
    struct proc d = gslbd_start(extra);
    struct resp r;
    int64_t start = now_ms();
    assert_int_equal(request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 504);
    int64_t took = now_ms() - start;
    assert_true(took >= 350 && took < 3000); /* one try of 400 ms: the only origin */
    resp_free(&r);
    gslbd_stop(&d);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
}

static void ejects_origins_that_keep_failing_but_never_more_than_the_cap(void **state)
{
    (void)state;
    char topo[1024], db2[160];
    struct proc bad[3];
    for (int i = 0; i < 3; i++)
        bad[i] = origin_start(i == 0 ? "bad-0" : i == 1 ? "bad-1" : "bad-2", "fail", 0);
    snprintf(db2, sizeof(db2), "%s/passive.db", dir);
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26,"
             " \"origins\": [{\"address\": \"127.0.0.1:%d\"}, {\"address\": \"127.0.0.1:%d\"},"
             " {\"address\": \"127.0.0.1:%d\"}, {\"address\": \"127.0.0.1:%d\"}]}]}",
             eu.port, bad[0].port, bad[1].port, bad[2].port);
    topology_import(db2, topo);
    const char *extra[] = {"--db", db2, "--passive-failures", "3", "--passive-ejection",
                           "30s",  NULL};
    struct proc d = gslbd_start(extra);
    int failed_late[3] = {0}, ok_late = 0;
    for (int i = 0; i < 60; i++) {
        struct resp r;
        int status = request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r);
        const char *origin = resp_header(&r, "x-origin");
        if (i >= 30) { /* long after the ejections */
            if (status == 200)
                ok_late++;
            else if (origin && strncmp(origin, "bad-", 4) == 0)
                failed_late[origin[4] - '0']++;
        }
        resp_free(&r);
    }
    /* Two of the three failing origins are out; the third stays in, as ejecting it too would
     * take more than half of the pool out. It keeps getting its share. */
    int still_failing = 0, silent = 0;
    for (int i = 0; i < 3; i++) {
        still_failing += failed_late[i] > 0;
        silent += failed_late[i] == 0;
    }
    assert_int_equal(still_failing, 1);
    assert_int_equal(silent, 2);
    assert_true(ok_late >= 10);
    struct resp r;
    char raw[128];
    snprintf(raw, sizeof(raw), "GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n");
    assert_int_equal(request(d.metrics_port, raw, &r), 200);
    assert_non_null(strstr(r.body, "gslb_passive_ejections_total 2\n"));
    resp_free(&r);
    gslbd_stop(&d);
    for (int i = 0; i < 3; i++)
        proc_stop(&bad[i], SIGKILL);
}

static void workers_share_their_passive_verdicts(void **state)
{
    (void)state;
    char topo[1024], db2[160];
    struct proc bad = origin_start("bad-0", "fail", 0);
    snprintf(db2, sizeof(db2), "%s/passive-shared.db", dir);
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26,"
             " \"origins\": [{\"address\": \"127.0.0.1:%d\"}, {\"address\": \"127.0.0.1:%d\"}]}]}",
             eu.port, bad.port);
    topology_import(db2, topo);
    /* Four workers, a new connection per request (spread over the workers by the kernel): the
     * third failure, wherever it lands, ejects the origin for all of them. Each worker counting
     * on its own would let up to twelve through. */
    const char *extra[] = {
        "--db", db2, "--workers", "4", "--passive-failures", "3", "--passive-ejection",
        "30s",  NULL};
    struct proc d = gslbd_start(extra);
    int failed = 0, ok = 0;
    for (int i = 0; i < 40; i++) {
        struct resp r;
        int status = request(d.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r);
        failed += status == 503;
        ok += status == 200;
        resp_free(&r);
    }
    assert_int_equal(failed, 3);
    assert_int_equal(ok, 37);
    gslbd_stop(&d);
    proc_stop(&bad, SIGKILL);
}

static void exits_cleanly_after_all_of_the_above(void **state)
{
    (void)state;
    gslbd_stop(&gslbd); /* status 0, and under ASan no leak or error report */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_clients_by_their_forwarded_address),
        cmocka_unit_test(ignores_forwarded_address_from_an_untrusted_peer),
        cmocka_unit_test(takes_the_client_from_the_configured_header),
        cmocka_unit_test(forwards_a_clients_forwarded_header_from_trusted_peers_only),
        cmocka_unit_test(forwards_without_hop_by_hop_headers_and_with_forwarding_headers),
        cmocka_unit_test(forwards_one_x_forwarded_for_and_one_via_line_wherever_they_were),
        cmocka_unit_test(redirects_to_the_origin_itself_point_at_the_proxy_instead),
        cmocka_unit_test(keeps_connections_alive_on_both_sides),
        cmocka_unit_test(answers_pipelined_requests_in_order),
        cmocka_unit_test(reads_on_after_pausing_for_a_client_far_ahead),
        cmocka_unit_test(serves_http10_clients),
        cmocka_unit_test(answers_a_last_request_after_its_client_half_closes),
        cmocka_unit_test(lingers_on_bytes_sent_after_the_last_request),
        cmocka_unit_test(refuses_header_names_that_are_no_tokens),
        cmocka_unit_test(refuses_request_smuggling_and_malformed_requests),
        cmocka_unit_test(refuses_obs_fold_wherever_the_reads_cut_the_head),
        cmocka_unit_test(accepts_absolute_form_and_chunked_uploads),
        cmocka_unit_test(relays_304_without_a_length_or_a_body),
        cmocka_unit_test(counts_down_max_forwards_on_options),
        cmocka_unit_test(refuses_invalid_origin_responses_with_502),
        cmocka_unit_test(relays_interim_responses_as_interim),
        cmocka_unit_test(a_204_goes_out_without_content_length_or_body),
        cmocka_unit_test(a_reused_origin_connection_gets_a_whole_read_timeout),
        cmocka_unit_test(supports_expect_100_continue),
        cmocka_unit_test(tunnels_websocket_upgrades_both_ways),
        cmocka_unit_test(a_tunnel_passes_each_end_on_after_the_bytes_before_it),
        cmocka_unit_test(closes_a_tunnel_idle_for_the_tunnel_timeout),
        cmocka_unit_test(a_tunnel_client_that_stops_reading_is_dropped),
        cmocka_unit_test(fails_over_to_the_next_region_when_an_origin_is_unreachable),
        cmocka_unit_test(retries_idempotent_requests_only),
        cmocka_unit_test(never_replays_a_post_dropped_on_a_pooled_connection),
        cmocka_unit_test(answers_503_502_and_504_for_each_kind_of_failure),
        cmocka_unit_test(keeps_the_connection_open_after_its_own_answers),
        cmocka_unit_test(cuts_the_client_when_the_origin_cuts_a_response),
        cmocka_unit_test(large_bodies_are_spliced_intact_and_connections_carry_on),
        cmocka_unit_test(a_client_leaving_mid_splice_leaves_the_proxy_serving),
        cmocka_unit_test(a_client_that_stops_reading_is_dropped),
        cmocka_unit_test(a_client_that_leaves_mid_response_leaves_nothing_for_the_next),
        cmocka_unit_test(enforces_header_limits_with_431_and_414),
        cmocka_unit_test(times_out_slow_heads_and_idle_keepalives),
        cmocka_unit_test(idle_connections_never_block_new_clients),
        cmocka_unit_test(streams_a_large_download_with_bounded_memory),
        cmocka_unit_test(streams_a_large_upload_with_bounded_memory),
        cmocka_unit_test(relays_chunked_and_close_delimited_bodies),
        cmocka_unit_test(relays_trailer_fields_both_ways),
        cmocka_unit_test(exposes_prometheus_metrics),
        cmocka_unit_test(counts_requests_failures_and_latency_per_origin),
        cmocka_unit_test(writes_one_access_log_line_per_request),
        cmocka_unit_test(carries_a_request_id),
        cmocka_unit_test(applies_a_committed_topology_change_within_a_second),
        cmocka_unit_test(refuses_clients_beyond_the_connection_limit),
        cmocka_unit_test(silent_clients_wait_in_the_kernel_until_they_speak),
        cmocka_unit_test(a_spliced_body_waiting_for_its_client_outlasts_the_origin_read_timeout),
        cmocka_unit_test(pipelined_requests_wait_while_their_client_reads_nothing),
        cmocka_unit_test_teardown(raises_the_open_file_limit_for_max_connections,
                                  files_limit_restore),
        cmocka_unit_test(refuses_bodies_beyond_the_body_limit),
        cmocka_unit_test(closes_with_a_lingering_close_while_the_client_still_sends),
        cmocka_unit_test(finishes_requests_in_flight_on_sigterm),
        cmocka_unit_test(a_lingering_close_outlasts_sigterm),
        cmocka_unit_test(a_busy_polling_worker_spins_for_its_window_then_sleeps),
        cmocka_unit_test(keeps_client_connections_across_topology_changes),
        cmocka_unit_test(believes_the_proxy_protocol_from_trusted_peers_only),
        cmocka_unit_test(takes_settings_from_the_file_with_flags_winning),
        cmocka_unit_test(reopens_the_access_log_on_sighup),
        cmocka_unit_test(sighup_applies_the_config_file_and_names_what_needs_a_restart),
        cmocka_unit_test(serves_ipv6_listeners_and_sends_rfc7239_forwarded),
        cmocka_unit_test(closes_pooled_origin_connections_after_their_idle_timeout),
        cmocka_unit_test(times_out_a_stalled_request_body_with_408),
        cmocka_unit_test(gives_up_on_an_origin_that_stops_reading_the_request),
        cmocka_unit_test(gives_up_on_an_origin_that_does_not_accept_within_the_connect_timeout),
        cmocka_unit_test(ejects_origins_that_keep_failing_but_never_more_than_the_cap),
        cmocka_unit_test(workers_share_their_passive_verdicts),
        cmocka_unit_test(exits_cleanly_after_all_of_the_above),
    };
    harness_test_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

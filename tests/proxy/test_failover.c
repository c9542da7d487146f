/* tests/proxy/test_failover.c - pool quorum, manual failback, drain and check latency, end to
 * end: the real gslbd with its prober, real origin processes killed and restarted, gslbctl as an
 * operator would run it, and what the daemon records in SQLite. Ends with a thousand origins
 * checked every second while requests keep flowing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db/db.h"
#include "tests/proxy/harness.h"

#define POOL_HOLDDOWN_MS 500

/* Every process a test starts lives here, so that teardown stops it even after a failure. */
static struct proc eu1, eu2, us, gslbd, eu_a, eu_b, tls_server;
static const char *daemon_flags[] = {"--health-checks",
                                     "tcp",
                                     "--health-interval",
                                     "200ms",
                                     "--health-timeout",
                                     "200ms",
                                     "--health-fall",
                                     "2",
                                     "--health-rise",
                                     "2",
                                     "--failback-holddown",
                                     "1500ms",
                                     "--access-log",
                                     "",
                                     NULL};

/* The body of a GET from a European client (81.2.69.142, London). */
static char *european_get(const char *path)
{
    char raw[256];
    struct resp r;
    snprintf(raw, sizeof(raw),
             "GET %s HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n",
             path);
    if (request(gslbd.port, raw, &r) != 200) {
        resp_free(&r);
        return strdup("(no 200)");
    }
    return r.body;
}

static void assert_served_from(const char *region_line)
{
    char *body = european_get("/");
    assert_string_equal(body, region_line);
    free(body);
}

static int group_setup(void **state)
{
    (void)state;
    char topo[2048];
    harness_init("gslb-failover");
    eu1 = origin_start("eu-west", NULL, 0);
    eu2 = origin_start("eu-west", NULL, 0);
    us = origin_start("us-east", NULL, 0);
    /* eu-west needs both its origins (quorum 2) and fails back by hand. */
    snprintf(topo, sizeof(topo),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26},"
             " {\"name\": \"us-east\", \"lat\": 39.04, \"lon\": -77.49}],"
             " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"min_healthy\": 2, \"failback\": \"manual\","
             "   \"holddown_ms\": %d, \"check\": {\"type\": \"http\", \"path\": \"/status/204\"},"
             "   \"origins\": [{\"address\": \"127.0.0.1:%d\"}, {\"address\": \"127.0.0.1:%d\"}]},"
             "  {\"region\": \"us-east\", \"check\": {\"type\": \"http\", \"method\": \"HEAD\","
             "   \"path\": \"/status/200\"}, \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]}]}",
             POOL_HOLDDOWN_MS, eu1.port, eu2.port, us.port);
    topology_import(db_path, topo);
    gslbd = gslbd_start(daemon_flags);
    assert_true(wait_region("www/eu-west", 1, 3000) > 0);
    sleep_ms(1000); /* us-east's HEAD checks pass: it stays up */
    assert_int_equal(region_up("www/us-east"), 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    proc_stop(&gslbd, SIGKILL);
    proc_stop(&eu1, SIGKILL);
    proc_stop(&eu2, SIGKILL);
    proc_stop(&us, SIGKILL);
    proc_stop(&eu_a, SIGKILL);
    proc_stop(&eu_b, SIGKILL);
    proc_stop(&tls_server, SIGKILL);
    harness_fini();
    return 0;
}

/* ---- tests ---- */

static void a_region_below_its_quorum_gives_its_clients_to_the_next(void **state)
{
    (void)state;
    char out[8192];
    assert_served_from("eu-west\n");
    int port = eu2.port;
    proc_stop(&eu2, SIGKILL); /* one of two left: below the quorum of 2 */
    assert_true(wait_region("www/eu-west", 0, 3000) > 0);
    assert_served_from("us-east\n");
    assert_int_equal(gslbctl("health --history 5", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1 of 2 origins healthy, quorum is 2"));
    eu2 = origin_start("eu-west", NULL, port);
}

static void manual_failback_holds_the_region_until_an_operator_resumes_it(void **state)
{
    (void)state;
    char out[8192];
    /* Both origins are back (previous test) and healthy well past the pool's hold-down... */
    sleep_ms(POOL_HOLDDOWN_MS + 1500);
    assert_int_equal(region_up("www/eu-west"), 0);
    assert_served_from("us-east\n");
    assert_int_equal(gslbctl("health", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "held out by manual failback"));
    assert_non_null(strstr(out, "www/eu-west"));

    /* ...and a restart keeps the hold: it is in the store. */
    gslbd_stop(&gslbd);
    gslbd = gslbd_start(daemon_flags);
    sleep_ms(POOL_HOLDDOWN_MS + 1000);
    assert_int_equal(region_up("www/eu-west"), 0);
    assert_served_from("us-east\n");

    /* The operator resumes it: back within a second, with an audit entry. */
    int64_t start = now_ms();
    assert_int_equal(gslbctl("--actor alice region resume eu-west", out, sizeof(out)), 0);
    assert_true(wait_region("www/eu-west", 1, 3000) > 0);
    printf("# resumed region back after %lld ms\n", (long long)(now_ms() - start));
    assert_true(now_ms() - start < 1500);
    assert_served_from("eu-west\n");
    assert_int_equal(gslbctl("audit --limit 1", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "region.resume"));
    assert_non_null(strstr(out, "alice"));
    assert_int_equal(gslbctl("health", out, sizeof(out)), 0);
    assert_null(strstr(out, "held out by manual failback"));
}

static void a_region_handed_back_to_the_checks_while_down_is_held_until_resumed(void **state)
{
    (void)state;
    char out[8192];
    /* Forced down, then its quorum lost, then handed back to the checks: it never came back by
     * itself, so manual failback holds it. */
    assert_int_equal(gslbctl("region set eu-west --health down", out, sizeof(out)), 0);
    assert_true(wait_region("www/eu-west", 0, 3000) > 0);
    int port = eu2.port;
    proc_stop(&eu2, SIGKILL);
    sleep_ms(800);
    assert_int_equal(gslbctl("region set eu-west --health auto", out, sizeof(out)), 0);
    eu2 = origin_start("eu-west", NULL, port);
    sleep_ms(POOL_HOLDDOWN_MS + 1500); /* healthy again, well past the hold-down */
    assert_int_equal(region_up("www/eu-west"), 0);
    assert_int_equal(gslbctl("health", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "held out by manual failback"));
    assert_int_equal(gslbctl("region resume eu-west", out, sizeof(out)), 0);
    assert_true(wait_region("www/eu-west", 1, 3000) > 0);
    assert_served_from("eu-west\n");
}

static void gslbctl_pool_set_changes_the_quorum_and_names_bad_fields(void **state)
{
    (void)state;
    char out[8192];
    assert_int_equal(
        gslbctl("pool set --service www --region eu-west --min-healthy 3", out, sizeof(out)), 3);
    assert_non_null(strstr(out, "services[www].pools[eu-west].min_healthy"));
    assert_int_equal(gslbctl("pool set --service www --region eu-west --min-weight-percent 101",
                             out, sizeof(out)),
                     3);
    assert_non_null(strstr(out, "min_weight_percent"));
    assert_int_equal(gslbctl("pool set --service www --region eu-west --min-healthy 1 "
                             "--min-weight-percent 50 --failback auto",
                             out, sizeof(out)),
                     0);
    assert_int_equal(gslbctl("pool list", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "eu-west"));
    assert_non_null(strstr(out, "50%"));
    sleep_ms(700); /* the new snapshot reaches the prober */

    /* One origin of two (equal weight: 50%) meets the new quorum: the region stays up. */
    int port = eu2.port;
    proc_stop(&eu2, SIGKILL);
    sleep_ms(1200);
    assert_int_equal(region_up("www/eu-west"), 1);
    assert_served_from("eu-west\n");
    /* Both gone: down, and with automatic failback it returns by itself. */
    proc_stop(&eu1, SIGKILL);
    int p1 = eu1.port;
    assert_true(wait_region("www/eu-west", 0, 3000) > 0);
    eu1 = origin_start("eu-west", NULL, p1);
    eu2 = origin_start("eu-west", NULL, port);
    assert_true(wait_region("www/eu-west", 1, 5000) > 0);
    assert_served_from("eu-west\n");
}

static void metrics_report_check_latency_per_origin(void **state)
{
    (void)state;
    struct resp r;
    char want[200];
    assert_int_equal(request(gslbd.metrics_port, "GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n", &r),
                     200);
    snprintf(want, sizeof(want),
             "gslb_health_check_duration_seconds_count{service=\"www\",region=\"us-east\","
             "origin=\"127.0.0.1:%d\"} ",
             us.port);
    const char *line = strstr(r.body, want);
    assert_non_null(line);
    assert_true(atol(line + strlen(want)) > 0);
    assert_non_null(strstr(r.body, "# TYPE gslb_health_check_duration_seconds histogram"));
    assert_non_null(strstr(r.body, "le=\"+Inf\"}"));
    assert_non_null(strstr(r.body, "gslb_health_check_failures_total{service=\"www\","));
    resp_free(&r);
}

struct slow_get {
    char *body;
};

static void *slow_get_main(void *arg)
{
    struct slow_get *g = arg;
    g->body = european_get("/slow/1500");
    return NULL;
}

static void draining_lets_requests_in_flight_finish_and_takes_no_new_ones(void **state)
{
    (void)state;
    char out[4096];
    struct slow_get g = {0};
    pthread_t thread;
    assert_true(pthread_create(&thread, NULL, slow_get_main, &g) == 0);
    sleep_ms(300); /* the slow request is at an eu-west origin now */
    assert_int_equal(gslbctl("region set eu-west --state draining", out, sizeof(out)), 0);
    sleep_ms(700);
    assert_served_from("us-east\n"); /* no new clients */
    pthread_join(thread, NULL);
    assert_string_equal(g.body, "eu-west\n"); /* the one in flight finished where it was */
    free(g.body);
    assert_int_equal(gslbctl("region set eu-west --state active", out, sizeof(out)), 0);
}

/* ---- draining a sticky service ---- */

/* Up to <max> European addresses (81.2.69.0/24, London) that `gslbctl route` sends to
 * <origin_port> for host sticky.example.com, written into <out> as text. */
static int addresses_for(int origin_port, char out[][16], int max)
{
    char cmd[2048], line[4096], want[64];
    snprintf(cmd, sizeof(cmd),
             "seq 1 254 | sed 's/^/81.2.69./' | %s/gslbctl --db %s --geoip %s route - --host "
             "sticky.example.com",
             build, db_path, city);
    snprintf(want, sizeof(want), "\"origin\":\"127.0.0.1:%d\"", origin_port);
    FILE *f = popen(cmd, "r");
    int n = 0;
    while (f && fgets(line, sizeof(line), f) && n < max) {
        if (strstr(line, want) && strstr(line, "\"region\":\"eu-west\""))
            sscanf(line, "{\"ip\":\"%15[0-9.]\"", out[n++]);
    }
    if (f)
        pclose(f);
    return n;
}

static char *sticky_get(const char *client)
{
    char raw[256];
    struct resp r;
    snprintf(raw, sizeof(raw),
             "GET / HTTP/1.1\r\nHost: sticky.example.com\r\nX-Forwarded-For: %s\r\n\r\n", client);
    if (request(gslbd.port, raw, &r) != 200) {
        resp_free(&r);
        return strdup("(no 200)");
    }
    return r.body;
}

static void assert_sticky_from(const char *client, const char *want)
{
    char *body = sticky_get(client);
    if (strcmp(body, want) != 0)
        fail_msg("client %s: served by %s, expected %s", client, body, want);
    free(body);
}

static void draining_a_sticky_origin_or_region_lets_its_recent_clients_finish(void **state)
{
    (void)state;
    char cmd[2048], out[4096], clients[3][16];
    eu_a = origin_start("eu-a", NULL, 0);
    eu_b = origin_start("eu-b", NULL, 0);
    snprintf(cmd, sizeof(cmd),
             "service add sticky --host sticky.example.com --sticky yes && "
             "%s/gslbctl --db %s origin add 127.0.0.1:%d --service sticky --region eu-west && "
             "%s/gslbctl --db %s origin add 127.0.0.1:%d --service sticky --region eu-west && "
             "%s/gslbctl --db %s origin add 127.0.0.1:%d --service sticky --region us-east",
             build, db_path, eu_a.port, build, db_path, eu_b.port, build, db_path, us.port);
    assert_int_equal(gslbctl(cmd, out, sizeof(out)), 0);
    assert_int_equal(addresses_for(eu_a.port, clients, 3), 3);
    sleep_ms(1000); /* the new origins are checked and the snapshot is everywhere */

    /* Clients 0 and 1 have sessions on eu-a; client 2 has never come. */
    assert_sticky_from(clients[0], "eu-a\n");
    assert_sticky_from(clients[1], "eu-a\n");
    snprintf(cmd, sizeof(cmd),
             "origin set 127.0.0.1:%d --service sticky --region eu-west --state draining",
             eu_a.port);
    assert_int_equal(gslbctl(cmd, out, sizeof(out)), 0);
    sleep_ms(700);
    assert_sticky_from(clients[0], "eu-a\n"); /* a recent client stays */
    assert_sticky_from(clients[2], "eu-b\n"); /* a new one does not */

    /* The whole region drains: its recent clients stay, new Europeans go to us-east. */
    snprintf(cmd, sizeof(cmd),
             "origin set 127.0.0.1:%d --service sticky --region eu-west --state enabled && "
             "%s/gslbctl --db %s region set eu-west --state draining",
             eu_a.port, build, db_path);
    assert_int_equal(gslbctl(cmd, out, sizeof(out)), 0);
    sleep_ms(700);
    assert_sticky_from(clients[1], "eu-a\n");
    assert_sticky_from(clients[2], "eu-b\n"); /* seen at eu-b a moment ago */
    assert_sticky_from("81.2.69.160", "us-east\n");
    assert_int_equal(gslbctl("region set eu-west --state active", out, sizeof(out)), 0);
    proc_stop(&eu_a, SIGKILL);
    proc_stop(&eu_b, SIGKILL);
}

/* ---- https checks, against Debian's openssl s_server ---- */

static void https_checks_pass_against_tls_and_fail_against_plain_http(void **state)
{
    (void)state;
    char cmd[4096], out[8192], cert[160], key[160];
    make_certificate("localhost", "localhost", cert, key);
    tls_server = tls_server_start(cert, key);
    int port = tls_server.port;
    /* service "secure": its eu-west pool is the TLS server, a "tls" origin whose pool asks for
     * http checks (they go out as https: its port speaks TLS), its us-east pool a plain HTTP
     * server that answers at once (gslbd's own metrics listener: 400 to a TLS hello), checked
     * with https. */
    snprintf(cmd, sizeof(cmd),
             "service add secure --host secure.example.com && %s/gslbctl --db %s origin add "
             "127.0.0.1:%d --service secure --region eu-west --tls yes --tls-verify no && "
             "%s/gslbctl --db %s origin add "
             "127.0.0.1:%d --service secure --region us-east && %s/gslbctl --db %s pool set "
             "--service secure --region eu-west --check-type http --check-path / && "
             "%s/gslbctl --db %s pool set --service secure --region us-east --check-type https",
             build, db_path, port, build, db_path, gslbd.metrics_port, build, db_path, build,
             db_path);
    assert_int_equal(gslbctl(cmd, out, sizeof(out)), 0);
    assert_true(wait_region("secure/us-east", 0, 5000) > 0);
    assert_true(wait_region("secure/eu-west", 1, 3000) > 0);
    sleep_ms(1000); /* several https checks have passed by now */
    assert_int_equal(region_up("secure/eu-west"), 1);
    assert_int_equal(gslbctl("health --history 50", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "origin secure/us-east/"));
    if (strstr(out, "last: TLS: ") == NULL)
        fail_msg("no TLS failure in:\n%s", out);
    proc_stop(&tls_server, SIGTERM);
    assert_true(wait_region("secure/eu-west", 0, 3000) > 0);
}

/* ---- a thousand origins ---- */

struct load {
    atomic_bool stop;
    atomic_long ok, failed;
    long latency_us[20000];
    atomic_long n_latency;
};

static const char *load_request;

static void *load_main(void *arg)
{
    struct load *l = arg;
    int64_t start = now_ms();
    for (long i = 0; i < 20000 && !atomic_load(&l->stop) && now_ms() - start < 30000; i++) {
        struct resp r;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int status = request(gslbd.port, load_request, &r);
        clock_gettime(CLOCK_MONOTONIC, &b);
        resp_free(&r);
        atomic_fetch_add(status == 200 ? &l->ok : &l->failed, 1);
        long n = atomic_fetch_add(&l->n_latency, 1);
        l->latency_us[n] = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
        sleep_ms(5);
    }
    return NULL;
}

static int long_compare(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Requests <raw> one after another for <ms>; prints and returns how many failed. */
static long load_run(const char *what, const char *raw, int ms)
{
    struct load *load = calloc(1, sizeof(*load));
    pthread_t thread;
    load_request = raw;
    assert_true(pthread_create(&thread, NULL, load_main, load) == 0);
    sleep_ms(ms);
    atomic_store(&load->stop, true);
    pthread_join(thread, NULL);
    long n = atomic_load(&load->n_latency), failed = atomic_load(&load->failed);
    assert_true(n > 100);
    qsort(load->latency_us, (size_t)n, sizeof(long), long_compare);
    printf("# %s: %ld requests, %ld failed, latency p50 %ld us, p99 %ld us, max %ld us\n", what, n,
           failed, load->latency_us[n / 2], load->latency_us[n * 99 / 100],
           load->latency_us[n - 1]);
    free(load);
    return failed;
}

/* The sum of every origin's check count in the metrics, and how many origins report one. */
static long checks_done(int *origins_out)
{
    struct resp r;
    long total = 0;
    int origins = 0;
    request(gslbd.metrics_port, "GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n", &r);
    for (const char *p = r.body; p && (p = strstr(p, "gslb_health_check_duration_seconds_count{"));
         p++) {
        const char *value = strstr(p, "} ");
        total += atol(value + 2);
        origins++;
    }
    resp_free(&r);
    *origins_out = origins;
    return total;
}

static void a_thousand_origins_checked_every_second_leave_requests_alone(void **state)
{
    (void)state;
    /* 20 regions x 50 services, one origin per pool, each pointing at one of the three origin
     * processes: a thousand checks per second through the prober's one event loop. */
    size_t cap = 1 << 20, len = 0;
    char *topo = malloc(cap);
    int ports[3] = {eu1.port, eu2.port, us.port};
    len += (size_t)snprintf(topo + len, cap - len, "{\"regions\": [");
    for (int r = 0; r < 20; r++)
        len += (size_t)snprintf(topo + len, cap - len,
                                "%s{\"name\": \"r%d\", \"lat\": %d, \"lon\": %d}", r ? "," : "", r,
                                -60 + r * 6, -170 + r * 17);
    len += (size_t)snprintf(topo + len, cap - len, "], \"services\": [");
    for (int s = 0; s < 50; s++) {
        len += (size_t)snprintf(topo + len, cap - len,
                                "%s{\"name\": \"s%d\", \"hosts\": [\"s%d.example.com\"], "
                                "\"pools\": [",
                                s ? "," : "", s, s);
        for (int r = 0; r < 20; r++)
            len += (size_t)snprintf(topo + len, cap - len,
                                    "%s{\"region\": \"r%d\", \"check\": {\"interval_ms\": 1000},"
                                    " \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}",
                                    r ? "," : "", r, ports[(s * 20 + r) % 3]);
        len += (size_t)snprintf(topo + len, cap - len, "]}");
    }
    snprintf(topo + len, cap - len, "]}");
    assert_int_equal(load_run("3 origins checked (baseline)",
                              "GET / HTTP/1.1\r\nHost: www.example.com\r\n"
                              "X-Forwarded-For: 81.2.69.142\r\n\r\n",
                              3000),
                     0);
    topology_import(db_path, topo);
    free(topo);

    int origins = 0;
    int64_t start = now_ms();
    while (now_ms() - start < 5000 && (checks_done(&origins), origins < 1000))
        sleep_ms(100);
    assert_int_equal(origins, 1000);

    long before = checks_done(&origins);
    int64_t t0 = now_ms();
    assert_int_equal(load_run("1000 origins checked every second",
                              "GET / HTTP/1.1\r\nHost: s7.example.com\r\n"
                              "X-Forwarded-For: 81.2.69.142\r\n\r\n",
                              4000),
                     0);
    long after = checks_done(&origins);
    double rate = (double)(after - before) * 1000.0 / (double)(now_ms() - t0);
    printf("# the prober ran %.0f checks/s\n", rate);
    /* About every origin once a second (intervals drift by up to 10% either way). */
    assert_true(rate > 700.0); /* 850-1100 measured; under ASan on a loaded machine 885 */
}

static void exits_cleanly(void **state)
{
    (void)state;
    gslbd_stop(&gslbd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_region_below_its_quorum_gives_its_clients_to_the_next),
        cmocka_unit_test(manual_failback_holds_the_region_until_an_operator_resumes_it),
        cmocka_unit_test(a_region_handed_back_to_the_checks_while_down_is_held_until_resumed),
        cmocka_unit_test(gslbctl_pool_set_changes_the_quorum_and_names_bad_fields),
        cmocka_unit_test(metrics_report_check_latency_per_origin),
        cmocka_unit_test(draining_lets_requests_in_flight_finish_and_takes_no_new_ones),
        cmocka_unit_test(draining_a_sticky_origin_or_region_lets_its_recent_clients_finish),
        cmocka_unit_test(https_checks_pass_against_tls_and_fail_against_plain_http),
        cmocka_unit_test(a_thousand_origins_checked_every_second_leave_requests_alone),
        cmocka_unit_test(exits_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

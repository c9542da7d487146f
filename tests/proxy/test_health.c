/* tests/proxy/test_health.c - health checking end to end: the real gslbd with its prober, real
 * origin processes killed and restarted on their ports, continuous load through the proxy, and
 * the state the daemon records in SQLite. Measured detection and failback times are printed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
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

#define INTERVAL_MS 200
#define TIMEOUT_MS  200
#define FALL        2
#define HOLDDOWN_MS 1500

static struct proc eu, us, gslbd;
static char topology[2048]; /* the group's, as imported */
static char interval[16], timeout[16], fall[16], holddown[16], webhook[64];
static const char *daemon_flags[] = {"--health-checks",
                                     "tcp",
                                     "--health-interval",
                                     interval,
                                     "--health-timeout",
                                     timeout,
                                     "--health-fall",
                                     fall,
                                     "--health-rise",
                                     "2",
                                     "--failback-holddown",
                                     holddown,
                                     "--access-log",
                                     "",
                                     "--health-webhook",
                                     webhook,
                                     NULL};

/* ---- a webhook receiver: keeps the bodies of the POSTs it gets ---- */

static int hook_fd;
static atomic_bool hook_stop;
static pthread_t hook_thread;
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static char hook_bodies[16384];

static void *hook_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&hook_stop)) {
        int fd = accept(hook_fd, NULL, NULL);
        if (fd < 0)
            continue; /* the 200 ms accept timeout: look at hook_stop again */
        char buf[4096];
        size_t len = 0;
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        for (;;) {
            char *end = memmem(buf, len, "\r\n\r\n", 4);
            const char *cl = end ? strcasestr(buf, "content-length:") : NULL;
            if (end && cl && len >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 15)) {
                pthread_mutex_lock(&hook_lock);
                strncat(hook_bodies, end + 4, sizeof(hook_bodies) - strlen(hook_bodies) - 1);
                pthread_mutex_unlock(&hook_lock);
                break;
            }
            ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
        }
        const char *ok =
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!send(fd, ok, strlen(ok), MSG_NOSIGNAL);
        close(fd);
    }
    return NULL;
}

static void hook_start(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    struct timeval tv = {0, 200000};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    hook_fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(hook_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(bind(hook_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(hook_fd, 16), 0);
    getsockname(hook_fd, (struct sockaddr *)&sin, &len);
    snprintf(webhook, sizeof(webhook), "http://127.0.0.1:%d/hooks/gslb", ntohs(sin.sin_port));
    assert_int_equal(pthread_create(&hook_thread, NULL, hook_main, NULL), 0);
}

static bool hook_received(const char *text, int limit_ms)
{
    for (int64_t start = now_ms(); now_ms() - start < limit_ms; sleep_ms(20)) {
        pthread_mutex_lock(&hook_lock);
        bool found = strstr(hook_bodies, text) != NULL;
        pthread_mutex_unlock(&hook_lock);
        if (found)
            return true;
    }
    printf("# webhook bodies so far: %s\n", hook_bodies);
    return false;
}

/* ---- continuous load ---- */

struct load {
    atomic_bool stop;
    atomic_long ok, failed, from_us, from_eu;
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    int64_t start = now_ms();
    struct conn *c = NULL;
    for (long i = 0; i < 200000 && !atomic_load(&l->stop) && now_ms() - start < 30000; i++) {
        if (c == NULL)
            c = conn_open(gslbd.port);
        struct resp r;
        conn_send(
            c, "GET / HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n");
        bool complete = conn_response(c, &r, false);
        if (complete && r.status == 200) {
            atomic_fetch_add(&l->ok, 1);
            atomic_fetch_add(strcmp(r.body, "us-east\n") == 0 ? &l->from_us : &l->from_eu, 1);
        } else {
            atomic_fetch_add(&l->failed, 1);
            fprintf(stderr, "# failed request: status %d\n", complete ? r.status : -1);
        }
        const char *connection = complete ? resp_header(&r, "connection") : "close";
        if (connection && strcmp(connection, "close") == 0) {
            conn_close(c);
            c = NULL;
        }
        resp_free(&r);
        sleep_ms(2);
    }
    if (c)
        conn_close(c);
    return NULL;
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    harness_init("gslb-health");
    hook_start();
    eu = origin_start("eu-west", NULL, 0);
    us = origin_start("us-east", NULL, 0);
    snprintf(topology, sizeof(topology),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26},"
             " {\"name\": \"us-east\", \"lat\": 39.04, \"lon\": -77.49}],"
             " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\","
             "    \"check\": {\"type\": \"http\", \"path\": \"/status/204\", \"expect\": "
             "\"200-299\"}}]},"
             "  {\"region\": \"us-east\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]}]}",
             eu.port, us.port);
    topology_import(db_path, topology);
    snprintf(interval, sizeof(interval), "%dms", INTERVAL_MS);
    snprintf(timeout, sizeof(timeout), "%dms", TIMEOUT_MS);
    snprintf(fall, sizeof(fall), "%d", FALL);
    snprintf(holddown, sizeof(holddown), "%dms", HOLDDOWN_MS);
    gslbd = gslbd_start(daemon_flags);
    assert_int_equal(wait_region("www/eu-west", 1, 3000) > 0, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    proc_stop(&gslbd, SIGKILL);
    proc_stop(&eu, SIGKILL);
    proc_stop(&us, SIGKILL);
    atomic_store(&hook_stop, true);
    pthread_join(hook_thread, NULL);
    close(hook_fd);
    harness_fini();
    return 0;
}

/* ---- tests ---- */

static void fails_over_without_failed_requests_and_fails_back_once_after_the_holddown(void **state)
{
    (void)state;
    struct load load = {0};
    pthread_t thread;
    int transitions_before = region_transitions("www/eu-west");
    assert_int_equal(pthread_create(&thread, NULL, load_main, &load), 0);
    sleep_ms(500);
    assert_true(atomic_load(&load.from_eu) > 0);

    /* The European origin dies. */
    int port = eu.port;
    int64_t killed = now_ms();
    proc_stop(&eu, SIGKILL);
    int64_t down = wait_region("www/eu-west", 0, 5000);
    assert_true(down > 0);
    int64_t detection = down - killed;
    long eu_before = atomic_load(&load.from_eu);
    sleep_ms(500);
    assert_true(atomic_load(&load.from_us) > 0); /* the clients moved to us-east */

    /* It comes back: the region returns after the hold-down, not before. */
    eu = origin_start("eu-west", NULL, port);
    int64_t restarted = now_ms();
    int64_t up = wait_region("www/eu-west", 1, 10000);
    assert_true(up > 0);
    int64_t failback = up - restarted;
    sleep_ms(500);
    atomic_store(&load.stop, true);
    pthread_join(thread, NULL);

    printf("# detection %lld ms (bound: interval x fall + timeout = %d ms + one check's jitter),"
           " failback %lld ms (hold-down %d ms), %ld requests, %ld failed\n",
           (long long)detection, INTERVAL_MS * FALL + TIMEOUT_MS, (long long)failback, HOLDDOWN_MS,
           atomic_load(&load.ok) + atomic_load(&load.failed), atomic_load(&load.failed));
    assert_int_equal(atomic_load(&load.failed), 0);
    /* interval x fall + timeout, plus one interval's +10% drift and the prober's 100 ms tick */
    assert_true(detection <= INTERVAL_MS * FALL + TIMEOUT_MS + INTERVAL_MS / 5 + 150);
    assert_true(failback >= HOLDDOWN_MS);
    assert_true(failback < HOLDDOWN_MS + 2 * INTERVAL_MS * 2 + 1000);
    assert_true(atomic_load(&load.from_eu) > eu_before); /* served from Europe again */
    assert_int_equal(region_transitions("www/eu-west") - transitions_before, 2);
    /* The webhook heard both. */
    assert_true(hook_received("\"service\":\"www\",\"region\":\"eu-west\",\"state\":\"down\","
                              "\"reason\":\"no healthy origin left\"",
                              2000));
    assert_true(hook_received("\"region\":\"eu-west\",\"state\":\"up\"", 2000));
}

static void a_flapping_origin_moves_its_region_at_most_once_per_holddown(void **state)
{
    (void)state;
    int transitions_before = region_transitions("www/eu-west");
    int port = eu.port;
    /* Down and up every 400 ms for 3 s: never healthy for the 1.5 s hold-down. */
    for (int i = 0; i < 4; i++) {
        proc_stop(&eu, SIGKILL);
        sleep_ms(400);
        eu = origin_start("eu-west", NULL, port);
        sleep_ms(400);
    }
    int during = region_transitions("www/eu-west") - transitions_before;
    assert_true(during <= 1);
    assert_true(wait_region("www/eu-west", 1, 5000) > 0); /* steady now: back, once */
    assert_int_equal(region_transitions("www/eu-west") - transitions_before, during == 0 ? 0 : 2);
}

static void gslbctl_health_shows_the_board_and_the_history(void **state)
{
    (void)state;
    char cmd[512], line[512], all[8192] = "";
    snprintf(cmd, sizeof(cmd), "%s/gslbctl --db %s health --history 5", build, db_path);
    FILE *out = popen(cmd, "r");
    while (fgets(line, sizeof(line), out))
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    assert_int_equal(pclose(out), 0);
    assert_non_null(strstr(all, "region www/eu-west"));
    assert_non_null(strstr(all, "region www/us-east"));
    assert_non_null(strstr(all, "origin www/us-east/127.0.0.1:"));
    assert_non_null(strstr(all, "recent changes"));
    assert_non_null(strstr(all, "consecutive failed checks, last: connect:"));
}

static void an_http_check_fails_on_an_unexpected_status(void **state)
{
    (void)state;
    char err[512];
    struct db *db = db_open(db_path, err, sizeof(err));
    struct db_topology *topo = NULL;
    assert_int_equal(db_topology_load(db, &topo, err, sizeof(err)), 0);
    /* Expect 200 exactly; /status/204 answers 204. */
    struct db_origin o = topo->services[0].pools[0].origins[0];
    char expect[] = "200";
    o.check.expect = expect;
    assert_int_equal(db_origin_set(db, "www", "eu-west", &o, "test", err, sizeof(err)), 0);
    db_topology_free(topo);
    db_close(db);
    assert_true(wait_region("www/eu-west", 0, 5000) > 0);
    FILE *f = NULL;
    char cmd[512], line[512], all[8192] = "";
    snprintf(cmd, sizeof(cmd), "%s/gslbctl --db %s health --history 3", build, db_path);
    f = popen(cmd, "r");
    while (fgets(line, sizeof(line), f))
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    pclose(f);
    assert_non_null(strstr(all, "HTTP 204 on /status/204"));
}

static void metrics_show_origin_and_region_health(void **state)
{
    (void)state;
    struct resp r;
    assert_int_equal(request(gslbd.metrics_port, "GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n", &r),
                     200);
    /* The previous test made eu-west's check fail: its origin and region read 0. */
    assert_non_null(strstr(r.body, "gslb_region_up{service=\"www\",region=\"eu-west\"} 0\n"));
    assert_non_null(strstr(r.body, "gslb_region_up{service=\"www\",region=\"us-east\"} 1\n"));
    assert_non_null(strstr(r.body, "gslb_origin_up{service=\"www\",region=\"us-east\",origin="));
    resp_free(&r);
}

static void set_region_health(const char *name, enum db_health_force force)
{
    char err[512];
    struct db *db = db_open(db_path, err, sizeof(err));
    struct db_topology *topo = NULL;
    assert_int_equal(db_topology_load(db, &topo, err, sizeof(err)), 0);
    struct db_region r = *db_topology_region(topo, name);
    r.force = force;
    assert_int_equal(db_region_set(db, &r, "test", err, sizeof(err)), 0);
    db_topology_free(topo);
    db_close(db);
}

static char *get_body(void)
{
    struct resp r;
    request(gslbd.port, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n", &r);
    return r.body;
}

static void operator_overrides_apply_within_a_second_and_survive_a_restart(void **state)
{
    (void)state;
    /* eu-west is down (its check fails): force it up, and the Europeans come back at once. */
    set_region_health("eu-west", DB_FORCE_UP);
    int64_t start = now_ms();
    assert_true(wait_region("www/eu-west", 1, 2000) > 0);
    assert_true(now_ms() - start < 1000);
    char *body = get_body();
    assert_string_equal(body, "eu-west\n");
    free(body);

    /* Forced down: the Europeans go to us-east, and stay there across a restart. */
    set_region_health("eu-west", DB_FORCE_DOWN);
    assert_true(wait_region("www/eu-west", 0, 2000) > 0);
    gslbd_stop(&gslbd);
    gslbd = gslbd_start(daemon_flags);
    sleep_ms(300);
    body = get_body();
    assert_string_equal(body, "us-east\n");
    free(body);

    /* Lifted: the checks rule again (the failing check keeps the region out). */
    set_region_health("eu-west", DB_FORCE_AUTO);
    sleep_ms(HOLDDOWN_MS + 500);
    assert_int_equal(region_up("www/eu-west"), 0);
    char cmd[512], line[512], all[8192] = "";
    snprintf(cmd, sizeof(cmd), "%s/gslbctl --db %s health --history 20", build, db_path);
    FILE *out = popen(cmd, "r");
    while (fgets(line, sizeof(line), out))
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    pclose(out);
    assert_non_null(strstr(all, "forced up by an operator"));
    assert_non_null(strstr(all, "forced down by an operator"));
}

/* `gslbctl health` of the store, whole. */
static void health_board(char *all, size_t cap)
{
    char cmd[512], line[512];
    snprintf(cmd, sizeof(cmd), "%s/gslbctl --db %s health", build, db_path);
    FILE *out = popen(cmd, "r");
    all[0] = '\0';
    while (fgets(line, sizeof(line), out))
        strncat(all, line, cap - strlen(all) - 1);
    assert_int_equal(pclose(out), 0);
}

/* Whether gslbd's /metrics mentions <text>. */
static bool metrics_mention(const char *text)
{
    struct resp r;
    assert_int_equal(request(gslbd.metrics_port,
                             "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r),
                     200);
    bool found = strstr(r.body, text) != NULL;
    resp_free(&r);
    return found;
}

/* An origin or region taken out of the topology leaves the board (gslbctl health, the console)
 * and /metrics: both kept them for good until 2026-12-07, the board down if they were (found by
 * a code review). */
static void removed_origins_and_regions_leave_the_board(void **state)
{
    (void)state;
    char all[8192];
    struct resp r;
    assert_int_equal(
        request(gslbd.port, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n", &r),
        200);
    resp_free(&r);
    sleep_ms(100); /* counted as the request ends, a moment after its answer */
    assert_true(metrics_mention("region=\"us-east\""));
    health_board(all, sizeof(all));
    assert_non_null(strstr(all, "region www/us-east"));
    char only_eu[1024];
    snprintf(only_eu, sizeof(only_eu),
             "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 53.35, \"lon\": -6.26}],"
             " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
             "  {\"region\": \"eu-west\", \"origins\": [{\"address\": \"127.0.0.1:%d\"}]}]}]}",
             eu.port);
    topology_import(db_path, only_eu);
    for (int64_t end = now_ms() + 3000; now_ms() < end; sleep_ms(100)) {
        health_board(all, sizeof(all));
        if (strstr(all, "us-east") == NULL)
            break;
    }
    if (strstr(all, "us-east"))
        fail_msg("still on the board:\n%s", all);
    assert_non_null(strstr(all, "region www/eu-west"));
    free(get_body()); /* the worker's view of the new topology is made as it serves */
    assert_false(metrics_mention("region=\"us-east\""));
    topology_import(db_path, topology); /* the group's again */
    assert_true(wait_region("www/us-east", 1, 3000) > 0);
}

/* Clients past the descriptor limit leave the prober none to check with: a check that cannot be
 * made here says nothing of the origin (until 2026-12-07 it counted as a failure, and every
 * region went down until the hold-down after the flood; found by a robustness test). */
static void a_check_that_cannot_be_made_here_blames_no_origin(void **state)
{
    (void)state;
    gslbd_stop(&gslbd);
    gslbd_fd_limit = 64;
    gslbd = gslbd_start(daemon_flags);
    gslbd_fd_limit = 0;
    assert_true(wait_region("www/us-east", 1, 3000) > 0);
    struct conn *held[100];
    for (int i = 0; i < 100; i++) {
        held[i] = conn_open(gslbd.port);
        conn_send(held[i], "GET / HTTP/1.1\r\n"); /* accepted, the rest of its head to come */
    }
    assert_true(wait_region("www/us-east", 0, INTERVAL_MS * (FALL + 5)) < 0); /* never down */
    assert_true(proc_log_count(&gslbd, "not checked: Too many open files") > 0);
    for (int i = 0; i < 100; i++)
        conn_close(held[i]);
    sleep_ms(200);
    struct resp r;
    assert_int_equal(
        request(gslbd.port, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n", &r),
        200);
    assert_string_equal(r.body, "us-east\n");
    resp_free(&r);
}

static void exits_cleanly(void **state)
{
    (void)state;
    gslbd_stop(&gslbd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fails_over_without_failed_requests_and_fails_back_once_after_the_holddown),
        cmocka_unit_test(a_flapping_origin_moves_its_region_at_most_once_per_holddown),
        cmocka_unit_test(gslbctl_health_shows_the_board_and_the_history),
        cmocka_unit_test(an_http_check_fails_on_an_unexpected_status),
        cmocka_unit_test(metrics_show_origin_and_region_health),
        cmocka_unit_test(operator_overrides_apply_within_a_second_and_survive_a_restart),
        cmocka_unit_test(removed_origins_and_regions_leave_the_board),
        cmocka_unit_test(a_check_that_cannot_be_made_here_blames_no_origin),
        cmocka_unit_test(exits_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* tests/gslb/test_watch.c - snapshot reloads (gslb/watch.c) against a real SQLite store.
 *
 * Each test gets a fresh database in its own temporary directory and commits changes through a
 * second connection, as gslbctl or the admin API would. Timing assertions use CLOCK_MONOTONIC
 * with generous bounds; the multi-threaded test is meant to run under ASan too, where a reader
 * touching a freed snapshot fails loudly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "gslb/gslb.h"

#define BASE_LAT 50.0

static const char topology[] =
    "{\"regions\": [{\"name\": \"fra\", \"lat\": 50.0, \"lon\": 8.68},"
    " {\"name\": \"nyc\", \"lat\": 40.71, \"lon\": -74.01}],"
    " \"services\": [{\"name\": \"web\", \"hosts\": [\"*\"], \"pools\": ["
    "  {\"region\": \"fra\", \"origins\": [{\"address\": \"10.0.0.1:80\"}]},"
    "  {\"region\": \"nyc\", \"origins\": [{\"address\": \"10.0.1.1:80\"}]}]}]}";

struct fixture {
    char dir[64];
    char path[128];
    struct db *db; /* the writer's connection */
    struct gslb_watch *watch;
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/gslb-test-watch-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/gslb.db", f->dir);
    if ((f->db = db_open(f->path, err, sizeof(err))) == NULL ||
        db_import_json(f->db, topology, strlen(topology), "test", err, sizeof(err)) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    char path[160];
    gslb_watch_stop(f->watch);
    db_close(f->db);
    unlink(f->path);
    snprintf(path, sizeof(path), "%s-wal", f->path);
    unlink(path);
    snprintf(path, sizeof(path), "%s-shm", f->path);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void watch_start(struct fixture *f, int interval_ms)
{
    char err[256] = "";
    f->watch = gslb_watch_start(f->path, interval_ms, err, sizeof(err));
    if (f->watch == NULL)
        fail_msg("gslb_watch_start: %s", err);
}

static int64_t stored_version(struct fixture *f)
{
    int64_t version = -1;
    assert_int_equal(db_config_version(f->db, &version), 0);
    return version;
}

/* Commits new coordinates and state for region fra through the writer's connection; returns the
 * new config version. */
static int64_t fra_set(struct fixture *f, double lat, enum db_region_state state)
{
    struct db_region fra = {
        .name = (char *)(uintptr_t) "fra", .lat = lat, .lon = 8.68, .state = state};
    char err[256];
    if (db_region_set(f->db, &fra, "test", err, sizeof(err)) != 0)
        fail_msg("db_region_set: %s", err);
    return stored_version(f);
}

static const struct gslb_region *region_find(const struct gslb_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->n_regions; i++) {
        if (strcmp(snap->regions[i].name, name) == 0)
            return &snap->regions[i];
    }
    return NULL;
}

/* The same for the main thread, which may fail the test. */
static const struct gslb_region *region_named(const struct gslb_snapshot *snap, const char *name)
{
    const struct gslb_region *region = region_find(snap, name);
    if (region == NULL) {
        fail_msg("no region %s in version %lld", name, (long long)snap->version);
        abort(); /* not reached */
    }
    return region;
}

/* Polls until a snapshot of at least <version> is published; NULL after <timeout_ms>. */
static const struct gslb_snapshot *await_version(struct gslb_watch *watch, int64_t version,
                                                 int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    uint64_t seen = 0;
    do {
        uint64_t generation = gslb_watch_generation(watch);
        if (generation != seen) {
            const struct gslb_snapshot *snap = gslb_watch_acquire(watch);
            if (snap != NULL && snap->version >= version)
                return snap;
            gslb_snapshot_release(snap);
            seen = generation;
        }
        sleep_ms(1);
    } while (now_ms() < deadline);
    return NULL;
}

/* ---- tests ---- */

static void watch_serves_the_stored_version_from_the_start(void **state)
{
    struct fixture *f = *state;
    watch_start(f, 100);
    const struct gslb_snapshot *snap = gslb_watch_acquire(f->watch);
    assert_non_null(snap);
    assert_int_equal(snap->version, stored_version(f));
    assert_int_equal(snap->n_regions, 2);
    assert_int_equal(snap->n_services, 1);
    assert_int_equal(snap->n_origins, 2);
    assert_true(gslb_watch_generation(f->watch) > 0);
    gslb_snapshot_release(snap);
}

static void committed_change_is_published_within_a_second(void **state)
{
    struct fixture *f = *state;
    watch_start(f, 100);
    uint64_t generation = gslb_watch_generation(f->watch);
    double committed = now_ms();
    int64_t version = fra_set(f, BASE_LAT, DB_REGION_DRAINING);
    const struct gslb_snapshot *snap = await_version(f->watch, version, 2000);
    double elapsed = now_ms() - committed;

    assert_non_null(snap);
    if (elapsed >= 1000)
        fail_msg("published %.0f ms after the commit", elapsed);
    assert_int_equal(snap->version, version);
    assert_int_equal(region_named(snap, "fra")->state, DB_REGION_DRAINING);
    assert_true(gslb_watch_generation(f->watch) > generation);
    gslb_snapshot_release(snap);
}

static void unchanged_store_is_not_republished(void **state)
{
    struct fixture *f = *state;
    watch_start(f, 20);
    uint64_t generation = gslb_watch_generation(f->watch);
    const struct gslb_snapshot *before = gslb_watch_acquire(f->watch);
    sleep_ms(300); /* about fifteen polls */
    const struct gslb_snapshot *after = gslb_watch_acquire(f->watch);
    assert_int_equal(gslb_watch_generation(f->watch), generation);
    assert_ptr_equal(after, before);
    gslb_snapshot_release(after);
    gslb_snapshot_release(before);
}

static void old_snapshot_stays_readable_after_a_swap_until_released(void **state)
{
    struct fixture *f = *state;
    watch_start(f, 20);
    const struct gslb_snapshot *old = gslb_watch_acquire(f->watch);
    int64_t version = fra_set(f, BASE_LAT + 1, DB_REGION_DISABLED);
    const struct gslb_snapshot *fresh = await_version(f->watch, version, 2000);
    assert_non_null(fresh);
    assert_ptr_not_equal(fresh, old);

    /* The slot no longer holds <old>; our reference keeps every part of it alive. */
    assert_true(old->version < fresh->version);
    assert_int_equal(region_named(old, "fra")->state, DB_REGION_ACTIVE);
    assert_true(region_named(old, "fra")->lat == BASE_LAT);
    assert_int_equal(region_named(fresh, "fra")->state, DB_REGION_DISABLED);
    assert_ptr_equal(gslb_service_find(old, "www.example.com"), &old->services[0]);
    assert_string_equal(old->services[0].pools[0].origins[0].address, "10.0.0.1:80");
    struct gslb_decision d;
    assert_true(gslb_decide(old, &old->services[0], NULL, NULL, NULL, &d));
    assert_string_equal(old->regions[d.candidates[d.chosen].region].name, "fra");
    assert_true(gslb_decide(fresh, &fresh->services[0], NULL, NULL, NULL, &d));
    assert_string_equal(fresh->regions[d.candidates[d.chosen].region].name, "nyc");
    gslb_snapshot_release(old);
    gslb_snapshot_release(fresh);
}

static void watch_on_a_missing_directory_fails_with_a_message(void **state)
{
    struct fixture *f = *state;
    char path[200], err[256] = "";
    snprintf(path, sizeof(path), "%s/missing/gslb.db", f->dir);
    assert_null(gslb_watch_start(path, 100, err, sizeof(err)));
    assert_true(strlen(err) > 0);
    assert_non_null(strstr(err, path));
}

/* Runs <sql> on the store through a connection of our own, behind db/'s back. */
static void raw_exec(struct fixture *f, const char *sql)
{
    sqlite3 *conn = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(f->path, &conn), SQLITE_OK);
    sqlite3_busy_timeout(conn, 5000);
    if (sqlite3_exec(conn, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(conn);
}

static void failed_reload_keeps_the_current_snapshot_until_one_succeeds(void **state)
{
    struct fixture *f = *state;
    watch_start(f, 20);
    const struct gslb_snapshot *current = gslb_watch_acquire(f->watch);
    uint64_t generation = gslb_watch_generation(f->watch);

    /* A newer version the watch cannot load: a table it reads is gone. */
    raw_exec(f, "BEGIN; ALTER TABLE rules RENAME TO rules_away;"
                " UPDATE config_version SET version = version + 1; COMMIT");
    sleep_ms(300); /* about fifteen failed attempts */
    const struct gslb_snapshot *still = gslb_watch_acquire(f->watch);
    assert_ptr_equal(still, current);
    assert_int_equal(gslb_watch_generation(f->watch), generation);
    gslb_snapshot_release(still);

    /* Repaired: the next attempt publishes the newest version. */
    raw_exec(f, "ALTER TABLE rules_away RENAME TO rules");
    int64_t version = fra_set(f, BASE_LAT + 2, DB_REGION_ACTIVE);
    const struct gslb_snapshot *fresh = await_version(f->watch, version, 2000);
    assert_non_null(fresh);
    assert_int_equal(fresh->version, version);
    assert_true(region_named(fresh, "fra")->lat == BASE_LAT + 2);
    gslb_snapshot_release(fresh);
    gslb_snapshot_release(current);
}

/* ---- concurrent readers ---- */

#define READERS          4
#define CHANGES          20
#define READER_MAX_LOOPS 20000000
#define READER_MAX_MS    10000

struct reader {
    pthread_t thread;
    struct gslb_watch *watch;
    atomic_bool *stop;
    int64_t base_version;
    /* Results, read by the main thread after the join: cmocka cannot fail from a thread. */
    size_t loops, nulls, backwards, inconsistent, versions;
    int64_t last_version;
};

/* Whether <snap> is whole: commit k set fra's latitude to BASE_LAT + k / 2 at version base + k. */
static bool reader_snapshot_ok(const struct reader *r, const struct gslb_snapshot *snap)
{
    const struct gslb_region *fra = region_find(snap, "fra");
    double lat = BASE_LAT + (double)(snap->version - r->base_version) / 2;
    return fra != NULL && fra->lat == lat && snap->n_services == 1 &&
           strcmp(snap->services[0].pools[1].origins[0].address, "10.0.1.1:80") == 0;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    const struct gslb_snapshot *held = NULL; /* kept across swaps, checked when dropped */
    double deadline = now_ms() + READER_MAX_MS;
    r->last_version = -1;
    for (size_t i = 0; i < READER_MAX_LOOPS && !atomic_load(r->stop); i++) {
        if (i % 4096 == 0 && now_ms() > deadline)
            break;
        const struct gslb_snapshot *snap = gslb_watch_acquire(r->watch);
        r->loops++;
        if (snap == NULL) {
            r->nulls++;
            continue;
        }
        if (snap->version < r->last_version)
            r->backwards++;
        if (snap->version != r->last_version)
            r->versions++;
        r->last_version = snap->version;
        if (!reader_snapshot_ok(r, snap))
            r->inconsistent++;
        if (i % 1000 == 0) {
            if (held != NULL && !reader_snapshot_ok(r, held))
                r->inconsistent++;
            gslb_snapshot_release(held);
            held = gslb_snapshot_ref(snap);
        }
        gslb_snapshot_release(snap);
    }
    if (held != NULL && !reader_snapshot_ok(r, held))
        r->inconsistent++;
    gslb_snapshot_release(held);
    return NULL;
}

static void readers_always_get_a_snapshot_while_changes_are_published(void **state)
{
    struct fixture *f = *state;
    struct reader readers[READERS];
    atomic_bool stop;
    int64_t base, version = 0;
    size_t most_versions = 0;

    atomic_init(&stop, false);
    watch_start(f, 10);
    base = stored_version(f);
    for (int i = 0; i < READERS; i++) {
        memset(&readers[i], 0, sizeof(readers[i]));
        readers[i].watch = f->watch;
        readers[i].stop = &stop;
        readers[i].base_version = base;
        assert_int_equal(pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]), 0);
    }
    for (int k = 1; k <= CHANGES; k++) {
        version = fra_set(f, BASE_LAT + (double)k / 2, DB_REGION_ACTIVE);
        assert_int_equal(version, base + k);
        sleep_ms(15);
    }
    const struct gslb_snapshot *last = await_version(f->watch, version, 2000);
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(readers[i].thread, NULL);

    assert_non_null(last);
    assert_int_equal(last->version, version);
    gslb_snapshot_release(last);
    for (int i = 0; i < READERS; i++) {
        const struct reader *r = &readers[i];
        if (r->nulls || r->backwards || r->inconsistent || r->loops == 0)
            fail_msg("reader %d: %zu loops, %zu without a snapshot, %zu going back, %zu torn", i,
                     r->loops, r->nulls, r->backwards, r->inconsistent);
        most_versions = r->versions > most_versions ? r->versions : most_versions;
    }
    assert_true(most_versions > 1); /* the readers did run across swaps */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(watch_serves_the_stored_version_from_the_start,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(committed_change_is_published_within_a_second,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(unchanged_store_is_not_republished, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(old_snapshot_stays_readable_after_a_swap_until_released,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_on_a_missing_directory_fails_with_a_message,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(failed_reload_keeps_the_current_snapshot_until_one_succeeds,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(readers_always_get_a_snapshot_while_changes_are_published,
                                        fixture_setup, fixture_teardown),
    };
    log_threshold = LOG_LEVEL_ERR; /* every reload logs at info level */
    return cmocka_run_group_tests(tests, NULL, NULL);
}

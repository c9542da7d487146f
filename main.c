/* main.c - gslbd, the appliance daemon.
 *
 * Today it opens the geo databases and the topology store, keeps the decision snapshot in step
 * with the store, hot-reloads replaced geo databases, and with --demo loads the demo topology and
 * logs the decision for a few well-known addresses. The HTTP edge proxy that will serve clients
 * from these decisions is the next piece (proxy/). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "db/db.h"
#include "geo/geo.h"
#include "gslb/gslb.h"

#define MAX_GEOIP 8

static const char usage_text[] =
    "usage: gslbd [--db PATH] [--geoip SPEC]... [--log-level LEVEL] [--demo] [--check-config]\n"
    "\n"
    "  --db PATH          topology database (default /var/lib/gslb/gslb.db)\n"
    "  --geoip SPEC       MaxMind database, repeatable: PATH[,field=data.path...]\n"
    "                     (default /var/lib/GeoIP/GeoLite2-City.mmdb)\n"
    "  --log-level LEVEL  err, warn, info (default) or debug\n"
    "  --demo             load the embedded demo topology (into --db, default a temporary file)\n"
    "                     and the fetched GeoLite2 City database\n"
    "  --check-config     open everything, report problems and exit\n";

/* Three regions on three continents, each with an origin on loopback. */
static const char demo_topology[] =
    "{\"regions\": ["
    " {\"name\": \"eu-west\", \"display_name\": \"Europe (Dublin)\", \"lat\": 53.3498,"
    "  \"lon\": -6.2603, \"origins\": [{\"address\": \"127.0.0.1:18081\", \"weight\": 1}]},"
    " {\"name\": \"us-east\", \"display_name\": \"US East (Ashburn)\", \"lat\": 39.0438,"
    "  \"lon\": -77.4874, \"origins\": [{\"address\": \"127.0.0.1:18082\", \"weight\": 1}]},"
    " {\"name\": \"ap-southeast\", \"display_name\": \"Asia Pacific (Singapore)\", \"lat\": 1.3521,"
    "  \"lon\": 103.8198, \"origins\": [{\"address\": \"127.0.0.1:18083\", \"weight\": 1}]}]}";

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The GeoLite2 City file fetched by `make deps`, found beside this binary's source tree. */
static const char *demo_geoip(void)
{
    static char path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
    if (n > 0) {
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        if (slash) {
            strcpy(slash, "/../data/geoip/GeoLite2-City.mmdb");
            if (access(path, R_OK) == 0)
                return path;
        }
    }
    return "data/geoip/GeoLite2-City.mmdb";
}

static int demo_prepare(const char *db_path)
{
    char err[512];
    struct db *db = db_open(db_path, err, sizeof(err));
    int rc = db ? db_import_json(db, demo_topology, sizeof(demo_topology) - 1, "gslbd:demo", err,
                                 sizeof(err))
                : -EIO;
    if (rc != 0)
        log_err("demo: %s", err);
    db_close(db);
    return rc;
}

static void demo_explain(struct geo *geo, struct gslb_watch *watch)
{
    static const char *const samples[] = {"81.2.69.142", "8.8.8.8", "1.1.1.1", "2a02:26f0::1",
                                          "10.1.2.3"};
    const struct gslb_snapshot *snap = gslb_watch_acquire(watch);
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        struct ip_addr ip;
        struct geo_result g;
        struct gslb_decision d;
        ip_addr_parse(samples[i], &ip);
        geo_lookup(geo, &ip, &g);
        const struct gslb_service *svc = gslb_service_find(snap, "demo.example");
        if (svc && gslb_decide(snap, svc, &ip, &g, NULL, &d))
            log_info("demo: %s (%s, %s) -> %s (%s)", samples[i], g.country[0] ? g.country : "-",
                     geo_status_name(g.status), snap->regions[d.candidates[d.chosen].region].name,
                     gslb_reason_name(d.candidates[d.chosen].reason));
    }
    gslb_snapshot_release(snap);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"geoip", required_argument, NULL, 'g'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"demo", no_argument, NULL, 'D'},
                                         {"check-config", no_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *db_path = NULL, *geoip[MAX_GEOIP];
    char demo_db[64] = "", err[512];
    size_t n_geoip = 0;
    bool demo = false, check_only = false;
    int c, status = 1;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db_path = optarg;
            break;
        case 'g':
            if (n_geoip == MAX_GEOIP) {
                fprintf(stderr, "gslbd: at most %d --geoip databases\n", MAX_GEOIP);
                return 2;
            }
            geoip[n_geoip++] = optarg;
            break;
        case 'l':
            if (log_level_parse(optarg, &log_threshold) != 0) {
                fprintf(stderr, "gslbd: --log-level: expected err, warn, info or debug\n");
                return 2;
            }
            break;
        case 'D':
            demo = true;
            break;
        case 'c':
            check_only = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (demo && db_path == NULL) {
        snprintf(demo_db, sizeof(demo_db), "/tmp/gslb-demo-%ld.db", (long)getpid());
        db_path = demo_db;
    }
    if (db_path == NULL)
        db_path = "/var/lib/gslb/gslb.db";
    if (n_geoip == 0)
        geoip[n_geoip++] = demo ? demo_geoip() : "/var/lib/GeoIP/GeoLite2-City.mmdb";

    if (demo && demo_prepare(db_path) != 0)
        goto out;
    struct geo *geo = geo_open(geoip, n_geoip, err, sizeof(err));
    if (geo == NULL) {
        log_err("geo: %s", err);
        goto out;
    }
    struct gslb_watch *watch = gslb_watch_start(db_path, 250, err, sizeof(err));
    if (watch == NULL) {
        log_err("gslb: %s", err);
        geo_close(geo);
        goto out;
    }
    if (check_only) {
        log_info("gslbd: configuration OK (db %s)", db_path);
        status = 0;
    } else {
        struct sigaction sa = {.sa_handler = on_stop_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGHUP, SIG_IGN);
        if (demo)
            demo_explain(geo, watch);
        log_info("gslbd: running (db %s); the HTTP proxy is not built yet", db_path);
        for (unsigned tick = 0; !stop_requested; tick++) {
            struct timespec pause = {0, 200 * 1000000L};
            nanosleep(&pause, NULL);
            if (tick % 10 == 9 && geo_reload_changed(geo, err, sizeof(err)) < 0)
                log_err("geo: reload refused, keeping the old database: %s", err);
        }
        log_info("gslbd: stopping");
        status = 0;
    }
    gslb_watch_stop(watch);
    geo_close(geo);
out:
    if (demo_db[0]) {
        char wal[80];
        unlink(demo_db);
        snprintf(wal, sizeof(wal), "%s-wal", demo_db);
        unlink(wal);
        snprintf(wal, sizeof(wal), "%s-shm", demo_db);
        unlink(wal);
    }
    return status;
}

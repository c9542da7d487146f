/* main.c - gslbd, the appliance daemon: reads its settings (config file, then flags), opens the
 * geo databases and the topology store, starts the snapshot watch and the edge proxy, and runs
 * until SIGTERM. Signals are taken synchronously by this thread (sigtimedwait), which also checks
 * the geo databases for replacement every two seconds.
 *
 * Config file: one "key value" (or "key = value") per line, '#' starts a comment. The keys are the
 * long flags without "--"; a flag given on the command line wins over the file, and a repeatable
 * key given as a flag (listen, geoip, trusted-proxies) replaces the file's list. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "common/log.h"
#include "common/units.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "demo/demo.h"
#include "geo/geo.h"
#include "gslb/gslb.h"
#include "proxy/proxy.h"

#define MAX_GEOIP    8
#define MAX_SETTINGS 128

static const char usage_text[] =
    "usage: gslbd [--config FILE] [--demo] [--check-config] [--KEY VALUE]...\n"
    "\n"
    "  --config FILE              settings file (key value per line); flags win over it\n"
    "  --demo                     demo mode: demo origins on loopback, a demo topology, the\n"
    "                             fetched GeoLite2 City, 127.0.0.1:8080, loopback trusted\n"
    "  --check-config             validate everything, print problems and exit\n"
    "  --db PATH                  topology database (/var/lib/gslb/gslb.db)\n"
    "  --geoip SPEC               MaxMind database, repeatable "
    "(/var/lib/GeoIP/GeoLite2-City.mmdb)\n"
    "  --listen ADDR:PORT         repeatable (:8080); --listen-proxy-protocol expects PROXY v1/v2\n"
    "  --listen-tls ADDR:PORT     HTTPS, repeatable, with --tls-cert PEM --tls-key PEM (pairs,\n"
    "                             repeatable: the client's SNI name picks one; SIGHUP reads\n"
    "                             them again); a DER OCSP response in CERT.ocsp is stapled\n"
    "  --origin-ca-file PEM       CAs for \"tls\" origins (the system's); SIGHUP reads it again\n"
    "  --tls-ticket-key-file PATH session ticket keys shared with other machines (none: our\n"
    "                             own, rotated); SIGHUP reads it again\n"
    "  --metrics-listen ADDR:PORT Prometheus /metrics (127.0.0.1:9100; empty disables)\n"
    "  --access-log PATH|-        (-, i.e. stderr); --access-log-format json|combined\n"
    "  --trusted-proxies CIDR,... peers whose X-Forwarded-For / PROXY header is believed (none)\n"
    "  --client-ip-header NAME    the header those peers name the client in (X-Forwarded-For;\n"
    "                             e.g. X-Real-IP, CF-Connecting-IP)\n"
    "  --request-id-header NAME   every forwarded request carries an ID in it, a trusted\n"
    "                             peer's or a new one; logged (none; e.g. X-Request-ID)\n"
    "  --forwarded-header yes|no  also send RFC 7239 Forwarded (no)\n"
    "  --splice yes|no            large plain bodies origin -> client by splice() (yes)\n"
    "  --defer-accept yes|no      accept a client once its first bytes came (yes)\n"
    "  --workers N                event loops (0: one per core)\n"
    "  --log-level err|warn|info|debug\n"
    "  admin console: --admin-listen ADDR:PORT (127.0.0.1:9090; empty disables; anything but\n"
    "    loopback is logged as a warning) --admin-tls-cert PEM --admin-tls-key PEM\n"
    "    --admin-session-ttl 8h (how long a login lasts)\n"
    "  health checks: --health-checks tcp|http|none (tcp; for origins whose own check says\n"
    "    nothing) --health-interval 2s --health-timeout 1s --health-rise 2 --health-fall 3\n"
    "    --failback-holddown 30s (a region comes back after being healthy this long)\n"
    "    --health-webhook http://HOST[:PORT]/PATH (a JSON POST on every region change)\n"
    "  passive checks: --passive-failures 5 (0: off) --passive-ejection 10s\n"
    "    --passive-max-ejected 50%\n"
    "  draining: --sticky-drain-window 10m (sticky clients seen this recently stay on a\n"
    "    draining origin or region; 0: they move at once)\n"
    "  timeouts (ms, s or m): --client-header-timeout 10s --keepalive-timeout 60s\n"
    "    --client-body-timeout 60s --connect-timeout 3s --response-header-timeout 30s\n"
    "    --origin-read-timeout 60s --origin-idle-timeout 30s --shutdown-timeout 30s\n"
    "    --tunnel-timeout 60m (a WebSocket tunnel with no byte either way is closed)\n"
    "    --lingering-time 30s --lingering-timeout 5s (a client still sending when its\n"
    "    connection is closed: what it sends is read and dropped so long, then the close)\n"
    "  limits: --max-header-size 64k --max-headers 100 --max-body-size 0 (unlimited)\n"
    "    --max-connections 10000 --max-idle-per-origin 64 --max-tries 3\n"
    "    --client-sndbuf 0 (each client socket's kernel send buffer; 0: autotuned)\n"
    "  --busy-poll 0 (up to 1s, or in us: how long an idle worker polls before it sleeps; for\n"
    "    VMs whose halted vCPUs wake late: lower latency, more CPU)\n";

struct setting {
    char key[64];
    char *value;
    bool from_flag;
};

struct settings {
    struct setting items[MAX_SETTINGS];
    size_t n;
};

static int settings_add(struct settings *s, const char *key, const char *value, bool from_flag)
{
    if (s->n == MAX_SETTINGS || strlen(key) >= sizeof(s->items[0].key))
        return -EINVAL;
    struct setting *it = &s->items[s->n++];
    snprintf(it->key, sizeof(it->key), "%s", key);
    it->value = xstrdup(value);
    it->from_flag = from_flag;
    return 0;
}

static void settings_free(struct settings *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].value);
    s->n = 0;
}

static int config_file_read(const char *path, struct settings *s, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    if (f == NULL) {
        snprintf(err, errlen, "config: %s: %s", path, strerror(errno));
        return -errno;
    }
    /* Lines of any length (a long trusted-proxies list was cut at 1,023 bytes until
     * 2026-12-07); a comment starts with a '#' that begins the line or follows a blank, so that
     * one inside a value (a path) is kept. */
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        for (char *hash = strchr(line, '#'); hash; hash = strchr(hash + 1, '#')) {
            if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
                *hash = '\0';
                break;
            }
        }
        char *key = line + strspn(line, " \t");
        size_t klen = strcspn(key, " \t=\r\n");
        if (klen == 0)
            continue;
        char *value = key + klen;
        value += strspn(value, " \t");
        if (*value == '=')
            value += 1 + strspn(value + 1, " \t");
        size_t vlen = strcspn(value, "\r\n");
        while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
            vlen--;
        key[klen] = '\0';
        value[vlen] = '\0';
        if (settings_add(s, key, value, false) != 0) {
            snprintf(err, errlen, "config: %s:%d: too many settings", path, lineno);
            free(line);
            fclose(f);
            return -EINVAL;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

struct daemon_config {
    struct proxy_config proxy;
    struct gslb_prober_config health;
    const char *db_path;
    const char *geoip[MAX_GEOIP];
    size_t n_geoip;
    enum log_level log_level;
    struct admin_config admin;
};

/* The health-check settings (gslb/ has no config parser: its settings are a plain struct). */
static int health_config_set(struct gslb_prober_config *h, const char *key, const char *value,
                             char *err, size_t errlen)
{
    char *end;
    long n = strtol(value, &end, 10); /* for rise and fall */
    int ms = 0;
    bool duration_ok = parse_duration_ms(value, &ms) == 0;
    if (strcmp(key, "health-webhook") == 0) {
        h->webhook_url = value; /* checked by gslb_prober_start() */
    } else if (strcmp(key, "health-checks") == 0) {
        if (strcmp(value, "tcp") == 0)
            h->default_type = DB_CHECK_TCP;
        else if (strcmp(value, "http") == 0)
            h->default_type = DB_CHECK_HTTP;
        else if (strcmp(value, "none") == 0)
            h->default_type = DB_CHECK_NONE;
        else
            goto bad;
    } else if (strcmp(key, "health-interval") == 0 && duration_ok && ms >= 100) {
        h->interval_ms = ms;
    } else if (strcmp(key, "health-timeout") == 0 && duration_ok && ms >= 10) {
        h->timeout_ms = ms;
    } else if (strcmp(key, "failback-holddown") == 0 && duration_ok) {
        h->holddown_ms = ms;
    } else if ((strcmp(key, "health-rise") == 0 || strcmp(key, "health-fall") == 0) &&
               units_plain_number(value, end) && *end == '\0' && n >= 1 && n <= 100) {
        *(key[7] == 'r' ? &h->rise : &h->fall) = (int)n;
    } else {
        goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen, "%s: invalid value '%s'", key, value);
    return -EINVAL;
}

/* Applies <s> to <cfg>: defaults first, then the file, then flags (see the banner). */
static int config_build(const struct settings *s, struct daemon_config *cfg, char *err,
                        size_t errlen)
{
    static const char *const lists[] = {
        "listen", "listen-proxy-protocol", "listen-tls", "tls-cert", "tls-key",
        "geoip",  "trusted-proxies"};
    enum { N_LISTS = sizeof(lists) / sizeof(lists[0]) };
    bool flag_list[N_LISTS] = {false};
    for (size_t i = 0; i < s->n; i++) {
        bool list = false;
        for (size_t l = 0; l < N_LISTS; l++) {
            bool is = strcmp(s->items[i].key, lists[l]) == 0;
            list |= is;
            flag_list[l] |= is && s->items[i].from_flag;
        }
        /* A setting the file gives twice is a mistake, as nginx takes it (the last one won
         * silently until 2026-12-07); flags may repeat, the last one winning. */
        for (size_t j = i + 1; !list && !s->items[i].from_flag && j < s->n; j++) {
            if (!s->items[j].from_flag && strcmp(s->items[i].key, s->items[j].key) == 0) {
                snprintf(err, errlen, "%s: given more than once in the config file",
                         s->items[i].key);
                return -EINVAL;
            }
        }
    }
    for (int pass = 0; pass < 2; pass++) { /* file settings, then flags */
        for (size_t i = 0; i < s->n; i++) {
            const struct setting *it = &s->items[i];
            if (it->from_flag != (pass == 1))
                continue;
            bool skip = false;
            for (size_t l = 0; l < N_LISTS; l++)
                skip |= !it->from_flag && flag_list[l] && strcmp(it->key, lists[l]) == 0;
            if (skip)
                continue;
            if (strcmp(it->key, "db") == 0) {
                cfg->db_path = it->value;
            } else if (strcmp(it->key, "geoip") == 0) {
                if (cfg->n_geoip == MAX_GEOIP) {
                    snprintf(err, errlen, "geoip: at most %d databases", MAX_GEOIP);
                    return -EINVAL;
                }
                cfg->geoip[cfg->n_geoip++] = it->value;
            } else if (strncmp(it->key, "health-", 7) == 0 ||
                       strcmp(it->key, "failback-holddown") == 0) {
                int rc = health_config_set(&cfg->health, it->key, it->value, err, errlen);
                if (rc != 0)
                    return rc;
            } else if (strncmp(it->key, "admin-", 6) == 0) {
                int rc = admin_config_set(&cfg->admin, it->key, it->value, err, errlen);
                if (rc == -ENOENT)
                    snprintf(err, errlen, "unknown setting '%s' (see gslbd --help)", it->key);
                if (rc != 0)
                    return rc;
            } else if (strcmp(it->key, "log-level") == 0) {
                if (log_level_parse(it->value, &cfg->log_level) != 0) {
                    snprintf(err, errlen, "log-level: expected err, warn, info or debug");
                    return -EINVAL;
                }
            } else {
                int rc = proxy_config_set(&cfg->proxy, it->key, it->value, err, errlen);
                if (rc == -ENOENT)
                    snprintf(err, errlen, "unknown setting '%s' (see gslbd --help)", it->key);
                if (rc != 0)
                    return rc;
            }
        }
    }
    return 0;
}

static void defaults(struct daemon_config *cfg, bool demo)
{
    memset(cfg, 0, sizeof(*cfg));
    proxy_config_defaults(&cfg->proxy);
    cfg->health = (struct gslb_prober_config){
        .interval_ms = 2000,
        .timeout_ms = 1000,
        .rise = 2,
        .fall = 3,
        .holddown_ms = 30000,
        .default_type = DB_CHECK_TCP,
    };
    cfg->log_level = LOG_LEVEL_INFO;
    admin_config_defaults(&cfg->admin);
    cfg->db_path = "/var/lib/gslb/gslb.db";
    snprintf(cfg->proxy.metrics_listen, sizeof(cfg->proxy.metrics_listen), "127.0.0.1:9100");
    snprintf(cfg->proxy.access_log, sizeof(cfg->proxy.access_log), "-");
    (void)demo;
}

static int demo_prepare(struct demo *demo, const char *db_path)
{
    char err[512];
    const char *json = demo_topology(demo);
    struct db *db = db_open(db_path, err, sizeof(err));
    int rc = db ? db_import_json(db, json, strlen(json), "gslbd:demo", err, sizeof(err)) : -EIO;
    if (rc != 0)
        log_err("demo: %s", err);
    db_close(db);
    return rc;
}

static void remove_db_files(const char *path)
{
    char extra[PATH_MAX];
    unlink(path);
    snprintf(extra, sizeof(extra), "%s-wal", path);
    unlink(extra);
    snprintf(extra, sizeof(extra), "%s-shm", path);
    unlink(extra);
}

int main(int argc, char **argv)
{
    struct settings settings = {0};
    struct daemon_config cfg;
    const char *config_path = NULL;
    bool demo_mode = false, check_only = false;
    char err[512], demo_db[64] = "";
    int status = 1;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(arg, "--demo") == 0) {
            demo_mode = true;
            continue;
        }
        if (strcmp(arg, "--check-config") == 0) {
            check_only = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            fprintf(stderr, "gslbd: unexpected argument '%s'\n\n%s", arg, usage_text);
            return 2;
        }
        char key[64];
        const char *eq = strchr(arg, '='), *value;
        size_t klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (klen >= sizeof(key)) {
            fprintf(stderr, "gslbd: unknown option '%s'\n", arg);
            return 2;
        }
        memcpy(key, arg + 2, klen);
        key[klen] = '\0';
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            fprintf(stderr, "gslbd: --%s needs a value\n", key);
            return 2;
        }
        if (strcmp(key, "config") == 0)
            config_path = value;
        else if (settings_add(&settings, key, value, true) != 0) {
            fprintf(stderr, "gslbd: too many options\n");
            return 2;
        }
    }

    defaults(&cfg, demo_mode);
    if (demo_mode) {
        /* What the README's run command shows: loopback only, loopback trusted for XFF. */
        snprintf(demo_db, sizeof(demo_db), "/tmp/gslb-demo-%ld.db", (long)getpid());
        cfg.db_path = demo_db;
        const char *city = geo_fetched_city_path();
        cfg.geoip[cfg.n_geoip++] = city ? city : "data/geoip/GeoLite2-City.mmdb";
        proxy_config_set(&cfg.proxy, "listen", "127.0.0.1:8080", err, sizeof(err));
        proxy_config_set(&cfg.proxy, "trusted-proxies", "127.0.0.0/8,::1", err, sizeof(err));
    }
    if (config_path && config_file_read(config_path, &settings, err, sizeof(err)) != 0) {
        fprintf(stderr, "gslbd: %s\n", err);
        goto out;
    }
    /* In demo mode the demo's listen/geoip apply unless the user gave their own. */
    for (size_t i = 0; demo_mode && i < settings.n; i++) {
        if (strcmp(settings.items[i].key, "listen") == 0)
            cfg.proxy.n_listen = 0;
        if (strcmp(settings.items[i].key, "geoip") == 0)
            cfg.n_geoip = 0;
    }
    if (config_build(&settings, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "gslbd: %s\n", err);
        status = 2;
        goto out;
    }
    if (cfg.n_geoip == 0)
        cfg.geoip[cfg.n_geoip++] = "/var/lib/GeoIP/GeoLite2-City.mmdb";
    if (cfg.proxy.n_listen == 0)
        proxy_config_set(&cfg.proxy, "listen", ":8080", err, sizeof(err));
    log_threshold = cfg.log_level;

    /* The proxy allocates and frees 64 KiB read buffers at a high rate: keep freed memory in
     * the heap instead of trimming it back to the kernel and faulting it in again. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);

    /* Signals are handled by this thread alone: block them before any thread starts. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct demo *demo = NULL;
    if (demo_mode &&
        ((demo = demo_start(err, sizeof(err))) == NULL || demo_prepare(demo, cfg.db_path) != 0)) {
        log_err("%s", err);
        demo_stop(demo);
        goto out;
    }
    struct geo *geo = geo_open(cfg.geoip, cfg.n_geoip, err, sizeof(err));
    if (geo == NULL) {
        log_err("geo: %s", err);
        demo_stop(demo);
        goto out;
    }
    struct gslb_watch *watch = gslb_watch_start(cfg.db_path, 250, err, sizeof(err));
    if (watch == NULL) {
        log_err("gslb: %s", err);
        geo_close(geo);
        demo_stop(demo);
        goto out;
    }
    cfg.health.db_path = cfg.db_path;
    struct gslb_prober *prober = gslb_prober_start(watch, &cfg.health, err, sizeof(err));
    struct proxy *proxy =
        prober ? proxy_create(&cfg.proxy, geo, watch, prober, err, sizeof(err)) : NULL;
    struct admin *admin = NULL;
    cfg.admin.db_path = cfg.db_path;
    if (proxy == NULL) {
        log_err("proxy: %s", err);
    } else if (cfg.admin.listen[0] && (admin = admin_start(&cfg.admin, geo, watch, prober, proxy,
                                                           err, sizeof(err))) == NULL) {
        log_err("%s", err);
    } else if (check_only) {
        log_info("gslbd: configuration OK");
        status = 0;
    } else {
        for (size_t i = 1; i < cfg.proxy.n_listen; i++)
            log_info("gslbd: listener %zu on %s (port %d)%s%s", i, cfg.proxy.listen[i].address,
                     proxy_listen_port(proxy, i),
                     cfg.proxy.listen[i].proxy_protocol ? " expecting the PROXY protocol" : "",
                     cfg.proxy.listen[i].tls ? " with TLS" : "");
        log_info("gslbd: serving on %s (port %d), metrics on %s (port %d)",
                 cfg.proxy.listen[0].address, proxy_listen_port(proxy, 0),
                 cfg.proxy.metrics_listen[0] ? cfg.proxy.metrics_listen : "(off)",
                 proxy_metrics_port(proxy));
        if (admin)
            log_info("gslbd: admin console on %s%s (port %d)",
                     cfg.admin.tls_cert[0] ? "https://" : "http://", cfg.admin.listen,
                     admin_port(admin));
        if (admin && !admin_listen_is_loopback(cfg.admin.listen))
            log_warn("admin: the console on %s is reachable from other machines%s",
                     cfg.admin.listen,
                     cfg.admin.tls_cert[0] ? ""
                                           : ", without TLS: passwords and sessions cross the "
                                             "network in clear text");
        if (demo_mode)
            log_info("demo: try  curl -H 'X-Forwarded-For: 81.2.69.142' http://127.0.0.1:%d/  "
                     "(Europe) or 8.8.8.8 (America)",
                     proxy_listen_port(proxy, 0));
        for (;;) {
            struct timespec tick = {2, 0};
            int sig = sigtimedwait(&signals, NULL, &tick);
            if (sig == SIGTERM || sig == SIGINT) {
                log_info("gslbd: %s: finishing requests in flight (up to %d ms)",
                         sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.proxy.shutdown_timeout_ms);
                break;
            }
            if (sig == SIGHUP) {
                proxy_reopen_logs(proxy);
                struct settings fresh = {0};
                struct daemon_config again;
                defaults(&again, demo_mode);
                for (size_t i = 0; i < settings.n; i++) {
                    if (settings.items[i].from_flag)
                        settings_add(&fresh, settings.items[i].key, settings.items[i].value, true);
                }
                int rc = config_path ? config_file_read(config_path, &fresh, err, sizeof(err)) : 0;
                if (rc == 0)
                    rc = config_build(&fresh, &again, err, sizeof(err));
                if (rc != 0) {
                    log_err("gslbd: SIGHUP: %s; keeping the running configuration", err);
                } else {
                    log_threshold = again.log_level;
                    char restart[200];
                    if (proxy_reconfigure(proxy, &again.proxy, restart, sizeof(restart), err,
                                          sizeof(err)) != 0)
                        log_err("proxy: SIGHUP: %s; keeping the running TLS certificates and "
                                "origin CAs",
                                err);
                    log_info("gslbd: SIGHUP: logs reopened; timeouts, limits, trusted proxies "
                             "and the client address header, forwarding headers, the target "
                             "check, tries, passive checks, the sticky drain window, "
                             "deferred accepting, TLS certificates and ticket keys, origin CAs "
                             "and the log level applied; databases, health checks and the admin "
                             "console keep theirs until a restart");
                    if (restart[0])
                        log_warn("gslbd: SIGHUP: changed, taking effect at restart: %s", restart);
                }
                settings_free(&fresh);
            }
            if (geo_reload_changed(geo, err, sizeof(err)) < 0)
                log_err("geo: reload refused, keeping the old database: %s", err);
        }
        admin_stop(admin); /* before the proxy, whose counters it reads */
        admin = NULL;
        proxy_shutdown(proxy);
        status = 0;
    }
    admin_stop(admin);
    proxy_destroy(proxy);
    gslb_prober_stop(prober);
    gslb_watch_stop(watch);
    geo_close(geo);
    demo_stop(demo);
    log_info("gslbd: stopped");
out:
    if (demo_db[0])
        remove_db_files(demo_db);
    settings_free(&settings);
    return status;
}

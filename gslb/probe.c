/* gslb/probe.c - active health checks: a thread with its own libevent loop runs one check at a
 * time per origin (TCP connect, or an HTTP request whose status and body are checked), feeds the
 * results to the rise/fall counters and the region gates (health.c), and publishes an immutable
 * health view for the decisions. Probes never decide: they only report.
 *
 * Origins are identified by "service/region/address", so their state survives a new snapshot;
 * checks start at a random point of their first interval and drift by up to 10% each time, so a
 * thousand origins do not fire together. Every change of state is logged, and recorded in the
 * store (state and bounded history) for `gslbctl health`.
 *
 * A region serves a service while its pool has its quorum (gslb_pool_quorum), past the failback
 * hold-down; a pool with manual failback also holds the region out after it went down, in the
 * store, until an operator resumes it (which bumps the config version, so the next snapshot
 * brings the released holds along). Check latencies are kept per origin for the metrics. */
#include <errno.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sockerr.h"
#include "common/xalloc.h"
#include "gslb/gslb_int.h"

#define TICK_MS    100
#define BODY_LIMIT (64 * 1024)

struct target {
    struct gslb_prober *prober;
    char *key;      /* "service/region/address" */
    uint32_t index; /* origin index in the current snapshot */
    bool present;   /* in the current snapshot */
    struct gslb_health_counter counter;
    enum db_health_force force; /* the operator's override */
    bool effective_up;          /* what the decisions see: the counter unless overridden */
    struct gslb_check check;    /* resolved: no zero fields */
    char host[256];
    const char *sni; /* the name TLS checks send, if not the host: the snapshot's string */
    int port;
    struct event *timer;
    struct bufferevent *bev;
    struct timespec started; /* of the check in flight */
    char last_failure[160];
    bool skipping;                 /* the last check could not be made here (check_skip) */
    struct gslb_check_stats stats; /* under the prober's stats_lock */
};

struct region {
    char *key; /* "service/region" */
    uint32_t service, region;
    struct gslb_region_gate gate; /* the checks and the hold-down */
    bool held;                    /* by manual failback, until an operator resumes it */
    bool effective_up;            /* what the decisions see */
    enum db_health_force force;   /* the override at the last evaluation */
};

struct view {
    struct publish_obj obj; /* first: the slot sees only this */
    struct gslb_health pub;
    const struct gslb_snapshot *snap;
};

struct gslb_prober {
    struct gslb_prober_config cfg;
    struct gslb_watch *watch;
    struct db *db;
    pthread_t thread;
    struct event_base *base;
    struct evdns_base *dns;
    struct event *tick, *stop;
    int stop_fds[2];
    const struct gslb_snapshot *snap;
    uint64_t watch_generation;
    struct target **targets;
    size_t n_targets;
    struct target **by_index; /* by origin index of the current snapshot */
    struct region *regions;
    size_t n_regions;
    bool *pool_up;              /* scratch: checks of one pool's origins */
    pthread_mutex_t stats_lock; /* guards <targets> and their stats against readers */
    struct publish_slot views;
    struct evhttp_uri *webhook;
    SSL_CTX *tls; /* for https checks */
    bool dirty;   /* a state changed since the last published view */
    unsigned seed;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- recording ---- */

static void record(struct gslb_prober *p, const char *kind, const char *key, bool up,
                   const char *reason, bool transition)
{
    char object[320];
    snprintf(object, sizeof(object), "%s %s", kind, key);
    if (transition)
        log_warn("health: %s %s: %s", object, up ? "up" : "down", reason);
    if (p->db && db_health_record(p->db, object, up, now_ms(), reason, transition) != 0)
        log_err("health: cannot record %s in the store", object);
}

/* Drops the stored state of an origin or region no longer configured (kind NULL: of all, before
 * the first snapshot's): the board, gslbctl health and the console showed removed ones, down
 * for good, until 2026-12-07. */
static void forget(struct gslb_prober *p, const char *kind, const char *key)
{
    char object[320];
    if (kind)
        snprintf(object, sizeof(object), "%s %s", kind, key);
    if (p->db && db_health_forget(p->db, kind ? object : NULL) != 0)
        log_err("health: cannot forget %s in the store", kind ? object : "old states");
}

/* ---- the webhook ---- */

static void webhook_done(struct evhttp_request *req, void *arg)
{
    (void)arg;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (status < 200 || status > 299)
        log_warn("health: webhook: %s",
                 status ? "the receiver answered with an error status" : "no answer");
}

/* POSTs one region change as JSON; fire and forget, failures are logged. */
static void webhook_post(struct gslb_prober *p, const char *key, bool up, const char *reason)
{
    const char *host = evhttp_uri_get_host(p->webhook), *path = evhttp_uri_get_path(p->webhook);
    int port = evhttp_uri_get_port(p->webhook);
    struct evhttp_connection *conn =
        evhttp_connection_base_new(p->base, p->dns, host, (uint16_t)(port > 0 ? port : 80));
    struct evhttp_request *req = evhttp_request_new(webhook_done, p);
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    const char *slash = strchr(key, '/');
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    evhttp_connection_set_timeout(conn, 5);
    evhttp_connection_free_on_completion(conn);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    /* Names are [a-z0-9-] (validated by db/); the reason is ours, without quotes. */
    evbuffer_add_printf(evhttp_request_get_output_buffer(req),
                        "{\"time\":\"%s\",\"service\":\"%.*s\",\"region\":\"%s\","
                        "\"state\":\"%s\",\"reason\":\"%s\"}\n",
                        stamp, (int)(slash - key), key, slash + 1, up ? "up" : "down", reason);
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, path && *path ? path : "/") != 0)
        log_warn("health: webhook: cannot send to %s", host);
}

/* ---- one check ---- */

/* Recomputes what the decisions see from the checks and the override; records a change. */
static void target_settle(struct target *t, const char *why)
{
    bool up = t->force == DB_FORCE_UP ? true : t->force == DB_FORCE_DOWN ? false : t->counter.up;
    if (up == t->effective_up)
        return;
    t->effective_up = up;
    record(t->prober, "origin", t->key, up, why, true);
    t->prober->dirty = true;
}

static void check_schedule(struct target *t, bool first)
{
    int interval = t->check.interval_ms;
    /* First check anywhere in the interval; later ones drift by up to +-10%. */
    int delay = first ? rand_r(&t->prober->seed) % (interval + 1)
                      : interval - interval / 10 + rand_r(&t->prober->seed) % (interval / 5 + 1);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(t->timer, &tv);
}

static void stats_add(struct target *t, bool ok)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double seconds =
        (double)(now.tv_sec - t->started.tv_sec) + (double)(now.tv_nsec - t->started.tv_nsec) / 1e9;
    struct gslb_check_stats *st = &t->stats;
    pthread_mutex_lock(&t->prober->stats_lock);
    st->count++;
    st->failures += !ok;
    st->sum_seconds += seconds;
    st->last_seconds = seconds;
    for (size_t b = 0; b < GSLB_CHECK_BUCKETS; b++)
        st->buckets[b] += seconds <= gslb_check_bucket_seconds[b];
    pthread_mutex_unlock(&t->prober->stats_lock);
}

static void check_done(struct target *t, bool ok, const char *reason)
{
    if (t->bev) {
        bufferevent_free(t->bev);
        t->bev = NULL;
    }
    t->skipping = false;
    if (t->check.type != DB_CHECK_NONE)
        stats_add(t, ok);
    if (!ok)
        snprintf(t->last_failure, sizeof(t->last_failure), "%s", reason);
    if (gslb_health_observe(&t->counter, ok)) {
        char why[256];
        if (t->counter.up)
            snprintf(why, sizeof(why), "%d consecutive successful checks", t->check.rise);
        else
            snprintf(why, sizeof(why), "%d consecutive failed checks, last: %s", t->check.fall,
                     t->last_failure);
        target_settle(t, why);
    }
    if (t->present)
        check_schedule(t, false);
}

/* A check this machine could not make (no descriptor, no local port): it says nothing of the
 * origin and counts neither way (a flood of clients past the descriptor limit took every region
 * down until 2026-12-07). The next comes at the usual interval. */
static void check_skip(struct target *t, int err)
{
    if (t->bev) {
        bufferevent_free(t->bev);
        t->bev = NULL;
    }
    if (!t->skipping)
        log_warn("health: %s not checked: %s (here, not at the origin)", t->key, strerror(err));
    t->skipping = true;
    if (t->present)
        check_schedule(t, false);
}

/* Whether <status> is in a list such as "200-399" or "200,204" (validated by db/). */
static bool status_expected(const char *expect, int status)
{
    const char *p = expect;
    while (*p) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (*end == '-')
            hi = strtol(end + 1, &end, 10);
        if (status >= lo && status <= hi)
            return true;
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p != '\0')
            break;
    }
    return false;
}

/* Judges the HTTP response read so far; returns true when a verdict was reached. */
static bool http_judge(struct target *t, bool eof)
{
    struct evbuffer *in = bufferevent_get_input(t->bev);
    size_t len = evbuffer_get_length(in);
    char reason[200];
    if (len < 12 && !eof)
        return false;
    const char *data = (const char *)evbuffer_pullup(in, -1);
    int status = 0;
    if (len < 12 || (strncmp(data, "HTTP/1.1 ", 9) != 0 && strncmp(data, "HTTP/1.0 ", 9) != 0) ||
        sscanf(data + 9, "%3d", &status) != 1) {
        check_done(t, false, "not an HTTP response");
        return true;
    }
    if (!status_expected(t->check.expect, status)) {
        snprintf(reason, sizeof(reason), "HTTP %d on %s", status, t->check.path);
        check_done(t, false, reason);
        return true;
    }
    if (t->check.body == NULL) {
        check_done(t, true, "ok");
        return true;
    }
    const char *body = memmem(data, len, "\r\n\r\n", 4);
    if (body &&
        memmem(body + 4, (size_t)(data + len - body - 4), t->check.body, strlen(t->check.body))) {
        check_done(t, true, "ok");
        return true;
    }
    if (eof || len >= BODY_LIMIT) {
        snprintf(reason, sizeof(reason), "the body of %s lacks '%.60s'", t->check.path,
                 t->check.body);
        check_done(t, false, reason);
        return true;
    }
    return false;
}

static void check_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    http_judge(arg, false);
}

static void check_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct target *t = arg;
    char reason[200];
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (t->check.type == DB_CHECK_TCP) {
            check_done(t, true, "ok");
            return;
        }
        evbuffer_add_printf(bufferevent_get_output(t->bev),
                            "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gslb-health\r\n"
                            "Connection: close\r\n\r\n",
                            t->check.method, t->check.path,
                            t->check.host ? t->check.host : t->host);
        bufferevent_enable(t->bev, EV_READ);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        snprintf(reason, sizeof(reason), "no answer within %d ms", t->check.timeout_ms);
        check_done(t, false, reason);
        return;
    }
    if ((what & BEV_EVENT_EOF) && t->check.type != DB_CHECK_TCP) {
        if (!http_judge(t, true))
            check_done(t, false, "connection closed");
        return;
    }
    unsigned long tls_err =
        t->check.type == DB_CHECK_HTTPS ? bufferevent_get_openssl_error(bev) : 0;
    if (tls_err) {
        char text[160];
        ERR_error_string_n(tls_err, text, sizeof(text));
        snprintf(reason, sizeof(reason), "TLS: %s", text);
        check_done(t, false, reason);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    if (sockerr_is_local_shortage(err)) {
        check_skip(t, err);
        return;
    }
    snprintf(reason, sizeof(reason), "connect: %s",
             err ? evutil_socket_error_to_string(err) : "connection closed");
    check_done(t, false, reason);
}

static void check_start(evutil_socket_t fd, short what, void *arg)
{
    struct target *t = arg;
    (void)fd;
    (void)what;
    if (t->check.type == DB_CHECK_NONE) {
        check_done(t, true, "ok"); /* not checked: counts as healthy */
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t->started);
    if (t->check.type == DB_CHECK_HTTPS) {
        /* Checks ask whether the origin answers, not who it is: no certificate verification, but
         * SNI with the check's host (or the origin's name) so name-based TLS servers answer. */
        const char *sni = t->sni ? t->sni : t->host;
        struct in6_addr ignored;
        SSL *ssl = SSL_new(t->prober->tls);
        if (ssl && inet_pton(AF_INET, sni, &ignored) != 1 &&
            inet_pton(AF_INET6, sni, &ignored) != 1)
            SSL_set_tlsext_host_name(ssl, sni);
        t->bev =
            ssl ? bufferevent_openssl_socket_new(t->prober->base, -1, ssl,
                                                 BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE)
                : NULL;
        if (t->bev == NULL) {
            SSL_free(ssl);
            check_done(t, false, "TLS: cannot start a session");
            return;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(t->bev, 1);
    } else {
        t->bev = bufferevent_socket_new(t->prober->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    struct timeval tv = {t->check.timeout_ms / 1000, (t->check.timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(t->bev, &tv, &tv);
    bufferevent_setcb(t->bev, check_read_cb, NULL, check_event_cb, t);
    if (bufferevent_socket_connect_hostname(t->bev, t->prober->dns, AF_UNSPEC, t->host, t->port) !=
        0) {
        if (sockerr_is_local_shortage(errno))
            check_skip(t, errno);
        else
            check_done(t, false, "connect: cannot start");
    }
}

/* ---- the set of targets ---- */

static void target_free(struct target *t)
{
    if (t->bev)
        bufferevent_free(t->bev);
    event_free(t->timer);
    free(t->key);
    free(t);
}

static void target_configure(struct gslb_prober *p, struct target *t, const struct gslb_origin *o)
{
    const struct gslb_check *c = &o->check;
    t->check = *c;
    if (t->check.type == DB_CHECK_INHERIT)
        t->check.type = p->cfg.default_type;
    if (t->check.type == DB_CHECK_HTTP && o->tls)
        t->check.type = DB_CHECK_HTTPS; /* its port speaks TLS: plain HTTP there never answers */
    t->check.path = c->path ? c->path : "/";
    t->sni = c->host ? c->host : o->tls_name; /* NULL: the address's host */
    t->check.method = c->method ? c->method : "GET";
    if (strcmp(t->check.method, "HEAD") == 0)
        t->check.body = NULL; /* a body check inherited from the pool: nothing to look in */
    t->check.expect = c->expect ? c->expect : "200-399";
    t->check.interval_ms = c->interval_ms ? c->interval_ms : p->cfg.interval_ms;
    t->check.timeout_ms = c->timeout_ms ? c->timeout_ms : p->cfg.timeout_ms;
    t->check.rise = c->rise ? c->rise : p->cfg.rise;
    t->check.fall = c->fall ? c->fall : p->cfg.fall;
    t->counter.rise = (uint8_t)t->check.rise;
    t->counter.fall = (uint8_t)t->check.fall;
    const char *colon = strrchr(o->address, ':');
    size_t hostlen = (size_t)(colon - o->address);
    const char *host = o->address;
    if (host[0] == '[') {
        host++;
        hostlen -= 2;
    }
    snprintf(t->host, sizeof(t->host), "%.*s", (int)hostlen, host);
    t->port = atoi(colon + 1);
}

static struct target *target_find(struct gslb_prober *p, const char *key)
{
    for (size_t i = 0; i < p->n_targets; i++) {
        if (strcmp(p->targets[i]->key, key) == 0)
            return p->targets[i];
    }
    return NULL;
}

/* Reads the manual-failback holds from the store (they change only with the config version, when
 * an operator resumes a region) and drops those of pools that no longer fail back by hand. */
static void holds_load(struct gslb_prober *p)
{
    struct db_health_row *rows = NULL;
    size_t n = 0;
    for (size_t i = 0; i < p->n_regions; i++)
        p->regions[i].held = false;
    if (p->db == NULL || db_failback_holds(p->db, &rows, &n) != 0)
        return;
    for (size_t h = 0; h < n; h++) {
        struct region *r = NULL;
        for (size_t i = 0; i < p->n_regions && r == NULL; i++) {
            if (strcmp(p->regions[i].key, rows[h].object) == 0)
                r = &p->regions[i];
        }
        const struct gslb_service *svc = r ? &p->snap->services[r->service] : NULL;
        if (r && svc->pools[svc->pool_of_region[r->region]].failback == DB_FAILBACK_MANUAL)
            r->held = true;
        else
            db_failback_hold(p->db, rows[h].object, false, 0, NULL);
    }
    db_health_free(rows, n);
}

/* Moves to <snap>: keeps the state of origins it still has, starts checking new ones. */
static void targets_update(struct gslb_prober *p, const struct gslb_snapshot *snap)
{
    if (p->n_targets == 0 && p->n_regions == 0)
        forget(p, NULL, NULL); /* what a run before this one configured */
    for (size_t i = 0; i < p->n_targets; i++)
        p->targets[i]->present = false;
    for (size_t s = 0; s < snap->n_services; s++) {
        const struct gslb_service *svc = &snap->services[s];
        for (size_t pl = 0; pl < svc->n_pools; pl++) {
            const struct gslb_pool *pool = &svc->pools[pl];
            for (size_t o = 0; o < pool->n_origins; o++) {
                const struct gslb_origin *origin = &pool->origins[o];
                char key[512];
                snprintf(key, sizeof(key), "%s/%s/%s", svc->name, snap->regions[pool->region].name,
                         origin->address);
                struct target *t = target_find(p, key);
                bool fresh = t == NULL;
                if (fresh) {
                    t = xcalloc(1, sizeof(*t));
                    t->prober = p;
                    t->key = xstrdup(key);
                    t->counter.up = true; /* healthy until checks say otherwise */
                    t->effective_up = true;
                    t->timer = evtimer_new(p->base, check_start, t);
                    t->stats.key = t->key;
                    pthread_mutex_lock(&p->stats_lock);
                    p->targets = xreallocarray(p->targets, p->n_targets + 1, sizeof(*p->targets));
                    p->targets[p->n_targets++] = t;
                    pthread_mutex_unlock(&p->stats_lock);
                    record(p, "origin", key, true, "configured", false);
                }
                t->present = true;
                t->index = origin->index;
                target_configure(p, t, origin);
                if (t->force != origin->force) {
                    t->force = origin->force;
                    target_settle(t, origin->force == DB_FORCE_AUTO ? "override lifted"
                                                                    : "forced by an operator");
                }
                if (fresh)
                    check_schedule(t, true);
            }
        }
    }
    for (size_t i = 0; i < p->n_targets; i++) {
        if (!p->targets[i]->present)
            forget(p, "origin", p->targets[i]->key);
    }
    pthread_mutex_lock(&p->stats_lock);
    for (size_t i = 0; i < p->n_targets;) { /* origins no longer configured */
        if (p->targets[i]->present) {
            i++;
            continue;
        }
        target_free(p->targets[i]);
        p->targets[i] = p->targets[--p->n_targets];
    }
    pthread_mutex_unlock(&p->stats_lock);
    free(p->by_index);
    p->by_index = xcalloc(snap->n_origins + 1, sizeof(*p->by_index));
    for (size_t i = 0; i < p->n_targets; i++)
        p->by_index[p->targets[i]->index] = p->targets[i];
    /* Regions per service: keep gates by "service/region". */
    struct region *old = p->regions;
    size_t n_old = p->n_regions, largest_pool = 0;
    p->n_regions = 0;
    p->regions = xcalloc(snap->n_services * snap->n_regions + 1, sizeof(*p->regions));
    for (size_t s = 0; s < snap->n_services; s++) {
        const struct gslb_service *svc = &snap->services[s];
        for (size_t pl = 0; pl < svc->n_pools; pl++) {
            struct region *r = &p->regions[p->n_regions++];
            char key[300];
            snprintf(key, sizeof(key), "%s/%s", svc->name,
                     snap->regions[svc->pools[pl].region].name);
            r->key = xstrdup(key);
            r->service = (uint32_t)s;
            r->region = svc->pools[pl].region;
            r->gate = (struct gslb_region_gate){true, now_ms()};
            r->effective_up = true;
            bool known = false;
            for (size_t i = 0; i < n_old && !known; i++) {
                if ((known = strcmp(old[i].key, key) == 0)) {
                    r->gate = old[i].gate;
                    r->effective_up = old[i].effective_up;
                    r->force = old[i].force;
                }
            }
            if (!known)
                record(p, "region", key, true, "configured", false);
            if (svc->pools[pl].n_origins > largest_pool)
                largest_pool = svc->pools[pl].n_origins;
        }
    }
    for (size_t i = 0; i < n_old; i++) {
        bool kept = false;
        for (size_t k = 0; k < p->n_regions && !kept; k++)
            kept = strcmp(p->regions[k].key, old[i].key) == 0;
        if (!kept)
            forget(p, "region", old[i].key);
        free(old[i].key);
    }
    free(old);
    free(p->pool_up);
    p->pool_up = xcalloc(largest_pool + 1, sizeof(*p->pool_up));
    holds_load(p);
    p->dirty = true;
}

/* ---- views ---- */

static void view_destroy(struct publish_obj *obj)
{
    struct view *v = (struct view *)obj;
    gslb_snapshot_release(v->snap);
    free((void *)(uintptr_t)v->pub.origin_up);
    free((void *)(uintptr_t)v->pub.region_up);
    free(v);
}

static void view_publish(struct gslb_prober *p)
{
    const struct gslb_snapshot *snap = p->snap;
    struct view *v = xcalloc(1, sizeof(*v));
    uint8_t *origin_up = xcalloc(snap->n_origins + 1, 1);
    uint8_t *region_up = xcalloc(snap->n_services * snap->n_regions + 1, 1);
    publish_obj_init(&v->obj, view_destroy);
    v->snap = gslb_snapshot_ref(snap);
    for (size_t i = 0; i < p->n_targets; i++)
        origin_up[p->targets[i]->index] = p->targets[i]->effective_up;
    for (size_t i = 0; i < p->n_regions; i++) {
        const struct region *r = &p->regions[i];
        region_up[r->service * snap->n_regions + r->region] = r->effective_up;
        if (snap->regions[r->region].force != DB_FORCE_UP)
            continue;
        /* A region forced up serves with all its origins, whatever their checks say. */
        const struct gslb_service *svc = &snap->services[r->service];
        const struct gslb_pool *pool = &svc->pools[svc->pool_of_region[r->region]];
        for (size_t o = 0; o < pool->n_origins; o++)
            origin_up[pool->origins[o].index] = 1;
    }
    v->pub = (struct gslb_health){origin_up, region_up, snap->version};
    publish_slot_swap(&p->views, &v->obj);
    p->dirty = false;
}

/* Feeds each region's quorum to its gate and settles what the decisions see: an operator's
 * override first, then a manual-failback hold, then the gate. */
static void regions_evaluate(struct gslb_prober *p)
{
    const struct gslb_snapshot *snap = p->snap;
    int64_t now = now_ms();
    for (size_t i = 0; i < p->n_regions; i++) {
        struct region *r = &p->regions[i];
        const struct gslb_service *svc = &snap->services[r->service];
        const struct gslb_pool *pool = &svc->pools[svc->pool_of_region[r->region]];
        char quorum[128], why[300];
        for (size_t o = 0; o < pool->n_origins; o++) {
            const struct target *t = p->by_index[pool->origins[o].index];
            p->pool_up[o] = t && t->effective_up;
        }
        bool healthy = gslb_pool_quorum(pool, p->pool_up, quorum, sizeof(quorum));
        int holddown = pool->holddown_ms ? pool->holddown_ms : p->cfg.holddown_ms;
        gslb_region_gate_update(&r->gate, healthy, now, holddown);
        enum db_health_force force = snap->regions[r->region].force;
        bool up = force == DB_FORCE_UP     ? true
                  : force == DB_FORCE_DOWN ? false
                                           : r->gate.up && !r->held;
        /* Manual failback holds a region that goes down by itself, or that an operator hands
         * back to the checks while it is down (it never came back, so it must be resumed). */
        bool hold = !up && force == DB_FORCE_AUTO && pool->failback == DB_FAILBACK_MANUAL &&
                    !r->held && (up != r->effective_up || r->force != DB_FORCE_AUTO);
        r->force = force;
        if (hold) {
            r->held = true;
            snprintf(why, sizeof(why), "held out by manual failback after: %s", quorum);
            if (p->db && db_failback_hold(p->db, r->key, true, now, why) != 0)
                log_err("health: cannot record the failback hold of %s", r->key);
        }
        if (up == r->effective_up)
            continue;
        r->effective_up = up;
        if (force != DB_FORCE_AUTO)
            snprintf(why, sizeof(why), "forced %s by an operator", up ? "up" : "down");
        else if (up)
            snprintf(why, sizeof(why), "%s for the %d ms hold-down", quorum, holddown);
        else if (!hold && r->held)
            snprintf(why, sizeof(why), "held out by manual failback until an operator resumes it");
        else if (!hold)
            snprintf(why, sizeof(why), "%s", quorum);
        record(p, "region", r->key, up, why, true);
        if (p->webhook)
            webhook_post(p, r->key, up, why);
        p->dirty = true;
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gslb_prober *p = arg;
    (void)fd;
    (void)what;
    uint64_t generation = gslb_watch_generation(p->watch);
    if (generation != p->watch_generation) {
        const struct gslb_snapshot *snap = gslb_watch_acquire(p->watch);
        p->watch_generation = generation;
        if (snap && (p->snap == NULL || snap->version != p->snap->version)) {
            const struct gslb_snapshot *old = p->snap;
            p->snap = snap;
            targets_update(p, snap); /* repoints the checks at the new snapshot's strings */
            gslb_snapshot_release(old);
        } else {
            gslb_snapshot_release(snap);
        }
    }
    if (p->snap == NULL)
        return;
    regions_evaluate(p);
    if (p->dirty)
        view_publish(p);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gslb_prober *p = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(p->base);
}

static void *prober_main(void *arg)
{
    struct gslb_prober *p = arg;
    event_base_dispatch(p->base);
    return NULL;
}

/* ---- public API ---- */

struct gslb_prober *gslb_prober_start(struct gslb_watch *watch,
                                      const struct gslb_prober_config *cfg, char *err,
                                      size_t errlen)
{
    struct gslb_prober *p = xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    p->watch = watch;
    p->seed = (unsigned)now_ms() ^ (unsigned)getpid();
    pthread_mutex_init(&p->stats_lock, NULL);
    publish_slot_init(&p->views);
    if (cfg->db_path && (p->db = db_open(cfg->db_path, err, errlen)) == NULL)
        goto fail;
    if (cfg->webhook_url && *cfg->webhook_url) {
        p->webhook = evhttp_uri_parse(cfg->webhook_url);
        const char *scheme = p->webhook ? evhttp_uri_get_scheme(p->webhook) : NULL;
        if (scheme == NULL || strcmp(scheme, "http") != 0 || !evhttp_uri_get_host(p->webhook)) {
            snprintf(err, errlen, "health-webhook: '%s' is not an http://host[:port]/path URL",
                     cfg->webhook_url);
            goto fail;
        }
    }
    p->tls = SSL_CTX_new(TLS_client_method());
    if (p->tls == NULL) {
        snprintf(err, errlen, "health: cannot create a TLS context for https checks");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(p->tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(p->tls, SSL_VERIFY_NONE, NULL);
    p->base = event_base_new();
    p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (p->dns == NULL)
        p->dns = evdns_base_new(p->base, 0);
    if (pipe2(p->stop_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "health: pipe: %s", strerror(errno));
        goto fail;
    }
    p->stop = event_new(p->base, p->stop_fds[0], EV_READ, stop_cb, p);
    event_add(p->stop, NULL);
    p->tick = event_new(p->base, -1, EV_PERSIST, tick_cb, p);
    struct timeval tick = {0, TICK_MS * 1000};
    event_add(p->tick, &tick);
    tick_cb(-1, 0, p); /* the first view before any request */
    if (pthread_create(&p->thread, NULL, prober_main, p) != 0) {
        snprintf(err, errlen, "health: cannot start the prober thread");
        goto fail;
    }
    return p;
fail:
    p->thread = 0;
    gslb_prober_stop(p);
    return NULL;
}

void gslb_prober_stop(struct gslb_prober *p)
{
    if (p == NULL)
        return;
    if (p->thread) {
        (void)!write(p->stop_fds[1], "x", 1);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n_targets; i++)
        target_free(p->targets[i]);
    free(p->targets);
    free(p->by_index);
    for (size_t i = 0; i < p->n_regions; i++)
        free(p->regions[i].key);
    free(p->regions);
    free(p->pool_up);
    pthread_mutex_destroy(&p->stats_lock);
    publish_slot_fini(&p->views);
    gslb_snapshot_release(p->snap);
    if (p->tick)
        event_free(p->tick);
    if (p->stop) {
        event_free(p->stop);
        close(p->stop_fds[0]);
        close(p->stop_fds[1]);
    }
    if (p->dns)
        evdns_base_free(p->dns, 0);
    if (p->base)
        event_base_free(p->base);
    db_close(p->db);
    if (p->webhook)
        evhttp_uri_free(p->webhook);
    SSL_CTX_free(p->tls);
    free(p);
}

const struct gslb_health *gslb_prober_acquire(struct gslb_prober *p)
{
    struct view *v = (struct view *)publish_slot_acquire(&p->views);
    return v ? &v->pub : NULL;
}

void gslb_health_release(const struct gslb_health *health)
{
    if (health != NULL)
        publish_obj_release(
            &((struct view *)(uintptr_t)((const char *)health - offsetof(struct view, pub)))->obj);
}

uint64_t gslb_prober_generation(struct gslb_prober *p)
{
    return publish_slot_generation(&p->views);
}

const double gslb_check_bucket_seconds[GSLB_CHECK_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

void gslb_prober_check_stats(struct gslb_prober *p,
                             void (*fn)(const struct gslb_check_stats *stats, void *arg), void *arg)
{
    pthread_mutex_lock(&p->stats_lock);
    for (size_t i = 0; i < p->n_targets; i++)
        fn(&p->targets[i]->stats, arg);
    pthread_mutex_unlock(&p->stats_lock);
}

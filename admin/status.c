/* admin/status.c - the read-only routes: a decision explained, the health board and its
 * history, the audit log, request counters, the country table, the OpenAPI description.
 *
 * GET /route explains with the running daemon's snapshot and its prober's live health view, so
 * it shows the region the proxy picks now (gslbctl route, run offline, assumes everything
 * healthy). Passive ejections are per proxy worker and not part of that view. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"
#include "common/addr.h"
#include "common/sbuf.h"
#include "db/db.h"
#include "geo/geo.h"
#include "gslb/gslb.h"
#include "proxy/proxy.h"

/* Reads the query parameter <key> as an integer in [min, max] (<fallback> when absent); answers
 * 400 naming it and returns false when it is not one. */
static bool query_int(struct admin_request *req, const char *key, long long min, long long max,
                      long long fallback, long long *out)
{
    const char *text = admin_query(req, key);
    char *end;
    *out = fallback;
    if (text == NULL)
        return true;
    *out = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || *out < min || *out > max) {
        admin_reply_error(req, 400, key, "%s: expected an integer in %lld..%lld", key, min, max);
        return false;
    }
    return true;
}

void admin_route_explain(struct admin_request *req)
{
    const char *ip = admin_query(req, "ip"), *host = admin_query(req, "host");
    struct ip_addr addr;
    if (ip == NULL || ip_addr_parse(ip, &addr) != 0) {
        admin_reply_error(req, 400, "ip", "ip: expected an IPv4 or IPv6 address");
        return;
    }
    if (host && host[0] == '\0')
        host = NULL;
    const struct gslb_snapshot *snap = gslb_watch_acquire(req->admin->watch);
    const struct gslb_health *health =
        req->admin->prober ? gslb_prober_acquire(req->admin->prober) : NULL;
    /* A view of another config version does not fit this snapshot: then the proxy too runs
     * without it for the moment (everything healthy). */
    const struct gslb_health *view = health && health->version == snap->version ? health : NULL;
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    struct sbuf out = {0};
    gslb_explain(snap, balancer, req->admin->geo, ip, host, view, &out);
    /* gslbctl route's object, plus the config version of the snapshot that answered: after an
     * edit, a client can tell whether the daemon has loaded it yet. */
    json_t *answer = json_loadb(out.p ? out.p : "", out.len, 0, NULL);
    if (json_is_object(answer)) {
        json_object_set_new(answer, "config_version", json_integer(snap->version));
        admin_reply_json(req, 200, answer);
    } else {
        json_decref(answer);
        admin_reply_error(req, 500, NULL, "cannot explain the decision");
    }
    free(out.p);
    gslb_balancer_destroy(balancer);
    gslb_health_release(health);
    gslb_snapshot_release(snap);
}

/* <rows> (freed here) as db/ read them, each row's time under <time_key>; with <with_up>, also
 * whether the object is up. */
static json_t *health_rows_json(struct db_health_row *rows, size_t n, const char *time_key,
                                bool with_up)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "object", json_string(rows[i].object));
        if (with_up)
            json_object_set_new(o, "up", json_boolean(rows[i].up));
        json_object_set_new(o, time_key, json_integer(rows[i].time_ms));
        json_object_set_new(o, "reason", json_string(rows[i].reason ? rows[i].reason : ""));
        json_array_append_new(list, o);
    }
    db_health_free(rows, n);
    return list;
}

void admin_health_get(struct admin_request *req)
{
    struct db_health_row *rows, *holds;
    size_t n, n_holds;
    if (db_health_state(req->db, &rows, &n) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the health state");
        return;
    }
    json_t *answer = json_object();
    json_object_set_new(answer, "objects", health_rows_json(rows, n, "since_ms", true));
    /* And the regions manual failback holds out of a service ("SERVICE/REGION") until an
     * operator resumes them. */
    if (db_failback_holds(req->db, &holds, &n_holds) != 0) {
        json_decref(answer);
        admin_reply_error(req, 500, NULL, "cannot read the failback holds");
        return;
    }
    json_object_set_new(answer, "holds", health_rows_json(holds, n_holds, "since_ms", false));
    admin_reply_json(req, 200, answer);
}

void admin_health_history(struct admin_request *req)
{
    struct db_health_row *rows;
    size_t n;
    long long limit;
    if (!query_int(req, "limit", 1, 10000, 100, &limit))
        return;
    if (db_health_history(req->db, (size_t)limit, &rows, &n) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the health history");
        return;
    }
    json_t *answer = json_object();
    json_object_set_new(answer, "changes", health_rows_json(rows, n, "time_ms", true));
    admin_reply_json(req, 200, answer);
}

/* Audit snapshots are JSON text; an entry written by something else stays a string. */
static json_t *snapshot_json(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    return j ? j : json_string(text);
}

void admin_audit_get(struct admin_request *req)
{
    long long before, limit;
    struct db_audit_entry *entries;
    size_t n;
    if (!query_int(req, "before", 0, INT64_MAX, 0, &before) ||
        !query_int(req, "limit", 1, 1000, 50, &limit))
        return;
    if (db_audit_list(req->db, before, (size_t)limit, &entries, &n) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the audit log");
        return;
    }
    json_t *list = json_array(), *answer = json_object();
    for (size_t i = 0; i < n; i++) {
        const struct db_audit_entry *e = &entries[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(e->id));
        json_object_set_new(o, "time_ms", json_integer(e->time_ms));
        json_object_set_new(o, "actor", json_string(e->actor));
        json_object_set_new(o, "action", json_string(e->action));
        json_object_set_new(o, "object", json_string(e->object));
        json_object_set_new(o, "before", snapshot_json(e->before));
        json_object_set_new(o, "after", snapshot_json(e->after));
        json_array_append_new(list, o);
    }
    json_object_set_new(answer, "entries", list);
    /* A full page may have a next one; ids only go down, so the last id pages on. */
    json_object_set_new(answer, "next_before",
                        n == (size_t)limit && n > 0 && entries[n - 1].id > 1
                            ? json_integer(entries[n - 1].id)
                            : json_null());
    db_audit_free(entries, n);
    admin_reply_json(req, 200, answer);
}

void admin_stats_get(struct admin_request *req)
{
    static const char *const classes[] = {"aborted", "1xx", "2xx", "3xx", "4xx", "5xx"};
    struct timespec ts;
    size_t n = 0;
    struct proxy_region_stats *stats =
        req->admin->proxy ? proxy_region_stats(req->admin->proxy, &n) : NULL;
    json_t *list = json_array(), *answer = json_object(), *unrouted = NULL;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* The proxy counts requests no region could take (503) under the region "none"; they get a
     * field of their own, unless a configured region has that name (then they stay mixed in). */
    const struct gslb_snapshot *snap =
        req->admin->watch ? gslb_watch_acquire(req->admin->watch) : NULL;
    bool none_is_a_region = false;
    for (size_t i = 0; snap && i < snap->n_regions; i++)
        none_is_a_region |= strcmp(snap->regions[i].name, PROXY_REGION_NONE) == 0;
    gslb_snapshot_release(snap);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object(), *by = json_object();
        bool is_unrouted = !none_is_a_region && strcmp(stats[i].region, PROXY_REGION_NONE) == 0;
        if (!is_unrouted)
            json_object_set_new(o, "region", json_string(stats[i].region));
        json_object_set_new(o, "requests", json_integer((json_int_t)stats[i].requests));
        for (int c = 0; c < 6; c++)
            json_object_set_new(by, classes[c], json_integer((json_int_t)stats[i].by_class[c]));
        json_object_set_new(o, "by_class", by);
        if (is_unrouted)
            unrouted = o;
        else
            json_array_append_new(list, o);
    }
    free(stats);
    if (unrouted == NULL) {
        json_t *by = json_object();
        unrouted = json_object();
        json_object_set_new(unrouted, "requests", json_integer(0));
        for (int c = 0; c < 6; c++)
            json_object_set_new(by, classes[c], json_integer(0));
        json_object_set_new(unrouted, "by_class", by);
    }
    json_object_set_new(answer, "time_ms",
                        json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
    json_object_set_new(answer, "regions", list);
    json_object_set_new(answer, "unrouted", unrouted);
    admin_reply_json(req, 200, answer);
}

void admin_countries_get(struct admin_request *req)
{
    json_t *list = json_array(), *answer = json_object();
    for (size_t i = 0; i < geo_country_count(); i++) {
        const struct geo_country *c = geo_country_at(i);
        json_t *o = json_object();
        json_object_set_new(o, "code", json_string(c->iso));
        json_object_set_new(o, "continent", json_string(c->continent));
        json_object_set_new(o, "lat", json_real(c->lat));
        json_object_set_new(o, "lon", json_real(c->lon));
        json_array_append_new(list, o);
    }
    json_object_set_new(answer, "countries", list);
    admin_reply_json(req, 200, answer);
}

void admin_openapi_get(struct admin_request *req)
{
    const struct admin_asset *a = admin_asset_find("/openapi.json");
    if (a == NULL) {
        admin_reply_error(req, 404, NULL, "this build has no OpenAPI description");
        return;
    }
    admin_reply_text(req, 200, (const char *)a->data, a->size);
}

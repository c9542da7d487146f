/* gslb/gslb.h - the decision engine: which region, and which origin in it, serves this client.
 *
 * A snapshot is an immutable, compiled copy of one config version of the topology, shared by
 * every thread. gslb_decide() is a pure function of a snapshot, the request's host, the client's
 * address and geo result, and a health view: no I/O, no locks, no allocation. It returns every
 * candidate region in order, each with its distance and the reason for its place, and the chosen
 * one (the first that can serve). gslb_origin_pick() then picks an origin inside the region by
 * smooth weighted round-robin, or by consistent hashing of the client address for sticky services.
 *
 * A watch (gslb_watch_start) polls the store's config version and publishes a freshly built
 * snapshot when it changes; readers swap to it without waiting on SQLite or on a lock. */
#ifndef GSLB_GSLB_H
#define GSLB_GSLB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "db/db.h"
#include "geo/geo.h"

#define GSLB_EARTH_RADIUS_KM 6371.0088

struct gslb_watch;

/* Why a region can or cannot take new clients of a service. */
enum gslb_region_state {
    GSLB_REGION_UP,       /* active, with at least one usable origin */
    GSLB_REGION_DOWN,     /* active, but no origin is enabled, weighted and healthy */
    GSLB_REGION_DRAINING, /* set by an operator: no new clients */
    GSLB_REGION_DISABLED, /* set by an operator */
    GSLB_REGION_EMPTY,    /* the service has no origins there */
};

/* Why a candidate sits where it does in the list. */
enum gslb_reason {
    GSLB_REASON_RULE_CIDR,
    GSLB_REASON_RULE_COUNTRY,
    GSLB_REASON_RULE_CONTINENT,
    GSLB_REASON_NEAREST,     /* by great-circle distance from the client */
    GSLB_REASON_ORDER,       /* failover policy: the service's pool order */
    GSLB_REASON_FALLBACK,    /* no client location: the service's fallback list */
    GSLB_REASON_NO_LOCATION, /* no client location: the rest, in pool order */
};

struct gslb_region {
    const char *name;
    double lat, lon;
    double unit[3]; /* position on the unit sphere, for distances */
    enum db_region_state state;
    enum db_health_force force;
};

/* An origin's health-check settings, its own merged over its pool's; zero or NULL fields take the
 * prober's defaults. */
struct gslb_check {
    enum db_check_type type;
    const char *path, *host, *expect, *body, *method;
    int interval_ms, timeout_ms, rise, fall;
};

struct gslb_origin {
    const char *address;
    int weight;
    enum db_origin_state state;
    enum db_health_force force;
    struct gslb_check check;
    uint32_t index;    /* position among all origins of the snapshot: health and balancer slots */
    uint64_t hash_key; /* for consistent hashing, from the address */
    bool tls, tls_insecure;
    const char *tls_name; /* NULL: the address's host */
};

struct gslb_pool {
    uint32_t region;
    struct gslb_origin *origins;
    size_t n_origins;
    int min_healthy, min_weight_percent; /* the quorum: see struct db_pool */
    enum db_failback failback;
    int holddown_ms; /* 0: the prober's default */
};

struct gslb_rule {
    enum db_match match;
    struct ip_cidr cidr; /* DB_MATCH_CIDR */
    char code[3];        /* DB_MATCH_COUNTRY or DB_MATCH_CONTINENT */
    uint32_t *regions;
    size_t n_regions;
};

struct gslb_service {
    const char *name;
    enum db_policy policy;
    bool sticky;
    struct gslb_pool *pools; /* in pool order */
    size_t n_pools;
    int32_t *pool_of_region; /* region index -> pool index, or -1 */
    struct gslb_rule *rules;
    size_t n_rules;
    uint32_t *fallback;
    size_t n_fallback;
};

struct gslb_snapshot {
    int64_t version; /* the config version it was built from */
    struct gslb_region *regions;
    size_t n_regions;
    struct gslb_service *services;
    size_t n_services;
    size_t n_origins; /* over all pools */
};

/* The health view a decision reads, for one snapshot: <origin_up>[origin index] is nonzero for a
 * healthy origin; <region_up>[service index * n_regions + region] is zero for a region held out
 * of a service (too few healthy origins, or waiting out its failback hold-down). Either may be
 * NULL: everything healthy. */
struct gslb_health {
    const uint8_t *origin_up;
    const uint8_t *region_up;
    int64_t version; /* of the snapshot it belongs to */
};

struct gslb_candidate {
    uint32_t region;
    /* The squared chord from the client to the region on the unit sphere, what the order
     * compares (gslb_candidate_distance_km() turns it into km); negative when the client's
     * location is unknown. */
    double chord2;
    enum gslb_region_state state;
    enum gslb_reason reason;
    int rule; /* index of the rule that placed it, or -1 */
};

struct gslb_decision {
    const struct gslb_service *service;
    int chosen;            /* index into <candidates>, or -1 when no region can serve */
    double client_unit[3]; /* the client's location as a unit vector (0, 0, 0: unknown) */
    size_t n_candidates;
    struct gslb_candidate candidates[DB_MAX_REGIONS];
};

/* Builds a snapshot of <topo> (already validated by db/). The result holds one reference. */
struct gslb_snapshot *gslb_snapshot_build(const struct db_topology *topo);
const struct gslb_snapshot *gslb_snapshot_ref(const struct gslb_snapshot *snap);
void gslb_snapshot_release(const struct gslb_snapshot *snap); /* accepts NULL */

/* The service for <host> (a Host header: case, port and trailing dot are ignored): an exact name,
 * else the longest matching *.suffix, else "*". NULL when none matches. */
const struct gslb_service *gslb_service_find(const struct gslb_snapshot *snap, const char *host);

/* Orders the regions of <service> for a client and picks the first that can serve. <geo> may
 * be NULL (no location). Fills <out>; returns out->chosen >= 0. */
bool gslb_decide(const struct gslb_snapshot *snap, const struct gslb_service *service,
                 const struct ip_addr *client, const struct geo_result *geo,
                 const struct gslb_health *health, struct gslb_decision *out);

/* Great-circle distance in km. */
double gslb_distance_km(double lat1, double lon1, double lat2, double lon2);
/* The great-circle distance in km from the client of <d> to its candidate <c>; negative when the
 * client's location is unknown. */
double gslb_candidate_distance_km(const struct gslb_snapshot *snap, const struct gslb_decision *d,
                                  const struct gslb_candidate *c);

/* Per-thread origin selection state for one snapshot (smooth weighted round-robin counters). */
struct gslb_balancer *gslb_balancer_create(const struct gslb_snapshot *snap);
void gslb_balancer_destroy(struct gslb_balancer *balancer); /* accepts NULL */

/* Picks a usable origin (enabled, weight > 0, healthy) of <service> in <region>, or NULL. */
const struct gslb_origin *gslb_origin_pick(const struct gslb_snapshot *snap,
                                           struct gslb_balancer *balancer,
                                           const struct gslb_service *service, uint32_t region,
                                           const struct ip_addr *client,
                                           const struct gslb_health *health);

/* ---- health (pure logic: no I/O, no clock; time is an argument) ---- */

/* Rise/fall state of one checked origin. */
struct gslb_health_counter {
    bool up;
    uint8_t streak, rise, fall;
};

/* Flips <h->up> only after <rise> successes or <fall> failures in a row. Returns true on a flip. */
bool gslb_health_observe(struct gslb_health_counter *h, bool probe_ok);

/* Whether <pool> has its quorum: at least min_healthy usable origins (enabled, weighted and
 * <up>[i] for origin i of the pool) carrying at least min_weight_percent of the weight of its
 * origins that are not disabled. Says why (or how many are healthy) in <why>. */
bool gslb_pool_quorum(const struct gslb_pool *pool, const bool *up, char *why, size_t whylen);

/* Failback hysteresis of a region: it leaves at once when unhealthy and comes back only after
 * being healthy for <holddown_ms> without a break. */
struct gslb_region_gate {
    bool up;
    int64_t healthy_since_ms; /* -1 while unhealthy */
};

/* Feeds the region's current health at <now_ms>. Returns true when <g->up> flips. */
bool gslb_region_gate_update(struct gslb_region_gate *g, bool healthy, int64_t now_ms,
                             int64_t holddown_ms);

/* ---- the prober: active checks on an event loop of its own ---- */

struct gslb_prober_config {
    const char *db_path; /* where health state and history are recorded */
    int interval_ms;     /* defaults for origins whose check does not say */
    int timeout_ms;
    int rise, fall;
    int holddown_ms;                 /* failback hold-down of a region */
    enum db_check_type default_type; /* for origins with no check type: tcp, http or none */
    const char *webhook_url; /* http://host[:port]/path: a JSON POST per region change, or NULL */
};

/* Starts checking every origin of the snapshots <watch> publishes. Returns NULL with <err>. */
struct gslb_prober *gslb_prober_start(struct gslb_watch *watch,
                                      const struct gslb_prober_config *cfg, char *err,
                                      size_t errlen);
void gslb_prober_stop(struct gslb_prober *prober); /* accepts NULL */
/* A reference to the newest health view (NULL before the first); release it when done. */
const struct gslb_health *gslb_prober_acquire(struct gslb_prober *prober);
void gslb_health_release(const struct gslb_health *health); /* accepts NULL */
/* Changes whenever a new view is published. */
uint64_t gslb_prober_generation(struct gslb_prober *prober);

/* Check latency of one origin since it was first checked: a histogram over the upper bounds
 * gslb_check_bucket_seconds (cumulative counts, as Prometheus has them). */
#define GSLB_CHECK_BUCKETS 13
extern const double gslb_check_bucket_seconds[GSLB_CHECK_BUCKETS];
struct gslb_check_stats {
    const char *key; /* "service/region/address" */
    uint64_t count, failures;
    uint64_t buckets[GSLB_CHECK_BUCKETS];
    double sum_seconds, last_seconds;
};
/* Calls <fn> for every checked origin, from the caller's thread, while the prober waits. */
void gslb_prober_check_stats(struct gslb_prober *prober,
                             void (*fn)(const struct gslb_check_stats *stats, void *arg),
                             void *arg);

const char *gslb_region_state_name(enum gslb_region_state state);
const char *gslb_reason_name(enum gslb_reason reason);

/* Watches the store at <db_path>: loads the current topology now (failing if it cannot), then
 * every <interval_ms> polls the config version from its own thread and publishes a new snapshot
 * when it changed. */
struct gslb_watch *gslb_watch_start(const char *db_path, int interval_ms, char *err, size_t errlen);
void gslb_watch_stop(struct gslb_watch *watch); /* accepts NULL */
/* A new reference to the newest snapshot; the caller releases it. */
const struct gslb_snapshot *gslb_watch_acquire(struct gslb_watch *watch);
/* Changes whenever a new snapshot is published: compare to skip acquiring on the hot path. */
uint64_t gslb_watch_generation(struct gslb_watch *watch);

/* ---- explaining a decision (gslb/explain.c) ---- */

struct sbuf;

/* Appends to <out> one JSON object (no newline) explaining how <snap> routes the client
 * <ip_text> asking for <host> (NULL: no Host): its geo result, the service, every candidate
 * region in order with distance, state and reason, and the region and origin chosen (the origin
 * by <balancer>). <health> NULL means everything healthy; pass the prober's view for the choice
 * the proxy makes now. `gslbctl route` and the admin API print exactly this. Returns 0, or
 * -EINVAL when <ip_text> is no address (the object then says so in "error"). */
int gslb_explain(const struct gslb_snapshot *snap, struct gslb_balancer *balancer, struct geo *geo,
                 const char *ip_text, const char *host, const struct gslb_health *health,
                 struct sbuf *out);

#endif

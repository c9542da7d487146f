/* gslb/snapshot.c - compiles a db_topology into the immutable, reference-counted snapshot that
 * decisions read: region names resolved to indexes, unit vectors precomputed for distances, CIDR
 * rules parsed, and host names sorted for binary search.
 *
 * A snapshot is built once per config version (a few times a day in practice), so building
 * favours simple code; lookups favour speed. */
#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "gslb/gslb_int.h"

struct host_entry {
    const char *name; /* exact host, or the suffix of a "*.suffix" pattern */
    uint32_t service;
};

struct snapshot {
    struct publish_obj obj; /* first: publish slots see only this */
    struct gslb_snapshot pub;
    struct host_entry *exact, *wildcard;
    size_t n_exact, n_wildcard;
    int32_t catch_all; /* service of "*", or -1 */
    void **allocs;     /* everything to free with the snapshot */
    size_t n_allocs;
};

static struct snapshot *snapshot_of(const struct gslb_snapshot *pub)
{
    return (struct snapshot *)(uintptr_t)((const char *)pub - offsetof(struct snapshot, pub));
}

static void *snap_alloc(struct snapshot *s, size_t count, size_t size)
{
    void *p = xcalloc(count ? count : 1, size);
    s->allocs = xreallocarray(s->allocs, s->n_allocs + 1, sizeof(*s->allocs));
    s->allocs[s->n_allocs++] = p;
    return p;
}

static const char *snap_strdup(struct snapshot *s, const char *str)
{
    size_t len = strlen(str);
    char *p = snap_alloc(s, len + 1, 1);
    memcpy(p, str, len);
    return p;
}

static void snapshot_destroy(struct publish_obj *obj)
{
    struct snapshot *s = (struct snapshot *)obj;
    for (size_t i = 0; i < s->n_allocs; i++)
        free(s->allocs[i]);
    free(s->allocs);
    free(s);
}

uint64_t gslb_hash_bytes(const void *data, size_t len)
{
    /* FNV-1a over the bytes, then mixed: stable across runs and builds, as consistent hashing
     * needs. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return hash_mix64(h);
}

static uint32_t region_lookup(const struct db_topology *topo, const char *name)
{
    for (size_t i = 0; i < topo->n_regions; i++) {
        if (strcmp(topo->regions[i].name, name) == 0)
            return (uint32_t)i;
    }
    assert(!"validated topology names an unknown region");
    return 0;
}

static uint32_t *regions_resolve(struct snapshot *s, const struct db_topology *topo,
                                 char *const *names, size_t n)
{
    uint32_t *out = snap_alloc(s, n, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = region_lookup(topo, names[i]);
    return out;
}

static void rule_build(struct snapshot *s, const struct db_topology *topo, const struct db_rule *in,
                       struct gslb_rule *out)
{
    out->match = in->match;
    if (in->match == DB_MATCH_CIDR) {
        int rc = ip_cidr_parse(in->value, &out->cidr);
        assert(rc == 0); /* validated by db/ */
        (void)rc;
    } else {
        memcpy(out->code, in->value, 2);
    }
    out->regions = regions_resolve(s, topo, in->regions, in->n_regions);
    out->n_regions = in->n_regions;
}

/* An origin's check: its own fields, else the pool's (zero or NULL: the prober's defaults). */
static struct gslb_check check_merge(struct snapshot *s, const struct db_check *own,
                                     const struct db_check *pool)
{
#define PICK(f)     (own->f ? own->f : pool->f)
#define PICK_STR(f) (PICK(f) ? snap_strdup(s, PICK(f)) : NULL)
    struct gslb_check c = {
        .type = own->type != DB_CHECK_INHERIT ? own->type : pool->type,
        .path = PICK_STR(path),
        .host = PICK_STR(host),
        .expect = PICK_STR(expect),
        .body = PICK_STR(body),
        .method = PICK_STR(method),
        .interval_ms = PICK(interval_ms),
        .timeout_ms = PICK(timeout_ms),
        .rise = PICK(rise),
        .fall = PICK(fall),
    };
#undef PICK_STR
#undef PICK
    return c;
}

static void service_build(struct snapshot *s, const struct db_topology *topo,
                          const struct db_service *in, struct gslb_service *out,
                          uint32_t *next_origin)
{
    out->name = snap_strdup(s, in->name);
    out->policy = in->policy;
    out->sticky = in->sticky;
    out->pool_of_region = snap_alloc(s, topo->n_regions, sizeof(int32_t));
    for (size_t r = 0; r < topo->n_regions; r++)
        out->pool_of_region[r] = -1;
    out->pools = snap_alloc(s, in->n_pools, sizeof(*out->pools));
    out->n_pools = in->n_pools;
    for (size_t p = 0; p < in->n_pools; p++) {
        const struct db_pool *pin = &in->pools[p];
        struct gslb_pool *pool = &out->pools[p];
        pool->region = region_lookup(topo, pin->region);
        pool->min_healthy = pin->min_healthy;
        pool->min_weight_percent = pin->min_weight_percent;
        pool->failback = pin->failback;
        pool->holddown_ms = pin->holddown_ms;
        out->pool_of_region[pool->region] = (int32_t)p;
        pool->origins = snap_alloc(s, pin->n_origins, sizeof(*pool->origins));
        pool->n_origins = pin->n_origins;
        for (size_t o = 0; o < pin->n_origins; o++) {
            struct gslb_origin *origin = &pool->origins[o];
            origin->address = snap_strdup(s, pin->origins[o].address);
            origin->weight = pin->origins[o].weight;
            origin->state = pin->origins[o].state;
            origin->force = pin->origins[o].force;
            origin->index = (*next_origin)++;
            origin->check = check_merge(s, &pin->origins[o].check, &pin->check);
            origin->tls = pin->origins[o].tls;
            origin->tls_insecure = pin->origins[o].tls_insecure;
            origin->tls_name =
                pin->origins[o].tls_name ? snap_strdup(s, pin->origins[o].tls_name) : NULL;
            origin->hash_key = gslb_hash_bytes(origin->address, strlen(origin->address));
        }
    }
    out->rules = snap_alloc(s, in->n_rules, sizeof(*out->rules));
    out->n_rules = in->n_rules;
    for (size_t i = 0; i < in->n_rules; i++)
        rule_build(s, topo, &in->rules[i], &out->rules[i]);
    out->fallback = regions_resolve(s, topo, in->fallback, in->n_fallback);
    out->n_fallback = in->n_fallback;
}

static int host_entry_compare(const void *a, const void *b)
{
    return strcmp(((const struct host_entry *)a)->name, ((const struct host_entry *)b)->name);
}

static void hosts_build(struct snapshot *s, const struct db_topology *topo)
{
    size_t total = 0;
    for (size_t i = 0; i < topo->n_services; i++)
        total += topo->services[i].n_hosts;
    s->exact = snap_alloc(s, total, sizeof(*s->exact));
    s->wildcard = snap_alloc(s, total, sizeof(*s->wildcard));
    s->catch_all = -1;
    for (size_t i = 0; i < topo->n_services; i++) {
        const struct db_service *svc = &topo->services[i];
        for (size_t h = 0; h < svc->n_hosts; h++) {
            const char *host = svc->hosts[h];
            if (strcmp(host, "*") == 0)
                s->catch_all = (int32_t)i;
            else if (strncmp(host, "*.", 2) == 0)
                s->wildcard[s->n_wildcard++] =
                    (struct host_entry){snap_strdup(s, host + 2), (uint32_t)i};
            else
                s->exact[s->n_exact++] = (struct host_entry){snap_strdup(s, host), (uint32_t)i};
        }
    }
    qsort(s->exact, s->n_exact, sizeof(*s->exact), host_entry_compare);
    qsort(s->wildcard, s->n_wildcard, sizeof(*s->wildcard), host_entry_compare);
}

struct gslb_snapshot *gslb_snapshot_build(const struct db_topology *topo)
{
    struct snapshot *s = xcalloc(1, sizeof(*s));
    struct gslb_snapshot *pub = &s->pub;
    uint32_t next_origin = 0;

    publish_obj_init(&s->obj, snapshot_destroy);
    pub->version = topo->version;
    pub->regions = snap_alloc(s, topo->n_regions, sizeof(*pub->regions));
    pub->n_regions = topo->n_regions;
    for (size_t i = 0; i < topo->n_regions; i++) {
        const struct db_region *in = &topo->regions[i];
        struct gslb_region *r = &pub->regions[i];
        r->name = snap_strdup(s, in->name);
        r->lat = in->lat;
        r->lon = in->lon;
        gslb_unit_vector(in->lat, in->lon, r->unit);
        r->state = in->state;
        r->force = in->force;
    }
    pub->services = snap_alloc(s, topo->n_services, sizeof(*pub->services));
    pub->n_services = topo->n_services;
    for (size_t i = 0; i < topo->n_services; i++)
        service_build(s, topo, &topo->services[i], &pub->services[i], &next_origin);
    pub->n_origins = next_origin;
    hosts_build(s, topo);
    return pub;
}

const struct gslb_snapshot *gslb_snapshot_ref(const struct gslb_snapshot *snap)
{
    atomic_fetch_add(&snapshot_of(snap)->obj.refs, 1);
    return snap;
}

void gslb_snapshot_release(const struct gslb_snapshot *snap)
{
    if (snap != NULL)
        publish_obj_release(&snapshot_of(snap)->obj);
}

struct publish_obj *gslb_snapshot_obj(const struct gslb_snapshot *snap)
{
    return &snapshot_of(snap)->obj;
}

const struct gslb_snapshot *gslb_snapshot_from_obj(struct publish_obj *obj)
{
    return obj ? &((struct snapshot *)obj)->pub : NULL;
}

static int host_find(const struct host_entry *table, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, table[mid].name);
        if (c == 0)
            return (int)table[mid].service;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

const struct gslb_service *gslb_service_find(const struct gslb_snapshot *snap, const char *host)
{
    const struct snapshot *s = snapshot_of(snap);
    char name[256];
    size_t len = 0;
    int found;

    /* Normalise: lower case, no port, no trailing dot. An IPv6 literal host keeps its brackets. */
    if (host != NULL) {
        const char *end = host[0] == '[' ? strchr(host, ']') : NULL;
        end = end ? end + 1 : strchr(host, ':');
        len = end ? (size_t)(end - host) : strlen(host);
    }
    if (len >= sizeof(name))
        len = 0; /* longer than any DNS name: only "*" can match */
    for (size_t i = 0; i < len; i++)
        name[i] = (char)tolower((unsigned char)host[i]);
    if (len > 0 && name[len - 1] == '.')
        len--;
    name[len] = '\0';
    if (len > 0) {
        if ((found = host_find(s->exact, s->n_exact, name)) >= 0)
            return &snap->services[found];
        /* The longest suffix first: a.b.example.com tries *.b.example.com, then *.example.com. */
        for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.')) {
            if ((found = host_find(s->wildcard, s->n_wildcard, dot + 1)) >= 0)
                return &snap->services[found];
        }
    }
    return s->catch_all >= 0 ? &snap->services[s->catch_all] : NULL;
}

/* gslb/decide.c - the region decision: rules first, then nearest (or pool order), then the
 * first candidate that can serve.
 *
 * Rules: the most specific kind that matches wins (CIDR, then country, then continent); among
 * CIDR rules the longest prefix, and among equals the first in order. The winning rule's regions
 * come first, the service's other regions follow, so a rule never strands a client when its
 * regions are down. Distances are great-circle distances on a sphere of mean Earth radius, from
 * precomputed unit vectors (atan2 of the cross and dot products: accurate at every distance,
 * antipodes included). Ties (distances within a millimetre, so rounding noise never decides) are
 * broken by region name, so the order never depends on input order.
 *
 * A request needs the order, not the kilometres: candidates are ordered by their squared chord
 * (three differences squared, no trigonometry), which grows with the distance, and only two
 * candidates whose chords are too close to tell apart get their exact distances compared. */
#include <math.h>
#include <string.h>

#include "gslb/gslb_int.h"

void gslb_unit_vector(double lat, double lon, double unit[3])
{
    double p = lat * M_PI / 180, l = lon * M_PI / 180;
    unit[0] = cos(p) * cos(l);
    unit[1] = cos(p) * sin(l);
    unit[2] = sin(p);
}

static double unit_distance_km(const double u[3], const double v[3])
{
    double cx = u[1] * v[2] - u[2] * v[1], cy = u[2] * v[0] - u[0] * v[2],
           cz = u[0] * v[1] - u[1] * v[0];
    double dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
    return GSLB_EARTH_RADIUS_KM * atan2(sqrt(cx * cx + cy * cy + cz * cz), dot);
}

double gslb_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    double a[3], b[3]; /* the first point at longitude 0: only the difference counts */
    gslb_unit_vector(lat1, 0, a);
    gslb_unit_vector(lat2, lon2 - lon1, b);
    return unit_distance_km(a, b);
}

static double unit_chord2(const double u[3], const double v[3])
{
    double dx = u[0] - v[0], dy = u[1] - v[1], dz = u[2] - v[2];
    return dx * dx + dy * dy + dz * dz;
}

double gslb_candidate_distance_km(const struct gslb_snapshot *snap, const struct gslb_decision *d,
                                  const struct gslb_candidate *c)
{
    return c->chord2 < 0 ? -1 : unit_distance_km(d->client_unit, snap->regions[c->region].unit);
}

static enum gslb_region_state region_state(const struct gslb_snapshot *snap,
                                           const struct gslb_service *svc, uint32_t region,
                                           const struct gslb_health *health)
{
    int32_t p = svc->pool_of_region[region];
    if (p < 0 || svc->pools[p].n_origins == 0)
        return GSLB_REGION_EMPTY;
    if (snap->regions[region].state == DB_REGION_DISABLED)
        return GSLB_REGION_DISABLED;
    if (snap->regions[region].state == DB_REGION_DRAINING)
        return GSLB_REGION_DRAINING;
    if (health != NULL && health->region_up != NULL &&
        !health->region_up[(size_t)(svc - snap->services) * snap->n_regions + region])
        return GSLB_REGION_DOWN;
    const struct gslb_pool *pool = &svc->pools[p];
    for (size_t i = 0; i < pool->n_origins; i++) {
        if (gslb_origin_usable(&pool->origins[i], health))
            return GSLB_REGION_UP;
    }
    return GSLB_REGION_DOWN;
}

/* The index of the most specific matching rule, or -1. Ranks: 0 CIDR, 1 country, 2 continent. */
static int rule_match(const struct gslb_service *svc, const struct ip_addr *client,
                      const struct geo_result *geo)
{
    int best = -1, best_rank = 3;
    unsigned best_prefix = 0;
    for (size_t i = 0; i < svc->n_rules; i++) {
        const struct gslb_rule *r = &svc->rules[i];
        switch (r->match) {
        case DB_MATCH_CIDR:
            if (client != NULL && ip_cidr_contains(&r->cidr, client) &&
                (best_rank > 0 || r->cidr.prefix > best_prefix)) {
                best = (int)i;
                best_rank = 0;
                best_prefix = r->cidr.prefix;
            }
            break;
        case DB_MATCH_COUNTRY:
            if (best_rank > 1 && geo != NULL && memcmp(geo->country, r->code, 3) == 0) {
                best = (int)i;
                best_rank = 1;
            }
            break;
        case DB_MATCH_CONTINENT:
            if (best_rank > 2 && geo != NULL && memcmp(geo->continent, r->code, 3) == 0) {
                best = (int)i;
                best_rank = 2;
            }
            break;
        }
    }
    return best;
}

static void candidate_add(struct gslb_decision *out, uint8_t *placed, uint32_t region,
                          enum gslb_reason reason, int rule)
{
    if (placed[region])
        return;
    placed[region] = 1;
    struct gslb_candidate *c = &out->candidates[out->n_candidates++];
    c->region = region;
    c->reason = reason;
    c->rule = rule;
}

/* Distances closer than this are a tie. Equal distances computed along different paths (two
 * regions mirrored about the client, a client at a pole where every longitude is the same point)
 * differ by rounding noise of about 1e-12 km, which must not decide the order. */
#define TIE_KM 1e-6

/* Squared chords further apart than this order their candidates as their distances do. The
 * squared chord 2 - 2 cos(angle) grows at most 2 per radian, so such a pair is at least
 * 0.5e-9 radian (3 mm) apart, beyond TIE_KM; its rounding error (about 1e-15) is far below. */
#define CHORD2_CLEAR 1e-9

static bool candidate_nearer(const struct gslb_snapshot *snap, const struct gslb_decision *d,
                             const struct gslb_candidate *a, const struct gslb_candidate *b)
{
    if (fabs(a->chord2 - b->chord2) > CHORD2_CLEAR)
        return a->chord2 < b->chord2;
    double da = gslb_candidate_distance_km(snap, d, a), db = gslb_candidate_distance_km(snap, d, b);
    if (fabs(da - db) > TIE_KM)
        return da < db;
    return strcmp(snap->regions[a->region].name, snap->regions[b->region].name) < 0;
}

/* Insertion sort of candidates [from, n): lists are short and often nearly sorted. */
static void candidates_sort(const struct gslb_snapshot *snap, struct gslb_decision *out,
                            size_t from)
{
    for (size_t i = from + 1; i < out->n_candidates; i++) {
        struct gslb_candidate c = out->candidates[i];
        size_t j = i;
        while (j > from && candidate_nearer(snap, out, &c, &out->candidates[j - 1])) {
            out->candidates[j] = out->candidates[j - 1];
            j--;
        }
        out->candidates[j] = c;
    }
}

static const enum gslb_reason rule_reasons[] = {
    [DB_MATCH_CIDR] = GSLB_REASON_RULE_CIDR,
    [DB_MATCH_COUNTRY] = GSLB_REASON_RULE_COUNTRY,
    [DB_MATCH_CONTINENT] = GSLB_REASON_RULE_CONTINENT,
};

bool gslb_decide(const struct gslb_snapshot *snap, const struct gslb_service *svc,
                 const struct ip_addr *client, const struct geo_result *geo,
                 const struct gslb_health *health, struct gslb_decision *out)
{
    uint8_t placed[DB_MAX_REGIONS] = {0};
    bool located = geo != NULL && geo->location_source != GEO_LOCATION_NONE;

    out->service = svc;
    out->n_candidates = 0;
    out->chosen = -1;
    int rule = rule_match(svc, client, geo);
    if (rule >= 0) {
        const struct gslb_rule *r = &svc->rules[rule];
        for (size_t i = 0; i < r->n_regions; i++)
            candidate_add(out, placed, r->regions[i], rule_reasons[r->match], rule);
    }
    if (!located) {
        for (size_t i = 0; i < svc->n_fallback; i++)
            candidate_add(out, placed, svc->fallback[i], GSLB_REASON_FALLBACK, -1);
    }
    size_t rest = out->n_candidates;
    enum gslb_reason order = svc->policy == DB_POLICY_FAILOVER ? GSLB_REASON_ORDER
                             : located                         ? GSLB_REASON_NEAREST
                                                               : GSLB_REASON_NO_LOCATION;
    for (size_t p = 0; p < svc->n_pools; p++)
        candidate_add(out, placed, svc->pools[p].region, order, -1);
    if (located)
        gslb_unit_vector(geo->lat, geo->lon, out->client_unit);
    else
        memset(out->client_unit, 0, sizeof(out->client_unit));
    for (size_t i = 0; i < out->n_candidates; i++) {
        struct gslb_candidate *c = &out->candidates[i];
        c->chord2 = located ? unit_chord2(out->client_unit, snap->regions[c->region].unit) : -1;
        c->state = region_state(snap, svc, c->region, health);
    }
    if (order == GSLB_REASON_NEAREST)
        candidates_sort(snap, out, rest);
    for (size_t i = 0; i < out->n_candidates && out->chosen < 0; i++) {
        if (out->candidates[i].state == GSLB_REGION_UP)
            out->chosen = (int)i;
    }
    return out->chosen >= 0;
}

const char *gslb_region_state_name(enum gslb_region_state state)
{
    static const char *const names[] = {"up", "down", "draining", "disabled", "empty"};
    return names[state];
}

const char *gslb_reason_name(enum gslb_reason reason)
{
    static const char *const names[] = {"rule-cidr", "rule-country", "rule-continent", "nearest",
                                        "order",     "fallback",     "no-location"};
    return names[reason];
}

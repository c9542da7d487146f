/* gslb/health.c - the pure part of health checking: rise/fall counting per origin, the quorum of
 * a pool and the failback hold-down of regions. No I/O and no clock (time comes in as an argument),
 * so the rules that decide when traffic moves are tested as plain functions. */
#include <stdio.h>

#include "gslb/gslb_int.h"

bool gslb_health_observe(struct gslb_health_counter *h, bool probe_ok)
{
    if (probe_ok == h->up) {
        h->streak = 0; /* the result confirms the current state */
        return false;
    }
    if (++h->streak < (h->up ? h->fall : h->rise))
        return false;
    h->up = probe_ok;
    h->streak = 0;
    return true;
}

bool gslb_region_gate_update(struct gslb_region_gate *g, bool healthy, int64_t now_ms,
                             int64_t holddown_ms)
{
    if (!healthy) {
        g->healthy_since_ms = -1;
        if (!g->up)
            return false;
        g->up = false; /* leave at once: clients must not wait on a dead region */
        return true;
    }
    if (g->healthy_since_ms < 0)
        g->healthy_since_ms = now_ms;
    if (g->up || now_ms - g->healthy_since_ms < holddown_ms)
        return false;
    g->up = true; /* healthy for the whole hold-down: come back, once */
    return true;
}

bool gslb_pool_quorum(const struct gslb_pool *pool, const bool *up, char *why, size_t whylen)
{
    long healthy = 0, healthy_weight = 0, weight = 0;
    for (size_t i = 0; i < pool->n_origins; i++) {
        const struct gslb_origin *o = &pool->origins[i];
        if (o->state != DB_ORIGIN_DISABLED)
            weight += o->weight;
        if (o->state == DB_ORIGIN_ENABLED && o->weight > 0 && up[i]) {
            healthy++;
            healthy_weight += o->weight;
        }
    }
    if (healthy == 0) {
        snprintf(why, whylen, "no healthy origin left");
        return false;
    }
    if (healthy < pool->min_healthy) {
        snprintf(why, whylen, "%ld of %zu origins healthy, quorum is %d", healthy, pool->n_origins,
                 pool->min_healthy);
        return false;
    }
    if (healthy_weight * 100 < weight * pool->min_weight_percent) {
        snprintf(why, whylen, "%ld%% of the weight healthy, quorum is %d%%",
                 healthy_weight * 100 / weight, pool->min_weight_percent);
        return false;
    }
    snprintf(why, whylen, "%ld of %zu origins healthy", healthy, pool->n_origins);
    return true;
}

/* gslb/gslb_int.h - what the files of gslb/ share and nobody else sees. */
#ifndef GSLB_GSLB_INT_H
#define GSLB_GSLB_INT_H

#include "common/hash.h"
#include "common/publish.h"
#include "gslb/gslb.h"

/* An origin-selection policy: one file each (lb_wrr.c, lb_hash.c). <state> is the policy's slot
 * array for the pool's origins, zeroed when the balancer is created; <usable> says which origins
 * may be picked (at least one may). Returns the index of the pick within the pool. */
struct gslb_lb_policy {
    const char *name;
    size_t (*pick)(int32_t *state, const struct gslb_pool *pool, const bool *usable, uint64_t key);
};

extern const struct gslb_lb_policy gslb_lb_wrr;
extern const struct gslb_lb_policy gslb_lb_hash;

/* snapshot.c: a snapshot as a publish slot holds it (watch.c), and back. */
struct publish_obj *gslb_snapshot_obj(const struct gslb_snapshot *snap);
const struct gslb_snapshot *gslb_snapshot_from_obj(struct publish_obj *obj);

uint64_t gslb_hash_bytes(const void *data, size_t len);

/* decide.c: the point at <lat>, <lon> (degrees) on the unit sphere. */
void gslb_unit_vector(double lat, double lon, double unit[3]);

/* Whether <o> may take new requests: enabled, weighted and healthy. */
static inline bool gslb_origin_usable(const struct gslb_origin *o, const struct gslb_health *health)
{
    return o->state == DB_ORIGIN_ENABLED && o->weight > 0 &&
           (health == NULL || health->origin_up == NULL || health->origin_up[o->index]);
}

#endif

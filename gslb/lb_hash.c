/* gslb/lb_hash.c - sticky selection: weighted rendezvous (highest random weight) hashing of the
 * client address over a region's origins.
 *
 * Every origin gets a score from hash(client, origin) scaled by its weight; the highest wins.
 * A client keeps its origin as long as that origin stays usable, and when one origin leaves only
 * its own clients move, spread over the others in proportion to their weights. No ring to build,
 * and the answer depends only on the set of usable origins, never on their order. */
#include <math.h>

#include "gslb/gslb_int.h"

static size_t hash_pick(int32_t *state, const struct gslb_pool *pool, const bool *usable,
                        uint64_t key)
{
    double best_score = -INFINITY;
    size_t best = 0;
    (void)state;
    for (size_t i = 0; i < pool->n_origins; i++) {
        if (!usable[i])
            continue;
        uint64_t h = hash_mix64(key ^ pool->origins[i].hash_key);
        /* A uniform draw in (0, 1), then weight / -ln(u): the weighted rendezvous score. */
        double u = ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double score = pool->origins[i].weight / -log(u);
        if (score > best_score) {
            best_score = score;
            best = i;
        }
    }
    return best;
}

const struct gslb_lb_policy gslb_lb_hash = {"consistent-hash", hash_pick};

/* gslb/lb_wrr.c - smooth weighted round-robin (the algorithm nginx uses for upstreams).
 *
 * Each pick adds every usable origin's weight to its counter, takes the largest counter and
 * subtracts the total from it. Over any window of sum(weights) picks each origin gets exactly its
 * share, and picks of a heavy origin are spread out rather than sent in a burst. */
#include "gslb/gslb_int.h"

static size_t wrr_pick(int32_t *state, const struct gslb_pool *pool, const bool *usable,
                       uint64_t key)
{
    int32_t total = 0;
    size_t best = 0;
    bool have = false;
    (void)key;
    for (size_t i = 0; i < pool->n_origins; i++) {
        if (!usable[i])
            continue;
        state[i] += pool->origins[i].weight;
        total += pool->origins[i].weight;
        if (!have || state[i] > state[best]) {
            best = i;
            have = true;
        }
    }
    state[best] -= total;
    return best;
}

const struct gslb_lb_policy gslb_lb_wrr = {"weighted-round-robin", wrr_pick};

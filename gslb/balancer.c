/* gslb/balancer.c - picks an origin inside the chosen region through the service's policy.
 *
 * A balancer holds the per-origin counters of one snapshot for one thread, so round-robin needs
 * no atomics; a worker creates a new one when it moves to a new snapshot. */
#include <stdlib.h>
#include <sys/socket.h>

#include "common/xalloc.h"
#include "gslb/gslb_int.h"

/* Pools larger than this are rare; bigger ones take a heap buffer for the usable flags. */
#define USABLE_ON_STACK 64

struct gslb_balancer {
    int32_t *state; /* indexed by origin index */
};

struct gslb_balancer *gslb_balancer_create(const struct gslb_snapshot *snap)
{
    struct gslb_balancer *b = xcalloc(1, sizeof(*b));
    b->state = xcalloc(snap->n_origins ? snap->n_origins : 1, sizeof(*b->state));
    return b;
}

void gslb_balancer_destroy(struct gslb_balancer *balancer)
{
    if (balancer == NULL)
        return;
    free(balancer->state);
    free(balancer);
}

const struct gslb_origin *gslb_origin_pick(const struct gslb_snapshot *snap,
                                           struct gslb_balancer *balancer,
                                           const struct gslb_service *service, uint32_t region,
                                           const struct ip_addr *client,
                                           const struct gslb_health *health)
{
    int32_t p = region < snap->n_regions ? service->pool_of_region[region] : -1;
    if (p < 0)
        return NULL;
    const struct gslb_pool *pool = &service->pools[p];
    bool stack_usable[USABLE_ON_STACK];
    bool *usable =
        pool->n_origins <= USABLE_ON_STACK ? stack_usable : xmalloc(pool->n_origins * sizeof(bool));
    size_t n_usable = 0;
    for (size_t i = 0; i < pool->n_origins; i++) {
        usable[i] = gslb_origin_usable(&pool->origins[i], health);
        n_usable += usable[i];
    }
    const struct gslb_origin *picked = NULL;
    if (n_usable > 0) {
        const struct gslb_lb_policy *policy = service->sticky ? &gslb_lb_hash : &gslb_lb_wrr;
        uint64_t key = 0;
        if (client != NULL) {
            struct ip_addr a = ip_addr_unmap_v4(client);
            key = gslb_hash_bytes(a.bytes, a.family == AF_INET ? 4 : 16);
        }
        int32_t *state = balancer->state + (pool->n_origins ? pool->origins[0].index : 0);
        picked = &pool->origins[policy->pick(state, pool, usable, key)];
    }
    if (usable != stack_usable)
        free(usable);
    return picked;
}

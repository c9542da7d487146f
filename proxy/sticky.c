/* proxy/sticky.c - where sticky clients were last sent, so that draining lets them finish.
 *
 * A sticky service sends each client address to the same origin (rendezvous hashing). Draining
 * that origin, or its whole region, must take no new clients but let the clients already there
 * finish their sessions. This table remembers, per client address, the origin it was last sent
 * to and when; a client seen within the drain window keeps its draining origin, and every request
 * it makes there keeps the memory fresh, so only sessions idle for longer than the window move.
 *
 * One table per proxy, shared by the workers without locks: each slot is one 64-bit word written
 * and read atomically (client tag 20 bits, origin tag 16 bits, time 28 bits in seconds, which
 * wraps after 8 years; it wrapped after 12 days until 2026-12-07, when an entry left alone that
 * long looked fresh again). A slot may be overwritten by another client that lands on it; that
 * client's predecessor then loses its memory and is treated as new (a client taken for another
 * is 1 in a million, and gets a draining origin of its service). The origin tag is 16 bits of the
 * origin's hash: the caller checks it against the service's origins (a clash between two
 * draining origins of one service is 1 in 65,536). */
#include <stdlib.h>

#include "common/hash.h"
#include "common/xalloc.h"
#include "proxy/proxy_int.h"

#define STICKY_SLOTS (1u << 16) /* 512 KiB, pages touched only by sticky traffic */

static uint64_t client_key(const struct ip_addr *client)
{
    struct ip_addr a = ip_addr_unmap_v4(client);
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)a.family;
    for (size_t i = 0; i < (a.family == AF_INET ? 4u : 16u); i++)
        h = hash_mix64(h ^ a.bytes[i]);
    return h | 1; /* never 0: an empty slot */
}

void sticky_init(struct sticky_table *t)
{
    t->slots = xcalloc(STICKY_SLOTS, sizeof(*t->slots));
}

void sticky_fini(struct sticky_table *t)
{
    free(t->slots);
    t->slots = NULL;
}

#define CLIENT_TAG   0xfffff00000000000ULL
#define ORIGIN_SHIFT 28
#define TIME_BITS    0xfffffffULL

void sticky_remember(struct sticky_table *t, const struct ip_addr *client,
                     const struct gslb_origin *origin, int64_t now_ms)
{
    uint64_t key = client_key(client);
    uint64_t entry = (key & CLIENT_TAG) | (origin->hash_key & 0xffff) << ORIGIN_SHIFT |
                     ((uint64_t)(now_ms / 1000) & TIME_BITS);
    atomic_store_explicit(&t->slots[key & (STICKY_SLOTS - 1)], entry, memory_order_relaxed);
}

bool sticky_recall(const struct sticky_table *t, const struct ip_addr *client, int window_ms,
                   int64_t now_ms, uint16_t *origin_tag_out)
{
    if (window_ms <= 0)
        return false;
    uint64_t key = client_key(client);
    uint64_t entry =
        atomic_load_explicit(&t->slots[key & (STICKY_SLOTS - 1)], memory_order_relaxed);
    if (entry == 0 || (entry & CLIENT_TAG) != (key & CLIENT_TAG))
        return false;
    uint64_t age = ((uint64_t)(now_ms / 1000) - (entry & TIME_BITS)) & TIME_BITS;
    if (age * 1000 > (uint64_t)window_ms)
        return false;
    *origin_tag_out = (uint16_t)(entry >> ORIGIN_SHIFT);
    return true;
}

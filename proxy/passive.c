/* proxy/passive.c - passive checks shared by the workers: live traffic's verdict on origins.
 *
 * Every worker reports each response (or failure) of an origin here. After the configured number
 * of failures in a row, counted over all workers, the origin is ejected for a back-off period
 * that doubles with each repeat (up to 5 minutes) and is reset by good behaviour after five
 * periods; never more than the configured share of a pool is ejected at once.
 *
 * The board is an open-addressing table keyed by the origin's address hash (so an address used
 * by several pools is judged once), fixed in size at start-up. Each worker's view of a snapshot
 * holds a reference to the entries of its origins, taken and given back under the board's lock
 * when the view is made and freed; an entry no view holds any more is reclaimed (its slot marked
 * a tombstone, which lookups pass over and additions reuse, or freed when no probe needs to pass
 * it), so origins that come and go over months never fill the board. Its fields are atomics,
 * written by whichever worker saw the event, without the lock. An ejection is claimed by a
 * compare-and-swap on its deadline, so two workers never eject the same origin twice; the pool cap
 * is read without a lock and may be passed by one when two workers eject two origins of a pool at
 * the same instant. A generation counter tells workers to refresh their view of who is ejected. */
#include <stdlib.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "proxy/proxy_int.h"

#define MAX_EJECTION_MS  300000
#define MAX_BACKOFF_STEP 5
#define SLOT_FREE        0
#define SLOT_TOMBSTONE   2 /* keys are odd */

void passive_board_init(struct passive_board *b)
{
    *b = (struct passive_board){.slots = xcalloc(PASSIVE_BOARD_SLOTS, sizeof(*b->slots))};
    pthread_mutex_init(&b->lock, NULL);
    atomic_init(&b->generation, 1);
}

void passive_board_fini(struct passive_board *b)
{
    pthread_mutex_destroy(&b->lock);
    free(b->slots);
    b->slots = NULL;
}

struct passive_entry *passive_entry_get(struct passive_board *b, uint64_t key)
{
    key |= 1;
    struct passive_entry *e = NULL, *reusable = NULL;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < PASSIVE_BOARD_SLOTS; i++) {
        struct passive_entry *slot = &b->slots[(key + i) & (PASSIVE_BOARD_SLOTS - 1)];
        uint64_t seen = atomic_load_explicit(&slot->key, memory_order_relaxed);
        if (seen == key) {
            e = slot;
            break;
        }
        if (seen == SLOT_TOMBSTONE && reusable == NULL)
            reusable = slot;
        if (seen == SLOT_FREE) { /* the key is in no slot further on */
            reusable = reusable ? reusable : slot;
            break;
        }
    }
    if (e == NULL && reusable) { /* a new origin starts with a clean record */
        e = reusable;
        atomic_store(&e->failures, 0);
        atomic_store(&e->ejections, 0);
        atomic_store(&e->until_ms, 0);
        atomic_store(&e->last_until_ms, 0);
        atomic_store(&e->key, key);
    }
    if (e && e->refs++ == 0)
        b->live++;
    pthread_mutex_unlock(&b->lock);
    if (e == NULL && !atomic_exchange(&b->full_warned, true))
        log_warn("proxy: more than %u origin addresses in use: passive checks skip the rest",
                 PASSIVE_BOARD_SLOTS);
    return e;
}

static uint64_t slot_key(struct passive_board *b, size_t i)
{
    return atomic_load_explicit(&b->slots[i & (PASSIVE_BOARD_SLOTS - 1)].key, memory_order_relaxed);
}

/* A run of tombstones that a free slot ends stops no probe that the free slot would not: the
 * whole run, through slot <at>, is free again (a board of tombstones would make every lookup
 * scan it). */
static void tombstones_clear(struct passive_board *b, size_t at)
{
    size_t end = at;
    while (slot_key(b, end) == SLOT_TOMBSTONE && end - at < PASSIVE_BOARD_SLOTS)
        end++;
    if (slot_key(b, end) != SLOT_FREE)
        return;
    for (size_t i = end - 1; slot_key(b, i) == SLOT_TOMBSTONE; i--)
        atomic_store(&b->slots[i & (PASSIVE_BOARD_SLOTS - 1)].key, SLOT_FREE);
}

void passive_entry_put(struct passive_board *b, struct passive_entry *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&b->lock);
    if (--e->refs == 0) {
        atomic_store(&e->key, SLOT_TOMBSTONE);
        if (--b->live == 0) { /* nothing held: the board starts over */
            for (size_t i = 0; i < PASSIVE_BOARD_SLOTS; i++)
                atomic_store(&b->slots[i].key, SLOT_FREE);
        } else {
            tombstones_clear(b, (size_t)(e - b->slots));
        }
    }
    pthread_mutex_unlock(&b->lock);
}

static bool ejected(const struct passive_entry *e)
{
    return e && atomic_load_explicit(&e->until_ms, memory_order_relaxed) != 0;
}

void passive_sync(struct wsnap *ws, struct passive_board *b, int64_t now)
{
    int64_t next = INT64_MAX;
    uint64_t generation = atomic_load(&b->generation);
    for (size_t i = 0; i < ws->snap->n_origins; i++) {
        struct passive_entry *e = ws->passive[i];
        int64_t until = e ? atomic_load_explicit(&e->until_ms, memory_order_relaxed) : 0;
        if (until != 0 && until <= now) { /* due: whoever sees it first lifts it */
            if (atomic_compare_exchange_strong(&e->until_ms, &until, 0))
                atomic_fetch_add(&b->generation, 1); /* the others' view; ours resyncs once */
            until = 0;
        }
        if (until != 0 && until < next)
            next = until;
        ws->origin_up[i] = wsnap_origin_up(ws, (uint32_t)i);
    }
    ws->passive_generation = generation;
    ws->next_expiry_ms = next;
}

bool passive_report(struct passive_board *b, const struct proxy_config *cfg, struct wsnap *ws,
                    const struct gslb_pool *pool, uint32_t index, bool failure, int64_t *until_out)
{
    struct passive_entry *e = ws->passive[index];
    int64_t now = proxy_now_ms();
    if (e == NULL)
        return false;
    if (!failure) {
        if (atomic_load_explicit(&e->failures, memory_order_relaxed) != 0)
            atomic_store_explicit(&e->failures, 0, memory_order_relaxed);
        if (atomic_load_explicit(&e->ejections, memory_order_relaxed) != 0 && !ejected(e) &&
            now > atomic_load(&e->last_until_ms) + 5LL * cfg->passive_ejection_ms)
            atomic_store(&e->ejections, 0); /* well behaved for long enough: the back-off resets */
        return false;
    }
    if (atomic_fetch_add(&e->failures, 1) + 1 < (uint32_t)cfg->passive_failures || ejected(e))
        return false;
    /* Never eject more than the allowed share of the pool: a bad deploy everywhere must not
     * empty a region through passive checks alone. */
    size_t out = 1;
    for (size_t o = 0; o < pool->n_origins; o++)
        out += ejected(ws->passive[pool->origins[o].index]);
    if (out * 100 > pool->n_origins * (size_t)cfg->passive_max_ejected_percent)
        return false;
    uint32_t step = atomic_load(&e->ejections);
    step = step < MAX_BACKOFF_STEP ? step + 1 : step;
    int64_t period = (int64_t)cfg->passive_ejection_ms << (step - 1), expected = 0;
    int64_t until = now + (period < MAX_EJECTION_MS ? period : MAX_EJECTION_MS);
    if (!atomic_compare_exchange_strong(&e->until_ms, &expected, until))
        return false; /* another worker ejected it a moment ago */
    atomic_store(&e->ejections, step);
    atomic_store(&e->last_until_ms, until);
    atomic_store(&e->failures, 0);
    atomic_fetch_add(&b->generation, 1);
    *until_out = until;
    return true;
}

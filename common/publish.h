/* common/publish.h - one writer publishes immutable objects, many readers borrow them, no locks.
 *
 * Used for the things that are rebuilt aside and swapped in while requests go on: the topology
 * snapshot (gslb/) and the open geo databases (geo/). A reader takes a reference with
 * publish_slot_acquire() and drops it with publish_obj_release(); it never blocks and never sees a
 * half-built object. The writer swaps with publish_slot_swap(), which waits only for readers that
 * are inside the few instructions between loading the pointer and counting their reference, then
 * drops the slot's reference to the old object; the last reader to release it destroys it.
 *
 * Readers on a hot path keep their reference and compare publish_slot_generation() with the one
 * they acquired, so the shared counters are touched only when something changed. */
#ifndef COMMON_PUBLISH_H
#define COMMON_PUBLISH_H

#include <stdatomic.h>
#include <stdint.h>

/* Embedded as the first member of a published object. */
struct publish_obj {
    atomic_uint refs;
    void (*destroy)(struct publish_obj *obj);
};

struct publish_slot {
    _Atomic(struct publish_obj *) current;
    atomic_uint entering; /* readers between loading <current> and counting their reference */
    atomic_uint_fast64_t generation;
};

/* Starts <obj> with one reference, owned by whoever publishes it. */
void publish_obj_init(struct publish_obj *obj, void (*destroy)(struct publish_obj *obj));
void publish_obj_release(struct publish_obj *obj); /* accepts NULL */

/* <slot> starts empty. publish_slot_fini() drops the slot's reference to what it holds. */
void publish_slot_init(struct publish_slot *slot);
void publish_slot_fini(struct publish_slot *slot);

/* Returns a new reference to the current object (the caller releases it), or NULL if none. */
struct publish_obj *publish_slot_acquire(struct publish_slot *slot);

/* Publishes <obj> (takes ownership of its reference; NULL empties the slot) and bumps the
 * generation. */
void publish_slot_swap(struct publish_slot *slot, struct publish_obj *obj);

static inline uint64_t publish_slot_generation(struct publish_slot *slot)
{
    return atomic_load_explicit(&slot->generation, memory_order_acquire);
}

#endif

/* common/publish.c - see publish.h.
 *
 * The race every reference-counted swap has to close: a reader loads the old pointer, the writer
 * swaps and drops the last reference, the reader then increments freed memory. Readers announce
 * themselves in <entering> around the load-and-count; the writer, after the exchange, waits until
 * <entering> is zero before dropping its reference. Readers that arrive after the exchange load the
 * new pointer, so the wait ends within a few instructions of theirs. All operations are
 * sequentially consistent, which this argument relies on. */
#include <sched.h>

#include "common/publish.h"

void publish_obj_init(struct publish_obj *obj, void (*destroy)(struct publish_obj *obj))
{
    atomic_init(&obj->refs, 1);
    obj->destroy = destroy;
}

void publish_obj_release(struct publish_obj *obj)
{
    if (obj != NULL && atomic_fetch_sub(&obj->refs, 1) == 1)
        obj->destroy(obj);
}

void publish_slot_init(struct publish_slot *slot)
{
    atomic_init(&slot->current, NULL);
    atomic_init(&slot->entering, 0);
    atomic_init(&slot->generation, 0);
}

void publish_slot_fini(struct publish_slot *slot)
{
    publish_obj_release(atomic_exchange(&slot->current, NULL));
}

struct publish_obj *publish_slot_acquire(struct publish_slot *slot)
{
    atomic_fetch_add(&slot->entering, 1);
    struct publish_obj *obj = atomic_load(&slot->current);
    if (obj != NULL)
        atomic_fetch_add(&obj->refs, 1);
    atomic_fetch_sub(&slot->entering, 1);
    return obj;
}

void publish_slot_swap(struct publish_slot *slot, struct publish_obj *obj)
{
    struct publish_obj *old = atomic_exchange(&slot->current, obj);
    atomic_fetch_add(&slot->generation, 1);
    while (atomic_load(&slot->entering) != 0)
        sched_yield();
    publish_obj_release(old);
}

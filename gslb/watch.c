/* gslb/watch.c - keeps the published snapshot in step with the store.
 *
 * A thread of its own, with its own SQLite connection, polls the config version (one indexed
 * read) every interval; when it changed, it loads the topology, builds a snapshot and publishes
 * it. Request handling only ever acquires the published pointer, so a slow disk or a writer
 * holding the database lock delays a reload, never a request. A failed load keeps the current
 * snapshot and is retried at the next tick. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "gslb/gslb_int.h"

struct gslb_watch {
    struct publish_slot slot;
    struct db *db;
    int interval_ms;
    int64_t version; /* of the published snapshot */
    pthread_t thread;
    pthread_mutex_t lock; /* guards <stopping> for the condition variable */
    pthread_cond_t wake;
    bool stopping;
};

/* Loads and publishes the topology if its version differs from the published one. */
static int watch_refresh(struct gslb_watch *w, char *err, size_t errlen)
{
    int64_t version;
    struct db_topology *topo = NULL;
    if (db_config_version(w->db, &version) != 0) {
        snprintf(err, errlen, "cannot read the config version");
        return -EIO;
    }
    if (version == w->version && publish_slot_generation(&w->slot) > 0)
        return 0;
    int rc = db_topology_load(w->db, &topo, err, errlen);
    if (rc != 0)
        return rc;
    struct gslb_snapshot *snap = gslb_snapshot_build(topo);
    w->version = topo->version;
    db_topology_free(topo);
    publish_slot_swap(&w->slot, gslb_snapshot_obj(snap));
    log_info("gslb: config version %lld in effect (%zu regions, %zu services, %zu origins)",
             (long long)snap->version, snap->n_regions, snap->n_services, snap->n_origins);
    return 0;
}

static void *watch_main(void *arg)
{
    struct gslb_watch *w = arg;
    char err[256];
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += w->interval_ms / 1000;
        deadline.tv_nsec += (long)(w->interval_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        while (!w->stopping && pthread_cond_timedwait(&w->wake, &w->lock, &deadline) != ETIMEDOUT)
            ;
        if (w->stopping)
            break;
        pthread_mutex_unlock(&w->lock);
        if (watch_refresh(w, err, sizeof(err)) != 0)
            log_warn("gslb: reload failed, keeping config version %lld: %s", (long long)w->version,
                     err);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct gslb_watch *gslb_watch_start(const char *db_path, int interval_ms, char *err, size_t errlen)
{
    struct gslb_watch *w = xcalloc(1, sizeof(*w));
    pthread_condattr_t attr;

    publish_slot_init(&w->slot);
    w->interval_ms = interval_ms > 0 ? interval_ms : 250;
    w->version = -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    if ((w->db = db_open(db_path, err, errlen)) == NULL || watch_refresh(w, err, errlen) != 0)
        goto fail;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        snprintf(err, errlen, "gslb: cannot start the watch thread");
        goto fail;
    }
    return w;
fail:
    db_close(w->db);
    publish_slot_fini(&w->slot);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return NULL;
}

void gslb_watch_stop(struct gslb_watch *watch)
{
    if (watch == NULL)
        return;
    pthread_mutex_lock(&watch->lock);
    watch->stopping = true;
    pthread_cond_signal(&watch->wake);
    pthread_mutex_unlock(&watch->lock);
    pthread_join(watch->thread, NULL);
    db_close(watch->db);
    publish_slot_fini(&watch->slot);
    pthread_cond_destroy(&watch->wake);
    pthread_mutex_destroy(&watch->lock);
    free(watch);
}

const struct gslb_snapshot *gslb_watch_acquire(struct gslb_watch *watch)
{
    return gslb_snapshot_from_obj(publish_slot_acquire(&watch->slot));
}

uint64_t gslb_watch_generation(struct gslb_watch *watch)
{
    return publish_slot_generation(&watch->slot);
}

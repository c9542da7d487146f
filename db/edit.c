/* db/edit.c - every change to the topology: whole imports and single-object edits.
 *
 * All of them run through edit_run(): inside one IMMEDIATE transaction it reads the stored
 * topology, applies the change to the in-memory model, validates the whole result, rewrites the
 * tables, bumps the config version and appends the audit entry with the object before and after.
 * One path means one set of rules for what may be stored, whoever makes the change. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "db/db_int.h"

struct edit_audit {
    char object[200];
    char *before, *after;         /* JSON, owned */
    const char *release_holds_of; /* a region: also lift its manual-failback holds */
};

typedef int (*edit_fn)(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                       char *err, size_t errlen);

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Runs <fn> as one change; with <expected> not negative, only while the stored config version is
 * <expected> (-ESTALE otherwise), checked inside the same transaction. */
static int edit_run_if(struct db *db, int64_t expected, const char *actor, const char *action,
                       edit_fn fn, const void *arg, char *err, size_t errlen)
{
    struct db_topology *topo = NULL;
    struct edit_audit audit = {.object = ""};
    int rc;

    if ((rc = db_tx_begin(db, true, err, errlen)) ||
        (rc = db_topology_read(db, &topo, err, errlen)) ||
        (expected >= 0 && topo->version != expected &&
         (rc = fail(err, errlen, -ESTALE,
                    "the configuration is at version %lld now, not %lld: reload it and retry",
                    (long long)topo->version, (long long)expected))) ||
        (rc = fn(topo, arg, &audit, err, errlen)) ||
        (rc = db_topology_validate(topo, err, errlen)) ||
        (rc = db_topology_write(db, topo, err, errlen)) ||
        (audit.release_holds_of &&
         (rc = db_failback_release(db, audit.release_holds_of, err, errlen))) ||
        (rc = db_change_record(db, actor, action, audit.object, audit.before, audit.after, err,
                               errlen)))
        goto out;
    rc = db_tx_commit(db, err, errlen);
out:
    db_tx_rollback(db);
    db_topology_free(topo);
    free(audit.before);
    free(audit.after);
    return rc;
}

static int edit_run(struct db *db, const char *actor, const char *action, edit_fn fn,
                    const void *arg, char *err, size_t errlen)
{
    return edit_run_if(db, -1, actor, action, fn, arg, err, errlen);
}

/* Removes element <index> of an array of <n> elements of <size> bytes. */
static void array_remove(void *base, size_t *n, size_t index, size_t size)
{
    char *p = base;
    memmove(p + index * size, p + (index + 1) * size, (*n - index - 1) * size);
    (*n)--;
}

/* ---- import ---- */

static int import_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                        char *err, size_t errlen)
{
    struct db_topology *fresh = (struct db_topology *)(uintptr_t)arg;
    (void)err;
    (void)errlen;
    snprintf(audit->object, sizeof(audit->object), "topology");
    audit->before = db_topology_to_json(topo);
    audit->after = db_topology_to_json(fresh);
    /* Swap contents so the caller's model is written and the old one freed with <topo>. */
    struct db_topology tmp = *topo;
    *topo = *fresh;
    *fresh = tmp;
    return 0;
}

int db_import_json_if(struct db *db, const char *text, size_t len, int64_t expected,
                      const char *actor, char *err, size_t errlen)
{
    struct db_topology *fresh = NULL;
    int rc = db_topology_from_json(text, len, &fresh, err, errlen);
    if (rc == 0)
        rc = edit_run_if(db, expected, actor, "topology.import", import_apply, fresh, err, errlen);
    db_topology_free(fresh);
    return rc;
}

int db_import_json(struct db *db, const char *text, size_t len, const char *actor, char *err,
                   size_t errlen)
{
    return db_import_json_if(db, text, len, -1, actor, err, errlen);
}

char *db_export_json(struct db *db, char *err, size_t errlen)
{
    struct db_topology *topo = NULL;
    if (db_topology_load(db, &topo, err, errlen) != 0)
        return NULL;
    char *text = db_topology_to_json(topo);
    db_topology_free(topo);
    return text;
}

/* ---- regions ---- */

static ssize_t region_index(const struct db_topology *topo, const char *name)
{
    for (size_t i = 0; i < topo->n_regions; i++) {
        if (strcmp(topo->regions[i].name, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* The index of region <name> for an edit that needs it, with the audit entry's object named;
 * -1 with a message when there is no such region. */
static ssize_t region_for_edit(const struct db_topology *topo, const char *name,
                               struct edit_audit *audit, char *err, size_t errlen)
{
    ssize_t i = region_index(topo, name);
    snprintf(audit->object, sizeof(audit->object), "region %s", name);
    if (i < 0)
        fail(err, errlen, -ENOENT, "regions[%s]: no such region", name);
    return i;
}

static int region_add_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                            char *err, size_t errlen)
{
    const struct db_region *r = arg;
    snprintf(audit->object, sizeof(audit->object), "region %s", r->name);
    if (region_index(topo, r->name) >= 0)
        return fail(err, errlen, -EEXIST, "regions[%s]: already exists", r->name);
    topo->regions = xreallocarray(topo->regions, topo->n_regions + 1, sizeof(*topo->regions));
    db_region_copy(&topo->regions[topo->n_regions++], r);
    audit->after = db_region_to_json(r);
    return 0;
}

static int region_set_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                            char *err, size_t errlen)
{
    const struct db_region *r = arg;
    ssize_t i = region_for_edit(topo, r->name, audit, err, errlen);
    if (i < 0)
        return -ENOENT;
    audit->before = db_region_to_json(&topo->regions[i]);
    db_region_fini(&topo->regions[i]);
    db_region_copy(&topo->regions[i], r);
    audit->after = db_region_to_json(r);
    return 0;
}

static bool strv_contains(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0)
            return true;
    }
    return false;
}

static int region_remove_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                               char *err, size_t errlen)
{
    const char *name = arg;
    ssize_t i = region_for_edit(topo, name, audit, err, errlen);
    if (i < 0)
        return -ENOENT;
    for (size_t s = 0; s < topo->n_services; s++) {
        struct db_service *svc = &topo->services[s];
        if (db_service_pool(svc, name))
            return fail(err, errlen, -EBUSY,
                        "regions[%s]: still has a pool in services[%s]; remove its origins first",
                        name, svc->name);
        if (strv_contains(svc->fallback, svc->n_fallback, name))
            return fail(err, errlen, -EBUSY, "regions[%s]: still named in services[%s].fallback",
                        name, svc->name);
        for (size_t r = 0; r < svc->n_rules; r++) {
            if (strv_contains(svc->rules[r].regions, svc->rules[r].n_regions, name))
                return fail(err, errlen, -EBUSY,
                            "regions[%s]: still named in services[%s].rules[%zu]", name, svc->name,
                            r);
        }
    }
    audit->before = db_region_to_json(&topo->regions[i]);
    db_region_fini(&topo->regions[i]);
    array_remove(topo->regions, &topo->n_regions, (size_t)i, sizeof(*topo->regions));
    return 0;
}

int db_region_add(struct db *db, const struct db_region *region, const char *actor, char *err,
                  size_t errlen)
{
    return edit_run(db, actor, "region.add", region_add_apply, region, err, errlen);
}

int db_region_set_if(struct db *db, const struct db_region *region, int64_t expected,
                     const char *actor, char *err, size_t errlen)
{
    return edit_run_if(db, expected, actor, "region.set", region_set_apply, region, err, errlen);
}

int db_region_set(struct db *db, const struct db_region *region, const char *actor, char *err,
                  size_t errlen)
{
    return db_region_set_if(db, region, -1, actor, err, errlen);
}

int db_region_remove(struct db *db, const char *name, const char *actor, char *err, size_t errlen)
{
    return edit_run(db, actor, "region.remove", region_remove_apply, name, err, errlen);
}

/* ---- services ---- */

/* Copies the service's own fields (not pools or rules) from <src> into <dst>. */
static void service_fields_copy(struct db_service *dst, const struct db_service *src)
{
    dst->name = xstrdup(src->name);
    dst->hosts = db_strv_copy(src->hosts, src->n_hosts);
    dst->n_hosts = src->n_hosts;
    dst->policy = src->policy;
    dst->sticky = src->sticky;
    dst->fallback = db_strv_copy(src->fallback, src->n_fallback);
    dst->n_fallback = src->n_fallback;
}

static int service_add_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                             char *err, size_t errlen)
{
    const struct db_service *s = arg;
    snprintf(audit->object, sizeof(audit->object), "service %s", s->name);
    if (db_topology_service(topo, s->name))
        return fail(err, errlen, -EEXIST, "services[%s]: already exists", s->name);
    topo->services = xreallocarray(topo->services, topo->n_services + 1, sizeof(*topo->services));
    struct db_service *added = memset(&topo->services[topo->n_services++], 0, sizeof(*added));
    service_fields_copy(added, s);
    audit->after = db_service_to_json(added);
    return 0;
}

static int service_set_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                             char *err, size_t errlen)
{
    const struct db_service *s = arg;
    struct db_service *cur = db_topology_service_mut(topo, s->name);
    snprintf(audit->object, sizeof(audit->object), "service %s", s->name);
    if (cur == NULL)
        return fail(err, errlen, -ENOENT, "services[%s]: no such service", s->name);
    audit->before = db_service_to_json(cur);
    free(cur->name);
    db_strv_free(cur->hosts, cur->n_hosts);
    db_strv_free(cur->fallback, cur->n_fallback);
    service_fields_copy(cur, s);
    audit->after = db_service_to_json(cur);
    return 0;
}

static int service_remove_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                                char *err, size_t errlen)
{
    const char *name = arg;
    struct db_service *cur = db_topology_service_mut(topo, name);
    snprintf(audit->object, sizeof(audit->object), "service %s", name);
    if (cur == NULL)
        return fail(err, errlen, -ENOENT, "services[%s]: no such service", name);
    audit->before = db_service_to_json(cur);
    db_service_fini(cur);
    array_remove(topo->services, &topo->n_services, (size_t)(cur - topo->services),
                 sizeof(*topo->services));
    return 0;
}

int db_service_add(struct db *db, const struct db_service *service, const char *actor, char *err,
                   size_t errlen)
{
    return edit_run(db, actor, "service.add", service_add_apply, service, err, errlen);
}

int db_service_set_if(struct db *db, const struct db_service *service, int64_t expected,
                      const char *actor, char *err, size_t errlen)
{
    return edit_run_if(db, expected, actor, "service.set", service_set_apply, service, err, errlen);
}

int db_service_set(struct db *db, const struct db_service *service, const char *actor, char *err,
                   size_t errlen)
{
    return db_service_set_if(db, service, -1, actor, err, errlen);
}

int db_service_remove(struct db *db, const char *name, const char *actor, char *err, size_t errlen)
{
    return edit_run(db, actor, "service.remove", service_remove_apply, name, err, errlen);
}

/* ---- origins ---- */

struct origin_edit {
    const char *service, *region, *address;
    const struct db_origin *origin; /* NULL for remove */
    bool create;
};

static int origin_edit_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                             char *err, size_t errlen)
{
    const struct origin_edit *e = arg;
    struct db_service *svc = db_topology_service_mut(topo, e->service);
    snprintf(audit->object, sizeof(audit->object), "origin %s/%s/%s", e->service, e->region,
             e->address);
    if (svc == NULL)
        return fail(err, errlen, -ENOENT, "services[%s]: no such service", e->service);
    if (region_index(topo, e->region) < 0)
        return fail(err, errlen, -ENOENT, "regions[%s]: no such region", e->region);
    struct db_pool *pool = db_service_pool(svc, e->region);
    struct db_origin *cur = NULL;
    for (size_t i = 0; pool && i < pool->n_origins && !cur; i++) {
        if (strcmp(pool->origins[i].address, e->address) == 0)
            cur = &pool->origins[i];
    }
    if (e->create && cur)
        return fail(err, errlen, -EEXIST, "services[%s].pools[%s].origins: %s already exists",
                    e->service, e->region, e->address);
    if (!e->create && !cur)
        return fail(err, errlen, -ENOENT, "services[%s].pools[%s].origins: no origin %s",
                    e->service, e->region, e->address);
    if (cur) {
        audit->before = db_origin_to_json(cur);
        db_origin_fini(cur);
        if (e->origin == NULL) {
            array_remove(pool->origins, &pool->n_origins, (size_t)(cur - pool->origins),
                         sizeof(*cur));
            if (pool->n_origins == 0) {
                db_pool_fini(pool);
                array_remove(svc->pools, &svc->n_pools, (size_t)(pool - svc->pools), sizeof(*pool));
            }
            return 0;
        }
    } else {
        if (pool == NULL) {
            svc->pools = xreallocarray(svc->pools, svc->n_pools + 1, sizeof(*svc->pools));
            pool = memset(&svc->pools[svc->n_pools++], 0, sizeof(*pool));
            pool->region = xstrdup(e->region);
            pool->min_healthy = 1;
        }
        pool->origins = xreallocarray(pool->origins, pool->n_origins + 1, sizeof(*pool->origins));
        cur = &pool->origins[pool->n_origins++];
    }
    db_origin_copy(cur, e->origin);
    audit->after = db_origin_to_json(cur);
    return 0;
}

int db_origin_add(struct db *db, const char *service, const char *region,
                  const struct db_origin *origin, const char *actor, char *err, size_t errlen)
{
    struct origin_edit e = {service, region, origin->address, origin, true};
    return edit_run(db, actor, "origin.add", origin_edit_apply, &e, err, errlen);
}

int db_origin_set_if(struct db *db, const char *service, const char *region,
                     const struct db_origin *origin, int64_t expected, const char *actor, char *err,
                     size_t errlen)
{
    struct origin_edit e = {service, region, origin->address, origin, false};
    return edit_run_if(db, expected, actor, "origin.set", origin_edit_apply, &e, err, errlen);
}

int db_origin_set(struct db *db, const char *service, const char *region,
                  const struct db_origin *origin, const char *actor, char *err, size_t errlen)
{
    return db_origin_set_if(db, service, region, origin, -1, actor, err, errlen);
}

int db_origin_remove(struct db *db, const char *service, const char *region, const char *address,
                     const char *actor, char *err, size_t errlen)
{
    struct origin_edit e = {service, region, address, NULL, false};
    return edit_run(db, actor, "origin.remove", origin_edit_apply, &e, err, errlen);
}

/* ---- rules ---- */

struct rule_edit {
    const char *service;
    const struct db_rule *rule; /* NULL for remove */
    size_t index;
};

static int rule_edit_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                           char *err, size_t errlen)
{
    const struct rule_edit *e = arg;
    struct db_service *svc = db_topology_service_mut(topo, e->service);
    if (svc == NULL)
        return fail(err, errlen, -ENOENT, "services[%s]: no such service", e->service);
    if (e->rule != NULL) {
        snprintf(audit->object, sizeof(audit->object), "rule %s#%zu", e->service, svc->n_rules);
        svc->rules = xreallocarray(svc->rules, svc->n_rules + 1, sizeof(*svc->rules));
        db_rule_copy(&svc->rules[svc->n_rules++], e->rule);
        audit->after = db_rule_to_json(e->rule);
        return 0;
    }
    snprintf(audit->object, sizeof(audit->object), "rule %s#%zu", e->service, e->index);
    if (e->index >= svc->n_rules)
        return fail(err, errlen, -ENOENT, "services[%s].rules[%zu]: no such rule", e->service,
                    e->index);
    audit->before = db_rule_to_json(&svc->rules[e->index]);
    db_rule_fini(&svc->rules[e->index]);
    array_remove(svc->rules, &svc->n_rules, e->index, sizeof(*svc->rules));
    return 0;
}

int db_rule_add(struct db *db, const char *service, const struct db_rule *rule, const char *actor,
                char *err, size_t errlen)
{
    struct rule_edit e = {service, rule, 0};
    return edit_run(db, actor, "rule.add", rule_edit_apply, &e, err, errlen);
}

int db_rule_remove(struct db *db, const char *service, size_t index, const char *actor, char *err,
                   size_t errlen)
{
    struct rule_edit e = {service, NULL, index};
    return edit_run(db, actor, "rule.remove", rule_edit_apply, &e, err, errlen);
}

/* ---- pools and failback ---- */

struct pool_edit {
    const char *service;
    const struct db_pool *pool;
};

static int pool_set_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                          char *err, size_t errlen)
{
    const struct pool_edit *e = arg;
    struct db_service *svc = db_topology_service_mut(topo, e->service);
    snprintf(audit->object, sizeof(audit->object), "pool %s/%s", e->service, e->pool->region);
    if (svc == NULL)
        return fail(err, errlen, -ENOENT, "services[%s]: no such service", e->service);
    struct db_pool *pool = db_service_pool(svc, e->pool->region);
    if (pool == NULL)
        return fail(err, errlen, -ENOENT,
                    "services[%s].pools[%s]: no such pool (add an origin there first)", e->service,
                    e->pool->region);
    audit->before = db_pool_to_json(pool);
    db_pool_settings_copy(pool, e->pool);
    audit->after = db_pool_to_json(pool);
    return 0;
}

int db_pool_set_if(struct db *db, const char *service, const struct db_pool *pool, int64_t expected,
                   const char *actor, char *err, size_t errlen)
{
    struct pool_edit e = {service, pool};
    return edit_run_if(db, expected, actor, "pool.set", pool_set_apply, &e, err, errlen);
}

int db_pool_set(struct db *db, const char *service, const struct db_pool *pool, const char *actor,
                char *err, size_t errlen)
{
    return db_pool_set_if(db, service, pool, -1, actor, err, errlen);
}

static int region_resume_apply(struct db_topology *topo, const void *arg, struct edit_audit *audit,
                               char *err, size_t errlen)
{
    const char *name = arg;
    ssize_t i = region_for_edit(topo, name, audit, err, errlen);
    if (i < 0)
        return -ENOENT;
    audit->before = db_region_to_json(&topo->regions[i]);
    topo->regions[i].force = DB_FORCE_AUTO;
    audit->after = db_region_to_json(&topo->regions[i]);
    audit->release_holds_of = topo->regions[i].name;
    return 0;
}

int db_region_resume(struct db *db, const char *name, const char *actor, char *err, size_t errlen)
{
    return edit_run(db, actor, "region.resume", region_resume_apply, name, err, errlen);
}

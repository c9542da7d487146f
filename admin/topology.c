/* admin/topology.c - the topology routes: the whole document, regions, services, pools, origins,
 * rules, and the operator actions on regions and origins (enable, disable, drain, force up or
 * down, resume).
 *
 * Bodies and answers use exactly the objects of the topology document (db/json.c parses and
 * writes them), and every change is one db/ edit: one transaction that validates the whole
 * resulting topology, with an audit entry naming the user. PUT replaces an object (fields left
 * out take their defaults), PATCH merges the given fields into the stored object; neither renames
 * (a name in the body must match the path). A service's pools and rules change through their own
 * routes: a service body may repeat them unchanged, nothing else. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "db/db.h"

/* Loads the topology; answers 500 and returns NULL on failure. */
static struct db_topology *topo_load(struct admin_request *req)
{
    struct db_topology *topo = NULL;
    char err[512];
    if (db_topology_load(req->db, &topo, err, sizeof(err)) != 0) {
        admin_reply_db(req, -EIO, err);
        return NULL;
    }
    return topo;
}

/* Takes ownership of <text> (JSON from db/) and returns it parsed. */
static json_t *parsed(char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    if (j == NULL)
        abort(); /* db/ wrote it: only out of memory gets here */
    return j;
}

/* Answers the object <text> (JSON from db/, owned) with <status>. */
static void reply_owned(struct admin_request *req, int status, char *text)
{
    admin_reply_text(req, status, text, strlen(text));
    free(text);
}

static const struct db_pool *pool_find(const struct db_service *s, const char *region)
{
    for (size_t i = 0; s && i < s->n_pools; i++) {
        if (strcmp(s->pools[i].region, region) == 0)
            return &s->pools[i];
    }
    return NULL;
}

static const struct db_origin *origin_find(const struct db_pool *pool, const char *address)
{
    for (size_t i = 0; pool && i < pool->n_origins; i++) {
        if (strcmp(pool->origins[i].address, address) == 0)
            return &pool->origins[i];
    }
    return NULL;
}

/* Makes <doc>'s <key> the path's <value>: fills it in when missing, refuses another value. */
static bool key_matches(struct admin_request *req, json_t *doc, const char *key, const char *value)
{
    json_t *v = json_object_get(doc, key);
    if (v == NULL || json_is_null(v)) {
        json_object_set_new(doc, key, json_string(value));
        return true;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
        return true;
    admin_reply_error(req, 400, key, "%s: must be '%s' as in the path (renaming is not supported)",
                      key, value);
    return false;
}

/* Dumps <doc> (borrowed) for the db/ parsers. */
static char *doc_text(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        abort();
    return text;
}

/* ---- the whole document, and the version ---- */

void admin_version_get(struct admin_request *req)
{
    int64_t version = 0;
    int schema = 0;
    if (db_config_version(req->db, &version) != 0 || db_schema_version(req->db, &schema) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the versions");
        return;
    }
    json_t *answer = json_object();
    json_object_set_new(answer, "config_version", json_integer(version));
    json_object_set_new(answer, "schema_version", json_integer(schema));
    admin_reply_json(req, 200, answer);
}

void admin_topology_get(struct admin_request *req)
{
    char err[512];
    char *text = db_export_json(req->db, err, sizeof(err));
    if (text == NULL)
        admin_reply_db(req, -EIO, err);
    else
        reply_owned(req, 200, text);
}

void admin_topology_put(struct admin_request *req)
{
    char err[512];
    int rc = db_import_json(req->db, req->body ? req->body : "", req->body_len, req->actor, err,
                            sizeof(err));
    if (rc != 0) {
        admin_reply_db(req, rc, err);
        return;
    }
    admin_version_get(req);
}

/* ---- regions ---- */

void admin_regions_list(struct admin_request *req)
{
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return;
    json_t *list = json_array(), *answer = json_object();
    for (size_t i = 0; i < topo->n_regions; i++)
        json_array_append_new(list, parsed(db_region_to_json(&topo->regions[i])));
    db_topology_free(topo);
    json_object_set_new(answer, "regions", list);
    admin_reply_json(req, 200, answer);
}

/* Adds (<add>) or replaces the region <doc> describes. */
static void region_write(struct admin_request *req, json_t *doc, bool add)
{
    struct db_region r;
    char err[512], *text = doc_text(doc);
    int rc = db_region_from_json(text, strlen(text), &r, err, sizeof(err));
    free(text);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "regions[");
        return;
    }
    rc = add ? db_region_add(req->db, &r, req->actor, err, sizeof(err))
             : db_region_set(req->db, &r, req->actor, err, sizeof(err));
    if (rc == 0)
        reply_owned(req, add ? 201 : 200, db_region_to_json(&r));
    else
        admin_reply_db_object(req, rc, err, "regions[");
    db_region_fini(&r);
}

/* The stored region of the path as JSON; answers 404 and returns NULL when there is none. */
static json_t *region_current(struct admin_request *req)
{
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return NULL;
    const struct db_region *r = db_topology_region(topo, req->params[0]);
    json_t *doc = r ? parsed(db_region_to_json(r)) : NULL;
    db_topology_free(topo);
    if (doc == NULL)
        admin_reply_error(req, 404, NULL, "regions[%s]: no such region", req->params[0]);
    return doc;
}

void admin_regions_add(struct admin_request *req)
{
    json_t *body = admin_body_json(req);
    if (body)
        region_write(req, body, true);
    json_decref(body);
}

void admin_region_get(struct admin_request *req)
{
    json_t *doc = region_current(req);
    if (doc)
        admin_reply_json(req, 200, doc);
}

void admin_region_put(struct admin_request *req)
{
    json_t *body = admin_body_json(req);
    if (body && key_matches(req, body, "name", req->params[0]))
        region_write(req, body, false);
    json_decref(body);
}

void admin_region_patch(struct admin_request *req)
{
    json_t *body = admin_body_json(req), *doc = NULL;
    if (body && key_matches(req, body, "name", req->params[0]) &&
        (doc = region_current(req)) != NULL) {
        json_object_update(doc, body);
        region_write(req, doc, false);
    }
    json_decref(doc);
    json_decref(body);
}

void admin_region_remove(struct admin_request *req)
{
    char err[512];
    int rc = db_region_remove(req->db, req->params[0], req->actor, err, sizeof(err));
    if (rc == 0)
        admin_reply_json(req, 200, json_object());
    else
        admin_reply_db(req, rc, err);
}

/* The operator actions and what each sets. */
enum action { ENABLE, DISABLE, DRAIN, FORCE_UP, FORCE_DOWN, RESUME };
static const char *const action_names[] = {"enable",   "disable",    "drain",
                                           "force-up", "force-down", "resume"};

/* Reads {"action": ...}; answers 400 and returns -1 when it is not one of the actions. */
static int action_get(struct admin_request *req)
{
    json_t *body = admin_body_json(req);
    if (body == NULL)
        return -1;
    json_t *v = json_object_get(body, "action");
    int found = -1;
    for (int i = 0; json_is_string(v) && i < 6 && found < 0; i++) {
        if (strcmp(json_string_value(v), action_names[i]) == 0)
            found = i;
    }
    size_t n_keys = json_object_size(body);
    json_decref(body);
    if (found < 0)
        admin_reply_error(req, 400, "action",
                          "action: expected enable, disable, drain, force-up, force-down or "
                          "resume");
    else if (n_keys != 1)
        admin_reply_error(req, 400, NULL, "only \"action\" is expected");
    return n_keys == 1 ? found : -1;
}

void admin_region_state(struct admin_request *req)
{
    int action = action_get(req);
    if (action < 0)
        return;
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return;
    const struct db_region *cur = db_topology_region(topo, req->params[0]);
    char err[512];
    if (cur == NULL) {
        admin_reply_error(req, 404, NULL, "regions[%s]: no such region", req->params[0]);
        goto out;
    }
    struct db_region r = *cur; /* borrowed strings: db_region_set copies */
    switch ((enum action)action) {
    case ENABLE:
        r.state = DB_REGION_ACTIVE;
        break;
    case DISABLE:
        r.state = DB_REGION_DISABLED;
        break;
    case DRAIN:
        r.state = DB_REGION_DRAINING;
        break;
    case FORCE_UP:
        r.force = DB_FORCE_UP;
        break;
    case FORCE_DOWN:
        r.force = DB_FORCE_DOWN;
        break;
    case RESUME:
        break;
    }
    /* "resume" hands the region back to its health checks and lifts its manual-failback holds,
     * exactly as gslbctl region resume does. */
    int rc = action == RESUME ? db_region_resume(req->db, r.name, req->actor, err, sizeof(err))
                              : db_region_set(req->db, &r, req->actor, err, sizeof(err));
    if (rc == 0 && action == RESUME)
        r.force = DB_FORCE_AUTO;
    if (rc == 0)
        reply_owned(req, 200, db_region_to_json(&r));
    else
        admin_reply_db(req, rc, err);
out:
    db_topology_free(topo);
}

/* ---- services ---- */

void admin_services_list(struct admin_request *req)
{
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return;
    json_t *list = json_array(), *answer = json_object();
    for (size_t i = 0; i < topo->n_services; i++)
        json_array_append_new(list, parsed(db_service_to_json(&topo->services[i])));
    db_topology_free(topo);
    json_object_set_new(answer, "services", list);
    admin_reply_json(req, 200, answer);
}

/* The stored service of the path as JSON; answers 404 and returns NULL when there is none. */
static json_t *service_current(struct admin_request *req)
{
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return NULL;
    const struct db_service *s = db_topology_service(topo, req->params[0]);
    json_t *doc = s ? parsed(db_service_to_json(s)) : NULL;
    db_topology_free(topo);
    if (doc == NULL)
        admin_reply_error(req, 404, NULL, "services[%s]: no such service", req->params[0]);
    return doc;
}

/* Pools and rules in a service body must be what is stored (<cur>; NULL: none). */
static bool children_unchanged(struct admin_request *req, json_t *doc, json_t *cur)
{
    static const char *const keys[] = {"pools", "rules"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(doc, keys[i]),
               *stored = cur ? json_object_get(cur, keys[i]) : NULL;
        bool same = v == NULL || (stored && json_equal(v, stored)) ||
                    (stored == NULL && json_is_array(v) && json_array_size(v) == 0);
        if (!same) {
            admin_reply_error(req, 400, keys[i],
                              "%s: change a service's %s through /services/{service}/%s", keys[i],
                              keys[i], i == 0 ? "pools/{region}/origins" : "rules");
            return false;
        }
    }
    return true;
}

/* Adds (<add>) or replaces the service <doc> describes; <cur> is the stored one (for set). */
static void service_write(struct admin_request *req, json_t *doc, json_t *cur, bool add)
{
    struct db_service s;
    char err[512];
    if (!children_unchanged(req, doc, cur))
        return;
    char *text = doc_text(doc);
    int rc = db_service_from_json(text, strlen(text), &s, err, sizeof(err));
    free(text);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "services[");
        return;
    }
    rc = add ? db_service_add(req->db, &s, req->actor, err, sizeof(err))
             : db_service_set(req->db, &s, req->actor, err, sizeof(err));
    db_service_fini(&s);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "services[");
        return;
    }
    /* Answer with what is stored now: the pools and rules a set kept. */
    json_t *now = NULL;
    snprintf(req->params[0], sizeof(req->params[0]), "%s",
             json_string_value(json_object_get(doc, "name")));
    if ((now = service_current(req)) != NULL)
        admin_reply_json(req, add ? 201 : 200, now);
}

void admin_services_add(struct admin_request *req)
{
    json_t *body = admin_body_json(req);
    if (body)
        service_write(req, body, NULL, true);
    json_decref(body);
}

void admin_service_get(struct admin_request *req)
{
    json_t *doc = service_current(req);
    if (doc)
        admin_reply_json(req, 200, doc);
}

void admin_service_put(struct admin_request *req)
{
    json_t *body = admin_body_json(req), *cur = NULL;
    if (body && key_matches(req, body, "name", req->params[0]) &&
        (cur = service_current(req)) != NULL)
        service_write(req, body, cur, false);
    json_decref(cur);
    json_decref(body);
}

void admin_service_patch(struct admin_request *req)
{
    json_t *body = admin_body_json(req), *cur = NULL, *doc = NULL;
    if (body && key_matches(req, body, "name", req->params[0]) &&
        (cur = service_current(req)) != NULL) {
        doc = json_deep_copy(cur);
        json_object_update(doc, body);
        service_write(req, doc, cur, false);
    }
    json_decref(doc);
    json_decref(cur);
    json_decref(body);
}

void admin_service_remove(struct admin_request *req)
{
    char err[512];
    int rc = db_service_remove(req->db, req->params[0], req->actor, err, sizeof(err));
    if (rc == 0)
        admin_reply_json(req, 200, json_object());
    else
        admin_reply_db(req, rc, err);
}

/* ---- pools and origins ---- */

void admin_pools_list(struct admin_request *req)
{
    json_t *doc = service_current(req);
    if (doc == NULL)
        return;
    json_t *answer = json_object();
    json_object_set(answer, "pools", json_object_get(doc, "pools"));
    json_decref(doc);
    admin_reply_json(req, 200, answer);
}

void admin_pool_get(struct admin_request *req)
{
    json_t *doc = service_current(req), *pool;
    size_t i;
    if (doc == NULL)
        return;
    json_array_foreach(json_object_get(doc, "pools"), i, pool)
    {
        if (strcmp(json_string_value(json_object_get(pool, "region")), req->params[1]) == 0) {
            admin_reply_json(req, 200, json_incref(pool));
            json_decref(doc);
            return;
        }
    }
    json_decref(doc);
    admin_reply_error(req, 404, NULL, "services[%s].pools[%s]: no such pool", req->params[0],
                      req->params[1]);
}

/* The stored origin of the path as JSON; answers 404 and returns NULL when there is none. */
static json_t *origin_current(struct admin_request *req)
{
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return NULL;
    const struct db_origin *o = origin_find(
        pool_find(db_topology_service(topo, req->params[0]), req->params[1]), req->params[2]);
    json_t *doc = o ? parsed(db_origin_to_json(o)) : NULL;
    db_topology_free(topo);
    if (doc == NULL)
        admin_reply_error(req, 404, NULL, "services[%s].pools[%s].origins[%s]: no such origin",
                          req->params[0], req->params[1], req->params[2]);
    return doc;
}

static void origin_write(struct admin_request *req, json_t *doc, bool add)
{
    struct db_origin o;
    char err[512], *text = doc_text(doc);
    int rc = db_origin_from_json(text, strlen(text), &o, err, sizeof(err));
    free(text);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "services[");
        return;
    }
    rc = add ? db_origin_add(req->db, req->params[0], req->params[1], &o, req->actor, err,
                             sizeof(err))
             : db_origin_set(req->db, req->params[0], req->params[1], &o, req->actor, err,
                             sizeof(err));
    if (rc == 0)
        reply_owned(req, add ? 201 : 200, db_origin_to_json(&o));
    else
        admin_reply_db_object(req, rc, err, "services[");
    db_origin_fini(&o);
}

void admin_origins_add(struct admin_request *req)
{
    json_t *body = admin_body_json(req);
    if (body)
        origin_write(req, body, true);
    json_decref(body);
}

void admin_origin_get(struct admin_request *req)
{
    json_t *doc = origin_current(req);
    if (doc)
        admin_reply_json(req, 200, doc);
}

void admin_origin_put(struct admin_request *req)
{
    json_t *body = admin_body_json(req);
    if (body && key_matches(req, body, "address", req->params[2]))
        origin_write(req, body, false);
    json_decref(body);
}

void admin_origin_patch(struct admin_request *req)
{
    json_t *body = admin_body_json(req), *doc = NULL;
    if (body && key_matches(req, body, "address", req->params[2]) &&
        (doc = origin_current(req)) != NULL) {
        json_object_update(doc, body);
        origin_write(req, doc, false);
    }
    json_decref(doc);
    json_decref(body);
}

void admin_origin_remove(struct admin_request *req)
{
    char err[512];
    int rc = db_origin_remove(req->db, req->params[0], req->params[1], req->params[2], req->actor,
                              err, sizeof(err));
    if (rc == 0)
        admin_reply_json(req, 200, json_object());
    else
        admin_reply_db(req, rc, err);
}

void admin_origin_state(struct admin_request *req)
{
    int action = action_get(req);
    if (action < 0)
        return;
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return;
    const struct db_origin *cur = origin_find(
        pool_find(db_topology_service(topo, req->params[0]), req->params[1]), req->params[2]);
    char err[512];
    if (cur == NULL) {
        admin_reply_error(req, 404, NULL, "services[%s].pools[%s].origins[%s]: no such origin",
                          req->params[0], req->params[1], req->params[2]);
        goto out;
    }
    struct db_origin o = *cur; /* borrowed strings: db_origin_set copies */
    switch ((enum action)action) {
    case ENABLE:
        o.state = DB_ORIGIN_ENABLED;
        break;
    case DISABLE:
        o.state = DB_ORIGIN_DISABLED;
        break;
    case DRAIN:
        o.state = DB_ORIGIN_DRAINING;
        break;
    case FORCE_UP:
        o.force = DB_FORCE_UP;
        break;
    case FORCE_DOWN:
        o.force = DB_FORCE_DOWN;
        break;
    case RESUME:
        o.force = DB_FORCE_AUTO;
        break;
    }
    int rc =
        db_origin_set(req->db, req->params[0], req->params[1], &o, req->actor, err, sizeof(err));
    if (rc == 0)
        reply_owned(req, 200, db_origin_to_json(&o));
    else
        admin_reply_db(req, rc, err);
out:
    db_topology_free(topo);
}

/* ---- rules ---- */

void admin_rules_list(struct admin_request *req)
{
    json_t *doc = service_current(req);
    if (doc == NULL)
        return;
    json_t *answer = json_object();
    json_object_set(answer, "rules", json_object_get(doc, "rules"));
    json_decref(doc);
    admin_reply_json(req, 200, answer);
}

void admin_rules_add(struct admin_request *req)
{
    struct db_rule rule;
    char err[512];
    int rc = db_rule_from_json(req->body ? req->body : "", req->body_len, &rule, err, sizeof(err));
    if (rc != 0) {
        admin_reply_db(req, rc, err);
        return;
    }
    rc = db_rule_add(req->db, req->params[0], &rule, req->actor, err, sizeof(err));
    db_rule_fini(&rule);
    if (rc != 0) {
        admin_reply_db(req, rc, err);
        return;
    }
    json_t *doc = service_current(req);
    if (doc == NULL)
        return;
    json_t *rules = json_object_get(doc, "rules"), *answer = json_object();
    json_object_set_new(answer, "index", json_integer((json_int_t)json_array_size(rules) - 1));
    json_object_set(answer, "rule", json_array_get(rules, json_array_size(rules) - 1));
    json_decref(doc);
    admin_reply_json(req, 201, answer);
}

void admin_rule_remove(struct admin_request *req)
{
    char err[512], *end;
    long index = strtol(req->params[1], &end, 10);
    if (*end != '\0' || index < 0 || end == req->params[1]) {
        admin_reply_error(req, 404, "index", "index: expected a rule's position (0, 1, ...)");
        return;
    }
    int rc = db_rule_remove(req->db, req->params[0], (size_t)index, req->actor, err, sizeof(err));
    if (rc == 0)
        admin_reply_json(req, 200, json_object());
    else
        admin_reply_db(req, rc, err);
}

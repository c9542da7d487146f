/* admin/topology.c - the topology routes: the whole document, regions, services, pools, origins,
 * rules, and the operator actions on regions and origins (enable, disable, drain, force up or
 * down, resume).
 *
 * Bodies and answers use exactly the objects of the topology document (db/json.c parses and
 * writes them), and every change is one db/ edit: one transaction that validates the whole
 * resulting topology, with an audit entry naming the user. PUT replaces an object (fields left
 * out take their defaults), PATCH merges the given fields into the stored object; neither renames
 * (a name in the body must match the path). A service's pools and rules change through their own
 * routes: a service body may repeat them unchanged, nothing else. GET of one object sends the
 * config version as its ETag; a PUT or PATCH with If-Match: "<version>" happens only while the
 * configuration is still at that version (412 "stale" otherwise), as for the whole topology. */
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

/* The config version an If-Match header names: "12" (or W/"12"); -1 for "*" or no header, -2
 * when it names no version (which matches none). */
static int64_t if_match_version(const char *value)
{
    if (value == NULL || strcmp(value, "*") == 0)
        return -1;
    if (strncmp(value, "W/", 2) == 0)
        value += 2;
    char *end;
    if (value[0] != '"' || value[1] < '0' || value[1] > '9')
        return -2;
    long long v = strtoll(value + 1, &end, 10);
    return end[0] == '"' && end[1] == '\0' && v >= 0 ? v : -2;
}

/* The config version the request's If-Match names, -1 without one; answers 412 ("stale") and
 * returns -2 when it names no version. */
static int64_t if_match_get(struct admin_request *req)
{
    int64_t expected = if_match_version(admin_header(req, "If-Match"));
    if (expected == -2)
        admin_reply_error(req, 412, NULL,
                          "If-Match: expected a quoted config version (the ETag of a GET)");
    return expected;
}

/* ---- one object of the path: the same routes for regions, services and origins ---- */

/* Finds the object the path names in <topo> (borrowed); answers 404 and returns NULL when there
 * is none. */
static const struct db_region *region_lookup(struct admin_request *req,
                                             const struct db_topology *topo)
{
    const struct db_region *r = db_topology_region(topo, req->params[0]);
    if (r == NULL)
        admin_reply_error(req, 404, NULL, "regions[%s]: no such region", req->params[0]);
    return r;
}

static const struct db_origin *origin_lookup(struct admin_request *req,
                                             const struct db_topology *topo)
{
    const struct db_origin *o = origin_find(
        pool_find(db_topology_service(topo, req->params[0]), req->params[1]), req->params[2]);
    if (o == NULL)
        admin_reply_error(req, 404, NULL, "services[%s].pools[%s].origins[%s]: no such origin",
                          req->params[0], req->params[1], req->params[2]);
    return o;
}

/* The object the path names in <topo> as JSON text (the caller frees it); answers 404 and
 * returns NULL when there is none. */
typedef char *(*object_json_fn)(struct admin_request *req, const struct db_topology *topo);

static char *region_json(struct admin_request *req, const struct db_topology *topo)
{
    const struct db_region *r = region_lookup(req, topo);
    return r ? db_region_to_json(r) : NULL;
}

static char *service_json(struct admin_request *req, const struct db_topology *topo)
{
    const struct db_service *s = db_topology_service(topo, req->params[0]);
    if (s == NULL)
        admin_reply_error(req, 404, NULL, "services[%s]: no such service", req->params[0]);
    return s ? db_service_to_json(s) : NULL;
}

static char *origin_json(struct admin_request *req, const struct db_topology *topo)
{
    const struct db_origin *o = origin_lookup(req, topo);
    return o ? db_origin_to_json(o) : NULL;
}

/* The stored object of the path as JSON, as <to_json> finds it; answers (404, 500) and returns
 * NULL when there is none. */
static json_t *object_current(struct admin_request *req, object_json_fn to_json)
{
    struct db_topology *topo = topo_load(req);
    char *text = topo ? to_json(req, topo) : NULL;
    db_topology_free(topo);
    return text ? parsed(text) : NULL;
}

/* Adds (<add>) or replaces the object <doc> (borrowed) describes and answers with it. */
typedef void (*object_write_fn)(struct admin_request *req, json_t *doc, bool add);

/* The answer's ETag is the config version the object was read at, for an If-Match on a later
 * PUT or PATCH. */
static void object_get(struct admin_request *req, object_json_fn to_json)
{
    struct db_topology *topo = topo_load(req);
    char *text = topo ? to_json(req, topo) : NULL;
    if (text) {
        snprintf(req->etag, sizeof(req->etag), "\"%lld\"", (long long)topo->version);
        admin_reply_json(req, 200, parsed(text));
    }
    db_topology_free(topo);
}

/* POST (<add>) or PUT: the body is the whole object; a PUT's <key> must be the path's <value>. */
static void object_put(struct admin_request *req, object_write_fn write, bool add, const char *key,
                       const char *value)
{
    json_t *body = admin_body_json(req);
    if (body && (add || (key_matches(req, body, key, value) && if_match_get(req) != -2)))
        write(req, body, add);
    json_decref(body);
}

/* PATCH: the body's fields merged into the stored object; its <key> must be the path's <value>. */
static void object_patch(struct admin_request *req, object_json_fn to_json, object_write_fn write,
                         const char *key, const char *value)
{
    json_t *body = admin_body_json(req), *doc = NULL;
    if (body && key_matches(req, body, key, value) && if_match_get(req) != -2 &&
        (doc = object_current(req, to_json)) != NULL) {
        json_object_update(doc, body);
        write(req, doc, false);
    }
    json_decref(doc);
    json_decref(body);
}

/* Answers {<key>: [...]} with every object <at> returns: the one at <i>, or NULL past the last. */
static void topo_list(struct admin_request *req, const char *key,
                      char *(*at)(const struct db_topology *topo, size_t i))
{
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return;
    json_t *list = json_array(), *answer = json_object();
    char *text;
    for (size_t i = 0; (text = at(topo, i)) != NULL; i++)
        json_array_append_new(list, parsed(text));
    db_topology_free(topo);
    json_object_set_new(answer, key, list);
    admin_reply_json(req, 200, answer);
}

/* ---- the whole document, and the version ---- */

/* Answers the versions; returns the config version, or -1 after answering 500. */
static int64_t version_reply(struct admin_request *req)
{
    int64_t version = 0;
    int schema = 0;
    if (db_config_version(req->db, &version) != 0 || db_schema_version(req->db, &schema) != 0) {
        admin_reply_error(req, 500, NULL, "cannot read the versions");
        return -1;
    }
    json_t *answer = json_object();
    json_object_set_new(answer, "config_version", json_integer(version));
    json_object_set_new(answer, "schema_version", json_integer(schema));
    admin_reply_json(req, 200, answer);
    return version;
}

void admin_version_get(struct admin_request *req)
{
    version_reply(req);
}

void admin_topology_get(struct admin_request *req)
{
    struct db_topology *topo = topo_load(req);
    if (topo == NULL)
        return;
    /* The version the document was read at, for an If-Match on the PUT that replaces it. */
    snprintf(req->etag, sizeof(req->etag), "\"%lld\"", (long long)topo->version);
    reply_owned(req, 200, db_topology_to_json(topo));
    db_topology_free(topo);
}

void admin_topology_put(struct admin_request *req)
{
    char err[512];
    int64_t expected = if_match_get(req);
    if (expected == -2)
        return;
    int rc = db_import_json_if(req->db, req->body ? req->body : "", req->body_len, expected,
                               req->actor, err, sizeof(err));
    if (rc != 0) {
        admin_reply_db(req, rc, err);
        return;
    }
    int64_t version = version_reply(req);
    if (version >= 0)
        snprintf(req->etag, sizeof(req->etag), "\"%lld\"", (long long)version);
}

/* ---- operator actions on regions and origins ---- */

/* The operator actions; the first three set the state, in this order. */
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

/* Reads the action into *<action> and loads the topology; answers and returns NULL on failure. */
static struct db_topology *action_begin(struct admin_request *req, int *action)
{
    *action = action_get(req);
    return *action < 0 ? NULL : topo_load(req);
}

/* The forced health after <action>: force-up and force-down force it, resume hands it back to the
 * health checks, the state actions leave <force> as it is. */
static enum db_health_force action_force(int action, enum db_health_force force)
{
    return action == FORCE_UP     ? DB_FORCE_UP
           : action == FORCE_DOWN ? DB_FORCE_DOWN
           : action == RESUME     ? DB_FORCE_AUTO
                                  : force;
}

/* ---- regions ---- */

static char *region_at(const struct db_topology *topo, size_t i)
{
    return i < topo->n_regions ? db_region_to_json(&topo->regions[i]) : NULL;
}

void admin_regions_list(struct admin_request *req)
{
    topo_list(req, "regions", region_at);
}

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
             : db_region_set_if(req->db, &r, if_match_get(req), req->actor, err, sizeof(err));
    if (rc == 0)
        reply_owned(req, add ? 201 : 200, db_region_to_json(&r));
    else
        admin_reply_db_object(req, rc, err, "regions[");
    db_region_fini(&r);
}

void admin_regions_add(struct admin_request *req)
{
    object_put(req, region_write, true, NULL, NULL);
}

void admin_region_get(struct admin_request *req)
{
    object_get(req, region_json);
}

void admin_region_put(struct admin_request *req)
{
    object_put(req, region_write, false, "name", req->params[0]);
}

void admin_region_patch(struct admin_request *req)
{
    object_patch(req, region_json, region_write, "name", req->params[0]);
}

void admin_region_remove(struct admin_request *req)
{
    char err[512];
    int rc = db_region_remove(req->db, req->params[0], req->actor, err, sizeof(err));
    admin_reply_done(req, rc, err);
}

void admin_region_state(struct admin_request *req)
{
    static const enum db_region_state states[] = {
        [ENABLE] = DB_REGION_ACTIVE, [DISABLE] = DB_REGION_DISABLED, [DRAIN] = DB_REGION_DRAINING};
    int action;
    struct db_topology *topo = action_begin(req, &action);
    const struct db_region *cur = topo ? region_lookup(req, topo) : NULL;
    char err[512];
    if (cur == NULL)
        goto out;
    struct db_region r = *cur; /* borrowed strings: db_region_set copies */
    if (action <= DRAIN)
        r.state = states[action];
    r.force = action_force(action, r.force);
    /* "resume" hands the region back to its health checks and lifts its manual-failback holds,
     * exactly as gslbctl region resume does. */
    int rc = action == RESUME
                 ? db_region_resume(req->db, r.name, req->actor, err, sizeof(err))
                 : db_region_set_if(req->db, &r, if_match_get(req), req->actor, err, sizeof(err));
    if (rc == 0)
        reply_owned(req, 200, db_region_to_json(&r));
    else
        admin_reply_db(req, rc, err);
out:
    db_topology_free(topo);
}

/* ---- services ---- */

static char *service_at(const struct db_topology *topo, size_t i)
{
    return i < topo->n_services ? db_service_to_json(&topo->services[i]) : NULL;
}

void admin_services_list(struct admin_request *req)
{
    topo_list(req, "services", service_at);
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

/* A replacement keeps the stored pools and rules, which must exist (404 otherwise). */
static void service_write(struct admin_request *req, json_t *doc, bool add)
{
    struct db_service s;
    char err[512];
    json_t *cur = add ? NULL : object_current(req, service_json);
    bool fine = (add || cur) && children_unchanged(req, doc, cur);
    json_decref(cur);
    if (!fine)
        return;
    char *text = doc_text(doc);
    int rc = db_service_from_json(text, strlen(text), &s, err, sizeof(err));
    free(text);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "services[");
        return;
    }
    rc = add ? db_service_add(req->db, &s, req->actor, err, sizeof(err))
             : db_service_set_if(req->db, &s, if_match_get(req), req->actor, err, sizeof(err));
    db_service_fini(&s);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "services[");
        return;
    }
    /* Answer with what is stored now: the pools and rules a set kept. */
    json_t *now = NULL;
    snprintf(req->params[0], sizeof(req->params[0]), "%s",
             json_string_value(json_object_get(doc, "name")));
    if ((now = object_current(req, service_json)) != NULL)
        admin_reply_json(req, add ? 201 : 200, now);
}

void admin_services_add(struct admin_request *req)
{
    object_put(req, service_write, true, NULL, NULL);
}

void admin_service_get(struct admin_request *req)
{
    object_get(req, service_json);
}

void admin_service_put(struct admin_request *req)
{
    object_put(req, service_write, false, "name", req->params[0]);
}

void admin_service_patch(struct admin_request *req)
{
    object_patch(req, service_json, service_write, "name", req->params[0]);
}

void admin_service_remove(struct admin_request *req)
{
    char err[512];
    int rc = db_service_remove(req->db, req->params[0], req->actor, err, sizeof(err));
    admin_reply_done(req, rc, err);
}

/* Answers {<key>: ...} with the service's pools or rules. */
static void service_part_get(struct admin_request *req, const char *key)
{
    json_t *doc = object_current(req, service_json);
    if (doc == NULL)
        return;
    json_t *answer = json_object();
    json_object_set(answer, key, json_object_get(doc, key));
    json_decref(doc);
    admin_reply_json(req, 200, answer);
}

/* ---- pools and origins ---- */

void admin_pools_list(struct admin_request *req)
{
    service_part_get(req, "pools");
}

static char *pool_json(struct admin_request *req, const struct db_topology *topo)
{
    const struct db_service *s = db_topology_service(topo, req->params[0]);
    const struct db_pool *p = pool_find(s, req->params[1]);
    if (p == NULL) {
        admin_reply_error(req, 404, NULL, "services[%s].pools[%s]: no such pool", req->params[0],
                          req->params[1]);
        return NULL;
    }
    /* The pool as the service's document gives it, origins included. */
    json_t *doc = parsed(db_service_to_json(s)), *pool;
    size_t i;
    char *text = NULL;
    json_array_foreach(json_object_get(doc, "pools"), i, pool)
    {
        if (text == NULL &&
            strcmp(json_string_value(json_object_get(pool, "region")), req->params[1]) == 0)
            text = doc_text(pool);
    }
    json_decref(doc);
    return text;
}

/* A pool's settings; its origins change through their own routes, so a body may repeat them
 * unchanged, nothing else. */
static void pool_write(struct admin_request *req, json_t *doc, bool add)
{
    struct db_pool pool;
    char err[512];
    (void)add;
    json_t *origins = json_object_get(doc, "origins");
    if (origins) {
        json_t *cur = object_current(req, pool_json);
        bool same = cur && json_equal(origins, json_object_get(cur, "origins"));
        json_decref(cur);
        if (cur == NULL)
            return;
        if (!same) {
            admin_reply_error(req, 400, "origins",
                              "origins: change a pool's origins through "
                              "/services/{service}/pools/{region}/origins");
            return;
        }
        json_object_del(doc, "origins");
    }
    char *text = doc_text(doc);
    int rc = db_pool_from_json(text, strlen(text), &pool, err, sizeof(err));
    free(text);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "services[");
        return;
    }
    rc = db_pool_set_if(req->db, req->params[0], &pool, if_match_get(req), req->actor, err,
                        sizeof(err));
    db_pool_fini(&pool);
    if (rc != 0) {
        admin_reply_db_object(req, rc, err, "services[");
        return;
    }
    json_t *now = object_current(req, pool_json);
    if (now)
        admin_reply_json(req, 200, now);
}

void admin_pool_get(struct admin_request *req)
{
    object_get(req, pool_json);
}

void admin_pool_put(struct admin_request *req)
{
    object_put(req, pool_write, false, "region", req->params[1]);
}

void admin_pool_patch(struct admin_request *req)
{
    object_patch(req, pool_json, pool_write, "region", req->params[1]);
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
             : db_origin_set_if(req->db, req->params[0], req->params[1], &o, if_match_get(req),
                                req->actor, err, sizeof(err));
    if (rc == 0)
        reply_owned(req, add ? 201 : 200, db_origin_to_json(&o));
    else
        admin_reply_db_object(req, rc, err, "services[");
    db_origin_fini(&o);
}

void admin_origins_add(struct admin_request *req)
{
    object_put(req, origin_write, true, NULL, NULL);
}

void admin_origin_get(struct admin_request *req)
{
    object_get(req, origin_json);
}

void admin_origin_put(struct admin_request *req)
{
    object_put(req, origin_write, false, "address", req->params[2]);
}

void admin_origin_patch(struct admin_request *req)
{
    object_patch(req, origin_json, origin_write, "address", req->params[2]);
}

void admin_origin_remove(struct admin_request *req)
{
    char err[512];
    int rc = db_origin_remove(req->db, req->params[0], req->params[1], req->params[2], req->actor,
                              err, sizeof(err));
    admin_reply_done(req, rc, err);
}

void admin_origin_state(struct admin_request *req)
{
    static const enum db_origin_state states[] = {
        [ENABLE] = DB_ORIGIN_ENABLED, [DISABLE] = DB_ORIGIN_DISABLED, [DRAIN] = DB_ORIGIN_DRAINING};
    int action;
    struct db_topology *topo = action_begin(req, &action);
    const struct db_origin *cur = topo ? origin_lookup(req, topo) : NULL;
    char err[512];
    if (cur == NULL)
        goto out;
    struct db_origin o = *cur; /* borrowed strings: db_origin_set copies */
    if (action <= DRAIN)
        o.state = states[action];
    o.force = action_force(action, o.force);
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
    service_part_get(req, "rules");
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
    json_t *doc = object_current(req, service_json);
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
    admin_reply_done(req, rc, err);
}

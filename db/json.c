/* db/json.c - the topology document: strict parsing into the model and canonical output.
 *
 * Parsing refuses unknown keys and wrong types with the path of the offending field
 * (services[0].pools[1].origins[0].weight), so a typo in a hand-written file is an error, not a
 * silently ignored setting. Output is canonical (fixed key order, defaults written out, 15
 * significant digits for coordinates), so export, import, export yields identical text. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "db/db_int.h"

#define DEFAULT_WEIGHT 1

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* ---- parsing helpers: each names <where>.<key> in its error ---- */

static int keys_check(json_t *obj, const char *const *allowed, const char *where, char *err,
                      size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return fail(err, errlen, "%s.%s: unknown field", where, key);
    }
    return 0;
}

static int object_at(json_t *value, const char *where, char *err, size_t errlen)
{
    return json_is_object(value) ? 0 : fail(err, errlen, "%s: expected an object", where);
}

static int string_get(json_t *obj, const char *key, bool required, const char *where, char **out,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return required ? fail(err, errlen, "%s.%s: missing", where, key) : 0;
    if (!json_is_string(v))
        return fail(err, errlen, "%s.%s: expected a string", where, key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(err, errlen, "%s.%s: contains a NUL character", where, key);
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int number_get(json_t *obj, const char *key, bool required, const char *where, double *out,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return required ? fail(err, errlen, "%s.%s: missing", where, key) : 0;
    if (!json_is_number(v))
        return fail(err, errlen, "%s.%s: expected a number", where, key);
    *out = json_number_value(v);
    return 0;
}

static int int_get(json_t *obj, const char *key, const char *where, int *out, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < -1000000000 ||
        json_integer_value(v) > 1000000000)
        return fail(err, errlen, "%s.%s: expected an integer", where, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int bool_get(json_t *obj, const char *key, const char *where, bool *out, char *err,
                    size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return fail(err, errlen, "%s.%s: expected true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

static int strv_get(json_t *obj, const char *key, const char *where, char ***out, size_t *n_out,
                    char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key), *item;
    size_t i;
    if (v == NULL)
        return 0;
    if (!json_is_array(v))
        return fail(err, errlen, "%s.%s: expected an array of strings", where, key);
    *out = xcalloc(json_array_size(v) + 1, sizeof(char *));
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return fail(err, errlen, "%s.%s[%zu]: expected a string", where, key, i);
        (*out)[(*n_out)++] = xstrdup(json_string_value(item));
    }
    return 0;
}

static int enum_get(json_t *obj, const char *key, const char *where,
                    int (*parse)(const char *, int *), int *out, const char *choices, char *err,
                    size_t errlen)
{
    char *name = NULL;
    int rc = string_get(obj, key, false, where, &name, err, errlen);
    if (rc == 0 && name != NULL && parse(name, out) != 0)
        rc = fail(err, errlen, "%s.%s: '%s' is not one of %s", where, key, name, choices);
    free(name);
    return rc;
}

static int region_state_parse_int(const char *name, int *out)
{
    enum db_region_state s;
    int rc = db_region_state_parse(name, &s);
    *out = (int)s;
    return rc;
}

static int origin_state_parse_int(const char *name, int *out)
{
    enum db_origin_state s;
    int rc = db_origin_state_parse(name, &s);
    *out = (int)s;
    return rc;
}

static int force_parse_int(const char *name, int *out)
{
    enum db_health_force f;
    int rc = db_health_force_parse(name, &f);
    *out = (int)f;
    return rc;
}

static int failback_parse_int(const char *name, int *out)
{
    enum db_failback f;
    int rc = db_failback_parse(name, &f);
    *out = (int)f;
    return rc;
}

static int policy_parse_int(const char *name, int *out)
{
    enum db_policy p;
    int rc = db_policy_parse(name, &p);
    *out = (int)p;
    return rc;
}

static int check_type_parse_int(const char *name, int *out)
{
    enum db_check_type t;
    int rc = db_check_type_parse(name, &t);
    *out = (int)t;
    return rc;
}

static void lowercase(char *s)
{
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
    }
}

static void uppercase(char *s)
{
    for (; *s; s++) {
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
    }
}

/* ---- model parsers ---- */

static int check_parse(json_t *obj, const char *where, struct db_check *check, char *err,
                       size_t errlen)
{
    static const char *const keys[] = {"type", "path",        "host",       "expect",
                                       "body", "interval_ms", "timeout_ms", "rise",
                                       "fall", "method",      NULL};
    char here[300];
    int type = 0, rc;
    snprintf(here, sizeof(here), "%.280s.check", where);
    if ((rc = object_at(obj, here, err, errlen)) ||
        (rc = keys_check(obj, keys, here, err, errlen)) ||
        (rc = enum_get(obj, "type", here, check_type_parse_int, &type, "http https tcp none", err,
                       errlen)) ||
        (rc = string_get(obj, "path", false, here, &check->path, err, errlen)) ||
        (rc = string_get(obj, "host", false, here, &check->host, err, errlen)) ||
        (rc = string_get(obj, "expect", false, here, &check->expect, err, errlen)) ||
        (rc = string_get(obj, "body", false, here, &check->body, err, errlen)) ||
        (rc = string_get(obj, "method", false, here, &check->method, err, errlen)) ||
        (rc = int_get(obj, "interval_ms", here, &check->interval_ms, err, errlen)) ||
        (rc = int_get(obj, "timeout_ms", here, &check->timeout_ms, err, errlen)) ||
        (rc = int_get(obj, "rise", here, &check->rise, err, errlen)) ||
        (rc = int_get(obj, "fall", here, &check->fall, err, errlen)))
        return rc;
    check->type = (enum db_check_type)type;
    if (check->method)
        uppercase(check->method);
    return 0;
}

static int origin_parse(json_t *obj, const char *where, struct db_origin *o, char *err,
                        size_t errlen)
{
    static const char *const keys[] = {"address", "weight",   "state",      "health", "check",
                                       "tls",     "tls_name", "tls_verify", NULL};
    int state = DB_ORIGIN_ENABLED, force = DB_FORCE_AUTO, rc;
    bool verify = true;
    json_t *check;
    o->weight = DEFAULT_WEIGHT;
    if ((rc = object_at(obj, where, err, errlen)) ||
        (rc = keys_check(obj, keys, where, err, errlen)) ||
        (rc = string_get(obj, "address", true, where, &o->address, err, errlen)) ||
        (rc = int_get(obj, "weight", where, &o->weight, err, errlen)) ||
        (rc = enum_get(obj, "state", where, origin_state_parse_int, &state,
                       "enabled draining disabled", err, errlen)) ||
        (rc = enum_get(obj, "health", where, force_parse_int, &force, "auto up down", err,
                       errlen)) ||
        (rc = bool_get(obj, "tls", where, &o->tls, err, errlen)) ||
        (rc = string_get(obj, "tls_name", false, where, &o->tls_name, err, errlen)) ||
        (rc = bool_get(obj, "tls_verify", where, &verify, err, errlen)))
        return rc;
    o->state = (enum db_origin_state)state;
    o->force = (enum db_health_force)force;
    o->tls_insecure = !verify;
    if ((check = json_object_get(obj, "check")) != NULL)
        return check_parse(check, where, &o->check, err, errlen);
    return 0;
}

static int origins_parse(json_t *obj, const char *where, struct db_pool *pool, char *err,
                         size_t errlen)
{
    json_t *list = json_object_get(obj, "origins"), *item;
    char here[256];
    size_t i;
    if (list == NULL)
        return 0;
    if (!json_is_array(list))
        return fail(err, errlen, "%s.origins: expected an array", where);
    pool->origins = xcalloc(json_array_size(list) + 1, sizeof(*pool->origins));
    json_array_foreach(list, i, item)
    {
        snprintf(here, sizeof(here), "%s.origins[%zu]", where, i);
        pool->n_origins++;
        int rc = origin_parse(item, here, &pool->origins[i], err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int rule_parse(json_t *obj, const char *where, struct db_rule *rule, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"match", "regions", NULL};
    char here[256];
    int rc;
    if ((rc = object_at(obj, where, err, errlen)) ||
        (rc = keys_check(obj, keys, where, err, errlen)))
        return rc;
    json_t *match = json_object_get(obj, "match");
    snprintf(here, sizeof(here), "%s.match", where);
    if (match == NULL)
        return fail(err, errlen, "%s: missing", here);
    if (!json_is_object(match) || json_object_size(match) != 1)
        return fail(err, errlen,
                    "%s: expected one of {\"cidr\": ...}, {\"country\": ...}, "
                    "{\"continent\": ...}",
                    here);
    const char *kind = json_object_iter_key(json_object_iter(match));
    if (strcmp(kind, "cidr") == 0)
        rule->match = DB_MATCH_CIDR;
    else if (strcmp(kind, "country") == 0)
        rule->match = DB_MATCH_COUNTRY;
    else if (strcmp(kind, "continent") == 0)
        rule->match = DB_MATCH_CONTINENT;
    else
        return fail(err, errlen, "%s.%s: unknown match (cidr, country or continent)", here, kind);
    if ((rc = string_get(match, kind, true, here, &rule->value, err, errlen)))
        return rc;
    if (rule->match != DB_MATCH_CIDR)
        uppercase(rule->value);
    if (json_object_get(obj, "regions") == NULL)
        return fail(err, errlen, "%s.regions: missing", where);
    return strv_get(obj, "regions", where, &rule->regions, &rule->n_regions, err, errlen);
}

static int pool_parse(json_t *obj, const char *where, struct db_pool *pool, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"region",   "origins", "min_healthy", "min_weight_percent",
                                       "failback", "check",   "holddown_ms", NULL};
    int failback = DB_FAILBACK_AUTO, rc;
    json_t *check;
    pool->min_healthy = 1;
    if ((rc = object_at(obj, where, err, errlen)) ||
        (rc = keys_check(obj, keys, where, err, errlen)) ||
        (rc = string_get(obj, "region", true, where, &pool->region, err, errlen)) ||
        (rc = int_get(obj, "min_healthy", where, &pool->min_healthy, err, errlen)) ||
        (rc = int_get(obj, "min_weight_percent", where, &pool->min_weight_percent, err, errlen)) ||
        (rc = enum_get(obj, "failback", where, failback_parse_int, &failback, "auto manual", err,
                       errlen)) ||
        (rc = int_get(obj, "holddown_ms", where, &pool->holddown_ms, err, errlen)))
        return rc;
    pool->failback = (enum db_failback)failback;
    if ((check = json_object_get(obj, "check")) != NULL &&
        (rc = check_parse(check, where, &pool->check, err, errlen)) != 0)
        return rc;
    return origins_parse(obj, where, pool, err, errlen);
}

typedef int (*item_parse_fn)(json_t *obj, const char *where, void *item, char *err, size_t errlen);

/* Parses the array <key> of <obj> into a new array of <size>-byte items. */
static int array_parse(json_t *obj, const char *key, const char *where, size_t size,
                       item_parse_fn parse, void **items_out, size_t *n_out, char *err,
                       size_t errlen)
{
    json_t *list = json_object_get(obj, key), *item;
    char here[256];
    size_t i;
    if (list == NULL)
        return 0;
    if (!json_is_array(list))
        return fail(err, errlen, "%s%s%s: expected an array", where, where[0] ? "." : "", key);
    *items_out = xcalloc(json_array_size(list) + 1, size);
    json_array_foreach(list, i, item)
    {
        snprintf(here, sizeof(here), "%s%s%s[%zu]", where, where[0] ? "." : "", key, i);
        (*n_out)++;
        int rc = parse(item, here, (char *)*items_out + i * size, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int pool_parse_item(json_t *obj, const char *where, void *item, char *err, size_t errlen)
{
    return pool_parse(obj, where, item, err, errlen);
}

static int rule_parse_item(json_t *obj, const char *where, void *item, char *err, size_t errlen)
{
    return rule_parse(obj, where, item, err, errlen);
}

static int service_parse(json_t *obj, const char *where, void *item, char *err, size_t errlen)
{
    static const char *const keys[] = {"name",     "hosts", "policy", "sticky",
                                       "fallback", "pools", "rules",  NULL};
    struct db_service *s = item;
    int policy = DB_POLICY_NEAREST, rc;
    if ((rc = object_at(obj, where, err, errlen)) ||
        (rc = keys_check(obj, keys, where, err, errlen)) ||
        (rc = string_get(obj, "name", true, where, &s->name, err, errlen)) ||
        (rc = strv_get(obj, "hosts", where, &s->hosts, &s->n_hosts, err, errlen)) ||
        (rc = enum_get(obj, "policy", where, policy_parse_int, &policy, "nearest failover", err,
                       errlen)) ||
        (rc = bool_get(obj, "sticky", where, &s->sticky, err, errlen)) ||
        (rc = strv_get(obj, "fallback", where, &s->fallback, &s->n_fallback, err, errlen)) ||
        (rc = array_parse(obj, "pools", where, sizeof(struct db_pool), pool_parse_item,
                          (void **)&s->pools, &s->n_pools, err, errlen)) ||
        (rc = array_parse(obj, "rules", where, sizeof(struct db_rule), rule_parse_item,
                          (void **)&s->rules, &s->n_rules, err, errlen)))
        return rc;
    s->policy = (enum db_policy)policy;
    for (size_t i = 0; i < s->n_hosts; i++)
        lowercase(s->hosts[i]);
    return 0;
}

/* A region of the short form may carry "origins", which become a pool of the default service. */
static int region_parse(json_t *obj, const char *where, void *item, char *err, size_t errlen)
{
    static const char *const keys[] = {"name",  "display_name", "lat",     "lon",
                                       "state", "health",       "origins", NULL};
    struct db_region *r = item;
    int state = DB_REGION_ACTIVE, force = DB_FORCE_AUTO, rc;
    if ((rc = object_at(obj, where, err, errlen)) ||
        (rc = keys_check(obj, keys, where, err, errlen)) ||
        (rc = string_get(obj, "name", true, where, &r->name, err, errlen)) ||
        (rc = string_get(obj, "display_name", false, where, &r->display_name, err, errlen)) ||
        (rc = number_get(obj, "lat", true, where, &r->lat, err, errlen)) ||
        (rc = number_get(obj, "lon", true, where, &r->lon, err, errlen)) ||
        (rc = enum_get(obj, "state", where, region_state_parse_int, &state,
                       "active draining disabled", err, errlen)) ||
        (rc = enum_get(obj, "health", where, force_parse_int, &force, "auto up down", err, errlen)))
        return rc;
    r->state = (enum db_region_state)state;
    r->force = (enum db_health_force)force;
    return 0;
}

/* Builds the default service of the short form from the regions' "origins". */
static int short_form_parse(json_t *root, struct db_topology *topo, char *err, size_t errlen)
{
    json_t *regions = json_object_get(root, "regions"), *item;
    size_t i, first = 0, n_with_origins = 0;
    json_array_foreach(regions, i, item)
    {
        if (json_object_get(item, "origins") != NULL && n_with_origins++ == 0)
            first = i;
    }
    if (n_with_origins == 0)
        return 0;
    if (json_object_get(root, "services") != NULL)
        return fail(err, errlen,
                    "regions[%zu].origins: origins go inside services[].pools when "
                    "\"services\" is given",
                    first);
    struct db_service *s = topo->services = xcalloc(1, sizeof(*s));
    topo->n_services = 1;
    s->name = xstrdup("default");
    s->hosts = xcalloc(1, sizeof(*s->hosts));
    s->hosts[0] = xstrdup("*");
    s->n_hosts = 1;
    s->pools = xcalloc(n_with_origins, sizeof(*s->pools));
    json_array_foreach(regions, i, item)
    {
        char where[64];
        if (json_object_get(item, "origins") == NULL)
            continue;
        snprintf(where, sizeof(where), "regions[%zu]", i);
        struct db_pool *pool = &s->pools[s->n_pools++];
        pool->region = xstrdup(topo->regions[i].name);
        pool->min_healthy = 1;
        int rc = origins_parse(item, where, pool, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int db_topology_from_json(const char *text, size_t len, struct db_topology **topo_out, char *err,
                          size_t errlen)
{
    static const char *const keys[] = {"regions", "services", NULL};
    json_error_t jerr;
    struct db_topology *topo = xcalloc(1, sizeof(*topo));
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    if (root == NULL) {
        rc = fail(err, errlen, "JSON syntax error at line %d, column %d: %s", jerr.line,
                  jerr.column, jerr.text);
        goto out;
    }
    if ((rc = object_at(root, "document", err, errlen)) ||
        (rc = keys_check(root, keys, "document", err, errlen)) ||
        (rc = array_parse(root, "regions", "", sizeof(struct db_region), region_parse,
                          (void **)&topo->regions, &topo->n_regions, err, errlen)) ||
        (rc = array_parse(root, "services", "", sizeof(struct db_service), service_parse,
                          (void **)&topo->services, &topo->n_services, err, errlen)) ||
        (rc = short_form_parse(root, topo, err, errlen)) ||
        (rc = db_topology_validate(topo, err, errlen)))
        goto out;
    *topo_out = topo;
    topo = NULL;
out:
    json_decref(root);
    db_topology_free(topo);
    return rc;
}

/* ---- output ---- */

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* SQLite stores -0.0 as the integer 0; writing it as 0.0 keeps a model and its stored copy alike.
 */
static json_t *coordinate_json(double v)
{
    return json_real(v == 0 ? 0.0 : v);
}

static json_t *region_json(const struct db_region *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    if (r->display_name)
        json_object_set_new(o, "display_name", json_string(r->display_name));
    json_object_set_new(o, "lat", coordinate_json(r->lat));
    json_object_set_new(o, "lon", coordinate_json(r->lon));
    json_object_set_new(o, "state", json_string(db_region_state_name(r->state)));
    if (r->force != DB_FORCE_AUTO)
        json_object_set_new(o, "health", json_string(db_health_force_name(r->force)));
    return o;
}

static json_t *check_json(const struct db_check *c)
{
    json_t *o = json_object();
    if (c->type != DB_CHECK_INHERIT)
        json_object_set_new(o, "type", json_string(db_check_type_name(c->type)));
    if (c->path)
        json_object_set_new(o, "path", json_string(c->path));
    if (c->host)
        json_object_set_new(o, "host", json_string(c->host));
    if (c->expect)
        json_object_set_new(o, "expect", json_string(c->expect));
    if (c->body)
        json_object_set_new(o, "body", json_string(c->body));
    if (c->method)
        json_object_set_new(o, "method", json_string(c->method));
    if (c->interval_ms)
        json_object_set_new(o, "interval_ms", json_integer(c->interval_ms));
    if (c->timeout_ms)
        json_object_set_new(o, "timeout_ms", json_integer(c->timeout_ms));
    if (c->rise)
        json_object_set_new(o, "rise", json_integer(c->rise));
    if (c->fall)
        json_object_set_new(o, "fall", json_integer(c->fall));
    return o;
}

static json_t *origin_json(const struct db_origin *origin)
{
    json_t *o = json_object(), *check = check_json(&origin->check);
    json_object_set_new(o, "address", json_string(origin->address));
    json_object_set_new(o, "weight", json_integer(origin->weight));
    json_object_set_new(o, "state", json_string(db_origin_state_name(origin->state)));
    if (origin->force != DB_FORCE_AUTO)
        json_object_set_new(o, "health", json_string(db_health_force_name(origin->force)));
    if (origin->tls)
        json_object_set_new(o, "tls", json_true());
    if (origin->tls_name)
        json_object_set_new(o, "tls_name", json_string(origin->tls_name));
    if (origin->tls_insecure)
        json_object_set_new(o, "tls_verify", json_false());
    if (json_object_size(check) > 0)
        json_object_set(o, "check", check);
    json_decref(check);
    return o;
}

/* Settings at their defaults are left out, so a short document stays short. */
static json_t *pool_json(const struct db_pool *p)
{
    json_t *o = json_object(), *origins = json_array(), *check = check_json(&p->check);
    json_object_set_new(o, "region", json_string(p->region));
    if (p->min_healthy != 1)
        json_object_set_new(o, "min_healthy", json_integer(p->min_healthy));
    if (p->min_weight_percent)
        json_object_set_new(o, "min_weight_percent", json_integer(p->min_weight_percent));
    if (p->failback != DB_FAILBACK_AUTO)
        json_object_set_new(o, "failback", json_string(db_failback_name(p->failback)));
    if (p->holddown_ms)
        json_object_set_new(o, "holddown_ms", json_integer(p->holddown_ms));
    if (json_object_size(check) > 0)
        json_object_set(o, "check", check);
    json_decref(check);
    for (size_t j = 0; j < p->n_origins; j++)
        json_array_append_new(origins, origin_json(&p->origins[j]));
    json_object_set_new(o, "origins", origins);
    return o;
}

static json_t *rule_json(const struct db_rule *rule)
{
    json_t *o = json_object(), *match = json_object();
    json_object_set_new(match, db_match_name(rule->match), json_string(rule->value));
    json_object_set_new(o, "match", match);
    json_object_set_new(o, "regions", strv_json(rule->regions, rule->n_regions));
    return o;
}

static json_t *service_json(const struct db_service *s)
{
    json_t *o = json_object(), *pools = json_array(), *rules = json_array();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "hosts", strv_json(s->hosts, s->n_hosts));
    json_object_set_new(o, "policy", json_string(db_policy_name(s->policy)));
    json_object_set_new(o, "sticky", json_boolean(s->sticky));
    if (s->n_fallback)
        json_object_set_new(o, "fallback", strv_json(s->fallback, s->n_fallback));
    for (size_t i = 0; i < s->n_pools; i++)
        json_array_append_new(pools, pool_json(&s->pools[i]));
    json_object_set_new(o, "pools", pools);
    for (size_t i = 0; i < s->n_rules; i++)
        json_array_append_new(rules, rule_json(&s->rules[i]));
    json_object_set_new(o, "rules", rules);
    return o;
}

/* Takes ownership of <value>. */
static char *dump(json_t *value, size_t flags)
{
    char *text = json_dumps(value, flags | JSON_REAL_PRECISION(15));
    json_decref(value);
    if (text == NULL)
        abort(); /* jansson fails only when out of memory */
    return text;
}

char *db_topology_to_json(const struct db_topology *topo)
{
    json_t *root = json_object(), *regions = json_array(), *services = json_array();
    for (size_t i = 0; i < topo->n_regions; i++)
        json_array_append_new(regions, region_json(&topo->regions[i]));
    for (size_t i = 0; i < topo->n_services; i++)
        json_array_append_new(services, service_json(&topo->services[i]));
    json_object_set_new(root, "regions", regions);
    json_object_set_new(root, "services", services);
    return dump(root, JSON_INDENT(2));
}

char *db_region_to_json(const struct db_region *region)
{
    return dump(region_json(region), JSON_COMPACT);
}

char *db_service_to_json(const struct db_service *service)
{
    return dump(service_json(service), JSON_COMPACT);
}

char *db_origin_to_json(const struct db_origin *origin)
{
    return dump(origin_json(origin), JSON_COMPACT);
}

char *db_rule_to_json(const struct db_rule *rule)
{
    return dump(rule_json(rule), JSON_COMPACT);
}

/* ---- single objects, for the admin API: the shapes of the topology document ---- */

typedef int (*object_parse_fn)(json_t *obj, const char *where, void *item, char *err,
                               size_t errlen);

static int origin_parse_item(json_t *obj, const char *where, void *item, char *err, size_t errlen)
{
    return origin_parse(obj, where, item, err, errlen);
}

/* Parses the document <text> as one object with <parse>. Fields are named from the object's
 * root ("lat", "check.path"); a key in <refused> is an error that says <why>. */
static int object_from_json(const char *text, size_t len, object_parse_fn parse, void *item,
                            const char *refused, const char *why, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;
    if (root == NULL)
        return fail(err, errlen, "JSON syntax error at line %d, column %d: %s", jerr.line,
                    jerr.column, jerr.text);
    if (!json_is_object(root))
        rc = fail(err, errlen, "document: expected an object");
    else if (refused && json_object_get(root, refused) != NULL)
        rc = fail(err, errlen, "%s: %s", refused, why);
    else
        rc = parse(root, "", item, err, errlen);
    json_decref(root);
    if (rc != 0 && err[0] == '.')
        memmove(err, err + 1, strlen(err));
    return rc;
}

int db_region_from_json(const char *text, size_t len, struct db_region *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = object_from_json(text, len, region_parse, out, "origins",
                              "origins belong to a service's pools", err, errlen);
    if (rc != 0)
        db_region_fini(out);
    return rc;
}

int db_service_from_json(const char *text, size_t len, struct db_service *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = object_from_json(text, len, service_parse, out, NULL, NULL, err, errlen);
    if (rc != 0)
        db_service_fini(out);
    return rc;
}

int db_origin_from_json(const char *text, size_t len, struct db_origin *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = object_from_json(text, len, origin_parse_item, out, NULL, NULL, err, errlen);
    if (rc != 0)
        db_origin_fini(out);
    return rc;
}

int db_rule_from_json(const char *text, size_t len, struct db_rule *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = object_from_json(text, len, rule_parse_item, out, NULL, NULL, err, errlen);
    if (rc != 0)
        db_rule_fini(out);
    return rc;
}

int db_pool_from_json(const char *text, size_t len, struct db_pool *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = object_from_json(text, len, pool_parse_item, out, "origins",
                              "change a pool's origins through its origins", err, errlen);
    if (rc != 0)
        db_pool_fini(out);
    return rc;
}

char *db_pool_to_json(const struct db_pool *pool)
{
    json_t *o = pool_json(pool);
    json_object_del(o, "origins"); /* the pool's own settings */
    return dump(o, JSON_COMPACT);
}

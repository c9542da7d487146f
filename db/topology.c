/* db/topology.c - the in-memory topology model: ownership, lookups and whole-model validation.
 *
 * Validation runs over the complete model, after any import or edit has been applied to it, so a
 * single function decides what may be stored, including references between objects. Messages
 * name the field as a path: regions[eu-west].lat, services[www].pools[eu-west].origins[0].weight.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/xalloc.h"
#include "db/db_int.h"
#include "geo/geo.h"

/* ---- ownership ---- */

char *db_strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

char **db_strv_copy(char *const *v, size_t n)
{
    char **out = xcalloc(n ? n : 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

void db_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void db_region_fini(struct db_region *region)
{
    free(region->name);
    free(region->display_name);
}

static void check_fini(struct db_check *check)
{
    free(check->path);
    free(check->host);
    free(check->expect);
    free(check->body);
    free(check->method);
}

void db_origin_fini(struct db_origin *origin)
{
    free(origin->address);
    free(origin->tls_name);
    check_fini(&origin->check);
}

void db_pool_fini(struct db_pool *pool)
{
    free(pool->region);
    check_fini(&pool->check);
    for (size_t i = 0; i < pool->n_origins; i++)
        db_origin_fini(&pool->origins[i]);
    free(pool->origins);
}

void db_rule_fini(struct db_rule *rule)
{
    free(rule->value);
    db_strv_free(rule->regions, rule->n_regions);
}

void db_service_fini(struct db_service *service)
{
    free(service->name);
    db_strv_free(service->hosts, service->n_hosts);
    db_strv_free(service->fallback, service->n_fallback);
    for (size_t i = 0; i < service->n_pools; i++)
        db_pool_fini(&service->pools[i]);
    free(service->pools);
    for (size_t i = 0; i < service->n_rules; i++)
        db_rule_fini(&service->rules[i]);
    free(service->rules);
}

void db_topology_free(struct db_topology *topo)
{
    if (topo == NULL)
        return;
    for (size_t i = 0; i < topo->n_regions; i++)
        db_region_fini(&topo->regions[i]);
    free(topo->regions);
    for (size_t i = 0; i < topo->n_services; i++)
        db_service_fini(&topo->services[i]);
    free(topo->services);
    free(topo);
}

void db_region_copy(struct db_region *dst, const struct db_region *src)
{
    *dst = *src;
    dst->name = xstrdup(src->name);
    dst->display_name = db_strdup_or_null(src->display_name);
}

static void check_copy(struct db_check *dst, const struct db_check *src)
{
    *dst = *src;
    dst->path = db_strdup_or_null(src->path);
    dst->host = db_strdup_or_null(src->host);
    dst->expect = db_strdup_or_null(src->expect);
    dst->body = db_strdup_or_null(src->body);
    dst->method = db_strdup_or_null(src->method);
}

void db_origin_copy(struct db_origin *dst, const struct db_origin *src)
{
    *dst = *src;
    dst->address = xstrdup(src->address);
    dst->tls_name = db_strdup_or_null(src->tls_name);
    check_copy(&dst->check, &src->check);
}

void db_pool_settings_copy(struct db_pool *dst, const struct db_pool *src)
{
    check_fini(&dst->check);
    dst->min_healthy = src->min_healthy;
    dst->min_weight_percent = src->min_weight_percent;
    dst->failback = src->failback;
    dst->holddown_ms = src->holddown_ms;
    check_copy(&dst->check, &src->check);
}

void db_rule_copy(struct db_rule *dst, const struct db_rule *src)
{
    *dst = *src;
    dst->value = xstrdup(src->value);
    dst->regions = db_strv_copy(src->regions, src->n_regions);
}

/* ---- lookups ---- */

const struct db_region *db_topology_region(const struct db_topology *topo, const char *name)
{
    for (size_t i = 0; i < topo->n_regions; i++) {
        if (strcmp(topo->regions[i].name, name) == 0)
            return &topo->regions[i];
    }
    return NULL;
}

struct db_service *db_topology_service_mut(struct db_topology *topo, const char *name)
{
    for (size_t i = 0; i < topo->n_services; i++) {
        if (strcmp(topo->services[i].name, name) == 0)
            return &topo->services[i];
    }
    return NULL;
}

const struct db_service *db_topology_service(const struct db_topology *topo, const char *name)
{
    return db_topology_service_mut((struct db_topology *)(uintptr_t)topo, name);
}

struct db_pool *db_service_pool(struct db_service *service, const char *region)
{
    for (size_t i = 0; i < service->n_pools; i++) {
        if (strcmp(service->pools[i].region, region) == 0)
            return &service->pools[i];
    }
    return NULL;
}

/* ---- enum names ---- */

static const char *const region_states[] = {"active", "draining", "disabled"};
static const char *const origin_states[] = {"enabled", "draining", "disabled"};
static const char *const policies[] = {"nearest", "failover"};
static const char *const matches[] = {"cidr", "country", "continent"};
static const char *const forces[] = {"auto", "up", "down"};
static const char *const failbacks[] = {"auto", "manual"};
static const char *const check_types[] = {"inherit", "http", "https", "tcp", "none"};

static int name_index(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++) {
        if (strcmp(names[i], name) == 0)
            return (int)i;
    }
    return -EINVAL;
}

#define NAMES_LEN(a) (sizeof(a) / sizeof((a)[0]))

const char *db_region_state_name(enum db_region_state state)
{
    return region_states[state];
}

const char *db_origin_state_name(enum db_origin_state state)
{
    return origin_states[state];
}

const char *db_policy_name(enum db_policy policy)
{
    return policies[policy];
}

const char *db_match_name(enum db_match match)
{
    return matches[match];
}

int db_region_state_parse(const char *name, enum db_region_state *state_out)
{
    int i = name_index(region_states, NAMES_LEN(region_states), name);
    if (i >= 0)
        *state_out = (enum db_region_state)i;
    return i < 0 ? i : 0;
}

int db_origin_state_parse(const char *name, enum db_origin_state *state_out)
{
    int i = name_index(origin_states, NAMES_LEN(origin_states), name);
    if (i >= 0)
        *state_out = (enum db_origin_state)i;
    return i < 0 ? i : 0;
}

const char *db_health_force_name(enum db_health_force force)
{
    return forces[force];
}

int db_health_force_parse(const char *name, enum db_health_force *force_out)
{
    int i = name_index(forces, NAMES_LEN(forces), name);
    if (i >= 0)
        *force_out = (enum db_health_force)i;
    return i < 0 ? i : 0;
}

const char *db_check_type_name(enum db_check_type type)
{
    return check_types[type];
}

int db_check_type_parse(const char *name, enum db_check_type *type_out)
{
    int i = name_index(check_types, NAMES_LEN(check_types), name);
    if (i > 0) /* "inherit" is what an absent type means, never written */
        *type_out = (enum db_check_type)i;
    return i > 0 ? 0 : -EINVAL;
}

const char *db_failback_name(enum db_failback failback)
{
    return failbacks[failback];
}

int db_failback_parse(const char *name, enum db_failback *failback_out)
{
    int i = name_index(failbacks, NAMES_LEN(failbacks), name);
    if (i >= 0)
        *failback_out = (enum db_failback)i;
    return i < 0 ? i : 0;
}

int db_policy_parse(const char *name, enum db_policy *policy_out)
{
    int i = name_index(policies, NAMES_LEN(policies), name);
    if (i >= 0)
        *policy_out = (enum db_policy)i;
    return i < 0 ? i : 0;
}

/* ---- validation ---- */

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

static bool name_is_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > DB_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!ok)
            return false;
    }
    return true;
}

/* A DNS name of letter-digit-hyphen labels, without a trailing dot. */
static bool dns_name_is_valid(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len == 0 || len > 253 || name[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c == '-' && label > 0);
        if (!ok || ++label > 63)
            return false;
    }
    return name[len - 1] != '-';
}

/* "*", "*.example.com" or "www.example.com", lower case. */
static bool host_pattern_is_valid(const char *host)
{
    for (const char *p = host; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            return false;
    }
    if (strcmp(host, "*") == 0)
        return true;
    if (strncmp(host, "*.", 2) == 0)
        host += 2;
    return dns_name_is_valid(host);
}

/* host:port, [v6]:port or name:port; fills <why> on failure. */
static bool address_is_valid(const char *address, const char **why)
{
    const char *colon = strrchr(address, ':');
    char host[256];
    if (colon == NULL || colon == address) {
        *why = "expected host:port";
        return false;
    }
    const char *port = colon + 1;
    char *end;
    long portnum = strtol(port, &end, 10);
    if (*port < '0' || *port > '9' || *end != '\0' || portnum < 1 || portnum > 65535) {
        *why = "port must be 1..65535";
        return false;
    }
    size_t hostlen = (size_t)(colon - address);
    if (hostlen >= sizeof(host)) {
        *why = "host is too long";
        return false;
    }
    memcpy(host, address, hostlen);
    host[hostlen] = '\0';
    struct ip_addr ip;
    if (host[0] == '[') {
        if (hostlen < 3 || host[hostlen - 1] != ']') {
            *why = "unbalanced brackets";
            return false;
        }
        host[hostlen - 1] = '\0';
        if (ip_addr_parse(host + 1, &ip) != 0 || ip.family == AF_INET) {
            *why = "not an IPv6 address inside brackets";
            return false;
        }
        return true;
    }
    if (strchr(host, ':') != NULL) {
        *why = "IPv6 addresses go in brackets: [2001:db8::1]:80";
        return false;
    }
    if (ip_addr_parse(host, &ip) == 0 || dns_name_is_valid(host))
        return true;
    *why = "host is neither an IP address nor a DNS name";
    return false;
}

static bool status_list_is_valid(const char *expect)
{
    /* Comma-separated codes or ranges of codes, each 100..599. */
    const char *p = expect;
    while (*p) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p || lo < 100 || lo > 599)
            return false;
        p = end;
        if (*p == '-') {
            hi = strtol(p + 1, &end, 10);
            if (end == p + 1 || hi < lo || hi > 599)
                return false;
            p = end;
        }
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return false;
    }
    return expect[0] != '\0';
}

static int check_validate(const struct db_check *c, const char *where, char *err, size_t errlen)
{
    if (c->path && c->path[0] != '/')
        return fail(err, errlen, "%s.check.path: must start with '/'", where);
    if (c->path && strpbrk(c->path, " \r\n\t"))
        return fail(err, errlen, "%s.check.path: must not contain spaces or line breaks", where);
    if (c->host && !dns_name_is_valid(c->host))
        return fail(err, errlen, "%s.check.host: '%s' is not a host name", where, c->host);
    if (c->expect && !status_list_is_valid(c->expect))
        return fail(err, errlen,
                    "%s.check.expect: '%s' is not a list of status codes such as 200-399", where,
                    c->expect);
    if (c->body && strlen(c->body) > 1024)
        return fail(err, errlen, "%s.check.body: longer than 1024 bytes", where);
    if (c->method && strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0)
        return fail(err, errlen, "%s.check.method: '%s' is not GET or HEAD", where, c->method);
    if (c->method && c->body && strcmp(c->method, "HEAD") == 0)
        return fail(err, errlen, "%s.check.body: a HEAD answer has no body to look in", where);
    if (c->interval_ms < 0 || c->interval_ms > 3600000 || (c->interval_ms && c->interval_ms < 100))
        return fail(err, errlen, "%s.check.interval_ms: must be 100..3600000", where);
    if (c->timeout_ms < 0 || c->timeout_ms > 600000 || (c->timeout_ms && c->timeout_ms < 10))
        return fail(err, errlen, "%s.check.timeout_ms: must be 10..600000", where);
    if (c->rise < 0 || c->rise > 100)
        return fail(err, errlen, "%s.check.rise: must be 1..100", where);
    if (c->fall < 0 || c->fall > 100)
        return fail(err, errlen, "%s.check.fall: must be 1..100", where);
    return 0;
}

static int region_validate(const struct db_region *r, size_t index, char *err, size_t errlen)
{
    if (!name_is_valid(r->name))
        return fail(err, errlen,
                    "regions[%zu].name: '%s' must match [a-z0-9][a-z0-9-]* (at most %d characters)",
                    index, r->name ? r->name : "", DB_NAME_MAX);
    if (!(r->lat >= -90 && r->lat <= 90))
        return fail(err, errlen, "regions[%s].lat: %g is outside [-90, 90]", r->name, r->lat);
    if (!(r->lon >= -180 && r->lon <= 180))
        return fail(err, errlen, "regions[%s].lon: %g is outside [-180, 180]", r->name, r->lon);
    if (r->display_name && strlen(r->display_name) > 200)
        return fail(err, errlen, "regions[%s].display_name: longer than 200 bytes", r->name);
    return 0;
}

static int region_refs_validate(const struct db_topology *topo, char *const *regions, size_t n,
                                const char *where, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (db_topology_region(topo, regions[i]) == NULL)
            return fail(err, errlen, "%s[%zu]: no region named '%s'", where, i, regions[i]);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(regions[i], regions[j]) == 0)
                return fail(err, errlen, "%s[%zu]: region '%s' is listed twice", where, i,
                            regions[i]);
        }
    }
    return 0;
}

static int rule_validate(const struct db_topology *topo, const struct db_rule *rule,
                         const char *svc, size_t index, char *err, size_t errlen)
{
    char where[160];
    struct ip_cidr cidr;

    snprintf(where, sizeof(where), "services[%s].rules[%zu]", svc, index);
    switch (rule->match) {
    case DB_MATCH_CIDR:
        if (ip_cidr_parse(rule->value, &cidr) != 0)
            return fail(err, errlen, "%s.match.cidr: '%s' is not a CIDR prefix with zero host bits",
                        where, rule->value);
        break;
    case DB_MATCH_COUNTRY:
        if (geo_country_find(rule->value) == NULL)
            return fail(err, errlen, "%s.match.country: '%s' is not an ISO 3166-1 alpha-2 code",
                        where, rule->value);
        break;
    case DB_MATCH_CONTINENT:
        if (geo_continent_find(rule->value) == NULL)
            return fail(err, errlen, "%s.match.continent: '%s' is not one of AF AN AS EU NA OC SA",
                        where, rule->value);
        break;
    }
    if (rule->n_regions == 0)
        return fail(err, errlen, "%s.regions: must name at least one region", where);
    strncat(where, ".regions", sizeof(where) - strlen(where) - 1);
    return region_refs_validate(topo, rule->regions, rule->n_regions, where, err, errlen);
}

static int pool_validate(const struct db_topology *topo, const struct db_pool *pool,
                         const char *svc, char *err, size_t errlen)
{
    char where[200];
    const char *why;

    if (db_topology_region(topo, pool->region) == NULL)
        return fail(err, errlen, "services[%s].pools[%s].region: no region named '%s'", svc,
                    pool->region, pool->region);
    snprintf(where, sizeof(where), "services[%s].pools[%s]", svc, pool->region);
    if (pool->min_healthy < 1 || pool->min_healthy > 1000)
        return fail(err, errlen, "%s.min_healthy: %d is outside 1..1000", where, pool->min_healthy);
    if ((size_t)pool->min_healthy > pool->n_origins && pool->n_origins > 0)
        return fail(err, errlen,
                    "%s.min_healthy: %d is more than the pool's %zu origins; lower it first", where,
                    pool->min_healthy, pool->n_origins);
    if (pool->min_weight_percent < 0 || pool->min_weight_percent > 100)
        return fail(err, errlen, "%s.min_weight_percent: %d is outside 0..100", where,
                    pool->min_weight_percent);
    if (pool->holddown_ms < 0 || pool->holddown_ms > 86400000)
        return fail(err, errlen, "%s.holddown_ms: %d is outside 0..86400000 (0: the default)",
                    where, pool->holddown_ms);
    int rc = check_validate(&pool->check, where, err, errlen);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < pool->n_origins; i++) {
        const struct db_origin *o = &pool->origins[i];
        snprintf(where, sizeof(where), "services[%s].pools[%s].origins[%zu]", svc, pool->region, i);
        if (!address_is_valid(o->address, &why))
            return fail(err, errlen, "%s.address: '%s': %s", where, o->address, why);
        if (o->weight < 0 || o->weight > 1000)
            return fail(err, errlen, "%s.weight: %d is outside 0..1000", where, o->weight);
        if (o->tls_name && !dns_name_is_valid(o->tls_name))
            return fail(err, errlen, "%s.tls_name: '%s' is not a host name", where, o->tls_name);
        if ((o->tls_name || o->tls_insecure) && !o->tls)
            return fail(err, errlen, "%s.%s: only for an origin with \"tls\": true", where,
                        o->tls_name ? "tls_name" : "tls_verify");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(pool->origins[j].address, o->address) == 0)
                return fail(err, errlen, "%s.address: '%s' is already in this pool", where,
                            o->address);
        }
        if ((rc = check_validate(&o->check, where, err, errlen)) != 0)
            return rc;
    }
    return 0;
}

static int service_validate(const struct db_topology *topo, size_t index, char *err, size_t errlen)
{
    const struct db_service *s = &topo->services[index];
    char where[160];

    if (!name_is_valid(s->name))
        return fail(
            err, errlen,
            "services[%zu].name: '%s' must match [a-z0-9][a-z0-9-]* (at most %d characters)", index,
            s->name ? s->name : "", DB_NAME_MAX);
    if (s->n_hosts == 0)
        return fail(err, errlen, "services[%s].hosts: must list at least one host name or \"*\"",
                    s->name);
    for (size_t i = 0; i < s->n_hosts; i++) {
        if (!host_pattern_is_valid(s->hosts[i]))
            return fail(
                err, errlen,
                "services[%s].hosts[%zu]: '%s' is not a lower-case host name, *.domain or *",
                s->name, i, s->hosts[i]);
        /* A host belongs to one service, or routing would depend on table order. */
        for (size_t j = 0; j <= index; j++) {
            const struct db_service *other = &topo->services[j];
            size_t limit = j == index ? i : other->n_hosts;
            for (size_t k = 0; k < limit; k++) {
                if (strcmp(other->hosts[k], s->hosts[i]) == 0)
                    return fail(err, errlen,
                                "services[%s].hosts[%zu]: '%s' is already served by %s", s->name, i,
                                s->hosts[i], other->name);
            }
        }
    }
    snprintf(where, sizeof(where), "services[%s].fallback", s->name);
    int rc = region_refs_validate(topo, s->fallback, s->n_fallback, where, err, errlen);
    for (size_t i = 0; rc == 0 && i < s->n_pools; i++) {
        rc = pool_validate(topo, &s->pools[i], s->name, err, errlen);
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (strcmp(s->pools[i].region, s->pools[j].region) == 0)
                rc = fail(err, errlen, "services[%s].pools[%zu].region: '%s' has two pools",
                          s->name, i, s->pools[i].region);
        }
    }
    for (size_t i = 0; rc == 0 && i < s->n_rules; i++)
        rc = rule_validate(topo, &s->rules[i], s->name, i, err, errlen);
    return rc;
}

int db_topology_validate(const struct db_topology *topo, char *err, size_t errlen)
{
    if (topo->n_regions > DB_MAX_REGIONS)
        return fail(err, errlen, "regions: %zu regions, at most %d are supported", topo->n_regions,
                    DB_MAX_REGIONS);
    for (size_t i = 0; i < topo->n_regions; i++) {
        int rc = region_validate(&topo->regions[i], i, err, errlen);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(topo->regions[i].name, topo->regions[j].name) == 0)
                return fail(err, errlen, "regions[%zu].name: '%s' is defined twice", i,
                            topo->regions[i].name);
        }
    }
    for (size_t i = 0; i < topo->n_services; i++) {
        int rc = service_validate(topo, i, err, errlen);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(topo->services[i].name, topo->services[j].name) == 0)
                return fail(err, errlen, "services[%zu].name: '%s' is defined twice", i,
                            topo->services[i].name);
        }
    }
    return 0;
}

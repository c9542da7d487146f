/* admin/router.c - the table of API routes under /api/v1 and the matcher that picks one.
 *
 * The table is the single list of what the API serves: the server dispatches from it, and the
 * tests check it against admin/openapi.json in both directions, so the description cannot drift
 * from the code. Patterns are literal segments and "{name}" segments, matched segment by segment
 * on the decoded path; a segment value may be anything but '/' (an origin address like
 * "[2001:db8::1]:80" arrives percent-encoded and is decoded by libmicrohttpd). */
#include <stdio.h>
#include <string.h>

#include "admin/admin_int.h"

#define SVC    "/services/{service}"
#define POOL   ADMIN_POOL_PATTERN
#define ORIGIN POOL "/origins/{address}"

const struct admin_route admin_routes[] = {
    {"GET", "/openapi.json", admin_openapi_get, ADMIN_PUBLIC},
    {"GET", "/setup", admin_setup_get, ADMIN_PUBLIC},
    {"POST", "/setup", admin_setup_post, ADMIN_PUBLIC},
    {"POST", "/login", admin_login, ADMIN_PUBLIC},
    {"POST", "/logout", admin_logout, 0},
    {"GET", "/session", admin_session_get, 0},
    {"GET", "/version", admin_version_get, 0},
    {"GET", "/topology", admin_topology_get, 0},
    {"PUT", "/topology", admin_topology_put, ADMIN_LARGE_BODY},
    {"GET", "/regions", admin_regions_list, 0},
    {"POST", "/regions", admin_regions_add, 0},
    {"GET", "/regions/{name}", admin_region_get, 0},
    {"PUT", "/regions/{name}", admin_region_put, 0},
    {"PATCH", "/regions/{name}", admin_region_patch, 0},
    {"DELETE", "/regions/{name}", admin_region_remove, 0},
    {"POST", "/regions/{name}/state", admin_region_state, 0},
    {"GET", "/services", admin_services_list, 0},
    {"POST", "/services", admin_services_add, 0},
    {"GET", SVC, admin_service_get, 0},
    {"PUT", SVC, admin_service_put, 0},
    {"PATCH", SVC, admin_service_patch, 0},
    {"DELETE", SVC, admin_service_remove, 0},
    {"GET", SVC "/pools", admin_pools_list, 0},
    {"GET", POOL, admin_pool_get, 0},
    {"PUT", POOL, admin_pool_put, 0},
    {"PATCH", POOL, admin_pool_patch, 0},
    {"POST", POOL "/origins", admin_origins_add, 0},
    {"GET", ORIGIN, admin_origin_get, 0},
    {"PUT", ORIGIN, admin_origin_put, 0},
    {"PATCH", ORIGIN, admin_origin_patch, 0},
    {"DELETE", ORIGIN, admin_origin_remove, 0},
    {"POST", ORIGIN "/state", admin_origin_state, 0},
    {"GET", SVC "/rules", admin_rules_list, 0},
    {"POST", SVC "/rules", admin_rules_add, 0},
    {"DELETE", SVC "/rules/{index}", admin_rule_remove, 0},
    {"GET", "/route", admin_route_explain, 0},
    {"GET", "/health", admin_health_get, 0},
    {"GET", "/health/history", admin_health_history, 0},
    {"GET", "/audit", admin_audit_get, 0},
    {"GET", "/stats", admin_stats_get, 0},
    {"GET", "/countries", admin_countries_get, 0},
    {"GET", "/tokens", admin_tokens_list, 0},
    {"POST", "/tokens", admin_tokens_add, 0},
    {"DELETE", "/tokens/{id}", admin_tokens_remove, 0},
    {"GET", "/users", admin_users_list, 0},
    {"POST", "/users", admin_users_add, 0},
    {"DELETE", "/users/{name}", admin_users_remove, 0},
    {"PUT", "/users/{name}/password", admin_users_password, 0},
};
const size_t admin_n_routes = sizeof(admin_routes) / sizeof(admin_routes[0]);

/* Matches <path> against <pattern>, filling <params>. */
static bool pattern_match(const char *pattern, const char *path, char params[][256],
                          size_t *n_params)
{
    size_t n = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++;
        path++;
        size_t plen = strcspn(pattern, "/"), len = strcspn(path, "/");
        if (pattern[0] == '{') {
            if (len == 0 || len >= 256 || n == ADMIN_MAX_PARAMS)
                return false;
            memcpy(params[n], path, len);
            params[n++][len] = '\0';
        } else if (plen != len || memcmp(pattern, path, len) != 0) {
            return false;
        }
        pattern += plen;
        path += len;
    }
    if (*pattern || *path)
        return false;
    *n_params = n;
    return true;
}

const struct admin_route *admin_route_match(const char *method, const char *path,
                                            char params[ADMIN_MAX_PARAMS][256], size_t *n_params,
                                            bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < admin_n_routes; i++) {
        if (!pattern_match(admin_routes[i].pattern, path, params, n_params))
            continue;
        *path_known = true;
        if (strcmp(admin_routes[i].method, method) == 0)
            return &admin_routes[i];
    }
    return NULL;
}

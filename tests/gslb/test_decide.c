/* tests/gslb/test_decide.c - the region decision (gslb/decide.c) and host matching
 * (gslb_service_find in gslb/snapshot.c).
 *
 * Topologies are written as JSON documents (with ' for " to keep them readable), parsed and
 * validated by db/ and compiled into snapshots; geo results are filled in by hand. Distances are
 * checked against published great-circle distances, and a differential test compares random
 * topologies with a naive reference (haversine, sort by distance then name, first region up). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/gslb.h"

/* ---- helpers ---- */

/* Builds a snapshot of the topology document <json>, written with ' for ". */
static struct gslb_snapshot *snapshot_from_json(const char *json)
{
    char *text = strdup(json), err[256];
    struct db_topology *topo = NULL;
    assert_non_null(text);
    for (char *p = text; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    if (db_topology_from_json(text, strlen(text), &topo, err, sizeof(err)) != 0)
        fail_msg("topology: %s\n%s", err, text);
    struct gslb_snapshot *snap = gslb_snapshot_build(topo);
    db_topology_free(topo);
    free(text);
    return snap;
}

/* A located client, as a city database record would describe it. */
static struct geo_result geo_at(double lat, double lon, const char *country, const char *continent)
{
    struct geo_result g;
    memset(&g, 0, sizeof(g));
    g.status = GEO_FOUND;
    g.location_source = GEO_LOCATION_RECORD;
    g.lat = lat;
    g.lon = lon;
    snprintf(g.country, sizeof(g.country), "%s", country);
    snprintf(g.continent, sizeof(g.continent), "%s", continent);
    return g;
}

static struct ip_addr addr_of(const char *text)
{
    struct ip_addr a;
    assert_int_equal(ip_addr_parse(text, &a), 0);
    return a;
}

static const struct gslb_service *service_named(const struct gslb_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->n_services; i++) {
        if (strcmp(snap->services[i].name, name) == 0)
            return &snap->services[i];
    }
    fail_msg("no service %s", name);
    return NULL;
}

static const char *candidate_name(const struct gslb_snapshot *snap, const struct gslb_decision *d,
                                  size_t i)
{
    return snap->regions[d->candidates[i].region].name;
}

static const char *chosen_name(const struct gslb_snapshot *snap, const struct gslb_decision *d)
{
    return d->chosen < 0 ? "-" : candidate_name(snap, d, (size_t)d->chosen);
}

/* The distance in km of candidate <i> of <d>. */
static double candidate_km(const struct gslb_snapshot *snap, const struct gslb_decision *d,
                           size_t i)
{
    return gslb_candidate_distance_km(snap, d, &d->candidates[i]);
}

/* The candidates' names joined by commas, so a wrong order shows the whole list. */
static const char *candidate_order(const struct gslb_snapshot *snap, const struct gslb_decision *d)
{
    static char buf[4096];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < d->n_candidates; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "," : "",
                                candidate_name(snap, d, i));
    return buf;
}

/* Decides for the only service of <snap>. */
static struct gslb_decision decide(const struct gslb_snapshot *snap, const char *client,
                                   const struct geo_result *geo, const struct gslb_health *health)
{
    struct gslb_decision d;
    struct ip_addr a;
    memset(&a, 0, sizeof(a));
    if (client != NULL)
        a = addr_of(client);
    memset(&d, 0xa5, sizeof(d)); /* nothing may be left unset */
    bool ok = gslb_decide(snap, &snap->services[0], client ? &a : NULL, geo, health, &d);
    assert_true(ok == (d.chosen >= 0));
    assert_ptr_equal(d.service, &snap->services[0]);
    return d;
}

static void assert_near(double actual, double expected, double relative)
{
    if (!(fabs(actual - expected) <= relative * fabs(expected)))
        fail_msg("%.9f is not within %g of %.9f", actual, relative, expected);
}

#define LONDON_LAT 51.5074
#define LONDON_LON -0.1278

/* Four cities, listed neither by name nor by distance from London; one origin each. */
#define CITIES                                                                                     \
    "'regions': ["                                                                                 \
    "  {'name': 'tokyo', 'lat': 35.6762, 'lon': 139.6503},"                                        \
    "  {'name': 'new-york', 'lat': 40.7128, 'lon': -74.0060},"                                     \
    "  {'name': 'sydney', 'lat': -33.8688, 'lon': 151.2093},"                                      \
    "  {'name': 'frankfurt', 'lat': 50.1109, 'lon': 8.6821}]"
#define CITY_POOLS                                                                                 \
    "'pools': ["                                                                                   \
    "  {'region': 'sydney', 'origins': [{'address': '10.0.0.1:80'}]},"                             \
    "  {'region': 'tokyo', 'origins': [{'address': '10.0.0.2:80'}]},"                              \
    "  {'region': 'frankfurt', 'origins': [{'address': '10.0.0.3:80'}]},"                          \
    "  {'region': 'new-york', 'origins': [{'address': '10.0.0.4:80'}]}]"

/* ---- distances and nearest ordering ---- */

static void distance_from_london_to_new_york_is_5570_km(void **state)
{
    (void)state;
    assert_near(gslb_distance_km(LONDON_LAT, LONDON_LON, 40.7128, -74.0060), 5570, 0.01);
    assert_near(gslb_distance_km(40.7128, -74.0060, LONDON_LAT, LONDON_LON), 5570, 0.01);
}

static void distance_is_zero_to_itself_and_half_the_circumference_to_the_antipode(void **state)
{
    (void)state;
    double half = M_PI * GSLB_EARTH_RADIUS_KM;
    assert_true(gslb_distance_km(12.5, 33.25, 12.5, 33.25) < 1e-9);
    assert_near(gslb_distance_km(12.5, 33.25, -12.5, -146.75), half, 1e-9);
    assert_near(gslb_distance_km(0, 0, 0, 90), half / 2, 1e-12);
    assert_near(gslb_distance_km(90, 0, 0, 123), half / 2, 1e-12);
    assert_near(gslb_distance_km(90, 0, -90, 0), half, 1e-12);
}

static void nearest_policy_orders_regions_by_great_circle_distance(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{" CITIES ", 'services': [{'name': 'web', 'hosts': ['*'], " CITY_POOLS "}]}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "81.2.69.142", &geo, NULL);
    /* Published great-circle distances from London. */
    static const double km[] = {638, 5570, 9559, 16994};

    assert_string_equal(candidate_order(snap, &d), "frankfurt,new-york,tokyo,sydney");
    assert_int_equal(d.chosen, 0);
    for (size_t i = 0; i < d.n_candidates; i++) {
        assert_near(candidate_km(snap, &d, i), km[i], 0.01);
        assert_int_equal(d.candidates[i].reason, GSLB_REASON_NEAREST);
        assert_int_equal(d.candidates[i].state, GSLB_REGION_UP);
        assert_int_equal(d.candidates[i].rule, -1);
    }
    gslb_snapshot_release(snap);
}

static void client_near_the_antimeridian_prefers_the_region_across_it(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{'regions': [{'name': 'west', 'lat': 0, 'lon': 170}, {'name': 'east', 'lat': 0, "
        "'lon': -179.9}], 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'west', 'origins': [{'address': '10.0.0.1:80'}]},"
        "  {'region': 'east', 'origins': [{'address': '10.0.0.2:80'}]}]}]}");
    struct geo_result geo = geo_at(0, 179.9, "FJ", "OC");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);

    assert_string_equal(candidate_order(snap, &d), "east,west");
    assert_string_equal(chosen_name(snap, &d), "east");
    assert_near(candidate_km(snap, &d, 0), 0.2 * M_PI / 180 * GSLB_EARTH_RADIUS_KM, 1e-6);
    assert_near(candidate_km(snap, &d, 1), 9.9 * M_PI / 180 * GSLB_EARTH_RADIUS_KM, 1e-6);
    gslb_snapshot_release(snap);
}

static void client_at_the_pole_breaks_the_tie_of_equidistant_regions_by_name(void **state)
{
    (void)state;
    /* Both regions are 1 degree from the north pole; listed in both orders. */
    static const char *const docs[] = {
        "{'regions': [{'name': 'zulu', 'lat': 89, 'lon': 0}, {'name': 'alpha', 'lat': 89, "
        "'lon': 180}], 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'zulu', 'origins': [{'address': '10.0.0.1:80'}]},"
        "  {'region': 'alpha', 'origins': [{'address': '10.0.0.2:80'}]}]}]}",
        "{'regions': [{'name': 'alpha', 'lat': 89, 'lon': 180}, {'name': 'zulu', 'lat': 89, "
        "'lon': 0}], 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'alpha', 'origins': [{'address': '10.0.0.2:80'}]},"
        "  {'region': 'zulu', 'origins': [{'address': '10.0.0.1:80'}]}]}]}",
    };
    for (size_t doc = 0; doc < 2; doc++) {
        struct gslb_snapshot *snap = snapshot_from_json(docs[doc]);
        /* At the pole every longitude names the same point. */
        for (double lon = -180; lon <= 180; lon += 7.5) {
            struct geo_result geo = geo_at(90, lon, "", "");
            struct gslb_decision d = decide(snap, NULL, &geo, NULL);
            assert_string_equal(candidate_order(snap, &d), "alpha,zulu");
            assert_near(candidate_km(snap, &d, 0), M_PI / 180 * GSLB_EARTH_RADIUS_KM, 1e-9);
            assert_near(candidate_km(snap, &d, 1), M_PI / 180 * GSLB_EARTH_RADIUS_KM, 1e-9);
        }
        gslb_snapshot_release(snap);
    }
}

/* Regions 2 mm apart in distance from the client: their squared chords (about 1e-11 apart) are
 * too close to order them, so their exact distances must, and not their names. */
static void regions_millimetres_apart_are_ordered_by_distance_not_name(void **state)
{
    (void)state;
    /* 1.8e-8 degrees of longitude on the equator: 2.0 mm. */
    struct gslb_snapshot *snap = snapshot_from_json(
        "{'regions': [{'name': 'alpha', 'lat': 0, 'lon': 1.000000018}, {'name': 'zulu', 'lat': 0, "
        "'lon': 1}], 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'alpha', 'origins': [{'address': '10.0.0.1:80'}]},"
        "  {'region': 'zulu', 'origins': [{'address': '10.0.0.2:80'}]}]}]}");
    struct geo_result geo = geo_at(0, 0, "", "");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "zulu,alpha");
    double gap_mm = (candidate_km(snap, &d, 1) - candidate_km(snap, &d, 0)) * 1e6;
    assert_true(gap_mm > 1.5 && gap_mm < 2.5);
    assert_true(fabs(d.candidates[1].chord2 - d.candidates[0].chord2) < 1e-9);
    gslb_snapshot_release(snap);
}

static void equal_distances_are_ordered_by_name_whatever_the_input_order(void **state)
{
    (void)state;
    /* Four regions 10 degrees from the client, one nearer, one farther; the regions and pools
     * in two opposite orders. */
    static const char *const docs[] = {
        "{'regions': [{'name': 'west', 'lat': 0, 'lon': -10}, {'name': 'far', 'lat': 0, 'lon': 90},"
        " {'name': 'north', 'lat': 10, 'lon': 0}, {'name': 'near', 'lat': 0, 'lon': 1},"
        " {'name': 'south', 'lat': -10, 'lon': 0}, {'name': 'east', 'lat': 0, 'lon': 10}],"
        " 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'west', 'origins': [{'address': '10.0.0.1:80'}]},"
        "  {'region': 'far', 'origins': [{'address': '10.0.0.2:80'}]},"
        "  {'region': 'north', 'origins': [{'address': '10.0.0.3:80'}]},"
        "  {'region': 'near', 'origins': [{'address': '10.0.0.4:80'}]},"
        "  {'region': 'south', 'origins': [{'address': '10.0.0.5:80'}]},"
        "  {'region': 'east', 'origins': [{'address': '10.0.0.6:80'}]}]}]}",
        "{'regions': [{'name': 'east', 'lat': 0, 'lon': 10}, {'name': 'south', 'lat': -10, "
        "'lon': 0}, {'name': 'near', 'lat': 0, 'lon': 1}, {'name': 'north', 'lat': 10, 'lon': 0},"
        " {'name': 'far', 'lat': 0, 'lon': 90}, {'name': 'west', 'lat': 0, 'lon': -10}],"
        " 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'east', 'origins': [{'address': '10.0.0.6:80'}]},"
        "  {'region': 'south', 'origins': [{'address': '10.0.0.5:80'}]},"
        "  {'region': 'near', 'origins': [{'address': '10.0.0.4:80'}]},"
        "  {'region': 'north', 'origins': [{'address': '10.0.0.3:80'}]},"
        "  {'region': 'far', 'origins': [{'address': '10.0.0.2:80'}]},"
        "  {'region': 'west', 'origins': [{'address': '10.0.0.1:80'}]}]}]}",
    };
    for (size_t doc = 0; doc < 2; doc++) {
        struct gslb_snapshot *snap = snapshot_from_json(docs[doc]);
        struct geo_result geo = geo_at(0, 0, "", "");
        struct gslb_decision d = decide(snap, NULL, &geo, NULL);
        assert_string_equal(candidate_order(snap, &d), "near,east,north,south,west,far");
        gslb_snapshot_release(snap);
    }
}

/* ---- region states ---- */

/* Three regions whose origins are given by <a>, <b> and <c> (JSON origin lists). */
static struct gslb_snapshot *three_regions(const char *a, const char *b, const char *c)
{
    char doc[2048];
    snprintf(doc, sizeof(doc),
             "{'regions': [{'name': 'a', 'lat': 0, 'lon': 1}, {'name': 'b', 'lat': 0, 'lon': 2},"
             " {'name': 'c', 'lat': 0, 'lon': 3}], 'services': [{'name': 'web', 'hosts': ['*'],"
             " 'pools': [{'region': 'a', 'origins': %s}, {'region': 'b', 'origins': %s},"
             " {'region': 'c', 'origins': %s}]}]}",
             a, b, c);
    return snapshot_from_json(doc);
}

static void assert_no_region_serves(const struct gslb_snapshot *snap, const struct gslb_decision *d)
{
    assert_int_equal(d->chosen, -1);
    assert_string_equal(candidate_order(snap, d), "a,b,c");
    for (size_t i = 0; i < d->n_candidates; i++)
        assert_int_equal(d->candidates[i].state, GSLB_REGION_DOWN);
}

static void no_region_serves_when_every_origin_is_disabled_or_draining(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = three_regions("[{'address': '10.0.0.1:80', 'state': 'disabled'}]",
                                               "[{'address': '10.0.0.2:80', 'state': 'draining'}]",
                                               "[{'address': '10.0.0.3:80', 'state': 'disabled'},"
                                               " {'address': '10.0.0.4:80', 'state': 'draining'}]");
    struct geo_result geo = geo_at(0, 0, "", "");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);
    assert_no_region_serves(snap, &d);
    gslb_snapshot_release(snap);
}

static void no_region_serves_when_every_origin_weighs_zero(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = three_regions(
        "[{'address': '10.0.0.1:80', 'weight': 0}]", "[{'address': '10.0.0.2:80', 'weight': 0}]",
        "[{'address': '10.0.0.3:80', 'weight': 0}, {'address': '10.0.0.4:80', 'weight': 0}]");
    struct geo_result geo = geo_at(0, 0, "", "");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);
    assert_no_region_serves(snap, &d);
    gslb_snapshot_release(snap);
}

static void no_region_serves_when_health_marks_every_origin_down(void **state)
{
    (void)state;
    struct gslb_snapshot *snap =
        three_regions("[{'address': '10.0.0.1:80'}]", "[{'address': '10.0.0.2:80'}]",
                      "[{'address': '10.0.0.3:80'}, {'address': '10.0.0.4:80'}]");
    uint8_t up[4] = {0, 0, 0, 0};
    struct gslb_health health = {.origin_up = up};
    struct geo_result geo = geo_at(0, 0, "", "");
    assert_int_equal(snap->n_origins, 4);
    struct gslb_decision d = decide(snap, NULL, &geo, &health);
    assert_no_region_serves(snap, &d);
    gslb_snapshot_release(snap);
}

static void region_stays_up_while_one_of_its_origins_is_healthy(void **state)
{
    (void)state;
    struct gslb_snapshot *snap =
        three_regions("[{'address': '10.0.0.1:80'}, {'address': '10.0.0.2:80'}]",
                      "[{'address': '10.0.0.3:80'}]", "[{'address': '10.0.0.4:80'}]");
    uint8_t up[4];
    struct gslb_health health = {.origin_up = up};
    struct geo_result geo = geo_at(0, 0, "", "");
    /* Mark by index, which is what the health view is keyed on. */
    memset(up, 1, sizeof(up));
    up[snap->services[0].pools[0].origins[0].index] = 0;
    struct gslb_decision d = decide(snap, NULL, &geo, &health);
    assert_string_equal(chosen_name(snap, &d), "a");
    up[snap->services[0].pools[0].origins[1].index] = 0;
    d = decide(snap, NULL, &geo, &health);
    assert_int_equal(d.candidates[0].state, GSLB_REGION_DOWN);
    assert_string_equal(chosen_name(snap, &d), "b");
    gslb_snapshot_release(snap);
}

static void draining_region_is_skipped_and_reported_as_draining(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{'regions': [{'name': 'a', 'lat': 0, 'lon': 1, 'state': 'draining'},"
        " {'name': 'b', 'lat': 0, 'lon': 2}], 'services': [{'name': 'web', 'hosts': ['*'],"
        " 'pools': [{'region': 'a', 'origins': [{'address': '10.0.0.1:80'}]},"
        " {'region': 'b', 'origins': [{'address': '10.0.0.2:80'}]}]}]}");
    struct geo_result geo = geo_at(0, 0, "", "");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "a,b");
    assert_int_equal(d.candidates[0].state, GSLB_REGION_DRAINING);
    assert_int_equal(d.candidates[1].state, GSLB_REGION_UP);
    assert_int_equal(d.chosen, 1);
    gslb_snapshot_release(snap);
}

static void disabled_region_is_skipped_and_reported_as_disabled(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{'regions': [{'name': 'a', 'lat': 0, 'lon': 1, 'state': 'disabled'},"
        " {'name': 'b', 'lat': 0, 'lon': 2}], 'services': [{'name': 'web', 'hosts': ['*'],"
        " 'pools': [{'region': 'a', 'origins': [{'address': '10.0.0.1:80'}]},"
        " {'region': 'b', 'origins': [{'address': '10.0.0.2:80'}]}]}]}");
    struct geo_result geo = geo_at(0, 0, "", "");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "a,b");
    assert_int_equal(d.candidates[0].state, GSLB_REGION_DISABLED);
    assert_int_equal(d.chosen, 1);
    gslb_snapshot_release(snap);
}

static void region_without_origins_is_skipped_and_reported_as_empty(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = three_regions("[]", "[{'address': '10.0.0.2:80'}]", "[]");
    struct geo_result geo = geo_at(0, 0, "", "");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "a,b,c");
    assert_int_equal(d.candidates[0].state, GSLB_REGION_EMPTY);
    assert_int_equal(d.candidates[2].state, GSLB_REGION_EMPTY);
    assert_string_equal(chosen_name(snap, &d), "b");
    gslb_snapshot_release(snap);
}

static void regions_without_a_pool_are_not_candidates(void **state)
{
    (void)state;
    struct gslb_snapshot *snap =
        snapshot_from_json("{" CITIES ", 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
                           "  {'region': 'tokyo', 'origins': [{'address': '10.0.0.2:80'}]},"
                           "  {'region': 'sydney', 'origins': [{'address': '10.0.0.1:80'}]}]}]}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, NULL, &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "tokyo,sydney");
    gslb_snapshot_release(snap);
}

/* ---- rules ---- */

/* One region per kind of rule, all farther from London than the unruled frankfurt. */
#define RULE_REGIONS                                                                               \
    "'regions': [{'name': 'frankfurt', 'lat': 50.1109, 'lon': 8.6821},"                            \
    " {'name': 'by-cidr', 'lat': 0, 'lon': 100}, {'name': 'by-country', 'lat': 0, 'lon': 110},"    \
    " {'name': 'by-continent', 'lat': 0, 'lon': 120}]"
#define RULE_POOLS                                                                                 \
    "'pools': [{'region': 'frankfurt', 'origins': [{'address': '10.0.0.1:80'}]},"                  \
    " {'region': 'by-cidr', 'origins': [{'address': '10.0.0.2:80'}]},"                             \
    " {'region': 'by-country', 'origins': [{'address': '10.0.0.3:80'}]},"                          \
    " {'region': 'by-continent', 'origins': [{'address': '10.0.0.4:80'}]}]"
#define CIDR_RULE      "{'match': {'cidr': '192.0.2.0/24'}, 'regions': ['by-cidr']}"
#define COUNTRY_RULE   "{'match': {'country': 'GB'}, 'regions': ['by-country']}"
#define CONTINENT_RULE "{'match': {'continent': 'EU'}, 'regions': ['by-continent']}"

static struct gslb_snapshot *rules_snapshot(const char *rules)
{
    char doc[4096];
    snprintf(doc, sizeof(doc),
             "{" RULE_REGIONS ", 'services': [{'name': 'web', 'hosts': ['*'], " RULE_POOLS
             ", 'rules': [%s]}]}",
             rules);
    return snapshot_from_json(doc);
}

static void cidr_rule_beats_country_and_continent_rules_in_any_order(void **state)
{
    (void)state;
    static const char *const orders[] = {
        CONTINENT_RULE "," COUNTRY_RULE "," CIDR_RULE,
        CIDR_RULE "," COUNTRY_RULE "," CONTINENT_RULE,
        COUNTRY_RULE "," CIDR_RULE "," CONTINENT_RULE,
    };
    static const int cidr_index[] = {2, 0, 1};
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    for (size_t i = 0; i < 3; i++) {
        struct gslb_snapshot *snap = rules_snapshot(orders[i]);
        struct gslb_decision d = decide(snap, "192.0.2.10", &geo, NULL);
        assert_string_equal(chosen_name(snap, &d), "by-cidr");
        assert_int_equal(d.candidates[0].reason, GSLB_REASON_RULE_CIDR);
        assert_int_equal(d.candidates[0].rule, cidr_index[i]);
        gslb_snapshot_release(snap);
    }
}

static void country_rule_beats_continent_rule_in_any_order(void **state)
{
    (void)state;
    static const char *const orders[] = {
        CONTINENT_RULE "," COUNTRY_RULE "," CIDR_RULE,
        CIDR_RULE "," COUNTRY_RULE "," CONTINENT_RULE,
    };
    static const int country_index[] = {1, 1};
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    for (size_t i = 0; i < 2; i++) {
        struct gslb_snapshot *snap = rules_snapshot(orders[i]);
        struct gslb_decision d = decide(snap, "198.51.100.7", &geo, NULL);
        assert_string_equal(chosen_name(snap, &d), "by-country");
        assert_int_equal(d.candidates[0].reason, GSLB_REASON_RULE_COUNTRY);
        assert_int_equal(d.candidates[0].rule, country_index[i]);
        gslb_snapshot_release(snap);
    }
}

static void continent_rule_applies_when_nothing_more_specific_matches(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = rules_snapshot(CONTINENT_RULE "," COUNTRY_RULE "," CIDR_RULE);
    struct geo_result geo = geo_at(48.8566, 2.3522, "FR", "EU");
    struct gslb_decision d = decide(snap, "198.51.100.7", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-continent");
    assert_int_equal(d.candidates[0].reason, GSLB_REASON_RULE_CONTINENT);
    assert_int_equal(d.candidates[0].rule, 0);
    gslb_snapshot_release(snap);
}

static void client_matching_no_rule_goes_to_the_nearest_region(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = rules_snapshot(CONTINENT_RULE "," COUNTRY_RULE "," CIDR_RULE);
    struct geo_result geo = geo_at(0, 101, "ID", "AS");
    struct gslb_decision d = decide(snap, "198.51.100.7", &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "by-cidr,by-country,by-continent,frankfurt");
    for (size_t i = 0; i < d.n_candidates; i++) {
        assert_int_equal(d.candidates[i].reason, GSLB_REASON_NEAREST);
        assert_int_equal(d.candidates[i].rule, -1);
    }
    gslb_snapshot_release(snap);
}

static void longest_cidr_prefix_wins_whatever_the_rule_order(void **state)
{
    (void)state;
    struct gslb_snapshot *snap =
        rules_snapshot("{'match': {'cidr': '10.1.0.0/16'}, 'regions': ['by-country']},"
                       "{'match': {'cidr': '10.1.2.0/24'}, 'regions': ['by-continent']},"
                       "{'match': {'cidr': '10.0.0.0/8'}, 'regions': ['by-cidr']}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "10.1.2.3", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-continent");
    assert_int_equal(d.candidates[0].rule, 1);
    d = decide(snap, "10.1.9.9", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-country");
    assert_int_equal(d.candidates[0].rule, 0);
    d = decide(snap, "10.9.9.9", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-cidr");
    assert_int_equal(d.candidates[0].rule, 2);
    gslb_snapshot_release(snap);
}

static void equal_cidr_prefixes_take_the_first_rule(void **state)
{
    (void)state;
    struct gslb_snapshot *snap =
        rules_snapshot("{'match': {'cidr': '10.0.0.0/8'}, 'regions': ['by-cidr']},"
                       "{'match': {'cidr': '10.1.0.0/16'}, 'regions': ['by-country']},"
                       "{'match': {'cidr': '10.1.0.0/16'}, 'regions': ['by-continent']}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "10.1.0.1", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-country");
    assert_int_equal(d.candidates[0].rule, 1);
    gslb_snapshot_release(snap);
}

static void equal_country_or_continent_rules_take_the_first(void **state)
{
    (void)state;
    struct gslb_snapshot *snap =
        rules_snapshot("{'match': {'continent': 'EU'}, 'regions': ['by-cidr']},"
                       "{'match': {'country': 'GB'}, 'regions': ['by-country']},"
                       "{'match': {'continent': 'EU'}, 'regions': ['frankfurt']},"
                       "{'match': {'country': 'GB'}, 'regions': ['by-continent']}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "198.51.100.7", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-country");
    assert_int_equal(d.candidates[0].rule, 1);
    geo = geo_at(48.8566, 2.3522, "FR", "EU");
    d = decide(snap, "198.51.100.7", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-cidr");
    assert_int_equal(d.candidates[0].rule, 0);
    gslb_snapshot_release(snap);
}

static void rule_regions_come_first_in_rule_order_then_the_rest_by_distance(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{" CITIES ", 'services': [{'name': 'web', 'hosts': ['*'], " CITY_POOLS
        ", 'rules': [{'match': {'country': 'GB'}, 'regions': ['tokyo', 'sydney']}]}]}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "81.2.69.142", &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "tokyo,sydney,frankfurt,new-york");
    assert_string_equal(chosen_name(snap, &d), "tokyo");
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(d.candidates[i].reason, GSLB_REASON_RULE_COUNTRY);
        assert_int_equal(d.candidates[i].rule, 0);
    }
    for (size_t i = 2; i < 4; i++) {
        assert_int_equal(d.candidates[i].reason, GSLB_REASON_NEAREST);
        assert_int_equal(d.candidates[i].rule, -1);
    }
    /* Rule regions still carry their distances. */
    assert_near(candidate_km(snap, &d, 0), 9559, 0.01);
    assert_near(candidate_km(snap, &d, 1), 16994, 0.01);
    gslb_snapshot_release(snap);
}

static void rule_region_that_is_down_fails_over_to_the_nearest_other(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{" CITIES ", 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'sydney', 'origins': [{'address': '10.0.0.1:80'}]},"
        "  {'region': 'tokyo', 'origins': [{'address': '10.0.0.2:80', 'state': 'disabled'}]},"
        "  {'region': 'frankfurt', 'origins': [{'address': '10.0.0.3:80'}]},"
        "  {'region': 'new-york', 'origins': [{'address': '10.0.0.4:80'}]}],"
        " 'rules': [{'match': {'continent': 'EU'}, 'regions': ['tokyo']}]}]}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "81.2.69.142", &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "tokyo,frankfurt,new-york,sydney");
    assert_int_equal(d.candidates[0].state, GSLB_REGION_DOWN);
    assert_string_equal(chosen_name(snap, &d), "frankfurt");
    assert_int_equal(d.candidates[d.chosen].reason, GSLB_REASON_NEAREST);
    gslb_snapshot_release(snap);
}

static void ipv4_mapped_client_matches_an_ipv4_cidr_rule(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = rules_snapshot(CIDR_RULE);
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "::ffff:192.0.2.77", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-cidr");
    assert_int_equal(d.candidates[0].reason, GSLB_REASON_RULE_CIDR);
    d = decide(snap, "::ffff:192.0.3.77", &geo, NULL);
    assert_string_equal(chosen_name(snap, &d), "frankfurt");
    gslb_snapshot_release(snap);
}

static void cidr_rule_applies_to_a_client_without_location(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = rules_snapshot(COUNTRY_RULE "," CIDR_RULE);
    struct gslb_decision d = decide(snap, "192.0.2.1", NULL, NULL);
    assert_string_equal(chosen_name(snap, &d), "by-cidr");
    assert_int_equal(d.candidates[0].reason, GSLB_REASON_RULE_CIDR);
    assert_true(candidate_km(snap, &d, 0) < 0);
    gslb_snapshot_release(snap);
}

/* ---- failover policy and clients without location ---- */

static void failover_policy_follows_pool_order_not_distance(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{" CITIES ", 'services': [{'name': 'web', 'hosts': ['*'], 'policy': 'failover', 'pools': ["
        "  {'region': 'sydney', 'origins': [{'address': '10.0.0.1:80', 'weight': 0}]},"
        "  {'region': 'tokyo', 'origins': [{'address': '10.0.0.2:80'}]},"
        "  {'region': 'frankfurt', 'origins': [{'address': '10.0.0.3:80'}]},"
        "  {'region': 'new-york', 'origins': [{'address': '10.0.0.4:80'}]}]}]}");
    struct geo_result geo = geo_at(LONDON_LAT, LONDON_LON, "GB", "EU");
    struct gslb_decision d = decide(snap, "81.2.69.142", &geo, NULL);
    assert_string_equal(candidate_order(snap, &d), "sydney,tokyo,frankfurt,new-york");
    assert_string_equal(chosen_name(snap, &d), "tokyo");
    assert_int_equal(d.candidates[0].state, GSLB_REGION_DOWN);
    for (size_t i = 0; i < d.n_candidates; i++)
        assert_int_equal(d.candidates[i].reason, GSLB_REASON_ORDER);
    gslb_snapshot_release(snap);
}

#define FALLBACK_SERVICE                                                                           \
    "{" CITIES ", 'services': [{'name': 'web', 'hosts': ['*'], 'fallback': ['sydney', 'tokyo'],"   \
    " 'pools': [{'region': 'frankfurt', 'origins': [{'address': '10.0.0.3:80'}]},"                 \
    "  {'region': 'tokyo', 'origins': [{'address': '10.0.0.2:80'}]},"                              \
    "  {'region': 'new-york', 'origins': [{'address': '10.0.0.4:80'}]},"                           \
    "  {'region': 'sydney', 'origins': [{'address': '10.0.0.1:80'}]}]}]}"

static void assert_fallback_order(const struct gslb_snapshot *snap, const struct gslb_decision *d)
{
    static const enum gslb_reason reasons[] = {GSLB_REASON_FALLBACK, GSLB_REASON_FALLBACK,
                                               GSLB_REASON_NO_LOCATION, GSLB_REASON_NO_LOCATION};
    assert_string_equal(candidate_order(snap, d), "sydney,tokyo,frankfurt,new-york");
    assert_string_equal(chosen_name(snap, d), "sydney");
    for (size_t i = 0; i < d->n_candidates; i++) {
        assert_int_equal(d->candidates[i].reason, reasons[i]);
        assert_int_equal(d->candidates[i].rule, -1);
        assert_true(candidate_km(snap, d, i) < 0);
    }
}

static void client_without_geo_result_uses_fallback_then_pool_order(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(FALLBACK_SERVICE);
    struct gslb_decision d = decide(snap, "203.0.113.9", NULL, NULL);
    assert_fallback_order(snap, &d);
    gslb_snapshot_release(snap);
}

static void client_with_a_country_but_no_location_uses_fallback_then_pool_order(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(FALLBACK_SERVICE);
    struct geo_result geo = geo_at(0, 0, "GB", "EU");
    geo.location_source = GEO_LOCATION_NONE;
    struct gslb_decision d = decide(snap, "203.0.113.9", &geo, NULL);
    assert_fallback_order(snap, &d);
    geo.status = GEO_NOT_FOUND;
    geo.country[0] = geo.continent[0] = '\0';
    d = decide(snap, "203.0.113.9", &geo, NULL);
    assert_fallback_order(snap, &d);
    gslb_snapshot_release(snap);
}

static void client_without_location_skips_fallback_regions_that_are_down(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(FALLBACK_SERVICE);
    uint8_t up[4];
    struct gslb_health health = {.origin_up = up};
    memset(up, 1, sizeof(up));
    for (size_t p = 0; p < snap->services[0].n_pools; p++) {
        const struct gslb_pool *pool = &snap->services[0].pools[p];
        if (strcmp(snap->regions[pool->region].name, "frankfurt") != 0)
            up[pool->origins[0].index] = strcmp(snap->regions[pool->region].name, "new-york") == 0;
    }
    struct gslb_decision d = decide(snap, NULL, NULL, &health);
    assert_string_equal(candidate_order(snap, &d), "sydney,tokyo,frankfurt,new-york");
    assert_int_equal(d.candidates[0].state, GSLB_REGION_DOWN);
    assert_int_equal(d.candidates[1].state, GSLB_REGION_DOWN);
    assert_string_equal(chosen_name(snap, &d), "frankfurt");
    assert_int_equal(d.candidates[d.chosen].reason, GSLB_REASON_NO_LOCATION);
    gslb_snapshot_release(snap);
}

/* ---- host matching ---- */

#define HOSTS_DOC(catch_all)                                                                       \
    "{'regions': [{'name': 'a', 'lat': 0, 'lon': 0}], 'services': ["                               \
    " {'name': 'www', 'hosts': ['www.example.com', 'example.com'], 'pools': []},"                  \
    " {'name': 'wild', 'hosts': ['*.example.com'], 'pools': []},"                                  \
    " {'name': 'deep', 'hosts': ['*.eu.example.com'], 'pools': []},"                               \
    " {'name': 'api', 'hosts': ['api.eu.example.com', 'Shop.Example.ORG'], 'pools': []}" catch_all \
    "]}"
#define CATCH_ALL ", {'name': 'other', 'hosts': ['*'], 'pools': []}"

static const char *found(const struct gslb_snapshot *snap, const char *host)
{
    const struct gslb_service *svc = gslb_service_find(snap, host);
    return svc ? svc->name : "(none)";
}

static void exact_host_beats_wildcard_and_catch_all(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(HOSTS_DOC(CATCH_ALL));
    assert_string_equal(found(snap, "www.example.com"), "www");
    assert_string_equal(found(snap, "example.com"), "www");
    assert_string_equal(found(snap, "api.eu.example.com"), "api");
    assert_ptr_equal(gslb_service_find(snap, "www.example.com"), service_named(snap, "www"));
    gslb_snapshot_release(snap);
}

static void wildcard_beats_catch_all(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(HOSTS_DOC(CATCH_ALL));
    assert_string_equal(found(snap, "img.example.com"), "wild");
    assert_string_equal(found(snap, "a.b.c.example.com"), "wild");
    assert_string_equal(found(snap, "example.net"), "other");
    gslb_snapshot_release(snap);
}

static void longest_wildcard_suffix_wins(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(HOSTS_DOC(CATCH_ALL));
    assert_string_equal(found(snap, "www.eu.example.com"), "deep");
    assert_string_equal(found(snap, "x.y.eu.example.com"), "deep");
    assert_string_equal(found(snap, "eu.example.com"), "wild");
    assert_string_equal(found(snap, "www.us.example.com"), "wild");
    gslb_snapshot_release(snap);
}

static void host_matching_ignores_case_port_and_trailing_dot(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(HOSTS_DOC(""));
    assert_string_equal(found(snap, "WWW.Example.COM"), "www");
    assert_string_equal(found(snap, "www.example.com:8080"), "www");
    assert_string_equal(found(snap, "www.example.com."), "www");
    assert_string_equal(found(snap, "WWW.EXAMPLE.COM.:443"), "www");
    assert_string_equal(found(snap, "shop.example.org"), "api"); /* configured in upper case */
    assert_string_equal(found(snap, "IMG.EU.Example.Com.:80"), "deep");
    gslb_snapshot_release(snap);
}

static void wildcard_does_not_match_its_bare_domain(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(HOSTS_DOC(""));
    /* *.eu.example.com does not cover eu.example.com: the next wildcard up does. */
    assert_string_equal(found(snap, "eu.example.com"), "wild");
    gslb_snapshot_release(snap);
    snap = snapshot_from_json("{'regions': [], 'services': ["
                              " {'name': 'wild', 'hosts': ['*.example.com'], 'pools': []}]}");
    assert_null(gslb_service_find(snap, "example.com"));
    assert_null(gslb_service_find(snap, "badexample.com"));
    assert_string_equal(found(snap, "a.example.com"), "wild");
    gslb_snapshot_release(snap);
}

static void unmatched_host_finds_nothing_without_a_catch_all(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(HOSTS_DOC(""));
    assert_null(gslb_service_find(snap, "example.net"));
    assert_null(gslb_service_find(snap, "com"));
    assert_null(gslb_service_find(snap, ""));
    assert_null(gslb_service_find(snap, NULL));
    assert_null(gslb_service_find(snap, "[2001:db8::1]:443"));
    gslb_snapshot_release(snap);
}

static void unusable_host_goes_to_the_catch_all(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(HOSTS_DOC(CATCH_ALL));
    char long_host[400];
    memset(long_host, 'a', sizeof(long_host) - 1);
    long_host[sizeof(long_host) - 1] = '\0';
    memcpy(long_host + sizeof(long_host) - 1 - 12, ".example.com", 12);
    assert_string_equal(found(snap, ""), "other");
    assert_string_equal(found(snap, NULL), "other");
    assert_string_equal(found(snap, "[2001:db8::1]:443"), "other");
    assert_string_equal(found(snap, long_host), "other");
    gslb_snapshot_release(snap);
}

/* ---- differential test against a naive reference ---- */

#define DIFF_ROUNDS    200
#define DIFF_CLIENTS   20
#define DIFF_MAX_ORIG  3
#define DIFF_TIE_KM    1e-6 /* distances closer than this are a tie, broken by name */
#define DIFF_REL_ERROR 1e-6

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng_next() % n);
}

struct ref_origin {
    int weight;
    enum db_origin_state state;
    bool up;
};

struct ref_region {
    char name[32];
    double lat, lon;
    enum db_region_state state;
    int pool; /* position of its pool, or -1 */
    struct ref_origin origins[DIFF_MAX_ORIG];
    size_t n_origins;
};

struct ref_candidate {
    size_t region;
    double distance_km;
    enum gslb_region_state state;
};

static double haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    double p1 = lat1 * M_PI / 180, p2 = lat2 * M_PI / 180;
    double dp = p2 - p1, dl = (lon2 - lon1) * M_PI / 180;
    double h = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    return 2 * GSLB_EARTH_RADIUS_KM * asin(sqrt(h > 1 ? 1 : h));
}

static enum gslb_region_state ref_state(const struct ref_region *r, bool use_health)
{
    if (r->n_origins == 0)
        return GSLB_REGION_EMPTY;
    if (r->state == DB_REGION_DISABLED)
        return GSLB_REGION_DISABLED;
    if (r->state == DB_REGION_DRAINING)
        return GSLB_REGION_DRAINING;
    for (size_t i = 0; i < r->n_origins; i++) {
        const struct ref_origin *o = &r->origins[i];
        if (o->state == DB_ORIGIN_ENABLED && o->weight > 0 && (!use_health || o->up))
            return GSLB_REGION_UP;
    }
    return GSLB_REGION_DOWN;
}

static bool ref_before(const struct ref_region *regions, const struct ref_candidate *a,
                       const struct ref_candidate *b)
{
    if (fabs(a->distance_km - b->distance_km) > DIFF_TIE_KM)
        return a->distance_km < b->distance_km;
    return strcmp(regions[a->region].name, regions[b->region].name) < 0;
}

/* The naive decision: every region with a pool, sorted by (distance, name) by selection. */
static size_t ref_decide(const struct ref_region *regions, size_t n, double lat, double lon,
                         bool use_health, struct ref_candidate *out, int *chosen)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (regions[i].pool < 0)
            continue;
        out[count].region = i;
        out[count].distance_km = haversine_km(lat, lon, regions[i].lat, regions[i].lon);
        out[count].state = ref_state(&regions[i], use_health);
        count++;
    }
    for (size_t i = 0; i < count; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < count; j++) {
            if (ref_before(regions, &out[j], &out[best]))
                best = j;
        }
        struct ref_candidate tmp = out[i];
        out[i] = out[best];
        out[best] = tmp;
    }
    *chosen = -1;
    for (size_t i = 0; i < count && *chosen < 0; i++) {
        if (out[i].state == GSLB_REGION_UP)
            *chosen = (int)i;
    }
    return count;
}

static double random_lat(void)
{
    unsigned pick = rng_below(40);
    if (pick == 0)
        return 90;
    if (pick == 1)
        return -90;
    return asin(2 * rng_unit() - 1) * 180 / M_PI; /* uniform on the sphere */
}

static double random_lon(void)
{
    return rng_unit() * 360 - 180;
}

/* Fills <regions> with a random topology and writes its document into <doc>. */
static size_t random_topology(struct ref_region *regions, char *doc, size_t size)
{
    static const enum db_region_state region_states[] = {
        DB_REGION_ACTIVE, DB_REGION_ACTIVE, DB_REGION_ACTIVE,   DB_REGION_ACTIVE,
        DB_REGION_ACTIVE, DB_REGION_ACTIVE, DB_REGION_DRAINING, DB_REGION_DISABLED};
    static const enum db_origin_state origin_states[] = {
        DB_ORIGIN_ENABLED, DB_ORIGIN_ENABLED, DB_ORIGIN_ENABLED,  DB_ORIGIN_ENABLED,
        DB_ORIGIN_ENABLED, DB_ORIGIN_ENABLED, DB_ORIGIN_DRAINING, DB_ORIGIN_DISABLED};
    size_t n = 2 + rng_below(39), order[40], n_pools = 0, len = 0;

    memset(regions, 0, n * sizeof(*regions));
    for (size_t i = 0; i < n; i++) {
        struct ref_region *r = &regions[i];
        /* Random letters first, so name order is unrelated to input order. */
        snprintf(r->name, sizeof(r->name), "%c%c%c-%zu", 'a' + rng_below(26), 'a' + rng_below(26),
                 'a' + rng_below(3), i);
        if (i > 0 && rng_below(8) == 0) {
            /* The same place as an earlier region: an exact tie. */
            const struct ref_region *twin = &regions[rng_below((unsigned)i)];
            r->lat = twin->lat;
            r->lon = twin->lon;
        } else {
            r->lat = random_lat();
            r->lon = random_lon();
        }
        r->state = region_states[rng_below(8)];
        r->pool = -1;
        if (rng_below(8) != 0) {
            order[n_pools++] = i;
            r->n_origins = rng_below(DIFF_MAX_ORIG + 1);
            for (size_t o = 0; o < r->n_origins; o++) {
                r->origins[o].state = origin_states[rng_below(8)];
                r->origins[o].weight = rng_below(5) == 0 ? 0 : 1 + (int)rng_below(10);
                r->origins[o].up = rng_below(4) != 0;
            }
        }
    }
    for (size_t i = n_pools; i > 1; i--) { /* pools in random order */
        size_t j = rng_below((unsigned)i), tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
    len += (size_t)snprintf(doc + len, size - len, "{\"regions\": [");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(doc + len, size - len,
                                "%s{\"name\": \"%s\", \"lat\": %.17g, \"lon\": %.17g, "
                                "\"state\": \"%s\"}",
                                i ? ", " : "", regions[i].name, regions[i].lat, regions[i].lon,
                                db_region_state_name(regions[i].state));
    len += (size_t)snprintf(doc + len, size - len,
                            "], \"services\": [{\"name\": \"web\", \"hosts\": [\"*\"], "
                            "\"pools\": [");
    for (size_t p = 0; p < n_pools; p++) {
        struct ref_region *r = &regions[order[p]];
        r->pool = (int)p;
        len += (size_t)snprintf(doc + len, size - len, "%s{\"region\": \"%s\", \"origins\": [",
                                p ? ", " : "", r->name);
        for (size_t o = 0; o < r->n_origins; o++)
            len += (size_t)snprintf(doc + len, size - len,
                                    "%s{\"address\": \"10.%zu.%zu.1:80\", \"weight\": %d, "
                                    "\"state\": \"%s\"}",
                                    o ? ", " : "", order[p], o, r->origins[o].weight,
                                    db_origin_state_name(r->origins[o].state));
        len += (size_t)snprintf(doc + len, size - len, "]}");
    }
    len += (size_t)snprintf(doc + len, size - len, "]}]}");
    assert_true(len < size);
    return n;
}

static void decisions_match_a_naive_reference_on_random_topologies(void **state)
{
    (void)state;
    static char doc[65536];
    struct ref_region regions[40];
    struct ref_candidate ref[40];
    size_t compared = 0, ties = 0;

    rng_state = 20240601;
    for (int round = 0; round < DIFF_ROUNDS; round++) {
        size_t n = random_topology(regions, doc, sizeof(doc));
        struct gslb_snapshot *snap = snapshot_from_json(doc);
        const struct gslb_service *svc = &snap->services[0];
        uint8_t *up = calloc(snap->n_origins + 1, 1);
        bool use_health = round % 5 != 0; /* else no health view: everything healthy */
        struct gslb_health health = {.origin_up = up};

        assert_non_null(up);
        /* The health view is keyed by origin index: find each origin by its pool and position. */
        for (size_t i = 0; i < n; i++) {
            if (regions[i].pool < 0)
                continue;
            const struct gslb_pool *pool = &svc->pools[regions[i].pool];
            assert_string_equal(snap->regions[pool->region].name, regions[i].name);
            assert_int_equal(pool->n_origins, regions[i].n_origins);
            for (size_t o = 0; o < pool->n_origins; o++)
                up[pool->origins[o].index] = regions[i].origins[o].up;
        }
        for (int c = 0; c < DIFF_CLIENTS; c++) {
            double lat = random_lat(), lon = random_lon();
            if (c == 0) { /* a client right on a region */
                size_t at = rng_below((unsigned)n);
                lat = regions[at].lat;
                lon = regions[at].lon;
            }
            struct geo_result geo = geo_at(lat, lon, "", "");
            struct gslb_decision d;
            int chosen;
            size_t count = ref_decide(regions, n, lat, lon, use_health, ref, &chosen);
            gslb_decide(snap, svc, NULL, &geo, use_health ? &health : NULL, &d);

            assert_int_equal(d.n_candidates, count);
            for (size_t i = 0; i < count; i++) {
                const char *got = candidate_name(snap, &d, i);
                if (strcmp(got, regions[ref[i].region].name) != 0)
                    fail_msg("round %d client %d (%.17g, %.17g): candidate %zu is %s (%.17g km), "
                             "expected %s (%.17g km)",
                             round, c, lat, lon, i, got, candidate_km(snap, &d, i),
                             regions[ref[i].region].name, ref[i].distance_km);
                if (fabs(candidate_km(snap, &d, i) - ref[i].distance_km) >
                    DIFF_REL_ERROR * ref[i].distance_km + 1e-9)
                    fail_msg("round %d client %d: %s at %.12f km, expected %.12f km", round, c, got,
                             candidate_km(snap, &d, i), ref[i].distance_km);
                assert_int_equal(d.candidates[i].state, ref[i].state);
                assert_int_equal(d.candidates[i].reason, GSLB_REASON_NEAREST);
                assert_int_equal(d.candidates[i].rule, -1);
                if (i > 0 && fabs(ref[i].distance_km - ref[i - 1].distance_km) <= DIFF_TIE_KM)
                    ties++;
            }
            assert_int_equal(d.chosen, chosen);
            compared++;
        }
        free(up);
        gslb_snapshot_release(snap);
    }
    assert_int_equal(compared, DIFF_ROUNDS * DIFF_CLIENTS);
    assert_true(ties > 0); /* the tie-break was exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(distance_from_london_to_new_york_is_5570_km),
        cmocka_unit_test(distance_is_zero_to_itself_and_half_the_circumference_to_the_antipode),
        cmocka_unit_test(nearest_policy_orders_regions_by_great_circle_distance),
        cmocka_unit_test(client_near_the_antimeridian_prefers_the_region_across_it),
        cmocka_unit_test(client_at_the_pole_breaks_the_tie_of_equidistant_regions_by_name),
        cmocka_unit_test(regions_millimetres_apart_are_ordered_by_distance_not_name),
        cmocka_unit_test(equal_distances_are_ordered_by_name_whatever_the_input_order),
        cmocka_unit_test(no_region_serves_when_every_origin_is_disabled_or_draining),
        cmocka_unit_test(no_region_serves_when_every_origin_weighs_zero),
        cmocka_unit_test(no_region_serves_when_health_marks_every_origin_down),
        cmocka_unit_test(region_stays_up_while_one_of_its_origins_is_healthy),
        cmocka_unit_test(draining_region_is_skipped_and_reported_as_draining),
        cmocka_unit_test(disabled_region_is_skipped_and_reported_as_disabled),
        cmocka_unit_test(region_without_origins_is_skipped_and_reported_as_empty),
        cmocka_unit_test(regions_without_a_pool_are_not_candidates),
        cmocka_unit_test(cidr_rule_beats_country_and_continent_rules_in_any_order),
        cmocka_unit_test(country_rule_beats_continent_rule_in_any_order),
        cmocka_unit_test(continent_rule_applies_when_nothing_more_specific_matches),
        cmocka_unit_test(client_matching_no_rule_goes_to_the_nearest_region),
        cmocka_unit_test(longest_cidr_prefix_wins_whatever_the_rule_order),
        cmocka_unit_test(equal_cidr_prefixes_take_the_first_rule),
        cmocka_unit_test(equal_country_or_continent_rules_take_the_first),
        cmocka_unit_test(rule_regions_come_first_in_rule_order_then_the_rest_by_distance),
        cmocka_unit_test(rule_region_that_is_down_fails_over_to_the_nearest_other),
        cmocka_unit_test(ipv4_mapped_client_matches_an_ipv4_cidr_rule),
        cmocka_unit_test(cidr_rule_applies_to_a_client_without_location),
        cmocka_unit_test(failover_policy_follows_pool_order_not_distance),
        cmocka_unit_test(client_without_geo_result_uses_fallback_then_pool_order),
        cmocka_unit_test(client_with_a_country_but_no_location_uses_fallback_then_pool_order),
        cmocka_unit_test(client_without_location_skips_fallback_regions_that_are_down),
        cmocka_unit_test(exact_host_beats_wildcard_and_catch_all),
        cmocka_unit_test(wildcard_beats_catch_all),
        cmocka_unit_test(longest_wildcard_suffix_wins),
        cmocka_unit_test(host_matching_ignores_case_port_and_trailing_dot),
        cmocka_unit_test(wildcard_does_not_match_its_bare_domain),
        cmocka_unit_test(unmatched_host_finds_nothing_without_a_catch_all),
        cmocka_unit_test(unusable_host_goes_to_the_catch_all),
        cmocka_unit_test(decisions_match_a_naive_reference_on_random_topologies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

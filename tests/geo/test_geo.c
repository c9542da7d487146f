/* tests/geo/test_geo.c - geo/ against the real GeoLite2 City and Country files that `make deps`
 * unpacks into data/geoip (or $GSLB_GEOIP_DIR). The tests fail, not skip, when the files are
 * missing: a geo module tested on nothing is not tested. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geo/geo.h"

static char city_path[512], country_path[512], flat_path[512];

static const char *geo_dir(void)
{
    const char *dir = getenv("GSLB_GEOIP_DIR");
    return dir && *dir ? dir : "data/geoip";
}

static struct geo *open_one(const char *spec)
{
    char err[512] = "";
    struct geo *geo = geo_open(&spec, 1, err, sizeof(err));
    if (geo == NULL)
        fail_msg("geo_open(%s): %s", spec, err);
    return geo;
}

static struct geo_result lookup(struct geo *geo, const char *text)
{
    struct ip_addr ip;
    struct geo_result r;
    assert_int_equal(ip_addr_parse(text, &ip), 0);
    geo_lookup(geo, &ip, &r);
    return r;
}

static int setup_city(void **state)
{
    *state = open_one(city_path);
    return 0;
}

static int teardown_geo(void **state)
{
    geo_close(*state);
    return 0;
}

static void known_ipv4_address_is_located(void **state)
{
    struct geo_result r = lookup(*state, "81.2.69.142");
    assert_int_equal(r.status, GEO_FOUND);
    assert_string_equal(r.country, "GB");
    assert_string_equal(r.continent, "EU");
    assert_string_equal(r.subdivision, "ENG");
    assert_int_equal(r.location_source, GEO_LOCATION_RECORD);
    assert_true(r.lat > 49 && r.lat < 56 && r.lon > -3 && r.lon < 2);
    assert_true(r.accuracy_km > 0);

    r = lookup(*state, "8.8.8.8");
    assert_string_equal(r.country, "US");
    assert_string_equal(r.continent, "NA");
}

/* Lookups go through per-thread caches of answers and records: 6,000 addresses (more than either
 * holds) asked in one order, then again in another while a second reader of the same file shares
 * the caches, get the same answers every time, evicted or not. */
static void cached_answers_match_across_evictions(void **state)
{
    enum { N = 6000 };
    struct geo *other = open_one(city_path);
    struct geo_result *first = malloc(N * sizeof(*first));
    struct ip_addr ip;
    int located = 0;
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof(text), "%d.%d.%d.1", 1 + i % 223, (i * 37) % 256, (i * 101) % 256);
        assert_int_equal(ip_addr_parse(text, &ip), 0);
        geo_lookup(*state, &ip, &first[i]);
        located += first[i].status == GEO_FOUND;
    }
    assert_true(located > N / 2); /* most of these are allocated, public networks */
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < N; k++) {
            int i = (int)(((long)k * 4999 + round) % N); /* another order */
            struct geo_result again;
            geo_lookup(round ? other : *state, &first[i].looked_up, &again);
            assert_int_equal(again.status, first[i].status);
            assert_string_equal(again.country, first[i].country);
            assert_string_equal(again.subdivision, first[i].subdivision);
            assert_true(again.lat == first[i].lat && again.lon == first[i].lon);
            assert_int_equal(again.asn, first[i].asn);
        }
    }
    free(first);
    geo_close(other);
}

static void ipv6_address_is_located(void **state)
{
    struct geo_result r = lookup(*state, "2001:4860:4860::8888");
    assert_int_equal(r.status, GEO_FOUND);
    assert_string_equal(r.country, "US");
    assert_int_equal(r.location_source, GEO_LOCATION_RECORD);
}

/* Every form that embeds 81.2.69.142 must answer exactly as the plain address does. */
static void embedded_ipv4_addresses_answer_as_the_ipv4_address(void **state)
{
    static const char *const forms[] = {
        "::ffff:81.2.69.142",                   /* IPv4-mapped */
        "64:ff9b::5102:458e",                   /* NAT64 well-known prefix */
        "2002:5102:458e::1",                    /* 6to4 */
        "2001:0:4136:e378:8000:63bf:aefd:ba71", /* Teredo: client inverted in the last 32 bits */
    };
    struct geo_result plain = lookup(*state, "81.2.69.142");
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct geo_result r = lookup(*state, forms[i]);
        char looked_up[IP_ADDR_STRLEN];
        ip_addr_format(&r.looked_up, looked_up, sizeof(looked_up));
        assert_string_equal(looked_up, "81.2.69.142");
        assert_int_equal(r.status, plain.status);
        assert_string_equal(r.country, plain.country);
        assert_string_equal(r.subdivision, plain.subdivision);
        assert_true(r.lat == plain.lat && r.lon == plain.lon);
    }
}

static void reserved_ranges_are_reported_without_a_lookup(void **state)
{
    static const char *const reserved[] = {
        "10.1.2.3",        "192.168.1.1", "172.16.0.1", "127.0.0.1", "100.64.0.1",
        "169.254.1.1",     "::1",         "fe80::1",    "fc00::1",   "2001:db8::1",
        "::ffff:10.0.0.1", "224.0.0.1",   "0.0.0.0"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        struct geo_result r = lookup(*state, reserved[i]);
        if (r.status != GEO_RESERVED)
            fail_msg("%s: status %s", reserved[i], geo_status_name(r.status));
        assert_int_equal(r.location_source, GEO_LOCATION_NONE);
        assert_string_equal(r.country, "");
    }
    struct geo_result r = lookup(*state, "172.32.0.1"); /* just outside 172.16/12 */
    assert_int_not_equal(r.status, GEO_RESERVED);
}

static void record_without_country_keeps_its_coordinates(void **state)
{
    /* This range has coordinates and a continent but no country in the December 2019 data. */
    struct geo_result r = lookup(*state, "2a02:26f0::1");
    assert_int_equal(r.status, GEO_FOUND);
    assert_int_equal(r.location_source, GEO_LOCATION_RECORD);
    assert_string_equal(r.country, "");
    assert_string_equal(r.continent, "EU");
}

static void country_database_falls_back_to_the_country_centroid(void **state)
{
    (void)state;
    struct geo *geo = open_one(country_path);
    struct geo_result r = lookup(geo, "81.2.69.142");
    const struct geo_country *gb = geo_country_find("GB");
    assert_non_null(gb);
    assert_int_equal(r.status, GEO_FOUND);
    assert_string_equal(r.country, "GB");
    assert_int_equal(r.location_source, GEO_LOCATION_COUNTRY);
    assert_true(r.lat == gb->lat && r.lon == gb->lon);
    assert_int_equal(r.accuracy_km, 0);
    geo_close(geo);
}

static void continent_only_record_falls_back_to_the_continent_centre(void **state)
{
    (void)state;
    /* Read only the continent from the Country file: the centre of Europe is all that's left. */
    char spec[600];
    snprintf(spec, sizeof(spec), "%s,country=", country_path);
    struct geo *geo = open_one(spec);
    struct geo_result r = lookup(geo, "81.2.69.142");
    assert_string_equal(r.country, "");
    assert_string_equal(r.continent, "EU");
    assert_int_equal(r.location_source, GEO_LOCATION_CONTINENT);
    assert_true(r.lat == geo_continent_find("EU")->lat);
    geo_close(geo);
}

static void databases_merge_field_by_field_in_order(void **state)
{
    (void)state;
    char err[256];
    const char *specs[] = {country_path, city_path};
    struct geo *geo = geo_open(specs, 2, err, sizeof(err));
    assert_non_null(geo);
    /* The Country file answers first but has no coordinates; the City file supplies them. */
    struct geo_result r = lookup(geo, "81.2.69.142");
    assert_string_equal(r.country, "GB");
    assert_int_equal(r.location_source, GEO_LOCATION_RECORD);
    assert_string_equal(r.subdivision, "ENG");
    geo_close(geo);
}

static void field_paths_can_be_overridden(void **state)
{
    (void)state;
    char spec[700];
    /* Read the registered country instead of the country, and no coordinates at all. */
    snprintf(spec, sizeof(spec), "%s,country=registered_country.iso_code,lat=,lon=", city_path);
    struct geo *geo = open_one(spec);
    struct geo_result r = lookup(geo, "81.2.69.142");
    assert_string_equal(r.country, "GB");
    assert_int_equal(r.location_source, GEO_LOCATION_COUNTRY); /* lat/lon disabled */
    geo_close(geo);
}

static void bad_specs_are_refused_with_the_reason(void **state)
{
    (void)state;
    char err[512] = "", spec[700];
    const char *specs[1] = {spec};

    snprintf(spec, sizeof(spec), "%s,colour=red", city_path);
    assert_null(geo_open(specs, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "colour=red"));

    snprintf(spec, sizeof(spec), "/nonexistent/GeoLite2-City.mmdb");
    assert_null(geo_open(specs, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/GeoLite2-City.mmdb"));
    assert_non_null(strstr(err, "No such file"));

    snprintf(spec, sizeof(spec), "%s,lat=a.b.c.d.e.f.g.h.i", city_path);
    assert_null(geo_open(specs, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "lat"));
}

static void public_address_missing_from_the_database_is_not_found(void **state)
{
    struct geo_result r = lookup(*state, "2d00::1"); /* global unicast, not yet allocated */
    assert_int_equal(r.status, GEO_NOT_FOUND);
    assert_int_equal(r.location_source, GEO_LOCATION_NONE);
}

/* A third-party database with a flat layout ({"country_code": "GB"}) and no IPv4-mapped aliases:
 * the defaults for its type read it, and embedded IPv4 addresses still find their record. */
static void flat_country_only_database_is_understood(void **state)
{
    (void)state;
    struct geo *geo = open_one(flat_path);
    static const char *const forms[] = {"81.2.69.142", "::ffff:81.2.69.142", "64:ff9b::5102:458e"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct geo_result r = lookup(geo, forms[i]);
        assert_int_equal(r.status, GEO_FOUND);
        assert_string_equal(r.country, "GB");
        assert_string_equal(r.continent, "EU"); /* from the country table */
        assert_int_equal(r.location_source, GEO_LOCATION_COUNTRY);
    }
    struct geo_result r = lookup(geo, "2001:4860:4860::8888");
    assert_string_equal(r.country, "US");
    geo_close(geo);
}

static void no_database_reports_no_database(void **state)
{
    (void)state;
    struct geo_result r;
    struct ip_addr ip;
    ip_addr_parse("81.2.69.142", &ip);
    geo_lookup(NULL, &ip, &r);
    assert_int_equal(r.status, GEO_NO_DATABASE);
}

static void country_table_is_sorted_and_sane(void **state)
{
    (void)state;
    static const char *const continents = "AF AN AS EU NA OC SA";
    assert_true(geo_country_count() >= 249);
    for (size_t i = 0; i < geo_country_count(); i++) {
        const struct geo_country *c = geo_country_at(i);
        assert_int_equal(strlen(c->iso), 2);
        assert_non_null(strstr(continents, c->continent));
        assert_true(c->lat >= -90 && c->lat <= 90 && c->lon >= -180 && c->lon <= 180);
        if (i > 0)
            assert_true(strcmp(geo_country_at(i - 1)->iso, c->iso) < 0);
        assert_ptr_equal(geo_country_find(c->iso), c);
    }
    assert_null(geo_country_find("XX"));
    assert_null(geo_country_find("G"));
    assert_string_equal(geo_country_find("JP")->continent, "AS");
    assert_string_equal(geo_country_find("BR")->continent, "SA");
}

/* Country table centroids must agree with where GeoLite2 puts the country's addresses: the
 * City record for a well-known address lies within 5,000 km of its country's centroid (the
 * United States excepted: its centroid is far from most of its addresses). */
static void country_centroids_agree_with_city_records(void **state)
{
    static const char *const samples[] = {"81.2.69.142",  "8.8.8.8",     "1.1.1.1",
                                          "2.16.0.1",     "200.160.2.3", "41.0.0.1",
                                          "202.12.27.33", "210.130.0.1", "203.2.218.1"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        struct geo_result r = lookup(*state, samples[i]);
        if (r.status != GEO_FOUND || !r.country[0])
            continue;
        const struct geo_country *c = geo_country_find(r.country);
        assert_non_null(c);
        assert_string_equal(c->continent, r.continent);
        double dlat = (c->lat - r.lat) * 111.0, dlon = (c->lon - r.lon) * 111.0;
        if (r.country[0] == 'U' && r.country[1] == 'S')
            continue; /* continental centroid far from any single record is expected */
        if (dlat * dlat + dlon * dlon > 5000.0 * 5000.0)
            fail_msg("%s: %s centroid %.1f,%.1f far from record %.1f,%.1f", samples[i], r.country,
                     c->lat, c->lon, r.lat, r.lon);
    }
}

/* ---- hot reload ---- */

static void copy_file(const char *from, const char *to)
{
    char buf[1 << 16];
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Replaces <target> the way geoipupdate does: write aside, then rename over it. */
static void replace_with(const char *dir, const char *source, const char *target)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s/incoming.tmp", dir);
    copy_file(source, tmp);
    assert_int_equal(rename(tmp, target), 0);
}

struct reader {
    struct geo *geo;
    atomic_bool stop;
    long lookups, failures;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct ip_addr ip;
    ip_addr_parse("81.2.69.142", &ip);
    for (long i = 0; i < 5000000 && !atomic_load(&rd->stop); i++) {
        struct geo_result r;
        geo_lookup(rd->geo, &ip, &r);
        rd->lookups++;
        if (r.status != GEO_FOUND || strcmp(r.country, "GB") != 0)
            rd->failures++;
    }
    return NULL;
}

static void replaced_database_is_used_and_corrupt_one_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/gslb-geo-XXXXXX", live[600], garbage[600], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(live, sizeof(live), "%s/GeoIP2-City.mmdb", dir);
    copy_file(city_path, live);
    struct geo *geo = open_one(live);
    assert_int_equal(geo_reload_changed(geo, err, sizeof(err)), 0); /* nothing changed */

    struct reader rd = {.geo = geo};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, reader_main, &rd), 0);

    /* City -> Country: lookups continue, and the new file's answers appear. */
    assert_int_equal(lookup(geo, "81.2.69.142").location_source, GEO_LOCATION_RECORD);
    replace_with(dir, country_path, live);
    assert_int_equal(geo_reload_changed(geo, err, sizeof(err)), 1);
    assert_int_equal(lookup(geo, "81.2.69.142").location_source, GEO_LOCATION_COUNTRY);

    /* A corrupt replacement is refused and the Country file stays in use. */
    snprintf(garbage, sizeof(garbage), "%s/garbage", dir);
    FILE *f = fopen(garbage, "wb");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++)
        fputc(i * 7 % 251, f);
    fclose(f);
    assert_int_equal(rename(garbage, live), 0);
    assert_true(geo_reload_changed(geo, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, live));
    struct geo_result r = lookup(geo, "81.2.69.142");
    assert_int_equal(r.status, GEO_FOUND);
    assert_int_equal(r.location_source, GEO_LOCATION_COUNTRY);

    /* Back to City, several times while the reader thread keeps looking up. */
    for (int round = 0; round < 4; round++) {
        replace_with(dir, round % 2 ? country_path : city_path, live);
        assert_int_equal(geo_reload_changed(geo, err, sizeof(err)), 1);
    }
    atomic_store(&rd.stop, true);
    pthread_join(thread, NULL);
    assert_true(rd.lookups > 0);
    assert_int_equal(rd.failures, 0);

    geo_close(geo);
    unlink(live);
    rmdir(dir);
}

int main(void)
{
    snprintf(city_path, sizeof(city_path), "%s/GeoLite2-City.mmdb", geo_dir());
    snprintf(country_path, sizeof(country_path), "%s/GeoLite2-Country.mmdb", geo_dir());
    snprintf(flat_path, sizeof(flat_path), "%s/geo-whois-asn-country.mmdb", geo_dir());
    if (access(city_path, R_OK) != 0 || access(country_path, R_OK) != 0 ||
        access(flat_path, R_OK) != 0) {
        /* Fail loudly: run `make deps` (tools/fetch-geoip.sh) to fetch the files. */
        printf("not ok 1 - GeoLite2 files missing in %s (run make deps)\n", geo_dir());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(known_ipv4_address_is_located, setup_city, teardown_geo),
        cmocka_unit_test_setup_teardown(ipv6_address_is_located, setup_city, teardown_geo),
        cmocka_unit_test_setup_teardown(cached_answers_match_across_evictions, setup_city,
                                        teardown_geo),
        cmocka_unit_test_setup_teardown(embedded_ipv4_addresses_answer_as_the_ipv4_address,
                                        setup_city, teardown_geo),
        cmocka_unit_test_setup_teardown(reserved_ranges_are_reported_without_a_lookup, setup_city,
                                        teardown_geo),
        cmocka_unit_test_setup_teardown(record_without_country_keeps_its_coordinates, setup_city,
                                        teardown_geo),
        cmocka_unit_test(country_database_falls_back_to_the_country_centroid),
        cmocka_unit_test(continent_only_record_falls_back_to_the_continent_centre),
        cmocka_unit_test(databases_merge_field_by_field_in_order),
        cmocka_unit_test(field_paths_can_be_overridden),
        cmocka_unit_test(bad_specs_are_refused_with_the_reason),
        cmocka_unit_test_setup_teardown(public_address_missing_from_the_database_is_not_found,
                                        setup_city, teardown_geo),
        cmocka_unit_test(flat_country_only_database_is_understood),
        cmocka_unit_test(no_database_reports_no_database),
        cmocka_unit_test(country_table_is_sorted_and_sane),
        cmocka_unit_test_setup_teardown(country_centroids_agree_with_city_records, setup_city,
                                        teardown_geo),
        cmocka_unit_test(replaced_database_is_used_and_corrupt_one_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

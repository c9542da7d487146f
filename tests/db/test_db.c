/* tests/db/test_db.c - the topology store through its public API (db/db.h), against real SQLite
 * files in a temporary directory.
 *
 * Covers migrations and WAL mode, validation (every rejected document names its field and leaves
 * the store untouched), the canonical import/export round trip, the config version, single-object
 * edits, the audit log, settings, two handles on one file, and crash safety: a child killed with
 * SIGKILL in the middle of large imports must leave exactly the old or the new topology behind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"

#define ACTOR "test"

/* A full-form document that uses every kind of field. */
static const char DOC[] =
    "{\"regions\": ["
    "{\"name\": \"eu-west\", \"display_name\": \"Paris\", \"lat\": 48.8566, \"lon\": 2.3522},"
    "{\"name\": \"us-east\", \"lat\": 39.0438, \"lon\": -77.4874, \"state\": \"draining\"},"
    "{\"name\": \"ap-south\", \"lat\": 1.3521, \"lon\": 103.8198, \"state\": \"disabled\"},"
    "{\"name\": \"spare\", \"display_name\": \"S\u00e3o Paulo \\\"SP\\\"\", \"lat\": -23.5505,"
    " \"lon\": -46.6333}],"
    "\"services\": ["
    "{\"name\": \"www\", \"hosts\": [\"www.example.com\", \"*.example.org\"],"
    " \"policy\": \"nearest\", \"sticky\": true, \"fallback\": [\"us-east\"],"
    " \"pools\": ["
    "  {\"region\": \"eu-west\", \"origins\": ["
    "   {\"address\": \"10.0.0.5:80\", \"weight\": 10, \"check\": {\"type\": \"http\","
    "    \"path\": \"/healthz\", \"host\": \"www.example.com\", \"expect\": \"200-399\","
    "    \"body\": \"ok\", \"interval_ms\": 2000, \"timeout_ms\": 500, \"rise\": 2, \"fall\": 3}},"
    "   {\"address\": \"[2001:db8::1]:443\", \"weight\": 0, \"state\": \"draining\"}]},"
    "  {\"region\": \"us-east\", \"origins\": ["
    "   {\"address\": \"origin.example.com:8080\", \"state\": \"disabled\"}]}],"
    " \"rules\": ["
    "  {\"match\": {\"cidr\": \"10.0.0.0/8\"}, \"regions\": [\"eu-west\"]},"
    "  {\"match\": {\"country\": \"us\"}, \"regions\": [\"us-east\", \"eu-west\"]},"
    "  {\"match\": {\"continent\": \"AS\"}, \"regions\": [\"ap-south\"]}]},"
    "{\"name\": \"api\", \"hosts\": [\"api.example.com\"], \"policy\": \"failover\","
    " \"pools\": [{\"region\": \"ap-south\", \"origins\": [{\"address\": \"10.1.0.1:443\"}]}]}]}";

/* The short form: regions carry their origins, which become the service "default". */
static const char SHORT_DOC[] = "{\"regions\": ["
                                "{\"name\": \"eu-west\", \"lat\": 48.8566, \"lon\": 2.3522,"
                                " \"origins\": [{\"address\": \"10.0.0.5:80\"}, {\"address\": "
                                "\"10.0.0.6:80\", \"weight\": 5}]},"
                                "{\"name\": \"quiet\", \"lat\": 0, \"lon\": 0},"
                                "{\"name\": \"us-east\", \"lat\": 39.0438, \"lon\": -77.4874,"
                                " \"origins\": [{\"address\": \"[2001:db8::2]:8443\"}]}]}";

struct fixture {
    char dir[64];
    char path[128];
    struct db *db;
};

/* ---- helpers ---- */

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    char err[256] = "";
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/gslb-test-db-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/topology.db", f->dir);
    f->db = db_open(f->path, err, sizeof(err));
    if (f->db == NULL) {
        fprintf(stderr, "db_open: %s\n", err);
        remove_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static struct db *open_ok(const char *path)
{
    char err[256] = "";
    struct db *db = db_open(path, err, sizeof(err));
    if (db == NULL)
        fail_msg("db_open %s: %s", path, err);
    return db;
}

static void import_ok(struct db *db, const char *doc)
{
    char err[512] = "";
    int rc = db_import_json(db, doc, strlen(doc), ACTOR, err, sizeof(err));
    if (rc != 0)
        fail_msg("import failed (%d): %s", rc, err);
}

static char *export_ok(struct db *db)
{
    char err[256] = "";
    char *text = db_export_json(db, err, sizeof(err));
    if (text == NULL)
        fail_msg("export failed: %s", err);
    return text;
}

static int64_t version_of(struct db *db)
{
    int64_t v = -1;
    assert_int_equal(db_config_version(db, &v), 0);
    return v;
}

static struct db_topology *load_ok(struct db *db)
{
    char err[256] = "";
    struct db_topology *topo = NULL;
    if (db_topology_load(db, &topo, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
    return topo;
}

/* The canonical text of a document, as the model alone produces it. */
static char *canonical_ok(const char *doc)
{
    char err[512] = "";
    struct db_topology *topo = NULL;
    if (db_topology_from_json(doc, strlen(doc), &topo, err, sizeof(err)) != 0)
        fail_msg("from_json failed: %s", err);
    char *text = db_topology_to_json(topo);
    db_topology_free(topo);
    return text;
}

static size_t audit_count(struct db *db)
{
    struct db_audit_entry *entries = NULL;
    size_t n = 0;
    assert_int_equal(db_audit_list(db, 0, 100000, &entries, &n), 0);
    db_audit_free(entries, n);
    return n;
}

static void assert_err_names(const char *err, const char *field)
{
    if (strstr(err, field) == NULL)
        fail_msg("error '%s' does not name '%s'", err, field);
}

/* Imports <doc> over DOC and checks it is refused with -EINVAL naming <field>, and that the store,
 * the config version and the audit log are exactly as before. */
static void assert_import_rejected(struct fixture *f, const char *doc, const char *field)
{
    char err[512] = "";
    import_ok(f->db, DOC);
    char *before = export_ok(f->db);
    int64_t version = version_of(f->db);
    size_t n_audit = audit_count(f->db);

    assert_int_equal(db_import_json(f->db, doc, strlen(doc), ACTOR, err, sizeof(err)), -EINVAL);
    assert_err_names(err, field);

    char *after = export_ok(f->db);
    assert_string_equal(before, after);
    assert_int_equal(version_of(f->db), version);
    assert_int_equal(audit_count(f->db), n_audit);
    free(before);
    free(after);
}

/* A one-region, one-origin document whose region and origin fields come from the caller. */
static char *doc_with(const char *region_json, const char *origin_json)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&doc, &len);
    assert_non_null(out);
    fprintf(out,
            "{\"regions\": [%s], \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"],"
            " \"pools\": [{\"region\": \"eu-west\", \"origins\": [%s]}]}]}",
            region_json, origin_json);
    fclose(out);
    return doc;
}

static void assert_region_rejected(struct fixture *f, const char *region_json, const char *field)
{
    char *doc = doc_with(region_json, "{\"address\": \"10.0.0.5:80\"}");
    assert_import_rejected(f, doc, field);
    free(doc);
}

static void assert_origin_rejected(struct fixture *f, const char *origin_json, const char *field)
{
    char *doc = doc_with("{\"name\": \"eu-west\", \"lat\": 48.8, \"lon\": 2.3}", origin_json);
    assert_import_rejected(f, doc, field);
    free(doc);
}

static void assert_rule_rejected(struct fixture *f, const char *rule_json, const char *field)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&doc, &len);
    assert_non_null(out);
    fprintf(out,
            "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 48.8, \"lon\": 2.3}],"
            " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"rules\": [%s]}]}",
            rule_json);
    fclose(out);
    assert_import_rejected(f, doc, field);
    free(doc);
}

/* The newest audit entry; the caller frees it with db_audit_free(e, 1). */
static struct db_audit_entry *audit_newest(struct db *db)
{
    struct db_audit_entry *entries = NULL;
    size_t n = 0;
    assert_int_equal(db_audit_list(db, 0, 1, &entries, &n), 0);
    assert_int_equal(n, 1);
    return entries;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- migrations and the file ---- */

static void new_file_gets_a_schema_version(void **state)
{
    struct fixture *f = *state;
    int schema = 0;
    assert_int_equal(db_schema_version(f->db, &schema), 0);
    assert_true(schema >= 1);
    assert_int_equal(version_of(f->db), 0);
    char *text = export_ok(f->db);
    assert_string_equal(text, "{\n  \"regions\": [],\n  \"services\": []\n}");
    free(text);
}

static void reopening_keeps_data_and_schema_version(void **state)
{
    struct fixture *f = *state;
    int schema = 0, schema_again = 0;
    import_ok(f->db, DOC);
    char *before = export_ok(f->db);
    int64_t version = version_of(f->db);
    assert_int_equal(db_schema_version(f->db, &schema), 0);
    db_close(f->db);

    f->db = open_ok(f->path);
    assert_int_equal(db_schema_version(f->db, &schema_again), 0);
    assert_int_equal(schema_again, schema);
    assert_int_equal(version_of(f->db), version);
    char *after = export_ok(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void database_file_is_in_wal_mode(void **state)
{
    struct fixture *f = *state;
    sqlite3 *conn = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &conn, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(conn, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(conn);
}

static void file_from_a_newer_schema_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    sqlite3 *conn = NULL;
    db_close(f->db);
    f->db = NULL;
    assert_int_equal(sqlite3_open(f->path, &conn), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(conn, "UPDATE schema_version SET version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(conn);

    assert_null(db_open(f->path, err, sizeof(err)));
    assert_err_names(err, "newer");
}

static void open_in_missing_directory_fails_with_reason(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", path[200];
    snprintf(path, sizeof(path), "%s/missing/topology.db", f->dir);
    assert_null(db_open(path, err, sizeof(err)));
    assert_err_names(err, path);
}

static void file_that_is_not_a_database_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", path[200];
    snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database\n", out);
    fclose(out);
    assert_null(db_open(path, err, sizeof(err)));
    assert_err_names(err, path);
}

/* ---- validation: each rejected import names its field and stores nothing ---- */

static void region_name_with_upper_case_is_rejected(void **state)
{
    assert_region_rejected(*state, "{\"name\": \"EU_West\", \"lat\": 1, \"lon\": 2}",
                           "regions[0].name");
}

static void region_name_with_markup_is_rejected(void **state)
{
    assert_region_rejected(*state,
                           "{\"name\": \"<script>alert(1)</script>\", \"lat\": 1, \"lon\": 2}",
                           "regions[0].name");
}

static void region_name_longer_than_63_characters_is_rejected(void **state)
{
    assert_region_rejected(*state,
                           "{\"name\": \"a123456789012345678901234567890123456789012345678901234"
                           "567890123\", \"lat\": 1, \"lon\": 2}",
                           "regions[0].name");
}

static void latitude_above_90_is_rejected(void **state)
{
    assert_region_rejected(*state, "{\"name\": \"eu-west\", \"lat\": 95, \"lon\": 2}",
                           "regions[eu-west].lat");
}

static void longitude_below_minus_180_is_rejected(void **state)
{
    assert_region_rejected(*state, "{\"name\": \"eu-west\", \"lat\": 48, \"lon\": -181}",
                           "regions[eu-west].lon");
}

static void address_without_port_is_rejected(void **state)
{
    assert_origin_rejected(*state, "{\"address\": \"10.0.0.5\"}",
                           "services[www].pools[eu-west].origins[0].address");
}

static void address_with_port_zero_is_rejected(void **state)
{
    assert_origin_rejected(*state, "{\"address\": \"10.0.0.5:0\"}",
                           "services[www].pools[eu-west].origins[0].address");
}

static void ipv6_address_without_brackets_is_rejected(void **state)
{
    assert_origin_rejected(*state, "{\"address\": \"2001:db8::1:80\"}",
                           "services[www].pools[eu-west].origins[0].address");
}

static void weight_above_1000_is_rejected(void **state)
{
    assert_origin_rejected(*state, "{\"address\": \"10.0.0.5:80\", \"weight\": 1001}",
                           "services[www].pools[eu-west].origins[0].weight");
}

static void negative_weight_is_rejected(void **state)
{
    assert_origin_rejected(*state, "{\"address\": \"10.0.0.5:80\", \"weight\": -1}",
                           "services[www].pools[eu-west].origins[0].weight");
}

static void duplicate_origin_in_a_pool_is_rejected(void **state)
{
    assert_origin_rejected(*state, "{\"address\": \"10.0.0.5:80\"}, {\"address\": \"10.0.0.5:80\"}",
                           "services[www].pools[eu-west].origins[1].address");
}

static void check_path_without_slash_is_rejected(void **state)
{
    assert_origin_rejected(*state,
                           "{\"address\": \"10.0.0.5:80\", \"check\": {\"path\": \"healthz\"}}",
                           "services[www].pools[eu-west].origins[0].check.path");
}

static void cidr_with_host_bits_is_rejected(void **state)
{
    assert_rule_rejected(*state,
                         "{\"match\": {\"cidr\": \"10.0.0.1/8\"}, \"regions\": [\"eu-west\"]}",
                         "services[www].rules[0].match.cidr");
}

static void unknown_country_is_rejected(void **state)
{
    assert_rule_rejected(*state, "{\"match\": {\"country\": \"XX\"}, \"regions\": [\"eu-west\"]}",
                         "services[www].rules[0].match.country");
}

static void rule_naming_a_missing_region_is_rejected(void **state)
{
    assert_rule_rejected(*state, "{\"match\": {\"continent\": \"EU\"}, \"regions\": [\"nowhere\"]}",
                         "services[www].rules[0].regions[0]");
}

static void pool_in_a_missing_region_is_rejected(void **state)
{
    assert_import_rejected(
        *state,
        "{\"regions\": [], \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"],"
        " \"pools\": [{\"region\": \"nowhere\", \"origins\": []}]}]}",
        "services[www].pools[nowhere].region");
}

static void host_served_by_two_services_is_rejected(void **state)
{
    assert_import_rejected(
        *state,
        "{\"services\": ["
        "{\"name\": \"www\", \"hosts\": [\"www.example.com\"]},"
        "{\"name\": \"api\", \"hosts\": [\"api.example.com\", \"WWW.example.com\"]}]}",
        "services[api].hosts[1]");
}

static void two_pools_in_one_region_are_rejected(void **state)
{
    assert_import_rejected(
        *state,
        "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 1, \"lon\": 2}],"
        " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
        "{\"region\": \"eu-west\", \"origins\": [{\"address\": \"10.0.0.1:80\"}]},"
        "{\"region\": \"eu-west\", \"origins\": [{\"address\": \"10.0.0.2:80\"}]}]}]}",
        "services[www].pools[1].region");
}

static void region_defined_twice_is_rejected(void **state)
{
    assert_import_rejected(*state,
                           "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 1, \"lon\": 2},"
                           " {\"name\": \"eu-west\", \"lat\": 3, \"lon\": 4}]}",
                           "regions[1].name");
}

static void fallback_listing_a_region_twice_is_rejected(void **state)
{
    assert_import_rejected(*state,
                           "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 1, \"lon\": 2}],"
                           " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"],"
                           " \"fallback\": [\"eu-west\", \"eu-west\"]}]}",
                           "services[www].fallback[1]");
}

static void string_with_nul_character_is_rejected(void **state)
{
    /* jansson refuses it while parsing, before any field is looked at. */
    assert_region_rejected(*state,
                           "{\"name\": \"eu-west\", \"display_name\": \"a\\u0000b\","
                           " \"lat\": 1, \"lon\": 2}",
                           "\\u0000 is not allowed");
}

static void unknown_key_is_rejected(void **state)
{
    assert_region_rejected(*state, "{\"name\": \"eu-west\", \"lattitude\": 48, \"lon\": 2}",
                           "regions[0].lattitude");
}

static void string_latitude_is_rejected(void **state)
{
    assert_region_rejected(*state, "{\"name\": \"eu-west\", \"lat\": \"48\", \"lon\": 2}",
                           "regions[0].lat");
}

static void fractional_weight_is_rejected(void **state)
{
    assert_origin_rejected(*state, "{\"address\": \"10.0.0.5:80\", \"weight\": 1.5}",
                           "services[0].pools[0].origins[0].weight");
}

static void non_boolean_sticky_is_rejected(void **state)
{
    assert_import_rejected(
        *state, "{\"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"sticky\": 1}]}",
        "services[0].sticky");
}

static void hosts_that_is_not_an_array_is_rejected(void **state)
{
    assert_import_rejected(*state, "{\"services\": [{\"name\": \"www\", \"hosts\": \"*\"}]}",
                           "services[0].hosts");
}

static void unknown_policy_is_rejected(void **state)
{
    assert_import_rejected(*state,
                           "{\"services\": [{\"name\": \"www\", \"hosts\": [\"*\"],"
                           " \"policy\": \"random\"}]}",
                           "services[0].policy");
}

static void document_that_is_not_an_object_is_rejected(void **state)
{
    assert_import_rejected(*state, "[1, 2]", "document");
}

static void more_than_256_regions_are_rejected(void **state)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&doc, &len);
    assert_non_null(out);
    fprintf(out, "{\"regions\": [");
    for (int r = 0; r <= DB_MAX_REGIONS; r++)
        fprintf(out, "%s{\"name\": \"r%d\", \"lat\": 1, \"lon\": 2}", r ? ", " : "", r);
    fprintf(out, "]}");
    fclose(out);
    assert_import_rejected(*state, doc, "regions: 257 regions");
    free(doc);
}

static void json_syntax_error_is_rejected(void **state)
{
    assert_import_rejected(*state, "{\"regions\": [{\"name\": \"eu-west\",}]", "JSON syntax error");
}

static void duplicate_json_key_is_rejected(void **state)
{
    assert_import_rejected(*state, "{\"regions\": [], \"regions\": []}", "JSON syntax error");
}

static void short_form_origins_beside_services_are_rejected(void **state)
{
    assert_import_rejected(*state,
                           "{\"regions\": ["
                           "{\"name\": \"eu-west\", \"lat\": 1, \"lon\": 2,"
                           " \"origins\": [{\"address\": \"10.0.0.5:80\"}]},"
                           "{\"name\": \"us-east\", \"lat\": 1, \"lon\": 2}],"
                           " \"services\": []}",
                           "regions[0].origins");
}

/* ---- import and export ---- */

static void export_import_export_is_a_fixed_point(void **state)
{
    struct fixture *f = *state;
    import_ok(f->db, DOC);
    char *first = export_ok(f->db);
    import_ok(f->db, first);
    char *second = export_ok(f->db);
    assert_string_equal(first, second);
    free(first);
    free(second);
}

static void stored_export_equals_the_models_own_json(void **state)
{
    struct fixture *f = *state;
    import_ok(f->db, DOC);
    char *stored = export_ok(f->db);
    char *model = canonical_ok(DOC);
    assert_string_equal(stored, model);
    free(stored);
    free(model);
}

static void export_writes_defaults_and_normalizes_case(void **state)
{
    struct fixture *f = *state;
    import_ok(f->db, DOC);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *www = db_topology_service(topo, "www");
    const struct db_service *api = db_topology_service(topo, "api");
    assert_non_null(www);
    assert_non_null(api);
    assert_null(db_topology_service(topo, "nope"));
    assert_string_equal(www->rules[1].value, "US"); /* country codes are upper-cased */
    assert_int_equal(www->rules[1].match, DB_MATCH_COUNTRY);
    assert_int_equal(www->pools[1].origins[0].weight, 1); /* the default weight */
    assert_int_equal(www->pools[1].origins[0].state, DB_ORIGIN_DISABLED);
    assert_int_equal(api->policy, DB_POLICY_FAILOVER);
    assert_false(api->sticky);
    assert_int_equal(db_topology_region(topo, "eu-west")->state, DB_REGION_ACTIVE);
    assert_string_equal(db_topology_region(topo, "eu-west")->display_name, "Paris");
    assert_null(db_topology_region(topo, "us-east")->display_name);
    assert_int_equal(topo->version, version_of(f->db));
    db_topology_free(topo);
}

static void import_replaces_the_whole_topology(void **state)
{
    struct fixture *f = *state;
    import_ok(f->db, DOC);
    import_ok(f->db, SHORT_DOC);
    char *stored = export_ok(f->db);
    char *expected = canonical_ok(SHORT_DOC);
    assert_string_equal(stored, expected);
    assert_null(strstr(stored, "api.example.com"));
    free(stored);
    free(expected);
}

static void short_form_imports_as_default_service_for_every_host(void **state)
{
    struct fixture *f = *state;
    import_ok(f->db, SHORT_DOC);
    struct db_topology *topo = load_ok(f->db);
    assert_int_equal(topo->n_regions, 3);
    assert_int_equal(topo->n_services, 1);
    const struct db_service *s = &topo->services[0];
    assert_string_equal(s->name, "default");
    assert_int_equal(s->n_hosts, 1);
    assert_string_equal(s->hosts[0], "*");
    assert_int_equal(s->n_pools, 2);
    assert_string_equal(s->pools[0].region, "eu-west");
    assert_int_equal(s->pools[0].n_origins, 2);
    assert_string_equal(s->pools[0].origins[1].address, "10.0.0.6:80");
    assert_int_equal(s->pools[0].origins[1].weight, 5);
    assert_string_equal(s->pools[1].region, "us-east");
    assert_string_equal(s->pools[1].origins[0].address, "[2001:db8::2]:8443");
    db_topology_free(topo);

    /* Its export is the full form, which imports back to the same text. */
    char *first = export_ok(f->db);
    import_ok(f->db, first);
    char *second = export_ok(f->db);
    assert_string_equal(first, second);
    free(first);
    free(second);
}

static void negative_zero_coordinate_exports_like_the_model(void **state)
{
    struct fixture *f = *state;
    static const char doc[] = "{\"regions\": [{\"name\": \"null-island\", \"lat\": -0.0,"
                              " \"lon\": -0.0}]}";
    import_ok(f->db, doc);
    char *stored = export_ok(f->db);
    char *model = canonical_ok(doc);
    assert_string_equal(stored, model);
    free(stored);
    free(model);
}

/* ---- the config version ---- */

static void config_version_counts_committed_changes_only(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    char name[] = "eu-west";
    struct db_region region = {.name = name, .lat = 1, .lon = 2};
    int64_t v = version_of(f->db);

    import_ok(f->db, DOC);
    assert_int_equal(version_of(f->db), v + 1);
    assert_int_equal(db_region_add(f->db, &region, ACTOR, err, sizeof(err)), -EEXIST);
    assert_int_equal(version_of(f->db), v + 1);
    assert_int_equal(db_import_json(f->db, "{", 1, ACTOR, err, sizeof(err)), -EINVAL);
    assert_int_equal(version_of(f->db), v + 1);
    assert_int_equal(db_region_set(f->db, &region, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(version_of(f->db), v + 2);
    assert_int_equal(db_setting_set(f->db, "probe.interval", "5", ACTOR, err, sizeof(err)), 0);
    assert_int_equal(version_of(f->db), v + 3);
    assert_int_equal(db_setting_set(f->db, "Bad Key", "5", ACTOR, err, sizeof(err)), -EINVAL);
    assert_int_equal(version_of(f->db), v + 3);
    import_ok(f->db, DOC); /* the same document again is still a change */
    assert_int_equal(version_of(f->db), v + 4);
}

/* ---- regions ---- */

static void region_add_stores_the_region(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "eu-central", display[] = "Frankfurt";
    struct db_region region = {.name = name,
                               .display_name = display,
                               .lat = 50.1109,
                               .lon = 8.6821,
                               .state = DB_REGION_DRAINING};
    import_ok(f->db, DOC);
    assert_int_equal(db_region_add(f->db, &region, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    assert_int_equal(topo->n_regions, 5);
    const struct db_region *r = db_topology_region(topo, "eu-central");
    assert_non_null(r);
    assert_string_equal(r->display_name, "Frankfurt");
    assert_true(r->lat == 50.1109 && r->lon == 8.6821);
    assert_int_equal(r->state, DB_REGION_DRAINING);
    db_topology_free(topo);
}

static void region_add_of_existing_name_is_eexist(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "eu-west";
    struct db_region region = {.name = name, .lat = 1, .lon = 2};
    import_ok(f->db, DOC);
    char *before = export_ok(f->db);
    assert_int_equal(db_region_add(f->db, &region, ACTOR, err, sizeof(err)), -EEXIST);
    assert_err_names(err, "regions[eu-west]");
    char *after = export_ok(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void region_add_with_bad_latitude_is_rejected_and_not_stored(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "north";
    struct db_region region = {.name = name, .lat = 95, .lon = 2};
    import_ok(f->db, DOC);
    int64_t v = version_of(f->db);
    assert_int_equal(db_region_add(f->db, &region, ACTOR, err, sizeof(err)), -EINVAL);
    assert_err_names(err, "regions[north].lat");
    struct db_topology *topo = load_ok(f->db);
    assert_null(db_topology_region(topo, "north"));
    db_topology_free(topo);
    assert_int_equal(version_of(f->db), v);
}

static void region_add_with_bad_name_is_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "-leading-hyphen";
    struct db_region region = {.name = name, .lat = 1, .lon = 2};
    assert_int_equal(db_region_add(f->db, &region, ACTOR, err, sizeof(err)), -EINVAL);
    assert_err_names(err, "regions[0].name");
}

static void region_set_replaces_every_field(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "eu-west";
    struct db_region region = {
        .name = name, .lat = -10.5, .lon = 20.25, .state = DB_REGION_DISABLED};
    import_ok(f->db, DOC);
    assert_int_equal(db_region_set(f->db, &region, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_region *r = db_topology_region(topo, "eu-west");
    assert_non_null(r);
    assert_null(r->display_name);
    assert_true(r->lat == -10.5 && r->lon == 20.25);
    assert_int_equal(r->state, DB_REGION_DISABLED);
    /* The pools, rules and fallback that name it are untouched. */
    assert_string_equal(db_topology_service(topo, "www")->pools[0].region, "eu-west");
    db_topology_free(topo);
}

static void region_set_of_missing_region_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "nowhere";
    struct db_region region = {.name = name, .lat = 1, .lon = 2};
    import_ok(f->db, DOC);
    assert_int_equal(db_region_set(f->db, &region, ACTOR, err, sizeof(err)), -ENOENT);
    assert_err_names(err, "regions[nowhere]");
}

static void region_remove_of_unused_region_removes_it(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(db_region_remove(f->db, "spare", ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    assert_null(db_topology_region(topo, "spare"));
    assert_int_equal(topo->n_regions, 3);
    db_topology_free(topo);
}

static void region_remove_of_missing_region_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(db_region_remove(f->db, "nowhere", ACTOR, err, sizeof(err)), -ENOENT);
    assert_err_names(err, "regions[nowhere]");
}

static void region_remove_of_region_with_a_pool_is_ebusy(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    int64_t v = version_of(f->db);
    assert_int_equal(db_region_remove(f->db, "eu-west", ACTOR, err, sizeof(err)), -EBUSY);
    assert_err_names(err, "services[www]");
    assert_err_names(err, "pool");
    assert_int_equal(version_of(f->db), v);
}

static void region_remove_of_region_in_a_rule_is_ebusy(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, "{\"regions\": [{\"name\": \"a\", \"lat\": 1, \"lon\": 2},"
                     " {\"name\": \"b\", \"lat\": 1, \"lon\": 2}],"
                     " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"],"
                     " \"rules\": [{\"match\": {\"continent\": \"EU\"}, \"regions\": [\"a\"]},"
                     " {\"match\": {\"country\": \"FR\"}, \"regions\": [\"b\"]}]}]}");
    assert_int_equal(db_region_remove(f->db, "b", ACTOR, err, sizeof(err)), -EBUSY);
    assert_err_names(err, "services[www].rules[1]");
}

static void region_remove_of_region_in_a_fallback_is_ebusy(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, "{\"regions\": [{\"name\": \"a\", \"lat\": 1, \"lon\": 2}],"
                     " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"],"
                     " \"fallback\": [\"a\"]}]}");
    assert_int_equal(db_region_remove(f->db, "a", ACTOR, err, sizeof(err)), -EBUSY);
    assert_err_names(err, "services[www].fallback");
}

/* ---- services ---- */

static void service_add_stores_own_fields_but_not_pools_or_rules(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "shop", host[] = "shop.example.com", fb[] = "eu-west";
    char region[] = "eu-west", address[] = "10.9.9.9:80";
    char *hosts[] = {host}, *fallback[] = {fb};
    struct db_origin origin = {.address = address, .weight = 1};
    struct db_pool pool = {.region = region, .origins = &origin, .n_origins = 1};
    struct db_service svc = {.name = name,
                             .hosts = hosts,
                             .n_hosts = 1,
                             .policy = DB_POLICY_FAILOVER,
                             .sticky = true,
                             .fallback = fallback,
                             .n_fallback = 1,
                             .pools = &pool,
                             .n_pools = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_service_add(f->db, &svc, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *s = db_topology_service(topo, "shop");
    assert_non_null(s);
    assert_int_equal(s->n_hosts, 1);
    assert_string_equal(s->hosts[0], "shop.example.com");
    assert_int_equal(s->policy, DB_POLICY_FAILOVER);
    assert_true(s->sticky);
    assert_int_equal(s->n_fallback, 1);
    assert_string_equal(s->fallback[0], "eu-west");
    assert_int_equal(s->n_pools, 0);
    assert_int_equal(s->n_rules, 0);
    db_topology_free(topo);
}

static void service_add_of_existing_name_is_eexist(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "www", host[] = "other.example.com";
    char *hosts[] = {host};
    struct db_service svc = {.name = name, .hosts = hosts, .n_hosts = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_service_add(f->db, &svc, ACTOR, err, sizeof(err)), -EEXIST);
    assert_err_names(err, "services[www]");
}

static void service_add_with_a_host_of_another_service_is_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "shop", host[] = "api.example.com";
    char *hosts[] = {host};
    struct db_service svc = {.name = name, .hosts = hosts, .n_hosts = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_service_add(f->db, &svc, ACTOR, err, sizeof(err)), -EINVAL);
    assert_err_names(err, "services[shop].hosts[0]");
}

static void service_set_keeps_pools_and_rules(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "www", host[] = "new.example.com";
    char *hosts[] = {host};
    struct db_service svc = {
        .name = name, .hosts = hosts, .n_hosts = 1, .policy = DB_POLICY_FAILOVER};
    import_ok(f->db, DOC);
    assert_int_equal(db_service_set(f->db, &svc, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *s = db_topology_service(topo, "www");
    assert_non_null(s);
    assert_int_equal(s->n_hosts, 1);
    assert_string_equal(s->hosts[0], "new.example.com");
    assert_int_equal(s->policy, DB_POLICY_FAILOVER);
    assert_false(s->sticky);
    assert_int_equal(s->n_fallback, 0);
    assert_int_equal(s->n_pools, 2);
    assert_int_equal(s->pools[0].n_origins, 2);
    assert_int_equal(s->n_rules, 3);
    assert_string_equal(s->rules[0].value, "10.0.0.0/8");
    db_topology_free(topo);
}

static void service_set_of_missing_service_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "nope", host[] = "nope.example.com";
    char *hosts[] = {host};
    struct db_service svc = {.name = name, .hosts = hosts, .n_hosts = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_service_set(f->db, &svc, ACTOR, err, sizeof(err)), -ENOENT);
    assert_err_names(err, "services[nope]");
}

static void service_remove_removes_its_pools_and_frees_its_regions(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(db_service_remove(f->db, "api", ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    assert_null(db_topology_service(topo, "api"));
    assert_int_equal(topo->n_services, 1);
    db_topology_free(topo);
    /* ap-south was used only by api's pool, but www still has a rule naming it. */
    assert_int_equal(db_region_remove(f->db, "ap-south", ACTOR, err, sizeof(err)), -EBUSY);
    assert_int_equal(db_rule_remove(f->db, "www", 2, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_region_remove(f->db, "ap-south", ACTOR, err, sizeof(err)), 0);
}

static void service_remove_of_missing_service_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(db_service_remove(f->db, "nope", ACTOR, err, sizeof(err)), -ENOENT);
    assert_err_names(err, "services[nope]");
}

/* ---- origins ---- */

static void origin_add_creates_the_pool(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", address[] = "10.5.0.1:8080";
    struct db_origin origin = {.address = address, .weight = 7, .state = DB_ORIGIN_DRAINING};
    import_ok(f->db, DOC);
    assert_int_equal(db_origin_add(f->db, "api", "spare", &origin, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *api = db_topology_service(topo, "api");
    assert_int_equal(api->n_pools, 2);
    assert_string_equal(api->pools[1].region, "spare");
    assert_int_equal(api->pools[1].n_origins, 1);
    assert_string_equal(api->pools[1].origins[0].address, "10.5.0.1:8080");
    assert_int_equal(api->pools[1].origins[0].weight, 7);
    assert_int_equal(api->pools[1].origins[0].state, DB_ORIGIN_DRAINING);
    db_topology_free(topo);
}

static void origin_add_to_an_existing_pool_appends(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", address[] = "[2001:db8::9]:80";
    struct db_origin origin = {.address = address, .weight = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_origin_add(f->db, "www", "eu-west", &origin, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *www = db_topology_service(topo, "www");
    assert_int_equal(www->n_pools, 2);
    assert_int_equal(www->pools[0].n_origins, 3);
    assert_string_equal(www->pools[0].origins[2].address, "[2001:db8::9]:80");
    db_topology_free(topo);
}

static void origin_add_of_existing_address_is_eexist(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", address[] = "10.0.0.5:80";
    struct db_origin origin = {.address = address, .weight = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_origin_add(f->db, "www", "eu-west", &origin, ACTOR, err, sizeof(err)),
                     -EEXIST);
    assert_err_names(err, "services[www].pools[eu-west]");
}

static void origin_add_to_missing_service_or_region_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", address[] = "10.0.0.7:80";
    struct db_origin origin = {.address = address, .weight = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_origin_add(f->db, "nope", "eu-west", &origin, ACTOR, err, sizeof(err)),
                     -ENOENT);
    assert_err_names(err, "services[nope]");
    assert_int_equal(db_origin_add(f->db, "www", "nowhere", &origin, ACTOR, err, sizeof(err)),
                     -ENOENT);
    assert_err_names(err, "regions[nowhere]");
}

static void origin_add_with_bad_address_is_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", address[] = "2001:db8::1:80";
    struct db_origin origin = {.address = address, .weight = 1};
    import_ok(f->db, DOC);
    char *before = export_ok(f->db);
    assert_int_equal(db_origin_add(f->db, "api", "spare", &origin, ACTOR, err, sizeof(err)),
                     -EINVAL);
    assert_err_names(err, "services[api].pools[spare].origins[0].address");
    char *after = export_ok(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void origin_set_replaces_the_origin(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", address[] = "10.0.0.5:80", path[] = "/ping";
    struct db_origin origin = {.address = address,
                               .weight = 500,
                               .state = DB_ORIGIN_DISABLED,
                               .check = {.type = DB_CHECK_TCP, .path = path, .rise = 5}};
    import_ok(f->db, DOC);
    assert_int_equal(db_origin_set(f->db, "www", "eu-west", &origin, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_origin *o = &db_topology_service(topo, "www")->pools[0].origins[0];
    assert_string_equal(o->address, "10.0.0.5:80");
    assert_int_equal(o->weight, 500);
    assert_int_equal(o->state, DB_ORIGIN_DISABLED);
    assert_int_equal(o->check.type, DB_CHECK_TCP);
    assert_string_equal(o->check.path, "/ping");
    assert_null(o->check.host);
    assert_null(o->check.expect);
    assert_int_equal(o->check.rise, 5);
    assert_int_equal(o->check.interval_ms, 0);
    db_topology_free(topo);
}

static void origin_set_of_missing_origin_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", address[] = "10.0.0.99:80";
    struct db_origin origin = {.address = address, .weight = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_origin_set(f->db, "www", "eu-west", &origin, ACTOR, err, sizeof(err)),
                     -ENOENT);
    assert_err_names(err, "services[www].pools[eu-west].origins");
    /* No pool in that region: set does not create one either. */
    assert_int_equal(db_origin_set(f->db, "www", "spare", &origin, ACTOR, err, sizeof(err)),
                     -ENOENT);
}

static void origin_remove_keeps_the_other_origins(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(
        db_origin_remove(f->db, "www", "eu-west", "10.0.0.5:80", ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *www = db_topology_service(topo, "www");
    assert_int_equal(www->n_pools, 2);
    assert_int_equal(www->pools[0].n_origins, 1);
    assert_string_equal(www->pools[0].origins[0].address, "[2001:db8::1]:443");
    db_topology_free(topo);
}

static void origin_remove_of_the_last_origin_removes_the_pool(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(
        db_origin_remove(f->db, "api", "ap-south", "10.1.0.1:443", ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    assert_int_equal(db_topology_service(topo, "api")->n_pools, 0);
    db_topology_free(topo);
}

static void origin_remove_of_missing_origin_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(
        db_origin_remove(f->db, "www", "eu-west", "10.0.0.99:80", ACTOR, err, sizeof(err)),
        -ENOENT);
    assert_err_names(err, "services[www].pools[eu-west].origins");
}

/* ---- rules ---- */

static void rule_add_appends_the_rule(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", value[] = "2001:db8::/32", r1[] = "spare", r2[] = "eu-west";
    char *regions[] = {r1, r2};
    struct db_rule rule = {
        .match = DB_MATCH_CIDR, .value = value, .regions = regions, .n_regions = 2};
    import_ok(f->db, DOC);
    assert_int_equal(db_rule_add(f->db, "www", &rule, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *www = db_topology_service(topo, "www");
    assert_int_equal(www->n_rules, 4);
    assert_int_equal(www->rules[3].match, DB_MATCH_CIDR);
    assert_string_equal(www->rules[3].value, "2001:db8::/32");
    assert_int_equal(www->rules[3].n_regions, 2);
    assert_string_equal(www->rules[3].regions[0], "spare");
    assert_string_equal(www->rules[3].regions[1], "eu-west");
    db_topology_free(topo);
}

static void rule_add_with_bad_cidr_is_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", value[] = "10.0.0.1/8", r1[] = "spare";
    char *regions[] = {r1};
    struct db_rule rule = {
        .match = DB_MATCH_CIDR, .value = value, .regions = regions, .n_regions = 1};
    import_ok(f->db, DOC);
    assert_int_equal(db_rule_add(f->db, "www", &rule, ACTOR, err, sizeof(err)), -EINVAL);
    assert_err_names(err, "services[www].rules[3].match.cidr");
}

static void rule_add_without_regions_is_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", value[] = "EU";
    struct db_rule rule = {.match = DB_MATCH_CONTINENT, .value = value};
    import_ok(f->db, DOC);
    assert_int_equal(db_rule_add(f->db, "api", &rule, ACTOR, err, sizeof(err)), -EINVAL);
    assert_err_names(err, "services[api].rules[0].regions");
}

static void rule_remove_shifts_the_later_rules(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(db_rule_remove(f->db, "www", 0, ACTOR, err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_service *www = db_topology_service(topo, "www");
    assert_int_equal(www->n_rules, 2);
    assert_string_equal(www->rules[0].value, "US");
    assert_string_equal(www->rules[1].value, "AS");
    db_topology_free(topo);
}

static void rule_remove_past_the_end_is_enoent(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    assert_int_equal(db_rule_remove(f->db, "www", 3, ACTOR, err, sizeof(err)), -ENOENT);
    assert_err_names(err, "services[www].rules[3]");
    assert_int_equal(db_rule_remove(f->db, "nope", 0, ACTOR, err, sizeof(err)), -ENOENT);
    assert_err_names(err, "services[nope]");
}

/* ---- the audit log ---- */

static void region_edits_are_audited_with_before_and_after(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "north";
    struct db_region region = {.name = name, .lat = 60, .lon = 10};
    struct db_audit_entry *e;

    assert_int_equal(db_region_add(f->db, &region, "alice", err, sizeof(err)), 0);
    e = audit_newest(f->db);
    assert_string_equal(e->actor, "alice");
    assert_string_equal(e->action, "region.add");
    assert_string_equal(e->object, "region north");
    assert_null(e->before);
    assert_non_null(e->after);
    assert_non_null(strstr(e->after, "\"name\":\"north\""));
    assert_true(e->time_ms > 1500000000000);
    db_audit_free(e, 1);

    region.lat = 61;
    assert_int_equal(db_region_set(f->db, &region, "bob", err, sizeof(err)), 0);
    e = audit_newest(f->db);
    assert_string_equal(e->actor, "bob");
    assert_string_equal(e->action, "region.set");
    assert_string_equal(e->object, "region north");
    assert_non_null(strstr(e->before, "\"lat\":60.0"));
    assert_non_null(strstr(e->after, "\"lat\":61.0"));
    db_audit_free(e, 1);

    assert_int_equal(db_region_remove(f->db, "north", "carol", err, sizeof(err)), 0);
    e = audit_newest(f->db);
    assert_string_equal(e->actor, "carol");
    assert_string_equal(e->action, "region.remove");
    assert_string_equal(e->object, "region north");
    assert_non_null(strstr(e->before, "\"lat\":61.0"));
    assert_null(e->after);
    db_audit_free(e, 1);
}

static void every_kind_of_change_is_audited_under_its_action(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "shop", host[] = "shop.example.com", address[] = "10.3.0.1:80";
    char value[] = "FR", reg[] = "eu-west";
    char *hosts[] = {host}, *regions[] = {reg};
    struct db_service svc = {.name = name, .hosts = hosts, .n_hosts = 1};
    struct db_origin origin = {.address = address, .weight = 1};
    struct db_rule rule = {
        .match = DB_MATCH_COUNTRY, .value = value, .regions = regions, .n_regions = 1};
    static const char *const expected[][3] = {
        /* newest first: action, object, which of before/after is set ("b", "a" or "ba") */
        {"setting.set", "ui.theme", "a"},
        {"service.remove", "service shop", "b"},
        {"rule.remove", "rule shop#0", "b"},
        {"rule.add", "rule shop#0", "a"},
        {"origin.remove", "origin shop/eu-west/10.3.0.1:80", "b"},
        {"origin.set", "origin shop/eu-west/10.3.0.1:80", "ba"},
        {"origin.add", "origin shop/eu-west/10.3.0.1:80", "a"},
        {"service.set", "service shop", "ba"},
        {"service.add", "service shop", "a"},
        {"topology.import", "topology", "ba"},
    };
    size_t n_expected = sizeof(expected) / sizeof(expected[0]);

    import_ok(f->db, DOC);
    assert_int_equal(db_service_add(f->db, &svc, ACTOR, err, sizeof(err)), 0);
    svc.sticky = true;
    assert_int_equal(db_service_set(f->db, &svc, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_origin_add(f->db, "shop", "eu-west", &origin, ACTOR, err, sizeof(err)), 0);
    origin.weight = 2;
    assert_int_equal(db_origin_set(f->db, "shop", "eu-west", &origin, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(
        db_origin_remove(f->db, "shop", "eu-west", "10.3.0.1:80", ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_rule_add(f->db, "shop", &rule, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_rule_remove(f->db, "shop", 0, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_service_remove(f->db, "shop", ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_setting_set(f->db, "ui.theme", "dark", ACTOR, err, sizeof(err)), 0);

    struct db_audit_entry *entries = NULL;
    size_t n = 0;
    assert_int_equal(db_audit_list(f->db, 0, 100, &entries, &n), 0);
    assert_int_equal(n, n_expected);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(entries[i].actor, ACTOR);
        assert_string_equal(entries[i].action, expected[i][0]);
        assert_string_equal(entries[i].object, expected[i][1]);
        assert_int_equal(entries[i].before != NULL, strchr(expected[i][2], 'b') != NULL);
        assert_int_equal(entries[i].after != NULL, strchr(expected[i][2], 'a') != NULL);
    }
    /* The import's before is the empty topology, its after the document. */
    char *canonical = canonical_ok(DOC);
    assert_string_equal(entries[n - 1].after, canonical);
    assert_non_null(strstr(entries[n - 1].before, "\"regions\": []"));
    free(canonical);
    db_audit_free(entries, n);
}

static void failed_change_appends_no_audit_entry(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    import_ok(f->db, DOC);
    size_t n = audit_count(f->db);
    assert_int_equal(db_region_remove(f->db, "eu-west", ACTOR, err, sizeof(err)), -EBUSY);
    assert_int_equal(db_service_remove(f->db, "nope", ACTOR, err, sizeof(err)), -ENOENT);
    assert_int_equal(db_import_json(f->db, "[]", 2, ACTOR, err, sizeof(err)), -EINVAL);
    assert_int_equal(audit_count(f->db), n);
}

static void audit_list_pages_newest_first(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", key[32], value[32];
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_int_equal(db_setting_set(f->db, key, value, ACTOR, err, sizeof(err)), 0);
    }
    int64_t before_id = 0;
    int seen = 0;
    for (;;) {
        struct db_audit_entry *page = NULL;
        size_t n = 0;
        assert_int_equal(db_audit_list(f->db, before_id, 3, &page, &n), 0);
        if (n == 0)
            break;
        assert_true(n <= 3);
        for (size_t i = 0; i < n; i++) {
            snprintf(key, sizeof(key), "k%d", 6 - seen++);
            assert_string_equal(page[i].object, key);
            if (before_id != 0)
                assert_true(page[i].id < before_id);
            if (i > 0)
                assert_true(page[i].id < page[i - 1].id);
        }
        before_id = page[n - 1].id;
        db_audit_free(page, n);
    }
    assert_int_equal(seen, 7);
}

/* ---- settings ---- */

static void setting_get_of_unset_key_is_enoent(void **state)
{
    struct fixture *f = *state;
    char *value = NULL;
    assert_int_equal(db_setting_get(f->db, "probe.interval", &value), -ENOENT);
    assert_null(value);
}

static void setting_set_then_get_returns_the_latest_value(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", *value = NULL;
    assert_int_equal(db_setting_set(f->db, "probe.interval_ms", "2000", ACTOR, err, sizeof(err)),
                     0);
    assert_int_equal(db_setting_set(f->db, "probe.interval_ms", "500", ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_setting_get(f->db, "probe.interval_ms", &value), 0);
    assert_string_equal(value, "500");
    free(value);

    struct db_audit_entry *e = audit_newest(f->db);
    assert_string_equal(e->action, "setting.set");
    assert_string_equal(e->object, "probe.interval_ms");
    assert_string_equal(e->before, "2000");
    assert_string_equal(e->after, "500");
    db_audit_free(e, 1);
}

static void setting_with_bad_key_is_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", *value = NULL;
    static const char *const bad[] = {"", "Upper", "with space", "semi;colon", "quote'"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(db_setting_set(f->db, bad[i], "x", ACTOR, err, sizeof(err)), -EINVAL);
        assert_err_names(err, "settings.key");
    }
    assert_int_equal(db_setting_get(f->db, "Upper", &value), -ENOENT);
    assert_int_equal(audit_count(f->db), 0);
}

/* ---- enum names ---- */

static void enum_names_parse_back_to_their_values(void **state)
{
    (void)state;
    enum db_region_state rs;
    enum db_origin_state os;
    enum db_policy p;
    for (int i = DB_REGION_ACTIVE; i <= DB_REGION_DISABLED; i++) {
        assert_int_equal(db_region_state_parse(db_region_state_name(i), &rs), 0);
        assert_int_equal(rs, i);
    }
    for (int i = DB_ORIGIN_ENABLED; i <= DB_ORIGIN_DISABLED; i++) {
        assert_int_equal(db_origin_state_parse(db_origin_state_name(i), &os), 0);
        assert_int_equal(os, i);
    }
    for (int i = DB_POLICY_NEAREST; i <= DB_POLICY_FAILOVER; i++) {
        assert_int_equal(db_policy_parse(db_policy_name(i), &p), 0);
        assert_int_equal(p, i);
    }
    assert_string_equal(db_match_name(DB_MATCH_CONTINENT), "continent");
    assert_int_equal(db_region_state_parse("Active", &rs), -EINVAL);
    assert_int_equal(db_origin_state_parse("", &os), -EINVAL);
    assert_int_equal(db_policy_parse("random", &p), -EINVAL);
}

/* ---- two handles on one file ---- */

static void change_through_one_handle_is_visible_through_another(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", name[] = "north";
    struct db_region region = {.name = name, .lat = 60, .lon = 10};
    struct db *other = open_ok(f->path);
    int64_t v = version_of(other);

    import_ok(f->db, DOC);
    assert_int_equal(version_of(other), v + 1);
    assert_int_equal(db_region_add(other, &region, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(version_of(f->db), v + 2);

    char *mine = export_ok(f->db), *theirs = export_ok(other);
    assert_string_equal(mine, theirs);
    assert_non_null(strstr(mine, "\"north\""));
    free(mine);
    free(theirs);
    db_close(other);
}

/* Several processes open one new file at the same moment and each make changes: opening and
 * migrating race, the writers serialize on the write lock (busy timeout) instead of failing, and
 * no change is lost. Repeated on fresh files, since the race is in creating the file. */
static void writers_in_several_processes_all_commit(void **state)
{
    struct fixture *f = *state;
    enum { N_FILES = 10, N_PROCS = 4, N_CHANGES = 5 };

    for (int round = 0; round < N_FILES; round++) {
        char path[200];
        pid_t pids[N_PROCS];
        snprintf(path, sizeof(path), "%s/shared%d.db", f->dir, round);
        for (int p = 0; p < N_PROCS; p++) {
            pids[p] = fork();
            assert_true(pids[p] >= 0);
            if (pids[p] != 0)
                continue;
            char err[256], key[32];
            struct db *db = db_open(path, err, sizeof(err));
            if (db == NULL) {
                fprintf(stderr, "writer %d: %s\n", p, err);
                _exit(2);
            }
            for (int i = 0; i < N_CHANGES; i++) {
                snprintf(key, sizeof(key), "p%d.k%d", p, i);
                if (db_setting_set(db, key, "v", "proc", err, sizeof(err)) != 0) {
                    fprintf(stderr, "writer %d: %s\n", p, err);
                    _exit(3);
                }
            }
            db_close(db);
            _exit(0);
        }
        int failed = 0;
        for (int p = 0; p < N_PROCS; p++) {
            int status = 0;
            assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
            failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        }
        if (failed)
            fail_msg("file %d: %d of %d writers failed", round, failed, N_PROCS);
        struct db *db = open_ok(path);
        assert_int_equal(version_of(db), N_PROCS * N_CHANGES);
        assert_int_equal(audit_count(db), N_PROCS * N_CHANGES);
        char *value = NULL;
        assert_int_equal(db_setting_get(db, "p3.k4", &value), 0);
        assert_string_equal(value, "v");
        free(value);
        db_close(db);
    }
}

/* ---- crash safety ---- */

#define CRASH_REGIONS   200
#define CRASH_SERVICES  8
#define CRASH_ORIGINS   4
#define CRASH_ROUNDS    6
#define CRASH_BUDGET_MS 60000

/* A topology big enough that one import takes a while. Variants 0 and 1 differ in every region,
 * service and origin, so a half-written import could pass for neither. */
static char *big_doc(int variant)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&doc, &len);
    assert_non_null(out);
    fprintf(out, "{\"regions\": [");
    for (int r = 0; r < CRASH_REGIONS; r++)
        fprintf(out,
                "%s{\"name\": \"r%03d\", \"display_name\": \"Region %d, variant %d\","
                " \"lat\": %.4f, \"lon\": %.4f, \"state\": \"%s\"}",
                r ? ", " : "", r, r, variant, -80 + r * 0.8 + variant * 0.01,
                -170 + r * 1.7 - variant * 0.02, (r + variant) % 3 ? "active" : "draining");
    fprintf(out, "], \"services\": [");
    for (int s = 0; s < CRASH_SERVICES; s++) {
        fprintf(out,
                "%s{\"name\": \"svc%d\", \"hosts\": [\"s%d.v%d.example.com\"],"
                " \"policy\": \"%s\", \"sticky\": %s, \"fallback\": [\"r%03d\"], \"pools\": [",
                s ? ", " : "", s, s, variant, variant ? "failover" : "nearest",
                variant ? "true" : "false", (s + variant) % CRASH_REGIONS);
        for (int r = 0; r < CRASH_REGIONS; r++) {
            fprintf(out, "%s{\"region\": \"r%03d\", \"origins\": [", r ? ", " : "", r);
            for (int o = 0; o < CRASH_ORIGINS; o++)
                fprintf(out,
                        "%s{\"address\": \"10.%d.%d.%d:%d\", \"weight\": %d,"
                        " \"check\": {\"path\": \"/v%d\"}}",
                        o ? ", " : "", s, r, o + 1, 8000 + variant, (r + o + variant) % 1001,
                        variant);
            fprintf(out, "]}");
        }
        fprintf(
            out,
            "], \"rules\": [{\"match\": {\"cidr\": \"10.%d.0.0/16\"}, \"regions\": [\"r%03d\"]}]}",
            s, (s * 7 + variant) % CRASH_REGIONS);
    }
    fprintf(out, "]}");
    fclose(out);
    return doc;
}

/* The child: imports the two documents alternately, starting with <docs>[<first>], and reports
 * on <fd> 'r' once open, 'b' before and 'e' after each import, until it is killed. */
static void crash_child(const char *path, const char *const docs[2], int first, int fd)
{
    char err[256];
    struct db *db = db_open(path, err, sizeof(err));
    if (db == NULL || write(fd, "r", 1) != 1)
        _exit(2);
    for (int i = first;; i ^= 1) {
        if (write(fd, "b", 1) != 1 ||
            db_import_json(db, docs[i], strlen(docs[i]), "crash", err, sizeof(err)) != 0 ||
            write(fd, "e", 1) != 1)
            _exit(3);
    }
}

/* Reads what the child reported within <timeout_ms>: counts completed imports and remembers
 * whether one is under way. Returns 1 after reading, 0 on timeout, -1 once the child is gone. */
static int crash_read(int fd, int timeout_ms, bool *ready, int *done, bool *busy)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[256];
    int polled = poll(&p, 1, timeout_ms);
    if (polled <= 0)
        return polled;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0)
        return -1;
    for (ssize_t i = 0; i < n; i++) {
        *ready |= buf[i] == 'r';
        *done += buf[i] == 'e';
        *busy = buf[i] == 'b';
    }
    return 1;
}

static void kill_during_imports_leaves_one_whole_topology(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    char *docs[2] = {big_doc(0), big_doc(1)};
    char *expected[2] = {canonical_ok(docs[0]), canonical_ok(docs[1])};
    const char *const child_docs[2] = {docs[0], docs[1]};
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int64_t start = now_ms();
    int rounds = 0, rounds_with_import = 0, kills_mid_import = 0, stored = 0;

    assert_string_not_equal(expected[0], expected[1]);
    import_ok(f->db, docs[0]);
    int64_t version = version_of(f->db);
    db_close(f->db);
    f->db = NULL;

    while (rounds < CRASH_ROUNDS && now_ms() - start < CRASH_BUDGET_MS) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(f->path, child_docs, stored ^ 1, fds[1]);
        }
        close(fds[1]);

        /* Wait for the child to open the file, then a random 50-300 ms, and for at least one
         * whole import, so the kill lands somewhere in a stream of transactions. */
        bool ready = false, busy = false;
        int done = 0;
        int64_t deadline = now_ms() + 30000;
        int alive = 1;
        while (!ready && alive >= 0 && now_ms() < deadline)
            alive = crash_read(fds[0], 100, &ready, &done, &busy);
        int64_t ready_at = now_ms(), kill_at = ready_at + 50 + rand_r(&seed) % 251;
        bool extended = false;
        while (ready && alive >= 0 && now_ms() < deadline) {
            int64_t t = now_ms();
            if (done > 0 && !extended) {
                extended = true;
                /* The first import outlasted the delay: kill somewhere inside the next one. */
                if (kill_at <= t)
                    kill_at = t + rand_r(&seed) % (t - ready_at + 1);
            }
            if (done > 0 && t >= kill_at)
                break;
            alive = crash_read(fds[0], kill_at > t && kill_at - t < 100 ? (int)(kill_at - t) : 100,
                               &ready, &done, &busy);
        }
        /* Kill and reap before any assertion, so a failing round leaves no child behind. */
        int status = 0, killed = kill(pid, SIGKILL);
        pid_t reaped = waitpid(pid, &status, 0);
        assert_int_equal(killed, 0);
        assert_int_equal(reaped, pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("round %d: the child exited by itself (status %#x), seed %u", rounds, status,
                     seed);
        assert_true(ready);
        while (crash_read(fds[0], 0, &ready, &done, &busy) > 0)
            ;
        close(fds[0]);
        rounds++;
        rounds_with_import += done > 0;
        kills_mid_import += busy;

        /* Every import the child saw commit survived, and at most the one under way was added:
         * the config version says how many, and so which whole topology must be stored. */
        struct db *db = open_ok(f->path);
        int64_t committed = version_of(db) - version;
        if (committed < done || committed > done + busy)
            fail_msg("round %d: %lld imports committed, the child finished %d%s, seed %u", rounds,
                     (long long)committed, done, busy ? " and was in one" : "", seed);
        version += committed;
        stored ^= (int)(committed & 1);
        char *text = export_ok(db);
        if (strcmp(text, expected[stored]) != 0)
            fail_msg(
                "round %d: stored topology is not %s (%s), seed %u", rounds, stored ? "B" : "A",
                strcmp(text, expected[stored ^ 1]) == 0 ? "it is the other one" : "a mix", seed);
        struct db_topology *topo = load_ok(db);
        if (db_topology_validate(topo, err, sizeof(err)) != 0)
            fail_msg("round %d: stored topology is invalid: %s", rounds, err);
        db_topology_free(topo);
        struct db_audit_entry *e = audit_newest(db);
        assert_string_equal(e->after, text);
        db_audit_free(e, 1);
        free(text);
        db_close(db);
    }
    assert_true(rounds >= 3);
    assert_int_equal(rounds_with_import, rounds);
    assert_true(kills_mid_import >= 1);

    f->db = open_ok(f->path);
    for (int i = 0; i < 2; i++) {
        free(docs[i]);
        free(expected[i]);
    }
}

/* ---- pool settings and manual failback ---- */

static const char POOL_DOC[] =
    "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 48.8, \"lon\": 2.3},"
    " {\"name\": \"us-east\", \"lat\": 39.0, \"lon\": -77.5}],"
    " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
    "  {\"region\": \"eu-west\", \"min_healthy\": 2, \"min_weight_percent\": 60,"
    "   \"failback\": \"manual\", \"holddown_ms\": 5000,"
    "   \"check\": {\"type\": \"http\", \"path\": \"/healthz\", \"interval_ms\": 1000,"
    "    \"method\": \"head\"},"
    "   \"origins\": [{\"address\": \"10.0.0.5:80\"}, {\"address\": \"10.0.0.6:80\"}]},"
    "  {\"region\": \"us-east\", \"origins\": [{\"address\": \"10.1.0.5:80\"}]}]}]}";

static void pool_settings_round_trip_and_defaults_stay_out_of_the_export(void **state)
{
    struct fixture *f = *state;
    import_ok(f->db, POOL_DOC);
    char *text = export_ok(f->db);
    assert_non_null(strstr(text, "\"min_healthy\": 2"));
    assert_non_null(strstr(text, "\"min_weight_percent\": 60"));
    assert_non_null(strstr(text, "\"failback\": \"manual\""));
    assert_non_null(strstr(text, "\"holddown_ms\": 5000"));
    assert_non_null(strstr(text, "\"path\": \"/healthz\""));
    assert_non_null(strstr(text, "\"method\": \"HEAD\""));
    /* us-east's pool has every default: none of its settings is written out */
    assert_null(strstr(strstr(text, "\"region\": \"us-east\""), "min_healthy"));
    char *again = canonical_ok(text);
    assert_string_equal(text, again);
    struct db_topology *topo = load_ok(f->db);
    assert_int_equal(topo->services[0].pools[1].min_healthy, 1);
    assert_int_equal(topo->services[0].pools[0].check.interval_ms, 1000);
    db_topology_free(topo);
    free(again);
    free(text);
}

static void pool_settings_out_of_range_are_rejected_by_field(void **state)
{
    struct fixture *f = *state;
    char doc[2048];
    static const struct {
        const char *setting, *field;
    } cases[] = {
        {"\"min_healthy\": 0", "services[www].pools[eu-west].min_healthy"},
        {"\"min_healthy\": 2", "services[www].pools[eu-west].min_healthy"}, /* one origin */
        {"\"min_weight_percent\": 101", "services[www].pools[eu-west].min_weight_percent"},
        {"\"failback\": \"later\"", "failback"},
        {"\"holddown_ms\": -1", "services[www].pools[eu-west].holddown_ms"},
        {"\"check\": {\"path\": \"x\"}", "services[www].pools[eu-west].check.path"},
        {"\"check\": {\"method\": \"POST\"}", "services[www].pools[eu-west].check.method"},
        {"\"check\": {\"method\": \"head\", \"body\": \"ok\"}",
         "services[www].pools[eu-west].check.body"},
        {"\"quorum\": 1", "quorum"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(
            doc, sizeof(doc),
            "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 48.8, \"lon\": 2.3}],"
            " \"services\": [{\"name\": \"www\", \"hosts\": [\"*\"], \"pools\": ["
            "  {\"region\": \"eu-west\", %s, \"origins\": [{\"address\": \"10.0.0.5:80\"}]}]}]}",
            cases[i].setting);
        assert_import_rejected(f, doc, cases[i].field);
    }
}

static void pool_set_changes_settings_keeps_origins_and_is_audited(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    import_ok(f->db, POOL_DOC);
    char eu_west[] = "eu-west", nowhere[] = "nowhere";
    struct db_pool pool = {.region = eu_west, .min_healthy = 1};
    assert_int_equal(db_pool_set(f->db, "www", &pool, "alice", err, sizeof(err)), 0);
    struct db_topology *topo = load_ok(f->db);
    const struct db_pool *p = &topo->services[0].pools[0];
    assert_int_equal(p->min_healthy, 1);
    assert_int_equal(p->failback, DB_FAILBACK_AUTO);
    assert_null(p->check.path);
    assert_int_equal(p->n_origins, 2);
    db_topology_free(topo);
    struct db_audit_entry *e = audit_newest(f->db);
    assert_string_equal(e->action, "pool.set");
    assert_string_equal(e->object, "pool www/eu-west");
    assert_non_null(strstr(e->before, "\"failback\":\"manual\""));
    assert_null(strstr(e->after, "failback"));
    db_audit_free(e, 1);
    pool.region = nowhere;
    assert_int_equal(db_pool_set(f->db, "www", &pool, "alice", err, sizeof(err)), -ENOENT);
    assert_err_names(err, "services[www].pools[nowhere]");
    /* Removing an origin below the quorum is refused until the quorum is lowered. */
    pool = (struct db_pool){.region = eu_west, .min_healthy = 2};
    assert_int_equal(db_pool_set(f->db, "www", &pool, "alice", err, sizeof(err)), 0);
    assert_int_equal(
        db_origin_remove(f->db, "www", "eu-west", "10.0.0.6:80", "alice", err, sizeof(err)),
        -EINVAL);
    assert_err_names(err, "min_healthy");
}

static void resume_lifts_the_override_and_the_holds_of_its_region_only(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    import_ok(f->db, POOL_DOC);
    char eu_west[] = "eu-west";
    struct db_region r = {eu_west, NULL, 48.8, 2.3, DB_REGION_ACTIVE, DB_FORCE_DOWN};
    assert_int_equal(db_region_set(f->db, &r, ACTOR, err, sizeof(err)), 0);
    assert_int_equal(db_failback_hold(f->db, "www/eu-west", true, 1000, "went down"), 0);
    assert_int_equal(db_failback_hold(f->db, "api/eu-west", true, 1000, "went down"), 0);
    assert_int_equal(db_failback_hold(f->db, "www/us-east", true, 1000, "went down"), 0);
    int64_t version = version_of(f->db);
    assert_int_equal(db_region_resume(f->db, "eu-west", "alice", err, sizeof(err)), 0);
    assert_true(version_of(f->db) > version); /* so the daemon reloads the holds */
    struct db_health_row *rows;
    size_t n;
    assert_int_equal(db_failback_holds(f->db, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].object, "www/us-east");
    db_health_free(rows, n);
    struct db_topology *topo = load_ok(f->db);
    assert_int_equal(db_topology_region(topo, "eu-west")->force, DB_FORCE_AUTO);
    db_topology_free(topo);
    struct db_audit_entry *e = audit_newest(f->db);
    assert_string_equal(e->action, "region.resume");
    assert_string_equal(e->actor, "alice");
    db_audit_free(e, 1);
    assert_int_equal(db_region_resume(f->db, "nowhere", "alice", err, sizeof(err)), -ENOENT);
    assert_int_equal(db_failback_hold(f->db, "www/us-east", false, 0, NULL), 0);
    assert_int_equal(db_failback_holds(f->db, &rows, &n), 0);
    assert_int_equal(n, 0);
    db_health_free(rows, n);
}

static void origin_tls_settings_round_trip_and_need_tls(void **state)
{
    struct fixture *f = *state;
    char *doc = doc_with("{\"name\": \"eu-west\", \"lat\": 48.8, \"lon\": 2.3}",
                         "{\"address\": \"10.0.0.5:443\", \"tls\": true, \"tls_name\": "
                         "\"www.example.com\", \"tls_verify\": false}");
    import_ok(f->db, doc);
    free(doc);
    struct db_topology *topo = load_ok(f->db);
    const struct db_origin *o = &topo->services[0].pools[0].origins[0];
    assert_true(o->tls && o->tls_insecure);
    assert_string_equal(o->tls_name, "www.example.com");
    db_topology_free(topo);
    char *text = export_ok(f->db), *again = canonical_ok(text);
    assert_string_equal(text, again);
    assert_non_null(strstr(text, "\"tls_verify\": false"));
    free(text);
    free(again);
    assert_origin_rejected(f, "{\"address\": \"10.0.0.5:443\", \"tls_name\": \"a.example\"}",
                           "origins[0].tls_name");
    assert_origin_rejected(f, "{\"address\": \"10.0.0.5:443\", \"tls_verify\": false}",
                           "origins[0].tls_verify");
    assert_origin_rejected(f,
                           "{\"address\": \"10.0.0.5:443\", \"tls\": true, \"tls_name\": \"a b\"}",
                           "origins[0].tls_name");
    assert_origin_rejected(f, "{\"address\": \"10.0.0.5:443\", \"tls\": \"yes\"}",
                           "origins[0].tls");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(new_file_gets_a_schema_version),
        T(reopening_keeps_data_and_schema_version),
        T(database_file_is_in_wal_mode),
        T(file_from_a_newer_schema_is_refused),
        T(open_in_missing_directory_fails_with_reason),
        T(file_that_is_not_a_database_is_refused),
        T(region_name_with_upper_case_is_rejected),
        T(region_name_with_markup_is_rejected),
        T(region_name_longer_than_63_characters_is_rejected),
        T(latitude_above_90_is_rejected),
        T(longitude_below_minus_180_is_rejected),
        T(address_without_port_is_rejected),
        T(address_with_port_zero_is_rejected),
        T(ipv6_address_without_brackets_is_rejected),
        T(weight_above_1000_is_rejected),
        T(negative_weight_is_rejected),
        T(duplicate_origin_in_a_pool_is_rejected),
        T(check_path_without_slash_is_rejected),
        T(cidr_with_host_bits_is_rejected),
        T(unknown_country_is_rejected),
        T(rule_naming_a_missing_region_is_rejected),
        T(pool_in_a_missing_region_is_rejected),
        T(host_served_by_two_services_is_rejected),
        T(two_pools_in_one_region_are_rejected),
        T(region_defined_twice_is_rejected),
        T(fallback_listing_a_region_twice_is_rejected),
        T(string_with_nul_character_is_rejected),
        T(unknown_key_is_rejected),
        T(string_latitude_is_rejected),
        T(fractional_weight_is_rejected),
        T(non_boolean_sticky_is_rejected),
        T(hosts_that_is_not_an_array_is_rejected),
        T(unknown_policy_is_rejected),
        T(document_that_is_not_an_object_is_rejected),
        T(more_than_256_regions_are_rejected),
        T(json_syntax_error_is_rejected),
        T(duplicate_json_key_is_rejected),
        T(short_form_origins_beside_services_are_rejected),
        T(export_import_export_is_a_fixed_point),
        T(pool_settings_round_trip_and_defaults_stay_out_of_the_export),
        T(pool_settings_out_of_range_are_rejected_by_field),
        T(pool_set_changes_settings_keeps_origins_and_is_audited),
        T(resume_lifts_the_override_and_the_holds_of_its_region_only),
        T(origin_tls_settings_round_trip_and_need_tls),
        T(stored_export_equals_the_models_own_json),
        T(export_writes_defaults_and_normalizes_case),
        T(import_replaces_the_whole_topology),
        T(short_form_imports_as_default_service_for_every_host),
        T(negative_zero_coordinate_exports_like_the_model),
        T(config_version_counts_committed_changes_only),
        T(region_add_stores_the_region),
        T(region_add_of_existing_name_is_eexist),
        T(region_add_with_bad_latitude_is_rejected_and_not_stored),
        T(region_add_with_bad_name_is_rejected),
        T(region_set_replaces_every_field),
        T(region_set_of_missing_region_is_enoent),
        T(region_remove_of_unused_region_removes_it),
        T(region_remove_of_missing_region_is_enoent),
        T(region_remove_of_region_with_a_pool_is_ebusy),
        T(region_remove_of_region_in_a_rule_is_ebusy),
        T(region_remove_of_region_in_a_fallback_is_ebusy),
        T(service_add_stores_own_fields_but_not_pools_or_rules),
        T(service_add_of_existing_name_is_eexist),
        T(service_add_with_a_host_of_another_service_is_rejected),
        T(service_set_keeps_pools_and_rules),
        T(service_set_of_missing_service_is_enoent),
        T(service_remove_removes_its_pools_and_frees_its_regions),
        T(service_remove_of_missing_service_is_enoent),
        T(origin_add_creates_the_pool),
        T(origin_add_to_an_existing_pool_appends),
        T(origin_add_of_existing_address_is_eexist),
        T(origin_add_to_missing_service_or_region_is_enoent),
        T(origin_add_with_bad_address_is_rejected),
        T(origin_set_replaces_the_origin),
        T(origin_set_of_missing_origin_is_enoent),
        T(origin_remove_keeps_the_other_origins),
        T(origin_remove_of_the_last_origin_removes_the_pool),
        T(origin_remove_of_missing_origin_is_enoent),
        T(rule_add_appends_the_rule),
        T(rule_add_with_bad_cidr_is_rejected),
        T(rule_add_without_regions_is_rejected),
        T(rule_remove_shifts_the_later_rules),
        T(rule_remove_past_the_end_is_enoent),
        T(region_edits_are_audited_with_before_and_after),
        T(every_kind_of_change_is_audited_under_its_action),
        T(failed_change_appends_no_audit_entry),
        T(audit_list_pages_newest_first),
        T(setting_get_of_unset_key_is_enoent),
        T(setting_set_then_get_returns_the_latest_value),
        T(setting_with_bad_key_is_rejected),
        T(enum_names_parse_back_to_their_values),
        T(change_through_one_handle_is_visible_through_another),
        T(writers_in_several_processes_all_commit),
        T(kill_during_imports_leaves_one_whole_topology),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

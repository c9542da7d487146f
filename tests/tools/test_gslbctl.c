/* tests/tools/test_gslbctl.c - gslbctl as an operator runs it: the real binary, a real SQLite
 * file, the real GeoLite2 City database. Checks outputs (parsed as JSON), messages and exit
 * codes. The binary comes from $GSLB_BUILD (set by tools/run-tests.sh), default build/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char gslbctl[512], dir[64], db_path[128], geoip_path[512];

struct run {
    int status;
    char *out, *err;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Runs gslbctl --db DB --geoip CITY ARGS... with <input> on stdin; NULL-terminated args. */
static struct run ctl(const char *input, ...)
{
    char in_path[160], out_path[160], err_path[160];
    const char *argv[40] = {gslbctl, "--db", db_path, "--geoip", geoip_path};
    int argc = 5;
    va_list ap;
    va_start(ap, input);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 39;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    snprintf(in_path, sizeof(in_path), "%s/stdin", dir);
    snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
    write_file(in_path, input ? input : "");

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(in_path, "rb", stdin) || !freopen(out_path, "wb", stdout) ||
            !freopen(err_path, "wb", stderr))
            _exit(127);
        execv(gslbctl, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return (struct run){WEXITSTATUS(status), slurp(out_path), slurp(err_path)};
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static const char topology[] =
    "{\"regions\": ["
    "  {\"name\": \"eu-west\", \"lat\": 53.3498, \"lon\": -6.2603},"
    "  {\"name\": \"us-east\", \"lat\": 39.0438, \"lon\": -77.4874},"
    "  {\"name\": \"ap-southeast\", \"lat\": 1.3521, \"lon\": 103.8198}],"
    " \"services\": [{\"name\": \"www\", \"hosts\": [\"www.example.com\", \"*.example.com\"],"
    "  \"pools\": ["
    "   {\"region\": \"eu-west\", \"origins\": [{\"address\": \"10.0.0.5:8080\", \"weight\": 10}]},"
    "   {\"region\": \"us-east\", \"origins\": [{\"address\": \"10.1.0.5:8080\"}]},"
    "   {\"region\": \"ap-southeast\", \"origins\": [{\"address\": \"10.2.0.5:8080\"}]}],"
    "  \"rules\": [{\"match\": {\"country\": \"CN\"}, \"regions\": [\"ap-southeast\"]}]}]}";

static int setup(void **state)
{
    (void)state;
    char topo_path[160];
    strcpy(dir, "/tmp/gslb-ctl-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/gslb.db", dir);
    snprintf(topo_path, sizeof(topo_path), "%s/topology.json", dir);
    write_file(topo_path, topology);
    struct run r = ctl(NULL, "import", topo_path, NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (v == NULL)
        fail_msg("not JSON (%s): %s", e.text, text);
    return v;
}

static const char *jstr(json_t *obj, const char *path)
{
    /* "a.b" walks objects; returns NULL for null or missing. */
    char key[64];
    const char *dot;
    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        obj = json_object_get(obj, key);
        path = dot + 1;
    }
    return json_string_value(json_object_get(obj, path));
}

static void route_sends_a_european_client_to_europe(void **state)
{
    (void)state;
    struct run r = ctl(NULL, "route", "81.2.69.142", "--host", "www.example.com", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = parse(r.out);
    assert_string_equal(jstr(j, "ip"), "81.2.69.142");
    assert_string_equal(jstr(j, "geo.country"), "GB");
    assert_string_equal(jstr(j, "service"), "www");
    assert_string_equal(jstr(j, "region"), "eu-west");
    assert_string_equal(jstr(j, "origin"), "10.0.0.5:8080");
    json_t *cands = json_object_get(j, "candidates");
    assert_int_equal(json_array_size(cands), 3);
    json_t *first = json_array_get(cands, 0);
    assert_string_equal(jstr(first, "region"), "eu-west");
    assert_string_equal(jstr(first, "state"), "up");
    assert_string_equal(jstr(first, "reason"), "nearest");
    double km = json_number_value(json_object_get(first, "distance_km"));
    assert_true(km > 300 && km < 600); /* Gamlingay to Dublin */
    json_decref(j);
    run_free(&r);
}

static void route_follows_rules_and_fails_over_when_a_region_is_drained(void **state)
{
    (void)state;
    /* 8.8.8.8 is American; an IPv6 address of China Telecom hits the CN rule. */
    struct run r = ctl(NULL, "route", "8.8.8.8", "--host", "api.example.com", NULL);
    json_t *j = parse(r.out);
    assert_string_equal(jstr(j, "region"), "us-east");
    json_decref(j);
    run_free(&r);

    r = ctl(NULL, "route", "202.96.128.86", "--host", "www.example.com", NULL);
    j = parse(r.out);
    assert_string_equal(jstr(j, "geo.country"), "CN");
    assert_string_equal(jstr(j, "region"), "ap-southeast");
    assert_string_equal(jstr(json_array_get(json_object_get(j, "candidates"), 0), "reason"),
                        "rule-country #0");
    json_decref(j);
    run_free(&r);

    r = ctl(NULL, "region", "set", "us-east", "--state", "draining", NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);
    r = ctl(NULL, "route", "8.8.8.8", "--host", "www.example.com", NULL);
    j = parse(r.out);
    assert_string_equal(jstr(j, "region"), "eu-west");
    assert_string_equal(jstr(json_array_get(json_object_get(j, "candidates"), 0), "state"),
                        "draining");
    json_decref(j);
    run_free(&r);
}

static void route_reads_addresses_from_stdin_one_json_line_each(void **state)
{
    (void)state;
    struct run r = ctl("81.2.69.142\n8.8.8.8\r\n\nnot-an-address\n2001:4860:4860::8888\n", "route",
                       "-", "--host", "www.example.com", NULL);
    assert_int_equal(r.status, 3); /* one bad line: reported inline, exit status says so */
    char *save = NULL, *line;
    const char *expect[] = {"eu-west", "us-east", NULL, "us-east"};
    int n = 0;
    for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        assert_true(n < 4);
        json_t *j = parse(line);
        if (expect[n])
            assert_string_equal(jstr(j, "region"), expect[n]);
        else
            assert_non_null(jstr(j, "error"));
        json_decref(j);
    }
    assert_int_equal(n, 4);
    run_free(&r);
}

static void unknown_host_and_unlocated_client_are_explained(void **state)
{
    (void)state;
    struct run r = ctl(NULL, "route", "81.2.69.142", "--host", "example.org", NULL);
    json_t *j = parse(r.out);
    assert_true(json_is_null(json_object_get(j, "service")));
    assert_true(json_is_null(json_object_get(j, "region")));
    json_decref(j);
    run_free(&r);

    r = ctl(NULL, "route", "192.168.1.10", "--host", "www.example.com", NULL);
    j = parse(r.out);
    assert_string_equal(jstr(j, "geo.status"), "reserved-range");
    assert_string_equal(jstr(j, "region"), "eu-west"); /* first pool: no location */
    assert_true(json_is_null(
        json_object_get(json_array_get(json_object_get(j, "candidates"), 0), "distance_km")));
    json_decref(j);
    run_free(&r);
}

static void invalid_import_is_refused_naming_the_field_and_changes_nothing(void **state)
{
    (void)state;
    char bad_path[160];
    struct run before = ctl(NULL, "export", NULL);
    snprintf(bad_path, sizeof(bad_path), "%s/bad.json", dir);
    write_file(bad_path, "{\"regions\": [{\"name\": \"eu-west\", \"lat\": 95, \"lon\": 0}]}");
    struct run r = ctl(NULL, "import", bad_path, NULL);
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, "regions[eu-west].lat"));
    struct run after = ctl(NULL, "export", NULL);
    assert_string_equal(before.out, after.out);
    run_free(&r);
    run_free(&before);
    run_free(&after);
}

static void export_import_export_is_a_fixed_point(void **state)
{
    (void)state;
    struct run first = ctl(NULL, "export", NULL);
    assert_int_equal(first.status, 0);
    struct run imp = ctl(first.out, "import", "-", NULL);
    assert_int_equal(imp.status, 0);
    struct run second = ctl(NULL, "export", NULL);
    assert_string_equal(first.out, second.out);
    run_free(&first);
    run_free(&imp);
    run_free(&second);
}

static void edits_report_conflicts_and_missing_objects_by_exit_status(void **state)
{
    (void)state;
    struct run r = ctl(NULL, "region", "add", "sa-east", "--lat", "-23.55", "--lon", "-46.63",
                       "--display-name", "São Paulo", NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);
    r = ctl(NULL, "region", "add", "sa-east", "--lat", "1", "--lon", "1", NULL);
    assert_int_equal(r.status, 5);
    assert_non_null(strstr(r.err, "already exists"));
    run_free(&r);
    r = ctl(NULL, "region", "set", "nowhere", "--lat", "1", NULL);
    assert_int_equal(r.status, 4);
    run_free(&r);
    r = ctl(NULL, "region", "remove", "eu-west", NULL); /* still has a pool */
    assert_int_equal(r.status, 5);
    assert_non_null(strstr(r.err, "services[www]"));
    run_free(&r);
    r = ctl(NULL, "region", "add", "Bad_Name", "--lat", "1", "--lon", "1", NULL);
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, "name"));
    run_free(&r);
    r = ctl(NULL, "origin", "add", "10.9.0.1:80", "--service", "www", "--region", "sa-east",
            "--weight", "5", NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);
    r = ctl(NULL, "origin", "add", "10.9.0.2", "--service", "www", "--region", "sa-east", NULL);
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, "address"));
    run_free(&r);
    r = ctl(NULL, "origin", "list", "--service", "www", NULL);
    assert_non_null(strstr(r.out, "10.9.0.1:80"));
    run_free(&r);
    r = ctl(NULL, "route", "200.160.2.3", "--host", "www.example.com", NULL); /* Brazil */
    json_t *j = parse(r.out);
    assert_string_equal(jstr(j, "region"), "sa-east");
    json_decref(j);
    run_free(&r);
}

static void audit_log_records_who_changed_what(void **state)
{
    (void)state;
    struct run r =
        ctl(NULL, "--actor", "ops:alice", "region", "set", "eu-west", "--lat", "53.0", NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);
    r = ctl(NULL, "audit", "--limit", "1", NULL);
    json_t *j = parse(r.out);
    assert_string_equal(jstr(j, "action"), "region.set");
    assert_string_equal(jstr(j, "object"), "region eu-west");
    assert_true(json_number_value(json_object_get(json_object_get(j, "before"), "lat")) == 53.3498);
    assert_true(json_number_value(json_object_get(json_object_get(j, "after"), "lat")) == 53.0);
    assert_string_equal(jstr(j, "actor"), "ops:alice");
    json_decref(j);
    run_free(&r);

    r = ctl(NULL, "region", "set", "eu-west", "--state", "disabled", NULL);
    run_free(&r);
    r = ctl(NULL, "audit", "--limit", "1", NULL);
    j = parse(r.out);
    assert_string_equal(jstr(j, "after.state"), "disabled");
    assert_non_null(strstr(jstr(j, "actor"), "cli:")); /* default: cli:$USER */
    json_decref(j);
    run_free(&r);
}

static void usage_errors_exit_with_status_two(void **state)
{
    (void)state;
    struct run r = ctl(NULL, "frobnicate", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage"));
    run_free(&r);
    r = ctl(NULL, "region", "add", "x", "--lat", "north", "--lon", "1", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--lat"));
    run_free(&r);
    r = ctl(NULL, "route", "999.1.1.1", NULL);
    assert_int_equal(r.status, 3);
    run_free(&r);
}

int main(void)
{
    const char *build = getenv("GSLB_BUILD");
    const char *geo_dir = getenv("GSLB_GEOIP_DIR");
    snprintf(gslbctl, sizeof(gslbctl), "%s/gslbctl", build && *build ? build : "build");
    snprintf(geoip_path, sizeof(geoip_path), "%s/GeoLite2-City.mmdb",
             geo_dir && *geo_dir ? geo_dir : "data/geoip");
    if (access(gslbctl, X_OK) != 0 || access(geoip_path, R_OK) != 0) {
        printf("not ok 1 - %s or %s missing (run make deps && make)\n", gslbctl, geoip_path);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(route_sends_a_european_client_to_europe, setup, teardown),
        cmocka_unit_test_setup_teardown(route_follows_rules_and_fails_over_when_a_region_is_drained,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(route_reads_addresses_from_stdin_one_json_line_each, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unknown_host_and_unlocated_client_are_explained, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            invalid_import_is_refused_naming_the_field_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(export_import_export_is_a_fixed_point, setup, teardown),
        cmocka_unit_test_setup_teardown(edits_report_conflicts_and_missing_objects_by_exit_status,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(audit_log_records_who_changed_what, setup, teardown),
        cmocka_unit_test_setup_teardown(usage_errors_exit_with_status_two, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

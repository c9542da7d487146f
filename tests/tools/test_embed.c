/* tests/tools/test_embed.c - the console's files as gslbd carries them: admin_assets[] (generated
 * by tools/embed at build time, linked in through libgslb.a) against the files on disk, and the
 * embed program itself on files it has never seen. The program comes from $GSLB_BUILD (set by
 * tools/run-tests.sh), default build/. Runs from the repository root, like every test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin_int.h"

static const struct admin_asset *find(const char *path)
{
    for (size_t i = 0; i < admin_n_assets; i++)
        if (strcmp(admin_assets[i].path, path) == 0)
            return &admin_assets[i];
    return NULL;
}

/* The asset at <path>; the test fails when there is none. */
static const struct admin_asset *must(const char *path)
{
    const struct admin_asset *a = find(path);
    if (!a) {
        fail_msg("%s is not embedded", path);
        abort(); /* not reached: fail_msg() does not return */
    }
    return a;
}

/* Reads <path> whole; returns its size in <size_out>. The caller frees. */
static unsigned char *slurp(const char *path, size_t *size_out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    unsigned char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *size_out = (size_t)len;
    return buf;
}

static void every_console_file_is_embedded_byte_for_byte(void **state)
{
    (void)state;
    DIR *d = opendir("admin/console");
    assert_non_null(d);
    size_t seen = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char file[512], url[300];
        snprintf(file, sizeof(file), "admin/console/%s", e->d_name);
        snprintf(url, sizeof(url), "/%s", e->d_name);
        const struct admin_asset *a = must(url);
        size_t size;
        unsigned char *bytes = slurp(file, &size);
        assert_int_equal(a->size, size);
        assert_memory_equal(a->data, bytes, size);
        free(bytes);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 3); /* index.html, app.css, app.js at least */
    if (access("admin/openapi.json", R_OK) == 0)
        assert_non_null(find("/openapi.json"));
}

static void content_types_follow_the_extension(void **state)
{
    (void)state;
    assert_string_equal(must("/index.html")->content_type, "text/html; charset=utf-8");
    assert_string_equal(must("/app.js")->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(must("/app.css")->content_type, "text/css; charset=utf-8");
    const struct admin_asset *svg = find("/favicon.svg"), *api = find("/openapi.json");
    if (svg)
        assert_string_equal(svg->content_type, "image/svg+xml");
    if (api)
        assert_string_equal(api->content_type, "application/json");
}

static void etags_are_quoted_hashes_distinct_per_content(void **state)
{
    (void)state;
    for (size_t i = 0; i < admin_n_assets; i++) {
        const char *t = admin_assets[i].etag;
        assert_int_equal(strlen(t), 18);
        assert_true(t[0] == '"' && t[17] == '"');
        assert_int_equal(strspn(t + 1, "0123456789abcdef"), 16);
        for (size_t j = 0; j < i; j++)
            if (admin_assets[j].size != admin_assets[i].size ||
                memcmp(admin_assets[j].data, admin_assets[i].data, admin_assets[i].size) != 0)
                assert_string_not_equal(admin_assets[j].etag, t);
    }
}

/* Runs <cmd> through the shell; returns its exit status. */
static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void the_generator_handles_unknown_and_empty_files_and_refuses_bad_paths(void **state)
{
    (void)state;
    const char *build = getenv("GSLB_BUILD") ? getenv("GSLB_BUILD") : "build";
    char dir[] = "/tmp/gslb-embed-XXXXXX", cmd[2048], out[128];
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "printf 'abc' >%s/blob.bin && : >%s/empty.txt && %s/tools/embed %s/out.c "
             "%s/blob.bin=/blob.bin %s/empty.txt=/empty.txt",
             dir, dir, build, dir, dir, dir);
    assert_int_equal(sh(cmd), 0);
    snprintf(out, sizeof(out), "%s/out.c", dir);
    size_t size;
    char *c = (char *)slurp(out, &size);
    c = realloc(c, size + 1);
    c[size] = '\0';
    assert_non_null(strstr(c, "{\"/blob.bin\", \"application/octet-stream\", asset_0, 3, "));
    assert_non_null(strstr(c, "{\"/empty.txt\", \"text/plain; charset=utf-8\", asset_1, 0, "));
    assert_non_null(strstr(c, "97,98,99,")); /* the bytes of "abc" */
    assert_non_null(strstr(c, "const size_t admin_n_assets = 2;"));
    free(c);
    /* Paths outside the safe alphabet, duplicates and missing files are refused, and no
     * half-written output is left behind. */
    const char *bad[] = {"/x y", "/../etc", "relative", "/a//b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(cmd, sizeof(cmd), "%s/tools/embed %s/bad.c '%s/blob.bin=%s' 2>/dev/null", build,
                 dir, dir, bad[i]);
        assert_int_equal(sh(cmd), 1);
    }
    snprintf(cmd, sizeof(cmd), "%s/tools/embed %s/bad.c %s/blob.bin=/a %s/blob.bin=/a 2>/dev/null",
             build, dir, dir, dir);
    assert_int_equal(sh(cmd), 1);
    snprintf(cmd, sizeof(cmd), "%s/tools/embed %s/bad.c %s/missing=/missing 2>/dev/null", build,
             dir, dir);
    assert_int_equal(sh(cmd), 1);
    snprintf(out, sizeof(out), "%s/bad.c", dir);
    assert_int_not_equal(access(out, F_OK), 0);
    snprintf(cmd, sizeof(cmd), "%s/bad.c.tmp", dir);
    assert_int_not_equal(access(cmd, F_OK), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(sh(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_console_file_is_embedded_byte_for_byte),
        cmocka_unit_test(content_types_follow_the_extension),
        cmocka_unit_test(etags_are_quoted_hashes_distinct_per_content),
        cmocka_unit_test(the_generator_handles_unknown_and_empty_files_and_refuses_bad_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

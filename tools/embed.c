/* tools/embed.c - turns the admin console's static files into C: writes a source file defining
 * admin_assets[] and admin_n_assets (struct admin_asset, admin/admin_int.h), so gslbd serves its
 * console from the binary with no file on disk and nothing fetched from elsewhere.
 *
 * usage: embed OUT.c FILE=URLPATH...   (e.g. admin/console/app.js=/app.js)
 *
 * Runs at build time only. The content type comes from the file name's extension, the ETag from
 * a 64-bit FNV-1a hash of the bytes (strong: same bytes, same tag, whatever the build). The output
 * is written to OUT.c.tmp and renamed, so an interrupted build never leaves half a file that make
 * would take as up to date. Assets stay small (the whole console is a few hundred KiB), so each
 * file is read whole. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMBED_MAX_SIZE (16u << 20) /* a larger "asset" is a mistake in the file list */

struct type_by_ext {
    const char *ext;
    const char *type;
};

static const struct type_by_ext types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".webmanifest", "application/manifest+json"},
};

/* The content type for <path> by its extension; application/octet-stream when unknown. */
static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static uint64_t fnv1a64(const unsigned char *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < size; i++) {
        h ^= data[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* A URL path is served as is and written into C strings: keep it to a safe alphabet. */
static int url_path_ok(const char *url)
{
    if (url[0] != '/' || strstr(url, "//") || strstr(url, "/."))
        return 0;
    for (const char *p = url + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_' || *p == '/'))
            return 0;
    return 1;
}

/* Reads all of <path> into a malloc'ed buffer (the caller frees it); NULL with errno on failure. */
static unsigned char *read_file(const char *path, size_t *size_out)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t size = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (size == cap) {
            unsigned char *grown;
            cap = cap ? cap * 2 : 65536;
            if (cap > EMBED_MAX_SIZE || !(grown = realloc(buf, cap))) {
                errno = cap > EMBED_MAX_SIZE ? EFBIG : ENOMEM;
                goto fail;
            }
            buf = grown;
        }
        size_t n = fread(buf + size, 1, cap - size, f);
        size += n;
        if (n == 0) {
            if (ferror(f))
                goto fail;
            break;
        }
    }
    fclose(f);
    *size_out = size;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

static int write_asset(FILE *out, size_t index, const unsigned char *data, size_t size)
{
    fprintf(out, "static const unsigned char asset_%zu[%zu] = {", index, size ? size : 1);
    for (size_t i = 0; i < size; i++)
        fprintf(out, "%s%u,", i % 20 == 0 ? "\n    " : "", data[i]);
    if (size == 0)
        fputs("0", out);
    return fputs("\n};\n\n", out) == EOF ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: embed OUT.c FILE=URLPATH...\n");
        return 2;
    }
    const char *out_path = argv[1];
    size_t n = (size_t)argc - 2;
    char tmp_path[4096];
    if (snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", out_path) >= (int)sizeof(tmp_path)) {
        fprintf(stderr, "embed: %s: path too long\n", out_path);
        return 1;
    }
    char **files = calloc(n ? n : 1, sizeof(*files));
    const char **urls = calloc(n ? n : 1, sizeof(*urls));
    uint64_t *hashes = calloc(n ? n : 1, sizeof(*hashes));
    size_t *sizes = calloc(n ? n : 1, sizeof(*sizes));
    FILE *out = NULL;
    int rc = 1;
    if (!files || !urls || !hashes || !sizes) {
        fprintf(stderr, "embed: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char *eq = strrchr(argv[i + 2], '=');
        if (!eq || eq == argv[i + 2] || !url_path_ok(eq + 1)) {
            fprintf(stderr, "embed: %s: expected FILE=/url-path with [A-Za-z0-9._/-]\n",
                    argv[i + 2]);
            goto done;
        }
        files[i] = strndup(argv[i + 2], (size_t)(eq - argv[i + 2]));
        urls[i] = eq + 1;
        if (!files[i]) {
            fprintf(stderr, "embed: out of memory\n");
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(urls[i], urls[j]) == 0) {
                fprintf(stderr, "embed: %s is given twice\n", urls[i]);
                goto done;
            }
    }
    if (!(out = fopen(tmp_path, "w"))) {
        fprintf(stderr, "embed: %s: %s\n", tmp_path, strerror(errno));
        goto done;
    }
    fputs("/* Generated by tools/embed from the admin console's files: do not edit. */\n"
          "#include \"admin/admin_int.h\"\n\n",
          out);
    for (size_t i = 0; i < n; i++) {
        size_t size = 0;
        unsigned char *data = read_file(files[i], &size);
        if (!data) {
            fprintf(stderr, "embed: %s: %s\n", files[i], strerror(errno));
            goto done;
        }
        hashes[i] = fnv1a64(data, size);
        sizes[i] = size;
        int wrc = write_asset(out, i, data, size);
        free(data);
        if (wrc != 0)
            break;
    }
    fprintf(out, "const struct admin_asset admin_assets[] = {\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "    {\"%s\", \"%s\", asset_%zu, %zu, \"\\\"%016llx\\\"\"},\n", urls[i],
                content_type(urls[i]), i, sizes[i], (unsigned long long)hashes[i]);
    if (n == 0)
        fputs("    {0},\n", out); /* C forbids an empty array; admin_n_assets stays 0 */
    fprintf(out, "};\n\nconst size_t admin_n_assets = %zu;\n", n);
    if (ferror(out) | (fclose(out) != 0)) {
        out = NULL;
        fprintf(stderr, "embed: writing %s failed\n", tmp_path);
        goto done;
    }
    out = NULL;
    if (rename(tmp_path, out_path) != 0) {
        fprintf(stderr, "embed: %s: %s\n", out_path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (out)
        fclose(out);
    if (rc != 0)
        remove(tmp_path);
    for (size_t i = 0; files && i < n; i++)
        free(files[i]);
    free(files);
    free(urls);
    free(hashes);
    free(sizes);
    return rc;
}

/* admin/admin_int.h - internals shared by the files of the admin module (server, router, auth,
 * handlers, OpenAPI). Nothing outside admin/ includes this header.
 *
 * The console's static files (admin/console/*, and admin/openapi.json) are compiled into the
 * binary by a generator that writes $(BUILD)/admin/assets.c, defining admin_assets[] and
 * admin_n_assets with the struct below. */
#ifndef ADMIN_ADMIN_INT_H
#define ADMIN_ADMIN_INT_H

#include <stddef.h>

/* One embedded file, served as is. */
struct admin_asset {
    const char *path;         /* "/index.html": absolute, as requested */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t size;
    const char *etag; /* quoted strong ETag, e.g. "\"3f2a...\"" */
};

extern const struct admin_asset admin_assets[];
extern const size_t admin_n_assets;

#endif

/* common/xalloc.h - allocation that cannot fail: out of memory aborts in one place.
 *
 * Callers never check the result for NULL (as in h2o, Redis and gdnsd): an appliance that cannot
 * allocate a few bytes cannot do anything useful, and one abort is easier to reason about than
 * thousands of untested error paths. */
#ifndef COMMON_XALLOC_H
#define COMMON_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows <ptr> to hold <count> elements of <size> bytes, checking the multiplication. */
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

#endif

/* common/sbuf.h - a growable byte string for assembling messages without printf.
 *
 * The proxy builds every forwarded head with it: a handful of memcpy calls instead of a format
 * string parsed per header. The caller owns <p> (free it, or take it over). */
#ifndef COMMON_SBUF_H
#define COMMON_SBUF_H

#include <stddef.h>
#include <stdint.h>

struct sbuf {
    char *p;
    size_t len, cap;
};

void sbuf_add(struct sbuf *b, const void *data, size_t len);
/* A string literal, its length known at compile time. */
#define SBUF_LIT(b, text) sbuf_add((b), (text), sizeof(text) - 1)
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_add_uint(struct sbuf *b, uint64_t value);
void sbuf_add_hex(struct sbuf *b, uint64_t value);
/* "name: value\r\n" */
void sbuf_add_header(struct sbuf *b, const char *name, size_t name_len, const char *value,
                     size_t value_len);

#endif

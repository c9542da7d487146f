/* common/sbuf.c - see sbuf.h. */
#include <string.h>

#include "common/sbuf.h"
#include "common/xalloc.h"

static void reserve(struct sbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void sbuf_add(struct sbuf *b, const void *data, size_t len)
{
    if (len == 0) /* <data> may be NULL then (an empty text never allocated) */
        return;
    reserve(b, len);
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

void sbuf_adds(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

void sbuf_add_uint(struct sbuf *b, uint64_t value)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[sizeof(digits) - ++n] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    sbuf_add(b, digits + sizeof(digits) - n, n);
}

void sbuf_add_hex(struct sbuf *b, uint64_t value)
{
    static const char hex[] = "0123456789abcdef";
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof(digits) - ++n] = hex[value & 15];
        value >>= 4;
    } while (value);
    sbuf_add(b, digits + sizeof(digits) - n, n);
}

void sbuf_add_header(struct sbuf *b, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    reserve(b, name_len + value_len + 4);
    char *p = b->p + b->len;
    memcpy(p, name, name_len);
    p += name_len;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, value_len);
    p += value_len;
    *p++ = '\r';
    *p++ = '\n';
    b->len = (size_t)(p - b->p);
}

/* proxy/headers.c - a message head as llhttp delivers it, and the rules for forwarding it.
 *
 * llhttp hands names and values over in pieces (split wherever a read ended), so the head keeps
 * one text buffer and offsets into it. Its limits are what turn an oversized head into a 431.
 * Obs-fold (a value continued on the next line), which llhttp 8 accepts in its loose mode, is
 * caught here too, whatever the parser's mode; whitespace between a name and its colon, and any
 * other character a name may not have, strict llhttp refuses itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/xalloc.h"
#include "proxy/proxy_int.h"

void head_limit(struct head *h, size_t max_bytes, int max_headers)
{
    h->max = max_bytes;
    h->max_headers = max_headers;
}

void head_reset(struct head *h)
{
    /* Keep small buffers for the next message on the connection; drop big ones. */
    if (h->cap > 4096) {
        free(h->text);
        h->text = NULL;
        h->cap = 0;
    }
    if (h->headers_cap > 32) {
        free(h->headers);
        h->headers = NULL;
        h->headers_cap = 0;
    }
    h->len = 0;
    h->n_headers = 0;
    h->url = h->url_len = h->reason = h->reason_len = 0;
    h->state = HEAD_IDLE;
    h->too_large = h->too_many = h->folded = h->connection_close = h->connection_names = false;
    h->value_ran_to_end = false;
}

void head_fini(struct head *h)
{
    free(h->text);
    free(h->headers);
    memset(h, 0, sizeof(*h));
}

static bool text_append(struct head *h, const char *at, size_t len)
{
    if (len == 0) /* llhttp may report an empty span; the text may not exist yet */
        return true;
    if (h->len + len > h->max) {
        h->too_large = true;
        return false;
    }
    if (h->len + len > h->cap) {
        size_t cap = h->cap ? h->cap : 512;
        while (cap < h->len + len)
            cap *= 2;
        h->text = xrealloc(h->text, cap);
        h->cap = cap;
    }
    memcpy(h->text + h->len, at, len);
    h->len += len;
    return true;
}

bool head_append(struct head *h, int what, const char *at, size_t len, unsigned edges)
{
    struct header *hd;
    switch (what) {
    case HEAD_PART_URL:
        if (h->url_len == 0)
            h->url = (uint32_t)h->len;
        h->url_len += (uint32_t)len;
        return text_append(h, at, len);
    case HEAD_PART_REASON:
        if (h->reason_len == 0)
            h->reason = (uint32_t)h->len;
        h->reason_len += (uint32_t)len;
        return text_append(h, at, len);
    case HEAD_PART_NAME:
        if (h->state != HEAD_FIELD) {
            if (h->n_headers >= h->max_headers) {
                h->too_many = true;
                return false;
            }
            if (h->n_headers == h->headers_cap) {
                h->headers_cap = h->headers_cap ? h->headers_cap * 2 : 16;
                h->headers = xreallocarray(h->headers, (size_t)h->headers_cap, sizeof(*h->headers));
            }
            hd = &h->headers[h->n_headers++];
            memset(hd, 0, sizeof(*hd));
            hd->name = (uint32_t)h->len;
            h->state = HEAD_FIELD;
        }
        hd = &h->headers[h->n_headers - 1];
        hd->name_len += (uint32_t)len;
        return text_append(h, at, len);
    default: /* HEAD_PART_VALUE */
        if (h->n_headers == 0)
            return false;
        hd = &h->headers[h->n_headers - 1];
        if (h->state == HEAD_VALUE_DONE ||
            (h->state == HEAD_VALUE && !((edges & HEAD_STARTS_READ) && h->value_ran_to_end))) {
            /* A second piece of a value that does not go on where the last one ended, at the end
             * of a read: the value went on after a line break (obs-fold), which RFC 9112 lets us
             * refuse. (A fold at the start of a read once passed for a value split by reads.) */
            h->folded = true;
            return false;
        }
        h->value_ran_to_end = (edges & HEAD_ENDS_READ) != 0;
        if (h->state != HEAD_VALUE) {
            hd->value = (uint32_t)h->len;
            h->state = HEAD_VALUE;
        }
        hd->value_len += (uint32_t)len;
        return text_append(h, at, len);
    }
}

void head_add_list(struct sbuf *out, const struct head *h, enum header_id id, int n)
{
    for (int i = 0; n > 0 && i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        if (hd->id == id) {
            n--;
            if (hd->value_len > 0) {
                sbuf_add(out, h->text + hd->value, hd->value_len);
                SBUF_LIT(out, ", ");
            }
        }
    }
}

void head_add_via(struct sbuf *out, const struct head *h, int n, int minor)
{
    SBUF_LIT(out, "Via: ");
    head_add_list(out, h, H_VIA, n);
    if (minor == 0)
        SBUF_LIT(out, "1.0 gslb\r\n");
    else
        SBUF_LIT(out, "1.1 gslb\r\n");
}

static bool token_is(const char *token, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(token, name, len) == 0;
}

/* The next element of the comma-separated list value[0..len) from <*pos> on, without the
 * whitespace around it, in <*element> and <*element_len>; false at the end of the list. */
static bool list_next(const char *value, size_t len, size_t *pos, const char **element,
                      size_t *element_len)
{
    size_t i = *pos;
    for (;;) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        if (i >= len) {
            *pos = i;
            return false;
        }
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end > start) {
            *pos = i;
            *element = value + start;
            *element_len = end - start;
            return true;
        }
    }
}

/* Notes what a Connection header names beyond the usual options, which name nothing the fixed
 * hop-by-hop list does not already cover ("close" names a header only if one has that name). */
static void connection_note(struct head *h, const char *value, size_t len)
{
    size_t pos = 0, token_len;
    const char *token;
    while (list_next(value, len, &pos, &token, &token_len)) {
        if (token_is(token, token_len, "close"))
            h->connection_close = true;
        else if (!token_is(token, token_len, "keep-alive") &&
                 !token_is(token, token_len, "upgrade"))
            h->connection_names = true;
    }
}

/* Whether name[0..len) is <lower> (lower-case letters and '-', as long) in any case, eight bytes
 * at a time: OR 0x20 lowers a letter and keeps '-'. Of the other bytes only CR becomes '-': a
 * name with one is refused (head_check_chars()) before its head is used, and the one id read
 * before that, Connection's, has no '-' to mistake. */
static bool name_is(const char *name, const char *lower, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t a, b;
        memcpy(&a, name + i, 8);
        memcpy(&b, lower + i, 8);
        if ((a | 0x2020202020202020u) != b)
            return false;
    }
    for (; i < len; i++) {
        if (((unsigned char)name[i] | 0x20) != (unsigned char)lower[i])
            return false;
    }
    return true;
}

#define NAME_IS(name, literal) name_is((name), (literal), sizeof(literal) - 1)

bool head_name_is(const struct head *h, const struct header *hd, const char *name, size_t len)
{
    return hd->name_len == len && strncasecmp(h->text + hd->name, name, len) == 0;
}

static enum header_id header_id_of(const char *name, size_t len);

bool header_name_is_known(const char *name, size_t len)
{
    return header_id_of(name, len) != H_OTHER;
}

/* Which of the names the proxy acts on name[0..len) is: Proxy-* by its prefix, the others by
 * their length first, so that a name costs a compare or two. */
static enum header_id header_id_of(const char *name, size_t len)
{
    if (len >= 6 && NAME_IS(name, "proxy-")) /* but RFC 9209's Proxy-Status, end to end */
        return len == 12 && NAME_IS(name + 6, "status") ? H_OTHER : H_PROXY;
    switch (len) {
    case 2:
        return NAME_IS(name, "te") ? H_TE : H_OTHER;
    case 3:
        return NAME_IS(name, "via") ? H_VIA : H_OTHER;
    case 4:
        return NAME_IS(name, "host") ? H_HOST : NAME_IS(name, "date") ? H_DATE : H_OTHER;
    case 6:
        return NAME_IS(name, "expect") ? H_EXPECT : H_OTHER;
    case 7:
        return NAME_IS(name, "upgrade")   ? H_UPGRADE
               : NAME_IS(name, "trailer") ? H_TRAILER
                                          : H_OTHER;
    case 8:
        return NAME_IS(name, "location") ? H_LOCATION : H_OTHER;
    case 9:
        return NAME_IS(name, "forwarded") ? H_FORWARDED : H_OTHER;
    case 10:
        return NAME_IS(name, "connection")   ? H_CONNECTION
               : NAME_IS(name, "keep-alive") ? H_KEEP_ALIVE
                                             : H_OTHER;
    case 12:
        return NAME_IS(name, "max-forwards") ? H_MAX_FORWARDS : H_OTHER;
    case 14:
        return NAME_IS(name, "content-length") ? H_CONTENT_LENGTH : H_OTHER;
    case 15:
        return NAME_IS(name, "x-forwarded-for") ? H_X_FORWARDED_FOR : H_OTHER;
    case 16:
        return NAME_IS(name, "x-forwarded-host")   ? H_X_FORWARDED_HOST
               : NAME_IS(name, "content-location") ? H_CONTENT_LOCATION
                                                   : H_OTHER;
    case 17:
        return NAME_IS(name, "transfer-encoding")   ? H_TRANSFER_ENCODING
               : NAME_IS(name, "x-forwarded-proto") ? H_X_FORWARDED_PROTO
                                                    : H_OTHER;
    default:
        return H_OTHER;
    }
}

void head_value_complete(struct head *h)
{
    h->state = HEAD_VALUE_DONE;
    if (h->n_headers == 0)
        return;
    struct header *hd = &h->headers[h->n_headers - 1];
    /* Whitespace around a value is no part of it (RFC 9110 5.5); llhttp 8 keeps what trails. */
    while (hd->value_len > 0 && (h->text[hd->value + hd->value_len - 1] == ' ' ||
                                 h->text[hd->value + hd->value_len - 1] == '\t'))
        hd->value_len--;
    /* An empty name (refused later) may come before the head has stored any text at all. */
    hd->id = hd->name_len > 0 ? header_id_of(h->text + hd->name, hd->name_len) : H_OTHER;
    if (hd->id == H_CONNECTION)
        connection_note(h, h->text + hd->value, hd->value_len);
}

bool head_keeps_alive(const struct head *h, const llhttp_t *parser)
{
    return !h->connection_close && llhttp_should_keep_alive(parser);
}

const char *head_get(const struct head *h, enum header_id id, size_t *len_out, int *count_out)
{
    const char *found = NULL;
    int count = 0;
    for (int i = 0; i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        if (hd->id == id) {
            count++;
            found = h->text + hd->value;
            *len_out = hd->value_len;
        }
    }
    if (count_out)
        *count_out = count;
    return found;
}

/* Whether <token> is one of the comma-separated elements of value[0..len). */
static bool list_has_token(const char *value, size_t len, const char *token, size_t token_len)
{
    size_t pos = 0, element_len;
    const char *element;
    while (list_next(value, len, &pos, &element, &element_len)) {
        if (element_len == token_len && strncasecmp(element, token, token_len) == 0)
            return true;
    }
    return false;
}

bool head_has_token(const struct head *h, enum header_id id, const char *token)
{
    for (int i = 0; i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        if (hd->id == id &&
            list_has_token(h->text + hd->value, hd->value_len, token, strlen(token)))
            return true;
    }
    return false;
}

bool head_list_all_are(const struct head *h, enum header_id id, const char *token, bool *seen)
{
    size_t token_len = strlen(token), element_len;
    const char *element;
    *seen = false;
    for (int i = 0; i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        if (hd->id != id)
            continue;
        size_t pos = 0;
        while (list_next(h->text + hd->value, hd->value_len, &pos, &element, &element_len)) {
            if (element_len != token_len || strncasecmp(element, token, token_len) != 0)
                return false;
            *seen = true;
        }
    }
    return true;
}

bool head_list_is_only(const struct head *h, enum header_id id, const char *token)
{
    int elements = 0;
    for (int i = 0; i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        if (hd->id != id)
            continue;
        const char *v = h->text + hd->value;
        for (uint32_t k = 0; k < hd->value_len; k++) {
            if (v[k] == ',')
                elements++;
        }
        elements++;
        if (!list_has_token(v, hd->value_len, token, strlen(token)))
            return false;
    }
    return elements == 1;
}

/* RFC 9110 tchar: the characters a header name or a method may use. */
static const bool tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,  ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,  ['v'] = 1, ['w'] = 1,
    ['x'] = 1, ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,  ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1,
    ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,  ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

size_t token_span(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && tchar[(unsigned char)s[n]])
        n++;
    return n;
}

static bool name_is_token(const struct head *h, const struct header *hd)
{
    return hd->name_len > 0 && token_span(h->text + hd->name, hd->name_len) == hd->name_len;
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

const char *head_check_chars(const struct head *h)
{
    bool in_query = false;
    for (uint32_t k = 0; k < h->url_len; k++) { /* URI characters, no fragment: RFC 9112 3.2 */
        const char *url = h->text + h->url;     /* a head with no text yet has no target either */
        unsigned char ch = (unsigned char)url[k];
        if (ch <= 0x20 || ch >= 0x7f || ch == '#')
            return "invalid character in the request target";
        /* A path's '%' starts two hex digits (RFC 3986 2.1), which an origin decodes: anything
         * else is read differently by different servers. A query's is left to the origin, as
         * nginx leaves it (forms and old clients send a bare '%' there). */
        in_query = in_query || ch == '?';
        if (ch == '%' && !in_query &&
            (k + 2 >= h->url_len || !is_hex(url[k + 1]) || !is_hex(url[k + 2])))
            return "invalid percent-encoding in the request target's path";
    }
    for (uint32_t k = 0; k < h->reason_len; k++) { /* HTAB, SP, VCHAR, obs-text: RFC 9112 4 */
        unsigned char ch = (unsigned char)h->text[h->reason + k];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return "invalid character in the status reason";
    }
    /* llhttp refuses a name with anything but token characters, in heads and trailers alike
     * (tests/proxy: refuses_header_names_that_are_no_tokens), but not an empty one. */
    for (int i = 0; i < h->n_headers; i++) {
        if (h->headers[i].name_len == 0)
            return "empty header name";
    }
    return NULL;
}

bool head_is_hop_by_hop(const struct head *h, const struct header *hd)
{
    switch (hd->id) {
    case H_CONNECTION:
    case H_KEEP_ALIVE:
    case H_PROXY:
    case H_TE:
    case H_TRAILER:
    case H_TRANSFER_ENCODING:
    case H_UPGRADE:
        return true;
    case H_OTHER:
        break;
    default: /* a field the proxy acts on (framing, routing, forwarding) is never a connection
              * option (RFC 9110 7.6.1): "Connection: Content-Length" must not unframe a body */
        return false;
    }
    const char *name = h->text + hd->name;
    if (h->connection_close && hd->name_len == 5 && NAME_IS(name, "close"))
        return true;
    /* And whatever else Connection names. */
    for (int i = 0; h->connection_names && i < h->n_headers; i++) {
        const struct header *c = &h->headers[i];
        if (c->id == H_CONNECTION &&
            list_has_token(h->text + c->value, c->value_len, name, hd->name_len))
            return true;
    }
    return false;
}

/* Whether <hd>'s name is name[0..len) (any case) once each of its '_' is read as '-'. */
static bool name_reads_as(const struct head *h, const struct header *hd, const char *name,
                          size_t len)
{
    if (hd->name_len != len || len == 0)
        return false;
    const char *s = h->text + hd->name;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i] == '_' ? '-' : s[i];
        if ((ch | 0x20) != (name[i] | 0x20))
            return false;
    }
    return true;
}

#define READS_AS(h, hd, literal) name_reads_as((h), (hd), (literal), sizeof(literal) - 1)

bool head_is_set_for_origin(const struct head *h, const struct header *hd,
                            const struct proxy_config *cfg)
{
    if (hd->id != H_OTHER)
        return false;
    return READS_AS(h, hd, "X-Forwarded-For") || READS_AS(h, hd, "X-Forwarded-Proto") ||
           READS_AS(h, hd, "X-Forwarded-Host") ||
           name_reads_as(h, hd, cfg->client_ip_header, strlen(cfg->client_ip_header)) ||
           name_reads_as(h, hd, cfg->request_id_header, strlen(cfg->request_id_header));
}

bool head_add_trailers(struct sbuf *out, const struct head *h, int first,
                       const struct proxy_config *to_origin)
{
    for (int i = first; i < h->n_headers; i++) {
        if (!name_is_token(h, &h->headers[i]))
            return false;
    }
    for (int i = first; i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        if (hd->id == H_OTHER && !head_is_hop_by_hop(h, hd) &&
            !(to_origin && head_is_set_for_origin(h, hd, to_origin)))
            sbuf_add_header(out, h->text + hd->name, hd->name_len, h->text + hd->value,
                            hd->value_len);
    }
    return true;
}

size_t http_date(time_t t, char *out, size_t cap)
{
    /* Formatted once per second and thread, as nginx keeps its time strings: a response without
     * a Date of its origin's would otherwise cost a gmtime_r() and a strftime(). */
    static _Thread_local time_t cached_t = -1;
    static _Thread_local char cached[40];
    static _Thread_local size_t cached_len;
    if (t != cached_t) {
        struct tm tm;
        gmtime_r(&t, &tm);
        cached_len = strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_t = t;
    }
    if (cached_len == 0 || cached_len >= cap)
        return 0;
    memcpy(out, cached, cached_len + 1);
    return cached_len;
}

/* Whether <authority> (from an absolute URL the origin sent) names the origin at <address>
 * (host:port as configured): the same text, or the host alone when the port is the scheme's. */
static bool authority_is_origin(const char *authority, size_t len, const char *address, bool https)
{
    size_t addr_len = strlen(address);
    if (len == addr_len && strncasecmp(authority, address, len) == 0)
        return true;
    const char *colon = strrchr(address, ':');
    size_t host_len = (size_t)(colon - address);
    return len == host_len && strncasecmp(authority, address, len) == 0 &&
           strcmp(colon + 1, https ? "443" : "80") == 0;
}

bool location_rewrite(const char *value, size_t len, const char *origin_address,
                      const char *client_host, bool https, struct sbuf *out)
{
    /* http://, https://, or // (a network-path reference, the scheme the request's) */
    size_t scheme_len = len >= 7 && strncasecmp(value, "http://", 7) == 0    ? 7
                        : len >= 8 && strncasecmp(value, "https://", 8) == 0 ? 8
                        : len >= 2 && value[0] == '/' && value[1] == '/'     ? 2
                                                                             : 0;
    if (scheme_len == 0)
        return false;
    const char *authority = value + scheme_len;
    size_t authority_len = 0; /* the value is not NUL-terminated: scan within it */
    while (authority_len < len - scheme_len && !strchr("/?#", authority[authority_len]))
        authority_len++;
    if (!authority_is_origin(authority, authority_len, origin_address, scheme_len == 8) &&
        !(scheme_len == 2 && authority_is_origin(authority, authority_len, origin_address, true)))
        return false;
    const char *rest = authority + authority_len;
    size_t rest_len = len - scheme_len - authority_len;
    if (client_host[0] == '\0') { /* none asked for (HTTP/1.0): a path alone (RFC 9110 10.2.2) */
        if (rest_len == 0 || rest[0] != '/')
            sbuf_add(out, "/", 1);
    } else { /* where the client reached us: its scheme, the host it asked for */
        sbuf_adds(out, scheme_len == 2 ? "//" : https ? "https://" : "http://");
        sbuf_adds(out, client_host);
    }
    sbuf_add(out, rest, rest_len);
    return true;
}

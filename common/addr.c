/* common/addr.c - see addr.h. inet_pton/inet_ntop do the text work; the rest is byte arithmetic. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/addr.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int ip_addr_parse(const char *text, struct ip_addr *addr_out)
{
    memset(addr_out, 0, sizeof(*addr_out));
    if (inet_pton(AF_INET, text, addr_out->bytes) == 1) {
        addr_out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, addr_out->bytes) == 1) {
        addr_out->family = AF_INET6;
        return 0;
    }
    return -EINVAL;
}

int ip_addr_parse_v4(const char *text, size_t len, struct ip_addr *addr_out)
{
    uint8_t bytes[4];
    size_t at = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && (at >= len || text[at++] != '.'))
            return -EINVAL;
        size_t start = at;
        unsigned value = 0;
        while (at < len && at - start < 4 && text[at] >= '0' && text[at] <= '9')
            value = value * 10 + (unsigned)(text[at++] - '0');
        if (at == start || value > 255 || (text[start] == '0' && at - start > 1))
            return -EINVAL;
        bytes[part] = (uint8_t)value;
    }
    if (at != len)
        return -EINVAL;
    memset(addr_out, 0, sizeof(*addr_out));
    addr_out->family = AF_INET;
    memcpy(addr_out->bytes, bytes, 4);
    return 0;
}

int ip_addr_from_sockaddr(const struct sockaddr *sa, struct ip_addr *addr_out)
{
    memset(addr_out, 0, sizeof(*addr_out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        addr_out->family = AF_INET;
        memcpy(addr_out->bytes, &sin->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        addr_out->family = AF_INET6;
        memcpy(addr_out->bytes, &sin6->sin6_addr, 16);
        return 0;
    }
    return -EAFNOSUPPORT;
}

size_t ip_addr_to_sockaddr(const struct ip_addr *addr, uint16_t port, void *ss)
{
    memset(ss, 0, sizeof(struct sockaddr_storage));
    if (addr->family == AF_INET) {
        struct sockaddr_in *sin = ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr->bytes, 4);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(&sin6->sin6_addr, addr->bytes, 16);
    return sizeof(*sin6);
}

void ip_addr_format(const struct ip_addr *addr, char *buf, size_t buflen)
{
    if (addr->family == AF_INET && buflen >= 16) {
        /* inet_ntop formats IPv4 through sprintf; this runs once per connection. */
        char *p = buf;
        for (int i = 0; i < 4; i++) {
            unsigned v = addr->bytes[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
        return;
    }
    if (inet_ntop(addr->family, addr->bytes, buf, (socklen_t)buflen) == NULL)
        snprintf(buf, buflen, "?");
}

struct ip_addr ip_addr_unmap_v4(const struct ip_addr *addr)
{
    struct ip_addr out = *addr;
    if (addr->family == AF_INET6 && memcmp(addr->bytes, v4_mapped_prefix, 12) == 0) {
        memset(&out, 0, sizeof(out));
        out.family = AF_INET;
        memcpy(out.bytes, addr->bytes + 12, 4);
    }
    return out;
}

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

static bool prefix_matches(const uint8_t *net, const uint8_t *addr, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(net, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net[full] & mask) == (addr[full] & mask);
}

int ip_cidr_parse(const char *text, struct ip_cidr *cidr_out)
{
    char buf[IP_ADDR_STRLEN + 5];
    const char *slash = strchr(text, '/');
    size_t addrlen = slash ? (size_t)(slash - text) : strlen(text);

    if (addrlen == 0 || addrlen >= IP_ADDR_STRLEN)
        return -EINVAL;
    memcpy(buf, text, addrlen);
    buf[addrlen] = '\0';
    if (ip_addr_parse(buf, &cidr_out->net) != 0)
        return -EINVAL;
    unsigned max = cidr_out->net.family == AF_INET ? 32 : 128;
    cidr_out->prefix = max;
    if (slash != NULL) {
        const char *digits = slash + 1;
        char *end;
        if (*digits < '0' || *digits > '9' || strlen(digits) > 3)
            return -EINVAL;
        unsigned long len = strtoul(digits, &end, 10);
        if (*end != '\0' || len > max)
            return -EINVAL;
        cidr_out->prefix = (unsigned)len;
    }
    /* Host bits set usually means a typo in the prefix length; refuse rather than guess. */
    struct ip_cidr check = *cidr_out;
    for (unsigned bit = cidr_out->prefix; bit < max; bit++) {
        if (check.net.bytes[bit / 8] & (0x80 >> (bit % 8)))
            return -EINVAL;
    }
    return 0;
}

bool ip_cidr_contains(const struct ip_cidr *cidr, const struct ip_addr *addr)
{
    struct ip_addr a = cidr->net.family == AF_INET ? ip_addr_unmap_v4(addr) : *addr;
    if (a.family != cidr->net.family)
        return false;
    return prefix_matches(cidr->net.bytes, a.bytes, cidr->prefix);
}

void ip_cidr_format(const struct ip_cidr *cidr, char *buf, size_t buflen)
{
    char addr[IP_ADDR_STRLEN];
    ip_addr_format(&cidr->net, addr, sizeof(addr));
    snprintf(buf, buflen, "%s/%u", addr, cidr->prefix);
}

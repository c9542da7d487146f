/* proxy/proxyproto.c - the PROXY protocol header (HAProxy's spec, versions 1 and 2) that a load
 * balancer in front of us sends to say who the client really is.
 *
 * Only accepted from trusted peers (client.c decides); here we only parse. Version 1 is one text
 * line of at most 107 bytes; version 2 a binary block after a 12-byte signature, of up to 64 KiB:
 * its addresses are read from its first PROXYPROTO_PARSE_MAX bytes, and its TLVs, which we skip,
 * need not be there (the caller drops them as they come). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_int.h"

static const uint8_t v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define V1_MAX 107 /* bytes of a version 1 line, its CRLF included (the spec's bound) */

static int parse_v1(const uint8_t *buf, size_t len, struct ip_addr *src, bool *has_addr)
{
    char line[V1_MAX], proto[8], a[48], b[48];
    unsigned sport, dport;
    const uint8_t *crlf = NULL;
    for (size_t i = 0; i + 1 < len && i + 2 <= V1_MAX; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            crlf = buf + i;
            break;
        }
    }
    if (crlf == NULL)
        return len >= V1_MAX ? -1 : 0;
    size_t n = (size_t)(crlf - buf);
    memcpy(line, buf, n);
    line[n] = '\0';
    *has_addr = false;
    if (strncmp(line, "PROXY UNKNOWN", 13) == 0 && (line[13] == '\0' || line[13] == ' '))
        return (int)n + 2; /* whatever follows is to be ignored */
    /* The spec's form exactly: single spaces, decimal ports with no sign and no leading zero
     * (what sscanf() lets through is refused by the line written back differing). */
    char extra, canonical[V1_MAX + 16];
    if (sscanf(line, "PROXY %7s %47s %47s %u %u%c", proto, a, b, &sport, &dport, &extra) != 5 ||
        sport > 65535 || dport > 65535)
        return -1;
    snprintf(canonical, sizeof(canonical), "PROXY %s %s %s %u %u", proto, a, b, sport, dport);
    if (strcmp(canonical, line) != 0)
        return -1;
    struct ip_addr dst;
    if (ip_addr_parse(a, src) != 0 || ip_addr_parse(b, &dst) != 0)
        return -1;
    int want = strcmp(proto, "TCP4") == 0 ? AF_INET : strcmp(proto, "TCP6") == 0 ? AF_INET6 : 0;
    if (want == 0 || src->family != want || dst.family != want)
        return -1;
    *has_addr = true;
    return (int)n + 2;
}

static int parse_v2(const uint8_t *buf, size_t len, struct ip_addr *src, bool *has_addr)
{
    if (len < 16)
        return 0;
    uint8_t ver_cmd = buf[12], fam = buf[13];
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if ((ver_cmd & 0xf0) != 0x20 || (ver_cmd & 0x0f) > 1)
        return -1;
    bool local = (ver_cmd & 0x0f) == 0; /* a health check from the balancer itself */
    bool v4 = fam == 0x11 || fam == 0x12, v6 = fam == 0x21 || fam == 0x22; /* TCP or UDP */
    size_t addrs = local ? 0 : v4 ? 12 : v6 ? 36 : 0; /* UNSPEC or UNIX: none we can use */
    if (body < addrs)
        return -1;
    if (len < 16 + addrs)
        return 0;
    *has_addr = addrs > 0;
    if (addrs) {
        memset(src, 0, sizeof(*src));
        src->family = v4 ? AF_INET : AF_INET6;
        memcpy(src->bytes, buf + 16, v4 ? 4 : 16);
    }
    return (int)(16 + body);
}

int proxyproto_parse(const uint8_t *buf, size_t len, struct ip_addr *src, bool *has_addr)
{
    size_t sig = len < sizeof(v2_signature) ? len : sizeof(v2_signature);
    if (memcmp(buf, v2_signature, sig) == 0)
        return sig == sizeof(v2_signature) ? parse_v2(buf, len, src, has_addr) : 0;
    size_t v1 = len < 6 ? len : 6;
    if (memcmp(buf, "PROXY ", v1) == 0)
        return v1 == 6 ? parse_v1(buf, len, src, has_addr) : 0;
    return -1;
}

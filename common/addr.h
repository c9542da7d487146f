/* common/addr.h - IP addresses and CIDR prefixes as plain values, independent of sockets.
 *
 * Every module that reasons about a client address (geo lookups, CIDR rules, sticky hashing,
 * trusted proxies) shares this one representation. IPv4 addresses keep their four bytes at the
 * front of <bytes>; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) stays IPv6 here, and the modules
 * decide what it means to them. */
#ifndef COMMON_ADDR_H
#define COMMON_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define IP_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

struct ip_addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t bytes[16];
};

struct ip_cidr {
    struct ip_addr net; /* host bits are zero */
    unsigned prefix;    /* 0..32 or 0..128 */
};

/* Parses a textual IPv4 or IPv6 address. Returns 0, or -EINVAL. */
int ip_addr_parse(const char *text, struct ip_addr *addr_out);
/* Parses text[0..len) as a dotted-quad IPv4 address exactly as inet_pton() does (four decimal
 * parts up to 255, no leading zeros), without needing it NUL-terminated; -EINVAL otherwise. */
int ip_addr_parse_v4(const char *text, size_t len, struct ip_addr *addr_out);
/* Reads the address of an AF_INET or AF_INET6 socket address. Returns 0, or -EAFNOSUPPORT. */
int ip_addr_from_sockaddr(const struct sockaddr *sa, struct ip_addr *addr_out);
/* Fills <ss> (a struct sockaddr_storage) with <addr> and <port>; returns its length. */
size_t ip_addr_to_sockaddr(const struct ip_addr *addr, uint16_t port, void *ss);
/* Writes the canonical text form into <buf> (at least IP_ADDR_STRLEN bytes). */
void ip_addr_format(const struct ip_addr *addr, char *buf, size_t buflen);
/* Returns the IPv4 address inside ::ffff:a.b.c.d as an AF_INET address; anything else unchanged. */
struct ip_addr ip_addr_unmap_v4(const struct ip_addr *addr);
bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b);

/* Parses "ADDR/LEN" or a bare address (a host prefix). Host bits must be zero. Returns 0, or
 * -EINVAL. */
int ip_cidr_parse(const char *text, struct ip_cidr *cidr_out);
/* True when <addr> is inside <cidr>; an IPv4-mapped address also matches IPv4 prefixes. */
bool ip_cidr_contains(const struct ip_cidr *cidr, const struct ip_addr *addr);
void ip_cidr_format(const struct ip_cidr *cidr, char *buf, size_t buflen);

#endif

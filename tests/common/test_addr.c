/* tests/common/test_addr.c - IP address values: text forms, CIDR parsing and matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/addr.h"

static void ipv4_text_matches_inet_ntop_for_every_octet(void **state)
{
    (void)state;
    for (unsigned v = 0; v < 256; v++) {
        struct ip_addr a = {.family = AF_INET,
                            .bytes = {(unsigned char)v, 0, 255, (unsigned char)(255 - v)}};
        char ours[IP_ADDR_STRLEN], theirs[IP_ADDR_STRLEN];
        ip_addr_format(&a, ours, sizeof(ours));
        inet_ntop(AF_INET, a.bytes, theirs, sizeof(theirs));
        assert_string_equal(ours, theirs);
    }
}

/* ip_addr_parse_v4() (X-Forwarded-For's fast path) takes exactly what inet_pton() takes, over
 * every octet form and a set of near misses, and reads only the <len> bytes it is given. */
static void ipv4_parsing_agrees_with_inet_pton(void **state)
{
    (void)state;
    static const char *const odd[] = {
        "",         "1.2.3",      "1.2.3.4.",  ".1.2.3.4", "1..2.3",    "1.2.3.4.5", "01.2.3.4",
        "1.2.3.00", "256.1.1.1",  "1.2.3.-4",  "1.2.3.4 ", " 1.2.3.4",  "1.2.3.4a",  "0.0.0.0",
        "1.2.3.0",  "1.2.3.1000", "1.2.3.255", "1.2.3.+4", "1.2.3.0x1", "::1",       "1:2.3.4"};
    const int n_odd = (int)(sizeof(odd) / sizeof(odd[0]));
    char text[32];
    for (int i = 0; i < n_odd + 1100; i++) {
        int o = i - n_odd; /* then 10.0.7.0 to 10.999.7.231, and 000.1.1.1 to 099.1.1.1 */
        if (i < n_odd)
            snprintf(text, sizeof(text), "%s", odd[i]);
        else if (o < 1000)
            snprintf(text, sizeof(text), "10.%d.7.%d", o, o % 256);
        else
            snprintf(text, sizeof(text), "%03d.1.1.1", o - 1000);
        struct ip_addr ours;
        unsigned char theirs[16];
        bool want = inet_pton(AF_INET, text, theirs) == 1;
        char padded[40]; /* what follows the length must not be read */
        snprintf(padded, sizeof(padded), "%s9.9", text);
        bool got = ip_addr_parse_v4(padded, strlen(text), &ours) == 0;
        if (got != want)
            fail_msg("\"%s\": inet_pton %d, ours %d", text, want, got);
        if (got) {
            assert_int_equal(ours.family, AF_INET);
            assert_memory_equal(ours.bytes, theirs, 4);
        }
    }
}

static void addresses_round_trip_through_text(void **state)
{
    (void)state;
    static const char *const texts[] = {"0.0.0.0", "255.255.255.255",           "81.2.69.142",
                                        "::1",     "2001:db8::8:800:200c:417a", "::ffff:10.0.0.1"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct ip_addr a;
        char back[IP_ADDR_STRLEN];
        assert_int_equal(ip_addr_parse(texts[i], &a), 0);
        ip_addr_format(&a, back, sizeof(back));
        assert_string_equal(back, texts[i]);
    }
    struct ip_addr a;
    assert_int_not_equal(ip_addr_parse("256.1.1.1", &a), 0);
    assert_int_not_equal(ip_addr_parse("1.2.3", &a), 0);
    assert_int_not_equal(ip_addr_parse("", &a), 0);
}

static void cidrs_refuse_host_bits_and_match_mapped_addresses(void **state)
{
    (void)state;
    struct ip_cidr c;
    struct ip_addr a;
    assert_int_not_equal(ip_cidr_parse("10.0.0.1/8", &c), 0); /* host bits set */
    assert_int_not_equal(ip_cidr_parse("10.0.0.0/33", &c), 0);
    assert_int_not_equal(ip_cidr_parse("10.0.0.0/", &c), 0);
    assert_int_equal(ip_cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(ip_addr_parse("10.200.3.4", &a), 0);
    assert_true(ip_cidr_contains(&c, &a));
    assert_int_equal(ip_addr_parse("::ffff:10.200.3.4", &a), 0);
    assert_true(ip_cidr_contains(&c, &a)); /* IPv4-mapped matches IPv4 prefixes */
    assert_int_equal(ip_addr_parse("11.0.0.1", &a), 0);
    assert_false(ip_cidr_contains(&c, &a));
    assert_int_equal(ip_cidr_parse("2001:db8::/33", &c), 0);
    assert_int_equal(ip_addr_parse("2001:db8:7fff::1", &a), 0);
    assert_true(ip_cidr_contains(&c, &a));
    assert_int_equal(ip_addr_parse("2001:db8:8000::1", &a), 0);
    assert_false(ip_cidr_contains(&c, &a));
    assert_int_equal(ip_cidr_parse("192.0.2.7", &c), 0); /* a bare address is a host prefix */
    assert_int_equal(c.prefix, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_text_matches_inet_ntop_for_every_octet),
        cmocka_unit_test(ipv4_parsing_agrees_with_inet_pton),
        cmocka_unit_test(addresses_round_trip_through_text),
        cmocka_unit_test(cidrs_refuse_host_bits_and_match_mapped_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

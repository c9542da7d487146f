/* tests/common/test_addr.c - IP address values: text forms, CIDR parsing and matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
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
        cmocka_unit_test(addresses_round_trip_through_text),
        cmocka_unit_test(cidrs_refuse_host_bits_and_match_mapped_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

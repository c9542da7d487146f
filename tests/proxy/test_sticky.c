/* tests/proxy/test_sticky.c - the table of where sticky clients were last sent (proxy/sticky.c):
 * a client is recalled within the window and not after it, however long after (the time field
 * wrapped after 12 days until 2026-12-07, when a forgotten client looked fresh again), and
 * another client is not taken for it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proxy/proxy_int.h"

#define DAY_MS (24LL * 3600 * 1000)

static void recalls_a_client_within_the_window_only_however_long_after(void **state)
{
    (void)state;
    struct sticky_table t;
    sticky_init(&t);
    struct ip_addr client, other;
    assert_int_equal(ip_addr_parse("81.2.69.142", &client), 0);
    assert_int_equal(ip_addr_parse("8.8.8.8", &other), 0);
    struct gslb_origin origin = {.hash_key = 0x1234abcd};
    int64_t start = 1000 * DAY_MS, window = 600 * 1000;
    sticky_remember(&t, &client, &origin, start);
    uint16_t tag = 0;
    assert_true(sticky_recall(&t, &client, (int)window, start + window - 1000, &tag));
    assert_int_equal(tag, 0xabcd);
    assert_false(sticky_recall(&t, &client, (int)window, start + window + 1000, &tag));
    assert_false(sticky_recall(&t, &other, (int)window, start + 1000, &tag));
    /* Days later, at every multiple of the old 12.1-day wrap and beyond: not fresh. */
    for (int64_t later = 12 * DAY_MS + 3600 * 1000; later < 400 * DAY_MS; later += DAY_MS / 10)
        if (sticky_recall(&t, &client, (int)window, start + later, &tag))
            fail_msg("recalled %lld ms later", (long long)later);
    sticky_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recalls_a_client_within_the_window_only_however_long_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/gslb/test_health.c - the pure health rules: rise/fall counting, pool quorum and the
 * failback gate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "gslb/gslb.h"

static void quorum_counts_usable_origins_and_their_share_of_weight(void **state)
{
    (void)state;
    struct gslb_origin origins[4] = {
        {.address = "a:1", .weight = 10, .state = DB_ORIGIN_ENABLED},
        {.address = "b:1", .weight = 10, .state = DB_ORIGIN_ENABLED},
        {.address = "c:1", .weight = 20, .state = DB_ORIGIN_DRAINING},
        {.address = "d:1", .weight = 50, .state = DB_ORIGIN_DISABLED},
    };
    struct gslb_pool pool = {.origins = origins, .n_origins = 4, .min_healthy = 1};
    bool up[4] = {true, true, true, true};
    char why[128];
    assert_true(gslb_pool_quorum(&pool, up, why, sizeof(why)));
    assert_string_equal(why, "2 of 4 origins healthy"); /* draining and disabled do not count */
    pool.min_healthy = 3;
    assert_false(gslb_pool_quorum(&pool, up, why, sizeof(why)));
    assert_string_equal(why, "2 of 4 origins healthy, quorum is 3");
    /* Weight: 20 of the 40 that is not disabled is 50%. */
    pool.min_healthy = 1;
    pool.min_weight_percent = 50;
    assert_true(gslb_pool_quorum(&pool, up, why, sizeof(why)));
    pool.min_weight_percent = 51;
    assert_false(gslb_pool_quorum(&pool, up, why, sizeof(why)));
    assert_string_equal(why, "50% of the weight healthy, quorum is 51%");
    up[0] = up[1] = false;
    assert_false(gslb_pool_quorum(&pool, up, why, sizeof(why)));
    assert_string_equal(why, "no healthy origin left");
}

static void one_lost_probe_keeps_target_up(void **state)
{
    (void)state;
    struct gslb_health_counter h = {.up = true, .rise = 2, .fall = 3};
    assert_false(gslb_health_observe(&h, false)); /* the first failure is absorbed */
    assert_false(gslb_health_observe(&h, true));  /* a success resets the streak */
    assert_true(h.up && h.streak == 0);
}

static void fall_failures_in_a_row_take_it_down_and_rise_successes_bring_it_back(void **state)
{
    (void)state;
    struct gslb_health_counter h = {.up = true, .rise = 2, .fall = 3};
    assert_false(gslb_health_observe(&h, false));
    assert_false(gslb_health_observe(&h, false));
    assert_true(gslb_health_observe(&h, false)); /* the third */
    assert_false(h.up);
    assert_false(gslb_health_observe(&h, false)); /* down stays down */
    assert_false(gslb_health_observe(&h, true));
    assert_false(gslb_health_observe(&h, false)); /* interrupted rise starts over */
    assert_false(gslb_health_observe(&h, true));
    assert_true(gslb_health_observe(&h, true));
    assert_true(h.up);
}

static void a_region_leaves_at_once_and_returns_only_after_the_holddown(void **state)
{
    (void)state;
    struct gslb_region_gate g = {.up = true, .healthy_since_ms = 0};
    assert_false(gslb_region_gate_update(&g, true, 1000, 5000));
    assert_true(gslb_region_gate_update(&g, false, 1100, 5000)); /* at once */
    assert_false(g.up);
    assert_false(gslb_region_gate_update(&g, true, 1200, 5000));
    assert_false(gslb_region_gate_update(&g, true, 6100, 5000)); /* 4.9 s healthy: not yet */
    assert_true(gslb_region_gate_update(&g, true, 6200, 5000));  /* 5 s: back, once */
    assert_true(g.up);
    assert_false(gslb_region_gate_update(&g, true, 9000, 5000));
}

static void a_flapping_region_changes_at_most_once_per_holddown(void **state)
{
    (void)state;
    struct gslb_region_gate g = {.up = true, .healthy_since_ms = 0};
    int flips = 0;
    /* Healthy and unhealthy alternately every second for a minute, with a 5 s hold-down. */
    for (int64_t t = 0; t < 60000; t += 100)
        flips += gslb_region_gate_update(&g, (t / 1000) % 2 == 0, t, 5000);
    assert_int_equal(flips, 1); /* down once, never back while it flaps */
    assert_false(g.up);
    for (int64_t t = 60000; t < 70000; t += 100)
        flips += gslb_region_gate_update(&g, true, t, 5000);
    assert_int_equal(flips, 2); /* and back once when it is steady */
    assert_true(g.up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quorum_counts_usable_origins_and_their_share_of_weight),
        cmocka_unit_test(one_lost_probe_keeps_target_up),
        cmocka_unit_test(fall_failures_in_a_row_take_it_down_and_rise_successes_bring_it_back),
        cmocka_unit_test(a_region_leaves_at_once_and_returns_only_after_the_holddown),
        cmocka_unit_test(a_flapping_region_changes_at_most_once_per_holddown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

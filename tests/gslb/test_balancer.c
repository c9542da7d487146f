/* tests/gslb/test_balancer.c - origin selection inside a region (gslb/balancer.c with the
 * policies gslb/lb_wrr.c and gslb/lb_hash.c).
 *
 * Round-robin is checked pick by pick against the sequence nginx's smooth weighted round-robin
 * produces, and by exact shares in every window of sum(weights) picks. Sticky selection is checked
 * over many pseudo-random client addresses from a fixed seed: stability, minimal movement when an
 * origin leaves, and shares proportional to weights. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gslb/gslb.h"

/* ---- helpers ---- */

/* Builds a snapshot of the topology document <json>, written with ' for ". */
static struct gslb_snapshot *snapshot_from_json(const char *json)
{
    char *text = strdup(json), err[256];
    struct db_topology *topo = NULL;
    assert_non_null(text);
    for (char *p = text; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    if (db_topology_from_json(text, strlen(text), &topo, err, sizeof(err)) != 0)
        fail_msg("topology: %s\n%s", err, text);
    struct gslb_snapshot *snap = gslb_snapshot_build(topo);
    db_topology_free(topo);
    free(text);
    return snap;
}

/* A snapshot with one region "r" whose pool holds <origins> (a JSON list), for a round-robin
 * or a sticky service. */
static struct gslb_snapshot *pool_snapshot(const char *origins, bool sticky)
{
    char doc[4096];
    snprintf(
        doc, sizeof(doc),
        "{'regions': [{'name': 'r', 'lat': 0, 'lon': 0}, {'name': 'bare', 'lat': 1, 'lon': 1}],"
        " 'services': [{'name': 'web', 'hosts': ['*'], 'sticky': %s,"
        " 'pools': [{'region': 'r', 'origins': %s}]}]}",
        sticky ? "true" : "false", origins);
    return snapshot_from_json(doc);
}

static struct ip_addr addr_of(const char *text)
{
    struct ip_addr a;
    assert_int_equal(ip_addr_parse(text, &a), 0);
    return a;
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A pseudo-random client: three in four IPv4, the rest IPv6. */
static struct ip_addr random_client(void)
{
    struct ip_addr a;
    uint64_t hi = rng_next(), lo = rng_next();
    memset(&a, 0, sizeof(a));
    if (hi % 4 != 0) {
        a.family = AF_INET;
        memcpy(a.bytes, &lo, 4);
    } else {
        a.family = AF_INET6;
        memcpy(a.bytes, &hi, 8);
        memcpy(a.bytes + 8, &lo, 8);
    }
    return a;
}

/* The first letter of the picked origin's address ("a.example:80" -> 'a'), or '-' for none. */
static char pick_letter(const struct gslb_snapshot *snap, struct gslb_balancer *balancer,
                        const struct ip_addr *client, const struct gslb_health *health)
{
    const struct gslb_origin *o =
        gslb_origin_pick(snap, balancer, &snap->services[0], 0, client, health);
    return o ? o->address[0] : '-';
}

/* <n> round-robin picks as a string of letters. */
static void picks(const struct gslb_snapshot *snap, struct gslb_balancer *balancer, size_t n,
                  const struct gslb_health *health, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = pick_letter(snap, balancer, NULL, health);
    out[n] = '\0';
}

/* ---- smooth weighted round-robin ---- */

static void round_robin_interleaves_weights_5_1_1_like_nginx(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot("[{'address': 'a.example:80', 'weight': 5},"
                                               " {'address': 'b.example:80', 'weight': 1},"
                                               " {'address': 'c.example:80', 'weight': 1}]",
                                               false);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    char seq[64];
    picks(snap, balancer, 28, NULL, seq);
    assert_string_equal(seq, "aabacaa"
                             "aabacaa"
                             "aabacaa"
                             "aabacaa");
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

static void round_robin_never_sends_the_heavy_origin_its_whole_weight_in_a_row(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot("[{'address': 'a.example:80', 'weight': 5},"
                                               " {'address': 'b.example:80', 'weight': 1},"
                                               " {'address': 'c.example:80', 'weight': 1}]",
                                               false);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    char seq[701];
    size_t run = 0, longest = 0, period_run = 0, longest_in_period = 0;
    picks(snap, balancer, 700, NULL, seq);
    for (size_t i = 0; i < 700; i++) {
        run = seq[i] == 'a' ? run + 1 : 0;
        longest = run > longest ? run : longest;
        /* The same, restarted at each period of 7 picks. */
        period_run = seq[i] != 'a' ? 0 : i % 7 == 0 ? 1 : period_run + 1;
        longest_in_period = period_run > longest_in_period ? period_run : longest_in_period;
    }
    /* Within a period of 7 picks a gets at most two in a row; the last two of one period and the
     * first two of the next join into four, as with nginx. Plain weighted round-robin would send
     * all five in a row. */
    assert_int_equal(longest_in_period, 2);
    assert_int_equal(longest, 4);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

/* Every window of sum(weights) consecutive picks in <seq> holds exactly <weights>[i] of origin
 * 'a' + i. */
static void assert_exact_windows(const char *seq, const int *weights, size_t n_weights)
{
    size_t len = strlen(seq), total = 0;
    for (size_t i = 0; i < n_weights; i++)
        total += (size_t)weights[i];
    assert_true(len >= 2 * total);
    for (size_t start = 0; start + total <= len; start++) {
        int count[26] = {0};
        for (size_t i = start; i < start + total; i++)
            count[seq[i] - 'a']++;
        for (size_t i = 0; i < n_weights; i++) {
            if (count[i] != weights[i])
                fail_msg("window at %zu: origin %c got %d of %zu picks, expected %d", start,
                         (int)('a' + i), count[i], total, weights[i]);
        }
    }
}

static void round_robin_gives_exact_shares_in_every_window_of_the_weight_sum(void **state)
{
    (void)state;
    static const int weights[] = {7, 4, 3, 1, 10};
    struct gslb_snapshot *snap = pool_snapshot("[{'address': 'a.example:80', 'weight': 7},"
                                               " {'address': 'b.example:80', 'weight': 4},"
                                               " {'address': 'c.example:80', 'weight': 3},"
                                               " {'address': 'd.example:80', 'weight': 1},"
                                               " {'address': 'e.example:80', 'weight': 10}]",
                                               false);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    char seq[25 * 20 + 1];
    picks(snap, balancer, 25 * 20, NULL, seq);
    assert_exact_windows(seq, weights, 5);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

/* Weights 1..6 over origins a..f, only b and f usable: a disabled, c draining, d weighs zero, e
 * unhealthy. */
#define MIXED_POOL                                                                                 \
    "[{'address': 'a.example:80', 'weight': 1, 'state': 'disabled'},"                              \
    " {'address': 'b.example:80', 'weight': 2},"                                                   \
    " {'address': 'c.example:80', 'weight': 3, 'state': 'draining'},"                              \
    " {'address': 'd.example:80', 'weight': 0},"                                                   \
    " {'address': 'e.example:80', 'weight': 5},"                                                   \
    " {'address': 'f.example:80', 'weight': 6}]"

static void mixed_pool_health(const struct gslb_snapshot *snap, uint8_t *up)
{
    const struct gslb_pool *pool = &snap->services[0].pools[0];
    for (size_t i = 0; i < pool->n_origins; i++)
        up[pool->origins[i].index] = pool->origins[i].address[0] != 'e';
}

static void round_robin_never_picks_unusable_origins(void **state)
{
    (void)state;
    static const int weights[] = {0, 2, 0, 0, 0, 6};
    struct gslb_snapshot *snap = pool_snapshot(MIXED_POOL, false);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    uint8_t up[6];
    struct gslb_health health = {.origin_up = up};
    char seq[8 * 30 + 1];
    mixed_pool_health(snap, up);
    picks(snap, balancer, 8 * 30, &health, seq);
    assert_exact_windows(seq, weights, 6);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

static void sticky_selection_never_picks_unusable_origins(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot(MIXED_POOL, true);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    uint8_t up[6];
    struct gslb_health health = {.origin_up = up};
    size_t count[26] = {0};
    mixed_pool_health(snap, up);
    rng_state = 1;
    for (int i = 0; i < 4000; i++) {
        struct ip_addr client = random_client();
        count[pick_letter(snap, balancer, &client, &health) - 'a']++;
    }
    assert_int_equal(count[0] + count[2] + count[3] + count[4], 0);
    assert_int_equal(count[1] + count[5], 4000);
    assert_true(count[1] > 0 && count[5] > count[1]);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

static void no_usable_origin_gives_null(void **state)
{
    (void)state;
    static const char *const pool = "[{'address': 'a.example:80', 'state': 'disabled'},"
                                    " {'address': 'b.example:80', 'state': 'draining'},"
                                    " {'address': 'c.example:80', 'weight': 0},"
                                    " {'address': 'd.example:80'}]";
    for (int sticky = 0; sticky < 2; sticky++) {
        struct gslb_snapshot *snap = pool_snapshot(pool, sticky);
        struct gslb_balancer *balancer = gslb_balancer_create(snap);
        struct ip_addr client = addr_of("192.0.2.1");
        uint8_t up[4] = {1, 1, 1, 1};
        struct gslb_health health = {.origin_up = up};
        up[snap->services[0].pools[0].origins[3].index] = 0;
        assert_null(gslb_origin_pick(snap, balancer, &snap->services[0], 0, &client, &health));
        assert_null(gslb_origin_pick(snap, balancer, &snap->services[0], 0, NULL, &health));
        /* Healthy, d serves. */
        assert_int_equal(pick_letter(snap, balancer, &client, NULL), 'd');
        gslb_balancer_destroy(balancer);
        gslb_snapshot_release(snap);
    }
}

static void region_without_a_pool_gives_null(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot("[{'address': 'a.example:80'}]", false);
    struct gslb_snapshot *empty =
        snapshot_from_json("{'regions': [{'name': 'r', 'lat': 0, 'lon': 0}], 'services': [{'name':"
                           " 'web', 'hosts': ['*'], 'pools': [{'region': 'r', 'origins': []}]}]}");
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    struct gslb_balancer *empty_balancer = gslb_balancer_create(empty);
    assert_null(gslb_origin_pick(snap, balancer, &snap->services[0], 1, NULL, NULL));
    assert_null(gslb_origin_pick(snap, balancer, &snap->services[0], 2, NULL, NULL));
    assert_null(gslb_origin_pick(empty, empty_balancer, &empty->services[0], 0, NULL, NULL));
    assert_non_null(gslb_origin_pick(snap, balancer, &snap->services[0], 0, NULL, NULL));
    gslb_balancer_destroy(empty_balancer);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(empty);
    gslb_snapshot_release(snap);
}

static void each_pool_and_each_balancer_keeps_its_own_round_robin_position(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = snapshot_from_json(
        "{'regions': [{'name': 'r', 'lat': 0, 'lon': 0}, {'name': 's', 'lat': 1, 'lon': 1}],"
        " 'services': [{'name': 'web', 'hosts': ['*'], 'pools': ["
        "  {'region': 'r', 'origins': [{'address': 'a.example:80', 'weight': 2},"
        "   {'address': 'b.example:80', 'weight': 1}]},"
        "  {'region': 's', 'origins': [{'address': 'x.example:80', 'weight': 1},"
        "   {'address': 'y.example:80', 'weight': 3}]}]},"
        " {'name': 'api', 'hosts': ['api.example.com'], 'pools': ["
        "  {'region': 'r', 'origins': [{'address': 'p.example:80'},"
        "   {'address': 'q.example:80'}]}]}]}");
    const struct gslb_service *web = &snap->services[0], *api = &snap->services[1];
    struct gslb_balancer *one = gslb_balancer_create(snap), *two = gslb_balancer_create(snap);
    char r[10] = {0}, s[10] = {0}, api_r[10] = {0}, other[4] = {0};
    /* Interleave picks over two pools of one service, a pool of another service and a second
     * balancer: each sequence must be what it would be alone. */
    for (size_t i = 0; i < 9; i++) {
        r[i] = gslb_origin_pick(snap, one, web, 0, NULL, NULL)->address[0];
        s[i] = gslb_origin_pick(snap, one, web, 1, NULL, NULL)->address[0];
        api_r[i] = gslb_origin_pick(snap, one, api, 0, NULL, NULL)->address[0];
        if (i < 3)
            other[i] = gslb_origin_pick(snap, two, web, 0, NULL, NULL)->address[0];
    }
    assert_string_equal(r, "abaabaaba");
    assert_string_equal(s, "yxyyyxyyy");
    assert_string_equal(api_r, "pqpqpqpqp");
    assert_string_equal(other, "aba");
    gslb_balancer_destroy(two);
    gslb_balancer_destroy(one);
    gslb_snapshot_release(snap);
}

/* ---- sticky selection (consistent hashing) ---- */

#define FIVE_ORIGINS                                                                               \
    "[{'address': 'a.example:80'}, {'address': 'b.example:80'}, {'address': 'c.example:80'},"      \
    " {'address': 'd.example:80'}, {'address': 'e.example:80'}]"
#define FOUR_ORIGINS                                                                               \
    "[{'address': 'a.example:80'}, {'address': 'b.example:80'}, {'address': 'd.example:80'},"      \
    " {'address': 'e.example:80'}]"
#define STICKY_CLIENTS 10000

static void sticky_client_always_gets_the_same_origin(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot(FIVE_ORIGINS, true);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    struct ip_addr clients[500];
    char first[500];
    rng_state = 2;
    for (size_t i = 0; i < 500; i++) {
        clients[i] = random_client();
        first[i] = pick_letter(snap, balancer, &clients[i], NULL);
    }
    /* Interleaved with other clients, and from a fresh balancer: the same answer. */
    for (int round = 0; round < 5; round++) {
        struct gslb_balancer *fresh = gslb_balancer_create(snap);
        for (size_t i = 0; i < 500; i++) {
            size_t k = (i * 7 + (size_t)round) % 500;
            assert_int_equal(pick_letter(snap, balancer, &clients[k], NULL), first[k]);
            assert_int_equal(pick_letter(snap, fresh, &clients[k], NULL), first[k]);
        }
        gslb_balancer_destroy(fresh);
    }
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

static void removing_one_of_five_origins_moves_only_its_clients(void **state)
{
    (void)state;
    struct gslb_snapshot *five = pool_snapshot(FIVE_ORIGINS, true);
    struct gslb_snapshot *four = pool_snapshot(FOUR_ORIGINS, true);
    struct gslb_balancer *b5 = gslb_balancer_create(five), *b4 = gslb_balancer_create(four);
    size_t on_c = 0, moved_to[26] = {0};
    rng_state = 3;
    for (int i = 0; i < STICKY_CLIENTS; i++) {
        struct ip_addr client = random_client();
        char before = pick_letter(five, b5, &client, NULL);
        char after = pick_letter(four, b4, &client, NULL);
        assert_int_not_equal(after, 'c');
        if (before == 'c') {
            on_c++;
            moved_to[after - 'a']++;
        } else if (after != before) {
            fail_msg("client %d moved from %c to %c though %c is still there", i, before, after,
                     before);
        }
    }
    /* c had about a fifth of the clients, and they spread over all four others. */
    assert_in_range(on_c, STICKY_CLIENTS / 5 - 300, STICKY_CLIENTS / 5 + 300);
    for (const char *o = "abde"; *o; o++)
        assert_in_range(moved_to[*o - 'a'], on_c / 4 - 150, on_c / 4 + 150);
    gslb_balancer_destroy(b4);
    gslb_balancer_destroy(b5);
    gslb_snapshot_release(four);
    gslb_snapshot_release(five);
}

static void origin_turning_unhealthy_moves_only_its_clients(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot(FIVE_ORIGINS, true);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    uint8_t up[5] = {1, 1, 1, 1, 1};
    struct gslb_health health = {.origin_up = up};
    size_t on_b = 0;
    up[snap->services[0].pools[0].origins[1].index] = 0; /* b */
    rng_state = 4;
    for (int i = 0; i < STICKY_CLIENTS; i++) {
        struct ip_addr client = random_client();
        char before = pick_letter(snap, balancer, &client, NULL);
        char after = pick_letter(snap, balancer, &client, &health);
        assert_int_not_equal(after, 'b');
        if (before == 'b')
            on_b++;
        else
            assert_int_equal(after, before);
    }
    assert_in_range(on_b, STICKY_CLIENTS / 5 - 300, STICKY_CLIENTS / 5 + 300);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

static void sticky_shares_follow_weights_1_to_3(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot(
        "[{'address': 'a.example:80', 'weight': 1}, {'address': 'b.example:80', 'weight': 3}]",
        true);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    size_t count[2] = {0, 0};
    rng_state = 5;
    for (int i = 0; i < STICKY_CLIENTS; i++) {
        struct ip_addr client = random_client();
        count[pick_letter(snap, balancer, &client, NULL) - 'a']++;
    }
    /* Expected 2500 : 7500; the binomial standard deviation is about 43. */
    assert_in_range(count[0], 2500 - 300, 2500 + 300);
    assert_int_equal(count[0] + count[1], STICKY_CLIENTS);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

static void ipv4_mapped_client_sticks_like_plain_ipv4(void **state)
{
    (void)state;
    struct gslb_snapshot *snap = pool_snapshot(FIVE_ORIGINS, true);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    size_t count[26] = {0};
    rng_state = 6;
    for (int i = 0; i < 2000; i++) {
        uint64_t r = rng_next();
        char v4[32], mapped[48];
        snprintf(v4, sizeof(v4), "%u.%u.%u.%u", (unsigned)(r & 255), (unsigned)(r >> 8 & 255),
                 (unsigned)(r >> 16 & 255), (unsigned)(r >> 24 & 255));
        snprintf(mapped, sizeof(mapped), "::ffff:%s", v4);
        struct ip_addr plain = addr_of(v4), as_v6 = addr_of(mapped);
        assert_int_equal(as_v6.family, AF_INET6);
        char want = pick_letter(snap, balancer, &plain, NULL);
        assert_int_equal(pick_letter(snap, balancer, &as_v6, NULL), want);
        count[want - 'a']++;
    }
    for (int i = 0; i < 5; i++) /* not all on one origin */
        assert_true(count[i] > 0);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_robin_interleaves_weights_5_1_1_like_nginx),
        cmocka_unit_test(round_robin_never_sends_the_heavy_origin_its_whole_weight_in_a_row),
        cmocka_unit_test(round_robin_gives_exact_shares_in_every_window_of_the_weight_sum),
        cmocka_unit_test(round_robin_never_picks_unusable_origins),
        cmocka_unit_test(sticky_selection_never_picks_unusable_origins),
        cmocka_unit_test(no_usable_origin_gives_null),
        cmocka_unit_test(region_without_a_pool_gives_null),
        cmocka_unit_test(each_pool_and_each_balancer_keeps_its_own_round_robin_position),
        cmocka_unit_test(sticky_client_always_gets_the_same_origin),
        cmocka_unit_test(removing_one_of_five_origins_moves_only_its_clients),
        cmocka_unit_test(origin_turning_unhealthy_moves_only_its_clients),
        cmocka_unit_test(sticky_shares_follow_weights_1_to_3),
        cmocka_unit_test(ipv4_mapped_client_sticks_like_plain_ipv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

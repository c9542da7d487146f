/* tests/proxy/test_passive.c - the passive checks' board (proxy/passive.c): entries are found by
 * their key past reclaimed slots, keep their record while a view holds them, start clean when
 * reclaimed and reused, and origins that come and go never fill the board. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proxy/proxy_int.h"

static struct passive_entry *entries[PASSIVE_BOARD_SLOTS];

/* Keys <base>, <base> + 2... (odd, as the board makes them): each starts at its own slot. */
static void take_all(struct passive_board *b, uint64_t base)
{
    for (uint64_t i = 0; i < PASSIVE_BOARD_SLOTS; i++) {
        entries[i] = passive_entry_get(b, base + 2 * i);
        assert_non_null(entries[i]);
    }
}

static void origins_that_come_and_go_never_fill_the_board(void **state)
{
    (void)state;
    struct passive_board b;
    passive_board_init(&b);
    take_all(&b, 1);
    assert_null(passive_entry_get(&b, 2 * PASSIVE_BOARD_SLOTS + 1)); /* full while all held */
    for (size_t round = 1; round <= 3; round++) { /* until 2026-12-07 slots were never freed */
        for (size_t i = 0; i < PASSIVE_BOARD_SLOTS; i++)
            passive_entry_put(&b, entries[i]);
        take_all(&b, 1 + round * 2 * PASSIVE_BOARD_SLOTS);
    }
    passive_board_fini(&b);
}

static void an_entry_keeps_its_record_while_held_and_starts_clean_when_reused(void **state)
{
    (void)state;
    struct passive_board b;
    passive_board_init(&b);
    struct passive_entry *e = passive_entry_get(&b, 7);
    atomic_store(&e->until_ms, 12345);
    assert_ptr_equal(passive_entry_get(&b, 7), e); /* a second view of the same origin */
    passive_entry_put(&b, e);
    assert_ptr_equal(passive_entry_get(&b, 7), e);
    assert_int_equal(atomic_load(&e->until_ms), 12345);
    passive_entry_put(&b, e);
    passive_entry_put(&b, e); /* no view holds it: reclaimed */
    e = passive_entry_get(&b, 7);
    assert_int_equal(atomic_load(&e->until_ms), 0);
    passive_board_fini(&b);
}

static void a_key_is_found_past_a_reclaimed_slot_before_it(void **state)
{
    (void)state;
    struct passive_board b;
    passive_board_init(&b);
    /* Both start at the same slot: the second lands one further on. */
    struct passive_entry *first = passive_entry_get(&b, 9);
    struct passive_entry *second = passive_entry_get(&b, 9 + PASSIVE_BOARD_SLOTS);
    assert_ptr_not_equal(first, second);
    atomic_store(&second->failures, 3);
    passive_entry_put(&b, first);
    /* The second is still found where it is, not added again in the freed slot. */
    assert_ptr_equal(passive_entry_get(&b, 9 + PASSIVE_BOARD_SLOTS), second);
    assert_int_equal(atomic_load(&second->failures), 3);
    /* A new key takes the freed slot. */
    assert_ptr_equal(passive_entry_get(&b, 9 + 2 * PASSIVE_BOARD_SLOTS), first);
    passive_board_fini(&b);
}

/* Reclaimed slots that no lookup needs to pass become free again: a board churned through many
 * times over holds no run of tombstones for every lookup to scan. */
static void reclaimed_slots_at_the_end_of_a_run_are_free_again(void **state)
{
    (void)state;
    struct passive_board b;
    passive_board_init(&b);
    struct passive_entry *held = passive_entry_get(&b, 3); /* the board is never empty */
    struct passive_entry *a = passive_entry_get(&b, 11);
    struct passive_entry *c = passive_entry_get(&b, 11 + PASSIVE_BOARD_SLOTS); /* next slot */
    passive_entry_put(&b, a); /* a tombstone: c is found past it */
    assert_int_equal(atomic_load(&a->key), 2);
    passive_entry_put(&b, c); /* the end of the run: both free */
    assert_int_equal(atomic_load(&c->key), 0);
    assert_int_equal(atomic_load(&a->key), 0);
    /* Half a board at a time, in runs (two keys start at each odd slot), given back in the
     * order taken: no tombstone is left. */
    for (uint64_t round = 0; round < 8; round++) {
        for (uint64_t i = 0; i < PASSIVE_BOARD_SLOTS / 2; i++) {
            entries[i] = passive_entry_get(&b, 5 + (round * PASSIVE_BOARD_SLOTS + i) * 2);
            assert_non_null(entries[i]);
        }
        for (size_t i = 0; i < PASSIVE_BOARD_SLOTS / 2; i++)
            passive_entry_put(&b, entries[i]);
    }
    for (size_t i = 0; i < PASSIVE_BOARD_SLOTS; i++) {
        uint64_t key = atomic_load(&b.slots[i].key);
        assert_true(key == 0 || &b.slots[i] == held);
    }
    passive_board_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(origins_that_come_and_go_never_fill_the_board),
        cmocka_unit_test(an_entry_keeps_its_record_while_held_and_starts_clean_when_reused),
        cmocka_unit_test(a_key_is_found_past_a_reclaimed_slot_before_it),
        cmocka_unit_test(reclaimed_slots_at_the_end_of_a_run_are_free_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

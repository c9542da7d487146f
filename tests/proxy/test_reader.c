/* tests/proxy/test_reader.c - the proxy's socket reader (proxy/reader.c) on a real socket pair
 * and a real libevent loop: what it reads and when it calls the bufferevent's callbacks back,
 * its read timeout (set, moved on by reads, shortened in place, restarted, restarted after it
 * fired, cleared while reading is off), full small reads handed to the input whole, its pause
 * at the high-water mark and resumption as the input drains, the end of the stream, and handing the
 * reading back to the bufferevent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/proxy_int.h"

struct fixture {
    struct event_base *base;
    struct bufferevent *bev;
    struct sock_reader rd;
    int peer;          /* the other end, written by the test */
    size_t read_calls; /* the bufferevent's read callback */
    short last_event;  /* the bufferevent's event callback, 0: none */
    bool consume;      /* the read callback drains the input */
    size_t consumed;
};

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct fixture *f = arg;
    f->read_calls++;
    if (f->consume) {
        struct evbuffer *in = bufferevent_get_input(bev);
        f->consumed += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct fixture *f = arg;
    (void)bev;
    f->last_event = what;
}

static int setup(void **state)
{
    static struct fixture f;
    int fds[2];
    memset(&f, 0, sizeof(f));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    f.base = event_base_new();
    f.bev = bufferevent_socket_new(f.base, fds[0], BEV_OPT_CLOSE_ON_FREE);
    f.peer = fds[1];
    f.consume = true;
    bufferevent_setcb(f.bev, read_cb, NULL, event_cb, &f);
    reader_attach(&f.rd, f.bev, 1000);
    reader_take_over(&f.rd, f.base);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    reader_detach(&f->rd);
    reader_fini(&f->rd);
    reader_thread_fini();
    bufferevent_free(f->bev);
    close(f->peer);
    event_base_free(f->base);
    return 0;
}

/* Runs the loop for <ms> milliseconds. */
static void run_for(struct fixture *f, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static void peer_writes_byte(struct fixture *f, char byte, size_t len)
{
    char buf[4096];
    memset(buf, byte, sizeof(buf));
    while (len > 0) {
        size_t n = len < sizeof(buf) ? len : sizeof(buf);
        assert_int_equal(write(f->peer, buf, n), (ssize_t)n);
        len -= n;
    }
}

static void peer_writes(struct fixture *f, size_t len)
{
    peer_writes_byte(f, 'r', len);
}

static const struct timeval tenth = {0, 100000};

static void reads_what_arrives_and_calls_the_read_callback(void **state)
{
    struct fixture *f = *state;
    reader_enable(&f->rd);
    assert_true(reader_enabled(&f->rd));
    peer_writes(f, 300);
    run_for(f, 50);
    assert_int_equal(f->consumed, 300);
    assert_true(f->read_calls >= 1);
    assert_int_equal(f->last_event, 0);
}

static void a_read_timeout_fires_when_nothing_comes(void **state)
{
    struct fixture *f = *state;
    reader_set_timeout(&f->rd, &tenth);
    reader_enable(&f->rd);
    run_for(f, 400);
    assert_int_equal(f->last_event, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
    assert_false(reader_enabled(&f->rd)); /* as a bufferevent: reading stops */
}

/* The timeout counts from the last read: bytes every 50 ms keep a 200 ms timeout away for twice
 * its length, and it fires once they stop. */
static void reads_move_the_timeout_on(void **state)
{
    struct fixture *f = *state;
    static const struct timeval fifth = {0, 200000};
    reader_set_timeout(&f->rd, &fifth);
    reader_enable(&f->rd);
    for (int i = 0; i < 8; i++) {
        peer_writes(f, 10);
        run_for(f, 50);
    }
    assert_int_equal(f->consumed, 80);
    assert_int_equal(f->last_event, 0);
    run_for(f, 500);
    assert_int_equal(f->last_event, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
}

/* A reload rewrites the worker's timeout in place: a shorter one holds from the next read on,
 * not only once the timer set for the old length fires. */
static void a_timeout_shortened_in_place_holds_from_the_next_read(void **state)
{
    struct fixture *f = *state;
    static struct timeval timeout = {2, 0};
    reader_set_timeout(&f->rd, &timeout);
    reader_enable(&f->rd);
    run_for(f, 50);
    timeout = (struct timeval){0, 100000};
    peer_writes(f, 10);
    run_for(f, 400);
    assert_int_equal(f->consumed, 10);
    assert_int_equal(f->last_event, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
}

/* The timeout of a persistent event outlives event_del(): cleared while reading is off, it must
 * not come back when reading resumes. */
static void a_timeout_cleared_while_reading_is_off_stays_cleared(void **state)
{
    struct fixture *f = *state;
    reader_set_timeout(&f->rd, &tenth);
    reader_enable(&f->rd);
    reader_disable(&f->rd);
    reader_set_timeout(&f->rd, NULL);
    reader_enable(&f->rd);
    peer_writes(f, 10);
    run_for(f, 50);
    assert_int_equal(f->consumed, 10);
    run_for(f, 400);
    assert_int_equal(f->last_event, 0);
    assert_true(reader_enabled(&f->rd));
}

static void a_restarted_timeout_counts_from_now(void **state)
{
    struct fixture *f = *state;
    static const struct timeval fifth = {0, 200000};
    reader_set_timeout(&f->rd, &fifth);
    reader_enable(&f->rd);
    run_for(f, 120);
    reader_restart_timeout(&f->rd, &fifth);
    run_for(f, 120); /* 240 ms since enabling, 120 since the restart */
    assert_int_equal(f->last_event, 0);
    run_for(f, 300);
    assert_int_equal(f->last_event, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
}

static void restart_reader_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fixture *f = arg;
    static const struct timeval second = {1, 0};
    (void)fd;
    (void)what;
    reader_restart_timeout(&f->rd, &second);
}

/* Another timer's callback restarts the timeout in the very loop iteration in which the old one
 * fired (both due by the time the loop runs): the old one must not be reported, and the socket
 * must still be read. */
static void a_timeout_restarted_after_it_fired_but_before_its_callback_is_dropped(void **state)
{
    struct fixture *f = *state;
    static const struct timeval ten_ms = {0, 10000}, five_ms = {0, 5000};
    struct event *other = evtimer_new(f->base, restart_reader_cb, f);
    evtimer_add(other, &five_ms);
    reader_set_timeout(&f->rd, &ten_ms);
    reader_enable(&f->rd);
    usleep(30000);
    event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(f->last_event, 0);
    assert_true(reader_enabled(&f->rd));
    peer_writes(f, 40);
    run_for(f, 100);
    assert_int_equal(f->consumed, 40);
    assert_int_equal(f->last_event, 0);
    event_free(other);
}

/* Nobody drains the input: reading pauses at the high-water mark (1,000 bytes here) and goes on
 * once the input is drained, with nothing lost. */
static void pauses_at_the_high_water_mark_and_resumes_as_the_input_drains(void **state)
{
    struct fixture *f = *state;
    struct evbuffer *in = bufferevent_get_input(f->bev);
    f->consume = false;
    reader_enable(&f->rd);
    peer_writes(f, 5000);
    run_for(f, 100);
    size_t held = evbuffer_get_length(in);
    assert_true(held >= 1000 && held < 5000);
    size_t calls = f->read_calls;
    run_for(f, 100);
    assert_int_equal(f->read_calls, calls); /* paused: the socket is not read */
    size_t total = 0;
    for (int i = 0; i < 20 && total < 5000; i++) {
        total += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        run_for(f, 20);
    }
    total += evbuffer_get_length(in);
    assert_int_equal(total, 5000);
}

/* A read that fills the thread's 16 KiB buffer gives the buffer to the input: what the next
 * small read brings must land elsewhere, the first read's bytes untouched. */
static void full_small_reads_each_keep_their_bytes(void **state)
{
    struct fixture *f = *state;
    struct evbuffer *in = bufferevent_get_input(f->bev);
    const size_t full = 16 * 1024;
    reader_detach(&f->rd);
    reader_attach(&f->rd, f->bev, 4 * full);
    reader_take_over(&f->rd, f->base);
    f->consume = false;
    reader_enable(&f->rd);
    peer_writes_byte(f, 'a', full);
    run_for(f, 50);
    assert_int_equal(evbuffer_get_length(in), full);
    reader_read_small(&f->rd);
    peer_writes_byte(f, 'b', full);
    run_for(f, 50);
    reader_read_small(&f->rd);
    peer_writes_byte(f, 'c', 100);
    run_for(f, 50);
    assert_int_equal(evbuffer_get_length(in), 2 * full + 100);
    const unsigned char *all = evbuffer_pullup(in, -1);
    for (size_t i = 0; i < 2 * full + 100; i++)
        assert_int_equal(all[i], i < full ? 'a' : i < 2 * full ? 'b' : 'c');
}

static void the_end_of_the_stream_is_an_eof_event(void **state)
{
    struct fixture *f = *state;
    reader_enable(&f->rd);
    peer_writes(f, 20);
    shutdown(f->peer, SHUT_WR);
    run_for(f, 100);
    assert_int_equal(f->consumed, 20);
    assert_int_equal(f->last_event, BEV_EVENT_READING | BEV_EVENT_EOF);
    assert_false(reader_enabled(&f->rd));
}

/* A tunnel: the bufferevent reads for itself from then on, enabled as the reader was. */
static void reading_handed_back_goes_on_in_the_bufferevent(void **state)
{
    struct fixture *f = *state;
    reader_enable(&f->rd);
    reader_hand_back(&f->rd);
    assert_true(bufferevent_get_enabled(f->bev) & EV_READ);
    peer_writes(f, 70);
    run_for(f, 50);
    assert_int_equal(f->consumed, 70);
    reader_disable(&f->rd); /* now passed on to the bufferevent */
    assert_false(bufferevent_get_enabled(f->bev) & EV_READ);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reads_what_arrives_and_calls_the_read_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_read_timeout_fires_when_nothing_comes, setup, teardown),
        cmocka_unit_test_setup_teardown(reads_move_the_timeout_on, setup, teardown),
        cmocka_unit_test_setup_teardown(a_timeout_shortened_in_place_holds_from_the_next_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_timeout_cleared_while_reading_is_off_stays_cleared, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_restarted_timeout_counts_from_now, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_timeout_restarted_after_it_fired_but_before_its_callback_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(
            pauses_at_the_high_water_mark_and_resumes_as_the_input_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(full_small_reads_each_keep_their_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(the_end_of_the_stream_is_an_eof_event, setup, teardown),
        cmocka_unit_test_setup_teardown(reading_handed_back_goes_on_in_the_bufferevent, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* proxy/reader.c - reading a connection's socket into its bufferevent's input, with recv() and
 * nothing else.
 *
 * libevent's socket bufferevents ask the kernel how much is readable (ioctl FIONREAD) before
 * every read: on a keep-alive request that is two system calls of six. A plain socket's reader
 * here owns the read side instead: its own persistent EV_READ event and read timeout, reads into a
 * per-thread buffer and copies what came into the input (a request head is a few hundred bytes).
 * A read that fills that buffer hands it to the input whole, and the next ones go straight into
 * the input's chains (64 KiB asked for, all libevent gives filled) until the stream slows down
 * again. It then calls the bufferevent's own read and event callbacks, as libevent would, so the
 * code above sees no difference. The bufferevent keeps the write side. A TLS session, or a tunnel
 * (whose bufferevents read for themselves), passes every call on to the bufferevent.
 *
 * The read timeout is a lazy timer of its own (struct lazy_timer): a read moves its deadline. A
 * timeout carried by the persistent read event itself would be added again by libevent after
 * every read: with the restart a reused origin connection needs, about 1,000 of a keep-alive
 * request's 20,000 instructions. */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "common/xalloc.h"
#include "proxy/proxy_int.h"

#define SMALL_READ (16 * 1024)

/* Where small reads land, one per thread; a read that fills it gives it to the input whole (by
 * reference, freed once drained) instead of copying 16 KiB, and the thread's next read makes
 * another. */
static _Thread_local char *small_buf;

static void small_buf_free(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)(uintptr_t)data);
}

static void reader_event_cb(evutil_socket_t fd, short what, void *arg);
static void reader_timer_cb(evutil_socket_t fd, short what, void *arg);

static bool reader_pending(const struct sock_reader *r)
{
    return r->own && r->enabled && !r->suspended;
}

/* The timeout counts from now: a store, unless the timer would fire after the new deadline (a
 * first timeout, or a reload shortened it). */
static void reader_deadline_from_now(struct sock_reader *r)
{
    if (r->timer.ev == NULL)
        r->timer.ev = evtimer_new(event_get_base(r->ev), reader_timer_cb, r);
    lazy_timer_set(&r->timer, (int64_t)r->timeout->tv_sec * 1000 + r->timeout->tv_usec / 1000,
                   r->timeout);
}

static void reader_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sock_reader *r = arg;
    (void)fd;
    (void)what;
    /* Reading off or no timeout: reader_arm() sets it again when reading resumes with one. */
    if (!lazy_timer_fired(&r->timer, reader_pending(r) && r->timeout))
        return;
    r->enabled = false;
    event_del(r->ev);
    bufferevent_event_cb event_cb;
    void *cb_arg;
    bufferevent_getcb(r->bev, NULL, NULL, &event_cb, &cb_arg);
    if (event_cb)
        event_cb(r->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, cb_arg);
}

/* Adds the event when it should be pending (it never is when this is called), its timeout
 * counting from now, or deletes it. */
static void reader_arm(struct sock_reader *r)
{
    r->unarmed = false;
    if (!reader_pending(r)) {
        event_del(r->ev);
        return;
    }
    event_add(r->ev, NULL);
    if (r->timeout)
        reader_deadline_from_now(r);
}

/* The input drained below the high-water mark: read again. */
static void reader_drained_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct sock_reader *r = arg;
    if (info->n_deleted == 0 || evbuffer_get_length(in) >= r->high_water)
        return;
    r->suspended = false;
    evbuffer_cb_clear_flags(in, r->drained_cb, EVBUFFER_CB_ENABLED);
    reader_arm(r);
}

static void reader_suspend(struct sock_reader *r, struct evbuffer *in)
{
    r->suspended = true;
    event_del(r->ev);
    if (r->drained_cb == NULL)
        r->drained_cb = evbuffer_add_cb(in, reader_drained_cb, r);
    else
        evbuffer_cb_set_flags(in, r->drained_cb, EVBUFFER_CB_ENABLED);
}

/* One read per readiness, as libevent does: what is left wakes the loop again. */
static void reader_read(struct sock_reader *r, evutil_socket_t fd)
{
    struct bufferevent *bev = r->bev;
    bufferevent_data_cb read_cb;
    bufferevent_event_cb event_cb;
    void *cb_arg;
    bufferevent_getcb(bev, &read_cb, NULL, &event_cb, &cb_arg);
    if (r->timeout) /* counted from the last readiness, as libevent counts it */
        reader_deadline_from_now(r);
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t have = evbuffer_get_length(in);
    if (have >= r->high_water) {
        reader_suspend(r, in);
        return;
    }
    size_t room = r->high_water - have;
    ssize_t n;
    /* The socket bufferevent freezes its input's end so that only it adds there: so do we. */
    evbuffer_unfreeze(in, 0);
    if (r->bulk) {
        struct evbuffer_iovec vec;
        size_t want = room < PROXY_READ_CHUNK ? room : PROXY_READ_CHUNK;
        if (evbuffer_reserve_space(in, (ev_ssize_t)want, &vec, 1) < 1) {
            evbuffer_freeze(in, 0);
            r->enabled = false;
            event_del(r->ev);
            if (event_cb)
                event_cb(bev, BEV_EVENT_READING | BEV_EVENT_ERROR, cb_arg);
            return;
        }
        /* The chain may be larger than asked for (libevent rounds up): fill it, within room. */
        n = recv(fd, vec.iov_base, room < vec.iov_len ? room : vec.iov_len, 0);
        vec.iov_len = n > 0 ? (size_t)n : 0;
        evbuffer_commit_space(in, &vec, 1);
        r->bulk = n >= SMALL_READ;
    } else {
        if (small_buf == NULL)
            small_buf = xmalloc(SMALL_READ);
        n = recv(fd, small_buf, room < SMALL_READ ? room : SMALL_READ, 0);
        r->bulk = n == SMALL_READ;
        if (r->bulk) {
            evbuffer_add_reference(in, small_buf, SMALL_READ, small_buf_free, NULL);
            small_buf = NULL;
        } else if (n > 0) {
            evbuffer_add(in, small_buf, (size_t)n);
        }
    }
    evbuffer_freeze(in, 0);
    if (n > 0) {
        if (read_cb)
            read_cb(bev, cb_arg);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (r->unarmed) /* nothing there after all: wait for it */
            reader_arm(r);
        return;
    }
    /* An end or an error: reading is over, as a bufferevent would have it. */
    r->enabled = false;
    event_del(r->ev);
    if (event_cb)
        event_cb(bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), cb_arg);
}

static void reader_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    proxy_clock_hold();
    reader_read(arg, fd); /* may free what the reader is part of */
    proxy_clock_release();
}

void reader_thread_fini(void)
{
    free(small_buf);
    small_buf = NULL;
}

void reader_attach(struct sock_reader *r, struct bufferevent *bev, size_t high_water)
{
    r->bev = bev;
    r->own = r->enabled = r->unarmed = r->suspended = r->bulk = false;
    r->timeout = r->write_timeout = NULL;
    r->drained_cb = NULL; /* it belonged to the previous bufferevent's input */
    r->high_water = high_water;
}

void reader_take_over(struct sock_reader *r, struct event_base *base)
{
    evutil_socket_t fd = bufferevent_getfd(r->bev);
    if (r->ev == NULL)
        r->ev = event_new(base, fd, EV_READ | EV_PERSIST, reader_event_cb, r);
    else
        event_assign(r->ev, base, fd, EV_READ | EV_PERSIST, reader_event_cb, r);
    r->enabled = (bufferevent_get_enabled(r->bev) & EV_READ) != 0;
    r->own = true;
    if (r->enabled) {
        bufferevent_disable(r->bev, EV_READ);
        reader_arm(r);
    } /* else the event, assigned just now, is not pending */
}

/* Stops reading for ourselves; the bufferevent is as libevent left it. */
static void reader_disown(struct sock_reader *r)
{
    if (!r->own)
        return;
    event_del(r->ev);
    lazy_timer_stop(&r->timer);
    if (r->drained_cb)
        evbuffer_remove_cb_entry(bufferevent_get_input(r->bev), r->drained_cb);
    r->drained_cb = NULL;
    r->own = false;
}

void reader_detach(struct sock_reader *r)
{
    reader_disown(r);
    r->bev = NULL;
}

void reader_fini(struct sock_reader *r)
{
    if (r->ev)
        event_free(r->ev);
    if (r->timer.ev)
        event_free(r->timer.ev);
    r->ev = r->timer.ev = NULL;
}

void reader_hand_back(struct sock_reader *r)
{
    if (!r->own)
        return;
    reader_disown(r);
    bufferevent_set_timeouts(r->bev, r->timeout, r->write_timeout);
    if (r->enabled)
        bufferevent_enable(r->bev, EV_READ);
}

void reader_enable(struct sock_reader *r)
{
    if (!r->own) { /* enabling it again would restart its timeout */
        if (!(bufferevent_get_enabled(r->bev) & EV_READ))
            bufferevent_enable(r->bev, EV_READ);
        return;
    }
    if (r->enabled && !r->unarmed)
        return;
    r->enabled = true;
    reader_arm(r);
}

void reader_enable_unarmed(struct sock_reader *r)
{
    if (!r->own || r->enabled) {
        reader_enable(r);
        return;
    }
    r->enabled = r->unarmed = true;
    if (r->timeout)
        reader_deadline_from_now(r);
}

void reader_disable(struct sock_reader *r)
{
    if (!r->own) {
        bufferevent_disable(r->bev, EV_READ);
        return;
    }
    if (!r->enabled)
        return;
    r->enabled = r->unarmed = false;
    event_del(r->ev);
}

bool reader_enabled(const struct sock_reader *r)
{
    return r->own ? r->enabled : (bufferevent_get_enabled(r->bev) & EV_READ) != 0;
}

void reader_set_write_timeout(struct sock_reader *r, const struct timeval *timeout)
{
    r->write_timeout = timeout;
    bufferevent_set_timeouts(r->bev, r->own ? NULL : r->timeout, timeout);
}

void reader_read_now(struct sock_reader *r)
{
    reader_event_cb(event_get_fd(r->ev), EV_READ, r); /* may free what <r> is part of */
}

void reader_read_small(struct sock_reader *r)
{
    r->bulk = false;
}

void reader_set_timeout(struct sock_reader *r, const struct timeval *timeout)
{
    if (r->timeout == timeout)
        return;
    reader_restart_timeout(r, timeout);
}

/* The read timeout of a bufferevent reading for itself, changed without
 * bufferevent_set_timeouts(): that adds both of its events again, and so restarts a pending
 * write timeout, which a client that sends requests with bodies and reads nothing would then
 * never meet. The fields are libevent's public bufferevent_struct.h, which its own code reads
 * whenever it adds the read event. */
static void bev_read_timeout_set(struct bufferevent *bev, const struct timeval *timeout)
{
    if (timeout)
        bev->timeout_read = *timeout;
    else
        evutil_timerclear(&bev->timeout_read);
    if (!event_pending(&bev->ev_read, EV_READ, NULL))
        return; /* reading off: enabling it adds the event with the new timeout */
    if (timeout)
        event_add(&bev->ev_read, timeout);
    else
        event_remove_timer(&bev->ev_read);
}

void reader_restart_timeout(struct sock_reader *r, const struct timeval *timeout)
{
    r->timeout = timeout;
    if (!r->own)
        bev_read_timeout_set(r->bev, timeout);
    else if (reader_pending(r) && timeout)
        reader_deadline_from_now(r);
    /* else a timer still armed finds no timeout, or reading off, and lets it be */
}

/* proxy/linger.c - the lingering close of a client connection whose client may still be sending
 * (RFC 9112 9.6): its request body unread after an early answer (413, an origin's 401 to an
 * upload), bytes behind a request that ended the connection (an error, pipelined requests).
 *
 * A socket closed with unread bytes in it, or closed before the client's next bytes come, answers
 * with a reset, and a reset throws away what the client's kernel has not delivered yet (the end of
 * the response still in flight) and fails the client's next send before it reads the answer.
 * So the connection is half-closed instead (the response, then FIN), and what the client still
 * sends is read and dropped, uncopied, until it closes too, stays silent for lingering-timeout,
 * or lingering-time has passed; nginx does the same with the same defaults (5 s, 30 s). A
 * lingering socket keeps counting against max-connections, which bounds how many there are. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "proxy/proxy_int.h"

struct lingering_close {
    struct event *ev;
    struct worker *w;
    struct lingering_close *next, *prev;
    int64_t until_ms; /* lingering-time from the start */
};

static void linger_end(struct lingering_close *l)
{
    struct worker *w = l->w;
    evutil_socket_t fd = event_get_fd(l->ev);
    if (l->prev)
        l->prev->next = l->next;
    else
        w->lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    event_free(l->ev);
    evutil_closesocket(fd);
    free(l);
    atomic_fetch_sub(&w->proxy->connections, 1);
    atomic_fetch_sub_explicit(&w->proxy->metrics.connections_lingering, 1, memory_order_relaxed);
}

/* Drops what has come; false once the client has closed, or the socket failed. */
static bool linger_discard(evutil_socket_t fd)
{
    for (;;) {
        ssize_t n = recv(fd, NULL, 1 << 20, MSG_TRUNC | MSG_DONTWAIT);
        if (n > 0)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lingering_close *l = arg;
    int64_t left = l->until_ms - proxy_now_ms();
    if ((what & EV_TIMEOUT) || !linger_discard(fd) || left <= 0) {
        linger_end(l);
        return;
    }
    int quiet_ms = l->w->cfg->lingering_timeout_ms;
    if (left < quiet_ms) { /* the last wait is cut to what lingering-time leaves */
        struct timeval tv = {left / 1000, (left % 1000) * 1000};
        event_add(l->ev, &tv);
    }
}

void linger_start(struct worker *w, evutil_socket_t fd)
{
    const struct proxy_config *cfg = w->cfg;
    struct lingering_close *l = xmalloc(sizeof(*l));
    *l = (struct lingering_close){
        .w = w, .next = w->lingering, .until_ms = proxy_now_ms() + cfg->lingering_time_ms};
    l->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, linger_cb, l);
    if (l->ev == NULL) {
        evutil_closesocket(fd);
        free(l);
        atomic_fetch_sub(&w->proxy->connections, 1);
        return;
    }
    if (w->lingering)
        w->lingering->prev = l;
    w->lingering = l;
    atomic_fetch_add_explicit(&w->proxy->metrics.connections_lingering, 1, memory_order_relaxed);
    /* The FIN follows the response; a client that has reset the connection already is done. */
    if (shutdown(fd, SHUT_WR) != 0 || !linger_discard(fd)) {
        linger_end(l);
        return;
    }
    int ms = cfg->lingering_timeout_ms < cfg->lingering_time_ms ? cfg->lingering_timeout_ms
                                                                : cfg->lingering_time_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(l->ev, &tv);
}

void linger_end_all(struct worker *w)
{
    while (w->lingering)
        linger_end(w->lingering);
}

/* proxy/bodypipe.c - a response body of known length moved from the origin's socket to the
 * client's through a pipe, with splice(), never copied into user space.
 *
 * Relaying a 100 KiB body through buffers copies it twice (recv, then send), and those copies
 * are a third of what such a response costs the proxy. Once a plain origin connection has sent
 * a final response head with Content-Length (parsed and forwarded as usual, with what came with
 * it), and at least BODY_PIPE_MIN bytes remain, the rest goes origin socket -> pipe -> client
 * socket: the kernel moves pages, and the pipe's capacity is the only buffer, so backpressure is
 * the pipe being full. The client's bufferevent output is flushed first; nothing else writes to
 * the client until the body is through. Bytes are counted, not parsed: a body of fixed length has
 * no framing to check. An origin that closes early or stops sending past origin-read-timeout
 * ends it as on the buffered path, and so do a client that goes away and one whose socket takes
 * nothing for keepalive-timeout: the client's connection is cut, never completed. TLS on either
 * side, chunked and close-delimited bodies stay on the buffered path. splice() to a reset socket
 * would raise SIGPIPE, which gslbd ignores (main.c). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/log.h"
#include "proxy/proxy_int.h"

#define BODY_PIPE_MIN (32 * 1024)

static bool body_pipe_pump(struct client *c);

static void pipe_close(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
    fds[0] = fds[1] = -1;
}

void body_pipes_free(struct worker *w)
{
    while (w->n_spare_pipes > 0)
        pipe_close(w->spare_pipes[--w->n_spare_pipes]);
}

/* Gives <up>'s pipe back to the worker (if empty) or closes it, and stops its events. */
void body_pipe_stop(struct upstream *up)
{
    if (!up->piping)
        return;
    up->piping = false;
    event_del(up->pipe_in_ev);
    event_del(up->pipe_out_ev);
    struct worker *w = up->w;
    if (up->pipe_held == 0 && w->n_spare_pipes < BODY_PIPE_SPARES) {
        w->spare_pipes[w->n_spare_pipes][0] = up->pipe_fd[0];
        w->spare_pipes[w->n_spare_pipes++][1] = up->pipe_fd[1];
        up->pipe_fd[0] = up->pipe_fd[1] = -1;
    } else {
        pipe_close(up->pipe_fd);
    }
}

static void body_pipe_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream *up = arg;
    struct client *c = up->c;
    if (!(what & EV_TIMEOUT)) {
        (void)body_pipe_pump(c);
        return;
    }
    if (fd == bufferevent_getfd(up->bev)) {
        upstream_fail(c, 504, "the origin stopped sending");
    } else {
        ADD(c->w->proxy->metrics.slow_clients, 1); /* it stopped reading */
        client_gone(c);
    }
}

bool body_pipe_start(struct client *c)
{
    struct upstream *up = c->up;
    struct request *r = &c->req;
    struct worker *w = c->w;
    if (!w->cfg->splice_bodies || c->tls || up->tls || up->pipe_failed ||
        !(up->parser.flags & F_CONTENT_LENGTH) || r->resp_chunked || r->interim || r->resp_done ||
        !r->resp_head_sent || up->parser.content_length < BODY_PIPE_MIN)
        return false;
    size_t unparsed = evbuffer_get_length(bufferevent_get_input(up->bev));
    if (!r->body_done || unparsed > 0) { /* the buffered path goes on; the next read tries again */
        log_debug("proxy: %llu body bytes left, not spliced yet (%s)",
                  (unsigned long long)up->parser.content_length,
                  r->body_done ? "unparsed bytes" : "request body not through");
        return false;
    }
    if (w->n_spare_pipes > 0) {
        w->n_spare_pipes--;
        up->pipe_fd[0] = w->spare_pipes[w->n_spare_pipes][0];
        up->pipe_fd[1] = w->spare_pipes[w->n_spare_pipes][1];
    } else if (pipe2(up->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        up->pipe_failed = true; /* out of descriptors: not again for this response */
        return false;
    }
    evutil_socket_t origin_fd = bufferevent_getfd(up->bev), client_fd = bufferevent_getfd(c->bev);
    if (up->pipe_in_ev == NULL)
        up->pipe_in_ev =
            event_new(w->base, origin_fd, EV_READ | EV_PERSIST, body_pipe_event_cb, up);
    /* The client's socket changes with every use of the connection: assigned each time. */
    if (up->pipe_out_ev == NULL)
        up->pipe_out_ev = event_new(w->base, client_fd, EV_WRITE, body_pipe_event_cb, up);
    else
        event_assign(up->pipe_out_ev, w->base, client_fd, EV_WRITE, body_pipe_event_cb, up);
    up->piping = true;
    up->pipe_held = 0;
    up->pipe_left = up->parser.content_length;
    client_flush(c);
    /* The reader is left on while the body may go through at once (no event runs meanwhile):
     * off and on again would cost two epoll_ctl calls per response. */
    if (body_pipe_pump(c))
        reader_disable(&up->rd);
    return true;
}

void body_pipe_client_drained(struct client *c)
{
    (void)body_pipe_pump(c);
}

/* Moves what it can: pipe to client while the client's output is empty, origin to pipe while
 * the body lasts. Waits on whichever side would block; the origin's readiness is only waited for
 * with the pipe empty, as a full pipe also fails with EAGAIN. Returns true while the body is not
 * through (false: the response is done, or the connection failed and is closed). */
static bool body_pipe_pump(struct client *c)
{
    struct upstream *up = c->up;
    evutil_socket_t origin_fd = bufferevent_getfd(up->bev), client_fd = bufferevent_getfd(c->bev);
    bool out_blocked = evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;
    for (bool moved = true; moved;) {
        moved = false;
        if (up->pipe_held > 0 && !out_blocked) {
            ssize_t n = splice(up->pipe_fd[0], NULL, client_fd, NULL, up->pipe_held,
                               SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                up->pipe_held -= (size_t)n;
                c->req.bytes_out += (uint64_t)n;
                ADD(c->w->proxy->metrics.spliced_bytes, (uint64_t)n);
                moved = true;
                /* The client took bytes: its stall, if it stalls again, counts from then. */
                if (event_pending(up->pipe_out_ev, EV_WRITE, NULL))
                    event_del(up->pipe_out_ev);
            } else if (n < 0 && errno == EAGAIN) {
                out_blocked = true;
                if (!event_pending(up->pipe_out_ev, EV_WRITE, NULL))
                    event_add(up->pipe_out_ev, c->w->timeouts[T_KEEPALIVE]);
            } else {
                client_gone(c);
                return false;
            }
        }
        if (up->pipe_left > 0) {
            size_t want =
                up->pipe_left < PROXY_READ_CHUNK ? (size_t)up->pipe_left : PROXY_READ_CHUNK;
            ssize_t n = splice(origin_fd, NULL, up->pipe_fd[1], NULL, want,
                               SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                up->pipe_left -= (uint64_t)n;
                up->pipe_held += (size_t)n;
                moved = true;
                if (up->pipe_left == 0) /* the origin is done: what it sends now is not ours */
                    event_del(up->pipe_in_ev);
            } else if (n < 0 && errno == EAGAIN && up->pipe_held == 0) {
                if (!event_pending(up->pipe_in_ev, EV_READ, NULL)) /* persistent from then on */
                    event_add(up->pipe_in_ev, c->w->timeouts[TO_ORIGIN_READ]);
            } else if (n < 0 && errno == EAGAIN) {
                /* Maybe only the pipe is full: the client's progress brings us back. */
                event_del(up->pipe_in_ev);
            } else { /* closed (or reset) before the end of the body */
                upstream_fail(c, 502, "the origin closed the connection mid-response");
                return false;
            }
        }
    }
    if (up->pipe_left > 0 || up->pipe_held > 0)
        return true;
    body_pipe_stop(up);
    c->req.resp_done = true;
    client_response_done(c, head_keeps_alive(&c->req.bufs->resp, &up->parser));
    return false;
}

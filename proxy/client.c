/* proxy/client.c - the client side of a proxied connection: accept, parse requests with llhttp,
 * check them, route them, stream their bodies to the origin, send responses back, and log.
 *
 * State machine of a client connection:
 *
 *   state      | entered when                       | timer       | leaves when
 *   -----------+------------------------------------+-------------+---------------------------
 *   C_IDLE     | accepted, or a response finished   | keep-alive  | the first request byte
 *   C_HEAD     | a request's first byte arrived     | header read | head parsed: C_FORWARD,
 *              |                                    |             | or an error response
 *   C_FORWARD  | the request was routed             | connect,    | response done: C_IDLE or
 *              |                                    | response hd | C_CLOSING; 101: C_TUNNEL
 *   C_TUNNEL   | the origin switched protocols      | tunnel idle | both sides ended, an error
 *              |                                    |             | or the idle timeout
 *   C_CLOSING  | a final response is being flushed  | none        | output empty: freed
 *
 * The parser pauses after each head and after each message: after the head so no body byte is
 * consumed before an origin connection is ready (which keeps every connect failure retryable),
 * after the message so pipelined requests wait their turn. */
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/xalloc.h"
#include "proxy/proxy_int.h"

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* ---- timers ---- */

static void tunnel_close(struct client *c);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (!lazy_timer_fired(&c->timer, c->timer_kind != T_NONE))
        return;
    enum client_timer kind = c->timer_kind;
    c->timer_kind = T_NONE;
    switch (kind) {
    case T_KEEPALIVE:
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
            /* The last response is still on its way, to a client that reads (else the write
             * timeout would have dropped it): idle time starts once it has it. */
            client_timer_arm(c, T_KEEPALIVE);
            break;
        }
        client_close(c);
        break;
    case T_HEADER:
        if (c->state == C_IDLE) { /* not a byte since accept */
            client_close(c);
            break;
        }
        ADD(c->w->proxy->metrics.bad_requests, 1);
        client_fail(c, 408, "request header timeout");
        break;
    case T_CONNECT:
    case T_RESPONSE:
        upstream_error_count(c);
        upstream_report(c, true);
        c->req.last_failure_timeout = true;
        if (kind == T_CONNECT) {
            /* Nothing was sent yet: another origin may do better. */
            upstream_release(c, false);
            upstream_start(c);
        } else {
            client_answer(c, 504, "the origin did not answer in time");
        }
        break;
    case T_TUNNEL: /* not a byte either way for tunnel-timeout */
        tunnel_close(c);
        break;
    case T_NONE:
        break;
    }
}

/* A keep-alive request moves its deadline four times; the lazy timer has libevent hear of it
 * about once per timeout period instead. T_NONE leaves the event to find nothing to do. */
void client_timer_arm(struct client *c, enum client_timer kind)
{
    c->timer_kind = kind;
    if (kind != T_NONE)
        lazy_timer_set(&c->timer, c->w->timeout_ms[kind], c->w->timeouts[kind]);
}

/* ---- life cycle ---- */

/* Empties the forwarded head's buffer, kept for the next request unless it grew large (as
 * head_reset() keeps the head buffers). */
static void out_head_reset(struct sbuf *out_head)
{
    out_head->len = 0;
    if (out_head->cap > 4096) {
        free(out_head->p);
        *out_head = (struct sbuf){0};
    }
}

#define MAX_SPARE_BUFS 256

static void req_bufs_free(struct req_bufs *b)
{
    head_fini(&b->head);
    head_fini(&b->resp);
    free(b->out_head.p);
    if (b->replay)
        evbuffer_free(b->replay);
    free(b);
}

/* Before anything is parsed: the buffers of a spare set, or new ones. */
static void request_bufs_take(struct client *c)
{
    struct worker *w = c->w;
    struct request *r = &c->req;
    struct req_bufs *b = w->spare_bufs;
    if (b) {
        w->spare_bufs = b->next;
        w->n_spare_bufs--;
    } else {
        b = xcalloc(1, sizeof(*b));
    }
    head_limit(&b->head, w->cfg->max_header_bytes, w->cfg->max_headers); /* reset already */
    head_limit(&b->resp, w->cfg->max_header_bytes, w->cfg->max_headers);
    b->host[0] = b->target[0] = b->request_id[0] = '\0';
    r->bufs = b;
}

/* The request is over: its buffers go back to the worker, kept at their small sizes. */
static void request_bufs_give_back(struct client *c)
{
    struct worker *w = c->w;
    struct req_bufs *b = c->req.bufs;
    if (b && (w->n_spare_bufs >= MAX_SPARE_BUFS || w->stopping)) {
        req_bufs_free(b);
    } else if (b) {
        head_reset(&b->head);
        head_reset(&b->resp);
        out_head_reset(&b->out_head);
        if (b->replay)
            evbuffer_drain(b->replay, evbuffer_get_length(b->replay));
        b->next = w->spare_bufs;
        w->spare_bufs = b;
        w->n_spare_bufs++;
    }
    c->req = (struct request){0};
}

static void request_end(struct client *c)
{
    if (c->req.ws != NULL) {
        wsnap_release(c->w, c->req.ws);
        c->req.ws = NULL;
    }
}

#define MAX_SPARE_CLIENTS 128

/* Frees a TLS client's bufferevent; after an orderly end (<orderly>: all of the answer written)
 * a close_notify goes first, as from nginx, so that a client tells the end of a body that only
 * the end of the connection delimits from a cut one (none was sent until 2026-12-07; found by a
 * robustness test). It is written at once or not at all: libevent would not wait for it. Either
 * way the shutdown is said to be done: OpenSSL takes the session of an SSL freed without one
 * for a bad one and drops it from those clients resume by ID (sessions.c). */
static void client_tls_bev_free(struct bufferevent *bev, bool orderly)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (orderly && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        (void)SSL_shutdown(ssl);
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    bufferevent_free(bev);
}

/* A plain client's socket is closed already (or parked): its bufferevent never closes it. */
static void client_free(struct client *c)
{
    if (c->bev && c->tls)
        client_tls_bev_free(c->bev, false);
    else if (c->bev)
        bufferevent_free(c->bev);
    reader_fini(&c->rd);
    event_free(c->timer.ev);
    evbuffer_free(c->stage);
    if (c->req.bufs)
        req_bufs_free(c->req.bufs);
    free(c);
}

void client_spares_free(struct worker *w)
{
    while (w->spare) {
        struct client *c = w->spare;
        w->spare = c->next;
        client_free(c);
    }
    w->n_spare = 0;
    while (w->spare_bufs) {
        struct req_bufs *b = w->spare_bufs;
        w->spare_bufs = b->next;
        req_bufs_free(b);
    }
    w->n_spare_bufs = 0;
}

/* Whether the client sent bytes that were not read (a stray line end after its last request, a
 * TLS close_notify): a socket closed on them answers with a reset, which can destroy the end of
 * the answer still in flight. */
static bool socket_has_unread(evutil_socket_t fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* ---- idle connections ----
 *
 * Keep-alive connections waiting for their next request, in the order they began to wait: at
 * max-connections, the oldest that has nothing unread or queued gives its place to the new
 * client, as nginx reuses its idle keep-alive connections, so that idle ones never keep new
 * clients out. A server may close an idle connection at any time (RFC 9112 9.3). One that has
 * not sent a request yet is not taken: client-header-timeout bounds those. */
static void idle_list_add(struct client *c)
{
    struct worker *w = c->w;
    if (c->idle_listed)
        return;
    c->idle_listed = true;
    c->idle_next = NULL;
    c->idle_prev = w->idle_newest;
    if (w->idle_newest)
        w->idle_newest->idle_next = c;
    else
        w->idle_oldest = c;
    w->idle_newest = c;
}

static void idle_list_remove(struct client *c)
{
    struct worker *w = c->w;
    if (!c->idle_listed)
        return;
    c->idle_listed = false;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        w->idle_oldest = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        w->idle_newest = c->idle_prev;
}

/* Closes the oldest of the first few idle connections with nothing unread or queued; false when
 * there is none. */
static bool client_evict_idle(struct worker *w)
{
    int looked = 0;
    for (struct client *v = w->idle_oldest; v && looked < 8; v = v->idle_next, looked++) {
        if (v->state != C_IDLE || evbuffer_get_length(bufferevent_get_input(v->bev)) > 0 ||
            evbuffer_get_length(bufferevent_get_output(v->bev)) > 0 ||
            socket_has_unread(bufferevent_getfd(v->bev)))
            continue;
        ADD(w->proxy->metrics.idle_evicted, 1);
        client_close(v);
        return true;
    }
    return false;
}

void client_close(struct client *c)
{
    struct worker *w = c->w;
    bool orderly = c->state == C_CLOSING && !w->cut_off; /* the answer is out */
    idle_list_remove(c);
    if (orderly && !c->linger)
        c->linger = socket_has_unread(bufferevent_getfd(c->bev));
    /* A TLS session closes its socket when freed: the lingering close takes a duplicate. */
    evutil_socket_t linger_fd = -1;
    if (c->linger && !w->cut_off)
        linger_fd = c->tls ? fcntl(bufferevent_getfd(c->bev), F_DUPFD_CLOEXEC, 0)
                           : bufferevent_getfd(c->bev);
    if (c->up)
        upstream_release(c, false);
    request_end(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    reader_detach(&c->rd);
    if (c->tls) { /* its socket closes with it */
        client_tls_bev_free(c->bev, orderly);
        c->bev = NULL;
    }
    /* One closed while it is routed is kept in any case: the loop that routes it reads its state
     * (C_CLOSING) after. */
    if ((w->n_spare < MAX_SPARE_CLIENTS && !w->stopping) || c->routing) {
        /* Kept for the next accept: its timer, stage, reader events and a plain socket's
         * bufferevent are made once. Its timer stays pending if it is (lazy, it finds nothing to
         * do, or a deadline of the connection that takes this one over): deleting it now and
         * adding it again at the next accept would cost two timer queue changes per
         * connection. */
        if (!c->tls)
            bev_plain_park(c->bev, linger_fd < 0);
        c->timer_kind = T_NONE;
        c->state = C_CLOSING;
        request_bufs_give_back(c);
        evbuffer_drain(c->stage, evbuffer_get_length(c->stage));
        c->next = w->spare;
        w->spare = c;
        w->n_spare++;
    } else {
        evutil_socket_t fd = c->tls || linger_fd >= 0 ? -1 : bufferevent_getfd(c->bev);
        client_free(c);
        if (fd >= 0)
            evutil_closesocket(fd);
    }
    atomic_fetch_sub_explicit(&w->proxy->metrics.connections_active, 1, memory_order_relaxed);
    if (linger_fd >= 0)
        linger_start(w, linger_fd); /* which counts the connection until its socket closes */
    else
        atomic_fetch_sub(&w->proxy->connections, 1);
}

static void closing_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    client_close(arg);
}

/* Counts a client dropped because the write timeout fired: it took nothing of what was queued
 * for it for keepalive-timeout. */
static void slow_client_count(const struct client *c, short what)
{
    if ((what & (BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT)) == (BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT))
        ADD(c->w->proxy->metrics.slow_clients, 1);
}

static void closing_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    (void)bev;
    slow_client_count(c, what);
    c->linger = false; /* the client takes nothing, or the socket failed: no use waiting */
    client_close(c);
}

/* Whether the client may still be sending when its connection is closed: in the middle of a
 * request head or body, or with bytes read and not parsed (pipelined requests behind one that
 * ends the connection). A client that has sent a whole last request waits for the answer. */
static bool client_may_send_more(const struct client *c)
{
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        return true;
    return c->state == C_HEAD || (c->state == C_FORWARD && !c->req.body_done);
}

/* Stops reading and frees the connection once everything queued has been written. */
static void client_close_after_flush(struct client *c)
{
    idle_list_remove(c);
    c->linger = client_may_send_more(c);
    client_flush(c);
    c->state = C_CLOSING;
    client_timer_arm(c, T_NONE);
    if (c->up)
        upstream_release(c, false);
    request_end(c);
    reader_disable(&c->rd);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        client_close(c);
        return;
    }
    /* Writing on, in case an error or the write timeout (set at accept: a client that stops
     * reading cannot hold the connection forever) turned it off: either comes again. */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_setcb(c->bev, NULL, closing_write_cb, closing_event_cb, c);
    bufferevent_enable(c->bev, EV_WRITE);
}

/* ---- access log ---- */

/* The value of the first header <name> of the request's head (whole: trailers and the fields of
 * a head cut short are not looked at), for the log; "" when it has none. */
static const char *request_header(const struct request *r, const char *name, size_t *len_out)
{
    const struct head *h = r->bufs ? &r->bufs->head : NULL;
    size_t name_len = strlen(name);
    for (int i = 0; i < r->head_fields; i++) {
        const struct header *hd = &h->headers[i];
        if (head_name_is(h, hd, name, name_len)) {
            *len_out = hd->value_len;
            return h->text + hd->value;
        }
    }
    *len_out = 0;
    return "";
}

static void request_log(struct client *c)
{
    struct proxy *p = c->w->proxy;
    struct request *r = &c->req;
    const char *region = r->origin && r->ws ? r->ws->snap->regions[r->origin_region].name : "";
    const char *service = r->svc ? r->svc->name : "";
    /* A request refused before it was routed: the target as far as it was read. */
    if (r->bufs && !r->bufs->target[0] && r->bufs->head.url_len)
        snprintf(r->bufs->target, sizeof(r->bufs->target), "%.*s", (int)r->bufs->head.url_len,
                 r->bufs->head.text + r->bufs->head.url);
    const char *target = r->bufs ? r->bufs->target : "";
    int64_t total_us = proxy_elapsed_us(&r->t_start);
    /* No response head came (a 504, a 502, the client gone): the log has the last try's wait. */
    if (!r->resp_head_sent && r->tries)
        r->upstream_us = proxy_elapsed_us(&r->t_upstream);

    if (r->ws && r->svc && r->origin) {
        size_t s = (size_t)(r->svc - r->ws->snap->services);
        metrics_observe(r->ws->series[s * r->ws->snap->n_regions + r->origin_region], r->status,
                        r->resp_head_sent ? r->upstream_us : -1);
    } else if (r->ws && r->svc) {
        metrics_observe(r->ws->series_unrouted[r->svc - r->ws->snap->services], r->status, -1);
    } else {
        metrics_observe(p->metrics.unrouted, r->status, -1);
    }
    /* The origin's series: what it answered, or gslbd's 502 or 504 for it; not a client that
     * left (499) or stalled (408) before it answered. */
    if (r->origin && r->ws && (r->resp_head_sent || (r->status != 499 && r->status != 408)))
        metrics_observe(r->ws->targets[r->origin->index].metrics, r->status,
                        r->resp_head_sent ? r->upstream_us : -1);
    if (p->log == NULL)
        return;

    char client[IP_ADDR_STRLEN];
    /* A request refused before it was routed has no method of its own yet (llhttp knows it once
     * the target begins), nor a client address worked out: its peer's. */
    const char *method = r->head_done ? llhttp_method_name((llhttp_method_t)r->method)
                         : r->bufs && r->bufs->head.url_len
                             ? llhttp_method_name((llhttp_method_t)c->parser.method)
                             : "-";
    char balancer[IP_ADDR_STRLEN];
    ip_addr_format(r->client_addr.family ? &r->client_addr : &c->peer, client, sizeof(client));
    if (c->balancer.family) /* the peer is the socket's, not what its PROXY header named */
        ip_addr_format(&c->balancer, balancer, sizeof(balancer));
    struct accesslog_entry e = {
        .client = client,
        .peer = c->balancer.family ? balancer : c->peer_text,
        .country = r->geo.country,
        .service = service,
        .region = region,
        .origin = r->origin ? r->origin->address : "",
        .method = method,
        .target = target,
        /* Before routing, the parser's: 0 until the version came. */
        .major = r->major ? r->major : c->parser.http_major,
        .minor = r->major ? r->minor : c->parser.http_minor,
        .status = r->status,
        .retries = r->tries > 1 ? r->tries - 1 : 0,
        .bytes_in = r->bytes_in,
        .bytes_out = r->bytes_out,
        .total_us = total_us,
        .upstream_us = r->upstream_us,
        .request_id = !c->w->cfg->request_id_header[0] ? NULL
                      : r->bufs                        ? r->bufs->request_id
                                                       : "",
    };
    e.referer = request_header(r, "Referer", &e.referer_len);
    e.agent = request_header(r, "User-Agent", &e.agent_len);
    accesslog_record(p->log, &c->w->log_line, &e);
}

/* ---- responses of our own ---- */

/* An answer of the proxy's own is one line of plain text, "STATUS REASON: <message>". */
static int own_body_format(char *out, size_t cap, int status, const char *message)
{
    return snprintf(out, cap, "%d %s: %s\n", status, status_text(status), message);
}

/* Its head, with a Date (RFC 9110 6.6.1, as nginx's own answers) and the header lines
 * <fields>. */
static int own_head_format(char *out, size_t cap, int status, int body_len, const char *fields)
{
    char date[40];
    http_date(time(NULL), date, sizeof(date));
    return snprintf(out, cap,
                    "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: %d\r\n%sCache-Control: no-store\r\n\r\n",
                    status, status_text(status), date, body_len, fields);
}

/* Sends a response of the proxy's own straight to socket <fd>, with "Connection: close" and the
 * header lines <fields>, if the socket takes it at once: for a connection about to be closed
 * with no bufferevent (or none to wait for). */
static ssize_t own_answer_send(evutil_socket_t fd, int status, const char *message,
                               const char *fields)
{
    char body[160], head_fields[160], answer[800];
    int body_len = own_body_format(body, sizeof(body), status, message);
    snprintf(head_fields, sizeof(head_fields), "Connection: close\r\n%s", fields);
    int len = own_head_format(answer, sizeof(answer), status, body_len, head_fields);
    len += snprintf(answer + len, sizeof(answer) - (size_t)len, "%s", body);
    return send(fd, answer, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Writes a response of the proxy's own: <message> as one line of plain text, and "Connection:
 * close" unless <keep_alive>. */
static void own_response_write(struct client *c, int status, const char *message, bool keep_alive)
{
    struct request *r = &c->req;
    client_flush(c); /* interim heads already relayed go out before ours */
    char body[160], fields[320], head[640];
    int body_len = own_body_format(body, sizeof(body), status, message);
    int n = snprintf(fields, sizeof(fields), "%s%s", keep_alive ? "" : "Connection: close\r\n",
                     /* RFC 9110 15.5.6, 9.3.7; all but CONNECT and TRACE are forwarded */
                     status == 405 || (status == 200 && r->method == HTTP_OPTIONS)
                         ? "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n"
                         : "");
    /* The ID of a request that was forwarded (a 502, a 504...): what to quote in a report. */
    if (r->bufs && r->bufs->request_id[0])
        snprintf(fields + n, sizeof(fields) - (size_t)n, "%s: %s\r\n", c->w->cfg->request_id_header,
                 r->bufs->request_id);
    int head_len = own_head_format(head, sizeof(head), status, body_len, fields);
    evbuffer_add(bufferevent_get_output(c->bev), head, (size_t)head_len);
    if (!r->head_method)
        evbuffer_add(bufferevent_get_output(c->bev), body, (size_t)body_len);
    r->status = status;
    r->bytes_out += (uint64_t)head_len + (r->head_method ? 0 : (uint64_t)body_len);
    log_debug("proxy: %d %s", status, message);
}

void client_cut_off(struct client *c)
{
    struct request *r = &c->req;
    if (c->state == C_FORWARD) {
        if (!r->resp_head_sent && !c->tls) { /* a 503 goes out, if the socket takes it */
            client_flush(c);                 /* interim heads relayed before it */
            own_answer_send(bufferevent_getfd(c->bev), 503, "the proxy is shutting down", "");
        }
        r->status = r->status ? r->status : 503;
        request_log(c);
    }
    client_close(c);
}

void client_fail(struct client *c, int status, const char *message)
{
    struct request *r = &c->req;
    if (c->state == C_CLOSING)
        return;
    if (r->resp_head_sent || c->state == C_TUNNEL) {
        /* Part of a response has gone out: pass on what came, then cut the connection, the only
         * honest signal left (the framing shows the client the response is incomplete). */
        r->status = r->status ? r->status : status;
        if (c->state != C_IDLE)
            request_log(c);
        client_close_after_flush(c);
        return;
    }
    own_response_write(c, status, message, false);
    if (c->state != C_IDLE)
        request_log(c);
    client_close_after_flush(c);
}

/* Body bytes for the client gather in <stage>, a plain evbuffer with no callbacks, and reach the
 * bufferevent in one move per origin read: adding to a bufferevent's output runs its callbacks
 * and re-arms its write event, which per body fragment cost more than the copy. */
void client_write(struct client *c, const void *data, size_t len)
{
    evbuffer_add(c->stage, data, len);
    c->req.bytes_out += len;
}

void client_write_head(struct client *c, size_t len)
{
    if (c->head_pending > 0) /* its body did not come with it: staged, ahead of the rest */
        evbuffer_prepend(c->stage, c->w->scratch.p, c->head_pending);
    c->head_pending = 0;
    if (len == 0)
        return;
    if (c->tls || evbuffer_get_length(c->stage) > 0)
        evbuffer_add(c->stage, c->w->scratch.p, len);
    else
        c->head_pending = len;
}

/* A body this small is copied after its head rather than sent from where it lies: the copy costs
 * less than the kernel's reading of a two-part vector. */
#define SEND_COPY_MAX 1024

void client_send_head_and(struct client *c, const char *body, size_t len)
{
    struct sbuf *scratch = &c->w->scratch;
    size_t head_len = c->head_pending;
    c->head_pending = 0;
    if (len <= SEND_COPY_MAX && scratch->cap - head_len >= len) {
        /* A small body joins the head: one send(), cheaper than a two-part sendmsg(). */
        memcpy(scratch->p + head_len, body, len);
        bev_write_through_bytes(c->bev, scratch->p, head_len + len);
        return;
    }
    struct iovec iov[2] = {{scratch->p, head_len}, {(void *)(uintptr_t)body, len}};
    bev_write_through_iov(c->bev, iov, 2);
}

void client_flush(struct client *c)
{
    client_write_head(c, 0);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(c->stage) > 0) {
        if (c->tls)
            evbuffer_add_buffer(out, c->stage);
        else
            bev_write_through(c->bev, c->stage);
    }
    /* Checked with nothing staged too: a small response's head and body went out in one writev
     * (client_send_head_and), and what the socket did not take is in <out>. */
    if (c->up && evbuffer_get_length(out) >= PROXY_HIGH_WATER) {
        /* The client reads slower than the origin sends: stop reading the origin until the
         * client's buffer drains (client_write_cb). */
        reader_disable(&c->up->rd);
        bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_HIGH_WATER / 2, 0);
    }
}

/* ---- request parsing ---- */

static struct client *client_of(llhttp_t *parser)
{
    return parser->data;
}

static int on_message_begin(llhttp_t *parser)
{
    struct client *c = client_of(parser);
    if (c->state == C_IDLE) {
        c->state = C_HEAD;
        idle_list_remove(c);
        proxy_now(&c->req.t_start);
    }
    return 0;
}

/* max-header-size counts the head's bytes as they came, separators and line ends too (the head's
 * text leaves those out): those up to <end>, in the buffer being parsed. A request's parse starts
 * in a buffer of its own (the one before pauses after it), so what it used before is bytes_in. */
static bool head_within_limit(struct client *c, const char *end)
{
    struct request *r = &c->req;
    if (r->head_done || r->bytes_in + (size_t)(end - c->chunk_start) <= c->w->cfg->max_header_bytes)
        return true; /* trailer fields are limited by the head's text alone */
    r->bufs->head.too_large = true;
    return false;
}

/* A piece of the request head, within the limit, into its text: llhttp's 0, or -1. */
static int request_head_append(struct client *c, int what, const char *at, size_t len,
                               unsigned edges)
{
    return head_within_limit(c, at + len) && head_append(&c->req.bufs->head, what, at, len, edges)
               ? 0
               : -1;
}

static int on_url(llhttp_t *parser, const char *at, size_t len)
{
    struct client *c = client_of(parser);
    /* Known from here on: an answer to a HEAD has no body, even a refusal of its head. */
    c->req.head_method = parser->method == HTTP_HEAD;
    return request_head_append(c, HEAD_PART_URL, at, len, 0);
}

static int on_header_field(llhttp_t *parser, const char *at, size_t len)
{
    return request_head_append(client_of(parser), HEAD_PART_NAME, at, len, 0);
}

static int on_header_value(llhttp_t *parser, const char *at, size_t len)
{
    struct client *c = client_of(parser);
    unsigned edges = (at == c->chunk_start ? HEAD_STARTS_READ : 0) |
                     (at + len == c->chunk_end ? HEAD_ENDS_READ : 0);
    return request_head_append(c, HEAD_PART_VALUE, at, len, edges);
}

static int on_header_value_complete(llhttp_t *parser)
{
    head_value_complete(&client_of(parser)->req.bufs->head);
    return 0;
}

static int on_headers_complete(llhttp_t *parser)
{
    struct client *c = client_of(parser);
    c->req.head_done = true;
    c->req.head_fields = c->req.bufs->head.n_headers;
    /* With a body, stop here so no body byte is consumed before the origin is ready; without
     * one, on_message_complete pauses. Either way request_route() runs outside the parser. */
    return (parser->flags & F_CHUNKED) || parser->content_length > 0 ? HPE_PAUSED : 0;
}

/* A chunk is refused as its size comes, before any of it is forwarded: past max-body-size (a
 * Content-Length is, in the head), or past what any file could hold (2^63 - 1, as nginx). */
static int on_chunk_header(llhttp_t *parser)
{
    struct client *c = client_of(parser);
    uint64_t max = c->w->cfg->max_body_bytes;
    if (parser->content_length > INT64_MAX ||
        (max && parser->content_length > max - c->req.body_bytes))
        return -1; /* request_parse_error() answers 400 or 413 */
    return 0;
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    struct client *c = client_of(parser);
    c->req.body_bytes += len;
    c->req.body_started = true;
    upstream_write_body(c, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *parser)
{
    struct client *c = client_of(parser);
    if (c->req.chunked && !upstream_end_chunked_body(c))
        return -1; /* request_parse_error() answers 400 */
    c->req.body_done = true;
    /* A Connection: close among trailer fields, which llhttp heeds (nothing after it is read):
     * the answer says so, as the close that follows it. */
    c->req.keep_alive = c->req.keep_alive && head_keeps_alive(&c->req.bufs->head, parser);
    reader_set_timeout(&c->rd, NULL);
    if (c->state == C_FORWARD)
        upstream_request_sent(c);
    return HPE_PAUSED; /* pipelined requests wait for this response */
}

static const llhttp_settings_t request_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_chunk_header = on_chunk_header,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- routing a parsed head ---- */

static bool is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* A Host value or an absolute-form authority (RFC 3986 3.2.2, 3.2.3): a reg-name (unreserved,
 * pct-encoded and sub-delims characters) or an IPv6 literal in brackets, then, after a ':', a
 * port of at most five digits and 65535. ("[::1", "a.example:abc", "a.example:999999" went on
 * until 2026-12-07.) */
static bool host_is_valid(const char *host, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    size_t end = 0;
    if (host[0] == '[') {
        while (++end < len && host[end] != ']') {
            char ch = host[end];
            if (!is_alnum(ch) && ch != ':' && ch != '.')
                return false;
        }
        if (end == len || end < 3)
            return false;
        end++;
    } else {
        for (; end < len && host[end] != ':'; end++) {
            char ch = host[end];
            if (!is_alnum(ch) && (ch == '\0' || !strchr("-._~!$&'()*+,;=%", ch)))
                return false;
        }
        if (end == 0)
            return false;
    }
    if (end == len)
        return true;
    if (host[end] != ':' || len - end - 1 > 5)
        return false;
    unsigned port = 0;
    for (size_t i = end + 1; i < len; i++) {
        if (host[i] < '0' || host[i] > '9')
            return false;
        port = port * 10 + (unsigned)(host[i] - '0');
    }
    return port <= 65535;
}

/* Whether the connection's peer is a trusted proxy: worked out once per connection, and again
 * after a reload changed the list. */
static bool peer_trusted(struct client *c)
{
    if (c->trusted_generation != c->w->live_generation) {
        c->peer_trusted = proxy_peer_trusted(c->w->cfg, &c->peer);
        c->trusted_generation = c->w->live_generation;
    }
    return c->peer_trusted;
}

/* The client address: the peer, or the rightmost untrusted entry of X-Forwarded-For (or of the
 * client-ip-header) when the peer is trusted (walking right to left over trusted hops, as nginx's
 * real_ip_recursive does). */
static void client_address(struct client *c)
{
    struct request *r = &c->req;
    r->client_addr = c->peer;
    if (!peer_trusted(c))
        return;
    const struct head *h = &r->bufs->head;
    const char *named = c->w->cfg->client_ip_header;
    size_t named_len = *named ? strlen(named) : 0;
    for (int i = h->n_headers - 1; i >= 0; i--) {
        const struct header *hd = &h->headers[i];
        if (named_len ? !head_name_is(h, hd, named, named_len) : hd->id != H_X_FORWARDED_FOR)
            continue;
        const char *v = h->text + hd->value;
        size_t end = hd->value_len;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t a = start, b = end;
            while (a < b && (v[a] == ' ' || v[a] == '\t'))
                a++;
            while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
                b--;
            if (a == b) { /* an empty item, which a list's recipient ignores (RFC 9110 5.6.1) */
                end = start > 0 ? start - 1 : 0;
                continue;
            }
            struct ip_addr addr;
            if (ip_addr_parse_v4(v + a, b - a, &addr) != 0) { /* not the common case */
                char item[IP_ADDR_STRLEN + 8];
                if (b - a >= sizeof(item))
                    return;
                memcpy(item, v + a, b - a);
                item[b - a] = '\0';
                if (item[0] == '[') { /* [v6]:port */
                    char *close = strchr(item, ']');
                    if (close)
                        *close = '\0';
                    memmove(item, item + 1, strlen(item));
                } else if (strchr(item, ':') == strrchr(item, ':') && strchr(item, '.')) {
                    char *colon = strchr(item, ':'); /* v4:port */
                    if (colon)
                        *colon = '\0';
                }
                if (ip_addr_parse(item, &addr) != 0)
                    return; /* garbage: keep the last trusted hop */
                addr = ip_addr_unmap_v4(&addr);
            }
            r->client_addr = addr;
            if (!proxy_peer_trusted(c->w->cfg, &addr))
                return;
            end = start > 0 ? start - 1 : 0;
        }
    }
}

/* The Max-Forwards of an OPTIONS request (RFC 9110 7.6.2; TRACE is refused), which counts the
 * proxies still allowed to forward it: -1 when there is none, -2 when it is not one number.
 * Large values saturate: only whether they reach 0 matters. */
static int64_t max_forwards(const struct head *h)
{
    size_t len;
    int count;
    const char *value = head_get(h, H_MAX_FORWARDS, &len, &count);
    if (value == NULL)
        return -1;
    if (count != 1 || len == 0)
        return -2;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -2;
        if (n < 1000000000)
            n = n * 10 + (value[i] - '0');
    }
    return n;
}

/* The request's ID (request-id-header): <given>, a trusted peer's, when it fits (1 to
 * REQUEST_ID_MAX visible ASCII characters), else a new one: 128 bits as 32 hex digits, nginx's
 * $request_id form. Each worker's splitmix64 sequence starts at a random point and repeats no
 * value within 2^64 steps, so that no two of a worker's IDs are alike. */
static void request_id_set(struct client *c, const char *given, size_t given_len)
{
    static const char hex[] = "0123456789abcdef";
    char *id = c->req.bufs->request_id;
    bool fits = given_len > 0 && given_len <= REQUEST_ID_MAX;
    for (size_t i = 0; fits && i < given_len; i++)
        fits = given[i] > ' ' && given[i] < 0x7f;
    if (fits) {
        memcpy(id, given, given_len);
        id[given_len] = '\0';
        return;
    }
    for (int half = 0; half < 2; half++) {
        uint64_t x = hash_mix64(c->w->request_id_next += 0x9e3779b97f4a7c15ULL);
        for (int i = 0; i < 16; i++, x >>= 4)
            id[half * 16 + i] = hex[x & 15];
    }
    id[32] = '\0';
}

/* Builds the head sent to the origin (kept for retries); <forwards>: max_forwards() of an
 * OPTIONS, -1 for other methods. */
static void request_build_head(struct client *c, const char *path, size_t path_len,
                               int64_t forwards)
{
    struct request *r = &c->req;
    const struct head *h = &r->bufs->head;
    bool trusted = peer_trusted(c);
    size_t host_len = strlen(r->bufs->host);
    struct sbuf out = r->bufs->out_head; /* the buffer of an earlier request, if any */

    out.len = 0;
    sbuf_adds(&out, llhttp_method_name((llhttp_method_t)r->method));
    sbuf_add(&out, " ", 1);
    /* An absolute-form target may have no path (RFC 9112 3.2.1, 3.2.4). */
    if (path_len == 0 && r->method == HTTP_OPTIONS)
        sbuf_add(&out, "*", 1);
    else if (path_len == 0 || path[0] == '?')
        sbuf_add(&out, "/", 1);
    sbuf_add(&out, path, path_len);
    SBUF_LIT(&out, " HTTP/1.1\r\n");
    sbuf_add_header(&out, "Host", 4, r->bufs->host, host_len);
    int n_xff = 0, n_via = 0, n_forwarded = 0;
    const char *id_name = c->w->cfg->request_id_header;
    size_t id_name_len = strlen(id_name);
    const char *ip_name = c->w->cfg->client_ip_header; /* "": X-Forwarded-For */
    size_t ip_name_len = strlen(ip_name);
    const struct header *given_id = NULL; /* a trusted peer's: the only one, or none is kept */
    int n_given_id = 0;
    for (int i = 0; i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        const char *value = h->text + hd->value;
        if (id_name_len && head_name_is(h, hd, id_name, id_name_len)) {
            given_id = hd;
            n_given_id++;
            continue;
        }
        /* Forwarded from an untrusted peer is whatever the client made up, as its
         * X-Forwarded-For is; the client-ip-header is written below, with the client found, and
         * no look-alike of what we set goes on. */
        if (hd->id == H_HOST || hd->id == H_CONTENT_LENGTH || hd->id == H_X_FORWARDED_PROTO ||
            hd->id == H_X_FORWARDED_HOST || (hd->id == H_MAX_FORWARDS && forwards >= 0) ||
            hd->id == H_EXPECT || (hd->id == H_FORWARDED && !trusted) ||
            head_is_set_for_origin(h, hd, c->w->cfg) || head_is_hop_by_hop(h, hd))
            continue;
        if (hd->id == H_VIA || hd->id == H_X_FORWARDED_FOR ||
            (hd->id == H_FORWARDED && c->w->cfg->forwarded_header)) { /* one line each, below */
            n_via += hd->id == H_VIA;
            n_xff += hd->id == H_X_FORWARDED_FOR;
            n_forwarded += hd->id == H_FORWARDED;
            continue;
        }
        sbuf_add_header(&out, h->text + hd->name, hd->name_len, value, hd->value_len);
    }
    /* From an untrusted peer the chain is whatever the client made up: dropped. */
    SBUF_LIT(&out, "X-Forwarded-For: ");
    if (trusted)
        head_add_list(&out, h, H_X_FORWARDED_FOR, n_xff);
    sbuf_adds(&out, c->peer_text);
    if (c->tls)
        SBUF_LIT(&out, "\r\nX-Forwarded-Proto: https\r\n");
    else
        SBUF_LIT(&out, "\r\nX-Forwarded-Proto: http\r\n");
    if (host_len) /* an HTTP/1.0 request may name none: Host goes on empty (RFC 9112 3.2) */
        sbuf_add_header(&out, "X-Forwarded-Host", 16, r->bufs->host, host_len);
    char client[IP_ADDR_STRLEN];
    if (ip_name_len || c->w->cfg->forwarded_header)
        ip_addr_format(&r->client_addr, client, sizeof(client));
    if (ip_name_len) /* one, naming the client found: an origin can trust it */
        sbuf_add_header(&out, ip_name, ip_name_len, client, strlen(client));
    if (c->w->cfg->forwarded_header) {
        bool v6 = r->client_addr.family == AF_INET6;
        SBUF_LIT(&out, "Forwarded: "); /* a trusted peer's chain, then our element */
        head_add_list(&out, h, H_FORWARDED, n_forwarded);
        SBUF_LIT(&out, "for=");
        sbuf_adds(&out, v6 ? "\"[" : "");
        sbuf_adds(&out, client);
        sbuf_adds(&out, v6 ? "]\"" : "");
        sbuf_adds(&out, c->tls ? ";proto=https" : ";proto=http");
        if (host_len) {
            SBUF_LIT(&out, ";host=\"");
            sbuf_add(&out, r->bufs->host, host_len);
            SBUF_LIT(&out, "\"");
        }
        SBUF_LIT(&out, "\r\n");
    }
    if (forwards > 0) { /* 0 was answered here */
        SBUF_LIT(&out, "Max-Forwards: ");
        sbuf_add_uint(&out, (uint64_t)forwards - 1);
        SBUF_LIT(&out, "\r\n");
    }
    head_add_via(&out, h, n_via, r->minor);
    if (r->chunked) {
        SBUF_LIT(&out, "Transfer-Encoding: chunked\r\n");
    } else if (c->parser.flags & F_CONTENT_LENGTH) {
        SBUF_LIT(&out, "Content-Length: ");
        sbuf_add_uint(&out, c->parser.content_length);
        SBUF_LIT(&out, "\r\n");
    }
    if (id_name_len) {
        bool keep = trusted && n_given_id == 1;
        request_id_set(c, keep ? h->text + given_id->value : NULL, keep ? given_id->value_len : 0);
        sbuf_add_header(&out, id_name, id_name_len, r->bufs->request_id,
                        strlen(r->bufs->request_id));
    }
    if (r->websocket) /* the one protocol tunnelled, whatever else the client's Upgrade lists */
        SBUF_LIT(&out, "Upgrade: websocket\r\nConnection: upgrade\r\n");
    SBUF_LIT(&out, "\r\n");
    r->bufs->out_head = out;
}

/* A sticky client's origin, if it is draining (or in a draining region), still healthy, and
 * served this client within the drain window: the client finishes its session there. Sets
 * r->origin_region to the origin's region. */
static const struct gslb_origin *sticky_draining_origin(struct client *c,
                                                        const struct gslb_health *health)
{
    struct request *r = &c->req;
    const struct gslb_snapshot *snap = r->ws->snap;
    uint16_t tag;
    if (!sticky_recall(&c->w->proxy->sticky, &r->client_addr, c->w->cfg->sticky_drain_window_ms,
                       proxy_now_ms(), &tag))
        return NULL;
    for (size_t p = 0; p < r->svc->n_pools; p++) {
        const struct gslb_pool *pool = &r->svc->pools[p];
        const struct gslb_region *region = &snap->regions[pool->region];
        size_t up_at = (size_t)(r->svc - snap->services) * snap->n_regions + pool->region;
        if (region->state == DB_REGION_DISABLED || (health->region_up && !health->region_up[up_at]))
            continue;
        for (size_t o = 0; o < pool->n_origins; o++) {
            const struct gslb_origin *origin = &pool->origins[o];
            if ((origin->hash_key & 0xffff) != tag || origin->weight == 0 ||
                origin->state == DB_ORIGIN_DISABLED ||
                (health->origin_up && !health->origin_up[origin->index]))
                continue;
            if (origin->state != DB_ORIGIN_DRAINING && region->state != DB_REGION_DRAINING)
                return NULL; /* not draining: the decision sends the client there anyway */
            r->origin_region = pool->region;
            return origin;
        }
    }
    return NULL;
}

/* Checks the parsed head, finds the service and the regions, and starts the origin side.
 * Returns false when it answered with an error itself. */
static bool request_route(struct client *c)
{
    struct request *r = &c->req;
    struct proxy *p = c->w->proxy;
    const struct head *h = &r->bufs->head;
    size_t len;
    int count;

    r->major = c->parser.http_major;
    r->minor = c->parser.http_minor;
    r->method = c->parser.method;
    r->keep_alive = head_keeps_alive(h, &c->parser) && !c->close_after;
    r->chunked = (c->parser.flags & F_CHUNKED) != 0;
    r->idempotent = r->method == HTTP_GET || r->method == HTTP_HEAD || r->method == HTTP_OPTIONS ||
                    r->method == HTTP_PUT || r->method == HTTP_DELETE;
    r->body_kept = r->idempotent; /* a retry may send it again, while it is small */
    char *target = r->bufs->target;
    size_t target_len =
        h->url_len < sizeof(r->bufs->target) - 1 ? h->url_len : sizeof(r->bufs->target) - 1;
    memcpy(target, h->text + h->url, target_len);
    target[target_len] = '\0';
    const char *bad = head_check_chars(h);
    if (bad) {
        ADD(p->metrics.bad_requests, 1);
        client_fail(c, 400, bad);
        return false;
    }
    if (r->major != 1 || r->minor > 1) {
        client_fail(c, 505, "only HTTP/1.0 and HTTP/1.1 are served here");
        return false;
    }
    if (r->method == HTTP_CONNECT) {
        client_fail(c, 405, "CONNECT is not supported by a reverse proxy");
        return false;
    }
    if (r->method == HTTP_TRACE) {
        /* TRACE echoes the request as the origin got it: the forwarding headers added here,
         * and credentials a browser attached (cross-site tracing). nginx refuses it too. */
        client_fail(c, 405, "TRACE is not forwarded");
        return false;
    }
    if (head_get(h, H_TRANSFER_ENCODING, &len, &count)) {
        /* RFC 9112 6.1 says an HTTP/1.0 message with Transfer-Encoding has faulty framing, and
         * 6.3 that one whose final coding is not chunked has no length (llhttp refuses most,
         * not an empty value). Other codings before chunked we do not decode. */
        if (r->minor == 0 || !r->chunked) {
            ADD(p->metrics.bad_requests, 1);
            client_fail(c, 400,
                        r->minor == 0 ? "Transfer-Encoding in an HTTP/1.0 request"
                                      : "Transfer-Encoding without chunked as its final coding");
            return false;
        }
        if (!head_list_is_only(h, H_TRANSFER_ENCODING, "chunked")) {
            client_fail(c, 501, "only the chunked transfer coding is supported");
            return false;
        }
    }
    /* Expect is a list (RFC 9110 10.1.1): an empty one expects nothing (it was a 417 until
     * 2026-12-07). An HTTP/1.0 client's is ignored, and none is forwarded. */
    bool expect = false;
    if (r->minor == 1 && !head_list_all_are(h, H_EXPECT, "100-continue", &expect)) {
        client_fail(c, 417, "only Expect: 100-continue is understood");
        return false;
    }
    r->expect_continue = expect && ((c->parser.flags & F_CHUNKED) || c->parser.content_length > 0);
    if (c->w->cfg->max_body_bytes && (c->parser.flags & F_CONTENT_LENGTH) &&
        c->parser.content_length > c->w->cfg->max_body_bytes) {
        ADD(p->metrics.bad_requests, 1);
        client_fail(c, 413, "the request body is larger than allowed");
        return false;
    }

    /* Target and host: origin-form with Host, or absolute-form whose authority wins. */
    const char *path = h->text + h->url;
    size_t path_len = h->url_len;
    const char *host = head_get(h, H_HOST, &len, &count);
    if (count > 1 || (count == 0 && r->minor == 1)) {
        ADD(p->metrics.bad_requests, 1);
        client_fail(c, 400, count ? "more than one Host header" : "missing Host header");
        return false;
    }
    size_t scheme_len = path_len > 7 && strncasecmp(path, "http://", 7) == 0    ? 7
                        : path_len > 8 && strncasecmp(path, "https://", 8) == 0 ? 8
                                                                                : 0;
    if (scheme_len > 0) { /* absolute-form: the authority is the host (RFC 9112 3.2.2) */
        host = path + scheme_len;
        path_len -= scheme_len;
        for (len = 0; len < path_len && host[len] != '/' && host[len] != '?';)
            len++;
        path = host + len; /* empty, or from its '/' or '?' on: request_build_head() */
        path_len -= len;
    } else if (!(path_len > 0 && path[0] == '/') &&
               !(path_len == 1 && path[0] == '*' && r->method == HTTP_OPTIONS)) {
        ADD(p->metrics.bad_requests, 1);
        client_fail(c, 400, "invalid request target");
        return false;
    }
    if (host && !host_is_valid(host, len)) {
        ADD(p->metrics.bad_requests, 1);
        client_fail(c, 400, "invalid Host header");
        return false;
    }
    int64_t forwards = r->method == HTTP_OPTIONS ? max_forwards(h) : -1;
    if (forwards == -2) {
        ADD(p->metrics.bad_requests, 1);
        client_fail(c, 400, "invalid Max-Forwards header");
        return false;
    }
    if (forwards == 0) /* the last recipient allowed: the proxy answers (RFC 9110 7.6.2) */
        return client_answer(c, 200, "OPTIONS answered by the proxy: Max-Forwards was 0");
    size_t host_len = host ? len : 0; /* host_is_valid() capped it below 256 */
    memcpy(r->bufs->host, host ? host : "", host_len);
    r->bufs->host[host_len] = '\0';

    /* WebSocket is the one upgrade we tunnel; others (h2c) are dropped and served as HTTP/1.1,
     * and so is any in an HTTP/1.0 request, whose Upgrade a server must ignore (RFC 9110 7.8). */
    r->websocket = r->minor == 1 && c->parser.upgrade &&
                   head_has_token(h, H_UPGRADE, "websocket") &&
                   head_has_token(h, H_CONNECTION, "upgrade") && r->method == HTTP_GET;

    /* Where to: client address, location, service, regions. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    client_address(c);
    geo_lookup(p->geo, &r->client_addr, &r->geo);
    ADD(p->metrics.geo_lookups, 1);
    if (r->geo.location_source != GEO_LOCATION_NONE)
        ADD(p->metrics.geo_located, 1);
    r->ws = worker_wsnap(c->w);
    r->ws->inflight++;
    r->svc = gslb_service_find(r->ws->snap, r->bufs->host);
    if (r->svc == NULL)
        return client_answer(c, 404, "no service for this host");
    struct gslb_decision *d = c->w->decision;
    struct gslb_health health = {r->ws->origin_up, r->ws->view ? r->ws->view->region_up : NULL,
                                 r->ws->snap->version};
    gslb_decide(r->ws->snap, r->svc, &r->client_addr, &r->geo, &health, d);
    r->pinned = r->svc->sticky ? sticky_draining_origin(c, &health) : NULL;
    if (r->pinned)
        r->regions[r->n_regions++] = r->origin_region;
    for (size_t i = 0; i < d->n_candidates && r->n_regions < REQ_MAX_REGIONS; i++) {
        if (d->candidates[i].state == GSLB_REGION_UP &&
            !(r->pinned && d->candidates[i].region == r->origin_region))
            r->regions[r->n_regions++] = d->candidates[i].region;
    }
    ADD(p->metrics.decisions, 1);
    struct timespec t1; /* the clock itself: a held one would say 0 */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ADD(p->metrics.decision_ns_sum,
        (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec)));
    if (r->n_regions == 0)
        return client_answer(c, 503, "no region is available");
    request_build_head(c, path, path_len, forwards);
    c->state = C_FORWARD;
    client_timer_arm(c, T_NONE);
    upstream_start(c);
    return true;
}

/* ---- the read loop ---- */

/* llhttp knows a fixed set of methods and stops at the first byte that leaves them, where <in>
 * now starts (what it took were letters of known methods). A request line that is well formed
 * all the same (the rest of a method token, a target, an HTTP version), and already here whole,
 * names a method we do not implement: 501 (RFC 9110 9.1), not 400. Left at 400: a known
 * method's first letters alone ("GE /"), which we cannot tell from a space after the empty lines
 * llhttp skips before a request. */
static bool request_line_has_unknown_method(struct evbuffer *in)
{
    size_t eol_len;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
    if (eol.pos <= 0 || eol.pos > 8192)
        return false;
    const char *line = (const char *)evbuffer_pullup(in, eol.pos);
    size_t len = (size_t)eol.pos, method = token_span(line, len), target = method + 1;
    while (target < len && line[target] > ' ' && line[target] != 0x7f)
        target++;
    const char *version = line + target + 1;
    return method > 0 && method < len && line[method] == ' ' && target > method + 1 &&
           len == target + 9 && line[target] == ' ' && memcmp(version, "HTTP/", 5) == 0 &&
           version[5] >= '0' && version[5] <= '9' && version[6] == '.' && version[7] >= '0' &&
           version[7] <= '9';
}

/* llhttp refuses versions other than 0.9, 1.0, 1.1 and 2.0 as "invalid", having read their
 * digits; where <in> now starts, the rest of the version and the line's end follow. A well formed
 * version that we do not serve gets 505 (gslbd answers 2.0 and 0.9 so itself), not 400. */
static bool request_line_has_other_version(struct evbuffer *in)
{
    char rest[8];
    ev_ssize_t n = evbuffer_copyout(in, rest, sizeof(rest));
    ev_ssize_t i = 0;
    while (i < n && ((rest[i] >= '0' && rest[i] <= '9') || rest[i] == '.'))
        i++;
    return i + 1 < n && rest[i] == '\r' && rest[i + 1] == '\n';
}

static void request_parse_error(struct client *c, llhttp_errno_t err)
{
    struct request *r = &c->req;
    struct proxy *p = c->w->proxy;
    if (err == HPE_CLOSED_CONNECTION) {
        /* Bytes after a request that ended the connection by a Connection: close in its
         * trailer fields, which llhttp heeds (we forward no such field): no request, so no
         * answer; the connection ends as that request said. */
        client_close_after_flush(c);
        return;
    }
    ADD(p->metrics.bad_requests, 1);
    if (r->bufs->head.too_large && r->bufs->head.n_headers == 0) /* in the request line */
        client_fail(c, 414, "request target too long");
    else if (r->bufs->head.too_large || r->bufs->head.too_many)
        client_fail(c, 431,
                    r->bufs->head.too_many ? "too many header fields" : "request head too large");
    else if (err == HPE_CB_CHUNK_HEADER && c->parser.content_length <= INT64_MAX)
        client_fail(c, 413, "the request body is larger than allowed");
    else if (err == HPE_CB_CHUNK_HEADER)
        client_fail(c, 400, "chunk size too large");
    else if (r->bufs->head.folded)
        client_fail(c, 400, "obsolete line folding in a header");
    else if (err == HPE_CB_MESSAGE_COMPLETE) /* upstream_end_chunked_body() refused a trailer */
        client_fail(c, 400, "invalid character in a trailer field name");
    else if (err == HPE_INVALID_METHOD &&
             request_line_has_unknown_method(bufferevent_get_input(c->bev)))
        client_fail(c, 501, "unknown request method");
    else if ((err == HPE_INVALID_VERSION &&
              request_line_has_other_version(bufferevent_get_input(c->bev))) ||
             err == HPE_PAUSED_H2_UPGRADE) /* the HTTP/2 preface ("PRI * HTTP/2.0") */
        client_fail(c, 505, "only HTTP/1.0 and HTTP/1.1 are served here");
    else
        client_fail(c, 400,
                    err == HPE_USER ? "invalid request" : llhttp_get_error_reason(&c->parser));
}

/* Waiting for the client's next bytes, or for an answer: the socket is watched (for more bytes,
 * the client's end or pipelined requests), except once the last request of a connection
 * (Connection: close, HTTP/1.0) has been read whole: nothing more is read, so a client that
 * half-closes after it is still answered, and one that left is noticed by the write of its
 * answer. A plain client accepted with such a request never has its socket watched at all. */
static bool last_request_read(const struct client *c)
{
    return c->state == C_FORWARD && c->req.body_done && !c->req.keep_alive && !c->req.websocket;
}

static void client_watch(struct client *c)
{
    if (c->sent_end) { /* nothing more comes: what was read whole is answered, then it closes */
        if (c->state != C_FORWARD)
            client_close_after_flush(c); /* the answers, and no partial request's */
        else if (!c->req.body_done && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            client_gone(c); /* a body cut by the end */
        return;
    }
    if (last_request_read(c))
        reader_disable(&c->rd);
    else if (c->rd.unarmed)
        reader_enable(&c->rd);
}

void client_process(struct client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->state == C_IDLE || c->state == C_HEAD || c->state == C_FORWARD) {
        if (c->parser_paused || c->read_blocked || evbuffer_get_length(in) == 0) {
            client_watch(c);
            return;
        }
        if (c->state == C_IDLE) {
            if (c->close_after) { /* shutting down: no new requests */
                client_close_after_flush(c);
                return;
            }
            if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= PROXY_HIGH_WATER) {
                /* Pipelined requests from a client that takes too little of the answers wait
                 * until it has taken half (client_write_cb), as its body bytes would. */
                bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_HIGH_WATER / 2, 0);
                return;
            }
            client_timer_arm(c, T_HEADER);
        }
        if (c->req.bufs == NULL)
            request_bufs_take(c);
        struct evbuffer_iovec vec;
        evbuffer_peek(in, -1, NULL, &vec, 1); /* reads land in chains of up to 64 KiB */
        c->chunk_start = vec.iov_base;
        c->chunk_end = c->chunk_start + vec.iov_len;
        llhttp_errno_t err = llhttp_execute(&c->parser, vec.iov_base, vec.iov_len);
        size_t used = err == HPE_OK
                          ? vec.iov_len
                          : (size_t)(llhttp_get_error_pos(&c->parser) - (char *)vec.iov_base);
        evbuffer_drain(in, used);
        c->req.bytes_in += used;
        if (err == HPE_OK)
            continue;
        if (err == HPE_PAUSED_UPGRADE) {
            /* After a request that asked to switch protocols and was answered without switching
             * (a refused WebSocket, or an h2c upgrade we do not forward): go on with HTTP/1.1. */
            llhttp_resume_after_upgrade(&c->parser);
            continue;
        }
        if (err != HPE_PAUSED) {
            request_parse_error(c, err);
            return;
        }
        c->parser_paused = true;
        if (c->state == C_HEAD && c->req.head_done && c->req.ws == NULL) {
            /* Paused after the head, none of a body used: bytes_in is the head whole, its last
             * line ends too, which no callback counted. */
            if (c->req.bytes_in > c->w->cfg->max_header_bytes) {
                c->req.bufs->head.too_large = true;
                request_parse_error(c, HPE_USER);
                return;
            }
            c->routing = true;
            bool go_on = request_route(c);
            c->routing = false; /* <c> may be closed, its memory stays till the next accept */
            if (!go_on)
                return;
        }
    }
}

void client_body_resume(struct client *c)
{
    if (!c->parser_paused || c->req.body_done)
        return;
    if (c->req.expect_continue) {
        /* Ours, as the body can flow, as nginx and Envoy send theirs: the Expect is not
         * forwarded, since many origins never answer one, and a client that waits for the 100
         * would wait out its own timer (curl, a second) or ours (a 408). */
        c->req.expect_continue = false;
        client_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        client_flush(c);
    }
    c->parser_paused = false;
    llhttp_resume(&c->parser);
    reader_set_timeout(&c->rd, &c->w->timeout_tv[TO_CLIENT_BODY]);
    client_process(c);
}

/* The request is answered (the answer queued at least): logs it, and readies a connection that
 * stays open for the next request; false when it closes instead. */
static bool request_finish(struct client *c, bool upstream_reusable)
{
    struct request *r = &c->req;
    client_flush(c);
    if (!r->body_done)
        c->close_after = true; /* the origin answered before the body ended: unsynchronised */
    upstream_release(c, upstream_reusable && r->body_done);
    request_log(c);
    request_end(c);
    if (c->close_after || !r->keep_alive || c->w->stopping) {
        client_close_after_flush(c);
        return false;
    }
    request_bufs_give_back(c); /* the next request, if it is there, takes them again */
    c->state = C_IDLE;
    idle_list_add(c);
    client_timer_arm(c, T_KEEPALIVE);
    if (c->parser_paused)
        llhttp_resume(&c->parser);
    c->parser_paused = false;
    return true;
}

void client_response_done(struct client *c, bool upstream_reusable)
{
    if (request_finish(c, upstream_reusable))
        client_process(c);
}

bool client_answer(struct client *c, int status, const char *message)
{
    struct request *r = &c->req;
    if ((c->state != C_HEAD && c->state != C_FORWARD) || r->resp_head_sent || !r->body_done ||
        !r->keep_alive || r->minor != 1 || r->websocket || c->close_after || c->w->stopping) {
        client_fail(c, status, message);
        return false;
    }
    own_response_write(c, status, message, true);
    if (!request_finish(c, false))
        return false;
    if (!c->routing) /* else the read loop that is routing goes on with the next request */
        client_process(c);
    return true;
}

/* ---- bufferevent callbacks ---- */

static void client_read(struct client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in);
    if (c->expect_proxy_header) {
        size_t want = have < PROXYPROTO_PARSE_MAX ? have : PROXYPROTO_PARSE_MAX;
        struct ip_addr src;
        bool has_addr = false;
        int n = proxyproto_parse(evbuffer_pullup(in, (ssize_t)want), want, &src, &has_addr);
        if (n == 0 && !c->sent_end) {
            reader_enable(&c->rd); /* wait for the rest */
            return;
        }
        if (n <= 0) { /* not a header, or one the client's end cut */
            ADD(c->w->proxy->metrics.bad_requests, 1);
            client_close(c);
            return;
        }
        size_t take = (size_t)n < have ? (size_t)n : have;
        evbuffer_drain(in, take);
        have -= take;
        c->proxy_header_left = (uint32_t)((size_t)n - take);
        if (has_addr) {
            c->balancer = c->peer;
            c->peer = ip_addr_unmap_v4(&src);
            ip_addr_format(&c->peer, c->peer_text, sizeof(c->peer_text));
            c->trusted_generation = 0; /* a new peer: ask again */
        }
        c->expect_proxy_header = false;
    }
    if (c->proxy_header_left) { /* TLVs of a large v2 header, dropped as they come */
        size_t take = c->proxy_header_left < have ? c->proxy_header_left : have;
        evbuffer_drain(in, take);
        c->proxy_header_left -= (uint32_t)take;
        if (c->proxy_header_left) {
            if (c->sent_end)
                client_close(c);
            else
                reader_enable(&c->rd);
            return;
        }
    }
    client_process(c);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    proxy_clock_hold();
    client_read(arg);
    proxy_clock_release();
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    (void)bev;
    /* Output drained below the low watermark: the origin may send again, or the next request
     * be read. */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (c->up && c->up->piping)
        body_pipe_client_drained(c);
    else if (c->up && c->state == C_FORWARD)
        reader_enable(&c->up->rd);
    else if (c->state == C_IDLE)
        client_process(c); /* pipelined requests that waited for this */
}

/* A handshake that failed on plain HTTP (OpenSSL tells it by its first bytes): a 400 in plain
 * text says what happened, as nginx's does, instead of a bare close. True when it was that. */
static bool tls_plain_http_refuse(struct client *c)
{
    unsigned long err, http = 0;
    while ((err = bufferevent_get_openssl_error(c->bev)) != 0)
        http |= ERR_GET_REASON(err) == SSL_R_HTTP_REQUEST;
    if (!http)
        return false;
    own_answer_send(bufferevent_getfd(c->bev), 400, "plain HTTP was sent to an HTTPS port", "");
    ADD(c->w->proxy->metrics.bad_requests, 1);
    c->linger = true; /* the rest of the request is unread: no reset before it is read */
    c->state = C_CLOSING;
    client_close(c);
    return true;
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    (void)bev;
    if (what == BEV_EVENT_CONNECTED) /* a TLS handshake completed: requests may come */
        return;
    if (what == (BEV_EVENT_READING | BEV_EVENT_EOF) &&
        (last_request_read(c) || evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)) {
        /* The client ended its sending behind requests not parsed yet (pipelined ones wait
         * while one is forwarded; libevent may tell a TLS client's close_notify before the
         * requests that came in the same read) or, TLS (OpenSSL writes on), after its last
         * request: a half-close, as a plain client's FIN is. Those read whole are answered in
         * turn, and client_watch() ends the connection at what is left (a partial request, or
         * a body cut). A FIN behind nothing but a request in flight is the client leaving:
         * that request is abandoned (499), as nginx does. */
        c->sent_end = true;
        /* A plain client's reader tells of the end after the bytes before it were handed on:
         * with nothing in flight to come back for them, they are seen to now. */
        if (!c->tls && c->state != C_FORWARD)
            client_read(c);
        return;
    }
    if ((what & BEV_EVENT_ERROR) && c->tls && tls_plain_http_refuse(c))
        return;
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->state == C_FORWARD &&
        !c->req.body_done) {
        client_fail(c, 408, "request body timeout");
        return;
    }
    slow_client_count(c, what);
    client_gone(c);
}

/* EOF, error or timeout: the client is gone. A request in flight is abandoned. */
void client_gone(struct client *c)
{
    if (c->state == C_FORWARD || c->state == C_HEAD) {
        c->req.status = c->req.status ? c->req.status : 499;
        if (c->state == C_FORWARD)
            request_log(c);
    }
    client_close(c);
}

/* The address of an accepted socket's peer, as gslbd uses it (IPv4-mapped IPv6 unmapped), and
 * its text. */
static void peer_of(const struct sockaddr *sa, struct ip_addr *peer, char text[IP_ADDR_STRLEN])
{
    ip_addr_from_sockaddr(sa, peer);
    *peer = ip_addr_unmap_v4(peer);
    ip_addr_format(peer, text, IP_ADDR_STRLEN);
}

/* The access log's line for a client refused at the connection limit, unread: a 503 from its
 * peer for no request known, with the bytes dropped and those of the answer (none to TLS). */
static void refused_log(struct worker *w, const struct sockaddr *sa, uint64_t bytes_in,
                        uint64_t bytes_out)
{
    if (w->proxy->log == NULL)
        return;
    struct ip_addr peer;
    char text[IP_ADDR_STRLEN];
    peer_of(sa, &peer, text);
    struct accesslog_entry e = {
        .client = text,
        .peer = text,
        .country = "",
        .service = "",
        .region = "",
        .origin = "",
        .method = "-",
        .target = "",
        .referer = "",
        .agent = "",
        .request_id = w->cfg->request_id_header[0] ? "" : NULL,
        .status = 503,
        .bytes_in = bytes_in,
        .bytes_out = bytes_out,
    };
    accesslog_record(w->proxy->log, &w->log_line, &e);
}

void client_accept(struct worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                   const struct proxy_listen *listen)
{
    struct proxy *p = w->proxy;
    (void)salen;
    ADD(p->metrics.connections_total, 1);
    if (atomic_fetch_add(&p->connections, 1) >= w->cfg->max_connections && !client_evict_idle(w)) {
        atomic_fetch_sub(&p->connections, 1);
        ADD(p->metrics.connections_refused, 1);
        /* A TLS client would read the plain answer as a broken record: it gets the close alone,
         * a handshake being more than an overloaded proxy should spend on a refusal. */
        ssize_t sent =
            listen->tls ? 0 : own_answer_send(fd, 503, "too many clients", "Retry-After: 1\r\n");
        /* Closed with the request unread, the socket would send a reset, which may destroy the
         * 503 before the client reads it: what came (at accept, the request is there) is
         * discarded first, uncopied (MSG_TRUNC). */
        ssize_t dropped = recv(fd, NULL, 1 << 20, MSG_DONTWAIT | MSG_TRUNC);
        evutil_closesocket(fd);
        refused_log(w, sa, dropped > 0 ? (uint64_t)dropped : 0, sent > 0 ? (uint64_t)sent : 0);
        return;
    }
    SSL *ssl = listen->tls ? tls_server_session_new(w) : NULL;
    if (listen->tls && ssl == NULL) {
        atomic_fetch_sub(&p->connections, 1);
        evutil_closesocket(fd);
        return;
    }
    ADD(p->metrics.connections_active, 1);
    /* A spare connection keeps what struct client lists first and its reader's events; a new
     * one makes them. All else starts zeroed; the request's buffers come with its first byte. */
    struct client *c = w->spare;
    struct event *read_event = NULL, *read_timer = NULL;
    if (c) {
        w->spare = c->next;
        w->n_spare--;
        read_event = c->rd.ev;
        read_timer = c->rd.timer.ev; /* not pending: reader_detach() stopped it */
    } else {
        c = xmalloc(sizeof(*c));
        c->bev = NULL;
        c->timer = (struct lazy_timer){.ev = evtimer_new(w->base, timer_cb, c)};
        c->stage = evbuffer_new();
    }
    memset(&c->w, 0, sizeof(*c) - offsetof(struct client, w));
    c->w = w;
    peer_of(sa, &c->peer, c->peer_text);
    c->expect_proxy_header = listen->proxy_protocol && proxy_peer_trusted(c->w->cfg, &c->peer);
    if (ssl) { /* the handshake runs under the header timeout, like a slow request head */
        if (c->bev)
            bufferevent_free(c->bev); /* a spare's parked plain one */
        c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = true;
    } else if (c->bev) {
        bev_plain_reuse(c->bev, fd);
    } else {
        c->bev = bev_plain_new(w->base, fd);
    }
    c->rd.ev = read_event;
    c->rd.timer.ev = read_timer;
    reader_attach(&c->rd, c->bev, PROXY_READ_CHUNK);
    llhttp_init(&c->parser, HTTP_REQUEST, &request_settings);
    c->parser.data = c;
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    if (c->tls) { /* the session reads for itself */
        bufferevent_set_max_single_read(c->bev, PROXY_READ_CHUNK); /* libevent's: 4 KiB */
        bufferevent_setwatermark(c->bev, EV_READ, 0, PROXY_READ_CHUNK);
    } else {
        reader_take_over(&c->rd, w->base);
    }
    /* A client that takes none of what is queued for it for keepalive-timeout is dropped. */
    reader_set_write_timeout(&c->rd, w->timeouts[T_KEEPALIVE]);
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    /* Writing is on from the start, or (a reused one) as output is queued. */
    c->state = C_IDLE;
    client_timer_arm(c, T_HEADER);
    if (w->deferring && !c->tls) { /* the request is most likely there: read it now */
        reader_enable_unarmed(&c->rd);
        reader_read_now(&c->rd);
    } else {
        reader_enable(&c->rd);
    }
}

void client_shutdown_all(struct worker *w)
{
    struct client *c = w->clients;
    while (c) {
        struct client *next = c->next;
        c->close_after = true;
        if (c->state == C_IDLE)
            client_close(c);
        c = next;
    }
}

/* ---- WebSocket and other accepted upgrades: bytes both ways ---- */

static struct bufferevent *tunnel_peer(struct client *c, struct bufferevent *bev)
{
    return bev == c->bev ? c->up->bev : c->bev;
}

/* Which side <bev> is: TUNNEL_CLIENT or TUNNEL_ORIGIN. */
static uint8_t tunnel_side(struct client *c, struct bufferevent *bev)
{
    return bev == c->bev ? TUNNEL_CLIENT : TUNNEL_ORIGIN;
}

static void tunnel_read_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct bufferevent *to = tunnel_peer(c, bev);
    struct evbuffer *in = bufferevent_get_input(bev);
    uint64_t moved = evbuffer_get_length(in);
    if (bev == c->bev) /* the access log counts the tunnel's bytes too */
        c->req.bytes_in += moved;
    else
        c->req.bytes_out += moved;
    evbuffer_add_buffer(bufferevent_get_output(to), in);
    client_timer_arm(c, T_TUNNEL); /* lazy: moving the deadline costs no event change */
    if (evbuffer_get_length(bufferevent_get_output(to)) >= PROXY_HIGH_WATER) {
        bufferevent_disable(bev, EV_READ); /* tunnel_write_cb re-enables it */
        bufferevent_setwatermark(to, EV_WRITE, PROXY_HIGH_WATER / 2, 0);
    }
}

/* A side that ended its sending has that end passed on: its peer's socket is shut for writing
 * once what the side sent has gone out to it, and the other way stays open until the peer ends
 * too (a WebSocket close frame and the answer to it both arrive, as nginx relays them). */
static void tunnel_pass_end(struct bufferevent *to)
{
    if (evbuffer_get_length(bufferevent_get_output(to)) == 0)
        shutdown(bufferevent_getfd(to), SHUT_WR);
}

static void tunnel_write_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct bufferevent *from = tunnel_peer(c, bev);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (c->tunnel_ended & tunnel_side(c, from))
        tunnel_pass_end(bev);
    else
        bufferevent_enable(from, EV_READ);
}

/* Ends the tunnel: what is buffered for the client goes out, then both connections close. */
static void tunnel_close(struct client *c)
{
    request_log(c);
    upstream_release(c, false);
    client_close_after_flush(c);
}

static void tunnel_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    /* One side ended its sending, plainly: the other way goes on (TLS has no half-close that
     * libevent passes on: a TLS side's end ends the tunnel). */
    if (what == (BEV_EVENT_READING | BEV_EVENT_EOF) && !c->tls && !c->up->tls) {
        c->tunnel_ended |= tunnel_side(c, bev);
        bufferevent_disable(bev, EV_READ);
        if (c->tunnel_ended == (TUNNEL_CLIENT | TUNNEL_ORIGIN)) {
            tunnel_close(c);
            return;
        }
        tunnel_pass_end(tunnel_peer(c, bev));
        return;
    }
    /* The client cannot be written to (an error, or it took nothing for keepalive-timeout): close
     * now, there is nobody to flush to. */
    if (bev == c->bev && (what & BEV_EVENT_WRITING)) {
        request_log(c);
        upstream_release(c, false);
        slow_client_count(c, what);
        client_close(c);
        return;
    }
    /* An error or a TLS side's end: what is buffered for the client goes out, then both close. */
    tunnel_close(c);
}

void client_tunnel_start(struct client *c)
{
    c->state = C_TUNNEL;
    client_timer_arm(c, T_TUNNEL);
    /* Both bufferevents read for themselves from now on: a tunnel is not the hot path. */
    reader_set_timeout(&c->rd, NULL);
    reader_set_timeout(&c->up->rd, NULL);
    reader_hand_back(&c->rd);
    reader_hand_back(&c->up->rd);
    bufferevent_set_max_single_read(c->bev, PROXY_READ_CHUNK);
    bufferevent_set_max_single_read(c->up->bev, PROXY_READ_CHUNK);
    bufferevent_setcb(c->bev, tunnel_read_cb, tunnel_write_cb, tunnel_event_cb, c);
    bufferevent_setcb(c->up->bev, tunnel_read_cb, tunnel_write_cb, tunnel_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    bufferevent_enable(c->up->bev, EV_READ | EV_WRITE);
    /* Bytes the client sent after its request already belong to the tunnel. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        tunnel_read_cb(c->bev, c);
    if (evbuffer_get_length(bufferevent_get_input(c->up->bev)) > 0)
        tunnel_read_cb(c->up->bev, c);
}

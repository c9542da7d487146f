/* proxy/upstream.c - the origin side of a proxied request: choose an origin, connect or reuse a
 * pooled connection, send the head, stream the body, parse the response with llhttp (as strictly
 * as requests) and relay it.
 *
 * Retries: a connect failure or timeout, or a connection closed before any response byte, sends
 * the request to the next origin of the region and then to the next region, up to max_tries in
 * all. The second case only for idempotent methods whose body, if any, has not started to flow or
 * is still kept whole (up to REQ_REPLAY_MAX: what was sent goes again, the rest follows), because
 * only then can the request be replayed unchanged. Once response bytes have reached the client
 * nothing is retried: a response cut by the origin is cut for the client too. */
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/sockerr.h"
#include "common/xalloc.h"
#include "proxy/proxy_int.h"

static const llhttp_settings_t response_settings;

/* ---- TLS sessions, one per worker and origin ----
 *
 * Lifetime rule. An origin connection's SSL has its struct upstream as app data, cleared just
 * before the upstream is freed. OpenSSL calls upstream_tls_session_new_cb() only from inside that
 * SSL's handshake or reads, that is from the upstream's own bufferevent, so the upstream is alive
 * then. And an upstream never outlives the wsnap its target belongs to: while in use, its request
 * holds that wsnap (inflight), and a retired wsnap's pool is drained at once. So the target is
 * there in the callback, even on a retired wsnap, whose sessions then serve the retries of its
 * last requests and go with it (wsnap_free). The worker's thread runs all of it: nothing is
 * locked, although the origin context and its callback are shared by the workers.
 *
 * A session is only ever offered to its own target, which stands for one origin of one snapshot:
 * one address, tls_name and tls_verify. It is kept with a reference to the origin context it was
 * made under, and offered only while that is still the worker's live one: a SIGHUP may have
 * changed the CAs, and a resumed session is not checked against them again. (The reference keeps
 * a freed context's address from being taken for a new one's.) OpenSSL makes sessions only from
 * handshakes that succeeded, so never from one whose certificate check failed. Like nginx, the
 * session is shared by the new connections made before the origin sends the next: TLS 1.3 advises
 * one use per ticket, and a server that insists makes the extra ones full handshakes. */

static void target_session_drop(struct origin_target *t)
{
    SSL_SESSION_free(t->tls_session); /* both accept NULL */
    SSL_CTX_free(t->tls_session_ctx);
    t->tls_session = NULL;
    t->tls_session_ctx = NULL;
}

int upstream_tls_session_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct upstream *up = SSL_get_app_data(ssl);
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    if (up == NULL || ctx != up->w->live->tls->origin)
        return 0; /* made with CAs a reload has replaced since the connection started */
    struct origin_target *t = &up->ws->targets[up->origin];
    target_session_drop(t); /* TLS 1.3 servers send several tickets: the last one wins */
    SSL_CTX_up_ref(ctx);
    t->tls_session = sess;
    t->tls_session_ctx = ctx;
    return 1;
}

/* Offers <t>'s session on <ssl>, a new connection that sends SNI <sni> (NULL: none), if it is
 * still good: made under <ssl>'s context, resumable (OpenSSL marks a session that met a fatal
 * alert) and, if it names a host, for this one. A session that is not good is dropped. */
static void target_session_offer(struct origin_target *t, SSL *ssl, const char *sni)
{
    SSL_SESSION *sess = t->tls_session;
    if (sess == NULL)
        return;
    const char *host = SSL_SESSION_get0_hostname(sess);
    if (t->tls_session_ctx != SSL_get_SSL_CTX(ssl) || !SSL_SESSION_is_resumable(sess) ||
        (host != NULL && (sni == NULL || strcmp(host, sni) != 0))) {
        target_session_drop(t);
        return;
    }
    SSL_set_session(ssl, sess); /* takes its own reference */
}

void upstream_tls_sessions_free(struct wsnap *ws)
{
    for (size_t i = 0; i < ws->snap->n_origins; i++)
        target_session_drop(&ws->targets[i]);
}

/* An origin connection's SSL, about to be freed with its upstream. OpenSSL marks the session of
 * an SSL freed without a close_notify sent as not resumable, which would spoil the one its target
 * keeps (the same object): we never send one to origins (libevent does not), so we say the
 * shutdown is done, as nginx does. Nothing may find the upstream through the SSL any more. */
static void tls_connection_forget(SSL *ssl)
{
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_app_data(ssl, NULL);
}

static void upstream_free(struct upstream *up)
{
    body_pipe_stop(up);
    if (up->pipe_in_ev) {
        event_free(up->pipe_in_ev);
        event_free(up->pipe_out_ev);
    }
    if (up->idle_timer.ev)
        event_free(up->idle_timer.ev);
    reader_detach(&up->rd);
    reader_fini(&up->rd);
    if (up->tls)
        tls_connection_forget(bufferevent_openssl_get_ssl(up->bev));
    bufferevent_free(up->bev);
    free(up);
}

/* ---- the pool ---- */

static void pool_remove(struct upstream *up)
{
    struct origin_target *t = &up->ws->targets[up->origin];
    for (struct upstream **pp = &t->idle; *pp; pp = &(*pp)->next_idle) {
        if (*pp == up) {
            *pp = up->next_idle;
            t->n_idle--;
            return;
        }
    }
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upstream *up = arg;
    (void)bev;
    (void)what;
    pool_remove(up); /* the origin closed it, or it misbehaved */
    upstream_free(up);
}

static void idle_read_cb(struct bufferevent *bev, void *arg)
{
    /* An idle connection has nothing to say; anything it sends makes it unusable. */
    idle_event_cb(bev, BEV_EVENT_ERROR, arg);
}

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream *up = arg;
    (void)fd;
    (void)what;
    /* In use again, nothing to time: the next release sets it anew. */
    if (lazy_timer_fired(&up->idle_timer, up->c == NULL))
        idle_event_cb(NULL, 0, arg);
}

/* Whether connections to <a> serve <b>: the same address, reached the same way. */
static bool origin_same_connection(const struct gslb_origin *a, const struct gslb_origin *b)
{
    return a->hash_key == b->hash_key && strcmp(a->address, b->address) == 0 && a->tls == b->tls &&
           a->tls_insecure == b->tls_insecure &&
           (a->tls_name == b->tls_name ||
            (a->tls_name && b->tls_name && strcmp(a->tls_name, b->tls_name) == 0));
}

void upstream_pools_adopt(struct wsnap *ws, struct wsnap *old)
{
    for (size_t i = 0; i < ws->snap->n_origins; i++) {
        struct origin_target *t = &ws->targets[i];
        for (size_t k = 0; t->origin && k < old->snap->n_origins; k++) {
            struct origin_target *from = &old->targets[k];
            if (from->origin == NULL || !origin_same_connection(t->origin, from->origin) ||
                (from->idle == NULL && from->tls_session == NULL))
                continue;
            for (struct upstream *up = from->idle; up; up = up->next_idle) {
                up->ws = ws;
                up->origin = (uint32_t)i;
            }
            t->idle = from->idle;
            t->n_idle = from->n_idle;
            t->tls_session = from->tls_session;
            t->tls_session_ctx = from->tls_session_ctx;
            from->idle = NULL;
            from->n_idle = 0;
            from->tls_session = NULL;
            from->tls_session_ctx = NULL;
            break;
        }
    }
}

void upstream_pool_drain(struct wsnap *ws)
{
    for (size_t i = 0; i < ws->snap->n_origins; i++) {
        struct origin_target *t = &ws->targets[i];
        while (t->idle) {
            struct upstream *up = t->idle;
            t->idle = up->next_idle;
            upstream_free(up);
        }
        t->n_idle = 0;
    }
}

void upstream_release(struct client *c, bool reusable)
{
    struct upstream *up = c->up;
    if (up == NULL)
        return;
    body_pipe_stop(up);
    c->up = NULL;
    up->c = NULL;
    struct origin_target *t = &up->ws->targets[up->origin];
    int max_idle = up->w->cfg->max_idle_per_origin;
    if (!reusable || up->ws->retired || up->w->stopping || t->n_idle >= max_idle ||
        evbuffer_get_length(bufferevent_get_input(up->bev)) > 0) {
        upstream_free(up);
        return;
    }
    up->next_idle = t->idle;
    t->idle = up;
    t->n_idle++;
    up->reused = true;
    /* The origin read timeout stays set (clearing and setting it costs two event changes per
     * request): a pooled connection lives until the earlier of it and the idle timeout. */
    bufferevent_setcb(up->bev, idle_read_cb, NULL, idle_event_cb, up);
    reader_enable(&up->rd);
    if (up->idle_timer.ev == NULL)
        up->idle_timer.ev = evtimer_new(up->w->base, idle_timer_cb, up);
    lazy_timer_set(&up->idle_timer, up->w->timeout_ms[TO_ORIGIN_IDLE],
                   up->w->timeouts[TO_ORIGIN_IDLE]);
}

/* ---- sending ---- */

/* Writes "<len in hex>\r\n" into <buf> (at least 20 bytes); returns its length. */
static size_t chunk_size_line(char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    size_t n = 0;
    do {
        digits[n++] = hex[len & 15];
        len >>= 4;
    } while (len);
    for (size_t i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    buf[n] = '\r';
    buf[n + 1] = '\n';
    return n + 2;
}

/* Request body bytes (framing included) for the origin, also kept for a retry while they may
 * be. */
static void body_send(struct client *c, const void *data, size_t len)
{
    struct request *r = &c->req;
    struct req_bufs *b = r->bufs;
    evbuffer_add(bufferevent_get_output(c->up->bev), data, len);
    if (!r->body_kept)
        return;
    if (b->replay == NULL)
        b->replay = evbuffer_new();
    if (b->replay == NULL || evbuffer_get_length(b->replay) + len > REQ_REPLAY_MAX) {
        r->body_kept = false; /* too large to keep: a failure from now on is the client's */
        if (b->replay)
            evbuffer_drain(b->replay, evbuffer_get_length(b->replay));
        return;
    }
    evbuffer_add(b->replay, data, len);
}

/* Ends a chunked body of ours: the last chunk, the trailer fields of <h> (from index <first>),
 * the final CRLF; to the origin (<to_origin>), or to the client. False when a trailer field is
 * not valid: nothing is written then. */
static bool last_chunk_write(struct client *c, const struct head *h, int first, bool to_origin)
{
    struct sbuf end = {0};
    SBUF_LIT(&end, "0\r\n");
    bool ok = head_add_trailers(&end, h, first, to_origin ? c->w->cfg : NULL);
    SBUF_LIT(&end, "\r\n");
    if (ok && to_origin)
        body_send(c, end.p, end.len);
    else if (ok)
        client_write(c, end.p, end.len);
    free(end.p);
    return ok;
}

bool upstream_end_chunked_body(struct client *c)
{
    return c->up == NULL || last_chunk_write(c, &c->req.bufs->head, c->req.head_fields, true);
}

void upstream_write_body(struct client *c, const void *data, size_t len)
{
    struct upstream *up = c->up;
    if (up == NULL)
        return;
    struct evbuffer *out = bufferevent_get_output(up->bev);
    if (c->req.chunked) { /* re-framed: chunk extensions are dropped, sizes are ours */
        char size[24];
        body_send(c, size, chunk_size_line(size, len));
        body_send(c, data, len);
        body_send(c, "\r\n", 2);
    } else {
        body_send(c, data, len);
    }
    if (evbuffer_get_length(out) >= PROXY_HIGH_WATER && !c->read_blocked) {
        /* The origin reads slower than the client sends: stop reading the client until the
         * origin's buffer drains (upstream_write_cb). */
        c->read_blocked = true;
        reader_disable(&c->rd);
        bufferevent_setwatermark(up->bev, EV_WRITE, PROXY_HIGH_WATER / 2, 0);
    }
}

static void upstream_write_cb(struct bufferevent *bev, void *arg)
{
    struct upstream *up = arg;
    struct client *c = up->c;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (c && c->read_blocked) {
        c->read_blocked = false;
        reader_enable(&c->rd);
        client_process(c);
    }
}

static void upstream_read_cb(struct bufferevent *bev, void *arg);
static void upstream_event_cb(struct bufferevent *bev, short what, void *arg);

/* The connection is ready: send the head, wait for the response, let the body flow. */
static void upstream_send_head(struct client *c)
{
    struct upstream *up = c->up;
    llhttp_init(&up->parser, HTTP_RESPONSE, &response_settings);
    up->parser.data = up;
    up->got_response_byte = false;
    up->head_sent = false;
    up->pipe_failed = false;
    up->spoilt = false;
    bufferevent_setcb(up->bev, upstream_read_cb, upstream_write_cb, upstream_event_cb, up);
    reader_read_small(&up->rd); /* the head, and what comes with it: the rest may be spliced */
    reader_enable(&up->rd);     /* writing is enabled from the start */
    if (up->tls)
        evbuffer_add(bufferevent_get_output(up->bev), c->req.bufs->out_head.p,
                     c->req.bufs->out_head.len);
    else
        bev_write_through_bytes(up->bev, c->req.bufs->out_head.p, c->req.bufs->out_head.len);
    struct evbuffer *replay = c->req.bufs->replay;
    size_t replay_len = replay && c->req.body_kept ? evbuffer_get_length(replay) : 0;
    if (replay_len) /* a retry: the body sent to the last one, the rest following */
        evbuffer_add(bufferevent_get_output(up->bev), evbuffer_pullup(replay, -1), replay_len);
    proxy_now(&c->req.t_upstream);
    up->head_sent = true;
    if (c->req.body_done)
        upstream_request_sent(c);
    else
        client_body_resume(c); /* the origin's clocks start once the body is through */
}

void upstream_request_sent(struct client *c)
{
    /* The origin's clocks start once it has the whole request: an upload may take any time. */
    struct upstream *up = c->up;
    if (up == NULL || !up->head_sent || c->req.resp_head_sent)
        return;
    /* Until the response head, response-header-timeout alone: origin-read-timeout, between reads
     * of a response, starts with it (a shorter one cut a slow head short). */
    reader_set_timeout(&up->rd, NULL);
    client_timer_arm(c, T_RESPONSE);
}

/* Picks an origin not tried yet, region by region. */
static const struct gslb_origin *pick_origin(struct client *c, uint32_t *region_out)
{
    struct request *r = &c->req;
    struct wsnap *ws = r->ws;
    struct gslb_health health = {ws->origin_up, NULL, ws->snap->version};
    const struct gslb_origin *o = NULL;
    if (r->pinned) { /* a sticky client finishing its session at a draining origin */
        o = r->pinned;
        r->pinned = NULL;
        *region_out = r->regions[0];
        return o;
    }
    for (int i = 0; i < r->n_tried; i++)
        ws->origin_up[r->tried[i]] = 0;
    while (r->region_i < r->n_regions && o == NULL) {
        o = gslb_origin_pick(ws->snap, ws->balancer, r->svc, r->regions[r->region_i],
                             &r->client_addr, &health);
        if (o == NULL)
            r->region_i++;
    }
    for (int i = 0; i < r->n_tried; i++)
        ws->origin_up[r->tried[i]] = wsnap_origin_up(ws, r->tried[i]);
    if (o)
        *region_out = r->regions[r->region_i];
    return o;
}

/* A TLS session for <up> to origin <o>, target <t>: SNI and the certificate's name are its
 * tls_name, else the host of its address; the certificate is checked unless the origin says
 * tls_verify false; the target's session, if any, is offered. NULL when OpenSSL cannot start
 * one. */
static struct bufferevent *tls_bufferevent(struct upstream *up, const struct gslb_origin *o,
                                           struct origin_target *t)
{
    struct worker *w = up->w;
    SSL *ssl = SSL_new(w->live->tls->origin); /* the newest CAs; the SSL holds them */
    if (ssl == NULL)
        return NULL;
    const char *name = o->tls_name ? o->tls_name : t->host;
    const char *sni = t->addrlen == 0 || o->tls_name ? name : NULL; /* names, never addresses */
    if (sni) /* SSL_set_tlsext_host_name() itself, without the macro's cast of const away */
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 (void *)(uintptr_t)sni);
    if (!o->tls_insecure) {
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        if ((t->addrlen && !o->tls_name)
                ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1
                : SSL_set1_host(ssl, name) != 1) {
            SSL_free(ssl);
            return NULL;
        }
    }
    SSL_set_app_data(ssl, up); /* for upstream_tls_session_new_cb() */
    target_session_offer(t, ssl, sni);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void upstream_open(struct client *c, const struct gslb_origin *o, bool fresh);

void upstream_start(struct client *c)
{
    struct request *r = &c->req;
    struct worker *w = c->w;
    struct proxy *p = w->proxy;
    uint32_t region = 0;
    const struct gslb_origin *o = NULL;

    if (r->tries < w->cfg->max_tries && r->n_tried < REQ_MAX_TRIED)
        o = pick_origin(c, &region);
    if (o == NULL) {
        if (r->tries == 0)
            client_answer(c, 503, "no origin is available");
        else if (r->last_failure_timeout)
            client_answer(c, 504, "no origin answered in time");
        else
            client_answer(c, 502, "no origin could be reached");
        return;
    }
    if (r->tries > 0)
        ADD(p->metrics.retries, 1);
    r->tries++;
    r->tried[r->n_tried++] = o->index;
    proxy_now(&r->t_upstream); /* the log's wait if no head comes; sending the head restarts it */
    r->origin = o;
    r->origin_region = region;
    r->last_failure_timeout = false;
    if (r->svc->sticky)
        sticky_remember(&p->sticky, &r->client_addr, o, proxy_now_ms());
    upstream_open(c, o, false);
}

/* Sends the client's request to origin <o> (the request's current one): on a pooled connection,
 * unless <fresh>, else on a new one. */
static void upstream_open(struct client *c, const struct gslb_origin *o, bool fresh)
{
    struct request *r = &c->req;
    struct worker *w = c->w;
    struct origin_target *t = &r->ws->targets[o->index];
    struct upstream *up = fresh ? NULL : t->idle;
    if (r->head_done && !r->body_done)
        c->parser_paused = true; /* a retry: the rest of the body waits for the head */
    if (up != NULL) {
        t->idle = up->next_idle;
        t->n_idle--;
        up->c = c; /* its idle timer, if it fires now, finds it in use */
        /* No read timeout until the response head (the client's T_RESPONSE times that), and
         * none of the idle time left over to eat into the response's. */
        reader_restart_timeout(&up->rd, NULL);
        c->up = up;
        upstream_send_head(c);
        return;
    }
    up = xcalloc(1, sizeof(*up));
    up->w = w;
    up->c = c;
    up->ws = r->ws;
    up->origin = o->index;
    up->tls = o->tls;
    up->bev = o->tls ? tls_bufferevent(up, o, t)
                     : bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (up->bev == NULL) { /* OpenSSL could not start a session: as good as a failed connect */
        log_err("proxy: cannot start a TLS session with %s", o->address);
        free(up);
        upstream_error_count(c);
        upstream_start(c);
        return;
    }
    if (up->tls) /* the session reads for itself; a plain socket's reader, once connected */
        bufferevent_set_max_single_read(up->bev, PROXY_READ_CHUNK); /* libevent's: 4 KiB */
    reader_attach(&up->rd, up->bev, PROXY_HIGH_WATER);
    c->up = up;
    bufferevent_setcb(up->bev, NULL, NULL, upstream_event_cb, up);
    client_timer_arm(c, T_CONNECT);
    int rc =
        t->addrlen
            ? bufferevent_socket_connect(up->bev, (struct sockaddr *)&t->addr, (int)t->addrlen)
            : bufferevent_socket_connect_hostname(up->bev, w->dns, AF_UNSPEC, t->host, t->port);
    if (rc != 0) {
        /* Refused synchronously: no route is as good as a failed connect; no descriptor or local
         * port is this machine's shortage, not the origin's failure (another origin's pooled
         * connection may still serve). */
        if (sockerr_is_local_shortage(errno))
            ADD(w->proxy->metrics.upstream_errors, 1);
        else
            upstream_error_count(c);
        client_timer_arm(c, T_NONE);
        upstream_release(c, false);
        upstream_start(c);
    }
}

/* ---- the response ---- */

static struct upstream *upstream_of(llhttp_t *parser)
{
    return parser->data;
}

static int on_response_begin(llhttp_t *parser)
{
    struct upstream *up = upstream_of(parser);
    head_reset(&up->c->req.bufs->resp);
    return 0;
}

static int on_status(llhttp_t *parser, const char *at, size_t len)
{
    struct upstream *up = upstream_of(parser);
    return head_append(&up->c->req.bufs->resp, HEAD_PART_REASON, at, len, 0) ? 0 : -1;
}

static int on_field(llhttp_t *parser, const char *at, size_t len)
{
    struct upstream *up = upstream_of(parser);
    return head_append(&up->c->req.bufs->resp, HEAD_PART_NAME, at, len, 0) ? 0 : -1;
}

static int on_value(llhttp_t *parser, const char *at, size_t len)
{
    struct upstream *up = upstream_of(parser);
    unsigned edges = (at == up->chunk_start ? HEAD_STARTS_READ : 0) |
                     (at + len == up->chunk_end ? HEAD_ENDS_READ : 0);
    return head_append(&up->c->req.bufs->resp, HEAD_PART_VALUE, at, len, edges) ? 0 : -1;
}

static int on_value_complete(llhttp_t *parser)
{
    head_value_complete(&upstream_of(parser)->c->req.bufs->resp);
    return 0;
}

/* Writes the response head to the client: hop-by-hop headers out, our framing and Via in; a 101
 * (checked to switch to WebSocket) gets Upgrade and Connection of our own. */
static void response_head_write(struct client *c, int status, bool final)
{
    struct request *r = &c->req;
    const struct head *h = &r->bufs->resp;
    client_write_head(c, 0); /* a head still waiting in the scratch buffer is staged first */
    struct sbuf out = c->w->scratch; /* the worker's: its buffer outlives the call */
    int n_via = 0;
    bool dated = false;

    out.len = 0;
    SBUF_LIT(&out, "HTTP/1.1 ");
    sbuf_add_uint(&out, (uint64_t)status);
    sbuf_add(&out, " ", 1);
    if (h->reason_len > 0) /* a head of no text at all has none allocated */
        sbuf_add(&out, h->text + h->reason, h->reason_len);
    SBUF_LIT(&out, "\r\n");
    for (int i = 0; i < h->n_headers; i++) {
        const struct header *hd = &h->headers[i];
        if (head_is_hop_by_hop(h, hd)) /* Transfer-Encoding among them: ours is added below */
            continue;
        /* RFC 9110 8.6: never in a 1xx or 204; a 304's would be allowed, but clients on llhttp 8
         * (and others) read that many bytes after it as its body. Bodies sent anyway are dropped.
         */
        if ((status < 200 || status == 204 || status == 304) && hd->id == H_CONTENT_LENGTH)
            continue;
        if (hd->id == H_VIA) { /* one line, ours last, below */
            n_via++;
            continue;
        }
        dated |= hd->id == H_DATE;
        if (r->origin && (hd->id == H_LOCATION || hd->id == H_CONTENT_LOCATION)) {
            /* Responses never carry an origin's address. */
            struct sbuf value = {0};
            if (location_rewrite(h->text + hd->value, hd->value_len, r->origin->address,
                                 r->bufs->host, c->tls, &value)) {
                sbuf_add_header(&out, h->text + hd->name, hd->name_len, value.p, value.len);
                free(value.p);
                continue;
            }
        }
        sbuf_add_header(&out, h->text + hd->name, hd->name_len, h->text + hd->value, hd->value_len);
    }
    head_add_via(&out, h, n_via, c->up->parser.http_minor);
    if (final && !dated) { /* a proxy adds the Date an origin left out (RFC 9110 6.6.1) */
        char date[40];
        SBUF_LIT(&out, "Date: ");
        sbuf_add(&out, date, http_date(time(NULL), date, sizeof(date)));
        SBUF_LIT(&out, "\r\n");
    }
    if (status == 101)
        SBUF_LIT(&out, "Upgrade: websocket\r\nConnection: upgrade\r\n");
    if (final) {
        if (r->resp_chunked)
            SBUF_LIT(&out, "Transfer-Encoding: chunked\r\n");
        /* An answer before the whole request body came (a 413, a 401 to an Expect): the
         * connection ends after it (request_finish()), which the client is told now. */
        if (!r->body_done)
            c->close_after = true;
        if (c->close_after || !r->keep_alive || c->w->stopping || r->resp_close_delimited)
            SBUF_LIT(&out, "Connection: close\r\n");
        else if (r->minor == 0)
            SBUF_LIT(&out, "Connection: keep-alive\r\n");
    }
    SBUF_LIT(&out, "\r\n");
    r->bytes_out += out.len;
    c->w->scratch = out;
    client_write_head(c, out.len);
}

static int on_response_headers_complete(llhttp_t *parser)
{
    struct upstream *up = upstream_of(parser);
    struct client *c = up->c;
    struct request *r = &c->req;
    int status = parser->status_code;
    const struct head *h = &r->bufs->resp;
    size_t len;

    /* llhttp 8 takes a status of fewer than three digits ("HTTP/1.1 2 OK"), which a client
     * would read as interim; one under 100 is invalid (RFC 9110 15). 600-999 are relayed, as
     * nginx does, for clients to treat as 5xx. */
    if (head_check_chars(h) != NULL || parser->http_major != 1 || status < 100)
        return -1;
    if (status < 200 && status != 101) {
        /* Interim (100 Continue, 103 Early Hints): relayed as interim, to HTTP/1.1 clients. */
        r->interim = true;
        if (r->minor == 1)
            response_head_write(c, status, false);
        /* It ends with its head whatever it announces (RFC 9112 6.3); llhttp 8 would read a
         * Content-Length's worth after one, which the client would get as its bytes. */
        return 1;
    }
    if (status == 101) {
        /* Nobody asked for it, or not to WebSocket, or not saying so (RFC 9110 7.8): refused. */
        if (!r->websocket || !head_has_token(h, H_UPGRADE, "websocket") ||
            !head_has_token(h, H_CONNECTION, "upgrade"))
            return -1;
        r->status = 101;
        r->upstream_us = proxy_elapsed_us(&r->t_upstream);
        r->resp_head_sent = true;
        response_head_write(c, 101, false);
        return 2; /* llhttp_execute() returns HPE_PAUSED_UPGRADE: the tunnel starts */
    }
    if (head_get(h, H_TRANSFER_ENCODING, &len, NULL) &&
        !head_list_is_only(h, H_TRANSFER_ENCODING, "chunked"))
        return -1; /* a coding we would have to pass through undecoded */
    r->status = status;
    r->resp_fields = h->n_headers;
    upstream_report(c, status >= 500);
    r->upstream_us = proxy_elapsed_us(&r->t_upstream);
    bool no_body = r->head_method || status == 204 || status == 304;
    /* Whatever body a 204 or 304 announces (a length or the chunked coding) may still come after
     * it: that connection is not reused. */
    up->spoilt = (status == 204 || status == 304) &&
                 (((parser->flags & F_CONTENT_LENGTH) && parser->content_length > 0) ||
                  (parser->flags & F_CHUNKED));
    /* A body without a length (chunked or close-delimited from the origin) goes to an HTTP/1.1
     * client chunked; an HTTP/1.0 client knows no chunked coding (RFC 9112 6.1): it gets the bare
     * bytes, ended by the end of the connection. */
    bool length_unknown = !no_body && !(parser->flags & F_CONTENT_LENGTH);
    r->resp_chunked = length_unknown && r->minor == 1;
    r->resp_close_delimited = length_unknown && r->minor == 0;
    if (r->resp_close_delimited)
        c->close_after = true;
    client_timer_arm(c, T_NONE);
    reader_set_timeout(&up->rd, &c->w->timeout_tv[TO_ORIGIN_READ]);
    response_head_write(c, status, true);
    r->resp_head_sent = true;
    return no_body ? 1 : 0;
}

static int on_response_body(llhttp_t *parser, const char *at, size_t len)
{
    struct upstream *up = upstream_of(parser);
    struct client *c = up->c;
    if (c->req.resp_chunked) {
        char size[24];
        client_write(c, size, chunk_size_line(size, len));
        client_write(c, at, len);
        client_write(c, "\r\n", 2);
    } else if (parser->flags & F_CHUNKED) { /* pieces between chunk heads, to an HTTP/1.0 client */
        client_write(c, at, len);
    } else {
        /* An identity body is one run of the buffer being parsed: upstream_read_cb() moves it
         * to the client by chains, without copying. */
        if (up->body_run_len == 0)
            up->body_run_start = (size_t)(at - up->chunk_start);
        up->body_run_len += len;
    }
    return 0;
}

static int on_response_complete(llhttp_t *parser)
{
    struct client *c = upstream_of(parser)->c;
    struct request *r = &c->req;
    if (r->interim) { /* an interim response ended; the final one follows */
        r->interim = false;
        return 0;
    }
    if (r->status == 101)
        return 0; /* llhttp_execute() returns HPE_PAUSED_UPGRADE: the tunnel starts */
    if (r->resp_chunked && !last_chunk_write(c, &r->bufs->resp, r->resp_fields, false))
        return -1; /* a trailer name that is no token: cut, the end never sent */
    r->resp_done = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t response_settings = {
    .on_message_begin = on_response_begin,
    .on_status = on_status,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_header_value_complete = on_value_complete,
    .on_headers_complete = on_response_headers_complete,
    .on_body = on_response_body,
    .on_message_complete = on_response_complete,
};

void upstream_error_count(struct client *c)
{
    ADD(c->w->proxy->metrics.upstream_errors, 1);
    if (c->req.origin && c->req.ws)
        ADD(c->req.ws->targets[c->req.origin->index].metrics->failures, 1);
}

void upstream_report(struct client *c, bool failure)
{
    struct request *r = &c->req;
    const struct proxy_config *cfg = c->w->cfg;
    struct wsnap *ws = r->ws;
    if (cfg->passive_failures == 0 || r->origin == NULL || ws == NULL)
        return;
    uint32_t idx = r->origin->index;
    const struct gslb_pool *pool = &r->svc->pools[r->svc->pool_of_region[r->origin_region]];
    int64_t until;
    if (!passive_report(&c->w->proxy->passive, cfg, ws, pool, idx, failure, &until))
        return;
    ws->origin_up[idx] = 0;
    if (until < ws->next_expiry_ms)
        ws->next_expiry_ms = until;
    ADD(c->w->proxy->metrics.passive_ejections, 1);
    log_warn("proxy: origin %s/%s/%s ejected for %lld ms after %d failures in a row", r->svc->name,
             ws->snap->regions[r->origin_region].name, r->origin->address,
             (long long)(until - proxy_now_ms()), cfg->passive_failures);
}

void upstream_fail(struct client *c, int status, const char *message)
{
    upstream_error_count(c);
    upstream_report(c, true);
    client_answer(c, status, message); /* or a cut, once the response has begun */
}

/* The origin failed before a response byte: retry if the request can be replayed. */
static void upstream_failed_early(struct client *c, bool connected)
{
    struct request *r = &c->req;
    bool replayable = !connected || (r->idempotent && (!r->body_started || r->body_kept));
    client_timer_arm(c, T_NONE);
    uint16_t this_try = (uint16_t)(1u << (r->n_tried - 1)); /* n_tried <= REQ_MAX_TRIED (16) */
    if (connected && c->up->reused && replayable && !(r->stale_retried & this_try)) {
        /* A pooled connection that the origin closed as we reused it (its keep-alive timeout
         * racing ours) says nothing of the origin: the request goes to it again on a new
         * connection, once, counted neither as a try nor as a failure, as nginx does. */
        r->stale_retried |= this_try;
        log_debug("proxy: a pooled connection to %s was closed under us: a new one",
                  r->origin->address);
        upstream_release(c, false);
        upstream_open(c, r->origin, true);
        return;
    }
    upstream_error_count(c);
    upstream_report(c, true);
    upstream_release(c, false);
    if (replayable) {
        upstream_start(c);
        return;
    }
    client_answer(c, 502, "the origin closed the connection without a response");
}

static void response_finished(struct client *c)
{
    struct upstream *up = c->up;
    bool reusable = head_keeps_alive(&c->req.bufs->resp, &up->parser) && !up->spoilt &&
                    evbuffer_get_length(bufferevent_get_input(up->bev)) == 0;
    client_response_done(c, reusable);
}

static void upstream_read(struct upstream *up, struct evbuffer *in)
{
    struct client *c = up->c;

    while (c->state == C_FORWARD && evbuffer_get_length(in) > 0 && reader_enabled(&up->rd)) {
        struct evbuffer_iovec vec;
        evbuffer_peek(in, -1, NULL, &vec, 1); /* reads land in chains of up to 64 KiB */
        up->got_response_byte = true;
        up->chunk_start = vec.iov_base;
        up->chunk_end = up->chunk_start + vec.iov_len;
        up->body_run_len = 0;
        llhttp_errno_t err = llhttp_execute(&up->parser, vec.iov_base, vec.iov_len);
        size_t used = err == HPE_OK
                          ? vec.iov_len
                          : (size_t)(llhttp_get_error_pos(&up->parser) - (char *)vec.iov_base);
        if (up->body_run_len > 0 && c->head_pending > 0 && evbuffer_get_length(c->stage) == 0) {
            /* A head and its body in one read (a small response): one writev, no staging. */
            client_send_head_and(c, (const char *)vec.iov_base + up->body_run_start,
                                 up->body_run_len);
            c->req.bytes_out += up->body_run_len;
        } else if (up->body_run_len > 0) {
            /* What came before the body run is head; the run moves to the client. */
            evbuffer_drain(in, up->body_run_start);
            evbuffer_remove_buffer(in, c->stage, up->body_run_len);
            c->req.bytes_out += up->body_run_len;
            used -= up->body_run_start + up->body_run_len;
        }
        evbuffer_drain(in, used);
        if (err == HPE_OK)
            continue;
        if (err == HPE_PAUSED && c->req.resp_done) {
            response_finished(c);
            return;
        }
        if (err == HPE_PAUSED_UPGRADE) {
            client_flush(c);
            client_tunnel_start(c);
            return;
        }
        upstream_error_count(c);
        log_debug("proxy: invalid response from %s: %s", c->req.origin->address,
                  llhttp_get_error_reason(&up->parser));
        client_answer(c, 502, "the origin sent an invalid response");
        return;
    }
    if (c->state == C_FORWARD && body_pipe_start(c))
        return;
    client_flush(c);
}

static void upstream_read_cb(struct bufferevent *bev, void *arg)
{
    proxy_clock_hold();
    upstream_read(arg, bufferevent_get_input(bev));
    proxy_clock_release();
}

/* Why a TLS connection to an origin failed before it was up, in the log (a certificate that
 * does not verify, a protocol error, a plain server): otherwise only counted. At most once a
 * second per worker, as a broken origin fails every request. */
static void tls_failure_log(struct upstream *up, struct bufferevent *bev)
{
    static _Thread_local time_t last;
    if (!log_second_passed(&last))
        return;
    long verify = SSL_get_verify_result(bufferevent_openssl_get_ssl(bev));
    unsigned long err = bufferevent_get_openssl_error(bev);
    int sock_err = EVUTIL_SOCKET_ERROR();
    char why[200];
    if (verify != X509_V_OK)
        snprintf(why, sizeof(why), "certificate: %s", X509_verify_cert_error_string(verify));
    else if (err)
        ERR_error_string_n(err, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "%s",
                 sock_err ? evutil_socket_error_to_string(sock_err) : "connection closed");
    log_warn("proxy: TLS with origin %s failed: %s", up->c->req.origin->address, why);
}

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upstream *up = arg;
    struct client *c = up->c;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        /* Heads and bodies leave in several writes: never hold one back for an ACK. */
        setsockopt(bufferevent_getfd(up->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        up->connected = true;
        /* A request the origin takes nothing of for origin-read-timeout is given up (nginx's
         * proxy_send_timeout): an upload to an origin that stopped reading held both
         * connections for good, its client gone or not. */
        reader_set_write_timeout(&up->rd, up->w->timeouts[TO_ORIGIN_READ]);
        if (!up->tls)
            reader_take_over(&up->rd, up->w->base);
        else if (SSL_session_reused(bufferevent_openssl_get_ssl(up->bev)))
            ADD(up->w->proxy->metrics.origin_tls_resumed, 1); /* connected: the handshake is done */
        else
            ADD(up->w->proxy->metrics.origin_tls_full, 1);
        client_timer_arm(c, T_NONE);
        upstream_send_head(c);
        return;
    }
    if (!up->connected) {
        if (up->tls)
            tls_failure_log(up, bev);
        upstream_failed_early(c, false);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        upstream_fail(c, 504,
                      what & BEV_EVENT_WRITING ? "the origin stopped reading"
                                               : "the origin stopped sending");
        return;
    }
    /* EOF or error after connecting: the origin may have the request, even on a pooled
     * connection that was closed under us, so only what can be replayed safely is. */
    if (!up->got_response_byte) {
        upstream_failed_early(c, true);
        return;
    }
    /* Only a plain end (EOF) ends a close-delimited body; a reset cuts it (it passed for the end
     * until 2026-12-07). */
    llhttp_errno_t finish = !(what & BEV_EVENT_ERROR) && llhttp_message_needs_eof(&up->parser)
                                ? llhttp_finish(&up->parser)
                                : HPE_INVALID_EOF_STATE;
    if ((finish == HPE_OK || finish == HPE_PAUSED) && c->req.resp_done) {
        client_response_done(c, false); /* a close-delimited body ended */
        return;
    }
    /* Cut mid-response: cut the client too, never a complete-looking response. */
    upstream_fail(c, 502, "the origin closed the connection mid-response");
}

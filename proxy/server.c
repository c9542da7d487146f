/* proxy/server.c - the proxy's life cycle: listeners, worker threads and their event loops, the
 * worker's view of the published topology, the live configuration SIGHUP replaces (with the TLS
 * contexts made from its certificate, key and CA files), the metrics listener and graceful
 * shutdown.
 *
 * Every worker binds its own socket to each listen address with SO_REUSEPORT, so the kernel
 * spreads new connections over the workers and no accept lock exists. The first worker's sockets
 * are bound in proxy_create(), on the caller's thread, so a port in use is reported before the
 * daemon claims to run. */
#include <errno.h>
#include <fcntl.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sockerr.h"
#include "common/xalloc.h"
#include "proxy/proxy_int.h"

_Thread_local struct proxy_clock proxy_clock;

int proxy_address_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (colon == NULL)
        return -EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -EINVAL;
    size_t hostlen = (size_t)(colon - text);
    if (hostlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, hostlen);
    host[hostlen] = '\0';
    if (host[0] == '[' && hostlen > 2 && host[hostlen - 1] == ']') {
        host[hostlen - 1] = '\0';
        memmove(host, host + 1, hostlen);
    }
    struct ip_addr addr = {.family = AF_INET};
    if (host[0] != '\0' && ip_addr_parse(host, &addr) != 0)
        return -EINVAL;
    *len = (socklen_t)ip_addr_to_sockaddr(&addr, (uint16_t)port, ss);
    return 0;
}

/* SO_REUSEPORT lets our workers share a port, but would also let a second gslbd (or anything
 * else with the option) share it silently. A plain bind first finds any current owner. */
static int address_free(const struct sockaddr_storage *ss, socklen_t len)
{
    int one = 1, rc = 0;
    evutil_socket_t fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (const struct sockaddr *)ss, len) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* A listening socket on <address>, the value of setting <key> (errors name it). */
static evutil_socket_t listen_socket(const char *key, const char *address, bool first, char *err,
                                     size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    if (proxy_address_parse(address, &ss, &len) != 0) {
        snprintf(err, errlen, "%s: '%s' is not ADDR:PORT, [V6]:PORT or :PORT", key, address);
        return -1;
    }
    int busy = first ? address_free(&ss, len) : 0;
    if (busy != 0) {
        snprintf(err, errlen, "%s %s: %s", key, address, strerror(-busy));
        return -1;
    }
    evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        /* Linux hands TCP_NODELAY down to accepted sockets: one call here, none per client */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "%s %s: %s", key, address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Accepted sockets start out delaying their ACKs, as HAProxy's listeners do: the request's
     * ACK then rides on the response instead of leaving at once on its own, one segment of the
     * twelve a connection with one request costs. Only an optimisation: no error if refused. */
    int zero = 0;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
    return fd;
}

static int socket_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

void bev_write_through(struct bufferevent *bev, struct evbuffer *data)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0)
        evbuffer_write(data, bufferevent_getfd(bev)); /* an error stays for the queued write */
    if (evbuffer_get_length(data) > 0)
        evbuffer_add_buffer(out, data);
}

/* Queues what the socket did not take of <iov> after <n> bytes were sent (n < 0: an error, which
 * stays for the queued write to meet). */
static void bev_queue_unsent(struct evbuffer *out, const struct iovec *iov, int n_iov, ssize_t n)
{
    size_t sent = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < n_iov; i++) {
        size_t skip = sent < iov[i].iov_len ? sent : iov[i].iov_len;
        sent -= skip;
        if (skip < iov[i].iov_len)
            evbuffer_add(out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
    }
}

void bev_write_through_iov(struct bufferevent *bev, struct iovec *iov, int n_iov)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    ssize_t n = 0;
    if (evbuffer_get_length(out) == 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
        n = sendmsg(bufferevent_getfd(bev), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    bev_queue_unsent(out, iov, n_iov, n);
}

/* send() rather than a one-element sendmsg(): the kernel copies no message header or vector. */
void bev_write_through_bytes(struct bufferevent *bev, const void *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    struct iovec iov = {(void *)(uintptr_t)data, len};
    ssize_t n = 0;
    if (evbuffer_get_length(out) == 0)
        n = send(bufferevent_getfd(bev), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    bev_queue_unsent(out, &iov, 1, n);
}

/* libevent writes what is queued only while writing is enabled, and enabling it arms the write
 * event at once: a reused bufferevent starts with writing disabled (as setfd would otherwise arm
 * it, an epoll_ctl and a wake-up for nothing) and this enables it as output is first queued. */
static void bev_output_kick_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    (void)out;
    if (info->n_added > 0 && !(bufferevent_get_enabled(bev) & EV_WRITE))
        bufferevent_enable(bev, EV_WRITE);
}

struct bufferevent *bev_plain_new(struct event_base *base, evutil_socket_t fd)
{
    struct bufferevent *bev = bufferevent_socket_new(base, fd, 0);
    if (bev)
        evbuffer_add_cb(bufferevent_get_output(bev), bev_output_kick_cb, bev);
    return bev;
}

/* A socket bufferevent keeps the end of its input and the start of its output frozen (only it
 * adds and takes there); setfd thaws both and leaves them so. */
static void bev_plain_freeze(struct bufferevent *bev)
{
    evbuffer_freeze(bufferevent_get_input(bev), 0);
    evbuffer_freeze(bufferevent_get_output(bev), 1);
}

void lazy_timer_set(struct lazy_timer *t, int64_t ms, const struct timeval *in)
{
    t->deadline_ms = proxy_now_ms() + ms;
    if (t->armed && t->fires_ms <= t->deadline_ms)
        return;
    t->armed = true;
    t->fires_ms = t->deadline_ms;
    evtimer_add(t->ev, in);
}

bool lazy_timer_fired(struct lazy_timer *t, bool timing)
{
    t->armed = false;
    if (!timing)
        return false; /* whoever times something again sets it */
    int64_t left = t->deadline_ms - proxy_now_ms();
    if (left <= TIMER_SLACK_MS)
        return true;
    struct timeval tv = {left / 1000, (left % 1000) * 1000}; /* the deadline moved on */
    t->armed = true;
    t->fires_ms = t->deadline_ms;
    evtimer_add(t->ev, &tv);
    return false;
}

void lazy_timer_stop(struct lazy_timer *t)
{
    if (t->armed)
        event_del(t->ev);
    t->armed = false;
}

void bev_plain_park(struct bufferevent *bev, bool close_socket)
{
    short enabled = bufferevent_get_enabled(bev); /* only those can be pending */
    if (enabled)
        bufferevent_disable(bev, enabled);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
    /* Thawed first: draining a frozen output fails, and what a client left unsent would go to
     * the next one. The socket stays set, closed and disabled, until the next reuse sets its
     * successor: setfd costs two event_del() and two event_assign(). */
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
    evbuffer_unfreeze(in, 0);
    evbuffer_unfreeze(out, 1);
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_drain(out, evbuffer_get_length(out));
    bev_plain_freeze(bev);
    if (close_socket)
        evutil_closesocket(bufferevent_getfd(bev));
}

void bev_plain_reuse(struct bufferevent *bev, evutil_socket_t fd)
{
    bufferevent_setfd(bev, fd); /* nothing enabled: no event is armed */
    bev_plain_freeze(bev);
}

bool proxy_peer_trusted(const struct proxy_config *cfg, const struct ip_addr *addr)
{
    for (size_t i = 0; i < cfg->n_trusted; i++) {
        if (ip_cidr_contains(&cfg->trusted[i], addr))
            return true;
    }
    return false;
}

/* ---- the worker's view of the topology ---- */

static void wsnap_free(struct proxy *proxy, struct wsnap *ws)
{
    const struct gslb_snapshot *snap = ws->snap;
    for (size_t i = 0; i < snap->n_origins; i++) {
        passive_entry_put(&proxy->passive, ws->passive[i]);
        metrics_series_put(&proxy->metrics, ws->targets[i].metrics);
    }
    for (size_t i = 0; i < snap->n_services * snap->n_regions; i++)
        metrics_series_put(&proxy->metrics, ws->series[i]);
    for (size_t s = 0; s < snap->n_services; s++)
        metrics_series_put(&proxy->metrics, ws->series_unrouted[s]);
    free(ws->series_unrouted);
    upstream_pool_drain(ws);
    upstream_tls_sessions_free(ws);
    gslb_balancer_destroy(ws->balancer);
    gslb_snapshot_release(ws->snap);
    free(ws->targets);
    free(ws->series);
    free(ws->origin_up);
    free(ws->passive);
    gslb_health_release(ws->view);
    free(ws);
}

static void target_resolve(struct origin_target *t, const char *address)
{
    /* Validated by db/ as host:port, [v6]:port or name:port. */
    const char *colon = strrchr(address, ':');
    size_t hostlen = (size_t)(colon - address);
    t->port = atoi(colon + 1);
    if (address[0] == '[') {
        address++;
        hostlen -= 2;
    }
    snprintf(t->host, sizeof(t->host), "%.*s", (int)hostlen, address);
    struct ip_addr ip;
    if (ip_addr_parse(t->host, &ip) == 0)
        t->addrlen = (socklen_t)ip_addr_to_sockaddr(&ip, (uint16_t)t->port, &t->addr);
}

static struct wsnap *wsnap_create(struct proxy *proxy, const struct gslb_snapshot *snap)
{
    struct wsnap *ws = xcalloc(1, sizeof(*ws));
    ws->snap = snap;
    ws->balancer = gslb_balancer_create(snap);
    ws->targets = xcalloc(snap->n_origins + 1, sizeof(*ws->targets));
    ws->origin_up = xmalloc(snap->n_origins + 1);
    memset(ws->origin_up, 1, snap->n_origins + 1);
    ws->passive = xcalloc(snap->n_origins + 1, sizeof(*ws->passive));
    ws->next_expiry_ms = INT64_MAX;
    ws->series = xcalloc(snap->n_services * snap->n_regions + 1, sizeof(*ws->series));
    ws->series_unrouted = xcalloc(snap->n_services + 1, sizeof(*ws->series_unrouted));
    /* The view holds one reference to each of its series and board entries. */
    for (size_t s = 0; s < snap->n_services; s++) {
        const struct gslb_service *svc = &snap->services[s];
        ws->series_unrouted[s] = metrics_series_get(&proxy->metrics, svc->name, PROXY_REGION_NONE);
        for (size_t p = 0; p < svc->n_pools; p++) {
            const char *region = snap->regions[svc->pools[p].region].name;
            struct metrics_series **pair = &ws->series[s * snap->n_regions + svc->pools[p].region];
            if (*pair == NULL)
                *pair = metrics_series_get(&proxy->metrics, svc->name, region);
            for (size_t o = 0; o < svc->pools[p].n_origins; o++) {
                const struct gslb_origin *origin = &svc->pools[p].origins[o];
                struct origin_target *t = &ws->targets[origin->index];
                t->origin = origin;
                target_resolve(t, origin->address);
                if (t->metrics == NULL)
                    t->metrics = metrics_origin_series_get(&proxy->metrics, region, origin);
                if (ws->passive[origin->index] == NULL)
                    ws->passive[origin->index] =
                        passive_entry_get(&proxy->passive, origin->hash_key);
            }
        }
    }
    return ws;
}

/* Takes the prober's newest view if it belongs to this snapshot (a view for a newer snapshot
 * arrives within one prober tick of it). */
static void wsnap_health_refresh(struct gslb_prober *prober, struct wsnap *ws)
{
    uint64_t generation = gslb_prober_generation(prober);
    if (generation == ws->view_generation)
        return;
    ws->view_generation = generation;
    const struct gslb_health *view = gslb_prober_acquire(prober);
    if (view == NULL || view->version != ws->snap->version) {
        gslb_health_release(view);
        return;
    }
    gslb_health_release(ws->view);
    ws->view = view;
    for (size_t i = 0; i < ws->snap->n_origins; i++)
        ws->origin_up[i] = wsnap_origin_up(ws, (uint32_t)i);
}

struct wsnap *worker_wsnap(struct worker *w)
{
    uint64_t generation = gslb_watch_generation(w->proxy->watch);
    if (w->current == NULL || generation != w->generation) {
        const struct gslb_snapshot *snap = gslb_watch_acquire(w->proxy->watch);
        w->generation = generation;
        if (w->current == NULL || snap->version != w->current->snap->version) {
            struct wsnap *old = w->current;
            w->current = wsnap_create(w->proxy, snap);
            if (old) {
                old->retired = true;
                upstream_pools_adopt(w->current, old);
                upstream_pool_drain(old); /* what the new topology has not */
                if (old->inflight == 0)
                    wsnap_free(w->proxy, old);
            }
        } else {
            gslb_snapshot_release(snap);
        }
    }
    if (w->proxy->prober)
        wsnap_health_refresh(w->proxy->prober, w->current);
    /* Ejections made or lifted by any worker, and ours that are due. */
    struct wsnap *ws = w->current;
    if (atomic_load_explicit(&w->proxy->passive.generation, memory_order_relaxed) !=
        ws->passive_generation)
        passive_sync(ws, &w->proxy->passive, proxy_now_ms());
    else if (ws->next_expiry_ms != INT64_MAX && proxy_now_ms() >= ws->next_expiry_ms)
        passive_sync(ws, &w->proxy->passive, proxy_now_ms());
    return w->current;
}

void wsnap_release(struct worker *w, struct wsnap *ws)
{
    if (--ws->inflight == 0 && ws->retired)
        wsnap_free(w->proxy, ws);
}

/* ---- workers ---- */

#define ACCEPT_PAUSE_MS 100

static void listeners_close(struct worker *w)
{
    for (int i = 0; i < PROXY_MAX_LISTEN; i++) {
        struct worker_listener *l = &w->listeners[i];
        if (l->ev) {
            event_free(l->ev);
            close(l->fd);
            l->ev = NULL;
        }
    }
    if (w->accept_resume)
        event_free(w->accept_resume);
    w->accept_resume = NULL;
}

/* TCP_DEFER_ACCEPT: the kernel hands a connection over once its first bytes came, so that the
 * request is read at accept, with no wake-up of its own; one silent for a second (the first
 * SYN-ACK retransmission) is handed over all the same, to meet the header timeout. */
static void listeners_defer(struct worker *w)
{
    int seconds = w->cfg->defer_accept ? 1 : 0;
    bool took = true;
    for (int i = 0; i < PROXY_MAX_LISTEN; i++) {
        if (w->listeners[i].ev && setsockopt(w->listeners[i].fd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
                                             &seconds, sizeof(seconds)) != 0) {
            log_warn("proxy: defer-accept: %s", strerror(errno));
            took = false;
        }
    }
    /* Reading at accept only pays when the request is there: not if some listener refused. */
    w->deferring = w->cfg->defer_accept && took;
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    for (int i = 0; i < PROXY_MAX_LISTEN; i++) {
        if (w->listeners[i].ev)
            event_add(w->listeners[i].ev, NULL);
    }
}

/* One connection per readiness, as nginx does: the socket stays readable while more wait, and
 * accepting until EAGAIN would add a failing accept4() to most readiness events. Out of
 * descriptors or kernel memory, the worker's listeners rest a moment instead of spinning on a
 * socket that stays readable; the error is logged once a second at most. */
static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker_listener *l = arg;
    struct worker *w = l->w;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    (void)what;
    evutil_socket_t client =
        accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client >= 0) {
        client_accept(w, client, (struct sockaddr *)&ss, (int)len, &w->proxy->cfg.listen[l->index]);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
        return;
    static _Thread_local time_t last;
    if (log_second_passed(&last))
        log_warn("proxy: accept: %s", strerror(errno));
    if (sockerr_is_local_shortage(errno)) {
        struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};
        for (int i = 0; i < PROXY_MAX_LISTEN; i++) {
            if (w->listeners[i].ev)
                event_del(w->listeners[i].ev);
        }
        evtimer_add(w->accept_resume, &pause);
    }
}

static void shutdown_check_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->clients == NULL && w->lingering == NULL)
        event_base_loopbreak(w->base);
}

static void tls_contexts_release(struct tls_contexts *tls);

static void live_config_destroy(struct publish_obj *obj)
{
    struct live_config *live = (struct live_config *)obj; /* obj is its first member */
    tls_contexts_release(live->tls);
    free(live);
}

/* Takes the newest live configuration, if there is one the worker has not seen, and sets up its
 * timeouts. Runs in the worker's thread (at start, and when woken after proxy_reconfigure). */
static void worker_config_refresh(struct worker *w)
{
    uint64_t generation = publish_slot_generation(&w->proxy->live);
    if (w->live != NULL && generation == w->live_generation)
        return;
    w->live_generation = generation;
    struct live_config *fresh = (struct live_config *)publish_slot_acquire(&w->proxy->live);
    if (w->live)
        publish_obj_release(&w->live->obj);
    w->live = fresh;
    w->cfg = &fresh->cfg;
    if (w->deferring != w->cfg->defer_accept)
        listeners_defer(w);
    const int ms[TO_COUNT] = {
        [T_KEEPALIVE] = w->cfg->keepalive_timeout_ms,
        [T_HEADER] = w->cfg->client_header_timeout_ms,
        [T_CONNECT] = w->cfg->connect_timeout_ms,
        [T_RESPONSE] = w->cfg->response_header_timeout_ms,
        [T_TUNNEL] = w->cfg->tunnel_timeout_ms,
        [TO_CLIENT_BODY] = w->cfg->client_body_timeout_ms,
        [TO_ORIGIN_READ] = w->cfg->origin_read_timeout_ms,
        [TO_ORIGIN_IDLE] = w->cfg->origin_idle_timeout_ms,
    };
    /* Common timeouts stay valid for the base's life: ones armed already keep their duration
     * (readers, which take timeout_tv, follow a new one from their next read).
     * A base has room for 256 of them, so only a changed duration asks for one; past the room,
     * the worker's own timeval serves (a plain timer: a heap insertion instead of a queue). */
    for (int i = T_KEEPALIVE; i < TO_COUNT; i++) {
        if (w->timeouts[i] != NULL && w->timeout_ms[i] == ms[i])
            continue;
        struct timeval tv = {ms[i] / 1000, (ms[i] % 1000) * 1000};
        w->timeout_ms[i] = ms[i];
        w->timeout_tv[i] = tv;
        w->timeouts[i] = event_base_init_common_timeout(w->base, &tv);
        if (w->timeouts[i] == NULL)
            w->timeouts[i] = &w->timeout_tv[i];
    }
}

static void wakeup_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    char drain[16];
    (void)what;
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    worker_config_refresh(w);
    if (!atomic_load(&w->proxy->stopping) || w->stopping)
        return;
    w->stopping = true;
    listeners_close(w);
    client_shutdown_all(w); /* a lingering close goes on: it may still deliver an answer */
    if (w->current)
        upstream_pool_drain(w->current);
    /* Poll for the last client to leave, lingering ones too; the deadline ends the loop anyway. */
    w->shutdown_check = event_new(w->base, -1, EV_PERSIST, shutdown_check_cb, w);
    struct timeval tick = {0, 50000};
    event_add(w->shutdown_check, &tick);
    int ms = w->cfg->shutdown_timeout_ms;
    struct timeval deadline = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &deadline);
}

/* busy-poll: a worker keeps polling without blocking for that long after the last callback that
 * carried work, before it sleeps in epoll_wait. In a virtual machine a vCPU that halts may take
 * milliseconds to be woken again (seen here: a woken worker waiting 3.5 ms on an idle vCPU);
 * HAProxy's busy-polling answers the same. It costs the CPU time spun, an epoll_wait each turn. */
static void worker_busy_poll(struct worker *w, int64_t spin_ns)
{
    unsigned long seen = proxy_clock.outer_holds - 1; /* the first turn starts the window */
    int64_t spin_until = 0;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_ns = now.tv_sec * 1000000000 + now.tv_nsec;
        if (proxy_clock.outer_holds != seen) { /* work was done since: the window starts again */
            seen = proxy_clock.outer_holds;
            spin_until = now_ns + spin_ns;
        }
        if (event_base_loop(w->base, now_ns < spin_until ? EVLOOP_NONBLOCK : EVLOOP_ONCE) != 0 ||
            event_base_got_exit(w->base) || event_base_got_break(w->base))
            return; /* as event_base_dispatch() would */
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (w->proxy->cfg.busy_poll_us > 0)
        worker_busy_poll(w, (int64_t)w->proxy->cfg.busy_poll_us * 1000);
    else
        event_base_dispatch(w->base);
    /* Past the deadline (or all done): whoever is left is cut off. */
    w->stopping = w->cut_off = true;
    while (w->clients)
        client_cut_off(w->clients);
    linger_end_all(w);
    reader_thread_fini();
    return NULL;
}

static int worker_init(struct proxy *p, struct worker *w, int id, char *err, size_t errlen)
{
    w->proxy = p;
    w->id = id;
    w->base = event_base_new();
    w->decision = xmalloc(sizeof(*w->decision));
    if (RAND_bytes((unsigned char *)&w->request_id_next, sizeof(w->request_id_next)) != 1) {
        snprintf(err, errlen, "proxy: no random bytes for request IDs");
        return -EIO;
    }
    worker_config_refresh(w);
    w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (w->dns == NULL) /* no resolv.conf: origins named by address still work */
        w->dns = evdns_base_new(w->base, 0);
    /* Other threads wake the loop through a pipe: libevent then needs no locks of its own. */
    if (pipe2(w->wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "proxy: pipe: %s", strerror(errno));
        return -errno;
    }
    w->wakeup = event_new(w->base, w->wake_fds[0], EV_READ | EV_PERSIST, wakeup_cb, w);
    event_add(w->wakeup, NULL);
    for (size_t i = 0; i < p->cfg.n_listen; i++) {
        evutil_socket_t fd =
            id == 0 ? p->listen_fds[i]
                    : listen_socket("listen", p->cfg.listen[i].address, false, err, errlen);
        if (fd < 0)
            return -EADDRINUSE;
        struct worker_listener *l = &w->listeners[i];
        l->w = w;
        l->fd = fd;
        l->index = i;
        l->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, accept_cb, l);
        event_add(l->ev, NULL);
        /* Accepted sockets inherit it; once set, the kernel no longer grows it. */
        int sndbuf = p->cfg.client_sndbuf;
        if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0) {
            snprintf(err, errlen, "client-sndbuf: %s", strerror(errno));
            return -errno;
        }
    }
    listeners_defer(w);
    w->accept_resume = evtimer_new(w->base, accept_resume_cb, w);
    return 0;
}

/* ---- TLS: the contexts of one configuration, replaced whole on SIGHUP ---- */

/* Lifetime rule. A struct tls_contexts is shared by the live configurations that serve with it
 * (each holds a reference) and by every server-side SSL made from it: tls_server_session_new()
 * hands the SSL a reference in its ex_data slot <tls_contexts_index>, and OpenSSL's free callback
 * for that slot drops it when the SSL is freed (when the client connection closes). So the SNI
 * callback, which runs inside a handshake, only ever reads a set that the SSL handshaking keeps
 * alive, however many reloads happened since the connection was accepted; the contexts it picks
 * are then held by the SSL itself (SSL_set_SSL_CTX takes a reference). Client-side SSLs to
 * origins need no such reference: they hold their context themselves, and their new-session
 * callback reaches the worker's data through the SSL's upstream (upstream.c gives that rule). A
 * server context owns its OCSP staple (ocsp.c), so a staple lives as long as its context. */
static int tls_contexts_index = -1;
static pthread_once_t tls_contexts_index_once = PTHREAD_ONCE_INIT;

static void tls_contexts_free(struct tls_contexts *tls)
{
    for (size_t i = 0; i < tls->n_server; i++)
        SSL_CTX_free(tls->server[i]);
    SSL_CTX_free(tls->origin);
    free(tls);
}

static void tls_contexts_release(struct tls_contexts *tls)
{
    if (tls != NULL && atomic_fetch_sub(&tls->refs, 1) == 1)
        tls_contexts_free(tls);
}

static struct tls_contexts *tls_contexts_hold(struct tls_contexts *tls)
{
    atomic_fetch_add(&tls->refs, 1);
    return tls;
}

/* OpenSSL's free callback for the ex_data slot: the SSL is going, so is its reference. */
static void tls_session_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                                void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    tls_contexts_release(ptr); /* NULL for SSLs that never got one */
}

static void tls_contexts_index_make(void)
{
    tls_contexts_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_session_free_cb);
}

/* Picks the certificate whose names cover the client's SNI name; the first one otherwise. The
 * candidates come from the SSL's own reference (see the lifetime rule above), never from the
 * proxy's current configuration, which a reload may have replaced since the accept. */
static int tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
    const struct tls_contexts *tls = SSL_get_ex_data(ssl, tls_contexts_index);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    /* A name's trailing dot (a fully qualified "www.example.com.") is no part of it, as in Host;
     * it gave the first certificate until 2026-12-07. */
    size_t len = name ? strlen(name) : 0;
    len -= len > 1 && name[len - 1] == '.';
    (void)alert;
    (void)arg;
    for (size_t i = 1; tls && name && i < tls->n_server; i++) {
        if (X509_check_host(SSL_CTX_get0_certificate(tls->server[i]), name, len, 0, NULL) == 1) {
            SSL_set_SSL_CTX(ssl, tls->server[i]);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* HTTP/1.x is all we speak: a client that offers ALPN gets http/1.1 (or http/1.0, if that is
 * what it offers), and one that offers neither (h2 alone) the fatal no_application_protocol
 * alert RFC 7301 3.2 asks for, not a session whose first bytes we would refuse. */
static int tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    const unsigned char *http10 = NULL;
    for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {
        if (in[i] != 8 || i + 9 > inlen)
            continue;
        if (memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        if (memcmp(in + i + 1, "http/1.0", 8) == 0)
            http10 = in + i + 1;
    }
    if (http10 == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = http10;
    *outlen = 8;
    return SSL_TLSEXT_ERR_OK;
}

static int tls_fail(char *err, size_t errlen, const char *what, const char *path)
{
    char reason[160] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s: %s", what, path, e ? reason : "cannot be used");
    return -EINVAL;
}

/* One server context per certificate pair, for TLS listeners: TLS 1.2 and up, no renegotiation,
 * and the pair's OCSP response stapled when "<tls-cert>.ocsp" exists (ocsp.c). The SNI callback
 * sits on the first, which every session starts with. */
static int tls_server_setup(struct tls_contexts *tls, const struct proxy_config *cfg, char *err,
                            size_t errlen)
{
    if (cfg->n_tls_cert == 0 || cfg->n_tls_cert != cfg->n_tls_key) {
        snprintf(err, errlen,
                 "tls-cert: a TLS listener needs tls-cert and tls-key, as many of "
                 "each (%zu and %zu given)",
                 cfg->n_tls_cert, cfg->n_tls_key);
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->n_tls_cert; i++) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == NULL)
            return tls_fail(err, errlen, "tls-cert", cfg->tls_cert[i]);
        tls->server[tls->n_server++] = ctx;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        /* A client closing without a close_notify (many do) would otherwise be a fatal error to
         * OpenSSL, which then drops its session; HTTP's own framing tells a cut request. */
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_IGNORE_UNEXPECTED_EOF);
        sessions_use(ctx);
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"gslb", 4);
        SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert[i]) != 1)
            return tls_fail(err, errlen, "tls-cert", cfg->tls_cert[i]);
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key[i], SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
            return tls_fail(err, errlen, "tls-key", cfg->tls_key[i]);
        if (ocsp_staple_load(ctx, cfg->tls_cert[i], err, errlen) != 0)
            return -EINVAL;
        if (tickets_use(ctx, cfg->tls_ticket_rotate_ms) != 0)
            return tls_fail(err, errlen, "tls-ticket-rotate", "(context)");
    }
    SSL_CTX_set_tlsext_servername_callback(tls->server[0], tls_servername_cb);
    return 0;
}

/* The client side, for origins with "tls": TLS 1.2 and up, certificates checked against the
 * system's CAs or origin-ca-file (per origin, the name check and SNI are set per connection).
 * The system's CAs are looked up in its hashed directory when a certificate needs one: loading
 * the whole bundle would cost every start a quarter of a billion instructions. */
static int tls_origin_setup(struct tls_contexts *tls, const struct proxy_config *cfg, char *err,
                            size_t errlen)
{
    tls->origin = SSL_CTX_new(TLS_client_method());
    if (tls->origin == NULL)
        return tls_fail(err, errlen, "origin-ca-file", "(context)");
    SSL_CTX_set_min_proto_version(tls->origin, TLS1_2_VERSION);
    SSL_CTX_set_options(tls->origin, SSL_OP_NO_RENEGOTIATION);
    /* Sessions are resumed per worker and origin, kept by upstream.c's callback: OpenSSL's own
     * cache would be one per context, locked, and keyed by nothing that tells origins apart. */
    SSL_CTX_set_session_cache_mode(tls->origin,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(tls->origin, upstream_tls_session_new_cb);
    int ok = cfg->origin_ca_file[0]
                 ? SSL_CTX_load_verify_locations(tls->origin, cfg->origin_ca_file, NULL)
                 : SSL_CTX_set_default_verify_dir(tls->origin);
    if (ok != 1)
        return tls_fail(err, errlen, "origin-ca-file",
                        cfg->origin_ca_file[0] ? cfg->origin_ca_file : "(the system's)");
    return 0;
}

/* Reads every file <cfg> names, now: the tls-cert/tls-key pairs when <server> (some running
 * listener speaks TLS), and the origin CAs. Returns a set with one reference, or NULL with the
 * setting and path that failed in <err>: all or nothing, so a reload never half-applies. */
static struct tls_contexts *tls_contexts_create(const struct proxy_config *cfg, bool server,
                                                char *err, size_t errlen)
{
    pthread_once(&tls_contexts_index_once, tls_contexts_index_make);
    if (tls_contexts_index < 0) {
        snprintf(err, errlen, "tls-cert: OpenSSL has no room for our session data");
        return NULL;
    }
    struct tls_contexts *tls = xcalloc(1, sizeof(*tls));
    atomic_init(&tls->refs, 1);
    /* The key file is checked with no TLS listener too: --check-config tells what it holds. */
    struct ticket_keys *keys = NULL;
    if ((server && tls_server_setup(tls, cfg, err, errlen) != 0) ||
        tls_origin_setup(tls, cfg, err, errlen) != 0 ||
        (cfg->tls_ticket_key_file[0] &&
         (keys = tickets_read(cfg->tls_ticket_key_file, err, errlen)) == NULL)) {
        tls_contexts_free(tls);
        return NULL;
    }
    if (server)
        tickets_set(keys, cfg->tls_ticket_rotate_ms);
    else
        tickets_free(keys);
    return tls;
}

SSL *tls_server_session_new(struct worker *w)
{
    struct tls_contexts *tls = w->live->tls;
    SSL *ssl = tls->n_server > 0 ? SSL_new(tls->server[0]) : NULL;
    if (ssl == NULL)
        return NULL;
    if (SSL_set_ex_data(ssl, tls_contexts_index, tls_contexts_hold(tls)) != 1) {
        tls_contexts_release(tls);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* Whether any listener of <cfg> terminates TLS. */
static bool tls_listening(const struct proxy_config *cfg)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if (cfg->listen[i].tls)
            return true;
    }
    return false;
}

/* ---- the metrics listener ---- */

/* One origin's check latencies as a Prometheus histogram; the key is "service/region/address"
 * (names and addresses hold no '/'). */
static bool check_labels(const struct gslb_check_stats *st, char *labels, size_t len)
{
    const char *slash1 = strchr(st->key, '/'), *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    if (slash2 == NULL)
        return false;
    snprintf(labels, len, "service=\"%.*s\",region=\"%.*s\",origin=\"%s\"", (int)(slash1 - st->key),
             st->key, (int)(slash2 - slash1 - 1), slash1 + 1, slash2 + 1);
    return true;
}

static void check_failures_metrics(const struct gslb_check_stats *st, void *arg)
{
    char labels[600];
    if (check_labels(st, labels, sizeof(labels)))
        evbuffer_add_printf(arg, "gslb_health_check_failures_total{%s} %llu\n", labels,
                            (unsigned long long)st->failures);
}

static void check_latency_metrics(const struct gslb_check_stats *st, void *arg)
{
    struct evbuffer *out = arg;
    char labels[600];
    if (!check_labels(st, labels, sizeof(labels)))
        return;
    for (size_t b = 0; b < GSLB_CHECK_BUCKETS; b++)
        evbuffer_add_printf(out, "gslb_health_check_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                            labels, gslb_check_bucket_seconds[b],
                            (unsigned long long)st->buckets[b]);
    evbuffer_add_printf(out,
                        "gslb_health_check_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n"
                        "gslb_health_check_duration_seconds_sum{%s} %.6f\n"
                        "gslb_health_check_duration_seconds_count{%s} %llu\n",
                        labels, (unsigned long long)st->count, labels, st->sum_seconds, labels,
                        (unsigned long long)st->count);
}

/* Health gauges from the prober's newest view, appended to the metrics text. */
static void health_metrics(struct proxy *p, struct evbuffer *out)
{
    const struct gslb_snapshot *snap = gslb_watch_acquire(p->watch);
    const struct gslb_health *view = p->prober ? gslb_prober_acquire(p->prober) : NULL;
    if (snap && view && view->version == snap->version) {
        evbuffer_add_printf(out, "# HELP gslb_origin_up Whether health checks pass (1) or not.\n"
                                 "# TYPE gslb_origin_up gauge\n");
        for (size_t s = 0; s < snap->n_services; s++) {
            const struct gslb_service *svc = &snap->services[s];
            for (size_t pl = 0; pl < svc->n_pools; pl++) {
                const struct gslb_pool *pool = &svc->pools[pl];
                for (size_t o = 0; o < pool->n_origins; o++)
                    evbuffer_add_printf(
                        out, "gslb_origin_up{service=\"%s\",region=\"%s\",origin=\"%s\"} %d\n",
                        svc->name, snap->regions[pool->region].name, pool->origins[o].address,
                        view->origin_up[pool->origins[o].index]);
            }
        }
        evbuffer_add_printf(out, "# HELP gslb_region_up Whether a region serves a service (1): "
                                 "healthy origins, past its failback hold-down.\n"
                                 "# TYPE gslb_region_up gauge\n");
        for (size_t s = 0; s < snap->n_services; s++) {
            const struct gslb_service *svc = &snap->services[s];
            for (size_t pl = 0; pl < svc->n_pools; pl++)
                evbuffer_add_printf(out, "gslb_region_up{service=\"%s\",region=\"%s\"} %d\n",
                                    svc->name, snap->regions[svc->pools[pl].region].name,
                                    view->region_up[s * snap->n_regions + svc->pools[pl].region]);
        }
        evbuffer_add_printf(out, "# HELP gslb_health_check_duration_seconds Time an active check "
                                 "took, answered or failed.\n"
                                 "# TYPE gslb_health_check_duration_seconds histogram\n");
        gslb_prober_check_stats(p->prober, check_latency_metrics, out);
        evbuffer_add_printf(out, "# HELP gslb_health_check_failures_total Active checks that "
                                 "failed.\n# TYPE gslb_health_check_failures_total counter\n");
        gslb_prober_check_stats(p->prober, check_failures_metrics, out);
    }
    gslb_health_release(view);
    gslb_snapshot_release(snap);
}

static void metrics_request_cb(struct evhttp_request *req, void *arg)
{
    struct proxy *p = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *body = evbuffer_new();
    if (path && strcmp(path, "/metrics") == 0) {
        char *text = metrics_render(&p->metrics);
        evbuffer_add(body, text, strlen(text));
        free(text);
        health_metrics(p, body);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4");
        evhttp_send_reply(req, 200, "OK", body);
    } else if (path && strcmp(path, "/healthz") == 0) {
        evbuffer_add_printf(body, "ok\n");
        evhttp_send_reply(req, 200, "OK", body);
    } else {
        evbuffer_add_printf(body, "not found: try /metrics\n");
        evhttp_send_reply(req, 404, "Not Found", body);
    }
    evbuffer_free(body);
}

static void metrics_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *p = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(p->metrics_base);
}

static void *metrics_main(void *arg)
{
    struct proxy *p = arg;
    event_base_dispatch(p->metrics_base);
    return NULL;
}

static int metrics_start(struct proxy *p, char *err, size_t errlen)
{
    evutil_socket_t fd = listen_socket("metrics-listen", p->cfg.metrics_listen, true, err, errlen);
    if (fd < 0)
        return -EADDRINUSE;
    p->metrics_port = socket_port(fd);
    p->metrics_base = event_base_new();
    if (pipe2(p->metrics_stop_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "metrics: pipe: %s", strerror(errno));
        close(fd);
        return -EIO;
    }
    p->metrics_stop =
        event_new(p->metrics_base, p->metrics_stop_fds[0], EV_READ, metrics_stop_cb, p);
    event_add(p->metrics_stop, NULL);
    p->metrics_http = evhttp_new(p->metrics_base);
    evhttp_set_allowed_methods(p->metrics_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(p->metrics_http, 10);
    evhttp_set_gencb(p->metrics_http, metrics_request_cb, p);
    if (evhttp_accept_socket(p->metrics_http, fd) != 0) {
        snprintf(err, errlen, "metrics-listen %s: cannot accept", p->cfg.metrics_listen);
        close(fd);
        return -EIO;
    }
    if (pthread_create(&p->metrics_thread, NULL, metrics_main, p) != 0) {
        snprintf(err, errlen, "metrics: cannot start its thread");
        return -EIO;
    }
    p->metrics_running = true;
    return 0;
}

static void metrics_stop(struct proxy *p)
{
    if (p->metrics_running) {
        (void)!write(p->metrics_stop_fds[1], "x", 1);
        pthread_join(p->metrics_thread, NULL);
        p->metrics_running = false;
    }
    if (p->metrics_http)
        evhttp_free(p->metrics_http);
    if (p->metrics_stop) {
        event_free(p->metrics_stop);
        close(p->metrics_stop_fds[0]);
        close(p->metrics_stop_fds[1]);
    }
    if (p->metrics_base)
        event_base_free(p->metrics_base);
    p->metrics_http = NULL;
    p->metrics_stop = NULL;
    p->metrics_base = NULL;
}

/* Frees what a worker holds; safe on one that was set up only in part. */
static void worker_fini(struct worker *w)
{
    client_spares_free(w);
    body_pipes_free(w);
    listeners_close(w);
    if (w->current)
        wsnap_free(w->proxy, w->current);
    if (w->shutdown_check)
        event_free(w->shutdown_check);
    if (w->wakeup) {
        event_free(w->wakeup);
        close(w->wake_fds[0]);
        close(w->wake_fds[1]);
    }
    if (w->dns)
        evdns_base_free(w->dns, 0);
    if (w->live)
        publish_obj_release(&w->live->obj);
    if (w->base)
        event_base_free(w->base);
    free(w->decision);
    free(w->scratch.p);
    free(w->log_line.p);
}

/* Frees the workers (stopped, or never started) and everything the proxy holds. */
static void proxy_free(struct proxy *p)
{
    for (int i = 0; i < p->n_workers; i++)
        worker_fini(&p->workers[i]);
    metrics_stop(p);
    accesslog_close(p->log);
    metrics_fini(&p->metrics);
    sticky_fini(&p->sticky);
    passive_board_fini(&p->passive);
    publish_slot_fini(&p->live);
    free(p->workers);
    free(p);
}

/* Raises the soft limit on open descriptors to what max-connections may take: each client, its
 * origin connection and a pipe's two ends while a body is spliced, each worker's spare pipes and
 * listeners, and room for pools, the store and the console. Debian's default soft limit, 1024,
 * would otherwise refuse connections long before max-connections. Pipes are optional (a body
 * that gets none takes the buffered path), so only a hard limit below two per connection and the
 * rest earns a warning. */
static void descriptor_limit_fit(const struct proxy_config *cfg, int n_workers)
{
    struct rlimit lim;
    rlim_t base = 1024 + (rlim_t)n_workers * (2 * BODY_PIPE_SPARES + PROXY_MAX_LISTEN + 4);
    rlim_t want = (rlim_t)cfg->max_connections * 4 + base;
    rlim_t need = (rlim_t)cfg->max_connections * 2 + base;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= want)
        return;
    rlim_t was = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= want ? want : lim.rlim_max;
    if (lim.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &lim) != 0)
        lim.rlim_cur = was;
    if (lim.rlim_cur < need)
        log_warn("proxy: max-connections %d needs at least %llu open descriptors; the limit is "
                 "%llu (raise LimitNOFILE or ulimit -Hn)",
                 cfg->max_connections, (unsigned long long)need, (unsigned long long)lim.rlim_cur);
}

/* ---- public API ---- */

struct proxy *proxy_create(const struct proxy_config *cfg, struct geo *geo,
                           struct gslb_watch *watch, struct gslb_prober *prober, char *err,
                           size_t errlen)
{
    struct proxy *p = xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    p->geo = geo;
    p->watch = watch;
    p->prober = prober;
    metrics_init(&p->metrics);
    sticky_init(&p->sticky);
    passive_board_init(&p->passive);
    publish_slot_init(&p->live);
    for (size_t i = 0; i < PROXY_MAX_LISTEN; i++)
        p->listen_fds[i] = -1;
    p->n_workers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (p->n_workers < 1)
        p->n_workers = 1;
    if (cfg->n_listen == 0) {
        snprintf(err, errlen, "listen: no address to listen on");
        goto fail;
    }
    descriptor_limit_fit(cfg, p->n_workers);
    struct tls_contexts *tls = tls_contexts_create(cfg, tls_listening(cfg), err, errlen);
    if (tls == NULL)
        goto fail;
    struct live_config *live = xcalloc(1, sizeof(*live));
    publish_obj_init(&live->obj, live_config_destroy);
    live->cfg = *cfg;
    live->tls = tls;
    publish_slot_swap(&p->live, &live->obj);
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if ((p->listen_fds[i] =
                 listen_socket("listen", cfg->listen[i].address, true, err, errlen)) < 0)
            goto fail;
        p->listen_ports[i] = socket_port(p->listen_fds[i]);
        /* Port 0 picked a port: the other workers must bind that same one. */
        if (strcmp(strrchr(p->cfg.listen[i].address, ':'), ":0") == 0)
            snprintf(strrchr(p->cfg.listen[i].address, ':'), 8, ":%d", p->listen_ports[i]);
    }
    if (cfg->access_log[0] &&
        (p->log = accesslog_open(cfg->access_log, cfg->access_log_format, err, errlen)) == NULL)
        goto fail;
    if (cfg->metrics_listen[0] && metrics_start(p, err, errlen) != 0)
        goto fail;
    p->workers = xcalloc((size_t)p->n_workers, sizeof(*p->workers));
    for (int i = 0; i < p->n_workers; i++) {
        if (worker_init(p, &p->workers[i], i, err, errlen) != 0)
            goto fail;
    }
    for (int i = 0; i < p->n_workers; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            snprintf(err, errlen, "proxy: cannot start worker threads");
            p->n_workers = i;
            proxy_destroy(p);
            return NULL;
        }
    }
    return p;
fail:
    p->n_workers = p->workers ? p->n_workers : 0;
    for (int l = 0; l < PROXY_MAX_LISTEN; l++) { /* sockets no listener took over */
        if (p->listen_fds[l] >= 0 && (p->n_workers == 0 || !p->workers[0].listeners[l].ev))
            close(p->listen_fds[l]);
    }
    proxy_free(p);
    return NULL;
}

void proxy_shutdown(struct proxy *p)
{
    if (p->shut_down)
        return;
    p->shut_down = true;
    atomic_store(&p->stopping, true);
    for (int i = 0; i < p->n_workers; i++)
        (void)!write(p->workers[i].wake_fds[1], "x", 1);
    for (int i = 0; i < p->n_workers; i++)
        pthread_join(p->workers[i].thread, NULL);
}

void proxy_destroy(struct proxy *p)
{
    if (p == NULL)
        return;
    proxy_shutdown(p);
    proxy_free(p);
}

void proxy_reopen_logs(struct proxy *p)
{
    accesslog_reopen(p->log);
}

int proxy_listen_port(const struct proxy *p, size_t index)
{
    return index < p->cfg.n_listen ? p->listen_ports[index] : -1;
}

int proxy_metrics_port(const struct proxy *p)
{
    return p->metrics_running ? p->metrics_port : -1;
}

/* Whether the running listen address <running> is what <wanted> asks for; port 0 in <wanted>
 * was replaced by the port the kernel picked. */
static bool listen_same(const char *running, const char *wanted)
{
    const char *colon = strrchr(wanted, ':');
    if (strcmp(colon, ":0") != 0)
        return strcmp(running, wanted) == 0;
    return strncmp(running, wanted, (size_t)(colon - wanted + 1)) == 0 &&
           strchr(running + (colon - wanted) + 1, ':') == NULL;
}

/* Whether two configurations differ in what only a restart can change; names the first. */
/* Appends ", <name>" (the first without the comma) to <out> of <cap> bytes. */
static void name_add(char *out, size_t cap, const char *name)
{
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s%s", len ? ", " : "", name);
}

/* The settings that need a restart and that <b> changes from <a>, named in <out> ("" if none). */
static void boot_settings_changed(const struct proxy_config *a, const struct proxy_config *b,
                                  char *out, size_t cap)
{
    bool listen = a->n_listen != b->n_listen;
    for (size_t i = 0; !listen && i < a->n_listen; i++)
        listen = !listen_same(a->listen[i].address, b->listen[i].address) ||
                 a->listen[i].proxy_protocol != b->listen[i].proxy_protocol ||
                 a->listen[i].tls != b->listen[i].tls;
    out[0] = '\0';
    if (listen)
        name_add(out, cap, "listen");
    if (a->workers != b->workers)
        name_add(out, cap, "workers");
    if (strcmp(a->metrics_listen, b->metrics_listen) != 0)
        name_add(out, cap, "metrics-listen");
    if (a->client_sndbuf != b->client_sndbuf)
        name_add(out, cap, "client-sndbuf");
    if (a->busy_poll_us != b->busy_poll_us)
        name_add(out, cap, "busy-poll");
    if (strcmp(a->access_log, b->access_log) != 0)
        name_add(out, cap, "access-log");
    if (a->access_log_format != b->access_log_format)
        name_add(out, cap, "access-log-format");
}

int proxy_reconfigure(struct proxy *p, const struct proxy_config *cfg, char *restart_out,
                      size_t restart_cap, char *err, size_t errlen)
{
    struct live_config *live = xcalloc(1, sizeof(*live));
    publish_obj_init(&live->obj, live_config_destroy);
    live->cfg = *cfg;
    /* What needs a restart keeps its running value. */
    boot_settings_changed(&p->cfg, cfg, restart_out, restart_cap);
    descriptor_limit_fit(cfg, p->n_workers);
    memcpy(live->cfg.listen, p->cfg.listen, sizeof(live->cfg.listen));
    live->cfg.n_listen = p->cfg.n_listen;
    live->cfg.workers = p->cfg.workers;
    live->cfg.client_sndbuf = p->cfg.client_sndbuf;
    live->cfg.busy_poll_us = p->cfg.busy_poll_us;
    memcpy(live->cfg.metrics_listen, p->cfg.metrics_listen, sizeof(live->cfg.metrics_listen));
    memcpy(live->cfg.access_log, p->cfg.access_log, sizeof(live->cfg.access_log));
    live->cfg.access_log_format = p->cfg.access_log_format;
    /* Certificates, keys and CAs are read again even from unchanged paths (renewed in place).
     * One file that does not load keeps every running context, and the paths they came from. */
    int rc = 0;
    struct live_config *running = (struct live_config *)publish_slot_acquire(&p->live);
    live->tls = tls_contexts_create(cfg, tls_listening(&p->cfg), err, errlen);
    if (live->tls == NULL) {
        live->tls = tls_contexts_hold(running->tls);
        memcpy(live->cfg.tls_cert, running->cfg.tls_cert, sizeof(live->cfg.tls_cert));
        memcpy(live->cfg.tls_key, running->cfg.tls_key, sizeof(live->cfg.tls_key));
        live->cfg.n_tls_cert = running->cfg.n_tls_cert;
        live->cfg.n_tls_key = running->cfg.n_tls_key;
        live->cfg.tls_ticket_rotate_ms = running->cfg.tls_ticket_rotate_ms;
        memcpy(live->cfg.tls_ticket_key_file, running->cfg.tls_ticket_key_file,
               sizeof(live->cfg.tls_ticket_key_file));
        memcpy(live->cfg.origin_ca_file, running->cfg.origin_ca_file,
               sizeof(live->cfg.origin_ca_file));
        rc = -EINVAL;
    }
    publish_obj_release(&running->obj);
    publish_slot_swap(&p->live, &live->obj);
    for (int i = 0; i < p->n_workers; i++)
        (void)!write(p->workers[i].wake_fds[1], "c", 1);
    return rc;
}

/* proxy/proxy_int.h - what the files of proxy/ share and nobody else sees.
 *
 * Ownership: a worker owns its client connections; a client connection owns the request in
 * flight and, while it is in use, the origin connection serving it; an idle origin connection
 * belongs to the worker's pool. Everything of one worker is touched only by that worker's thread,
 * so nothing here is locked except the metrics registry and the access log queue. */
#ifndef PROXY_PROXY_INT_H
#define PROXY_PROXY_INT_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <llhttp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "common/publish.h"
#include "common/sbuf.h"
#include "geo/geo.h"
#include "gslb/gslb.h"
#include "proxy/proxy.h"

/* Timers that fire early (a lazy timer whose deadline moved on) sleep again unless the deadline
 * is this close. */
#define TIMER_SLACK_MS 10

/* A lazy timer (server.c): for deadlines that move per request or per read (a client's, an idle
 * origin connection's, a reader's). Moving the deadline later is a store; the event, set to fire
 * no later than the deadline, fires about once per timeout period and sleeps again for what is
 * left. libevent would otherwise move the event in its timer queue at every change. */
struct lazy_timer {
    struct event *ev;
    int64_t deadline_ms, fires_ms; /* monotonic: when it is due, when <ev> fires */
    bool armed;                    /* <ev> is pending */
};

/* The deadline is <ms> from now; <in> is the same duration for libevent (a common timeout may
 * serve). The event is added only when it would fire after the deadline. */
void lazy_timer_set(struct lazy_timer *t, int64_t ms, const struct timeval *in);
/* First thing in the event's callback: true when there is something to time (<timing>) and its
 * deadline has come; false when there is nothing to time, or when the event sleeps again for
 * what is left. */
bool lazy_timer_fired(struct lazy_timer *t, bool timing);
void lazy_timer_stop(struct lazy_timer *t);

/* The monotonic clock, as the proxy reads it. The callbacks that carry a request (a socket's
 * read, a client's or an origin's) hold it: every reading until the outermost release is the
 * first one, as nginx and HAProxy read the time once per loop iteration. A keep-alive request read
 * it about ten times (22 ns each here), now twice. Outside a hold every reading is fresh, so a
 * missed hold costs a reading, never a stale time. Holds and releases pair up in wrappers that
 * return nothing, so a callback freeing its object cannot skip a release. */
struct proxy_clock {
    int holds;
    bool read;
    struct timespec now;
    unsigned long outer_holds; /* callbacks that carried work: what busy-polling watches */
};
extern _Thread_local struct proxy_clock proxy_clock;

static inline void proxy_clock_hold(void)
{
    if (proxy_clock.holds++ == 0) {
        proxy_clock.read = false;
        proxy_clock.outer_holds++;
    }
}

static inline void proxy_clock_release(void)
{
    proxy_clock.holds--;
}

static inline void proxy_now(struct timespec *now)
{
    if (proxy_clock.holds == 0) {
        clock_gettime(CLOCK_MONOTONIC, now);
        return;
    }
    if (!proxy_clock.read) {
        clock_gettime(CLOCK_MONOTONIC, &proxy_clock.now);
        proxy_clock.read = true;
    }
    *now = proxy_clock.now;
}

/* The monotonic clock in milliseconds, and microseconds elapsed since <since>. */
static inline int64_t proxy_now_ms(void)
{
    struct timespec ts;
    proxy_now(&ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t proxy_elapsed_us(const struct timespec *since)
{
    struct timespec now;
    proxy_now(&now);
    return (int64_t)(now.tv_sec - since->tv_sec) * 1000000 + (now.tv_nsec - since->tv_nsec) / 1000;
}

/* Parses "ADDR:PORT", "[V6]:PORT" or ":PORT" (all IPv4 addresses) into <ss>: 0 or -EINVAL. */
int proxy_address_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/* Bytes buffered towards a slow peer before we stop reading from the other side. */
#define PROXY_HIGH_WATER (64 * 1024)
#define PROXY_READ_CHUNK (64 * 1024)
#define BODY_PIPE_SPARES 64 /* empty pipes a worker keeps */

enum client_state { C_IDLE, C_HEAD, C_FORWARD, C_TUNNEL, C_CLOSING };
/* Timeouts: the client's timer kinds first, then those of bufferevents. Each is a libevent
 * "common timeout" of its worker, so arming one is a queue append, not a heap insertion. */
enum client_timer { T_NONE, T_KEEPALIVE, T_HEADER, T_CONNECT, T_RESPONSE, T_TUNNEL };
enum { TO_CLIENT_BODY = T_TUNNEL + 1, TO_ORIGIN_READ, TO_ORIGIN_IDLE, TO_COUNT };

struct proxy;
struct worker;
struct client;
struct upstream;

/* ---- headers.c: a message head as parsed, and the rules for forwarding it ---- */

/* The header names the proxy acts on, told apart once, when a header is complete. */
enum header_id {
    H_OTHER,
    H_CONNECTION,
    H_CONTENT_LENGTH,
    H_CONTENT_LOCATION,
    H_DATE,
    H_EXPECT,
    H_FORWARDED,
    H_HOST,
    H_KEEP_ALIVE,
    H_LOCATION,
    H_MAX_FORWARDS,
    H_PROXY, /* any Proxy-* */
    H_TE,
    H_TRAILER,
    H_TRANSFER_ENCODING,
    H_UPGRADE,
    H_VIA,
    H_X_FORWARDED_FOR,
    H_X_FORWARDED_HOST,
    H_X_FORWARDED_PROTO,
};

struct header {
    uint32_t name, name_len, value, value_len; /* offsets into the head's text */
    enum header_id id;
};

struct head {
    char *text; /* request line or status reason, then names and values, back to back */
    size_t len, cap, max;
    struct header *headers;
    int n_headers, headers_cap, max_headers;
    uint32_t url, url_len;       /* request target (requests) */
    uint32_t reason, reason_len; /* status reason (responses) */
    enum { HEAD_IDLE, HEAD_FIELD, HEAD_VALUE, HEAD_VALUE_DONE } state;
    bool too_large, too_many, folded;
    bool value_ran_to_end; /* the last piece of a value ended its read buffer */
    /* What Connection headers name is hop-by-hop too: "close", or (connection_names) names
     * other than close, keep-alive and upgrade, which the fixed list covers. */
    bool connection_close, connection_names;
};

/* The limits of the next message, on a head new (zeroed) or reset. */
void head_limit(struct head *h, size_t max_bytes, int max_headers);
void head_reset(struct head *h);
void head_fini(struct head *h);
/* Appends a piece of a field (name), value, URL or reason; returns false once a limit is hit.
 * <edges> (HEAD_STARTS_READ, HEAD_ENDS_READ) says where a value's piece lies in the buffer the
 * parser reads: a piece that starts a buffer continues its value only if the piece before ran
 * to the end of its own; else a line break came between them (obs-fold). */
bool head_append(struct head *h, int what, const char *at, size_t len, unsigned edges);
enum { HEAD_PART_NAME, HEAD_PART_VALUE, HEAD_PART_URL, HEAD_PART_REASON };
enum { HEAD_STARTS_READ = 1, HEAD_ENDS_READ = 2 };
void head_value_complete(struct head *h);
/* Adds the non-empty values of the first <n> headers <id> of <h> (all there are, or fewer), in
 * order, each followed by ", ": a list that the caller ends with its own item, on one line
 * wherever its pieces were in the head. */
void head_add_list(struct sbuf *out, const struct head *h, enum header_id id, int n);
/* The Via line of a message of HTTP/1.<minor> whose head <h> has <n> Via fields: theirs, on one
 * line, and ours naming the version the message came in (RFC 9110 7.6.3). */
void head_add_via(struct sbuf *out, const struct head *h, int n, int minor);
/* Whether the connection of the message <h>, parsed by <parser>, carries another one: llhttp's
 * answer, unless "close" is among the Connection options, which llhttp 8 heeds in HTTP/1.1 only
 * (RFC 9112 9.3 puts it before HTTP/1.0's keep-alive). */
bool head_keeps_alive(const struct head *h, const llhttp_t *parser);
/* The value of the last header <id>; NULL if absent, and *count says how many there were. */
const char *head_get(const struct head *h, enum header_id id, size_t *len_out, int *count_out);
/* True when <token> appears in the comma-separated value of any header <id>. */
bool head_has_token(const struct head *h, enum header_id id, const char *token);
/* True when the headers <id> together list exactly one element, <token>. */
bool head_list_is_only(const struct head *h, enum header_id id, const char *token);
/* Whether every element of the lists <id> is <token>, in any case, empty ones aside (no element
 * at all: true); *seen says whether <token> was there. */
bool head_list_all_are(const struct head *h, enum header_id id, const char *token, bool *seen);
/* Validates what strict llhttp lets through: names (none empty; their characters are llhttp's
 * to check), a status reason (no control characters but HTAB) and a request target (printable
 * ASCII, no fragment, a '%' in the path followed by two hex digits). Returns what is wrong, or
 * NULL. */
const char *head_check_chars(const struct head *h);
/* Whether header <hd> of <h> is named name[0..len), in any case: for names known only at run
 * time (settings); the fixed ones have their enum header_id. */
bool head_name_is(const struct head *h, const struct header *hd, const char *name, size_t len);
/* Whether name[0..len) is one of the headers the proxy acts on (enum header_id). */
bool header_name_is_known(const char *name, size_t len);
/* How many of the first <len> bytes of <s> are RFC 9110 tchars (a token), from the start. */
size_t token_span(const char *s, size_t len);
/* Whether request header <hd> is one gslbd sets for the origin under <cfg> and gslbd does not
 * know by an id (X-Forwarded-For/-Proto/-Host, the client-ip-header, the request-id-header), or
 * reads as one once each '_' of its name is read as '-': CGI-style servers (PHP, WSGI, Rack) see
 * X_Real_IP as the same HTTP_X_REAL_IP as X-Real-IP, so a client's own would pass for ours. */
bool head_is_set_for_origin(const struct head *h, const struct header *hd,
                            const struct proxy_config *cfg);
/* Appends the trailer fields of a chunked message, the headers of <h> from index <first> on, to
 * <out> as "name: value" lines. None that gslbd knows by name goes on: each of those frames,
 * routes, forwards or controls a message, which a trailer must not do (RFC 9110 6.5.1), or is
 * hop-by-hop, as is what Connection names; nor, in a request (<to_origin>: its configuration),
 * any head_is_set_for_origin(). Returns false, having added nothing, when a name is empty (llhttp
 * lets that through). */
bool head_add_trailers(struct sbuf *out, const struct head *h, int first,
                       const struct proxy_config *to_origin);
/* Whether header <hd> is hop-by-hop: never forwarded (Connection and what it names, Keep-Alive,
 * TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*). */
bool head_is_hop_by_hop(const struct head *h, const struct header *hd);
/* An origin's Location (or Content-Location) that points at the origin itself, as
 * http(s)://ADDRESS/... or //ADDRESS/..., rewritten to point at <client_host>, the host the client
 * asked for (when it asked for none, to the path alone): appends the new value to <out> and
 * returns true; false leaves the value as it was. */
bool location_rewrite(const char *value, size_t len, const char *origin_address,
                      const char *client_host, bool https, struct sbuf *out);
/* <t> as a Date value (RFC 9110 5.6.7, IMF-fixdate) in out[0..cap); returns its length. */
size_t http_date(time_t t, char *out, size_t cap);

/* ---- proxyproto.c ---- */

#define PROXYPROTO_PARSE_MAX 232 /* a v2 header's fixed part and largest address block */

/* Parses a PROXY protocol v1 or v2 header at the start of <buf>. Returns the header's length
 * (for v2, possibly more than <len>: TLVs not there yet, to be dropped as they come) and fills
 * <src> when it carries an address (LOCAL/UNKNOWN leave it unset and return *has_addr false), 0
 * when more bytes are needed (never with PROXYPROTO_PARSE_MAX of them), or -1 when it is not a
 * valid header. */
int proxyproto_parse(const uint8_t *buf, size_t len, struct ip_addr *src, bool *has_addr);

/* ---- sticky.c: the origins sticky clients were last sent to (see the file) ---- */

struct sticky_table {
    _Atomic uint64_t *slots;
};

void sticky_init(struct sticky_table *t);
void sticky_fini(struct sticky_table *t);
/* Notes that <client> was sent to <origin> at <now_ms> (proxy_now_ms()). */
void sticky_remember(struct sticky_table *t, const struct ip_addr *client,
                     const struct gslb_origin *origin, int64_t now_ms);
/* The low 16 bits of the hash key of the origin <client> was sent to within <window_ms> before
 * <now_ms> (0: never). */
bool sticky_recall(const struct sticky_table *t, const struct ip_addr *client, int window_ms,
                   int64_t now_ms, uint16_t *origin_tag_out);

/* ---- metrics.c ---- */

#define METRICS_BUCKETS        14
#define METRICS_ORIGIN_BUCKETS 1024

struct metrics_series {
    atomic_uint_fast64_t requests[6]; /* by status class: 1xx..5xx, and [0] for "aborted" */
    atomic_uint_fast64_t upstream_ms_buckets[METRICS_BUCKETS + 1];
    atomic_uint_fast64_t upstream_ms_count, upstream_us_sum;
    atomic_uint_fast64_t failures; /* an origin's: its attempts that failed, retried ones too */
};

/* A counter of struct metrics, bumped from any thread. */
#define ADD(counter, n) atomic_fetch_add_explicit(&(counter), (n), memory_order_relaxed)

struct metrics {
    pthread_mutex_t lock;            /* guards the series lists: taking, giving back, scraping */
    struct metrics_entry *entries;   /* by (service, region) */
    struct metrics_series *unrouted; /* ("none", none): requests no service took */
    /* By (region, origin address), in buckets by the address's hash (the origin's hash_key): a
     * snapshot view looks up each of its origins. */
    struct metrics_entry *origin_buckets[METRICS_ORIGIN_BUCKETS];
    atomic_uint_fast64_t connections_active, connections_total, connections_refused;
    atomic_uint_fast64_t idle_evicted; /* idle connections closed to make room at the limit */
    atomic_uint_fast64_t retries, geo_lookups, geo_located, decisions, decision_ns_sum;
    atomic_uint_fast64_t bad_requests, upstream_errors, passive_ejections;
    atomic_uint_fast64_t origin_tls_full, origin_tls_resumed; /* handshakes with origins */
    atomic_uint_fast64_t spliced_bytes; /* response body bytes moved by bodypipe.c */
    atomic_uint_fast64_t slow_clients;  /* dropped for taking nothing for keepalive-timeout */
    atomic_uint_fast64_t connections_lingering; /* closed, reading what their clients still send */
};

void metrics_init(struct metrics *m);
void metrics_fini(struct metrics *m);
/* The series of an origin of a region, and that of (service, region), created if new, with a
 * reference taken: each worker's view of a snapshot holds those of its origins and pools. */
struct metrics_series *metrics_origin_series_get(struct metrics *m, const char *region,
                                                 const struct gslb_origin *origin);
struct metrics_series *metrics_series_get(struct metrics *m, const char *service,
                                          const char *region);
/* Gives a reference back (NULL: none); with the last, the series leaves /metrics. */
void metrics_series_put(struct metrics *m, struct metrics_series *s);
void metrics_observe(struct metrics_series *s, int status, int64_t upstream_us);
/* Prometheus text exposition of everything (caller frees). */
char *metrics_render(struct metrics *m);

/* ---- accesslog.c ---- */

struct accesslog;
struct accesslog *accesslog_open(const char *path, enum proxy_log_format format, char *err,
                                 size_t errlen);
void accesslog_close(struct accesslog *log); /* flushes; accepts NULL */
void accesslog_reopen(struct accesslog *log);
/* What one line says about a finished request; strings may be empty, never NULL. */
struct accesslog_entry {
    const char *client, *peer, *country, *service, *region, *origin, *method, *target;
    const char *request_id;      /* NULL: no request-id-header; "": the request had none */
    const char *referer, *agent; /* not NUL-terminated: with their lengths */
    size_t referer_len, agent_len;
    int major, minor, status, retries;
    uint64_t bytes_in, bytes_out;
    int64_t total_us, upstream_us;
};
/* Formats <e> in the log's format, in <line> (the caller's, kept from line to line), and queues
 * the line; never blocks on the disk. */
void accesslog_record(struct accesslog *log, struct sbuf *line, const struct accesslog_entry *e);

/* ---- server.c: the worker's view of the topology ---- */

/* A snapshot as one worker uses it: origins resolved to socket addresses, per-origin idle
 * connection pools, the balancer. Retired when a newer snapshot arrives, freed when the last
 * request that used it ends. */
struct wsnap {
    const struct gslb_snapshot *snap;
    struct gslb_balancer *balancer;
    struct origin_target *targets;  /* by origin index */
    uint8_t *origin_up;             /* the health view's origins, and 0 for those a retry skips */
    const struct gslb_health *view; /* the prober's view for this snapshot, or NULL */
    uint64_t view_generation;
    struct passive_entry **passive; /* by origin index: its entry on the shared board, or NULL */
    uint64_t passive_generation;    /* of the board when <origin_up> was last refreshed */
    int64_t next_expiry_ms;         /* of the earliest ejection, INT64_MAX if none */
    struct metrics_series **series; /* by service * n_regions + region, of the pools */
    struct metrics_series **series_unrouted; /* by service: (service, none) */
    int inflight;
    bool retired;
};

/* ---- passive.c: passive checks on a board shared by the workers (see the file) ---- */

#define PASSIVE_BOARD_SLOTS (1u << 14)

struct passive_entry {
    _Atomic uint64_t key;       /* the origin's address hash (odd); 0 free, 2 a tombstone */
    uint32_t refs;              /* worker views that hold it, under the board's lock */
    _Atomic uint32_t failures;  /* in a row, over all workers */
    _Atomic uint32_t ejections; /* back-off step */
    _Atomic int64_t until_ms;   /* ejected until then (monotonic), 0 if not ejected */
    _Atomic int64_t last_until_ms;
};

struct passive_board {
    struct passive_entry *slots;
    pthread_mutex_t lock;        /* adding, reclaiming: each view made or freed */
    size_t live;                 /* entries held, under the lock */
    _Atomic uint64_t generation; /* bumped on every ejection and every lifted one */
    atomic_bool full_warned;
};

void passive_board_init(struct passive_board *b);
void passive_board_fini(struct passive_board *b);
/* The entry of the origin with address hash <key>, added if new, with a reference taken; NULL
 * when the board is full. */
struct passive_entry *passive_entry_get(struct passive_board *b, uint64_t key);
/* Gives back a reference passive_entry_get() took (NULL: none); the last one frees the slot. */
void passive_entry_put(struct passive_board *b, struct passive_entry *e);
/* Lifts the ejections that are due and refreshes <ws>'s origin_up and next expiry. */
void passive_sync(struct wsnap *ws, struct passive_board *b, int64_t now);
/* Counts a success or failure of origin <index> of <pool>. Returns true when this report ejected
 * it, with the deadline in <until_out>. */
bool passive_report(struct passive_board *b, const struct proxy_config *cfg, struct wsnap *ws,
                    const struct gslb_pool *pool, uint32_t index, bool failure, int64_t *until_out);

/* Whether origin <i> may be picked, before retry exclusions: the prober's view and no ejection. */
static inline uint8_t wsnap_origin_up(const struct wsnap *ws, uint32_t i)
{
    return (ws->view == NULL || ws->view->origin_up[i]) &&
           (ws->passive[i] == NULL ||
            atomic_load_explicit(&ws->passive[i]->until_ms, memory_order_relaxed) == 0);
}

struct origin_target {
    const struct gslb_origin *origin; /* in the view's snapshot */
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0: a host name, resolved per connection */
    char host[256];
    int port;
    struct upstream *idle; /* pooled connections, most recent first */
    int n_idle;
    /* The TLS session this origin gave the worker last, offered to the next new connection, and
     * the origin context it was made under (one reference): see the lifetime rule in upstream.c. */
    SSL_SESSION *tls_session;
    SSL_CTX *tls_session_ctx;
    struct metrics_series *metrics; /* the origin's, in its region */
};

/* A listening socket of a worker. */
struct worker_listener {
    struct worker *w;
    struct event *ev; /* NULL: not listening */
    evutil_socket_t fd;
    size_t index; /* in cfg.listen */
};

struct worker {
    struct proxy *proxy;
    int id;
    pthread_t thread;
    struct event_base *base;
    struct evdns_base *dns;
    struct worker_listener listeners[PROXY_MAX_LISTEN];
    bool deferring;              /* the listeners have TCP_DEFER_ACCEPT on */
    struct event *accept_resume; /* after running out of descriptors */
    struct event *wakeup;        /* shutdown requests from other threads, through <wake_fds> */
    int wake_fds[2];
    struct event *shutdown_check;
    const struct proxy_config *cfg; /* the live configuration it works by: <live>'s */
    struct live_config *live;
    uint64_t live_generation;
    const struct timeval *timeouts[TO_COUNT]; /* common timeouts, by T_* and TO_* */
    int timeout_ms[TO_COUNT];
    struct timeval timeout_tv[TO_COUNT]; /* the same, plain: for readers (whose timers fire
                                          * rarely) and when the base has no common one left */
    struct gslb_decision *decision;      /* scratch for the request being routed */
    struct sbuf scratch;                 /* for building heads that are copied out at once */
    struct sbuf log_line;                /* for building access log lines */
    uint64_t request_id_next;            /* splitmix64 state for request IDs, seeded at random */
    struct wsnap *current;
    uint64_t generation;
    struct client *clients; /* all client connections, for shutdown */
    struct client *spare;   /* closed ones kept for reuse, with their timer and stage */
    struct client *idle_oldest, *idle_newest; /* waiting for a request: see client_evict_idle() */
    int n_spare;
    struct req_bufs *spare_bufs; /* given back by connections gone idle (client.c) */
    int n_spare_bufs;
    int spare_pipes[BODY_PIPE_SPARES][2]; /* empty pipes for bodypipe.c */
    int n_spare_pipes;
    struct lingering_close *lingering; /* closed client connections lingering (linger.c) */
    bool stopping;                     /* shutting down: no new clients, none kept alive */
    bool cut_off; /* past the shutdown deadline: every connection left closes now, unlingering */
};

/* The TLS contexts one configuration serves with, made from its files at start and on every
 * SIGHUP (server.c explains who holds a reference, and why the SNI callback is safe). */
struct tls_contexts {
    atomic_uint refs;
    SSL_CTX *server[PROXY_MAX_CERTS]; /* one per tls-cert/tls-key pair, for TLS listeners */
    size_t n_server;                  /* 0 when no listener speaks TLS */
    SSL_CTX *origin;                  /* for origins with "tls" */
};

/* The settings that can change while running (proxy_reconfigure), published whole: each worker
 * takes the new one when woken and keeps a reference to the one it works by. */
struct live_config {
    struct publish_obj obj; /* first: the slot sees only this */
    struct proxy_config cfg;
    struct tls_contexts *tls; /* one reference; shared with the previous one when a reload's
                                 files did not load */
};

struct proxy {
    struct proxy_config cfg; /* as started: listeners, workers, metrics, access log */
    struct publish_slot live;
    struct geo *geo;
    struct gslb_watch *watch;
    struct gslb_prober *prober;
    struct worker *workers;
    int n_workers;
    evutil_socket_t listen_fds[PROXY_MAX_LISTEN]; /* the first set, for port queries */
    int listen_ports[PROXY_MAX_LISTEN];
    struct metrics metrics;
    struct accesslog *log;
    struct sticky_table sticky;
    struct passive_board passive;
    atomic_int connections;
    atomic_bool stopping;
    struct event_base *metrics_base;
    pthread_t metrics_thread;
    bool metrics_running;
    int metrics_port;
    struct evhttp *metrics_http;
    struct event *metrics_stop;
    int metrics_stop_fds[2];
    bool shut_down;
};

/* A server session for a client of a TLS listener, with the contexts of the worker's live
 * configuration; it holds a reference to them until it is freed. NULL if OpenSSL cannot. */
SSL *tls_server_session_new(struct worker *w);
/* Returns the worker's current snapshot view, switching to a newer one if published. */
struct wsnap *worker_wsnap(struct worker *w);
void wsnap_release(struct worker *w, struct wsnap *ws);
bool proxy_peer_trusted(const struct proxy_config *cfg, const struct ip_addr *addr);
/* Moves <data> to the connected plain socket of <bev>: straight into the socket when nothing is
 * queued before it, queueing on <bev> only what the socket does not take now. A write through
 * costs one writev; a queued one also two epoll_ctl calls (arming the write event, disarming it
 * once drained), which is most of what a small response costs. */
void bev_write_through(struct bufferevent *bev, struct evbuffer *data);
/* The same for <n_iov> buffers, in order (valid only for the call), and for <len> bytes at
 * <data>. */
void bev_write_through_iov(struct bufferevent *bev, struct iovec *iov, int n_iov);
void bev_write_through_bytes(struct bufferevent *bev, const void *data, size_t len);
/* Plain socket bufferevents that outlive their connection, so that a worker does not make and
 * free one per accepted client: new, parked (socket closed, buffers emptied, callbacks and
 * watermarks cleared; timeouts are the next user's to set) and reused for another socket. A
 * reused one enables writing when something is first queued on it. Freeing one never closes its
 * socket: its owner does, as parking does unless told to leave it open (<close_socket>). */
struct bufferevent *bev_plain_new(struct event_base *base, evutil_socket_t fd);
void bev_plain_park(struct bufferevent *bev, bool close_socket);
void bev_plain_reuse(struct bufferevent *bev, evutil_socket_t fd);

/* ---- ocsp.c: OCSP stapling from "<tls-cert>.ocsp" files ---- */

/* Reads "<cert_path>.ocsp", if there is one, for the server context <ctx> that has just loaded
 * <cert_path> (its chain must hold the certificate's issuer), checks it and staples it to the
 * handshakes <ctx> serves until its nextUpdate; <ctx> owns it from then on. Returns 0 (also when
 * there is no such file), or a negative errno with the setting, path and reason in <err>. */
int ocsp_staple_load(SSL_CTX *ctx, const char *cert_path, char *err, size_t errlen);

/* ---- sessions.c: TLS sessions resumed by ID, for the whole process ---- */

/* Makes the server context <ctx> keep and find the sessions clients resume by ID in the
 * process's table, which outlives the contexts a SIGHUP replaces. */
void sessions_use(SSL_CTX *ctx);

/* ---- tickets.c: TLS session ticket keys, rotated, or shared from a file ---- */

/* Makes the server context <ctx> seal and open session tickets with the process's keys, and
 * sets its session timeout to two periods of <period_ms> (in whole seconds, at least one). */
int tickets_use(SSL_CTX *ctx, int period_ms);
/* The keys of a tls-ticket-key-file, or NULL with the path, line and reason in <err>. */
struct ticket_keys *tickets_read(const char *path, char *err, size_t errlen);
void tickets_free(struct ticket_keys *keys);
/* From now on tickets are sealed with the first of <keys> (taken over) and opened with any, or,
 * with NULL, by the process's own ring, whose sealing key is replaced every <period_ms>: called
 * once every context of a configuration has been made with tickets_use(). */
void tickets_set(struct ticket_keys *keys, int period_ms);

/* ---- bodypipe.c: response bodies moved socket to socket with splice() ---- */

/* After a response head: moves the rest of a plain, Content-Length body of at least 32 KiB from
 * the origin's socket to the client's through a pipe, and completes the response when it is
 * through. Returns false (nothing done) when the body does not qualify. */
bool body_pipe_start(struct client *c);
/* The client's bufferevent output drained: the pipe may write again. */
void body_pipe_client_drained(struct client *c);
/* Ends <up>'s piping, if any: its events stopped, its pipe kept by the worker or closed. */
void body_pipe_stop(struct upstream *up);
void body_pipes_free(struct worker *w);

/* ---- linger.c: the lingering close of client connections (see the file) ---- */

/* Takes over <fd>, the socket of a client connection just closed whose client may still be
 * sending: half-closes it, drops what comes, and closes it when the client does or after the
 * lingering timeouts. It stays counted in proxy->connections until then. */
void linger_start(struct worker *w, evutil_socket_t fd);
/* Closes every lingering socket of <w> (shutdown). */
void linger_end_all(struct worker *w);

/* ---- reader.c: the read side of a connection ---- */

/* Reads a plain socket into its bufferevent's input with one recv() per readiness, where
 * libevent would also ask FIONREAD, and calls the bufferevent's read and event callbacks as
 * libevent would. Not "own" (a TLS session, a tunnel): every call goes to the bufferevent. */
struct sock_reader {
    struct bufferevent *bev;
    struct event *ev;        /* EV_READ | EV_PERSIST on the socket; kept across reattachments */
    struct lazy_timer timer; /* the read timeout's, its event made when first needed */
    const struct timeval *timeout;        /* NULL: none; a plain timeval, never a common one */
    const struct timeval *write_timeout;  /* the bufferevent's, which reading leaves alone */
    struct evbuffer_cb_entry *drained_cb; /* on the input while suspended at <high_water> */
    size_t high_water;                    /* input bytes at which reading pauses */
    bool own, enabled, suspended, bulk;
    bool unarmed; /* enabled, its event not added yet (reader_enable_unarmed) */
};

/* Starts on <bev>, passing every call on to it, with no timeout set. */
void reader_attach(struct sock_reader *r, struct bufferevent *bev, size_t high_water);
/* Sets the bufferevent's write timeout (output pending and not moving), which the reader's own
 * timeout changes keep. */
void reader_set_write_timeout(struct sock_reader *r, const struct timeval *timeout);
/* Takes the reading of a plain socket, connected now, over from its bufferevent. */
void reader_take_over(struct sock_reader *r, struct event_base *base);
/* Stops reading before <bev> is freed; the event is kept for the next attach. */
void reader_detach(struct sock_reader *r);
void reader_fini(struct sock_reader *r);
/* Frees what the calling thread's reads kept: last thing in a thread that read. */
void reader_thread_fini(void);
/* From now on the bufferevent reads for itself, with the reader's state (a tunnel). */
void reader_hand_back(struct sock_reader *r);
void reader_enable(struct sock_reader *r);
/* Enables reading without watching the socket yet, for a caller about to read by hand
 * (reader_read_now) what is most likely there already: the event is added (an epoll_ctl) only
 * when a read finds nothing or reader_enable() is called, so a connection that never waits for
 * its client's bytes never has the socket watched. */
void reader_enable_unarmed(struct sock_reader *r);
void reader_disable(struct sock_reader *r);
bool reader_enabled(const struct sock_reader *r);
/* The next read takes at most 16 KiB (a new message starts), however large the last ones were. */
void reader_read_small(struct sock_reader *r);
/* Reads now, as if the socket had become readable (an enabled plain reader only): the read
 * callback may close the connection. */
void reader_read_now(struct sock_reader *r);
/* Sets the read timeout (a plain timeval, not a common timeout, that outlives its use), counted
 * from the last read, unless it is set already. */
void reader_set_timeout(struct sock_reader *r, const struct timeval *timeout);
/* Sets it and counts it from now. */
void reader_restart_timeout(struct sock_reader *r, const struct timeval *timeout);

/* ---- client.c: the client side of a connection ---- */

#define REQ_MAX_REGIONS 16
#define REQ_MAX_TRIED   16

/* What a request holds only while it runs: lent by the worker when a connection has something
 * to parse, given back when it goes idle or closes. An idle keep-alive connection holds none. */
/* The longest request ID taken from a trusted peer; ours have 32 hex digits. */
#define REQUEST_ID_MAX 128

#define REQ_REPLAY_MAX (64 * 1024) /* the largest request body kept for a retry */

struct req_bufs {
    struct req_bufs *next; /* among the worker's spares */
    struct head head, resp;
    struct sbuf out_head; /* the head as forwarded, kept for retries */
    char host[256];
    char target[2048];                   /* request target as logged (truncated) */
    char request_id[REQUEST_ID_MAX + 1]; /* as forwarded (request-id-header); "": none */
    struct evbuffer *replay; /* the body as sent to the origin, while body_kept: for a retry */
};

struct request {
    struct req_bufs *bufs; /* NULL while idle */
    int major, minor;
    uint8_t method;
    bool keep_alive, chunked, websocket, head_method, idempotent;
    bool head_done, body_done, body_started;
    bool body_kept; /* all of the body sent so far is in bufs->replay (REQ_REPLAY_MAX at most) */
    bool expect_continue; /* Expect: 100-continue with a body: our 100 goes out as it is read */
    int head_fields; /* the request head's fields: a chunked body's trailer fields follow them */
    uint64_t body_bytes, bytes_in, bytes_out;
    struct ip_addr client_addr;
    struct geo_result geo;
    /* Routing: the regions that can serve, in order, and what was tried. */
    struct wsnap *ws;
    const struct gslb_service *svc;
    uint32_t regions[REQ_MAX_REGIONS];
    int n_regions, region_i;
    uint32_t tried[REQ_MAX_TRIED];
    int n_tried, tries;
    bool last_failure_timeout;
    uint16_t stale_retried; /* bit i: try i went again on a new connection, its pooled one stale */
    const struct gslb_origin *pinned; /* a sticky client's draining origin: tried first */
    const struct gslb_origin *origin;
    uint32_t origin_region;
    /* Response. */
    int status;
    bool interim, resp_head_sent, resp_done, resp_chunked, resp_close_delimited;
    int resp_fields; /* the same for the final response's head */
    struct timespec t_start, t_upstream;
    int64_t upstream_us;
};

struct client {
    /* Kept while a closed connection waits among the worker's spares, for the next accept
     * (client_close, client_accept); everything from <w> on is cleared then. */
    struct bufferevent *bev; /* a plain socket's is parked with the spare, a TLS one freed */
    struct lazy_timer timer; /* for <timer_kind> */
    struct evbuffer *stage;  /* response body bytes not yet handed to <bev> (client_flush) */

    struct worker *w;
    size_t head_pending; /* a response head waiting in w->scratch, ahead of <stage> */
    struct client *next, *prev;
    struct client *idle_next, *idle_prev; /* on w's idle list (idle_listed), oldest first */
    struct ip_addr peer;                  /* the socket peer, or the PROXY protocol source */
    char peer_text[IP_ADDR_STRLEN];
    struct ip_addr balancer; /* the socket peer, when a PROXY header named another: for the log */
    struct sock_reader rd;
    bool expect_proxy_header;
    uint32_t proxy_header_left; /* bytes of its header's TLVs still to come and be dropped */
    llhttp_t parser;
    const char *chunk_start, *chunk_end; /* the buffer llhttp is parsing: obs-fold detection */
    enum client_state state;
    enum client_timer timer_kind; /* what <timer> is for; T_NONE: nothing */
    struct upstream *up;
    bool close_after, parser_paused, read_blocked;
    bool linger; /* closing while the client may still send: a lingering close (linger.c) */
    uint8_t tunnel_ended; /* C_TUNNEL: the sides that ended their sending, TUNNEL_CLIENT... */
    bool sent_end; /* the client ended its sending (FIN, close_notify) behind requests to answer */
    bool idle_listed;
    bool routing; /* request_route() runs: answers made in it leave the next request to the loop */
    bool tls;     /* <bev> is a TLS session (bufferevent_openssl) */
    bool peer_trusted;           /* worked out under live configuration <trusted_generation> */
    uint64_t trusted_generation; /* 0: not yet */
    struct request req;
};

enum { TUNNEL_CLIENT = 1, TUNNEL_ORIGIN = 2 };

void client_accept(struct worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                   const struct proxy_listen *listen);
/* Shutdown: closes idle connections now and the others after their current response. */
void client_shutdown_all(struct worker *w);
void client_close(struct client *c);
/* Frees the connections a worker kept for reuse. */
void client_spares_free(struct worker *w);
void client_timer_arm(struct client *c, enum client_timer kind);
/* Sends an error response of the proxy's own, <message> its plain body (or, if a response has
 * started, cuts the connection), and closes. */
void client_fail(struct client *c, int status, const char *message);
/* The proxy's own answer to a request it could not, or need not, send on or get an answer to
 * (no service, region or origin; an origin's invalid or missing response; OPTIONS with
 * Max-Forwards: 0), before any of a final response went out. The connection stays open when the
 * client keeps it (HTTP/1.1) and none of its request is left unread (the origin connection is
 * dropped), as nginx keeps it after its own 502, 503 and 504: clients behind a CDN do not
 * reconnect for every request of an outage. Else client_fail(). True when the connection goes
 * on. */
bool client_answer(struct client *c, int status, const char *message);
/* At shutdown's deadline: a request still being forwarded is logged (as a 503, which a plain
 * client gets when no response had begun; one begun is cut), then the connection closed. */
void client_cut_off(struct client *c);
/* Parses what the client has sent, as far as the request's state allows. */
void client_process(struct client *c);
/* The origin has the request head: let request body bytes flow. */
void client_body_resume(struct client *c);
/* The response is complete: log it, then next request or close. */
void client_response_done(struct client *c, bool upstream_reusable);
/* Queues response bytes for the client; client_flush() hands them over, with backpressure on
 * the origin connection. */
void client_write(struct client *c, const void *data, size_t len);
void client_flush(struct client *c);
/* A response head of <len> bytes, built in the worker's scratch buffer, for the client: it waits
 * there (plain connections, nothing staged) to leave with what follows in one writev, else it is
 * staged. */
void client_write_head(struct client *c, size_t len);
/* Sends the waiting head and <len> body bytes at <body> (valid only for the call) at once, what
 * the socket does not take queued; <stage> must be empty. */
void client_send_head_and(struct client *c, const char *body, size_t len);
void client_tunnel_start(struct client *c);
/* The client went away (or stopped reading): log the request in flight as such and close. */
void client_gone(struct client *c);

/* ---- upstream.c: the origin side of one request ---- */

struct upstream {
    struct worker *w;
    struct client *c; /* NULL while pooled */
    struct bufferevent *bev;
    struct wsnap *ws;
    uint32_t origin; /* index in ws->targets */
    llhttp_t parser;
    const char *chunk_start, *chunk_end; /* the buffer llhttp is parsing: obs-fold detection */
    size_t body_run_start, body_run_len; /* identity body bytes in the buffer being parsed */
    struct upstream *next_idle;
    struct lazy_timer idle_timer; /* its event made at the first pooling */
    struct sock_reader rd;
    bool connected, head_sent, got_response_byte, reused;
    bool spoilt; /* the response announced a body it may not have (a 204's): not pooled */
    bool tls;    /* <bev> is a TLS session */
    /* A body moving through a pipe (bodypipe.c); the events are made once, kept with it. */
    bool piping, pipe_failed; /* pipe_failed: no pipe could be made for this response */
    int pipe_fd[2];
    size_t pipe_held;                       /* bytes in the pipe */
    uint64_t pipe_left;                     /* body bytes the origin has yet to send */
    struct event *pipe_in_ev, *pipe_out_ev; /* origin readable, client writable */
};

/* Starts (or, after a failure, retries) the origin side of the client's request. */
void upstream_start(struct client *c);
/* Detaches the client's upstream: back to the pool if <reusable>, else closed. */
void upstream_release(struct client *c, bool reusable);
/* Closes every pooled connection of <ws>. */
void upstream_pool_drain(struct wsnap *ws);
/* Moves the idle connections and TLS session of each origin of <old> that <ws> still has, at the
 * same address reached the same way, to <ws>: a topology change (a weight, an operator's
 * override, an identical import) closed every pooled origin connection until 2026-12-07. */
void upstream_pools_adopt(struct wsnap *ws, struct wsnap *old);
/* Frees the TLS sessions the targets of <ws> keep; for wsnap_free(). */
void upstream_tls_sessions_free(struct wsnap *ws);
/* OpenSSL's new-session callback for the origin context (server.c sets it): keeps <sess> for
 * the next connection to the same origin. Returns 1 when it took OpenSSL's reference, else 0. */
int upstream_tls_session_new_cb(SSL *ssl, SSL_SESSION *sess);
/* Passive checks: the outcome of a request to the client's current origin. */
void upstream_report(struct client *c, bool failure);
/* Counts a failed attempt (no connection, a timeout, a reset, an invalid response), in all and
 * for the client's current origin. */
void upstream_error_count(struct client *c);
/* The origin failed the request once it was under way: counted and reported against it, and the
 * client answered <status> with <message> (or cut, if its response had started). */
void upstream_fail(struct client *c, int status, const char *message);
/* The whole request is with the origin: start the response clocks. */
void upstream_request_sent(struct client *c);
/* Moves request body bytes to the origin, with backpressure on the client. */
void upstream_write_body(struct client *c, const void *data, size_t len);
/* Ends a chunked request body: the last chunk and the request's trailer fields go to the origin.
 * False, with nothing sent, when a trailer field is not valid. */
bool upstream_end_chunked_body(struct client *c);

#endif

/* proxy/proxy.h - the HTTP/1.1 edge proxy: accepts clients, asks the decision engine for a region
 * and an origin, and relays requests and responses, streaming, with the limits and strictness of
 * a production proxy.
 *
 * The proxy gets its configuration as the plain struct below before the first request (main.c
 * fills it from the config file and the flags). It runs one libevent event loop per worker
 * thread, each with its own SO_REUSEPORT listening sockets, so workers share nothing on the
 * request path but the published topology snapshot and the geo databases. llhttp, libevent and
 * the origin connection pools stay inside this module. */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

struct geo;
struct gslb_watch;
struct gslb_prober;

#define PROXY_MAX_LISTEN  16
#define PROXY_MAX_TRUSTED 64

enum proxy_log_format { PROXY_LOG_JSON, PROXY_LOG_COMBINED };

struct proxy_listen {
    char address[128];   /* "ADDR:PORT", "[V6]:PORT" or ":PORT" */
    bool proxy_protocol; /* expect a PROXY protocol v1/v2 header from (trusted) peers */
    bool tls;            /* HTTPS: terminate TLS with the tls-cert/tls-key pairs */
};

#define PROXY_MAX_CERTS 16

struct proxy_config {
    struct proxy_listen listen[PROXY_MAX_LISTEN];
    size_t n_listen;
    /* PEM certificate chains and their keys, paired in order; TLS listeners pick one by the
     * client's SNI name (the first when none matches). */
    char tls_cert[PROXY_MAX_CERTS][256], tls_key[PROXY_MAX_CERTS][256];
    size_t n_tls_cert, n_tls_key;
    char origin_ca_file[256];      /* CAs for origins with "tls": PEM file; "": the system's */
    char tls_ticket_key_file[256]; /* ticket keys shared by machines; "": our own, rotated */
    char metrics_listen[128];      /* "" disables the metrics listener */
    char access_log[512];          /* path, "-" for stderr, "" for none */
    enum proxy_log_format access_log_format;
    struct ip_cidr
        trusted[PROXY_MAX_TRUSTED]; /* peers whose X-Forwarded-For / PROXY header count */
    size_t n_trusted;
    /* The header a trusted peer names the client in (X-Real-IP, CF-Connecting-IP...); "":
     * X-Forwarded-For. */
    char client_ip_header[64];
    /* The header each forwarded request carries its ID in (X-Request-ID...); "": none. A trusted
     * peer's ID is kept, any other is replaced by one of ours. */
    char request_id_header[64];
    int workers;           /* 0: one per core */
    bool forwarded_header; /* also send an RFC 7239 Forwarded header */
    bool splice_bodies;    /* plain Content-Length bodies go origin -> client by splice() */
    bool defer_accept;     /* listeners hand a connection over once its first bytes came */
    /* Limits and timeouts (milliseconds); defaults from proxy_config_defaults(). */
    int client_header_timeout_ms;
    int keepalive_timeout_ms;
    int client_body_timeout_ms;
    int connect_timeout_ms;
    int response_header_timeout_ms;
    int origin_read_timeout_ms;
    int origin_idle_timeout_ms; /* idle pooled origin connections are closed after this */
    int tunnel_timeout_ms;      /* a WebSocket tunnel with no byte either way is closed */
    int shutdown_timeout_ms;    /* SIGTERM: how long in-flight requests may take to finish */
    int lingering_time_ms;      /* lingering close (proxy/linger.c): at most this in all, */
    int lingering_timeout_ms;   /* and this long without a byte from the client */
    int tls_ticket_rotate_ms;   /* a new session ticket key this often */
    size_t max_header_bytes;    /* request head, request line included: 431 beyond */
    int max_headers;            /* header lines: 431 beyond */
    uint64_t max_body_bytes;    /* 0: unlimited; 413 beyond */
    int max_connections;        /* client connections per process: 503 beyond */
    int max_idle_per_origin;    /* pooled keep-alive origin connections, per worker */
    int client_sndbuf;          /* SO_SNDBUF of client sockets; 0: the kernel's autotuning */
    int max_tries;              /* attempts per request, over origins and regions */
    /* Passive checks: after <passive_failures> failures in a row (connect errors, resets,
     * timeouts, 5xx answers) an origin is ejected for <passive_ejection_ms>, doubled on each
     * repeat up to 5 minutes; never more than <passive_max_ejected_percent> of a pool at once.
     * 0 failures disables them. The workers count together (proxy/passive.c). */
    int passive_failures;
    int passive_ejection_ms;
    int passive_max_ejected_percent;
    /* Draining an origin or region of a sticky service keeps sending it the clients it served
     * within this window (each request renews it); 0: draining moves them at once. */
    int sticky_drain_window_ms;
    int busy_poll_us; /* 0: a worker with nothing to do sleeps in epoll_wait at once */
};

/* Fills <cfg> with the documented defaults: no listeners, 10 s header read, 60 s keep-alive,
 * 3 s connect, 30 s response headers, 60 s origin idle read, 64 KiB / 100 headers, 10,000
 * connections, 3 tries. */
void proxy_config_defaults(struct proxy_config *cfg);

/* Parses one setting by its config-file name (the same as the long flag without "--"), e.g.
 * ("listen", "127.0.0.1:8080") or ("connect-timeout", "3s"). Durations take ms, s or m suffixes,
 * sizes k, m or g. Repeatable keys (listen, trusted-proxies) append. Returns 0, -ENOENT for a key
 * the proxy does not own, or -EINVAL with the key named in <err>. */
int proxy_config_set(struct proxy_config *cfg, const char *key, const char *value, char *err,
                     size_t errlen);

struct proxy; /* opaque; owned by the caller of proxy_create() */

/* Binds every listener (failing early if one cannot be bound) and starts the worker threads.
 * <geo>, <watch> and <prober> (NULL: no health checks) are borrowed and must outlive the proxy. */
struct proxy *proxy_create(const struct proxy_config *cfg, struct geo *geo,
                           struct gslb_watch *watch, struct gslb_prober *prober, char *err,
                           size_t errlen);

/* Graceful stop: listeners close at once, idle connections are closed, requests in flight may
 * finish until the shutdown timeout; then the workers exit. Blocks until they have. */
void proxy_shutdown(struct proxy *proxy);
void proxy_destroy(struct proxy *proxy); /* accepts NULL; shuts down first if needed */

/* Applies <cfg> to the running proxy (SIGHUP): timeouts, limits, trusted proxies, forwarded
 * headers, tries, passive checks and the sticky drain window take effect for what the workers do
 * next (requests in flight keep the timeouts they were given). The tls-cert/tls-key files and
 * origin-ca-file are read again, even at unchanged paths: new connections (to clients and to
 * origins) use what they hold, open ones keep theirs. Listeners (TLS on or off included),
 * workers, the metrics listener and the access log keep their running values: <restart_out> (of
 * <restart_cap> bytes) gets the names of those that <cfg> would change (they need a restart),
 * comma-separated, or "". (Only the first was named until 2026-12-07.)
 * Returns 0, or -EINVAL when a certificate, key or CA file did not load: then every TLS context
 * stays as it was, the other settings still apply, and <err> names the setting and the path.
 * Call it from one thread at a time. */
int proxy_reconfigure(struct proxy *proxy, const struct proxy_config *cfg, char *restart_out,
                      size_t restart_cap, char *err, size_t errlen);

/* Reopens the access log (after logrotate moved it). Safe from any thread. */
void proxy_reopen_logs(struct proxy *proxy);

/* The port the <index>th listener is bound to (useful with port 0), or -1. */
int proxy_listen_port(const struct proxy *proxy, size_t index);
int proxy_metrics_port(const struct proxy *proxy);

/* Requests answered since the proxy started, for one region, summed over services and workers
 * ("none" counts requests no region could take). by_class[0] counts requests aborted before an
 * answer, by_class[1..5] answers 1xx..5xx. */
/* The region name under which the counters keep requests no region could take (503). */
#define PROXY_REGION_NONE "none"

struct proxy_region_stats {
    char region[64];
    uint64_t requests;
    uint64_t by_class[6];
};

/* A new array of per-region counters, by region name (the caller frees it). Safe from any
 * thread; counters are read without stopping the workers, so each is exact but they are not a
 * single instant. */
struct proxy_region_stats *proxy_region_stats(struct proxy *proxy, size_t *n_out);

#endif

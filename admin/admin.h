/* admin/admin.h - the admin console and its JSON API (/api/v1) on a listener of their own.
 *
 * libmicrohttpd serves it from its own threads (an epoll thread pool), far from the proxy's
 * event loops: a slow import or a password hash never delays a proxied request. Every change
 * goes through db/, so through the same validation, transaction and audit entry as gslbctl; the
 * proxy picks changes up through the snapshot watch like any other. Handlers run on
 * libmicrohttpd's threads, each with a SQLite connection of its own from a small pool.
 *
 * Security: users and API tokens live in the store (db/auth.c); sessions are HttpOnly,
 * SameSite=Strict cookies (Secure under TLS) with a CSRF token required on every state-changing
 * request; failed logins are throttled; every answer carries a strict CSP and friends. */
#ifndef ADMIN_ADMIN_H
#define ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct geo;
struct gslb_watch;
struct gslb_prober;
struct proxy;

struct admin_config {
    char listen[128];   /* "ADDR:PORT", "[V6]:PORT"; "" disables the console */
    char tls_cert[512]; /* PEM certificate (chain) file; "" for plain HTTP */
    char tls_key[512];  /* PEM private key file, with tls_cert */
    int session_ttl_ms; /* a login lasts this long */
    const char *db_path;
};

/* Defaults: 127.0.0.1:9090, no TLS, 8 h sessions. */
void admin_config_defaults(struct admin_config *cfg);

/* Parses one setting by its config-file name: admin-listen, admin-tls-cert, admin-tls-key,
 * admin-session-ttl. Returns 0, -ENOENT for a key the console does not own, or -EINVAL with the
 * key named in <err>. */
int admin_config_set(struct admin_config *cfg, const char *key, const char *value, char *err,
                     size_t errlen);

/* Whether <listen> binds only to a loopback address. */
bool admin_listen_is_loopback(const char *listen);

struct admin; /* opaque; owned by the caller of admin_start() */

/* Reads the TLS files, opens the store, binds the listener and starts serving. <geo>, <watch>,
 * <prober> (may be NULL) and <proxy> (may be NULL: no request counters) are borrowed and must
 * outlive the console. Returns NULL with the reason in <err>, which names the setting
 * (admin-tls-cert, admin-tls-key) of a TLS file that cannot be used. */
struct admin *admin_start(const struct admin_config *cfg, struct geo *geo, struct gslb_watch *watch,
                          struct gslb_prober *prober, struct proxy *proxy, char *err,
                          size_t errlen);
/* Stops accepting, waits for the handlers running and frees everything. Accepts NULL. */
void admin_stop(struct admin *admin);
/* The port the console listens on (useful with port 0). */
int admin_port(const struct admin *admin);

#endif

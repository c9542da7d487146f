/* tests/proxy/harness.h - shared by the proxy and health tests: processes and a raw client. */
#ifndef TESTS_PROXY_HARNESS_H
#define TESTS_PROXY_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Set by harness_init(): the build folder, the City database, a temporary folder and a store
 * path inside it. */
extern char build[256], city[512], dir[64], db_path[128];

void harness_init(const char *prefix);
/* Stops the processes started here that are still running (a failed test's), and removes the
 * temporary folder. */
void harness_fini(void);
/* Runs only the tests GSLB_TEST_FILTER names, if set (a name, or a pattern with "*"): for work
 * on a few of them. Called before the group runs. */
void harness_test_filter(void);

struct proc {
    pid_t pid;
    int port, metrics_port;
    char log[160];
};

int64_t now_ms(void);
void sleep_ms(int ms);

/* Starts tests/proxy/origin NAME MODE (NULL: normal) on <port> (0: any) and waits for it. */
struct proc origin_start(const char *name, const char *mode, int port);
/* Stops <p> with <sig> (SIGKILL after 10 s); returns its wait status, -1 if it was killed. */
int proc_stop(struct proc *p, int sig);
/* Starts gslbd on <db_path> with the tests' common flags plus <extra> (NULL-terminated; later
 * flags win) and waits until it serves. */
struct proc gslbd_start(const char *const *extra);
/* When not 0, the open-file limit (soft and hard) gslbd_start() runs gslbd with. */
extern int gslbd_fd_limit;
/* SIGTERM, then checks gslbd exited 0 with no sanitizer report in its log. */
void gslbd_stop(struct proc *p);
/* How many lines of <p>'s log hold <text>. */
int proc_log_count(const struct proc *p, const char *text);
/* Sends SIGHUP to gslbd <p> and waits until it has logged that it applied its settings. */
void gslbd_sighup(const struct proc *p);
int listener_port(const struct proc *p, int index);
/* The admin console's port, as gslbd logged it (fails the test when it did not). */
int gslbd_admin_port(const struct proc *p);
/* Makes a self-signed certificate for <host> (CN and subjectAltName) with Debian's openssl
 * command: <name>.pem and <name>.key in the test's folder, their paths in <cert_out>, <key_out>. */
void make_certificate(const char *name, const char *host, char cert_out[160], char key_out[160]);
/* Makes a certificate for <host> issued by the CA <ca_cert>/<ca_key> (one make_certificate()
 * made), each with its own serial: <name>.key, and <name>.pem holding the certificate followed by
 * the CA's, as a chain file does. Their paths go in <cert_out>, <key_out>. */
void make_issued_certificate(const char *name, const char *host, const char *ca_cert,
                             const char *ca_key, char cert_out[160], char key_out[160]);
/* Writes to <out> the DER OCSP response the CA <ca_cert>/<ca_key> signs for the certificate at the
 * head of <cert> (status good, valid for a day), with `openssl ocsp` answering from an index file
 * of its own, offline. */
void make_ocsp_response(const char *cert, const char *ca_cert, const char *ca_key, bool revoked,
                        const char *out);
/* Starts Debian's `openssl s_server -www` with <cert> and <key> on a free 127.0.0.1 port: an
 * HTTPS origin that answers GET / with a status page mentioning s_server. */
struct proc tls_server_start(const char *cert, const char *key);

struct conn {
    int fd;
    char buf[1 << 16];
    size_t len;
    bool eof; /* the peer closed: a read returned 0 */
};

struct resp {
    int status;
    char head[16384];
    char trailers[1024]; /* a chunked body's trailer field lines, as they came */
    char *body;
    size_t body_len;
};

struct conn *conn_open(int port);
struct conn *conn_open_from(int port, const char *source);
/* With its receive buffer (and so the window it offers) set to <rcvbuf> bytes before connecting. */
struct conn *conn_open_rcvbuf(int port, int rcvbuf);
void conn_close(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);
void conn_send(struct conn *c, const char *text);
bool conn_fill(struct conn *c);
void conn_consume(struct conn *c, size_t n);
uint64_t conn_read_bytes(struct conn *c, uint64_t n, struct resp *out);
/* Reads one response; false if the connection ended before it was complete, or (a body without
 * a length, which only the end of the connection completes) the receive timeout came first. */
bool conn_response(struct conn *c, struct resp *r, bool head_request);
const char *resp_header(const struct resp *r, const char *name);
void resp_free(struct resp *r);
/* True when the peer closes the connection (within the receive timeout). */
bool conn_closed(struct conn *c);
/* One request on a fresh connection; returns the status (-1: no complete response). */
int request(int port, const char *raw, struct resp *r);
/* A GET with a 3,000-byte header on a fresh connection (431 once max-header-size is 2k); returns
 * the status. */
int request_with_big_header(int port);

/* Imports the topology document <json> into the store at <path> (fails the test if refused). */
void topology_import(const char *path, const char *json);

/* Health as the store at <db_path> records it, for "region SERVICE/REGION" <key>s: 1 up, 0 down,
 * -1 no row; wait_region() polls until it reads <want> and returns when (-1 after <limit_ms>). */
int region_up(const char *key);
int64_t wait_region(const char *key, int want, int limit_ms);
int region_transitions(const char *key); /* in the recorded history */

/* Runs "<build>/gslbctl --db <db_path> ARGS" and keeps its output (stdout and stderr) in <out>.
 * Returns its exit status. */
int gslbctl(const char *args, char *out, size_t len);

#endif

/* tests/proxy/harness.c - what the proxy and health tests share: starting and stopping origin
 * processes and gslbd (by PID), and a raw HTTP client on loopback that sends bytes exactly as
 * given and parses responses itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "tests/proxy/harness.h"

char build[256], city[512], dir[64], db_path[128];

void harness_init(const char *prefix)
{
    const char *b = getenv("GSLB_BUILD"), *g = getenv("GSLB_GEOIP_DIR");
    snprintf(build, sizeof(build), "%s", b && *b ? b : "build");
    snprintf(city, sizeof(city), "%s/GeoLite2-City.mmdb", g && *g ? g : "data/geoip");
    snprintf(dir, sizeof(dir), "/tmp/%s-XXXXXX", prefix);
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(db_path, sizeof(db_path), "%s/gslb.db", dir);
    signal(SIGPIPE, SIG_IGN);
}

void harness_test_filter(void)
{
    const char *filter = getenv("GSLB_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
}

/* Every process started here, so that harness_fini() can stop those a failed test left running
 * (an assertion leaves the test before its own stop). */
static pid_t children[256];
static int n_children;

static pid_t child_fork(void)
{
    pid_t pid = fork();
    if (pid > 0 && n_children < (int)(sizeof(children) / sizeof(children[0])))
        children[n_children++] = pid;
    return pid;
}

void harness_fini(void)
{
    /* Only a child not yet reaped is signalled: a PID reaped already may be someone else's. */
    for (int i = 0; i < n_children; i++) {
        if (waitpid(children[i], NULL, WNOHANG) == 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    }
    n_children = 0;
    if (getenv("GSLB_TEST_KEEP")) { /* the logs of a failure, for a look afterwards */
        fprintf(stderr, "# kept %s\n", dir);
        return;
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)!system(cmd);
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- processes ---- */

struct proc origin_start(const char *name, const char *mode, int port)
{
    struct proc p = {0};
    char path[300];
    int fds[2];
    snprintf(path, sizeof(path), "%s/tests/proxy/origin", build);
    assert_int_equal(pipe(fds), 0);
    p.pid = child_fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(fds[1], STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(fds[0]);
        char port_text[16];
        snprintf(port_text, sizeof(port_text), "%d", port);
        execl(path, path, name, mode ? mode : "normal", port_text, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = "";
    ssize_t n = read(fds[0], line, sizeof(line) - 1);
    close(fds[0]);
    assert_true(n > 0);
    p.port = atoi(line);
    assert_true(p.port > 0);
    return p;
}

/* Stops <p> and returns its wait status (-1 if it had to be killed). */
int proc_stop(struct proc *p, int sig)
{
    int status = -1;
    if (p->pid <= 0)
        return status;
    kill(p->pid, sig);
    for (int i = 0; i < 200; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return status;
        }
        sleep_ms(50);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    return -1;
}

/* Stops a gslbd and checks it exited cleanly: status 0, no sanitizer report in its log. */
void gslbd_stop(struct proc *p)
{
    int status = proc_stop(p, SIGTERM);
    char line[1024];
    FILE *f = fopen(p->log, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strstr(line, "Sanitizer") || strstr(line, "runtime error"))
            fail_msg("gslbd (%s): %s", p->log, line);
    }
    if (f)
        fclose(f);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("gslbd did not exit cleanly (status %d); see %s", status, p->log);
}

int proc_log_count(const struct proc *p, const char *text)
{
    char line[1024];
    int n = 0;
    FILE *f = fopen(p->log, "r");
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return n;
}

void gslbd_sighup(const struct proc *p)
{
    int before = proc_log_count(p, "gslbd: SIGHUP: logs reopened");
    assert_int_equal(kill(p->pid, SIGHUP), 0);
    for (int64_t end = now_ms() + 5000; now_ms() < end; sleep_ms(25)) {
        if (proc_log_count(p, "gslbd: SIGHUP: logs reopened") > before)
            return;
    }
    fail_msg("gslbd did not log its SIGHUP; see %s", p->log);
}

/* Starts gslbd with the common flags plus <extra> (NULL-terminated), waits until it serves. */
int gslbd_fd_limit;

struct proc gslbd_start(const char *const *extra)
{
    static int serial;
    struct proc p = {0};
    char bin[300];
    const char *argv[64] = {bin,
                            "--db",
                            db_path,
                            "--geoip",
                            city,
                            "--listen",
                            "127.0.0.1:0",
                            "--metrics-listen",
                            "127.0.0.1:0",
                            "--workers",
                            "1",
                            "--trusted-proxies",
                            "127.0.0.1/32",
                            "--log-level",
                            "info",
                            "--health-checks",
                            "none",
                            "--admin-listen",
                            ""}; /* tests of the console turn it on */
    int argc = 19;
    for (; extra && *extra && argc < 62; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;
    snprintf(bin, sizeof(bin), "%s/gslbd", build);
    if (getenv("GSLB_TEST_VERBOSE")) {
        for (int i = 0; i < argc; i++)
            fprintf(stderr, "%s ", argv[i]);
        fprintf(stderr, "\n");
    }
    snprintf(p.log, sizeof(p.log), "%s/gslbd-%d.log", dir, serial++);
    p.pid = child_fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        int fd = open(p.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO); /* never hold the test runner's pipe open */
        if (gslbd_fd_limit) {
            struct rlimit limit = {(rlim_t)gslbd_fd_limit, (rlim_t)gslbd_fd_limit};
            setrlimit(RLIMIT_NOFILE, &limit);
        }
        execv(bin, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    for (int i = 0; i < 400 && p.port == 0; i++) { /* 10 s: a loaded machine, ASan */
        sleep_ms(25);
        FILE *f = fopen(p.log, "r");
        char line[512];
        while (f && fgets(line, sizeof(line), f)) {
            const char *s = strstr(line, "(port ");
            const char *m = s ? strstr(s + 1, "(port ") : NULL;
            if (s && m) {
                p.port = atoi(s + 6);
                p.metrics_port = atoi(m + 6);
            }
        }
        if (f)
            fclose(f);
    }
    if (p.port == 0)
        fail_msg("gslbd did not start; see %s", p.log);
    return p;
}

/* The port of listener <index> (> 0) of <p>, from the line gslbd logs for it. */
/* The port of the line "<prefix>... (port N)" in <p>'s log, the last one logged. */
static int logged_port(const struct proc *p, const char *prefix)
{
    char line[512];
    int port = 0;
    FILE *f = fopen(p->log, "r");
    while (f && fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, prefix);
        if (at && (at = strstr(at, "(port ")))
            port = atoi(at + 6);
    }
    if (f)
        fclose(f);
    assert_true(port > 0);
    return port;
}

int listener_port(const struct proc *p, int index)
{
    char want[32];
    snprintf(want, sizeof(want), "listener %d on ", index);
    return logged_port(p, want);
}

int gslbd_admin_port(const struct proc *p)
{
    return logged_port(p, "admin console on ");
}

void make_certificate(const char *name, const char *host, char cert_out[160], char key_out[160])
{
    char cmd[1024];
    snprintf(cert_out, 160, "%s/%s.pem", dir, name);
    snprintf(key_out, 160, "%s/%s.key", dir, name);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -subj /CN=%s -addext subjectAltName=DNS:%s -days 2 "
             ">/dev/null 2>&1",
             key_out, cert_out, host, host);
    assert_int_equal(system(cmd), 0);
}

/* Runs the shell command <cmd>, with its output in the test folder's openssl.log, which a
 * failure shows. */
static void openssl_run(const char *cmd)
{
    char full[2048], log[128], line[256];
    snprintf(log, sizeof(log), "%s/openssl.log", dir);
    snprintf(full, sizeof(full), "(%s) >%s 2>&1", cmd, log);
    if (system(full) != 0) {
        FILE *f = fopen(log, "r");
        while (f && fgets(line, sizeof(line), f))
            fprintf(stderr, "# %s", line);
        if (f)
            fclose(f);
        fail_msg("failed: %s", cmd);
    }
}

void make_issued_certificate(const char *name, const char *host, const char *ca_cert,
                             const char *ca_key, char cert_out[160], char key_out[160])
{
    static unsigned serial = 0x1000; /* an OCSP answer names a certificate by issuer and serial */
    char cmd[2048];
    snprintf(cert_out, 160, "%s/%s.pem", dir, name);
    snprintf(key_out, 160, "%s/%s.key", dir, name);
    snprintf(cmd, sizeof(cmd),
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s "
             "-out %s.csr -subj /CN=%s -addext subjectAltName=DNS:%s && "
             "openssl x509 -req -in %s.csr -CA %s -CAkey %s -set_serial %u -days 2 "
             "-copy_extensions copy -out %s.leaf && cat %s.leaf %s >%s",
             key_out, cert_out, host, host, cert_out, ca_cert, ca_key, ++serial, cert_out, cert_out,
             ca_cert, cert_out);
    openssl_run(cmd);
}

void make_ocsp_response(const char *cert, const char *ca_cert, const char *ca_key, bool revoked,
                        const char *out)
{
    char cmd[2048];
    /* index.txt as `openssl ca` keeps it: V(alid) or R(evoked), expiry, revocation time, serial,
     * file, subject */
    snprintf(cmd, sizeof(cmd),
             "printf '%s\\t301231235959Z\\t%s\\t%%s\\tunknown\\t/CN=x\\n' "
             "\"$(openssl x509 -in %s -noout -serial | cut -d= -f2)\" >%s.index && "
             "openssl ocsp -index %s.index -rsigner %s -rkey %s -CA %s -issuer %s -cert %s "
             "-no_nonce -respout %s -ndays 1",
             revoked ? "R" : "V", revoked ? "240101000000Z" : "", cert, out, out, ca_cert, ca_key,
             ca_cert, ca_cert, cert, out);
    openssl_run(cmd);
}

/* ---- a raw HTTP client ---- */

/* <source>: NULL for any; <rcvbuf>: 0 for the kernel's. */
static struct conn *conn_make(int port, const char *source, int rcvbuf)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5, 0};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (source) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, source, &src.sin_addr);
        assert_int_equal(bind(c->fd, (struct sockaddr *)&src, sizeof(src)), 0);
    }
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return c;
}

struct conn *conn_open_from(int port, const char *source)
{
    return conn_make(port, source, 0);
}

struct conn *conn_open_rcvbuf(int port, int rcvbuf)
{
    return conn_make(port, NULL, rcvbuf);
}

struct conn *conn_open(int port)
{
    return conn_make(port, NULL, 0);
}

void conn_close(struct conn *c)
{
    close(c->fd);
    free(c);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            fail_msg("send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

void conn_send(struct conn *c, const char *text)
{
    conn_write(c, text, strlen(text));
}

bool conn_fill(struct conn *c)
{
    if (c->len == sizeof(c->buf))
        return true;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    c->eof = n == 0;
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

void conn_consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads up to <n> body bytes into <out> (NULL: discard); returns how many arrived. */
uint64_t conn_read_bytes(struct conn *c, uint64_t n, struct resp *out)
{
    uint64_t got = 0;
    while (got < n) {
        if (c->len == 0 && !conn_fill(c))
            break;
        size_t take = (uint64_t)c->len < n - got ? c->len : (size_t)(n - got);
        if (out) {
            out->body = realloc(out->body, out->body_len + take + 1);
            memcpy(out->body + out->body_len, c->buf, take);
            out->body_len += take;
            out->body[out->body_len] = '\0';
        }
        conn_consume(c, take);
        got += take;
    }
    return got;
}

const char *resp_header(const struct resp *r, const char *name)
{
    static char value[1024];
    size_t len = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, len) == 0 && line[2 + len] == ':') {
            const char *v = line + 3 + len + strspn(line + 3 + len, " ");
            snprintf(value, sizeof(value), "%.*s", (int)strcspn(v, "\r"), v);
            return value;
        }
    }
    return NULL;
}

/* Reads the trailer section after a last chunk into r->trailers, up to its empty line. */
static bool conn_trailers(struct conn *c, struct resp *r)
{
    size_t len = 0;
    for (;;) {
        char *crlf;
        while ((crlf = memmem(c->buf, c->len, "\r\n", 2)) == NULL) {
            if (!conn_fill(c))
                return false;
        }
        size_t line = (size_t)(crlf - c->buf) + 2;
        if (line == 2) {
            conn_consume(c, 2);
            return true;
        }
        if (len + line < sizeof(r->trailers)) {
            memcpy(r->trailers + len, c->buf, line);
            len += line;
            r->trailers[len] = '\0';
        }
        conn_consume(c, line);
    }
}

/* Reads one response; returns false if the connection ended before it was complete. */
bool conn_response(struct conn *c, struct resp *r, bool head_request)
{
    memset(r, 0, sizeof(*r));
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (!conn_fill(c))
            return false;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    if (head_len >= sizeof(r->head))
        return false;
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    conn_consume(c, head_len);
    r->status = atoi(r->head + 9);
    r->body = calloc(1, 1);
    const char *te = resp_header(r, "transfer-encoding");
    const char *cl = resp_header(r, "content-length");
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
        return true;
    if (te && strcasecmp(te, "chunked") == 0) {
        for (;;) {
            char *crlf;
            while ((crlf = memmem(c->buf, c->len, "\r\n", 2)) == NULL) {
                if (!conn_fill(c))
                    return false;
            }
            uint64_t size = strtoull(c->buf, NULL, 16);
            conn_consume(c, (size_t)(crlf - c->buf) + 2);
            if (size == 0)
                return conn_trailers(c, r);
            if (conn_read_bytes(c, size + 2, r) != size + 2)
                return false;
            r->body_len -= 2;
            r->body[r->body_len] = '\0';
        }
    }
    if (cl) {
        uint64_t n = strtoull(cl, NULL, 10);
        return conn_read_bytes(c, n, r) == n;
    }
    conn_read_bytes(c, UINT64_MAX, r); /* close-delimited: complete at the end, not a timeout */
    return c->eof;
}

void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* True when the peer closes the connection (within the receive timeout). */
bool conn_closed(struct conn *c)
{
    c->len = 0;
    char b[256];
    for (;;) {
        ssize_t n = recv(c->fd, b, sizeof(b), 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

/* One request on a fresh connection; returns the status and fills <r>. */
int request(int port, const char *raw, struct resp *r)
{
    struct conn *c = conn_open(port);
    conn_send(c, raw);
    bool ok = conn_response(c, r, strncmp(raw, "HEAD", 4) == 0);
    conn_close(c);
    return ok ? r->status : -1;
}

int request_with_big_header(int port)
{
    char raw[4096], big[3001];
    struct resp r;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n", big);
    int status = request(port, raw, &r);
    resp_free(&r);
    return status;
}

/* ---- the store: topology, health as recorded, and gslbctl ---- */

void topology_import(const char *path, const char *json)
{
    char err[512];
    struct db *db = db_open(path, err, sizeof(err));
    if (db == NULL)
        fail_msg("db_open %s: %s", path, err);
    if (db_import_json(db, json, strlen(json), "test", err, sizeof(err)) != 0)
        fail_msg("import: %s", err);
    db_close(db);
}

int region_up(const char *key)
{
    char err[256], object[128];
    struct db *db = db_open(db_path, err, sizeof(err));
    struct db_health_row *rows;
    size_t n;
    int up = -1;
    snprintf(object, sizeof(object), "region %s", key);
    if (db && db_health_state(db, &rows, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(rows[i].object, object) == 0)
                up = rows[i].up;
        }
        db_health_free(rows, n);
    }
    db_close(db);
    return up;
}

int64_t wait_region(const char *key, int want, int limit_ms)
{
    int64_t start = now_ms();
    while (now_ms() - start < limit_ms) {
        if (region_up(key) == want)
            return now_ms();
        sleep_ms(10);
    }
    return -1;
}

int region_transitions(const char *key)
{
    char err[256], object[128];
    struct db *db = db_open(db_path, err, sizeof(err));
    struct db_health_row *rows;
    size_t n;
    int count = 0;
    snprintf(object, sizeof(object), "region %s", key);
    if (db && db_health_history(db, 1000, &rows, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            count += strcmp(rows[i].object, object) == 0;
        db_health_free(rows, n);
    }
    db_close(db);
    return count;
}

int gslbctl(const char *args, char *out, size_t len)
{
    char cmd[8192], line[512];
    snprintf(cmd, sizeof(cmd), "%s/gslbctl --db %s %s 2>&1", build, db_path, args);
    FILE *f = popen(cmd, "r");
    out[0] = '\0';
    while (f && fgets(line, sizeof(line), f))
        strncat(out, line, len - strlen(out) - 1);
    int status = f ? pclose(f) : -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct proc tls_server_start(const char *cert, const char *key)
{
    struct proc p = {0};
    char accept[32];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0); /* a free port */
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    p.port = ntohs(sa.sin_port);
    snprintf(accept, sizeof(accept), "127.0.0.1:%d", p.port);
    p.pid = child_fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execlp("openssl", "openssl", "s_server", "-accept", accept, "-cert", cert, "-key", key,
               "-www", "-quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) { /* until it listens */
        struct sockaddr_in to = sa;
        int probe = socket(AF_INET, SOCK_STREAM, 0);
        bool up = connect(probe, (struct sockaddr *)&to, sizeof(to)) == 0;
        close(probe);
        if (up)
            break;
        sleep_ms(20);
    }
    return p;
}

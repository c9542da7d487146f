/* proxy/accesslog.c - the access log: workers queue finished lines, a thread of its own writes.
 *
 * A worker only appends to a memory buffer under a mutex held for a memcpy; the disk is touched
 * by the writer thread, so a slow or full disk delays the log, never a request. If the backlog
 * passes 16 MiB (the disk has stopped), new lines are dropped and counted rather than grown
 * without bound. SIGHUP reopens the file for logrotate.
 *
 * Lines are JSON (the default) or the combined format, put together with memcpy into a buffer
 * each worker keeps, the time's text made once per second and thread: formatted with stdio (a
 * memstream, putc per character, %.3f), a line cost a keep-alive request a fifth of its CPU
 * time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "proxy/proxy_int.h"

#define BACKLOG_MAX (16 * 1024 * 1024)
#define FLUSH_BYTES (64 * 1024)
#define FLUSH_MS    200

struct accesslog {
    char *path;
    enum proxy_log_format format;
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char *pending;
    size_t len, cap;
    unsigned long long dropped;
    bool reopen, stopping;
};

static int log_open_fd(const char *path)
{
    if (strcmp(path, "-") == 0)
        return dup(STDERR_FILENO);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* a failing disk loses log lines, not requests */
        buf += n;
        len -= (size_t)n;
    }
}

static void *writer_main(void *arg)
{
    struct accesslog *log = arg;
    char *batch = NULL;
    size_t batch_cap = 0;
    pthread_mutex_lock(&log->lock);
    for (;;) {
        if (log->len == 0 && !log->stopping && !log->reopen) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_nsec += FLUSH_MS * 1000000L;
            if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&log->wake, &log->lock, &deadline);
        }
        /* Swap buffers so workers append to an empty one while we write. */
        char *data = log->pending;
        size_t data_cap = log->cap, len = log->len;
        log->pending = batch;
        log->cap = batch_cap;
        log->len = 0;
        batch = data;
        batch_cap = data_cap;
        bool reopen = log->reopen, stopping = log->stopping;
        unsigned long long dropped = log->dropped;
        log->reopen = false;
        log->dropped = 0;
        pthread_mutex_unlock(&log->lock);

        if (len)
            write_all(log->fd, data, len);
        if (dropped)
            log_warn("proxy: access log backlog full, dropped %llu lines", dropped);
        if (reopen) {
            int fd = log_open_fd(log->path);
            if (fd >= 0) {
                close(log->fd);
                log->fd = fd;
            } else {
                log_err("proxy: reopen %s: %s", log->path, strerror(errno));
            }
        }
        pthread_mutex_lock(&log->lock);
        if (stopping && log->len == 0)
            break;
    }
    pthread_mutex_unlock(&log->lock);
    free(batch);
    return NULL;
}

struct accesslog *accesslog_open(const char *path, enum proxy_log_format format, char *err,
                                 size_t errlen)
{
    struct accesslog *log = xcalloc(1, sizeof(*log));
    log->path = xstrdup(path);
    log->format = format;
    log->fd = log_open_fd(path);
    if (log->fd < 0) {
        snprintf(err, errlen, "access-log: %s: %s", path, strerror(errno));
        free(log->path);
        free(log);
        return NULL;
    }
    pthread_mutex_init(&log->lock, NULL);
    pthread_cond_init(&log->wake, NULL);
    if (pthread_create(&log->thread, NULL, writer_main, log) != 0) {
        snprintf(err, errlen, "access-log: cannot start the writer thread");
        close(log->fd);
        free(log->path);
        free(log);
        return NULL;
    }
    return log;
}

void accesslog_close(struct accesslog *log)
{
    if (log == NULL)
        return;
    pthread_mutex_lock(&log->lock);
    log->stopping = true;
    pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->lock);
    pthread_join(log->thread, NULL);
    close(log->fd);
    pthread_cond_destroy(&log->wake);
    pthread_mutex_destroy(&log->lock);
    free(log->pending);
    free(log->path);
    free(log);
}

void accesslog_reopen(struct accesslog *log)
{
    if (log == NULL)
        return;
    pthread_mutex_lock(&log->lock);
    log->reopen = true;
    pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->lock);
}

static void accesslog_write(struct accesslog *log, const char *line, size_t len)
{
    pthread_mutex_lock(&log->lock);
    if (log->len + len > BACKLOG_MAX) {
        log->dropped++;
    } else {
        if (log->len + len > log->cap) {
            size_t cap = log->cap ? log->cap : FLUSH_BYTES;
            while (cap < log->len + len)
                cap *= 2;
            log->pending = xrealloc(log->pending, cap);
            log->cap = cap;
        }
        memcpy(log->pending + log->len, line, len);
        log->len += len;
        if (log->len >= FLUSH_BYTES)
            pthread_cond_signal(&log->wake);
    }
    pthread_mutex_unlock(&log->lock);
}

/* Appends <s> with '"', '\\' and the bytes outside printable ASCII escaped, so that a field
 * never ends early or breaks the line: as JSON (\" \\ \u00XX; what the request carried is not
 * known to be UTF-8, so each byte is a character), or as nginx escapes its log (\xHH). */
static void escaped_put(struct sbuf *out, const char *s, size_t len, bool json)
{
    const char *hex = json ? "0123456789abcdef" : "0123456789ABCDEF";
    size_t run = 0; /* bytes before s[i] that need no escape, added in one go */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            continue;
        sbuf_add(out, s + run, i - run);
        run = i + 1;
        if (json && (ch == '"' || ch == '\\')) {
            char esc[2] = {'\\', (char)ch};
            sbuf_add(out, esc, 2);
        } else if (json) {
            char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            sbuf_add(out, esc, 6);
        } else {
            char esc[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
            sbuf_add(out, esc, 4);
        }
    }
    sbuf_add(out, s + run, len - run);
}

static void json_put(struct sbuf *out, const char *s, size_t len)
{
    SBUF_LIT(out, "\"");
    escaped_put(out, s, len, true);
    SBUF_LIT(out, "\"");
}

/* A field of a combined line: "-" when empty. */
static void combined_put(struct sbuf *out, const char *s, size_t len)
{
    if (len == 0)
        SBUF_LIT(out, "-");
    else
        escaped_put(out, s, len, false);
}

/* Microseconds as milliseconds with three decimals ("12.345"). */
static void add_ms(struct sbuf *out, int64_t us)
{
    uint64_t v = us > 0 ? (uint64_t)us : 0;
    char frac[4] = {'.', (char)('0' + v / 100 % 10), (char)('0' + v / 10 % 10),
                    (char)('0' + v % 10)};
    sbuf_add_uint(out, v / 1000);
    sbuf_add(out, frac, 4);
}

/* The time of the line, its text made once per second and thread: "2026-12-07T14:09:03" (JSON,
 * milliseconds and "Z" added by the caller) or "07/Dec/2026:14:09:03 +0000" (combined). */
static size_t stamp_of(time_t t, bool combined, const char **text)
{
    static _Thread_local time_t cached_t = -1;
    static _Thread_local char json_stamp[32], combined_stamp[40];
    static _Thread_local size_t json_len, combined_len;
    if (t != cached_t) {
        struct tm tm;
        gmtime_r(&t, &tm);
        json_len = strftime(json_stamp, sizeof(json_stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        combined_len =
            strftime(combined_stamp, sizeof(combined_stamp), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        cached_t = t;
    }
    *text = combined ? combined_stamp : json_stamp;
    return combined ? combined_len : json_len;
}

void accesslog_record(struct accesslog *log, struct sbuf *out, const struct accesslog_entry *e)
{
    struct timespec now;
    const char *stamp;
    clock_gettime(CLOCK_REALTIME, &now);
    out->len = 0;
    if (log->format == PROXY_LOG_COMBINED) {
        size_t stamp_len = stamp_of(now.tv_sec, true, &stamp);
        sbuf_adds(out, e->client);
        SBUF_LIT(out, " - - [");
        sbuf_add(out, stamp, stamp_len);
        SBUF_LIT(out, "] \"");
        sbuf_adds(out, e->method);
        SBUF_LIT(out, " ");
        if (*e->target)
            combined_put(out, e->target, strlen(e->target));
        else
            SBUF_LIT(out, "-");
        if (e->major) { /* none for a request refused before its version was read */
            SBUF_LIT(out, " HTTP/");
            sbuf_add_uint(out, (uint64_t)e->major);
            SBUF_LIT(out, ".");
            sbuf_add_uint(out, (uint64_t)e->minor);
        }
        SBUF_LIT(out, "\" ");
        sbuf_add_uint(out, (uint64_t)e->status);
        SBUF_LIT(out, " ");
        sbuf_add_uint(out, e->bytes_out);
        SBUF_LIT(out, " \"");
        combined_put(out, e->referer, e->referer_len);
        SBUF_LIT(out, "\" \"");
        combined_put(out, e->agent, e->agent_len);
        SBUF_LIT(out, "\"\n");
    } else {
        size_t stamp_len = stamp_of(now.tv_sec, false, &stamp);
        char ms[5] = {'.', (char)('0' + now.tv_nsec / 100000000),
                      (char)('0' + now.tv_nsec / 10000000 % 10),
                      (char)('0' + now.tv_nsec / 1000000 % 10), 'Z'};
        SBUF_LIT(out, "{\"time\":\"");
        sbuf_add(out, stamp, stamp_len);
        sbuf_add(out, ms, 5);
        SBUF_LIT(out, "\",\"client\":\"");
        sbuf_adds(out, e->client);
        SBUF_LIT(out, "\",\"peer\":\"");
        sbuf_adds(out, e->peer);
        SBUF_LIT(out, "\",\"country\":");
        json_put(out, e->country, strlen(e->country));
        SBUF_LIT(out, ",\"service\":");
        json_put(out, e->service, strlen(e->service));
        SBUF_LIT(out, ",\"region\":");
        json_put(out, e->region, strlen(e->region));
        SBUF_LIT(out, ",\"origin\":");
        json_put(out, e->origin, strlen(e->origin));
        SBUF_LIT(out, ",\"method\":\"");
        sbuf_adds(out, e->method);
        SBUF_LIT(out, "\",\"path\":");
        json_put(out, e->target, strlen(e->target));
        SBUF_LIT(out, ",\"referer\":");
        json_put(out, e->referer, e->referer_len);
        SBUF_LIT(out, ",\"user_agent\":");
        json_put(out, e->agent, e->agent_len);
        SBUF_LIT(out, ",\"status\":");
        sbuf_add_uint(out, (uint64_t)e->status);
        SBUF_LIT(out, ",\"bytes_in\":");
        sbuf_add_uint(out, e->bytes_in);
        SBUF_LIT(out, ",\"bytes_out\":");
        sbuf_add_uint(out, e->bytes_out);
        SBUF_LIT(out, ",\"duration_ms\":");
        add_ms(out, e->total_us);
        SBUF_LIT(out, ",\"upstream_ms\":");
        add_ms(out, e->upstream_us);
        SBUF_LIT(out, ",\"retries\":");
        sbuf_add_uint(out, (uint64_t)e->retries);
        if (e->request_id) {
            SBUF_LIT(out, ",\"request_id\":");
            json_put(out, e->request_id, strlen(e->request_id));
        }
        SBUF_LIT(out, "}\n");
    }
    accesslog_write(log, out->p, out->len);
    if (out->cap > 65536) { /* a huge target or agent: not kept */
        free(out->p);
        *out = (struct sbuf){0};
    }
}

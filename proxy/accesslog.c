/* proxy/accesslog.c - the access log: workers queue finished lines, a thread of its own writes.
 *
 * A worker only appends to a memory buffer under a mutex held for a memcpy; the disk is touched
 * by the writer thread, so a slow or full disk delays the log, never a request. If the backlog
 * passes 16 MiB (the disk has stopped), new lines are dropped and counted rather than grown
 * without bound. SIGHUP reopens the file for logrotate. */
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

void accesslog_write(struct accesslog *log, const char *line, size_t len)
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

enum proxy_log_format accesslog_format(const struct accesslog *log)
{
    return log->format;
}

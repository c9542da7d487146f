/* common/log.h - leveled logging to stderr, where journald adds timestamps.
 *
 * The macros test the level before evaluating their arguments, so a debug line in a hot path costs
 * one comparison when debug logging is off. Messages start with their module ("geo: ...") so an
 * operator can grep for them. Never log keys, certificates or request bodies. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdbool.h>
#include <time.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern enum log_level log_threshold;

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "err", "warn", "info" or "debug". Returns 0, or -EINVAL for any other name. */
int log_level_parse(const char *name, enum log_level *level_out);

#define LOG_AT(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= log_threshold)                                                              \
            log_write((level), __VA_ARGS__);                                                       \
    } while (0)
/* Whether a line that is written at most once a second may be written now: <last> is the
 * caller's own (thread-local) record of when it last was. */
static inline bool log_second_passed(time_t *last)
{
    time_t now = time(NULL);
    if (now == *last)
        return false;
    *last = now;
    return true;
}

#define log_err(...)   LOG_AT(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif

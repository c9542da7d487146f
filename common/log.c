/* common/log.c - the single writer behind the log_* macros.
 *
 * One fprintf of a fully formatted line per message, so lines from several threads never interleave
 * (stdio locks the stream for the duration of one call). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const level_names[] = {"err", "warn", "info", "debug"};

void log_write(enum log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "<%s> %s\n", level_names[level], line);
}

int log_level_parse(const char *name, enum log_level *level_out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level_out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

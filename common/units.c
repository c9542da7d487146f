/* common/units.c - see units.h. One parser for every duration setting (proxy, health). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"

bool units_plain_number(const char *text, const char *end)
{
    if (end <= text || *text < '0' || *text > '9')
        return false;
    int dots = 0;
    for (const char *p = text; p < end; p++) {
        if (*p == '.')
            dots++;
        else if (*p < '0' || *p > '9')
            return false;
    }
    return dots <= 1;
}

/* What one <suffix> ("ms", "s", "m", or none: seconds) is worth, given what a millisecond is
 * worth in the unit wanted; -1 for anything else. */
static double unit_scale(const char *suffix, double per_ms)
{
    return strcmp(suffix, "ms") == 0                     ? per_ms
           : strcmp(suffix, "s") == 0 || *suffix == '\0' ? 1000 * per_ms
           : strcmp(suffix, "m") == 0                    ? 60000 * per_ms
                                                         : -1;
}

/* <text> in units of which a millisecond holds <per_ms>, up to 24 hours; "us" where allowed. */
static int duration_parse(const char *text, double per_ms, bool micro, double *out)
{
    char *end;
    double n = strtod(text, &end);
    double scale = micro && strcmp(end, "us") == 0 ? per_ms / 1000 : unit_scale(end, per_ms);
    if (!units_plain_number(text, end) || scale < 0 || n * scale > 86400000.0 * per_ms)
        return -EINVAL;
    *out = n * scale;
    return 0;
}

int parse_duration_ms(const char *text, int *ms_out)
{
    double ms;
    int rc = duration_parse(text, 1, false, &ms);
    if (rc == 0)
        *ms_out = (int)ms;
    return rc;
}

int parse_duration_us(const char *text, long long *us_out)
{
    double us;
    int rc = duration_parse(text, 1000, true, &us);
    if (rc == 0)
        *us_out = (long long)us;
    return rc;
}

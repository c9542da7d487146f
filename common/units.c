/* common/units.c - see units.h. One parser for every duration setting (proxy, health). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"

int parse_duration_ms(const char *text, int *ms_out)
{
    char *end;
    double n = strtod(text, &end);
    double scale = strcmp(end, "ms") == 0  ? 1
                   : strcmp(end, "s") == 0 ? 1000
                   : strcmp(end, "m") == 0 ? 60000
                   : *end == '\0'          ? 1000
                                           : -1;
    if (end == text || scale < 0 || !(n >= 0) || n * scale > 86400000.0)
        return -EINVAL;
    *ms_out = (int)(n * scale);
    return 0;
}

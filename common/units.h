/* common/units.h - durations as written in settings: "250ms", "3s", "2m", or plain seconds. */
#ifndef COMMON_UNITS_H
#define COMMON_UNITS_H

/* Parses a duration of 0 to 24 hours into milliseconds. Returns 0, or -EINVAL. */
int parse_duration_ms(const char *text, int *ms_out);

#endif

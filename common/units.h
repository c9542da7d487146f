/* common/units.h - durations as written in settings: "250ms", "3s", "2m", or plain seconds
 * (and "200us" where microseconds count). */
#ifndef COMMON_UNITS_H
#define COMMON_UNITS_H

/* Parses a duration of 0 to 24 hours into milliseconds. Returns 0, or -EINVAL. */
int parse_duration_ms(const char *text, int *ms_out);
/* The same into microseconds, "us" accepted too. */
int parse_duration_us(const char *text, long long *us_out);

#endif

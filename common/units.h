/* common/units.h - durations as written in settings: "250ms", "3s", "2m", or plain seconds
 * (and "200us" where microseconds count). */
#ifndef COMMON_UNITS_H
#define COMMON_UNITS_H

#include <stdbool.h>

/* Whether text[0..end) is a plain decimal number: digits, with at most one '.' after the first
 * (strtod() and strtol() also take signs, blanks, hexadecimal, exponents, "inf"). */
bool units_plain_number(const char *text, const char *end);
/* Parses a duration of 0 to 24 hours into milliseconds. Returns 0, or -EINVAL. */
int parse_duration_ms(const char *text, int *ms_out);
/* The same into microseconds, "us" accepted too. */
int parse_duration_us(const char *text, long long *us_out);

#endif

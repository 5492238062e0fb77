/* date.h — dates as RFC 5322 writes them (one formatter for the Received trace, DSNs and reports),
 * and the one clock in milliseconds that records, events, keys and logs of requests share. */
#ifndef MAILWERK_UTIL_DATE_H
#define MAILWERK_UTIL_DATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* RFC 5322 §3.3 date-time in UTC, e.g. "Sun, 22 Nov 2026 04:05:06 +0000". size 32 is enough. */
void date_rfc5322_format(time_t t, char *buf, size_t size);

/* RFC 3339 §5.6 in UTC with milliseconds, as the API and its webhooks write times:
 * "2026-12-06T21:30:00.123Z" for unix milliseconds (a time before 1970 writes the epoch). size 32
 * is enough. */
void date_rfc3339_ms_format(int64_t ms, char *buf, size_t size);

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t date_now_ms(void);
/* Milliseconds of CLOCK_MONOTONIC, for deadlines and durations a clock step must not move. */
int64_t date_mono_ms(void);

#endif

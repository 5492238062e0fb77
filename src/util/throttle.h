/* throttle.h — a token bucket: how fast delivery may start transactions towards one domain
 * ([throttle] DOMAIN = COUNT/PERIOD), how fast one API key may send ([api] rate_limit). Pure: it
 * has no clock of its own; the caller passes the time in milliseconds (any monotonic origin). */
#ifndef MAILWERK_UTIL_THROTTLE_H
#define MAILWERK_UTIL_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct throttle_bucket {
	double tokens;   /* available now (at last_ms); may be fractional */
	double capacity; /* the largest burst */
	double per_ms;   /* tokens gained per millisecond */
	int64_t last_ms; /* when tokens was last brought up to date */
};

/* At most count per period, spread evenly; bursts of up to the count allowed per minute (at least
 * 1, at most count). Starts full. */
void throttle_init(struct throttle_bucket *b, unsigned count, unsigned period_s, int64_t now_ms);
/* Takes one token when available: true; false when the caller must wait. A now_ms earlier than the
 * last call counts as no time passed, and the bucket goes on from that earlier time. */
bool throttle_take(struct throttle_bucket *b, int64_t now_ms);
/* The earliest time (ms) at which throttle_take would succeed; now_ms when it would now. Exact:
 * throttle_take at that time succeeds and one millisecond earlier fails, if nothing else takes. */
int64_t throttle_ready_ms(const struct throttle_bucket *b, int64_t now_ms);

#endif

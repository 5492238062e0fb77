/* minrate.h — a floor on a transfer rate, judged over windows after a grace period: how slowly
 * SMTP message content may arrive ([smtp] min_data_rate, Postfix's smtpd_min_data_rate idea). A
 * client that sends a byte now and then keeps a per-read idle timer from ever firing; this judges
 * what arrived over a whole window instead. Pure: no clock of its own; the caller passes the octets
 * received so far (a running total) and the time in milliseconds (any monotonic origin). */
#ifndef MAILWERK_UTIL_MINRATE_H
#define MAILWERK_UTIL_MINRATE_H

#include <stdbool.h>
#include <stdint.h>

struct minrate {
	uint64_t min_rate;  /* octets per second; 0: never too slow */
	int64_t window_ms;  /* each judgement after the first covers at least this long */
	int64_t span_ms;    /* how long the window being measured must be (the first: grace + window) */
	int64_t mark_ms;    /* the start of the window being measured */
	uint64_t mark_total; /* the running total at mark_ms */
	bool started;
};

/* Starts measuring at now_ms, with total octets received so far: nothing is judged before
 * now_ms + grace_ms + window_ms (the grace period is part of the first window, so a client that
 * starts slowly but catches up is not cut), then each window of window_ms (at least 1) on its own. */
void minrate_start(struct minrate *r, uint64_t min_rate, int64_t grace_ms, int64_t window_ms, uint64_t total,
		   int64_t now_ms);
/* total is the running count of octets received (never smaller than before). true when a window
 * has passed in which fewer than min_rate octets per second arrived; otherwise, once a window has
 * passed, the next one starts at now_ms. A now_ms earlier than the window's start counts as no
 * time passed. */
bool minrate_too_slow(struct minrate *r, uint64_t total, int64_t now_ms);

#endif

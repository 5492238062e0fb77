/* throttle.c — the token bucket behind [throttle] and [api] rate_limit. */
#include "util/throttle.h"

#include <stdint.h>

/* Rule: tokens grow by count/period, capped at the burst; a take needs one whole token. */

void throttle_init(struct throttle_bucket *b, unsigned count, unsigned period_s, int64_t now_ms)
{
	if (count == 0) /* the configuration never allows these; keep the arithmetic defined anyway */
		count = 1;
	if (period_s == 0)
		period_s = 1;
	uint64_t burst = (uint64_t)count * 60 / period_s; /* whole tokens: the per-minute count, rounded down */
	if (burst > count)
		burst = count;
	if (burst < 1)
		burst = 1;
	b->capacity = (double)burst;
	b->tokens = (double)burst;
	b->per_ms = (double)count / ((double)period_s * 1000.0);
	b->last_ms = now_ms;
}

/* Tokens at time t without further takes; t before last_ms gains nothing. */
static double throttle_tokens_at(const struct throttle_bucket *b, int64_t t)
{
	if (t <= b->last_ms)
		return b->tokens;
	return b->tokens + ((double)t - (double)b->last_ms) * b->per_ms;
}

/* Whether a take at t succeeds. Both functions decide by this alone, so that what throttle_ready_ms
 * promises throttle_take keeps, to the millisecond. The slack absorbs rounding: 6000 ms at 600/h
 * make one token even when 6000 * (1/6000.0) comes out a hair below 1. */
static bool throttle_has_token(const struct throttle_bucket *b, int64_t t)
{
	return throttle_tokens_at(b, t) >= 1.0 - 1e-9;
}

bool throttle_take(struct throttle_bucket *b, int64_t now_ms)
{
	if (now_ms < b->last_ms)
		b->last_ms = now_ms; /* the clock went back: no time passed, go on from here */
	if (!throttle_has_token(b, now_ms))
		return false; /* tokens stay as they are, so throttle_ready_ms answers stay true */
	double avail = throttle_tokens_at(b, now_ms);
	b->tokens = (avail > b->capacity ? b->capacity : avail) - 1.0;
	if (b->tokens < 0.0)
		b->tokens = 0.0; /* the slack above, not a debt */
	b->last_ms = now_ms;
	return true;
}

int64_t throttle_ready_ms(const struct throttle_bucket *b, int64_t now_ms)
{
	if (throttle_has_token(b, now_ms))
		return now_ms;
	/* tokens < 1 here; they grow only after last_ms (also when now_ms is before it) */
	double wait = (1.0 - b->tokens) / b->per_ms;
	if ((double)b->last_ms + wait >= 9e18) /* a rate so slow it never comes (INT64_MAX is ~9.2e18) */
		return INT64_MAX;
	int64_t t = b->last_ms + (int64_t)wait + 1; /* wait > 0: rounded up (or one past); settled below */
	/* the division may be a rounding step off what throttle_has_token computes: settle on its answer */
	while (t - 1 > now_ms && throttle_has_token(b, t - 1))
		t--;
	while (t < INT64_MAX && !throttle_has_token(b, t))
		t++;
	return t; /* > now_ms: tokens at now_ms are short of one and only grow */
}

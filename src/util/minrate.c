/* minrate.c — a floor on a transfer rate, judged per window (see minrate.h). */
#include "util/minrate.h"

void minrate_start(struct minrate *r, uint64_t min_rate, int64_t grace_ms, int64_t window_ms, uint64_t total,
		   int64_t now_ms)
{
	r->min_rate = min_rate;
	r->window_ms = window_ms > 0 ? window_ms : 1;
	r->span_ms = r->window_ms + (grace_ms > 0 ? grace_ms : 0);
	r->mark_ms = now_ms;
	r->mark_total = total;
	r->started = true;
}

/* The octets a window of elapsed_ms needs at min_rate octets per second, saturating. */
static uint64_t minrate_needed(uint64_t min_rate, int64_t elapsed_ms)
{
	uint64_t ms = (uint64_t)elapsed_ms;
	uint64_t whole;
	if (__builtin_mul_overflow(min_rate, ms / 1000, &whole))
		return UINT64_MAX;
	uint64_t part = min_rate / 1000 * (ms % 1000) + min_rate % 1000 * (ms % 1000) / 1000;
	uint64_t sum;
	if (__builtin_add_overflow(whole, part, &sum))
		return UINT64_MAX;
	return sum;
}

bool minrate_too_slow(struct minrate *r, uint64_t total, int64_t now_ms)
{
	if (!r->started || r->min_rate == 0 || now_ms <= r->mark_ms)
		return false;
	int64_t elapsed = now_ms - r->mark_ms;
	if (elapsed < r->span_ms)
		return false; /* still measuring */
	uint64_t got = total >= r->mark_total ? total - r->mark_total : 0;
	if (got < minrate_needed(r->min_rate, elapsed))
		return true;
	/* a good window: the next is judged on its own, without the grace period */
	r->mark_ms = now_ms;
	r->mark_total = total;
	r->span_ms = r->window_ms;
	return false;
}

/* metrics_recent.c — the deliveries' outcomes of the last minute and the last hour (metrics.h):
 * two rings of time slots, written by one thread and read by any without a lock. */
#include "util/metrics.h"

#include "util/date.h"

/* Slot of stamp t in a ring of METRICS_RECENT_SLOTS; t is never negative on the monotonic clock. */
static struct metrics_recent_slot *recent_slot(struct metrics_recent_slot *ring, int64_t t)
{
	return &ring[(uint64_t)t % METRICS_RECENT_SLOTS];
}

/* The writer's side: the slot for t, reset first when it still counts an older time. The busy
 * stamp goes out before the counts are cleared, and t only after (release), so that a reader that
 * sees t also sees the cleared counts, and one that read the old stamp sees it change. */
static void recent_add(struct metrics_recent_slot *ring, int64_t t, enum metrics_route r, enum metrics_outcome o)
{
	struct metrics_recent_slot *s = recent_slot(ring, t);
	if (atomic_load_explicit(&s->stamp, memory_order_relaxed) != t) {
		atomic_store_explicit(&s->stamp, METRICS_RECENT_BUSY, memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
		for (int i = 0; i < METRICS_ROUTE_COUNT; i++)
			for (int j = 0; j < METRICS_OUTCOME_COUNT; j++)
				atomic_store_explicit(&s->n[i][j], 0, memory_order_relaxed);
		atomic_store_explicit(&s->stamp, t, memory_order_release);
	}
	atomic_fetch_add_explicit(&s->n[r][o], 1, memory_order_relaxed);
}

void metrics_recent_count_at(struct metrics *m, enum metrics_route r, enum metrics_outcome o, int64_t mono_s)
{
	if (m == NULL || (unsigned)r >= METRICS_ROUTE_COUNT || (unsigned)o >= METRICS_OUTCOME_COUNT || mono_s < 0)
		return;
	recent_add(m->recent.seconds, mono_s, r, o);
	recent_add(m->recent.minutes, mono_s / 60, r, o);
}

/* The reader's side: the sum of the slots stamped now - METRICS_RECENT_SLOTS + 1 to now. A slot
 * whose stamp changed while it was read has just been taken for a later time: it is left out (its
 * old counts were of the window's oldest moment). */
static void recent_sum(const struct metrics_recent_slot *ring, int64_t now,
		       uint64_t out[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT])
{
	for (size_t k = 0; k < METRICS_RECENT_SLOTS; k++) {
		const struct metrics_recent_slot *s = &ring[k];
		int64_t before = atomic_load_explicit(&s->stamp, memory_order_acquire);
		if (before == METRICS_RECENT_BUSY || before > now || before <= now - METRICS_RECENT_SLOTS)
			continue;
		uint64_t n[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT];
		for (int i = 0; i < METRICS_ROUTE_COUNT; i++)
			for (int j = 0; j < METRICS_OUTCOME_COUNT; j++)
				n[i][j] = atomic_load_explicit(&s->n[i][j], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->stamp, memory_order_relaxed) != before)
			continue;
		for (int i = 0; i < METRICS_ROUTE_COUNT; i++)
			for (int j = 0; j < METRICS_OUTCOME_COUNT; j++)
				out[i][j] += n[i][j];
	}
}

void metrics_recent_read_at(const struct metrics *m, int64_t mono_s, struct metrics_recent_counts *r_r)
{
	*r_r = (struct metrics_recent_counts){0};
	if (m == NULL || mono_s < 0)
		return;
	recent_sum(m->recent.seconds, mono_s, r_r->minute);
	recent_sum(m->recent.minutes, mono_s / 60, r_r->hour);
}

void metrics_recent_read(const struct metrics *m, struct metrics_recent_counts *r_r)
{
	metrics_recent_read_at(m, date_mono_ms() / 1000, r_r);
}

/* stats.h — how tracked mail fared over a window, for the dashboard's overview (GET /stats): per
 * bucket (the hours of the last day, the days of the last 30) how many recipient events of each
 * type were recorded. Read from the events of queue.db (events.h). Events are written in time
 * order, so the window's first event is found by bisecting their sequence instead of by an index
 * that every write would pay for; the scan starts a little before it, for the few events whose
 * time runs behind their place (an attempt is recorded just after it ended). Storage only. */
#ifndef MAILWERK_EVENTS_STATS_H
#define MAILWERK_EVENTS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "events/events.h"

#define EVENTS_STATS_BUCKETS_MAX 64

struct events_stats {
	int64_t since_ms;  /* the first bucket's start */
	int64_t bucket_ms;
	size_t buckets;
	uint64_t counts[EVENTS_STATS_BUCKETS_MAX][EMAIL_EVENT_COUNT];
	uint64_t totals[EMAIL_EVENT_COUNT];
};

struct db;

/* The counts of the buckets of bucket_ms from since_ms on (at most EVENTS_STATS_BUCKETS_MAX); a
 * read. SQLITE_OK, or the error. */
int events_stats_read(struct db *db, int64_t since_ms, int64_t bucket_ms, size_t buckets, struct events_stats *s_r);

#endif

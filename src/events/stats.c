/* stats.c — event counts per time bucket (stats.h). */
#include "events/stats.h"

#include <string.h>

#include <sqlite3.h>

#include "db/db.h"

/* How far before the window the scan starts: an event may be recorded this much after its time. */
#define STATS_SLACK_MS (10 * 60 * 1000)

/* The time of the first event at or after seq, or INT64_MAX when there is none; -1 on error. */
static int64_t time_at(struct db *db, int64_t seq)
{
	sqlite3_stmt *st = db_stmt(db, "SELECT created_at FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	int rc = sqlite3_step(st);
	int64_t t = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? INT64_MAX : -1;
	sqlite3_reset(st);
	return t;
}

/* The smallest seq whose event is at or after t (by bisection over the sequence). */
static int events_first_at(struct db *db, int64_t t, int64_t *seq_r)
{
	int64_t lo = 0, hi = 0;
	int rc = db_int64(db, "SELECT max(seq) FROM events", &hi);
	if (rc != SQLITE_OK && rc != SQLITE_DONE)
		return rc;
	hi++;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		int64_t at = time_at(db, mid);
		if (at < 0)
			return db_errcode(db);
		if (at < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	*seq_r = lo;
	return SQLITE_OK;
}

int events_stats_read(struct db *db, int64_t since_ms, int64_t bucket_ms, size_t buckets, struct events_stats *s_r)
{
	memset(s_r, 0, sizeof(*s_r));
	if (buckets > EVENTS_STATS_BUCKETS_MAX)
		buckets = EVENTS_STATS_BUCKETS_MAX;
	s_r->since_ms = since_ms, s_r->bucket_ms = bucket_ms, s_r->buckets = buckets;
	if (bucket_ms <= 0 || buckets == 0)
		return SQLITE_OK;
	int64_t first = 0;
	int rc = events_first_at(db, since_ms - STATS_SLACK_MS, &first);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_stmt *st = db_stmt(db, "SELECT (created_at - ?2) / ?3, type, count(*) FROM events"
				       " WHERE seq >= ?1 AND created_at >= ?2 AND created_at < ?4 GROUP BY 1, 2");
	if (st == NULL)
		return db_errcode(db);
	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, since_ms);
	sqlite3_bind_int64(st, 3, bucket_ms);
	sqlite3_bind_int64(st, 4, since_ms + bucket_ms * (int64_t)buckets);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t b = sqlite3_column_int64(st, 0);
		int type = sqlite3_column_int(st, 1);
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);
		if (b < 0 || (size_t)b >= buckets || type < 0 || type >= EMAIL_EVENT_COUNT)
			continue;
		s_r->counts[b][type] += n;
		s_r->totals[type] += n;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

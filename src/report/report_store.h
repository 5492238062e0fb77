/* report_store.h — the rows of DMARC aggregate reporting between the message they describe and the
 * daily report: DATA_DIR/reports.db (SQLite, WAL). A row added stands for one message; the store
 * keeps the messages of one record (dmarc_report_row_key) within one UTC hour as one table row with
 * a count, so its size follows the distinct records, not the traffic. A take's end should be a
 * whole hour (midnight is): a table row is taken once its latest message is before the end.
 *
 * report_store_add() writes a batch in one transaction (meant for a worker thread: it commits with
 * fsync). report_store_take() turns every row older than a time into reports: per policy domain
 * and rua list it groups the rows into records (dmarc_report_row_key; counts summed; the
 * published policy and org domain of the latest row), hands them to a callback, and deletes them
 * only when the callback accepted them in the same run. A crash or a refusal loses nothing: the rows
 * are taken again next time, and a report is sent at most twice (queued, then the crash before the
 * delete). Taken again, the same rows give the same first_id and so the same Report-ID and file name,
 * as RFC 9990 §3.5.2 asks of a report sent again.
 *
 * Bound: at most REPORT_STORE_RECORDS_MAX records per report. A policy domain with more distinct
 * records in the period is split, in the same run, into several reports of the same date range
 * (oldest records first), each with its own first_id; each is deleted only when accepted.
 *
 * Calls are serialized by a mutex in the store; the callback runs under it and must not call the
 * store. A sentence in *error_r after a database error lives in the store until its next call. */
#ifndef MAILWERK_REPORT_REPORT_STORE_H
#define MAILWERK_REPORT_REPORT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "report/dmarc_report.h"
#include "util/result.h"

#define REPORT_STORE_DB_NAME "reports.db"
/* Records per report: a full one holds about 11 MiB of struct dmarc_report_row while the callback
 * runs, and makes some 2 MiB of XML with ordinary values. */
#define REPORT_STORE_RECORDS_MAX 2000

struct report_store;

/* Opens (creating and migrating) data_dir/reports.db for one more user of it (the MTA-STS cache,
 * delivery/mtasts_store.h; whichever opens the file first migrates it), mode 0600 and FULL
 * sync, and prepares probe_sql at once, so that a file whose tables do not fit is refused at open.
 * NULL with a sentence in error_r on failure. */
struct db;
struct db *report_store_db_open(const char *data_dir, const char *probe_sql, char *error_r, size_t error_size);

/* Opens (creating it with mode 0600 if needed) DATA_DIR/reports.db; NULL with a sentence. */
struct report_store *report_store_open(const char *data_dir, const char **error_r);
void report_store_close(struct report_store *s);

/* Stores rows[0..n) in one transaction. Every row must pass dmarc_report_row_check, else nothing is
 * stored (RESULT_PERMFAIL, *error_r names the row's problem). RESULT_TEMPFAIL for the database (busy,
 * disk full, I/O). */
enum result report_store_add(struct report_store *s, const struct dmarc_report_row *rows, size_t n,
			     const char **error_r);

/* One report's worth of rows. */
struct report_store_batch {
	const char *policy_domain;
	const char *const *rua;  /* the rua list of its rows (before any RFC 9990 §4 check) */
	size_t rua_count;
	const struct dmarc_report_row *rows; /* one per record, count = messages; oldest first */
	size_t count;
	uint64_t messages;
	int64_t begin, end;      /* the date range: the first message's time, and the take's end - 1 */
	uint64_t first_id;       /* the smallest row id in the batch: dmarc_report_id_make(begin, first_id) */
	bool split;              /* part of a policy domain's rows split by REPORT_STORE_RECORDS_MAX */
};

/* Returns true when the report is taken care of (queued, or deliberately dropped): its rows are
 * then deleted. false keeps them for the next run. */
typedef bool report_store_take_fn(void *arg, const struct report_store_batch *b);

struct report_store_take_stats {
	size_t batches;    /* callbacks made */
	size_t accepted;   /* of them, accepted (rows deleted) */
	uint64_t messages; /* messages in the accepted ones */
};

/* Takes every row with time < end (and recorded before the call began), grouped as described at
 * the top. stats_r may be NULL. RESULT_TEMPFAIL when the database failed; batches accepted before
 * the failure stay deleted. */
enum result report_store_take(struct report_store *s, time_t end, report_store_take_fn *fn, void *arg,
			      struct report_store_take_stats *stats_r, const char **error_r);

/* Messages recorded and not yet reported, for tests and the CLI. */
enum result report_store_pending(struct report_store *s, uint64_t *messages_r, const char **error_r);

#endif

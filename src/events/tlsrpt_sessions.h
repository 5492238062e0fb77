/* tlsrpt_sessions.h — outbound TLS session outcomes for TLS reporting (RFC 8460), from the SMTP
 * client's handshake to the daily report: the outcome the delivery code hands in, an in-memory list
 * that merges equal outcomes, and their durable counters in queue.db. Pure storage: the report
 * itself (record, JSON, mail) is report/tlsrpt.h.
 *
 * Why the counters live in queue.db and are written by queue_rcpt_results_tls(): a session is
 * counted in the very transaction that records the delivery result it belongs to. The pool adds
 * each handshake's outcome to its job's list (no I/O on the loop); the runner merges the lists of a
 * batch of finished jobs, and the batch's one result transaction adds the merged counts (one UPSERT
 * per distinct outcome, not per session, and no commit or fsync of its own). So a kill -9 cannot
 * lose a counted session nor count one twice: either the delivery result and its sessions are
 * committed together, or neither is — and then the recipients are due again and the sessions of the
 * next attempt are the ones counted, as a receiver would see them. A failed batch commit drops its
 * sessions with its results for the same reason; a counter write that fails on its own is rolled
 * back to a savepoint and the results commit without it (TLS reporting never costs a result).
 * The alternative, an in-memory aggregate flushed by a timer, would lose what it held at a kill -9,
 * and writing each session in its own transaction would add a commit (an fsync) per connection.
 *
 * Rows are kept per period (the UTC day, or [tlsrpt] report_interval in tests), policy domain,
 * policy and outcome, with a count. Successes keep no host or address: the report shows them only
 * in the summary (RFC 8460 §4.4). */
#ifndef MAILWERK_EVENTS_TLSRPT_SESSIONS_H
#define MAILWERK_EVENTS_TLSRPT_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;

/* RFC 8460 §4.4 policy-type */
enum tlsrpt_policy_type {
	TLSRPT_POLICY_NONE = 0, /* "no-policy-found" */
	TLSRPT_POLICY_TLSA,     /* "tlsa" */
	TLSRPT_POLICY_STS,      /* "sts" */
	TLSRPT_POLICY_COUNT,
};
const char *tlsrpt_policy_type_str(enum tlsrpt_policy_type t);

/* RFC 8460 §4.3 result-type; SUCCESS is a successful session (no failure detail). */
enum tlsrpt_result {
	TLSRPT_RESULT_SUCCESS = 0,
	TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED, /* §4.3.1 */
	TLSRPT_RESULT_CERT_HOST_MISMATCH,
	TLSRPT_RESULT_CERT_EXPIRED,
	TLSRPT_RESULT_CERT_NOT_TRUSTED,
	TLSRPT_RESULT_VALIDATION_FAILURE,
	TLSRPT_RESULT_TLSA_INVALID,           /* §4.3.2 */
	TLSRPT_RESULT_DNSSEC_INVALID,
	TLSRPT_RESULT_DANE_REQUIRED,
	TLSRPT_RESULT_STS_POLICY_FETCH_ERROR, /* §4.3.3 */
	TLSRPT_RESULT_STS_POLICY_INVALID,
	TLSRPT_RESULT_STS_WEBPKI_INVALID,
	TLSRPT_RESULT_COUNT,
};
/* The RFC's words ("success" for SUCCESS). */
const char *tlsrpt_result_str(enum tlsrpt_result r);

/* Strings kept per field at most (longer ones are cut), policy strings and mx hosts per policy. */
#define TLSRPT_FIELD_MAX 255
#define TLSRPT_POLICY_LINES_MAX 64
#define TLSRPT_POLICY_TEXT_MAX 8192

/* One session's outcome as the delivery code knows it; pointers valid during the call only. An
 * "sts" policy gives its lines as policy_strings and its mx patterns as mx_hosts; "tlsa" the records
 * in presentation form ("3 1 1 ab12...") and the MX host; "no-policy-found" neither. */
struct tlsrpt_outcome {
	const char *policy_domain;  /* the recipient domain */
	enum tlsrpt_policy_type policy_type;
	const char *const *policy_strings;
	size_t policy_string_count;
	const char *const *mx_hosts;
	size_t mx_host_count;
	enum tlsrpt_result result;
	const char *receiving_mx;   /* the MX host name; NULL or "" unknown */
	const char *receiving_ip;   /* NULL or "": not connected */
	const char *sending_ip;     /* our address on the connection; NULL or "" unknown */
	const char *additional;     /* a sentence for additional-information; NULL or "" none */
	int64_t time;               /* unix seconds */
};

/* An outcome as kept: owned strings, the lists joined by '\n', control characters replaced. */
struct tlsrpt_session {
	int64_t time;
	char *policy_domain;
	enum tlsrpt_policy_type policy_type;
	char *policy_strings; /* "" none */
	char *mx_hosts;
	enum tlsrpt_result result;
	char *receiving_mx, *receiving_ip, *sending_ip, *additional; /* "" for successes */
	uint64_t count;
};

/* A list of sessions; zero-initialised is empty. Equal outcomes of the same period are one entry
 * with a count. */
struct tlsrpt_sessions {
	struct tlsrpt_session *v;
	size_t n, cap;
};

/* Adds one session (period = o->time / period_seconds). false when out of memory or when o is not
 * usable (no policy domain, values out of range): nothing is added. */
bool tlsrpt_sessions_add(struct tlsrpt_sessions *l, const struct tlsrpt_outcome *o);
/* Adds every entry of from to l (copies). false when out of memory (l has part of them). */
bool tlsrpt_sessions_merge(struct tlsrpt_sessions *l, const struct tlsrpt_sessions *from);
/* Empties l, keeping its memory. */
void tlsrpt_sessions_clear(struct tlsrpt_sessions *l);
void tlsrpt_sessions_free(struct tlsrpt_sessions *l);

/* queue.db: the counters (version 14 of the queue's schema) and the report attempts. */
extern const char tlsrpt_sessions_schema_sql[];

/* Adds the counts of l to the counters, each in the period of its time (time / period * period).
 * Inside the caller's transaction (queue_rcpt_results_tls). SQLITE_OK or the error. */
int tlsrpt_sessions_store(struct db *db, const struct tlsrpt_sessions *l, unsigned period);

/* One policy domain's counters of one period. */
struct tlsrpt_aggregate {
	int64_t begin;          /* the period's start */
	char *policy_domain;
	struct tlsrpt_session *rows; /* time = begin; the period's counters, successes included */
	size_t n;
	unsigned attempts;       /* reports tried before */
	int64_t next_attempt;    /* not before (unix seconds); 0: never tried */
	char *done_rua;          /* destinations that took it already, '\n'-joined; "" none */
};
void tlsrpt_aggregate_free(struct tlsrpt_aggregate *a);

/* Rows per aggregate read at most: more distinct failures in a day go into the next report. */
#define TLSRPT_AGGREGATE_ROWS_MAX 1000

/* The aggregates of periods that began before `before`, due by now, at most max of them, oldest
 * first. *out_r is the caller's (tlsrpt_aggregate_free each, then free). SQLITE_OK or the error. */
int tlsrpt_sessions_due(struct db *db, int64_t before, int64_t now, size_t max, struct tlsrpt_aggregate **out_r,
			size_t *n_r);
/* The report of the aggregate went everywhere: its counters (exactly the rows read, counts
 * subtracted, so sessions added since stay) and its attempt row go. SQLITE_OK or the error. */
int tlsrpt_sessions_delete(struct db *db, const struct tlsrpt_aggregate *a);
/* A failed attempt: attempts + 1, next attempt at next, done_rua as given. */
int tlsrpt_sessions_retry(struct db *db, const struct tlsrpt_aggregate *a, int64_t next, const char *done_rua);
/* Sessions counted and not yet reported (tests, status). */
int tlsrpt_sessions_pending(struct db *db, uint64_t *count_r);

#endif

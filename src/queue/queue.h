/* queue.h — the durable message queue; the only queue API the rest of mailwerk uses.
 *
 * A message is stored with queue_msg_store(); its callback runs on the loop thread only after the
 * transaction holding it has committed with fsync, so the caller may then answer 250. Stores from
 * many sessions share one commit (group commit, DESIGN.md §5). The other calls are synchronous and
 * meant for the CLI (and later the scheduler, through the same file). */
#ifndef MAILWERK_QUEUE_QUEUE_H
#define MAILWERK_QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/result.h"

struct loopq;
struct queue;
struct email_record;

/* Queue ids: 20 characters of Crockford base32: 10 for the arrival time in milliseconds (so ids sort
 * by arrival) and 10 random. */
#define QUEUE_ID_LEN 20

void queue_id_new(char id_r[QUEUE_ID_LEN + 1]);
/* true when s is a well-formed queue id (length and alphabet) */
int queue_id_valid(const char *s);

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0,
	QUEUE_RCPT_DELIVERED,
	QUEUE_RCPT_DEFERRED,
	QUEUE_RCPT_FAILED,
};
const char *queue_rcpt_state_str(enum queue_rcpt_state s);

/* What the sender asked of delivery status notifications (RFC 3461), kept with the message and
 * each recipient. The NOTIFY bits have the values of smtp/parse.h's enum smtp_dsn_notify; 0 means no
 * NOTIFY was given (and for messages queued before DSN was kept): then failures and delays are
 * reported, as RFC 3461 §4.1 allows for a missing NOTIFY. */
enum queue_dsn_ret {
	QUEUE_DSN_RET_UNSPECIFIED = 0, /* no RET: failure reports return the header section */
	QUEUE_DSN_RET_FULL,
	QUEUE_DSN_RET_HDRS,
};
enum queue_dsn_notify {
	QUEUE_NOTIFY_SUCCESS = 1 << 0,
	QUEUE_NOTIFY_FAILURE = 1 << 1,
	QUEUE_NOTIFY_DELAY = 1 << 2,
	QUEUE_NOTIFY_NEVER = 1 << 3,
};
/* Whether a report of this kind is wanted for a recipient with these NOTIFY bits (RFC 3461 §4.1):
 * success ones only when asked for, failure and delay ones when asked for or when NOTIFY was not
 * given, none with NEVER. bit is one of QUEUE_NOTIFY_SUCCESS, _FAILURE, _DELAY. */
bool queue_notify_wants(unsigned notify, unsigned bit);

/* A message handed to queue_msg_store(); the queue owns it from then on and frees it. */
struct queue_spool;

struct queue_msg {
	char id[QUEUE_ID_LEN + 1];
	char *sender;     /* "" for the null reverse-path */
	char **rcpts;     /* rcpt_count forward-paths, each "local@domain" */
	size_t rcpt_count;
	char *auth_user;  /* NULL when the session did not authenticate */
	char *client_ip;  /* textual address of the SMTP client */
	int64_t arrival;  /* unix time, seconds */
	char *data;       /* the message as stored (our added headers + the received content), CRLF lines */
	size_t size;
	struct queue_spool *body; /* NULL, or the rest of the message after data (a large one's body) */
	char *folder;     /* NULL or "": local copies go to the inbox; "Junk": quarantined (RFC 9989 §10.3) */
	int64_t not_before; /* unix seconds: no attempt before (a scheduled send); 0: at once */
	bool no_dsn;        /* no delivery status notification for failures: the sender follows the
			     * message's events instead (mail sent through the HTTP API) */
	struct email_record *track; /* NULL, or the record and events to keep for it (events.h) */
	/* RFC 3461: what the SMTP client asked of DSNs (none from the HTTP API) */
	enum queue_dsn_ret dsn_ret;
	char *dsn_envid;      /* NULL, or the ENVID decoded from xtext */
	unsigned *rcpt_notify; /* NULL, or rcpt_count NOTIFY bit sets (enum queue_dsn_notify; 0: not given) */
	char **rcpt_orcpt;    /* NULL, or rcpt_count entries, each NULL or the ORCPT "type;address" decoded */
	bool requiretls;      /* RFC 8689 §4.1: came with MAIL FROM ... REQUIRETLS (over TLS) */
	bool tls_required_no; /* RFC 8689 §5: an authenticated sender's "TLS-Required: No" header field */
};

/* Octets of the whole message: data, then body. */
uint64_t queue_msg_total(const struct queue_msg *m);
/* Frees every member and the struct (NULL members are fine). */
void queue_msg_free(struct queue_msg *m);
/* Puts len octets of header fields on top of m->data (signatures, Authentication-Results). false
 * when out of memory (m unchanged). */
bool queue_msg_prepend(struct queue_msg *m, const char *text, size_t len);

struct queue_rcpt_info {
	unsigned idx; /* its position in the message's envelope */
	char *addr;
	enum queue_rcpt_state state;
	unsigned attempts;
	int64_t next_attempt; /* unix time, 0 = none scheduled */
	char *last_error;     /* NULL when none */
	unsigned dsn_notify;  /* as stored (struct queue_msg rcpt_notify) */
	char *dsn_orcpt;      /* NULL when none */
};

struct queue_entry {
	char id[QUEUE_ID_LEN + 1];
	char *sender;
	char *auth_user;
	char *client_ip;
	int64_t arrival;
	size_t size;
	struct queue_rcpt_info *rcpts;
	size_t rcpt_count;
	bool held;   /* the operator holds it: not delivered until released (queue_hold) */
	bool no_dsn; /* as stored (struct queue_msg) */
	/* as stored (struct queue_msg); per recipient in rcpts: dsn_notify, dsn_orcpt */
	enum queue_dsn_ret dsn_ret;
	char *dsn_envid;
	bool requiretls, tls_required_no;
};
void queue_entry_free(struct queue_entry *e);

/* Opens (creating if needed) DATA_DIR/queue.db in WAL mode with synchronous=FULL.
 * NULL on failure with *error_r set to a sentence (static or valid until the next call). */
struct queue *queue_open(const char *data_dir, const char **error_r);
/* Stops the writer thread (after committing what is pending) and closes the database. */
void queue_close(struct queue *q);

/* Starts the group-commit writer thread; completions are posted through lq. Needed only by
 * queue_msg_store(). */
int queue_writer_start(struct queue *q, struct loopq *lq, const char **error_r);

/* Called on the loop thread once m is durable (RESULT_OK) or could not be stored (RESULT_TEMPFAIL, with a
 * short reason for logs such as "disk full"). */
typedef void queue_store_done_fn(void *arg, enum result res, const char *reason);
/* Takes ownership of m. Never calls done synchronously. */
void queue_msg_store(struct queue *q, struct queue_msg *m, queue_store_done_fn *done, void *arg);

/* Stores n messages (taking ownership of them all) in one transaction: all are queued, or none
 * (an API batch). done is called once. */
void queue_msgs_store(struct queue *q, struct queue_msg **msgs, size_t n, queue_store_done_fn *done, void *arg);

/* Records a report about tracked mail (a late DSN, a complaint: events.h) through the same group
 * commit, taking fb; done says when it is durable, so the report's sender may then be told 250. */
struct email_feedback;
void queue_feedback_store(struct queue *q, struct email_feedback *fb, queue_store_done_fn *done, void *arg);

/* The queue's commit notification: the one hand-over from receiving to sending. After a batch of
 * stores has committed, every subscriber is called once on the loop thread, before the batch's
 * done callbacks; it should only signal (for example wake the delivery runner). Thread-safe; at
 * most QUEUE_COMMIT_SUBSCRIBERS. false when full. */
#define QUEUE_COMMIT_SUBSCRIBERS 4
typedef void queue_commit_fn(void *arg);
bool queue_commit_subscribe(struct queue *q, queue_commit_fn *fn, void *arg);

/* Synchronous inspection and management (CLI). Each returns RESULT_OK, RESULT_PERMFAIL when the id is not in
 * the queue, RESULT_TEMPFAIL on a database error (with *error_r). */
typedef void queue_list_fn(const struct queue_entry *e, void *arg);
enum result queue_list(struct queue *q, queue_list_fn *fn, void *arg, const char **error_r);
enum result queue_show(struct queue *q, const char *id, struct queue_entry **e_r, const char **error_r);
enum result queue_delete(struct queue *q, const char *id, const char **error_r);
/* Makes every not-yet-final recipient due now; *count_r = recipients affected. */
enum result queue_flush(struct queue *q, unsigned *count_r, const char **error_r);
/* Holds (hold true) or releases message id, or every message when id is NULL: a held message stays
 * queued and is not delivered until released (Postfix's postsuper -h / -H); in-flight attempts
 * finish. *count_r = messages matched (one id) or changed (all). The runner's next pass sees it. */
enum result queue_hold(struct queue *q, const char *id, bool hold, unsigned *count_r, const char **error_r);
/* The stored message bytes (malloc'd). */
enum result queue_msg_data(struct queue *q, const char *id, char **data_r, size_t *size_r, const char **error_r);
/* How many messages are queued and the arrival (unix seconds) of the oldest, 0 when none: one
 * read (the metrics' gauges). RESULT_OK, or RESULT_TEMPFAIL with *error_r. */
enum result queue_stats(struct queue *q, uint64_t *count_r, int64_t *oldest_r, const char **error_r);
/* The numbers `mailwerk status` shows, from one snapshot: messages, held messages, the oldest
 * arrival (unix seconds, 0 when none), recipients due by now (not held) and deferred ones. */
struct queue_counts {
	uint64_t messages, held, rcpts_due, rcpts_deferred;
	int64_t oldest_arrival;
};
enum result queue_counts_read(struct queue *q, int64_t now, struct queue_counts *c_r, const char **error_r);
/* The deferred recipients (tried, to be tried again) and the oldest of them by its message's
 * arrival: its queue id, recipient, arrival and next attempt (unix seconds) and its last error
 * (malloc'd, NULL when none). *count_r 0 and nothing else set when there is none. RESULT_OK, or
 * RESULT_TEMPFAIL with *error_r. */
struct queue_deferred {
	char id[QUEUE_ID_LEN + 1];
	char *addr;
	int64_t arrival, next_attempt;
	char *last_error;
};
enum result queue_deferred_oldest(struct queue *q, uint64_t *count_r, struct queue_deferred *d_r, const char **error_r);

/* ---- Delivery (the runner's own struct queue, on its own thread) ---- */

/* Where a recipient goes: into a Maildir here (its domain is in the accounts database next to the
 * queue), or over SMTP to another host. */
enum queue_route {
	QUEUE_ROUTE_LOCAL = 0,
	QUEUE_ROUTE_REMOTE,
};

struct queue_due_rcpt {
	unsigned idx;
	char *addr;
	char *domain;      /* lower case */
	unsigned attempts;
	bool warned;       /* a delay warning has been sent for it */
	unsigned dsn_notify; /* RFC 3461 NOTIFY as stored (enum queue_dsn_notify; 0: not given) */
	char *dsn_orcpt;     /* RFC 3461 ORCPT "type;address" decoded, or NULL */
};

struct queue_due_msg {
	char id[QUEUE_ID_LEN + 1];
	char *sender;
	int64_t arrival;
	char *folder;                 /* "" or "Junk", as stored */
	bool no_dsn;                  /* as stored (struct queue_msg) */
	enum queue_dsn_ret dsn_ret;   /* RFC 3461 RET as stored */
	char *dsn_envid;              /* RFC 3461 ENVID decoded, or NULL */
	bool requiretls;              /* RFC 8689: MAIL FROM carried REQUIRETLS */
	bool tls_required_no;         /* RFC 8689 §5: "TLS-Required: No" from an authenticated sender */
	struct queue_due_rcpt *rcpts; /* remote: sorted by domain */
	size_t rcpt_count;
};

/* Due recipients (pending or deferred, next_attempt <= now) on route, oldest messages first, at most
 * max recipients in all, grouped by message.
 *
 * Remote recipients are claimed as they are returned: this connection does not return them again
 * until queue_rcpt_results() records them or queue_unclaim() lets them go, and it skips recipients
 * at held domains. Claims and holds live in memory with the connection, so after a crash everything
 * not recorded is due again at once (delivery is at-least-once). */
enum result queue_due(struct queue *q, enum queue_route route, int64_t now, size_t max,
		      struct queue_due_msg **msgs_r, size_t *count_r, const char **error_r);
void queue_due_free(struct queue_due_msg *msgs, size_t count);
/* The earliest next_attempt among recipients on route still to deliver (remote: neither claimed nor
 * held); 0 when there is none. */
enum result queue_next_due(struct queue *q, enum queue_route route, int64_t *t_r, const char **error_r);
/* Changes whenever another connection (another process, too: `mailwerk queue flush`) has committed
 * to the queue; cheap enough to ask often (SQLite's PRAGMA data_version). 0 on error. */
uint64_t queue_data_version(struct queue *q);
/* Lets a claimed recipient go without a result: it is due again as it was. */
void queue_unclaim(struct queue *q, const char *id, unsigned idx);
/* How many recipients of message id this connection has claimed (queue_due) and not yet recorded
 * or let go: recipients of an attempt in flight. 0 on a connection that never claimed. */
enum result queue_claimed_count(struct queue *q, const char *id, unsigned *count_r, const char **error_r);
/* Holds (queue_due skips) or releases a domain's remote recipients; they stay in the queue. */
enum result queue_domain_hold(struct queue *q, const char *domain, bool hold, const char **error_r);

struct queue_rcpt_result {
	const char *id;
	unsigned idx;
	enum queue_rcpt_state state; /* delivered, deferred or failed */
	int64_t next_attempt;        /* for deferred */
	const char *error;           /* NULL when delivered */
	bool warned;                 /* a delay warning for it goes out with this batch */
	/* for the message's events (tracked mail): */
	bool first;                  /* no attempt had been made before this one */
	const char *status;          /* the RFC 3463 code, or NULL */
	const char *reply;           /* the receiver's reply (also when delivered), or NULL */
	const char *mx;              /* the host that gave it; NULL when the text is ours */
};
/* Records results in one transaction (attempts + 1 each), inserts the add messages (the DSNs that
 * report failures, so a failure is never recorded without its report), removes every message
 * whose recipients are now all delivered or failed, and ends the claims on these recipients (also
 * when recording fails: they are then due again). Results of one message must be adjacent. The add
 * messages stay the caller's. */
enum result queue_rcpt_results(struct queue *q, const struct queue_rcpt_result *res, size_t n,
			       struct queue_msg *const *add, size_t n_add, const char **error_r);
/* The same, and in the same transaction the counts of the attempts' TLS sessions (TLS-RPT,
 * events/tlsrpt_sessions.h: so they are neither lost nor counted twice), each in its period of
 * tls_period seconds. tls may be NULL. Counts that cannot be written (a statement that fails)
 * are left out and *tls_lost_r set (it may be NULL): TLS reporting never costs a result. */
struct tlsrpt_sessions;
enum result queue_rcpt_results_tls(struct queue *q, const struct queue_rcpt_result *res, size_t n,
				   struct queue_msg *const *add, size_t n_add, const struct tlsrpt_sessions *tls,
				   unsigned tls_period, bool *tls_lost_r, const char **error_r);

/* ---- tracked messages (the HTTP API) ---- */

/* Cancels a scheduled message not yet attempted: it leaves the queue and gets a canceled event,
 * in one transaction. RESULT_OK; RESULT_PERMFAIL when it is not (or no longer) scheduled, with
 * the reason; RESULT_TEMPFAIL on a database error. *found_r: the email id is known. */
enum result queue_email_cancel(struct queue *q, const char *email_id, bool *found_r, const char **error_r);
/* Moves a scheduled message not yet attempted to at (unix seconds), with a scheduled event. */
enum result queue_email_reschedule(struct queue *q, const char *email_id, int64_t at, bool *found_r,
				   const char **error_r);
/* The connection the synchronous calls use, for the events readers (events.h). */
struct db *queue_db(struct queue *q);

#endif

/* events.h — what mailwerk remembers of a tracked message (one sent through the HTTP API): its
 * record and the history of each recipient, kept in queue.db next to the queue and written in
 * the same transactions as the queue state changes that cause them, so that no event is lost
 * and none is invented (the queue's store calls the writers below inside its transactions).
 *
 * Events (Resend's words): queued or scheduled when stored; sent at the first attempt to hand a
 * recipient to its receiver; then delivered (the receiver answered 2xx), delivery_delayed (4xx,
 * tried again later), bounced (the receiver refused for good, or gave up after retries), failed
 * (we could not try: no such domain, say), canceled. Pure storage: no protocol here. */
#ifndef MAILWERK_EVENTS_EVENTS_H
#define MAILWERK_EVENTS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


struct db;

#define EMAIL_ID_LEN 36 /* a UUID, as Resend's email ids */

enum email_event_type {
	EMAIL_EVENT_QUEUED = 0,
	EMAIL_EVENT_SCHEDULED,
	EMAIL_EVENT_SENT,
	EMAIL_EVENT_DELIVERED,
	EMAIL_EVENT_DELIVERY_DELAYED,
	EMAIL_EVENT_BOUNCED,
	EMAIL_EVENT_FAILED,
	EMAIL_EVENT_CANCELED,
	EMAIL_EVENT_SUPPRESSED,
	EMAIL_EVENT_COMPLAINED,
	EMAIL_EVENT_UNSUBSCRIBED, /* mailwerk's: RFC 8058 one-click; neither state nor last_event */
	EMAIL_EVENT_COUNT,
};
/* Resend's word: "queued", "delivery_delayed", ... */
const char *email_event_type_str(enum email_event_type t);

/* The record of a message, given with it to the queue (struct queue_msg's track). Strings are
 * UTF-8; the *_json members are JSON arrays as the API will show them (NULL: null). */
struct email_record {
	char id[EMAIL_ID_LEN + 1];
	char *api_key_id;  /* the key that sent it */
	char *from;        /* as given: "Name <a@b>" */
	char *subject;
	char *to_json, *cc_json, *bcc_json, *reply_to_json, *tags_json;
	char *html, *text;
	char *message_id;  /* without brackets */
	char *headers;     /* read back only: the header section as queued (CRLF lines), or NULL */
	int64_t created_at; /* unix milliseconds */
	int64_t scheduled_at; /* unix seconds, 0 when not scheduled */
	/* Idempotency-Key (scoped to the key): stored with the message, so a retry after a crash
	 * finds it; NULL when none */
	char *idem_key;
	unsigned char idem_hash[32]; /* SHA-256 of the request body */
	char *idem_response;         /* the answer the first request got */
	/* recipients not attempted, as they are on the suppression list: each gets a suppressed
	 * event (and a place among the recipients after the queue's own) */
	struct email_suppressed {
		char *addr;
		char *type;    /* the entry's origin: "bounce", "complaint", ... */
		char *message;
	} *suppressed;
	size_t suppressed_count;
};
/* Frees the members (the record read back in a view has no struct of its own), or all of it. */
void email_record_clear(struct email_record *r);
void email_record_free(struct email_record *r);
/* A new random (v4) UUID, lower-case. */
void email_id_new(char id_r[EMAIL_ID_LEN + 1]);

/* The schema, a step of queue.db's migrations (db.h). */
extern const char events_schema_sql[];
/* Step 11: the header section of each message as it was queued. */
extern const char events_headers_schema_sql[];

/* ---- writers: inside the caller's open transaction; SQLITE_OK or the error ---- */

/* The record, its recipients (the queue's, in queue order, then the suppressed ones) and the
 * first event of each; msg (msg_len octets, or NULL) is the message as queued, whose header
 * section is kept with the record (up to EVENTS_HEADER_MAX octets; a larger one is not). */
#define EVENTS_HEADER_MAX 65536
int events_email_insert(struct db *db, const char *queue_id, const struct email_record *r, const char *const *rcpts,
			size_t rcpt_count, const char *msg, size_t msg_len, int64_t now_ms);

/* One delivery attempt's outcome for recipient idx of queue message queue_id; nothing when the
 * message is not tracked. first: no attempt had been made (a sent event goes first). */
struct events_attempt {
	const char *queue_id;
	unsigned idx;
	bool first;
	enum email_event_type type; /* delivered, delivery_delayed, bounced or failed; a Permanent
				     * bounce puts the address on the domain's suppression list */
	const char *status;         /* RFC 3463 code, or NULL */
	const char *reply;          /* the receiver's reply text or our reason, or NULL */
	const char *mx;             /* the host that answered, or NULL */
	int64_t at_ms;
};
int events_attempt_record(struct db *db, const struct events_attempt *a);

/* What a report that came back later (a DSN, an ARF complaint) says about a message we sent. */
#define EMAIL_FEEDBACK_MAX 50
struct email_feedback {
	char email_id[EMAIL_ID_LEN + 1]; /* from the return path it came to; "" when unknown */
	char message_id[256];            /* the returned message's Message-ID, "" when none */
	struct email_feedback_item {
		char addr[256];           /* the recipient it is about ("": the only one) */
		enum email_event_type type; /* bounced, delivery_delayed or complained */
		char status[32];          /* RFC 3463 code; for complaints the ARF Feedback-Type */
		char reply[512];          /* the Diagnostic-Code */
		char mx[256];             /* the Remote-MTA */
	} items[EMAIL_FEEDBACK_MAX];
	size_t count;
};
/* Records each item as an event of the email's recipient (with the suppression a hard bounce or a
 * complaint brings); an unknown email or recipient is skipped. *matched_r: events recorded. */
int events_feedback_record(struct db *db, const struct email_feedback *fb, int64_t now_ms, unsigned *matched_r);

/* A one-click unsubscribe of addr from mail of domain: the suppression (origin unsubscribe) and,
 * when email_id is known and had addr, an unsubscribed event. Inside the caller's transaction. */
int events_unsubscribed(struct db *db, const char *email_id, const char *domain, const char *addr, int64_t now_ms);

/* A message-level event (canceled) for every recipient still pending; SQLITE_OK. */
int events_email_event(struct db *db, const char *email_id, enum email_event_type type, int64_t at_ms);

/* Removes the records (with their recipients and events) created before before_ms whose message
 * has left the queue, at most max of them, and idempotency keys older than 24 hours before now_ms;
 * one transaction. *pruned_r: records removed. 0, or -1 on a database error. */
int events_prune(struct db *db, int64_t before_ms, int64_t now_ms, unsigned max, unsigned *pruned_r);

/* ---- readers ---- */

struct email_event {
	enum email_event_type type;
	int64_t at_ms;
	char *detail_json; /* {"reply":…, "mx":…, "status":…, "bounce":{type, subType}} or NULL */
};

struct email_rcpt_view {
	char *addr;
	enum email_event_type state; /* the last event */
	struct email_event *events;
	size_t event_count;
};

struct email_view {
	struct email_record rec;
	char queue_id[32];
	enum email_event_type last_event;
	struct email_rcpt_view *rcpts;
	size_t rcpt_count;
};
void email_view_free(struct email_view *v);
void email_views_free(struct email_view *v, size_t n);

/* The message with this id (with recipients and events when full). 1 found, 0 not, -1 error. */
int events_email_get(struct db *db, const char *id, bool full, struct email_view *v_r);
/* What a list keeps (GET /emails's filters); every member unset (-1, NULL, 0) keeps all. */
struct email_filter {
	int status;              /* the email's last event (enum email_event_type), or -1 */
	const char *domain;      /* its From domain, lower-case */
	const char *recipient;   /* one of its recipients (any case) */
	const char *tag_name;    /* a tag it carries: this name ... */
	const char *tag_value;   /* ... with this value, or any when NULL */
	const char *search;      /* in its id, From, Subject or recipients, ASCII case-insensitive */
	int64_t since_ms, until_ms; /* created at or after since, before until */
};
/* Up to limit messages that pass f (NULL: all), newest first (in the order they were stored);
 * after: older than that id; before: newer than it (both NULL: from the newest). *has_more_r:
 * more lie beyond in the same direction. 1, 0 when the cursor id is unknown, -1 on error. A
 * filter that keeps few reads through the table: the list has no index but its order. */
int events_email_list(struct db *db, unsigned limit, const char *after, const char *before,
		      const struct email_filter *f, struct email_view **v_r, size_t *count_r, bool *has_more_r);
/* The event type named s (Resend's names), or -1. */
int email_event_type_parse(const char *s);

/* The idempotency record (api_key_id, key): 1 and the stored hash and response (malloc'd), 0
 * when none (or older than max_age_ms), -1 on error. */
int events_idempotency_find(struct db *db, const char *api_key_id, const char *key, int64_t now_ms,
			    int64_t max_age_ms, unsigned char hash_r[32], char **response_r);

#endif

/* test_events.c — the records and per-recipient events of tracked messages (src/events/events.c,
 * events_read.c), the suppression list (suppressions.c), and the queue calls that change a
 * scheduled message (queue_email_cancel, queue_email_reschedule), against a real queue.db in a
 * temporary data directory. The writers run inside transactions opened here on queue_db(q), as the
 * queue's own store runs them; scheduled messages go through queue_msg_store and the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <sqlite3.h>

#include "db/db.h"
#include "events/events.h"
#include "events/suppressions.h"
#include "queue/queue.h"
#include "util/loopq.h"

/* A check that says, when it fails, which rule the code broke. */
#define CHECK_WHY(ok, ...)                                          \
	do {                                                        \
		if (!(ok)) {                                        \
			print_message(__VA_ARGS__);   \
			print_message("\n");                        \
			fail();                                     \
		}                                                   \
	} while (0)

/* ---- fixture ---- */

struct test_ctx {
	char dir[64];
	struct event_base *base;
	struct loopq *lq;
	struct queue *q;
	struct db *db;
	unsigned outstanding;
	bool timed_out;
};

static int test_setup(void **state)
{
	struct test_ctx *t = calloc(1, sizeof(*t));
	const char *err = NULL;
	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/mailwerk-test-events-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->base = event_base_new();
	assert_non_null(t->base);
	t->lq = loopq_new(t->base);
	assert_non_null(t->lq);
	t->q = queue_open(t->dir, &err);
	if (t->q == NULL)
		fail_msg("queue_open: %s", err);
	assert_int_equal(queue_writer_start(t->q, t->lq, &err), 0);
	t->db = queue_db(t->q);
	assert_non_null(t->db);
	*state = t;
	return 0;
}

static int test_teardown(void **state)
{
	struct test_ctx *t = *state;
	static const char *const names[] = {"queue.db", "queue.db-wal", "queue.db-shm", "queue.db-journal"};
	char path[128];
	queue_close(t->q);
	loopq_free(t->lq);
	event_base_free(t->base);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", t->dir, names[i]);
		unlink(path);
	}
	rmdir(t->dir);
	free(t);
	return 0;
}

/* ---- helpers ---- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct email_record *rec_new(const char *from, int64_t scheduled_at)
{
	struct email_record *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	email_id_new(r->id);
	r->api_key_id = xstrdup("key-1");
	r->from = xstrdup(from);
	r->subject = xstrdup("Hello");
	r->to_json = xstrdup("[\"a@x.org\",\"b@y.org\"]");
	r->html = xstrdup("<p>Hi</p>");
	r->text = xstrdup("Hi");
	r->message_id = xstrdup("abc@mailwerk.test");
	r->created_at = 1700000000123;
	r->scheduled_at = scheduled_at;
	return r;
}

static void rec_suppress(struct email_record *r, const char *addr, const char *type, const char *message)
{
	struct email_suppressed *s = realloc(r->suppressed, (r->suppressed_count + 1) * sizeof(*s));
	assert_non_null(s);
	r->suppressed = s;
	s[r->suppressed_count].addr = xstrdup(addr);
	s[r->suppressed_count].type = xstrdup(type);
	s[r->suppressed_count].message = xstrdup(message);
	r->suppressed_count++;
}

static void exec_sql(struct test_ctx *t, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db_sqlite(t->db), sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err != NULL ? err : "?");
}

/* The message the records below were queued with. */
static const char test_msg[] = "From: Acme <News@Example.COM>\r\nSubject: Hello\r\n\r\n<p>Hi</p>\r\n";

/* events_email_insert in its own transaction, as the store does it */
static void insert(struct test_ctx *t, const char *queue_id, const struct email_record *r, const char *const *rcpts,
		   size_t n, int64_t at)
{
	exec_sql(t, "BEGIN IMMEDIATE");
	assert_int_equal(events_email_insert(t->db, queue_id, r, rcpts, n, test_msg, sizeof(test_msg) - 1, at),
			 SQLITE_OK);
	exec_sql(t, "COMMIT");
}

static int attempt(struct test_ctx *t, const struct events_attempt *a)
{
	exec_sql(t, "BEGIN IMMEDIATE");
	int rc = events_attempt_record(t->db, a);
	exec_sql(t, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK");
	return rc;
}

static int64_t count(struct test_ctx *t, const char *sql)
{
	int64_t n = -1;
	assert_int_equal(db_int64(t->db, sql, &n), SQLITE_OK);
	return n;
}

static void view_get(struct test_ctx *t, const char *id, bool full, struct email_view *v)
{
	memset(v, 0, sizeof(*v));
	assert_int_equal(events_email_get(t->db, id, full, v), 1);
}

/* The events of a recipient, as types in order, are want[0..n). */
static void events_are(const struct email_rcpt_view *rv, const enum email_event_type *want, size_t n)
{
	if (rv->event_count != n) {
		char got[256] = "";
		for (size_t i = 0; i < rv->event_count; i++) {
			strncat(got, email_event_type_str(rv->events[i].type), sizeof(got) - strlen(got) - 2);
			strncat(got, " ", sizeof(got) - strlen(got) - 1);
		}
		fail_msg("%s: %zu events (%s), want %zu", rv->addr, rv->event_count, got, n);
	}
	for (size_t i = 0; i < n; i++)
		if (rv->events[i].type != want[i])
			fail_msg("%s: event %zu is %s, want %s", rv->addr, i, email_event_type_str(rv->events[i].type),
				 email_event_type_str(want[i]));
}

/* The detail's JSON, parsed. */
static json_t *detail(const struct email_event *e)
{
	assert_non_null(e->detail_json);
	json_error_t jerr;
	json_t *j = json_loads(e->detail_json, 0, &jerr);
	if (j == NULL)
		fail_msg("detail \"%s\": %s", e->detail_json, jerr.text);
	return j;
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);
	if (path2 != NULL)
		v = json_object_get(v, path2);
	return json_string_value(v);
}

/* ---- records and their first events ---- */

static void test_insert_and_get(void **state)
{
	struct test_ctx *t = *state;
	char qid[QUEUE_ID_LEN + 1];
	queue_id_new(qid);
	struct email_record *r = rec_new("Acme <News@Example.COM>", 0);
	rec_suppress(r, "c@z.org", "bounce", "The address bounced before.");
	const char *rcpts[] = {"a@x.org", "b@y.org"};
	int64_t at = now_ms();
	insert(t, qid, r, rcpts, 2, at);

	struct email_view v;
	view_get(t, r->id, true, &v);
	assert_string_equal(v.rec.id, r->id);
	assert_string_equal(v.queue_id, qid);
	assert_string_equal(v.rec.api_key_id, "key-1");
	assert_string_equal(v.rec.from, "Acme <News@Example.COM>");
	assert_string_equal(v.rec.subject, "Hello");
	assert_string_equal(v.rec.to_json, "[\"a@x.org\",\"b@y.org\"]");
	assert_null(v.rec.cc_json);
	assert_string_equal(v.rec.html, "<p>Hi</p>");
	assert_string_equal(v.rec.text, "Hi");
	assert_string_equal(v.rec.message_id, "abc@mailwerk.test");
	assert_int_equal(v.rec.created_at, 1700000000123);
	assert_int_equal(v.rec.scheduled_at, 0);
	assert_int_equal(v.last_event, EMAIL_EVENT_QUEUED);
	/* the header section as queued, up to and with its empty line */
	assert_string_equal(v.rec.headers, "From: Acme <News@Example.COM>\r\nSubject: Hello\r\n\r\n");

	assert_int_equal(v.rcpt_count, 3);
	assert_string_equal(v.rcpts[0].addr, "a@x.org");
	assert_string_equal(v.rcpts[1].addr, "b@y.org");
	assert_string_equal(v.rcpts[2].addr, "c@z.org");
	assert_int_equal(v.rcpts[0].state, EMAIL_EVENT_QUEUED);
	assert_int_equal(v.rcpts[1].state, EMAIL_EVENT_QUEUED);
	assert_int_equal(v.rcpts[2].state, EMAIL_EVENT_SUPPRESSED);
	static const enum email_event_type queued[] = {EMAIL_EVENT_QUEUED};
	events_are(&v.rcpts[0], queued, 1);
	events_are(&v.rcpts[1], queued, 1);
	assert_null(v.rcpts[0].events[0].detail_json);
	assert_int_equal(v.rcpts[0].events[0].at_ms, at);

	/* the suppressed one says why */
	const struct email_event *sup = NULL;
	for (size_t i = 0; i < v.rcpts[2].event_count; i++)
		if (v.rcpts[2].events[i].type == EMAIL_EVENT_SUPPRESSED)
			sup = &v.rcpts[2].events[i];
	assert_non_null(sup);
	json_t *d = detail(sup);
	assert_string_equal(jstr(d, "suppressed", "type"), "bounce");
	assert_string_equal(jstr(d, "suppressed", "message"), "The address bounced before.");
	assert_int_equal(json_object_size(d), 1);
	json_decref(d);
	email_view_free(&v);

	/* not full: the record alone */
	view_get(t, r->id, false, &v);
	assert_int_equal(v.rcpt_count, 0);
	assert_null(v.rcpts);
	assert_null(v.rec.html);
	assert_null(v.rec.text);
	assert_string_equal(v.rec.subject, "Hello");
	assert_int_equal(v.last_event, EMAIL_EVENT_QUEUED);
	email_view_free(&v);

	/* unknown ids */
	assert_int_equal(events_email_get(t->db, "00000000-0000-4000-8000-000000000000", true, &v), 0);
	assert_int_equal(events_email_get(t->db, "", false, &v), 0);
	email_record_free(r);
}

/* Every recipient suppressed: nothing is queued, the record says so. */
static void test_insert_all_suppressed(void **state)
{
	struct test_ctx *t = *state;
	struct email_record *r = rec_new("a@example.com", 0);
	rec_suppress(r, "x@y.org", "complaint", "Complained.");
	insert(t, "QID-NONE", r, NULL, 0, now_ms());
	struct email_view v;
	view_get(t, r->id, true, &v);
	assert_int_equal(v.last_event, EMAIL_EVENT_SUPPRESSED);
	assert_int_equal(v.rcpt_count, 1);
	static const enum email_event_type want[] = {EMAIL_EVENT_SUPPRESSED};
	events_are(&v.rcpts[0], want, 1);
	email_view_free(&v);
	email_record_free(r);
}

/* A suppressed recipient was never queued: its history is its suppressed event alone. */
static void test_bug_suppressed_rcpt_gets_queued_event(void **state)
{
	struct test_ctx *t = *state;
	struct email_record *r = rec_new("a@example.com", 0);
	rec_suppress(r, "c@z.org", "bounce", "Bounced.");
	const char *rcpts[] = {"a@x.org"};
	insert(t, "QID-SUPQ", r, rcpts, 1, now_ms());
	struct email_view v;
	view_get(t, r->id, true, &v);
	assert_int_equal(v.rcpt_count, 2);
	const struct email_rcpt_view *rv = &v.rcpts[1];
	bool only_suppressed = rv->event_count == 1 && rv->events[0].type == EMAIL_EVENT_SUPPRESSED;
	enum email_event_type last = rv->event_count > 0 ? rv->events[rv->event_count - 1].type : EMAIL_EVENT_COUNT;
	email_view_free(&v);
	email_record_free(r);
	CHECK_WHY(only_suppressed,
		  "events_email_insert/rcpts_read: the message-level queued event (rcpt_idx -1, inserted after "
		  "the suppressed events) is given to the suppressed recipient too, so its history reads "
		  "suppressed, then %s, while its state is suppressed",
		  email_event_type_str(last));
}

/* ---- attempts ---- */

static void test_attempt_delivered(void **state)
{
	struct test_ctx *t = *state;
	struct email_record *r = rec_new("Acme <news@example.com>", 0);
	const char *rcpts[] = {"a@x.org", "b@y.org"};
	insert(t, "QID-DELIV", r, rcpts, 2, now_ms());

	struct events_attempt a = {
		.queue_id = "QID-DELIV",
		.idx = 0,
		.first = true,
		.type = EMAIL_EVENT_DELIVERED,
		.status = "2.0.0",
		.reply = "250 2.0.0 Ok: queued as 4Xyz",
		.mx = "mx1.x.org",
		.at_ms = now_ms(),
	};
	assert_int_equal(attempt(t, &a), SQLITE_OK);

	struct email_view v;
	view_get(t, r->id, true, &v);
	assert_int_equal(v.last_event, EMAIL_EVENT_DELIVERED);
	assert_int_equal(v.rcpts[0].state, EMAIL_EVENT_DELIVERED);
	assert_int_equal(v.rcpts[1].state, EMAIL_EVENT_QUEUED);
	static const enum email_event_type want0[] = {EMAIL_EVENT_QUEUED, EMAIL_EVENT_SENT, EMAIL_EVENT_DELIVERED};
	static const enum email_event_type want1[] = {EMAIL_EVENT_QUEUED};
	events_are(&v.rcpts[0], want0, 3);
	events_are(&v.rcpts[1], want1, 1);
	assert_null(v.rcpts[0].events[1].detail_json);
	assert_int_equal(v.rcpts[0].events[2].at_ms, a.at_ms);
	json_t *d = detail(&v.rcpts[0].events[2]);
	assert_string_equal(jstr(d, "reply", NULL), "250 2.0.0 Ok: queued as 4Xyz");
	assert_string_equal(jstr(d, "mx", NULL), "mx1.x.org");
	assert_string_equal(jstr(d, "status", NULL), "2.0.0");
	assert_null(json_object_get(d, "bounce"));
	json_decref(d);
	email_view_free(&v);

	/* a later attempt (first false): no second sent event */
	a.idx = 1, a.first = true, a.type = EMAIL_EVENT_DELIVERY_DELAYED, a.status = "4.4.1";
	a.reply = "connect to mx.y.org: Connection timed out", a.mx = NULL;
	assert_int_equal(attempt(t, &a), SQLITE_OK);
	a.first = false, a.type = EMAIL_EVENT_DELIVERED, a.status = NULL, a.reply = "250 ok", a.mx = "mx.y.org";
	assert_int_equal(attempt(t, &a), SQLITE_OK);
	view_get(t, r->id, true, &v);
	static const enum email_event_type want1b[] = {EMAIL_EVENT_QUEUED, EMAIL_EVENT_SENT,
						       EMAIL_EVENT_DELIVERY_DELAYED, EMAIL_EVENT_DELIVERED};
	events_are(&v.rcpts[1], want1b, 4);
	d = detail(&v.rcpts[1].events[2]);
	assert_string_equal(jstr(d, "reply", NULL), "connect to mx.y.org: Connection timed out");
	assert_null(json_object_get(d, "mx"));
	json_decref(d);
	assert_int_equal(v.rcpts[1].state, EMAIL_EVENT_DELIVERED);
	email_view_free(&v);
	/* nothing delivered: no suppression */
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 0);
	email_record_free(r);
}

/* An attempt with nothing to say has no detail. */
static void test_attempt_no_detail(void **state)
{
	struct test_ctx *t = *state;
	struct email_record *r = rec_new("a@example.com", 0);
	const char *rcpts[] = {"a@x.org"};
	insert(t, "QID-NODETAIL", r, rcpts, 1, now_ms());
	struct events_attempt a = {.queue_id = "QID-NODETAIL", .first = false, .type = EMAIL_EVENT_DELIVERED, .at_ms = 5};
	assert_int_equal(attempt(t, &a), SQLITE_OK);
	struct email_view v;
	view_get(t, r->id, true, &v);
	assert_int_equal(v.rcpts[0].event_count, 2);
	assert_null(v.rcpts[0].events[1].detail_json);
	email_view_free(&v);
	email_record_free(r);
}

static void test_attempt_bounce_permanent(void **state)
{
	struct test_ctx *t = *state;
	struct email_record *r = rec_new("Acme <News@Example.COM>", 0);
	const char *rcpts[] = {"a@x.org", "Bob@Y.org"};
	insert(t, "QID-BOUNCE", r, rcpts, 2, now_ms());
	struct events_attempt a = {
		.queue_id = "QID-BOUNCE",
		.idx = 1,
		.first = true,
		.type = EMAIL_EVENT_BOUNCED,
		.status = "5.1.1",
		.reply = "550 5.1.1 <Bob@Y.org>: Recipient address rejected: User unknown",
		.mx = "mx.y.org",
		.at_ms = now_ms(),
	};
	assert_int_equal(attempt(t, &a), SQLITE_OK);

	struct email_view v;
	view_get(t, r->id, true, &v);
	assert_int_equal(v.last_event, EMAIL_EVENT_BOUNCED);
	assert_int_equal(v.rcpts[1].state, EMAIL_EVENT_BOUNCED);
	assert_int_equal(v.rcpts[0].state, EMAIL_EVENT_QUEUED);
	static const enum email_event_type want[] = {EMAIL_EVENT_QUEUED, EMAIL_EVENT_SENT, EMAIL_EVENT_BOUNCED};
	events_are(&v.rcpts[1], want, 3);
	json_t *d = detail(&v.rcpts[1].events[2]);
	assert_string_equal(jstr(d, "bounce", "type"), "Permanent");
	assert_string_equal(jstr(d, "bounce", "subType"), "NoEmail");
	assert_string_equal(jstr(d, "bounce", "message"), a.reply);
	assert_string_equal(jstr(d, "status", NULL), "5.1.1");
	assert_string_equal(jstr(d, "mx", NULL), "mx.y.org");
	json_decref(d);
	email_view_free(&v);

	/* the address joins the From domain's list, from this email, in the same transaction */
	struct suppression s;
	assert_int_equal(suppression_find(t->db, "example.com", "bob@y.org", &s), 1);
	assert_string_equal(s.domain, "example.com");
	assert_string_equal(s.email, "bob@y.org");
	assert_int_equal(s.origin, SUPPRESSION_BOUNCE);
	assert_string_equal(s.source_id, r->id);
	assert_int_equal(s.created_at, a.at_ms);
	assert_int_equal(strlen(s.id), EMAIL_ID_LEN);
	/* another sending domain is not stopped */
	assert_int_equal(suppression_find(t->db, "other.example", "bob@y.org", &s), 0);
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 1);

	/* the same bounce again (a retry of the batch): still one entry */
	a.first = false;
	assert_int_equal(attempt(t, &a), SQLITE_OK);
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 1);
	email_record_free(r);
}

/* Bounces that are not Permanent leave the address alone. */
static void test_attempt_bounce_not_permanent(void **state)
{
	struct test_ctx *t = *state;
	static const struct {
		const char *status, *reply, *type, *sub;
	} cases[] = {
		{"5.2.2", "552 5.2.2 Mailbox full", "Transient", "MailboxFull"},
		{"4.4.7", "Delivery time expired", "Transient", "General"},
		{NULL, "550 User unknown", "Undetermined", "NoEmail"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char qid[32];
		snprintf(qid, sizeof(qid), "QID-SOFT-%zu", i);
		struct email_record *r = rec_new("a@example.com", 0);
		const char *rcpts[] = {"full@x.org"};
		insert(t, qid, r, rcpts, 1, now_ms());
		struct events_attempt a = {.queue_id = qid, .first = true, .type = EMAIL_EVENT_BOUNCED,
					   .status = cases[i].status, .reply = cases[i].reply, .mx = "mx.x.org",
					   .at_ms = now_ms()};
		assert_int_equal(attempt(t, &a), SQLITE_OK);
		struct email_view v;
		view_get(t, r->id, true, &v);
		json_t *d = detail(&v.rcpts[0].events[2]);
		assert_string_equal(jstr(d, "bounce", "type"), cases[i].type);
		assert_string_equal(jstr(d, "bounce", "subType"), cases[i].sub);
		json_decref(d);
		email_view_free(&v);
		email_record_free(r);
	}
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 0);
}

/* A Permanent bounce we decided (no mx) still suppresses: the code is what counts. */
static void test_attempt_failed_and_local_bounce(void **state)
{
	struct test_ctx *t = *state;
	struct email_record *r = rec_new("a@example.com", 0);
	const char *rcpts[] = {"x@nowhere.invalid", "y@x.org"};
	insert(t, "QID-FAIL", r, rcpts, 2, now_ms());
	struct events_attempt a = {.queue_id = "QID-FAIL", .idx = 0, .first = true, .type = EMAIL_EVENT_FAILED,
				   .status = "5.1.2", .reply = "no such domain", .at_ms = now_ms()};
	assert_int_equal(attempt(t, &a), SQLITE_OK);
	/* failed is not a bounce: no suppression, no bounce object */
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 0);
	struct email_view v;
	view_get(t, r->id, true, &v);
	assert_int_equal(v.rcpts[0].state, EMAIL_EVENT_FAILED);
	json_t *d = detail(&v.rcpts[0].events[2]);
	assert_null(json_object_get(d, "bounce"));
	json_decref(d);
	email_view_free(&v);

	a.idx = 1, a.type = EMAIL_EVENT_BOUNCED, a.status = "5.1.1", a.reply = "User unknown", a.mx = NULL;
	assert_int_equal(attempt(t, &a), SQLITE_OK);
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions WHERE email = 'y@x.org'"), 1);
	email_record_free(r);
}

static void test_attempt_untracked(void **state)
{
	struct test_ctx *t = *state;
	struct email_record *r = rec_new("a@example.com", 0);
	const char *rcpts[] = {"a@x.org"};
	insert(t, "QID-TRACKED", r, rcpts, 1, now_ms());
	int64_t before = count(t, "SELECT count(*) FROM events");
	struct events_attempt a = {.queue_id = "QID-NOT-TRACKED", .first = true, .type = EMAIL_EVENT_BOUNCED,
				   .status = "5.1.1", .reply = "User unknown", .mx = "mx", .at_ms = 1};
	assert_int_equal(attempt(t, &a), SQLITE_OK);
	assert_int_equal(count(t, "SELECT count(*) FROM events"), before);
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 0);
	struct email_view v;
	view_get(t, r->id, false, &v);
	assert_int_equal(v.last_event, EMAIL_EVENT_QUEUED);
	email_view_free(&v);
	email_record_free(r);
}

/* ---- the list ---- */

static void list_ids_are(struct email_view *v, size_t n, char ids[][EMAIL_ID_LEN + 1], int from, int to)
{
	/* v[0..n) are ids[from], ids[from - 1], ... ids[to] (newest first) */
	assert_int_equal(n, (size_t)(from - to + 1));
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].rec.id, ids[from - (int)i]) != 0)
			fail_msg("list item %zu is %s, want ids[%d]", i, v[i].rec.id, from - (int)i);
}

static void test_list_pages(void **state)
{
	struct test_ctx *t = *state;
	char ids[25][EMAIL_ID_LEN + 1];
	const char *rcpts[] = {"a@x.org"};
	exec_sql(t, "BEGIN IMMEDIATE");
	for (int i = 0; i < 25; i++) {
		struct email_record *r = rec_new("a@example.com", 0);
		r->created_at = 1700000000000; /* one batch: the same creation time, the order of storing decides */
		char qid[32];
		snprintf(qid, sizeof(qid), "QID-LIST-%02d", i);
		assert_int_equal(events_email_insert(t->db, qid, r, rcpts, 1, NULL, 0, 1), SQLITE_OK);
		memcpy(ids[i], r->id, sizeof(ids[i]));
		email_record_free(r);
	}
	exec_sql(t, "COMMIT");

	struct email_view *v;
	size_t n;
	bool more;
	/* forward: newest first */
	assert_int_equal(events_email_list(t->db, 10, NULL, NULL, NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 24, 15);
	assert_true(more);
	assert_null(v[0].rcpts); /* the list has no recipients */
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 10, ids[15], NULL, NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 14, 5);
	assert_true(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 10, ids[5], NULL, NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 4, 0);
	assert_false(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 10, ids[0], NULL, NULL, &v, &n, &more), 1);
	assert_int_equal(n, 0);
	assert_false(more);
	email_views_free(v, n);
	/* back: still newest first within the page */
	assert_int_equal(events_email_list(t->db, 10, NULL, ids[4], NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 14, 5);
	assert_true(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 10, NULL, ids[14], NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 24, 15);
	assert_false(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 10, NULL, ids[20], NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 24, 21);
	assert_false(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 10, NULL, ids[24], NULL, &v, &n, &more), 1);
	assert_int_equal(n, 0);
	assert_false(more);
	email_views_free(v, n);
	/* exactly the rest, or one fewer */
	assert_int_equal(events_email_list(t->db, 25, NULL, NULL, NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 24, 0);
	assert_false(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 24, NULL, NULL, NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 24, 1);
	assert_true(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 1, ids[1], NULL, NULL, &v, &n, &more), 1);
	list_ids_are(v, n, ids, 0, 0);
	assert_false(more);
	email_views_free(v, n);
	/* an unknown cursor */
	assert_int_equal(events_email_list(t->db, 10, "no-such-id", NULL, NULL, &v, &n, &more), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	assert_int_equal(events_email_list(t->db, 10, NULL, "no-such-id", NULL, &v, &n, &more), 0);
	assert_int_equal(n, 0);
}

/* A header section over EVENTS_HEADER_MAX is not kept (the record still is); none without a message. */
static void test_headers_too_large(void **state)
{
	struct test_ctx *t = *state;
	size_t len = EVENTS_HEADER_MAX + 100;
	char *msg = malloc(len + 4);
	assert_non_null(msg);
	memcpy(msg, "X-Big: ", 7);
	memset(msg + 7, 'a', len - 7);
	memcpy(msg + len, "\r\n\r\n", 4);
	const char *rcpts[] = {"a@x.org"};
	struct email_record *big = rec_new("a@example.com", 0), *none = rec_new("a@example.com", 0);
	exec_sql(t, "BEGIN IMMEDIATE");
	assert_int_equal(events_email_insert(t->db, "QID-BIG", big, rcpts, 1, msg, len + 4, 1), SQLITE_OK);
	assert_int_equal(events_email_insert(t->db, "QID-NONE", none, rcpts, 1, NULL, 0, 1), SQLITE_OK);
	exec_sql(t, "COMMIT");
	free(msg);
	struct email_view v;
	view_get(t, big->id, true, &v);
	assert_null(v.rec.headers);
	email_view_free(&v);
	view_get(t, none->id, true, &v);
	assert_null(v.rec.headers);
	email_view_free(&v);
	email_record_free(big);
	email_record_free(none);
}

/* The list's filters: each keeps what it names, they combine, hostile text is only text. */
static void test_list_filters(void **state)
{
	struct test_ctx *t = *state;
	struct {
		const char *from, *subject, *tags, *rcpt;
		int64_t at;
	} rows[] = {
		{"News <n@Example.com>", "Welcome aboard", "[{\"name\":\"category\",\"value\":\"welcome\"}]", "ann@x.org",
		 1700000000000},
		{"b@other.org", "Your invoice", "[{\"name\":\"category\",\"value\":\"billing\"}]", "Bob@Y.org", 1700000100000},
		{"c@example.com", "100% off", NULL, "carl@x.org", 1700000200000},
	};
	char ids[3][EMAIL_ID_LEN + 1];
	exec_sql(t, "BEGIN IMMEDIATE");
	for (int i = 0; i < 3; i++) {
		struct email_record *r = rec_new(rows[i].from, 0);
		free(r->subject);
		r->subject = xstrdup(rows[i].subject);
		r->tags_json = rows[i].tags != NULL ? xstrdup(rows[i].tags) : NULL;
		r->created_at = rows[i].at;
		free(r->to_json);
		assert_true(asprintf(&r->to_json, "[\"%s\"]", rows[i].rcpt) > 0);
		const char *rcpts[] = {rows[i].rcpt};
		char qid[32];
		snprintf(qid, sizeof(qid), "QID-FILTER-%d", i);
		assert_int_equal(events_email_insert(t->db, qid, r, rcpts, 1, NULL, 0, 1), SQLITE_OK);
		memcpy(ids[i], r->id, sizeof(ids[i]));
		email_record_free(r);
	}
	exec_sql(t, "COMMIT");
	exec_sql(t, "UPDATE emails SET last_event = 3 WHERE subject = 'Your invoice'"); /* delivered */

	struct {
		struct email_filter f;
		int want[3]; /* indexes into ids, newest first, -1 ends */
	} cases[] = {
		{{.status = -1}, {2, 1, 0}},
		{{.status = EMAIL_EVENT_DELIVERED}, {1, -1}},
		{{.status = EMAIL_EVENT_QUEUED}, {2, 0, -1}},
		{{.status = -1, .domain = "example.com"}, {2, 0, -1}},
		{{.status = -1, .recipient = "bob@y.org"}, {1, -1}},
		{{.status = -1, .tag_name = "category"}, {1, 0, -1}},
		{{.status = -1, .tag_name = "category", .tag_value = "welcome"}, {0, -1}},
		{{.status = -1, .tag_name = "welcome"}, {-1}},
		{{.status = -1, .search = "INVOICE"}, {1, -1}},
		{{.status = -1, .search = "carl@"}, {2, -1}},
		{{.status = -1, .search = "100%"}, {2, -1}},
		{{.status = -1, .search = "%"}, {2, -1}},
		{{.status = -1, .search = "' OR 1=1 --"}, {-1}},
		{{.status = -1, .since_ms = 1700000100000}, {2, 1, -1}},
		{{.status = -1, .until_ms = 1700000100000}, {0, -1}},
		{{.status = -1, .domain = "example.com", .since_ms = 1700000000001}, {2, -1}},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct email_view *v;
		size_t n;
		bool more;
		assert_int_equal(events_email_list(t->db, 10, NULL, NULL, &cases[c].f, &v, &n, &more), 1);
		size_t want = 0;
		while (want < 3 && cases[c].want[want] >= 0)
			want++;
		if (n != want)
			fail_msg("case %zu: %zu emails, want %zu", c, n, want);
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].rec.id, ids[cases[c].want[i]]) != 0)
				fail_msg("case %zu: item %zu is not ids[%d]", c, i, cases[c].want[i]);
		email_views_free(v, n);
	}
	/* a filter does not stay with the cached statement */
	struct email_view *v;
	size_t n;
	bool more;
	assert_int_equal(events_email_list(t->db, 10, NULL, NULL, NULL, &v, &n, &more), 1);
	assert_int_equal(n, 3);
	email_views_free(v, n);
	/* a cursor and a filter: older than the newest, from example.com */
	struct email_filter f = {.status = -1, .domain = "example.com"};
	assert_int_equal(events_email_list(t->db, 1, ids[2], NULL, &f, &v, &n, &more), 1);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].rec.id, ids[0]);
	assert_false(more);
	email_views_free(v, n);
	assert_int_equal(events_email_list(t->db, 1, NULL, NULL, &f, &v, &n, &more), 1);
	assert_true(more);
	email_views_free(v, n);
}

/* ---- idempotency ---- */

static void test_idempotency(void **state)
{
	struct test_ctx *t = *state;
	const int64_t day = 24 * 3600 * 1000LL, at = 1700000000000;
	struct email_record *r = rec_new("a@example.com", 0);
	r->idem_key = xstrdup("order-42");
	for (int i = 0; i < 32; i++)
		r->idem_hash[i] = (unsigned char)(i * 7 + 1);
	r->idem_response = xstrdup("{\"id\":\"x\"}");
	const char *rcpts[] = {"a@x.org"};
	insert(t, "QID-IDEM", r, rcpts, 1, at);

	unsigned char hash[32];
	char *resp = NULL;
	assert_int_equal(events_idempotency_find(t->db, "key-1", "order-42", at + 1000, day, hash, &resp), 1);
	assert_memory_equal(hash, r->idem_hash, 32);
	assert_string_equal(resp, "{\"id\":\"x\"}");
	free(resp);
	/* the edge of max_age is still in; past it, expired */
	resp = NULL;
	assert_int_equal(events_idempotency_find(t->db, "key-1", "order-42", at + day, day, hash, &resp), 1);
	free(resp);
	resp = NULL;
	assert_int_equal(events_idempotency_find(t->db, "key-1", "order-42", at + day + 1, day, hash, &resp), 0);
	assert_null(resp);
	/* scoped to the key */
	assert_int_equal(events_idempotency_find(t->db, "key-1", "order-43", at, day, hash, &resp), 0);
	assert_int_equal(events_idempotency_find(t->db, "key-2", "order-42", at, day, hash, &resp), 0);
	assert_int_equal(events_idempotency_find(t->db, "key-1", "ORDER-42", at, day, hash, &resp), 0);
	assert_null(resp);
	email_record_free(r);

	/* no key id: stored under "" */
	r = rec_new("a@example.com", 0);
	free(r->api_key_id);
	r->api_key_id = NULL;
	r->idem_key = xstrdup("k");
	insert(t, "QID-IDEM2", r, rcpts, 1, at);
	resp = NULL;
	assert_int_equal(events_idempotency_find(t->db, "", "k", at, day, hash, &resp), 1);
	assert_string_equal(resp, ""); /* no response given */
	free(resp);
	email_record_free(r);
}

/* ---- suppressions ---- */

static void test_suppression_add_find(void **state)
{
	struct test_ctx *t = *state;
	struct suppression s, s2;
	bool existed = true;
	assert_int_equal(suppression_add(t->db, "Example.COM", "Bob@X.org", SUPPRESSION_MANUAL, NULL, 1000, &s, &existed),
			 SQLITE_OK);
	assert_false(existed);
	assert_int_equal(strlen(s.id), EMAIL_ID_LEN);
	assert_string_equal(s.domain, "example.com");
	assert_string_equal(s.email, "bob@x.org");
	assert_int_equal(s.origin, SUPPRESSION_MANUAL);
	assert_string_equal(s.source_id, "");
	assert_int_equal(s.created_at, 1000);

	/* twice (in any case): the old entry */
	assert_int_equal(suppression_add(t->db, "example.com", "BOB@x.ORG", SUPPRESSION_BOUNCE, "src", 2000, &s2, &existed),
			 SQLITE_OK);
	assert_true(existed);
	assert_string_equal(s2.id, s.id);
	assert_int_equal(s2.origin, SUPPRESSION_MANUAL);
	assert_int_equal(s2.created_at, 1000);
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 1);

	/* find: the domain's own entry, case-insensitive */
	assert_int_equal(suppression_find(t->db, "EXAMPLE.com", "bOb@x.org", &s2), 1);
	assert_string_equal(s2.id, s.id);
	assert_int_equal(suppression_find(t->db, "other.org", "bob@x.org", &s2), 0);
	assert_int_equal(suppression_find(t->db, "example.com", "carol@x.org", &s2), 0);
	assert_int_equal(suppression_find(t->db, "", "bob@x.org", &s2), 0);

	/* an every-domain entry stops every domain; the domain's own is preferred */
	struct suppression all;
	assert_int_equal(suppression_add(t->db, "", "bob@x.org", SUPPRESSION_COMPLAINT, "e1", 3000, &all, &existed),
			 SQLITE_OK);
	assert_false(existed);
	assert_string_not_equal(all.id, s.id);
	assert_int_equal(suppression_find(t->db, "other.org", "BOB@x.org", &s2), 1);
	assert_string_equal(s2.id, all.id);
	assert_string_equal(s2.domain, "");
	assert_int_equal(s2.origin, SUPPRESSION_COMPLAINT);
	assert_string_equal(s2.source_id, "e1");
	assert_int_equal(suppression_find(t->db, "example.com", "bob@x.org", &s2), 1);
	assert_string_equal(s2.id, s.id);
	assert_int_equal(suppression_find(t->db, "", "bob@x.org", &s2), 1);
	assert_string_equal(s2.id, all.id);

	/* get: by id, or the first entry of an address */
	assert_int_equal(suppression_get(t->db, all.id, &s2), 1);
	assert_string_equal(s2.id, all.id);
	assert_int_equal(suppression_get(t->db, "BOB@X.ORG", &s2), 1);
	assert_string_equal(s2.id, s.id);
	assert_int_equal(suppression_get(t->db, "nobody@x.org", &s2), 0);
	assert_int_equal(suppression_get(t->db, "00000000-0000-4000-8000-000000000000", &s2), 0);

	/* remove: by id one, by address all of them */
	struct suppression c;
	assert_int_equal(suppression_add(t->db, "example.com", "carol@x.org", SUPPRESSION_UNSUBSCRIBE, NULL, 4000, &c,
					 &existed),
			 SQLITE_OK);
	assert_int_equal(suppression_remove(t->db, "Bob@X.org"), 2);
	assert_int_equal(suppression_find(t->db, "other.org", "bob@x.org", &s2), 0);
	assert_int_equal(suppression_find(t->db, "example.com", "bob@x.org", &s2), 0);
	assert_int_equal(suppression_find(t->db, "example.com", "carol@x.org", &s2), 1);
	assert_int_equal(suppression_remove(t->db, c.id), 1);
	assert_int_equal(suppression_find(t->db, "example.com", "carol@x.org", &s2), 0);
	assert_int_equal(suppression_remove(t->db, c.id), 0);
	assert_int_equal(suppression_remove(t->db, "nobody@x.org"), 0);
	assert_int_equal(count(t, "SELECT count(*) FROM suppressions"), 0);
}

static void test_suppression_origins(void **state)
{
	(void)state;
	static const char *const names[] = {"bounce", "complaint", "unsubscribe", "manual"};
	for (int i = 0; i < SUPPRESSION_ORIGIN_COUNT; i++) {
		enum suppression_origin o;
		assert_string_equal(suppression_origin_str((enum suppression_origin)i), names[i]);
		assert_true(suppression_origin_parse(names[i], &o));
		assert_int_equal(o, i);
	}
	enum suppression_origin o = SUPPRESSION_MANUAL;
	assert_false(suppression_origin_parse("Bounce", &o));
	assert_false(suppression_origin_parse("", &o));
	assert_false(suppression_origin_parse("bounces", &o));
	assert_string_equal(suppression_origin_str(SUPPRESSION_ORIGIN_COUNT), "manual");
}

static void sup_ids_are(const struct suppression *v, size_t n, const int *want, size_t wn,
			char ids[][EMAIL_ID_LEN + 1])
{
	if (n != wn)
		fail_msg("%zu entries, want %zu", n, wn);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].id, ids[want[i]]) != 0)
			fail_msg("entry %zu is %s (%s), want #%d", i, v[i].id, v[i].email, want[i]);
}

static void test_suppression_list(void **state)
{
	struct test_ctx *t = *state;
	char ids[12][EMAIL_ID_LEN + 1];
	/* #i: origin bounce when i is even, manual when odd */
	for (int i = 0; i < 12; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "u%02d@x.org", i);
		struct suppression s;
		bool existed;
		assert_int_equal(suppression_add(t->db, "example.com", addr, i % 2 == 0 ? SUPPRESSION_BOUNCE : SUPPRESSION_MANUAL,
						 NULL, 1000 + i, &s, &existed),
				 SQLITE_OK);
		memcpy(ids[i], s.id, sizeof(ids[i]));
	}
	struct suppression *v;
	size_t n;
	bool more;
	static const int p1[] = {11, 10, 9, 8, 7}, p2[] = {6, 5, 4, 3, 2}, p3[] = {1, 0};
	assert_int_equal(suppression_list(t->db, 5, NULL, NULL, -1, &v, &n, &more), 1);
	sup_ids_are(v, n, p1, 5, ids);
	assert_true(more);
	free(v);
	assert_int_equal(suppression_list(t->db, 5, ids[7], NULL, -1, &v, &n, &more), 1);
	sup_ids_are(v, n, p2, 5, ids);
	assert_true(more);
	free(v);
	assert_int_equal(suppression_list(t->db, 5, ids[2], NULL, -1, &v, &n, &more), 1);
	sup_ids_are(v, n, p3, 2, ids);
	assert_false(more);
	free(v);
	assert_int_equal(suppression_list(t->db, 5, NULL, ids[2], -1, &v, &n, &more), 1);
	/* before #2: #3..#7 (the five nearest), newest first, more beyond */
	static const int b1[] = {7, 6, 5, 4, 3};
	sup_ids_are(v, n, b1, 5, ids);
	assert_true(more);
	free(v);
	assert_int_equal(suppression_list(t->db, 5, NULL, ids[7], -1, &v, &n, &more), 1);
	static const int b2[] = {11, 10, 9, 8};
	sup_ids_are(v, n, b2, 4, ids);
	assert_false(more);
	free(v);

	/* one origin */
	static const int bounces1[] = {10, 8, 6}, bounces2[] = {4, 2, 0}, manual[] = {11, 9, 7, 5, 3, 1};
	assert_int_equal(suppression_list(t->db, 3, NULL, NULL, SUPPRESSION_BOUNCE, &v, &n, &more), 1);
	sup_ids_are(v, n, bounces1, 3, ids);
	assert_true(more);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].origin, SUPPRESSION_BOUNCE);
	free(v);
	/* the cursor may be an entry of another origin */
	assert_int_equal(suppression_list(t->db, 3, ids[5], NULL, SUPPRESSION_BOUNCE, &v, &n, &more), 1);
	sup_ids_are(v, n, bounces2, 3, ids);
	assert_false(more);
	free(v);
	assert_int_equal(suppression_list(t->db, 10, NULL, NULL, SUPPRESSION_MANUAL, &v, &n, &more), 1);
	sup_ids_are(v, n, manual, 6, ids);
	assert_false(more);
	free(v);
	assert_int_equal(suppression_list(t->db, 10, NULL, NULL, SUPPRESSION_COMPLAINT, &v, &n, &more), 1);
	assert_int_equal(n, 0);
	assert_false(more);
	free(v);
	static const int before_b[] = {10, 8};
	assert_int_equal(suppression_list(t->db, 3, NULL, ids[7], SUPPRESSION_BOUNCE, &v, &n, &more), 1);
	sup_ids_are(v, n, before_b, 2, ids);
	assert_false(more);
	free(v);
	/* an unknown cursor */
	assert_int_equal(suppression_list(t->db, 5, "nope", NULL, -1, &v, &n, &more), 0);
	assert_null(v);
	assert_int_equal(suppression_list(t->db, 5, NULL, "nope", -1, &v, &n, &more), 0);
}

/* ---- scheduled messages: cancel and reschedule ---- */

struct store_slot {
	struct test_ctx *t;
	bool called;
	enum result res;
};

static void store_done(void *arg, enum result res, const char *reason)
{
	struct store_slot *s = arg;
	(void)reason;
	s->called = true;
	s->res = res;
	if (--s->t->outstanding == 0)
		event_base_loopbreak(s->t->base);
}

struct store_job {
	struct test_ctx *t;
	struct queue_msg *m;
	struct store_slot *slot;
};

static void store_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_job *j = arg;
	(void)fd, (void)what;
	queue_msg_store(j->t->q, j->m, store_done, j->slot);
}

static void loop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct test_ctx *t = arg;
	(void)fd, (void)what;
	t->timed_out = true;
	event_base_loopbreak(t->base);
}

/* Stores a tracked message with rcpts (taking r), not before not_before; its queue id. */
static void store_tracked(struct test_ctx *t, struct email_record *r, const char *const *rcpts, size_t n,
			  int64_t not_before, char qid_r[QUEUE_ID_LEN + 1])
{
	struct queue_msg *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	queue_id_new(m->id);
	memcpy(qid_r, m->id, QUEUE_ID_LEN + 1);
	m->sender = xstrdup("bounces@example.com");
	m->rcpts = calloc(n, sizeof(*m->rcpts));
	assert_non_null(m->rcpts);
	for (size_t i = 0; i < n; i++)
		m->rcpts[i] = xstrdup(rcpts[i]);
	m->rcpt_count = n;
	m->client_ip = xstrdup("127.0.0.1");
	m->arrival = time(NULL);
	m->data = xstrdup("Subject: x\r\n\r\nhello\r\n");
	m->size = strlen(m->data);
	m->not_before = not_before;
	m->no_dsn = true;
	m->track = r;

	struct store_slot slot = {.t = t};
	struct store_job job = {t, m, &slot};
	struct timeval zero = {0, 0}, limit = {30, 0};
	t->outstanding++;
	assert_int_equal(event_base_once(t->base, -1, EV_TIMEOUT, store_cb, &job, &zero), 0);
	struct event *to = evtimer_new(t->base, loop_timeout, t);
	assert_non_null(to);
	evtimer_add(to, &limit);
	while (t->outstanding > 0 && !t->timed_out)
		event_base_loop(t->base, EVLOOP_ONCE);
	event_free(to);
	assert_false(t->timed_out);
	assert_true(slot.called);
	assert_int_equal(slot.res, RESULT_OK);
}

static void test_reschedule_and_cancel(void **state)
{
	struct test_ctx *t = *state;
	int64_t now = time(NULL), later = now + 3600, later2 = now + 7200;
	struct email_record *r = rec_new("a@example.com", later);
	char id[EMAIL_ID_LEN + 1], qid[QUEUE_ID_LEN + 1];
	memcpy(id, r->id, sizeof(id));
	const char *rcpts[] = {"a@x.org", "b@y.org"};
	store_tracked(t, r, rcpts, 2, later, qid);

	struct email_view v;
	view_get(t, id, true, &v);
	assert_int_equal(v.last_event, EMAIL_EVENT_SCHEDULED);
	assert_int_equal(v.rec.scheduled_at, later);
	assert_string_equal(v.queue_id, qid);
	assert_int_equal(v.rcpts[0].state, EMAIL_EVENT_SCHEDULED);
	email_view_free(&v);

	/* reschedule: the recipients' next attempt and the record move, with a scheduled event */
	bool found = false;
	const char *err = NULL;
	assert_int_equal(queue_email_reschedule(t->q, id, later2, &found, &err), RESULT_OK);
	assert_true(found);
	struct queue_entry *e = NULL;
	assert_int_equal(queue_show(t->q, qid, &e, &err), RESULT_OK);
	assert_int_equal(e->rcpt_count, 2);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		assert_int_equal(e->rcpts[i].next_attempt, later2);
		assert_int_equal(e->rcpts[i].attempts, 0);
	}
	queue_entry_free(e);
	view_get(t, id, true, &v);
	assert_int_equal(v.rec.scheduled_at, later2);
	assert_int_equal(v.last_event, EMAIL_EVENT_SCHEDULED);
	static const enum email_event_type two[] = {EMAIL_EVENT_SCHEDULED, EMAIL_EVENT_SCHEDULED};
	events_are(&v.rcpts[0], two, 2);
	events_are(&v.rcpts[1], two, 2);
	email_view_free(&v);

	/* cancel: out of the queue, a canceled event */
	found = false;
	assert_int_equal(queue_email_cancel(t->q, id, &found, &err), RESULT_OK);
	assert_true(found);
	e = NULL;
	assert_int_equal(queue_show(t->q, qid, &e, &err), RESULT_PERMFAIL);
	assert_int_equal(count(t, "SELECT count(*) FROM recipients"), 0);
	view_get(t, id, true, &v);
	assert_int_equal(v.last_event, EMAIL_EVENT_CANCELED);
	static const enum email_event_type three[] = {EMAIL_EVENT_SCHEDULED, EMAIL_EVENT_SCHEDULED,
						      EMAIL_EVENT_CANCELED};
	for (size_t i = 0; i < v.rcpt_count; i++) {
		events_are(&v.rcpts[i], three, 3);
		assert_int_equal(v.rcpts[i].state, EMAIL_EVENT_CANCELED);
	}
	email_view_free(&v);

	/* again: refused with a sentence, and nothing changes */
	int64_t events_before = count(t, "SELECT count(*) FROM events");
	found = false, err = NULL;
	assert_int_equal(queue_email_cancel(t->q, id, &found, &err), RESULT_PERMFAIL);
	assert_true(found);
	assert_non_null(err);
	assert_true(strlen(err) > 10 && err[strlen(err) - 1] == '.');
	found = false, err = NULL;
	assert_int_equal(queue_email_reschedule(t->q, id, later, &found, &err), RESULT_PERMFAIL);
	assert_true(found);
	assert_non_null(err);
	assert_int_equal(count(t, "SELECT count(*) FROM events"), events_before);

	/* an unknown id */
	found = true, err = NULL;
	assert_int_not_equal(queue_email_cancel(t->q, "00000000-0000-4000-8000-000000000000", &found, &err), RESULT_OK);
	assert_false(found);
	found = true;
	assert_int_not_equal(queue_email_reschedule(t->q, "nope", later, &found, &err), RESULT_OK);
	assert_false(found);
}

/* Neither a message sent at once nor one whose time has come can be changed. */
static void test_cancel_not_scheduled(void **state)
{
	struct test_ctx *t = *state;
	const char *rcpts[] = {"a@x.org"};
	char qid[QUEUE_ID_LEN + 1], id[EMAIL_ID_LEN + 1];
	struct email_record *r = rec_new("a@example.com", 0);
	memcpy(id, r->id, sizeof(id));
	store_tracked(t, r, rcpts, 1, 0, qid);
	bool found = false;
	const char *err = NULL;
	assert_int_equal(queue_email_cancel(t->q, id, &found, &err), RESULT_PERMFAIL);
	assert_true(found);
	assert_non_null(err);
	assert_int_equal(queue_email_reschedule(t->q, id, time(NULL) + 60, &found, &err), RESULT_PERMFAIL);
	struct queue_entry *e = NULL;
	assert_int_equal(queue_show(t->q, qid, &e, &err), RESULT_OK); /* still queued */
	queue_entry_free(e);

	/* scheduled, then moved to the past: due, so on its way */
	int64_t later = time(NULL) + 3600;
	r = rec_new("a@example.com", later);
	memcpy(id, r->id, sizeof(id));
	store_tracked(t, r, rcpts, 1, later, qid);
	assert_int_equal(queue_email_reschedule(t->q, id, time(NULL) - 5, &found, &err), RESULT_OK);
	err = NULL;
	assert_int_equal(queue_email_cancel(t->q, id, &found, &err), RESULT_PERMFAIL);
	assert_true(found);
	assert_non_null(err);
	assert_int_equal(queue_show(t->q, qid, &e, &err), RESULT_OK);
	queue_entry_free(e);
}

/* events.h: a message-level event goes to "every recipient still pending"; one that was suppressed
 * was never pending, and stays suppressed. */
static void test_bug_cancel_overwrites_suppressed(void **state)
{
	struct test_ctx *t = *state;
	int64_t later = time(NULL) + 3600;
	struct email_record *r = rec_new("a@example.com", later);
	rec_suppress(r, "gone@z.org", "bounce", "Bounced before.");
	char id[EMAIL_ID_LEN + 1], qid[QUEUE_ID_LEN + 1];
	memcpy(id, r->id, sizeof(id));
	const char *rcpts[] = {"a@x.org"};
	store_tracked(t, r, rcpts, 1, later, qid);
	bool found;
	const char *err;
	assert_int_equal(queue_email_reschedule(t->q, id, later + 60, &found, &err), RESULT_OK);
	struct email_view v;
	view_get(t, id, true, &v);
	assert_int_equal(v.rcpt_count, 2);
	enum email_event_type after_reschedule = v.rcpts[1].state;
	email_view_free(&v);
	assert_int_equal(queue_email_cancel(t->q, id, &found, &err), RESULT_OK);
	view_get(t, id, true, &v);
	assert_int_equal(v.rcpts[0].state, EMAIL_EVENT_CANCELED);
	enum email_event_type after_cancel = v.rcpts[1].state;
	email_view_free(&v);
	CHECK_WHY(after_reschedule == EMAIL_EVENT_SUPPRESSED && after_cancel == EMAIL_EVENT_SUPPRESSED,
		  "events_email_event: \"UPDATE email_rcpts SET state = ?2 WHERE email_id = ?1\" has no condition "
		  "on the state, so a suppressed recipient of a scheduled email becomes %s after a reschedule "
		  "and %s after a cancel (events.h: \"for every recipient still pending\")",
		  email_event_type_str(after_reschedule), email_event_type_str(after_cancel));
}

static void test_event_names(void **state)
{
	(void)state;
	static const char *const names[] = {"queued", "scheduled", "sent", "delivered", "delivery_delayed",
					    "bounced", "failed", "canceled", "suppressed", "complained", "unsubscribed"};
	for (int i = 0; i < EMAIL_EVENT_COUNT; i++)
		assert_string_equal(email_event_type_str((enum email_event_type)i), names[i]);
	assert_string_equal(email_event_type_str(EMAIL_EVENT_COUNT), "unknown");
	/* ids: RFC 9562 version 4, lower case, and different */
	char a[EMAIL_ID_LEN + 1], b[EMAIL_ID_LEN + 1];
	email_id_new(a);
	email_id_new(b);
	assert_int_equal(strlen(a), EMAIL_ID_LEN);
	assert_string_not_equal(a, b);
	assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	for (int i = 0; i < EMAIL_ID_LEN; i++)
		assert_non_null(strchr("0123456789abcdef-", a[i]));
}

/* [api] retention: old records go once their message has left the queue, in bounded batches */
static void test_prune(void **state)
{
	struct test_ctx *t = *state;
	int64_t now = now_ms();
	const char *rcpts[] = {"a@x.test"};
	char queued_id[EMAIL_ID_LEN + 1] = "";
	for (int i = 0; i < 5; i++) {
		struct email_record *r = rec_new("Demo <demo@mailwerk.test>", 0);
		r->created_at = now - 1000;
		char qid[32];
		snprintf(qid, sizeof(qid), "0000000000000000000%d", i);
		insert(t, qid, r, rcpts, 1, now - 1000);
		if (i == 4) /* this one's message is still queued */
			snprintf(queued_id, sizeof(queued_id), "%s", r->id);
		email_record_free(r);
	}
	exec_sql(t, "INSERT INTO messages(id, sender, arrival, size, data) VALUES('00000000000000000004', '', 0, 0, '')");
	exec_sql(t, "INSERT INTO idempotency(api_key_id, key, body_hash, response, created_at)"
		    " VALUES('k', 'old', x'00', '{}', 0), ('k', 'new', x'00', '{}', 9000000000000)");
	unsigned n = 0;
	assert_int_equal(events_prune(t->db, now - 5000, now, 10, &n), 0); /* none old enough */
	assert_int_equal(n, 0);
	assert_int_equal(events_prune(t->db, now, now, 3, &n), 0); /* a batch of 3 */
	assert_int_equal(n, 3);
	assert_int_equal(events_prune(t->db, now, now, 3, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(count(t, "SELECT count(*) FROM emails"), 1);
	assert_int_equal(count(t, "SELECT count(*) FROM email_rcpts"), 1);
	assert_int_equal(count(t, "SELECT count(*) FROM events WHERE email_id NOT IN (SELECT id FROM emails)"), 0);
	struct email_view v;
	view_get(t, queued_id, false, &v);
	email_view_free(&v);
	assert_int_equal(count(t, "SELECT count(*) FROM idempotency"), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_insert_and_get),
		T(test_insert_all_suppressed),
		T(test_bug_suppressed_rcpt_gets_queued_event),
		T(test_attempt_delivered),
		T(test_attempt_no_detail),
		T(test_attempt_bounce_permanent),
		T(test_attempt_bounce_not_permanent),
		T(test_attempt_failed_and_local_bounce),
		T(test_attempt_untracked),
		T(test_list_pages),
		T(test_list_filters),
		T(test_headers_too_large),
		T(test_idempotency),
		T(test_suppression_add_find),
		cmocka_unit_test(test_suppression_origins),
		T(test_suppression_list),
		T(test_reschedule_and_cancel),
		T(test_cancel_not_scheduled),
		T(test_bug_cancel_overwrites_suppressed),
		cmocka_unit_test(test_event_names),
		T(test_prune),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

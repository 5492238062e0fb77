/* test_webhooks_store.c — the webhooks and their outbox (events/webhooks_store.h) against a real
 * queue.db in a fresh directory: the cursor (a new webhook gets only what happens after it; a
 * fan-out never doubles; batches resume where they stopped), subscriptions and disabled webhooks,
 * the due scan's limits and busy list, outcomes, deletion with its deliveries, the list's order and
 * cursors. Events are written as the queue writes them, through a second connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "events/events.h"
#include "events/webhooks_store.h"

struct fixture {
	char dir[256];
	struct webhooks_store *s;
	sqlite3 *raw; /* the queue's side: emails and events */
	char error[512];
	int emails;
	bool more; /* the last fan-out read a full batch */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_webhooks_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	f->s = webhooks_store_open(f->dir, f->error, sizeof(f->error));
	if (f->s == NULL)
		fail_msg("webhooks_store_open: %s", f->error);
	char path[512];
	snprintf(path, sizeof(path), "%s/queue.db", f->dir);
	assert_int_equal(sqlite3_open(path, &f->raw), SQLITE_OK);
	sqlite3_busy_timeout(f->raw, 5000);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const files[] = {"queue.db", "queue.db-wal", "queue.db-shm"};
	char path[512];
	sqlite3_close(f->raw);
	webhooks_store_close(f->s);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void sql(struct fixture *f, const char *text)
{
	char *err = NULL;
	if (sqlite3_exec(f->raw, text, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", text, err);
}

/* A tracked message with rcpts recipients (and its queued event); returns its id in id_r. */
static void email_add(struct fixture *f, unsigned rcpts, char id_r[EMAIL_ID_LEN + 1])
{
	char q[1024];
	snprintf(id_r, EMAIL_ID_LEN + 1, "00000000-0000-4000-8000-%012d", ++f->emails);
	snprintf(q, sizeof(q),
		 "INSERT INTO emails(id, queue_id, created_at, from_addr, subject, to_json, tags_json, message_id,"
		 " last_event) VALUES('%s', 'Q%d', 1000, 'A <a@x.test>', 'hi', '[\"r0@y.test\"]',"
		 " '[{\"name\":\"k\",\"value\":\"v\"}]', 'm%d@x.test', 0);"
		 "INSERT INTO events(email_id, rcpt_idx, type, created_at) VALUES('%s', -1, %d, 1000);",
		 id_r, f->emails, f->emails, id_r, EMAIL_EVENT_QUEUED);
	sql(f, q);
	for (unsigned i = 0; i < rcpts; i++) {
		snprintf(q, sizeof(q),
			 "INSERT INTO email_rcpts(email_id, idx, addr, state) VALUES('%s', %u, 'r%u@y.test', 0)",
			 id_r, i, i);
		sql(f, q);
	}
}

static void event_add(struct fixture *f, const char *email_id, int idx, enum email_event_type t)
{
	char q[512];
	snprintf(q, sizeof(q),
		 "INSERT INTO events(email_id, rcpt_idx, type, created_at, detail)"
		 " VALUES('%s', %d, %d, 2000, '{\"reply\":\"250 ok\"}')",
		 email_id, idx, t);
	sql(f, q);
}

static int64_t count(struct fixture *f, const char *query)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(f->raw, query, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void hook_add(struct fixture *f, const char *events, struct webhook *w)
{
	if (webhooks_store_create(f->s, "https://hooks.example/in", events, w, f->error, sizeof(f->error)) !=
	    0)
		fail_msg("create: %s", f->error);
}

/* The backlog GET /metrics shows. */
static uint64_t pending(struct fixture *f)
{
	uint64_t n = 99;
	if (webhooks_store_pending_count(f->s, &n, f->error, sizeof(f->error)) != 0)
		fail_msg("pending_count: %s", f->error);
	return n;
}

static unsigned fanout(struct fixture *f, unsigned max)
{
	unsigned n = 0;
	int r = webhooks_store_fanout(f->s, 5000, max, &n, f->error, sizeof(f->error));
	if (r < 0)
		fail_msg("fanout: %s", f->error);
	f->more = r == 1;
	return n;
}

static size_t due(struct fixture *f, int64_t now, const struct webhook_busy *busy, size_t nb, unsigned per,
		  unsigned max, struct webhook_due **d)
{
	size_t n;
	if (webhooks_store_due(f->s, now, busy, nb, per, max, d, &n, f->error, sizeof(f->error)) != 0)
		fail_msg("due: %s", f->error);
	return n;
}

static void test_cursor_and_subscriptions(void **state)
{
	struct fixture *f = *state;
	char e1[EMAIL_ID_LEN + 1], e2[EMAIL_ID_LEN + 1];
	email_add(f, 1, e1);
	event_add(f, e1, 0, EMAIL_EVENT_SENT); /* before the webhook: not for it */
	struct webhook w;
	hook_add(f, "[\"email.sent\",\"email.delivered\"]", &w);
	assert_int_equal(strlen(w.id), WEBHOOK_ID_LEN);
	assert_int_equal(strncmp(w.secret, "whsec_", 6), 0);
	assert_int_equal(strlen(w.secret), WEBHOOK_SECRET_LEN);
	assert_int_equal(fanout(f, 100), 0);

	email_add(f, 2, e2); /* queued: never posted */
	event_add(f, e1, 0, EMAIL_EVENT_DELIVERED);
	event_add(f, e2, 0, EMAIL_EVENT_SENT);
	event_add(f, e2, 1, EMAIL_EVENT_SENT);
	event_add(f, e2, 0, EMAIL_EVENT_BOUNCED); /* not subscribed */
	assert_int_equal(fanout(f, 100), 3);
	assert_int_equal(fanout(f, 100), 0); /* the cursor moved with the rows */

	struct webhook_due *d;
	size_t n = due(f, 5000, NULL, 0, 10, 10, &d);
	assert_int_equal(n, 3);
	assert_string_equal(d[0].event_type, "email.delivered");
	assert_string_equal(d[1].event_type, "email.sent");
	assert_string_equal(d[0].secret, w.secret);
	assert_string_equal(d[0].endpoint, "https://hooks.example/in");
	assert_int_equal(strncmp(d[0].msg_id, "msg_", 4), 0);
	assert_string_not_equal(d[1].msg_id, d[2].msg_id);
	/* one delivery per recipient's event: "to" is that recipient */
	json_t *p1 = json_loads(d[1].payload, 0, NULL), *p2 = json_loads(d[2].payload, 0, NULL);
	assert_string_equal(json_string_value(
				    json_array_get(json_object_get(json_object_get(p1, "data"), "to"), 0)),
			    "r0@y.test");
	assert_string_equal(json_string_value(
				    json_array_get(json_object_get(json_object_get(p2, "data"), "to"), 0)),
			    "r1@y.test");
	assert_string_equal(json_string_value(
				    json_object_get(json_object_get(json_object_get(p1, "data"), "tags"),
						    "k")),
			    "v");
	json_decref(p1);
	json_decref(p2);
	webhook_dues_free(d, n);
	webhook_clear(&w);
}

static void test_fanout_batches_resume(void **state)
{
	struct fixture *f = *state;
	struct webhook a, b;
	hook_add(f, "[\"email.sent\"]", &a);
	char e[EMAIL_ID_LEN + 1];
	email_add(f, 5, e);
	for (int i = 0; i < 5; i++)
		event_add(f, e, i, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 2), 1);   /* two events read: the queued one (not posted) and a sent */
	hook_add(f, "[\"email.sent\"]", &b); /* joins now: nothing of the past */
	event_add(f, e, 0, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 2), 2); /* a's */
	assert_int_equal(fanout(f, 2), 2); /* a's */
	assert_true(f->more);
	assert_int_equal(fanout(f, 2), 1 + 1); /* the new one, for both */
	assert_false(f->more);                 /* one event read of two: caught up */
	assert_int_equal(fanout(f, 2), 0);
	assert_false(f->more);
	assert_int_equal(count(f, "SELECT count(*) FROM webhook_deliveries"), 7);
	assert_int_equal(count(f, "SELECT count(DISTINCT msg_id) FROM webhook_deliveries"), 7);
	/* a fan-out that happens twice (the cursor rewound) creates nothing new */
	char q[200];
	snprintf(q, sizeof(q), "UPDATE webhooks SET cursor = 0 WHERE id = '%s'", a.id);
	sql(f, q);
	assert_int_equal(fanout(f, 100), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM webhook_deliveries"), 7);
	webhook_clear(&a);
	webhook_clear(&b);
}

static void test_disabled_gets_nothing(void **state)
{
	struct fixture *f = *state;
	struct webhook w;
	hook_add(f, "[\"email.sent\"]", &w);
	char e[EMAIL_ID_LEN + 1];
	email_add(f, 1, e);
	event_add(f, e, 0, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 100), 1);
	assert_int_equal(pending(f), 1);
	/* disabling gives up what was pending; a late failure of a post then in flight changes nothing */
	assert_int_equal(webhooks_store_update(f->s, w.id, NULL, NULL, 0, f->error, sizeof(f->error)), 1);
	assert_int_equal(pending(f), 0);
	/* a disabled webhook's rows are not counted even if pending (another connection mid-update) */
	sql(f, "UPDATE webhook_deliveries SET state = 'pending'");
	assert_int_equal(pending(f), 0);
	sql(f, "UPDATE webhook_deliveries SET state = 'failed'");
	assert_int_equal(count(f, "SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'"
				  " AND last_error = 'the webhook was disabled'"),
			 1);
	struct webhook_outcome late = {.delivery_id = count(f, "SELECT id FROM webhook_deliveries"),
				       .attempts = 1,
				       .retry = true,
				       .next_attempt = 1,
				       .status = 500};
	assert_int_equal(webhooks_store_record(f->s, &late, 1, 6000, f->error, sizeof(f->error)), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'"), 1);
	event_add(f, e, 0, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 100), 0);
	assert_int_equal(webhooks_store_update(f->s, w.id, NULL, NULL, 1, f->error, sizeof(f->error)), 1);
	assert_int_equal(fanout(f, 100), 0); /* what happened while disabled is not saved up */
	event_add(f, e, 0, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 100), 1);
	struct webhook g;
	assert_int_equal(webhooks_store_get(f->s, w.id, &g, f->error, sizeof(f->error)), 1);
	assert_true(g.enabled);
	webhook_clear(&g);
	/* changing the events and the endpoint */
	assert_int_equal(webhooks_store_update(f->s, w.id, "http://other.example/", "[\"email.bounced\"]", -1,
					       f->error, sizeof(f->error)),
			 1);
	assert_int_equal(webhooks_store_get(f->s, w.id, &g, f->error, sizeof(f->error)), 1);
	assert_string_equal(g.endpoint, "http://other.example/");
	assert_string_equal(g.events_json, "[\"email.bounced\"]");
	webhook_clear(&g);
	event_add(f, e, 0, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 100), 0);
	assert_int_equal(webhooks_store_update(f->s, "00000000-0000-4000-8000-000000000000", NULL, NULL, 0,
					       f->error, sizeof(f->error)),
			 0);
	webhook_clear(&w);
}

/* Events of other objects (domain.updated) go straight to the subscribed, enabled webhooks, beside
 * the email events of the fan-out, which they never meet in UNIQUE(webhook_id, event_seq). */
static void test_enqueue_other_events(void **state)
{
	struct fixture *f = *state;
	struct webhook sub, other, off;
	hook_add(f, "[\"domain.updated\", \"email.sent\"]", &sub);
	hook_add(f, "[\"email.sent\"]", &other);
	hook_add(f, "[\"domain.updated\"]", &off);
	assert_int_equal(webhooks_store_update(f->s, off.id, NULL, NULL, 0, f->error, sizeof(f->error)), 1);
	unsigned n = 99;
	assert_int_equal(webhooks_store_enqueue(f->s, "domain.updated", "d-1", "{\"type\":\"domain.updated\"}", 5000, &n,
						 f->error, sizeof(f->error)),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(webhooks_store_enqueue(f->s, "domain.updated", "d-1", "{\"n\":2}", 5001, &n, f->error,
						 sizeof(f->error)),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(count(f, "SELECT count(DISTINCT event_seq) FROM webhook_deliveries WHERE event_seq < 0"), 2);
	/* an email event beside them fans out as ever */
	char e[EMAIL_ID_LEN + 1];
	email_add(f, 1, e);
	event_add(f, e, 0, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 100), 2);
	struct webhook_due *d;
	size_t k = due(f, 6000, NULL, 0, 10, 10, &d);
	assert_int_equal(k, 4);
	size_t domain_events = 0;
	for (size_t i = 0; i < k; i++)
		if (strcmp(d[i].event_type, "domain.updated") == 0) {
			domain_events++;
			assert_string_equal(d[i].webhook_id, sub.id);
			assert_non_null(strstr(d[i].payload, domain_events == 1 ? "domain.updated" : "\"n\":2"));
		}
	assert_int_equal(domain_events, 2);
	webhook_dues_free(d, k);
	/* nobody subscribed: nothing, and no error */
	assert_int_equal(webhooks_store_enqueue(f->s, "domain.created", "d-1", "{}", 5002, &n, f->error,
						 sizeof(f->error)),
			 0);
	assert_int_equal(n, 0);
	webhook_clear(&sub);
	webhook_clear(&other);
	webhook_clear(&off);
}

static void test_due_limits_and_outcomes(void **state)
{
	struct fixture *f = *state;
	struct webhook a, b;
	hook_add(f, "[\"email.sent\"]", &a);
	hook_add(f, "[\"email.sent\"]", &b);
	char e[EMAIL_ID_LEN + 1];
	email_add(f, 6, e);
	for (int i = 0; i < 6; i++)
		event_add(f, e, i, EMAIL_EVENT_SENT);
	assert_int_equal(fanout(f, 100), 12);
	assert_int_equal(pending(f), 12); /* in flight or not: pending until recorded */

	struct webhook_due *d;
	size_t n = due(f, 5000, NULL, 0, 4, 64, &d);
	assert_int_equal(n, 8); /* 4 per endpoint */
	size_t per_a = 0;
	for (size_t i = 0; i < n; i++)
		per_a += strcmp(d[i].webhook_id, a.id) == 0;
	assert_int_equal(per_a, 4);
	/* three of a's are busy: one more of a's may go, and they are not among them */
	struct webhook_busy busy[3];
	for (int i = 0; i < 3; i++) {
		busy[i].delivery_id = d[i].delivery_id;
		snprintf(busy[i].webhook_id, sizeof(busy[i].webhook_id), "%s", d[i].webhook_id);
	}
	struct webhook_due *d2;
	size_t n2 = due(f, 5000, busy, 3, 4, 64, &d2);
	assert_int_equal(n2, 1 + 4);
	for (size_t i = 0; i < n2; i++)
		for (int k = 0; k < 3; k++)
			assert_true(d2[i].delivery_id != busy[k].delivery_id);
	webhook_dues_free(d2, n2);
	n2 = due(f, 5000, NULL, 0, 4, 3, &d2); /* the overall limit */
	assert_int_equal(n2, 3);
	webhook_dues_free(d2, n2);

	/* outcomes: delivered, again later, failed */
	struct webhook_outcome o[3] = {
		{.delivery_id = d[0].delivery_id, .attempts = 1, .delivered = true, .status = 204},
		{.delivery_id = d[1].delivery_id,
		 .attempts = 1,
		 .retry = true,
		 .next_attempt = 9000,
		 .status = 500},
		{.delivery_id = d[2].delivery_id, .attempts = 8, .status = 0},
	};
	snprintf(o[1].error, sizeof(o[1].error), "HTTP 500: oops");
	snprintf(o[2].error, sizeof(o[2].error), "connection refused");
	assert_int_equal(webhooks_store_record(f->s, o, 3, 6000, f->error, sizeof(f->error)), 0);
	assert_int_equal(pending(f), 10); /* delivered and given up leave it; the retried one stays */
	assert_int_equal(
		count(f,
		      "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered' AND last_status = 204"),
		1);
	assert_int_equal(
		count(f, "SELECT count(*) FROM webhook_deliveries WHERE state = 'failed' AND attempts = 8"),
		1);
	/* the retried one is not due before its time, then it is, with its attempts */
	n2 = due(f, 8999, NULL, 0, 100, 100, &d2);
	for (size_t i = 0; i < n2; i++)
		assert_true(d2[i].delivery_id != d[1].delivery_id);
	assert_int_equal(n2, 9);
	webhook_dues_free(d2, n2);
	n2 = due(f, 9000, NULL, 0, 100, 100, &d2);
	assert_int_equal(n2, 10);
	bool seen = false;
	for (size_t i = 0; i < n2; i++)
		if (d2[i].delivery_id == d[1].delivery_id)
			seen = true, assert_int_equal(d2[i].attempts, 1);
	assert_true(seen);
	webhook_dues_free(d2, n2);

	struct webhook_log_entry *log;
	size_t nl;
	assert_int_equal(webhooks_store_log(f->s, a.id, 100, &log, &nl, f->error, sizeof(f->error)), 0);
	assert_int_equal(nl, 6);
	bool found = false;
	for (size_t i = 0; i < nl; i++)
		if (log[i].delivery_id == d[1].delivery_id) {
			found = true;
			assert_string_equal(log[i].state, "pending");
			assert_int_equal(log[i].last_status, 500);
			assert_string_equal(log[i].last_error, "HTTP 500: oops");
			assert_int_equal(log[i].next_attempt, 9000);
		}
	assert_true(found);
	webhook_log_free(log, nl);

	/* pruning takes the finished ones only */
	assert_int_equal(webhooks_store_prune(f->s, 7000, f->error, sizeof(f->error)), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM webhook_deliveries"), 10);
	/* deleting a webhook takes its deliveries with it */
	assert_int_equal(webhooks_store_delete(f->s, b.id, f->error, sizeof(f->error)), 1);
	assert_int_equal(webhooks_store_delete(f->s, b.id, f->error, sizeof(f->error)), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM webhook_deliveries"), 4);
	assert_int_equal(pending(f), 4);
	webhook_dues_free(d, n);
	webhook_clear(&a);
	webhook_clear(&b);
}

static void test_list_and_rotate(void **state)
{
	struct fixture *f = *state;
	struct webhook w[5];
	for (int i = 0; i < 5; i++)
		hook_add(f, "[\"email.sent\"]", &w[i]);
	struct webhook *l;
	size_t n;
	bool more;
	assert_int_equal(webhooks_store_list(f->s, 2, NULL, NULL, &l, &n, &more, f->error, sizeof(f->error)),
			 1);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_string_equal(l[0].id, w[4].id); /* newest first */
	assert_string_equal(l[1].id, w[3].id);
	webhooks_free(l, n);
	assert_int_equal(webhooks_store_list(f->s, 2, w[3].id, NULL, &l, &n, &more, f->error,
					     sizeof(f->error)),
			 1);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].id, w[2].id);
	assert_string_equal(l[1].id, w[1].id);
	assert_true(more);
	webhooks_free(l, n);
	assert_int_equal(webhooks_store_list(f->s, 10, w[1].id, NULL, &l, &n, &more, f->error,
					     sizeof(f->error)),
			 1);
	assert_int_equal(n, 1);
	assert_false(more);
	webhooks_free(l, n);
	assert_int_equal(webhooks_store_list(f->s, 2, NULL, w[1].id, &l, &n, &more, f->error,
					     sizeof(f->error)),
			 1);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].id, w[3].id); /* still newest first */
	assert_string_equal(l[1].id, w[2].id);
	assert_true(more);
	webhooks_free(l, n);
	assert_int_equal(webhooks_store_list(f->s, 2, "nope", NULL, &l, &n, &more, f->error,
					     sizeof(f->error)),
			 0);

	char secret[WEBHOOK_SECRET_LEN + 1];
	assert_int_equal(webhooks_store_rotate(f->s, w[0].id, secret, f->error, sizeof(f->error)), 1);
	assert_string_not_equal(secret, w[0].secret);
	struct webhook g;
	assert_int_equal(webhooks_store_get(f->s, w[0].id, &g, f->error, sizeof(f->error)), 1);
	assert_string_equal(g.secret, secret);
	webhook_clear(&g);
	assert_int_equal(webhooks_store_rotate(f->s, "x", secret, f->error, sizeof(f->error)), 0);
	assert_int_equal(webhooks_store_get(f->s, "x", &g, f->error, sizeof(f->error)), 0);
	for (int i = 0; i < 5; i++)
		webhook_clear(&w[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cursor_and_subscriptions, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_fanout_batches_resume, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_disabled_gets_nothing, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_enqueue_other_events, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_due_limits_and_outcomes, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_list_and_rotate, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_queue_due.c — the delivery runner's view of the queue (queue_due, queue_next_due,
 * queue_data_version, claims) pass after pass on one connection, as the runner asks it: its
 * statements are kept prepared between passes, so each pass must still see what other
 * connections committed since, and nothing may stay claimed or open. The operator's bounce on the
 * runner's connection is refused while a recipient of the message is claimed (in flight). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "delivery/operator.h"
#include "mailbox/users.h"
#include "queue/queue.h"

struct fixture {
	char dir[256];
	struct queue *runner; /* the runner's own connection */
	struct queue *other;  /* another process: the CLI, or the server's writer */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_queue_due.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	const char *err = NULL;
	struct users *u = users_open(f->dir, &err);
	if (u == NULL)
		fail_msg("users_open: %s", err);
	assert_int_equal(users_domain_add(u, "local.test", &err), RESULT_OK);
	users_close(u);
	f->runner = queue_open(f->dir, &err);
	if (f->runner == NULL)
		fail_msg("queue_open: %s", err);
	f->other = queue_open(f->dir, &err);
	assert_non_null(f->other);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const files[] = { "queue.db", "queue.db-wal", "queue.db-shm",
					     "mailwerk.db", "mailwerk.db-wal", "mailwerk.db-shm" };
	char path[512];
	queue_close(f->runner);
	queue_close(f->other);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Stores a message for rcpt through q's synchronous path (the one DSNs take); returns its id. */
static void store(struct queue *q, const char *rcpt, int64_t arrival, char id_r[QUEUE_ID_LEN + 1])
{
	char *rcpts[] = { (char *)rcpt };
	char data[] = "Subject: t\r\n\r\nbody\r\n";
	struct queue_msg m = {
		.sender = (char *)"sender@example.org",
		.rcpts = rcpts,
		.rcpt_count = 1,
		.arrival = arrival,
		.data = data,
		.size = sizeof(data) - 1,
	};
	struct queue_msg *add[] = { &m };
	const char *err = NULL;
	queue_id_new(m.id);
	if (queue_rcpt_results(q, NULL, 0, add, 1, &err) != RESULT_OK)
		fail_msg("store: %s", err);
	memcpy(id_r, m.id, sizeof(m.id));
}

static size_t due_count(struct queue *q, enum queue_route route, int64_t now)
{
	struct queue_due_msg *msgs = NULL;
	size_t count = 0, rcpts = 0;
	const char *err = NULL;
	if (queue_due(q, route, now, 100, &msgs, &count, &err) != RESULT_OK)
		fail_msg("queue_due: %s", err);
	for (size_t i = 0; i < count; i++)
		rcpts += msgs[i].rcpt_count;
	queue_due_free(msgs, count);
	return rcpts;
}

static void test_passes_see_other_commits(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1];
	int64_t next = -1;
	const char *err = NULL;

	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_LOCAL, 1000), 0);
	assert_int_equal(queue_next_due(f->runner, QUEUE_ROUTE_LOCAL, &next, &err), RESULT_OK);
	assert_int_equal(next, 0);
	uint64_t version = queue_data_version(f->runner);

	/* many passes, each with a message committed by the other connection in between */
	for (int pass = 1; pass <= 50; pass++) {
		store(f->other, "bob@local.test", 100 + pass, id);
		assert_true(queue_data_version(f->runner) != version);
		version = queue_data_version(f->runner);
		assert_int_equal(due_count(f->runner, QUEUE_ROUTE_LOCAL, 1000), (size_t)pass);
		assert_int_equal(queue_next_due(f->runner, QUEUE_ROUTE_LOCAL, &next, &err), RESULT_OK);
		assert_int_equal(next, 101);
	}
	/* the remote route does not see local recipients */
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 0);
	/* nothing due before its time */
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_LOCAL, 100), 0);
}

static void test_claims_across_passes(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1];
	const char *err = NULL;

	store(f->other, "alice@remote.test", 10, id);
	/* claimed by the first pass, so the next passes do not return it */
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 1);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 0);
	queue_unclaim(f->runner, id, 0);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 1);

	/* a held domain is skipped until released */
	queue_unclaim(f->runner, id, 0);
	assert_int_equal(queue_domain_hold(f->runner, "remote.test", true, &err), RESULT_OK);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 0);
	assert_int_equal(queue_domain_hold(f->runner, "remote.test", false, &err), RESULT_OK);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 1);

	/* delivered: gone from the queue, for this connection and the other */
	struct queue_rcpt_result r = { .id = id, .idx = 0, .state = QUEUE_RCPT_DELIVERED };
	assert_int_equal(queue_rcpt_results(f->runner, &r, 1, NULL, 0, &err), RESULT_OK);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 0);
	struct queue_entry *e = NULL;
	assert_int_equal(queue_show(f->other, id, &e, &err), RESULT_PERMFAIL);

	/* a deferred one comes back at its next attempt, on the same prepared statements */
	store(f->other, "carol@remote.test", 20, id);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 1);
	struct queue_rcpt_result d = { .id = id, .idx = 0, .state = QUEUE_RCPT_DEFERRED, .next_attempt = 2000,
				       .error = "451 later" };
	assert_int_equal(queue_rcpt_results(f->runner, &d, 1, NULL, 0, &err), RESULT_OK);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 0);
	int64_t next = 0;
	assert_int_equal(queue_next_due(f->runner, QUEUE_ROUTE_REMOTE, &next, &err), RESULT_OK);
	assert_int_equal(next, 2000);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 2000), 1);
}

/* The other connection flushes and deletes between the runner's reads, and the runner's next
 * reads (kept statements, the message data among them) see it. */
static void test_other_changes_between_reads(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1];
	const char *err = NULL;
	unsigned flushed = 0;

	store(f->other, "dave@local.test", 30, id);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_LOCAL, 1000), 1);
	char *data = NULL;
	size_t size = 0;
	assert_int_equal(queue_msg_data(f->runner, id, &data, &size, &err), RESULT_OK);
	assert_non_null(strstr(data, "body"));
	free(data);
	assert_int_equal(queue_flush(f->other, &flushed, &err), RESULT_OK);
	assert_int_equal(flushed, 1);
	assert_int_equal(queue_delete(f->other, id, &err), RESULT_OK);
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_LOCAL, 1000), 0);
	assert_int_equal(queue_msg_data(f->runner, id, &data, &size, &err), RESULT_PERMFAIL);
}

/* A claimed recipient is in flight: a bounce changes nothing and says why; once the claim ends
 * (the attempt deferred, say) the same call bounces it. Claims are the connection's own. */
static void test_bounce_waits_for_claims(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1];
	const char *err = NULL;
	unsigned claimed = 99, n = 99;

	store(f->other, "erin@remote.test", 40, id);
	assert_int_equal(queue_claimed_count(f->runner, id, &claimed, &err), RESULT_OK);
	assert_int_equal(claimed, 0); /* never claimed anything yet */
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, 1000), 1);
	assert_int_equal(queue_claimed_count(f->runner, id, &claimed, &err), RESULT_OK);
	assert_int_equal(claimed, 1);
	assert_int_equal(queue_claimed_count(f->other, id, &claimed, &err), RESULT_OK);
	assert_int_equal(claimed, 0);

	assert_int_equal(delivery_bounce_now(f->runner, "mx.test", id, &n, &err), RESULT_TEMPFAIL);
	assert_string_equal(err, DELIVERY_BOUNCE_IN_FLIGHT);
	assert_int_equal(n, 0);
	struct queue_entry *e = NULL;
	assert_int_equal(queue_show(f->other, id, &e, &err), RESULT_OK);
	assert_int_equal(e->rcpts[0].state, QUEUE_RCPT_PENDING);
	queue_entry_free(e);

	/* the attempt deferred: recorded, no longer claimed, and now it bounces */
	struct queue_rcpt_result d = { .id = id, .idx = 0, .state = QUEUE_RCPT_DEFERRED, .next_attempt = 2000,
				       .error = "451 later" };
	assert_int_equal(queue_rcpt_results(f->runner, &d, 1, NULL, 0, &err), RESULT_OK);
	assert_int_equal(queue_claimed_count(f->runner, id, &claimed, &err), RESULT_OK);
	assert_int_equal(claimed, 0);
	assert_int_equal(delivery_bounce_now(f->runner, "mx.test", id, &n, &err), RESULT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(queue_show(f->other, id, &e, &err), RESULT_PERMFAIL);
	/* what is left is the report to the sender */
	assert_int_equal(due_count(f->runner, QUEUE_ROUTE_REMOTE, (int64_t)time(NULL) + 10), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_passes_see_other_commits, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_claims_across_passes, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_other_changes_between_reads, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bounce_waits_for_claims, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* store_sqlite_test.h — test-only hooks into the SQLite queue store (tests/unit/test_queue.c).
 * Nothing outside the tests includes this. */
#ifndef MAILWERK_QUEUE_STORE_SQLITE_TEST_H
#define MAILWERK_QUEUE_STORE_SQLITE_TEST_H

struct queue;

/* Transactions the writer thread has committed since queue_writer_start(): fewer commits than
 * messages proves that group commit batched them. */
unsigned long queue_commit_count(struct queue *q);

/* Makes the writer run `PRAGMA max_page_count = pages` on its own connection before its next batch,
 * to simulate a full disk (SQLITE_FULL). SQLite never sets the limit below the current size, so 1
 * means "no growth from here". */
void queue_test_max_pages_set(struct queue *q, unsigned pages);

#endif

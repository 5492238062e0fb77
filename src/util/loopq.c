/* loopq.c — owns the cross-thread hand-off to the loop thread: a mutex-protected FIFO of callbacks and
 * the eventfd that wakes the libevent loop when the FIFO stops being empty.
 *
 * Only the loop thread touches libevent here, so libevent's own thread support is not needed: other
 * threads only take the mutex and write to the eventfd. */
#include "util/loopq.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

struct loopq_item {
	struct loopq_item *next;
	loopq_fn *fn;
	void *arg;
};

struct loopq {
	pthread_mutex_t mu;
	struct loopq_item *head; /* under mu */
	struct loopq_item *tail; /* under mu */
	int efd;
	struct event *ev;
};

/* Runs a detached list in order, freeing each item before its callback so a callback may free
 * whatever arg points to without us touching it again. */
static void loopq_items_run(struct loopq_item *it)
{
	while (it != NULL) {
		struct loopq_item *next = it->next;
		loopq_fn *fn = it->fn;
		void *arg = it->arg;

		free(it);
		fn(arg);
		it = next;
	}
}

static struct loopq_item *loopq_items_take(struct loopq *q)
{
	struct loopq_item *list;

	pthread_mutex_lock(&q->mu);
	list = q->head;
	q->head = NULL;
	q->tail = NULL;
	pthread_mutex_unlock(&q->mu);
	return list;
}

static void loopq_efd_drain(struct loopq *q)
{
	uint64_t v;

	while (read(q->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

static void loopq_on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct loopq *q = arg;

	(void)fd;
	(void)what;
	/* Drain first, then take the list: a post that lands after the take finds the list empty and
	 * writes again, so no item can be left behind without a pending wake-up. */
	loopq_efd_drain(q);
	loopq_items_run(loopq_items_take(q));
}

struct loopq *loopq_new(struct event_base *base)
{
	struct loopq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0) {
		free(q);
		return NULL;
	}
	if (pthread_mutex_init(&q->mu, NULL) != 0) {
		close(q->efd);
		free(q);
		return NULL;
	}
	q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, loopq_on_wake, q);
	if (q->ev == NULL || event_add(q->ev, NULL) != 0) {
		if (q->ev != NULL)
			event_free(q->ev);
		pthread_mutex_destroy(&q->mu);
		close(q->efd);
		free(q);
		return NULL;
	}
	return q;
}

void loopq_post(struct loopq *q, loopq_fn *fn, void *arg)
{
	struct loopq_item *it = malloc(sizeof(*it));
	int was_empty;

	/* A completion that cannot be queued would leave a session waiting forever with nothing to
	 * answer it; with malloc failing for 24 bytes the process cannot go on anyway. */
	if (it == NULL) {
		fputs("mailwerk: loopq_post: out of memory\n", stderr);
		abort();
	}
	it->next = NULL;
	it->fn = fn;
	it->arg = arg;

	pthread_mutex_lock(&q->mu);
	was_empty = q->head == NULL;
	if (was_empty)
		q->head = it;
	else
		q->tail->next = it;
	q->tail = it;
	pthread_mutex_unlock(&q->mu);

	/* Only the post that makes the list non-empty needs to wake the loop: the loop takes the whole
	 * list at once, so later posts ride on that wake-up (one syscall per burst, not per post). */
	if (was_empty) {
		uint64_t one = 1;

		while (write(q->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		/* EAGAIN would need the counter near 2^64: it cannot happen, and the loop is awake anyway. */
	}
}

void loopq_free(struct loopq *q)
{
	struct loopq_item *list;

	if (q == NULL)
		return;
	event_free(q->ev);
	/* Callbacks run here may post again (a completion that triggers another): keep going until
	 * nothing is left. */
	while ((list = loopq_items_take(q)) != NULL)
		loopq_items_run(list);
	pthread_mutex_destroy(&q->mu);
	close(q->efd);
	free(q);
}

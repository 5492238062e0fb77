/* runner.h — the delivery runner: a thread with its own queue and accounts connections that finds
 * what is due, delivers local recipients into their Maildirs itself, hands remote ones to the pool
 * (pool.h, loop thread) as jobs, and records every outcome: retries on the schedule, failures after
 * max_queue_lifetime, DSNs and delay warnings queued in the same transaction. */
#ifndef MAILWERK_DELIVERY_RUNNER_H
#define MAILWERK_DELIVERY_RUNNER_H

#include <stddef.h>

#include "util/result.h"

struct conf;
struct metrics;
struct delivery_pool;
struct delivery_runner;
struct remote_job;

/* Starts the thread. Remote jobs go to pool; recorded outcomes are counted into metrics (kept;
 * NULL: not counted). NULL with a sentence on failure. */
struct delivery_runner *delivery_runner_start(const struct conf *c, struct delivery_pool *pool, struct metrics *metrics,
					      char *error_r, size_t error_size);
/* After a reload: the schedule, limits, rates and names of c apply from the next pass. -1 when
 * out of memory (nothing changed). */
int delivery_runner_reconfigure(struct delivery_runner *d, const struct conf *c);
/* Any thread, e.g. after a message is committed: look for due work now rather than at the next poll. */
void delivery_runner_kick(struct delivery_runner *d);
/* Any thread: a job the pool finished; the runner records it and frees it. */
void delivery_runner_job_done(struct delivery_runner *d, struct remote_job *job);
/* What became of a bounce asked of the runner, as delivery_bounce_now (operator.h) answers it;
 * error is NULL on success and valid only during the call. Runs on the runner's thread. */
typedef void delivery_runner_bounce_fn(void *arg, enum result r, unsigned count, const char *error);
/* Any thread: bounces message id (`mailwerk queue bounce`) on the runner's thread, between two of
 * its passes: there its claims say which messages have an attempt in flight (refused then, see
 * operator.c), and no local delivery is half done. done runs once, also when the runner stops
 * first or is out of memory. */
void delivery_runner_bounce(struct delivery_runner *d, const char *id, delivery_runner_bounce_fn *done, void *arg);
/* Records what finished, stops the thread, frees. Jobs still in the pool stay in the queue. */
void delivery_runner_stop(struct delivery_runner *d);

#endif

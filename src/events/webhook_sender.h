/* webhook_sender.h — posts the outbox (webhooks_store.h) to the webhooks' endpoints.
 *
 * The steps of a round, after DESIGN.md §4's check → start → callback → proceed: on a timer (and
 * when kicked), a worker job records the outcomes of finished posts, fans new events out to
 * deliveries, and reads the due ones that fit the limits ([webhooks] max_concurrency per endpoint,
 * WEBHOOK_SENDER_MAX_FLIGHTS in all); back on the loop each is signed (Standard Webhooks) and
 * POSTed with the HTTP client; each answer becomes an outcome for the next round's job: 2xx
 * delivered, anything else another attempt after the next wait of [webhooks] retry_schedule, or
 * failed when the schedule is used up. All SQLite work is on the workers, one job at a time; the
 * posts in flight are known only in memory, so after a crash they are pending again and are sent
 * again (at-least-once; the webhook-id stays the same, for receivers to drop repeats).
 *
 * Loop thread only. */
#ifndef MAILWERK_EVENTS_WEBHOOK_SENDER_H
#define MAILWERK_EVENTS_WEBHOOK_SENDER_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct event_base;
struct metrics;
struct webhook_sender;
struct webhooks_store;
struct worker_pool;

#define WEBHOOK_SENDER_TICK_MS 200    /* how often the outbox is looked at */
#define WEBHOOK_SENDER_MAX_FLIGHTS 64 /* posts in flight in all */

/* Opens the store (DATA_DIR/queue.db) and starts the rounds. *conf is read whenever it is needed,
 * so a reload that replaces it takes effect on the next post. While *held is true no round starts:
 * another process posts the outbox (the worker this one starts beside at an upgrade), and two
 * senders would post every delivery twice. Each attempt is counted in metrics (util/metrics.h;
 * NULL: not counted) once its outcome is recorded. NULL with a sentence. */
struct webhook_sender *webhook_sender_start(struct event_base *base, struct worker_pool *workers,
					    struct conf *const *conf, const bool *held, struct metrics *metrics,
					    char *error, size_t error_size);
/* Stops: posts in flight are dropped (pending again after the restart), outcomes not yet recorded
 * are recorded now, synchronously. Call after the workers have stopped (server.h: deinit hooks):
 * the loop is no longer running then, so waiting for the disk here holds nobody up. */
void webhook_sender_stop(struct webhook_sender *snd);
/* Something may have been recorded (the queue's commit notification): look at once. */
void webhook_sender_kick(struct webhook_sender *snd);
/* The store, for the API's handlers (worker threads; every call locks it). Valid until stop. */
struct webhooks_store *webhook_sender_store(struct webhook_sender *snd);

#endif

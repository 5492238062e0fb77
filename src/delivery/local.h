/* local.h — the local delivery runner: a thread that delivers due recipients at local domains into
 * their Maildirs and records the results in the queue, right after each commit and on retries. */
#ifndef MAILWERK_DELIVERY_LOCAL_H
#define MAILWERK_DELIVERY_LOCAL_H

#include <stddef.h>

struct conf;
struct delivery_local;

/* Starts the thread with its own queue and accounts connections. NULL with a sentence on failure. */
struct delivery_local *delivery_local_start(const struct conf *c, char *error_r, size_t error_size);
/* Loop thread, after a message is committed: look for due work now rather than at the next poll. */
void delivery_local_kick(struct delivery_local *d);
/* Finishes the batch in hand, stops the thread, frees. */
void delivery_local_stop(struct delivery_local *d);

#endif

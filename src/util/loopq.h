/* loopq.h — hands work from other threads back to the event loop thread: any thread posts a
 * callback, the loop thread runs it. The only way results cross from threads to the loop. */
#ifndef MAILWERK_UTIL_LOOPQ_H
#define MAILWERK_UTIL_LOOPQ_H

struct event_base;
struct loopq;

typedef void loopq_fn(void *arg);

struct loopq *loopq_new(struct event_base *base);
/* Thread-safe. fn(arg) runs later on the loop thread, in posting order. */
void loopq_post(struct loopq *q, loopq_fn *fn, void *arg);
/* Runs whatever is still queued, then frees. Call on the loop thread after every poster has stopped. */
void loopq_free(struct loopq *q);

#endif

/* worker.h — a small pool of threads for work that would block the loop (password hashing now;
 * signing later). Results come back on the loop thread through a loopq. */
#ifndef MAILWERK_UTIL_WORKER_H
#define MAILWERK_UTIL_WORKER_H

struct loopq;
struct worker_pool;

typedef void worker_fn(void *arg);

struct worker_pool *worker_pool_new(struct loopq *lq, unsigned threads);
/* work(arg) runs on a worker thread, then done(arg) on the loop thread. */
void worker_pool_submit(struct worker_pool *p, worker_fn *work, worker_fn *done, void *arg);
/* Finishes queued jobs, joins the threads, frees. */
void worker_pool_free(struct worker_pool *p);

#endif

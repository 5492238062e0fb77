/* worker.c — fixed-size thread pool with a FIFO of jobs. */
#include "util/worker.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/loopq.h"

struct worker_job {
	struct worker_job *next;
	worker_fn *work;
	worker_fn *done;
	void *arg;
};

struct worker_pool {
	struct loopq *lq;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct worker_job *head, *tail;
	bool stopping;
	unsigned count;
	pthread_t threads[];
};

static void *worker_main(void *arg)
{
	struct worker_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		struct worker_job *j = p->head;
		if (j == NULL) { /* stopping and nothing left */
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->work(j->arg);
		loopq_post(p->lq, j->done, j->arg);
		free(j);
	}
}

struct worker_pool *worker_pool_new(struct loopq *lq, unsigned threads)
{
	struct worker_pool *p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
	if (p == NULL)
		return NULL;
	p->lq = lq;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	for (; p->count < threads; p->count++)
		if (pthread_create(&p->threads[p->count], NULL, worker_main, p) != 0)
			break;
	if (p->count == 0) {
		worker_pool_free(p);
		return NULL;
	}
	return p;
}

void worker_pool_submit(struct worker_pool *p, worker_fn *work, worker_fn *done, void *arg)
{
	struct worker_job *j = malloc(sizeof(*j));
	if (j == NULL) { /* cannot queue: run it here rather than lose the callback */
		work(arg);
		loopq_post(p->lq, done, arg);
		return;
	}
	*j = (struct worker_job){.work = work, .done = done, .arg = arg};
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

void worker_pool_free(struct worker_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->count; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p);
}

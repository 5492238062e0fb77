/* control_int.h — what control.c (the socket and its connections), control_cmd.c (the commands)
 * and control_status.c (status's health part) share. */
#ifndef MAILWERK_SERVER_CONTROL_INT_H
#define MAILWERK_SERVER_CONTROL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "server/control_msg.h"
#include "server/parent_msg.h"

struct conf;
struct event;
struct loopq;
struct queue;
struct server;

struct control {
	struct server *srv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" when there is no socket */
	bool standby;          /* path is the standby one beside the serving worker's (control_take_over) */
	dev_t dev;             /* the socket's file at path, as bound: only that one is removed at the end */
	ino_t ino;
	int fd;
	struct event *listen_ev;
	struct control_conn *conns;
	unsigned conn_count;
	uint64_t next_conn_id;
	unsigned char *rec;    /* IPC_RECORD_MAX octets: the record being read */
	bool sandbox;          /* the worker entered its sandbox ([server] sandbox at start) */
	int64_t started;       /* unix seconds */
	int64_t last_reload;   /* unix seconds, 0 when none */
	struct parent_upgrade_outcome upgrade; /* the last upgrade the parent told of; seq 0: none */
	int64_t upgrade_at;    /* when it told, unix seconds */
	/* the commands' own queue connection, used on the worker threads one job at a time */
	pthread_mutex_t queue_mu;
	struct queue *queue;
};

/* One request on its way through a worker thread. */
struct control_job {
	struct control *ctl;
	uint64_t conn_id;
	struct control_request req;
	struct loopq *loopq; /* where the answer goes back to the loop thread (control_job_done) */
	json_t *status;     /* STATUS: the loop's part, completed by the work */
	/* the answer */
	enum control_msg_type reply;
	char *body;         /* JSON or a sentence, malloc'd */
	bool changed;       /* the queue changed: the runner looks at once */
	/* STATUS: the configuration when asked (a reference, taken and dropped on the loop thread),
	 * for what the worker thread reads (control_status.c) */
	struct conf *conf;
};

/* Loop thread: a job for req from connection conn_id, with what only the loop may read filled in.
 * NULL when out of memory. */
struct control_job *control_job_new(struct control *ctl, uint64_t conn_id, const struct control_request *req);
/* Loop thread: starts an ACME run (acme_renew_now) and answers at once: started, or why not. */
void control_job_acme(struct control_job *j);
/* Worker thread: does a STATUS, HOLD or RELEASE request and sets the answer. */
void control_job_work(void *arg);
/* Loop thread: hands a BOUNCE to the delivery runner, which answers it on its thread between two
 * passes (delivery_runner_bounce); the answer then comes to control_job_done through j->loopq. */
void control_job_bounce_start(struct control_job *j);
/* Loop thread: sends the answer of j to its connection, if still open, and frees j. */
void control_job_done(void *arg);
void control_job_free(struct control_job *j);

/* "2026-05-01T12:00:00Z" (ISO 8601, UTC), or null for 0 */
json_t *control_json_time(int64_t t);

/* control_status.c: the parts of STATUS that tell of the server's health. Loop thread, into
 * j->status: the deliveries of the last minute and the last hour, the TLS certificates served; and
 * j->conf for the worker thread's part. 0, or -1 when out of memory. */
int control_status_loop_add(struct control_job *j);
/* Worker thread, into j->status: the free space in data_dir, the local domains' active DKIM keys.
 * 0, or -1 when out of memory. */
int control_status_work_add(struct control_job *j);

#endif

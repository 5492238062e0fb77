/* parent_int.h — what parent.c (the supervisor) and parent_upgrade.c (the upgrade in place) share:
 * the parent's state. Loop thread only; the parent has no other. */
#ifndef MAILWERK_SERVER_PARENT_INT_H
#define MAILWERK_SERVER_PARENT_INT_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "ipc/ipc.h"
#include "server/notify.h"
#include "server/parent.h"
#include "server/parent_msg.h"
#include "server/parent_upgrade.h"

/* A worker told to stop drains its sessions for 10 s (server.c); one still there after this long
 * is hung, and is killed. */
#define PARENT_STOP_KILL_SECONDS 30

struct parent {
	struct event_base *base;
	struct conf *conf;
	char *const *overrides;
	unsigned n_overrides;
	const struct parent_programs *programs;
	parent_ready_fn *ready;
	struct parent_socket socks[IPC_FDS_MAX];
	size_t nsocks;
	pid_t worker;   /* 0: none running */
	int ipc;        /* our end of the worker's socketpair; -1 */
	struct event *ipc_ev, *sig_term, *sig_int, *sig_hup, *sig_chld, *restart_timer, *stop_timer;
	struct timespec worker_ready_at; /* when the current worker said READY; tv_sec -1: not yet */
	unsigned restart_delay; /* seconds before the next start, after a worker that died young */
	/* the DKIM signer of the current worker (signer.h); one of an earlier worker exits by itself
	 * (an upgrade's old worker's is upgrade.old.signer, reaped and waited for there) */
	pid_t signer;
	struct event *signer_timer;
	struct timespec signer_started_at;
	unsigned signer_delay;
	bool stopping, ever_ready;
	int exit_code;
	struct service_notifier notify;
	struct parent_upgrade upgrade; /* parent_upgrade.c's */
};

/* parent.c, for the upgrade, when the worker it was replacing goes on serving as the current one
 * (p->worker, p->ipc): reads its messages (-1 when out of memory); tells it to reload with the
 * listeners now bound (-1 when that cannot be sent, logged). */
int parent_worker_watch(struct parent *p);
int parent_worker_reload(struct parent *p);
/* Stopping: ends the loop once every child is gone (the worker, its signer, the upgrade's). */
void parent_maybe_done(struct parent *p);
/* Starts a DKIM signer for the current worker (p->signer), its end of their socketpair sent to the
 * worker; nothing while there is no worker, or while stopping. */
void parent_signer_start(struct parent *p);

#endif

/* parent_upgrade.h — upgrading a running server to the binary on disk without refusing a
 * connection: on SIGUSR2 the parent checks the binary at the path it was started from
 * (`serve --role=check`: it runs and takes the configuration), then executes it in its own place.
 * The pid stays (the service manager's MAINPID, the worker's parent), and so do the listening
 * sockets and the serving worker, whose descriptors cross the execve (parent_inherit.h). The new
 * program starts a new worker beside the old one (PARENT_MSG_LISTENERS_STANDBY); only once it is
 * READY is the old one told to drain: it closes its copies of the listeners (connections waiting in
 * the backlog go to the new worker), lets its sessions finish within [server] drain_timeout and
 * exits; it is killed if it stays PARENT_STOP_KILL_SECONDS longer. One worker at a time does the
 * background work (delivery, webhooks, reports): the new one begins it when the old one is gone
 * (PARENT_MSG_ALONE), so nothing is delivered twice for the overlap.
 *
 * Each worker has its own DKIM signer (signer.h). The new worker gets a new one, as any worker
 * start does; the old worker keeps its own, whose pid crosses the execve too, until it has exited:
 * that signer then reads its end closed and exits as well. The program executed reaps it without
 * taking it for the current signer (which would be restarted), waits for it at a stop, and kills it
 * if it stays PARENT_STOP_KILL_SECONDS after its worker; it is not restarted if it dies before its
 * worker (that worker's signing waits, then fails with a 4xx, as at any signer's death). When the
 * new worker dies before it is ready, the old worker's signer is the current one again (and the old
 * worker gets a new one if none crossed: it was being restarted at the execve).
 *
 * Any failure before the new worker is READY leaves the old worker serving, logged as
 * event=upgrade_failed with a reason= word and told to the worker for `mailwerk status`: a binary
 * that is missing, not executable or refuses the configuration (the check), an execve that fails,
 * a new worker that dies or is not ready within PARENT_UPGRADE_READY_SECONDS. An upgrade is
 * refused while one is under way, while the worker of the last one (or its signer) has not exited,
 * while no worker serves, and while stopping. */
#ifndef MAILWERK_SERVER_PARENT_UPGRADE_H
#define MAILWERK_SERVER_PARENT_UPGRADE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct event;
struct parent;

/* The check has this long to exit 0; a new worker this long to say READY. */
#define PARENT_UPGRADE_CHECK_SECONDS 30
#define PARENT_UPGRADE_READY_SECONDS 60

enum parent_upgrade_phase {
	PARENT_UPGRADE_IDLE = 0,
	PARENT_UPGRADE_CHECKING, /* the new binary's check runs */
	PARENT_UPGRADE_STARTING, /* executed: the new worker starts beside the old one */
};

/* The old worker: the one that served when the upgrade began, until it has exited; and its signer
 * until that one has (a little later). */
struct parent_old_worker {
	pid_t pid;     /* 0: none */
	int ipc;       /* our end of its socketpair; -1 */
	struct event *ipc_ev;
	bool draining; /* told to drain (else it still serves: the new worker is not ready yet) */
	/* its DKIM signer, never the current one; 0: none. When the new worker dies before it is
	 * ready, the roles swap: the old worker's signer is the current one again, and this is the
	 * signer of the new worker that died. */
	pid_t signer;
};

struct parent_upgrade {
	char binary[PATH_MAX]; /* the path this program was started from; "" when unknown */
	unsigned seq;          /* upgrades asked for, across executions */
	enum parent_upgrade_phase phase;
	pid_t check;           /* the check's pid; 0: none */
	bool check_timed_out;
	bool ready_timed_out;  /* the new worker was killed for not being ready in time */
	bool standby;          /* the current worker was started beside another one */
	bool old_unclean;      /* the old worker ended a stop uncleanly: so does the parent */
	struct parent_old_worker old;
	struct event *sig_usr2, *timer, *old_kill_timer;
};

/* At start, before anything is bound: remembers the binary's path, takes over what a parent that
 * executed us handed on (the listeners into p->socks, the serving worker as the old one), and
 * listens for SIGUSR2. 0, or -1 when out of memory. *inherited_r: whether an upgrade goes on. */
int parent_upgrade_init(struct parent *p, bool *inherited_r);
/* Whether a worker started now starts beside another one (it is then a standby until ALONE). */
bool parent_upgrade_beside(struct parent *p);
/* The current worker said READY. */
void parent_upgrade_worker_ready(struct parent *p);
/* The current worker has exited (p->worker already 0). true when the upgrade took it: the old
 * worker serves again as the current one; false when the usual restart applies. */
bool parent_upgrade_worker_exited(struct parent *p, int status);
/* A child that is neither the current worker nor the current signer has exited (reaped): the old
 * worker, its signer or the check. */
void parent_upgrade_reaped(struct parent *p, pid_t pid, int status);
/* Whether a child of the upgrade (the old worker, its signer, the check) still runs: a stop waits
 * for it. */
bool parent_upgrade_running(const struct parent *p);
/* Sends sig to the children of the upgrade (SIGTERM at a stop, SIGKILL when it takes too long); the
 * old signer gets SIGTERM only when its worker is gone, and follows that worker otherwise. */
void parent_upgrade_signal(struct parent *p, int sig);
void parent_upgrade_free(struct parent *p);

#endif

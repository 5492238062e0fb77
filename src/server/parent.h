/* parent.h — the parent process of `mailwerk serve`: it stays with the privileges it was started
 * with (root, or CAP_NET_BIND_SERVICE), binds every listener and keeps the descriptors, and runs the
 * worker — the same binary, executed again with `serve --role=worker` — which does all network,
 * queue and delivery work as [server] user. It restarts the worker when it dies (the listeners stay
 * open meanwhile, so clients wait in the backlog instead of being refused), handles SIGHUP (new
 * listeners bound here, then the worker reloads) and SIGUSR2 (an upgrade to the binary on disk,
 * parent_upgrade.h) and tells the service manager how things stand. With each worker it starts a
 * DKIM signer (signer.h), and restarts that one too when it dies. */
#ifndef MAILWERK_SERVER_PARENT_H
#define MAILWERK_SERVER_PARENT_H

#include "conf/conf.h"

/* Called once, when the first worker says it serves (the CLI prints what listens where). */
typedef void parent_ready_fn(const struct conf *c);

/* The command lines the parent executes (argv[0] included, NULL-terminated each). */
struct parent_programs {
	char *const *worker; /* the worker, from /proc/self/exe: `serve --role=worker ...` */
	char *const *signer; /* the DKIM signer (signer.h), from /proc/self/exe: `serve --role=signer ...` */
	char *const *self;   /* the parent itself again, at an upgrade: `serve ...` as it was started */
	char *const *check;  /* the new binary's check before an upgrade: `serve --role=check ...` */
};

/* Runs the parent until SIGTERM/SIGINT has stopped the worker: takes c's reference; programs is
 * kept. Returns the exit status: 0 after a clean stop, 1 when the first worker could not start or
 * a stop was unclean. */
int parent_run(struct conf *c, char *const *overrides, unsigned n_overrides, const struct parent_programs *programs,
	       parent_ready_fn *ready);

#endif

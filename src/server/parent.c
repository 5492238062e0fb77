/* parent.c — the supervising parent of `mailwerk serve` (parent.h): binds, starts the worker,
 * restarts it, forwards reloads and stops, and speaks to the service manager. It reads no mail,
 * opens no store and parses nothing a client sends; what it reads from the worker is checked
 * (ipc.h, parent_msg.h) as if it came from the network. */
#include "server/parent.h"
#include "server/parent_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "ipc/ipc.h"
#include "keys/dkim_store.h"
#include "net/listener.h"
#include "server/signer.h"
#include "util/identity.h"
#include "util/log.h"

/* A worker that served at least this long before it died is restarted at once (what killed it
 * need not kill the next); one that never came up, or died sooner, waits before the next start,
 * twice as long each time up to the cap, so that a worker that cannot start does not spin. */
#define PARENT_RESTART_HEALTHY_MS 1000
#define PARENT_RESTART_MAX_SECONDS 30

/* ---- listeners ---- */

static bool socket_wanted(const struct conf *c, const struct parent_socket *s)
{
	const struct conf_listen *cl = &c->listen[s->role];
	for (size_t i = 0; i < cl->count; i++)
		if (strcmp(cl->addrs[i].text, s->addr) == 0)
			return true;
	return false;
}

static bool socket_bound(const struct parent *p, enum conf_listener role, const char *addr)
{
	for (size_t i = 0; i < p->nsocks; i++)
		if (p->socks[i].role == role && strcmp(p->socks[i].addr, addr) == 0)
			return true;
	return false;
}

/* Makes the bound sockets match c: closes those no longer wanted, binds the new ones. 0, or -1
 * when one could not be bound (logged; the others are bound). */
static int sockets_sync(struct parent *p, const struct conf *c)
{
	size_t kept = 0;
	for (size_t i = 0; i < p->nsocks; i++) {
		if (socket_wanted(c, &p->socks[i])) {
			p->socks[kept++] = p->socks[i];
			continue;
		}
		log_info("event=unlisten role=%s addr=%s", conf_listener_str(p->socks[i].role), p->socks[i].addr);
		close(p->socks[i].fd);
	}
	p->nsocks = kept;
	int rc = 0;
	for (int role = 0; role < CONF_LISTEN_COUNT; role++) {
		const struct conf_listen *cl = &c->listen[role];
		for (size_t i = 0; i < cl->count; i++) {
			const struct conf_addr *a = &cl->addrs[i];
			if (socket_bound(p, role, a->text))
				continue;
			char err[256];
			int fd = p->nsocks < IPC_FDS_MAX ? net_listen_socket(a, err, sizeof(err)) : -1;
			if (fd < 0) {
				if (p->nsocks == IPC_FDS_MAX)
					snprintf(err, sizeof(err), "more than %d listeners", IPC_FDS_MAX);
				log_error("event=listen_failed role=%s addr=%s error=\"%s\"", conf_listener_str(role),
					  a->text, err);
				rc = -1;
				continue;
			}
			struct parent_socket *s = &p->socks[p->nsocks++];
			s->role = role;
			snprintf(s->addr, sizeof(s->addr), "%s", a->text);
			s->fd = fd;
			log_info("event=listen role=%s addr=%s", conf_listener_str(role), a->text);
		}
	}
	return rc;
}

static void sockets_close(struct parent *p)
{
	for (size_t i = 0; i < p->nsocks; i++)
		close(p->socks[i].fd);
	p->nsocks = 0;
}

/* Sends the bound sockets with a message of type t. */
static int sockets_send(struct parent *p, enum parent_msg_type t)
{
	char text[IPC_PAYLOAD_MAX];
	int fds[IPC_FDS_MAX];
	int len = parent_sockets_format(p->socks, p->nsocks, text, sizeof(text));
	for (size_t i = 0; i < p->nsocks; i++)
		fds[i] = p->socks[i].fd;
	if (len < 0 || ipc_send(p->ipc, t, 0, text, (size_t)len, fds, p->nsocks) != 0) {
		log_error("event=worker_message_failed type=%d error=\"%s\"", (int)t, len < 0 ? "too long" : strerror(errno));
		return -1;
	}
	return 0;
}

/* The next delay before a start: none after a process that served at least PARENT_RESTART_HEALTHY_MS
 * since (tv_sec -1: it never came up), else 1 s doubling to the cap. */
static unsigned restart_delay_next(unsigned delay, const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long served_ms = since->tv_sec < 0 ? -1
						: (long long)(now.tv_sec - since->tv_sec) * 1000 +
							  (now.tv_nsec - since->tv_nsec) / 1000000;
	if (served_ms >= PARENT_RESTART_HEALTHY_MS)
		return 0;
	return delay == 0 ? 1 : delay * 2 > PARENT_RESTART_MAX_SECONDS ? PARENT_RESTART_MAX_SECONDS : delay * 2;
}

/* ---- the worker ---- */

static void worker_ipc_close(struct parent *p)
{
	if (p->ipc_ev != NULL)
		event_free(p->ipc_ev);
	p->ipc_ev = NULL;
	if (p->ipc >= 0)
		close(p->ipc);
	p->ipc = -1;
}

static void worker_message(struct parent *p, const struct ipc_msg *m)
{
	if (m->type == PARENT_MSG_READY) {
		log_info("event=worker_ready pid=%ld", (long)p->worker);
		clock_gettime(CLOCK_MONOTONIC, &p->worker_ready_at);
		if (!p->ever_ready && p->ready != NULL)
			p->ready(p->conf);
		/* MAINPID: we are the process the manager watches, whichever worker serves */
		service_notify(&p->notify, "READY=1\nSTATUS=Accepting mail.\nMAINPID=%ld", (long)getpid());
		p->ever_ready = true;
		parent_upgrade_worker_ready(p);
	} else if (m->type == PARENT_MSG_RELOADED) {
		bool ok = m->len == 2 && memcmp(m->payload, "ok", 2) == 0;
		service_notify(&p->notify, "READY=1\nSTATUS=%s",
			       ok ? "Accepting mail; the configuration was reloaded."
				  : "Accepting mail; the new configuration was refused (see the log).");
	} else {
		log_warn("event=worker_message_ignored type=%u", (unsigned)m->type);
	}
}

static void worker_ipc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	unsigned char *rec = malloc(IPC_RECORD_MAX);
	int fds[IPC_FDS_MAX];
	size_t nfds = 0;
	struct ipc_msg m;
	const char *err = "out of memory";
	int r = rec != NULL ? ipc_recv_msg(fd, rec, &m, fds, &nfds, &err) : (errno = ENOMEM, -1);
	if (r > 0) {
		ipc_fds_close(fds, nfds); /* the worker sends none */
		worker_message(p, &m);
	} else if (r < 0 && errno == EBADMSG) {
		log_warn("event=worker_message_refused error=\"%s\"", err);
	} else if (r == 0 || (errno != EAGAIN && errno != ENOMEM)) {
		/* closed (it is exiting: SIGCHLD tells how) or broken: either way, nothing more from it */
		worker_ipc_close(p);
	}
	free(rec);
}

/* In the child of a fork: sock becomes descriptor fd, and the program is executed with argv (its role
 * in it). Never returns. */
static void child_exec(int sock, int fd, char *const *argv, const char *what)
{
	/* the child dies with us rather than serving on unsupervised (SIGKILL: a parent that is
	 * gone cannot be asked how to stop); set again after it changes user, which clears it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(sock, fd) < 0)
		_exit(127);
	/* signals blocked or ignored here would be so in the child too */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execv("/proc/self/exe", argv);
	fprintf(stderr, "mailwerk: cannot start the %s: %s\n", what, strerror(errno));
	_exit(127);
}

static int worker_start(struct parent *p)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		log_error("event=worker_start_failed error=\"socketpair: %s\"", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("event=worker_start_failed error=\"fork: %s\"", strerror(errno));
		close(sv[0]), close(sv[1]);
		return -1;
	}
	if (pid == 0)
		child_exec(sv[1], PARENT_IPC_FD, p->programs->worker, "worker");
	close(sv[1]);
	p->worker = pid;
	p->ipc = sv[0];
	p->worker_ready_at.tv_sec = -1;
	log_info("event=worker_started pid=%ld", (long)pid);
	evutil_make_socket_nonblocking(p->ipc);
	if (parent_worker_watch(p) != 0)
		log_error("event=worker_ipc_failed error=\"out of memory\"");
	/* the socket holds it until the worker reads it, first thing */
	if (sockets_send(p, parent_upgrade_beside(p) ? PARENT_MSG_LISTENERS_STANDBY : PARENT_MSG_LISTENERS) != 0)
		return -1;
	/* a signer of the last worker exits on its own: this one gets its own (a standby too) */
	parent_signer_start(p);
	return 0;
}

int parent_worker_watch(struct parent *p)
{
	p->ipc_ev = event_new(p->base, p->ipc, EV_READ | EV_PERSIST, worker_ipc_cb, p);
	return p->ipc_ev != NULL && event_add(p->ipc_ev, NULL) == 0 ? 0 : -1;
}

int parent_worker_reload(struct parent *p)
{
	return sockets_send(p, PARENT_MSG_RELOAD);
}

/* ---- the signer ---- */

/* A signer of its own user gets the key store, and a way to it through data_dir (search only). */
static void signer_store_give(const struct conf *c, uid_t uid, gid_t gid)
{
	char err[512];
	struct stat st;
	if (geteuid() != 0)
		return; /* not ours to give: the operator has set it up (README: Processes and sandbox) */
	if (dkim_store_give(c->data_dir, uid, gid, err, sizeof(err)) != 0)
		log_warn("event=dkim_store_give_failed error=\"%s\"", err);
	if (stat(c->data_dir, &st) == 0 && st.st_uid != uid && (st.st_mode & S_IXOTH) == 0) {
		if (chmod(c->data_dir, (st.st_mode & 07777) | S_IXOTH) == 0)
			log_info("event=data_dir_searchable path=%s why=signer_user", c->data_dir);
		else
			log_warn("event=data_dir_not_searchable path=%s error=\"%s\"", c->data_dir, strerror(errno));
	}
}

/* A signer for the current worker, its end of their socketpair sent to the worker. */
void parent_signer_start(struct parent *p)
{
	if (p->worker == 0 || p->ipc < 0 || p->stopping)
		return; /* the next worker gets one */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		log_error("event=signer_start_failed error=\"socketpair: %s\"", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("event=signer_start_failed error=\"fork: %s\"", strerror(errno));
		close(sv[0]), close(sv[1]);
		return;
	}
	if (pid == 0)
		child_exec(sv[1], SIGNER_FD, p->programs->signer, "DKIM signer");
	close(sv[1]);
	p->signer = pid;
	clock_gettime(CLOCK_MONOTONIC, &p->signer_started_at);
	log_info("event=signer_started pid=%ld worker=%ld", (long)pid, (long)p->worker);
	/* the worker keeps the only other copy: when it goes, the signer reads the end and exits */
	if (ipc_send(p->ipc, PARENT_MSG_SIGNER, 0, NULL, 0, &sv[0], 1) != 0)
		log_error("event=worker_message_failed type=%d error=\"%s\"", (int)PARENT_MSG_SIGNER, strerror(errno));
	close(sv[0]);
}

static void signer_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	if (p->signer == 0)
		parent_signer_start(p);
}

static void signer_exited(struct parent *p, int status)
{
	pid_t pid = p->signer;
	p->signer = 0;
	if (p->stopping || p->worker == 0) {
		log_info("event=signer_stopped pid=%ld", (long)pid);
		parent_maybe_done(p);
		return;
	}
	if (WIFSIGNALED(status))
		log_error("event=signer_died pid=%ld signal=%d", (long)pid, WTERMSIG(status));
	else
		log_error("event=signer_died pid=%ld status=%d", (long)pid, WEXITSTATUS(status));
	/* the worker's requests wait meanwhile (signer_client.h) */
	p->signer_delay = restart_delay_next(p->signer_delay, &p->signer_started_at);
	log_info("event=signer_restart in=%us", p->signer_delay);
	struct timeval tv = {.tv_sec = p->signer_delay};
	evtimer_add(p->signer_timer, &tv);
}

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	if (!p->stopping && p->worker == 0)
		worker_start(p);
}

static void worker_schedule_restart(struct parent *p)
{
	p->restart_delay = restart_delay_next(p->restart_delay, &p->worker_ready_at);
	log_info("event=worker_restart in=%us", p->restart_delay);
	struct timeval tv = {.tv_sec = p->restart_delay};
	evtimer_add(p->restart_timer, &tv);
}

static void worker_exited(struct parent *p, int status)
{
	pid_t pid = p->worker;
	p->worker = 0;
	worker_ipc_close(p);
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (p->stopping) {
		log_info("event=worker_stopped pid=%ld status=%d", (long)pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		p->exit_code = clean && !p->upgrade.old_unclean ? 0 : 1;
		parent_maybe_done(p);
		return;
	}
	if (WIFSIGNALED(status))
		log_error("event=worker_died pid=%ld signal=%d", (long)pid, WTERMSIG(status));
	else
		log_error("event=worker_died pid=%ld status=%d", (long)pid, WEXITSTATUS(status));
	if (parent_upgrade_worker_exited(p, status))
		return;
	if (!p->ever_ready) {
		/* the first one could not start (it said why on stderr): so would the next */
		p->exit_code = 1;
		event_base_loopexit(p->base, NULL);
		return;
	}
	service_notify(&p->notify, "STATUS=The worker died; restarting it.");
	worker_schedule_restart(p);
}

/* ---- signals ---- */

/* Stopping: done once the worker and its signer (which follows it) are gone, and the upgrade's
 * children. */
void parent_maybe_done(struct parent *p)
{
	if (p->stopping && p->worker == 0 && p->signer == 0 && !parent_upgrade_running(p))
		event_base_loopexit(p->base, NULL);
}

static void parent_reload(struct parent *p)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* MONOTONIC_USEC: when the reload began, which Type=notify-reload units need */
	service_notify(&p->notify, "RELOADING=1\nMONOTONIC_USEC=%llu",
		       (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
	char err[512];
	struct conf *c = conf_load(p->conf->path, p->overrides, p->n_overrides, err, sizeof(err));
	if (c == NULL) {
		log_error("event=reload result=failed error=\"%s\"", err);
		service_notify(&p->notify, "READY=1\nSTATUS=Accepting mail; the new configuration was refused (see the log).");
		return;
	}
	sockets_sync(p, c);
	conf_free(p->conf);
	p->conf = c;
	/* the worker reads the file itself and answers RELOADED; without one, the next starts with it */
	if (p->worker == 0 || p->ipc < 0 || sockets_send(p, PARENT_MSG_RELOAD) != 0)
		service_notify(&p->notify, "READY=1\nSTATUS=Reloaded; the worker starts with it.");
}

static void parent_stop(struct parent *p)
{
	if (p->stopping)
		return;
	p->stopping = true;
	log_info("event=parent_stopping worker=%ld", (long)p->worker);
	service_notify(&p->notify, "STOPPING=1\nSTATUS=Stopping.");
	/* no new connection waits for a worker that is about to go */
	sockets_close(p);
	parent_upgrade_signal(p, SIGTERM);
	if (p->worker > 0)
		kill(p->worker, SIGTERM);
	else if (p->signer > 0)
		kill(p->signer, SIGTERM); /* no worker's end will close for it */
	/* whoever stays past this is hung, and is killed */
	struct timeval tv = {.tv_sec = PARENT_STOP_KILL_SECONDS};
	evtimer_add(p->stop_timer, &tv);
	parent_maybe_done(p);
}

static void stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	if (p->worker > 0) {
		log_error("event=worker_stop_forced pid=%ld after=%ds", (long)p->worker, PARENT_STOP_KILL_SECONDS);
		kill(p->worker, SIGKILL); /* SIGCHLD follows: worker_exited ends the loop, unclean */
	}
	if (p->signer > 0)
		kill(p->signer, SIGKILL);
	parent_upgrade_signal(p, SIGKILL);
}

static void parent_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	if (sig == SIGCHLD) {
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == p->worker)
				worker_exited(p, status);
			else if (pid == p->signer)
				signer_exited(p, status);
			else
				parent_upgrade_reaped(p, pid, status);
		}
	} else if (sig == SIGHUP) {
		if (!p->stopping)
			parent_reload(p);
	} else {
		parent_stop(p);
	}
}

static void parent_free(struct parent *p)
{
	parent_upgrade_free(p);
	worker_ipc_close(p);
	sockets_close(p);
	struct event *evs[] = {p->sig_term, p->sig_int, p->sig_hup, p->sig_chld, p->restart_timer, p->stop_timer,
			       p->signer_timer};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	service_notifier_close(&p->notify);
	if (p->base != NULL)
		event_base_free(p->base);
	conf_free(p->conf);
}

int parent_run(struct conf *c, char *const *overrides, unsigned n_overrides, const struct parent_programs *programs,
	       parent_ready_fn *ready)
{
	struct parent p = {.conf = c, .overrides = overrides, .n_overrides = n_overrides, .programs = programs,
			   .ready = ready, .ipc = -1, .exit_code = 1, .upgrade.old.ipc = -1};
	uid_t uid;
	gid_t gid;
	char uerr[256];
	if (c->signer_user[0] != '\0' && identity_lookup(c->signer_user, &uid, &gid, uerr, sizeof(uerr)) != 0) {
		/* found now rather than by a signer that dies at every start */
		log_error("event=parent_failed error=\"[server] signer_user: %s\"", uerr);
		conf_free(c);
		return 1;
	}
	if (c->signer_user[0] != '\0')
		signer_store_give(c, uid, gid);
	char nerr[256];
	/* opened (and $NOTIFY_SOCKET unset) before the worker exists: only we speak to the manager */
	if (!service_notifier_open(&p.notify, nerr, sizeof(nerr)))
		log_warn("event=notify_socket_unusable error=\"%s\"", nerr);
	signal(SIGPIPE, SIG_IGN);
	p.base = event_base_new();
	if (p.base == NULL) {
		log_error("event=parent_failed error=\"out of memory\"");
		parent_free(&p);
		return 1;
	}
	p.sig_term = evsignal_new(p.base, SIGTERM, parent_signal_cb, &p);
	p.sig_int = evsignal_new(p.base, SIGINT, parent_signal_cb, &p);
	p.sig_hup = evsignal_new(p.base, SIGHUP, parent_signal_cb, &p);
	p.sig_chld = evsignal_new(p.base, SIGCHLD, parent_signal_cb, &p);
	p.restart_timer = evtimer_new(p.base, restart_cb, &p);
	p.stop_timer = evtimer_new(p.base, stop_timeout_cb, &p);
	p.signer_timer = evtimer_new(p.base, signer_restart_cb, &p);
	if (p.sig_term == NULL || p.sig_int == NULL || p.sig_hup == NULL || p.sig_chld == NULL ||
	    p.restart_timer == NULL || p.stop_timer == NULL || p.signer_timer == NULL || evsignal_add(p.sig_term, NULL) || evsignal_add(p.sig_int, NULL) ||
	    evsignal_add(p.sig_hup, NULL) || evsignal_add(p.sig_chld, NULL)) {
		log_error("event=parent_failed error=\"cannot install signal handlers\"");
		parent_free(&p);
		return 1;
	}
	bool inherited = false;
	if (parent_upgrade_init(&p, &inherited) != 0) {
		log_error("event=parent_failed error=\"out of memory\"");
		parent_free(&p);
		return 1;
	}
	if (inherited) {
		/* an upgrade goes on: the old worker serves until the new one is ready, whatever fails here
		 * (a new listener that cannot be bound is logged, as at a reload) */
		sockets_sync(&p, c);
		if (worker_start(&p) != 0 && p.worker > 0)
			kill(p.worker, SIGKILL); /* its SIGCHLD hands the service back to the old worker */
		else if (p.worker == 0)
			parent_upgrade_worker_exited(&p, 0);
	} else if (sockets_sync(&p, c) != 0 || worker_start(&p) != 0) {
		/* a listener that cannot be bound at start is an error, as it was before the split */
		if (p.worker > 0) {
			kill(p.worker, SIGKILL);
			waitpid(p.worker, NULL, 0);
		}
		if (p.signer > 0) {
			kill(p.signer, SIGKILL);
			waitpid(p.signer, NULL, 0);
		}
		parent_free(&p);
		return 1;
	}
	event_base_dispatch(p.base);
	int rc = p.exit_code;
	log_info("event=stopped role=parent");
	parent_free(&p);
	return rc;
}

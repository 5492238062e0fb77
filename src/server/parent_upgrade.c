/* parent_upgrade.c — the upgrade in place (parent_upgrade.h): the check of the new binary, the
 * execve with the descriptors kept, and, in the program executed, the hand-over from the old
 * worker to a new one. */
#include "server/parent_upgrade.h"
#include "server/parent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "server/parent_inherit.h"
#include "util/log.h"

extern char **environ;

/* Kept pending across the execve (blocked before it, unblocked by the program executed once its
 * handlers are in place), so that none of them finds the default action in between: SIGTERM,
 * SIGINT and SIGUSR2 would end the process, SIGCHLD would be lost for the old worker. */
static const int upgrade_held_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGCHLD};

static void held_signals_mask(int how, sigset_t *old_r)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(upgrade_held_signals) / sizeof(upgrade_held_signals[0]); i++)
		sigaddset(&set, upgrade_held_signals[i]);
	sigprocmask(how, &set, old_r);
}

/* ---- telling: the log, the service manager, the worker ---- */

/* The worker serving keeps the outcome for `mailwerk status`, which `serve --upgrade` waits on. */
static void outcome_tell(struct parent *p, bool done, const char *reason)
{
	struct parent_upgrade_outcome o = {.seq = p->upgrade.seq, .done = done};
	snprintf(o.reason, sizeof(o.reason), "%s", done ? "" : reason);
	char text[PARENT_UPGRADE_REASON_MAX + 32];
	int len = parent_upgrade_format(&o, text, sizeof(text));
	if (p->ipc >= 0 && len > 0 && ipc_send(p->ipc, PARENT_MSG_UPGRADE, 0, text, (size_t)len, NULL, 0) != 0)
		log_warn("event=worker_message_failed type=%d error=\"%s\"", PARENT_MSG_UPGRADE, strerror(errno));
}

/* The upgrade ends without a new worker: the one serving goes on. reason is a stable word. */
static void upgrade_fail(struct parent *p, const char *reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void upgrade_fail(struct parent *p, const char *reason, const char *fmt, ...)
{
	struct parent_upgrade *u = &p->upgrade;
	char text[PARENT_UPGRADE_REASON_MAX + 1], safe[LOG_VALUE_SIZE(PARENT_UPGRADE_REASON_MAX)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_error("event=upgrade_failed seq=%u reason=%s worker=%ld error=%s", u->seq, reason, (long)p->worker,
		  log_safe(safe, sizeof(safe), text, (unsigned)strlen(text)));
	u->phase = PARENT_UPGRADE_IDLE;
	evtimer_del(u->timer);
	service_notify(&p->notify, "READY=1\nSTATUS=Accepting mail; the upgrade failed (see the log).");
	outcome_tell(p, false, text);
}

/* ---- the old worker ---- */

static void old_close(struct parent_upgrade *u)
{
	if (u->old.ipc_ev != NULL)
		event_free(u->old.ipc_ev);
	u->old.ipc_ev = NULL;
	if (u->old.ipc >= 0)
		close(u->old.ipc);
	u->old.ipc = -1;
}

/* It has nothing more to tell that matters (a late RELOADED); its end means it is exiting, and
 * SIGCHLD says how. */
static void old_ipc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent_upgrade *u = arg;
	unsigned char *rec = malloc(IPC_RECORD_MAX);
	int fds[IPC_FDS_MAX];
	size_t nfds = 0;
	struct ipc_msg m;
	const char *err = "out of memory";
	int r = rec != NULL ? ipc_recv_msg(fd, rec, &m, fds, &nfds, &err) : (errno = ENOMEM, -1);
	if (r > 0)
		ipc_fds_close(fds, nfds);
	else if (r == 0 || (errno != EAGAIN && errno != ENOMEM && errno != EBADMSG))
		old_close(u);
	free(rec);
}

/* The old worker's deadline; or, once it has gone, its signer's, which exits at once when it
 * reads its end closed unless it is hung. */
static void old_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	if (p->upgrade.old.pid > 0) {
		log_error("event=worker_drain_forced pid=%ld", (long)p->upgrade.old.pid);
		kill(p->upgrade.old.pid, SIGKILL);
	} else if (p->upgrade.old.signer > 0) {
		log_error("event=signer_stop_forced pid=%ld after=%ds", (long)p->upgrade.old.signer, PARENT_STOP_KILL_SECONDS);
		kill(p->upgrade.old.signer, SIGKILL);
	}
}

/* The old worker has gone (or never was): its signer, if it is still there, has its deadline. */
static void old_signer_deadline(struct parent_upgrade *u)
{
	evtimer_del(u->old_kill_timer);
	if (u->old.signer > 0) {
		struct timeval tv = {.tv_sec = PARENT_STOP_KILL_SECONDS};
		evtimer_add(u->old_kill_timer, &tv);
	}
}

/* The new worker serves: the old one stops accepting and lets its sessions finish. */
static void old_drain(struct parent *p)
{
	struct parent_upgrade *u = &p->upgrade;
	unsigned secs = p->conf->drain_timeout;
	char text[16];
	int len = parent_drain_format(secs, text, sizeof(text));
	u->old.draining = true;
	log_info("event=worker_draining pid=%ld deadline=%us", (long)u->old.pid, secs);
	if (u->old.ipc < 0 || len < 0 || ipc_send(u->old.ipc, PARENT_MSG_DRAIN, 0, text, (size_t)len, NULL, 0) != 0)
		kill(u->old.pid, SIGTERM); /* no way to ask: it drains as at a stop */
	/* its own deadline, then the 10 s of a stop, and it is still there: hung */
	struct timeval tv = {.tv_sec = (time_t)secs + PARENT_STOP_KILL_SECONDS};
	evtimer_add(u->old_kill_timer, &tv);
}

/* ---- before the execve: the check, then the execve ---- */

/* Where the binary is: the name this program was executed by (AT_EXECFN, made absolute), which is
 * where a package puts the new version; /proc/self/exe names the file running now, which after a
 * package has replaced it is a deleted inode. */
static void binary_find(struct parent_upgrade *u)
{
	const char *fn = (const char *)getauxval(AT_EXECFN);
	char cwd[PATH_MAX];
	u->binary[0] = '\0';
	if (fn != NULL && fn[0] == '/') {
		snprintf(u->binary, sizeof(u->binary), "%s", fn);
	} else if (fn != NULL && fn[0] != '\0' && getcwd(cwd, sizeof(cwd)) != NULL) {
		int w = snprintf(u->binary, sizeof(u->binary), "%s/%s", cwd, fn);
		if (w < 0 || (size_t)w >= sizeof(u->binary))
			u->binary[0] = '\0';
	}
	if (u->binary[0] != '\0')
		return;
	ssize_t n = readlink("/proc/self/exe", u->binary, sizeof(u->binary) - 1);
	u->binary[n > 0 ? n : 0] = '\0';
	static const char deleted[] = " (deleted)";
	size_t len = strlen(u->binary);
	if (len > sizeof(deleted) - 1 && strcmp(u->binary + len - (sizeof(deleted) - 1), deleted) == 0)
		u->binary[len - (sizeof(deleted) - 1)] = '\0';
}

/* The environment of the program executed: ours, with the hand-over and the service manager's
 * socket (which our notifier took out of it) at the end, *owned_r of them allocated here. NULL
 * when out of memory. */
static char **exec_env(struct parent *p, const char *handover, size_t *owned_r)
{
	static const char key[] = PARENT_INHERIT_ENV "=", nkey[] = "NOTIFY_SOCKET=";
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	size_t nsize = sizeof(nkey) + sizeof(((struct sockaddr_un *)0)->sun_path) + 1;
	char **env = calloc(n + 3, sizeof(*env));
	char *h = malloc(sizeof(key) + strlen(handover));
	char *notify = malloc(nsize);
	if (env == NULL || h == NULL || notify == NULL) {
		free(env), free(h), free(notify);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], key, sizeof(key) - 1) != 0 && strncmp(environ[i], nkey, sizeof(nkey) - 1) != 0)
			env[k++] = environ[i];
	sprintf(h, "%s%s", key, handover);
	env[k++] = h;
	*owned_r = 1;
	if (service_notifier_env(&p->notify, notify, nsize)) {
		env[k++] = notify;
		(*owned_r)++;
	} else {
		free(notify);
	}
	return env;
}

static void exec_env_free(char **env, size_t owned)
{
	size_t n = 0;
	while (env[n] != NULL)
		n++;
	for (size_t i = n - owned; i < n; i++)
		free(env[i]);
	free(env);
}

/* Sets or clears FD_CLOEXEC on the listeners and the worker's socketpair. 0, or -1 (then every
 * one is as it was). */
static int descriptors_keep(struct parent *p, bool keep)
{
	int fds[IPC_FDS_MAX + 1];
	size_t n = 0;
	fds[n++] = p->ipc;
	for (size_t i = 0; i < p->nsocks; i++)
		fds[n++] = p->socks[i].fd;
	for (size_t i = 0; i < n; i++)
		if (fcntl(fds[i], F_SETFD, keep ? 0 : FD_CLOEXEC) != 0) {
			int e = errno;
			while (i-- > 0)
				fcntl(fds[i], F_SETFD, keep ? FD_CLOEXEC : 0);
			errno = e;
			return -1;
		}
	return 0;
}

/* The check passed: this program is replaced by the binary, keeping its pid and descriptors.
 * Returns only when that failed. */
static void upgrade_exec(struct parent *p)
{
	struct parent_upgrade *u = &p->upgrade;
	if (p->worker == 0 || p->ipc < 0) {
		upgrade_fail(p, "no_worker", "the worker stopped serving during the check");
		return;
	}
	struct parent_inherit *in = malloc(sizeof(*in));
	char *text = malloc(PARENT_INHERIT_MAX + 1);
	char **env = NULL;
	size_t owned = 0;
	int len = -1;
	if (in != NULL && text != NULL) {
		/* the signer is no descriptor of ours (the worker holds its end), only a child to reap */
		*in = (struct parent_inherit){
			.seq = u->seq, .worker = p->worker, .signer = p->signer, .ipc = p->ipc, .nsocks = p->nsocks};
		memcpy(in->socks, p->socks, sizeof(p->socks[0]) * p->nsocks);
		len = parent_inherit_format(in, text, PARENT_INHERIT_MAX + 1);
	}
	if (len > 0)
		env = exec_env(p, text, &owned);
	free(in);
	free(text);
	if (env == NULL) {
		upgrade_fail(p, "exec_failed", "out of memory");
		return;
	}
	if (descriptors_keep(p, true) != 0) {
		int e = errno;
		exec_env_free(env, owned);
		upgrade_fail(p, "exec_failed", "cannot keep the descriptors open across execve: %s", strerror(e));
		return;
	}
	log_info("event=upgrade_exec seq=%u binary=%s worker=%ld signer=%ld listeners=%zu", u->seq, u->binary,
		 (long)p->worker, (long)p->signer, p->nsocks);
	sigset_t old;
	held_signals_mask(SIG_BLOCK, &old);
	execve(u->binary, p->programs->self, env);
	int e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	descriptors_keep(p, false);
	exec_env_free(env, owned);
	upgrade_fail(p, "exec_failed", "cannot execute %s: %s", u->binary, strerror(e));
}

static void check_done(struct parent *p, int status)
{
	struct parent_upgrade *u = &p->upgrade;
	u->check = 0;
	evtimer_del(u->timer);
	if (p->stopping || u->phase != PARENT_UPGRADE_CHECKING)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		upgrade_exec(p);
	else if (u->check_timed_out)
		upgrade_fail(p, "check_timeout", "the check of %s did not end within %d s", u->binary,
			     PARENT_UPGRADE_CHECK_SECONDS);
	else if (WIFSIGNALED(status))
		upgrade_fail(p, "check_failed", "the check of %s was killed by signal %d", u->binary, WTERMSIG(status));
	else if (WEXITSTATUS(status) == 127)
		upgrade_fail(p, "check_failed", "%s could not be executed (see the log)", u->binary);
	else if (WEXITSTATUS(status) == 2)
		upgrade_fail(p, "check_failed", "%s cannot take over a running server (it does not know serve --role=check)",
			     u->binary);
	else
		upgrade_fail(p, "check_failed", "%s refused to start (exit %d; see the log)", u->binary, WEXITSTATUS(status));
}

/* `serve --role=check` of the new binary: it runs (its libraries load), it knows how to take over,
 * and it takes the configuration, all before anything is handed to it. */
static void check_start(struct parent *p)
{
	struct parent_upgrade *u = &p->upgrade;
	struct stat st;
	if (stat(u->binary, &st) != 0 || access(u->binary, X_OK) != 0) {
		upgrade_fail(p, "no_binary", "%s: %s", u->binary, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		upgrade_fail(p, "no_binary", "%s: not a regular file", u->binary);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		upgrade_fail(p, "check_failed", "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execv(u->binary, p->programs->check);
		fprintf(stderr, "mailwerk: cannot execute %s: %s\n", u->binary, strerror(errno));
		_exit(127);
	}
	u->check = pid;
	u->check_timed_out = false;
	u->phase = PARENT_UPGRADE_CHECKING;
	struct timeval tv = {.tv_sec = PARENT_UPGRADE_CHECK_SECONDS};
	evtimer_add(u->timer, &tv);
}

static void upgrade_begin(struct parent *p)
{
	struct parent_upgrade *u = &p->upgrade;
	if (p->stopping) {
		log_warn("event=upgrade_failed reason=stopping");
		return;
	}
	if (u->phase != PARENT_UPGRADE_IDLE) {
		/* no number of its own: `serve --upgrade` waits for the outcome of the one under way */
		log_warn("event=upgrade_failed seq=%u reason=in_progress", u->seq);
		return;
	}
	u->seq++;
	if (u->old.pid != 0) {
		upgrade_fail(p, "draining", "the worker of the last upgrade (pid %ld) is still draining", (long)u->old.pid);
		return;
	}
	if (u->old.signer != 0) {
		/* its pid would not cross the execve (the hand-over names the current signer only) */
		upgrade_fail(p, "draining", "the DKIM signer of the last upgrade's worker (pid %ld) has not exited yet",
			     (long)u->old.signer);
		return;
	}
	if (p->worker == 0 || p->ipc < 0 || p->worker_ready_at.tv_sec < 0) {
		upgrade_fail(p, "no_worker", "no worker is serving (it is being restarted)");
		return;
	}
	if (u->binary[0] == '\0') {
		upgrade_fail(p, "no_binary", "the path this program was started from is unknown");
		return;
	}
	log_info("event=upgrade_started seq=%u binary=%s worker=%ld", u->seq, u->binary, (long)p->worker);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	service_notify(&p->notify, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Upgrading to %s.",
		       (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000, u->binary);
	check_start(p);
}

/* The check's or the new worker's time is up. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	struct parent_upgrade *u = &p->upgrade;
	if (u->phase == PARENT_UPGRADE_CHECKING && u->check > 0) {
		u->check_timed_out = true;
		kill(u->check, SIGKILL); /* reaped: check_done fails the upgrade */
	} else if (u->phase == PARENT_UPGRADE_STARTING && p->worker > 0) {
		log_error("event=worker_not_ready pid=%ld after=%ds", (long)p->worker, PARENT_UPGRADE_READY_SECONDS);
		u->ready_timed_out = true;
		kill(p->worker, SIGKILL); /* reaped: parent_upgrade_worker_exited hands back to the old one */
	}
}

static void sig_usr2_cb(evutil_socket_t sig, short what, void *arg)
{
	upgrade_begin(arg);
}

/* ---- after the execve: the hand-over ---- */

static bool fd_is_socket(int fd, int type, bool listening)
{
	int v;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || (type != 0 && v != type))
		return false;
	len = sizeof(v);
	if (listening && (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v != 1))
		return false;
	len = sizeof(v);
	return type != SOCK_SEQPACKET || (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == 0 && v == AF_UNIX);
}

/* What the program that executed us handed on, checked as if a stranger had written it: every
 * descriptor is made close-on-exec again before anything is started, and used only if it is a
 * listening socket (the socketpair: a UNIX SOCK_SEQPACKET one); the worker only if it is our
 * child and alive. */
static void inherit_take(struct parent *p, const struct parent_inherit *in, bool *inherited_r)
{
	struct parent_upgrade *u = &p->upgrade;
	fcntl(in->ipc, F_SETFD, FD_CLOEXEC);
	for (size_t i = 0; i < in->nsocks; i++)
		fcntl(in->socks[i].fd, F_SETFD, FD_CLOEXEC);
	p->nsocks = 0;
	for (size_t i = 0; i < in->nsocks; i++) {
		if (fd_is_socket(in->socks[i].fd, SOCK_STREAM, true))
			p->socks[p->nsocks++] = in->socks[i];
		else
			log_error("event=upgrade_handover_refused role=%s addr=%s fd=%d error=\"not a listening socket\"",
				  conf_listener_str(in->socks[i].role), in->socks[i].addr, in->socks[i].fd);
	}
	int status;
	pid_t w = waitpid(in->worker, &status, WNOHANG);
	bool ipc_ok = fd_is_socket(in->ipc, SOCK_SEQPACKET, false);
	if (w == 0) {
		u->old.pid = in->worker;
		u->old.ipc = ipc_ok ? in->ipc : -1;
		if (ipc_ok) {
			u->old.ipc_ev = event_new(p->base, in->ipc, EV_READ | EV_PERSIST, old_ipc_cb, u);
			if (u->old.ipc_ev == NULL || event_add(u->old.ipc_ev, NULL) != 0)
				log_error("event=worker_ipc_failed error=\"out of memory\"");
		}
	} else {
		/* gone meanwhile (reaped now), or not ours: the new worker starts alone */
		log_warn("event=upgrade_old_worker_gone pid=%ld", (long)in->worker);
		if (ipc_ok)
			close(in->ipc);
	}
	/* its signer likewise: only a live child of ours is waited for, and signalled at a stop */
	if (in->signer != 0 && waitpid(in->signer, &status, WNOHANG) == 0)
		u->old.signer = in->signer;
	else if (in->signer != 0)
		log_warn("event=upgrade_old_signer_gone pid=%ld", (long)in->signer);
	if (u->old.pid == 0)
		old_signer_deadline(u);
	if (u->old.pid == 0 && p->nsocks == 0) {
		/* nothing of it is ours: this is a start like any other, which binds what it needs */
		log_error("event=upgrade_failed seq=%u reason=bad_handover error=\"no worker and no listener to take over\"",
			  in->seq);
		return;
	}
	u->seq = in->seq;
	u->phase = PARENT_UPGRADE_STARTING;
	p->ever_ready = true; /* the service was up all along: a failing new worker is restarted, not fatal */
	struct timeval tv = {.tv_sec = PARENT_UPGRADE_READY_SECONDS};
	evtimer_add(u->timer, &tv);
	log_info("event=upgrade_resumed seq=%u binary=%s old_worker=%ld old_signer=%ld listeners=%zu", u->seq, u->binary,
		 (long)u->old.pid, (long)u->old.signer, p->nsocks);
	*inherited_r = true;
}

int parent_upgrade_init(struct parent *p, bool *inherited_r)
{
	struct parent_upgrade *u = &p->upgrade;
	*inherited_r = false;
	u->old.ipc = -1;
	binary_find(u);
	u->sig_usr2 = evsignal_new(p->base, SIGUSR2, sig_usr2_cb, p);
	u->timer = evtimer_new(p->base, timer_cb, p);
	u->old_kill_timer = evtimer_new(p->base, old_kill_cb, p);
	if (u->sig_usr2 == NULL || u->timer == NULL || u->old_kill_timer == NULL || evsignal_add(u->sig_usr2, NULL) != 0)
		return -1;
	const char *env = getenv(PARENT_INHERIT_ENV);
	if (env != NULL) {
		struct parent_inherit *in = malloc(sizeof(*in));
		const char *err = "out of memory";
		char safe[LOG_VALUE_SIZE(200)];
		if (in != NULL && parent_inherit_parse(env, in, &err) == 0)
			inherit_take(p, in, inherited_r);
		else
			log_error("event=upgrade_failed reason=bad_handover error=%s", log_safe(safe, sizeof(safe), err, (unsigned)strlen(err)));
		free(in);
		/* never seen by a worker, nor by the next upgrade's program (which gets its own) */
		unsetenv(PARENT_INHERIT_ENV);
	}
	/* every handler is in place: what the program before us kept pending comes now */
	held_signals_mask(SIG_UNBLOCK, NULL);
	return 0;
}

/* ---- the new worker ---- */

bool parent_upgrade_beside(struct parent *p)
{
	p->upgrade.standby = p->upgrade.old.pid != 0;
	return p->upgrade.standby;
}

static void worker_tell(struct parent *p, enum parent_msg_type t)
{
	if (p->ipc >= 0 && ipc_send(p->ipc, t, 0, NULL, 0, NULL, 0) != 0)
		log_warn("event=worker_message_failed type=%d error=\"%s\"", (int)t, strerror(errno));
}

void parent_upgrade_worker_ready(struct parent *p)
{
	struct parent_upgrade *u = &p->upgrade;
	if (u->standby) {
		/* it has put its control socket on the path already (server.c) */
		if (u->old.pid != 0 && !u->old.draining)
			old_drain(p);
		else if (u->old.pid == 0) {
			worker_tell(p, PARENT_MSG_ALONE);
			u->standby = false;
		}
	}
	if (u->phase == PARENT_UPGRADE_STARTING) {
		u->phase = PARENT_UPGRADE_IDLE;
		evtimer_del(u->timer);
		log_info("event=upgrade_done seq=%u worker=%ld old_worker=%ld binary=%s", u->seq, (long)p->worker,
			 (long)u->old.pid, u->binary);
		service_notify(&p->notify, "READY=1\nSTATUS=Accepting mail; upgraded.\nMAINPID=%ld", (long)getpid());
		outcome_tell(p, true, NULL);
	}
}

bool parent_upgrade_worker_exited(struct parent *p, int status)
{
	struct parent_upgrade *u = &p->upgrade;
	bool timed_out = u->ready_timed_out;
	u->ready_timed_out = false;
	if (u->phase != PARENT_UPGRADE_STARTING)
		return false; /* after READY: restarted as usual, a standby again while the old one drains */
	char why[128];
	if (timed_out)
		snprintf(why, sizeof(why), "the new worker was not ready within %d s", PARENT_UPGRADE_READY_SECONDS);
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "the new worker was killed by signal %d before it was ready", WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "the new worker exited with status %d before it was ready (see the log)",
			 WEXITSTATUS(status));
	if (u->old.pid == 0) {
		/* nothing to go back to: the new binary's worker is restarted as any other */
		upgrade_fail(p, timed_out ? "not_ready" : "worker_died", "%s", why);
		return false;
	}
	/* the old worker, which never stopped serving, is the current one again, and so is its signer;
	 * the new worker's signer exits on its own (its worker's end is closed) and is reaped as the
	 * old one would have been */
	pid_t new_signer = p->signer;
	p->worker = u->old.pid;
	p->ipc = u->old.ipc;
	p->signer = u->old.signer;
	clock_gettime(CLOCK_MONOTONIC, &p->worker_ready_at);
	p->signer_started_at = p->worker_ready_at;
	if (u->old.ipc_ev != NULL)
		event_free(u->old.ipc_ev);
	u->old = (struct parent_old_worker){.ipc = -1, .signer = new_signer};
	old_signer_deadline(u);
	u->standby = false;
	if (p->ipc >= 0 && parent_worker_watch(p) != 0)
		log_error("event=worker_ipc_failed error=\"out of memory\"");
	upgrade_fail(p, timed_out ? "not_ready" : "worker_died", "%s", why);
	/* none crossed the execve (it was being restarted then): the old worker gets one now */
	if (p->signer == 0)
		parent_signer_start(p);
	/* it runs the configuration it had; we read the file again when executed, and may have bound
	 * listeners it does not know: a reload makes the two agree */
	if (p->ipc >= 0)
		parent_worker_reload(p);
	return true;
}

void parent_upgrade_reaped(struct parent *p, pid_t pid, int status)
{
	struct parent_upgrade *u = &p->upgrade;
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (pid == u->check) {
		check_done(p, status);
	} else if (pid == u->old.pid) {
		/* drained, or died while the new worker was still starting (which then serves alone) */
		const char *event = u->old.draining ? "worker_drained" : "worker_died";
		if (WIFSIGNALED(status))
			log_warn("event=%s pid=%ld signal=%d", event, (long)pid, WTERMSIG(status));
		else if (u->old.draining)
			log_info("event=%s pid=%ld status=%d", event, (long)pid, WEXITSTATUS(status));
		else
			log_warn("event=%s pid=%ld status=%d", event, (long)pid, WEXITSTATUS(status));
		old_close(u);
		u->old.pid = 0;
		u->old.draining = false;
		old_signer_deadline(u);
		if (p->stopping && !clean) {
			u->old_unclean = true;
			p->exit_code = 1;
		}
		/* the current worker, if it serves, is alone now: its background work begins */
		if (!p->stopping && p->worker > 0 && u->standby && p->worker_ready_at.tv_sec >= 0) {
			worker_tell(p, PARENT_MSG_ALONE);
			u->standby = false;
		}
	} else if (pid == u->old.signer) {
		/* it has followed its worker out: not restarted, and no concern of the current signer's */
		u->old.signer = 0;
		if (u->old.pid == 0)
			evtimer_del(u->old_kill_timer);
		if (WIFSIGNALED(status))
			log_warn("event=old_signer_stopped pid=%ld signal=%d", (long)pid, WTERMSIG(status));
		else
			log_info("event=old_signer_stopped pid=%ld status=%d", (long)pid, WEXITSTATUS(status));
	} else {
		return;
	}
	parent_maybe_done(p);
}

bool parent_upgrade_running(const struct parent *p)
{
	return p->upgrade.old.pid != 0 || p->upgrade.old.signer != 0 || p->upgrade.check != 0;
}

void parent_upgrade_signal(struct parent *p, int sig)
{
	if (p->upgrade.old.pid > 0)
		kill(p->upgrade.old.pid, sig);
	/* while its worker runs, the signer answers it to the end and exits after it */
	if (p->upgrade.old.signer > 0 && (p->upgrade.old.pid == 0 || sig == SIGKILL))
		kill(p->upgrade.old.signer, sig);
	if (p->upgrade.check > 0)
		kill(p->upgrade.check, sig);
}

void parent_upgrade_free(struct parent *p)
{
	struct parent_upgrade *u = &p->upgrade;
	old_close(u);
	struct event *evs[] = {u->sig_usr2, u->timer, u->old_kill_timer};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	u->sig_usr2 = u->timer = u->old_kill_timer = NULL;
}

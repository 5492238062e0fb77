/* cli_upgrade.c — `mailwerk serve --upgrade` (cli_upgrade.h). The parent to signal is found from
 * what the kernel says, not from what the worker reports: the pid of the process that listens on
 * the control socket (SO_PEERCRED), and that process's parent (/proc/PID/stat). A worker that
 * lies in its status cannot point root's signal at another process. */
#include "cli/cli_upgrade.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli_common.h"
#include "cli/cli_control.h"
#include "conf/conf.h"
#include "server/parent_msg.h"
#include "server/parent_upgrade.h"

/* Longer than the parent's own limits: the check, then a new worker's start. */
#define CLI_UPGRADE_WAIT_SECONDS (PARENT_UPGRADE_CHECK_SECONDS + PARENT_UPGRADE_READY_SECONDS + 30)
#define CLI_UPGRADE_POLL_MS 100

/* What one status request showed. */
struct cli_upgrade_view {
	pid_t worker, parent;
	unsigned seq; /* of the last upgrade the worker knows of; 0: none */
	bool done;
	char reason[PARENT_UPGRADE_REASON_MAX + 1];
	char version[32];
};

/* The parent of pid, from /proc: 0 when it cannot be read. */
static pid_t cli_upgrade_ppid(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "PID (COMM) STATE PPID ...": COMM may hold anything, so from its last ')' */
	char *close = strrchr(buf, ')');
	long ppid = 0;
	char state;
	if (close == NULL || sscanf(close + 1, " %c %ld", &state, &ppid) != 2 || ppid < 0)
		return 0;
	return (pid_t)ppid;
}

/* A printable copy of the string member key of o into out; "" when there is none. */
static void cli_upgrade_str(json_t *o, const char *key, char *out, size_t size)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t i = 0;
	for (; s != NULL && s[i] != '\0' && i + 1 < size; i++)
		out[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
	out[i] = '\0';
}

/* One status request. 0 with *v, 1 when no server answers, -1 with a sentence. */
static int cli_upgrade_look(const char *data_dir, struct cli_upgrade_view *v, char *error, size_t error_size)
{
	int fd;
	memset(v, 0, sizeof(*v));
	switch (cli_control_connect(data_dir, &fd, error, error_size)) {
	case CLI_CONTROL_CONNECTED:
		break;
	case CLI_CONTROL_NOT_RUNNING:
		return 1;
	case CLI_CONTROL_NO_PATH:
	case CLI_CONTROL_FAILED:
		return -1;
	}
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) {
		snprintf(error, error_size, "cannot tell which process answers on the control socket: %s", strerror(errno));
		close(fd);
		return -1;
	}
	struct control_request req = {.type = CONTROL_REQ_STATUS};
	json_t *st;
	int rc = cli_control_call(fd, &req, &st, error, error_size);
	close(fd);
	if (rc != 0)
		return -1;
	v->worker = cred.pid;
	v->parent = cli_upgrade_ppid(cred.pid);
	cli_upgrade_str(st, "version", v->version, sizeof(v->version));
	json_t *u = json_object_get(st, "upgrade");
	json_t *seq = json_object_get(u, "seq");
	if (json_is_object(u) && json_is_integer(seq) && json_integer_value(seq) > 0 &&
	    json_integer_value(seq) <= 0xffffffffLL) {
		v->seq = (unsigned)json_integer_value(seq);
		const char *result = json_string_value(json_object_get(u, "result"));
		v->done = result != NULL && strcmp(result, "done") == 0;
		cli_upgrade_str(u, "reason", v->reason, sizeof(v->reason));
	}
	json_decref(st);
	return 0;
}

static int64_t cli_upgrade_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_upgrade_run(const struct conf *c)
{
	char err[600];
	struct cli_upgrade_view before, now;
	int r = cli_upgrade_look(c->data_dir, &before, err, sizeof(err));
	if (r == 1) {
		cli_error("not running: no server answers on %s/%s", c->data_dir, CONTROL_SOCKET_NAME);
		return CLI_EXIT_NOT_RUNNING;
	}
	if (r != 0) {
		cli_error("serve --upgrade: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	if (before.parent <= 1) {
		cli_error("serve --upgrade: the worker (pid %ld) has no parent to ask", (long)before.worker);
		return CLI_EXIT_RUNTIME;
	}
	if (kill(before.parent, SIGUSR2) != 0) {
		cli_error("serve --upgrade: cannot signal the server (pid %ld): %s%s", (long)before.parent, strerror(errno),
			  errno == EPERM ? " (run as the user it was started as)" : "");
		return CLI_EXIT_RUNTIME;
	}
	int64_t deadline = cli_upgrade_now_ms() + CLI_UPGRADE_WAIT_SECONDS * 1000LL;
	err[0] = '\0';
	while (cli_upgrade_now_ms() < deadline) {
		struct timespec pause = {0, CLI_UPGRADE_POLL_MS * 1000000L};
		nanosleep(&pause, NULL);
		if (kill(before.parent, 0) != 0 && errno == ESRCH) {
			cli_error("serve --upgrade: the server (pid %ld) is gone", (long)before.parent);
			return CLI_EXIT_RUNTIME;
		}
		/* between two workers the socket may answer no one for a moment: ask again */
		if (cli_upgrade_look(c->data_dir, &now, err, sizeof(err)) != 0 || now.seq <= before.seq)
			continue;
		if (!now.done) {
			cli_error("upgrade failed: %s (worker %ld serves on)", now.reason, (long)now.worker);
			return CLI_EXIT_RUNTIME;
		}
		printf("upgraded: worker %ld (was %ld), parent %ld, mailwerk %s\n", (long)now.worker, (long)before.worker,
		       (long)now.parent, now.version);
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
	}
	cli_error("serve --upgrade: no outcome within %d s%s%s (see the server's log)", CLI_UPGRADE_WAIT_SECONDS,
		  err[0] != '\0' ? ": " : "", err);
	return CLI_EXIT_RUNTIME;
}

/* control.c — the worker's control socket (control.h): a UNIX SOCK_SEQPACKET socket in data_dir,
 * mode 0600, one request and one reply per record (control_msg.h). Bounded like every listener: at
 * most CONTROL_CONNS_MAX connections, one request at a time each (reading stops while it is being
 * answered), CONTROL_TIMEOUT_SECONDS of silence and the connection ends. Anything malformed gets an
 * error reply and the connection is closed. The socket is the server user's; peers of any other
 * user but root are refused as well. */
#include "server/control.h"
#include "server/control_int.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue.h"
#include "delivery/runner.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"

#define CONTROL_CONNS_MAX 8
#define CONTROL_TIMEOUT_SECONDS 10
#define CONTROL_BACKLOG 16

struct control_conn {
	struct control_conn *next;
	struct control *ctl;
	uint64_t id;
	int fd;
	struct event *ev; /* read, with the idle timeout; not added while a request is answered */
};

/* ---- connections ---- */

static void control_conn_close(struct control_conn *c, const char *reason)
{
	struct control *ctl = c->ctl;
	for (struct control_conn **p = &ctl->conns; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	ctl->conn_count--;
	if (reason != NULL)
		log_info("control=%llu event=control_close reason=%s", (unsigned long long)c->id, reason);
	event_free(c->ev);
	close(c->fd);
	free(c);
}

static struct control_conn *control_conn_find(struct control *ctl, uint64_t id)
{
	for (struct control_conn *c = ctl->conns; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* Waits for the next request (again). false when the event cannot be added. */
static bool control_conn_wait(struct control_conn *c)
{
	struct timeval tv = {CONTROL_TIMEOUT_SECONDS, 0};
	return event_add(c->ev, &tv) == 0;
}

/* Best effort, never blocking: the peer reads one reply per request. */
static int control_send(int fd, enum control_msg_type type, uint64_t id, const char *body)
{
	return ipc_send(fd, type, id, body, strlen(body), NULL, 0);
}

/* A request that cannot be served: the sentence, then the end of the connection. */
static void control_refuse(struct control_conn *c, uint64_t id, const char *why, const char *reason)
{
	log_warn("control=%llu event=control_refused error=\"%s\"", (unsigned long long)c->id, why);
	control_send(c->fd, CONTROL_REPLY_ERROR, id, why);
	control_conn_close(c, reason);
}

void control_job_done(void *arg)
{
	struct control_job *j = arg;
	struct control *ctl = j->ctl;
	struct server *srv = ctl->srv;
	if (j->changed && srv->delivery != NULL)
		delivery_runner_kick(srv->delivery); /* the scheduler sees a release at once */
	struct control_conn *c = control_conn_find(ctl, j->conn_id);
	if (c != NULL) {
		const char *body = j->body != NULL ? j->body : "out of memory";
		enum control_msg_type type = j->body != NULL ? j->reply : CONTROL_REPLY_ERROR;
		if (control_send(c->fd, type, j->req.id, body) != 0)
			control_conn_close(c, "send_failed");
		else if (!control_conn_wait(c))
			control_conn_close(c, "out_of_memory");
	}
	control_job_free(j);
}

/* A well-formed request: reading stops until its reply is sent (DESIGN.md §4). */
static void control_request_start(struct control_conn *c, const struct control_request *req)
{
	struct control *ctl = c->ctl;
	log_info("control=%llu event=control_request request=%s%s%s", (unsigned long long)c->id,
		 control_msg_type_str(req->type), req->queue_id[0] != '\0' ? " queue_id=" : "",
		 req->all ? " all=yes" : req->queue_id);
	struct control_job *j = control_job_new(ctl, c->id, req);
	if (j == NULL) {
		control_refuse(c, req->id, "out of memory", "out_of_memory");
		return;
	}
	event_del(c->ev);
	if (req->type == CONTROL_REQ_BOUNCE)
		control_job_bounce_start(j);
	else if (req->type == CONTROL_REQ_ACME_RENEW || req->type == CONTROL_REQ_ACME_REVOKE)
		control_job_acme(j);
	else
		worker_pool_submit(ctl->srv->workers, control_job_work, control_job_done, j);
}

static void control_conn_read(struct control_conn *c)
{
	struct control *ctl = c->ctl;
	int fds[IPC_FDS_MAX];
	size_t nfds = 0;
	ssize_t n = ipc_recv(c->fd, ctl->rec, fds, &nfds);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0 && errno == EMSGSIZE) {
		control_refuse(c, 0, "request over the size limit", "too_large");
		return;
	}
	if (n <= 0) {
		control_conn_close(c, n == 0 ? NULL : "read_failed");
		return;
	}
	if (nfds > 0) {
		ipc_fds_close(fds, nfds);
		control_refuse(c, 0, "descriptors are not accepted on the control socket", "descriptors");
		return;
	}
	struct control_request req;
	const char *err;
	if (control_request_parse(ctl->rec, (size_t)n, &req, &err) != 0) {
		control_refuse(c, req.id, err, "malformed");
		return;
	}
	control_request_start(c, &req);
}

static void control_conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_conn *c = arg;
	if (what & EV_TIMEOUT)
		control_refuse(c, 0, "no request in time", "timeout");
	else
		control_conn_read(c);
}

/* Only the server's user (the socket's owner) and root may ask: the mode says so, and so does this. */
static bool control_peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == 0 || cred.uid == getuid();
}

static void control_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct control *ctl = arg;
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return; /* gone meanwhile, or out of descriptors: the next readiness tries again */
	const char *why = ctl->conn_count >= CONTROL_CONNS_MAX ? "too many control connections; try again"
			  : !control_peer_allowed(fd)             ? "only the server's user may use the control socket"
								  : NULL;
	struct control_conn *c = why == NULL ? calloc(1, sizeof(*c)) : NULL;
	if (c != NULL && (c->ev = event_new(ctl->srv->base, fd, EV_READ | EV_PERSIST, control_conn_cb, c)) == NULL) {
		free(c);
		c = NULL;
	}
	if (c == NULL) {
		log_warn("event=control_refused error=\"%s\"", why != NULL ? why : "out of memory");
		control_send(fd, CONTROL_REPLY_ERROR, 0, why != NULL ? why : "out of memory");
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->fd = fd;
	c->id = ++ctl->next_conn_id;
	c->next = ctl->conns;
	ctl->conns = c;
	ctl->conn_count++;
	if (!control_conn_wait(c))
		control_conn_close(c, "out_of_memory");
}

/* ---- the socket ---- */

/* A socket left by a worker that died is replaced; one that answers belongs to another server on
 * the same data_dir, and anything that is not a socket is not ours to remove. On the standby path
 * (probe false) any socket is stale: the parent starts one standby worker at a time. */
static int control_stale_remove(const struct sockaddr_un *sa, socklen_t len, bool probe, char *error_r,
				size_t error_size)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) != 0)
		return errno == ENOENT ? 0 : (snprintf(error_r, error_size, "%s: %s", sa->sun_path, strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(error_r, error_size, "%s exists and is not a socket; remove it", sa->sun_path);
		return -1;
	}
	int pfd = probe ? socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0) : -1;
	int answered = pfd >= 0 && connect(pfd, (const struct sockaddr *)sa, len) == 0;
	if (pfd >= 0)
		close(pfd);
	if (answered) {
		snprintf(error_r, error_size, "%s: another server answers on it (is mailwerk serve already running?)",
			 sa->sun_path);
		return -1;
	}
	if (unlink(sa->sun_path) != 0 && errno != ENOENT) {
		snprintf(error_r, error_size, "cannot remove the stale %s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	log_info("event=control_stale_removed path=%s", sa->sun_path);
	return 0;
}

/* Binds and listens; the mode is set before listen(2), so that no one connects before it is 0600. */
static int control_listen(struct control *ctl, const struct sockaddr_un *sa, socklen_t len, char *error_r,
			  size_t error_size)
{
	if (control_stale_remove(sa, len, !ctl->standby, error_r, error_size) != 0)
		return -1;
	ctl->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0 || bind(ctl->fd, (const struct sockaddr *)sa, len) != 0) {
		snprintf(error_r, error_size, "%s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", sa->sun_path);
	struct stat st;
	if (chmod(ctl->path, 0600) != 0 || lstat(ctl->path, &st) != 0 || listen(ctl->fd, CONTROL_BACKLOG) != 0) {
		snprintf(error_r, error_size, "%s: %s", ctl->path, strerror(errno));
		return -1;
	}
	ctl->dev = st.st_dev;
	ctl->ino = st.st_ino;
	ctl->listen_ev = event_new(ctl->srv->base, ctl->fd, EV_READ | EV_PERSIST, control_accept_cb, ctl);
	if (ctl->listen_ev == NULL || event_add(ctl->listen_ev, NULL) != 0) {
		snprintf(error_r, error_size, "out of memory");
		return -1;
	}
	log_info("event=control_listening path=%s", ctl->path);
	return 0;
}

struct control *control_new(struct server *srv, char *error_r, size_t error_size)
{
	const char *err;
	struct control *ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL || (ctl->rec = malloc(IPC_RECORD_MAX)) == NULL) {
		free(ctl);
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	ctl->srv = srv;
	ctl->fd = -1;
	ctl->sandbox = srv->conf->sandbox; /* entered right after this, or the worker does not start */
	ctl->started = (int64_t)time(NULL);
	ctl->standby = srv->standby;
	pthread_mutex_init(&ctl->queue_mu, NULL);
	if ((ctl->queue = queue_open(srv->conf->data_dir, &err)) == NULL) {
		snprintf(error_r, error_size, "%s: %s", srv->conf->data_dir, err);
		control_free(ctl);
		return NULL;
	}
	struct sockaddr_un sa;
	socklen_t len;
	if (control_socket_addr_named(srv->conf->data_dir, ctl->standby ? CONTROL_SOCKET_STANDBY_NAME : CONTROL_SOCKET_NAME,
				      &sa, &len) != 0) {
		log_warn("event=control_unavailable reason=path_too_long data_dir=%s", srv->conf->data_dir);
		return ctl;
	}
	if (control_listen(ctl, &sa, len, error_r, error_size) != 0) {
		control_free(ctl);
		return NULL;
	}
	return ctl;
}

void control_reloaded(struct control *ctl)
{
	if (ctl != NULL)
		ctl->last_reload = (int64_t)time(NULL);
}

void control_take_over(struct control *ctl)
{
	struct sockaddr_un sa;
	socklen_t len;
	if (ctl == NULL || !ctl->standby || ctl->path[0] == '\0' ||
	    control_socket_addr(ctl->srv->conf->data_dir, &sa, &len) != 0)
		return;
	if (rename(ctl->path, sa.sun_path) != 0) {
		log_error("event=control_take_over_failed path=%s error=\"%s\"", sa.sun_path, strerror(errno));
		return;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", sa.sun_path);
	ctl->standby = false;
	log_info("event=control_listening path=%s", ctl->path);
}

void control_release(struct control *ctl)
{
	if (ctl == NULL)
		return;
	/* requests under way are answered; nobody can connect to this socket any more */
	if (ctl->listen_ev != NULL)
		event_free(ctl->listen_ev);
	ctl->listen_ev = NULL;
	if (ctl->fd >= 0)
		close(ctl->fd);
	ctl->fd = -1;
}

void control_upgrade_noted(struct control *ctl, const struct parent_upgrade_outcome *o)
{
	if (ctl == NULL)
		return;
	ctl->upgrade = *o;
	ctl->upgrade_at = (int64_t)time(NULL);
}

/* Whether path is still the socket we bound (a successor may have put its own there). */
static bool control_path_ours(const struct control *ctl)
{
	struct stat st;
	return lstat(ctl->path, &st) == 0 && st.st_dev == ctl->dev && st.st_ino == ctl->ino;
}

void control_free(struct control *ctl)
{
	if (ctl == NULL)
		return;
	while (ctl->conns != NULL)
		control_conn_close(ctl->conns, NULL);
	if (ctl->listen_ev != NULL)
		event_free(ctl->listen_ev);
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (ctl->path[0] != '\0' && control_path_ours(ctl))
		unlink(ctl->path); /* a clean stop leaves no socket behind */
	if (ctl->queue != NULL)
		queue_close(ctl->queue);
	pthread_mutex_destroy(&ctl->queue_mu);
	free(ctl->rec);
	free(ctl);
}

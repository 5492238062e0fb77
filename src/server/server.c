/* server.c — the worker's life: start-up on the listeners the parent bound (parent.h), accepting
 * connections within the limits, the session registry, reload when the parent says so, draining
 * on SIGTERM/SIGINT, and an upgrade's part (parent_upgrade.h): starting as a standby beside the
 * serving worker, draining when a successor serves. */
#include "server/server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "delivery/pool.h"
#include "ipc/ipc.h"
#include "delivery/runner.h"
#include "auth/dkim_key_cache.h"
#include "server/signer_client.h"
#include "report/report_scheduler.h"
#include "report/tlsrpt_scheduler.h"
#include "mailbox/users.h"
#include "net/dns.h"
#include "net/iplimit.h"
#include "net/listener.h"
#include "net/tls.h"
#include "acme/acme.h"
#include "queue/queue.h"
#include "server/control.h"
#include "server/login.h"
#include "server/parent_msg.h"
#include "server/sandbox.h"
#include "util/identity.h"
#include "delivery/mtasts_cache.h"
#include "util/log.h"
#include "util/loopq.h"
#include "util/metrics.h"
#include "util/overload.h"
#include "util/worker.h"

/* Password checks, DKIM signing and the HTTP API's composing run here: one thread per core, at
 * least two, so that one slow hash does not delay every login, and at most 64. */
#define SERVER_WORKER_THREADS_MIN 2
#define SERVER_WORKER_THREADS_MAX 64
/* After SIGTERM, sessions get this long to finish what they are doing. */
#define SERVER_STOP_GRACE_SECONDS 10

/* Refused connections whose client may still be sending (an HTTP request comes before any answer):
 * read and dropped for this long, so that closing with unread input does not turn into a reset that
 * destroys the refusal before the client reads it (RFC 9112 §9.6). At most this many at once;
 * past that, closed at once. */
#define SERVER_REFUSE_LINGER_SECONDS 1
#define SERVER_REFUSE_LINGER_MAX 64
#define SERVER_REFUSE_LINGER_OCTETS 65536

struct server_refused {
	struct server_refused *next, **prev; /* srv->refused: freed by server_deinit if still there */
	struct server *srv;
	struct event *ev;
	int fd;
	size_t dropped; /* octets read and dropped: a client that keeps sending is cut at a limit */
};

static void server_refused_free(struct server_refused *r)
{
	*r->prev = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	event_free(r->ev);
	close(r->fd);
	r->srv->refused_lingering--;
	free(r);
}

static void server_refused_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_refused *r = arg;
	char buf[4096];
	if (what & EV_READ) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			r->dropped += (size_t)n;
		/* more may come: the event persists until EOF, the timeout (which each read restarts)
		 * or SERVER_REFUSE_LINGER_OCTETS */
		if ((n > 0 && r->dropped < SERVER_REFUSE_LINGER_OCTETS) || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
			return;
	}
	server_refused_free(r);
}

static void server_refuse(struct server *srv, int fd, const char *text)
{
	/* best effort, never blocking: the socket is new and its send buffer empty */
	ssize_t w = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	shutdown(fd, SHUT_WR);
	struct server_refused *r = srv->refused_lingering < SERVER_REFUSE_LINGER_MAX ? calloc(1, sizeof(*r)) : NULL;
	if (r != NULL)
		r->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, server_refused_cb, r);
	struct timeval tv = {SERVER_REFUSE_LINGER_SECONDS, 0};
	if (r == NULL || r->ev == NULL || event_add(r->ev, &tv) != 0) {
		if (r != NULL && r->ev != NULL)
			event_free(r->ev);
		free(r);
		close(fd);
		return;
	}
	r->srv = srv;
	r->fd = fd;
	r->next = srv->refused;
	if (r->next != NULL)
		r->next->prev = &r->next;
	r->prev = &srv->refused;
	srv->refused = r;
	srv->refused_lingering++;
}

static void server_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int socklen,
			     void *arg)
{
	struct server_listener *l = arg;
	struct server *srv = l->srv;
	const struct conf *c = srv->conf;
	char ip[46];

	if (srv->stopping) {
		close(fd);
		return;
	}
	char client[NET_CLIENT_KEY_SIZE];
	net_sockaddr_ip(sa, ip, sizeof(ip));
	net_client_key(sa, c->ipv6_prefix, client, sizeof(client));
	if (login_banned(srv->login, client, time(NULL))) {
		log_warn("event=refused reason=auth_ban client=%s", ip);
		const char *line = l->protocol->refuse_banned;
		server_refuse(srv, fd, line != NULL ? line : l->protocol->refuse_busy_client);
		return;
	}
	if (c->max_connections != 0 && srv->session_count >= c->max_connections) {
		log_warn("event=refused reason=max_connections client=%s", ip);
		server_refuse(srv, fd, l->protocol->refuse_busy);
		return;
	}
	/* the session counts itself in (iplimit_conn_add) once it exists */
	if (c->max_connections_per_ip != 0 && iplimit_conn_count(srv->iplimit, client) >= c->max_connections_per_ip) {
		log_warn("event=refused reason=max_connections_per_ip client=%s", ip);
		server_refuse(srv, fd, l->protocol->refuse_busy_client);
		return;
	}
	l->protocol->start(srv, l, fd, sa);
}

static void listener_free(struct server_listener *l)
{
	if (l->lev != NULL)
		evconnlistener_free(l->lev);
	free(l);
}

/* accept(2) failed. Out of descriptors (EMFILE, ENFILE), the waiting connection would keep the
 * listener readable and the loop spinning: the spare descriptor makes room to take it, tell it
 * the server is busy, and close it. Anything else (the peer gone already) is only logged. */
static void server_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct server_listener *l = arg;
	struct server *srv = l->srv;
	int e = EVUTIL_SOCKET_ERROR();
	int64_t now = (int64_t)time(NULL);
	bool exhausted = e == EMFILE || e == ENFILE;
	if (exhausted && srv->spare_fd >= 0) {
		close(srv->spare_fd);
		int fd = accept4(evconnlistener_get_fd(lev), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			const char *line = l->protocol->refuse_busy;
			if (line != NULL)
				(void)!send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
		}
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (now != srv->fd_exhausted_logged) {
		srv->fd_exhausted_logged = now;
		log_warn("event=accept_failed role=%s error=\"%s\"%s", conf_listener_str(l->role), strerror(e),
			 exhausted ? " reason=out_of_descriptors" : "");
	}
}

/* A listener of role on a, accepting on fd (taken over). */
static int listener_add(struct server *srv, enum conf_listener role, const struct conf_addr *a, int fd,
			char *error_r, size_t error_size)
{
	struct server_listener *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(error_r, error_size, "out of memory");
		close(fd);
		return -1;
	}
	if (srv->protocols[role] == NULL) {
		snprintf(error_r, error_size, "%s: no protocol serves this listener", conf_listener_str(role));
		free(l);
		close(fd);
		return -1;
	}
	l->srv = srv;
	l->protocol = srv->protocols[role];
	l->role = role;
	l->addr = *a;
	l->loopback = net_sockaddr_is_loopback((const struct sockaddr *)&a->ss);
	l->lev = net_listener_new(srv->base, fd, server_accept_cb, l);
	if (l->lev == NULL) {
		snprintf(error_r, error_size, "%s: out of memory", conf_listener_str(role));
		free(l);
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(l->lev, server_accept_error_cb);
	l->next = srv->listeners;
	srv->listeners = l;
	return 0;
}

static bool listener_wanted(const struct conf *c, const struct server_listener *l)
{
	const struct conf_listen *cl = &c->listen[l->role];
	for (size_t i = 0; i < cl->count; i++)
		if (strcmp(cl->addrs[i].text, l->addr.text) == 0)
			return true;
	return false;
}

static bool listener_exists(const struct server *srv, enum conf_listener role, const struct conf_addr *a)
{
	for (const struct server_listener *l = srv->listeners; l != NULL; l = l->next)
		if (l->role == role && strcmp(l->addr.text, a->text) == 0)
			return true;
	return false;
}

/* The descriptor of socks[0..n) for role and a, taken out of the list (-1 when the parent sent
 * none: it could not bind it). */
static int socket_take(struct parent_socket *socks, size_t n, enum conf_listener role, const struct conf_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (socks[i].fd >= 0 && socks[i].role == role && strcmp(socks[i].addr, a->text) == 0) {
			int fd = socks[i].fd;
			socks[i].fd = -1;
			return fd;
		}
	return -1;
}

/* Closes the descriptors of socks[0..n) not taken. */
static void sockets_close(const struct parent_socket *socks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (socks[i].fd >= 0)
			close(socks[i].fd);
}

/* Makes the listeners match c: closes those no longer wanted, and accepts on the new ones with the
 * descriptors the parent bound (socks[0..n); each is used or closed). */
static int listeners_sync(struct server *srv, const struct conf *c, struct parent_socket *socks, size_t n,
			  char *error_r, size_t error_size)
{
	struct server_listener **pl = &srv->listeners;
	while (*pl != NULL) {
		struct server_listener *l = *pl;
		if (listener_wanted(c, l)) {
			pl = &l->next;
			continue;
		}
		*pl = l->next;
		listener_free(l);
	}
	int rc = 0;
	for (int role = 0; role < CONF_LISTEN_COUNT; role++) {
		const struct conf_listen *cl = &c->listen[role];
		for (size_t i = 0; i < cl->count; i++) {
			if (listener_exists(srv, role, &cl->addrs[i]))
				continue;
			int fd = socket_take(socks, n, role, &cl->addrs[i]);
			if (fd < 0) {
				snprintf(error_r, error_size, "%s: %s is not bound (see the parent's event=listen_failed)",
					 conf_listener_str(role), cl->addrs[i].text);
				rc = -1;
				continue;
			}
			if (listener_add(srv, role, &cl->addrs[i], fd, error_r, error_size) != 0)
				rc = -1;
		}
	}
	sockets_close(socks, n); /* copies of listeners already open, or of ones c does not name */
	return rc;
}

static void listeners_close(struct server *srv)
{
	while (srv->listeners != NULL) {
		struct server_listener *l = srv->listeners;
		srv->listeners = l->next;
		listener_free(l);
	}
}

/* Enters or leaves overload mode as the session count crosses its marks; logged once each way. */
static void server_overload_update(struct server *srv)
{
	bool on = overload_next(srv->overload, srv->session_count, srv->conf->max_connections);
	if (on == srv->overload)
		return;
	srv->overload = on;
	log_warn("event=overload state=%s sessions=%u limit=%u", on ? "on" : "off", srv->session_count,
		 srv->conf->max_connections);
}

void server_conn_open(struct server *srv, struct server_conn *c, const struct server_listener *l,
		      const struct sockaddr *sa, bool implicit_tls, void (*shutdown)(struct server_conn *c),
		      void (*destroy)(struct server_conn *c))
{
	c->shutdown = shutdown;
	c->destroy = destroy;
	c->role = l->role;
	c->listener_loopback = l->loopback && net_sockaddr_is_loopback(sa);
	net_sockaddr_ip(sa, c->ip, sizeof(c->ip));
	net_client_key(sa, srv->conf->ipv6_prefix, c->client, sizeof(c->client));
	iplimit_conn_add(srv->iplimit, c->client);
	c->id = ++srv->next_session_id;
	struct server_conn **b = &srv->sessions[c->id % SERVER_SESSION_BUCKETS];
	c->hnext = *b;
	*b = c;
	srv->session_count++;
	server_overload_update(srv);
	log_info("session=%llx event=connect proto=%s role=%s client=%s tls=%s", (unsigned long long)c->id,
		 l->protocol->name, conf_listener_str(c->role), c->ip, implicit_tls ? "implicit" : "no");
}

void server_conn_close(struct server *srv, struct server_conn *c)
{
	struct server_conn **p = &srv->sessions[c->id % SERVER_SESSION_BUCKETS];
	while (*p != NULL && *p != c)
		p = &(*p)->hnext;
	if (*p == c)
		*p = c->hnext;
	iplimit_conn_del(srv->iplimit, c->client);
}

struct server_conn *server_conn_find(struct server *srv, uint64_t id)
{
	for (struct server_conn *c = srv->sessions[id % SERVER_SESSION_BUCKETS]; c != NULL; c = c->hnext)
		if (c->id == id)
			return c->closing ? NULL : c; /* a closing session takes no more results */
	return NULL;
}

void server_conn_gone(struct server *srv)
{
	srv->session_count--;
	server_overload_update(srv);
	if ((srv->stopping || srv->draining) && srv->session_count == 0)
		event_base_loopexit(srv->base, NULL);
}

/* Reads the configuration again, with the listeners the parent now has bound (socks[0..n), each
 * used or closed); false when it was refused (the old one goes on). */
static bool server_reload(struct server *srv, struct parent_socket *socks, size_t n)
{
	char err[512];
	struct conf *c = conf_load(srv->conf->path, srv->overrides, srv->n_overrides, err, sizeof(err));
	if (c == NULL) {
		log_error("event=reload result=failed error=\"%s\"", err);
		sockets_close(socks, n);
		return false;
	}
	if (strcmp(c->data_dir, srv->conf->data_dir) != 0 || strcmp(c->user, srv->conf->user) != 0 ||
	    strcmp(c->signer_user, srv->conf->signer_user) != 0) {
		log_error("event=reload result=failed error=\"data_dir, user and signer_user cannot change while running; "
			  "restart instead\"");
		conf_free(c);
		sockets_close(socks, n);
		return false;
	}
	SSL_CTX *tls = tls_server_ctx_new(c, err, sizeof(err));
	/* ACME's certificate, when it has one, stays in use: [tls] cert is the one before it */
	tls = acme_tls_ctx(srv->acme, tls);
	/* a new resolver only when [dns] changed, so unbound's cache survives other reloads */
	struct dns *dns = NULL;
	if (tls != NULL)
		dns = strcmp(c->dns_resolver, srv->conf->dns_resolver) == 0 &&
				      strcmp(c->dns_trust_anchor, srv->conf->dns_trust_anchor) == 0
			      ? dns_ref(srv->dns)
			      : dns_new(srv->base, c->dns_resolver, c->dns_trust_anchor, srv->metrics, err, sizeof(err));
	if (tls == NULL || dns == NULL || delivery_pool_reconfigure(srv->remote, c, dns, err, sizeof(err)) != 0) {
		log_error("event=reload result=failed error=\"%s\"", err);
		SSL_CTX_free(tls);
		dns_free(dns);
		conf_free(c);
		sockets_close(socks, n);
		return false;
	}
	dns_free(srv->dns); /* checks and connections under way keep the old one until they end */
	srv->dns = dns;
	if (srv->delivery != NULL && delivery_runner_reconfigure(srv->delivery, c) != 0)
		log_error("event=reload result=partial error=\"out of memory: delivery keeps its settings\"");
	/* sessions keep the conf and SSL they started with; new ones get these */
	conf_free(srv->conf);
	srv->conf = c;
	srv->memory.limit = c->max_memory_in_flight;
	SSL_CTX_free(srv->tls);
	srv->tls = tls;
	if (listeners_sync(srv, c, socks, n, err, sizeof(err)) != 0)
		log_error("event=reload result=partial error=\"%s\"", err);
	else
		log_info("event=reload result=ok");
	control_reloaded(srv->control);
	return true;
}

static void server_stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	log_warn("event=stop_forced sessions=%u", srv->session_count);
	event_base_loopexit(srv->base, NULL);
}

static void server_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	log_info("event=stopping sessions=%u", srv->session_count);
	listeners_close(srv);
	/* collect first: closing a session edits the registry */
	struct server_conn *list = NULL;
	for (size_t i = 0; i < SERVER_SESSION_BUCKETS; i++)
		for (struct server_conn *c = srv->sessions[i]; c != NULL; c = c->hnext) {
			if (c->closing)
				continue;
			c->shutdown_next = list;
			list = c;
		}
	while (list != NULL) {
		struct server_conn *c = list;
		list = c->shutdown_next;
		c->shutdown(c);
	}
	if (srv->session_count == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	struct timeval tv = {.tv_sec = SERVER_STOP_GRACE_SECONDS};
	srv->stop_timer = evtimer_new(srv->base, server_stop_timeout_cb, srv);
	if (srv->stop_timer == NULL || evtimer_add(srv->stop_timer, &tv) != 0)
		event_base_loopexit(srv->base, NULL);
}

static void server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	server_stop(arg);
}

static void server_drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	log_info("event=drain_over sessions=%u", srv->session_count);
	server_stop(srv);
}

/* A successor serves on the same listeners: we stop accepting (connections waiting in the backlog
 * are its), let the sessions finish on their own for seconds, then end the rest as a stop does.
 * The background work goes on meanwhile; the successor starts its own once we are gone. */
static void server_drain(struct server *srv, unsigned seconds)
{
	if (srv->stopping || srv->draining)
		return;
	srv->draining = true;
	log_info("event=draining sessions=%u deadline=%us", srv->session_count, seconds);
	listeners_close(srv);
	control_release(srv->control); /* the path is the successor's now */
	if (srv->session_count == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	struct timeval tv = {.tv_sec = seconds};
	srv->drain_timer = evtimer_new(srv->base, server_drain_timeout_cb, srv);
	if (seconds == 0 || srv->drain_timer == NULL || evtimer_add(srv->drain_timer, &tv) != 0)
		server_stop(srv);
}

/* Delivery (and, through srv->standby, the webhook sender and the report scheduler) begins: at
 * the start, or for a standby worker when the parent says the other worker is gone. */
static int server_background_start(struct server *srv, char *error_r, size_t error_size)
{
	srv->standby = false;
	acme_start(srv->acme); /* one worker at a time asks for certificates (NULL: not made yet, or off) */
	/* and refreshes MTA-STS policies (NULL: not made yet; it then starts with the refresh on) */
	if (srv->mtasts != NULL && !mtasts_cache_refresh_start(srv->mtasts))
		log_warn("event=mta_sts_refresh_failed error=\"out of memory\"");
	if (srv->delivery != NULL)
		return 0;
	srv->delivery = delivery_runner_start(srv->conf, srv->remote, srv->metrics, error_r, error_size);
	return srv->delivery != NULL ? 0 : -1;
}

/* A message without descriptors from the parent, about an upgrade; false when it is none of those. */
static bool server_parent_upgrade_message(struct server *srv, const struct ipc_msg *m)
{
	const char *err = NULL;
	char buf[256];
	if (m->type == PARENT_MSG_ALONE) {
		if (!srv->standby || srv->stopping)
			return true;
		if (server_background_start(srv, buf, sizeof(buf)) != 0) {
			/* serving without delivery would go unnoticed: the parent starts a worker that has it */
			log_error("event=background_failed error=\"%s\"", buf);
			server_stop(srv);
		} else {
			log_info("event=background_started");
		}
	} else if (m->type == PARENT_MSG_DRAIN) {
		unsigned secs;
		if (parent_drain_parse(m->payload, m->len, &secs, &err) == 0)
			server_drain(srv, secs);
	} else if (m->type == PARENT_MSG_UPGRADE) {
		struct parent_upgrade_outcome o;
		if (parent_upgrade_parse(m->payload, m->len, &o, &err) == 0)
			control_upgrade_noted(srv->control, &o);
	} else {
		return false;
	}
	if (err != NULL)
		log_warn("event=parent_message_refused type=%u error=\"%s\"", (unsigned)m->type, err);
	return true;
}

/* A message from the parent, with its descriptors: a reload (answered RELOADED), the socket to a new
 * signer, an upgrade's, anything else refused. */
static void server_parent_message(struct server *srv, int fd, const struct ipc_msg *m, const int *fds, size_t nfds)
{
	struct parent_socket socks[IPC_FDS_MAX];
	const char *err = "not a reload";
	if (nfds == 0 && server_parent_upgrade_message(srv, m))
		return;
	if (m->type == PARENT_MSG_SIGNER) {
		if (nfds != 1 || m->len != 0) {
			log_warn("event=parent_message_refused error=\"a signer message carries one descriptor and no text\"");
			ipc_fds_close(fds, nfds);
		} else {
			signer_client_connect(srv->signer, fds[0]);
		}
	} else if (m->type != PARENT_MSG_RELOAD || parent_sockets_parse(m->payload, m->len, fds, nfds, socks, &err) != 0) {
		log_warn("event=parent_message_refused error=\"%s\"", err);
		ipc_fds_close(fds, nfds);
	} else if (srv->stopping || srv->draining) {
		ipc_fds_close(fds, nfds);
	} else {
		const char *answer = server_reload(srv, socks, nfds) ? "ok" : "refused";
		ipc_send(fd, PARENT_MSG_RELOADED, m->id, answer, strlen(answer), NULL, 0);
	}
}

/* Readable: a message from the parent, or its end (it is gone: we stop; the kernel's SIGKILL,
 * PR_SET_PDEATHSIG, usually comes first). */
static void server_parent_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	unsigned char *rec = malloc(IPC_RECORD_MAX);
	int fds[IPC_FDS_MAX];
	size_t nfds = 0;
	struct ipc_msg m;
	const char *err = "out of memory";
	int r = rec != NULL ? ipc_recv_msg(fd, rec, &m, fds, &nfds, &err) : (errno = ENOMEM, -1);
	if (r > 0) {
		server_parent_message(srv, fd, &m, fds, nfds);
	} else if (r < 0 && errno == EBADMSG) {
		log_warn("event=parent_message_refused error=\"%s\"", err);
	} else if (r == 0 || (errno != EAGAIN && errno != ENOMEM)) {
		log_warn("event=parent_gone");
		event_del(srv->parent_ev);
		server_stop(srv);
	}
	free(rec);
}

/* First thing in the worker: the listener descriptors the parent sent, read from PARENT_IPC_FD
 * (blocking: the parent sends them before we run), and whether we start beside another worker.
 * Their number, or -1 with a sentence. */
static int server_parent_listeners(struct parent_socket *socks, bool *standby_r, char *error_r, size_t error_size)
{
	unsigned char *rec = malloc(IPC_RECORD_MAX);
	int fds[IPC_FDS_MAX];
	size_t nfds = 0;
	struct ipc_msg m;
	const char *err = "out of memory";
	int rc = -1;
	if (rec != NULL && ipc_recv_msg(PARENT_IPC_FD, rec, &m, fds, &nfds, &err) > 0) {
		*standby_r = m.type == PARENT_MSG_LISTENERS_STANDBY;
		if (m.type != PARENT_MSG_LISTENERS && m.type != PARENT_MSG_LISTENERS_STANDBY)
			err = "the first message is not the listener list";
		else if (parent_sockets_parse(m.payload, m.len, fds, nfds, socks, &err) == 0)
			rc = (int)nfds;
		if (rc < 0)
			ipc_fds_close(fds, nfds);
	}
	free(rec);
	if (rc < 0)
		snprintf(error_r, error_size, "no listeners from the parent: %s (the worker is started by mailwerk serve)",
			 err);
	return rc;
}

/* The queue committed new messages: the delivery runner looks for due work now rather than at its
 * next timer. Receiving never calls sending; this subscription is the hand-over. */
static void server_queue_committed(void *arg)
{
	struct server *srv = arg;

	if (srv->delivery != NULL)
		delivery_runner_kick(srv->delivery);
}

/* A remote job is finished: the runner records it. */
static void server_remote_done(void *arg, struct remote_job *job)
{
	struct server *srv = arg;
	if (srv->delivery != NULL)
		delivery_runner_job_done(srv->delivery, job);
	else
		remote_job_free(job);
}

/* Whether protocols[role] already appeared at a lower role (its hooks run once). */
static bool server_protocol_seen(const struct server_protocol *const *protocols, int role)
{
	for (int i = 0; i < role; i++)
		if (protocols[i] == protocols[role])
			return true;
	return false;
}

int server_init(struct server *srv, const struct server_protocol *const *protocols, struct conf *c,
		char *const *overrides, unsigned n_overrides, char *error_r, size_t error_size)
{
	const char *err;
	memset(srv, 0, sizeof(*srv));
	srv->parent = getppid();
	srv->protocols = protocols;
	srv->conf = c;
	/* every descriptor the hard limit allows (idle sessions cost one each), and one kept back */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		rlim_t was = nofile.rlim_cur;
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) == 0)
			log_info("event=nofile_raised from=%llu to=%llu", (unsigned long long)was,
				 (unsigned long long)nofile.rlim_max);
	}
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	srv->memory.limit = c->max_memory_in_flight;
	srv->overrides = overrides;
	srv->n_overrides = n_overrides;
	signal(SIGPIPE, SIG_IGN);

	srv->base = event_base_new();
	srv->iplimit = iplimit_new();
	srv->metrics = metrics_new();
	if (srv->base == NULL || srv->iplimit == NULL || srv->metrics == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return -1;
	}
	/* first: a signal that comes while the rest starts up is then handled once the loop runs */
	srv->sig_term = evsignal_new(srv->base, SIGTERM, server_signal_cb, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, server_signal_cb, srv);
	/* reloads come from the parent (PARENT_MSG_RELOAD), which SIGHUP is for; so do upgrades, which
	 * SIGUSR2 is for, and whose default would end us when it is sent to the whole service */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	if (srv->sig_term == NULL || srv->sig_int == NULL || evsignal_add(srv->sig_term, NULL) ||
	    evsignal_add(srv->sig_int, NULL)) {
		snprintf(error_r, error_size, "cannot install signal handlers");
		return -1;
	}
	struct parent_socket socks[IPC_FDS_MAX];
	int nsocks = server_parent_listeners(socks, &srv->standby, error_r, error_size);
	if (nsocks < 0)
		return -1;
	evutil_make_socket_nonblocking(PARENT_IPC_FD);
	srv->parent_ev = event_new(srv->base, PARENT_IPC_FD, EV_READ | EV_PERSIST, server_parent_cb, srv);
	srv->tls = tls_server_ctx_new(c, error_r, error_size);
	if (srv->tls == NULL || srv->parent_ev == NULL || event_add(srv->parent_ev, NULL) != 0) {
		if (srv->tls != NULL)
			snprintf(error_r, error_size, "out of memory");
		sockets_close(socks, (size_t)nsocks);
		return -1;
	}
	if (listeners_sync(srv, c, socks, (size_t)nsocks, error_r, error_size) != 0)
		return -1;
	/* Ports and the private key are in hand: from here on nothing needs root. The stores are
	 * opened after the switch so that every file they create belongs to the user. */
	if (c->user[0] != '\0' && identity_become(c->user, error_r, error_size) != 0)
		return -1;
	if (c->user[0] != '\0')
		log_info("event=identity user=%s uid=%u", c->user, (unsigned)getuid());
	/* the parent's SIGKILL on its death (set before the exec) is cleared by a change of user */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* no core file (it would hold the TLS key and the messages in memory), no tracing by the user */
	prctl(PR_SET_DUMPABLE, 0);
	if (getppid() != srv->parent) {
		snprintf(error_r, error_size, "the parent is gone");
		return -1;
	}
	srv->users = users_open(c->data_dir, &err);
	if (srv->users == NULL) {
		snprintf(error_r, error_size, "%s: %s", c->data_dir, err);
		return -1;
	}
	srv->queue = queue_open(c->data_dir, &err);
	if (srv->queue == NULL) {
		snprintf(error_r, error_size, "%s: %s", c->data_dir, err);
		return -1;
	}
	srv->loopq = loopq_new(srv->base);
	if (srv->loopq == NULL || queue_writer_start(srv->queue, srv->loopq, &err) != 0) {
		snprintf(error_r, error_size, "cannot start the queue writer: %s", srv->loopq ? err : "out of memory");
		return -1;
	}
	/* one resolver for the inbound checks and remote delivery (DESIGN.md §2: libunbound) */
	srv->dns = dns_new(srv->base, c->dns_resolver, c->dns_trust_anchor, srv->metrics, error_r, error_size);
	if (srv->dns == NULL)
		return -1;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = cores < SERVER_WORKER_THREADS_MIN ? SERVER_WORKER_THREADS_MIN
			   : cores > SERVER_WORKER_THREADS_MAX ? SERVER_WORKER_THREADS_MAX : (unsigned)cores;
	srv->workers = worker_pool_new(srv->loopq, threads);
	if (srv->workers == NULL) {
		snprintf(error_r, error_size, "cannot start worker threads");
		return -1;
	}
	/* outbound MTA-STS: the policy cache, loaded from reports.db; a standby leaves the refreshes
	 * to the worker it starts beside */
	struct mtasts_cache_opts sts = {
		.dns = srv->dns,
		.workers = srv->workers,
		.data_dir = c->data_dir,
		.ca_file = c->mta_sts_ca_file,
		.allow_private = c->mta_sts_allow_private,
		.fetch_timeout_ms = c->mta_sts_fetch_timeout,
		.max_fetches = c->mta_sts_max_fetches,
		.refresh = !srv->standby,
	};
	if ((srv->mtasts = mtasts_cache_new(&sts, error_r, error_size)) == NULL)
		return -1;
	srv->remote = delivery_pool_new(srv->base, c, srv->dns, srv->metrics, server_remote_done, srv, error_r, error_size);
	if (srv->remote == NULL)
		return -1;
	delivery_pool_set_mtasts(srv->remote, srv->mtasts);
	/* a standby leaves delivery to the worker it starts beside: one runner claims each recipient */
	if (srv->standby)
		log_info("event=standby reason=\"another worker serves until this one is ready\"");
	else if (server_background_start(srv, error_r, error_size) != 0)
		return -1;
	queue_commit_subscribe(srv->queue, server_queue_committed, srv);
	if ((srv->dkim_keys = dkim_key_cache_new()) == NULL || (srv->signer = signer_client_new(srv->base)) == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return -1;
	}
	if ((srv->login = login_new(srv, error_r, error_size)) == NULL)
		return -1;
	if ((srv->reports = report_scheduler_new(srv, error_r, error_size)) == NULL)
		return -1;
	if ((srv->tlsrpt = tlsrpt_scheduler_new(srv, error_r, error_size)) == NULL)
		return -1;
	/* as the user (its files in data_dir are the user's), before the sandbox */
	if (acme_open(srv, &srv->acme, error_r, error_size) != 0)
		return -1;
	srv->tls = acme_tls_ctx(srv->acme, srv->tls);
	if (!srv->standby)
		acme_start(srv->acme);
	for (int role = 0; role < CONF_LISTEN_COUNT; role++) {
		const struct server_protocol *p = protocols[role];
		if (p == NULL || p->init == NULL || server_protocol_seen(protocols, role))
			continue;
		if (p->init(srv, error_r, error_size) != 0)
			return -1;
	}
	if (users_hash_password("mailwerk-timing-equaliser", srv->dummy_hash) != RESULT_OK) {
		snprintf(error_r, error_size, "libcrypt cannot make yescrypt hashes");
		return -1;
	}
	/* after the switch of user (the socket is the user's), before the sandbox (no listen(2)) */
	if ((srv->control = control_new(srv, error_r, error_size)) == NULL)
		return -1;
	/* last: every store is open and every thread runs, so the filter covers them all */
	if (c->sandbox) {
		if (sandbox_worker_enter(error_r, error_size) != 0)
			return -1;
		log_info("event=sandbox state=on");
	}
	return 0;
}

int server_run(struct server *srv)
{
	log_info("event=started hostname=%s data_dir=%s", srv->conf->hostname, srv->conf->data_dir);
	/* a standby serves from now on: `status` and the queue commands reach it */
	control_take_over(srv->control);
	/* every listener is open and every store: the parent tells the manager */
	if (ipc_send(PARENT_IPC_FD, PARENT_MSG_READY, 0, NULL, 0, NULL, 0) != 0)
		log_warn("event=parent_unreachable error=\"%s\"", strerror(errno));
	int rc = event_base_dispatch(srv->base);
	log_info("event=stopped");
	return rc < 0 ? -1 : 0;
}

void server_deinit(struct server *srv)
{
	if (srv->parent_ev != NULL)
		event_free(srv->parent_ev);
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	srv->spare_fd = -1;
	listeners_close(srv);
	while (srv->refused != NULL)
		server_refused_free(srv->refused);
	/* after a forced stop, sessions that never finished are freed here */
	for (size_t i = 0; i < SERVER_SESSION_BUCKETS; i++)
		while (srv->sessions[i] != NULL)
			srv->sessions[i]->destroy(srv->sessions[i]);
	/* stop the threads first; what they still post is run by loopq_free and finds no session */
	delivery_runner_stop(srv->delivery);
	srv->delivery = NULL;
	/* remote jobs in hand stay in the queue: delivered again after the restart (at-least-once) */
	delivery_pool_free(srv->remote);
	report_scheduler_stop(srv->reports);
	tlsrpt_scheduler_stop(srv->tlsrpt);
	worker_pool_free(srv->workers);
	/* the workers are done: no job of a protocol still uses its state */
	for (int role = 0; srv->protocols != NULL && role < CONF_LISTEN_COUNT; role++) {
		const struct server_protocol *p = srv->protocols[role];
		if (p != NULL && p->deinit != NULL && !server_protocol_seen(srv->protocols, role))
			p->deinit(srv);
	}
	dkim_key_cache_free(srv->dkim_keys); /* sessions (and their checks) are gone */
	mtasts_cache_stop(srv->mtasts); /* its lookups and fetches, before the resolver goes */
	dns_free(srv->dns);
	if (srv->queue != NULL)
		queue_close(srv->queue);
	if (srv->loopq != NULL)
		loopq_free(srv->loopq);
	mtasts_cache_free(srv->mtasts); /* after the loop queue: its store writes have reported back */
	/* after the loop queue (its last callbacks may still ask it); what waits fails, and finds no session */
	signer_client_free(srv->signer);
	login_free(srv->login); /* after the loop queue: its last callbacks may still count a failure */
	control_free(srv->control); /* after the loop queue too: its last replies find it */
	acme_free(srv->acme);       /* after the loop queue: a file written for it reports there */
	srv->acme = NULL;
	report_scheduler_free(srv->reports); /* after the threads and the loop queue: they may still post to it */
	tlsrpt_scheduler_free(srv->tlsrpt);
	if (srv->users != NULL)
		users_close(srv->users);
	if (srv->sig_term)
		event_free(srv->sig_term);
	if (srv->sig_int)
		event_free(srv->sig_int);
	/* on the way out: a stop asked for now (the parent's, of a worker that drains) must not end us
	 * by the default action, which freeing the events has put back */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	if (srv->stop_timer)
		event_free(srv->stop_timer);
	if (srv->drain_timer)
		event_free(srv->drain_timer);
	SSL_CTX_free(srv->tls);
	iplimit_free(srv->iplimit);
	if (srv->base != NULL)
		event_base_free(srv->base);
	conf_free(srv->conf);
	metrics_free(srv->metrics); /* last: every thread and callback that counts has ended */
}

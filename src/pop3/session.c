/* session.c — the POP3 session's I/O: accepting (pop3 with STLS, pop3s with implicit TLS), reading
 * command and AUTH lines from the bufferevent, pausing while a step runs on a worker, STLS, the idle
 * timeout, closing, and the set of locked mailboxes. What each command does is in cmd.c. */
#include "pop3/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/iplimit.h"
#include "net/listener.h"
#include "net/stream.h"
#include "smtp/data.h"
#include "util/log.h"

/* Stop reading commands while this much output is unsent: a client that never reads cannot grow
 * our memory. The write callback runs once the output has drained to POP3_OUTPUT_LOW. */
#define POP3_OUTPUT_HIGH 65536
#define POP3_OUTPUT_LOW 32768
/* How long a closing session may take to flush its last reply. */
#define POP3_CLOSE_FLUSH_SECONDS 10

const char *pop3_state_str(enum pop3_state s)
{
	switch (s) {
	case POP3_STATE_AUTHORIZATION: return "authorization";
	case POP3_STATE_TRANSACTION: return "transaction";
	case POP3_STATE_UPDATE: return "update";
	}
	return "?";
}

/* ---- the mailbox lock set (RFC 1939 §4: "an exclusive-access lock on the maildrop") ---- */

enum pop3_lock_result pop3_lock_take(struct server *srv, const char *path, struct pop3_lock **lock_r)
{
	/* a list: one entry per logged-in POP3 session, and logins are rare next to everything else */
	for (struct pop3_lock *l = srv->pop3_locks; l != NULL; l = l->next)
		if (strcmp(l->path, path) == 0)
			return POP3_LOCK_IN_USE;
	size_t n = strlen(path);
	struct pop3_lock *l = malloc(sizeof(*l) + n + 1);
	if (l == NULL)
		return POP3_LOCK_NO_MEMORY;
	l->refs = 1;
	memcpy(l->path, path, n + 1);
	l->next = srv->pop3_locks;
	srv->pop3_locks = l;
	*lock_r = l;
	return POP3_LOCK_OK;
}

struct pop3_lock *pop3_lock_ref(struct pop3_lock *l)
{
	l->refs++;
	return l;
}

void pop3_lock_unref(struct server *srv, struct pop3_lock *l)
{
	if (--l->refs > 0)
		return;
	struct pop3_lock **p = &srv->pop3_locks;
	while (*p != NULL && *p != l)
		p = &(*p)->next;
	if (*p == l)
		*p = l->next;
	free(l);
}

void pop3_session_drop_release(struct pop3_session *s)
{
	free(s->msgs);
	free(s->deleted);
	s->msgs = NULL;
	s->deleted = NULL;
	s->msg_count = 0;
	if (s->lock != NULL) {
		pop3_lock_unref(s->srv, s->lock);
		s->lock = NULL;
	}
}

/* ---- life of a session ---- */

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_process(struct pop3_session *s);
static void session_tls_begin(struct pop3_session *s);
static void pop3_session_destroy(struct pop3_session *s);
static void pop3_session_shutdown(struct pop3_session *s);

static void session_shutdown_conn(struct server_conn *c)
{
	pop3_session_shutdown(SERVER_CONN_OF(c, struct pop3_session));
}

static void session_destroy_conn(struct server_conn *c)
{
	pop3_session_destroy(SERVER_CONN_OF(c, struct pop3_session));
}

struct pop3_session *pop3_session_find(struct server *srv, uint64_t id)
{
	struct server_conn *c = server_conn_find(srv, id);
	return c != NULL ? SERVER_CONN_OF(c, struct pop3_session) : NULL;
}

struct evbuffer *pop3_session_out(struct pop3_session *s)
{
	return bufferevent_get_output(s->bev);
}

bool pop3_session_output_low(struct pop3_session *s)
{
	return evbuffer_get_length(bufferevent_get_output(s->bev)) <= POP3_OUTPUT_LOW;
}

static void session_set_callbacks(struct pop3_session *s)
{
	/* RFC 1939 §3: an inactivity autologout timer; any command resets it */
	struct timeval tv = {.tv_sec = s->conf->pop3_idle_timeout};
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_WRITE, POP3_OUTPUT_LOW, 0);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void pop3_session_start(struct server *srv, const struct server_listener *l, int fd, const struct sockaddr *sa)
{
	struct pop3_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->srv = srv;
	s->conf = conf_ref(srv->conf);
	s->role = l->role;
	s->listener_loopback = l->loopback && net_sockaddr_is_loopback(sa);
	net_sockaddr_ip(sa, s->ip, sizeof(s->ip));

	s->tls = s->role == CONF_LISTEN_POP3S; /* RFC 8314 §3.3: implicit TLS from the first octet */
	s->bev = net_stream_accept(srv->base, srv->tls, fd, s->tls);
	if (s->bev == NULL) {
		conf_free(s->conf);
		free(s);
		return;
	}
	iplimit_conn_add(srv->iplimit, s->ip);
	s->conn.shutdown = session_shutdown_conn;
	s->conn.destroy = session_destroy_conn;
	server_conn_add(srv, &s->conn);
	session_set_callbacks(s);
	log_info("session=%llx event=connect proto=pop3 role=%s client=%s tls=%s", (unsigned long long)s->conn.id,
		 conf_listener_str(s->role), s->ip, s->tls ? "implicit" : "no");
	pop3_cmd_greet(s);
}

/* RFC 3206 §4: [SYS/TEMP] tells the client the refusal is temporary. */
const struct server_protocol pop3_protocol = {
	.name = "pop3",
	.start = pop3_session_start,
	.refuse_busy = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
	.refuse_busy_client = "-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n",
};

static void pop3_session_destroy(struct pop3_session *s)
{
	struct server *srv = s->srv;
	server_conn_del(srv, &s->conn);
	net_stream_free(s->bev, s->tls);
	pop3_cmd_free(s);
	pop3_session_drop_release(s);
	explicit_bzero(s->user, sizeof(s->user));
	iplimit_conn_del(srv->iplimit, s->ip);
	conf_free(s->conf);
	free(s);
	server_conn_gone(srv);
}

static void session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	pop3_session_destroy(arg);
}

static void session_free_later(struct pop3_session *s)
{
	if (s->freeing)
		return;
	s->freeing = true;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	/* freed from the loop, never from inside one of this session's own callbacks */
	event_base_once(s->srv->base, -1, EV_TIMEOUT, session_free_cb, s, NULL);
}

static void session_log_disconnect(struct pop3_session *s, const char *reason)
{
	log_info("session=%llx event=disconnect reason=%s state=%s retrieved=%u", (unsigned long long)s->conn.id, reason,
		 pop3_state_str(s->state), s->retrieved);
}

void pop3_session_close(struct pop3_session *s, const char *reason)
{
	if (s->conn.closing)
		return;
	s->conn.closing = true;
	session_log_disconnect(s, reason);
	/* RFC 1939 §6: whatever ends the session other than QUIT deletes nothing; the deletions of a
	 * QUIT are done by now. The mailbox is free for the next session from here on. */
	pop3_session_drop_release(s);
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		session_free_later(s);
		return;
	}
	/* flush the last reply first; the write callback frees once the output is empty */
	struct timeval tv = {.tv_sec = POP3_CLOSE_FLUSH_SECONDS};
	bufferevent_set_timeouts(s->bev, NULL, &tv);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
}

static void pop3_session_shutdown(struct pop3_session *s)
{
	if (s->conn.closing)
		return;
	if ((s->tls && !s->tls_up) || s->tls_pending) {
		/* mid-handshake: nothing can be said, and nothing of the client's to finish */
		s->conn.closing = true;
		session_log_disconnect(s, "shutdown");
		session_free_later(s);
		return;
	}
	if (s->waiting)
		return; /* pop3_session_resume checks srv->stopping when the step ends */
	evbuffer_add_printf(pop3_session_out(s), "-ERR [SYS/TEMP] Server shutting down\r\n");
	pop3_session_close(s, "shutdown");
}

void pop3_session_error(struct pop3_session *s)
{
	if (s->conn.closing)
		return;
	if (++s->errors >= s->conf->pop3_max_errors) {
		evbuffer_add_printf(pop3_session_out(s), "-ERR Too many errors, closing connection\r\n");
		pop3_session_close(s, "too_many_errors");
	}
}

void pop3_session_wait(struct pop3_session *s)
{
	s->waiting = true;
	bufferevent_disable(s->bev, EV_READ);
}

void pop3_session_resume(struct pop3_session *s)
{
	s->waiting = false;
	if (s->conn.closing)
		return;
	if (s->srv->stopping) {
		pop3_session_shutdown(s);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	session_process(s); /* RFC 2449 §6.6: commands pipelined behind the one that waited, in turn */
	if (s->eof && !s->waiting && !s->conn.closing)
		pop3_session_close(s, "client_closed");
}

/* Takes one CRLF-terminated line of at most max octets (CRLF included) from in. Returns 1 with the
 * line (without CRLF, NUL-terminated) in buf, 0 when more input is needed, -1 when the line was
 * refused (answered already). */
static int session_line(struct pop3_session *s, struct evbuffer *in, char *buf, size_t max, size_t *len_r)
{
	if (s->cmd_discarding) {
		bool done;
		size_t dropped;
		if (smtp_line_discard(in, &s->cmd_discard_cr, &done, &dropped) == SMTP_DATA_BARE_EOL) {
			evbuffer_add_printf(pop3_session_out(s), "-ERR Bare CR or LF received; lines must end with CRLF\r\n");
			pop3_session_close(s, "bare_eol");
			return -1;
		}
		if (!done)
			return 0;
		s->cmd_discarding = false;
		return -1;
	}
	size_t avail = evbuffer_get_length(in);
	struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
	if (lf.pos < 0 || (size_t)lf.pos >= max) {
		if (lf.pos < 0 && avail < max)
			return 0;
		/* RFC 2449 §4: commands are at most 255 octets; the rest of the line is dropped unread */
		evbuffer_add_printf(pop3_session_out(s), "-ERR Line too long\r\n");
		s->cmd_discarding = true;
		s->cmd_discard_cr = false;
		pop3_session_error(s);
		return -1;
	}
	size_t n = (size_t)lf.pos + 1;
	evbuffer_remove(in, buf, n);
	/* A line ends with CRLF and nothing else (RFC 1939 §3). As for SMTP, a bare CR or LF is refused
	 * and the connection closed: a lenient reading lets two parties see different commands. */
	if (n < 2 || buf[n - 2] != '\r' || memchr(buf, '\r', n - 2) != NULL) {
		explicit_bzero(buf, n);
		evbuffer_add_printf(pop3_session_out(s), "-ERR Bare CR or LF received; lines must end with CRLF\r\n");
		pop3_session_close(s, "bare_eol");
		return -1;
	}
	*len_r = n - 2;
	buf[n - 2] = '\0';
	return 1;
}

static void session_process(struct pop3_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char line[SASL_RESPONSE_LINE_MAX + 1];
	size_t len;

	while (!s->waiting && !s->conn.closing) {
		/* do not answer a client faster than it reads; the write callback resumes */
		if (evbuffer_get_length(pop3_session_out(s)) > POP3_OUTPUT_HIGH) {
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		bool sasl = s->input == POP3_INPUT_SASL;
		int r = session_line(s, in, line, sasl ? SASL_RESPONSE_LINE_MAX : POP3_CMD_LINE_MAX, &len);
		if (r == 0)
			return;
		if (r < 0) {
			if (sasl) /* an over-long response ends the AUTH exchange */
				s->input = POP3_INPUT_COMMAND;
			continue;
		}
		if (sasl)
			pop3_cmd_sasl_line(s, line, len);
		else
			pop3_cmd_dispatch(s, line, len);
		explicit_bzero(line, len); /* it may have been a password */
	}
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;
	size_t out = evbuffer_get_length(bufferevent_get_output(bev));
	if (s->conn.closing) {
		if (out == 0)
			session_free_later(s);
		return;
	}
	if (s->tls_pending) {
		if (out == 0)
			session_tls_begin(s);
		return;
	}
	if (s->retr != NULL) {
		pop3_cmd_retr_continue(s); /* the next piece of a RETR/TOP */
		return;
	}
	if (s->waiting)
		return;
	/* output drained: read again (session_process paused it), and answer what is already here —
	 * a client that pipelined its commands sends nothing more until it has the answers */
	bufferevent_enable(bev, EV_READ);
	session_process(s);
	if (s->eof && !s->waiting && !s->conn.closing)
		pop3_session_close(s, "client_closed");
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		s->tls_up = true; /* TLS handshake done */
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->conn.closing || s->waiting) {
			/* a client that reads nothing (even the end of a RETR) gets no more words */
			if (!s->conn.closing) {
				s->conn.closing = true;
				session_log_disconnect(s, "timeout");
				pop3_session_drop_release(s);
			}
			session_free_later(s);
			return;
		}
		/* RFC 1939 §3: the autologout timer expired; no UPDATE */
		evbuffer_add_printf(pop3_session_out(s), "-ERR [SYS/TEMP] Autologout: idle for too long\r\n");
		pop3_session_close(s, "timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = s->tls ? bufferevent_get_openssl_error(bev) : 0;
		if (!s->conn.closing) {
			s->conn.closing = true;
			session_log_disconnect(s, e ? "tls_error" : "io_error");
			pop3_session_drop_release(s);
		}
		session_free_later(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* The client sends nothing more but may still read: answer what it sent (a pipelined
		 * QUIT, say), then close. Without a QUIT nothing is deleted. */
		s->eof = true;
		if (!s->conn.closing && !s->waiting)
			session_process(s);
		if (!s->conn.closing && !s->waiting)
			pop3_session_close(s, "client_closed");
	}
}

void pop3_session_stls(struct pop3_session *s)
{
	/* RFC 2595 §4: the handshake starts right after the +OK (session_write_cb). CVE-2011-0411: what
	 * the client sent after STLS in the clear is dropped, never read as a command. */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	s->tls_pending = true;
	pop3_session_wait(s);
}

/* Moves the socket from the plain bufferevent to a TLS one. */
static void session_tls_begin(struct pop3_session *s)
{
	struct bufferevent *tls = net_stream_starttls(s->srv->base, s->srv->tls, s->bev);
	s->tls_pending = false;
	if (tls == NULL) {
		pop3_session_close(s, "tls_setup_failed");
		return;
	}
	s->bev = tls;
	s->tls = true;
	/* RFC 2595 §4: still AUTHORIZATION; nothing said before the handshake counts */
	s->state = POP3_STATE_AUTHORIZATION;
	s->input = POP3_INPUT_COMMAND;
	explicit_bzero(s->user, sizeof(s->user));
	session_set_callbacks(s);
	s->waiting = false;
}

/* session.c — the POP3 session on the shared line-session skeleton (net/line_session.h): accepting
 * (pop3 with STLS, pop3s with implicit TLS), command and AUTH lines, the POP3 words for timeouts,
 * errors and shutdown, what STLS forgets, and the set of locked mailboxes. What each command does
 * is in cmd.c. */
#include "pop3/session.h"

#include <event2/buffer.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "pop3/retr.h"
#include "util/log.h"
#include "util/overload.h"

/* The write callback runs once the output has drained to this: the next piece of a RETR goes out
 * before the client has to wait for it. */
#define POP3_OUTPUT_LOW 32768

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
	l->fd = -1;
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
	if (l->fd >= 0)
		close(l->fd); /* and with it the flock */
	free(l);
}

bool pop3_lock_file(struct pop3_lock *l)
{
	if (l->fd >= 0)
		return true;
	int fd = open(l->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return true; /* no maildir: no messages to share (errors show when it is read) */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return false;
	}
	l->fd = fd;
	return true;
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

static void pop3_session_shutdown(struct pop3_session *s);
static const struct line_session_ops pop3_line_ops;

static struct pop3_session *session_of(struct line_session *ls)
{
	return LINE_SESSION_OF(ls, struct pop3_session);
}

static void session_shutdown_conn(struct server_conn *c)
{
	pop3_session_shutdown(SERVER_CONN_OF(c, struct pop3_session));
}

static void session_destroy(struct line_session *ls)
{
	struct pop3_session *s = session_of(ls);
	struct server *srv = s->srv;

	server_conn_close(srv, &s->conn);
	line_session_deinit(&s->ls);
	pop3_retr_free(s);
	pop3_session_drop_release(s);
	explicit_bzero(s->user, sizeof(s->user));
	conf_free(s->conf);
	free(s);
	server_conn_gone(srv);
}

static void session_destroy_conn(struct server_conn *c)
{
	session_destroy(&SERVER_CONN_OF(c, struct pop3_session)->ls);
}

struct pop3_session *pop3_session_find(struct server *srv, uint64_t id)
{
	struct server_conn *c = server_conn_find(srv, id);
	return c != NULL ? SERVER_CONN_OF(c, struct pop3_session) : NULL;
}

bool pop3_session_output_low(struct pop3_session *s)
{
	return evbuffer_get_length(line_session_out(&s->ls)) <= POP3_OUTPUT_LOW;
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
	/* while overloaded, a quarter of the limits, so that idle clients make room sooner */
	bool hurry = srv->overload;
	s->idle_timeout = hurry ? overload_shrink(s->conf->pop3_idle_timeout) : s->conf->pop3_idle_timeout;
	s->max_errors = hurry ? overload_shrink(s->conf->pop3_max_errors) : s->conf->pop3_max_errors;
	/* RFC 8314 §3.3: pop3s is TLS from the first octet. RFC 1939 §3: an inactivity autologout
	 * timer; any command resets it. */
	bool implicit_tls = l->role == CONF_LISTEN_POP3S;
	if (line_session_start(&s->ls, &pop3_line_ops, srv->base, srv->tls, fd, implicit_tls, s->idle_timeout,
			       POP3_OUTPUT_LOW) != 0) {
		conf_free(s->conf);
		free(s);
		return;
	}
	/* "any command" is a whole command line: the autologout timer runs from the previous answer
	 * until the next line has arrived, however its octets trickle in */
	line_session_set_line_timeout(&s->ls, s->idle_timeout);
	line_session_set_lifetime(&s->ls, s->conf->pop3_session_timeout);
	server_conn_open(srv, &s->conn, l, sa, implicit_tls, session_shutdown_conn, session_destroy_conn);
	pop3_cmd_greet(s);
}


static void session_closed(struct line_session *ls, const char *reason)
{
	struct pop3_session *s = session_of(ls);

	s->conn.closing = true; /* the registry no longer finds it */
	log_info("session=%llx event=disconnect reason=%s state=%s retrieved=%u", (unsigned long long)s->conn.id, reason,
		 pop3_state_str(s->state), s->retrieved);
	/* RFC 1939 §6: whatever ends the session other than QUIT deletes nothing; the deletions of a
	 * QUIT are done by now. The mailbox is free for the next session from here on. */
	pop3_session_drop_release(s);
}

static void pop3_session_shutdown(struct pop3_session *s)
{
	if (!line_session_shutdown_ready(&s->ls))
		return; /* a waiting session: pop3_session_resume checks srv->stopping when the step ends */
	evbuffer_add_printf(line_session_out(&s->ls), "-ERR [SYS/TEMP] Server shutting down\r\n");
	line_session_close(&s->ls, "shutdown");
}

void pop3_session_error(struct pop3_session *s)
{
	if (s->ls.closing)
		return;
	if (++s->errors >= s->max_errors) {
		evbuffer_add_printf(line_session_out(&s->ls), "-ERR Too many errors, closing connection\r\n");
		line_session_close(&s->ls, "too_many_errors");
	}
}

void pop3_session_resume(struct pop3_session *s)
{
	if (!s->ls.closing && s->srv->stopping) {
		s->ls.waiting = false;
		pop3_session_shutdown(s);
		return;
	}
	line_session_resume(&s->ls); /* RFC 2449 §6.6: commands pipelined behind the one that waited, in turn */
}

static bool session_step(struct line_session *ls)
{
	struct pop3_session *s = session_of(ls);
	char line[SASL_RESPONSE_LINE_MAX + 1];
	size_t len;
	bool sasl = s->input == POP3_INPUT_SASL;

	switch (line_session_read_line(ls, line, sasl ? SASL_RESPONSE_LINE_MAX : POP3_CMD_LINE_MAX, &len)) {
	case LINE_READ_MORE:
		return false;
	case LINE_READ_BARE_EOL:
		/* A line ends with CRLF and nothing else (RFC 1939 §3). As for SMTP, a bare CR or LF is
		 * refused and the connection closed: a lenient reading lets two parties see different commands. */
		evbuffer_add_printf(line_session_out(&s->ls), "-ERR Bare CR or LF received; lines must end with CRLF\r\n");
		line_session_close(&s->ls, "bare_eol");
		return true;
	case LINE_READ_TOO_LONG:
		/* RFC 2449 §4: commands are at most 255 octets; the rest of the line is dropped unread */
		evbuffer_add_printf(line_session_out(&s->ls), "-ERR Line too long\r\n");
		pop3_session_error(s);
		if (sasl) /* an over-long response ends the AUTH exchange */
			s->input = POP3_INPUT_COMMAND;
		return true;
	case LINE_READ_DROPPED:
		return true;
	case LINE_READ_OK:
		break;
	}
	if (sasl)
		pop3_cmd_sasl_line(s, line, len);
	else
		pop3_cmd_dispatch(s, line, len);
	explicit_bzero(line, len); /* it may have been a password */
	return true;
}

/* The output drained to the low mark: the next piece of a RETR/TOP goes out first. */
static bool session_drained(struct line_session *ls)
{
	struct pop3_session *s = session_of(ls);

	if (s->retr == NULL)
		return false;
	pop3_retr_continue(s);
	return true;
}

static void session_timeout(struct line_session *ls, enum line_timeout why)
{
	struct pop3_session *s = session_of(ls);

	if (why == LINE_TIMEOUT_SESSION) {
		evbuffer_add_printf(line_session_out(&s->ls), "-ERR [SYS/TEMP] Session time limit exceeded\r\n");
		line_session_close(&s->ls, "session_timeout");
		return;
	}
	if (ls->waiting) {
		/* a client that reads nothing (even the end of a RETR) gets no more words */
		line_session_abort(ls, "timeout");
		return;
	}
	/* RFC 1939 §3: the autologout timer expired; no UPDATE */
	evbuffer_add_printf(line_session_out(&s->ls), "-ERR [SYS/TEMP] Autologout: idle for too long\r\n");
	line_session_close(&s->ls, "timeout");
}

void pop3_session_stls(struct pop3_session *s)
{
	/* RFC 2595 §4: the handshake starts right after the +OK */
	line_session_starttls(&s->ls, s->srv->tls);
}

static void session_tls_started(struct line_session *ls)
{
	struct pop3_session *s = session_of(ls);

	/* RFC 2595 §4: still AUTHORIZATION; nothing said before the handshake counts */
	s->state = POP3_STATE_AUTHORIZATION;
	s->input = POP3_INPUT_COMMAND;
	explicit_bzero(s->user, sizeof(s->user));
}

static const struct line_session_ops pop3_line_ops = {
	.step = session_step,
	.drained = session_drained,
	.timeout = session_timeout,
	.closed = session_closed,
	.tls_started = session_tls_started,
	.destroy = session_destroy,
};

/* RFC 3206 §4: [SYS/TEMP] tells the client the refusal is temporary. */
const struct server_protocol pop3_protocol = {
	.name = "pop3",
	.start = pop3_session_start,
	.refuse_busy = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
	.refuse_busy_client = "-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n",
	.refuse_banned = "-ERR [SYS/TEMP] Too many failed logins from your address, try again later\r\n",
};

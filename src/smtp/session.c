/* session.c — the SMTP session's I/O: accepting, reading lines / data / chunks from the
 * bufferevent, pausing while an asynchronous step runs, STARTTLS, timeouts and closing. What each
 * command does is in cmd.c. */
#include "smtp/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "net/iplimit.h"
#include "net/listener.h"
#include "net/stream.h"
#include "server/server.h"
#include "smtp/checks.h"
#include "smtp/reply.h"
#include "util/log.h"

/* Stop reading while this much output is unsent: a client that never reads cannot grow our memory. */
#define SMTP_OUTPUT_HIGH 65536

const char *smtp_state_str(enum smtp_state s)
{
	switch (s) {
	case SMTP_STATE_INIT: return "init";
	case SMTP_STATE_READY: return "ready";
	case SMTP_STATE_MAIL: return "mail";
	case SMTP_STATE_RCPT: return "rcpt";
	case SMTP_STATE_BDAT: return "bdat";
	}
	return "?";
}

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_tls_begin(struct smtp_session *s);
static void smtp_session_destroy(struct smtp_session *s);
static void smtp_session_shutdown(struct smtp_session *s);

static void session_shutdown_conn(struct server_conn *c)
{
	smtp_session_shutdown(SERVER_CONN_OF(c, struct smtp_session));
}

static void session_destroy_conn(struct server_conn *c)
{
	smtp_session_destroy(SERVER_CONN_OF(c, struct smtp_session));
}

struct smtp_session *smtp_session_find(struct server *srv, uint64_t id)
{
	struct server_conn *c = server_conn_find(srv, id);
	return c != NULL ? SERVER_CONN_OF(c, struct smtp_session) : NULL;
}

struct evbuffer *smtp_session_out(struct smtp_session *s)
{
	return bufferevent_get_output(s->bev);
}

void smtp_session_set_timeout(struct smtp_session *s, unsigned seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void session_set_callbacks(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	smtp_session_set_timeout(s, s->conf->command_timeout);
}

static void smtp_session_start(struct server *srv, const struct server_listener *l, int fd, const struct sockaddr *sa)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->srv = srv;
	s->conf = conf_ref(srv->conf);
	s->role = l->role;
	s->listener_loopback = l->loopback && net_sockaddr_is_loopback(sa);
	net_sockaddr_ip(sa, s->ip, sizeof(s->ip));

	s->tls = s->role == CONF_LISTEN_SUBMISSIONS; /* RFC 8314 §3.3: implicit TLS from the first octet */
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
	log_info("session=%llx event=connect role=%s client=%s tls=%s", (unsigned long long)s->conn.id,
		 conf_listener_str(s->role), s->ip, s->tls ? "implicit" : "no");
	smtp_cmd_greet(s);
}

/* RFC 5321 §3.8: a server that cannot take the session answers 421 and closes. */
const struct server_protocol smtp_protocol = {
	.name = "smtp",
	.start = smtp_session_start,
	.refuse_busy = "421 4.7.0 Too many connections, try again later\r\n",
	.refuse_busy_client = "421 4.7.0 Too many connections from your address, try again later\r\n",
};

static void smtp_session_destroy(struct smtp_session *s)
{
	struct server *srv = s->srv;
	smtp_checks_cancel(s->checks);
	server_conn_del(srv, &s->conn);
	net_stream_free(s->bev, s->tls);
	smtp_tx_reset(s);
	iplimit_conn_del(srv->iplimit, s->ip);
	conf_free(s->conf);
	free(s);
	server_conn_gone(srv);
}

static void session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	smtp_session_destroy(arg);
}

static void session_free_later(struct smtp_session *s)
{
	if (s->freeing)
		return;
	s->freeing = true;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	/* freed from the loop, never from inside one of this session's own callbacks */
	event_base_once(s->srv->base, -1, EV_TIMEOUT, session_free_cb, s, NULL);
}

void smtp_session_close(struct smtp_session *s, const char *reason)
{
	if (s->conn.closing)
		return;
	s->conn.closing = true;
	log_info("session=%llx event=disconnect reason=%s messages=%u", (unsigned long long)s->conn.id, reason, s->messages);
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		session_free_later(s);
		return;
	}
	/* flush the last reply first; the write callback frees once the output is empty */
	struct timeval tv = {.tv_sec = 10};
	bufferevent_set_timeouts(s->bev, NULL, &tv);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
}

static void smtp_session_shutdown(struct smtp_session *s)
{
	if (s->conn.closing)
		return;
	if ((s->tls && !s->tls_up) || s->tls_pending) {
		/* mid-handshake: no way to say 421, and nothing of the client's to finish */
		s->conn.closing = true;
		log_info("session=%llx event=disconnect reason=shutdown messages=%u", (unsigned long long)s->conn.id,
			 s->messages);
		session_free_later(s);
		return;
	}
	if (s->waiting)
		return; /* cmd.c checks srv->stopping when the step ends */
	smtp_reply(smtp_session_out(s), 421, "4.3.2", "%s Service shutting down", s->conf->hostname);
	smtp_session_close(s, "shutdown");
}

void smtp_session_error(struct smtp_session *s)
{
	/* RFC 5321 §4.3.2 leaves room to drop a client that keeps failing */
	if (++s->errors >= s->conf->max_errors) {
		smtp_reply(smtp_session_out(s), 421, "4.7.0", "%s Too many errors, closing connection",
			   s->conf->hostname);
		smtp_session_close(s, "too_many_errors");
	}
}

void smtp_session_wait(struct smtp_session *s)
{
	s->waiting = true;
	bufferevent_disable(s->bev, EV_READ);
}

static void session_process(struct smtp_session *s);

/* Reads again and answers whatever is already buffered; closes when the client has finished. */
static void session_continue(struct smtp_session *s)
{
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
	if (s->eof && !s->waiting && !s->conn.closing)
		smtp_session_close(s, "client_closed");
}

void smtp_session_resume(struct smtp_session *s)
{
	s->waiting = false;
	if (s->conn.closing)
		return;
	if (s->srv->stopping && s->input == SMTP_INPUT_COMMAND) {
		smtp_session_shutdown(s);
		return;
	}
	session_continue(s); /* commands pipelined behind the one that waited */
}

/* Takes one CRLF-terminated line of at most max octets from in. Returns 1 with the line (without
 * CRLF) in buf, 0 when more input is needed, -1 after replying to a broken line. */
static int session_line(struct smtp_session *s, struct evbuffer *in, char *buf, size_t max, size_t *len_r)
{
	size_t avail = evbuffer_get_length(in);
	struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);

	if (s->cmd_discarding) {
		bool done;
		size_t dropped;
		if (smtp_line_discard(in, &s->cmd_discard_cr, &done, &dropped) == SMTP_DATA_BARE_EOL) {
			smtp_reply(smtp_session_out(s), 500, "5.5.2", "Bare CR or LF received; lines must end with CRLF");
			smtp_session_close(s, "bare_eol");
			return -1;
		}
		if (!done)
			return 0;
		s->cmd_discarding = false;
		return -1; /* already answered */
	}
	if (lf.pos < 0 || (size_t)lf.pos >= max) {
		if (avail < max && lf.pos < 0)
			return 0;
		/* RFC 5321 §4.5.3.1.4 command line limit; §4.2.2 500 for a line too long */
		smtp_reply(smtp_session_out(s), 500, "5.5.2", "Line too long");
		s->cmd_discarding = true;
		smtp_session_error(s);
		return -1;
	}
	size_t n = (size_t)lf.pos + 1;
	evbuffer_remove(in, buf, n);
	/* RFC 5321 §2.3.8: a line ends with CRLF and nothing else; a bare CR or LF is refused outright,
	 * as no well-behaved client sends one and a lenient reading is how smuggling starts. */
	if (n < 2 || buf[n - 2] != '\r' || memchr(buf, '\r', n - 2) != NULL) {
		smtp_reply(smtp_session_out(s), 500, "5.5.2", "Bare CR or LF received; lines must end with CRLF");
		smtp_session_close(s, "bare_eol");
		return -1;
	}
	*len_r = n - 2;
	buf[n - 2] = '\0';
	return 1;
}

static void session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char line[SASL_RESPONSE_LINE_MAX + 2];
	size_t len;

	while (!s->waiting && !s->conn.closing) {
		/* do not answer a client faster than it reads */
		if (evbuffer_get_length(smtp_session_out(s)) > SMTP_OUTPUT_HIGH) {
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		switch (s->input) {
		case SMTP_INPUT_COMMAND:
		case SMTP_INPUT_SASL: {
			size_t max = s->input == SMTP_INPUT_SASL ? SASL_RESPONSE_LINE_MAX : SMTP_CMD_LINE_MAX;
			int r = session_line(s, in, line, max, &len);
			if (r == 0)
				return;
			if (r < 0) {
				if (s->input == SMTP_INPUT_SASL && !s->conn.closing) { /* an over-long response ends the AUTH */
					s->input = SMTP_INPUT_COMMAND;
				}
				continue;
			}
			if (s->input == SMTP_INPUT_SASL) {
				smtp_cmd_sasl_line(s, line, len);
			} else if (!s->esmtp && evbuffer_get_length(in) > 0 && strncasecmp(line, "QUIT", 4) != 0) {
				/* RFC 2920 §3.1: a client may send ahead only after EHLO advertised PIPELINING.
				 * Anything else sending ahead is out of step with us, like a smuggler. */
				smtp_reply(smtp_session_out(s), 503, "5.5.0", "Improper command pipelining");
				smtp_session_close(s, "improper_pipelining");
			} else {
				smtp_cmd_dispatch(s, line, len);
			}
			break;
		}
		case SMTP_INPUT_DATA:
			switch (smtp_data_read(&s->tx.data, in)) {
			case SMTP_DATA_MORE:
				return;
			case SMTP_DATA_END:
				s->input = SMTP_INPUT_COMMAND;
				smtp_session_set_timeout(s, s->conf->command_timeout);
				smtp_cmd_data_end(s);
				break;
			case SMTP_DATA_BARE_EOL:
				/* never guess where such a message ends (CVE-2023-51764/51765/51766) */
				smtp_reply(smtp_session_out(s), 550, "5.5.2",
					   "Message refused: bare CR or LF in data; lines must end with CRLF");
				smtp_tx_reset(s);
				smtp_session_close(s, "bare_eol_in_data");
				return;
			}
			break;
		case SMTP_INPUT_CHUNK: {
			size_t avail = evbuffer_get_length(in);
			if (avail == 0 && s->tx.chunk_left > 0)
				return;
			size_t n = s->tx.chunk_left < avail ? (size_t)s->tx.chunk_left : avail;
			if (s->tx.chunk_reject_code != 0)
				evbuffer_drain(in, n); /* a refused chunk is read and dropped */
			else
				smtp_data_chunk(&s->tx.data, in, n);
			s->tx.chunk_left -= n;
			if (s->tx.chunk_left > 0)
				return;
			s->input = SMTP_INPUT_COMMAND;
			smtp_session_set_timeout(s, s->conf->command_timeout);
			smtp_cmd_data_end(s);
			break;
		}
		}
	}
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	if (s->conn.closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_free_later(s);
		return;
	}
	if (s->tls_pending) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_tls_begin(s);
		return;
	}
	/* the output drained: go on with what the client already sent (session_process paused for it) */
	if (!s->waiting)
		session_continue(s);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		s->tls_up = true; /* TLS handshake done */
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->conn.closing) {
			session_free_later(s);
			return;
		}
		/* RFC 5321 §4.5.3.2: the server may close after its timeout, with a 421 */
		smtp_reply(smtp_session_out(s), 421, "4.4.2", "%s Error: timeout exceeded", s->conf->hostname);
		smtp_session_close(s, "timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = s->tls ? bufferevent_get_openssl_error(bev) : 0;
		if (!s->conn.closing) {
			s->conn.closing = true;
			log_info("session=%llx event=disconnect reason=%s messages=%u", (unsigned long long)s->conn.id,
				 e ? "tls_error" : "io_error", s->messages);
		}
		session_free_later(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* The client will send nothing more, but it may still read: answer what it already sent
		 * (a pipelined "." and QUIT, say), then close. */
		s->eof = true;
		if (!s->conn.closing && !s->waiting)
			session_process(s);
		if (!s->conn.closing && !s->waiting)
			smtp_session_close(s, "client_closed");
	}
}

void smtp_session_starttls(struct smtp_session *s)
{
	/* The handshake starts once the 220 has left (session_write_cb). RFC 3207 §4.2 / CVE-2011-0411:
	 * whatever the client sent after STARTTLS in the clear is dropped, never read as a command. */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	s->tls_pending = true;
	smtp_session_wait(s);
}

/* Moves the socket from the plain bufferevent to a TLS one. */
static void session_tls_begin(struct smtp_session *s)
{
	struct bufferevent *tls = net_stream_starttls(s->srv->base, s->srv->tls, s->bev);
	s->tls_pending = false;
	if (tls == NULL) {
		smtp_session_close(s, "tls_setup_failed");
		return;
	}
	s->bev = tls;
	s->tls = true;
	/* RFC 3207 §4.2: the server forgets everything it knew from the client */
	s->state = SMTP_STATE_INIT;
	s->esmtp = false;
	s->helo[0] = '\0';
	smtp_tx_reset(s);
	session_set_callbacks(s);
	s->waiting = false;
}

bool smtp_session_tls_info(struct smtp_session *s, const char **version_r, const char **cipher_r)
{
	return s->tls && net_stream_tls_info(s->bev, version_r, cipher_r);
}

/* session.c — the SMTP session on the shared line-session skeleton (net/line_session.h): accepting,
 * what each turn of input is (command, AUTH line, DATA, BDAT chunk), the SMTP words for timeouts,
 * errors and shutdown, and what STARTTLS forgets. What each command does is in cmd.c. */
#include "smtp/session.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "net/stream.h"
#include "server/server.h"
#include "smtp/checks.h"
#include "smtp/reply.h"
#include "util/budget.h"
#include "util/date.h"
#include "util/log.h"
#include "util/overload.h"

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

static void smtp_session_shutdown(struct smtp_session *s);
static const struct line_session_ops smtp_line_ops;

static struct smtp_session *session_of(struct line_session *ls)
{
	return LINE_SESSION_OF(ls, struct smtp_session);
}

static void session_shutdown_conn(struct server_conn *c)
{
	smtp_session_shutdown(SERVER_CONN_OF(c, struct smtp_session));
}

static void session_destroy(struct line_session *ls)
{
	struct smtp_session *s = session_of(ls);
	struct server *srv = s->srv;

	smtp_checks_cancel(s->checks);
	budget_give(&srv->memory, s->memory_held);
	server_conn_close(srv, &s->conn);
	line_session_deinit(&s->ls);
	smtp_tx_reset(s);
	conf_free(s->conf);
	free(s);
	server_conn_gone(srv);
}

static void session_destroy_conn(struct server_conn *c)
{
	session_destroy(&SERVER_CONN_OF(c, struct smtp_session)->ls);
}

struct smtp_session *smtp_session_find(struct server *srv, uint64_t id)
{
	struct server_conn *c = server_conn_find(srv, id);
	return c != NULL ? SERVER_CONN_OF(c, struct smtp_session) : NULL;
}

/* RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command. The time is the
 * whole command line's, from the moment we are ready for it, not a timer that every octet resets:
 * a client that sends a byte now and then would otherwise hold the session for ever. */
static void session_commands_begin(struct smtp_session *s)
{
	line_session_set_timeout(&s->ls, s->command_timeout);
	line_session_set_line_timeout(&s->ls, s->command_timeout);
}

void smtp_session_content_begin(struct smtp_session *s)
{
	/* RFC 5321 §4.5.3.2.5-6: the client may take minutes per block of data and for the whole of
	 * it; idle time is data_timeout, and the rate floor below cuts a client that trickles */
	line_session_set_line_timeout(&s->ls, 0);
	line_session_set_timeout(&s->ls, s->data_timeout);
	if (s->tx.rate.started)
		return; /* a later BDAT chunk of the same message: one measurement from the first */
	int64_t window_ms = (int64_t)s->conf->min_data_rate_window * 1000;
	/* Postfix's smtpd_min_data_rate: the first window is the grace period */
	minrate_start(&s->tx.rate, s->conf->min_data_rate, window_ms, window_ms, 0, date_mono_ms());
}

/* The limits of a session started now: a quarter of the configured ones while overloaded. */
static void session_limits_init(struct smtp_session *s)
{
	const struct conf *c = s->conf;
	bool hurry = s->srv->overload;
	s->command_timeout = hurry ? overload_shrink(c->command_timeout) : c->command_timeout;
	s->data_timeout = hurry ? overload_shrink(c->data_timeout) : c->data_timeout;
	s->max_errors = hurry ? overload_shrink(c->max_errors) : c->max_errors;
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
	session_limits_init(s);
	/* RFC 8314 §3.3: submissions is TLS from the first octet */
	bool implicit_tls = l->role == CONF_LISTEN_SUBMISSIONS;
	if (line_session_start(&s->ls, &smtp_line_ops, srv->base, srv->tls, fd, implicit_tls, s->command_timeout, 0) !=
	    0) {
		conf_free(s->conf);
		free(s);
		return;
	}
	session_commands_begin(s); /* the handshake, if any, and the first command */
	line_session_set_lifetime(&s->ls, s->conf->session_timeout);
	server_conn_open(srv, &s->conn, l, sa, implicit_tls, session_shutdown_conn, session_destroy_conn);
	smtp_cmd_greet(s);
}


static void session_closed(struct line_session *ls, const char *reason)
{
	struct smtp_session *s = session_of(ls);

	s->conn.closing = true; /* the registry no longer finds it */
	log_info("session=%llx event=disconnect reason=%s messages=%u", (unsigned long long)s->conn.id, reason, s->messages);
}

static void smtp_session_shutdown(struct smtp_session *s)
{
	if (!line_session_shutdown_ready(&s->ls))
		return; /* a waiting session: cmd.c checks srv->stopping when the step ends */
	smtp_reply(line_session_out(&s->ls), 421, "4.3.2", "%s Service shutting down", s->conf->hostname);
	line_session_close(&s->ls, "shutdown");
}

void smtp_session_error(struct smtp_session *s)
{
	/* RFC 5321 §4.3.2 leaves room to drop a client that keeps failing */
	if (++s->errors >= s->max_errors) {
		smtp_reply(line_session_out(&s->ls), 421, "4.7.0", "%s Too many errors, closing connection",
			   s->conf->hostname);
		line_session_close(&s->ls, "too_many_errors");
	}
}

void smtp_session_resume(struct smtp_session *s)
{
	budget_give(&s->srv->memory, s->memory_held); /* the message has been answered for */
	s->memory_held = 0;
	if (!s->ls.closing && s->srv->stopping && s->input == SMTP_INPUT_COMMAND) {
		s->ls.waiting = false;
		smtp_session_shutdown(s);
		return;
	}
	line_session_resume(&s->ls); /* commands pipelined behind the one that waited */
}

static void session_bare_eol(struct smtp_session *s)
{
	smtp_reply(line_session_out(&s->ls), 500, "5.5.2", "Bare CR or LF received; lines must end with CRLF");
	line_session_close(&s->ls, "bare_eol");
}

_Static_assert(SMTP_CMD_LINE_MAX_PARAMS <= SASL_RESPONSE_LINE_MAX, "a MAIL or RCPT line fits the line buffer");

/* A command or AUTH line; false when more input is needed. */
static bool session_step_line(struct smtp_session *s)
{
	char line[SASL_RESPONSE_LINE_MAX + 2];
	size_t len;
	bool sasl = s->input == SMTP_INPUT_SASL;

	switch (line_session_read_line(&s->ls, line, sasl ? SASL_RESPONSE_LINE_MAX : SMTP_CMD_LINE_MAX_PARAMS, &len)) {
	case LINE_READ_MORE:
		return false;
	case LINE_READ_BARE_EOL:
		/* RFC 5321 §2.3.8: a line ends with CRLF and nothing else; a bare CR or LF is refused
		 * outright, as no well-behaved client sends one and a lenient reading is how smuggling starts. */
		session_bare_eol(s);
		return true;
	case LINE_READ_TOO_LONG:
		/* RFC 5321 §4.5.3.1.4 command line limit; §4.2.2 500 for a line too long */
		smtp_reply(line_session_out(&s->ls), 500, "5.5.2", "Line too long");
		smtp_session_error(s);
		if (sasl)
			s->input = SMTP_INPUT_COMMAND; /* an over-long response ends the AUTH */
		return true;
	case LINE_READ_DROPPED:
		return true; /* already answered */
	case LINE_READ_OK:
		break;
	}
	if (sasl) {
		smtp_cmd_sasl_line(s, line, len);
	} else if (!s->esmtp && evbuffer_get_length(line_session_in(&s->ls)) > 0 && strncasecmp(line, "QUIT", 4) != 0) {
		/* RFC 2920 §3.1: a client may send ahead only after EHLO advertised PIPELINING.
		 * Anything else sending ahead is out of step with us, like a smuggler. */
		smtp_reply(line_session_out(&s->ls), 503, "5.5.0", "Improper command pipelining");
		line_session_close(&s->ls, "improper_pipelining");
	} else {
		smtp_cmd_dispatch(s, line, len);
	}
	return true;
}

/* Postfix's smtpd_min_data_rate idea: content that arrives slower than [smtp] min_data_rate over
 * a window is cut, as a per-read idle timer never fires on a client that sends a byte now and
 * then. What is buffered but not yet taken (part of a line) counts as arrived. true when cut. */
static bool session_too_slow(struct smtp_session *s)
{
	uint64_t total = s->tx.content_octets + evbuffer_get_length(line_session_in(&s->ls));
	if (!minrate_too_slow(&s->tx.rate, total, date_mono_ms()))
		return false;
	log_info("session=%llx event=rejected reason=too_slow size=%llu min_data_rate=%u", (unsigned long long)s->conn.id,
		 (unsigned long long)total, s->conf->min_data_rate);
	smtp_reply(line_session_out(&s->ls), 421, "4.4.2", "%s Error: message content arrives too slow",
		   s->conf->hostname);
	smtp_tx_reset(s);
	line_session_close(&s->ls, "too_slow");
	return true;
}

/* Back to command lines after message content. */
static void session_content_end(struct smtp_session *s)
{
	s->input = SMTP_INPUT_COMMAND;
	session_commands_begin(s);
	smtp_cmd_data_end(s);
}

/* DATA content up to the "." line; false when more input is needed. */
static bool session_step_data(struct smtp_session *s)
{
	struct evbuffer *in = line_session_in(&s->ls);
	if (session_too_slow(s))
		return false;
	size_t before = evbuffer_get_length(in);
	enum smtp_data_status st = smtp_data_read(&s->tx.data, in);
	s->tx.content_octets += before - evbuffer_get_length(in);
	switch (st) {
	case SMTP_DATA_MORE:
		return false;
	case SMTP_DATA_END:
		session_content_end(s);
		return true;
	case SMTP_DATA_BARE_EOL:
		/* never guess where such a message ends (CVE-2023-51764/51765/51766) */
		smtp_reply(line_session_out(&s->ls), 550, "5.5.2", "Message refused: bare CR or LF in data; lines must end with CRLF");
		smtp_tx_reset(s);
		line_session_close(&s->ls, "bare_eol_in_data");
		return false;
	}
	return false;
}

/* The octets of a BDAT chunk (RFC 3030 §2); false when more input is needed. */
static bool session_step_chunk(struct smtp_session *s)
{
	struct evbuffer *in = line_session_in(&s->ls);
	size_t avail = evbuffer_get_length(in);

	if (session_too_slow(s))
		return false;
	if (avail == 0 && s->tx.chunk_left > 0)
		return false;
	size_t n = s->tx.chunk_left < avail ? (size_t)s->tx.chunk_left : avail;
	if (s->tx.chunk_reject_code != 0)
		evbuffer_drain(in, n); /* a refused chunk is read and dropped */
	else
		smtp_data_chunk(&s->tx.data, in, n);
	s->tx.chunk_left -= n;
	s->tx.content_octets += n;
	if (s->tx.chunk_left > 0)
		return false;
	session_content_end(s);
	return true;
}

static bool session_step(struct line_session *ls)
{
	struct smtp_session *s = session_of(ls);

	switch (s->input) {
	case SMTP_INPUT_COMMAND:
	case SMTP_INPUT_SASL: return session_step_line(s);
	case SMTP_INPUT_DATA: return session_step_data(s);
	case SMTP_INPUT_CHUNK: return session_step_chunk(s);
	}
	return false;
}

static void session_timeout(struct line_session *ls, enum line_timeout why)
{
	struct smtp_session *s = session_of(ls);

	/* RFC 5321 §4.5.3.2: the server may close after its timeout, with a 421 */
	if (why == LINE_TIMEOUT_SESSION) {
		smtp_reply(line_session_out(&s->ls), 421, "4.4.2", "%s Error: session time limit exceeded",
			   s->conf->hostname);
		line_session_close(&s->ls, "session_timeout");
		return;
	}
	smtp_reply(line_session_out(&s->ls), 421, "4.4.2", "%s Error: timeout exceeded", s->conf->hostname);
	line_session_close(&s->ls, "timeout");
}

void smtp_session_starttls(struct smtp_session *s)
{
	line_session_starttls(&s->ls, s->srv->tls); /* the handshake starts once the 220 has left */
}

static void session_tls_started(struct line_session *ls)
{
	struct smtp_session *s = session_of(ls);

	/* RFC 3207 §4.2: the server forgets everything it knew from the client */
	s->state = SMTP_STATE_INIT;
	s->input = SMTP_INPUT_COMMAND;
	s->esmtp = false;
	s->helo[0] = '\0';
	smtp_tx_reset(s);
}

bool smtp_session_tls_info(struct smtp_session *s, const char **version_r, const char **cipher_r)
{
	return s->ls.tls && net_stream_tls_info(s->ls.bev, version_r, cipher_r);
}

static const struct line_session_ops smtp_line_ops = {
	.step = session_step,
	.timeout = session_timeout,
	.closed = session_closed,
	.tls_started = session_tls_started,
	.destroy = session_destroy,
};

/* RFC 5321 §3.8: a server that cannot take the session answers 421 and closes. */
const struct server_protocol smtp_protocol = {
	.name = "smtp",
	.start = smtp_session_start,
	.refuse_busy = "421 4.7.0 Too many connections, try again later\r\n",
	.refuse_busy_client = "421 4.7.0 Too many connections from your address, try again later\r\n",
	.refuse_banned = "421 4.7.0 Too many failed logins from your address, try again later\r\n",
};

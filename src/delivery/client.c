/* client.c — the outbound SMTP client: one connection, one transaction per job, on the event loop.
 *
 * The dialogue is driven by a queue of replies still owed to us, in the order the commands went out
 * (RFC 2920 §3.1: replies are counted, never matched by code or text). Without PIPELINING the queue
 * holds one entry; with it, MAIL, every RCPT and DATA go out in one write and their replies are read
 * in order. What each reply means is in the command table (client_cmds): its name, its timeout and
 * its handler. One timer bounds every wait for a reply; the bufferevent's write timeout bounds each
 * block of output (RFC 5321 §4.5.3.2).
 *
 * Lifetime: the client belongs to the caller until the done callback returns; then it either runs
 * the next job (delivery_client_send from inside the callback) or quits and frees itself. Freeing
 * happens only when no callback of ours is on the stack (depth == 0). */
#include "delivery/client.h"
#include "delivery/client_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "sasl/sasl.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/base64.h"

/* Output kept queued while streaming the content: enough to fill the socket, bounded memory. */
#define CLIENT_BODY_HIGH (64 * 1024)
#define CLIENT_BODY_LOW (16 * 1024)
#define CLIENT_BODY_CHUNK (16 * 1024)
/* Input kept while we are not reading replies (during the content): then reading stops. */

const char *delivery_tls_policy_str(enum delivery_tls_policy p)
{
	switch (p) {
	case DELIVERY_TLS_NONE: return "none";
	case DELIVERY_TLS_OPPORTUNISTIC: return "opportunistic";
	case DELIVERY_TLS_REQUIRED: return "required";
	case DELIVERY_TLS_IMPLICIT: return "implicit";
	case DELIVERY_TLS_ENCRYPT: return "encrypt";
	case DELIVERY_TLS_DANE: return "dane";
	}
	return "?";
}

const char *delivery_error_str(enum delivery_error e)
{
	switch (e) {
	case DELIVERY_ERR_NONE: return "none";
	case DELIVERY_ERR_CONNECT: return "connect";
	case DELIVERY_ERR_GREETING: return "greeting";
	case DELIVERY_ERR_HELO: return "helo";
	case DELIVERY_ERR_TLS_UNAVAILABLE: return "tls_unavailable";
	case DELIVERY_ERR_TLS_HANDSHAKE: return "tls_handshake";
	case DELIVERY_ERR_AUTH: return "auth";
	case DELIVERY_ERR_TIMEOUT: return "timeout";
	case DELIVERY_ERR_LOST: return "lost";
	case DELIVERY_ERR_PROTOCOL: return "protocol";
	case DELIVERY_ERR_SIZE: return "size";
	case DELIVERY_ERR_SMTPUTF8: return "smtputf8";
	case DELIVERY_ERR_MAIL: return "mail";
	case DELIVERY_ERR_DATA: return "data";
	case DELIVERY_ERR_REQUIRETLS: return "requiretls";
	}
	return "?";
}

static const char *client_state_str(enum client_state s)
{
	switch (s) {
	case CLIENT_STATE_CONNECTING: return "connecting";
	case CLIENT_STATE_TLS: return "tls";
	case CLIENT_STATE_REPLIES: return "replies";
	case CLIENT_STATE_BODY: return "body";
	case CLIENT_STATE_NEXT: return "next";
	case CLIENT_STATE_IDLE: return "idle";
	case CLIENT_STATE_QUIT: return "quit";
	case CLIENT_STATE_CLOSED: return "closed";
	}
	return "?";
}


static void client_reply_greeting(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_ehlo(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_helo(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_starttls(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_auth(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_rset(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_mail(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_rcpt(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_data(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_dot(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
static void client_reply_quit(struct delivery_client *c, const struct delivery_reply *r, size_t arg);

/* The state machine as data: what each reply answers, how long we wait for it, what follows. */
static const struct client_cmd_def {
	const char *name; /* "in reply to ..." */
	size_t timeout;   /* offsetof(struct delivery_timeouts, ...) */
	void (*reply)(struct delivery_client *c, const struct delivery_reply *r, size_t arg);
} client_cmds[] = {
	[CLIENT_CMD_GREETING] = {"the greeting", offsetof(struct delivery_timeouts, greeting_ms), client_reply_greeting},
	[CLIENT_CMD_EHLO] = {"EHLO", offsetof(struct delivery_timeouts, command_ms), client_reply_ehlo},
	[CLIENT_CMD_HELO] = {"HELO", offsetof(struct delivery_timeouts, command_ms), client_reply_helo},
	[CLIENT_CMD_STARTTLS] = {"STARTTLS", offsetof(struct delivery_timeouts, command_ms), client_reply_starttls},
	[CLIENT_CMD_AUTH] = {"AUTH", offsetof(struct delivery_timeouts, command_ms), client_reply_auth},
	[CLIENT_CMD_RSET] = {"RSET", offsetof(struct delivery_timeouts, command_ms), client_reply_rset},
	[CLIENT_CMD_MAIL] = {"MAIL FROM", offsetof(struct delivery_timeouts, mail_ms), client_reply_mail},
	[CLIENT_CMD_RCPT] = {"RCPT TO", offsetof(struct delivery_timeouts, rcpt_ms), client_reply_rcpt},
	[CLIENT_CMD_DATA] = {"DATA", offsetof(struct delivery_timeouts, data_init_ms), client_reply_data},
	[CLIENT_CMD_DOT] = {"end of DATA", offsetof(struct delivery_timeouts, data_end_ms), client_reply_dot},
	[CLIENT_CMD_QUIT] = {"QUIT", offsetof(struct delivery_timeouts, quit_ms), client_reply_quit},
};

static void client_process(struct delivery_client *c);
static void client_tx_begin(struct delivery_client *c);
static void client_after_hello(struct delivery_client *c);

/* ---- small helpers ---------------------------------------------------------------------- */

static void client_timeouts_fill(struct delivery_timeouts *t, const struct delivery_timeouts *given)
{
	*t = *given;
	/* RFC 5321 §4.5.3.2 where it names a value */
	if (t->connect_ms == 0)
		t->connect_ms = 30 * 1000;
	if (t->tls_ms == 0)
		t->tls_ms = 5 * 60 * 1000;
	if (t->greeting_ms == 0)
		t->greeting_ms = 5 * 60 * 1000; /* §4.5.3.2.1 */
	if (t->command_ms == 0)
		t->command_ms = 5 * 60 * 1000; /* §4.5.3.2.7 */
	if (t->mail_ms == 0)
		t->mail_ms = 5 * 60 * 1000; /* §4.5.3.2.2 */
	if (t->rcpt_ms == 0)
		t->rcpt_ms = 5 * 60 * 1000; /* §4.5.3.2.3 */
	if (t->data_init_ms == 0)
		t->data_init_ms = 2 * 60 * 1000; /* §4.5.3.2.4 */
	if (t->data_block_ms == 0)
		t->data_block_ms = 3 * 60 * 1000; /* §4.5.3.2.5 */
	if (t->data_end_ms == 0)
		t->data_end_ms = 10 * 60 * 1000; /* §4.5.3.2.6 */
	if (t->quit_ms == 0)
		t->quit_ms = 2 * 1000;
}

struct timeval client_tv(unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	return tv;
}

void client_timer_arm(struct delivery_client *c, unsigned ms)
{
	struct timeval tv = client_tv(ms);
	evtimer_add(c->timer, &tv);
}

/* Copies s as printable ASCII (anything else '?'), at most size - 1 octets. */
void client_copy_safe(char *dst, size_t size, const char *s)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 1 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	dst[i] = '\0';
}

/* An address for MAIL/RCPT: no octet that could end or bend the command line. */
static bool client_addr_ok(const char *a, bool allow_empty, bool *utf8_r)
{
	size_t n = strlen(a);
	if (n > ADDR_TEXT_MAX || (n == 0 && !allow_empty))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)a[i];
		if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>')
			return false;
		if (ch >= 0x80)
			*utf8_r = true;
	}
	return true;
}

static bool client_word_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void client_set_error(struct delivery_client *c, enum delivery_error e, bool next_mx, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The first error of a transaction is the one reported. */
static void client_set_error(struct delivery_client *c, enum delivery_error e, bool next_mx, const char *fmt, ...)
{
	if (c->error != DELIVERY_ERR_NONE)
		return;
	c->error = e;
	c->next_mx = next_mx;
	char tmp[CLIENT_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	client_copy_safe(c->error_text, sizeof(c->error_text), tmp);
}

static void client_rcpt_set(struct delivery_client *c, size_t i, enum result res, int code, const char *enh,
			    const char *text, bool remote)
{
	struct delivery_rcpt_result *rr = &c->rcpts[i];
	rr->result = res;
	rr->code = code;
	client_copy_safe(rr->enh, sizeof(rr->enh), enh);
	client_copy_safe(rr->text, sizeof(rr->text), text);
	rr->remote = remote;
	c->rcpt_state[i] = CLIENT_RCPT_FINAL;
}

/* A server's reply as recipient text: "550 5.1.1 text". */
static void client_reply_text(const struct delivery_reply *r, char *buf, size_t size)
{
	snprintf(buf, size, "%d%s%s%s%s", r->code, r->enh[0] ? " " : "", r->enh, r->text_len ? " " : "", r->text);
}

/* Gives every recipient still open (only == ACCEPTED: those RCPT accepted) the server's reply. */
static void client_rcpts_reply(struct delivery_client *c, const struct delivery_reply *r, bool only_accepted,
			       enum result res)
{
	char text[sizeof(c->rcpts[0].text)];
	client_reply_text(r, text, sizeof(text));
	for (size_t i = 0; i < c->job.rcpt_count; i++) {
		if (c->rcpt_state[i] == CLIENT_RCPT_FINAL)
			continue;
		if (only_accepted && c->rcpt_state[i] != CLIENT_RCPT_ACCEPTED)
			continue;
		client_rcpt_set(c, i, res, r->code, r->enh, text, true);
	}
}

/* Gives every recipient still open a result of ours. */
static void client_rcpts_local(struct delivery_client *c, enum result res, int code, const char *enh, const char *why)
{
	char text[sizeof(c->rcpts[0].text)];
	snprintf(text, sizeof(text), "%d %s %s", code, enh, why);
	for (size_t i = 0; i < c->job.rcpt_count; i++)
		if (c->rcpt_state[i] != CLIENT_RCPT_FINAL)
			client_rcpt_set(c, i, res, code, enh, text, false);
}

/* ---- pending replies ---------------------------------------------------------------------- */

static size_t client_pending_count(const struct delivery_client *c)
{
	return c->pending_tail - c->pending_head;
}

static const struct client_pending *client_pending_head(const struct delivery_client *c)
{
	return client_pending_count(c) > 0 ? &c->pending[c->pending_head] : NULL;
}

static void client_timer_for_head(struct delivery_client *c)
{
	const struct client_pending *p = client_pending_head(c);
	if (p == NULL) {
		evtimer_del(c->timer);
		return;
	}
	/* RFC 5321 §4.5.3.2: a timer per command, for its whole reply. It is armed here only, when the
	 * reply before it is complete (or its command is the first owed), never by a read: a server
	 * that sends an octet now and then, or a multi-line reply that never ends, is cut at the deadline */
	unsigned ms = *(const unsigned *)((const char *)&c->to + client_cmds[p->cmd].timeout);
	client_timer_arm(c, ms);
}

/* Queues one command line and the reply it is owed. */
void client_send(struct delivery_client *c, enum client_cmd cmd, size_t arg, const char *fmt, ...)
{
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
		va_end(ap);
		evbuffer_add(bufferevent_get_output(c->bev), "\r\n", 2);
	}
	if (c->pending_head == c->pending_tail)
		c->pending_head = c->pending_tail = 0;
	if (c->pending_tail == c->pending_cap) {
		/* never happens: client_job_take made room for the largest group */
		size_t cap = c->pending_cap * 2 + 8;
		struct client_pending *p = realloc(c->pending, cap * sizeof(*p));
		if (p == NULL)
			abort(); /* broken invariant: client_job_take sized the queue for the whole group */
		c->pending = p;
		c->pending_cap = cap;
	}
	c->pending[c->pending_tail++] = (struct client_pending){cmd, arg};
	if (client_pending_count(c) == 1)
		client_timer_for_head(c);
}

/* ---- the end of a job, closing, freeing ------------------------------------------------- */

static void client_destroy(struct delivery_client *c)
{
	if (c->bev != NULL) {
		SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
		/* RFC 8446 §6.1: close_notify before closing; best effort on a non-blocking socket */
		if (ssl != NULL && SSL_is_init_finished(ssl) && c->conn_ok)
			SSL_shutdown(ssl);
		bufferevent_free(c->bev);
	}
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->pending);
	free(c->rcpts);
	free(c->rcpt_state);
	free(c->old_rcpts);
	free(c->old_rcpt_state);
	free(c);
}

static void client_enter(struct delivery_client *c)
{
	c->depth++;
}

/* Leaves one of our callbacks; frees the client at the outermost one if it is closed. */
static void client_leave(struct delivery_client *c)
{
	if (--c->depth == 0 && c->state == CLIENT_STATE_CLOSED)
		client_destroy(c);
}

static void client_close(struct delivery_client *c)
{
	c->state = CLIENT_STATE_CLOSED;
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	}
	evtimer_del(c->timer);
}

/* RFC 5321 §4.1.1.10: QUIT at the end; its reply is not worth a long wait. */
static void client_quit(struct delivery_client *c)
{
	if (!c->conn_ok) {
		client_close(c);
		return;
	}
	c->state = CLIENT_STATE_QUIT;
	c->pending_head = c->pending_tail = 0;
	delivery_reply_init(&c->reply);
	bufferevent_enable(c->bev, EV_READ);
	client_send(c, CLIENT_CMD_QUIT, 0, "QUIT");
}

static void client_log(struct delivery_client *c)
{
	unsigned ok = 0, temp = 0, perm = 0;
	for (size_t i = 0; i < c->job.rcpt_count; i++) {
		ok += c->rcpts[i].result == RESULT_OK;
		temp += c->rcpts[i].result == RESULT_TEMPFAIL;
		perm += c->rcpts[i].result == RESULT_PERMFAIL;
	}
	char err[160];
	log_info("queue_id=%s event=smtp_out host=%s ip=%s error=%s ok=%u tempfail=%u permfail=%u tls=%s verified=%s "
		 "esmtp=%s pipelining=%s state=%s why=%s",
		 c->log_id, c->host, c->ip, delivery_error_str(c->error), ok, temp, perm,
		 c->tls_up ? c->tls_version : "no", c->tls_verified ? "yes" : "no", c->esmtp ? "yes" : "no",
		 c->pipelining ? "yes" : "no", client_state_str(c->state),
		 log_safe(err, sizeof(err), c->error_text, (unsigned)strlen(c->error_text)));
}

/* Hands the results to the caller, then runs its next job or quits. Every recipient has a result
 * by now (a recipient still open would get a 451 4.3.0, as a safety net). */
static void client_report(struct delivery_client *c)
{
	client_rcpts_local(c, RESULT_TEMPFAIL, 451, "4.3.0", "no result for this recipient"); /* none left, normally */
	struct delivery_result r = {
		.error = c->error,
		.next_mx = c->next_mx,
		.error_text = c->error_text,
		.rcpts = c->rcpts,
		.rcpt_count = c->job.rcpt_count,
		.esmtp = c->esmtp,
		.pipelining = c->pipelining,
		.tls = c->tls_up,
		.tls_version = c->tls_up ? c->tls_version : "",
		.tls_cipher = c->tls_up ? c->tls_cipher : "",
		.tls_verified = c->tls_verified,
		.dane_match = c->dane_match,
		.tls_verify_error = c->tls_verify_error,
		.local_ip = c->local_ip,
		.authenticated = c->authenticated,
		.dsn = c->esmtp && c->ehlo.dsn,
		.requiretls_offered = c->esmtp && c->ehlo.requiretls,
		.messages = c->messages,
		.reusable = c->conn_ok && c->ready && c->state == CLIENT_STATE_REPLIES,
	};
	for (size_t i = 0; i < r.rcpt_count; i++) {
		r.n_ok += c->rcpts[i].result == RESULT_OK;
		r.n_tempfail += c->rcpts[i].result == RESULT_TEMPFAIL;
		r.n_permfail += c->rcpts[i].result == RESULT_PERMFAIL;
	}
	client_log(c);
	evtimer_del(c->timer);
	c->in_done = true;
	c->next_given = false;
	c->job.done(c, &r, c->job.done_arg);
	c->in_done = false;
	free(c->old_rcpts);
	free(c->old_rcpt_state);
	c->old_rcpts = NULL;
	c->old_rcpt_state = NULL;
	if (c->state == CLIENT_STATE_CLOSED || c->next_given)
		return;
	if (c->park_given) {
		/* between jobs the server owes nothing; anything it sends, or a close, ends the wait */
		c->park_given = false;
		c->state = CLIENT_STATE_IDLE;
		bufferevent_enable(c->bev, EV_READ);
		client_timer_arm(c, c->idle_ms);
		return;
	}
	c->idle_fn = NULL;
	client_quit(c);
}

/* A parked connection goes: its owner hears of it first. */
static void client_idle_end(struct delivery_client *c, bool quit)
{
	delivery_client_idle_fn *fn = c->idle_fn;
	c->idle_fn = NULL;
	if (fn != NULL)
		fn(c, c->idle_arg);
	if (c->state != CLIENT_STATE_IDLE)
		return; /* sent a job or cancelled meanwhile */
	if (quit)
		client_quit(c);
	else
		client_close(c);
}

/* A failure that ends the job: every open recipient gets res/code/enh, the job is reported. When the
 * connection is broken (or out of step) it is closed without QUIT. */
void client_fail(struct delivery_client *c, enum delivery_error e, bool conn_broken, int code, const char *enh,
		 const char *why)
{
	if (conn_broken)
		c->conn_ok = false;
	bool next_mx = e != DELIVERY_ERR_SIZE && e != DELIVERY_ERR_SMTPUTF8 && e != DELIVERY_ERR_MAIL &&
		       e != DELIVERY_ERR_DATA;
	client_set_error(c, e, next_mx, "%s[%s]: %s", c->host, c->ip, why);
	client_rcpts_local(c, code / 100 == 5 ? RESULT_PERMFAIL : RESULT_TEMPFAIL, code, enh, why);
	if (conn_broken) {
		if (c->bev != NULL)
			bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		evtimer_del(c->timer);
		c->state = CLIENT_STATE_CLOSED; /* no more I/O; report() then sees it closed */
		client_report(c);
		client_close(c);
		return;
	}
	client_report(c);
}

/* The connection broke or went out of step while replies were owed: RFC 5321 §3.8, as if 451. */
static void client_lost(struct delivery_client *c, enum delivery_error e, const char *what)
{
	const struct client_pending *p = client_pending_head(c);
	char why[256];
	if (c->state == CLIENT_STATE_BODY)
		snprintf(why, sizeof(why), "%s while sending the message content", what);
	else if (p != NULL)
		snprintf(why, sizeof(why), "%s while waiting for the reply to %s", what, client_cmds[p->cmd].name);
	else
		snprintf(why, sizeof(why), "%s", what);
	client_fail(c, e, true, 451, e == DELIVERY_ERR_PROTOCOL ? "4.5.0" : "4.4.2", why);
}

/* ---- replies --------------------------------------------------------------------------------- */

static void client_reply_greeting(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code / 100 != 2) {
		/* RFC 5321 §3.1: a 554 greeting refuses this client here; like a 4xx (and like Postfix's
		 * smtp_skip_5xx_greeting) it says nothing about the message, so the next MX is tried */
		char why[sizeof(c->rcpts[0].text)], text[DELIVERY_REPLY_TEXT_MAX + 32];
		client_reply_text(r, text, sizeof(text));
		snprintf(why, sizeof(why), "greeting refused: %s", text);
		client_fail(c, DELIVERY_ERR_GREETING, false, 451, "4.4.0", why);
		return;
	}
	/* RFC 5321 §3.2, §4.1.1.1 */
	delivery_ehlo_init(&c->ehlo);
	client_send(c, CLIENT_CMD_EHLO, 0, "EHLO %s", c->job.helo_name);
}

static void client_reply_ehlo(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code / 100 == 2) {
		c->esmtp = true;
		client_after_hello(c);
		return;
	}
	if (r->code / 100 == 5 && !c->helo_tried) {
		/* RFC 5321 §3.2: fall back to HELO when EHLO is not recognised */
		c->helo_tried = true;
		delivery_ehlo_init(&c->ehlo);
		client_send(c, CLIENT_CMD_HELO, 0, "HELO %s", c->job.helo_name);
		return;
	}
	char why[sizeof(c->rcpts[0].text)], text[DELIVERY_REPLY_TEXT_MAX + 32];
	client_reply_text(r, text, sizeof(text));
	snprintf(why, sizeof(why), "EHLO refused: %s", text);
	client_fail(c, DELIVERY_ERR_HELO, false, 451, "4.4.0", why);
}

static void client_reply_helo(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code / 100 == 2) {
		c->esmtp = false;
		delivery_ehlo_init(&c->ehlo); /* no extensions after HELO */
		client_after_hello(c);
		return;
	}
	char why[sizeof(c->rcpts[0].text)], text[DELIVERY_REPLY_TEXT_MAX + 32];
	client_reply_text(r, text, sizeof(text));
	snprintf(why, sizeof(why), "EHLO and HELO refused: %s", text);
	client_fail(c, DELIVERY_ERR_HELO, false, 451, "4.4.0", why);
}

static void client_auth_start(struct delivery_client *c)
{
	if (!c->tls) {
		/* DESIGN.md §6, RFC 4954 §4: credentials never go out in the clear */
		client_fail(c, DELIVERY_ERR_AUTH, false, 451, "4.7.0", "AUTH needed but not possible without TLS");
		return;
	}
	c->auth_step = 0;
	if (c->ehlo.auth & DELIVERY_AUTH_PLAIN) {
		/* RFC 4616 §2: NUL authcid NUL passwd, as an initial response (RFC 4954 §4) */
		char b64[SASL_PLAIN_B64_SIZE];
		sasl_plain_encode(c->job.auth_user, c->job.auth_pass, b64, sizeof(b64));
		c->auth_mech = DELIVERY_AUTH_PLAIN;
		client_send(c, CLIENT_CMD_AUTH, 0, "AUTH PLAIN %s", b64);
		OPENSSL_cleanse(b64, sizeof(b64));
		return;
	}
	if (c->ehlo.auth & DELIVERY_AUTH_LOGIN) {
		c->auth_mech = DELIVERY_AUTH_LOGIN;
		client_send(c, CLIENT_CMD_AUTH, 0, "AUTH LOGIN");
		return;
	}
	client_fail(c, DELIVERY_ERR_AUTH, false, 451, "4.7.0",
		    c->ehlo.auth == 0 && !c->esmtp ? "AUTH needed but the server did not take EHLO"
						   : "AUTH needed but neither PLAIN nor LOGIN offered");
}

/* After EHLO/HELO (and again after STARTTLS): TLS, then AUTH, then the transaction. */
static void client_after_hello(struct delivery_client *c)
{
	bool want_tls = c->tls_policy == DELIVERY_TLS_OPPORTUNISTIC || client_tls_required(c);
	if (!c->tls && want_tls) {
		if (c->ehlo.starttls && !c->starttls_refused && c->tls_ctx != NULL) {
			client_send(c, CLIENT_CMD_STARTTLS, 0, "STARTTLS");
			return;
		}
		if (client_tls_required(c)) {
			/* a TLS-policy failure: QUIT, and the next MX host may offer it */
			client_fail(c, DELIVERY_ERR_TLS_UNAVAILABLE, false, 451, "4.7.4",
				    c->starttls_refused ? "TLS required but STARTTLS was refused"
							: "TLS required but STARTTLS not offered");
			return;
		}
	}
	if (c->job.auth_user != NULL && !c->authenticated) {
		client_auth_start(c);
		return;
	}
	c->ready = true;
	client_tx_begin(c);
}

static void client_reply_starttls(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code / 100 == 2) {
		client_tls_begin(c);
		return;
	}
	/* RFC 3207 §4: a 454 leaves the session as it was; opportunistic TLS goes on without it */
	c->starttls_refused = true;
	client_after_hello(c);
}

static void client_reply_auth(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code == 235) { /* RFC 4954 §6 */
		c->authenticated = true;
		client_after_hello(c);
		return;
	}
	if (r->code == 334 && c->auth_step < 2) {
		/* LOGIN: the username, then the password, each as one base64 line. PLAIN: a server that
		 * ignored the initial response asks with an empty challenge; one more answer, no more. */
		char b64[SASL_PLAIN_B64_SIZE];
		const char *v = c->auth_mech == DELIVERY_AUTH_LOGIN && c->auth_step == 0 ? c->job.auth_user : c->job.auth_pass;
		if (c->auth_mech == DELIVERY_AUTH_PLAIN) {
			sasl_plain_encode(c->job.auth_user, c->job.auth_pass, b64, sizeof(b64));
			c->auth_step = 2;
		} else {
			base64_encode((const unsigned char *)v, strlen(v), b64, sizeof(b64));
			c->auth_step++;
		}
		client_send(c, CLIENT_CMD_AUTH, 0, "%s", b64);
		OPENSSL_cleanse(b64, sizeof(b64));
		return;
	}
	/* Like Postfix's smtp_sasl_auth_soft_bounce: a refused login is a configuration matter to fix,
	 * not a reason to bounce the mail */
	char why[sizeof(c->rcpts[0].text)], text[DELIVERY_REPLY_TEXT_MAX + 32];
	client_reply_text(r, text, sizeof(text));
	snprintf(why, sizeof(why), "AUTH failed: %s", text);
	if (r->code == 334) {
		/* a server asking for more than the mechanism has: cancel the exchange (RFC 4954 §4) */
		evbuffer_add(bufferevent_get_output(c->bev), "*\r\n", 3);
		client_fail(c, DELIVERY_ERR_AUTH, true, 451, "4.7.0", why);
		return;
	}
	client_fail(c, DELIVERY_ERR_AUTH, false, 451, "4.7.0", why);
}

/* ---- the transaction ----------------------------------------------------------------------- */

static void client_send_mail(struct delivery_client *c)
{
	/* SIZE, BODY, SMTPUTF8 and REQUIRETLS are short; ENVID as xtext at most 100 (RFC 3461 §4.4) */
	char params[512] = "";
	size_t n = 0;
	if (c->ehlo.size) /* RFC 1870 §6 */
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SIZE=%llu", (unsigned long long)c->size);
	/* RFC 6152 §3: BODY=8BITMIME only when offered. 8-bit content to a server without it goes as it
	 * is (as Postfix and most MTAs do): converting it would break DKIM signatures, and today's
	 * servers take 8-bit octets whatever they announce. */
	if (c->eight_bit && c->ehlo.eightbitmime)
		n += (size_t)snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
	if (c->utf8) /* RFC 6531 §3.4; client_tx_begin checked that it is offered */
		n += (size_t)snprintf(params + n, sizeof(params) - n, " SMTPUTF8");
	if (c->ehlo.dsn) { /* RFC 3461 §5.2.1: RET and ENVID go on as received */
		if (c->job.dsn_ret == QUEUE_DSN_RET_FULL || c->job.dsn_ret == QUEUE_DSN_RET_HDRS)
			n += (size_t)snprintf(params + n, sizeof(params) - n, " RET=%s",
					      c->job.dsn_ret == QUEUE_DSN_RET_FULL ? "FULL" : "HDRS");
		char x[3 * 100 + 1];
		if (c->job.dsn_envid != NULL && delivery_xtext_encode(c->job.dsn_envid, x, sizeof(x)))
			n += (size_t)snprintf(params + n, sizeof(params) - n, " ENVID=%s", x);
	}
	if (c->job.requiretls && c->ehlo.requiretls) /* RFC 8689 §4.2.1 */
		n += (size_t)snprintf(params + n, sizeof(params) - n, " REQUIRETLS");
	c->mail_ok = false;
	client_send(c, CLIENT_CMD_MAIL, 0, "MAIL FROM:<%s>%s", c->job.sender, params);
}

static void client_send_rcpt(struct delivery_client *c, size_t i)
{
	/* RFC 3461 §5.2.1: NOTIFY and ORCPT go on to a server that offers DSN, and only then */
	char params[40 + 3 * 500 + 1] = "";
	size_t n = 0;
	unsigned notify = c->ehlo.dsn && c->job.rcpt_notify != NULL ? c->job.rcpt_notify[i] : 0;
	if (notify & QUEUE_NOTIFY_NEVER) {
		n += (size_t)snprintf(params, sizeof(params), " NOTIFY=NEVER");
	} else if (notify != 0) {
		static const struct {
			unsigned bit;
			const char *word;
		} words[] = {{QUEUE_NOTIFY_SUCCESS, "SUCCESS"}, {QUEUE_NOTIFY_FAILURE, "FAILURE"}, {QUEUE_NOTIFY_DELAY, "DELAY"}};
		for (unsigned b = 0; b < 3; b++)
			if (notify & words[b].bit)
				n += (size_t)snprintf(params + n, sizeof(params) - n, "%s%s", n == 0 ? " NOTIFY=" : ",", words[b].word);
	}
	const char *orcpt = c->ehlo.dsn && c->job.rcpt_orcpt != NULL ? c->job.rcpt_orcpt[i] : NULL;
	const char *semi = orcpt != NULL ? strchr(orcpt, ';') : NULL;
	char x[3 * 500 + 1];
	if (semi != NULL && semi - orcpt < 32 && delivery_xtext_encode(semi + 1, x, sizeof(x)))
		snprintf(params + n, sizeof(params) - n, " ORCPT=%.*s;%s", (int)(semi - orcpt), orcpt, x);
	client_send(c, CLIENT_CMD_RCPT, i, "RCPT TO:<%s>%s", c->job.rcpts[i], params);
}

/* The end of a transaction: report once every reply owed has come. */
static void client_tx_end(struct delivery_client *c)
{
	if (client_pending_count(c) > 0)
		return;
	client_report(c);
}

static void client_tx_begin(struct delivery_client *c)
{
	c->state = CLIENT_STATE_REPLIES;
	if (c->utf8 && !c->ehlo.smtputf8) {
		/* RFC 6531 §3.2: such a message must not be sent to a server without SMTPUTF8 */
		client_fail(c, DELIVERY_ERR_SMTPUTF8, false, 553, "5.6.7",
			    "message needs SMTPUTF8 (RFC 6531), which the server does not offer");
		return;
	}
	if (c->ehlo.size && c->ehlo.size_max > 0 && c->size > c->ehlo.size_max) {
		/* RFC 1870 §4, §6: the client should not send a message the server has said it refuses */
		char why[200];
		snprintf(why, sizeof(why), "message of %llu octets exceeds the server's fixed maximum of %llu",
			 (unsigned long long)c->size, (unsigned long long)c->ehlo.size_max);
		client_fail(c, DELIVERY_ERR_SIZE, false, 552, "5.3.4", why);
		return;
	}
	/* RFC 8689 §4.2.1: a REQUIRETLS message goes only to a server that offers REQUIRETLS (after
	 * STARTTLS: the TLS it needs is the policy's, tls_decide.h). Nothing is sent; the next MX host
	 * may offer it, and when none does the pool fails the message (5.7.30). maddy's default
	 * (relaxed_requiretls) and Stalwart send it on to such a server without the parameter, which
	 * drops the sender's requirement at the next hop. */
	if (c->job.requiretls && !(c->esmtp && c->ehlo.requiretls)) {
		client_fail(c, DELIVERY_ERR_REQUIRETLS, false, 451, "4.7.30",
			    "the message requires TLS (REQUIRETLS) and the server does not offer REQUIRETLS");
		return;
	}
	c->pipelining = c->esmtp && c->ehlo.pipelining;
	c->n_accepted = 0;
	c->rcpt_next = 0;
	if (c->need_rset) {
		/* a transaction left open by the last job (RFC 5321 §4.1.1.5); RFC 2920 §3.1 lets RSET lead a group */
		client_send(c, CLIENT_CMD_RSET, 0, "RSET");
		if (!c->pipelining)
			return;
	}
	client_send_mail(c);
	if (!c->pipelining)
		return;
	/* RFC 2920 §3.1: MAIL, every RCPT and DATA (last in the group) in one write */
	for (size_t i = 0; i < c->job.rcpt_count; i++)
		client_send_rcpt(c, i);
	client_send(c, CLIENT_CMD_DATA, 0, "DATA");
}

static void client_reply_rset(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code / 100 != 2) {
		client_lost(c, DELIVERY_ERR_PROTOCOL, "RSET refused");
		return;
	}
	c->need_rset = false;
	if (!c->pipelining)
		client_send_mail(c);
}

static void client_reply_mail(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code / 100 == 2) {
		c->mail_ok = true;
		c->need_rset = true;
		if (!c->pipelining)
			client_send_rcpt(c, c->rcpt_next++);
		return;
	}
	/* every recipient shares the fate of MAIL */
	char text[DELIVERY_REPLY_TEXT_MAX + 32];
	client_reply_text(r, text, sizeof(text));
	client_set_error(c, DELIVERY_ERR_MAIL, false, "%s[%s] said: %s (in reply to MAIL FROM)", c->host, c->ip, text);
	client_rcpts_reply(c, r, false, r->code / 100 == 5 ? RESULT_PERMFAIL : RESULT_TEMPFAIL);
	client_tx_end(c); /* with PIPELINING, after the RCPT and DATA replies */
}

static void client_reply_rcpt(struct delivery_client *c, const struct delivery_reply *r, size_t i)
{
	if (!c->mail_ok) { /* pipelined behind a refused MAIL: already answered */
		client_tx_end(c);
		return;
	}
	if (r->code / 100 == 2) {
		c->rcpt_state[i] = CLIENT_RCPT_ACCEPTED;
		c->n_accepted++;
	} else {
		/* RFC 5321 §4.5.3.1.10: a 452 for too many recipients defers the rest, like any 4xx */
		char text[sizeof(c->rcpts[0].text)];
		client_reply_text(r, text, sizeof(text));
		client_rcpt_set(c, i, r->code / 100 == 5 ? RESULT_PERMFAIL : RESULT_TEMPFAIL, r->code, r->enh, text, true);
	}
	if (c->pipelining)
		return; /* DATA's reply follows */
	if (c->rcpt_next < c->job.rcpt_count) {
		client_send_rcpt(c, c->rcpt_next++);
		return;
	}
	if (c->n_accepted > 0) {
		client_send(c, CLIENT_CMD_DATA, 0, "DATA");
		return;
	}
	client_tx_end(c); /* nobody accepted; the open transaction is RSET before the next MAIL */
}

static void client_body_fill(struct delivery_client *c);

static void client_reply_data(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	if (r->code == 354) {
		if (!c->mail_ok || c->n_accepted == 0) {
			/* RFC 2920 §3.1: DATA accepted though nobody is: a single dot ends it */
			client_send(c, CLIENT_CMD_DOT, 1, ".");
			return;
		}
		c->state = CLIENT_STATE_BODY;
		c->msg_off = 0;
		delivery_dot_init(&c->dot, true);
		bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_BODY_LOW, 0);
		client_body_fill(c);
		return;
	}
	if (c->mail_ok && c->n_accepted > 0) {
		char text[DELIVERY_REPLY_TEXT_MAX + 32];
		client_reply_text(r, text, sizeof(text));
		client_set_error(c, DELIVERY_ERR_DATA, false, "%s[%s] said: %s (in reply to DATA)", c->host, c->ip, text);
		client_rcpts_reply(c, r, true, r->code / 100 == 5 ? RESULT_PERMFAIL : RESULT_TEMPFAIL);
	}
	client_tx_end(c);
}

/* Streams the content: encodes straight into the output buffer while it holds less than
 * CLIENT_BODY_HIGH; the write callback calls again as it drains. The message is read once and
 * written once, never copied whole. */
static void client_body_fill(struct delivery_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	while (c->msg_off < c->job.msg_len && evbuffer_get_length(out) < CLIENT_BODY_HIGH) {
		struct evbuffer_iovec v;
		if (evbuffer_reserve_space(out, CLIENT_BODY_CHUNK * DELIVERY_DOT_EXPANSION, &v, 1) < 1) {
			client_lost(c, DELIVERY_ERR_LOST, "out of memory");
			return;
		}
		size_t left = c->job.msg_len - c->msg_off, used;
		if (left > CLIENT_BODY_CHUNK)
			left = CLIENT_BODY_CHUNK;
		v.iov_len = delivery_dot_encode(&c->dot, c->job.msg + c->msg_off, left, &used, v.iov_base, v.iov_len);
		c->msg_off += used;
		evbuffer_commit_space(out, &v, 1);
	}
	if (c->msg_off < c->job.msg_len)
		return;
	char end[DELIVERY_DOT_FINISH_MAX];
	evbuffer_add(out, end, delivery_dot_finish(&c->dot, end, sizeof(end)));
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	c->state = CLIENT_STATE_REPLIES;
	client_send(c, CLIENT_CMD_DOT, 0, NULL);
	/* a reply that came while we were sending waits in the input */
	client_process(c);
}

static void client_reply_dot(struct delivery_client *c, const struct delivery_reply *r, size_t empty)
{
	/* RFC 5321 §4.1.1.4: the end of data ends the transaction, whatever the reply */
	c->need_rset = false;
	if (!empty) {
		c->messages++;
		if (r->code / 100 != 2) {
			char text[DELIVERY_REPLY_TEXT_MAX + 32];
			client_reply_text(r, text, sizeof(text));
			client_set_error(c, DELIVERY_ERR_DATA, false, "%s[%s] said: %s (in reply to end of DATA)", c->host,
					 c->ip, text);
		}
		client_rcpts_reply(c, r, true, r->code / 100 == 2 ? RESULT_OK
					       : r->code / 100 == 5 ? RESULT_PERMFAIL
								    : RESULT_TEMPFAIL);
	}
	client_tx_end(c);
}

static void client_reply_quit(struct delivery_client *c, const struct delivery_reply *r, size_t arg)
{
	client_close(c);
}

/* ---- I/O --------------------------------------------------------------------------------- */

/* RFC 5321 §3.8, §4.2.2: 421 is the server closing the channel, whatever the command: every
 * recipient still open is deferred with its text, and the next MX may be tried. */
static void client_closing(struct delivery_client *c, const struct delivery_reply *r, enum client_cmd cmd)
{
	char text[DELIVERY_REPLY_TEXT_MAX + 32];
	client_reply_text(r, text, sizeof(text));
	c->conn_ok = false;
	client_set_error(c, DELIVERY_ERR_LOST, true, "%s[%s] said: %s (in reply to %s)", c->host, c->ip, text,
			 client_cmds[cmd].name);
	client_rcpts_reply(c, r, false, RESULT_TEMPFAIL);
	client_fail(c, DELIVERY_ERR_LOST, true, 421, "4.4.2", "the server closed the connection");
}

/* Reads the replies owed, one line at a time, and runs each complete one through the table. */
static void client_process(struct delivery_client *c)
{
	while (c->state == CLIENT_STATE_REPLIES || c->state == CLIENT_STATE_QUIT) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		const struct client_pending *p = client_pending_head(c);
		if (p == NULL) {
			if (c->state == CLIENT_STATE_QUIT)
				client_close(c); /* the job was reported already */
			else
				client_lost(c, DELIVERY_ERR_PROTOCOL, "reply without a command");
			return;
		}
		size_t n = avail < DELIVERY_REPLY_LINE_MAX ? avail : DELIVERY_REPLY_LINE_MAX;
		const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
		size_t used;
		const char *err = "";
		enum delivery_reply_status st = delivery_reply_feed(&c->reply, buf, n, &used, &err);
		if (st == DELIVERY_REPLY_MORE)
			return;
		if (st != DELIVERY_REPLY_LINE && st != DELIVERY_REPLY_DONE) {
			if (c->state == CLIENT_STATE_QUIT) {
				client_close(c);
				return;
			}
			char why[128];
			snprintf(why, sizeof(why), "malformed reply (%s)", err);
			client_lost(c, DELIVERY_ERR_PROTOCOL, why);
			return;
		}
		if (p->cmd == CLIENT_CMD_EHLO && c->reply.code / 100 == 2)
			delivery_ehlo_line(&c->ehlo, c->reply.line, c->reply.line_len);
		evbuffer_drain(in, used);
		if (st == DELIVERY_REPLY_LINE)
			continue;
		struct client_pending done = *p;
		struct delivery_reply r = c->reply;
		r.line = "";
		r.line_len = 0;
		c->pending_head++;
		delivery_reply_init(&c->reply);
		client_timer_for_head(c);
		if (r.code == 421 && done.cmd != CLIENT_CMD_GREETING && done.cmd != CLIENT_CMD_QUIT) {
			client_closing(c, &r, done.cmd);
			return;
		}
		client_cmds[done.cmd].reply(c, &r, done.arg);
	}
}

void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct delivery_client *c = arg;
	client_enter(c);
	if (c->state == CLIENT_STATE_IDLE) {
		/* out of turn: usually a 421 before the server closes (RFC 5321 §3.8) */
		c->conn_ok = false;
		client_idle_end(c, false);
	} else {
		client_process(c);
	}
	client_leave(c);
}

void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct delivery_client *c = arg;
	client_enter(c);
	if (c->state == CLIENT_STATE_BODY)
		client_body_fill(c);
	client_leave(c);
}

static void client_connected(struct delivery_client *c)
{
	evtimer_del(c->timer);
	c->conn_ok = true;
	/* our address on this connection: the sending-mta-ip of a TLS report (RFC 8460 §4.4) */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(bufferevent_getfd(c->bev), (struct sockaddr *)&ss, &sl) == 0) {
		const void *a = ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
							 : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
		if (inet_ntop(ss.ss_family, a, c->local_ip, sizeof(c->local_ip)) == NULL)
			c->local_ip[0] = '\0';
	}
	if (c->tls_policy == DELIVERY_TLS_IMPLICIT) {
		client_tls_begin(c);
		return;
	}
	c->state = CLIENT_STATE_REPLIES;
	client_send(c, CLIENT_CMD_GREETING, 0, NULL); /* RFC 5321 §3.1: the server speaks first */
}

void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct delivery_client *c = arg;
	client_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == CLIENT_STATE_CONNECTING)
			client_connected(c);
		else if (c->state == CLIENT_STATE_TLS)
			client_tls_done(c);
		client_leave(c);
		return;
	}
	char why[320];
	switch (c->state) {
	case CLIENT_STATE_CONNECTING: {
		int e = EVUTIL_SOCKET_ERROR();
		snprintf(why, sizeof(why), "cannot connect: %s",
			 what & BEV_EVENT_TIMEOUT ? "timeout" : e != 0 ? evutil_socket_error_to_string(e) : "closed");
		client_fail(c, DELIVERY_ERR_CONNECT, true, 451, "4.4.1", why);
		break;
	}
	case CLIENT_STATE_TLS:
		client_tls_why(c, what & BEV_EVENT_TIMEOUT ? "timeout" : what & BEV_EVENT_EOF ? "connection closed" : "error",
			       why, sizeof(why));
		client_fail(c, DELIVERY_ERR_TLS_HANDSHAKE, true, 451, "4.7.5", why);
		break;
	case CLIENT_STATE_REPLIES:
	case CLIENT_STATE_BODY:
	case CLIENT_STATE_NEXT:
		/* nothing more can be sent: whatever is reported now is not reusable */
		c->conn_ok = false;
		if (!(what & BEV_EVENT_TIMEOUT) && c->state == CLIENT_STATE_REPLIES)
			client_process(c); /* a last reply (a 421, say) may have come just before the close */
		if (c->state == CLIENT_STATE_REPLIES || c->state == CLIENT_STATE_BODY || c->state == CLIENT_STATE_NEXT) {
			if (what & BEV_EVENT_TIMEOUT)
				client_lost(c, DELIVERY_ERR_TIMEOUT, "timeout");
			else
				client_lost(c, DELIVERY_ERR_LOST, what & BEV_EVENT_EOF ? "connection closed" : "connection failed");
		} else if (c->state != CLIENT_STATE_CLOSED) {
			client_close(c);
		}
		break;
	case CLIENT_STATE_IDLE:
		c->conn_ok = false;
		client_idle_end(c, false);
		break;
	case CLIENT_STATE_QUIT:
	case CLIENT_STATE_CLOSED:
		c->conn_ok = false;
		client_close(c);
		break;
	}
	client_leave(c);
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery_client *c = arg;
	client_enter(c);
	switch (c->state) {
	case CLIENT_STATE_CONNECTING:
		client_fail(c, DELIVERY_ERR_CONNECT, true, 451, "4.4.1", "cannot connect: timeout");
		break;
	case CLIENT_STATE_TLS:
		client_fail(c, DELIVERY_ERR_TLS_HANDSHAKE, true, 451, "4.7.5", "TLS handshake failed: timeout");
		break;
	case CLIENT_STATE_REPLIES:
	case CLIENT_STATE_BODY:
		client_lost(c, DELIVERY_ERR_TIMEOUT, "timeout");
		break;
	case CLIENT_STATE_NEXT:
		client_tx_begin(c);
		break;
	case CLIENT_STATE_IDLE:
		client_idle_end(c, true);
		break;
	case CLIENT_STATE_QUIT:
	case CLIENT_STATE_CLOSED:
		client_close(c);
		break;
	}
	client_leave(c);
}

/* ---- the API ------------------------------------------------------------------------------- */

/* Checks a job's message part and sets up the transaction for it. */
static bool client_job_take(struct delivery_client *c, const struct delivery_job *job, char *error_r, size_t size)
{
	bool utf8 = job->needs_smtputf8;
	if (job->done == NULL || job->helo_name == NULL || !client_word_ok(job->helo_name, ADDR_DOMAIN_MAX)) {
		snprintf(error_r, size, "job without a done callback or a usable helo name");
		return false;
	}
	if (job->sender == NULL || !client_addr_ok(job->sender, true, &utf8)) {
		snprintf(error_r, size, "unusable sender address");
		return false;
	}
	if (job->rcpts == NULL || job->rcpt_count == 0) {
		snprintf(error_r, size, "job without recipients");
		return false;
	}
	for (size_t i = 0; i < job->rcpt_count; i++) {
		if (job->rcpts[i] == NULL || !client_addr_ok(job->rcpts[i], false, &utf8)) {
			snprintf(error_r, size, "unusable recipient address (number %zu)", i + 1);
			return false;
		}
	}
	if (job->msg == NULL && job->msg_len > 0) {
		snprintf(error_r, size, "job without message content");
		return false;
	}
	if (job->auth_user != NULL &&
	    (job->auth_pass == NULL || strlen(job->auth_user) == 0 || strlen(job->auth_user) > SASL_FIELD_MAX ||
	     strlen(job->auth_pass) > SASL_FIELD_MAX)) {
		snprintf(error_r, size, "unusable AUTH credentials");
		return false;
	}
	struct delivery_rcpt_result *rcpts = calloc(job->rcpt_count, sizeof(*rcpts));
	enum client_rcpt_state *st = calloc(job->rcpt_count, sizeof(*st));
	if (rcpts == NULL || st == NULL) {
		free(rcpts);
		free(st);
		snprintf(error_r, size, "out of memory");
		return false;
	}
	/* the done callback that may be calling us still reads the last results: keep them till it returns */
	free(c->old_rcpts);
	free(c->old_rcpt_state);
	c->old_rcpts = c->rcpts;
	c->old_rcpt_state = c->rcpt_state;
	c->rcpts = rcpts;
	c->rcpt_state = st;
	for (size_t i = 0; i < job->rcpt_count; i++) {
		rcpts[i].rcpt = job->rcpts[i];
		rcpts[i].result = RESULT_TEMPFAIL;
	}
	c->job = *job;
	client_timeouts_fill(&c->to, &job->timeouts);
	c->utf8 = utf8;
	bool eight = false;
	c->size = delivery_dot_size(job->msg, job->msg_len, &eight);
	c->eight_bit = job->has_8bit || eight || utf8;
	c->error = DELIVERY_ERR_NONE;
	c->next_mx = false;
	c->error_text[0] = '\0';
	c->mail_ok = false;
	c->pipelining = false;
	c->n_accepted = 0;
	c->rcpt_next = 0;
	c->msg_off = 0;
	c->pending_head = c->pending_tail = 0;
	if (c->pending_cap < job->rcpt_count + 8) {
		/* the most owed at once: RSET, MAIL, every RCPT, DATA */
		struct client_pending *pp = realloc(c->pending, (job->rcpt_count + 8) * sizeof(*pp));
		if (pp == NULL) {
			snprintf(error_r, size, "out of memory");
			return false;
		}
		c->pending = pp;
		c->pending_cap = job->rcpt_count + 8;
	}
	client_copy_safe(c->log_id, sizeof(c->log_id), job->log_id != NULL ? job->log_id : "-");
	for (char *p = c->log_id; *p != '\0'; p++)
		if (*p == ' ' || *p == '=' || *p == '"')
			*p = '_';
	return true;
}

struct delivery_client *delivery_client_start(const struct delivery_job *job, char *error_r, size_t error_size)
{
	if (job->base == NULL || job->addr == NULL || job->host == NULL ||
	    (job->tls != DELIVERY_TLS_NONE && job->tls_ctx == NULL)) {
		snprintf(error_r, error_size, "job without event base, address, host name or TLS context");
		return NULL;
	}
	if (job->addr->sa_family != AF_INET && job->addr->sa_family != AF_INET6) {
		snprintf(error_r, error_size, "job address is not IPv4 or IPv6");
		return NULL;
	}
	struct delivery_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	if (!client_job_take(c, job, error_r, error_size)) {
		free(c);
		return NULL;
	}
	c->base = job->base;
	c->tls_ctx = job->tls_ctx;
	c->tls_policy = job->tls;
	client_copy_safe(c->host, sizeof(c->host), job->host);
	size_t hl = strlen(c->host);
	if (hl > 0 && c->host[hl - 1] == '.')
		c->host[hl - 1] = '\0'; /* SNI and certificate names have no root dot */
	const void *a = job->addr->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)job->addr)->sin_addr
							: (const void *)&((const struct sockaddr_in6 *)job->addr)->sin6_addr;
	if (evutil_inet_ntop(job->addr->sa_family, a, c->ip, sizeof(c->ip)) == NULL)
		snprintf(c->ip, sizeof(c->ip), "?");
	delivery_reply_init(&c->reply);
	c->state = CLIENT_STATE_CONNECTING;
	c->timer = evtimer_new(c->base, client_timer_cb, c);
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->timer == NULL || c->bev == NULL) {
		snprintf(error_r, error_size, "out of memory");
		client_destroy(c);
		return NULL;
	}
	struct timeval wt = client_tv(c->to.data_block_ms);
	bufferevent_set_timeouts(c->bev, NULL, &wt);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_INPUT_MAX);
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)job->addr, (int)job->addr_len) != 0) {
		snprintf(error_r, error_size, "cannot connect: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		client_destroy(c);
		return NULL;
	}
	client_timer_arm(c, c->to.connect_ms);
	return c;
}

bool delivery_client_send(struct delivery_client *c, const struct delivery_job *job, char *error_r, size_t error_size)
{
	bool from_done = c->in_done && !c->next_given && !c->park_given && c->state == CLIENT_STATE_REPLIES;
	if (!(from_done || c->state == CLIENT_STATE_IDLE) || !c->conn_ok || !c->ready) {
		snprintf(error_r, error_size, "the connection cannot take another message now");
		return false;
	}
	if (!client_job_take(c, job, error_r, error_size))
		return false;
	c->next_given = from_done;
	c->idle_fn = NULL;
	/* started from the loop, so that a job that fails at once (SIZE, say) never calls its done
	 * callback from inside the previous one */
	c->state = CLIENT_STATE_NEXT;
	client_timer_arm(c, 0);
	return true;
}

bool delivery_client_park(struct delivery_client *c, unsigned idle_ms, delivery_client_idle_fn *gone, void *arg)
{
	if (!c->in_done || c->next_given || c->park_given || c->state != CLIENT_STATE_REPLIES || !c->conn_ok ||
	    !c->ready || idle_ms == 0)
		return false;
	c->park_given = true;
	c->idle_ms = idle_ms;
	c->idle_fn = gone;
	c->idle_arg = arg;
	return true;
}

void delivery_client_cancel(struct delivery_client *c)
{
	c->idle_fn = NULL;
	c->park_given = false;
	c->conn_ok = false;
	c->next_given = false;
	client_close(c);
	if (c->depth == 0)
		client_destroy(c);
}


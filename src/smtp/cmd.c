/* cmd.c — what each SMTP command does (RFC 5321 §4.1 and the extensions we offer). The table says
 * in which states a verb is allowed; the handlers check their arguments and the relay rules. */
#include <errno.h>
#include <limits.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailbox/users.h"
#include "queue/queue.h"
#include "queue/spool.h"
#include "server/login.h"
#include "server/server.h"
#include "auth/authres.h"
#include "auth/dmarc_from.h"
#include "server/signer_client.h"
#include "smtp/checks.h"
#include "smtp/message.h"
#include "smtp/feedback.h"
#include "events/record.h"
#include "smtp/reply.h"
#include "smtp/session.h"
#include "util/budget.h"
#include "util/diskspace.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/worker.h"

/* the queue keeps NOTIFY as the parser gives it */
_Static_assert((int)SMTP_DSN_NOTIFY_SUCCESS == (int)QUEUE_NOTIFY_SUCCESS &&
		       (int)SMTP_DSN_NOTIFY_FAILURE == (int)QUEUE_NOTIFY_FAILURE &&
		       (int)SMTP_DSN_NOTIFY_DELAY == (int)QUEUE_NOTIFY_DELAY &&
		       (int)SMTP_DSN_NOTIFY_NEVER == (int)QUEUE_NOTIFY_NEVER,
	       "NOTIFY bits");

#define ST(x) (1u << SMTP_STATE_##x)
#define ST_ANY (ST(INIT) | ST(READY) | ST(MAIL) | ST(RCPT) | ST(BDAT))

struct smtp_cmd_def {
	enum smtp_verb verb;
	unsigned states; /* where the verb is allowed; elsewhere 503 5.5.1 */
	void (*run)(struct smtp_session *s, const struct smtp_cmd *cmd);
};

static void reply(struct smtp_session *s, int code, const char *enh, const char *text)
{
	smtp_reply(line_session_out(&s->ls), code, enh, "%s", text);
}

/* A reply to a client mistake: counted towards max_errors. */
static void reply_error(struct smtp_session *s, int code, const char *enh, const char *text)
{
	reply(s, code, enh, text);
	smtp_session_error(s);
}

static bool auth_allowed(const struct smtp_session *s)
{
	/* RFC 4954 §4 and DESIGN.md §6: credentials only over TLS, except explicit loopback dev mode */
	return s->ls.tls || (s->conf->allow_insecure_auth && s->conn.listener_loopback);
}

void smtp_tx_reset(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;
	for (unsigned i = 0; i < tx->rcpt_count; i++) {
		free(tx->rcpts[i]);
		free(tx->rcpt_orcpt != NULL ? tx->rcpt_orcpt[i] : NULL);
	}
	free(tx->rcpts);
	free(tx->rcpt_notify);
	free(tx->rcpt_orcpt);
	smtp_data_release(&tx->data);
	if (tx->body != NULL)
		evbuffer_free(tx->body);
	queue_spool_free(tx->spool);
	memset(tx, 0, sizeof(*tx));
	if (s->state != SMTP_STATE_INIT)
		s->state = SMTP_STATE_READY;
}

void smtp_cmd_greet(struct smtp_session *s)
{
	/* RFC 5321 §4.3.1; no software version in the banner */
	smtp_reply(line_session_out(&s->ls), 220, "2.0.0", "%s ESMTP mailwerk", s->conf->hostname);
}

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *err;
	if (smtp_helo_parse(cmd->arg, cmd->arg_len, &err) != SMTP_PARSE_OK) {
		smtp_reply(line_session_out(&s->ls), 501, "5.5.4", "Syntax: %s hostname (%s)", smtp_verb_str(cmd->verb), err);
		smtp_session_error(s);
		return;
	}
	/* RFC 5321 §4.1.4: EHLO/HELO resets the transaction */
	s->state = SMTP_STATE_READY;
	smtp_tx_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%.*s", (int)cmd->arg_len, cmd->arg);
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	struct evbuffer *out = line_session_out(&s->ls);
	if (!s->esmtp) {
		smtp_reply(out, 250, "2.0.0", "%s", s->conf->hostname);
		return;
	}
	char line[128];
	snprintf(line, sizeof(line), "%s", s->conf->hostname);
	smtp_reply_line(out, 250, 0, line);
	smtp_reply_line(out, 250, 0, "PIPELINING");                    /* RFC 2920 */
	snprintf(line, sizeof(line), "SIZE %llu", (unsigned long long)s->conf->max_message_size);
	smtp_reply_line(out, 250, 0, line);                            /* RFC 1870 */
	smtp_reply_line(out, 250, 0, "8BITMIME");                      /* RFC 6152 */
	smtp_reply_line(out, 250, 0, "SMTPUTF8");                      /* RFC 6531 */
	smtp_reply_line(out, 250, 0, "CHUNKING");                      /* RFC 3030 */
	if (!s->ls.tls && s->srv->tls != NULL)
		smtp_reply_line(out, 250, 0, "STARTTLS");              /* RFC 3207 */
	if (auth_allowed(s))
		smtp_reply_line(out, 250, 0, "AUTH PLAIN LOGIN");      /* RFC 4954 */
	smtp_reply_line(out, 250, 0, "DSN");                           /* RFC 3461 */
	/* RFC 8689 §2: REQUIRETLS is for sessions that use TLS, so it is offered only once TLS is up
	 * (after STARTTLS or on implicit TLS), as Exim does */
	if (s->ls.tls)
		smtp_reply_line(out, 250, 0, "REQUIRETLS");            /* RFC 8689 */
	smtp_reply_line(out, 250, 1, "ENHANCEDSTATUSCODES");           /* RFC 2034 */
}

/* Whether data_dir keeps [server] min_free_space after a message of size octets: below it the queue,
 * delivery, bounces and the databases would be the ones to run out (Postfix: queue_minfree). */
static bool disk_has_room(const struct smtp_session *s, uint64_t size)
{
	return diskspace_has_room(s->conf->data_dir, s->conf->min_free_space, size);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_mail_args m;
	const char *err;

	if (s->conn.role != CONF_LISTEN_SMTP && s->auth_user[0] == '\0') {
		/* RFC 6409 §4.3: submission requires authentication */
		reply_error(s, 530, "5.7.0", "Authentication required");
		return;
	}
	switch (smtp_mail_parse(cmd->arg, cmd->arg_len, &m, &err)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_BAD_PARAM:
		smtp_reply(line_session_out(&s->ls), 555, "5.5.4", "MAIL parameter not recognized: %s", err);
		smtp_session_error(s);
		return;
	case SMTP_PARSE_BAD_SENDER:
		smtp_reply(line_session_out(&s->ls), 553, "5.1.7", "Bad sender address syntax: %s", err);
		smtp_session_error(s);
		return;
	case SMTP_PARSE_NEED_UTF8:
		reply_error(s, 553, "5.6.7", "UTF-8 address needs the SMTPUTF8 parameter");
		return;
	default:
		smtp_reply(line_session_out(&s->ls), 501, "5.5.4", "Syntax: MAIL FROM:<address> (%s)", err);
		smtp_session_error(s);
		return;
	}
	if (m.requiretls && !s->ls.tls) {
		/* RFC 8689 §2: REQUIRETLS may only be given in a session that uses TLS. The RFC names no
		 * reply for a client that gives it anyway; 530 is RFC 3207 §4's "start TLS first", with
		 * X.7.10 "encryption needed" (RFC 5248's registry) */
		reply_error(s, 530, "5.7.10", "REQUIRETLS needs a TLS session: issue STARTTLS first");
		return;
	}
	if (m.has_size && m.size > s->conf->max_message_size) {
		/* RFC 1870 §6.2 */
		reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	if (!disk_has_room(s, m.has_size ? m.size : 0)) {
		/* RFC 1870 §6.1 / RFC 3463 X.3.1: mail system full, for now; the client tries later */
		log_warn("session=%llx event=refused reason=min_free_space", (unsigned long long)s->conn.id);
		metrics_message_refused(s->srv->metrics, s->conn.role, METRICS_REFUSAL_MIN_FREE_SPACE, 1);
		reply(s, 452, "4.3.1", "Insufficient system storage, try again later");
		return;
	}
	s->tx.mail = m;
	s->state = SMTP_STATE_MAIL;
	reply(s, 250, "2.1.0", "Ok");
}

/* Whether this recipient is taken: a local domain must know the address (a user, an alias, a
 * plus-address or a catch-all); any other domain is relaying, for authenticated clients only. Replies
 * itself when not. */
static bool rcpt_acceptable(struct smtp_session *s, const struct addr *a)
{
	if (a->domain_off == strlen(a->text))
		return true; /* <Postmaster>: RFC 5321 §4.5.1 requires accepting it */
	enum result r = a->is_literal ? RESULT_PERMFAIL : users_domain_is_local(s->srv->users, addr_domain(a));
	if (r == RESULT_OK) {
		struct users_rcpt found;
		const char *err;
		r = users_rcpt_resolve(s->srv->users, a->text, s->conf->recipient_delimiter, &found, &err);
		if (r == RESULT_OK)
			return true;
		if (r == RESULT_PERMFAIL) /* RFC 5321 §3.6.2 / RFC 3463: unknown mailbox, said at RCPT, never a later bounce */
			reply_error(s, 550, "5.1.1", "Recipient address rejected: user unknown");
		else
			reply(s, 451, "4.3.0", "Temporary lookup failure, try again later");
		return false;
	}
	if (r == RESULT_TEMPFAIL) {
		reply(s, 451, "4.3.0", "Temporary lookup failure, try again later");
		return false;
	}
	if (s->auth_user[0] != '\0')
		return true; /* an authenticated client may relay anywhere */
	reply_error(s, 554, "5.7.1", "Relay access denied");
	return false;
}

/* Appends an accepted recipient with its RFC 3461 NOTIFY and ORCPT; false when out of memory (tx
 * unchanged but perhaps with larger arrays). */
static bool tx_rcpt_add(struct smtp_tx *tx, const struct smtp_rcpt_args *r)
{
	size_t n = tx->rcpt_count + 1;
	char **grown = realloc(tx->rcpts, n * sizeof(char *));
	if (grown != NULL)
		tx->rcpts = grown;
	unsigned *notify = realloc(tx->rcpt_notify, n * sizeof(unsigned));
	if (notify != NULL)
		tx->rcpt_notify = notify;
	char **orcpt = realloc(tx->rcpt_orcpt, n * sizeof(char *));
	if (orcpt != NULL)
		tx->rcpt_orcpt = orcpt;
	char *copy = strdup(r->to.text);
	char *ocopy = r->has_orcpt ? strdup(r->orcpt) : NULL;
	if (grown == NULL || notify == NULL || orcpt == NULL || copy == NULL || (r->has_orcpt && ocopy == NULL)) {
		free(copy);
		free(ocopy);
		return false;
	}
	tx->rcpts[tx->rcpt_count] = copy;
	tx->rcpt_notify[tx->rcpt_count] = r->notify;
	tx->rcpt_orcpt[tx->rcpt_count] = ocopy;
	tx->dsn_given = tx->dsn_given || r->notify != 0 || r->has_orcpt;
	tx->rcpt_count++;
	return true;
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_rcpt_args r;
	const char *err;

	switch (smtp_rcpt_parse(cmd->arg, cmd->arg_len, s->tx.mail.smtputf8, &r, &err)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_BAD_PARAM:
		smtp_reply(line_session_out(&s->ls), 555, "5.5.4", "RCPT parameter not recognized: %s", err);
		smtp_session_error(s);
		return;
	case SMTP_PARSE_BAD_RCPT:
		smtp_reply(line_session_out(&s->ls), 553, "5.1.3", "Bad recipient address syntax: %s", err);
		smtp_session_error(s);
		return;
	case SMTP_PARSE_NEED_UTF8:
		reply_error(s, 553, "5.6.7", "UTF-8 address needs the SMTPUTF8 parameter on MAIL");
		return;
	default:
		smtp_reply(line_session_out(&s->ls), 501, "5.5.4", "Syntax: RCPT TO:<address> (%s)", err);
		smtp_session_error(s);
		return;
	}
	if (s->tx.rcpt_count >= s->conf->max_recipients) {
		/* RFC 5321 §4.5.3.1.10: 452 for too many recipients */
		reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	/* reports about our mail are recorded, not delivered: they travel alone */
	bool feedback = smtp_feedback_rcpt(s, &r.to);
	if (s->tx.rcpt_count > 0 && feedback != (s->tx.feedback_rcpts > 0)) {
		reply(s, 452, "4.5.3", "Send reports and other mail in separate transactions");
		return;
	}
	if (!feedback && !rcpt_acceptable(s, &r.to))
		return;
	if (!tx_rcpt_add(&s->tx, &r)) {
		reply(s, 452, "4.3.1", "Insufficient system resources");
		return;
	}
	/* counted once it is in: a refused one must not make the next recipient's mail a report */
	if (feedback)
		s->tx.feedback_rcpts++;
	s->state = SMTP_STATE_RCPT;
	reply(s, 250, "2.1.5", "Ok");
}

/* The spool of a large message (smtp_data_spill): in data_dir, never held in memory whole. */
static bool tx_spill_open(void *arg)
{
	struct smtp_session *s = arg;
	char err[256];
	if ((s->tx.spool = queue_spool_new(s->conf->data_dir, err, sizeof(err))) == NULL)
		log_error("session=%llx event=spool_failed error=\"%s\"", (unsigned long long)s->conn.id, err);
	return s->tx.spool != NULL;
}

static bool tx_spill_write(void *arg, const void *p, size_t n)
{
	struct smtp_session *s = arg;
	if (queue_spool_append(s->tx.spool, p, n))
		return true;
	log_error("session=%llx event=spool_failed error=\"%s\"", (unsigned long long)s->conn.id, strerror(errno));
	return false;
}

static bool tx_body_begin(struct smtp_session *s)
{
	if (s->tx.body != NULL)
		return true;
	s->tx.body = evbuffer_new();
	if (s->tx.body == NULL)
		return false;
	smtp_data_begin(&s->tx.data, s->tx.body, s->conf->max_message_size);
	smtp_data_set_budget(&s->tx.data, &s->srv->memory);
	s->tx.spill = (struct smtp_data_spill){.open = tx_spill_open, .write = tx_spill_write, .arg = s};
	smtp_data_set_spill(&s->tx.data, &s->tx.spill, SMTP_DATA_MEMORY_MAX);
	return true;
}

static void cmd_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (s->state == SMTP_STATE_BDAT) {
		reply_error(s, 503, "5.5.1", "DATA not allowed after BDAT");
		return;
	}
	if (s->state != SMTP_STATE_RCPT) {
		/* RFC 5321 §3.3: no recipients, no data */
		reply_error(s, s->state == SMTP_STATE_MAIL ? 554 : 503, "5.5.1", "No valid recipients");
		return;
	}
	if (budget_exhausted(&s->srv->memory)) {
		/* RFC 3463 X.3.1: the sessions together hold all the message memory they may; later */
		log_warn("session=%llx event=refused reason=max_memory_in_flight", (unsigned long long)s->conn.id);
		reply(s, 452, "4.3.1", "Insufficient system storage, try again later");
		return;
	}
	if (!tx_body_begin(s)) {
		reply(s, 451, "4.3.0", "Insufficient system resources");
		return;
	}
	s->input = SMTP_INPUT_DATA;
	smtp_session_content_begin(s);
	reply(s, 354, "2.0.0", "End data with <CR><LF>.<CR><LF>");
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	uint64_t size;
	bool last;
	const char *err;

	if (smtp_bdat_parse(cmd->arg, cmd->arg_len, &size, &last, &err) != SMTP_PARSE_OK) {
		/* the chunk size is unknown, so the octets cannot be skipped: the session cannot go on */
		smtp_reply(line_session_out(&s->ls), 501, "5.5.4", "Syntax: BDAT size [LAST] (%s)", err);
		line_session_close(&s->ls, "bad_bdat");
		return;
	}
	s->tx.chunk_left = size;
	s->tx.chunk_last = last;
	s->tx.chunked = true;
	s->tx.chunk_reject_code = 0;
	if (s->state != SMTP_STATE_RCPT && s->state != SMTP_STATE_BDAT) {
		/* RFC 3030 §2: the chunk is read and dropped, then refused */
		s->tx.chunk_reject_code = 503;
		s->tx.chunk_reject_enh = "5.5.1";
		s->tx.chunk_reject_text = s->state == SMTP_STATE_MAIL ? "No valid recipients" : "Need MAIL and RCPT first";
	} else if (s->state == SMTP_STATE_RCPT && budget_exhausted(&s->srv->memory)) {
		/* a new message while the sessions hold all they may (a started one goes on, charged) */
		log_warn("session=%llx event=refused reason=max_memory_in_flight", (unsigned long long)s->conn.id);
		s->tx.chunk_reject_code = 452;
		s->tx.chunk_reject_enh = "4.3.1";
		s->tx.chunk_reject_text = "Insufficient system storage, try again later";
	} else if (!tx_body_begin(s)) {
		s->tx.chunk_reject_code = 451;
		s->tx.chunk_reject_enh = "4.3.0";
		s->tx.chunk_reject_text = "Insufficient system resources";
	}
	s->input = SMTP_INPUT_CHUNK;
	smtp_session_content_begin(s);
}

static void cmd_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	smtp_tx_reset(s);
	reply(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	reply(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	smtp_reply(line_session_out(&s->ls), 221, "2.0.0", "%s Bye", s->conf->hostname);
	line_session_close(&s->ls, "quit");
}

static void cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	/* RFC 5321 §3.5.3: 252 says nothing about whether the user exists */
	reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	reply(s, 502, "5.5.1", "EXPN not available");
}

static void cmd_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
}

static void cmd_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (s->ls.tls) {
		reply_error(s, 503, "5.5.1", "TLS already active");
		return;
	}
	if (s->srv->tls == NULL) {
		reply(s, 454, "4.7.0", "TLS not available");
		return;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	smtp_session_starttls(s);
}

/* ---- AUTH (RFC 4954) ---- */

static void auth_done(struct server *srv, uint64_t conn_id, const char *user, bool ok)
{
	struct smtp_session *s = smtp_session_find(srv, conn_id);
	if (s == NULL)
		return;
	if (ok) {
		snprintf(s->auth_user, sizeof(s->auth_user), "%s", user);
		reply(s, 235, "2.7.0", "Authentication successful");
	} else {
		reply(s, 535, "5.7.8", "Authentication credentials invalid");
		smtp_session_error(s);
	}
	smtp_session_resume(s);
}

static void auth_check(struct smtp_session *s, const char *user, const char *pass)
{
	s->input = SMTP_INPUT_COMMAND;
	line_session_wait(&s->ls);
	login_check(s->srv, s->conn.id, s->conn.ip, s->conn.client, user, pass, auth_done);
}

static void auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	char user[SASL_FIELD_MAX + 1], pass[SASL_FIELD_MAX + 1];
	const char *err = "";

	switch (sasl_plain_response(b64, len, user, pass, &err)) {
	case SASL_RESPONSE_BAD_BASE64:
		s->input = SMTP_INPUT_COMMAND;
		reply_error(s, 501, "5.5.2", "Cannot decode response");
		return;
	case SASL_RESPONSE_BAD_PLAIN:
		s->input = SMTP_INPUT_COMMAND;
		smtp_reply(line_session_out(&s->ls), 501, "5.5.2", "Bad PLAIN response: %s", err);
		smtp_session_error(s);
		return;
	case SASL_RESPONSE_OK:
		break;
	}
	auth_check(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

/* LOGIN: the user name, then the password, each a base64 line (draft-murchison-sasl-login). */
static void auth_login_step(struct smtp_session *s, const char *b64, size_t len)
{
	unsigned char field[SASL_FIELD_MAX + 1];
	size_t n;

	if (!sasl_b64_decode(b64, len, field, sizeof(field) - 1, &n) || n == 0 || memchr(field, '\0', n) != NULL) {
		s->input = SMTP_INPUT_COMMAND;
		reply_error(s, 501, "5.5.2", "Cannot decode response");
		return;
	}
	field[n] = '\0';
	if (s->sasl_user[0] == '\0') {
		memcpy(s->sasl_user, field, n + 1);
		s->input = SMTP_INPUT_SASL;
		smtp_reply_line(line_session_out(&s->ls), 334, 1, "UGFzc3dvcmQ6"); /* base64 "Password:" */
		return;
	}
	auth_check(s, s->sasl_user, (const char *)field);
	explicit_bzero(field, sizeof(field));
	s->sasl_user[0] = '\0';
}

void smtp_cmd_sasl_line(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		/* RFC 4954 §4: the client cancels */
		s->input = SMTP_INPUT_COMMAND;
		s->sasl_user[0] = '\0';
		reply_error(s, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	if (s->sasl_mech == SASL_MECH_PLAIN)
		auth_plain(s, line, len);
	else
		auth_login_step(s, line, len);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (s->auth_user[0] != '\0') {
		reply_error(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	if (!auth_allowed(s)) {
		reply_error(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	const char *sp = memchr(cmd->arg, ' ', cmd->arg_len);
	size_t mlen = sp ? (size_t)(sp - cmd->arg) : cmd->arg_len;
	const char *ir = sp ? sp + 1 : NULL;
	size_t ir_len = sp ? cmd->arg_len - mlen - 1 : 0;
	s->sasl_mech = sasl_mech_parse(cmd->arg, mlen);
	s->sasl_user[0] = '\0';
	if (s->sasl_mech == SASL_MECH_NONE) {
		reply_error(s, 504, "5.5.4", "Unrecognized authentication type");
		return;
	}
	if (ir != NULL) {
		/* RFC 4954 §4: an initial response saves a round trip */
		smtp_cmd_sasl_line(s, ir, ir_len);
		return;
	}
	s->input = SMTP_INPUT_SASL;
	if (s->sasl_mech == SASL_MECH_PLAIN)
		smtp_reply_line(line_session_out(&s->ls), 334, 1, ""); /* RFC 4954 §4: "334" SP base64 */
	else
		smtp_reply_line(line_session_out(&s->ls), 334, 1, "VXNlcm5hbWU6"); /* base64 "Username:" */
}

/* ---- end of data: compose and store ---- */

struct store_ctx {
	struct server *srv;
	uint64_t session_id;
	char id[QUEUE_ID_LEN + 1];
	char from[ADDR_TEXT_MAX + 1];
	unsigned rcpts;
	uint64_t size;
};

static void store_done(void *arg, enum result res, const char *reason)
{
	struct store_ctx *c = arg;
	struct smtp_session *s = smtp_session_find(c->srv, c->session_id);
	/* the brackets go inside the value: a quoted local part or an SRS '=' must not end it early */
	char path[ADDR_TEXT_MAX + 3], from[128];
	snprintf(path, sizeof(path), "<%s>", c->from);
	log_safe(from, sizeof(from), path, (unsigned)strlen(path));

	if (s == NULL) {
		/* the client left before our answer: the message may be delivered, nobody was told 250 */
		log_info("queue_id=%s event=stored_client_gone result=%s", c->id, result_str(res));
		free(c);
		return;
	}
	if (res == RESULT_OK) {
		const char *ver = "no", *cipher;
		char user[128] = "-";
		smtp_session_tls_info(s, &ver, &cipher);
		if (s->auth_user[0] != '\0')
			log_safe(user, sizeof(user), s->auth_user, (unsigned)strlen(s->auth_user));
		log_info("session=%llx queue_id=%s event=accepted from=%s rcpts=%u size=%llu tls=%s auth=%s client=%s",
			 (unsigned long long)s->conn.id, c->id, from, c->rcpts, (unsigned long long)c->size, ver, user, s->conn.ip);
		s->messages++;
		metrics_message_accepted(s->srv->metrics, s->conn.role, 1);
		smtp_reply(line_session_out(&s->ls), 250, "2.0.0", "Ok: queued as %s", c->id);
	} else {
		log_warn("session=%llx event=store_failed reason=\"%s\"", (unsigned long long)s->conn.id, reason);
		metrics_message_refused(s->srv->metrics, s->conn.role, METRICS_REFUSAL_STORE_FAILED, 1);
		reply(s, 451, "4.3.0", "Error: queue file write error, try again later");
	}
	free(c);
	smtp_session_resume(s);
}

static const char *data_error_reply(enum smtp_data_error e, int *code_r, const char **enh_r)
{
	switch (e) {
	case SMTP_DATA_TOO_BIG:
		*code_r = 552, *enh_r = "5.3.4";
		return "Message size exceeds fixed maximum message size";
	case SMTP_DATA_LINE_TOO_LONG:
		*code_r = 552, *enh_r = "5.3.4";
		return "Message refused: line longer than 1000 octets (RFC 5321 section 4.5.3.1.6)";
	case SMTP_DATA_NUL:
		*code_r = 550, *enh_r = "5.6.0";
		return "Message refused: NUL octet in content";
	case SMTP_DATA_BARE:
		*code_r = 550, *enh_r = "5.5.2";
		return "Message refused: bare CR or LF in content; lines must end with CRLF";
	case SMTP_DATA_SPILL_FAILED:
		*code_r = 451, *enh_r = "4.3.0";
		return "Error: queue file write error, try again later";
	case SMTP_DATA_NO_MEMORY: /* RFC 3463 X.3.1: a full system, for now */
		*code_r = 452, *enh_r = "4.3.1";
		return "Insufficient system storage, try again later";
	case SMTP_DATA_OK:
		break;
	}
	*code_r = 451, *enh_r = "4.3.0";
	return "Internal error";
}

/* The envelope recipients after alias expansion. */
struct rcpt_list {
	char **v;
	size_t n;
	bool oom;
};

static void rcpt_list_add(const char *address, void *arg)
{
	struct rcpt_list *l = arg;
	char **grown = realloc(l->v, (l->n + 1) * sizeof(char *));
	char *copy = strdup(address);
	if (grown == NULL || copy == NULL) {
		free(copy);
		if (grown != NULL)
			l->v = grown;
		l->oom = true;
		return;
	}
	l->v = grown;
	l->v[l->n++] = copy;
}

static void rcpt_list_free(struct rcpt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* One original recipient's expansion, for the DSN requests its targets inherit. */
struct dsn_inherit {
	struct queue_msg *m;
	unsigned notify;
	const char *orcpt;
	bool oom;
};

static void dsn_inherit_add(const char *address, void *arg)
{
	struct dsn_inherit *d = arg;
	for (size_t i = 0; i < d->m->rcpt_count; i++) {
		/* the first RCPT that led to an address decides for it, as the expansion keeps that one */
		if (strcasecmp(d->m->rcpts[i], address) != 0 || d->m->rcpt_notify[i] != UINT_MAX)
			continue;
		d->m->rcpt_notify[i] = d->notify;
		if (d->orcpt != NULL && (d->m->rcpt_orcpt[i] = strdup(d->orcpt)) == NULL)
			d->oom = true;
		return;
	}
}

/* RFC 3461 NOTIFY and ORCPT for m's envelope (after alias expansion): an alias's targets inherit those
 * of the RCPT that named it, as RFC 3461 §5.2.7 has an alias pass them on (for a list we report no
 * "expanded" action of our own: each target's delivery is reported). false when out of memory. Costs
 * nothing when no RCPT carried them. */
static bool tx_dsn_envelope(struct smtp_session *s, struct queue_msg *m)
{
	struct smtp_tx *tx = &s->tx;
	if (!tx->dsn_given || m->rcpt_count == 0)
		return true;
	m->rcpt_notify = malloc(m->rcpt_count * sizeof(unsigned));
	m->rcpt_orcpt = calloc(m->rcpt_count, sizeof(char *));
	if (m->rcpt_notify == NULL || m->rcpt_orcpt == NULL)
		return false;
	for (size_t i = 0; i < m->rcpt_count; i++)
		m->rcpt_notify[i] = UINT_MAX; /* not yet assigned */
	bool ok = true;
	for (unsigned i = 0; i < tx->rcpt_count && ok; i++) {
		struct dsn_inherit d = {m, tx->rcpt_notify[i], tx->rcpt_orcpt[i], false};
		const char *err;
		const char *one[1] = {tx->rcpts[i]};
		if (tx->feedback_rcpts > 0) /* not expanded */
			dsn_inherit_add(tx->rcpts[i], &d);
		else if (users_rcpt_expand(s->srv->users, one, 1, s->conf->recipient_delimiter, dsn_inherit_add, &d,
					   &err) != RESULT_OK)
			ok = false;
		ok = ok && !d.oom;
	}
	for (size_t i = 0; i < m->rcpt_count; i++)
		if (m->rcpt_notify[i] == UINT_MAX)
			m->rcpt_notify[i] = 0; /* not reached: every target came from some RCPT */
	return ok;
}

/* Builds the message to queue; takes the expanded envelope (final) over. */
static struct queue_msg *tx_to_msg(struct smtp_session *s, struct rcpt_list *final)
{
	struct smtp_tx *tx = &s->tx;
	struct queue_msg *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	queue_id_new(m->id);
	const char *ver = NULL, *cipher = NULL;
	bool tls = smtp_session_tls_info(s, &ver, &cipher);
	bool authed = s->auth_user[0] != '\0';
	char proto[16];
	/* RFC 3848 with-protocol names */
	snprintf(proto, sizeof(proto), "%s%s%s", s->esmtp ? "ESMTP" : "SMTP", tls && s->esmtp ? "S" : "",
		 authed && s->esmtp ? "A" : "");
	struct message_trace t = {
		.helo = s->helo,
		.client_ip = s->conn.ip,
		.hostname = s->conf->hostname,
		.queue_id = m->id,
		.protocol = proto,
		.tls_version = tls ? ver : NULL,
		.tls_cipher = cipher,
		.auth_user = authed ? s->auth_user : NULL,
		.rcpt = tx->rcpt_count == 1 ? tx->rcpts[0] : NULL,
		.now = time(NULL),
	};
	size_t blen = evbuffer_get_length(tx->body);
	const char *content = blen > 0 ? (const char *)evbuffer_pullup(tx->body, -1) : "";
	/* RFC 6409 §8: only a submission server completes the message */
	m->data = message_compose(&t, s->conn.role != CONF_LISTEN_SMTP || authed, content, blen, &m->size);
	m->sender = strdup(tx->mail.from.text);
	m->client_ip = strdup(s->conn.ip);
	m->auth_user = authed ? strdup(s->auth_user) : NULL;
	m->arrival = t.now;
	if (tx->spool != NULL && !queue_spool_flush(tx->spool)) {
		log_error("session=%llx event=spool_failed error=\"%s\"", (unsigned long long)s->conn.id, strerror(errno));
		queue_msg_free(m);
		return NULL; /* 451 4.3.0: not stored */
	}
	m->body = tx->spool; /* the rest of a large message, after its header section */
	tx->spool = NULL;
	m->rcpts = final->v;
	m->rcpt_count = final->n;
	final->v = NULL;
	final->n = 0;
	/* RFC 3461 §4.3, §4.4: kept for the reports; the HTTP API sets none */
	m->dsn_ret = tx->mail.ret == SMTP_DSN_RET_FULL   ? QUEUE_DSN_RET_FULL
		     : tx->mail.ret == SMTP_DSN_RET_HDRS ? QUEUE_DSN_RET_HDRS
							 : QUEUE_DSN_RET_UNSPECIFIED;
	bool envid_oom = tx->mail.has_envid && (m->dsn_envid = strdup(tx->mail.envid)) == NULL;
	/* RFC 8689 §4.1: the message is tagged as needing REQUIRETLS (cmd_mail saw it came over TLS).
	 * §5: "TLS-Required: No" counts from our own authenticated users only, and never beside
	 * REQUIRETLS, which the sender then asked for in the same breath */
	m->requiretls = tx->mail.requiretls;
	m->tls_required_no = authed && !m->requiretls && message_tls_required_no(content, blen);
	if (envid_oom || !tx_dsn_envelope(s, m) || m->data == NULL || m->sender == NULL || m->client_ip == NULL ||
	    (authed && m->auth_user == NULL)) {
		queue_msg_free(m);
		return NULL;
	}
	return m;
}

/* Hands m to the queue; the 250 goes out from store_done. The session is waiting. */
static void msg_store(struct smtp_session *s, struct queue_msg *m)
{
	struct store_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		queue_msg_free(m);
		reply(s, 451, "4.3.0", "Insufficient system resources");
		smtp_session_resume(s);
		return;
	}
	c->srv = s->srv;
	c->session_id = s->conn.id;
	memcpy(c->id, m->id, sizeof(c->id));
	snprintf(c->from, sizeof(c->from), "%s", m->sender);
	c->rcpts = (unsigned)m->rcpt_count;
	c->size = queue_msg_total(m);
	/* DESIGN.md §5: the 250 waits until the group commit holding this message is durable */
	queue_msg_store(s->srv->queue, m, store_done, c);
}

/* RFC 8601 §5: fields claiming our authserv-id go, ours goes on top. */
static bool msg_add_authres(struct queue_msg *m, const char *field, const char *hostname)
{
	m->size = authres_strip(m->data, m->size, hostname);
	return queue_msg_prepend(m, field, strlen(field));
}

static void checks_done(void *arg, struct smtp_checks_outcome *o)
{
	/* the session owns its checks and cancels them before it is freed, so it is still here */
	struct smtp_session *s = arg;
	struct queue_msg *m = o->m;
	s->checks = NULL;
	if (s->conn.closing) {
		queue_msg_free(m); /* the client left before our answer */
		return;
	}
	log_info("session=%llx queue_id=%s event=checked %s verdict=%s", (unsigned long long)s->conn.id, m->id,
		 o->summary, smtp_checks_verdict_str(o->verdict));
	if (o->verdict == SMTP_CHECKS_REJECT || o->verdict == SMTP_CHECKS_TEMPFAIL) {
		/* RFC 9989 §5.3.6 with RFC 7372 §3.1's code for a DMARC rejection; RFC 3463 X.4.3 for
		 * a directory (DNS) failure */
		queue_msg_free(m);
		if (o->verdict == SMTP_CHECKS_REJECT)
			smtp_reply(line_session_out(&s->ls), 550, "5.7.1", "%s", o->reason);
		else
			smtp_reply(line_session_out(&s->ls), 451, "4.4.3", "%s", o->reason);
		smtp_session_resume(s);
		return;
	}
	if (o->verdict == SMTP_CHECKS_QUARANTINE && (m->folder = strdup("Junk")) == NULL) {
		queue_msg_free(m);
		reply(s, 451, "4.3.0", "Insufficient system resources");
		smtp_session_resume(s);
		return;
	}
	if (o->authres == NULL || !msg_add_authres(m, o->authres, s->conf->hostname)) {
		queue_msg_free(m);
		reply(s, 451, "4.3.0", "Insufficient system resources");
		smtp_session_resume(s);
		return;
	}
	msg_store(s, m);
}

/* ---- DKIM signing of authenticated mail (RFC 6376 §5), once, as it is queued ---- */

struct sign_job {
	struct server *srv;
	struct conf *conf;
	uint64_t session_id;
	struct queue_msg *m;
	struct dkim_draft *draft;
	char error[256];
	char domain[DNS_HOST_SIZE];
};

static void sign_job_free(struct sign_job *j)
{
	dkim_draft_free(j->draft);
	conf_free(j->conf);
	free(j);
}

/* A worker thread: the hashes (the signer process holds the keys and signs only the digest). */
static void sign_work(void *arg)
{
	struct sign_job *j = arg;
	struct dmarc_from from;
	const char *err;
	/* the key is chosen by the author domain, the one DMARC aligns with (RFC 9989 §4.4) */
	if (dmarc_from_parse(j->m->data, j->m->size, &from, &err) != DMARC_FROM_OK || from.count != 1)
		return;
	snprintf(j->domain, sizeof(j->domain), "%s", from.domains[0]);
	/* the body of a large message is read from its spool */
	struct dkim_body_tail tail = {.read = queue_spool_read, .arg = j->m->body};
	j->draft = signer_draft_new(j->conf, j->domain, j->m->data, j->m->size, (time_t)j->m->arrival,
				    j->m->body != NULL ? &tail : NULL, &err);
	if (j->draft == NULL)
		snprintf(j->error, sizeof(j->error), "%s", err);
}

static void sign_done(void *arg, enum signer_result r, char *fields, const char *error)
{
	struct sign_job *j = arg;
	struct smtp_session *s = smtp_session_find(j->srv, j->session_id);
	struct queue_msg *m = j->m;
	if (s == NULL) {
		queue_msg_free(m); /* the client left before our answer */
		free(fields);
		sign_job_free(j);
		return;
	}
	unsigned long long sid = (unsigned long long)s->conn.id;
	size_t flen = fields != NULL ? strlen(fields) : 0;
	if (r == SIGNER_UNAVAILABLE) {
		/* unsigned mail from a domain that publishes DMARC would be refused downstream: the
		 * client sends it again later, when the signer is back */
		log_warn("session=%llx queue_id=%s event=dkim_sign_deferred domain=%s error=\"%s\"", sid, m->id, j->domain,
			 error);
		queue_msg_free(m);
		reply(s, 451, "4.3.0", "The message cannot be signed now; try again later");
		smtp_session_resume(s);
	} else {
		if (flen > 0 && queue_msg_prepend(m, fields, flen))
			log_info("session=%llx queue_id=%s event=dkim_signed domain=%s", sid, m->id, j->domain);
		else if (r == SIGNER_KEY_FAILED || flen > 0)
			/* a broken key must not stop mail: it goes out unsigned, and the log says why */
			log_warn("session=%llx queue_id=%s event=dkim_sign_failed domain=%s error=\"%s\"", sid, m->id,
				 j->domain, flen > 0 ? "out of memory" : error);
		msg_store(s, m);
	}
	free(fields);
	sign_job_free(j);
}

/* Back on the loop with the draft: to the signer. */
static void sign_drafted(void *arg)
{
	struct sign_job *j = arg;
	struct smtp_session *s = smtp_session_find(j->srv, j->session_id);
	if (s == NULL) {
		queue_msg_free(j->m);
		sign_job_free(j);
		return;
	}
	if (j->draft == NULL) {
		if (j->error[0] != '\0')
			log_warn("session=%llx queue_id=%s event=dkim_sign_failed domain=%s error=\"%s\"",
				 (unsigned long long)s->conn.id, j->m->id, j->domain, j->error);
		msg_store(s, j->m);
		sign_job_free(j);
		return;
	}
	struct dkim_draft *d = j->draft;
	j->draft = NULL;
	signer_client_sign(j->srv->signer, d, sign_done, j);
}

static bool msg_sign(struct smtp_session *s, struct queue_msg *m)
{
	struct sign_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return false;
	j->srv = s->srv;
	j->conf = conf_ref(s->conf);
	j->session_id = s->conn.id;
	j->m = m;
	worker_pool_submit(s->srv->workers, sign_work, sign_drafted, j);
	return true;
}

void smtp_cmd_data_end(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;
	int code;
	const char *enh;

	if (tx->chunk_reject_code != 0) {
		reply_error(s, tx->chunk_reject_code, tx->chunk_reject_enh, tx->chunk_reject_text);
		tx->chunk_reject_code = 0;
		/* a refused chunk starts no message: the next BDAT's rate is measured afresh */
		tx->rate.started = false;
		tx->content_octets = 0;
		return;
	}
	if (tx->chunked) {
		if (!tx->chunk_last) {
			/* RFC 3030 §2: each chunk but the last is acknowledged on its own */
			s->state = SMTP_STATE_BDAT;
			smtp_reply(line_session_out(&s->ls), 250, "2.0.0", "%llu octets received",
				   (unsigned long long)tx->data.size);
			return;
		}
		smtp_data_chunk_finish(&tx->data);
	}
	if (tx->data.error != SMTP_DATA_OK) {
		const char *text = data_error_reply(tx->data.error, &code, &enh);
		log_info("session=%llx event=rejected reason=%s size=%llu", (unsigned long long)s->conn.id,
			 smtp_data_error_str(tx->data.error), (unsigned long long)tx->data.size);
		reply(s, code, enh, text);
		smtp_tx_reset(s);
		return;
	}
	/* aliases are replaced by their targets now, so the queue holds mailboxes and remote addresses */
	struct rcpt_list final = {0};
	const char *err;
	enum result r = RESULT_OK;
	if (tx->feedback_rcpts > 0) /* report addresses are no mailboxes: nothing to expand */
		for (unsigned i = 0; i < tx->rcpt_count; i++)
			rcpt_list_add(tx->rcpts[i], &final);
	else
		r = users_rcpt_expand(s->srv->users, (const char *const *)tx->rcpts, tx->rcpt_count,
				      s->conf->recipient_delimiter, rcpt_list_add, &final, &err);
	if (r != RESULT_OK || final.oom) {
		rcpt_list_free(&final);
		if (r == RESULT_PERMFAIL) /* RFC 3463 X.4.6: a loop or runaway alias expansion */
			smtp_reply(line_session_out(&s->ls), 550, "5.4.6", "Alias expansion failed: %s", err);
		else
			reply(s, 451, "4.3.0", "Temporary lookup failure, try again later");
		smtp_tx_reset(s);
		return;
	}
	size_t content_len = evbuffer_get_length(tx->body);
	struct queue_msg *m = tx_to_msg(s, &final);
	rcpt_list_free(&final);
	/* the message keeps the body's memory charge until the session has answered for it */
	s->memory_held += tx->data.charged;
	tx->data.charged = 0;
	if (m == NULL) {
		reply(s, 451, "4.3.0", "Insufficient system resources");
		smtp_tx_reset(s);
		return;
	}
	struct smtp_checks_input in = {
		.client_ip = s->conn.ip,
		.helo = s->helo,
		.mail_from = m->sender, /* not tx's: smtp_tx_reset() below clears it before the checks start */
		.m = m,
		.content_off = m->size - content_len,
		.conf = s->conf,
		.now = (time_t)m->arrival,
	};
	/* the MX role checks what strangers send; authenticated users are ours */
	bool check = s->conn.role == CONF_LISTEN_SMTP && s->auth_user[0] == '\0' && s->conf->auth_checks;
	bool feedback = tx->feedback_rcpts > 0;
	smtp_tx_reset(s);
	line_session_wait(&s->ls);
	if (feedback) {
		smtp_feedback_finish(s, m);
		return;
	}
	/* authenticated mail is followed like API mail: a record and per-recipient events (events.h);
	 * without one (no memory) it still goes, untracked */
	if (s->auth_user[0] != '\0')
		m->track = email_record_from_message(m);
	if (check && (s->checks = smtp_checks_start(s->srv, &in, checks_done, s)) != NULL)
		return;
	if (s->auth_user[0] != '\0' && s->conf->dkim_sign && msg_sign(s, m))
		return;
	msg_store(s, m);
}

static const struct smtp_cmd_def smtp_cmd_table[] = {
	{SMTP_VERB_HELO, ST_ANY, cmd_helo},
	{SMTP_VERB_EHLO, ST_ANY, cmd_helo},
	{SMTP_VERB_MAIL, ST(READY), cmd_mail},
	{SMTP_VERB_RCPT, ST(MAIL) | ST(RCPT), cmd_rcpt},
	{SMTP_VERB_DATA, ST(MAIL) | ST(RCPT) | ST(BDAT), cmd_data},
	{SMTP_VERB_BDAT, ST_ANY, cmd_bdat}, /* checks its state itself: the chunk must be read either way */
	{SMTP_VERB_RSET, ST_ANY, cmd_rset},
	{SMTP_VERB_NOOP, ST_ANY, cmd_noop},
	{SMTP_VERB_QUIT, ST_ANY, cmd_quit},
	{SMTP_VERB_VRFY, ST_ANY, cmd_vrfy},
	{SMTP_VERB_EXPN, ST_ANY, cmd_expn},
	{SMTP_VERB_HELP, ST_ANY, cmd_help},
	{SMTP_VERB_STARTTLS, ST(INIT) | ST(READY), cmd_starttls},
	{SMTP_VERB_AUTH, ST(READY), cmd_auth},
};

void smtp_cmd_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	const char *err;

	switch (smtp_cmd_parse(line, len, &cmd, &err)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN:
		reply_error(s, 500, "5.5.1", "Command unrecognized");
		return;
	case SMTP_PARSE_TOO_LONG:
		/* as the session's own line limit answers (RFC 5321 §4.2.2) */
		reply_error(s, 500, "5.5.2", "Line too long");
		return;
	default:
		smtp_reply(line_session_out(&s->ls), 501, "5.5.4", "Syntax error: %s", err);
		smtp_session_error(s);
		return;
	}
	for (size_t i = 0; i < sizeof(smtp_cmd_table) / sizeof(smtp_cmd_table[0]); i++) {
		const struct smtp_cmd_def *d = &smtp_cmd_table[i];
		if (d->verb != cmd.verb)
			continue;
		if (!(d->states & (1u << s->state))) {
			const char *why = s->state == SMTP_STATE_INIT ? "Send EHLO/HELO first"
					  : cmd.verb == SMTP_VERB_MAIL ? "Nested MAIL command"
					  : cmd.verb == SMTP_VERB_RCPT ? "Need MAIL before RCPT"
									: "Bad sequence of commands";
			reply_error(s, 503, "5.5.1", why);
			return;
		}
		d->run(s, &cmd);
		return;
	}
	reply_error(s, 502, "5.5.1", "Command not supported here"); /* RFC 5321 §4.2.4 */
}

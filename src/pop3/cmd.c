/* cmd.c — what each POP3 command does (RFC 1939, CAPA and response codes from RFC 2449 and RFC 3206,
 * AUTH from RFC 5034, STLS from RFC 2595). The table says in which states a keyword is allowed.
 * Everything that touches the maildir runs on a worker thread; the callbacks find their session by
 * id. RETR and TOP stream the message (retr.c). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox/maildir.h"
#include "pop3/parse.h"
#include "pop3/retr.h"
#include "pop3/session.h"
#include "server/login.h"
#include "server/server.h"
#include "sasl/sasl.h"
#include "util/log.h"
#include "util/worker.h"

/* RFC 2449 §4: the first line of a response is at most 512 octets with its CRLF. */
#define POP3_REPLY_MAX 510

#define ST(x) (1u << POP3_STATE_##x)

struct pop3_cmd_def {
	enum pop3_verb verb;
	unsigned states; /* where the keyword is allowed; elsewhere -ERR */
	void (*run)(struct pop3_session *s, const struct pop3_cmd *cmd);
};

static void reply(struct pop3_session *s, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void reply(struct pop3_session *s, bool ok, const char *fmt, ...)
{
	char text[POP3_REPLY_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text) - 6, fmt, ap);
	va_end(ap);
	evbuffer_add_printf(line_session_out(&s->ls), "%s%s%s\r\n", ok ? "+OK" : "-ERR", text[0] ? " " : "", text);
}

/* A reply to a client mistake: counted towards pop3_max_errors. */
#define reply_error(s, ...) \
	do { \
		reply((s), false, __VA_ARGS__); \
		pop3_session_error(s); \
	} while (0)

static bool auth_allowed(const struct pop3_session *s)
{
	/* DESIGN.md §6: credentials only over TLS, except explicit loopback development mode */
	return s->ls.tls || (s->conf->allow_insecure_auth && s->conn.listener_loopback);
}

void pop3_cmd_greet(struct pop3_session *s)
{
	/* RFC 1939 §4; no software name or version, and no APOP timestamp (APOP is not offered) */
	reply(s, true, "POP3 server ready");
}

static void cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	/* RFC 2449 §5: what is offered in AUTHORIZATION is announced in both states */
	struct evbuffer *out = line_session_out(&s->ls);
	evbuffer_add_printf(out, "+OK Capability list follows\r\n");
	evbuffer_add_printf(out, "TOP\r\nUIDL\r\n");
	if (auth_allowed(s))
		evbuffer_add_printf(out, "USER\r\nSASL PLAIN\r\n");
	evbuffer_add_printf(out, "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"); /* RFC 2449, RFC 3206 */
	if (!s->ls.tls && s->srv->tls != NULL && s->state == POP3_STATE_AUTHORIZATION)
		evbuffer_add_printf(out, "STLS\r\n"); /* RFC 2595 §4: AUTHORIZATION only, not inside TLS */
	evbuffer_add_printf(out, ".\r\n");
}

static void cmd_stls(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (s->ls.tls) {
		reply_error(s, "Command not permitted when TLS active");
		return;
	}
	if (s->srv->tls == NULL) {
		reply(s, false, "[SYS/TEMP] TLS not available");
		return;
	}
	reply(s, true, "Begin TLS negotiation");
	pop3_session_stls(s);
}

/* ---- login: USER/PASS and AUTH PLAIN ---- */

struct open_job {
	struct server *srv;
	uint64_t conn_id;
	struct pop3_lock *lock; /* a reference: the mailbox stays ours while the job runs */
	struct maildir_msg *msgs;
	size_t count;
	enum result res;
	const char *err;
	bool in_use; /* another process holds the mailbox */
};

static void open_work(void *arg)
{
	struct open_job *j = arg;
	if (!pop3_lock_file(j->lock)) {
		j->in_use = true;
		return;
	}
	/* RFC 1939 §4: the maildrop is what is there now; new mail waits for the next session */
	j->res = maildir_drop_open(j->lock->path, &j->msgs, &j->count, &j->err);
}

static void open_done(void *arg)
{
	struct open_job *j = arg;
	struct pop3_session *s = pop3_session_find(j->srv, j->conn_id);
	pop3_lock_unref(j->srv, j->lock);
	if (s == NULL) {
		free(j->msgs);
		free(j);
		return;
	}
	char user[128];
	log_safe(user, sizeof(user), s->account, (unsigned)strlen(s->account));
	bool *deleted = !j->in_use && j->res == RESULT_OK ? calloc(j->count > 0 ? j->count : 1, sizeof(bool)) : NULL;
	if (j->in_use) {
		log_info("session=%llx event=maildrop result=in_use user=%s", (unsigned long long)s->conn.id, user);
		pop3_session_drop_release(s);
		s->account[0] = '\0';
		reply(s, false, "[IN-USE] Mailbox in use by another session");
	} else if (deleted == NULL) {
		log_warn("session=%llx event=maildrop result=error user=%s error=\"%s\"", (unsigned long long)s->conn.id, user,
			 j->res == RESULT_OK ? "out of memory" : j->err);
		free(j->msgs);
		pop3_session_drop_release(s);
		s->account[0] = '\0';
		reply(s, false, "[SYS/TEMP] Cannot open the mailbox, try again later");
	} else {
		s->msgs = j->msgs;
		s->msg_count = j->count;
		s->deleted = deleted;
		s->state = POP3_STATE_TRANSACTION;
		uint64_t octets = 0;
		for (size_t i = 0; i < s->msg_count; i++)
			octets += s->msgs[i].size;
		SSL *ssl = s->ls.tls ? bufferevent_openssl_get_ssl(s->ls.bev) : NULL;
		log_info("session=%llx event=maildrop result=ok user=%s messages=%zu octets=%llu tls=%s",
			 (unsigned long long)s->conn.id, user, s->msg_count, (unsigned long long)octets,
			 ssl != NULL ? SSL_get_version(ssl) : "no");
		reply(s, true, "Mailbox has %zu message%s (%llu octets)", s->msg_count, s->msg_count == 1 ? "" : "s",
		      (unsigned long long)octets);
	}
	free(j);
	pop3_session_resume(s);
}

static void login_done(struct server *srv, uint64_t conn_id, const char *user, bool ok)
{
	struct pop3_session *s = pop3_session_find(srv, conn_id);
	if (s == NULL)
		return;
	if (!ok) {
		/* RFC 3206 §4: [AUTH] says the credentials are the problem */
		reply_error(s, "[AUTH] Authentication failed");
		pop3_session_resume(s);
		return;
	}
	char path[4096];
	char logged[128];
	log_safe(logged, sizeof(logged), user, (unsigned)strlen(user));
	if (maildir_path(s->conf->data_dir, user, path, sizeof(path)) != 0) {
		log_warn("session=%llx event=maildrop result=error user=%s error=\"no maildir path\"",
			 (unsigned long long)s->conn.id, logged);
		reply(s, false, "[SYS/PERM] Mailbox unavailable");
		pop3_session_resume(s);
		return;
	}
	switch (pop3_lock_take(srv, path, &s->lock)) {
	case POP3_LOCK_OK:
		break;
	case POP3_LOCK_IN_USE:
		/* RFC 2449 §8.1.2: the password was right, the maildrop is busy */
		log_info("session=%llx event=maildrop result=in_use user=%s", (unsigned long long)s->conn.id, logged);
		reply(s, false, "[IN-USE] Mailbox in use by another session");
		pop3_session_resume(s);
		return;
	case POP3_LOCK_NO_MEMORY:
		reply(s, false, "[SYS/TEMP] Out of memory, try again later");
		pop3_session_resume(s);
		return;
	}
	struct open_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		pop3_session_drop_release(s);
		reply(s, false, "[SYS/TEMP] Out of memory, try again later");
		pop3_session_resume(s);
		return;
	}
	snprintf(s->account, sizeof(s->account), "%s", user);
	j->srv = srv;
	j->conn_id = conn_id;
	j->lock = pop3_lock_ref(s->lock);
	worker_pool_submit(srv->workers, open_work, open_done, j); /* still waiting */
}

static void login_start(struct pop3_session *s, const char *user, const char *pass)
{
	s->input = POP3_INPUT_COMMAND;
	line_session_wait(&s->ls);
	login_check(s->srv, s->conn.id, s->conn.ip, s->conn.client, user, pass, login_done);
}

static bool credentials_allowed(struct pop3_session *s)
{
	if (auth_allowed(s))
		return true;
	/* RFC 2595 §2.1 spirit and DESIGN.md §6: never a password in the clear */
	reply_error(s, "[AUTH] Plaintext authentication disallowed on an unencrypted connection; use STLS first");
	return false;
}

static void cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (!credentials_allowed(s))
		return;
	if (cmd->arg[0].len > SASL_FIELD_MAX) {
		reply_error(s, "User name too long");
		return;
	}
	memcpy(s->user, cmd->arg[0].p, cmd->arg[0].len);
	s->user[cmd->arg[0].len] = '\0';
	/* the same answer whether or not the user exists */
	reply(s, true, "Send PASS");
}

static void cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (!credentials_allowed(s))
		return;
	if (s->user[0] == '\0') {
		reply_error(s, "Send USER first");
		return;
	}
	char pass[SASL_FIELD_MAX + 1];
	char user[SASL_FIELD_MAX + 1];
	size_t n = cmd->arg[0].len > SASL_FIELD_MAX ? SASL_FIELD_MAX : cmd->arg[0].len;
	memcpy(pass, cmd->arg[0].p, n);
	pass[n] = '\0';
	memcpy(user, s->user, sizeof(user));
	explicit_bzero(s->user, sizeof(s->user)); /* RFC 1939 §7: a failed PASS starts over with USER */
	login_start(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

/* RFC 5034 §4 with RFC 4616: one base64 line, "[authzid] NUL authcid NUL passwd". */
static void auth_plain(struct pop3_session *s, const char *b64, size_t len)
{
	char user[SASL_FIELD_MAX + 1], pass[SASL_FIELD_MAX + 1];
	const char *err = "";

	s->input = POP3_INPUT_COMMAND;
	switch (sasl_plain_response(b64, len, user, pass, &err)) {
	case SASL_RESPONSE_BAD_BASE64:
		reply_error(s, "Invalid base64 in the SASL response");
		return;
	case SASL_RESPONSE_BAD_PLAIN:
		reply_error(s, "[AUTH] Bad PLAIN response: %s", err);
		return;
	case SASL_RESPONSE_OK:
		break;
	}
	login_start(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

void pop3_cmd_sasl_line(struct pop3_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		/* RFC 5034 §4: the client cancels the exchange */
		s->input = POP3_INPUT_COMMAND;
		reply_error(s, "Authentication cancelled");
		return;
	}
	auth_plain(s, line, len);
}

static void cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (!credentials_allowed(s))
		return;
	if (sasl_mech_parse(cmd->arg[0].p, cmd->arg[0].len) != SASL_MECH_PLAIN) {
		reply_error(s, "Unsupported authentication mechanism");
		return;
	}
	if (cmd->argc == 2) {
		/* RFC 5034 §4: the initial response saves a round trip; "=" is an empty one */
		pop3_cmd_sasl_line(s, cmd->arg[1].p, cmd->arg[1].len);
		return;
	}
	s->input = POP3_INPUT_SASL;
	evbuffer_add_printf(line_session_out(&s->ls), "+ \r\n"); /* RFC 5034 §4: "+" SP, an empty challenge */
}

/* ---- TRANSACTION ---- */

/* The message numbered n that has not been deleted, or NULL after saying why not. */
static const struct maildir_msg *msg_get(struct pop3_session *s, uint32_t n)
{
	if (n == 0 || n > s->msg_count) {
		reply_error(s, "No such message, only %zu message%s in maildrop", s->msg_count,
			    s->msg_count == 1 ? "" : "s");
		return NULL;
	}
	if (s->deleted[n - 1]) {
		reply_error(s, "Message %u already deleted", n);
		return NULL;
	}
	return &s->msgs[n - 1];
}

static void drop_totals(const struct pop3_session *s, size_t *count_r, uint64_t *octets_r)
{
	size_t count = 0;
	uint64_t octets = 0;
	for (size_t i = 0; i < s->msg_count; i++) {
		if (s->deleted[i])
			continue;
		count++;
		octets += s->msgs[i].size;
	}
	*count_r = count;
	*octets_r = octets;
}

static void cmd_stat(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	size_t count;
	uint64_t octets;
	drop_totals(s, &count, &octets); /* RFC 1939 §5: deleted messages are not counted */
	reply(s, true, "%zu %llu", count, (unsigned long long)octets);
}

static void cmd_list(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (cmd->argc == 1) {
		const struct maildir_msg *m = msg_get(s, cmd->num[0]);
		if (m != NULL)
			reply(s, true, "%u %llu", cmd->num[0], (unsigned long long)m->size);
		return;
	}
	size_t count;
	uint64_t octets;
	drop_totals(s, &count, &octets);
	reply(s, true, "%zu message%s (%llu octets)", count, count == 1 ? "" : "s", (unsigned long long)octets);
	struct evbuffer *out = line_session_out(&s->ls);
	for (size_t i = 0; i < s->msg_count; i++)
		if (!s->deleted[i])
			evbuffer_add_printf(out, "%zu %llu\r\n", i + 1, (unsigned long long)s->msgs[i].size);
	evbuffer_add_printf(out, ".\r\n");
}

static void cmd_uidl(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	/* RFC 1939 §7: the maildir base name, which never changes (maildir.h) */
	if (cmd->argc == 1) {
		const struct maildir_msg *m = msg_get(s, cmd->num[0]);
		if (m != NULL)
			reply(s, true, "%u %s", cmd->num[0], m->uid);
		return;
	}
	struct evbuffer *out = line_session_out(&s->ls);
	reply(s, true, "Unique-ID listing follows");
	for (size_t i = 0; i < s->msg_count; i++)
		if (!s->deleted[i])
			evbuffer_add_printf(out, "%zu %s\r\n", i + 1, s->msgs[i].uid);
	evbuffer_add_printf(out, ".\r\n");
}

static void cmd_dele(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (msg_get(s, cmd->num[0]) == NULL)
		return;
	/* RFC 1939 §5: only marked; removed in the UPDATE state after QUIT */
	s->deleted[cmd->num[0] - 1] = true;
	reply(s, true, "Message %u deleted", cmd->num[0]);
}

static void cmd_rset(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	memset(s->deleted, 0, s->msg_count * sizeof(bool));
	size_t count;
	uint64_t octets;
	drop_totals(s, &count, &octets);
	reply(s, true, "Maildrop has %zu message%s (%llu octets)", count, count == 1 ? "" : "s",
	      (unsigned long long)octets);
}

static void cmd_noop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	reply(s, true, "%s", "");
}

/* ---- RETR and TOP: streamed from a worker (retr.c) ---- */

static void cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (msg_get(s, cmd->num[0]) != NULL)
		pop3_retr_start(s, cmd->num[0], false, 0);
}

static void cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (msg_get(s, cmd->num[0]) != NULL)
		pop3_retr_start(s, cmd->num[0], true, cmd->num[1]);
}


/* ---- QUIT and the UPDATE state ---- */

struct update_job {
	struct server *srv;
	uint64_t conn_id;
	struct pop3_lock *lock; /* the session's reference, handed over */
	struct maildir_msg *msgs;
	bool *deleted;
	size_t count;
	size_t removed, failed, kept;
	const char *err;
};

static void update_work(void *arg)
{
	struct update_job *j = arg;
	for (size_t i = 0; i < j->count; i++) {
		if (!j->deleted[i]) {
			j->kept++;
			continue;
		}
		const char *err;
		if (maildir_msg_delete(j->lock->path, &j->msgs[i], &err) == RESULT_OK) {
			j->removed++;
		} else {
			j->failed++;
			j->err = err;
		}
	}
}

static void update_done(void *arg)
{
	struct update_job *j = arg;
	struct pop3_session *s = pop3_session_find(j->srv, j->conn_id);
	/* logged even when the client has gone: the deletions happened */
	log_info("session=%llx event=quit state=update deleted=%zu failed=%zu kept=%zu%s%s%s", (unsigned long long)j->conn_id,
		 j->removed, j->failed, j->kept, j->err ? " error=\"" : "", j->err ? j->err : "", j->err ? "\"" : "");
	if (s != NULL) {
		if (j->failed == 0)
			reply(s, true, "Bye (%zu message%s left)", j->kept, j->kept == 1 ? "" : "s");
		else /* RFC 1939 §6 */
			reply(s, false, "[SYS/TEMP] Some deleted messages not removed");
		line_session_close(&s->ls, "quit");
	}
	pop3_lock_unref(j->srv, j->lock);
	free(j->msgs);
	free(j->deleted);
	free(j);
}

static void cmd_quit(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	size_t marked = 0;
	for (size_t i = 0; i < s->msg_count; i++)
		marked += s->deleted[i];
	if (s->state != POP3_STATE_TRANSACTION || marked == 0) {
		/* RFC 1939 §4: QUIT in AUTHORIZATION does not enter UPDATE */
		log_info("session=%llx event=quit state=%s deleted=0", (unsigned long long)s->conn.id, pop3_state_str(s->state));
		reply(s, true, "Bye");
		line_session_close(&s->ls, "quit");
		return;
	}
	struct update_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		reply(s, false, "[SYS/TEMP] Out of memory; no messages removed");
		line_session_close(&s->ls, "quit");
		return;
	}
	/* RFC 1939 §6: the marked messages go now; the job owns the maildrop from here on, and the
	 * mailbox stays locked until it is done */
	*j = (struct update_job){.srv = s->srv, .conn_id = s->conn.id, .lock = s->lock, .msgs = s->msgs,
				 .deleted = s->deleted, .count = s->msg_count};
	s->lock = NULL;
	s->msgs = NULL;
	s->deleted = NULL;
	s->msg_count = 0;
	s->state = POP3_STATE_UPDATE;
	line_session_wait(&s->ls);
	worker_pool_submit(s->srv->workers, update_work, update_done, j);
}

/* ---- dispatch ---- */

static const struct pop3_cmd_def pop3_cmd_table[] = {
	{POP3_VERB_USER, ST(AUTHORIZATION), cmd_user},
	{POP3_VERB_PASS, ST(AUTHORIZATION), cmd_pass},
	{POP3_VERB_AUTH, ST(AUTHORIZATION), cmd_auth},
	{POP3_VERB_STLS, ST(AUTHORIZATION), cmd_stls},
	{POP3_VERB_CAPA, ST(AUTHORIZATION) | ST(TRANSACTION), cmd_capa},
	{POP3_VERB_QUIT, ST(AUTHORIZATION) | ST(TRANSACTION), cmd_quit},
	{POP3_VERB_STAT, ST(TRANSACTION), cmd_stat},
	{POP3_VERB_LIST, ST(TRANSACTION), cmd_list},
	{POP3_VERB_RETR, ST(TRANSACTION), cmd_retr},
	{POP3_VERB_DELE, ST(TRANSACTION), cmd_dele},
	{POP3_VERB_NOOP, ST(TRANSACTION), cmd_noop},
	{POP3_VERB_RSET, ST(TRANSACTION), cmd_rset},
	{POP3_VERB_TOP, ST(TRANSACTION), cmd_top},
	{POP3_VERB_UIDL, ST(TRANSACTION), cmd_uidl},
};

void pop3_cmd_dispatch(struct pop3_session *s, const char *line, size_t len)
{
	struct pop3_cmd cmd;
	const char *err;

	switch (pop3_cmd_parse(line, len, &cmd, &err)) {
	case POP3_PARSE_OK:
		break;
	case POP3_PARSE_UNKNOWN:
		reply_error(s, "Unknown command");
		return;
	case POP3_PARSE_TOO_LONG:
		reply_error(s, "Line too long");
		return;
	case POP3_PARSE_SYNTAX:
		reply_error(s, "Syntax error: %s", err);
		return;
	}
	for (size_t i = 0; i < sizeof(pop3_cmd_table) / sizeof(pop3_cmd_table[0]); i++) {
		const struct pop3_cmd_def *d = &pop3_cmd_table[i];
		if (d->verb != cmd.verb)
			continue;
		if (!(d->states & (1u << s->state))) {
			reply_error(s, "%s not allowed %s", pop3_verb_str(cmd.verb),
				    s->state == POP3_STATE_AUTHORIZATION ? "before login" : "after login");
			return;
		}
		d->run(s, &cmd);
		return;
	}
	reply_error(s, "Unknown command");
}

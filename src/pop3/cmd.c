/* cmd.c — what each POP3 command does (RFC 1939, CAPA and response codes from RFC 2449 and RFC 3206,
 * AUTH from RFC 5034, STLS from RFC 2595). The table says in which states a keyword is allowed.
 * Everything that touches the maildir runs on a worker thread; the callbacks find their session by
 * id. RETR and TOP stream the message: a worker reads and byte-stuffs one piece at a time, and the
 * next piece is read only when the client has taken most of the previous one; the small messages
 * after a RETR taken in order are read ahead in the same job. */
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
#include "pop3/session.h"
#include "server/login.h"
#include "server/server.h"
#include "sasl/sasl.h"
#include "util/budget.h"
#include "util/log.h"
#include "util/worker.h"

/* File octets a worker reads per read(2), and per job (piece) of a RETR/TOP. A piece becomes at
 * most twice as many octets with CRLF and stuffing; the next is read only once the output is down
 * to POP3_OUTPUT_LOW, so a RETR holds well under 1 MiB whatever the size of the message. */
#define POP3_RETR_READ 65536
#define POP3_RETR_PIECE (4 * POP3_RETR_READ)
/* Read-ahead: a client taking its messages in order (fetchmail and most others, pipelined or not)
 * gets the next small ones read by the same worker job as the one it asked for, as complete
 * responses; they wait for it in the session, at most this many messages and octets (as read). */
#define POP3_AHEAD_MSGS 32
#define POP3_AHEAD_OCTETS (256 * 1024)
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
	evbuffer_add_printf(pop3_session_out(s), "%s%s%s\r\n", ok ? "+OK" : "-ERR", text[0] ? " " : "", text);
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
	return s->ls.tls || (s->conf->allow_insecure_auth && s->listener_loopback);
}

void pop3_cmd_greet(struct pop3_session *s)
{
	/* RFC 1939 §4; no software name or version, and no APOP timestamp (APOP is not offered) */
	reply(s, true, "POP3 server ready");
}

static void cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	/* RFC 2449 §5: what is offered in AUTHORIZATION is announced in both states */
	struct evbuffer *out = pop3_session_out(s);
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
};

static void open_work(void *arg)
{
	struct open_job *j = arg;
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
	bool *deleted = j->res == RESULT_OK ? calloc(j->count > 0 ? j->count : 1, sizeof(bool)) : NULL;
	if (deleted == NULL) {
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
	pop3_session_wait(s);
	login_check(s->srv, s->conn.id, s->ip, s->client, user, pass, login_done);
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
	evbuffer_add_printf(pop3_session_out(s), "+ \r\n"); /* RFC 5034 §4: "+" SP, an empty challenge */
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
	struct evbuffer *out = pop3_session_out(s);
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
	struct evbuffer *out = pop3_session_out(s);
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

/* ---- RETR and TOP: streamed from a worker ---- */

/* Messages read ahead of the client's RETR, in the order it is expected to ask for them. */
struct pop3_ahead {
	unsigned count;   /* planned on the loop; on the worker, cut to what could be read */
	unsigned next;    /* the first not yet asked for */
	uint64_t charged; /* taken from srv->memory, the budget of message octets held in memory */
	struct {
		uint32_t num;
		struct maildir_msg msg;  /* a copy */
		struct evbuffer *resp;   /* the whole response ("+OK", stuffed message, "."); worker-built */
	} e[POP3_AHEAD_MSGS];
};

static void ahead_drop(struct pop3_session *s);

static void ahead_free(struct server *srv, struct pop3_ahead *a)
{
	if (a == NULL)
		return;
	budget_give(&srv->memory, a->charged);
	for (unsigned i = 0; i < POP3_AHEAD_MSGS; i++)
		if (a->e[i].resp != NULL)
			evbuffer_free(a->e[i].resp);
	free(a);
}

struct pop3_retr {
	struct server *srv;
	uint64_t conn_id;
	struct pop3_lock *lock;  /* a reference: its path names the maildir */
	struct maildir_msg msg;  /* a copy */
	uint32_t num;
	bool top;
	uint32_t lines;
	int fd;                  /* -1 until the first piece opens the file */
	struct pop3_stuff st;
	bool started;            /* the +OK line is in the output */
	bool finished;           /* ".CRLF" is in the output */
	int error;               /* errno of a failed open or read, else 0 */
	uint64_t sent;           /* octets of the response so far, for the log */
	struct evbuffer *out;    /* this piece, built on the worker */
	char *buf;               /* read buffer, POP3_RETR_READ octets */
	struct pop3_ahead *ahead; /* NULL, or the messages to read after this one */
};

static void retr_free(struct pop3_retr *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->out != NULL)
		evbuffer_free(r->out);
	free(r->buf);
	ahead_free(r->srv, r->ahead);
	pop3_lock_unref(r->srv, r->lock);
	free(r);
}

/* Worker thread: one whole message as a RETR response into resp; false on any failure (then the
 * client's own RETR of it reads it again and reports what went wrong). */
static bool ahead_read(const char *maildir, const struct maildir_msg *m, char *buf, struct evbuffer *resp)
{
	struct pop3_stuff st;
	int fd = maildir_msg_open(maildir, m);
	bool ok = fd >= 0;

	pop3_stuff_init(&st, false, 0);
	if (ok)
		ok = evbuffer_add_printf(resp, "+OK %llu octets\r\n", (unsigned long long)m->size) > 0;
	while (ok) {
		ssize_t n = read(fd, buf, POP3_RETR_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = n == 0;
			break;
		}
		struct evbuffer_iovec v;
		ok = evbuffer_reserve_space(resp, 2 * (ev_ssize_t)n, &v, 1) >= 1;
		if (ok) {
			v.iov_len = pop3_stuff_chunk(&st, buf, (size_t)n, v.iov_base);
			ok = evbuffer_commit_space(resp, &v, 1) == 0;
		}
	}
	if (ok) {
		char end[POP3_STUFF_END_MAX];
		ok = evbuffer_add(resp, end, pop3_stuff_end(&st, end)) == 0;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Worker thread: reads the planned messages, in order, up to the first that cannot be read. */
static void ahead_work(struct pop3_ahead *a, const char *maildir, char *buf)
{
	unsigned i = 0;

	for (; i < a->count; i++) {
		if ((a->e[i].resp = evbuffer_new()) == NULL || !ahead_read(maildir, &a->e[i].msg, buf, a->e[i].resp))
			break;
	}
	for (unsigned j = i; j < a->count; j++) {
		if (a->e[j].resp != NULL)
			evbuffer_free(a->e[j].resp);
		a->e[j].resp = NULL;
	}
	a->count = i;
}

/* Worker thread: opens the file on the first call, then reads, converts and stuffs up to
 * POP3_RETR_PIECE octets of it into r->out; at the end of the file (or of TOP) adds the end marker. */
static void retr_work(void *arg)
{
	struct pop3_retr *r = arg;
	if (r->fd < 0) {
		r->fd = maildir_msg_open(r->lock->path, &r->msg);
		if (r->fd < 0) {
			r->error = errno ? errno : EIO;
			return;
		}
		if (r->top)
			evbuffer_add_printf(r->out, "+OK Top of message %u follows\r\n", r->num);
		else
			evbuffer_add_printf(r->out, "+OK %llu octets\r\n", (unsigned long long)r->msg.size);
		r->started = true;
	}
	size_t taken = 0;
	bool eof = false;
	while (taken < POP3_RETR_PIECE && !r->st.stopped) {
		ssize_t n = read(r->fd, r->buf, POP3_RETR_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r->error = errno;
			return;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		struct evbuffer_iovec v;
		if (evbuffer_reserve_space(r->out, 2 * (ev_ssize_t)n, &v, 1) < 1) {
			r->error = ENOMEM;
			return;
		}
		v.iov_len = pop3_stuff_chunk(&r->st, r->buf, (size_t)n, v.iov_base);
		if (evbuffer_commit_space(r->out, &v, 1) != 0) {
			r->error = ENOMEM;
			return;
		}
		taken += (size_t)n;
	}
	if (eof || r->st.stopped) {
		char end[POP3_STUFF_END_MAX];
		evbuffer_add(r->out, end, pop3_stuff_end(&r->st, end));
		r->finished = true;
		close(r->fd);
		r->fd = -1;
		if (r->ahead != NULL)
			ahead_work(r->ahead, r->lock->path, r->buf);
	}
}

static void retr_done(void *arg);

static void retr_submit(struct pop3_session *s)
{
	struct pop3_retr *r = s->retr;
	s->retr = NULL; /* the worker has it now; retr_done gives it back */
	worker_pool_submit(s->srv->workers, retr_work, retr_done, r);
}

static void retr_done(void *arg)
{
	struct pop3_retr *r = arg;
	struct pop3_session *s = pop3_session_find(r->srv, r->conn_id);
	if (s == NULL) {
		retr_free(r);
		return;
	}
	if (r->error != 0 && !r->started) {
		log_warn("session=%llx event=%s result=error msg=%u error=\"%s\"", (unsigned long long)s->conn.id,
			 r->top ? "top" : "retr", r->num, strerror(r->error));
		reply(s, false, "[SYS/TEMP] Cannot read message %u", r->num);
		retr_free(r);
		pop3_session_resume(s);
		return;
	}
	r->sent += evbuffer_get_length(r->out);
	evbuffer_add_buffer(pop3_session_out(s), r->out);
	if (r->error != 0) {
		/* part of the message is out: the response cannot be completed, the session cannot go on */
		log_warn("session=%llx event=%s result=error msg=%u error=\"%s\"", (unsigned long long)s->conn.id,
			 r->top ? "top" : "retr", r->num, strerror(r->error));
		retr_free(r);
		pop3_session_close(s, "read_error");
		return;
	}
	if (r->finished) {
		if (r->top)
			log_info("session=%llx event=top msg=%u uid=%s lines=%u sent=%llu", (unsigned long long)s->conn.id,
				 r->num, r->msg.uid, r->lines, (unsigned long long)r->sent);
		else
			log_info("session=%llx event=retr msg=%u uid=%s size=%llu sent=%llu", (unsigned long long)s->conn.id,
				 r->num, r->msg.uid, (unsigned long long)r->msg.size, (unsigned long long)r->sent);
		s->retrieved++;
		if (r->ahead != NULL && r->ahead->count > 0) {
			ahead_drop(s);
			s->ahead = r->ahead; /* they wait for the client's next RETRs */
			r->ahead = NULL;
		}
		retr_free(r);
		pop3_session_resume(s);
		return;
	}
	/* park it; the next piece is read once the client has taken most of this one */
	s->retr = r;
	if (pop3_session_output_low(s))
		retr_submit(s);
}

void pop3_cmd_retr_continue(struct pop3_session *s)
{
	if (s->retr != NULL && pop3_session_output_low(s))
		retr_submit(s);
}

/* Plans the messages after number after for reading ahead: those not deleted, in order, within the
 * window. NULL when there are none or the memory budget has no room. */
static struct pop3_ahead *ahead_plan(struct pop3_session *s, uint32_t after)
{
	struct pop3_ahead *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL; /* no read-ahead is no harm */
	uint64_t octets = 0;
	for (uint32_t n = after + 1; n <= s->msg_count && a->count < POP3_AHEAD_MSGS; n++) {
		const struct maildir_msg *next = &s->msgs[n - 1];
		if (s->deleted[n - 1])
			continue;
		if (next->size > POP3_AHEAD_OCTETS - octets)
			break;
		octets += next->size;
		a->e[a->count].num = n;
		a->e[a->count].msg = *next;
		a->count++;
	}
	/* held in memory like message content in SMTP sessions: only while the budget has room */
	uint64_t charge = 2 * octets; /* CRLF and byte-stuffing may double it */
	if (a->count == 0 || !budget_take(&s->srv->memory, charge)) {
		free(a);
		return NULL;
	}
	a->charged = charge;
	return a;
}

/* A batch read ahead while the client takes the one before it, so that reading and sending overlap. */
struct pop3_ahead_job {
	struct server *srv;
	uint64_t conn_id;
	unsigned generation;     /* the session's ahead_generation when it was planned */
	struct pop3_lock *lock;  /* a reference: its path names the maildir */
	struct pop3_ahead *a;
	char buf[POP3_RETR_READ];
};

static void ahead_job_work(void *arg)
{
	struct pop3_ahead_job *j = arg;
	ahead_work(j->a, j->lock->path, j->buf);
}

static void ahead_drop(struct pop3_session *s)
{
	ahead_free(s->srv, s->ahead);
	ahead_free(s->srv, s->ahead_next);
	s->ahead = s->ahead_next = NULL;
	s->ahead_generation++; /* a batch still being read is dropped when it arrives */
	s->ahead_pending = false;
	s->ahead_wait = 0;
}

static bool ahead_serve(struct pop3_session *s, uint32_t num);
static bool retr_start(struct pop3_session *s, uint32_t num, bool top, uint32_t lines);

static void ahead_job_done(void *arg)
{
	struct pop3_ahead_job *j = arg;
	struct pop3_session *s = pop3_session_find(j->srv, j->conn_id);

	if (s == NULL || j->generation != s->ahead_generation || j->a->count == 0) {
		if (s != NULL && j->generation == s->ahead_generation)
			s->ahead_pending = false;
		uint32_t wait = s != NULL && j->generation == s->ahead_generation ? s->ahead_wait : 0;
		ahead_free(j->srv, j->a);
		pop3_lock_unref(j->srv, j->lock);
		free(j);
		if (wait != 0) { /* the client asked for one that could not be read ahead: read it itself */
			s->ahead_wait = 0;
			if (!retr_start(s, wait, false, 0))
				pop3_session_resume(s);
		}
		return;
	}
	s->ahead_pending = false;
	s->ahead_next = j->a;
	pop3_lock_unref(j->srv, j->lock);
	free(j);
	if (s->ahead_wait != 0) {
		uint32_t num = s->ahead_wait;
		s->ahead_wait = 0;
		if (ahead_serve(s, num) || !retr_start(s, num, false, 0))
			pop3_session_resume(s);
	}
}

/* Starts reading the batch after the current one, unless one is on its way or ready. */
static void ahead_refill(struct pop3_session *s)
{
	const struct pop3_ahead *cur = s->ahead;
	if (s->ahead_pending || s->ahead_next != NULL || cur == NULL)
		return;
	struct pop3_ahead *a = ahead_plan(s, cur->e[cur->count - 1].num);
	if (a == NULL)
		return;
	struct pop3_ahead_job *j = malloc(sizeof(*j));
	if (j == NULL) {
		ahead_free(s->srv, a);
		return;
	}
	j->srv = s->srv;
	j->conn_id = s->conn.id;
	j->generation = s->ahead_generation;
	j->lock = pop3_lock_ref(s->lock);
	j->a = a;
	s->ahead_pending = true;
	s->ahead_pending_first = a->e[0].num;
	worker_pool_submit(s->srv->workers, ahead_job_work, ahead_job_done, j);
}

/* Sends the response to RETR num from what was read ahead; false when it is not there. */
static bool ahead_serve(struct pop3_session *s, uint32_t num)
{
	struct pop3_ahead *a = s->ahead;

	if ((a == NULL || a->next == a->count) && s->ahead_next != NULL) {
		ahead_free(s->srv, a); /* used up: the next batch takes over */
		a = s->ahead = s->ahead_next;
		s->ahead_next = NULL;
	}
	if (a == NULL || a->next >= a->count || a->e[a->next].num != num)
		return false;
	struct evbuffer *resp = a->e[a->next].resp;
	size_t sent = evbuffer_get_length(resp);
	evbuffer_add_buffer(pop3_session_out(s), resp);
	log_info("session=%llx event=retr msg=%u uid=%s size=%llu sent=%zu", (unsigned long long)s->conn.id, num,
		 a->e[a->next].msg.uid, (unsigned long long)a->e[a->next].msg.size, sent);
	s->retrieved++;
	s->last_retr = num;
	a->next++;
	if (2 * (a->count - a->next) <= a->count)
		ahead_refill(s); /* half taken: the next batch is read while the rest goes out */
	return true;
}

/* RETR num from the read-ahead: answered now, or (when its batch is still being read) as soon as it
 * is in. false when it was not read ahead: the caller reads it. */
static bool ahead_take(struct pop3_session *s, uint32_t num)
{
	if (s->ahead == NULL && s->ahead_next == NULL && !s->ahead_pending)
		return false;
	if (ahead_serve(s, num))
		return true;
	if (s->ahead_pending && s->ahead_pending_first == num &&
	    (s->ahead == NULL || s->ahead->next == s->ahead->count)) {
		/* RFC 2449 §6.6: later commands wait until this response is complete */
		s->ahead_wait = num;
		pop3_session_wait(s);
		return true;
	}
	ahead_drop(s); /* the client went another way */
	return false;
}

/* Answers RETR/TOP num; true when the session now waits for the answer (a worker reads it). */
static bool retr_start(struct pop3_session *s, uint32_t num, bool top, uint32_t lines)
{
	const struct maildir_msg *m = msg_get(s, num);
	if (m == NULL)
		return false;
	if (!top && ahead_take(s, num))
		return s->ahead_wait != 0;
	struct pop3_retr *r = calloc(1, sizeof(*r));
	if (r != NULL) {
		r->out = evbuffer_new();
		r->buf = malloc(POP3_RETR_READ);
	}
	if (r == NULL || r->out == NULL || r->buf == NULL) {
		if (r != NULL) {
			if (r->out != NULL)
				evbuffer_free(r->out);
			free(r->buf);
			free(r);
		}
		reply(s, false, "[SYS/TEMP] Out of memory, try again later");
		return false;
	}
	r->srv = s->srv;
	r->conn_id = s->conn.id;
	r->lock = pop3_lock_ref(s->lock);
	r->msg = *m;
	r->num = num;
	r->top = top;
	r->lines = lines;
	r->fd = -1;
	pop3_stuff_init(&r->st, top, lines);
	if (!top) {
		/* a second RETR in order: the messages after this small one are read with it */
		if (num == s->last_retr + 1 && m->size <= POP3_RETR_PIECE)
			r->ahead = ahead_plan(s, num);
		s->last_retr = num;
	}
	/* RFC 2449 §6.6: later commands wait until this response is complete */
	pop3_session_wait(s);
	s->retr = r;
	retr_submit(s);
	return true;
}

static void cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	retr_start(s, cmd->num[0], false, 0);
}

static void cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	retr_start(s, cmd->num[0], true, cmd->num[1]);
}

void pop3_cmd_free(struct pop3_session *s)
{
	/* a RETR parked between two pieces; one on a worker is freed by retr_done */
	if (s->retr != NULL) {
		retr_free(s->retr);
		s->retr = NULL;
	}
	ahead_drop(s);
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
		pop3_session_close(s, "quit");
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
		pop3_session_close(s, "quit");
		return;
	}
	struct update_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		reply(s, false, "[SYS/TEMP] Out of memory; no messages removed");
		pop3_session_close(s, "quit");
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
	pop3_session_wait(s);
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

/* session.h — one POP3 server session (RFC 1939): the connection, its state, the maildrop it has
 * locked, and the mailbox lock set shared by all POP3 sessions (struct server's pop3_locks). */
#ifndef MAILWERK_POP3_SESSION_H
#define MAILWERK_POP3_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "mailbox/maildir.h"
#include "net/line_session.h"
#include "net/listener.h"
#include "pop3/parse.h"
#include "server/server.h"
#include "sasl/sasl.h"
#include "util/addr.h"

struct evbuffer;
struct server_listener;

/* RFC 1939 §3. UPDATE is entered by QUIT in TRANSACTION and lasts while the deletions run. */
enum pop3_state {
	POP3_STATE_AUTHORIZATION = 0,
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE,
};
const char *pop3_state_str(enum pop3_state s);

/* What the next line from the client is. */
enum pop3_input {
	POP3_INPUT_COMMAND = 0,
	POP3_INPUT_SASL, /* an AUTH continuation line (RFC 5034 §4) */
};

/* One mailbox held by one session: RFC 1939 §4's exclusive-access lock. Kept in the server's list
 * (srv->pop3_locks); reference-counted, because a worker job that reads or prunes the maildir keeps
 * the lock (and its path) until it ends, even when its session has gone. Loop thread only, except
 * that a worker may read path, and the job that opens the maildrop sets fd (pop3_lock_file). */
struct pop3_lock {
	struct pop3_lock *next;
	unsigned refs;
	int fd;      /* the maildir, flock(2)ed; -1: none (not locked yet, or no maildir yet) */
	char path[]; /* the maildir: it names the mailbox, whatever address was typed */
};

enum pop3_lock_result {
	POP3_LOCK_OK = 0,
	POP3_LOCK_IN_USE,
	POP3_LOCK_NO_MEMORY,
};
enum pop3_lock_result pop3_lock_take(struct server *srv, const char *path, struct pop3_lock **lock_r);
struct pop3_lock *pop3_lock_ref(struct pop3_lock *l);
/* Drops one reference; the last one frees the mailbox for the next session. */
void pop3_lock_unref(struct server *srv, struct pop3_lock *l);
/* Worker thread, before the maildrop is read: the same lock for every process, as a flock(2) on the
 * maildir, since the list is one process's and during an upgrade the worker that drains may still
 * hold the mailbox. false when another process holds it; a maildir that does not exist yet has
 * nothing to share and is not locked. */
bool pop3_lock_file(struct pop3_lock *l);

struct pop3_retr;  /* a RETR/TOP in progress (retr.c) */
struct pop3_ahead; /* messages read ahead (retr.c) */

struct pop3_session {
	struct server_conn conn; /* id, registry, closing; who the client is */
	struct server *srv;
	struct conf *conf; /* the configuration this session started with (a reference) */
	struct line_session ls; /* the connection: reading, waiting, TLS, closing */
	enum pop3_state state;
	enum pop3_input input;
	unsigned errors;
	/* this session's limits: the configuration's, shrunk when it started while the server was
	 * overloaded (util/overload.h) */
	unsigned idle_timeout, max_errors;
	char user[SASL_FIELD_MAX + 1];          /* from USER, waiting for PASS; "" when none */
	char account[ADDR_TEXT_MAX + 1];        /* logged in as (the stored address); "" before */
	/* TRANSACTION: the maildrop as fixed at login (RFC 1939 §4) */
	struct pop3_lock *lock;
	struct maildir_msg *msgs;
	bool *deleted;     /* marked by DELE, per message */
	size_t msg_count;
	unsigned retrieved; /* RETRs and TOPs answered, for the log */
	struct pop3_retr *retr; /* a RETR/TOP between two chunks (NULL while a worker has it) */
	/* RETR read-ahead (retr.c): the batch being taken, the next one once read, whether it is being
	 * read (and from which message), the RETR waiting for it (0: none) */
	struct pop3_ahead *ahead, *ahead_next;
	bool ahead_pending;
	uint32_t ahead_pending_first;
	uint32_t ahead_wait;
	unsigned ahead_generation; /* changes when the read-ahead is dropped */
	uint32_t last_retr;        /* the message number of the last RETR, 0 before */
};

/* What pop3 and pop3s listeners start. */
extern const struct server_protocol pop3_protocol;
/* The live session with this id, or NULL when it has gone or is closing. */
struct pop3_session *pop3_session_find(struct server *srv, uint64_t id);

/* For cmd.c (output, waiting and closing are line_session_out, _wait and _close on s->ls; a close
 * other than QUIT deletes nothing, RFC 1939 §6): */
void pop3_session_resume(struct pop3_session *s);
/* Counts a client error; closes the session at pop3_max_errors. */
void pop3_session_error(struct pop3_session *s);
void pop3_session_stls(struct pop3_session *s);
/* Frees the maildrop and gives up the mailbox lock. */
void pop3_session_drop_release(struct pop3_session *s);
/* Output low enough to add the next piece of a RETR (retr.c resumes it from the write callback). */
bool pop3_session_output_low(struct pop3_session *s);

/* cmd.c */
void pop3_cmd_greet(struct pop3_session *s);
void pop3_cmd_dispatch(struct pop3_session *s, const char *line, size_t len);
void pop3_cmd_sasl_line(struct pop3_session *s, const char *line, size_t len);

#endif

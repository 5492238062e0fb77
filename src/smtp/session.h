/* session.h — one SMTP server session (RFC 5321): the connection, its state and its transaction. */
#ifndef MAILWERK_SMTP_SESSION_H
#define MAILWERK_SMTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "net/line_session.h"
#include "net/listener.h"
#include "server/server.h"
#include "smtp/data.h"
#include "smtp/parse.h"
#include "sasl/sasl.h"
#include "util/minrate.h"

struct event;
struct evbuffer;
struct server;
struct server_listener;
struct smtp_checks;
struct queue_spool;

/* Where the session is in the dialogue; the command table lists which states allow each verb. */
enum smtp_state {
	SMTP_STATE_INIT = 0, /* greeted, no EHLO/HELO yet */
	SMTP_STATE_READY,    /* EHLO/HELO done, no transaction */
	SMTP_STATE_MAIL,     /* MAIL accepted */
	SMTP_STATE_RCPT,     /* at least one RCPT accepted */
	SMTP_STATE_BDAT,     /* at least one BDAT chunk accepted (RFC 3030: no DATA now) */
};
const char *smtp_state_str(enum smtp_state s);

/* What the bytes that arrive next are. */
enum smtp_input {
	SMTP_INPUT_COMMAND = 0,
	SMTP_INPUT_DATA,    /* after 354, until "." */
	SMTP_INPUT_CHUNK,   /* BDAT octets still to come */
	SMTP_INPUT_SASL,    /* an AUTH continuation line */
};

/* The transaction, separate from the session: RSET/EHLO/end of data clear it. */
struct smtp_tx {
	struct smtp_mail_args mail;
	char **rcpts;
	unsigned rcpt_count;
	/* RFC 3461 per recipient, beside rcpts: NOTIFY bits (0: not given) and ORCPT ("type;address"
	 * or NULL); dsn_given when any RCPT carried either */
	unsigned *rcpt_notify;
	char **rcpt_orcpt;
	bool dsn_given;
	struct evbuffer *body;
	struct smtp_data data;
	struct smtp_data_spill spill; /* where a large body goes on: spool below */
	struct queue_spool *spool;    /* NULL until the body passes SMTP_DATA_MEMORY_MAX */
	bool chunked;          /* the content came by BDAT (RFC 3030) */
	uint64_t chunk_left;   /* BDAT octets still to read */
	bool chunk_last;
	int chunk_reject_code; /* BDAT refused: consume the octets, then answer this (0: none) */
	const char *chunk_reject_enh;
	const char *chunk_reject_text;
	unsigned feedback_rcpts; /* recipients that take reports (smtp/feedback.h); all or none */
	struct minrate rate;     /* [smtp] min_data_rate, from the DATA or first BDAT to the end */
	uint64_t content_octets; /* octets of DATA/BDAT content read so far, for rate */
};

struct smtp_session {
	struct server_conn conn; /* id, registry, closing; who the client is */
	struct server *srv;
	struct conf *conf; /* the configuration this session started with (a reference) */
	struct line_session ls; /* the connection: reading, waiting, TLS, closing */
	enum smtp_state state;
	enum smtp_input input;
	bool esmtp;
	char helo[256];
	char auth_user[SASL_FIELD_MAX + 1]; /* "" when not authenticated */
	unsigned errors;
	unsigned messages;
	/* this session's limits: the configuration's, shrunk when it started while the server was
	 * overloaded (util/overload.h) */
	unsigned command_timeout, data_timeout, max_errors;
	uint64_t memory_held; /* charged to srv->memory for a message being checked, signed or stored */
	/* AUTH in progress */
	enum sasl_mech sasl_mech;
	char sasl_user[SASL_FIELD_MAX + 1];
	struct smtp_tx tx;
	struct smtp_checks *checks; /* SPF/DKIM/DMARC of the message just received, while they run */
};

/* What smtp, submission and submissions listeners start. */
extern const struct server_protocol smtp_protocol;
/* The live session with this id, or NULL when it has gone or is closing. */
struct smtp_session *smtp_session_find(struct server *srv, uint64_t id);

/* For cmd.c (output, waiting and closing are line_session_out, _wait and _close on s->ls): */
void smtp_session_resume(struct smtp_session *s);
void smtp_session_error(struct smtp_session *s);
void smtp_tx_reset(struct smtp_session *s);
/* Message content follows (DATA's 354, a BDAT chunk): its timeouts and rate floor apply. */
void smtp_session_content_begin(struct smtp_session *s);
void smtp_session_starttls(struct smtp_session *s);
bool smtp_session_tls_info(struct smtp_session *s, const char **version_r, const char **cipher_r);

/* cmd.c: runs one command line / one SASL line / the end of the data. */
void smtp_cmd_dispatch(struct smtp_session *s, const char *line, size_t len);
void smtp_cmd_sasl_line(struct smtp_session *s, const char *line, size_t len);
void smtp_cmd_data_end(struct smtp_session *s);
void smtp_cmd_greet(struct smtp_session *s);

#endif

/* client_int.h — what the outbound SMTP client's files share (client.c: the dialogue; client_tls.c:
 * STARTTLS, implicit TLS and the certificate checks), and no one else: the client's state and the
 * few helpers both sides call. */
#ifndef MAILWERK_DELIVERY_CLIENT_INT_H
#define MAILWERK_DELIVERY_CLIENT_INT_H

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "delivery/client.h"
#include "delivery/client_parse.h"

/* Input kept while we are not reading replies (during the content): then reading stops. */
#define CLIENT_INPUT_MAX (64 * 1024)
#define CLIENT_HOST_MAX 256
#define CLIENT_ERROR_MAX (DELIVERY_REPLY_TEXT_MAX + 384)

enum client_state {
	CLIENT_STATE_CONNECTING = 0, /* TCP connect under way */
	CLIENT_STATE_TLS,            /* TLS handshake under way (implicit or after STARTTLS) */
	CLIENT_STATE_REPLIES,        /* waiting for the replies in the pending queue */
	CLIENT_STATE_BODY,           /* streaming the content after 354 */
	CLIENT_STATE_NEXT,           /* a next job was given: its transaction starts from the loop */
	CLIENT_STATE_IDLE,           /* parked between jobs: waiting for delivery_client_send */
	CLIENT_STATE_QUIT,           /* QUIT sent; any reply, EOF or the short timeout ends it */
	CLIENT_STATE_CLOSED,         /* done; freed once no callback of ours is running */
};

enum client_cmd {
	CLIENT_CMD_GREETING = 0,
	CLIENT_CMD_EHLO,
	CLIENT_CMD_HELO,
	CLIENT_CMD_STARTTLS,
	CLIENT_CMD_AUTH,
	CLIENT_CMD_RSET,
	CLIENT_CMD_MAIL,
	CLIENT_CMD_RCPT,
	CLIENT_CMD_DATA,
	CLIENT_CMD_DOT,
	CLIENT_CMD_QUIT,
};

/* Per recipient, within one transaction. */
enum client_rcpt_state {
	CLIENT_RCPT_PENDING = 0, /* no reply yet */
	CLIENT_RCPT_ACCEPTED,    /* RCPT got 2xx; the end of data decides */
	CLIENT_RCPT_FINAL,       /* result set */
};

struct client_pending {
	enum client_cmd cmd;
	size_t arg; /* RCPT: the recipient's index; DOT: 1 for the lone "." after an unwanted 354 */
};

struct delivery_client {
	struct delivery_job job; /* the current job (a shallow copy: its pointers are the caller's) */
	struct delivery_timeouts to; /* the job's, defaults filled in */
	struct event_base *base;
	SSL_CTX *tls_ctx;
	enum delivery_tls_policy tls_policy;
	char host[CLIENT_HOST_MAX]; /* printable, no trailing dot */
	char ip[INET6_ADDRSTRLEN];
	char log_id[64];
	struct bufferevent *bev;
	struct event *timer;
	enum client_state state;
	unsigned depth;  /* callbacks of ours on the stack */
	bool in_done;    /* the done callback is running */
	bool next_given; /* ... and it called delivery_client_send */
	bool park_given; /* ... or delivery_client_park */
	unsigned idle_ms;
	delivery_client_idle_fn *idle_fn; /* while parked */
	void *idle_arg;
	bool conn_ok;    /* the connection is up and in step: QUIT may be sent */

	/* session */
	struct delivery_reply reply;
	struct delivery_ehlo ehlo;
	bool esmtp;
	bool helo_tried;
	bool starttls_refused;
	bool tls;        /* the bufferevent is a TLS one (the handshake may still be under way) */
	bool tls_up;     /* the handshake completed */
	bool tls_verified;
	char dane_match[64];
	long tls_verify_error; /* the X509 verify result of a handshake that failed verification */
	char local_ip[INET6_ADDRSTRLEN + 1]; /* our end of the connection, for TLS-RPT */
	char tls_version[16];
	char tls_cipher[64];
	bool authenticated;
	unsigned auth_step;
	unsigned auth_mech;
	bool ready;      /* greeting, EHLO, TLS and AUTH as the policy wants: MAIL may follow */
	bool need_rset;  /* a transaction is open on the server (MAIL accepted, no end of data) */
	unsigned messages;

	/* pending replies */
	struct client_pending *pending;
	size_t pending_cap, pending_head, pending_tail;

	/* transaction */
	struct delivery_rcpt_result *rcpts;
	enum client_rcpt_state *rcpt_state;
	struct delivery_rcpt_result *old_rcpts; /* the last job's, until its done callback returns */
	enum client_rcpt_state *old_rcpt_state;
	size_t rcpt_next;  /* without PIPELINING: the next RCPT to send */
	size_t n_accepted;
	bool pipelining;
	bool mail_ok;
	bool utf8;
	bool eight_bit;
	uint64_t size;
	struct delivery_dot dot;
	size_t msg_off;
	enum delivery_error error;
	bool next_mx;
	char error_text[CLIENT_ERROR_MAX];
};

/* client.c */
struct timeval client_tv(unsigned ms);
void client_timer_arm(struct delivery_client *c, unsigned ms);
/* Copies s as printable ASCII (anything else '?'), at most size - 1 octets. */
void client_copy_safe(char *dst, size_t size, const char *s);
/* Queues one command line and the reply it is owed. */
void client_send(struct delivery_client *c, enum client_cmd cmd, size_t arg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A failure that ends the job: every open recipient gets res/code/enh, the job is reported. When the
 * connection is broken (or out of step) it is closed without QUIT. */
void client_fail(struct delivery_client *c, enum delivery_error e, bool conn_broken, int code, const char *enh,
		 const char *why);
void client_read_cb(struct bufferevent *bev, void *arg);
void client_write_cb(struct bufferevent *bev, void *arg);
void client_event_cb(struct bufferevent *bev, short what, void *arg);

/* client_tls.c */
/* Whether the certificate must verify (PKIX or DANE) for the job to go on. */
bool client_tls_verify_wanted(const struct delivery_client *c);
/* Whether no TLS means no delivery to this host. */
bool client_tls_required(const struct delivery_client *c);
/* Moves the socket from the plain bufferevent to a TLS one; the handshake starts at once. */
void client_tls_begin(struct delivery_client *c);
/* The handshake completed: what it gave is kept and logged, and the dialogue goes on in TLS. */
void client_tls_done(struct delivery_client *c);
/* What went wrong in a handshake, for the error text. */
void client_tls_why(struct delivery_client *c, const char *what, char *buf, size_t size);

#endif

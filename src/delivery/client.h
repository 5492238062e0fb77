/* client.h — the outbound SMTP client (RFC 5321, with RFC 1870 SIZE, RFC 2920 PIPELINING, RFC 3207
 * STARTTLS, RFC 4954 AUTH, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 8314 implicit TLS): one
 * transaction per (destination, message), every recipient of that destination in one envelope.
 *
 * The pure pieces (replies, EHLO keywords, the DATA encoder) are in client_parse.h; this is the
 * asynchronous client: connect, greeting, EHLO/HELO, STARTTLS, AUTH, the transaction, QUIT, with a
 * timeout on every wait, and one done callback with per-recipient results.
 *
 * Loop thread only. The process must ignore SIGPIPE (server.c does): a peer that hangs up while we
 * write is then an error return, reported as DELIVERY_ERR_LOST. */
#ifndef MAILWERK_DELIVERY_CLIENT_H
#define MAILWERK_DELIVERY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "delivery/client_parse.h"
#include "net/dns_parse.h"
#include "util/result.h"

struct event_base;
struct ssl_ctx_st; /* SSL_CTX */

/* ---------------------------------------------------------------------------------------------
 * The client
 * ------------------------------------------------------------------------------------------- */

enum delivery_tls_policy {
	DELIVERY_TLS_NONE = 0,      /* never STARTTLS (for tests and for policy "retry without TLS") */
	DELIVERY_TLS_OPPORTUNISTIC, /* STARTTLS when offered, certificate not required to verify */
	DELIVERY_TLS_REQUIRED,      /* STARTTLS must be offered and succeed; certificate verified against host */
	DELIVERY_TLS_IMPLICIT,      /* TLS from the first octet (RFC 8314 §3, port 465); verified against host */
	DELIVERY_TLS_ENCRYPT,       /* STARTTLS must be offered and succeed; certificate not checked */
	DELIVERY_TLS_DANE,          /* STARTTLS must be offered and succeed; certificate matched against the
				     * job's TLSA records (RFC 7672 §3) */
};
const char *delivery_tls_policy_str(enum delivery_tls_policy p);

/* Timeouts in milliseconds; 0 takes the default, which is RFC 5321 §4.5.3.2's where it names one
 * (the server takes them from [delivery] *_timeout). Each reply has one deadline, from when its
 * command is queued (the greeting: from the connect) to its last line: octets or lines that trickle
 * in never move it. The data block is the exception, timed per write that makes no progress
 * (§4.5.3.2.5: "each TCP SEND call"). */
struct delivery_timeouts {
	unsigned connect_ms;    /* TCP connect: 30 s */
	unsigned tls_ms;        /* a TLS handshake: 5 min */
	unsigned greeting_ms;   /* §4.5.3.2.1 initial 220: 5 min */
	unsigned command_ms;    /* EHLO, HELO, STARTTLS, AUTH, RSET: 5 min (§4.5.3.2.7) */
	unsigned mail_ms;       /* §4.5.3.2.2 MAIL: 5 min */
	unsigned rcpt_ms;       /* §4.5.3.2.3 RCPT: 5 min */
	unsigned data_init_ms;  /* §4.5.3.2.4 DATA initiation (the 354): 2 min */
	unsigned data_block_ms; /* §4.5.3.2.5 data block: 3 min */
	unsigned data_end_ms;   /* §4.5.3.2.6 DATA termination (reply to "."): 10 min */
	unsigned quit_ms;       /* the reply to QUIT: 2 s, we do not wait long for it */
};

/* What went wrong at the level of the connection or the whole transaction. */
enum delivery_error {
	DELIVERY_ERR_NONE = 0,
	DELIVERY_ERR_CONNECT,         /* TCP connect failed or timed out */
	DELIVERY_ERR_GREETING,        /* the greeting was not 2xx */
	DELIVERY_ERR_HELO,            /* EHLO and HELO both refused, or EHLO got a 4xx */
	DELIVERY_ERR_TLS_UNAVAILABLE, /* TLS required, but STARTTLS not offered or refused */
	DELIVERY_ERR_TLS_HANDSHAKE,   /* the TLS handshake failed (incl. verification): may retry without TLS if allowed */
	DELIVERY_ERR_AUTH,            /* AUTH needed but impossible (no TLS, no usable mechanism) or refused */
	DELIVERY_ERR_TIMEOUT,         /* a reply or a data block took too long */
	DELIVERY_ERR_LOST,            /* the connection closed or failed, or the server said 421 */
	DELIVERY_ERR_PROTOCOL,        /* a malformed or unexpected reply */
	DELIVERY_ERR_SIZE,            /* over the server's SIZE: nothing sent (5.3.4) */
	DELIVERY_ERR_SMTPUTF8,        /* needs SMTPUTF8, server lacks it (5.6.7) */
	DELIVERY_ERR_MAIL,            /* MAIL FROM refused: every recipient has its reply */
	DELIVERY_ERR_DATA,            /* DATA or the end of data refused: every accepted recipient has its reply */
	DELIVERY_ERR_REQUIRETLS,      /* a REQUIRETLS message, and the server does not offer REQUIRETLS (4.7.30) */
};
const char *delivery_error_str(enum delivery_error e);

struct delivery_client;
struct delivery_result;

/* Called once per job. The result and everything it points to are valid only during the call.
 * During the call (and only then), when r->reusable, delivery_client_send() may start the next
 * message on the same connection; delivery_client_cancel() may drop the connection at once.
 * Otherwise, once the callback returns, the client sends QUIT, waits quit_ms at most, and frees
 * itself: the pointer is not to be used after the callback. */
typedef void delivery_client_done_fn(struct delivery_client *c, const struct delivery_result *r, void *arg);

struct delivery_job {
	/* connection: used by delivery_client_start, ignored by delivery_client_send */
	struct event_base *base;
	struct ssl_ctx_st *tls_ctx;       /* SSL_CTX for clients; may be NULL only with DELIVERY_TLS_NONE */
	const struct sockaddr *addr;      /* where to connect (the caller resolved it) */
	socklen_t addr_len;
	const char *host;                 /* the MX / smarthost name: SNI and verification; for messages */
	const char *helo_name;            /* our host name for EHLO/HELO */
	enum delivery_tls_policy tls;
	/* DELIVERY_TLS_DANE: the usable TLSA records, and the names a DANE-TA(2) leaf may carry (the
	 * first: the TLSA base domain); valid until the done callback */
	const struct dns_tlsa *dane_tlsa;
	size_t dane_tlsa_count;
	const char *const *dane_names;
	size_t dane_name_count;
	const char *auth_user;            /* NULL: no AUTH. Only over TLS; PLAIN, else LOGIN (RFC 4954) */
	const char *auth_pass;
	/* the message: all pointers must stay valid until the done callback; nothing is copied whole */
	const char *sender;               /* reverse-path without "<>"; "" is the null sender */
	const char *const *rcpts;         /* forward-paths without "<>", all for this destination */
	size_t rcpt_count;
	const unsigned char *msg;         /* the content as stored; normalised and stuffed while sent */
	size_t msg_len;
	bool needs_smtputf8;              /* RFC 6531 (also set when an address has 8-bit octets) */
	bool has_8bit;                    /* RFC 6152 (also found by looking at msg) */
	/* RFC 3461, passed on only to a server that offers DSN (§5.2.1); all optional */
	int dsn_ret;                      /* enum queue_dsn_ret (queue.h) */
	const char *dsn_envid;            /* decoded; NULL: none */
	const unsigned *rcpt_notify;      /* NULL, or per rcpt enum queue_dsn_notify bits (queue.h; 0: none) */
	const char *const *rcpt_orcpt;    /* NULL, or per rcpt "type;address" decoded or NULL */
	/* RFC 8689 §4.2.1: REQUIRETLS goes on MAIL when the server offers it. Whether a message may go
	 * to a server that does not is the outbound TLS policy's decision (tls_decide.h), not the
	 * client's: client_tx_begin() is where such a refusal would stop the transaction. */
	bool requiretls;
	struct delivery_timeouts timeouts;
	const char *log_id;               /* e.g. the queue id, for log lines; may be NULL */
	delivery_client_done_fn *done;
	void *done_arg;
};

struct delivery_rcpt_result {
	const char *rcpt;   /* the job's pointer */
	enum result result; /* OK: the server took it; TEMPFAIL: try again later / next MX; PERMFAIL: bounce */
	int code;           /* the reply code, ours for failures found here (e.g. 451 for a lost connection) */
	char enh[DELIVERY_ENH_MAX];
	char text[DELIVERY_REPLY_TEXT_MAX + 128]; /* "550 5.1.1 text (in reply to RCPT TO)": printable ASCII */
	bool remote;        /* the reply came from the server (false: we decided) */
};

struct delivery_result {
	enum delivery_error error;   /* DELIVERY_ERR_NONE when the transaction ran to its end */
	bool next_mx;                /* a connection-level failure: TEMPFAIL recipients may go to the next MX */
	const char *error_text;      /* printable ASCII: what went wrong and which host said it; "" if nothing */
	const struct delivery_rcpt_result *rcpts; /* rcpt_count entries, in the job's order */
	size_t rcpt_count;
	unsigned n_ok, n_tempfail, n_permfail;
	/* the connection */
	bool esmtp;                  /* EHLO (false: HELO) */
	bool pipelining;             /* the transaction used PIPELINING */
	bool tls;
	const char *tls_version;     /* "TLSv1.3"; "" without TLS */
	const char *tls_cipher;
	bool tls_verified;           /* the certificate verified against host (chain and name), or by DANE */
	const char *dane_match;      /* DANE: the TLSA record that matched, "3 1 1 ab12..."; "" otherwise */
	long tls_verify_error;       /* a handshake that failed verification: OpenSSL's X509_V_ERR_*; else 0 */
	const char *local_ip;        /* our address on the connection; "" before the connect */
	bool authenticated;
	bool dsn;                    /* the server offers DSN: the RFC 3461 parameters went with MAIL/RCPT */
	bool requiretls_offered;     /* the server offers REQUIRETLS (RFC 8689) */
	unsigned messages;           /* transactions completed on this connection, this one included */
	bool reusable;               /* the session is ready for another MAIL: delivery_client_send may follow */
};

/* Validates the job, connects and runs it. NULL with a sentence in error_r when the job is unusable
 * (the done callback is then never called). */
struct delivery_client *delivery_client_start(const struct delivery_job *job, char *error_r, size_t error_size);
/* From the done callback when r->reusable, or on a parked connection: the next message on the same connection (same
 * destination; the connection fields of job are ignored). false with a sentence in error_r when the
 * job is unusable: the client then quits as if this had not been called. */
bool delivery_client_send(struct delivery_client *c, const struct delivery_job *job, char *error_r, size_t error_size);
/* Called once when a parked connection goes: its idle time ran out (the client then sends QUIT), or
 * the server closed it or spoke out of turn. After the call the client frees itself. */
typedef void delivery_client_idle_fn(struct delivery_client *c, void *arg);
/* From the done callback only, when r->reusable: keeps the connection open without a job for at
 * most idle_ms, for delivery_client_send() to use later, from anywhere on the loop thread (the
 * connection fields of its job are ignored). gone is called if the connection goes first. */
bool delivery_client_park(struct delivery_client *c, unsigned idle_ms, delivery_client_idle_fn *gone, void *arg);
/* Drops the connection without QUIT and without calling the done callback; frees the client. Also
 * allowed inside the done callback. */
void delivery_client_cancel(struct delivery_client *c);

/* A client SSL_CTX: TLS 1.2 minimum (RFC 8996), the system's trust store. NULL on failure. */
struct ssl_ctx_st *delivery_client_tls_ctx_new(char *error_r, size_t error_size);

#endif

/* line_session.h — the I/O skeleton every line protocol shares (SMTP and POP3 today, IMAP next):
 * the bufferevent and its callbacks, reading CRLF lines under a hard limit, not answering faster
 * than the client reads, pausing while an asynchronous step runs, the client's EOF, the idle
 * timeout, the line and session deadlines, the STARTTLS/STLS hand-over, and closing with a reason and freeing at a safe point.
 * A protocol embeds a struct line_session in its session and keeps only its states, its command
 * table and its rules; it finds its session by id (the server's registry), never by a pointer
 * kept across a wait (DESIGN.md §4). Loop thread only. */
#ifndef MAILWERK_NET_LINE_SESSION_H
#define MAILWERK_NET_LINE_SESSION_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct event;
struct event_base;
struct evbuffer;
struct line_session;

/* Which limit a session ran into. */
enum line_timeout {
	LINE_TIMEOUT_IDLE = 0, /* nothing came or went for line_session_set_timeout's seconds */
	LINE_TIMEOUT_LINE,     /* a line did not arrive whole within line_session_set_line_timeout's */
	LINE_TIMEOUT_SESSION,  /* the session outlived line_session_set_lifetime's */
};
const char *line_timeout_str(enum line_timeout t);

/* What the protocol does at each turn of the skeleton. */
struct line_session_ops {
	/* Handles one unit of buffered input (a line, a piece of data); false when it needs more
	 * input. Called only while the session is neither waiting nor closing, and the output is
	 * below the high mark. */
	bool (*step)(struct line_session *ls);
	/* The output drained to the low mark: true when the protocol used the moment (the next piece
	 * of a long answer, say); false (or NULL) to go on reading the client's input. */
	bool (*drained)(struct line_session *ls);
	/* A timer fired on a session that is not closing (which one: why): say so and close (or
	 * abort). */
	void (*timeout)(struct line_session *ls, enum line_timeout why);
	/* The session has just started closing, once, with the reason: log it, release what others
	 * wait for. Nothing may be written from here. */
	void (*closed)(struct line_session *ls, const char *reason);
	/* The STARTTLS/STLS handshake is under way: forget what was learnt in the clear. */
	void (*tls_started)(struct line_session *ls);
	/* Optional: the TLS handshake has completed (implicit TLS, or after STARTTLS/STLS), before any
	 * of the client's data is read. Not called on a closing session. */
	void (*tls_ready)(struct line_session *ls);
	/* Frees the protocol's session; it calls line_session_deinit. Runs from the loop, never from
	 * inside one of the session's own callbacks. */
	void (*destroy)(struct line_session *ls);
};

enum line_read {
	LINE_READ_MORE = 0, /* no whole line yet */
	LINE_READ_OK,       /* a line, without CRLF, NUL-terminated */
	LINE_READ_TOO_LONG, /* over the limit: answer it; the rest of it is dropped unread */
	LINE_READ_DROPPED,  /* the rest of an over-long line was dropped: nothing to answer */
	LINE_READ_BARE_EOL, /* a bare CR or LF: answer and close */
};

struct line_session {
	const struct line_session_ops *ops;
	struct event_base *base;
	struct bufferevent *bev;
	SSL_CTX *starttls_ctx;  /* held from the STARTTLS reply until the handshake is set up */
	size_t output_low;      /* the write callback runs once the output is down to this */
	unsigned timeout;       /* seconds of silence (either way) before ops->timeout */
	unsigned line_timeout;  /* seconds a whole line may take, from when the session is ready for it */
	struct event *line_ev;  /* that deadline (pending while it runs) */
	struct event *life_ev;  /* the session's deadline (line_session_set_lifetime) */
	bool expired;           /* the session's deadline passed while a step was under way */
	bool out_paused;        /* reading paused until the client takes our output (the line deadline too) */
	bool waiting;           /* an asynchronous step is under way: reading is paused */
	bool processing;        /* inside the loop that hands input to ops->step */
	bool closing;           /* on its way out: no more input is read */
	bool freeing;           /* the free is scheduled */
	bool eof;               /* the client has shut down its side; close once its input is answered */
	bool discarding;        /* dropping an over-long line up to its LF */
	bool discard_cr;        /* ... and the last octet dropped was CR */
	bool tls;
	bool tls_pending;       /* STARTTLS answered: the handshake begins once the reply is sent */
	bool tls_up;            /* the TLS handshake has completed */
	bool linger;            /* close with a lingering close (line_session_close_linger) */
	bool lingering;         /* our side is shut; the client's last octets are being dropped */
};

/* A client that never reads cannot grow our memory: input waits while this much output is unsent. */
#define LINE_SESSION_OUTPUT_HIGH 65536

#define LINE_SESSION_OF(ptr, type) ((type *)(void *)((char *)(ptr) - offsetof(type, ls)))

/* Takes over an accepted socket, plain or TLS from the first octet (RFC 8314 §3.3), with ctx for
 * TLS (implicit now or STARTTLS later). -1 when it cannot (fd is closed). The idle timer alone does
 * not bound a handshake (each octet of a trickled ClientHello restarts it): the line deadline, which
 * runs through the handshake, or a deadline of the protocol's own must. A timer that fires
 * mid-handshake aborts the session with reason tls_timeout (session_timeout for the lifetime). */
int line_session_start(struct line_session *ls, const struct line_session_ops *ops, struct event_base *base,
		       SSL_CTX *ctx, int fd, bool implicit_tls, unsigned timeout, size_t output_low);
/* Frees the stream (from ops->destroy). */
void line_session_deinit(struct line_session *ls);

struct evbuffer *line_session_in(struct line_session *ls);
struct evbuffer *line_session_out(struct line_session *ls);
/* The idle timer: seconds without a read (while reading) or a write (while output is pending). */
void line_session_set_timeout(struct line_session *ls, unsigned seconds);
/* The line deadline: a whole line must have arrived within seconds of the moment the session was
 * ready for it (the previous line answered, a step ended), however the octets trickle in, so that
 * a client sending a byte at a time cannot hold the session (Postfix's smtpd_per_record_deadline).
 * It stands still while a step waits and while the client is not taking our output. Restarts now;
 * 0 turns it off (message content, which has its own limits). */
void line_session_set_line_timeout(struct line_session *ls, unsigned seconds);
/* The session's deadline, seconds from now, however busy it is; 0: none. A session in the middle
 * of a step (storing a message, say) finishes the step first. */
void line_session_set_lifetime(struct line_session *ls, unsigned seconds);

/* Reads one line of at most max octets, CRLF included, into buf (max octets). */
enum line_read line_session_read_line(struct line_session *ls, char *buf, size_t max, size_t *len_r);

/* An asynchronous step begins: reading pauses. */
void line_session_wait(struct line_session *ls);
/* The step has ended: reading goes on with what the client already sent (commands pipelined
 * behind the one that waited, RFC 2920 §3 / RFC 2449 §6.6), and the session closes if the client
 * had finished. */
void line_session_resume(struct line_session *ls);
/* Ends the session: the pending output is flushed (for at most a few seconds), then it is freed. */
void line_session_close(struct line_session *ls, const char *reason);
/* The same, for an answer the client may not read before it has sent everything (an error found
 * mid-request): after the flush our side is shut down and the client's input dropped until it
 * closes, for at most a few seconds, so that its unread octets cannot turn into a reset that
 * loses the answer. */
void line_session_close_linger(struct line_session *ls, const char *reason);
/* Ends the session at once, with nothing more sent. */
void line_session_abort(struct line_session *ls, const char *reason);
/* The server stops: true when the protocol should say goodbye and close now; a session in a
 * handshake is aborted, and a waiting one is left to finish its step (false for both). */
bool line_session_shutdown_ready(struct line_session *ls);
/* STARTTLS/STLS: call after queueing the positive reply. The handshake starts once that reply
 * has left. RFC 3207 §4.2 / CVE-2011-0411: whatever the client sent after the command in the
 * clear is dropped, never read as a command. */
void line_session_starttls(struct line_session *ls, SSL_CTX *ctx);

#endif

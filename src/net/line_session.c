/* line_session.c — the I/O skeleton of a line protocol's session (see line_session.h). */
#include "net/line_session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <sys/socket.h>
#include <unistd.h>

#include "net/line.h"
#include "net/stream.h"

/* How long a closing session may take to flush its last reply. */
#define LINE_SESSION_CLOSE_FLUSH_SECONDS 10
/* A lingering close reads (and drops) what the client still sends for at most this long. */
#define LINE_SESSION_LINGER_SECONDS 2

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void line_deadline_cb(evutil_socket_t fd, short what, void *arg);
static void lifetime_cb(evutil_socket_t fd, short what, void *arg);

const char *line_timeout_str(enum line_timeout t)
{
	switch (t) {
	case LINE_TIMEOUT_IDLE: return "idle";
	case LINE_TIMEOUT_LINE: return "line";
	case LINE_TIMEOUT_SESSION: return "session";
	}
	return "?";
}

static void session_set_callbacks(struct line_session *ls)
{
	bufferevent_setcb(ls->bev, session_read_cb, session_write_cb, session_event_cb, ls);
	bufferevent_setwatermark(ls->bev, EV_WRITE, ls->output_low, 0);
	line_session_set_timeout(ls, ls->timeout);
	bufferevent_enable(ls->bev, EV_READ | EV_WRITE);
}

int line_session_start(struct line_session *ls, const struct line_session_ops *ops, struct event_base *base,
		       SSL_CTX *ctx, int fd, bool implicit_tls, unsigned timeout, size_t output_low)
{
	ls->ops = ops;
	ls->base = base;
	ls->output_low = output_low;
	ls->timeout = timeout;
	ls->tls = implicit_tls;
	ls->line_ev = evtimer_new(base, line_deadline_cb, ls);
	ls->life_ev = evtimer_new(base, lifetime_cb, ls);
	if (ls->line_ev == NULL || ls->life_ev == NULL) {
		close(fd);
		line_session_deinit(ls);
		return -1;
	}
	ls->bev = net_stream_accept(base, ctx, fd, implicit_tls);
	if (ls->bev == NULL) {
		line_session_deinit(ls);
		return -1;
	}
	session_set_callbacks(ls);
	return 0;
}

void line_session_deinit(struct line_session *ls)
{
	if (ls->bev != NULL)
		net_stream_free(ls->bev, ls->tls);
	ls->bev = NULL;
	if (ls->line_ev != NULL)
		event_free(ls->line_ev);
	if (ls->life_ev != NULL)
		event_free(ls->life_ev);
	ls->line_ev = ls->life_ev = NULL;
	SSL_CTX_free(ls->starttls_ctx); /* NULL-safe */
	ls->starttls_ctx = NULL;
}

struct evbuffer *line_session_in(struct line_session *ls)
{
	return bufferevent_get_input(ls->bev);
}

struct evbuffer *line_session_out(struct line_session *ls)
{
	return bufferevent_get_output(ls->bev);
}

void line_session_set_timeout(struct line_session *ls, unsigned seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	ls->timeout = seconds;
	bufferevent_set_timeouts(ls->bev, &tv, &tv);
}

/* The session is ready for a line from now on (or not, and the deadline stands still). */
static void line_deadline_restart(struct line_session *ls)
{
	if (ls->line_timeout == 0 || ls->waiting || ls->closing || ls->out_paused) {
		evtimer_del(ls->line_ev);
		return;
	}
	struct timeval tv = {.tv_sec = ls->line_timeout};
	evtimer_add(ls->line_ev, &tv);
}

void line_session_set_line_timeout(struct line_session *ls, unsigned seconds)
{
	ls->line_timeout = seconds;
	line_deadline_restart(ls);
}

void line_session_set_lifetime(struct line_session *ls, unsigned seconds)
{
	if (seconds == 0) {
		evtimer_del(ls->life_ev);
		return;
	}
	struct timeval tv = {.tv_sec = seconds};
	evtimer_add(ls->life_ev, &tv);
}

/* Mid-handshake nothing can be said: the session just ends. */
static void session_timed_out(struct line_session *ls, enum line_timeout why)
{
	if (ls->tls && !ls->tls_up)
		line_session_abort(ls, why == LINE_TIMEOUT_SESSION ? "session_timeout" : "tls_timeout");
	else
		ls->ops->timeout(ls, why);
}

static void line_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct line_session *ls = arg;
	if (ls->closing || ls->waiting)
		return; /* (the deadline is stopped then; a late callback changes nothing) */
	session_timed_out(ls, LINE_TIMEOUT_LINE);
}

static void lifetime_cb(evutil_socket_t fd, short what, void *arg)
{
	struct line_session *ls = arg;
	if (ls->closing)
		return;
	if (ls->waiting) {
		ls->expired = true; /* the step under way ends first (line_session_resume) */
		return;
	}
	session_timed_out(ls, LINE_TIMEOUT_SESSION);
}

enum line_read line_session_read_line(struct line_session *ls, char *buf, size_t max, size_t *len_r)
{
	struct evbuffer *in = line_session_in(ls);

	if (ls->discarding) {
		size_t dropped;
		switch (line_discard(in, &ls->discard_cr, &dropped)) {
		case LINE_DISCARD_MORE: return LINE_READ_MORE;
		case LINE_DISCARD_BARE_EOL: return LINE_READ_BARE_EOL;
		case LINE_DISCARD_DONE: break;
		}
		ls->discarding = false;
		line_deadline_restart(ls); /* the next line's time begins */
		return LINE_READ_DROPPED;
	}
	switch (line_take(in, buf, max, len_r)) {
	case LINE_TAKE_MORE: return LINE_READ_MORE;
	case LINE_TAKE_OK:
		line_deadline_restart(ls); /* the next line's time begins; a step may stop it */
		return LINE_READ_OK;
	case LINE_TAKE_BARE_EOL: return LINE_READ_BARE_EOL;
	case LINE_TAKE_TOO_LONG: break;
	}
	ls->discarding = true;
	ls->discard_cr = false;
	return LINE_READ_TOO_LONG;
}

static void session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct line_session *ls = arg;
	ls->ops->destroy(ls);
}

static void session_free_later(struct line_session *ls)
{
	if (ls->freeing)
		return;
	ls->freeing = true;
	bufferevent_disable(ls->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(ls->bev, NULL, NULL, NULL, NULL);
	/* freed from the loop, never from inside one of this session's own callbacks */
	event_base_once(ls->base, -1, EV_TIMEOUT, session_free_cb, ls, NULL);
}

static bool session_mark_closing(struct line_session *ls, const char *reason)
{
	if (ls->closing)
		return false;
	ls->closing = true;
	evtimer_del(ls->line_ev);
	evtimer_del(ls->life_ev);
	ls->ops->closed(ls, reason);
	return true;
}

void line_session_abort(struct line_session *ls, const char *reason)
{
	session_mark_closing(ls, reason);
	session_free_later(ls);
}

/* The last answer has left: free now, or, lingering, end our side and drop what the client still
 * sends until it closes (or for LINE_SESSION_LINGER_SECONDS). Closing a socket with unread input
 * makes the kernel send a reset, which can destroy the answer before the client has read it
 * (RFC 9112 §9.6). Over TLS the close_notify would need the same care: it is freed at once. */
static void session_flushed(struct line_session *ls)
{
	if (!ls->linger || ls->tls || ls->lingering) {
		session_free_later(ls);
		return;
	}
	ls->lingering = true;
	shutdown(bufferevent_getfd(ls->bev), SHUT_WR);
	struct timeval tv = {.tv_sec = LINE_SESSION_LINGER_SECONDS};
	bufferevent_set_timeouts(ls->bev, &tv, NULL);
	bufferevent_enable(ls->bev, EV_READ);
}

void line_session_close_linger(struct line_session *ls, const char *reason)
{
	ls->linger = true;
	line_session_close(ls, reason);
}

void line_session_close(struct line_session *ls, const char *reason)
{
	if (!session_mark_closing(ls, reason))
		return;
	bufferevent_disable(ls->bev, EV_READ);
	if (evbuffer_get_length(line_session_out(ls)) == 0) {
		session_flushed(ls);
		return;
	}
	/* flush the last reply first; the write callback frees once the output is empty */
	struct timeval tv = {.tv_sec = LINE_SESSION_CLOSE_FLUSH_SECONDS};
	bufferevent_set_timeouts(ls->bev, NULL, &tv);
	bufferevent_setwatermark(ls->bev, EV_WRITE, 0, 0);
}

bool line_session_shutdown_ready(struct line_session *ls)
{
	if (ls->closing)
		return false;
	if ((ls->tls && !ls->tls_up) || ls->tls_pending) {
		/* mid-handshake: nothing can be said, and nothing of the client's to finish */
		line_session_abort(ls, "shutdown");
		return false;
	}
	return !ls->waiting; /* a waiting session is asked again when its step ends */
}

void line_session_wait(struct line_session *ls)
{
	ls->waiting = true;
	bufferevent_disable(ls->bev, EV_READ);
	evtimer_del(ls->line_ev); /* our turn: the client's time stands still */
}

/* Answers whatever is buffered, in turn, until more input is needed, a step waits or the session
 * closes; never faster than the client reads. */
static void session_process(struct line_session *ls)
{
	ls->processing = true;
	while (!ls->waiting && !ls->closing) {
		if (evbuffer_get_length(line_session_out(ls)) > LINE_SESSION_OUTPUT_HIGH) {
			bufferevent_disable(ls->bev, EV_READ); /* the write callback reads again */
			ls->out_paused = true;
			evtimer_del(ls->line_ev); /* the client owes us nothing while it reads */
			break;
		}
		if (!ls->ops->step(ls))
			break;
	}
	ls->processing = false;
}

/* Reads again and answers what is already buffered; closes when the client has finished. */
static void session_continue(struct line_session *ls)
{
	if (ls->out_paused) {
		ls->out_paused = false;
		line_deadline_restart(ls);
	}
	bufferevent_enable(ls->bev, EV_READ);
	session_process(ls);
	if (ls->eof && !ls->waiting && !ls->closing)
		line_session_close(ls, "client_closed");
}

void line_session_resume(struct line_session *ls)
{
	ls->waiting = false;
	if (ls->closing)
		return;
	if (ls->expired) {
		session_timed_out(ls, LINE_TIMEOUT_SESSION);
		return;
	}
	line_deadline_restart(ls); /* the answer is out: the next line's time begins */
	if (ls->processing) {
		/* a step that ended at once, inside the loop above: that loop goes on with the input, so
		 * a client pipelining many requests cannot make this recurse once per request */
		bufferevent_enable(ls->bev, EV_READ);
		return;
	}
	session_continue(ls);
}

void line_session_starttls(struct line_session *ls, SSL_CTX *ctx)
{
	struct evbuffer *in = line_session_in(ls);
	evbuffer_drain(in, evbuffer_get_length(in));
	SSL_CTX_up_ref(ctx); /* a reload may replace the server's context meanwhile */
	SSL_CTX_free(ls->starttls_ctx);
	ls->starttls_ctx = ctx;
	ls->tls_pending = true;
	line_session_wait(ls);
}

/* The STARTTLS reply has left: the socket moves from the plain bufferevent to a TLS one. */
static void session_tls_begin(struct line_session *ls)
{
	struct bufferevent *tls = net_stream_starttls(ls->base, ls->starttls_ctx, ls->bev);
	SSL_CTX_free(ls->starttls_ctx);
	ls->starttls_ctx = NULL;
	ls->tls_pending = false;
	if (tls == NULL) {
		line_session_close(ls, "tls_setup_failed");
		return;
	}
	ls->bev = tls;
	ls->tls = true;
	ls->discarding = false;
	ls->ops->tls_started(ls);
	session_set_callbacks(ls);
	ls->waiting = false;
	if (ls->expired) {
		line_session_abort(ls, "session_timeout");
		return;
	}
	line_deadline_restart(ls); /* the handshake and the first line within one deadline */
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	struct line_session *ls = arg;
	if (ls->lingering) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	session_process(ls);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct line_session *ls = arg;
	size_t out = evbuffer_get_length(bufferevent_get_output(bev));

	if (ls->closing) {
		if (out == 0 && !ls->lingering)
			session_flushed(ls);
		return;
	}
	if (ls->tls_pending) {
		if (out == 0)
			session_tls_begin(ls);
		return;
	}
	if (ls->ops->drained != NULL && ls->ops->drained(ls))
		return;
	/* the output drained: go on with what the client already sent (session_process paused it) —
	 * a client that pipelines sends nothing more until it has the answers */
	if (!ls->waiting)
		session_continue(ls);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct line_session *ls = arg;

	if (what & BEV_EVENT_CONNECTED) {
		ls->tls_up = true; /* TLS handshake done */
		if (!ls->closing && ls->ops->tls_ready != NULL)
			ls->ops->tls_ready(ls);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (ls->closing)
			session_free_later(ls); /* its last reply could not be flushed in time */
		else
			session_timed_out(ls, LINE_TIMEOUT_IDLE);
		return;
	}
	if (ls->lingering && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
		session_free_later(ls); /* the client has closed too */
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		line_session_abort(ls, ls->tls && bufferevent_get_openssl_error(bev) != 0 ? "tls_error" : "io_error");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* The client sends nothing more, but it may still read: answer what it already sent (a
		 * pipelined "." and QUIT, say), then close. */
		ls->eof = true;
		if (!ls->closing && !ls->waiting)
			session_process(ls);
		if (!ls->closing && !ls->waiting)
			line_session_close(ls, "client_closed");
	}
}

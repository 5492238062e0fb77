/* session.c — an HTTP/1.1 connection of the API on the shared line-session skeleton: the head line
 * by line (parse.c), the body into memory counted against [server] max_memory_in_flight, one
 * request at a time to the API (api.c), the answer, keep-alive, and the limits that keep a
 * client from holding us: head size, body size, [api] request_timeout, keepalive_timeout. */
#include "http/session.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/api.h"
#include "http/metrics.h"
#include "util/budget.h"
#include "util/log.h"
#include "util/date.h"
#include "util/overload.h"

static const struct line_session_ops http_line_ops;

static struct http_session *session_of(struct line_session *ls)
{
	return LINE_SESSION_OF(ls, struct http_session);
}

const char *http_status_text(unsigned status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

/* ---- life of a session ---- */

static void request_end(struct http_session *s)
{
	free(s->body);
	s->body = NULL;
	s->body_len = 0;
	budget_give(&s->srv->memory, s->body_budget);
	s->body_budget = 0;
	if (s->deadline != NULL)
		evtimer_del(s->deadline);
	s->state = HTTP_STATE_IDLE;
	s->route = -1;
}

static void session_destroy(struct line_session *ls)
{
	struct http_session *s = session_of(ls);
	struct server *srv = s->srv;

	request_end(s);
	if (s->deadline != NULL)
		event_free(s->deadline);
	server_conn_close(srv, &s->conn);
	line_session_deinit(&s->ls);
	conf_free(s->conf);
	free(s);
	server_conn_gone(srv);
}

static void session_destroy_conn(struct server_conn *c)
{
	session_destroy(&SERVER_CONN_OF(c, struct http_session)->ls);
}

static void session_shutdown_conn(struct server_conn *c)
{
	struct http_session *s = SERVER_CONN_OF(c, struct http_session);
	/* between requests the connection just closes; a request under way is answered first, and
	 * one still arriving is cut (its client sees the connection close and may retry) */
	if (line_session_shutdown_ready(&s->ls) && s->state != HTTP_STATE_HANDLING)
		line_session_close(&s->ls, "shutdown");
}

struct http_session *http_session_find(struct server *srv, uint64_t id)
{
	struct server_conn *c = server_conn_find(srv, id);
	return c != NULL ? SERVER_CONN_OF(c, struct http_session) : NULL;
}

/* [api] request_timeout: the whole request, head and body, from its first octet (a slow client
 * sending a byte at a time keeps no connection for ever); on https, before that, the TLS handshake
 * from the connection's first moment (http_session_start). */
static void deadline_fired(evutil_socket_t fd, short what, void *arg)
{
	struct http_session *s = arg;
	if (s->ls.closing)
		return;
	if (s->tls && !s->ls.tls_up) {
		/* nothing can be said before the handshake is done: the connection just ends */
		line_session_abort(&s->ls, "tls_timeout");
		return;
	}
	if (s->state == HTTP_STATE_HANDLING)
		return; /* our side is working: the answer comes */
	log_info("session=%llx event=http_timeout state=%d", (unsigned long long)s->conn.id, (int)s->state);
	http_respond_error(s, 408, "validation_error", "The request did not arrive within %u seconds.",
			   s->conf->api_request_timeout);
}

static void http_session_start(struct server *srv, const struct server_listener *l, int fd, const struct sockaddr *sa)
{
	struct http_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->srv = srv;
	s->conf = conf_ref(srv->conf);
	s->tls = l->role == CONF_LISTEN_HTTPS;
	s->route = -1;
	s->deadline = evtimer_new(srv->base, deadline_fired, s);
	if (s->deadline == NULL ||
	    line_session_start(&s->ls, &http_line_ops, srv->base, srv->tls, fd, s->tls, s->conf->api_keepalive_timeout,
			       LINE_SESSION_OUTPUT_HIGH / 2) != 0) {
		if (s->deadline != NULL)
			event_free(s->deadline);
		conf_free(s->conf);
		free(s);
		return;
	}
	if (s->tls) {
		/* The handshake gets the time a request gets, counted from the connection: a ClientHello
		 * trickled an octet at a time would restart the idle timer for ever, and while it lasts the
		 * connection holds its place in [server] max_connections and max_connections_per_ip.
		 * Overload mode shortens it as it shortens SMTP's and POP3's timers (util/overload.h). */
		unsigned secs = s->conf->api_request_timeout;
		struct timeval tv = {(time_t)(srv->overload ? overload_shrink(secs) : secs), 0};
		evtimer_add(s->deadline, &tv);
	}
	server_conn_open(srv, &s->conn, l, sa, s->tls, session_shutdown_conn, session_destroy_conn);
}

/* The handshake is done in time: its deadline ends, and a request's starts with its first octet. */
static void session_tls_ready(struct line_session *ls)
{
	struct http_session *s = session_of(ls);
	if (s->state == HTTP_STATE_IDLE)
		evtimer_del(s->deadline);
}

/* ---- answers ---- */

static void http_date(char *buf, size_t size)
{
	/* RFC 9110 §5.6.7 IMF-fixdate */
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void http_respond_text(struct http_session *s, unsigned status, const char *body, size_t len, const char *extra)
{
	http_respond_body(s, status, "application/json", body, len, extra);
}

void http_respond_body(struct http_session *s, unsigned status, const char *content_type, const char *body, size_t len,
		       const char *extra)
{
	if (s->ls.closing)
		return;
	struct evbuffer *out = line_session_out(&s->ls);
	/* RFC 9112 §9.6: after an error in the framing, or when either side said close, we close */
	bool keep = s->req.keep_alive && s->state == HTTP_STATE_HANDLING && !s->srv->stopping;
	char date[40];
	http_date(date, sizeof(date));
	bool typed = body != NULL && content_type != NULL;
	evbuffer_add_printf(out,
			    "HTTP/1.1 %u %s\r\nDate: %s\r\nServer: mailwerk\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n",
			    status, http_status_text(status), date, body != NULL ? len : 0, typed ? "Content-Type: " : "",
			    typed ? content_type : "", typed ? "\r\n" : "", keep ? "" : "Connection: close\r\n",
			    extra != NULL ? extra : "");
	if (body != NULL && len > 0)
		evbuffer_add(out, body, len);

	char path[128];
	log_info("session=%llx event=http method=%s path=%s status=%u ms=%lld", (unsigned long long)s->conn.id,
		 s->req.method_text[0] != '\0' ? s->req.method_text : "-",
		 log_safe(path, sizeof(path), s->req.path, (unsigned)strlen(s->req.path)), status,
		 (long long)(date_now_ms() - s->started_ms));
	http_metrics_count(s, status);
	bool was_handling = s->state == HTTP_STATE_HANDLING;
	request_end(s);
	s->requests++;
	if (!keep) {
		/* an answer that refuses a request may leave its body unread: linger (RFC 9112 §9.6) */
		if (status >= 400)
			line_session_close_linger(&s->ls, "done");
		else
			line_session_close(&s->ls, "done");
		return;
	}
	if (was_handling)
		line_session_resume(&s->ls); /* the next request, maybe already in the input */
}

void http_respond_json(struct http_session *s, unsigned status, json_t *body, const char *extra)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(body);
	if (body != NULL && text == NULL) {
		static const char oom[] = "{\"statusCode\":500,\"name\":\"internal_server_error\",\"message\":\"Out of memory.\"}";
		http_respond_text(s, 500, oom, sizeof(oom) - 1, extra);
		return;
	}
	http_respond_text(s, status, text, text != NULL ? strlen(text) : 0, extra);
	free(text);
}

json_t *http_error_json(unsigned status, const char *name, const char *message)
{
	return json_pack("{s:i, s:s, s:s}", "statusCode", (int)status, "name", name, "message", message);
}

void http_respond_error(struct http_session *s, unsigned status, const char *name, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_respond_json(s, status, http_error_json(status, name, msg), NULL);
}

/* ---- reading a request ---- */

static bool head_error(struct http_session *s, enum http_parse_error e, const char *why)
{
	unsigned status = http_parse_error_status(e);
	http_respond_error(s, status, status == 431 || status == 414 ? "validation_error" : "invalid_parameter",
			   "%s%s", why, status == 411 ? " (chunked transfer coding is not accepted)." : ".");
	return true;
}

/* The head is complete: decide whether a body may come. */
static bool head_done(struct http_session *s)
{
	const char *why;
	enum http_parse_error e = http_parse_head_end(&s->req, &why);
	if (e != HTTP_PARSE_OK)
		return head_error(s, e, why);
	uint64_t max = http_api_max_body(s->conf);
	if (s->req.has_length && s->req.content_length > max) {
		/* refused before a byte of it is buffered; the connection closes, as the body is not read */
		http_respond_error(s, 413, "validation_error", "The request body is %llu octets; at most %llu are accepted.",
				   (unsigned long long)s->req.content_length, (unsigned long long)max);
		return true;
	}
	uint64_t len = s->req.has_length ? s->req.content_length : 0;
	if (len > 0) {
		if (!budget_take(&s->srv->memory, len)) {
			log_warn("session=%llx event=refused reason=max_memory_in_flight", (unsigned long long)s->conn.id);
			http_respond_json(s, 503, http_error_json(503, "internal_server_error",
							       "The server is busy; try again in a few seconds."),
					  "Retry-After: 5\r\n");
			return true;
		}
		s->body_budget = len;
		s->body = malloc(len + 1);
		if (s->body == NULL) {
			http_respond_error(s, 503, "internal_server_error", "Out of memory.");
			return true;
		}
		/* RFC 9110 §10.1.1: the client waits for this before sending the body */
		if (s->req.expect_continue)
			evbuffer_add_printf(line_session_out(&s->ls), "HTTP/1.1 100 Continue\r\n\r\n");
		s->state = HTTP_STATE_BODY;
		return true;
	}
	s->state = HTTP_STATE_HANDLING;
	line_session_wait(&s->ls);
	http_api_handle(s);
	return true;
}

static bool step_body(struct http_session *s)
{
	struct evbuffer *in = line_session_in(&s->ls);
	size_t want = (size_t)s->req.content_length - s->body_len;
	size_t have = evbuffer_get_length(in);
	if (have == 0)
		return false;
	size_t n = have < want ? have : want;
	evbuffer_remove(in, s->body + s->body_len, n);
	s->body_len += n;
	if (s->body_len < s->req.content_length)
		return false;
	s->body[s->body_len] = '\0';
	s->state = HTTP_STATE_HANDLING;
	line_session_wait(&s->ls);
	http_api_handle(s);
	return true;
}

static bool session_step(struct line_session *ls)
{
	struct http_session *s = session_of(ls);
	if (s->state == HTTP_STATE_BODY)
		return step_body(s);
	if (s->state == HTTP_STATE_HANDLING)
		return false;

	if (s->state == HTTP_STATE_IDLE && evbuffer_get_length(line_session_in(ls)) > 0 &&
	    !evtimer_pending(s->deadline, NULL)) {
		struct timeval tv = {(time_t)s->conf->api_request_timeout, 0};
		evtimer_add(s->deadline, &tv);
		s->started_ms = date_now_ms();
	}
	char line[HTTP_LINE_MAX];
	size_t len;
	switch (line_session_read_line(ls, line, sizeof(line), &len)) {
	case LINE_READ_MORE:
		return false;
	case LINE_READ_BARE_EOL:
		return head_error(s, HTTP_PARSE_BAD_REQUEST, "Lines of the request head must end with CRLF");
	case LINE_READ_TOO_LONG:
		return head_error(s, s->state == HTTP_STATE_IDLE ? HTTP_PARSE_URI_TOO_LONG : HTTP_PARSE_HEAD_TOO_LARGE,
				  s->state == HTTP_STATE_IDLE ? "Request line too long" : "Header field too long");
	case LINE_READ_DROPPED:
		return true;
	case LINE_READ_OK:
		break;
	}
	const char *why;
	enum http_parse_error e;
	if (s->state == HTTP_STATE_IDLE) {
		/* RFC 9112 §2.2: empty lines before a request line are ignored */
		if (len == 0)
			return true;
		http_request_init(&s->req);
		e = http_parse_request_line(&s->req, line, len, &why);
		s->state = HTTP_STATE_HEAD;
	} else if (len == 0) {
		return head_done(s);
	} else {
		e = http_parse_field_line(&s->req, line, len, &why);
	}
	if (e != HTTP_PARSE_OK)
		return head_error(s, e, why);
	return true;
}

static void session_timeout(struct line_session *ls, enum line_timeout why)
{
	struct http_session *s = session_of(ls);
	/* keep-alive: an idle connection just closes (RFC 9112 §9.8); a stuck one is cut */
	if (ls->waiting)
		line_session_abort(ls, "timeout");
	else
		line_session_close(ls, s->state == HTTP_STATE_IDLE ? "idle" : "timeout");
}

static void session_closed(struct line_session *ls, const char *reason)
{
	struct http_session *s = session_of(ls);
	s->conn.closing = true; /* async steps no longer find it */
	log_info("session=%llx event=disconnect reason=%s requests=%u", (unsigned long long)s->conn.id, reason,
		 s->requests);
}

static const struct line_session_ops http_line_ops = {
	.step = session_step,
	.timeout = session_timeout,
	.closed = session_closed,
	.tls_ready = session_tls_ready,
	.destroy = session_destroy,
};

#define HTTP_BUSY_BODY "{\"statusCode\":503,\"name\":\"internal_server_error\",\"message\":\"Too many connections.\"}"
#define HTTP_BUSY(n)                                                                                            \
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\n" \
	"Content-Length: " #n "\r\n\r\n" HTTP_BUSY_BODY

/* Resend's shape and name for 429; a banned client (server/login.h) may come back once the ban ends */
#define HTTP_BANNED_BODY                                                                                          \
	"{\"statusCode\":429,\"name\":\"rate_limit_exceeded\",\"message\":\"Too many failed sign-ins from your " \
	"address; try again later.\"}"
#define HTTP_BANNED(n)                                                                                           \
	"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"                  \
	"Content-Length: " #n "\r\n\r\n" HTTP_BANNED_BODY

const struct server_protocol http_protocol = {
	.name = "http",
	.start = http_session_start,
	.refuse_busy = HTTP_BUSY(83),
	.refuse_busy_client = HTTP_BUSY(83),
	.refuse_banned = HTTP_BANNED(120),
	.init = http_api_init,
	.deinit = http_api_deinit,
};
_Static_assert(sizeof(HTTP_BUSY_BODY) - 1 == 83, "the Content-Length of HTTP_BUSY");
_Static_assert(sizeof(HTTP_BANNED_BODY) - 1 == 120, "the Content-Length of HTTP_BANNED");

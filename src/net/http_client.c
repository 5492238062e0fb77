/* http_client.c — libcurl multi on libevent (http_client.h). The pattern is libcurl's own
 * "multi-event" example: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to call it back (CURLMOPT_TIMERFUNCTION); we turn libevent's readiness into
 * curl_multi_socket_action calls and collect finished transfers with curl_multi_info_read.
 * Redirects of a GET are followed here, not by curl (CURLOPT_FOLLOWLOCATION stays off), so that
 * each target passes http_url_parse like the first URL did. */
#include "net/http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "net/http_url.h"
#include "util/date.h"

struct http_client_sock {
	struct http_client_sock *next, *prev;
	struct http_client *c;
	struct event *ev;
	curl_socket_t fd;
};

struct http_client_req {
	struct http_client_req *next, *prev;
	struct http_client *c;
	CURL *easy;
	struct curl_slist *headers;
	http_client_done_fn *done;
	void *arg;
	bool allow_private;
	bool no_redirects;
	const char *private_setting; /* the caller's, a string literal or its own long-lived text */
	struct curl_slist *resolve;
	bool too_large;
	char refused[160]; /* why the last socket was refused, "" when none was */
	char errbuf[CURL_ERROR_SIZE];
	char keep[HTTP_CLIENT_KEEP + 1];
	size_t kept;
	uint64_t total;
	/* http_client_request: keeps the body of any answer and the fields ACME reads */
	bool call;
	char location[HTTP_CLIENT_FIELD_MAX + 1], nonce[HTTP_CLIENT_FIELD_MAX + 1], retry_after[HTTP_CLIENT_FIELD_MAX + 1];
	/* a GET (and a call: its body buffer) */
	bool get;
	bool https;          /* the URL now asked for is https: a redirect may not leave TLS */
	unsigned redirects;  /* followed so far */
	int64_t deadline_ms; /* monotonic: the end of the whole request, redirects included */
	uint64_t max_body;
	long status;         /* of the answer whose body is arriving; 0 before its first octet */
	char *buf;           /* the body kept so far: len octets of cap (+1 for a NUL) */
	size_t len, cap;
	bool no_memory;
	char why[300];       /* why the GET failed although an answer came, "" when it did not */
};

struct http_client {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct http_client_req *reqs;
	struct http_client_sock *socks;
	unsigned running;
};

/* ---- finished transfers ---- */

static void req_free(struct http_client_req *r)
{
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	curl_slist_free_all(r->resolve);
	free(r->buf);
	free(r);
}

/* RFC 9110 §15.4: the redirects that name their target in Location (300 and 304 do not redirect). */
static bool status_redirects(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* A GET answered with a redirect: asks for its target with the same handle, after the checks of
 * HTTP_CLIENT_GET_REDIRECTS. true when the request goes on; false with r->why set. */
static bool get_redirect(struct http_client_req *r, long status)
{
	char *loc = NULL;
	curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &loc);
	struct http_url u;
	const char *err;
	if (loc == NULL) {
		snprintf(r->why, sizeof(r->why), "the server answered %ld without a usable Location", status);
		return false;
	}
	if (r->redirects >= HTTP_CLIENT_GET_REDIRECTS) {
		snprintf(r->why, sizeof(r->why), "the server redirected more than %d times", HTTP_CLIENT_GET_REDIRECTS);
		return false;
	}
	if (http_url_parse(loc, strlen(loc), &u, &err) != HTTP_URL_OK) {
		snprintf(r->why, sizeof(r->why), "the server redirected to a URL that is refused: %s", err);
		return false;
	}
	if (r->https && !u.https) {
		snprintf(r->why, sizeof(r->why), "the server redirected from https to http");
		return false;
	}
	int64_t left = r->deadline_ms - date_mono_ms();
	if (left <= 0) {
		snprintf(r->why, sizeof(r->why), "timed out while following redirects");
		return false;
	}
	char *target = strdup(loc); /* loc lives in the handle's state, which the next transfer resets */
	if (target == NULL) {
		snprintf(r->why, sizeof(r->why), "out of memory");
		return false;
	}
	struct http_client *c = r->c;
	curl_multi_remove_handle(c->multi, r->easy);
	r->https = u.https;
	r->redirects++;
	r->too_large = false;
	r->refused[0] = r->errbuf[0] = r->keep[0] = '\0';
	r->kept = 0;
	r->total = 0;
	r->status = 0;
	r->len = 0;
	bool ok = curl_easy_setopt(r->easy, CURLOPT_URL, target) == CURLE_OK &&
		  curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)left) == CURLE_OK &&
		  curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)left) == CURLE_OK &&
		  curl_multi_add_handle(c->multi, r->easy) == CURLM_OK;
	free(target);
	if (!ok)
		snprintf(r->why, sizeof(r->why), "libcurl refused the redirect's URL");
	return ok;
}

/* The body that came whole, handed to the caller, or why none did: too large, out of memory, or
 * libcurl's error. */
static void result_body(struct http_client_req *r, CURLcode res, struct http_client_result *out)
{
	if (r->too_large || res == CURLE_FILESIZE_EXCEEDED) {
		snprintf(r->why, sizeof(r->why), "larger than the limit of %llu octets", (unsigned long long)r->max_body);
		out->error = r->why;
		out->truncated = true;
	} else if (r->no_memory || res != CURLE_OK || (r->buf == NULL && (r->buf = malloc(1)) == NULL)) {
		snprintf(r->why, sizeof(r->why), "%s", r->no_memory || res == CURLE_OK ? "out of memory" : curl_easy_strerror(res));
		out->error = r->why;
	} else {
		r->buf[r->len] = '\0';
		out->data = r->buf;
		out->data_len = r->len;
		r->buf = NULL; /* the caller's now */
	}
}

/* What a GET that got an answer gives its caller: the body of a whole 2xx, else an error. */
static void get_result(struct http_client_req *r, CURLcode res, long status, struct http_client_result *out)
{
	char *type = NULL;
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &type);
	out->content_type = type != NULL ? type : "";
	if (r->why[0] != '\0') {
		out->error = r->why;
	} else if (status < 200 || status > 299) {
		snprintf(r->why, sizeof(r->why), "the server answered %ld", status);
		out->error = r->why;
	} else {
		result_body(r, res, out);
	}
}

/* One response field of the last answer into out ("" when absent or too long). */
static void call_field(struct http_client_req *r, const char *name, char *out, size_t size)
{
	struct curl_header *h = NULL;
	out[0] = '\0';
	if (curl_easy_header(r->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL || h->value == NULL)
		return;
	size_t n = strlen(h->value);
	if (n < size) {
		memcpy(out, h->value, n + 1);
	}
}

/* What a call that got an answer gives its caller: the body whatever the status, and its fields. */
static void call_result(struct http_client_req *r, CURLcode res, struct http_client_result *out)
{
	char *type = NULL;
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &type);
	out->content_type = type != NULL ? type : "";
	call_field(r, "Location", r->location, sizeof(r->location));
	call_field(r, "Replay-Nonce", r->nonce, sizeof(r->nonce));
	call_field(r, "Retry-After", r->retry_after, sizeof(r->retry_after));
	out->location = r->location;
	out->replay_nonce = r->nonce;
	out->retry_after = r->retry_after;
	result_body(r, res, out);
}

static void req_unlink(struct http_client_req *r)
{
	struct http_client *c = r->c;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	curl_multi_remove_handle(c->multi, r->easy);
	c->running--;
}

static void check_done(struct http_client *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		/* m does not survive curl_multi_remove_handle: take what is needed first */
		CURL *easy = m->easy_handle;
		CURLcode res = m->data.result;
		struct http_client_req *r = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
		long status = 0;
		curl_off_t us = 0;
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &us);
		struct http_client_result out = {
			.status = status,
			.body = r->keep,
			.body_len = r->kept,
			.truncated = r->too_large,
			.elapsed_ms = (unsigned)(us / 1000),
		};
		/* an answer too long to read is still an answer: its status stands */
		bool answered = res == CURLE_OK ||
				((res == CURLE_WRITE_ERROR || res == CURLE_FILESIZE_EXCEEDED) && status > 0);
		if (res == CURLE_FILESIZE_EXCEEDED)
			out.truncated = true;
		if (r->get && answered && status_redirects(status) && !r->too_large && !r->no_redirects &&
		    get_redirect(r, status))
			continue; /* the same request, at its new URL */
		if (!answered) {
			out.status = 0;
			if (r->refused[0] != '\0' && res == CURLE_COULDNT_CONNECT)
				out.error = r->refused;
			else
				out.error = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(res);
		} else if (r->call) {
			call_result(r, res, &out);
		} else if (r->get) {
			get_result(r, res, status, &out);
		}
		req_unlink(r);
		r->done(r->arg, &out);
		req_free(r);
	}
}

/* ---- libevent ↔ libcurl ---- */

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_client_sock *hs = arg;
	struct http_client *c = hs->c; /* hs may be freed inside curl_multi_socket_action */
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(c->multi, fd, action, &running);
	check_done(c);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *c = arg;
	int running;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static void sock_free(struct http_client *c, struct http_client_sock *hs)
{
	if (hs->prev != NULL)
		hs->prev->next = hs->next;
	else
		c->socks = hs->next;
	if (hs->next != NULL)
		hs->next->prev = hs->prev;
	event_free(hs->ev);
	free(hs);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl waits for, or stop watching it. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct http_client_sock *hs = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL)
			sock_free(c, hs);
		return 0;
	}
	short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
			     EV_PERSIST);
	if (hs == NULL) {
		hs = calloc(1, sizeof(*hs));
		if (hs == NULL)
			return -1;
		hs->c = c;
		hs->fd = s;
		hs->ev = event_new(c->base, s, kind, sock_event_cb, hs);
		if (hs->ev == NULL) {
			free(hs);
			return -1;
		}
		hs->next = c->socks;
		if (c->socks != NULL)
			c->socks->prev = hs;
		c->socks = hs;
		curl_multi_assign(c->multi, s, hs);
	} else {
		event_del(hs->ev);
		event_assign(hs->ev, c->base, s, kind, sock_event_cb, hs);
	}
	return event_add(hs->ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: call curl back after timeout_ms (-1: not at all). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;
	if (timeout_ms < 0)
		return evtimer_del(c->timer);
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	return evtimer_add(c->timer, &tv);
}

/* ---- per-request callbacks ---- */

/* CURLOPT_OPENSOCKETFUNCTION: the SSRF rule, applied to every address curl is about to connect
 * to, after resolution. */
static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct http_client_req *r = clientp;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (!r->allow_private) {
		enum http_url_addr_class cls = http_url_addr_classify(&a->addr);
		if (cls != HTTP_URL_ADDR_PUBLIC) {
			char text[64];
			http_url_addr_text(&a->addr, text, sizeof(text));
			snprintf(r->refused, sizeof(r->refused),
				 "refused to connect to %s, a %s address (%s is off)", text, http_url_addr_class_str(cls),
				 r->private_setting != NULL ? r->private_setting : "[webhooks] allow_private");
			return CURL_SOCKET_BAD;
		}
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* A GET's body: kept whole for a 2xx within max_body; a redirect's read (curl has its Location for
 * us only once that transfer has ended) within HTTP_CLIENT_READ_MAX but not kept; any other is not
 * read at all, its status being the answer. Returning less than n stops the transfer. */
static size_t write_get(struct http_client_req *r, const char *data, size_t n)
{
	if (r->status == 0)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->call) {
		/* a call keeps every answer's body: ACME's problem documents come with 4xx (RFC 8555 §6.7) */
	} else if (r->status >= 300 && r->status < 400) {
		r->total += n;
		if (r->total > HTTP_CLIENT_READ_MAX) {
			r->too_large = true;
			return 0;
		}
		return n;
	} else if (r->status < 200 || r->status > 299) {
		return 0;
	}
	if (n > r->max_body - r->len) { /* r->len <= max_body always */
		r->too_large = true;
		return 0; /* before a single octet beyond the limit is kept */
	}
	if (n > r->cap - r->len) {
		size_t want = r->cap;
		if (want == 0) {
			/* a Content-Length within the limit sizes the buffer at once */
			curl_off_t cl = -1;
			curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
			want = cl > 0 && (uint64_t)cl <= r->max_body ? (size_t)cl : 16 * 1024;
		}
		while (want < r->len + n)
			want = want > SIZE_MAX / 2 ? SIZE_MAX - 1 : want * 2;
		if (want > r->max_body)
			want = (size_t)r->max_body;
		char *g = realloc(r->buf, want + 1);
		if (g == NULL) {
			r->no_memory = true;
			return 0;
		}
		r->buf = g;
		r->cap = want;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_client_req *r = userp;
	size_t n = size * nmemb;
	if (r->get || r->call)
		return write_get(r, data, n);
	if (r->kept < HTTP_CLIENT_KEEP) {
		size_t take = n < HTTP_CLIENT_KEEP - r->kept ? n : HTTP_CLIENT_KEEP - r->kept;
		memcpy(r->keep + r->kept, data, take);
		r->kept += take;
		r->keep[r->kept] = '\0';
	}
	r->total += n;
	if (r->total > HTTP_CLIENT_READ_MAX) {
		r->too_large = true;
		return 0; /* stops the transfer: CURLE_WRITE_ERROR */
	}
	return n;
}

/* ---- the API ---- */

struct http_client *http_client_new(struct event_base *base, char *error, size_t error_size)
{
	/* thread-safe and counted since libcurl 7.84 (Debian 12 has 7.88) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(error, error_size, "libcurl cannot be initialized");
		return NULL;
	}
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	if (!(v->features & CURL_VERSION_ASYNCHDNS)) {
		/* a blocking resolver would stop the whole loop on every lookup (DESIGN.md §1) */
		snprintf(error, error_size,
			 "libcurl %s resolves names synchronously; a threaded or c-ares build is needed",
			 v->version);
		curl_global_cleanup();
		return NULL;
	}
	struct http_client *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->multi = curl_multi_init()) == NULL ||
	    (c->timer = evtimer_new(base, timer_event_cb, c)) == NULL) {
		if (c != NULL && c->multi != NULL)
			curl_multi_cleanup(c->multi);
		free(c);
		curl_global_cleanup();
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	c->base = base;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void http_client_free(struct http_client *c)
{
	if (c == NULL)
		return;
	while (c->reqs != NULL) {
		struct http_client_req *r = c->reqs;
		req_unlink(r);
		req_free(r);
	}
	curl_multi_cleanup(c->multi);
	/* sockets curl never told us to forget (its connection cache closes them in cleanup) */
	while (c->socks != NULL)
		sock_free(c, c->socks);
	event_free(c->timer);
	free(c);
	curl_global_cleanup();
}

unsigned http_client_running(const struct http_client *c)
{
	return c->running;
}

#define SETOPT(opt, val) ok = ok && curl_easy_setopt(r->easy, opt, val) == CURLE_OK

/* What every request has: the protections of http_client.h and our callbacks. */
static bool req_setopts(struct http_client_req *r, const char *url, const struct http_client_opts *o)
{
	unsigned timeout_ms = o->timeout_ms;
	bool ok = true;
	r->allow_private = o->allow_private;
	r->private_setting = o->private_setting;
	r->no_redirects = o->no_redirects;
	if (o->ca_file != NULL && o->ca_file[0] != '\0')
		SETOPT(CURLOPT_CAINFO, o->ca_file);
	if (o->resolve != NULL && o->resolve[0] != '\0') {
		r->resolve = curl_slist_append(NULL, o->resolve);
		ok = r->resolve != NULL;
		SETOPT(CURLOPT_RESOLVE, r->resolve);
	}
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_PROXY, ""); /* "" disables proxies, those of http_proxy & co. too */
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	SETOPT(CURLOPT_USERAGENT, "mailwerk/" MAILWERK_VERSION);
	SETOPT(CURLOPT_OPENSOCKETFUNCTION, open_cb);
	SETOPT(CURLOPT_OPENSOCKETDATA, r);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, r);
	SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
	SETOPT(CURLOPT_PRIVATE, r);
	return ok;
}

static void req_link(struct http_client *c, struct http_client_req *r)
{
	r->next = c->reqs;
	if (c->reqs != NULL)
		c->reqs->prev = r;
	c->reqs = r;
	c->running++;
}

/* A request of c's with its easy handle, not yet linked; NULL when out of memory. */
static struct http_client_req *req_new(struct http_client *c, http_client_done_fn *done, void *arg)
{
	struct http_client_req *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->easy = curl_easy_init()) == NULL) {
		free(r);
		return NULL;
	}
	r->c = c;
	r->done = done;
	r->arg = arg;
	return r;
}

/* The caller's header lines (copied), and an empty Expect: curl would send "Expect: 100-continue"
 * for larger bodies and wait for a 100 first; an empty value drops the field (RFC 9110 §10.1.1 lets
 * a client send the body without waiting). false when out of memory. */
static bool req_headers(struct http_client_req *r, const char *const *headers, size_t n)
{
	for (size_t i = 0; i <= n; i++) {
		struct curl_slist *l = curl_slist_append(r->headers, i < n ? headers[i] : "Expect:");
		if (l == NULL)
			return false;
		r->headers = l;
	}
	return true;
}

/* Hands r, set up (ok) or not, to the multi handle: 0, or -1 with a sentence and r freed. */
static int req_start(struct http_client *c, struct http_client_req *r, bool ok, struct http_client_req **req_r,
		     char *error, size_t error_size)
{
	if (!ok || curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		snprintf(error, error_size, "libcurl refused the request (out of memory, or a URL it cannot use)");
		req_free(r);
		return -1;
	}
	req_link(c, r);
	if (req_r != NULL)
		*req_r = r;
	return 0;
}

int http_client_post(struct http_client *c, const char *url, const char *const *headers, size_t n_headers,
		     const char *body, size_t len, const struct http_client_opts *o,
		     http_client_done_fn *done, void *arg, char *error, size_t error_size)
{
	struct http_client_req *r = req_new(c, done, arg);
	if (r == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	bool ok = req_headers(r, headers, n_headers);
	ok = ok && req_setopts(r, url, o);
	SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_CLIENT_READ_MAX);
	SETOPT(CURLOPT_HTTPHEADER, r->headers);
	SETOPT(CURLOPT_POST, 1L);
	SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	SETOPT(CURLOPT_COPYPOSTFIELDS, body); /* after the size: it copies that many octets */
	return req_start(c, r, ok, NULL, error, error_size);
}

int http_client_get(struct http_client *c, const char *url, uint64_t max_body, const struct http_client_opts *o,
		    http_client_done_fn *done, void *arg, struct http_client_req **req_r, char *error,
		    size_t error_size)
{
	/* the strict parse webhook endpoints get: no userinfo, no numeric hosts curl would read as
	 * addresses the connect-time check could not be told about, no fragment */
	struct http_url u;
	const char *why;
	if (http_url_parse(url, strlen(url), &u, &why) != HTTP_URL_OK) {
		snprintf(error, error_size, "the URL is refused: %s", why);
		return -1;
	}
	struct http_client_req *r = req_new(c, done, arg);
	if (r == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	if (max_body > SIZE_MAX - 1)
		max_body = SIZE_MAX - 1;
	r->get = true;
	r->https = u.https;
	r->max_body = max_body;
	r->deadline_ms = date_mono_ms() + o->timeout_ms;
	bool ok = req_setopts(r, url, o);
	SETOPT(CURLOPT_HTTPGET, 1L);
	/* a Content-Length over the limit ends the transfer before its body (0 would mean no limit:
	 * write_get keeps the limit then) */
	if (max_body > 0)
		SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
	/* no CURLOPT_ACCEPT_ENCODING: the body comes as it is, so the limit counts what is kept */
	return req_start(c, r, ok, req_r, error, error_size);
}

int http_client_request(struct http_client *c, const struct http_client_call *call, http_client_done_fn *done,
			void *arg, struct http_client_req **req_r, char *error, size_t error_size)
{
	struct http_url u;
	const char *why;
	if (http_url_parse(call->url, strlen(call->url), &u, &why) != HTTP_URL_OK) {
		snprintf(error, error_size, "the URL is refused: %s", why);
		return -1;
	}
	struct http_client_req *r = req_new(c, done, arg);
	if (r == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	r->call = true;
	r->max_body = call->max_body > SIZE_MAX - 1 ? SIZE_MAX - 1 : call->max_body;
	bool ok = req_headers(r, call->headers, call->n_headers);
	ok = ok && req_setopts(r, call->url, &call->opts);
	SETOPT(CURLOPT_HTTPHEADER, r->headers);
	if (call->max_body > 0)
		SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
	if (call->method == HTTP_CLIENT_HEAD) {
		SETOPT(CURLOPT_NOBODY, 1L);
	} else if (call->method == HTTP_CLIENT_POST) {
		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
		SETOPT(CURLOPT_COPYPOSTFIELDS, call->body != NULL ? call->body : "");
	} else {
		SETOPT(CURLOPT_HTTPGET, 1L);
	}
	return req_start(c, r, ok, req_r, error, error_size);
}

void http_client_cancel(struct http_client *c, struct http_client_req *r)
{
	(void)c; /* r knows its client; the parameter says whose it is */
	req_unlink(r);
	req_free(r);
}

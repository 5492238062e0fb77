/* attachments_fetch.c — attachments given by URL, fetched on the loop (attachments_fetch.h).
 *
 * A cursor walks the request's emails and their attachments in order; up to
 * ATTACHMENTS_FETCH_PARALLEL GETs run at once. Each GET may keep at most what its email has left of
 * [smtp] max_message_size and what the request has left of its budget, as known when it starts;
 * GETs of one email that run side by side are added up when they end, so an email whose
 * attachments together pass the limit fails then (the octets in flight beyond it are bounded by
 * ATTACHMENTS_FETCH_PARALLEL such GETs). The whole request has one deadline: each GET gets what is
 * left of it as its timeout. */
#include "http/attachments_fetch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "http/email_req.h"
#include "net/http_client.h"
#include "util/budget.h"
#include "util/date.h"
#include "util/utf8.h"

struct af_email {
	struct email_req *req; /* NULL: not ours to fetch */
	uint64_t used;         /* html + text + the attachments it has so far */
	bool failed;
	char error[512];
};

struct af_slot {
	struct attachments_fetch *f;
	struct http_client_req *req; /* NULL: the slot is free */
	size_t email, att;
	uint64_t cap;     /* the GET's max_body */
	bool cap_request; /* the request's budget set the cap, not the email's limit */
};

struct attachments_fetch {
	struct attachments_fetch *next, **pprev; /* on the caller's list */
	struct attachments_fetch_opts o;
	attachments_fetch_done_fn *done;
	void *arg;
	struct af_email *emails;
	const char **errors;
	size_t n;
	size_t cur_email, cur_att; /* where the cursor looks next */
	struct af_slot slots[ATTACHMENTS_FETCH_PARALLEL];
	unsigned running;
	uint64_t total;   /* octets fetched for the request */
	uint64_t charged; /* of them, taken from o.memory */
	int64_t deadline_ms;
	struct event *finish;
	bool ending;   /* nothing more is started */
	bool finishing;
	bool cancelled, busy;
};

bool attachments_fetch_needed(const struct email_req *r)
{
	for (size_t k = 0; r != NULL && k < r->attachment_count; k++)
		if (r->attachments[k].path != NULL && r->attachments[k].content == NULL)
			return true;
	return false;
}

/* What email_req_parse measured against [smtp] max_message_size, for what is there already. */
static uint64_t af_base_size(const struct email_req *r)
{
	uint64_t n = (r->html != NULL ? strlen(r->html) : 0) + (r->text != NULL ? strlen(r->text) : 0);
	for (size_t k = 0; k < r->attachment_count; k++)
		if (r->attachments[k].content != NULL)
			n += r->attachments[k].size;
	return n;
}

/* The media type of a Content-Type field value ("Text/HTML; charset=utf-8" -> "text/html"): RFC
 * 2045 §5.1 tokens, lower case; parameters dropped. false when there is none, or it is multipart or
 * message (an attachment is a leaf: compose.c would not take those either). */
static bool af_media_type(const char *v, char *out, size_t size)
{
	static const char tspecials[] = "()<>@,;:\\\"/[]?=";
	size_t n = 0, slash = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0' && *v != ';' && *v != ' ' && *v != '\t'; v++) {
		char ch = *v;
		if (ch == '/' && slash == 0 && n > 0) {
			slash = n;
		} else if (ch <= 32 || ch >= 127 || strchr(tspecials, ch) != NULL) {
			return false;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	out[n] = '\0';
	if (slash == 0 || slash + 1 >= n)
		return false;
	return strncmp(out, "multipart/", 10) != 0 && strncmp(out, "message/", 8) != 0;
}

static int af_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The URL's last path segment, percent-decoded (RFC 3986 §2.1), as a file name: NULL unless it is
 * 1 to 255 octets of well-formed UTF-8 (RFC 3986 §2.5: non-ASCII characters are percent-encoded
 * UTF-8 octets) without controls, '/' or '\\'. compose.c encodes a non-ASCII name (RFC 2231). */
static char *af_url_filename(const char *url)
{
	const char *end = url + strcspn(url, "?#"), *b = url;
	const char *p = strstr(url, "://");
	p = p != NULL && p < end ? p + 3 : url;
	p += strcspn(p, "/?#"); /* the authority is no file name */
	for (b = p; p < end; p++)
		if (*p == '/')
			b = p + 1;
	if (b >= end || (size_t)(end - b) > 3 * 255)
		return NULL;
	unsigned char *s = malloc((size_t)(end - b) + 1);
	if (s == NULL)
		return NULL;
	size_t n = 0;
	for (const char *q = b; q < end; q++) {
		int c = (unsigned char)*q;
		if (c == '%' && end - q >= 3 && af_hex(q[1]) >= 0 && af_hex(q[2]) >= 0) {
			c = af_hex(q[1]) * 16 + af_hex(q[2]);
			q += 2;
		}
		s[n++] = (unsigned char)c;
	}
	s[n] = '\0';
	bool ok = n > 0 && n <= 255 && strcmp((char *)s, ".") != 0 && strcmp((char *)s, "..") != 0;
	for (size_t i = 0; ok && i < n;) {
		size_t len = s[i] < 0x80 ? 1 : utf8_len(s + i, n - i);
		ok = len > 0 && s[i] >= 32 && s[i] != 127 && s[i] != '/' && s[i] != '\\';
		i += len;
	}
	if (!ok) {
		free(s);
		return NULL;
	}
	return (char *)s;
}

/* The server's Content-Type field, trimmed, when it is a well-formed one (email_content_type_ok)
 * whose media type goes into out; else NULL. */
static char *af_answer_type(const char *field, char *out, size_t size)
{
	if (field == NULL)
		return NULL;
	while (*field == ' ' || *field == '\t')
		field++;
	size_t len = strlen(field);
	while (len > 0 && (field[len - 1] == ' ' || field[len - 1] == '\t'))
		len--;
	if (len > EMAIL_REQ_TOKEN_MAX || !email_content_type_ok(field, len) || !af_media_type(field, out, size))
		return NULL;
	return strndup(field, len);
}

/* Sets the Content-Type of fetched attachment a from the server's answer. A type the request or the
 * name decided stays (Resend derives it from the file name), but when it is the answer's media type
 * without parameters it takes the answer's parameters: a text file's charset tells the receiver how
 * to read it (RFC 2046 §4.1.2). Undecided: the answer's type, its media type alone when the field is
 * malformed, else application/octet-stream. false when out of memory. */
static bool af_set_type(struct email_attachment *a, const char *field)
{
	char type[128];
	char *answer = af_answer_type(field, type, sizeof(type));
	if (a->content_type != NULL) {
		if (answer != NULL && strchr(a->content_type, ';') == NULL && strcasecmp(a->content_type, type) == 0) {
			free(a->content_type);
			a->content_type = answer;
		} else {
			free(answer);
		}
		return true;
	}
	if (answer == NULL)
		answer = strdup(af_media_type(field != NULL ? field : "", type, sizeof(type)) ? type
										  : "application/octet-stream");
	a->content_type = answer;
	return answer != NULL;
}

/* ---- ending ---- */

static void af_cancel_running(struct attachments_fetch *f)
{
	for (size_t i = 0; i < ATTACHMENTS_FETCH_PARALLEL; i++)
		if (f->slots[i].req != NULL) {
			http_client_cancel(f->o.http, f->slots[i].req);
			f->slots[i].req = NULL;
			f->running--;
		}
}

static void af_unlink(struct attachments_fetch *f)
{
	*f->pprev = f->next;
	if (f->next != NULL)
		f->next->pprev = f->pprev;
}

/* Tells the caller and frees f: f is gone afterwards. */
static void af_report(struct attachments_fetch *f)
{
	af_unlink(f);
	for (size_t i = 0; i < f->n; i++)
		f->errors[i] = f->emails[i].failed ? f->emails[i].error : NULL;
	struct attachments_fetch_result r = {
		.cancelled = f->cancelled,
		.busy = f->busy,
		.errors = f->errors,
		.charged = f->charged,
	};
	f->done(f->arg, &r);
	event_free(f->finish);
	free(f->errors);
	free(f->emails);
	free(f);
}

static void af_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	af_report(arg);
}

/* done is called from the loop, never from within a call of the caller's (start, or a GET's
 * callback that the caller does not see, but which runs inside the HTTP client's loop step) */
static void af_finish_soon(struct attachments_fetch *f)
{
	if (f->finishing)
		return;
	f->finishing = true;
	event_active(f->finish, EV_TIMEOUT, 0);
}

static void af_fail(struct attachments_fetch *f, size_t e, size_t k, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void af_fail(struct attachments_fetch *f, size_t e, size_t k, const char *fmt, ...)
{
	struct af_email *m = &f->emails[e];
	if (m->failed)
		return; /* the first reason stands */
	m->failed = true;
	int len = snprintf(m->error, sizeof(m->error), "attachments[%zu].path: ", k);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->error + len, sizeof(m->error) - (size_t)len, fmt, ap);
	va_end(ap);
	if (f->o.stop_at_first) {
		f->ending = true;
		af_cancel_running(f);
	}
}

/* ---- the GETs ---- */

static void af_pump(struct attachments_fetch *f);

/* What came for attachment slot->att of email slot->email. */
static void af_fetched(void *arg, const struct http_client_result *r)
{
	struct af_slot *slot = arg;
	struct attachments_fetch *f = slot->f;
	size_t e = slot->email, k = slot->att;
	slot->req = NULL; /* the client frees it after this returns */
	f->running--;
	struct af_email *m = &f->emails[e];
	struct email_attachment *a = &m->req->attachments[k];
	uint64_t len = r->data_len;
	if (r->error != NULL) {
		if (r->truncated)
			af_fail(f, e, k, "larger than the limit: %llu octets were left for it of %s",
				(unsigned long long)slot->cap,
				slot->cap_request ? "the request's budget for fetched attachments"
						  : "[smtp] max_message_size");
		else
			af_fail(f, e, k, "%s", r->error);
	} else if (m->failed || f->ending) {
		free(r->data); /* not wanted any more */
	} else if (len > f->o.max_message_size - m->used || len > f->o.max_total - f->total) {
		/* GETs side by side took the room each other counted on */
		free(r->data);
		af_fail(f, e, k, "larger than the limit: with the rest of the email it passes %s",
			len > f->o.max_message_size - m->used ? "[smtp] max_message_size"
							: "the request's budget for fetched attachments");
	} else if (f->o.memory != NULL && !budget_take(f->o.memory, len)) {
		free(r->data);
		f->busy = true;
		f->ending = true;
		af_cancel_running(f);
	} else {
		a->content = (unsigned char *)r->data;
		a->size = (size_t)len;
		m->used += len;
		f->total += len;
		if (f->o.memory != NULL)
			f->charged += len;
		if (a->filename == NULL && a->content_id == NULL)
			a->filename = af_url_filename(a->path);
		if (!af_set_type(a, r->content_type))
			af_fail(f, e, k, "out of memory");
	}
	af_pump(f);
}

/* Starts the GET of attachment k of email e in a free slot, or fails e. */
static void af_start_one(struct attachments_fetch *f, size_t e, size_t k)
{
	struct af_email *m = &f->emails[e];
	const struct email_attachment *a = &m->req->attachments[k];
	int64_t left = f->deadline_ms - date_mono_ms();
	if (left <= 0) {
		af_fail(f, e, k, "not fetched within %u seconds", f->o.timeout_ms / 1000);
		return;
	}
	struct af_slot *slot = NULL;
	for (size_t i = 0; slot == NULL && i < ATTACHMENTS_FETCH_PARALLEL; i++)
		if (f->slots[i].req == NULL)
			slot = &f->slots[i];
	uint64_t for_email = m->used < f->o.max_message_size ? f->o.max_message_size - m->used : 0;
	uint64_t for_request = f->total < f->o.max_total ? f->o.max_total - f->total : 0;
	slot->f = f;
	slot->email = e;
	slot->att = k;
	slot->cap_request = for_request < for_email;
	slot->cap = slot->cap_request ? for_request : for_email;
	struct http_client_opts ho = {.timeout_ms = (unsigned)left, .allow_private = f->o.allow_private};
	char err[256];
	if (http_client_get(f->o.http, a->path, slot->cap, &ho, af_fetched, slot, &slot->req, err, sizeof(err)) != 0) {
		slot->req = NULL;
		af_fail(f, e, k, "%s", err);
		return;
	}
	f->running++;
}

/* The next attachment to fetch, of an email that has not failed; false when there is none. */
static bool af_next(struct attachments_fetch *f, size_t *e_r, size_t *k_r)
{
	for (; f->cur_email < f->n; f->cur_email++, f->cur_att = 0) {
		const struct af_email *m = &f->emails[f->cur_email];
		if (m->req == NULL || m->failed)
			continue;
		for (; f->cur_att < m->req->attachment_count; f->cur_att++) {
			const struct email_attachment *a = &m->req->attachments[f->cur_att];
			if (a->path != NULL && a->content == NULL) {
				*e_r = f->cur_email;
				*k_r = f->cur_att++;
				return true;
			}
		}
	}
	return false;
}

static void af_pump(struct attachments_fetch *f)
{
	if (!f->ending && f->o.wanted != NULL && !f->o.wanted(f->arg)) {
		f->cancelled = true;
		f->ending = true;
		af_cancel_running(f);
	}
	size_t e, k;
	while (!f->ending && f->running < ATTACHMENTS_FETCH_PARALLEL && af_next(f, &e, &k))
		af_start_one(f, e, k);
	/* nothing runs and nothing could be started: all is known */
	if (f->running == 0)
		af_finish_soon(f);
}

/* ---- the interface ---- */

int attachments_fetch_start(struct attachments_fetch **list, struct email_req *const *reqs, size_t n,
			    const struct attachments_fetch_opts *o, attachments_fetch_done_fn *done, void *arg)
{
	struct attachments_fetch *f = calloc(1, sizeof(*f));
	if (f == NULL || (f->emails = calloc(n > 0 ? n : 1, sizeof(*f->emails))) == NULL ||
	    (f->errors = calloc(n > 0 ? n : 1, sizeof(*f->errors))) == NULL ||
	    (f->finish = evtimer_new(o->base, af_finish_cb, f)) == NULL) {
		if (f != NULL) {
			free(f->emails);
			free(f->errors);
		}
		free(f);
		return -1;
	}
	f->o = *o;
	f->done = done;
	f->arg = arg;
	f->n = n;
	f->deadline_ms = date_mono_ms() + o->timeout_ms;
	for (size_t i = 0; i < n; i++) {
		f->emails[i].req = reqs[i];
		if (reqs[i] != NULL)
			f->emails[i].used = af_base_size(reqs[i]);
	}
	f->next = *list;
	if (*list != NULL)
		(*list)->pprev = &f->next;
	f->pprev = list;
	*list = f;
	af_pump(f);
	return 0;
}

void attachments_fetch_cancel_all(struct attachments_fetch **list)
{
	while (*list != NULL) {
		struct attachments_fetch *f = *list;
		af_cancel_running(f);
		event_del(f->finish);
		f->cancelled = true;
		af_report(f); /* unlinks it */
	}
}

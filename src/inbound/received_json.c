/* received_json.c — the JSON shapes of a received email (received_json.h). */
#include "inbound/received_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/base64.h"
#include "util/date.h"
#include "util/hex.h"

/* ---- Authentication-Results (RFC 8601 §2.2) ---- */

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* The word at p ([A-Za-z0-9._-]) into out; the octet after it. */
static const char *word_read(const char *p, char *out, size_t size)
{
	size_t n = 0;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
	       *p == '-' || *p == '_') {
		if (n + 1 < size)
			out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		p++;
	}
	out[n] = '\0';
	return p;
}

/* One resinfo "method=result ..." (its text up to the next ';'): the result into a's slot. */
static void resinfo_read(const char *p, struct received_auth *a)
{
	char method[32], result[16];
	p = word_read(skip_space(p), method, sizeof(method));
	p = skip_space(p);
	if (*p != '=')
		return;
	word_read(skip_space(p + 1), result, sizeof(result));
	if (result[0] == '\0')
		return;
	char *slot = strcmp(method, "spf") == 0	    ? a->spf
		     : strcmp(method, "dkim") == 0  ? a->dkim
		     : strcmp(method, "dmarc") == 0 ? a->dmarc
						    : NULL;
	/* several dkim results: one pass is enough (RFC 6376 §6.1), else the first */
	if (slot != NULL && (slot[0] == '\0' || (slot == a->dkim && strcmp(result, "pass") == 0)))
		snprintf(slot, sizeof(a->spf), "%s", result);
}

/* The ";" that starts the next resinfo (RFC 8601 §2.2) at or after p, or NULL. One inside a
 * quoted-string (a pvalue, §2.3: smtp.mailfrom="\"a;dmarc=pass\"@x", whose local part the sender
 * chose) or inside a comment (RFC 5322 §3.2.2, nested, with quoted-pairs) separates nothing. */
static const char *resinfo_next(const char *p)
{
	bool quoted = false;
	unsigned comment = 0;
	for (; *p != '\0'; p++) {
		if (*p == '\\' && (quoted || comment > 0)) {
			if (*++p == '\0')
				return NULL;
		} else if (quoted) {
			quoted = *p != '"';
		} else if (*p == '(') {
			comment++;
		} else if (*p == ')' && comment > 0) {
			comment--;
		} else if (comment == 0 && *p == '"') {
			quoted = true;
		} else if (comment == 0 && *p == ';') {
			return p;
		}
	}
	return NULL;
}

bool received_auth_read(const struct received_view *v, const char *hostname, struct received_auth *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	size_t hlen = strlen(hostname);
	for (size_t i = 0; i < v->header_count; i++) {
		const struct received_header *h = &v->headers[i];
		if (strcasecmp(h->name, "Authentication-Results") != 0)
			continue;
		/* authserv-id, then an optional version number, then ";" (RFC 8601 §2.2) */
		const char *p = skip_space(h->value);
		if (strncasecmp(p, hostname, hlen) != 0 || (p[hlen] != ';' && p[hlen] != ' ' && p[hlen] != '\t'))
			continue;
		for (const char *semi = resinfo_next(p); semi != NULL; semi = resinfo_next(semi + 1))
			resinfo_read(semi + 1, a_r);
		return true;
	}
	return false;
}

/* ---- the summary ---- */

static json_t *str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *list_json(char **items, size_t n, bool null_when_empty)
{
	if (n == 0 && null_when_empty)
		return json_null();
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_string(items[i]));
	return a;
}

static json_t *attachment_json(const struct received_attachment *at)
{
	return json_pack("{s:s, s:o, s:I, s:s, s:o, s:s}", "id", at->id, "filename", str_or_null(at->filename), "size",
			 (json_int_t)at->size, "content_type", at->content_type, "content_id", str_or_null(at->content_id),
			 "content_disposition", at->content_disposition);
}

json_t *received_summary_json(const struct received_view *v, const char *id, int64_t created_ms, const char *rcpt,
			      const struct received_auth *auth)
{
	char at[40];
	date_rfc3339_ms_format(created_ms, at, sizeof(at));
	json_t *attachments = json_array();
	for (size_t i = 0; attachments != NULL && i < v->attachment_count; i++)
		json_array_append_new(attachments, attachment_json(&v->attachments[i]));
	json_t *authentication =
		auth == NULL ? json_null()
			     : json_pack("{s:o, s:o, s:o}", "spf", str_or_null(auth->spf[0] ? auth->spf : NULL), "dkim",
					 str_or_null(auth->dkim[0] ? auth->dkim : NULL), "dmarc",
					 str_or_null(auth->dmarc[0] ? auth->dmarc : NULL));
	/* Resend's from, to and subject are strings and lists; a message without them gets "" and [] */
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:n, s:[s], s:s, s:s, s:o, s:o, s:o, s:o}", "id", id,
			 "created_at", at, "from", v->from != NULL ? v->from : "", "to", list_json(v->to, v->to_count, false),
			 "cc", list_json(v->cc, v->cc_count, true), "reply_to",
			 list_json(v->reply_to, v->reply_to_count, true), "bcc", "received_for", rcpt, "subject",
			 v->subject != NULL ? v->subject : "", "message_id", v->message_id != NULL ? v->message_id : "",
			 "in_reply_to", str_or_null(v->in_reply_to), "references", str_or_null(v->references),
			 "attachments", attachments, "authentication", authentication);
}

/* ---- the event ---- */

char *received_event_json(const json_t *summary, int64_t now_ms)
{
	char at[40];
	date_rfc3339_ms_format(now_ms, at, sizeof(at));
	json_t *attachments = json_array();
	const json_t *list = json_object_get(summary, "attachments");
	size_t i;
	const json_t *a;
	json_array_foreach(list, i, a)
	{
		json_array_append_new(attachments,
				      json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(a, "id"), "filename",
						json_object_get(a, "filename"), "content_type", json_object_get(a, "content_type"),
						"content_disposition", json_object_get(a, "content_disposition"),
						"content_id", json_object_get(a, "content_id"), "size", json_object_get(a, "size")));
	}
	/* ReceivedEmailEventData: cc and bcc are lists here, never null */
	const json_t *cc = json_object_get(summary, "cc");
	json_t *data = json_pack("{s:O, s:O, s:O, s:O, s:o, s:[], s:O, s:O, s:O, s:o, s:O, s:O, s:O}", "email_id",
				 json_object_get(summary, "id"), "created_at", json_object_get(summary, "created_at"),
				 "from", json_object_get(summary, "from"), "to", json_object_get(summary, "to"), "cc",
				 json_is_array(cc) ? json_incref((json_t *)cc) : json_array(), "bcc", "received_for",
				 json_object_get(summary, "received_for"), "message_id",
				 json_object_get(summary, "message_id"), "subject", json_object_get(summary, "subject"),
				 "attachments", attachments, "in_reply_to", json_object_get(summary, "in_reply_to"),
				 "references", json_object_get(summary, "references"), "authentication",
				 json_object_get(summary, "authentication"));
	json_t *body = data != NULL ? json_pack("{s:s, s:s, s:o}", "type", "email.received", "created_at", at, "data", data)
				    : NULL;
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	return text;
}

/* ---- the email ---- */

/* RFC 2046 §4.1.1: CRLF is the line break of text on the wire; an application reads "\n", as
 * Resend's answers have it. In place. */
static char *lines_local(char *s)
{
	char *o = s;
	for (const char *p = s; *p != '\0'; p++)
		if (!(p[0] == '\r' && p[1] == '\n'))
			*o++ = *p;
	*o = '\0';
	return s;
}

static json_t *text_json(const char *s)
{
	char *copy = s != NULL ? strdup(s) : NULL;
	json_t *j = copy != NULL ? json_string(lines_local(copy)) : json_null();
	free(copy);
	return j;
}

/* The attachment of v that an html "cid:" reference names (RFC 2392: the Content-ID, URL-encoded),
 * or NULL. ref is len octets after "cid:". */
static const struct received_attachment *cid_find(const struct received_view *v, const char *ref, size_t len)
{
	char id[256];
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < sizeof(id); i++) {
		int hi, lo;
		if (ref[i] == '%' && i + 2 < len && (hi = hex_digit_value((unsigned char)ref[i + 1])) >= 0 &&
		    (lo = hex_digit_value((unsigned char)ref[i + 2])) >= 0) {
			id[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			id[n++] = ref[i];
		}
	}
	id[n] = '\0';
	for (size_t i = 0; i < v->attachment_count; i++)
		if (v->attachments[i].content_id != NULL && strcmp(v->attachments[i].content_id, id) == 0 &&
		    strncmp(v->attachments[i].content_type, "image/", 6) == 0)
			return &v->attachments[i];
	return NULL;
}

/* What the data: URIs put in one html may add up to, in times the message's size: an html that
 * names one large image again and again must not make an answer of gigabytes. A reference past
 * it stays "cid:". */
#define INLINE_BUDGET_FACTOR 4

/* The data: URI (RFC 2397) of one attachment, made the first time the html names it: a message is
 * read once per image, not once per reference. */
struct inline_uri {
	char *uri; /* NULL when it could not be made */
	size_t len;
	bool tried;
};

static const struct inline_uri *inline_uri_of(struct inline_uri *c, const struct received_attachment *at,
					      const char *raw, size_t len, const struct received_view_limits *lim)
{
	if (c->tried)
		return c;
	c->tried = true;
	size_t size = 0;
	unsigned char *bytes = received_view_attachment(raw, len, lim, at->id, &size, NULL, NULL);
	size_t head = strlen("data:;base64,") + strlen(at->content_type);
	c->uri = bytes != NULL ? malloc(head + BASE64_ENCODED_SIZE(size)) : NULL;
	if (c->uri != NULL) {
		snprintf(c->uri, head + 1, "data:%s;base64,", at->content_type);
		if (base64_encode(bytes, size, c->uri + head, BASE64_ENCODED_SIZE(size))) {
			c->len = strlen(c->uri);
		} else {
			free(c->uri);
			c->uri = NULL;
		}
	}
	free(bytes);
	return c;
}

/* The html with each cid: reference to an inline image replaced by a data: URI; NULL when out of
 * memory. */
static char *html_inline_images(const struct received_view *v, const char *raw, size_t len,
				const struct received_view_limits *lim)
{
	struct inline_uri *uris = calloc(v->attachment_count > 0 ? v->attachment_count : 1, sizeof(*uris));
	char *out = NULL;
	size_t out_len = 0;
	FILE *f = uris != NULL ? open_memstream(&out, &out_len) : NULL;
	if (f == NULL) {
		free(uris);
		return NULL;
	}
	size_t budget = INLINE_BUDGET_FACTOR * len;
	const char *p = v->html;
	bool ok = true;
	while (ok && *p != '\0') {
		const char *c = strcasestr(p, "cid:");
		if (c == NULL) {
			ok = fputs(p, f) >= 0;
			break;
		}
		/* a reference sits in an attribute value: after a quote or '=' */
		bool attr = c > v->html && (c[-1] == '"' || c[-1] == '\'' || c[-1] == '=');
		size_t rlen = strcspn(c + 4, "\"' \t\r\n>)");
		const struct received_attachment *at = attr ? cid_find(v, c + 4, rlen) : NULL;
		const struct inline_uri *u =
			at != NULL ? inline_uri_of(&uris[at - v->attachments], at, raw, len, lim) : NULL;
		ok = fwrite(p, 1, (size_t)(c - p), f) == (size_t)(c - p);
		if (ok && u != NULL && u->uri != NULL && u->len <= budget) {
			ok = fwrite(u->uri, 1, u->len, f) == u->len;
			budget -= u->len;
		} else if (ok) {
			ok = fwrite(c, 1, 4 + rlen, f) == 4 + rlen; /* kept as it is */
		}
		p = c + 4 + rlen;
	}
	for (size_t i = 0; i < v->attachment_count; i++)
		free(uris[i].uri);
	free(uris);
	if (fclose(f) != 0 || !ok) {
		free(out);
		return NULL;
	}
	return out;
}

json_t *received_email_json(const json_t *summary, const struct received_view *v, const char *raw, size_t len,
			    const struct received_view_limits *lim, bool cid, const char *raw_url, int64_t expires_ms)
{
	json_t *e = json_deep_copy(summary);
	json_t *headers = json_object();
	if (e == NULL || headers == NULL) {
		json_decref(e);
		json_decref(headers);
		return NULL;
	}
	for (size_t i = 0; i < v->header_count; i++)
		if (json_object_get(headers, v->headers[i].name) == NULL)
			json_object_set_new(headers, v->headers[i].name, json_string(v->headers[i].value));
	json_t *html = json_null();
	if (v->html != NULL) {
		char *inlined = cid ? NULL : html_inline_images(v, raw, len, lim);
		html = text_json(inlined != NULL ? inlined : v->html);
		free(inlined);
	}
	json_t *rawj = json_null();
	if (raw_url != NULL) {
		char at[40];
		date_rfc3339_ms_format(expires_ms, at, sizeof(at));
		rawj = json_pack("{s:s, s:s}", "download_url", raw_url, "expires_at", at);
	}
	json_object_set_new(e, "object", json_string("email"));
	json_object_set_new(e, "html", html);
	json_object_set_new(e, "text", text_json(v->text));
	json_object_set_new(e, "headers", headers);
	json_object_set_new(e, "raw", rawj);
	return e;
}

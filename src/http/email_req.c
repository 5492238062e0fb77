/* email_req.c — owns the checking of a send request of the HTTP API (see email_req.h): Resend's fields,
 * types and error names, and the rules that keep a request from ever injecting a header field or
 * breaking the MIME structure compose.c builds; attachments are in email_req_attach.c. Pure: no
 * I/O, and the clock is lim->now. */
#include "http/email_req.h"
#include "http/email_req_ctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/hex.h"
#include "util/utf8.h"

static const char email_req_addr_format[] =
	"The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.";

enum email_req_error email_req_fail(struct email_req_ctx *c, enum email_req_error e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, c->msg_size, fmt, ap);
	va_end(ap);
	return e;
}

enum email_req_error email_req_nomem(struct email_req_ctx *c)
{
	return email_req_fail(c, EMAIL_REQ_NO_MEMORY, "Out of memory.");
}

const char *email_req_error_name(enum email_req_error e)
{
	switch (e) {
	case EMAIL_REQ_OK:
		return "ok";
	case EMAIL_REQ_MISSING_FIELD:
		return "missing_required_field";
	case EMAIL_REQ_VALIDATION:
		return "validation_error";
	case EMAIL_REQ_INVALID_FROM:
		return "invalid_from_address";
	case EMAIL_REQ_INVALID_ATTACHMENT:
		return "invalid_attachment";
	case EMAIL_REQ_NO_MEMORY:
		return "internal_server_error";
	}
	return "internal_server_error";
}

/* ---- small helpers ---- */

/* A field of obj, or NULL when it is absent or null: the SDK's undefined disappears in
 * JSON.stringify, other clients send null, and both mean "not given". */
const json_t *email_req_field(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return v == NULL || json_is_null(v) ? NULL : v;
}

/* The octets of a string value, or NULL when v is not a string. *nul_r tells a string that holds
 * a NUL: http_json_load never makes one, but a json_t built elsewhere can. */
static const char *email_req_str(const json_t *v, size_t *len_r, bool *nul_r)
{
	*nul_r = false;
	*len_r = 0;
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	*len_r = json_string_length(v);
	*nul_r = memchr(s, '\0', *len_r) != NULL;
	return s;
}

/* A string field that must be a string with no NUL: the error names the field. */
enum email_req_error email_req_str_field(struct email_req_ctx *c, const json_t *v, const char *field,
						enum email_req_error e, const char **s_r, size_t *len_r)
{
	bool nul;
	*s_r = email_req_str(v, len_r, &nul);
	if (*s_r == NULL)
		return email_req_fail(c, e, "The `%s` field must be a string.", field);
	if (nul)
		return email_req_fail(c, e, "The `%s` field must not contain NUL characters.", field);
	return EMAIL_REQ_OK;
}

static bool email_req_has_crlf(const char *s, size_t len)
{
	return memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL;
}

/* C0 controls (CR, LF and NUL among them) and DEL: never in a display name or a file name. */
bool email_req_has_ctl(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

char *email_req_dup(const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (p != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

bool email_req_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- mailboxes ---- */

enum email_mailbox_result {
	EMAIL_MAILBOX_OK,
	EMAIL_MAILBOX_BAD,
	EMAIL_MAILBOX_NO_MEMORY,
};

/* The end of the quoted string that starts at s[b] == '"' (the index of its closing quote), or len.
 * RFC 5322 §3.2.4: a backslash quotes the octet after it. */
static size_t email_mailbox_quote_end(const char *s, size_t b, size_t len)
{
	for (size_t i = b + 1; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == '"')
			return i;
	}
	return len;
}

/* The display name s[b..e) (trimmed, maybe empty) into m->name: unquoted when it is one quoted
 * string, kept as given otherwise (compose.c encodes it, RFC 2047). */
static enum email_mailbox_result email_mailbox_name(const char *s, size_t b, size_t e,
						    struct email_mailbox *m, const char **error_r)
{
	char buf[EMAIL_REQ_NAME_MAX];
	size_t n = 0;
	const char *src = s + b;
	size_t len = e - b;

	if (len >= 2 && s[b] == '"' && email_mailbox_quote_end(s, b, e) == e - 1) {
		for (size_t i = b + 1; i < e - 1; i++) {
			if (s[i] == '\\')
				i++; /* RFC 5322 §3.2.1 quoted-pair; the quote end guarantees i < e - 1 */
			if (n == sizeof(buf)) {
				*error_r = "display name longer than 256 octets";
				return EMAIL_MAILBOX_BAD;
			}
			buf[n++] = s[i];
		}
		src = buf;
		len = n;
	}
	if (len > EMAIL_REQ_NAME_MAX) {
		*error_r = "display name longer than 256 octets";
		return EMAIL_MAILBOX_BAD;
	}
	if (email_req_has_ctl(src, len)) {
		*error_r = "control character (CR, LF, NUL, ...) in the display name";
		return EMAIL_MAILBOX_BAD;
	}
	if (!utf8_valid((const unsigned char *)src, len)) {
		*error_r = "display name is not valid UTF-8";
		return EMAIL_MAILBOX_BAD;
	}
	if (len == 0)
		return EMAIL_MAILBOX_OK;
	m->name = email_req_dup(src, len);
	if (m->name == NULL) {
		*error_r = "out of memory";
		return EMAIL_MAILBOX_NO_MEMORY;
	}
	return EMAIL_MAILBOX_OK;
}

/* "a@b", "<a@b>", "Name <a@b>" or "\"Quoted, Name\" <a@b>", len octets. The name is read first when
 * it is quoted, so that a '<' inside the quotes is not taken for the address's. */
static enum email_mailbox_result email_mailbox_scan(const char *s, size_t len, struct email_mailbox *m_r,
						    const char **error_r)
{
	size_t b = 0, e = len, p, lt;
	const char *err = NULL;

	memset(m_r, 0, sizeof(*m_r));
	while (b < e && email_req_is_wsp(s[b]))
		b++;
	while (e > b && email_req_is_wsp(s[e - 1]))
		e--;
	if (b == e) {
		*error_r = "empty address";
		return EMAIL_MAILBOX_BAD;
	}
	p = b;
	if (s[b] == '"') {
		p = email_mailbox_quote_end(s, b, e);
		if (p == e) {
			*error_r = "unterminated quoted string";
			return EMAIL_MAILBOX_BAD;
		}
	}
	for (lt = p; lt < e && s[lt] != '<'; lt++)
		;
	if (lt == e) {
		/* no angle brackets: a bare addr-spec (a quoted local part is checked by addr.c) */
		if (addr_parse_mailbox(s + b, e - b, ADDR_ALLOW_UTF8, &m_r->addr, &err) != ADDR_OK) {
			*error_r = err;
			return EMAIL_MAILBOX_BAD;
		}
		return EMAIL_MAILBOX_OK;
	}
	if (s[e - 1] != '>') {
		*error_r = memchr(s + lt, '>', e - lt) != NULL ? "text after the closing '>'"
							       : "'<' without a closing '>'";
		return EMAIL_MAILBOX_BAD;
	}
	size_t ab = lt + 1, ae = e - 1;
	while (ab < ae && email_req_is_wsp(s[ab]))
		ab++;
	while (ae > ab && email_req_is_wsp(s[ae - 1]))
		ae--;
	if (addr_parse_mailbox(s + ab, ae - ab, ADDR_ALLOW_UTF8, &m_r->addr, &err) != ADDR_OK) {
		*error_r = err;
		return EMAIL_MAILBOX_BAD;
	}
	size_t ne = lt;
	while (ne > b && email_req_is_wsp(s[ne - 1]))
		ne--;
	enum email_mailbox_result r = email_mailbox_name(s, b, ne, m_r, error_r);
	if (r != EMAIL_MAILBOX_OK)
		memset(m_r, 0, sizeof(*m_r));
	return r;
}

bool email_mailbox_parse(const char *s, struct email_mailbox *m_r, const char **error_r)
{
	const char *err = NULL;
	if (email_mailbox_scan(s, strlen(s), m_r, &err) == EMAIL_MAILBOX_OK)
		return true;
	if (error_r != NULL)
		*error_r = err;
	return false;
}

/* to, cc, bcc and reply_to: a string or an array of strings (Resend), each one mailbox. An empty
 * array is "not given", except for a required field. */
static enum email_req_error email_req_mailboxes(struct email_req_ctx *c, const json_t *obj, const char *field,
						size_t max, const char *noun, const char *nouns,
						bool required, struct email_mailbox **list_r, size_t *count_r)
{
	const json_t *v = email_req_field(obj, field);
	size_t n;

	if (v == NULL)
		return required ? email_req_fail(c, EMAIL_REQ_MISSING_FIELD, "Missing `%s` field.", field)
				: EMAIL_REQ_OK;
	if (json_is_string(v))
		n = 1;
	else if (json_is_array(v))
		n = json_array_size(v);
	else
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `%s` field must be a string or an array of strings.", field);
	if (n == 0)
		return required ? email_req_fail(c, EMAIL_REQ_VALIDATION,
						 "The `%s` field must contain at least one %s.", field, noun)
				: EMAIL_REQ_OK;
	/* before anything is allocated: a huge array costs nothing but this comparison */
	if (n > max)
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `%s` field must contain at most %zu %s.",
				      field, max, nouns);
	*list_r = calloc(n, sizeof(**list_r));
	if (*list_r == NULL)
		return email_req_nomem(c);
	for (size_t i = 0; i < n; i++) {
		const json_t *el = json_is_string(v) ? v : json_array_get(v, i);
		char label[32];
		const char *s, *err = "";
		size_t len;
		bool nul;

		if (json_is_string(v))
			snprintf(label, sizeof(label), "%s", field);
		else
			snprintf(label, sizeof(label), "%s[%zu]", field, i);
		s = email_req_str(el, &len, &nul);
		if (s == NULL)
			return email_req_fail(c, EMAIL_REQ_VALIDATION,
					      "The `%s` field must be a string or an array of strings.",
					      field);
		enum email_mailbox_result r =
			nul ? EMAIL_MAILBOX_BAD : email_mailbox_scan(s, len, &(*list_r)[i], &err);
		if (r == EMAIL_MAILBOX_NO_MEMORY)
			return email_req_nomem(c);
		if (r != EMAIL_MAILBOX_OK)
			return email_req_fail(c, EMAIL_REQ_VALIDATION, "Invalid `%s` field (%s). %s", label,
					      nul ? "NUL character" : err, email_req_addr_format);
		(*count_r)++;
	}
	return EMAIL_REQ_OK;
}

static enum email_req_error email_req_from(struct email_req_ctx *c, const json_t *obj, struct email_req *r)
{
	const json_t *v = email_req_field(obj, "from");
	const char *s, *err;
	size_t len;
	bool nul;

	if (v == NULL)
		return email_req_fail(c, EMAIL_REQ_MISSING_FIELD, "Missing `from` field.");
	s = email_req_str(v, &len, &nul);
	if (s == NULL)
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `from` field must be a string.");
	enum email_mailbox_result mr = nul ? EMAIL_MAILBOX_BAD : email_mailbox_scan(s, len, &r->from, &err);
	if (mr == EMAIL_MAILBOX_NO_MEMORY)
		return email_req_nomem(c);
	if (mr != EMAIL_MAILBOX_OK)
		return email_req_fail(c, EMAIL_REQ_INVALID_FROM, "Invalid `from` field. %s",
				      email_req_addr_format);
	return EMAIL_REQ_OK;
}

static enum email_req_error email_req_recipients(struct email_req_ctx *c, const json_t *obj,
						 struct email_req *r)
{
	enum email_req_error e;

	e = email_req_mailboxes(c, obj, "to", EMAIL_REQ_MAX_RCPTS, "recipient", "recipients", true, &r->to,
				&r->to_count);
	if (e == EMAIL_REQ_OK)
		e = email_req_mailboxes(c, obj, "cc", EMAIL_REQ_MAX_RCPTS, "recipient", "recipients", false,
					&r->cc, &r->cc_count);
	if (e == EMAIL_REQ_OK)
		e = email_req_mailboxes(c, obj, "bcc", EMAIL_REQ_MAX_RCPTS, "recipient", "recipients", false,
					&r->bcc, &r->bcc_count);
	if (e != EMAIL_REQ_OK)
		return e;
	/* Resend: at most 50 recipients per email, to, cc and bcc together */
	if (r->to_count + r->cc_count + r->bcc_count > EMAIL_REQ_MAX_RCPTS)
		return email_req_fail(
			c, EMAIL_REQ_VALIDATION,
			"The `to`, `cc` and `bcc` fields must contain at most %d recipients together.",
			EMAIL_REQ_MAX_RCPTS);
	return email_req_mailboxes(c, obj, "reply_to", EMAIL_REQ_MAX_REPLY_TO, "address", "addresses", false,
				   &r->reply_to, &r->reply_to_count);
}

/* ---- subject and bodies ---- */

static enum email_req_error email_req_subject(struct email_req_ctx *c, const json_t *obj, struct email_req *r)
{
	const json_t *v = email_req_field(obj, "subject");
	const char *s;
	size_t len;
	enum email_req_error e;

	if (v == NULL)
		return email_req_fail(c, EMAIL_REQ_MISSING_FIELD, "Missing `subject` field.");
	if ((e = email_req_str_field(c, v, "subject", EMAIL_REQ_VALIDATION, &s, &len)) != EMAIL_REQ_OK)
		return e;
	/* a header field's value: CR or LF would end it and start one the client chose (RFC 5322 §2.2) */
	if (email_req_has_crlf(s, len))
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `subject` field must not contain CR or LF.");
	if (len > EMAIL_REQ_VALUE_MAX)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `subject` field must be at most %d octets.", EMAIL_REQ_VALUE_MAX);
	r->subject = email_req_dup(s, len);
	return r->subject == NULL ? email_req_nomem(c) : EMAIL_REQ_OK;
}

static enum email_req_error email_req_body(struct email_req_ctx *c, const json_t *obj, const char *field,
					   char **out_r)
{
	const json_t *v = email_req_field(obj, field);
	const char *s;
	size_t len;
	enum email_req_error e;

	if (v == NULL)
		return EMAIL_REQ_OK;
	if ((e = email_req_str_field(c, v, field, EMAIL_REQ_VALIDATION, &s, &len)) != EMAIL_REQ_OK)
		return e;
	*out_r = email_req_dup(s, len);
	return *out_r == NULL ? email_req_nomem(c) : EMAIL_REQ_OK;
}

static enum email_req_error email_req_bodies(struct email_req_ctx *c, const json_t *obj, struct email_req *r)
{
	enum email_req_error e = email_req_body(c, obj, "html", &r->html);
	if (e == EMAIL_REQ_OK)
		e = email_req_body(c, obj, "text", &r->text);
	if (e != EMAIL_REQ_OK)
		return e;
	if (r->html == NULL && r->text == NULL) {
		/* the Node.js SDK renders react into html itself; only a hand-made request gets here */
		if (email_req_field(obj, "react") != NULL)
			return email_req_fail(
				c, EMAIL_REQ_VALIDATION,
				"The `react` field is rendered by the Node.js SDK only: send `html` or `text`.");
		return email_req_fail(c, EMAIL_REQ_MISSING_FIELD, "Missing `html` or `text` field.");
	}
	return EMAIL_REQ_OK;
}

/* ---- headers ---- */

/* Header fields the composer writes itself, or that only servers on the way may add: letting a
 * request set them would duplicate a field RFC 5322 §3.6 allows once, contradict the MIME
 * structure, or forge a server's word. */
static const struct email_req_denied {
	const char *name;
	const char *instead;
} email_req_denied_headers[] = {
	{ "From", "use the `from` field" },
	{ "Sender", "it is derived from the `from` field" },
	{ "To", "use the `to` field" },
	{ "Cc", "use the `cc` field" },
	{ "Bcc", "use the `bcc` field" },
	{ "Reply-To", "use the `reply_to` field" },
	{ "Subject", "use the `subject` field" },
	{ "Date", "the server sets it when the email is sent; use `scheduled_at` to send it later" },
	{ "MIME-Version", "the server sets it" },
	{ "Content-Type", "the server sets it from `html`, `text` and `attachments`" },
	{ "Content-Transfer-Encoding", "the server chooses the encoding of each part" },
	{ "Content-Disposition", "the server sets it on each attachment" },
	{ "Content-ID", "use `content_id` in `attachments`" },
	/* RFC 5321 §4.4: the final delivery server adds Return-Path and every relay a Received */
	{ "Return-Path", "the delivering server adds it from the envelope sender" },
	{ "Received", "only servers add trace fields" },
	{ "DKIM-Signature", "the server signs the email" },
	/* RFC 8601 §5 and RFC 8617: only the receiving side and intermediaries add these */
	{ "Authentication-Results", "only receiving servers add it" },
	{ "ARC-Seal", "only forwarding servers add it" },
	{ "ARC-Message-Signature", "only forwarding servers add it" },
	{ "ARC-Authentication-Results", "only forwarding servers add it" },
};

/* RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126 */
static bool email_req_header_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > EMAIL_REQ_HEADER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 33 || ch > 126 || ch == ':')
			return false;
	}
	return true;
}

/* RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">", printable ASCII, no brackets inside. */
static bool email_req_msg_id_ok(const char *s, size_t len)
{
	if (len < 5 || s[0] != '<' || s[len - 1] != '>')
		return false;
	const char *at = memchr(s + 1, '@', len - 2);
	if (at == NULL || at == s + 1 || at == s + len - 2)
		return false;
	for (size_t i = 1; i < len - 1; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 33 || ch > 126 || ch == '<' || ch == '>')
			return false;
	}
	return true;
}

static enum email_req_error email_req_header(struct email_req_ctx *c, const char *name, size_t name_len,
					     const json_t *v, struct email_req *r)
{
	const char *s;
	size_t len;
	bool nul;

	if (email_req_has_crlf(name, name_len))
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "A header name in `headers` contains CR or LF.");
	if (!email_req_header_name_ok(name, name_len))
		return email_req_fail(
			c, EMAIL_REQ_VALIDATION,
			"A header name in `headers` is not valid: names are 1 to %d printable ASCII "
			"characters other than `:` (RFC 5322 §3.6.8).",
			EMAIL_REQ_HEADER_NAME_MAX);
	/* from here on the name is printable ASCII and safe to quote back */
	for (size_t i = 0; i < sizeof(email_req_denied_headers) / sizeof(email_req_denied_headers[0]); i++)
		if (strcasecmp(name, email_req_denied_headers[i].name) == 0)
			return email_req_fail(c, EMAIL_REQ_VALIDATION,
					      "The `%s` header cannot be set in `headers`: %s.", name,
					      email_req_denied_headers[i].instead);
	for (size_t i = 0; i < r->header_count; i++)
		if (strcasecmp(name, r->headers[i].name) == 0)
			return email_req_fail(
				c, EMAIL_REQ_VALIDATION,
				"The `%s` header is given twice in `headers` (names are case-insensitive).",
				name);
	s = email_req_str(v, &len, &nul);
	if (s == NULL)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `%s` header in `headers` must be a string.", name);
	if (nul)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `%s` header in `headers` must not contain NUL.", name);
	if (email_req_has_crlf(s, len))
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `%s` header in `headers` must not contain CR or LF.", name);
	if (len > EMAIL_REQ_VALUE_MAX)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `%s` header in `headers` must be at most %d octets.", name,
				      EMAIL_REQ_VALUE_MAX);
	if (strcasecmp(name, "Message-ID") == 0 && !email_req_msg_id_ok(s, len))
		return email_req_fail(
			c, EMAIL_REQ_VALIDATION,
			"The `Message-ID` header in `headers` must look like `<id@domain>` (RFC 5322 §3.6.4).");

	struct email_header *h = &r->headers[r->header_count];
	h->name = email_req_dup(name, name_len);
	h->value = email_req_dup(s, len);
	r->header_count++; /* counted even when a copy failed, so that email_req_free sees both */
	return h->name == NULL || h->value == NULL ? email_req_nomem(c) : EMAIL_REQ_OK;
}

static enum email_req_error email_req_headers(struct email_req_ctx *c, const json_t *obj, struct email_req *r)
{
	const json_t *v = email_req_field(obj, "headers");
	enum email_req_error e;

	if (v == NULL)
		return EMAIL_REQ_OK;
	if (!json_is_object(v))
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `headers` field must be an object.");
	size_t n = json_object_size(v);
	if (n == 0)
		return EMAIL_REQ_OK;
	if (n > EMAIL_REQ_MAX_HEADERS)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `headers` field must contain at most %d headers.",
				      EMAIL_REQ_MAX_HEADERS);
	r->headers = calloc(n, sizeof(*r->headers));
	if (r->headers == NULL)
		return email_req_nomem(c);
	/* jansson's iterator takes a non-const object; it is only read */
	for (void *it = json_object_iter((json_t *)v); it != NULL;
	     it = json_object_iter_next((json_t *)v, it)) {
		const char *key = json_object_iter_key(it);
		size_t key_len = json_object_iter_key_len(it);
		if (memchr(key, '\0', key_len) != NULL)
			return email_req_fail(c, EMAIL_REQ_VALIDATION,
					      "A header name in `headers` contains NUL.");
		if ((e = email_req_header(c, key, key_len, json_object_iter_value(it), r)) != EMAIL_REQ_OK)
			return e;
	}
	return EMAIL_REQ_OK;
}

/* ---- tags ---- */

/* Resend: ASCII letters, digits, '_' and '-', at most 256 characters. */
static bool email_req_tag_ok(const char *s, size_t len)
{
	if (len == 0 || len > EMAIL_REQ_TAG_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static enum email_req_error email_req_tag_part(struct email_req_ctx *c, const json_t *tag, size_t i,
					       const char *key, char **out_r)
{
	const json_t *v = email_req_field(tag, key);
	const char *s;
	size_t len;
	bool nul;

	if (v == NULL)
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `tags[%zu].%s` field is required.", i,
				      key);
	if ((s = email_req_str(v, &len, &nul)) == NULL)
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `tags[%zu].%s` field must be a string.",
				      i, key);
	if (nul || !email_req_tag_ok(s, len))
		return email_req_fail(
			c, EMAIL_REQ_VALIDATION,
			"The `tags[%zu].%s` field must be 1 to %d ASCII letters, digits, `_` or `-`.", i, key,
			EMAIL_REQ_TAG_MAX);
	*out_r = email_req_dup(s, len);
	return *out_r == NULL ? email_req_nomem(c) : EMAIL_REQ_OK;
}

static enum email_req_error email_req_tags(struct email_req_ctx *c, const json_t *obj, struct email_req *r)
{
	const json_t *v = email_req_field(obj, "tags");
	enum email_req_error e;

	if (v == NULL)
		return EMAIL_REQ_OK;
	if (!json_is_array(v))
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `tags` field must be an array.");
	size_t n = json_array_size(v);
	if (n == 0)
		return EMAIL_REQ_OK;
	if (n > EMAIL_REQ_MAX_TAGS)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `tags` field must contain at most %d tags.", EMAIL_REQ_MAX_TAGS);
	r->tags = calloc(n, sizeof(*r->tags));
	if (r->tags == NULL)
		return email_req_nomem(c);
	for (size_t i = 0; i < n; i++) {
		const json_t *tag = json_array_get(v, i);
		r->tag_count++;
		if (!json_is_object(tag))
			return email_req_fail(c, EMAIL_REQ_VALIDATION,
					      "The `tags[%zu]` field must be an object.", i);
		if ((e = email_req_tag_part(c, tag, i, "name", &r->tags[i].name)) != EMAIL_REQ_OK ||
		    (e = email_req_tag_part(c, tag, i, "value", &r->tags[i].value)) != EMAIL_REQ_OK)
			return e;
	}
	return EMAIL_REQ_OK;
}

/* ---- scheduled_at ---- */

/* Exactly n decimal digits at s. */
static bool email_req_digits(const char *s, size_t n, int *v_r)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t email_req_days(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool email_req_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* RFC 3339 §5.6 date-time: full-date ("T" / "t" / " ") full-time, time-offset "Z" / "z" / ("+" / "-")
 * HH ":" MM. A fraction of a second is dropped. A leap second (:60, §5.7) counts as :59: unix time
 * has no name for it, and a second early is as good as any for sending. No offset is refused: the
 * instant would be a guess. */
bool email_req_parse_time(const char *s, int64_t *t_r)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t len = strlen(s), i = 19;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;

	if (len < 20 || !email_req_digits(s, 4, &y) || s[4] != '-' || !email_req_digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !email_req_digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !email_req_digits(s + 11, 2, &h) ||
	    s[13] != ':' || !email_req_digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !email_req_digits(s + 17, 2, &sec))
		return false;
	if (s[i] == '.') {
		size_t f = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return false;
	}
	if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
		sign = 0;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && email_req_digits(s + i + 1, 2, &oh) &&
		   s[i + 3] == ':' && email_req_digits(s + i + 4, 2, &om)) {
		sign = s[i] == '+' ? 1 : -1;
	} else {
		return false;
	}
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && email_req_leap(y)))
		return false;
	if (sec == 60)
		sec = 59;
	*t_r = email_req_days(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	return true;
}

bool email_req_parse_time_ms(const char *s, int64_t *ms_r)
{
	int64_t t;
	if (!email_req_parse_time(s, &t))
		return false;
	int64_t ms = 0;
	if (s[19] == '.') /* the fraction's first three digits; a well-formed one (checked above) */
		for (int i = 0, scale = 100; i < 3 && s[20 + i] >= '0' && s[20 + i] <= '9'; i++, scale /= 10)
			ms += (s[20 + i] - '0') * scale;
	*ms_r = t * 1000 + ms;
	return true;
}

/* The part of Resend's natural language this server understands: "in N minute(s) | min(s) |
 * hour(s) | day(s)", any case, as a number of seconds. Anything else ("tomorrow at 9am") is refused
 * rather than guessed. */
static bool email_req_parse_delay(const char *s, int64_t *secs_r)
{
	static const struct {
		const char *word;
		int64_t secs;
	} units[] = {
		{ "minute", 60 }, { "minutes", 60 }, { "min", 60 },    { "mins", 60 },
		{ "hour", 3600 }, { "hours", 3600 }, { "day", 86400 }, { "days", 86400 },
	};
	size_t i = 0, len = strlen(s);
	int64_t n = 0;

	while (i < len && email_req_is_wsp(s[i]))
		i++;
	if (len - i < 2 || strncasecmp(s + i, "in", 2) != 0)
		return false;
	i += 2;
	if (i == len || !email_req_is_wsp(s[i]))
		return false;
	while (i < len && email_req_is_wsp(s[i]))
		i++;
	size_t d = i;
	while (i < len && s[i] >= '0' && s[i] <= '9' && i - d < 7)
		n = n * 10 + (s[i++] - '0');
	if (i == d || (i < len && s[i] >= '0' && s[i] <= '9'))
		return false; /* no number, or more than 7 digits: far beyond any limit anyway */
	while (i < len && email_req_is_wsp(s[i]))
		i++;
	size_t w = i;
	while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		i++;
	size_t wl = i - w;
	while (i < len && email_req_is_wsp(s[i]))
		i++;
	if (i != len)
		return false;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (strlen(units[u].word) == wl && strncasecmp(s + w, units[u].word, wl) == 0) {
			*secs_r = n * units[u].secs;
			return true;
		}
	return false;
}

static enum email_req_error email_req_schedule(struct email_req_ctx *c, const json_t *obj,
					       struct email_req *r)
{
	const json_t *v = email_req_field(obj, "scheduled_at");
	const char *s;
	size_t len;
	int64_t t, delay, now = c->lim->now;
	enum email_req_error e;

	if (v == NULL)
		return EMAIL_REQ_OK;
	if ((e = email_req_str_field(c, v, "scheduled_at", EMAIL_REQ_VALIDATION, &s, &len)) != EMAIL_REQ_OK)
		return e;
	if (email_req_parse_delay(s, &delay))
		t = now + delay;
	else if (!email_req_parse_time(s, &t))
		return email_req_fail(
			c, EMAIL_REQ_VALIDATION,
			"The `scheduled_at` field must be an ISO 8601 date-time with an offset, such as "
			"`2024-08-05T11:52:01.858Z`, or a delay such as `in 10 min`.");
	if (t < now - EMAIL_REQ_SCHEDULE_SLACK)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `scheduled_at` field must not be in the past.");
	if (t > now + EMAIL_REQ_SCHEDULE_AHEAD + EMAIL_REQ_SCHEDULE_SLACK)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `scheduled_at` field must be at most 30 days in the future.");
	r->scheduled_at = t;
	return EMAIL_REQ_OK;
}

/* mailwerk's own: RFC 8058 one-click unsubscribe for this message. The URL names its one
 * recipient, so the message must have exactly one (bulk mail goes out one message per person). */
static enum email_req_error email_req_unsubscribe(struct email_req_ctx *c, const json_t *obj, struct email_req *r)
{
	const json_t *v = email_req_field(obj, "one_click_unsubscribe");
	if (v == NULL)
		return EMAIL_REQ_OK;
	if (!json_is_boolean(v))
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `one_click_unsubscribe` field must be a boolean.");
	if (json_is_true(v) && r->to_count + r->cc_count + r->bcc_count != 1)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `one_click_unsubscribe` field needs exactly one recipient: its link unsubscribes "
				      "that address.");
	r->one_click_unsubscribe = json_is_true(v);
	return EMAIL_REQ_OK;
}

/* RFC 5322 §3.6.4 msg-id as a sender gives it: "<" id-left "@" id-right ">", printable ASCII
 * without spaces (the obsolete forms with comments and folding are not taken). */
#define EMAIL_REQ_MSGID_MAX 998
static bool msgid_ok(const char *s, size_t len)
{
	if (len < 5 || len > EMAIL_REQ_MSGID_MAX || s[0] != '<' || s[len - 1] != '>')
		return false;
	size_t at = 0;
	for (size_t i = 1; i + 1 < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 32 || ch >= 127 || ch == '<' || ch == '>')
			return false;
		if (ch == '@')
			at = at == 0 ? i : at;
	}
	return at > 1 && at + 2 < len;
}

bool email_req_is_received_id(const char *s)
{
	/* the 8-4-4-4-12 hex shape of an id (inbound/inbound_store.h) */
	if (strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : hex_digit_value((unsigned char)s[i]) < 0)
			return false;
	return true;
}

const struct email_header *email_req_header_find(const struct email_req *r, const char *name)
{
	for (size_t i = 0; i < r->header_count; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return &r->headers[i];
	return NULL;
}

/* mailwerk's in_reply_to (a msg-id, or a received email's id) and references (a msg-id or an array
 * of them), for a reply that threads (RFC 5322 §3.6.4). */
#define EMAIL_REQ_REFERENCES_MAX 100
static enum email_req_error email_req_threading(struct email_req_ctx *c, const json_t *obj, struct email_req *r)
{
	const json_t *irt = email_req_field(obj, "in_reply_to");
	const json_t *refs = email_req_field(obj, "references");
	const char *s;
	size_t len;
	enum email_req_error e;
	if ((irt != NULL && email_req_header_find(r, "In-Reply-To") != NULL) || (refs != NULL && email_req_header_find(r, "References") != NULL))
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "Give In-Reply-To and References either as fields or in `headers`, not both.");
	if (irt != NULL) {
		if ((e = email_req_str_field(c, irt, "in_reply_to", EMAIL_REQ_VALIDATION, &s, &len)) != EMAIL_REQ_OK)
			return e;
		if (!email_req_is_received_id(s) && !msgid_ok(s, len))
			return email_req_fail(c, EMAIL_REQ_VALIDATION,
					      "The `in_reply_to` field must be a received email's id or a Message-ID "
					      "(<id@domain>).");
		if ((r->in_reply_to = email_req_dup(s, len)) == NULL)
			return email_req_nomem(c);
	}
	/* the SDK passes no field of its own, only headers: an In-Reply-To there that is a received
	 * email's id is taken as the field would be */
	const struct email_header *h = email_req_header_find(r, "In-Reply-To");
	if (h != NULL && email_req_is_received_id(h->value)) {
		size_t at = (size_t)(h - r->headers);
		r->in_reply_to = r->headers[at].value;
		free(r->headers[at].name);
		memmove(&r->headers[at], &r->headers[at + 1], (r->header_count - at - 1) * sizeof(r->headers[0]));
		r->header_count--;
	}
	if (refs == NULL)
		return EMAIL_REQ_OK;
	size_t n = json_is_array(refs) ? json_array_size(refs) : 1;
	if ((!json_is_array(refs) && !json_is_string(refs)) || n == 0 || n > EMAIL_REQ_REFERENCES_MAX)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `references` field must be a Message-ID or an array of 1 to %d of them.",
				      EMAIL_REQ_REFERENCES_MAX);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_is_array(refs) ? json_array_get(refs, i) : refs;
		if ((e = email_req_str_field(c, v, "references", EMAIL_REQ_VALIDATION, &s, &len)) != EMAIL_REQ_OK)
			return e;
		if (!msgid_ok(s, len))
			return email_req_fail(c, EMAIL_REQ_VALIDATION,
					      "The `references` field must hold Message-IDs (<id@domain>).");
		total += len + 1;
	}
	if ((r->references = malloc(total)) == NULL)
		return email_req_nomem(c);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_is_array(refs) ? json_array_get(refs, i) : refs;
		size_t l = json_string_length(v);
		if (o > 0)
			r->references[o++] = ' ';
		memcpy(r->references + o, json_string_value(v), l);
		o += l;
	}
	r->references[o] = '\0';
	return EMAIL_REQ_OK;
}

/* ---- the request ---- */

enum email_req_error email_req_parse(const json_t *obj, const struct email_req_limits *lim,
				     struct email_req **req_r, char *msg, size_t msg_size)
{
	char dummy[1];
	struct email_req_ctx c = { .lim = lim, .msg = msg, .msg_size = msg_size };
	enum email_req_error e;

	if (msg == NULL || msg_size == 0) {
		c.msg = dummy;
		c.msg_size = sizeof(dummy);
	}
	c.msg[0] = '\0';
	*req_r = NULL;
	if (!json_is_object(obj))
		return email_req_fail(&c, EMAIL_REQ_VALIDATION, "The request body must be a JSON object.");
	if (email_req_field(obj, "template") != NULL)
		return email_req_fail(
			&c, EMAIL_REQ_VALIDATION,
			"The `template` field is not supported by this server: send `html` or `text`.");
	struct email_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return email_req_nomem(&c);
	if ((e = email_req_from(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_recipients(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_subject(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_bodies(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_headers(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_threading(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_attachments(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_tags(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_schedule(&c, obj, r)) == EMAIL_REQ_OK &&
	    (e = email_req_unsubscribe(&c, obj, r)) == EMAIL_REQ_OK) {
		*req_r = r;
		return EMAIL_REQ_OK;
	}
	email_req_free(r);
	return e;
}

static void email_req_mailboxes_free(struct email_mailbox *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

void email_req_free(struct email_req *r)
{
	if (r == NULL)
		return;
	free(r->from.name);
	email_req_mailboxes_free(r->to, r->to_count);
	email_req_mailboxes_free(r->cc, r->cc_count);
	email_req_mailboxes_free(r->bcc, r->bcc_count);
	email_req_mailboxes_free(r->reply_to, r->reply_to_count);
	free(r->subject);
	free(r->html);
	free(r->text);
	free(r->in_reply_to);
	free(r->references);
	for (size_t i = 0; i < r->header_count; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	for (size_t i = 0; i < r->attachment_count; i++) {
		struct email_attachment *a = &r->attachments[i];
		free(a->filename);
		free(a->content);
		free(a->content_type);
		free(a->content_id);
		free(a->path);
	}
	free(r->attachments);
	for (size_t i = 0; i < r->tag_count; i++) {
		free(r->tags[i].name);
		free(r->tags[i].value);
	}
	free(r->tags);
	free(r);
}

/* feedback.c — reading DSNs (RFC 3464) and ARF reports (RFC 5965) inside RFC 6522 multipart/report
 * messages, and the VERP return path of tracked mail (feedback.h). */
#include "events/feedback.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/header.h"

/* multipart nesting we follow: a report is often wrapped once (multipart/mixed around it) */
#define FEEDBACK_MAX_DEPTH 4
#define FEEDBACK_BOUNDARY_MAX 200 /* RFC 2046 §5.1.1: at most 70 characters; we allow some slack */

/* Copies a header value unfolded (CRLF + WSP is one space, RFC 5322 §2.2.3), trimmed. */
static void value_copy(const char *v, size_t len, char *out, size_t size)
{
	size_t o = 0;
	bool space = false;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\r' || c == '\n' || c == ' ' || c == '\t') {
			space = o > 0;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			continue; /* no control octet reaches a log or an event */
		if (space && o + 2 < size)
			out[o++] = ' ';
		space = false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
}

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* "rfc822; user@example.org" → "user@example.org" (RFC 3464 §2.3.2: address-type ";" address);
 * angle brackets, which some MTAs add, are dropped. */
static void typed_value(const char *v, size_t len, char *out, size_t size)
{
	char tmp[FEEDBACK_FIELD_MAX];
	value_copy(v, len, tmp, sizeof(tmp));
	const char *p = strchr(tmp, ';');
	p = p != NULL ? p + 1 : tmp;
	while (*p == ' ')
		p++;
	size_t n = strlen(p);
	if (n >= 2 && p[0] == '<' && p[n - 1] == '>')
		p++, n -= 2;
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static void angle_strip(const char *v, size_t len, char *out, size_t size)
{
	char tmp[FEEDBACK_FIELD_MAX];
	value_copy(v, len, tmp, sizeof(tmp));
	const char *p = tmp;
	size_t n = strlen(p);
	const char *lt = strchr(p, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;
	if (lt != NULL && gt != NULL)
		p = lt + 1, n = (size_t)(gt - lt - 1);
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

struct content_type {
	char type[64];     /* "multipart/report", lower case */
	char boundary[FEEDBACK_BOUNDARY_MAX + 1];
	char report_type[32];
};

/* The parameter name of a Content-Type value (RFC 2045 §5.1), unquoted, into out. */
static void ct_param(const char *v, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	out[0] = '\0';
	for (const char *p = strchr(v, ';'); p != NULL; p = strchr(p + 1, ';')) {
		const char *q = p + 1;
		while (*q == ' ')
			q++;
		if (strncasecmp(q, name, nlen) != 0 || q[nlen] != '=')
			continue;
		q += nlen + 1;
		size_t o = 0;
		if (*q == '"') {
			for (q++; *q != '\0' && *q != '"' && o + 1 < size; q++) {
				if (*q == '\\' && q[1] != '\0')
					q++;
				out[o++] = *q;
			}
		} else {
			for (; *q != '\0' && *q != ';' && *q != ' ' && o + 1 < size; q++)
				out[o++] = *q;
		}
		out[o] = '\0';
		return;
	}
}

static void content_type_of(const char *part, size_t len, struct content_type *ct)
{
	memset(ct, 0, sizeof(*ct));
	snprintf(ct->type, sizeof(ct->type), "text/plain"); /* RFC 2045 §5.2 */
	size_t pos = 0;
	struct header_field f;
	while (header_next(part, len, &pos, &f)) {
		if (!header_is(&f, "Content-Type"))
			continue;
		char v[FEEDBACK_FIELD_MAX];
		value_copy(f.value, f.value_len, v, sizeof(v));
		size_t t = strcspn(v, "; ");
		if (t >= sizeof(ct->type))
			t = sizeof(ct->type) - 1;
		memcpy(ct->type, v, t);
		ct->type[t] = '\0';
		lower(ct->type);
		ct_param(v, "boundary", ct->boundary, sizeof(ct->boundary));
		ct_param(v, "report-type", ct->report_type, sizeof(ct->report_type));
		lower(ct->report_type);
		return;
	}
}

/* RFC 3464 §2.2-2.3: groups of fields separated by empty lines; the first is per message. */
static void dsn_fields(const char *s, size_t len, struct feedback *f)
{
	size_t pos = 0;
	bool first = true;
	while (pos < len) {
		struct feedback_rcpt *r = !first && f->rcpt_count < FEEDBACK_MAX_RCPTS ? &f->rcpts[f->rcpt_count] : NULL;
		struct feedback_rcpt scratch;
		if (r == NULL)
			r = &scratch;
		memset(r, 0, sizeof(*r));
		struct header_field h;
		size_t fields = 0;
		while (header_next(s, len, &pos, &h)) {
			fields++;
			if (header_is(&h, "Final-Recipient") || (header_is(&h, "Original-Recipient") && r->final_rcpt[0] == '\0'))
				typed_value(h.value, h.value_len, r->final_rcpt, sizeof(r->final_rcpt));
			else if (header_is(&h, "Action"))
				value_copy(h.value, h.value_len, r->action, sizeof(r->action)), lower(r->action);
			else if (header_is(&h, "Status"))
				value_copy(h.value, h.value_len, r->status, sizeof(r->status));
			else if (header_is(&h, "Diagnostic-Code"))
				typed_value(h.value, h.value_len, r->diagnostic, sizeof(r->diagnostic));
			else if (header_is(&h, "Remote-MTA"))
				typed_value(h.value, h.value_len, r->remote_mta, sizeof(r->remote_mta));
		}
		if (!first && r != &scratch && r->final_rcpt[0] != '\0')
			f->rcpt_count++;
		if (fields > 0)
			first = false;
		/* past the empty line(s) that end the group; stop at anything else */
		size_t before = pos;
		while (pos < len && (s[pos] == '\r' || s[pos] == '\n'))
			pos++;
		if (pos == before && fields == 0)
			break;
	}
}

/* RFC 5965 §3.1-3.2 */
static void arf_fields(const char *s, size_t len, struct feedback *f)
{
	size_t pos = 0;
	struct header_field h;
	while (header_next(s, len, &pos, &h)) {
		if (header_is(&h, "Feedback-Type"))
			value_copy(h.value, h.value_len, f->feedback_type, sizeof(f->feedback_type)), lower(f->feedback_type);
		else if (header_is(&h, "Original-Mail-From"))
			angle_strip(h.value, h.value_len, f->original_mail_from, sizeof(f->original_mail_from));
		else if (header_is(&h, "Original-Rcpt-To") && f->original_rcpt[0] == '\0')
			angle_strip(h.value, h.value_len, f->original_rcpt, sizeof(f->original_rcpt));
	}
}

/* The returned message (RFC 3462 §2 / RFC 5965 §2): its Message-ID and Return-Path. */
static void original_fields(const char *s, size_t len, struct feedback *f)
{
	size_t pos = 0;
	struct header_field h;
	while (header_next(s, len, &pos, &h)) {
		if (header_is(&h, "Message-ID") && f->original_message_id[0] == '\0')
			angle_strip(h.value, h.value_len, f->original_message_id, sizeof(f->original_message_id));
		else if (header_is(&h, "Return-Path") && f->original_return_path[0] == '\0')
			angle_strip(h.value, h.value_len, f->original_return_path, sizeof(f->original_return_path));
	}
}

/* Where the line that starts at p ends (past its LF), or end. */
static const char *line_end(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	return lf != NULL ? lf + 1 : end;
}

/* Whether the line at p is the delimiter "--boundary" (or the close "--boundary--", *close_r). */
static bool is_delimiter(const char *p, const char *end, const char *b, size_t blen, bool *close_r)
{
	if ((size_t)(end - p) < blen + 2 || p[0] != '-' || p[1] != '-' || memcmp(p + 2, b, blen) != 0)
		return false;
	const char *q = p + 2 + blen;
	*close_r = end - q >= 2 && q[0] == '-' && q[1] == '-';
	if (*close_r)
		q += 2;
	/* RFC 2046 §5.1.1: transport padding (WSP) may follow */
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	return q == end || *q == '\r' || *q == '\n';
}

static void walk(const char *part, size_t len, struct feedback *f, int depth);

static void walk_multipart(const char *body, size_t len, const struct content_type *ct, struct feedback *f, int depth)
{
	size_t blen = strlen(ct->boundary);
	if (blen == 0)
		return;
	const char *p = body, *end = body + len, *start = NULL;
	while (p < end) {
		bool close = false;
		const char *next = line_end(p, end);
		if (is_delimiter(p, end, ct->boundary, blen, &close)) {
			if (start != NULL) {
				/* the CRLF before the delimiter belongs to it (RFC 2046 §5.1.1) */
				const char *stop = p;
				if (stop > start && stop[-1] == '\n')
					stop--;
				if (stop > start && stop[-1] == '\r')
					stop--;
				walk(start, (size_t)(stop - start), f, depth + 1);
			}
			if (close)
				return;
			start = next;
		}
		p = next;
	}
	/* no close delimiter: a report cut short (we read only its start) still has its first parts */
	if (start != NULL && start < end)
		walk(start, (size_t)(end - start), f, depth + 1);
}

static void walk(const char *part, size_t len, struct feedback *f, int depth)
{
	if (depth > FEEDBACK_MAX_DEPTH)
		return;
	struct content_type ct;
	content_type_of(part, len, &ct);
	size_t off = header_body_offset(part, len);
	const char *body = part + off;
	size_t blen = len - off;
	if (strcmp(ct.type, "multipart/report") == 0) {
		if (strcmp(ct.report_type, "delivery-status") == 0 && f->kind == FEEDBACK_NONE)
			f->kind = FEEDBACK_DSN;
		else if (strcmp(ct.report_type, "feedback-report") == 0 && f->kind == FEEDBACK_NONE)
			f->kind = FEEDBACK_ARF;
		walk_multipart(body, blen, &ct, f, depth);
	} else if (strncmp(ct.type, "multipart/", 10) == 0) {
		walk_multipart(body, blen, &ct, f, depth);
	} else if (strcmp(ct.type, "message/delivery-status") == 0 || strcmp(ct.type, "message/global-delivery-status") == 0) {
		dsn_fields(body, blen, f);
	} else if (strcmp(ct.type, "message/feedback-report") == 0) {
		arf_fields(body, blen, f);
	} else if (strcmp(ct.type, "message/rfc822") == 0 || strcmp(ct.type, "text/rfc822-headers") == 0 ||
		   strcmp(ct.type, "message/global") == 0 || strcmp(ct.type, "message/global-headers") == 0) {
		original_fields(body, blen, f);
	}
}

enum feedback_kind feedback_parse(const char *msg, size_t len, struct feedback *f)
{
	memset(f, 0, sizeof(*f));
	walk(msg, len, f, 0);
	return f->kind;
}

/* ---- the return path ---- */

#define FEEDBACK_LOCAL "bounces+"

bool feedback_return_path(const char *email_id, const char *label, const char *domain, char *buf, size_t size)
{
	int n = snprintf(buf, size, FEEDBACK_LOCAL "%s@%s.%s", email_id, label, domain);
	return n > 0 && (size_t)n < size;
}

static bool uuid_ok(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool feedback_return_path_parse(const char *addr, const char *label, char *id_r, char *domain_r, size_t domain_size)
{
	size_t plen = strlen(FEEDBACK_LOCAL);
	if (strncasecmp(addr, FEEDBACK_LOCAL, plen) != 0)
		return false;
	const char *at = strchr(addr, '@');
	if (at == NULL || !uuid_ok(addr + plen, (size_t)(at - addr - (ptrdiff_t)plen)))
		return false;
	const char *host = at + 1;
	/* NULL: any one label (a domain may have its own, feedback.h) */
	size_t llen = label != NULL ? strlen(label) : strcspn(host, ".");
	if (llen == 0 || (label != NULL && strncasecmp(host, label, llen) != 0) || host[llen] != '.' ||
	    host[llen + 1] == '\0')
		return false;
	snprintf(domain_r, domain_size, "%s", host + llen + 1);
	lower(domain_r);
	for (size_t i = 0; i < 36; i++)
		id_r[i] = (char)tolower((unsigned char)addr[plen + i]);
	id_r[36] = '\0';
	return true;
}

/* received_view.c — received_view_parse and received_view_attachment (see received_view.h). The
 * MIME tree is walked here rather than by GMime's parser, which makes an object tree of every part
 * (130 MB for a message of 100,000 empty parts in 700 KB) and nests 1024 levels deep: each
 * multipart is split at its own delimiter lines and each part reads only its own octets, so time
 * stays within max_depth passes over the message and no entity is looked at past max_parts. GMime 3
 * decodes what lies inside the parts: RFC 2047 words, addresses, Content-Type and
 * Content-Disposition parameters (RFC 2231), dates and transfer encodings. Every string goes through
 * one charset rule and comes out as UTF-8. */
#include "inbound/received_view.h"

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "util/header.h"
#include "util/utf8.h"
#include "util/uuid.h"

const struct received_view_limits received_view_limits_default = {
	.max_size = (size_t)64 << 20,
	.max_parts = 500,
	.max_depth = 20,
	.max_headers = 1000,
	.max_text = (size_t)4 << 20,
	.max_field = (size_t)64 << 10,
};

/* the recursion is one call per level: a configured depth never takes more stack than this */
#define RV_DEPTH_CAP 32

static const char rv_fffd[] = "\xef\xbf\xbd"; /* U+FFFD REPLACEMENT CHARACTER */

static const char RV_LIMIT_PARTS[] = "the message has more MIME parts than the limit; those after it are left out";
static const char RV_LIMIT_DEPTH[] = "multiparts are nested deeper than the limit; the deeper ones are left out";
static const char RV_LIMIT_HEADERS[] = "the message has more header fields than the limit; headers holds the first ones";
static const char RV_LIMIT_TEXT[] = "a text or HTML body is longer than the limit and was cut";
static const char RV_LIMIT_FIELD[] = "a header field is longer than the limit; its value is cut";

static pthread_once_t rv_once = PTHREAD_ONCE_INIT;

static void rv_gmime_init(void)
{
	g_mime_init();
}

/* ---- UTF-8 text under a size limit ---------------------------------------------------------------- */

struct rv_buf {
	char *p;     /* NUL-terminated once anything is in it */
	size_t len, cap;
	size_t max;  /* octets the text may take */
	bool cut;    /* something did not fit under max; nothing more is taken */
	bool nomem;
};

static bool rv_buf_room(struct rv_buf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap != 0 ? b->cap : 64;
	while (cap < b->len + n + 1)
		cap = cap <= SIZE_MAX / 2 ? cap * 2 : b->len + n + 1;
	char *q = realloc(b->p, cap);
	if (q == NULL) {
		b->nomem = true;
		return false;
	}
	b->p = q;
	b->cap = cap;
	return true;
}

/* n octets that must stay together (one character): all of them or, over max, none */
static void rv_buf_put(struct rv_buf *b, const char *s, size_t n)
{
	if (b->cut || b->nomem)
		return;
	if (n > b->max - b->len) {
		b->cut = true;
		return;
	}
	if (!rv_buf_room(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* ASCII octets, which may be cut anywhere */
static void rv_buf_put_ascii(struct rv_buf *b, const char *s, size_t n)
{
	if (b->cut || b->nomem)
		return;
	size_t take = n <= b->max - b->len ? n : b->max - b->len;
	if (take > 0 && rv_buf_room(b, take)) {
		memcpy(b->p + b->len, s, take);
		b->len += take;
		b->p[b->len] = '\0';
	}
	if (take < n)
		b->cut = true;
}

static void rv_buf_put_cp(struct rv_buf *b, unsigned cp)
{
	char u[3];
	if (cp < 0x80) {
		u[0] = (char)cp;
		rv_buf_put(b, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		rv_buf_put(b, u, 2);
	} else {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		rv_buf_put(b, u, 3);
	}
}

/* What was built, malloc'd ("" when nothing was); NULL only when memory ran out. */
static char *rv_buf_take(struct rv_buf *b)
{
	if (b->nomem) {
		free(b->p);
		b->p = NULL;
		return NULL;
	}
	char *s = b->p != NULL ? b->p : calloc(1, 1);
	b->p = NULL;
	return s;
}

/* The length of the run of ASCII octets other than NUL at s. */
static size_t rv_ascii_run(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] != 0 && s[i] < 0x80)
		i++;
	return i;
}

/* Well-formed UTF-8 kept as it is; a NUL octet and each octet of an ill-formed sequence become
 * U+FFFD, so that the result is a C string of well-formed UTF-8 (RFC 3629 §3). */
static void rv_put_utf8(struct rv_buf *b, const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n && !b->cut && !b->nomem) {
		size_t run = rv_ascii_run(s + i, n - i);
		if (run > 0) {
			rv_buf_put_ascii(b, (const char *)s + i, run);
			i += run;
			continue;
		}
		size_t k = s[i] != 0 ? utf8_len(s + i, n - i) : 0;
		if (k == 0) {
			rv_buf_put(b, rv_fffd, 3);
			i++;
		} else {
			rv_buf_put(b, (const char *)s + i, k);
			i += k;
		}
	}
}

/* WHATWG Encoding Standard, index-windows-1252: 0x80-0x9F (the rest of 0xA0-0xFF is Latin-1). */
static const unsigned short rv_cp1252[32] = {
	0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
	0x2039, 0x0152, 0x008d, 0x017d, 0x008f, 0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
	0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

static void rv_put_cp1252(struct rv_buf *b, const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n && !b->cut && !b->nomem) {
		size_t run = rv_ascii_run(s + i, n - i);
		if (run > 0) {
			rv_buf_put_ascii(b, (const char *)s + i, run);
			i += run;
			continue;
		}
		unsigned char c = s[i++];
		if (c == 0)
			rv_buf_put(b, rv_fffd, 3);
		else
			rv_buf_put_cp(b, c < 0xa0 ? rv_cp1252[c - 0x80] : c);
	}
}

/* Through iconv to UTF-8: an octet that does not convert is one U+FFFD, a sequence cut short at the
 * end is one more. */
static void rv_put_iconv(struct rv_buf *b, iconv_t cd, const char *s, size_t n)
{
	char *in = (char *)s;
	size_t inleft = n;
	char out[4096];
	while (inleft > 0 && !b->cut && !b->nomem) {
		char *o = out;
		size_t oleft = sizeof(out);
		int err = iconv(cd, &in, &inleft, &o, &oleft) == (size_t)-1 ? errno : 0;
		rv_put_utf8(b, (const unsigned char *)out, (size_t)(o - out));
		if (err == EILSEQ) {
			rv_buf_put(b, rv_fffd, 3);
			in++;
			inleft--;
		} else if (err == EINVAL) {
			rv_buf_put(b, rv_fffd, 3);
			inleft = 0;
		} else if (err != 0 && err != E2BIG) {
			break;
		}
	}
	/* a stateful charset (ISO-2022-JP) may still owe its shift back */
	char *o = out;
	size_t oleft = sizeof(out);
	iconv(cd, NULL, NULL, &o, &oleft);
	rv_put_utf8(b, (const unsigned char *)out, (size_t)(o - out));
}

static bool rv_charset_in(const char *cs, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++)
		if (g_ascii_strcasecmp(cs, names[i]) == 0)
			return true;
	return false;
}

/* A name iconv may be asked about: letters, digits and ._:+- only, so that nothing in a message
 * reaches iconv_open but a charset name (no "//" suffixes, no paths). */
static bool rv_charset_name_ok(const char *cs)
{
	size_t n = strlen(cs);
	if (n == 0 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(cs[i]) && strchr("._:+-", cs[i]) == NULL)
			return false;
	return true;
}

/* The charset rule of received_view.h. No charset, us-ascii or an unknown one: UTF-8 when the octets
 * are well-formed UTF-8 (RFC 6532 mail, and what unlabelled 8-bit text mostly is today), else
 * windows-1252, which gives every octet a character. iso-8859-1 is read as windows-1252: its
 * 0x80-0x9F are C1 controls no text uses, and mail labelled so carries windows-1252 quotes and
 * dashes there (WHATWG Encoding Standard §4.2 maps the label so). */
static void rv_put_text(struct rv_buf *b, const char *s, size_t n, const char *charset)
{
	static const char *const utf8[] = {"utf-8", "utf8", NULL};
	static const char *const latin1[] = {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1",
					     "cp819", "ibm819", "csisolatin1", "iso-ir-100", "windows-1252",
					     "cp1252", "x-cp1252", "windows-cp1252", NULL};
	static const char *const unknown[] = {"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "csascii",
					      "unknown-8bit", "x-unknown", "unknown", NULL};
	const unsigned char *u = (const unsigned char *)s;
	if (charset != NULL && rv_charset_name_ok(charset) && !rv_charset_in(charset, unknown)) {
		if (rv_charset_in(charset, utf8)) {
			rv_put_utf8(b, u, n);
			return;
		}
		if (rv_charset_in(charset, latin1)) {
			rv_put_cp1252(b, u, n);
			return;
		}
		iconv_t cd = g_mime_iconv_open("UTF-8", charset);
		if (cd != (iconv_t)-1) {
			rv_put_iconv(b, cd, s, n);
			g_mime_iconv_close(cd);
			return;
		}
	}
	if (utf8_valid(u, n))
		rv_put_utf8(b, u, n);
	else
		rv_put_cp1252(b, u, n);
}

/* s (a C string from GMime's field decoders, may be NULL) as well-formed UTF-8 on one line: a
 * field is one line once unfolded (RFC 5322 §2.2.3), and a CR or LF that an encoded word or a
 * parameter brought back becomes a space. malloc'd; NULL when s is NULL or no memory. */
static char *rv_strdup_field(const char *s)
{
	if (s == NULL)
		return NULL;
	struct rv_buf b = {.max = SIZE_MAX};
	rv_put_utf8(&b, (const unsigned char *)s, strlen(s));
	for (size_t i = 0; i < b.len; i++)
		if (b.p[i] == '\r' || b.p[i] == '\n')
			b.p[i] = ' ';
	return rv_buf_take(&b);
}

/* ---- header fields ------------------------------------------------------------------------------ */

/* RFC 5322 §3.6.8: a field name is printable ASCII other than the colon. */
static bool rv_field_name_ok(const struct header_field *f)
{
	if (f->name_len == 0)
		return false;
	for (size_t i = 0; i < f->name_len; i++)
		if ((unsigned char)f->name[i] < 33 || (unsigned char)f->name[i] > 126 || f->name[i] == ':')
			return false;
	return true;
}

struct rv_walk {
	const char *raw;
	size_t len;
	struct received_view_limits lim;
	GMimeParserOptions *opts;
	unsigned char digest[32]; /* SHA-256 of the message, for the attachment ids */
	bool have_digest;
	size_t entities;
	bool have_text, have_html;
	bool nomem, stop;
	const char *limited;
	struct received_view *v; /* received_view_parse */
	const char *want;        /* received_view_attachment: the id looked for */
	bool found;
	unsigned char *got;
	size_t got_size;
	char *got_type, *got_name;
};

static void rv_limit(struct rv_walk *w, const char *sentence)
{
	if (w->limited == NULL)
		w->limited = sentence;
}

static bool rv_is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A field's value unfolded (RFC 5322 §2.2.3: the line breaks removed, the WSP after them kept), WSP
 * trimmed at both ends, at most max_field octets of it (not cutting a UTF-8 sequence), in UTF-8 by
 * the charset rule: RFC 6532 allows UTF-8 in fields and older mail puts 8-bit text of its own
 * charset there. malloc'd; NULL when out of memory. */
static char *rv_field_text(struct rv_walk *w, const struct header_field *f)
{
	const char *v = f->value;
	size_t n = f->value_len;
	while (n > 0 && rv_is_fws(v[0]))
		v++, n--;
	while (n > 0 && rv_is_fws(v[n - 1]))
		n--;
	if (n > w->lim.max_field) {
		n = w->lim.max_field;
		for (int back = 0; back < 3 && n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80; back++)
			n--;
		rv_limit(w, RV_LIMIT_FIELD);
	}
	char *flat = malloc(n + 1);
	if (flat == NULL) {
		w->nomem = true;
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			flat[o++] = v[i];
	struct rv_buf b = {.max = SIZE_MAX};
	rv_put_text(&b, flat, o, NULL);
	free(flat);
	char *s = rv_buf_take(&b);
	if (s == NULL)
		w->nomem = true;
	return s;
}

/* An unstructured field's text as a reader sees it: RFC 2047 encoded words decoded. */
static char *rv_field_decoded(struct rv_walk *w, const struct header_field *f)
{
	char *t = rv_field_text(w, f);
	if (t == NULL || strstr(t, "=?") == NULL) /* RFC 2047 §2: no encoded word without "=?" */
		return t;
	char *d = g_mime_utils_header_decode_text(w->opts, t);
	free(t);
	char *s = rv_strdup_field(d != NULL ? d : "");
	g_free(d);
	if (s == NULL)
		w->nomem = true;
	return s;
}

struct rv_list {
	char **items;
	size_t count, cap;
};

static bool rv_list_add(struct rv_list *l, char *s)
{
	if (s == NULL)
		return false;
	if (l->count == l->cap) {
		size_t cap = l->cap != 0 ? l->cap * 2 : 4;
		char **q = realloc(l->items, cap * sizeof(*q));
		if (q == NULL) {
			free(s);
			return false;
		}
		l->items = q;
		l->cap = cap;
	}
	l->items[l->count++] = s;
	return true;
}

/* The mailboxes of l (a group's members in its place; RFC 5322 §3.4 groups do not nest) as
 * "Name <addr>" or "addr", the name quoted where RFC 5322 §3.2.3 needs it. */
static bool rv_list_mailboxes(InternetAddressList *l, struct rv_list *out, bool in_group)
{
	int n = l != NULL ? internet_address_list_length(l) : 0;
	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			if (!in_group &&
			    !rv_list_mailboxes(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), out, true))
				return false;
			continue;
		}
		char *s = internet_address_to_string(ia, NULL, FALSE);
		bool ok = rv_list_add(out, rv_strdup_field(s != NULL ? s : ""));
		g_free(s);
		if (!ok)
			return false;
	}
	return true;
}

static void rv_addresses(struct rv_walk *w, const struct header_field *f, struct rv_list *out)
{
	char *t = rv_field_text(w, f);
	if (t == NULL)
		return;
	InternetAddressList *l = internet_address_list_parse(w->opts, t);
	free(t);
	if (!rv_list_mailboxes(l, out, false))
		w->nomem = true;
	if (l != NULL)
		g_object_unref(l);
}

/* From: its mailboxes joined by ", "; the decoded text when no address in it has an "@" (GMime
 * takes any word for a mailbox). */
static char *rv_from(struct rv_walk *w, const struct header_field *f)
{
	struct rv_list l = {0};
	rv_addresses(w, f, &l);
	struct rv_buf b = {.max = SIZE_MAX};
	bool any_at = false;
	for (size_t i = 0; i < l.count; i++) {
		if (i > 0)
			rv_buf_put(&b, ", ", 2);
		rv_buf_put(&b, l.items[i], strlen(l.items[i]));
		any_at = any_at || strchr(l.items[i], '@') != NULL;
		free(l.items[i]);
	}
	free(l.items);
	if (w->nomem) {
		free(b.p);
		return NULL;
	}
	if (!any_at) {
		free(b.p);
		return rv_field_decoded(w, f);
	}
	char *s = rv_buf_take(&b);
	if (s == NULL)
		w->nomem = true;
	return s;
}

static int64_t rv_date(struct rv_walk *w, const struct header_field *f)
{
	char *t = rv_field_text(w, f);
	if (t == NULL)
		return 0;
	GDateTime *dt = g_mime_utils_header_decode_date(t);
	free(t);
	if (dt == NULL)
		return 0;
	int64_t s = g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return s;
}

static void rv_set_once(struct rv_walk *w, char **dst, char *s)
{
	if (*dst == NULL && s != NULL)
		*dst = s;
	else
		free(s);
	if (s == NULL)
		w->nomem = true;
}

static void rv_take_list(struct rv_list *l, char ***items_r, size_t *count_r)
{
	*items_r = l->items;
	*count_r = l->count;
}

/* The top-level fields: headers[] up to max_headers, and the first of each field the view names
 * (RFC 5322 §3.6 allows each once). */
static void rv_top_fields(struct rv_walk *w, struct received_view *v)
{
	size_t pos = 0, cap = 0;
	struct header_field f;
	bool seen_to = false, seen_cc = false, seen_rt = false, seen_date = false;
	struct rv_list to = {0}, cc = {0}, rt = {0};
	while (!w->nomem && header_next(w->raw, w->len, &pos, &f) && rv_field_name_ok(&f)) {
		if (v->header_count < w->lim.max_headers) {
			if (v->header_count == cap) {
				size_t ncap = cap != 0 ? cap * 2 : 16;
				struct received_header *q = realloc(v->headers, ncap * sizeof(*q));
				if (q == NULL) {
					w->nomem = true;
					break;
				}
				v->headers = q;
				cap = ncap;
			}
			struct received_header *h = &v->headers[v->header_count++];
			h->name = strndup(f.name, f.name_len); /* ASCII: rv_field_name_ok */
			h->value = rv_field_decoded(w, &f);
			if (h->name == NULL)
				w->nomem = true;
		} else {
			rv_limit(w, RV_LIMIT_HEADERS);
		}
		if (header_is(&f, "From") && v->from == NULL)
			rv_set_once(w, &v->from, rv_from(w, &f));
		else if (header_is(&f, "Subject") && v->subject == NULL)
			rv_set_once(w, &v->subject, rv_field_decoded(w, &f));
		else if (header_is(&f, "Message-ID") && v->message_id == NULL)
			rv_set_once(w, &v->message_id, rv_field_text(w, &f));
		else if (header_is(&f, "In-Reply-To") && v->in_reply_to == NULL)
			rv_set_once(w, &v->in_reply_to, rv_field_text(w, &f));
		else if (header_is(&f, "References") && v->references == NULL)
			rv_set_once(w, &v->references, rv_field_text(w, &f));
		else if (header_is(&f, "Date") && !seen_date && (seen_date = true))
			v->date = rv_date(w, &f);
		else if (header_is(&f, "To") && !seen_to && (seen_to = true))
			rv_addresses(w, &f, &to);
		else if (header_is(&f, "Cc") && !seen_cc && (seen_cc = true))
			rv_addresses(w, &f, &cc);
		else if (header_is(&f, "Reply-To") && !seen_rt && (seen_rt = true))
			rv_addresses(w, &f, &rt);
	}
	rv_take_list(&to, &v->to, &v->to_count);
	rv_take_list(&cc, &v->cc, &v->cc_count);
	rv_take_list(&rt, &v->reply_to, &v->reply_to_count);
}

/* ---- one MIME entity's own fields --------------------------------------------------------------- */

struct rv_mime {
	char *type;        /* "type/subtype", lower case; a multipart always has a boundary */
	char *charset, *boundary, *name; /* Content-Type parameters, NULL when absent */
	GMimeContentEncoding enc;
	char *disposition; /* lower case, NULL when absent */
	char *filename;
	char *content_id;  /* without <>, NULL when absent */
	size_t body;       /* where the body starts in the entity */
};

static void rv_mime_free(struct rv_mime *m)
{
	free(m->type);
	free(m->charset);
	free(m->boundary);
	free(m->name);
	free(m->disposition);
	free(m->filename);
	free(m->content_id);
}

/* RFC 2045 §5.1 token */
static size_t rv_token_len(const char *s)
{
	size_t i = 0;
	while (s[i] > 32 && s[i] < 127 && strchr("()<>@,;:\\\"/[]?=", s[i]) == NULL)
		i++;
	return i;
}

/* Whether t starts with type "/" subtype (RFC 2045 §5.1). */
static bool rv_ctype_syntax_ok(const char *t)
{
	size_t n = rv_token_len(t);
	if (n == 0)
		return false;
	t += n;
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t++ != '/')
		return false;
	while (*t == ' ' || *t == '\t')
		t++;
	return rv_token_len(t) > 0;
}

static char *rv_lower(char *s)
{
	for (char *p = s; p != NULL && *p != '\0'; p++)
		*p = g_ascii_tolower(*p);
	return s;
}

static bool rv_mime_type(struct rv_walk *w, const struct header_field *f, bool in_digest, struct rv_mime *m)
{
	/* RFC 2045 §5.2: no Content-Type means text/plain; us-ascii, as does an invalid one;
	 * RFC 2046 §5.1.5: in a multipart/digest it means message/rfc822 */
	char *t = f != NULL ? rv_field_text(w, f) : NULL;
	if (f != NULL && t == NULL)
		return false;
	if (t == NULL || !rv_ctype_syntax_ok(t)) {
		free(t);
		m->type = strdup(f == NULL && in_digest ? "message/rfc822" : "text/plain");
		return m->type != NULL;
	}
	GMimeContentType *ct = g_mime_content_type_parse(w->opts, t);
	free(t);
	struct rv_buf b = {.max = SIZE_MAX};
	const char *type = g_mime_content_type_get_media_type(ct), *sub = g_mime_content_type_get_media_subtype(ct);
	rv_put_utf8(&b, (const unsigned char *)(type != NULL ? type : "text"), strlen(type != NULL ? type : "text"));
	rv_buf_put(&b, "/", 1);
	rv_put_utf8(&b, (const unsigned char *)(sub != NULL ? sub : "plain"), strlen(sub != NULL ? sub : "plain"));
	m->type = rv_lower(rv_buf_take(&b));
	m->charset = rv_strdup_field(g_mime_content_type_get_parameter(ct, "charset"));
	m->boundary = rv_strdup_field(g_mime_content_type_get_parameter(ct, "boundary"));
	m->name = rv_strdup_field(g_mime_content_type_get_parameter(ct, "name"));
	g_object_unref(ct);
	if (m->type == NULL)
		return false;
	/* RFC 2046 §5.1.1: the boundary parameter is required; without one the field is invalid */
	if (strncmp(m->type, "multipart/", 10) == 0 && (m->boundary == NULL || m->boundary[0] == '\0')) {
		free(m->type);
		free(m->charset);
		m->charset = NULL;
		m->type = strdup("text/plain");
		return m->type != NULL;
	}
	return true;
}

static bool rv_mime_disposition(struct rv_walk *w, const struct header_field *f, struct rv_mime *m)
{
	char *t = rv_field_text(w, f);
	if (t == NULL)
		return false;
	GMimeContentDisposition *cd = g_mime_content_disposition_parse(w->opts, t);
	free(t);
	const char *d = g_mime_content_disposition_get_disposition(cd);
	m->disposition = rv_lower(rv_strdup_field(d != NULL && d[0] != '\0' ? d : NULL));
	/* RFC 2183 §2.3: the file name; RFC 2231 (and RFC 2047 words in quotes) decoded by GMime */
	m->filename = rv_strdup_field(g_mime_content_disposition_get_parameter(cd, "filename"));
	g_object_unref(cd);
	return true;
}

/* The entity's own header section (from its first line up to the empty line) and the fields that
 * describe its content. A line that is not a field ends the section without an empty line, as
 * broken MIME has it: the body starts there. False only when out of memory. */
static bool rv_mime_read(struct rv_walk *w, const char *p, size_t n, bool in_digest, struct rv_mime *m)
{
	struct header_field f, ct = {0}, cte = {0}, cd = {0}, cid = {0};
	size_t pos = 0;
	m->body = n;
	for (;;) {
		size_t at = pos;
		if (!header_next(p, n, &pos, &f)) {
			/* RFC 5322 §2.1: the empty line separates the body */
			const char *lf = at < n ? memchr(p + at, '\n', n - at) : NULL;
			m->body = lf != NULL ? (size_t)(lf - p) + 1 : n;
			break;
		}
		if (!rv_field_name_ok(&f)) {
			m->body = at;
			break;
		}
		struct header_field *slot = header_is(&f, "Content-Type")                ? &ct
					    : header_is(&f, "Content-Transfer-Encoding") ? &cte
					    : header_is(&f, "Content-Disposition")       ? &cd
					    : header_is(&f, "Content-ID")                ? &cid
											 : NULL;
		if (slot != NULL && slot->raw == NULL)
			*slot = f;
	}
	if (!rv_mime_type(w, ct.raw != NULL ? &ct : NULL, in_digest, m))
		return false;
	m->enc = GMIME_CONTENT_ENCODING_DEFAULT;
	if (cte.raw != NULL) {
		char *t = rv_field_text(w, &cte);
		if (t == NULL)
			return false;
		m->enc = g_mime_content_encoding_from_string(t);
		free(t);
	}
	if (cd.raw != NULL && !rv_mime_disposition(w, &cd, m))
		return false;
	if (cid.raw != NULL) {
		char *t = rv_field_text(w, &cid);
		if (t == NULL)
			return false;
		/* RFC 2392: the id is the msg-id without its angle brackets */
		size_t s = t[0] == '<' ? 1 : 0, e = strlen(t);
		if (e > s && t[e - 1] == '>')
			e--;
		if (e > s)
			m->content_id = strndup(t + s, e - s);
		free(t);
		if (e > s && m->content_id == NULL)
			return false;
	}
	if (m->filename == NULL && m->name != NULL)
		m->filename = strdup(m->name); /* the older Content-Type name parameter (RFC 2046 §4.5.1) */
	return !w->nomem;
}

/* ---- content -------------------------------------------------------------------------------------- */

/* The octets of a leaf without its transfer encoding (RFC 2045 §6), into out (room for n + 3), or
 * only counted when out is NULL. GMime's decoders pass over what is not in their alphabet, so broken
 * base64 gives what it can. x-uuencode starts after its "begin" line. */
static size_t rv_decode(const char *s, size_t n, GMimeContentEncoding enc, unsigned char *out)
{
	GMimeEncoding st;
	if (enc != GMIME_CONTENT_ENCODING_BASE64 && enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
	    enc != GMIME_CONTENT_ENCODING_UUENCODE)
		enc = GMIME_CONTENT_ENCODING_DEFAULT;
	g_mime_encoding_init_decode(&st, enc);
	if (enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		size_t i = 0;
		while (i < n && !(n - i >= 6 && memcmp(s + i, "begin ", 6) == 0)) {
			const char *lf = memchr(s + i, '\n', n - i);
			i = lf != NULL ? (size_t)(lf - s) + 1 : n;
		}
		const char *lf = i < n ? memchr(s + i, '\n', n - i) : NULL;
		if (lf == NULL)
			return 0;
		n -= (size_t)(lf + 1 - s);
		s = lf + 1;
		st.state |= GMIME_UUDECODE_STATE_BEGIN;
	}
	if (out != NULL)
		return g_mime_encoding_step(&st, s, n, (char *)out);
	enum { CHUNK = 8192 };
	char buf[CHUNK + 8];
	size_t total = 0;
	for (size_t i = 0; i < n; i += CHUNK)
		total += g_mime_encoding_step(&st, s + i, n - i < CHUNK ? n - i : CHUNK, buf);
	return total;
}

static unsigned char *rv_decode_dup(const char *s, size_t n, GMimeContentEncoding enc, size_t *len_r)
{
	unsigned char *out = malloc(n + 4);
	if (out == NULL)
		return NULL;
	*len_r = rv_decode(s, n, enc, out);
	return out;
}

static void rv_body(struct rv_walk *w, const struct rv_mime *m, const char *s, size_t n, char **dst)
{
	size_t dn = 0;
	unsigned char *d = rv_decode_dup(s, n, m->enc, &dn);
	if (d == NULL) {
		w->nomem = true;
		return;
	}
	struct rv_buf b = {.max = w->lim.max_text};
	rv_put_text(&b, (const char *)d, dn, m->charset);
	free(d);
	if (b.cut)
		rv_limit(w, RV_LIMIT_TEXT);
	*dst = rv_buf_take(&b);
	if (*dst == NULL)
		w->nomem = true;
}

/* The attachment id: SHA-256 over the message's SHA-256 and the part number, its first 16 octets
 * shaped as a version 8 UUID (RFC 9562 §5.8), so that the same octets give the same ids. */
static bool rv_attachment_id(struct rv_walk *w, const char *part, char id_r[RECEIVED_ID_LEN + 1])
{
	unsigned int hl = 0;
	if (!w->have_digest) {
		if (EVP_Digest(w->raw, w->len, w->digest, &hl, EVP_sha256(), NULL) != 1)
			return false;
		w->have_digest = true;
	}
	unsigned char in[32 + RECEIVED_PART_LEN], h[EVP_MAX_MD_SIZE];
	size_t pl = strlen(part);
	memcpy(in, w->digest, 32);
	memcpy(in + 32, part, pl);
	if (EVP_Digest(in, 32 + pl, h, &hl, EVP_sha256(), NULL) != 1)
		return false;
	uuid_format(h, 8, id_r); /* RFC 9562 §5.8: a custom (hash-derived) UUID */
	return true;
}

static void rv_attachment(struct rv_walk *w, struct rv_mime *m, const char *s, size_t n, const char *part)
{
	char id[RECEIVED_ID_LEN + 1];
	if (!rv_attachment_id(w, part, id)) {
		w->nomem = w->stop = true;
		return;
	}
	if (w->want != NULL) {
		if (strcmp(id, w->want) != 0)
			return;
		w->stop = w->found = true;
		w->got = rv_decode_dup(s, n, m->enc, &w->got_size);
		w->got_type = m->type, m->type = NULL;
		w->got_name = m->filename, m->filename = NULL;
		return;
	}
	struct received_view *v = w->v;
	if ((v->attachment_count & (v->attachment_count - 1)) == 0) { /* 0, 1, 2, 4, ...: double */
		size_t cap = v->attachment_count != 0 ? v->attachment_count * 2 : 1;
		struct received_attachment *q = realloc(v->attachments, cap * sizeof(*q));
		if (q == NULL) {
			w->nomem = w->stop = true;
			return;
		}
		v->attachments = q;
	}
	struct received_attachment *a = &v->attachments[v->attachment_count++];
	memset(a, 0, sizeof(*a));
	memcpy(a->id, id, sizeof(a->id));
	snprintf(a->part, sizeof(a->part), "%s", part);
	a->content_type = m->type, m->type = NULL;
	a->filename = m->filename, m->filename = NULL;
	a->content_id = m->content_id, m->content_id = NULL;
	/* RFC 2183 §2.8: an unknown disposition is treated as attachment; without the field, a part
	 * with a Content-ID is there to be referred to (RFC 2387 multipart/related) */
	if (m->disposition != NULL)
		a->content_disposition = strcmp(m->disposition, "inline") == 0 ? "inline" : "attachment";
	else
		a->content_disposition = a->content_id != NULL ? "inline" : "attachment";
	a->size = rv_decode(s, n, m->enc, NULL);
}

static void rv_leaf(struct rv_walk *w, struct rv_mime *m, const char *s, size_t n, const char *path)
{
	const char *part = path[0] != '\0' ? path : "1"; /* RFC 9051 §6.4.5: a single-part body is part 1 */
	bool body_like = m->disposition == NULL || strcmp(m->disposition, "inline") == 0;
	if (body_like && !w->have_text && strcmp(m->type, "text/plain") == 0) {
		w->have_text = true;
		if (w->v != NULL)
			rv_body(w, m, s, n, &w->v->text);
		return;
	}
	if (body_like && !w->have_html && strcmp(m->type, "text/html") == 0) {
		w->have_html = true;
		if (w->v != NULL)
			rv_body(w, m, s, n, &w->v->html);
		return;
	}
	rv_attachment(w, m, s, n, part);
}

/* ---- the tree ------------------------------------------------------------------------------------- */

/* Whether line (ll octets with its line end) is a delimiter of boundary b: "--" b, "--" more for the
 * close delimiter, then only transport padding (RFC 2046 §5.1.1). */
static bool rv_delimiter(const char *line, size_t ll, const char *b, size_t bl, bool *close_r)
{
	if (ll > 0 && line[ll - 1] == '\n')
		ll--;
	if (ll > 0 && line[ll - 1] == '\r')
		ll--;
	if (ll < 2 + bl || line[0] != '-' || line[1] != '-' || memcmp(line + 2, b, bl) != 0)
		return false;
	size_t j = 2 + bl;
	*close_r = ll - j >= 2 && line[j] == '-' && line[j + 1] == '-';
	if (*close_r)
		j += 2;
	while (j < ll && (line[j] == ' ' || line[j] == '\t'))
		j++;
	return j == ll;
}

static void rv_entity(struct rv_walk *w, const char *p, size_t n, size_t depth, const char *path, bool in_digest);

static void rv_child(struct rv_walk *w, const char *p, size_t n, size_t depth, const char *path, size_t k,
		     bool in_digest)
{
	char sub[RECEIVED_PART_LEN];
	int r = path[0] != '\0' ? snprintf(sub, sizeof(sub), "%s.%zu", path, k) : snprintf(sub, sizeof(sub), "%zu", k);
	if (r < 0 || (size_t)r >= sizeof(sub)) {
		rv_limit(w, RV_LIMIT_DEPTH);
		return;
	}
	rv_entity(w, p, n, depth, sub, in_digest);
}

/* The body parts of a multipart body: between its delimiter lines, each without the line break
 * before the next delimiter, which belongs to it (RFC 2046 §5.1.1). The preamble and the epilogue
 * are not parts; without a close delimiter the last part runs to the end. Candidates are found with
 * memmem, so that a level costs one fast pass over its octets whatever their lines look like. */
static void rv_multipart(struct rv_walk *w, const char *p, size_t n, const char *boundary, size_t depth,
			 const char *path, bool digest)
{
	size_t bl = strlen(boundary), i = 0, start = 0, k = 0;
	char *dash = malloc(bl + 3);
	if (dash == NULL) {
		w->nomem = w->stop = true;
		return;
	}
	dash[0] = dash[1] = '-';
	memcpy(dash + 2, boundary, bl + 1);
	bool open = false;
	while (i < n && !w->stop) {
		const char *hit = memmem(p + i, n - i, dash, bl + 2);
		if (hit == NULL)
			break;
		size_t at = (size_t)(hit - p);
		if (at > 0 && p[at - 1] != '\n') {
			i = at + 1; /* not at the start of a line */
			continue;
		}
		const char *lf = memchr(hit, '\n', n - at);
		size_t ll = lf != NULL ? (size_t)(lf - hit) + 1 : n - at;
		bool close = false;
		if (rv_delimiter(hit, ll, boundary, bl, &close)) {
			if (open) {
				size_t end = at;
				if (end > start && p[end - 1] == '\n')
					end--;
				if (end > start && p[end - 1] == '\r')
					end--;
				rv_child(w, p + start, end - start, depth, path, ++k, digest);
			}
			if (close) {
				open = false;
				break;
			}
			open = true;
			start = at + ll;
		}
		i = at + ll;
	}
	if (open && !w->stop)
		rv_child(w, p + start, n - start, depth, path, ++k, digest);
	free(dash);
}

/* One entity with depth multiparts around it. A message/rfc822 part is one attachment (its octets
 * the forwarded message), not walked into. */
static void rv_entity(struct rv_walk *w, const char *p, size_t n, size_t depth, const char *path, bool in_digest)
{
	if (w->stop)
		return;
	if (w->entities >= w->lim.max_parts) {
		rv_limit(w, RV_LIMIT_PARTS);
		w->stop = true;
		return;
	}
	w->entities++;
	struct rv_mime m = {0};
	if (!rv_mime_read(w, p, n, in_digest, &m)) {
		w->nomem = w->stop = true;
	} else if (strncmp(m.type, "multipart/", 10) == 0) {
		if (depth >= w->lim.max_depth)
			rv_limit(w, RV_LIMIT_DEPTH);
		else
			rv_multipart(w, p + m.body, n - m.body, m.boundary, depth + 1, path,
				     strcmp(m.type, "multipart/digest") == 0);
	} else {
		rv_leaf(w, &m, p + m.body, n - m.body, path);
	}
	rv_mime_free(&m);
}

/* ---- entry points --------------------------------------------------------------------------------- */

static void rv_walk_init(struct rv_walk *w, const char *raw, size_t len, const struct received_view_limits *lim)
{
	const struct received_view_limits *d = &received_view_limits_default;
	memset(w, 0, sizeof(*w));
	w->raw = raw;
	w->len = len;
	w->lim = lim != NULL ? *lim : *d;
	if (w->lim.max_size == 0)
		w->lim.max_size = d->max_size;
	if (w->lim.max_parts == 0)
		w->lim.max_parts = d->max_parts;
	if (w->lim.max_depth == 0)
		w->lim.max_depth = d->max_depth;
	if (w->lim.max_depth > RV_DEPTH_CAP)
		w->lim.max_depth = RV_DEPTH_CAP;
	if (w->lim.max_headers == 0)
		w->lim.max_headers = d->max_headers;
	if (w->lim.max_text == 0)
		w->lim.max_text = d->max_text;
	if (w->lim.max_field == 0)
		w->lim.max_field = d->max_field;
}

/* A message starts with a header field (RFC 5322 §2.1). */
static bool rv_is_message(const char *raw, size_t len)
{
	size_t pos = 0;
	struct header_field f;
	return raw != NULL && len > 0 && header_next(raw, len, &pos, &f) && rv_field_name_ok(&f);
}

static void rv_walk_run(struct rv_walk *w)
{
	pthread_once(&rv_once, rv_gmime_init);
	w->opts = g_mime_parser_options_new();
	if (w->v != NULL)
		rv_top_fields(w, w->v);
	if (!w->nomem)
		rv_entity(w, w->raw, w->len, 0, "", false);
	g_mime_parser_options_free(w->opts);
	w->opts = NULL;
}

enum received_view_error received_view_parse(const char *raw, size_t len, const struct received_view_limits *lim,
					     struct received_view *v_r, const char **error_r)
{
	const char *ignored;
	if (error_r == NULL)
		error_r = &ignored;
	*error_r = NULL;
	memset(v_r, 0, sizeof(*v_r));
	struct rv_walk w;
	rv_walk_init(&w, raw, len, lim);
	if (len > w.lim.max_size) {
		*error_r = "the message is larger than the limit for a received message";
		return RECEIVED_VIEW_TOO_LARGE;
	}
	if (!rv_is_message(raw, len)) {
		*error_r = "the message does not start with a header field";
		return RECEIVED_VIEW_NOT_A_MESSAGE;
	}
	w.v = v_r;
	rv_walk_run(&w);
	if (w.nomem) {
		received_view_clear(v_r);
		*error_r = "out of memory while reading the message";
		return RECEIVED_VIEW_NOMEM;
	}
	v_r->limited = w.limited;
	*error_r = w.limited;
	return RECEIVED_VIEW_OK;
}

static void rv_strings_free(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

void received_view_clear(struct received_view *v)
{
	if (v == NULL)
		return;
	free(v->from);
	rv_strings_free(v->to, v->to_count);
	rv_strings_free(v->cc, v->cc_count);
	rv_strings_free(v->reply_to, v->reply_to_count);
	free(v->subject);
	free(v->message_id);
	free(v->in_reply_to);
	free(v->references);
	for (size_t i = 0; i < v->header_count; i++) {
		free(v->headers[i].name);
		free(v->headers[i].value);
	}
	free(v->headers);
	free(v->text);
	free(v->html);
	for (size_t i = 0; i < v->attachment_count; i++) {
		free(v->attachments[i].filename);
		free(v->attachments[i].content_type);
		free(v->attachments[i].content_id);
	}
	free(v->attachments);
	memset(v, 0, sizeof(*v));
}

unsigned char *received_view_attachment(const char *raw, size_t len, const struct received_view_limits *lim,
					const char *id, size_t *size_r, char **content_type_r, char **filename_r)
{
	if (size_r != NULL)
		*size_r = 0;
	if (content_type_r != NULL)
		*content_type_r = NULL;
	if (filename_r != NULL)
		*filename_r = NULL;
	struct rv_walk w;
	rv_walk_init(&w, raw, len, lim);
	if (id == NULL || strlen(id) != RECEIVED_ID_LEN || len > w.lim.max_size || !rv_is_message(raw, len))
		return NULL;
	w.want = id;
	rv_walk_run(&w);
	if (!w.found || w.got == NULL || w.nomem) {
		free(w.got);
		free(w.got_type);
		free(w.got_name);
		return NULL;
	}
	if (size_r != NULL)
		*size_r = w.got_size;
	if (content_type_r != NULL)
		*content_type_r = w.got_type;
	else
		free(w.got_type);
	if (filename_r != NULL)
		*filename_r = w.got_name;
	else
		free(w.got_name);
	return w.got;
}

const char *received_view_error_str(enum received_view_error e)
{
	switch (e) {
	case RECEIVED_VIEW_OK:
		return "ok";
	case RECEIVED_VIEW_TOO_LARGE:
		return "too_large";
	case RECEIVED_VIEW_NOT_A_MESSAGE:
		return "not_a_message";
	case RECEIVED_VIEW_NOMEM:
		return "nomem";
	}
	return "unknown";
}

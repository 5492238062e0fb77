/* compose.c — compose_message: a checked send request (email_req.h) as RFC 5322 / MIME bytes, built
 * with GMime 3. Owns the header block (address fields through GMime's InternetAddressList, the rest
 * folded here), the body tree (alternative / related / mixed), the transfer encodings, and a last
 * check of the wire form (CRLF only, no line over 998 octets). compose_html_to_text is in
 * html_text.c. Any thread: GMime is initialised once, every call has its own objects. */
#include "http/compose.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "http/email_req.h"
#include "util/date.h"

/* RFC 5322 §2.1.1: a line SHOULD be at most 78 characters and MUST be at most 998, CRLF excluded. */
#define COMPOSE_FOLD_LEN 78
#define COMPOSE_LINE_MAX 998

static pthread_once_t compose_once = PTHREAD_ONCE_INIT;

static void compose_init(void)
{
	g_mime_init();
}

static void __attribute__((format(printf, 3, 4))) compose_fail(char *error, size_t size, const char *fmt, ...)
{
	if (error == NULL || size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error, size, fmt, ap);
	va_end(ap);
}

/* ---- header fields ------------------------------------------------------------------------------ */

/* What headers{} may do with a field that compose writes itself. RFC 5322 §3.6 allows each of these
 * once, so a request's copy either replaces ours or is refused: From, Sender, To, Cc and Bcc would
 * contradict the envelope and the checked from address (and a Bcc field would disclose them), and
 * the Content-* fields describe the body compose builds (RFC 2045 §3). */
enum compose_hdr_rule {
	COMPOSE_HDR_FREE,
	COMPOSE_HDR_REPLACES,
	COMPOSE_HDR_REFUSED,
};

static const struct {
	const char *name;
	enum compose_hdr_rule rule;
} compose_hdr_rules[] = {
	{"Message-ID", COMPOSE_HDR_REPLACES},
	{"Date", COMPOSE_HDR_REPLACES},
	{"Reply-To", COMPOSE_HDR_REPLACES},
	{"List-Unsubscribe", COMPOSE_HDR_REPLACES},
	{"List-Unsubscribe-Post", COMPOSE_HDR_REPLACES},
	{"From", COMPOSE_HDR_REFUSED},
	{"Sender", COMPOSE_HDR_REFUSED},
	{"To", COMPOSE_HDR_REFUSED},
	{"Cc", COMPOSE_HDR_REFUSED},
	{"Bcc", COMPOSE_HDR_REFUSED},
	{"Subject", COMPOSE_HDR_REFUSED},
	{"MIME-Version", COMPOSE_HDR_REFUSED},
	{"Content-Type", COMPOSE_HDR_REFUSED},
	{"Content-Transfer-Encoding", COMPOSE_HDR_REFUSED},
	{"Content-Disposition", COMPOSE_HDR_REFUSED},
	{"Content-ID", COMPOSE_HDR_REFUSED},
};

static enum compose_hdr_rule compose_hdr_rule(const char *name)
{
	for (size_t i = 0; i < sizeof(compose_hdr_rules) / sizeof(compose_hdr_rules[0]); i++)
		if (strcasecmp(name, compose_hdr_rules[i].name) == 0)
			return compose_hdr_rules[i].rule;
	return COMPOSE_HDR_FREE;
}

/* Octets that an unstructured field cannot carry as they are: 8-bit text and controls other than
 * HTAB (RFC 5322 §3.2.5 utext is VCHAR / WSP), so RFC 2047 encoded words are needed. */
static bool compose_needs_words(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p >= 0x7f || (*p < 0x20 && *p != '\t'))
			return true;
	return false;
}

static size_t compose_longest_word(const char *v)
{
	size_t best = 0, cur = 0;
	for (; *v != '\0'; v++) {
		cur = *v == ' ' || *v == '\t' ? 0 : cur + 1;
		if (cur > best)
			best = cur;
	}
	return best;
}

/* The raw value of a field ("Name:" is written by GMime before it): RFC 5322 §3.2.2 folding, a line
 * break inserted before a WSP once the line passes 78 columns, never inside a word. GMime's own
 * folder cuts words of 78 octets or more in two, which would break URLs and tokens in custom fields;
 * so the value is written raw and only its newlines become CRLF on output. */
static char *compose_fold(const char *name, const char *value)
{
	GString *s = g_string_sized_new(strlen(value) + 16);
	size_t col = strlen(name) + 2;
	bool word_on_line = false;
	g_string_append_c(s, ' ');
	for (const char *p = value; *p != '\0';) {
		const char *ws = p;
		while (*p == ' ' || *p == '\t')
			p++;
		const char *w = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		size_t wsl = (size_t)(w - ws), wl = (size_t)(p - w);
		if (wl > 0 && wsl > 0 && word_on_line && col + wsl + wl > COMPOSE_FOLD_LEN) {
			g_string_append_c(s, '\n');
			col = 0;
		}
		g_string_append_len(s, ws, (gssize)(wsl + wl));
		col += wsl + wl;
		if (wl > 0)
			word_on_line = true;
	}
	g_string_append_c(s, '\n');
	return g_string_free(s, FALSE);
}

/* Appends "name: value". unstructured: RFC 2047 encoded words (UTF-8) for non-ASCII text, and for a
 * word too long for any line, which encoded words can split (RFC 2047 §2: each at most 75 octets).
 * Structured values (msg-id, URLs) are written as given. */
static void compose_header_add(GMimeObject *obj, const char *name, const char *value, bool unstructured)
{
	char *enc = NULL;
	if (unstructured &&
	    (compose_needs_words(value) || strlen(name) + 2 + compose_longest_word(value) > COMPOSE_LINE_MAX))
		enc = g_mime_utils_header_encode_text(NULL, value, "utf-8");
	char *raw = compose_fold(name, enc != NULL ? enc : value);
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	/* appended empty, so that none of GMime's per-field formatters runs on request data (the
	 * Received one takes stack per token); setting the raw value then updates GMime's view of the
	 * field (Content-ID, Date) */
	g_mime_header_list_append(hl, name, "", NULL);
	GMimeHeader *h = g_mime_header_list_get_header_at(hl, g_mime_header_list_get_count(hl) - 1);
	g_mime_header_set_raw_value(h, raw);
	g_free(raw);
	g_free(enc);
}

/* From, To, Cc, Reply-To through GMime: it quotes display names with specials (RFC 5322 §3.2.3
 * phrase), encodes non-ASCII ones (RFC 2047 §5(3)) and folds between addresses. Appending a whole
 * list at once re-encodes the field once, not once per address. */
static void compose_addresses(InternetAddressList *dst, const struct email_mailbox *m, size_t count)
{
	if (count == 0)
		return;
	InternetAddressList *l = internet_address_list_new();
	for (size_t i = 0; i < count; i++) {
		const char *name = m[i].name != NULL && m[i].name[0] != '\0' ? m[i].name : NULL;
		InternetAddress *ia = internet_address_mailbox_new(name, m[i].addr.text);
		internet_address_set_charset(ia, "utf-8");
		internet_address_list_add(l, ia);
		g_object_unref(ia);
	}
	internet_address_list_append(dst, l);
	g_object_unref(l);
}

static bool compose_custom_headers_check(const struct email_req *r, char *error, size_t error_size)
{
	for (size_t i = 0; i < r->header_count; i++) {
		const struct email_header *h = &r->headers[i];
		/* the parser guarantees these; a broken field would corrupt the whole header block */
		bool ok = h->name != NULL && h->name[0] != '\0' && h->value != NULL;
		for (const char *p = ok ? h->name : ""; *p != '\0'; p++)
			if (*p <= ' ' || *p >= 0x7f || *p == ':')
				ok = false;
		if (ok && strpbrk(h->value, "\r\n") != NULL)
			ok = false;
		if (!ok) {
			compose_fail(error, error_size, "The header field %s is not a valid field.",
				     h->name != NULL ? h->name : "(null)");
			return false;
		}
		switch (compose_hdr_rule(h->name)) {
		case COMPOSE_HDR_REFUSED:
			compose_fail(error, error_size,
				     "The header %s is set from the request's fields and cannot be given "
				     "in `headers`.", h->name);
			return false;
		case COMPOSE_HDR_REPLACES:
			if (email_req_header_find(r, h->name) != h) {
				compose_fail(error, error_size,
					     "The header %s may be given only once (RFC 5322 §3.6).",
					     h->name);
				return false;
			}
			break;
		case COMPOSE_HDR_FREE:
			break;
		}
	}
	return true;
}

/* RFC 5322 §3.6.4 msg-id: "<id-left@id-right>". A Message-ID from headers{} is used as given; one
 * without angle brackets gets them, so the field is still a msg-id. *id_r is the id without them. */
static char *compose_message_id(const struct email_req *r, const struct compose_opts *o, char **id_r,
				char *error, size_t error_size)
{
	const struct email_header *h = email_req_header_find(r, "Message-ID");
	char *id;
	if (h != NULL) {
		const char *v = h->value + strspn(h->value, " \t");
		size_t n = strlen(v);
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
			v++;
			n -= 2;
		}
		id = g_strndup(v, n);
	} else if (o->message_id_local != NULL && o->hostname != NULL && o->message_id_local[0] != '\0' &&
		   o->hostname[0] != '\0') {
		id = g_strdup_printf("%s@%s", o->message_id_local, o->hostname);
	} else {
		compose_fail(error, error_size, "A Message-ID needs the email's id and the hostname.");
		return NULL;
	}
	if (id[0] == '\0' || strpbrk(id, "<> \t") != NULL) {
		compose_fail(error, error_size, "The Message-ID %s is not a valid msg-id (RFC 5322 §3.6.4).",
			     h != NULL ? h->value : id);
		g_free(id);
		return NULL;
	}
	*id_r = id;
	return g_strdup_printf("<%s>", id);
}

static void compose_headers(GMimeMessage *m, const struct email_req *r, const struct compose_opts *o,
			    const char *msgid_field)
{
	GMimeObject *obj = GMIME_OBJECT(m);
	compose_addresses(g_mime_message_get_from(m), &r->from, 1);
	compose_addresses(g_mime_message_get_to(m), r->to, r->to_count);
	compose_addresses(g_mime_message_get_cc(m), r->cc, r->cc_count);
	/* RFC 5322 §3.6.3: Bcc recipients are in the envelope only; no Bcc field at all is written */
	const struct email_header *reply_to = email_req_header_find(r, "Reply-To");
	InternetAddressList *rt = NULL;
	if (reply_to != NULL)
		rt = internet_address_list_parse(NULL, reply_to->value);
	if (reply_to == NULL) {
		compose_addresses(g_mime_message_get_reply_to(m), r->reply_to, r->reply_to_count);
	} else if (rt != NULL && internet_address_list_length(rt) > 0) {
		/* re-encoded like the other address fields: names with specials or UTF-8 come out right */
		internet_address_list_append(g_mime_message_get_reply_to(m), rt);
	} else {
		compose_header_add(obj, "Reply-To", reply_to->value, false);
	}
	if (rt != NULL)
		g_object_unref(rt);
	if (r->subject != NULL)
		compose_header_add(obj, "Subject", r->subject, true);
	if (email_req_header_find(r, "Date") == NULL) {
		char date[64];
		date_rfc5322_format((time_t)o->date, date, sizeof(date));
		compose_header_add(obj, "Date", date, false);
	}
	compose_header_add(obj, "Message-ID", msgid_field, false);
	/* RFC 5322 §3.6.4: the parent's msg-id, and the thread's (email_req.h) */
	if (r->in_reply_to != NULL)
		compose_header_add(obj, "In-Reply-To", r->in_reply_to, false);
	if (r->references != NULL)
		compose_header_add(obj, "References", r->references, false);
	compose_header_add(obj, "MIME-Version", "1.0", false);
	for (size_t i = 0; i < r->header_count; i++) {
		const struct email_header *h = &r->headers[i];
		if (strcasecmp(h->name, "Message-ID") == 0 || strcasecmp(h->name, "Reply-To") == 0)
			continue;
		/* unstructured text may become encoded words; a replacing field is structured, as given */
		compose_header_add(obj, h->name, h->value, compose_hdr_rule(h->name) == COMPOSE_HDR_FREE);
	}
	if (o->list_unsubscribe_url != NULL && email_req_header_find(r, "List-Unsubscribe") == NULL) {
		/* RFC 2369 §3.2 angle-bracketed URL; RFC 8058 §3.1 one-click POST */
		char *v = g_strdup_printf("<%s>", o->list_unsubscribe_url);
		compose_header_add(obj, "List-Unsubscribe", v, false);
		g_free(v);
		if (email_req_header_find(r, "List-Unsubscribe-Post") == NULL)
			compose_header_add(obj, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click", false);
	}
}

/* ---- body parts --------------------------------------------------------------------------------- */

static GMimeDataWrapper *compose_wrap_stream(GMimeStream *s)
{
	g_mime_stream_reset(s);
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s, GMIME_CONTENT_ENCODING_DEFAULT);
	g_object_unref(s);
	return w;
}

/* text/<subtype>; charset=utf-8 with the content's line ends as LF (CRLF and a lone CR are one line
 * break each), so that GMime's output filter makes every one CRLF and leaves no bare CR (RFC 5322
 * §2.3). The transfer encoding is GMime's best under a 7bit constraint: 7bit for ASCII with lines of
 * at most 998 octets, quoted-printable (soft breaks, RFC 2045 §6.7 rule 5) for long lines or a
 * little 8-bit text, base64 when 17% or more is 8-bit. */
static GMimeObject *compose_text_part(const char *subtype, const char *text)
{
	GMimePart *p = g_mime_part_new_with_type("text", subtype);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(p), "charset", "utf-8");
	GMimeStream *s = g_mime_stream_mem_new();
	const char *t = text;
	for (const char *cr; (cr = strchr(t, '\r')) != NULL; t = cr + (cr[1] == '\n' ? 2 : 1)) {
		g_mime_stream_write(s, t, (size_t)(cr - t));
		g_mime_stream_write(s, "\n", 1);
	}
	g_mime_stream_write(s, t, strlen(t));
	GMimeDataWrapper *w = compose_wrap_stream(s);
	g_mime_part_set_content(p, w);
	g_object_unref(w);
	GMimeContentEncoding enc = g_mime_part_get_best_content_encoding(p, GMIME_ENCODING_CONSTRAINT_7BIT);
	if (enc == GMIME_CONTENT_ENCODING_DEFAULT)
		enc = GMIME_CONTENT_ENCODING_7BIT;
	g_mime_part_set_content_encoding(p, enc);
	return GMIME_OBJECT(p);
}

/* An attachment, base64 always: the octets come back exactly, whatever their line ends (RFC 2045
 * §6.8). inline: Content-Disposition: inline and the Content-ID the html refers to as cid:
 * (RFC 2392 §2, RFC 2387). The file name goes into the filename (RFC 2183 §2.3) and name parameters,
 * RFC 2231 encoded when not ASCII (the format options' parameter method). */
static GMimeObject *compose_attachment_part(const struct email_attachment *a, bool is_inline)
{
	GMimeContentType *ct = g_mime_content_type_parse(NULL, a->content_type != NULL ? a->content_type
										: "application/octet-stream");
	/* RFC 2045 §6.4: a multipart or message entity must not be base64-encoded; as an opaque file it
	 * is application/octet-stream */
	if (g_mime_content_type_is_type(ct, "multipart", "*") ||
	    g_mime_content_type_is_type(ct, "message", "*")) {
		g_object_unref(ct);
		ct = g_mime_content_type_new("application", "octet-stream");
	}
	GMimePart *p = g_mime_part_new();
	GMimeObject *obj = GMIME_OBJECT(p);
	g_mime_object_set_content_type(obj, ct);
	g_object_unref(ct);
	g_mime_object_set_disposition(obj, is_inline ? "inline" : "attachment");
	if (a->filename != NULL && a->filename[0] != '\0') {
		g_mime_part_set_filename(p, a->filename);
		/* GMime would pick the smallest charset that fits (often iso-8859-1); the request is UTF-8 */
		GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
		GMimeParamList *pl = g_mime_content_disposition_get_parameters(d);
		g_mime_param_set_charset(g_mime_param_list_get_parameter(pl, "filename"), "utf-8");
		pl = g_mime_content_type_get_parameters(g_mime_object_get_content_type(obj));
		g_mime_param_set_charset(g_mime_param_list_get_parameter(pl, "name"), "utf-8");
	}
	if (a->content_id != NULL) {
		const char *id = a->content_id;
		size_t n = strlen(id);
		if (n >= 2 && id[0] == '<' && id[n - 1] == '>') {
			id++;
			n -= 2;
		}
		char *v = g_strdup_printf("<%.*s>", (int)n, id);
		compose_header_add(obj, "Content-ID", v, false);
		g_free(v);
	}
	GMimeStream *s = g_mime_stream_mem_new();
	if (a->size > 0)
		g_mime_stream_write(s, (const char *)a->content, a->size);
	GMimeDataWrapper *w = compose_wrap_stream(s);
	g_mime_part_set_content(p, w);
	g_object_unref(w);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	return obj;
}

/* Takes the references to parts[0..n-1]. */
static GMimeObject *compose_multipart(const char *subtype, GMimeObject **parts, size_t n)
{
	GMimeMultipart *mp = g_mime_multipart_new_with_subtype(subtype);
	for (size_t i = 0; i < n; i++) {
		g_mime_multipart_add(mp, parts[i]);
		g_object_unref(parts[i]);
	}
	return GMIME_OBJECT(mp);
}

static bool compose_attachments_check(const struct email_req *r, char *error, size_t error_size)
{
	for (size_t i = 0; i < r->attachment_count; i++) {
		const struct email_attachment *a = &r->attachments[i];
		if (a->content == NULL && (a->size > 0 || a->path != NULL)) {
			compose_fail(error, error_size, "The attachment %s has no content%s.",
				     a->filename != NULL ? a->filename : "(unnamed)",
				     a->path != NULL ? " (its path was not fetched)" : "");
			return false;
		}
	}
	return true;
}

/* The body tree, outermost first (RFC 2046 §5.1.3, §5.1.4; RFC 2387):
 *   multipart/mixed            when there are attachments
 *     multipart/alternative    when there is html: text/plain first, the richest last
 *       text/plain             the request's text, or the html as text
 *       multipart/related      when inline parts (content_id) go with the html
 *         text/html
 *         inline parts
 *     attachments
 * Inline parts without an html part to refer to them are ordinary attachments. */
static GMimeObject *compose_body(const struct email_req *r)
{
	bool has_html = r->html != NULL && r->html[0] != '\0';
	bool has_text = r->text != NULL && (r->text[0] != '\0' || !has_html);
	size_t n_inline = 0;
	for (size_t i = 0; i < r->attachment_count; i++)
		if (r->attachments[i].content_id != NULL && has_html)
			n_inline++;
	size_t n_mixed = r->attachment_count - n_inline;

	GMimeObject *body;
	if (has_text) {
		body = compose_text_part("plain", r->text);
	} else if (has_html) {
		char *derived = compose_html_to_text(r->html);
		if (derived == NULL)
			return NULL;
		body = compose_text_part("plain", derived);
		free(derived);
	} else {
		body = compose_text_part("plain", "");
	}
	if (has_html) {
		GMimeObject *html = compose_text_part("html", r->html);
		if (n_inline > 0) {
			GMimeObject **rel = g_new(GMimeObject *, n_inline + 1);
			size_t k = 0;
			rel[k++] = html;
			for (size_t i = 0; i < r->attachment_count; i++)
				if (r->attachments[i].content_id != NULL)
					rel[k++] = compose_attachment_part(&r->attachments[i], true);
			html = compose_multipart("related", rel, k);
			/* RFC 2387 §3.1: type is the media type of the root, the first part */
			g_mime_object_set_content_type_parameter(html, "type", "text/html");
			g_free(rel);
		}
		GMimeObject *alt[2] = {body, html};
		body = compose_multipart("alternative", alt, 2);
	}
	if (n_mixed > 0) {
		GMimeObject **mix = g_new(GMimeObject *, n_mixed + 1);
		size_t k = 0;
		mix[k++] = body;
		for (size_t i = 0; i < r->attachment_count; i++)
			if (r->attachments[i].content_id == NULL || !has_html)
				mix[k++] = compose_attachment_part(&r->attachments[i], false);
		body = compose_multipart("mixed", mix, k);
		g_free(mix);
	}
	return body;
}

/* ---- the whole message -------------------------------------------------------------------------- */

/* RFC 5322 §2.1 and §2.3: every line ends in CRLF, there is no CR or LF alone, and no line passes 998
 * octets. GMime's output is built to satisfy this; a value no rule could fold (a single word of
 * nearly 1000 octets in a structured field) is refused here rather than sent broken. */
static bool compose_wire_check(const unsigned char *m, size_t len, char *error, size_t error_size)
{
	size_t line = 0;
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n') {
			if (line > COMPOSE_LINE_MAX) {
				compose_fail(error, error_size,
					     "The message would have a line of %zu octets; at most %d "
					     "are allowed (RFC 5322 §2.1.1).", line, COMPOSE_LINE_MAX);
				return false;
			}
			line = 0;
			i++;
		} else if (m[i] == '\r' || m[i] == '\n') {
			compose_fail(error, error_size,
				     "The message would have a bare CR or LF (RFC 5322 §2.3).");
			return false;
		} else {
			line++;
		}
	}
	if (len < 2 || m[len - 2] != '\r' || m[len - 1] != '\n') {
		compose_fail(error, error_size, "The message would not end with CRLF.");
		return false;
	}
	return true;
}

char *compose_message(const struct email_req *r, const struct compose_opts *o, size_t *len_r,
		      char **message_id_r, char *error, size_t error_size)
{
	if (message_id_r != NULL)
		*message_id_r = NULL;
	if (r == NULL || o == NULL || len_r == NULL) {
		compose_fail(error, error_size, "compose_message needs a request, options and a length.");
		return NULL;
	}
	if (r->from.addr.text[0] == '\0') {
		compose_fail(error, error_size, "The message needs a from address.");
		return NULL;
	}
	if (!compose_custom_headers_check(r, error, error_size) ||
	    !compose_attachments_check(r, error, error_size))
		return NULL;
	pthread_once(&compose_once, compose_init);

	char *id = NULL;
	char *msgid_field = compose_message_id(r, o, &id, error, error_size);
	if (msgid_field == NULL)
		return NULL;

	GMimeMessage *m = g_mime_message_new(FALSE);
	compose_headers(m, r, o, msgid_field);
	g_free(msgid_field);
	GMimeObject *body = compose_body(r);
	if (body == NULL) {
		compose_fail(error, error_size, "Out of memory while composing the message.");
		g_object_unref(m);
		g_free(id);
		return NULL;
	}
	g_mime_message_set_mime_part(m, body);
	g_object_unref(body);

	GMimeFormatOptions *fmt = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fmt, GMIME_NEWLINE_FORMAT_DOS);
	g_mime_format_options_set_param_encoding_method(fmt, GMIME_PARAM_ENCODING_METHOD_RFC2231);
	GByteArray *ba = g_byte_array_new();
	GMimeStream *s = g_mime_stream_mem_new_with_byte_array(ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
	ssize_t written = g_mime_object_write_to_stream(GMIME_OBJECT(m), fmt, s);
	g_object_unref(s);
	g_mime_format_options_free(fmt);
	g_object_unref(m);

	char *out = NULL;
	if (written < 0) {
		compose_fail(error, error_size, "GMime could not write the message.");
	} else if (compose_wire_check(ba->data, ba->len, error, error_size)) {
		/* malloc'd for the caller's free(), whatever allocator GLib uses */
		out = malloc(ba->len + 1);
		if (out == NULL) {
			compose_fail(error, error_size, "Out of memory while composing the message.");
		} else {
			memcpy(out, ba->data, ba->len);
			out[ba->len] = '\0';
			*len_r = ba->len;
		}
	}
	g_byte_array_free(ba, TRUE);
	if (out != NULL && message_id_r != NULL) {
		*message_id_r = strdup(id);
		if (*message_id_r == NULL) {
			compose_fail(error, error_size, "Out of memory while composing the message.");
			free(out);
			out = NULL;
		}
	}
	g_free(id);
	return out;
}

/* email_req_attach.c — the attachments of a send request (email_req.h): base64 content decoded
 * (whitespace allowed, as clients wrap it), or a URL when fetching is allowed; file names, content
 * types (RFC 2045 §5.1) and Content-IDs checked so that nothing can break the MIME structure;
 * the total of decoded attachments and bodies within [smtp] max_message_size. Pure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/email_req_ctx.h"
#include "util/base64.h"

/* ---- attachments ---- */

static bool email_req_b64_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* RFC 4648 §4 base64 as MIME writers wrap it (RFC 2045 §6.8: lines of 76): white space anywhere is
 * skipped; '=' padding may be left out, but when present it is complete and only at the end.
 * The decoded size in *size_r; false when s is not base64. */
static bool email_req_b64_measure(const char *s, size_t len, size_t *size_r)
{
	size_t digits = 0, pad = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (email_req_b64_space(ch))
			continue;
		if (ch == '=') {
			if (++pad > 2)
				return false;
			continue;
		}
		if (pad > 0 || base64_value((unsigned char)ch) < 0)
			return false;
		digits++;
	}
	if (digits % 4 == 1 || (pad > 0 && (digits + pad) % 4 != 0))
		return false;
	*size_r = digits / 4 * 3 + (digits % 4 == 0 ? 0 : digits % 4 - 1);
	return true;
}

/* Decodes what email_req_b64_measure accepted into out (its *size_r octets). The bits of a last
 * partial group beyond the data are dropped (RFC 4648 §3.5 lets a decoder ignore them). */
static void email_req_b64_decode(const char *s, size_t len, unsigned char *out)
{
	unsigned long acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int d = base64_value((unsigned char)s[i]);
		if (d < 0)
			continue;
		acc = (acc << 6 | (unsigned)d) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
}

/* Content types by file name extension, as Resend derives them when content_type is absent.
 * .eml is left out: RFC 2046 §5.2.1 forbids base64 for message/rfc822, and every attachment is
 * base64 (compose.c). */
static const struct email_req_ext {
	const char *ext, *type;
} email_req_exts[] = {
	{ "pdf", "application/pdf" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "svg", "image/svg+xml" },
	{ "txt", "text/plain" },
	{ "html", "text/html" },
	{ "htm", "text/html" },
	{ "csv", "text/csv" },
	{ "ics", "text/calendar" },
	{ "json", "application/json" },
	{ "xml", "application/xml" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
	{ "xls", "application/vnd.ms-excel" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
	{ "ppt", "application/vnd.ms-powerpoint" },
	{ "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
	{ "mp3", "audio/mpeg" },
	{ "mp4", "video/mp4" },
	{ "wav", "audio/wav" },
};

/* The type for the name's extension (case-insensitive), application/octet-stream when unknown. */
static const char *email_req_type_for(const char *name, size_t len)
{
	const char *dot = NULL;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '.')
			dot = name + i;
	if (dot != NULL) {
		size_t n = len - (size_t)(dot + 1 - name);
		for (size_t i = 0; i < sizeof(email_req_exts) / sizeof(email_req_exts[0]); i++)
			if (strlen(email_req_exts[i].ext) == n &&
			    strncasecmp(dot + 1, email_req_exts[i].ext, n) == 0)
				return email_req_exts[i].type;
	}
	return "application/octet-stream";
}

/* RFC 2045 §5.1: token = 1*<any CHAR except SPACE, CTLs or tspecials> */
static size_t email_req_token_len(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && s[i] > 32 && s[i] < 127 && strchr("()<>@,;:\\\"/[]?=", s[i]) == NULL)
		i++;
	return i;
}

/* RFC 2045 §5.1: type "/" subtype *(";" parameter), parameter = attribute "=" (token / quoted-string),
 * with optional spaces around ';'. Parameters are kept: "text/calendar; method=REQUEST" is how an
 * invitation is sent. A multipart type is refused: an attachment is a leaf, and a multipart type without
 * its boundary (RFC 2046 §5.1.1) would break the message. */
bool email_content_type_ok(const char *s, size_t len)
{
	size_t i = email_req_token_len(s, len);
	if (i == 0 || i == len || s[i] != '/' || (i == 9 && strncasecmp(s, "multipart", 9) == 0))
		return false;
	size_t n = email_req_token_len(s + i + 1, len - i - 1);
	if (n == 0)
		return false;
	for (i += 1 + n; i < len;) {
		while (i < len && email_req_is_wsp(s[i]))
			i++;
		if (i == len)
			break;
		if (s[i++] != ';')
			return false;
		while (i < len && email_req_is_wsp(s[i]))
			i++;
		if ((n = email_req_token_len(s + i, len - i)) == 0)
			return false;
		i += n;
		if (i == len || s[i++] != '=')
			return false;
		if (i < len && s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\')
					i++;
				if (i >= len || (unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
					return false;
			}
			if (i >= len)
				return false;
			i++;
		} else if ((n = email_req_token_len(s + i, len - i)) == 0) {
			return false;
		} else {
			i += n;
		}
	}
	return true;
}

/* It becomes "Content-ID: <id>" (RFC 2392), so printable ASCII without brackets or spaces. */
static bool email_req_content_id_ok(const char *s, size_t len)
{
	if (len == 0 || len > EMAIL_REQ_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 33 || s[i] > 126 || s[i] == '<' || s[i] == '>')
			return false;
	return true;
}

/* An http or https URL for the fetcher: printable ASCII, no spaces. */
static bool email_req_url_ok(const char *s, size_t len)
{
	size_t scheme;
	if (len > 8 && strncasecmp(s, "https://", 8) == 0)
		scheme = 8;
	else if (len > 7 && strncasecmp(s, "http://", 7) == 0)
		scheme = 7;
	else
		return false;
	if (len > EMAIL_REQ_URL_MAX)
		return false;
	for (size_t i = scheme; i < len; i++)
		if (s[i] < 33 || s[i] > 126)
			return false;
	return true;
}

/* The last path segment of a URL, for its extension: after the last '/', before '?' or '#'. */
static void email_req_url_name(const char *s, size_t len, const char **name_r, size_t *len_r)
{
	size_t end = len, b = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '?' || s[i] == '#') {
			end = i;
			break;
		}
	for (size_t i = 0; i < end; i++)
		if (s[i] == '/')
			b = i + 1;
	*name_r = s + b;
	*len_r = end - b;
}

/* The optional string member key of attachment i: NULL when absent, null or false (the SDK's type
 * allows filename: false). */
static enum email_req_error email_req_att_str(struct email_req_ctx *c, const json_t *att, size_t i,
					      const char *key, const char **s_r, size_t *len_r)
{
	const json_t *v = email_req_field(att, key);
	char label[64];

	*s_r = NULL;
	*len_r = 0;
	if (v == NULL || json_is_false(v))
		return EMAIL_REQ_OK;
	snprintf(label, sizeof(label), "attachments[%zu].%s", i, key);
	return email_req_str_field(c, v, label, EMAIL_REQ_INVALID_ATTACHMENT, s_r, len_r);
}

static enum email_req_error email_req_attachment(struct email_req_ctx *c, const json_t *att, size_t i,
						 struct email_attachment *a)
{
	const char *content, *path, *filename, *type, *cid;
	size_t content_len, path_len, filename_len, type_len, cid_len;
	enum email_req_error e;

	if (!json_is_object(att))
		return email_req_fail(c, EMAIL_REQ_INVALID_ATTACHMENT,
				      "The `attachments[%zu]` field must be an object.", i);
	if ((e = email_req_att_str(c, att, i, "content", &content, &content_len)) != EMAIL_REQ_OK ||
	    (e = email_req_att_str(c, att, i, "path", &path, &path_len)) != EMAIL_REQ_OK ||
	    (e = email_req_att_str(c, att, i, "filename", &filename, &filename_len)) != EMAIL_REQ_OK ||
	    (e = email_req_att_str(c, att, i, "content_type", &type, &type_len)) != EMAIL_REQ_OK ||
	    (e = email_req_att_str(c, att, i, "content_id", &cid, &cid_len)) != EMAIL_REQ_OK)
		return e;
	if (content != NULL && path != NULL)
		return email_req_fail(
			c, EMAIL_REQ_INVALID_ATTACHMENT,
			"Invalid `attachments[%zu]`: give either `content` or `path`, not both.", i);
	if (content == NULL && path == NULL)
		return email_req_fail(c, EMAIL_REQ_INVALID_ATTACHMENT,
				      "Invalid `attachments[%zu]`: `content` or `path` is required.", i);
	if (filename != NULL) {
		if (filename_len == 0 || filename_len > EMAIL_REQ_FILENAME_MAX)
			return email_req_fail(
				c, EMAIL_REQ_INVALID_ATTACHMENT,
				"Invalid `attachments[%zu].filename`: it must be 1 to %d octets.", i,
				EMAIL_REQ_FILENAME_MAX);
		/* it goes into Content-Disposition (RFC 2231 when not ASCII): no line breaks, no controls */
		if (email_req_has_ctl(filename, filename_len))
			return email_req_fail(
				c, EMAIL_REQ_INVALID_ATTACHMENT,
				"Invalid `attachments[%zu].filename`: control characters (CR, LF, ...) "
				"are not allowed.",
				i);
	}
	if (type != NULL && (type_len > EMAIL_REQ_TOKEN_MAX || !email_content_type_ok(type, type_len)))
		return email_req_fail(
			c, EMAIL_REQ_INVALID_ATTACHMENT,
			"Invalid `attachments[%zu].content_type`: it must be a MIME type such as "
			"`application/pdf` (RFC 2045 §5.1), not multipart.",
			i);
	if (cid != NULL && !email_req_content_id_ok(cid, cid_len))
		return email_req_fail(
			c, EMAIL_REQ_INVALID_ATTACHMENT,
			"Invalid `attachments[%zu].content_id`: it must be 1 to %d printable ASCII "
			"characters without spaces, `<` or `>`.",
			i, EMAIL_REQ_TOKEN_MAX);
	/* an inline part is named by its content_id; any other needs a name (the type comes from it) */
	if (content != NULL && filename == NULL && cid == NULL)
		return email_req_fail(c, EMAIL_REQ_MISSING_FIELD,
				      "Missing `attachments[%zu].filename` field.", i);
	if (path != NULL) {
		if (!c->lim->allow_attachment_urls)
			return email_req_fail(
				c, EMAIL_REQ_INVALID_ATTACHMENT,
				"Invalid `attachments[%zu].path`: this server does not fetch attachments "
				"from URLs; send `content` (base64) instead.",
				i);
		if (!email_req_url_ok(path, path_len))
			return email_req_fail(
				c, EMAIL_REQ_INVALID_ATTACHMENT,
				"Invalid `attachments[%zu].path`: it must be an http or https URL of at "
				"most %d octets.",
				i, EMAIL_REQ_URL_MAX);
		if ((a->path = email_req_dup(path, path_len)) == NULL)
			return email_req_nomem(c);
	} else {
		if (!email_req_b64_measure(content, content_len, &a->size)) {
			a->size = 0;
			return email_req_fail(c, EMAIL_REQ_INVALID_ATTACHMENT,
					      "Invalid `attachments[%zu].content`: not base64.", i);
		}
		if ((a->content = malloc(a->size > 0 ? a->size : 1)) == NULL)
			return email_req_nomem(c);
		email_req_b64_decode(content, content_len, a->content);
	}
	if (filename != NULL && (a->filename = email_req_dup(filename, filename_len)) == NULL)
		return email_req_nomem(c);
	if (cid != NULL && (a->content_id = email_req_dup(cid, cid_len)) == NULL)
		return email_req_nomem(c);
	if (type != NULL) {
		a->content_type = email_req_dup(type, type_len);
	} else {
		const char *name = filename;
		size_t name_len = filename_len;
		if (name == NULL && path != NULL)
			email_req_url_name(path, path_len, &name, &name_len);
		a->content_type = strdup(name != NULL ? email_req_type_for(name, name_len)
						      : "application/octet-stream");
	}
	return a->content_type == NULL ? email_req_nomem(c) : EMAIL_REQ_OK;
}

/* html + text + every attachment's decoded content, measured before anything is decoded, so that
 * an email over the limit costs no allocation and the message can give its size. Contents that are
 * not base64 count nothing here; the attachment check refuses them after. */
static enum email_req_error email_req_size(struct email_req_ctx *c, const json_t *atts,
					   const struct email_req *r)
{
	uint64_t total = 0;
	if (r->html != NULL)
		total += strlen(r->html);
	if (r->text != NULL)
		total += strlen(r->text);
	for (size_t i = 0; json_is_array(atts) && i < json_array_size(atts); i++) {
		const json_t *v = json_is_object(json_array_get(atts, i))
					  ? json_object_get(json_array_get(atts, i), "content")
					  : NULL;
		size_t size;
		if (json_is_string(v) &&
		    email_req_b64_measure(json_string_value(v), json_string_length(v), &size))
			total += size;
	}
	if (total > c->lim->max_size)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The email is %" PRIu64
				      " octets (`html`, `text` and decoded `attachments` "
				      "together), more than the limit of %" PRIu64 ".",
				      total, c->lim->max_size);
	return EMAIL_REQ_OK;
}

enum email_req_error email_req_attachments(struct email_req_ctx *c, const json_t *obj,
						  struct email_req *r)
{
	const json_t *v = email_req_field(obj, "attachments");
	enum email_req_error e;

	if (v != NULL && !json_is_array(v))
		return email_req_fail(c, EMAIL_REQ_VALIDATION, "The `attachments` field must be an array.");
	size_t n = v != NULL ? json_array_size(v) : 0;
	if (n > EMAIL_REQ_MAX_ATTACHMENTS)
		return email_req_fail(c, EMAIL_REQ_VALIDATION,
				      "The `attachments` field must contain at most %d attachments.",
				      EMAIL_REQ_MAX_ATTACHMENTS);
	if ((e = email_req_size(c, v, r)) != EMAIL_REQ_OK || n == 0)
		return e;
	r->attachments = calloc(n, sizeof(*r->attachments));
	if (r->attachments == NULL)
		return email_req_nomem(c);
	for (size_t i = 0; i < n; i++) {
		r->attachment_count++; /* zeroed by calloc: email_req_free copes with a half-filled one */
		if ((e = email_req_attachment(c, json_array_get(v, i), i, &r->attachments[i])) !=
		    EMAIL_REQ_OK)
			return e;
	}
	return EMAIL_REQ_OK;
}


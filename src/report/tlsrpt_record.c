/* tlsrpt_record.c — the TLS-RPT TXT record at _smtp._tls.DOMAIN (RFC 8460 §3). Hostile input. */
#include "report/tlsrpt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "net/http_url.h"
#include "util/hex.h"

const char *tlsrpt_record_error_str(enum tlsrpt_record_error e)
{
	switch (e) {
	case TLSRPT_RECORD_OK: return "ok";
	case TLSRPT_RECORD_NOT_TLSRPT: return "not_tlsrpt";
	case TLSRPT_RECORD_SYNTAX: return "syntax";
	case TLSRPT_RECORD_NO_RUA: return "no_rua";
	}
	return "syntax";
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}


/* §3 tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool ext_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 32 || !is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* §3 tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
static bool ext_value_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
			return false;
	}
	return true;
}

/* "mailto:" addr-spec ["?" hfields] (RFC 6068): the mailbox, percent-decoded, into out. */
static bool mailto_take(const char *s, size_t n, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < n && s[i] != '?'; i++) {
		char c = s[i];
		if (c == '%') {
			int h = i + 2 < n ? hex_digit_value(s[i + 1]) : -1, l = i + 2 < n ? hex_digit_value(s[i + 2]) : -1;
			if (h < 0 || l < 0)
				return false;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	if (o == 0 || strlen(out) != o)
		return false; /* an encoded NUL */
	struct addr a;
	const char *err;
	/* ASCII only: reports are sent without SMTPUTF8; no address literals */
	return addr_parse_mailbox(out, o, 0, &a, &err) == ADDR_OK && !a.is_literal && a.local_len > 0;
}

/* One URI of the rua list, trimmed; added to r when usable. */
static void uri_take(struct tlsrpt_record *r, const char *s, size_t n)
{
	if (r->rua_count >= TLSRPT_RUA_MAX || n > TLSRPT_URI_MAX) {
		r->skipped++;
		return;
	}
	struct tlsrpt_uri *u = &r->rua[r->rua_count];
	if (n > 7 && strncasecmp(s, "mailto:", 7) == 0) {
		if (!mailto_take(s + 7, n - 7, u->text, sizeof(u->text))) {
			r->skipped++;
			return;
		}
		u->kind = TLSRPT_URI_MAILTO;
	} else if (n > 8 && strncasecmp(s, "https://", 8) == 0) {
		struct http_url url;
		const char *err;
		if (http_url_parse(s, n, &url, &err) != HTTP_URL_OK || !url.https) {
			r->skipped++;
			return;
		}
		memcpy(u->text, s, n);
		u->text[n] = '\0';
		u->kind = TLSRPT_URI_HTTPS;
	} else {
		r->skipped++; /* §3: other schemes may be defined later; we send by mail and HTTPS only */
		return;
	}
	for (size_t i = 0; i < r->rua_count; i++)
		if (r->rua[i].kind == u->kind && strcasecmp(r->rua[i].text, u->text) == 0)
			return; /* the same destination once */
	r->rua_count++;
}

/* §3 tlsrpt-rua = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) */
static bool rua_parse(struct tlsrpt_record *r, const char *s, size_t n)
{
	size_t i = 0;
	for (;;) {
		while (i < n && is_wsp(s[i]))
			i++;
		size_t start = i;
		while (i < n && s[i] != ',')
			i++;
		size_t end = i;
		while (end > start && is_wsp(s[end - 1]))
			end--;
		if (end == start)
			return false; /* an empty URI */
		for (size_t k = start; k < end; k++)
			if ((unsigned char)s[k] <= 0x20 || (unsigned char)s[k] >= 0x7f)
				return false; /* a URI has no spaces or controls (RFC 3986) */
		uri_take(r, s + start, end - start);
		if (i == n)
			return true;
		i++; /* the comma */
	}
}

enum tlsrpt_record_error tlsrpt_record_parse(const char *text, size_t len, struct tlsrpt_record *r,
					     const char **error_r)
{
	memset(r, 0, sizeof(*r));
	static const char version[] = "v=TLSRPTv1";
	const size_t vlen = sizeof(version) - 1;
	/* §3: the version is case-sensitive (%s) and first */
	if (len < vlen || memcmp(text, version, vlen) != 0 || (len > vlen && text[vlen] != ';' && !is_wsp(text[vlen]))) {
		*error_r = "the record does not begin with v=TLSRPTv1";
		return TLSRPT_RECORD_NOT_TLSRPT;
	}
	if (len > TLSRPT_RECORD_MAX) {
		*error_r = "the record is too long";
		return TLSRPT_RECORD_SYNTAX;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "the record holds a NUL";
		return TLSRPT_RECORD_SYNTAX;
	}
	size_t i = vlen;
	bool rua_seen = false;
	while (i < len) {
		/* field-delim = *WSP ";" *WSP */
		while (i < len && is_wsp(text[i]))
			i++;
		if (i == len)
			break;
		if (text[i] != ';') {
			*error_r = "fields must be separated by ';'";
			return TLSRPT_RECORD_SYNTAX;
		}
		i++;
		while (i < len && is_wsp(text[i]))
			i++;
		if (i == len)
			break; /* [field-delim] at the end */
		size_t start = i;
		while (i < len && text[i] != ';')
			i++;
		size_t end = i;
		while (end > start && is_wsp(text[end - 1]))
			end--;
		const char *f = text + start;
		size_t fn = end - start;
		const char *eq = memchr(f, '=', fn);
		if (eq == NULL) {
			*error_r = "a field without '='";
			return TLSRPT_RECORD_SYNTAX;
		}
		size_t name_len = (size_t)(eq - f);
		if (name_len == 3 && memcmp(f, "rua", 3) == 0) {
			if (rua_seen) {
				*error_r = "more than one rua field";
				return TLSRPT_RECORD_SYNTAX;
			}
			rua_seen = true;
			if (!rua_parse(r, eq + 1, fn - name_len - 1)) {
				*error_r = "a rua URI is empty or holds white space";
				return TLSRPT_RECORD_SYNTAX;
			}
		} else if (!ext_name_ok(f, name_len) || !ext_value_ok(eq + 1, fn - name_len - 1)) {
			*error_r = "a malformed extension field";
			return TLSRPT_RECORD_SYNTAX;
		}
		/* extensions are ignored (§3) */
	}
	if (!rua_seen) {
		*error_r = "the record has no rua field (§3: required)";
		return TLSRPT_RECORD_NO_RUA;
	}
	if (r->rua_count == 0) {
		*error_r = "no rua URI is a usable mailto: or https: one";
		return TLSRPT_RECORD_NO_RUA;
	}
	*error_r = "";
	return TLSRPT_RECORD_OK;
}

enum tlsrpt_record_error tlsrpt_record_select(const char *const *texts, const size_t *lens, size_t n,
					      struct tlsrpt_record *r, const char **error_r)
{
	static const char version[] = "v=TLSRPTv1";
	size_t found = 0, which = 0;
	for (size_t i = 0; i < n; i++)
		if (lens[i] >= sizeof(version) - 1 && memcmp(texts[i], version, sizeof(version) - 1) == 0 &&
		    (lens[i] == sizeof(version) - 1 || texts[i][sizeof(version) - 1] == ';' ||
		     is_wsp(texts[i][sizeof(version) - 1]))) {
			found++;
			which = i;
		}
	memset(r, 0, sizeof(*r));
	if (found == 0) {
		*error_r = "no v=TLSRPTv1 record";
		return TLSRPT_RECORD_NOT_TLSRPT;
	}
	if (found > 1) {
		/* §3: "If the number of resulting records is not one, senders MUST assume the recipient
		 * domain does not implement TLSRPT" */
		*error_r = "more than one v=TLSRPTv1 record";
		return TLSRPT_RECORD_NOT_TLSRPT;
	}
	return tlsrpt_record_parse(texts[which], lens[which], r, error_r);
}

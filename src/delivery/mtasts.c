/* mtasts.c — RFC 8461 policy texts (§3.2), _mta-sts TXT records (§3.1) and MX patterns (§4.1). */
#include "delivery/mtasts.h"

#include <string.h>
#include <strings.h>

#include "util/utf8.h"

const char *mtasts_mode_str(enum mtasts_mode m)
{
	switch (m) {
	case MTASTS_MODE_NONE: return "none";
	case MTASTS_MODE_TESTING: return "testing";
	case MTASTS_MODE_ENFORCE: return "enforce";
	}
	return "?";
}

const char *mtasts_error_str(enum mtasts_error e)
{
	switch (e) {
	case MTASTS_OK: return "ok";
	case MTASTS_TOO_LONG: return "too_long";
	case MTASTS_SYNTAX: return "syntax";
	case MTASTS_VERSION: return "version";
	case MTASTS_MODE: return "mode";
	case MTASTS_MAX_AGE: return "max_age";
	case MTASTS_MX: return "mx";
	case MTASTS_NO_MX: return "no_mx";
	case MTASTS_TOO_MANY_MX: return "too_many_mx";
	case MTASTS_ID: return "id";
	case MTASTS_NO_RECORD: return "no_record";
	case MTASTS_MULTIPLE: return "multiple";
	}
	return "?";
}

static bool mtasts_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool mtasts_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* sts-policy-ext-name and sts-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool mtasts_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > 32 || !mtasts_is_alnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!mtasts_is_alnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

/* Whether all len octets of s (not NUL-terminated) are digits, or letters and digits. */
static bool mtasts_all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool mtasts_all_alnum(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!mtasts_is_alnum((unsigned char)s[i]))
			return false;
	return true;
}

static bool mtasts_token_is(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(s, word, len) == 0;
}

/* ---- the policy text (§3.2) ---- */

/* A pattern ["*."] Domain into out (MTASTS_MX_SIZE), lower-cased, one trailing dot dropped. */
static bool mtasts_pattern_read(const char *v, size_t len, char *out, const char **error_r)
{
	if (len == 0) {
		*error_r = "an mx line has an empty value";
		return false;
	}
	if (len > 1 && v[len - 1] == '.')
		len--; /* lenient: "mail.example.com." names the same host */
	if (len >= MTASTS_MX_SIZE) {
		*error_r = "an mx value is longer than a host name can be";
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	out[len] = '\0';
	const char *name = out;
	if (len >= 2 && out[0] == '*' && out[1] == '.')
		name = out + 2; /* §4.1: a wildcard only as the whole leftmost label */
	if (memchr(name, '\0', len - (size_t)(name - out)) != NULL || !dns_host_valid(name)) {
		*error_r = out[0] == '[' || strchr(out, ':') != NULL
				   ? "an mx value is an IP address literal, not a host name pattern"
				   : "an mx value is not a host name or *. followed by a host name (RFC 8461 §3.2, RFC 5321 §4.1.2)";
		return false;
	}
	const char *last = strrchr(name, '.');
	last = last != NULL ? last + 1 : name;
	if (mtasts_all_digits(last, strlen(last))) {
		*error_r = "an mx value is an IP address (its last label is all digits), not a host name pattern";
		return false;
	}
	return true;
}

/* What one line of a policy said, before the whole text is judged. */
struct mtasts_reading {
	bool have_version, have_mode, have_max_age;
	enum mtasts_error mx_error; /* the first bad mx line, judged when the mode is known */
	const char *mx_error_text;
	unsigned mx_error_line;
};

static enum mtasts_error mtasts_line_read(const char *key, size_t klen, const char *v, size_t vlen,
					  struct mtasts_policy *p, struct mtasts_reading *rd, unsigned line,
					  const char **error_r)
{
	if (mtasts_token_is(key, klen, "mx")) {
		char pat[MTASTS_MX_SIZE];
		const char *why;
		if (!mtasts_pattern_read(v, vlen, pat, &why)) {
			if (rd->mx_error == MTASTS_OK) {
				rd->mx_error = MTASTS_MX;
				rd->mx_error_text = why;
				rd->mx_error_line = line;
			}
			return MTASTS_OK;
		}
		for (size_t i = 0; i < p->mx_count; i++)
			if (strcmp(p->mx[i], pat) == 0)
				return MTASTS_OK;
		if (p->mx_count == MTASTS_MX_MAX) {
			if (rd->mx_error == MTASTS_OK) {
				rd->mx_error = MTASTS_TOO_MANY_MX;
				rd->mx_error_text = "the policy has more distinct mx patterns than are kept (64)";
				rd->mx_error_line = line;
			}
			return MTASTS_OK;
		}
		memcpy(p->mx[p->mx_count++], pat, strlen(pat) + 1);
		return MTASTS_OK;
	}

	bool *seen = mtasts_token_is(key, klen, "version")   ? &rd->have_version
		     : mtasts_token_is(key, klen, "mode")    ? &rd->have_mode
		     : mtasts_token_is(key, klen, "max_age") ? &rd->have_max_age
							     : NULL;
	if (seen == NULL) {
		/* §3.2 sts-policy-extension: ignored, but it must still be text */
		if (!utf8_valid((const unsigned char *)v, vlen)) {
			*error_r = "a line's value is not well-formed UTF-8";
			return MTASTS_SYNTAX;
		}
		p->unknown++;
		return MTASTS_OK;
	}
	if (*seen) {
		p->duplicates++; /* §3.2: only the first counts */
		return MTASTS_OK;
	}
	*seen = true;
	if (seen == &rd->have_version) {
		if (!mtasts_token_is(v, vlen, "STSv1")) {
			*error_r = "the version is not STSv1";
			return MTASTS_VERSION;
		}
	} else if (seen == &rd->have_mode) {
		if (mtasts_token_is(v, vlen, "enforce"))
			p->mode = MTASTS_MODE_ENFORCE;
		else if (mtasts_token_is(v, vlen, "testing"))
			p->mode = MTASTS_MODE_TESTING;
		else if (mtasts_token_is(v, vlen, "none"))
			p->mode = MTASTS_MODE_NONE;
		else {
			*error_r = "the mode is not enforce, testing or none (in lower case)";
			return MTASTS_MODE;
		}
	} else {
		/* sts-policy-max-age-value = 1*10(DIGIT) */
		uint64_t n = 0;
		if (vlen == 0 || vlen > 10 || !mtasts_all_digits(v, vlen)) {
			*error_r = "max_age is not a number of 1 to 10 digits";
			return MTASTS_MAX_AGE;
		}
		for (size_t i = 0; i < vlen; i++)
			n = n * 10 + (uint64_t)(v[i] - '0');
		if (n > MTASTS_MAX_AGE_MAX) {
			n = MTASTS_MAX_AGE_MAX;
			p->max_age_capped = true;
		}
		p->max_age = (uint32_t)n;
	}
	return MTASTS_OK;
}

/* One line without its end: blank, or key ":" *WSP value *WSP. */
static enum mtasts_error mtasts_line_parse(const char *s, size_t len, struct mtasts_policy *p,
					   struct mtasts_reading *rd, unsigned line, const char **error_r)
{
	size_t end = len;
	while (end > 0 && mtasts_is_wsp((unsigned char)s[end - 1]))
		end--;
	if (end == 0)
		return MTASTS_OK; /* lenient: a blank line */
	for (size_t i = 0; i < end; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*error_r = c == '\r' ? "a line holds a CR that is not part of a CRLF line end"
					     : "a line holds a control character";
			return MTASTS_SYNTAX;
		}
	}
	const char *colon = memchr(s, ':', end);
	if (colon == NULL) {
		*error_r = "a line is not key: value";
		return MTASTS_SYNTAX;
	}
	size_t klen = (size_t)(colon - s);
	if (!mtasts_name_valid(s, klen)) {
		*error_r = "a key is not 1 to 32 letters, digits, '_', '-' or '.' starting with a letter or digit, "
			   "directly followed by ':'";
		return MTASTS_SYNTAX;
	}
	size_t v = klen + 1;
	while (v < end && mtasts_is_wsp((unsigned char)s[v]))
		v++; /* field-delim = ":" *WSP */
	return mtasts_line_read(s, klen, s + v, end - v, p, rd, line, error_r);
}

enum mtasts_error mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p, const char **error_r)
{
	struct mtasts_reading rd = { 0 };
	enum mtasts_error e = MTASTS_OK;
	unsigned line = 0;

	memset(p, 0, sizeof(*p));
	if (len > MTASTS_POLICY_MAX) {
		*error_r = "the policy is longer than 64 KiB";
		return MTASTS_TOO_LONG;
	}
	for (size_t pos = 0; pos < len && e == MTASTS_OK;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		size_t next = nl != NULL ? end + 1 : len;
		if (nl != NULL && end > pos && text[end - 1] == '\r')
			end--; /* sts-policy-term = LF / CRLF */
		line++;
		e = mtasts_line_parse(text + pos, end - pos, p, &rd, line, error_r);
		pos = next;
	}
	if (e == MTASTS_OK && !rd.have_version) {
		line = 0;
		*error_r = "the policy has no version line (keys are case-sensitive)";
		e = MTASTS_VERSION;
	}
	if (e == MTASTS_OK && !rd.have_mode) {
		line = 0;
		*error_r = "the policy has no mode line";
		e = MTASTS_MODE;
	}
	if (e == MTASTS_OK && !rd.have_max_age) {
		line = 0;
		*error_r = "the policy has no max_age line";
		e = MTASTS_MAX_AGE;
	}
	/* mx lines matter only when the policy is used (see the header on mode none) */
	if (e == MTASTS_OK && p->mode != MTASTS_MODE_NONE) {
		if (rd.mx_error != MTASTS_OK) {
			line = rd.mx_error_line;
			*error_r = rd.mx_error_text;
			e = rd.mx_error;
		} else if (p->mx_count == 0) {
			line = 0;
			*error_r = "the policy has no mx line, which modes enforce and testing need";
			e = MTASTS_NO_MX;
		}
	}
	if (e != MTASTS_OK) {
		memset(p, 0, sizeof(*p));
		p->line = line;
	}
	return e;
}

/* ---- the TXT record (§3.1) ---- */

bool mtasts_txt_is_sts(const char *txt, size_t len)
{
	static const char v[] = "v=STSv1";
	if (len < sizeof(v) - 1 || memcmp(txt, v, sizeof(v) - 1) != 0)
		return false;
	return len == sizeof(v) - 1 || txt[sizeof(v) - 1] == ';' || mtasts_is_wsp((unsigned char)txt[sizeof(v) - 1]);
}

/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): visible ASCII but "=" and ";" */
static bool mtasts_ext_value_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || c == '=' || c == ';')
			return false;
	}
	return true;
}

enum mtasts_error mtasts_txt_parse(const char *txt, size_t len, struct mtasts_txt *r, const char **error_r)
{
	bool have_id = false;
	size_t pos = 7; /* after "v=STSv1" */

	memset(r, 0, sizeof(*r));
	if (!mtasts_txt_is_sts(txt, len)) {
		*error_r = "the record does not begin with v=STSv1";
		return MTASTS_VERSION;
	}
	for (;;) {
		/* sts-field-delim = *WSP ";" *WSP, or trailing WSP at the end */
		while (pos < len && mtasts_is_wsp((unsigned char)txt[pos]))
			pos++;
		if (pos == len)
			break;
		if (txt[pos] != ';') {
			*error_r = "fields are not separated by ';'";
			goto syntax;
		}
		pos++;
		while (pos < len && mtasts_is_wsp((unsigned char)txt[pos]))
			pos++;
		if (pos == len)
			break; /* [sts-field-delim] at the end */
		size_t end = pos;
		while (end < len && txt[end] != ';' && !mtasts_is_wsp((unsigned char)txt[end]))
			end++;
		const char *eq = memchr(txt + pos, '=', end - pos);
		if (eq == NULL) {
			*error_r = "a field is not name=value";
			goto syntax;
		}
		size_t nlen = (size_t)(eq - (txt + pos));
		const char *val = eq + 1;
		size_t vlen = (size_t)(txt + end - val);
		if (!mtasts_name_valid(txt + pos, nlen) || !mtasts_ext_value_valid(val, vlen)) {
			*error_r = "a field is not name=value with a name of letters, digits, '_', '-', '.' and a value "
				   "of visible characters but '=' and ';'";
			goto syntax;
		}
		if (mtasts_token_is(txt + pos, nlen, "id")) {
			if (!have_id) {
				if (vlen > MTASTS_ID_MAX || !mtasts_all_alnum(val, vlen)) {
					memset(r, 0, sizeof(*r));
					*error_r = "the id is not 1 to 32 letters and digits";
					return MTASTS_ID;
				}
				memcpy(r->id, val, vlen);
				r->id[vlen] = '\0';
				have_id = true;
			}
		} else {
			r->unknown++;
		}
		pos = end;
	}
	if (!have_id) {
		memset(r, 0, sizeof(*r));
		*error_r = "the record has no id field";
		return MTASTS_ID;
	}
	return MTASTS_OK;
syntax:
	memset(r, 0, sizeof(*r));
	return MTASTS_SYNTAX;
}

enum mtasts_error mtasts_txt_select(const struct dns_txt *txts, size_t n, struct mtasts_txt *r, const char **error_r)
{
	const struct dns_txt *found = NULL;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		if (!mtasts_txt_is_sts(txts[i].text, txts[i].len))
			continue;
		if (found != NULL) {
			*error_r = "more than one TXT record begins with v=STSv1 (RFC 8461 §3.1: no policy)";
			return MTASTS_MULTIPLE;
		}
		found = &txts[i];
	}
	if (found == NULL) {
		*error_r = "no TXT record begins with v=STSv1";
		return MTASTS_NO_RECORD;
	}
	return mtasts_txt_parse(found->text, found->len, r, error_r);
}

/* ---- matching (§4.1) ---- */

bool mtasts_mx_match(const char *pattern, const char *host)
{
	char h[DNS_HOST_SIZE];
	size_t len = strlen(host);

	if (len > 1 && host[len - 1] == '.')
		len--; /* a trailing dot names the same host */
	if (len == 0 || len >= sizeof(h))
		return false;
	memcpy(h, host, len);
	h[len] = '\0';
	if (!dns_host_valid(h))
		return false;
	if (pattern[0] == '*' && pattern[1] == '.') {
		/* "*.example.com": one label, then exactly the rest */
		const char *dot = strchr(h, '.');
		return dot != NULL && dot != h && strcasecmp(dot + 1, pattern + 2) == 0;
	}
	return strcasecmp(h, pattern) == 0;
}

bool mtasts_policy_mx_match(const struct mtasts_policy *p, const char *host)
{
	for (size_t i = 0; i < p->mx_count && i < MTASTS_MX_MAX; i++)
		if (mtasts_mx_match(p->mx[i], host))
			return true;
	return false;
}

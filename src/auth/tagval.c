/* tagval.c — RFC 6376 §3.2 tag-list parsing. */
#include "auth/tagval.h"

#include <string.h>
#include <strings.h>

const char *tagval_error_str(enum tagval_error e)
{
	switch (e) {
	case TAGVAL_OK: return "ok";
	case TAGVAL_SYNTAX: return "syntax";
	case TAGVAL_DUPLICATE: return "duplicate";
	case TAGVAL_TOO_MANY: return "too_many";
	}
	return "?";
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnumpunc(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* FWS as RFC 6376 §2.8 allows it: WSP, and CRLF only when WSP follows (a fold). In lenient mode a
 * bare CR or LF counts too, as DNS TXT records are not header fields. */
static size_t skip_fws(const char *s, size_t len, size_t i, bool lenient)
{
	for (;;) {
		if (i < len && (s[i] == ' ' || s[i] == '\t')) {
			i++;
		} else if (i + 2 < len && s[i] == '\r' && s[i + 1] == '\n' && (s[i + 2] == ' ' || s[i + 2] == '\t')) {
			i += 3;
		} else if (i + 1 < len && s[i] == '\n' && (s[i + 1] == ' ' || s[i + 1] == '\t')) {
			i += 2; /* a fold written with a bare LF (messages read from files) */
		} else if (lenient && i < len && (s[i] == '\r' || s[i] == '\n')) {
			i++;
		} else {
			return i;
		}
	}
}

/* RFC 6376 §3.2 VALCHAR = %x21-3A / %x3C-7E */
static bool is_valchar(unsigned char c, bool lenient)
{
	return lenient ? (c != ';' && c != ' ' && c != '\t' && c != '\r' && c != '\n') : (c >= 0x21 && c <= 0x7e && c != ';');
}

/* One tag-spec at s[i..end); fills *t. */
static bool parse_spec(const char *s, size_t i, size_t end, bool lenient, struct tagval *t, const char **error_r)
{
	i = skip_fws(s, end, i, lenient);
	size_t name = i;
	if (i >= end || !is_alpha(s[i])) {
		*error_r = "a tag name must start with a letter";
		return false;
	}
	while (i < end && is_alnumpunc(s[i]))
		i++;
	t->name = s + name;
	t->name_len = i - name;
	i = skip_fws(s, end, i, lenient);
	if (i >= end || s[i] != '=') {
		*error_r = "a tag name must be followed by '='";
		return false;
	}
	i = skip_fws(s, end, i + 1, lenient);
	size_t value = i, value_end = i;
	/* tag-value = [ tval *( 1*(WSP / FWS) tval ) ] */
	while (i < end) {
		if (!is_valchar((unsigned char)s[i], lenient)) {
			size_t after = skip_fws(s, end, i, lenient);
			if (after == i) {
				*error_r = "a tag value holds a character that is not allowed";
				return false;
			}
			i = after;
			continue;
		}
		i++;
		value_end = i;
	}
	t->value = s + value;
	t->value_len = value_end - value;
	return true;
}

enum tagval_error tagval_parse(const char *s, size_t len, unsigned flags, struct tagval *tags, size_t max,
			       size_t *count_r, const char **error_r)
{
	bool lenient = (flags & TAGVAL_LENIENT) != 0;
	size_t n = 0, i = 0;
	*count_r = 0;

	while (i <= len) {
		const char *semi = i < len ? memchr(s + i, ';', len - i) : NULL;
		size_t end = semi != NULL ? (size_t)(semi - s) : len;
		/* an empty spec is only allowed after the optional ";" at the end (§3.2: [";"]) */
		if (skip_fws(s, end, i, lenient) == end) {
			if (semi != NULL && !lenient) {
				*error_r = "an empty tag-spec before a semicolon";
				return TAGVAL_SYNTAX;
			}
			if (semi == NULL)
				break;
			i = end + 1;
			continue;
		}
		struct tagval t;
		const char *why;
		if (!parse_spec(s, i, end, lenient, &t, &why)) {
			if (!lenient) {
				*error_r = why;
				return TAGVAL_SYNTAX;
			}
		} else {
			bool dup = false;
			for (size_t k = 0; k < n; k++)
				if (tags[k].name_len == t.name_len && memcmp(tags[k].name, t.name, t.name_len) == 0)
					dup = true;
			if (dup && !lenient) {
				*error_r = "a tag appears twice";
				return TAGVAL_DUPLICATE;
			}
			if (!dup) {
				if (n == max) {
					*error_r = "too many tags";
					return TAGVAL_TOO_MANY;
				}
				tags[n++] = t;
				*count_r = n;
			}
		}
		if (semi == NULL)
			break;
		i = end + 1;
	}
	*count_r = n;
	return TAGVAL_OK;
}

const struct tagval *tagval_find(const struct tagval *tags, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (tags[i].name_len == len && memcmp(tags[i].name, name, len) == 0)
			return &tags[i];
	return NULL;
}

bool tagval_value_is(const struct tagval *t, const char *text)
{
	size_t len = strlen(text);
	return t->value_len == len && strncasecmp(t->value, text, len) == 0;
}

/* authres.c — RFC 8601 Authentication-Results. */
#include "auth/authres.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/header.h"

/* A growing string with an upper bound: the field is a few hundred octets; nothing from a peer can
 * make it larger than the values' own limits allow. */
struct ar_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void ar_put(struct ar_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void ar_puts(struct ar_buf *b, const char *s)
{
	ar_put(b, s, strlen(s));
}

/* RFC 2045 §5.1 token characters */
static bool is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 8601 §2.3 pvalue: a value, a domain, or [local-part] "@" domain. We write addresses and
 * domains bare when they are plain, anything else as a quoted-string. */
static void ar_value(struct ar_buf *b, const char *v, bool address_ok)
{
	bool plain = v[0] != '\0';
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0' && plain; p++)
		plain = is_token_char(*p) || (address_ok && *p == '@');
	if (address_ok && plain) {
		const char *at = strchr(v, '@');
		plain = at == NULL || strchr(at + 1, '@') == NULL;
	}
	if (plain) {
		ar_puts(b, v);
		return;
	}
	ar_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		/* ASCII only: a header field without SMTPUTF8 (RFC 6532) cannot carry more; "§" goes */
		if (*p < 0x20 || *p >= 0x7f)
			continue;
		if (*p == '"' || *p == '\\')
			ar_puts(b, "\\");
		ar_put(b, (const char *)p, 1);
	}
	ar_puts(b, "\"");
}

char *authres_format(const char *authserv_id, const struct authres_method *m, size_t n)
{
	struct ar_buf b = {0};
	ar_puts(&b, "Authentication-Results: ");
	ar_value(&b, authserv_id, false);
	if (n == 0)
		ar_puts(&b, "; none"); /* §2.2: no-result */
	for (size_t i = 0; i < n; i++) {
		ar_puts(&b, ";\r\n\t");
		ar_puts(&b, m[i].method);
		ar_puts(&b, "=");
		ar_puts(&b, m[i].result);
		if (m[i].reason != NULL && m[i].reason[0] != '\0') {
			ar_puts(&b, " reason=");
			ar_value(&b, m[i].reason, false);
		}
		for (size_t k = 0; k < AUTHRES_PROPS_MAX; k++) {
			const struct authres_prop *pr = &m[i].props[k];
			if (pr->name == NULL || pr->value == NULL || pr->value[0] == '\0')
				continue;
			ar_puts(&b, " ");
			ar_puts(&b, pr->name);
			ar_puts(&b, "=");
			ar_value(&b, pr->value, true);
		}
	}
	ar_puts(&b, "\r\n");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* The authserv-id at the start of an A-R value (§2.2: [CFWS] authserv-id, a value: token or
 * quoted-string), compared with ours. Comments before it are skipped. */
static bool ar_is_ours(const char *v, size_t len, const char *id)
{
	size_t i = 0, idlen = strlen(id);
	for (;;) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
			i++;
		if (i < len && v[i] == '(') { /* RFC 5322 §3.2.2 comment, nested */
			int depth = 0;
			for (; i < len; i++) {
				if (v[i] == '\\' && i + 1 < len)
					i++;
				else if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
			continue;
		}
		break;
	}
	bool quoted = i < len && v[i] == '"';
	if (quoted)
		i++;
	if (len - i < idlen || strncasecmp(v + i, id, idlen) != 0)
		return false;
	i += idlen;
	if (quoted)
		return i < len && v[i] == '"';
	/* the token ends here: at ';', space, '(' or the end */
	return i == len || v[i] == ';' || v[i] == ' ' || v[i] == '\t' || v[i] == '(' || v[i] == '\r' || v[i] == '\n';
}

size_t authres_strip(char *msg, size_t len, const char *authserv_id)
{
	size_t pos = 0;
	struct header_field f;
	while (header_next(msg, len, &pos, &f)) {
		if (!header_is(&f, "Authentication-Results") || !ar_is_ours(f.value, f.value_len, authserv_id))
			continue;
		size_t start = (size_t)(f.raw - msg);
		memmove(msg + start, msg + pos, len - pos);
		len -= f.raw_len;
		pos = start;
	}
	return len;
}

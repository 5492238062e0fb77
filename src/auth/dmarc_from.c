/* dmarc_from.c — RFC 5322 §3.6.2 From fields to Author Domains, and the domain normal form
 * (lower case, RFC 3492 A-labels). */
#include "auth/dmarc_from.h"

#include <stdint.h>
#include <string.h>

#include "util/header.h"

const char *dmarc_from_error_str(enum dmarc_from_error e)
{
	switch (e) {
	case DMARC_FROM_OK: return "ok";
	case DMARC_FROM_NONE: return "no_from";
	case DMARC_FROM_SYNTAX: return "syntax";
	case DMARC_FROM_NO_DOMAIN: return "no_domain";
	case DMARC_FROM_BAD_DOMAIN: return "bad_domain";
	}
	return "?";
}

/* ---- domains: lower case and A-labels ---- */

/* One UTF-8 sequence at s (len > 0 octets): its length, 0 when malformed (RFC 3629 §4: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp, min;
	if (c < 0x80) {
		*cp_r = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

/* RFC 3492 §5 parameters */
enum { PC_BASE = 36, PC_TMIN = 1, PC_TMAX = 26, PC_SKEW = 38, PC_DAMP = 700, PC_BIAS = 72, PC_N = 128 };

/* RFC 3492 §6.1 */
static uint64_t punycode_adapt(uint64_t delta, uint64_t points, bool first)
{
	delta = first ? delta / PC_DAMP : delta / 2;
	delta += delta / points;
	uint64_t k = 0;
	while (delta > ((PC_BASE - PC_TMIN) * PC_TMAX) / 2) {
		delta /= PC_BASE - PC_TMIN;
		k += PC_BASE;
	}
	return k + (PC_BASE - PC_TMIN + 1) * delta / (delta + PC_SKEW);
}

static char punycode_digit(uint64_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* RFC 3492 §6.3 encoding of n code points (n <= DNS_LABEL_MAX) into out; false when the result
 * does not fit in out_size - 1 octets. */
static bool punycode_encode(const uint32_t *cp, size_t n, char *out, size_t out_size, size_t *len_r)
{
	size_t o = 0, b = 0;
	for (size_t i = 0; i < n; i++) {
		if (cp[i] < 0x80) {
			if (o + 1 >= out_size)
				return false;
			out[o++] = (char)cp[i];
			b++;
		}
	}
	if (b > 0) {
		if (o + 1 >= out_size)
			return false;
		out[o++] = '-';
	}
	uint64_t next = PC_N, delta = 0, bias = PC_BIAS;
	for (size_t h = b; h < n;) {
		uint64_t m = UINT64_MAX;
		for (size_t i = 0; i < n; i++)
			if (cp[i] >= next && cp[i] < m)
				m = cp[i];
		/* cannot overflow: at most 63 code points below 0x110000 */
		delta += (m - next) * (h + 1);
		next = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < next)
				delta++;
			if (cp[i] != next)
				continue;
			uint64_t q = delta;
			for (uint64_t k = PC_BASE;; k += PC_BASE) {
				uint64_t t = k <= bias ? PC_TMIN : k >= bias + PC_TMAX ? PC_TMAX : k - bias;
				if (q < t)
					break;
				if (o + 1 >= out_size)
					return false;
				out[o++] = punycode_digit(t + (q - t) % (PC_BASE - t));
				q = (q - t) / (PC_BASE - t);
			}
			if (o + 1 >= out_size)
				return false;
			out[o++] = punycode_digit(q);
			bias = punycode_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		next++;
	}
	out[o] = '\0';
	*len_r = o;
	return true;
}

/* One label (len >= 1 octets) in normal form at out (room for DNS_LABEL_MAX + 1); its length or 0. */
static size_t label_normalize(const unsigned char *s, size_t len, char *out)
{
	bool ascii = true;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			return 0; /* the checks after this one read C strings */
		if (s[i] >= 0x80)
			ascii = false;
	}
	if (ascii) {
		if (len > DNS_LABEL_MAX)
			return 0;
		for (size_t i = 0; i < len; i++)
			out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
		return len;
	}
	/* RFC 5890 §2.3.2.1: a U-label becomes "xn--" and its Punycode (RFC 3492) */
	uint32_t cp[DNS_LABEL_MAX];
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t used = utf8_decode(s + i, len - i, &cp[n]);
		if (used == 0 || n + 1 >= DNS_LABEL_MAX)
			return 0;
		if (cp[n] >= 'A' && cp[n] <= 'Z')
			cp[n] += 32;
		n++;
		i += used;
	}
	memcpy(out, "xn--", 4);
	size_t plen;
	if (!punycode_encode(cp, n, out + 4, DNS_LABEL_MAX + 1 - 4, &plen))
		return 0;
	return 4 + plen;
}

enum dmarc_from_error dmarc_from_domain(const char *s, size_t len, char *out, const char **error_r)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;
	if (len > 0 && s[len - 1] == '.')
		len--; /* the root, written out */
	if (len == 0) {
		*error_r = "the domain is empty";
		return DMARC_FROM_BAD_DOMAIN;
	}
	for (size_t i = 0; i <= len;) {
		const unsigned char *dot = memchr(u + i, '.', len - i);
		size_t end = dot != NULL ? (size_t)(dot - u) : len;
		char label[DNS_LABEL_MAX + 1];
		size_t l = end > i ? label_normalize(u + i, end - i, label) : 0;
		if (l == 0) {
			*error_r = end == i ? "the domain has an empty label" : "a label is too long or not valid UTF-8";
			return DMARC_FROM_BAD_DOMAIN;
		}
		if (o + (o > 0) + l >= DNS_HOST_SIZE) {
			*error_r = "the domain is longer than 253 octets";
			return DMARC_FROM_BAD_DOMAIN;
		}
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, label, l);
		o += l;
		if (dot == NULL)
			break;
		i = end + 1;
	}
	out[o] = '\0';
	if (!dns_host_valid(out)) {
		*error_r = "the domain is not a host name (letters, digits and hyphens)";
		return DMARC_FROM_BAD_DOMAIN;
	}
	return DMARC_FROM_OK;
}

/* ---- RFC 5322 §3.4 address lists ---- */

enum tok_type {
	TOK_END,
	TOK_ATOM,    /* 1*atext (RFC 6532 §3.2: with UTF-8) */
	TOK_QUOTED,  /* quoted-string */
	TOK_LITERAL, /* domain-literal */
	TOK_SPECIAL, /* one of < > : ; @ , . */
};

struct tok {
	enum tok_type type;
	size_t start, end; /* the octets of an atom */
	char c;            /* TOK_SPECIAL */
};

struct fparse {
	const char *s;
	size_t len, pos;
	const char *error;
	struct dmarc_from *r;
};

static bool fail(struct fparse *fp, const char *why)
{
	if (fp->error == NULL)
		fp->error = why;
	return false;
}

/* RFC 5322 §3.2.3 atext, with octets >= 0x80 (RFC 6532 §3.2 UTF8-non-ascii; checked as UTF-8
 * only where it matters, in domains) */
static bool is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 5322 §3.2.2 CFWS: WSP, line ends of folds (the field's extent is already known), comments
 * nested to any depth, quoted pairs inside them. */
static bool skip_cfws(struct fparse *fp)
{
	size_t depth = 0;
	while (fp->pos < fp->len) {
		char c = fp->s[fp->pos];
		if (c == '(') {
			depth++;
		} else if (depth > 0 && c == ')') {
			depth--;
		} else if (depth > 0 && c == '\\') {
			if (++fp->pos >= fp->len)
				break;
		} else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			return true;
		}
		fp->pos++;
	}
	return depth == 0 || fail(fp, "a comment is not closed");
}

/* A quoted-string or domain-literal from its opening octet to the closing one. */
static bool skip_delimited(struct fparse *fp, char close, const char *unclosed)
{
	for (fp->pos++; fp->pos < fp->len; fp->pos++) {
		char c = fp->s[fp->pos];
		if (c == '\\') {
			fp->pos++;
		} else if (c == close) {
			fp->pos++;
			return true;
		} else if (close == ']' && c == '[') {
			return fail(fp, "a domain literal holds '['");
		}
	}
	return fail(fp, unclosed);
}

static bool next_token(struct fparse *fp, struct tok *t)
{
	memset(t, 0, sizeof(*t));
	if (!skip_cfws(fp))
		return false;
	if (fp->pos >= fp->len) {
		t->type = TOK_END;
		return true;
	}
	unsigned char c = (unsigned char)fp->s[fp->pos];
	t->start = fp->pos;
	if (is_atext(c)) {
		while (fp->pos < fp->len && is_atext((unsigned char)fp->s[fp->pos]))
			fp->pos++;
		t->type = TOK_ATOM;
	} else if (c == '"') {
		t->type = TOK_QUOTED;
		if (!skip_delimited(fp, '"', "a quoted string is not closed"))
			return false;
	} else if (c == '[') {
		t->type = TOK_LITERAL;
		if (!skip_delimited(fp, ']', "a domain literal is not closed"))
			return false;
	} else if (strchr("<>:;@,.", c) != NULL && c != '\0') {
		t->type = TOK_SPECIAL;
		t->c = (char)c;
		fp->pos++;
	} else {
		return fail(fp, c == ')' ? "a ')' without its '('" : "a character that cannot appear in an address");
	}
	t->end = fp->pos;
	return true;
}

static bool peek_token(struct fparse *fp, struct tok *t)
{
	size_t pos = fp->pos;
	bool ok = next_token(fp, t);
	fp->pos = pos;
	return ok;
}

static bool is_special(const struct tok *t, char c)
{
	return t->type == TOK_SPECIAL && t->c == c;
}

/* Records one mailbox's domain (raw octets, dots between atoms, no CFWS). */
static void add_mailbox(struct fparse *fp, const char *domain, size_t len, bool usable)
{
	struct dmarc_from *r = fp->r;
	char norm[DNS_HOST_SIZE];
	const char *err;
	r->mailboxes++;
	if (!usable || dmarc_from_domain(domain, len, norm, &err) != DMARC_FROM_OK) {
		r->unusable++;
		return;
	}
	for (size_t i = 0; i < r->count; i++)
		if (strcmp(r->domains[i], norm) == 0)
			return;
	if (r->count == DMARC_FROM_DOMAINS_MAX) {
		r->truncated = true;
		return;
	}
	memcpy(r->domains[r->count++], norm, strlen(norm) + 1);
}

/* RFC 5322 §3.4.1 domain = dot-atom / domain-literal / obs-domain, after the "@". */
static bool parse_domain(struct fparse *fp)
{
	char buf[1024];
	size_t n = 0;
	bool fits = true;
	struct tok t;
	if (!next_token(fp, &t))
		return false;
	if (t.type == TOK_LITERAL) {
		add_mailbox(fp, "", 0, false); /* RFC 5321 §4.1.3 address literal: no DMARC policy */
		return true;
	}
	for (;;) {
		if (t.type != TOK_ATOM)
			return fail(fp, "a domain label is missing");
		size_t l = t.end - t.start;
		if (n + l + 1 <= sizeof(buf)) {
			memcpy(buf + n, fp->s + t.start, l);
			n += l;
		} else {
			fits = false;
		}
		struct tok dot;
		if (!peek_token(fp, &dot))
			return false;
		if (!is_special(&dot, '.'))
			break;
		next_token(fp, &dot);
		if (n < sizeof(buf))
			buf[n++] = '.';
		if (!next_token(fp, &t))
			return false;
	}
	add_mailbox(fp, buf, n, fits);
	return true;
}

/* RFC 5322 §3.4.1 addr-spec = local-part "@" domain; obs-local-part's CFWS between words too. */
static bool parse_addr_spec(struct fparse *fp)
{
	struct tok t;
	bool word = false;
	for (;;) {
		if (!next_token(fp, &t))
			return false;
		if (t.type == TOK_ATOM || t.type == TOK_QUOTED)
			word = true;
		else if (!is_special(&t, '.'))
			break;
	}
	if (!word)
		return fail(fp, "an address has no local part");
	if (!is_special(&t, '@'))
		return fail(fp, "an address has no '@' and domain");
	return parse_domain(fp);
}

/* After "<": [obs-route] addr-spec ">" (RFC 5322 §3.4, §4.4: the route is ignored). */
static bool parse_angle(struct fparse *fp)
{
	struct tok t;
	if (!peek_token(fp, &t))
		return false;
	if (is_special(&t, '@') || is_special(&t, ',')) {
		/* obs-domain-list = *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain]) ":" */
		for (;;) {
			if (!next_token(fp, &t))
				return false;
			if (is_special(&t, ':'))
				break;
			if (is_special(&t, ','))
				continue;
			if (!is_special(&t, '@'))
				return fail(fp, "a source route is malformed");
			size_t before = fp->r->mailboxes, unusable = fp->r->unusable, count = fp->r->count;
			bool trunc = fp->r->truncated;
			if (!parse_domain(fp))
				return false;
			/* a route's hops are not authors */
			fp->r->mailboxes = before, fp->r->unusable = unusable, fp->r->count = count;
			fp->r->truncated = trunc;
		}
	}
	if (!parse_addr_spec(fp))
		return false;
	if (!next_token(fp, &t))
		return false;
	return is_special(&t, '>') || fail(fp, "an angle address is not closed with '>'");
}

static bool parse_address(struct fparse *fp, bool in_group);

/* After "display-name :": [group-list] ";" */
static bool parse_group(struct fparse *fp)
{
	struct tok t;
	for (;;) {
		if (!peek_token(fp, &t))
			return false;
		if (t.type == TOK_END)
			return fail(fp, "a group is not closed with ';'");
		if (is_special(&t, ';') || is_special(&t, ',')) {
			next_token(fp, &t);
			if (t.c == ';')
				return true;
			continue; /* RFC 5322 §4.4 obs-group-list / obs-mbox-list: empty elements */
		}
		if (!parse_address(fp, true))
			return false;
		if (!peek_token(fp, &t))
			return false;
		if (!is_special(&t, ',') && !is_special(&t, ';'))
			return fail(fp, "mailboxes in a group must be separated by ','");
	}
}

/* RFC 5322 §3.4 address = mailbox / group; mailbox = name-addr / addr-spec. */
static bool parse_address(struct fparse *fp, bool in_group)
{
	size_t start = fp->pos;
	bool at = false, words = false;
	struct tok t;
	for (;;) {
		size_t before = fp->pos;
		if (!next_token(fp, &t))
			return false;
		if (t.type == TOK_ATOM || t.type == TOK_QUOTED || is_special(&t, '.')) {
			words = true;
		} else if (is_special(&t, '@') || t.type == TOK_LITERAL) {
			at = true;
		} else if (is_special(&t, '<')) {
			/* name-addr; what came before is the display name (leniently with "@") */
			return parse_angle(fp);
		} else if (is_special(&t, ':') && !at) {
			if (in_group)
				return fail(fp, "a group inside a group");
			if (!words)
				return fail(fp, "a group without a display name");
			return parse_group(fp);
		} else {
			fp->pos = before;
			break;
		}
	}
	fp->pos = start;
	return parse_addr_spec(fp);
}

enum dmarc_from_error dmarc_from_value_parse(const char *value, size_t len, struct dmarc_from *r,
					     const char **error_r)
{
	struct fparse fp = { .s = value, .len = len, .r = r };
	struct tok t;
	size_t addresses = 0;
	for (;;) {
		if (!peek_token(&fp, &t))
			break;
		if (t.type == TOK_END) {
			if (addresses > 0)
				return DMARC_FROM_OK;
			fail(&fp, "the From field has no address"); /* §3.6.2: 1*mailbox (or a group) */
			break;
		}
		if (is_special(&t, ',')) {
			next_token(&fp, &t); /* RFC 5322 §4.4 obs-addr-list: empty elements */
			continue;
		}
		if (!parse_address(&fp, false))
			break;
		addresses++;
		if (!next_token(&fp, &t))
			break;
		if (t.type == TOK_END)
			return DMARC_FROM_OK;
		if (!is_special(&t, ',')) {
			fail(&fp, "addresses must be separated by ','");
			break;
		}
	}
	*error_r = fp.error != NULL ? fp.error : "the From field does not parse";
	return DMARC_FROM_SYNTAX;
}

enum dmarc_from_error dmarc_from_parse(const char *msg, size_t len, struct dmarc_from *r, const char **error_r)
{
	struct header_field f;
	size_t pos = 0;
	const char *syntax = NULL;

	memset(r, 0, sizeof(*r));
	while (header_next(msg, len, &pos, &f)) {
		if (!header_is(&f, "From"))
			continue;
		r->fields++;
		const char *err;
		if (dmarc_from_value_parse(f.value, f.value_len, r, &err) != DMARC_FROM_OK && syntax == NULL)
			syntax = err;
	}
	if (r->fields == 0) {
		*error_r = "the message has no From header field";
		return DMARC_FROM_NONE;
	}
	if (syntax != NULL) {
		*error_r = syntax;
		return DMARC_FROM_SYNTAX;
	}
	if (r->count == 0) {
		*error_r = "no From mailbox has a domain with a DMARC policy to look up";
		return DMARC_FROM_NO_DOMAIN;
	}
	return DMARC_FROM_OK;
}

/* addr.c — owns the RFC 5321 §4.1.2 path / mailbox / domain grammar (with the RFC 6531 §3.3 UTF-8
 * extension) and the §4.5.3.1 size limits. Pure: no allocation, no locale, no global state. */
#include "util/addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/utf8.h"

/* A cursor over length-delimited, untrusted input: nothing is read at or past len. */
struct addr_scan {
	const char *s;
	size_t len;
	size_t pos;
	unsigned flags;
	const char *error;
};

static enum addr_error addr_fail(struct addr_scan *sc, enum addr_error e, const char *msg)
{
	sc->error = msg;
	return e;
}

/* An unexpected octet. Without ADDR_ALLOW_UTF8 every 8-bit octet is reported as such (RFC 6531 §3.3). */
static enum addr_error addr_fail_octet(struct addr_scan *sc, int c, const char *msg)
{
	if (c >= 0x80 && !(sc->flags & ADDR_ALLOW_UTF8))
		return addr_fail(sc, ADDR_ERR_UTF8, "8-bit octet in address without SMTPUTF8");
	return addr_fail(sc, ADDR_ERR_SYNTAX, msg);
}

/* The next octet, or -1 at the end of the input. */
static int addr_peek(const struct addr_scan *sc)
{
	return sc->pos < sc->len ? (unsigned char)sc->s[sc->pos] : -1;
}

static bool addr_is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool addr_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5321 §4.1.2 Let-dig = ALPHA / DIGIT */
static bool addr_is_letdig(int c)
{
	return addr_is_alpha(c) || addr_is_digit(c);
}

/* RFC 5321 §4.1.2 atext (RFC 5322 §3.2.3): ALPHA / DIGIT / "!#$%&'*+-/=?^_`{|}~" */
static bool addr_is_atext(int c)
{
	if (addr_is_letdig(c))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
	case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
		return true;
	}
	return false;
}

/* ASCII-only case-insensitive comparison of n octets (the locale must not matter). */
static bool addr_ascii_caseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return true;
}

/* RFC 6531 §3.3: UTF8-non-ascii is allowed in atext, qtextSMTP and sub-domains, with SMTPUTF8 only. */
static enum addr_error addr_scan_utf8(struct addr_scan *sc)
{
	if (!(sc->flags & ADDR_ALLOW_UTF8))
		return addr_fail(sc, ADDR_ERR_UTF8, "8-bit octet in address without SMTPUTF8");
	size_t n = utf8_len((const unsigned char *)sc->s + sc->pos, sc->len - sc->pos);
	if (n == 0)
		return addr_fail(sc, ADDR_ERR_UTF8, "invalid UTF-8 in address");
	sc->pos += n;
	return ADDR_OK;
}

/* RFC 5321 §4.1.2: Quoted-string = DQUOTE *QcontentSMTP DQUOTE; quoted-pairSMTP = %d92 %d32-126;
 * qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF8-non-ascii (RFC 6531 §3.3). */
static enum addr_error addr_scan_quoted(struct addr_scan *sc)
{
	sc->pos++; /* the opening DQUOTE */
	for (;;) {
		int c = addr_peek(sc);
		if (c == '"') {
			sc->pos++;
			return ADDR_OK;
		} else if (c == '\\') {
			sc->pos++;
			c = addr_peek(sc);
			if (c < 32 || c > 126)
				return addr_fail_octet(sc, c, "invalid quoted pair in local part");
			sc->pos++;
		} else if (c >= 0x80) {
			enum addr_error e = addr_scan_utf8(sc);
			if (e != ADDR_OK)
				return e;
		} else if (c >= 32 && c <= 126) {
			sc->pos++;
		} else {
			return addr_fail(sc, ADDR_ERR_SYNTAX,
					 c < 0 ? "unterminated quoted string" : "control character in quoted string");
		}
	}
}

/* RFC 5321 §4.1.2: Local-part = Dot-string / Quoted-string; Dot-string = Atom *("." Atom);
 * Atom = 1*atext (atext plus UTF8-non-ascii with RFC 6531 §3.3). */
static enum addr_error addr_scan_local(struct addr_scan *sc)
{
	if (addr_peek(sc) == '"')
		return addr_scan_quoted(sc);
	for (;;) {
		size_t start = sc->pos;
		int c;
		while ((c = addr_peek(sc)) >= 0) {
			if (c >= 0x80) {
				enum addr_error e = addr_scan_utf8(sc);
				if (e != ADDR_OK)
					return e;
			} else if (addr_is_atext(c)) {
				sc->pos++;
			} else {
				break;
			}
		}
		if (sc->pos == start)
			return addr_fail(sc, ADDR_ERR_SYNTAX, "empty local part or empty atom in it");
		if (c != '.')
			return ADDR_OK;
		sc->pos++;
	}
}

/* RFC 5321 §4.1.2: Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str], i.e. letters,
 * digits and hyphens, not starting or ending with a hyphen. RFC 6531 §3.3 adds U-labels: any well-formed
 * UTF-8 counts as a letter here (the IDNA2008 label rules are not checked). Stops at the first octet
 * that cannot continue the domain; the caller decides what may follow. */
static enum addr_error addr_scan_domain(struct addr_scan *sc)
{
	for (;;) {
		size_t start = sc->pos;
		bool ascii = true;
		int c, last = -1;
		while ((c = addr_peek(sc)) >= 0) {
			if (c >= 0x80) {
				enum addr_error e = addr_scan_utf8(sc);
				if (e != ADDR_OK)
					return e;
				ascii = false;
			} else if (addr_is_letdig(c) || c == '-') {
				sc->pos++;
			} else {
				break;
			}
			last = c;
		}
		if (sc->pos == start)
			return addr_fail_octet(sc, c, "empty domain or empty label in it");
		if (sc->s[start] == '-' || last == '-')
			return addr_fail(sc, ADDR_ERR_SYNTAX, "domain label starts or ends with a hyphen");
		/* RFC 1035 §2.3.4: a label is at most 63 octets (for a U-label that limit is on its A-label,
		 * which is not computed here). */
		if (ascii && sc->pos - start > 63)
			return addr_fail(sc, ADDR_ERR_TOO_LONG, "domain label longer than 63 octets");
		if (c != '.')
			return ADDR_OK;
		sc->pos++;
	}
}

/* RFC 5321 §4.1.3: IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT with a value of 0-255. */
static bool addr_ipv4_valid(const char *p, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		unsigned v = 0, digits = 0;
		while (i < n && addr_is_digit(p[i]) && digits < 3) {
			v = v * 10 + (unsigned)(p[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == n;
}

/* RFC 5321 §4.1.3: IPv6-address-literal = "IPv6:" IPv6-addr; inet_pton() accepts exactly the full,
 * compressed and IPv4-embedded forms of RFC 4291 §2.2 that IPv6-addr describes. */
static bool addr_ipv6_valid(const char *p, size_t n)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr in6;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, &in6) == 1;
}

/* RFC 5321 §4.1.2: Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig */
static bool addr_ldh_valid(const char *p, size_t n)
{
	if (n == 0 || !addr_is_letdig((unsigned char)p[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!addr_is_letdig((unsigned char)p[i]) && p[i] != '-')
			return false;
	}
	return true;
}

/* RFC 5321 §4.1.3: address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]"; General-address-literal = Standardized-tag ":" 1*dcontent;
 * Standardized-tag = Ldh-str; dcontent = %d33-90 / %d94-126. The tag "IPv6" is case-insensitive. */
static enum addr_error addr_scan_literal(struct addr_scan *sc)
{
	size_t start = ++sc->pos; /* "[" */
	int c;
	while ((c = addr_peek(sc)) != ']') {
		if (c < 0)
			return addr_fail(sc, ADDR_ERR_SYNTAX, "unterminated address literal");
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return addr_fail_octet(sc, c, "invalid character in address literal");
		sc->pos++;
	}
	const char *lit = sc->s + start;
	size_t n = sc->pos - start;
	sc->pos++; /* "]" */

	const char *colon = memchr(lit, ':', n);
	if (colon == NULL) {
		if (!addr_ipv4_valid(lit, n))
			return addr_fail(sc, ADDR_ERR_SYNTAX, "invalid IPv4 address literal");
		return ADDR_OK;
	}
	size_t tag_len = (size_t)(colon - lit);
	if (tag_len == 4 && addr_ascii_caseeq(lit, "IPv6", 4)) {
		if (!addr_ipv6_valid(colon + 1, n - 5))
			return addr_fail(sc, ADDR_ERR_SYNTAX, "invalid IPv6 address literal");
		return ADDR_OK;
	}
	if (!addr_ldh_valid(lit, tag_len) || n - tag_len - 1 == 0)
		return addr_fail(sc, ADDR_ERR_SYNTAX, "invalid general address literal");
	return ADDR_OK;
}

/* RFC 5321 §4.1.2: Mailbox = Local-part "@" ( Domain / address-literal ). *at_r is the offset of "@". */
static enum addr_error addr_scan_mailbox(struct addr_scan *sc, size_t *at_r, bool *literal_r)
{
	enum addr_error e = addr_scan_local(sc);
	if (e != ADDR_OK)
		return e;
	if (addr_peek(sc) != '@')
		return addr_fail(sc, ADDR_ERR_SYNTAX, "expected \"@\" after the local part");
	*at_r = sc->pos++;
	*literal_r = addr_peek(sc) == '[';
	return *literal_r ? addr_scan_literal(sc) : addr_scan_domain(sc);
}

/* RFC 5321 §4.5.3.1.1 and §4.5.3.1.2 for the mailbox s[start, end) whose "@" is at at. */
static enum addr_error addr_check_limits(struct addr_scan *sc, size_t start, size_t at, size_t end)
{
	/* RFC 5321 §4.5.3.1.1: local part at most 64 octets (counted as sent, quotes included) */
	if (at - start > ADDR_LOCAL_MAX)
		return addr_fail(sc, ADDR_ERR_TOO_LONG, "local part longer than 64 octets");
	/* RFC 5321 §4.5.3.1.2: domain or address literal at most 255 octets */
	if (end - at - 1 > ADDR_DOMAIN_MAX)
		return addr_fail(sc, ADDR_ERR_TOO_LONG, "domain longer than 255 octets");
	return ADDR_OK;
}

/* Copies the checked mailbox s[start, end) (at most ADDR_TEXT_MAX octets) into a. */
static void addr_fill(const struct addr_scan *sc, struct addr *a, size_t start, size_t at, size_t end,
		      bool literal)
{
	memcpy(a->text, sc->s + start, end - start);
	a->text[end - start] = '\0';
	a->local_len = at - start;
	a->domain_off = at - start + 1;
	a->is_literal = literal;
	for (size_t i = start; i < end; i++) {
		if ((unsigned char)sc->s[i] >= 0x80)
			a->is_utf8 = true;
	}
}

/* RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">"; Reverse-path = Path / "<>". */
static enum addr_error addr_scan_path(struct addr_scan *sc, struct addr *a)
{
	if (addr_peek(sc) != '<')
		return addr_fail(sc, ADDR_ERR_SYNTAX, "path does not start with \"<\"");
	sc->pos++;

	/* RFC 5321 §4.5.5: the null reverse-path "<>" */
	if (addr_peek(sc) == '>') {
		if (!(sc->flags & ADDR_ALLOW_NULL))
			return addr_fail(sc, ADDR_ERR_SYNTAX, "null path not allowed here");
		sc->pos++;
		a->is_null = true;
		return ADDR_OK;
	}

	/* RFC 5321 §4.1.1.3: "<Postmaster>" (case-insensitive) without a domain */
	size_t pm = sizeof("Postmaster") - 1;
	if ((sc->flags & ADDR_ALLOW_POSTMASTER) && sc->len - sc->pos > pm &&
	    addr_ascii_caseeq(sc->s + sc->pos, "Postmaster", pm) && sc->s[sc->pos + pm] == '>') {
		memcpy(a->text, sc->s + sc->pos, pm);
		a->text[pm] = '\0';
		a->local_len = a->domain_off = pm;
		sc->pos += pm + 1;
		return ADDR_OK;
	}

	/* RFC 5321 §4.1.2: A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain. Appendix C: the
	 * source route is accepted and ignored. */
	if (addr_peek(sc) == '@') {
		size_t route = sc->pos;
		for (;;) {
			sc->pos++; /* "@" */
			enum addr_error e = addr_scan_domain(sc);
			if (e != ADDR_OK)
				return e;
			int c = addr_peek(sc);
			if (c == ':')
				break;
			if (c != ',')
				return addr_fail(sc, ADDR_ERR_SYNTAX, "source route does not end with \":\"");
			sc->pos++;
			if (addr_peek(sc) != '@')
				return addr_fail(sc, ADDR_ERR_SYNTAX, "expected \"@\" in the source route");
		}
		/* its domains are dropped unused, so there is no reason to accept U-labels in them */
		for (size_t i = route; i < sc->pos; i++) {
			if ((unsigned char)sc->s[i] >= 0x80)
				return addr_fail(sc, ADDR_ERR_UTF8, "8-bit octet in the source route");
		}
		sc->pos++; /* ":" */
	}

	size_t start = sc->pos, at = 0;
	bool literal = false;
	enum addr_error e = addr_scan_mailbox(sc, &at, &literal);
	if (e != ADDR_OK)
		return e;
	if (addr_peek(sc) != '>')
		return addr_fail(sc, ADDR_ERR_SYNTAX, "expected \">\" at the end of the path");
	size_t end = sc->pos++;
	e = addr_check_limits(sc, start, at, end);
	if (e != ADDR_OK)
		return e;
	/* RFC 5321 §4.5.3.1.3: path at most 256 octets including "<", ">" and the source route; so the
	 * mailbox fits in ADDR_TEXT_MAX. */
	if (sc->pos > ADDR_PATH_MAX)
		return addr_fail(sc, ADDR_ERR_TOO_LONG, "path longer than 256 octets");
	addr_fill(sc, a, start, at, end, literal);
	return ADDR_OK;
}

enum addr_error addr_parse_path(const char *s, size_t len, unsigned flags, struct addr *a_r,
				size_t *consumed_r, const char **error_r)
{
	struct addr_scan sc = { .s = s, .len = len, .flags = flags };

	memset(a_r, 0, sizeof(*a_r));
	if (consumed_r != NULL)
		*consumed_r = 0;
	enum addr_error e = addr_scan_path(&sc, a_r);
	if (e != ADDR_OK) {
		memset(a_r, 0, sizeof(*a_r));
		if (error_r != NULL)
			*error_r = sc.error;
		return e;
	}
	if (consumed_r != NULL)
		*consumed_r = sc.pos;
	return ADDR_OK;
}

/* A bare mailbox: ADDR_ALLOW_NULL and ADDR_ALLOW_POSTMASTER only concern paths and are ignored here. */
enum addr_error addr_parse_mailbox(const char *s, size_t len, unsigned flags, struct addr *a_r,
				   const char **error_r)
{
	struct addr_scan sc = { .s = s, .len = len, .flags = flags };
	size_t at = 0;
	bool literal = false;

	memset(a_r, 0, sizeof(*a_r));
	enum addr_error e = addr_scan_mailbox(&sc, &at, &literal);
	if (e == ADDR_OK && sc.pos != len)
		e = addr_fail_octet(&sc, addr_peek(&sc), "unexpected characters after the address");
	if (e == ADDR_OK)
		e = addr_check_limits(&sc, 0, at, len);
	/* the mailbox must fit in a path (RFC 5321 §4.5.3.1.3) once "<" and ">" are added */
	if (e == ADDR_OK && len > ADDR_TEXT_MAX)
		e = addr_fail(&sc, ADDR_ERR_TOO_LONG, "address longer than 254 octets");
	if (e == ADDR_OK)
		addr_fill(&sc, a_r, 0, at, len, literal);
	if (e != ADDR_OK) {
		memset(a_r, 0, sizeof(*a_r));
		if (error_r != NULL)
			*error_r = sc.error;
	}
	return e;
}

enum addr_error addr_parse_domain(const char *s, size_t len, unsigned flags, const char **error_r)
{
	struct addr_scan sc = { .s = s, .len = len, .flags = flags };
	enum addr_error e;

	if (addr_peek(&sc) == '[')
		e = addr_scan_literal(&sc);
	else
		e = addr_scan_domain(&sc);
	if (e == ADDR_OK && sc.pos != len)
		e = addr_fail_octet(&sc, addr_peek(&sc), "unexpected characters after the domain");
	/* RFC 5321 §4.5.3.1.2: domain or address literal at most 255 octets */
	if (e == ADDR_OK && len > ADDR_DOMAIN_MAX)
		e = addr_fail(&sc, ADDR_ERR_TOO_LONG, "domain longer than 255 octets");
	if (e != ADDR_OK && error_r != NULL)
		*error_r = sc.error;
	return e;
}

const char *addr_error_str(enum addr_error e)
{
	switch (e) {
	case ADDR_OK: return "ok";
	case ADDR_ERR_SYNTAX: return "address syntax error";
	case ADDR_ERR_TOO_LONG: return "address too long";
	case ADDR_ERR_UTF8: return "8-bit octet or invalid UTF-8 in address";
	}
	return "unknown address error";
}

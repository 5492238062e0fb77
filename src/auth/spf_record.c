/* spf_record.c — RFC 7208 §4.5 record selection and the §4.6.1 / §5 / §6 / §7.1 grammar of one
 * record:
 *   record    = version terms *SP           version   = "v=spf1"
 *   terms     = *( 1*SP ( directive / modifier ) )
 *   directive = [ qualifier ] mechanism     qualifier = "+" / "-" / "?" / "~"
 *   modifier  = redirect / explanation / unknown-modifier
 *   unknown-modifier = name "=" macro-string
 *   name      = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
 * Names of mechanisms and modifiers are case-insensitive (RFC 5234 §2.3). */
#include "auth/spf_record.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/spf_macro.h"

#define SPF_VERSION "v=spf1"
#define SPF_VERSION_LEN 6

const char *spf_qualifier_str(enum spf_qualifier q)
{
	switch (q) {
	case SPF_QUALIFIER_PASS: return "+";
	case SPF_QUALIFIER_FAIL: return "-";
	case SPF_QUALIFIER_SOFTFAIL: return "~";
	case SPF_QUALIFIER_NEUTRAL: return "?";
	}
	return "?";
}

const char *spf_mech_str(enum spf_mech m)
{
	switch (m) {
	case SPF_MECH_ALL: return "all";
	case SPF_MECH_INCLUDE: return "include";
	case SPF_MECH_A: return "a";
	case SPF_MECH_MX: return "mx";
	case SPF_MECH_PTR: return "ptr";
	case SPF_MECH_IP4: return "ip4";
	case SPF_MECH_IP6: return "ip6";
	case SPF_MECH_EXISTS: return "exists";
	}
	return "?";
}

bool spf_mech_queries_dns(enum spf_mech m)
{
	/* §4.6.4: "include", "a", "mx", "ptr", "exists" (and the "redirect" modifier) */
	return m == SPF_MECH_INCLUDE || m == SPF_MECH_A || m == SPF_MECH_MX || m == SPF_MECH_PTR ||
	       m == SPF_MECH_EXISTS;
}

const char *spf_record_error_str(enum spf_record_error e)
{
	switch (e) {
	case SPF_RECORD_OK: return "ok";
	case SPF_RECORD_NOT_SPF: return "not_spf";
	case SPF_RECORD_TOO_LONG: return "too_long";
	case SPF_RECORD_SYNTAX: return "syntax";
	case SPF_RECORD_DUPLICATE: return "duplicate";
	case SPF_RECORD_NOMEM: return "nomem";
	}
	return "?";
}

bool spf_record_is_spf(const char *text, size_t len)
{
	/* §4.5: "exactly v=spf1 ... terminated by either an SP character or the end of the record";
	 * the suite's "case-insensitive" tests read it without case, as ABNF strings are */
	return len >= SPF_VERSION_LEN && strncasecmp(text, SPF_VERSION, SPF_VERSION_LEN) == 0 &&
	       (len == SPF_VERSION_LEN || text[SPF_VERSION_LEN] == ' ');
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* §7.1 toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_valid(const char *s, size_t len)
{
	bool alpha = false, dash = false;

	if (len == 0 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '-')
			dash = true;
		else if (is_alpha(s[i]))
			alpha = true;
		else if (!is_digit(s[i]))
			return false;
	}
	return alpha || dash;
}

bool spf_domain_spec_valid(const char *s, size_t len, bool *uses_p_r, const char **error_r)
{
	struct spf_macro_info info;

	if (len == 0) {
		*error_r = "an empty domain-spec (§7.1)";
		return false;
	}
	if (spf_macro_check(s, len, SPF_MACRO_DOMAIN, &info, error_r) != SPF_MACRO_OK)
		return false;
	if (uses_p_r != NULL)
		*uses_p_r = info.uses_p;
	/* §7.1 domain-end = ( "." toplabel [ "." ] ) / macro-expand */
	if (info.tail == len)
		return true;
	const char *lit = s + info.tail;
	size_t n = len - info.tail;
	if (lit[n - 1] == '.')
		n--;
	const char *dot = n > 0 ? memrchr(lit, '.', n) : NULL;
	if (dot == NULL || !toplabel_valid(dot + 1, n - (size_t)(dot + 1 - lit))) {
		*error_r = "a domain-spec must end in a macro or in '.' and a top label that is not all "
			   "digits (§7.1)";
		return false;
	}
	return true;
}

/* §5.6 ip4-cidr-length = "/" ( "0" / %x31-39 0*1DIGIT ), ip6-cidr-length = "/" ( "0" / %x31-39
 * 0*2DIGIT ): no leading zeros, and at most 32 / 128. s holds the digits only. */
static bool cidr_parse(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* §5.6 ip4-network = qnum "." qnum "." qnum "." qnum, qnum = "0" / 1-9 0*2DIGIT up to 255: four
 * parts, no leading zeros (so "1.2.3" and "01.2.3.4" are errors, not shorthand). */
static bool ip4_parse(const char *s, size_t len, struct dns_addr *a)
{
	size_t i = 0;

	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < len && is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
			return false;
		a->bytes[part] = (uint8_t)v;
	}
	return i == len;
}

/* §5.6 ip6-network: the text forms of RFC 4291 §2.2, as inet_pton reads them. */
static bool ip6_parse(const char *s, size_t len, struct dns_addr *a)
{
	char buf[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(a, 0, sizeof(*a));
	a->family = AF_INET6;
	return inet_pton(AF_INET6, buf, a->bytes) == 1;
}

/* Takes "/" DIGITS (or "//" DIGITS when dbl) off the end of s[0..*len). Returns false on an
 * invalid length; *found_r says whether there was one. */
static bool cidr_suffix(const char *s, size_t *len, bool dbl, unsigned max, unsigned *out, bool *found_r)
{
	size_t end = *len, j = end;

	*found_r = false;
	while (j > 0 && is_digit(s[j - 1]))
		j--;
	if (j == end || j == 0 || s[j - 1] != '/' || (dbl && (j < 2 || s[j - 2] != '/')))
		return true;
	*found_r = true;
	*len = j - (dbl ? 2 : 1);
	return cidr_parse(s + j, end - j, max, out);
}

static bool mech_name_is(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/* One directive (§4.6.2, §5) into t. */
static bool directive_parse(const char *s, size_t len, struct spf_term *t, const char **error_r)
{
	size_t i = 0;

	t->text = s;
	t->text_len = len;
	t->qualifier = SPF_QUALIFIER_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;
	switch (s[0]) {
	case '+': t->qualifier = SPF_QUALIFIER_PASS; i++; break;
	case '-': t->qualifier = SPF_QUALIFIER_FAIL; i++; break;
	case '~': t->qualifier = SPF_QUALIFIER_SOFTFAIL; i++; break;
	case '?': t->qualifier = SPF_QUALIFIER_NEUTRAL; i++; break;
	}
	size_t name = i;
	while (i < len && s[i] != ':' && s[i] != '/')
		i++;
	const char *n = s + name, *rest = s + i;
	size_t nlen = i - name, rlen = len - i;

	if (mech_name_is(n, nlen, "all")) {
		t->mech = SPF_MECH_ALL;
		if (rlen != 0) {
			*error_r = "\"all\" takes no argument (§5.1)";
			return false;
		}
		return true;
	}
	if (mech_name_is(n, nlen, "include") || mech_name_is(n, nlen, "exists")) {
		t->mech = n[0] == 'i' || n[0] == 'I' ? SPF_MECH_INCLUDE : SPF_MECH_EXISTS;
		if (rlen == 0 || rest[0] != ':') {
			*error_r = t->mech == SPF_MECH_INCLUDE ? "\"include\" needs ':' and a domain (§5.2)"
							       : "\"exists\" needs ':' and a domain (§5.7)";
			return false;
		}
		t->domain.text = rest + 1;
		t->domain.len = rlen - 1;
		return spf_domain_spec_valid(t->domain.text, t->domain.len, &t->domain.uses_p, error_r);
	}
	if (mech_name_is(n, nlen, "a") || mech_name_is(n, nlen, "mx")) {
		/* §5.3, §5.4: [ ":" domain-spec ] [ dual-cidr-length ], dual-cidr-length =
		 * [ ip4-cidr-length ] [ "/" ip6-cidr-length ]. A domain-spec may hold '/' itself, so
		 * the lengths are taken off the end. */
		bool found;
		t->mech = nlen == 1 ? SPF_MECH_A : SPF_MECH_MX;
		if (!cidr_suffix(rest, &rlen, true, 128, &t->cidr6, &found) ||
		    !cidr_suffix(rest, &rlen, false, 32, &t->cidr4, &found)) {
			*error_r = "an invalid CIDR length (§5.6: 0-32 for IPv4, 0-128 for IPv6, no leading zeros)";
			return false;
		}
		if (rlen == 0)
			return true;
		if (rest[0] != ':') {
			*error_r = "expected ':' and a domain, or a CIDR length (§5.3, §5.4)";
			return false;
		}
		t->domain.text = rest + 1;
		t->domain.len = rlen - 1;
		return spf_domain_spec_valid(t->domain.text, t->domain.len, &t->domain.uses_p, error_r);
	}
	if (mech_name_is(n, nlen, "ptr")) {
		t->mech = SPF_MECH_PTR;
		if (rlen == 0)
			return true;
		if (rest[0] != ':') {
			*error_r = "\"ptr\" takes only ':' and a domain (§5.5)";
			return false;
		}
		t->domain.text = rest + 1;
		t->domain.len = rlen - 1;
		return spf_domain_spec_valid(t->domain.text, t->domain.len, &t->domain.uses_p, error_r);
	}
	if (mech_name_is(n, nlen, "ip4") || mech_name_is(n, nlen, "ip6")) {
		bool v6 = n[2] == '6';
		t->mech = v6 ? SPF_MECH_IP6 : SPF_MECH_IP4;
		if (rlen == 0 || rest[0] != ':') {
			*error_r = v6 ? "\"ip6\" needs ':' and a network (§5.6)" : "\"ip4\" needs ':' and a network (§5.6)";
			return false;
		}
		const char *net = rest + 1, *slash = memchr(net, '/', rlen - 1);
		size_t netlen = slash != NULL ? (size_t)(slash - net) : rlen - 1;
		if (!(v6 ? ip6_parse(net, netlen, &t->net) : ip4_parse(net, netlen, &t->net))) {
			*error_r = v6 ? "not an IPv6 network (§5.6)" : "not an IPv4 network: four decimal parts (§5.6)";
			return false;
		}
		if (slash != NULL &&
		    !cidr_parse(slash + 1, rlen - 1 - netlen - 1, v6 ? 128 : 32, v6 ? &t->cidr6 : &t->cidr4)) {
			*error_r = "an invalid CIDR length (§5.6: 0-32 for IPv4, 0-128 for IPv6, no leading zeros)";
			return false;
		}
		return true;
	}
	*error_r = "unknown mechanism (§4.6.1; modifiers are written name=value)";
	return false;
}

/* One modifier (§6): known ones into rec, unknown ones checked and dropped. Returns false with
 * *dup_r set for a second redirect= or exp=. */
static bool modifier_parse(const char *s, size_t name_len, size_t len, struct spf_record *rec, bool *dup_r,
			   const char **error_r)
{
	const char *value = s + name_len + 1;
	size_t vlen = len - name_len - 1;
	struct spf_domain_spec *spec = NULL;

	if (mech_name_is(s, name_len, "redirect"))
		spec = &rec->redirect;
	else if (mech_name_is(s, name_len, "exp"))
		spec = &rec->exp;
	if (spec == NULL) {
		/* §6: "Unrecognized modifiers MUST be ignored", but their value is a macro-string
		 * (§4.6.1), so its syntax is checked like the rest of the record (§4.6) */
		return spf_macro_check(value, vlen, SPF_MACRO_MODIFIER, NULL, error_r) == SPF_MACRO_OK;
	}
	if (spec->text != NULL) {
		/* §6: "These two modifiers MUST NOT appear in a record more than once each." */
		*dup_r = true;
		*error_r = spec == &rec->redirect ? "redirect= appears twice (§6)" : "exp= appears twice (§6)";
		return false;
	}
	spec->text = value;
	spec->len = vlen;
	return spf_domain_spec_valid(value, vlen, &spec->uses_p, error_r);
}

/* The length of a modifier name at s ("name=") or 0 when s is not a modifier. */
static size_t modifier_name_len(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !is_alpha(s[0]))
		return 0;
	while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
		i++;
	return i < len && s[i] == '=' ? i : 0;
}

enum spf_record_error spf_record_parse(const char *text, size_t len, struct spf_record **rec_r,
				       const char **error_r, size_t *error_at_r)
{
	size_t at_dummy;
	size_t *at = error_at_r != NULL ? error_at_r : &at_dummy;

	*rec_r = NULL;
	*at = len;
	if (len > SPF_RECORD_MAX) {
		*error_r = "SPF record longer than 4096 octets";
		return SPF_RECORD_TOO_LONG;
	}
	if (!spf_record_is_spf(text, len)) {
		*error_r = "not an SPF record: it must begin with \"v=spf1\" and a space or end (§4.5)";
		return SPF_RECORD_NOT_SPF;
	}
	size_t nterms = 0;
	for (size_t i = SPF_VERSION_LEN; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c != ' ' && (c < 0x21 || c > 0x7e)) {
			/* §4.6.1: terms are separated by SP alone and made of visible US-ASCII (§3.1) */
			for (*at = i; *at > SPF_VERSION_LEN && text[*at - 1] != ' ';)
				(*at)--;
			*error_r = "an octet other than a space or printable US-ASCII (§3.1, §4.6.1)";
			return SPF_RECORD_SYNTAX;
		}
		if (c != ' ' && text[i - 1] == ' ')
			nterms++;
	}

	struct spf_record *rec = calloc(1, sizeof(*rec) + nterms * sizeof(rec->terms[0]) + len + 1);
	if (rec == NULL) {
		*error_r = "out of memory";
		return SPF_RECORD_NOMEM;
	}
	char *copy = (char *)&rec->terms[nterms];
	memcpy(copy, text, len);
	copy[len] = '\0';
	rec->text = copy;
	rec->len = len;

	for (size_t i = SPF_VERSION_LEN; i < len;) {
		if (copy[i] == ' ') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && copy[i] != ' ')
			i++;
		const char *term = copy + start;
		size_t tlen = i - start, name_len = modifier_name_len(term, tlen);
		bool ok, dup = false;
		if (name_len > 0) {
			ok = modifier_parse(term, name_len, tlen, rec, &dup, error_r);
		} else {
			struct spf_term *t = &rec->terms[rec->nterms++];
			ok = directive_parse(term, tlen, t, error_r);
			rec->has_all = rec->has_all || (ok && t->mech == SPF_MECH_ALL);
		}
		if (!ok) {
			*at = start;
			free(rec);
			return dup ? SPF_RECORD_DUPLICATE : SPF_RECORD_SYNTAX;
		}
	}
	*rec_r = rec;
	return SPF_RECORD_OK;
}

void spf_record_free(struct spf_record *rec)
{
	free(rec);
}

/* dkim_sig.c — DKIM-Signature field parsing and checking (RFC 6376 §3.5, §6.1.1, §3.7 step 2). */
#include "auth/dkim_sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/tagval.h"

const char *dkim_sig_error_str(enum dkim_sig_error e)
{
	switch (e) {
	case DKIM_SIG_OK: return "ok";
	case DKIM_SIG_SYNTAX: return "syntax";
	case DKIM_SIG_MISSING: return "missing";
	case DKIM_SIG_VERSION: return "version";
	case DKIM_SIG_ALGORITHM: return "algorithm";
	case DKIM_SIG_DOMAIN: return "domain";
	case DKIM_SIG_FROM: return "from";
	case DKIM_SIG_QUERY: return "query";
	}
	return "?";
}

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_letdig(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 6376 §3.5 d= domain-name = sub-domain 1*("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 §4.1.2); selectors (§3.1) are sub-domain *("." sub-domain). Labels of at most 63
 * octets. Selectors may also hold '_', which DNS allows and some publishers use. */
static bool name_valid(const char *s, size_t len, bool need_dot, bool underscore)
{
	size_t label = 0, dots = 0;
	if (len == 0 || len >= DNS_HOST_SIZE)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			dots++;
			continue;
		}
		bool ok = is_letdig(c) || ((c == '-' || (underscore && c == '_')) && label > 0);
		if (!ok || ++label > DNS_LABEL_MAX)
			return false;
	}
	return label > 0 && s[len - 1] != '-' && (!need_dot || dots > 0);
}

bool dkim_domain_valid(const char *s, size_t len)
{
	return name_valid(s, len, true, false);
}

bool dkim_selector_valid(const char *s, size_t len)
{
	return name_valid(s, len, false, true);
}

static void copy_lower(char *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
	out[len] = '\0';
}

bool dkim_domain_within(const char *dom, size_t len, const char *d)
{
	size_t dl = strlen(d);
	if (len == dl)
		return strncasecmp(dom, d, dl) == 0;
	return len > dl && dom[len - dl - 1] == '.' && strncasecmp(dom + len - dl, d, dl) == 0;
}

/* 1*DIGIT, saturating at UINT64_MAX; max_digits 0 for no bound. */
static bool parse_number(const struct tagval *t, size_t max_digits, uint64_t *v_r)
{
	uint64_t v = 0;
	if (t->value_len == 0 || (max_digits > 0 && t->value_len > max_digits))
		return false;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (c < '0' || c > '9')
			return false;
		unsigned d = (unsigned)(c - '0');
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	*v_r = v;
	return true;
}

/* A colon-separated list (h=, q=): calls each element, FWS trimmed; false if one is empty. */
static bool split_list(const struct tagval *t, bool (*each)(void *arg, const char *p, size_t len), void *arg)
{
	size_t i = 0;
	while (i <= t->value_len) {
		size_t start = i;
		while (i < t->value_len && t->value[i] != ':')
			i++;
		size_t end = i;
		while (start < end && is_fws(t->value[start]))
			start++;
		while (end > start && is_fws(t->value[end - 1]))
			end--;
		if (end == start || !each(arg, t->value + start, end - start))
			return false;
		i++;
	}
	return true;
}

struct h_state {
	struct dkim_sig *sig;
	bool too_many;
};

/* RFC 5322 §3.6.8 field-name = 1*ftext, ftext = %d33-57 / %d59-126 */
static bool h_each(void *arg, const char *p, size_t len)
{
	struct h_state *st = arg;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 33 || (unsigned char)p[i] > 126 || p[i] == ':')
			return false;
	if (st->sig->nheaders == DKIM_SIG_HEADERS_MAX) {
		st->too_many = true;
		return false;
	}
	st->sig->headers[st->sig->nheaders].p = p;
	st->sig->headers[st->sig->nheaders].len = len;
	st->sig->nheaders++;
	return true;
}

static bool q_each(void *arg, const char *p, size_t len)
{
	if (len == 7 && strncasecmp(p, "dns/txt", 7) == 0)
		*(bool *)arg = true;
	return true;
}

static bool parse_canon(const char *p, size_t len, enum dkim_canon *c_r)
{
	if (len == 6 && strncasecmp(p, "simple", 6) == 0)
		*c_r = DKIM_CANON_SIMPLE;
	else if (len == 7 && strncasecmp(p, "relaxed", 7) == 0)
		*c_r = DKIM_CANON_RELAXED;
	else
		return false;
	return true;
}

/* i= with FWS removed (dkim-quoted-printable allows it anywhere, RFC 6376 §2.11). */
static bool copy_identity(struct dkim_sig *sig, const struct tagval *t)
{
	size_t o = 0;
	for (size_t i = 0; i < t->value_len; i++) {
		if (is_fws(t->value[i]))
			continue;
		if (o + 1 >= sizeof(sig->identity))
			return false;
		sig->identity[o++] = t->value[i];
	}
	sig->identity[o] = '\0';
	return true;
}

static const char *const missing_text[] = {
	"the signature has no v= tag", "the signature has no a= tag", "the signature has no b= tag",
	"the signature has no bh= tag", "the signature has no d= tag", "the signature has no h= tag",
	"the signature has no s= tag",
};
static const char *const required[] = {"v", "a", "b", "bh", "d", "h", "s"};

enum dkim_sig_error dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig, const char **error_r)
{
	struct tagval tags[TAGVAL_MAX];
	size_t n;
	const char *why;

	memset(sig, 0, sizeof(*sig));
	if (tagval_parse(value, len, 0, tags, TAGVAL_MAX, &n, &why) != TAGVAL_OK) {
		*error_r = "the signature is not a valid tag=value list";
		return DKIM_SIG_SYNTAX;
	}
	/* d= and s= first, so that a result names them even when something else is wrong */
	const struct tagval *d = tagval_find(tags, n, "d"), *s = tagval_find(tags, n, "s");
	if (d != NULL && name_valid(d->value, d->value_len, true, false))
		copy_lower(sig->domain, d->value, d->value_len);
	if (s != NULL && name_valid(s->value, s->value_len, false, true))
		copy_lower(sig->selector, s->value, s->value_len);

	/* RFC 6376 §6.1.1: the required tags */
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (tagval_find(tags, n, required[i]) == NULL) {
			*error_r = missing_text[i];
			return DKIM_SIG_MISSING;
		}
	}
	const struct tagval *v = tagval_find(tags, n, "v");
	if (v->value_len != 1 || v->value[0] != '1') {
		*error_r = "v= is not 1";
		return DKIM_SIG_VERSION;
	}
	const struct tagval *a = tagval_find(tags, n, "a");
	size_t digest_len = DKIM_DIGEST_SIZE;
	if (tagval_value_is(a, "rsa-sha256")) {
		sig->alg = DKIM_ALG_RSA_SHA256;
	} else if (tagval_value_is(a, "ed25519-sha256")) {
		sig->alg = DKIM_ALG_ED25519_SHA256;
	} else if (tagval_value_is(a, "rsa-sha1")) {
		sig->alg = DKIM_ALG_RSA_SHA1;
		digest_len = 20;
	} else {
		*error_r = "unknown signature algorithm";
		return DKIM_SIG_ALGORITHM;
	}
	sig->alg_known = true;
	if (sig->domain[0] == '\0') {
		*error_r = "d= is not a domain name";
		return DKIM_SIG_SYNTAX;
	}
	if (sig->selector[0] == '\0') {
		*error_r = "s= is not a selector";
		return DKIM_SIG_SYNTAX;
	}
	char qname[DNS_HOST_SIZE];
	if (!dkim_sig_key_name(sig, qname, sizeof(qname))) {
		*error_r = "s= and d= make a name longer than DNS allows";
		return DKIM_SIG_SYNTAX;
	}

	/* c= (§3.5): "x" alone means x/simple */
	sig->header_canon = sig->body_canon = DKIM_CANON_SIMPLE;
	const struct tagval *c = tagval_find(tags, n, "c");
	if (c != NULL) {
		const char *slash = memchr(c->value, '/', c->value_len);
		size_t hlen = slash != NULL ? (size_t)(slash - c->value) : c->value_len;
		if (!parse_canon(c->value, hlen, &sig->header_canon) ||
		    (slash != NULL && !parse_canon(slash + 1, c->value_len - hlen - 1, &sig->body_canon))) {
			*error_r = "c= names an unknown canonicalization";
			return DKIM_SIG_SYNTAX;
		}
	}

	/* h= (§3.5): a non-empty list of field names that includes From (§6.1.1) */
	struct h_state hs = {.sig = sig};
	if (!split_list(tagval_find(tags, n, "h"), h_each, &hs)) {
		*error_r = hs.too_many ? "h= lists too many header fields" : "h= is not a list of header field names";
		return DKIM_SIG_SYNTAX;
	}
	if (!dkim_sig_signs(sig, "from")) {
		*error_r = "h= does not list From";
		return DKIM_SIG_FROM;
	}

	/* i= (§3.5): [local-part] "@" domain, the domain d= or below it (§6.1.1) */
	const struct tagval *i = tagval_find(tags, n, "i");
	if (i != NULL) {
		if (!copy_identity(sig, i)) {
			*error_r = "i= is too long";
			return DKIM_SIG_SYNTAX;
		}
		const char *at = strrchr(sig->identity, '@');
		if (at == NULL || !name_valid(at + 1, strlen(at + 1), true, false)) {
			*error_r = "i= is not an address or @domain";
			return DKIM_SIG_SYNTAX;
		}
		sig->identity_domain = (size_t)(at + 1 - sig->identity);
		if (!dkim_domain_within(at + 1, strlen(at + 1), sig->domain)) {
			*error_r = "i= is not in the domain of d=";
			return DKIM_SIG_DOMAIN;
		}
	} else {
		snprintf(sig->identity, sizeof(sig->identity), "@%s", sig->domain);
		sig->identity_domain = 1;
	}

	/* q= (§3.5): dns/txt must be among the methods */
	const struct tagval *q = tagval_find(tags, n, "q");
	bool dns_txt = false;
	if (q != NULL && !split_list(q, q_each, &dns_txt)) {
		*error_r = "q= is not a list of query methods";
		return DKIM_SIG_SYNTAX;
	}
	if (q != NULL && !dns_txt) {
		*error_r = "q= does not offer dns/txt";
		return DKIM_SIG_QUERY;
	}

	/* l=, t=, x= (§3.5): decimal; x= after t= */
	const struct tagval *l = tagval_find(tags, n, "l"), *t = tagval_find(tags, n, "t"), *x = tagval_find(tags, n, "x");
	if (l != NULL && !(sig->has_length = parse_number(l, 76, &sig->length))) {
		*error_r = "l= is not a number";
		return DKIM_SIG_SYNTAX;
	}
	if (t != NULL && !(sig->has_timestamp = parse_number(t, 0, &sig->timestamp))) {
		*error_r = "t= is not a number";
		return DKIM_SIG_SYNTAX;
	}
	if (x != NULL && !(sig->has_expire = parse_number(x, 0, &sig->expire))) {
		*error_r = "x= is not a number";
		return DKIM_SIG_SYNTAX;
	}
	if (t != NULL && x != NULL && sig->expire <= sig->timestamp) {
		*error_r = "x= is not after t=";
		return DKIM_SIG_SYNTAX;
	}

	/* bh= and b= (§3.5): base64, FWS ignored */
	const struct tagval *bh = tagval_find(tags, n, "bh"), *b = tagval_find(tags, n, "b");
	unsigned char digest[64];
	size_t got;
	if (dkim_base64_decode(bh->value, bh->value_len, digest, sizeof(digest), &got) != DKIM_BASE64_OK ||
	    got != digest_len) {
		*error_r = "bh= is not a base64 digest of the a= hash";
		return DKIM_SIG_SYNTAX;
	}
	memcpy(sig->bh, digest, got < sizeof(sig->bh) ? got : sizeof(sig->bh));
	switch (dkim_base64_decode(b->value, b->value_len, sig->b, sizeof(sig->b), &sig->b_len)) {
	case DKIM_BASE64_OK:
		break;
	case DKIM_BASE64_SYNTAX:
		*error_r = "b= is not base64";
		return DKIM_SIG_SYNTAX;
	case DKIM_BASE64_TOO_LONG:
		*error_r = "b= is longer than any signature we verify";
		return DKIM_SIG_SYNTAX;
	}
	if (sig->b_len == 0) {
		*error_r = "b= is empty";
		return DKIM_SIG_SYNTAX;
	}
	size_t k = 0;
	for (size_t j = 0; j < b->value_len && k < DKIM_SIG_B_PREFIX; j++)
		if (!is_fws(b->value[j]))
			sig->b_prefix[k++] = b->value[j];
	sig->b_prefix[k] = '\0';

	/* §3.7 step 2: from just after '=' to the end of the tag */
	const char *p = b->name + b->name_len, *end = value + len;
	while (p < end && *p != '=')
		p++;
	sig->b_del_start = p + 1;
	p = b->value + b->value_len;
	while (p < end && *p != ';')
		p++;
	sig->b_del_end = p;
	return DKIM_SIG_OK;
}

bool dkim_sig_key_name(const struct dkim_sig *sig, char *name, size_t size)
{
	int n = snprintf(name, size, "%s._domainkey.%s", sig->selector, sig->domain);
	return n > 0 && (size_t)n < size && (size_t)n < DNS_HOST_SIZE;
}

bool dkim_sig_signs(const struct dkim_sig *sig, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < sig->nheaders; i++)
		if (sig->headers[i].len == len && strncasecmp(sig->headers[i].p, name, len) == 0)
			return true;
	return false;
}

bool dkim_sig_canon_self(const struct dkim_sig *sig, enum dkim_canon c, const char *raw, size_t raw_len,
			 dkim_canon_sink_fn *sink, void *arg)
{
	/* the deleted span lies inside raw (the parser ran on raw's value) */
	size_t start = (size_t)(sig->b_del_start - raw), end = (size_t)(sig->b_del_end - raw);
	if (sig->b_del_start < raw || end > raw_len || start > end)
		return false;
	char *copy = malloc(raw_len - (end - start) + 1);
	if (copy == NULL)
		return false;
	memcpy(copy, raw, start);
	memcpy(copy + start, raw + end, raw_len - end);
	dkim_canon_header(c, copy, raw_len - (end - start), false, sink, arg);
	free(copy);
	return true;
}

void dkim_headers_canon(enum dkim_canon c, const struct header_field *fields, size_t nfields, bool *taken,
			const struct dkim_span *names, size_t nnames, dkim_canon_sink_fn *sink, void *arg)
{
	for (size_t i = 0; i < nnames; i++) {
		/* RFC 6376 §5.4.2: instances are taken from the bottom of the header section up */
		for (size_t k = nfields; k-- > 0;) {
			const struct header_field *f = &fields[k];
			if (taken[k] || f->name_len != names[i].len || strncasecmp(f->name, names[i].p, f->name_len) != 0)
				continue;
			taken[k] = true;
			dkim_canon_header(c, f->raw, f->raw_len, true, sink, arg);
			break;
		}
	}
}

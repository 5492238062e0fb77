/* dmarc_record.c — RFC 9989 §4.7/§4.8 policy record parsing: tags, values, reporting URIs. */
#include "auth/dmarc_record.h"

#include <string.h>
#include <strings.h>

#include "auth/tagval.h"
#include "util/addr.h"
#include "util/hex.h"

const char *dmarc_policy_str(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	}
	return "?";
}

const char *dmarc_align_str(enum dmarc_align a)
{
	switch (a) {
	case DMARC_ALIGN_RELAXED: return "r";
	case DMARC_ALIGN_STRICT: return "s";
	}
	return "?";
}

const char *dmarc_psd_str(enum dmarc_psd p)
{
	switch (p) {
	case DMARC_PSD_U: return "u";
	case DMARC_PSD_Y: return "y";
	case DMARC_PSD_N: return "n";
	}
	return "?";
}

const char *dmarc_fo_str(enum dmarc_fo f)
{
	switch (f) {
	case DMARC_FO_0: return "0";
	case DMARC_FO_1: return "1";
	case DMARC_FO_D: return "d";
	case DMARC_FO_S: return "s";
	}
	return "?";
}

const char *dmarc_record_error_str(enum dmarc_record_error e)
{
	switch (e) {
	case DMARC_RECORD_OK: return "ok";
	case DMARC_RECORD_NOT_DMARC: return "not_dmarc";
	case DMARC_RECORD_NO_POLICY: return "no_policy";
	}
	return "?";
}

const char *dmarc_record_warning_str(enum dmarc_record_warning w)
{
	switch (w) {
	case DMARC_WARN_P_MISSING: return "the record has no p tag";
	case DMARC_WARN_P_INVALID: return "p is not none, quarantine or reject";
	case DMARC_WARN_SP_INVALID: return "sp is not none, quarantine or reject";
	case DMARC_WARN_NP_INVALID: return "np is not none, quarantine or reject";
	case DMARC_WARN_P_NONE_BY_RUA: return "without a usable policy the record acts as p=none because rua is valid";
	case DMARC_WARN_T_INVALID: return "t is not y or n; n is used";
	case DMARC_WARN_PSD_INVALID: return "psd is not y, n or u; u is used";
	case DMARC_WARN_ADKIM_INVALID: return "adkim is not r or s; r is used";
	case DMARC_WARN_ASPF_INVALID: return "aspf is not r or s; r is used";
	case DMARC_WARN_FO_INVALID: return "fo is not a valid list of 0, 1, d and s; 0 is used";
	case DMARC_WARN_FO_WITHOUT_RUF: return "fo is ignored without ruf";
	case DMARC_WARN_URI_INVALID: return "a rua or ruf entry is not a valid URI (or a mailto: URI without one valid address)";
	case DMARC_WARN_URI_DROPPED: return "more rua or ruf URIs than are kept";
	case DMARC_WARN_PCT: return "pct is an RFC 7489 tag that RFC 9989 removed; it is ignored (t=y is its replacement)";
	case DMARC_WARN_HISTORIC: return "rf and ri are RFC 7489 tags that RFC 9989 removed; they are ignored";
	case DMARC_WARN_SKIPPED: return "a tag that does not parse, or a repeated tag, was skipped";
	case DMARC_WARN_UNKNOWN_TAG: return "an unknown tag was ignored";
	case DMARC_WARN_TOO_MANY_TAGS: return "the record has too many tags; the rest was not read";
	}
	return "?";
}

static bool is_wsp(char c)
{
	/* as tagval reads FWS in lenient mode */
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* The first tag called name, names compared without case; NULL when absent. */
static const struct tagval *find_tag(const struct tagval *tags, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (tags[i].name_len == len && strncasecmp(tags[i].name, name, len) == 0)
			return &tags[i];
	return NULL;
}

static bool is_known_tag(const struct tagval *t)
{
	static const char *const known[] = { "v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "rua", "ruf", "fo",
					     "pct", "rf", "ri" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t len = strlen(known[i]);
		if (t->name_len == len && strncasecmp(t->name, known[i], len) == 0)
			return true;
	}
	return false;
}

/* RFC 9989 §4.8 dmarc-request */
static bool parse_policy(const struct tagval *t, enum dmarc_policy *p_r)
{
	if (tagval_value_is(t, "none"))
		*p_r = DMARC_POLICY_NONE;
	else if (tagval_value_is(t, "quarantine"))
		*p_r = DMARC_POLICY_QUARANTINE;
	else if (tagval_value_is(t, "reject"))
		*p_r = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

/* RFC 9989 §4.8 dmarc-fo: "0" and "1" exclude each other, each value at most once. */
static bool parse_fo(const char *s, size_t len, unsigned *fo_r)
{
	unsigned fo = 0;
	size_t i = 0;
	for (;;) {
		while (i < len && is_wsp(s[i]))
			i++;
		if (i >= len)
			return false; /* an empty value, or one ending in ':' */
		unsigned bit;
		switch (lower(s[i])) {
		case '0': bit = DMARC_FO_0; break;
		case '1': bit = DMARC_FO_1; break;
		case 'd': bit = DMARC_FO_D; break;
		case 's': bit = DMARC_FO_S; break;
		default: return false;
		}
		if ((fo & bit) != 0)
			return false;
		fo |= bit;
		i++;
		while (i < len && is_wsp(s[i]))
			i++;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
	}
	if ((fo & DMARC_FO_0) != 0 && (fo & DMARC_FO_1) != 0)
		return false;
	*fo_r = fo;
	return true;
}

/* RFC 3986 §2.2/§2.3 characters, less the ones §4.8 wants encoded in a DMARC URI ("," and "!"). */
static bool is_uri_char(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return strchr("-._~:/?#[]@$&'()*+;=", c) != NULL && c != '\0';
}

/* Appends s (len octets) and a NUL to r->text; the offset in *off_r. */
static bool text_add(struct dmarc_record *r, const char *s, size_t len, uint16_t *off_r)
{
	if (len + 1 > sizeof(r->text) - r->text_len)
		return false;
	*off_r = (uint16_t)r->text_len;
	memcpy(r->text + r->text_len, s, len);
	r->text[r->text_len + len] = '\0';
	r->text_len += len + 1;
	return true;
}

/* One URI of a dmarc-urilist (WSP already trimmed). Returns whether it is valid; fills *mbox_r
 * with the decoded mailbox of a mailto: URI (empty otherwise) and *uri_len_r without the
 * obsolete size suffix. */
static bool uri_check(const char *s, size_t len, size_t *uri_len_r, char *mbox_r, size_t mbox_size)
{
	mbox_r[0] = '\0';
	/* §4.8 obs-dmarc-report-size = "!" 1*DIGIT [ "k" / "m" / "g" / "t" ]: ignored when found */
	const char *bang = memchr(s, '!', len);
	if (bang != NULL) {
		size_t i = (size_t)(bang - s) + 1, digits = 0;
		while (i < len && is_digit((unsigned char)s[i])) {
			i++;
			digits++;
		}
		if (i < len && strchr("kmgtKMGT", s[i]) != NULL && s[i] != '\0')
			i++;
		if (digits == 0 || i != len)
			return false; /* a literal "!" must be encoded */
		len = (size_t)(bang - s);
	}
	*uri_len_r = len;
	/* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" and something */
	size_t i = 0;
	if (len == 0 || !is_alpha((unsigned char)s[0]))
		return false;
	while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) || s[i] == '+' ||
			   s[i] == '-' || s[i] == '.'))
		i++;
	if (i >= len || s[i] != ':' || i + 1 == len)
		return false;
	size_t scheme_len = i++;
	size_t rest = i;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= len || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
				return false;
			i += 2;
		} else if (!is_uri_char(c)) {
			return false;
		}
	}
	if (scheme_len != 6 || strncasecmp(s, "mailto", 6) != 0)
		return true;

	/* RFC 6068 §2: mailto:addr-spec, percent-encoded, then optional ?headers (ignored here) */
	char decoded[ADDR_TEXT_MAX + 1];
	size_t n = 0;
	for (i = rest; i < len && s[i] != '?'; i++) {
		if (n >= ADDR_TEXT_MAX)
			return false;
		char c = s[i];
		if (c == '%') {
			c = (char)(hex_digit_value((unsigned char)s[i + 1]) << 4 | hex_digit_value((unsigned char)s[i + 2]));
			i += 2;
		}
		/* one mailbox per URI: a decoded ',' would list several, a NUL would cut it short */
		if (c == ',' || c == '\0')
			return false;
		decoded[n++] = c;
	}
	struct addr a;
	const char *err;
	if (addr_parse_mailbox(decoded, n, ADDR_ALLOW_UTF8, &a, &err) != ADDR_OK || a.is_literal)
		return false;
	if (strlen(a.text) >= mbox_size)
		return false;
	memcpy(mbox_r, a.text, strlen(a.text) + 1);
	return true;
}

/* §4.8 dmarc-urilist = uri *(*WSP "," *WSP uri); an invalid entry is skipped (and noted). */
static void parse_uri_list(struct dmarc_record *r, const struct tagval *t, struct dmarc_uri *list,
			   size_t *count_r, size_t *valid_r)
{
	size_t i = 0;
	const char *v = t->value;
	size_t len = t->value_len;
	while (i <= len) {
		const char *comma = i < len ? memchr(v + i, ',', len - i) : NULL;
		size_t end = comma != NULL ? (size_t)(comma - v) : len;
		size_t a = i, b = end;
		while (a < b && is_wsp(v[a]))
			a++;
		while (b > a && is_wsp(v[b - 1]))
			b--;
		size_t uri_len;
		char mbox[ADDR_TEXT_MAX + 1];
		if (a == b || !uri_check(v + a, b - a, &uri_len, mbox, sizeof(mbox))) {
			r->warnings |= DMARC_WARN_URI_INVALID;
		} else {
			(*valid_r)++;
			struct dmarc_uri u = { .addr = DMARC_URI_NO_ADDR };
			size_t saved = r->text_len;
			if (*count_r >= DMARC_URIS_MAX || !text_add(r, v + a, uri_len, &u.uri) ||
			    (mbox[0] != '\0' && !text_add(r, mbox, strlen(mbox), &u.addr))) {
				r->text_len = saved;
				r->warnings |= DMARC_WARN_URI_DROPPED;
			} else {
				list[(*count_r)++] = u;
			}
		}
		if (comma == NULL)
			break;
		i = end + 1;
	}
}

/* Reads a one-letter value from set ("rs", "yn", "ynu"); returns its index or -1. */
static int parse_letter(const struct tagval *t, const char *set)
{
	if (t->value_len != 1)
		return -1;
	const char *p = strchr(set, lower(t->value[0]));
	return p != NULL && t->value[0] != '\0' ? (int)(p - set) : -1;
}

static void parse_pct(struct dmarc_record *r, const struct tagval *t)
{
	r->warnings |= DMARC_WARN_PCT;
	int v = 0;
	if (t->value_len == 0 || t->value_len > 3)
		return;
	for (size_t i = 0; i < t->value_len; i++) {
		if (!is_digit((unsigned char)t->value[i]))
			return;
		v = v * 10 + (t->value[i] - '0');
	}
	if (v <= 100)
		r->pct = v;
}

/* Counts the non-empty tag-specs, to notice the ones lenient parsing skipped. */
static size_t count_specs(const char *s, size_t len)
{
	size_t n = 0;
	bool content = false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ';') {
			n += content;
			content = false;
		} else if (!is_wsp(s[i])) {
			content = true;
		}
	}
	return n + content;
}

static void record_defaults(struct dmarc_record *r)
{
	memset(r, 0, sizeof(*r));
	r->p = r->sp = r->np = DMARC_POLICY_NONE;
	r->psd = DMARC_PSD_U;
	r->adkim = r->aspf = DMARC_ALIGN_RELAXED;
	r->fo = DMARC_FO_0;
	r->pct = -1;
}

enum dmarc_record_error dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r,
					   const char **error_r)
{
	struct tagval tags[TAGVAL_MAX];
	size_t n = 0;
	const char *err = NULL;

	record_defaults(r);
	enum tagval_error te = tagval_parse(txt, len, TAGVAL_LENIENT, tags, TAGVAL_MAX, &n, &err);

	/* §4.7 v: the first tag, value "DMARC1" exactly, or the whole record is ignored */
	size_t first = 0;
	while (first < len && is_wsp(txt[first]))
		first++;
	if (n == 0 || tags[0].name != txt + first || tags[0].name_len != 1 || lower(tags[0].name[0]) != 'v') {
		*error_r = "the record does not start with a v tag";
		return DMARC_RECORD_NOT_DMARC;
	}
	if (tags[0].value_len != 6 || memcmp(tags[0].value, "DMARC1", 6) != 0) {
		*error_r = "the v tag is not \"DMARC1\"";
		return DMARC_RECORD_NOT_DMARC;
	}
	if (te == TAGVAL_TOO_MANY)
		r->warnings |= DMARC_WARN_TOO_MANY_TAGS;
	else if (count_specs(txt, len) > n)
		r->warnings |= DMARC_WARN_SKIPPED;
	for (size_t i = 1; i < n; i++)
		if (!is_known_tag(&tags[i]))
			r->warnings |= DMARC_WARN_UNKNOWN_TAG;

	const struct tagval *t;
	bool bad_policy = false;
	if ((t = find_tag(tags, n, "p")) == NULL) {
		r->warnings |= DMARC_WARN_P_MISSING;
		bad_policy = true;
	} else if (!(r->p_given = parse_policy(t, &r->p))) {
		r->warnings |= DMARC_WARN_P_INVALID;
		bad_policy = true;
	}
	if ((t = find_tag(tags, n, "sp")) != NULL && !(r->sp_given = parse_policy(t, &r->sp))) {
		r->warnings |= DMARC_WARN_SP_INVALID;
		bad_policy = true;
	}
	if ((t = find_tag(tags, n, "np")) != NULL && !(r->np_given = parse_policy(t, &r->np))) {
		r->warnings |= DMARC_WARN_NP_INVALID;
		bad_policy = true;
	}
	int k;
	if ((t = find_tag(tags, n, "t")) != NULL) {
		if ((k = parse_letter(t, "ny")) < 0)
			r->warnings |= DMARC_WARN_T_INVALID;
		else
			r->testing = k == 1;
	}
	if ((t = find_tag(tags, n, "psd")) != NULL) {
		static const enum dmarc_psd psd[] = { DMARC_PSD_U, DMARC_PSD_Y, DMARC_PSD_N };
		if ((k = parse_letter(t, "uyn")) < 0)
			r->warnings |= DMARC_WARN_PSD_INVALID;
		else
			r->psd = psd[k];
	}
	if ((t = find_tag(tags, n, "adkim")) != NULL) {
		if ((k = parse_letter(t, "rs")) < 0)
			r->warnings |= DMARC_WARN_ADKIM_INVALID;
		else
			r->adkim = k == 1 ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
	}
	if ((t = find_tag(tags, n, "aspf")) != NULL) {
		if ((k = parse_letter(t, "rs")) < 0)
			r->warnings |= DMARC_WARN_ASPF_INVALID;
		else
			r->aspf = k == 1 ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
	}
	if ((t = find_tag(tags, n, "rua")) != NULL)
		parse_uri_list(r, t, r->rua, &r->rua_count, &r->rua_valid);
	if ((t = find_tag(tags, n, "ruf")) != NULL)
		parse_uri_list(r, t, r->ruf, &r->ruf_count, &r->ruf_valid);
	if ((t = find_tag(tags, n, "fo")) != NULL) {
		if (!parse_fo(t->value, t->value_len, &r->fo))
			r->warnings |= DMARC_WARN_FO_INVALID;
		/* §4.7 fo: "MUST be ignored if a ruf tag is not also specified" */
		if (find_tag(tags, n, "ruf") == NULL)
			r->warnings |= DMARC_WARN_FO_WITHOUT_RUF;
	}
	if ((t = find_tag(tags, n, "pct")) != NULL)
		parse_pct(r, t);
	if (find_tag(tags, n, "rf") != NULL || find_tag(tags, n, "ri") != NULL)
		r->warnings |= DMARC_WARN_HISTORIC;

	if (bad_policy) {
		/* §4.10.1: no valid p, or an invalid sp or np: p=none when rua is valid, else nothing */
		r->p = r->sp = r->np = DMARC_POLICY_NONE;
		if (r->rua_valid == 0) {
			*error_r = (r->warnings & DMARC_WARN_P_MISSING) != 0
				? "the record has no p tag and no valid rua"
				: "the record has an invalid p, sp or np and no valid rua";
			return DMARC_RECORD_NO_POLICY;
		}
		r->warnings |= DMARC_WARN_P_NONE_BY_RUA;
		return DMARC_RECORD_OK;
	}
	/* §4.7 sp: "If ... absent ..., the policy specified by the p tag MUST be applied for
	 * subdomains"; np: absent → sp if present, else p */
	if (!r->sp_given)
		r->sp = r->p;
	if (!r->np_given)
		r->np = r->sp;
	return DMARC_RECORD_OK;
}

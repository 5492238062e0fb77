/* parse.c — owns the syntax of SMTP command lines and of the MAIL, RCPT, BDAT and EHLO/HELO arguments
 * (RFC 5321 §4.1, RFC 1870, RFC 3030, RFC 3461 §4, RFC 4954 §5, RFC 6152, RFC 6531, RFC 8689 §2).
 * Pure: no I/O, no state. */
#include "smtp/parse.h"

#include <string.h>

enum smtp_arg_rule {
	SMTP_ARG_NONE,     /* an argument is a syntax error */
	SMTP_ARG_OPTIONAL,
	SMTP_ARG_REQUIRED, /* a missing argument is a syntax error */
};

static const struct smtp_verb_info {
	const char *name;
	enum smtp_arg_rule arg;
} smtp_verbs[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = { "UNKNOWN", SMTP_ARG_OPTIONAL },
	/* RFC 5321 §4.1.1.1: "EHLO" SP ( Domain / address-literal ), likewise HELO */
	[SMTP_VERB_HELO] = { "HELO", SMTP_ARG_REQUIRED },
	[SMTP_VERB_EHLO] = { "EHLO", SMTP_ARG_REQUIRED },
	[SMTP_VERB_MAIL] = { "MAIL", SMTP_ARG_REQUIRED },
	[SMTP_VERB_RCPT] = { "RCPT", SMTP_ARG_REQUIRED },
	[SMTP_VERB_DATA] = { "DATA", SMTP_ARG_NONE },
	[SMTP_VERB_BDAT] = { "BDAT", SMTP_ARG_REQUIRED },
	/* RFC 5321 §4.1.1.5: rset = "RSET" CRLF */
	[SMTP_VERB_RSET] = { "RSET", SMTP_ARG_NONE },
	/* RFC 5321 §4.1.1.9: noop = "NOOP" [ SP String ] CRLF */
	[SMTP_VERB_NOOP] = { "NOOP", SMTP_ARG_OPTIONAL },
	[SMTP_VERB_QUIT] = { "QUIT", SMTP_ARG_NONE },
	/* VRFY and EXPN require a string (RFC 5321 §4.1.1.6, §4.1.1.7), but they are answered with
	 * 252/502 whatever follows, so a missing string is not worth a 501. */
	[SMTP_VERB_VRFY] = { "VRFY", SMTP_ARG_OPTIONAL },
	[SMTP_VERB_EXPN] = { "EXPN", SMTP_ARG_OPTIONAL },
	[SMTP_VERB_HELP] = { "HELP", SMTP_ARG_OPTIONAL },
	/* RFC 3207 §4: "STARTTLS" with no parameters */
	[SMTP_VERB_STARTTLS] = { "STARTTLS", SMTP_ARG_NONE },
	/* RFC 4954 §4: "AUTH" SP sasl-mech [SP initial-response] */
	[SMTP_VERB_AUTH] = { "AUTH", SMTP_ARG_REQUIRED },
};

static enum smtp_parse_error smtp_fail(const char **error_r, enum smtp_parse_error e, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return e;
}

static bool smtp_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool smtp_is_alnum(int c)
{
	return smtp_is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* ASCII-only case-insensitive comparison of n octets of s with the upper-case word w. */
static bool smtp_ascii_caseeq(const char *s, const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (c != (unsigned char)w[i])
			return false;
	}
	return true;
}

/* s[0, n) equals the upper-case word w, case-insensitively. */
static bool smtp_word_eq(const char *s, size_t n, const char *w)
{
	return n == strlen(w) && smtp_ascii_caseeq(s, w, n);
}

/* 1 to max_digits DIGITs that fit in a uint64_t. */
static bool smtp_number_parse(const char *s, size_t n, size_t max_digits, uint64_t *v_r)
{
	uint64_t v = 0;

	if (n == 0 || n > max_digits)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!smtp_is_digit((unsigned char)s[i]))
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

const char *smtp_verb_str(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_VERB_COUNT)
		return smtp_verbs[SMTP_VERB_UNKNOWN].name;
	return smtp_verbs[v].name;
}

/* RFC 5321 §4.1.1: verb [SP argument]; verbs are case-insensitive. cmd_r->verb is set as soon as the
 * verb is known, so a caller can name it in a reply even when the arguments are wrong. */
enum smtp_parse_error smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd_r, const char **error_r)
{
	cmd_r->verb = SMTP_VERB_UNKNOWN;
	cmd_r->arg = "";
	cmd_r->arg_len = 0;

	/* RFC 5321 §4.5.3.1.4: at most 512 octets including the CRLF; MAIL and RCPT more (below) */
	if (len > SMTP_CMD_LINE_MAX_PARAMS - 2)
		return smtp_fail(error_r, SMTP_PARSE_TOO_LONG, "command line too long");
	/* RFC 5321 §2.3.8: CR and LF only as the line ending; no other control octet is meaningful in a
	 * command, and NUL would truncate whatever later treats the argument as a C string. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "control character in command");
	}

	size_t verb_len = 0;
	while (verb_len < len && line[verb_len] != ' ')
		verb_len++;
	enum smtp_verb verb = SMTP_VERB_UNKNOWN;
	for (unsigned v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		if (smtp_word_eq(line, verb_len, smtp_verbs[v].name)) {
			verb = (enum smtp_verb)v;
			break;
		}
	}
	if (verb == SMTP_VERB_UNKNOWN)
		return smtp_fail(error_r, SMTP_PARSE_UNKNOWN, "unknown command");
	cmd_r->verb = verb;
	/* RFC 3461 §4: only MAIL and RCPT grow with the DSN parameters */
	if (len > SMTP_CMD_LINE_MAX - 2 && verb != SMTP_VERB_MAIL && verb != SMTP_VERB_RCPT)
		return smtp_fail(error_r, SMTP_PARSE_TOO_LONG, "command line too long");

	/* one or more SP before the argument; trailing SP removed */
	size_t start = verb_len, end = len;
	while (start < len && line[start] == ' ')
		start++;
	while (end > start && line[end - 1] == ' ')
		end--;
	if (end > start) {
		cmd_r->arg = line + start;
		cmd_r->arg_len = end - start;
	}

	if (smtp_verbs[verb].arg == SMTP_ARG_NONE && cmd_r->arg_len > 0)
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "this command takes no argument");
	if (smtp_verbs[verb].arg == SMTP_ARG_REQUIRED && cmd_r->arg_len == 0)
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "this command needs an argument");
	return SMTP_PARSE_OK;
}

/* RFC 5321 §4.1.1.1: the EHLO/HELO argument is one ASCII Domain or address-literal (U-labels are not
 * allowed: SMTPUTF8 is not negotiated yet). */
enum smtp_parse_error smtp_helo_parse(const char *arg, size_t len, const char **error_r)
{
	const char *aerr = NULL;

	if (addr_parse_domain(arg, len, 0, &aerr) != ADDR_OK)
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, aerr);
	return SMTP_PARSE_OK;
}

struct smtp_param {
	const char *key;
	size_t key_len;
	const char *value; /* NULL without "=" */
	size_t value_len;
};

/* RFC 5321 §4.1.2: Mail-parameters = esmtp-param *(SP esmtp-param);
 * esmtp-param = esmtp-keyword ["=" esmtp-value]; esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
 * esmtp-value = 1*(%d33-60 / %d62-126), plus UTF8-non-ascii (RFC 6531 §3.3; its UTF-8 is not checked
 * here since no supported parameter accepts it). Reads the parameter after *pos, which must be at the
 * end of the arguments or at one or more SP. Returns 1 with *p_r filled, 0 at the end, -1 on a syntax
 * error. */
static int smtp_param_next(const char *s, size_t len, size_t *pos, struct smtp_param *p_r, const char **error_r)
{
	size_t i = *pos;

	if (i < len && s[i] != ' ') {
		smtp_fail(error_r, SMTP_PARSE_SYNTAX, "expected a space after the path");
		return -1;
	}
	while (i < len && s[i] == ' ')
		i++;
	if (i == len) {
		*pos = i;
		return 0;
	}
	size_t start = i;
	while (i < len && s[i] != ' ')
		i++;
	*pos = i;

	const char *tok = s + start, *eq = memchr(tok, '=', i - start);
	memset(p_r, 0, sizeof(*p_r));
	p_r->key = tok;
	p_r->key_len = eq != NULL ? (size_t)(eq - tok) : i - start;
	if (p_r->key_len == 0 || !smtp_is_alnum((unsigned char)tok[0])) {
		smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid parameter keyword");
		return -1;
	}
	for (size_t k = 1; k < p_r->key_len; k++) {
		if (!smtp_is_alnum((unsigned char)tok[k]) && tok[k] != '-') {
			smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid parameter keyword");
			return -1;
		}
	}
	if (eq == NULL)
		return 1;
	p_r->value = eq + 1;
	p_r->value_len = i - start - p_r->key_len - 1;
	if (p_r->value_len == 0) {
		smtp_fail(error_r, SMTP_PARSE_SYNTAX, "empty parameter value");
		return -1;
	}
	for (size_t k = 0; k < p_r->value_len; k++) {
		unsigned char c = (unsigned char)p_r->value[k];
		if (c < 33 || c == '=' || c == 0x7f) {
			smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid character in parameter value");
			return -1;
		}
	}
	return 1;
}

static int smtp_hex_value(int c)
{
	if (smtp_is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3461 §4 xtext, as used by RFC 4954 §5 AUTH=: xchar = %d33-42 / %d44-60 / %d62-126;
 * hexchar = "+" 2(DIGIT / "A"-"F") (upper case only). The decoded value is an addr-spec or "<>", so
 * here it must be printable ASCII: a decoded CR, LF or NUL could otherwise reach a log or a header. */
static bool smtp_xtext_decode(const char *s, size_t n, char *out, size_t out_size)
{
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		int c = (unsigned char)s[i];
		if (c == '+') {
			if (n - i < 3)
				return false;
			int hi = smtp_hex_value((unsigned char)s[i + 1]), lo = smtp_hex_value((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 3;
		} else if (c >= 33 && c <= 126 && c != '=') {
			i++;
		} else {
			return false;
		}
		if (c < 0x20 || c > 0x7e || o + 1 >= out_size)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

enum smtp_mail_seen {
	SMTP_SEEN_SIZE = 1 << 0,
	SMTP_SEEN_BODY = 1 << 1,
	SMTP_SEEN_SMTPUTF8 = 1 << 2,
	SMTP_SEEN_AUTH = 1 << 3,
	SMTP_SEEN_RET = 1 << 4,
	SMTP_SEEN_ENVID = 1 << 5,
	SMTP_SEEN_REQUIRETLS = 1 << 6,
};

/* One MAIL parameter; *seen tracks duplicates, which are syntax errors. */
static enum smtp_parse_error smtp_mail_param(const struct smtp_param *p, unsigned *seen, struct smtp_mail_args *m,
					     const char **error_r)
{
	unsigned bit;

	if (smtp_word_eq(p->key, p->key_len, "SIZE"))
		bit = SMTP_SEEN_SIZE;
	else if (smtp_word_eq(p->key, p->key_len, "BODY"))
		bit = SMTP_SEEN_BODY;
	else if (smtp_word_eq(p->key, p->key_len, "SMTPUTF8"))
		bit = SMTP_SEEN_SMTPUTF8;
	else if (smtp_word_eq(p->key, p->key_len, "AUTH"))
		bit = SMTP_SEEN_AUTH;
	else if (smtp_word_eq(p->key, p->key_len, "RET"))
		bit = SMTP_SEEN_RET;
	else if (smtp_word_eq(p->key, p->key_len, "ENVID"))
		bit = SMTP_SEEN_ENVID;
	else if (smtp_word_eq(p->key, p->key_len, "REQUIRETLS"))
		bit = SMTP_SEEN_REQUIRETLS;
	else
		return smtp_fail(error_r, SMTP_PARSE_BAD_PARAM, "unsupported MAIL parameter");
	if (*seen & bit)
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "MAIL parameter given twice");
	*seen |= bit;

	switch (bit) {
	case SMTP_SEEN_SIZE:
		/* RFC 1870 §3: size-value = 1*20DIGIT */
		if (p->value == NULL || !smtp_number_parse(p->value, p->value_len, 20, &m->size))
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid SIZE value");
		m->has_size = true;
		break;
	case SMTP_SEEN_BODY:
		/* RFC 6152 §2: BODY=7BIT / BODY=8BITMIME; RFC 3030 §3 BINARYMIME is known but not offered */
		if (p->value != NULL && smtp_word_eq(p->value, p->value_len, "7BIT"))
			m->body = SMTP_BODY_7BIT;
		else if (p->value != NULL && smtp_word_eq(p->value, p->value_len, "8BITMIME"))
			m->body = SMTP_BODY_8BITMIME;
		else if (p->value != NULL && smtp_word_eq(p->value, p->value_len, "BINARYMIME"))
			return smtp_fail(error_r, SMTP_PARSE_BAD_PARAM, "BODY=BINARYMIME is not supported");
		else
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid BODY value");
		break;
	case SMTP_SEEN_SMTPUTF8:
		/* RFC 6531 §3.4: SMTPUTF8 takes no value */
		if (p->value != NULL)
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "SMTPUTF8 takes no value");
		m->smtputf8 = true;
		break;
	case SMTP_SEEN_RET:
		/* RFC 3461 §4.3: ret-value = "FULL" / "HDRS" */
		if (p->value != NULL && smtp_word_eq(p->value, p->value_len, "FULL"))
			m->ret = SMTP_DSN_RET_FULL;
		else if (p->value != NULL && smtp_word_eq(p->value, p->value_len, "HDRS"))
			m->ret = SMTP_DSN_RET_HDRS;
		else
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid RET value (FULL or HDRS)");
		break;
	case SMTP_SEEN_ENVID:
		/* RFC 3461 §4.4: ENVID=xtext, at most 100 octets, decoding to printable US-ASCII */
		if (p->value == NULL || p->value_len > SMTP_ENVID_MAX)
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid ENVID value (xtext, at most 100 octets)");
		if (!smtp_xtext_decode(p->value, p->value_len, m->envid, sizeof(m->envid)))
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid ENVID value (bad xtext)");
		m->has_envid = true;
		break;
	case SMTP_SEEN_REQUIRETLS:
		/* RFC 8689 §2: the REQUIRETLS MAIL option has no value */
		if (p->value != NULL)
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "REQUIRETLS takes no value");
		m->requiretls = true;
		break;
	default:
		/* RFC 4954 §5: AUTH=xtext ("<>" is plain xtext) */
		if (p->value == NULL || !smtp_xtext_decode(p->value, p->value_len, m->auth, sizeof(m->auth)))
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid AUTH value");
		m->has_auth = true;
		break;
	}
	return SMTP_PARSE_OK;
}

/* RFC 5321 §4.1.1.2: "MAIL FROM:" Reverse-path [SP Mail-parameters] */
enum smtp_parse_error smtp_mail_parse(const char *arg, size_t len, struct smtp_mail_args *m_r, const char **error_r)
{
	memset(m_r, 0, sizeof(*m_r));
	if (len < 5 || !smtp_ascii_caseeq(arg, "FROM:", 5))
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "expected FROM:<address>");
	/* not in the grammar, but commonly sent: "MAIL FROM: <a@b>" */
	size_t pos = 5;
	while (pos < len && arg[pos] == ' ')
		pos++;

	/* UTF-8 is parsed permissively here and checked below, once SMTPUTF8 is known */
	size_t used = 0;
	const char *aerr = NULL;
	enum addr_error ae = addr_parse_path(arg + pos, len - pos, ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8, &m_r->from,
					     &used, &aerr);
	if (ae != ADDR_OK)
		return smtp_fail(error_r, SMTP_PARSE_BAD_SENDER, aerr);
	pos += used;

	struct smtp_param p;
	unsigned seen = 0;
	int r;
	while ((r = smtp_param_next(arg, len, &pos, &p, error_r)) > 0) {
		enum smtp_parse_error e = smtp_mail_param(&p, &seen, m_r, error_r);
		if (e != SMTP_PARSE_OK)
			return e;
	}
	if (r < 0)
		return SMTP_PARSE_SYNTAX;

	/* RFC 6531 §3.4, §3.5: a UTF-8 reverse-path needs the SMTPUTF8 parameter (553 5.6.7) */
	if (m_r->from.is_utf8 && !m_r->smtputf8)
		return smtp_fail(error_r, SMTP_PARSE_NEED_UTF8, "UTF-8 address without SMTPUTF8");
	return SMTP_PARSE_OK;
}

/* RFC 3461 §4.1: notify-esmtp-value = "NEVER" / 1#notify-list-element, where notify-list-element is
 * "SUCCESS" / "FAILURE" / "DELAY", case-insensitive; NEVER stands alone ("NEVER,NEVER" is not
 * alone). Another value listed twice is harmless and taken once. */
static bool smtp_notify_parse(const char *s, size_t n, unsigned *bits_r)
{
	unsigned bits = 0, elements = 0;

	for (size_t i = 0; i <= n; elements++) {
		size_t start = i;
		while (i < n && s[i] != ',')
			i++;
		const char *w = s + start;
		size_t wl = i - start;
		if (smtp_word_eq(w, wl, "SUCCESS"))
			bits |= SMTP_DSN_NOTIFY_SUCCESS;
		else if (smtp_word_eq(w, wl, "FAILURE"))
			bits |= SMTP_DSN_NOTIFY_FAILURE;
		else if (smtp_word_eq(w, wl, "DELAY"))
			bits |= SMTP_DSN_NOTIFY_DELAY;
		else if (smtp_word_eq(w, wl, "NEVER"))
			bits |= SMTP_DSN_NOTIFY_NEVER;
		else
			return false; /* an unknown word, or an empty element ("FAILURE,", ",DELAY") */
		i++; /* past the comma (or the end) */
	}
	if ((bits & SMTP_DSN_NOTIFY_NEVER) && elements != 1)
		return false;
	*bits_r = bits;
	return true;
}

/* RFC 3461 §4.2: orcpt-parameter = "ORCPT=" addr-type ";" xtext; addr-type = atom (registered names
 * such as "rfc822" and RFC 6533's "utf-8" are letters, digits and hyphens: only those are taken). The
 * decoded address must be printable US-ASCII (§4.2), which smtp_xtext_decode checks. */
static bool smtp_orcpt_parse(const char *s, size_t n, char *out, size_t out_size)
{
	const char *semi = memchr(s, ';', n);
	if (semi == NULL || semi == s || n > SMTP_ORCPT_MAX)
		return false;
	size_t tl = (size_t)(semi - s);
	for (size_t i = 0; i < tl; i++) {
		if (!smtp_is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	if (tl + 2 > out_size || tl + 1 == n)
		return false; /* no address after the type */
	memcpy(out, s, tl + 1);
	return smtp_xtext_decode(semi + 1, n - tl - 1, out + tl + 1, out_size - tl - 1);
}

enum smtp_rcpt_seen {
	SMTP_SEEN_NOTIFY = 1 << 0,
	SMTP_SEEN_ORCPT = 1 << 1,
};

/* One RCPT parameter; a repeated one is a syntax error (RFC 3461 §4: each at most once). */
static enum smtp_parse_error smtp_rcpt_param(const struct smtp_param *p, unsigned *seen, struct smtp_rcpt_args *r,
					     const char **error_r)
{
	unsigned bit;

	if (smtp_word_eq(p->key, p->key_len, "NOTIFY"))
		bit = SMTP_SEEN_NOTIFY;
	else if (smtp_word_eq(p->key, p->key_len, "ORCPT"))
		bit = SMTP_SEEN_ORCPT;
	else
		return smtp_fail(error_r, SMTP_PARSE_BAD_PARAM, "unsupported RCPT parameter");
	if (*seen & bit)
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "RCPT parameter given twice");
	*seen |= bit;
	if (bit == SMTP_SEEN_NOTIFY) {
		if (p->value == NULL || !smtp_notify_parse(p->value, p->value_len, &r->notify))
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX,
					 "invalid NOTIFY value (NEVER, or a list of SUCCESS, FAILURE, DELAY)");
		return SMTP_PARSE_OK;
	}
	if (p->value == NULL || !smtp_orcpt_parse(p->value, p->value_len, r->orcpt, sizeof(r->orcpt)))
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid ORCPT value (addr-type;xtext, at most 500 octets)");
	r->has_orcpt = true;
	return SMTP_PARSE_OK;
}

/* RFC 5321 §4.1.1.3: "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
 * [SP Rcpt-parameters] */
enum smtp_parse_error smtp_rcpt_parse(const char *arg, size_t len, bool smtputf8, struct smtp_rcpt_args *r_r,
				      const char **error_r)
{
	memset(r_r, 0, sizeof(*r_r));
	if (len < 3 || !smtp_ascii_caseeq(arg, "TO:", 3))
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "expected TO:<address>");
	/* not in the grammar, but commonly sent: "RCPT TO: <a@b>" */
	size_t pos = 3;
	while (pos < len && arg[pos] == ' ')
		pos++;

	/* "<>" is not a forward-path: without ADDR_ALLOW_NULL the address parser rejects it */
	size_t used = 0;
	const char *aerr = NULL;
	enum addr_error ae = addr_parse_path(arg + pos, len - pos, ADDR_ALLOW_POSTMASTER | ADDR_ALLOW_UTF8, &r_r->to,
					     &used, &aerr);
	if (ae != ADDR_OK)
		return smtp_fail(error_r, SMTP_PARSE_BAD_RCPT, aerr);
	pos += used;

	struct smtp_param p;
	unsigned seen = 0;
	int r;
	while ((r = smtp_param_next(arg, len, &pos, &p, error_r)) > 0) {
		enum smtp_parse_error e = smtp_rcpt_param(&p, &seen, r_r, error_r);
		if (e != SMTP_PARSE_OK)
			return e;
	}
	if (r < 0)
		return SMTP_PARSE_SYNTAX;

	/* RFC 6531 §3.5: a UTF-8 forward-path needs SMTPUTF8 on the MAIL command (553 5.6.7) */
	if (r_r->to.is_utf8 && !smtputf8)
		return smtp_fail(error_r, SMTP_PARSE_NEED_UTF8, "UTF-8 address without SMTPUTF8");
	return SMTP_PARSE_OK;
}

/* RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]; chunk-size = 1*DIGIT;
 * end-marker = "LAST". At most 18 digits, so the size always fits. */
enum smtp_parse_error smtp_bdat_parse(const char *arg, size_t len, uint64_t *size_r, bool *last_r, const char **error_r)
{
	size_t digits = 0;

	*size_r = 0;
	*last_r = false;
	while (digits < len && smtp_is_digit((unsigned char)arg[digits]))
		digits++;
	uint64_t size;
	if (!smtp_number_parse(arg, digits, 18, &size))
		return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "invalid BDAT chunk size");
	bool last = false;
	if (digits < len) {
		if (len - digits != 5 || arg[digits] != ' ' || !smtp_ascii_caseeq(arg + digits + 1, "LAST", 4))
			return smtp_fail(error_r, SMTP_PARSE_SYNTAX, "expected BDAT <size> [LAST]");
		last = true;
	}
	*size_r = size;
	*last_r = last;
	return SMTP_PARSE_OK;
}

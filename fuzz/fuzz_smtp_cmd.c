/* fuzz_smtp_cmd.c — libFuzzer harness for src/smtp/parse.c: the input is one command line for
 * smtp_cmd_parse, whose argument then goes to the parser of its verb, as the session does it. The
 * argument parsers also get the raw input, to reach the octets that smtp_cmd_parse refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static void fuzz_check_text(const char *text, size_t size)
{
	size_t n = strnlen(text, size);
	FUZZ_CHECK(n < size && n <= ADDR_TEXT_MAX);
}

static void fuzz_check_mail(const char *arg, size_t len)
{
	struct smtp_mail_args m;
	const char *err = NULL;
	enum smtp_parse_error e = smtp_mail_parse(arg, len, &m, &err);
	fuzz_check_text(m.from.text, sizeof(m.from.text));
	fuzz_check_text(m.auth, sizeof(m.auth));
	if (e != SMTP_PARSE_OK) {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(e == SMTP_PARSE_SYNTAX || e == SMTP_PARSE_BAD_PARAM || e == SMTP_PARSE_BAD_SENDER ||
			   e == SMTP_PARSE_NEED_UTF8);
		return;
	}
	FUZZ_CHECK(!m.from.is_utf8 || m.smtputf8);
	FUZZ_CHECK(m.has_size || m.size == 0);
	FUZZ_CHECK(m.has_auth == (m.auth[0] != '\0'));
	for (const char *p = m.auth; *p != '\0'; p++)
		FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
	FUZZ_CHECK(m.body == SMTP_BODY_UNSPECIFIED || m.body == SMTP_BODY_7BIT || m.body == SMTP_BODY_8BITMIME);
	/* RFC 3461: RET is one of three, ENVID decodes to printable ASCII within its limit */
	FUZZ_CHECK(m.ret == SMTP_DSN_RET_UNSPECIFIED || m.ret == SMTP_DSN_RET_FULL || m.ret == SMTP_DSN_RET_HDRS);
	size_t el = strnlen(m.envid, sizeof(m.envid));
	FUZZ_CHECK(el < sizeof(m.envid) && el <= SMTP_ENVID_MAX && m.has_envid == (el > 0));
	for (size_t i = 0; i < el; i++)
		FUZZ_CHECK(m.envid[i] >= 0x20 && m.envid[i] < 0x7f);
}

static void fuzz_check_rcpt(const char *arg, size_t len)
{
	struct smtp_rcpt_args r, r8;
	const char *err = NULL;
	enum smtp_parse_error e = smtp_rcpt_parse(arg, len, false, &r, &err);
	enum smtp_parse_error e8 = smtp_rcpt_parse(arg, len, true, &r8, NULL);
	fuzz_check_text(r.to.text, sizeof(r.to.text));
	fuzz_check_text(r8.to.text, sizeof(r8.to.text));
	if (e == SMTP_PARSE_OK) {
		/* SMTPUTF8 only widens what is accepted */
		FUZZ_CHECK(e8 == SMTP_PARSE_OK && strcmp(r.to.text, r8.to.text) == 0);
		FUZZ_CHECK(!r.to.is_utf8);
	} else {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(e == SMTP_PARSE_SYNTAX || e == SMTP_PARSE_BAD_PARAM || e == SMTP_PARSE_BAD_RCPT ||
			   e == SMTP_PARSE_NEED_UTF8);
		/* only the UTF-8 check depends on SMTPUTF8, and it comes last */
		FUZZ_CHECK(e == SMTP_PARSE_NEED_UTF8 ? e8 == SMTP_PARSE_OK && r8.to.is_utf8 : e8 == e);
	}
	if (e8 == SMTP_PARSE_OK) {
		FUZZ_CHECK(!r8.to.is_null && r8.to.text[0] != '\0');
		/* RFC 3461 §4.1: NEVER only alone; §4.2: "type;address", printable ASCII, within 500 */
		FUZZ_CHECK((r8.notify & ~0xfu) == 0);
		FUZZ_CHECK(!(r8.notify & SMTP_DSN_NOTIFY_NEVER) || r8.notify == SMTP_DSN_NOTIFY_NEVER);
		size_t ol = strnlen(r8.orcpt, sizeof(r8.orcpt));
		FUZZ_CHECK(ol < sizeof(r8.orcpt) && ol <= SMTP_ORCPT_MAX && r8.has_orcpt == (ol > 0));
		FUZZ_CHECK(!r8.has_orcpt || (strchr(r8.orcpt, ';') != NULL && r8.orcpt[0] != ';'));
		for (size_t i = 0; i < ol; i++)
			FUZZ_CHECK(r8.orcpt[i] >= 0x20 && r8.orcpt[i] < 0x7f);
	}
}

static void fuzz_check_bdat(const char *arg, size_t len)
{
	uint64_t size = 1;
	bool last = true;
	const char *err = NULL;
	enum smtp_parse_error e = smtp_bdat_parse(arg, len, &size, &last, &err);
	if (e == SMTP_PARSE_OK)
		FUZZ_CHECK(size <= 999999999999999999ULL && len >= 1 && len <= 18 + 5);
	else
		FUZZ_CHECK(e == SMTP_PARSE_SYNTAX && err != NULL && size == 0 && !last);
}

static void fuzz_check_helo(const char *arg, size_t len)
{
	const char *err = NULL;
	enum smtp_parse_error e = smtp_helo_parse(arg, len, &err);
	if (e == SMTP_PARSE_OK) {
		FUZZ_CHECK(len > 0 && len <= ADDR_DOMAIN_MAX);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK((unsigned char)arg[i] > 0x20 && (unsigned char)arg[i] < 0x7f);
	} else {
		FUZZ_CHECK(e == SMTP_PARSE_SYNTAX && err != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd cmd;
	const char *err = NULL;

	enum smtp_parse_error e = smtp_cmd_parse(line, size, &cmd, &err);
	FUZZ_CHECK(cmd.arg != NULL && cmd.arg_len <= size);
	FUZZ_CHECK((unsigned)cmd.verb < SMTP_VERB_COUNT && smtp_verb_str(cmd.verb) != NULL);
	if (cmd.arg_len > 0) {
		/* the argument lies within the line, without its separating and trailing spaces */
		FUZZ_CHECK(cmd.arg > line && cmd.arg + cmd.arg_len <= line + size);
		FUZZ_CHECK(cmd.arg[-1] == ' ' && cmd.arg[0] != ' ' && cmd.arg[cmd.arg_len - 1] != ' ');
		for (size_t i = 0; i < cmd.arg_len; i++)
			FUZZ_CHECK((unsigned char)cmd.arg[i] >= 0x20 && cmd.arg[i] != 0x7f);
	}
	if (e != SMTP_PARSE_OK) {
		FUZZ_CHECK(err != NULL && (e == SMTP_PARSE_UNKNOWN || e == SMTP_PARSE_SYNTAX || e == SMTP_PARSE_TOO_LONG));
		FUZZ_CHECK(e != SMTP_PARSE_TOO_LONG || size > SMTP_CMD_LINE_MAX - 2);
		FUZZ_CHECK(e != SMTP_PARSE_UNKNOWN || cmd.verb == SMTP_VERB_UNKNOWN);
	} else {
		FUZZ_CHECK(cmd.verb != SMTP_VERB_UNKNOWN && size <= SMTP_CMD_LINE_MAX_PARAMS - 2);
		/* RFC 3461 §4: only MAIL and RCPT lines may be longer than 512 */
		FUZZ_CHECK(size <= SMTP_CMD_LINE_MAX - 2 || cmd.verb == SMTP_VERB_MAIL || cmd.verb == SMTP_VERB_RCPT);
		switch (cmd.verb) {
		case SMTP_VERB_MAIL: fuzz_check_mail(cmd.arg, cmd.arg_len); break;
		case SMTP_VERB_RCPT: fuzz_check_rcpt(cmd.arg, cmd.arg_len); break;
		case SMTP_VERB_BDAT: fuzz_check_bdat(cmd.arg, cmd.arg_len); break;
		case SMTP_VERB_HELO:
		case SMTP_VERB_EHLO: fuzz_check_helo(cmd.arg, cmd.arg_len); break;
		case SMTP_VERB_DATA:
		case SMTP_VERB_RSET:
		case SMTP_VERB_QUIT:
		case SMTP_VERB_STARTTLS: FUZZ_CHECK(cmd.arg_len == 0); break;
		default: break;
		}
	}

	/* the argument parsers on their own, with every octet the line may contain */
	fuzz_check_mail(line, size);
	fuzz_check_rcpt(line, size);
	fuzz_check_bdat(line, size);
	fuzz_check_helo(line, size);
	return 0;
}

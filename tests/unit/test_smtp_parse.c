/* test_smtp_parse.c — table-driven tests of src/smtp/parse.c: command lines, MAIL and RCPT arguments
 * and parameters, BDAT and EHLO/HELO, with hostile and length-delimited input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

/* ---- command lines ---- */

struct cmd_case {
	const char *in;
	size_t len;
	enum smtp_parse_error want;
	enum smtp_verb verb; /* also checked on argument errors */
	const char *arg;     /* on success */
};

#define CMD(lit, w, v, a) { .in = lit, .len = sizeof(lit) - 1, .want = w, .verb = v, .arg = a }
#define CMD_BAD(lit, w, v) { .in = lit, .len = sizeof(lit) - 1, .want = w, .verb = v }

static const struct cmd_case cmd_cases[] = {
	CMD("EHLO example.com", SMTP_PARSE_OK, SMTP_VERB_EHLO, "example.com"),
	CMD("ehlo example.com", SMTP_PARSE_OK, SMTP_VERB_EHLO, "example.com"),
	CMD("EhLo   example.com   ", SMTP_PARSE_OK, SMTP_VERB_EHLO, "example.com"),
	CMD("HELO x", SMTP_PARSE_OK, SMTP_VERB_HELO, "x"),
	CMD("MAIL FROM:<a@b>", SMTP_PARSE_OK, SMTP_VERB_MAIL, "FROM:<a@b>"),
	CMD("mail FROM:<a@b> SIZE=1", SMTP_PARSE_OK, SMTP_VERB_MAIL, "FROM:<a@b> SIZE=1"),
	CMD("MAIL FROM: <a@b>", SMTP_PARSE_OK, SMTP_VERB_MAIL, "FROM: <a@b>"),
	CMD("RCPT TO:<a@b>", SMTP_PARSE_OK, SMTP_VERB_RCPT, "TO:<a@b>"),
	CMD("DATA", SMTP_PARSE_OK, SMTP_VERB_DATA, ""),
	CMD("data", SMTP_PARSE_OK, SMTP_VERB_DATA, ""),
	CMD("DATA   ", SMTP_PARSE_OK, SMTP_VERB_DATA, ""),
	CMD("RSET", SMTP_PARSE_OK, SMTP_VERB_RSET, ""),
	CMD("QUIT", SMTP_PARSE_OK, SMTP_VERB_QUIT, ""),
	CMD("StartTLS", SMTP_PARSE_OK, SMTP_VERB_STARTTLS, ""),
	CMD("NOOP", SMTP_PARSE_OK, SMTP_VERB_NOOP, ""),
	CMD("NOOP hello there", SMTP_PARSE_OK, SMTP_VERB_NOOP, "hello there"),
	CMD("HELP", SMTP_PARSE_OK, SMTP_VERB_HELP, ""),
	CMD("HELP MAIL", SMTP_PARSE_OK, SMTP_VERB_HELP, "MAIL"),
	CMD("VRFY", SMTP_PARSE_OK, SMTP_VERB_VRFY, ""),
	CMD("VRFY <user@x>", SMTP_PARSE_OK, SMTP_VERB_VRFY, "<user@x>"),
	CMD("EXPN list", SMTP_PARSE_OK, SMTP_VERB_EXPN, "list"),
	CMD("AUTH PLAIN", SMTP_PARSE_OK, SMTP_VERB_AUTH, "PLAIN"),
	CMD("AUTH PLAIN dGVzdA==", SMTP_PARSE_OK, SMTP_VERB_AUTH, "PLAIN dGVzdA=="),
	CMD("BDAT 10 LAST", SMTP_PARSE_OK, SMTP_VERB_BDAT, "10 LAST"),
	CMD("NOOP \xc3\xbc", SMTP_PARSE_OK, SMTP_VERB_NOOP, "\xc3\xbc"),

	/* arguments where none is allowed (RFC 5321 §4.1.1.4, .5, .10; RFC 3207 §4) */
	CMD_BAD("DATA x", SMTP_PARSE_SYNTAX, SMTP_VERB_DATA),
	CMD_BAD("RSET x", SMTP_PARSE_SYNTAX, SMTP_VERB_RSET),
	CMD_BAD("QUIT now", SMTP_PARSE_SYNTAX, SMTP_VERB_QUIT),
	CMD_BAD("STARTTLS x", SMTP_PARSE_SYNTAX, SMTP_VERB_STARTTLS),
	/* missing arguments */
	CMD_BAD("EHLO", SMTP_PARSE_SYNTAX, SMTP_VERB_EHLO),
	CMD_BAD("EHLO    ", SMTP_PARSE_SYNTAX, SMTP_VERB_EHLO),
	CMD_BAD("HELO", SMTP_PARSE_SYNTAX, SMTP_VERB_HELO),
	CMD_BAD("MAIL", SMTP_PARSE_SYNTAX, SMTP_VERB_MAIL),
	CMD_BAD("RCPT ", SMTP_PARSE_SYNTAX, SMTP_VERB_RCPT),
	CMD_BAD("BDAT", SMTP_PARSE_SYNTAX, SMTP_VERB_BDAT),
	CMD_BAD("AUTH", SMTP_PARSE_SYNTAX, SMTP_VERB_AUTH),
	/* unknown verbs */
	CMD_BAD("", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD(" ", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD(" EHLO x", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("FOO", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("FOO bar", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("MAILFROM:<a@b>", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("MAIL:FROM:<a@b>", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("EHL", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("EHLOO x", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("STARTTLSX", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("UNKNOWN", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("QUIT\xc3\xbc", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	CMD_BAD("GET / HTTP/1.1", SMTP_PARSE_UNKNOWN, SMTP_VERB_UNKNOWN),
	/* control characters anywhere, before the verb is even looked at */
	CMD_BAD("EHLO\tx", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("EHLO x\r", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("QUIT\r\n", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("QUIT\n", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("QU\0IT", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("QUIT\0", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("NOOP \0", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("\0", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("NOOP \x7f", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("NOOP \x1b[31m", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("MAIL FROM:<a\r\n@b>", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("RCPT TO:<a@b>\0NOTIFY=NEVER", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("FOO\r", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("\x01", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
	CMD_BAD("\x1f", SMTP_PARSE_SYNTAX, SMTP_VERB_UNKNOWN),
};

static void test_cmd_table(void **state)
{
	char esc[256];
	(void)state;
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *c = &cmd_cases[i];
		char *in = test_dup(c->in, c->len);
		struct smtp_cmd cmd;
		const char *err = NULL;
		enum smtp_parse_error e = smtp_cmd_parse(in, c->len, &cmd, &err);
		if (e != c->want || cmd.verb != c->verb)
			fail_msg("cmd case %zu \"%s\": got %d verb %d (%s), want %d verb %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, cmd.verb, err ? err : "-", c->want,
				 c->verb);
		assert_non_null(cmd.arg);
		if (e == SMTP_PARSE_OK) {
			assert_int_equal(cmd.arg_len, strlen(c->arg));
			assert_memory_equal(cmd.arg, c->arg, cmd.arg_len);
			if (cmd.arg_len > 0)
				assert_true(cmd.arg >= in && cmd.arg + cmd.arg_len <= in + c->len);
		} else {
			assert_non_null(err);
		}
		bool has_ctl = false;
		for (size_t k = 0; k < c->len; k++)
			has_ctl |= (unsigned char)c->in[k] < 0x20 || c->in[k] == 0x7f;
		if (has_ctl)
			assert_string_equal(err, "control character in command");
		free(in);
	}
}

/* The control-character error is the one reported for every control octet. */
static void test_cmd_every_control_octet(void **state)
{
	char line[16];
	(void)state;
	for (int c = 0; c < 256; c++) {
		memcpy(line, "NOOP a", 6);
		line[5] = (char)c;
		struct smtp_cmd cmd;
		const char *err = NULL;
		enum smtp_parse_error e = smtp_cmd_parse(line, 6, &cmd, &err);
		if (c < 0x20 || c == 0x7f) {
			assert_int_equal(e, SMTP_PARSE_SYNTAX);
			assert_string_equal(err, "control character in command");
		} else {
			assert_int_equal(e, SMTP_PARSE_OK);
			assert_int_equal(cmd.verb, SMTP_VERB_NOOP);
		}
	}
}

/* RFC 5321 §4.5.3.1.4: 512 octets with the CRLF, so 510 without. */
static void test_cmd_line_length(void **state)
{
	char line[SMTP_CMD_LINE_MAX + 8];
	struct smtp_cmd cmd;
	const char *err = NULL;
	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	assert_int_equal(smtp_cmd_parse(line, SMTP_CMD_LINE_MAX - 2, &cmd, &err), SMTP_PARSE_OK);
	assert_int_equal(cmd.arg_len, SMTP_CMD_LINE_MAX - 2 - 5);
	assert_int_equal(smtp_cmd_parse(line, SMTP_CMD_LINE_MAX - 1, &cmd, &err), SMTP_PARSE_TOO_LONG);
	assert_int_equal(smtp_cmd_parse(line, sizeof(line), &cmd, &err), SMTP_PARSE_TOO_LONG);

	/* RFC 3461 §4: MAIL and RCPT may be 500 octets longer, nothing else */
	char big[SMTP_CMD_LINE_MAX_PARAMS + 8];
	memset(big, 'x', sizeof(big));
	memcpy(big, "RCPT ", 5);
	assert_int_equal(smtp_cmd_parse(big, SMTP_CMD_LINE_MAX_PARAMS - 2, &cmd, &err), SMTP_PARSE_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_RCPT);
	assert_int_equal(smtp_cmd_parse(big, SMTP_CMD_LINE_MAX_PARAMS - 1, &cmd, &err), SMTP_PARSE_TOO_LONG);
	memcpy(big, "MAIL ", 5);
	assert_int_equal(smtp_cmd_parse(big, SMTP_CMD_LINE_MAX_PARAMS - 2, &cmd, &err), SMTP_PARSE_OK);
	memcpy(big, "NOOP ", 5);
	assert_int_equal(smtp_cmd_parse(big, SMTP_CMD_LINE_MAX - 1, &cmd, &err), SMTP_PARSE_TOO_LONG);
	assert_int_equal(cmd.verb, SMTP_VERB_NOOP);
	memcpy(big, "EHLO ", 5);
	assert_int_equal(smtp_cmd_parse(big, SMTP_CMD_LINE_MAX_PARAMS - 2, &cmd, &err), SMTP_PARSE_TOO_LONG);
}

static void test_verb_str(void **state)
{
	static const char *const names[SMTP_VERB_COUNT] = {
		"UNKNOWN", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
		"NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH",
	};
	char line[64];
	(void)state;
	for (unsigned v = 0; v < SMTP_VERB_COUNT; v++)
		assert_string_equal(smtp_verb_str((enum smtp_verb)v), names[v]);
	assert_string_equal(smtp_verb_str(SMTP_VERB_COUNT), "UNKNOWN");

	/* every verb parses back from its name, in lower case too */
	for (unsigned v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		for (int lower = 0; lower < 2; lower++) {
			int n = snprintf(line, sizeof(line), "%s x", smtp_verb_str((enum smtp_verb)v));
			if (lower) {
				for (int i = 0; i < n; i++)
					line[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] + 32 : line[i]);
			}
			struct smtp_cmd cmd;
			smtp_cmd_parse(line, (size_t)n, &cmd, NULL);
			assert_int_equal(cmd.verb, v);
			smtp_cmd_parse(line, (size_t)n - 2, &cmd, NULL);
			assert_int_equal(cmd.verb, v);
		}
	}
}

/* ---- MAIL ---- */

struct mail_case {
	const char *in;
	size_t len;
	enum smtp_parse_error want;
	const char *from; /* on success */
	bool is_null;
	bool has_size;
	uint64_t size;
	enum smtp_body_type body;
	bool smtputf8;
	const char *auth; /* NULL: no AUTH= */
	enum smtp_dsn_ret ret;
	const char *envid; /* NULL: no ENVID= */
	bool requiretls;
};

#define MAIL_OK(lit, ...) { .in = lit, .len = sizeof(lit) - 1, .want = SMTP_PARSE_OK, __VA_ARGS__ }
#define MAIL_BAD(lit, w) { .in = lit, .len = sizeof(lit) - 1, .want = w }

static const struct mail_case mail_cases[] = {
	MAIL_OK("FROM:<a@b>", .from = "a@b"),
	MAIL_OK("from:<a@b>", .from = "a@b"),
	MAIL_OK("FrOm:<a@b>", .from = "a@b"),
	MAIL_OK("FROM: <a@b>", .from = "a@b"),
	MAIL_OK("FROM:   <a@b>", .from = "a@b"),
	MAIL_OK("FROM:<>", .from = "", .is_null = true),
	MAIL_OK("FROM:<> ", .from = "", .is_null = true),
	MAIL_OK("FROM:<@x.org:a@a>", .from = "a@a"),
	MAIL_OK("FROM:<\"a b\"@[IPv6:::1]>", .from = "\"a b\"@[IPv6:::1]"),
	/* RFC 1870 SIZE */
	MAIL_OK("FROM:<a@b> SIZE=1000", .from = "a@b", .has_size = true, .size = 1000),
	MAIL_OK("FROM:<a@b> size=0", .from = "a@b", .has_size = true, .size = 0),
	MAIL_OK("FROM:<a@b> SIZE=18446744073709551615", .from = "a@b", .has_size = true,
	     .size = UINT64_MAX),
	MAIL_OK("FROM:<a@b> SIZE=00000000000000000001", .from = "a@b", .has_size = true, .size = 1),
	MAIL_BAD("FROM:<a@b> SIZE=18446744073709551616", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=99999999999999999999", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=000000000000000000001", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=-1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=+1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=1k", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=0x10", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE= 1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE==1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=1=2", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=\xd9\xa1", SMTP_PARSE_SYNTAX),
	/* RFC 6152 BODY; RFC 3030 BINARYMIME is known but not offered */
	MAIL_OK("FROM:<a@b> BODY=8BITMIME", .from = "a@b", .body = SMTP_BODY_8BITMIME),
	MAIL_OK("FROM:<a@b> body=8bitmime", .from = "a@b", .body = SMTP_BODY_8BITMIME),
	MAIL_OK("FROM:<a@b> Body=7Bit", .from = "a@b", .body = SMTP_BODY_7BIT),
	MAIL_BAD("FROM:<a@b> BODY=BINARYMIME", SMTP_PARSE_BAD_PARAM),
	MAIL_BAD("FROM:<a@b> BODY=binarymime", SMTP_PARSE_BAD_PARAM),
	MAIL_BAD("FROM:<a@b> BODY=8BIT", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> BODY=8BITMIMEX", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> BODY", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> BODY=", SMTP_PARSE_SYNTAX),
	/* RFC 6531 SMTPUTF8 */
	MAIL_OK("FROM:<a@b> SMTPUTF8", .from = "a@b", .smtputf8 = true),
	MAIL_OK("FROM:<a@b> smtputf8", .from = "a@b", .smtputf8 = true),
	MAIL_BAD("FROM:<a@b> SMTPUTF8=yes", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SMTPUTF8=", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<ü@b>", SMTP_PARSE_NEED_UTF8),
	MAIL_BAD("FROM:<a@bücher.de>", SMTP_PARSE_NEED_UTF8),
	MAIL_BAD("FROM:<ü@b> SIZE=1", SMTP_PARSE_NEED_UTF8),
	MAIL_OK("FROM:<ü@b> SMTPUTF8", .from = "ü@b", .smtputf8 = true),
	MAIL_OK("FROM:<用户@例子.广告> BODY=8BITMIME SMTPUTF8", .from = "用户@例子.广告",
	     .body = SMTP_BODY_8BITMIME, .smtputf8 = true),
	MAIL_BAD("FROM:<\xff@b> SMTPUTF8", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<\xff@b>", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<\xc0\xaf@b> SMTPUTF8", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<\xed\xa0\x80@b> SMTPUTF8", SMTP_PARSE_BAD_SENDER),
	/* RFC 4954 §5 AUTH=xtext */
	MAIL_OK("FROM:<a@b> AUTH=<>", .from = "a@b", .auth = "<>"),
	MAIL_OK("FROM:<a@b> auth=user@example.com", .from = "a@b", .auth = "user@example.com"),
	MAIL_OK("FROM:<a@b> AUTH=a+2Bb@c", .from = "a@b", .auth = "a+b@c"),
	MAIL_OK("FROM:<a@b> AUTH=e+3Dmc2@example.com", .from = "a@b", .auth = "e=mc2@example.com"),
	MAIL_OK("FROM:<a@b> AUTH=+22a+20b+22@c", .from = "a@b", .auth = "\"a b\"@c"),
	MAIL_BAD("FROM:<a@b> AUTH=a+2bb@c", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=a+2", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=a+", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=a+GG", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=a+0D+0Ax", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=a+00b", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=a+7F", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=a+C3+BC", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=\xc3\xbc", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH", SMTP_PARSE_SYNTAX),
	/* several parameters, any case, any number of spaces */
	MAIL_OK("FROM:<a@b> SIZE=5 BODY=8BITMIME SMTPUTF8 AUTH=<>", .from = "a@b", .has_size = true,
	     .size = 5, .body = SMTP_BODY_8BITMIME, .smtputf8 = true, .auth = "<>"),
	MAIL_OK("FROM:<a@b>  sIzE=1   BoDy=7bIt  ", .from = "a@b", .has_size = true, .size = 1,
	     .body = SMTP_BODY_7BIT),
	/* duplicates */
	MAIL_BAD("FROM:<a@b> SIZE=1 SIZE=2", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=1 size=1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SMTPUTF8 SMTPUTF8", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> BODY=7BIT BODY=8BITMIME", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> AUTH=<> auth=<>", SMTP_PARSE_SYNTAX),
	/* RFC 3461 §4.3 RET, §4.4 ENVID */
	MAIL_OK("FROM:<a@b> RET=FULL", .from = "a@b", .ret = SMTP_DSN_RET_FULL),
	MAIL_OK("FROM:<a@b> ret=hdrs", .from = "a@b", .ret = SMTP_DSN_RET_HDRS),
	MAIL_OK("FROM:<> RET=HDRS ENVID=QQ314159", .from = "", .is_null = true, .ret = SMTP_DSN_RET_HDRS,
		.envid = "QQ314159"),
	MAIL_OK("FROM:<a@b> ENVID=a+2Bb+3Dc+20d", .from = "a@b", .envid = "a+b=c d"),
	MAIL_OK("FROM:<a@b> envid=x SIZE=3 RET=FULL", .from = "a@b", .envid = "x", .has_size = true, .size = 3,
		.ret = SMTP_DSN_RET_FULL),
	/* exactly 100 octets of ENVID, then 101 */
	MAIL_OK("FROM:<a@b> ENVID=0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
		.from = "a@b", .envid = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"),
	MAIL_BAD("FROM:<a@b> ENVID=01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890",
		 SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> RET=FULL RET=FULL", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> RET=FULL ret=HDRS", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> RET=BODY", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> RET=FULLX", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> RET", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> RET=", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> ENVID", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> ENVID=x ENVID=y", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> ENVID=a+0D+0ABcc:+20x", SMTP_PARSE_SYNTAX), /* a decoded CRLF: header injection */
	MAIL_BAD("FROM:<a@b> ENVID=a+00", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> ENVID=a+2", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> ENVID=a+zz", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> ENVID=a+C3+BC", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> ENVID=Ã¼", SMTP_PARSE_SYNTAX),
	/* RFC 8689 §2 REQUIRETLS (no value) */
	MAIL_OK("FROM:<a@b> REQUIRETLS", .from = "a@b", .requiretls = true),
	MAIL_OK("FROM:<a@b> requiretls RET=HDRS", .from = "a@b", .requiretls = true, .ret = SMTP_DSN_RET_HDRS),
	MAIL_BAD("FROM:<a@b> REQUIRETLS=yes", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> REQUIRETLS REQUIRETLS", SMTP_PARSE_SYNTAX),
	/* unknown parameters: 555 */
	MAIL_BAD("FROM:<a@b> X-FOO", SMTP_PARSE_BAD_PARAM),
	MAIL_BAD("FROM:<a@b> NOTIFY=NEVER", SMTP_PARSE_BAD_PARAM), /* a RCPT parameter */
	MAIL_BAD("FROM:<a@b> SIZE=1 FOO=bar", SMTP_PARSE_BAD_PARAM),
	MAIL_BAD("FROM:<a@b> X=\xc3\xbc", SMTP_PARSE_BAD_PARAM),
	MAIL_BAD("FROM:<a@b> SIZEX=1", SMTP_PARSE_BAD_PARAM),
	MAIL_BAD("FROM:<a@b> SIZ=1", SMTP_PARSE_BAD_PARAM),
	/* malformed parameters */
	MAIL_BAD("FROM:<a@b> =x", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> -FOO", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> FO_O=1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> F\xc3\xbc=1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b>SIZE=1", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b>>", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b>\0", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=1\0", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM:<a@b> SIZE=1\tBODY=7BIT", SMTP_PARSE_SYNTAX),
	/* the path */
	MAIL_BAD("FROM:a@b", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<a>", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<a@b", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:< a@b>", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<@>", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<whatever:a@a>", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<Postmaster>", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:<a\0@b>", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:", SMTP_PARSE_BAD_SENDER),
	MAIL_BAD("FROM:   ", SMTP_PARSE_BAD_SENDER),
	/* the FROM: keyword */
	MAIL_BAD("FROM", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM <a@b>", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FROM :<a@b>", SMTP_PARSE_SYNTAX),
	MAIL_BAD("TO:<a@b>", SMTP_PARSE_SYNTAX),
	MAIL_BAD("", SMTP_PARSE_SYNTAX),
	MAIL_BAD("FRO\0:<a@b>", SMTP_PARSE_SYNTAX),
};

static void test_mail_table(void **state)
{
	char esc[512];
	(void)state;
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];
		char *in = test_dup(c->in, c->len);
		struct smtp_mail_args m;
		const char *err = NULL;
		enum smtp_parse_error e = smtp_mail_parse(in, c->len, &m, &err);
		if (e != c->want)
			fail_msg("mail case %zu \"%s\": got %d (%s), want %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, err ? err : "-", c->want);
		if (e != SMTP_PARSE_OK) {
			assert_non_null(err);
			free(in);
			continue;
		}
		assert_string_equal(m.from.text, c->from);
		assert_int_equal(m.from.is_null, c->is_null);
		assert_int_equal(m.has_size, c->has_size);
		assert_true(m.size == c->size);
		assert_int_equal(m.body, c->body);
		assert_int_equal(m.smtputf8, c->smtputf8);
		assert_int_equal(m.has_auth, c->auth != NULL);
		assert_string_equal(m.auth, c->auth != NULL ? c->auth : "");
		assert_int_equal(m.ret, c->ret);
		assert_int_equal(m.has_envid, c->envid != NULL);
		assert_string_equal(m.has_envid ? m.envid : "", c->envid != NULL ? c->envid : "");
		assert_int_equal(m.requiretls, c->requiretls);
		free(in);
	}
}

/* Builds "FROM:<" local "@" domain ">" (prefix given) with local_n 'l's and a valid domain of domain_n octets. */
static size_t test_path_arg(char *buf, const char *prefix, size_t local_n, size_t domain_n)
{
	size_t n = strlen(prefix);
	memcpy(buf, prefix, n);
	buf[n++] = '<';
	memset(buf + n, 'l', local_n);
	n += local_n;
	buf[n++] = '@';
	memset(buf + n, 'd', domain_n);
	for (size_t i = 62; i + 1 < domain_n; i += 63)
		buf[n + i] = '.';
	n += domain_n;
	buf[n++] = '>';
	return n;
}

/* RFC 5321 §4.5.3.1: an overlong path is an unusable address; the decoded AUTH= value must fit. */
static void test_mail_limits(void **state)
{
	char buf[1024];
	struct smtp_mail_args m;
	(void)state;

	size_t n = test_path_arg(buf, "FROM:", 64, 189); /* a path of 256 octets */
	assert_int_equal(smtp_mail_parse(buf, n, &m, NULL), SMTP_PARSE_OK);
	assert_int_equal(strlen(m.from.text), ADDR_TEXT_MAX);
	n = test_path_arg(buf, "FROM:", 64, 190);
	assert_int_equal(smtp_mail_parse(buf, n, &m, NULL), SMTP_PARSE_BAD_SENDER);
	n = test_path_arg(buf, "FROM:", 65, 5);
	assert_int_equal(smtp_mail_parse(buf, n, &m, NULL), SMTP_PARSE_BAD_SENDER);

	/* AUTH= decoding to 254 octets fits, 255 does not */
	n = (size_t)snprintf(buf, sizeof(buf), "FROM:<> AUTH=");
	memset(buf + n, 'a', 254);
	assert_int_equal(smtp_mail_parse(buf, n + 254, &m, NULL), SMTP_PARSE_OK);
	assert_int_equal(strlen(m.auth), 254);
	memset(buf + n, 'a', 255);
	assert_int_equal(smtp_mail_parse(buf, n + 255, &m, NULL), SMTP_PARSE_SYNTAX);
	assert_int_equal(m.has_auth, false);
	/* 3 octets of xtext per decoded octet */
	for (size_t i = 0; i < 254; i++)
		memcpy(buf + n + 3 * i, "+41", 3);
	assert_int_equal(smtp_mail_parse(buf, n + 3 * 254, &m, NULL), SMTP_PARSE_OK);
	assert_int_equal(m.auth[253], 'A');
}

/* ---- RCPT ---- */

struct rcpt_case {
	const char *in;
	size_t len;
	bool smtputf8;
	enum smtp_parse_error want;
	const char *to; /* on success */
	unsigned notify;
	const char *orcpt; /* NULL: no ORCPT= */
};

#define RCPT(lit, u, w, t) { .in = lit, .len = sizeof(lit) - 1, .smtputf8 = u, .want = w, .to = t }
#define RCPT_DSN(lit, t, n, o) { .in = lit, .len = sizeof(lit) - 1, .want = SMTP_PARSE_OK, .to = t, .notify = n, .orcpt = o }
#define N_S SMTP_DSN_NOTIFY_SUCCESS
#define N_F SMTP_DSN_NOTIFY_FAILURE
#define N_D SMTP_DSN_NOTIFY_DELAY

static const struct rcpt_case rcpt_cases[] = {
	RCPT("TO:<a@b>", false, SMTP_PARSE_OK, "a@b"),
	RCPT("to:<a@b>", false, SMTP_PARSE_OK, "a@b"),
	RCPT("To: <a@b>", false, SMTP_PARSE_OK, "a@b"),
	RCPT("TO:<a@b>   ", false, SMTP_PARSE_OK, "a@b"),
	RCPT("TO:<Postmaster>", false, SMTP_PARSE_OK, "Postmaster"),
	RCPT("TO:<postmaster>", false, SMTP_PARSE_OK, "postmaster"),
	RCPT("TO:<POSTMASTER>", true, SMTP_PARSE_OK, "POSTMASTER"),
	RCPT("TO:<Postmaster@x.org>", false, SMTP_PARSE_OK, "Postmaster@x.org"),
	RCPT("TO:<@x.org:a@a>", false, SMTP_PARSE_OK, "a@a"),
	RCPT("TO:<@a.example,@b.example:user@c.example>", false, SMTP_PARSE_OK, "user@c.example"),
	RCPT("TO:<a@[IPv6:::1]>", false, SMTP_PARSE_OK, "a@[IPv6:::1]"),
	RCPT("TO:<a@[192.0.2.1]>", false, SMTP_PARSE_OK, "a@[192.0.2.1]"),
	RCPT("TO:<\"john \\\"x\\\" doe\"@b>", false, SMTP_PARSE_OK, "\"john \\\"x\\\" doe\"@b"),
	/* UTF-8 only after MAIL ... SMTPUTF8 (RFC 6531 §3.5) */
	RCPT("TO:<ü@b>", false, SMTP_PARSE_NEED_UTF8, NULL),
	RCPT("TO:<a@bücher.de>", false, SMTP_PARSE_NEED_UTF8, NULL),
	RCPT("TO:<ü@b>", true, SMTP_PARSE_OK, "ü@b"),
	RCPT("TO:<\xc0\xaf@b>", true, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<\xc0\xaf@b>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<\xf4\x90\x80\x80@b>", true, SMTP_PARSE_BAD_RCPT, NULL),
	/* unusable paths: 553 */
	RCPT("TO:<>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<>", true, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<@>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<a>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<a@>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<@a>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:< @a>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<a@ >", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<whatever:a@a>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<@x.org:Postmaster>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:a@b", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<a\0@b>", false, SMTP_PARSE_BAD_RCPT, NULL),
	RCPT("TO:<a@b\0>", false, SMTP_PARSE_BAD_RCPT, NULL),
	/* RFC 3461 §4.1 NOTIFY, §4.2 ORCPT */
	RCPT_DSN("TO:<a@b> NOTIFY=NEVER", "a@b", SMTP_DSN_NOTIFY_NEVER, NULL),
	RCPT_DSN("TO:<a@b> notify=success,Failure", "a@b", N_S | N_F, NULL),
	RCPT_DSN("TO:<a@b> NOTIFY=DELAY,SUCCESS,FAILURE", "a@b", N_S | N_F | N_D, NULL),
	RCPT_DSN("TO:<a@b> NOTIFY=FAILURE,FAILURE", "a@b", N_F, NULL),
	RCPT_DSN("TO:<a@b> ORCPT=rfc822;a@b", "a@b", 0, "rfc822;a@b"),
	RCPT_DSN("TO:<a@b> ORCPT=rfc822;a+2Bx@b NOTIFY=SUCCESS", "a@b", N_S, "rfc822;a+x@b"),
	RCPT_DSN("TO:<a@b> orcpt=RFC822;+22a+20b+22@c", "a@b", 0, "RFC822;\"a b\"@c"),
	RCPT_DSN("TO:<a@b> ORCPT=utf-8;u\\x{FC}@b", "a@b", 0, "utf-8;u\\x{FC}@b"),
	RCPT("TO:<a@b> NOTIFY=NEVER,SUCCESS", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=FAILURE,NEVER", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=NEVER,NEVER", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=SUCCESS,", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=,SUCCESS", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=SUCCESS,,DELAY", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=SUCESS", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=ALWAYS", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> NOTIFY=SUCCESS NOTIFY=FAILURE", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=a@b", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=;a@b", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=rfc822;", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=rfc_822;a@b", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=rfc822;a+0D+0AX-Evil:+201@b", false, SMTP_PARSE_SYNTAX, NULL), /* a decoded CRLF */
	RCPT("TO:<a@b> ORCPT=rfc822;a+00@b", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=rfc822;a+2@b", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT=rfc822;\xc3\xbc@b", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> ORCPT", false, SMTP_PARSE_SYNTAX, NULL),
	/* unknown parameters: 555 */
	RCPT("TO:<a@b> RET=FULL", false, SMTP_PARSE_BAD_PARAM, NULL), /* a MAIL parameter */
	RCPT("TO:<a@b> X", false, SMTP_PARSE_BAD_PARAM, NULL),
	RCPT("TO:<a@b> SMTPUTF8", true, SMTP_PARSE_BAD_PARAM, NULL),
	/* malformed parameters and trailing junk: 501 */
	RCPT("TO:<a@b> =x", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b>X", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b>>", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b>\0", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO:<a@b> X=\x01", false, SMTP_PARSE_SYNTAX, NULL),
	/* the TO: keyword */
	RCPT("TO", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("TO <a@b>", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("FROM:<a@b>", false, SMTP_PARSE_SYNTAX, NULL),
	RCPT("", false, SMTP_PARSE_SYNTAX, NULL),
};

static void test_rcpt_table(void **state)
{
	char esc[512];
	(void)state;
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		char *in = test_dup(c->in, c->len);
		struct smtp_rcpt_args r;
		const char *err = NULL;
		enum smtp_parse_error e = smtp_rcpt_parse(in, c->len, c->smtputf8, &r, &err);
		if (e != c->want)
			fail_msg("rcpt case %zu \"%s\" smtputf8 %d: got %d (%s), want %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), c->smtputf8, e, err ? err : "-", c->want);
		if (e == SMTP_PARSE_OK) {
			assert_string_equal(r.to.text, c->to);
			assert_false(r.to.is_null);
			assert_int_equal(r.notify, c->notify);
			assert_int_equal(r.has_orcpt, c->orcpt != NULL);
			assert_string_equal(r.has_orcpt ? r.orcpt : "", c->orcpt != NULL ? c->orcpt : "");
		} else {
			assert_non_null(err);
		}
		free(in);
	}
}

static void test_rcpt_limits(void **state)
{
	char buf[512];
	struct smtp_rcpt_args r;
	(void)state;
	size_t n = test_path_arg(buf, "TO:", 64, 1);
	assert_int_equal(smtp_rcpt_parse(buf, n, false, &r, NULL), SMTP_PARSE_OK);
	assert_int_equal(r.to.local_len, 64);
	n = test_path_arg(buf, "TO:", 65, 1);
	assert_int_equal(smtp_rcpt_parse(buf, n, false, &r, NULL), SMTP_PARSE_BAD_RCPT);
	n = test_path_arg(buf, "TO:", 1, 252); /* a path of 256 octets */
	assert_int_equal(smtp_rcpt_parse(buf, n, false, &r, NULL), SMTP_PARSE_OK);
	n = test_path_arg(buf, "TO:", 1, 253);
	assert_int_equal(smtp_rcpt_parse(buf, n, false, &r, NULL), SMTP_PARSE_BAD_RCPT);

	/* RFC 3461 §4.2: an ORCPT value of 500 octets is taken, 501 is not */
	char big[1100];
	for (size_t len = 499; len <= 502; len++) {
		int k = snprintf(big, sizeof(big), "TO:<a@b> ORCPT=rfc822;");
		size_t want = len - strlen("rfc822;");
		memset(big + k, 'x', want);
		big[k + want] = '\0';
		enum smtp_parse_error e = smtp_rcpt_parse(big, strlen(big), false, &r, NULL);
		assert_int_equal(e, len <= SMTP_ORCPT_MAX ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX);
		if (e == SMTP_PARSE_OK)
			assert_int_equal(strlen(r.orcpt), len);
	}
	/* hex escapes that decode to fewer octets still count as sent */
	int k = snprintf(big, sizeof(big), "TO:<a@b> ORCPT=rfc822;");
	for (size_t i = 0; i < 166; i++)
		memcpy(big + k + 3 * i, "+2B", 3); /* 7 + 498 octets */
	big[k + 498] = '\0';
	assert_int_equal(smtp_rcpt_parse(big, strlen(big), false, &r, NULL), SMTP_PARSE_SYNTAX);
	big[k + 492] = '\0'; /* 7 + 492 - 499 */
	assert_int_equal(smtp_rcpt_parse(big, strlen(big), false, &r, NULL), SMTP_PARSE_OK);
	assert_int_equal(strlen(r.orcpt), 7 + 164);
}

/* ---- BDAT ---- */

struct bdat_case {
	const char *in;
	size_t len;
	enum smtp_parse_error want;
	uint64_t size;
	bool last;
};

#define BDAT(lit, w, sz, l) { .in = lit, .len = sizeof(lit) - 1, .want = w, .size = sz, .last = l }

static const struct bdat_case bdat_cases[] = {
	BDAT("0", SMTP_PARSE_OK, 0, false),
	BDAT("0 LAST", SMTP_PARSE_OK, 0, true),
	BDAT("1000", SMTP_PARSE_OK, 1000, false),
	BDAT("1000 LAST", SMTP_PARSE_OK, 1000, true),
	BDAT("1000 last", SMTP_PARSE_OK, 1000, true),
	BDAT("1000 LaSt", SMTP_PARSE_OK, 1000, true),
	BDAT("007", SMTP_PARSE_OK, 7, false),
	BDAT("999999999999999999", SMTP_PARSE_OK, 999999999999999999ULL, false),
	BDAT("999999999999999999 LAST", SMTP_PARSE_OK, 999999999999999999ULL, true),
	BDAT("1000000000000000000", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("18446744073709551616", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("LAST", SMTP_PARSE_SYNTAX, 0, false),
	BDAT(" LAST", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("-1", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("+1", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 LAST x", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 LAST LAST", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1  LAST", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 LASTX", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 LAS", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 2", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1x", SMTP_PARSE_SYNTAX, 0, false),
	BDAT(" 1", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 ", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1\0", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 LAST\0", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1 L\0ST", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("0x10", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1e3", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("1\tLAST", SMTP_PARSE_SYNTAX, 0, false),
	BDAT("\xd9\xa1", SMTP_PARSE_SYNTAX, 0, false),
};

static void test_bdat_table(void **state)
{
	char esc[256];
	(void)state;
	for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		const struct bdat_case *c = &bdat_cases[i];
		char *in = test_dup(c->in, c->len);
		uint64_t size = 42;
		bool last = true;
		const char *err = NULL;
		enum smtp_parse_error e = smtp_bdat_parse(in, c->len, &size, &last, &err);
		if (e != c->want)
			fail_msg("bdat case %zu \"%s\": got %d (%s), want %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, err ? err : "-", c->want);
		assert_true(size == c->size);
		assert_int_equal(last, c->last);
		if (e != SMTP_PARSE_OK)
			assert_non_null(err);
		free(in);
	}
}

/* ---- EHLO / HELO ---- */

struct helo_case {
	const char *in;
	size_t len;
	enum smtp_parse_error want;
};

#define HELO(lit, w) { .in = lit, .len = sizeof(lit) - 1, .want = w }

static const struct helo_case helo_cases[] = {
	HELO("example.com", SMTP_PARSE_OK),
	HELO("mail.example.co.uk", SMTP_PARSE_OK),
	HELO("localhost", SMTP_PARSE_OK),
	HELO("xn--bcher-kva.de", SMTP_PARSE_OK),
	HELO("[192.0.2.1]", SMTP_PARSE_OK),
	HELO("[IPv6:2001:db8::1]", SMTP_PARSE_OK),
	HELO("", SMTP_PARSE_SYNTAX),
	HELO("example.com extra", SMTP_PARSE_SYNTAX),
	HELO("example.com ", SMTP_PARSE_SYNTAX),
	HELO("exa_mple", SMTP_PARSE_SYNTAX),
	HELO("bücher.de", SMTP_PARSE_SYNTAX),
	HELO("[1.2.3]", SMTP_PARSE_SYNTAX),
	HELO("[IPv6:::g]", SMTP_PARSE_SYNTAX),
	HELO("a..b", SMTP_PARSE_SYNTAX),
	HELO("example.com.", SMTP_PARSE_SYNTAX),
	HELO("-example.com", SMTP_PARSE_SYNTAX),
	HELO("a\0b", SMTP_PARSE_SYNTAX),
	HELO("example.com\0", SMTP_PARSE_SYNTAX),
	HELO("<example.com>", SMTP_PARSE_SYNTAX),
	HELO("user@example.com", SMTP_PARSE_SYNTAX),
	HELO("\"example\"", SMTP_PARSE_SYNTAX),
};

static void test_helo_table(void **state)
{
	char esc[256];
	(void)state;
	for (size_t i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++) {
		const struct helo_case *c = &helo_cases[i];
		char *in = test_dup(c->in, c->len);
		const char *err = NULL;
		enum smtp_parse_error e = smtp_helo_parse(in, c->len, &err);
		if (e != c->want)
			fail_msg("helo case %zu \"%s\": got %d (%s), want %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, err ? err : "-", c->want);
		if (e != SMTP_PARSE_OK)
			assert_non_null(err);
		free(in);
	}
}

/* A whole line through smtp_cmd_parse and then the argument parser, as the session will do it. */
static void test_pipeline(void **state)
{
	static const char line[] = "mail from: <user@example.com>   size=42  body=8bitmime   ";
	struct smtp_cmd cmd;
	struct smtp_mail_args m;
	(void)state;
	assert_int_equal(smtp_cmd_parse(line, sizeof(line) - 1, &cmd, NULL), SMTP_PARSE_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_MAIL);
	assert_int_equal(smtp_mail_parse(cmd.arg, cmd.arg_len, &m, NULL), SMTP_PARSE_OK);
	assert_string_equal(m.from.text, "user@example.com");
	assert_string_equal(addr_domain(&m.from), "example.com");
	assert_true(m.has_size && m.size == 42);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);

	static const char bdat[] = "BDAT 512 LAST  ";
	uint64_t size;
	bool last;
	assert_int_equal(smtp_cmd_parse(bdat, sizeof(bdat) - 1, &cmd, NULL), SMTP_PARSE_OK);
	assert_int_equal(smtp_bdat_parse(cmd.arg, cmd.arg_len, &size, &last, NULL), SMTP_PARSE_OK);
	assert_true(size == 512 && last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_table),
		cmocka_unit_test(test_cmd_every_control_octet),
		cmocka_unit_test(test_cmd_line_length),
		cmocka_unit_test(test_verb_str),
		cmocka_unit_test(test_mail_table),
		cmocka_unit_test(test_mail_limits),
		cmocka_unit_test(test_rcpt_table),
		cmocka_unit_test(test_rcpt_limits),
		cmocka_unit_test(test_bdat_table),
		cmocka_unit_test(test_helo_table),
		cmocka_unit_test(test_pipeline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

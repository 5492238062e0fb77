/* test_pop3_parse.c — table-driven tests of src/pop3/parse.c: POP3 command lines (keywords, argument
 * counts, numbers, limits, hostile octets) and the byte-stuffing encoder of RETR/TOP responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/parse.h"

/* ---- command lines ---- */

struct cmd_case {
	const char *in;
	size_t len;
	enum pop3_parse_error want;
	enum pop3_verb verb; /* also checked on errors */
	unsigned argc;       /* on success */
	const char *arg0, *arg1;
	uint32_t num0, num1;
};

#define OK0(lit, v) {lit, sizeof(lit) - 1, POP3_PARSE_OK, v, 0, NULL, NULL, 0, 0}
#define OK1(lit, v, a) {lit, sizeof(lit) - 1, POP3_PARSE_OK, v, 1, a, NULL, 0, 0}
#define OK2(lit, v, a, b) {lit, sizeof(lit) - 1, POP3_PARSE_OK, v, 2, a, b, 0, 0}
#define NUM1(lit, v, a, n) {lit, sizeof(lit) - 1, POP3_PARSE_OK, v, 1, a, NULL, n, 0}
#define NUM2(lit, v, a, b, n, m) {lit, sizeof(lit) - 1, POP3_PARSE_OK, v, 2, a, b, n, m}
#define BAD(lit, w, v) {lit, sizeof(lit) - 1, w, v, 0, NULL, NULL, 0, 0}

static const struct cmd_case cmd_cases[] = {
	/* every keyword, case-insensitive (RFC 1939 §3) */
	OK0("STAT", POP3_VERB_STAT),
	OK0("stat", POP3_VERB_STAT),
	OK0("StAt", POP3_VERB_STAT),
	OK0("NOOP", POP3_VERB_NOOP),
	OK0("RSET", POP3_VERB_RSET),
	OK0("QUIT", POP3_VERB_QUIT),
	OK0("quit", POP3_VERB_QUIT),
	OK0("CAPA", POP3_VERB_CAPA),
	OK0("STLS", POP3_VERB_STLS),
	OK0("stls", POP3_VERB_STLS),
	OK0("LIST", POP3_VERB_LIST),
	OK0("UIDL", POP3_VERB_UIDL),
	NUM1("LIST 1", POP3_VERB_LIST, "1", 1),
	NUM1("list 42", POP3_VERB_LIST, "42", 42),
	NUM1("UIDL 2", POP3_VERB_UIDL, "2", 2),
	NUM1("RETR 1", POP3_VERB_RETR, "1", 1),
	NUM1("retr 1", POP3_VERB_RETR, "1", 1),
	NUM1("DELE 7", POP3_VERB_DELE, "7", 7),
	NUM2("TOP 1 10", POP3_VERB_TOP, "1", "10", 1, 10),
	NUM2("top 1 0", POP3_VERB_TOP, "1", "0", 1, 0),
	NUM2("TOP 100 3", POP3_VERB_TOP, "100", "3", 100, 3),
	NUM1("RETR 0", POP3_VERB_RETR, "0", 0), /* parses; the session says "no such message" */
	NUM1("RETR 4294967295", POP3_VERB_RETR, "4294967295", 4294967295u),
	OK1("USER mrose", POP3_VERB_USER, "mrose"),
	OK1("user demo@mailwerk.test", POP3_VERB_USER, "demo@mailwerk.test"),
	OK1("USER j\xc3\xb6rg@example.org", POP3_VERB_USER, "j\xc3\xb6rg@example.org"),
	OK1("PASS secret", POP3_VERB_PASS, "secret"),
	/* RFC 1939 §7: the password is the rest of the line, spaces and all */
	OK1("PASS two words", POP3_VERB_PASS, "two words"),
	OK1("PASS  leading space", POP3_VERB_PASS, " leading space"),
	OK1("PASS trailing ", POP3_VERB_PASS, "trailing "),
	OK1("PASS p\xc3\xa4ss", POP3_VERB_PASS, "p\xc3\xa4ss"),
	OK1("AUTH PLAIN", POP3_VERB_AUTH, "PLAIN"),
	OK2("AUTH PLAIN AGRlbW8Ac2VjcmV0", POP3_VERB_AUTH, "PLAIN", "AGRlbW8Ac2VjcmV0"),
	OK2("auth plain =", POP3_VERB_AUTH, "plain", "="),
	OK1("AUTH CRAM-MD5", POP3_VERB_AUTH, "CRAM-MD5"), /* known keyword; the session refuses the mechanism */
	/* spaces: runs between arguments and trailing ones are tolerated */
	OK0("STAT ", POP3_VERB_STAT),
	OK0("QUIT   ", POP3_VERB_QUIT),
	NUM1("RETR  1", POP3_VERB_RETR, "1", 1),
	NUM1("RETR 1 ", POP3_VERB_RETR, "1", 1),
	NUM2("TOP 1  2 ", POP3_VERB_TOP, "1", "2", 1, 2),
	OK1("USER demo ", POP3_VERB_USER, "demo"),

	/* unknown keywords, APOP included (not offered) */
	BAD("APOP mrose c4c9334bac560ecc979e58001b3e22fb", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("HELO", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("STATS", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("STA", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("TOPS 1 1", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("LAST", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("X", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("ST\xc3\x84T", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("STARTTLS", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),
	BAD("RETR:1", POP3_PARSE_UNKNOWN, POP3_VERB_UNKNOWN),

	/* empty and leading space */
	BAD("", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD(" STAT", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD(" ", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),

	/* control octets anywhere: NUL, bare CR, bare LF, TAB, DEL */
	BAD("STAT\0", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD("ST\0AT", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD("RETR 1\0", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("PASS sec\0ret", POP3_PARSE_SYNTAX, POP3_VERB_PASS),
	BAD("USER a\0b", POP3_PARSE_SYNTAX, POP3_VERB_USER),
	BAD("STAT\r", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD("NOOP\rQUIT", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD("DELE 1\nQUIT", POP3_PARSE_SYNTAX, POP3_VERB_DELE),
	BAD("PASS x\ny", POP3_PARSE_SYNTAX, POP3_VERB_PASS),
	BAD("RETR\t1", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD("RETR 1\t", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("NOOP\x7f", POP3_PARSE_SYNTAX, POP3_VERB_UNKNOWN),
	BAD("PASS \x1b[2J", POP3_PARSE_SYNTAX, POP3_VERB_PASS),

	/* argument counts */
	BAD("STAT 1", POP3_PARSE_SYNTAX, POP3_VERB_STAT),
	BAD("QUIT now", POP3_PARSE_SYNTAX, POP3_VERB_QUIT),
	BAD("NOOP x", POP3_PARSE_SYNTAX, POP3_VERB_NOOP),
	BAD("STLS x", POP3_PARSE_SYNTAX, POP3_VERB_STLS),
	BAD("CAPA x", POP3_PARSE_SYNTAX, POP3_VERB_CAPA),
	BAD("RSET 1", POP3_PARSE_SYNTAX, POP3_VERB_RSET),
	BAD("RETR", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR ", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR 1 2", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("DELE", POP3_PARSE_SYNTAX, POP3_VERB_DELE),
	BAD("DELE 1 2", POP3_PARSE_SYNTAX, POP3_VERB_DELE),
	BAD("LIST 1 2", POP3_PARSE_SYNTAX, POP3_VERB_LIST),
	BAD("UIDL 1 2", POP3_PARSE_SYNTAX, POP3_VERB_UIDL),
	BAD("TOP", POP3_PARSE_SYNTAX, POP3_VERB_TOP),
	BAD("TOP 1", POP3_PARSE_SYNTAX, POP3_VERB_TOP),
	BAD("TOP 1 2 3", POP3_PARSE_SYNTAX, POP3_VERB_TOP),
	BAD("USER", POP3_PARSE_SYNTAX, POP3_VERB_USER),
	BAD("USER ", POP3_PARSE_SYNTAX, POP3_VERB_USER),
	BAD("USER a b", POP3_PARSE_SYNTAX, POP3_VERB_USER),
	BAD("PASS", POP3_PARSE_SYNTAX, POP3_VERB_PASS),
	BAD("PASS ", POP3_PARSE_SYNTAX, POP3_VERB_PASS),
	BAD("AUTH", POP3_PARSE_SYNTAX, POP3_VERB_AUTH),
	BAD("AUTH ", POP3_PARSE_SYNTAX, POP3_VERB_AUTH),
	BAD("AUTH PLAIN a b", POP3_PARSE_SYNTAX, POP3_VERB_AUTH),
	BAD("AUTH PL\xc3\x84IN", POP3_PARSE_SYNTAX, POP3_VERB_AUTH),

	/* numbers: no signs, no leading zeros, no overflow, digits only */
	BAD("RETR +1", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR -1", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR 01", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR 00", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("TOP 1 007", POP3_PARSE_SYNTAX, POP3_VERB_TOP),
	BAD("RETR 4294967296", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR 18446744073709551617", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("TOP 1 99999999999999999999999999999999999999999", POP3_PARSE_SYNTAX, POP3_VERB_TOP),
	BAD("RETR 1x", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR x1", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR 0x10", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR 1e3", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("RETR 1.0", POP3_PARSE_SYNTAX, POP3_VERB_RETR),
	BAD("LIST \xd9\xa1", POP3_PARSE_SYNTAX, POP3_VERB_LIST), /* ARABIC-INDIC DIGIT ONE */
	BAD("DELE \xef\xbc\x91", POP3_PARSE_SYNTAX, POP3_VERB_DELE), /* FULLWIDTH DIGIT ONE */
	BAD("TOP 1 -1", POP3_PARSE_SYNTAX, POP3_VERB_TOP),
};

static void check_cmd_case(const struct cmd_case *c)
{
	char shown[512];
	char *in = test_dup(c->in, c->len);
	struct pop3_cmd cmd;
	const char *err = NULL;
	enum pop3_parse_error got = pop3_cmd_parse(in, c->len, &cmd, &err);
	const char *what = test_escape(c->in, c->len, shown, sizeof(shown));
	if (got != c->want || cmd.verb != c->verb)
		fail_msg("\"%s\": got %d verb %d (%s), want %d verb %d", what, got, cmd.verb, err ? err : "-", c->want,
			 c->verb);
	if (got != POP3_PARSE_OK) {
		if (err == NULL)
			fail_msg("\"%s\": no error sentence", what);
		if (cmd.argc != 0)
			fail_msg("\"%s\": arguments on error", what);
		free(in);
		return;
	}
	if (cmd.argc != c->argc)
		fail_msg("\"%s\": argc %u, want %u", what, cmd.argc, c->argc);
	const char *want[2] = {c->arg0, c->arg1};
	uint32_t wnum[2] = {c->num0, c->num1};
	for (unsigned i = 0; i < cmd.argc; i++) {
		if (cmd.arg[i].len != strlen(want[i]) || memcmp(cmd.arg[i].p, want[i], cmd.arg[i].len) != 0)
			fail_msg("\"%s\": argument %u is \"%.*s\", want \"%s\"", what, i, (int)cmd.arg[i].len, cmd.arg[i].p,
				 want[i]);
		/* arguments point into the line */
		if (cmd.arg[i].p < in || cmd.arg[i].p + cmd.arg[i].len > in + c->len)
			fail_msg("\"%s\": argument %u outside the line", what, i);
		if (cmd.num[i] != wnum[i])
			fail_msg("\"%s\": number %u is %u, want %u", what, i, cmd.num[i], wnum[i]);
	}
	free(in);
}

static void test_cmd_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++)
		check_cmd_case(&cmd_cases[i]);
}

/* Every octet below 0x20 and 0x7f, in the keyword, after it and in an argument. */
static void test_cmd_every_control_octet(void **state)
{
	(void)state;
	static const char *const shapes[] = {"S%cAT", "STAT%c", "RETR %c", "RETR 1%c", "USER a%cb", "PASS %c",
					     "PASS ab%c", "AUTH PLAIN %c"};
	for (int c = 0; c < 0x80; c++) {
		if (c >= 0x20 && c != 0x7f)
			continue;
		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
			char line[32];
			size_t len = 0;
			for (const char *p = shapes[s]; *p; p++) {
				if (p[0] == '%' && p[1] == 'c') {
					line[len++] = (char)c;
					p++;
				} else {
					line[len++] = *p;
				}
			}
			char *in = test_dup(line, len);
			struct pop3_cmd cmd;
			const char *err = NULL;
			if (pop3_cmd_parse(in, len, &cmd, &err) != POP3_PARSE_SYNTAX || err == NULL)
				fail_msg("shape %zu with octet 0x%02x accepted", s, c);
			free(in);
		}
	}
}

/* RFC 2449 §4: 255 octets with the CRLF, so 253 without; one more is refused whatever it is. */
static void test_cmd_line_length(void **state)
{
	(void)state;
	char line[POP3_CMD_LINE_MAX + 64];
	struct pop3_cmd cmd;
	const char *err;

	/* PASS with the longest password that fits */
	memcpy(line, "PASS ", 5);
	memset(line + 5, 'p', sizeof(line) - 5);
	char *in = test_dup(line, POP3_CMD_LINE_MAX - 2);
	assert_int_equal(pop3_cmd_parse(in, POP3_CMD_LINE_MAX - 2, &cmd, &err), POP3_PARSE_OK);
	assert_int_equal(cmd.arg[0].len, POP3_CMD_LINE_MAX - 2 - 5);
	free(in);
	in = test_dup(line, POP3_CMD_LINE_MAX - 1);
	assert_int_equal(pop3_cmd_parse(in, POP3_CMD_LINE_MAX - 1, &cmd, &err), POP3_PARSE_TOO_LONG);
	assert_non_null(err);
	free(in);

	/* any line that is too long, even a valid command padded with spaces */
	memcpy(line, "STAT", 4);
	memset(line + 4, ' ', sizeof(line) - 4);
	in = test_dup(line, POP3_CMD_LINE_MAX - 2);
	assert_int_equal(pop3_cmd_parse(in, POP3_CMD_LINE_MAX - 2, &cmd, &err), POP3_PARSE_OK);
	free(in);
	in = test_dup(line, sizeof(line));
	assert_int_equal(pop3_cmd_parse(in, sizeof(line), &cmd, &err), POP3_PARSE_TOO_LONG);
	free(in);
	/* SIZE_MAX must not wrap anything: the length is checked before any octet is read */
	assert_int_equal(pop3_cmd_parse("STAT", SIZE_MAX, &cmd, &err), POP3_PARSE_TOO_LONG);

	/* a long number */
	memcpy(line, "RETR ", 5);
	memset(line + 5, '9', 200);
	in = test_dup(line, 205);
	assert_int_equal(pop3_cmd_parse(in, 205, &cmd, &err), POP3_PARSE_SYNTAX);
	free(in);
}

static void test_verb_str(void **state)
{
	(void)state;
	for (int v = POP3_VERB_UNKNOWN + 1; v < POP3_VERB_COUNT; v++) {
		const char *name = pop3_verb_str(v);
		assert_non_null(name);
		assert_string_not_equal(name, "UNKNOWN");
		/* the name parses back to its verb */
		struct pop3_cmd cmd;
		pop3_cmd_parse(name, strlen(name), &cmd, NULL);
		assert_int_equal(cmd.verb, v);
	}
	assert_string_equal(pop3_verb_str(POP3_VERB_UNKNOWN), "UNKNOWN");
	assert_string_equal(pop3_verb_str(POP3_VERB_COUNT), "UNKNOWN");
}

/* ---- byte-stuffing ---- */

struct stuff_case {
	const char *name;
	const char *in;
	size_t len;
	bool top;
	uint32_t lines;
	const char *want; /* the whole body of the response, end marker included */
	size_t want_len;
};

#define STUFF(n, lit, w) {n, lit, sizeof(lit) - 1, false, 0, w, sizeof(w) - 1}
#define TOP(n, lit, l, w) {n, lit, sizeof(lit) - 1, true, l, w, sizeof(w) - 1}

static const struct stuff_case stuff_cases[] = {
	STUFF("empty", "", ".\r\n"),
	STUFF("crlf", "a: b\r\n\r\nbody\r\n", "a: b\r\n\r\nbody\r\n.\r\n"),
	STUFF("bare lf", "a: b\n\nbody\n", "a: b\r\n\r\nbody\r\n.\r\n"),
	STUFF("mixed", "a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n.\r\n"),
	/* RFC 1939 §3: a line starting with "." gets one more */
	STUFF("dot line", "x\r\n.\r\ny\r\n", "x\r\n..\r\ny\r\n.\r\n"),
	STUFF("dot first", ".hidden\r\n", "..hidden\r\n.\r\n"),
	STUFF("dots", "..\n...\n", "...\r\n....\r\n.\r\n"),
	STUFF("dot mid line", "a.b\r\n a.\r\n", "a.b\r\n a.\r\n.\r\n"),
	STUFF("dot crlf dot", "\r\n.\r\n.", "\r\n..\r\n..\r\n.\r\n"),
	/* no final line end: one is added before the end marker */
	STUFF("unterminated", "abc", "abc\r\n.\r\n"),
	STUFF("lone dot unterminated", "x\n.", "x\r\n..\r\n.\r\n"),
	/* a lone CR is content, never a line end; only at the very end does it become one */
	STUFF("lone cr", "a\rb\r\n", "a\rb\r\n.\r\n"),
	STUFF("cr dot", "a\r.b\r\n", "a\r.b\r\n.\r\n"),
	STUFF("cr at end", "abc\r", "abc\r\n.\r\n"),
	STUFF("crcrlf", "a\r\r\n", "a\r\r\n.\r\n"),
	STUFF("8bit", "S\xc3\xbc\xc3\x9f\n\xff\xfe\n", "S\xc3\xbc\xc3\x9f\r\n\xff\xfe\r\n.\r\n"),
	STUFF("nul", "a\0b\n", "a\0b\r\n.\r\n"),
	/* RFC 1939 §7 TOP: the header, the blank line, n body lines */
	TOP("top 0", "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 0, "A: 1\r\nB: 2\r\n\r\n.\r\n"),
	TOP("top 1", "A: 1\r\n\r\nl1\r\nl2\r\n", 1, "A: 1\r\n\r\nl1\r\n.\r\n"),
	TOP("top 2 lf", "A: 1\n\nl1\nl2\nl3\n", 2, "A: 1\r\n\r\nl1\r\nl2\r\n.\r\n"),
	TOP("top more than body", "A: 1\n\nl1\n", 10, "A: 1\r\n\r\nl1\r\n.\r\n"),
	TOP("top unterminated body", "A: 1\n\nl1", 10, "A: 1\r\n\r\nl1\r\n.\r\n"),
	TOP("top no body", "A: 1\r\nB: 2\r\n", 3, "A: 1\r\nB: 2\r\n.\r\n"),
	TOP("top no header", "\r\nl1\r\nl2\r\n", 1, "\r\nl1\r\n.\r\n"),
	TOP("top dot lines", "A: 1\n\n.\n..\nx\n", 2, "A: 1\r\n\r\n..\r\n...\r\n.\r\n"),
	/* a line holding only a CR is not the blank line; CRLF with a lone CR before is not either */
	TOP("top cr line", "A: 1\n\r\r\nB: 2\n\nl1\n", 0, "A: 1\r\n\r\r\nB: 2\r\n\r\n.\r\n"),
	TOP("top cr-only blank", "A: 1\r\n\r\nl1\r\n", 0, "A: 1\r\n\r\n.\r\n"),
	TOP("top empty", "", 5, ".\r\n"),
};

/* Encodes in as pieces of the given sizes (cycled), each piece in its own exact-size buffers. */
static char *stuff_run(const struct stuff_case *c, const size_t *pieces, size_t npieces, size_t *len_r)
{
	char *out = malloc(2 * c->len + POP3_STUFF_END_MAX + 1);
	assert_non_null(out);
	struct pop3_stuff st;
	pop3_stuff_init(&st, c->top, c->lines);
	size_t o = 0, i = 0, k = 0;
	while (i < c->len) {
		size_t n = pieces[k++ % npieces];
		if (n > c->len - i)
			n = c->len - i;
		char *in = test_dup(c->in + i, n);
		char *piece = malloc(2 * n + 1);
		assert_non_null(piece);
		size_t w = pop3_stuff_chunk(&st, in, n, piece);
		assert_true(w <= 2 * n);
		memcpy(out + o, piece, w);
		o += w;
		free(piece);
		free(in);
		i += n;
	}
	char *end = malloc(POP3_STUFF_END_MAX);
	assert_non_null(end);
	size_t e = pop3_stuff_end(&st, end);
	assert_true(e <= POP3_STUFF_END_MAX);
	memcpy(out + o, end, e);
	free(end);
	*len_r = o + e;
	return out;
}

static void test_stuff_table(void **state)
{
	(void)state;
	static const size_t whole[] = {SIZE_MAX};
	static const size_t ones[] = {1};
	static const size_t mixed[] = {2, 1, 3};
	const size_t *splits[] = {whole, ones, mixed};
	const size_t nsplits[] = {1, 1, 3};
	for (size_t i = 0; i < sizeof(stuff_cases) / sizeof(stuff_cases[0]); i++) {
		const struct stuff_case *c = &stuff_cases[i];
		size_t wlen = c->want_len;
		for (size_t s = 0; s < 3; s++) {
			size_t len;
			char *got = stuff_run(c, splits[s], nsplits[s], &len);
			if (len != wlen || memcmp(got, c->want, len) != 0) {
				char a[512], b[512];
				fail_msg("%s (split %zu): got \"%s\", want \"%s\"", c->name, s, test_escape(got, len, a, sizeof(a)),
					 test_escape(c->want, wlen, b, sizeof(b)));
			}
			free(got);
		}
	}
}

/* Every octet sequence of length up to 4 over an alphabet of the interesting octets: the output
 * has CRLF line ends only, un-stuffs to the input with bare LFs made CRLF, and ends in CRLF.CRLF. */
static void test_stuff_exhaustive(void **state)
{
	(void)state;
	static const char alphabet[] = {'.', '\r', '\n', 'a'};
	char in[4], out[2 * 4 + POP3_STUFF_END_MAX], want[2 * 4 + 2], plain[2 * 4 + POP3_STUFF_END_MAX];
	for (size_t len = 0; len <= 4; len++) {
		size_t total = 1;
		for (size_t i = 0; i < len; i++)
			total *= 4;
		for (size_t code = 0; code < total; code++) {
			size_t x = code;
			for (size_t i = 0; i < len; i++, x /= 4)
				in[i] = alphabet[x % 4];
			struct pop3_stuff st;
			pop3_stuff_init(&st, false, 0);
			size_t o = pop3_stuff_chunk(&st, in, len, out);
			o += pop3_stuff_end(&st, out + o);
			/* expected content: bare LF -> CRLF; a final line end added (a final CR completed) */
			size_t w = 0;
			for (size_t i = 0; i < len; i++) {
				if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
					want[w++] = '\r';
				want[w++] = in[i];
			}
			if (w > 0 && want[w - 1] != '\n') {
				if (want[w - 1] != '\r')
					want[w++] = '\r';
				want[w++] = '\n';
			}
			/* un-stuff the output: drop the end marker, then one leading dot per line */
			char shown[64];
			if (o < 3 || memcmp(out + o - 3, ".\r\n", 3) != 0 || (o > 3 && memcmp(out + o - 5, "\r\n", 2) != 0))
				fail_msg("\"%s\": bad end", test_escape(in, len, shown, sizeof(shown)));
			size_t p = 0;
			bool bol = true;
			for (size_t i = 0; i < o - 3; i++) {
				if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
					fail_msg("\"%s\": bare LF in output", test_escape(in, len, shown, sizeof(shown)));
				if (bol && out[i] == '.') {
					if (i + 1 >= o - 3 || out[i + 1] != '.')
						fail_msg("\"%s\": unstuffed dot", test_escape(in, len, shown, sizeof(shown)));
					i++;
				}
				plain[p++] = out[i];
				bol = out[i] == '\n';
			}
			if (p != w || memcmp(plain, want, w) != 0)
				fail_msg("\"%s\": content changed", test_escape(in, len, shown, sizeof(shown)));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_table),
		cmocka_unit_test(test_cmd_every_control_octet),
		cmocka_unit_test(test_cmd_line_length),
		cmocka_unit_test(test_verb_str),
		cmocka_unit_test(test_stuff_table),
		cmocka_unit_test(test_stuff_exhaustive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

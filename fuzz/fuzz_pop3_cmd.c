/* fuzz_pop3_cmd.c — libFuzzer harness for src/pop3/parse.c. The input is one POP3 command line for
 * pop3_cmd_parse (checked against what the grammar promises, and against its upper-case twin), and
 * also message content for the RETR/TOP encoder, whose output must not depend on how the content is
 * cut into pieces and must un-stuff back to the content with CRLF line ends. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/parse.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static unsigned fuzz_arity_min(enum pop3_verb v)
{
	switch (v) {
	case POP3_VERB_USER:
	case POP3_VERB_PASS:
	case POP3_VERB_AUTH:
	case POP3_VERB_RETR:
	case POP3_VERB_DELE: return 1;
	case POP3_VERB_TOP: return 2;
	default: return 0;
	}
}

static unsigned fuzz_arity_max(enum pop3_verb v)
{
	switch (v) {
	case POP3_VERB_USER:
	case POP3_VERB_PASS:
	case POP3_VERB_RETR:
	case POP3_VERB_DELE:
	case POP3_VERB_LIST:
	case POP3_VERB_UIDL: return 1;
	case POP3_VERB_AUTH:
	case POP3_VERB_TOP: return 2;
	default: return 0;
	}
}

static bool fuzz_numeric(enum pop3_verb v)
{
	return v == POP3_VERB_LIST || v == POP3_VERB_UIDL || v == POP3_VERB_RETR || v == POP3_VERB_DELE ||
	       v == POP3_VERB_TOP;
}

static void fuzz_cmd(const char *line, size_t size)
{
	struct pop3_cmd cmd;
	const char *err = NULL;
	enum pop3_parse_error e = pop3_cmd_parse(line, size, &cmd, &err);

	FUZZ_CHECK((unsigned)cmd.verb < POP3_VERB_COUNT && pop3_verb_str(cmd.verb) != NULL);
	FUZZ_CHECK(cmd.argc <= POP3_ARGS_MAX);
	switch (e) {
	case POP3_PARSE_OK:
		break;
	case POP3_PARSE_UNKNOWN:
		FUZZ_CHECK(cmd.verb == POP3_VERB_UNKNOWN && err != NULL && cmd.argc == 0);
		return;
	case POP3_PARSE_TOO_LONG:
		FUZZ_CHECK(size > POP3_CMD_LINE_MAX - 2 && err != NULL && cmd.argc == 0);
		return;
	case POP3_PARSE_SYNTAX:
		FUZZ_CHECK(err != NULL && cmd.argc == 0 && cmd.num[0] == 0 && cmd.num[1] == 0);
		return;
	default:
		FUZZ_CHECK(0);
	}

	FUZZ_CHECK(cmd.verb != POP3_VERB_UNKNOWN && size <= POP3_CMD_LINE_MAX - 2);
	FUZZ_CHECK(cmd.argc >= fuzz_arity_min(cmd.verb) && cmd.argc <= fuzz_arity_max(cmd.verb));
	for (size_t i = 0; i < size; i++)
		FUZZ_CHECK((unsigned char)line[i] >= 0x20 && line[i] != 0x7f);
	/* the keyword is the verb's name in some letter case, followed by a space or the end */
	const char *name = pop3_verb_str(cmd.verb);
	size_t klen = strlen(name);
	FUZZ_CHECK(size >= klen && strncasecmp(line, name, klen) == 0 && (size == klen || line[klen] == ' '));
	for (unsigned i = 0; i < cmd.argc; i++) {
		const struct pop3_arg *a = &cmd.arg[i];
		FUZZ_CHECK(a->len > 0 && a->p > line + klen && a->p + a->len <= line + size);
		if (cmd.verb == POP3_VERB_PASS) {
			/* everything after "PASS " */
			FUZZ_CHECK(a->p == line + 5 && a->p + a->len == line + size);
			continue;
		}
		FUZZ_CHECK(a->p[-1] == ' ' && memchr(a->p, ' ', a->len) == NULL);
		FUZZ_CHECK(a->p + a->len == line + size || a->p[a->len] == ' ');
		if (fuzz_numeric(cmd.verb)) {
			/* decimal, no leading zero, and the value is what the digits say */
			FUZZ_CHECK(a->len <= 10 && (a->p[0] != '0' || a->len == 1));
			uint64_t v = 0;
			for (size_t j = 0; j < a->len; j++) {
				FUZZ_CHECK(a->p[j] >= '0' && a->p[j] <= '9');
				v = v * 10 + (uint64_t)(a->p[j] - '0');
			}
			FUZZ_CHECK(v == cmd.num[i]);
		}
	}
	/* nothing but spaces after the last argument */
	const char *end = cmd.argc > 0 ? cmd.arg[cmd.argc - 1].p + cmd.arg[cmd.argc - 1].len : line + klen;
	for (const char *p = end; p < line + size; p++)
		FUZZ_CHECK(*p == ' ');

	/* keywords are case-insensitive: the upper-case line parses the same way */
	char upper[POP3_CMD_LINE_MAX];
	for (size_t i = 0; i < size; i++)
		upper[i] = (char)toupper((unsigned char)line[i]);
	struct pop3_cmd ucmd;
	FUZZ_CHECK(pop3_cmd_parse(upper, size, &ucmd, NULL) == POP3_PARSE_OK);
	FUZZ_CHECK(ucmd.verb == cmd.verb && ucmd.argc == cmd.argc && memcmp(ucmd.num, cmd.num, sizeof(cmd.num)) == 0);
}

/* Encodes in with the pieces cut at the given lengths (cycled); returns the output length. */
static size_t fuzz_stuff(const char *in, size_t len, bool top, uint32_t lines, const size_t *cuts, size_t ncuts,
			 char *out)
{
	struct pop3_stuff st;
	pop3_stuff_init(&st, top, lines);
	size_t o = 0, i = 0, k = 0;
	while (i < len) {
		size_t n = cuts[k++ % ncuts];
		if (n == 0 || n > len - i)
			n = len - i;
		size_t w = pop3_stuff_chunk(&st, in + i, n, out + o);
		FUZZ_CHECK(w <= 2 * n);
		o += w;
		i += n;
	}
	size_t e = pop3_stuff_end(&st, out + o);
	FUZZ_CHECK(e >= 3 && e <= POP3_STUFF_END_MAX);
	return o + e;
}

static void fuzz_content(const uint8_t *data, size_t size)
{
	if (size == 0)
		return;
	bool top = data[0] & 1;
	uint32_t lines = (data[0] >> 1) & 7;
	size_t cuts[3] = {(size_t)(data[0] >> 4) + 1, size > 1 ? (size_t)data[1] % 5 + 1 : 1, 1};
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	char *whole = malloc(2 * len + POP3_STUFF_END_MAX);
	char *pieces = malloc(2 * len + POP3_STUFF_END_MAX);
	FUZZ_CHECK(whole != NULL && pieces != NULL);
	size_t zero = 0;
	size_t a = fuzz_stuff(in, len, top, lines, &zero, 1, whole);
	size_t b = fuzz_stuff(in, len, top, lines, cuts, 3, pieces);
	FUZZ_CHECK(a == b && memcmp(whole, pieces, a) == 0);

	/* CRLF lines only, ending with ".\r\n" after a line end */
	FUZZ_CHECK(a >= 3 && memcmp(whole + a - 3, ".\r\n", 3) == 0);
	FUZZ_CHECK(a == 3 || (whole[a - 5] == '\r' && whole[a - 4] == '\n'));
	for (size_t i = 0; i < a; i++)
		if (whole[i] == '\n')
			FUZZ_CHECK(i > 0 && whole[i - 1] == '\r');
	if (!top) {
		/* un-stuffed, it is the content with every bare LF made CRLF and a final line end */
		char *want = malloc(2 * len + 2), *plain = malloc(a);
		FUZZ_CHECK(want != NULL && plain != NULL);
		size_t w = 0, p = 0;
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
		bool bol = true;
		for (size_t i = 0; i < a - 3; i++) {
			if (bol && whole[i] == '.') {
				/* RFC 1939 §3: a line's leading dot is always doubled */
				FUZZ_CHECK(i + 1 < a - 3 && whole[i + 1] == '.');
				i++;
			}
			plain[p++] = whole[i];
			bol = whole[i] == '\n';
		}
		FUZZ_CHECK(p == w && memcmp(plain, want, w) == 0);
		free(want);
		free(plain);
	}
	free(whole);
	free(pieces);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_cmd((const char *)data, size);
	fuzz_content(data, size);
	return 0;
}

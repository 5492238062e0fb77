/* parse.c — POP3 command lines (RFC 1939 §3, RFC 2449 §3-4) and the byte-stuffing encoder of
 * multi-line responses. No state beyond what the caller passes; no I/O. */
#include "pop3/parse.h"

#include <string.h>
#include <strings.h>

/* How many arguments each keyword takes and of what kind. */
enum pop3_args {
	POP3_ARGS_NONE,     /* STAT, NOOP, RSET, QUIT, CAPA, STLS */
	POP3_ARGS_TOKEN,    /* USER name */
	POP3_ARGS_REST,     /* PASS string: the rest of the line */
	POP3_ARGS_AUTH,     /* AUTH mechanism [initial-response] */
	POP3_ARGS_OPT_NUM,  /* LIST [msg], UIDL [msg] */
	POP3_ARGS_NUM,      /* RETR msg, DELE msg */
	POP3_ARGS_NUM_NUM,  /* TOP msg n */
};

struct pop3_verb_def {
	enum pop3_verb verb;
	const char *name;
	enum pop3_args args;
};

static const struct pop3_verb_def pop3_verbs[] = {
	{POP3_VERB_USER, "USER", POP3_ARGS_TOKEN},
	{POP3_VERB_PASS, "PASS", POP3_ARGS_REST},
	{POP3_VERB_AUTH, "AUTH", POP3_ARGS_AUTH},
	{POP3_VERB_STLS, "STLS", POP3_ARGS_NONE},
	{POP3_VERB_CAPA, "CAPA", POP3_ARGS_NONE},
	{POP3_VERB_QUIT, "QUIT", POP3_ARGS_NONE},
	{POP3_VERB_STAT, "STAT", POP3_ARGS_NONE},
	{POP3_VERB_LIST, "LIST", POP3_ARGS_OPT_NUM},
	{POP3_VERB_RETR, "RETR", POP3_ARGS_NUM},
	{POP3_VERB_DELE, "DELE", POP3_ARGS_NUM},
	{POP3_VERB_NOOP, "NOOP", POP3_ARGS_NONE},
	{POP3_VERB_RSET, "RSET", POP3_ARGS_NONE},
	{POP3_VERB_TOP, "TOP", POP3_ARGS_NUM_NUM},
	{POP3_VERB_UIDL, "UIDL", POP3_ARGS_OPT_NUM},
};
#define POP3_VERB_DEFS (sizeof(pop3_verbs) / sizeof(pop3_verbs[0]))

const char *pop3_verb_str(enum pop3_verb v)
{
	for (size_t i = 0; i < POP3_VERB_DEFS; i++)
		if (pop3_verbs[i].verb == v)
			return pop3_verbs[i].name;
	return "UNKNOWN";
}

static enum pop3_parse_error pop3_fail(const char **error_r, const char *why)
{
	if (error_r != NULL)
		*error_r = why;
	return POP3_PARSE_SYNTAX;
}

/* 1*DIGIT, no sign, no leading zero, at most UINT32_MAX. NULL on success, else a sentence. */
static const char *pop3_number(const struct pop3_arg *a, uint32_t *v_r)
{
	uint64_t v = 0;
	if (a->p[0] < '0' || a->p[0] > '9')
		return "expected a number";
	if (a->p[0] == '0' && a->len > 1)
		return "number with a leading zero";
	for (size_t i = 0; i < a->len; i++) {
		char c = a->p[i];
		if (c < '0' || c > '9')
			return "expected a number";
		v = v * 10 + (uint64_t)(c - '0');
		if (v > UINT32_MAX)
			return "number too large";
	}
	*v_r = (uint32_t)v;
	return NULL;
}

enum pop3_parse_error pop3_cmd_parse(const char *line, size_t len, struct pop3_cmd *cmd_r, const char **error_r)
{
	memset(cmd_r, 0, sizeof(*cmd_r));
	if (error_r != NULL)
		*error_r = NULL;
	if (len > POP3_CMD_LINE_MAX - 2) {
		if (error_r != NULL)
			*error_r = "command line longer than 255 octets";
		return POP3_PARSE_TOO_LONG;
	}

	/* the keyword: up to the first space */
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp != NULL ? (size_t)(sp - line) : len;
	const struct pop3_verb_def *def = NULL;
	for (size_t i = 0; i < POP3_VERB_DEFS; i++) {
		if (strlen(pop3_verbs[i].name) == klen && strncasecmp(line, pop3_verbs[i].name, klen) == 0) {
			def = &pop3_verbs[i];
			break;
		}
	}
	if (def != NULL)
		cmd_r->verb = def->verb;

	/* no control octets anywhere: NUL, CR, LF, TAB, DEL (the session has removed the CRLF) */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			return pop3_fail(error_r, "control character in command line");
	}
	if (klen == 0)
		return pop3_fail(error_r, len == 0 ? "empty command line" : "space before the keyword");
	if (def == NULL) {
		if (error_r != NULL)
			*error_r = "unknown command";
		return POP3_PARSE_UNKNOWN;
	}

	const char *p = line + klen;
	const char *end = line + len;
	if (def->args == POP3_ARGS_REST) {
		/* RFC 1939 §7: "a POP3 server may treat spaces in the argument as part of the password" */
		if (p == end || p + 1 == end)
			return pop3_fail(error_r, "missing argument");
		cmd_r->arg[0] = (struct pop3_arg){p + 1, (size_t)(end - p - 1)};
		cmd_r->argc = 1;
		return POP3_PARSE_OK;
	}

	/* space-separated tokens */
	struct pop3_arg tok[POP3_ARGS_MAX];
	unsigned n = 0;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		const char *q = memchr(p, ' ', (size_t)(end - p));
		size_t tlen = q != NULL ? (size_t)(q - p) : (size_t)(end - p);
		if (n == POP3_ARGS_MAX)
			return pop3_fail(error_r, "too many arguments");
		tok[n++] = (struct pop3_arg){p, tlen};
		p += tlen;
	}

	unsigned min = 0, max = 0;
	bool numeric = false;
	switch (def->args) {
	case POP3_ARGS_NONE: break;
	case POP3_ARGS_TOKEN: min = max = 1; break;
	case POP3_ARGS_AUTH: min = 1, max = 2; break;
	case POP3_ARGS_OPT_NUM: max = 1, numeric = true; break;
	case POP3_ARGS_NUM: min = max = 1, numeric = true; break;
	case POP3_ARGS_NUM_NUM: min = max = 2, numeric = true; break;
	case POP3_ARGS_REST: break; /* handled above */
	}
	if (n < min)
		return pop3_fail(error_r, "missing argument");
	if (n > max)
		return pop3_fail(error_r, max == 0 ? "no arguments allowed" : "too many arguments");
	for (unsigned i = 0; i < n; i++) {
		if (numeric) {
			const char *why = pop3_number(&tok[i], &cmd_r->num[i]);
			if (why != NULL) {
				memset(cmd_r->num, 0, sizeof(cmd_r->num));
				return pop3_fail(error_r, why);
			}
		} else if (def->args == POP3_ARGS_AUTH) {
			/* base64 and mechanism names are ASCII */
			for (size_t j = 0; j < tok[i].len; j++)
				if ((unsigned char)tok[i].p[j] >= 0x80)
					return pop3_fail(error_r, "8-bit octet in AUTH argument");
		}
	}
	for (unsigned i = 0; i < n; i++)
		cmd_r->arg[i] = tok[i];
	cmd_r->argc = n;
	return POP3_PARSE_OK;
}

/* ---- byte-stuffing ---- */

void pop3_stuff_init(struct pop3_stuff *st, bool top, uint32_t lines)
{
	memset(st, 0, sizeof(*st));
	st->top = top;
	st->lines_left = lines;
}

size_t pop3_stuff_chunk(struct pop3_stuff *st, const char *in, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len && !st->stopped) {
		/* RFC 1939 §3: a line that starts with the termination octet gets one more */
		if (st->line_len == 0 && in[i] == '.')
			out[o++] = '.';
		const char *lf = memchr(in + i, '\n', len - i);
		size_t seg = (lf != NULL ? (size_t)(lf - in) : len) - i;
		if (seg > 0) {
			memcpy(out + o, in + i, seg);
			o += seg;
			i += seg;
			st->prev_cr = in[i - 1] == '\r';
			st->line_len = st->line_len + seg >= 2 ? 2 : (uint8_t)(st->line_len + seg);
		}
		if (lf == NULL)
			break;
		/* the end of a line: CRLF whether it came as CRLF or as a bare LF */
		bool empty = st->line_len == 0 || (st->line_len == 1 && st->prev_cr);
		if (!st->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		i++;
		st->line_len = 0;
		st->prev_cr = false;
		if (!st->top)
			continue;
		/* RFC 1939 §7 TOP: the header, the blank line after it, then n lines of the body */
		if (!st->in_body) {
			if (empty) {
				st->in_body = true;
				st->stopped = st->lines_left == 0;
			}
		} else if (--st->lines_left == 0) {
			st->stopped = true;
		}
	}
	return o;
}

size_t pop3_stuff_end(struct pop3_stuff *st, char *out)
{
	size_t o = 0;
	if (st->line_len > 0) {
		/* the content did not end with a line end; a final lone CR becomes part of the CRLF */
		if (!st->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		st->line_len = 0;
		st->prev_cr = false;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* client_parse.c — the outbound client's pure pieces: reply lines, EHLO keywords, the DATA encoder. */
#include "delivery/client_parse.h"

#include <string.h>
#include <strings.h>

const char *delivery_reply_status_str(enum delivery_reply_status s)
{
	switch (s) {
	case DELIVERY_REPLY_MORE: return "more";
	case DELIVERY_REPLY_LINE: return "line";
	case DELIVERY_REPLY_DONE: return "done";
	case DELIVERY_REPLY_TOO_LONG: return "too_long";
	case DELIVERY_REPLY_TOO_MANY_LINES: return "too_many_lines";
	case DELIVERY_REPLY_BARE_EOL: return "bare_eol";
	case DELIVERY_REPLY_NUL: return "nul";
	case DELIVERY_REPLY_BAD_CODE: return "bad_code";
	case DELIVERY_REPLY_BAD_SEP: return "bad_separator";
	case DELIVERY_REPLY_MIXED_CODES: return "mixed_codes";
	}
	return "?";
}

void delivery_reply_init(struct delivery_reply *r)
{
	r->code = 0;
	r->enh[0] = '\0';
	r->text[0] = '\0';
	r->text_len = 0;
	r->truncated = false;
	r->lines = 0;
	r->line = "";
	r->line_len = 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 3463 §2: class "." subject "." detail, subject and detail 1*3 digits, followed by SP or the
 * end of the line. class must be the first digit of the reply code (RFC 2034 §4): a "354" has no
 * enhanced code. Returns the octets of the code, 0 if there is none. */
static size_t enh_parse(const char *s, size_t len, int code, char out[DELIVERY_ENH_MAX])
{
	char cls = (char)('0' + code / 100);
	if (cls != '2' && cls != '4' && cls != '5')
		return 0;
	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && is_digit(s[i]) && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	memcpy(out, s, i); /* i <= 1 + 1 + 3 + 1 + 3 = 9 < DELIVERY_ENH_MAX */
	out[i] = '\0';
	return i;
}

/* Appends printable ASCII to the kept text: a peer's reply ends up in logs, bounces and the API. */
static void reply_text_add(struct delivery_reply *r, const char *s, size_t len)
{
	if (r->truncated || len == 0)
		return;
	const size_t room = DELIVERY_REPLY_TEXT_MAX - 4; /* "..." and the NUL */
	if (r->text_len > 0) {
		if (r->text_len + 1 > room)
			goto cut;
		r->text[r->text_len++] = ' ';
	}
	for (size_t i = 0; i < len; i++) {
		if (r->text_len >= room)
			goto cut;
		unsigned char c = (unsigned char)s[i];
		r->text[r->text_len++] = c == '\t' ? ' ' : (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	r->text[r->text_len] = '\0';
	return;
cut:
	memcpy(r->text + r->text_len, "...", 4);
	r->text_len += 3;
	r->truncated = true;
}

static enum delivery_reply_status reply_fail(enum delivery_reply_status st, const char *why, const char **error_r)
{
	if (error_r != NULL)
		*error_r = why;
	return st;
}

enum delivery_reply_status delivery_reply_feed(struct delivery_reply *r, const char *p, size_t len, size_t *used_r,
					       const char **error_r)
{
	*used_r = 0;
	size_t scan = len < DELIVERY_REPLY_LINE_MAX ? len : DELIVERY_REPLY_LINE_MAX;
	const char *lf = memchr(p, '\n', scan);
	if (lf == NULL) {
		if (len >= DELIVERY_REPLY_LINE_MAX)
			return reply_fail(DELIVERY_REPLY_TOO_LONG, "reply line longer than 2048 octets", error_r);
		return DELIVERY_REPLY_MORE;
	}
	size_t n = (size_t)(lf - p);
	/* RFC 5321 §2.3.8: a line ends with CRLF only; we hold servers to what we are held to */
	if (n == 0 || p[n - 1] != '\r')
		return reply_fail(DELIVERY_REPLY_BARE_EOL, "reply line ended by a bare LF", error_r);
	n--;
	if (memchr(p, '\r', n) != NULL)
		return reply_fail(DELIVERY_REPLY_BARE_EOL, "bare CR in a reply line", error_r);
	if (memchr(p, '\0', n) != NULL)
		return reply_fail(DELIVERY_REPLY_NUL, "NUL octet in a reply line", error_r);
	/* RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39; the second digit is taken up to 9, as
	 * some servers send e.g. 571, and only the first digit decides anything */
	if (n < 3 || p[0] < '2' || p[0] > '5' || !is_digit(p[1]) || !is_digit(p[2]))
		return reply_fail(DELIVERY_REPLY_BAD_CODE, "reply does not start with a three-digit code", error_r);
	int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	char sep = n > 3 ? p[3] : ' ';
	if (sep != ' ' && sep != '-')
		return reply_fail(DELIVERY_REPLY_BAD_SEP, "reply code not followed by SP or '-'", error_r);
	/* RFC 5321 §4.2.1: every line of a multi-line reply carries the same code */
	if (r->lines > 0 && code != r->code)
		return reply_fail(DELIVERY_REPLY_MIXED_CODES, "lines of one reply with different codes", error_r);
	if (r->lines >= DELIVERY_REPLY_LINES_MAX)
		return reply_fail(DELIVERY_REPLY_TOO_MANY_LINES, "reply of more than 200 lines", error_r);

	const char *text = n > 4 ? p + 4 : p + n;
	size_t tlen = n > 4 ? n - 4 : 0;
	r->line = text;
	r->line_len = tlen;
	if (r->lines == 0) {
		r->code = code;
		size_t e = enh_parse(text, tlen, code, r->enh);
		text += e;
		tlen -= e;
	} else if (r->enh[0] != '\0') {
		/* RFC 2034 §4: each line repeats the enhanced code; keep it once */
		size_t el = strlen(r->enh);
		if (tlen >= el && memcmp(text, r->enh, el) == 0 && (tlen == el || text[el] == ' ')) {
			text += el;
			tlen -= el;
		}
	}
	while (tlen > 0 && *text == ' ')
		text++, tlen--;
	while (tlen > 0 && text[tlen - 1] == ' ')
		tlen--;
	reply_text_add(r, text, tlen);
	r->lines++;
	*used_r = (size_t)(lf - p) + 1;
	return sep == '-' ? DELIVERY_REPLY_LINE : DELIVERY_REPLY_DONE;
}

enum result delivery_reply_result(const struct delivery_reply *r)
{
	switch (r->code / 100) {
	case 2:
	case 3: return RESULT_OK;
	case 5: return RESULT_PERMFAIL;
	default: return RESULT_TEMPFAIL;
	}
}

void delivery_ehlo_init(struct delivery_ehlo *e)
{
	memset(e, 0, sizeof(*e));
}

static bool word_is(const char *w, size_t len, const char *kw)
{
	return strlen(kw) == len && strncasecmp(w, kw, len) == 0;
}

/* The next space-separated word of s[*pos..len). */
static bool next_word(const char *s, size_t len, size_t *pos, const char **w_r, size_t *wlen_r)
{
	size_t i = *pos;
	while (i < len && s[i] == ' ')
		i++;
	size_t start = i;
	while (i < len && s[i] != ' ')
		i++;
	*pos = i;
	*w_r = s + start;
	*wlen_r = i - start;
	return i > start;
}

/* RFC 1870 §4: size-value = 1*20DIGIT. A value too big for 64 bits is as good as no limit. */
static uint64_t size_value(const char *w, size_t len, bool *ok_r)
{
	uint64_t v = 0;
	*ok_r = len > 0 && len <= 20;
	for (size_t i = 0; i < len && *ok_r; i++) {
		if (!is_digit(w[i])) {
			*ok_r = false;
			break;
		}
		unsigned d = (unsigned)(w[i] - '0');
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	return *ok_r ? v : 0;
}

void delivery_ehlo_line(struct delivery_ehlo *e, const char *line, size_t len)
{
	/* RFC 5321 §4.1.1.1: the first line is "domain [greet]", the others "ehlo-keyword *(SP param)" */
	if (e->lines++ == 0)
		return;
	size_t pos = 0;
	const char *kw;
	size_t kwlen;
	if (!next_word(line, len, &pos, &kw, &kwlen))
		return;
	const char *w;
	size_t wlen;
	if (kwlen > 5 && strncasecmp(kw, "AUTH=", 5) == 0) {
		/* the pre-RFC 2554 form "AUTH=PLAIN LOGIN", still sent by some servers */
		pos = 5 + (size_t)(kw - line);
		kwlen = 4;
	}
	if (word_is(kw, kwlen, "PIPELINING"))
		e->pipelining = true;
	else if (word_is(kw, kwlen, "STARTTLS"))
		e->starttls = true;
	else if (word_is(kw, kwlen, "8BITMIME"))
		e->eightbitmime = true;
	else if (word_is(kw, kwlen, "SMTPUTF8"))
		e->smtputf8 = true;
	else if (word_is(kw, kwlen, "CHUNKING"))
		e->chunking = true;
	else if (word_is(kw, kwlen, "ENHANCEDSTATUSCODES"))
		e->enhancedstatuscodes = true;
	else if (word_is(kw, kwlen, "DSN"))
		e->dsn = true;
	else if (word_is(kw, kwlen, "REQUIRETLS"))
		e->requiretls = true;
	else if (word_is(kw, kwlen, "SIZE")) {
		e->size = true;
		if (next_word(line, len, &pos, &w, &wlen)) {
			bool ok;
			uint64_t v = size_value(w, wlen, &ok);
			e->size_max = ok ? v : 0; /* a malformed value tells us nothing */
		}
	} else if (word_is(kw, kwlen, "AUTH")) {
		while (next_word(line, len, &pos, &w, &wlen)) {
			if (word_is(w, wlen, "PLAIN"))
				e->auth |= DELIVERY_AUTH_PLAIN;
			else if (word_is(w, wlen, "LOGIN"))
				e->auth |= DELIVERY_AUTH_LOGIN;
		}
	}
}

bool delivery_xtext_encode(const char *s, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = c >= 33 && c <= 126 && c != '+' && c != '=';
		if (o + (plain ? 1 : 3) >= out_size)
			return false;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (out_size == 0)
		return false;
	out[o] = '\0';
	return true;
}

void delivery_dot_init(struct delivery_dot *d, bool stuff)
{
	d->stuff = stuff;
	d->bol = true;
	d->after_cr = false;
}

size_t delivery_dot_encode(struct delivery_dot *d, const unsigned char *in, size_t in_len, size_t *in_used_r,
			   char *out, size_t out_size)
{
	size_t i = 0, o = 0;
	while (i < in_len && out_size - o >= DELIVERY_DOT_EXPANSION) {
		unsigned char c = in[i++];
		if (d->after_cr) {
			d->after_cr = false;
			if (c == '\n')
				continue; /* the LF of a CRLF whose CR was already written as CRLF */
		}
		switch (c) {
		case '\r':
			/* RFC 5321 §2.3.8: a bare CR or LF becomes CRLF */
			d->after_cr = true;
			/* fall through */
		case '\n':
			out[o++] = '\r';
			out[o++] = '\n';
			d->bol = true;
			break;
		case '\0':
			break; /* dropped, see client_parse.h */
		case '.':
			/* RFC 5321 §4.5.2: a line that starts with a period gets one more */
			if (d->bol && d->stuff)
				out[o++] = '.';
			out[o++] = '.';
			d->bol = false;
			break;
		default:
			out[o++] = (char)c;
			d->bol = false;
			break;
		}
	}
	*in_used_r = i;
	return o;
}

size_t delivery_dot_finish(struct delivery_dot *d, char *out, size_t out_size)
{
	size_t o = 0;
	if (out_size < DELIVERY_DOT_FINISH_MAX)
		return 0;
	/* RFC 5321 §4.1.1.4: the content ends with a complete line, then "." CRLF */
	if (!d->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
		d->bol = true;
	}
	if (d->stuff) {
		out[o++] = '.';
		out[o++] = '\r';
		out[o++] = '\n';
	}
	d->after_cr = false;
	return o;
}

uint64_t delivery_dot_size(const unsigned char *msg, size_t len, bool *has_8bit_r)
{
	uint64_t size = 0;
	bool bol = true, after_cr = false;
	unsigned char high = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = msg[i];
		high |= c;
		if (after_cr) {
			after_cr = false;
			if (c == '\n')
				continue;
		}
		if (c == '\r' || c == '\n') {
			after_cr = c == '\r';
			size += 2;
			bol = true;
		} else if (c != '\0') {
			size++;
			bol = false;
		}
	}
	if (!bol)
		size += 2;
	*has_8bit_r = (high & 0x80) != 0;
	return size;
}

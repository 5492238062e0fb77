/* test_smtp_client.c — the outbound SMTP client: its pure pieces (reply parser, EHLO keywords, the
 * DATA encoder against every outbound smuggling sequence of shared/testdata/smtp/smuggling.md), then
 * whole client runs against a scripted fake server on a loopback listener in the same event loop:
 * each script is a table of expected command lines and canned replies. The TLS runs use a throwaway
 * self-signed certificate made here with the OpenSSL API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery/client.h"
#include "sasl/sasl.h"
#include "util/base64.h"

/* ================================================================================================
 * Reply parser
 * ============================================================================================== */

struct parsed {
	enum delivery_reply_status st; /* the last status */
	struct delivery_reply r;
	size_t used;                   /* octets consumed in all */
	unsigned replies;
};

/* Feeds s until a reply is complete, an error, or the input runs out. */
static struct parsed reply_parse(const char *s, size_t len)
{
	struct parsed p = {0};
	delivery_reply_init(&p.r);
	for (;;) {
		size_t used;
		const char *err = NULL;
		p.st = delivery_reply_feed(&p.r, s + p.used, len - p.used, &used, &err);
		p.used += used;
		if (p.st != DELIVERY_REPLY_LINE && p.st != DELIVERY_REPLY_DONE && p.st != DELIVERY_REPLY_MORE)
			assert_non_null(err);
		if (p.st != DELIVERY_REPLY_LINE)
			return p;
	}
}

#define PARSE(s) reply_parse(s, sizeof(s) - 1)

static void test_reply_single(void **state)
{
	struct parsed p = PARSE("250 2.1.0 Sender ok\r\n");
	assert_int_equal(p.st, DELIVERY_REPLY_DONE);
	assert_int_equal(p.r.code, 250);
	assert_string_equal(p.r.enh, "2.1.0");
	assert_string_equal(p.r.text, "Sender ok");
	assert_int_equal(p.used, 21);
	assert_int_equal(delivery_reply_result(&p.r), RESULT_OK);

	p = PARSE("250\r\n"); /* RFC 5321 §4.2: the text is optional */
	assert_int_equal(p.st, DELIVERY_REPLY_DONE);
	assert_int_equal(p.r.code, 250);
	assert_string_equal(p.r.text, "");

	p = PARSE("354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(p.r.code, 354);
	assert_string_equal(p.r.enh, ""); /* no enhanced code for 3xx */
	assert_int_equal(delivery_reply_result(&p.r), RESULT_OK);

	p = PARSE("450 4.2.0 <a@b>: Recipient address rejected: Greylisted\r\n");
	assert_int_equal(delivery_reply_result(&p.r), RESULT_TEMPFAIL);
	assert_string_equal(p.r.enh, "4.2.0");
	p = PARSE("550 5.1.1 no such user\r\n");
	assert_int_equal(delivery_reply_result(&p.r), RESULT_PERMFAIL);

	/* an enhanced code of another class is only text (RFC 2034 §4) */
	p = PARSE("250 5.1.1 odd\r\n");
	assert_string_equal(p.r.enh, "");
	assert_string_equal(p.r.text, "5.1.1 odd");
	/* malformed enhanced codes are text */
	p = PARSE("550 5.1234.1 x\r\n");
	assert_string_equal(p.r.enh, "");
	p = PARSE("550 5.1.1x\r\n");
	assert_string_equal(p.r.enh, "");
	p = PARSE("550 5.100.999\r\n");
	assert_string_equal(p.r.enh, "5.100.999");
	assert_string_equal(p.r.text, "");
	/* second digit up to 9 (571 from old servers), first digit decides */
	p = PARSE("571 Delivery not authorized\r\n");
	assert_int_equal(p.st, DELIVERY_REPLY_DONE);
	assert_int_equal(delivery_reply_result(&p.r), RESULT_PERMFAIL);
}

static void test_reply_multiline(void **state)
{
	static const char in[] = "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
				 "550-5.1.1 Please try double-checking the recipient's email\r\n"
				 "550 5.1.1 address for typos.\r\n"
				 "250 next\r\n";
	struct parsed p = PARSE(in);
	assert_int_equal(p.st, DELIVERY_REPLY_DONE);
	assert_int_equal(p.r.code, 550);
	assert_int_equal(p.r.lines, 3);
	assert_string_equal(p.r.enh, "5.1.1");
	assert_string_equal(p.r.text, "The email account that you tried to reach does not exist. Please try "
				      "double-checking the recipient's email address for typos.");
	/* the next reply is left in the input */
	assert_int_equal(p.used, sizeof(in) - 1 - 10);

	/* a multi-line reply split anywhere: MORE until the last line is there */
	for (size_t cut = 0; cut < sizeof(in) - 11; cut++) {
		struct parsed q = reply_parse(in, cut);
		assert_true(q.st == DELIVERY_REPLY_MORE);
	}
	/* the line text of EHLO-style lines */
	struct delivery_reply r;
	delivery_reply_init(&r);
	size_t used;
	assert_int_equal(delivery_reply_feed(&r, "250-mx.example.org\r\n", 20, &used, NULL), DELIVERY_REPLY_LINE);
	assert_int_equal(r.line_len, 14);
	assert_memory_equal(r.line, "mx.example.org", 14);
	assert_int_equal(delivery_reply_feed(&r, "250 SIZE 100\r\n", 14, &used, NULL), DELIVERY_REPLY_DONE);
	assert_int_equal(r.line_len, 8);
	assert_string_equal(r.text, "mx.example.org SIZE 100");
}

static void test_reply_hostile(void **state)
{
	char big[DELIVERY_REPLY_LINE_MAX + 100];
	memset(big, 'a', sizeof(big));
	memcpy(big, "250 ", 4);
	/* too long: refused as soon as the limit is passed without LF, and with it */
	struct parsed p = reply_parse(big, sizeof(big));
	assert_int_equal(p.st, DELIVERY_REPLY_TOO_LONG);
	assert_int_equal(p.used, 0);
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	p = reply_parse(big, sizeof(big));
	assert_int_equal(p.st, DELIVERY_REPLY_TOO_LONG);
	/* just under the limit is fine */
	memcpy(big + DELIVERY_REPLY_LINE_MAX - 2, "\r\n", 2);
	p = reply_parse(big, DELIVERY_REPLY_LINE_MAX);
	assert_int_equal(p.st, DELIVERY_REPLY_DONE);
	assert_true(p.r.truncated);
	assert_true(p.r.text_len < DELIVERY_REPLY_TEXT_MAX);
	assert_int_equal(strlen(p.r.text), p.r.text_len);
	assert_string_equal(p.r.text + p.r.text_len - 3, "...");

	assert_int_equal(PARSE("250OK\r\n").st, DELIVERY_REPLY_BAD_SEP);
	assert_int_equal(PARSE("250\tOK\r\n").st, DELIVERY_REPLY_BAD_SEP);
	assert_int_equal(PARSE("2x0 OK\r\n").st, DELIVERY_REPLY_BAD_CODE);
	assert_int_equal(PARSE("600 OK\r\n").st, DELIVERY_REPLY_BAD_CODE);
	assert_int_equal(PARSE("199 OK\r\n").st, DELIVERY_REPLY_BAD_CODE);
	assert_int_equal(PARSE("25\r\n").st, DELIVERY_REPLY_BAD_CODE);
	assert_int_equal(PARSE("\r\n").st, DELIVERY_REPLY_BAD_CODE);
	assert_int_equal(PARSE(" 250 OK\r\n").st, DELIVERY_REPLY_BAD_CODE);
	assert_int_equal(PARSE("250 OK\n").st, DELIVERY_REPLY_BARE_EOL);
	assert_int_equal(PARSE("\n").st, DELIVERY_REPLY_BARE_EOL);
	assert_int_equal(PARSE("250 O\rK\r\n").st, DELIVERY_REPLY_BARE_EOL);
	assert_int_equal(PARSE("250-a\r\n250 OK\n").st, DELIVERY_REPLY_BARE_EOL);
	assert_int_equal(PARSE("250 O\0K\r\n").st, DELIVERY_REPLY_NUL);
	assert_int_equal(PARSE("\0\r\n").st, DELIVERY_REPLY_NUL);
	assert_int_equal(PARSE("250-a\r\n550 b\r\n").st, DELIVERY_REPLY_MIXED_CODES);
	/* incomplete: wait */
	assert_int_equal(PARSE("250 OK").st, DELIVERY_REPLY_MORE);
	assert_int_equal(PARSE("250 OK\r").st, DELIVERY_REPLY_MORE);
	assert_int_equal(PARSE("").st, DELIVERY_REPLY_MORE);

	/* too many lines */
	char lines[8 * (DELIVERY_REPLY_LINES_MAX + 2)];
	size_t n = 0;
	for (int i = 0; i < DELIVERY_REPLY_LINES_MAX + 1; i++)
		n += (size_t)snprintf(lines + n, sizeof(lines) - n, "250-x\r\n");
	p = reply_parse(lines, n);
	assert_int_equal(p.st, DELIVERY_REPLY_TOO_MANY_LINES);

	/* controls and 8-bit octets never reach the kept text */
	p = PARSE("550 5.7.1 bad \x1b[31mred\x7f \xc3\xa9t\xc3\xa9\tx\r\n");
	assert_int_equal(p.st, DELIVERY_REPLY_DONE);
	assert_string_equal(p.r.text, "bad ?[31mred? ??t?? x");
}

/* ================================================================================================
 * EHLO keywords
 * ============================================================================================== */

static struct delivery_ehlo ehlo_parse(const char *reply)
{
	struct delivery_ehlo e;
	struct delivery_reply r;
	delivery_ehlo_init(&e);
	delivery_reply_init(&r);
	size_t off = 0, len = strlen(reply), used;
	enum delivery_reply_status st;
	do {
		st = delivery_reply_feed(&r, reply + off, len - off, &used, NULL);
		assert_true(st == DELIVERY_REPLY_LINE || st == DELIVERY_REPLY_DONE);
		delivery_ehlo_line(&e, r.line, r.line_len);
		off += used;
	} while (st == DELIVERY_REPLY_LINE);
	return e;
}

/* RFC 3461 §4: what goes on as ENVID and ORCPT; "+" and "=" and everything outside 33-126 as +XX */
static void test_xtext_encode(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"abc", "abc"},
		{"a+b=c", "a+2Bb+3Dc"},
		{"a b", "a+20b"},
		{"\"q\"@x", "\"q\"@x"},
		{"~!", "~!"},
		{"\x7f\x01", "+7F+01"},
		{"\xc3\xbc", "+C3+BC"},
		{"", ""},
	};
	char out[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(delivery_xtext_encode(cases[i].in, out, sizeof(out)));
		assert_string_equal(out, cases[i].out);
	}
	/* exactly fitting, one short, nothing */
	assert_true(delivery_xtext_encode("a+", out, 5));
	assert_string_equal(out, "a+2B");
	assert_false(delivery_xtext_encode("a+", out, 4));
	assert_false(delivery_xtext_encode("a", out, 1));
	assert_false(delivery_xtext_encode("", out, 0));
}

static void test_ehlo_keywords(void **state)
{
	struct delivery_ehlo e = ehlo_parse("250-mx.example.org Hello client.test\r\n"
					    "250-PIPELINING\r\n"
					    "250-SIZE 10240000\r\n"
					    "250-VRFY\r\n"
					    "250-ETRN\r\n"
					    "250-STARTTLS\r\n"
					    "250-AUTH PLAIN LOGIN CRAM-MD5\r\n"
					    "250-ENHANCEDSTATUSCODES\r\n"
					    "250-8BITMIME\r\n"
					    "250-DSN\r\n"
					    "250-SMTPUTF8\r\n"
					    "250-REQUIRETLS\r\n"
					    "250 CHUNKING\r\n");
	assert_int_equal(e.lines, 13);
	assert_true(e.requiretls);
	assert_true(e.pipelining && e.starttls && e.eightbitmime && e.smtputf8 && e.chunking && e.dsn &&
		    e.enhancedstatuscodes && e.size);
	assert_int_equal(e.size_max, 10240000);
	assert_int_equal(e.auth, DELIVERY_AUTH_PLAIN | DELIVERY_AUTH_LOGIN);

	/* case-insensitive; the old AUTH= form; extra spaces */
	e = ehlo_parse("250-mx\r\n250-pipelining\r\n250-Size\r\n250-starttls  \r\n250 auth=login\r\n");
	assert_true(e.pipelining && e.starttls && e.size);
	assert_int_equal(e.size_max, 0);
	assert_int_equal(e.auth, DELIVERY_AUTH_LOGIN);
	assert_false(e.eightbitmime || e.smtputf8 || e.dsn || e.requiretls);
	e = ehlo_parse("250-mx\r\n250-requiretls\r\n250-REQUIRETLSX\r\n250 dsn\r\n");
	assert_true(e.requiretls && e.dsn);
	e = ehlo_parse("250-mx\r\n250 REQUIRETLSX\r\n");
	assert_false(e.requiretls);
	e = ehlo_parse("250-mx\r\n250 AUTH  login   PLAIN\r\n");
	assert_int_equal(e.auth, DELIVERY_AUTH_PLAIN | DELIVERY_AUTH_LOGIN);

	/* the first line is the server's name, whatever it says */
	e = ehlo_parse("250 PIPELINING STARTTLS\r\n");
	assert_false(e.pipelining || e.starttls);

	/* SIZE: 0 is no limit, malformed values tell nothing, huge ones saturate */
	e = ehlo_parse("250-mx\r\n250 SIZE 0\r\n");
	assert_true(e.size);
	assert_int_equal(e.size_max, 0);
	e = ehlo_parse("250-mx\r\n250 SIZE 12x\r\n");
	assert_true(e.size);
	assert_int_equal(e.size_max, 0);
	e = ehlo_parse("250-mx\r\n250 SIZE 99999999999999999999\r\n");
	assert_int_equal(e.size_max, UINT64_MAX);
	e = ehlo_parse("250-mx\r\n250 SIZE 123456789012345678901\r\n"); /* 21 digits: not a size-value */
	assert_int_equal(e.size_max, 0);

	/* near misses are not keywords */
	e = ehlo_parse("250-mx\r\n250-PIPELININGX\r\n250-XSTARTTLS\r\n250-8BITMIMEX\r\n250-AUTH=\r\n250 SIZEX 5\r\n");
	assert_false(e.pipelining || e.starttls || e.eightbitmime || e.size);
	assert_int_equal(e.auth, 0);
	e = ehlo_parse("250-mx\r\n250 AUTH PLAINX XLOGIN\r\n");
	assert_int_equal(e.auth, 0);
}

/* ================================================================================================
 * DATA encoder
 * ============================================================================================== */

/* Encodes in with the given input piece size and output room (0 = all). */
static size_t dot_run(const char *in, size_t len, size_t piece, size_t room, bool stuff, char *out, size_t out_size)
{
	struct delivery_dot d;
	delivery_dot_init(&d, stuff);
	size_t off = 0, o = 0;
	if (piece == 0)
		piece = len ? len : 1;
	while (off < len) {
		size_t n = len - off < piece ? len - off : piece;
		size_t used;
		size_t space = out_size - o;
		if (room != 0 && space > room)
			space = room;
		o += delivery_dot_encode(&d, (const unsigned char *)in + off, n, &used, out + o, space);
		off += used;
		assert_true(o + DELIVERY_DOT_FINISH_MAX <= out_size);
	}
	o += delivery_dot_finish(&d, out + o, out_size - o);
	return o;
}

/* What leaves for the wire: CRLF only, every line starting with '.' stuffed, one end-of-data line at
 * the end and nowhere else. */
static void assert_wire_safe(const char *w, size_t n)
{
	assert_true(n >= 3);
	assert_memory_equal(w + n - 3, ".\r\n", 3);
	assert_true(n == 3 || (w[n - 5] == '\r' && w[n - 4] == '\n'));
	for (size_t i = 0; i < n; i++) {
		if (w[i] == '\r')
			assert_true(i + 1 < n && w[i + 1] == '\n');
		if (w[i] == '\n')
			assert_true(i > 0 && w[i - 1] == '\r');
		assert_true(w[i] != '\0');
	}
	for (size_t i = 0; i < n - 3; i++) {
		bool bol = i == 0 || w[i - 1] == '\n';
		if (bol && w[i] == '.')
			assert_true(i + 1 < n - 3 && w[i + 1] == '.');
	}
}

static void test_dot_basic(void **state)
{
	char out[256];
	static const char in[] = "Subject: x\r\n\r\n.hidden\r\n..two\r\n.\r\nend";
	size_t n = dot_run(in, sizeof(in) - 1, 0, 0, true, out, sizeof(out));
	static const char want[] = "Subject: x\r\n\r\n..hidden\r\n...two\r\n..\r\nend\r\n.\r\n";
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, n);
	assert_wire_safe(out, n);

	/* empty message: only the end-of-data line; a message ending in CRLF gets no extra line */
	n = dot_run("", 0, 0, 0, true, out, sizeof(out));
	assert_int_equal(n, 3);
	assert_memory_equal(out, ".\r\n", 3);
	n = dot_run("a\r\n", 3, 0, 0, true, out, sizeof(out));
	assert_int_equal(n, 6);
	assert_memory_equal(out, "a\r\n.\r\n", 6);
	/* a dot first in the message */
	n = dot_run(".", 1, 0, 0, true, out, sizeof(out));
	assert_memory_equal(out, "..\r\n.\r\n", n);
	/* a dot that is not first on its line stays single */
	n = dot_run("a.b\r\n x.\r\n", 10, 0, 0, true, out, sizeof(out));
	assert_memory_equal(out, "a.b\r\n x.\r\n.\r\n", n);

	/* normalise only (before DKIM signing): no stuffing, no end line, same line ends */
	n = dot_run("a\nb\r.c\r\r\n\0d", 11, 0, 0, false, out, sizeof(out));
	static const char norm[] = "a\r\nb\r\n.c\r\n\r\nd\r\n";
	assert_int_equal(n, sizeof(norm) - 1);
	assert_memory_equal(out, norm, n);

	/* SIZE counts the normalised content without stuffing or the end line */
	bool eight;
	assert_int_equal(delivery_dot_size((const unsigned char *)"a\nb\r.c\r\r\n\0d", 11, &eight), sizeof(norm) - 1);
	assert_false(eight);
	assert_int_equal(delivery_dot_size((const unsigned char *)"\xc3\xa9\r\n", 4, &eight), 4);
	assert_true(eight);
	assert_int_equal(delivery_dot_size((const unsigned char *)"", 0, &eight), 0);
}

/* shared/testdata/smtp/smuggling.md, outbound: rows 1-10 and 11-12, each between text and a
 * smuggled transaction; and what must leave instead. */
static const struct {
	const char *seq;
	size_t len;
	const char *out;
} smuggle_rows[] = {
	{"\n.\n", 3, "\r\n..\r\n"},                 /* 1 */
	{"\n.\r\n", 4, "\r\n..\r\n"},               /* 2 */
	{"\r\n.\n", 4, "\r\n..\r\n"},               /* 3 */
	{"\r.\r", 3, "\r\n..\r\n"},                 /* 4 */
	{"\r.\n", 3, "\r\n..\r\n"},                 /* 5 */
	{"\n.\r", 3, "\r\n..\r\n"},                 /* 6 */
	{"\r.\r\n", 4, "\r\n..\r\n"},               /* 7 */
	{"\r\n.\r", 4, "\r\n..\r\n"},               /* 8 */
	{"\r\n\0.\r\n", 6, "\r\n..\r\n"},           /* 9: NUL dropped, the dot then stuffed */
	{"\r\n.\0\r\n", 6, "\r\n..\r\n"},           /* 10 */
	{"\r\n.\r\r\n", 6, "\r\n..\r\n\r\n"},       /* 11 */
	{"\r\r\n.\r\r\n", 7, "\r\n\r\n..\r\n\r\n"}, /* 12 */
};
#define SMUGGLE_ROWS (sizeof(smuggle_rows) / sizeof(smuggle_rows[0]))
static const char smuggled[] = "MAIL FROM:<smuggled@example.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
			       "From: smuggled@example.org\r\n\r\nsmuggled\r\n.\r\n";

static size_t smuggle_input(size_t row, char *in)
{
	size_t n = 0;
	memcpy(in + n, "body line", 9), n += 9;
	memcpy(in + n, smuggle_rows[row].seq, smuggle_rows[row].len), n += smuggle_rows[row].len;
	memcpy(in + n, smuggled, sizeof(smuggled) - 1), n += sizeof(smuggled) - 1;
	return n;
}

static size_t smuggle_expected(size_t row, char *want)
{
	size_t n = 0;
	memcpy(want + n, "body line", 9), n += 9;
	n += (size_t)sprintf(want + n, "%s", smuggle_rows[row].out);
	/* the smuggled transaction is just text, its final "." stuffed */
	static const char rest[] = "MAIL FROM:<smuggled@example.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
				   "From: smuggled@example.org\r\n\r\nsmuggled\r\n..\r\n.\r\n";
	memcpy(want + n, rest, sizeof(rest) - 1), n += sizeof(rest) - 1;
	return n;
}

static void test_dot_smuggling(void **state)
{
	for (size_t row = 0; row < SMUGGLE_ROWS; row++) {
		char in[512], want[512], out[1024];
		size_t len = smuggle_input(row, in);
		size_t wn = smuggle_expected(row, want);
		/* every split of the input, and output room from the minimum up */
		for (size_t piece = 0; piece < 9; piece++) {
			for (size_t room = 0; room < 6; room++) {
				size_t n = dot_run(in, len, piece, room == 0 ? 0 : room + 1, true, out, sizeof(out));
				assert_wire_safe(out, n);
				if (n != wn || memcmp(out, want, n) != 0)
					fail_msg("row %zu piece %zu room %zu: wrong output", row + 1, piece, room);
			}
		}
	}
	/* every sequence at the very start and the very end of a message */
	for (size_t row = 0; row < SMUGGLE_ROWS; row++) {
		char out[64];
		size_t n = dot_run(smuggle_rows[row].seq, smuggle_rows[row].len, 1, 0, true, out, sizeof(out));
		assert_wire_safe(out, n);
	}
}

/* ================================================================================================
 * The fake server
 * ============================================================================================== */

enum {
	F_DATA = 1 << 0,          /* after the reply (354), read the content up to CRLF.CRLF */
	F_TLS = 1 << 1,           /* after the reply, TLS handshake as the server */
	F_CLOSE = 1 << 2,         /* after the reply, close */
	F_HANG = 1 << 3,          /* never reply, never read on */
	F_ALONE = 1 << 4,         /* nothing buffered behind this command (no pipelining) */
	F_GROUP = 1 << 5,         /* the whole pipelined group, up to DATA, is buffered with this command */
	F_CLOSE_IN_DATA = 1 << 6, /* with F_DATA: close as soon as some content arrived */
	F_GARBAGE = 1 << 7,       /* after the reply, send bytes that are not TLS and close */
	F_TRICKLE = 1 << 8,       /* send the reply one octet per tick, then go on with the script */
	F_REPEAT = 1 << 9,        /* send the reply (each octet a tick with F_TRICKLE) again and again */
};

/* The pace of F_TRICKLE and F_REPEAT: far below any timeout of the runs, so that a timer reset by
 * every read would never fire. */
#define FAKE_TICK_MS 20

/* the scripts leave out flags where there are none */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct fake_step {
	const char *expect; /* a command line without CRLF; "xyz*" matches a prefix; NULL: no command */
	const char *reply;  /* sent as it is; NULL: nothing */
	unsigned flags;
};

struct fake {
	struct event_base *base;
	struct evconnlistener *lis;
	struct bufferevent *bev;
	SSL_CTX *tls;       /* for STARTTLS and implicit TLS */
	bool implicit;
	const struct fake_step *steps;
	size_t nsteps, step;
	bool in_data;
	size_t data_scan; /* where to look for the end of the content next */
	bool hanging;
	bool closing;
	bool closed;
	bool trickling;         /* a reply is under way, one piece per tick */
	const char *trickle;    /* ... this one */
	size_t trickle_off;
	unsigned trickle_flags;
	size_t trickled;        /* octets sent by ticks, in all */
	struct event *tick;
	unsigned accepted;
	struct evbuffer *data; /* the content as received, with the end line */
	char error[512];
};

static void fake_fail(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fake_fail(struct fake *f, const char *fmt, ...)
{
	if (f->error[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->error, sizeof(f->error), fmt, ap);
	va_end(ap);
}

static void fake_close(struct fake *f)
{
	if (f->bev != NULL)
		bufferevent_free(f->bev);
	f->bev = NULL;
	f->closed = true;
	f->trickling = false;
	if (f->tick != NULL)
		evtimer_del(f->tick);
}

static void fake_tick_arm(struct fake *f)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = FAKE_TICK_MS * 1000};
	evtimer_add(f->tick, &tv);
}

static void fake_read_cb(struct bufferevent *bev, void *arg);
static void fake_write_cb(struct bufferevent *bev, void *arg);
static void fake_event_cb(struct bufferevent *bev, short what, void *arg);

static void fake_setcb(struct fake *f)
{
	bufferevent_setcb(f->bev, fake_read_cb, fake_write_cb, fake_event_cb, f);
	bufferevent_enable(f->bev, EV_READ | EV_WRITE);
}

static bool fake_match(const char *expect, const char *line)
{
	size_t n = strlen(expect);
	if (n > 0 && expect[n - 1] == '*')
		return strncmp(expect, line, n - 1) == 0;
	return strcmp(expect, line) == 0;
}

/* Runs the script as far as the input allows. */
static void fake_run(struct fake *f)
{
	while (f->bev != NULL && !f->hanging && !f->closing && !f->trickling) {
		struct evbuffer *in = bufferevent_get_input(f->bev);
		if (f->in_data) {
			size_t avail = evbuffer_get_length(in);
			const struct fake_step *st = &f->steps[f->step - 1];
			if (avail > 0 && (st->flags & F_CLOSE_IN_DATA)) {
				fake_close(f);
				return;
			}
			/* search only what is new (and the 4 octets before it): a large message stays linear */
			struct evbuffer_ptr from;
			evbuffer_ptr_set(in, &from, f->data_scan, EVBUFFER_PTR_SET);
			struct evbuffer_ptr end = evbuffer_search(in, "\r\n.\r\n", 5, &from);
			f->data_scan = avail > 4 ? avail - 4 : 0;
			size_t n;
			if (avail >= 3 && evbuffer_get_length(f->data) == 0 &&
			    memcmp(evbuffer_pullup(in, 3), ".\r\n", 3) == 0)
				n = 3;
			else if (end.pos >= 0)
				n = (size_t)end.pos + 5;
			else
				return;
			evbuffer_remove_buffer(in, f->data, n);
			f->in_data = false;
			f->data_scan = 0;
			continue;
		}
		if (f->step >= f->nsteps) {
			size_t n;
			char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
			if (line != NULL) {
				fake_fail(f, "unexpected command after the script: \"%s\"", line);
				free(line);
				fake_close(f);
			}
			return;
		}
		const struct fake_step *st = &f->steps[f->step];
		if (st->expect != NULL) {
			size_t n;
			char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
			if (line == NULL)
				return;
			if (!fake_match(st->expect, line)) {
				fake_fail(f, "step %zu: expected \"%s\", got \"%s\"", f->step, st->expect, line);
				free(line);
				fake_close(f);
				return;
			}
			free(line);
			if ((st->flags & F_ALONE) && evbuffer_get_length(in) != 0)
				fake_fail(f, "step %zu: \"%s\" was pipelined", f->step, st->expect);
			if (st->flags & F_GROUP) {
				struct evbuffer_ptr d = evbuffer_search(in, "DATA\r\n", 6, NULL);
				if (d.pos < 0 || (size_t)d.pos + 6 != evbuffer_get_length(in))
					fake_fail(f, "step %zu: the group after \"%s\" did not come in one write", f->step,
						  st->expect);
			}
		}
		f->step++;
		if (st->flags & F_HANG) {
			f->hanging = true;
			return;
		}
		if (st->reply != NULL && (st->flags & (F_TRICKLE | F_REPEAT))) {
			f->trickling = true;
			f->trickle = st->reply;
			f->trickle_off = 0;
			f->trickle_flags = st->flags;
			fake_tick_arm(f);
			return;
		}
		if (st->reply != NULL)
			bufferevent_write(f->bev, st->reply, strlen(st->reply));
		if (st->flags & F_DATA) {
			f->in_data = true;
			continue;
		}
		if (st->flags & F_TLS) {
			struct bufferevent *tls = bufferevent_openssl_filter_new(f->base, f->bev, SSL_new(f->tls),
										 BUFFEREVENT_SSL_ACCEPTING,
										 BEV_OPT_CLOSE_ON_FREE);
			assert_non_null(tls);
			f->bev = tls;
			fake_setcb(f);
			return; /* the client speaks next, inside TLS */
		}
		if (st->flags & F_GARBAGE) {
			bufferevent_write(f->bev, "this is not TLS at all\r\n", 24);
			f->closing = true;
			return;
		}
		if (st->flags & F_CLOSE) {
			f->closing = true;
			if (evbuffer_get_length(bufferevent_get_output(f->bev)) == 0)
				fake_close(f);
			return;
		}
	}
}

static void fake_read_cb(struct bufferevent *bev, void *arg)
{
	fake_run(arg);
}

/* One piece of the reply under way: an octet (F_TRICKLE) or the whole of it (F_REPEAT alone). */
static void fake_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fake *f = arg;
	if (f->bev == NULL || !f->trickling)
		return;
	size_t len = strlen(f->trickle);
	size_t n = (f->trickle_flags & F_TRICKLE) ? 1 : len - f->trickle_off;
	bufferevent_write(f->bev, f->trickle + f->trickle_off, n);
	f->trickle_off += n;
	f->trickled += n;
	if (f->trickle_off == len) {
		f->trickle_off = 0;
		if (!(f->trickle_flags & F_REPEAT)) {
			f->trickling = false;
			fake_run(f);
			return;
		}
	}
	fake_tick_arm(f);
}

static void fake_write_cb(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;
	if (f->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		fake_close(f);
}

static void fake_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fake *f = arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		fake_run(f); /* what came with the close */
	fake_close(f);
}

static void fake_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct fake *f = arg;
	f->accepted++;
	if (f->bev != NULL) { /* one connection at a time */
		evutil_closesocket(fd);
		return;
	}
	if (f->implicit)
		f->bev = bufferevent_openssl_socket_new(f->base, fd, SSL_new(f->tls), BUFFEREVENT_SSL_ACCEPTING,
							BEV_OPT_CLOSE_ON_FREE);
	else
		f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(f->bev);
	fake_setcb(f);
	fake_run(f); /* the greeting */
}

static void fake_start(struct fake *f, struct event_base *base, const struct fake_step *steps, size_t nsteps,
		       struct sockaddr_in *sin_r)
{
	memset(f, 0, sizeof(*f));
	f->base = base;
	f->steps = steps;
	f->nsteps = nsteps;
	f->data = evbuffer_new();
	f->tick = evtimer_new(base, fake_tick_cb, f);
	assert_non_null(f->tick);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	f->lis = evconnlistener_new_bind(base, fake_accept_cb, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
					 (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(f->lis);
	socklen_t sl = sizeof(sin);
	assert_int_equal(getsockname(evconnlistener_get_fd(f->lis), (struct sockaddr *)&sin, &sl), 0);
	*sin_r = sin;
}

static void fake_free(struct fake *f)
{
	if (f->bev != NULL)
		bufferevent_free(f->bev);
	if (f->lis != NULL)
		evconnlistener_free(f->lis);
	if (f->tick != NULL)
		event_free(f->tick);
	evbuffer_free(f->data);
}

/* ================================================================================================
 * Client runs
 * ============================================================================================== */

#define MAX_RCPTS 8

struct outcome {
	unsigned calls;
	enum delivery_error error;
	bool next_mx;
	char error_text[2048];
	size_t rcpt_count;
	struct delivery_rcpt_result rcpts[MAX_RCPTS];
	unsigned n_ok, n_tempfail, n_permfail;
	bool esmtp, pipelining, tls, tls_verified, authenticated, reusable;
	char tls_version[32];
	unsigned messages;
	/* connection reuse: sent from the first callback */
	const struct delivery_job *next;
	struct outcome *next_outcome;
	bool cancel_in_done;
	bool park;           /* park the connection from the callback */
	unsigned gone_calls; /* ... and how often its idle callback ran */
};

static void outcome_gone(struct delivery_client *c, void *arg)
{
	(void)c;
	((struct outcome *)arg)->gone_calls++;
}

static void outcome_done(struct delivery_client *c, const struct delivery_result *r, void *arg)
{
	struct outcome *o = arg;
	o->calls++;
	o->error = r->error;
	o->next_mx = r->next_mx;
	snprintf(o->error_text, sizeof(o->error_text), "%s", r->error_text);
	assert_true(r->rcpt_count <= MAX_RCPTS);
	o->rcpt_count = r->rcpt_count;
	memcpy(o->rcpts, r->rcpts, r->rcpt_count * sizeof(r->rcpts[0]));
	o->n_ok = r->n_ok;
	o->n_tempfail = r->n_tempfail;
	o->n_permfail = r->n_permfail;
	assert_int_equal(r->n_ok + r->n_tempfail + r->n_permfail, r->rcpt_count);
	o->esmtp = r->esmtp;
	o->pipelining = r->pipelining;
	o->tls = r->tls;
	o->tls_verified = r->tls_verified;
	o->authenticated = r->authenticated;
	o->reusable = r->reusable;
	o->messages = r->messages;
	snprintf(o->tls_version, sizeof(o->tls_version), "%s", r->tls_version);
	/* nothing a peer sends may reach our texts unfiltered */
	for (const char *p = r->error_text; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	for (size_t i = 0; i < r->rcpt_count; i++)
		for (const char *p = r->rcpts[i].text; *p; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
	if (o->cancel_in_done) {
		delivery_client_cancel(c);
		return;
	}
	if (o->park) {
		assert_true(delivery_client_park(c, 100, outcome_gone, o));
		assert_false(delivery_client_park(c, 100, outcome_gone, o)); /* once only */
		return;
	}
	if (o->next != NULL && r->reusable) {
		char err[128];
		assert_true(delivery_client_send(c, o->next, err, sizeof(err)));
		assert_false(delivery_client_send(c, o->next, err, sizeof(err))); /* once only */
	}
}

struct env {
	struct event_base *base;
	struct fake fake;
	struct sockaddr_in sin;
	struct delivery_job job;
	struct outcome out;
	const char *rcpts[MAX_RCPTS];
};

static void env_init(struct env *e, const struct fake_step *steps, size_t nsteps)
{
	memset(e, 0, sizeof(*e));
	e->base = event_base_new();
	assert_non_null(e->base);
	fake_start(&e->fake, e->base, steps, nsteps, &e->sin);
	e->rcpts[0] = "alice@example.org";
	e->rcpts[1] = "bob@example.org";
	e->rcpts[2] = "carol@example.org";
	static const char msg[] = "From: a@example.com\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n";
	e->job = (struct delivery_job){
		.base = e->base,
		.addr = (const struct sockaddr *)&e->sin,
		.addr_len = sizeof(e->sin),
		.host = "mx.test",
		.helo_name = "client.test",
		.tls = DELIVERY_TLS_NONE,
		.sender = "a@example.com",
		.rcpts = e->rcpts,
		.rcpt_count = 1,
		.msg = (const unsigned char *)msg,
		.msg_len = sizeof(msg) - 1,
		.timeouts = {.connect_ms = 2000, .tls_ms = 2000, .greeting_ms = 2000, .command_ms = 2000, .mail_ms = 2000,
			     .rcpt_ms = 2000, .data_init_ms = 2000, .data_block_ms = 2000, .data_end_ms = 2000,
			     .quit_ms = 500},
		.log_id = "test",
		.done = outcome_done,
		.done_arg = &e->out,
	};
}

/* Runs the loop until the client has reported and everything has closed (the client frees itself
 * after QUIT; the loop ends once no event is left). */
static void env_run(struct env *e)
{
	char err[256] = "";
	struct delivery_client *c = delivery_client_start(&e->job, err, sizeof(err));
	if (c == NULL)
		fail_msg("start: %s", err);
	alarm(20); /* a hang fails the test instead of blocking it */
	while (e->out.calls == 0 || (e->out.next_outcome != NULL && e->out.next_outcome->calls == 0))
		assert_int_equal(event_base_loop(e->base, EVLOOP_ONCE), 0);
	evconnlistener_free(e->fake.lis);
	e->fake.lis = NULL;
	if (e->fake.hanging || e->fake.trickling)
		fake_close(&e->fake);
	event_base_dispatch(e->base);
	alarm(0);
	assert_true(e->fake.closed);
}

static void env_free(struct env *e)
{
	fake_free(&e->fake);
	event_base_free(e->base);
}

static void assert_script_done(struct env *e)
{
	if (e->fake.error[0] != '\0')
		fail_msg("fake server: %s", e->fake.error);
	if (e->fake.step != e->fake.nsteps)
		fail_msg("fake server stopped at step %zu of %zu", e->fake.step, e->fake.nsteps);
}

static void assert_rcpt(const struct outcome *o, size_t i, enum result res, int code, const char *enh,
			const char *text_part)
{
	const struct delivery_rcpt_result *r = &o->rcpts[i];
	if (r->result != res || r->code != code || strcmp(r->enh, enh) != 0 || strstr(r->text, text_part) == NULL)
		fail_msg("rcpt %zu: %s %d %s \"%s\"; wanted %s %d %s \"%s\"", i, result_str(r->result), r->code, r->enh,
			 r->text, result_str(res), code, enh, text_part);
}

#define STEPS(...) ((const struct fake_step[]){__VA_ARGS__})
#define NSTEPS(...) (sizeof((const struct fake_step[]){__VA_ARGS__}) / sizeof(struct fake_step))
#define ENV_INIT(e, ...) env_init(e, STEPS(__VA_ARGS__), NSTEPS(__VA_ARGS__))

static const char msg_wire[] = "From: a@example.com\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n.\r\n";

static void test_client_pipelining(void **state)
{
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test ESMTP\r\n"},
		 {"EHLO client.test", "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n"},
		 {"MAIL FROM:<a@example.com> SIZE=67", "250 2.1.0 Ok\r\n", F_GROUP},
		 {"RCPT TO:<alice@example.org>", "250 2.1.5 Ok\r\n"}, {"RCPT TO:<bob@example.org>", "250 2.1.5 Ok\r\n"},
		 {"DATA", "354 go ahead\r\n", F_DATA}, {NULL, "250 2.0.0 Ok: queued as ABC123\r\n"},
		 {"QUIT", "221 2.0.0 Bye\r\n", F_CLOSE});
	e.job.rcpt_count = 2;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.calls, 1);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_string_equal(e.out.error_text, "");
	assert_true(e.out.pipelining && e.out.esmtp && !e.out.tls && e.out.reusable);
	assert_int_equal(e.out.n_ok, 2);
	assert_int_equal(e.out.messages, 1);
	assert_rcpt(&e.out, 0, RESULT_OK, 250, "2.0.0", "250 2.0.0 Ok: queued as ABC123");
	assert_rcpt(&e.out, 1, RESULT_OK, 250, "2.0.0", "queued as ABC123");
	assert_true(e.out.rcpts[0].remote);
	assert_int_equal(evbuffer_get_length(e.fake.data), sizeof(msg_wire) - 1);
	assert_memory_equal(evbuffer_pullup(e.fake.data, -1), msg_wire, sizeof(msg_wire) - 1);
	env_free(&e);
}

static void test_client_no_pipelining(void **state)
{
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test ESMTP\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 SIZE\r\n", F_ALONE},
		 {"MAIL FROM:<> SIZE=67", "250 Ok\r\n", F_ALONE}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n", F_ALONE},
		 {"RCPT TO:<bob@example.org>", "250 Ok\r\n", F_ALONE},
		 {"RCPT TO:<carol@example.org>", "250 Ok\r\n", F_ALONE}, {"DATA", "354 go\r\n", F_DATA | F_ALONE},
		 {NULL, "250 queued\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.rcpt_count = 3;
	e.job.sender = ""; /* the null reverse-path (a bounce) */
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_false(e.out.pipelining);
	assert_int_equal(e.out.n_ok, 3);
	assert_rcpt(&e.out, 2, RESULT_OK, 250, "", "250 queued");
	assert_memory_equal(evbuffer_pullup(e.fake.data, -1), msg_wire, sizeof(msg_wire) - 1);
	env_free(&e);
}

static void test_client_rcpt_mix(void **state)
{
	for (int pipe = 0; pipe < 2; pipe++) {
		struct env e;
		const char *ehlo = pipe ? "250-mx.test\r\n250 PIPELINING\r\n" : "250 mx.test\r\n";
		ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", ehlo}, {"MAIL FROM:<a@example.com>", "250 Ok\r\n"},
			 {"RCPT TO:<alice@example.org>", "250 2.1.5 Ok\r\n"},
			 {"RCPT TO:<bob@example.org>", "450-4.2.0 Greylisted,\r\n450 4.2.0 come back later\r\n"},
			 {"RCPT TO:<carol@example.org>", "550 5.1.1 <carol@example.org>: no such user\r\n"},
			 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 2.0.0 queued as X\r\n"},
			 {"QUIT", "221 Bye\r\n", F_CLOSE});
		e.job.rcpt_count = 3;
		env_run(&e);
		assert_script_done(&e);
		assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
		assert_int_equal(e.out.pipelining, pipe);
		assert_rcpt(&e.out, 0, RESULT_OK, 250, "2.0.0", "queued as X");
		assert_rcpt(&e.out, 1, RESULT_TEMPFAIL, 450, "4.2.0", "450 4.2.0 Greylisted, come back later");
		assert_rcpt(&e.out, 2, RESULT_PERMFAIL, 550, "5.1.1", "550 5.1.1 <carol@example.org>: no such user");
		assert_int_equal(e.out.n_ok, 1);
		assert_int_equal(e.out.n_tempfail, 1);
		assert_int_equal(e.out.n_permfail, 1);
		env_free(&e);
	}
}

static void test_client_mail_refused(void **state)
{
	/* pipelined: the RCPT and DATA replies still come and are read */
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
		 {"MAIL FROM:<a@example.com>", "550 5.7.1 Sender blocked\r\n"},
		 {"RCPT TO:<alice@example.org>", "503 5.5.1 need MAIL\r\n"}, {"RCPT TO:<bob@example.org>", "503 5.5.1 need MAIL\r\n"},
		 {"DATA", "503 5.5.1 need RCPT\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.rcpt_count = 2;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_MAIL);
	assert_false(e.out.next_mx);
	assert_non_null(strstr(e.out.error_text, "550 5.7.1 Sender blocked (in reply to MAIL FROM)"));
	assert_rcpt(&e.out, 0, RESULT_PERMFAIL, 550, "5.7.1", "Sender blocked");
	assert_rcpt(&e.out, 1, RESULT_PERMFAIL, 550, "5.7.1", "Sender blocked");
	env_free(&e);

	/* pipelined, and a broken server that still says 354: a lone dot (RFC 2920 §3.1) */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
		 {"MAIL FROM:<a@example.com>", "451 4.3.0 try later\r\n"}, {"RCPT TO:<alice@example.org>", "503 no\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "554 5.5.1 no valid recipients\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_MAIL);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.3.0", "try later");
	assert_int_equal(evbuffer_get_length(e.fake.data), 3); /* ".\r\n" only */
	env_free(&e);

	/* without pipelining nothing follows a refused MAIL */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250 mx.test\r\n"},
		 {"MAIL FROM:<a@example.com>", "452 4.3.1 Insufficient system storage\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.rcpt_count = 2;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_MAIL);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 452, "4.3.1", "Insufficient");
	assert_rcpt(&e.out, 1, RESULT_TEMPFAIL, 452, "4.3.1", "Insufficient");
	env_free(&e);
}

static void test_client_greeting_4xx(void **state)
{
	struct env e;
	ENV_INIT(&e, {NULL, "421-4.3.2 mx.test busy\r\n421 4.3.2 try another\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.rcpt_count = 2;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_GREETING);
	assert_true(e.out.next_mx);
	assert_false(e.out.reusable);
	assert_non_null(strstr(e.out.error_text, "421 4.3.2 mx.test busy try another"));
	assert_non_null(strstr(e.out.error_text, "mx.test[127.0.0.1]"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.0", "greeting refused: 421 4.3.2");
	assert_rcpt(&e.out, 1, RESULT_TEMPFAIL, 451, "4.4.0", "greeting refused");
	assert_false(e.out.rcpts[0].remote);
	env_free(&e);

	/* a 554 greeting is also a matter of this host, not of the message */
	ENV_INIT(&e, {NULL, "554 5.7.1 no service for you\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_GREETING);
	assert_true(e.out.next_mx);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.0", "554 5.7.1 no service");
	env_free(&e);
}

static void test_client_size_too_big(void **state)
{
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 50\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.rcpt_count = 2;
	env_run(&e);
	assert_script_done(&e); /* no MAIL, no content: straight to QUIT */
	assert_int_equal(e.out.error, DELIVERY_ERR_SIZE);
	assert_false(e.out.next_mx);
	assert_true(e.out.reusable);
	assert_rcpt(&e.out, 0, RESULT_PERMFAIL, 552, "5.3.4", "67 octets exceeds the server's fixed maximum of 50");
	assert_rcpt(&e.out, 1, RESULT_PERMFAIL, 552, "5.3.4", "exceeds");
	assert_int_equal(evbuffer_get_length(e.fake.data), 0);
	env_free(&e);

	/* exactly the limit goes */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 SIZE 67\r\n"},
		 {"MAIL FROM:<a@example.com> SIZE=67", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	env_free(&e);
}

static void test_client_smtputf8(void **state)
{
	/* needed, not offered: 5.6.7 and nothing sent */
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 8BITMIME\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.rcpts[0] = "j\xc3\xb6rg@example.org";
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_SMTPUTF8);
	assert_false(e.out.next_mx);
	assert_rcpt(&e.out, 0, RESULT_PERMFAIL, 553, "5.6.7", "SMTPUTF8");
	env_free(&e);

	/* needed (by the flag) and offered: SMTPUTF8 and BODY=8BITMIME on MAIL */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"},
		 {"MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8", "250 Ok\r\n"},
		 {"RCPT TO:<alice@example.org>", "250 Ok\r\n"}, {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.needs_smtputf8 = true;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	env_free(&e);

	/* 8-bit content: BODY=8BITMIME when offered ... */
	static const char msg8[] = "Subject: caf\xc3\xa9\r\n\r\nx\r\n";
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 8BITMIME\r\n"},
		 {"MAIL FROM:<a@example.com> BODY=8BITMIME", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.msg = (const unsigned char *)msg8;
	e.job.msg_len = sizeof(msg8) - 1;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	env_free(&e);

	/* ... and sent as it is when not */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250 mx.test\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.msg = (const unsigned char *)msg8;
	e.job.msg_len = sizeof(msg8) - 1;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_memory_equal(evbuffer_pullup(e.fake.data, -1), "Subject: caf\xc3\xa9\r\n\r\nx\r\n.\r\n", 24);
	env_free(&e);
}

static void test_client_helo_fallback(void **state)
{
	struct env e;
	ENV_INIT(&e, {NULL, "220 old.test SMTP\r\n"}, {"EHLO client.test", "502 5.5.2 Error: command not recognized\r\n"},
		 {"HELO client.test", "250 old.test\r\n"}, {"MAIL FROM:<a@example.com>", "250 Ok\r\n", F_ALONE},
		 {"RCPT TO:<alice@example.org>", "250 Ok\r\n"}, {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_false(e.out.esmtp);
	env_free(&e);

	/* both refused */
	ENV_INIT(&e, {NULL, "220 old.test SMTP\r\n"}, {"EHLO client.test", "500 what\r\n"},
		 {"HELO client.test", "501 5.5.4 no\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_HELO);
	assert_true(e.out.next_mx);
	env_free(&e);

	/* a 4xx to EHLO is not a reason for HELO */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "451 4.3.0 later\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_HELO);
	env_free(&e);
}

static void test_client_timeouts(void **state)
{
	/* no greeting */
	struct env e;
	ENV_INIT(&e, {NULL, NULL, F_HANG});
	e.job.timeouts.greeting_ms = 150;
	e.job.rcpt_count = 2;
	env_run(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TIMEOUT);
	assert_true(e.out.next_mx);
	assert_non_null(strstr(e.out.error_text, "timeout while waiting for the reply to the greeting"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.2", "timeout");
	assert_rcpt(&e.out, 1, RESULT_TEMPFAIL, 451, "4.4.2", "timeout");
	env_free(&e);

	/* no reply to the end of data: the accepted recipient is deferred, the refused one stays refused */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"RCPT TO:<bob@example.org>", "550 5.1.1 unknown\r\n"}, {"DATA", "354 go\r\n", F_DATA},
		 {NULL, NULL, F_HANG});
	e.job.rcpt_count = 2;
	e.job.timeouts.data_end_ms = 150;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TIMEOUT);
	assert_non_null(strstr(e.out.error_text, "reply to end of DATA"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.2", "timeout");
	assert_rcpt(&e.out, 1, RESULT_PERMFAIL, 550, "5.1.1", "unknown");
	env_free(&e);

	/* connect: nobody listens */
	ENV_INIT(&e, {NULL, "220 x\r\n"});
	evconnlistener_free(e.fake.lis);
	e.fake.lis = NULL;
	e.fake.closed = true;
	{
		char err[256];
		struct delivery_client *c = delivery_client_start(&e.job, err, sizeof(err));
		assert_non_null(c);
		while (e.out.calls == 0)
			event_base_loop(e.base, EVLOOP_ONCE);
		event_base_dispatch(e.base);
	}
	assert_int_equal(e.out.error, DELIVERY_ERR_CONNECT);
	assert_true(e.out.next_mx);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.1", "cannot connect");
	env_free(&e);
}

/* RFC 5321 §4.5.3.2: each timeout bounds a whole reply. A server that sends an octet now and then, or
 * line after line of a reply that never ends, must not hold the client past it: the deadline is set
 * when the command goes out, never moved by what arrives. */
static void test_client_trickle(void **state)
{
	/* the greeting, an octet per tick: 36 ticks for the line, the deadline passes after a few */
	static const char slow_greeting[] = "220 mx.test ESMTP, but very slowly\r\n";
	struct env e;
	ENV_INIT(&e, {NULL, slow_greeting, F_TRICKLE});
	e.job.timeouts.greeting_ms = 150;
	env_run(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TIMEOUT);
	assert_true(e.out.next_mx);
	assert_non_null(strstr(e.out.error_text, "timeout while waiting for the reply to the greeting"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.2", "timeout");
	assert_true(e.fake.trickled > 0);
	assert_true(e.fake.trickled < sizeof(slow_greeting) - 1); /* cut before the line was whole */
	env_free(&e);

	/* an EHLO reply whose lines each come whole, one per tick, and never end */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-still going\r\n", F_REPEAT});
	e.job.timeouts.command_ms = 150;
	env_run(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TIMEOUT);
	assert_non_null(strstr(e.out.error_text, "timeout while waiting for the reply to EHLO"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.2", "timeout");
	env_free(&e);

	/* the reply to a pipelined MAIL, an octet per tick: MAIL's deadline, not a read timer */
	static const char slow_mail[] = "250 2.1.0 sender ok, eventually\r\n";
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
		 {"MAIL FROM:<a@example.com>", slow_mail, F_TRICKLE});
	e.job.timeouts.mail_ms = 150;
	env_run(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TIMEOUT);
	assert_non_null(strstr(e.out.error_text, "timeout while waiting for the reply to MAIL FROM"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.2", "timeout");
	assert_true(e.fake.trickled < sizeof(slow_mail) - 1);
	env_free(&e);

	/* a trickle that ends within its deadline is only slow: the transaction goes on to the end */
	ENV_INIT(&e, {NULL, "220 mx\r\n", F_TRICKLE}, {"EHLO client.test", "250 mx.test\r\n", F_TRICKLE},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n", F_TRICKLE}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.timeouts.greeting_ms = e.job.timeouts.command_ms = e.job.timeouts.data_end_ms = 5000;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_rcpt(&e.out, 0, RESULT_OK, 250, "", "250 Ok");
	assert_int_equal(evbuffer_get_length(e.fake.data), sizeof(msg_wire) - 1);
	assert_memory_equal(evbuffer_pullup(e.fake.data, -1), msg_wire, sizeof(msg_wire) - 1);
	env_free(&e);
}

static void test_client_closed_mid_data(void **state)
{
	/* a message big enough to be mid-stream when the server hangs up */
	size_t len = 4 << 20;
	char *big = malloc(len);
	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : 'x';
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"RCPT TO:<bob@example.org>", "550 5.1.1 unknown\r\n"}, {"DATA", "354 go\r\n", F_DATA | F_CLOSE_IN_DATA});
	e.job.rcpt_count = 2;
	e.job.msg = (const unsigned char *)big;
	e.job.msg_len = len;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_LOST);
	assert_true(e.out.next_mx);
	assert_false(e.out.reusable);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.4.2", "connection");
	assert_rcpt(&e.out, 1, RESULT_PERMFAIL, 550, "5.1.1", "unknown");
	env_free(&e);

	/* a 421 and a close in place of the final reply: deferred with the server's words */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250 mx.test\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "421 4.3.2 shutting down\r\n", F_CLOSE});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_LOST);
	assert_true(e.out.next_mx);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 421, "4.3.2", "shutting down");
	assert_non_null(strstr(e.out.error_text, "(in reply to end of DATA)"));
	env_free(&e);
	free(big);
}

static void test_client_multiline(void **state)
{
	struct env e;
	ENV_INIT(&e, {NULL, "220-mx.test ESMTP\r\n220-no UCE\r\n220 really\r\n"},
		 {"EHLO client.test", "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n250 DSN\r\n"},
		 {"MAIL FROM:<a@example.com> SIZE=67", "250-2.1.0 Sender\r\n250 2.1.0 ok\r\n"},
		 {"RCPT TO:<alice@example.org>", "250-2.1.5 a\r\n250-2.1.5 b\r\n250 2.1.5 c\r\n"},
		 {"RCPT TO:<bob@example.org>", "550-5.7.1 Policy\r\n550-5.7.1 says\r\n550 5.7.1 no\r\n"},
		 {"DATA", "354-first\r\n354 go\r\n", F_DATA}, {NULL, "250-2.0.0 Ok\r\n250 2.0.0 queued as Q1\r\n"},
		 {"QUIT", "221-2.0.0 Bye\r\n221 2.0.0 now\r\n", F_CLOSE});
	e.job.rcpt_count = 2;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_rcpt(&e.out, 0, RESULT_OK, 250, "2.0.0", "250 2.0.0 Ok queued as Q1");
	assert_rcpt(&e.out, 1, RESULT_PERMFAIL, 550, "5.7.1", "550 5.7.1 Policy says no");
	env_free(&e);

	/* a malformed reply: out of step, closed without QUIT */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250 mx.test\n"});
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_PROTOCOL);
	assert_true(e.out.next_mx);
	assert_non_null(strstr(e.out.error_text, "bare LF"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.5.0", "malformed reply");
	env_free(&e);
}

static void test_client_smuggling_body(void **state)
{
	/* every sequence of smuggling.md rows 1-12 in one message, plus dot lines */
	char msg[8192], want[8192];
	size_t n = 0, wn = 0;
	n += (size_t)sprintf(msg + n, "Subject: smuggle\r\n\r\n.starts with a dot\r\n");
	wn += (size_t)sprintf(want + wn, "Subject: smuggle\r\n\r\n..starts with a dot\r\n");
	for (size_t row = 0; row < SMUGGLE_ROWS; row++) {
		char in[512], out[512];
		size_t len = smuggle_input(row, in);
		size_t olen = smuggle_expected(row, out);
		memcpy(msg + n, in, len), n += len;
		memcpy(want + wn, out, olen - 3), wn += olen - 3; /* without the end line */
	}
	memcpy(msg + n, ".", 1), n += 1; /* ends in a lone dot, without a line end */
	memcpy(want + wn, "..\r\n.\r\n", 7), wn += 7;

	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.msg = (const unsigned char *)msg;
	e.job.msg_len = n;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	size_t got = evbuffer_get_length(e.fake.data);
	const char *wire = (const char *)evbuffer_pullup(e.fake.data, -1);
	assert_wire_safe(wire, got);
	assert_int_equal(got, wn);
	assert_memory_equal(wire, want, wn);
	/* and the server saw one transaction only: the script ended with QUIT */
	env_free(&e);
}

static void test_client_reuse(void **state)
{
	/* two messages on one connection; the first leaves its transaction open (nobody accepted),
	 * so the second starts with RSET in the same pipelined group */
	static const char msg2[] = "Subject: two\r\n\r\nsecond\r\n";
	const char *rcpts2[] = {"dave@example.net"};
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "550 5.1.1 no\r\n"},
		 {"DATA", "554 5.5.1 no valid recipients\r\n"}, {"RSET", "250 Ok\r\n"},
		 {"MAIL FROM:<b@example.com>", "250 Ok\r\n"}, {"RCPT TO:<dave@example.net>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 2.0.0 second queued\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	struct outcome second = {0};
	struct delivery_job job2 = e.job;
	job2.sender = "b@example.com";
	job2.rcpts = rcpts2;
	job2.rcpt_count = 1;
	job2.msg = (const unsigned char *)msg2;
	job2.msg_len = sizeof(msg2) - 1;
	job2.done_arg = &second;
	e.out.next = &job2;
	e.out.next_outcome = &second;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_true(e.out.reusable);
	assert_rcpt(&e.out, 0, RESULT_PERMFAIL, 550, "5.1.1", "no");
	assert_int_equal(second.calls, 1);
	assert_int_equal(second.error, DELIVERY_ERR_NONE);
	assert_int_equal(second.messages, 1);
	assert_rcpt(&second, 0, RESULT_OK, 250, "2.0.0", "second queued");
	assert_string_equal(second.rcpts[0].rcpt, "dave@example.net");
	assert_memory_equal(evbuffer_pullup(e.fake.data, -1), "Subject: two\r\n\r\nsecond\r\n.\r\n", 27);
	env_free(&e);

	/* reuse after success: no RSET needed; a second message too big fails without a word sent */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 SIZE 70\r\n"},
		 {"MAIL FROM:<a@example.com> SIZE=67", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	char big[100];
	memset(big, 'x', sizeof(big));
	struct outcome third = {0};
	job2 = e.job;
	job2.msg = (const unsigned char *)big;
	job2.msg_len = sizeof(big);
	job2.done_arg = &third;
	e.out.next = &job2;
	e.out.next_outcome = &third;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_int_equal(third.error, DELIVERY_ERR_SIZE);
	assert_rcpt(&third, 0, RESULT_PERMFAIL, 552, "5.3.4", "102 octets");
	env_free(&e);
}

static void test_client_park(void **state)
{
	/* parked after a message: the idle time runs out, the owner hears once, then QUIT */
	struct env e;
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250 mx.test\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.out.park = true;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.calls, 1);
	assert_int_equal(e.out.gone_calls, 1);
	env_free(&e);

	/* the server closes the parked connection: the owner hears once, no QUIT is sent */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250 mx.test\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n421 4.4.2 bye\r\n", F_CLOSE});
	e.out.park = true;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.gone_calls, 1);
	env_free(&e);
}

static void test_client_cancel(void **state)
{
	struct env e;
	ENV_INIT(&e, {NULL, NULL, F_HANG});
	char err[128];
	struct delivery_client *c = delivery_client_start(&e.job, err, sizeof(err));
	assert_non_null(c);
	delivery_client_cancel(c); /* before it even connected */
	evconnlistener_free(e.fake.lis);
	e.fake.lis = NULL;
	event_base_dispatch(e.base);
	assert_int_equal(e.out.calls, 0);
	env_free(&e);

	/* cancelled from inside the done callback: no QUIT */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 SIZE 10\r\n"});
	e.out.cancel_in_done = true;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.calls, 1);
	assert_int_equal(e.out.error, DELIVERY_ERR_SIZE);
	env_free(&e);

	/* unusable jobs are refused at the start */
	ENV_INIT(&e, {NULL, NULL});
	const char *bad[] = {"a@b\r\nRSET", "x>@y", "", NULL};
	for (size_t i = 0; i < 4; i++) {
		e.rcpts[0] = bad[i];
		assert_null(delivery_client_start(&e.job, err, sizeof(err)));
	}
	e.rcpts[0] = "ok@example.org";
	e.job.sender = "s@x\n";
	assert_null(delivery_client_start(&e.job, err, sizeof(err)));
	e.job.sender = "s@x";
	e.job.helo_name = "bad name";
	assert_null(delivery_client_start(&e.job, err, sizeof(err)));
	e.job.helo_name = "client.test";
	e.job.tls = DELIVERY_TLS_REQUIRED; /* without a TLS context */
	assert_null(delivery_client_start(&e.job, err, sizeof(err)));
	evconnlistener_free(e.fake.lis);
	e.fake.lis = NULL;
	env_free(&e);
}

/* ================================================================================================
 * TLS
 * ============================================================================================== */

struct tls_fixture {
	EVP_PKEY *key;
	X509 *cert;
	SSL_CTX *server;
	SSL_CTX *client_untrusting; /* does not know the certificate */
	SSL_CTX *client_trusting;   /* has it as a trust anchor */
};

/* A throwaway self-signed certificate for mx.test, made in memory; nothing is written to disk. */
static void tls_fixture_make(struct tls_fixture *t)
{
	t->key = EVP_EC_gen("P-256");
	assert_non_null(t->key);
	t->cert = X509_new();
	X509_set_version(t->cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(t->cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(t->cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(t->cert), 3600);
	X509_set_pubkey(t->cert, t->key);
	X509_NAME *name = X509_get_subject_name(t->cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test", -1, -1, 0);
	X509_set_issuer_name(t->cert, name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, t->cert, t->cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:mx.test");
	assert_non_null(ext);
	X509_add_ext(t->cert, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(t->cert, t->key, EVP_sha256()) > 0);

	t->server = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate(t->server, t->cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(t->server, t->key), 1);
	char err[128];
	t->client_untrusting = SSL_CTX_new(TLS_client_method());
	t->client_trusting = delivery_client_tls_ctx_new(err, sizeof(err));
	assert_non_null(t->client_trusting);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(t->client_trusting), t->cert), 1);
}

static void tls_fixture_free(struct tls_fixture *t)
{
	SSL_CTX_free(t->server);
	SSL_CTX_free(t->client_untrusting);
	SSL_CTX_free(t->client_trusting);
	X509_free(t->cert);
	EVP_PKEY_free(t->key);
}

static void test_client_starttls(void **state)
{
	struct tls_fixture t;
	tls_fixture_make(&t);
	struct env e;

	/* opportunistic, certificate unknown: TLS all the same, reported unverified; EHLO again */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n"},
		 {"STARTTLS", "220 2.0.0 Ready to start TLS\r\n", F_TLS},
		 {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"}, {"MAIL FROM:<a@example.com>", "250 Ok\r\n"},
		 {"RCPT TO:<alice@example.org>", "250 Ok\r\n"}, {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.fake.tls = t.server;
	e.job.tls = DELIVERY_TLS_OPPORTUNISTIC;
	e.job.tls_ctx = t.client_untrusting;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_true(e.out.tls);
	assert_false(e.out.tls_verified);
	assert_true(strncmp(e.out.tls_version, "TLSv1.", 6) == 0);
	assert_memory_equal(evbuffer_pullup(e.fake.data, -1), msg_wire, sizeof(msg_wire) - 1);
	env_free(&e);

	/* required, trusted and the right name: verified */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 STARTTLS\r\n"},
		 {"STARTTLS", "220 go\r\n", F_TLS}, {"EHLO client.test", "250 mx.test\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.fake.tls = t.server;
	e.job.tls = DELIVERY_TLS_REQUIRED;
	e.job.tls_ctx = t.client_trusting;
	e.job.host = "MX.test."; /* case and the root dot do not matter */
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_true(e.out.tls && e.out.tls_verified);
	env_free(&e);

	/* required, but the name does not match: the handshake fails, reported as such */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 STARTTLS\r\n"},
		 {"STARTTLS", "220 go\r\n", F_TLS});
	e.fake.tls = t.server;
	e.job.tls = DELIVERY_TLS_REQUIRED;
	e.job.tls_ctx = t.client_trusting;
	e.job.host = "other.test";
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TLS_HANDSHAKE);
	assert_true(e.out.next_mx);
	assert_non_null(strstr(e.out.error_text, "certificate not verified for other.test"));
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.7.5", "TLS handshake failed");
	env_free(&e);

	/* required, certificate unknown */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 STARTTLS\r\n"},
		 {"STARTTLS", "220 go\r\n", F_TLS});
	e.fake.tls = t.server;
	e.job.tls = DELIVERY_TLS_REQUIRED;
	e.job.tls_ctx = t.client_untrusting;
	env_run(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TLS_HANDSHAKE);
	assert_false(e.out.tls);
	assert_string_equal(e.out.tls_version, "");
	env_free(&e);

	/* the server answers 220 and then speaks no TLS: failed mid-handshake, distinctly */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 STARTTLS\r\n"},
		 {"STARTTLS", "220 go\r\n", F_GARBAGE});
	e.job.tls = DELIVERY_TLS_OPPORTUNISTIC;
	e.job.tls_ctx = t.client_untrusting;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TLS_HANDSHAKE);
	assert_true(e.out.next_mx);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.7.5", "TLS handshake failed");
	env_free(&e);

	/* required, not offered */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250 mx.test\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.tls = DELIVERY_TLS_REQUIRED;
	e.job.tls_ctx = t.client_trusting;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_TLS_UNAVAILABLE);
	assert_true(e.out.next_mx);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.7.4", "STARTTLS not offered");
	env_free(&e);

	/* opportunistic, STARTTLS refused with 454: on in the clear */
	ENV_INIT(&e, {NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 STARTTLS\r\n"},
		 {"STARTTLS", "454 4.7.0 TLS not available\r\n"}, {"MAIL FROM:<a@example.com>", "250 Ok\r\n"},
		 {"RCPT TO:<alice@example.org>", "250 Ok\r\n"}, {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.tls = DELIVERY_TLS_OPPORTUNISTIC;
	e.job.tls_ctx = t.client_untrusting;
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_false(e.out.tls);
	env_free(&e);

	tls_fixture_free(&t);
}

static void test_client_auth(void **state)
{
	struct tls_fixture t;
	tls_fixture_make(&t);
	struct env e;
	char plain[128], b64[256], line[300];
	memcpy(plain, "\0smart\0s3cret pass", 18);
	assert_true(base64_encode((const unsigned char *)plain, 18, b64, sizeof(b64)));
	snprintf(line, sizeof(line), "AUTH PLAIN %s", b64);

	/* implicit TLS (RFC 8314) to a smarthost, AUTH PLAIN with an initial response */
	ENV_INIT(&e, {NULL, "220 smarthost.test\r\n"},
		 {"EHLO client.test", "250-smarthost.test\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n"},
		 {line, "235 2.7.0 Authentication successful\r\n"}, {"MAIL FROM:<a@example.com>", "250 Ok\r\n"},
		 {"RCPT TO:<alice@example.org>", "250 Ok\r\n"}, {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.fake.tls = t.server;
	e.fake.implicit = true;
	e.job.tls = DELIVERY_TLS_IMPLICIT;
	e.job.tls_ctx = t.client_trusting;
	e.job.auth_user = "smart";
	e.job.auth_pass = "s3cret pass";
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_true(e.out.tls && e.out.tls_verified && e.out.authenticated);
	env_free(&e);

	/* LOGIN when PLAIN is not offered, after STARTTLS */
	char u64[64], p64[64];
	assert_true(base64_encode((const unsigned char *)"smart", 5, u64, sizeof(u64)));
	assert_true(base64_encode((const unsigned char *)"s3cret pass", 11, p64, sizeof(p64)));
	ENV_INIT(&e, {NULL, "220 smarthost.test\r\n"}, {"EHLO client.test", "250-smarthost.test\r\n250 STARTTLS\r\n"},
		 {"STARTTLS", "220 go\r\n", F_TLS}, {"EHLO client.test", "250-smarthost.test\r\n250 AUTH LOGIN CRAM-MD5\r\n"},
		 {"AUTH LOGIN", "334 VXNlcm5hbWU6\r\n"}, {u64, "334 UGFzc3dvcmQ6\r\n"}, {p64, "235 2.7.0 ok\r\n"},
		 {"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
		 {"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.fake.tls = t.server;
	e.job.tls = DELIVERY_TLS_OPPORTUNISTIC;
	e.job.tls_ctx = t.client_untrusting;
	e.job.auth_user = "smart";
	e.job.auth_pass = "s3cret pass";
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
	assert_true(e.out.authenticated);
	env_free(&e);

	/* refused credentials: deferred, not bounced */
	ENV_INIT(&e, {NULL, "220 smarthost.test\r\n"}, {"EHLO client.test", "250-smarthost.test\r\n250 AUTH PLAIN\r\n"},
		 {"AUTH PLAIN *", "535 5.7.8 Authentication credentials invalid\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.fake.tls = t.server;
	e.fake.implicit = true;
	e.job.tls = DELIVERY_TLS_IMPLICIT;
	e.job.tls_ctx = t.client_trusting;
	e.job.auth_user = "smart";
	e.job.auth_pass = "wrong";
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_AUTH);
	assert_rcpt(&e.out, 0, RESULT_TEMPFAIL, 451, "4.7.0", "535 5.7.8");
	env_free(&e);

	/* never without TLS: no AUTH line leaves */
	ENV_INIT(&e, {NULL, "220 smarthost.test\r\n"}, {"EHLO client.test", "250-smarthost.test\r\n250 AUTH PLAIN LOGIN\r\n"},
		 {"QUIT", "221 Bye\r\n", F_CLOSE});
	e.job.auth_user = "smart";
	e.job.auth_pass = "s3cret pass";
	env_run(&e);
	assert_script_done(&e);
	assert_int_equal(e.out.error, DELIVERY_ERR_AUTH);
	assert_false(e.out.authenticated);
	assert_non_null(strstr(e.out.error_text, "without TLS"));
	env_free(&e);

	tls_fixture_free(&t);
}

/* A message of some MiB streams through the watermarks to the end, in the clear and over TLS, and
 * arrives exactly: every line that starts with a dot stuffed, nothing else changed. */
static void test_client_large(void **state)
{
	struct tls_fixture t;
	tls_fixture_make(&t);
	size_t len = 80 * 40000, wlen = 0; /* whole lines */
	char *msg = malloc(len), *want = malloc(len + len / 50 + 8);
	assert_non_null(msg);
	assert_non_null(want);
	for (size_t i = 0; i < len; i++) {
		size_t col = i % 80;
		msg[i] = col == 78 ? '\r' : col == 79 ? '\n' : (col == 0 && (i / 80) % 7 == 0) ? '.' : (char)('a' + i % 26);
		if (col == 0 && msg[i] == '.')
			want[wlen++] = '.';
		want[wlen++] = msg[i];
	}
	memcpy(want + wlen, ".\r\n", 3), wlen += 3;
	for (int tls = 0; tls < 2; tls++) {
		static const struct fake_step plain[] = {
			{NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
			{"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
			{"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE}};
		static const struct fake_step starttls[] = {
			{NULL, "220 mx.test\r\n"}, {"EHLO client.test", "250-mx.test\r\n250 STARTTLS\r\n"},
			{"STARTTLS", "220 go\r\n", F_TLS}, {"EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n"},
			{"MAIL FROM:<a@example.com>", "250 Ok\r\n"}, {"RCPT TO:<alice@example.org>", "250 Ok\r\n"},
			{"DATA", "354 go\r\n", F_DATA}, {NULL, "250 Ok\r\n"}, {"QUIT", "221 Bye\r\n", F_CLOSE}};
		struct env e;
		if (tls)
			env_init(&e, starttls, sizeof(starttls) / sizeof(starttls[0]));
		else
			env_init(&e, plain, sizeof(plain) / sizeof(plain[0]));
		e.fake.tls = t.server;
		e.job.tls = tls ? DELIVERY_TLS_OPPORTUNISTIC : DELIVERY_TLS_NONE;
		e.job.tls_ctx = t.client_untrusting;
		e.job.msg = (const unsigned char *)msg;
		e.job.msg_len = len;
		e.job.timeouts.data_end_ms = 20000; /* the fake server reads slowly under ASan and load */
		env_run(&e);
		assert_script_done(&e);
		assert_int_equal(e.out.error, DELIVERY_ERR_NONE);
		assert_int_equal(e.out.tls, tls);
		assert_int_equal(evbuffer_get_length(e.fake.data), wlen);
		assert_memory_equal(evbuffer_pullup(e.fake.data, -1), want, wlen);
		env_free(&e);
	}
	free(msg);
	free(want);
	tls_fixture_free(&t);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the server does: a peer that hangs up is an error return, not a signal */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_single),
		cmocka_unit_test(test_xtext_encode),
		cmocka_unit_test(test_reply_multiline),
		cmocka_unit_test(test_reply_hostile),
		cmocka_unit_test(test_ehlo_keywords),
		cmocka_unit_test(test_dot_basic),
		cmocka_unit_test(test_dot_smuggling),
		cmocka_unit_test(test_client_pipelining),
		cmocka_unit_test(test_client_no_pipelining),
		cmocka_unit_test(test_client_rcpt_mix),
		cmocka_unit_test(test_client_mail_refused),
		cmocka_unit_test(test_client_greeting_4xx),
		cmocka_unit_test(test_client_size_too_big),
		cmocka_unit_test(test_client_smtputf8),
		cmocka_unit_test(test_client_helo_fallback),
		cmocka_unit_test(test_client_timeouts),
		cmocka_unit_test(test_client_trickle),
		cmocka_unit_test(test_client_closed_mid_data),
		cmocka_unit_test(test_client_multiline),
		cmocka_unit_test(test_client_smuggling_body),
		cmocka_unit_test(test_client_reuse),
		cmocka_unit_test(test_client_park),
		cmocka_unit_test(test_client_cancel),
		cmocka_unit_test(test_client_starttls),
		cmocka_unit_test(test_client_auth),
		cmocka_unit_test(test_client_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

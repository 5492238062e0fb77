/* test_bounce.c — delivery status notifications: structure (RFC 6522 multipart/report, RFC 3464 fields),
 * line discipline with hostile input, and what of the original is returned.
 *
 * With MAILWERK_DSN_DUMP=DIR set, every DSN composed here is also written to DIR/<name>.eml so that
 * tests/integration/test_bounce_format.py can check it with Python's email parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/bounce.h"
#include "smtp/message.h"

#define T0 1795320306 /* Sun, 22 Nov 2026 04:05:06 +0000 */

static const char original_simple[] = "Received: from client.example ([192.0.2.1])\r\n"
				      "\tby mx.example.org (mailwerk) with ESMTP id 0123456789ABCDEFGHJK;\r\n"
				      "\tSun, 22 Nov 2026 04:00:00 +0000\r\n"
				      "From: Alice <alice@example.org>\r\n"
				      "To: bob@example.net\r\n"
				      "Subject: lunch\r\n"
				      "Message-ID: <m1@example.org>\r\n"
				      "\r\n"
				      "SECRET-BODY-TEXT: see you at noon\r\n";

/* Where each part of a composed DSN starts and ends (content only, after its header section). */
struct dsn_view {
	char boundary[128];
	const char *part[3];
	size_t part_len[3];
	const char *part_head[3];
	size_t part_head_len[3];
};

static void dsn_dump(const char *name, const char *m, size_t size)
{
	const char *dir = getenv("MAILWERK_DSN_DUMP");
	if (dir == NULL || dir[0] == '\0')
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(m, 1, size, f), size);
	assert_int_equal(fclose(f), 0);
}

static const char *find(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle));
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool contains(const char *s, size_t len, const char *needle)
{
	return find(s, len, needle) != NULL;
}

static size_t count_in(const char *s, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	const char *p = s, *end = s + len;
	while ((p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		n++;
		p += nl;
	}
	return n;
}

/* lines of s that start with prefix */
static size_t count_lines(const char *s, size_t len, const char *prefix)
{
	size_t n = 0, pl = strlen(prefix);
	for (size_t i = 0; i < len;) {
		if (len - i >= pl && memcmp(s + i, prefix, pl) == 0)
			n++;
		const char *lf = memchr(s + i, '\n', len - i);
		if (lf == NULL)
			break;
		i = (size_t)(lf - s) + 1;
	}
	return n;
}

/* The unfolded value of the first field called name at a line start of s (malloc'd), NULL if absent. */
static char *field_value(const char *s, size_t len, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < len;) {
		if (len - i > nl + 1 && strncmp(s + i, name, nl) == 0 && s[i + nl] == ':') {
			size_t j = i + nl + 1;
			while (j < len && s[j] == ' ')
				j++;
			char *v = malloc(len - j + 1);
			size_t o = 0;
			while (j < len) {
				if (s[j] == '\r' && j + 2 < len && s[j + 1] == '\n' && (s[j + 2] == ' ' || s[j + 2] == '\t')) {
					j += 2; /* RFC 5322 §2.2.3: unfolding removes the CRLF */
					continue;
				}
				if (s[j] == '\r')
					break;
				v[o++] = s[j++];
			}
			v[o] = '\0';
			return v;
		}
		const char *lf = memchr(s + i, '\n', len - i);
		if (lf == NULL)
			break;
		i = (size_t)(lf - s) + 1;
	}
	return NULL;
}

/* Every check that holds for any DSN; fills v. */
static void dsn_check(const char *name, const char *m, size_t size, size_t nrcpt, const char *headers_type,
		      struct dsn_view *v)
{
	dsn_dump(name, m, size);
	memset(v, 0, sizeof(*v));
	assert_true(size > 0);
	assert_int_equal(strlen(m), size);
	/* CRLF only, every line within RFC 5322 §2.1.1's 998 octets, and the last line ended */
	size_t line = 0;
	for (size_t i = 0; i < size; i++) {
		if (m[i] == '\r') {
			assert_true(i + 1 < size && m[i + 1] == '\n');
		} else if (m[i] == '\n') {
			assert_true(i > 0 && m[i - 1] == '\r');
			line = 0;
			continue;
		}
		if (m[i] != '\r') {
			line++;
			if (line > BOUNCE_LINE_MAX)
				fail_msg("%s: line over %d octets at offset %zu", name, BOUNCE_LINE_MAX, i);
		}
	}
	assert_true(size >= 2 && m[size - 2] == '\r' && m[size - 1] == '\n');

	const char *hend = strstr(m, "\r\n\r\n");
	assert_non_null(hend);
	size_t hlen = (size_t)(hend - m) + 2;
	static const char *const required[] = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted",
					       "MIME-Version", "Content-Type"};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (!message_has_header(m, hlen + 2, required[i]))
			fail_msg("%s: no %s field", name, required[i]);
	}
	assert_true(contains(m, hlen, "\r\nAuto-Submitted: auto-replied\r\n"));
	assert_true(contains(m, hlen, "\r\nContent-Type: multipart/report; report-type=delivery-status;"));

	const char *bp = find(m, hlen, "boundary=\"");
	assert_non_null(bp);
	bp += 10;
	const char *bq = memchr(bp, '"', hlen - (size_t)(bp - m));
	assert_non_null(bq);
	size_t blen = (size_t)(bq - bp);
	assert_true(blen >= 1 && blen <= 70); /* RFC 2046 §5.1.1 */
	memcpy(v->boundary, bp, blen);
	v->boundary[blen] = '\0';

	/* the boundary occurs only as the parameter and the four delimiter lines */
	assert_int_equal(count_in(m, size, v->boundary), 5);
	char delim[160], close[160];
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", v->boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", v->boundary);
	assert_int_equal(count_in(m, size, delim), 3);
	assert_int_equal(count_in(m, size, close), 1);
	assert_memory_equal(m + size - strlen(close), close, strlen(close));

	const char *p = m;
	for (int i = 0; i < 3; i++) {
		const char *d = memmem(p, size - (size_t)(p - m), delim, strlen(delim));
		assert_non_null(d);
		const char *head = d + strlen(delim);
		const char *body = strstr(head, "\r\n\r\n");
		assert_non_null(body);
		v->part_head[i] = head;
		v->part_head_len[i] = (size_t)(body - head) + 2;
		v->part[i] = body + 4;
		p = body + 2;
	}
	for (int i = 0; i < 3; i++) {
		const char *next = find(v->part[i], size - (size_t)(v->part[i] - m), "\r\n--");
		while (next != NULL && strncmp(next + 4, v->boundary, blen) != 0)
			next = find(next + 1, size - (size_t)(next + 1 - m), "\r\n--");
		assert_non_null(next);
		v->part_len[i] = (size_t)(next - v->part[i]);
	}
	assert_true(contains(v->part_head[0], v->part_head_len[0], "Content-Type: text/plain; charset="));
	assert_true(contains(v->part_head[1], v->part_head_len[1], "Content-Type: message/delivery-status\r\n"));
	char ht[80];
	snprintf(ht, sizeof(ht), "Content-Type: %s\r\n", headers_type);
	assert_non_null(memmem(v->part_head[2], v->part_head_len[2], ht, strlen(ht)));

	/* RFC 3464 §2.1: per-message fields, then one group per recipient, each after a blank line */
	const char *st = v->part[1];
	size_t sl = v->part_len[1];
	assert_int_equal(count_lines(st, sl, "Reporting-MTA: dns; "), 1);
	assert_int_equal(count_lines(st, sl, "Final-Recipient: "), nrcpt);
	assert_int_equal(count_lines(st, sl, "Action: "), nrcpt);
	assert_int_equal(count_lines(st, sl, "Status: "), nrcpt);
	assert_int_equal(count_in(st, sl, "\r\n\r\n"), nrcpt);
	assert_true(sl >= 2 && st[sl - 2] == '\r' && st[sl - 1] == '\n');
	/* the status part stays 7-bit (RFC 6533 §3 puts UTF-8 addresses in xtext form) */
	for (size_t i = 0; i < sl; i++)
		assert_true((unsigned char)st[i] < 0x80);
}

static struct bounce_report report_basic(struct bounce_rcpt *rc)
{
	struct bounce_report r = {
		.hostname = "mx.example.org",
		.queue_id = "0123456789ABCDEFGHJK",
		.sender = "alice@example.org",
		.arrival = T0 - 3600,
		.now = T0,
		.kind = BOUNCE_KIND_FAILURE,
		.rcpts = rc,
		.rcpt_count = 1,
		.original = original_simple,
		.original_len = sizeof(original_simple) - 1,
	};
	for (int i = 0; i < BOUNCE_RANDOM_LEN; i++)
		r.random[i] = (unsigned char)(0x11 * i);
	return r;
}

static void test_wanted(void **state)
{
	(void)state;
	assert_false(bounce_wanted(NULL));
	assert_false(bounce_wanted(""));
	assert_false(bounce_wanted("<>"));
	assert_false(bounce_wanted("MAILER-DAEMON@example.org"));
	assert_false(bounce_wanted("mailer-daemon@example.org"));
	assert_false(bounce_wanted("Mailer-Daemon"));
	assert_false(bounce_wanted("<MAILER-DAEMON>"));
	assert_false(bounce_wanted("\"MAILER-DAEMON\"@example.org"));
	assert_true(bounce_wanted("alice@example.org"));
	assert_true(bounce_wanted("mailer-daemon-list@example.org"));
	assert_true(bounce_wanted("postmaster@example.org"));
	assert_true(bounce_wanted("owner-list@example.org"));
	assert_string_equal(bounce_kind_str(BOUNCE_KIND_DELAY), "delay");
	assert_string_equal(bounce_action_str(BOUNCE_ACTION_FAILED), "failed");
}

static void test_failure(void **state)
{
	(void)state;
	struct bounce_rcpt rc = {
		.addr = "bob@example.net",
		.action = BOUNCE_ACTION_FAILED,
		.status = "5.1.1",
		.remote_mta = "dns; mx.example.net",
		.diagnostic = "smtp; 550 5.1.1 <bob@example.net>: user unknown",
		.last_attempt = T0 - 60,
	};
	struct bounce_report r = report_basic(&rc);
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("failure", m, size, 1, "text/rfc822-headers", &v);

	assert_true(starts_with(m, "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"));
	assert_non_null(strstr(m, "\r\nTo: <alice@example.org>\r\n"));
	assert_non_null(strstr(m, "\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
	assert_non_null(strstr(m, "\r\nDate: Sun, 22 Nov 2026 04:05:06 +0000\r\n"));
	assert_non_null(strstr(m, "\r\nMessage-ID: <0123456789ABCDEFGHJK.dsn@mx.example.org>\r\n"));
	assert_non_null(strstr(m, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(strstr(m, "boundary=\"mailwerk-dsn-00112233445566778899aabbccddeeff-00000000\""));

	const char *st = v.part[1];
	size_t sl = v.part_len[1];
	static const char expect[] = "Reporting-MTA: dns; mx.example.org\r\n"
				     "X-Mailwerk-Queue-ID: 0123456789ABCDEFGHJK\r\n"
				     "Arrival-Date: Sun, 22 Nov 2026 03:05:06 +0000\r\n"
				     "\r\n"
				     "Final-Recipient: rfc822; bob@example.net\r\n"
				     "Action: failed\r\n"
				     "Status: 5.1.1\r\n"
				     "Remote-MTA: dns; mx.example.net\r\n"
				     "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: user unknown\r\n"
				     "Last-Attempt-Date: Sun, 22 Nov 2026 04:04:06 +0000\r\n";
	assert_int_equal(sl, sizeof(expect) - 1);
	assert_memory_equal(st, expect, sl);
	/* RFC 3461 §6.3 d: no ORCPT given, no Original-Recipient */
	assert_false(contains(st, sl, "Original-Recipient"));

	/* the text part says it in words */
	const char *tx = v.part[0];
	size_t tl = v.part_len[0];
	assert_true(contains(tx, tl, "<bob@example.net>: could not be delivered"));
	assert_true(contains(tx, tl, "the recipient's mailbox does not exist (status 5.1.1)"));
	assert_true(contains(tx, tl, "550 5.1.1 <bob@example.net>: user unknown"));
	assert_true(contains(v.part_head[0], v.part_head_len[0], "charset=us-ascii"));

	/* the original's header section, exactly, and not one octet of its body */
	static const char heads[] = "Received: from client.example ([192.0.2.1])\r\n";
	assert_memory_equal(v.part[2], heads, sizeof(heads) - 1);
	assert_int_equal(v.part_len[2], strstr(original_simple, "\r\n\r\n") + 2 - original_simple);
	assert_memory_equal(v.part[2], original_simple, v.part_len[2]);
	assert_null(strstr(m, "SECRET-BODY-TEXT"));

	/* the same report gives the same message */
	size_t size2;
	char *m2 = bounce_compose(&r, &size2);
	assert_non_null(m2);
	assert_int_equal(size, size2);
	assert_memory_equal(m, m2, size);
	free(m2);
	free(m);
}

/* NOTIFY=SUCCESS (RFC 3461 §4.1): "delivered" for a mailbox here, "relayed" to a server without DSN,
 * with ENVID and ORCPT (RFC 3464 §2.2.1, §2.3.1); the header section only, whatever RET says (§4.3). */
static void test_success(void **state)
{
	(void)state;
	struct bounce_rcpt rc[2] = {
		{.addr = "bob@example.net", .orcpt = "rfc822;old+bob@example.org", .action = BOUNCE_ACTION_DELIVERED,
		 .status = NULL, .last_attempt = T0},
		{.addr = "carol@example.com", .action = BOUNCE_ACTION_RELAYED, .status = "5.1.1", /* a 5 does not fit */
		 .remote_mta = "dns; mx.example.com", .diagnostic = "smtp; 250 2.0.0 Ok: queued", .last_attempt = T0},
	};
	struct bounce_report r = report_basic(rc);
	r.rcpt_count = 2;
	r.kind = BOUNCE_KIND_SUCCESS;
	r.envid = "ENV 314";
	r.return_full = true;
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("success", m, size, 2, "text/rfc822-headers", &v);
	assert_string_equal(bounce_kind_str(BOUNCE_KIND_SUCCESS), "success");
	assert_string_equal(bounce_action_str(BOUNCE_ACTION_RELAYED), "relayed");
	assert_non_null(strstr(m, "\r\nSubject: Successful Mail Delivery Report\r\n"));
	assert_non_null(strstr(m, "\r\nMessage-ID: <0123456789ABCDEFGHJK.dsn-success.1795320306@mx.example.org>\r\n"));
	const char *st = v.part[1];
	size_t sl = v.part_len[1];
	assert_true(starts_with(st, "Original-Envelope-Id: ENV 314\r\nReporting-MTA: dns; mx.example.org\r\n"));
	assert_true(contains(st, sl, "\r\nOriginal-Recipient: rfc822; old+bob@example.org\r\n"
				     "Final-Recipient: rfc822; bob@example.net\r\nAction: delivered\r\nStatus: 2.0.0\r\n"));
	assert_true(contains(st, sl, "\r\nFinal-Recipient: rfc822; carol@example.com\r\nAction: relayed\r\n"
				     "Status: 2.0.0\r\nRemote-MTA: dns; mx.example.com\r\n"
				     "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued\r\n"));
	assert_int_equal(count_lines(st, sl, "Original-Recipient: "), 1);
	assert_false(contains(st, sl, "Will-Retry-Until"));
	const char *tx = v.part[0];
	size_t tl = v.part_len[0];
	assert_true(contains(tx, tl, "<bob@example.net>: delivered to the mailbox"));
	assert_true(contains(tx, tl, "<carol@example.com>: relayed to a server that does not report delivery"));
	assert_false(contains(tx, tl, "Reason:"));
	/* RET=FULL is for failure reports: the header section only */
	assert_memory_equal(v.part[2], original_simple, v.part_len[2]);
	assert_null(strstr(m, "SECRET-BODY-TEXT"));
	free(m);
}

/* RFC 8689 §5: a report on a REQUIRETLS message returns nothing of it, whatever RET says, for each
 * kind of report: the text and the delivery-status part only. */
static void test_requiretls_withheld(void **state)
{
	(void)state;
	static const char orig[] = "From: Alice <alice@example.org>\r\nSubject: SECRET-SUBJECT\r\n\r\nSECRET-BODY\r\n";
	static const enum bounce_kind kinds[] = {BOUNCE_KIND_FAILURE, BOUNCE_KIND_DELAY, BOUNCE_KIND_SUCCESS};
	static const enum bounce_action actions[] = {BOUNCE_ACTION_FAILED, BOUNCE_ACTION_DELAYED, BOUNCE_ACTION_RELAYED};
	for (size_t i = 0; i < 3; i++) {
		struct bounce_rcpt rc = {.addr = "bob@example.net", .action = actions[i],
					 .status = i == 0 ? "5.7.30" : i == 1 ? "4.7.30" : "2.0.0"};
		struct bounce_report r = report_basic(&rc);
		r.kind = kinds[i];
		r.original = orig;
		r.original_len = sizeof(orig) - 1;
		r.return_full = true;
		r.withhold_content = true;
		size_t size;
		char *m = bounce_compose(&r, &size);
		assert_non_null(m);
		assert_int_equal(strlen(m), size);
		assert_null(strstr(m, "SECRET"));
		assert_null(strstr(m, "rfc822-headers"));
		assert_null(strstr(m, "message/rfc822"));
		assert_non_null(strstr(m, "Content-Type: message/delivery-status\r\n"));
		assert_non_null(strstr(m, "sent with REQUIRETLS"));
		const char *b = strstr(m, "boundary=\"");
		assert_non_null(b);
		char delim[96];
		int n = snprintf(delim, sizeof(delim), "\r\n--%.*s", (int)strcspn(b + 10, "\""), b + 10);
		assert_true(n > 4);
		unsigned parts = 0;
		for (const char *p = strstr(m, delim); p != NULL; p = strstr(p + 1, delim))
			parts++;
		assert_int_equal(parts, 3); /* two parts opened, and the close */
		assert_memory_equal(m + size - 4, "--\r\n", 4);
		free(m);
	}
}

/* RET=FULL (RFC 3461 §4.3): a failure report returns the whole message as message/rfc822, when it is
 * within BOUNCE_FULL_MAX and its lines keep to RFC 5322; otherwise its header section, said so. */
static void test_ret_full(void **state)
{
	(void)state;
	static const char orig[] = "From: Alice <alice@example.org>\r\nSubject: lunch\r\n\r\nsee you at noon\r\n"
				   "--not-a-boundary\r\n";
	struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = "5.1.1"};
	struct bounce_report r = report_basic(&rc);
	r.original = orig;
	r.original_len = sizeof(orig) - 1;
	r.return_full = true;
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("ret_full", m, size, 1, "message/rfc822", &v);
	assert_true(contains(v.part_head[2], v.part_head_len[2], "Content-Transfer-Encoding: 7bit\r\n"));
	assert_int_equal(v.part_len[2], sizeof(orig) - 1);
	assert_memory_equal(v.part[2], orig, sizeof(orig) - 1);
	assert_true(contains(v.part[0], v.part_len[0], "your message is attached"));
	free(m);

	/* a line over 998 octets: the header section only, and the text says why */
	size_t blen = 1200;
	char *big = malloc(blen + 64);
	int k = snprintf(big, 64, "Subject: long\r\n\r\n");
	memset(big + k, 'x', blen);
	memcpy(big + k + blen, "\r\n", 3);
	r.original = big;
	r.original_len = strlen(big);
	m = bounce_compose(&r, &size);
	assert_non_null(m);
	dsn_check("ret_full_refused", m, size, 1, "text/rfc822-headers", &v);
	assert_true(contains(v.part[0], v.part_len[0], "too large (or has lines too long)"));
	assert_int_equal(v.part_len[2], strlen("Subject: long\r\n"));
	free(m);
	/* and one over BOUNCE_FULL_MAX */
	free(big);
	blen = BOUNCE_FULL_MAX;
	big = malloc(blen + 64);
	k = snprintf(big, 64, "Subject: huge\r\n\r\n");
	for (size_t i = 0; i < blen; i += 80) {
		size_t n = blen - i < 80 ? blen - i : 80;
		memset(big + k + i, 'y', n);
		if (n >= 2)
			memcpy(big + k + i + n - 2, "\r\n", 2);
	}
	big[k + blen] = '\0';
	r.original = big;
	r.original_len = strlen(big);
	m = bounce_compose(&r, &size);
	assert_non_null(m);
	assert_null(strstr(m, "Content-Type: message/rfc822"));
	assert_non_null(strstr(m, "Content-Type: text/rfc822-headers"));
	free(m);
	free(big);
	/* a delay warning never returns the body */
	r.original = orig;
	r.original_len = sizeof(orig) - 1;
	r.kind = BOUNCE_KIND_DELAY;
	rc.action = BOUNCE_ACTION_DELAYED;
	rc.status = "4.4.1";
	m = bounce_compose(&r, &size);
	assert_non_null(m);
	assert_null(strstr(m, "see you at noon"));
	free(m);
}

static void test_delay(void **state)
{
	(void)state;
	struct bounce_rcpt rc[2] = {
		{.addr = "bob@example.net", .action = BOUNCE_ACTION_DELAYED, .status = "4.4.1",
		 .diagnostic = "connection timed out", .last_attempt = T0 - 60, .retry_until = T0 + 5 * 86400},
		/* a delayed recipient cannot carry a permanent status */
		{.addr = "carol@example.net", .action = BOUNCE_ACTION_DELAYED, .status = "5.1.1",
		 .orcpt = "rfc822;Carol@Example.NET", .retry_until = T0 + 5 * 86400},
	};
	struct bounce_report r = report_basic(rc);
	r.kind = BOUNCE_KIND_DELAY;
	r.rcpt_count = 2;
	r.envid = "env-42";
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("delay", m, size, 2, "text/rfc822-headers", &v);
	assert_non_null(strstr(m, "\r\nSubject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(m, "\r\nMessage-ID: <0123456789ABCDEFGHJK.dsn-delay@mx.example.org>\r\n"));
	const char *st = v.part[1];
	size_t sl = v.part_len[1];
	static const char head[] = "Original-Envelope-Id: env-42\r\nReporting-MTA: dns; mx.example.org\r\n";
	assert_true(strncmp(st, head, sizeof(head) - 1) == 0);
	assert_true(contains(st, sl, "\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
			       "Diagnostic-Code: smtp; connection timed out\r\n"
			       "Last-Attempt-Date: Sun, 22 Nov 2026 04:04:06 +0000\r\n"
			       "Will-Retry-Until: Fri, 27 Nov 2026 04:05:06 +0000\r\n"));
	assert_true(contains(st, sl, "\r\nOriginal-Recipient: rfc822; Carol@Example.NET\r\nFinal-Recipient: rfc822; carol@example.net\r\n"
			       "Action: delayed\r\nStatus: 4.0.0\r\nWill-Retry-Until: "));
	assert_true(contains(v.part[0], v.part_len[0], "not delivered yet"));
	assert_true(contains(v.part[0], v.part_len[0], "Delivery will be tried until: Fri, 27 Nov 2026"));
	free(m);
}

static void test_status_fallback(void **state)
{
	(void)state;
	static const char *const bad[] = {NULL, "", "5", "5.1", "5.1.1.", "5.1.1 ", "5.1111.1", "3.1.1", "2.0.0",
					  "5..1", "5.a.1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = bad[i]};
		struct bounce_report r = report_basic(&rc);
		size_t size;
		char *m = bounce_compose(&r, &size);
		assert_non_null(m);
		struct dsn_view v;
		dsn_check("status_fallback", m, size, 1, "text/rfc822-headers", &v);
		assert_true(contains(v.part[1], v.part_len[1], "\r\nStatus: 5.0.0\r\n"));
		free(m);
	}
	/* a temporary status that ran out of time may be reported as failed (RFC 3463 X.4.7) */
	struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = "4.4.7"};
	struct bounce_report r = report_basic(&rc);
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(strstr(m, "\r\nStatus: 4.4.7\r\n"));
	assert_non_null(strstr(m, "the message could not be delivered in time (status 4.4.7)"));
	free(m);
}

static void test_hostile_diagnostic(void **state)
{
	(void)state;
	/* 5000 octets: multi-line reply, NUL, controls, 8-bit, an attempted field and boundary injection,
	 * and a 1500-octet word without spaces */
	char diag[5000];
	size_t n = 0;
	const char *lines[] = {"550-5.1.1 first line\r\n", "550-5.1.1 second\rline\n", "550-Injected: field\r\n\r\n",
			       "550-\x01\x02\x1b[31mred\x7f\r\n", "550-caf\xc3\xa9 \xff\xfe\r\n", "--mailwerk-dsn-\r\n"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		memcpy(diag + n, lines[i], strlen(lines[i]));
		n += strlen(lines[i]);
	}
	diag[n++] = '\0';
	diag[n++] = '\0';
	memcpy(diag + n, "550 tail ", 9);
	n += 9;
	for (size_t i = 0; i < 1500; i++)
		diag[n++] = 'W';
	for (; n < sizeof(diag); n++)
		diag[n] = (n % 7 == 0) ? '\n' : (n % 11 == 0) ? '\r' : (n % 13 == 0) ? '\0' : (char)('a' + n % 26);

	struct bounce_rcpt rc = {
		.addr = "bob@example.net",
		.action = BOUNCE_ACTION_FAILED,
		.status = "5.1.1",
		.remote_mta = "mx.example.net\r\nX-Evil: 1",
		.diagnostic = diag,
		.diagnostic_len = sizeof(diag),
	};
	struct bounce_report r = report_basic(&rc);
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("hostile_diagnostic", m, size, 1, "text/rfc822-headers", &v);

	/* no injected line anywhere */
	assert_int_equal(count_lines(m, size, "Injected:"), 0);
	assert_int_equal(count_lines(m, size, "X-Evil"), 0);
	char *d = field_value(v.part[1], v.part_len[1], "Diagnostic-Code");
	assert_non_null(d);
	static const char start[] = "smtp; 550-5.1.1 first line 550-5.1.1 second line 550-Injected: field 550- [31mred "
				    "550-caf? ?? --mailwerk-dsn- 550 tail WWW";
	assert_true(strncmp(d, start, sizeof(start) - 1) == 0);
	for (const char *p = d; *p != '\0'; p++)
		assert_true(*p >= 0x20 && *p < 0x7F);
	/* cut at BOUNCE_DIAG_MAX (plus the type the value already had), marked */
	assert_true(strlen(d) <= strlen("smtp; ") + BOUNCE_DIAG_MAX + 3);
	assert_string_equal(d + strlen(d) - 3, "...");
	free(d);
	char *mta = field_value(v.part[1], v.part_len[1], "Remote-MTA");
	assert_string_equal(mta, "dns; mx.example.net X-Evil: 1");
	free(mta);
	free(m);
}

static void test_many_rcpts(void **state)
{
	(void)state;
	enum { N = 300 };
	struct bounce_rcpt *rc = calloc(N, sizeof(*rc));
	char (*addrs)[64] = calloc(N, 64);
	for (size_t i = 0; i < N; i++) {
		snprintf(addrs[i], 64, "user%zu@example.net", i);
		rc[i] = (struct bounce_rcpt){.addr = addrs[i], .action = BOUNCE_ACTION_FAILED, .status = "5.2.2",
					     .remote_mta = "dns; mx.example.net",
					     .diagnostic = "smtp; 552 5.2.2 mailbox full"};
	}
	struct bounce_report r = report_basic(rc);
	r.rcpt_count = N;
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("many_rcpts", m, size, N, "text/rfc822-headers", &v);
	for (size_t i = 0; i < N; i++) {
		char want[96];
		snprintf(want, sizeof(want), "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.2.2\r\n", addrs[i]);
		assert_non_null(memmem(v.part[1], v.part_len[1], want, strlen(want)));
	}
	free(m);
	free(rc);
	free(addrs);
}

static void test_folded_8bit_headers(void **state)
{
	(void)state;
	static const char orig[] = "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n"
				   "Subject: Gr\xc3\xbc\xc3\x9f""e aus K\xc3\xb6ln,\r\n"
				   "\tfolded onto a second line\r\n"
				   "  and a third\r\n"
				   "X-Bad-Octet: \xff\xc0\x80 end\r\n"
				   "\r\n"
				   "SECRET-BODY-TEXT \xc3\xa4\r\n";
	struct bounce_rcpt rc = {.addr = "j\xc3\xb6rg@b\xc3\xbc ro.example", .action = BOUNCE_ACTION_FAILED,
				 .status = "5.1.1", .orcpt = "utf-8;j\xc3\xb6rg+x=y@b\xc3\xbc ro.example"};
	struct bounce_report r = report_basic(&rc);
	r.sender = "j\xc3\xbcrgen@example.org";
	r.original = orig;
	r.original_len = sizeof(orig) - 1;
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("folded_8bit_headers", m, size, 1, "message/global-headers", &v);
	assert_null(strstr(m, "SECRET-BODY-TEXT"));
	static const char want[] = "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n"
				   "Subject: Gr\xc3\xbc\xc3\x9f""e aus K\xc3\xb6ln,\r\n"
				   "\tfolded onto a second line\r\n"
				   "  and a third\r\n"
				   "X-Bad-Octet: ??? end\r\n";
	assert_int_equal(v.part_len[2], sizeof(want) - 1);
	assert_memory_equal(v.part[2], want, sizeof(want) - 1);
	assert_true(contains(v.part_head[2], v.part_head_len[2], "Content-Transfer-Encoding: 8bit"));
	assert_non_null(strstr(m, "\r\nContent-Transfer-Encoding: 8bit\r\n\r\nThis is"));
	/* RFC 6533 §3: UTF-8 addresses in the 7-bit part as utf-8-addr-xtext */
	assert_true(contains(v.part[1], v.part_len[1], "\r\nOriginal-Recipient: utf-8; j\\x{F6}rg\\x{2B}x\\x{3D}y@b\\x{FC}\\x{20}ro.example\r\n"
			       "Final-Recipient: utf-8; j\\x{F6}rg@b\\x{FC}\\x{20}ro.example\r\n"));
	/* RFC 6532: the sender and the text keep their UTF-8 */
	assert_non_null(strstr(m, "\r\nTo: <j\xc3\xbcrgen@example.org>\r\n"));
	assert_true(contains(v.part_head[0], v.part_head_len[0], "charset=utf-8"));
	assert_true(contains(v.part[0], v.part_len[0], "<j\xc3\xb6rg@b\xc3\xbc ro.example>: could not"));
	free(m);
}

/* a string literal and its length, NULs inside included */
#define LIT(s) s, sizeof(s) - 1

static void test_original_shapes(void **state)
{
	(void)state;
	struct {
		const char *name;
		const char *orig;
		size_t len;
		const char *want; /* the third part's content */
	} cases[] = {
		/* no empty line: the whole is header section */
		{"no_separator", LIT("Subject: x\r\nFrom: a@b"), "Subject: x\r\nFrom: a@b\r\n"},
		/* no empty line, running into body text: stop at the first line that is not a field */
		{"no_separator_body", LIT("Subject: x\r\nSECRET-BODY-TEXT here\r\nmore\r\n"), "Subject: x\r\n"},
		{"empty", LIT(""), ""},
		{"body_only", LIT("\r\nSECRET-BODY-TEXT\r\n"), ""},
		{"leading_continuation", LIT(" SECRET-BODY-TEXT: x\r\n\r\n"), ""},
		{"mbox_from", LIT("From SECRET-BODY-TEXT Mon\r\nSubject: x\r\n\r\n"), ""},
		/* bare LF line ends, a bare CR and a NUL inside a field */
		{"bare_lf", LIT("Subject: a\nX-A: b\rc\x00" "d\n\nSECRET-BODY-TEXT\n"), "Subject: a\r\nX-A: bcd\r\n"},
		/* an empty line made of CRs */
		{"cr_cr_lf", LIT("Subject: a\r\r\n\r\r\nSECRET-BODY-TEXT\r\n"), "Subject: a\r\n"},
		/* a whitespace-only continuation carries nothing */
		{"blank_continuation", LIT("Subject: a\r\n \t\r\nTo: b\r\n\r\nSECRET-BODY-TEXT"), "Subject: a\r\nTo: b\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = "5.1.1"};
		struct bounce_report r = report_basic(&rc);
		r.original = cases[i].orig;
		r.original_len = cases[i].len;
		size_t size;
		char *m = bounce_compose(&r, &size);
		assert_non_null(m);
		struct dsn_view v;
		char name[64];
		snprintf(name, sizeof(name), "original_%s", cases[i].name);
		dsn_check(name, m, size, 1, "text/rfc822-headers", &v);
		if (v.part_len[2] != strlen(cases[i].want) || memcmp(v.part[2], cases[i].want, v.part_len[2]) != 0)
			fail_msg("%s: headers part is \"%.*s\"", cases[i].name, (int)v.part_len[2], v.part[2]);
		assert_null(strstr(m, "SECRET-BODY-TEXT"));
		free(m);
	}
	/* no original at all */
	struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = "5.1.1"};
	struct bounce_report r = report_basic(&rc);
	r.original = NULL;
	r.original_len = 0;
	size_t size;
	char *m = bounce_compose(&r, &size);
	struct dsn_view v;
	dsn_check("original_null", m, size, 1, "text/rfc822-headers", &v);
	assert_int_equal(v.part_len[2], 0);
	free(m);
}

static void test_long_header_lines(void **state)
{
	(void)state;
	/* a 3000-octet field without whitespace, one with spaces, and one of UTF-8 characters */
	size_t cap = 20000, n = 0;
	char *orig = malloc(cap);
	n += (size_t)sprintf(orig + n, "X-Big: ");
	for (int i = 0; i < 3000; i++)
		orig[n++] = 'L';
	n += (size_t)sprintf(orig + n, "\r\nX-Spaced:");
	for (int i = 0; i < 500; i++)
		n += (size_t)sprintf(orig + n, " word%d", i);
	n += (size_t)sprintf(orig + n, "\r\nX-Utf8: ");
	for (int i = 0; i < 1500; i++)
		n += (size_t)sprintf(orig + n, "\xe2\x82\xac");
	n += (size_t)sprintf(orig + n, "\r\n\r\nSECRET-BODY-TEXT\r\n");
	struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = "5.1.1"};
	struct bounce_report r = report_basic(&rc);
	r.original = orig;
	r.original_len = n;
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("long_header_lines", m, size, 1, "message/global-headers", &v);
	assert_null(strstr(m, "SECRET-BODY-TEXT"));
	/* every L is still there, and a fold at a space loses nothing */
	assert_int_equal(count_in(v.part[2], v.part_len[2], "L"), 3000);
	char *spaced = field_value(v.part[2], v.part_len[2], "X-Spaced");
	assert_non_null(spaced);
	assert_true(starts_with(spaced, "word0 word1 word2 "));
	assert_non_null(strstr(spaced, " word498 word499"));
	assert_int_equal(count_in(spaced, strlen(spaced), "  "), 0);
	free(spaced);
	/* UTF-8 characters are never cut in two */
	assert_int_equal(count_in(v.part[2], v.part_len[2], "\xe2\x82\xac"), 1500);
	free(m);

	/* a header section past BOUNCE_HEADERS_MAX is cut at a line */
	free(orig);
	cap = BOUNCE_HEADERS_MAX * 2 + 100;
	orig = malloc(cap);
	n = 0;
	while (n < BOUNCE_HEADERS_MAX * 2)
		n += (size_t)sprintf(orig + n, "X-Filler: %060d\r\n", 0);
	r.original = orig;
	r.original_len = n;
	m = bounce_compose(&r, &size);
	dsn_check("headers_cap", m, size, 1, "text/rfc822-headers", &v);
	assert_true(v.part_len[2] >= BOUNCE_HEADERS_MAX && v.part_len[2] < BOUNCE_HEADERS_MAX + 100);
	free(m);
	free(orig);
}

static void test_boundary_collision(void **state)
{
	(void)state;
	/* the original carries the first two candidates; the third must be chosen */
	static const char orig[] = "X-A: mailwerk-dsn-00112233445566778899aabbccddeeff-00000000\r\n"
				   "X-B: --mailwerk-dsn-00112233445566778899aabbccddeeff-00000001--\r\n\r\n";
	struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = "5.1.1",
				 .diagnostic = "550 mailwerk-dsn-00112233445566778899aabbccddeeff-00000002"};
	struct bounce_report r = report_basic(&rc);
	r.original = orig;
	r.original_len = sizeof(orig) - 1;
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("boundary_collision", m, size, 1, "text/rfc822-headers", &v);
	assert_string_equal(v.boundary, "mailwerk-dsn-00112233445566778899aabbccddeeff-00000003");
	free(m);
}

static void test_hostile_addresses(void **state)
{
	(void)state;
	char longaddr[3000];
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[1500] = '@';
	longaddr[sizeof(longaddr) - 1] = '\0';
	struct bounce_rcpt rc = {.addr = "bob@example.net\r\nBcc: victim@example.com", .action = BOUNCE_ACTION_FAILED,
				 .status = "5.1.1", .orcpt = longaddr};
	struct bounce_report r = report_basic(&rc);
	r.sender = "alice@example.org\r\nBcc: victim@example.com";
	r.hostname = "mx.example.org\r\nX-Evil: 1";
	r.queue_id = "ID\nwith\tjunk";
	size_t size;
	char *m = bounce_compose(&r, &size);
	assert_non_null(m);
	struct dsn_view v;
	dsn_check("hostile_addresses", m, size, 1, "text/rfc822-headers", &v);
	assert_int_equal(count_lines(m, size, "Bcc:"), 0);
	assert_int_equal(count_lines(m, size, "X-Evil:"), 0);
	assert_non_null(strstr(m, "\r\nMessage-ID: <IDwithjunk.dsn@mx.example.orgX-Evil:1>\r\n"));
	free(m);
}

static void test_nothing_to_send(void **state)
{
	(void)state;
	struct bounce_rcpt rc = {.addr = "bob@example.net", .action = BOUNCE_ACTION_FAILED, .status = "5.1.1"};
	struct bounce_report r = report_basic(&rc);
	size_t size = 7;
	r.sender = "";
	assert_null(bounce_compose(&r, &size));
	r.sender = "MAILER-DAEMON@example.org";
	assert_null(bounce_compose(&r, &size));
	r.sender = "alice@example.org";
	r.rcpt_count = 0;
	assert_null(bounce_compose(&r, &size));
	assert_int_equal(size, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_failure),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_status_fallback),
		cmocka_unit_test(test_hostile_diagnostic),
		cmocka_unit_test(test_many_rcpts),
		cmocka_unit_test(test_folded_8bit_headers),
		cmocka_unit_test(test_original_shapes),
		cmocka_unit_test(test_long_header_lines),
		cmocka_unit_test(test_boundary_collision),
		cmocka_unit_test(test_hostile_addresses),
		cmocka_unit_test(test_nothing_to_send),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_ret_full),
		cmocka_unit_test(test_requiretls_withheld),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

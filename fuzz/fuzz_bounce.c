/* fuzz_bounce.c — DSN composition from arbitrary originals, remote replies and addresses.
 *
 * Input: flags, a 2-octet reply length, 1-octet address and sender lengths, then the reply, the
 * recipient address, the sender, and the rest as the original message. Invariants: a DSN exactly when
 * the sender may get one; CRLF line ends only and no NUL; every line within 998 octets; the boundary
 * occurs only as the parameter and the four delimiters; the delivery-status part holds one field
 * group per recipient and nothing that could pass for another field line; the returned header
 * section stays within its cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/bounce.h"

#define FUZZ_RCPT_MAX 8

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

static char *dup_n(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void check(const char *m, size_t size, size_t nrcpt, bool full)
{
	if (size < 2 || strlen(m) != size || m[size - 2] != '\r' || m[size - 1] != '\n')
		abort();
	size_t line = 0;
	for (size_t i = 0; i < size; i++) {
		if (m[i] == '\r' && m[i + 1] != '\n')
			abort();
		if (m[i] == '\n') {
			if (i == 0 || m[i - 1] != '\r')
				abort();
			line = 0;
		} else if (m[i] != '\r' && ++line > BOUNCE_LINE_MAX) {
			abort();
		}
	}

	const char *hend = strstr(m, "\r\n\r\n");
	if (hend == NULL)
		abort();
	size_t hlen = (size_t)(hend - m);
	static const char ct[] = "\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"";
	const char *bp = memmem(m, hlen, ct, sizeof(ct) - 1);
	if (bp == NULL)
		abort();
	bp += sizeof(ct) - 1;
	const char *bq = memchr(bp, '"', hlen - (size_t)(bp - m));
	if (bq == NULL || bq - bp > 70)
		abort();
	char b[80], delim[96], close[96];
	memcpy(b, bp, (size_t)(bq - bp));
	b[bq - bp] = '\0';
	strcpy(delim, "\r\n--");
	strcat(delim, b);
	strcpy(close, delim);
	strcat(delim, "\r\n");
	strcat(close, "--\r\n");
	if (count_in(m, size, b) != 5 || count_in(m, size, delim) != 3 || count_in(m, size, close) != 1 ||
	    memcmp(m + size - strlen(close), close, strlen(close)) != 0)
		abort();

	/* the second part: from its header section's end to the third delimiter */
	const char *d1 = strstr(m, delim);
	const char *d2 = strstr(d1 + 1, delim);
	const char *d3 = strstr(d2 + 1, delim);
	const char *st = strstr(d2 + strlen(delim), "\r\n\r\n");
	if (st == NULL || st > d3)
		abort();
	st += 4;
	size_t sl = (size_t)(d3 - st);
	if (count_lines(st, sl, "Final-Recipient: ") != nrcpt || count_lines(st, sl, "Action: ") != nrcpt ||
	    count_lines(st, sl, "Status: ") != nrcpt || count_lines(st, sl, "Reporting-MTA: ") != 1 ||
	    count_in(st, sl, "\r\n\r\n") != nrcpt)
		abort();
	/* every line of it is one of ours or a fold */
	static const char *const names[] = {"Original-Envelope-Id: ", "Reporting-MTA: ", "X-Mailwerk-Queue-ID: ",
					    "Arrival-Date: ", "Original-Recipient: ", "Final-Recipient: ",
					    "Action: ", "Status: ", "Remote-MTA: ", "Diagnostic-Code: ",
					    "Last-Attempt-Date: ", "Will-Retry-Until: "};
	size_t known = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		known += count_lines(st, sl, names[i]);
	if (known + count_lines(st, sl, " ") + nrcpt != count_lines(st, sl, ""))
		abort();
	for (size_t i = 0; i < sl; i++) {
		if ((unsigned char)st[i] >= 0x80)
			abort();
	}

	const char *hp = strstr(d3 + strlen(delim), "\r\n\r\n");
	if (hp == NULL)
		abort();
	hp += 4;
	const char *end = m + size - strlen(close);
	/* the returned part: the header section within its cap, or (RET=FULL) the message within its own */
	size_t cap = full ? BOUNCE_FULL_MAX + 2 : BOUNCE_HEADERS_MAX + 2 + 3 * (BOUNCE_HEADERS_MAX / (BOUNCE_LINE_MAX - 1) + 1);
	if (hp > end || (size_t)(end - hp) > cap)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	unsigned flags = data[0];
	/* the top bits of the second octet: RET=FULL, and a success report instead of a failure */
	unsigned flags2 = data[1] >> 6;
	size_t diag_len = (size_t)(data[1] & 0x3f) << 8 | data[2];
	size_t addr_len = data[3], sender_len = data[4];
	data += 5;
	size -= 5;
	if (diag_len > size)
		diag_len = size;
	const uint8_t *diag = data;
	data += diag_len;
	size -= diag_len;
	if (addr_len > size)
		addr_len = size;
	char *addr = dup_n(data, addr_len);
	data += addr_len;
	size -= addr_len;
	if (sender_len > size)
		sender_len = size;
	char *sender = dup_n(data, sender_len);
	data += sender_len;
	size -= sender_len;
	/* the rest is the original; an exact-size copy so ASan sees any overread */
	char *orig = size > 0 ? (char *)dup_n(data, size) : NULL;

	struct bounce_rcpt rc[FUZZ_RCPT_MAX];
	size_t n = ((flags >> 1) & 7) + 1;
	for (size_t i = 0; i < n; i++) {
		rc[i] = (struct bounce_rcpt){
			.addr = i == 0 ? addr : "rcpt@example.net",
			.orcpt = (flags & 0x20) ? addr : NULL,
			.action = (flags & 1)    ? BOUNCE_ACTION_DELAYED
				  : (flags2 & 2) ? ((i & 1) ? BOUNCE_ACTION_RELAYED : BOUNCE_ACTION_DELIVERED)
				  : (i + flags) & 1 ? BOUNCE_ACTION_DELAYED
						    : BOUNCE_ACTION_FAILED,
			.status = (flags & 0x80) ? addr : (i & 1) ? "4.4.1" : "5.1.1",
			.remote_mta = (flags & 0x10) ? addr : NULL,
			/* each recipient a different cut of the reply, NULs included */
			.diagnostic = diag_len > i ? (const char *)diag + i : NULL,
			.diagnostic_len = diag_len - i,
			.last_attempt = 1795320306,
			.retry_until = (flags & 0x40) ? 1795320306 + 86400 : 0,
		};
	}
	struct bounce_report r = {
		.hostname = "mx.example.org",
		.queue_id = "0123456789ABCDEFGHJK",
		.sender = sender,
		.envid = (flags & 0x40) ? addr : NULL,
		.arrival = 1795320000,
		.now = 1795320306,
		.kind = (flags & 1) ? BOUNCE_KIND_DELAY : (flags2 & 2) ? BOUNCE_KIND_SUCCESS : BOUNCE_KIND_FAILURE,
		.return_full = (flags2 & 1) != 0,
		.rcpts = rc,
		.rcpt_count = n,
		.original = orig,
		.original_len = size,
	};
	/* all-zero randomness: a predictable boundary, so the fuzzer can plant it in the content */
	memset(r.random, 0, sizeof(r.random));

	size_t out_size = 0;
	char *m = bounce_compose(&r, &out_size);
	if ((m != NULL) != bounce_wanted(sender))
		abort();
	if (m != NULL)
		check(m, out_size, n, r.return_full && r.kind == BOUNCE_KIND_FAILURE);
	free(m);
	free(orig);
	free(addr);
	free(sender);
	return 0;
}

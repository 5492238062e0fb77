/* fuzz_spf_eval.c — libFuzzer harness for the SPF evaluator (src/auth/spf.c) with a hostile DNS:
 * the input gives the client address, MAIL FROM and HELO, then the answer to every question the
 * evaluator asks (status, records of the type asked; TXT answers may be made to start with
 * "v=spf1 " so that records with includes, redirects and macros come up often). The evaluation must
 * end within the question budget that §4.6.4 implies, and what it reports must be well formed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/spf.h"
#include "auth/spf_macro.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* Record fetches (the first and 10 includes or redirects), 10 terms of at most 11 questions
 * (mx, ptr), the PTR names for %{p}, the explanation: well under this. */
#define FUZZ_QUESTIONS_MAX 200
#define FUZZ_RECORDS 8

struct fuzz_in {
	const uint8_t *p;
	size_t len, off;
};

static uint8_t next(struct fuzz_in *in)
{
	return in->off < in->len ? in->p[in->off++] : 0;
}

static bool more(const struct fuzz_in *in)
{
	return in->off < in->len;
}

/* Up to max octets up to a '\n' (consumed), NUL-terminated. */
static void line(struct fuzz_in *in, char *buf, size_t max)
{
	size_t n = 0;
	while (more(in)) {
		uint8_t c = next(in);
		if (c == '\n')
			break;
		if (n < max)
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
}

/* A name of up to 253 octets, anything but NUL. */
static void name(struct fuzz_in *in, char *buf)
{
	size_t n = next(in) % DNS_HOST_SIZE;
	for (size_t i = 0; i < n; i++) {
		buf[i] = (char)next(in);
		if (buf[i] == '\0')
			buf[i] = '.';
	}
	buf[n] = '\0';
}

static struct {
	struct dns_result r;
	struct dns_txt txts[FUZZ_RECORDS];
	char text[FUZZ_RECORDS][700];
	struct dns_addr addrs[FUZZ_RECORDS];
	struct dns_mx mx[FUZZ_RECORDS * 2];
	struct dns_ptr ptrs[FUZZ_RECORDS * 2];
} ans;

static const struct dns_result *answer(struct fuzz_in *in, const struct auth_query *q)
{
	uint8_t st = next(in);
	memset(&ans.r, 0, sizeof(ans.r));
	ans.r.rrtype = q->rrtype;
	ans.r.name = q->name;
	ans.r.canonname = q->name;
	ans.r.why = "";
	ans.r.txts = ans.txts;
	ans.r.addrs = ans.addrs;
	ans.r.mx = ans.mx;
	ans.r.ptrs = ans.ptrs;
	ans.r.status = !more(in) ? DNS_STATUS_NXDOMAIN : (enum dns_status)(st % 5);
	if (ans.r.status != DNS_STATUS_OK)
		return &ans.r;
	size_t n = (st >> 3) % (q->rrtype == DNS_RRTYPE_TXT || q->rrtype == DNS_RRTYPE_A ||
					q->rrtype == DNS_RRTYPE_AAAA ? FUZZ_RECORDS : FUZZ_RECORDS * 2);
	for (size_t i = 0; i < n; i++) {
		switch (q->rrtype) {
		case DNS_RRTYPE_TXT: {
			size_t o = 0, len = next(in) * 2u;
			len += next(in) & 1;
			if (st & 0x80) {
				memcpy(ans.text[i], "v=spf1 ", 7);
				o = 7;
			}
			for (size_t k = 0; k < len && more(in); k++)
				ans.text[i][o++] = (char)next(in);
			ans.text[i][o] = '\0';
			ans.txts[i].text = ans.text[i];
			ans.txts[i].len = o;
			break;
		}
		case DNS_RRTYPE_A:
		case DNS_RRTYPE_AAAA:
			memset(&ans.addrs[i], 0, sizeof(ans.addrs[i]));
			ans.addrs[i].family = q->rrtype == DNS_RRTYPE_A ? AF_INET : AF_INET6;
			for (size_t k = 0; k < (q->rrtype == DNS_RRTYPE_A ? 4u : 16u); k++)
				ans.addrs[i].bytes[k] = next(in);
			break;
		case DNS_RRTYPE_MX:
			ans.mx[i].pref = (uint16_t)(next(in) << 8 | next(in));
			name(in, ans.mx[i].exchange);
			break;
		case DNS_RRTYPE_PTR:
			name(in, ans.ptrs[i].name);
			break;
		}
	}
	ans.r.count = ans.r.raw_count = n;
	return &ans.r;
}

/* Printable US-ASCII, and the "§" (UTF-8 C2 A7) of section references. */
static void check_text(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == 0xc2 && p[1] == 0xa7)
			p++;
		else
			FUZZ_CHECK(*p >= 0x20 && *p <= 0x7e);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size, 0};
	static char from[SPF_INPUT_MAX + 2], helo[SPF_INPUT_MAX + 2];
	struct spf_request req = {.mail_from = from, .helo = helo, .receiver = "mx.example.org", .now = 1};
	uint8_t flags = next(&in);

	req.identity = flags & 1 ? SPF_IDENTITY_HELO : SPF_IDENTITY_MAILFROM;
	req.ip.family = flags & 2 ? AF_INET6 : AF_INET;
	for (size_t i = 0; i < 16; i++)
		req.ip.bytes[i] = next(&in);
	if (flags & 4) /* an IPv4-mapped address */
		memcpy(req.ip.bytes, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
	if (flags & 8)
		req.default_explanation = "%{p} %{i} %{s}";
	line(&in, from, SPF_INPUT_MAX + 1);
	line(&in, helo, SPF_INPUT_MAX + 1);

	struct spf_eval *e = spf_eval_new(&req);
	if (e == NULL)
		return 0;
	struct auth_query q;
	unsigned asked = 0;
	enum auth_step s = spf_eval_step(e, NULL, &q);
	while (s == AUTH_STEP_QUERY) {
		FUZZ_CHECK(++asked <= FUZZ_QUESTIONS_MAX);
		FUZZ_CHECK(spf_macro_name_ok(q.name));
		FUZZ_CHECK(q.rrtype == DNS_RRTYPE_TXT || q.rrtype == DNS_RRTYPE_A || q.rrtype == DNS_RRTYPE_AAAA ||
			   q.rrtype == DNS_RRTYPE_MX || q.rrtype == DNS_RRTYPE_PTR);
		s = spf_eval_step(e, answer(&in, &q), &q);
	}
	enum spf_result r = spf_eval_result(e);
	FUZZ_CHECK(r >= SPF_RESULT_NONE && r <= SPF_RESULT_PERMERROR);
	FUZZ_CHECK(spf_eval_lookups(e) <= SPF_LOOKUP_LIMIT + 1);
	FUZZ_CHECK(spf_eval_void_lookups(e) <= SPF_VOID_LIMIT + 1);
	check_text(spf_eval_problem(e));
	FUZZ_CHECK(spf_eval_problem(e)[0] != '\0');
	const char *exp = spf_eval_explanation(e);
	FUZZ_CHECK((exp != NULL) == (r == SPF_RESULT_FAIL));
	if (exp != NULL) {
		FUZZ_CHECK(strlen(exp) < SPF_EXPLANATION_SIZE);
		for (const char *p = exp; *p != '\0'; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p <= 0x7e);
	}
	FUZZ_CHECK(strlen(spf_eval_sender(e)) < 2 * SPF_INPUT_MAX + 2);
	FUZZ_CHECK(spf_eval_step(e, NULL, &q) == AUTH_STEP_DONE);
	spf_eval_free(e);
	return 0;
}

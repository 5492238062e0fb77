/* test_dkim_sign.c — DKIM signing: the RFC 8463 Appendix A signatures reproduced byte for byte, the
 * default h= list and its over-signed From, folding, parameter checks, and signatures that the
 * verifier (through the fake zone) accepts for every algorithm and canonicalization. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"
#include "dkim_testdata.h"
#include "fake_dns.h"
#include "test_util.h"

#define RFC_HEADERS "from : to : subject : date : message-id : from : subject : date"

static const char small_msg[] = "From: Joe <joe@example.com>\r\n"
				"To: a@example.net\r\n"
				"To: b@example.net\r\n"
				"Subject: hi\r\n"
				"X-Other: not signed\r\n"
				"\r\n"
				"Hello  there. \r\n"
				"\r\n";

/* The two DKIM-Signature fields of expected-dkim-signature-headers.txt; which = 0 (Ed25519), 1 (RSA). */
static char *expected_field(int which)
{
	size_t len;
	char *all = testdata_read("dkim/rfc8463/expected-dkim-signature-headers.txt", &len);
	size_t pos = 0;
	struct header_field f;
	for (int i = 0; i <= which; i++)
		assert_true(header_next(all, len, &pos, &f));
	char *out = test_dup(f.raw, f.raw_len + 1);
	out[f.raw_len] = '\0';
	free(all);
	return out;
}

static char *sign_rfc(EVP_PKEY *key, const char *selector, unsigned width)
{
	size_t len;
	char *msg = testdata_read("dkim/rfc8463/unsigned-message.eml", &len);
	struct dkim_sign_params p = {
		.domain = "football.example.com",
		.selector = selector,
		.key = key,
		.header_canon = DKIM_CANON_RELAXED,
		.body_canon = DKIM_CANON_RELAXED,
		.timestamp = 1528637909,
		.identity = "@football.example.com",
		.query_method = true,
		.headers = RFC_HEADERS,
		.fold_width = width,
	};
	const char *err = NULL;
	char *field = dkim_sign(&p, msg, len, &err);
	if (field == NULL)
		fail_msg("dkim_sign: %s", err);
	free(msg);
	return field;
}

/* The value of tag name in a field, with FWS removed (into buf). */
static const char *tag_value(const char *field, const char *name, char *buf, size_t size)
{
	char pat[8];
	snprintf(pat, sizeof(pat), " %s=", name);
	const char *p = strstr(field, pat);
	assert_non_null(p);
	p += strlen(pat);
	size_t o = 0;
	for (; *p != '\0' && *p != ';' && o + 1 < size; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			buf[o++] = *p;
	buf[o] = '\0';
	return buf;
}

static void check_line_widths(const char *field, size_t width)
{
	size_t col = 0;
	for (const char *p = field; *p != '\0'; p++) {
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			if (col > width)
				fail_msg("a line of %zu columns in:\n%s", col, field);
			col = 0;
			p++;
			if (p[1] != '\0')
				assert_true(p[1] == ' '); /* every fold is CRLF SP */
			continue;
		}
		col++;
	}
	assert_int_equal(col, 0); /* ends in CRLF */
}

/* RFC 8463 Appendix A: Ed25519 and RSA signatures are deterministic, so signing the unsigned message
 * with the same tags gives the published fields. Folded at 59 columns, as the RFC's were, the bytes
 * are the same too. */
static void test_rfc8463_exact(void **state)
{
	EVP_PKEY *ed = testdata_ed25519_key(), *rsa = testdata_rsa_key();
	char *want_ed = expected_field(0), *want_rsa = expected_field(1);
	char *got = sign_rfc(ed, "brisbane", 59);
	assert_string_equal(got, want_ed);
	free(got);
	got = sign_rfc(rsa, "test", 59);
	assert_string_equal(got, want_rsa);
	free(got);
	free(want_ed);
	free(want_rsa);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
}

/* Folded at the default 78 columns the lines differ, the tag values do not (relaxed header
 * canonicalization makes a fold and a space the same). */
static void test_rfc8463_default_width(void **state)
{
	EVP_PKEY *ed = testdata_ed25519_key(), *rsa = testdata_rsa_key();
	EVP_PKEY *keys[] = {ed, rsa};
	const char *sel[] = {"brisbane", "test"};
	for (int i = 0; i < 2; i++) {
		char *want = expected_field(i), *got = sign_rfc(keys[i], sel[i], 0);
		check_line_widths(got, DKIM_SIGN_FOLD_DEFAULT);
		const char *tags[] = {"a", "c", "d", "i", "q", "s", "t", "h", "bh", "b"};
		for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
			char a[1024], b[1024];
			assert_string_equal(tag_value(got, tags[t], a, sizeof(a)), tag_value(want, tags[t], b, sizeof(b)));
		}
		free(want);
		free(got);
	}
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
}

static char *sign_small(EVP_PKEY *key, const char *headers, const char **err_r)
{
	struct dkim_sign_params p = {
		.domain = "example.com",
		.selector = "sel",
		.key = key,
		.header_canon = DKIM_CANON_RELAXED,
		.body_canon = DKIM_CANON_RELAXED,
		.headers = headers,
	};
	return dkim_sign(&p, small_msg, sizeof(small_msg) - 1, err_r);
}

/* RFC 6376 §5.4.2: every instance listed; From once more than it occurs; absent names left out. */
static void test_default_headers(void **state)
{
	EVP_PKEY *ed = testdata_ed25519_key();
	const char *err = NULL;
	char *got = sign_small(ed, NULL, &err);
	assert_non_null(got);
	char h[256];
	assert_string_equal(tag_value(got, "h", h, sizeof(h)), "from:from:to:to:subject");
	/* no t=, x=, i=, q= unless asked */
	assert_null(strstr(got, " t="));
	assert_null(strstr(got, " x="));
	assert_null(strstr(got, " i="));
	assert_null(strstr(got, " q="));
	assert_int_equal(strncmp(got, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;", 72), 0);
	check_line_widths(got, DKIM_SIGN_FOLD_DEFAULT);
	free(got);

	/* a message with all the default fields */
	static const char full[] = "From: a@example.com\r\nSender: s@example.com\r\nTo: b@example.com\r\nCc: c@example.com\r\n"
				   "Subject: s\r\nDate: d\r\nMessage-ID: <m@example.com>\r\nReply-To: r@example.com\r\n"
				   "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n"
				   "In-Reply-To: <x@example.com>\r\nReferences: <x@example.com>\r\n"
				   "List-Unsubscribe: <mailto:u@example.com>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
				   "\r\nbody\r\n";
	struct dkim_sign_params p = {.domain = "example.com", .selector = "s1", .key = ed, .fold_width = 40};
	got = dkim_sign(&p, full, sizeof(full) - 1, &err);
	assert_non_null(got);
	char hh[1024];
	assert_string_equal(tag_value(got, "h", hh, sizeof(hh)),
			    "from:from:to:cc:subject:date:message-id:reply-to:mime-version:content-type:"
			    "content-transfer-encoding:in-reply-to:references:list-unsubscribe:list-unsubscribe-post");
	/* c= says simple/simple when the caller leaves the canonicalizations at zero */
	assert_non_null(strstr(got, "c=simple/simple;"));
	check_line_widths(got, 40);
	free(got);
	EVP_PKEY_free(ed);
}

static void test_refusals(void **state)
{
	EVP_PKEY *ed = testdata_ed25519_key();
	const char *err = NULL;
	/* no From */
	struct dkim_sign_params p = {.domain = "example.com", .selector = "s", .key = ed};
	static const char no_from[] = "To: a@example.com\r\nSubject: x\r\n\r\nbody\r\n";
	assert_null(dkim_sign(&p, no_from, sizeof(no_from) - 1, &err));
	assert_string_equal(err, "the message has no From field");
	/* an h= list without From, or not a list */
	assert_null(sign_small(ed, "to : subject", &err));
	assert_non_null(strstr(err, "From"));
	assert_null(sign_small(ed, "from :: to", &err));
	assert_null(sign_small(ed, "from to", &err));
	assert_null(sign_small(ed, "", &err));
	assert_null(sign_small(ed, "from\x01", &err));
	/* parameters */
	const char *domains[] = {"example", "-a.example.com", "a..example.com", "a_b.example.com", "", "example.com."};
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		p.domain = domains[i];
		assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	}
	p.domain = "example.com";
	p.selector = "bad selector";
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.selector = "s";
	p.timestamp = 100;
	p.expire = 100;
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.expire = 99;
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.expire = 0;
	p.identity = "joe@example.org";
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.identity = "joe@badexample.com";
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.identity = "joe";
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.identity = NULL;
	p.header_canon = (enum dkim_canon)5;
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.header_canon = DKIM_CANON_SIMPLE;
	/* keys DKIM cannot sign with */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	p.key = small;
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	assert_non_null(strstr(err, "1024"));
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p.key = ec;
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	p.key = NULL;
	assert_null(dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err));
	EVP_PKEY_free(small);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

static void test_tags(void **state)
{
	EVP_PKEY *ed = testdata_ed25519_key();
	const char *err = NULL;
	struct dkim_sign_params p = {
		.domain = "Example.COM",
		.selector = "s2024.mail",
		.key = ed,
		.timestamp = 1700000000,
		.expire = 1700086400,
		/* RFC 6376 §2.11: ';', '=' and non-ASCII octets of the local part are quoted */
		.identity = "a;b=c\xc3\xa9@Sub.Example.com",
		.query_method = true,
		.headers = "From:Subject",
	};
	char *got = dkim_sign(&p, small_msg, sizeof(small_msg) - 1, &err);
	assert_non_null(got);
	char v[512];
	assert_string_equal(tag_value(got, "i", v, sizeof(v)), "a=3Bb=3Dc=C3=A9@Sub.Example.com");
	assert_string_equal(tag_value(got, "t", v, sizeof(v)), "1700000000");
	assert_string_equal(tag_value(got, "x", v, sizeof(v)), "1700086400");
	assert_string_equal(tag_value(got, "q", v, sizeof(v)), "dns/txt");
	assert_string_equal(tag_value(got, "h", v, sizeof(v)), "From:Subject");
	assert_string_equal(tag_value(got, "s", v, sizeof(v)), "s2024.mail");
	/* the order v a c d i q s t x h bh b */
	const char *order[] = {" v=", " a=", " c=", " d=", " i=", " q=", " s=", " t=", " x=", " h=", " bh=", " b="};
	const char *last = got;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *at = strstr(got, order[i]);
		if (at == NULL || at < last)
			fail_msg("%s out of order in %s", order[i], got);
		last = at;
	}
	free(got);
	EVP_PKEY_free(ed);
}

/* Signatures of every kind verify, through the fake zone publishing the key. */
static void test_round_trip(void **state)
{
	EVP_PKEY *ed = NULL, *rsa = NULL;
	const char *err = NULL;
	assert_int_equal(dkim_key_generate(DKIM_KEY_ED25519, 0, &ed, &err), DKIM_KEY_OK);
	assert_int_equal(dkim_key_generate(DKIM_KEY_RSA, 2048, &rsa, &err), DKIM_KEY_OK);
	struct fake_dns *z = fake_dns_new();
	char *rec = dkim_key_record_format(ed, &err);
	fake_dns_add(z, "ed._domainkey.example.com", DNS_RRTYPE_TXT, rec);
	free(rec);
	rec = dkim_key_record_format(rsa, &err);
	fake_dns_add(z, "rsa._domainkey.example.com", DNS_RRTYPE_TXT, rec);
	free(rec);

	static const char *const bodies[] = {"", "\r\n", "one line", "a  b \r\n\r\n\tc\r\n\r\n\r\n"};
	for (int k = 0; k < 2; k++) {
		for (int hc = 0; hc < 2; hc++) {
			for (int bc = 0; bc < 2; bc++) {
				for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
					char msg[512];
					int n = snprintf(msg, sizeof(msg), "From: x@example.com\r\nTo:  y@example.net \r\n"
								      "Subject: folded\r\n\tsubject  line\r\n\r\n%s", bodies[b]);
					struct dkim_sign_params p = {
						.domain = "example.com",
						.selector = k == 0 ? "ed" : "rsa",
						.key = k == 0 ? ed : rsa,
						.header_canon = (enum dkim_canon)hc,
						.body_canon = (enum dkim_canon)bc,
						.timestamp = 1000,
						.expire = 2000,
						.identity = "x@example.com",
						.fold_width = 30 + 10 * (unsigned)b,
					};
					char *field = dkim_sign(&p, msg, (size_t)n, &err);
					assert_non_null(field);
					size_t flen = strlen(field);
					char *signed_msg = malloc(flen + (size_t)n);
					memcpy(signed_msg, field, flen);
					memcpy(signed_msg + flen, msg, (size_t)n);
					struct dkim_verify *v = dkim_verify_new(signed_msg, flen + (size_t)n, 8, 1500);
					assert_non_null(v);
					fake_dns_run(z, dkim_verify_step, v);
					assert_int_equal(dkim_verify_count(v), 1);
					const struct dkim_sig_result *r = dkim_verify_result(v, 0);
					if (r->result != DKIM_RESULT_PASS)
						fail_msg("%s %s/%s body %zu: %s (%s)\n%s", p.selector, dkim_canon_str(p.header_canon),
							 dkim_canon_str(p.body_canon), b, dkim_result_str(r->result), r->reason,
							 field);
					dkim_verify_free(v);
					free(signed_msg);
					free(field);
				}
			}
		}
	}
	fake_dns_free(z);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8463_exact),
		cmocka_unit_test(test_rfc8463_default_width),
		cmocka_unit_test(test_default_headers),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

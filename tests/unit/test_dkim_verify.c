/* test_dkim_verify.c — DKIM verification through the fake zone: the RFC 8463 and dkimpy vectors,
 * tampered copies of them, every DNS outcome, the key record rules (RFC 6376 §3.6.1, §6.1.2), the
 * signature field rules (§3.5, §6.1.1), RFC 8301, l=, and the limits. Signatures with unusual tags
 * are made here by a small signer built from the library's own pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dkim_sig.h"
#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"
#include "dkim_testdata.h"
#include "fake_dns.h"
#include "test_util.h"

#define NOW 1700000000
#define RFC_D "football.example.com"

struct env {
	struct fake_dns *z;
	EVP_PKEY *ed, *rsa; /* the RFC 8463 keys */
	char *ed_txt, *rsa_txt;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	e->z = fake_dns_new();
	e->ed = testdata_ed25519_key();
	e->rsa = testdata_rsa_key();
	e->ed_txt = testdata_line("dkim/rfc8463/brisbane._domainkey.football.example.com.TXT");
	e->rsa_txt = testdata_line("dkim/rfc8463/test._domainkey.football.example.com.TXT");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	fake_dns_free(e->z);
	EVP_PKEY_free(e->ed);
	EVP_PKEY_free(e->rsa);
	free(e->ed_txt);
	free(e->rsa_txt);
	free(e);
	return 0;
}

/* A fresh zone with the two RFC 8463 records. */
static struct fake_dns *rfc_zone(struct env *e)
{
	fake_dns_free(e->z);
	e->z = fake_dns_new();
	fake_dns_add(e->z, "brisbane._domainkey." RFC_D, DNS_RRTYPE_TXT, e->ed_txt);
	fake_dns_add(e->z, "test._domainkey." RFC_D, DNS_RRTYPE_TXT, e->rsa_txt);
	return e->z;
}

static struct dkim_verify *run(struct fake_dns *z, const char *msg, size_t len, unsigned max, time_t now)
{
	char *copy = test_dup(msg, len); /* exact size: ASan sees any read past the end */
	struct dkim_verify *v = dkim_verify_new(copy, len, max, now);
	free(copy); /* the verifier keeps what it needs */
	assert_non_null(v);
	fake_dns_run(z, dkim_verify_step, v);
	return v;
}

static void expect(const struct dkim_verify *v, size_t i, enum dkim_result want, const char *reason)
{
	const struct dkim_sig_result *r = dkim_verify_result(v, i);
	assert_non_null(r);
	if (r->result != want || (reason != NULL && strcmp(r->reason, reason) != 0))
		fail_msg("signature %zu: got %s (%s), want %s (%s)", i, dkim_result_str(r->result), r->reason,
			 dkim_result_str(want), reason != NULL ? reason : "any");
}

/* Replaces the first occurrence of from with to in a heap copy of s. */
static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	assert_non_null(at);
	size_t n = strlen(s) - strlen(from) + strlen(to);
	char *out = malloc(n + 1);
	size_t pre = (size_t)(at - s);
	memcpy(out, s, pre);
	strcpy(out + pre, to);
	strcat(out, at + strlen(from));
	return out;
}

static char *cat(const char *a, const char *b)
{
	char *out = malloc(strlen(a) + strlen(b) + 1);
	strcpy(out, a);
	strcat(out, b);
	return out;
}

/* ---- a signer for unusual tags ---- */

struct sink_buf {
	char data[8192];
	size_t len;
};

static void sink_buf(void *arg, const void *data, size_t len)
{
	struct sink_buf *b = arg;
	assert_true(b->len + len <= sizeof(b->data));
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* "DKIM-Signature: <tags> bh=<hash>; b=<signature>\r\n": tags are written as given (they must end
 * in "; " and hold h= with the names in names, colon-separated); the body hash follows bc and l. */
static char *raw_sign(EVP_PKEY *key, const char *tags, const char *names, enum dkim_canon hc, enum dkim_canon bc,
		      bool has_l, uint64_t l, const char *msg)
{
	size_t len = strlen(msg), body = header_body_offset(msg, len);
	unsigned char bh[DKIM_DIGEST_SIZE], digest[DKIM_DIGEST_SIZE], sig[1024];
	char bh64[64], b64[1400], field[8192];
	assert_true(dkim_body_hash_compute(bc, msg + body, len - body, has_l, l, bh, NULL));
	EVP_EncodeBlock((unsigned char *)bh64, bh, sizeof(bh));
	snprintf(field, sizeof(field), "DKIM-Signature: %sbh=%s; b=", tags, bh64);

	struct header_field fields[64];
	size_t n = 0, pos = 0;
	while (n < 64 && header_next(msg, len, &pos, &fields[n]))
		n++;
	struct dkim_span spans[32];
	size_t ns = 0;
	for (const char *p = names; *p != '\0' && ns < 32;) {
		const char *c = strchr(p, ':');
		size_t k = c != NULL ? (size_t)(c - p) : strlen(p);
		spans[ns].p = p;
		spans[ns++].len = k;
		p += k + (c != NULL);
	}
	bool taken[64] = {false};
	struct sink_buf in = {.len = 0};
	dkim_headers_canon(hc, fields, n, taken, spans, ns, sink_buf, &in);
	dkim_canon_header(hc, field, strlen(field), false, sink_buf, &in);
	unsigned int dl;
	assert_int_equal(EVP_Digest(in.data, in.len, digest, &dl, EVP_sha256(), NULL), 1);
	size_t sl = sizeof(sig);
	assert_true(dkim_key_sign_digest(key, digest, sizeof(digest), sig, &sl));
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)sl);
	char *out = malloc(strlen(field) + strlen(b64) + strlen(msg) + 3);
	sprintf(out, "%s%s\r\n%s", field, b64, msg);
	return out;
}

static const char plain_msg[] = "From: Joe <joe@football.example.com>\r\n"
				"To: Suzie <suzie@example.net>\r\n"
				"Subject: test\r\n"
				"\r\n"
				"Line one.\r\n"
				"Line two.\r\n";

/* An Ed25519 signature of plain_msg with s=brisbane, relaxed/relaxed and extra tags. */
static char *ed_sign(struct env *e, const char *extra, bool has_l, uint64_t l)
{
	char tags[1024];
	snprintf(tags, sizeof(tags), "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=" RFC_D "; s=brisbane; %sh=from:to:subject; ",
		 extra);
	return raw_sign(e->ed, tags, "from:to:subject", DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, has_l, l, plain_msg);
}

/* ---- the vectors ---- */

static void test_rfc8463(void **state)
{
	struct env *e = *state;
	size_t len;
	char *msg = testdata_read("dkim/rfc8463/signed-message.eml", &len);
	struct fake_dns *z = rfc_zone(e);
	struct dkim_verify *v = run(z, msg, len, 8, NOW);
	assert_int_equal(dkim_verify_count(v), 2);
	assert_int_equal(dkim_verify_ignored(v), 0);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	expect(v, 1, DKIM_RESULT_PASS, NULL);
	const struct dkim_sig_result *r = dkim_verify_result(v, 0);
	assert_string_equal(r->domain, RFC_D);
	assert_string_equal(r->selector, "brisbane");
	assert_string_equal(r->identity, "@" RFC_D);
	assert_true(r->alg_known);
	assert_int_equal(r->alg, DKIM_ALG_ED25519_SHA256);
	assert_int_equal(r->key_bits, 256);
	assert_string_equal(r->b_prefix, "/gCrinpc");
	assert_false(r->body_length_limited);
	assert_int_equal(r->header_canon, DKIM_CANON_RELAXED);
	r = dkim_verify_result(v, 1);
	assert_string_equal(r->selector, "test");
	assert_int_equal(r->alg, DKIM_ALG_RSA_SHA256);
	assert_int_equal(r->key_bits, 1024); /* RFC 8301 §3.2: 1024 bits still pass */
	assert_string_equal(r->b_prefix, "F45dVWDf");
	assert_null(dkim_verify_result(v, 2));
	/* one question per key, in signature order */
	assert_int_equal(fake_dns_log_count(z), 2);
	assert_string_equal(fake_dns_log(z, 0), "brisbane._domainkey." RFC_D " TXT");
	assert_string_equal(fake_dns_log(z, 1), "test._domainkey." RFC_D " TXT");
	dkim_verify_free(v);
	free(msg);

	const char *single[] = {"dkim/rfc8463/signed-message-ed25519-only.eml", "dkim/rfc8463/signed-message-rsa-only.eml",
				"dkim/dkimpy/rfc8463-keys-simple-simple-signed.eml"};
	size_t counts[] = {1, 1, 2};
	for (size_t i = 0; i < 3; i++) {
		msg = testdata_read(single[i], &len);
		v = run(z, msg, len, 8, NOW);
		assert_int_equal(dkim_verify_count(v), counts[i]);
		for (size_t k = 0; k < counts[i]; k++)
			expect(v, k, DKIM_RESULT_PASS, NULL);
		if (i == 2)
			assert_int_equal(dkim_verify_result(v, 0)->body_canon, DKIM_CANON_SIMPLE);
		dkim_verify_free(v);
		free(msg);
	}
}

static void test_tampered(void **state)
{
	struct env *e = *state;
	struct fake_dns *z = rfc_zone(e);
	const char *files[] = {"dkim/rfc8463/signed-message.eml", "dkim/dkimpy/rfc8463-keys-simple-simple-signed.eml"};
	for (size_t f = 0; f < 2; f++) {
		char *msg = testdata_read(files[f], NULL);
		struct {
			char *msg;
			const char *reason;
		} cases[] = {
			{replace(msg, "Subject: Is dinner ready?", "Subject: Is dinner ready!"), "signature did not verify"},
			{replace(msg, "Are you hungry yet?", "Are you thirsty yet?"), "body hash mismatch"},
			/* over-signed From: a second one on top breaks both signatures */
			{cat("From: Mallory <mallory@example.org>\r\n", msg), "signature did not verify"},
			{replace(msg, "\r\n\r\nHi.", "\r\nSubject: again\r\n\r\nHi."), "signature did not verify"},
			{replace(msg, "Joe.\r\n", "Joe.\r\nP.S. extra\r\n"), "body hash mismatch"},
		};
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			struct dkim_verify *v = run(z, cases[c].msg, strlen(cases[c].msg), 8, NOW);
			assert_int_equal(dkim_verify_count(v), 2);
			expect(v, 0, DKIM_RESULT_FAIL, cases[c].reason);
			expect(v, 1, DKIM_RESULT_FAIL, cases[c].reason);
			dkim_verify_free(v);
			free(cases[c].msg);
		}
		/* relaxed survives what it is made to survive; simple does not */
		char *ws = replace(msg, "Subject: Is dinner ready?", "subject:   Is  dinner\r\n\tready?  ");
		struct dkim_verify *v = run(z, ws, strlen(ws), 8, NOW);
		expect(v, 0, f == 0 ? DKIM_RESULT_PASS : DKIM_RESULT_FAIL, NULL);
		dkim_verify_free(v);
		free(ws);
		ws = replace(msg, "We lost the game.  Are", "We lost  the game. Are \t");
		v = run(z, ws, strlen(ws), 8, NOW);
		expect(v, 0, f == 0 ? DKIM_RESULT_PASS : DKIM_RESULT_FAIL, NULL);
		dkim_verify_free(v);
		free(ws);
		free(msg);
	}
}

/* ---- DNS outcomes and key records ---- */

static void test_dns_outcomes(void **state)
{
	struct env *e = *state;
	size_t len;
	char *msg = testdata_read("dkim/rfc8463/signed-message.eml", &len);

	/* a key record reached through a CNAME */
	fake_dns_free(e->z);
	struct fake_dns *z = e->z = fake_dns_new();
	fake_dns_add(z, "brisbane._domainkey." RFC_D, DNS_RRTYPE_CNAME, "brisbane.keys.example.net");
	fake_dns_add(z, "brisbane.keys.example.net", DNS_RRTYPE_TXT, e->ed_txt);
	/* the RSA key: timeout */
	fake_dns_timeout(z, "test._domainkey." RFC_D);
	struct dkim_verify *v = run(z, msg, len, 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	expect(v, 1, DKIM_RESULT_TEMPERROR, "key lookup failed");
	dkim_verify_free(v);

	/* NXDOMAIN, and NODATA (the name exists with another type) */
	fake_dns_free(e->z);
	z = e->z = fake_dns_new();
	fake_dns_add(z, "test._domainkey." RFC_D, DNS_RRTYPE_A, "192.0.2.1");
	v = run(z, msg, len, 8, NOW);
	expect(v, 0, DKIM_RESULT_PERMERROR, "no key record");
	expect(v, 1, DKIM_RESULT_PERMERROR, "no key record");
	assert_int_equal(dkim_verify_result(v, 0)->key_bits, 0);
	dkim_verify_free(v);
	free(msg);
}

/* The RFC 8463 message against a zone where brisbane holds the given TXT records. */
static struct dkim_verify *ed_with_records(struct env *e, const char *const *records, size_t n)
{
	fake_dns_free(e->z);
	e->z = fake_dns_new();
	for (size_t i = 0; i < n; i++)
		fake_dns_add(e->z, "brisbane._domainkey." RFC_D, DNS_RRTYPE_TXT, records[i]);
	size_t len;
	char *msg = testdata_read("dkim/rfc8463/signed-message-ed25519-only.eml", &len);
	struct dkim_verify *v = run(e->z, msg, len, 8, NOW);
	free(msg);
	assert_int_equal(dkim_verify_count(v), 1);
	return v;
}

#define ED_P "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static void test_key_records(void **state)
{
	struct env *e = *state;
	struct {
		const char *record;
		enum dkim_result result;
		const char *reason;
	} cases[] = {
		{"v=DKIM1; k=ed25519; " ED_P, DKIM_RESULT_PASS, NULL},
		{"k=ed25519;" ED_P ";", DKIM_RESULT_PASS, NULL},
		{"v=DKIM1; k=ed25519; h=sha256; s=email; t=s; " ED_P, DKIM_RESULT_PASS, NULL},
		{"v=DKIM1; k=ed25519; h=sha1:sha256; s=web:*; " ED_P, DKIM_RESULT_PASS, NULL},
		{"v=DKIM1; k=ed25519; p=", DKIM_RESULT_PERMERROR, "key revoked"},
		{"v=DKIM1; k=rsa; " ED_P, DKIM_RESULT_PERMERROR, "key record p= is not an RSA public key"},
		{"v=DKIM1; " ED_P, DKIM_RESULT_PERMERROR, "key record p= is not an RSA public key"},
		{"v=DKIM1; k=ed25519; h=sha1; " ED_P, DKIM_RESULT_PERMERROR, "key h= does not allow sha256"},
		{"v=DKIM1; k=ed25519; s=web; " ED_P, DKIM_RESULT_PERMERROR, "key s= does not include email"},
		{"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcH", DKIM_RESULT_PERMERROR,
		 "Ed25519 key must be 32 bytes"},
		{"v=DKIM2; k=ed25519; " ED_P, DKIM_RESULT_PERMERROR, "key record v= is not DKIM1"},
		{"k=ed25519; v=DKIM1; " ED_P, DKIM_RESULT_PERMERROR, "key record v= is not the first tag"},
		{"v=DKIM1; k=ed448; " ED_P, DKIM_RESULT_PERMERROR, "key record k= names a key type we do not implement"},
		{"v=DKIM1; k=ed25519", DKIM_RESULT_PERMERROR, "key record has no p="},
		{"v=DKIM1;; k=ed25519; " ED_P, DKIM_RESULT_PERMERROR, "key record is not a valid tag=value list"},
		/* the wrong key */
		{"v=DKIM1; k=ed25519; p=" "Ja3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw3bT3FY5OsU7Zs=", DKIM_RESULT_FAIL,
		 "signature did not verify"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dkim_verify *v = ed_with_records(e, &cases[i].record, 1);
		const struct dkim_sig_result *r = dkim_verify_result(v, 0);
		if (r->result != cases[i].result || (cases[i].reason != NULL && strcmp(r->reason, cases[i].reason) != 0))
			fail_msg("\"%s\": got %s (%s)", cases[i].record, dkim_result_str(r->result), r->reason);
		dkim_verify_free(v);
	}
	/* RFC 6376 §6.1.2 step 8: a good RSA record for an Ed25519 signature */
	const char *rsa_rec = e->rsa_txt;
	struct dkim_verify *mismatch = ed_with_records(e, &rsa_rec, 1);
	expect(mismatch, 0, DKIM_RESULT_PERMERROR, "key type does not match a=");
	dkim_verify_free(mismatch);
	/* t=y is reported, the result stays */
	const char *testing = "v=DKIM1; k=ed25519; t=y; " ED_P;
	struct dkim_verify *v = ed_with_records(e, &testing, 1);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	assert_true(dkim_verify_result(v, 0)->key_testing);
	dkim_verify_free(v);
}

/* RFC 6376 §3.6.2.2 leaves several records undefined; we skip those that do not parse and pass if
 * any of the first four that do verifies, whatever their order. */
static void test_several_records(void **state)
{
	struct env *e = *state;
	const char *wrong = "v=DKIM1; k=ed25519; p=Ja3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw3bT3FY5OsU7Zs=";
	const char *right = "v=DKIM1; k=ed25519; " ED_P;
	const char *junk = "v=spf1 -all";
	const char *sets[][3] = {{junk, right, NULL}, {right, junk, NULL}, {wrong, right, NULL}, {right, wrong, NULL},
				 {junk, wrong, right}};
	size_t sizes[] = {2, 2, 2, 2, 3};
	for (size_t i = 0; i < 5; i++) {
		struct dkim_verify *v = ed_with_records(e, sets[i], sizes[i]);
		expect(v, 0, DKIM_RESULT_PASS, NULL);
		dkim_verify_free(v);
	}
	/* none verifies: the first that parses speaks */
	const char *revoked = "v=DKIM1; k=ed25519; p=";
	const char *bad[] = {junk, revoked, wrong};
	struct dkim_verify *v = ed_with_records(e, bad, 3);
	expect(v, 0, DKIM_RESULT_PERMERROR, "key revoked");
	dkim_verify_free(v);
	const char *none[] = {junk, "hello"};
	v = ed_with_records(e, none, 2);
	expect(v, 0, DKIM_RESULT_PERMERROR, "key record v= is not DKIM1");
	dkim_verify_free(v);
	/* only the first four that parse are tried */
	const char *many[] = {wrong, wrong, wrong, wrong, right};
	v = ed_with_records(e, many, 5);
	expect(v, 0, DKIM_RESULT_FAIL, "signature did not verify");
	dkim_verify_free(v);
}

/* RFC 8301 §3.2: RSA keys under 1024 bits fail; the RFC's 1024-bit key passes (test_rfc8463). */
static void test_short_rsa_key(void **state)
{
	struct env *e = *state;
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	const char *err;
	char *rec = dkim_key_record_format(small, &err);
	fake_dns_free(e->z);
	e->z = fake_dns_new();
	fake_dns_add(e->z, "test._domainkey." RFC_D, DNS_RRTYPE_TXT, rec);
	size_t len;
	char *msg = testdata_read("dkim/rfc8463/signed-message-rsa-only.eml", &len);
	struct dkim_verify *v = run(e->z, msg, len, 8, NOW);
	expect(v, 0, DKIM_RESULT_FAIL, "RSA key of 512 bits is too short (RFC 8301)");
	assert_int_equal(dkim_verify_result(v, 0)->key_bits, 512);
	dkim_verify_free(v);
	free(msg);
	free(rec);
	EVP_PKEY_free(small);
}

/* ---- the signature field ---- */

/* Signatures whose field alone decides: no question is asked. */
static void test_field_rules(void **state)
{
	struct env *e = *state;
	struct {
		const char *sig;
		enum dkim_result result;
		const char *reason;
	} cases[] = {
		{"a=ed25519-sha256; bh=AAAA; b=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_PERMERROR,
		 "the signature has no v= tag"},
		{"v=1; bh=AAAA; b=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_PERMERROR, "the signature has no a= tag"},
		{"v=1; a=ed25519-sha256; bh=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_PERMERROR,
		 "the signature has no b= tag"},
		{"v=1; a=ed25519-sha256; b=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_PERMERROR,
		 "the signature has no bh= tag"},
		{"v=1; a=ed25519-sha256; bh=AAAA; b=AAAA; h=from; s=s", DKIM_RESULT_PERMERROR, "the signature has no d= tag"},
		{"v=1; a=ed25519-sha256; bh=AAAA; b=AAAA; d=example.com; s=s", DKIM_RESULT_PERMERROR,
		 "the signature has no h= tag"},
		{"v=1; a=ed25519-sha256; bh=AAAA; b=AAAA; d=example.com; h=from", DKIM_RESULT_PERMERROR,
		 "the signature has no s= tag"},
		{"v=2; a=ed25519-sha256; bh=AAAA; b=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_PERMERROR, "v= is not 1"},
		{"v=1; a=rsa-sha512; bh=AAAA; b=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_PERMERROR,
		 "unknown signature algorithm"},
		/* RFC 8301 §3.1 */
		{"v=1; a=rsa-sha1; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_FAIL,
		 "rsa-sha1 is not accepted (RFC 8301)"},
		{"v=1; a=ed25519-sha256; bh=" "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=to:subject; s=s",
		 DKIM_RESULT_PERMERROR, "h= does not list From"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=s; "
		 "i=joe@example.org",
		 DKIM_RESULT_PERMERROR, "i= is not in the domain of d="},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=s; "
		 "i=joe@badexample.com",
		 DKIM_RESULT_PERMERROR, "i= is not in the domain of d="},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=s; "
		 "l=12a",
		 DKIM_RESULT_PERMERROR, "l= is not a number"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=s; "
		 "t=100; x=100",
		 DKIM_RESULT_PERMERROR, "x= is not after t="},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=s; "
		 "t=100; x=1000",
		 DKIM_RESULT_FAIL, "signature expired"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=s; "
		 "q=dns/other",
		 DKIM_RESULT_PERMERROR, "q= does not offer dns/txt"},
		{"v=1; a=ed25519-sha256; bh=AAAA; b=AAAA; d=example.com; h=from; s=s", DKIM_RESULT_PERMERROR,
		 "bh= is not a base64 digest of the a= hash"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=; d=example.com; h=from; s=s",
		 DKIM_RESULT_PERMERROR, "b= is empty"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AA!A; d=example.com; h=from; s=s",
		 DKIM_RESULT_PERMERROR, "b= is not base64"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=com; h=from; s=s",
		 DKIM_RESULT_PERMERROR, "d= is not a domain name"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=a..b",
		 DKIM_RESULT_PERMERROR, "s= is not a selector"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from; s=s; "
		 "c=relaxed/fancy",
		 DKIM_RESULT_PERMERROR, "c= names an unknown canonicalization"},
		{"v=1; a=ed25519-sha256; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA; d=example.com; h=from::to; s=s",
		 DKIM_RESULT_PERMERROR, "h= is not a list of header field names"},
		{"v=1; a=ed25519-sha256; a=rsa-sha256", DKIM_RESULT_PERMERROR, "the signature is not a valid tag=value list"},
		{"garbage", DKIM_RESULT_PERMERROR, "the signature is not a valid tag=value list"},
		{"", DKIM_RESULT_PERMERROR, "the signature has no v= tag"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "DKIM-Signature: %s\r\n%s", cases[i].sig, plain_msg);
		fake_dns_log_clear(e->z);
		struct dkim_verify *v = run(e->z, msg, strlen(msg), 8, 5000);
		const struct dkim_sig_result *r = dkim_verify_result(v, 0);
		if (r->result != cases[i].result || strcmp(r->reason, cases[i].reason) != 0)
			fail_msg("\"%s\": got %s (%s)", cases[i].sig, dkim_result_str(r->result), r->reason);
		assert_int_equal(fake_dns_log_count(e->z), 0);
		dkim_verify_free(v);
	}
	/* what parsed before the error is reported */
	char msg[1024];
	snprintf(msg, sizeof(msg), "DKIM-Signature: v=2; d=Example.COM; s=Sel; b=abcdefghijk\r\n%s", plain_msg);
	struct dkim_verify *v = run(e->z, msg, strlen(msg), 8, 5000);
	const struct dkim_sig_result *r = dkim_verify_result(v, 0);
	assert_string_equal(r->domain, "example.com");
	assert_string_equal(r->selector, "sel");
	assert_string_equal(r->identity, "@example.com");
	assert_false(r->alg_known);
	dkim_verify_free(v);
}

/* x= against the clock, and i= with t=s, on real signatures. */
static void test_expiry_and_identity(void **state)
{
	struct env *e = *state;
	struct fake_dns *z = rfc_zone(e);
	char *m = ed_sign(e, "t=1000; x=2000; ", false, 0);
	struct dkim_verify *v = run(z, m, strlen(m), 8, 2000);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	dkim_verify_free(v);
	v = run(z, m, strlen(m), 8, 2001);
	expect(v, 0, DKIM_RESULT_FAIL, "signature expired");
	dkim_verify_free(v);
	free(m);

	/* i= in a subdomain passes, unless the key says t=s */
	m = ed_sign(e, "i=joe@mail.Football.example.com; ", false, 0);
	v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	assert_string_equal(dkim_verify_result(v, 0)->identity, "joe@mail.Football.example.com");
	dkim_verify_free(v);
	fake_dns_free(e->z);
	z = e->z = fake_dns_new();
	fake_dns_add(z, "brisbane._domainkey." RFC_D, DNS_RRTYPE_TXT, "v=DKIM1; k=ed25519; t=s; " ED_P);
	v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_PERMERROR, "key t=s forbids an i= subdomain");
	dkim_verify_free(v);
	free(m);
	m = ed_sign(e, "i=joe@FOOTBALL.example.com; ", false, 0);
	v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	dkim_verify_free(v);
	free(m);

	/* unknown tags are signed and ignored; FWS inside b= and bh= */
	m = ed_sign(e, "z=From:joe; zz=future; ", false, 0);
	char *folded = replace(m, "; b=", ";\r\n\tb=\r\n ");
	v = run(z, folded, strlen(folded), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	dkim_verify_free(v);
	free(folded);
	free(m);
}

/* l=: the body is cut after l canonical octets; what follows is reported as unsigned. */
static void test_body_length(void **state)
{
	struct env *e = *state;
	struct fake_dns *z = rfc_zone(e);
	/* the relaxed body is "Line one.\r\nLine two.\r\n" (22 octets) */
	char *m = ed_sign(e, "l=11; ", true, 11);
	struct dkim_verify *v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	const struct dkim_sig_result *r = dkim_verify_result(v, 0);
	assert_true(r->body_length_limited);
	assert_int_equal(r->body_unsigned, 11);
	dkim_verify_free(v);
	/* the weakness of l= (RFC 6376 §8.2): text appended after it still passes, and is counted */
	char *more = cat(m, "Buy now!\r\n");
	v = run(z, more, strlen(more), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	assert_int_equal(dkim_verify_result(v, 0)->body_unsigned, 21);
	dkim_verify_free(v);
	free(more);
	/* a change inside the signed part fails */
	char *changed = replace(m, "Line one.", "Line 1ne.");
	v = run(z, changed, strlen(changed), 8, NOW);
	expect(v, 0, DKIM_RESULT_FAIL, "body hash mismatch");
	dkim_verify_free(v);
	free(changed);
	free(m);
	/* l= equal to the body */
	m = ed_sign(e, "l=22; ", true, 22);
	v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	assert_int_equal(dkim_verify_result(v, 0)->body_unsigned, 0);
	dkim_verify_free(v);
	free(m);
	/* l= longer than the body */
	m = ed_sign(e, "l=23; ", true, 23);
	v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_FAIL, "l= is longer than the body");
	dkim_verify_free(v);
	free(m);
	m = ed_sign(e, "l=99999999999999999999999999999999; ", true, 0);
	v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_FAIL, "l= is longer than the body");
	dkim_verify_free(v);
	free(m);
}

/* max_sigs, one question per distinct key name, no signature at all. */
static void test_limits(void **state)
{
	struct env *e = *state;
	struct fake_dns *z = rfc_zone(e);
	char *one = ed_sign(e, "", false, 0);
	/* the same signature twice more on top: three fields, one key name */
	const char *eol = strstr(one, "\r\nFrom:");
	size_t flen = (size_t)(eol - one) + 2;
	char *three = malloc(strlen(one) + 2 * flen + 1);
	memcpy(three, one, flen);
	memcpy(three + flen, one, flen);
	strcpy(three + 2 * flen, one);
	fake_dns_log_clear(z);
	struct dkim_verify *v = run(z, three, strlen(three), 8, NOW);
	assert_int_equal(dkim_verify_count(v), 3);
	for (size_t i = 0; i < 3; i++)
		expect(v, i, DKIM_RESULT_PASS, NULL);
	assert_int_equal(fake_dns_log_count(z), 1);
	dkim_verify_free(v);
	v = run(z, three, strlen(three), 2, NOW);
	assert_int_equal(dkim_verify_count(v), 2);
	assert_int_equal(dkim_verify_ignored(v), 1);
	dkim_verify_free(v);
	v = run(z, three, strlen(three), 0, NOW);
	assert_int_equal(dkim_verify_count(v), 0);
	assert_int_equal(dkim_verify_ignored(v), 3);
	dkim_verify_free(v);
	free(three);
	free(one);

	/* no signature, no question */
	fake_dns_log_clear(z);
	v = run(z, plain_msg, sizeof(plain_msg) - 1, 8, NOW);
	assert_int_equal(dkim_verify_count(v), 0);
	assert_int_equal(fake_dns_log_count(z), 0);
	dkim_verify_free(v);
	/* degenerate messages */
	v = run(z, "", 0, 8, NOW);
	assert_int_equal(dkim_verify_count(v), 0);
	dkim_verify_free(v);
	static const char only[] = "DKIM-Signature: v=1";
	v = run(z, only, sizeof(only) - 1, 8, NOW);
	assert_int_equal(dkim_verify_count(v), 1);
	expect(v, 0, DKIM_RESULT_PERMERROR, NULL);
	dkim_verify_free(v);
}

/* Header names match without case; h= may name a field twice and a field that is absent. */
static void test_header_selection(void **state)
{
	struct env *e = *state;
	struct fake_dns *z = rfc_zone(e);
	char tags[512];
	snprintf(tags, sizeof(tags), "v=1; a=ed25519-sha256; c=simple/simple; d=" RFC_D "; s=brisbane; h=FROM:x-absent:To:Subject:subject; ");
	char *m = raw_sign(e->ed, tags, "FROM:x-absent:To:Subject:subject", DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, false, 0,
			   plain_msg);
	struct dkim_verify *v = run(z, m, strlen(m), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	dkim_verify_free(v);
	/* adding the absent field, or a second Subject, breaks it */
	char *added = replace(m, "\r\nFrom:", "\r\nX-Absent: now here\r\nFrom:");
	v = run(z, added, strlen(added), 8, NOW);
	expect(v, 0, DKIM_RESULT_FAIL, "signature did not verify");
	dkim_verify_free(v);
	free(added);
	added = replace(m, "\r\n\r\nLine", "\r\nSubject: second\r\n\r\nLine");
	v = run(z, added, strlen(added), 8, NOW);
	expect(v, 0, DKIM_RESULT_FAIL, "signature did not verify");
	dkim_verify_free(v);
	free(added);
	/* an unsigned field anywhere does not matter */
	added = replace(m, "\r\nTo:", "\r\nReceived: by relay\r\nTo:");
	v = run(z, added, strlen(added), 8, NOW);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	dkim_verify_free(v);
	free(added);
	free(m);
}

/* A signature made by dkim_sign over a message that already has a signature (both pass), and
 * a signature that signs the other one. */
static void test_stacked(void **state)
{
	struct env *e = *state;
	struct fake_dns *z = rfc_zone(e);
	size_t len;
	char *msg = testdata_read("dkim/rfc8463/signed-message-rsa-only.eml", &len);
	struct dkim_sign_params p = {.domain = RFC_D, .selector = "brisbane", .key = e->ed,
				     .header_canon = DKIM_CANON_RELAXED, .body_canon = DKIM_CANON_RELAXED,
				     .headers = "dkim-signature:from:to:subject"};
	const char *err;
	char *field = dkim_sign(&p, msg, len, &err);
	assert_non_null(field);
	char *both = cat(field, msg);
	struct dkim_verify *v = run(z, both, strlen(both), 8, NOW);
	assert_int_equal(dkim_verify_count(v), 2);
	expect(v, 0, DKIM_RESULT_PASS, NULL);
	expect(v, 1, DKIM_RESULT_PASS, NULL);
	dkim_verify_free(v);
	/* changing the inner signature breaks the outer one too */
	char *changed = replace(both, "s=test;", "s=test2;");
	v = run(z, changed, strlen(changed), 8, NOW);
	expect(v, 0, DKIM_RESULT_FAIL, "signature did not verify");
	dkim_verify_free(v);
	free(changed);
	free(both);
	free(field);
	free(msg);
}

static void test_names(void **state)
{
	const char *words[] = {"none", "pass", "fail", "neutral", "policy", "temperror", "permerror"};
	for (int r = DKIM_RESULT_NONE; r <= DKIM_RESULT_PERMERROR; r++)
		assert_string_equal(dkim_result_str((enum dkim_result)r), words[r]);
	assert_string_equal(dkim_result_str((enum dkim_result)42), "?");
	for (int e = DKIM_SIG_OK; e <= DKIM_SIG_QUERY; e++)
		assert_string_not_equal(dkim_sig_error_str((enum dkim_sig_error)e), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8463),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_dns_outcomes),
		cmocka_unit_test(test_key_records),
		cmocka_unit_test(test_several_records),
		cmocka_unit_test(test_short_rsa_key),
		cmocka_unit_test(test_field_rules),
		cmocka_unit_test(test_expiry_and_identity),
		cmocka_unit_test(test_body_length),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_header_selection),
		cmocka_unit_test(test_stacked),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

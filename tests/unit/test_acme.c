/* test_acme.c — the ACME client's pure parts: the readers of a CA's answers (acme/acme_msg.h) on
 * good and hostile documents, Retry-After, the ClientHello extension readers (acme/acme_hello.h),
 * and the JWS side (acme/acme_jws.h): the RFC 7638 thumbprint's input, ES256's raw signature and a
 * JWS that verifies with OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme/acme_hello.h"
#include "acme/acme_jws.h"
#include "acme/acme_msg.h"
#include "acme/acme_x509.h"
#include "util/base64.h"
#include "test_util.h"

#define DIR_OK                                                                                            \
	"{\"newNonce\":\"https://ca.example/nonce\",\"newAccount\":\"https://ca.example/acct\","      \
	"\"newOrder\":\"https://ca.example/order\",\"revokeCert\":\"https://ca.example/revoke\","     \
	"\"keyChange\":\"https://ca.example/kc\",\"meta\":{\"termsOfService\":\"https://ca.example/tos\"}}"

static void test_directory(void **state)
{
	(void)state;
	struct acme_directory d;
	const char *err = NULL;
	char *buf = test_dup(DIR_OK, strlen(DIR_OK));
	assert_int_equal(acme_directory_parse(buf, strlen(DIR_OK), &d, &err), ACME_MSG_OK);
	free(buf);
	assert_string_equal(d.new_nonce, "https://ca.example/nonce");
	assert_string_equal(d.new_order, "https://ca.example/order");
	assert_string_equal(d.revoke_cert, "https://ca.example/revoke");
	assert_string_equal(d.terms, "https://ca.example/tos");
	static const struct {
		const char *doc;
		enum acme_msg_error want;
	} bad[] = {
		{"", ACME_MSG_ERR_JSON},
		{"[]", ACME_MSG_ERR_JSON},
		{"{\"newNonce\":1}", ACME_MSG_ERR_FIELD},
		/* an empty URL is no URL (found by fuzz_acme_msg) */
		{"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\",\"newOrder\":\"\"}", ACME_MSG_ERR_URL},
		{"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\"}", ACME_MSG_ERR_FIELD},
		/* §6.1: https only */
		{"{\"newNonce\":\"http://a/n\",\"newAccount\":\"https://a/a\",\"newOrder\":\"https://a/o\"}", ACME_MSG_ERR_URL},
		/* userinfo, a numeric host that is no dotted quad, a quote */
		{"{\"newNonce\":\"https://u@a/n\",\"newAccount\":\"https://a/a\",\"newOrder\":\"https://a/o\"}", ACME_MSG_ERR_URL},
		{"{\"newNonce\":\"https://2130706433/n\",\"newAccount\":\"https://a/a\",\"newOrder\":\"https://a/o\"}",
		 ACME_MSG_ERR_URL},
		{"{\"newNonce\":\"https://a/\\\"n\",\"newAccount\":\"https://a/a\",\"newOrder\":\"https://a/o\"}", ACME_MSG_ERR_URL},
		/* duplicate keys and trailing data: strict JSON */
		{"{\"newNonce\":\"https://a/n\",\"newNonce\":\"https://b/n\",\"newAccount\":\"https://a/a\",\"newOrder\":\"https://a/o\"}",
		 ACME_MSG_ERR_JSON},
		{"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\",\"newOrder\":\"https://a/o\"} x", ACME_MSG_ERR_JSON},
		{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", ACME_MSG_ERR_JSON},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		char *b = test_dup(bad[i].doc, strlen(bad[i].doc));
		enum acme_msg_error e = acme_directory_parse(b, strlen(bad[i].doc), &d, &err);
		free(b);
		if (e != bad[i].want)
			fail_msg("case %zu (%s): %d, want %d", i, bad[i].doc, e, bad[i].want);
		assert_non_null(err);
	}
}

static void test_order(void **state)
{
	(void)state;
	struct acme_order o;
	const char *err = NULL;
	const char *good = "{\"status\":\"pending\",\"expires\":\"2026-01-01T00:00:00Z\",\"identifiers\":[{\"type\":\"dns\","
			   "\"value\":\"mx.example\"}],\"authorizations\":[\"https://ca.example/a/1\",\"https://ca.example/a/2\"],"
			   "\"finalize\":\"https://ca.example/f/1\"}";
	assert_int_equal(acme_order_parse(good, strlen(good), &o, &err), ACME_MSG_OK);
	assert_int_equal(o.status, ACME_STATUS_PENDING);
	assert_int_equal(o.n_authz, 2);
	assert_string_equal(o.authz[1], "https://ca.example/a/2");
	assert_string_equal(o.certificate, "");
	const char *valid = "{\"status\":\"valid\",\"authorizations\":[],\"finalize\":\"https://c/f\",\"certificate\":\"https://c/cert/9\"}";
	assert_int_equal(acme_order_parse(valid, strlen(valid), &o, &err), ACME_MSG_OK);
	assert_string_equal(o.certificate, "https://c/cert/9");
	static const char *const bad[] = {
		"{\"status\":\"valid\",\"authorizations\":[],\"finalize\":\"https://c/f\"}", /* valid, no certificate */
		"{\"status\":\"bogus\",\"authorizations\":[],\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[1],\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[\"ftp://c/a\"],\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":{},\"finalize\":\"https://c/f\"}",
		"{\"status\":7,\"authorizations\":[],\"finalize\":\"https://c/f\"}",
		"{\"status\":\"pending\",\"authorizations\":[\"https://c/\\u0000\"],\"finalize\":\"https://c/f\"}",
		/* more authorizations than ACME_NAMES_MAX */
		"{\"status\":\"pending\",\"finalize\":\"https://c/f\",\"authorizations\":[\"https://c/1\",\"https://c/1\","
		"\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\","
		"\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\","
		"\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\",\"https://c/1\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (acme_order_parse(bad[i], strlen(bad[i]), &o, &err) == ACME_MSG_OK)
			fail_msg("case %zu accepted: %s", i, bad[i]);
	}
}

static void test_authz(void **state)
{
	(void)state;
	struct acme_authz z;
	const char *err = NULL;
	const char *good =
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"mx.example\"},\"challenges\":["
		"{\"type\":\"dns-01\",\"url\":\"https://c/ch/0\",\"token\":\"abc\",\"status\":\"pending\"},"
		"{\"type\":\"http-01\",\"url\":\"https://c/ch/1\",\"token\":\"DGyRejmCefe7v4NfDGDKfA\",\"status\":\"pending\"},"
		"{\"type\":\"tls-alpn-01\",\"url\":\"https://c/ch/2\",\"token\":\"x_-Y\",\"status\":\"invalid\","
		"\"error\":{\"type\":\"urn:ietf:params:acme:error:connection\",\"detail\":\"refused\"}}]}";
	assert_int_equal(acme_authz_parse(good, strlen(good), &z, &err), ACME_MSG_OK);
	assert_string_equal(z.name, "mx.example");
	assert_int_equal(z.n_challenges, 2); /* dns-01 is not ours */
	assert_int_equal(z.challenges[0].type, ACME_CHALLENGE_HTTP01);
	assert_string_equal(z.challenges[0].token, "DGyRejmCefe7v4NfDGDKfA");
	assert_int_equal(z.challenges[1].status, ACME_STATUS_INVALID);
	assert_string_equal(z.error, "refused");
	static const char *const bad[] = {
		/* a token that would leave its URL path or our answer */
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":\"http-01\","
		"\"url\":\"https://c/1\",\"token\":\"../../etc\",\"status\":\"pending\"}]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":\"http-01\","
		"\"url\":\"https://c/1\",\"token\":\"\",\"status\":\"pending\"}]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":\"http-01\","
		"\"url\":\"https://c/1\",\"token\":\"a b\",\"status\":\"pending\"}]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"ip\",\"value\":\"192.0.2.1\"},\"challenges\":[]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"\"},\"challenges\":[]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"}}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[7]}",
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":\"http-01\","
		"\"url\":\"http://c/1\",\"token\":\"t\",\"status\":\"pending\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (acme_authz_parse(bad[i], strlen(bad[i]), &z, &err) == ACME_MSG_OK)
			fail_msg("case %zu accepted: %s", i, bad[i]);
	/* a token of ACME_TOKEN_MAX + 1 */
	char big[600];
	char tok[ACME_TOKEN_MAX + 2];
	memset(tok, 'a', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	snprintf(big, sizeof(big),
		 "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"a\"},\"challenges\":[{\"type\":\"http-01\","
		 "\"url\":\"https://c/1\",\"token\":\"%s\",\"status\":\"pending\"}]}", tok);
	assert_int_not_equal(acme_authz_parse(big, strlen(big), &z, &err), ACME_MSG_OK);
}

static void test_problem(void **state)
{
	(void)state;
	struct acme_problem p;
	const char *err;
	const char *doc = "{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"JWS has an invalid anti-replay nonce\",\"status\":400}";
	assert_int_equal(acme_problem_parse(doc, strlen(doc), &p, &err), ACME_MSG_OK);
	assert_true(acme_problem_is_bad_nonce(&p));
	const char *other = "{\"type\":\"urn:ietf:params:acme:error:badNonceX\"}";
	assert_int_equal(acme_problem_parse(other, strlen(other), &p, &err), ACME_MSG_OK);
	assert_false(acme_problem_is_bad_nonce(&p));
	assert_int_equal(acme_problem_parse("nope", 4, &p, &err), ACME_MSG_ERR_JSON);
}

static void test_retry_after(void **state)
{
	(void)state;
	uint64_t s;
	assert_true(acme_retry_after_parse("120", 0, &s));
	assert_int_equal(s, 120);
	assert_true(acme_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111770, &s));
	assert_int_equal(s, 7);
	assert_true(acme_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111790, &s));
	assert_int_equal(s, 0); /* in the past */
	static const char *const bad[] = {"", "-1", "1.5", "12x", "99999999999999999999", "Sunday", "Sun, 06 Nov 1994"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(acme_retry_after_parse(bad[i], 0, &s));
	assert_false(acme_retry_after_parse(NULL, 0, &s));
}

static void test_hello_alpn(void **state)
{
	(void)state;
	static const struct {
		const char *ext;
		size_t len;
		bool want;
	} cases[] = {
		{"\x00\x0b\x0a" "acme-tls/1", 13, true},
		{"\x00\x0e\x02h2\x0a" "acme-tls/1", 16, true},
		{"\x00\x03\x02h2", 5, false},
		{"\x00\x0c\x0a" "acme-tls/1", 13, false}, /* list length off by one */
		{"\x00\x0b\x0b" "acme-tls/1", 13, false}, /* name runs past the list */
		{"\x00\x0c\x00\x0a" "acme-tls/1", 14, false}, /* an empty name */
		{"\x00\x0a\x09" "acme-tls/", 12, false},
		{"\x00", 1, false},
		{"", 0, false},
		{"\x00\x00", 2, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b = test_dup(cases[i].ext, cases[i].len);
		bool got = acme_hello_alpn_offers((const unsigned char *)b, cases[i].len, ACME_ALPN_PROTOCOL);
		free(b);
		if (got != cases[i].want)
			fail_msg("alpn case %zu: %d", i, got);
	}
}

static void test_hello_sni(void **state)
{
	(void)state;
	static const struct {
		const char *ext;
		size_t len;
		const char *want; /* NULL: refused */
	} cases[] = {
		{"\x00\x0d\x00\x00\x0aMX.Example", 15, "mx.example"},
		{"\x00\x0e\x00\x00\x0amx.example", 15, NULL},           /* list length */
		{"\x00\x0d\x00\x00\x0bmx.example", 15, NULL},           /* name length */
		{"\x00\x0d\x00\x00\x0amx/example", 15, NULL},           /* not a host name */
		{"\x00\x0d\x00\x00\x0amx\x00" "example", 15, NULL},     /* a NUL */
		{"\x00\x1a\x00\x00\x0amx.example\x00\x00\x0amx.example", 28, NULL}, /* two host names */
		{"\x00\x0d\x01\x00\x0amx.example", 15, NULL},           /* no host_name entry */
		{"\x00\x03\x00\x00\x00", 5, NULL},
		{"\x00", 1, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[256];
		char *b = test_dup(cases[i].ext, cases[i].len);
		bool got = acme_hello_server_name((const unsigned char *)b, cases[i].len, out, sizeof(out));
		free(b);
		if (got != (cases[i].want != NULL) || (got && strcmp(out, cases[i].want) != 0))
			fail_msg("sni case %zu: %d %s", i, got, got ? out : "");
	}
}

static void test_token(void **state)
{
	(void)state;
	assert_true(acme_token_ok("aZ09-_", 6));
	assert_false(acme_token_ok("a=", 2));
	assert_false(acme_token_ok("a.b", 3));
	assert_false(acme_token_ok("", 0));
	assert_false(acme_token_ok("a\0b", 3));
}

/* RFC 7638 §3.1's example is RSA; the EC form is checked by rebuilding the key from the JWK's x
 * and y and comparing, and the thumbprint by its definition. */
static void test_jwk_and_jws(void **state)
{
	(void)state;
	EVP_PKEY *k = acme_key_new();
	assert_non_null(k);
	char jwk[ACME_JWK_SIZE], tp[ACME_THUMBPRINT_SIZE];
	assert_true(acme_jwk(k, jwk));
	static const char prefix[] = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"";
	assert_int_equal(strncmp(jwk, prefix, sizeof(prefix) - 1), 0);
	assert_true(acme_thumbprint(k, tp));
	assert_int_equal(strlen(tp), 43);
	size_t len;
	char *jws = acme_jws_sign(k, NULL, "bm9uY2U", "https://ca.example/acct", "{\"a\":1}", &len);
	assert_non_null(jws);
	json_error_t je;
	json_t *doc = json_loadb(jws, len, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(doc);
	const char *prot = json_string_value(json_object_get(doc, "protected"));
	const char *pay = json_string_value(json_object_get(doc, "payload"));
	const char *sig = json_string_value(json_object_get(doc, "signature"));
	assert_non_null(prot);
	assert_non_null(pay);
	assert_non_null(sig);
	unsigned char hdr[512];
	long hl = base64url_decode(prot, strlen(prot), hdr, sizeof(hdr) - 1);
	assert_true(hl > 0);
	hdr[hl] = '\0';
	json_t *h = json_loadb((const char *)hdr, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "nonce")), "bm9uY2U");
	assert_string_equal(json_string_value(json_object_get(h, "url")), "https://ca.example/acct");
	assert_non_null(json_object_get(h, "jwk"));
	assert_null(json_object_get(h, "kid"));
	json_decref(h);
	/* the signature verifies over protected.payload (RFC 7515 §5.2) */
	unsigned char raw[64];
	assert_int_equal(base64url_decode(sig, strlen(sig), raw, sizeof(raw)), 64);
	ECDSA_SIG *es = ECDSA_SIG_new();
	ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
	unsigned char *der = NULL;
	int dl = i2d_ECDSA_SIG(es, &der);
	char input[600];
	snprintf(input, sizeof(input), "%s.%s", prot, pay);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)input, strlen(input)), 1);
	input[0] ^= 1;
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_not_equal(EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	json_decref(doc);
	free(jws);
	/* POST-as-GET: the empty payload (RFC 8555 §6.3), and a kid in place of the jwk */
	jws = acme_jws_sign(k, "https://ca.example/acct/1", "n", "https://ca.example/o/1", NULL, &len);
	assert_non_null(jws);
	assert_non_null(strstr(jws, "\"payload\":\"\""));
	free(jws);
	EVP_PKEY_free(k);
}

static void test_es256_raw(void **state)
{
	(void)state;
	unsigned char out[64];
	/* SEQUENCE { INTEGER 1, INTEGER 2 } */
	static const unsigned char small[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};
	assert_true(acme_es256_raw(small, sizeof(small), out));
	assert_int_equal(out[31], 1);
	assert_int_equal(out[63], 2);
	assert_int_equal(out[0], 0);
	/* trailing octet, and a 33-octet number */
	static const unsigned char trailing[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00};
	assert_false(acme_es256_raw(trailing, sizeof(trailing), out));
	unsigned char big[2 + 2 + 34 + 3] = {0x30, 2 + 34 + 3, 0x02, 34, 0x00, 0x80};
	memset(big + 6, 0x11, 32);
	big[38] = 0x02, big[39] = 0x01, big[40] = 0x01;
	assert_false(acme_es256_raw(big, sizeof(big), out));
	assert_false(acme_es256_raw(small, 3, out));
}

static void test_alpn_cert_and_csr(void **state)
{
	(void)state;
	EVP_PKEY *k = NULL;
	X509 *x = acme_alpn_cert_new("mx.example", "tok.thumb", &k);
	assert_non_null(x);
	assert_non_null(k);
	assert_int_equal(X509_check_host(x, "mx.example", 0, 0, NULL), 1);
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	int i = X509_get_ext_by_OBJ(x, oid, -1);
	assert_true(i >= 0);
	X509_EXTENSION *e = X509_get_ext(x, i);
	assert_int_equal(X509_EXTENSION_get_critical(e), 1);
	const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
	assert_int_equal(ASN1_STRING_length(v), 34);
	assert_int_equal(ASN1_STRING_get0_data(v)[0], 0x04);
	ASN1_OBJECT_free(oid);
	X509_free(x);
	const char *names[] = {"mx.example", "mta-sts.example"};
	char *csr = acme_csr_new(k, names, 2);
	assert_non_null(csr);
	assert_true(strlen(csr) > 100);
	assert_null(strchr(csr, '='));
	free(csr);
	/* a chain check refuses what is not for the key, or not for a name */
	EVP_PKEY *other = NULL;
	X509 *y = acme_alpn_cert_new("mx.example", "t", &other);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, y);
	char *pem;
	long n = BIO_get_mem_data(b, &pem);
	int64_t nb, na;
	char err[200];
	assert_true(acme_chain_check(pem, (size_t)n, other, names, 1, &nb, &na, err, sizeof(err)));
	assert_false(acme_chain_check(pem, (size_t)n, k, names, 1, &nb, &na, err, sizeof(err)));
	assert_false(acme_chain_check(pem, (size_t)n, other, names, 2, &nb, &na, err, sizeof(err)));
	assert_false(acme_chain_check("junk", 4, other, names, 1, &nb, &na, err, sizeof(err)));
	BIO_free(b);
	X509_free(y);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directory),  cmocka_unit_test(test_order),      cmocka_unit_test(test_authz),
		cmocka_unit_test(test_problem),    cmocka_unit_test(test_retry_after), cmocka_unit_test(test_hello_alpn),
		cmocka_unit_test(test_hello_sni),  cmocka_unit_test(test_token),      cmocka_unit_test(test_jwk_and_jws),
		cmocka_unit_test(test_es256_raw),  cmocka_unit_test(test_alpn_cert_and_csr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_dkim_key.c — DKIM keys: PEM loading (PKCS#1, PKCS#8; refusals), generation and the 0600
 * exclusive write, the TXT value of a key against the RFC 8463 records, and key record parsing
 * (RFC 6376 §3.6.1) with hostile values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/dkim_key.h"
#include "dkim_testdata.h"
#include "test_util.h"

static const char *tmp_base(void)
{
	const char *t = getenv("TMPDIR");
	return t != NULL && t[0] != '\0' ? t : "/tmp";
}

static char *pem_of(const EVP_PKEY *k, size_t *len_r)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *out = test_dup(p, (size_t)n);
	*len_r = (size_t)n;
	BIO_free(b);
	return out;
}

static char *b64_of(const unsigned char *der, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, der, (int)len);
	return out;
}

static enum dkim_key_error parse_record(const char *text, struct dkim_key_record *r)
{
	const char *err = NULL;
	char *copy = test_dup(text, strlen(text));
	enum dkim_key_error e = dkim_key_record_parse(copy, strlen(text), r, &err);
	free(copy);
	if (e != DKIM_KEY_OK)
		assert_non_null(err);
	return e;
}

/* The RFC 8463 keys in all their PEM forms load, and their TXT values are the published records. */
static void test_rfc8463_keys(void **state)
{
	EVP_PKEY *rsa = testdata_rsa_key(), *ed = testdata_ed25519_key(), *rsa8 = NULL;
	const char *err;
	char path[4096];
	assert_int_equal(dkim_key_file_load(testdata_path("dkim/rfc8463/derived/rsa-private.pkcs8.pem", path,
							  sizeof(path)), &rsa8, &err), DKIM_KEY_OK);
	assert_int_equal(EVP_PKEY_eq(rsa, rsa8), 1);
	assert_int_equal(dkim_key_bits(rsa), 1024);
	assert_int_equal(dkim_key_bits(ed), 256);

	char *want_rsa = testdata_line("dkim/rfc8463/test._domainkey.football.example.com.TXT");
	char *want_ed = testdata_line("dkim/rfc8463/brisbane._domainkey.football.example.com.TXT");
	char *got = dkim_key_record_format(rsa, &err);
	assert_non_null(got);
	assert_string_equal(got, want_rsa);
	free(got);
	got = dkim_key_record_format(ed, &err);
	assert_non_null(got);
	assert_string_equal(got, want_ed);
	free(got);

	/* the published records match their private keys and not each other's */
	struct dkim_key_record rr, re;
	assert_int_equal(parse_record(want_rsa, &rr), DKIM_KEY_OK);
	assert_int_equal(parse_record(want_ed, &re), DKIM_KEY_OK);
	assert_int_equal(rr.type, DKIM_KEY_RSA);
	assert_int_equal(re.type, DKIM_KEY_ED25519);
	assert_int_equal(rr.bits, 1024);
	assert_true(dkim_key_record_matches(&rr, rsa));
	assert_true(dkim_key_record_matches(&re, ed));
	assert_false(dkim_key_record_matches(&rr, ed));
	assert_false(dkim_key_record_matches(&re, rsa));
	assert_false(dkim_key_record_matches(&rr, NULL));
	dkim_key_record_clear(&rr);
	dkim_key_record_clear(&re);
	dkim_key_record_clear(&re);

	/* the Ed25519 seed of RFC 8463 A.1 is the key of the PKCS#8 file */
	char *seed_b64 = testdata_line("dkim/rfc8463/ed25519-private.seed.b64");
	unsigned char seed[64];
	size_t seed_len;
	assert_int_equal(dkim_base64_decode(seed_b64, strlen(seed_b64), seed, sizeof(seed), &seed_len), DKIM_BASE64_OK);
	assert_int_equal(seed_len, 32);
	EVP_PKEY *ed2 = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, seed_len);
	assert_non_null(ed2);
	assert_int_equal(EVP_PKEY_eq(ed, ed2), 1);

	free(seed_b64);
	free(want_rsa);
	free(want_ed);
	EVP_PKEY_free(ed2);
	EVP_PKEY_free(rsa8);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

static void test_pem_refused(void **state)
{
	EVP_PKEY *k = (EVP_PKEY *)1;
	const char *err = NULL;
	assert_int_equal(dkim_key_pem_parse("hello", 5, &k, &err), DKIM_KEY_ENCODING);
	assert_null(k);
	assert_non_null(err);
	/* a public key is not a private key */
	size_t len;
	char *pub = testdata_read("dkim/rfc8463/derived/rsa-public.spki.pem", &len);
	assert_int_equal(dkim_key_pem_parse(pub, len, &k, &err), DKIM_KEY_ENCODING);
	free(pub);
	/* an EC key parses as PEM but is no DKIM key type */
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(ec);
	char *pem = pem_of(ec, &len);
	assert_int_equal(dkim_key_pem_parse(pem, len, &k, &err), DKIM_KEY_TYPE);
	assert_null(k);
	free(pem);
	assert_null(dkim_key_record_format(ec, &err));
	assert_int_equal(dkim_key_bits(ec), 0);
	EVP_PKEY_free(ec);
	/* an encrypted key is refused without asking for a passphrase */
	EVP_PKEY *ed = testdata_ed25519_key();
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, ed, EVP_aes_128_cbc(), "pw", 2, NULL, NULL), 1);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	assert_int_equal(dkim_key_pem_parse(p, (size_t)n, &k, &err), DKIM_KEY_ENCODING);
	assert_non_null(strstr(err, "encrypted"));
	BIO_free(b);
	EVP_PKEY_free(ed);
	/* and so is a traditional PKCS#1 one ("Proc-Type: 4,ENCRYPTED") */
	EVP_PKEY *rsa = testdata_rsa_key();
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, rsa, EVP_aes_128_cbc(), (unsigned char *)"pw", 2, NULL,
							      NULL), 1);
	n = BIO_get_mem_data(b, &p);
	assert_int_equal(dkim_key_pem_parse(p, (size_t)n, &k, &err), DKIM_KEY_ENCODING);
	assert_non_null(strstr(err, "encrypted"));
	BIO_free(b);
	EVP_PKEY_free(rsa);
	/* too large to be a key file */
	char *big = calloc(1, DKIM_KEY_PEM_MAX + 1);
	assert_int_equal(dkim_key_pem_parse(big, DKIM_KEY_PEM_MAX + 1, &k, &err), DKIM_KEY_SIZE);
	free(big);
}

static void test_generate_and_write(void **state)
{
	EVP_PKEY *k = NULL;
	const char *err = NULL;
	/* RFC 8301 §3.2: 1024 bits is not enough for a new key here */
	assert_int_equal(dkim_key_generate(DKIM_KEY_RSA, 1024, &k, &err), DKIM_KEY_SIZE);
	assert_null(k);
	assert_non_null(strstr(err, "2048"));
	assert_int_equal(dkim_key_generate(DKIM_KEY_RSA, 4104, &k, &err), DKIM_KEY_SIZE);
	assert_int_equal(dkim_key_generate(DKIM_KEY_RSA, 0, &k, &err), DKIM_KEY_OK);
	assert_int_equal(dkim_key_bits(k), 2048);
	EVP_PKEY *ed = NULL;
	assert_int_equal(dkim_key_generate(DKIM_KEY_ED25519, 0, &ed, &err), DKIM_KEY_OK);
	enum dkim_key_type t;
	assert_true(dkim_key_type_get(ed, &t));
	assert_int_equal(t, DKIM_KEY_ED25519);

	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/dkimkeyXXXXXX", tmp_base());
	assert_non_null(mkdtemp(dir));
	char path[4200], path2[4200];
	snprintf(path, sizeof(path), "%s/rsa.pem", dir);
	snprintf(path2, sizeof(path2), "%s/ed.pem", dir);
	mode_t old = umask(0);
	assert_int_equal(dkim_key_file_write(k, path, &err), DKIM_KEY_OK);
	umask(old);
	assert_int_equal(dkim_key_file_write(ed, path2, &err), DKIM_KEY_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(path2, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	off_t size = st.st_size;

	/* PKCS#8 on disk, and the same keys come back */
	size_t len;
	FILE *f = fopen(path, "r");
	char head[64] = "";
	assert_non_null(fgets(head, sizeof(head), f));
	fclose(f);
	assert_string_equal(head, "-----BEGIN PRIVATE KEY-----\n");
	EVP_PKEY *back = NULL, *back2 = NULL;
	assert_int_equal(dkim_key_file_load(path, &back, &err), DKIM_KEY_OK);
	assert_int_equal(dkim_key_file_load(path2, &back2, &err), DKIM_KEY_OK);
	assert_int_equal(EVP_PKEY_eq(k, back), 1);
	assert_int_equal(EVP_PKEY_eq(ed, back2), 1);
	EVP_PKEY_free(back);

	/* never overwritten */
	assert_int_equal(dkim_key_file_write(k, path2, &err), DKIM_KEY_EXISTS);
	assert_int_equal(stat(path2, &st), 0);
	assert_int_equal(st.st_size, size);
	EVP_PKEY_free(back2);
	back2 = NULL;
	assert_int_equal(dkim_key_file_load(path2, &back2, &err), DKIM_KEY_OK);
	assert_int_equal(EVP_PKEY_eq(ed, back2), 1);
	/* nor is a symbolic link followed */
	char link[4200];
	snprintf(link, sizeof(link), "%s/link.pem", dir);
	assert_int_equal(symlink(path2, link), 0);
	assert_int_equal(dkim_key_file_write(k, link, &err), DKIM_KEY_EXISTS);
	/* a directory that does not exist */
	char bad[4200];
	snprintf(bad, sizeof(bad), "%s/none/x.pem", dir);
	assert_int_equal(dkim_key_file_write(k, bad, &err), DKIM_KEY_SYSTEM);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(dkim_key_file_load(bad, &back, &err), DKIM_KEY_SYSTEM);
	assert_int_equal(dkim_key_file_load(dir, &back, &err), DKIM_KEY_SYSTEM);

	/* a file too large to be a key */
	char big[4200];
	snprintf(big, sizeof(big), "%s/big.pem", dir);
	f = fopen(big, "w");
	for (len = 0; len <= DKIM_KEY_PEM_MAX; len += 64)
		fputs("---------------------------------------------------------------\n", f);
	fclose(f);
	assert_int_equal(dkim_key_file_load(big, &back, &err), DKIM_KEY_SIZE);

	unlink(big);
	unlink(link);
	unlink(path);
	unlink(path2);
	assert_int_equal(rmdir(dir), 0);
	EVP_PKEY_free(back);
	EVP_PKEY_free(back2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ed);
}

/* RFC 6376 §3.6.1 records, one property at a time. */
static void test_record_tags(void **state)
{
	struct dkim_key_record r;
	const char *ed_p = "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	char buf[512];

	/* defaults */
	snprintf(buf, sizeof(buf), "k=ed25519; %s", ed_p);
	assert_int_equal(parse_record(buf, &r), DKIM_KEY_OK);
	assert_true(r.hash_sha256 && r.service_email && !r.testing && !r.strict && !r.revoked);
	dkim_key_record_clear(&r);
	/* h=, s=, t= lists with FWS and unknown members */
	snprintf(buf, sizeof(buf), "v=DKIM1; k=ed25519; h=sha1 : sha512; s=web; t=y:x-new; n=a note; %s", ed_p);
	assert_int_equal(parse_record(buf, &r), DKIM_KEY_OK);
	assert_false(r.hash_sha256);
	assert_false(r.service_email);
	assert_true(r.testing);
	assert_false(r.strict);
	dkim_key_record_clear(&r);
	snprintf(buf, sizeof(buf), "v=DKIM1; k=ED25519; h=sha1:SHA256; s=web:email; t=s; zz=unknown; %s", ed_p);
	assert_int_equal(parse_record(buf, &r), DKIM_KEY_OK);
	assert_true(r.hash_sha256 && r.service_email && r.strict && !r.testing);
	dkim_key_record_clear(&r);
	snprintf(buf, sizeof(buf), "k=ed25519; s=*; %s", ed_p);
	assert_int_equal(parse_record(buf, &r), DKIM_KEY_OK);
	assert_true(r.service_email);
	dkim_key_record_clear(&r);
	/* p= with FWS inside (RFC 6376 §3.6.1 INFORMATIVE NOTE) */
	assert_int_equal(parse_record("k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7 hcvPapiMlrwIaaPcHURo=", &r), DKIM_KEY_OK);
	dkim_key_record_clear(&r);

	/* revoked */
	assert_int_equal(parse_record("v=DKIM1; p=", &r), DKIM_KEY_OK);
	assert_true(r.revoked);
	assert_null(r.pkey);
	assert_int_equal(parse_record("v=DKIM1; k=ed25519; p= ;", &r), DKIM_KEY_OK);
	assert_true(r.revoked);

	/* refusals */
	snprintf(buf, sizeof(buf), "k=ed25519; v=DKIM1; %s", ed_p);
	assert_int_equal(parse_record(buf, &r), DKIM_KEY_VERSION);
	assert_int_equal(parse_record("v=DKIM1.0; p=", &r), DKIM_KEY_VERSION);
	assert_int_equal(parse_record("v=dkim1; p=", &r), DKIM_KEY_VERSION);
	assert_int_equal(parse_record("v=DKIM1; k=dsa; p=", &r), DKIM_KEY_TYPE);
	assert_int_equal(parse_record("v=DKIM1; k=ed25519", &r), DKIM_KEY_SYNTAX);
	assert_int_equal(parse_record("v=DKIM1; h=sha256:; p=", &r), DKIM_KEY_SYNTAX);
	assert_int_equal(parse_record("v=DKIM1; t=y;;p=", &r), DKIM_KEY_SYNTAX);
	assert_int_equal(parse_record("v=DKIM1; p=abc", &r), DKIM_KEY_ENCODING);
	assert_int_equal(parse_record("v=DKIM1; p=ab!d", &r), DKIM_KEY_ENCODING);
	assert_int_equal(parse_record("v=spf1 -all", &r), DKIM_KEY_VERSION);
	assert_int_equal(parse_record("", &r), DKIM_KEY_SYNTAX);
	/* RFC 8463 §4: 32 octets, no more, no fewer */
	assert_int_equal(parse_record("k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcH", &r), DKIM_KEY_INVALID);
	/* an Ed25519 key in a SubjectPublicKeyInfo is not what RFC 8463 publishes */
	assert_int_equal(parse_record("k=ed25519; p=MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", &r),
			 DKIM_KEY_INVALID);
	/* ... nor an RSA key */
	assert_int_equal(parse_record("k=rsa; p=MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", &r),
			 DKIM_KEY_INVALID);
	assert_int_equal(parse_record("p=AAAA", &r), DKIM_KEY_INVALID);
	/* longer than any key we take */
	char *huge = malloc(4 * DKIM_KEY_DER_MAX / 3 + 64);
	strcpy(huge, "p=");
	for (size_t i = 0; i < DKIM_KEY_DER_MAX / 3 + 4; i++)
		strcat(huge, "AAAA");
	assert_int_equal(parse_record(huge, &r), DKIM_KEY_SIZE);
	free(huge);
	/* a NUL inside */
	const char *err;
	assert_int_equal(dkim_key_record_parse("v=DKIM1; p=\0", 12, &r, &err), DKIM_KEY_SYNTAX);
}

/* RFC 6376 §3.6.1 says RSAPublicKey; nearly everyone publishes SubjectPublicKeyInfo. Both parse. */
static void test_record_rsa_forms(void **state)
{
	EVP_PKEY *rsa = testdata_rsa_key();
	unsigned char *der = NULL;
	int n = i2d_PublicKey(rsa, &der); /* PKCS#1 RSAPublicKey for RSA keys */
	assert_true(n > 0);
	char *b64 = b64_of(der, (size_t)n);
	char buf[1024];
	snprintf(buf, sizeof(buf), "v=DKIM1; p=%s", b64);
	struct dkim_key_record r;
	assert_int_equal(parse_record(buf, &r), DKIM_KEY_OK);
	assert_true(dkim_key_record_matches(&r, rsa));
	assert_int_equal(r.bits, 1024);
	dkim_key_record_clear(&r);
	/* one octet of junk after the DER is refused */
	unsigned char *der2 = malloc((size_t)n + 1);
	memcpy(der2, der, (size_t)n);
	der2[n] = 0;
	free(b64);
	b64 = b64_of(der2, (size_t)n + 1);
	snprintf(buf, sizeof(buf), "v=DKIM1; p=%s", b64);
	assert_int_equal(parse_record(buf, &r), DKIM_KEY_INVALID);
	free(der2);
	free(b64);
	OPENSSL_free(der);

	/* a short key parses (the verifier reports its size and refuses it) */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	assert_non_null(small);
	const char *err;
	char *rec = dkim_key_record_format(small, &err);
	assert_int_equal(parse_record(rec, &r), DKIM_KEY_OK);
	assert_int_equal(r.bits, 512);
	assert_true(dkim_key_record_matches(&r, small));
	assert_false(dkim_key_record_matches(&r, rsa));
	dkim_key_record_clear(&r);
	free(rec);
	EVP_PKEY_free(small);
	EVP_PKEY_free(rsa);
}

static void test_base64(void **state)
{
	unsigned char out[16];
	size_t n;
	assert_int_equal(dkim_base64_decode("", 0, out, sizeof(out), &n), DKIM_BASE64_OK);
	assert_int_equal(n, 0);
	assert_int_equal(dkim_base64_decode("YWJj", 4, out, sizeof(out), &n), DKIM_BASE64_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "abc", 3);
	assert_int_equal(dkim_base64_decode(" Y W\r\n J\tj ", 11, out, sizeof(out), &n), DKIM_BASE64_OK);
	assert_int_equal(n, 3);
	assert_int_equal(dkim_base64_decode("YWI=", 4, out, sizeof(out), &n), DKIM_BASE64_OK);
	assert_int_equal(n, 2);
	assert_int_equal(dkim_base64_decode("YQ==", 4, out, sizeof(out), &n), DKIM_BASE64_OK);
	assert_int_equal(n, 1);
	assert_int_equal(dkim_base64_decode("YQ= =", 5, out, sizeof(out), &n), DKIM_BASE64_OK);
	const char *bad[] = {"YWJ", "Y===", "YQ==YWJj", "YW=j", "=YWJ", "YWJj=", "YW_j", "YWJ\x80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dkim_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n) != DKIM_BASE64_SYNTAX)
			fail_msg("\"%s\" decoded", bad[i]);
	assert_int_equal(dkim_base64_decode("YWJjYWJj", 8, out, 5, &n), DKIM_BASE64_TOO_LONG);
	assert_int_equal(dkim_base64_decode("YWJjYWI=", 8, out, 5, &n), DKIM_BASE64_OK);
	assert_int_equal(n, 5);
}

static void test_names(void **state)
{
	assert_string_equal(dkim_key_type_str(DKIM_KEY_RSA), "rsa");
	assert_string_equal(dkim_key_type_str(DKIM_KEY_ED25519), "ed25519");
	assert_string_equal(dkim_alg_str(DKIM_ALG_RSA_SHA256), "rsa-sha256");
	assert_string_equal(dkim_alg_str(DKIM_ALG_ED25519_SHA256), "ed25519-sha256");
	assert_string_equal(dkim_alg_str(DKIM_ALG_RSA_SHA1), "rsa-sha1");
	assert_int_equal(dkim_alg_key_type(DKIM_ALG_ED25519_SHA256), DKIM_KEY_ED25519);
	assert_int_equal(dkim_alg_key_type(DKIM_ALG_RSA_SHA1), DKIM_KEY_RSA);
	for (int e = DKIM_KEY_OK; e <= DKIM_KEY_SYSTEM; e++)
		assert_string_not_equal(dkim_key_error_str((enum dkim_key_error)e), "?");
	assert_string_equal(dkim_key_error_str((enum dkim_key_error)99), "?");
	assert_string_equal(dkim_base64_error_str(DKIM_BASE64_TOO_LONG), "too_long");
	assert_string_equal(dkim_base64_error_str((enum dkim_base64_error)9), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8463_keys),
		cmocka_unit_test(test_pem_refused),
		cmocka_unit_test(test_generate_and_write),
		cmocka_unit_test(test_record_tags),
		cmocka_unit_test(test_record_rsa_forms),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_dkim_verify.c — libFuzzer harness for whole-message DKIM verification and signing
 * (src/auth/dkim_verify.c, dkim_sign.c): the input is a message. It is verified with every DNS
 * outcome (picked from the input) answering its key questions with the RFC 8463 public keys and our
 * own; then, if it can be signed, it is signed and verified again, and that signature must pass:
 * whatever we sign, we verify. The signing key is the RFC 8463 Ed25519 key when MAILWERK_TESTDATA
 * points at the test data (so findings reproduce), else one generated at start. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* RFC 8463 Appendix A.2, the two published (public) key records */
static const char rfc_ed[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc_rsa[] = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6"
			      "wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5Qj"
			      "vHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

static EVP_PKEY *sign_key;
static char *sign_record;

static EVP_PKEY *key_from_testdata(void)
{
	const char *dir = getenv("MAILWERK_TESTDATA");
	char path[4096], b64[128];
	if (dir == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/dkim/rfc8463/ed25519-private.seed.b64", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	size_t n = fread(b64, 1, sizeof(b64) - 1, f);
	fclose(f);
	unsigned char seed[64];
	size_t len;
	if (dkim_base64_decode(b64, n, seed, sizeof(seed), &len) != DKIM_BASE64_OK || len != 32)
		return NULL;
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *err;
	sign_key = key_from_testdata();
	if (sign_key == NULL && dkim_key_generate(DKIM_KEY_ED25519, 0, &sign_key, &err) != DKIM_KEY_OK)
		abort();
	sign_record = dkim_key_record_format(sign_key, &err);
	if (sign_record == NULL)
		abort();
	return 0;
}

/* Answers every question from the same three records, with a status the input picks. */
struct zone {
	enum dns_status status;
	unsigned questions;
};

static void verify_all(struct dkim_verify *v, struct zone *z)
{
	struct dns_txt txts[3] = {
		{rfc_ed, sizeof(rfc_ed) - 1},
		{rfc_rsa, sizeof(rfc_rsa) - 1},
		{sign_record, strlen(sign_record)},
	};
	struct auth_query q;
	const struct dns_result *answer = NULL;
	struct dns_result res;
	size_t n = dkim_verify_count(v);
	while (dkim_verify_step(v, answer, &q) == AUTH_STEP_QUERY) {
		/* at most one question per signature, each a key name */
		FUZZ_CHECK(++z->questions <= n);
		FUZZ_CHECK(q.rrtype == DNS_RRTYPE_TXT && strnlen(q.name, sizeof(q.name)) < sizeof(q.name));
		FUZZ_CHECK(strstr(q.name, "._domainkey.") != NULL);
		memset(&res, 0, sizeof(res));
		res.status = z->status;
		res.rrtype = DNS_RRTYPE_TXT;
		res.name = res.canonname = q.name;
		res.why = "";
		if (z->status == DNS_STATUS_OK) {
			res.count = 3;
			res.txts = txts;
		}
		answer = &res;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);
		FUZZ_CHECK(r != NULL && r->reason != NULL);
		FUZZ_CHECK(r->result > DKIM_RESULT_NONE && r->result <= DKIM_RESULT_PERMERROR &&
			   r->result != DKIM_RESULT_NEUTRAL && r->result != DKIM_RESULT_POLICY);
		FUZZ_CHECK(strlen(r->domain) < sizeof(r->domain) && strlen(r->selector) < sizeof(r->selector));
		FUZZ_CHECK(strlen(r->identity) < sizeof(r->identity) && strlen(r->b_prefix) <= DKIM_SIG_B_PREFIX);
		FUZZ_CHECK(r->body_length_limited || r->body_unsigned == 0);
		/* no key, no pass */
		if (z->status != DNS_STATUS_OK)
			FUZZ_CHECK(r->result != DKIM_RESULT_PASS);
	}
	FUZZ_CHECK(dkim_verify_result(v, n) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = malloc(size > 0 ? size : 1);
	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	static const enum dns_status statuses[] = {DNS_STATUS_OK, DNS_STATUS_OK, DNS_STATUS_OK, DNS_STATUS_NXDOMAIN,
						   DNS_STATUS_NODATA, DNS_STATUS_TEMPFAIL, DNS_STATUS_BOGUS};
	struct zone z = {.status = statuses[size % 7]};
	struct dkim_verify *v = dkim_verify_new(msg, size, 4, 1700000000);
	FUZZ_CHECK(v != NULL);
	FUZZ_CHECK(dkim_verify_count(v) <= 4);
	verify_all(v, &z);
	dkim_verify_free(v);

	/* whatever we sign, we verify */
	struct dkim_sign_params p = {
		.domain = "example.com",
		.selector = "fuzz",
		.key = sign_key,
		.header_canon = size > 0 && (data[0] & 1) ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
		.body_canon = size > 0 && (data[0] & 2) ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
		.timestamp = 1600000000,
		.fold_width = size > 1 ? 20 + data[1] % 80 : 0,
	};
	const char *err = NULL;
	char *field = dkim_sign(&p, msg, size, &err);
	if (field != NULL) {
		size_t flen = strlen(field);
		char *signed_msg = malloc(flen + size);
		FUZZ_CHECK(signed_msg != NULL);
		memcpy(signed_msg, field, flen);
		memcpy(signed_msg + flen, msg, size);
		v = dkim_verify_new(signed_msg, flen + size, 4, 1700000000);
		FUZZ_CHECK(v != NULL && dkim_verify_count(v) >= 1);
		struct zone ok = {.status = DNS_STATUS_OK};
		verify_all(v, &ok);
		const struct dkim_sig_result *r = dkim_verify_result(v, 0);
		if (r->result != DKIM_RESULT_PASS) {
			fprintf(stderr, "own signature: %s (%s)\n%s", dkim_result_str(r->result), r->reason, field);
			__builtin_trap();
		}
		dkim_verify_free(v);
		free(signed_msg);
		free(field);
	} else {
		FUZZ_CHECK(err != NULL);
	}
	free(msg);
	return 0;
}

/* fuzz_spf_record.c — libFuzzer harness for src/auth/spf_record.c. The input is a TXT record as a
 * hostile DNS server could publish it: parsed as it is and behind "v=spf1 " (so that most inputs
 * reach the term grammar), and the invariants of spf_record.h are checked on whatever parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/spf_record.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static bool within(const struct spf_record *r, const char *p, size_t len)
{
	return p >= r->text && p + len <= r->text + r->len;
}

static void check_spec(const struct spf_record *r, const struct spf_domain_spec *d)
{
	const char *err;
	bool p;

	if (d->text == NULL)
		return;
	FUZZ_CHECK(within(r, d->text, d->len));
	FUZZ_CHECK(spf_domain_spec_valid(d->text, d->len, &p, &err));
	FUZZ_CHECK(p == d->uses_p);
}

static void fuzz_parse(const char *text, size_t len)
{
	struct spf_record *r = NULL;
	const char *err = NULL;
	size_t at = 0;
	enum spf_record_error e = spf_record_parse(text, len, &r, &err, &at);

	if (e != SPF_RECORD_OK) {
		FUZZ_CHECK(r == NULL && err != NULL && at <= len);
		return;
	}
	FUZZ_CHECK(r != NULL && spf_record_is_spf(text, len));
	FUZZ_CHECK(r->len == len && memcmp(r->text, text, len) == 0 && r->text[len] == '\0');
	FUZZ_CHECK(r->nterms <= len / 2);
	bool has_all = false;
	for (size_t i = 0; i < r->nterms; i++) {
		const struct spf_term *t = &r->terms[i];
		FUZZ_CHECK(t->text_len > 0 && within(r, t->text, t->text_len));
		FUZZ_CHECK(memchr(t->text, ' ', t->text_len) == NULL);
		FUZZ_CHECK(t->cidr4 <= 32 && t->cidr6 <= 128);
		check_spec(r, &t->domain);
		switch (t->mech) {
		case SPF_MECH_INCLUDE:
		case SPF_MECH_EXISTS:
			FUZZ_CHECK(t->domain.text != NULL);
			break;
		case SPF_MECH_IP4:
			FUZZ_CHECK(t->net.family == AF_INET && t->domain.text == NULL);
			break;
		case SPF_MECH_IP6:
			FUZZ_CHECK(t->net.family == AF_INET6 && t->domain.text == NULL);
			break;
		case SPF_MECH_ALL:
			has_all = true;
			FUZZ_CHECK(t->domain.text == NULL);
			break;
		default:
			break;
		}
	}
	FUZZ_CHECK(has_all == r->has_all);
	check_spec(r, &r->redirect);
	check_spec(r, &r->exp);
	spf_record_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size heap copies, so that ASan sees any read past the end */
	char *raw = malloc(size > 0 ? size : 1);
	char *spf = malloc(size + 7);
	if (raw == NULL || spf == NULL) {
		free(raw);
		free(spf);
		return 0;
	}
	memcpy(raw, data, size);
	fuzz_parse(raw, size);
	spf_record_is_spf(raw, size);
	memcpy(spf, "v=spf1 ", 7);
	memcpy(spf + 7, data, size);
	fuzz_parse(spf, size + 7);
	free(raw);
	free(spf);
	return 0;
}

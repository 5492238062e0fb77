/* fuzz_signer.c — libFuzzer harness for what the worker and the DKIM signer read from each other
 * (src/server/signer_msg.c): one record framed by ipc_msg_parse, its payload read by the parser
 * its type names on whichever side reads it. What parses is well-formed: names that are names,
 * known algorithms, printable sentences, and formatting it again gives the same octets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dkim_sig.h"
#include "ipc/ipc.h"
#include "server/signer_msg.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static void check_keylist(const struct ipc_msg *m)
{
	struct dkim_signer_key keys[DKIM_SIGNER_KEYS_MAX];
	size_t n = 0;
	const char *err = NULL;
	if (signer_keylist_parse(m->payload, m->len, keys, &n, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	FUZZ_CHECK(n <= DKIM_SIGNER_KEYS_MAX);
	char again[2 * (DKIM_SELECTOR_MAX + 32)];
	int len = signer_keylist_format(keys, n, again, sizeof(again));
	FUZZ_CHECK(len >= 0 && (size_t)len == m->len && memcmp(again, m->payload, m->len) == 0);
}

static void check_sign(const struct ipc_msg *m)
{
	char domain[DNS_HOST_SIZE], selector[DKIM_SELECTOR_MAX + 1];
	unsigned char digest[DKIM_DIGEST_SIZE], again[DNS_HOST_SIZE + DKIM_SELECTOR_MAX + 2 + DKIM_DIGEST_SIZE];
	const char *err = NULL;
	if (signer_sign_parse(m->payload, m->len, domain, selector, digest, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	FUZZ_CHECK(dkim_domain_valid(domain, strlen(domain)) && dkim_selector_valid(selector, strlen(selector)));
	int len = signer_sign_format(domain, selector, digest, again, sizeof(again));
	FUZZ_CHECK(len >= 0 && (size_t)len == m->len && memcmp(again, m->payload, m->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg m;
	const char *err = NULL;
	if (ipc_msg_parse(data, size, &m, &err) != 0)
		return 0;
	char domain[DNS_HOST_SIZE], text[SIGNER_ERROR_MAX + 1];
	switch (m.type) {
	case SIGNER_MSG_KEYS:
		if (signer_keys_parse(m.payload, m.len, domain, &err) == 0)
			FUZZ_CHECK(strlen(domain) == m.len && memcmp(domain, m.payload, m.len) == 0);
		break;
	case SIGNER_MSG_KEYLIST:
		check_keylist(&m);
		break;
	case SIGNER_MSG_SIGN:
		check_sign(&m);
		break;
	case SIGNER_MSG_MAKE: {
		struct signer_make k;
		char again[DNS_HOST_SIZE + DKIM_SELECTOR_MAX + 32];
		if (signer_make_parse(m.payload, m.len, &k, &err) == 0) {
			int len = signer_make_format(&k, again, sizeof(again));
			FUZZ_CHECK(len >= 0 && (size_t)len == m.len && memcmp(again, m.payload, m.len) == 0);
		}
		break;
	}
	case SIGNER_MSG_ACTIVATE: {
		char selector[DKIM_SELECTOR_MAX + 1], again[DNS_HOST_SIZE + DKIM_SELECTOR_MAX + 2];
		if (signer_activate_parse(m.payload, m.len, domain, selector, &err) == 0) {
			int len = signer_activate_format(domain, selector, again, sizeof(again));
			FUZZ_CHECK(len >= 0 && (size_t)len == m.len && memcmp(again, m.payload, m.len) == 0);
		}
		break;
	}
	case SIGNER_MSG_DONE: {
		int r = signer_done_parse(m.payload, m.len, &err);
		FUZZ_CHECK(r == -1 || (r == 1 && m.len == 6) || (r == 0 && m.len == 8));
		break;
	}
	case SIGNER_MSG_SIGNATURE:
		FUZZ_CHECK((signer_signature_check(m.len, &err) == 0) == (m.len >= 1 && m.len <= DKIM_SIG_B_MAX));
		break;
	default:
		if (signer_error_parse(m.payload, m.len, text, &err) == 0) {
			FUZZ_CHECK(strlen(text) == m.len);
			for (const char *p = text; *p != '\0'; p++)
				FUZZ_CHECK(*p >= ' ' && *p <= '~');
		}
		break;
	}
	return 0;
}

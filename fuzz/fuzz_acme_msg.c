/* fuzz_acme_msg.c — libFuzzer harness for src/acme/acme_msg.c and acme_hello.c: the input is an
 * answer of an ACME server (directory, order, authorization, problem document, Retry-After) or a
 * ClientHello extension (ALPN, SNI), chosen by the first octet. Whatever is accepted must keep the
 * promises of the headers: URLs https and parseable, tokens base64url, bounded counts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme_hello.h"
#include "acme/acme_msg.h"

#define FUZZ_CHECK(cond)                  \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static void check_url(const char *u, bool may_be_empty)
{
	struct http_url p;
	const char *e;
	if (may_be_empty && u[0] == '\0')
		return;
	FUZZ_CHECK(http_url_parse(u, strlen(u), &p, &e) == HTTP_URL_OK && p.https);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned kind = data[0] % 7;
	data++, size--;
	char *s = malloc(size > 0 ? size : 1); /* exact size: a read past the end is caught */
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	const char *err = NULL;
	switch (kind) {
	case 0: {
		static struct acme_directory d;
		if (acme_directory_parse(s, size, &d, &err) == ACME_MSG_OK) {
			check_url(d.new_nonce, false);
			check_url(d.new_account, false);
			check_url(d.new_order, false);
			check_url(d.revoke_cert, true);
			check_url(d.terms, true);
		} else {
			FUZZ_CHECK(err != NULL);
		}
		break;
	}
	case 1: {
		static struct acme_order o;
		if (acme_order_parse(s, size, &o, &err) == ACME_MSG_OK) {
			FUZZ_CHECK(o.n_authz <= ACME_NAMES_MAX);
			check_url(o.finalize, false);
			check_url(o.certificate, o.status != ACME_STATUS_VALID);
			for (size_t i = 0; i < o.n_authz; i++)
				check_url(o.authz[i], false);
		}
		break;
	}
	case 2: {
		static struct acme_authz z;
		if (acme_authz_parse(s, size, &z, &err) == ACME_MSG_OK) {
			FUZZ_CHECK(z.name[0] != '\0' && z.n_challenges <= ACME_CHALLENGES_MAX);
			for (size_t i = 0; i < z.n_challenges; i++) {
				FUZZ_CHECK(z.challenges[i].type != ACME_CHALLENGE_OTHER);
				FUZZ_CHECK(acme_token_ok(z.challenges[i].token, strlen(z.challenges[i].token)));
				check_url(z.challenges[i].url, false);
			}
		}
		break;
	}
	case 3: {
		struct acme_problem p;
		if (acme_problem_parse(s, size, &p, &err) == ACME_MSG_OK)
			FUZZ_CHECK(strlen(p.type) < sizeof(p.type) && strlen(p.detail) < sizeof(p.detail));
		break;
	}
	case 4: {
		char *z = malloc(size + 1);
		if (z != NULL) {
			memcpy(z, data, size);
			z[size] = '\0';
			uint64_t secs;
			(void)acme_retry_after_parse(z, 1700000000, &secs);
			free(z);
		}
		break;
	}
	case 5:
		(void)acme_hello_alpn_offers((const unsigned char *)s, size, ACME_ALPN_PROTOCOL);
		break;
	case 6: {
		char name[254];
		if (acme_hello_server_name((const unsigned char *)s, size, name, sizeof(name))) {
			size_t n = strlen(name);
			FUZZ_CHECK(n > 0 && n <= 253);
			for (size_t i = 0; i < n; i++)
				FUZZ_CHECK((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
					   name[i] == '-' || name[i] == '.');
		}
		break;
	}
	}
	free(s);
	return 0;
}

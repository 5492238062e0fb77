/* fuzz_addr.c — libFuzzer harness for src/util/addr.c. The first input octet selects the flags; the
 * rest goes to addr_parse_path, addr_parse_mailbox and addr_parse_domain, and every accepted address
 * is checked against the invariants of addr.h and parsed again from its own text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"

#define FUZZ_ALL_FLAGS (ADDR_ALLOW_UTF8 | ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER)

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static bool fuzz_is_postmaster(const char *s)
{
	static const char pm[] = "postmaster";
	for (size_t i = 0; i < sizeof(pm); i++) {
		int c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != pm[i])
			return false;
	}
	return true;
}

/* The structure promised by addr.h, and the text parses again to the same address. */
static void fuzz_check_addr(const struct addr *a, unsigned flags)
{
	size_t n = strnlen(a->text, sizeof(a->text));
	FUZZ_CHECK(n < sizeof(a->text) && n <= ADDR_TEXT_MAX);
	FUZZ_CHECK(a->local_len <= a->domain_off && a->domain_off <= n);
	FUZZ_CHECK(a->local_len <= ADDR_LOCAL_MAX);
	FUZZ_CHECK(n - a->domain_off <= ADDR_DOMAIN_MAX);

	bool high = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a->text[i];
		FUZZ_CHECK(c >= 0x20 && c != 0x7f);
		high |= c >= 0x80;
	}
	FUZZ_CHECK(a->is_utf8 == high);
	FUZZ_CHECK(!a->is_utf8 || (flags & ADDR_ALLOW_UTF8));

	if (a->is_null) {
		FUZZ_CHECK(n == 0 && a->local_len == 0 && a->domain_off == 0 && (flags & ADDR_ALLOW_NULL));
		FUZZ_CHECK(!a->is_literal && !a->is_utf8);
		return;
	}
	if (a->domain_off == n) {
		/* only a bare <Postmaster> has no domain */
		FUZZ_CHECK((flags & ADDR_ALLOW_POSTMASTER) && n == 10 && a->local_len == 10);
		FUZZ_CHECK(fuzz_is_postmaster(a->text) && !a->is_literal);
		return;
	}
	FUZZ_CHECK(a->local_len > 0 && a->text[a->local_len] == '@' && a->domain_off == a->local_len + 1);
	FUZZ_CHECK(a->is_literal == (a->text[a->domain_off] == '['));

	struct addr m;
	FUZZ_CHECK(addr_parse_mailbox(a->text, n, flags, &m, NULL) == ADDR_OK);
	FUZZ_CHECK(strcmp(m.text, a->text) == 0 && m.local_len == a->local_len && m.domain_off == a->domain_off);
	FUZZ_CHECK(m.is_literal == a->is_literal && m.is_utf8 == a->is_utf8 && !m.is_null);
	FUZZ_CHECK(addr_parse_domain(addr_domain(a), n - a->domain_off, flags, NULL) == ADDR_OK);

	char path[ADDR_TEXT_MAX + 3];
	size_t consumed = 0;
	path[0] = '<';
	memcpy(path + 1, a->text, n);
	path[n + 1] = '>';
	FUZZ_CHECK(addr_parse_path(path, n + 2, flags, &m, &consumed, NULL) == ADDR_OK);
	FUZZ_CHECK(consumed == n + 2 && strcmp(m.text, a->text) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0] & FUZZ_ALL_FLAGS;
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	const char *err = NULL;
	struct addr a, all;
	size_t consumed = 0, consumed_all = 0;

	enum addr_error e = addr_parse_path(s, len, flags, &a, &consumed, &err);
	FUZZ_CHECK(e == ADDR_OK || e == ADDR_ERR_SYNTAX || e == ADDR_ERR_TOO_LONG || e == ADDR_ERR_UTF8);
	if (e == ADDR_OK) {
		FUZZ_CHECK(consumed >= 2 && consumed <= len && consumed <= ADDR_PATH_MAX);
		FUZZ_CHECK(s[0] == '<' && s[consumed - 1] == '>');
		fuzz_check_addr(&a, flags);
		/* more flags never turn an accepted path into a rejected or different one */
		FUZZ_CHECK(addr_parse_path(s, len, FUZZ_ALL_FLAGS, &all, &consumed_all, NULL) == ADDR_OK);
		FUZZ_CHECK(consumed_all == consumed && strcmp(all.text, a.text) == 0);
	} else {
		FUZZ_CHECK(err != NULL && consumed == 0 && a.text[0] == '\0');
	}

	err = NULL;
	e = addr_parse_mailbox(s, len, flags, &a, &err);
	if (e == ADDR_OK) {
		FUZZ_CHECK(len <= ADDR_TEXT_MAX && memcmp(a.text, s, len) == 0 && a.text[len] == '\0');
		fuzz_check_addr(&a, flags);
		FUZZ_CHECK(!a.is_null && a.domain_off < len);
		FUZZ_CHECK(addr_parse_mailbox(s, len, FUZZ_ALL_FLAGS, &all, NULL) == ADDR_OK);
	} else {
		FUZZ_CHECK(err != NULL && a.text[0] == '\0');
	}

	err = NULL;
	e = addr_parse_domain(s, len, flags, &err);
	if (e == ADDR_OK) {
		FUZZ_CHECK(len > 0 && len <= ADDR_DOMAIN_MAX);
		if (s[0] == '[') {
			FUZZ_CHECK(len >= 3 && s[len - 1] == ']');
		} else {
			for (size_t i = 0; i < len; i++) {
				unsigned char c = (unsigned char)s[i];
				FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
					   c == '-' || c == '.' || (c >= 0x80 && (flags & ADDR_ALLOW_UTF8)));
			}
		}
		FUZZ_CHECK(addr_parse_domain(s, len, FUZZ_ALL_FLAGS, NULL) == ADDR_OK);
	} else {
		FUZZ_CHECK(err != NULL);
	}
	(void)addr_error_str(e);
	return 0;
}

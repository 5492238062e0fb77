/* fuzz_dashboard_login.c — libFuzzer harness for src/http/dashboard_login.c: the input is the body
 * of a sign-in request. An accepted one is exactly one of the two forms, with values that are
 * non-empty and fit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/dashboard_login.h"

#define FUZZ_CHECK(cond)                  \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size > 0 ? size : 1); /* exact size: a read past the end is caught */
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	struct dashboard_login r;
	const char *why = NULL;
	if (dashboard_login_parse(s, size, &r, &why) != 0) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		FUZZ_CHECK(r.password[0] == '\0' && r.api_key[0] == '\0');
	} else if (r.kind == DASHBOARD_LOGIN_API_KEY) {
		size_t n = strnlen(r.api_key, sizeof(r.api_key));
		FUZZ_CHECK(n > 0 && n <= DASHBOARD_API_KEY_MAX && r.email[0] == '\0' && r.password[0] == '\0');
	} else {
		FUZZ_CHECK(r.kind == DASHBOARD_LOGIN_PASSWORD);
		size_t e = strnlen(r.email, sizeof(r.email)), p = strnlen(r.password, sizeof(r.password));
		FUZZ_CHECK(e > 0 && e < sizeof(r.email) && p > 0 && p <= DASHBOARD_PASSWORD_MAX && r.api_key[0] == '\0');
	}
	free(s);
	return 0;
}

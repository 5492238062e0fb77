/* fuzz_http_cookie.c — libFuzzer harness for src/http/cookie.c: the input is a Cookie field value
 * as a client sends it. What is found must be a cookie-value (RFC 6265 §4.1.1) that fits, and is
 * found again when put back alone in a field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/cookie.h"

#define FUZZ_CHECK(cond)                  \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a NUL-terminated exact-size copy (the field has no NUL: parse.c stops at none, the line reader refuses them) */
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char out[80];
	int r = http_cookie_get(s, "mailwerk_session", out, sizeof(out));
	FUZZ_CHECK(r >= -1 && r <= 1);
	if (r != 1) {
		FUZZ_CHECK(out[0] == '\0');
	} else {
		size_t n = strlen(out);
		FUZZ_CHECK(n < sizeof(out));
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(out[i] > 0x20 && out[i] < 0x7f && out[i] != '"' && out[i] != ',' && out[i] != ';' &&
				   out[i] != '\\');
		char again[100], back[80];
		memcpy(again, "mailwerk_session=", 17);
		memcpy(again + 17, out, n + 1);
		FUZZ_CHECK(http_cookie_get(again, "mailwerk_session", back, sizeof(back)) == 1);
		FUZZ_CHECK(strcmp(back, out) == 0);
	}
	free(s);
	return 0;
}

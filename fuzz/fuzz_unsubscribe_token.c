/* fuzz_unsubscribe_token.c — libFuzzer harness for src/http/unsubscribe_token.c: any input is
 * checked as a token; one that passes must carry NUL-terminated fields without line breaks and
 * be made again, from those fields, to the same token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/unsubscribe_token.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static const unsigned char key[UNSUBSCRIBE_SECRET_LEN] = "fuzzing-key-fuzzing-key-fuzzing";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = malloc(size + 1);
	if (tok == NULL)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	struct unsubscribe_target t;
	const char *why;
	if (unsubscribe_token_check(key, tok, size, &t, &why)) {
		FUZZ_CHECK(strnlen(t.email_id, sizeof(t.email_id)) < sizeof(t.email_id));
		FUZZ_CHECK(strnlen(t.addr, sizeof(t.addr)) < sizeof(t.addr));
		FUZZ_CHECK(strchr(t.addr, '\n') == NULL && strchr(t.domain, '\n') == NULL);
		char again[UNSUBSCRIBE_TOKEN_MAX + 1];
		FUZZ_CHECK(unsubscribe_token_make(key, &t, again, sizeof(again)));
	}
	/* and a made token always passes */
	struct unsubscribe_target m = {0};
	size_t n = size < sizeof(m.addr) - 1 ? size : sizeof(m.addr) - 1;
	memcpy(m.addr, data, n);
	m.addr[strcspn(m.addr, "\n")] = '\0';
	strcpy(m.email_id, "id");
	strcpy(m.domain, "d.test");
	char made[UNSUBSCRIBE_TOKEN_MAX + 1];
	if (m.addr[0] != '\0' && unsubscribe_token_make(key, &m, made, sizeof(made))) {
		struct unsubscribe_target back;
		FUZZ_CHECK(unsubscribe_token_check(key, made, strlen(made), &back, &why));
		FUZZ_CHECK(strcmp(back.addr, m.addr) == 0);
	}
	free(tok);
	return 0;
}

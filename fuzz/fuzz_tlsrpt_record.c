/* fuzz_tlsrpt_record.c — libFuzzer harness for src/report/tlsrpt_record.c: the input is one TXT
 * record for tlsrpt_record_parse, then, cut at '|', the TXT records of one answer for
 * tlsrpt_record_select. What parses must keep the promises of tlsrpt.h: at most TLSRPT_RUA_MAX
 * URIs, each terminated, a mailbox without '@' problems or an https URL, no duplicates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report/tlsrpt.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#define FUZZ_TXT_MAX 8

static void check(const struct tlsrpt_record *r, enum tlsrpt_record_error e, const char *err)
{
	FUZZ_CHECK(err != NULL);
	FUZZ_CHECK(r->rua_count <= TLSRPT_RUA_MAX);
	if (e == TLSRPT_RECORD_OK)
		FUZZ_CHECK(r->rua_count > 0);
	for (size_t i = 0; i < r->rua_count; i++) {
		const struct tlsrpt_uri *u = &r->rua[i];
		size_t n = strnlen(u->text, sizeof(u->text));
		FUZZ_CHECK(n > 0 && n < sizeof(u->text));
		for (size_t k = 0; k < n; k++)
			FUZZ_CHECK((unsigned char)u->text[k] > 0x20 && (unsigned char)u->text[k] < 0x7f);
		if (u->kind == TLSRPT_URI_MAILTO)
			FUZZ_CHECK(strchr(u->text, '@') != NULL);
		else
			FUZZ_CHECK(strncasecmp(u->text, "https://", 8) == 0);
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(r->rua[k].kind != u->kind || strcasecmp(r->rua[k].text, u->text) != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	struct tlsrpt_record *r = malloc(sizeof(*r));
	if (r == NULL) {
		free(copy);
		return 0;
	}
	const char *err = NULL;
	check(r, tlsrpt_record_parse(copy, size, r, &err), err);

	const char *texts[FUZZ_TXT_MAX];
	size_t lens[FUZZ_TXT_MAX], n = 0, start = 0;
	for (size_t i = 0; i <= size && n < FUZZ_TXT_MAX; i++)
		if (i == size || copy[i] == '|') {
			texts[n] = copy + start;
			lens[n++] = i - start;
			start = i + 1;
		}
	err = NULL;
	check(r, tlsrpt_record_select(texts, lens, n, r, &err), err);
	free(r);
	free(copy);
	return 0;
}

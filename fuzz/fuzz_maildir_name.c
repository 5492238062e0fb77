/* fuzz_maildir_name.c — libFuzzer harness for the pure parts of src/mailbox/maildir.c. The input, as a
 * C string, goes to maildir_name_parse (every accepted name is checked against maildir.h and parsed
 * again from the fields it gave) and, as an address, to maildir_path (the result never leaves
 * DATA_DIR/mail/DOMAIN and a smaller buffer gives the same path or nothing). The first input octet
 * also picks that smaller buffer's size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailbox/maildir.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#define FUZZ_DATA_DIR "/srv/mailwerk"
#define FUZZ_PATH_MAX 4096

static bool fuzz_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void fuzz_name(const char *s)
{
	struct maildir_name n;
	const char *err = NULL;
	if (maildir_name_parse(s, &n, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(n.base[0] == '\0' && n.flags[0] == '\0' && !n.has_size && !n.has_wsize);
		return;
	}
	size_t len = strlen(s);
	FUZZ_CHECK(len > 0 && len <= MAILDIR_NAME_MAX);

	size_t blen = strnlen(n.base, sizeof(n.base));
	FUZZ_CHECK(blen > 0 && blen < sizeof(n.base));
	FUZZ_CHECK(n.base[0] != '.');
	FUZZ_CHECK(!memchr(n.base, '/', blen) && !memchr(n.base, ':', blen) && !memchr(n.base, ',', blen));
	FUZZ_CHECK(memcmp(n.base, s, blen) == 0);
	FUZZ_CHECK(s[blen] == '\0' || s[blen] == ',' || s[blen] == ':');

	size_t flen = strnlen(n.flags, sizeof(n.flags));
	FUZZ_CHECK(flen < sizeof(n.flags));
	for (size_t i = 0; i < flen; i++)
		FUZZ_CHECK(fuzz_is_alpha(n.flags[i]));
	const char *colon = strchr(s, ':');
	FUZZ_CHECK(colon ? strcmp(colon + 3, n.flags) == 0 : flen == 0);
	FUZZ_CHECK(!n.has_size || strstr(s, ",S="));
	FUZZ_CHECK(!n.has_wsize || strstr(s, ",W="));
	FUZZ_CHECK(n.has_size || n.size == 0);
	FUZZ_CHECK(n.has_wsize || n.wsize == 0);

	/* the parsed fields, written the canonical way, parse to the same thing */
	char again[3 * MAILDIR_NAME_MAX];
	int k = snprintf(again, sizeof(again), "%s", n.base);
	if (n.has_size)
		k += snprintf(again + k, sizeof(again) - (size_t)k, ",S=%llu", (unsigned long long)n.size);
	if (n.has_wsize)
		k += snprintf(again + k, sizeof(again) - (size_t)k, ",W=%llu", (unsigned long long)n.wsize);
	if (colon)
		k += snprintf(again + k, sizeof(again) - (size_t)k, ":2,%s", n.flags);
	/* dropping unknown fields and leading zeros never makes it longer */
	FUZZ_CHECK(k > 0 && (size_t)k <= len);
	struct maildir_name m;
	FUZZ_CHECK(maildir_name_parse(again, &m, NULL) == 0);
	FUZZ_CHECK(strcmp(m.base, n.base) == 0 && strcmp(m.flags, n.flags) == 0);
	FUZZ_CHECK(m.has_size == n.has_size && m.size == n.size);
	FUZZ_CHECK(m.has_wsize == n.has_wsize && m.wsize == n.wsize);
}

static void fuzz_path(const char *data_dir, const char *address, size_t small)
{
	char out[FUZZ_PATH_MAX];
	char shorter[FUZZ_PATH_MAX];
	size_t dlen = strlen(FUZZ_DATA_DIR);

	int r = maildir_path(data_dir, address, out, sizeof(out));
	if (small > 0) {
		int rs = maildir_path(data_dir, address, shorter, small);
		FUZZ_CHECK(rs == 0 || rs == -1);
		if (rs == 0)
			FUZZ_CHECK(r == 0 && strcmp(shorter, out) == 0 && strlen(out) < small);
		else
			FUZZ_CHECK(shorter[0] == '\0' && (r == -1 || strlen(out) >= small));
	}
	if (r != 0) {
		FUZZ_CHECK(r == -1 && out[0] == '\0');
		return;
	}

	size_t olen = strlen(out);
	FUZZ_CHECK(olen < sizeof(out));
	static const char base[] = FUZZ_DATA_DIR "/mail/";
	FUZZ_CHECK(strncmp(out, base, sizeof(base) - 1) == 0);
	const char *rest = out + dlen;
	FUZZ_CHECK(!strstr(rest, "/.."));
	FUZZ_CHECK(!strstr(rest, "//"));

	/* exactly DOMAIN/LOCAL below DATA_DIR/mail/, both non-empty, the domain in lower case */
	const char *dom = out + sizeof(base) - 1;
	const char *slash = strchr(dom, '/');
	FUZZ_CHECK(slash && slash > dom && slash[1] != '\0' && !strchr(slash + 1, '/'));
	FUZZ_CHECK(dom[0] != '.' && slash[1] != '.');
	for (const char *c = dom; c < slash; c++)
		FUZZ_CHECK(!(*c >= 'A' && *c <= 'Z'));

	/* nothing dropped or added: the same octets apart from the documented rewrites */
	const char *at = strrchr(address, '@');
	FUZZ_CHECK(at != NULL);
	size_t llen = (size_t)(at - address);
	FUZZ_CHECK(strlen(slash + 1) == llen);
	FUZZ_CHECK((size_t)(slash - dom) == strlen(at + 1));
	for (size_t i = 0; i < llen; i++) {
		char want = address[i];
		if (want == '/' || (i == 0 && want == '.'))
			want = '_';
		FUZZ_CHECK(slash[1 + i] == want);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	fuzz_name(s);

	size_t small = size > 0 ? data[0] % 80 : 0;
	fuzz_path(FUZZ_DATA_DIR, s, small);
	/* a trailing '/' on the data dir changes nothing */
	char a[FUZZ_PATH_MAX], b[FUZZ_PATH_MAX];
	int ra = maildir_path(FUZZ_DATA_DIR, s, a, sizeof(a));
	int rb = maildir_path(FUZZ_DATA_DIR "//", s, b, sizeof(b));
	FUZZ_CHECK(ra == rb && (ra != 0 || strcmp(a, b) == 0));

	free(s);
	return 0;
}

/* fuzz_spf_macro.c — libFuzzer harness for src/auth/spf_macro.c. The first octet chooses the
 * context and the client address; the rest is split at the first NUL into a macro-string and the
 * values its letters stand for (sender, HELO, <domain>, separated by '\n'), all hostile. The check
 * and both expansions must agree, and what they write must keep the promises of spf_macro.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/spf_macro.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* The next '\n'-separated value of v, NUL-terminated in buf. */
static const char *next_value(const char **v, const char *end, char *buf, size_t size)
{
	const char *nl = memchr(*v, '\n', (size_t)(end - *v));
	size_t len = (size_t)((nl != NULL ? nl : end) - *v);
	if (len >= size)
		len = size - 1;
	memcpy(buf, *v, len);
	buf[len] = '\0';
	*v = nl != NULL ? nl + 1 : end;
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char sender[SPF_MACRO_VALUE_MAX + 200], helo[600], domain[600];
	char name[DNS_HOST_SIZE], text[SPF_EXPLANATION_SIZE], small[8];
	const char *err;
	struct spf_macro_info info;

	if (size < 1)
		return 0;
	enum spf_macro_ctx ctx = (enum spf_macro_ctx)(data[0] % 3);
	struct dns_addr ip = {.family = data[0] & 0x80 ? AF_INET6 : AF_INET};
	for (size_t i = 0; i < 16 && i + 1 < size; i++)
		ip.bytes[i] = data[size - 1 - i];
	const char *s = (const char *)data + 1, *end = (const char *)data + size;
	const char *nul = memchr(s, '\0', (size_t)(end - s));
	size_t len = (size_t)((nul != NULL ? nul : end) - s);
	const char *v = nul != NULL ? nul + 1 : end;
	char *spec = malloc(len > 0 ? len : 1);
	if (spec == NULL)
		return 0;
	memcpy(spec, s, len);

	struct spf_macro_env env = {
		.sender = next_value(&v, end, sender, sizeof(sender)),
		.helo = next_value(&v, end, helo, sizeof(helo)),
		.domain = next_value(&v, end, domain, sizeof(domain)),
		.local = "local",
		.sender_domain = "example.com",
		.ip = &ip,
		.ptr_name = data[0] & 0x40 ? NULL : "ptr.example.net",
		.receiver = data[0] & 0x20 ? NULL : "mx.example.org",
		.now = (time_t)size,
	};

	enum spf_macro_error e = spf_macro_check(spec, len, ctx, &info, &err);
	FUZZ_CHECK(e == SPF_MACRO_OK || e == SPF_MACRO_SYNTAX || e == SPF_MACRO_LETTER);
	if (e == SPF_MACRO_OK)
		FUZZ_CHECK(info.tail <= len);

	enum spf_macro_error d = spf_macro_expand_domain(spec, len, &env, name, &err);
	enum spf_macro_error dc = spf_macro_check(spec, len, SPF_MACRO_DOMAIN, NULL, &err);
	if (dc != SPF_MACRO_OK)
		FUZZ_CHECK(d == dc && name[0] == '\0');
	else if (d == SPF_MACRO_OK)
		FUZZ_CHECK(spf_macro_name_ok(name) && strlen(name) <= DNS_HOST_SIZE - 1);
	else
		FUZZ_CHECK(d == SPF_MACRO_BAD_NAME && name[0] == '\0');

	enum spf_macro_error t = spf_macro_expand_text(spec, len, &env, text, sizeof(text), &err);
	FUZZ_CHECK(t == spf_macro_check(spec, len, SPF_MACRO_EXPLAIN, NULL, &err));
	size_t tl = strlen(text);
	FUZZ_CHECK(tl < sizeof(text));
	for (size_t i = 0; i < tl; i++)
		FUZZ_CHECK((unsigned char)text[i] >= 0x20 && (unsigned char)text[i] <= 0x7e);
	/* a tiny buffer is cut, never overrun */
	spf_macro_expand_text(spec, len, &env, small, sizeof(small), &err);
	FUZZ_CHECK(strlen(small) < sizeof(small));
	free(spec);
	return 0;
}

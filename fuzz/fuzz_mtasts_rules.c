/* fuzz_mtasts_rules.c — libFuzzer harness for the input-reading parts of src/delivery/mtasts_rules.c:
 * the policy host's Content-Type value, and the Host field a policy request names its domain by.
 * Promises checked: a Content-Type taken begins (after blanks) with text/plain, case aside, and
 * goes on with blanks then ";" or nothing; a Host taken gives a lower-case host name with a dot
 * that the field spells after "mta-sts.", and the served text for it parses as a policy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery/mtasts_rules.h"
#include "net/dns_parse.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (mtasts_content_type_ok(s)) {
		const char *p = s + strspn(s, " \t");
		FUZZ_CHECK(strncasecmp(p, "text/plain", 10) == 0);
		p += 10;
		p += strspn(p, " \t");
		FUZZ_CHECK(*p == '\0' || *p == ';');
	}

	char d[DNS_HOST_SIZE];
	if (mtasts_host_domain(s, size, d, sizeof(d))) {
		FUZZ_CHECK(dns_host_valid(d) && strchr(d, '.') != NULL);
		for (const char *p = d; *p; p++)
			FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
		FUZZ_CHECK(size > 8 && strncasecmp(s + 8, d, strlen(d)) == 0);
		/* what we would serve for it, with it as the mx, is a policy we would accept */
		const char *mx[1] = {d};
		char text[MTASTS_TEXT_MAX];
		size_t n = mtasts_policy_text(MTASTS_MODE_ENFORCE, 86400, mx, 1, text, sizeof(text));
		FUZZ_CHECK(n > 0);
		struct mtasts_policy *p = malloc(sizeof(*p));
		const char *err;
		if (p != NULL) {
			FUZZ_CHECK(mtasts_policy_parse(text, n, p, &err) == MTASTS_OK);
			/* a dotted quad is refused as an mx; anything else that is a name matches itself */
			FUZZ_CHECK(p->mx_count == 1 && mtasts_policy_mx_match(p, d));
			free(p);
		}
		char id[MTASTS_ID_MAX + 1];
		mtasts_policy_id(text, n, id);
		FUZZ_CHECK(strlen(id) == 32);
	}
	free(s);
	return 0;
}

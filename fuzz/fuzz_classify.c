/* fuzz_classify.c — libFuzzer harness for src/events/classify.c: the input is split at its first
 * space into a status code and the reply text (no space: a status alone, and the whole input as a
 * reply without a code). The type is checked against an independent reading of RFC 3463 §3.1. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events/classify.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* RFC 3463 §3.1: class.subject.detail, the class one digit (2, 4 or 5), the others 1-3 digits:
 * the class, or -1. */
static int ref_status(const char *s, int *subj_r, int *det_r)
{
	int v[3] = {0, 0, 0};
	for (int part = 0; part < 3; part++) {
		size_t n = strspn(s, "0123456789");
		if (n == 0 || n > (part == 0 ? 1u : 3u))
			return -1;
		for (size_t i = 0; i < n; i++)
			v[part] = v[part] * 10 + (s[i] - '0');
		s += n;
		if (part < 2) {
			if (*s != '.')
				return -1;
			s++;
		}
	}
	if (*s != '\0' || (v[0] != 2 && v[0] != 4 && v[0] != 5))
		return -1;
	*subj_r = v[1], *det_r = v[2];
	return v[0];
}

static void check_one(const char *status, const char *reply)
{
	for (int remote = 0; remote < 2; remote++) {
		struct bounce_class c = bounce_classify(status, reply, remote);
		FUZZ_CHECK(c.type == BOUNCE_CLASS_UNDETERMINED || c.type == BOUNCE_CLASS_PERMANENT ||
			   c.type == BOUNCE_CLASS_TRANSIENT);
		FUZZ_CHECK((unsigned)c.subtype < BOUNCE_SUB_SUPPRESSED); /* "suppressed" is never a receiver's */
		FUZZ_CHECK(bounce_class_type_str(c.type) != NULL && bounce_class_subtype_str(c.subtype) != NULL);
		int subj = 0, det = 0;
		int cls = status != NULL ? ref_status(status, &subj, &det) : -1;
		enum bounce_class_type want = cls < 0 ? BOUNCE_CLASS_UNDETERMINED
					      : subj == 2 && det == 2 ? BOUNCE_CLASS_TRANSIENT
					      : cls == 5	      ? BOUNCE_CLASS_PERMANENT
					      : cls == 4	      ? BOUNCE_CLASS_TRANSIENT
								      : BOUNCE_CLASS_UNDETERMINED;
		FUZZ_CHECK(c.type == want);
		/* our own words never say more than "General" without a code */
		if (cls < 0 && !remote)
			FUZZ_CHECK(c.subtype == BOUNCE_SUB_GENERAL);
		if (reply == NULL && cls < 0)
			FUZZ_CHECK(c.subtype == BOUNCE_SUB_GENERAL);
		/* the codes that decide alone */
		if (cls > 0 && subj == 6)
			FUZZ_CHECK(c.subtype == BOUNCE_SUB_CONTENT_REJECTED);
		if (cls > 0 && subj == 7)
			FUZZ_CHECK(c.subtype == BOUNCE_SUB_CONTENT_REJECTED || c.subtype == BOUNCE_SUB_POLICY_REJECTED);
		if (cls > 0 && subj == 1 && det == 1)
			FUZZ_CHECK(c.subtype == BOUNCE_SUB_NO_EMAIL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* one block: status, NUL, reply, NUL (the input may hold NULs of its own: they end a string early) */
	char *buf = malloc(size + 2);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	buf[size + 1] = '\0';
	char *sp = memchr(buf, ' ', size);
	if (sp != NULL) {
		*sp = '\0';
		check_one(buf, sp + 1);
		check_one(buf, NULL);
		*sp = ' ';
	} else {
		check_one(buf, NULL);
	}
	check_one(NULL, buf);
	free(buf);
	return 0;
}

/* test_util.h — helpers the table-driven parser tests share. Include after <cmocka.h>. */
#ifndef MAILWERK_TESTS_TEST_UTIL_H
#define MAILWERK_TESTS_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Input shown with its non-printable octets escaped, for failure messages. */
static inline const char *test_escape(const char *s, size_t len, char *buf, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

/* A heap copy of exactly len octets, so that AddressSanitizer sees any read past the end. */
static inline char *test_dup(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);
	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

#endif

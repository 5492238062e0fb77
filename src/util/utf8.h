/* utf8.h — telling well-formed UTF-8 (RFC 3629 §4) from the rest: for addresses with SMTPUTF8
 * (RFC 6531) and for log values. */
#ifndef MAILWERK_UTIL_UTF8_H
#define MAILWERK_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length of the well-formed sequence at p (avail > 0 octets): 1 for ASCII, 2 to 4 for UTF8-2,
 * UTF8-3, UTF8-4; 0 for a stray continuation octet, an overlong form (C0, C1, E0 80-9F, F0 80-8F), a
 * surrogate (ED A0-BF), a code point above U+10FFFF (F4 90-BF, F5-FF) or a sequence cut short. */
size_t utf8_len(const unsigned char *p, size_t avail);
/* Whether all of p's len octets are well-formed UTF-8 sequences. */
bool utf8_valid(const unsigned char *p, size_t len);

#endif

/* hex.h — the value of a hexadecimal digit (RFC 5234 HEXDIG, either case), for the decoders of
 * percent-encoding (RFC 3986 §2.1) and of the DMARC URI escapes. */
#ifndef MAILWERK_UTIL_HEX_H
#define MAILWERK_UTIL_HEX_H

/* 0..15, or -1 for an octet that is not a hexadecimal digit. */
static inline int hex_digit_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif

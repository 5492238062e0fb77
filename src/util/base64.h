/* base64.h — the base64 alphabet of RFC 4648 §4, shared by SASL (RFC 4954), MIME bodies (RFC 2045
 * §6.8) and DKIM keys and signatures (RFC 6376 §2.4). The decoders differ in what they allow around
 * the digits (SASL: nothing; DKIM: folding white space), so each keeps its loop and shares the digits. */
#ifndef MAILWERK_UTIL_BASE64_H
#define MAILWERK_UTIL_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Octets base64_encode needs for n input octets, the NUL included. */
#define BASE64_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* The value (0..63) of a base64 digit, or -1 for any other octet ('=' included). */
int base64_value(unsigned char c);

/* Encodes len octets into out, '='-padded and NUL-terminated; false when out_size is too small. */
bool base64_encode(const unsigned char *in, size_t len, char *out, size_t out_size);

/* RFC 4648 §5 base64url without padding (tokens in URLs and keys): len octets into out,
 * NUL-terminated; the digits written, or 0 when out_size is too small. */
size_t base64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size);
/* Decodes len base64url digits (no padding) into out; the octets, or -1 when malformed or out is too
 * small. */
long base64url_decode(const char *in, size_t len, unsigned char *out, size_t out_size);

/* The digit for the 6 low bits of v. */
char base64_digit(unsigned v);

#endif

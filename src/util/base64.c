/* base64.c — RFC 4648 §4 base64 digits and encoding, and §5 base64url (see base64.h). */
#include "util/base64.h"

#include <string.h>

static const char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

char base64_digit(unsigned v)
{
	return base64_alphabet[v & 63];
}

bool base64_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
	if (out_size < BASE64_ENCODED_SIZE(len))
		return false;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned long t = (unsigned long)in[i] << 16;
		if (i + 1 < len)
			t |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			t |= in[i + 2];
		out[o++] = base64_digit((unsigned)(t >> 18));
		out[o++] = base64_digit((unsigned)(t >> 12));
		out[o++] = i + 1 < len ? base64_digit((unsigned)(t >> 6)) : '=';
		out[o++] = i + 2 < len ? base64_digit((unsigned)t) : '=';
	}
	out[o] = '\0';
	return true;
}

/* RFC 4648 §5: the URL- and file-name-safe alphabet */
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64url_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
		size_t digits = i + 2 < len ? 4 : i + 1 < len ? 3 : 2;
		for (size_t k = 0; k < digits; k++) {
			if (o + 1 >= size)
				return 0;
			out[o++] = b64url[(v >> (18 - 6 * k)) & 63];
		}
	}
	out[o] = '\0';
	return o;
}

static int base64url_value(char c)
{
	const char *p = c != '\0' ? strchr(b64url, c) : NULL;
	return p != NULL ? (int)(p - b64url) : -1;
}

long base64url_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
	if (len % 4 == 1)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		unsigned v = 0;
		size_t digits = len - i < 4 ? len - i : 4;
		for (size_t k = 0; k < 4; k++) {
			int d = k < digits ? base64url_value(in[i + k]) : 0;
			if (d < 0)
				return -1;
			v = v << 6 | (unsigned)d;
		}
		for (size_t k = 0; k + 1 < digits; k++) {
			if (o >= size)
				return -1;
			out[o++] = (unsigned char)(v >> (16 - 8 * k));
		}
	}
	return (long)o;
}

/* base64.c — RFC 4648 §4 base64 digits and encoding (see base64.h). */
#include "util/base64.h"

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

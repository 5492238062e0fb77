/* fuzz_logfmt.c — libFuzzer harness for log_value_encode (src/util/log.c). The first input octet picks a
 * small destination size, the rest is the value. The whole encoding has no control octet, is UTF-8
 * with no C1 control, is one logfmt value (bare, or quoted with only \" \\ \xNN inside) and decodes
 * back to exactly the input; into the small destination it is NUL-terminated, within bounds, still one
 * value, and decodes to a prefix of the input (then "..." when something was left out). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* Well-formed UTF-8 (RFC 3629 §4) with no C0/C1 control and no DEL, checked by decoding code points:
 * written apart from the encoder's own table on purpose. */
static bool fuzz_utf8_clean(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned c = s[i], n, cp;
		if (c < 0x80) {
			n = 1;
			cp = c;
		} else if ((c & 0xe0) == 0xc0) {
			n = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n > len)
			return false;
		for (unsigned k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return false;
		i += n;
	}
	return true;
}

/* One logfmt value, read back strictly; false for anything that is not one. */
static bool fuzz_decode(const char *enc, size_t len, char *out, size_t *out_len)
{
	if (len == 0 || enc[0] != '"') {
		for (size_t i = 0; i < len; i++)
			if (enc[i] == ' ' || enc[i] == '=' || enc[i] == '"' || enc[i] == '\\')
				return false;
		memcpy(out, enc, len);
		*out_len = len;
		return true;
	}
	if (len < 2 || enc[len - 1] != '"')
		return false;
	size_t o = 0;
	for (size_t i = 1; i < len - 1; i++) {
		if (enc[i] == '"')
			return false; /* a quote not escaped would end the value early */
		if (enc[i] != '\\') {
			out[o++] = enc[i];
			continue;
		}
		if (i + 1 >= len - 1)
			return false; /* the escape would eat the closing quote */
		char e = enc[++i];
		if (e == '"' || e == '\\') {
			out[o++] = e;
			continue;
		}
		if (e != 'x' || i + 2 >= len - 1)
			return false;
		unsigned v = 0;
		for (int k = 1; k <= 2; k++) {
			char h = enc[i + k];
			if (h >= '0' && h <= '9')
				v = v << 4 | (unsigned)(h - '0');
			else if (h >= 'a' && h <= 'f')
				v = v << 4 | (unsigned)(h - 'a' + 10);
			else
				return false;
		}
		out[o++] = (char)v;
		i += 2;
	}
	*out_len = o;
	return true;
}

static void fuzz_clean(const char *enc, size_t len)
{
	FUZZ_CHECK(strlen(enc) == len);
	FUZZ_CHECK(fuzz_utf8_clean((const unsigned char *)enc, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t small = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	size_t full_size = LOG_VALUE_SIZE(len);
	char *full = malloc(full_size), *back = malloc(len + 4); /* the cut one may add "..." */
	char *cut = malloc(small > 0 ? small : 1); /* exact size: ASan sees a write past it */
	if (!full || !back || !cut)
		goto out;

	size_t flen = log_value_encode(full, full_size, in, len);
	FUZZ_CHECK(flen < full_size);
	fuzz_clean(full, flen);
	size_t blen;
	FUZZ_CHECK(fuzz_decode(full, flen, back, &blen));
	FUZZ_CHECK(blen == len && memcmp(back, in, len) == 0);
	/* quoted exactly when logfmt needs it (empty, a space, '=' or '"') or an escape is written */
	bool quoted = full[0] == '"';
	bool needs = len == 0 || memchr(in, ' ', len) || memchr(in, '=', len) || memchr(in, '"', len) ||
		     memchr(in, '\\', len) || !fuzz_utf8_clean((const unsigned char *)in, len);
	FUZZ_CHECK(quoted == needs);
	FUZZ_CHECK(quoted || (flen == len && memcmp(full, in, len) == 0));

	size_t clen = log_value_encode(cut, small, in, len);
	if (small == 0) {
		FUZZ_CHECK(clen == 0);
		goto out;
	}
	FUZZ_CHECK(clen < small);
	fuzz_clean(cut, clen);
	if (small > flen) {
		FUZZ_CHECK(clen == flen && memcmp(cut, full, flen + 1) == 0);
		goto out;
	}
	FUZZ_CHECK(fuzz_decode(cut, clen, back, &blen));
	FUZZ_CHECK(clen == 0 || (cut[0] == '"') == quoted);
	/* room for the marker: "..." plus the quotes around it */
	if (small >= 4 + (quoted ? 2u : 0u)) {
		FUZZ_CHECK(blen >= 3 && memcmp(back + blen - 3, "...", 3) == 0);
		blen -= 3;
	}
	/* a cut always leaves something out (the closing quote has its room kept) */
	FUZZ_CHECK((blen < len || len == 0) && memcmp(back, in, blen) == 0);
out:
	free(full);
	free(back);
	free(cut);
	return 0;
}

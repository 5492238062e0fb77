/* sasl.c — base64 and the SASL PLAIN message, both directions; no I/O, no state. */
#include "sasl/sasl.h"

#include <string.h>
#include <strings.h>

#include "util/base64.h"

enum sasl_mech sasl_mech_parse(const char *s, size_t len)
{
	if (len == 5 && strncasecmp(s, "PLAIN", 5) == 0)
		return SASL_MECH_PLAIN;
	if (len == 5 && strncasecmp(s, "LOGIN", 5) == 0)
		return SASL_MECH_LOGIN;
	return SASL_MECH_NONE;
}

bool sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t out_size, size_t *out_len_r)
{
	size_t o = 0;

	if (len == 1 && in[0] == '=') { /* RFC 4954 §4: "=" is an empty response */
		*out_len_r = 0;
		return true;
	}
	if (len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)in[i + j];
			if (c == '=') {
				/* padding only in the last quantum, only at its end, at most two */
				if (i + 4 != len || j < 2)
					return false;
				pad++;
				v[j] = 0;
				continue;
			}
			if (pad > 0)
				return false;
			v[j] = base64_value(c);
			if (v[j] < 0)
				return false;
		}
		unsigned long triple = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
				       ((unsigned long)v[2] << 6) | (unsigned long)v[3];
		size_t n = 3 - (size_t)pad;
		if (o + n > out_size)
			return false;
		out[o++] = (unsigned char)(triple >> 16);
		if (n > 1)
			out[o++] = (unsigned char)(triple >> 8);
		if (n > 2)
			out[o++] = (unsigned char)triple;
	}
	*out_len_r = o;
	return true;
}

bool sasl_plain_parse(const unsigned char *msg, size_t len, char user_r[SASL_FIELD_MAX + 1],
		      char pass_r[SASL_FIELD_MAX + 1], const char **error_r)
{
	const unsigned char *nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL) {
		*error_r = "expected authzid NUL authcid NUL password";
		return false;
	}
	size_t zlen = (size_t)(nul1 - msg);
	const unsigned char *user = nul1 + 1;
	size_t rest = len - zlen - 1;
	const unsigned char *nul2 = memchr(user, '\0', rest);
	if (nul2 == NULL) {
		*error_r = "expected authzid NUL authcid NUL password";
		return false;
	}
	size_t ulen = (size_t)(nul2 - user);
	const unsigned char *pass = nul2 + 1;
	size_t plen = rest - ulen - 1;
	if (memchr(pass, '\0', plen) != NULL) {
		*error_r = "NUL inside the password";
		return false;
	}
	if (ulen == 0 || plen == 0) {
		*error_r = "empty user name or password";
		return false;
	}
	if (zlen > SASL_FIELD_MAX || ulen > SASL_FIELD_MAX || plen > SASL_FIELD_MAX) {
		*error_r = "field longer than 255 octets";
		return false;
	}
	if (zlen != 0 && (zlen != ulen || memcmp(msg, user, ulen) != 0)) {
		*error_r = "acting as another user (authzid) is not allowed";
		return false;
	}
	memcpy(user_r, user, ulen);
	user_r[ulen] = '\0';
	memcpy(pass_r, pass, plen);
	pass_r[plen] = '\0';
	return true;
}

enum sasl_response sasl_plain_response(const char *b64, size_t len, char user_r[SASL_FIELD_MAX + 1],
				       char pass_r[SASL_FIELD_MAX + 1], const char **error_r)
{
	unsigned char msg[3 * SASL_FIELD_MAX + 3];
	size_t n;

	if (!sasl_b64_decode(b64, len, msg, sizeof(msg), &n))
		return SASL_RESPONSE_BAD_BASE64;
	bool ok = sasl_plain_parse(msg, n, user_r, pass_r, error_r);
	explicit_bzero(msg, sizeof(msg));
	return ok ? SASL_RESPONSE_OK : SASL_RESPONSE_BAD_PLAIN;
}

bool sasl_plain_encode(const char *user, const char *pass, char *out, size_t out_size)
{
	unsigned char msg[2 * SASL_FIELD_MAX + 2];
	size_t ul = strlen(user), pl = strlen(pass);

	if (ul > SASL_FIELD_MAX || pl > SASL_FIELD_MAX)
		return false;
	msg[0] = '\0'; /* RFC 4616 §2: an empty authzid, then authcid NUL passwd */
	memcpy(msg + 1, user, ul);
	msg[1 + ul] = '\0';
	memcpy(msg + 2 + ul, pass, pl);
	bool ok = base64_encode(msg, 2 + ul + pl, out, out_size);
	explicit_bzero(msg, sizeof(msg));
	return ok;
}

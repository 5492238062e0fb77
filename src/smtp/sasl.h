/* sasl.h — pure pieces of SASL for SMTP AUTH (RFC 4954) and, later, POP3 AUTH (RFC 5034):
 * mechanism names, base64 (RFC 4648 §4) and the PLAIN message (RFC 4616). LOGIN is two base64 lines. */
#ifndef MAILWERK_SMTP_SASL_H
#define MAILWERK_SMTP_SASL_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 4616 §2: each of authzid, authcid and passwd is at most 255 octets. */
#define SASL_FIELD_MAX 255

enum sasl_mech {
	SASL_MECH_NONE = 0,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

/* Case-insensitive mechanism name; SASL_MECH_NONE when unsupported. */
enum sasl_mech sasl_mech_parse(const char *s, size_t len);

/* Strict base64: alphabet, '=' padding only at the end, length a multiple of 4. "=" alone (RFC 4954
 * §4: an empty initial response) decodes to zero octets. false on any error or if out is too small. */
bool sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t out_size, size_t *out_len_r);
/* Writes NUL-terminated base64 of in to out; false if out is too small. */
bool sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t out_size);

/* RFC 4616 §2: [authzid] NUL authcid NUL passwd. An authzid other than empty or equal to authcid is
 * refused (we do not let one user act as another). user_r and pass_r get NUL-terminated copies. */
bool sasl_plain_parse(const unsigned char *msg, size_t len, char user_r[SASL_FIELD_MAX + 1],
		      char pass_r[SASL_FIELD_MAX + 1], const char **error_r);

#endif

/* sasl.h — the protocol-neutral pieces of SASL shared by SMTP AUTH (RFC 4954, server and client)
 * and POP3 AUTH (RFC 5034): mechanism names, base64 (RFC 4648 §4), the PLAIN message (RFC 4616)
 * and the field limits. LOGIN is two base64 lines. No I/O, no state. */
#ifndef MAILWERK_SASL_SASL_H
#define MAILWERK_SASL_SASL_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 4616 §2: each of authzid, authcid and passwd is at most 255 octets. */
#define SASL_FIELD_MAX 255

/* A response line carries base64 of at most three such fields and two NULs (1,024 octets). */
#define SASL_RESPONSE_LINE_MAX 1100

/* Room for the base64 of a PLAIN message of two full fields, NUL-terminated. */
#define SASL_PLAIN_B64_SIZE (((2 * SASL_FIELD_MAX + 2 + 2) / 3) * 4 + 1)

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

/* RFC 4616 §2: [authzid] NUL authcid NUL passwd. An authzid other than empty or equal to authcid is
 * refused (we do not let one user act as another). user_r and pass_r get NUL-terminated copies. */
bool sasl_plain_parse(const unsigned char *msg, size_t len, char user_r[SASL_FIELD_MAX + 1],
		      char pass_r[SASL_FIELD_MAX + 1], const char **error_r);

enum sasl_response {
	SASL_RESPONSE_OK = 0,
	SASL_RESPONSE_BAD_BASE64, /* not base64: the client may try again */
	SASL_RESPONSE_BAD_PLAIN,  /* decoded, but not a PLAIN message we accept (*error_r says why) */
};
/* A PLAIN response line as the client sent it (base64); the decoded copy is wiped before return. */
enum sasl_response sasl_plain_response(const char *b64, size_t len, char user_r[SASL_FIELD_MAX + 1],
				       char pass_r[SASL_FIELD_MAX + 1], const char **error_r);
/* The client side: base64 of NUL user NUL pass (RFC 4616 §2) into out (SASL_PLAIN_B64_SIZE will do);
 * false when a field is over SASL_FIELD_MAX or out is too small. */
bool sasl_plain_encode(const char *user, const char *pass, char *out, size_t out_size);

#endif

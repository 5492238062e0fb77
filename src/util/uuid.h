/* uuid.h — random (version 4) UUIDs, RFC 9562 §5.4, in lower-case text: the ids of API objects
 * (emails, keys, webhooks, suppressions), shaped as Resend's are. */
#ifndef MAILWERK_UTIL_UUID_H
#define MAILWERK_UTIL_UUID_H

#include <stdbool.h>

#define UUID_TEXT_LEN 36

/* The text of the UUID in b with its version (4: random, 8: custom, RFC 9562 §5.8) and variant
 * bits set, lower case. */
void uuid_format(const unsigned char b[16], unsigned version, char id_r[UUID_TEXT_LEN + 1]);
/* A new UUID in id_r; false when there is no randomness (OpenSSL's RAND_bytes failed). */
bool uuid_v4_new(char id_r[UUID_TEXT_LEN + 1]);

#endif

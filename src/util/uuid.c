/* uuid.c — version 4 UUIDs from OpenSSL's random generator (uuid.h). */
#include "util/uuid.h"

#include <openssl/rand.h>
#include <stdio.h>

void uuid_format(const unsigned char b[16], unsigned version, char id_r[UUID_TEXT_LEN + 1])
{
	unsigned char v6 = (unsigned char)((b[6] & 0x0f) | (version << 4)); /* RFC 9562 §4.2 */
	unsigned char v8 = (unsigned char)((b[8] & 0x3f) | 0x80);           /* §4.1: variant 10 */
	snprintf(id_r, UUID_TEXT_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], v6, b[7], v8, b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

bool uuid_v4_new(char id_r[UUID_TEXT_LEN + 1])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return false;
	uuid_format(b, 4, id_r); /* RFC 9562 §5.4 */
	return true;
}

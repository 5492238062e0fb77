/* acme_hello.c — ALPN and SNI extension readers (acme_hello.h). */
#include "acme/acme_hello.h"

#include <string.h>

bool acme_hello_alpn_offers(const unsigned char *ext, size_t len, const char *proto)
{
	/* opaque ProtocolName<1..2^8-1>; ProtocolName protocol_name_list<2..2^16-1> */
	if (ext == NULL || len < 2 || (size_t)((ext[0] << 8) | ext[1]) != len - 2 || len - 2 < 2)
		return false;
	size_t want = strlen(proto);
	bool found = false;
	for (size_t i = 2; i < len;) {
		size_t n = ext[i];
		if (n == 0 || n > len - i - 1)
			return false; /* an empty name, or one that runs past the list */
		if (n == want && memcmp(ext + i + 1, proto, n) == 0)
			found = true;
		i += 1 + n;
	}
	return found;
}

bool acme_hello_server_name(const unsigned char *ext, size_t len, char *out, size_t size)
{
	/* ServerName server_name_list<1..2^16-1>: NameType (1 octet, host_name(0)), HostName<1..2^16-1> */
	if (ext == NULL || len < 2 || (size_t)((ext[0] << 8) | ext[1]) != len - 2 || len - 2 < 3 || size == 0)
		return false;
	bool have = false;
	for (size_t i = 2; i < len;) {
		if (len - i < 3)
			return false;
		unsigned type = ext[i];
		size_t n = (size_t)((ext[i + 1] << 8) | ext[i + 2]);
		if (n == 0 || n > len - i - 3)
			return false;
		/* RFC 6066 §3: no more than one name of the same type */
		if (type == 0) {
			if (have || n > 253 || n >= size)
				return false;
			for (size_t k = 0; k < n; k++) {
				unsigned char c = ext[i + 3 + k];
				if (c >= 'A' && c <= 'Z')
					c = (unsigned char)(c - 'A' + 'a');
				if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
					return false;
				out[k] = (char)c;
			}
			out[n] = '\0';
			have = true;
		}
		i += 3 + n;
	}
	return have;
}

/* gzip.h — one buffer compressed into the gzip format (RFC 1952, zlib), for the attachments and
 * bodies of aggregate reports (DMARC, TLS-RPT). */
#ifndef MAILWERK_UTIL_GZIP_H
#define MAILWERK_UTIL_GZIP_H

#include <stdbool.h>
#include <stddef.h>

/* Compresses in[0..len) at the best level; the header's MTIME stays 0 ("no time stamp is
 * available"), so the same input compresses to the same octets. *out_r is the caller's to free.
 * false when out of memory. */
bool gzip_compress(const char *in, size_t len, unsigned char **out_r, size_t *len_r);

#endif

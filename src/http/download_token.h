/* download_token.h — the signature of a download URL (a received email's raw message or one of its
 * attachments): an HMAC-SHA256 over the path and the expiry under the server's URL secret, so that
 * the URL works without an API key, as Resend's signed URLs do, until it expires, and for that path
 * only. The secret is the one-click unsubscribe's; the MAC's input starts with a label of its own,
 * so that no unsubscribe token is a download signature or the other way round. Pure. */
#ifndef MAILWERK_HTTP_DOWNLOAD_TOKEN_H
#define MAILWERK_HTTP_DOWNLOAD_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOWNLOAD_SECRET_LEN 32
#define DOWNLOAD_URL_LIFETIME_S 3600
/* "expires=" 20 digits "&signature=" 43 base64url digits */
#define DOWNLOAD_QUERY_MAX 96

/* "expires=UNIX&signature=MAC" for path (as in the request line, without the query); false when it
 * does not fit. */
bool download_token_query(const unsigned char secret[DOWNLOAD_SECRET_LEN], const char *path, int64_t expires_s,
			  char *out, size_t size);
/* Whether query holds a signature of ours for path (compared in constant time) that has not
 * expired at now_s. */
bool download_token_check(const unsigned char secret[DOWNLOAD_SECRET_LEN], const char *path, const char *query,
			  int64_t now_s);

#endif

/* unsubscribe_token.h — the signed part of a one-click unsubscribe URL (RFC 8058): which email,
 * which sending domain and which recipient, with an HMAC-SHA256 over them under the server's
 * secret, so that nobody can unsubscribe an address by guessing a URL. Pure. */
#ifndef MAILWERK_HTTP_UNSUBSCRIBE_TOKEN_H
#define MAILWERK_HTTP_UNSUBSCRIBE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define UNSUBSCRIBE_SECRET_LEN 32
/* "<payload>.<mac>", both base64url: room for an id, a domain and an address */
#define UNSUBSCRIBE_TOKEN_MAX 800

struct unsubscribe_target {
	char email_id[37];
	char domain[256];
	char addr[256];
};

/* The token for t (NUL-terminated into out); false when it does not fit. */
bool unsubscribe_token_make(const unsigned char secret[UNSUBSCRIBE_SECRET_LEN], const struct unsubscribe_target *t,
			    char *out, size_t size);
/* Checks token (len octets): true and t_r filled when its MAC is ours (compared in constant time)
 * and its payload well formed; false for anything else, with a reason for the log. */
bool unsubscribe_token_check(const unsigned char secret[UNSUBSCRIBE_SECRET_LEN], const char *token, size_t len,
			     struct unsubscribe_target *t_r, const char **why_r);

#endif

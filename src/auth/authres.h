/* authres.h — the Authentication-Results header field (RFC 8601): composing ours, and removing
 * fields that claim to come from us before we add it (§5). Pure. */
#ifndef MAILWERK_AUTH_AUTHRES_H
#define MAILWERK_AUTH_AUTHRES_H

#include <stddef.h>

#define AUTHRES_PROPS_MAX 4

struct authres_prop {
	const char *name;  /* "smtp.mailfrom", "header.d", ... (RFC 8601 §2.3 ptype.property) */
	const char *value; /* NULL or "" leaves the property out */
};

struct authres_method {
	const char *method;  /* "spf", "dkim", "dmarc" (RFC 8601 §2.7) */
	const char *result;  /* "pass", "fail", "none", ... */
	const char *reason;  /* NULL, or a reason= (RFC 8601 §2.2), e.g. "body hash mismatch" */
	struct authres_prop props[AUTHRES_PROPS_MAX];
};

/* "Authentication-Results: <authserv_id>;\r\n\t<method>=<result> ...;\r\n\t...\r\n", a malloc'd
 * complete header field, one result per folded line; "; none" when n is 0 (§2.2). Values that are
 * not RFC 2045 tokens (or, for smtp.* and header.* properties, addresses and domains) are written as
 * quoted strings, with anything unprintable left out. NULL when out of memory. */
char *authres_format(const char *authserv_id, const struct authres_method *m, size_t n);

/* RFC 8601 §5: a field whose authserv-id equals ours (case-insensitive) is removed from the header
 * section of msg (in place); fields of other authserv-ids are kept. Returns the new length. */
size_t authres_strip(char *msg, size_t len, const char *authserv_id);

#endif

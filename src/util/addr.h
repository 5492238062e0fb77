/* addr.h — RFC 5321 §4.1.2 paths and mailboxes: the one address parser for SMTP, headers and the API. */
#ifndef MAILWERK_UTIL_ADDR_H
#define MAILWERK_UTIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 §4.5.3.1: local part 64 octets, domain 255 octets, path 256 octets including "<" and ">". */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256
/* "local@domain" without the brackets fits in the path limit. */
#define ADDR_TEXT_MAX (ADDR_PATH_MAX - 2)

enum addr_flags {
	ADDR_ALLOW_UTF8 = 1 << 0,       /* RFC 6531 §3.3: UTF-8 in local part and domain (SMTPUTF8 given) */
	ADDR_ALLOW_NULL = 1 << 1,       /* "<>" is accepted (MAIL FROM, RFC 5321 §4.5.5) */
	ADDR_ALLOW_POSTMASTER = 1 << 2, /* "<Postmaster>" without a domain (RCPT TO, RFC 5321 §4.1.1.3) */
};

enum addr_error {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,   /* not a path / mailbox */
	ADDR_ERR_TOO_LONG, /* over one of the §4.5.3.1 limits */
	ADDR_ERR_UTF8,     /* 8-bit octets where UTF-8 is not allowed, or invalid UTF-8 */
};

struct addr {
	/* "local@domain" as it appeared on the wire (quotes kept, source route dropped);
	 * "" for the null path; "Postmaster" for a bare postmaster. NUL-terminated. */
	char text[ADDR_TEXT_MAX + 1];
	size_t local_len;  /* octets of the local part at the start of text */
	size_t domain_off; /* offset of the domain in text (== strlen(text) when there is none) */
	bool is_null;      /* "<>" */
	bool is_utf8;      /* contains octets >= 0x80 */
	bool is_literal;   /* the domain is an address literal: [1.2.3.4] or [IPv6:...] */
};

/* Parses a path at the start of s ("<...>", with an optional obsolete source route "@a,@b:" that is
 * dropped per RFC 5321 §4.1.2 and Appendix C). *consumed_r is the number of octets used, so the caller
 * can parse the parameters after it. */
enum addr_error addr_parse_path(const char *s, size_t len, unsigned flags, struct addr *a_r,
				size_t *consumed_r, const char **error_r);

/* Parses exactly one bare mailbox "local@domain" (no brackets), the whole of s. For the CLI and the API. */
enum addr_error addr_parse_mailbox(const char *s, size_t len, unsigned flags, struct addr *a_r,
				   const char **error_r);

/* Validates a domain (RFC 5321 §4.1.2 Domain, or UTF-8 U-labels when ADDR_ALLOW_UTF8) or an
 * address literal; used for EHLO/HELO arguments and by the mailbox parser. */
enum addr_error addr_parse_domain(const char *s, size_t len, unsigned flags, const char **error_r);

static inline const char *addr_domain(const struct addr *a)
{
	return a->text + a->domain_off;
}

const char *addr_error_str(enum addr_error e);

#endif

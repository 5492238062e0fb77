/* dmarc_from.h — the Author Domain(s) of a message (RFC 9989 §3.2.2, §5.3.1): the domains of the
 * mailboxes in its RFC5322.From header fields, and the normal form DMARC compares domains in.
 * Pure, no allocation; the header section is hostile input.
 *
 * Syntax read: RFC 5322 §3.6.2 From with the address-list of §3.4 (RFC 6854 allows groups in From):
 * display names of atoms, quoted strings (with escaped quotes and commas), dots (obs-phrase) and
 * RFC 2047 encoded words (as atoms); comments anywhere CFWS may be, nested, with quoted pairs;
 * angle addresses with an obsolete source route (ignored); groups, empty ones too; the obsolete
 * empty list elements (",,"); CFWS between the dots of obs-local-part and obs-domain; folded lines
 * (CRLF or bare LF); UTF-8 (RFC 6532). One leniency: when an angle address follows, the display
 * name before it may hold unquoted "@" and "." (From: ceo@bank.example <x@y.example>), since that is
 * how mail readers read it: the domain is the one in the angle brackets.
 *
 * Domains come back in DMARC's normal form: ASCII lower case, U-labels converted to A-labels
 * (RFC 9989 §5.3.1, RFC 5890 §2.3; RFC 3492 Punycode, without IDNA2008's mapping or NFC check: a
 * label is encoded as the message spells it), and a valid host name (RFC 1123 §2.1). Mailboxes at
 * address literals or at names that are not host names cannot have a DMARC policy: they are
 * counted and left out.
 *
 * What the evaluator does with the result (dmarc.h, dmarc_msg_*), per RFC 9989 §5.3.1 and §11.5:
 * no From field, a From field that does not parse, or no usable domain → permerror, no DNS;
 * exactly one domain → evaluated; several distinct domains (in one field or in several) → each is
 * evaluated, at most DMARC_FROM_DOMAINS_MAX, and the strictest failing result wins. Several From
 * fields break RFC 5322 §3.6 (one From field): their count is reported for the caller to refuse such
 * messages; their domains are evaluated all the same, so that adding a From field never removes a
 * domain from DMARC's view. */
#ifndef MAILWERK_AUTH_DMARC_FROM_H
#define MAILWERK_AUTH_DMARC_FROM_H

#include <stdbool.h>
#include <stddef.h>

#include "net/dns_parse.h"

/* Distinct author domains kept; RFC 9989 §11.5 asks to bound how many are processed. */
#define DMARC_FROM_DOMAINS_MAX 4

enum dmarc_from_error {
	DMARC_FROM_OK = 0,
	DMARC_FROM_NONE,      /* the header section has no From field */
	DMARC_FROM_SYNTAX,    /* a From field that does not parse (domains before the error are kept) */
	DMARC_FROM_NO_DOMAIN, /* From fields parsed, but no mailbox has a usable domain */
	DMARC_FROM_BAD_DOMAIN, /* dmarc_from_domain: not a domain name DMARC can look up */
};
const char *dmarc_from_error_str(enum dmarc_from_error e);

struct dmarc_from {
	size_t fields;    /* From header fields seen */
	size_t mailboxes; /* mailboxes in them */
	size_t unusable;  /* mailboxes whose domain is an address literal or not a host name */
	size_t count;     /* distinct author domains kept, in order of appearance */
	bool truncated;   /* more distinct domains than DMARC_FROM_DOMAINS_MAX */
	char domains[DMARC_FROM_DOMAINS_MAX][DNS_HOST_SIZE];
};

/* Reads every From field of the header section msg[0..len) (util/header.h; the body is not read). */
enum dmarc_from_error dmarc_from_parse(const char *msg, size_t len, struct dmarc_from *r, const char **error_r);

/* Adds the mailboxes of one From field value (after the colon, possibly folded) to *r, which the
 * caller zeroed; r->fields is not touched. */
enum dmarc_from_error dmarc_from_value_parse(const char *value, size_t len, struct dmarc_from *r,
					     const char **error_r);

/* A domain (an Author Domain, SPF domain or DKIM d=; ASCII or UTF-8, one trailing dot allowed) in
 * the normal form above, into out (DNS_HOST_SIZE octets). DMARC_FROM_OK or DMARC_FROM_BAD_DOMAIN. */
enum dmarc_from_error dmarc_from_domain(const char *s, size_t len, char *out, const char **error_r);

#endif

/* cli_dkim_dns.h — whether DNS publishes a DKIM key: the check `mailwerk dkim list` and
 * `mailwerk status` share. */
#ifndef MAILWERK_CLI_DKIM_DNS_H
#define MAILWERK_CLI_DKIM_DNS_H

#include <stddef.h>

#include <openssl/evp.h>

struct cli_dns;

enum cli_dkim_dns {
	CLI_DKIM_DNS_MATCH = 0, /* the record at SELECTOR._domainkey.DOMAIN holds the key */
	CLI_DKIM_DNS_MISMATCH,  /* a record is there: another key, revoked (empty p=) or unreadable */
	CLI_DKIM_DNS_MISSING,   /* no TXT record at the name */
	CLI_DKIM_DNS_ERROR,     /* the lookup failed (a temporary failure, bogus DNSSEC): not known */
};
/* "match", "mismatch", "missing", "error" (the words of `dkim list`'s dns=) */
const char *cli_dkim_dns_str(enum cli_dkim_dns s);

/* Looks up selector's key record for domain (RFC 6376 §3.6.2.1) and compares it with key. A note
 * for the operator goes to why ("" when there is none): what is wrong with the record, or why the
 * lookup failed. */
enum cli_dkim_dns cli_dkim_dns_check(struct cli_dns *d, const char *domain, const char *selector, const EVP_PKEY *key,
				     char *why, size_t why_size);

#endif

/* cli_dkim_dns.c — a DKIM key against its DNS record (cli_dkim_dns.h). */
#include "cli/cli_dkim_dns.h"

#include <stdio.h>
#include <string.h>

#include "auth/dkim_key.h"
#include "cli/cli_dns.h"
#include "net/dns_parse.h"

const char *cli_dkim_dns_str(enum cli_dkim_dns s)
{
	switch (s) {
	case CLI_DKIM_DNS_MATCH: return "match";
	case CLI_DKIM_DNS_MISMATCH: return "mismatch";
	case CLI_DKIM_DNS_MISSING: return "missing";
	case CLI_DKIM_DNS_ERROR: return "error";
	}
	return "?";
}

/* Adds a note to why, after "; " when there is one already. */
static void cli_dkim_dns_note(char *why, size_t size, const char *note)
{
	size_t len = strlen(why);
	if (len + 1 < size)
		snprintf(why + len, size - len, "%s%s", len > 0 ? "; " : "", note);
}

enum cli_dkim_dns cli_dkim_dns_check(struct cli_dns *d, const char *domain, const char *selector, const EVP_PKEY *key,
				     char *why, size_t why_size)
{
	char name[DNS_HOST_SIZE + 80];
	struct cli_answer a;
	enum cli_dkim_dns r;
	why[0] = '\0';
	snprintf(name, sizeof(name), "%s._domainkey.%s", selector, domain);
	if (cli_dns_ask(d, name, DNS_RRTYPE_TXT, &a) != 0)
		return CLI_DKIM_DNS_ERROR;
	if (a.status == DNS_STATUS_TEMPFAIL || a.status == DNS_STATUS_BOGUS) {
		r = CLI_DKIM_DNS_ERROR;
		cli_dkim_dns_note(why, why_size, a.why);
	} else if (a.count == 0) {
		r = CLI_DKIM_DNS_MISSING;
	} else {
		/* RFC 6376 §3.6.2.2: one key record is expected at the name */
		struct dkim_key_record rec;
		const char *err;
		if (dkim_key_record_parse(a.items[0], strlen(a.items[0]), &rec, &err) != DKIM_KEY_OK) {
			r = CLI_DKIM_DNS_MISMATCH;
			cli_dkim_dns_note(why, why_size, err);
		} else {
			r = dkim_key_record_matches(&rec, key) ? CLI_DKIM_DNS_MATCH : CLI_DKIM_DNS_MISMATCH;
			if (rec.revoked)
				cli_dkim_dns_note(why, why_size, "revoked: empty p=");
			dkim_key_record_clear(&rec);
		}
		if (a.count > 1) {
			char n[64];
			snprintf(n, sizeof(n), "%zu TXT records at the name", a.count);
			cli_dkim_dns_note(why, why_size, n);
		}
	}
	cli_answer_clear(&a);
	return r;
}

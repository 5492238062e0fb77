/* cli_tls_dane.h — the DANE part of `mailwerk tls check` (RFC 7672): per MX host, the DNSSEC state
 * of the MX and address answers, the TLSA records and whether each is usable, the decision
 * delivery would take (delivery/host_tls.h, the same inputs the pool gives it, the MTA-STS policy
 * included), and with probe a live STARTTLS connection checked against those records with
 * OpenSSL's DANE API (delivery/dane.h), the way the SMTP client checks it. */
#ifndef MAILWERK_CLI_CLI_TLS_DANE_H
#define MAILWERK_CLI_CLI_TLS_DANE_H

#include <stdbool.h>

#include "delivery/tls_decide.h"

struct cli_dns;

struct cli_tls_dane_outcome {
	unsigned hosts;        /* MX hosts looked at */
	unsigned dane_hosts;   /* of them, with a DANE decision (usable TLSA records) */
	unsigned probe_failed; /* probes that failed where the decision asks for authentication, or
				* could not speak TLS where it asks for TLS */
};

/* The domain's MTA-STS policy as the cache answered, for the decision (RFC 8461: DANE beats it). */
struct cli_tls_sts {
	enum tls_decide_sts_state state;
	const struct mtasts_policy *policy; /* NULL: none known */
};

/* Prints the part for domain on d's loop and resolver (d->conf is the setup). */
void cli_tls_dane(struct cli_dns *d, const char *domain, const struct cli_tls_sts *sts, bool probe,
		  struct cli_tls_dane_outcome *out_r);

#endif

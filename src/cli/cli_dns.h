/* cli_dns.h — DNS for the commands that ask it (resolve, spf, dkim, dns): the resolver chosen the
 * same way everywhere (--resolver, else [dns] resolver of the setup when there is one, else the
 * system's), and the auth evaluators run to their end on a private event loop. */
#ifndef MAILWERK_CLI_CLI_DNS_H
#define MAILWERK_CLI_CLI_DNS_H

#include <stdbool.h>

#include "auth/auth_dns.h"

struct conf;
struct dns;
struct event_base;

struct cli_dns {
	struct event_base *base;
	struct dns *dns;
	struct conf *conf; /* the setup's, or NULL when there is none */
};

/* Checks a --resolver value; prints the error and returns false when it is not ADDR[@PORT]. */
bool cli_dns_resolver_ok(const char *resolver);

/* conf_path: -c (NULL: the default setup if it exists; the command must also work without one).
 * resolver: --resolver or NULL. timeout: seconds per lookup (0: the default). 0, or -1 after
 * printing the error. */
int cli_dns_open(struct cli_dns *d, const char *conf_path, const char *resolver, unsigned timeout);
/* The same with the resolver and trust anchor of a setup already loaded (with its -o values);
 * d->conf stays NULL. */
int cli_dns_open_conf(struct cli_dns *d, const struct conf *c, const char *resolver, unsigned timeout);
void cli_dns_close(struct cli_dns *d);

/* Runs step(eval) to its end, answering from DNS. 0, or -1 when it asked more questions than any
 * evaluation may (the result is then not final). */
int cli_dns_run(struct cli_dns *d, auth_step_fn *step, void *eval);

/* Prints "NAME. IN TXT ( "..." "..." )": the text in strings of at most 255 octets (RFC 1035 §3.3;
 * SPF and DKIM join them, RFC 7208 §3.3, RFC 6376 §3.6.2.2). */
void cli_dns_txt_line(const char *name, const char *txt);

/* The answer to one question, as text: TXT records (strings joined), "PREF HOST" for MX, addresses
 * for A/AAAA, names for PTR. */
struct cli_answer {
	enum dns_status status;
	char why[256];  /* for TEMPFAIL and BOGUS */
	size_t count;
	char **items;
};
/* Asks name/rrtype. 0, or -1 after printing an error (out of memory). */
int cli_dns_ask(struct cli_dns *d, const char *name, int rrtype, struct cli_answer *a_r);
void cli_answer_clear(struct cli_answer *a);

#endif

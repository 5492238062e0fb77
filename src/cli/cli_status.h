/* cli_status.h — what the two halves of `mailwerk status` share: cli_status.c asks the server and
 * prints its activity, cli_status_health.c prints what tells of its health (recent deliveries,
 * certificates, free space) and looks up the DNS records of its DKIM keys. */
#ifndef MAILWERK_CLI_STATUS_H
#define MAILWERK_CLI_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* s for a terminal: printable ASCII only, the rest as '?'; cut to size. */
const char *cli_status_clean(const char *s, char *buf, size_t size);
/* A string member of the answer, cleaned; "-" when there is none. */
const char *cli_status_str(json_t *o, const char *key, char *buf, size_t size);
long long cli_status_int(json_t *o, const char *key);
/* "3d 4h", "4h 12m", "12m 5s", "45s" */
void cli_status_duration(long long secs, char *buf, size_t size);

/* The health lines of the text form, from the server's answer st. */
void cli_status_health_text(json_t *st);

struct conf;

/* How the DKIM keys' records are looked up. */
struct cli_status_dns {
	bool skip;             /* --no-dns */
	const char *resolver;  /* --resolver, or NULL: [dns] resolver of the setup, else the system's */
	const char *conf_path; /* -c, or NULL */
};
/* Gives each DKIM key in the answer st "dns" (cli_dkim_dns.h's word, null when not looked up) and
 * "dns_note" (what is wrong, why the lookup failed; null for nothing), comparing the record with
 * the key's public half in c's data_dir. Every lookup is bounded and all of them together too. */
void cli_status_dkim_check(const struct conf *c, const struct cli_status_dns *o, json_t *st);

#endif

/* cli_status_health.c — the lines of `mailwerk status` that tell of the server's health rather than
 * its activity: the deliveries' outcomes of the last minute and the last hour, the TLS
 * certificates served and their days to expiry, the free space in data_dir, and whether DNS
 * publishes each active DKIM key of the local domains.
 *
 * The server lists the keys; their records are looked up here, after its answer (see
 * server/control_status.c for why), with the resolver `dkim list` uses and its comparison
 * (cli_dkim_dns.h), against the public half in the key store. */
#include "cli/cli_status.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli_dkim_dns.h"
#include "cli/cli_dns.h"
#include "conf/conf.h"
#include "keys/dkim_store.h"
#include "util/date.h"

/* A lookup waits at most this long, and all of them together stop being made after the second:
 * the rest are then "error" (not looked up). unbound's own retries fit in the first. */
#define CLI_STATUS_DNS_TIMEOUT_SECONDS 5
#define CLI_STATUS_DNS_BUDGET_MS (20 * 1000)

/* "local 2 delivered, 0 deferred, 0 failed; remote 1 delivered, 3 deferred, 1 failed" */
static void cli_status_outcomes(const char *label, json_t *w)
{
	static const char *const routes[] = {"local", "remote"};
	printf("%-13s", label);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		json_t *r = json_object_get(w, routes[i]);
		printf("%s%s %lld delivered, %lld deferred, %lld failed", i > 0 ? "; " : "", routes[i],
		       cli_status_int(r, "delivered"), cli_status_int(r, "deferred"), cli_status_int(r, "failed"));
	}
	putchar('\n');
}

/* "certificate: mail.example.org (mail.example.org, example.org), until 2027-01-01T00:00:00Z,
 * 120 days left", or "..., EXPIRED" */
static void cli_status_cert(json_t *c)
{
	char subject[128], file[256], until[40], err[128];
	if (json_object_get(c, "error") != NULL) {
		printf("certificate: %s: %s\n", cli_status_str(c, "file", file, sizeof(file)),
		       cli_status_str(c, "error", err, sizeof(err)));
		return;
	}
	printf("certificate: %s (", cli_status_str(c, "subject", subject, sizeof(subject)));
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(c, "names"), i, n) {
		char name[128];
		printf("%s%s", i > 0 ? ", " : "", cli_status_clean(json_is_string(n) ? json_string_value(n) : "?", name,
								   sizeof(name)));
	}
	long long days = cli_status_int(c, "days_left");
	printf("), until %s, ", cli_status_str(c, "not_after", until, sizeof(until)));
	if (json_is_true(json_object_get(c, "expired")))
		puts("EXPIRED");
	else
		printf("%lld day%s left\n", days, days == 1 ? "" : "s");
}

/* 1536 as "1.5 KiB" (IEC 80000-13 binary prefixes) */
static const char *cli_status_octets(json_t *v, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double n = (double)json_integer_value(v);
	size_t u = 0;
	while (n >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		n /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%.0f B", n);
	else
		snprintf(buf, size, "%.1f %s", n, units[u]);
	return buf;
}

/* "disk:        31.2 GiB free of 49.1 GiB in /var/lib/mailwerk (min_free_space 100.0 MiB)" */
static void cli_status_disk(json_t *d)
{
	char path[256], err[128], free_s[32], total_s[32], min_s[32];
	json_t *min = json_object_get(d, "min_free_space");
	cli_status_str(d, "path", path, sizeof(path));
	if (!json_is_integer(json_object_get(d, "free_bytes"))) {
		printf("disk:        %s: %s\n", path, cli_status_str(d, "error", err, sizeof(err)));
		return;
	}
	printf("disk:        %s free of %s in %s", cli_status_octets(json_object_get(d, "free_bytes"), free_s, sizeof(free_s)),
	       cli_status_octets(json_object_get(d, "total_bytes"), total_s, sizeof(total_s)), path);
	if (json_is_true(json_object_get(d, "below_min_free_space")))
		printf(", BELOW min_free_space %s: new mail is refused\n", cli_status_octets(min, min_s, sizeof(min_s)));
	else if (json_integer_value(min) > 0)
		printf(" (min_free_space %s)\n", cli_status_octets(min, min_s, sizeof(min_s)));
	else
		puts(" (no min_free_space)");
}

/* "dkim:        example.org s2026 rsa 2048: dns match", one line per key */
static void cli_status_dkim(json_t *dk)
{
	char err[256];
	json_t *keys = json_object_get(dk, "keys");
	size_t i;
	json_t *k;
	if (json_array_size(keys) == 0)
		puts("dkim:        no active keys");
	json_array_foreach(keys, i, k) {
		char dom[256], sel[64], alg[16], dns[16], note[256];
		printf("%-13s%s %s %s %lld: ", i == 0 ? "dkim:" : "", cli_status_str(k, "domain", dom, sizeof(dom)),
		       cli_status_str(k, "selector", sel, sizeof(sel)), cli_status_str(k, "algorithm", alg, sizeof(alg)),
		       cli_status_int(k, "bits"));
		if (!json_is_string(json_object_get(k, "dns")))
			puts("dns not checked");
		else if (json_is_string(json_object_get(k, "dns_note")))
			printf("dns %s (%s)\n", cli_status_str(k, "dns", dns, sizeof(dns)),
			       cli_status_str(k, "dns_note", note, sizeof(note)));
		else
			printf("dns %s\n", cli_status_str(k, "dns", dns, sizeof(dns)));
	}
	if (json_is_true(json_object_get(dk, "more")))
		printf("%-13s... more keys, not listed (mailwerk dkim list shows them all)\n", "");
	if (json_object_get(dk, "error") != NULL)
		printf("%-13s%s\n", "", cli_status_str(dk, "error", err, sizeof(err)));
}

void cli_status_health_text(json_t *st)
{
	json_t *d = json_object_get(st, "deliveries");
	if (json_is_object(d)) {
		cli_status_outcomes("last minute:", json_object_get(d, "last_minute"));
		cli_status_outcomes("last hour:", json_object_get(d, "last_hour"));
	}
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(st, "certificates"), i, c)
		cli_status_cert(c);
	json_t *acme = json_object_get(st, "acme");
	if (json_is_object(acme)) {
		char next[40], last[256];
		long long failures = cli_status_int(acme, "failures");
		printf("acme:        next attempt %s", json_is_string(json_object_get(acme, "next_attempt"))
							? cli_status_str(acme, "next_attempt", next, sizeof(next))
							: "now");
		if (failures > 0)
			printf(", %lld failure%s in a row: %s", failures, failures == 1 ? "" : "s",
			       cli_status_str(acme, "last_error", last, sizeof(last)));
		putchar('\n');
	}
	json_t *rpt = json_object_get(st, "tlsrpt");
	if (json_is_object(rpt)) {
		char when[40], dom[256], last[400];
		if (json_is_string(json_object_get(rpt, "last_sent")))
			printf("tls reports: last sent %s to %s", cli_status_str(rpt, "last_sent", when, sizeof(when)),
			       cli_status_str(rpt, "last_sent_domain", dom, sizeof(dom)));
		else
			printf("tls reports: none sent yet");
		if (json_is_string(json_object_get(rpt, "last_error")))
			printf("; last failure %s: %s", cli_status_str(rpt, "last_failed", when, sizeof(when)),
			       cli_status_str(rpt, "last_error", last, sizeof(last)));
		putchar('\n');
	}
	if (json_is_object(json_object_get(st, "dkim")))
		cli_status_dkim(json_object_get(st, "dkim"));
	if (json_is_object(json_object_get(st, "disk")))
		cli_status_disk(json_object_get(st, "disk"));
}

/* ---- the DKIM keys' records ---- */

static void cli_status_dkim_set(json_t *k, const char *dns, const char *note)
{
	json_object_set_new(k, "dns", dns != NULL ? json_string(dns) : json_null());
	json_object_set_new(k, "dns_note", note != NULL && note[0] != '\0' ? json_string(note) : json_null());
}

void cli_status_dkim_check(const struct conf *c, const struct cli_status_dns *o, json_t *st)
{
	json_t *keys = json_object_get(json_object_get(st, "dkim"), "keys");
	if (!json_is_array(keys) || json_array_size(keys) == 0)
		return;
	struct cli_dns d;
	bool open = !o->skip && cli_dns_open(&d, o->conf_path, o->resolver, CLI_STATUS_DNS_TIMEOUT_SECONDS) == 0;
	int64_t deadline = date_mono_ms() + CLI_STATUS_DNS_BUDGET_MS;
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k) {
		const char *dom = json_string_value(json_object_get(k, "domain"));
		const char *sel = json_string_value(json_object_get(k, "selector"));
		char err[512], note[256];
		if (o->skip) {
			cli_status_dkim_set(k, NULL, NULL);
			continue;
		}
		if (!open) {
			cli_status_dkim_set(k, cli_dkim_dns_str(CLI_DKIM_DNS_ERROR), "no resolver");
			continue;
		}
		if (date_mono_ms() > deadline) {
			snprintf(note, sizeof(note), "not looked up: the lookups before took over %d s",
				 CLI_STATUS_DNS_BUDGET_MS / 1000);
			cli_status_dkim_set(k, cli_dkim_dns_str(CLI_DKIM_DNS_ERROR), note);
			continue;
		}
		/* the names come from the server: the store checks them before they make a path */
		EVP_PKEY *pub = dom != NULL && sel != NULL ? dkim_store_load_public(c->data_dir, dom, sel, err, sizeof(err))
							   : NULL;
		if (pub == NULL) {
			cli_status_dkim_set(k, cli_dkim_dns_str(CLI_DKIM_DNS_ERROR),
					    dom != NULL && sel != NULL ? err : "no domain or selector in the answer");
			continue;
		}
		enum cli_dkim_dns r = cli_dkim_dns_check(&d, dom, sel, pub, note, sizeof(note));
		cli_status_dkim_set(k, cli_dkim_dns_str(r), note);
		EVP_PKEY_free(pub);
	}
	if (open)
		cli_dns_close(&d);
}

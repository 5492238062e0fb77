/* cli_dnsrecords.c — owns `mailwerk dns records` (what to publish for a domain so that its mail is
 * received and delivered: the server's address, MX, SPF, DKIM, the return path's MX and SPF, DMARC,
 * PTR, MTA-STS, TLS-RPT, and DANE's TLSA for our MX host) and `mailwerk dns check` (what is
 * published, item by item). Both print what domains/domain_dns.h makes and judges, the records the
 * API's /domains shows too (the TLSA ones only here: their keys are read from the certificate
 * files, domains/domain_tlsa.h); the check runs on the CLI's resolver (cli_dns_run), and then
 * fetches a published MTA-STS policy with delivery's fetcher. */
#include "cli/cli_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "cli/cli_dns.h"
#include "conf/conf.h"
#include "delivery/mtasts_fetch.h"
#include "delivery/mtasts_rules.h"
#include "domains/domain_dns.h"
#include "domains/domain_tlsa.h"
#include "keys/dkim_store.h"
#include "mailbox/users.h"
#include "net/dns.h"
#include "net/http_client.h"

static void cli_dns_usage(FILE *f)
{
	fputs("usage: mailwerk dns records --domain D [--ip ADDRESS]... [-c FILE] [-o section.key=value ...]\n"
	      "       mailwerk dns check --domain D [--ip ADDRESS]... [--resolver ADDR@PORT] [-c FILE]\n"
	      "                          [-o section.key=value ...]\n"
	      "\n"
	      "records  prints the DNS records D needs, as zone-file lines, each with a one-line\n"
	      "         explanation: MX, SPF, DKIM (one per key), the return path's MX and SPF, DMARC,\n"
	      "         MTA-STS and TLS-RPT, the PTR record each of the server's addresses should have, and\n"
	      "         the DANE TLSA 3 1 1 record of the key the SMTP listener serves (and of the next key,\n"
	      "         when one is staged: [tls] next_key, or ACME's).\n"
	      "check    looks the records up and reports each item as ok, missing or wrong, with the fix.\n"
	      "         SPF is judged by evaluating it for the server's addresses (--ip, else the\n"
	      "         addresses of [server] hostname). Exit 0 only when everything needed is right\n"
	      "         (MTA-STS, TLS-RPT and TLSA are recommended, not needed; but a TLSA record that is\n"
	      "         published and matches no key of this server is wrong, as DANE senders then defer).\n"
	      "         With an _mta-sts record published, the policy is fetched over HTTPS as senders do, and\n"
	      "         must name [server] hostname.\n"
	      "\n"
	      "      --domain D            the mail domain\n"
	      "      --ip ADDRESS          an address the server sends from (repeatable)\n"
	      "      --resolver ADDR@PORT  ask this DNS server (check; default [dns] resolver, else the system's)\n"
	      "  -c, --config FILE         the setup (default " CLI_DEFAULT_CONF ")\n"
	      "  -o section.key=value      a setting, as for serve\n"
	      "  -h, --help                show this help\n",
	      f);
}

struct cli_dns_args {
	const char *domain;
	const char *ips[DOMAIN_DNS_IPS_MAX];
	size_t nips;
	const char *resolver;
	const char *conf_path;
	char *overrides[32];
	unsigned n_over;
};

/* The records of the domain: the setup's host name and return path, its active keys. NULL after
 * printing the error. */
static struct domain_dns *cli_dns_build(const struct conf *cf, const struct cli_dns_args *a, struct domain_keys *ks,
					const struct domain_tlsa_keys *tk, bool validating)
{
	char err[512], rp[DNS_HOST_SIZE + 80];
	size_t published;
	/* keys copied in by hand, or made before public halves were kept, get theirs (the CLI may
	 * read the private keys; the server's worker lists only the public halves) */
	dkim_store_publish(cf->data_dir, &published, err, sizeof(err));
	if (domain_keys_load(cf->data_dir, a->domain, ks, err, sizeof(err)) != 0)
		cli_error("%s", err);
	/* the domain's own return path label (POST /domains custom_return_path), else the setup's */
	char label[ADDR_DOMAIN_MAX + 1];
	snprintf(label, sizeof(label), "%s", cf->api_return_path_label);
	const char *uerr;
	struct users_domain ud;
	struct users *u = users_open(cf->data_dir, &uerr);
	if (u != NULL && users_domain_get(u, a->domain, &ud, &uerr) == RESULT_OK && ud.return_path[0] != '\0')
		snprintf(label, sizeof(label), "%s", ud.return_path);
	users_close(u);
	snprintf(rp, sizeof(rp), "%s.%s", label, a->domain);
	struct domain_dns_input in = {
		.domain = a->domain,
		.hostname = cf->hostname,
		.return_path = rp,
		.ips = a->ips,
		.nips = a->nips,
		.keys = ks->k,
		.nkeys = ks->n,
		.now = (int64_t)time(NULL),
		.tlsa_current = tk->have_current ? tk->current : NULL,
		.tlsa_next = tk->have_next ? tk->next : NULL,
		.dnssec_validating = validating,
	};
	domain_dns_sts_id(cf, in.sts_id, sizeof(in.sts_id));
	struct domain_dns *d = domain_dns_new(&in);
	if (d == NULL)
		cli_error("out of memory");
	return d;
}

/* "; " comment lines, wrapped at spaces so that a zone file stays readable. */
static void cli_dns_comment(const char *text)
{
	enum { WIDTH = 98 };
	size_t len = strlen(text);
	while (len > 0) {
		size_t n = len;
		if (n > WIDTH) {
			n = WIDTH;
			while (n > 0 && text[n] != ' ')
				n--;
			if (n == 0)
				n = WIDTH;
		}
		printf("; %.*s\n", (int)n, text);
		text += n;
		len -= n;
		while (len > 0 && *text == ' ') {
			text++;
			len--;
		}
	}
}

static void cli_dns_rec_line(const struct domain_rec *r)
{
	if (strcmp(r->type, "TXT") == 0)
		cli_dns_txt_line(r->name, r->value);
	else if (strcmp(r->type, "MX") == 0)
		printf("%s. IN MX %u %s.\n", r->name, r->priority, r->value);
	else if (strcmp(r->type, "PTR") == 0)
		printf("%s. IN PTR %s.\n", r->name, r->value);
	else if (r->kind == DOMAIN_REC_TLSA_NEXT)
		printf("%s. IN TLSA %s   ; next key\n", r->name, r->value);
	else
		printf("%s. IN %s %s\n", r->name, r->type, r->value);
}

/* Why a TLSA record is not printed: the certificate or the staged key could not be read. */
static void cli_dns_tlsa_why(const struct domain_tlsa_keys *tk)
{
	char line[1200];
	if (!tk->have_current) {
		snprintf(line, sizeof(line), "DANE (RFC 7672): no TLSA record, as the key the SMTP listener serves is not "
			 "known: %s", tk->current_why);
		printf("\n");
		cli_dns_comment(line);
	}
	if (!tk->have_next && tk->next_why[0] != '\0') {
		snprintf(line, sizeof(line), "DANE rollover: the staged next key is not shown: %s", tk->next_why);
		printf("\n");
		cli_dns_comment(line);
	}
}

static int cli_dns_records(const struct conf *cf, const struct cli_dns_args *a)
{
	struct domain_keys ks;
	struct domain_tlsa_keys tk;
	domain_tlsa_keys_load(cf, &tk);
	struct domain_dns *d = cli_dns_build(cf, a, &ks, &tk, false);
	if (d == NULL) {
		domain_keys_clear(&ks);
		return CLI_EXIT_RUNTIME;
	}
	printf("; DNS records for %s (mail server %s)\n", a->domain, cf->hostname);
	const char *last = NULL;
	for (size_t i = 0; i < domain_dns_count(d); i++) {
		const struct domain_rec *r = domain_dns_rec(d, i);
		/* records that share their explanation (addresses, PTRs) get it once */
		if (last == NULL || strcmp(last, r->comment) != 0) {
			printf("\n");
			cli_dns_comment(r->comment);
		}
		last = r->comment;
		if (r->value != NULL)
			cli_dns_rec_line(r);
		if (r->kind == DOMAIN_REC_DMARC && a->nips == 0) {
			printf("\n; PTR (reverse DNS, set by whoever owns the address): receivers expect the server's\n"
			       "; address to name it, and the name to lead back to the address\n"
			       ";   <reverse name of each address> IN PTR %s.   (give --ip ADDRESS for the exact lines)\n",
			       cf->hostname);
			last = NULL;
		}
	}
	cli_dns_tlsa_why(&tk);
	domain_dns_free(d);
	domain_keys_clear(&ks);
	return CLI_EXIT_OK;
}

/* ---- check ---- */

/* What to do about a needed record that is not right. */
static void cli_check_fix(const char *domain, const struct domain_rec *r)
{
	printf("        fix: ");
	if (r->status == DOMAIN_REC_TEMPFAIL) {
		printf("try again; check the domain's name servers\n");
		return;
	}
	switch (r->kind) {
	case DOMAIN_REC_ADDRESS:
		if (r->value == NULL)
			printf("publish A/AAAA records for it, or give --ip ADDRESS\n");
		else
			cli_dns_rec_line(r);
		return;
	case DOMAIN_REC_SPF:
	case DOMAIN_REC_RETURN_SPF:
		printf("%s. IN TXT \"%s\"  (or add our addresses to the record you have)\n", r->name, r->value);
		return;
	case DOMAIN_REC_DKIM:
		if (r->value == NULL) {
			printf("mailwerk dkim keygen --domain %s --selector s1, then publish its record\n", domain);
		} else {
			printf("publish\n        ");
			cli_dns_txt_line(r->name, r->value);
		}
		return;
	case DOMAIN_REC_DMARC:
		printf("%s. IN TXT \"%s\"\n", r->name, r->value);
		return;
	case DOMAIN_REC_PTR:
		printf("ask the owner of the address for: %s. IN PTR %s.\n", r->name, r->value);
		return;
	case DOMAIN_REC_TLSA:
		if (r->dnssec_bogus) {
			printf("repair the zone's DNSSEC signatures or its DS record at the parent (until then DANE "
			       "senders defer), or remove the DS to go back to an unsigned zone\n");
			return;
		}
		printf("publish (and remove the records that match no key of this server)\n        ");
		cli_dns_rec_line(r);
		return;
	default:
		if (r->value != NULL)
			cli_dns_rec_line(r);
		else
			printf("see mailwerk dns records\n");
		return;
	}
}

static void cli_check_print(const char *domain, const struct domain_rec *r)
{
	if (r->status == DOMAIN_REC_VERIFIED) {
		printf("ok      %s\n", r->found != NULL ? r->found : r->name);
		if (r->note != NULL)
			printf("        note: %s\n", r->note);
	} else if (!r->needed) {
		const char *what = r->kind == DOMAIN_REC_MTA_STS        ? "MTA-STS"
				   : r->kind == DOMAIN_REC_MTA_STS_HOST ? "the MTA-STS policy host"
				   : r->kind == DOMAIN_REC_TLS_RPT ? "TLS-RPT"
				   : r->kind == DOMAIN_REC_TLSA ? "DANE TLSA"
				   : r->kind == DOMAIN_REC_TLSA_NEXT ? "the next key's TLSA"
								   : domain_rec_kind_str(r->kind);
		printf("missing %s at %s (%srecommended; see mailwerk dns records)\n", what, r->name,
		       r->status == DOMAIN_REC_TEMPFAIL ? "the lookup failed; " : "");
		/* a record that is there but wrong (an MTA-STS id that is not the policy's) says how */
		size_t plen = r->problem != NULL ? strlen(r->problem) : 0;
		if (r->status == DOMAIN_REC_FAILED && plen > 0 && (plen < 9 || strcmp(r->problem + plen - 9, ": missing") != 0))
			printf("        %s\n", r->problem);
		if (r->note != NULL)
			printf("        note: %s\n", r->note);
	} else {
		if (r->problem != NULL)
			printf("WRONG   %s\n", r->problem);
		else
			printf("WRONG   %s %s: not checked\n", domain_rec_kind_str(r->kind), r->name);
		cli_check_fix(domain, r);
		if (r->note != NULL)
			printf("        note: %s\n", r->note);
	}
}

/* ---- the MTA-STS policy over HTTPS (RFC 8461 §3.3) ---- */

struct cli_sts_wait {
	struct event_base *base;
	bool done;
	const char *hostname, *domain, *sts_id;
	int verdict; /* 0 ok, 1 missing (recommended), 2 wrong (needed) */
};

static void cli_sts_done(void *arg, const struct mtasts_fetch_result *r)
{
	struct cli_sts_wait *w = arg;
	w->done = true;
	event_base_loopbreak(w->base);
	char url[DNS_HOST_SIZE + 64];
	snprintf(url, sizeof(url), "https://mta-sts.%s/.well-known/mta-sts.txt", w->domain);
	if (r->error != MTASTS_FETCH_OK) {
		printf("missing MTA-STS policy at %s (recommended): %s (%s)\n", url, r->why,
		       mtasts_fetch_error_str(r->error));
		printf("        senders that find the _mta-sts record cannot fetch the policy; see [mta_sts] and\n"
		       "        the certificate of the HTTPS listener, which must name mta-sts.%s\n", w->domain);
		w->verdict = 1;
		return;
	}
	char id[MTASTS_ID_MAX + 1];
	mtasts_policy_id(r->text, r->text_len, id);
	bool ours = mtasts_policy_mx_match(r->policy, w->hostname);
	if (!ours && r->policy->mode != MTASTS_MODE_NONE) {
		/* §4.1: an MX host the policy does not name is not used; with enforce, mail is held back */
		printf("WRONG   MTA-STS policy at %s (mode %s) does not name %s%s\n", url, mtasts_mode_str(r->policy->mode),
		       w->hostname,
		       r->policy->mode == MTASTS_MODE_ENFORCE ? ": senders that honour it do not deliver to this server" : "");
		printf("        fix: add %s to [mta_sts] mx, or serve the policy from this server\n", w->hostname);
		w->verdict = 2;
		return;
	}
	printf("ok      MTA-STS policy at %s: mode %s, max_age %u, names %s%s\n", url, mtasts_mode_str(r->policy->mode),
	       (unsigned)r->policy->max_age, w->hostname,
	       w->sts_id[0] != '\0' && strcmp(id, w->sts_id) == 0 ? " (the policy this server serves)" : "");
	w->verdict = 0;
}

/* Whether a v=STSv1 record was found, right or with another id. */
static bool cli_sts_published(const struct domain_rec *r)
{
	if (r->status == DOMAIN_REC_VERIFIED)
		return true;
	size_t plen = r->problem != NULL ? strlen(r->problem) : 0;
	return r->status == DOMAIN_REC_FAILED && plen > 9 && strcmp(r->problem + plen - 9, ": missing") != 0;
}

/* Fetches the policy the way senders (and our delivery) do: only after the _mta-sts record was
 * found, as a sender would not look otherwise. Returns the verdict. */
static int cli_dns_check_sts(struct cli_dns *dns, const struct conf *cf, const char *domain, const char *sts_id)
{
	char err[300];
	struct http_client *http = http_client_new(dns->base, err, sizeof(err));
	if (http == NULL) {
		printf("missing MTA-STS policy: not fetched (%s)\n", err);
		return 1;
	}
	struct cli_sts_wait w = {.base = dns->base, .hostname = cf->hostname, .domain = domain, .sts_id = sts_id};
	struct mtasts_fetch_opts o = {
		.dns = dns->dns,
		.http = http,
		.ca_file = cf->mta_sts_ca_file,
		.allow_private = cf->mta_sts_allow_private,
		.timeout_ms = cf->mta_sts_fetch_timeout,
	};
	struct mtasts_fetch *f = mtasts_fetch_start(&o, domain, cli_sts_done, &w, err, sizeof(err));
	if (f == NULL) {
		printf("missing MTA-STS policy: not fetched (%s)\n", err);
		w.verdict = 1;
	} else {
		while (!w.done)
			event_base_loop(dns->base, EVLOOP_ONCE);
	}
	http_client_free(http);
	return w.verdict;
}

static int cli_dns_check(struct conf *cf, struct cli_dns_args *a)
{
	struct cli_dns dns;
	struct domain_keys ks;
	struct domain_tlsa_keys tk;
	int rc = CLI_EXIT_RUNTIME;
	if (cli_dns_open_conf(&dns, cf, a->resolver, 0) != 0)
		return CLI_EXIT_RUNTIME;
	domain_tlsa_keys_load(cf, &tk);
	struct domain_dns *d = cli_dns_build(cf, a, &ks, &tk, dns_validating(dns.dns));
	if (d != NULL) {
		/* without --ip, the check takes the addresses of our host name as the ones we send from */
		bool finished = cli_dns_run(&dns, domain_dns_check_step, d) == 0;
		for (size_t i = 0; i < domain_dns_count(d); i++)
			cli_check_print(a->domain, domain_dns_rec(d, i));
		unsigned bad = domain_dns_needed_bad(d), missing = domain_dns_recommended_missing(d);
		/* a published _mta-sts record makes senders fetch the policy: it must be there and name us */
		char sts_id[40];
		domain_dns_sts_id(cf, sts_id, sizeof(sts_id));
		const struct domain_rec *sts = NULL;
		for (size_t i = 0; i < domain_dns_count(d) && sts == NULL; i++)
			if (domain_dns_rec(d, i)->kind == DOMAIN_REC_MTA_STS)
				sts = domain_dns_rec(d, i);
		if (sts != NULL && cli_sts_published(sts)) {
			int v = cli_dns_check_sts(&dns, cf, a->domain, sts_id);
			bad += v == 2;
			missing += v == 1;
		}
		printf("%s: %u needed item%s wrong, %u recommended missing\n", bad == 0 ? "ready" : "not ready", bad,
		       bad == 1 ? "" : "s", missing);
		rc = finished && bad == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
	}
	domain_dns_free(d);
	domain_keys_clear(&ks);
	cli_dns_close(&dns);
	return rc;
}

int cli_dns_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"domain", required_argument, NULL, 'd'},
		{"ip", required_argument, NULL, 'i'},
		{"resolver", required_argument, NULL, 'r'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cli_dns_args a = {0};
	unsigned char b[16];
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a.domain = optarg; break;
		case 'o':
			if (a.n_over == sizeof(a.overrides) / sizeof(a.overrides[0])) {
				cli_error("at most %zu -o options", sizeof(a.overrides) / sizeof(a.overrides[0]));
				return CLI_EXIT_USAGE;
			}
			a.overrides[a.n_over++] = optarg;
			break;
		case 'c': a.conf_path = optarg; break;
		case 'i':
			if (inet_pton(AF_INET, optarg, b) != 1 && inet_pton(AF_INET6, optarg, b) != 1) {
				cli_error("--ip %s: not an IPv4 or IPv6 address", optarg);
				return CLI_EXIT_USAGE;
			}
			if (a.nips == DOMAIN_DNS_IPS_MAX) {
				cli_error("--ip: at most %d addresses", DOMAIN_DNS_IPS_MAX);
				return CLI_EXIT_USAGE;
			}
			a.ips[a.nips++] = optarg;
			break;
		case 'r':
			if (!cli_dns_resolver_ok(optarg))
				return CLI_EXIT_USAGE;
			a.resolver = optarg;
			break;
		case 'h':
			cli_dns_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("dns", c, argv);
		}
	}
	if (argc - optind != 1 || (strcmp(argv[optind], "records") != 0 && strcmp(argv[optind], "check") != 0)) {
		cli_dns_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (a.domain == NULL || !dns_host_valid(a.domain)) {
		cli_error("dns %s needs --domain with a domain name", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	struct conf *cf = cli_conf_load(a.conf_path, a.overrides, a.n_over);
	if (cf == NULL)
		return CLI_EXIT_RUNTIME;
	int rc = strcmp(argv[optind], "records") == 0 ? cli_dns_records(cf, &a) : cli_dns_check(cf, &a);
	conf_free(cf);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		rc = CLI_EXIT_RUNTIME;
	}
	return rc;
}

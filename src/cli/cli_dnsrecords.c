/* cli_dnsrecords.c — owns `mailwerk dns records` (what to publish for a domain so that its mail is
 * received and delivered: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, PTR) and `mailwerk dns check`
 * (what is published, judged with the evaluators inbound mail gets: SPF by evaluating the record for
 * our address, DKIM by comparing the key, DMARC by the RFC 9989 tree walk). */
#include "cli/cli_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/dkim_key.h"
#include "auth/dmarc_walk.h"
#include "auth/spf.h"
#include "cli/cli_dns.h"
#include "conf/conf.h"
#include "keys/dkim_store.h"

#define CLI_DNS_IPS_MAX 8

static void cli_dns_usage(FILE *f)
{
	fputs("usage: mailwerk dns records --domain D [--ip ADDRESS]... [-c FILE]\n"
	      "       mailwerk dns check --domain D [--ip ADDRESS]... [--resolver ADDR@PORT] [-c FILE]\n"
	      "\n"
	      "records  prints the DNS records D needs, as zone-file lines, each with a one-line\n"
	      "         explanation: MX, SPF, DKIM (one per key), DMARC, MTA-STS and TLS-RPT, and the\n"
	      "         PTR record each of the server's addresses should have.\n"
	      "check    looks the records up and reports each item as ok, missing or wrong, with the fix.\n"
	      "         SPF is judged by evaluating it for the server's addresses (--ip, else the\n"
	      "         addresses of [server] hostname). Exit 0 only when everything needed is right\n"
	      "         (MTA-STS and TLS-RPT are recommended, not needed).\n"
	      "\n"
	      "      --domain D            the mail domain\n"
	      "      --ip ADDRESS          an address the server sends from (repeatable)\n"
	      "      --resolver ADDR@PORT  ask this DNS server (check; default [dns] resolver, else the system's)\n"
	      "  -c, --config FILE         the setup (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help                show this help\n",
	      f);
}

struct cli_dns_args {
	const char *domain;
	const char *ips[CLI_DNS_IPS_MAX];
	size_t nips;
	const char *resolver;
	const char *conf_path;
};

/* RFC 1035 §3.5 / RFC 3596 §2.5: the reverse name of an address */
static void cli_dns_reverse(const char *ip, char *out, size_t size)
{
	unsigned char b[16];
	size_t o = 0;
	out[0] = '\0';
	if (inet_pton(AF_INET, ip, b) == 1) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
	} else if (inet_pton(AF_INET6, ip, b) == 1) {
		static const char hex[] = "0123456789abcdef";
		for (int i = 15; i >= 0 && o + 4 < size; i--) {
			out[o++] = hex[b[i] & 0xf];
			out[o++] = '.';
			out[o++] = hex[b[i] >> 4];
			out[o++] = '.';
		}
		snprintf(out + o, size - o, "ip6.arpa");
	}
}

static bool cli_dns_is_v6(const char *ip)
{
	return strchr(ip, ':') != NULL;
}

/* The SPF record we suggest: our addresses when known, else our host name's (one lookup). */
static void cli_dns_spf_text(const struct conf *cf, const struct cli_dns_args *a, char *out, size_t size)
{
	size_t o = (size_t)snprintf(out, size, "v=spf1");
	if (a->nips == 0)
		o += (size_t)snprintf(out + o, size - o, " a:%s", cf->hostname);
	for (size_t i = 0; i < a->nips && o < size; i++)
		o += (size_t)snprintf(out + o, size - o, " %s:%s", cli_dns_is_v6(a->ips[i]) ? "ip6" : "ip4", a->ips[i]);
	if (o < size)
		snprintf(out + o, size - o, " -all");
}

struct cli_dns_keys {
	const char *domain;
	unsigned count;
	bool print;             /* records: print the TXT record of each active key */
	struct cli_dns *dns;    /* check: compare with DNS */
	unsigned ok, bad;
};

static void cli_dns_key(const struct dkim_store_key *k, void *arg)
{
	struct cli_dns_keys *ks = arg;
	const char *err;
	char name[DNS_HOST_SIZE + 80];
	if (!k->active)
		return;
	ks->count++;
	snprintf(name, sizeof(name), "%s._domainkey.%s", k->selector, k->domain);
	char *txt = dkim_key_record_format(k->pkey, &err);
	if (ks->print) {
		printf("\n; DKIM (RFC 6376): the public key of selector %s (%s %u), so receivers can verify our signatures\n",
		       k->selector, dkim_key_type_str(k->type), k->bits);
		if (txt != NULL)
			cli_dns_txt_line(name, txt);
	}
	if (ks->dns != NULL) {
		struct cli_answer an;
		struct dkim_key_record r;
		const char *verdict = NULL;
		if (cli_dns_ask(ks->dns, name, DNS_RRTYPE_TXT, &an) != 0 || an.status == DNS_STATUS_TEMPFAIL ||
		    an.status == DNS_STATUS_BOGUS)
			verdict = "the lookup failed, try again";
		else if (an.count == 0)
			verdict = "missing";
		else if (dkim_key_record_parse(an.items[0], strlen(an.items[0]), &r, &err) != DKIM_KEY_OK)
			verdict = "malformed";
		else {
			verdict = dkim_key_record_matches(&r, k->pkey) ? NULL : "does not match our private key";
			dkim_key_record_clear(&r);
		}
		if (verdict == NULL) {
			printf("ok      DKIM %s: the published key matches\n", name);
			ks->ok++;
		} else {
			printf("WRONG   DKIM %s: %s\n        fix: publish\n        ", name, verdict);
			if (txt != NULL)
				cli_dns_txt_line(name, txt);
			ks->bad++;
		}
		cli_answer_clear(&an);
	}
	free(txt);
}

static int cli_dns_records(const struct conf *cf, const struct cli_dns_args *a)
{
	char spf[512], rev[128];
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d%H%M%S", &tm);

	printf("; DNS records for %s (mail server %s)\n", a->domain, cf->hostname);
	printf("\n; MX (RFC 5321 §5.1): mail for %s is delivered to this server\n", a->domain);
	printf("%s. IN MX 10 %s.\n", a->domain, cf->hostname);
	for (size_t i = 0; i < a->nips; i++) {
		printf("\n; the server's address, which the MX name must resolve to\n");
		printf("%s. IN %s %s\n", cf->hostname, cli_dns_is_v6(a->ips[i]) ? "AAAA" : "A", a->ips[i]);
	}
	cli_dns_spf_text(cf, a, spf, sizeof(spf));
	printf("\n; SPF (RFC 7208): only this server may send mail from %s; \"-all\" fails the rest\n", a->domain);
	cli_dns_txt_line(a->domain, spf);

	struct cli_dns_keys ks = {.domain = a->domain, .print = true};
	char err[512];
	if (dkim_store_list(cf->data_dir, a->domain, cli_dns_key, NULL, &ks, err, sizeof(err)) != 0)
		cli_error("%s", err);
	if (ks.count == 0)
		printf("\n; DKIM: no key signs for %s yet; make one with\n;   mailwerk dkim keygen --domain %s --selector s1\n",
		       a->domain, a->domain);

	/* the return path of API mail (VERP, [api] return_path_label): bounces come back here, and
	 * receivers check SPF for it (RFC 7208 §2.4 checks the MAIL FROM domain); relaxed DMARC
	 * alignment (RFC 9989 §4.4.2) accepts a subdomain of the From domain */
	printf("\n; Return path of mail sent through the HTTP API: bounces+ID@%s.%s, so that a bounce that\n"
	       "; comes days later is matched to its message. It needs its own MX and SPF records.\n",
	       cf->api_return_path_label, a->domain);
	snprintf(rev, sizeof(rev), "%s.%s", cf->api_return_path_label, a->domain);
	printf("%s. IN MX 10 %s.\n", rev, cf->hostname);
	cli_dns_txt_line(rev, spf);
	printf("\n; DMARC (RFC 9989): a starting point; aggregate reports go to the address in rua. Once the\n"
	       "; reports show all your mail passing, p=reject protects the domain best.\n");
	snprintf(spf, sizeof(spf), "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@%s", a->domain);
	snprintf(rev, sizeof(rev), "_dmarc.%s", a->domain);
	cli_dns_txt_line(rev, spf);

	printf("\n; MTA-STS (RFC 8461, recommended): senders then require TLS to this server. Also serve\n"
	       ";   https://mta-sts.%s/.well-known/mta-sts.txt with the lines\n"
	       ";   version: STSv1 / mode: testing / mx: %s / max_age: 86400\n"
	       "; and change id= whenever the policy changes.\n", a->domain, cf->hostname);
	snprintf(rev, sizeof(rev), "_mta-sts.%s", a->domain);
	snprintf(spf, sizeof(spf), "v=STSv1; id=%s", ts);
	cli_dns_txt_line(rev, spf);
	printf("\n; TLS-RPT (RFC 8460, recommended): reports of TLS failures senders saw\n");
	snprintf(rev, sizeof(rev), "_smtp._tls.%s", a->domain);
	snprintf(spf, sizeof(spf), "v=TLSRPTv1; rua=mailto:tls-reports@%s", a->domain);
	cli_dns_txt_line(rev, spf);

	printf("\n; PTR (reverse DNS, set by whoever owns the address): receivers expect the server's\n"
	       "; address to name it, and the name to lead back to the address\n");
	if (a->nips == 0)
		printf(";   <reverse name of each address> IN PTR %s.   (give --ip ADDRESS for the exact lines)\n",
		       cf->hostname);
	for (size_t i = 0; i < a->nips; i++) {
		cli_dns_reverse(a->ips[i], rev, sizeof(rev));
		printf("%s. IN PTR %s.\n", rev, cf->hostname);
	}
	return CLI_EXIT_OK;
}

/* ---- check ---- */

struct cli_check {
	unsigned needed_bad;
	unsigned recommended_missing;
};

static void cli_check_ok(const char *what)
{
	printf("ok      %s\n", what);
}

static void cli_check_bad(struct cli_check *ck, const char *what, const char *fix)
{
	ck->needed_bad++;
	printf("WRONG   %s\n        fix: %s\n", what, fix);
}

static bool cli_check_mx(struct cli_dns *d, const struct conf *cf, const char *domain, struct cli_check *ck)
{
	struct cli_answer an;
	char what[512], fix[512];
	snprintf(fix, sizeof(fix), "%s. IN MX 10 %s.", domain, cf->hostname);
	if (cli_dns_ask(d, domain, DNS_RRTYPE_MX, &an) != 0)
		return false;
	bool ours = false;
	for (size_t i = 0; i < an.count; i++) {
		const char *host = strchr(an.items[i], ' ');
		if (host != NULL && strcasecmp(host + 1, cf->hostname) == 0)
			ours = true;
	}
	if (ours) {
		snprintf(what, sizeof(what), "MX of %s points at %s", domain, cf->hostname);
		cli_check_ok(what);
	} else if (an.status == DNS_STATUS_TEMPFAIL || an.status == DNS_STATUS_BOGUS) {
		snprintf(what, sizeof(what), "MX of %s: the lookup failed (%s)", domain, an.why);
		cli_check_bad(ck, what, "try again; check the domain's name servers");
	} else if (an.count == 0) {
		snprintf(what, sizeof(what), "MX of %s: missing", domain);
		cli_check_bad(ck, what, fix);
	} else {
		snprintf(what, sizeof(what), "MX of %s does not point at %s (it names %s)", domain, cf->hostname,
			 an.items[0]);
		cli_check_bad(ck, what, fix);
	}
	cli_answer_clear(&an);
	return true;
}

static void cli_check_spf(struct cli_dns *d, const struct conf *cf, const struct cli_dns_args *a,
			  struct cli_check *ck)
{
	char sender[DNS_HOST_SIZE + 16], what[768], fix[640], spf[512];
	snprintf(sender, sizeof(sender), "postmaster@%s", a->domain);
	cli_dns_spf_text(cf, a, spf, sizeof(spf));
	snprintf(fix, sizeof(fix), "%s. IN TXT \"%s\"  (or add our addresses to the record you have)", a->domain, spf);
	for (size_t i = 0; i < a->nips; i++) {
		struct spf_request req = {.mail_from = sender, .helo = cf->hostname, .receiver = cf->hostname,
					  .identity = SPF_IDENTITY_MAILFROM, .now = time(NULL)};
		req.ip.family = cli_dns_is_v6(a->ips[i]) ? AF_INET6 : AF_INET;
		inet_pton(req.ip.family, a->ips[i], req.ip.bytes);
		struct spf_eval *e = spf_eval_new(&req);
		if (e == NULL || cli_dns_run(d, spf_eval_step, e) != 0) {
			spf_eval_free(e);
			cli_check_bad(ck, "SPF: the evaluation did not finish", "try again");
			continue;
		}
		enum spf_result r = spf_eval_result(e);
		if (r == SPF_RESULT_PASS) {
			snprintf(what, sizeof(what), "SPF of %s authorizes %s (%u of %d lookups)", a->domain, a->ips[i],
				 spf_eval_lookups(e), SPF_LOOKUP_LIMIT);
			cli_check_ok(what);
		} else if (r == SPF_RESULT_NONE) {
			snprintf(what, sizeof(what), "SPF of %s: missing", a->domain);
			cli_check_bad(ck, what, fix);
		} else if (r == SPF_RESULT_PERMERROR) {
			/* two records, more than 10 lookups, a syntax error: the problem names it */
			snprintf(what, sizeof(what), "SPF of %s is broken: %s", a->domain, spf_eval_problem(e));
			cli_check_bad(ck, what, fix);
		} else if (r == SPF_RESULT_TEMPERROR) {
			snprintf(what, sizeof(what), "SPF of %s: the lookups failed (%s)", a->domain, spf_eval_problem(e));
			cli_check_bad(ck, what, "try again; check the domain's name servers");
		} else {
			snprintf(what, sizeof(what), "SPF of %s does not authorize %s (result %s: %s)", a->domain, a->ips[i],
				 spf_result_str(r), spf_eval_problem(e));
			cli_check_bad(ck, what, fix);
		}
		spf_eval_free(e);
	}
}

static void cli_check_dmarc(struct cli_dns *d, const char *domain, struct cli_check *ck)
{
	char what[768], fix[512];
	snprintf(fix, sizeof(fix), "_dmarc.%s. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@%s\"", domain,
		 domain);
	struct dmarc_walk *w = dmarc_walk_new(domain);
	if (w == NULL || cli_dns_run(d, dmarc_walk_step, w) != 0) {
		dmarc_walk_free(w);
		cli_check_bad(ck, "DMARC: the lookup did not finish", "try again");
		return;
	}
	const struct dmarc_walk_result *r = dmarc_walk_result(w);
	const struct dmarc_node *p = r->policy;
	if (r->status != DMARC_WALK_OK) {
		snprintf(what, sizeof(what), "DMARC of %s: %s", domain, r->why != NULL ? r->why : "the lookup failed");
		cli_check_bad(ck, what, "try again; check the domain's name servers");
	} else if (r->count > 0 && r->nodes[0]->found == DMARC_FOUND_MULTIPLE) {
		snprintf(what, sizeof(what), "DMARC of %s: several records at _dmarc.%s, so receivers ignore all of them",
			 domain, domain);
		cli_check_bad(ck, what, "keep exactly one");
	} else if (p == NULL) {
		snprintf(what, sizeof(what), "DMARC of %s: missing", domain);
		cli_check_bad(ck, what, fix);
	} else if (p->record_error != DMARC_RECORD_OK) {
		snprintf(what, sizeof(what), "DMARC record at _dmarc.%s is malformed: %s", p->domain,
			 p->record_why != NULL ? p->record_why : "no usable policy");
		cli_check_bad(ck, what, fix);
	} else {
		const struct dmarc_record *rec = p->record;
		enum dmarc_policy pol = r->source == DMARC_SOURCE_DOMAIN ? rec->p : rec->sp;
		snprintf(what, sizeof(what), "DMARC of %s: p=%s%s (record at _dmarc.%s)", domain, dmarc_policy_str(pol),
			 rec->testing ? " t=y" : "", p->domain);
		cli_check_ok(what);
		if (pol == DMARC_POLICY_NONE)
			printf("        note: p=none only monitors; quarantine or reject protects the domain\n");
	}
	dmarc_walk_free(w);
}

static void cli_check_ptr(struct cli_dns *d, const struct conf *cf, const char *ip, struct cli_check *ck)
{
	char rev[128], what[768], fix[512];
	struct cli_answer an, fw;
	cli_dns_reverse(ip, rev, sizeof(rev));
	snprintf(fix, sizeof(fix), "ask the owner of %s for: %s. IN PTR %s.", ip, rev, cf->hostname);
	if (cli_dns_ask(d, rev, DNS_RRTYPE_PTR, &an) != 0)
		return;
	bool named = false;
	for (size_t i = 0; i < an.count; i++)
		named = named || strcasecmp(an.items[i], cf->hostname) == 0;
	if (!named) {
		snprintf(what, sizeof(what), "PTR of %s: %s", ip, an.count == 0 ? "missing" : "does not name the server");
		cli_check_bad(ck, what, fix);
		cli_answer_clear(&an);
		return;
	}
	cli_answer_clear(&an);
	/* forward-confirmed: the name leads back to the address */
	if (cli_dns_ask(d, cf->hostname, cli_dns_is_v6(ip) ? DNS_RRTYPE_AAAA : DNS_RRTYPE_A, &fw) != 0)
		return;
	unsigned char want[16], got[16];
	bool back = false;
	int fam = cli_dns_is_v6(ip) ? AF_INET6 : AF_INET;
	inet_pton(fam, ip, want);
	for (size_t i = 0; i < fw.count; i++)
		back = back || (inet_pton(fam, fw.items[i], got) == 1 && memcmp(want, got, fam == AF_INET ? 4 : 16) == 0);
	if (back) {
		snprintf(what, sizeof(what), "PTR of %s names %s, which resolves back to it", ip, cf->hostname);
		cli_check_ok(what);
	} else {
		snprintf(what, sizeof(what), "PTR of %s names %s, but %s does not resolve to %s", ip, cf->hostname,
			 cf->hostname, ip);
		snprintf(fix, sizeof(fix), "%s. IN %s %s", cf->hostname, fam == AF_INET6 ? "AAAA" : "A", ip);
		cli_check_bad(ck, what, fix);
	}
	cli_answer_clear(&fw);
}

static void cli_check_optional(struct cli_dns *d, const char *name, const char *prefix, const char *what,
			       struct cli_check *ck)
{
	struct cli_answer an;
	if (cli_dns_ask(d, name, DNS_RRTYPE_TXT, &an) != 0)
		return;
	bool found = false;
	for (size_t i = 0; i < an.count; i++)
		found = found || strncmp(an.items[i], prefix, strlen(prefix)) == 0;
	if (found) {
		printf("ok      %s at %s\n", what, name);
	} else {
		ck->recommended_missing++;
		printf("missing %s at %s (recommended; see mailwerk dns records)\n", what, name);
	}
	cli_answer_clear(&an);
}

static int cli_dns_check(struct conf *cf, struct cli_dns_args *a)
{
	struct cli_dns d;
	struct cli_check ck = {0};
	struct cli_answer own[2];
	if (cli_dns_open(&d, a->conf_path, a->resolver, 0) != 0)
		return CLI_EXIT_RUNTIME;
	/* without --ip, the addresses of our host name are the ones we send from */
	memset(own, 0, sizeof(own));
	if (a->nips == 0) {
		if (cli_dns_ask(&d, cf->hostname, DNS_RRTYPE_A, &own[0]) == 0 &&
		    cli_dns_ask(&d, cf->hostname, DNS_RRTYPE_AAAA, &own[1]) == 0)
			for (int t = 0; t < 2; t++)
				for (size_t i = 0; i < own[t].count && a->nips < CLI_DNS_IPS_MAX; i++)
					a->ips[a->nips++] = own[t].items[i];
		if (a->nips == 0) {
			char what[512];
			snprintf(what, sizeof(what), "address of %s: missing (so nobody can reach the server)", cf->hostname);
			cli_check_bad(&ck, what, "publish A/AAAA records for it, or give --ip ADDRESS");
		}
	}
	cli_check_mx(&d, cf, a->domain, &ck);
	cli_check_spf(&d, cf, a, &ck);

	struct cli_dns_keys ks = {.domain = a->domain, .dns = &d};
	char err[512];
	if (dkim_store_list(cf->data_dir, a->domain, cli_dns_key, NULL, &ks, err, sizeof(err)) != 0)
		cli_error("%s", err);
	ck.needed_bad += ks.bad;
	if (ks.count == 0) {
		char fix[512];
		snprintf(fix, sizeof(fix), "mailwerk dkim keygen --domain %s --selector s1, then publish its record",
			 a->domain);
		cli_check_bad(&ck, "DKIM: no key signs for this domain", fix);
	}
	cli_check_dmarc(&d, a->domain, &ck);
	for (size_t i = 0; i < a->nips; i++)
		cli_check_ptr(&d, cf, a->ips[i], &ck);

	char name[DNS_HOST_SIZE + 16];
	snprintf(name, sizeof(name), "_mta-sts.%s", a->domain);
	cli_check_optional(&d, name, "v=STSv1", "MTA-STS", &ck);
	snprintf(name, sizeof(name), "_smtp._tls.%s", a->domain);
	cli_check_optional(&d, name, "v=TLSRPTv1", "TLS-RPT", &ck);

	printf("%s: %u needed item%s wrong, %u recommended missing\n", ck.needed_bad == 0 ? "ready" : "not ready",
	       ck.needed_bad, ck.needed_bad == 1 ? "" : "s", ck.recommended_missing);
	cli_dns_close(&d);
	cli_answer_clear(&own[0]);
	cli_answer_clear(&own[1]);
	return ck.needed_bad == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
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
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a.domain = optarg; break;
		case 'c': a.conf_path = optarg; break;
		case 'i':
			if (inet_pton(AF_INET, optarg, b) != 1 && inet_pton(AF_INET6, optarg, b) != 1) {
				cli_error("--ip %s: not an IPv4 or IPv6 address", optarg);
				return CLI_EXIT_USAGE;
			}
			if (a.nips == CLI_DNS_IPS_MAX) {
				cli_error("--ip: at most %d addresses", CLI_DNS_IPS_MAX);
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
	struct conf *cf = cli_conf_load(a.conf_path, NULL, 0);
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

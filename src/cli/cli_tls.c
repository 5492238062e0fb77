/* cli_tls.c — `mailwerk tls check DOMAIN`: what outbound TLS would meet at a domain. Its MX hosts
 * with the DNSSEC state of the answer, its _mta-sts TXT record, and its MTA-STS policy as the
 * delivery cache (delivery/mtasts_cache.h) sees it: the same lookup with the same budget, then the
 * background fetch waited for, with the policy's age, and whether each MX host matches it. The
 * policy cache is the server's own (DATA_DIR/reports.db), so what this fetches the server uses. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cli/cli_common.h"
#include "cli/cli_dns.h"
#include "cli/cli_tls_dane.h"
#include "conf/conf.h"
#include "delivery/mtasts_cache.h"
#include "net/dns.h"
#include "util/date.h"
#include "util/identity.h"

#define TLS_MAX_OVERRIDES 32

static void cli_tls_usage(FILE *f)
{
	fputs("usage: mailwerk tls check DOMAIN [--budget MS] [--no-wait] [--recheck] [--probe]\n"
	      "                                [--resolver ADDR@PORT] [-c FILE] [-o section.key=value ...]\n"
	      "\n"
	      "Shows the MX hosts of DOMAIN (with the DNSSEC state of the answer), its _mta-sts TXT record and\n"
	      "its MTA-STS policy (RFC 8461) as delivery would find it: answered within the budget ([delivery]\n"
	      "mta_sts_budget) from the policy cache, or \"no policy known\" while the fetch goes on; then the\n"
	      "fetch is waited for and the cache shown with its age. The cache is the server's own.\n"
	      "Then DANE (RFC 7672) per MX host: whether the MX and address answers validated, the TLSA\n"
	      "records and whether each is usable, and the TLS decision delivery would take.\n"
	      "\n"
	      "  --budget MS          how long the first answer may take (default: [delivery] mta_sts_budget)\n"
	      "  --no-wait            do not wait for a background fetch\n"
	      "  --recheck            ask as delivery does before failing a message (RFC 8461 §5.1): the TXT\n"
	      "                       record again, and a fetch when its id changed\n"
	      "  --probe              connect to each MX host, STARTTLS, and check its certificate as\n"
	      "                       delivery would (DANE records, or names), with its names and expiry\n"
	      "  --resolver ADDR@PORT the DNS server to ask (default: [dns] resolver)\n"
	      "  -c, --config FILE    the setup (default " CLI_DEFAULT_CONF ")\n"
	      "  -o section.key=value a setting, as for serve\n"
	      "\n"
	      "Exit status: 0 when an MTA-STS policy is known at the end or every MX host gets DANE, and\n"
	      "(with --probe) every probe went as the decision needs; 1 otherwise (or an error); 2 usage.\n",
	      f);
}

struct tls_wait {
	struct event_base *base;
	bool done;
	int64_t started_ms;
	unsigned elapsed_ms;
	bool has_policy;
	bool id_changed;
	/* what delivery's decision would be given (the DANE part's per-host decision) */
	enum tls_decide_sts_state sts_state;
	struct mtasts_policy sts;
};

static void print_answer(const char *label, const struct mtasts_answer *a, unsigned elapsed_ms)
{
	printf("%s: state=%s reason=%s elapsed_ms=%u", label, tls_decide_sts_state_str(a->state), a->reason, elapsed_ms);
	if (a->txt_checked)
		printf(" txt_id=%s", a->txt_id[0] != '\0' ? a->txt_id : "-");
	if (a->id_changed)
		printf(" id_changed=yes");
	printf("\n");
	if (a->why[0] != '\0')
		printf("  why: %s\n", a->why);
	if (a->policy == NULL) {
		printf("  policy: none known\n");
		return;
	}
	int64_t now = (int64_t)time(NULL);
	printf("  policy: id=%s mode=%s max_age=%u source=%s age_s=%lld expires_in_s=%lld\n", a->id,
	       mtasts_mode_str(a->policy->mode), (unsigned)a->policy->max_age, a->from_cache ? "cache" : "fetched",
	       (long long)(now - a->fetched), (long long)(a->expires - now));
	for (size_t i = 0; i < a->policy->mx_count; i++)
		printf("  policy mx: %s\n", a->policy->mx[i]);
}

struct tls_mx {
	size_t n;
	char hosts[16][DNS_HOST_SIZE];
};

struct tls_call {
	struct tls_wait *w;
	const char *label;
	const struct tls_mx *mx;
};

static void tls_done(void *arg, const struct mtasts_answer *a)
{
	struct tls_call *call = arg;
	struct tls_wait *w = call->w;
	w->done = true;
	w->elapsed_ms = (unsigned)(date_mono_ms() - w->started_ms);
	w->has_policy = a->policy != NULL;
	w->id_changed = a->id_changed;
	w->sts_state = a->state;
	if (a->policy != NULL)
		w->sts = *a->policy;
	print_answer(call->label, a, w->elapsed_ms);
	for (size_t i = 0; a->policy != NULL && a->policy->mode != MTASTS_MODE_NONE && i < call->mx->n; i++) {
		bool match = mtasts_policy_mx_match(a->policy, call->mx->hosts[i]);
		printf("  MX %s: %s\n", call->mx->hosts[i],
		       match ? (a->policy->mode == MTASTS_MODE_ENFORCE ? "matches: TLS with a verified certificate required"
								: "matches (testing: verified and reported, not enforced)")
			     : (a->policy->mode == MTASTS_MODE_ENFORCE ? "does not match: not used (4.7.5)"
								: "does not match (testing: reported, delivered anyway)"));
	}
	event_base_loopbreak(w->base);
}

/* Runs one lookup to its answer. */
static int tls_ask(struct event_base *base, struct mtasts_cache *c, const char *domain, unsigned budget, bool recheck,
		   const char *label, const struct tls_mx *mx, struct tls_wait *w)
{
	*w = (struct tls_wait){.base = base, .started_ms = date_mono_ms()};
	struct tls_call call = {.w = w, .label = label, .mx = mx};
	struct mtasts_lookup *l = recheck ? mtasts_recheck(c, domain, budget, tls_done, &call)
					  : mtasts_lookup(c, domain, budget, tls_done, &call);
	if (l == NULL) {
		cli_error("%s: not a domain name", domain);
		return -1;
	}
	while (!w->done)
		event_base_loop(base, EVLOOP_ONCE);
	return 0;
}

static void tls_print_mx(struct cli_dns *d, const char *domain, struct tls_mx *mx)
{
	struct cli_answer a;
	if (cli_dns_ask(d, domain, DNS_RRTYPE_MX, &a) != 0)
		return;
	if (a.status == DNS_STATUS_OK) {
		for (size_t i = 0; i < a.count; i++) {
			printf("MX: %s\n", a.items[i]);
			const char *sp = strchr(a.items[i], ' ');
			if (sp != NULL && mx->n < 16)
				snprintf(mx->hosts[mx->n++], DNS_HOST_SIZE, "%s", sp + 1);
		}
	} else if (a.status == DNS_STATUS_NXDOMAIN || a.status == DNS_STATUS_NODATA) {
		/* RFC 5321 §5.1: the implicit MX */
		printf("MX: none (the domain itself receives: implicit MX)\n");
		snprintf(mx->hosts[mx->n++], DNS_HOST_SIZE, "%s", domain);
	} else {
		printf("MX: lookup failed (%s)\n", a.why);
	}
	cli_answer_clear(&a);
}

static void tls_print_txt(struct cli_dns *d, const char *domain)
{
	char name[DNS_HOST_SIZE + 16];
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	struct cli_answer a;
	if (cli_dns_ask(d, name, DNS_RRTYPE_TXT, &a) != 0)
		return;
	if (a.status == DNS_STATUS_OK)
		for (size_t i = 0; i < a.count; i++)
			printf("MTA-STS TXT: %s\n", a.items[i]);
	else if (a.status == DNS_STATUS_NXDOMAIN || a.status == DNS_STATUS_NODATA)
		printf("MTA-STS TXT: none\n");
	else
		printf("MTA-STS TXT: lookup failed (%s)\n", a.why);
	cli_answer_clear(&a);
}

int cli_tls_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"budget", required_argument, NULL, 'b'},
		{"no-wait", no_argument, NULL, 'n'},
		{"recheck", no_argument, NULL, 'R'},
		{"probe", no_argument, NULL, 'p'},
		{"resolver", required_argument, NULL, 'r'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *resolver = NULL;
	char *overrides[TLS_MAX_OVERRIDES];
	unsigned n_over = 0;
	long budget = -1;
	bool wait = true, recheck = false, probe = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b': {
			char *end;
			budget = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || budget < 0 || budget > 600000) {
				cli_error("--budget %s: expected milliseconds, 0 to 600000", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		}
		case 'n': wait = false; break;
		case 'R': recheck = true; break;
		case 'p': probe = true; break;
		case 'r':
			if (!cli_dns_resolver_ok(optarg))
				return CLI_EXIT_USAGE;
			resolver = optarg;
			break;
		case 'c': conf_path = optarg; break;
		case 'o':
			if (n_over == TLS_MAX_OVERRIDES) {
				cli_error("at most %d -o options", TLS_MAX_OVERRIDES);
				return CLI_EXIT_USAGE;
			}
			overrides[n_over++] = optarg;
			break;
		case 'h': cli_tls_usage(stdout); return CLI_EXIT_OK;
		default: return cli_option_error("tls", c, argv);
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "check") != 0) {
		cli_tls_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *domain = argv[optind + 1];
	struct cli_dns d = {0};
	char err[512];
	if ((d.conf = cli_conf_load(conf_path, overrides, n_over)) == NULL)
		return CLI_EXIT_RUNTIME;
	/* the policy cache is the server's file: written as [server] user, as the server would */
	if (d.conf->user[0] != '\0' && identity_become(d.conf->user, err, sizeof(err)) != 0) {
		cli_error("%s", err);
		cli_dns_close(&d);
		return CLI_EXIT_RUNTIME;
	}
	if ((d.base = event_base_new()) == NULL ||
	    (d.dns = dns_new(d.base, resolver != NULL ? resolver : d.conf->dns_resolver, d.conf->dns_trust_anchor, NULL,
			     err, sizeof(err))) == NULL) {
		cli_error("%s", d.base == NULL ? "cannot create the event loop" : err);
		cli_dns_close(&d);
		return CLI_EXIT_RUNTIME;
	}
	printf("domain: %s\n", domain);
	struct tls_mx mx = {0};
	tls_print_mx(&d, domain, &mx);
	tls_print_txt(&d, domain);
	struct mtasts_cache_opts co = {
		.dns = d.dns,
		.data_dir = d.conf->data_dir,
		.ca_file = d.conf->mta_sts_ca_file,
		.allow_private = d.conf->mta_sts_allow_private,
		.fetch_timeout_ms = d.conf->mta_sts_fetch_timeout,
		.max_fetches = d.conf->mta_sts_max_fetches,
	};
	struct mtasts_cache *cache = mtasts_cache_new(&co, err, sizeof(err));
	if (cache == NULL) {
		cli_error("%s", err);
		cli_dns_close(&d);
		return CLI_EXIT_RUNTIME;
	}
	unsigned b = budget >= 0 ? (unsigned)budget : d.conf->mta_sts_budget;
	struct tls_wait w;
	int rc = tls_ask(d.base, cache, domain, b, recheck, "lookup", &mx, &w);
	bool has = w.has_policy;
	if (rc == 0 && wait && mtasts_cache_fetches(cache) > 0) {
		/* the background fetch: waited for here, so that its outcome is cached and shown */
		while (mtasts_cache_fetches(cache) > 0)
			event_base_loop(d.base, EVLOOP_ONCE);
		rc = tls_ask(d.base, cache, domain, 0, false, "after the fetch", &mx, &w);
		has = w.has_policy;
	}
	mtasts_cache_stop(cache);
	mtasts_cache_free(cache);
	struct cli_tls_dane_outcome dane;
	struct cli_tls_sts sts = {.state = w.sts_state, .policy = has ? &w.sts : NULL};
	cli_tls_dane(&d, domain, &sts, probe, &dane);
	cli_dns_close(&d);
	if (fflush(stdout) != 0 || ferror(stdout))
		return CLI_EXIT_RUNTIME;
	bool secured = has || (dane.hosts > 0 && dane.dane_hosts == dane.hosts);
	return rc == 0 && secured && dane.probe_failed == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
}

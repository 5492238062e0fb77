/* cli_resolve.c — owns `mailwerk resolve DOMAIN`: runs the same MX resolution outbound delivery
 * uses (src/delivery/mx.c over src/net/dns.c) and prints where mail for DOMAIN would go, or why it
 * cannot go anywhere. Needs no setup: without a configuration file it asks the system's resolvers. */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli/cli_dns.h"
#include "conf/conf.h"
#include "delivery/mx.h"
#include "net/dns.h"

struct cli_resolve {
	struct event_base *base;
	int rc;
	bool done;
	bool validating;
};

static void cli_resolve_usage(FILE *f)
{
	fputs("usage: mailwerk resolve DOMAIN [--resolver ADDR@PORT] [--timeout DURATION] [-c FILE]\n"
		"\n"
		"Prints where mail for DOMAIN would go (RFC 5321 §5.1): one line per host in the order\n"
		"delivery tries them, \"PREFERENCE HOST ADDRESS...\", or why it cannot go anywhere. Lines\n"
		"starting with ';' are notes. DOMAIN may be an address literal such as [192.0.2.1].\n"
		"Exit status: 0 deliverable, 1 not (or an error), 2 usage.\n"
		"\n"
		"  -c, --config FILE      take [dns] from this configuration (default " CLI_DEFAULT_CONF
		" if it exists;\n"
		"                         otherwise the resolvers of /etc/resolv.conf)\n"
		"      --resolver ADDR@PORT  ask this DNS server instead (e.g. 127.0.0.1@5353)\n"
		"      --timeout DURATION    give up on each lookup after this long (default 30s)\n"
		"  -h, --help             show this help\n",
		f);
}

/* DNS-derived text is checked already; the domain and unbound's reasons are printed clean anyway,
 * so that nothing can reach the terminal as a control sequence. */
static void cli_resolve_print_clean(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

static void cli_resolve_done(void *arg, const struct mx_result *r)
{
	struct cli_resolve *cr = arg;
	char buf[64];

	if (r->status != MX_STATUS_OK) {
		cli_resolve_print_clean(r->reason);
		printf(" (%s)\n", r->enhanced);
		cr->rc = CLI_EXIT_RUNTIME;
	} else {
		for (size_t i = 0; i < r->count; i++) {
			const struct mx_target *t = &r->targets[i];
			printf("%u ", (unsigned)t->pref);
			cli_resolve_print_clean(t->host);
			for (size_t k = 0; k < t->addr_count; k++)
				printf(" %s", dns_addr_str(&t->addrs[k], buf, sizeof(buf)));
			putchar('\n');
		}
		if (r->count > 0 && r->targets[0].implicit && r->targets[0].host[0] != '[')
			printf("; no MX records: implicit MX, the domain's own addresses (RFC 5321 §5.1)\n");
		if (r->incomplete)
			printf("; some hosts or addresses were left out after temporary DNS failures\n");
		/* what DANE (RFC 7672 §2.2) will rely on: only meaningful with a trust anchor */
		if (cr->validating && (r->count == 0 || r->targets[0].host[0] != '[')) {
			printf("; DNSSEC: MX answer %s\n", r->mx_secure ? "secure" : "insecure");
			for (size_t i = 0; i < r->count; i++) {
				printf("; DNSSEC: addresses of ");
				cli_resolve_print_clean(r->targets[i].host);
				printf(" %s\n", r->targets[i].secure ? "secure" : "insecure");
			}
		}
		cr->rc = CLI_EXIT_OK;
	}
	cr->done = true;
	event_base_loopbreak(cr->base);
}

int cli_resolve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"resolver", required_argument, NULL, 'r'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *resolver = NULL;
	unsigned timeout = DNS_TIMEOUT_DEFAULT;
	struct cli_resolve cr = {.rc = CLI_EXIT_RUNTIME};
	const char *perr;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf_path = optarg;
			break;
		case 'r':
			if (!cli_dns_resolver_ok(optarg))
				return CLI_EXIT_USAGE;
			resolver = optarg;
			break;
		case 't':
			if ((perr = conf_parse_duration(optarg, &timeout)) != NULL || timeout == 0 || timeout > 3600) {
				cli_error("--timeout %s: %s", optarg, perr != NULL ? perr : "expected 1s to 1h");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			cli_resolve_usage(stdout);
			return CLI_EXIT_OK;
		default:
			cli_resolve_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_resolve_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *domain = argv[optind];

	/* -c names a setup; without it the default setup is used when there is one, and nothing else is
	 * needed: this command must work on a machine with no setup at all */
	struct cli_dns cd;
	if (cli_dns_open(&cd, conf_path, resolver, timeout) != 0)
		return CLI_EXIT_RUNTIME;
	struct dns *d = cd.dns;
	cr.base = cd.base;
	cr.validating = dns_validating(d);
	struct mx_query *q = mx_resolve(d, domain, cli_resolve_done, &cr);
	if (q == NULL) {
		cli_error("out of memory");
	} else {
		event_base_dispatch(cr.base);
		if (!cr.done) { /* the loop ended without an answer: should not happen */
			mx_cancel(q);
			cli_error("the lookup ended without an answer");
			cr.rc = CLI_EXIT_RUNTIME;
		}
	}
	cli_dns_close(&cd);
	if (fflush(stdout) != 0 && cr.rc == CLI_EXIT_OK) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		cr.rc = CLI_EXIT_RUNTIME;
	}
	return cr.rc;
}

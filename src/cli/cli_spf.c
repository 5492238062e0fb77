/* cli_spf.c — owns `mailwerk spf check`: the SPF evaluation inbound mail gets (src/auth/spf.c,
 * RFC 7208 check_host()), for an address, sender and HELO name given on the command line. */
#include "cli/cli_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/spf.h"
#include "cli/cli_dns.h"
#include "conf/conf.h"

static void cli_spf_usage(FILE *f)
{
	fputs("usage: mailwerk spf check --ip ADDRESS --sender ADDR --helo NAME [--identity mailfrom|helo]\n"
	      "                          [--resolver ADDR@PORT] [-c FILE]\n"
	      "\n"
	      "Evaluates SPF (RFC 7208) as mailwerk does for inbound mail and prints the result word\n"
	      "(pass, fail, softfail, neutral, none, temperror, permerror), then lines of detail.\n"
	      "--sender '' checks postmaster@<helo>, as for a bounce (MAIL FROM:<>).\n"
	      "Exit status: 0 pass, 1 any other result or an error, 2 usage.\n"
	      "\n"
	      "      --ip ADDRESS          the SMTP client's IPv4 or IPv6 address\n"
	      "      --sender ADDR         the MAIL FROM address (without brackets)\n"
	      "      --helo NAME           the HELO/EHLO name\n"
	      "      --identity WHICH      mailfrom (default) or helo (RFC 7208 §2.3)\n"
	      "      --resolver ADDR@PORT  ask this DNS server (default: [dns] resolver, else the system's)\n"
	      "  -c, --config FILE         the setup (default " CLI_DEFAULT_CONF " if it exists)\n"
	      "  -h, --help                show this help\n",
	      f);
}

/* Text from DNS (explanations) is printed without control characters. */
static void cli_spf_print_clean(const char *label, const char *s)
{
	fputs(label, stdout);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
	putchar('\n');
}

int cli_spf_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ip", required_argument, NULL, 'i'},
		{"sender", required_argument, NULL, 's'},
		{"helo", required_argument, NULL, 'e'},
		{"identity", required_argument, NULL, 'I'},
		{"resolver", required_argument, NULL, 'r'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *ip = NULL, *sender = NULL, *helo = NULL, *resolver = NULL, *conf_path = NULL;
	struct spf_request req = {.identity = SPF_IDENTITY_MAILFROM};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': ip = optarg; break;
		case 's': sender = optarg; break;
		case 'e': helo = optarg; break;
		case 'c': conf_path = optarg; break;
		case 'I':
			if (strcmp(optarg, "mailfrom") == 0) {
				req.identity = SPF_IDENTITY_MAILFROM;
			} else if (strcmp(optarg, "helo") == 0) {
				req.identity = SPF_IDENTITY_HELO;
			} else {
				cli_error("--identity %s: expected mailfrom or helo", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'r':
			if (!cli_dns_resolver_ok(optarg))
				return CLI_EXIT_USAGE;
			resolver = optarg;
			break;
		case 'h':
			cli_spf_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("spf", c, argv);
		}
	}
	if (argc - optind != 1 || strcmp(argv[optind], "check") != 0) {
		cli_spf_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (ip == NULL || sender == NULL || helo == NULL) {
		cli_error("spf check needs --ip, --sender and --helo");
		return CLI_EXIT_USAGE;
	}
	if (inet_pton(AF_INET, ip, req.ip.bytes) == 1) {
		req.ip.family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, req.ip.bytes) == 1) {
		req.ip.family = AF_INET6;
	} else {
		cli_error("--ip %s: not an IPv4 or IPv6 address", ip);
		return CLI_EXIT_USAGE;
	}
	struct cli_dns d;
	if (cli_dns_open(&d, conf_path, resolver, 0) != 0)
		return CLI_EXIT_RUNTIME;
	req.mail_from = sender;
	req.helo = helo;
	req.receiver = d.conf != NULL ? d.conf->hostname : NULL;
	req.now = time(NULL);
	struct spf_eval *e = spf_eval_new(&req);
	int rc = CLI_EXIT_RUNTIME;
	if (e == NULL) {
		cli_error("out of memory");
	} else if (cli_dns_run(&d, spf_eval_step, e) == 0) {
		enum spf_result r = spf_eval_result(e);
		printf("%s\n", spf_result_str(r));
		cli_spf_print_clean("domain: ", spf_eval_domain(e));
		cli_spf_print_clean("sender: ", spf_eval_sender(e));
		cli_spf_print_clean("why: ", spf_eval_problem(e));
		printf("lookups: %u (limit %d), void lookups: %u (limit %d)\n", spf_eval_lookups(e), SPF_LOOKUP_LIMIT,
		       spf_eval_void_lookups(e), SPF_VOID_LIMIT);
		if (spf_eval_explanation(e) != NULL)
			cli_spf_print_clean("explanation: ", spf_eval_explanation(e));
		rc = r == SPF_RESULT_PASS ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
	}
	spf_eval_free(e);
	cli_dns_close(&d);
	if (fflush(stdout) != 0) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		rc = CLI_EXIT_RUNTIME;
	}
	return rc;
}

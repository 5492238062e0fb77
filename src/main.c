/* main.c — `mailwerk COMMAND ...`: dispatch to the command families. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_common.h"

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct cli_command cli_commands[] = {
	{"init", cli_init_main, "create a new setup (config, TLS certificate, database, demo user)"},
	{"serve", cli_serve_main, "run the mail server"},
	{"user", cli_user_main, "add, change, delete and list users"},
	{"domain", cli_domain_main, "add, delete and list local domains"},
	{"alias", cli_alias_main, "add, delete and list aliases and catch-alls"},
	{"route", cli_route_main, "add, change, delete and list inbound routes (mail for the applications)"},
	{"status", cli_status_main, "what the running server is doing (sessions, queue, listeners)"},
	{"queue", cli_queue_main, "list, show, hold, release, bounce, delete and flush queued messages"},
	{"resolve", cli_resolve_main, "show where mail for a domain would go (MX hosts and addresses)"},
	{"dkim", cli_dkim_main, "make, rotate, list DKIM keys; sign and verify messages"},
	{"spf", cli_spf_main, "evaluate SPF for an address, sender and HELO name"},
	{"dns", cli_dns_main, "the DNS records to publish for a domain, and a check of what is published"},
	{"tls", cli_tls_main, "what outbound TLS meets at a domain: MX hosts, MTA-STS record, policy and cache"},
	{"apikey", cli_apikey_main, "create, list and revoke HTTP API keys"},
	{"webhook", cli_webhook_main, "add, list, delete, test webhooks and show their delivery log"},
	{"config", cli_config_main, "check the configuration (every problem, FILE:LINE) and show the values in effect"},
	{"suppression", cli_suppression_main, "list, add, delete and import addresses that get no more mail"},
	{"acme", cli_acme_main, "get a new ACME certificate now, or revoke the one in use and get another"},
	{"auth", cli_auth_main, "list and lift the bans of clients that failed to log in too often"},
};

static void main_usage(FILE *f)
{
	fprintf(f, "usage: mailwerk COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++)
		fprintf(f, "  %-8s %s\n", cli_commands[i].name, cli_commands[i].summary);
	fprintf(f, "\nEvery command takes -c FILE (default %s) and --help.\n", CLI_DEFAULT_CONF);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("mailwerk %s\n", MAILWERK_VERSION);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++)
		if (strcmp(argv[1], cli_commands[i].name) == 0)
			return cli_commands[i].run(argc - 1, argv + 1);
	cli_error("unknown command '%s' (see mailwerk --help)", argv[1]);
	return CLI_EXIT_USAGE;
}

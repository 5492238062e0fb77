/* cli_serve.c — `mailwerk serve`: runs the server in the foreground (the parent, and as the worker and
 * the DKIM signer it starts, `serve --role=worker` and `serve --role=signer`); `serve --role=check`,
 * what a parent runs of a new binary before it upgrades to it; `serve --upgrade`, which asks the
 * running server to upgrade (cli_upgrade.h). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cli/cli_common.h"
#include "cli/cli_upgrade.h"
#include "conf/conf.h"
#include "http/session.h"
#include "pop3/session.h"
#include "server/parent.h"
#include "server/signer.h"
#include "server/server.h"
#include "smtp/session.h"
#include "util/identity.h"

#define SERVE_MAX_OVERRIDES 64

/* The protocol each kind of listener speaks: a new protocol adds a row here. */
static const struct server_protocol *const serve_protocols[CONF_LISTEN_COUNT] = {
	[CONF_LISTEN_SMTP] = &smtp_protocol,
	[CONF_LISTEN_SUBMISSION] = &smtp_protocol,
	[CONF_LISTEN_SUBMISSIONS] = &smtp_protocol,
	[CONF_LISTEN_POP3] = &pop3_protocol,
	[CONF_LISTEN_POP3S] = &pop3_protocol,
	[CONF_LISTEN_HTTP] = &http_protocol,
	[CONF_LISTEN_HTTPS] = &http_protocol,
};

static void serve_usage(FILE *f)
{
	fprintf(f, "usage: mailwerk serve [-c FILE] [-o section.key=value]...\n"
		   "       mailwerk serve --upgrade [-c FILE]\n"
		   "\n"
		   "Runs the mail server in the foreground; logs go to stderr.\n"
		   "  -c, --config FILE   configuration file (default %s)\n"
		   "  -o section.key=VAL  override one configuration key (repeatable)\n"
		   "      --upgrade       ask the server running with FILE to upgrade to the binary on disk\n"
		   "                      and wait: exit 0 when a new worker serves from it, 1 when the\n"
		   "                      upgrade failed (the old worker serves on), 3 when none runs\n"
		   "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads configuration and TLS files;\n"
		   "SIGUSR2 upgrades to the binary at the path the server was started from.\n"
		   "The process started keeps the listeners and runs a worker process (the same program, as\n"
		   "[server] user) that does the work, restarting it if it dies.\n",
		CLI_DEFAULT_CONF);
}

/* What the parent prints once the first worker serves. */
static void serve_print_listeners(const struct conf *c)
{
	printf("mailwerk %s serving as %s\n", MAILWERK_VERSION, c->hostname);
	for (int role = 0; role < CONF_LISTEN_COUNT; role++)
		for (size_t i = 0; i < c->listen[role].count; i++)
			printf("  %-12s %s%s\n", conf_listener_str(role), c->listen[role].addrs[i].text,
			       role == CONF_LISTEN_SMTP ? "   (inbound mail for local domains)"
			       : role == CONF_LISTEN_SUBMISSION ? "   (STARTTLS + AUTH, relays for users)"
			       : role == CONF_LISTEN_SUBMISSIONS ? "   (implicit TLS + AUTH, relays for users)"
			       : role == CONF_LISTEN_POP3 ? "   (POP3 mail pickup, STLS + login)"
			       : role == CONF_LISTEN_POP3S ? "   (POP3 mail pickup over implicit TLS)"
			       : role == CONF_LISTEN_HTTP ? "   (HTTP API, Resend-compatible)"
							   : "   (HTTP API over TLS)");
	fflush(stdout);
}

/* The worker role: what the parent executes (parent.h), never started by hand. */
static int serve_worker(struct conf *c, char *const *overrides, unsigned n)
{
	/* executed as /proc/self/exe, it would be "exe" in ps and top */
	prctl(PR_SET_NAME, "mailwerk-worker");
	struct server *srv = malloc(sizeof(*srv));
	char err[512];
	if (srv == NULL) {
		cli_error("out of memory");
		conf_free(c);
		return CLI_EXIT_RUNTIME;
	}
	if (server_init(srv, serve_protocols, c, overrides, n, err, sizeof(err)) != 0) {
		cli_error("%s", err);
		server_deinit(srv);
		free(srv);
		return CLI_EXIT_RUNTIME;
	}
	int rc = server_run(srv);
	server_deinit(srv);
	free(srv);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
}

/* The signer role (server/signer.h): also executed by the parent only. */
static int serve_signer(struct conf *c)
{
	prctl(PR_SET_NAME, "mailwerk-signer");
	char err[512];
	int rc = signer_run(c, err, sizeof(err));
	if (rc != 0)
		cli_error("%s", err);
	conf_free(c);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
}

/* The check role: what a parent about to execute this binary in its place runs of it first
 * (parent_upgrade.h). The binary runs, knows the role (an older one without it exits 2) and takes
 * the configuration, with what the parent would refuse at its start. */
static int serve_check(struct conf *c)
{
	uid_t uid;
	gid_t gid;
	char err[256];
	int rc = CLI_EXIT_OK;
	if (c->signer_user[0] != '\0' && identity_lookup(c->signer_user, &uid, &gid, err, sizeof(err)) != 0) {
		cli_error("[server] signer_user: %s", err);
		rc = CLI_EXIT_RUNTIME;
	}
	conf_free(c);
	return rc;
}

/* argv with "--role=ROLE" after "serve" (argv[0] "mailwerk"; role NULL: none), NULL-terminated; NULL
 * when out of memory. */
static char **role_argv(int argc, char **argv, const char *role)
{
	char **v = calloc((size_t)argc + 3, sizeof(*v));
	if (v == NULL)
		return NULL;
	size_t k = 0;
	v[k++] = "mailwerk";
	v[k++] = "serve";
	if (role != NULL)
		v[k++] = (char *)role;
	for (int i = 1; i < argc; i++)
		v[k++] = argv[i];
	return v;
}

int cli_serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"role", required_argument, NULL, 'r'},
		{"upgrade", no_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	char *overrides[SERVE_MAX_OVERRIDES];
	unsigned n = 0;
	bool worker = false, signer = false, check = false, upgrade = false;
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "c:o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			if (n == SERVE_MAX_OVERRIDES) {
				cli_error("serve: at most %d -o options", SERVE_MAX_OVERRIDES);
				return CLI_EXIT_USAGE;
			}
			overrides[n++] = optarg;
			break;
		case 'r':
			worker = strcmp(optarg, "worker") == 0;
			signer = strcmp(optarg, "signer") == 0;
			check = strcmp(optarg, "check") == 0;
			if (!worker && !signer && !check) {
				cli_error("serve: unknown role '%s'", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'u':
			upgrade = true;
			break;
		case 'h':
			serve_usage(stdout);
			return CLI_EXIT_OK;
		default:
			serve_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_error("serve: unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (upgrade && (worker || signer || check || n > 0)) {
		cli_error("serve: --upgrade takes only -c (the running server has its own -o values)");
		return CLI_EXIT_USAGE;
	}
	struct conf *c = cli_conf_load(path, overrides, n);
	if (c == NULL)
		return CLI_EXIT_RUNTIME;
	if (worker)
		return serve_worker(c, overrides, n);
	if (signer)
		return serve_signer(c);
	if (check)
		return serve_check(c);
	if (upgrade) {
		int rc = cli_upgrade_run(c);
		conf_free(c);
		return rc;
	}
	/* the command lines the parent executes: the other roles' are ours with the role after "serve";
	 * its own again, at an upgrade, is ours as it was */
	char **wargv = role_argv(argc, argv, "--role=worker"), **sargv = role_argv(argc, argv, "--role=signer");
	char **cargv = role_argv(argc, argv, "--role=check"), **pargv = role_argv(argc, argv, NULL);
	if (wargv == NULL || sargv == NULL || cargv == NULL || pargv == NULL) {
		cli_error("out of memory");
		free(wargv), free(sargv), free(cargv), free(pargv);
		conf_free(c);
		return CLI_EXIT_RUNTIME;
	}
	const struct parent_programs programs = {.worker = wargv, .signer = sargv, .self = pargv, .check = cargv};
	int rc = parent_run(c, overrides, n, &programs, serve_print_listeners);
	free(wargv), free(sargv), free(cargv), free(pargv);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
}

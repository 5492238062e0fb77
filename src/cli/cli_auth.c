/* cli_auth.c — owns `mailwerk auth bans|unban`: the clients banned after too many failed logins, in
 * DATA_DIR/mailwerk.db (mailbox/users.h, auth_bans). Safe next to a running server: it reads the
 * table again every LOGIN_BAN_REFRESH_SECONDS, so an unban lets the client in within seconds. */
#include "cli/cli_common.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "conf/conf.h"
#include "mailbox/users.h"
#include "net/iplimit.h"
#include "server/login.h"

enum cli_auth_cmd {
	CLI_AUTH_BANS,
	CLI_AUTH_UNBAN,
};

struct cli_auth_args {
	enum cli_auth_cmd cmd;
	const char *conf_path;
	bool json; /* bans */
	bool all;  /* unban */
	const char *address; /* unban, as given */
	char client[NET_CLIENT_KEY_SIZE]; /* unban: the client it names */
};

static void cli_auth_usage(FILE *f)
{
	fputs("usage: mailwerk auth bans [--json] [-c FILE]\n"
	      "       mailwerk auth unban ADDRESS|--all [-c FILE]\n"
	      "\n"
	      "Clients banned after too many failed logins ([server] auth_ban_failures within 15 minutes):\n"
	      "the server refuses their connections until the ban ends ([server] auth_ban_time).\n"
	      "\n"
	      "  bans     every ban in force: client, since, until (UTC) and the failures that caused it.\n"
	      "           A client is an IPv4 address or an IPv6 prefix ([server] ipv6_prefix).\n"
	      "  unban    lifts the ban of ADDRESS: a client as bans shows it, or an address (an IPv6\n"
	      "           address names its prefix); --all lifts every ban. A running server lets the\n"
	      "           client in again within a few seconds, with its failures forgotten.\n"
	      "\n"
	      "      --json         bans: one JSON object per line instead of a table\n"
	      "      --all          unban: every ban\n"
	      "  -c, --config FILE  configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help         show this help\n",
	      f);
}

/* "2026-12-07T09:00:00Z" (UTC) */
static void cli_auth_time_fmt(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "@%" PRId64, t);
}

static void cli_auth_bans_text(const struct users_ban *v, size_t n)
{
	size_t w = strlen("CLIENT");
	if (n == 0) {
		puts("no bans");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i].client) > w)
			w = strlen(v[i].client);
	printf("%-*s  %-20s  %-20s  %s\n", (int)w, "CLIENT", "SINCE", "UNTIL", "FAILURES");
	for (size_t i = 0; i < n; i++) {
		char since[32], until[32];
		cli_auth_time_fmt(v[i].since, since, sizeof(since));
		cli_auth_time_fmt(v[i].until, until, sizeof(until));
		printf("%-*s  %-20s  %-20s  %u\n", (int)w, v[i].client, since, until, v[i].failures);
	}
}

/* One object per line (JSON Lines), as `apikey list --json` writes. */
static int cli_auth_bans_json(const struct users_ban *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char since[32], until[32];
		cli_auth_time_fmt(v[i].since, since, sizeof(since));
		cli_auth_time_fmt(v[i].until, until, sizeof(until));
		json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "client", v[i].client, "since", since, "until", until,
				      "failures", (json_int_t)v[i].failures);
		char *line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(o);
		if (line == NULL) {
			cli_error("auth bans: cannot write the ban of %s as JSON", v[i].client);
			return CLI_EXIT_RUNTIME;
		}
		puts(line);
		free(line);
	}
	return CLI_EXIT_OK;
}

static int cli_auth_bans_run(struct users *u, const struct cli_auth_args *a)
{
	struct users_ban *v;
	size_t n;
	const char *err;
	if (users_ban_list(u, (int64_t)time(NULL), USERS_BANS_MAX, &v, &n, &err) != RESULT_OK) {
		cli_error("auth bans: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	int rc = CLI_EXIT_OK;
	if (a->json)
		rc = cli_auth_bans_json(v, n);
	else
		cli_auth_bans_text(v, n);
	free(v);
	return rc;
}

static int cli_auth_unban_run(struct users *u, const struct cli_auth_args *a)
{
	const char *err;
	if (a->all) {
		unsigned n;
		if (users_ban_del_all(u, (int64_t)time(NULL), &n, &err) != RESULT_OK) {
			cli_error("auth unban: %s", err);
			return CLI_EXIT_RUNTIME;
		}
		printf("lifted %u ban%s\n", n, n == 1 ? "" : "s");
		return CLI_EXIT_OK;
	}
	switch (users_ban_del(u, a->client, &err)) {
	case RESULT_OK:
		printf("lifted the ban of %s; a running server lets it in within %d seconds\n", a->client,
		       LOGIN_BAN_REFRESH_SECONDS + 1);
		return CLI_EXIT_OK;
	case RESULT_PERMFAIL:
		cli_error("auth unban: no ban for %s (see: mailwerk auth bans)", a->client);
		return CLI_EXIT_RUNTIME;
	default:
		cli_error("auth unban: %s", err);
		return CLI_EXIT_RUNTIME;
	}
}

static int cli_auth_run(struct users *u, const void *arg)
{
	const struct cli_auth_args *a = arg;
	return a->cmd == CLI_AUTH_BANS ? cli_auth_bans_run(u, a) : cli_auth_unban_run(u, a);
}

/* ---- arguments ---- */

/* Checks what goes with the command. Returns -1 to go on, or the usage exit code. */
static int cli_auth_args_check(struct cli_auth_args *a, int npos, char **rest)
{
	const char *cmd = a->cmd == CLI_AUTH_BANS ? "bans" : "unban";
	int want = a->cmd == CLI_AUTH_UNBAN && !a->all ? 1 : 0;
	if (npos < want) {
		cli_error("auth unban: missing ADDRESS (or --all); see: mailwerk auth --help");
		return CLI_EXIT_USAGE;
	}
	if (npos > want) {
		cli_error("auth %s: unexpected argument \"%s\"%s; see: mailwerk auth --help", cmd, rest[want],
			  a->all ? " (--all takes no ADDRESS)" : "");
		return CLI_EXIT_USAGE;
	}
	if (a->cmd != CLI_AUTH_BANS && a->json) {
		cli_error("auth %s: --json applies to bans only", cmd);
		return CLI_EXIT_USAGE;
	}
	if (a->cmd != CLI_AUTH_UNBAN && a->all) {
		cli_error("auth %s: --all applies to unban only", cmd);
		return CLI_EXIT_USAGE;
	}
	if (want == 1)
		a->address = rest[0];
	return -1;
}

/* Parses argv into a. Returns -1 to go on, or the exit code (help printed, or a usage error). */
static int cli_auth_args_parse(int argc, char **argv, struct cli_auth_args *a)
{
	enum { OPT_JSON = 1000, OPT_ALL };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, OPT_JSON},
		{"all", no_argument, NULL, OPT_ALL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	memset(a, 0, sizeof(*a));
	optind = 0; /* glibc: 0 re-initialises, so a second call in one process parses afresh */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->conf_path = optarg;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_ALL:
			a->all = true;
			break;
		case 'h':
			cli_auth_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("auth", c, argv);
		}
	}
	int npos = argc - optind;
	if (npos < 1) {
		cli_error("missing command (bans or unban); see: mailwerk auth --help");
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "bans") == 0) {
		a->cmd = CLI_AUTH_BANS;
	} else if (strcmp(cmd, "unban") == 0) {
		a->cmd = CLI_AUTH_UNBAN;
	} else {
		cli_error("unknown command \"%s\" (bans or unban); see: mailwerk auth --help", cmd);
		return CLI_EXIT_USAGE;
	}
	return cli_auth_args_check(a, npos - 1, argv + optind + 1);
}

int cli_auth_main(int argc, char **argv)
{
	struct cli_auth_args a;
	int rc = cli_auth_args_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (a.address != NULL) {
		/* an address names its client as the server counts it: that needs [server] ipv6_prefix */
		struct conf *cf = cli_conf_load(a.conf_path, NULL, 0);
		if (cf == NULL)
			return CLI_EXIT_RUNTIME;
		bool ok = iplimit_key_parse(a.address, cf->ipv6_prefix, a.client);
		conf_free(cf);
		if (!ok) {
			cli_error("auth unban: \"%s\" is not an IP address or an IPv6 prefix (ADDRESS/BITS)", a.address);
			return CLI_EXIT_USAGE;
		}
	}
	return cli_with_users(a.conf_path, cli_auth_run, &a);
}

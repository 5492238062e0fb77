/* cli_domain.c — `mailwerk domain add|del|list`: the local domains in DATA_DIR/mailwerk.db, i.e. the
 * domains whose mail this server accepts for its own users. */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "mailbox/users.h"
#include "util/addr.h"

enum cli_domain_action {
	CLI_DOMAIN_ADD,
	CLI_DOMAIN_DEL,
	CLI_DOMAIN_LIST,
};

struct cli_domain_args {
	enum cli_domain_action action;
	const char *conf_path;
	char domain[ADDR_DOMAIN_MAX + 1]; /* folded to lower case, as the database keeps it */
};

static void cli_domain_usage(FILE *out)
{
	fputs("usage: mailwerk domain add DOMAIN [-c FILE]\n"
	      "       mailwerk domain del DOMAIN [-c FILE]\n"
	      "       mailwerk domain list [-c FILE]\n"
	      "\n"
	      "Local domains are the ones this server receives mail for; users can only be added in them,\n"
	      "and a domain can only be deleted once it has no users left.\n"
	      "\n"
	      "  -c, --config FILE  configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help         show this help\n",
	      out);
}

static void cli_domain_list_print(const char *name, void *arg)
{
	(void)arg;
	fputs(name, stdout);
	fputc('\n', stdout);
}

/* Parses argv into args. Returns -1 to go on, or the exit code (help printed, or a usage error). */
static int cli_domain_args_parse(int argc, char **argv, struct cli_domain_args *args)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	memset(args, 0, sizeof(*args));
	optind = 0; /* glibc: 0 re-initialises, so a second call in one process parses afresh */
	opterr = 0; /* our own one-line errors instead of getopt's, which would start with "domain:" */
	int c;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			args->conf_path = optarg;
			break;
		case 'h':
			cli_domain_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("domain", c, argv);
		}
	}

	int npos = argc - optind;
	if (npos < 1) {
		cli_error("missing command (add, del or list); see: mailwerk domain --help");
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int want = 1;
	if (strcmp(cmd, "add") == 0) {
		args->action = CLI_DOMAIN_ADD;
	} else if (strcmp(cmd, "del") == 0) {
		args->action = CLI_DOMAIN_DEL;
	} else if (strcmp(cmd, "list") == 0) {
		args->action = CLI_DOMAIN_LIST;
		want = 0;
	} else {
		cli_error("unknown command \"%s\" (add, del or list); see: mailwerk domain --help", cmd);
		return CLI_EXIT_USAGE;
	}
	if (npos - 1 < want) {
		cli_error("domain %s: missing DOMAIN; see: mailwerk domain --help", cmd);
		return CLI_EXIT_USAGE;
	}
	if (npos - 1 > want) {
		cli_error("domain %s: unexpected argument \"%s\"; see: mailwerk domain --help", cmd,
			  argv[optind + 1 + want]);
		return CLI_EXIT_USAGE;
	}
	if (!want)
		return -1;

	const char *d = argv[optind + 1];
	size_t len = strlen(d);
	/* del takes whatever is stored, so only add is held to the parser: a domain stored by an older,
	 * more lenient version can still be removed. */
	if (args->action == CLI_DOMAIN_ADD) {
		const char *err = NULL;
		if (addr_parse_domain(d, len, ADDR_ALLOW_UTF8, &err) != ADDR_OK) {
			cli_error("invalid domain \"%s\": %s", d, err ? err : "syntax error");
			return CLI_EXIT_USAGE;
		}
		if (d[0] == '[') {
			cli_error("%s is an address literal; only domain names can be local domains", d);
			return CLI_EXIT_USAGE;
		}
	}
	if (len == 0 || len > ADDR_DOMAIN_MAX) {
		cli_error("invalid domain \"%s\"", d);
		return CLI_EXIT_USAGE;
	}
	/* RFC 5321 §2.4: case-insensitive; folded here only so the messages show what is stored */
	for (size_t i = 0; i <= len; i++)
		args->domain[i] = (d[i] >= 'A' && d[i] <= 'Z') ? (char)(d[i] - 'A' + 'a') : d[i];
	return -1;
}

static int cli_domain_run(struct users *u, const void *arg)
{
	const struct cli_domain_args *args = arg;
	const char *err = NULL;
	switch (args->action) {
	case CLI_DOMAIN_ADD:
		if (users_domain_add(u, args->domain, &err) != RESULT_OK)
			break;
		printf("added domain %s\n", args->domain);
		return CLI_EXIT_OK;
	case CLI_DOMAIN_DEL:
		if (users_domain_del(u, args->domain, &err) != RESULT_OK)
			break;
		printf("deleted domain %s\n", args->domain);
		return CLI_EXIT_OK;
	case CLI_DOMAIN_LIST:
		if (users_domain_list(u, cli_domain_list_print, NULL, &err) != RESULT_OK)
			break;
		return CLI_EXIT_OK;
	}
	cli_error("%s", err ? err : "failed");
	return CLI_EXIT_RUNTIME;
}

int cli_domain_main(int argc, char **argv)
{
	struct cli_domain_args args;
	int rc = cli_domain_args_parse(argc, argv, &args);
	if (rc >= 0)
		return rc;
	return cli_with_users(args.conf_path, cli_domain_run, &args);
}

/* cli_alias.c — `mailwerk alias add|del|list`: addresses at local domains that deliver elsewhere;
 * "@domain" is the domain's catch-all. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_common.h"
#include "mailbox/users.h"

enum cli_alias_action {
	CLI_ALIAS_ADD,
	CLI_ALIAS_DEL,
	CLI_ALIAS_LIST,
};

struct cli_alias_args {
	enum cli_alias_action action;
	const char *conf_path;
	const char *address;
	char targets[USERS_TARGETS_MAX];
};

static void cli_alias_usage(FILE *out)
{
	fputs("usage: mailwerk alias add ADDRESS TARGET[,TARGET...] [-c FILE]\n"
	      "       mailwerk alias del ADDRESS [-c FILE]\n"
	      "       mailwerk alias list [-c FILE]\n"
	      "\n"
	      "Mail to ADDRESS (at a local domain) goes to every TARGET, local or remote; adding it again\n"
	      "replaces its targets. ADDRESS \"@domain\" is the domain's catch-all: it takes mail for\n"
	      "addresses there that are neither a user nor an alias.\n"
	      "\n"
	      "  -c, --config FILE  configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help         show this help\n",
	      out);
}

static void cli_alias_print(const char *address, const char *targets, void *arg)
{
	(void)arg;
	printf("%s -> %s\n", address, targets);
}

static int cli_alias_run(struct users *u, const void *arg)
{
	const struct cli_alias_args *args = arg;
	const char *err = NULL;
	enum result r;
	switch (args->action) {
	case CLI_ALIAS_ADD:
		if ((r = users_alias_add(u, args->address, args->targets, &err)) == RESULT_OK)
			printf("alias %s -> %s\n", args->address, args->targets);
		break;
	case CLI_ALIAS_DEL:
		if ((r = users_alias_del(u, args->address, &err)) == RESULT_OK)
			printf("deleted alias %s\n", args->address);
		break;
	default:
		r = users_alias_list(u, cli_alias_print, NULL, &err);
		break;
	}
	if (r != RESULT_OK) {
		cli_error("%s", err);
		return CLI_EXIT_RUNTIME;
	}
	return CLI_EXIT_OK;
}

int cli_alias_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cli_alias_args args = {0};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (c == 'c') {
			args.conf_path = optarg;
		} else if (c == 'h') {
			cli_alias_usage(stdout);
			return CLI_EXIT_OK;
		} else {
			return cli_option_error("alias", c, argv);
		}
	}
	int npos = argc - optind;
	const char *cmd = npos > 0 ? argv[optind] : "";
	if (strcmp(cmd, "add") == 0 && npos >= 3) {
		args.action = CLI_ALIAS_ADD;
		/* targets may come as one comma-separated word or as several words */
		size_t o = 0;
		for (int i = optind + 2; i < argc; i++) {
			int w = snprintf(args.targets + o, sizeof(args.targets) - o, "%s%s", o ? "," : "", argv[i]);
			if (w < 0 || (size_t)w >= sizeof(args.targets) - o) {
				cli_error("alias add: too many targets");
				return CLI_EXIT_USAGE;
			}
			o += (size_t)w;
		}
	} else if (strcmp(cmd, "del") == 0 && npos == 2) {
		args.action = CLI_ALIAS_DEL;
	} else if (strcmp(cmd, "list") == 0 && npos == 1) {
		args.action = CLI_ALIAS_LIST;
	} else {
		cli_error("expected: alias add ADDRESS TARGET..., alias del ADDRESS or alias list; see: mailwerk alias --help");
		return CLI_EXIT_USAGE;
	}
	args.address = npos > 1 ? argv[optind + 1] : NULL;
	return cli_with_users(args.conf_path, cli_alias_run, &args);
}

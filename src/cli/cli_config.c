/* cli_config.c — `mailwerk config check` and `mailwerk config show [--non-default]`: the
 * configuration as serve would read it, with the same -o overrides. check reports every problem
 * (FILE:LINE: what), not only the first that stops serve; show prints each key with the value in
 * effect, or with --non-default only those set to something else than the default (Postfix's
 * postconf -n), so that a setup can be read and compared at a glance. */
#include "cli/cli_common.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"

#define CONFIG_MAX_OVERRIDES 64

static void cli_config_usage(FILE *out)
{
	fputs("usage: mailwerk config check [-c FILE] [-o section.key=value]...\n"
	      "       mailwerk config show [--non-default] [-c FILE] [-o section.key=value]...\n"
	      "\n"
	      "check: every problem of the configuration, one line each (FILE:LINE: what is wrong); exit 1\n"
	      "when there is one. show: every key with the value in effect, as [section] key = value.\n"
	      "\n"
	      "  -c, --config FILE       configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -o section.key=value    an override, as serve takes it (repeatable)\n"
	      "      --non-default       show only the keys set to other than their default\n"
	      "  -h, --help              show this help\n",
	      out);
}

static void cli_config_print(const char *line, void *arg)
{
	FILE *out = arg;
	fputs(line, out);
	fputc('\n', out);
}

int cli_config_main(int argc, char **argv)
{
	enum { OPT_NON_DEFAULT = 256 };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "non-default", no_argument, NULL, OPT_NON_DEFAULT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CLI_DEFAULT_CONF;
	char *overrides[CONFIG_MAX_OVERRIDES];
	unsigned n = 0;
	bool non_default = false;
	optind = 0; /* glibc: 0 re-initialises, so a second call in one process parses afresh */
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":c:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			if (n == CONFIG_MAX_OVERRIDES) {
				cli_error("at most %d -o overrides", CONFIG_MAX_OVERRIDES);
				return CLI_EXIT_USAGE;
			}
			overrides[n++] = optarg;
			break;
		case OPT_NON_DEFAULT:
			non_default = true;
			break;
		case 'h':
			cli_config_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("config", c, argv);
		}
	}
	const char *action = optind < argc ? argv[optind] : NULL;
	if (action == NULL || optind + 1 < argc ||
	    (strcmp(action, "check") != 0 && strcmp(action, "show") != 0)) {
		cli_config_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (non_default && strcmp(action, "show") != 0) {
		cli_error("--non-default goes with config show");
		return CLI_EXIT_USAGE;
	}
	if (strcmp(action, "check") == 0) {
		unsigned problems = conf_check_all(path, overrides, n, cli_config_print, stderr);
		if (problems > 0) {
			cli_error("%s: %u problem%s", path, problems, problems == 1 ? "" : "s");
			return CLI_EXIT_RUNTIME;
		}
		printf("%s: ok\n", path);
	} else {
		char err[1024];
		if (conf_show(path, overrides, n, non_default, cli_config_print, stdout, err, sizeof(err)) != 0) {
			cli_error("%s", err);
			return CLI_EXIT_RUNTIME;
		}
	}
	/* a full disk or a closed pipe must not look like success */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("cannot write to standard output");
		return CLI_EXIT_RUNTIME;
	}
	return CLI_EXIT_OK;
}

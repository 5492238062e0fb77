/* cli_common.c — shared by the command families. */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "mailbox/users.h"
#include "util/identity.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("mailwerk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct conf *cli_conf_load(const char *path, char *const *overrides, unsigned n_overrides)
{
	char err[512];
	struct conf *c = conf_load(path != NULL ? path : CLI_DEFAULT_CONF, overrides, n_overrides, err, sizeof(err));
	if (c == NULL)
		cli_error("%s", err);
	return c;
}

struct conf *cli_data_conf_load(const char *path)
{
	struct conf *c = cli_conf_load(path, NULL, 0);
	char err[256];
	if (c != NULL && c->user[0] != '\0' && identity_become(c->user, err, sizeof(err)) != 0) {
		cli_error("%s", err);
		conf_free(c);
		return NULL;
	}
	return c;
}

int cli_with_users(const char *conf_path, cli_users_fn *fn, const void *arg)
{
	struct conf *cf = cli_data_conf_load(conf_path);
	if (cf == NULL)
		return CLI_EXIT_RUNTIME;
	const char *err = NULL;
	struct users *u = users_open(cf->data_dir, &err);
	if (u == NULL) {
		cli_error("%s/mailwerk.db: %s", cf->data_dir, err);
		conf_free(cf);
		return CLI_EXIT_RUNTIME;
	}
	int rc = fn(u, arg);
	users_close(u);
	conf_free(cf);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		rc = CLI_EXIT_RUNTIME;
	}
	return rc;
}

int cli_option_error(const char *family, int c, char **argv)
{
	if (c == ':')
		cli_error("option %s needs an argument; see: mailwerk %s --help", argv[optind - 1], family);
	else if (optopt != 0)
		cli_error("unknown option -%c; see: mailwerk %s --help", optopt, family);
	else
		cli_error("unknown option %s; see: mailwerk %s --help", argv[optind - 1], family);
	return CLI_EXIT_USAGE;
}

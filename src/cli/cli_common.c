/* cli_common.c — shared by the command families. */
#include "cli/cli_common.h"

#include <stdarg.h>
#include <stdio.h>

#include "conf/conf.h"

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

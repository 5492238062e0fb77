/* fuzz_conf.c — the configuration loader on arbitrary file contents: it must either load or fail
 * with a "FILE:LINE: ..." / "FILE: ..." message, never crash; conf_check_all (mailwerk config
 * check) must report problems exactly when the load fails, each naming the file, and conf_show
 * must print whatever loads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

struct seen {
	const char *path;
	unsigned lines;
};

static void check_line(const char *line, void *arg)
{
	struct seen *s = arg;
	if (strncmp(line, s->path, strlen(s->path)) != 0)
		abort(); /* every problem names the file (there are no overrides here) */
	s->lines++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/fuzz_conf_XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	char err[512] = "";
	struct conf *c = conf_load(path, NULL, 0, err, sizeof(err));
	if (c == NULL && strncmp(err, path, strlen(path)) != 0)
		abort(); /* every error names the file */
	struct seen s = {path, 0};
	unsigned problems = conf_check_all(path, NULL, 0, check_line, &s);
	if ((problems == 0) != (c != NULL) || problems != s.lines)
		abort(); /* check and load agree */
	struct seen shown = {"[", 0};
	if ((conf_show(path, NULL, 0, true, check_line, &shown, err, sizeof(err)) == 0) != (c != NULL))
		abort();
	conf_free(c);
	unlink(path);
	return 0;
}

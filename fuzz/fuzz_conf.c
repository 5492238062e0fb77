/* fuzz_conf.c — the configuration loader on arbitrary file contents: it must either load or fail
 * with a "FILE:LINE: ..." / "FILE: ..." message, never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

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
	conf_free(c);
	unlink(path);
	return 0;
}

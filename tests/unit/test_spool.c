/* test_spool.c — spool files: appended in pieces of every size around the write buffer, read back
 * exact at any offset, and never visible by name in the spool directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/spool.h"

static unsigned entries(const char *dir)
{
	unsigned n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void test_append_flush_read(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/mailwerk-spool-XXXXXX";
	char err[256], spooldir[300];
	assert_non_null(mkdtemp(tmpl));
	struct queue_spool *sp = queue_spool_new(tmpl, err, sizeof(err));
	assert_non_null(sp);
	snprintf(spooldir, sizeof(spooldir), "%s/%s", tmpl, QUEUE_SPOOL_DIR);
	assert_int_equal(entries(spooldir), 0); /* no name, even while it is written */

	size_t total = 3 * QUEUE_SPOOL_BUFFER + 12345;
	unsigned char *want = malloc(total);
	assert_non_null(want);
	for (size_t i = 0; i < total; i++)
		want[i] = (unsigned char)(i * 131 + i / 7);
	/* pieces of 1 octet, a line, just under and over the buffer, and larger than it */
	static const size_t pieces[] = {1, 1000, QUEUE_SPOOL_BUFFER - 1, 2, QUEUE_SPOOL_BUFFER + 5, 77};
	size_t off = 0;
	for (unsigned k = 0; off < total; k++) {
		size_t n = pieces[k % 6] < total - off ? pieces[k % 6] : total - off;
		assert_true(queue_spool_append(sp, want + off, n));
		off += n;
	}
	assert_int_equal(sp->size, total);
	assert_true(queue_spool_flush(sp));

	char *got = malloc(total);
	assert_non_null(got);
	for (size_t at = 0; at < total;) { /* read back in pieces that do not line up with the writes */
		ssize_t n = queue_spool_read(sp, at, got + at, 4093);
		assert_true(n > 0);
		at += (size_t)n;
	}
	assert_memory_equal(got, want, total);
	assert_int_equal(queue_spool_read(sp, total, got, 10), 0); /* the end */
	assert_int_equal(queue_spool_read(sp, total - 3, got, 10), 3);
	assert_memory_equal(got, want + total - 3, 3);
	queue_spool_free(sp);
	assert_int_equal(entries(spooldir), 0);
	free(want);
	free(got);
	rmdir(spooldir);
	rmdir(tmpl);
}

static void test_unusable_dir(void **state)
{
	(void)state;
	char err[256];
	assert_null(queue_spool_new("/nonexistent/mailwerk", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/mailwerk/spool"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_flush_read),
		cmocka_unit_test(test_unusable_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

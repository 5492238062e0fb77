/* test_maildir.c — Maildir names, paths, delivery and the POP3 maildrop (src/mailbox/maildir.c).
 * Name parsing and paths are table-driven with hostile inputs; the file tests run in a fresh
 * temporary directory per test and also place files by hand the way other Maildir tools write them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mailbox/maildir.h"

#define TEST_HOST "mx.example.org"

struct fixture {
	char dir[256];      /* the data dir */
	char path[PATH_MAX]; /* DATA_DIR/mail/example.org/user */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_maildir.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(maildir_path(f->dir, "user@example.org", f->path, sizeof(f->path)), 0);
	*state = f;
	return 0;
}

static int tree_remove_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(p);
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	nftw(f->dir, tree_remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static void sub_path(const struct fixture *f, const char *rel, char out[PATH_MAX])
{
	int n = snprintf(out, PATH_MAX, "%s/%s", f->path, rel);
	assert_true(n > 0 && n < PATH_MAX);
}

/* Entries of PATH/sub other than "." and "..". */
static size_t dir_count(const struct fixture *f, const char *sub)
{
	char p[PATH_MAX];
	sub_path(f, sub, p);
	DIR *d = opendir(p);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static bool file_exists(const struct fixture *f, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	sub_path(f, rel, p);
	return lstat(p, &st) == 0;
}

static void file_put(const struct fixture *f, const char *rel, const char *data, size_t len, time_t mtime)
{
	char p[PATH_MAX];
	sub_path(f, rel, p);
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	if (mtime) {
		struct timespec ts[2] = { { .tv_sec = mtime }, { .tv_sec = mtime } };
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}
}

/* The whole message as maildir_msg_open gives it; *len_r octets, malloc'd. */
static char *msg_read(const struct fixture *f, const struct maildir_msg *m, size_t *len_r)
{
	int fd = maildir_msg_open(f->path, m);
	assert_true(fd >= 0);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	for (;;) {
		if (len == cap) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			assert_non_null(nb);
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*len_r = len;
	return buf;
}

static void deliver_ok(const struct fixture *f, const char *text, char name[MAILDIR_NAME_MAX + 1])
{
	struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
	const char *err = NULL;
	enum result r = maildir_deliver(f->path, TEST_HOST, &iov, 1, 0, name, &err);
	if (r != RESULT_OK)
		fail_msg("maildir_deliver: %s", err);
}

static void drop_open_ok(const struct fixture *f, struct maildir_msg **msgs, size_t *count)
{
	const char *err = NULL;
	enum result r = maildir_drop_open(f->path, msgs, count, &err);
	if (r != RESULT_OK)
		fail_msg("maildir_drop_open: %s", err);
}

static void sha1_hex(const char *s, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_sha1(), NULL), 1);
	assert_int_equal(len, 20);
	for (unsigned int i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- names ---------------------------------------------------------------------------------- */

struct name_case {
	const char *name;
	const char *base;
	bool has_size;
	uint64_t size;
	bool has_wsize;
	uint64_t wsize;
	const char *flags;
};

static void test_name_parse_valid(void **state)
{
	(void)state;
	static const struct name_case cases[] = {
		/* Dovecot */
		{ "1700000000.M20046P2137.host,S=1234,W=1260:2,S", "1700000000.M20046P2137.host", true, 1234, true,
		  1260, "S" },
		/* Courier */
		{ "1700000000.M20046P2137V0000000000000803I0000000000123456_0.host,S=99",
		  "1700000000.M20046P2137V0000000000000803I0000000000123456_0.host", true, 99, false, 0, "" },
		/* qmail, no fields, no info */
		{ "1700000000.2137.host", "1700000000.2137.host", false, 0, false, 0, "" },
		/* ours */
		{ "1700000000.M000042P99R0123456789abcdef.mx.example.org,S=10,W=12",
		  "1700000000.M000042P99R0123456789abcdef.mx.example.org", true, 10, true, 12, "" },
		/* mbsync's U= is ignored, and kept out of the base */
		{ "1700000000.1_2.host,U=17:2,RS", "1700000000.1_2.host", false, 0, false, 0, "RS" },
		{ "x", "x", false, 0, false, 0, "" },
		{ "x:2,", "x", false, 0, false, 0, "" },
		{ "x:2,S", "x", false, 0, false, 0, "S" },
		{ "x:2,DFPRSTabcz", "x", false, 0, false, 0, "DFPRSTabcz" },
		{ "x,S=0", "x", true, 0, false, 0, "" },
		{ "x,S=007", "x", true, 7, false, 0, "" },
		{ "x,W=5,S=3", "x", true, 3, true, 5, "" },
		{ "x,S=18446744073709551615", "x", true, UINT64_MAX, false, 0, "" },
		{ "a..b", "a..b", false, 0, false, 0, "" },
		{ "x,S=1:2,ABCDEFGHIJKLMNOPQRSTUVWXYZabcde", "x", true, 1, false, 0, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcde" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct name_case *c = &cases[i];
		struct maildir_name n;
		const char *err = NULL;
		if (maildir_name_parse(c->name, &n, &err) != 0)
			fail_msg("%s: %s", c->name, err);
		assert_string_equal(n.base, c->base);
		assert_int_equal(n.has_size, c->has_size);
		assert_int_equal(n.size, c->size);
		assert_int_equal(n.has_wsize, c->has_wsize);
		assert_int_equal(n.wsize, c->wsize);
		assert_string_equal(n.flags, c->flags);
	}
}

static void test_name_parse_invalid(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"",
		".",
		"..",
		".x",
		".x:2,S",
		"a/b",
		"/",
		"x/..",
		"x,S=",
		"x,S=12a",
		"x,S=99999999999999999999999",
		"x,S=18446744073709551616",
		"x,S=-1",
		"x,S=+1",
		"x,S= 1",
		"x,S=0x10",
		"x,S=1,S=1",
		"x,W=1,W=2",
		"x,",
		"x,,S=1",
		"x,foo",
		"x,=1",
		"x,S",
		",S=5",
		":2,S",
		"x:",
		"x:1,",
		"x:2",
		"x:3,S",
		"x:2,S:2,",
		"x:2,S1",
		"x:2,S,",
		"x:2,S ",
		"x:2,ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef", /* 32 flags: one too many */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct maildir_name n;
		const char *err = NULL;
		memset(&n, 0x5a, sizeof(n));
		if (maildir_name_parse(cases[i], &n, &err) != -1)
			fail_msg("accepted \"%s\"", cases[i]);
		assert_non_null(err);
		/* nothing half-parsed is left behind */
		assert_string_equal(n.base, "");
		assert_string_equal(n.flags, "");
		assert_false(n.has_size);
		assert_false(n.has_wsize);
	}
	struct maildir_name n;
	const char *err = NULL;
	assert_int_equal(maildir_name_parse(NULL, &n, &err), -1);
	assert_non_null(err);
	/* error_r is optional */
	assert_int_equal(maildir_name_parse("..", &n, NULL), -1);
}

static void test_name_parse_length(void **state)
{
	(void)state;
	char *s = malloc(10001);
	assert_non_null(s);
	struct maildir_name n;
	const char *err = NULL;

	memset(s, 'a', MAILDIR_NAME_MAX);
	s[MAILDIR_NAME_MAX] = '\0';
	assert_int_equal(maildir_name_parse(s, &n, &err), 0);
	assert_int_equal(strlen(n.base), MAILDIR_NAME_MAX);

	memset(s, 'a', MAILDIR_NAME_MAX + 1);
	s[MAILDIR_NAME_MAX + 1] = '\0';
	assert_int_equal(maildir_name_parse(s, &n, &err), -1);

	memset(s, 'a', 10000);
	s[10000] = '\0';
	assert_int_equal(maildir_name_parse(s, &n, &err), -1);
	/* a '/' far beyond the limit changes nothing: too long first */
	s[9000] = '/';
	assert_int_equal(maildir_name_parse(s, &n, &err), -1);
	free(s);
}

/* A C string ends at its first NUL: what follows is never seen, so a NUL cannot smuggle a '/'. */
static void test_name_parse_nul(void **state)
{
	(void)state;
	static const char s[] = "abc\0/../etc,S=1";
	struct maildir_name n;
	assert_int_equal(maildir_name_parse(s, &n, NULL), 0);
	assert_string_equal(n.base, "abc");
	assert_false(n.has_size);
	static const char t[] = "\0abc";
	assert_int_equal(maildir_name_parse(t, &n, NULL), -1);
}

/* ---- paths ---------------------------------------------------------------------------------- */

static void test_path(void **state)
{
	(void)state;
	static const struct {
		const char *data_dir, *address, *want;
	} ok[] = {
		{ "/d", "user@example.org", "/d/mail/example.org/user" },
		{ "/d", "user@Example.ORG", "/d/mail/example.org/user" },
		{ "/d", "User@dom", "/d/mail/dom/User" },
		{ "/d/", "user@dom", "/d/mail/dom/user" },
		{ "/d//", "user@dom", "/d/mail/dom/user" },
		{ "/", "user@dom", "/mail/dom/user" },
		{ "rel", "user@dom", "rel/mail/dom/user" },
		{ "/d", "../x@dom", "/d/mail/dom/_._x" },
		{ "/d", "a/b@dom", "/d/mail/dom/a_b" },
		{ "/d", ".x@dom", "/d/mail/dom/_x" },
		{ "/d", "..@dom", "/d/mail/dom/_." },
		{ "/d", ".@dom", "/d/mail/dom/_" },
		{ "/d", "x.@dom", "/d/mail/dom/x." },
		{ "/d", "/@dom", "/d/mail/dom/_" },
		{ "/d", "\"a@b\"@dom", "/d/mail/dom/\"a@b\"" },
		{ "/d", "x@[192.0.2.1]", "/d/mail/[192.0.2.1]/x" },
		{ "/d", "x@a..b", "/d/mail/a..b/x" },
	};
	static const char *const refused[] = {
		"x@../dom", "x@..", "x@.", "x@.dom", "x@a/b", "x@dom/..", "x@/", "x@", "@dom", "@", "nodomain", "",
	};
	char out[PATH_MAX];
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (maildir_path(ok[i].data_dir, ok[i].address, out, sizeof(out)) != 0)
			fail_msg("refused %s", ok[i].address);
		assert_string_equal(out, ok[i].want);
		assert_null(strstr(out, "/.."));
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (maildir_path("/d", refused[i], out, sizeof(out)) != -1)
			fail_msg("accepted \"%s\" as %s", refused[i], out);
	}
	assert_int_equal(maildir_path("", "x@dom", out, sizeof(out)), -1);
	assert_int_equal(maildir_path(NULL, "x@dom", out, sizeof(out)), -1);
	assert_int_equal(maildir_path("/d", NULL, out, sizeof(out)), -1);
	assert_int_equal(maildir_path("/d", "x@dom", out, 0), -1);

	/* the buffer: exactly enough, then one short */
	size_t need = strlen("/d/mail/dom/x") + 1;
	assert_int_equal(maildir_path("/d", "x@dom", out, need), 0);
	assert_string_equal(out, "/d/mail/dom/x");
	assert_int_equal(maildir_path("/d", "x@dom", out, need - 1), -1);
	assert_string_equal(out, "");
}

/* ---- create and deliver --------------------------------------------------------------------- */

static void test_create(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	assert_int_equal(maildir_create(f->path, &err), RESULT_OK);
	static const char *const subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3; i++) {
		char p[PATH_MAX];
		struct stat st;
		sub_path(f, subs[i], p);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0077, 0);
	}
	/* again: nothing to do, still fine */
	assert_int_equal(maildir_create(f->path, &err), RESULT_OK);

	/* a part of the layout that is a file is refused */
	char p[PATH_MAX];
	sub_path(f, "cur", p);
	assert_int_equal(rmdir(p), 0);
	file_put(f, "cur", "", 0, 0);
	err = NULL;
	assert_int_equal(maildir_create(f->path, &err), RESULT_TEMPFAIL);
	assert_non_null(err);
}

static void test_deliver_round_trip(void **state)
{
	struct fixture *f = *state;
	/* lines starting with '.' are stored as they are: dot-stuffing is the POP3 session's job */
	static const char hdr[] = "Return-Path: <a@example.net>\r\nDelivered-To: user@example.org\r\n";
	static const char body1[] = "Subject: one\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n";
	static const char body3[] = "Subject: three\r\n\r\nx\r\n";
	size_t big_len = 300000;
	char *big = malloc(big_len);
	assert_non_null(big);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (char)('A' + i % 26);

	struct iovec m1[2] = { { (void *)hdr, sizeof(hdr) - 1 }, { (void *)body1, sizeof(body1) - 1 } };
	struct iovec m2[3] = { { (void *)hdr, sizeof(hdr) - 1 }, { NULL, 0 }, { big, big_len } };
	struct iovec m3[2] = { { (void *)hdr, sizeof(hdr) - 1 }, { (void *)body3, sizeof(body3) - 1 } };
	const struct iovec *msgs_in[3] = { m1, m2, m3 };
	int nparts[3] = { 2, 3, 2 };
	size_t sizes[3] = { sizeof(hdr) - 1 + sizeof(body1) - 1, sizeof(hdr) - 1 + big_len,
			    sizeof(hdr) - 1 + sizeof(body3) - 1 };
	char names[3][MAILDIR_NAME_MAX + 1];

	for (int i = 0; i < 3; i++) {
		const char *err = NULL;
		enum result r = maildir_deliver(f->path, TEST_HOST, msgs_in[i], nparts[i], 0, names[i], &err);
		if (r != RESULT_OK)
			fail_msg("deliver %d: %s", i, err);
		struct maildir_name n;
		assert_int_equal(maildir_name_parse(names[i], &n, NULL), 0);
		assert_true(n.has_size);
		assert_int_equal(n.size, sizes[i]);
		assert_false(n.has_wsize); /* CRLF throughout */
		assert_string_equal(n.flags, "");
		assert_non_null(strstr(n.base, "." TEST_HOST));
		assert_true(strlen(n.base) <= MAILDIR_UID_MAX);

		char rel[MAILDIR_NAME_MAX + 8], p[PATH_MAX];
		struct stat st;
		snprintf(rel, sizeof(rel), "new/%s", names[i]);
		sub_path(f, rel, p);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal((size_t)st.st_size, sizes[i]);
	}
	assert_int_equal(dir_count(f, "tmp"), 0);
	assert_int_equal(dir_count(f, "new"), 3);
	assert_string_not_equal(names[0], names[1]);

	uint64_t used = 0;
	assert_int_equal(maildir_usage(f->path, &used, NULL), RESULT_OK);
	assert_int_equal(used, sizes[0] + sizes[1] + sizes[2]);

	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 3);
	assert_int_equal(dir_count(f, "new"), 0);
	assert_int_equal(dir_count(f, "cur"), 3);
	for (int i = 0; i < 3; i++) {
		struct maildir_name n;
		assert_int_equal(maildir_name_parse(names[i], &n, NULL), 0);
		/* delivery order; the UIDL is the base name, the same as before the move */
		assert_string_equal(msgs[i].uid, n.base);
		char want[MAILDIR_NAME_MAX + 8];
		snprintf(want, sizeof(want), "%s:2,", names[i]);
		assert_string_equal(msgs[i].file, want);
		assert_int_equal(msgs[i].size, sizes[i]);
		assert_true(msgs[i].mtime > 0);

		size_t len;
		char *got = msg_read(f, &msgs[i], &len);
		assert_int_equal(len, sizes[i]);
		size_t off = 0;
		for (int k = 0; k < nparts[i]; k++) {
			if (msgs_in[i][k].iov_len)
				assert_memory_equal(got + off, msgs_in[i][k].iov_base, msgs_in[i][k].iov_len);
			off += msgs_in[i][k].iov_len;
		}
		free(got);
	}

	/* a second login sees the same list */
	struct maildir_msg *again = NULL;
	size_t count2 = 0;
	drop_open_ok(f, &again, &count2);
	assert_int_equal(count2, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(again[i].uid, msgs[i].uid);
		assert_string_equal(again[i].file, msgs[i].file);
		assert_int_equal(again[i].size, msgs[i].size);
	}
	free(again);

	/* DELE + QUIT, then a new login */
	assert_int_equal(maildir_msg_delete(f->path, &msgs[1], NULL), RESULT_OK);
	assert_int_equal(maildir_msg_open(f->path, &msgs[1]), -1);
	assert_int_equal(errno, ENOENT);
	/* already gone still counts as removed */
	assert_int_equal(maildir_msg_delete(f->path, &msgs[1], NULL), RESULT_OK);
	drop_open_ok(f, &again, &count2);
	assert_int_equal(count2, 2);
	assert_string_equal(again[0].uid, msgs[0].uid);
	assert_string_equal(again[1].uid, msgs[2].uid);
	assert_int_equal(maildir_usage(f->path, &used, NULL), RESULT_OK);
	assert_int_equal(used, sizes[0] + sizes[2]);
	free(again);
	free(msgs);
	free(big);
}

/* A later delivery gets a new message at the end of the list, and the earlier UIDLs stay. */
static void test_drop_open_uid_stable_across_move(void **state)
{
	struct fixture *f = *state;
	char n1[MAILDIR_NAME_MAX + 1], n2[MAILDIR_NAME_MAX + 1];
	deliver_ok(f, "Subject: a\r\n\r\na\r\n", n1);
	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 1);
	char uid1[MAILDIR_UID_MAX + 1];
	strcpy(uid1, msgs[0].uid);
	free(msgs);

	deliver_ok(f, "Subject: b\r\n\r\nb\r\n", n2);
	assert_int_equal(dir_count(f, "new"), 1);
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 2);
	assert_string_equal(msgs[0].uid, uid1);
	struct maildir_name n;
	assert_int_equal(maildir_name_parse(n2, &n, NULL), 0);
	assert_string_equal(msgs[1].uid, n.base);
	free(msgs);
}

/* Bare LFs: W= in the name, and the POP3 size counts each as CRLF (RFC 1939 §3). The CR that ends
 * one part and the LF that starts the next are one CRLF. */
static void test_deliver_bare_lf(void **state)
{
	struct fixture *f = *state;
	struct iovec iov[3] = { { "a\r", 2 }, { "\nb\n", 3 }, { "\nc", 2 } };
	char name[MAILDIR_NAME_MAX + 1];
	const char *err = NULL;
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, iov, 3, 0, name, &err), RESULT_OK);
	struct maildir_name n;
	assert_int_equal(maildir_name_parse(name, &n, NULL), 0);
	assert_true(n.has_size && n.has_wsize);
	assert_int_equal(n.size, 7);
	assert_int_equal(n.wsize, 9);
	assert_non_null(strstr(name, ",S=7,W=9"));

	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 1);
	assert_int_equal(msgs[0].size, 9);
	size_t len;
	char *got = msg_read(f, &msgs[0], &len);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "a\r\nb\n\nc", 7);
	free(got);
	free(msgs);
}

/* Files that other tools put there: no W=, LF line ends, their own names and mtimes. */
static void test_drop_open_foreign_files(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	static const char lf[] = "a\nb\n\nc"; /* 6 octets, 3 bare LFs */
	/* qmail style, no S= */
	file_put(f, "new/1700000000.M1P1.host", lf, 6, 1000);
	/* Courier style: S= but no W=, so the file must be read */
	file_put(f, "new/1700000000.M2P2V3I4.host,S=6", lf, 6, 1000);
	/* looks like one of ours but S= does not match the file: read it too */
	file_put(f, "new/1600000000.M000001P1R0123456789abcdef.h,S=4", lf, 6, 500);
	/* already has an info part: moved as it is */
	file_put(f, "new/1500000000.M3P3.host:2,S", "x\r\n", 3, 2000);
	/* not messages: stay where they are, never listed */
	file_put(f, "new/.hidden", "x", 1, 0);
	file_put(f, "new/bad:1,", "x", 1, 0);
	char p[PATH_MAX];
	sub_path(f, "new/1400000000.dir", p);
	assert_int_equal(mkdir(p, 0700), 0);
	/* a symlink must never be served */
	sub_path(f, "cur/1300000000.M1P1.evil:2,", p);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	sub_path(f, "new/1300000001.M1P1.evil", p);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	/* a FIFO in cur/ must not hang the login */
	sub_path(f, "cur/1300000002.M1P1.fifo:2,", p);
	assert_int_equal(mkfifo(p, 0600), 0);

	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 4);
	/* mtime, then name */
	assert_string_equal(msgs[0].file, "1600000000.M000001P1R0123456789abcdef.h,S=4:2,");
	assert_string_equal(msgs[1].file, "1700000000.M1P1.host:2,");
	assert_string_equal(msgs[2].file, "1700000000.M2P2V3I4.host,S=6:2,");
	assert_string_equal(msgs[3].file, "1500000000.M3P3.host:2,S");
	assert_int_equal(msgs[0].size, 9);
	assert_int_equal(msgs[1].size, 9);
	assert_int_equal(msgs[2].size, 9);
	assert_int_equal(msgs[3].size, 3);
	assert_int_equal(msgs[0].mtime, 500);
	assert_int_equal(msgs[3].mtime, 2000);
	assert_string_equal(msgs[1].uid, "1700000000.M1P1.host");
	assert_string_equal(msgs[2].uid, "1700000000.M2P2V3I4.host");

	assert_true(file_exists(f, "new/.hidden"));
	assert_true(file_exists(f, "new/bad:1,"));
	assert_true(file_exists(f, "new/1400000000.dir"));
	assert_true(file_exists(f, "new/1300000001.M1P1.evil"));
	assert_int_equal(dir_count(f, "new"), 4);

	/* opening a symlink or a FIFO by name fails */
	struct maildir_msg m = { .file = "1300000000.M1P1.evil:2," };
	assert_int_equal(maildir_msg_open(f->path, &m), -1);
	strcpy(m.file, "1300000002.M1P1.fifo:2,");
	assert_int_equal(maildir_msg_open(f->path, &m), -1);

	/* the file list, not the data, was the only thing touched */
	size_t len;
	char *got = msg_read(f, &msgs[1], &len);
	assert_int_equal(len, 6);
	assert_memory_equal(got, lf, 6);
	free(got);
	free(msgs);
}

/* A name too long to take ":2," still moves to cur/ and is listed. */
static void test_drop_open_long_name(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	char name[MAILDIR_NAME_MAX + 1], rel[MAILDIR_NAME_MAX + 8];
	memset(name, 'b', MAILDIR_NAME_MAX - 1);
	name[MAILDIR_NAME_MAX - 1] = '\0';
	snprintf(rel, sizeof(rel), "new/%s", name);
	file_put(f, rel, "x\r\n", 3, 0);

	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 1);
	assert_string_equal(msgs[0].file, name);
	/* base longer than RFC 1939 allows: SHA-1 of it, in hex */
	char want[41];
	sha1_hex(name, want);
	assert_string_equal(msgs[0].uid, want);
	free(msgs);
	drop_open_ok(f, &msgs, &count);
	assert_string_equal(msgs[0].uid, want);
	free(msgs);
}

/* A base with an octet outside 0x21..0x7E cannot be a unique-id as it is. */
static void test_drop_open_uid_hashed(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	file_put(f, "cur/17 00\xc3\xa9.host,S=3:2,S", "x\r\n", 3, 0);
	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 1);
	char want[41];
	sha1_hex("17 00\xc3\xa9.host", want);
	assert_string_equal(msgs[0].uid, want);
	assert_int_equal(strlen(msgs[0].uid), 40);
	free(msgs);
}

static void test_drop_open_missing(void **state)
{
	struct fixture *f = *state;
	struct maildir_msg *msgs = (void *)1;
	size_t count = 99;
	drop_open_ok(f, &msgs, &count);
	assert_null(msgs);
	assert_int_equal(count, 0);
	uint64_t used = 1;
	assert_int_equal(maildir_usage(f->path, &used, NULL), RESULT_OK);
	assert_int_equal(used, 0);
}

static void test_quota(void **state)
{
	struct fixture *f = *state;
	char text[101], name[MAILDIR_NAME_MAX + 1];
	memset(text, 'q', 100);
	text[100] = '\0';
	struct iovec iov = { text, 100 };
	const char *err = NULL;

	/* bigger than the quota on its own: refused before the maildir is even created */
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 99, name, &err), RESULT_TEMPFAIL);
	assert_string_equal(err, "over quota");
	assert_string_equal(name, "");
	assert_false(file_exists(f, ""));

	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 150, name, &err), RESULT_OK);
	err = NULL;
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 150, name, &err), RESULT_TEMPFAIL);
	assert_string_equal(err, "over quota");
	assert_string_equal(name, "");
	assert_int_equal(dir_count(f, "tmp"), 0);
	assert_int_equal(dir_count(f, "new"), 1);
	assert_int_equal(dir_count(f, "cur"), 0);

	/* exactly at the quota is allowed; files without S= count by their size */
	file_put(f, "cur/1.M1P1.h:2,", text, 50, 0);
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 250, name, &err), RESULT_OK);
	uint64_t used = 0;
	assert_int_equal(maildir_usage(f->path, &used, NULL), RESULT_OK);
	assert_int_equal(used, 250);
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 250, name, &err), RESULT_TEMPFAIL);
	/* quota 0 means none */
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 0, name, &err), RESULT_OK);
}

/* We run as root in CI, where chmod stops nothing: break the layout instead. */
static void test_deliver_failure_tmp_not_dir(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	char p[PATH_MAX];
	sub_path(f, "tmp", p);
	assert_int_equal(rmdir(p), 0);
	file_put(f, "tmp", "", 0, 0);

	char name[MAILDIR_NAME_MAX + 1] = "junk";
	const char *err = NULL;
	struct iovec iov = { "x\r\n", 3 };
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 0, name, &err), RESULT_TEMPFAIL);
	assert_non_null(err);
	assert_string_equal(name, "");
	assert_int_equal(dir_count(f, "new"), 0);
	assert_int_equal(dir_count(f, "cur"), 0);
}

/* The rename into new/ fails after the data is written: the tmp/ file goes away. */
static void test_deliver_failure_new_not_dir(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	char p[PATH_MAX];
	sub_path(f, "new", p);
	assert_int_equal(rmdir(p), 0);
	file_put(f, "new", "", 0, 0);

	char name[MAILDIR_NAME_MAX + 1];
	const char *err = NULL;
	struct iovec iov = { "x\r\n", 3 };
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, &iov, 1, 0, name, &err), RESULT_TEMPFAIL);
	assert_string_equal(err, "not a directory");
	assert_string_equal(name, "");
	assert_int_equal(dir_count(f, "tmp"), 0);
}

/* A maildir made by hand without its subdirectories is completed by the first delivery. */
static void test_deliver_repairs_layout(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	static const char *const subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3; i++) {
		char p[PATH_MAX];
		sub_path(f, subs[i], p);
		assert_int_equal(rmdir(p), 0);
	}
	char name[MAILDIR_NAME_MAX + 1];
	deliver_ok(f, "x\r\n", name);
	assert_int_equal(dir_count(f, "new"), 1);
	assert_int_equal(dir_count(f, "cur"), 0);
}

/* Our own names carry W= whenever the content has a bare LF, so when one of them has no W= and S=
 * matches the file, S= is taken as the POP3 size without reading the file. A file that breaks that
 * promise (here by hand) is believed: this pins the decision down. */
static void test_drop_open_trusts_own_names(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	file_put(f, "new/1600000000.M000001P1R0123456789abcdef.h,S=6", "a\nb\n\nc", 6, 0);
	/* the same shape with upper-case hex is not ours: read, 3 bare LFs */
	file_put(f, "new/1600000000.M000001P1R0123456789ABCDEF.h,S=6", "a\nb\n\nc", 6, 0);
	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 2);
	assert_string_equal(msgs[0].file, "1600000000.M000001P1R0123456789ABCDEF.h,S=6:2,");
	assert_int_equal(msgs[0].size, 9);
	assert_int_equal(msgs[1].size, 6);
	free(msgs);
}

/* A maildir path below a regular file cannot be created. */
static void test_deliver_failure_parent_is_file(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX], mdir[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/file", f->dir);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(mdir, sizeof(mdir), "%s/sub/maildir", p);
	char name[MAILDIR_NAME_MAX + 1];
	const char *err = NULL;
	struct iovec iov = { "x\r\n", 3 };
	assert_int_equal(maildir_deliver(mdir, TEST_HOST, &iov, 1, 0, name, &err), RESULT_TEMPFAIL);
	assert_string_equal(err, "not a directory");
	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	assert_int_equal(maildir_drop_open(mdir, &msgs, &count, &err), RESULT_TEMPFAIL);
	assert_null(msgs);
}

/* More parts than one writev() takes, and empty parts among them. */
static void test_deliver_many_parts(void **state)
{
	struct fixture *f = *state;
	enum { N = 3000 };
	struct iovec *iov = calloc(N, sizeof(*iov));
	char *data = malloc(N);
	assert_non_null(iov);
	assert_non_null(data);
	size_t total = 0;
	for (int i = 0; i < N; i++) {
		data[i] = (char)('a' + i % 26);
		iov[i].iov_base = data + i;
		iov[i].iov_len = i % 7 == 3 ? 0 : 1;
		total += iov[i].iov_len;
	}
	char name[MAILDIR_NAME_MAX + 1];
	const char *err = NULL;
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, iov, N, 0, name, &err), RESULT_OK);

	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, 1);
	assert_int_equal(msgs[0].size, total);
	size_t len;
	char *got = msg_read(f, &msgs[0], &len);
	assert_int_equal(len, total);
	size_t off = 0;
	for (int i = 0; i < N; i++) {
		if (iov[i].iov_len)
			assert_int_equal(got[off++], data[i]);
	}
	free(got);
	free(msgs);
	free(data);
	free(iov);

	/* an empty message is still a message */
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, NULL, 0, 0, name, &err), RESULT_OK);
	assert_non_null(strstr(name, ",S=0"));
	assert_int_equal(maildir_deliver(f->path, TEST_HOST, NULL, -1, 0, name, &err), RESULT_TEMPFAIL);
}

/* Hostnames with '/', ':', ',' or spaces cannot break the name, and many deliveries in a row all
 * get distinct names that list in delivery order. */
static void test_deliver_names(void **state)
{
	struct fixture *f = *state;
	enum { N = 50 };
	char names[N][MAILDIR_NAME_MAX + 1];
	for (int i = 0; i < N; i++) {
		struct iovec iov = { "x\r\n", 3 };
		const char *err = NULL;
		const char *host = i == 0 ? "a/b:c,d e\x7f" : i == 1 ? "" : i == 2 ? NULL : TEST_HOST;
		assert_int_equal(maildir_deliver(f->path, host, &iov, 1, 0, names[i], &err), RESULT_OK);
		struct maildir_name n;
		assert_int_equal(maildir_name_parse(names[i], &n, NULL), 0);
		assert_true(n.has_size && n.size == 3 && !n.has_wsize);
		for (const char *c = names[i]; *c; c++)
			assert_true(*c >= 0x21 && *c <= 0x7e);
	}
	assert_non_null(strstr(names[0], ".a_b_c_d_e_,S=3"));
	struct maildir_msg *msgs = NULL;
	size_t count = 0;
	drop_open_ok(f, &msgs, &count);
	assert_int_equal(count, N);
	for (int i = 0; i < N; i++) {
		char want[MAILDIR_NAME_MAX + 8];
		snprintf(want, sizeof(want), "%s:2,", names[i]);
		assert_string_equal(msgs[i].file, want);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(msgs[i].uid, msgs[k].uid);
	}
	free(msgs);
}

/* A message handle whose file name was tampered with never reaches outside cur/. */
static void test_msg_bad_names(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(maildir_create(f->path, NULL), RESULT_OK);
	static const char *const bad[] = { "../tmp", "..", ".", "", "a/b", "x:1," };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct maildir_msg m = { 0 };
		strcpy(m.file, bad[i]);
		errno = 0;
		assert_int_equal(maildir_msg_open(f->path, &m), -1);
		assert_int_equal(errno, EINVAL);
		const char *err = NULL;
		assert_int_equal(maildir_msg_delete(f->path, &m, &err), RESULT_TEMPFAIL);
		assert_non_null(err);
	}
	assert_int_equal(dir_count(f, "tmp"), 0);
	/* an unterminated file field */
	struct maildir_msg m;
	memset(&m, 'a', sizeof(m));
	assert_int_equal(maildir_msg_open(f->path, &m), -1);
	/* a well-formed name that is not there */
	struct maildir_msg gone = { .file = "1.M1P1.h:2," };
	assert_int_equal(maildir_msg_delete(f->path, &gone, NULL), RESULT_OK);
	assert_int_equal(maildir_msg_open(f->path, &gone), -1);
	assert_int_equal(errno, ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_parse_valid),
		cmocka_unit_test(test_name_parse_invalid),
		cmocka_unit_test(test_name_parse_length),
		cmocka_unit_test(test_name_parse_nul),
		cmocka_unit_test(test_path),
		cmocka_unit_test_setup_teardown(test_create, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_round_trip, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_drop_open_uid_stable_across_move, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_bare_lf, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_drop_open_foreign_files, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_drop_open_long_name, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_drop_open_uid_hashed, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_drop_open_missing, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_quota, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_failure_tmp_not_dir, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_failure_new_not_dir, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_failure_parent_is_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_repairs_layout, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_drop_open_trusts_own_names, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_many_parts, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deliver_names, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_msg_bad_names, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

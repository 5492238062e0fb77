/* maildir.c — one user's mailbox in Maildir format: unique names, durable delivery (tmp/ -> new/),
 * quota usage, and the POP3 maildrop view (new/ -> cur/, sizes with CRLF line ends, stable UIDLs).
 *
 * The layout and naming follow the Maildir convention as qmail, Courier and Dovecot use it
 * (https://cr.yp.to/proto/maildir.html, Dovecot's maildir format notes):
 *   BASE[,S=<size>][,W=<size with CRLF line ends>][:2,<flags>]
 * BASE is up to the first ',' (or ':'); it never changes once the message is delivered, so it is the
 * POP3 unique-id. Every directory is reached through a descriptor of the maildir and the *at()
 * calls, so a name read from a directory is always resolved inside that directory.
 *
 * No global mutable state: names are unique through time, pid and 64 random bits, not a counter.
 * Error sentences (*error_r) are static strings. */
#include "mailbox/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* Attempts with a fresh name when tmp/NAME already exists (Maildir: "try again with a new name"). */
#define MAILDIR_DELIVER_TRIES 4
/* The hostname part of a name; enough for any sane FQDN label sequence and keeps names short. */
#define MAILDIR_HOST_MAX 64
/* ":2," appended on the move to cur/. */
#define MAILDIR_INFO_LEN 3
/* iovecs handed to one writev(); well under IOV_MAX (1024 on Linux). */
#define MAILDIR_WRITEV_BATCH 64
/* A maildrop larger than this is refused at login rather than taking gigabytes of memory. */
#define MAILDIR_DROP_MAX 1000000
#define MAILDIR_READ_CHUNK 65536

static int maildir_fail(const char **error_r, const char *reason)
{
	if (error_r)
		*error_r = reason;
	return -1;
}

static enum result maildir_tempfail(const char **error_r, const char *reason)
{
	if (error_r)
		*error_r = reason;
	return RESULT_TEMPFAIL;
}

/* A short, stable reason for an errno: what an operator (and the 4xx text) needs, nothing more. */
static const char *maildir_errno_reason(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return "disk full";
	case EACCES:
	case EPERM:
		return "permission denied";
	case EROFS:
		return "read-only file system";
	case EIO:
		return "I/O error";
	case ENOTDIR:
		return "not a directory";
	case EMFILE:
	case ENFILE:
		return "too many open files";
	case ENAMETOOLONG:
		return "path too long";
	case ENOMEM:
		return "out of memory";
	case ENOENT:
		return "no such file or directory";
	default:
		return "file system error";
	}
}

static enum result maildir_errno_fail(const char **error_r, int e)
{
	return maildir_tempfail(error_r, maildir_errno_reason(e));
}

/* ---- names ---------------------------------------------------------------------------------- */

static bool maildir_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool maildir_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Decimal, 1 to 20 digits, no sign, no overflow. */
static int maildir_u64_parse(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;
	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!maildir_is_digit(s[i]))
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

/* One ",KEY=VALUE" field of the name (without the comma). S= and W= are Dovecot's and Courier's
 * size fields; other KEY=VALUE fields (mbsync writes ",U=<uid>") are ignored; anything else is
 * not a name we understand. */
static int maildir_field_parse(const char *f, size_t len, struct maildir_name *n, const char **error_r)
{
	size_t k = 0;
	while (k < len && maildir_is_alpha(f[k]))
		k++;
	if (k == 0 || k == len || f[k] != '=')
		return maildir_fail(error_r, "malformed ',' field in name");
	if (k == 1 && (f[0] == 'S' || f[0] == 'W')) {
		bool *has = f[0] == 'S' ? &n->has_size : &n->has_wsize;
		uint64_t *v = f[0] == 'S' ? &n->size : &n->wsize;
		if (*has)
			return maildir_fail(error_r, "duplicate size field in name");
		if (maildir_u64_parse(f + 2, len - 2, v) < 0)
			return maildir_fail(error_r, "malformed size field in name");
		*has = true;
	}
	return 0;
}

static int maildir_name_parse_into(const char *name, struct maildir_name *n_r, const char **error_r)
{
	if (!name || name[0] == '\0')
		return maildir_fail(error_r, "empty name");
	size_t len = strnlen(name, MAILDIR_NAME_MAX + 1);
	if (len > MAILDIR_NAME_MAX)
		return maildir_fail(error_r, "name too long");
	/* dot-files are not messages (Maildir readers skip them); it also keeps "." and ".." out */
	if (name[0] == '.')
		return maildir_fail(error_r, "name starts with a dot");
	if (memchr(name, '/', len))
		return maildir_fail(error_r, "name contains '/'");

	/* The info part starts at the first ':'; only the "2," (flags) semantics is defined. */
	const char *colon = memchr(name, ':', len);
	size_t head_len = colon ? (size_t)(colon - name) : len;
	if (colon) {
		const char *info = colon + 1;
		if (info[0] != '2' || info[1] != ',')
			return maildir_fail(error_r, "info part is not \":2,\"");
		const char *flags = info + 2;
		size_t flen = len - (size_t)(flags - name);
		if (flen >= sizeof(n_r->flags))
			return maildir_fail(error_r, "too many flags");
		for (size_t i = 0; i < flen; i++) {
			/* standard flags are upper case (DFPRST), Dovecot keywords lower case */
			if (!maildir_is_alpha(flags[i]))
				return maildir_fail(error_r, "bad flag character");
		}
		memcpy(n_r->flags, flags, flen);
		n_r->flags[flen] = '\0';
	}

	const char *comma = memchr(name, ',', head_len);
	size_t base_len = comma ? (size_t)(comma - name) : head_len;
	if (base_len == 0)
		return maildir_fail(error_r, "empty base name");
	while (comma) {
		const char *f = comma + 1;
		const char *end = name + head_len;
		comma = memchr(f, ',', (size_t)(end - f));
		size_t flen = (size_t)((comma ? comma : end) - f);
		if (maildir_field_parse(f, flen, n_r, error_r) < 0)
			return -1;
	}
	memcpy(n_r->base, name, base_len);
	n_r->base[base_len] = '\0';
	return 0;
}

int maildir_name_parse(const char *name, struct maildir_name *n_r, const char **error_r)
{
	/* filled in a copy, so that a rejected name leaves *n_r all zero, never half-parsed */
	struct maildir_name n = { 0 };
	int r = maildir_name_parse_into(name, &n, error_r);
	if (r == 0)
		*n_r = n;
	else
		memset(n_r, 0, sizeof(*n_r));
	return r;
}

/* True when base has exactly the shape maildir_name_make() writes:
 * <digits>.M<6 digits>P<digits>R<16 lower-case hex>.<host>. We add W= whenever a message has a bare
 * LF, so for such a name without W= the S= value is already the CRLF size. */
static bool maildir_base_is_ours(const char *b)
{
	size_t i = 0, start;
	for (start = i; maildir_is_digit(b[i]); i++)
		;
	if (i == start || b[i++] != '.' || b[i++] != 'M')
		return false;
	for (start = i; maildir_is_digit(b[i]); i++)
		;
	if (i - start != 6 || b[i++] != 'P')
		return false;
	for (start = i; maildir_is_digit(b[i]); i++)
		;
	if (i == start || b[i++] != 'R')
		return false;
	for (start = i; maildir_is_digit(b[i]) || (b[i] >= 'a' && b[i] <= 'f'); i++)
		;
	return i - start == 16 && b[i] == '.' && b[i + 1] != '\0';
}

/* The hostname as it goes into a name. Maildir: '/' and ':' cannot appear (Dovecot writes them as
 * \057 and \072; we use '_'); ',' would start a field and anything outside 0x21..0x7E would keep
 * the base from being a POP3 unique-id (RFC 1939 §7), so they become '_' too. */
static void maildir_host_clean(const char *hostname, char out[MAILDIR_HOST_MAX + 1])
{
	char sys[256];
	if (!hostname || !*hostname) {
		if (gethostname(sys, sizeof(sys)) == 0 && sys[0]) {
			sys[sizeof(sys) - 1] = '\0';
			hostname = sys;
		} else {
			hostname = "localhost";
		}
	}
	size_t i;
	for (i = 0; i < MAILDIR_HOST_MAX && hostname[i]; i++) {
		unsigned char c = (unsigned char)hostname[i];
		out[i] = (c < 0x21 || c > 0x7e || c == '/' || c == ':' || c == ',') ? '_' : (char)c;
	}
	out[i] = '\0';
}

/* "<secs>.M<usecs>P<pid>R<16 hex>.<host>,S=<size>[,W=<wsize>]". usecs is zero-padded so that names
 * from the same second sort in delivery order (drop_open sorts by mtime, then name). */
static int maildir_name_make(const char *host, uint64_t size, bool has_wsize, uint64_t wsize,
			     char name[MAILDIR_NAME_MAX + 1])
{
	unsigned char rnd[8];
	char hex[2 * sizeof(rnd) + 1];
	struct timespec ts;

	if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	clock_gettime(CLOCK_REALTIME, &ts);

	int n = snprintf(name, MAILDIR_NAME_MAX + 1, "%lld.M%06ldP%ldR%s.%s,S=%llu", (long long)ts.tv_sec,
			 ts.tv_nsec / 1000, (long)getpid(), hex, host, (unsigned long long)size);
	if (n > 0 && has_wsize && (size_t)n < MAILDIR_NAME_MAX + 1)
		n += snprintf(name + n, MAILDIR_NAME_MAX + 1 - (size_t)n, ",W=%llu", (unsigned long long)wsize);
	/* room for ":2," in cur/ */
	if (n <= 0 || (size_t)n > MAILDIR_NAME_MAX - MAILDIR_INFO_LEN)
		return -1;
	return 0;
}

/* ---- paths ---------------------------------------------------------------------------------- */

int maildir_path(const char *data_dir, const char *address, char *out, size_t size)
{
	if (!out || size == 0)
		return -1;
	out[0] = '\0';
	if (!data_dir || !address || data_dir[0] == '\0')
		return -1;
	size_t dlen = strlen(data_dir);
	while (dlen > 0 && data_dir[dlen - 1] == '/')
		dlen--; /* "/srv/mw/" and "/" must not give "//" */

	/* the last '@': a quoted local part may contain '@' (RFC 5321 §4.1.2), a domain never does */
	const char *at = strrchr(address, '@');
	if (!at || at == address)
		return -1;
	const char *dom = at + 1;
	size_t llen = (size_t)(at - address), domlen = strlen(dom);
	/* a domain is one directory level: no '/', and no leading '.' (".", "..", hidden entries) */
	if (domlen == 0 || dom[0] == '.' || memchr(dom, '/', domlen))
		return -1;

	static const char mail[] = "/mail/";
	size_t need = dlen + sizeof(mail) - 1 + domlen + 1 + llen;
	if (need >= size)
		return -1;

	char *p = out;
	memcpy(p, data_dir, dlen);
	p += dlen;
	memcpy(p, mail, sizeof(mail) - 1);
	p += sizeof(mail) - 1;
	for (size_t i = 0; i < domlen; i++) {
		char c = dom[i];
		*p++ = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	*p++ = '/';
	/* '/' would add a level and a leading '.' could make "." or ".."; every other octet is kept so
	 * that distinct addresses stay distinct mailboxes (apart from these two rewrites) */
	for (size_t i = 0; i < llen; i++) {
		char c = address[i];
		*p++ = (c == '/' || (i == 0 && c == '.')) ? '_' : c;
	}
	*p = '\0';
	return 0;
}

/* ---- directories ---------------------------------------------------------------------------- */

static int maildir_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* mkdir that is content with an existing directory; a new entry is made durable by fsyncing the
 * parent, so a maildir created for a first delivery cannot vanish in a crash with the message. */
static int maildir_mkdir_one(char *path)
{
	if (mkdir(path, 0700) == 0) {
		char *slash = strrchr(path, '/');
		if (!slash)
			return maildir_fsync_dir(".");
		if (slash == path)
			return maildir_fsync_dir("/");
		*slash = '\0';
		int r = maildir_fsync_dir(path);
		int e = errno;
		*slash = '/';
		errno = e;
		return r;
	}
	if (errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

enum result maildir_create(const char *path, const char **error_r)
{
	static const char *const subdirs[] = { "tmp", "new", "cur" };
	char buf[PATH_MAX];

	if (!path || !*path)
		return maildir_tempfail(error_r, "empty maildir path");
	size_t len = strlen(path);
	if (len + 5 > sizeof(buf))
		return maildir_tempfail(error_r, "path too long");
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';

	/* parents first (mkdir -p), then the maildir itself */
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != '/' || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		int r = maildir_mkdir_one(buf);
		buf[i] = '/';
		if (r < 0)
			return maildir_errno_fail(error_r, errno);
	}
	if (maildir_mkdir_one(buf) < 0)
		return maildir_errno_fail(error_r, errno);
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(buf + len, sizeof(buf) - len, "/%s", subdirs[i]);
		if (maildir_mkdir_one(buf) < 0)
			return maildir_errno_fail(error_r, errno);
	}
	return RESULT_OK;
}

/* A directory inside the maildir as a DIR stream; NULL with errno (ENOENT when missing). */
static DIR *maildir_dir_open(int dfd, const char *sub)
{
	int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

/* readdir() with the error case told apart from the end: NULL and errno 0 at the end. */
static struct dirent *maildir_dir_next(DIR *d)
{
	errno = 0;
	return readdir(d);
}

static bool maildir_entry_is_reg(int dirfd_, const struct dirent *de)
{
	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	struct stat st;
	return fstatat(dirfd_, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* ---- usage ---------------------------------------------------------------------------------- */

static uint64_t maildir_add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Octets in one of new/ or cur/; a missing directory is empty. */
static int maildir_usage_dir(int dfd, const char *sub, uint64_t *bytes)
{
	DIR *d = maildir_dir_open(dfd, sub);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	struct dirent *de;
	while ((de = maildir_dir_next(d)) != NULL) {
		struct maildir_name n;
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (maildir_name_parse(de->d_name, &n, NULL) == 0 && n.has_size) {
			*bytes = maildir_add_sat(*bytes, n.size);
			continue;
		}
		/* no S= (or a name we would not list): it still takes room, count what stat says */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			*bytes = maildir_add_sat(*bytes, (uint64_t)st.st_size);
	}
	int e = errno;
	closedir(d);
	errno = e;
	return e ? -1 : 0;
}

enum result maildir_usage(const char *path, uint64_t *bytes_r, const char **error_r)
{
	*bytes_r = 0;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? RESULT_OK : maildir_errno_fail(error_r, errno);
	uint64_t bytes = 0;
	if (maildir_usage_dir(dfd, "new", &bytes) < 0 || maildir_usage_dir(dfd, "cur", &bytes) < 0) {
		int e = errno;
		close(dfd);
		return maildir_errno_fail(error_r, e);
	}
	close(dfd);
	*bytes_r = bytes;
	return RESULT_OK;
}

/* ---- delivery ------------------------------------------------------------------------------- */

/* Size, and size with every bare LF turned into CRLF (RFC 5322 §2.3 / RFC 1939 §3: POP3 sends
 * CRLF lines). A CR at the end of one part counts for an LF at the start of the next. */
static void maildir_parts_scan(const struct iovec *parts, int nparts, uint64_t *size_r, uint64_t *bare_r)
{
	uint64_t size = 0, bare = 0;
	char prev = '\0';
	for (int i = 0; i < nparts; i++) {
		const char *p = parts[i].iov_base;
		size_t len = parts[i].iov_len;
		if (len == 0)
			continue;
		for (size_t j = 0; j < len;) {
			const char *lf = memchr(p + j, '\n', len - j);
			if (!lf)
				break;
			size_t at = (size_t)(lf - p);
			if ((at == 0 ? prev : p[at - 1]) != '\r')
				bare++;
			j = at + 1;
		}
		prev = p[len - 1];
		size += len;
	}
	*size_r = size;
	*bare_r = bare;
}

/* writev() of all parts, through short writes and EINTR. */
static int maildir_parts_write(int fd, const struct iovec *parts, int nparts)
{
	int idx = 0;
	size_t off = 0; /* into parts[idx] */
	for (;;) {
		struct iovec batch[MAILDIR_WRITEV_BATCH];
		int n = 0;
		while (idx < nparts && parts[idx].iov_len == off) {
			idx++;
			off = 0;
		}
		if (idx >= nparts)
			return 0;
		for (int i = idx; i < nparts && n < MAILDIR_WRITEV_BATCH; i++) {
			size_t skip = i == idx ? off : 0;
			if (parts[i].iov_len == skip)
				continue;
			batch[n].iov_base = (char *)parts[i].iov_base + skip;
			batch[n].iov_len = parts[i].iov_len - skip;
			n++;
		}
		ssize_t w = writev(fd, batch, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		size_t left = (size_t)w;
		while (left > 0) {
			size_t avail = parts[idx].iov_len - off;
			if (left < avail) {
				off += left;
				left = 0;
			} else {
				left -= avail;
				idx++;
				off = 0;
			}
		}
	}
}

/* tmp/NAME -> new/NAME without ever replacing an existing message. */
static int maildir_rename_noreplace(int dfd, const char *from, const char *to)
{
	if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* file systems without RENAME_NOREPLACE: link() refuses an existing target (qmail's way) */
	if (linkat(dfd, from, dfd, to, 0) < 0)
		return -1;
	unlinkat(dfd, from, 0);
	return 0;
}

enum result maildir_deliver(const char *path, const char *hostname, const struct iovec *parts, int nparts,
			    uint64_t quota, char name_r[MAILDIR_NAME_MAX + 1], const char **error_r)
{
	char host[MAILDIR_HOST_MAX + 1];
	char name[MAILDIR_NAME_MAX + 1];
	char tmp_rel[MAILDIR_NAME_MAX + 8], new_rel[MAILDIR_NAME_MAX + 8];
	uint64_t size, bare;
	enum result r;

	name_r[0] = '\0';
	if (!path || nparts < 0 || (nparts > 0 && !parts))
		return maildir_tempfail(error_r, "invalid delivery arguments");
	maildir_parts_scan(parts, nparts, &size, &bare);

	if (quota > 0) {
		uint64_t used;
		r = maildir_usage(path, &used, error_r);
		if (r != RESULT_OK)
			return r;
		if (size > quota || used > quota - size)
			return maildir_tempfail(error_r, "over quota");
	}

	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT) {
		/* the first message for this address creates its maildir */
		r = maildir_create(path, error_r);
		if (r != RESULT_OK)
			return r;
		dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (dfd < 0)
		return maildir_errno_fail(error_r, errno);

	maildir_host_clean(hostname, host);
	int fd = -1, e = 0;
	bool repaired = false;
	for (int attempt = 0; attempt < MAILDIR_DELIVER_TRIES && fd < 0; attempt++) {
		if (maildir_name_make(host, size, bare > 0, maildir_add_sat(size, bare), name) < 0) {
			close(dfd);
			return maildir_tempfail(error_r, "cannot make a unique name");
		}
		snprintf(tmp_rel, sizeof(tmp_rel), "tmp/%s", name);
		snprintf(new_rel, sizeof(new_rel), "new/%s", name);
		fd = openat(dfd, tmp_rel, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 && errno == ENOENT && !repaired) {
			/* the maildir exists but tmp/ (or new/, cur/) does not: made by hand or half made */
			repaired = true;
			r = maildir_create(path, error_r);
			if (r != RESULT_OK) {
				close(dfd);
				return r;
			}
			fd = openat(dfd, tmp_rel, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		}
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		e = errno;
		close(dfd);
		if (e == EEXIST)
			return maildir_tempfail(error_r, "cannot make a unique name");
		return maildir_errno_fail(error_r, e);
	}

	if (maildir_parts_write(fd, parts, nparts) < 0 || fsync(fd) < 0) {
		e = errno;
		close(fd);
		goto fail_tmp;
	}
	/* close() can report a deferred write error (NFS); EINTR still closed the descriptor on Linux */
	if (close(fd) < 0 && errno != EINTR) {
		e = errno;
		goto fail_tmp;
	}
	if (maildir_rename_noreplace(dfd, tmp_rel, new_rel) < 0) {
		e = errno;
		goto fail_tmp;
	}

	/* the rename is durable only once new/ itself is on disk (Maildir: the message is delivered
	 * when it appears in new/) */
	int nfd = openat(dfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nfd < 0 || fsync(nfd) < 0) {
		e = errno;
		if (nfd >= 0)
			close(nfd);
		/* a 4xx means "not delivered": take it back so the retry does not make a duplicate */
		unlinkat(dfd, new_rel, 0);
		close(dfd);
		return maildir_errno_fail(error_r, e);
	}
	close(nfd);
	close(dfd);
	memcpy(name_r, name, strlen(name) + 1);
	return RESULT_OK;

fail_tmp:
	unlinkat(dfd, tmp_rel, 0);
	close(dfd);
	return maildir_errno_fail(error_r, e);
}

/* ---- POP3 maildrop -------------------------------------------------------------------------- */

/* Opens a file in dirfd_ for reading: never through a symlink, never blocking on a FIFO, and only
 * when it is a regular file. -1 with errno. */
static int maildir_file_open(int dirfd_, const char *rel)
{
	int fd = openat(dirfd_, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	struct stat st;
	int e = 0;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	if (e) {
		close(fd);
		errno = e;
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

/* Octets with every bare LF counted as CRLF, by reading the file. */
static int maildir_file_crlf_size(int dirfd_, const char *name, uint64_t *size_r)
{
	int fd = maildir_file_open(dirfd_, name);
	if (fd < 0)
		return -1;
	char *buf = malloc(MAILDIR_READ_CHUNK);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	uint64_t size = 0;
	char prev = '\0';
	int ret = 0;
	for (;;) {
		ssize_t n = read(fd, buf, MAILDIR_READ_CHUNK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && prev != '\r')
				size++;
			prev = buf[i];
		}
		size += (uint64_t)n;
	}
	int e = errno;
	free(buf);
	close(fd);
	errno = e;
	if (ret == 0)
		*size_r = size;
	return ret;
}

/* RFC 1939 §7: a unique-id is 1..70 octets of 0x21..0x7E. The base name is used as it is when it
 * fits; otherwise its SHA-1 in hex, which is just as stable. */
static int maildir_uid_make(const char *base, char uid[MAILDIR_UID_MAX + 1])
{
	size_t len = strlen(base);
	bool plain = len > 0 && len <= MAILDIR_UID_MAX;
	for (size_t i = 0; plain && i < len; i++)
		plain = base[i] >= 0x21 && base[i] <= 0x7e;
	if (plain) {
		memcpy(uid, base, len + 1);
		return 0;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(base, len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen * 2 > MAILDIR_UID_MAX)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(uid + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Moves one file of new/ to cur/, adding ":2," unless the name already has an info part or would
 * become too long. A file that another session moved first, or whose name is taken in cur/, stays
 * where it is without failing the login. */
static int maildir_move_one(int dfd, const char *name)
{
	char from[MAILDIR_NAME_MAX + 8], to[MAILDIR_NAME_MAX + 8];
	size_t len = strlen(name);
	bool add_info = !strchr(name, ':') && len + MAILDIR_INFO_LEN <= MAILDIR_NAME_MAX;
	snprintf(from, sizeof(from), "new/%s", name);
	snprintf(to, sizeof(to), "cur/%s%s", name, add_info ? ":2," : "");
	if (maildir_rename_noreplace(dfd, from, to) == 0)
		return 0;
	if (errno == ENOENT || errno == EEXIST)
		return 0;
	return -1;
}

static int maildir_new_move(int dfd)
{
	DIR *d = maildir_dir_open(dfd, "new");
	if (!d)
		return errno == ENOENT ? 0 : -1;
	struct dirent *de;
	int ret = 0;
	while ((de = maildir_dir_next(d)) != NULL) {
		struct maildir_name n;
		if (de->d_name[0] == '.' || maildir_name_parse(de->d_name, &n, NULL) < 0)
			continue;
		if (!maildir_entry_is_reg(dirfd(d), de))
			continue;
		if (maildir_move_one(dfd, de->d_name) < 0) {
			ret = -1;
			break;
		}
	}
	int e = errno;
	closedir(d);
	errno = e;
	return ret < 0 || e ? -1 : 0;
}

static int maildir_msg_cmp(const void *a, const void *b)
{
	const struct maildir_msg *x = a, *y = b;
	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->file, y->file);
}

/* One entry of cur/ as POP3 sees it; 1 when it is not a message to list, -1 on error. */
static int maildir_msg_fill(int curfd, const char *file, struct maildir_msg *m)
{
	struct maildir_name n;
	struct stat st;
	if (file[0] == '.' || maildir_name_parse(file, &n, NULL) < 0)
		return 1;
	if (fstatat(curfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 1 : -1;
	if (!S_ISREG(st.st_mode))
		return 1; /* never serve a symlink, FIFO or directory */

	if (n.has_wsize) {
		m->size = n.wsize;
	} else if (n.has_size && n.size == (uint64_t)st.st_size && maildir_base_is_ours(n.base)) {
		/* ours, and we write W= whenever there is a bare LF: S= is the CRLF size. Saves reading
		 * the whole mailbox at every login. */
		m->size = n.size;
	} else if (maildir_file_crlf_size(curfd, file, &m->size) < 0) {
		return errno == ENOENT ? 1 : -1;
	}
	if (maildir_uid_make(n.base, m->uid) < 0) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(m->file, file, strlen(file) + 1);
	m->mtime = (int64_t)st.st_mtim.tv_sec;
	return 0;
}

static int maildir_cur_list(int dfd, struct maildir_msg **msgs_r, size_t *count_r)
{
	struct maildir_msg *msgs = NULL;
	size_t count = 0, cap = 0;
	DIR *d = maildir_dir_open(dfd, "cur");
	if (!d)
		return errno == ENOENT ? 0 : -1;
	struct dirent *de;
	int ret = 0;
	while ((de = maildir_dir_next(d)) != NULL) {
		if (count == cap) {
			if (cap >= MAILDIR_DROP_MAX) {
				errno = EFBIG;
				ret = -1;
				break;
			}
			size_t ncap = cap ? cap * 2 : 32;
			struct maildir_msg *nm = realloc(msgs, ncap * sizeof(*nm));
			if (!nm) {
				errno = ENOMEM;
				ret = -1;
				break;
			}
			msgs = nm;
			cap = ncap;
		}
		int r = maildir_msg_fill(dirfd(d), de->d_name, &msgs[count]);
		if (r < 0) {
			ret = -1;
			break;
		}
		if (r == 0)
			count++;
	}
	int e = errno; /* from the failing step, or readdir's (0 at the end) */
	closedir(d);
	if (ret < 0 || e) {
		free(msgs);
		errno = e;
		return -1;
	}
	if (count > 1)
		qsort(msgs, count, sizeof(*msgs), maildir_msg_cmp);
	*msgs_r = msgs;
	*count_r = count;
	return 0;
}

enum result maildir_drop_open(const char *path, struct maildir_msg **msgs_r, size_t *count_r, const char **error_r)
{
	*msgs_r = NULL;
	*count_r = 0;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		/* no mail delivered yet: an empty maildrop */
		return errno == ENOENT ? RESULT_OK : maildir_errno_fail(error_r, errno);
	}
	if (maildir_new_move(dfd) < 0 || maildir_cur_list(dfd, msgs_r, count_r) < 0) {
		int e = errno;
		close(dfd);
		if (e == EFBIG)
			return maildir_tempfail(error_r, "too many messages");
		return maildir_errno_fail(error_r, e);
	}
	close(dfd);
	return RESULT_OK;
}

/* cur/FILE for a message from the list, refusing a file name that could point elsewhere. */
static int maildir_msg_rel(const struct maildir_msg *m, char rel[MAILDIR_NAME_MAX + 8])
{
	struct maildir_name n;
	if (strnlen(m->file, sizeof(m->file)) >= sizeof(m->file) || maildir_name_parse(m->file, &n, NULL) < 0) {
		errno = EINVAL;
		return -1;
	}
	snprintf(rel, MAILDIR_NAME_MAX + 8, "cur/%s", m->file);
	return 0;
}

int maildir_msg_open(const char *path, const struct maildir_msg *m)
{
	char rel[MAILDIR_NAME_MAX + 8];
	if (maildir_msg_rel(m, rel) < 0)
		return -1;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int fd = maildir_file_open(dfd, rel);
	int e = errno;
	close(dfd);
	errno = e;
	return fd;
}

enum result maildir_msg_delete(const char *path, const struct maildir_msg *m, const char **error_r)
{
	char rel[MAILDIR_NAME_MAX + 8];
	if (maildir_msg_rel(m, rel) < 0)
		return maildir_tempfail(error_r, "invalid message file name");
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? RESULT_OK : maildir_errno_fail(error_r, errno);
	/* RFC 1939 §6: deleting a message that is already gone is not an error for the session */
	if (unlinkat(dfd, rel, 0) < 0 && errno != ENOENT) {
		int e = errno;
		close(dfd);
		return maildir_errno_fail(error_r, e);
	}
	close(dfd);
	return RESULT_OK;
}

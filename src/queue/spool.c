/* spool.c — anonymous spool files for large incoming messages (see spool.h). */
#include "queue/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file in dir that no name points to: O_TMPFILE where the file system has it (Linux >= 3.11 on
 * ext4, xfs, btrfs, tmpfs), else a random name unlinked at once. */
static int spool_open_anonymous(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	for (int tries = 0; tries < 8; tries++) {
		char path[4096 + 32];
		unsigned char r[8];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			return -1;
		int w = snprintf(path, sizeof(path), "%s/%02x%02x%02x%02x%02x%02x%02x%02x.tmp", dir, r[0], r[1], r[2],
				 r[3], r[4], r[5], r[6], r[7]);
		if (w < 0 || (size_t)w >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0) {
			unlink(path);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

struct queue_spool *queue_spool_new(const char *data_dir, char *error, size_t error_size)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%s", data_dir, QUEUE_SPOOL_DIR);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(error, error_size, "cannot make %s: %s", dir, strerror(errno));
		return NULL;
	}
	struct queue_spool *sp = calloc(1, sizeof(*sp));
	if (sp == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	sp->fd = spool_open_anonymous(dir);
	if (sp->fd < 0) {
		snprintf(error, error_size, "cannot make a spool file in %s: %s", dir, strerror(errno));
		free(sp);
		return NULL;
	}
	return sp;
}

static bool spool_write_all(int fd, const char *c, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return false;
		}
		c += w;
		n -= (size_t)w;
	}
	return true;
}

bool queue_spool_flush(struct queue_spool *sp)
{
	bool ok = spool_write_all(sp->fd, sp->buf, sp->buffered);
	sp->buffered = 0;
	return ok;
}

bool queue_spool_append(struct queue_spool *sp, const void *p, size_t n)
{
	if (sp->buf == NULL && (sp->buf = malloc(QUEUE_SPOOL_BUFFER)) == NULL)
		return false;
	sp->size += n;
	if (sp->buffered + n <= QUEUE_SPOOL_BUFFER) {
		memcpy(sp->buf + sp->buffered, p, n);
		sp->buffered += n;
		return true;
	}
	/* full: what is gathered goes first, then this piece (directly when it is large) */
	if (!queue_spool_flush(sp))
		return false;
	if (n >= QUEUE_SPOOL_BUFFER)
		return spool_write_all(sp->fd, p, n);
	memcpy(sp->buf, p, n);
	sp->buffered = n;
	return true;
}

ssize_t queue_spool_read(void *arg, uint64_t off, char *buf, size_t size)
{
	const struct queue_spool *sp = arg;
	if (off >= sp->size)
		return 0;
	if (size > sp->size - off)
		size = (size_t)(sp->size - off);
	for (;;) {
		ssize_t n = pread(sp->fd, buf, size, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && size > 0) { /* shorter than what was written: never pretend it ended */
			errno = EIO;
			return -1;
		}
		return n;
	}
}

void queue_spool_free(struct queue_spool *sp)
{
	if (sp == NULL)
		return;
	close(sp->fd);
	free(sp->buf);
	free(sp);
}

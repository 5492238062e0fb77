/* spool.h — the part of a message too large to hold in memory while it arrives: an anonymous file in
 * data_dir/spool, written in order, then read back in pieces by whoever needs the content (DKIM, the
 * store). Anonymous (O_TMPFILE, or unlinked as soon as it is made), so that a crash or kill -9 leaves
 * nothing behind: what was not acknowledged is simply gone, and nothing needs cleaning at start. */
#ifndef MAILWERK_QUEUE_SPOOL_H
#define MAILWERK_QUEUE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QUEUE_SPOOL_DIR "spool"

/* Octets gathered before one write(2): content arrives a line at a time. */
#define QUEUE_SPOOL_BUFFER 65536

struct queue_spool {
	int fd;
	uint64_t size;   /* octets appended (some may still be in buf until queue_spool_flush) */
	char *buf;       /* QUEUE_SPOOL_BUFFER octets, made at the first append */
	size_t buffered; /* of them, not yet written */
};

/* A new empty spool under data_dir/spool (made if missing, mode 0700). NULL with a sentence. */
struct queue_spool *queue_spool_new(const char *data_dir, char *error, size_t error_size);
/* Appends n octets; false on a write error (errno set: ENOSPC, EIO, ...). */
bool queue_spool_append(struct queue_spool *sp, const void *p, size_t n);
/* Writes out what is buffered: call before anyone reads the spool (other threads included). */
bool queue_spool_flush(struct queue_spool *sp);
/* Reads up to size octets at off into buf: how many (0 at the end), or -1 on error. The shape of
 * dkim_body_read_fn, with the spool as arg; only after queue_spool_flush. */
ssize_t queue_spool_read(void *sp, uint64_t off, char *buf, size_t size);
/* Closes it (the file goes with its last descriptor); NULL is allowed. */
void queue_spool_free(struct queue_spool *sp);

#endif

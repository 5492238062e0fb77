/* maildir.h — one user's mailbox in Maildir format, DATA_DIR/mail/DOMAIN/LOCAL/{tmp,new,cur}: written
 * by local delivery, read and pruned by POP3. Every function is blocking file I/O: call it from a
 * worker thread, never from the event loop. Thread-safe (no shared state). */
#ifndef MAILWERK_MAILBOX_MAILDIR_H
#define MAILWERK_MAILBOX_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/result.h"

/* RFC 1939 §7: a unique-id is 1 to 70 characters in 0x21..0x7E. Our file base names fit. */
#define MAILDIR_UID_MAX 70
#define MAILDIR_NAME_MAX 255

/* What a file name says (Maildir convention, as Dovecot and Courier write it):
 *   BASE[,S=<size>][,W=<size with CRLF line ends>][:2,<flags>]
 * BASE is unique per message and stable across new/ -> cur/ moves: it is the POP3 UIDL. */
struct maildir_name {
	char base[MAILDIR_NAME_MAX + 1];
	bool has_size;
	uint64_t size;   /* S=: octets in the file */
	bool has_wsize;
	uint64_t wsize;  /* W=: octets when every line ends in CRLF */
	char flags[32];  /* after ":2,", e.g. "S" or "RS"; "" when none */
};

/* Pure; fuzzed. 0 on success, -1 (with *error_r) for a name that is empty, too long, contains '/'
 * or NUL, starts with '.', or has a malformed S=/W= field or info part. */
int maildir_name_parse(const char *name, struct maildir_name *n_r, const char **error_r);

/* DATA_DIR/mail/DOMAIN/LOCAL for address "local@domain": the domain lower-cased; the local part
 * with '/' and leading '.' made harmless (every other octet kept), so no address can leave
 * DATA_DIR/mail/DOMAIN. -1 when it does not fit. */
int maildir_path(const char *data_dir, const char *address, char *out, size_t size);

/* Creates path and its tmp/, new/, cur/ (and missing parents) with mode 0700. */
enum result maildir_create(const char *path, const char **error_r);

/* Delivers one message: the parts (e.g. our added header lines, then the stored message) go to a
 * new unique file in tmp/, which is fsynced, renamed into new/, and new/ is fsynced (the Maildir
 * way). The name carries S= (and W= when the content has bare-LF lines). When quota > 0 and the
 * mailbox's usage plus this message would exceed it, nothing is written and RESULT_TEMPFAIL comes
 * back with "over quota". Disk full, permissions: RESULT_TEMPFAIL. name_r gets the new file name. */
enum result maildir_deliver(const char *path, const char *hostname, const struct iovec *parts, int nparts,
			    uint64_t quota, char name_r[MAILDIR_NAME_MAX + 1], const char **error_r);

/* Octets in new/ and cur/ (from S= where present, else stat). */
enum result maildir_usage(const char *path, uint64_t *bytes_r, const char **error_r);

/* One message as POP3 sees it. */
struct maildir_msg {
	char file[MAILDIR_NAME_MAX + 1]; /* name inside cur/ */
	char uid[MAILDIR_UID_MAX + 1];   /* stable UIDL: the base name (or a hash of it when too long) */
	uint64_t size;                   /* octets as sent by RETR, before dot-stuffing: CRLF line ends */
	int64_t mtime;
};

/* POP3 maildrop at login (RFC 1939 §4): moves everything in new/ to cur/ (adding ":2,"), then lists
 * cur/ ordered by delivery time (mtime, then name). *msgs_r is malloc'd (free() it). */
enum result maildir_drop_open(const char *path, struct maildir_msg **msgs_r, size_t *count_r, const char **error_r);

/* Opens the message file for reading; -1 with errno when it is gone. */
int maildir_msg_open(const char *path, const struct maildir_msg *m);

/* Removes the message (UPDATE state); a file already gone counts as removed. */
enum result maildir_msg_delete(const char *path, const struct maildir_msg *m, const char **error_r);

#endif

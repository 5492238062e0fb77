/* parent_inherit.h — what a parent that upgrades hands to the program it executes in its own place
 * (parent_upgrade.h): the descriptors it keeps across the execve (every listener, and its end of
 * the serving worker's socketpair), that worker's pid, the pid of that worker's DKIM signer (0 when
 * none runs: it is being restarted) and the upgrade's number. They travel in one environment
 * variable, PARENT_INHERIT_ENV, which the new program reads and removes first thing:
 *
 *   v1 seq=3 worker=4242 signer=4243 ipc=5 sock=6,smtp,127.0.0.1:25 sock=7,submission,[::1]:587
 *
 * Pure: no I/O, so that the reading is unit-tested and fuzzed. The text is judged as strictly as
 * anything from a peer; that the descriptors are really sockets, and the pids really our children,
 * is for the caller to check. */
#ifndef MAILWERK_SERVER_PARENT_INHERIT_H
#define MAILWERK_SERVER_PARENT_INHERIT_H

#include <stddef.h>
#include <sys/types.h>

#include "ipc/ipc.h"
#include "server/parent_msg.h"

#define PARENT_INHERIT_ENV "MAILWERK_UPGRADE"
/* The longest text: every number at its longest, every socket with the longest role and address. */
#define PARENT_INHERIT_MAX (64 + IPC_FDS_MAX * (16 + 16 + sizeof(((struct parent_socket *)0)->addr)))
/* Descriptors and pids are numbers in these ranges (0-2 are the standard streams; Linux's pid_max
 * is at most 2^22). */
#define PARENT_INHERIT_FD_MAX (1 << 20)
#define PARENT_INHERIT_PID_MAX (1 << 22)

struct parent_inherit {
	unsigned seq;  /* the upgrade under way: 1 and up */
	pid_t worker;  /* the worker serving meanwhile */
	pid_t signer;  /* its DKIM signer; 0: none */
	int ipc;       /* the parent's end of its socketpair */
	struct parent_socket socks[IPC_FDS_MAX];
	size_t nsocks;
};

/* The text for in, NUL-terminated, into out. Its length, or -1 when it does not fit. */
int parent_inherit_format(const struct parent_inherit *in, char *out, size_t size);

/* Reads text (NUL-terminated) into *in_r. 0, or -1 with a sentence: another version, a field
 * missing, repeated or out of order, a number that is not one or out of its range, a signer that is
 * the worker, a descriptor named twice, an unknown role, an address that is empty, too long or not
 * printable ASCII. */
int parent_inherit_parse(const char *text, struct parent_inherit *in_r, const char **error_r);

#endif

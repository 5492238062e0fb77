/* parent_msg.h — what the parent and its worker say to each other over their socketpair (framed by
 * ipc/ipc.h). The parent binds every listener and hands the descriptors over; the worker serves.
 * Pure: no I/O here, so that both sides' reading of a message is unit-tested and fuzzed.
 *
 * The type numbers never change meaning between versions: after an upgrade (parent_upgrade.h) the
 * new parent talks to the worker the old version started until that one has drained. */
#ifndef MAILWERK_SERVER_PARENT_MSG_H
#define MAILWERK_SERVER_PARENT_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

enum parent_msg_type {
	PARENT_MSG_LISTENERS = 1, /* parent → worker, once, first: the bound listeners, descriptors attached */
	PARENT_MSG_RELOAD,        /* parent → worker: read the configuration again; the listeners now bound */
	PARENT_MSG_READY,         /* worker → parent: every store open, serving */
	PARENT_MSG_RELOADED,      /* worker → parent: "ok", or "refused" (the old configuration goes on) */
	PARENT_MSG_SIGNER,        /* parent → worker: the socket to a (new) DKIM signer, no text (signer.h) */
	/* the upgrade (parent_upgrade.h): a new worker starts beside the one serving, which then drains */
	PARENT_MSG_LISTENERS_STANDBY, /* parent → worker, in place of LISTENERS: another worker of ours
				       * still runs; make the control socket beside its one (moved onto the
				       * path just before READY), and start no background work (delivery,
				       * webhooks, reports) until ALONE */
	PARENT_MSG_ALONE,         /* parent → worker (a standby one): no other worker runs any more */
	PARENT_MSG_DRAIN,         /* parent → worker: a successor serves; stop accepting, let the sessions
				   * finish within the seconds of the payload, then stop as on SIGTERM */
	PARENT_MSG_UPGRADE,       /* parent → worker: how the last upgrade ended (struct parent_upgrade_outcome) */
};

/* Where the worker finds its end of the socketpair: the parent puts it there before the exec. */
#define PARENT_IPC_FD 3

/* A listening socket: the listener it is ([listen] key and address, as the configuration writes
 * them) and its descriptor. */
struct parent_socket {
	enum conf_listener role;
	char addr[sizeof(((struct conf_addr *)0)->text)];
	int fd;
};

/* The payload describing s[0..n): "ROLE ADDR\n" per socket, in the order of the descriptors sent
 * with it. Its length, or -1 when it does not fit in size. */
int parent_sockets_format(const struct parent_socket *s, size_t n, char *out, size_t size);

/* Reads such a payload, which must name exactly nfds sockets, one per descriptor of fds in order,
 * into out[0..nfds). 0, or -1 with a sentence (an unknown role, an address that is empty, too long
 * or not printable ASCII, a line count that is not nfds). */
int parent_sockets_parse(const unsigned char *p, size_t len, const int *fds, size_t nfds, struct parent_socket *out,
			 const char **error_r);

/* DRAIN's payload: the seconds the sessions get, in decimal ("60"). Its length, or -1. */
int parent_drain_format(unsigned seconds, char *out, size_t size);
/* 0 with *seconds_r (at most PARENT_DRAIN_MAX_SECONDS), or -1 with a sentence. */
#define PARENT_DRAIN_MAX_SECONDS 86400
int parent_drain_parse(const unsigned char *p, size_t len, unsigned *seconds_r, const char **error_r);

/* How an upgrade ended, for `mailwerk status` (and `mailwerk serve --upgrade`, which waits for it):
 * its number (the parent counts the upgrades it was asked for, across its executions), whether a
 * new worker serves from the new binary, and if not why, in one sentence. */
#define PARENT_UPGRADE_REASON_MAX 200
struct parent_upgrade_outcome {
	unsigned seq; /* 1 and up */
	bool done;
	char reason[PARENT_UPGRADE_REASON_MAX + 1]; /* "" when done */
};

/* UPGRADE's payload: "SEQ done" or "SEQ failed REASON". Its length, or -1 when it does not fit.
 * A reason is cut to PARENT_UPGRADE_REASON_MAX octets, and what is not printable ASCII becomes '?'. */
int parent_upgrade_format(const struct parent_upgrade_outcome *o, char *out, size_t size);
/* 0, or -1 with a sentence (a number that is not one, an unknown word, a reason that is missing,
 * too long or not printable ASCII). */
int parent_upgrade_parse(const unsigned char *p, size_t len, struct parent_upgrade_outcome *o_r, const char **error_r);

#endif

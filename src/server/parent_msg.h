/* parent_msg.h — what the parent and its worker say to each other over their socketpair (framed by
 * ipc/ipc.h). The parent binds every listener and hands the descriptors over; the worker serves.
 * Pure: no I/O here, so that both sides' reading of a message is unit-tested and fuzzed. */
#ifndef MAILWERK_SERVER_PARENT_MSG_H
#define MAILWERK_SERVER_PARENT_MSG_H

#include <stddef.h>

#include "conf/conf.h"

enum parent_msg_type {
	PARENT_MSG_LISTENERS = 1, /* parent → worker, once, first: the bound listeners, descriptors attached */
	PARENT_MSG_RELOAD,        /* parent → worker: read the configuration again; the listeners now bound */
	PARENT_MSG_READY,         /* worker → parent: every store open, serving */
	PARENT_MSG_RELOADED,      /* worker → parent: "ok", or "refused" (the old configuration goes on) */
	PARENT_MSG_SIGNER,        /* parent → worker: the socket to a (new) DKIM signer, no text (signer.h) */
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

#endif

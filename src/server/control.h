/* control.h — the worker's control socket (data_dir/control.sock): `mailwerk status` and the queue
 * commands of a running server talk to it (protocol: control_msg.h). Loop thread only. */
#ifndef MAILWERK_SERVER_CONTROL_H
#define MAILWERK_SERVER_CONTROL_H

#include <stddef.h>

struct server;
struct control;

/* In server_init, after the switch to [server] user and once the queue and the worker threads
 * exist, before the sandbox (which has no listen(2)): replaces a stale socket, binds, mode 0600,
 * listens. A data_dir too long for a UNIX socket's path leaves the server without one (logged).
 * NULL with a sentence when another server answers on the socket or it cannot be made. */
struct control *control_new(struct server *srv, char *error_r, size_t error_size);
/* The configuration was read again: `status` shows when. */
void control_reloaded(struct control *ctl);
/* After the worker threads and the loop queue are done (their last replies found no one):
 * closes every connection, removes the socket. NULL is fine. */
void control_free(struct control *ctl);

#endif

/* control.h — the worker's control socket (data_dir/control.sock): `mailwerk status` and the queue
 * commands of a running server talk to it (protocol: control_msg.h). Loop thread only. */
#ifndef MAILWERK_SERVER_CONTROL_H
#define MAILWERK_SERVER_CONTROL_H

#include <stddef.h>

struct server;
struct control;

/* In server_init, after the switch to [server] user and once the queue and the worker threads
 * exist, before the sandbox (which has no listen(2)): replaces a stale socket, binds, mode 0600,
 * listens (on the standby path, for a standby worker). A data_dir too long for a UNIX socket's path leaves the server without one (logged).
 * NULL with a sentence when another server answers on the socket or it cannot be made. */
struct control *control_new(struct server *srv, char *error_r, size_t error_size);
/* The configuration was read again: `status` shows when. */
void control_reloaded(struct control *ctl);

/* An upgrade (server/parent_upgrade.h). A worker started beside another one (srv->standby) listens
 * on CONTROL_SOCKET_STANDBY_NAME instead, since the path is the other's; take_over moves its
 * socket onto the path (rename(2): at no moment is there none) just before it says it is ready.
 * The worker that drains stops listening (release); at its end it removes the path only if it is
 * still its own socket, so it never takes away the new worker's. noted keeps how the parent says
 * the last upgrade ended, for `status`. NULL is fine for each. */
void control_take_over(struct control *ctl);
void control_release(struct control *ctl);
struct parent_upgrade_outcome;
void control_upgrade_noted(struct control *ctl, const struct parent_upgrade_outcome *o);
/* After the worker threads and the loop queue are done (their last replies found no one):
 * closes every connection, removes the socket. NULL is fine. */
void control_free(struct control *ctl);

#endif

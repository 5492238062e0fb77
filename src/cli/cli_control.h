/* cli_control.h — the CLI's end of the control socket (server/control_msg.h): commands that ask the
 * running server, and find out that none runs. */
#ifndef MAILWERK_CLI_CONTROL_H
#define MAILWERK_CLI_CONTROL_H

#include <stddef.h>

#include <jansson.h>

#include "server/control_msg.h"

enum cli_control_connect {
	CLI_CONTROL_CONNECTED = 0,
	CLI_CONTROL_NOT_RUNNING, /* no socket, or no one listens on it (ENOENT, ECONNREFUSED) */
	CLI_CONTROL_NO_PATH,     /* data_dir is too long for a socket's path: the server has none */
	CLI_CONTROL_FAILED,      /* anything else (permission): with a sentence */
};

/* Connects to data_dir's control socket: *fd_r on CLI_CONTROL_CONNECTED; a sentence in error. */
enum cli_control_connect cli_control_connect(const char *data_dir, int *fd_r, char *error, size_t error_size);

/* Sends req (its id is set here) and waits for the reply, at most CLI_CONTROL_TIMEOUT_MS: 0 with the
 * OK reply's JSON object in *json_r (the caller's), or -1 with a sentence in error (the server's
 * error reply, or what went wrong). Treats the reply as hostile input. */
#define CLI_CONTROL_TIMEOUT_MS 30000
int cli_control_call(int fd, struct control_request *req, json_t **json_r, char *error, size_t error_size);

#endif

/* cli_control.c — asking the running server through its control socket (cli_control.h). */
#include "cli/cli_control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc.h"

enum cli_control_connect cli_control_connect(const char *data_dir, int *fd_r, char *error, size_t error_size)
{
	struct sockaddr_un sa;
	socklen_t len;
	*fd_r = -1;
	if (control_socket_addr(data_dir, &sa, &len) != 0) {
		snprintf(error, error_size, "%s/%s: the path is too long for a UNIX socket (the server has none)",
			 data_dir, CONTROL_SOCKET_NAME);
		return CLI_CONTROL_NO_PATH;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(error, error_size, "socket: %s", strerror(errno));
		return CLI_CONTROL_FAILED;
	}
	if (connect(fd, (const struct sockaddr *)&sa, len) == 0) {
		*fd_r = fd;
		return CLI_CONTROL_CONNECTED;
	}
	int e = errno;
	close(fd);
	snprintf(error, error_size, "%s: %s", sa.sun_path, strerror(e));
	return e == ENOENT || e == ECONNREFUSED ? CLI_CONTROL_NOT_RUNNING : CLI_CONTROL_FAILED;
}

/* One record within the timeout into buf (IPC_RECORD_MAX): its length, or -1 with a sentence. */
static ssize_t cli_control_recv(int fd, unsigned char *buf, char *error, size_t error_size)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, CLI_CONTROL_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		snprintf(error, error_size, "the server did not answer within %d s", CLI_CONTROL_TIMEOUT_MS / 1000);
		return -1;
	}
	int fds[IPC_FDS_MAX];
	size_t nfds = 0;
	ssize_t n = r < 0 ? -1 : ipc_recv(fd, buf, fds, &nfds);
	ipc_fds_close(fds, nfds); /* a reply carries none */
	if (n <= 0)
		snprintf(error, error_size, "%s", n == 0 ? "the server closed the connection without an answer"
							: strerror(errno));
	return n > 0 ? n : -1;
}

/* The reply rec[0..n) to request id: its JSON object, or -1 with a sentence. */
static int cli_control_reply_read(const unsigned char *rec, size_t n, uint64_t id, json_t **json_r, char *error,
				  size_t error_size)
{
	struct control_reply rep;
	const char *err;
	if (control_reply_parse(rec, n, id, &rep, &err) != 0) {
		snprintf(error, error_size, "unreadable reply from the server: %s", err);
		return -1;
	}
	if (rep.type == CONTROL_REPLY_ERROR) {
		snprintf(error, error_size, "%.*s", (int)rep.len, rep.body);
		return -1;
	}
	json_error_t jerr;
	json_t *o = json_loadb(rep.body, rep.len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		snprintf(error, error_size, "unreadable reply from the server: not a JSON object");
		return -1;
	}
	*json_r = o;
	return 0;
}

int cli_control_call(int fd, struct control_request *req, json_t **json_r, char *error, size_t error_size)
{
	char payload[CONTROL_REQUEST_PAYLOAD_MAX];
	*json_r = NULL;
	/* any id but 0 will do: one request per connection here, its reply must name it */
	req->id = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ 1;
	if (req->id == 0)
		req->id = 1;
	size_t len = control_request_payload(req, payload);
	if (ipc_send(fd, req->type, req->id, payload, len, NULL, 0) != 0) {
		snprintf(error, error_size, "cannot send to the server: %s", strerror(errno));
		return -1;
	}
	unsigned char *rec = malloc(IPC_RECORD_MAX);
	if (rec == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	ssize_t n = cli_control_recv(fd, rec, error, error_size);
	int rc = n > 0 ? cli_control_reply_read(rec, (size_t)n, req->id, json_r, error, error_size) : -1;
	free(rec);
	return rc;
}

/* control_msg.h — what `mailwerk status` and `mailwerk queue hold|release|bounce` say to a running
 * worker over its control socket (data_dir/control.sock, a UNIX SOCK_SEQPACKET socket). Each request
 * and each reply is one record framed as ipc/ipc.h frames the parent's messages: the header's type
 * says what it is, its id is the request's (never 0; a reply carries the id it answers).
 *
 * Requests are small: at most CONTROL_REQUEST_PAYLOAD_MAX octets after the header. STATUS has no
 * payload, nor do ACME_RENEW and ACME_REVOKE; HOLD and RELEASE name a queue id or CONTROL_TARGET_ALL; BOUNCE names a queue id. A reply
 * is OK with a JSON object, or ERROR with one sentence (printable ASCII).
 *
 * Pure: no I/O, so that both sides' reading is unit-tested and fuzzed. */
#ifndef MAILWERK_SERVER_CONTROL_MSG_H
#define MAILWERK_SERVER_CONTROL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ipc/ipc.h"

#define CONTROL_SOCKET_NAME "control.sock"
/* where a worker started beside the serving one listens until it serves (server/control.h) */
#define CONTROL_SOCKET_STANDBY_NAME "control.sock.standby"

enum control_msg_type {
	CONTROL_REQ_STATUS = 1, /* what the server is doing: a JSON object */
	CONTROL_REQ_HOLD,       /* keep a message (or every one) from delivery until released */
	CONTROL_REQ_RELEASE,    /* let it be delivered again */
	CONTROL_REQ_BOUNCE,     /* fail every remaining recipient now, with a DSN to the sender */
	CONTROL_REQ_ACME_RENEW, /* ask the ACME CA for a new certificate now (acme/acme.h) */
	CONTROL_REQ_ACME_REVOKE, /* revoke the ACME certificate in use, then get a new one */
	CONTROL_REPLY_OK = 64,  /* payload: a JSON object */
	CONTROL_REPLY_ERROR,    /* payload: a sentence */
};
const char *control_msg_type_str(enum control_msg_type t);

/* The queue id length (queue.h QUEUE_ID_LEN), repeated so that this parser needs no queue code. */
#define CONTROL_QUEUE_ID_LEN 20
#define CONTROL_TARGET_ALL "*"
#define CONTROL_REQUEST_PAYLOAD_MAX 64
#define CONTROL_REQUEST_MAX (IPC_HEADER_SIZE + CONTROL_REQUEST_PAYLOAD_MAX)
/* An error sentence is cut to this many octets by its writer and refused longer by its reader. */
#define CONTROL_ERROR_MAX 512

struct control_request {
	enum control_msg_type type;
	uint64_t id;
	bool all;                                 /* HOLD/RELEASE of every message */
	char queue_id[CONTROL_QUEUE_ID_LEN + 1]; /* "" when all, or for STATUS */
};

/* Reads one record rec[0..n) as a request. 0, or -1 with a sentence (bad framing, over
 * CONTROL_REQUEST_MAX, id 0, a type that is no request, a payload the type does not take). */
int control_request_parse(const unsigned char *rec, size_t n, struct control_request *r_r, const char **error_r);

/* The payload of r (queue id, CONTROL_TARGET_ALL or nothing) into out (CONTROL_REQUEST_PAYLOAD_MAX
 * octets); its length. */
size_t control_request_payload(const struct control_request *r, char *out);

struct control_reply {
	enum control_msg_type type; /* CONTROL_REPLY_OK or CONTROL_REPLY_ERROR */
	uint64_t id;
	const char *body;           /* points into the record; not NUL-terminated */
	size_t len;
};

/* Reads one record as the reply to request id. 0, or -1 with a sentence (bad framing, another id,
 * a type that is no reply, an empty body, an error sentence that is not printable ASCII or is over
 * CONTROL_ERROR_MAX). The JSON of an OK reply is for the caller's JSON parser to judge. */
int control_reply_parse(const unsigned char *rec, size_t n, uint64_t id, struct control_reply *r_r,
			const char **error_r);

/* The socket's address in data_dir. 0, or -1 when the path does not fit in sun_path. */
int control_socket_addr(const char *data_dir, struct sockaddr_un *sa_r, socklen_t *len_r);
/* The same for the name CONTROL_SOCKET_NAME or CONTROL_SOCKET_STANDBY_NAME. */
int control_socket_addr_named(const char *data_dir, const char *name, struct sockaddr_un *sa_r, socklen_t *len_r);

#endif

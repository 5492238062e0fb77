/* control_msg.c — reading the control socket's requests and replies (control_msg.h). Every octet is
 * hostile until checked: the socket is the server user's, but whatever runs as that user can write
 * to it. */
#include "server/control_msg.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

const char *control_msg_type_str(enum control_msg_type t)
{
	switch (t) {
	case CONTROL_REQ_STATUS: return "status";
	case CONTROL_REQ_HOLD: return "hold";
	case CONTROL_REQ_RELEASE: return "release";
	case CONTROL_REQ_BOUNCE: return "bounce";
	case CONTROL_REQ_ACME_RENEW: return "acme_renew";
	case CONTROL_REQ_ACME_REVOKE: return "acme_revoke";
	case CONTROL_REPLY_OK: return "ok";
	case CONTROL_REPLY_ERROR: return "error";
	}
	return "unknown";
}

/* Crockford base32 as queue ids are written (queue_id.c): digits and upper-case letters but I, L,
 * O and U. The full check is the queue's; this one keeps anything else out of the logs. */
static bool control_queue_id_octets(const unsigned char *p, size_t len)
{
	if (len != CONTROL_QUEUE_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		bool digit = c >= '0' && c <= '9';
		bool letter = c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U';
		if (!digit && !letter)
			return false;
	}
	return true;
}

/* The target of a queue request: a queue id, or (when all_ok) CONTROL_TARGET_ALL. */
static int control_target_parse(const struct ipc_msg *m, bool all_ok, struct control_request *r,
				const char **error_r)
{
	if (m->len == 1 && m->payload[0] == CONTROL_TARGET_ALL[0]) {
		if (!all_ok) {
			*error_r = "this request takes one queue id, not every message";
			return -1;
		}
		r->all = true;
		return 0;
	}
	if (!control_queue_id_octets(m->payload, m->len)) {
		*error_r = all_ok ? "the payload is neither a queue id nor \"*\"" : "the payload is not a queue id";
		return -1;
	}
	memcpy(r->queue_id, m->payload, m->len);
	r->queue_id[m->len] = '\0';
	return 0;
}

int control_request_parse(const unsigned char *rec, size_t n, struct control_request *r_r, const char **error_r)
{
	struct ipc_msg m;
	memset(r_r, 0, sizeof(*r_r));
	if (n > CONTROL_REQUEST_MAX) {
		*error_r = "request over the size limit";
		return -1;
	}
	if (ipc_msg_parse(rec, n, &m, error_r) != 0)
		return -1;
	if (m.id == 0) {
		*error_r = "request without a request id";
		return -1;
	}
	r_r->id = m.id;
	r_r->type = (enum control_msg_type)m.type;
	switch (m.type) {
	case CONTROL_REQ_STATUS:
	case CONTROL_REQ_ACME_RENEW:
	case CONTROL_REQ_ACME_REVOKE:
		if (m.len != 0) {
			*error_r = m.type == CONTROL_REQ_STATUS ? "a status request has no payload"
								 : "an acme request has no payload";
			return -1;
		}
		return 0;
	case CONTROL_REQ_HOLD:
	case CONTROL_REQ_RELEASE:
		return control_target_parse(&m, true, r_r, error_r);
	case CONTROL_REQ_BOUNCE:
		return control_target_parse(&m, false, r_r, error_r);
	}
	*error_r = "unknown request type";
	return -1;
}

size_t control_request_payload(const struct control_request *r, char *out)
{
	if (r->type == CONTROL_REQ_STATUS || r->type == CONTROL_REQ_ACME_RENEW || r->type == CONTROL_REQ_ACME_REVOKE)
		return 0;
	const char *s = r->all ? CONTROL_TARGET_ALL : r->queue_id;
	size_t len = strnlen(s, CONTROL_REQUEST_PAYLOAD_MAX);
	memcpy(out, s, len);
	return len;
}

static bool control_sentence_ok(const unsigned char *p, size_t len)
{
	if (len == 0 || len > CONTROL_ERROR_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < ' ' || p[i] > '~')
			return false;
	return true;
}

int control_reply_parse(const unsigned char *rec, size_t n, uint64_t id, struct control_reply *r_r,
			const char **error_r)
{
	struct ipc_msg m;
	memset(r_r, 0, sizeof(*r_r));
	if (ipc_msg_parse(rec, n, &m, error_r) != 0)
		return -1;
	if (m.type != CONTROL_REPLY_OK && m.type != CONTROL_REPLY_ERROR) {
		*error_r = "the reply's type is unknown";
		return -1;
	}
	if (m.id != id) {
		*error_r = "the reply answers another request";
		return -1;
	}
	if (m.len == 0) {
		*error_r = "the reply is empty";
		return -1;
	}
	if (m.type == CONTROL_REPLY_ERROR && !control_sentence_ok(m.payload, m.len)) {
		*error_r = "the error reply is not one printable sentence";
		return -1;
	}
	r_r->type = (enum control_msg_type)m.type;
	r_r->id = m.id;
	r_r->body = (const char *)m.payload;
	r_r->len = m.len;
	return 0;
}

int control_socket_addr(const char *data_dir, struct sockaddr_un *sa_r, socklen_t *len_r)
{
	return control_socket_addr_named(data_dir, CONTROL_SOCKET_NAME, sa_r, len_r);
}

int control_socket_addr_named(const char *data_dir, const char *name, struct sockaddr_un *sa_r, socklen_t *len_r)
{
	memset(sa_r, 0, sizeof(*sa_r));
	sa_r->sun_family = AF_UNIX;
	int n = snprintf(sa_r->sun_path, sizeof(sa_r->sun_path), "%s/%s", data_dir, name);
	if (n < 0 || (size_t)n >= sizeof(sa_r->sun_path))
		return -1;
	*len_r = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}

/* ipc.h — messages between mailwerk's processes (the parent and its worker; later the signer).
 * They travel over a SOCK_SEQPACKET socketpair, one record per message, so that a message never
 * arrives in pieces and never runs into the next one: a fixed header of IPC_HEADER_SIZE octets
 * (type, payload length, request id; little-endian) and then the payload, at most
 * IPC_PAYLOAD_MAX octets, with up to IPC_FDS_MAX descriptors attached (SCM_RIGHTS). The other
 * process is trusted no more than a peer: every record is checked before it is read. */
#ifndef MAILWERK_IPC_IPC_H
#define MAILWERK_IPC_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_HEADER_SIZE 16
#define IPC_PAYLOAD_MAX 65536
#define IPC_RECORD_MAX (IPC_HEADER_SIZE + IPC_PAYLOAD_MAX)
#define IPC_FDS_MAX 64

struct ipc_msg {
	uint32_t type;
	uint32_t len; /* of payload */
	uint64_t id;  /* the request a reply answers; 0 when none */
	const unsigned char *payload; /* points into the record */
};

/* Pure: reads the record rec[0..n) as one message. 0, or -1 with a sentence (too short, a length
 * that is not the record's, a payload over the limit). */
int ipc_msg_parse(const unsigned char *rec, size_t n, struct ipc_msg *m_r, const char **error_r);

/* Writes the header of a message into out. */
void ipc_header_write(unsigned char out[IPC_HEADER_SIZE], uint32_t type, uint32_t len, uint64_t id);

/* Sends one message with nfds descriptors (the sender keeps its copies). 0, or -1 with errno
 * (EMSGSIZE when the payload or the descriptors are over the limits). */
int ipc_send(int sock, uint32_t type, uint64_t id, const void *payload, size_t len, const int *fds, size_t nfds);

/* Receives one record into buf (IPC_RECORD_MAX octets) and the descriptors that came with it into
 * fds_r (IPC_FDS_MAX entries; *nfds_r set; all close-on-exec). Returns the record's length, 0 when
 * the other end has closed, -1 with errno (EAGAIN on a non-blocking socket with nothing to read;
 * EMSGSIZE for a record or descriptor list cut short, whose descriptors are then closed). */
ssize_t ipc_recv(int sock, unsigned char *buf, int *fds_r, size_t *nfds_r);

/* ipc_recv, then ipc_msg_parse: 1 with *m_r (pointing into buf) and the descriptors, 0 when the
 * other end has closed, -1 with errno (EAGAIN, or EBADMSG for a record that is not a message,
 * with the sentence in *error_r and its descriptors closed). */
int ipc_recv_msg(int sock, unsigned char *buf, struct ipc_msg *m_r, int *fds_r, size_t *nfds_r, const char **error_r);

/* Closes fds[0..n). */
void ipc_fds_close(const int *fds, size_t n);

#endif

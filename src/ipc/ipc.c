/* ipc.c — one message per SOCK_SEQPACKET record, descriptors by SCM_RIGHTS (ipc.h). */
#include "ipc/ipc.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

int ipc_msg_parse(const unsigned char *rec, size_t n, struct ipc_msg *m_r, const char **error_r)
{
	if (n < IPC_HEADER_SIZE) {
		*error_r = "record shorter than the message header";
		return -1;
	}
	uint32_t len = le32(rec + 4);
	if (len > IPC_PAYLOAD_MAX) {
		*error_r = "payload length over the limit";
		return -1;
	}
	if ((size_t)len != n - IPC_HEADER_SIZE) {
		*error_r = "payload length is not the record's";
		return -1;
	}
	m_r->type = le32(rec);
	m_r->len = len;
	m_r->id = (uint64_t)le32(rec + 8) | (uint64_t)le32(rec + 12) << 32;
	m_r->payload = rec + IPC_HEADER_SIZE;
	return 0;
}

void ipc_header_write(unsigned char out[IPC_HEADER_SIZE], uint32_t type, uint32_t len, uint64_t id)
{
	put_le32(out, type);
	put_le32(out + 4, len);
	put_le32(out + 8, (uint32_t)id);
	put_le32(out + 12, (uint32_t)(id >> 32));
}

int ipc_send(int sock, uint32_t type, uint64_t id, const void *payload, size_t len, const int *fds, size_t nfds)
{
	if (len > IPC_PAYLOAD_MAX || nfds > IPC_FDS_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	unsigned char header[IPC_HEADER_SIZE];
	ipc_header_write(header, type, (uint32_t)len, id);
	struct iovec iov[2] = {{header, sizeof(header)}, {(void *)payload, len}};
	union {
		char buf[CMSG_SPACE(sizeof(int) * IPC_FDS_MAX)];
		struct cmsghdr align;
	} control;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
	if (nfds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	ssize_t w;
	do
		w = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w < 0 ? -1 : 0;
}

int ipc_recv_msg(int sock, unsigned char *buf, struct ipc_msg *m_r, int *fds_r, size_t *nfds_r, const char **error_r)
{
	ssize_t n = ipc_recv(sock, buf, fds_r, nfds_r);
	if (n <= 0) {
		*error_r = n == 0 ? "the other end closed the connection" : strerror(errno);
		return (int)n;
	}
	if (ipc_msg_parse(buf, (size_t)n, m_r, error_r) != 0) {
		ipc_fds_close(fds_r, *nfds_r);
		*nfds_r = 0;
		errno = EBADMSG;
		return -1;
	}
	return 1;
}

void ipc_fds_close(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

ssize_t ipc_recv(int sock, unsigned char *buf, int *fds_r, size_t *nfds_r)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * IPC_FDS_MAX)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {buf, IPC_RECORD_MAX};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	*nfds_r = 0;
	ssize_t r;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds_r < IPC_FDS_MAX)
				fds_r[(*nfds_r)++] = fd;
			else
				close(fd); /* cannot happen with MSG_CTRUNC unset; never leaked either way */
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		ipc_fds_close(fds_r, *nfds_r);
		*nfds_r = 0;
		errno = EMSGSIZE;
		return -1;
	}
	return r;
}

/* fuzz_ipc.c — libFuzzer harness for what the worker reads from its parent: one record framed by
 * ipc_msg_parse (src/ipc/ipc.c) and, inside it, the listener list parent_sockets_parse reads
 * (src/server/parent_msg.c). The first input octet says how many descriptors came with it (up to
 * IPC_FDS_MAX). A parsed list names exactly that many sockets, each with a known role, a printable
 * address and the descriptor at its position; formatting it again gives the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"
#include "server/parent_msg.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t nfds = data[0] % (IPC_FDS_MAX + 1);
	const unsigned char *rec = data + 1;
	size_t n = size - 1;
	struct ipc_msg m;
	const char *err = NULL;
	if (ipc_msg_parse(rec, n, &m, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		return 0;
	}
	FUZZ_CHECK(m.len == n - IPC_HEADER_SIZE && m.len <= IPC_PAYLOAD_MAX && m.payload == rec + IPC_HEADER_SIZE);
	int fds[IPC_FDS_MAX];
	for (size_t i = 0; i < IPC_FDS_MAX; i++)
		fds[i] = 100 + (int)i;
	struct parent_socket socks[IPC_FDS_MAX];
	if (parent_sockets_parse(m.payload, m.len, fds, nfds, socks, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		return 0;
	}
	for (size_t i = 0; i < nfds; i++) {
		FUZZ_CHECK(socks[i].role >= 0 && socks[i].role < CONF_LISTEN_COUNT);
		FUZZ_CHECK(socks[i].fd == fds[i] && socks[i].addr[0] != '\0');
		for (const char *a = socks[i].addr; *a != '\0'; a++)
			FUZZ_CHECK(*a > ' ' && *a <= '~');
	}
	char *again = malloc(IPC_PAYLOAD_MAX + 1);
	int len = parent_sockets_format(socks, nfds, again, IPC_PAYLOAD_MAX + 1);
	FUZZ_CHECK(len >= 0 && (size_t)len == m.len && memcmp(again, m.payload, m.len) == 0);
	free(again);
	return 0;
}

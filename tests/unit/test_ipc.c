/* test_ipc.c — the messages between mailwerk's processes: framing (ipc.c) over a real
 * SOCK_SEQPACKET socketpair with descriptors attached, and the parent's listener list
 * (parent_msg.c), each with hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipc/ipc.h"
#include "server/parent_msg.h"
#include "test_util.h"

static void test_parse_round_trip(void **state)
{
	unsigned char rec[IPC_HEADER_SIZE + 3];
	ipc_header_write(rec, 7, 3, 0x0102030405060708ULL);
	memcpy(rec + IPC_HEADER_SIZE, "abc", 3);
	unsigned char *heap = (unsigned char *)test_dup((const char *)rec, sizeof(rec));
	struct ipc_msg m;
	const char *err = NULL;
	assert_int_equal(ipc_msg_parse(heap, sizeof(rec), &m, &err), 0);
	assert_int_equal(m.type, 7);
	assert_int_equal(m.len, 3);
	assert_true(m.id == 0x0102030405060708ULL);
	assert_memory_equal(m.payload, "abc", 3);
	/* little-endian on the wire, whatever the host */
	assert_int_equal(rec[0], 7);
	assert_int_equal(rec[8], 0x08);
	assert_int_equal(rec[15], 0x01);
	free(heap);
}

static void test_parse_hostile(void **state)
{
	unsigned char rec[IPC_HEADER_SIZE + 8];
	struct ipc_msg m;
	const char *err = NULL;
	/* every length shorter than a header */
	ipc_header_write(rec, 1, 0, 0);
	for (size_t n = 0; n < IPC_HEADER_SIZE; n++) {
		unsigned char *heap = (unsigned char *)test_dup((const char *)rec, n);
		assert_int_equal(ipc_msg_parse(heap, n, &m, &err), -1);
		free(heap);
	}
	/* a length that claims more, or less, than the record holds */
	ipc_header_write(rec, 1, 9, 0);
	assert_int_equal(ipc_msg_parse(rec, sizeof(rec), &m, &err), -1);
	assert_non_null(strstr(err, "not the record's"));
	ipc_header_write(rec, 1, 7, 0);
	assert_int_equal(ipc_msg_parse(rec, sizeof(rec), &m, &err), -1);
	/* a length over the limit, even one that would wrap a 32-bit sum */
	ipc_header_write(rec, 1, 0xffffffffu, 0);
	assert_int_equal(ipc_msg_parse(rec, sizeof(rec), &m, &err), -1);
	assert_non_null(strstr(err, "over the limit"));
	ipc_header_write(rec, 1, IPC_PAYLOAD_MAX + 1, 0);
	assert_int_equal(ipc_msg_parse(rec, sizeof(rec), &m, &err), -1);
	/* an empty payload is a message */
	ipc_header_write(rec, 3, 0, 0);
	assert_int_equal(ipc_msg_parse(rec, IPC_HEADER_SIZE, &m, &err), 0);
	assert_int_equal(m.len, 0);
}

static void test_send_recv_with_descriptors(void **state)
{
	int sv[2], pipefd[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe(pipefd), 0);
	int fds[2] = {pipefd[0], pipefd[1]};
	assert_int_equal(ipc_send(sv[0], 2, 42, "hello", 5, fds, 2), 0);
	assert_int_equal(ipc_send(sv[0], 3, 43, NULL, 0, NULL, 0), 0);
	unsigned char *buf = malloc(IPC_RECORD_MAX);
	int got[IPC_FDS_MAX];
	size_t n = 99;
	ssize_t r = ipc_recv(sv[1], buf, got, &n);
	assert_int_equal(r, IPC_HEADER_SIZE + 5);
	assert_int_equal(n, 2);
	struct ipc_msg m;
	const char *err;
	assert_int_equal(ipc_msg_parse(buf, (size_t)r, &m, &err), 0);
	assert_int_equal(m.type, 2);
	assert_true(m.id == 42);
	assert_memory_equal(m.payload, "hello", 5);
	/* the received descriptors are the pipe's ends, close-on-exec */
	assert_int_equal(write(got[1], "x", 1), 1);
	char c = 0;
	assert_int_equal(read(got[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	assert_true(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	ipc_fds_close(got, n);
	/* records stay apart: the second message is not run into the first */
	r = ipc_recv(sv[1], buf, got, &n);
	assert_int_equal(r, IPC_HEADER_SIZE);
	assert_int_equal(n, 0);
	/* over the limits: refused before anything is sent */
	int many[IPC_FDS_MAX + 1];
	for (int i = 0; i <= IPC_FDS_MAX; i++)
		many[i] = pipefd[0];
	assert_int_equal(ipc_send(sv[0], 1, 0, NULL, 0, many, IPC_FDS_MAX + 1), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(ipc_send(sv[0], 1, 0, buf, IPC_PAYLOAD_MAX + 1, NULL, 0), -1);
	/* a record longer than IPC_RECORD_MAX, sent around ipc_send: cut short, refused */
	char *big = calloc(1, IPC_RECORD_MAX + 10);
	assert_int_equal(send(sv[0], big, IPC_RECORD_MAX + 10, 0), IPC_RECORD_MAX + 10);
	assert_int_equal(ipc_recv(sv[1], buf, got, &n), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(n, 0);
	free(big);
	/* the other end closed */
	close(sv[0]);
	assert_int_equal(ipc_recv(sv[1], buf, got, &n), 0);
	close(sv[1]);
	close(pipefd[0]);
	close(pipefd[1]);
	free(buf);
}

static void test_sockets_round_trip(void **state)
{
	struct parent_socket in[2] = {
		{.role = CONF_LISTEN_SMTP, .addr = "127.0.0.1:25", .fd = 10},
		{.role = CONF_LISTEN_HTTPS, .addr = "[::1]:443", .fd = 11},
	};
	char text[256];
	int len = parent_sockets_format(in, 2, text, sizeof(text));
	assert_true(len > 0);
	assert_string_equal(text, "smtp 127.0.0.1:25\nhttps [::1]:443\n");
	int fds[2] = {20, 21};
	struct parent_socket out[2];
	const char *err = NULL;
	char *heap = test_dup(text, (size_t)len);
	assert_int_equal(parent_sockets_parse((const unsigned char *)heap, (size_t)len, fds, 2, out, &err), 0);
	free(heap);
	assert_int_equal(out[0].role, CONF_LISTEN_SMTP);
	assert_string_equal(out[0].addr, "127.0.0.1:25");
	assert_int_equal(out[0].fd, 20);
	assert_int_equal(out[1].role, CONF_LISTEN_HTTPS);
	assert_string_equal(out[1].addr, "[::1]:443");
	assert_int_equal(out[1].fd, 21);
	/* nothing bound, nothing said */
	assert_int_equal(parent_sockets_format(in, 0, text, sizeof(text)), 0);
	assert_int_equal(parent_sockets_parse((const unsigned char *)"", 0, fds, 0, out, &err), 0);
	/* too small an output */
	assert_int_equal(parent_sockets_format(in, 2, text, 10), -1);
}

static void test_sockets_hostile(void **state)
{
	static const struct {
		const char *text;
		size_t nfds;
		const char *error;
	} cases[] = {
		{"smtp 127.0.0.1:25", 1, "without its newline"},
		{"smtp 127.0.0.1:25\n", 0, "more listener lines"},
		{"smtp 127.0.0.1:25\n", 2, "fewer listener lines"},
		{"", 1, "fewer listener lines"},
		{"smtp127.0.0.1:25\n", 1, "without a space"},
		{"\n", 1, "without a space"},
		{"imap 127.0.0.1:143\n", 1, "unknown listener role"},
		{"SMTP 127.0.0.1:25\n", 1, "unknown listener role"},
		{" 127.0.0.1:25\n", 1, "unknown listener role"},
		{"smtp \n", 1, "empty or too long"},
		{"smtp 127.0.0.1:25 extra\n", 1, "not printable ASCII"},
		{"smtp 127.0.0.1:\t25\n", 1, "not printable ASCII"},
		{"smtp 127.0.0.1:25\r\n", 1, "not printable ASCII"},
		{"smtp 127.\xc3\xa9:25\n", 1, "not printable ASCII"},
		{"smtp 1234567890123456789012345678901234567890123456789012345678901234\n", 1, "empty or too long"},
	};
	int fds[2] = {5, 6};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parent_socket out[2];
		const char *err = NULL;
		size_t len = strlen(cases[i].text);
		char *heap = test_dup(cases[i].text, len);
		int rc = parent_sockets_parse((const unsigned char *)heap, len, fds, cases[i].nfds, out, &err);
		free(heap);
		if (rc != -1 || err == NULL || strstr(err, cases[i].error) == NULL) {
			char esc[256];
			fail_msg("case %zu \"%s\": rc %d, error \"%s\"", i, test_escape(cases[i].text, len, esc, sizeof(esc)),
				 rc, err ? err : "(none)");
		}
	}
	/* a NUL inside the text is refused, never cut at */
	struct parent_socket out[1];
	const char *err = NULL;
	assert_int_equal(parent_sockets_parse((const unsigned char *)"smtp 1\0002\n", 9, fds, 1, out, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_round_trip),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_send_recv_with_descriptors),
		cmocka_unit_test(test_sockets_round_trip),
		cmocka_unit_test(test_sockets_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

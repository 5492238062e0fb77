/* test_line_session.c — the line-session skeleton every line protocol shares, driven over a
 * socketpair by a small test protocol: over-long lines, bare CR and LF, EOF mid-line, pipelined
 * lines answered in turn, a close while a step is pending, bytes pipelined after STARTTLS, and the
 * deadlines, through a TLS handshake too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/line_session.h"

#define TEST_LINE_MAX 64

/* The test protocol: answers "ok LINE" to each line, "go" to STARTTLS, and waits on WAIT. */
struct test_proto {
	struct line_session ls;
	struct test_world *w;
	char seen[1 << 18];   /* every event, in order, one per line of text */
};

struct test_world {
	struct event_base *base;
	SSL_CTX *tls;
	int client;                 /* the peer's end of the socketpair */
	struct test_proto *session; /* the registry: NULL once the session is freed */
	unsigned destroyed;
	char closed_reason[64];
	bool tls_started;
};

static void seen(struct test_proto *p, const char *event, const char *arg)
{
	size_t n = strlen(p->seen);
	snprintf(p->seen + n, sizeof(p->seen) - n, "%s%s%s\n", event, arg[0] ? " " : "", arg);
}

static bool proto_step(struct line_session *ls)
{
	struct test_proto *p = LINE_SESSION_OF(ls, struct test_proto);
	char line[TEST_LINE_MAX];
	size_t len;

	switch (line_session_read_line(ls, line, sizeof(line), &len)) {
	case LINE_READ_MORE:
		return false;
	case LINE_READ_TOO_LONG:
		seen(p, "too_long", "");
		evbuffer_add_printf(line_session_out(ls), "err too long\r\n");
		return true;
	case LINE_READ_DROPPED:
		seen(p, "dropped", "");
		return true;
	case LINE_READ_BARE_EOL:
		seen(p, "bare_eol", "");
		evbuffer_add_printf(line_session_out(ls), "err bare\r\n");
		line_session_close(ls, "bare_eol");
		return true;
	case LINE_READ_OK:
		break;
	}
	seen(p, "line", line);
	if (strcmp(line, "STARTTLS") == 0) {
		evbuffer_add_printf(line_session_out(ls), "go\r\n");
		line_session_starttls(ls, p->w->tls);
	} else if (strcmp(line, "WAIT") == 0) {
		line_session_wait(ls);
	} else {
		evbuffer_add_printf(line_session_out(ls), "ok %s\r\n", line);
	}
	return true;
}

static void proto_timeout(struct line_session *ls, enum line_timeout why)
{
	seen(LINE_SESSION_OF(ls, struct test_proto), "timeout", line_timeout_str(why));
	line_session_close(ls, "timeout");
}

static void proto_closed(struct line_session *ls, const char *reason)
{
	struct test_proto *p = LINE_SESSION_OF(ls, struct test_proto);
	snprintf(p->w->closed_reason, sizeof(p->w->closed_reason), "%s", reason);
}

static void proto_tls_started(struct line_session *ls)
{
	LINE_SESSION_OF(ls, struct test_proto)->w->tls_started = true;
}

static void proto_destroy(struct line_session *ls)
{
	struct test_proto *p = LINE_SESSION_OF(ls, struct test_proto);
	p->w->destroyed++;
	p->w->session = NULL;
	line_session_deinit(ls);
	free(p);
}

static const struct line_session_ops test_ops = {
	.step = proto_step,
	.timeout = proto_timeout,
	.closed = proto_closed,
	.tls_started = proto_tls_started,
	.destroy = proto_destroy,
};

static int test_setup(void **state)
{
	struct test_world *w = calloc(1, sizeof(*w));
	int sv[2];

	assert_non_null(w);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	w->base = event_base_new();
	w->tls = SSL_CTX_new(TLS_server_method());
	assert_non_null(w->base);
	assert_non_null(w->tls);
	w->client = sv[1];
	w->session = calloc(1, sizeof(*w->session));
	assert_non_null(w->session);
	w->session->w = w;
	assert_int_equal(line_session_start(&w->session->ls, &test_ops, w->base, w->tls, sv[0], false, 30, 0), 0);
	*state = w;
	return 0;
}

static int test_teardown(void **state)
{
	struct test_world *w = *state;
	if (w->session != NULL)
		proto_destroy(&w->session->ls);
	close(w->client);
	SSL_CTX_free(w->tls);
	event_base_free(w->base);
	free(w);
	return 0;
}

/* Runs the loop until it has nothing more to do right now (bounded). */
static void run(struct test_world *w)
{
	for (int i = 0; i < 50; i++) {
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

/* Runs the loop for about ms milliseconds of wall time. */
static void run_for(struct test_world *w, int ms)
{
	for (int i = 0; i < ms; i += 10) {
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		usleep(10000);
	}
}

static void client_send(struct test_world *w, const char *text, size_t len)
{
	assert_int_equal(write(w->client, text, len), (ssize_t)len);
}

/* What the client has been sent so far. */
static const char *client_read(struct test_world *w)
{
	static char buf[4096];
	ssize_t n = recv(w->client, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static const char *events(struct test_world *w)
{
	return w->session != NULL ? w->session->seen : "(freed)";
}

static void test_lines_pipelined_in_turn(void **state)
{
	struct test_world *w = *state;
	client_send(w, "A\r\nB\r\nC\r\n", 9);
	run(w);
	assert_string_equal(events(w), "line A\nline B\nline C\n");
	assert_string_equal(client_read(w), "ok A\r\nok B\r\nok C\r\n");
}

/* An over-long line is answered once, its rest is dropped unread (never read as a command), and
 * the next line is read normally. */
static void test_over_long_line(void **state)
{
	struct test_world *w = *state;
	char buf[400];
	memset(buf, 'x', 300);
	memcpy(buf + 300, "NOOP\r\nNEXT\r\n", 12);
	client_send(w, buf, 312);
	run(w);
	assert_string_equal(events(w), "too_long\ndropped\nline NEXT\n");
	assert_string_equal(client_read(w), "err too long\r\nok NEXT\r\n");
}

/* The rest of an over-long line arriving in pieces, with a CR at the end of a piece. */
static void test_over_long_line_in_pieces(void **state)
{
	struct test_world *w = *state;
	char buf[200];
	memset(buf, 'y', sizeof(buf));
	buf[sizeof(buf) - 1] = '\r';
	client_send(w, buf, sizeof(buf));
	run(w);
	assert_string_equal(events(w), "too_long\n");
	client_send(w, "\nOK\r\n", 5);
	run(w);
	assert_string_equal(events(w), "too_long\ndropped\nline OK\n");
}

static void test_bare_lf_closes(void **state)
{
	struct test_world *w = *state;
	client_send(w, "A\nB\r\n", 5);
	run(w);
	assert_int_equal(w->destroyed, 1);
	assert_string_equal(w->closed_reason, "bare_eol");
	assert_string_equal(client_read(w), "err bare\r\n");
}

static void test_bare_cr_closes(void **state)
{
	struct test_world *w = *state;
	client_send(w, "A\rB\r\n", 5);
	run(w);
	assert_int_equal(w->destroyed, 1);
	assert_string_equal(w->closed_reason, "bare_eol");
}

/* A bare CR inside the dropped rest of an over-long line is caught too. */
static void test_bare_cr_in_dropped_rest(void **state)
{
	struct test_world *w = *state;
	char buf[200];
	memset(buf, 'z', sizeof(buf));
	buf[150] = '\r';
	client_send(w, buf, sizeof(buf));
	run(w);
	assert_int_equal(w->destroyed, 1);
	assert_string_equal(w->closed_reason, "bare_eol");
}

/* EOF in the middle of a line: the part is never taken for a line; the session closes. */
static void test_eof_mid_line(void **state)
{
	struct test_world *w = *state;
	client_send(w, "A\r\nPART", 7);
	shutdown(w->client, SHUT_WR);
	run(w);
	assert_int_equal(w->destroyed, 1);
	assert_string_equal(w->closed_reason, "client_closed");
	assert_string_equal(client_read(w), "ok A\r\n"); /* answered before the close */
}

/* A close while a step is pending: the session is freed at a safe point, exactly once; the step's
 * result then finds no session (the registry) and touches nothing; the pipelined line is never
 * read. */
static void test_close_while_waiting(void **state)
{
	struct test_world *w = *state;
	client_send(w, "WAIT\r\nX\r\n", 9);
	run(w);
	assert_string_equal(events(w), "line WAIT\n");
	assert_true(w->session->ls.waiting);
	line_session_close(&w->session->ls, "shutdown");
	run(w);
	assert_int_equal(w->destroyed, 1);
	assert_null(w->session); /* what the step's callback looks up */
}

/* EOF while waiting: the client's lines are answered once the step ends, then the session closes. */
static void test_eof_while_waiting(void **state)
{
	struct test_world *w = *state;
	client_send(w, "WAIT\r\nX\r\n", 9);
	shutdown(w->client, SHUT_WR);
	run(w);
	assert_int_equal(w->destroyed, 0);
	line_session_resume(&w->session->ls);
	assert_string_equal(events(w), "line WAIT\nline X\n");
	run(w);
	assert_int_equal(w->destroyed, 1);
	assert_string_equal(w->closed_reason, "client_closed");
	assert_string_equal(client_read(w), "ok X\r\n");
}

/* RFC 3207 §4.2 / CVE-2011-0411: what follows STARTTLS in the same packet is dropped, never read as
 * a command; the TLS stream takes over once the reply has left. */
static void test_starttls_drops_pipelined(void **state)
{
	struct test_world *w = *state;
	client_send(w, "STARTTLS\r\nINJECTED\r\n", 20);
	run(w);
	assert_string_equal(events(w), "line STARTTLS\n");
	assert_string_equal(client_read(w), "go\r\n");
	assert_true(w->tls_started);
	assert_true(w->session->ls.tls);
	assert_false(w->session->ls.tls_pending);
	assert_false(w->session->ls.waiting);
}

/* A client that never reads: past the high mark nothing more is read, so its output (our memory)
 * stays bounded; reading resumes once it drains. */
static void test_output_bound(void **state)
{
	struct test_world *w = *state;
	unsigned sent = 0;
	int small = 4096;

	/* small socket buffers, so that what is not read piles up where we can see it */
	assert_int_equal(setsockopt(bufferevent_getfd(w->session->ls.bev), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(setsockopt(w->client, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	/* pipelined lines in chunks, until the sends have blocked many times over (bounded) */
	unsigned blocked = 0;
	while (sent < 20000 && blocked < 100) {
		char chunk[1024];
		size_t n = 0;
		for (unsigned i = 0; i < 64; i++)
			n += (size_t)snprintf(chunk + n, sizeof(chunk) - n, "L%u\r\n", sent + i);
		if (send(w->client, chunk, n, MSG_DONTWAIT) == (ssize_t)n) {
			sent += 64;
			blocked = 0;
		} else {
			blocked++;
		}
		event_base_loop(w->base, EVLOOP_NONBLOCK);
	}
	run(w);
	size_t out = evbuffer_get_length(line_session_out(&w->session->ls));
	assert_true(out > LINE_SESSION_OUTPUT_HIGH / 2); /* the client really does not read */
	assert_true(out <= LINE_SESSION_OUTPUT_HIGH + TEST_LINE_MAX + 8);
	assert_true(sent < 20000); /* and the pressure reached it: its sends would block */

	char buf[65536];
	while (recv(w->client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		run(w); /* it reads: everything it sent is answered in turn */
	assert_true(strstr(w->session->seen, "line L0\n") != NULL);
}


/* A line trickled an octet at a time meets the line deadline, measured from when the session was
 * ready for it: every octet resets the idle timer, never the deadline. */
static void test_line_deadline_trickle(void **state)
{
	struct test_world *w = *state;
	line_session_set_line_timeout(&w->session->ls, 1);
	client_send(w, "A\r\n", 3); /* a whole line restarts the deadline */
	run(w);
	int sent = 0;
	while (sent < 15 && w->closed_reason[0] == '\0') {
		client_send(w, "x", 1);
		sent++;
		run_for(w, 200);
	}
	/* the idle timer is 30 s: only the 1 s deadline can have fired, after about 5 octets */
	assert_string_equal(w->closed_reason, "timeout");
	assert_true(sent >= 3 && sent <= 10);
}

/* A TLS handshake trickled an octet at a time (the start of a ClientHello record) restarts the idle
 * timer with each octet but meets the line deadline, which runs through the handshake: the session
 * is aborted mid-handshake, with nothing said and no call to the protocol's timeout. */
static void test_handshake_trickle_meets_the_line_deadline(void **state)
{
	struct test_world *w = *state;
	static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00\x00\x00";
	line_session_set_line_timeout(&w->session->ls, 1);
	client_send(w, "STARTTLS\r\n", 10);
	run(w);
	assert_string_equal(client_read(w), "go\r\n");
	assert_true(w->session->ls.tls);
	int sent = 0;
	while (sent < (int)sizeof(hello) - 1 && w->destroyed == 0) {
		client_send(w, hello + sent, 1);
		sent++;
		run_for(w, 200);
	}
	assert_int_equal(w->destroyed, 1);
	assert_string_equal(w->closed_reason, "tls_timeout");
	assert_true(sent >= 3 && sent <= 10);
}

/* The line deadline stands still while a step waits; the session deadline that passes meanwhile
 * is kept until the step ends. */
static void test_deadlines_wait_for_a_step(void **state)
{
	struct test_world *w = *state;
	line_session_set_line_timeout(&w->session->ls, 1);
	line_session_set_lifetime(&w->session->ls, 1);
	client_send(w, "WAIT\r\n", 6);
	run_for(w, 1500);
	assert_string_equal(events(w), "line WAIT\n");
	assert_true(w->session->ls.expired);
	line_session_resume(&w->session->ls);
	assert_string_equal(events(w), "line WAIT\ntimeout session\n");
}

/* Lines answered in time each get their own deadline. */
static void test_line_deadline_per_line(void **state)
{
	struct test_world *w = *state;
	line_session_set_line_timeout(&w->session->ls, 1);
	for (int i = 0; i < 3; i++) {
		run_for(w, 600);
		client_send(w, "B\r\n", 3);
	}
	run(w);
	assert_string_equal(events(w), "line B\nline B\nline B\n");
	line_session_set_line_timeout(&w->session->ls, 0); /* off: nothing fires */
	run_for(w, 1200);
	assert_string_equal(events(w), "line B\nline B\nline B\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines_pipelined_in_turn, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_over_long_line, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_over_long_line_in_pieces, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_bare_lf_closes, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_bare_cr_closes, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_bare_cr_in_dropped_rest, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_eof_mid_line, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_close_while_waiting, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_eof_while_waiting, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_starttls_drops_pipelined, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_output_bound, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_line_deadline_trickle, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_handshake_trickle_meets_the_line_deadline, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_deadlines_wait_for_a_step, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_line_deadline_per_line, test_setup, test_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

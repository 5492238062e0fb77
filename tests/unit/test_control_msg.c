/* test_control_msg.c — the control socket's requests and replies (server/control_msg.c), with
 * hostile input: every record is a heap copy of exactly its length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/control_msg.h"
#include "test_util.h"

#define ID "01HZX3K9QF7M2N4P6R8T"

/* A record of type/id with payload p[0..len), heap-allocated at its exact size. */
static unsigned char *record(uint32_t type, uint64_t id, const void *p, size_t len, size_t *n_r)
{
	unsigned char *rec = malloc(IPC_HEADER_SIZE + len + 1);
	assert_non_null(rec);
	ipc_header_write(rec, type, (uint32_t)len, id);
	memcpy(rec + IPC_HEADER_SIZE, p, len);
	*n_r = IPC_HEADER_SIZE + len;
	unsigned char *exact = (unsigned char *)test_dup((const char *)rec, *n_r);
	free(rec);
	return exact;
}

static int parse(uint32_t type, uint64_t id, const char *payload, size_t len, struct control_request *r,
		 const char **err)
{
	size_t n;
	unsigned char *rec = record(type, id, payload, len, &n);
	int rc = control_request_parse(rec, n, r, err);
	free(rec);
	return rc;
}

static void test_requests_accepted(void **state)
{
	struct control_request r;
	const char *err = NULL;
	assert_int_equal(parse(CONTROL_REQ_STATUS, 7, "", 0, &r, &err), 0);
	assert_int_equal(r.type, CONTROL_REQ_STATUS);
	assert_true(r.id == 7);
	assert_int_equal(parse(CONTROL_REQ_HOLD, 1, ID, 20, &r, &err), 0);
	assert_string_equal(r.queue_id, ID);
	assert_false(r.all);
	assert_int_equal(parse(CONTROL_REQ_RELEASE, UINT64_MAX, "*", 1, &r, &err), 0);
	assert_true(r.all);
	assert_string_equal(r.queue_id, "");
	assert_int_equal(parse(CONTROL_REQ_BOUNCE, 2, ID, 20, &r, &err), 0);
	assert_int_equal(r.type, CONTROL_REQ_BOUNCE);
	assert_int_equal(parse(CONTROL_REQ_ACME_RENEW, 3, "", 0, &r, &err), 0);
	assert_int_equal(r.type, CONTROL_REQ_ACME_RENEW);
	assert_int_equal(parse(CONTROL_REQ_ACME_REVOKE, 4, "", 0, &r, &err), 0);
	/* the acme requests take no payload */
	assert_int_equal(parse(CONTROL_REQ_ACME_RENEW, 5, "*", 1, &r, &err), -1);
	assert_int_equal(parse(CONTROL_REQ_ACME_REVOKE, 6, ID, 20, &r, &err), -1);
	assert_string_equal(control_msg_type_str(CONTROL_REQ_ACME_REVOKE), "acme_revoke");
}

static void test_round_trip(void **state)
{
	struct control_request in = {.type = CONTROL_REQ_HOLD, .id = 42}, out;
	snprintf(in.queue_id, sizeof(in.queue_id), "%s", ID);
	char payload[CONTROL_REQUEST_PAYLOAD_MAX];
	size_t len = control_request_payload(&in, payload);
	const char *err;
	assert_int_equal(parse(in.type, in.id, payload, len, &out, &err), 0);
	assert_string_equal(out.queue_id, ID);
	in.all = true;
	in.queue_id[0] = '\0';
	len = control_request_payload(&in, payload);
	assert_int_equal(parse(in.type, in.id, payload, len, &out, &err), 0);
	assert_true(out.all);
	in.type = CONTROL_REQ_STATUS;
	assert_int_equal(control_request_payload(&in, payload), 0);
}

static const struct {
	uint32_t type;
	uint64_t id;
	const char *payload;
	size_t len;
	const char *error; /* a part of the sentence */
} hostile[] = {
	{CONTROL_REQ_STATUS, 0, "", 0, "request id"},
	{CONTROL_REQ_STATUS, 1, "x", 1, "no payload"},
	{0, 1, "", 0, "unknown request type"},
	{CONTROL_REPLY_OK, 1, "{}", 2, "unknown request type"},
	{0xffffffffu, 1, "", 0, "unknown request type"},
	{CONTROL_REQ_HOLD, 1, "", 0, "neither"},
	{CONTROL_REQ_HOLD, 1, "**", 2, "neither"},
	{CONTROL_REQ_HOLD, 1, ID "X", 21, "neither"},
	{CONTROL_REQ_HOLD, 1, "01HZX3K9QF7M2N4P6R8", 19, "neither"},
	{CONTROL_REQ_HOLD, 1, "01hzx3k9qf7m2n4p6r8t", 20, "neither"},  /* lower case is not how ids are written */
	{CONTROL_REQ_HOLD, 1, "01HZX3K9QF7M2N4P6R8I", 20, "neither"},  /* I is not Crockford */
	{CONTROL_REQ_HOLD, 1, "01HZX3K9QF\0M2N4P6R8T", 20, "neither"}, /* a NUL inside */
	{CONTROL_REQ_RELEASE, 1, "../../etc/passwd....", 20, "neither"},
	{CONTROL_REQ_BOUNCE, 1, "*", 1, "not every message"},
	{CONTROL_REQ_BOUNCE, 1, "", 0, "not a queue id"},
};

static void test_requests_hostile(void **state)
{
	char esc[128];
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct control_request r;
		const char *err = NULL;
		int rc = parse(hostile[i].type, hostile[i].id, hostile[i].payload, hostile[i].len, &r, &err);
		if (rc != -1 || err == NULL || strstr(err, hostile[i].error) == NULL)
			fail_msg("case %zu (%s): rc %d, error %s", i, test_escape(hostile[i].payload, hostile[i].len, esc, sizeof(esc)),
				 rc, err != NULL ? err : "(none)");
	}
}

static void test_framing_hostile(void **state)
{
	struct control_request r;
	const char *err;
	/* a record shorter than a header, at every length */
	unsigned char head[IPC_HEADER_SIZE];
	ipc_header_write(head, CONTROL_REQ_STATUS, 0, 1);
	for (size_t n = 0; n < IPC_HEADER_SIZE; n++) {
		unsigned char *rec = (unsigned char *)test_dup((const char *)head, n);
		assert_int_equal(control_request_parse(rec, n, &r, &err), -1);
		free(rec);
	}
	/* half a record: the header promises more than came */
	size_t n;
	unsigned char *rec = record(CONTROL_REQ_HOLD, 1, ID, 20, &n);
	assert_int_equal(control_request_parse(rec, n - 10, &r, &err), -1);
	assert_non_null(strstr(err, "not the record's"));
	free(rec);
	/* over the request limit, however well framed */
	char big[CONTROL_REQUEST_PAYLOAD_MAX + 1];
	memset(big, 'A', sizeof(big));
	assert_int_equal(parse(CONTROL_REQ_HOLD, 1, big, sizeof(big), &r, &err), -1);
	assert_non_null(strstr(err, "size limit"));
	/* a length field that would wrap */
	unsigned char wrap[IPC_HEADER_SIZE + 4];
	ipc_header_write(wrap, CONTROL_REQ_HOLD, 0xfffffff0u, 1);
	assert_int_equal(control_request_parse(wrap, sizeof(wrap), &r, &err), -1);
}

static int reply(uint32_t type, uint64_t id, const char *body, size_t len, uint64_t want, struct control_reply *r,
		 const char **err)
{
	size_t n;
	unsigned char *rec = record(type, id, body, len, &n);
	int rc = control_reply_parse(rec, n, want, r, err);
	free(rec);
	return rc;
}

static void test_replies(void **state)
{
	struct control_reply r;
	const char *err;
	assert_int_equal(reply(CONTROL_REPLY_OK, 9, "{\"a\":1}", 7, 9, &r, &err), 0);
	assert_int_equal(r.type, CONTROL_REPLY_OK);
	assert_int_equal(r.len, 7);
	assert_int_equal(reply(CONTROL_REPLY_ERROR, 9, "no message X in the queue", 25, 9, &r, &err), 0);
	assert_int_equal(r.type, CONTROL_REPLY_ERROR);
	/* another request's reply, a request type, an empty body */
	assert_int_equal(reply(CONTROL_REPLY_OK, 8, "{}", 2, 9, &r, &err), -1);
	assert_non_null(strstr(err, "another request"));
	assert_int_equal(reply(CONTROL_REQ_STATUS, 9, "{}", 2, 9, &r, &err), -1);
	assert_int_equal(reply(CONTROL_REPLY_OK, 9, "", 0, 9, &r, &err), -1);
	/* an error sentence that would write to the terminal */
	assert_int_equal(reply(CONTROL_REPLY_ERROR, 9, "bad\x1b[2Jthing", 12, 9, &r, &err), -1);
	assert_int_equal(reply(CONTROL_REPLY_ERROR, 9, "line\nbreak", 10, 9, &r, &err), -1);
	char longer[CONTROL_ERROR_MAX + 1];
	memset(longer, 'e', sizeof(longer));
	assert_int_equal(reply(CONTROL_REPLY_ERROR, 9, longer, sizeof(longer), 9, &r, &err), -1);
	assert_int_equal(reply(CONTROL_REPLY_ERROR, 9, longer, sizeof(longer) - 1, 9, &r, &err), 0);
}

static void test_socket_addr(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;
	assert_int_equal(control_socket_addr("/var/lib/mailwerk", &sa, &len), 0);
	assert_string_equal(sa.sun_path, "/var/lib/mailwerk/control.sock");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path) + 1);
	char dir[sizeof(sa.sun_path)];
	memset(dir, 'd', sizeof(dir) - 1);
	dir[sizeof(dir) - 1] = '\0';
	assert_int_equal(control_socket_addr(dir, &sa, &len), -1);
	/* the longest that fits: the path and its NUL fill sun_path */
	dir[sizeof(sa.sun_path) - 1 - strlen("/control.sock")] = '\0';
	assert_int_equal(control_socket_addr(dir, &sa, &len), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_accepted),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_requests_hostile),
		cmocka_unit_test(test_framing_hostile),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_socket_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

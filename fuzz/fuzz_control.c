/* fuzz_control.c — libFuzzer harness for what the worker reads on its control socket and what the
 * CLI reads back (src/server/control_msg.c). The input is one record. A parsed request has a
 * request id, a known type and a target that formats back to exactly the payload it came from; a
 * parsed reply's error sentence is printable. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/control_msg.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static void fuzz_request(const uint8_t *data, size_t size)
{
	struct control_request r;
	const char *err = NULL;
	if (control_request_parse(data, size, &r, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	FUZZ_CHECK(size <= CONTROL_REQUEST_MAX && r.id != 0);
	FUZZ_CHECK(r.type >= CONTROL_REQ_STATUS && r.type <= CONTROL_REQ_ACME_REVOKE);
	FUZZ_CHECK(!(r.all && r.type == CONTROL_REQ_BOUNCE));
	bool bare = r.type == CONTROL_REQ_STATUS || r.type == CONTROL_REQ_ACME_RENEW || r.type == CONTROL_REQ_ACME_REVOKE;
	FUZZ_CHECK(!(bare && (r.all || r.queue_id[0] != '\0')));
	if (!bare && !r.all)
		FUZZ_CHECK(strlen(r.queue_id) == CONTROL_QUEUE_ID_LEN);
	char payload[CONTROL_REQUEST_PAYLOAD_MAX];
	size_t len = control_request_payload(&r, payload);
	FUZZ_CHECK(len == size - IPC_HEADER_SIZE && memcmp(payload, data + IPC_HEADER_SIZE, len) == 0);
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
	struct control_reply r;
	const char *err = NULL;
	uint64_t id = size >= IPC_HEADER_SIZE ? (uint64_t)data[8] : 0; /* sometimes the right one */
	if (control_reply_parse(data, size, id, &r, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	FUZZ_CHECK(r.len > 0 && r.len == size - IPC_HEADER_SIZE && r.id == id);
	if (r.type == CONTROL_REPLY_ERROR)
		for (size_t i = 0; i < r.len; i++)
			FUZZ_CHECK(r.body[i] >= ' ' && r.body[i] <= '~');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_request(data, size);
	fuzz_reply(data, size);
	return 0;
}

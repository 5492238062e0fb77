/* fuzz_upgrade.c — libFuzzer harness for what an upgrade reads (src/server/parent_inherit.c and
 * src/server/parent_msg.c): the first input octet picks the reader, the rest is its input. The
 * hand-over text a new parent finds in its environment: a parsed one has a version, numbers in
 * their ranges, a signer that is not the worker, distinct descriptors, known roles and printable
 * addresses, and formats back to the same text. The drain's deadline and an upgrade's outcome:
 * each formats back to what was read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/parent_inherit.h"
#include "server/parent_msg.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static void fuzz_inherit(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct parent_inherit *in = malloc(sizeof(*in));
	const char *err = NULL;
	if (parent_inherit_parse(text, in, &err) != 0) {
		FUZZ_CHECK(err != NULL);
	} else {
		FUZZ_CHECK(in->seq >= 1 && in->worker >= 2 && in->worker <= PARENT_INHERIT_PID_MAX);
		FUZZ_CHECK(in->signer == 0 || (in->signer >= 2 && in->signer <= PARENT_INHERIT_PID_MAX && in->signer != in->worker));
		FUZZ_CHECK(in->ipc >= 3 && in->nsocks <= IPC_FDS_MAX);
		for (size_t i = 0; i < in->nsocks; i++) {
			FUZZ_CHECK(in->socks[i].fd >= 3 && in->socks[i].fd != in->ipc && in->socks[i].addr[0] != '\0');
			FUZZ_CHECK(in->socks[i].role >= 0 && in->socks[i].role < CONF_LISTEN_COUNT);
			for (size_t j = 0; j < i; j++)
				FUZZ_CHECK(in->socks[j].fd != in->socks[i].fd);
		}
		/* read back as written only when the text has no NUL in it (the environment has none) */
		if (strlen(text) == size) {
			char *again = malloc(PARENT_INHERIT_MAX + 1);
			int len = parent_inherit_format(in, again, PARENT_INHERIT_MAX + 1);
			FUZZ_CHECK(len >= 0 && (size_t)len == size && memcmp(again, text, size) == 0);
			free(again);
		}
	}
	free(in);
	free(text);
}

static void fuzz_messages(int which, const uint8_t *data, size_t size)
{
	const char *err = NULL;
	char again[PARENT_UPGRADE_REASON_MAX + 32];
	if (which == 1) {
		unsigned secs;
		if (parent_drain_parse(data, size, &secs, &err) != 0) {
			FUZZ_CHECK(err != NULL);
			return;
		}
		int len = parent_drain_format(secs, again, sizeof(again));
		FUZZ_CHECK(secs <= PARENT_DRAIN_MAX_SECONDS && len >= 0 && (size_t)len == size && memcmp(again, data, size) == 0);
		return;
	}
	struct parent_upgrade_outcome o;
	if (parent_upgrade_parse(data, size, &o, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	FUZZ_CHECK(o.seq >= 1 && (o.done ? o.reason[0] == '\0' : o.reason[0] != '\0'));
	int len = parent_upgrade_format(&o, again, sizeof(again));
	FUZZ_CHECK(len >= 0 && (size_t)len == size && memcmp(again, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int which = data[0] % 3;
	if (which == 0)
		fuzz_inherit(data + 1, size - 1);
	else
		fuzz_messages(which, data + 1, size - 1);
	return 0;
}

/* fuzz_feedback.c — libFuzzer harness for src/events/feedback.c: the input is read as a returned
 * report (DSN, ARF, or neither) and, from its first line, as a return path; every field that comes
 * out must be NUL-terminated within its buffer and free of control octets, and a return path that
 * parses must be made again by feedback_return_path to the same address (case aside). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events/feedback.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static void field_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size);
	FUZZ_CHECK(n < size);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = malloc(size + 1);
	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	msg[size] = '\0';
	struct feedback *f = malloc(sizeof(*f));
	if (f == NULL) {
		free(msg);
		return 0;
	}
	enum feedback_kind k = feedback_parse(msg, size, f);
	FUZZ_CHECK(k == f->kind && f->rcpt_count <= FEEDBACK_MAX_RCPTS);
	for (size_t i = 0; i < f->rcpt_count; i++) {
		field_ok(f->rcpts[i].final_rcpt, sizeof(f->rcpts[i].final_rcpt));
		field_ok(f->rcpts[i].action, sizeof(f->rcpts[i].action));
		field_ok(f->rcpts[i].status, sizeof(f->rcpts[i].status));
		field_ok(f->rcpts[i].diagnostic, sizeof(f->rcpts[i].diagnostic));
		field_ok(f->rcpts[i].remote_mta, sizeof(f->rcpts[i].remote_mta));
	}
	field_ok(f->feedback_type, sizeof(f->feedback_type));
	field_ok(f->original_mail_from, sizeof(f->original_mail_from));
	field_ok(f->original_rcpt, sizeof(f->original_rcpt));
	field_ok(f->original_message_id, sizeof(f->original_message_id));
	field_ok(f->original_return_path, sizeof(f->original_return_path));

	/* the first line as an address */
	char addr[300];
	size_t n = strcspn(msg, "\r\n");
	if (n < sizeof(addr)) {
		memcpy(addr, msg, n);
		addr[n] = '\0';
		char id[37], domain[256], again[400];
		if (feedback_return_path_parse(addr, "bounces", id, domain, sizeof(domain))) {
			FUZZ_CHECK(strlen(id) == 36);
			FUZZ_CHECK(feedback_return_path(id, "bounces", domain, again, sizeof(again)));
			FUZZ_CHECK(strcasecmp(again, addr) == 0);
		}
	}
	free(f);
	free(msg);
	return 0;
}

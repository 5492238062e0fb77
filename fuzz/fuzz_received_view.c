/* fuzz_received_view.c — libFuzzer harness for src/inbound/received_view.c: the input is a received
 * message. Its view must keep every limit, hold only well-formed UTF-8 without CR or LF in what came
 * from header fields, and give the first attachment's octets back by its id, as many as it said. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inbound/received_view.h"
#include "util/utf8.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* small, so that every limit is within reach of small inputs */
static const struct received_view_limits fuzz_lim = {
	.max_size = 1 << 20,
	.max_parts = 40,
	.max_depth = 6,
	.max_headers = 30,
	.max_text = 2048,
	.max_field = 1024,
};

static void fuzz_utf8(const char *s, bool one_line)
{
	if (s == NULL)
		return;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len((const unsigned char *)s + i, n - i);
		FUZZ_CHECK(k > 0);
		FUZZ_CHECK(!one_line || (s[i] != '\r' && s[i] != '\n'));
		i += k;
	}
}

static void fuzz_check_view(const struct received_view *v)
{
	fuzz_utf8(v->from, true);
	fuzz_utf8(v->subject, true);
	fuzz_utf8(v->message_id, true);
	fuzz_utf8(v->in_reply_to, true);
	fuzz_utf8(v->references, true);
	for (size_t i = 0; i < v->to_count; i++)
		fuzz_utf8(v->to[i], true);
	for (size_t i = 0; i < v->cc_count; i++)
		fuzz_utf8(v->cc[i], true);
	for (size_t i = 0; i < v->reply_to_count; i++)
		fuzz_utf8(v->reply_to[i], true);
	FUZZ_CHECK(v->header_count <= fuzz_lim.max_headers);
	for (size_t i = 0; i < v->header_count; i++) {
		FUZZ_CHECK(v->headers[i].name != NULL && v->headers[i].value != NULL);
		fuzz_utf8(v->headers[i].name, true);
		fuzz_utf8(v->headers[i].value, true);
	}
	fuzz_utf8(v->text, false);
	fuzz_utf8(v->html, false);
	FUZZ_CHECK(v->text == NULL || strlen(v->text) <= fuzz_lim.max_text);
	FUZZ_CHECK(v->html == NULL || strlen(v->html) <= fuzz_lim.max_text);
	FUZZ_CHECK(v->attachment_count < fuzz_lim.max_parts);
	for (size_t i = 0; i < v->attachment_count; i++) {
		const struct received_attachment *a = &v->attachments[i];
		FUZZ_CHECK(strlen(a->id) == RECEIVED_ID_LEN);
		FUZZ_CHECK(a->content_type != NULL && strchr(a->content_type, '/') != NULL);
		fuzz_utf8(a->content_type, true);
		fuzz_utf8(a->filename, true);
		fuzz_utf8(a->content_id, true);
		FUZZ_CHECK(strcmp(a->content_disposition, "inline") == 0 ||
			   strcmp(a->content_disposition, "attachment") == 0);
		FUZZ_CHECK(a->part[0] >= '1' && a->part[0] <= '9');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact copy, so that a read past the end is seen */
	char *raw = malloc(size > 0 ? size : 1);
	if (raw == NULL)
		return 0;
	memcpy(raw, data, size);
	struct received_view v;
	const char *err = NULL;
	enum received_view_error e = received_view_parse(raw, size, &fuzz_lim, &v, &err);
	if (e == RECEIVED_VIEW_OK) {
		FUZZ_CHECK(err == v.limited);
		fuzz_check_view(&v);
		if (v.attachment_count > 0) {
			size_t got_size = 0;
			char *ct = NULL, *fn = NULL;
			unsigned char *got = received_view_attachment(raw, size, &fuzz_lim, v.attachments[0].id,
								      &got_size, &ct, &fn);
			FUZZ_CHECK(got != NULL && got_size == v.attachments[0].size);
			FUZZ_CHECK(ct != NULL && strcmp(ct, v.attachments[0].content_type) == 0);
			FUZZ_CHECK((fn == NULL) == (v.attachments[0].filename == NULL));
			free(got);
			free(ct);
			free(fn);
		}
	} else {
		FUZZ_CHECK(err != NULL);
	}
	received_view_clear(&v);
	free(raw);
	return 0;
}

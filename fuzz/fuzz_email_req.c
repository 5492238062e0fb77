/* fuzz_email_req.c — libFuzzer harness for src/http/json.c and src/http/email_req.c: the input is a
 * request body; it is loaded strictly (depth 32) and, when it is an object, checked as a send request
 * with fixed limits. Every accepted request is checked against the promises of email_req.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/email_req.h"
#include "http/json.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* 2024-08-05T11:52:01Z */
#define FUZZ_NOW 1722858721

static bool fuzz_has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

static void fuzz_check_mailboxes(const struct email_mailbox *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(m[i].addr.text[0] != '\0' && strchr(m[i].addr.text, '@') != NULL);
		FUZZ_CHECK(!fuzz_has_crlf(m[i].addr.text));
		FUZZ_CHECK(m[i].name == NULL || (m[i].name[0] != '\0' && strlen(m[i].name) <= 256 &&
						 !fuzz_has_crlf(m[i].name)));
	}
}

static void fuzz_check_req(const struct email_req *r, const struct email_req_limits *lim)
{
	fuzz_check_mailboxes(&r->from, 1);
	FUZZ_CHECK(r->to_count >= 1 && r->to_count + r->cc_count + r->bcc_count <= EMAIL_REQ_MAX_RCPTS);
	FUZZ_CHECK(r->reply_to_count <= EMAIL_REQ_MAX_REPLY_TO);
	fuzz_check_mailboxes(r->to, r->to_count);
	fuzz_check_mailboxes(r->cc, r->cc_count);
	fuzz_check_mailboxes(r->bcc, r->bcc_count);
	fuzz_check_mailboxes(r->reply_to, r->reply_to_count);
	FUZZ_CHECK(r->subject != NULL && !fuzz_has_crlf(r->subject));
	FUZZ_CHECK(r->html != NULL || r->text != NULL);
	uint64_t size = (r->html ? strlen(r->html) : 0) + (r->text ? strlen(r->text) : 0);
	FUZZ_CHECK(r->header_count <= EMAIL_REQ_MAX_HEADERS);
	for (size_t i = 0; i < r->header_count; i++) {
		const struct email_header *h = &r->headers[i];
		size_t n = strlen(h->name);
		FUZZ_CHECK(n >= 1 && n <= 76 && !fuzz_has_crlf(h->value));
		for (size_t k = 0; k < n; k++)
			FUZZ_CHECK(h->name[k] >= 33 && h->name[k] <= 126 && h->name[k] != ':');
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(strcasecmp(h->name, r->headers[k].name) != 0);
		FUZZ_CHECK(strcasecmp(h->name, "Bcc") != 0 && strcasecmp(h->name, "Content-Type") != 0);
	}
	FUZZ_CHECK(r->attachment_count <= EMAIL_REQ_MAX_ATTACHMENTS);
	for (size_t i = 0; i < r->attachment_count; i++) {
		const struct email_attachment *a = &r->attachments[i];
		FUZZ_CHECK((a->content != NULL) != (a->path != NULL));
		FUZZ_CHECK(a->path == NULL || (lim->allow_attachment_urls && a->size == 0));
		FUZZ_CHECK(a->content_type != NULL && strchr(a->content_type, '/') != NULL &&
			   !fuzz_has_crlf(a->content_type));
		FUZZ_CHECK(a->filename == NULL || (strlen(a->filename) <= 255 && !fuzz_has_crlf(a->filename)));
		FUZZ_CHECK(a->content_id == NULL || strpbrk(a->content_id, "<> \r\n") == NULL);
		FUZZ_CHECK(a->path != NULL || a->filename != NULL || a->content_id != NULL);
		size += a->size;
		/* every octet is readable: ASan reports a short buffer */
		volatile unsigned char sink = 0;
		for (size_t k = 0; k < a->size; k++)
			sink ^= a->content[k];
		(void)sink;
	}
	FUZZ_CHECK(size <= lim->max_size);
	FUZZ_CHECK(r->tag_count <= EMAIL_REQ_MAX_TAGS);
	for (size_t i = 0; i < r->tag_count; i++)
		FUZZ_CHECK(strspn(r->tags[i].name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
				   strlen(r->tags[i].name) &&
			   strlen(r->tags[i].value) >= 1 && strlen(r->tags[i].value) <= EMAIL_REQ_TAG_MAX);
	FUZZ_CHECK(r->scheduled_at == 0 ||
		   (r->scheduled_at >= lim->now - 60 && r->scheduled_at <= lim->now + 30 * 86400 + 60));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *j = http_json_load((const char *)data, size, HTTP_JSON_MAX_DEPTH, err, sizeof(err));
	if (j == NULL) {
		FUZZ_CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
		return 0;
	}
	FUZZ_CHECK(json_is_object(j) || json_is_array(j));
	/* a batch is an array of requests: each element is checked the same way */
	size_t n = json_is_array(j) ? json_array_size(j) : 1;
	for (size_t i = 0; i < n && i < 8; i++) {
		const json_t *o = json_is_array(j) ? json_array_get(j, i) : j;
		const struct email_req_limits lim = {
			.max_size = 1 << 16, .allow_attachment_urls = (size & 1) != 0, .now = FUZZ_NOW
		};
		char msg[256];
		struct email_req *r = NULL;
		enum email_req_error e = email_req_parse(o, &lim, &r, msg, sizeof(msg));
		FUZZ_CHECK(e >= EMAIL_REQ_OK && e <= EMAIL_REQ_NO_MEMORY);
		FUZZ_CHECK(email_req_error_name(e) != NULL);
		if (e == EMAIL_REQ_OK) {
			FUZZ_CHECK(r != NULL && msg[0] == '\0');
			fuzz_check_req(r, &lim);
		} else {
			FUZZ_CHECK(r == NULL && msg[0] != '\0' && strlen(msg) < sizeof(msg));
		}
		email_req_free(r);
	}
	json_decref(j);
	return 0;
}

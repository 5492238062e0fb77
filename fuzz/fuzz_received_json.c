/* fuzz_received_json.c — libFuzzer harness for src/inbound/received_json.c: the input is a received
 * message. Its view gives the Authentication-Results of a fixed authserv-id, the summary, the
 * email.received event and the email with inline images put in as data: URIs and left as cid:
 * references. Every output must be UTF-8 JSON that jansson reads again; the results are words that
 * fit their slots; an html without "cid:" comes out as it went in, in local line ends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "inbound/received_json.h"
#include "inbound/received_view.h"
#include "util/utf8.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#define FUZZ_ID "0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
#define FUZZ_MS 1795320306789LL

/* small, so that every limit is within reach of small inputs */
static const struct received_view_limits fuzz_lim = {
	.max_size = 1 << 20,
	.max_parts = 40,
	.max_depth = 6,
	.max_headers = 30,
	.max_text = 4096,
	.max_field = 2048,
};

static void fuzz_check_utf8(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len((const unsigned char *)s + i, n - i);
		FUZZ_CHECK(k > 0);
		i += k;
	}
}

/* text is UTF-8 JSON that loads again; the loaded value (decref it). */
static json_t *fuzz_reload(const char *text)
{
	FUZZ_CHECK(text != NULL);
	fuzz_check_utf8(text);
	json_error_t e;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	FUZZ_CHECK(j != NULL && json_is_object(j));
	return j;
}

static json_t *fuzz_dump_reload(const json_t *v)
{
	FUZZ_CHECK(v != NULL);
	char *text = json_dumps(v, JSON_COMPACT);
	json_t *j = fuzz_reload(text);
	free(text);
	return j;
}

static void fuzz_check_word(const char *w, size_t size)
{
	size_t n = strnlen(w, size);
	FUZZ_CHECK(n < size);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((w[i] >= 'a' && w[i] <= 'z') || (w[i] >= '0' && w[i] <= '9') || w[i] == '.' || w[i] == '-' ||
			   w[i] == '_');
}

/* s without its CRLF pairs (the html as the email shows it) equals got. */
static bool fuzz_same_local(const char *s, const char *got)
{
	for (; *s != '\0'; s++) {
		if (s[0] == '\r' && s[1] == '\n')
			continue;
		if (*got++ != *s)
			return false;
	}
	return *got == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *raw = malloc(size > 0 ? size : 1);
	if (raw == NULL)
		return 0;
	memcpy(raw, data, size);
	struct received_view v;
	const char *err = NULL;
	if (received_view_parse(raw, size, &fuzz_lim, &v, &err) != RECEIVED_VIEW_OK) {
		received_view_clear(&v);
		free(raw);
		return 0;
	}
	struct received_auth a;
	bool checked = received_auth_read(&v, "mx.example.com", &a);
	fuzz_check_word(a.spf, sizeof(a.spf));
	fuzz_check_word(a.dkim, sizeof(a.dkim));
	fuzz_check_word(a.dmarc, sizeof(a.dmarc));
	FUZZ_CHECK(checked || (a.spf[0] == '\0' && a.dkim[0] == '\0' && a.dmarc[0] == '\0'));

	json_t *summary = received_summary_json(&v, FUZZ_ID, FUZZ_MS, "app@example.com", checked ? &a : NULL);
	json_t *s = fuzz_dump_reload(summary);
	FUZZ_CHECK(json_array_size(json_object_get(s, "attachments")) == v.attachment_count);
	FUZZ_CHECK(json_is_null(json_object_get(s, "authentication")) == !checked);
	json_decref(s);

	char *event = received_event_json(summary, FUZZ_MS);
	json_t *ev = fuzz_reload(event);
	free(event);
	const json_t *d = json_object_get(ev, "data");
	FUZZ_CHECK(strcmp(json_string_value(json_object_get(d, "email_id")), FUZZ_ID) == 0);
	FUZZ_CHECK(json_is_array(json_object_get(d, "cc")) && json_is_array(json_object_get(d, "bcc")));
	json_decref(ev);

	for (int cid = 0; cid < 2; cid++) {
		json_t *email = received_email_json(summary, &v, raw, size, &fuzz_lim, cid != 0,
						    cid ? "https://api.example.com/raw?expires=1&signature=x" : NULL,
						    FUZZ_MS);
		json_t *e = fuzz_dump_reload(email);
		json_decref(email);
		const json_t *html = json_object_get(e, "html");
		FUZZ_CHECK((v.html == NULL) == json_is_null(html));
		if (v.html != NULL && (cid || strcasestr(v.html, "cid:") == NULL))
			FUZZ_CHECK(fuzz_same_local(v.html, json_string_value(html)));
		const json_t *text = json_object_get(e, "text");
		FUZZ_CHECK(v.text == NULL ? json_is_null(text) : fuzz_same_local(v.text, json_string_value(text)));
		FUZZ_CHECK(json_object_size(json_object_get(e, "headers")) <= v.header_count);
		FUZZ_CHECK(json_is_null(json_object_get(e, "raw")) == !cid);
		json_decref(e);
	}
	json_decref(summary);
	received_view_clear(&v);
	free(raw);
	return 0;
}

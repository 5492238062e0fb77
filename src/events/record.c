/* record.c — the record of a message that came whole (authenticated submission, POST /emails/raw),
 * so that it can be followed like API mail (GET /emails, events, webhooks): From, Subject and
 * Message-ID from its header (RFC 2047 words decoded), the envelope's recipients as to; its
 * content stays in the queue and the mailbox: the record is for following its fate. */
#include "events/record.h"

#include <gmime/gmime.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/events.h"
#include "queue/queue.h"
#include "util/date.h"
#include "util/header.h"

static pthread_once_t record_gmime_once = PTHREAD_ONCE_INIT;

static void record_gmime_init(void)
{
	g_mime_init();
}

/* The unfolded, decoded value of the first field name in msg's header section; NULL when none. */
static char *field_text(const char *msg, size_t len, const char *name)
{
	size_t pos = 0;
	struct header_field f;
	while (header_next(msg, len, &pos, &f)) {
		if (!header_is(&f, name))
			continue;
		char *raw = malloc(f.value_len + 1);
		if (raw == NULL)
			return NULL;
		size_t o = 0;
		for (size_t i = 0; i < f.value_len; i++)
			if (f.value[i] != '\r' && f.value[i] != '\n')
				raw[o++] = f.value[i] == '\t' ? ' ' : f.value[i];
		raw[o] = '\0';
		char *start = raw;
		while (*start == ' ')
			start++;
		/* RFC 2047 encoded words: the API shows what the reader sees */
		char *decoded = g_mime_utils_header_decode_text(NULL, start);
		free(raw);
		if (decoded == NULL)
			return NULL;
		char *out = strdup(decoded);
		g_free(decoded);
		return out;
	}
	return NULL;
}

static char *rcpts_json(const struct queue_msg *m)
{
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < m->rcpt_count; i++)
		json_array_append_new(a, json_string(m->rcpts[i]));
	char *s = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

struct email_record *email_record_from_message(const struct queue_msg *m)
{
	pthread_once(&record_gmime_once, record_gmime_init);
	struct email_record *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	email_id_new(r->id);
	r->created_at = date_now_ms();
	r->from = field_text(m->data, m->size, "From");
	r->subject = field_text(m->data, m->size, "Subject");
	char *mid = field_text(m->data, m->size, "Message-ID");
	if (mid != NULL) {
		char *lt = strchr(mid, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;
		if (lt != NULL && gt != NULL) {
			*gt = '\0';
			memmove(mid, lt + 1, strlen(lt + 1) + 1);
		}
	}
	r->message_id = mid;
	r->to_json = rcpts_json(m);
	if (r->from == NULL)
		r->from = strdup(m->sender);
	if (r->subject == NULL)
		r->subject = strdup("");
	if (r->from == NULL || r->subject == NULL || r->to_json == NULL) {
		email_record_free(r);
		return NULL;
	}
	return r;
}

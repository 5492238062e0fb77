/* webhook_payload.c — event names, the Resend-shaped body, the Standard Webhooks signature and the
 * retry arithmetic (webhook_payload.h). */
#include "events/webhook_payload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "util/base64.h"
#include "util/date.h"

/* ---- names ---- */

const char *webhook_event_name(enum email_event_type t)
{
	switch (t) {
	case EMAIL_EVENT_SCHEDULED: return "email.scheduled";
	case EMAIL_EVENT_SENT: return "email.sent";
	case EMAIL_EVENT_DELIVERED: return "email.delivered";
	case EMAIL_EVENT_DELIVERY_DELAYED: return "email.delivery_delayed";
	case EMAIL_EVENT_BOUNCED: return "email.bounced";
	case EMAIL_EVENT_FAILED: return "email.failed";
	case EMAIL_EVENT_SUPPRESSED: return "email.suppressed";
	case EMAIL_EVENT_COMPLAINED: return "email.complained";
	case EMAIL_EVENT_QUEUED:
	case EMAIL_EVENT_CANCELED:
	/* Resend reports an unsubscribe as contact.updated, of a contact (audiences are not here) */
	case EMAIL_EVENT_UNSUBSCRIBED:
	case EMAIL_EVENT_COUNT: break;
	}
	return NULL;
}

/* Resend's WebhookEvent (the SDK's index.d.mts, resend 6.38) */
static const char *const resend_events[] = {
	"email.sent",
	"email.scheduled",
	"email.delivered",
	"email.delivery_delayed",
	"email.complained",
	"email.bounced",
	"email.opened",
	"email.clicked",
	"email.received",
	"email.failed",
	"email.suppressed",
	"contact.created",
	"contact.updated",
	"contact.deleted",
	"contact.topics.updated",
	"domain.created",
	"domain.updated",
	"domain.deleted",
	"suppression.added",
	"suppression.removed",
	"topic.created",
	"topic.updated",
	"topic.deleted",
	"inbox.created",
	"inbox.updated",
	"inbox.deleted",
	"inbox.thread.created",
	"inbox.thread.folder.updated",
	"inbox.thread.assigned",
	"inbox.thread.unassigned",
	"inbox.thread.labels.updated",
	"inbox.email.received",
	"inbox.email.sent",
	"inbox.draft.created",
	"inbox.draft.updated",
	"inbox.draft.sent",
	"inbox.draft.deleted",
};

bool webhook_event_known(const char *name)
{
	for (size_t i = 0; i < sizeof(resend_events) / sizeof(resend_events[0]); i++)
		if (strcmp(name, resend_events[i]) == 0)
			return true;
	return false;
}

uint32_t webhook_events_mask(const char *events_json)
{
	json_t *a = events_json != NULL ? json_loads(events_json, 0, NULL) : NULL;
	uint32_t mask = 0;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v))
			continue;
		for (int t = 0; t < EMAIL_EVENT_COUNT; t++) {
			const char *n = webhook_event_name((enum email_event_type)t);
			if (n != NULL && strcmp(n, json_string_value(v)) == 0)
				mask |= 1u << t;
		}
	}
	json_decref(a);
	return mask;
}

/* ---- the body ---- */

static json_t *time_json(int64_t ms)
{
	char t[40];
	date_rfc3339_ms_format(ms, t, sizeof(t));
	return json_string(t);
}

static json_t *str_or_empty(const char *s)
{
	json_t *v = json_string(s != NULL ? s : "");
	return v != NULL ? v : json_string(""); /* not UTF-8: jansson refuses it; nothing better to say */
}

/* [{"name":n,"value":v}, ...] as {n: v, ...}; NULL when there are none. */
static json_t *tags_object(const char *tags_json)
{
	json_t *in = tags_json != NULL ? json_loads(tags_json, 0, NULL) : NULL, *out = NULL;
	if (json_is_object(in)) {
		out = json_incref(in);
	} else if (json_is_array(in) && json_array_size(in) > 0) {
		out = json_object();
		size_t i;
		json_t *t;
		json_array_foreach(in, i, t) {
			const char *name = json_string_value(json_object_get(t, "name"));
			json_t *value = json_object_get(t, "value");
			if (name != NULL && json_is_string(value))
				json_object_set(out, name, value);
		}
	}
	json_decref(in);
	return out;
}

/* The detail's member key when it is a string, else NULL. */
static const char *detail_str(const json_t *detail, const char *key)
{
	return json_string_value(json_object_get(detail, key));
}

/* obj[key] = a copy of src[key] as a string, or def when src has none. */
static void set_str_from(json_t *obj, const char *key, const json_t *src, const char *src_key,
			 const char *def)
{
	const char *v = detail_str(src, src_key);
	json_object_set_new(obj, key, str_or_empty(v != NULL ? v : def));
}

static json_t *data_build(const struct webhook_event_in *e, const json_t *detail)
{
	json_t *d = json_object();
	json_object_set_new(d, "created_at", time_json(e->email_created_ms));
	json_object_set_new(d, "email_id", str_or_empty(e->email_id));
	json_object_set_new(d, "from", str_or_empty(e->from));
	json_t *to;
	if (e->recipient != NULL) {
		to = json_array();
		json_array_append_new(to, str_or_empty(e->recipient));
	} else {
		to = e->to_json != NULL ? json_loads(e->to_json, 0, NULL) : NULL;
		if (!json_is_array(to)) {
			json_decref(to);
			to = json_array();
		}
	}
	json_object_set_new(d, "to", to);
	json_object_set_new(d, "subject", str_or_empty(e->subject));
	json_object_set_new(d, "message_id", str_or_empty(e->message_id));
	json_t *tags = tags_object(e->tags_json);
	if (tags != NULL)
		json_object_set_new(d, "tags", tags);

	switch (e->type) {
	case EMAIL_EVENT_BOUNCED: {
		/* events.c classifies a bounce (classify.h) into Resend's type/subType when recording it */
		const json_t *b = json_object_get(detail, "bounce");
		json_t *bounce = json_object();
		set_str_from(bounce, "message", b, "message",
			     detail_str(detail, "reply") ? detail_str(detail, "reply") : "");
		set_str_from(bounce, "subType", b, "subType", "General");
		set_str_from(bounce, "type", b, "type", "Permanent");
		json_object_set_new(d, "bounce", bounce);
		break;
	}
	case EMAIL_EVENT_FAILED: {
		const char *why = detail_str(detail, "reply");
		if (why == NULL)
			why = detail_str(detail, "status");
		json_object_set_new(d, "failed",
				    json_pack("{s:o}", "reason", str_or_empty(why != NULL ? why : "failed")));
		break;
	}
	case EMAIL_EVENT_SUPPRESSED: {
		const json_t *s = json_object_get(detail, "suppressed");
		json_t *sup = json_object();
		set_str_from(sup, "message", s, "message", "The recipient is on the suppression list.");
		set_str_from(sup, "type", s, "type", "");
		json_object_set_new(d, "suppressed", sup);
		break;
	}
	default: break;
	}
	/* mailwerk's additions */
	if (e->recipient != NULL)
		json_object_set_new(d, "recipient", str_or_empty(e->recipient));
	static const char *const extras[] = {"reply", "mx", "status"};
	for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++)
		if (detail_str(detail, extras[i]) != NULL)
			json_object_set_new(d, extras[i], str_or_empty(detail_str(detail, extras[i])));
	return d;
}

enum webhook_payload_error webhook_payload_build(const struct webhook_event_in *e, char **json_r,
						 const char **error_r)
{
	*json_r = NULL;
	const char *name = webhook_event_name(e->type);
	if (name == NULL) {
		*error_r = "this event type is not posted to webhooks";
		return WEBHOOK_PAYLOAD_ERR_TYPE;
	}
	json_t *detail = e->detail_json != NULL ? json_loads(e->detail_json, 0, NULL) : NULL;
	json_t *o = json_object();
	if (o != NULL) {
		json_object_set_new(o, "type", json_string(name));
		json_object_set_new(o, "created_at", time_json(e->at_ms));
		json_object_set_new(o, "data", data_build(e, json_is_object(detail) ? detail : NULL));
		*json_r = json_dumps(o, JSON_COMPACT);
	}
	json_decref(o);
	json_decref(detail);
	if (*json_r == NULL) {
		*error_r = "out of memory";
		return WEBHOOK_PAYLOAD_ERR_NOMEM;
	}
	return WEBHOOK_PAYLOAD_OK;
}

/* ---- the signature ---- */

bool webhook_secret_key(const char *secret, unsigned char key_r[WEBHOOK_KEY_MAX], size_t *len_r)
{
	size_t plen = strlen(WEBHOOK_SECRET_PREFIX), n = 0, digits = 0;
	if (strncmp(secret, WEBHOOK_SECRET_PREFIX, plen) == 0)
		secret += plen;
	uint32_t acc = 0;
	const char *p = secret;
	for (; *p != '\0' && *p != '='; p++) {
		int v = base64_value((unsigned char)*p);
		if (v < 0)
			return false;
		acc = acc << 6 | (uint32_t)v;
		if (++digits % 4 == 0) {
			if (n + 3 > WEBHOOK_KEY_MAX)
				return false;
			key_r[n++] = (unsigned char)(acc >> 16);
			key_r[n++] = (unsigned char)(acc >> 8);
			key_r[n++] = (unsigned char)acc;
			acc = 0;
		}
	}
	/* RFC 4648 §4: the last group carries 1 or 2 octets in 2 or 3 digits, then '=' padding */
	size_t rest = digits % 4, pad = 0;
	for (; *p == '='; p++)
		pad++;
	if (*p != '\0' || rest == 1 || (pad > 0 && rest + pad != 4))
		return false;
	if (rest == 2) {
		if (n + 1 > WEBHOOK_KEY_MAX)
			return false;
		key_r[n++] = (unsigned char)(acc >> 4);
	} else if (rest == 3) {
		if (n + 2 > WEBHOOK_KEY_MAX)
			return false;
		key_r[n++] = (unsigned char)(acc >> 10);
		key_r[n++] = (unsigned char)(acc >> 2);
	}
	*len_r = n;
	return n > 0;
}

enum webhook_sign_error webhook_sign(const char *secret, const char *msg_id, int64_t timestamp,
				     const char *body, size_t len, char sig_r[WEBHOOK_SIGNATURE_SIZE],
				     const char **error_r)
{
	unsigned char key[WEBHOOK_KEY_MAX], mac[EVP_MAX_MD_SIZE];
	size_t key_len, mac_len = 0;
	sig_r[0] = '\0';
	if (!webhook_secret_key(secret, key, &key_len)) {
		*error_r = "the signing secret is not whsec_ followed by base64";
		return WEBHOOK_SIGN_ERR_SECRET;
	}
	char ts[24];
	snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	bool ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
		  EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) == 1 &&
		  EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
		  EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) == 1 &&
		  EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
		  EVP_MAC_update(ctx, (const unsigned char *)body, len) == 1 &&
		  EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) == 1 && mac_len == 32;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok) {
		*error_r = "HMAC-SHA256 failed";
		return WEBHOOK_SIGN_ERR_CRYPTO;
	}
	memcpy(sig_r, "v1,", 3);
	if (!base64_encode(mac, mac_len, sig_r + 3, WEBHOOK_SIGNATURE_SIZE - 3)) {
		*error_r = "signature buffer too small";
		return WEBHOOK_SIGN_ERR_CRYPTO;
	}
	return WEBHOOK_SIGN_OK;
}

/* ---- retries ---- */

bool webhook_retry_next(const unsigned *waits, size_t count, unsigned attempts, int64_t now_ms,
			int64_t *next_r)
{
	if (attempts == 0 || attempts > count)
		return false;
	*next_r = now_ms + (int64_t)waits[attempts - 1] * 1000;
	return true;
}

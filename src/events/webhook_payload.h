/* webhook_payload.h — what a webhook says and how it is signed: the event names (Resend's), the
 * JSON body of an event in Resend's shape (WebhookEventPayload of the official SDK) with
 * mailwerk's additions, the Standard Webhooks signature (https://www.standardwebhooks.com, the
 * scheme of Svix, which Resend uses), and the retry schedule's arithmetic. Pure: no I/O. */
#ifndef MAILWERK_EVENTS_WEBHOOK_PAYLOAD_H
#define MAILWERK_EVENTS_WEBHOOK_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events/events.h"

/* ---- event names ---- */

/* Resend's name of an event mailwerk posts ("email.delivered"), or NULL for the ones it does not:
 * queued and canceled have no webhook type at Resend. */
const char *webhook_event_name(enum email_event_type t);
/* Whether name is one of Resend's webhook event types (all of them, also those mailwerk never
 * produces, such as email.opened or contact.created: an application written for Resend may
 * subscribe to them, and simply gets none). */
bool webhook_event_known(const char *name);
/* The bit set (1 << enum email_event_type) of the events a webhook's stored list (a JSON array of
 * names) subscribes to; unknown or unposted names add nothing. 0 when the text is not an array. */
uint32_t webhook_events_mask(const char *events_json);

/* ---- the body ---- */

/* One event of a tracked message, as the outbox reads it from queue.db (events.h). */
struct webhook_event_in {
	enum email_event_type type;
	int64_t at_ms; /* the event's time */
	const char *email_id;
	int64_t email_created_ms; /* the message's */
	const char *from;         /* as the sender gave it */
	const char *subject;      /* NULL: "" */
	const char *message_id;   /* without brackets; NULL: "" */
	const char *to_json;      /* the message's "to", a JSON array */
	const char *tags_json;    /* [{"name","value"}...], or NULL */
	const char *recipient;    /* the recipient of a per-recipient event; NULL for the message's own */
	const char *detail_json;  /* the event's detail (events.h), or NULL */
};

enum webhook_payload_error {
	WEBHOOK_PAYLOAD_OK = 0,
	WEBHOOK_PAYLOAD_ERR_TYPE, /* an event type that is not posted */
	WEBHOOK_PAYLOAD_ERR_NOMEM,
};

/* The event as one compact JSON text (malloc'd, UTF-8) in Resend's shape:
 *   {"type":"email.bounced","created_at":ISO,"data":{"created_at":ISO of the message,"email_id",
 *    "from","to":[...],"subject","message_id","tags":{name: value},"bounce":{...}}}
 * "to" is the recipient of a per-recipient event (every event but scheduled), else the message's
 * "to". Resend's tags are an object (BaseEmailEventData), ours are stored as the send request's
 * [{name, value}], so they are turned around. Type-specific members: bounce {message, subType,
 * type}, failed {reason}, suppressed {message, type}. mailwerk adds, without changing Resend's
 * members: "recipient", and where known "reply" (the receiver's answer), "mx" and "status" (RFC
 * 3463). */
enum webhook_payload_error webhook_payload_build(const struct webhook_event_in *e, char **json_r,
						 const char **error_r);

/* ---- the signature ---- */

#define WEBHOOK_SECRET_PREFIX "whsec_"
#define WEBHOOK_KEY_MAX 64        /* Standard Webhooks: keys of 24 to 64 octets */
#define WEBHOOK_SIGNATURE_SIZE 48 /* "v1," + 44 base64 digits of a SHA-256 HMAC + NUL */

enum webhook_sign_error {
	WEBHOOK_SIGN_OK = 0,
	WEBHOOK_SIGN_ERR_SECRET, /* not "whsec_" + base64 of 1..64 octets */
	WEBHOOK_SIGN_ERR_CRYPTO, /* OpenSSL failed */
};

/* The key of a secret: base64-decoded after the "whsec_" prefix (the prefix is optional, as in
 * the reference libraries). Into key_r (WEBHOOK_KEY_MAX octets); false when malformed. */
bool webhook_secret_key(const char *secret, unsigned char key_r[WEBHOOK_KEY_MAX], size_t *len_r);

/* Standard Webhooks §"Signature scheme": "v1," + base64(HMAC-SHA256(key, "<msg_id>.<timestamp>.<body>"))
 * where timestamp is unix seconds as decimal digits. The same value goes out as webhook-signature
 * and svix-signature. */
enum webhook_sign_error webhook_sign(const char *secret, const char *msg_id, int64_t timestamp,
				     const char *body, size_t len, char sig_r[WEBHOOK_SIGNATURE_SIZE],
				     const char **error_r);

/* ---- retries ---- */

/* After attempt number attempts (1 for the first) has failed, with waits[] the [webhooks]
 * retry_schedule (the waits after the 1st, 2nd, ... failure): true and the time of the next
 * attempt in *next_r, or false when there is none (the delivery has failed). */
bool webhook_retry_next(const unsigned *waits, size_t count, unsigned attempts, int64_t now_ms,
			int64_t *next_r);

#endif

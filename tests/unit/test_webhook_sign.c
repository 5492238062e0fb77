/* test_webhook_sign.c — the webhook payload and its signature (events/webhook_payload.h): the
 * Standard Webhooks test vector, secrets with and without the prefix, malformed secrets; the body
 * in Resend's shape for each kind of event; event names and subscriptions; the retry arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events/webhook_payload.h"

/* ---- signatures ---- */

static void test_sign_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *secret, *id;
		int64_t ts;
		const char *body, *want;
	} cases[] = {
		/* the published vector of the Standard Webhooks reference libraries (and Svix's); checked with
		 * python3: base64(hmac.new(b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
		 *   b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}', sha256).digest()) */
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		 "{\"test\": 2432232314}", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		/* the prefix is optional, as in the reference implementations */
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		 "{\"test\": 2432232314}", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		/* a 32-octet key with '=' padding (what mailwerk makes) and a UTF-8 body; python3:
		 * key = bytes(range(32)); base64(hmac.new(key, b"msg_2a.1700000000." + body, sha256)) */
		{"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "msg_2a", 1700000000,
		 "{\"type\":\"email.sent\",\"data\":{\"subject\":\"Gr\xc3\xbc\xc3\x9f"
		 "e\"}}",
		 "v1,/WirFfug/3TPUh9Owgj+cWnFsSfVMx6aDogkA/DkNHQ="},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sig[WEBHOOK_SIGNATURE_SIZE];
		const char *why = NULL;
		assert_int_equal(webhook_sign(cases[i].secret, cases[i].id, cases[i].ts, cases[i].body,
					      strlen(cases[i].body), sig, &why),
				 WEBHOOK_SIGN_OK);
		if (strcmp(sig, cases[i].want) != 0)
			fail_msg("case %zu: %s, want %s", i, sig, cases[i].want);
	}
}

/* Another id, timestamp or body gives another signature: each is under the MAC. */
static void test_sign_covers_every_part(void **state)
{
	(void)state;
	const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	char a[WEBHOOK_SIGNATURE_SIZE], b[WEBHOOK_SIGNATURE_SIZE];
	const char *why;
	assert_int_equal(webhook_sign(secret, "msg_1", 100, "{}", 2, a, &why), WEBHOOK_SIGN_OK);
	assert_int_equal(webhook_sign(secret, "msg_2", 100, "{}", 2, b, &why), WEBHOOK_SIGN_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(webhook_sign(secret, "msg_1", 101, "{}", 2, b, &why), WEBHOOK_SIGN_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(webhook_sign(secret, "msg_1", 100, "[]", 2, b, &why), WEBHOOK_SIGN_OK);
	assert_string_not_equal(a, b);
	/* the body's length is given: what follows it is not signed */
	assert_int_equal(webhook_sign(secret, "msg_1", 100, "{}xyz", 2, b, &why), WEBHOOK_SIGN_OK);
	assert_string_equal(a, b);
}

static void test_secret_keys(void **state)
{
	(void)state;
	unsigned char key[WEBHOOK_KEY_MAX];
	size_t n;
	assert_true(webhook_secret_key("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", key, &n));
	assert_int_equal(n, 32);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(key[i], i);
	assert_true(webhook_secret_key("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", key,
				       &n)); /* unpadded */
	assert_int_equal(n, 32);
	/* 64 octets: the most Standard Webhooks allows */
	assert_true(webhook_secret_key(
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1"
		"Njc4OTo7PD0+Pw==",
		key, &n));
	assert_int_equal(n, 64);
	assert_true(webhook_secret_key("whsec_QQ==", key, &n));
	assert_int_equal(n, 1);
	assert_int_equal(key[0], 'A');
	static const char *const bad[] = {
		"whsec_",
		"",
		"whsec_A",
		"whsec_QQ=",
		"whsec_QQ===",
		"whsec_QQ==QQ",
		"whsec_Q!Q=",
		"whsec_ QQ==",
		/* 66 octets: more than the 64 Standard Webhooks allows */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (webhook_secret_key(bad[i], key, &n))
			fail_msg("bad secret %zu \"%s\" accepted", i, bad[i]);
	char sig[WEBHOOK_SIGNATURE_SIZE];
	const char *why = NULL;
	assert_int_equal(webhook_sign("whsec_!!", "m", 1, "", 0, sig, &why), WEBHOOK_SIGN_ERR_SECRET);
	assert_non_null(why);
}

/* ---- names ---- */

static void test_event_names(void **state)
{
	(void)state;
	assert_string_equal(webhook_event_name(EMAIL_EVENT_SENT), "email.sent");
	assert_string_equal(webhook_event_name(EMAIL_EVENT_DELIVERED), "email.delivered");
	assert_string_equal(webhook_event_name(EMAIL_EVENT_DELIVERY_DELAYED), "email.delivery_delayed");
	assert_string_equal(webhook_event_name(EMAIL_EVENT_BOUNCED), "email.bounced");
	assert_string_equal(webhook_event_name(EMAIL_EVENT_FAILED), "email.failed");
	assert_string_equal(webhook_event_name(EMAIL_EVENT_SUPPRESSED), "email.suppressed");
	assert_string_equal(webhook_event_name(EMAIL_EVENT_COMPLAINED), "email.complained");
	assert_string_equal(webhook_event_name(EMAIL_EVENT_SCHEDULED), "email.scheduled");
	assert_null(webhook_event_name(EMAIL_EVENT_QUEUED)); /* Resend has no such webhook type */
	assert_null(webhook_event_name(EMAIL_EVENT_CANCELED));
	assert_true(webhook_event_known("email.opened")); /* Resend's, never produced here */
	assert_true(webhook_event_known("contact.created"));
	assert_false(webhook_event_known("email.queued"));
	assert_false(webhook_event_known("EMAIL.SENT"));
	assert_false(webhook_event_known(""));

	assert_int_equal(webhook_events_mask("[\"email.sent\",\"email.bounced\",\"email.opened\",3]"),
			 (1u << EMAIL_EVENT_SENT) | (1u << EMAIL_EVENT_BOUNCED));
	assert_int_equal(webhook_events_mask("{}"), 0);
	assert_int_equal(webhook_events_mask("not json"), 0);
	assert_int_equal(webhook_events_mask(NULL), 0);
}

/* ---- the body ---- */

static json_t *build(const struct webhook_event_in *in)
{
	char *text = NULL;
	const char *why;
	assert_int_equal(webhook_payload_build(in, &text, &why), WEBHOOK_PAYLOAD_OK);
	json_error_t e;
	json_t *o = json_loads(text, 0, &e);
	if (o == NULL)
		fail_msg("not JSON: %s (%s)", text, e.text);
	assert_null(strchr(text, '\n')); /* compact */
	free(text);
	return o;
}

static const char *get_str(const json_t *o, const char *path1, const char *path2)
{
	const json_t *v = json_object_get(o, path1);
	if (path2 != NULL)
		v = json_object_get(v, path2);
	return json_string_value(v);
}

static const struct webhook_event_in base_event = {
	.type = EMAIL_EVENT_DELIVERED,
	.at_ms = 1733520600123, /* 2024-12-06T21:30:00.123Z */
	.email_id = "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
	.email_created_ms = 1733520599000,
	.from = "Acme <onboarding@acme.test>",
	.subject = "Gr\xc3\xbc\xc3\x9f"
		   "e",
	.message_id = "abc@acme.test",
	.to_json = "[\"a@x.test\",\"b@y.test\"]",
	.tags_json = "[{\"name\":\"category\",\"value\":\"welcome\"},{\"name\":\"n\",\"value\":\"1\"}]",
	.recipient = "b@y.test",
	.detail_json =
		"{\"reply\":\"250 2.0.0 Ok: queued as 1234\",\"mx\":\"mx.y.test\",\"status\":\"2.0.0\"}",
};

static void test_payload_delivered(void **state)
{
	(void)state;
	json_t *o = build(&base_event);
	assert_string_equal(get_str(o, "type", NULL), "email.delivered");
	assert_string_equal(get_str(o, "created_at", NULL), "2024-12-06T21:30:00.123Z");
	const json_t *d = json_object_get(o, "data");
	assert_string_equal(get_str(d, "created_at", NULL), "2024-12-06T21:29:59.000Z");
	assert_string_equal(get_str(d, "email_id", NULL), base_event.email_id);
	assert_string_equal(get_str(d, "from", NULL), base_event.from);
	assert_string_equal(get_str(d, "subject", NULL), base_event.subject);
	assert_string_equal(get_str(d, "message_id", NULL), "abc@acme.test");
	/* the recipient this event is about */
	const json_t *to = json_object_get(d, "to");
	assert_int_equal(json_array_size(to), 1);
	assert_string_equal(json_string_value(json_array_get(to, 0)), "b@y.test");
	/* Resend's tags are an object */
	assert_string_equal(get_str(d, "tags", "category"), "welcome");
	assert_string_equal(get_str(d, "tags", "n"), "1");
	/* mailwerk's additions */
	assert_string_equal(get_str(d, "recipient", NULL), "b@y.test");
	assert_string_equal(get_str(d, "reply", NULL), "250 2.0.0 Ok: queued as 1234");
	assert_string_equal(get_str(d, "mx", NULL), "mx.y.test");
	assert_string_equal(get_str(d, "status", NULL), "2.0.0");
	assert_null(json_object_get(d, "bounce"));
	json_decref(o);
}

static void test_payload_bounced_failed_suppressed(void **state)
{
	(void)state;
	struct webhook_event_in e = base_event;
	e.type = EMAIL_EVENT_BOUNCED;
	e.detail_json =
		"{\"reply\":\"550 5.1.1 no such user\",\"status\":\"5.1.1\",\"bounce\":{\"type\":\"Permanent\","
		"\"subType\":\"General\",\"message\":\"550 5.1.1 no such user\"}}";
	json_t *o = build(&e);
	const json_t *d = json_object_get(o, "data");
	assert_string_equal(get_str(o, "type", NULL), "email.bounced");
	assert_string_equal(get_str(d, "bounce", "type"), "Permanent");
	assert_string_equal(get_str(d, "bounce", "subType"), "General");
	assert_string_equal(get_str(d, "bounce", "message"), "550 5.1.1 no such user");
	json_decref(o);

	/* a bounce without a classification still has the three members */
	e.detail_json = "{\"reply\":\"554 no\"}";
	o = build(&e);
	d = json_object_get(o, "data");
	assert_string_equal(get_str(d, "bounce", "message"), "554 no");
	assert_non_null(get_str(d, "bounce", "type"));
	assert_non_null(get_str(d, "bounce", "subType"));
	json_decref(o);

	e.type = EMAIL_EVENT_FAILED;
	e.detail_json = "{\"reply\":\"no such domain\"}";
	o = build(&e);
	assert_string_equal(get_str(json_object_get(o, "data"), "failed", "reason"), "no such domain");
	json_decref(o);

	e.type = EMAIL_EVENT_SUPPRESSED;
	e.detail_json = "{\"suppressed\":{\"type\":\"bounce\",\"message\":\"hard bounce on 2024-12-01\"}}";
	o = build(&e);
	d = json_object_get(o, "data");
	assert_string_equal(get_str(o, "type", NULL), "email.suppressed");
	assert_string_equal(get_str(d, "suppressed", "type"), "bounce");
	assert_string_equal(get_str(d, "suppressed", "message"), "hard bounce on 2024-12-01");
	json_decref(o);
}

static void test_payload_message_level_and_missing_parts(void **state)
{
	(void)state;
	struct webhook_event_in e = base_event;
	e.type = EMAIL_EVENT_SCHEDULED;
	e.recipient = NULL;
	e.detail_json = NULL;
	e.tags_json = NULL;
	e.subject = NULL;
	e.message_id = NULL;
	json_t *o = build(&e);
	const json_t *d = json_object_get(o, "data");
	assert_string_equal(get_str(o, "type", NULL), "email.scheduled");
	assert_int_equal(json_array_size(json_object_get(d, "to")), 2); /* the message's own "to" */
	assert_null(json_object_get(d, "recipient"));
	assert_null(json_object_get(d, "tags"));
	assert_string_equal(get_str(d, "subject", NULL), "");
	assert_string_equal(get_str(d, "message_id", NULL), "");
	json_decref(o);

	e.to_json = "garbage";
	o = build(&e);
	assert_true(json_is_array(json_object_get(json_object_get(o, "data"), "to")));
	json_decref(o);

	char *text = NULL;
	const char *why = NULL;
	e.type = EMAIL_EVENT_QUEUED;
	assert_int_equal(webhook_payload_build(&e, &text, &why), WEBHOOK_PAYLOAD_ERR_TYPE);
	assert_null(text);
	assert_non_null(why);
}

/* ---- retries ---- */

static void test_retry_schedule(void **state)
{
	(void)state;
	const unsigned svix[] = {5, 300, 1800, 7200, 18000, 36000, 36000};
	int64_t next = 0;
	assert_true(webhook_retry_next(svix, 7, 1, 1000, &next));
	assert_int_equal(next, 1000 + 5000);
	assert_true(webhook_retry_next(svix, 7, 7, 1000, &next));
	assert_int_equal(next, 1000 + 36000000);
	assert_false(webhook_retry_next(svix, 7, 8, 1000, &next)); /* the 8th attempt was the last */
	assert_false(webhook_retry_next(svix, 7, 0, 1000, &next));
	const unsigned quick[] = {1, 1, 1};
	unsigned attempts = 1;
	while (webhook_retry_next(quick, 3, attempts, 0, &next))
		attempts++;
	assert_int_equal(attempts, 4); /* the first attempt and three retries */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_vectors),
		cmocka_unit_test(test_sign_covers_every_part),
		cmocka_unit_test(test_secret_keys),
		cmocka_unit_test(test_event_names),
		cmocka_unit_test(test_payload_delivered),
		cmocka_unit_test(test_payload_bounced_failed_suppressed),
		cmocka_unit_test(test_payload_message_level_and_missing_parts),
		cmocka_unit_test(test_retry_schedule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

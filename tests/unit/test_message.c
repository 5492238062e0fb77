/* test_message.c — header detection and the fields added before queueing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/message.h"
#include "util/date.h"

static bool has(const char *msg, const char *name)
{
	return message_has_header(msg, strlen(msg), name);
}

/* RFC 8689 §3: "TLS-Required: No" in the header section, nowhere else */
static void test_tls_required_no(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		bool want;
	} cases[] = {
		{"TLS-Required: No\r\n\r\nbody\r\n", true},
		{"Subject: x\r\ntls-required:no\r\n\r\n", true},
		{"TLS-Required:\r\n  NO  \r\n\r\n", true}, /* folded */
		{"TLS-Required : No\r\n\r\n", true},
		{"TLS-Required: Yes\r\n\r\n", false},
		{"TLS-Required: No thanks\r\n\r\n", false},
		{"TLS-Required: Nope\r\n\r\n", false},
		{"TLS-Requiredx: No\r\n\r\n", false},
		{"Subject: x\r\n\r\nTLS-Required: No\r\n", false}, /* in the body */
		{"Subject: x\r\n TLS-Required: No\r\n\r\n", false}, /* a continuation */
		{"", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (message_tls_required_no(cases[i].msg, strlen(cases[i].msg)) != cases[i].want)
			fail_msg("case %zu", i);
}

static void test_has_header(void **state)
{
	(void)state;
	assert_true(has("Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n", "Message-ID"));
	assert_true(has("message-id : <a@b>\r\n\r\n", "Message-ID"));
	assert_true(has("DATE:\tnow\r\n", "Date"));
	/* in the body, in a folded continuation, or a longer name: not a field */
	assert_false(has("Subject: x\r\n\r\nMessage-ID: <a@b>\r\n", "Message-ID"));
	assert_false(has("Subject: x\r\n Message-ID: <a@b>\r\n\r\n", "Message-ID"));
	assert_false(has("Message-IDs: <a@b>\r\n\r\n", "Message-ID"));
	assert_false(has("Dates x\r\n\r\n", "Date"));
	assert_false(has("", "Date"));
	assert_false(has("Date", "Date"));
}

static void test_date_format(void **state)
{
	(void)state;
	char buf[64];
	date_rfc5322_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
	date_rfc5322_format(1795320306, buf, sizeof(buf));
	assert_string_equal(buf, "Sun, 22 Nov 2026 04:05:06 +0000");
}

static void test_compose(void **state)
{
	(void)state;
	struct message_trace t = {
		.helo = "client.example", .client_ip = "192.0.2.1", .hostname = "mx.example.org",
		.queue_id = "0123456789ABCDEFGHJK", .protocol = "ESMTPSA", .tls_version = "TLSv1.3",
		.tls_cipher = "TLS_AES_256_GCM_SHA384", .auth_user = "bob@example.org", .rcpt = "to@example.net",
		.now = 1795320306,
	};
	const char content[] = "Subject: hi\r\n\r\nbody\r\n";
	size_t size;
	char *m = message_compose(&t, true, content, sizeof(content) - 1, &size);
	assert_non_null(m);
	assert_int_equal(strlen(m), size);
	assert_non_null(strstr(m, "Received: from client.example ([192.0.2.1])\r\n\tby mx.example.org (mailwerk) with "
				  "ESMTPSA id 0123456789ABCDEFGHJK\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
				  "\t(authenticated as bob@example.org)\r\n\tfor <to@example.net>;\r\n\tSun, 22 Nov 2026 04:05:06 +0000\r\n"));
	assert_non_null(strstr(m, "\r\nDate: Sun, 22 Nov 2026 04:05:06 +0000\r\n"));
	assert_non_null(strstr(m, "\r\nMessage-ID: <0123456789ABCDEFGHJK@mx.example.org>\r\n"));
	assert_string_equal(m + size - (sizeof(content) - 1), content);
	free(m);

	/* the MX role adds only the trace field; an IPv6 client is an IPv6 literal */
	t.client_ip = "2001:db8::1";
	t.tls_version = NULL;
	t.auth_user = NULL;
	t.rcpt = NULL;
	m = message_compose(&t, false, content, sizeof(content) - 1, &size);
	assert_non_null(strstr(m, "([IPv6:2001:db8::1])"));
	assert_null(strstr(m, "Message-ID"));
	assert_null(strstr(m, "using"));
	free(m);

	/* present fields are kept, not duplicated */
	const char with[] = "Date: x\r\nMessage-ID: <m@x>\r\n\r\n";
	m = message_compose(&t, true, with, sizeof(with) - 1, &size);
	assert_null(strstr(m, "<0123456789ABCDEFGHJK@mx.example.org>"));
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_has_header),
		cmocka_unit_test(test_tls_required_no),
		cmocka_unit_test(test_date_format),
		cmocka_unit_test(test_compose),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_feedback.c — reading DSNs (RFC 3464) and ARF reports (RFC 5965), and the VERP return path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "events/feedback.h"
#include "test_util.h"

#define ID "0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"

static const char dsn[] =
	"From: MAILER-DAEMON@mx.far.test\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/report; report-type=delivery-status;\r\n"
	"\tboundary=\"=_b 1\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--=_b 1\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"--=_b 1 is not a delimiter when it is inside a line\r\n"
	"--=_b 1\r\n"
	"Content-Type: message/delivery-status\r\n"
	"\r\n"
	"Reporting-MTA: dns; mx.far.test\r\n"
	"Arrival-Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
	"\r\n"
	"Final-Recipient: rfc822; a@far.test\r\n"
	"Action: Failed\r\n"
	"Status: 5.1.1\r\n"
	"Remote-MTA: dns; inbox.far.test\r\n"
	"Diagnostic-Code: smtp; 550 5.1.1 <a@far.test>:\r\n"
	" mailbox unknown\r\n"
	"\r\n"
	"Original-Recipient: rfc822;b@far.test\r\n"
	"Final-Recipient: rfc822;<B@far.test>\r\n"
	"Action: delayed\r\n"
	"Status: 4.4.1\r\n"
	"\r\n"
	"--=_b 1\r\n"
	"Content-Type: text/rfc822-headers\r\n"
	"\r\n"
	"Return-Path: <bounces+" ID "@bounces.mailwerk.test>\r\n"
	"Message-ID: <" ID "@mx.mailwerk.test>\r\n"
	"\r\n"
	"--=_b 1--\r\n"
	"epilogue\r\n";

static void test_dsn(void **state)
{
	struct feedback f;
	assert_int_equal(feedback_parse(dsn, sizeof(dsn) - 1, &f), FEEDBACK_DSN);
	assert_int_equal(f.rcpt_count, 2);
	assert_string_equal(f.rcpts[0].final_rcpt, "a@far.test");
	assert_string_equal(f.rcpts[0].action, "failed"); /* lower-cased */
	assert_string_equal(f.rcpts[0].status, "5.1.1");
	assert_string_equal(f.rcpts[0].remote_mta, "inbox.far.test");
	assert_string_equal(f.rcpts[0].diagnostic, "550 5.1.1 <a@far.test>: mailbox unknown"); /* unfolded */
	assert_string_equal(f.rcpts[1].final_rcpt, "B@far.test"); /* Final- wins over Original-, brackets go */
	assert_string_equal(f.rcpts[1].action, "delayed");
	assert_string_equal(f.original_message_id, ID "@mx.mailwerk.test");
	assert_string_equal(f.original_return_path, "bounces+" ID "@bounces.mailwerk.test");
}

static void test_dsn_nested_and_lf(void **state)
{
	/* a report wrapped in multipart/mixed, with bare LF line ends (some MTAs, and local tools) */
	const char *m = "Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
			"Content-Type: multipart/report; report-type=delivery-status; boundary=inner\n\n"
			"--inner\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
			"Final-Recipient: rfc822; c@far.test\nAction: failed\nStatus: 5.2.2\n\n--inner--\n--outer--\n";
	struct feedback f;
	assert_int_equal(feedback_parse(m, strlen(m), &f), FEEDBACK_DSN);
	assert_int_equal(f.rcpt_count, 1);
	assert_string_equal(f.rcpts[0].final_rcpt, "c@far.test");
	assert_string_equal(f.rcpts[0].status, "5.2.2");
}

static void test_arf(void **state)
{
	const char *m = "Content-Type: multipart/report; report-type=\"feedback-report\"; boundary=arf\r\n\r\n"
			"--arf\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
			"--arf\r\nContent-Type: message/feedback-report\r\n\r\n"
			"Feedback-Type: Abuse\r\nVersion: 1\r\nOriginal-Mail-From: <bounces+" ID "@bounces.mailwerk.test>\r\n"
			"Original-Rcpt-To: <c@far.test>\r\nOriginal-Rcpt-To: <d@far.test>\r\n\r\n"
			"--arf\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <m1@h>\r\nSubject: x\r\n\r\nbody\r\n--arf--\r\n";
	struct feedback f;
	assert_int_equal(feedback_parse(m, strlen(m), &f), FEEDBACK_ARF);
	assert_string_equal(f.feedback_type, "abuse");
	assert_string_equal(f.original_rcpt, "c@far.test"); /* the first */
	assert_string_equal(f.original_mail_from, "bounces+" ID "@bounces.mailwerk.test");
	assert_string_equal(f.original_message_id, "m1@h");
}

static void test_not_reports(void **state)
{
	static const char *const cases[] = {
		"Subject: Out of office\r\n\r\nBack on Monday.\r\n",
		"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
		"",
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"unterminated\r\n\r\n--",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct feedback f;
		char *m = test_dup(cases[i], strlen(cases[i]));
		enum feedback_kind k = feedback_parse(m, strlen(cases[i]), &f);
		free(m);
		assert_true(k == FEEDBACK_NONE || f.rcpt_count == 0);
	}
}

static void test_hostile(void **state)
{
	/* deep nesting stops at FEEDBACK_MAX_DEPTH; many recipients stop at FEEDBACK_MAX_RCPTS; a
	 * control octet never reaches a field */
	char big[200000];
	size_t o = 0;
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
	struct feedback f;
	feedback_parse(big, o, &f);
	o = (size_t)snprintf(big, sizeof(big), "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
					       "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: x\r\n\r\n");
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "Final-Recipient: rfc822; r%d@x\x01y\r\nAction: failed\r\n\r\n", i);
	assert_int_equal(feedback_parse(big, o, &f), FEEDBACK_DSN);
	assert_int_equal(f.rcpt_count, FEEDBACK_MAX_RCPTS);
	assert_string_equal(f.rcpts[0].final_rcpt, "r0@xy");
}

static void test_return_path(void **state)
{
	char buf[256], id[37], dom[256];
	assert_true(feedback_return_path(ID, "bounces", "mailwerk.test", buf, sizeof(buf)));
	assert_string_equal(buf, "bounces+" ID "@bounces.mailwerk.test");
	assert_true(feedback_return_path_parse("Bounces+0F7E1B2C-3D4E-4F50-8A6B-7C8D9E0F1A2B@BOUNCES.Mailwerk.Test", "bounces",
					       id, dom, sizeof(dom)));
	assert_string_equal(id, ID);
	assert_string_equal(dom, "mailwerk.test");
	static const char *const bad[] = {
		"bounces+" ID "@mailwerk.test",          /* no label */
		"bounces+" ID "@bouncesx.mailwerk.test",
		"bounces+" ID "@bounces.",
		"bounces+" ID "x@bounces.mailwerk.test",
		"bounces+0f7e1b2c_3d4e-4f50-8a6b-7c8d9e0f1a2b@bounces.mailwerk.test",
		"bounce+" ID "@bounces.mailwerk.test",
		"bounces+" ID,
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(feedback_return_path_parse(bad[i], "bounces", id, dom, sizeof(dom)));
	assert_false(feedback_return_path(ID, "bounces", "d", buf, 20)); /* does not fit */
	/* NULL: any one label, a domain's own (custom_return_path) */
	assert_true(feedback_return_path_parse("bounces+" ID "@send.shop.test", NULL, id, dom, sizeof(dom)));
	assert_string_equal(dom, "shop.test");
	assert_true(feedback_return_path_parse("bounces+" ID "@x.y", NULL, id, dom, sizeof(dom)));
	assert_string_equal(dom, "y");
	static const char *const bad_any[] = {
		"bounces+" ID "@shop", "bounces+" ID "@.shop.test", "bounces+" ID "@send.", "bounces+" ID "@",
	};
	for (size_t i = 0; i < sizeof(bad_any) / sizeof(bad_any[0]); i++)
		assert_false(feedback_return_path_parse(bad_any[i], NULL, id, dom, sizeof(dom)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_dsn_nested_and_lf),
		cmocka_unit_test(test_arf),
		cmocka_unit_test(test_not_reports),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_return_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

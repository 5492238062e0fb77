/* test_classify.c — table-driven tests of src/events/classify.c: the bounce type and subtype from
 * the RFC 3463 enhanced status code, from the words of the receiver's reply where the code says
 * little, and never from our own words; malformed codes count as none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/classify.h"

#define PERM BOUNCE_CLASS_PERMANENT
#define TRANS BOUNCE_CLASS_TRANSIENT
#define UNDET BOUNCE_CLASS_UNDETERMINED

struct class_case {
	const char *status; /* NULL: none */
	const char *reply;  /* NULL: none */
	bool remote;
	enum bounce_class_type type;
	enum bounce_class_subtype subtype;
};

static const struct class_case cases[] = {
	/* RFC 3463 §3.2 addressing status */
	{"5.1.1", "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown", true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.1.1", NULL, true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.1.1", "no such domain", false, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.1.2", "bad destination system", true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.1.3", "bad destination mailbox address syntax", true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.1.6", "mailbox has moved", true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.1.10", "null MX", true, PERM, BOUNCE_SUB_NO_EMAIL}, /* RFC 7505 */
	{"4.1.1", "try again", true, TRANS, BOUNCE_SUB_NO_EMAIL},
	{"5.1.7", "bad sender's mailbox address syntax", true, PERM, BOUNCE_SUB_GENERAL},
	{"5.1.8", NULL, true, PERM, BOUNCE_SUB_GENERAL},
	/* §3.3 mailbox status: X.2.2 full is transient in nature, whatever the class */
	{"5.2.2", "552 5.2.2 Mailbox full", true, TRANS, BOUNCE_SUB_MAILBOX_FULL},
	{"4.2.2", "452 4.2.2 Over quota", true, TRANS, BOUNCE_SUB_MAILBOX_FULL},
	{"5.2.2", NULL, false, TRANS, BOUNCE_SUB_MAILBOX_FULL},
	{"5.2.3", "552 5.2.3 Message exceeds maximum size", true, PERM, BOUNCE_SUB_MESSAGE_TOO_LARGE},
	{"5.2.1", "mailbox disabled", true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.2.0", "other mailbox status", true, PERM, BOUNCE_SUB_GENERAL},
	/* §3.4 mail system status */
	{"5.3.4", "552 5.3.4 Message too big for system", true, PERM, BOUNCE_SUB_MESSAGE_TOO_LARGE},
	{"4.3.4", NULL, true, TRANS, BOUNCE_SUB_MESSAGE_TOO_LARGE},
	{"4.3.1", "mail system full", true, TRANS, BOUNCE_SUB_GENERAL},
	/* §3.5 routing: the words decide */
	{"4.4.1", "421 4.4.1 Connection timed out", true, TRANS, BOUNCE_SUB_GENERAL},
	{"4.4.1", NULL, false, TRANS, BOUNCE_SUB_GENERAL},
	{"5.4.4", "Unable to route", true, PERM, BOUNCE_SUB_GENERAL},
	{"4.4.7", "delivery time expired", false, TRANS, BOUNCE_SUB_GENERAL},
	/* §3.7 message content or media */
	{"5.6.0", "Message content rejected", true, PERM, BOUNCE_SUB_CONTENT_REJECTED},
	{"5.6.1", NULL, true, PERM, BOUNCE_SUB_CONTENT_REJECTED},
	{"5.6.3", "conversion required", false, PERM, BOUNCE_SUB_CONTENT_REJECTED},
	/* §3.8 security or policy: content when the receiver says spam, policy otherwise */
	{"5.7.1", "550 5.7.1 Message rejected as spam", true, PERM, BOUNCE_SUB_CONTENT_REJECTED},
	{"5.7.1", "550 5.7.1 Virus found", true, PERM, BOUNCE_SUB_CONTENT_REJECTED},
	{"5.7.1", "550 5.7.1 Relaying denied", true, PERM, BOUNCE_SUB_POLICY_REJECTED},
	{"5.7.1", "spam", false, PERM, BOUNCE_SUB_POLICY_REJECTED}, /* our own words do not count */
	{"5.7.1", NULL, true, PERM, BOUNCE_SUB_POLICY_REJECTED},
	{"5.7.26", "550 5.7.26 This mail has been blocked because the sender is unauthenticated", true, PERM,
	 BOUNCE_SUB_POLICY_REJECTED},
	{"5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy", true, PERM,
	 BOUNCE_SUB_POLICY_REJECTED},
	{"4.7.0", "greylisted", true, TRANS, BOUNCE_SUB_POLICY_REJECTED},
	/* vague codes: the words */
	{"5.0.0", "550 5.0.0 User unknown", true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"5.0.0", "mailbox full", true, PERM, BOUNCE_SUB_MAILBOX_FULL},
	{"5.0.0", "User unknown", false, PERM, BOUNCE_SUB_GENERAL},
	{"5.5.0", "blocked by policy", true, PERM, BOUNCE_SUB_POLICY_REJECTED},
	/* class 2 is no failure: undetermined */
	{"2.0.0", "250 2.0.0 OK", true, UNDET, BOUNCE_SUB_GENERAL},
	/* no code: the receiver's words, as undetermined */
	{NULL, "550 User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{NULL, "550 Requested action not taken: mailbox unavailable", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{NULL, "550 Address rejected", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{NULL, "552 Mailbox full", true, UNDET, BOUNCE_SUB_MAILBOX_FULL},
	{NULL, "452 Quota exceeded", true, UNDET, BOUNCE_SUB_MAILBOX_FULL},
	{NULL, "552 Message size exceeds fixed limit", true, UNDET, BOUNCE_SUB_MESSAGE_TOO_LARGE},
	{NULL, "554 Rejected: SPAM detected", true, UNDET, BOUNCE_SUB_CONTENT_REJECTED},
	{NULL, "554 Your IP is on a blocklist", true, UNDET, BOUNCE_SUB_POLICY_REJECTED},
	{NULL, "554 Transaction failed", true, UNDET, BOUNCE_SUB_GENERAL},
	{NULL, NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{NULL, "", true, UNDET, BOUNCE_SUB_GENERAL},
	/* the first list that matches: no such user before a word of policy */
	{NULL, "User unknown (policy)", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	/* no code, our own text (remote false): nothing is read into it */
	{NULL, "User unknown", false, UNDET, BOUNCE_SUB_GENERAL},
	{NULL, "mailbox full", false, UNDET, BOUNCE_SUB_GENERAL},
	{NULL, "no MX for example.invalid", false, UNDET, BOUNCE_SUB_GENERAL},
	{NULL, NULL, false, UNDET, BOUNCE_SUB_GENERAL},
	/* malformed codes are no code (RFC 3463 §3.1: class 2, 4 or 5; subject and detail 1-3 digits) */
	{"5.1", "User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{"6.1.1", "User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{"5.1.1.1", "User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{"51.1.1", "User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{"5.1000.1", "User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{"5.1.1000", "User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	{"5.1", "User unknown", false, UNDET, BOUNCE_SUB_GENERAL},
	{"6.1.1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"", "mailbox full", true, UNDET, BOUNCE_SUB_MAILBOX_FULL},
	{"5", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"5.", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"5..1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{".1.1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"5.1.", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"5.1.1 ", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{" 5.1.1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"5-1-1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"5.a.1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"0.1.1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"3.1.1", NULL, true, UNDET, BOUNCE_SUB_GENERAL},
	{"550", "User unknown", true, UNDET, BOUNCE_SUB_NO_EMAIL},
	/* the longest well-formed parts */
	{"5.100.100", NULL, true, PERM, BOUNCE_SUB_GENERAL},
	{"5.001.001", NULL, true, PERM, BOUNCE_SUB_NO_EMAIL},
	{"4.007.026", "spam", true, TRANS, BOUNCE_SUB_CONTENT_REJECTED},
};

static void test_classify_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct class_case *c = &cases[i];
		/* heap copies of exactly their strings: a read past the NUL shows */
		char *status = c->status != NULL ? test_dup(c->status, strlen(c->status) + 1) : NULL;
		char *reply = c->reply != NULL ? test_dup(c->reply, strlen(c->reply) + 1) : NULL;
		struct bounce_class got = bounce_classify(status, reply, c->remote);
		if (got.type != c->type || got.subtype != c->subtype)
			fail_msg("case %zu (%s, \"%s\", remote=%d): got %s/%s, want %s/%s", i,
				 c->status != NULL ? c->status : "NULL", c->reply != NULL ? c->reply : "NULL", c->remote,
				 bounce_class_type_str(got.type), bounce_class_subtype_str(got.subtype),
				 bounce_class_type_str(c->type), bounce_class_subtype_str(c->subtype));
		free(status);
		free(reply);
	}
}

/* The words match in any case, anywhere in the reply. */
static void test_classify_words_case(void **state)
{
	static const char *const replies[] = {"USER UNKNOWN", "user unknown", "550 sorry, UsEr UnKnOwN here"};
	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		struct bounce_class c = bounce_classify(NULL, replies[i], true);
		assert_int_equal(c.type, BOUNCE_CLASS_UNDETERMINED);
		assert_int_equal(c.subtype, BOUNCE_SUB_NO_EMAIL);
	}
}

/* Only a well-formed class 5 (but X.2.2) is Permanent: the type that suppresses an address. */
static void test_classify_permanent_only_class5(void **state)
{
	char status[16];
	(void)state;
	for (int cls = 0; cls <= 9; cls++)
		for (int subj = 0; subj <= 8; subj++)
			for (int det = 0; det <= 30; det++) {
				snprintf(status, sizeof(status), "%d.%d.%d", cls, subj, det);
				for (int remote = 0; remote < 2; remote++) {
					struct bounce_class c = bounce_classify(status, "User unknown", remote);
					bool valid = cls == 2 || cls == 4 || cls == 5;
					/* X.2.2 is Transient whatever its class (even 2, which no failure carries) */
					enum bounce_class_type want = valid && subj == 2 && det == 2 ? TRANS
								      : cls == 5			? PERM
								      : cls == 4			? TRANS
													: UNDET;
					if (c.type != want)
						fail_msg("%s: type %s", status, bounce_class_type_str(c.type));
					assert_int_not_equal(c.subtype, BOUNCE_SUB_SUPPRESSED);
				}
			}
}

/* A check that says, when it fails, which rule the code broke. */
#define CHECK_WHY(ok, ...)                                          \
	do {                                                        \
		if (!(ok)) {                                        \
			print_message(__VA_ARGS__);   \
			print_message("\n");                        \
			fail();                                     \
		}                                                   \
	} while (0)

/* RFC 3463 §3.1: class = "2" / "4" / "5", one digit; "05.1.1" is no code. */
static void test_bug_class_leading_zeros(void **state)
{
	(void)state;
	static const char *const codes[] = {"05.1.1", "005.1.1", "04.4.1"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct bounce_class c = bounce_classify(codes[i], NULL, true);
		CHECK_WHY(c.type == BOUNCE_CLASS_UNDETERMINED,
			  "bounce_classify: status_parse takes a class of up to 3 digits, so \"%s\" reads as "
			  "class %s; RFC 3463 §3.1 allows one digit",
			  codes[i], bounce_class_type_str(c.type));
	}
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(bounce_class_type_str(BOUNCE_CLASS_UNDETERMINED), "Undetermined");
	assert_string_equal(bounce_class_type_str(BOUNCE_CLASS_PERMANENT), "Permanent");
	assert_string_equal(bounce_class_type_str(BOUNCE_CLASS_TRANSIENT), "Transient");
	static const char *const subs[] = {"General",         "NoEmail",        "MailboxFull", "MessageTooLarge",
					   "ContentRejected", "PolicyRejected", "Suppressed"};
	for (unsigned s = 0; s <= BOUNCE_SUB_SUPPRESSED; s++)
		assert_string_equal(bounce_class_subtype_str((enum bounce_class_subtype)s), subs[s]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_classify_words_case),
		cmocka_unit_test(test_classify_permanent_only_class5),
		cmocka_unit_test(test_bug_class_leading_zeros),
		cmocka_unit_test(test_class_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

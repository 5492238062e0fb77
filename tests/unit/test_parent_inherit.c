/* test_parent_inherit.c — what an upgrading parent hands to the program it executes
 * (parent_inherit.c), and the upgrade's messages to the worker (parent_msg.c: the drain's
 * deadline, an upgrade's outcome), each with hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/parent_inherit.h"
#include "server/parent_msg.h"
#include "test_util.h"

static void test_inherit_round_trip(void **state)
{
	struct parent_inherit in = {.seq = 3, .worker = 4242, .signer = 4243, .ipc = 5, .nsocks = 2};
	in.socks[0] = (struct parent_socket){.role = CONF_LISTEN_SMTP, .addr = "127.0.0.1:25", .fd = 6};
	in.socks[1] = (struct parent_socket){.role = CONF_LISTEN_SUBMISSION, .addr = "[::1]:587", .fd = 7};
	char text[PARENT_INHERIT_MAX + 1];
	int len = parent_inherit_format(&in, text, sizeof(text));
	assert_true(len > 0);
	assert_string_equal(text,
			    "v1 seq=3 worker=4242 signer=4243 ipc=5 sock=6,smtp,127.0.0.1:25 sock=7,submission,[::1]:587");
	struct parent_inherit out;
	const char *err = NULL;
	char *heap = test_dup(text, (size_t)len + 1);
	assert_int_equal(parent_inherit_parse(heap, &out, &err), 0);
	free(heap);
	assert_int_equal(out.seq, 3);
	assert_int_equal(out.worker, 4242);
	assert_int_equal(out.signer, 4243);
	assert_int_equal(out.ipc, 5);
	assert_int_equal(out.nsocks, 2);
	assert_int_equal(out.socks[1].role, CONF_LISTEN_SUBMISSION);
	assert_string_equal(out.socks[1].addr, "[::1]:587");
	assert_int_equal(out.socks[1].fd, 7);
	/* no listeners at all is a hand-over too, and no signer (it was being restarted) */
	assert_int_equal(parent_inherit_parse("v1 seq=1 worker=2 signer=0 ipc=3", &out, &err), 0);
	assert_int_equal(out.nsocks, 0);
	assert_int_equal(out.signer, 0);
	/* the longest: every socket with the longest role and address fits */
	in.nsocks = IPC_FDS_MAX;
	for (size_t i = 0; i < IPC_FDS_MAX; i++) {
		in.socks[i].role = CONF_LISTEN_SUBMISSIONS;
		memset(in.socks[i].addr, 'a', sizeof(in.socks[i].addr) - 1);
		in.socks[i].addr[sizeof(in.socks[i].addr) - 1] = '\0';
		in.socks[i].fd = PARENT_INHERIT_FD_MAX - (int)i;
	}
	in.seq = 0xffffffffu;
	in.worker = PARENT_INHERIT_PID_MAX;
	in.signer = PARENT_INHERIT_PID_MAX - 1;
	in.ipc = 3;
	len = parent_inherit_format(&in, text, sizeof(text));
	assert_true(len > 0);
	assert_int_equal(parent_inherit_parse(text, &out, &err), 0);
	assert_int_equal(out.nsocks, IPC_FDS_MAX);
	/* too small an output */
	assert_int_equal(parent_inherit_format(&in, text, 20), -1);
}

static void test_inherit_hostile(void **state)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{"", "version"},
		{"v2 seq=1 worker=2 signer=0 ipc=3", "version"},
		{"v1", "seq="},
		{"v1 seq=0 worker=2 signer=0 ipc=3", "seq="},
		{"v1 seq=01 worker=2 signer=0 ipc=3", "seq="},
		{"v1 seq=4294967296 worker=2 signer=0 ipc=3", "seq="},
		{"v1 seq=-1 worker=2 signer=0 ipc=3", "seq="},
		{"v1 worker=2 seq=1 ipc=3", "seq="},
		{"v1 seq=1 worker=1 ipc=3", "worker="},
		{"v1 seq=1 worker=4194305 ipc=3", "worker="},
		{"v1 seq=1 worker=2x ipc=3", "worker="},
		{"v1 seq=1 worker=2 ipc=3", "signer="},
		{"v1 seq=1 worker=2 signer=1 ipc=3", "signer="},
		{"v1 seq=1 worker=2 signer=00 ipc=3", "signer="},
		{"v1 seq=1 worker=2 signer=4194305 ipc=3", "signer="},
		{"v1 seq=1 worker=2 signer=-3 ipc=3", "signer="},
		{"v1 seq=1 worker=2 signer= ipc=3", "signer="},
		{"v1 seq=1 worker=2 ipc=3 signer=4", "signer="},
		{"v1 seq=1 worker=2 signer=2 ipc=3", "the worker's"},
		{"v1 seq=1 worker=2 signer=0 ipc=2", "ipc="},
		{"v1 seq=1 worker=2 signer=0 ipc=1048577", "ipc="},
		{"v1 seq=1 worker=2 signer=0", "ipc="},
		{"v1 seq=1 worker=2 signer=0 ipc=3 ", "trailing"},
		{"v1 seq=1 worker=2 signer=0 ipc=3  sock=4,smtp,a:1", "empty field"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 seq=2", "not a socket"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4", "descriptor, role and address"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4,smtp", "descriptor, role and address"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=2,smtp,a:1", "from 3 up"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=,smtp,a:1", "from 3 up"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4,smtpx,a:1", "unknown role"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4,,a:1", "unknown role"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4,smtp,", "empty or too long"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4,smtp,a\x01:1", "printable"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4,smtp,a\xc3\xa9:1", "printable"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=3,smtp,a:1", "socketpair"},
		{"v1 seq=1 worker=2 signer=0 ipc=3 sock=4,smtp,a:1 sock=4,pop3,b:2", "twice"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parent_inherit out;
		const char *err = NULL;
		char *heap = test_dup(cases[i].text, strlen(cases[i].text) + 1);
		if (parent_inherit_parse(heap, &out, &err) != -1 || err == NULL || strstr(err, cases[i].error) == NULL)
			fail_msg("%s: %s (wanted %s)", cases[i].text, err != NULL ? err : "accepted", cases[i].error);
		free(heap);
	}
	/* an address one octet too long */
	char text[256];
	char addr[sizeof(((struct parent_socket *)0)->addr) + 1];
	memset(addr, 'a', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	snprintf(text, sizeof(text), "v1 seq=1 worker=2 signer=0 ipc=3 sock=4,smtp,%s", addr);
	struct parent_inherit out;
	const char *err = NULL;
	assert_int_equal(parent_inherit_parse(text, &out, &err), -1);
	/* more sockets than a worker can be sent */
	char *many = malloc(PARENT_INHERIT_MAX + 2);
	size_t used = (size_t)snprintf(many, PARENT_INHERIT_MAX + 1, "v1 seq=1 worker=2 signer=0 ipc=3");
	for (int i = 0; i <= IPC_FDS_MAX; i++)
		used += (size_t)snprintf(many + used, PARENT_INHERIT_MAX + 1 - used, " sock=%d,smtp,a:%d", 10 + i, i);
	assert_int_equal(parent_inherit_parse(many, &out, &err), -1);
	assert_non_null(strstr(err, "more sockets"));
	/* longer than any hand-over */
	memset(many, 'a', PARENT_INHERIT_MAX + 1);
	many[PARENT_INHERIT_MAX + 1] = '\0';
	assert_int_equal(parent_inherit_parse(many, &out, &err), -1);
	assert_non_null(strstr(err, "longer"));
	free(many);
}

static void test_drain_payload(void **state)
{
	char text[16];
	unsigned secs = 99;
	const char *err = NULL;
	assert_int_equal(parent_drain_format(60, text, sizeof(text)), 2);
	assert_int_equal(parent_drain_parse((const unsigned char *)text, 2, &secs, &err), 0);
	assert_int_equal(secs, 60);
	assert_int_equal(parent_drain_parse((const unsigned char *)"0", 1, &secs, &err), 0);
	assert_int_equal(secs, 0);
	assert_int_equal(parent_drain_parse((const unsigned char *)"86400", 5, &secs, &err), 0);
	static const char *const bad[] = {"", "86401", "-1", "1x", "01", " 1", "99999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *heap = test_dup(bad[i], strlen(bad[i]));
		if (parent_drain_parse((const unsigned char *)heap, strlen(bad[i]), &secs, &err) != -1)
			fail_msg("accepted %s", bad[i]);
		free(heap);
	}
	assert_int_equal(parent_drain_format(60, text, 2), -1);
}

static void test_upgrade_outcome(void **state)
{
	struct parent_upgrade_outcome o = {.seq = 7, .done = true}, back;
	char text[PARENT_UPGRADE_REASON_MAX + 32];
	const char *err = NULL;
	int len = parent_upgrade_format(&o, text, sizeof(text));
	assert_string_equal(text, "7 done");
	assert_int_equal(parent_upgrade_parse((const unsigned char *)text, (size_t)len, &back, &err), 0);
	assert_true(back.done && back.seq == 7 && back.reason[0] == '\0');
	o = (struct parent_upgrade_outcome){.seq = 8};
	snprintf(o.reason, sizeof(o.reason), "%s", "cannot execute /usr/bin/mailwerk:\tNo such file");
	len = parent_upgrade_format(&o, text, sizeof(text));
	/* a control character becomes '?' on the way */
	assert_string_equal(text, "8 failed cannot execute /usr/bin/mailwerk:?No such file");
	assert_int_equal(parent_upgrade_parse((const unsigned char *)text, (size_t)len, &back, &err), 0);
	assert_false(back.done);
	assert_int_equal(back.seq, 8);
	assert_string_equal(back.reason, "cannot execute /usr/bin/mailwerk:?No such file");
	/* a failure always says something */
	o.reason[0] = '\0';
	len = parent_upgrade_format(&o, text, sizeof(text));
	assert_string_equal(text, "8 failed ?");
	/* the longest reason goes through; the reader refuses longer */
	memset(o.reason, 'r', PARENT_UPGRADE_REASON_MAX);
	o.reason[PARENT_UPGRADE_REASON_MAX] = '\0';
	len = parent_upgrade_format(&o, text, sizeof(text));
	assert_int_equal(parent_upgrade_parse((const unsigned char *)text, (size_t)len, &back, &err), 0);
	assert_int_equal(strlen(back.reason), PARENT_UPGRADE_REASON_MAX);
	static const char *const bad[] = {
		"", "done", " done", "0 done", "01 done", "4294967296 done", "7 done ", "7 Done", "7 failed", "7 failed ",
		"7 ok", "7  done", "x done",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *heap = test_dup(bad[i], strlen(bad[i]));
		if (parent_upgrade_parse((const unsigned char *)heap, strlen(bad[i]), &back, &err) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		free(heap);
	}
	const char ctl[] = "7 failed bad\nline";
	assert_int_equal(parent_upgrade_parse((const unsigned char *)ctl, sizeof(ctl) - 1, &back, &err), -1);
	char longer[PARENT_UPGRADE_REASON_MAX + 16];
	len = snprintf(longer, sizeof(longer), "7 failed %0*d", PARENT_UPGRADE_REASON_MAX + 1, 0);
	assert_int_equal(parent_upgrade_parse((const unsigned char *)longer, (size_t)len, &back, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inherit_round_trip),
		cmocka_unit_test(test_inherit_hostile),
		cmocka_unit_test(test_drain_payload),
		cmocka_unit_test(test_upgrade_outcome),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

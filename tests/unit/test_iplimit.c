/* test_iplimit.c — who counts as one client (IPv4 address, IPv6 prefix), the per-client connection
 * and failure counts kept by that key (repeated credentials, the window, the sweep), and the parser
 * of client keys an operator types (`mailwerk auth unban`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "net/iplimit.h"
#include "net/listener.h"

static const char *key_of(const char *ip, unsigned prefix)
{
	static char key[NET_CLIENT_KEY_SIZE];
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	}
	net_client_key((const struct sockaddr *)&ss, prefix, key, sizeof(key));
	return key;
}

static void test_client_key(void **state)
{
	(void)state;
	assert_string_equal(key_of("192.0.2.7", 64), "192.0.2.7");
	assert_string_equal(key_of("::ffff:192.0.2.7", 64), "192.0.2.7"); /* IPv4-mapped: the IPv4 client */
	assert_string_equal(key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64), "2001:db8:1:2::/64");
	assert_string_equal(key_of("2001:db8:1:2::1", 64), "2001:db8:1:2::/64");
	assert_string_equal(key_of("2001:db8:1:2:ffff::1", 48), "2001:db8:1::/48");
	assert_string_equal(key_of("2001:db8:1:2:ffff::1", 60), "2001:db8:1::/60");
	assert_string_equal(key_of("2001:db8:1:1f::1", 60), "2001:db8:1:10::/60"); /* a prefix inside a group */
	assert_string_equal(key_of("2001:db8::1", 128), "2001:db8::1");
	assert_string_equal(key_of("::1", 64), "::/64");
	/* the longest key fits */
	assert_string_equal(key_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 127),
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
}

/* Addresses rotated inside one /64 are one client: its connections and failures add up. */
static void test_rotation_inside_prefix_counts_once(void **state)
{
	(void)state;
	struct iplimit *t = iplimit_new();
	char key[8][NET_CLIENT_KEY_SIZE];
	static const char *const ips[] = {"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:1234::9",
					  "2001:db8:0:1:ffff:ffff:ffff:ffff"};

	time_t now = time(NULL);

	assert_non_null(t);
	for (unsigned i = 0; i < 4; i++) {
		strcpy(key[i], key_of(ips[i], 64));
		assert_int_equal(iplimit_conn_add(t, key[i]), i + 1);
		bool repeat;
		assert_int_equal(iplimit_auth_fail(t, key[i], now, 0, &repeat), i + 1);
		assert_false(repeat);
	}
	assert_int_equal(iplimit_conn_count(t, key_of("2001:db8:0:2::1", 64)), 0); /* the next /64 is another */
	for (unsigned i = 0; i < 4; i++)
		iplimit_conn_del(t, key[i]);
	assert_int_equal(iplimit_conn_count(t, key[0]), 0);
	assert_int_equal(iplimit_auth_failures(t, key[0], now), 4); /* failures outlive the connections */
	assert_int_equal(iplimit_auth_failures(t, key[0], now + IPLIMIT_AUTH_WINDOW + 1), 0);
	iplimit_free(t);
}

/* The same credentials again (the same tag) keep the count; a tag pushed out of the last
 * IPLIMIT_AUTH_RECENT counts again; tag 0 (none known) always counts. */
static void test_repeated_credentials_count_once(void **state)
{
	(void)state;
	struct iplimit *t = iplimit_new();
	time_t now = 1000000;
	bool repeat;

	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now, 11, &repeat), 1);
	assert_false(repeat);
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 1, 22, &repeat), 2);
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 2, 11, &repeat), 2);
	assert_true(repeat);
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 3, 22, &repeat), 2);
	assert_true(repeat);
	/* another client's tags are its own */
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.2", now, 11, &repeat), 1);
	assert_false(repeat);
	/* 33, 44, 55 fill the ring: 11 is pushed out and counts again, 44 is still there */
	for (uint64_t tag = 33; tag <= 55; tag += 11)
		assert_false((iplimit_auth_fail(t, "192.0.2.1", now + 4, tag, &repeat), repeat));
	assert_int_equal(iplimit_auth_failures(t, "192.0.2.1", now + 4), 5);
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 5, 11, &repeat), 6);
	assert_false(repeat);
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 5, 44, &repeat), 6);
	assert_true(repeat);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 6, 0, &repeat), 7 + i);
	/* a repeat keeps the window open: the count outlives the first failure's window */
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 6 + IPLIMIT_AUTH_WINDOW, 44, &repeat), 9);
	assert_true(repeat);
	/* the window forgets the count and the tags */
	assert_int_equal(iplimit_auth_fail(t, "192.0.2.1", now + 7 + 2 * IPLIMIT_AUTH_WINDOW, 44, &repeat), 1);
	assert_false(repeat);
	/* a success forgets them at once */
	iplimit_auth_clear(t, "192.0.2.1");
	assert_int_equal(iplimit_auth_failures(t, "192.0.2.1", now + 8 + 2 * IPLIMIT_AUTH_WINDOW), 0);
	assert_false((iplimit_auth_fail(t, "192.0.2.1", now + 8 + 2 * IPLIMIT_AUTH_WINDOW, 44, &repeat), repeat));
	iplimit_auth_clear(t, "192.0.2.99"); /* nothing known: nothing happens */
	iplimit_free(t);
}

/* The sweep drops what is over and keeps clients with connections or failures in the window. */
static void test_sweep(void **state)
{
	(void)state;
	struct iplimit *t = iplimit_new();
	time_t now = 2000000;
	bool repeat;
	char ip[32];
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 256, i % 256);
		iplimit_auth_fail(t, ip, now, i + 1, &repeat);
	}
	iplimit_conn_add(t, "192.0.2.7");
	iplimit_auth_fail(t, "192.0.2.8", now + IPLIMIT_AUTH_WINDOW, 0, &repeat);
	for (unsigned i = 0; i < 1024 / 64 + 1; i++)
		iplimit_sweep(t, now + IPLIMIT_AUTH_WINDOW + 1, 64);
	assert_int_equal(iplimit_auth_failures(t, "10.0.0.1", now + IPLIMIT_AUTH_WINDOW + 1), 0);
	assert_int_equal(iplimit_conn_count(t, "192.0.2.7"), 1);
	assert_int_equal(iplimit_auth_failures(t, "192.0.2.8", now + IPLIMIT_AUTH_WINDOW + 1), 1);
	iplimit_sweep(t, now, 100000); /* more buckets than there are: each once */
	iplimit_conn_del(t, "192.0.2.7");
	iplimit_free(t);
}

/* What an operator types: addresses and prefixes as the server counts them; anything else no. */
static void test_key_parse(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		unsigned prefix;
		const char *key; /* NULL: refused */
	} cases[] = {
		{"192.0.2.7", 64, "192.0.2.7"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7"},
		{"2001:db8:1:2::99", 64, "2001:db8:1:2::/64"},
		{"2001:DB8:1:2:0:0:0:99", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::/64", 48, "2001:db8:1:2::/64"}, /* a prefix says its own length */
		{"2001:db8:1:2::5/48", 64, "2001:db8:1::/48"},
		{"2001:db8::1", 128, "2001:db8::1"},
		{"2001:db8::1/128", 64, "2001:db8::1"},
		{"2001:db8::/16", 64, "2001::/16"},
		{"", 64, NULL},
		{" 192.0.2.7", 64, NULL},
		{"192.0.2.7 ", 64, NULL},
		{"192.0.2.7/32", 64, NULL},
		{"192.0.2", 64, NULL},
		{"192.0.2.256", 64, NULL},
		{"192.0.2.07", 64, NULL},
		{"example.org", 64, NULL},
		{"[2001:db8::1]", 64, NULL},
		{"2001:db8::1%lo", 64, NULL},
		{"2001:db8::/", 64, NULL},
		{"2001:db8::/0", 64, NULL},
		{"2001:db8::/15", 64, NULL},
		{"2001:db8::/129", 64, NULL},
		{"2001:db8::/064", 64, NULL},
		{"2001:db8::/1000", 64, NULL},
		{"2001:db8::/64/64", 64, NULL},
		{"2001:db8::/64 ", 64, NULL},
		{"2001:db8::/+64", 64, NULL},
		{"2001:db8::/-64", 64, NULL},
		{"/64", 64, NULL},
		{"::ffff:192.0.2.7/120", 64, NULL},
		{"2001:db8:\xff::1", 64, NULL},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 64, NULL},
		{"1111:2222:3333:4444:5555:6666:7777:8888/127", 64, "1111:2222:3333:4444:5555:6666:7777:8888/127"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char key[NET_CLIENT_KEY_SIZE] = "";
		bool ok = iplimit_key_parse(cases[i].in, cases[i].prefix, key);
		if (cases[i].key == NULL && ok)
			fail_msg("\"%s\": took it as %s", cases[i].in, key);
		if (cases[i].key != NULL && (!ok || strcmp(key, cases[i].key) != 0))
			fail_msg("\"%s\": got %s, want %s", cases[i].in, ok ? key : "(refused)", cases[i].key);
	}
	/* overlong input, and input that is not a string of the key's size, are refused unread */
	char big[4096];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char key[NET_CLIENT_KEY_SIZE];
	assert_false(iplimit_key_parse(big, 64, key));
	memcpy(big, "192.0.2.7", 9);
	assert_false(iplimit_key_parse(big, 64, key));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_key),
		cmocka_unit_test(test_rotation_inside_prefix_counts_once),
		cmocka_unit_test(test_repeated_credentials_count_once),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_key_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

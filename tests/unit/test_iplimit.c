/* test_iplimit.c — who counts as one client (IPv4 address, IPv6 prefix) and the per-client
 * connection and failure counts kept by that key. */
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
		assert_int_equal(iplimit_auth_fail(t, key[i], now), i + 1);
	}
	assert_int_equal(iplimit_conn_count(t, key_of("2001:db8:0:2::1", 64)), 0); /* the next /64 is another */
	for (unsigned i = 0; i < 4; i++)
		iplimit_conn_del(t, key[i]);
	assert_int_equal(iplimit_conn_count(t, key[0]), 0);
	assert_int_equal(iplimit_auth_failures(t, key[0], now), 4); /* failures outlive the connections */
	assert_int_equal(iplimit_auth_failures(t, key[0], now + IPLIMIT_AUTH_WINDOW + 1), 0);
	iplimit_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_key),
		cmocka_unit_test(test_rotation_inside_prefix_counts_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

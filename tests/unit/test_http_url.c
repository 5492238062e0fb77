/* test_http_url.c — user-given http(s) URLs (net/http_url.h): what parses, into what, and what is
 * refused and why; the SSRF address classes for IPv4, IPv6 and IPv6 addresses that carry IPv4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "net/http_url.h"
#include "test_util.h"

static void test_parse_good(void **state)
{
	(void)state;
	static const struct {
		const char *url;
		bool https;
		enum http_url_host_kind kind;
		const char *host;
		unsigned port;
		const char *path; /* what follows the authority */
	} cases[] = {
		{"https://hooks.example.com/resend", true, HTTP_URL_HOST_NAME, "hooks.example.com", 443,
		 "/resend"},
		{"http://hooks.example.com", false, HTTP_URL_HOST_NAME, "hooks.example.com", 80, ""},
		{"HTTPS://Hooks.Example.COM:8443/a/b?x=1&y=%2F", true, HTTP_URL_HOST_NAME,
		 "hooks.example.com", 8443, "/a/b?x=1&y=%2F"},
		{"https://example.com.:1/", true, HTTP_URL_HOST_NAME, "example.com.", 1, "/"},
		{"https://_svc.example.com/", true, HTTP_URL_HOST_NAME, "_svc.example.com", 443, "/"},
		{"https://xn--bcher-kva.example/", true, HTTP_URL_HOST_NAME, "xn--bcher-kva.example", 443,
		 "/"},
		{"http://localhost:8080/hook", false, HTTP_URL_HOST_NAME, "localhost", 8080, "/hook"},
		{"http://127.0.0.1:9000/w", false, HTTP_URL_HOST_IPV4, "127.0.0.1", 9000, "/w"},
		{"http://192.0.2.10.", false, HTTP_URL_HOST_IPV4, "192.0.2.10", 80, ""},
		{"https://[2001:db8::1]/x", true, HTTP_URL_HOST_IPV6, "2001:db8::1", 443, "/x"},
		{"https://[::FFFF:127.0.0.1]:444", true, HTTP_URL_HOST_IPV6, "::ffff:127.0.0.1", 444, ""},
		{"https://a.example?q", true, HTTP_URL_HOST_NAME, "a.example", 443, "?q"},
		{"https://a.example/p;x=1/@:!$&'()*+,=~", true, HTTP_URL_HOST_NAME, "a.example", 443,
		 "/p;x=1/@:!$&'()*+,=~"},
		{"https://1.example/", true, HTTP_URL_HOST_NAME, "1.example", 443,
		 "/"}, /* digits, but not last */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_url u;
		const char *why = NULL;
		size_t len = strlen(cases[i].url);
		char *copy = test_dup(cases[i].url, len); /* no NUL after it: reads past the end show */
		enum http_url_error e = http_url_parse(copy, len, &u, &why);
		free(copy);
		if (e != HTTP_URL_OK)
			fail_msg("case %zu %s: %s (%s)", i, cases[i].url, http_url_error_str(e), why);
		assert_int_equal(u.https, cases[i].https);
		assert_int_equal(u.host_kind, cases[i].kind);
		assert_string_equal(u.host, cases[i].host);
		assert_int_equal(u.port, cases[i].port);
		assert_string_equal(cases[i].url + u.path_off, cases[i].path);
	}
}

static void test_parse_bad(void **state)
{
	(void)state;
	static const struct {
		const char *url;
		enum http_url_error want;
	} cases[] = {
		{"", HTTP_URL_ERR_SCHEME},
		{"ftp://example.com/", HTTP_URL_ERR_SCHEME},
		{"file:///etc/passwd", HTTP_URL_ERR_SCHEME},
		{"gopher://127.0.0.1:25/", HTTP_URL_ERR_SCHEME},
		{"https:/example.com", HTTP_URL_ERR_SCHEME},
		{"example.com/hook", HTTP_URL_ERR_SCHEME},
		{"https://", HTTP_URL_ERR_HOST},
		{"https:///path", HTTP_URL_ERR_HOST},
		{"https://user:pw@example.com/", HTTP_URL_ERR_USERINFO},
		{"https://example.com@127.0.0.1/", HTTP_URL_ERR_USERINFO},
		{"https://@example.com/", HTTP_URL_ERR_USERINFO},
		/* numbers that WHATWG and libcurl read as IPv4 addresses (127.0.0.1 in disguise) */
		{"http://2130706433/", HTTP_URL_ERR_HOST},
		{"http://0x7f000001/", HTTP_URL_ERR_HOST},
		{"http://0x7f.0.0.1/", HTTP_URL_ERR_HOST},
		{"http://127.1/", HTTP_URL_ERR_HOST},
		{"http://0177.0.0.1/", HTTP_URL_ERR_HOST},
		{"http://127.0.0.01/", HTTP_URL_ERR_HOST},
		{"http://256.0.0.1/", HTTP_URL_ERR_HOST},
		{"http://1.2.3.4.5/", HTTP_URL_ERR_HOST},
		{"http://example.123/", HTTP_URL_ERR_HOST},
		{"http://exa mple.com/", HTTP_URL_ERR_HOST},
		{"http://exa%6dple.com/", HTTP_URL_ERR_HOST},
		{"http://-example.com/", HTTP_URL_ERR_HOST},
		{"http://example-.com/", HTTP_URL_ERR_HOST},
		{"http://a..b/", HTTP_URL_ERR_HOST},
		{"http://.a/", HTTP_URL_ERR_HOST},
		{"http://b\xc3\xbc"
		 "cher.example/",
		 HTTP_URL_ERR_HOST},
		{"http://[::1/", HTTP_URL_ERR_HOST},
		{"http://[fe80::1%25eth0]/", HTTP_URL_ERR_HOST},
		{"http://[::1]x/", HTTP_URL_ERR_HOST},
		{"http://[1.2.3.4]/", HTTP_URL_ERR_HOST},
		{"http://[]/", HTTP_URL_ERR_HOST},
		{"http://example.com:/", HTTP_URL_ERR_PORT},
		{"http://example.com:0/", HTTP_URL_ERR_PORT},
		{"http://example.com:65536/", HTTP_URL_ERR_PORT},
		{"http://example.com:123456/", HTTP_URL_ERR_PORT},
		{"http://example.com:8a/", HTTP_URL_ERR_PORT},
		{"http://example.com:+80/", HTTP_URL_ERR_PORT},
		{"http://example.com:80:80/", HTTP_URL_ERR_PORT},
		{"https://example.com/a b", HTTP_URL_ERR_CHAR},
		{"https://example.com/a\r\nHost: evil", HTTP_URL_ERR_CHAR},
		{"https://example.com/\xc3\xbc", HTTP_URL_ERR_CHAR},
		{"https://example.com/%", HTTP_URL_ERR_CHAR},
		{"https://example.com/%4", HTTP_URL_ERR_CHAR},
		{"https://example.com/%zz", HTTP_URL_ERR_CHAR},
		{"https://example.com/<x>", HTTP_URL_ERR_CHAR},
		{"https://example.com/a\\b", HTTP_URL_ERR_CHAR},
		{"https://example.com/#frag", HTTP_URL_ERR_FRAGMENT},
		{"https://example.com#", HTTP_URL_ERR_FRAGMENT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_url u;
		const char *why = NULL;
		size_t len = strlen(cases[i].url);
		char *copy = test_dup(cases[i].url, len);
		enum http_url_error e = http_url_parse(copy, len, &u, &why);
		free(copy);
		if (e != cases[i].want)
			fail_msg("case %zu %s: %s, want %s", i, cases[i].url, http_url_error_str(e),
				 http_url_error_str(cases[i].want));
		assert_non_null(why);
	}
	/* a NUL inside the given length is a character like any other control */
	struct http_url u;
	const char *why;
	assert_int_equal(http_url_parse("https://a.example/x\0y", 21, &u, &why), HTTP_URL_ERR_CHAR);
	assert_int_equal(http_url_parse("https://a.exa\0mple/", 19, &u, &why), HTTP_URL_ERR_HOST);
}

static void test_parse_lengths(void **state)
{
	(void)state;
	char url[HTTP_URL_MAX + 2];
	struct http_url u;
	const char *why;
	memcpy(url, "https://a.example/", 18);
	memset(url + 18, 'x', sizeof(url) - 18);
	assert_int_equal(http_url_parse(url, HTTP_URL_MAX, &u, &why), HTTP_URL_OK);
	assert_int_equal(http_url_parse(url, HTTP_URL_MAX + 1, &u, &why), HTTP_URL_ERR_TOO_LONG);
	/* a 63-octet label is fine, 64 is not; a name of 253 octets is fine, 254 is not */
	char host[300];
	int n = snprintf(host, sizeof(host), "https://%s.example/",
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(http_url_parse(host, (size_t)n, &u, &why), HTTP_URL_OK);
	n = snprintf(host, sizeof(host), "https://%s.example/",
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(http_url_parse(host, (size_t)n, &u, &why), HTTP_URL_ERR_HOST);
	char name[260];
	for (size_t len = 253; len <= 254; len++) {
		for (size_t i = 0; i < len; i++)
			name[i] = (i % 50 == 49) ? '.' : 'a';
		name[len] = '\0';
		n = snprintf(host, sizeof(host), "https://%s/", name);
		assert_int_equal(http_url_parse(host, (size_t)n, &u, &why),
				 len == 253 ? HTTP_URL_OK : HTTP_URL_ERR_HOST);
	}
}

static enum http_url_addr_class classify_text(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		a6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &a6->sin6_addr), 1);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		a4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &a4->sin_addr), 1);
	}
	return http_url_addr_classify((const struct sockaddr *)&ss);
}

static void test_addr_classes(void **state)
{
	(void)state;
	static const struct {
		const char *addr;
		enum http_url_addr_class want;
	} cases[] = {
		{"0.0.0.0", HTTP_URL_ADDR_UNSPECIFIED},
		{"0.1.2.3", HTTP_URL_ADDR_UNSPECIFIED},
		{"127.0.0.1", HTTP_URL_ADDR_LOOPBACK},
		{"127.255.255.254", HTTP_URL_ADDR_LOOPBACK},
		{"10.0.0.1", HTTP_URL_ADDR_PRIVATE},
		{"10.255.255.255", HTTP_URL_ADDR_PRIVATE},
		{"172.16.0.1", HTTP_URL_ADDR_PRIVATE},
		{"172.31.255.255", HTTP_URL_ADDR_PRIVATE},
		{"172.15.255.255", HTTP_URL_ADDR_PUBLIC},
		{"172.32.0.0", HTTP_URL_ADDR_PUBLIC},
		{"192.168.1.1", HTTP_URL_ADDR_PRIVATE},
		{"192.169.0.1", HTTP_URL_ADDR_PUBLIC},
		{"169.254.169.254", HTTP_URL_ADDR_LINK_LOCAL}, /* the cloud metadata service */
		{"100.64.0.1", HTTP_URL_ADDR_SHARED},
		{"100.127.255.255", HTTP_URL_ADDR_SHARED},
		{"100.63.255.255", HTTP_URL_ADDR_PUBLIC},
		{"100.128.0.0", HTTP_URL_ADDR_PUBLIC},
		{"224.0.0.1", HTTP_URL_ADDR_MULTICAST},
		{"239.255.255.255", HTTP_URL_ADDR_MULTICAST},
		{"240.0.0.1", HTTP_URL_ADDR_RESERVED},
		{"255.255.255.255", HTTP_URL_ADDR_RESERVED},
		{"8.8.8.8", HTTP_URL_ADDR_PUBLIC},
		{"192.0.2.1", HTTP_URL_ADDR_PUBLIC},
		{"::", HTTP_URL_ADDR_UNSPECIFIED},
		{"::1", HTTP_URL_ADDR_LOOPBACK},
		{"fe80::1", HTTP_URL_ADDR_LINK_LOCAL},
		{"febf::1", HTTP_URL_ADDR_LINK_LOCAL},
		{"fc00::1", HTTP_URL_ADDR_UNIQUE_LOCAL},
		{"fdff:ffff::1", HTTP_URL_ADDR_UNIQUE_LOCAL},
		{"fec0::1", HTTP_URL_ADDR_UNIQUE_LOCAL},
		{"ff02::1", HTTP_URL_ADDR_MULTICAST},
		{"2001:4860:4860::8888", HTTP_URL_ADDR_PUBLIC},
		{"2001:db8::1", HTTP_URL_ADDR_PUBLIC},
		/* IPv4 inside IPv6: judged by the IPv4 address */
		{"::ffff:127.0.0.1", HTTP_URL_ADDR_LOOPBACK},
		{"::ffff:10.1.2.3", HTTP_URL_ADDR_PRIVATE},
		{"::ffff:8.8.8.8", HTTP_URL_ADDR_PUBLIC},
		{"::127.0.0.1", HTTP_URL_ADDR_LOOPBACK},
		{"::169.254.169.254", HTTP_URL_ADDR_LINK_LOCAL},
		{"64:ff9b::7f00:1", HTTP_URL_ADDR_LOOPBACK},
		{"64:ff9b::808:808", HTTP_URL_ADDR_PUBLIC},
		{"2002:c0a8:101::1", HTTP_URL_ADDR_PRIVATE}, /* 6to4 of 192.168.1.1 */
		{"2002:808:808::1", HTTP_URL_ADDR_PUBLIC},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum http_url_addr_class c = classify_text(cases[i].addr);
		if (c != cases[i].want)
			fail_msg("%s: %s, want %s", cases[i].addr, http_url_addr_class_str(c),
				 http_url_addr_class_str(cases[i].want));
	}
	struct sockaddr sa = {.sa_family = AF_UNIX};
	assert_int_equal(http_url_addr_classify(&sa), HTTP_URL_ADDR_RESERVED);
}

/* The parsed address of a literal is the one classified, with the port. */
static void test_parse_gives_address(void **state)
{
	(void)state;
	struct http_url u;
	const char *why;
	const char *url = "http://169.254.169.254/latest/meta-data";
	assert_int_equal(http_url_parse(url, strlen(url), &u, &why), HTTP_URL_OK);
	assert_int_equal(http_url_addr_classify((const struct sockaddr *)&u.addr), HTTP_URL_ADDR_LINK_LOCAL);
	assert_int_equal(ntohs(((struct sockaddr_in *)&u.addr)->sin_port), 80);
	url = "https://[::ffff:192.168.0.1]:8443/";
	assert_int_equal(http_url_parse(url, strlen(url), &u, &why), HTTP_URL_OK);
	assert_int_equal(http_url_addr_classify((const struct sockaddr *)&u.addr), HTTP_URL_ADDR_PRIVATE);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&u.addr)->sin6_port), 8443);
	char text[64];
	http_url_addr_text((const struct sockaddr *)&u.addr, text, sizeof(text));
	assert_string_equal(text, "::ffff:192.168.0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),          cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_lengths),       cmocka_unit_test(test_addr_classes),
		cmocka_unit_test(test_parse_gives_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

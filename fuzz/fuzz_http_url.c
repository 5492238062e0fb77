/* fuzz_http_url.c — libFuzzer harness for src/net/http_url.c: the input is a URL as an API user
 * gives a webhook endpoint. Every accepted URL is checked against the promises of http_url.h, its
 * address (if it is one) is classified, and the URL rebuilt from its parts parses to the same
 * parts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_url.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond)                  \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so that a read past the end is caught */
	char *s = malloc(size > 0 ? size : 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	struct http_url u;
	const char *why = NULL;
	enum http_url_error e = http_url_parse(s, size, &u, &why);
	if (e != HTTP_URL_OK) {
		FUZZ_CHECK(why != NULL && http_url_error_str(e)[0] != '\0');
		free(s);
		return 0;
	}
	size_t host_len = strnlen(u.host, sizeof(u.host));
	FUZZ_CHECK(host_len > 0 && host_len < sizeof(u.host));
	FUZZ_CHECK(u.port >= 1 && u.port <= 65535);
	FUZZ_CHECK(u.path_off <= size);
	FUZZ_CHECK(size <= HTTP_URL_MAX);
	/* what follows the authority: a path, a query or nothing; no fragment, no octet outside ASCII */
	FUZZ_CHECK(u.path_off == size || s[u.path_off] == '/' || s[u.path_off] == '?');
	for (size_t i = u.path_off; i < size; i++)
		FUZZ_CHECK(s[i] != '#' && s[i] > 0x20 && s[i] < 0x7f);
	for (size_t i = 0; i < host_len; i++)
		FUZZ_CHECK(!(u.host[i] >= 'A' && u.host[i] <= 'Z') && u.host[i] != '@' && u.host[i] != '/');
	if (u.host_kind != HTTP_URL_HOST_NAME) {
		char text[64];
		FUZZ_CHECK(http_url_addr_class_str(
				   http_url_addr_classify((const struct sockaddr *)&u.addr))[0] != '\0');
		http_url_addr_text((const struct sockaddr *)&u.addr, text, sizeof(text));
	}
	/* scheme://host:port + the rest parses to the same URL */
	char *again = malloc(size + 300);
	if (again != NULL) {
		int n = snprintf(again, size + 300, "%s://%s%s%s:%u%.*s", u.https ? "https" : "http",
				 u.host_kind == HTTP_URL_HOST_IPV6 ? "[" : "", u.host,
				 u.host_kind == HTTP_URL_HOST_IPV6 ? "]" : "", u.port,
				 (int)(size - u.path_off), s + u.path_off);
		struct http_url v;
		if (n > 0 && (size_t)n <= HTTP_URL_MAX) {
			FUZZ_CHECK(http_url_parse(again, (size_t)n, &v, &why) == HTTP_URL_OK);
			FUZZ_CHECK(v.https == u.https && v.host_kind == u.host_kind && v.port == u.port);
			FUZZ_CHECK(strcmp(v.host, u.host) == 0);
		}
		free(again);
	}
	free(s);
	return 0;
}

/* fuzz_dns_rdata.c — libFuzzer harness for src/net/dns_parse.c. The input is rdata as a hostile DNS
 * server could make unbound hand it over: every parser gets all of it, and the invariants of
 * dns_parse.h are checked on whatever parses. The input is also cut into a set of MX records
 * (2-octet length prefixes) that is put in RFC 5321 §5.1 order with random values taken from the
 * input, and read as text for the address-literal and resolver parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/dns_parse.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

struct fuzz_rng {
	const uint8_t *p;
	size_t len, off;
};

static uint32_t fuzz_rng_next(void *arg)
{
	struct fuzz_rng *r = arg;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | (r->len > 0 ? r->p[r->off++ % r->len] : 0);
	return v;
}

static void fuzz_check_mx(const struct dns_mx *m)
{
	size_t n = strnlen(m->exchange, sizeof(m->exchange));
	FUZZ_CHECK(n < sizeof(m->exchange));
	FUZZ_CHECK(strcmp(m->exchange, ".") == 0 || dns_host_valid(m->exchange));
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(m->exchange[i] < 'A' || m->exchange[i] > 'Z');
}

static void fuzz_single(const uint8_t *data, size_t size)
{
	char text[DNS_NAME_TEXT_SIZE];
	size_t used, n;
	const char *err;
	struct dns_mx mx;
	struct dns_addr a;

	if (dns_name_parse(data, size, &used, text, sizeof(text), &err) == DNS_PARSE_OK) {
		FUZZ_CHECK(used >= 1 && used <= size && used <= DNS_NAME_WIRE_MAX);
		FUZZ_CHECK(strlen(text) < sizeof(text));
	} else {
		FUZZ_CHECK(err != NULL);
	}
	if (dns_rdata_mx_parse(data, size, &mx, &err) == DNS_PARSE_OK) {
		fuzz_check_mx(&mx);
		FUZZ_CHECK(mx.pref == (uint16_t)(data[0] << 8 | data[1]));
	}
	if (dns_rdata_a_parse(data, size, &a, &err) == DNS_PARSE_OK)
		FUZZ_CHECK(size == 4 && a.family == AF_INET && memcmp(a.bytes, data, 4) == 0);
	if (dns_rdata_aaaa_parse(data, size, &a, &err) == DNS_PARSE_OK)
		FUZZ_CHECK(size == 16 && a.family == AF_INET6 && memcmp(a.bytes, data, 16) == 0);

	struct dns_tlsa tlsa;
	if (dns_rdata_tlsa_parse(data, size, &tlsa, &err) == DNS_PARSE_OK)
		FUZZ_CHECK(size >= 4 && tlsa.data == data + 3 && tlsa.len == size - 3 && tlsa.usage == data[0]);
	else
		FUZZ_CHECK(size < 4 && err != NULL);

	/* an exact-size heap buffer, so that ASan sees any write past len */
	char *out = malloc(size > 0 ? size : 1);
	if (out != NULL) {
		if (dns_rdata_txt_parse(data, size, out, size, &n, &err) == DNS_PARSE_OK) {
			FUZZ_CHECK(size >= 1 && n < size && out[n] == '\0');
		}
		free(out);
	}
}

/* A set of MX rdata, each preceded by a 1-octet length; then the order over it. */
static void fuzz_set(const uint8_t *data, size_t size)
{
	struct dns_mx set[64];
	size_t count = 0, off = 0;
	const char *err;

	while (off < size && count < 64) {
		size_t l = data[off++];
		if (l > size - off)
			l = size - off;
		if (dns_rdata_mx_parse(data + off, l, &set[count], &err) == DNS_PARSE_OK)
			count++;
		off += l;
	}
	bool is_null = dns_mx_is_null(set, count);
	FUZZ_CHECK(!is_null || (count == 1 && set[0].pref == 0));
	struct fuzz_rng rng = {data, size, 0};
	size_t kept = dns_mx_order(set, count, fuzz_rng_next, &rng);
	FUZZ_CHECK(kept <= count && (count == 0 || kept >= 1));
	for (size_t i = 0; i < kept; i++) {
		fuzz_check_mx(&set[i]);
		if (i > 0)
			FUZZ_CHECK(set[i - 1].pref <= set[i].pref);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(set[i].exchange, set[j].exchange) != 0);
	}
}

static void fuzz_text(const uint8_t *data, size_t size)
{
	char s[128], out[64];
	struct dns_addr a;
	const char *err;
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;

	memcpy(s, data, n);
	s[n] = '\0';
	if (dns_addr_literal_parse(s, &a, &err) == DNS_PARSE_OK) {
		FUZZ_CHECK(a.family == AF_INET || a.family == AF_INET6);
		dns_addr_str(&a, out, sizeof(out));
	}
	if (dns_resolver_parse(s, out, sizeof(out), &err) == DNS_PARSE_OK) {
		FUZZ_CHECK(strchr(out, '@') != NULL);
		/* what it writes is accepted again, unchanged */
		char again[64];
		FUZZ_CHECK(dns_resolver_parse(out, again, sizeof(again), &err) == DNS_PARSE_OK);
		FUZZ_CHECK(strcmp(out, again) == 0);
	}
	dns_host_valid(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_single(data, size);
	fuzz_set(data, size);
	fuzz_text(data, size);
	return 0;
}

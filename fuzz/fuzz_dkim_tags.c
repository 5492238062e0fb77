/* fuzz_dkim_tags.c — libFuzzer harness for the DKIM tag parsers and canonicalizers: the input is read
 * as a DKIM-Signature field value (src/auth/dkim_sig.c), as a DNS key record (src/auth/dkim_key.c),
 * as base64, and canonicalized as a header field and as a body (src/auth/dkim_canon.c), the body in
 * pieces whose size comes from the input. Invariants: what parses is consistent (names valid, spans
 * inside the input, sizes within their limits); a key record that parses formats to a record that
 * parses to the same key; canonical output has the shape RFC 6376 §3.4 promises, whatever the pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"
#include "auth/dkim_sig.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static void fuzz_sig(const char *s, size_t len)
{
	struct dkim_sig sig;
	const char *err = NULL;
	enum dkim_sig_error e = dkim_sig_parse(s, len, &sig, &err);
	FUZZ_CHECK(strlen(sig.domain) < sizeof(sig.domain) && strlen(sig.selector) < sizeof(sig.selector));
	if (sig.domain[0] != '\0')
		FUZZ_CHECK(dkim_domain_valid(sig.domain, strlen(sig.domain)));
	if (e != DKIM_SIG_OK) {
		FUZZ_CHECK(err != NULL);
		return;
	}
	FUZZ_CHECK(sig.alg_known && dkim_domain_valid(sig.domain, strlen(sig.domain)));
	FUZZ_CHECK(dkim_selector_valid(sig.selector, strlen(sig.selector)));
	for (const char *p = sig.domain; *p != '\0'; p++)
		FUZZ_CHECK(*p < 'A' || *p > 'Z');
	char name[DNS_HOST_SIZE];
	FUZZ_CHECK(dkim_sig_key_name(&sig, name, sizeof(name)));
	FUZZ_CHECK(sig.nheaders >= 1 && sig.nheaders <= DKIM_SIG_HEADERS_MAX);
	for (size_t i = 0; i < sig.nheaders; i++)
		FUZZ_CHECK(sig.headers[i].p >= s && sig.headers[i].len > 0 && sig.headers[i].p + sig.headers[i].len <= s + len);
	FUZZ_CHECK(dkim_sig_signs(&sig, "from"));
	FUZZ_CHECK(sig.b_len >= 1 && sig.b_len <= DKIM_SIG_B_MAX && strlen(sig.b_prefix) <= DKIM_SIG_B_PREFIX);
	FUZZ_CHECK(sig.b_del_start > s && sig.b_del_start <= sig.b_del_end && sig.b_del_end <= s + len);
	FUZZ_CHECK(sig.b_del_start[-1] == '=');
	FUZZ_CHECK(sig.b_del_end == s + len || *sig.b_del_end == ';');
	size_t il = strlen(sig.identity);
	FUZZ_CHECK(il < sizeof(sig.identity) && sig.identity_domain >= 1 && sig.identity_domain <= il);
	FUZZ_CHECK(sig.identity[sig.identity_domain - 1] == '@');
	FUZZ_CHECK(dkim_domain_within(sig.identity + sig.identity_domain, il - sig.identity_domain, sig.domain));
	if (sig.has_timestamp && sig.has_expire)
		FUZZ_CHECK(sig.expire > sig.timestamp);
}

static void fuzz_key(const char *s, size_t len)
{
	struct dkim_key_record r;
	const char *err = NULL;
	if (dkim_key_record_parse(s, len, &r, &err) != DKIM_KEY_OK) {
		FUZZ_CHECK(err != NULL && r.pkey == NULL);
		return;
	}
	FUZZ_CHECK(r.revoked == (r.pkey == NULL));
	if (r.pkey == NULL)
		return;
	enum dkim_key_type t;
	FUZZ_CHECK(dkim_key_type_get(r.pkey, &t) && t == r.type);
	FUZZ_CHECK(r.bits == dkim_key_bits(r.pkey) && r.bits > 0);
	FUZZ_CHECK(t != DKIM_KEY_RSA || r.bits <= DKIM_KEY_RSA_BITS_MAX);
	FUZZ_CHECK(dkim_key_record_matches(&r, r.pkey));
	/* what we would publish for this key reads back as the same key */
	char *text = dkim_key_record_format(r.pkey, &err);
	FUZZ_CHECK(text != NULL);
	struct dkim_key_record again;
	FUZZ_CHECK(dkim_key_record_parse(text, strlen(text), &again, &err) == DKIM_KEY_OK);
	FUZZ_CHECK(again.type == r.type && dkim_key_record_matches(&again, r.pkey));
	dkim_key_record_clear(&again);
	free(text);
	dkim_key_record_clear(&r);
}

static void fuzz_base64(const char *s, size_t len)
{
	unsigned char out[256];
	size_t n = 99;
	enum dkim_base64_error e = dkim_base64_decode(s, len, out, sizeof(out), &n);
	if (e == DKIM_BASE64_OK) {
		FUZZ_CHECK(n <= sizeof(out) && n <= len);
		/* encoding it again gives the input without its FWS */
		char enc[4 * (sizeof(out) / 3 + 1) + 1];
		int m = EVP_EncodeBlock((unsigned char *)enc, out, (int)n);
		size_t k = 0;
		for (size_t i = 0; i < len; i++) {
			if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
				continue;
			FUZZ_CHECK(k < (size_t)m);
			/* the last character before '=' may carry bits the decoder drops */
			if (!(k + 3 >= (size_t)m && enc[m - 1] == '='))
				FUZZ_CHECK(enc[k] == s[i]);
			k++;
		}
		FUZZ_CHECK(k == (size_t)m);
	} else {
		FUZZ_CHECK(n == 0);
	}
}

struct out {
	char *p;
	size_t len, cap;
};

static void out_sink(void *arg, const void *data, size_t len)
{
	struct out *o = arg;
	if (o->len + len > o->cap) {
		size_t cap = (o->len + len) * 2 + 64;
		char *p = realloc(o->p, cap);
		FUZZ_CHECK(p != NULL);
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
}

static bool ends_with(const struct out *o, const char *s)
{
	size_t n = strlen(s);
	return o->len >= n && memcmp(o->p + o->len - n, s, n) == 0;
}

static void fuzz_body(const char *s, size_t len, size_t piece)
{
	for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++) {
		struct out whole = {0}, cut = {0};
		struct dkim_body_canon b;
		dkim_body_canon_init(&b, (enum dkim_canon)c, out_sink, &whole);
		dkim_body_canon_update(&b, s, len);
		dkim_body_canon_final(&b);
		dkim_body_canon_init(&b, (enum dkim_canon)c, out_sink, &cut);
		for (size_t i = 0; i < len; i += piece)
			dkim_body_canon_update(&b, s + i, len - i < piece ? len - i : piece);
		dkim_body_canon_final(&b);
		/* the pieces do not matter */
		FUZZ_CHECK(whole.len == cut.len && (whole.len == 0 || memcmp(whole.p, cut.p, whole.len) == 0));
		if (c == DKIM_CANON_SIMPLE) {
			/* RFC 6376 §3.4.3: "*CRLF" at the end becomes one CRLF */
			FUZZ_CHECK(ends_with(&whole, "\r\n"));
			FUZZ_CHECK(whole.len == 2 || !ends_with(&whole, "\r\n\r\n"));
		} else {
			/* RFC 6376 §3.4.4: no WSP runs, no WSP at line ends, no empty lines at the end */
			FUZZ_CHECK(whole.len == 0 || (ends_with(&whole, "\r\n") && !ends_with(&whole, "\r\n\r\n")));
			FUZZ_CHECK(whole.len != 2);
			for (size_t i = 0; i + 2 < whole.len; i++) {
				FUZZ_CHECK(whole.p[i] != '\t');
				FUZZ_CHECK(!(whole.p[i] == ' ' && whole.p[i + 1] == ' '));
				FUZZ_CHECK(!(whole.p[i] == ' ' && whole.p[i + 1] == '\r' && whole.p[i + 2] == '\n'));
			}
		}
		/* the streaming hash counts the same octets */
		unsigned char d[DKIM_DIGEST_SIZE];
		uint64_t total = 0;
		FUZZ_CHECK(dkim_body_hash_compute((enum dkim_canon)c, s, len, true, len / 2, d, &total));
		FUZZ_CHECK(total == whole.len);
		free(whole.p);
		free(cut.p);
	}
}

static void fuzz_header(const char *s, size_t len)
{
	struct out o = {0};
	dkim_canon_header(DKIM_CANON_RELAXED, s, len, true, out_sink, &o);
	/* RFC 6376 §3.4.2: one line, lower-case name, no WSP around the first colon nor at the end */
	FUZZ_CHECK(ends_with(&o, "\r\n"));
	const char *colon = memchr(o.p, ':', o.len);
	for (size_t i = 0; i + 2 < o.len; i++) {
		FUZZ_CHECK(o.p[i] != '\n');
		FUZZ_CHECK(!(o.p[i] == '\r' && o.p[i + 1] == '\n'));
		if (colon == NULL || o.p + i < colon) {
			/* the name is lower-cased, not otherwise changed (a name has no WSP, RFC 5322 §3.6.8) */
			FUZZ_CHECK(o.p[i] < 'A' || o.p[i] > 'Z');
		} else {
			FUZZ_CHECK(o.p[i] != '\t' && !(o.p[i] == ' ' && o.p[i + 1] == ' '));
		}
	}
	if (colon != NULL) {
		FUZZ_CHECK(colon == o.p || colon[-1] != ' ');
		FUZZ_CHECK(colon[1] != ' ');
	}
	FUZZ_CHECK(o.len < 3 || o.p[o.len - 3] != ' ');
	free(o.p);
	o.len = 0;
	o.p = NULL;
	o.cap = 0;
	dkim_canon_header(DKIM_CANON_SIMPLE, s, len, false, out_sink, &o);
	FUZZ_CHECK(o.len <= len);
	free(o.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size heap copy, so that ASan sees any read past the end */
	char *s = malloc(size > 0 ? size : 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	fuzz_sig(s, size);
	fuzz_key(s, size);
	fuzz_base64(s, size);
	fuzz_body(s, size, size > 0 ? (size_t)data[0] % 17 + 1 : 1);
	fuzz_header(s, size);
	free(s);
	return 0;
}

/* signer_msg.c — the worker–signer messages (signer_msg.h). */
#include "server/signer_msg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth/dkim_sig.h"

static bool domain_take(const unsigned char *p, size_t len, char out[DNS_HOST_SIZE])
{
	if (len == 0 || len >= DNS_HOST_SIZE || memchr(p, '\0', len) != NULL || !dkim_domain_valid((const char *)p, len))
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

static bool selector_take(const unsigned char *p, size_t len, char out[DKIM_SELECTOR_MAX + 1])
{
	if (len == 0 || len > DKIM_SELECTOR_MAX || memchr(p, '\0', len) != NULL)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return dkim_selector_valid(out, len);
}

int signer_keys_parse(const unsigned char *p, size_t len, char domain_r[DNS_HOST_SIZE], const char **error_r)
{
	if (!domain_take(p, len, domain_r)) {
		*error_r = "KEYS does not name a domain";
		return -1;
	}
	return 0;
}

int signer_keylist_format(const struct dkim_signer_key *keys, size_t n, char *out, size_t size)
{
	size_t used = 0;
	if (size > 0)
		out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + used, size - used, "%s %s\n", dkim_alg_str(keys[i].alg), keys[i].selector);
		if (w < 0 || (size_t)w >= size - used)
			return -1;
		used += (size_t)w;
	}
	return (int)used;
}

static bool alg_take(const unsigned char *p, size_t len, enum dkim_alg *alg_r)
{
	static const enum dkim_alg algs[] = {DKIM_ALG_RSA_SHA256, DKIM_ALG_ED25519_SHA256};
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		const char *name = dkim_alg_str(algs[i]);
		if (strlen(name) == len && memcmp(name, p, len) == 0) {
			*alg_r = algs[i];
			return true;
		}
	}
	return false;
}

int signer_keylist_parse(const unsigned char *p, size_t len, struct dkim_signer_key out[DKIM_SIGNER_KEYS_MAX],
			 size_t *n_r, const char **error_r)
{
	size_t n = 0, pos = 0;
	while (pos < len) {
		const unsigned char *nl = memchr(p + pos, '\n', len - pos);
		size_t line = nl != NULL ? (size_t)(nl - (p + pos)) : 0;
		const unsigned char *sp = nl != NULL ? memchr(p + pos, ' ', line) : NULL;
		if (sp == NULL) {
			*error_r = "a key line is not ALG SELECTOR and a newline";
			return -1;
		}
		if (n == DKIM_SIGNER_KEYS_MAX) {
			*error_r = "more keys than one per key type";
			return -1;
		}
		if (!alg_take(p + pos, (size_t)(sp - (p + pos)), &out[n].alg)) {
			*error_r = "a key of an unknown algorithm";
			return -1;
		}
		if (!selector_take(sp + 1, (size_t)(nl - (sp + 1)), out[n].selector)) {
			*error_r = "a key line whose selector is not one";
			return -1;
		}
		n++;
		pos += line + 1;
	}
	*n_r = n;
	return 0;
}

int signer_sign_format(const char *domain, const char *selector, const unsigned char digest[DKIM_DIGEST_SIZE],
		       unsigned char *out, size_t size)
{
	size_t dl = strlen(domain), sl = strlen(selector);
	if (dl == 0 || dl >= DNS_HOST_SIZE || !dkim_domain_valid(domain, dl) || sl == 0 || sl > DKIM_SELECTOR_MAX ||
	    !dkim_selector_valid(selector, sl) ||
	    dl + 1 + sl + 1 + DKIM_DIGEST_SIZE > size)
		return -1;
	memcpy(out, domain, dl);
	out[dl] = ' ';
	memcpy(out + dl + 1, selector, sl);
	out[dl + 1 + sl] = '\n';
	memcpy(out + dl + sl + 2, digest, DKIM_DIGEST_SIZE);
	return (int)(dl + sl + 2 + DKIM_DIGEST_SIZE);
}

int signer_sign_parse(const unsigned char *p, size_t len, char domain_r[DNS_HOST_SIZE],
		      char selector_r[DKIM_SELECTOR_MAX + 1], unsigned char digest_r[DKIM_DIGEST_SIZE],
		      const char **error_r)
{
	if (len < DKIM_DIGEST_SIZE + 1) {
		*error_r = "SIGN is shorter than a digest";
		return -1;
	}
	size_t text = len - DKIM_DIGEST_SIZE;
	const unsigned char *sp = memchr(p, ' ', text);
	if (p[text - 1] != '\n' || sp == NULL) {
		*error_r = "SIGN does not start with DOMAIN SELECTOR and a newline";
		return -1;
	}
	if (!domain_take(p, (size_t)(sp - p), domain_r)) {
		*error_r = "SIGN does not name a domain";
		return -1;
	}
	if (!selector_take(sp + 1, (size_t)(p + text - 1 - (sp + 1)), selector_r)) {
		*error_r = "SIGN does not name a selector";
		return -1;
	}
	memcpy(digest_r, p + text, DKIM_DIGEST_SIZE);
	return 0;
}

int signer_signature_check(size_t len, const char **error_r)
{
	if (len == 0 || len > DKIM_SIG_B_MAX) {
		*error_r = "a signature that is empty or longer than any key makes";
		return -1;
	}
	return 0;
}

int signer_error_parse(const unsigned char *p, size_t len, char out[SIGNER_ERROR_MAX + 1], const char **error_r)
{
	if (len == 0 || len > SIGNER_ERROR_MAX) {
		*error_r = "an error sentence that is empty or too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (p[i] < ' ' || p[i] > '~') {
			*error_r = "an error sentence with a character that is not printable ASCII";
			return -1;
		}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* The space-separated words of p[0..len): at most max, none empty, no other character below '!'. */
static size_t words_split(const unsigned char *p, size_t len, const unsigned char **w, size_t *wl, size_t max)
{
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != ' ') {
			if (p[i] < '!' || p[i] > '~')
				return 0;
			continue;
		}
		if (i == start || n == max)
			return 0;
		w[n] = p + start;
		wl[n] = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

static bool word_is(const unsigned char *w, size_t len, const char *s)
{
	return strlen(s) == len && memcmp(w, s, len) == 0;
}

int signer_make_format(const struct signer_make *k, char *out, size_t size)
{
	size_t dl = strlen(k->domain), sl = strlen(k->selector);
	if (dl == 0 || !dkim_domain_valid(k->domain, dl) || sl == 0 || sl > DKIM_SELECTOR_MAX ||
	    !dkim_selector_valid(k->selector, sl) || (k->type != DKIM_KEY_RSA && k->type != DKIM_KEY_ED25519) ||
	    k->bits > 99999)
		return -1;
	int w = snprintf(out, size, "%s %s %s %u %s", k->domain, k->selector, k->type == DKIM_KEY_RSA ? "rsa" : "ed25519",
			 k->bits, k->when_first ? "first" : "now");
	return w < 0 || (size_t)w >= size ? -1 : w;
}

int signer_make_parse(const unsigned char *p, size_t len, struct signer_make *k_r, const char **error_r)
{
	const unsigned char *w[5];
	size_t wl[5];
	memset(k_r, 0, sizeof(*k_r));
	if (words_split(p, len, w, wl, 5) != 5) {
		*error_r = "MAKE is not DOMAIN SELECTOR TYPE BITS WHEN";
		return -1;
	}
	if (!domain_take(w[0], wl[0], k_r->domain) || !selector_take(w[1], wl[1], k_r->selector)) {
		*error_r = "MAKE does not name a domain and a selector";
		return -1;
	}
	if (word_is(w[2], wl[2], "rsa"))
		k_r->type = DKIM_KEY_RSA;
	else if (word_is(w[2], wl[2], "ed25519"))
		k_r->type = DKIM_KEY_ED25519;
	else {
		*error_r = "MAKE names a key type that is neither rsa nor ed25519";
		return -1;
	}
	unsigned bits = 0;
	for (size_t i = 0; i < wl[3]; i++) {
		if (w[3][i] < '0' || w[3][i] > '9' || i >= 5) {
			*error_r = "MAKE's bits are not a number of at most five digits";
			return -1;
		}
		bits = bits * 10 + (unsigned)(w[3][i] - '0');
	}
	if (wl[3] > 1 && w[3][0] == '0') {
		*error_r = "MAKE's bits have a leading zero";
		return -1;
	}
	k_r->bits = bits;
	if (word_is(w[4], wl[4], "first"))
		k_r->when_first = true;
	else if (!word_is(w[4], wl[4], "now")) {
		*error_r = "MAKE's WHEN is neither first nor now";
		return -1;
	}
	return 0;
}

int signer_activate_format(const char *domain, const char *selector, char *out, size_t size)
{
	size_t dl = strlen(domain), sl = strlen(selector);
	if (dl == 0 || !dkim_domain_valid(domain, dl) || sl == 0 || sl > DKIM_SELECTOR_MAX ||
	    !dkim_selector_valid(selector, sl))
		return -1;
	int w = snprintf(out, size, "%s %s", domain, selector);
	return w < 0 || (size_t)w >= size ? -1 : w;
}

int signer_activate_parse(const unsigned char *p, size_t len, char domain_r[DNS_HOST_SIZE],
			  char selector_r[DKIM_SELECTOR_MAX + 1], const char **error_r)
{
	const unsigned char *w[2];
	size_t wl[2];
	if (words_split(p, len, w, wl, 2) != 2 || !domain_take(w[0], wl[0], domain_r) ||
	    !selector_take(w[1], wl[1], selector_r)) {
		*error_r = "ACTIVATE is not DOMAIN SELECTOR";
		return -1;
	}
	return 0;
}

int signer_done_parse(const unsigned char *p, size_t len, const char **error_r)
{
	if (word_is(p, len, "active"))
		return 1;
	if (word_is(p, len, "inactive"))
		return 0;
	*error_r = "DONE is neither active nor inactive";
	return -1;
}

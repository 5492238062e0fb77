/* mtasts_rules.c — the MTA-STS decisions of mtasts_rules.h: answer checks, cache rules, refresh
 * times, and the policy this server publishes. */
#include "delivery/mtasts_rules.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "conf/conf.h"
#include "net/dns_parse.h"

/* ---- the answer ---- */

bool mtasts_content_type_ok(const char *v)
{
	if (v == NULL)
		return false;
	while (*v == ' ' || *v == '\t')
		v++;
	/* RFC 8461 §3.3: "the policy... MUST have a media type of text/plain"; RFC 9110 §8.3.1: type and
	 * subtype are case-insensitive; parameters follow a ";" with optional whitespace before it */
	if (strncasecmp(v, "text/plain", 10) != 0)
		return false;
	v += 10;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0' || *v == ';';
}

/* ---- the cache ---- */

const char *mtasts_txt_state_str(enum mtasts_txt_state s)
{
	switch (s) {
	case MTASTS_TXT_ONE: return "one";
	case MTASTS_TXT_NONE: return "none";
	case MTASTS_TXT_ERROR: return "error";
	}
	return "?";
}

const char *mtasts_next_str(enum mtasts_next n)
{
	switch (n) {
	case MTASTS_NEXT_FETCH: return "fetch";
	case MTASTS_NEXT_USE: return "use";
	case MTASTS_NEXT_NONE: return "none";
	}
	return "?";
}

const char *mtasts_keep_str(enum mtasts_keep k)
{
	switch (k) {
	case MTASTS_KEEP_STORE: return "store";
	case MTASTS_KEEP_CLEAR: return "clear";
	case MTASTS_KEEP_KEEP: return "keep";
	case MTASTS_KEEP_DROP: return "drop";
	}
	return "?";
}

bool mtasts_entry_valid(const struct mtasts_entry *e, int64_t now)
{
	/* RFC 8461 §3.2 max_age: the policy is cached "for up to this many seconds" */
	return e != NULL && e->present && now < e->expires;
}

enum mtasts_next mtasts_rules_after_txt(const struct mtasts_entry *cached, enum mtasts_txt_state txt,
					const char *txt_id, int64_t now)
{
	bool valid = mtasts_entry_valid(cached, now);
	switch (txt) {
	case MTASTS_TXT_ONE:
		/* §3.3: the id tells whether the cached policy is current; same id, no fetch */
		if (valid && txt_id != NULL && strcmp(cached->id, txt_id) == 0)
			return MTASTS_NEXT_USE;
		return MTASTS_NEXT_FETCH;
	case MTASTS_TXT_NONE:
	case MTASTS_TXT_ERROR:
		/* §5.1: without a valid TXT record a cached policy is used until it expires. A removed
		 * record does not retire a policy: only a fetched "mode: none" does (§8.3), so that an
		 * attacker who can hide the TXT record cannot turn enforce off */
		return valid ? MTASTS_NEXT_USE : MTASTS_NEXT_NONE;
	}
	return valid ? MTASTS_NEXT_USE : MTASTS_NEXT_NONE;
}

enum mtasts_keep mtasts_rules_after_fetch(const struct mtasts_entry *cached, const struct mtasts_policy *fetched,
					  int64_t now)
{
	if (fetched != NULL)
		return fetched->mode == MTASTS_MODE_NONE ? MTASTS_KEEP_CLEAR : MTASTS_KEEP_STORE;
	/* §3.3: a failed fetch of a new id keeps the valid cached policy (an attacker who blocks the
	 * HTTPS fetch must not be able to remove a policy) */
	return mtasts_entry_valid(cached, now) ? MTASTS_KEEP_KEEP : MTASTS_KEEP_DROP;
}

#define REFRESH_LEAD_MAX 86400 /* at most a day before the end */
#define REFRESH_MIN_AGE 60

int64_t mtasts_rules_refresh_at(const struct mtasts_entry *e, double jitter)
{
	int64_t life = e->expires - e->fetched;
	if (life < 0)
		life = 0;
	int64_t lead = life / 4;
	if (lead > REFRESH_LEAD_MAX)
		lead = REFRESH_LEAD_MAX;
	if (jitter < 0 || jitter >= 1)
		jitter = 0;
	lead += (int64_t)((double)lead / 10 * jitter);
	int64_t at = e->expires - lead;
	if (at < e->fetched + REFRESH_MIN_AGE)
		at = e->fetched + REFRESH_MIN_AGE;
	return at;
}

/* ---- the served side ---- */

size_t mtasts_policy_text(enum mtasts_mode mode, uint32_t max_age, const char *const *mx, size_t n, char *out,
			  size_t out_size)
{
	/* RFC 8461 §3.2: "version: STSv1" first in the examples; lines end in CRLF (sts-policy-term) */
	size_t len = 0;
	int w = snprintf(out, out_size, "version: STSv1\r\nmode: %s\r\n", mtasts_mode_str(mode));
	if (w < 0 || (size_t)w >= out_size)
		return 0;
	len = (size_t)w;
	for (size_t i = 0; i < n; i++) {
		w = snprintf(out + len, out_size - len, "mx: %s\r\n", mx[i]);
		if (w < 0 || (size_t)w >= out_size - len)
			return 0;
		len += (size_t)w;
	}
	w = snprintf(out + len, out_size - len, "max_age: %u\r\n", (unsigned)max_age);
	if (w < 0 || (size_t)w >= out_size - len)
		return 0;
	return len + (size_t)w;
}

size_t mtasts_served_text(const struct conf *c, char *out, size_t out_size)
{
	enum mtasts_mode mode = c->sts_mode == CONF_STS_ENFORCE ? MTASTS_MODE_ENFORCE
				: c->sts_mode == CONF_STS_NONE  ? MTASTS_MODE_NONE
								: MTASTS_MODE_TESTING;
	char names[33][MTASTS_MX_SIZE];
	const char *mx[33];
	size_t n = 0;
	snprintf(names[n], sizeof(names[n]), "%s", c->hostname);
	mx[n] = names[n];
	n++;
	/* conf.c has checked the list: host names or "*." patterns, at most 32, comma or space apart */
	for (const char *p = c->sts_mx != NULL ? c->sts_mx : ""; *p != '\0' && n < 33;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ", ");
		if (len == 0 || len >= MTASTS_MX_SIZE) {
			p += len;
			continue;
		}
		memcpy(names[n], p, len);
		names[n][len] = '\0';
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcasecmp(names[i], names[n]) == 0;
		if (!dup) {
			mx[n] = names[n];
			n++;
		}
		p += len;
	}
	/* RFC 8461 §3.2: in mode none the mx lines are not needed; a retired policy lists none */
	return mtasts_policy_text(mode, c->sts_max_age, mx, mode == MTASTS_MODE_NONE ? 0 : n, out, out_size);
}

void mtasts_policy_id(const char *text, size_t len, char *id_r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16) {
		/* not reachable with OpenSSL's own SHA-256; an id that never matches a published one */
		snprintf(id_r, MTASTS_ID_MAX + 1, "0");
		return;
	}
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < 16; i++) {
		id_r[2 * i] = hex[md[i] >> 4];
		id_r[2 * i + 1] = hex[md[i] & 15];
	}
	id_r[32] = '\0';
}

bool mtasts_host_domain(const char *host, size_t len, char *domain_r, size_t size)
{
	static const char prefix[] = "mta-sts.";
	const size_t plen = sizeof(prefix) - 1;
	if (size < DNS_HOST_SIZE || len <= plen || strncasecmp(host, prefix, plen) != 0)
		return false;
	const char *d = host + plen;
	size_t dlen = len - plen;
	/* RFC 9110 §7.2: Host = uri-host [ ":" port ] */
	const char *colon = memchr(d, ':', dlen);
	if (colon != NULL) {
		size_t plen2 = dlen - (size_t)(colon - d) - 1;
		if (plen2 == 0 || plen2 > 5)
			return false;
		for (size_t i = 0; i < plen2; i++)
			if (colon[1 + i] < '0' || colon[1 + i] > '9')
				return false;
		dlen = (size_t)(colon - d);
	}
	if (dlen > 0 && d[dlen - 1] == '.')
		dlen--;
	if (dlen == 0 || dlen >= DNS_HOST_SIZE)
		return false;
	for (size_t i = 0; i < dlen; i++) {
		char c = d[i];
		if (c == '\0')
			return false;
		domain_r[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	domain_r[dlen] = '\0';
	/* a name, not an address: dns_host_valid refuses what is not LDH labels, and a last label of
	 * digits only is an IPv4 address (RFC 3696 §2), as mtasts.h reads an mx value */
	const char *last = strrchr(domain_r, '.');
	if (!dns_host_valid(domain_r) || last == NULL)
		return false;
	return strspn(last + 1, "0123456789") != strlen(last + 1);
}

/* dkim_verify.c — DKIM verification (RFC 6376 §6) on the auth_dns.h step protocol. */
#include "auth/dkim_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/dkim_key_cache.h"
#include "util/header.h"

const char *dkim_result_str(enum dkim_result r)
{
	switch (r) {
	case DKIM_RESULT_NONE: return "none";
	case DKIM_RESULT_PASS: return "pass";
	case DKIM_RESULT_FAIL: return "fail";
	case DKIM_RESULT_NEUTRAL: return "neutral";
	case DKIM_RESULT_POLICY: return "policy";
	case DKIM_RESULT_TEMPERROR: return "temperror";
	case DKIM_RESULT_PERMERROR: return "permerror";
	}
	return "?";
}

struct dkim_vsig {
	struct dkim_sig sig; /* points into the verifier's copy of the header section */
	size_t field;        /* its index in fields */
	bool need_key;
	bool body_ok;        /* the body hash matches bh= */
	bool body_short;     /* l= is longer than the canonical body */
	struct dkim_sig_result res;
};

struct dkim_verify {
	char *hdr; /* the header section, copied */
	size_t hdr_len;
	struct header_field *fields;
	size_t nfields;
	struct dkim_vsig *sigs;
	size_t nsigs, ignored;
	time_t now;
	char asked[DNS_HOST_SIZE]; /* the key name of the question out; "" when none */
	struct dkim_key_cache *key_cache; /* NULL: decode every key record */
};

void dkim_verify_key_cache_set(struct dkim_verify *v, struct dkim_key_cache *c)
{
	v->key_cache = c;
}

/* ---- dkim_verify_new: everything without the key ---- */

static void set_result(struct dkim_vsig *s, enum dkim_result r, const char *reason)
{
	s->res.result = r;
	s->res.reason = reason;
	s->need_key = false;
}

static void copy_sig_fields(struct dkim_vsig *s)
{
	struct dkim_sig_result *r = &s->res;
	snprintf(r->domain, sizeof(r->domain), "%s", s->sig.domain);
	snprintf(r->selector, sizeof(r->selector), "%s", s->sig.selector);
	if (s->sig.identity[0] != '\0')
		snprintf(r->identity, sizeof(r->identity), "%s", s->sig.identity);
	else if (s->sig.domain[0] != '\0')
		snprintf(r->identity, sizeof(r->identity), "@%s", s->sig.domain);
	r->alg = s->sig.alg;
	r->alg_known = s->sig.alg_known;
	r->header_canon = s->sig.header_canon;
	r->body_canon = s->sig.body_canon;
	r->body_length_limited = s->sig.has_length;
	snprintf(r->b_prefix, sizeof(r->b_prefix), "%s", s->sig.b_prefix);
}

/* RFC 6376 §6.1.1: the checks of one field that need neither key nor body. */
static void sig_check(struct dkim_verify *v, struct dkim_vsig *s)
{
	const struct header_field *f = &v->fields[s->field];
	const char *why = NULL;
	enum dkim_sig_error e = dkim_sig_parse(f->value, f->value_len, &s->sig, &why);
	copy_sig_fields(s);
	if (e != DKIM_SIG_OK) {
		set_result(s, DKIM_RESULT_PERMERROR, why);
		return;
	}
	if (s->sig.alg == DKIM_ALG_RSA_SHA1) {
		/* RFC 8301 §3.1: verifiers must not consider rsa-sha1 signatures valid */
		set_result(s, DKIM_RESULT_FAIL, "rsa-sha1 is not accepted (RFC 8301)");
		return;
	}
	if (s->sig.has_expire && v->now >= 0 && (unsigned long long)v->now > s->sig.expire) {
		/* RFC 6376 §3.5 x=, §6.1.1 "signature expired" */
		set_result(s, DKIM_RESULT_FAIL, "signature expired");
		return;
	}
	s->need_key = true;
}

struct body_group {
	enum dkim_canon canon;
	bool has_length;
	uint64_t length;
	struct dkim_body_hash h;
	unsigned char digest[DKIM_DIGEST_SIZE];
};

static bool group_same(const struct body_group *g, const struct dkim_sig *sig)
{
	return g->canon == sig->body_canon && g->has_length == sig->has_length &&
	       (!g->has_length || g->length == sig->length);
}

struct body_groups {
	struct body_group *g;
	size_t n;
};

/* A piece of the body for every group (dkim_body_tail_feed). */
static void body_groups_update(void *arg, const char *data, size_t len)
{
	struct body_groups *all = arg;
	for (size_t k = 0; k < all->n; k++)
		dkim_body_hash_update(&all->g[k].h, data, len);
}

/* RFC 6376 §3.7 hash step 1, once per distinct (body canonicalization, l=), in one pass. */
static bool body_hash_all(struct dkim_verify *v, const char *body, size_t len, const struct dkim_body_tail *tail)
{
	struct body_group *g = calloc(v->nsigs > 0 ? v->nsigs : 1, sizeof(*g));
	size_t ng = 0, *which = calloc(v->nsigs > 0 ? v->nsigs : 1, sizeof(*which));
	bool ok = g != NULL && which != NULL;

	for (size_t i = 0; ok && i < v->nsigs; i++) {
		const struct dkim_sig *sig = &v->sigs[i].sig;
		if (!v->sigs[i].need_key)
			continue;
		size_t k = 0;
		while (k < ng && !group_same(&g[k], sig))
			k++;
		if (k == ng) {
			g[k].canon = sig->body_canon;
			g[k].has_length = sig->has_length;
			g[k].length = sig->length;
			ok = dkim_body_hash_init(&g[k].h, sig->body_canon, sig->has_length, sig->length);
			if (ok)
				ng++;
		}
		which[i] = k;
	}
	/* in pieces, so that all groups walk the body while it is in the cache */
	for (size_t off = 0; ok && off < len; off += 65536) {
		size_t n = len - off < 65536 ? len - off : 65536;
		for (size_t k = 0; k < ng; k++)
			dkim_body_hash_update(&g[k].h, body + off, n);
	}
	struct body_groups all = {g, ng};
	if (ok && ng > 0)
		ok = dkim_body_tail_feed(tail, body_groups_update, &all);
	for (size_t k = 0; ok && k < ng; k++)
		ok = dkim_body_hash_final(&g[k].h, g[k].digest);
	for (size_t i = 0; ok && i < v->nsigs; i++) {
		struct dkim_vsig *s = &v->sigs[i];
		if (!s->need_key)
			continue;
		const struct body_group *bg = &g[which[i]];
		/* RFC 6376 §3.5 l=: "MUST NOT be larger than the actual number of octets" */
		s->body_short = s->sig.has_length && s->sig.length > bg->h.total;
		s->body_ok = !s->body_short && memcmp(bg->digest, s->sig.bh, DKIM_DIGEST_SIZE) == 0;
		if (s->sig.has_length && !s->body_short)
			s->res.body_unsigned = bg->h.total - s->sig.length;
	}
	for (size_t k = 0; g != NULL && k < ng; k++)
		dkim_body_hash_clear(&g[k].h);
	free(g);
	free(which);
	return ok;
}

struct dkim_verify *dkim_verify_new(const char *msg, size_t len, unsigned max_sigs, time_t now)
{
	return dkim_verify_new_tail(msg, len, NULL, max_sigs, now);
}

struct dkim_verify *dkim_verify_new_tail(const char *msg, size_t len, const struct dkim_body_tail *tail,
					 unsigned max_sigs, time_t now)
{
	struct dkim_verify *v = calloc(1, sizeof(*v));
	if (v == NULL)
		return NULL;
	v->now = now;
	size_t body = header_body_offset(msg, len);
	v->hdr_len = body;
	v->hdr = malloc(body > 0 ? body : 1);
	if (v->hdr == NULL)
		goto oom;
	memcpy(v->hdr, msg, body);

	/* the fields with a name, in order; and how many are signatures */
	size_t pos = 0, cap = 0, nsig = 0;
	struct header_field f;
	while (header_next(v->hdr, v->hdr_len, &pos, &f)) {
		if (f.name_len == 0)
			continue;
		if (v->nfields == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			struct header_field *p = realloc(v->fields, cap * sizeof(*p));
			if (p == NULL)
				goto oom;
			v->fields = p;
		}
		v->fields[v->nfields++] = f;
		if (header_is(&f, "DKIM-Signature"))
			nsig++;
	}
	/* RFC 6376 §6.1: a verifier may limit the signatures it tries (§8.4) */
	size_t take = nsig < max_sigs ? nsig : max_sigs;
	v->ignored = nsig - take;
	v->sigs = calloc(take > 0 ? take : 1, sizeof(*v->sigs));
	if (v->sigs == NULL)
		goto oom;
	for (size_t i = 0; i < v->nfields && v->nsigs < take; i++) {
		if (!header_is(&v->fields[i], "DKIM-Signature"))
			continue;
		struct dkim_vsig *s = &v->sigs[v->nsigs++];
		s->field = i;
		sig_check(v, s);
	}
	if (!body_hash_all(v, msg + body, len - body, tail))
		goto oom;
	return v;
oom:
	dkim_verify_free(v);
	return NULL;
}

/* ---- the key and what follows it ---- */

/* RFC 6376 §3.7 hash step 2 and the signature check (§6.1.3 step 4). */
static bool header_verify(struct dkim_verify *v, struct dkim_vsig *s, EVP_PKEY *key, bool *ok_r)
{
	unsigned char digest[DKIM_DIGEST_SIZE];
	unsigned int n = 0;
	const struct header_field *f = &v->fields[s->field];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool *taken = calloc(v->nfields, sizeof(*taken));
	bool ok = md != NULL && taken != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	if (ok) {
		/* the field being verified is never among the signed ones (§3.7) */
		taken[s->field] = true;
		dkim_headers_canon(s->sig.header_canon, v->fields, v->nfields, taken, s->sig.headers, s->sig.nheaders,
				   dkim_canon_sink_digest, md);
		ok = dkim_sig_canon_self(&s->sig, s->sig.header_canon, f->raw, f->raw_len, dkim_canon_sink_digest, md) &&
		     EVP_DigestFinal_ex(md, digest, &n) == 1 && n == sizeof(digest);
	}
	EVP_MD_CTX_free(md);
	free(taken);
	if (ok)
		*ok_r = dkim_key_verify_digest(key, s->sig.alg, digest, sizeof(digest), s->sig.b, s->sig.b_len);
	return ok;
}

/* RFC 6376 §6.1.2 steps 6-8, §3.6.1 s= and t=, RFC 8301 §3.2, §6.1.3: one key record against one
 * signature; the outcome goes to *r. */
static void key_check(struct dkim_verify *v, struct dkim_vsig *s, const struct dkim_key_record *k,
		      struct dkim_sig_result *r)
{
	r->key_bits = k->bits;
	r->key_testing = k->testing;
	r->result = DKIM_RESULT_PERMERROR;
	if (!k->hash_sha256) {
		r->reason = "key h= does not allow sha256";
	} else if (k->revoked) {
		r->reason = "key revoked";
	} else if (k->type != dkim_alg_key_type(s->sig.alg)) {
		r->reason = "key type does not match a=";
	} else if (!k->service_email) {
		r->reason = "key s= does not include email";
	} else if (k->strict && strcasecmp(s->sig.identity + s->sig.identity_domain, s->sig.domain) != 0) {
		/* RFC 6376 §3.6.1 t=s: the domain of i= must be d= itself, not a subdomain */
		r->reason = "key t=s forbids an i= subdomain";
	} else if (k->type == DKIM_KEY_RSA && k->bits < DKIM_KEY_RSA_BITS_MIN) {
		/* RFC 8301 §3.2: RSA keys under 1024 bits do not make valid signatures */
		r->result = DKIM_RESULT_FAIL;
		snprintf(r->reason_buf, sizeof(r->reason_buf), "RSA key of %u bits is too short (RFC 8301)", k->bits);
		r->reason = r->reason_buf;
	} else if (s->body_short) {
		r->result = DKIM_RESULT_FAIL;
		r->reason = "l= is longer than the body";
	} else if (!s->body_ok) {
		/* RFC 6376 §6.1.3 step 3 */
		r->result = DKIM_RESULT_FAIL;
		r->reason = "body hash mismatch";
	} else {
		bool good = false;
		if (!header_verify(v, s, k->pkey, &good)) {
			r->result = DKIM_RESULT_TEMPERROR;
			r->reason = "out of memory";
		} else if (good) {
			r->result = DKIM_RESULT_PASS;
			r->reason = "signature verified";
		} else {
			r->result = DKIM_RESULT_FAIL;
			r->reason = "signature did not verify";
		}
	}
}

/* A copy whose reason still points at its own buffer when it did. */
static void result_copy(struct dkim_sig_result *dst, const struct dkim_sig_result *src)
{
	*dst = *src;
	if (src->reason == src->reason_buf)
		dst->reason = dst->reason_buf;
}

/* RFC 6376 §6.1.2 steps 2-5 for one signature. Several records at the name: those that do not parse
 * are skipped (a wildcard or an unrelated TXT can share the name); of those that parse, the first
 * DKIM_VERIFY_RECORDS_MAX are tried and the signature passes if one verifies it, else the outcome of
 * the first stands. So the result does not depend on the order of the RRset. */
static void key_answer(struct dkim_verify *v, struct dkim_vsig *s, const struct dns_result *a)
{
	s->need_key = false;
	switch (a->status) {
	case DNS_STATUS_TEMPFAIL:
		set_result(s, DKIM_RESULT_TEMPERROR, "key lookup failed");
		return;
	case DNS_STATUS_BOGUS:
		set_result(s, DKIM_RESULT_TEMPERROR, "key record failed DNSSEC validation");
		return;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		set_result(s, DKIM_RESULT_PERMERROR, "no key record");
		return;
	case DNS_STATUS_OK:
		break;
	}
	const char *first_error = NULL;
	size_t tried = 0;
	struct dkim_sig_result first, r;
	for (size_t i = 0; i < a->count && a->txts != NULL && tried < DKIM_VERIFY_RECORDS_MAX; i++) {
		struct dkim_key_record k;
		const char *why = NULL;
		if (dkim_key_cache_parse(v->key_cache, a->txts[i].text, a->txts[i].len, &k, &why) != DKIM_KEY_OK) {
			if (first_error == NULL)
				first_error = why;
			continue;
		}
		result_copy(&r, &s->res);
		key_check(v, s, &k, &r);
		dkim_key_record_clear(&k);
		if (tried++ == 0 || r.result == DKIM_RESULT_PASS)
			result_copy(&first, &r);
		if (r.result == DKIM_RESULT_PASS)
			break;
	}
	if (tried == 0) {
		/* RFC 6376 §6.1.2 step 5: "key syntax error" */
		set_result(s, DKIM_RESULT_PERMERROR, first_error != NULL ? first_error : "no key record");
		return;
	}
	result_copy(&s->res, &first);
}

enum auth_step dkim_verify_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct dkim_verify *v = arg;
	char name[DNS_HOST_SIZE];

	if (answer != NULL && v->asked[0] != '\0') {
		/* every signature with this key name takes the one answer */
		for (size_t i = 0; i < v->nsigs; i++) {
			struct dkim_vsig *s = &v->sigs[i];
			if (s->need_key && dkim_sig_key_name(&s->sig, name, sizeof(name)) && strcmp(name, v->asked) == 0)
				key_answer(v, s, answer);
		}
	}
	v->asked[0] = '\0';
	for (size_t i = 0; i < v->nsigs; i++) {
		struct dkim_vsig *s = &v->sigs[i];
		if (!s->need_key)
			continue;
		if (!dkim_sig_key_name(&s->sig, name, sizeof(name))) {
			set_result(s, DKIM_RESULT_PERMERROR, "s= and d= make a name longer than DNS allows");
			continue;
		}
		/* RFC 6376 §3.6.2.1: <selector>._domainkey.<domain> */
		memcpy(q_r->name, name, sizeof(q_r->name));
		q_r->rrtype = DNS_RRTYPE_TXT;
		memcpy(v->asked, name, sizeof(v->asked));
		return AUTH_STEP_QUERY;
	}
	return AUTH_STEP_DONE;
}

size_t dkim_verify_count(const struct dkim_verify *v)
{
	return v->nsigs;
}

size_t dkim_verify_ignored(const struct dkim_verify *v)
{
	return v->ignored;
}

const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i)
{
	return i < v->nsigs ? &v->sigs[i].res : NULL;
}

void dkim_verify_free(struct dkim_verify *v)
{
	if (v == NULL)
		return;
	free(v->sigs);
	free(v->fields);
	free(v->hdr);
	free(v);
}

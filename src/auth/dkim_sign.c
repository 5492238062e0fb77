/* dkim_sign.c — DKIM signing (RFC 6376 §5): the h= list, the hashes, the field and its folding. */
#include "auth/dkim_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/dkim_sig.h"
#include "util/header.h"

const char *const dkim_sign_default_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
	"content-transfer-encoding", "in-reply-to", "references", "list-unsubscribe", "list-unsubscribe-post",
	NULL,
};

/* ---- the folded field ---- */

enum fold_sep {
	FOLD_GLUE,  /* no break possible before the piece */
	FOLD_SPACE, /* one SP before the piece, which may become CRLF SP */
	FOLD_BREAK, /* nothing before the piece, but CRLF SP may go there (FWS is allowed) */
};

struct fold {
	char *buf;
	size_t len, cap;
	size_t col; /* columns on the current line */
	size_t width;
	bool oom;
};

static void fold_append(struct fold *f, const char *s, size_t n)
{
	if (f->oom)
		return;
	if (f->len + n + 1 > f->cap) {
		size_t cap = (f->len + n + 1) * 2;
		char *p = realloc(f->buf, cap);
		if (p == NULL) {
			f->oom = true;
			return;
		}
		f->buf = p;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, s, n);
	f->len += n;
	f->buf[f->len] = '\0';
}

static void fold_newline(struct fold *f)
{
	fold_append(f, "\r\n ", 3);
	f->col = 1;
}

/* A piece that is never split; it starts a new line if it would pass the width and the current
 * line holds something already. */
static void fold_piece(struct fold *f, enum fold_sep sep, const char *s, size_t n)
{
	size_t space = sep == FOLD_SPACE ? 1 : 0;
	if (sep != FOLD_GLUE && f->col > 1 && f->col + space + n > f->width) {
		fold_newline(f);
	} else if (space > 0) {
		fold_append(f, " ", 1);
		f->col++;
	}
	fold_append(f, s, n);
	f->col += n;
}

/* "name=value;" as one piece after a space. */
static void fold_tag(struct fold *f, const char *name, const char *value)
{
	char piece[DKIM_IDENTITY_SIZE + 16];
	int n = snprintf(piece, sizeof(piece), "%s=%s;", name, value);
	if (n < 0 || (size_t)n >= sizeof(piece)) {
		f->oom = true; /* the values were checked for length before */
		return;
	}
	fold_piece(f, FOLD_SPACE, piece, (size_t)n);
}

/* Base64 text that may be broken anywhere (RFC 6376 §3.5 b=: "the signing process can safely insert
 * FWS in this value in arbitrary places"): lines filled up to the width. */
static void fold_base64(struct fold *f, const char *s, size_t n)
{
	while (n > 0) {
		if (f->col >= f->width)
			fold_newline(f);
		size_t room = f->width - f->col, take = n < room ? n : room;
		fold_append(f, s, take);
		f->col += take;
		s += take;
		n -= take;
	}
}

/* ---- h= ---- */

struct hlist {
	struct dkim_span names[DKIM_SIG_HEADERS_MAX];
	bool space_before_colon[DKIM_SIG_HEADERS_MAX]; /* "from :" rather than "from:" */
	enum fold_sep sep_after[DKIM_SIG_HEADERS_MAX]; /* what follows the colon */
	size_t n;
};

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The caller's h= text: names (RFC 5322 ftext) separated by ':', whitespace kept as one space. */
static bool hlist_parse(struct hlist *h, const char *text)
{
	size_t i = 0, len = strlen(text);
	h->n = 0;
	for (;;) {
		while (i < len && is_fws(text[i]))
			i++;
		size_t start = i;
		while (i < len && text[i] != ':' && !is_fws(text[i])) {
			if ((unsigned char)text[i] < 33 || (unsigned char)text[i] > 126)
				return false;
			i++;
		}
		/* RFC 5322 §2.1.1: no name is longer than a line may be */
		if (i == start || i - start > 900 || h->n == DKIM_SIG_HEADERS_MAX)
			return false;
		h->names[h->n].p = text + start;
		h->names[h->n].len = i - start;
		size_t ws = i;
		while (i < len && is_fws(text[i]))
			i++;
		h->space_before_colon[h->n] = i > ws;
		h->sep_after[h->n] = FOLD_BREAK;
		if (i == len) {
			h->n++;
			return true;
		}
		if (text[i] != ':')
			return false;
		i++;
		if (i < len && is_fws(text[i]))
			h->sep_after[h->n] = FOLD_SPACE;
		h->n++;
	}
}

static size_t count_fields(const struct header_field *fields, size_t n, const char *name)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (header_is(&fields[i], name))
			k++;
	return k;
}

/* RFC 6376 §5.4.1, §5.4.2: each default name as often as the message has it, From once more. */
static bool hlist_default(struct hlist *h, const struct header_field *fields, size_t nfields)
{
	h->n = 0;
	for (size_t d = 0; dkim_sign_default_headers[d] != NULL; d++) {
		const char *name = dkim_sign_default_headers[d];
		size_t k = count_fields(fields, nfields, name);
		if (strcmp(name, "from") == 0)
			k++;
		for (size_t j = 0; j < k; j++) {
			if (h->n == DKIM_SIG_HEADERS_MAX)
				return false;
			h->names[h->n].p = name;
			h->names[h->n].len = strlen(name);
			h->space_before_colon[h->n] = false;
			h->sep_after[h->n] = FOLD_BREAK;
			h->n++;
		}
	}
	return true;
}

static void fold_hlist(struct fold *f, const struct hlist *h)
{
	for (size_t i = 0; i < h->n; i++) {
		char piece[DKIM_SIG_B_MAX];
		bool last = i + 1 == h->n;
		const char *tail = last ? ";" : h->space_before_colon[i] ? " :" : ":";
		int n = snprintf(piece, sizeof(piece), "%s%.*s%s", i == 0 ? "h=" : "", (int)h->names[i].len,
				 h->names[i].p, tail);
		if (n < 0 || (size_t)n >= sizeof(piece)) {
			f->oom = true;
			return;
		}
		fold_piece(f, i == 0 ? FOLD_SPACE : h->sep_after[i - 1], piece, (size_t)n);
	}
}

/* ---- parameters ---- */

/* RFC 6376 §2.11 dkim-safe-char: %x21-3A / %x3C / %x3E-7E; others as =XX. */
static bool identity_encode(const char *id, const char *domain, char *out, size_t size, const char **error_r)
{
	const char *at = strrchr(id, '@');
	if (at == NULL || !dkim_domain_valid(at + 1, strlen(at + 1))) {
		*error_r = "the identity is not an address or @domain";
		return false;
	}
	if (!dkim_domain_within(at + 1, strlen(at + 1), domain)) {
		*error_r = "the identity's domain is not the signing domain nor below it (RFC 6376 §3.5 i=)";
		return false;
	}
	size_t o = 0;
	for (const char *p = id; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		bool safe = (c >= 0x21 && c <= 0x3a) || c == 0x3c || (c >= 0x3e && c <= 0x7e);
		if (o + 4 >= size)
			break;
		if (safe)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "=%02X", c);
	}
	int n = snprintf(out + o, size > o ? size - o : 0, "%s", at);
	if (o + 4 >= size || n < 0 || (size_t)n >= size - o) {
		*error_r = "the identity is too long";
		return false;
	}
	return true;
}

/* The header section as an array of fields (fields with a name only). */
static struct header_field *fields_collect(const char *msg, size_t len, size_t *n_r)
{
	size_t pos = 0, n = 0, cap = 16;
	struct header_field f, *fields = malloc(cap * sizeof(*fields));
	if (fields == NULL)
		return NULL;
	while (header_next(msg, len, &pos, &f)) {
		if (f.name_len == 0)
			continue;
		if (n == cap) {
			struct header_field *p = realloc(fields, 2 * cap * sizeof(*fields));
			if (p == NULL) {
				free(fields);
				return NULL;
			}
			fields = p;
			cap *= 2;
		}
		fields[n++] = f;
	}
	*n_r = n;
	return fields;
}

/* ---- the draft: what a signature takes from the message, for every key ---- */

struct dkim_draft {
	char domain[DNS_HOST_SIZE];
	char identity[DKIM_IDENTITY_SIZE]; /* encoded; "" when none */
	enum dkim_canon header_canon, body_canon;
	time_t timestamp, expire;
	bool query_method;
	size_t width;
	char *headers_text; /* the caller's h= text, which h's names point into; NULL for the default */
	struct hlist h;
	char bh[4 * ((DKIM_DIGEST_SIZE + 2) / 3) + 1]; /* base64 */
	char *canon;        /* the signed fields, canonicalized: RFC 6376 §3.7 hash step 2's input */
	size_t canon_len, canon_cap;
	bool oom;
};

static void draft_sink(void *arg, const void *data, size_t len)
{
	struct dkim_draft *d = arg;
	if (d->oom || len == 0)
		return;
	if (d->canon_len + len > d->canon_cap) {
		size_t cap = (d->canon_len + len) * 2;
		char *p = realloc(d->canon, cap);
		if (p == NULL) {
			d->oom = true;
			return;
		}
		d->canon = p;
		d->canon_cap = cap;
	}
	memcpy(d->canon + d->canon_len, data, len);
	d->canon_len += len;
}

void dkim_draft_free(struct dkim_draft *d)
{
	if (d == NULL)
		return;
	free(d->headers_text);
	free(d->canon);
	free(d);
}

const char *dkim_draft_domain(const struct dkim_draft *d)
{
	return d->domain;
}

static bool draft_params(struct dkim_draft *d, const struct dkim_sign_params *p, const char **error_r)
{
	if (p->domain == NULL || !dkim_domain_valid(p->domain, strlen(p->domain)) || strlen(p->domain) >= DNS_HOST_SIZE) {
		*error_r = "the signing domain is not a domain name";
		return false;
	}
	snprintf(d->domain, sizeof(d->domain), "%s", p->domain);
	if (p->timestamp < 0 || p->expire < 0 || (p->timestamp != 0 && p->expire != 0 && p->expire <= p->timestamp)) {
		*error_r = "the expiry must come after the timestamp (RFC 6376 §3.5 x=)";
		return false;
	}
	if ((p->header_canon != DKIM_CANON_SIMPLE && p->header_canon != DKIM_CANON_RELAXED) ||
	    (p->body_canon != DKIM_CANON_SIMPLE && p->body_canon != DKIM_CANON_RELAXED)) {
		*error_r = "unknown canonicalization";
		return false;
	}
	if (p->identity != NULL && !identity_encode(p->identity, p->domain, d->identity, sizeof(d->identity), error_r))
		return false;
	d->header_canon = p->header_canon;
	d->body_canon = p->body_canon;
	d->timestamp = p->timestamp;
	d->expire = p->expire;
	d->query_method = p->query_method;
	d->width = p->fold_width != 0 ? p->fold_width : DKIM_SIGN_FOLD_DEFAULT;
	/* narrower than a tag name and a few characters makes no sense; RFC 5322 §2.1.1 caps lines at 998 */
	if (d->width < 20)
		d->width = 20;
	if (d->width > 998)
		d->width = 998;
	if (p->headers != NULL && (d->headers_text = strdup(p->headers)) == NULL) {
		*error_r = "out of memory";
		return false;
	}
	return true;
}

/* The h= list, the body hash and the canonical signed fields of msg. */
static bool draft_message(struct dkim_draft *d, const struct dkim_sign_params *p, const char *msg, size_t len,
			  const char **error_r)
{
	size_t nfields = 0;
	struct header_field *fields = fields_collect(msg, len, &nfields);
	bool *taken = calloc(nfields + 1, sizeof(*taken));
	bool ok = false;
	if (fields == NULL || taken == NULL) {
		*error_r = "out of memory";
	} else if (len > 0 && (msg[0] == ' ' || msg[0] == '\t')) {
		/* RFC 5322 §2.2.3: it would continue the field we put on top */
		*error_r = "the message starts with a continuation line";
	} else if (count_fields(fields, nfields, "from") == 0) {
		/* RFC 6376 §5.4: From is the one field that must be signed */
		*error_r = "the message has no From field";
	} else if (d->headers_text != NULL ? !hlist_parse(&d->h, d->headers_text) : !hlist_default(&d->h, fields, nfields)) {
		*error_r = d->headers_text != NULL ? "the header list is not a list of field names"
						   : "the message has too many header fields to sign";
	} else {
		bool from = false;
		for (size_t i = 0; i < d->h.n; i++)
			if (d->h.names[i].len == 4 && strncasecmp(d->h.names[i].p, "from", 4) == 0)
				from = true;
		size_t body = header_body_offset(msg, len);
		unsigned char bh[DKIM_DIGEST_SIZE];
		if (!from) {
			*error_r = "the header list does not include From (RFC 6376 §5.4)";
		} else if (!dkim_body_hash_compute_tail(d->body_canon, msg + body, len - body, &p->body_tail, false, 0, bh,
							NULL)) {
			/* RFC 6376 §3.7 hash step 1 (no l=: a partial body signature invites additions, §8.2) */
			*error_r = "hashing failed";
		} else {
			EVP_EncodeBlock((unsigned char *)d->bh, bh, sizeof(bh));
			dkim_headers_canon(d->header_canon, fields, nfields, taken, d->h.names, d->h.n, draft_sink, d);
			ok = !d->oom;
			if (!ok)
				*error_r = "out of memory";
		}
	}
	free(taken);
	free(fields);
	return ok;
}

struct dkim_draft *dkim_draft_new(const struct dkim_sign_params *p, const char *msg, size_t len, const char **error_r)
{
	struct dkim_draft *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (!draft_params(d, p, error_r) || !draft_message(d, p, msg, len, error_r)) {
		dkim_draft_free(d);
		return NULL;
	}
	return d;
}

char *dkim_draft_field(const struct dkim_draft *d, const char *selector, enum dkim_alg alg,
		       unsigned char digest_r[DKIM_DIGEST_SIZE], const char **error_r)
{
	char value[DKIM_IDENTITY_SIZE];
	if (selector == NULL || !dkim_selector_valid(selector, strlen(selector)) ||
	    strlen(selector) + strlen("._domainkey.") + strlen(d->domain) >= DNS_HOST_SIZE) {
		*error_r = "the selector is not a valid selector for the domain";
		return NULL;
	}
	if (alg != DKIM_ALG_RSA_SHA256 && alg != DKIM_ALG_ED25519_SHA256) {
		*error_r = "the algorithm is neither rsa-sha256 nor ed25519-sha256";
		return NULL;
	}
	struct fold f = {.width = d->width};
	/* the field, up to and including "b=", in the tag order v a c d i q s t x h bh b */
	fold_piece(&f, FOLD_GLUE, "DKIM-Signature: v=1;", strlen("DKIM-Signature: v=1;"));
	fold_tag(&f, "a", dkim_alg_str(alg));
	snprintf(value, sizeof(value), "%s/%s", dkim_canon_str(d->header_canon), dkim_canon_str(d->body_canon));
	fold_tag(&f, "c", value);
	fold_tag(&f, "d", d->domain);
	if (d->identity[0] != '\0')
		fold_tag(&f, "i", d->identity);
	if (d->query_method)
		fold_tag(&f, "q", "dns/txt");
	fold_tag(&f, "s", selector);
	if (d->timestamp != 0) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)d->timestamp);
		fold_tag(&f, "t", value);
	}
	if (d->expire != 0) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)d->expire);
		fold_tag(&f, "x", value);
	}
	fold_hlist(&f, &d->h);
	if (1 + strlen("bh=;") + strlen(d->bh) <= f.width) {
		fold_tag(&f, "bh", d->bh);
	} else {
		/* narrower than the tag: base64 may be broken anywhere, and FWS may precede the ';' */
		fold_piece(&f, FOLD_SPACE, "bh=", 3);
		fold_base64(&f, d->bh, strlen(d->bh));
		fold_piece(&f, FOLD_BREAK, ";", 1);
	}
	/* b= on a line of its own: lines before it stay put whatever the signature's length */
	fold_newline(&f);
	fold_append(&f, "b=", 2);
	if (f.oom) {
		free(f.buf);
		*error_r = "out of memory";
		return NULL;
	}
	/* RFC 6376 §3.7 hash step 2: the signed fields, then this field with an empty b= and no CRLF */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int dlen = 0;
	bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		  (d->canon_len == 0 || EVP_DigestUpdate(md, d->canon, d->canon_len) == 1);
	if (ok) {
		dkim_canon_header(d->header_canon, f.buf, f.len, false, dkim_canon_sink_digest, md);
		ok = EVP_DigestFinal_ex(md, digest_r, &dlen) == 1 && dlen == DKIM_DIGEST_SIZE;
	}
	EVP_MD_CTX_free(md);
	if (!ok) {
		free(f.buf);
		*error_r = "hashing failed";
		return NULL;
	}
	return f.buf;
}

char *dkim_draft_finish(const struct dkim_draft *d, const char *field, const unsigned char *sig, size_t sig_len,
			const char **error_r)
{
	char b64[4 * ((DKIM_SIG_B_MAX + 2) / 3) + 1];
	size_t len = strlen(field);
	const char *nl = strrchr(field, '\n');
	if (sig_len == 0 || sig_len > DKIM_SIG_B_MAX || len < 2 || strcmp(field + len - 2, "b=") != 0) {
		*error_r = "not a signature for this field";
		return NULL;
	}
	struct fold f = {.width = d->width, .col = nl != NULL ? (size_t)(field + len - nl - 1) : len};
	fold_append(&f, field, len);
	int n = EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len);
	fold_base64(&f, b64, (size_t)n);
	fold_append(&f, "\r\n", 2);
	if (f.oom) {
		free(f.buf);
		*error_r = "out of memory";
		return NULL;
	}
	return f.buf;
}

/* ---- signing with a key in hand ---- */

char *dkim_sign(const struct dkim_sign_params *p, const char *msg, size_t len, const char **error_r)
{
	enum dkim_key_type t;
	if (p->key == NULL || !dkim_key_type_get(p->key, &t)) {
		*error_r = "the key is neither RSA nor Ed25519";
		return NULL;
	}
	if (t == DKIM_KEY_RSA && dkim_key_bits(p->key) < DKIM_KEY_RSA_BITS_MIN) {
		*error_r = "the RSA key has fewer than 1024 bits (RFC 8301)";
		return NULL;
	}
	if (t == DKIM_KEY_RSA && dkim_key_bits(p->key) > DKIM_KEY_RSA_BITS_MAX) {
		*error_r = "the RSA key has more than 8192 bits";
		return NULL;
	}
	enum dkim_alg alg = t == DKIM_KEY_RSA ? DKIM_ALG_RSA_SHA256 : DKIM_ALG_ED25519_SHA256;
	unsigned char digest[DKIM_DIGEST_SIZE], sig[DKIM_SIG_B_MAX];
	size_t sig_len = sizeof(sig);
	char *out = NULL, *field = NULL;
	struct dkim_draft *d = dkim_draft_new(p, msg, len, error_r);
	if (d != NULL && (field = dkim_draft_field(d, p->selector, alg, digest, error_r)) != NULL) {
		if (dkim_key_sign_digest(p->key, digest, sizeof(digest), sig, &sig_len))
			out = dkim_draft_finish(d, field, sig, sig_len, error_r);
		else
			*error_r = "the signature could not be made";
	}
	free(field);
	dkim_draft_free(d);
	return out;
}

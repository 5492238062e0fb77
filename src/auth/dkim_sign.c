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

static bool params_check(const struct dkim_sign_params *p, enum dkim_alg *alg_r, const char **error_r)
{
	enum dkim_key_type t;
	if (p->domain == NULL || !dkim_domain_valid(p->domain, strlen(p->domain))) {
		*error_r = "the signing domain is not a domain name";
		return false;
	}
	if (p->selector == NULL || !dkim_selector_valid(p->selector, strlen(p->selector)) ||
	    strlen(p->selector) + strlen("._domainkey.") + strlen(p->domain) >= DNS_HOST_SIZE) {
		*error_r = "the selector is not a valid selector for the domain";
		return false;
	}
	if (p->key == NULL || !dkim_key_type_get(p->key, &t)) {
		*error_r = "the key is neither RSA nor Ed25519";
		return false;
	}
	if (t == DKIM_KEY_RSA && dkim_key_bits(p->key) < DKIM_KEY_RSA_BITS_MIN) {
		*error_r = "the RSA key has fewer than 1024 bits (RFC 8301)";
		return false;
	}
	if (t == DKIM_KEY_RSA && dkim_key_bits(p->key) > DKIM_KEY_RSA_BITS_MAX) {
		*error_r = "the RSA key has more than 8192 bits";
		return false;
	}
	if (p->timestamp < 0 || p->expire < 0 || (p->timestamp != 0 && p->expire != 0 && p->expire <= p->timestamp)) {
		*error_r = "the expiry must come after the timestamp (RFC 6376 §3.5 x=)";
		return false;
	}
	if ((p->header_canon != DKIM_CANON_SIMPLE && p->header_canon != DKIM_CANON_RELAXED) ||
	    (p->body_canon != DKIM_CANON_SIMPLE && p->body_canon != DKIM_CANON_RELAXED)) {
		*error_r = "unknown canonicalization";
		return false;
	}
	*alg_r = t == DKIM_KEY_RSA ? DKIM_ALG_RSA_SHA256 : DKIM_ALG_ED25519_SHA256;
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

/* ---- signing ---- */

/* Everything after the parameters are checked; fold->buf ends up holding the field. */
static bool sign_fields(const struct dkim_sign_params *p, enum dkim_alg alg, const struct header_field *fields,
			size_t nfields, const struct hlist *h, const char *body, size_t body_len, struct fold *f,
			const char **error_r)
{
	unsigned char bh[DKIM_DIGEST_SIZE], digest[DKIM_DIGEST_SIZE];
	char value[DKIM_IDENTITY_SIZE], b64[4 * ((DKIM_SIG_B_MAX + 2) / 3) + 1];

	/* RFC 6376 §3.7 hash step 1: the body (no l=: a partial body signature invites additions, §8.2) */
	if (!dkim_body_hash_compute_tail(p->body_canon, body, body_len, &p->body_tail, false, 0, bh, NULL)) {
		*error_r = "hashing failed";
		return false;
	}
	/* the field, up to and including "b=", in the tag order v a c d i q s t x h bh b */
	fold_piece(f, FOLD_GLUE, "DKIM-Signature: v=1;", strlen("DKIM-Signature: v=1;"));
	fold_tag(f, "a", dkim_alg_str(alg));
	snprintf(value, sizeof(value), "%s/%s", dkim_canon_str(p->header_canon), dkim_canon_str(p->body_canon));
	fold_tag(f, "c", value);
	fold_tag(f, "d", p->domain);
	if (p->identity != NULL) {
		if (!identity_encode(p->identity, p->domain, value, sizeof(value), error_r))
			return false;
		fold_tag(f, "i", value);
	}
	if (p->query_method)
		fold_tag(f, "q", "dns/txt");
	fold_tag(f, "s", p->selector);
	if (p->timestamp != 0) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)p->timestamp);
		fold_tag(f, "t", value);
	}
	if (p->expire != 0) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)p->expire);
		fold_tag(f, "x", value);
	}
	fold_hlist(f, h);
	EVP_EncodeBlock((unsigned char *)b64, bh, sizeof(bh));
	if (1 + strlen("bh=;") + strlen(b64) <= f->width) {
		fold_tag(f, "bh", b64);
	} else {
		/* narrower than the tag: base64 may be broken anywhere, and FWS may precede the ';' */
		fold_piece(f, FOLD_SPACE, "bh=", 3);
		fold_base64(f, b64, strlen(b64));
		fold_piece(f, FOLD_BREAK, ";", 1);
	}
	/* b= on a line of its own: lines before it stay put whatever the signature's length */
	fold_newline(f);
	fold_append(f, "b=", 2);
	f->col += 2;
	if (f->oom) {
		*error_r = "out of memory";
		return false;
	}

	/* RFC 6376 §3.7 hash step 2: the signed fields, then this field with an empty b= and no CRLF */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool *taken = calloc(nfields + 1, sizeof(*taken));
	unsigned int dlen = 0;
	bool ok = md != NULL && taken != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	if (ok) {
		dkim_headers_canon(p->header_canon, fields, nfields, taken, h->names, h->n, dkim_canon_sink_digest, md);
		dkim_canon_header(p->header_canon, f->buf, f->len, false, dkim_canon_sink_digest, md);
		ok = EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == sizeof(digest);
	}
	EVP_MD_CTX_free(md);
	free(taken);
	unsigned char sig[DKIM_SIG_B_MAX];
	size_t sig_len = sizeof(sig);
	if (!ok || !dkim_key_sign_digest(p->key, digest, sizeof(digest), sig, &sig_len)) {
		*error_r = "the signature could not be made";
		return false;
	}
	int n = EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len);
	fold_base64(f, b64, (size_t)n);
	fold_append(f, "\r\n", 2);
	if (f->oom) {
		*error_r = "out of memory";
		return false;
	}
	return true;
}

char *dkim_sign(const struct dkim_sign_params *p, const char *msg, size_t len, const char **error_r)
{
	enum dkim_alg alg;
	if (!params_check(p, &alg, error_r))
		return NULL;

	size_t nfields = 0;
	struct header_field *fields = fields_collect(msg, len, &nfields);
	struct hlist *h = malloc(sizeof(*h));
	if (fields == NULL || h == NULL) {
		free(fields);
		free(h);
		*error_r = "out of memory";
		return NULL;
	}
	char *out = NULL;
	struct fold f = {.width = p->fold_width != 0 ? p->fold_width : DKIM_SIGN_FOLD_DEFAULT};
	/* narrower than a tag name and a few characters makes no sense; RFC 5322 §2.1.1 caps lines at 998 */
	if (f.width < 20)
		f.width = 20;
	if (f.width > 998)
		f.width = 998;

	if (len > 0 && (msg[0] == ' ' || msg[0] == '\t')) {
		/* RFC 5322 §2.2.3: it would continue the field we put on top */
		*error_r = "the message starts with a continuation line";
	} else if (count_fields(fields, nfields, "from") == 0) {
		/* RFC 6376 §5.4: From is the one field that must be signed */
		*error_r = "the message has no From field";
	} else if (p->headers != NULL ? !hlist_parse(h, p->headers) : !hlist_default(h, fields, nfields)) {
		*error_r = p->headers != NULL ? "the header list is not a list of field names"
					      : "the message has too many header fields to sign";
	} else {
		bool from = false;
		for (size_t i = 0; i < h->n; i++)
			if (h->names[i].len == 4 && strncasecmp(h->names[i].p, "from", 4) == 0)
				from = true;
		size_t body = header_body_offset(msg, len);
		if (!from) {
			*error_r = "the header list does not include From (RFC 6376 §5.4)";
		} else if (sign_fields(p, alg, fields, nfields, h, msg + body, len - body, &f, error_r)) {
			out = f.buf;
			f.buf = NULL;
		}
	}
	free(f.buf);
	free(h);
	free(fields);
	return out;
}

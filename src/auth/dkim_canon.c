/* dkim_canon.c — RFC 6376 §3.4 canonicalization and the §3.7 body hash. */
#include "auth/dkim_canon.h"

#include <stdlib.h>
#include <string.h>

const char *dkim_canon_str(enum dkim_canon c)
{
	switch (c) {
	case DKIM_CANON_SIMPLE: return "simple";
	case DKIM_CANON_RELAXED: return "relaxed";
	}
	return "?";
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Output batched through a small buffer: the relaxed header algorithm writes octet by octet. */
struct outbuf {
	dkim_canon_sink_fn *sink;
	void *arg;
	size_t len;
	char buf[256];
};

static void outbuf_flush(struct outbuf *o)
{
	if (o->len > 0)
		o->sink(o->arg, o->buf, o->len);
	o->len = 0;
}

static void outbuf_put(struct outbuf *o, char c)
{
	if (o->len == sizeof(o->buf))
		outbuf_flush(o);
	o->buf[o->len++] = c;
}

/* The length of raw without its final line end (CRLF, or a bare LF). */
static size_t strip_line_end(const char *raw, size_t len)
{
	if (len >= 2 && raw[len - 2] == '\r' && raw[len - 1] == '\n')
		return len - 2;
	if (len >= 1 && raw[len - 1] == '\n')
		return len - 1;
	return len;
}

void dkim_canon_header(enum dkim_canon c, const char *raw, size_t len, bool final_crlf,
		       dkim_canon_sink_fn *sink, void *arg)
{
	size_t end = strip_line_end(raw, len);

	if (c == DKIM_CANON_SIMPLE) {
		/* RFC 6376 §3.4.1: no change at all (the line end is CRLF by RFC 5322) */
		if (end > 0)
			sink(arg, raw, end);
		if (final_crlf)
			sink(arg, "\r\n", 2);
		return;
	}

	struct outbuf o = {.sink = sink, .arg = arg};
	const char *colon = memchr(raw, ':', end);
	size_t name_end = colon != NULL ? (size_t)(colon - raw) : end;

	/* RFC 6376 §3.4.2: the name in lower case, without WSP before the colon */
	size_t n = name_end;
	while (n > 0 && (is_wsp(raw[n - 1]) || raw[n - 1] == '\r' || raw[n - 1] == '\n'))
		n--;
	for (size_t i = 0; i < n; i++) {
		char ch = raw[i];
		if (ch == '\r' || ch == '\n')
			continue;
		outbuf_put(&o, (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch));
	}
	if (colon != NULL) {
		outbuf_put(&o, ':');
		/* RFC 6376 §3.4.2: unfold (line ends go), WSP runs become one SP, none after the colon
		 * nor at the end of the value */
		bool wsp = false, any = false;
		for (size_t i = name_end + 1; i < end; i++) {
			char ch = raw[i];
			if (ch == '\r' && i + 1 < end && raw[i + 1] == '\n')
				continue;
			if (ch == '\n')
				continue;
			if (is_wsp(ch)) {
				wsp = true;
				continue;
			}
			if (wsp && any)
				outbuf_put(&o, ' ');
			wsp = false;
			any = true;
			outbuf_put(&o, ch);
		}
	}
	if (final_crlf) {
		outbuf_put(&o, '\r');
		outbuf_put(&o, '\n');
	}
	outbuf_flush(&o);
}

void dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon c, dkim_canon_sink_fn *sink, void *arg)
{
	memset(b, 0, sizeof(*b));
	b->canon = c;
	b->sink = sink;
	b->arg = arg;
}

static const char crlfs[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

static void emit_crlfs(struct dkim_body_canon *b, uint64_t n)
{
	while (n > 0) {
		size_t k = n > (sizeof(crlfs) - 1) / 2 ? (sizeof(crlfs) - 1) / 2 : (size_t)n;
		b->sink(b->arg, crlfs, 2 * k);
		n -= k;
	}
}

/* Content octets of the current line (for relaxed: no WSP among them). */
static void body_content(struct dkim_body_canon *b, const char *p, size_t n)
{
	/* RFC 6376 §3.4.3, §3.4.4: empty lines count only when something follows them */
	if (b->empty_lines > 0) {
		emit_crlfs(b, b->empty_lines);
		b->empty_lines = 0;
	}
	/* RFC 6376 §3.4.4: a WSP run inside a line is one SP (at the start of a line too) */
	if (b->wsp_pending) {
		b->sink(b->arg, " ", 1);
		b->wsp_pending = false;
	}
	b->sink(b->arg, p, n);
	b->line_content = true;
	b->any_output = true;
}

static void body_line_end(struct dkim_body_canon *b)
{
	/* RFC 6376 §3.4.4: WSP at the end of a line is ignored */
	b->wsp_pending = false;
	if (b->line_content) {
		b->sink(b->arg, "\r\n", 2);
		b->line_content = false;
	} else {
		b->empty_lines++;
	}
}

void dkim_body_canon_update(struct dkim_body_canon *b, const char *data, size_t len)
{
	bool relaxed = b->canon == DKIM_CANON_RELAXED;
	size_t i = 0;

	while (i < len) {
		if (b->cr_pending) {
			b->cr_pending = false;
			if (data[i] == '\n') {
				body_line_end(b);
				i++;
				continue;
			}
			body_content(b, "\r", 1); /* a bare CR is an ordinary octet */
		}
		char c = data[i];
		if (c == '\r') {
			b->cr_pending = true;
			i++;
			continue;
		}
		if (relaxed && is_wsp(c)) {
			b->wsp_pending = true;
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < len && data[j] != '\r' && !(relaxed && is_wsp(data[j])))
			j++;
		body_content(b, data + i, j - i);
		i = j;
	}
}

void dkim_body_canon_final(struct dkim_body_canon *b)
{
	if (b->cr_pending) {
		b->cr_pending = false;
		body_content(b, "\r", 1);
	}
	b->wsp_pending = false;
	if (b->line_content) {
		/* RFC 6376 §3.4.3, §3.4.4: a last line without CRLF gets one */
		b->sink(b->arg, "\r\n", 2);
		b->line_content = false;
	} else if (b->canon == DKIM_CANON_SIMPLE && !b->any_output) {
		/* RFC 6376 §3.4.3: an empty body is one CRLF in simple; in relaxed it stays empty
		 * (§3.4.4, erratum 1384) */
		b->sink(b->arg, "\r\n", 2);
	}
	b->empty_lines = 0;
}

void dkim_canon_sink_digest(void *arg, const void *data, size_t len)
{
	EVP_DigestUpdate((EVP_MD_CTX *)arg, data, len);
}

/* Counts every canonical octet, hashes those under the limit. */
static void body_hash_sink(void *arg, const void *data, size_t len)
{
	struct dkim_body_hash *h = arg;
	size_t take = len;
	if (h->has_limit) {
		uint64_t room = h->limit - h->hashed;
		if (take > room)
			take = (size_t)room;
	}
	if (take > 0) {
		if (h->staged + take > sizeof(h->stage)) {
			EVP_DigestUpdate(h->md, h->stage, h->staged);
			h->staged = 0;
		}
		if (take >= sizeof(h->stage)) {
			EVP_DigestUpdate(h->md, data, take);
		} else {
			memcpy(h->stage + h->staged, data, take);
			h->staged += take;
		}
		h->hashed += take;
	}
	h->total += len;
}

bool dkim_body_hash_init(struct dkim_body_hash *h, enum dkim_canon c, bool has_limit, uint64_t limit)
{
	memset(h, 0, sizeof(*h));
	h->has_limit = has_limit;
	h->limit = limit;
	h->md = EVP_MD_CTX_new();
	if (h->md == NULL)
		return false;
	if (EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->md);
		h->md = NULL;
		return false;
	}
	dkim_body_canon_init(&h->canon, c, body_hash_sink, h);
	return true;
}

void dkim_body_hash_update(struct dkim_body_hash *h, const char *data, size_t len)
{
	dkim_body_canon_update(&h->canon, data, len);
}

bool dkim_body_hash_final(struct dkim_body_hash *h, unsigned char digest_r[DKIM_DIGEST_SIZE])
{
	unsigned int n = 0;
	dkim_body_canon_final(&h->canon);
	if (h->staged > 0)
		EVP_DigestUpdate(h->md, h->stage, h->staged);
	h->staged = 0;
	return EVP_DigestFinal_ex(h->md, digest_r, &n) == 1 && n == DKIM_DIGEST_SIZE;
}

void dkim_body_hash_clear(struct dkim_body_hash *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

bool dkim_body_tail_feed(const struct dkim_body_tail *tail, void (*update)(void *arg, const char *data, size_t len),
			 void *arg)
{
	if (tail == NULL || tail->read == NULL)
		return true;
	char *buf = malloc(DKIM_BODY_TAIL_PIECE);
	ssize_t n = -1;
	uint64_t off = 0;
	while (buf != NULL && (n = tail->read(tail->arg, off, buf, DKIM_BODY_TAIL_PIECE)) > 0) {
		update(arg, buf, (size_t)n);
		off += (uint64_t)n;
	}
	free(buf);
	return n == 0;
}

static void body_hash_update_cb(void *arg, const char *data, size_t len)
{
	dkim_body_hash_update(arg, data, len);
}

bool dkim_body_hash_compute(enum dkim_canon c, const char *body, size_t len, bool has_limit, uint64_t limit,
			    unsigned char digest_r[DKIM_DIGEST_SIZE], uint64_t *total_r)
{
	return dkim_body_hash_compute_tail(c, body, len, NULL, has_limit, limit, digest_r, total_r);
}

bool dkim_body_hash_compute_tail(enum dkim_canon c, const char *body, size_t len, const struct dkim_body_tail *tail,
				 bool has_limit, uint64_t limit, unsigned char digest_r[DKIM_DIGEST_SIZE], uint64_t *total_r)
{
	struct dkim_body_hash h;
	if (!dkim_body_hash_init(&h, c, has_limit, limit))
		return false;
	dkim_body_hash_update(&h, body, len);
	bool ok = dkim_body_tail_feed(tail, body_hash_update_cb, &h);
	ok = dkim_body_hash_final(&h, digest_r) && ok;
	if (total_r != NULL)
		*total_r = h.total;
	dkim_body_hash_clear(&h);
	return ok;
}

/* dkim_key.c — DKIM private keys, key records (RFC 6376 §3.6.1, RFC 8463 §4) and base64. */
#include "auth/dkim_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/tagval.h"
#include "util/base64.h"

const char *dkim_key_type_str(enum dkim_key_type t)
{
	switch (t) {
	case DKIM_KEY_RSA: return "rsa";
	case DKIM_KEY_ED25519: return "ed25519";
	}
	return "?";
}

const char *dkim_alg_str(enum dkim_alg a)
{
	switch (a) {
	case DKIM_ALG_RSA_SHA256: return "rsa-sha256";
	case DKIM_ALG_ED25519_SHA256: return "ed25519-sha256";
	case DKIM_ALG_RSA_SHA1: return "rsa-sha1";
	}
	return "?";
}

enum dkim_key_type dkim_alg_key_type(enum dkim_alg a)
{
	return a == DKIM_ALG_ED25519_SHA256 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
}

const char *dkim_key_error_str(enum dkim_key_error e)
{
	switch (e) {
	case DKIM_KEY_OK: return "ok";
	case DKIM_KEY_SYNTAX: return "syntax";
	case DKIM_KEY_VERSION: return "version";
	case DKIM_KEY_TYPE: return "type";
	case DKIM_KEY_ENCODING: return "encoding";
	case DKIM_KEY_INVALID: return "invalid";
	case DKIM_KEY_SIZE: return "size";
	case DKIM_KEY_EXISTS: return "exists";
	case DKIM_KEY_SYSTEM: return "system";
	}
	return "?";
}

/* ---- base64 ---- */

const char *dkim_base64_error_str(enum dkim_base64_error e)
{
	switch (e) {
	case DKIM_BASE64_OK: return "ok";
	case DKIM_BASE64_SYNTAX: return "syntax";
	case DKIM_BASE64_TOO_LONG: return "too_long";
	}
	return "?";
}

enum dkim_base64_error dkim_base64_decode(const char *s, size_t len, unsigned char *out, size_t out_size,
					  size_t *out_len_r)
{
	uint32_t v = 0;
	unsigned q = 0, pad = 0;
	size_t o = 0;
	bool done = false;

	*out_len_r = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* RFC 6376 §2.4: FWS may appear anywhere in a base64string */
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (done)
			return DKIM_BASE64_SYNTAX; /* data after the padded last quantum */
		if (c == '=') {
			/* RFC 2045 §6.8: one or two '=' end the data, after at least two characters */
			if (q < 2)
				return DKIM_BASE64_SYNTAX;
			pad++;
			v <<= 6;
			q++;
		} else {
			int x = base64_value(c);
			if (x < 0 || pad > 0)
				return DKIM_BASE64_SYNTAX;
			v = v << 6 | (uint32_t)x;
			q++;
		}
		if (q == 4) {
			size_t n = 3 - pad;
			if (n > out_size - o)
				return DKIM_BASE64_TOO_LONG;
			out[o++] = (unsigned char)(v >> 16);
			if (n > 1)
				out[o++] = (unsigned char)(v >> 8);
			if (n > 2)
				out[o++] = (unsigned char)v;
			done = pad > 0;
			q = 0;
			v = 0;
		}
	}
	if (q != 0)
		return DKIM_BASE64_SYNTAX;
	*out_len_r = o;
	return DKIM_BASE64_OK;
}

/* ---- key records ---- */

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A colon-separated list (RFC 6376 §3.6.1 h=, s=, t=): whether it names word (ignoring case);
 * *ok_r false when an element is empty or not a hyphenated-word (or "*"). */
static bool list_has(const struct tagval *t, const char *word, bool *ok_r)
{
	size_t wlen = strlen(word), i = 0;
	bool found = false;
	*ok_r = true;
	while (i <= t->value_len) {
		size_t start = i;
		while (i < t->value_len && t->value[i] != ':')
			i++;
		size_t end = i;
		while (start < end && is_fws(t->value[start]))
			start++;
		while (end > start && is_fws(t->value[end - 1]))
			end--;
		if (end == start) {
			*ok_r = false;
			return false;
		}
		for (size_t k = start; k < end; k++) {
			char c = t->value[k];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			      c == '*')) {
				*ok_r = false;
				return false;
			}
		}
		if (end - start == wlen && strncasecmp(t->value + start, word, wlen) == 0)
			found = true;
		i++; /* past the ':' (or past the end) */
	}
	return found;
}

/* p= of k=rsa: SubjectPublicKeyInfo, else a bare PKCS#1 RSAPublicKey; all octets must be used. */
static EVP_PKEY *rsa_from_der(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k != NULL && p != der + len) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	if (k == NULL) {
		p = der;
		k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
		if (k != NULL && p != der + len) {
			EVP_PKEY_free(k);
			k = NULL;
		}
	}
	if (k != NULL && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	/* the failed attempts leave errors in the thread's queue; TLS code on this thread must not see them */
	ERR_clear_error();
	return k;
}

enum dkim_key_error dkim_key_record_parse(const char *text, size_t len, struct dkim_key_record *r,
					  const char **error_r)
{
	struct tagval tags[TAGVAL_MAX];
	size_t n;
	const char *why;
	bool ok;

	memset(r, 0, sizeof(*r));
	if (tagval_parse(text, len, 0, tags, TAGVAL_MAX, &n, &why) != TAGVAL_OK) {
		*error_r = "key record is not a valid tag=value list";
		return DKIM_KEY_SYNTAX;
	}
	/* RFC 6376 §3.6.1: v= is optional, but when present it comes first and is exactly "DKIM1" */
	const struct tagval *v = tagval_find(tags, n, "v");
	if (v != NULL && (v != &tags[0] || v->value_len != 5 || memcmp(v->value, "DKIM1", 5) != 0)) {
		*error_r = v != &tags[0] ? "key record v= is not the first tag" : "key record v= is not DKIM1";
		return DKIM_KEY_VERSION;
	}
	/* RFC 6376 §3.6.1: h= lists the hashes the key may be used with; absent means any */
	const struct tagval *h = tagval_find(tags, n, "h");
	r->hash_sha256 = h == NULL || list_has(h, "sha256", &ok);
	if (h != NULL && !ok) {
		*error_r = "key record h= is not a list of hash names";
		return DKIM_KEY_SYNTAX;
	}
	/* RFC 6376 §3.6.1: s= lists services; "*" (the default) or "email" is ours */
	const struct tagval *s = tagval_find(tags, n, "s");
	r->service_email = s == NULL || list_has(s, "email", &ok) || list_has(s, "*", &ok);
	if (s != NULL && !ok) {
		*error_r = "key record s= is not a list of service types";
		return DKIM_KEY_SYNTAX;
	}
	/* RFC 6376 §3.6.1: t= flags y (testing) and s (strict); unknown flags are ignored */
	const struct tagval *t = tagval_find(tags, n, "t");
	if (t != NULL) {
		r->testing = list_has(t, "y", &ok);
		r->strict = list_has(t, "s", &ok);
		if (!ok) {
			*error_r = "key record t= is not a list of flags";
			return DKIM_KEY_SYNTAX;
		}
	}
	const struct tagval *k = tagval_find(tags, n, "k");
	if (k == NULL || tagval_value_is(k, "rsa")) {
		r->type = DKIM_KEY_RSA;
	} else if (tagval_value_is(k, "ed25519")) {
		r->type = DKIM_KEY_ED25519;
	} else {
		*error_r = "key record k= names a key type we do not implement";
		return DKIM_KEY_TYPE;
	}
	const struct tagval *p = tagval_find(tags, n, "p");
	if (p == NULL) {
		*error_r = "key record has no p=";
		return DKIM_KEY_SYNTAX;
	}
	unsigned char der[DKIM_KEY_DER_MAX];
	size_t der_len;
	switch (dkim_base64_decode(p->value, p->value_len, der, sizeof(der), &der_len)) {
	case DKIM_BASE64_OK:
		break;
	case DKIM_BASE64_SYNTAX:
		*error_r = "key record p= is not base64";
		return DKIM_KEY_ENCODING;
	case DKIM_BASE64_TOO_LONG:
		*error_r = "key record p= is too long";
		return DKIM_KEY_SIZE;
	}
	if (der_len == 0) {
		/* RFC 6376 §3.6.1: an empty p= means the key has been revoked */
		r->revoked = true;
		return DKIM_KEY_OK;
	}
	EVP_PKEY *key;
	if (r->type == DKIM_KEY_ED25519) {
		/* RFC 8463 §4: the raw 32-octet public key, not wrapped in ASN.1 */
		if (der_len != 32) {
			*error_r = "Ed25519 key must be 32 bytes";
			return DKIM_KEY_INVALID;
		}
		key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, der_len);
		ERR_clear_error();
		if (key == NULL) {
			*error_r = "key record p= is not an Ed25519 key";
			return DKIM_KEY_INVALID;
		}
	} else {
		key = rsa_from_der(der, der_len);
		if (key == NULL) {
			*error_r = "key record p= is not an RSA public key";
			return DKIM_KEY_INVALID;
		}
		int bits = EVP_PKEY_get_bits(key);
		if (bits <= 0 || bits > DKIM_KEY_RSA_BITS_MAX) {
			EVP_PKEY_free(key);
			*error_r = "RSA key is larger than 8192 bits";
			return DKIM_KEY_SIZE;
		}
	}
	r->pkey = key;
	r->bits = dkim_key_bits(key);
	return DKIM_KEY_OK;
}

void dkim_key_record_clear(struct dkim_key_record *r)
{
	EVP_PKEY_free(r->pkey);
	r->pkey = NULL;
}

bool dkim_key_record_matches(const struct dkim_key_record *r, const EVP_PKEY *key)
{
	if (r->pkey == NULL || key == NULL)
		return false;
	bool eq = EVP_PKEY_eq(r->pkey, key) == 1;
	ERR_clear_error();
	return eq;
}

bool dkim_key_type_get(const EVP_PKEY *key, enum dkim_key_type *t_r)
{
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		*t_r = DKIM_KEY_RSA;
		return true;
	case EVP_PKEY_ED25519:
		*t_r = DKIM_KEY_ED25519;
		return true;
	default:
		return false;
	}
}

unsigned dkim_key_bits(const EVP_PKEY *key)
{
	enum dkim_key_type t;
	if (key == NULL || !dkim_key_type_get(key, &t))
		return 0;
	if (t == DKIM_KEY_ED25519)
		return 256;
	int bits = EVP_PKEY_get_bits(key);
	return bits > 0 ? (unsigned)bits : 0;
}

char *dkim_key_record_format(const EVP_PKEY *key, const char **error_r)
{
	enum dkim_key_type t;
	if (key == NULL || !dkim_key_type_get(key, &t)) {
		*error_r = "only RSA and Ed25519 keys can be published for DKIM";
		return NULL;
	}
	unsigned char *der = NULL;
	size_t der_len = 0;
	if (t == DKIM_KEY_RSA) {
		int n = i2d_PUBKEY(key, &der);
		if (n <= 0) {
			ERR_clear_error();
			*error_r = "the public key cannot be encoded";
			return NULL;
		}
		der_len = (size_t)n;
	} else {
		/* RFC 8463 §4: p= is the raw public key */
		der = OPENSSL_malloc(32);
		der_len = 32;
		if (der == NULL || EVP_PKEY_get_raw_public_key(key, der, &der_len) != 1 || der_len != 32) {
			OPENSSL_free(der);
			ERR_clear_error();
			*error_r = "the public key cannot be encoded";
			return NULL;
		}
	}
	const char *prefix = t == DKIM_KEY_RSA ? "v=DKIM1; k=rsa; p=" : "v=DKIM1; k=ed25519; p=";
	size_t plen = strlen(prefix), b64 = 4 * ((der_len + 2) / 3);
	char *out = malloc(plen + b64 + 1);
	if (out == NULL) {
		OPENSSL_free(der);
		*error_r = "out of memory";
		return NULL;
	}
	memcpy(out, prefix, plen);
	EVP_EncodeBlock((unsigned char *)out + plen, der, (int)der_len);
	out[plen + b64] = '\0';
	OPENSSL_free(der);
	return out;
}

/* ---- signatures ---- */

bool dkim_key_sign_digest(EVP_PKEY *key, const unsigned char *digest, size_t digest_len, unsigned char *sig,
			  size_t *sig_len_r)
{
	enum dkim_key_type t;
	bool ok = false;
	if (key == NULL || !dkim_key_type_get(key, &t))
		return false;
	if (t == DKIM_KEY_RSA) {
		/* RFC 6376 §3.3.2: RSASSA-PKCS1-v1_5 with SHA-256 (the DigestInfo names SHA-256) */
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
		size_t need = 0;
		ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_sign(ctx, NULL, &need, digest, digest_len) == 1 && need <= *sig_len_r &&
		     EVP_PKEY_sign(ctx, sig, sig_len_r, digest, digest_len) == 1;
		EVP_PKEY_CTX_free(ctx);
	} else {
		/* RFC 8463 §3: PureEdDSA (no prehash) over the SHA-256 digest */
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		size_t need = 0;
		ok = md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestSign(md, NULL, &need, digest, digest_len) == 1 && need <= *sig_len_r &&
		     EVP_DigestSign(md, sig, sig_len_r, digest, digest_len) == 1;
		EVP_MD_CTX_free(md);
	}
	ERR_clear_error();
	return ok;
}

bool dkim_key_verify_digest(EVP_PKEY *key, enum dkim_alg alg, const unsigned char *digest, size_t digest_len,
			    const unsigned char *sig, size_t sig_len)
{
	enum dkim_key_type t;
	bool ok = false;
	if (key == NULL || !dkim_key_type_get(key, &t) || t != dkim_alg_key_type(alg))
		return false;
	if (t == DKIM_KEY_RSA) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
		ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, alg == DKIM_ALG_RSA_SHA1 ? EVP_sha1() : EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1;
		EVP_PKEY_CTX_free(ctx);
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ok = md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(md, sig, sig_len, digest, digest_len) == 1;
		EVP_MD_CTX_free(md);
	}
	ERR_clear_error();
	return ok;
}

/* ---- private keys ---- */

/* Never prompt on a terminal for a passphrase: an encrypted key simply fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static bool contains(const char *s, size_t len, const char *word)
{
	return memmem(s, len, word, strlen(word)) != NULL;
}

enum dkim_key_error dkim_key_pem_parse(const char *pem, size_t len, EVP_PKEY **key_r, const char **error_r)
{
	*key_r = NULL;
	if (len > DKIM_KEY_PEM_MAX) {
		*error_r = "the key file is too large to be a PEM private key";
		return DKIM_KEY_SIZE;
	}
	/* PKCS#8 "BEGIN ENCRYPTED PRIVATE KEY", or a traditional PEM with "Proc-Type: 4,ENCRYPTED" */
	if (contains(pem, len, "BEGIN ENCRYPTED PRIVATE KEY") || contains(pem, len, "Proc-Type: 4,ENCRYPTED")) {
		*error_r = "the private key is encrypted; DKIM keys are stored without a passphrase";
		return DKIM_KEY_ENCODING;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		*error_r = "out of memory";
		return DKIM_KEY_SYSTEM;
	}
	EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (key == NULL) {
		*error_r = "not a PEM private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)";
		return DKIM_KEY_ENCODING;
	}
	enum dkim_key_type t;
	if (!dkim_key_type_get(key, &t)) {
		EVP_PKEY_free(key);
		*error_r = "the private key is neither RSA nor Ed25519, the DKIM key types";
		return DKIM_KEY_TYPE;
	}
	*key_r = key;
	return DKIM_KEY_OK;
}

typedef enum dkim_key_error pem_parse_fn(const char *pem, size_t len, EVP_PKEY **key_r, const char **error_r);

/* Reads path (at most DKIM_KEY_PEM_MAX octets) and parses it with parse; the text is wiped after. */
static enum dkim_key_error key_file_load(const char *path, pem_parse_fn *parse, EVP_PKEY **key_r, const char **error_r)
{
	*key_r = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = "cannot open the key file";
		return DKIM_KEY_SYSTEM;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		*error_r = "the key file is not a regular file";
		return DKIM_KEY_SYSTEM;
	}
	/* one octet more than allowed, to tell a file that is too large */
	char *buf = malloc(DKIM_KEY_PEM_MAX + 1);
	if (buf == NULL) {
		close(fd);
		*error_r = "out of memory";
		return DKIM_KEY_SYSTEM;
	}
	size_t len = 0;
	while (len < DKIM_KEY_PEM_MAX + 1) {
		ssize_t r = read(fd, buf + len, DKIM_KEY_PEM_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			OPENSSL_cleanse(buf, len);
			free(buf);
			close(fd);
			errno = e;
			*error_r = "cannot read the key file";
			return DKIM_KEY_SYSTEM;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	enum dkim_key_error e = parse(buf, len, key_r, error_r);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return e;
}

/* A public key file: SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"). */
static enum dkim_key_error public_pem_parse(const char *pem, size_t len, EVP_PKEY **key_r, const char **error_r)
{
	*key_r = NULL;
	if (len > DKIM_KEY_PEM_MAX) {
		*error_r = "the key file is too large to be a PEM public key";
		return DKIM_KEY_SIZE;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		*error_r = "out of memory";
		return DKIM_KEY_SYSTEM;
	}
	EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	enum dkim_key_type t;
	if (key == NULL || !dkim_key_type_get(key, &t)) {
		EVP_PKEY_free(key);
		*error_r = "not a PEM public key (BEGIN PUBLIC KEY) of RSA or Ed25519";
		return DKIM_KEY_ENCODING;
	}
	*key_r = key;
	return DKIM_KEY_OK;
}

enum dkim_key_error dkim_key_file_load(const char *path, EVP_PKEY **key_r, const char **error_r)
{
	return key_file_load(path, dkim_key_pem_parse, key_r, error_r);
}

enum dkim_key_error dkim_key_public_file_load(const char *path, EVP_PKEY **key_r, const char **error_r)
{
	return key_file_load(path, public_pem_parse, key_r, error_r);
}

enum dkim_key_error dkim_key_generate(enum dkim_key_type t, unsigned bits, EVP_PKEY **key_r, const char **error_r)
{
	*key_r = NULL;
	EVP_PKEY *key;
	if (t == DKIM_KEY_RSA) {
		if (bits == 0)
			bits = DKIM_KEY_RSA_BITS_DEFAULT;
		/* RFC 8301 §3.2: 1024 bits is the floor and 2048 the recommendation; we give new keys 2048 */
		if (bits < DKIM_KEY_RSA_BITS_NEW_MIN) {
			*error_r = "new RSA keys must have at least 2048 bits (RFC 8301)";
			return DKIM_KEY_SIZE;
		}
		if (bits > DKIM_KEY_RSA_BITS_NEW_MAX) {
			*error_r = "new RSA keys may have at most 4096 bits, the most every verifier handles (RFC 8301)";
			return DKIM_KEY_SIZE;
		}
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	} else if (t == DKIM_KEY_ED25519) {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else {
		*error_r = "unknown key type";
		return DKIM_KEY_TYPE;
	}
	if (key == NULL) {
		ERR_clear_error();
		*error_r = "key generation failed";
		return DKIM_KEY_SYSTEM;
	}
	*key_r = key;
	return DKIM_KEY_OK;
}

static bool write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

/* The private key (mode 0600) or its public half (0644) as PEM at path, never over a file. */
static enum dkim_key_error key_file_write(const EVP_PKEY *key, bool public_only, const char *path, const char **error_r)
{
	enum dkim_key_type t;
	if (key == NULL || !dkim_key_type_get(key, &t)) {
		*error_r = "only RSA and Ed25519 keys are DKIM keys";
		return DKIM_KEY_TYPE;
	}
	BIO *bio = BIO_new(BIO_s_mem());
	/* OpenSSL 3 writes PKCS#8 ("BEGIN PRIVATE KEY") for every key type */
	mode_t mode = public_only ? 0644 : 0600;
	if (bio == NULL || (public_only ? PEM_write_bio_PUBKEY(bio, (EVP_PKEY *)key)
					: PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) != 1) {
		BIO_free(bio);
		ERR_clear_error();
		*error_r = "the private key cannot be encoded";
		return DKIM_KEY_SYSTEM;
	}
	char *pem;
	long pem_len = BIO_get_mem_data(bio, &pem);

	/* never overwrite: a key that signs mail may be published already */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;
		OPENSSL_cleanse(pem, pem_len > 0 ? (size_t)pem_len : 0);
		BIO_free_all(bio);
		errno = e;
		*error_r = e == EEXIST ? "a file already exists at the key path" : "cannot create the key file";
		return e == EEXIST ? DKIM_KEY_EXISTS : DKIM_KEY_SYSTEM;
	}
	/* the umask may only remove bits; make the mode exact */
	bool ok = fchmod(fd, mode) == 0 && pem_len > 0 && write_all(fd, pem, (size_t)pem_len) && fsync(fd) == 0;
	int e = errno;
	OPENSSL_cleanse(pem, pem_len > 0 ? (size_t)pem_len : 0);
	BIO_free_all(bio);
	if (close(fd) != 0 && ok) {
		ok = false;
		e = errno;
	}
	if (!ok) {
		unlink(path);
		errno = e;
		*error_r = "cannot write the key file";
		return DKIM_KEY_SYSTEM;
	}
	return DKIM_KEY_OK;
}

enum dkim_key_error dkim_key_file_write(const EVP_PKEY *key, const char *path, const char **error_r)
{
	return key_file_write(key, false, path, error_r);
}

enum dkim_key_error dkim_key_public_file_write(const EVP_PKEY *key, const char *path, const char **error_r)
{
	return key_file_write(key, true, path, error_r);
}

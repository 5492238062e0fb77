/* dkim_key.h — DKIM keys: the signing algorithms, private keys (PEM in, generated, PEM out), the DNS
 * key record (RFC 6376 §3.6.1, RFC 8463 §4) in both directions, and the check that a published record
 * holds our public key. Pure apart from the two file functions; libcrypto only. */
#ifndef MAILWERK_AUTH_DKIM_KEY_H
#define MAILWERK_AUTH_DKIM_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

enum dkim_key_type {
	DKIM_KEY_RSA = 0,   /* k=rsa (RFC 6376 §3.6.1) */
	DKIM_KEY_ED25519,   /* k=ed25519 (RFC 8463 §4) */
};
/* "rsa", "ed25519" (the words of k=) */
const char *dkim_key_type_str(enum dkim_key_type t);

enum dkim_alg {
	DKIM_ALG_RSA_SHA256 = 0, /* RFC 6376 §3.3.2 */
	DKIM_ALG_ED25519_SHA256, /* RFC 8463 §3 */
	DKIM_ALG_RSA_SHA1,       /* RFC 6376 §3.3.1; recognized only to be refused (RFC 8301 §3.1) */
};
/* "rsa-sha256", "ed25519-sha256", "rsa-sha1" (the words of a=) */
const char *dkim_alg_str(enum dkim_alg a);
/* The key type an algorithm signs with. */
enum dkim_key_type dkim_alg_key_type(enum dkim_alg a);

/* New keys: RFC 8301 §3.2 asks for at least 1024 bits and recommends 2048; we refuse less than 2048
 * for new keys, and more than 4096, the most every verifier must handle (RFC 8301 §3.2). */
#define DKIM_KEY_RSA_BITS_DEFAULT 2048
#define DKIM_KEY_RSA_BITS_NEW_MIN 2048
#define DKIM_KEY_RSA_BITS_NEW_MAX 4096
/* RFC 8301 §3.2: a verifier must not accept RSA keys under 1024 bits; neither does the signer. */
#define DKIM_KEY_RSA_BITS_MIN 1024
/* Published RSA keys larger than this are refused: they only cost verification time. */
#define DKIM_KEY_RSA_BITS_MAX 8192
/* The longest p= we decode (an 8192-bit SubjectPublicKeyInfo is about 1060 octets). */
#define DKIM_KEY_DER_MAX 2048
/* A PEM private key file larger than this is not one we wrote or opendkim-genkey did. */
#define DKIM_KEY_PEM_MAX (64 * 1024)

enum dkim_key_error {
	DKIM_KEY_OK = 0,
	DKIM_KEY_SYNTAX,   /* not a tag=value list, a tag value against its grammar, p= missing */
	DKIM_KEY_VERSION,  /* v= not DKIM1, or not the first tag (RFC 6376 §3.6.1) */
	DKIM_KEY_TYPE,     /* a key type we do not implement (k=, or the key inside a PEM file) */
	DKIM_KEY_ENCODING, /* p= not base64; PEM that does not parse, or is encrypted */
	DKIM_KEY_INVALID,  /* data that is not a key of its type */
	DKIM_KEY_SIZE,     /* RSA modulus out of the allowed range; data too long */
	DKIM_KEY_EXISTS,   /* a file is already at the path we would write a key to */
	DKIM_KEY_SYSTEM,   /* a file or libcrypto failure (errno tells more for files) */
};
const char *dkim_key_error_str(enum dkim_key_error e);

/* A key record from DNS (RFC 6376 §3.6.1). */
struct dkim_key_record {
	enum dkim_key_type type; /* k= (default rsa) */
	EVP_PKEY *pkey;          /* NULL when revoked */
	bool revoked;            /* p= empty */
	bool hash_sha256;        /* h= absent, or lists sha256 */
	bool service_email;      /* s= absent, or lists email or * */
	bool testing;            /* t=y */
	bool strict;             /* t=s: i= must have exactly the domain of d= */
	unsigned bits;           /* RSA modulus size; 256 for Ed25519; 0 when revoked */
};

/* Parses a TXT record's text (its strings joined, RFC 6376 §3.6.2.2). On success the caller owns
 * r->pkey (dkim_key_record_clear frees it); on failure r holds nothing to free. Unknown tags are
 * ignored (§3.6.1). RSA p= is a SubjectPublicKeyInfo (the common form) or a bare PKCS#1
 * RSAPublicKey (what §3.6.1 literally says); Ed25519 p= is the raw 32-octet key (RFC 8463 §4). */
enum dkim_key_error dkim_key_record_parse(const char *text, size_t len, struct dkim_key_record *r,
					  const char **error_r);
void dkim_key_record_clear(struct dkim_key_record *r);

/* Whether the record holds the public half of key (for "the DNS record matches our key"). */
bool dkim_key_record_matches(const struct dkim_key_record *r, const EVP_PKEY *key);

/* The TXT value that publishes key: "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" or
 * "v=DKIM1; k=ed25519; p=<base64 of the 32-octet key>". Allocated (free()); NULL with error_r. */
char *dkim_key_record_format(const EVP_PKEY *key, const char **error_r);

/* A private key from PEM: PKCS#1 "RSA PRIVATE KEY" (what opendkim-genkey writes) or PKCS#8
 * "PRIVATE KEY" holding RSA or Ed25519. Other key types and encrypted keys are refused. */
enum dkim_key_error dkim_key_pem_parse(const char *pem, size_t len, EVP_PKEY **key_r, const char **error_r);
/* The same from a file (at most DKIM_KEY_PEM_MAX octets). */
enum dkim_key_error dkim_key_file_load(const char *path, EVP_PKEY **key_r, const char **error_r);

/* A new key: RSA of bits (0: DKIM_KEY_RSA_BITS_DEFAULT; DKIM_KEY_RSA_BITS_NEW_MIN..NEW_MAX) or Ed25519
 * (bits ignored). */
enum dkim_key_error dkim_key_generate(enum dkim_key_type t, unsigned bits, EVP_PKEY **key_r, const char **error_r);

/* Writes key as unencrypted PKCS#8 PEM to a new file of mode 0600. An existing file is never
 * overwritten (DKIM_KEY_EXISTS); a file left half-written is removed. */
enum dkim_key_error dkim_key_file_write(const EVP_PKEY *key, const char *path, const char **error_r);
/* The same for the public half: SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), mode 0644, so that
 * a process without the private key can show and check the key's record. */
enum dkim_key_error dkim_key_public_file_write(const EVP_PKEY *key, const char *path, const char **error_r);
enum dkim_key_error dkim_key_public_file_load(const char *path, EVP_PKEY **key_r, const char **error_r);

/* The DKIM key type of key; false for a type DKIM cannot sign with. */
bool dkim_key_type_get(const EVP_PKEY *key, enum dkim_key_type *t_r);
/* The RSA modulus size, 256 for Ed25519, 0 for other keys. */
unsigned dkim_key_bits(const EVP_PKEY *key);

/* The signature of a SHA-256 digest: RSASSA-PKCS1-v1_5 (RFC 6376 §3.3.2) for RSA keys, PureEdDSA over
 * the 32-octet digest (RFC 8463 §3) for Ed25519 keys. sig has room for *sig_len_r octets (512 holds
 * every key we sign with); *sig_len_r becomes the signature's length. */
bool dkim_key_sign_digest(EVP_PKEY *key, const unsigned char *digest, size_t digest_len, unsigned char *sig,
			  size_t *sig_len_r);
/* Whether sig is key's signature of the digest under alg (the hash must be the one alg names). */
bool dkim_key_verify_digest(EVP_PKEY *key, enum dkim_alg alg, const unsigned char *digest, size_t digest_len,
			    const unsigned char *sig, size_t sig_len);

enum dkim_base64_error {
	DKIM_BASE64_OK = 0,
	DKIM_BASE64_SYNTAX,   /* a character outside the alphabet, bad padding, a partial quantum */
	DKIM_BASE64_TOO_LONG, /* more than out_size octets */
};
const char *dkim_base64_error_str(enum dkim_base64_error e);
/* RFC 6376 §2.4 base64string: RFC 2045 base64 in which FWS (SP, HTAB, CR, LF) anywhere is ignored. */
enum dkim_base64_error dkim_base64_decode(const char *s, size_t len, unsigned char *out, size_t out_size,
					  size_t *out_len_r);

#endif

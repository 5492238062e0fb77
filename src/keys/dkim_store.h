/* dkim_store.h — where DKIM private keys live and which of them sign:
 *
 *   DATA_DIR/dkim/<domain>/<selector>.pem   one key per selector (PKCS#8 or PKCS#1 PEM, mode 0600)
 *   DATA_DIR/dkim/<domain>/<selector>.pub   its public half (SubjectPublicKeyInfo PEM, mode 0644)
 *   DATA_DIR/dkim/<domain>/active           the selectors that sign, one per line, at most one per
 *                                           key type (RSA, Ed25519); replaced atomically
 *
 * Rotation (RFC 6376 §3.1 selectors): a new selector is made and published while the old one still
 * signs; activating it replaces the old one of its key type. Used by the CLI and, through the signer
 * below, by the server on any thread. */
#ifndef MAILWERK_KEYS_DKIM_STORE_H
#define MAILWERK_KEYS_DKIM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <sys/types.h>

#include "auth/dkim_canon.h"

#include <openssl/evp.h>

#include "auth/dkim_key.h"
#include "net/dns_parse.h"

/* RFC 6376 §3.1: a selector is one or more DNS labels; we keep them to LDH and at most 63 octets. */
#define DKIM_SELECTOR_MAX 63

struct dkim_store_key {
	char domain[DNS_HOST_SIZE];
	char selector[DKIM_SELECTOR_MAX + 1];
	enum dkim_key_type type;
	unsigned bits;
	bool active;
	EVP_PKEY *pkey; /* valid during the callback */
};

/* Whether s is a selector we accept: labels of letters, digits and '-', dot-separated, at most
 * DKIM_SELECTOR_MAX octets. */
bool dkim_store_selector_valid(const char *s);

/* Calls fn for each key of domain (every domain when domain is NULL), sorted by domain then selector.
 * A key file that does not load is reported through bad (path and reason) and skipped. 0, or -1
 * with a sentence. */
typedef void dkim_store_key_fn(const struct dkim_store_key *k, void *arg);
typedef void dkim_store_bad_fn(const char *path, const char *reason, void *arg);
int dkim_store_list(const char *data_dir, const char *domain, dkim_store_key_fn *fn, dkim_store_bad_fn *bad,
		    void *arg, char *error_r, size_t error_size);

/* Writes key as domain's selector (never over an existing one). It becomes active when the domain
 * has no active key of its type yet (*activated_r says whether). 0, or -1 with a sentence. */
int dkim_store_add(const char *data_dir, const char *domain, const char *selector, const EVP_PKEY *key,
		   bool *activated_r, char *error_r, size_t error_size);

/* Makes selector sign for domain, in place of the active key of the same type. 0, or -1. */
int dkim_store_activate(const char *data_dir, const char *domain, const char *selector, char *error_r,
			size_t error_size);

/* The key of domain/selector (the caller frees it with EVP_PKEY_free), or NULL with a sentence. */
EVP_PKEY *dkim_store_load(const char *data_dir, const char *domain, const char *selector, char *error_r,
			  size_t error_size);

/* The public half of domain/selector (its .pub file: what the worker, which holds no private key,
 * lists and checks), or NULL with a sentence. */
EVP_PKEY *dkim_store_load_public(const char *data_dir, const char *domain, const char *selector, char *error_r,
				 size_t error_size);

/* Writes the missing .pub file of every key (a store made before they existed); *written_r counts
 * them. Needs to read the private keys: the signer or the CLI. 0, or -1 with a sentence. */
int dkim_store_publish(const char *data_dir, size_t *written_r, char *error_r, size_t error_size);

/* Gives the store to uid/gid (a signer of its own, [server] signer_user): the directories 0755, the
 * private keys 0600, their public halves and the active lists 0644; links are not followed. Root
 * only. 0, or -1 with a sentence. */
int dkim_store_give(const char *data_dir, uid_t uid, gid_t gid, char *error_r, size_t error_size);

/* ---- the active keys of the signer process ---- */

#define DKIM_SIGNER_KEYS_MAX 2 /* one per key type */

struct dkim_signer_key {
	enum dkim_alg alg;
	char selector[DKIM_SELECTOR_MAX + 1];
};

struct dkim_signer;
/* Keys are read when first needed and again whenever a domain's active file changes. */
struct dkim_signer *dkim_signer_new(const char *data_dir);
void dkim_signer_free(struct dkim_signer *s);

/* domain's active keys into out, Ed25519 first (RFC 8463 §1: verifiers that don't know it skip it
 * and use the RSA one): their number, 0 for a domain without keys (or that is no domain), -1 when
 * out of memory. Any thread. */
int dkim_signer_keys(struct dkim_signer *s, const char *domain, struct dkim_signer_key out[DKIM_SIGNER_KEYS_MAX]);

/* Signs digest (dkim_draft_field's) with domain's active key selector: 0 with the signature in
 * sig[0..*sig_len) (*sig_len in: its size, at least DKIM_SIG_B_MAX), or -1 with a sentence (no such
 * active key, a key that cannot sign). Any thread. */
int dkim_signer_sign_digest(struct dkim_signer *s, const char *domain, const char *selector,
			    const unsigned char digest[DKIM_DIGEST_SIZE], unsigned char *sig, size_t *sig_len,
			    char *error_r, size_t error_size);

#endif

/* api_keys.h — the HTTP API's keys: DATA_DIR/api.db (table api_keys).
 *
 * A key is "re_" followed by 43 characters of base64url: 256 random bits (the prefix is Resend's,
 * so applications that check it keep working). It is shown once, when made; the store keeps only
 * its SHA-256 hash, so a stolen database gives no usable key, and looks a presented key up by that
 * hash, comparing in constant time. Permissions are Resend's: full_access, or sending_access
 * optionally limited to one domain.
 *
 * The CLI (another process) and the server share the file; the server keeps the keys in memory
 * and reloads them when the file changes (PRAGMA data_version), so that checking a request never
 * waits for the disk. Writes (create, revoke) fsync: call them off the loop thread. */
#ifndef MAILWERK_KEYS_API_KEYS_H
#define MAILWERK_KEYS_API_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_KEY_TOKEN_LEN 46 /* "re_" + 43 */
#define API_KEY_ID_LEN 36    /* a UUID, as Resend's ids */
#define API_KEY_NAME_MAX 50  /* Resend: at most 50 characters */

enum api_key_permission {
	API_KEY_FULL_ACCESS = 0,
	API_KEY_SENDING_ACCESS,
};
const char *api_key_permission_str(enum api_key_permission p);
/* "full_access" / "sending_access"; false for anything else */
bool api_key_permission_parse(const char *s, enum api_key_permission *p_r);

struct api_key {
	char id[API_KEY_ID_LEN + 1];
	char name[API_KEY_NAME_MAX * 4 + 1]; /* UTF-8 */
	enum api_key_permission permission;
	char domain[256];     /* "" when not limited to one domain */
	int64_t created_at;   /* unix milliseconds */
	int64_t last_used_at; /* unix milliseconds, 0 when never */
};

struct api_keys;

/* Opens (creating and migrating) DATA_DIR/api.db. NULL with a sentence in error. */
struct api_keys *api_keys_open(const char *data_dir, char *error, size_t error_size);
void api_keys_close(struct api_keys *k);

/* Makes a key; its token (API_KEY_TOKEN_LEN + 1 octets, shown once) in token_r and the record in
 * key_r. name: 1..API_KEY_NAME_MAX characters; domain NULL or "" for all domains (only with
 * sending_access: a domain limit on full access is refused, as Resend does). 0, or -1 with a
 * sentence (the name or domain is wrong, or the database failed: *bad_input_r says which). */
int api_keys_create(struct api_keys *k, const char *name, enum api_key_permission perm, const char *domain,
		    char token_r[API_KEY_TOKEN_LEN + 1], struct api_key *key_r, bool *bad_input_r, char *error,
		    size_t error_size);
/* Deletes the key with this id (revoked keys are gone: Resend's DELETE /api-keys/{id}).
 * 1 when removed, 0 when there was none, -1 on a database error (sentence in error). */
int api_keys_revoke(struct api_keys *k, const char *id, char *error, size_t error_size);
/* Every key, newest first. *keys_r is malloc'd (free()); 0, or -1 with a sentence. */
int api_keys_list(struct api_keys *k, struct api_key **keys_r, size_t *count_r, char *error, size_t error_size);

/* The key a request presents ("Authorization: Bearer TOKEN" without the "Bearer "): true and
 * *key_r when it is a live key. Served from memory, reloaded first if the file changed; never
 * writes. Loop thread (one thread at a time). */
bool api_keys_check(struct api_keys *k, const char *token, struct api_key *key_r);
/* The live key with this id (a dashboard session made with it ends when the key is revoked): true
 * and *key_r (may be NULL). Served from memory like api_keys_check. Loop thread. */
bool api_keys_find(struct api_keys *k, const char *id, struct api_key *key_r);
/* Notes that the key was used at now_ms. Kept in memory; written out by api_keys_flush_usage. */
void api_keys_touch(struct api_keys *k, const char *id, int64_t now_ms);
/* Writes the last_used_at times noted since the last call (one transaction); any thread that owns k
 * at the time. 0, or -1 with a sentence. */
int api_keys_flush_usage(struct api_keys *k, char *error, size_t error_size);

#endif

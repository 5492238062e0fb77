/* users.h — accounts and local domains, in DATA_DIR/mailwerk.db (SQLite, WAL). Passwords are kept
 * only as crypt(3) hashes: new ones are yescrypt; imported $y$, $2b$ and $6$ hashes verify too. */
#ifndef MAILWERK_MAILBOX_USERS_H
#define MAILWERK_MAILBOX_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/addr.h"
#include "util/result.h"

struct users;

/* Opens (creating the schema if needed) DATA_DIR/mailwerk.db. NULL with *error_r on failure. */
struct users *users_open(const char *data_dir, const char **error_r);
void users_close(struct users *u);

/* Domains are stored lower-case; lookups are case-insensitive (RFC 5321 §2.4).
 * RESULT_PERMFAIL: already there (add) / not there (del). RESULT_TEMPFAIL: database error. */
enum result users_domain_add(struct users *u, const char *domain, const char **error_r);
enum result users_domain_del(struct users *u, const char *domain, const char **error_r);
typedef void users_list_fn(const char *name, void *arg);
enum result users_domain_list(struct users *u, users_list_fn *fn, void *arg, const char **error_r);
/* RESULT_OK: local; RESULT_PERMFAIL: not local; RESULT_TEMPFAIL: database error */
enum result users_domain_is_local(struct users *u, const char *domain);

/* address: "local@domain"; the domain must be local (RESULT_PERMFAIL otherwise, with a reason). The local
 * part is kept as given; lookups compare the domain case-insensitively and the local part exactly,
 * except that it is also matched case-insensitively when no exact match exists. */
enum result users_user_add(struct users *u, const char *address, const char *hash, const char **error_r);
enum result users_user_set_hash(struct users *u, const char *address, const char *hash, const char **error_r);
enum result users_user_del(struct users *u, const char *address, const char **error_r);
enum result users_user_list(struct users *u, users_list_fn *fn, void *arg, const char **error_r);
/* Copies the stored hash of address to hash_r, and the address as stored (the one that names the
 * mailbox, whatever case the caller used) to canonical_r unless NULL. RESULT_PERMFAIL: no such user. */
enum result users_user_hash(struct users *u, const char *address, char *hash_r, size_t size,
			   char canonical_r[ADDR_TEXT_MAX + 1], const char **error_r);

/* Password hashing; thread-safe (crypt_r), so it can run on a worker thread. */
#define USERS_HASH_MAX 256
/* A new yescrypt hash of password. RESULT_TEMPFAIL when libcrypt fails. */
enum result users_hash_password(const char *password, char hash_r[USERS_HASH_MAX]);
/* true when password matches hash; constant-time compare of the result. */
bool users_check_password(const char *password, const char *hash);
/* true for a hash this server can verify and accepts on import: $y$, $2b$, $6$ */
bool users_hash_importable(const char *hash);
/* Fills password_r with size-1 random characters from an alphabet without look-alikes (0/O, 1/l/I),
 * for passwords a person reads once and types in. RESULT_TEMPFAIL when the RNG fails. */
#define USERS_PASSWORD_GEN_LEN 20
enum result users_password_generate(char *password_r, size_t size);

#endif

/* users.h — accounts and local domains, in DATA_DIR/mailwerk.db (SQLite, WAL). Passwords are kept
 * only as crypt(3) hashes: new ones are yescrypt; imported $y$, $2b$ and $6$ hashes verify too. */
#ifndef MAILWERK_MAILBOX_USERS_H
#define MAILWERK_MAILBOX_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- Recipients (recipients.c) ---- */

/* Aliases: address "local@domain" at a local domain, or "@domain" for the domain's catch-all;
 * targets a comma-separated list of addresses, local or remote. Adding an existing alias replaces its
 * targets; an alias cannot shadow a user. */
#define USERS_TARGETS_MAX 4096
enum result users_alias_add(struct users *u, const char *address, const char *targets, const char **error_r);
enum result users_alias_del(struct users *u, const char *address, const char **error_r);
typedef void users_alias_list_fn(const char *address, const char *targets, void *arg);
enum result users_alias_list(struct users *u, users_alias_list_fn *fn, void *arg, const char **error_r);

enum users_rcpt_kind {
	USERS_RCPT_USER,  /* a mailbox: address is the account as stored */
	USERS_RCPT_ALIAS, /* targets to expand */
};
struct users_rcpt {
	enum users_rcpt_kind kind;
	char address[ADDR_TEXT_MAX + 1];
	char targets[USERS_TARGETS_MAX];
};
/* What an address at a local domain delivers to. Order: the user, the alias, then the same without
 * the extension that starts at the first of delims ("user+tag@domain" -> user@domain; delims "" turns
 * that off), then the domain's catch-all. RESULT_PERMFAIL: nobody (550 5.1.1). */
enum result users_rcpt_resolve(struct users *u, const char *address, const char *delims, struct users_rcpt *r,
			       const char **error_r);
/* The envelope to queue for accepted recipients: aliases replaced by their targets (recursively, at most
 * 8 levels), users and remote addresses kept as given, each address once (case-insensitive). */
typedef void users_rcpt_fn(const char *address, void *arg);
enum result users_rcpt_expand(struct users *u, const char *const *addresses, size_t count, const char *delims,
			      users_rcpt_fn *fn, void *arg, const char **error_r);

/* Per-user quota in octets; 0 = none. users_user_quota takes the address as stored. */
enum result users_user_set_quota(struct users *u, const char *address, uint64_t bytes, const char **error_r);
enum result users_user_quota(struct users *u, const char *address, uint64_t *bytes_r, const char **error_r);

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

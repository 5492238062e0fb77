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
/* The admin flag: an account with it may sign in to the web dashboard with its mail password.
 * RESULT_PERMFAIL: no such user. */
enum result users_user_set_admin(struct users *u, const char *address, bool admin, const char **error_r);
enum result users_user_admin(struct users *u, const char *address, bool *admin_r, const char **error_r);

/* ---- What the API shows of a domain (domains.c) ---- */

#define USERS_DOMAIN_ID_LEN 36     /* a UUID */
#define USERS_DOMAIN_STATUS_MAX 23 /* "partially_verified" is the longest */

struct users_domain {
	char id[USERS_DOMAIN_ID_LEN + 1];
	char name[ADDR_DOMAIN_MAX + 1];
	char return_path[ADDR_DOMAIN_MAX + 1]; /* the custom return path host, "" for [api] return_path_label */
	int64_t created_ms;
	bool sending, receiving;                /* the capabilities as switched (Resend's enabled / disabled) */
	bool verify_first;                      /* sends only once the last check found it ready */
	bool ready;                             /* the last check verified the records sending needs */
	char status[USERS_DOMAIN_STATUS_MAX + 1]; /* not_started, pending, verified, partially_verified, failed */
	int64_t checked_ms;                     /* the last check's end, 0 when never */
};

/* One record's outcome in the last check (kind and status are domains/domain_dns.h's words). */
struct users_domain_check {
	char kind[16];
	char name[ADDR_DOMAIN_MAX + 80];
	char status[24];
	char *problem; /* NULL when verified */
};
void users_domain_checks_free(struct users_domain_check *c, size_t n);

/* key: the domain's id or its name. RESULT_PERMFAIL: no such domain. */
enum result users_domain_get(struct users *u, const char *key, struct users_domain *d_r, const char **error_r);
/* Newest first; after/before: an id (Resend's cursors), NULL for none. RESULT_PERMFAIL: the cursor
 * is not a domain's id. The caller frees *list_r. */
enum result users_domain_page(struct users *u, unsigned limit, const char *after, const char *before,
			      struct users_domain **list_r, size_t *n_r, bool *more_r, const char **error_r);
/* Changes what is not NULL / -1. RESULT_PERMFAIL: no such domain. */
enum result users_domain_update(struct users *u, const char *name, const char *return_path, int sending,
				int receiving, int verify_first, const char **error_r);
/* Marks a check as running (status "pending") without touching the record outcomes. */
enum result users_domain_set_status(struct users *u, const char *name, const char *status, const char **error_r);
/* Replaces the outcome of the last check: the domain's status, whether it is ready to send, when,
 * and each record's. */
enum result users_domain_checks_store(struct users *u, const char *name, const char *status, bool ready,
				      int64_t checked_ms, const struct users_domain_check *c, size_t n,
				      const char **error_r);
enum result users_domain_checks(struct users *u, const char *name, struct users_domain_check **list_r, size_t *n_r,
				const char **error_r);

/* ---- Aliases (recipients.c) ---- */

/* Aliases: address "local@domain" at a local domain, or "@domain" for the domain's catch-all;
 * targets a comma-separated list of addresses, local or remote. Adding an existing alias replaces its
 * targets; an alias cannot shadow a user. */
#define USERS_TARGETS_MAX 4096
enum result users_alias_add(struct users *u, const char *address, const char *targets, const char **error_r);
enum result users_alias_del(struct users *u, const char *address, const char **error_r);
typedef void users_alias_list_fn(const char *address, const char *targets, void *arg);
enum result users_alias_list(struct users *u, users_alias_list_fn *fn, void *arg, const char **error_r);

/* ---- Inbound routes (routes.c) ---- */

/* A route sends an address's mail to the applications (the inbound store, the email.received
 * webhook): "local@domain", or "*@domain" for every address of a local domain whose receiving
 * capability is on. With mailbox, the mail also goes where the address would deliver without the
 * route (a user's Maildir, an alias's targets); without, only to the applications. */
#define USERS_ROUTE_ID_LEN 36 /* a UUID */
struct users_route {
	char id[USERS_ROUTE_ID_LEN + 1];
	char address[ADDR_TEXT_MAX + 2]; /* "local@domain" or "*@domain" (room for the '*'), the domain lower-case */
	char domain[ADDR_DOMAIN_MAX + 1];
	bool mailbox;
	int64_t created_ms;
};
/* RESULT_PERMFAIL with a reason: not an address or "*@domain", the domain not local, or already
 * routed. *r_r (may be NULL) is the new route. */
enum result users_route_add(struct users *u, const char *address, bool mailbox, struct users_route *r_r,
			    const char **error_r);
/* key: the route's id or its address. RESULT_PERMFAIL: no such route. */
enum result users_route_get(struct users *u, const char *key, struct users_route *r_r, const char **error_r);
enum result users_route_del(struct users *u, const char *key, const char **error_r);
enum result users_route_set_mailbox(struct users *u, const char *key, bool mailbox, const char **error_r);
/* Newest first; after/before: a route's id (Resend's cursors), NULL for none. RESULT_PERMFAIL: the
 * cursor is not a route's id. The caller frees *list_r. */
enum result users_route_page(struct users *u, unsigned limit, const char *after, const char *before,
			     struct users_route **list_r, size_t *n_r, bool *more_r, const char **error_r);

/* ---- Recipients (recipients.c) ---- */

enum users_rcpt_kind {
	USERS_RCPT_USER,  /* a mailbox: address is the account as stored */
	USERS_RCPT_ALIAS, /* targets to expand */
	USERS_RCPT_ROUTE, /* the applications: route is the route, address the address as given */
};
struct users_rcpt {
	enum users_rcpt_kind kind;
	char address[ADDR_TEXT_MAX + 1];
	char targets[USERS_TARGETS_MAX];
	struct users_route route;
};
/* What an address at a local domain delivers to. Order: its route, the user, the alias; then the same
 * without the extension that starts at the first of delims ("user+tag@domain" -> user@domain; delims
 * "" turns that off); then the domain's route ("*@domain"), then the domain's catch-all alias. A more
 * specific name wins, and at one name a route wins. RESULT_PERMFAIL: nobody (550 5.1.1). */
enum result users_rcpt_resolve(struct users *u, const char *address, const char *delims, struct users_rcpt *r,
			       const char **error_r);
/* The same, routes left out: where a route with mailbox also delivers. */
enum result users_rcpt_resolve_unrouted(struct users *u, const char *address, const char *delims,
					struct users_rcpt *r, const char **error_r);
/* The envelope to queue for accepted recipients: aliases replaced by their targets (recursively, at most
 * 8 levels), users, routed and remote addresses kept as given (a route with mailbox adds what the
 * address resolves to without it), each address once (case-insensitive). */
typedef void users_rcpt_fn(const char *address, void *arg);
enum result users_rcpt_expand(struct users *u, const char *const *addresses, size_t count, const char *delims,
			      users_rcpt_fn *fn, void *arg, const char **error_r);

/* ---- Login bans (bans.c) ----
 * Clients banned for a while after too many failed logins (server/login.c): kept here so that they
 * survive a restart and the operator can list and lift them (`mailwerk auth`) next to a running
 * server, which reads the table again every few seconds. client is the key failures are counted by
 * (an IPv4 address, or an IPv6 prefix "2001:db8::/64"); times are unix seconds. */
#define USERS_BAN_CLIENT_SIZE 64
#define USERS_BANS_MAX 65536 /* rows a list returns at most */
struct users_ban {
	char client[USERS_BAN_CLIENT_SIZE];
	int64_t since, until;
	unsigned failures;
};
/* Adds the ban, or replaces the client's; bans ended before b->since are deleted first. */
enum result users_ban_put(struct users *u, const struct users_ban *b, const char **error_r);
/* The bans in force at now, oldest first, at most max; the caller frees *list_r. */
enum result users_ban_list(struct users *u, int64_t now, size_t max, struct users_ban **list_r, size_t *n_r,
			   const char **error_r);
/* RESULT_PERMFAIL: the client has no ban (in force or not). */
enum result users_ban_del(struct users *u, const char *client, const char **error_r);
/* Every ban; *n_r (may be NULL): how many there were in force at now. */
enum result users_ban_del_all(struct users *u, int64_t now, unsigned *n_r, const char **error_r);

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

/* login_penalty.h — the arithmetic of failed logins, apart from any I/O so that it is tested alone:
 * the delay a count of failures costs, the per-account failure counts, and the set of clients
 * banned for now. Loop thread only. */
#ifndef MAILWERK_SERVER_LOGIN_PENALTY_H
#define MAILWERK_SERVER_LOGIN_PENALTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net/listener.h"

struct users_ban;

/* The delay after `failures` failures, in milliseconds: none for 0, initial_ms for the first,
 * doubled for each further one, never more than max_ms (2, 4, 8, 15, 15 … s by default). */
unsigned login_delay_ms(unsigned failures, unsigned initial_ms, unsigned max_ms);

/* ---- Failures per account ----
 * Counted across every client, so that an attacker who rotates addresses against one account still
 * waits. Accounts are known by a keyed hash of their name (the caller's), and live in a table of
 * fixed size: an attacker spraying made-up names cannot make it grow, and pushes out only the
 * stalest of LOGIN_ACCOUNT_PROBES slots. Each account also remembers a few clients that signed in
 * to it within the window ("good" clients): the account's count does not delay them. */
#define LOGIN_ACCOUNT_SLOTS 4096
#define LOGIN_ACCOUNT_PROBES 8
#define LOGIN_ACCOUNT_GOOD 4
/* As for clients (IPLIMIT_AUTH_WINDOW): forgotten once the newest failure is this old. */
#define LOGIN_ACCOUNT_WINDOW 900

struct login_accounts;
struct login_accounts *login_accounts_new(void);
void login_accounts_free(struct login_accounts *a);
/* A failure against account from client: the account's count after it (a repeat is not counted
 * again), and in *good_r whether client is one of the account's good clients. */
unsigned login_accounts_fail(struct login_accounts *a, uint64_t account, uint64_t client, time_t now, bool repeat,
			     bool *good_r);
/* A success: the account's count as it is (successes do not lower it: the failures may be someone
 * else's), *good_r as above; then client is remembered as good. */
unsigned login_accounts_success(struct login_accounts *a, uint64_t account, uint64_t client, time_t now,
				bool *good_r);

/* ---- Bans ---- */
#define LOGIN_BANS_MAX 65536

struct login_ban {
	struct login_ban *next;
	char client[NET_CLIENT_KEY_SIZE]; /* net_client_key's form */
	int64_t since, until;             /* unix seconds */
	unsigned failures;                /* the client's count when it was banned */
	/* the first store refresh that must find it, UINT64_MAX until it is written: a refresh that
	 * does not find a ban it must find means the operator removed it */
	uint64_t visible_from;
	uint64_t seen; /* the last refresh that found it */
};

struct login_bans;
struct login_bans *login_bans_new(void);
void login_bans_free(struct login_bans *b);
size_t login_bans_count(const struct login_bans *b);
/* The ban of client in force at now, or NULL. */
const struct login_ban *login_bans_find(struct login_bans *b, const char *client, time_t now);
/* Bans client from since to until (replacing a ban it had), not yet written; NULL when
 * LOGIN_BANS_MAX are in force or memory is short. */
struct login_ban *login_bans_add(struct login_bans *b, const char *client, int64_t since, int64_t until,
				 unsigned failures);
/* The ban of client that began at since was written before store refresh `refresh` read. */
void login_bans_written(struct login_bans *b, const char *client, int64_t since, uint64_t refresh);
/* Makes the set match what store refresh `refresh` read (rows: the bans in force then): rows are
 * added or updated; a ban past its end, or one the refresh had to find and did not, is removed and
 * reported to gone(ban, expired, arg) first. */
typedef void login_ban_gone_fn(const struct login_ban *ban, bool expired, void *arg);
void login_bans_sync(struct login_bans *b, const struct users_ban *rows, size_t n, uint64_t refresh, time_t now,
		     login_ban_gone_fn *gone, void *arg);

#endif

/* login.h — checking a password for SMTP AUTH, POP3 and the dashboard: hashing runs on a worker
 * thread, and the answer waits out a penalty that grows with the recent failures of the client (its
 * address, or its IPv6 prefix) and of the account (DESIGN.md §6). A client that keeps failing is
 * banned for a while: new connections from it are refused at once. Bans are kept in mailwerk.db,
 * so they survive a restart, and `mailwerk auth` lists and lifts them. */
#ifndef MAILWERK_SERVER_LOGIN_H
#define MAILWERK_SERVER_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct server;
struct login_state;

/* How often the server reads the bans again, so that one the operator lifted (or one another
 * process added) takes effect within this many seconds. */
#define LOGIN_BAN_REFRESH_SECONDS 2

/* Runs on the loop thread when the check is over (after its delay). conn_id names the session that
 * asked: look it up, it may have gone. user is valid during the call only; after a success it is
 * the account's address as stored, whatever case the client typed. */
typedef void login_done_fn(struct server *srv, uint64_t conn_id, const char *user, bool ok);

/* The penalty state of srv (a per-process key for its hashes, the failure tables, its own
 * connection to mailwerk.db with the bans in force loaded) and its refresh timer. Needs srv's
 * loop, configuration and workers. NULL with a sentence on failure. */
struct login_state *login_new(struct server *srv, char *error_r, size_t error_size);
/* Once the workers and the loop queue are done (their last callbacks may still count a failure).
 * NULL is allowed. */
void login_free(struct login_state *l);
/* Whether client (net_client_key) is banned at now: its new connections are refused. */
bool login_banned(struct login_state *l, const char *client, time_t now);

/* Starts the check of user/pass for connection conn_id from address ip, a client whose failures
 * are counted by its key (net_client_key). An unknown user costs the same hashing as a known one;
 * a banned client's sessions that are still open get no check at all, only the refusal. Passwords
 * never reach a log. */
void login_check(struct server *srv, uint64_t conn_id, const char *ip, const char *client, const char *user,
		 const char *pass, login_done_fn *done);

/* Counts a failed sign-in that needed no password check (the dashboard's API keys), with the same
 * delays and bans: done(..., false) runs after it. */
void login_refuse(struct server *srv, uint64_t conn_id, const char *ip, const char *client, const char *user,
		  login_done_fn *done);

#endif

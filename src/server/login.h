/* login.h — checking a password for SMTP AUTH, POP3 and the dashboard: hashing runs on a worker
 * thread, and a failure is answered only after a delay that grows with the recent failures from
 * the client (its address, or its IPv6 prefix; DESIGN.md §6). */
#ifndef MAILWERK_SERVER_LOGIN_H
#define MAILWERK_SERVER_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

struct server;

/* Each failure from an address adds this much delay, up to the cap, within IPLIMIT_AUTH_WINDOW. */
#define LOGIN_FAIL_DELAY_MS 500
#define LOGIN_FAIL_DELAY_MAX_MS 5000

/* Runs on the loop thread when the check is over (after the delay if it failed). conn_id names
 * the session that asked: look it up, it may have gone. user is valid during the call only; after
 * a success it is the account's address as stored, whatever case the client typed. */
typedef void login_done_fn(struct server *srv, uint64_t conn_id, const char *user, bool ok);

/* Starts the check of user/pass for connection conn_id from address ip, a client whose failures
 * are counted by its key (net_client_key). An unknown user costs the same hashing as a known one.
 * Passwords never reach a log. */
void login_check(struct server *srv, uint64_t conn_id, const char *ip, const char *client, const char *user,
		 const char *pass, login_done_fn *done);

/* Counts a failed sign-in that needed no password check (the dashboard's API keys), with the same
 * growing delay: done(..., false) runs after it. */
void login_refuse(struct server *srv, uint64_t conn_id, const char *ip, const char *client, const char *user,
		  login_done_fn *done);

#endif

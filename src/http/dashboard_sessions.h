/* dashboard_sessions.h — the web dashboard's signed-in sessions, in memory (a restart signs
 * everyone out). A session is known by a random token that only its cookie holds (kept here as its
 * SHA-256, compared in constant time), and carries a second random token, the CSRF token, that the
 * pages send in X-CSRF-Token with every state change. Sessions end at logout, DASHBOARD_SESSION_IDLE
 * after their last use, or DASHBOARD_SESSION_MAX_AGE after sign-in. Loop thread only. */
#ifndef MAILWERK_HTTP_DASHBOARD_SESSIONS_H
#define MAILWERK_HTTP_DASHBOARD_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/api_keys.h"
#include "util/addr.h"

#define DASHBOARD_TOKEN_LEN 64 /* 256 random bits as hex */
#define DASHBOARD_SESSION_MAX_AGE (12 * 3600)
#define DASHBOARD_SESSION_IDLE (2 * 3600)
/* signed-in sessions kept at once; past it the one used longest ago ends */
#define DASHBOARD_SESSIONS_MAX 1024

struct dashboard_session {
	unsigned char token_hash[32];
	char csrf[DASHBOARD_TOKEN_LEN + 1];
	/* who: an admin account (user, as stored) or an API key (key_id); the other is "" */
	char user[ADDR_TEXT_MAX + 1];
	char key_id[API_KEY_ID_LEN + 1];
	char label[ADDR_TEXT_MAX + 1]; /* what the pages show: the address, or the key's name */
	char rate_id[API_KEY_ID_LEN + 1]; /* its bucket in the API's rate limit: the key's, or the account's */
	int64_t created_ms, used_ms;
};

struct dashboard_sessions;

struct dashboard_sessions *dashboard_sessions_new(void);
void dashboard_sessions_free(struct dashboard_sessions *d);

/* Starts a session for user (an address) or key (the key; user NULL); its token in token_r, which
 * goes in the cookie and nowhere else. NULL when the random number generator or memory fails. */
const struct dashboard_session *dashboard_sessions_start(struct dashboard_sessions *d, const char *user,
							 const struct api_key *key, int64_t now_ms,
							 char token_r[DASHBOARD_TOKEN_LEN + 1]);
/* The live session of token (and marks it used at now_ms); NULL when none or it has expired. */
const struct dashboard_session *dashboard_sessions_find(struct dashboard_sessions *d, const char *token,
							int64_t now_ms);
/* Ends the session of token, if any. */
void dashboard_sessions_end(struct dashboard_sessions *d, const char *token);
/* Whether presented is the session's CSRF token (constant time). */
bool dashboard_session_csrf_ok(const struct dashboard_session *s, const char *presented);
/* Seconds until s expires by its age (its cookie's Max-Age). */
unsigned dashboard_session_max_age(const struct dashboard_session *s, int64_t now_ms);

#endif

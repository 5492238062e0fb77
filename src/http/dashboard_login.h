/* dashboard_login.h — the dashboard's sign-in request, POST /dashboard/session: a mail account's
 * address and password ({"email", "password"}), or an API key ({"api_key"}). Pure: no I/O; the
 * body is hostile. */
#ifndef MAILWERK_HTTP_DASHBOARD_LOGIN_H
#define MAILWERK_HTTP_DASHBOARD_LOGIN_H

#include <stddef.h>

#include "util/addr.h"

/* login.c hashes at most this much of a password; a longer one is refused rather than cut */
#define DASHBOARD_PASSWORD_MAX 255
#define DASHBOARD_API_KEY_MAX 128

enum dashboard_login_kind {
	DASHBOARD_LOGIN_PASSWORD = 0,
	DASHBOARD_LOGIN_API_KEY,
};

struct dashboard_login {
	enum dashboard_login_kind kind;
	char email[ADDR_TEXT_MAX + 1];
	char password[DASHBOARD_PASSWORD_MAX + 1];
	char api_key[DASHBOARD_API_KEY_MAX + 1];
};

/* Reads len octets of body (strict JSON, http/json.h) into *r: exactly one of the two forms, only
 * their members, each a non-empty string that fits. 0, or -1 with a sentence for the person at the
 * form in *error_r (static). The caller wipes r->password and r->api_key when done. */
int dashboard_login_parse(const char *body, size_t len, struct dashboard_login *r, const char **error_r);

#endif

/* dashboard.h — the web dashboard on the API listener: its pages at / and /dashboard/FILE, its
 * session endpoints at /dashboard/session (sign in, who am I, sign out), and /dashboard/queue,
 * which the API has no routes for. They are served before the API's route table and are not API routes; the pages call the API itself
 * with the session cookie, which authenticate() in api.c takes through dashboard_authenticate.
 * Loop thread. */
#ifndef MAILWERK_HTTP_DASHBOARD_H
#define MAILWERK_HTTP_DASHBOARD_H

#include <stdbool.h>

struct http_call;

#define DASHBOARD_COOKIE "mailwerk_session"

/* Serves the request when its path is the dashboard's ([api] dashboard on); false: not ours. */
bool dashboard_handle(struct http_call *c);

enum dashboard_auth {
	DASHBOARD_AUTH_NONE = 0, /* no live session cookie: the API's own answer (401) applies */
	DASHBOARD_AUTH_OK,       /* a signed-in session: c->key is a full-access caller */
	DASHBOARD_AUTH_REFUSED,  /* answered already: a state change without the session's CSRF token */
};
/* For a request without an Authorization field. */
enum dashboard_auth dashboard_authenticate(struct http_call *c);

#endif

/* dashboard.c — the web dashboard's share of the API listener: the single-page application's files
 * (built in, dashboard_assets.h) with a strict Content-Security-Policy on every answer, and its
 * sessions: sign-in with an admin account's mail password (through server/login.c, so failures are
 * delayed as SMTP AUTH's are) or with a full-access API key, the session cookie, sign-out, and the
 * check that lets a cookie stand in for an API key on the JSON API (with the CSRF token on every
 * state change); and the dispatch to its own endpoints for what the API has no routes for (the
 * queue), under the same rule. */
#include "http/dashboard.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "conf/conf.h"
#include "http/api.h"
#include "http/cookie.h"
#include "http/dashboard_assets.h"
#include "http/dashboard_login.h"
#include "http/dashboard_queue.h"
#include "http/dashboard_sessions.h"
#include "http/session.h"
#include "mailbox/users.h"
#include "server/login.h"
#include "server/server.h"
#include "util/date.h"
#include "util/log.h"

/* What every dashboard answer carries. No script but the dashboard's own files (no inline script,
 * no eval); nothing framed by other sites (frame-ancestors, and X-Frame-Options for old browsers).
 * Inline styles are allowed because an email's HTML, shown in a sandboxed srcdoc frame, inherits
 * this policy and is styled inline; https images likewise, and the frame's own policy (made by
 * the email page) blocks them until the reader asks for them. */
#define DASHBOARD_SECURITY_HEADERS                                                                              \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "   \
	"img-src 'self' data: https:; connect-src 'self'; font-src 'self'; frame-src 'self'; object-src 'none'; " \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"                                        \
	"X-Content-Type-Options: nosniff\r\n"                                                                    \
	"Referrer-Policy: no-referrer\r\n"                                                                       \
	"X-Frame-Options: DENY\r\n"                                                                              \
	"Cross-Origin-Opener-Policy: same-origin\r\n"

#define DASHBOARD_PREFIX "/dashboard/"
#define DASHBOARD_NO_STORE DASHBOARD_SECURITY_HEADERS "Cache-Control: no-store\r\n"

static void respond(struct http_session *s, unsigned status, json_t *body, const char *more)
{
	char extra[1536];
	snprintf(extra, sizeof(extra), "%sCache-Control: no-store\r\n%s", DASHBOARD_SECURITY_HEADERS,
		 more != NULL ? more : "");
	http_respond_json(s, status, body, extra);
}

static void respond_error(struct http_session *s, unsigned status, const char *name, const char *message)
{
	respond(s, status, http_error_json(status, name, message), NULL);
}

/* RFC 9239 for JavaScript; the others are the IANA media types of their extensions */
static const char *content_type_of(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"}, {".svg", "image/svg+xml"},
		{".json", "application/json"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static void serve_file(struct http_session *s, const char *name)
{
	for (size_t i = 0; i < dashboard_asset_count; i++) {
		const struct dashboard_asset *a = &dashboard_assets[i];
		if (strcmp(a->name, name) != 0)
			continue;
		/* no-cache: the browser asks again each time (the files change with the binary) */
		http_respond_body(s, 200, content_type_of(name), a->data, *a->len,
				  DASHBOARD_SECURITY_HEADERS "Cache-Control: no-cache\r\n");
		return;
	}
	respond_error(s, 404, "not_found", "The requested file does not exist.");
}

static bool method_safe(enum http_method m)
{
	/* RFC 9110 §9.2.1: these change nothing, so they need no CSRF token */
	return m == HTTP_METHOD_GET || m == HTTP_METHOD_HEAD || m == HTTP_METHOD_OPTIONS;
}

/* The request's live session, checked against the account or key it was made with (an account
 * that lost its admin flag, or a revoked key, ends its sessions); NULL when none. The token is
 * copied to token_r. */
static const struct dashboard_session *request_session(struct http_call *c, char token_r[DASHBOARD_TOKEN_LEN + 1])
{
	struct http_session *s = c->s;
	struct dashboard_sessions *d = c->api->dashboard;
	if (d == NULL || s->req.cookie_too_long ||
	    http_cookie_get(s->req.cookie, DASHBOARD_COOKIE, token_r, DASHBOARD_TOKEN_LEN + 1) != 1)
		return NULL;
	const struct dashboard_session *ds = dashboard_sessions_find(d, token_r, date_now_ms());
	if (ds == NULL)
		return NULL;
	bool live;
	if (ds->user[0] != '\0') {
		const char *err;
		enum result r = users_user_admin(s->srv->users, ds->user, &live, &err);
		if (r == RESULT_TEMPFAIL)
			return NULL; /* fail closed: the page asks to sign in again */
		live = r == RESULT_OK && live;
	} else {
		struct api_key key;
		live = api_keys_find(c->api->keys, ds->key_id, &key) && key.permission == API_KEY_FULL_ACCESS;
	}
	if (!live) {
		dashboard_sessions_end(d, token_r);
		return NULL;
	}
	return ds;
}

enum dashboard_auth dashboard_authenticate(struct http_call *c)
{
	if (!c->s->conf->api_dashboard)
		return DASHBOARD_AUTH_NONE;
	char token[DASHBOARD_TOKEN_LEN + 1];
	const struct dashboard_session *ds = request_session(c, token);
	OPENSSL_cleanse(token, sizeof(token));
	if (ds == NULL)
		return DASHBOARD_AUTH_NONE;
	/* the cookie goes with every request the browser makes to us, also one another site starts
	 * (SameSite=Strict aside): a change needs the token only our pages can read */
	if (!method_safe(c->s->req.method) && !dashboard_session_csrf_ok(ds, c->s->req.csrf_token)) {
		respond_error(c->s, 403, "invalid_csrf_token",
			      "A change made with the dashboard's session needs its X-CSRF-Token header.");
		return DASHBOARD_AUTH_REFUSED;
	}
	memset(&c->key, 0, sizeof(c->key));
	snprintf(c->key.id, sizeof(c->key.id), "%s", ds->rate_id);
	snprintf(c->key.name, sizeof(c->key.name), "%.*s", (int)sizeof(c->key.name) - 1, ds->label);
	c->key.permission = API_KEY_FULL_ACCESS;
	return DASHBOARD_AUTH_OK;
}

/* ---- /dashboard/session ---- */

static json_t *session_json(const struct dashboard_session *ds)
{
	char expires[40];
	date_rfc3339_ms_format(ds->created_ms + (int64_t)DASHBOARD_SESSION_MAX_AGE * 1000, expires, sizeof(expires));
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "object", "session", "user", ds->label, "kind",
			 ds->user[0] != '\0' ? "account" : "api_key", "csrf_token", ds->csrf, "expires_at", expires);
}

/* The cookie is Secure on TLS, and also when the dashboard is reached through https
 * ([api] public_url), as behind a proxy that ends TLS. */
static bool cookie_secure(const struct http_session *s)
{
	const char *pub = s->conf->api_public_url;
	return s->tls || (pub != NULL && strncasecmp(pub, "https://", 8) == 0);
}

static void session_begin(struct http_session *s, const char *user, const struct api_key *key)
{
	struct dashboard_sessions *d = s->srv->http_api->dashboard;
	char token[DASHBOARD_TOKEN_LEN + 1];
	int64_t now = date_now_ms();
	const struct dashboard_session *ds = d != NULL ? dashboard_sessions_start(d, user, key, now, token) : NULL;
	if (ds == NULL) {
		respond_error(s, 503, "internal_server_error", "No session could be made; try again.");
		return;
	}
	char cookie[256];
	bool fits = http_cookie_set_line(cookie, sizeof(cookie), DASHBOARD_COOKIE, token,
					 dashboard_session_max_age(ds, now), cookie_secure(s));
	OPENSSL_cleanse(token, sizeof(token));
	if (!fits) {
		respond_error(s, 500, "internal_server_error", "The session cookie does not fit.");
		return;
	}
	char who[128];
	log_info("session=%llx event=dashboard_login who=%s client=%s", (unsigned long long)s->conn.id,
		 log_safe(who, sizeof(who), ds->label, (unsigned)strlen(ds->label)), s->conn.ip);
	respond(s, 200, session_json(ds), cookie);
	OPENSSL_cleanse(cookie, sizeof(cookie));
}

static void login_refused(struct server *srv, uint64_t conn_id, const char *user, bool ok)
{
	struct http_session *s = http_session_find(srv, conn_id);
	if (s != NULL)
		respond_error(s, 401, "invalid_credentials", "The address and password, or the API key, are not right.");
}

static void login_password_done(struct server *srv, uint64_t conn_id, const char *user, bool ok)
{
	struct http_session *s = http_session_find(srv, conn_id);
	if (s == NULL)
		return;
	if (!ok) {
		login_refused(srv, conn_id, user, ok);
		return;
	}
	bool admin = false;
	const char *err;
	if (users_user_admin(srv->users, user, &admin, &err) == RESULT_TEMPFAIL) {
		respond_error(s, 503, "internal_server_error", "The accounts cannot be read just now; try again.");
		return;
	}
	if (!admin) {
		respond_error(s, 403, "not_admin",
			      "This account may not sign in to the dashboard; an administrator can allow it with: "
			      "mailwerk user admin ADDRESS yes");
		return;
	}
	session_begin(s, user, NULL);
}

static void session_login(struct http_call *c)
{
	struct http_session *s = c->s;
	/* a JSON body only: another site's form cannot send this type without a CORS preflight,
	 * which is never answered, so no page elsewhere can sign a browser in (login CSRF) */
	if (strncasecmp(s->req.content_type, "application/json", 16) != 0) {
		respond_error(s, 415, "validation_error", "Send the sign-in as application/json.");
		return;
	}
	struct dashboard_login in;
	const char *why;
	if (dashboard_login_parse(s->body != NULL ? s->body : "", s->body_len, &in, &why) != 0) {
		respond_error(s, 422, "validation_error", why);
		return;
	}
	if (in.kind == DASHBOARD_LOGIN_PASSWORD) {
		login_check(s->srv, s->conn.id, s->conn.ip, s->conn.client, in.email, in.password, login_password_done);
	} else {
		struct api_key key;
		if (api_keys_check(c->api->keys, in.api_key, &key) && key.permission == API_KEY_FULL_ACCESS) {
			api_keys_touch(c->api->keys, key.id, date_now_ms());
			session_begin(s, NULL, &key);
		} else {
			/* sending keys cannot manage anything: refused like a wrong key, and counted */
			login_refuse(s->srv, s->conn.id, s->conn.ip, s->conn.client, "api-key", login_refused);
		}
	}
	explicit_bzero(&in, sizeof(in));
}

static void session_endpoint(struct http_call *c)
{
	struct http_session *s = c->s;
	char token[DASHBOARD_TOKEN_LEN + 1];
	switch (s->req.method) {
	case HTTP_METHOD_POST:
		session_login(c);
		return;
	case HTTP_METHOD_GET: {
		const struct dashboard_session *ds = request_session(c, token);
		OPENSSL_cleanse(token, sizeof(token));
		if (ds == NULL)
			respond_error(s, 401, "not_signed_in", "Sign in to use the dashboard.");
		else
			respond(s, 200, session_json(ds), NULL);
		return;
	}
	case HTTP_METHOD_DELETE: {
		const struct dashboard_session *ds = request_session(c, token);
		if (ds != NULL && !dashboard_session_csrf_ok(ds, s->req.csrf_token)) {
			OPENSSL_cleanse(token, sizeof(token));
			respond_error(s, 403, "invalid_csrf_token", "Signing out needs the session's X-CSRF-Token header.");
			return;
		}
		if (ds != NULL)
			dashboard_sessions_end(c->api->dashboard, token);
		OPENSSL_cleanse(token, sizeof(token));
		char cookie[160];
		/* Max-Age=0: the browser drops the cookie (RFC 6265 §5.2.2) */
		http_cookie_set_line(cookie, sizeof(cookie), DASHBOARD_COOKIE, "", 0, cookie_secure(s));
		respond(s, 204, NULL, cookie);
		return;
	}
	default:
		respond(s, 405, http_error_json(405, "method_not_allowed", "Method is not allowed for this path."),
			"Allow: GET, POST, DELETE\r\n");
	}
}

bool dashboard_handle(struct http_call *c)
{
	struct http_session *s = c->s;
	const char *path = s->req.path;
	if (!s->conf->api_dashboard)
		return false;
	bool root = strcmp(path, "/") == 0;
	if (!root && strncmp(path, DASHBOARD_PREFIX, strlen(DASHBOARD_PREFIX)) != 0)
		return false;
	const char *name = root ? "index.html" : path + strlen(DASHBOARD_PREFIX);
	if (strcmp(name, "session") == 0) {
		session_endpoint(c);
		return true;
	}
	/* the queue, which the API has no routes for: the same rule as for the API, a session and
	 * its CSRF token for a change */
	if (strcmp(name, "queue") == 0 || strncmp(name, "queue/", 6) == 0) {
		char token[DASHBOARD_TOKEN_LEN + 1];
		const struct dashboard_session *ds = request_session(c, token);
		OPENSSL_cleanse(token, sizeof(token));
		if (ds == NULL)
			respond_error(s, 401, "not_signed_in", "Sign in to use the dashboard.");
		else if (!method_safe(s->req.method) && !dashboard_session_csrf_ok(ds, s->req.csrf_token))
			respond_error(s, 403, "invalid_csrf_token", "A change needs the session's X-CSRF-Token header.");
		else
			dashboard_queue(c, name + 5, DASHBOARD_NO_STORE);
		return true;
	}
	if (s->req.method != HTTP_METHOD_GET) {
		respond(s, 405, http_error_json(405, "method_not_allowed", "Method is not allowed for this path."),
			"Allow: GET\r\n");
		return true;
	}
	serve_file(s, name);
	return true;
}

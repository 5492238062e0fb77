/* dashboard_login.c — the sign-in body, checked member by member: nothing unknown, nothing empty,
 * nothing cut. */
#include "http/dashboard_login.h"

#include <string.h>

#include <jansson.h>

#include "http/json.h"

/* The string member name of o copied into out; -1 when it is absent, not a string, empty, has a
 * NUL (json.c refuses \u0000 already) or does not fit. */
static int member_copy(json_t *o, const char *name, char *out, size_t size)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v))
		return -1;
	size_t len = json_string_length(v);
	if (len == 0 || len >= size)
		return -1;
	memcpy(out, json_string_value(v), len + 1);
	return 0;
}

int dashboard_login_parse(const char *body, size_t len, struct dashboard_login *r, const char **error_r)
{
	char err[256];
	memset(r, 0, sizeof(*r));
	/* {"email": ..., "password": ...} nests nothing */
	json_t *doc = http_json_load(body, len, 1, err, sizeof(err));
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		*error_r = "The request must be a JSON object.";
		return -1;
	}
	int rc = -1;
	const char *key;
	json_t *value;
	json_object_foreach(doc, key, value) {
		if (strcmp(key, "email") != 0 && strcmp(key, "password") != 0 && strcmp(key, "api_key") != 0) {
			*error_r = "Only email and password, or api_key, may be given.";
			goto out;
		}
	}
	if (json_object_get(doc, "api_key") != NULL) {
		if (json_object_size(doc) != 1) {
			*error_r = "Give either an API key or an email address and a password.";
			goto out;
		}
		r->kind = DASHBOARD_LOGIN_API_KEY;
		if (member_copy(doc, "api_key", r->api_key, sizeof(r->api_key)) != 0) {
			*error_r = "The API key must be a non-empty string of at most 128 characters.";
			goto out;
		}
		rc = 0;
		goto out;
	}
	r->kind = DASHBOARD_LOGIN_PASSWORD;
	if (member_copy(doc, "email", r->email, sizeof(r->email)) != 0) {
		*error_r = "The email address is missing or too long.";
		goto out;
	}
	if (member_copy(doc, "password", r->password, sizeof(r->password)) != 0) {
		*error_r = "The password is missing or longer than 255 octets.";
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		memset(r->password, 0, sizeof(r->password));
		memset(r->api_key, 0, sizeof(r->api_key));
	}
	json_decref(doc);
	return rc;
}

/* acme_msg.c — strict readers of an ACME server's answers (acme_msg.h). */
#include "acme/acme_msg.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/json.h"

static const char *const status_names[] = {"pending", "ready", "processing", "valid", "invalid",
					   "deactivated", "expired", "revoked"};

const char *acme_status_str(enum acme_status s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

static json_t *load_object(const char *buf, size_t len, const char **error_r)
{
	char err[200];
	json_t *doc = http_json_load(buf, len, ACME_MSG_DEPTH, err, sizeof(err));
	if (doc == NULL) {
		*error_r = "the answer is not strict JSON";
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		*error_r = "the answer is not a JSON object";
		return NULL;
	}
	return doc;
}

/* A string member into out; absent is "" when optional. */
static enum acme_msg_error get_string(json_t *o, const char *key, bool required, char *out, size_t size,
				      const char **error_r)
{
	json_t *v = json_object_get(o, key);
	out[0] = '\0';
	if (v == NULL && !required)
		return ACME_MSG_OK;
	if (!json_is_string(v)) {
		*error_r = "a field is missing or not a string";
		return ACME_MSG_ERR_FIELD;
	}
	size_t n = json_string_length(v);
	if (n >= size) {
		*error_r = "a field is too long";
		return ACME_MSG_ERR_FIELD;
	}
	memcpy(out, json_string_value(v), n + 1);
	return ACME_MSG_OK;
}

/* §6.1: every ACME resource is an https URL */
static enum acme_msg_error get_url(json_t *o, const char *key, bool required, char *out, const char **error_r)
{
	enum acme_msg_error e = get_string(o, key, required, out, ACME_URL_SIZE, error_r);
	if (e != ACME_MSG_OK || (out[0] == '\0' && json_object_get(o, key) == NULL))
		return e;
	struct http_url u;
	const char *why;
	if (http_url_parse(out, strlen(out), &u, &why) != HTTP_URL_OK || !u.https) {
		out[0] = '\0';
		*error_r = "a URL in the answer is not an acceptable https URL";
		return ACME_MSG_ERR_URL;
	}
	return ACME_MSG_OK;
}

static enum acme_msg_error get_status(json_t *o, enum acme_status *r, const char **error_r)
{
	const char *s = json_string_value(json_object_get(o, "status"));
	if (s == NULL) {
		*error_r = "the status is missing";
		return ACME_MSG_ERR_FIELD;
	}
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strcmp(s, status_names[i]) == 0) {
			*r = (enum acme_status)i;
			return ACME_MSG_OK;
		}
	*error_r = "the status is not one RFC 8555 §7.1.6 knows";
	return ACME_MSG_ERR_STATUS;
}

enum acme_msg_error acme_directory_parse(const char *buf, size_t len, struct acme_directory *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	json_t *doc = load_object(buf, len, error_r);
	if (doc == NULL)
		return ACME_MSG_ERR_JSON;
	enum acme_msg_error e;
	/* §7.1.1: newNonce, newAccount, newOrder are required; revokeCert too (we offer revocation) */
	if ((e = get_url(doc, "newNonce", true, r->new_nonce, error_r)) == ACME_MSG_OK &&
	    (e = get_url(doc, "newAccount", true, r->new_account, error_r)) == ACME_MSG_OK &&
	    (e = get_url(doc, "newOrder", true, r->new_order, error_r)) == ACME_MSG_OK &&
	    (e = get_url(doc, "revokeCert", false, r->revoke_cert, error_r)) == ACME_MSG_OK) {
		json_t *meta = json_object_get(doc, "meta");
		/* the terms are only logged: a bad one is dropped, not a reason to refuse the CA */
		if (json_is_object(meta)) {
			const char *ignored;
			if (get_url(meta, "termsOfService", false, r->terms, &ignored) != ACME_MSG_OK)
				r->terms[0] = '\0';
		}
	}
	json_decref(doc);
	return e;
}

enum acme_msg_error acme_order_parse(const char *buf, size_t len, struct acme_order *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	json_t *doc = load_object(buf, len, error_r);
	if (doc == NULL)
		return ACME_MSG_ERR_JSON;
	enum acme_msg_error e;
	if ((e = get_status(doc, &r->status, error_r)) != ACME_MSG_OK ||
	    (e = get_url(doc, "finalize", true, r->finalize, error_r)) != ACME_MSG_OK ||
	    (e = get_url(doc, "certificate", false, r->certificate, error_r)) != ACME_MSG_OK)
		goto out;
	json_t *a = json_object_get(doc, "authorizations");
	if (!json_is_array(a)) {
		e = ACME_MSG_ERR_FIELD;
		*error_r = "the order has no authorizations array";
		goto out;
	}
	if (json_array_size(a) > ACME_NAMES_MAX) {
		e = ACME_MSG_ERR_TOO_MANY;
		*error_r = "the order has too many authorizations";
		goto out;
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *wrap = json_pack("{sO}", "u", json_array_get(a, i));
		e = wrap != NULL ? get_url(wrap, "u", true, r->authz[i], error_r) : ACME_MSG_ERR_FIELD;
		json_decref(wrap);
		if (e != ACME_MSG_OK)
			goto out;
		r->n_authz++;
	}
	/* §7.1.3: a valid order names its certificate */
	if (r->status == ACME_STATUS_VALID && r->certificate[0] == '\0') {
		e = ACME_MSG_ERR_FIELD;
		*error_r = "a valid order without a certificate URL";
	}
out:
	json_decref(doc);
	return e;
}

bool acme_token_ok(const char *s, size_t len)
{
	if (len == 0 || len > ACME_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static void problem_text(json_t *err, char *out, size_t size)
{
	const char *detail = json_string_value(json_object_get(err, "detail"));
	const char *type = json_string_value(json_object_get(err, "type"));
	snprintf(out, size, "%s", detail != NULL ? detail : type != NULL ? type : "failed");
}

enum acme_msg_error acme_authz_parse(const char *buf, size_t len, struct acme_authz *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	json_t *doc = load_object(buf, len, error_r);
	if (doc == NULL)
		return ACME_MSG_ERR_JSON;
	enum acme_msg_error e;
	if ((e = get_status(doc, &r->status, error_r)) != ACME_MSG_OK)
		goto out;
	json_t *id = json_object_get(doc, "identifier");
	const char *type = json_string_value(json_object_get(id, "type"));
	if (type == NULL || strcmp(type, "dns") != 0 ||
	    get_string(id, "value", true, r->name, sizeof(r->name), error_r) != ACME_MSG_OK || r->name[0] == '\0') {
		e = ACME_MSG_ERR_FIELD;
		*error_r = "the authorization has no dns identifier";
		goto out;
	}
	json_t *chs = json_object_get(doc, "challenges");
	if (!json_is_array(chs)) {
		e = ACME_MSG_ERR_FIELD;
		*error_r = "the authorization has no challenges array";
		goto out;
	}
	for (size_t i = 0; i < json_array_size(chs); i++) {
		json_t *ch = json_array_get(chs, i);
		const char *t = json_string_value(json_object_get(ch, "type"));
		if (!json_is_object(ch) || t == NULL) {
			e = ACME_MSG_ERR_FIELD;
			*error_r = "a challenge is not an object with a type";
			goto out;
		}
		enum acme_challenge_type kind = strcmp(t, "http-01") == 0 ? ACME_CHALLENGE_HTTP01
						: strcmp(t, "tls-alpn-01") == 0 ? ACME_CHALLENGE_TLSALPN01
										 : ACME_CHALLENGE_OTHER;
		if (kind == ACME_CHALLENGE_OTHER)
			continue; /* dns-01 and others are not ours to answer */
		if (r->n_challenges == ACME_CHALLENGES_MAX) {
			e = ACME_MSG_ERR_TOO_MANY;
			*error_r = "the authorization has too many challenges";
			goto out;
		}
		struct acme_challenge *c = &r->challenges[r->n_challenges];
		c->type = kind;
		if ((e = get_status(ch, &c->status, error_r)) != ACME_MSG_OK ||
		    (e = get_url(ch, "url", true, c->url, error_r)) != ACME_MSG_OK ||
		    (e = get_string(ch, "token", true, c->token, sizeof(c->token), error_r)) != ACME_MSG_OK)
			goto out;
		if (!acme_token_ok(c->token, strlen(c->token))) {
			e = ACME_MSG_ERR_FIELD;
			*error_r = "a challenge token is not base64url (RFC 8555 §8.1)";
			goto out;
		}
		json_t *err = json_object_get(ch, "error");
		if (json_is_object(err) && r->error[0] == '\0')
			problem_text(err, r->error, sizeof(r->error));
		r->n_challenges++;
	}
out:
	json_decref(doc);
	return e;
}

enum acme_msg_error acme_problem_parse(const char *buf, size_t len, struct acme_problem *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	json_t *doc = load_object(buf, len, error_r);
	if (doc == NULL)
		return ACME_MSG_ERR_JSON;
	const char *type = json_string_value(json_object_get(doc, "type"));
	const char *detail = json_string_value(json_object_get(doc, "detail"));
	/* cut, not refused: they are only logged */
	snprintf(r->type, sizeof(r->type), "%s", type != NULL ? type : "");
	snprintf(r->detail, sizeof(r->detail), "%s", detail != NULL ? detail : "");
	json_decref(doc);
	return ACME_MSG_OK;
}

bool acme_problem_is_bad_nonce(const struct acme_problem *p)
{
	return strcmp(p->type, "urn:ietf:params:acme:error:badNonce") == 0;
}

bool acme_retry_after_parse(const char *s, int64_t now, uint64_t *seconds_r)
{
	if (s == NULL || *s == '\0')
		return false;
	if (*s >= '0' && *s <= '9') {
		uint64_t v = 0;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (v > UINT32_MAX)
				return false;
			v = v * 10 + (uint64_t)(*s - '0');
		}
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s != '\0')
			return false;
		*seconds_r = v;
		return true;
	}
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7) */
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0')
		return false;
	int64_t t = (int64_t)timegm(&tm);
	*seconds_r = t > now ? (uint64_t)(t - now) : 0;
	return true;
}

/* acme_msg.h — the parts of an ACME server's answers we read (RFC 8555 §7.1): the directory, an
 * order, an authorization with its challenges, a problem document, Retry-After. Pure: strict JSON
 * (http/json.h: no duplicate keys, bounded nesting, whole text), every URL parsed by
 * net/http_url.h and required to be https (§6.1), every field bounded; anything else is refused
 * with a sentence, never half-read. Fuzzed (fuzz/fuzz_acme_msg.c). */
#ifndef MAILWERK_ACME_ACME_MSG_H
#define MAILWERK_ACME_ACME_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/http_url.h"

#define ACME_URL_SIZE (HTTP_URL_MAX + 1)
#define ACME_NAMES_MAX 20     /* identifiers in one order (Let's Encrypt allows 100; a mail server has few) */
#define ACME_CHALLENGES_MAX 8 /* challenges of one authorization that are looked at */
#define ACME_TOKEN_MAX 128    /* §8.1: base64url, 128 bits or more; longer ones are refused */
#define ACME_NAME_SIZE 254    /* RFC 1035 §2.3.4, and the NUL */
#define ACME_MSG_DEPTH 8      /* nesting of any answer we read */

enum acme_status {
	ACME_STATUS_PENDING = 0,
	ACME_STATUS_READY,
	ACME_STATUS_PROCESSING,
	ACME_STATUS_VALID,
	ACME_STATUS_INVALID,
	ACME_STATUS_DEACTIVATED,
	ACME_STATUS_EXPIRED,
	ACME_STATUS_REVOKED,
};
const char *acme_status_str(enum acme_status s);

enum acme_msg_error {
	ACME_MSG_OK = 0,
	ACME_MSG_ERR_JSON,    /* not one strict JSON object */
	ACME_MSG_ERR_FIELD,   /* a field we need is missing, of the wrong type, or too long */
	ACME_MSG_ERR_URL,     /* a URL that is not an acceptable https URL */
	ACME_MSG_ERR_STATUS,  /* a status word §7.1.6 does not know */
	ACME_MSG_ERR_TOO_MANY,
};

struct acme_directory {
	char new_nonce[ACME_URL_SIZE];
	char new_account[ACME_URL_SIZE];
	char new_order[ACME_URL_SIZE];
	char revoke_cert[ACME_URL_SIZE];
	char terms[ACME_URL_SIZE]; /* meta.termsOfService, "" when none */
};

struct acme_order {
	enum acme_status status;
	char finalize[ACME_URL_SIZE];
	char certificate[ACME_URL_SIZE]; /* "" until valid */
	size_t n_authz;
	char authz[ACME_NAMES_MAX][ACME_URL_SIZE];
};

enum acme_challenge_type {
	ACME_CHALLENGE_OTHER = 0,
	ACME_CHALLENGE_HTTP01,   /* RFC 8555 §8.3 */
	ACME_CHALLENGE_TLSALPN01, /* RFC 8737 §3 */
};

struct acme_challenge {
	enum acme_challenge_type type;
	enum acme_status status;
	char url[ACME_URL_SIZE];
	char token[ACME_TOKEN_MAX + 1]; /* "" for types we do not answer */
};

struct acme_authz {
	enum acme_status status;
	char name[ACME_NAME_SIZE]; /* identifier.value, type dns */
	size_t n_challenges;
	struct acme_challenge challenges[ACME_CHALLENGES_MAX];
	char error[256]; /* the first failed challenge's error.detail (or type), "" when none */
};

struct acme_problem {
	char type[128];   /* "urn:ietf:params:acme:error:badNonce" */
	char detail[256];
};

enum acme_msg_error acme_directory_parse(const char *buf, size_t len, struct acme_directory *r, const char **error_r);
enum acme_msg_error acme_order_parse(const char *buf, size_t len, struct acme_order *r, const char **error_r);
enum acme_msg_error acme_authz_parse(const char *buf, size_t len, struct acme_authz *r, const char **error_r);
/* RFC 7807 / RFC 8555 §6.7: type and detail (both may be absent: ""); ERR_JSON when not an object. */
enum acme_msg_error acme_problem_parse(const char *buf, size_t len, struct acme_problem *r, const char **error_r);
/* §6.5: the error a new nonce cures */
bool acme_problem_is_bad_nonce(const struct acme_problem *p);

/* The token of §8.1: 1..ACME_TOKEN_MAX base64url characters, nothing else (it goes into a URL path
 * and a file of ours). */
bool acme_token_ok(const char *s, size_t len);

/* RFC 9110 §10.2.3 Retry-After: delta-seconds or an IMF-fixdate, as seconds from now (0 for a date
 * in the past); false when absent or malformed. */
bool acme_retry_after_parse(const char *s, int64_t now, uint64_t *seconds_r);

#endif

/* acme_int.h — what the ACME client's files share (acme.c: the protocol and the schedule;
 * acme_store.c: data_dir/acme; acme_tls.c: the TLS-ALPN-01 handshake hook). */
#ifndef MAILWERK_ACME_ACME_INT_H
#define MAILWERK_ACME_ACME_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "acme/acme.h"
#include "acme/acme_jws.h"
#include "acme/acme_msg.h"
#include "net/http_client.h"

#define ACME_NONCE_MAX 255
#define ACME_KEY_AUTHZ_SIZE (ACME_TOKEN_MAX + 1 + ACME_THUMBPRINT_SIZE)

enum acme_step {
	ACME_STEP_IDLE = 0,
	ACME_STEP_NAMES,
	ACME_STEP_DIRECTORY,
	ACME_STEP_ACCOUNT,
	ACME_STEP_ORDER,
	ACME_STEP_AUTHZ,
	ACME_STEP_CHALLENGE,
	ACME_STEP_POLL_AUTHZ,
	ACME_STEP_FINALIZE,
	ACME_STEP_POLL_ORDER,
	ACME_STEP_CERTIFICATE,
	ACME_STEP_INSTALL,
	ACME_STEP_REVOKE,
};
const char *acme_step_str(enum acme_step s);

/* A challenge we answer while it is validated. */
struct acme_answer {
	enum acme_challenge_type type;
	char name[ACME_NAME_SIZE];
	char token[ACME_TOKEN_MAX + 1];
	char key_authz[ACME_KEY_AUTHZ_SIZE];
	X509 *cert;    /* TLS-ALPN-01: the acmeIdentifier certificate, and its key */
	EVP_PKEY *key;
};

typedef void acme_handler_fn(struct acme *a, const struct http_client_result *r);

struct acme {
	struct server *srv;
	struct http_client *http;
	struct event *timer;
	char dir_path[4096]; /* data_dir/acme */
	EVP_PKEY *account;
	char thumbprint[ACME_THUMBPRINT_SIZE];
	char kid[ACME_URL_SIZE];  /* the account URL, "" until newAccount answered */
	char directory_url[ACME_URL_SIZE]; /* of this run: the conf's */
	struct acme_url_origin { char host[HTTP_URL_HOST_MAX + 2]; unsigned port; } origin;
	struct acme_directory dir;
	char nonce[ACME_NONCE_MAX + 1]; /* "" when none is in hand */
	/* the run under way */
	bool started;  /* acme_start was called: the schedule runs */
	enum acme_step step;
	bool revoke;   /* this run revokes the certificate in use first */
	char names[ACME_NAMES_MAX][ACME_NAME_SIZE];
	size_t n_names;
	char order_url[ACME_URL_SIZE];
	struct acme_order order;
	size_t authz_i;
	char authz_url[ACME_URL_SIZE];
	struct acme_answer answers[ACME_NAMES_MAX];
	size_t n_answers;
	int64_t poll_deadline_ms;
	EVP_PKEY *new_key; /* the key of the certificate being ordered */
	EVP_PKEY *next_key; /* the key staged for the next order (data_dir/acme/next_key.pem, written
			     * before it is set here), NULL when none is */
	bool staging;       /* a new next key is being written */
	const char *next_why; /* why none was read at the start ("first_start", "missing", ...) */
	char *new_chain;
	size_t new_chain_len;
	int64_t new_not_before, new_not_after;
	/* the request under way (sent again after badNonce, RFC 8555 §6.5) */
	enum acme_req_kind { ACME_REQ_GET, ACME_REQ_NONCE, ACME_REQ_POST } req_kind;
	struct http_client_req *req;
	bool finalized;                 /* this run's finalize was sent */
	void (*wait_fn)(struct acme *a); /* what the timer does when it ends a wait within a run */
	bool names_job;                  /* the worker is reading the local domains */
	char req_url[ACME_URL_SIZE];
	char *req_payload;       /* NULL: POST-as-GET */
	bool req_jwk;            /* signed with the jwk (newAccount), not the kid */
	bool req_want_pem;       /* Accept: application/pem-certificate-chain */
	acme_handler_fn *req_handler;
	unsigned bad_nonces;
	/* the certificate in use */
	SSL_CTX *ctx;           /* with it (a reference of ours), NULL when none */
	char *chain;            /* its PEM chain */
	size_t chain_len;
	EVP_PKEY *key;
	int64_t not_before, not_after;
	/* the schedule */
	unsigned failures;
	int64_t next_at;         /* unix seconds of the next attempt, 0 when none is set */
	char last_error[300];
};

/* acme.c: ends the run with a failure, logged with reason, and sets the retry (the certificate in
 * use stays). */
void acme_run_fail(struct acme *a, const char *reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* acme_req.c: an https URL we may put into a JWS header (printable, no quote or backslash). */
bool acme_url_ok(const char *url);
/* A request of kind to url (body for a POST); its answer goes to a->req_handler, except a nonce's,
 * after which the POST waiting for it is sent. */
void acme_call_start(struct acme *a, enum acme_req_kind kind, const char *url, const char *body, size_t len);
/* A POST of payload (NULL: POST-as-GET, §6.3) to url, signed with the jwk (newAccount) or the
 * kid; pem asks for a certificate chain; handler gets the answer. */
void acme_post(struct acme *a, const char *url, const char *payload, bool jwk, bool pem, acme_handler_fn *handler);
/* Ends the run with the problem document of an answer a step did not want (§6.7). */
void acme_fail_answer(struct acme *a, const char *reason, const struct http_client_result *r);
/* Seconds to wait before the next poll: Retry-After within bounds, else 1. */
unsigned acme_retry_after_wait(const struct http_client_result *r);

/* acme_store.c: the account key (read, or made and written); the certificate of an earlier run
 * (false when none: a fresh start); writing a new one on a worker thread, then done(a, ok) on the
 * loop. */
int acme_store_account(struct acme *a, char *error, size_t error_size);
bool acme_store_load_cert(struct acme *a);
void acme_store_save_cert(struct acme *a, void (*done)(struct acme *a, bool ok, const char *error));
/* RFC 7671 §8.1: the key of the next certificate, made and written ahead (next_key.pem, 0600), so
 * that its TLSA record can be published before it is used. acme_store_next_key_open at start-up
 * reads it (a->next_key; NULL with the reason in a->next_why when there is none to use);
 * acme_store_next_key_stage (why: a stable word for the log) makes a new one, writes it on a
 * worker thread and only then sets a->next_key: at acme_start when none was read (so a standby
 * never writes), and after a certificate is installed. */
void acme_store_next_key_open(struct acme *a);
void acme_store_next_key_stage(struct acme *a, const char *why);

/* acme_tls.c: the hooks that answer TLS-ALPN-01 in ctx's handshakes, looking in a's answers. */
void acme_tls_attach(struct acme *a, SSL_CTX *ctx);

#endif

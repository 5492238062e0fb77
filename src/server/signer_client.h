/* signer_client.h — the worker's side of the DKIM signer (signer.h). A message's draft (its hashes,
 * auth/dkim_sign.h) goes to the signer as one KEYS and one SIGN request per active key, without
 * waiting: the answer comes back through a callback on the loop. While the signer is down (killed,
 * being restarted by the parent), requests wait, and are sent again to the next signer; one not
 * answered within SIGNER_CLIENT_WAIT_SECONDS fails as SIGNER_UNAVAILABLE. Loop thread only. */
#ifndef MAILWERK_SERVER_SIGNER_CLIENT_H
#define MAILWERK_SERVER_SIGNER_CLIENT_H

#include <event2/event.h>

#include "auth/dkim_sign.h"
#include "conf/conf.h"
#include "server/signer_msg.h"

#define SIGNER_CLIENT_WAIT_SECONDS 15

enum signer_result {
	SIGNER_SIGNED,      /* fields holds the DKIM-Signature fields ("" when the domain has no key); or done */
	SIGNER_KEY_FAILED,  /* a key could not sign (the reason in error); the message may go unsigned */
	SIGNER_UNAVAILABLE, /* no signer answered in time: a temporary failure */
};

/* fields: malloc'd, the callee's (NULL unless SIGNER_SIGNED); error: NULL when signed. */
typedef void signer_done_fn(void *arg, enum signer_result r, char *fields, const char *error);

struct signer_client;
struct signer_client *signer_client_new(struct event_base *base);
/* Every request still waiting is answered SIGNER_UNAVAILABLE first. */
void signer_client_free(struct signer_client *c);

/* The socket to a (new) signer, handed over by the parent; taken. Requests not answered yet are
 * sent on it again (a signature is the same whoever makes it). */
void signer_client_connect(struct signer_client *c, int fd);

/* Signs with the active keys of draft's domain, Ed25519 first. draft is taken. done runs later on
 * the loop, never within this call. */
void signer_client_sign(struct signer_client *c, struct dkim_draft *draft, signer_done_fn *done, void *arg);

/* Changes to the key store, which only the signer may write (it holds the private keys): MAKE a
 * key, ACTIVATE one. done gets SIGNER_SIGNED with whether the key is active now, SIGNER_KEY_FAILED
 * with the signer's sentence (a key of that selector exists, a name that is not one), or
 * SIGNER_UNAVAILABLE. Later on the loop, never within the call. */
typedef void signer_key_done_fn(void *arg, enum signer_result r, bool active, const char *error);
void signer_client_make_key(struct signer_client *c, const struct signer_make *k, signer_key_done_fn *done, void *arg);
void signer_client_activate(struct signer_client *c, const char *domain, const char *selector,
			    signer_key_done_fn *done, void *arg);

/* The draft of a message to be signed for domain as our users' mail is (RFC 6376 §5: c= and x= from
 * [dkim], t= now; the body past msg from tail, when not NULL). NULL with *error_r. Any thread. */
struct dkim_draft *signer_draft_new(const struct conf *c, const char *domain, const char *msg, size_t len, time_t now,
				    const struct dkim_body_tail *tail, const char **error_r);

/* Requests waiting for an answer (the status command, tests). */
size_t signer_client_pending(const struct signer_client *c);

#endif

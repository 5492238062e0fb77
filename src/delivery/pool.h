/* pool.h — remote delivery on the loop thread: jobs (one message for the recipients at one
 * destination domain) go to the domain's MX hosts (RFC 5321 §5.1) or to the smarthost, within the
 * limits on connections in total and per destination, reusing a connection for the next job to the
 * same destination when one is waiting. Each job comes back, with a result per recipient, through
 * the done callback. */
#ifndef MAILWERK_DELIVERY_POOL_H
#define MAILWERK_DELIVERY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/client_parse.h"
#include "events/tlsrpt_sessions.h"
#include "net/dns_parse.h"
#include "queue/queue.h"
#include "util/result.h"

struct conf;
struct dns;
struct event_base;
struct delivery_pool;
struct metrics;

struct remote_rcpt {
	char *addr;
	unsigned idx;       /* in the queue */
	unsigned attempts;  /* before this one */
	bool warned;
	unsigned dsn_notify; /* RFC 3461 NOTIFY as queued (enum queue_dsn_notify; 0: not given) */
	char *dsn_orcpt;     /* RFC 3461 ORCPT "type;address" decoded, or NULL */
	/* set by the pool */
	bool dsn_passed;     /* delivered to a server that offers DSN, NOTIFY and ORCPT passed on (RFC 3461
			      * §5.2.1): reporting success is that server's job now */
	enum result result;                       /* OK delivered, TEMPFAIL try later, PERMFAIL failed */
	bool remote;                              /* text is a reply of the remote host (else our reason) */
	char status[DELIVERY_ENH_MAX];            /* RFC 3463 "5.1.1" */
	char text[DELIVERY_REPLY_TEXT_MAX + 128]; /* the reply, "550 5.1.1 no such user", or our reason */
};

struct remote_job {
	struct remote_job *next;     /* free for the current owner's lists */
	struct delivery_pool *pool;
	char id[QUEUE_ID_LEN + 1];
	char *sender;                /* "" for <> */
	char *domain;                /* the destination, lower case */
	int64_t arrival;
	bool no_dsn;                 /* as queued (struct queue_msg) */
	enum queue_dsn_ret dsn_ret;  /* RFC 3461 RET as queued */
	char *dsn_envid;             /* RFC 3461 ENVID decoded, or NULL */
	/* RFC 8689, as queued, for the outbound TLS policy (tls_decide.h's requiretls / tls_required_no);
	 * the client sends REQUIRETLS on MAIL when requiretls and the server offers it */
	bool requiretls;
	bool tls_required_no;
	char *data;                  /* the message as stored */
	size_t size;
	struct remote_rcpt *rcpts;
	size_t rcpt_count;
	/* set by the pool */
	char relay[DNS_HOST_SIZE + 64]; /* the last host tried, "mx.example.org[192.0.2.1]:25"; "" if none */
	char mta[DNS_HOST_SIZE];        /* its name, for Remote-MTA */
	char tls[16];                   /* "TLSv1.3", or "none" */
	char cipher[64];                /* "TLS_AES_256_GCM_SHA384", or "" */
	struct tlsrpt_sessions tlsrpt;  /* its TLS sessions (RFC 8460), recorded with its results */
};

void remote_job_free(struct remote_job *j);

/* Loop thread: the job is finished; the callee owns it. */
typedef void delivery_pool_done_fn(void *arg, struct remote_job *job);

/* Reads [delivery] and [relay] from c (copied) and resolves with dns (a reference is kept);
 * counts its connections into metrics (kept; NULL: not counted). NULL with a sentence on failure
 * (TLS set-up). */
struct delivery_pool *delivery_pool_new(struct event_base *base, const struct conf *c, struct dns *dns,
					struct metrics *metrics, delivery_pool_done_fn *done, void *arg, char *error_r,
					size_t error_size);
/* After a reload: connections from now on follow c; those in progress finish as they started.
 * -1 with a sentence (nothing changed) when c cannot be applied. */
int delivery_pool_reconfigure(struct delivery_pool *p, const struct conf *c, struct dns *dns, char *error_r,
			       size_t error_size);
/* Loop thread: MX delivery asks cache (loop thread too) for each destination's MTA-STS policy
 * (RFC 8461) from now on; NULL: it asks none. The cache must outlive the pool. */
struct mtasts_cache;
void delivery_pool_set_mtasts(struct delivery_pool *p, struct mtasts_cache *cache);

/* Loop thread: the outbound connections open now (`mailwerk status`). */
unsigned delivery_pool_conns(const struct delivery_pool *p);
/* Any thread: hands a job to the pool, which owns it from now on. */
void delivery_pool_post(struct delivery_pool *p, struct remote_job *job);
/* Loop thread: drops every job in hand (they stay in the queue, and are delivered after a restart)
 * and every connection, without calling done. Whoever posts must have stopped. */
void delivery_pool_free(struct delivery_pool *p);

#endif

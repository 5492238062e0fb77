/* server.h — the server context: the one place for state shared across sessions (DESIGN.md §1).
 * Everything here is touched only on the loop thread. */
#ifndef MAILWERK_SERVER_SERVER_H
#define MAILWERK_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "net/listener.h"
#include "util/budget.h"

struct event;
struct event_base;
struct evconnlistener;
struct sockaddr;
struct iplimit;
struct loopq;
struct pop3_lock;
struct queue;
struct users;
struct delivery_runner;
struct delivery_pool;
struct dns;
struct signer_client;
struct report_scheduler;
struct tlsrpt_scheduler;
struct dkim_key_cache;
struct worker_pool;
struct http_api;
struct server_refused;
struct metrics;
struct login_state;
struct control;
struct mtasts_cache;
struct acme;

/* What the server knows of any session (SMTP, POP3): embedded in the protocol's session struct.
 * Sessions are found by id, never by a pointer kept across a wait (DESIGN.md §4). */
struct server_conn {
	struct server_conn *hnext;         /* registry chain */
	struct server_conn *shutdown_next; /* used only while the server stops */
	uint64_t id;
	bool closing;                      /* on its way out: lookups no longer find it */
	/* the client, as server_conn_open found it */
	enum conf_listener role;           /* the listener it came in on */
	bool listener_loopback;            /* that listener and the client are both on loopback */
	char ip[46];
	char client[NET_CLIENT_KEY_SIZE];  /* what per-client limits count it by (net_client_key) */
	void (*shutdown)(struct server_conn *c); /* SIGTERM: end politely, now or when idle */
	void (*destroy)(struct server_conn *c);  /* free at once (end of a forced stop) */
};

#define SERVER_CONN_OF(ptr, type) ((type *)(void *)((char *)(ptr) - offsetof(type, conn)))

struct server;
struct server_listener;

/* What a listener starts: one row per protocol, provided by the protocol's module (smtp/, pop3/)
 * and handed to server_init by the caller, so that server/ knows no protocol and a new one adds a
 * row, not an include. */
struct server_protocol {
	const char *name;
	/* takes over an accepted socket */
	void (*start)(struct server *srv, const struct server_listener *l, int fd, const struct sockaddr *sa);
	/* the one line a refused connection gets (CRLF-terminated): server full, client address full */
	const char *refuse_busy;
	const char *refuse_busy_client;
	const char *refuse_banned; /* a client banned after failed logins (server/login.h) */
	/* optional: the protocol's shared state, made once the stores and workers exist (0, or -1
	 * with a sentence) and freed after the workers have stopped */
	int (*init)(struct server *srv, char *error, size_t error_size);
	void (*deinit)(struct server *srv);
};

struct server_listener {
	struct server_listener *next;
	struct server *srv;
	const struct server_protocol *protocol;
	enum conf_listener role;
	struct conf_addr addr;
	bool loopback; /* bound to a loopback address: allow_insecure_auth may apply */
	struct evconnlistener *lev;
};

#define SERVER_SESSION_BUCKETS 4096

struct server {
	struct event_base *base;
	const struct server_protocol *const *protocols; /* by enum conf_listener */
	struct conf *conf;    /* current configuration; sessions keep a reference to theirs */
	char *const *overrides; /* -o values, applied again on reload */
	unsigned n_overrides;
	SSL_CTX *tls;         /* current; an SSL keeps its own reference */
	struct queue *queue;
	struct delivery_runner *delivery; /* finds due work, delivers locally, on its own thread */
	struct delivery_pool *remote;     /* delivers to other hosts, on the loop */
	struct dns *dns;                  /* the resolver (current [dns]); holders keep a reference */
	struct signer_client *signer;     /* the DKIM signer process (signer_client.h); loop thread */
	struct report_scheduler *reports;    /* DMARC aggregate reporting (RFC 9990) */
	struct tlsrpt_scheduler *tlsrpt;     /* TLS reports of our outbound sessions (RFC 8460) */
	struct dkim_key_cache *dkim_keys; /* senders' decoded DKIM key records; loop thread */
	struct mtasts_cache *mtasts;      /* recipient domains' MTA-STS policies (delivery/mtasts_cache.h) */
	struct users *users;
	struct loopq *loopq;
	struct worker_pool *workers;
	struct iplimit *iplimit;
	struct login_state *login; /* failed-login delays and bans (server/login.h) */
	struct control *control;   /* the control socket in data_dir (server/control.h) */
	struct acme *acme;         /* certificates by ACME (acme/acme.h); NULL when [acme] is off */
	struct budget memory; /* message octets all sessions hold in memory ([server] max_memory_in_flight) */
	struct server_listener *listeners;
	struct server_conn *sessions[SERVER_SESSION_BUCKETS]; /* by id */
	uint64_t next_session_id;
	unsigned session_count;
	bool overload; /* past util/overload.h's mark of max_connections: new sessions get shorter limits */
	unsigned refused_lingering; /* refused connections still being read before their close */
	struct server_refused *refused; /* their list (server.c) */
	bool stopping;
	/* an upgrade (server/parent_upgrade.h): started beside another worker, which does the background
	 * work (delivery, webhooks, reports) until the parent says it is gone; or told to drain, for a
	 * successor serves: no listeners, the sessions finish until drain_timer, then a stop */
	bool standby;
	bool draining;
	struct event *drain_timer;
	/* mailboxes held by POP3 sessions (RFC 1939 §4 exclusive access), a list owned by
	 * src/pop3/session.c; each entry is freed by its last holder, so nothing is left at deinit */
	struct pop3_lock *pop3_locks;
	struct http_api *http_api; /* the HTTP API's keys, readers and limits (src/http/api.c) */
	struct metrics *metrics;   /* counters of every thread (atomics, util/metrics.h); freed last */
	char dummy_hash[256]; /* verified against when AUTH names an unknown user, for equal timing */
	struct event *sig_term, *sig_int, *stop_timer;
	struct event *parent_ev; /* messages from the parent (server/parent.h) on PARENT_IPC_FD */
	pid_t parent;
	/* a descriptor held back for when accept(2) finds none left (EMFILE): given up to take the
	 * waiting connection and refuse it, then taken again, so that the loop never spins on a
	 * listener it cannot empty */
	int spare_fd;
	int64_t fd_exhausted_logged; /* when that was last logged (unix seconds): once a second */
};

/* In the worker (started by the parent, parent.h): builds the context from a loaded configuration
 * (takes its reference), accepts on the listeners the parent bound, changes to [server] user, opens
 * the stores. protocols[role] is what a listener of that role starts (CONF_LISTEN_COUNT
 * entries, kept). Returns 0, or -1 with one line in error_r. */
int server_init(struct server *srv, const struct server_protocol *const *protocols, struct conf *c,
		char *const *overrides, unsigned n_overrides, char *error_r, size_t error_size);
/* Tells the parent it serves, then runs the loop until SIGTERM/SIGINT (or the parent's end, or
 * an upgrade's drain) has drained the sessions. */
int server_run(struct server *srv);
void server_deinit(struct server *srv);

/* Session registry. open fills in who the client is (from the listener and its address sa) and how
 * the server ends it (shutdown, destroy), counts it towards the per-client limits, assigns the id,
 * registers it and logs the connection; close
 * undoes that at the final free; find skips closing sessions. */
void server_conn_open(struct server *srv, struct server_conn *c, const struct server_listener *l,
		      const struct sockaddr *sa, bool implicit_tls, void (*shutdown)(struct server_conn *c),
		      void (*destroy)(struct server_conn *c));
void server_conn_close(struct server *srv, struct server_conn *c);
struct server_conn *server_conn_find(struct server *srv, uint64_t id);
/* Called when a session has been freed: lets a stopping server finish. */
void server_conn_gone(struct server *srv);

#endif

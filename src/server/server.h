/* server.h — the server context: the one place for state shared across sessions (DESIGN.md §1).
 * Everything here is touched only on the loop thread. */
#ifndef MAILWERK_SERVER_SERVER_H
#define MAILWERK_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "conf/conf.h"

struct event;
struct event_base;
struct evconnlistener;
struct iplimit;
struct loopq;
struct queue;
struct smtp_session;
struct users;
struct worker_pool;

struct server_listener {
	struct server_listener *next;
	struct server *srv;
	enum conf_listener role;
	struct conf_addr addr;
	bool loopback; /* bound to a loopback address: allow_insecure_auth may apply */
	struct evconnlistener *lev;
};

#define SERVER_SESSION_BUCKETS 4096

struct server {
	struct event_base *base;
	struct conf *conf;    /* current configuration; sessions keep a reference to theirs */
	char *const *overrides; /* -o values, applied again on reload */
	unsigned n_overrides;
	SSL_CTX *tls;         /* current; an SSL keeps its own reference */
	struct queue *queue;
	struct users *users;
	struct loopq *loopq;
	struct worker_pool *workers;
	struct iplimit *iplimit;
	struct server_listener *listeners;
	struct smtp_session *sessions[SERVER_SESSION_BUCKETS]; /* by id, chained through session->hnext */
	uint64_t next_session_id;
	unsigned session_count;
	bool stopping;
	char dummy_hash[256]; /* verified against when AUTH names an unknown user, for equal timing */
	struct event *sig_term, *sig_int, *sig_hup, *stop_timer;
};

/* Builds the context from a loaded configuration (takes its reference), opens the stores, binds
 * every listener. Returns 0, or -1 with one line in error_r. */
int server_init(struct server *srv, struct conf *c, char *const *overrides, unsigned n_overrides,
		char *error_r, size_t error_size);
/* Runs the loop until SIGTERM/SIGINT has drained the sessions. */
int server_run(struct server *srv);
void server_deinit(struct server *srv);

/* Session registry: sessions are found by id, never by a pointer kept across a wait. */
void server_session_add(struct server *srv, struct smtp_session *s);
void server_session_del(struct server *srv, struct smtp_session *s);
struct smtp_session *server_session_find(struct server *srv, uint64_t id);
/* Called when a session has gone: lets a stopping server finish. */
void server_session_gone(struct server *srv);

#endif

/* login.c — password checks off the loop, the penalty of failed logins, and temporary bans.
 *
 * The shape is Dovecot's auth penalty (src/auth/auth-penalty.c, with anvil's penalty.c): the first
 * failure from a client waits [server] auth_delay_initial (2 s), each further one twice as long, up
 * to auth_delay_max (15 s); a failure whose password is one of the client's last few failed ones
 * (Dovecot compares a checksum of it) costs the delay it has reached but is not counted again, so
 * a phone retrying a stale password does not climb to the maximum. Counts decay as a whole: once
 * the newest failure is older than IPLIMIT_AUTH_WINDOW, the client starts afresh.
 *
 * Per account, failures from every client add up too, so that an attacker rotating addresses
 * against one mailbox still waits: a failure waits the larger of the client's and the account's
 * delay. The account's count never refuses anything, and is bounded by the same auth_delay_max, so
 * a distributed attack cannot lock the owner out: the right password is always accepted, after at
 * most that delay (and not even that from a client that signed in to the account within the
 * window, nor for failures that are the client's own typos). What does refuse — a ban — is per
 * client only, and only a client's own failures earn it.
 *
 * A client with auth_ban_failures counted failures is banned for auth_ban_time: the ban is in
 * force here at once and written to mailwerk.db (auth_bans) on a worker; every
 * LOGIN_BAN_REFRESH_SECONDS the table is read again on a worker, so that `mailwerk auth unban`
 * reaches a running server within seconds without the loop touching the disk. */
#include "server/login.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailbox/users.h"
#include "net/iplimit.h"
#include "net/listener.h"
#include "server/login_penalty.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"

#define LOGIN_KEY_SIZE 32
/* buckets of the client table looked at per refresh tick: all of them every half minute */
#define LOGIN_SWEEP_BUCKETS 64
#define LOGIN_FIELD_MAX 256

struct login_job {
	struct login_job *next, **prev; /* login_state.waiting, while its delay runs */
	struct server *srv;
	struct event *timer;
	uint64_t conn_id;
	login_done_fn *done;
	char ip[46];
	char client[NET_CLIENT_KEY_SIZE]; /* what the failures are counted by (net_client_key) */
	char user[LOGIN_FIELD_MAX];
	char pass[LOGIN_FIELD_MAX];
	char hash[USERS_HASH_MAX];
	uint64_t tag; /* of the credentials that failed (keyed hash); 0: none, every such failure counts */
	bool found;
	bool ok;
	bool banned; /* answered without a check: the client is banned */
};

struct login_state {
	struct server *srv;
	unsigned char key[LOGIN_KEY_SIZE]; /* random per process: tags mean nothing outside it */
	struct login_accounts *accounts;
	struct login_bans *bans;
	struct users *store;           /* a connection of its own to mailwerk.db, for the bans */
	struct event *tick;
	struct login_job *waiting;     /* answers waiting out their delay */
	struct users_ban *unwritten;   /* new bans the next store job writes */
	size_t n_unwritten, cap_unwritten;
	bool storing;                  /* a store job is on a worker (one at a time) */
	uint64_t refresh_next;         /* the number of the next store job */
	bool store_failing;            /* its failure is logged once until it works again */
};

/* ---- keyed hashes ---- */

/* The first 64 bits of HMAC-SHA256(key, a NUL b); 0 only when OpenSSL fails. Never stored, never
 * logged: tags of passwords only say "the same as before" within this process. */
static uint64_t login_hash(const unsigned char *key, const char *a, const char *b)
{
	unsigned char buf[2 * LOGIN_FIELD_MAX + 1], md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	size_t al = strnlen(a, LOGIN_FIELD_MAX), bl = strnlen(b, LOGIN_FIELD_MAX);
	memcpy(buf, a, al);
	buf[al] = '\0';
	memcpy(buf + al + 1, b, bl);
	uint64_t h = 0;
	if (HMAC(EVP_sha256(), key, LOGIN_KEY_SIZE, buf, al + 1 + bl, md, &md_len) != NULL && md_len >= sizeof(h))
		memcpy(&h, md, sizeof(h));
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(md, sizeof(md));
	return h;
}

/* Keys of the account and client tables: never 0 (a free slot), even if OpenSSL failed. */
static uint64_t login_account_key(const struct login_state *l, const char *user)
{
	char folded[LOGIN_FIELD_MAX];
	size_t n = strnlen(user, sizeof(folded) - 1);
	for (size_t i = 0; i < n; i++)
		folded[i] = user[i] >= 'A' && user[i] <= 'Z' ? (char)(user[i] - 'A' + 'a') : user[i];
	folded[n] = '\0';
	uint64_t h = login_hash(l->key, "account", folded);
	return h != 0 ? h : 1;
}

static uint64_t login_client_key(const struct login_state *l, const char *client)
{
	uint64_t h = login_hash(l->key, "client", client);
	return h != 0 ? h : 1;
}

/* ---- answering ---- */

static void login_finish(struct login_job *j)
{
	j->done(j->srv, j->conn_id, j->user, j->ok);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

static void login_unlink(struct login_job *j)
{
	*j->prev = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	event_free(j->timer);
}

static void login_delay_over(evutil_socket_t fd, short what, void *arg)
{
	struct login_job *j = arg;
	login_unlink(j);
	login_finish(j);
}

/* Answers j after ms (kept in l->waiting meanwhile, so that a stop frees what never fired). */
static void login_wait(struct login_job *j, unsigned ms)
{
	struct login_state *l = j->srv->login;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if (ms == 0 || (j->timer = evtimer_new(j->srv->base, login_delay_over, j)) == NULL) {
		login_finish(j);
		return;
	}
	if (evtimer_add(j->timer, &tv) != 0) {
		event_free(j->timer);
		login_finish(j);
		return;
	}
	j->next = l->waiting;
	if (j->next != NULL)
		j->next->prev = &j->next;
	j->prev = &l->waiting;
	l->waiting = j;
}

/* ---- bans ---- */

static void login_store_kick(struct login_state *l);

static bool login_ban_queue(struct login_state *l, const struct login_ban *b)
{
	if (l->n_unwritten == l->cap_unwritten) {
		size_t cap = l->cap_unwritten ? l->cap_unwritten * 2 : 8;
		struct users_ban *grown = realloc(l->unwritten, cap * sizeof(*grown));
		if (grown == NULL)
			return false;
		l->unwritten = grown;
		l->cap_unwritten = cap;
	}
	struct users_ban *w = &l->unwritten[l->n_unwritten++];
	memset(w, 0, sizeof(*w));
	snprintf(w->client, sizeof(w->client), "%s", b->client);
	w->since = b->since;
	w->until = b->until;
	w->failures = b->failures;
	return true;
}

/* A client that reached [server] auth_ban_failures is banned: at once here, in the store soon. */
static void login_ban_maybe(struct login_state *l, const char *client, unsigned failures, time_t now)
{
	const struct conf *c = l->srv->conf;
	if (c->auth_ban_failures == 0 || failures < c->auth_ban_failures || login_bans_find(l->bans, client, now) != NULL)
		return;
	const struct login_ban *b = login_bans_add(l->bans, client, now, (int64_t)now + c->auth_ban_time, failures);
	if (b == NULL) {
		log_error("event=auth_ban_failed client=%s reason=too_many_bans", client);
		return;
	}
	char until[32];
	time_t end = (time_t)b->until;
	struct tm tm;
	if (gmtime_r(&end, &tm) == NULL || strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(until, sizeof(until), "@%lld", (long long)b->until);
	log_warn("event=auth_ban client=%s until=%s failures=%u", client, until, failures);
	if (!login_ban_queue(l, b))
		log_error("event=auth_ban_store_failed client=%s error=\"out of memory\"", client);
	login_store_kick(l);
}

bool login_banned(struct login_state *l, const char *client, time_t now)
{
	return l != NULL && login_bans_find(l->bans, client, now) != NULL;
}

/* ---- the outcome ---- */

/* A success: the client's failures are forgotten. It waits only for the account's failures that
 * are not this client's own (a typo before the right password costs nothing more), and not at all
 * from a client that signed in to the account within the window. */
static unsigned login_succeeded(struct login_job *j, time_t now)
{
	struct server *srv = j->srv;
	struct login_state *l = srv->login;
	unsigned own = iplimit_auth_failures(srv->iplimit, j->client, now);
	bool good;
	unsigned account = login_accounts_success(l->accounts, login_account_key(l, j->user),
						  login_client_key(l, j->client), now, &good);
	iplimit_auth_clear(srv->iplimit, j->client);
	unsigned others = account > own ? account - own : 0;
	unsigned ms = good ? 0 : login_delay_ms(others, srv->conf->auth_delay_initial, srv->conf->auth_delay_max);
	char user[128];
	log_safe(user, sizeof(user), j->user, (unsigned)strlen(j->user));
	log_info("session=%llx event=login result=ok user=%s client=%s delay_ms=%u", (unsigned long long)j->conn_id,
		 user, j->ip, ms);
	return ms;
}

/* A failure waits the larger of the client's delay and the account's (the account's not for a
 * client that signed in to it lately); a repeat costs the same without counting. */
static unsigned login_failed(struct login_job *j, time_t now)
{
	struct server *srv = j->srv;
	struct login_state *l = srv->login;
	const struct conf *c = srv->conf;
	bool repeat = false, good = false;
	unsigned failures, account = 0;
	if (j->banned) {
		failures = iplimit_auth_failures(srv->iplimit, j->client, now);
	} else {
		failures = iplimit_auth_fail(srv->iplimit, j->client, now, j->tag, &repeat);
		account = login_accounts_fail(l->accounts, login_account_key(l, j->user), login_client_key(l, j->client),
					      now, repeat, &good);
	}
	unsigned mine = login_delay_ms(failures, c->auth_delay_initial, c->auth_delay_max);
	unsigned theirs = good ? 0 : login_delay_ms(account, c->auth_delay_initial, c->auth_delay_max);
	unsigned ms = j->banned ? c->auth_delay_max : mine > theirs ? mine : theirs;
	char user[128];
	log_safe(user, sizeof(user), j->user, (unsigned)strlen(j->user));
	/* packaging/fail2ban/mailwerk.conf matches this line: keep its shape */
	log_info("session=%llx event=login result=fail user=%s client=%s failures=%u delay_ms=%u",
		 (unsigned long long)j->conn_id, user, j->ip, failures, ms);
	if (!j->banned && !repeat)
		login_ban_maybe(l, j->client, failures, now);
	return ms;
}

static void login_answer(struct login_job *j)
{
	time_t now = time(NULL);
	login_wait(j, j->ok ? login_succeeded(j, now) : login_failed(j, now));
}

static void login_work(void *arg)
{
	struct login_job *j = arg;
	bool ok = users_check_password(j->pass, j->hash);
	j->ok = ok && j->found;
	if (!j->ok)
		j->tag = login_hash(j->srv->login->key, j->user, j->pass);
	explicit_bzero(j->pass, sizeof(j->pass));
}

static void login_checked(void *arg)
{
	login_answer(arg);
}

static struct login_job *login_job_new(struct server *srv, uint64_t conn_id, const char *ip, const char *client,
				       const char *user, login_done_fn *done)
{
	struct login_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	*j = (struct login_job){.srv = srv, .conn_id = conn_id, .done = done};
	snprintf(j->ip, sizeof(j->ip), "%s", ip);
	snprintf(j->client, sizeof(j->client), "%s", client);
	snprintf(j->user, sizeof(j->user), "%s", user);
	j->banned = login_banned(srv->login, client, time(NULL));
	return j;
}

void login_check(struct server *srv, uint64_t conn_id, const char *ip, const char *client, const char *user,
		 const char *pass, login_done_fn *done)
{
	struct login_job *j = login_job_new(srv, conn_id, ip, client, user, done);
	if (j == NULL) {
		done(srv, conn_id, user, false);
		return;
	}
	if (j->banned) { /* a session opened before the ban: no more guesses are checked */
		login_answer(j);
		return;
	}
	snprintf(j->pass, sizeof(j->pass), "%s", pass);
	const char *err;
	char canonical[ADDR_TEXT_MAX + 1];
	enum result r = users_user_hash(srv->users, user, j->hash, sizeof(j->hash), canonical, &err);
	j->found = r == RESULT_OK;
	if (j->found) /* from here on the user is the account as stored: it names the mailbox */
		snprintf(j->user, sizeof(j->user), "%s", canonical);
	if (!j->found) /* same work for a user that does not exist (or a lookup error: fail closed) */
		snprintf(j->hash, sizeof(j->hash), "%s", srv->dummy_hash);
	worker_pool_submit(srv->workers, login_work, login_checked, j);
}

void login_refuse(struct server *srv, uint64_t conn_id, const char *ip, const char *client, const char *user,
		  login_done_fn *done)
{
	struct login_job *j = login_job_new(srv, conn_id, ip, client, user, done);
	if (j == NULL) {
		done(srv, conn_id, user, false);
		return;
	}
	login_answer(j); /* not ok: counted (tag 0: every one), logged and answered after the delay */
}

/* ---- the store: new bans written, the table read again ---- */

struct login_store_job {
	struct login_state *l;
	uint64_t refresh;
	time_t now;
	struct users_ban *writes;
	size_t n_writes;
	size_t n_written; /* the first n_written of writes are in the store */
	char write_error[256];
	struct users_ban *rows;
	size_t n_rows;
	bool read_ok;
	char read_error[256];
};

static void login_store_work(void *arg)
{
	struct login_store_job *job = arg;
	struct users *u = job->l->store;
	const char *err = "";
	/* the errors point into u (one job at a time uses it): copied here, on its thread */
	for (; job->n_written < job->n_writes; job->n_written++)
		if (users_ban_put(u, &job->writes[job->n_written], &err) != RESULT_OK) {
			snprintf(job->write_error, sizeof(job->write_error), "%s", err);
			break;
		}
	job->read_ok = users_ban_list(u, job->now, LOGIN_BANS_MAX, &job->rows, &job->n_rows, &err) == RESULT_OK;
	if (!job->read_ok)
		snprintf(job->read_error, sizeof(job->read_error), "%s", err);
}

static void login_ban_gone(const struct login_ban *b, bool expired, void *arg)
{
	struct login_state *l = arg;
	/* the client starts afresh: the failures it was banned for have been paid */
	iplimit_auth_clear(l->srv->iplimit, b->client);
	log_info("event=auth_unban client=%s reason=%s", b->client, expired ? "expired" : "removed");
}

static void login_store_done(void *arg)
{
	struct login_store_job *job = arg;
	struct login_state *l = job->l;
	l->storing = false;
	for (size_t i = 0; i < job->n_writes; i++) {
		const struct users_ban *w = &job->writes[i];
		if (i < job->n_written) {
			login_bans_written(l->bans, w->client, w->since, job->refresh);
			continue;
		}
		/* it holds here until it ends, but a restart forgets it and `auth unban` cannot see it */
		char err[300];
		log_error("event=auth_ban_store_failed client=%s error=%s", w->client,
			  log_safe(err, sizeof(err), job->write_error, (unsigned)strlen(job->write_error)));
	}
	if (job->read_ok) {
		login_bans_sync(l->bans, job->rows, job->n_rows, job->refresh, time(NULL), login_ban_gone, l);
		if (l->store_failing)
			log_info("event=auth_bans_read result=ok");
		l->store_failing = false;
	} else if (!l->store_failing) {
		char err[300];
		log_error("event=auth_bans_read result=failed error=%s",
			  log_safe(err, sizeof(err), job->read_error, (unsigned)strlen(job->read_error)));
		l->store_failing = true;
	}
	free(job->writes);
	free(job->rows);
	free(job);
	if (l->n_unwritten > 0) /* bans made while the job ran */
		login_store_kick(l);
}

/* Starts a store job unless one is running (the next tick, or its end, starts the next one). Not
 * once the server stops: the workers may be gone; login_free writes what is left. */
static void login_store_kick(struct login_state *l)
{
	if (l->storing || l->srv->stopping)
		return;
	struct login_store_job *job = calloc(1, sizeof(*job));
	if (job == NULL)
		return;
	job->l = l;
	job->refresh = l->refresh_next++;
	job->now = time(NULL);
	job->writes = l->unwritten;
	job->n_writes = l->n_unwritten;
	l->unwritten = NULL;
	l->n_unwritten = l->cap_unwritten = 0;
	l->storing = true;
	worker_pool_submit(l->srv->workers, login_store_work, login_store_done, job);
}

static void login_tick(evutil_socket_t fd, short what, void *arg)
{
	struct login_state *l = arg;
	iplimit_sweep(l->srv->iplimit, time(NULL), LOGIN_SWEEP_BUCKETS);
	login_store_kick(l);
}

static void login_ban_loaded(const struct login_ban *b, bool expired, void *arg)
{
	(void)b, (void)expired, (void)arg; /* the set was empty: nothing can go */
}

/* The bans in force when the server starts: read before the loop runs, so none slips through. */
static int login_bans_load(struct login_state *l, char *error_r, size_t error_size)
{
	struct users_ban *rows;
	size_t n;
	const char *err;
	time_t now = time(NULL);
	if (users_ban_list(l->store, now, LOGIN_BANS_MAX, &rows, &n, &err) != RESULT_OK) {
		snprintf(error_r, error_size, "cannot read the login bans: %s", err);
		return -1;
	}
	login_bans_sync(l->bans, rows, n, l->refresh_next++, now, login_ban_loaded, NULL);
	free(rows);
	if (n > 0)
		log_info("event=auth_bans_loaded bans=%zu", login_bans_count(l->bans));
	return 0;
}

struct login_state *login_new(struct server *srv, char *error_r, size_t error_size)
{
	struct login_state *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	l->srv = srv;
	l->refresh_next = 1; /* a new ban's seen is 0: never taken for a refresh that found it */
	const char *err = "out of memory";
	if (RAND_bytes(l->key, sizeof(l->key)) != 1) {
		snprintf(error_r, error_size, "no randomness for the login penalty's key");
		login_free(l);
		return NULL;
	}
	l->accounts = login_accounts_new();
	l->bans = login_bans_new();
	if (l->accounts != NULL && l->bans != NULL)
		l->store = users_open(srv->conf->data_dir, &err);
	if (l->store == NULL) {
		snprintf(error_r, error_size, "%s: %s", srv->conf->data_dir, err);
		login_free(l);
		return NULL;
	}
	if (login_bans_load(l, error_r, error_size) != 0) {
		login_free(l);
		return NULL;
	}
	struct timeval every = {LOGIN_BAN_REFRESH_SECONDS, 0};
	l->tick = event_new(srv->base, -1, EV_PERSIST, login_tick, l);
	if (l->tick == NULL || event_add(l->tick, &every) != 0) {
		snprintf(error_r, error_size, "cannot start the login bans' timer");
		login_free(l);
		return NULL;
	}
	return l;
}

/* Bans made while the server stopped, written now that nothing else runs. */
static void login_store_rest(struct login_state *l)
{
	for (size_t i = 0; l->store != NULL && i < l->n_unwritten; i++) {
		const char *err;
		char safe[300];
		if (users_ban_put(l->store, &l->unwritten[i], &err) != RESULT_OK)
			log_error("event=auth_ban_store_failed client=%s error=%s", l->unwritten[i].client,
				  log_safe(safe, sizeof(safe), err, (unsigned)strlen(err)));
	}
	l->n_unwritten = 0;
}

void login_free(struct login_state *l)
{
	if (l == NULL)
		return;
	/* answers that never came: their sessions are gone */
	while (l->waiting != NULL) {
		struct login_job *j = l->waiting;
		login_unlink(j);
		OPENSSL_cleanse(j, sizeof(*j));
		free(j);
	}
	if (l->tick != NULL)
		event_free(l->tick);
	login_store_rest(l);
	users_close(l->store);
	login_accounts_free(l->accounts);
	login_bans_free(l->bans);
	free(l->unwritten);
	OPENSSL_cleanse(l->key, sizeof(l->key));
	free(l);
}

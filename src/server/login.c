/* login.c — password checks off the loop, with failure delays per client address. */
#include "server/login.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailbox/users.h"
#include "net/iplimit.h"
#include "net/listener.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"

struct login_job {
	struct server *srv;
	uint64_t conn_id;
	login_done_fn *done;
	char ip[46];
	char client[NET_CLIENT_KEY_SIZE]; /* what the failures are counted by (net_client_key) */
	char user[256];
	char pass[256];
	char hash[USERS_HASH_MAX];
	bool found;
	bool ok;
};

static void login_work(void *arg)
{
	struct login_job *j = arg;
	bool ok = users_check_password(j->pass, j->hash);
	j->ok = ok && j->found;
	explicit_bzero(j->pass, sizeof(j->pass));
}

static void login_finish(struct login_job *j)
{
	j->done(j->srv, j->conn_id, j->user, j->ok);
	free(j);
}

static void login_delay_over(evutil_socket_t fd, short what, void *arg)
{
	login_finish(arg);
}

static void login_checked(void *arg)
{
	struct login_job *j = arg;
	char user[128];
	log_safe(user, sizeof(user), j->user, (unsigned)strlen(j->user));
	if (j->ok) {
		log_info("session=%llx event=login result=ok user=%s client=%s", (unsigned long long)j->conn_id, user, j->ip);
		login_finish(j);
		return;
	}
	unsigned failures = iplimit_auth_fail(j->srv->iplimit, j->client, time(NULL));
	log_info("session=%llx event=login result=fail user=%s client=%s failures=%u", (unsigned long long)j->conn_id,
		 user, j->ip, failures);
	/* the delay grows with the failures from this client (address, or IPv6 prefix), so guessing is slow */
	unsigned ms = failures > LOGIN_FAIL_DELAY_MAX_MS / LOGIN_FAIL_DELAY_MS ? LOGIN_FAIL_DELAY_MAX_MS
										: failures * LOGIN_FAIL_DELAY_MS;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if (event_base_once(j->srv->base, -1, EV_TIMEOUT, login_delay_over, j, &tv) != 0)
		login_finish(j);
}

void login_check(struct server *srv, uint64_t conn_id, const char *ip, const char *client, const char *user,
		 const char *pass, login_done_fn *done)
{
	struct login_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		done(srv, conn_id, user, false);
		return;
	}
	*j = (struct login_job){.srv = srv, .conn_id = conn_id, .done = done};
	snprintf(j->ip, sizeof(j->ip), "%s", ip);
	snprintf(j->client, sizeof(j->client), "%s", client);
	snprintf(j->user, sizeof(j->user), "%s", user);
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
	struct login_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		done(srv, conn_id, user, false);
		return;
	}
	*j = (struct login_job){.srv = srv, .conn_id = conn_id, .done = done};
	snprintf(j->ip, sizeof(j->ip), "%s", ip);
	snprintf(j->client, sizeof(j->client), "%s", client);
	snprintf(j->user, sizeof(j->user), "%s", user);
	login_checked(j); /* not ok: counted, logged and answered after the delay */
}

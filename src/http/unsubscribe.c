/* unsubscribe.c — RFC 8058 one-click unsubscribe: the List-Unsubscribe URL API mail carries when
 * it asks for one_click_unsubscribe, and the endpoint behind it. POST /unsubscribe/{token} puts the
 * recipient on the sending domain's suppression list (origin "unsubscribe") and records an
 * unsubscribed event on the email, in one transaction. A GET (link scanners follow links) changes
 * nothing: it shows a page whose button POSTs. Tokens are signed (unsubscribe_token.h) with a key
 * kept in DATA_DIR/unsubscribe.key. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "db/db.h"
#include "events/events.h"
#include "http/api.h"
#include "http/session.h"
#include "http/unsubscribe_token.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/date.h"

#define UNSUBSCRIBE_KEY_FILE "unsubscribe.key"

int http_unsubscribe_secret_load(const char *data_dir, unsigned char secret[UNSUBSCRIBE_SECRET_LEN], char *error,
				 size_t error_size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", data_dir, UNSUBSCRIBE_KEY_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* the first start: a new key, readable by the server alone */
		unsigned char fresh[UNSUBSCRIBE_SECRET_LEN];
		if (RAND_bytes(fresh, sizeof(fresh)) != 1) {
			snprintf(error, error_size, "%s: no randomness for a new key", path);
			return -1;
		}
		int w = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w >= 0) {
			bool ok = write(w, fresh, sizeof(fresh)) == (ssize_t)sizeof(fresh) && fsync(w) == 0;
			close(w);
			if (!ok) {
				unlink(path);
				snprintf(error, error_size, "%s: cannot write: %s", path, strerror(errno));
				return -1;
			}
		} else if (errno != EEXIST) {
			snprintf(error, error_size, "%s: cannot create: %s", path, strerror(errno));
			return -1;
		}
		explicit_bzero(fresh, sizeof(fresh));
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, secret, UNSUBSCRIBE_SECRET_LEN);
	close(fd);
	if (n != UNSUBSCRIBE_SECRET_LEN) {
		snprintf(error, error_size, "%s: expected %d octets", path, UNSUBSCRIBE_SECRET_LEN);
		return -1;
	}
	return 0;
}

bool http_unsubscribe_url(const struct http_api *a, const struct conf *c, const struct unsubscribe_target *t, char *out,
			  size_t size)
{
	char token[UNSUBSCRIBE_TOKEN_MAX + 1], base[512];
	if (!unsubscribe_token_make(a->unsubscribe_secret, t, token, sizeof(token)))
		return false;
	http_public_base(c, base, sizeof(base));
	int n = snprintf(out, size, "%s/unsubscribe/%s", base, token);
	return n > 0 && (size_t)n < size;
}

struct unsub_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	struct unsubscribe_target t;
	bool ok;
};

static void unsub_work(void *arg)
{
	struct unsub_job *j = arg;
	pthread_mutex_lock(&j->api->reader_mu);
	struct db *db = queue_db(j->api->reader);
	sqlite3 *sq = db_sqlite(db);
	int rc = sqlite3_exec(sq, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = events_unsubscribed(db, j->t.email_id, j->t.domain, j->t.addr, date_now_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(sq))
		sqlite3_exec(sq, "ROLLBACK", NULL, NULL, NULL);
	j->ok = rc == SQLITE_OK;
	pthread_mutex_unlock(&j->api->reader_mu);
}

static const char done_page[] =
	"<!doctype html><meta charset=utf-8><title>Unsubscribed</title><p>You have been unsubscribed.</p>";

static void unsub_done(void *arg)
{
	struct unsub_job *j = arg;
	struct http_session *s = http_session_find(j->srv, j->session_id);
	if (j->ok)
		log_info("event=unsubscribed email_id=%s domain=%s", j->t.email_id, j->t.domain);
	if (s != NULL) {
		if (j->ok)
			http_respond_body(s, 200, "text/html; charset=utf-8", done_page, sizeof(done_page) - 1, NULL);
		else
			http_respond_error(s, 503, "internal_server_error", "The unsubscribe could not be stored; try again.");
	}
	free(j);
}

/* The token of the request, checked; false when the answer (403) has been sent. */
static bool target_of(struct http_call *c, struct unsubscribe_target *t)
{
	const char *why;
	if (!unsubscribe_token_check(c->api->unsubscribe_secret, c->param, strlen(c->param), t, &why)) {
		log_info("session=%llx event=unsubscribe_refused reason=%s", (unsigned long long)c->s->conn.id, why);
		http_respond_error(c->s, 403, "invalid_parameter", "This unsubscribe link is not valid.");
		return false;
	}
	return true;
}

void http_unsubscribe_post(struct http_call *c)
{
	struct unsubscribe_target t;
	if (!target_of(c, &t))
		return;
	struct unsub_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return;
	}
	j->srv = c->s->srv;
	j->api = c->api;
	j->session_id = c->s->conn.id;
	j->t = t;
	worker_pool_submit(c->s->srv->workers, unsub_work, unsub_done, j);
}

void http_unsubscribe_get(struct http_call *c)
{
	struct unsubscribe_target t;
	if (!target_of(c, &t))
		return;
	/* RFC 8058 §3.2: the POST does it; a GET from a link checker must not */
	static const char page[] = "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>"
				   "<form method=post><input type=hidden name=List-Unsubscribe value=One-Click>"
				   "<p><button type=submit>Unsubscribe</button></p></form>";
	http_respond_body(c->s, 200, "text/html; charset=utf-8", page, sizeof(page) - 1, NULL);
}

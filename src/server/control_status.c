/* control_status.c — what `status` tells of the server's health beside its activity (control_cmd.c
 * has the rest): the deliveries' outcomes of the last minute and the last hour and the TLS
 * certificates served with their days to expiry, read on the loop thread; the free space in
 * data_dir and the active DKIM keys of the local domains, read on a worker thread (statvfs(2) and
 * the key files may wait for the file system, the domains for the database).
 *
 * The outcomes come from the metrics' rings of time slots (util/metrics.h), fed where each outcome
 * is recorded in the queue, rather than from the events of queue.db (events/stats.h): those are
 * written for tracked mail only (sent through the API), so mail that came in over SMTP, local or
 * relayed, would be missing, and each status would cost a scan of the events. The rings are of
 * this node, in a fixed few KiB, and agree with /metrics' mailwerk_deliveries_total.
 *
 * The DKIM keys are listed here and their DNS records looked up by the CLI, once it has the answer
 * (cli_status_health.c, with the check `dkim list` makes): a lookup may take seconds, and the
 * control socket answers one request per connection at a time within its limits, while the CLI
 * may wait as long as the operator does. The worker lists them, not the CLI, because it knows the
 * local domains without opening mailwerk.db from a command that only reports; it reads the
 * public halves only (it holds no private key, keys/dkim_store.h). */
#include "server/control_int.h"

#include "acme/acme.h"
#include "report/tlsrpt_scheduler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dkim_key.h"
#include "conf/conf.h"
#include "keys/dkim_store.h"
#include "mailbox/users.h"
#include "net/tls.h"
#include "server/server.h"
#include "util/diskspace.h"
#include "util/metrics.h"
#include "util/utf8.h"

/* s[0..len) as a JSON string, its octets that are not well-formed UTF-8 (RFC 3629) as '?': a path
 * or a certificate's name may hold any octet, and JSON strings cannot. NULL when out of memory. */
static json_t *control_text_json(const char *s, size_t len)
{
	if (utf8_valid((const unsigned char *)s, len))
		return json_stringn(s, len);
	char *t = malloc(len + 1);
	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len((const unsigned char *)s + i, len - i);
		if (n == 0)
			t[i++] = '?';
		for (; n > 0; n--, i++)
			t[i] = s[i];
	}
	json_t *v = json_stringn(t, len);
	free(t);
	return v;
}

static json_t *control_str_json(const char *s)
{
	return control_text_json(s, strlen(s));
}

/* {"local": {"delivered": N, "deferred": N, "failed": N}, "remote": {...}} */
static json_t *control_outcomes_json(const uint64_t n[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT])
{
	json_t *o = json_object();
	for (int r = 0; o != NULL && r < METRICS_ROUTE_COUNT; r++) {
		json_t *by = json_object();
		for (int k = 0; by != NULL && k < METRICS_OUTCOME_COUNT; k++)
			json_object_set_new(by, metrics_outcome_str(k), json_integer((json_int_t)n[r][k]));
		if (by == NULL || json_object_set_new(o, metrics_route_str(r), by) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* Recipients delivered, deferred (a temporary failure, tried again) and failed (for good: bounced)
 * in the last minute and the last hour, by route. */
static json_t *control_deliveries_json(const struct server *srv)
{
	struct metrics_recent_counts c;
	metrics_recent_read(srv->metrics, &c);
	return json_pack("{s:o, s:o}", "last_minute", control_outcomes_json(c.minute), "last_hour",
			 control_outcomes_json(c.hour));
}

/* "a.example,b.example" as ["a.example", "b.example"] */
static json_t *control_names_json(const char *names)
{
	json_t *a = json_array();
	for (const char *p = names; a != NULL && *p != '\0';) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (json_array_append_new(a, control_text_json(p, len)) != 0) {
			json_decref(a);
			return NULL;
		}
		p += len + (comma != NULL);
	}
	return a;
}

/* One certificate the listeners present: where it was configured, what it names, its validity
 * (RFC 5280 §4.1.2.5) and the whole days until notAfter, negative once past it. */
static json_t *control_cert_json(SSL_CTX *ctx, const char *config, const char *file, int64_t now)
{
	struct tls_cert_info ci;
	if (!tls_ctx_cert_info(ctx, &ci))
		return json_pack("{s:s, s:o, s:s}", "config", config, "file", control_str_json(file), "error",
				 "the certificate's dates cannot be read");
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:b}", "config", config, "file", control_str_json(file),
			 "subject", control_str_json(ci.subject), "names", control_names_json(ci.names), "issuer",
			 control_str_json(ci.issuer), "not_before",
			 control_json_time(ci.not_before), "not_after", control_json_time(ci.not_after), "days_left",
			 (json_int_t)tls_cert_days_left(ci.not_after, now), "expired", ci.not_after < now);
}

/* The certificates served now, read from the loop's TLS context (a reload replaces it) rather than
 * from the files, so that one renewed on disk but not yet reloaded shows as what clients still get.
 * Every listener, STARTTLS or implicit TLS, serves the one of [tls] cert; a reload that succeeds
 * replaces the context and the configuration naming its file together. */
static json_t *control_certs_json(const struct server *srv)
{
	json_t *a = json_array();
	/* one from ACME, once installed, is served in place of [tls] cert (acme/acme.h) */
	char acme_file[4200];
	int64_t acme_not_after = 0, next;
	unsigned failures;
	const char *acme_error;
	if (srv->acme != NULL)
		acme_state(srv->acme, &acme_not_after, &next, &failures, &acme_error);
	snprintf(acme_file, sizeof(acme_file), "%s/acme/cert.pem", srv->conf->data_dir);
	bool acme = acme_not_after != 0;
	if (a != NULL && srv->tls != NULL &&
	    json_array_append_new(a, control_cert_json(srv->tls, acme ? "[acme]" : "[tls] cert",
						       acme ? acme_file : srv->conf->tls_cert, (int64_t)time(NULL))) != 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* The ACME client's state: null when [acme] is off. */
static json_t *control_acme_json(const struct server *srv)
{
	if (srv->acme == NULL)
		return json_null();
	int64_t not_after, next;
	unsigned failures;
	const char *error;
	acme_state(srv->acme, &not_after, &next, &failures, &error);
	return json_pack("{s:s, s:o, s:o, s:I, s:o}", "directory", srv->conf->acme_directory, "not_after",
			 control_json_time(not_after), "next_attempt", control_json_time(next), "failures",
			 (json_int_t)failures, "last_error", error[0] != '\0' ? json_string(error) : json_null());
}

/* TLS reports (RFC 8460): null when [tlsrpt] reports is off. */
static json_t *control_tlsrpt_json(const struct server *srv)
{
	if (srv->tlsrpt == NULL || !srv->conf->tlsrpt_reports)
		return json_null();
	struct tlsrpt_scheduler_state st;
	tlsrpt_scheduler_state(srv->tlsrpt, &st);
	return json_pack("{s:o, s:o, s:o, s:o}", "last_sent", control_json_time(st.last_sent), "last_sent_domain",
			 st.last_sent != 0 ? json_string(st.last_sent_domain) : json_null(), "last_failed",
			 control_json_time(st.last_failed),
			 "last_error", st.last_error[0] != '\0' ? json_string(st.last_error) : json_null());
}

int control_status_loop_add(struct control_job *j)
{
	const struct server *srv = j->ctl->srv;
	j->conf = conf_ref(srv->conf); /* for the worker thread: a reload may replace srv->conf meanwhile */
	/* json_object_set_new takes a NULL (out of memory) as a failure, and frees what it is given */
	if (json_object_set_new(j->status, "deliveries", control_deliveries_json(srv)) != 0 ||
	    json_object_set_new(j->status, "certificates", control_certs_json(srv)) != 0 ||
	    json_object_set_new(j->status, "acme", control_acme_json(srv)) != 0 ||
	    json_object_set_new(j->status, "tlsrpt", control_tlsrpt_json(srv)) != 0)
		return -1;
	return 0;
}

/* ---- on a worker thread ---- */

/* data_dir's file system: the octets the server may still write (f_bavail, what an unprivileged
 * process may use, as [server] min_free_space's check counts them) and its size, and whether it is
 * below min_free_space, where new mail is refused (smtp/cmd.c, http/emails_send.c). */
static json_t *control_disk_json(const struct conf *c)
{
	uint64_t avail, total;
	if (!diskspace_usage(c->data_dir, &avail, &total))
		return json_pack("{s:o, s:n, s:n, s:I, s:n, s:s}", "path", control_str_json(c->data_dir), "free_bytes",
				 "total_bytes",
				 "min_free_space", (json_int_t)c->min_free_space, "below_min_free_space", "error",
				 strerror(errno));
	return json_pack("{s:o, s:I, s:I, s:I, s:b}", "path", control_str_json(c->data_dir), "free_bytes", (json_int_t)avail,
			 "total_bytes",
			 (json_int_t)total, "min_free_space", (json_int_t)c->min_free_space, "below_min_free_space",
			 c->min_free_space > 0 && avail < c->min_free_space);
}

/* The DKIM part of the answer is kept well inside one record (IPC_PAYLOAD_MAX) with the rest: at
 * most this many octets of keys (some 250 of usual names), of at most this many domains. */
#define CONTROL_DKIM_OCTETS (24 * 1024)
#define CONTROL_DKIM_DOMAINS_MAX 4096

struct control_dkim_list {
	json_t *keys;
	json_t *domains;
	size_t octets;
	bool full; /* a key did not fit: the rest are left out */
	bool more; /* a key or a domain left out */
	bool oom;
};

static void control_dkim_domain(const char *name, void *arg)
{
	struct control_dkim_list *l = arg;
	if (json_array_size(l->domains) >= CONTROL_DKIM_DOMAINS_MAX)
		l->more = true;
	else if (json_array_append_new(l->domains, json_string(name)) != 0)
		l->oom = true;
}

/* dkim_store_list's callback: the active keys (those that sign), as long as they fit. */
static void control_dkim_key(const struct dkim_store_key *k, void *arg)
{
	struct control_dkim_list *l = arg;
	if (!k->active || l->oom)
		return;
	size_t octets = strlen(k->domain) + strlen(k->selector) + 64; /* with the JSON around them */
	if (l->full || l->octets + octets > CONTROL_DKIM_OCTETS) {
		l->full = l->more = true;
		return;
	}
	l->octets += octets;
	if (json_array_append_new(l->keys, json_pack("{s:s, s:s, s:s, s:I}", "domain", k->domain, "selector",
						     k->selector, "algorithm", dkim_key_type_str(k->type), "bits",
						     (json_int_t)k->bits)) != 0)
		l->oom = true;
}

/* {"keys": [{"domain", "selector", "algorithm", "bits"}...], "more": false}, with "error" when the
 * domains cannot be listed; NULL when out of memory. Keys that do not load are left out here:
 * `mailwerk dkim list` names them. */
static json_t *control_dkim_json(struct control_job *j)
{
	struct control_dkim_list l = {.keys = json_array(), .domains = json_array()};
	const char *err = NULL;
	char e[256];
	if (l.keys == NULL || l.domains == NULL)
		l.oom = true;
	else if (users_domain_list(j->ctl->srv->users, control_dkim_domain, &l, &err) != RESULT_OK && err == NULL)
		err = "database error";
	size_t i;
	json_t *d;
	json_array_foreach(l.domains, i, d) {
		if (l.oom || l.full)
			break;
		dkim_store_list(j->conf->data_dir, json_string_value(d), control_dkim_key, NULL, &l, e, sizeof(e));
	}
	json_decref(l.domains);
	json_t *o = l.oom ? NULL : json_pack("{s:o, s:b}", "keys", l.keys, "more", l.more);
	if (l.oom)
		json_decref(l.keys);
	if (o != NULL && err != NULL &&
	    json_object_set_new(o, "error", json_sprintf("cannot list the local domains: %s", err)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int control_status_work_add(struct control_job *j)
{
	if (json_object_set_new(j->status, "disk", control_disk_json(j->conf)) != 0 ||
	    json_object_set_new(j->status, "dkim", control_dkim_json(j)) != 0)
		return -1;
	return 0;
}

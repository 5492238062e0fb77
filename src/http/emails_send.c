/* emails_send.c — POST /emails and POST /emails/batch: a request is checked, composed and
 * DKIM-signed on a worker thread (email_req.c, compose.c, keys/), checked against our domains
 * and the key's limits on the loop, and stored in one queue transaction together with its
 * record, its first event and its Idempotency-Key; the answer {"id"} goes out only after that
 * transaction has committed with fsync, as a 250 does for SMTP.
 *
 * A request with attachments given by URL (allowed by [api] fetch_attachment_urls) takes one more
 * round: the first worker job only parses (send_work), the loop checks the From domains and
 * fetches the attachments (send_fetch, attachments_fetch.c), and a second job composes, signs and
 * looks up suppressions (send_build_work) before send_done as for any other. */
#include <event2/buffer.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "events/events.h"
#include "events/feedback.h"
#include "events/suppressions.h"
#include "http/api.h"
#include "http/attachments_fetch.h"
#include "http/compose.h"
#include "events/record.h"
#include "http/email_req.h"
#include "http/emails_raw.h"
#include "http/json.h"
#include "http/session.h"
#include "http/unsubscribe_token.h"
#include "inbound/inbound_store.h"
#include "server/signer_client.h"
#include "http/domains_verify.h"
#include "mailbox/users.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/date.h"
#include "util/diskspace.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/worker.h"

/* Resend: at most 100 emails in a batch. */
#define EMAILS_BATCH_MAX 100
/* Resend keeps an Idempotency-Key for 24 hours. */
#define IDEMPOTENCY_MAX_AGE_MS ((int64_t)24 * 3600 * 1000)

/* One message of a request, as the worker leaves it. */
struct send_item {
	struct email_req *req;
	struct queue_msg *msg;
	struct dkim_draft *draft; /* its hashes, until the signer process has signed them */
	char *received;           /* our trace field, put on top of the signatures once they come */
	bool signed_ok;       /* DKIM-Signature fields are on it */
	char domain[256];     /* the From domain */
	bool fetch;           /* it has attachments given by URL, not fetched yet */
	unsigned status;      /* 0, or the error that refuses this one */
	const char *err_name;
	char err[512];
};

struct send_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	struct conf *conf;
	struct api_key key;
	char client_ip[46];
	bool tls;
	bool batch, permissive;
	bool raw; /* POST /emails/raw */
	char *body; /* the request's, taken from the session */
	size_t body_len;
	char idem_key[HTTP_IDEMPOTENCY_KEY_MAX + 1];
	bool idem_held;  /* in the in-flight set */
	unsigned char body_hash[32];
	int64_t now_ms;
	/* the worker's answer */
	unsigned status; /* 0: go on; else the whole request is answered with this */
	const char *err_name;
	char err[512];
	char *replay;    /* a stored answer to send again (idempotency) */
	struct send_item *items;
	size_t n;
	bool fetch_pending;     /* some item has attachments to fetch: nothing is built yet */
	size_t signing;         /* items whose signatures are still to come */
	uint64_t fetch_charged; /* octets of srv->memory the fetched attachments hold */
};

static void send_job_free(struct send_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		email_req_free(j->items[i].req);
		queue_msg_free(j->items[i].msg);
		dkim_draft_free(j->items[i].draft);
		free(j->items[i].received);
	}
	free(j->items);
	free(j->body);
	free(j->replay);
	budget_give(&j->srv->memory, j->fetch_charged);
	conf_free(j->conf);
	free(j);
}

static void job_fail(struct send_job *j, unsigned status, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void job_fail(struct send_job *j, unsigned status, const char *name, const char *fmt, ...)
{
	va_list ap;
	j->status = status;
	j->err_name = name;
	va_start(ap, fmt);
	vsnprintf(j->err, sizeof(j->err), fmt, ap);
	va_end(ap);
}

static void item_fail(struct send_item *it, unsigned status, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void item_fail(struct send_item *it, unsigned status, const char *name, const char *fmt, ...)
{
	va_list ap;
	it->status = status;
	it->err_name = name;
	va_start(ap, fmt);
	vsnprintf(it->err, sizeof(it->err), fmt, ap);
	va_end(ap);
}

/* ---- on the worker: check, compose, sign ---- */

static char *mailbox_text(const struct email_mailbox *m)
{
	char *s = NULL;
	if (m->name != NULL && m->name[0] != '\0') {
		if (asprintf(&s, "%s <%s>", m->name, m->addr.text) < 0)
			s = NULL;
	} else {
		s = strdup(m->addr.text);
	}
	return s;
}

/* The JSON array the API shows for a list of mailboxes; NULL (JSON null) when there are none. */
static char *mailboxes_json(const struct email_mailbox *m, size_t n)
{
	if (n == 0)
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < n; i++) {
		char *t = mailbox_text(&m[i]);
		json_array_append_new(a, t != NULL ? json_string(t) : json_null());
		free(t);
	}
	char *s = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

static char *tags_json(const struct email_req *r)
{
	if (r->tag_count == 0)
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < r->tag_count; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "name", r->tags[i].name, "value", r->tags[i].value));
	char *s = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

static bool rcpt_add(struct queue_msg *m, const char *addr)
{
	for (size_t i = 0; i < m->rcpt_count; i++)
		if (strcasecmp(m->rcpts[i], addr) == 0)
			return true; /* one copy per address, however often it is named */
	char **g = realloc(m->rcpts, (m->rcpt_count + 1) * sizeof(*g));
	if (g == NULL)
		return false;
	m->rcpts = g;
	if ((m->rcpts[m->rcpt_count] = strdup(addr)) == NULL)
		return false;
	m->rcpt_count++;
	return true;
}

/* The record (events.h) of a request. */
static struct email_record *record_new(const struct send_job *j, const struct email_req *r, const char *id,
				       const char *message_id)
{
	struct email_record *rec = calloc(1, sizeof(*rec));
	if (rec == NULL)
		return NULL;
	snprintf(rec->id, sizeof(rec->id), "%s", id);
	rec->api_key_id = strdup(j->key.id);
	rec->from = mailbox_text(&r->from);
	rec->subject = strdup(r->subject != NULL ? r->subject : "");
	rec->to_json = mailboxes_json(r->to, r->to_count);
	rec->cc_json = mailboxes_json(r->cc, r->cc_count);
	rec->bcc_json = mailboxes_json(r->bcc, r->bcc_count);
	rec->reply_to_json = mailboxes_json(r->reply_to, r->reply_to_count);
	rec->tags_json = tags_json(r);
	rec->html = r->html != NULL ? strdup(r->html) : NULL;
	rec->text = r->text != NULL ? strdup(r->text) : NULL;
	rec->message_id = message_id != NULL ? strdup(message_id) : NULL;
	rec->created_at = j->now_ms;
	rec->scheduled_at = r->scheduled_at;
	if (rec->api_key_id == NULL || rec->from == NULL || rec->subject == NULL || rec->to_json == NULL) {
		email_record_free(rec);
		return NULL;
	}
	return rec;
}

/* Our trace field on top (RFC 5321 §4.4 asks it of SMTP; the HTTP hop is recorded the same way). */
static char *received_field(const struct send_job *j, const char *queue_id)
{
	char date[64], *s = NULL;
	date_rfc5322_format((time_t)(j->now_ms / 1000), date, sizeof(date));
	if (asprintf(&s, "Received: from [%s]\r\n\tby %s (mailwerk) with %s id %s;\r\n\t%s\r\n", j->client_ip,
		     j->conf->hostname, j->tls ? "HTTPS" : "HTTP", queue_id, date) < 0)
		return NULL;
	return s;
}

static void item_finish(struct send_job *j, struct send_item *it, const char *email_id, const char *from_addr,
			int64_t not_before);

/* A reply threads (RFC 5322 §3.6.4): In-Reply-To is the parent's msg-id, References the parent's
 * References (or, lacking them, its In-Reply-To) followed by the parent's msg-id. A parent given by
 * a received email's id is read from the inbound store; one given by msg-id alone is the start of
 * the references unless the request gave them. false when the item has been refused. */
static bool item_thread(struct send_job *j, struct send_item *it)
{
	struct email_req *r = it->req;
	if (r->in_reply_to == NULL)
		return true;
	char *parent_refs = NULL;
	if (email_req_is_received_id(r->in_reply_to)) {
		struct inbound_email e;
		char err[256];
		int got = inbound_store_get(j->api->inbound, r->in_reply_to, &e, err, sizeof(err));
		if (got != 1) {
			item_fail(it, got == 0 ? 422 : 500, got == 0 ? "validation_error" : "internal_server_error", "%s",
				  got == 0 ? "The `in_reply_to` field names no received email." : "The received emails cannot be read.");
			return false;
		}
		json_t *summary = json_loads(e.summary_json, 0, NULL);
		inbound_email_clear(&e);
		const char *mid = json_string_value(json_object_get(summary, "message_id"));
		const char *refs = json_string_value(json_object_get(summary, "references"));
		const char *irt = json_string_value(json_object_get(summary, "in_reply_to"));
		char *copy = mid != NULL && mid[0] == '<' ? strdup(mid) : NULL;
		parent_refs = refs != NULL ? strdup(refs) : irt != NULL ? strdup(irt) : NULL;
		json_decref(summary);
		if (copy == NULL) {
			free(parent_refs);
			item_fail(it, 422, "validation_error", "%s", "The received email named by `in_reply_to` has no Message-ID.");
			return false;
		}
		free(r->in_reply_to);
		r->in_reply_to = copy;
	}
	if (r->references == NULL && email_req_header_find(r, "References") == NULL) {
		size_t n = (parent_refs != NULL ? strlen(parent_refs) + 1 : 0) + strlen(r->in_reply_to) + 1;
		if ((r->references = malloc(n)) != NULL)
			snprintf(r->references, n, "%s%s%s", parent_refs != NULL ? parent_refs : "",
				 parent_refs != NULL ? " " : "", r->in_reply_to);
	}
	free(parent_refs);
	if (r->references == NULL && email_req_header_find(r, "References") == NULL) {
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		return false;
	}
	return true;
}

static void item_build(struct send_job *j, struct send_item *it)
{
	struct email_req *r = it->req;
	if (!item_thread(j, it))
		return;
	snprintf(it->domain, sizeof(it->domain), "%s", addr_domain(&r->from.addr));
	struct queue_msg *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		return;
	}
	it->msg = m;
	queue_id_new(m->id);
	struct email_record *rec = NULL;
	char *message_id = NULL, err[256];
	struct compose_opts o = {
		.hostname = j->conf->hostname,
		.date = j->now_ms / 1000,
	};
	/* the Message-ID carries the email's id: a complaint that returns only the headers names it */
	char email_id[EMAIL_ID_LEN + 1];
	email_id_new(email_id);
	o.message_id_local = email_id;
	/* RFC 8058: List-Unsubscribe with our signed URL and List-Unsubscribe-Post, both signed by DKIM
	 * below with the rest of the header (the signer covers them: RFC 8058 §4 requires it) */
	char unsub_url[1400];
	if (r->one_click_unsubscribe) {
		const struct email_mailbox *only = r->to_count ? &r->to[0] : r->cc_count ? &r->cc[0] : &r->bcc[0];
		struct unsubscribe_target t;
		snprintf(t.email_id, sizeof(t.email_id), "%s", email_id);
		snprintf(t.domain, sizeof(t.domain), "%s", it->domain);
		snprintf(t.addr, sizeof(t.addr), "%s", only->addr.text);
		if (!http_unsubscribe_url(j->api, j->conf, &t, unsub_url, sizeof(unsub_url))) {
			item_fail(it, 422, "validation_error", "%s", "The unsubscribe link for this recipient is too long.");
			return;
		}
		o.list_unsubscribe_url = unsub_url;
	}
	size_t len;
	char *data = compose_message(r, &o, &len, &message_id, err, sizeof(err));
	if (data == NULL) {
		item_fail(it, 422, "validation_error", "The message cannot be composed: %s", err);
		return;
	}
	rec = record_new(j, r, email_id, message_id);
	free(message_id);
	m->data = data;
	m->size = len;
	m->track = rec;
	bool ok = rec != NULL;
	for (size_t i = 0; ok && i < r->to_count; i++)
		ok = rcpt_add(m, r->to[i].addr.text);
	for (size_t i = 0; ok && i < r->cc_count; i++)
		ok = rcpt_add(m, r->cc[i].addr.text);
	for (size_t i = 0; ok && i < r->bcc_count; i++)
		ok = rcpt_add(m, r->bcc[i].addr.text);
	if (!ok) {
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		return;
	}
	item_finish(j, it, email_id, r->from.addr.text, r->scheduled_at);
}

/* What every API message gets, composed or raw: the VERP return path, our trace field, the DKIM
 * signature of its From domain. */
static void item_finish(struct send_job *j, struct send_item *it, const char *email_id, const char *from_addr,
			int64_t not_before)
{
	struct queue_msg *m = it->msg;
	char *received = received_field(j, m->id);
	/* VERP: a bounce that comes back later, to this address, names its email (feedback.h) */
	char return_path[ADDR_TEXT_MAX + 1];
	if (feedback_return_path(email_id, j->conf->api_return_path_label, it->domain, return_path, sizeof(return_path)))
		m->sender = strdup(return_path);
	else
		m->sender = strdup(from_addr); /* a domain too long for it: bounces are then lost */
	m->client_ip = strdup(j->client_ip);
	m->arrival = j->now_ms / 1000;
	m->not_before = not_before;
	m->no_dsn = true; /* the application follows the events; a DSN would go to the From address */
	if (received == NULL || m->sender == NULL || m->client_ip == NULL) {
		free(received);
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		return;
	}
	/* RFC 6376 §5: signed once, as queued, with the keys of the From domain (RFC 9989 §4.4); here
	 * the hashes, on the loop the signature (send_sign) */
	if (j->conf->dkim_sign) {
		const char *err;
		it->draft = signer_draft_new(j->conf, it->domain, m->data, m->size, (time_t)m->arrival, NULL, &err);
		if (it->draft == NULL)
			log_warn("queue_id=%s event=dkim_sign_failed domain=%s error=\"%s\"", m->id, it->domain, err);
	}
	if (it->draft != NULL) {
		it->received = received; /* above the signatures (item_signed) */
		return;
	}
	if (!queue_msg_prepend(m, received, strlen(received)))
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
	free(received);
}

/* Recipients on the sending domain's suppression list are not attempted (Resend's behaviour): they
 * leave the queue's recipients and get a suppressed event with the entry's origin instead. */
static void item_suppress(struct send_job *j, struct send_item *it)
{
	struct queue_msg *m = it->msg;
	struct email_record *rec = m->track;
	size_t kept = 0;
	pthread_mutex_lock(&j->api->reader_mu);
	for (size_t i = 0; i < m->rcpt_count; i++) {
		struct suppression s;
		int found = suppression_find(queue_db(j->api->reader), it->domain, m->rcpts[i], &s);
		struct email_suppressed *g = found == 1 ? realloc(rec->suppressed, (rec->suppressed_count + 1) * sizeof(*g))
							: NULL;
		if (g == NULL) {
			/* not on the list (or it cannot be read: sending is then the safer mistake) */
			m->rcpts[kept++] = m->rcpts[i];
			continue;
		}
		rec->suppressed = g;
		struct email_suppressed *x = &rec->suppressed[rec->suppressed_count++];
		char when[40];
		date_rfc3339_ms_format(s.created_at, when, sizeof(when));
		x->addr = m->rcpts[i];
		x->type = strdup(suppression_origin_str(s.origin));
		if (asprintf(&x->message, "The address is on the suppression list of %s (%s, since %s).",
			     s.domain[0] != '\0' ? s.domain : "every domain", suppression_origin_str(s.origin), when) < 0)
			x->message = NULL;
		if (x->type == NULL || x->message == NULL)
			item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
	}
	pthread_mutex_unlock(&j->api->reader_mu);
	m->rcpt_count = kept;
}

/* 1: an earlier request with this key answered (j->replay set); 0: none; -1: refused. */
static int idempotency_check(struct send_job *j)
{
	unsigned char hash[32];
	char *response = NULL;
	pthread_mutex_lock(&j->api->reader_mu);
	int found = events_idempotency_find(queue_db(j->api->reader), j->key.id, j->idem_key, j->now_ms,
					    IDEMPOTENCY_MAX_AGE_MS, hash, &response);
	pthread_mutex_unlock(&j->api->reader_mu);
	if (found < 0) {
		job_fail(j, 500, "internal_server_error", "%s", "The idempotency record cannot be read.");
		return -1;
	}
	if (found == 0)
		return 0;
	if (memcmp(hash, j->body_hash, sizeof(hash)) != 0) {
		free(response);
		job_fail(j, 409, "invalid_idempotent_request", "%s",
			 "This Idempotency-Key was already used with a different request body in the last 24 hours.");
		return -1;
	}
	j->replay = response;
	return 1;
}

/* POST /emails/raw: the envelope from to/cc/bcc, the message as given (checked, completed). */
static void item_build_raw(struct send_job *j, struct send_item *it, const json_t *doc)
{
	const json_t *raw = json_object_get(doc, "raw");
	if (!json_is_object(doc) || !json_is_string(raw)) {
		item_fail(it, 422, "missing_required_field", "%s", "Missing `raw` field: the RFC 5322 message, as a string.");
		return;
	}
	if (json_string_length(raw) > j->conf->max_message_size) {
		item_fail(it, 422, "validation_error", "The `raw` message is over %llu octets.",
			  (unsigned long long)j->conf->max_message_size);
		return;
	}
	struct queue_msg *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		return;
	}
	it->msg = m;
	queue_id_new(m->id);
	static const char *const lists[] = {"to", "cc", "bcc"};
	for (size_t l = 0; l < 3 && it->status == 0; l++) {
		const json_t *v = json_object_get(doc, lists[l]);
		if (v == NULL || json_is_null(v))
			continue;
		size_t n = json_is_array(v) ? json_array_size(v) : 1;
		for (size_t i = 0; i < n && it->status == 0; i++) {
			const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
			struct email_mailbox mb;
			const char *why;
			if (!json_is_string(e) || !email_mailbox_parse(json_string_value(e), &mb, &why)) {
				item_fail(it, 422, "validation_error", "Invalid `%s` field: an email address or an array of them.",
					  lists[l]);
				break;
			}
			free(mb.name);
			if (!rcpt_add(m, mb.addr.text))
				item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		}
	}
	if (it->status != 0)
		return;
	if (m->rcpt_count == 0 || m->rcpt_count > EMAIL_REQ_MAX_RCPTS) {
		item_fail(it, 422, m->rcpt_count == 0 ? "missing_required_field" : "validation_error",
			  "The envelope needs 1 to %d recipients in `to`, `cc` and `bcc` together.", EMAIL_REQ_MAX_RCPTS);
		return;
	}
	int64_t at = 0;
	const json_t *sched = json_object_get(doc, "scheduled_at");
	if (sched != NULL && !json_is_null(sched) &&
	    (!json_is_string(sched) || !email_req_parse_time(json_string_value(sched), &at) || at < j->now_ms / 1000 - 60)) {
		item_fail(it, 422, "validation_error", "%s",
			  "The `scheduled_at` field must be an ISO 8601 date-time with an offset, not in the past.");
		return;
	}
	char email_id[EMAIL_ID_LEN + 1], err[256];
	email_id_new(email_id);
	m->data = emails_raw_message(json_string_value(raw), json_string_length(raw), j->conf->hostname, email_id,
				     j->now_ms / 1000, it->domain, &m->size, err, sizeof(err));
	if (m->data == NULL) {
		item_fail(it, 422, "validation_error", "%s", err);
		return;
	}
	if ((m->track = email_record_from_message(m)) == NULL) {
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		return;
	}
	struct email_record *rec = m->track;
	snprintf(rec->id, sizeof(rec->id), "%s", email_id);
	rec->created_at = j->now_ms;
	rec->scheduled_at = at;
	if ((rec->api_key_id = strdup(j->key.id)) == NULL) {
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
		return;
	}
	item_finish(j, it, email_id, m->rcpts[0], at);
}

/* Composes, signs and checks the suppressions of every item not refused yet. */
static void items_build(struct send_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct send_item *it = &j->items[i];
		if (it->status == 0)
			item_build(j, it);
		if (it->status == 0)
			item_suppress(j, it);
	}
}

/* An attachment given by URL whose type neither the request nor the name tells (only
 * application/octet-stream) is left without one: it gets the answer's Content-Type
 * (attachments_fetch.h). */
static void item_type_from_answer(struct email_req *r, const json_t *o)
{
	const json_t *atts = json_object_get(o, "attachments");
	for (size_t k = 0; k < r->attachment_count; k++) {
		struct email_attachment *a = &r->attachments[k];
		const json_t *t = json_object_get(json_array_get(atts, k), "content_type");
		if (a->path == NULL || a->content != NULL || (t != NULL && !json_is_null(t) && !json_is_false(t)) ||
		    a->content_type == NULL || strcmp(a->content_type, "application/octet-stream") != 0)
			continue;
		free(a->content_type);
		a->content_type = NULL;
	}
}

static void send_work(void *arg)
{
	struct send_job *j = arg;
	SHA256((const unsigned char *)j->body, j->body_len, j->body_hash);
	if (j->idem_key[0] != '\0' && idempotency_check(j) != 0)
		return;
	char err[256];
	json_t *doc = http_json_load(j->body, j->body_len, HTTP_JSON_MAX_DEPTH, err, sizeof(err));
	if (doc == NULL) {
		job_fail(j, 400, "validation_error", "%s", err);
		return;
	}
	size_t n = j->batch ? (json_is_array(doc) ? json_array_size(doc) : 0) : 1;
	if (j->raw) {
		if ((j->items = calloc(1, sizeof(*j->items))) == NULL) {
			job_fail(j, 500, "internal_server_error", "%s", "Out of memory.");
		} else {
			j->n = 1;
			item_build_raw(j, &j->items[0], doc);
			if (j->items[0].status == 0)
				item_suppress(j, &j->items[0]);
		}
		json_decref(doc);
		return;
	}
	if (j->batch && !json_is_array(doc)) {
		job_fail(j, 422, "validation_error", "%s", "The request body must be an array of emails.");
	} else if (j->batch && (n == 0 || n > EMAILS_BATCH_MAX)) {
		job_fail(j, 422, "validation_error", "%s", "A batch holds 1 to 100 emails.");
	} else if ((j->items = calloc(n, sizeof(*j->items))) == NULL) {
		job_fail(j, 500, "internal_server_error", "%s", "Out of memory.");
	} else {
		j->n = n;
	}
	struct email_req_limits lim = {
		.max_size = j->conf->max_message_size,
		/* taken whatever [api] fetch_attachment_urls says, to be refused below with the fix */
		.allow_attachment_urls = true,
		.now = j->now_ms / 1000,
	};
	for (size_t i = 0; i < j->n; i++) {
		struct send_item *it = &j->items[i];
		const json_t *o = j->batch ? json_array_get(doc, i) : doc;
		enum email_req_error e = email_req_parse(o, &lim, &it->req, it->err, sizeof(it->err));
		if (e != EMAIL_REQ_OK) {
			it->status = e == EMAIL_REQ_NO_MEMORY ? 500 : 422;
			it->err_name = email_req_error_name(e);
			continue;
		}
		/* item_build sets it too; a request that fetches checks it before (send_fetch) */
		snprintf(it->domain, sizeof(it->domain), "%s", addr_domain(&it->req->from.addr));
		if (!attachments_fetch_needed(it->req))
			continue;
		if (!j->conf->api_fetch_attachment_urls) {
			/* refused rather than sent without them */
			item_fail(it, 422, "invalid_attachment", "%s",
				  "Attachments given by `path` are refused: set [api] fetch_attachment_urls = yes to let "
				  "this server fetch them.");
			continue;
		}
		it->fetch = true;
		j->fetch_pending = true;
		item_type_from_answer(it->req, o);
	}
	json_decref(doc);
	if (!j->fetch_pending)
		items_build(j);
}

/* The second worker job of a request whose attachments were fetched. */
static void send_build_work(void *arg)
{
	items_build(arg);
}

/* ---- back on the loop: our domains, the key's limits, the queue ---- */

static void send_respond_error(struct http_session *s, unsigned status, const char *name, const char *msg)
{
	http_respond_json(s, status, http_error_json(status, name, msg), NULL);
}

/* The answer as it will be sent (and stored for a retry with the same Idempotency-Key). */
static char *answer_json(const struct send_job *j)
{
	json_t *o;
	if (!j->batch) {
		o = json_pack("{s:s}", "id", j->items[0].msg->track->id);
	} else {
		json_t *data = json_array(), *errors = json_array();
		for (size_t i = 0; i < j->n; i++) {
			const struct send_item *it = &j->items[i];
			if (it->status == 0)
				json_array_append_new(data, json_pack("{s:s}", "id", it->msg->track->id));
			else
				json_array_append_new(errors, json_pack("{s:i, s:s}", "index", (int)i, "message", it->err));
		}
		o = json_pack("{s:o}", "data", data);
		if (j->permissive)
			json_object_set_new(o, "errors", errors);
		else
			json_decref(errors);
	}
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

struct store_ctx {
	struct server *srv;
	uint64_t session_id;
	char *answer;
	char key_id[API_KEY_ID_LEN + 1];
	char idem_key[HTTP_IDEMPOTENCY_KEY_MAX + 1];
	char first_queue_id[QUEUE_ID_LEN + 1];
	size_t count;
};

static void send_stored(void *arg, enum result res, const char *reason)
{
	struct store_ctx *c = arg;
	if (c->idem_key[0] != '\0' && c->srv->http_api != NULL)
		http_api_inflight_del(c->srv->http_api, c->key_id, c->idem_key);
	struct http_session *s = http_session_find(c->srv, c->session_id);
	if (res == RESULT_OK)
		log_info("queue_id=%s event=accepted via=http messages=%zu key=%s", c->first_queue_id, c->count, c->key_id);
	else
		log_warn("event=store_failed via=http reason=\"%s\"", reason != NULL ? reason : "?");
	if (s != NULL) {
		/* counted as SMTP counts: when the client is told (a client gone before it may send again) */
		if (res == RESULT_OK)
			metrics_message_accepted(c->srv->metrics, s->conn.role, c->count);
		else
			metrics_message_refused(c->srv->metrics, s->conn.role, METRICS_REFUSAL_STORE_FAILED, c->count);
		if (res == RESULT_OK)
			http_respond_text(s, 200, c->answer, strlen(c->answer), NULL);
		else
			/* nothing of it was stored: the client may send it again */
			http_respond_json(s, 503, http_error_json(503, "internal_server_error",
							       "The message could not be stored; try again later."),
					  "Retry-After: 10\r\n");
	}
	free(c->answer);
	free(c);
}

struct final_rcpts {
	struct queue_msg *m;
	bool oom;
};

static void final_rcpt_cb(const char *address, void *arg)
{
	struct final_rcpts *f = arg;
	if (!rcpt_add(f->m, address))
		f->oom = true;
}

/* The return path was made with [api] return_path_label (item_finish); a domain with a label of its
 * own (POST /domains custom_return_path) gets it here, where the domain is read. */
static void item_relabel(struct send_job *j, struct send_item *it, const char *label)
{
	struct queue_msg *m = it->msg;
	char id[EMAIL_ID_LEN + 1], dom[256], rp[ADDR_TEXT_MAX + 1];
	if (m->sender == NULL ||
	    !feedback_return_path_parse(m->sender, j->conf->api_return_path_label, id, dom, sizeof(dom)) ||
	    !feedback_return_path(id, label, dom, rp, sizeof(rp)))
		return;
	char *copy = strdup(rp);
	if (copy != NULL) {
		free(m->sender);
		m->sender = copy;
	}
}

/* The From domain is ours, may send, and the key may send from it; false when it is refused
 * (it->status set). */
static bool item_domain_ok(struct send_job *j, struct send_item *it)
{
	struct users_domain d;
	const char *e;
	enum result local = users_domain_get(j->srv->users, it->domain, &d, &e);
	if (local == RESULT_TEMPFAIL) {
		item_fail(it, 503, "internal_server_error", "%s", "The domain list cannot be read; try again later.");
		return false;
	}
	if (local != RESULT_OK) {
		item_fail(it, 403, "validation_error",
			  "The %s domain is not a domain of this server. Add it with POST /domains (or `mailwerk domain "
			  "add` and `mailwerk dkim keygen`).",
			  it->domain);
		return false;
	}
	if (!d.sending) {
		item_fail(it, 403, "validation_error",
			  "Sending from %s is disabled: PATCH /domains/%s with capabilities.sending = enabled.", d.name, d.id);
		return false;
	}
	if (!http_domain_can_send(&d)) {
		/* Resend refuses an unverified domain the same way (403 validation_error) */
		item_fail(it, 403, "validation_error",
			  "The %s domain is not verified: publish its records (GET /domains/%s) and POST "
			  "/domains/%s/verify; it sends once its SPF and DKIM records verify.",
			  d.name, d.id, d.id);
		return false;
	}
	if (j->key.domain[0] != '\0' && strcasecmp(j->key.domain, it->domain) != 0) {
		item_fail(it, 403, "restricted_api_key", "This API key may only send from %s.", j->key.domain);
		return false;
	}
	if (d.return_path[0] != '\0' && it->msg != NULL)
		item_relabel(j, it, d.return_path);
	return true;
}

/* Our side of the checks for one message; false when it is refused (it->status set). */
static bool item_allowed(struct send_job *j, struct send_item *it)
{
	struct users *u = j->srv->users;
	if (!item_domain_ok(j, it))
		return false;
	if (j->conf->dkim_sign && !it->signed_ok) {
		item_fail(it, 403, "validation_error",
			  "The %s domain has no active DKIM key: make one with `mailwerk dkim keygen --domain` and "
			  "publish what `mailwerk dns records` prints.",
			  it->domain);
		return false;
	}
	/* aliases of our own domains are replaced by their targets, as for submission */
	struct queue_msg *m = it->msg;
	if (m->rcpt_count == 0 && m->track->suppressed_count > 0)
		return true; /* every one suppressed: only the record is stored */
	char **given = m->rcpts;
	size_t count = m->rcpt_count;
	m->rcpts = NULL, m->rcpt_count = 0;
	struct final_rcpts f = {m, false};
	const char *err = "out of memory";
	enum result r = users_rcpt_expand(u, (const char *const *)given, count, j->conf->recipient_delimiter,
					  final_rcpt_cb, &f, &err);
	for (size_t i = 0; i < count; i++)
		free(given[i]);
	free(given);
	if (r == RESULT_OK && f.oom)
		r = RESULT_TEMPFAIL;
	if (r != RESULT_OK || m->rcpt_count == 0) {
		bool perm = r == RESULT_PERMFAIL;
		item_fail(it, perm ? 422 : 503, perm ? "validation_error" : "internal_server_error",
			  "The recipients cannot be resolved: %s", r == RESULT_OK ? "none left" : err);
		return false;
	}
	return true;
}

/* Strict (Resend's default): one refused email refuses the request, with its reason. Frees j. */
static void send_refuse_item(struct send_job *j, struct http_session *s, size_t i)
{
	const struct send_item *it = &j->items[i];
	if (j->idem_held)
		http_api_inflight_del(j->api, j->key.id, j->idem_key);
	char msg[600];
	if (j->batch)
		snprintf(msg, sizeof(msg), "emails[%zu]: %s", i, it->err);
	else
		snprintf(msg, sizeof(msg), "%s", it->err);
	send_respond_error(s, it->status, it->err_name, msg);
	send_job_free(j);
}

static void send_done(void *arg);

static bool send_still_wanted(void *arg)
{
	struct send_job *j = arg;
	return http_session_find(j->srv, j->session_id) != NULL;
}

/* The attachments are here (or not): back to a worker to compose and sign. */
static void send_fetched(void *arg, const struct attachments_fetch_result *r)
{
	struct send_job *j = arg;
	j->fetch_charged += r->charged;
	struct http_session *s = r->cancelled ? NULL : http_session_find(j->srv, j->session_id);
	if (s == NULL || j->srv->http_api == NULL) {
		if (j->idem_held && j->srv->http_api != NULL)
			http_api_inflight_del(j->srv->http_api, j->key.id, j->idem_key);
		send_job_free(j);
		return;
	}
	if (r->busy) {
		log_warn("session=%llx event=refused reason=max_memory_in_flight", (unsigned long long)j->session_id);
		if (j->idem_held)
			http_api_inflight_del(j->api, j->key.id, j->idem_key);
		http_respond_json(s, 503, http_error_json(503, "internal_server_error",
						       "The server is busy; try again in a few seconds."),
				  "Retry-After: 5\r\n");
		send_job_free(j);
		return;
	}
	size_t failed = 0;
	for (size_t i = 0; i < j->n; i++)
		if (r->errors[i] != NULL) {
			item_fail(&j->items[i], 422, "invalid_attachment", "%s", r->errors[i]);
			failed++;
		}
	log_info("session=%llx event=attachments_fetched octets=%llu failed=%zu", (unsigned long long)j->session_id,
		 (unsigned long long)j->fetch_charged, failed);
	for (size_t i = 0; i < j->n && !j->permissive; i++)
		if (j->items[i].status != 0) {
			send_refuse_item(j, s, i);
			return;
		}
	worker_pool_submit(j->srv->workers, send_build_work, send_done, j);
}

/* Before anything is fetched: what the loop can judge already (our domain, the key's), then the
 * GETs. */
static void send_fetch(struct send_job *j, struct http_session *s)
{
	for (size_t i = 0; i < j->n; i++) {
		struct send_item *it = &j->items[i];
		if (it->status == 0)
			item_domain_ok(j, it);
		if (it->status != 0 && !j->permissive) {
			send_refuse_item(j, s, i);
			return;
		}
	}
	struct email_req **reqs = calloc(j->n, sizeof(*reqs));
	for (size_t i = 0; reqs != NULL && i < j->n; i++)
		reqs[i] = j->items[i].status == 0 && j->items[i].fetch ? j->items[i].req : NULL;
	struct attachments_fetch_opts o = {
		.http = j->api->http,
		.base = j->srv->base,
		.memory = &j->srv->memory,
		.max_message_size = j->conf->max_message_size,
		/* what the request could have carried as content */
		.max_total = http_api_max_body(j->conf),
		.timeout_ms = j->conf->api_request_timeout * 1000,
		/* the one switch for calls into our own network (http_client.h) */
		.allow_private = j->conf->webhook_allow_private,
		.stop_at_first = !j->permissive,
		.wanted = send_still_wanted,
	};
	if (reqs == NULL || attachments_fetch_start(&j->api->fetches, reqs, j->n, &o, send_fetched, j) != 0) {
		free(reqs);
		if (j->idem_held)
			http_api_inflight_del(j->api, j->key.id, j->idem_key);
		send_respond_error(s, 500, "internal_server_error", "Out of memory.");
		send_job_free(j);
		return;
	}
	free(reqs);
}

struct sign_wait {
	struct send_job *j;
	struct send_item *it;
};

static void item_signed(void *arg, enum signer_result r, char *fields, const char *error)
{
	struct sign_wait *w = arg;
	struct send_job *j = w->j;
	struct send_item *it = w->it;
	free(w);
	struct queue_msg *m = it->msg;
	if (r == SIGNER_SIGNED && fields[0] != '\0') {
		it->signed_ok = queue_msg_prepend(m, fields, strlen(fields));
		if (!it->signed_ok)
			item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
	} else if (r == SIGNER_KEY_FAILED) {
		log_warn("queue_id=%s event=dkim_sign_failed domain=%s error=\"%s\"", m->id, it->domain, error);
	} else if (r == SIGNER_UNAVAILABLE) {
		log_warn("queue_id=%s event=dkim_sign_deferred domain=%s error=\"%s\"", m->id, it->domain, error);
		item_fail(it, 503, "internal_server_error", "%s", "The message cannot be signed now; try again later.");
	}
	free(fields);
	if (it->received != NULL && !queue_msg_prepend(m, it->received, strlen(it->received)))
		item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
	free(it->received);
	it->received = NULL;
	if (--j->signing == 0)
		send_done(j);
}

/* The drafts to the signer process; send_done comes again when every one is answered. False when
 * there is nothing to sign. */
static bool send_sign(struct send_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		if (j->items[i].draft != NULL && j->items[i].status == 0)
			j->signing++;
	if (j->signing == 0)
		return false;
	j->signing++; /* held until every request is made: an answer cannot end it early */
	for (size_t i = 0; i < j->n; i++) {
		struct send_item *it = &j->items[i];
		struct dkim_draft *d = it->draft;
		it->draft = NULL;
		if (d == NULL || it->status != 0) {
			dkim_draft_free(d);
			continue;
		}
		struct sign_wait *w = malloc(sizeof(*w));
		if (w == NULL) {
			dkim_draft_free(d);
			item_fail(it, 500, "internal_server_error", "%s", "Out of memory.");
			j->signing--;
			continue;
		}
		*w = (struct sign_wait){j, it};
		signer_client_sign(j->srv->signer, d, item_signed, w);
	}
	if (--j->signing == 0)
		send_done(j);
	return true;
}

static void send_done(void *arg)
{
	struct send_job *j = arg;
	struct http_session *s = http_session_find(j->srv, j->session_id);
	bool held = j->idem_held;
	if (s == NULL || j->srv->http_api == NULL) {
		if (held && j->srv->http_api != NULL)
			http_api_inflight_del(j->srv->http_api, j->key.id, j->idem_key);
		send_job_free(j);
		return;
	}
	if (j->status != 0 || j->replay != NULL) {
		if (held)
			http_api_inflight_del(j->api, j->key.id, j->idem_key);
		if (j->replay != NULL)
			http_respond_text(s, 200, j->replay, strlen(j->replay), NULL);
		else
			send_respond_error(s, j->status, j->err_name, j->err);
		send_job_free(j);
		return;
	}
	if (j->fetch_pending) {
		j->fetch_pending = false;
		send_fetch(j, s);
		return;
	}
	if (send_sign(j))
		return;
	size_t ok = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct send_item *it = &j->items[i];
		if (it->status == 0 && item_allowed(j, it))
			ok++;
		/* strict (Resend's default): one refused email refuses the batch, with its reason */
		if (it->status != 0 && !j->permissive) {
			send_refuse_item(j, s, i);
			return;
		}
	}
	struct store_ctx *c = calloc(1, sizeof(*c));
	struct queue_msg **msgs = calloc(j->n > 0 ? j->n : 1, sizeof(*msgs));
	char *answer = answer_json(j);
	if (c == NULL || msgs == NULL || answer == NULL) {
		free(c), free(msgs), free(answer);
		if (held)
			http_api_inflight_del(j->api, j->key.id, j->idem_key);
		send_respond_error(s, 500, "internal_server_error", "Out of memory.");
		send_job_free(j);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct send_item *it = &j->items[i];
		if (it->status != 0)
			continue;
		if (n == 0 && j->idem_key[0] != '\0') {
			/* stored with the first message, in the same transaction (events.h) */
			struct email_record *rec = it->msg->track;
			rec->idem_key = strdup(j->idem_key);
			rec->idem_response = strdup(answer);
			memcpy(rec->idem_hash, j->body_hash, sizeof(rec->idem_hash));
		}
		msgs[n++] = it->msg;
		it->msg = NULL;
	}
	if (n == 0) {
		/* permissive, and every one was refused: nothing to store */
		if (held)
			http_api_inflight_del(j->api, j->key.id, j->idem_key);
		http_respond_text(s, 200, answer, strlen(answer), NULL);
		free(answer), free(msgs), free(c);
		send_job_free(j);
		return;
	}
	c->srv = j->srv;
	c->session_id = j->session_id;
	c->answer = answer;
	c->count = n;
	snprintf(c->first_queue_id, sizeof(c->first_queue_id), "%s", msgs[0]->id);
	snprintf(c->key_id, sizeof(c->key_id), "%s", j->key.id);
	if (held)
		snprintf(c->idem_key, sizeof(c->idem_key), "%s", j->idem_key);
	queue_msgs_store(j->srv->queue, msgs, n, send_stored, c);
	free(msgs);
	send_job_free(j);
}

static void send_start(struct http_call *c, bool batch, bool raw)
{
	struct http_session *s = c->s;
	struct conf *conf = s->conf;
	if (!diskspace_has_room(conf->data_dir, conf->min_free_space, s->body_len)) {
		log_warn("session=%llx event=refused reason=min_free_space", (unsigned long long)s->conn.id);
		/* one request: a batch's messages are not counted before its body is read */
		metrics_message_refused(s->srv->metrics, s->conn.role, METRICS_REFUSAL_MIN_FREE_SPACE, 1);
		http_respond_json(s, 503, http_error_json(503, "internal_server_error",
						       "The server is short of storage; try again later."),
				  "Retry-After: 60\r\n");
		return;
	}
	if (s->req.idempotency_key_too_long) {
		http_respond_error(s, 400, "invalid_idempotency_key", "The Idempotency-Key must be 1 to 256 characters.");
		return;
	}
	struct send_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(s, 500, "internal_server_error", "Out of memory.");
		return;
	}
	j->srv = s->srv;
	j->api = c->api;
	j->session_id = s->conn.id;
	j->conf = conf_ref(conf);
	j->key = c->key;
	snprintf(j->client_ip, sizeof(j->client_ip), "%s", s->conn.ip);
	j->tls = s->tls;
	j->batch = batch;
	j->raw = raw;
	j->permissive = batch && strcasecmp(s->req.batch_validation, "permissive") == 0;
	j->now_ms = date_now_ms();
	snprintf(j->idem_key, sizeof(j->idem_key), "%s", s->req.idempotency_key);
	if (j->idem_key[0] != '\0') {
		if (!http_api_inflight_add(c->api, j->key.id, j->idem_key)) {
			http_respond_error(s, 409, "concurrent_idempotent_requests",
					   "A request with this Idempotency-Key is still in progress; try again once it is done.");
			send_job_free(j);
			return;
		}
		j->idem_held = true;
	}
	/* the body moves to the job; its octets stay counted against the session until the answer */
	j->body = s->body != NULL ? s->body : strdup("");
	j->body_len = s->body_len;
	s->body = NULL;
	s->body_len = 0;
	if (j->body == NULL) {
		if (j->idem_held)
			http_api_inflight_del(c->api, j->key.id, j->idem_key);
		http_respond_error(s, 500, "internal_server_error", "Out of memory.");
		send_job_free(j);
		return;
	}
	worker_pool_submit(s->srv->workers, send_work, send_done, j);
}

void http_emails_send(struct http_call *c)
{
	send_start(c, false, false);
}

void http_emails_batch(struct http_call *c)
{
	send_start(c, true, false);
}

void http_emails_raw(struct http_call *c)
{
	send_start(c, false, true);
}

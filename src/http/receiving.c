/* receiving.c — mail received for the applications, in Resend's shapes: GET /emails/receiving (a
 * page of summaries), GET /emails/receiving/{id} (the email: headers, text, html in UTF-8 and a
 * signed URL of the raw message), GET /emails/receiving/{id}/attachments[/{attachment_id}] (with
 * signed download URLs), and the two downloads those URLs name, which need no API key: their
 * signature is the key (download_token.h). The store's work and the parsing run on a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "http/api.h"
#include "http/download_token.h"
#include "http/job_answer.h"
#include "http/json.h"
#include "http/session.h"
#include "inbound/inbound_store.h"
#include "inbound/received_json.h"
#include "inbound/received_view.h"
#include "server/server.h"
#include "util/date.h"
#include "util/worker.h"

enum recv_kind {
	RECV_LIST = 0,
	RECV_GET,
	RECV_RAW,
	RECV_ATTACHMENTS,
	RECV_ATTACHMENT,
	RECV_CONTENT,
};

struct recv_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	enum recv_kind kind;
	char id[INBOUND_ID_LEN + 1];
	char attachment[RECEIVED_ID_LEN + 1];
	unsigned limit;
	char after[64], before[64];
	bool cid;       /* html_format=cid */
	char base[512]; /* of the download URLs */
	struct http_job_answer ans;
	char *octets;          /* or a download */
	size_t octets_len;
	char content_type[256];
	char disposition[512];
};

/* The signed URL of path below the base. */
static json_t *download_json(const struct recv_job *j, const char *path, int64_t expires_s)
{
	char query[DOWNLOAD_QUERY_MAX], url[1024];
	if (!download_token_query(j->api->unsubscribe_secret, path, expires_s, query, sizeof(query)) ||
	    snprintf(url, sizeof(url), "%s%s?%s", j->base, path, query) >= (int)sizeof(url))
		return NULL;
	return json_pack("{s:s, s:o}", "download_url", url, "expires_at", http_json_time(expires_s * 1000));
}

/* AttachmentData of the SDK: the metadata with its signed download URL. */
static json_t *attachment_data(const struct recv_job *j, const struct received_attachment *at, int64_t expires_s,
			       bool object)
{
	char path[256];
	snprintf(path, sizeof(path), "/emails/receiving/%s/attachments/%s/content", j->id, at->id);
	json_t *dl = download_json(j, path, expires_s);
	if (dl == NULL)
		return NULL;
	json_t *o = json_pack("{s:s, s:I, s:s, s:s}", "id", at->id, "size", (json_int_t)at->size, "content_type",
			      at->content_type, "content_disposition", at->content_disposition);
	if (at->filename != NULL)
		json_object_set_new(o, "filename", json_string(at->filename));
	if (at->content_id != NULL)
		json_object_set_new(o, "content_id", json_string(at->content_id));
	json_object_update(o, dl);
	json_decref(dl);
	if (object)
		json_object_set_new(o, "object", json_string("attachment"));
	return o;
}

static void recv_list(struct recv_job *j, struct inbound_store *st)
{
	struct inbound_email *e;
	size_t n;
	bool more;
	char err[256];
	int r = inbound_store_list(st, j->limit, j->after[0] ? j->after : NULL, j->before[0] ? j->before : NULL, &e, &n,
				   &more, err, sizeof(err));
	if (r != 1) {
		http_job_fail(&j->ans, r == 0 ? 422 : 500, r == 0 ? "validation_error" : "internal_server_error", "%s",
			  r == 0 ? "The cursor is not the id of a received email." : "The received emails cannot be read.");
		return;
	}
	json_t *data = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(data, json_loads(e[i].summary_json, 0, NULL));
	inbound_emails_free(e, n);
	j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
}

/* The stored copy of j->id, read and parsed; false when the job has its answer (404, 500). */
static bool recv_open(struct recv_job *j, struct inbound_store *st, struct inbound_email *e, char **raw, size_t *len,
		      struct received_view *v)
{
	char err[256];
	const char *why;
	memset(v, 0, sizeof(*v));
	*raw = NULL;
	int r = inbound_store_get(st, j->id, e, err, sizeof(err));
	if (r != 1) {
		http_job_fail(&j->ans, r == 0 ? 404 : 500, r == 0 ? "not_found" : "internal_server_error", "%s",
			  r == 0 ? "Email not found." : "The received email cannot be read.");
		return false;
	}
	if ((*raw = inbound_email_read(e, len, err, sizeof(err))) == NULL) {
		http_job_fail(&j->ans, 500, "internal_server_error", "The received message cannot be read.");
		inbound_email_clear(e);
		return false;
	}
	if (j->kind != RECV_RAW && j->kind != RECV_CONTENT && received_view_parse(*raw, *len, NULL, v, &why) != RECEIVED_VIEW_OK) {
		http_job_fail(&j->ans, 500, "internal_server_error", "The received message cannot be parsed.");
		received_view_clear(v);
		free(*raw);
		*raw = NULL;
		inbound_email_clear(e);
		return false;
	}
	return true;
}

/* The attachments of v from the cursor on, at most limit. */
static void recv_attachments(struct recv_job *j, const struct received_view *v, int64_t expires_s)
{
	size_t from = 0, to = v->attachment_count;
	if (j->after[0] != '\0' || j->before[0] != '\0') {
		const char *cursor = j->after[0] != '\0' ? j->after : j->before;
		size_t at = v->attachment_count;
		for (size_t i = 0; i < v->attachment_count; i++)
			if (strcmp(v->attachments[i].id, cursor) == 0)
				at = i;
		if (at == v->attachment_count) {
			http_job_fail(&j->ans, 422, "validation_error", "The cursor is not the id of an attachment of this email.");
			return;
		}
		if (j->after[0] != '\0')
			from = at + 1;
		else
			to = at, from = at > j->limit ? at - j->limit : 0;
	}
	bool more = j->before[0] != '\0' ? from > 0 : to - from > j->limit;
	if (to - from > j->limit)
		to = from + j->limit;
	json_t *data = json_array();
	for (size_t i = from; i < to; i++)
		json_array_append_new(data, attachment_data(j, &v->attachments[i], expires_s, false));
	j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
}

static void recv_work(void *arg)
{
	struct recv_job *j = arg;
	struct inbound_store *st = j->api->inbound;
	if (j->kind == RECV_LIST) {
		recv_list(j, st);
		return;
	}
	struct inbound_email e;
	char *raw;
	size_t len = 0;
	struct received_view v;
	if (!recv_open(j, st, &e, &raw, &len, &v))
		return;
	int64_t expires_s = date_now_ms() / 1000 + DOWNLOAD_URL_LIFETIME_S;
	json_t *summary = json_loads(e.summary_json, 0, NULL);
	switch (j->kind) {
	case RECV_GET: {
		char path[128];
		snprintf(path, sizeof(path), "/emails/receiving/%s/raw", j->id);
		json_t *dl = download_json(j, path, expires_s);
		const char *url = json_string_value(json_object_get(dl, "download_url"));
		j->ans.body = summary != NULL ? received_email_json(summary, &v, raw, len, NULL, j->cid, url, expires_s * 1000)
					  : NULL;
		json_decref(dl);
		if (j->ans.body == NULL)
			http_job_fail(&j->ans, 500, "internal_server_error", "Out of memory.");
		break;
	}
	case RECV_ATTACHMENTS:
		recv_attachments(j, &v, expires_s);
		break;
	case RECV_ATTACHMENT: {
		const struct received_attachment *at = NULL;
		for (size_t i = 0; i < v.attachment_count; i++)
			if (strcmp(v.attachments[i].id, j->attachment) == 0)
				at = &v.attachments[i];
		if (at == NULL)
			http_job_fail(&j->ans, 404, "not_found", "Attachment not found.");
		else if ((j->ans.body = attachment_data(j, at, expires_s, true)) == NULL)
			http_job_fail(&j->ans, 500, "internal_server_error", "Out of memory.");
		break;
	}
	case RECV_RAW:
		/* RFC 2046 §5.2.1: the message as received; RFC 6266 for the file name */
		j->octets = raw, j->octets_len = len, raw = NULL;
		snprintf(j->content_type, sizeof(j->content_type), "message/rfc822");
		snprintf(j->disposition, sizeof(j->disposition), "attachment; filename=\"%s.eml\"", j->id);
		break;
	case RECV_CONTENT: {
		char *type = NULL, *name = NULL;
		unsigned char *bytes = received_view_attachment(raw, len, NULL, j->attachment, &j->octets_len, &type, &name);
		if (bytes == NULL) {
			http_job_fail(&j->ans, 404, "not_found", "Attachment not found.");
		} else {
			j->octets = (char *)bytes;
			snprintf(j->content_type, sizeof(j->content_type), "%s", type != NULL ? type : "application/octet-stream");
			/* the name is the sender's: only its safe octets go into the field (RFC 6266 §4.1) */
			char safe[256];
			size_t n = 0;
			for (const char *p = name != NULL ? name : ""; *p != '\0' && n + 1 < sizeof(safe); p++)
				if ((unsigned char)*p >= 0x20 && *p != '"' && *p != '\\' && (unsigned char)*p < 0x7f)
					safe[n++] = *p;
			safe[n] = '\0';
			snprintf(j->disposition, sizeof(j->disposition), "attachment%s%s%s", n > 0 ? "; filename=\"" : "", safe,
				 n > 0 ? "\"" : "");
		}
		free(type);
		free(name);
		break;
	}
	case RECV_LIST:
		break;
	}
	json_decref(summary);
	received_view_clear(&v);
	free(raw);
	inbound_email_clear(&e);
}

static void recv_done(void *arg)
{
	struct recv_job *j = arg;
	struct http_session *s = j->octets != NULL ? http_session_find(j->srv, j->session_id) : NULL;
	if (s != NULL && j->ans.status == 0) {
		/* a download: the octets as they are */
		char extra[640];
		snprintf(extra, sizeof(extra), "Content-Disposition: %s\r\nX-Content-Type-Options: nosniff\r\n",
			 j->disposition);
		http_respond_body(s, 200, j->content_type, j->octets, j->octets_len, extra);
	} else if (j->octets == NULL) {
		http_job_send(j->srv, j->session_id, &j->ans, 200);
	}
	json_decref(j->ans.body);
	free(j->octets);
	free(j);
}

static struct recv_job *recv_job_new(struct http_call *c, enum recv_kind kind)
{
	struct recv_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->api = c->api;
	j->session_id = c->s->conn.id;
	j->kind = kind;
	snprintf(j->id, sizeof(j->id), "%.*s", INBOUND_ID_LEN, c->param);
	snprintf(j->attachment, sizeof(j->attachment), "%.*s", RECEIVED_ID_LEN, c->param2);
	http_public_base(c->s->conf, j->base, sizeof(j->base));
	/* an id longer than ids are names nothing */
	if (strlen(c->param) > INBOUND_ID_LEN || strlen(c->param2) > RECEIVED_ID_LEN) {
		http_respond_error(c->s, 404, "not_found", kind == RECV_ATTACHMENT || kind == RECV_CONTENT
								   ? "Attachment not found." : "Email not found.");
		free(j);
		return NULL;
	}
	return j;
}

static void recv_submit(struct http_call *c, struct recv_job *j)
{
	worker_pool_submit(c->s->srv->workers, recv_work, recv_done, j);
}

static void recv_simple(struct http_call *c, enum recv_kind kind)
{
	struct recv_job *j = recv_job_new(c, kind);
	if (j != NULL)
		recv_submit(c, j);
}

void http_receiving_list(struct http_call *c)
{
	struct recv_job *j = recv_job_new(c, RECV_LIST);
	if (j == NULL)
		return;
	if (!http_page_parse(c, &j->limit, j->after, sizeof(j->after), j->before, sizeof(j->before))) {
		free(j);
		return;
	}
	recv_submit(c, j);
}

void http_receiving_get(struct http_call *c)
{
	char format[16] = "";
	if (http_query_get(c->s->req.query, "html_format", format, sizeof(format)) < 0 ||
	    (format[0] != '\0' && strcmp(format, "data_uri") != 0 && strcmp(format, "cid") != 0)) {
		http_respond_error(c->s, 422, "validation_error", "The `html_format` parameter must be `data_uri` or `cid`.");
		return;
	}
	struct recv_job *j = recv_job_new(c, RECV_GET);
	if (j == NULL)
		return;
	j->cid = strcmp(format, "cid") == 0;
	recv_submit(c, j);
}

void http_receiving_attachments(struct http_call *c)
{
	struct recv_job *j = recv_job_new(c, RECV_ATTACHMENTS);
	if (j == NULL)
		return;
	if (!http_page_parse(c, &j->limit, j->after, sizeof(j->after), j->before, sizeof(j->before))) {
		free(j);
		return;
	}
	recv_submit(c, j);
}

void http_receiving_attachment(struct http_call *c)
{
	recv_simple(c, RECV_ATTACHMENT);
}

/* The downloads: the signature of the URL stands for the key. */
static void recv_download(struct http_call *c, enum recv_kind kind)
{
	if (!download_token_check(c->api->unsubscribe_secret, c->s->req.path, c->s->req.query, date_now_ms() / 1000)) {
		http_respond_error(c->s, 403, "invalid_parameter", "The download URL is not valid or has expired.");
		return;
	}
	recv_simple(c, kind);
}

void http_receiving_raw(struct http_call *c)
{
	recv_download(c, RECV_RAW);
}

void http_receiving_content(struct http_call *c)
{
	recv_download(c, RECV_CONTENT);
}

/* feedback.c — the MX side of reports about our tracked mail: RCPT TO a return path of ours
 * (bounces+ID@LABEL.DOMAIN, DOMAIN local) or to [api] complaint_address is taken, and the message
 * is read as a DSN (RFC 3464) or an ARF report (RFC 5965) and recorded as events through the
 * queue's group commit; the 250 waits for that commit. Nothing is delivered to a mailbox. */
#include "smtp/feedback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events/events.h"
#include "events/feedback.h"
#include "mailbox/users.h"
#include "queue/queue.h"
#include "queue/spool.h"
#include "server/server.h"
#include "smtp/reply.h"
#include "util/log.h"

/* A report's fields come first (the delivery-status or feedback-report part, then the returned
 * message): this much of it is read, whatever its size. */
#define FEEDBACK_READ_MAX ((size_t)1 << 20)

bool smtp_feedback_rcpt(struct smtp_session *s, const struct addr *a)
{
	if (s->conn.role != CONF_LISTEN_SMTP)
		return false;
	const struct conf *c = s->conf;
	if (c->api_complaint_address[0] != '\0' && strcasecmp(a->text, c->api_complaint_address) == 0)
		return true;
	char id[EMAIL_ID_LEN + 1], domain[256], want[ADDR_TEXT_MAX + 1];
	struct users_domain d;
	const char *e;
	/* the label must be the one this domain's mail leaves with: its own, else [api] return_path_label */
	return feedback_return_path_parse(a->text, NULL, id, domain, sizeof(domain)) &&
	       users_domain_get(s->srv->users, domain, &d, &e) == RESULT_OK &&
	       feedback_return_path(id, d.return_path[0] != '\0' ? d.return_path : c->api_return_path_label, d.name, want,
				    sizeof(want)) &&
	       strcasecmp(want, a->text) == 0;
}

/* The message, or its first FEEDBACK_READ_MAX octets, in one piece. */
static char *whole(const struct queue_msg *m, size_t *len_r)
{
	uint64_t total = queue_msg_total(m);
	size_t len = total < FEEDBACK_READ_MAX ? (size_t)total : FEEDBACK_READ_MAX;
	char *buf = malloc(len + 1);
	if (buf == NULL)
		return NULL;
	size_t head = m->size < len ? m->size : len;
	memcpy(buf, m->data, head);
	for (size_t off = head; off < len;) {
		ssize_t n = queue_spool_read(m->body, off - m->size, buf + off, len - off);
		if (n <= 0) {
			len = off;
			break;
		}
		off += (size_t)n;
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

/* The items of a report; false when it says nothing we record. */
static bool feedback_items(const struct feedback *f, struct email_feedback *fb)
{
	if (f->kind == FEEDBACK_ARF) {
		struct email_feedback_item *it = &fb->items[fb->count++];
		snprintf(it->addr, sizeof(it->addr), "%s", f->original_rcpt);
		it->type = EMAIL_EVENT_COMPLAINED;
		snprintf(it->status, sizeof(it->status), "%s", f->feedback_type[0] ? f->feedback_type : "abuse");
		return true;
	}
	for (size_t i = 0; i < f->rcpt_count && fb->count < EMAIL_FEEDBACK_MAX; i++) {
		const struct feedback_rcpt *r = &f->rcpts[i];
		/* RFC 3464 §2.3.3: only failed and delayed are news; delivered, relayed and expanded
		 * are what we already recorded as the receiver's 250 */
		enum email_event_type type;
		if (strcmp(r->action, "failed") == 0)
			type = EMAIL_EVENT_BOUNCED;
		else if (strcmp(r->action, "delayed") == 0)
			type = EMAIL_EVENT_DELIVERY_DELAYED;
		else
			continue;
		struct email_feedback_item *it = &fb->items[fb->count++];
		snprintf(it->addr, sizeof(it->addr), "%s", r->final_rcpt);
		it->type = type;
		snprintf(it->status, sizeof(it->status), "%s", r->status);
		snprintf(it->reply, sizeof(it->reply), "%s", r->diagnostic);
		snprintf(it->mx, sizeof(it->mx), "%s", r->remote_mta);
	}
	return fb->count > 0;
}

struct feedback_ctx {
	struct server *srv;
	uint64_t session_id;
	char kind[8];
	char email_id[EMAIL_ID_LEN + 1];
};

static void feedback_stored(void *arg, enum result res, const char *reason)
{
	struct feedback_ctx *c = arg;
	struct smtp_session *s = smtp_session_find(c->srv, c->session_id);
	if (res == RESULT_OK)
		log_info("session=%llx event=feedback kind=%s email_id=%s", (unsigned long long)c->session_id, c->kind,
			 c->email_id[0] ? c->email_id : "-");
	else
		log_warn("session=%llx event=feedback_failed reason=\"%s\"", (unsigned long long)c->session_id, reason);
	if (s != NULL) {
		if (res == RESULT_OK)
			smtp_reply(line_session_out(&s->ls), 250, "2.0.0", "Ok: report recorded");
		else
			smtp_reply(line_session_out(&s->ls), 451, "4.3.0", "Error: cannot record the report, try again later");
		smtp_session_resume(s);
	}
	free(c);
}

void smtp_feedback_finish(struct smtp_session *s, struct queue_msg *m)
{
	size_t len = 0;
	char *msg = whole(m, &len);
	struct feedback *f = msg != NULL ? malloc(sizeof(*f)) : NULL;
	struct email_feedback *fb = f != NULL ? calloc(1, sizeof(*fb)) : NULL;
	struct feedback_ctx *c = fb != NULL ? calloc(1, sizeof(*c)) : NULL;
	if (c == NULL) {
		free(msg), free(f), free(fb);
		queue_msg_free(m);
		smtp_reply(line_session_out(&s->ls), 451, "4.3.0", "Insufficient system resources");
		smtp_session_resume(s);
		return;
	}
	feedback_parse(msg, len, f);
	free(msg);
	/* the email: the id its return path carried (RCPT TO), or the return path or Message-ID of the
	 * message the report returns (complaints reach one address for all mail) */
	char domain[256];
	const char *label = NULL; /* any domain's: the id is what names the email */
	for (size_t i = 0; i < m->rcpt_count && fb->email_id[0] == '\0'; i++)
		feedback_return_path_parse(m->rcpts[i], label, fb->email_id, domain, sizeof(domain));
	if (fb->email_id[0] == '\0')
		feedback_return_path_parse(f->original_mail_from, label, fb->email_id, domain, sizeof(domain));
	if (fb->email_id[0] == '\0')
		feedback_return_path_parse(f->original_return_path, label, fb->email_id, domain, sizeof(domain));
	snprintf(fb->message_id, sizeof(fb->message_id), "%s", f->original_message_id);
	bool useful = feedback_items(f, fb);
	snprintf(c->kind, sizeof(c->kind), "%s", f->kind == FEEDBACK_DSN ? "dsn" : f->kind == FEEDBACK_ARF ? "arf" : "none");
	snprintf(c->email_id, sizeof(c->email_id), "%s", fb->email_id);
	free(f);
	queue_msg_free(m);
	c->srv = s->srv;
	c->session_id = s->conn.id;
	if (!useful || (fb->email_id[0] == '\0' && fb->message_id[0] == '\0')) {
		/* An auto-reply (RFC 3834 sends those to the return path too), a bounce in no standard
		 * form, a report about mail we cannot name: taken and dropped, as guessing would mark
		 * delivered mail as bounced. */
		log_info("session=%llx event=feedback_ignored kind=%s email_id=%s", (unsigned long long)s->conn.id, c->kind,
			 fb->email_id[0] ? fb->email_id : "-");
		smtp_reply(line_session_out(&s->ls), 250, "2.0.0", "Ok: nothing to record");
		free(fb), free(c);
		smtp_session_resume(s);
		return;
	}
	queue_feedback_store(s->srv->queue, fb, feedback_stored, c);
}

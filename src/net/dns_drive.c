/* dns_drive.c — the loop-side driver of the pure auth evaluators. */
#include "net/dns_drive.h"

#include <event2/event.h>
#include <stdlib.h>

#include "net/dns.h"

struct dns_drive {
	struct dns *dns;
	auth_step_fn *step;
	void *eval;
	dns_drive_done_fn *done;
	void *arg;
	struct event *finish_ev; /* done is always called from here, never from inside start */
	uint64_t lookup;         /* in flight, 0 when none */
	unsigned asked;
	bool exceeded;
};

static void drive_free(struct dns_drive *r)
{
	if (r->lookup != 0)
		dns_cancel(r->dns, r->lookup);
	event_free(r->finish_ev);
	dns_free(r->dns);
	free(r);
}

static void drive_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_drive *r = arg;
	dns_drive_done_fn *done = r->done;
	void *done_arg = r->arg;
	bool exceeded = r->exceeded;
	drive_free(r);
	done(done_arg, exceeded);
}

static void drive_finish(struct dns_drive *r)
{
	event_active(r->finish_ev, EV_TIMEOUT, 0);
}

static void drive_on_answer(void *arg, uint64_t id, const struct dns_result *res);

/* Asks q; a name the resolver refuses to look up is answered as a failed lookup. */
static void drive_ask(struct dns_drive *r, const struct auth_query *q)
{
	for (;;) {
		if (++r->asked > DNS_DRIVE_MAX_QUESTIONS) {
			r->exceeded = true;
			drive_finish(r);
			return;
		}
		r->lookup = dns_lookup(r->dns, q->name, q->rrtype, drive_on_answer, r);
		if (r->lookup != 0)
			return;
		/* not a name DNS can carry (RFC 1035 §2.3.4; e.g. an SPF macro expanded to spaces):
		 * no such name exists, which the evaluators treat as "no match" */
		struct dns_result fail = {
			.status = DNS_STATUS_NXDOMAIN, .rrtype = q->rrtype, .name = q->name,
			.canonname = q->name, .why = "the name cannot be looked up",
		};
		struct auth_query next;
		if (r->step(r->eval, &fail, &next) == AUTH_STEP_DONE) {
			drive_finish(r);
			return;
		}
		q = &next;
	}
}

static void drive_on_answer(void *arg, uint64_t id, const struct dns_result *res)
{
	struct dns_drive *r = arg;
	struct auth_query q;
	r->lookup = 0;
	if (r->step(r->eval, res, &q) == AUTH_STEP_DONE)
		drive_finish(r);
	else
		drive_ask(r, &q);
}

struct dns_drive *dns_drive_start(struct dns *d, auth_step_fn *step, void *eval, dns_drive_done_fn *done, void *arg)
{
	struct dns_drive *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->finish_ev = event_new(dns_base(d), -1, 0, drive_finish_cb, r);
	if (r->finish_ev == NULL) {
		free(r);
		return NULL;
	}
	r->dns = dns_ref(d);
	r->step = step;
	r->eval = eval;
	r->done = done;
	r->arg = arg;
	struct auth_query q;
	if (step(eval, NULL, &q) == AUTH_STEP_DONE)
		drive_finish(r);
	else
		drive_ask(r, &q);
	return r;
}

void dns_drive_cancel(struct dns_drive *r)
{
	if (r != NULL)
		drive_free(r);
}

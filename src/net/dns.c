/* dns.c — owns the libunbound context and every lookup in flight.
 *
 * Unbound resolves on its own thread (ub_ctx_async(ctx, 1)) and writes finished answers to a pipe;
 * that pipe (ub_fd) is a persistent EV_READ event on our loop whose callback runs ub_process, which
 * in turn calls dns_ub_done for each answer, still on the loop thread.
 *
 * User callbacks never run from inside ub_process or a timer: finished lookups go to a ready queue
 * and one deferred event delivers them. A callback may therefore start, cancel, or free anything,
 * dns_free included. A lookup is found by its id; unbound keeps a pointer to our struct until it
 * calls back or ub_cancel succeeds, so a struct whose user is gone but that unbound still holds
 * waits as an "orphan" until then (or until dns_free, after unbound's thread has stopped). */
#include "net/dns.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "util/log.h"
#include "util/metrics.h"

#define DNS_BUCKETS 256
#define DNS_CLASS_IN 1
/* RFC 1035 §4.1.1 / RFC 6895 §2.3 RCODEs unbound may leave in a result without data */
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP 4
#define DNS_RCODE_REFUSED 5

struct dns_lookup {
	struct dns_lookup *hnext;                  /* id table chain, while live */
	struct dns_lookup *all_prev, *all_next;    /* every struct not yet freed */
	struct dns_lookup *ready_prev, *ready_next;
	struct dns *d;
	uint64_t id;
	bool live;       /* in the id table: the callback is still due */
	bool queued;     /* in the ready queue */
	bool in_unbound; /* unbound holds a pointer to this struct under async_id */
	int async_id;
	int rrtype;
	double started; /* metrics_now() when unbound got it */
	dns_done_fn *done;
	void *arg;
	struct event *timer;
	struct ub_result *ub; /* the raw rdata points into it */
	struct dns_result result;
	struct dns_rdata *raw;
	struct dns_mx *mx;
	struct dns_addr *addrs;
	struct dns_txt *txts;
	struct dns_ptr *ptrs;
	struct dns_tlsa *tlsas;
	char *txtbuf;
	char why[256];
	char canon[DNS_NAME_TEXT_SIZE];
	char name[DNS_HOST_SIZE + 1];
};

struct dns {
	struct event_base *base;
	struct ub_ctx *ctx;
	struct event *ub_ev;      /* ub_fd readable */
	struct event *deliver_ev; /* the ready queue is not empty */
	struct dns_lookup *table[DNS_BUCKETS];
	struct dns_lookup *all;
	struct dns_lookup *ready_head, *ready_tail;
	uint64_t next_id;
	unsigned timeout; /* seconds */
	struct metrics *metrics; /* NULL: lookups are not timed */
	bool validating;
	bool broken;     /* unbound's pipe failed: nothing more will come from it */
	bool delivering; /* inside dns_deliver_cb: dns_free must wait for it to return */
	bool dying;
	unsigned refs;
};

/* ---- bookkeeping ---- */

static void dns_table_add(struct dns *d, struct dns_lookup *l)
{
	struct dns_lookup **b = &d->table[l->id % DNS_BUCKETS];
	l->hnext = *b;
	*b = l;
	l->live = true;
}

static void dns_table_del(struct dns *d, struct dns_lookup *l)
{
	for (struct dns_lookup **p = &d->table[l->id % DNS_BUCKETS]; *p != NULL; p = &(*p)->hnext) {
		if (*p == l) {
			*p = l->hnext;
			break;
		}
	}
	l->hnext = NULL;
	l->live = false;
}

static struct dns_lookup *dns_table_find(struct dns *d, uint64_t id)
{
	for (struct dns_lookup *l = d->table[id % DNS_BUCKETS]; l != NULL; l = l->hnext)
		if (l->id == id)
			return l;
	return NULL;
}

static void dns_ready_push(struct dns *d, struct dns_lookup *l)
{
	if (l->timer != NULL)
		event_del(l->timer);
	l->queued = true;
	l->ready_next = NULL;
	l->ready_prev = d->ready_tail;
	if (d->ready_tail != NULL)
		d->ready_tail->ready_next = l;
	else
		d->ready_head = l;
	d->ready_tail = l;
	event_active(d->deliver_ev, EV_TIMEOUT, 0);
}

static void dns_ready_unlink(struct dns *d, struct dns_lookup *l)
{
	if (l->ready_prev != NULL)
		l->ready_prev->ready_next = l->ready_next;
	else
		d->ready_head = l->ready_next;
	if (l->ready_next != NULL)
		l->ready_next->ready_prev = l->ready_prev;
	else
		d->ready_tail = l->ready_prev;
	l->ready_prev = l->ready_next = NULL;
	l->queued = false;
}

static void dns_lookup_data_free(struct dns_lookup *l)
{
	free(l->raw);
	free(l->mx);
	free(l->addrs);
	free(l->txts);
	free(l->ptrs);
	free(l->tlsas);
	free(l->txtbuf);
	l->raw = NULL;
	l->mx = NULL;
	l->addrs = NULL;
	l->txts = NULL;
	l->ptrs = NULL;
	l->tlsas = NULL;
	l->txtbuf = NULL;
	if (l->ub != NULL)
		ub_resolve_free(l->ub);
	l->ub = NULL;
}

static void dns_lookup_destroy(struct dns *d, struct dns_lookup *l)
{
	if (l->all_prev != NULL)
		l->all_prev->all_next = l->all_next;
	else
		d->all = l->all_next;
	if (l->all_next != NULL)
		l->all_next->all_prev = l->all_prev;
	if (l->timer != NULL)
		event_free(l->timer);
	dns_lookup_data_free(l);
	free(l);
}

/* The user is done with l (delivered or cancelled): free it, or leave it to unbound as an orphan. */
static void dns_lookup_release(struct dns_lookup *l)
{
	struct dns *d = l->d;

	if (l->live)
		dns_table_del(d, l);
	if (l->queued)
		dns_ready_unlink(d, l);
	if (l->timer != NULL)
		event_del(l->timer);
	dns_lookup_data_free(l);
	if (l->in_unbound && ub_cancel(d->ctx, l->async_id) == UB_NOERROR)
		l->in_unbound = false;
	if (!l->in_unbound)
		dns_lookup_destroy(d, l);
}

/* ---- turning unbound's answer into a dns_result ---- */

static void dns_fail(struct dns_lookup *l, enum dns_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dns_fail(struct dns_lookup *l, enum dns_status status, const char *fmt, ...)
{
	va_list ap;

	/* the arguments may point into unbound's result: format before freeing it */
	va_start(ap, fmt);
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
	dns_lookup_data_free(l);
	memset(&l->result, 0, sizeof(l->result));
	l->result.status = status;
}

static const char *dns_rcode_str(int rcode)
{
	switch (rcode) {
	case 1: return "FORMERR";
	case DNS_RCODE_SERVFAIL: return "SERVFAIL";
	case DNS_RCODE_NOTIMP: return "NOTIMP";
	case DNS_RCODE_REFUSED: return "REFUSED";
	}
	return "an error";
}

/* Copies a presentation name from unbound without its trailing dot (the root stays "."). */
static void dns_canon_copy(char *out, size_t size, const char *name)
{
	size_t len = strnlen(name, size - 1);
	memcpy(out, name, len);
	if (len > 1 && out[len - 1] == '.' && out[len - 2] != '\\')
		len--;
	out[len] = '\0';
}

/* Parses every record of the answer; records that do not parse are counted and left out. */
static void dns_records_parse(struct dns_lookup *l, struct ub_result *res)
{
	size_t n = 0, txt_total = 0;
	const char *err;

	while (n < DNS_RECORDS_MAX && res->data[n] != NULL)
		n++;
	l->raw = calloc(n, sizeof(*l->raw));
	if (l->raw == NULL && n > 0)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		int len = res->len[i];
		l->raw[i].data = (const uint8_t *)res->data[i];
		l->raw[i].len = len > 0 ? (size_t)len : 0;
		txt_total += l->raw[i].len;
	}
	l->result.raw = l->raw;
	l->result.raw_count = n;

	switch (l->rrtype) {
	case DNS_RRTYPE_MX:
		if ((l->mx = calloc(n, sizeof(*l->mx))) == NULL && n > 0)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			if (dns_rdata_mx_parse(l->raw[i].data, l->raw[i].len, &l->mx[l->result.count], &err) == DNS_PARSE_OK)
				l->result.count++;
			else
				l->result.malformed++;
		}
		l->result.mx = l->mx;
		break;
	case DNS_RRTYPE_A:
	case DNS_RRTYPE_AAAA:
		if ((l->addrs = calloc(n, sizeof(*l->addrs))) == NULL && n > 0)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			enum dns_parse_error e = l->rrtype == DNS_RRTYPE_A
				? dns_rdata_a_parse(l->raw[i].data, l->raw[i].len, &l->addrs[l->result.count], &err)
				: dns_rdata_aaaa_parse(l->raw[i].data, l->raw[i].len, &l->addrs[l->result.count], &err);
			if (e == DNS_PARSE_OK)
				l->result.count++;
			else
				l->result.malformed++;
		}
		l->result.addrs = l->addrs;
		break;
	case DNS_RRTYPE_TXT:
		if ((l->txts = calloc(n, sizeof(*l->txts))) == NULL && n > 0)
			goto nomem;
		if ((l->txtbuf = malloc(txt_total + 1)) == NULL)
			goto nomem;
		for (size_t i = 0, off = 0; i < n; i++) {
			struct dns_txt *t = &l->txts[l->result.count];
			/* each record gets as many octets as its rdata: enough for the text and the NUL */
			if (dns_rdata_txt_parse(l->raw[i].data, l->raw[i].len, l->txtbuf + off, l->raw[i].len, &t->len,
						&err) == DNS_PARSE_OK) {
				t->text = l->txtbuf + off;
				l->result.count++;
			} else {
				l->result.malformed++;
			}
			off += l->raw[i].len;
		}
		l->result.txts = l->txts;
		break;
	case DNS_RRTYPE_TLSA:
		if ((l->tlsas = calloc(n, sizeof(*l->tlsas))) == NULL && n > 0)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			if (dns_rdata_tlsa_parse(l->raw[i].data, l->raw[i].len, &l->tlsas[l->result.count], &err) ==
			    DNS_PARSE_OK)
				l->result.count++;
			else
				l->result.malformed++;
		}
		l->result.tlsas = l->tlsas;
		break;
	case DNS_RRTYPE_PTR:
		if ((l->ptrs = calloc(n, sizeof(*l->ptrs))) == NULL && n > 0)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			if (dns_rdata_ptr_parse(l->raw[i].data, l->raw[i].len, &l->ptrs[l->result.count], &err) == DNS_PARSE_OK)
				l->result.count++;
			else
				l->result.malformed++;
		}
		l->result.ptrs = l->ptrs;
		break;
	default:
		l->result.count = n; /* other types: the caller reads raw */
		break;
	}
	return;
nomem:
	dns_fail(l, DNS_STATUS_TEMPFAIL, "out of memory");
}

static void dns_result_fill(struct dns_lookup *l, int err, struct ub_result *res)
{
	struct dns_result *r = &l->result;

	memset(r, 0, sizeof(*r));
	l->why[0] = '\0';
	if (err != 0 || res == NULL) {
		dns_fail(l, DNS_STATUS_TEMPFAIL, "resolver error: %s", ub_strerror(err));
		if (res != NULL)
			ub_resolve_free(res);
		return;
	}
	l->ub = res;
	r->secure = res->secure != 0;
	dns_canon_copy(l->canon, sizeof(l->canon), res->canonname != NULL ? res->canonname : l->name);
	if (res->bogus) {
		/* RFC 4035 §5.5: bogus data must not be used; another try may find the attack over */
		dns_fail(l, DNS_STATUS_BOGUS, "DNSSEC validation failed: %s",
			 res->why_bogus != NULL ? res->why_bogus : "bogus answer");
	} else if (res->havedata) {
		r->status = DNS_STATUS_OK;
		dns_records_parse(l, res);
		if (r->status == DNS_STATUS_OK && r->count == 0)
			dns_fail(l, DNS_STATUS_TEMPFAIL, "every %s record in the answer was malformed",
				 dns_rrtype_str(l->rrtype));
	} else if (res->nxdomain || res->rcode == DNS_RCODE_NXDOMAIN) {
		r->status = DNS_STATUS_NXDOMAIN;
	} else if (res->rcode == 0) {
		r->status = DNS_STATUS_NODATA;
	} else {
		/* unbound reports its own timeouts and unreachable servers as SERVFAIL too */
		dns_fail(l, DNS_STATUS_TEMPFAIL, "%s for %s/%s", dns_rcode_str(res->rcode), l->name,
			 dns_rrtype_str(l->rrtype));
	}
	r->secure = r->secure && (r->status == DNS_STATUS_OK || r->status == DNS_STATUS_NXDOMAIN ||
				  r->status == DNS_STATUS_NODATA);
}

/* The lookup has its answer (or its timeout): its time goes to the histogram. Cancelled lookups
 * and those that failed before reaching unbound are not timed. */
static void dns_lookup_timed(const struct dns_lookup *l)
{
	if (l->d->metrics != NULL)
		metrics_observe(l->d->metrics, METRICS_HIST_DNS_QUERY, metrics_now() - l->started);
}

/* unbound's callback, from inside ub_process on the loop thread */
static void dns_ub_done(void *mydata, int err, struct ub_result *res)
{
	struct dns_lookup *l = mydata;

	if (l == NULL) { /* the start-up query of dns_new */
		if (res != NULL)
			ub_resolve_free(res);
		return;
	}
	l->in_unbound = false;
	if (!l->live) { /* an orphan: its user is gone */
		if (res != NULL)
			ub_resolve_free(res);
		dns_lookup_destroy(l->d, l);
		return;
	}
	if (l->queued) { /* timed out already, and the cancel had failed */
		if (res != NULL)
			ub_resolve_free(res);
		return;
	}
	dns_lookup_timed(l);
	dns_result_fill(l, err, res);
	dns_ready_push(l->d, l);
}

static void dns_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *l = arg;

	(void)fd;
	(void)what;
	if (l->in_unbound && ub_cancel(l->d->ctx, l->async_id) == UB_NOERROR)
		l->in_unbound = false;
	dns_fail(l, DNS_STATUS_TEMPFAIL, "no answer for %s/%s within %u s", l->name, dns_rrtype_str(l->rrtype),
		 l->d->timeout);
	/* a timeout is a lookup's time too: leaving it out would make a failing resolver look fast */
	dns_lookup_timed(l);
	dns_ready_push(l->d, l);
}

static void dns_ub_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	(void)fd;
	(void)what;
	int rc = ub_process(d->ctx);
	if (rc != UB_NOERROR && !d->broken) {
		/* the pipe to unbound's thread is gone: stop polling it (it would stay readable); lookups
		 * still in flight end with their timers, new ones fail at once */
		char err[128];
		const char *e = ub_strerror(rc);
		log_error("event=dns_failed reason=unbound_process error=%s", log_safe(err, sizeof(err), e, (unsigned)strlen(e)));
		d->broken = true;
		event_del(d->ub_ev);
	}
}

static void dns_destroy(struct dns *d)
{
	if (d->ub_ev != NULL)
		event_free(d->ub_ev);
	if (d->deliver_ev != NULL)
		event_free(d->deliver_ev);
	/* stops and joins unbound's thread: from here on nothing holds a pointer to our lookups */
	if (d->ctx != NULL)
		ub_ctx_delete(d->ctx);
	while (d->all != NULL)
		dns_lookup_destroy(d, d->all);
	free(d);
}

static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_lookup *l;

	(void)fd;
	(void)what;
	d->delivering = true;
	while (!d->dying && (l = d->ready_head) != NULL) {
		dns_ready_unlink(d, l);
		dns_table_del(d, l); /* from now on dns_cancel(id) is a no-op */
		l->result.rrtype = l->rrtype;
		l->result.name = l->name;
		l->result.canonname = l->canon[0] != '\0' ? l->canon : l->name;
		l->result.why = l->why;
		l->done(l->arg, l->id, &l->result);
		dns_lookup_release(l);
	}
	d->delivering = false;
	if (d->dying)
		dns_destroy(d);
}

/* ---- public ---- */

struct dns *dns_new(struct event_base *base, const char *resolver, const char *trust_anchor_file,
		    struct metrics *metrics, char *error_r, size_t error_size)
{
	struct dns *d = calloc(1, sizeof(*d));
	char fwd[64];
	const char *perr;
	int rc, fd;

	if (d == NULL) {
		snprintf(error_r, error_size, "dns: out of memory");
		return NULL;
	}
	d->base = base;
	d->metrics = metrics;
	d->refs = 1;
	d->next_id = 1;
	d->timeout = DNS_TIMEOUT_DEFAULT;
	if ((d->ctx = ub_ctx_create()) == NULL) {
		snprintf(error_r, error_size, "dns: cannot create the resolver context");
		goto fail;
	}
	/* a thread, not a forked process: nothing of the server is copied, and ub_ctx_delete joins it */
	if ((rc = ub_ctx_async(d->ctx, 1)) != UB_NOERROR) {
		snprintf(error_r, error_size, "dns: %s", ub_strerror(rc));
		goto fail;
	}
	/* unbound's own log lines would break our one-line key=value log; results carry the reasons */
	ub_ctx_debugout(d->ctx, NULL);
	if (resolver == NULL || resolver[0] == '\0') {
		if ((rc = ub_ctx_resolvconf(d->ctx, NULL)) != UB_NOERROR) {
			snprintf(error_r, error_size, "dns: cannot use /etc/resolv.conf: %s%s%s", ub_strerror(rc),
				 rc == UB_READFILE ? ": " : "", rc == UB_READFILE ? strerror(errno) : "");
			goto fail;
		}
	} else {
		if (dns_resolver_parse(resolver, fwd, sizeof(fwd), &perr) != DNS_PARSE_OK) {
			snprintf(error_r, error_size, "dns: resolver %s: %s", resolver, perr);
			goto fail;
		}
		if ((rc = ub_ctx_set_fwd(d->ctx, fwd)) != UB_NOERROR) {
			snprintf(error_r, error_size, "dns: resolver %s: %s", resolver, ub_strerror(rc));
			goto fail;
		}
	}
	/* We only ever forward, to servers the administrator named (or the system's own, often
	 * 127.0.0.53 or a local unbound): unbound's default refuses loopback addresses. */
	if ((rc = ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no")) != UB_NOERROR) {
		snprintf(error_r, error_size, "dns: %s", ub_strerror(rc));
		goto fail;
	}
	if (trust_anchor_file != NULL && trust_anchor_file[0] != '\0') {
		FILE *f = fopen(trust_anchor_file, "r");
		if (f == NULL) {
			snprintf(error_r, error_size, "dns: trust anchor %s: %s", trust_anchor_file, strerror(errno));
			goto fail;
		}
		fclose(f);
		if ((rc = ub_ctx_add_ta_file(d->ctx, trust_anchor_file)) != UB_NOERROR) {
			snprintf(error_r, error_size, "dns: trust anchor %s: %s", trust_anchor_file, ub_strerror(rc));
			goto fail;
		}
		d->validating = true;
	}
	/* RFC 6761 §6.2: test. is for testing, and RFC 6303 reverse zones (loopback, private and
	 * documentation addresses) are for the local network, so unbound answers them itself by
	 * default; a resolver named in the configuration (a lab, a company resolver, a test fixture)
	 * gets to answer them: `mailwerk dns check` asks such PTRs. This applies the settings above:
	 * no configuration call may follow the first removal. Zones unbound does not hold are fine. */
	static const char *const local_reverse[] = {
		"127.in-addr.arpa.", "10.in-addr.arpa.", "168.192.in-addr.arpa.", "254.169.in-addr.arpa.",
		"2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.",
		"d.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
		"16.172.in-addr.arpa.", "17.172.in-addr.arpa.", "18.172.in-addr.arpa.", "19.172.in-addr.arpa.",
		"20.172.in-addr.arpa.", "21.172.in-addr.arpa.", "22.172.in-addr.arpa.", "23.172.in-addr.arpa.",
		"24.172.in-addr.arpa.", "25.172.in-addr.arpa.", "26.172.in-addr.arpa.", "27.172.in-addr.arpa.",
		"28.172.in-addr.arpa.", "29.172.in-addr.arpa.", "30.172.in-addr.arpa.", "31.172.in-addr.arpa.",
	};
	for (size_t i = 0; resolver != NULL && resolver[0] != '\0' && i < sizeof(local_reverse) / sizeof(local_reverse[0]); i++)
		ub_ctx_zone_remove(d->ctx, local_reverse[i]);
	if (resolver != NULL && resolver[0] != '\0' && (rc = ub_ctx_zone_remove(d->ctx, "test.")) != UB_NOERROR) {
		snprintf(error_r, error_size, "dns: cannot start the resolver%s%s: %s",
			 d->validating ? " with trust anchor " : "", d->validating ? trust_anchor_file : "",
			 ub_strerror(rc));
		goto fail;
	}
	if ((fd = ub_fd(d->ctx)) < 0) {
		snprintf(error_r, error_size, "dns: no result descriptor from unbound");
		goto fail;
	}
	d->ub_ev = event_new(base, fd, EV_READ | EV_PERSIST, dns_ub_readable, d);
	d->deliver_ev = event_new(base, -1, 0, dns_deliver_cb, d);
	if (d->ub_ev == NULL || d->deliver_ev == NULL || event_add(d->ub_ev, NULL) != 0) {
		snprintf(error_r, error_size, "dns: cannot add the resolver's event");
		goto fail;
	}
	/* Unbound applies its settings (trust anchors included) at the first resolve: do one now, for a
	 * name its built-in local zone answers without any traffic (RFC 6761 §6.3), so that a bad
	 * anchor file stops start-up instead of failing every later lookup. */
	if ((rc = ub_resolve_async(d->ctx, "localhost.", DNS_RRTYPE_A, DNS_CLASS_IN, NULL, dns_ub_done, NULL)) !=
	    UB_NOERROR) {
		snprintf(error_r, error_size, "dns: cannot start the resolver%s%s: %s",
			 d->validating ? " with trust anchor " : "", d->validating ? trust_anchor_file : "",
			 ub_strerror(rc));
		goto fail;
	}
	return d;
fail:
	dns_destroy(d);
	return NULL;
}

void dns_free(struct dns *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	/* no callback after this: drop every live lookup now */
	for (size_t i = 0; i < DNS_BUCKETS; i++)
		while (d->table[i] != NULL)
			dns_lookup_release(d->table[i]);
	if (d->delivering) {
		d->dying = true; /* dns_deliver_cb frees on its way out */
		return;
	}
	dns_destroy(d);
}

struct dns *dns_ref(struct dns *d)
{
	d->refs++;
	return d;
}

void dns_timeout_set(struct dns *d, unsigned seconds)
{
	d->timeout = seconds > 0 ? seconds : 1;
}

bool dns_validating(const struct dns *d)
{
	return d->validating;
}

struct event_base *dns_base(const struct dns *d)
{
	return d->base;
}

/* A name unbound will read literally: printable ASCII without spaces or backslashes (which unbound
 * would take as escapes), labels of 1-63 octets, at most 253 octets plus an optional trailing dot. */
static bool dns_name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_HOST_SIZE - 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (c <= ' ' || c >= 0x7f || c == '\\') {
			return false;
		} else if (++label > DNS_LABEL_MAX) {
			return false;
		}
	}
	return true;
}

uint64_t dns_lookup(struct dns *d, const char *name, int rrtype, dns_done_fn *done, void *arg)
{
	struct dns_lookup *l;
	int rc;

	if (!dns_name_ok(name) || rrtype <= 0 || rrtype > 65535)
		return 0;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return 0;
	l->d = d;
	l->id = d->next_id++;
	l->rrtype = rrtype;
	l->done = done;
	l->arg = arg;
	snprintf(l->name, sizeof(l->name), "%s", name);
	if ((l->timer = evtimer_new(d->base, dns_timeout_cb, l)) == NULL) {
		free(l);
		return 0;
	}
	l->all_next = d->all;
	if (d->all != NULL)
		d->all->all_prev = l;
	d->all = l;
	dns_table_add(d, l);

	if (d->broken) {
		dns_fail(l, DNS_STATUS_TEMPFAIL, "the resolver has stopped working");
		dns_ready_push(d, l);
		return l->id;
	}
	rc = ub_resolve_async(d->ctx, l->name, rrtype, DNS_CLASS_IN, l, dns_ub_done, &l->async_id);
	if (rc != UB_NOERROR) {
		dns_fail(l, DNS_STATUS_TEMPFAIL, "resolver error: %s", ub_strerror(rc));
		dns_ready_push(d, l);
		return l->id;
	}
	l->in_unbound = true;
	if (d->metrics != NULL)
		l->started = metrics_now();
	struct timeval tv = {.tv_sec = d->timeout};
	event_add(l->timer, &tv);
	return l->id;
}

void dns_cancel(struct dns *d, uint64_t id)
{
	struct dns_lookup *l = dns_table_find(d, id);
	if (l != NULL)
		dns_lookup_release(l);
}

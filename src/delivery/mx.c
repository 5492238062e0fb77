/* mx.c — owns MX resolution for outbound delivery (RFC 5321 §5.1): the MX lookup, the null-MX
 * test (RFC 7505), the implicit MX, the order of the hosts, and the A/AAAA lookups of each host,
 * which all run at once. The outcome is the three-way result of the product: a list of targets,
 * a deferral (any DNS trouble that may pass), or a permanent failure with its RFC 3463 code. */
#include "delivery/mx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "net/dns.h"

enum { MX_FAM_A = 0, MX_FAM_AAAA = 1, MX_FAM_COUNT = 2 };

struct mx_host {
	struct dns_mx mx;
	uint64_t lookup[MX_FAM_COUNT]; /* in flight; 0 when answered */
	enum dns_status status[MX_FAM_COUNT];
	bool secure[MX_FAM_COUNT];
	size_t naddr[MX_FAM_COUNT];
	struct dns_addr addrs[MX_FAM_COUNT][MX_ADDRS_MAX];
	char why[MX_FAM_COUNT][160];
};

struct mx_query {
	struct dns *dns;
	mx_done_fn *done;
	void *arg;
	struct event *finish_ev;
	uint64_t mx_lookup; /* in flight; 0 when answered */
	bool implicit;
	bool delivering;    /* inside done: mx_cancel is a no-op */
	unsigned pending;   /* address lookups in flight */
	size_t host_count;
	struct mx_host hosts[MX_HOSTS_MAX];
	struct mx_result result;
	char domain[DNS_HOST_SIZE]; /* a host name, or an address literal (much shorter) */
};

const char *mx_status_str(enum mx_status s)
{
	switch (s) {
	case MX_STATUS_OK: return "ok";
	case MX_STATUS_TEMPFAIL: return "tempfail";
	case MX_STATUS_NXDOMAIN: return "nxdomain";
	case MX_STATUS_NULL_MX: return "null_mx";
	case MX_STATUS_NO_ADDRESS: return "no_address";
	case MX_STATUS_BAD_DOMAIN: return "bad_domain";
	}
	return "?";
}

/* OpenSSL's CSPRNG: no RNG state of our own. Should it ever fail, 0 only means no shuffle, and the
 * preference order of RFC 5321 §5.1 still holds. */
static uint32_t mx_random(void *arg)
{
	uint32_t v = 0;

	(void)arg;
	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = 0;
	return v;
}

/* ---- finishing ---- */

static void mx_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mx_query *q = arg;

	(void)fd;
	(void)what;
	q->result.domain = q->domain;
	q->delivering = true;
	q->done(q->arg, &q->result);
	event_free(q->finish_ev);
	free(q);
}

/* The result is complete: deliver it from our own event, never from inside a caller's call. */
static void mx_finish(struct mx_query *q)
{
	event_active(q->finish_ev, EV_TIMEOUT, 0);
}

static void mx_fail(struct mx_query *q, enum mx_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void mx_fail(struct mx_query *q, enum mx_status status, const char *fmt, ...)
{
	va_list ap;
	struct mx_result *r = &q->result;

	r->status = status;
	r->count = 0;
	switch (status) {
	case MX_STATUS_OK: /* not a failure; kept for completeness */
		r->result = RESULT_OK;
		r->enhanced = "";
		break;
	case MX_STATUS_TEMPFAIL:
		/* RFC 3463 §3.5 X.4.3 "Directory server failure": never a bounce */
		r->result = RESULT_TEMPFAIL;
		r->enhanced = "4.4.3";
		break;
	case MX_STATUS_NULL_MX:
		/* RFC 7505 §4.1: fail at once, reply 556 with 5.1.10 "Recipient address has null MX" */
		r->result = RESULT_PERMFAIL;
		r->enhanced = "5.1.10";
		break;
	case MX_STATUS_NO_ADDRESS:
		/* RFC 3463 §3.5 X.4.4 "Unable to route" when MX hosts exist but none has an address;
		 * X.1.2 "Bad destination system address" when the domain itself has neither */
		r->result = RESULT_PERMFAIL;
		r->enhanced = q->implicit ? "5.1.2" : "5.4.4";
		break;
	case MX_STATUS_NXDOMAIN:
	case MX_STATUS_BAD_DOMAIN:
		r->result = RESULT_PERMFAIL;
		r->enhanced = "5.1.2"; /* RFC 3463 §3.2 X.1.2 "Bad destination system address" */
		break;
	}
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	mx_finish(q);
}

/* ---- address lookups ---- */

static bool mx_status_temporary(enum dns_status s)
{
	return s == DNS_STATUS_TEMPFAIL || s == DNS_STATUS_BOGUS;
}

/* Every address lookup has answered: the targets in MX order, each with A then AAAA addresses. */
static void mx_assemble(struct mx_query *q)
{
	struct mx_result *r = &q->result;
	const char *temp_host = NULL, *temp_why = NULL;

	r->count = 0;
	for (size_t i = 0; i < q->host_count; i++) {
		struct mx_host *h = &q->hosts[i];
		struct mx_target *t = &r->targets[r->count];
		bool temp = false;

		t->addr_count = 0;
		for (int f = 0; f < MX_FAM_COUNT; f++) {
			if (mx_status_temporary(h->status[f])) {
				temp = true;
				if (temp_host == NULL) {
					temp_host = h->mx.exchange;
					temp_why = h->why[f];
				}
			}
			for (size_t k = 0; k < h->naddr[f] && t->addr_count < MX_ADDRS_MAX; k++)
				t->addrs[t->addr_count++] = h->addrs[f][k];
		}
		if (temp)
			r->incomplete = true;
		if (t->addr_count == 0)
			continue;
		snprintf(t->host, sizeof(t->host), "%s", h->mx.exchange);
		t->pref = h->mx.pref;
		t->implicit = q->implicit;
		t->secure = h->secure[MX_FAM_A] && h->secure[MX_FAM_AAAA];
		r->count++;
	}
	if (r->count > 0) {
		r->status = MX_STATUS_OK;
		r->result = RESULT_OK;
		r->enhanced = "";
		snprintf(r->reason, sizeof(r->reason), "%zu host%s", r->count, r->count == 1 ? "" : "s");
		mx_finish(q);
		return;
	}
	/* no host has an address: defer if any lookup may succeed later */
	if (temp_host != NULL)
		mx_fail(q, MX_STATUS_TEMPFAIL, "temporary DNS failure looking up the address of %s: %s", temp_host,
			temp_why);
	else if (q->implicit)
		mx_fail(q, MX_STATUS_NO_ADDRESS, "%s has no MX, A or AAAA records (RFC 5321 §5.1)", q->domain);
	else if (q->host_count == 1)
		mx_fail(q, MX_STATUS_NO_ADDRESS, "the MX host of %s (%s) has no address", q->domain,
			q->hosts[0].mx.exchange);
	else
		mx_fail(q, MX_STATUS_NO_ADDRESS, "none of the %zu MX hosts of %s has an address", q->host_count,
			q->domain);
}

static void mx_on_addr(void *arg, uint64_t id, const struct dns_result *r)
{
	struct mx_query *q = arg;

	/* the callback finds its host by the lookup id */
	for (size_t i = 0; i < q->host_count; i++) {
		for (int f = 0; f < MX_FAM_COUNT; f++) {
			struct mx_host *h = &q->hosts[i];
			if (h->lookup[f] != id)
				continue;
			h->lookup[f] = 0;
			h->status[f] = r->status;
			h->secure[f] = r->secure;
			snprintf(h->why[f], sizeof(h->why[f]), "%s", r->why);
			if (r->status == DNS_STATUS_OK)
				for (size_t k = 0; k < r->count && h->naddr[f] < MX_ADDRS_MAX; k++)
					h->addrs[f][h->naddr[f]++] = r->addrs[k];
			if (--q->pending == 0)
				mx_assemble(q);
			return;
		}
	}
}

static void mx_addrs_start(struct mx_query *q)
{
	static const int types[MX_FAM_COUNT] = {DNS_RRTYPE_A, DNS_RRTYPE_AAAA};

	/* count first: an answer cannot arrive before we return (dns delivers from its own event) */
	q->pending = (unsigned)(q->host_count * MX_FAM_COUNT);
	for (size_t i = 0; i < q->host_count; i++) {
		struct mx_host *h = &q->hosts[i];
		for (int f = 0; f < MX_FAM_COUNT; f++) {
			h->lookup[f] = dns_lookup(q->dns, h->mx.exchange, types[f], mx_on_addr, q);
			if (h->lookup[f] == 0) {
				h->status[f] = DNS_STATUS_TEMPFAIL;
				snprintf(h->why[f], sizeof(h->why[f]), "cannot start the lookup (out of memory)");
				q->pending--;
			}
		}
	}
	if (q->pending == 0)
		mx_assemble(q);
}

/* ---- the MX lookup ---- */

static void mx_on_mx(void *arg, uint64_t id, const struct dns_result *r)
{
	struct mx_query *q = arg;

	(void)id;
	q->mx_lookup = 0;
	q->result.mx_secure = r->secure;
	switch (r->status) {
	case DNS_STATUS_TEMPFAIL:
	case DNS_STATUS_BOGUS:
		mx_fail(q, MX_STATUS_TEMPFAIL, "temporary DNS failure looking up the MX records of %s: %s", q->domain,
			r->why);
		return;
	case DNS_STATUS_NXDOMAIN:
		mx_fail(q, MX_STATUS_NXDOMAIN, "no such domain: %s", q->domain);
		return;
	case DNS_STATUS_NODATA:
		/* RFC 5321 §5.1: no MX records: the domain is its own (implicit) MX, preference 0. After a
		 * CNAME, "the resulting name is processed as if it were the initial name". */
		q->implicit = true;
		q->host_count = 1;
		snprintf(q->hosts[0].mx.exchange, sizeof(q->hosts[0].mx.exchange), "%s",
			 dns_host_valid(r->canonname) ? r->canonname : q->domain);
		q->hosts[0].mx.pref = 0;
		mx_addrs_start(q);
		return;
	case DNS_STATUS_OK:
		break;
	}

	/* RFC 7505 §3: a null MX says the domain accepts no mail; do not look further */
	if (dns_mx_is_null(r->mx, r->count)) {
		mx_fail(q, MX_STATUS_NULL_MX, "null MX: %s accepts no mail (RFC 7505)", q->domain);
		return;
	}
	struct dns_mx *mx = malloc(r->count * sizeof(*mx));
	if (mx == NULL) {
		mx_fail(q, MX_STATUS_TEMPFAIL, "out of memory");
		return;
	}
	memcpy(mx, r->mx, r->count * sizeof(*mx));
	size_t n = dns_mx_order(mx, r->count, mx_random, NULL);
	for (size_t i = 0; i < n && q->host_count < MX_HOSTS_MAX; i++) {
		/* RFC 7505 §3: "." may not be mixed with other MX records; skip it, use the hosts */
		if (strcmp(mx[i].exchange, ".") == 0)
			continue;
		q->hosts[q->host_count++].mx = mx[i];
	}
	free(mx);
	if (q->host_count == 0) {
		mx_fail(q, MX_STATUS_NO_ADDRESS, "the MX records of %s name no host", q->domain);
		return;
	}
	mx_addrs_start(q);
}

/* ---- public ---- */

static void mx_literal(struct mx_query *q)
{
	struct mx_target *t = &q->result.targets[0];
	const char *err;

	q->implicit = true;
	if (dns_addr_literal_parse(q->domain, &t->addrs[0], &err) != DNS_PARSE_OK) {
		mx_fail(q, MX_STATUS_BAD_DOMAIN, "%s: %s", q->domain, err);
		return;
	}
	/* RFC 5321 §5.1 names domains only; a literal is the one host to try, without DNS */
	snprintf(t->host, sizeof(t->host), "%s", q->domain);
	t->pref = 0;
	t->implicit = true;
	t->addr_count = 1;
	q->result.count = 1;
	q->result.status = MX_STATUS_OK;
	q->result.result = RESULT_OK;
	q->result.enhanced = "";
	snprintf(q->result.reason, sizeof(q->result.reason), "address literal");
	mx_finish(q);
}

static struct mx_query *mx_start(struct dns *d, const char *domain, bool host_only, mx_done_fn *done, void *arg)
{
	struct mx_query *q = calloc(1, sizeof(*q));
	size_t len = strlen(domain);

	if (q == NULL)
		return NULL;
	q->dns = d;
	q->done = done;
	q->arg = arg;
	if ((q->finish_ev = event_new(dns_base(d), -1, 0, mx_finish_cb, q)) == NULL) {
		free(q);
		return NULL;
	}
	q->result.enhanced = "";
	if (len >= sizeof(q->domain)) {
		snprintf(q->domain, sizeof(q->domain), "%.*s...", (int)(sizeof(q->domain) - 4), domain);
		mx_fail(q, MX_STATUS_BAD_DOMAIN, "domain name too long (RFC 5321 §4.5.3.1.2)");
		return q;
	}
	memcpy(q->domain, domain, len + 1);
	if (domain[0] == '[') {
		mx_literal(q);
		return q;
	}
	/* a domain is case-insensitive (RFC 1035 §2.3.3); one spelling in logs and lookups */
	for (size_t i = 0; i < len; i++)
		if (q->domain[i] >= 'A' && q->domain[i] <= 'Z')
			q->domain[i] = (char)(q->domain[i] + ('a' - 'A'));
	if (len > 1 && q->domain[len - 1] == '.')
		q->domain[--len] = '\0';
	if (!dns_host_valid(q->domain)) {
		bool utf8 = false;
		for (size_t i = 0; i < len; i++)
			utf8 = utf8 || (unsigned char)q->domain[i] >= 0x80;
		mx_fail(q, MX_STATUS_BAD_DOMAIN, utf8 ? "%s: internationalized domain names are not supported yet"
						      : "%s: not a valid domain name",
			q->domain);
		return q;
	}
	if (host_only) {
		/* the one host named, as if it were a domain's implicit MX */
		q->implicit = true;
		q->host_count = 1;
		snprintf(q->hosts[0].mx.exchange, sizeof(q->hosts[0].mx.exchange), "%s", q->domain);
		mx_addrs_start(q);
		return q;
	}
	if ((q->mx_lookup = dns_lookup(d, q->domain, DNS_RRTYPE_MX, mx_on_mx, q)) == 0)
		mx_fail(q, MX_STATUS_TEMPFAIL, "cannot start the MX lookup (out of memory)");
	return q;
}

struct mx_query *mx_resolve(struct dns *d, const char *domain, mx_done_fn *done, void *arg)
{
	return mx_start(d, domain, false, done, arg);
}

struct mx_query *mx_resolve_host(struct dns *d, const char *host, mx_done_fn *done, void *arg)
{
	return mx_start(d, host, true, done, arg);
}

void mx_cancel(struct mx_query *q)
{
	if (q == NULL || q->delivering)
		return;
	if (q->mx_lookup != 0)
		dns_cancel(q->dns, q->mx_lookup);
	for (size_t i = 0; i < q->host_count; i++)
		for (int f = 0; f < MX_FAM_COUNT; f++)
			if (q->hosts[i].lookup[f] != 0)
				dns_cancel(q->dns, q->hosts[i].lookup[f]);
	event_free(q->finish_ev);
	free(q);
}

/* fake_dns.c — the in-memory zone of the unit tests. */
#include "fake_dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct fake_rr {
	char name[DNS_HOST_SIZE + 1];
	int rrtype;
	char *data; /* TXT text, or the textual form of the other types */
	size_t len;
};

struct fake_dns {
	struct fake_rr *rr;
	size_t n;
	char (*timeouts)[DNS_HOST_SIZE + 1];
	size_t ntimeouts;
	char **log;
	size_t nlog;
	/* the last answer */
	struct dns_result res;
	char canon[DNS_HOST_SIZE + 1];
	struct dns_txt txts[64];
	struct dns_addr addrs[64];
	struct dns_mx mx[64];
	struct dns_ptr ptrs[64];
};

static void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size);
	if (q == NULL)
		abort();
	return q;
}

/* Names compare without case and without a trailing dot. */
static void name_norm(char *out, const char *in)
{
	size_t n = strlen(in);
	if (n > 0 && in[n - 1] == '.' && n > 1)
		n--;
	if (n > DNS_HOST_SIZE)
		n = DNS_HOST_SIZE;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
	out[n] = '\0';
}

struct fake_dns *fake_dns_new(void)
{
	struct fake_dns *z = calloc(1, sizeof(*z));
	if (z == NULL)
		abort();
	return z;
}

void fake_dns_log_clear(struct fake_dns *z)
{
	for (size_t i = 0; i < z->nlog; i++)
		free(z->log[i]);
	free(z->log);
	z->log = NULL;
	z->nlog = 0;
}

void fake_dns_free(struct fake_dns *z)
{
	if (z == NULL)
		return;
	for (size_t i = 0; i < z->n; i++)
		free(z->rr[i].data);
	free(z->rr);
	free(z->timeouts);
	fake_dns_log_clear(z);
	free(z);
}

void fake_dns_add_txt(struct fake_dns *z, const char *name, const char *text, size_t len)
{
	z->rr = xrealloc(z->rr, (z->n + 1) * sizeof(*z->rr));
	struct fake_rr *r = &z->rr[z->n++];
	name_norm(r->name, name);
	r->rrtype = DNS_RRTYPE_TXT;
	r->data = xrealloc(NULL, len + 1);
	memcpy(r->data, text, len);
	r->data[len] = '\0';
	r->len = len;
}

void fake_dns_add(struct fake_dns *z, const char *name, int rrtype, const char *data)
{
	fake_dns_add_txt(z, name, data, strlen(data));
	z->rr[z->n - 1].rrtype = rrtype;
}

void fake_dns_timeout(struct fake_dns *z, const char *name)
{
	z->timeouts = xrealloc(z->timeouts, (z->ntimeouts + 1) * sizeof(*z->timeouts));
	name_norm(z->timeouts[z->ntimeouts++], name);
}

static bool name_exists(const struct fake_dns *z, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < z->n; i++) {
		const char *rn = z->rr[i].name;
		size_t rl = strlen(rn);
		if (strcmp(rn, name) == 0 || (rl > n && rn[rl - n - 1] == '.' && strcmp(rn + rl - n, name) == 0))
			return true;
	}
	return false;
}

static bool name_times_out(const struct fake_dns *z, const char *name)
{
	for (size_t i = 0; i < z->ntimeouts; i++)
		if (strcmp(z->timeouts[i], name) == 0)
			return true;
	return false;
}

static const struct fake_rr *find(const struct fake_dns *z, const char *name, int rrtype, size_t after)
{
	for (size_t i = after; i < z->n; i++)
		if (z->rr[i].rrtype == rrtype && strcmp(z->rr[i].name, name) == 0)
			return &z->rr[i];
	return NULL;
}

static void fill(struct fake_dns *z, const struct fake_rr *r)
{
	size_t k = z->res.count;
	if (k >= 64)
		return;
	bool ok = true;
	switch (r->rrtype) {
	case DNS_RRTYPE_TXT:
		z->txts[k].text = r->data;
		z->txts[k].len = r->len;
		break;
	case DNS_RRTYPE_A:
		z->addrs[k].family = AF_INET;
		ok = inet_pton(AF_INET, r->data, z->addrs[k].bytes) == 1;
		break;
	case DNS_RRTYPE_AAAA:
		z->addrs[k].family = AF_INET6;
		ok = inet_pton(AF_INET6, r->data, z->addrs[k].bytes) == 1;
		break;
	case DNS_RRTYPE_MX: {
		unsigned pref = 0;
		char host[DNS_HOST_SIZE + 1] = "";
		ok = sscanf(r->data, "%u %253s", &pref, host) >= 1 && pref <= 65535;
		z->mx[k].pref = (uint16_t)pref;
		name_norm(z->mx[k].exchange, host[0] != '\0' ? host : ".");
		if (strcmp(host, ".") == 0)
			strcpy(z->mx[k].exchange, ".");
		break;
	}
	case DNS_RRTYPE_PTR:
		name_norm(z->ptrs[k].name, r->data);
		break;
	}
	if (ok)
		z->res.count++;
	else
		z->res.malformed++;
}

const struct dns_result *fake_dns_answer(struct fake_dns *z, const struct auth_query *q)
{
	char name[DNS_HOST_SIZE + 1];
	name_norm(name, q->name);

	char line[DNS_HOST_SIZE + 16];
	snprintf(line, sizeof(line), "%s %s", name, dns_rrtype_str(q->rrtype));
	z->log = xrealloc(z->log, (z->nlog + 1) * sizeof(*z->log));
	z->log[z->nlog++] = strdup(line);

	memset(&z->res, 0, sizeof(z->res));
	z->res.rrtype = q->rrtype;
	z->res.name = q->name;
	z->res.why = "";
	z->res.txts = z->txts;
	z->res.addrs = z->addrs;
	z->res.mx = z->mx;
	z->res.ptrs = z->ptrs;

	/* RFC 1034 §3.6.2: a resolver follows CNAMEs (a few hops, as real ones bound the chain) */
	for (int hop = 0; hop < 8 && q->rrtype != DNS_RRTYPE_CNAME; hop++) {
		const struct fake_rr *c = find(z, name, DNS_RRTYPE_CNAME, 0);
		if (c == NULL)
			break;
		name_norm(name, c->data);
	}
	snprintf(z->canon, sizeof(z->canon), "%s", name);
	z->res.canonname = z->canon;

	for (const struct fake_rr *r = find(z, name, q->rrtype, 0); r != NULL;
	     r = find(z, name, q->rrtype, (size_t)(r - z->rr) + 1))
		fill(z, r);
	if (z->res.count > 0 || z->res.malformed > 0) {
		z->res.status = DNS_STATUS_OK;
		z->res.raw_count = z->res.count + z->res.malformed;
	} else if (name_times_out(z, name)) {
		z->res.status = DNS_STATUS_TEMPFAIL;
		z->res.why = "timed out (test zone)";
	} else if (name_exists(z, name)) {
		z->res.status = DNS_STATUS_NODATA;
	} else {
		z->res.status = DNS_STATUS_NXDOMAIN;
	}
	return &z->res;
}

unsigned fake_dns_run(struct fake_dns *z, auth_step_fn *step, void *eval)
{
	struct auth_query q;
	unsigned asked = 0;
	enum auth_step s = step(eval, NULL, &q);
	while (s == AUTH_STEP_QUERY && asked <= 1000) {
		asked++;
		s = step(eval, fake_dns_answer(z, &q), &q);
	}
	return asked;
}

size_t fake_dns_log_count(const struct fake_dns *z)
{
	return z->nlog;
}

const char *fake_dns_log(const struct fake_dns *z, size_t i)
{
	return i < z->nlog ? z->log[i] : NULL;
}

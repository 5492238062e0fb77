/* mtasts_fetch.c — one MTA-STS policy fetch: the policy host's addresses, then the HTTPS GET
 * (mtasts_fetch.h). */
#include "delivery/mtasts_fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "delivery/mtasts_rules.h"
#include "net/dns.h"
#include "net/http_client.h"
#include "net/http_url.h"
#include "util/date.h"

struct mtasts_fetch {
	struct mtasts_fetch_opts o;
	char ca_file[1024];
	char domain[DNS_HOST_SIZE];
	char host[DNS_HOST_SIZE + 8]; /* mta-sts.DOMAIN */
	mtasts_fetch_done_fn *done;
	void *arg;
	int64_t started_ms, deadline_ms;
	struct event *timer;
	uint64_t q[2]; /* A, AAAA lookups still running (0: done) */
	bool dns_failed;
	char dns_why[200];
	struct dns_addr addrs[MTASTS_FETCH_ADDRS_MAX];
	size_t naddrs;
	unsigned private_dropped;
	struct http_client_req *req;
	struct mtasts_policy policy;
	char why[512];
};

const char *mtasts_fetch_error_str(enum mtasts_fetch_error e)
{
	switch (e) {
	case MTASTS_FETCH_OK: return "ok";
	case MTASTS_FETCH_DNS: return "dns_error";
	case MTASTS_FETCH_NO_ADDRESS: return "no_address";
	case MTASTS_FETCH_PRIVATE: return "private_address";
	case MTASTS_FETCH_HTTP: return "http_error";
	case MTASTS_FETCH_STATUS: return "http_status";
	case MTASTS_FETCH_CONTENT_TYPE: return "content_type";
	case MTASTS_FETCH_TOO_LARGE: return "too_large";
	case MTASTS_FETCH_POLICY: return "policy_invalid";
	case MTASTS_FETCH_TIMEOUT: return "timeout";
	}
	return "?";
}

static void fetch_free(struct mtasts_fetch *f)
{
	for (int i = 0; i < 2; i++)
		if (f->q[i] != 0)
			dns_cancel(f->o.dns, f->q[i]);
	if (f->req != NULL)
		http_client_cancel(f->o.http, f->req);
	if (f->timer != NULL)
		event_free(f->timer);
	free(f);
}

void mtasts_fetch_cancel(struct mtasts_fetch *f)
{
	if (f != NULL)
		fetch_free(f);
}

/* Ends the fetch: done is called, then f is freed. */
static void fetch_end(struct mtasts_fetch *f, enum mtasts_fetch_error e, long status, const char *text, size_t len)
{
	struct mtasts_fetch_result r = {
		.error = e,
		.why = e == MTASTS_FETCH_OK ? "" : f->why,
		.status = status,
		.policy = e == MTASTS_FETCH_OK ? &f->policy : NULL,
		.text = e == MTASTS_FETCH_OK ? text : NULL,
		.text_len = e == MTASTS_FETCH_OK ? len : 0,
		.elapsed_ms = (unsigned)(date_mono_ms() - f->started_ms),
	};
	/* what runs still is stopped before done, so that done may start another fetch at once */
	for (int i = 0; i < 2; i++)
		if (f->q[i] != 0)
			dns_cancel(f->o.dns, f->q[i]);
	f->q[0] = f->q[1] = 0;
	if (f->req != NULL)
		http_client_cancel(f->o.http, f->req);
	f->req = NULL;
	f->done(f->arg, &r);
	fetch_free(f);
}

static void fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mtasts_fetch *f = arg;
	snprintf(f->why, sizeof(f->why), "the fetch of https://%s/.well-known/mta-sts.txt took longer than %u ms",
		 f->host, f->o.timeout_ms);
	fetch_end(f, MTASTS_FETCH_TIMEOUT, 0, NULL, 0);
}

static void fetch_got(void *arg, const struct http_client_result *r)
{
	struct mtasts_fetch *f = arg;
	f->req = NULL; /* ended: not to be cancelled */
	enum mtasts_fetch_error e = MTASTS_FETCH_OK;
	if (r->status == 0) {
		snprintf(f->why, sizeof(f->why), "https://%s/: %s", f->host, r->error != NULL ? r->error : "no answer");
		e = MTASTS_FETCH_HTTP;
	} else if (r->status != 200) {
		/* §3.3: only 200 is a policy; a redirect is not followed (http_client: no_redirects) */
		snprintf(f->why, sizeof(f->why), "https://%s/.well-known/mta-sts.txt answered %ld%s", f->host, r->status,
			 r->status >= 300 && r->status < 400 ? " (a redirect, which RFC 8461 §3.3 forbids following)" : "");
		e = MTASTS_FETCH_STATUS;
	} else if (r->truncated) {
		snprintf(f->why, sizeof(f->why), "the policy is larger than %d octets", MTASTS_POLICY_MAX);
		e = MTASTS_FETCH_TOO_LARGE;
	} else if (r->error != NULL || r->data == NULL) {
		snprintf(f->why, sizeof(f->why), "https://%s/: %s", f->host, r->error != NULL ? r->error : "no body");
		e = MTASTS_FETCH_HTTP;
	} else if (!mtasts_content_type_ok(r->content_type)) {
		snprintf(f->why, sizeof(f->why), "the policy came as \"%.100s\", not text/plain (RFC 8461 §3.2)",
			 r->content_type != NULL ? r->content_type : "");
		e = MTASTS_FETCH_CONTENT_TYPE;
	} else {
		const char *perr = "";
		enum mtasts_error pe = mtasts_policy_parse(r->data, r->data_len, &f->policy, &perr);
		if (pe != MTASTS_OK) {
			snprintf(f->why, sizeof(f->why), "the policy is not valid (%s, line %u): %s", mtasts_error_str(pe),
				 f->policy.line, perr);
			e = MTASTS_FETCH_POLICY;
		}
	}
	fetch_end(f, e, r->status, r->data, r->data_len);
	free(r->data); /* ours (http_client.h); fetch_end's callback has copied what it keeps */
}

/* Both address lookups have answered: the GET, or the end. */
static void fetch_connect(struct mtasts_fetch *f)
{
	if (f->naddrs == 0) {
		if (f->private_dropped > 0) {
			snprintf(f->why, sizeof(f->why),
				 "%s has only addresses that are not public (%u), and [delivery] mta_sts_allow_private is off",
				 f->host, f->private_dropped);
			fetch_end(f, MTASTS_FETCH_PRIVATE, 0, NULL, 0);
		} else if (f->dns_failed) {
			snprintf(f->why, sizeof(f->why), "%s: %.180s", f->host, f->dns_why);
			fetch_end(f, MTASTS_FETCH_DNS, 0, NULL, 0);
		} else {
			snprintf(f->why, sizeof(f->why), "%s has no address", f->host);
			fetch_end(f, MTASTS_FETCH_NO_ADDRESS, 0, NULL, 0);
		}
		return;
	}
	/* "HOST:443:ADDR,[ADDR6]" for CURLOPT_RESOLVE: libcurl connects to these and asks no resolver */
	char resolve[DNS_HOST_SIZE + 16 + MTASTS_FETCH_ADDRS_MAX * (INET6_ADDRSTRLEN + 3)];
	size_t len = (size_t)snprintf(resolve, sizeof(resolve), "%s:443:", f->host);
	for (size_t i = 0; i < f->naddrs && len < sizeof(resolve); i++) {
		char text[INET6_ADDRSTRLEN];
		inet_ntop(f->addrs[i].family, f->addrs[i].bytes, text, sizeof(text));
		bool v6 = f->addrs[i].family == AF_INET6;
		len += (size_t)snprintf(resolve + len, sizeof(resolve) - len, "%s%s%s%s", i > 0 ? "," : "", v6 ? "[" : "",
					text, v6 ? "]" : "");
	}
	int64_t left = f->deadline_ms - date_mono_ms();
	if (left < 1)
		left = 1;
	char url[DNS_HOST_SIZE + 64];
	snprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt", f->host);
	struct http_client_opts ho = {
		.timeout_ms = (unsigned)left,
		.allow_private = f->o.allow_private,
		.private_setting = "[delivery] mta_sts_allow_private",
		.ca_file = f->ca_file,
		.resolve = resolve,
		.no_redirects = true,
	};
	char err[256];
	if (http_client_get(f->o.http, url, MTASTS_POLICY_MAX, &ho, fetch_got, f, &f->req, err, sizeof(err)) != 0) {
		snprintf(f->why, sizeof(f->why), "%s", err);
		f->req = NULL;
		fetch_end(f, MTASTS_FETCH_HTTP, 0, NULL, 0);
	}
}

static void fetch_addr_cb(void *arg, uint64_t id, const struct dns_result *r)
{
	struct mtasts_fetch *f = arg;
	int slot = f->q[0] == id ? 0 : 1;
	f->q[slot] = 0;
	if (r->status == DNS_STATUS_TEMPFAIL || r->status == DNS_STATUS_BOGUS) {
		f->dns_failed = true;
		snprintf(f->dns_why, sizeof(f->dns_why), "%s lookup failed: %s", dns_rrtype_str(r->rrtype), r->why);
	}
	for (size_t i = 0; r->status == DNS_STATUS_OK && i < r->count && f->naddrs < MTASTS_FETCH_ADDRS_MAX; i++) {
		struct sockaddr_storage ss = {0};
		if (r->addrs[i].family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, r->addrs[i].bytes, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, r->addrs[i].bytes, 16);
		}
		/* the SSRF rule, applied before libcurl is told of the address (and again by it at connect) */
		if (!f->o.allow_private && http_url_addr_classify((struct sockaddr *)&ss) != HTTP_URL_ADDR_PUBLIC) {
			f->private_dropped++;
			continue;
		}
		f->addrs[f->naddrs++] = r->addrs[i];
	}
	if (f->q[0] == 0 && f->q[1] == 0)
		fetch_connect(f);
}

struct mtasts_fetch *mtasts_fetch_start(const struct mtasts_fetch_opts *o, const char *domain,
					mtasts_fetch_done_fn *done, void *arg, char *error, size_t error_size)
{
	if (!dns_host_valid(domain) || strlen(domain) + 8 >= DNS_HOST_SIZE) {
		snprintf(error, error_size, "not a domain whose policy host has a name: %.100s", domain);
		return NULL;
	}
	struct mtasts_fetch *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	f->o = *o;
	snprintf(f->ca_file, sizeof(f->ca_file), "%s", o->ca_file != NULL ? o->ca_file : "");
	f->o.ca_file = NULL;
	snprintf(f->domain, sizeof(f->domain), "%s", domain);
	/* RFC 8461 §3.3: the policy host is "mta-sts" prepended to the Policy Domain */
	snprintf(f->host, sizeof(f->host), "mta-sts.%s", domain);
	f->done = done;
	f->arg = arg;
	f->started_ms = date_mono_ms();
	f->deadline_ms = f->started_ms + o->timeout_ms;
	f->timer = evtimer_new(dns_base(o->dns), fetch_timeout_cb, f);
	struct timeval tv = {.tv_sec = o->timeout_ms / 1000, .tv_usec = (o->timeout_ms % 1000) * 1000};
	if (f->timer == NULL || evtimer_add(f->timer, &tv) != 0 ||
	    (f->q[0] = dns_lookup(o->dns, f->host, DNS_RRTYPE_A, fetch_addr_cb, f)) == 0 ||
	    (f->q[1] = dns_lookup(o->dns, f->host, DNS_RRTYPE_AAAA, fetch_addr_cb, f)) == 0) {
		fetch_free(f);
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	return f;
}

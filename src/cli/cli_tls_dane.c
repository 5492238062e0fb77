/* cli_tls_dane.c — the DANE part of `mailwerk tls check` (cli_tls_dane.h): the MX hosts as delivery
 * resolves them (delivery/mx.h, with the DNSSEC state of each answer), the TLSA lookup exactly when
 * delivery would make it (host_tls_wants_tlsa), the decision from host_tls_decide with the inputs
 * the pool gives it, and, with --probe, a STARTTLS handshake set up like the SMTP client's
 * (delivery_client_tls_ctx_new, delivery_dane_setup) whose verification OpenSSL does. The probe is
 * a command-line tool's blocking connection, bounded by a timeout on every step; the server never
 * runs it. Replies are read with the SMTP client's own parser (delivery/client_parse.h). */
#include "cli/cli_tls_dane.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli/cli_common.h"
#include "cli/cli_dns.h"
#include "conf/conf.h"
#include "delivery/client.h"
#include "delivery/client_parse.h"
#include "delivery/dane.h"
#include "delivery/host_tls.h"
#include "delivery/mx.h"
#include "net/dns.h"
#include "net/tls.h"

#define PROBE_TIMEOUT_MS 15000

/* Prints text from the network or from a certificate with anything unprintable as '?'. */
static void print_safe(const char *s)
{
	for (; *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f ? '?' : *s);
}

/* ---- waiting on the CLI's loop ---- */

struct dane_mx_wait {
	struct event_base *base;
	bool done;
	struct mx_result r;
};

static void dane_mx_done(void *arg, const struct mx_result *r)
{
	struct dane_mx_wait *w = arg;
	w->r = *r;
	w->done = true;
	event_base_loopbreak(w->base);
}

struct dane_tlsa_wait {
	struct event_base *base;
	bool done;
	const struct host_tls_params *hp;
	struct host_tls *h; /* decided inside the callback, where the answer is valid */
	enum dns_status status;
	bool secure;
	char why[256];
	size_t count;
	struct dns_tlsa records[16]; /* the first ones, for the listing; data in h->data */
};

static void dane_tlsa_done(void *arg, uint64_t id, const struct dns_result *r)
{
	struct dane_tlsa_wait *w = arg;
	(void)id;
	w->h = host_tls_decide(w->hp, r);
	w->status = r->status;
	w->secure = r->secure;
	snprintf(w->why, sizeof(w->why), "%s", r->why != NULL ? r->why : "");
	w->done = true;
	event_base_loopbreak(w->base);
}

/* The DNSSEC state of one answer, asked again (unbound answers from its cache): delivery's
 * mx_result keeps only "secure or not", and a bogus answer is worth telling apart. */
struct dane_state_wait {
	struct event_base *base;
	bool done;
	enum dns_status status;
	bool secure;
};

static void dane_state_done(void *arg, uint64_t id, const struct dns_result *r)
{
	struct dane_state_wait *w = arg;
	(void)id;
	w->status = r->status;
	w->secure = r->secure;
	w->done = true;
	event_base_loopbreak(w->base);
}

/* "secure", "insecure", "bogus" or "lookup failed" for name/rrtype. */
static const char *dane_state(struct cli_dns *d, const char *name, int rrtype)
{
	if (!dns_validating(d->dns))
		return "not validated";
	struct dane_state_wait w = {.base = d->base};
	if (dns_lookup(d->dns, name, rrtype, dane_state_done, &w) == 0)
		return "lookup failed";
	while (!w.done)
		event_base_loop(d->base, EVLOOP_ONCE);
	return w.status == DNS_STATUS_BOGUS ? "bogus" : w.status == DNS_STATUS_TEMPFAIL ? "lookup failed"
					 : w.secure                  ? "secure"
									 : "insecure";
}

/* ---- the probe ---- */

struct probe {
	int fd;
	char buf[DELIVERY_REPLY_LINE_MAX * 4];
	size_t len;
	char error[300];
};

static bool probe_wait(struct probe *p, short events)
{
	struct pollfd pfd = {.fd = p->fd, .events = events};
	int n = poll(&pfd, 1, PROBE_TIMEOUT_MS);
	if (n <= 0) {
		snprintf(p->error, sizeof(p->error), "%s", n == 0 ? "timed out" : strerror(errno));
		return false;
	}
	return true;
}

static bool probe_connect(struct probe *p, const struct dns_addr *a, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, a->bytes, 4);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, a->bytes, 16);
		sl = sizeof(*s6);
	}
	if ((p->fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		snprintf(p->error, sizeof(p->error), "socket: %s", strerror(errno));
		return false;
	}
	if (connect(p->fd, (struct sockaddr *)&ss, sl) != 0) {
		if (errno != EINPROGRESS) {
			snprintf(p->error, sizeof(p->error), "connect: %s", strerror(errno));
			return false;
		}
		int err = 0;
		socklen_t el = sizeof(err);
		if (!probe_wait(p, POLLOUT))
			return false;
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
			snprintf(p->error, sizeof(p->error), "connect: %s", strerror(err != 0 ? err : errno));
			return false;
		}
	}
	return true;
}

/* One reply in r (EHLO keywords into e when given). false with p->error. */
static bool probe_reply(struct probe *p, struct delivery_reply *r, struct delivery_ehlo *e)
{
	delivery_reply_init(r);
	for (;;) {
		size_t used = 0;
		const char *err = NULL;
		enum delivery_reply_status st = delivery_reply_feed(r, p->buf, p->len, &used, &err);
		if (st == DELIVERY_REPLY_LINE || st == DELIVERY_REPLY_DONE) {
			if (e != NULL)
				delivery_ehlo_line(e, r->line, r->line_len);
			memmove(p->buf, p->buf + used, p->len - used);
			p->len -= used;
			if (st == DELIVERY_REPLY_DONE)
				return true;
			continue;
		}
		if (st != DELIVERY_REPLY_MORE) {
			snprintf(p->error, sizeof(p->error), "a broken reply (%s)", err != NULL ? err : delivery_reply_status_str(st));
			return false;
		}
		if (p->len == sizeof(p->buf)) {
			snprintf(p->error, sizeof(p->error), "a reply line too long");
			return false;
		}
		if (!probe_wait(p, POLLIN))
			return false;
		ssize_t n = recv(p->fd, p->buf + p->len, sizeof(p->buf) - p->len, 0);
		if (n <= 0) {
			snprintf(p->error, sizeof(p->error), "%s", n == 0 ? "the server closed the connection" : strerror(errno));
			return false;
		}
		p->len += (size_t)n;
	}
}

static bool probe_send(struct probe *p, const char *line)
{
	size_t len = strlen(line), off = 0;
	while (off < len) {
		if (!probe_wait(p, POLLOUT))
			return false;
		ssize_t n = send(p->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(p->error, sizeof(p->error), "send: %s", strerror(errno));
			return false;
		}
		off += n > 0 ? (size_t)n : 0;
	}
	return true;
}

/* A blocking SSL_connect on the non-blocking socket, each wait bounded. */
static bool probe_handshake(struct probe *p, SSL *ssl)
{
	for (;;) {
		int rc = SSL_connect(ssl);
		if (rc == 1)
			return true;
		int e = SSL_get_error(ssl, rc);
		if ((e == SSL_ERROR_WANT_READ && probe_wait(p, POLLIN)) || (e == SSL_ERROR_WANT_WRITE && probe_wait(p, POLLOUT)))
			continue;
		if (p->error[0] == '\0') {
			unsigned long oe = ERR_get_error();
			snprintf(p->error, sizeof(p->error), "TLS handshake failed: %s",
				 oe != 0 ? ERR_reason_error_string(oe) : "the connection ended");
		}
		return false;
	}
}

/* What the handshake showed: the version, whether the chain verified the way the policy asks (DANE
 * records or names), the record that matched, and the certificate's names and dates. */
static void probe_report(SSL *ssl, const struct host_tls *h)
{
	long v = SSL_get_verify_result(ssl);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	printf("  probe: TLS %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	bool dane = h->decision.action == TLS_DECIDE_DANE;
	bool checked = dane || h->decision.action == TLS_DECIDE_VERIFY;
	if (peer == NULL)
		printf("  probe: no certificate\n");
	else if (!checked)
		printf("  probe: certificate not checked (the policy does not ask; verify result: %s)\n",
		       v == X509_V_OK ? "ok" : X509_verify_cert_error_string(v));
	else if (v != X509_V_OK)
		printf("  probe: verified=no (%s)%s\n", X509_verify_cert_error_string(v),
		       dane ? ": the chain matches no usable TLSA record" : "");
	else if (dane) {
		char m[64];
		delivery_dane_matched(ssl, m, sizeof(m));
		printf("  probe: verified=yes dane=\"%s\"\n", m);
	} else
		printf("  probe: verified=yes (names)\n");
	struct tls_cert_info ci;
	if (peer != NULL && tls_cert_info_of(peer, &ci)) {
		char na[32];
		time_t t = (time_t)ci.not_after;
		struct tm tm;
		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		printf("  certificate: subject=\"");
		print_safe(ci.subject);
		printf("\" names=\"");
		print_safe(ci.names);
		printf("\" issuer=\"");
		print_safe(ci.issuer);
		printf("\" not_after=%s days_left=%lld\n", na, (long long)tls_cert_days_left(ci.not_after, (int64_t)time(NULL)));
	}
}

/* Connects to the host's first address, STARTTLS (RFC 3207), a handshake set up as the SMTP client
 * sets up its own for this decision. true when it went as the decision needs. */
static bool probe_host(const struct conf *c, const struct mx_target *t, const struct host_tls *h, SSL_CTX *ctx)
{
	struct probe p = {.fd = -1};
	char ip[INET6_ADDRSTRLEN], line[600];
	inet_ntop(t->addrs[0].family, t->addrs[0].bytes, ip, sizeof(ip));
	printf("  probe %s port %u:\n", ip, c->remote_port);
	bool need_tls = h->decision.action >= TLS_DECIDE_ENCRYPT;
	bool need_auth = h->decision.action == TLS_DECIDE_DANE || h->decision.action == TLS_DECIDE_VERIFY;
	bool ok = false;
	SSL *ssl = NULL;
	struct delivery_reply r;
	struct delivery_ehlo e;
	delivery_ehlo_init(&e);
	if (!probe_connect(&p, &t->addrs[0], c->remote_port) || !probe_reply(&p, &r, NULL))
		goto out;
	if (r.code != 220) {
		snprintf(p.error, sizeof(p.error), "greeting %d %.200s", r.code, r.text);
		goto out;
	}
	snprintf(line, sizeof(line), "EHLO %s\r\n", c->hostname);
	if (!probe_send(&p, line) || !probe_reply(&p, &r, &e))
		goto out;
	if (r.code != 250 || !e.starttls) {
		snprintf(p.error, sizeof(p.error), "%s", r.code != 250 ? "EHLO refused" : "STARTTLS is not offered");
		goto out;
	}
	if (!probe_send(&p, "STARTTLS\r\n") || !probe_reply(&p, &r, NULL))
		goto out;
	if (r.code != 220) {
		snprintf(p.error, sizeof(p.error), "STARTTLS answered %d %.200s", r.code, r.text);
		goto out;
	}
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, p.fd) != 1) {
		snprintf(p.error, sizeof(p.error), "cannot set up TLS");
		goto out;
	}
	SSL_set_tlsext_host_name(ssl, t->host);
	/* the handshake goes on whatever the chain is, so that the result can be shown; the client
	 * itself sets SSL_VERIFY_PEER when the policy asks for authentication */
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	if (h->decision.action == TLS_DECIDE_DANE) {
		char why[128];
		const char *names[TLS_DECIDE_NAMES_MAX];
		size_t n = 0;
		for (; n < h->decision.name_count && n < TLS_DECIDE_NAMES_MAX; n++)
			names[n] = h->decision.names[n];
		int usable = delivery_dane_setup(ssl, h->dane, h->dane_count, names, n, why, sizeof(why));
		if (usable <= 0) {
			snprintf(p.error, sizeof(p.error), "DANE: %s", usable == 0 ? "no usable TLSA record" : why);
			goto out;
		}
	} else {
		X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(ssl, t->host);
	}
	if (!probe_handshake(&p, ssl))
		goto out;
	probe_report(ssl, h);
	ok = !need_auth || SSL_get_verify_result(ssl) == X509_V_OK;
	SSL_shutdown(ssl);
out:
	if (p.error[0] != '\0')
		printf("  probe: failed: %s\n", p.error);
	if (!need_tls && ssl == NULL && strcmp(p.error, "STARTTLS is not offered") == 0)
		ok = true; /* opportunistic: delivery would go on without TLS */
	if (p.fd >= 0 && ssl == NULL)
		probe_send(&p, "QUIT\r\n");
	SSL_free(ssl);
	if (p.fd >= 0)
		close(p.fd);
	return ok;
}

/* ---- the listing ---- */

static void print_tlsa_records(const struct host_tls *h)
{
	for (size_t i = 0; i < h->record_count; i++) {
		const struct dns_tlsa *t = &h->records[i];
		char text[16 + 2 * 32];
		dns_tlsa_text(t, 32, text, sizeof(text));
		printf("    TLSA %s%s: %s\n", text, t->len > 32 ? "..." : "",
		       tls_decide_tlsa_usable(t) ? "usable"
		       : t->usage < 2            ? "unusable (PKIX usages are not for SMTP, RFC 7672 §3.1.3)"
						 : "unusable (unknown selector or matching type, or a wrong length)");
	}
}

static void dane_host(struct cli_dns *d, const char *domain, const struct cli_tls_sts *sts, const struct mx_result *mr,
		      const struct mx_target *t, bool probe, SSL_CTX *ctx, struct cli_tls_dane_outcome *out)
{
	const struct conf *c = d->conf;
	bool validating = dns_validating(d->dns);
	printf("DANE MX %s (pref %u):", t->host, t->pref);
	for (size_t i = 0; i < t->addr_count; i++) {
		char ip[INET6_ADDRSTRLEN];
		inet_ntop(t->addrs[i].family, t->addrs[i].bytes, ip, sizeof(ip));
		printf(" %s", ip);
	}
	/* delivery counts the host secure when its A and AAAA answers both are (mx.h) */
	const char *a4 = dane_state(d, t->host, DNS_RRTYPE_A), *a6 = dane_state(d, t->host, DNS_RRTYPE_AAAA);
	const char *addr = !validating                                       ? "not validated"
			   : strcmp(a4, "bogus") == 0 || strcmp(a6, "bogus") == 0 ? "bogus"
			   : t->secure                                            ? "secure"
										  : "insecure";
	printf(" address=%s (A %s, AAAA %s)\n", addr, a4, a6);
	/* the parameters as the pool builds them (pool_host_params) */
	struct host_tls_params hp = {
		.host = t->host,
		.literal = t->host[0] == '[',
		.validating = validating,
		.mx_secure = mr->mx_secure,
		.addr_secure = t->secure,
		.port = c->remote_port,
		.global = c->delivery_tls,
		.override = conf_tls_override_lookup(c->tls_policies, c->tls_policy_count, domain),
		.sts_state = sts->state,
		.sts = sts->policy,
	};
	char name[DNS_HOST_SIZE + 16];
	struct dane_tlsa_wait w = {.base = d->base, .hp = &hp};
	if (host_tls_wants_tlsa(&hp, name, sizeof(name))) {
		if (dns_lookup(d->dns, name, DNS_RRTYPE_TLSA, dane_tlsa_done, &w) == 0) {
			struct dns_result failed = {.status = DNS_STATUS_TEMPFAIL, .rrtype = DNS_RRTYPE_TLSA, .why = "no lookup"};
			dane_tlsa_done(&w, 0, &failed);
		}
		while (!w.done)
			event_base_loop(d->base, EVLOOP_ONCE);
		printf("  TLSA %s: %s%s", name, dns_status_str(w.status), w.secure ? " secure" : " insecure");
		if (w.why[0] != '\0') {
			printf(" (");
			print_safe(w.why);
			printf(")");
		}
		printf("\n");
	} else {
		w.h = host_tls_decide(&hp, NULL);
		printf("  TLSA: not looked up (%s)\n", !validating    ? "the resolver does not validate DNSSEC: [dns] trust_anchor"
						       : !hp.mx_secure ? "the MX answer is not secure (RFC 7672 §2.2.1)"
						       : !hp.addr_secure ? "the host's address is not secure (RFC 7672 §2.2.3)"
									 : "an address literal");
	}
	if (w.h == NULL) {
		cli_error("out of memory");
		return;
	}
	print_tlsa_records(w.h);
	const struct tls_decision *dec = &w.h->decision;
	printf("  decision: action=%s reason=%s policy=%s tlsa=%zu%s%s\n", tls_decide_action_str(dec->action),
	       tls_decide_reason_str(dec->reason), tls_decide_policy_str(dec->policy), w.h->dane_count,
	       dec->status != NULL ? " status=" : "", dec->status != NULL ? dec->status : "");
	if (dec->why != NULL)
		printf("  why: %s\n", dec->why);
	out->hosts++;
	out->dane_hosts += dec->action == TLS_DECIDE_DANE;
	if (probe && t->addr_count > 0) {
		if (dec->action == TLS_DECIDE_SKIP)
			printf("  probe: not made (delivery skips this host)\n");
		else if (!probe_host(c, t, w.h, ctx))
			out->probe_failed++;
	}
	host_tls_free(w.h);
}

void cli_tls_dane(struct cli_dns *d, const char *domain, const struct cli_tls_sts *sts, bool probe,
		  struct cli_tls_dane_outcome *out_r)
{
	memset(out_r, 0, sizeof(*out_r));
	struct dane_mx_wait w = {.base = d->base};
	struct mx_query *q = mx_resolve(d->dns, domain, dane_mx_done, &w);
	if (q == NULL) {
		cli_error("out of memory");
		return;
	}
	while (!w.done)
		event_base_loop(d->base, EVLOOP_ONCE);
	const struct mx_result *mr = &w.r;
	bool validating = dns_validating(d->dns);
	const char *mxs = dane_state(d, domain, DNS_RRTYPE_MX);
	printf("DANE: MX answer %s", !validating ? "not validated (no [dns] trust_anchor)" : mxs);
	if (mr->status != MX_STATUS_OK) {
		printf(", %s: ", mx_status_str(mr->status));
		print_safe(mr->reason);
	}
	printf("\n");
	SSL_CTX *ctx = NULL;
	if (probe) {
		char err[200];
		if ((ctx = delivery_client_tls_ctx_new(err, sizeof(err))) == NULL) {
			cli_error("%s", err);
			out_r->probe_failed++;
			return;
		}
	}
	for (size_t i = 0; mr->status == MX_STATUS_OK && i < mr->count; i++)
		dane_host(d, domain, sts, mr, &mr->targets[i], probe, ctx, out_r);
	SSL_CTX_free(ctx);
}

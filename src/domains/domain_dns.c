/* domain_dns.c — the records a mail domain needs (what `dns records` prints and the API's records[]
 * lists), their accessors and verdicts. The check that judges them is domain_dns_check.c. */
#include "delivery/mtasts_rules.h"
#include "domains/domain_dns_int.h"
#include "domains/domain_tlsa.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

const char *domain_rec_kind_str(enum domain_rec_kind k)
{
	switch (k) {
	case DOMAIN_REC_ADDRESS: return "address";
	case DOMAIN_REC_MX: return "mx";
	case DOMAIN_REC_SPF: return "spf";
	case DOMAIN_REC_DKIM: return "dkim";
	case DOMAIN_REC_RETURN_MX: return "return_mx";
	case DOMAIN_REC_RETURN_SPF: return "return_spf";
	case DOMAIN_REC_DMARC: return "dmarc";
	case DOMAIN_REC_PTR: return "ptr";
	case DOMAIN_REC_MTA_STS: return "mta_sts";
	case DOMAIN_REC_MTA_STS_HOST: return "mta_sts_host";
	case DOMAIN_REC_TLS_RPT: return "tls_rpt";
	case DOMAIN_REC_TLSA: return "tlsa";
	case DOMAIN_REC_TLSA_NEXT: return "tlsa_next";
	}
	return "unknown";
}

const char *domain_rec_status_str(enum domain_rec_status s)
{
	switch (s) {
	case DOMAIN_REC_NOT_STARTED: return "not_started";
	case DOMAIN_REC_VERIFIED: return "verified";
	case DOMAIN_REC_FAILED: return "failed";
	case DOMAIN_REC_TEMPFAIL: return "temporary_failure";
	}
	return "unknown";
}

char *domain_dns_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

void domain_dns_verdict(struct domain_rec *r, enum domain_rec_status s, const char *fmt, ...)
{
	va_list ap;
	char *text;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	r->status = s;
	char **slot = s == DOMAIN_REC_VERIFIED ? &r->found : &r->problem;
	free(*slot);
	*slot = text;
}

/* RFC 1035 §3.5 / RFC 3596 §2.5: the reverse name of an address */
static void domain_dns_reverse(const struct dns_addr *a, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	out[0] = '\0';
	if (a->family == AF_INET) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", a->bytes[3], a->bytes[2], a->bytes[1], a->bytes[0]);
		return;
	}
	for (int i = 15; i >= 0 && o + 4 < size; i--) {
		out[o++] = hex[a->bytes[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a->bytes[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, size - o, "ip6.arpa");
}

static void domain_rec_clear(struct domain_rec *r)
{
	free(r->name);
	free(r->value);
	free(r->comment);
	free(r->problem);
	free(r->found);
	free(r->note);
}

struct domain_dns_item *domain_dns_insert(struct domain_dns *d, size_t at, enum domain_rec_kind kind,
						  bool needed, const char *type, char *name, char *value,
						  char *comment)
{
	if (name == NULL || comment == NULL)
		goto fail;
	if (d->n == d->cap) {
		size_t cap = d->cap == 0 ? 16 : d->cap * 2;
		struct domain_dns_item *items = realloc(d->items, cap * sizeof(*items));
		if (items == NULL)
			goto fail;
		d->items = items;
		d->cap = cap;
	}
	if (at > d->n)
		at = d->n;
	memmove(&d->items[at + 1], &d->items[at], (d->n - at) * sizeof(*d->items));
	d->n++;
	struct domain_dns_item *it = &d->items[at];
	memset(it, 0, sizeof(*it));
	it->rec.kind = kind;
	it->rec.needed = needed;
	it->rec.type = type;
	it->rec.name = name;
	it->rec.value = value;
	it->rec.comment = comment;
	return it;
fail:
	free(name);
	free(value);
	free(comment);
	return NULL;
}

static bool domain_dns_is_v6(const struct dns_addr *a)
{
	return a->family == AF_INET6;
}

/* The address's own fields, for the ADDRESS and PTR records of d->addrs[ipi]. */
static struct domain_dns_item *domain_dns_addr_set(struct domain_dns_item *it, const struct domain_dns *d,
						    size_t ipi)
{
	if (it != NULL) {
		it->addr = d->addrs[ipi];
		memcpy(it->ip, d->ips[ipi], sizeof(it->ip));
	}
	return it;
}

struct domain_dns_item *domain_dns_address_insert(struct domain_dns *d, size_t at, size_t ipi)
{
	char *value = strdup(d->ips[ipi]);
	if (value == NULL)
		return NULL;
	return domain_dns_addr_set(domain_dns_insert(d, at, DOMAIN_REC_ADDRESS, true,
						     domain_dns_is_v6(&d->addrs[ipi]) ? "AAAA" : "A",
						     strdup(d->hostname), value,
						     strdup("the server's address, which the MX name must resolve to")),
				   d, ipi);
}

struct domain_dns_item *domain_dns_ptr_insert(struct domain_dns *d, size_t at, size_t ipi)
{
	char rev[128];
	domain_dns_reverse(&d->addrs[ipi], rev, sizeof(rev));
	char *value = strdup(d->hostname);
	if (value == NULL)
		return NULL;
	return domain_dns_addr_set(
		domain_dns_insert(d, at, DOMAIN_REC_PTR, true, "PTR", strdup(rev), value,
				  strdup("PTR (reverse DNS, set by whoever owns the address): receivers expect the "
					 "server's address to name it, and the name to lead back to the address")),
		d, ipi);
}

/* The SPF record we suggest: our addresses when known, else our host name's (one lookup). */
static char *domain_dns_spf_text(const struct domain_dns *d)
{
	size_t size = 32 + strlen(d->hostname) + d->nips * (INET6_ADDRSTRLEN + 8);
	char *out = malloc(size);
	if (out == NULL)
		return NULL;
	size_t o = (size_t)snprintf(out, size, "v=spf1");
	if (d->nips == 0)
		o += (size_t)snprintf(out + o, size - o, " a:%s", d->hostname);
	for (size_t i = 0; i < d->nips; i++)
		o += (size_t)snprintf(out + o, size - o, " %s:%s", domain_dns_is_v6(&d->addrs[i]) ? "ip6" : "ip4",
				      d->ips[i]);
	snprintf(out + o, size - o, " -all");
	return out;
}

static bool domain_dns_add(struct domain_dns *d, enum domain_rec_kind kind, bool needed, const char *type,
			   char *name, char *value, char *comment)
{
	/* a value that failed to be made is out of memory too, except DKIM's (checked by its caller) */
	if (value == NULL && kind != DOMAIN_REC_DKIM) {
		free(name);
		free(comment);
		return false;
	}
	return domain_dns_insert(d, d->n, kind, needed, type, name, value, comment) != NULL;
}

static bool domain_dns_add_keys(struct domain_dns *d, const struct domain_dns_input *in)
{
	if (in->nkeys == 0) {
		struct domain_dns_item *it = domain_dns_insert(
			d, d->n, DOMAIN_REC_DKIM, true, "TXT", domain_dns_fmt("_domainkey.%s", d->domain), NULL,
			domain_dns_fmt("DKIM: no key signs for %s yet; make one with "
				       "mailwerk dkim keygen --domain %s --selector s1", d->domain, d->domain));
		if (it == NULL)
			return false;
		domain_dns_verdict(&it->rec, DOMAIN_REC_FAILED,
				   "DKIM: no key signs for %s (make one with mailwerk dkim keygen --domain %s "
				   "--selector s1, then publish its record)", d->domain, d->domain);
		return true;
	}
	for (size_t i = 0; i < in->nkeys; i++) {
		const struct domain_dns_key *k = &in->keys[i];
		const char *err = "no selector";
		char *txt = k->selector != NULL ? dkim_key_record_format(k->pkey, &err) : NULL;
		struct domain_dns_item *it = domain_dns_insert(
			d, d->n, DOMAIN_REC_DKIM, true, "TXT",
			domain_dns_fmt("%s._domainkey.%s", k->selector != NULL ? k->selector : "", d->domain), txt,
			domain_dns_fmt("DKIM (RFC 6376): the public key of selector %s (%s %u), so receivers can "
				       "verify our signatures", k->selector != NULL ? k->selector : "",
				       dkim_key_type_str(k->type), k->bits));
		if (it == NULL)
			return false;
		it->pkey = k->pkey;
		if (txt == NULL)
			domain_dns_verdict(&it->rec, DOMAIN_REC_FAILED, "DKIM %s: cannot write the key as a record (%s)",
					   it->rec.name, err);
	}
	return true;
}

/* DANE for our MX host (RFC 7672): DANE-EE(3) SPKI(1) SHA-256(1), which §3.1 recommends (it
 * survives a new certificate for the same key, and needs no names or dates); and, with a key
 * staged, the record of the next one beside it (RFC 7671 §8.1 "current + next"), so that it is in
 * senders' caches before that key is used. Stalwart's DNS helper prints the record of the live
 * certificate only: when a renewal brings a new key, the published record matches nothing until
 * the zone catches up, and DANE senders defer meanwhile. Here the next key exists (and is
 * printed) a whole certificate lifetime ahead. */
static bool domain_dns_add_tlsa(struct domain_dns *d, const struct domain_dns_input *in)
{
	const unsigned char *keys[2] = {in->tlsa_current, in->tlsa_next};
	for (int i = 0; i < 2; i++) {
		if (keys[i] == NULL)
			continue;
		char text[DOMAIN_TLSA_TEXT_SIZE];
		domain_tlsa_text(keys[i], text, sizeof(text));
		char *comment =
			i == 0 ? domain_dns_fmt("DANE (RFC 7672, recommended): senders that validate DNSSEC then require TLS "
						"with this server's key. Publish it only in a DNSSEC-signed zone; 3 1 1 "
						"(the key's SHA-256, RFC 7672 §3.1) stays right when a certificate is "
						"renewed with the same key, and once published it must match the key, "
						"or DANE senders hold mail back.")
			       : domain_dns_fmt("DANE rollover (RFC 7671 §8.1): the key of the next certificate. Publish "
						"it beside the current one now; remove the old record only after the new "
						"certificate is in use and the record's TTL has passed.");
		struct domain_dns_item *it = domain_dns_insert(d, d->n, i == 0 ? DOMAIN_REC_TLSA : DOMAIN_REC_TLSA_NEXT,
							      false, "TLSA", domain_dns_fmt("_25._tcp.%s", d->hostname),
							      strdup(text), comment);
		if (it == NULL || it->rec.value == NULL)
			return false;
		memcpy(it->tlsa, keys[i], sizeof(it->tlsa));
	}
	return true;
}

void domain_dns_sts_id(const struct conf *c, char *id_r, size_t size)
{
	char text[MTASTS_TEXT_MAX], id[MTASTS_ID_MAX + 1];
	size_t len = mtasts_served_text(c, text, sizeof(text));
	mtasts_policy_id(text, len, id);
	snprintf(id_r, size, "%s", id);
}

struct domain_dns *domain_dns_new(const struct domain_dns_input *in)
{
	if (in->domain == NULL || in->hostname == NULL || in->return_path == NULL || in->nips > DOMAIN_DNS_IPS_MAX ||
	    (in->nkeys > 0 && in->keys == NULL) || (in->nips > 0 && in->ips == NULL))
		return NULL;
	struct domain_dns *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->now = in->now;
	for (size_t i = 0; i < in->nips; i++) {
		struct dns_addr *a = &d->addrs[i];
		const char *ip = in->ips[i] != NULL ? in->ips[i] : "";
		a->family = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
		/* kept in the canonical text form, so that records and checks agree on one spelling */
		if (inet_pton(a->family, ip, a->bytes) != 1 ||
		    inet_ntop(a->family, a->bytes, d->ips[i], sizeof(d->ips[i])) == NULL)
			goto fail;
		d->nips++;
	}
	if ((d->domain = strdup(in->domain)) == NULL || (d->hostname = strdup(in->hostname)) == NULL ||
	    (d->return_path = strdup(in->return_path)) == NULL)
		goto fail;

	char ts[32];
	time_t now = (time_t)in->now;
	struct tm tm;
	if (gmtime_r(&now, &tm) == NULL || strftime(ts, sizeof(ts), "%Y%m%d%H%M%S", &tm) == 0)
		snprintf(ts, sizeof(ts), "1");
	const char *dom = d->domain, *host = d->hostname, *rp = d->return_path;

	for (size_t i = 0; i < d->nips; i++)
		if (domain_dns_address_insert(d, d->n, i) == NULL)
			goto fail;
	if (!domain_dns_add(d, DOMAIN_REC_MX, true, "MX", strdup(dom), strdup(host),
			    domain_dns_fmt("MX (RFC 5321 §5.1): mail for %s is delivered to this server", dom)))
		goto fail;
	d->items[d->n - 1].rec.priority = 10;
	if (!domain_dns_add(d, DOMAIN_REC_SPF, true, "TXT", strdup(dom), domain_dns_spf_text(d),
			    domain_dns_fmt("SPF (RFC 7208): only this server may send mail from %s; \"-all\" "
					   "fails the rest", dom)))
		goto fail;
	if (!domain_dns_add_keys(d, in))
		goto fail;
	/* the return path of API mail (VERP): bounces come back here, and receivers check SPF for it
	 * (RFC 7208 §2.4 checks the MAIL FROM domain); relaxed DMARC alignment (RFC 9989 §4.4.2)
	 * accepts a subdomain of the From domain */
	if (!domain_dns_add(d, DOMAIN_REC_RETURN_MX, true, "MX", strdup(rp), strdup(host),
			    domain_dns_fmt("Return path of mail sent through the HTTP API: bounces+ID@%s, so that "
					   "a bounce that comes days later is matched to its message; it needs its "
					   "own MX", rp)))
		goto fail;
	d->items[d->n - 1].rec.priority = 10;
	if (!domain_dns_add(d, DOMAIN_REC_RETURN_SPF, true, "TXT", strdup(rp), domain_dns_spf_text(d),
			    domain_dns_fmt("SPF of the return path: receivers check the MAIL FROM domain "
					   "(RFC 7208 §2.4), here %s", rp)))
		goto fail;
	if (!domain_dns_add(d, DOMAIN_REC_DMARC, true, "TXT", domain_dns_fmt("_dmarc.%s", dom),
			    domain_dns_fmt("v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@%s", dom),
			    strdup("DMARC (RFC 9989): a starting point; aggregate reports go to the address in rua. "
				   "Once the reports show all your mail passing, p=reject protects the domain best.")))
		goto fail;
	for (size_t i = 0; i < d->nips; i++)
		if (domain_dns_ptr_insert(d, d->n, i) == NULL)
			goto fail;
	snprintf(d->sts_id, sizeof(d->sts_id), "%s", in->sts_id);
	if (!domain_dns_add(d, DOMAIN_REC_MTA_STS, false, "TXT", domain_dns_fmt("_mta-sts.%s", dom),
			    domain_dns_fmt("v=STSv1; id=%s", in->sts_id[0] != '\0' ? in->sts_id : ts),
			    domain_dns_fmt("MTA-STS (RFC 8461, recommended): senders then require TLS to this "
					   "server. This server serves the policy ([mta_sts] mode, max_age, mx) at "
					   "https://mta-sts.%s/.well-known/mta-sts.txt; the id is derived from the policy "
					   "text, so publish the new one whenever the policy settings change.", dom)))
		goto fail;
	/* §3.3: the policy host; its HTTPS certificate must name mta-sts.DOMAIN */
	if (!domain_dns_add(d, DOMAIN_REC_MTA_STS_HOST, false, "CNAME", domain_dns_fmt("mta-sts.%s", dom),
			    domain_dns_fmt("%s.", host),
			    domain_dns_fmt("The MTA-STS policy host (RFC 8461 §3.3): mta-sts.%s must reach this "
					   "server's HTTPS listener, with a certificate for that name.", dom)))
		goto fail;
	if (!domain_dns_add(d, DOMAIN_REC_TLS_RPT, false, "TXT", domain_dns_fmt("_smtp._tls.%s", dom),
			    domain_dns_fmt("v=TLSRPTv1; rua=mailto:tls-reports@%s", dom),
			    strdup("TLS-RPT (RFC 8460, recommended): reports of TLS failures senders saw")))
		goto fail;
	d->validating = in->dnssec_validating;
	if (!domain_dns_add_tlsa(d, in))
		goto fail;
	return d;
fail:
	domain_dns_free(d);
	return NULL;
}

void domain_dns_free(struct domain_dns *d)
{
	if (d == NULL)
		return;
	domain_dns_check_clear(d);
	for (size_t i = 0; i < d->n; i++)
		domain_rec_clear(&d->items[i].rec);
	free(d->items);
	free(d->domain);
	free(d->hostname);
	free(d->return_path);
	free(d);
}

size_t domain_dns_count(const struct domain_dns *d)
{
	return d->n;
}

const struct domain_rec *domain_dns_rec(const struct domain_dns *d, size_t i)
{
	return i < d->n ? &d->items[i].rec : NULL;
}

unsigned domain_dns_needed_bad(const struct domain_dns *d)
{
	unsigned n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += d->items[i].rec.needed && d->items[i].rec.status != DOMAIN_REC_VERIFIED;
	return n;
}

unsigned domain_dns_recommended_missing(const struct domain_dns *d)
{
	unsigned n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += !d->items[i].rec.needed && d->items[i].rec.status != DOMAIN_REC_VERIFIED;
	return n;
}

bool domain_dns_kind_verified(const struct domain_dns *d, enum domain_rec_kind k)
{
	bool any = false;
	for (size_t i = 0; i < d->n; i++) {
		const struct domain_rec *r = &d->items[i].rec;
		if (r->kind != k)
			continue;
		if (r->status != DOMAIN_REC_VERIFIED)
			return false;
		any = true;
	}
	return any;
}

/* cli_dns.c — the resolver of the DNS-asking commands. */
#include "cli/cli_dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli/cli_common.h"
#include "conf/conf.h"
#include "net/dns.h"
#include "net/dns_drive.h"

bool cli_dns_resolver_ok(const char *resolver)
{
	char fwd[64];
	const char *perr;
	if (dns_resolver_parse(resolver, fwd, sizeof(fwd), &perr) != DNS_PARSE_OK) {
		cli_error("--resolver %s: %s", resolver, perr);
		return false;
	}
	return true;
}

static int cli_dns_start(struct cli_dns *d, const char *resolver, const char *trust_anchor, unsigned timeout);

int cli_dns_open(struct cli_dns *d, const char *conf_path, const char *resolver, unsigned timeout)
{
	const char *trust_anchor = NULL;
	memset(d, 0, sizeof(*d));
	if (conf_path != NULL || access(CLI_DEFAULT_CONF, F_OK) == 0) {
		if ((d->conf = cli_conf_load(conf_path, NULL, 0)) == NULL)
			return -1;
		if (resolver == NULL)
			resolver = d->conf->dns_resolver;
		trust_anchor = d->conf->dns_trust_anchor;
	}
	return cli_dns_start(d, resolver, trust_anchor, timeout);
}

int cli_dns_open_conf(struct cli_dns *d, const struct conf *c, const char *resolver, unsigned timeout)
{
	memset(d, 0, sizeof(*d));
	return cli_dns_start(d, resolver != NULL ? resolver : c->dns_resolver, c->dns_trust_anchor, timeout);
}

static int cli_dns_start(struct cli_dns *d, const char *resolver, const char *trust_anchor, unsigned timeout)
{
	char err[512];
	if ((d->base = event_base_new()) == NULL) {
		cli_error("cannot create the event loop");
		cli_dns_close(d);
		return -1;
	}
	if ((d->dns = dns_new(d->base, resolver, trust_anchor, NULL, err, sizeof(err))) == NULL) {
		cli_error("%s", err);
		cli_dns_close(d);
		return -1;
	}
	if (timeout > 0)
		dns_timeout_set(d->dns, timeout);
	return 0;
}

void cli_dns_close(struct cli_dns *d)
{
	dns_free(d->dns);
	if (d->base != NULL)
		event_base_free(d->base);
	conf_free(d->conf);
	memset(d, 0, sizeof(*d));
}

struct cli_dns_wait {
	struct event_base *base;
	bool done, exceeded;
};

static void cli_dns_done(void *arg, bool exceeded)
{
	struct cli_dns_wait *w = arg;
	w->done = true;
	w->exceeded = exceeded;
	event_base_loopbreak(w->base);
}

int cli_dns_run(struct cli_dns *d, auth_step_fn *step, void *eval)
{
	struct cli_dns_wait w = {.base = d->base};
	struct dns_drive *r = dns_drive_start(d->dns, step, eval, cli_dns_done, &w);
	if (r == NULL) {
		cli_error("out of memory");
		return -1;
	}
	while (!w.done)
		if (event_base_dispatch(d->base) < 0)
			break;
	if (!w.done) {
		dns_drive_cancel(r);
		cli_error("the lookups ended without an answer");
		return -1;
	}
	return w.exceeded ? -1 : 0;
}

/* ---- one question ---- */

struct cli_ask {
	struct auth_query q;
	bool asked;
	struct cli_answer *a;
	bool oom;
};

static char *cli_answer_item(const struct dns_result *r, size_t i)
{
	char buf[DNS_NAME_TEXT_SIZE + 16];
	switch (r->rrtype) {
	case DNS_RRTYPE_TXT:
		return strndup(r->txts[i].text, r->txts[i].len);
	case DNS_RRTYPE_MX:
		snprintf(buf, sizeof(buf), "%u %s", (unsigned)r->mx[i].pref, r->mx[i].exchange);
		return strdup(buf);
	case DNS_RRTYPE_A:
	case DNS_RRTYPE_AAAA:
		return strdup(dns_addr_str(&r->addrs[i], buf, sizeof(buf)));
	case DNS_RRTYPE_PTR:
		return strdup(r->ptrs[i].name);
	}
	return strdup("");
}

static enum auth_step cli_ask_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct cli_ask *k = arg;
	if (!k->asked) {
		k->asked = true;
		*q_r = k->q;
		return AUTH_STEP_QUERY;
	}
	struct cli_answer *a = k->a;
	a->status = answer->status;
	snprintf(a->why, sizeof(a->why), "%s", answer->why != NULL ? answer->why : "");
	if (answer->count > 0 && (a->items = calloc(answer->count, sizeof(*a->items))) == NULL) {
		k->oom = true;
		return AUTH_STEP_DONE;
	}
	for (size_t i = 0; i < answer->count; i++) {
		if ((a->items[a->count] = cli_answer_item(answer, i)) == NULL) {
			k->oom = true;
			break;
		}
		a->count++;
	}
	return AUTH_STEP_DONE;
}

int cli_dns_ask(struct cli_dns *d, const char *name, int rrtype, struct cli_answer *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	struct cli_ask k = {.q.rrtype = rrtype, .a = a_r};
	snprintf(k.q.name, sizeof(k.q.name), "%s", name);
	if (cli_dns_run(d, cli_ask_step, &k) != 0)
		return -1;
	if (k.oom) {
		cli_error("out of memory");
		cli_answer_clear(a_r);
		return -1;
	}
	return 0;
}

void cli_answer_clear(struct cli_answer *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->items[i]);
	free(a->items);
	memset(a, 0, sizeof(*a));
}

void cli_dns_txt_line(const char *name, const char *txt)
{
	size_t len = strlen(txt);
	printf("%s. IN TXT (", name);
	for (size_t i = 0; i < len; i += 255)
		printf(" \"%.*s\"", (int)(len - i < 255 ? len - i : 255), txt + i);
	printf(" )\n");
}

/* dmarc_walk.c — RFC 9989 §4.10 DNS Tree Walk, §4.10.2 Organizational Domain selection and
 * §4.10.1 policy record choice, over a per-message cache of _dmarc answers. */
#include "auth/dmarc_walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dmarc_from.h"

const char *dmarc_found_str(enum dmarc_found f)
{
	switch (f) {
	case DMARC_FOUND_NONE: return "none";
	case DMARC_FOUND_RECORD: return "record";
	case DMARC_FOUND_MULTIPLE: return "multiple";
	case DMARC_FOUND_TEMPFAIL: return "tempfail";
	case DMARC_FOUND_TOO_LONG: return "too_long";
	}
	return "?";
}

const char *dmarc_walk_status_str(enum dmarc_walk_status s)
{
	switch (s) {
	case DMARC_WALK_OK: return "ok";
	case DMARC_WALK_TEMPFAIL: return "tempfail";
	case DMARC_WALK_BAD_DOMAIN: return "bad_domain";
	case DMARC_WALK_NOMEM: return "nomem";
	}
	return "?";
}

const char *dmarc_org_rule_str(enum dmarc_org_rule r)
{
	switch (r) {
	case DMARC_ORG_UNKNOWN: return "unknown";
	case DMARC_ORG_PSD_N: return "psd_n";
	case DMARC_ORG_PSD_Y: return "psd_y";
	case DMARC_ORG_FEWEST: return "fewest_labels";
	case DMARC_ORG_START: return "start";
	}
	return "?";
}

const char *dmarc_source_str(enum dmarc_source s)
{
	switch (s) {
	case DMARC_SOURCE_NONE: return "none";
	case DMARC_SOURCE_DOMAIN: return "domain";
	case DMARC_SOURCE_ORG: return "organizational";
	case DMARC_SOURCE_PSD: return "psd";
	}
	return "?";
}

/* ---- the cache ---- */

struct dmarc_cache {
	size_t count;
	struct dmarc_node *nodes[DMARC_CACHE_MAX];
};

struct dmarc_cache *dmarc_cache_new(void)
{
	return calloc(1, sizeof(struct dmarc_cache));
}

static void node_release(struct dmarc_node *n)
{
	free(n->record);
	n->record = NULL;
}

void dmarc_cache_free(struct dmarc_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->count; i++) {
		node_release(c->nodes[i]);
		free(c->nodes[i]);
	}
	free(c);
}

const struct dmarc_node *dmarc_cache_find(const struct dmarc_cache *c, const char *domain)
{
	for (size_t i = 0; i < c->count; i++)
		if (strcmp(c->nodes[i]->domain, domain) == 0)
			return c->nodes[i];
	return NULL;
}

/* ---- the walk ---- */

struct dmarc_walk {
	struct dmarc_cache *cache;
	bool own_cache;
	bool done, asking;
	struct dmarc_walk_result res;
	char target[DNS_HOST_SIZE]; /* the domain whose _dmarc name is next */
	/* nodes the cache had no room for */
	size_t nown;
	struct dmarc_node own[DMARC_WALK_MAX];
};

bool dmarc_domain_within(const char *sub, const char *domain)
{
	size_t s = strlen(sub), d = strlen(domain);
	if (s == d)
		return strcmp(sub, domain) == 0;
	return s > d && sub[s - d - 1] == '.' && strcmp(sub + s - d, domain) == 0;
}

static size_t labels_count(const char *domain)
{
	size_t n = 1;
	for (const char *p = domain; *p != '\0'; p++)
		n += *p == '.';
	return n;
}

/* The last k labels of domain (k >= 1, at most its label count). */
static const char *labels_last(const char *domain, size_t k)
{
	size_t n = labels_count(domain);
	const char *p = domain;
	while (n > k) {
		p = strchr(p, '.') + 1;
		n--;
	}
	return p;
}

/* A fresh node for the current target: in the cache when it has room, else in the walk. */
static struct dmarc_node *node_new(struct dmarc_walk *w)
{
	struct dmarc_node *n = NULL;
	if (w->cache->count < DMARC_CACHE_MAX) {
		n = calloc(1, sizeof(*n));
		if (n != NULL)
			w->cache->nodes[w->cache->count++] = n;
	} else if (w->nown < DMARC_WALK_MAX) {
		n = &w->own[w->nown++];
		memset(n, 0, sizeof(*n));
	}
	if (n != NULL)
		memcpy(n->domain, w->target, sizeof(n->domain));
	return n;
}

/* §4.10 steps 1-2 / 5-6: the TXT answer for _dmarc.<domain>. Returns false when out of memory. */
static bool node_fill(struct dmarc_node *n, const struct dns_result *a)
{
	n->status = a->status;
	switch (a->status) {
	case DNS_STATUS_OK:
		break;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		n->found = DMARC_FOUND_NONE;
		return true;
	case DNS_STATUS_TEMPFAIL:
	case DNS_STATUS_BOGUS:
	default:
		n->found = DMARC_FOUND_TEMPFAIL;
		snprintf(n->why, sizeof(n->why), "%s for _dmarc.%s%s%s", dns_status_str(a->status), n->domain,
			 a->why != NULL && a->why[0] != '\0' ? ": " : "", a->why != NULL ? a->why : "");
		return true;
	}
	size_t dmarc = 0;
	struct dmarc_record rec;
	for (size_t i = 0; a->txts != NULL && i < a->count; i++) {
		const char *why = NULL;
		enum dmarc_record_error e = dmarc_record_parse(a->txts[i].text, a->txts[i].len, &rec, &why);
		if (e == DMARC_RECORD_NOT_DMARC) {
			n->other_txt++; /* §4.10 step 2: "discarded" */
			continue;
		}
		if (dmarc++ > 0)
			continue;
		n->record = malloc(sizeof(*n->record));
		if (n->record == NULL)
			return false;
		memcpy(n->record, &rec, sizeof(rec));
		n->record_error = e;
		n->record_why = e == DMARC_RECORD_OK ? NULL : why;
	}
	if (dmarc > 1) {
		/* §4.10 step 2: "If multiple DMARC Policy Records are returned ..., they are all discarded" */
		free(n->record);
		n->record = NULL;
		n->record_error = DMARC_RECORD_OK;
		n->record_why = NULL;
	}
	n->found = dmarc == 0 ? DMARC_FOUND_NONE : dmarc == 1 ? DMARC_FOUND_RECORD : DMARC_FOUND_MULTIPLE;
	return true;
}

static void walk_finish(struct dmarc_walk *w, enum dmarc_walk_status status, const char *why)
{
	struct dmarc_walk_result *r = &w->res;
	w->done = true;
	w->asking = false;
	if (r->status == DMARC_WALK_OK) {
		r->status = status;
		r->why = why;
	}
	if (r->status == DMARC_WALK_BAD_DOMAIN || r->status == DMARC_WALK_NOMEM)
		return;

	/* §4.10.1: the Author Domain's own record comes first */
	if (r->count > 0 && r->nodes[0]->found == DMARC_FOUND_RECORD) {
		r->source = DMARC_SOURCE_DOMAIN;
		r->policy = r->nodes[0];
	}
	if (r->status != DMARC_WALK_OK || r->stopped)
		return;

	/* §4.10.2: the Organizational Domain, from the records found (longest name to shortest) */
	const struct dmarc_node *last = NULL;
	size_t last_i = 0;
	for (size_t i = 0; i < r->count; i++)
		if (r->nodes[i]->found == DMARC_FOUND_RECORD)
			last = r->nodes[i], last_i = i;
	const char *org;
	if (last == NULL) {
		r->org_rule = DMARC_ORG_START; /* "the initial target domain is the Organizational Domain" */
		org = r->domain;
	} else if (last->record->psd == DMARC_PSD_N) {
		r->org_rule = DMARC_ORG_PSD_N; /* step 1 (psd=n stops the walk: it is the last one) */
		org = last->domain;
	} else if (last->record->psd == DMARC_PSD_Y && last_i > 0) {
		r->org_rule = DMARC_ORG_PSD_Y; /* step 2: "the domain one label below this one" */
		org = labels_last(r->domain, labels_count(last->domain) + 1);
	} else {
		r->org_rule = DMARC_ORG_FEWEST; /* step 3: "the fewest number of labels" */
		org = last->domain;
	}
	memcpy(r->org_domain, org, strlen(org) + 1);

	/* §4.10.1: then the Organizational Domain's record, then the PSD's; "PSD policy is not used
	 * for Organizational Domains that have published a DMARC Policy Record" */
	if (r->source != DMARC_SOURCE_NONE)
		return;
	for (size_t i = 0; i < r->count; i++) {
		if (r->nodes[i]->found == DMARC_FOUND_RECORD && strcmp(r->nodes[i]->domain, r->org_domain) == 0) {
			r->source = DMARC_SOURCE_ORG;
			r->policy = r->nodes[i];
			return;
		}
	}
	if (last != NULL && last->record->psd == DMARC_PSD_Y) {
		r->source = DMARC_SOURCE_PSD;
		r->policy = last;
	}
}

/* Takes node n as the answer for the current target and moves on (§4.10 steps 3-7). */
static void walk_visit(struct dmarc_walk *w, const struct dmarc_node *n)
{
	struct dmarc_walk_result *r = &w->res;
	r->nodes[r->count++] = n;
	if (n->found == DMARC_FOUND_TEMPFAIL) {
		walk_finish(w, DMARC_WALK_TEMPFAIL, n->why);
		return;
	}
	/* steps 2 and 6: "If a single record remains and it contains a psd=n or psd=y tag, stop." */
	if (n->found == DMARC_FOUND_RECORD && n->record->psd != DMARC_PSD_U) {
		walk_finish(w, DMARC_WALK_OK, NULL);
		return;
	}
	size_t labels = labels_count(w->target);
	if (labels <= 1 || r->count == DMARC_WALK_MAX) {
		walk_finish(w, DMARC_WALK_OK, NULL);
		return;
	}
	/* step 4: "If x < 8, remove the left-most label ...; if x >= 8, remove ... until 7 labels
	 * remain"; step 7 then removes one label at a time, which is the same rule on <= 7 labels */
	const char *next = labels_last(w->target, labels - 1 < 7 ? labels - 1 : 7);
	memmove(w->target, next, strlen(next) + 1);
}

static struct dmarc_walk *walk_new(const char *domain, struct dmarc_cache *cache, bool own)
{
	struct dmarc_walk *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->cache = cache;
	w->own_cache = own;
	const char *why;
	if (dmarc_from_domain(domain, strlen(domain), w->res.domain, &why) != DMARC_FROM_OK) {
		w->res.domain[0] = '\0';
		walk_finish(w, DMARC_WALK_BAD_DOMAIN, why);
		return w;
	}
	memcpy(w->target, w->res.domain, sizeof(w->target));
	return w;
}

struct dmarc_walk *dmarc_walk_new(const char *domain)
{
	struct dmarc_cache *c = dmarc_cache_new();
	if (c == NULL)
		return NULL;
	struct dmarc_walk *w = walk_new(domain, c, true);
	if (w == NULL)
		dmarc_cache_free(c);
	return w;
}

struct dmarc_walk *dmarc_walk_new_cached(const char *domain, struct dmarc_cache *cache)
{
	return walk_new(domain, cache, false);
}

enum auth_step dmarc_walk_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct dmarc_walk *w = arg;
	if (w->done)
		return AUTH_STEP_DONE;
	if (answer != NULL && w->asking) {
		w->asking = false;
		struct dmarc_node *n = node_new(w);
		if (n == NULL || !node_fill(n, answer)) {
			walk_finish(w, DMARC_WALK_NOMEM, "out of memory");
			return AUTH_STEP_DONE;
		}
		walk_visit(w, n);
	}
	while (!w->done) {
		const struct dmarc_node *n = dmarc_cache_find(w->cache, w->target);
		if (n != NULL) {
			walk_visit(w, n);
			continue;
		}
		if (strlen(w->target) + sizeof("_dmarc.") - 1 >= DNS_HOST_SIZE) {
			/* RFC 1035 §2.3.4: such a name cannot exist, so neither can a record there */
			struct dmarc_node *t = node_new(w);
			if (t == NULL) {
				walk_finish(w, DMARC_WALK_NOMEM, "out of memory");
				break;
			}
			t->found = DMARC_FOUND_TOO_LONG;
			t->status = DNS_STATUS_NXDOMAIN;
			walk_visit(w, t);
			continue;
		}
		memcpy(q_r->name, "_dmarc.", 7);
		memcpy(q_r->name + 7, w->target, strlen(w->target) + 1);
		q_r->rrtype = DNS_RRTYPE_TXT;
		w->asking = true;
		return AUTH_STEP_QUERY;
	}
	return AUTH_STEP_DONE;
}

void dmarc_walk_stop(struct dmarc_walk *w)
{
	if (w->done)
		return;
	w->res.stopped = true;
	walk_finish(w, DMARC_WALK_OK, NULL);
}

const struct dmarc_walk_result *dmarc_walk_result(const struct dmarc_walk *w)
{
	return &w->res;
}

bool dmarc_walk_done(const struct dmarc_walk *w)
{
	return w->done;
}

void dmarc_walk_free(struct dmarc_walk *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->nown; i++)
		node_release(&w->own[i]);
	if (w->own_cache)
		dmarc_cache_free(w->cache);
	free(w);
}

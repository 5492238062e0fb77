/* domains_verify.h — the server's DNS check of a domain (POST /domains/{id}/verify, and the periodic
 * re-check that notices a record broken later): domains/domain_dns.h's check run on the loop through
 * net/dns_drive, its outcome stored with the domain (mailbox/users.h) on a worker, the domain's
 * status derived from the records the API shows, and a domain.updated event when that status
 * changes. Shared by domains.c: the domain's active DKIM keys and the check's input. */
#ifndef MAILWERK_HTTP_DOMAINS_VERIFY_H
#define MAILWERK_HTTP_DOMAINS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "domains/domain_dns.h"
#include "keys/dkim_store.h"
#include "mailbox/users.h"

struct conf;
struct http_api;
struct domain_verify;

/* The check's input for d: its keys, our host name, its return path host (written into
 * return_path). */
void http_domain_input(const struct conf *cf, const struct users_domain *d, const struct domain_keys *ks,
		       struct domain_dns_input *in, char *return_path, size_t rp_size);

/* Resend's Domain object of d (without object and records), and its records[]: what to publish,
 * each with the status checks gave it (by kind and name), not_started when none did. NULL when
 * out of memory or the records cannot be made (err says why). Any thread. */
json_t *http_domain_json(const struct users_domain *d);
json_t *http_domain_records_json(const struct conf *cf, const struct users_domain *d,
				 const struct users_domain_check *checks, size_t nchecks, char *err, size_t err_size);
/* The same from records already made (dd, for domain): what a check that has just run reports. */
json_t *http_domain_records_of(const struct domain_dns *dd, const char *domain,
			       const struct users_domain_check *checks, size_t nchecks);

/* Whether mail may be sent from d now: its sending capability is on and, when it waits for its
 * records (verify_first), the last check found them right. */
bool http_domain_can_send(const struct users_domain *d);

/* Whether records of kind k are in the API's records[] (and so in the domain's status). */
bool http_domain_rec_shown(enum domain_rec_kind k);

/* The domain's status from a finished check of its shown records: verified when all are,
 * partially_verified when some are, else failed. */
const char *http_domain_status(const struct domain_dns *dd);

/* A check of d, made on a worker (it reads the keys): NULL with a sentence in err. */
struct domain_verify *http_domain_verify_new(const struct conf *cf, const struct users_domain *d, char *err,
					     size_t err_size);
void http_domain_verify_free(struct domain_verify *v);
/* Runs v on the loop; v is the API's until it is done (or the API stops). Loop thread. */
void http_domains_verify_start(struct http_api *a, struct domain_verify *v);
/* Stops every check running (the API's deinit). */
void http_domains_verify_cancel_all(struct http_api *a);

/* Every [api] domain_recheck, each domain that has been checked is checked again (a record that
 * breaks later is noticed; domain.updated tells when the status changes). 0, or -1 when out of
 * memory. */
struct server;
int http_domains_recheck_start(struct server *srv, struct http_api *a);
void http_domains_recheck_stop(struct http_api *a);

#endif

/* fake_dns.h — an in-memory zone that answers the questions of the auth/ evaluators the way a
 * recursive resolver would (CNAMEs followed, NXDOMAIN, NODATA, timeouts), and logs every question.
 * For the unit tests and the RFC test suites; never linked into mailwerk. */
#ifndef MAILWERK_TESTS_FAKE_DNS_H
#define MAILWERK_TESTS_FAKE_DNS_H

#include <stddef.h>

#include "auth/auth_dns.h"

struct fake_dns;

struct fake_dns *fake_dns_new(void);
void fake_dns_free(struct fake_dns *z);

/* Adds one record. data by type: A/AAAA an address ("192.0.2.1", "2001:db8::1"); MX "PREF HOST"
 * ("10 mx.example.com"; "0 ." is a null MX); PTR and CNAME a name; TXT the text (one RR; its
 * character-strings already joined). Names and types are matched case-insensitively. */
void fake_dns_add(struct fake_dns *z, const char *name, int rrtype, const char *data);
/* A TXT record whose text may hold any octet, NULs included. */
void fake_dns_add_txt(struct fake_dns *z, const char *name, const char *text, size_t len);
/* Questions about name for types it has no record of time out (TEMPFAIL). */
void fake_dns_timeout(struct fake_dns *z, const char *name);

/* The answer to q. A name exists when it has a record or a name below it has one (RFC 8020 empty
 * non-terminals); else NXDOMAIN. Valid until the next call. Logged. */
const struct dns_result *fake_dns_answer(struct fake_dns *z, const struct auth_query *q);

/* Runs step(eval, ...) to the end, answering each question from z; returns the number of questions.
 * Stops (returning what it asked so far plus one) after 1000 questions: an evaluator that asks that
 * many is broken, and the test then fails on its count. */
unsigned fake_dns_run(struct fake_dns *z, auth_step_fn *step, void *eval);

/* The questions asked since fake_dns_new or fake_dns_log_clear, as "name TYPE" ("_dmarc.example.com TXT"). */
size_t fake_dns_log_count(const struct fake_dns *z);
const char *fake_dns_log(const struct fake_dns *z, size_t i);
void fake_dns_log_clear(struct fake_dns *z);

#endif

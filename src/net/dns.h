/* dns.h — asynchronous DNS on the event loop: libunbound resolves (and, with a trust anchor,
 * validates with DNSSEC) on its own thread; its result pipe (ub_fd) is an EV_READ event of the loop,
 * and every answer is parsed here, with bounds checks, before anyone sees it. Loop thread only. */
#ifndef MAILWERK_NET_DNS_H
#define MAILWERK_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/dns_parse.h"

struct event_base;
struct dns;
struct metrics;

/* Answers kept per lookup; an answer is at most 64 KiB, so this only bounds work on absurd sets. */
#define DNS_RECORDS_MAX 1024
/* The overall limit on one lookup, on top of unbound's own retries and timeouts. */
#define DNS_TIMEOUT_DEFAULT 30

/* Called on the loop thread, never from inside dns_lookup. id is the one dns_lookup returned. */
typedef void dns_done_fn(void *arg, uint64_t id, const struct dns_result *r);

/* resolver: NULL or "" = the nameservers of /etc/resolv.conf; "ADDR" or "ADDR@PORT" = forward
 * every query to that server. trust_anchor_file: NULL or "" = no DNSSEC validation; else a file of
 * DS/DNSKEY records (e.g. /usr/share/dns/root.key). metrics: where each lookup's time is counted
 * (kept; NULL: not counted). Starts unbound's thread. NULL with one line in error_r on failure. */
struct dns *dns_new(struct event_base *base, const char *resolver, const char *trust_anchor_file,
		    struct metrics *metrics, char *error_r, size_t error_size);
/* A resolver is shared (the server's inbound checks and the delivery pool use one, so they share
 * unbound's cache) and reference-counted: dns_new returns the first reference, dns_ref adds one.
 * dns_free drops one; the last cancels every outstanding lookup (no callback is called after it)
 * and stops unbound's thread. Each holder cancels its own lookups before it lets go. Safe from
 * inside a callback. */
struct dns *dns_ref(struct dns *d);
void dns_free(struct dns *d);

/* The overall per-lookup limit in seconds (default DNS_TIMEOUT_DEFAULT); for lookups started later. */
void dns_timeout_set(struct dns *d, unsigned seconds);
/* Whether a trust anchor is configured, so that `secure` can ever be true. */
bool dns_validating(const struct dns *d);
struct event_base *dns_base(const struct dns *d);

/* Starts a lookup of name (presentation format, no escapes; a trailing dot is optional) for rrtype,
 * class IN. Returns its id (never 0); done(arg, id, result) follows exactly once, unless the lookup
 * is cancelled first. Returns 0, and never calls done, when name is not a domain name or memory ran
 * out. */
uint64_t dns_lookup(struct dns *d, const char *name, int rrtype, dns_done_fn *done, void *arg);
/* After this, done is not called for id. Unknown or finished ids are ignored. */
void dns_cancel(struct dns *d, uint64_t id);

#endif

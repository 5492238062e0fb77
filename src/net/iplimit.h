/* iplimit.h — per-client accounting, keyed by net_client_key(): open connections and recent
 * authentication failures (with short tags of the passwords that failed, never the passwords). */
#ifndef MAILWERK_NET_IPLIMIT_H
#define MAILWERK_NET_IPLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "net/listener.h"

struct iplimit;

struct iplimit *iplimit_new(void);
void iplimit_free(struct iplimit *t);

/* Connections: add returns the count for ip including this one; del undoes one add. */
unsigned iplimit_conn_add(struct iplimit *t, const char *ip);
void iplimit_conn_del(struct iplimit *t, const char *ip);
/* Open connections from ip now. */
unsigned iplimit_conn_count(struct iplimit *t, const char *ip);

/* Authentication failures are forgotten once the client's newest one is older than this (the
 * count decays as a whole, as Dovecot's penalty does after its timeout). */
#define IPLIMIT_AUTH_WINDOW 900
/* The failed passwords remembered per client, as tags (a keyed hash the caller makes). */
#define IPLIMIT_AUTH_RECENT 4
/* Records a failure of the credentials tagged tag (0: unknown) and returns the count after it. A
 * tag among the client's last IPLIMIT_AUTH_RECENT is a repeat (*repeat_r): it keeps the window
 * open but is not counted again, so that a client retrying one wrong password stays where it is. */
unsigned iplimit_auth_fail(struct iplimit *t, const char *ip, time_t now, uint64_t tag, bool *repeat_r);
unsigned iplimit_auth_failures(struct iplimit *t, const char *ip, time_t now);
/* Forgets the client's failures and tags (a success, or the operator lifting a ban). */
void iplimit_auth_clear(struct iplimit *t, const char *ip);
/* Drops entries of the next `buckets` buckets (a round-robin slice of the table) that have neither
 * connections nor failures inside the window, so that clients that went away do not stay. */
void iplimit_sweep(struct iplimit *t, time_t now, unsigned buckets);

/* The client key (net_client_key's form) that text names: an IPv4 address, an IPv6 address
 * (its prefix of ipv6_prefix bits), or an IPv6 prefix "ADDRESS/BITS" with BITS 16 to 128; an
 * IPv4-mapped address names the IPv4 client. false for anything else. */
bool iplimit_key_parse(const char *text, unsigned ipv6_prefix, char key_r[NET_CLIENT_KEY_SIZE]);

#endif

/* iplimit.h — per-client accounting, keyed by net_client_key(): open connections and recent
 * authentication failures. */
#ifndef MAILWERK_NET_IPLIMIT_H
#define MAILWERK_NET_IPLIMIT_H

#include <time.h>

struct iplimit;

struct iplimit *iplimit_new(void);
void iplimit_free(struct iplimit *t);

/* Connections: add returns the count for ip including this one; del undoes one add. */
unsigned iplimit_conn_add(struct iplimit *t, const char *ip);
void iplimit_conn_del(struct iplimit *t, const char *ip);
/* Open connections from ip now. */
unsigned iplimit_conn_count(struct iplimit *t, const char *ip);

/* Authentication failures within the last IPLIMIT_AUTH_WINDOW seconds. */
#define IPLIMIT_AUTH_WINDOW 900
unsigned iplimit_auth_fail(struct iplimit *t, const char *ip, time_t now); /* records one, returns the count */
unsigned iplimit_auth_failures(struct iplimit *t, const char *ip, time_t now);

#endif

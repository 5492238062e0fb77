/* dns_drive.h — runs one SPF/DKIM/DMARC evaluator (auth/auth_dns.h) on the event loop: each
 * question it asks becomes a lookup through net/dns.c, each answer goes back into its step function,
 * until it is done. Loop thread only. */
#ifndef MAILWERK_NET_DNS_DRIVE_H
#define MAILWERK_NET_DNS_DRIVE_H

#include "auth/auth_dns.h"

struct dns;
struct dns_drive;

/* Questions one evaluation may ask before the driver gives up on it: far above what the RFC limits
 * allow (SPF: 10 terms with up to 10 names each, DMARC: 8 per walk), so only a broken evaluator
 * reaches it. */
#define DNS_DRIVE_MAX_QUESTIONS 512

/* Called once the evaluator is done (its result is read from eval), or when it asked more than
 * DNS_DRIVE_MAX_QUESTIONS (exceeded is then true; the evaluator's own result is not final). Never
 * called from inside dns_drive_start. The drive is freed after done returns. */
typedef void dns_drive_done_fn(void *arg, bool exceeded);

/* Starts step(eval, NULL, ...). Holds a reference on d until done. NULL when out of memory. */
struct dns_drive *dns_drive_start(struct dns *d, auth_step_fn *step, void *eval, dns_drive_done_fn *done, void *arg);
/* Stops: done is not called, the lookup in flight is cancelled, the drive is freed. */
void dns_drive_cancel(struct dns_drive *r);

#endif

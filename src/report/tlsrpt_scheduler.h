/* tlsrpt_scheduler.h — the server's side of TLS reporting (RFC 8460): after each period
 * ([tlsrpt] report_interval, a UTC day) has ended, every policy domain with sessions counted in
 * queue.db (events/tlsrpt_sessions.h) gets its report, if it publishes one _smtp._tls record
 * (report/tlsrpt.h): the JSON gzip'd (§5.2), POSTed to its https: rua (§5.4) and mailed,
 * DKIM-signed, to its mailto: rua (§5.3) through the queue.
 *
 * A domain's counters go only when every rua took the report (a 2xx, or the mail in our queue);
 * a rua that took it is remembered and not sent to again. Failures are tried again with a doubling
 * backoff (from min(5 min, period), at most an hour apart) until 24 h after the period's end, when
 * the first attempt is made (§5.5: "SHOULD attempt redelivery for up to 24 hours after the initial
 * attempt"), then the aggregate is dropped with a log line. A
 * report sent again (a retry, a crash before the delete) has the same report-id. Unlike
 * Stalwart, which deletes the stored report before sending it, a failed send loses nothing.
 *
 * A run is a chain of steps, each on the thread it needs and none blocking the loop: read the due
 * aggregates (worker), the TXT records (loop, DNS), build (worker), send (loop: HTTP, signer,
 * queue), record what went (worker). One run at a time; the timer ticks every
 * min(period, 60 s). */
#ifndef MAILWERK_REPORT_TLSRPT_SCHEDULER_H
#define MAILWERK_REPORT_TLSRPT_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct tlsrpt_scheduler;

/* Arms the timer. NULL with a sentence. Loop thread. */
struct tlsrpt_scheduler *tlsrpt_scheduler_new(struct server *srv, char *error_r, size_t error_size);
/* Stops the timer, the lookups and the requests of a run; what the threads still post finds it
 * stopping. */
void tlsrpt_scheduler_stop(struct tlsrpt_scheduler *s);
/* For `mailwerk status`: when a report last went (0: none since the start) and to which domain,
 * and when one last failed and why ("" when none). Strings valid until the next loop callback. */
struct tlsrpt_scheduler_state {
	int64_t last_sent;
	const char *last_sent_domain;
	int64_t last_failed;
	const char *last_error;
};
void tlsrpt_scheduler_state(const struct tlsrpt_scheduler *s, struct tlsrpt_scheduler_state *st_r);
/* After the worker threads and the loop queue are gone. */
void tlsrpt_scheduler_free(struct tlsrpt_scheduler *s);

#endif

/* report_scheduler.h — the server's side of DMARC aggregate reporting (RFC 9990): received messages'
 * evaluations go into DATA_DIR/reports.db (src/report/report_store.c) on a worker thread, and every
 * [dmarc] report_interval (a day) the rows of the period become one report per policy domain,
 * sent to its verified rua addresses through the queue, DKIM-signed like our own mail.
 *
 * A run is a chain of steps, each on the thread it needs and none blocking the loop: take the
 * rows (worker), check the external destinations (loop, DNS), build and sign the reports (worker),
 * queue them (loop), and delete the rows of the reports that were queued or had nowhere to go
 * (worker). A crash in between sends a report again, with the same Report-ID; rows are never lost. */
#ifndef MAILWERK_REPORT_REPORT_SCHEDULER_H
#define MAILWERK_REPORT_REPORT_SCHEDULER_H

#include <stddef.h>

struct dmarc_report_row;
struct report_scheduler;
struct server;

/* Opens the store and arms the timer. NULL with a sentence. Loop thread. */
struct report_scheduler *report_scheduler_new(struct server *srv, char *error_r, size_t error_size);
/* Records rows (copied) from a worker thread; the caller checked [dmarc] reports. Loop thread. */
void report_scheduler_record(struct report_scheduler *r, const struct dmarc_report_row *rows, size_t n);
/* Stops the timer and the DNS of a run; what the threads still post finds it stopping. */
void report_scheduler_stop(struct report_scheduler *r);
/* After the worker threads and the loop queue are gone: closes the store. */
void report_scheduler_free(struct report_scheduler *r);

#endif

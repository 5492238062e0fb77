/* record.h — the record (events.h) of a message that came whole, not built from an API request:
 * mail sent by authenticated submission, and POST /emails/raw. Made as it is queued. */
#ifndef MAILWERK_EVENTS_RECORD_H
#define MAILWERK_EVENTS_RECORD_H

struct email_record;
struct queue_msg;

/* The record of m (its header section in m->data, its final recipients); NULL when out of memory.
 * Any thread. */
struct email_record *email_record_from_message(const struct queue_msg *m);

#endif

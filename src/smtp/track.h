/* track.h — records for mail sent by authenticated submission (events.h), made as it is queued. */
#ifndef MAILWERK_SMTP_TRACK_H
#define MAILWERK_SMTP_TRACK_H

struct email_record;
struct queue_msg;

/* The record of m (its header section in m->data, its final recipients); NULL when out of memory. */
struct email_record *smtp_track_record(const struct queue_msg *m);

#endif

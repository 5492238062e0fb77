/* suppressions.h — the addresses mail is no longer sent to: after a hard bounce, a complaint or an
 * unsubscribe (RFC 8058), or because someone put them there. An entry belongs to one sending
 * domain (the From domain of the mail that bounced), or to every domain ("" — what Resend's
 * POST /suppressions makes, as its list is per account). In queue.db, so that the bounce that
 * adds an address and the event that reports it commit together. Pure storage. */
#ifndef MAILWERK_EVENTS_SUPPRESSIONS_H
#define MAILWERK_EVENTS_SUPPRESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events/events.h"

struct db;

enum suppression_origin {
	SUPPRESSION_BOUNCE = 0,
	SUPPRESSION_COMPLAINT,
	SUPPRESSION_UNSUBSCRIBE,
	SUPPRESSION_MANUAL,
	SUPPRESSION_ORIGIN_COUNT,
};
/* Resend's words ("bounce", "complaint", "manual") and ours ("unsubscribe"). */
const char *suppression_origin_str(enum suppression_origin o);
bool suppression_origin_parse(const char *s, enum suppression_origin *o_r);

struct suppression {
	char id[EMAIL_ID_LEN + 1];
	char domain[256];  /* "" for every domain */
	char email[256];   /* lower case */
	enum suppression_origin origin;
	char source_id[EMAIL_ID_LEN + 1]; /* the email that caused it, "" when none */
	int64_t created_at; /* unix milliseconds */
};

extern const char suppressions_schema_sql[];

/* Adds (domain, email) unless it is there already (then *existed_r, and the entry in s_r is the
 * old one). Inside the caller's transaction, or on its own. SQLITE_OK or the error. */
int suppression_add(struct db *db, const char *domain, const char *email, enum suppression_origin origin,
		    const char *source_id, int64_t now_ms, struct suppression *s_r, bool *existed_r);
/* The entry that stops mail from domain to email (its own, or one for every domain): 1, 0, -1. */
int suppression_find(struct db *db, const char *domain, const char *email, struct suppression *s_r);
/* By id, or the first by address: 1, 0, -1. */
int suppression_get(struct db *db, const char *id_or_email, struct suppression *s_r);
/* Removes the entry with this id, or every entry of this address: how many (0 when none), or -1. */
int suppression_remove(struct db *db, const char *id_or_email);
/* Up to limit entries, newest first, of one origin or all (origin < 0); cursors as for emails. 1,
 * 0 when the cursor is unknown, -1 on error. */
int suppression_list(struct db *db, unsigned limit, const char *after, const char *before, int origin,
		     struct suppression **s_r, size_t *count_r, bool *has_more_r);

#endif

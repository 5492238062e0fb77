/* local.h — local delivery of one recipient: Return-Path and Delivered-To (RFC 5321 §4.4) in front of
 * the stored message, into the user's Maildir, or for a routed address into the inbound store (with
 * its email.received webhook), or both. The runner (runner.h) decides when and records. */
#ifndef MAILWERK_DELIVERY_LOCAL_H
#define MAILWERK_DELIVERY_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/result.h"

struct inbound_store;
struct users;

struct delivery_local {
	const char *data_dir;
	const char *hostname;
	const char *delims; /* [delivery] recipient_delimiter */
	struct users *users;
	struct inbound_store *inbound;
	bool checked; /* [smtp] checks: the MX's Authentication-Results on a message is ours */
};

/* Delivers the message to addr. RESULT_OK; else TEMPFAIL or PERMFAIL with a sentence in err and the
 * RFC 3463 status in *status_r. */
/* folder: NULL or "" for the inbox, else a Maildir++ folder name ("Junk"). */
enum result delivery_local_one(const struct delivery_local *d, const char *id, const char *sender, const char *addr,
			       const char *folder, const char *data, size_t size, char *err, size_t err_size,
			       const char **status_r);

#endif

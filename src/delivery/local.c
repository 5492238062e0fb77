/* local.c — local delivery: Return-Path and Delivered-To (RFC 5321 §4.4) in front of the stored
 * message, into the user's Maildir; a routed address's copy into the inbound store. */
#include "delivery/local.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "inbound/inbound_store.h"
#include "mailbox/maildir.h"
#include "mailbox/users.h"
#include "util/addr.h"
#include "util/date.h"
#include "util/log.h"

/* The user's Maildir (folder: NULL or "" for the inbox). */
static enum result deliver_mailbox(const struct delivery_local *d, const char *id, const char *sender,
				   const char *addr, const char *mailbox, const char *folder, const char *data,
				   size_t size, const char **err_r)
{
	char path[4096], name[MAILDIR_NAME_MAX + 1];
	uint64_t quota = 0;
	enum result rr = users_user_quota(d->users, mailbox, &quota, err_r);
	if (rr == RESULT_OK && maildir_path(d->data_dir, mailbox, path, sizeof(path)) != 0) {
		rr = RESULT_PERMFAIL;
		*err_r = "the mailbox path is too long";
	}
	/* Maildir++: a folder is the subdirectory "." + its name, a maildir of its own */
	if (rr == RESULT_OK && folder != NULL && folder[0] != '\0') {
		size_t n = strlen(path);
		if (strchr(folder, '/') != NULL || folder[0] == '.' ||
		    (size_t)snprintf(path + n, sizeof(path) - n, "/.%s", folder) >= sizeof(path) - n) {
			rr = RESULT_PERMFAIL;
			*err_r = "the folder name cannot be used";
		}
	}
	if (rr == RESULT_OK) {
		/* RFC 5321 §4.4: the final delivery adds Return-Path; Delivered-To marks this hop, as
		 * qmail and Postfix do, so a forwarding loop can be seen */
		char head[2 * ADDR_TEXT_MAX + 64];
		int n = snprintf(head, sizeof(head), "Return-Path: <%s>\r\nDelivered-To: %s\r\n", sender, addr);
		struct iovec parts[2] = {{head, (size_t)n}, {(void *)data, size}};
		rr = maildir_deliver(path, d->hostname, parts, 2, quota, name, err_r);
	}
	if (rr == RESULT_OK)
		log_info("queue_id=%s event=delivered rcpt=%s mailbox=%s%s%s file=%s", id, addr, mailbox,
			 folder != NULL && folder[0] != '\0' ? " folder=" : "", folder != NULL ? folder : "", name);
	return rr;
}

/* The inbound store, for the applications (its email.received is queued with it). */
static enum result deliver_route(const struct delivery_local *d, const char *id, const char *sender,
				 const char *addr, const struct users_route *route, const char *data, size_t size,
				 char *err, size_t err_size)
{
	struct inbound_copy c = {.queue_id = id, .rcpt = addr, .route_id = route->id, .sender = sender, .data = data,
				 .size = size, .hostname = d->hostname, .checked = d->checked};
	char copy[INBOUND_ID_LEN + 1];
	if (d->inbound == NULL) {
		snprintf(err, err_size, "the inbound store is not open");
		return RESULT_TEMPFAIL;
	}
	enum result rr = inbound_store_put(d->inbound, &c, date_now_ms(), copy, err, err_size);
	if (rr == RESULT_OK)
		log_info("queue_id=%s event=delivered rcpt=%s route=%s received_id=%s", id, addr, route->address, copy);
	return rr;
}

enum result delivery_local_one(const struct delivery_local *d, const char *id, const char *sender, const char *addr,
			       const char *folder, const char *data, size_t size, char *err_r, size_t err_size,
			       const char **status_r)
{
	struct users_rcpt who;
	const char *err = NULL;
	err_r[0] = '\0';
	enum result rr = users_rcpt_resolve(d->users, addr, d->delims, &who, &err);
	if (rr == RESULT_OK && who.kind == USERS_RCPT_ROUTE) {
		rr = deliver_route(d, id, sender, addr, &who.route, data, size, err_r, err_size);
		err = err_r[0] != '\0' ? err_r : NULL;
		/* with mailbox, a user's Maildir too (an alias's targets were queued beside this address);
		 * a retry after a failure here finds the copy stored and stores nothing twice */
		if (rr == RESULT_OK && who.route.mailbox &&
		    users_rcpt_resolve_unrouted(d->users, addr, d->delims, &who, &err) == RESULT_OK &&
		    who.kind == USERS_RCPT_USER)
			rr = deliver_mailbox(d, id, sender, addr, who.address, folder, data, size, &err);
		if (rr == RESULT_OK)
			return RESULT_OK;
	} else if (rr == RESULT_OK && who.kind != USERS_RCPT_USER) {
		/* aliases were expanded when the message was queued; this one appeared since */
		rr = RESULT_PERMFAIL;
		err = "the address became an alias after the message was queued";
	} else if (rr == RESULT_OK) {
		rr = deliver_mailbox(d, id, sender, addr, who.address, folder, data, size, &err);
		if (rr == RESULT_OK)
			return RESULT_OK;
	}
	switch (rr) {
	case RESULT_OK:
		return RESULT_OK;
	case RESULT_TEMPFAIL:
		/* RFC 3463: X.2.2 mailbox full; X.3.0 other mail system problem */
		*status_r = err != NULL && strstr(err, "quota") != NULL ? "4.2.2" : "4.3.0";
		break;
	case RESULT_PERMFAIL:
		*status_r = "5.1.1"; /* RFC 3463: bad destination mailbox address */
		break;
	}
	if (err != err_r)
		snprintf(err_r, err_size, "%s", err != NULL ? err : "unknown error");
	return rr;
}

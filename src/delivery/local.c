/* local.c — local delivery: Return-Path and Delivered-To (RFC 5321 §4.4) in front of the stored
 * message, into the user's Maildir. */
#include "delivery/local.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "mailbox/maildir.h"
#include "mailbox/users.h"
#include "util/addr.h"
#include "util/log.h"

enum result delivery_local_one(const struct delivery_local *d, const char *id, const char *sender, const char *addr,
			       const char *folder, const char *data, size_t size, char *err_r, size_t err_size,
			       const char **status_r)
{
	struct users_rcpt who;
	const char *err = NULL;
	char path[4096], name[MAILDIR_NAME_MAX + 1];
	enum result rr = users_rcpt_resolve(d->users, addr, d->delims, &who, &err);

	if (rr == RESULT_OK && who.kind != USERS_RCPT_USER) {
		/* aliases were expanded when the message was queued; this one appeared since */
		rr = RESULT_PERMFAIL;
		err = "the address became an alias after the message was queued";
	}
	uint64_t quota = 0;
	if (rr == RESULT_OK)
		rr = users_user_quota(d->users, who.address, &quota, &err);
	if (rr == RESULT_OK && maildir_path(d->data_dir, who.address, path, sizeof(path)) != 0) {
		rr = RESULT_PERMFAIL;
		err = "the mailbox path is too long";
	}
	/* Maildir++: a folder is the subdirectory "." + its name, a maildir of its own */
	if (rr == RESULT_OK && folder != NULL && folder[0] != '\0') {
		size_t n = strlen(path);
		if (strchr(folder, '/') != NULL || folder[0] == '.' ||
		    (size_t)snprintf(path + n, sizeof(path) - n, "/.%s", folder) >= sizeof(path) - n) {
			rr = RESULT_PERMFAIL;
			err = "the folder name cannot be used";
		}
	}
	if (rr == RESULT_OK) {
		/* RFC 5321 §4.4: the final delivery adds Return-Path; Delivered-To marks this hop, as
		 * qmail and Postfix do, so a forwarding loop can be seen */
		char head[2 * ADDR_TEXT_MAX + 64];
		int n = snprintf(head, sizeof(head), "Return-Path: <%s>\r\nDelivered-To: %s\r\n", sender, addr);
		struct iovec parts[2] = {{head, (size_t)n}, {(void *)data, size}};
		rr = maildir_deliver(path, d->hostname, parts, 2, quota, name, &err);
	}
	switch (rr) {
	case RESULT_OK:
		log_info("queue_id=%s event=delivered rcpt=%s mailbox=%s%s%s file=%s", id, addr, who.address,
			 folder != NULL && folder[0] != '\0' ? " folder=" : "", folder != NULL ? folder : "", name);
		return RESULT_OK;
	case RESULT_TEMPFAIL:
		/* RFC 3463: X.2.2 mailbox full; X.3.0 other mail system problem */
		*status_r = err != NULL && strstr(err, "quota") != NULL ? "4.2.2" : "4.3.0";
		break;
	case RESULT_PERMFAIL:
		*status_r = "5.1.1"; /* RFC 3463: bad destination mailbox address */
		break;
	}
	snprintf(err_r, err_size, "%s", err != NULL ? err : "unknown error");
	return rr;
}

/* classify.h — what kind of bounce a refusal is, in the shape Resend's email.bounced carries
 * (type Permanent / Transient / Undetermined, with a subtype), from the RFC 3463 enhanced status
 * code and, where the receiver gave none, from the words of its reply. Pure. */
#ifndef MAILWERK_EVENTS_CLASSIFY_H
#define MAILWERK_EVENTS_CLASSIFY_H

#include <stdbool.h>

enum bounce_class_type {
	BOUNCE_CLASS_UNDETERMINED = 0,
	BOUNCE_CLASS_PERMANENT,
	BOUNCE_CLASS_TRANSIENT,
};

enum bounce_class_subtype {
	BOUNCE_SUB_GENERAL = 0,
	BOUNCE_SUB_NO_EMAIL,          /* the mailbox or domain does not exist */
	BOUNCE_SUB_MAILBOX_FULL,
	BOUNCE_SUB_MESSAGE_TOO_LARGE,
	BOUNCE_SUB_CONTENT_REJECTED,  /* refused for what the message says (spam, a virus) */
	BOUNCE_SUB_POLICY_REJECTED,   /* refused by a rule about the sender (reputation, authentication) */
	BOUNCE_SUB_SUPPRESSED,        /* on our suppression list: not attempted */
};

struct bounce_class {
	enum bounce_class_type type;
	enum bounce_class_subtype subtype;
};

const char *bounce_class_type_str(enum bounce_class_type t);       /* "Permanent", ... */
const char *bounce_class_subtype_str(enum bounce_class_subtype s); /* "General", "NoEmail", ... */

/* status: "5.1.1" or NULL; reply: the receiver's text or NULL; remote: the text came from the
 * receiver (not our own reason). */
struct bounce_class bounce_classify(const char *status, const char *reply, bool remote);

#endif

/* classify.c — bounce classification from RFC 3463 codes and reply words (classify.h). */
#include "events/classify.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

const char *bounce_class_type_str(enum bounce_class_type t)
{
	switch (t) {
	case BOUNCE_CLASS_PERMANENT: return "Permanent";
	case BOUNCE_CLASS_TRANSIENT: return "Transient";
	case BOUNCE_CLASS_UNDETERMINED: break;
	}
	return "Undetermined";
}

const char *bounce_class_subtype_str(enum bounce_class_subtype s)
{
	switch (s) {
	case BOUNCE_SUB_NO_EMAIL: return "NoEmail";
	case BOUNCE_SUB_MAILBOX_FULL: return "MailboxFull";
	case BOUNCE_SUB_MESSAGE_TOO_LARGE: return "MessageTooLarge";
	case BOUNCE_SUB_CONTENT_REJECTED: return "ContentRejected";
	case BOUNCE_SUB_POLICY_REJECTED: return "PolicyRejected";
	case BOUNCE_SUB_SUPPRESSED: return "Suppressed";
	case BOUNCE_SUB_GENERAL: break;
	}
	return "General";
}

/* RFC 3463 §3.1: class.subject.detail, each 1-3 digits, class 2, 4 or 5. */
static bool status_parse(const char *s, int *cls_r, int *subj_r, int *det_r)
{
	int v[3] = {0, 0, 0};
	for (int part = 0; part < 3; part++) {
		int digits = 0;
		/* RFC 3463 §3.1: the class is one digit; subject and detail 1-3 */
		int max = part == 0 ? 1 : 3;
		while (*s >= '0' && *s <= '9' && digits <= max) {
			v[part] = v[part] * 10 + (*s++ - '0');
			digits++;
		}
		if (digits == 0 || digits > max)
			return false;
		if (part < 2 && *s++ != '.')
			return false;
	}
	if (*s != '\0' || (v[0] != 2 && v[0] != 4 && v[0] != 5))
		return false;
	*cls_r = v[0], *subj_r = v[1], *det_r = v[2];
	return true;
}

static bool has_word(const char *text, const char *const *words)
{
	for (size_t i = 0; words[i] != NULL; i++)
		if (strcasestr(text, words[i]) != NULL)
			return true;
	return false;
}

/* Receivers that give no enhanced code, or a vague one (5.0.0), often say what they mean. */
static enum bounce_class_subtype subtype_from_words(const char *reply)
{
	static const char *const no_email[] = {"user unknown", "unknown user", "no such user", "does not exist",
					       "no mailbox", "mailbox unavailable", "recipient not found",
					       "address rejected", "invalid recipient", "no such recipient", NULL};
	static const char *const full[] = {"mailbox full", "over quota", "quota exceeded", "insufficient storage", NULL};
	static const char *const large[] = {"too large", "too big", "size exceeds", "message size", NULL};
	static const char *const content[] = {"spam", "virus", "malware", "content rejected", "message content", NULL};
	static const char *const policy[] = {"policy", "blocked", "blacklist", "blocklist", "reputation", "dmarc",
					     "spf", "not authorized", "relay", NULL};
	if (reply == NULL)
		return BOUNCE_SUB_GENERAL;
	if (has_word(reply, no_email))
		return BOUNCE_SUB_NO_EMAIL;
	if (has_word(reply, full))
		return BOUNCE_SUB_MAILBOX_FULL;
	if (has_word(reply, large))
		return BOUNCE_SUB_MESSAGE_TOO_LARGE;
	if (has_word(reply, content))
		return BOUNCE_SUB_CONTENT_REJECTED;
	if (has_word(reply, policy))
		return BOUNCE_SUB_POLICY_REJECTED;
	return BOUNCE_SUB_GENERAL;
}

struct bounce_class bounce_classify(const char *status, const char *reply, bool remote)
{
	struct bounce_class c = {BOUNCE_CLASS_UNDETERMINED, BOUNCE_SUB_GENERAL};
	int cls, subj, det;
	if (status == NULL || !status_parse(status, &cls, &subj, &det)) {
		c.subtype = remote ? subtype_from_words(reply) : BOUNCE_SUB_GENERAL;
		return c;
	}
	c.type = cls == 5 ? BOUNCE_CLASS_PERMANENT : cls == 4 ? BOUNCE_CLASS_TRANSIENT : BOUNCE_CLASS_UNDETERMINED;
	switch (subj) {
	case 1: /* RFC 3463 §3.2 addressing: bad mailbox (1), bad system (2), moved (6), null MX (RFC 7505: 10) */
		c.subtype = det == 1 || det == 2 || det == 3 || det == 6 || det == 10 ? BOUNCE_SUB_NO_EMAIL
										      : BOUNCE_SUB_GENERAL;
		break;
	case 2: /* §3.3 mailbox status */
		if (det == 2) {
			/* X.2.2 mailbox full: RFC 3463 calls it transient in nature even when sent as 5.2.2
			 * (many receivers do), so the address is not suppressed for it */
			c.type = BOUNCE_CLASS_TRANSIENT;
			c.subtype = BOUNCE_SUB_MAILBOX_FULL;
		} else if (det == 3) {
			c.subtype = BOUNCE_SUB_MESSAGE_TOO_LARGE;
		} else if (det == 1) {
			c.subtype = BOUNCE_SUB_NO_EMAIL; /* disabled, not accepting messages */
		}
		break;
	case 3: /* §3.4 mail system status: X.3.4 message too big for the system */
		c.subtype = det == 4 ? BOUNCE_SUB_MESSAGE_TOO_LARGE : BOUNCE_SUB_GENERAL;
		break;
	case 6: /* §3.7 message content or media */
		c.subtype = BOUNCE_SUB_CONTENT_REJECTED;
		break;
	case 7: /* §3.8 security or policy; RFC 7372 adds the authentication ones (X.7.20-27) */
		c.subtype = remote && subtype_from_words(reply) == BOUNCE_SUB_CONTENT_REJECTED ? BOUNCE_SUB_CONTENT_REJECTED
											: BOUNCE_SUB_POLICY_REJECTED;
		break;
	default:
		c.subtype = remote ? subtype_from_words(reply) : BOUNCE_SUB_GENERAL;
	}
	return c;
}

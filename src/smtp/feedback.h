/* feedback.h — the MX side of reports about our tracked mail (DSNs and complaints): which
 * recipients take them, and recording what a report says instead of delivering it. */
#ifndef MAILWERK_SMTP_FEEDBACK_H
#define MAILWERK_SMTP_FEEDBACK_H

#include <stdbool.h>

#include "smtp/session.h"
#include "util/addr.h"

struct queue_msg;

/* Whether a (RCPT TO on the MX listener) takes reports: a return path of tracked mail
 * (bounces+ID@LABEL.DOMAIN with DOMAIN local) or [api] complaint_address. */
bool smtp_feedback_rcpt(struct smtp_session *s, const struct addr *a);
/* m (whose recipients all take reports) is read as a DSN or an ARF report and recorded; the
 * session, waiting, is answered once that is durable. Takes m. */
void smtp_feedback_finish(struct smtp_session *s, struct queue_msg *m);

#endif

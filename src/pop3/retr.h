/* retr.h — RETR and TOP for cmd.c and session.c (see retr.c). */
#ifndef MAILWERK_POP3_RETR_H
#define MAILWERK_POP3_RETR_H

#include <stdbool.h>
#include <stdint.h>

struct pop3_session;

/* Answers RETR (top false) or TOP num lines for message num, which the caller has checked exists
 * and is not deleted; true when the session now waits for the answer (a worker reads it). */
bool pop3_retr_start(struct pop3_session *s, uint32_t num, bool top, uint32_t lines);
/* The output drained: the next piece of a parked RETR/TOP goes out. */
void pop3_retr_continue(struct pop3_session *s);
/* The session is being freed: what the RETRs keep for it goes too. */
void pop3_retr_free(struct pop3_session *s);

#endif

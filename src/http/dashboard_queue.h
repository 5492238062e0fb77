/* dashboard_queue.h — the queue on the dashboard: what waits (GET /dashboard/queue), every deferred
 * recipient tried again now (POST /dashboard/queue/retry, `mailwerk queue flush`), and a message
 * removed (DELETE /dashboard/queue/ID, `mailwerk queue delete`). Not API routes: Resend has no
 * queue. The caller has checked the session (and its CSRF token for a change). Loop thread. */
#ifndef MAILWERK_HTTP_DASHBOARD_QUEUE_H
#define MAILWERK_HTTP_DASHBOARD_QUEUE_H

struct http_call;

/* Answers the call; rest is what follows "/dashboard/queue" in the path ("", "/retry", "/ID"), and
 * extra the header fields of the answer (static). */
void dashboard_queue(struct http_call *c, const char *rest, const char *extra);

#endif

/* retention.h — pruning old records and events of tracked mail ([api] retention). Loop thread. */
#ifndef MAILWERK_HTTP_RETENTION_H
#define MAILWERK_HTTP_RETENTION_H

struct server;
struct http_api;

/* Starts the timer (a->retention_timer); 0, or -1. */
int http_retention_start(struct server *srv, struct http_api *a);
void http_retention_stop(struct http_api *a);

#endif

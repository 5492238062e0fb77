/* attachments_fetch.h — the attachments of one send request that are given by URL
 * (`attachments[].path`, allowed by [api] fetch_attachment_urls): fetched with the HTTP client
 * (net/http_client.h: its SSRF check, no proxy, TLS verified, few redirects), a bounded number at
 * once, within the size each email has left and a byte budget for the whole request, and put into
 * the attachments as if they had come as `content`.
 *
 * One step of DESIGN.md §4's check → start → callback → proceed: start, then done is called once
 * on the loop, never from within attachments_fetch_start. The email_reqs stay the caller's and must
 * live until then. Loop thread only. */
#ifndef MAILWERK_HTTP_ATTACHMENTS_FETCH_H
#define MAILWERK_HTTP_ATTACHMENTS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct attachments_fetch;
struct budget;
struct email_req;
struct event_base;
struct http_client;

#define ATTACHMENTS_FETCH_PARALLEL 4 /* fetches of one request in flight at once */

struct attachments_fetch_opts {
	struct http_client *http;
	struct event_base *base;
	struct budget *memory;     /* the server's ([server] max_memory_in_flight): fetched octets are charged */
	uint64_t max_message_size; /* [smtp] max_message_size: html + text + attachments of each email */
	uint64_t max_total;        /* every octet fetched for the request together */
	unsigned timeout_ms;       /* all the fetches of the request together */
	bool allow_private;        /* [webhooks] allow_private (see http_client_opts) */
	bool stop_at_first;        /* strict: one email's failure ends the request's fetching */
	/* asked before each fetch is started (NULL: always yes): false when nobody waits any more
	 * (the session has gone); the running ones are then cancelled and done reports cancelled */
	bool (*wanted)(void *arg);
};

struct attachments_fetch_result {
	bool cancelled;            /* by attachments_fetch_cancel_all or wanted(): nothing was filled in reliably */
	bool busy;                 /* [server] max_memory_in_flight had no room for what came */
	const char *const *errors; /* errors[i]: NULL, or why email i's attachments could not be
				    * fetched ("attachments[1].path: the server answered 404") */
	uint64_t charged;          /* octets taken from opts.memory: give them back when freeing the reqs */
};
/* The result and its strings live only during the call. */
typedef void attachments_fetch_done_fn(void *arg, const struct attachments_fetch_result *r);

/* Whether r has an attachment to fetch (path set, content NULL). */
bool attachments_fetch_needed(const struct email_req *r);

/* Fetches the attachments of reqs[0..n) (NULL entries are skipped). On success each such
 * attachment has its content and size, and one whose content_type is NULL gets the answer's type
 * (else application/octet-stream): the caller leaves it NULL when neither the request nor the file
 * name said more than application/octet-stream; a type without parameters that is the answer's
 * media type takes the answer's parameters (its charset). An email without a filename for an
 * attachment that is not inline gets the URL's last path segment when that is UTF-8 (percent-decoded)
 * without controls.
 * The fetch is put on *list (what attachments_fetch_cancel_all ends). 0 when started, -1 when out
 * of memory (done will not be called then). */
int attachments_fetch_start(struct attachments_fetch **list, struct email_req *const *reqs, size_t n,
			    const struct attachments_fetch_opts *o, attachments_fetch_done_fn *done, void *arg);

/* Ends every fetch on *list: each one's done is called with cancelled (before the HTTP client is
 * freed, at the API's deinit). */
void attachments_fetch_cancel_all(struct attachments_fetch **list);

#endif

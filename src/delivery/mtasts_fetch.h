/* mtasts_fetch.h — one fetch of a domain's MTA-STS policy (RFC 8461 §3.3) on the event loop: the
 * addresses of mta-sts.DOMAIN through our resolver (net/dns.h, A and AAAA at once), then
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt with net/http_client.h handed those addresses
 * (CURLOPT_RESOLVE), so libcurl's own resolver is never asked. The answer counts only when:
 *   - the certificate chains to the system's trust store (or the test CA file) and names
 *     mta-sts.DOMAIN (§3.3: "the HTTPS endpoint MUST present a X.509 certificate which is valid for
 *     the mta-sts host"); libcurl checks both, with its host-name check on;
 *   - the status is 200 (§3.3: "senders MUST NOT follow HTTP redirects"; a 3xx is a failure);
 *   - Content-Type is text/plain, parameters allowed (§3.2);
 *   - the body is at most MTASTS_POLICY_MAX octets (a longer one is a failure, never cut: a policy
 *     read in part is not the policy) and parses (delivery/mtasts.h);
 *   - all of it within the deadline (§3.3 suggests 60 s for the whole fetch).
 * Addresses that are not public (net/http_url.h: loopback, RFC 1918, link-local, ...) are left out
 * unless allow_private: a domain's DNS must not make this server fetch from its own network (SSRF);
 * libcurl's connect-time check judges the same addresses again. Loop thread only. */
#ifndef MAILWERK_DELIVERY_MTASTS_FETCH_H
#define MAILWERK_DELIVERY_MTASTS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/mtasts.h"

struct dns;
struct http_client;
struct mtasts_fetch;

/* Addresses of the policy host handed to libcurl, at most. */
#define MTASTS_FETCH_ADDRS_MAX 8

struct mtasts_fetch_opts {
	struct dns *dns;          /* kept by the caller for as long as a fetch runs */
	struct http_client *http; /* the same */
	const char *ca_file;      /* NULL or "": the system's trust store only; else trusted besides it */
	bool allow_private;       /* [delivery] mta_sts_allow_private: loopback etc. for tests */
	unsigned timeout_ms;      /* the whole fetch, DNS included */
};

/* Why a fetch failed, a stable word for logs (reason=...). */
enum mtasts_fetch_error {
	MTASTS_FETCH_OK = 0,
	MTASTS_FETCH_DNS,          /* the policy host's addresses could not be looked up */
	MTASTS_FETCH_NO_ADDRESS,   /* it has none */
	MTASTS_FETCH_PRIVATE,      /* it has only addresses that are not public */
	MTASTS_FETCH_HTTP,         /* connect, TLS (certificate), timeout, or the transfer failed */
	MTASTS_FETCH_STATUS,       /* an answer other than 200, a redirect included */
	MTASTS_FETCH_CONTENT_TYPE, /* not text/plain */
	MTASTS_FETCH_TOO_LARGE,    /* more than MTASTS_POLICY_MAX octets */
	MTASTS_FETCH_POLICY,       /* the text is not a valid policy */
	MTASTS_FETCH_TIMEOUT,      /* the deadline passed */
};
const char *mtasts_fetch_error_str(enum mtasts_fetch_error e);

struct mtasts_fetch_result {
	enum mtasts_fetch_error error;
	const char *why;                    /* a sentence; "" when OK */
	long status;                        /* the HTTP status, 0 when none came */
	const struct mtasts_policy *policy; /* OK: the parsed policy; valid during the callback */
	const char *text;                   /* OK: the policy text as fetched, NUL-terminated */
	size_t text_len;
	unsigned elapsed_ms;
};

/* Called once on the loop thread, never from within mtasts_fetch_start, unless cancelled first. */
typedef void mtasts_fetch_done_fn(void *arg, const struct mtasts_fetch_result *r);

/* Starts a fetch for domain (a host name). NULL with a sentence when it cannot start (not a host
 * name, out of memory): done is then not called. */
struct mtasts_fetch *mtasts_fetch_start(const struct mtasts_fetch_opts *o, const char *domain,
					mtasts_fetch_done_fn *done, void *arg, char *error, size_t error_size);
/* Ends a fetch whose done has not been called; done is then never called. */
void mtasts_fetch_cancel(struct mtasts_fetch *f);

#endif

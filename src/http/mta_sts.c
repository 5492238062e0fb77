/* mta_sts.c — the MTA-STS policy host of this server's domains (RFC 8461 §3.2): GET (or HEAD)
 * /.well-known/mta-sts.txt with Host: mta-sts.DOMAIN for a local DOMAIN answers the policy of
 * [mta_sts] as text/plain; any other host gets 404. Outside the API's keys: senders fetch it
 * anonymously. The policy is the same for every local domain, so its id (mtasts_policy_id) is the
 * one `mailwerk dns records` prints for each _mta-sts TXT record. A certificate for mta-sts.DOMAIN
 * on the HTTPS listener is the operator's (or, later, ACME's) business: senders verify it. */
#include <string.h>

#include "conf/conf.h"
#include "delivery/mtasts_rules.h"
#include "http/api.h"
#include "http/session.h"
#include "mailbox/users.h"
#include "server/server.h"

#define MTA_STS_PATH "/.well-known/mta-sts.txt"

bool http_mta_sts_handle(struct http_session *s)
{
	if (strcmp(s->req.path, MTA_STS_PATH) != 0)
		return false;
	if (s->req.method != HTTP_METHOD_GET && s->req.method != HTTP_METHOD_HEAD) {
		http_respond_body(s, 405, "text/plain", "method not allowed\n", 19, "Allow: GET, HEAD\r\n");
		return true;
	}
	char domain[DNS_HOST_SIZE];
	if (!mtasts_host_domain(s->req.host, strlen(s->req.host), domain, sizeof(domain)) ||
	    users_domain_is_local(s->srv->users, domain) != RESULT_OK) {
		http_respond_body(s, 404, "text/plain", "no MTA-STS policy for this host\n", 32, NULL);
		return true;
	}
	char text[MTASTS_TEXT_MAX];
	size_t len = mtasts_served_text(s->conf, text, sizeof(text));
	if (len == 0) {
		http_respond_body(s, 500, "text/plain", "the policy does not fit\n", 24, NULL);
		return true;
	}
	/* §3.3 caches by max_age and id, not by HTTP: an intermediary should not keep an old one */
	http_respond_body(s, 200, "text/plain; charset=utf-8", text, len, "Cache-Control: no-cache\r\n");
	return true;
}

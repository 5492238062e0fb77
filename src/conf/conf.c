/* conf.c — loads mailwerk.conf (INI, read by inih), applies `-o section.key=value` overrides and
 * validates every value. The key table below is the single list of what may be configured. */
#include "conf/conf.h"
#include "conf/conf_int.h"

#include "net/dns_parse.h"
#include "net/http_url.h"
#include "util/addr.h"
#include "util/list.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ini.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum conf_type {
	CONF_T_STRING,
	CONF_T_PATH, /* absolute path */
	CONF_T_UINT,
	CONF_T_SIZE,
	CONF_T_DURATION,
	CONF_T_DURATION_MS, /* milliseconds: "250ms", "2s" */
	CONF_T_BOOL,
	CONF_T_LISTEN,
	CONF_T_HOSTNAME,
	CONF_T_SCHEDULE,
	CONF_T_DELIMITERS,
	CONF_T_RESOLVER,  /* "" or a numeric "ADDR[@PORT]" */
	CONF_T_PATH_OPT,  /* "" or an absolute path */
	CONF_T_TLS_POLICY, /* a name of tls_policy_names */
	CONF_T_RELAY_TLS, /* a name of relay_tls_names */
	CONF_T_RELAY_HOST, /* "" or host[:port], [address][:port]; sets relay_port too */
	CONF_T_LOGIN,     /* "" or a user name for AUTH */
	CONF_T_SECRET_FILE, /* "" or an absolute path; the field gets the file's first line */
	CONF_T_THROTTLE,  /* free key DOMAIN = COUNT/PERIOD */
	CONF_T_TLS_OVERRIDE, /* free key DOMAIN = a name of tls_override_names */
	CONF_T_DMARC_ACTION, /* a name of dmarc_action_names */
	CONF_T_DKIM_CANON, /* "relaxed/relaxed", "simple/relaxed", ..., or one word for both */
	CONF_T_MAILBOX_OPT, /* "" or one address local@domain (RFC 5321 §4.1.2) */
	CONF_T_RATE,      /* "none" or COUNT/PERIOD (struct conf_rate) */
	CONF_T_STS_MODE,  /* a name of sts_mode_names */
	CONF_T_MX_LIST,   /* "" or comma-separated host names or "*." patterns */
	CONF_T_HTTPS_URL, /* "" or an https URL (net/http_url.h) */
	CONF_T_HOSTNAMES, /* "" or comma-separated host names */
	CONF_T_ACME_CHALLENGE, /* a name of acme_challenge_names */
	CONF_T_KEY_FILE_OPT, /* "" or an absolute path of a PEM private key, read at load */
};

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *def; /* NULL: required */
	uint64_t min, max; /* for UINT, SIZE, DURATION (seconds), DURATION_MS (milliseconds) */
};
/* A key whose name is NULL stands for any key of its section (the name is part of the value). */

#define OFF(f) offsetof(struct conf, f)
/* CONF_T_SCHEDULE writes an array and the count right after it */
#define SCHEDULE_PAIR(a, n) (offsetof(struct conf, n) == offsetof(struct conf, a) + sizeof(((struct conf *)0)->a))
_Static_assert(SCHEDULE_PAIR(retry_schedule, retry_count), "retry_count must follow retry_schedule");
_Static_assert(SCHEDULE_PAIR(webhook_retry_schedule, webhook_retry_count),
	       "webhook_retry_count must follow webhook_retry_schedule");
_Static_assert(SCHEDULE_PAIR(acme_retry_schedule, acme_retry_count), "acme_retry_count must follow acme_retry_schedule");
#define LISTEN_OFF(l) (offsetof(struct conf, listen) + (l) * sizeof(struct conf_listen))

static const char *const tls_policy_names[] = {"opportunistic", "required", "none", NULL};
static const char *const relay_tls_names[] = {"starttls", "implicit", "none", NULL};
static const char *const dmarc_action_names[] = {"enforce", "report", NULL};
static const char *const sts_mode_names[] = {"testing", "enforce", "none", NULL};
static const char *const acme_challenge_names[] = {"http-01", "tls-alpn-01", NULL};

#define RELAY_PORT_DEFAULT 587 /* RFC 6409 submission */
#define SECRET_MAX 1024        /* longest password line we read */

static const struct conf_key conf_keys[] = {
	{"server", "hostname", CONF_T_HOSTNAME, OFF(hostname), NULL, 0, 0},
	{"server", "data_dir", CONF_T_PATH, OFF(data_dir), NULL, 0, 0},
	/* DESIGN.md §6: bind the ports as root, then run as this user */
	{"server", "user", CONF_T_STRING, OFF(user), "", 0, 0},
	/* the DKIM signer process runs as this user (it alone reads the private keys); "": [server] user */
	{"server", "signer_user", CONF_T_STRING, OFF(signer_user), "", 0, 0},
	/* the worker's seccomp allow-list (server/sandbox.c); no: only for a platform it does not know */
	{"server", "sandbox", CONF_T_BOOL, OFF(sandbox), "yes", 0, 0},
	/* 0 means no limit */
	{"server", "max_connections", CONF_T_UINT, OFF(max_connections), "1000", 0, 1000000},
	{"server", "max_connections_per_ip", CONF_T_UINT, OFF(max_connections_per_ip), "50", 0, 1000000},
	/* per-client limits count an IPv6 client by its prefix: one end site gets at least a /64
	 * (RFC 6177 §3) and may rotate addresses inside it at will */
	{"server", "ipv6_prefix", CONF_T_UINT, OFF(ipv6_prefix), "64", 16, 128},
	/* message content held in memory by all sessions together; past it, 452 4.3.1 */
	{"server", "max_memory_in_flight", CONF_T_SIZE, OFF(max_memory_in_flight), "256M", 1 << 20, 1ull << 40},
	/* below this much free space in data_dir, MAIL is answered 452 4.3.1 (Postfix: queue_minfree),
	 * so that delivery, bounces and the databases keep room; 0: no check */
	{"server", "min_free_space", CONF_T_SIZE, OFF(min_free_space), "100M", 0, 1ull << 50},
	/* failed logins (server/login.c), in Dovecot's shape (auth_failure_delay and its auth penalty):
	 * the first failure from a client waits auth_delay_initial, each further one twice as long, up
	 * to auth_delay_max; auth_ban_failures of them ban the client for auth_ban_time (0: never) */
	{"server", "auth_delay_initial", CONF_T_DURATION_MS, OFF(auth_delay_initial), "2s", 0, 60000},
	{"server", "auth_delay_max", CONF_T_DURATION_MS, OFF(auth_delay_max), "15s", 0, 300000},
	{"server", "auth_ban_failures", CONF_T_UINT, OFF(auth_ban_failures), "10", 0, 100000},
	{"server", "auth_ban_time", CONF_T_DURATION, OFF(auth_ban_time), "1h", 1, 30 * 86400},
	/* an upgrade (server/parent_upgrade.h): how long the old worker's sessions may go on once the
	 * new worker serves, before they are ended as at a stop; 0: ended at once */
	{"server", "drain_timeout", CONF_T_DURATION, OFF(drain_timeout), "60s", 0, 3600},
	{"listen", "smtp", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_SMTP), "", 0, 0},
	{"listen", "submission", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_SUBMISSION), "", 0, 0},
	{"listen", "submissions", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_SUBMISSIONS), "", 0, 0},
	{"listen", "pop3", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_POP3), "", 0, 0},
	{"listen", "pop3s", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_POP3S), "", 0, 0},
	{"listen", "http", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_HTTP), "", 0, 0},
	{"listen", "https", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_HTTPS), "", 0, 0},
	{"tls", "cert", CONF_T_PATH, OFF(tls_cert), NULL, 0, 0},
	{"tls", "key", CONF_T_PATH, OFF(tls_key), NULL, 0, 0},
	/* the key of the certificate that comes next: `dns records` prints its TLSA record so that it
	 * is published before the certificate is used (RFC 7671 §8.1) */
	{"tls", "next_key", CONF_T_KEY_FILE_OPT, OFF(tls_next_key), "", 0, 0},
	/* RFC 1870: the SIZE we advertise; at least 64 KiB per RFC 5321 §4.5.3.1.10. At most 1 GiB:
	 * the queue keeps a message as one SQLite blob, and SQLite's default limit is 10^9 bytes. */
	{"smtp", "max_message_size", CONF_T_SIZE, OFF(max_message_size), "25M", 65536, 1000000000},
	/* RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted */
	{"smtp", "max_recipients", CONF_T_UINT, OFF(max_recipients), "100", 100, 100000},
	{"smtp", "allow_insecure_auth", CONF_T_BOOL, OFF(allow_insecure_auth), "no", 0, 0},
	/* RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command */
	{"smtp", "command_timeout", CONF_T_DURATION, OFF(command_timeout), "5m", 1, 86400},
	{"smtp", "data_timeout", CONF_T_DURATION, OFF(data_timeout), "10m", 1, 86400},
	/* RFC 5321 §4.5.3.2 sets timeouts per command; a client that keeps sending commands (NOOP, RSET)
	 * meets no one of them, so a session as a whole has a deadline too; 0: none */
	{"smtp", "session_timeout", CONF_T_DURATION, OFF(session_timeout), "30m", 0, 7 * 86400},
	/* Postfix's smtpd_min_data_rate: DATA/BDAT content must arrive at least this fast (octets per
	 * second), judged over each min_data_rate_window after a first window of grace; 0: no floor */
	{"smtp", "min_data_rate", CONF_T_UINT, OFF(min_data_rate), "500", 0, 1000000000},
	{"smtp", "min_data_rate_window", CONF_T_DURATION, OFF(min_data_rate_window), "30s", 1, 3600},
	{"smtp", "max_errors", CONF_T_UINT, OFF(max_errors), "10", 1, 1000},
	/* SPF, DKIM and DMARC on the MX listener, reported in Authentication-Results (RFC 8601) */
	{"smtp", "auth_checks", CONF_T_BOOL, OFF(auth_checks), "yes", 0, 0},
	/* verifying a signature costs a DNS query and a hash: a message may not make us do it endlessly */
	{"smtp", "dkim_max_signatures", CONF_T_UINT, OFF(dkim_max_signatures), "5", 1, 50},
	/* enforce: p=reject → 550 5.7.1, p=quarantine → the Junk folder; report: header only */
	{"smtp", "dmarc_action", CONF_T_DMARC_ACTION, OFF(dmarc_action), "enforce", 0, 0},
	/* RFC 1939 §3: an autologout timer of at least 10 minutes (shorter only for tests) */
	{"pop3", "idle_timeout", CONF_T_DURATION, OFF(pop3_idle_timeout), "10m", 1, 86400},
	/* a whole session, however busy; downloading a large maildrop on a slow line takes long; 0: none */
	{"pop3", "session_timeout", CONF_T_DURATION, OFF(pop3_session_timeout), "2h", 0, 7 * 86400},
	{"pop3", "max_errors", CONF_T_UINT, OFF(pop3_max_errors), "10", 1, 1000},
	{"delivery", "recipient_delimiter", CONF_T_DELIMITERS, OFF(recipient_delimiter), "+", 0, 0},
	/* waits between delivery attempts; the last repeats (issue-level default, like Postfix's backoff) */
	{"delivery", "retry_schedule", CONF_T_SCHEDULE, OFF(retry_schedule), "1m,5m,15m,30m,1h,2h,4h", 0, 0},
	/* RFC 5321 §4.5.4.1: give up after at least 4-5 days; then the sender gets a DSN */
	{"delivery", "max_queue_lifetime", CONF_T_DURATION, OFF(max_queue_lifetime), "5d", 1, 90 * 86400},
	/* accept and keep, deliver nothing (maintenance, or measuring acceptance alone); a reload
	 * with hold = no lets the queue go */
	{"delivery", "hold", CONF_T_BOOL, OFF(delivery_hold), "no", 0, 0},
	/* the port of MX hosts; anything but 25 only makes sense for tests against a local peer */
	{"delivery", "remote_port", CONF_T_UINT, OFF(remote_port), "25", 1, 65535},
	{"delivery", "tls", CONF_T_TLS_POLICY, OFF(delivery_tls), "opportunistic", 0, 0},
	{"delivery", "max_connections", CONF_T_UINT, OFF(out_max_connections), "100", 1, 10000},
	/* at most max_connections: checked after loading */
	{"delivery", "max_connections_per_domain", CONF_T_UINT, OFF(out_max_per_domain), "10", 1, 1000},
	/* RFC 3464 "delayed" DSN after this long (4h, as Postfix's delay_warning_time); 0: never */
	{"delivery", "delay_warning_time", CONF_T_DURATION, OFF(delay_warning_time), "4h", 0, 90 * 86400},
	/* the outbound SMTP client's waits, towards MX hosts and the smarthost: the defaults are RFC 5321
	 * §4.5.3.2's (30 s for the connect, which it leaves open, as Postfix's smtp_connect_timeout). Each
	 * bounds a whole reply from the command that asks for it, however its octets trickle in; shorter
	 * than the RFC's only for tests or a peer known to be near */
	{"delivery", "connect_timeout", CONF_T_DURATION, OFF(out_connect_timeout), "30s", 1, 3600},
	{"delivery", "tls_timeout", CONF_T_DURATION, OFF(out_tls_timeout), "5m", 1, 3600},
	{"delivery", "greeting_timeout", CONF_T_DURATION, OFF(out_greeting_timeout), "5m", 1, 3600},
	{"delivery", "command_timeout", CONF_T_DURATION, OFF(out_command_timeout), "5m", 1, 3600},
	{"delivery", "data_init_timeout", CONF_T_DURATION, OFF(out_data_init_timeout), "2m", 1, 3600},
	{"delivery", "data_timeout", CONF_T_DURATION, OFF(out_data_timeout), "3m", 1, 3600},
	{"delivery", "data_end_timeout", CONF_T_DURATION, OFF(out_data_end_timeout), "10m", 1, 3600},
	/* MX hosts' certificates, when verified (MTA-STS, tls = required, [tls_policy] verify): the
	 * system trust store, and the CAs of this file besides it (a private CA; tests) */
	{"delivery", "ca_file", CONF_T_PATH_OPT, OFF(delivery_ca_file), "", 0, 0},
	/* MTA-STS (RFC 8461) towards other domains: the policy host's certificate chains to the system
	 * trust store, or to the CAs of this file besides it (a private CA; tests) */
	{"delivery", "mta_sts_ca_file", CONF_T_PATH_OPT, OFF(mta_sts_ca_file), "", 0, 0},
	/* policy hosts whose addresses are not public (loopback, RFC 1918, link-local, ...): off, so
	 * that a domain's DNS cannot make this server fetch from its own network (SSRF); for tests */
	{"delivery", "mta_sts_allow_private", CONF_T_BOOL, OFF(mta_sts_allow_private), "no", 0, 0},
	/* how long a delivery waits for a policy not yet known before going on without one, while the
	 * fetch finishes in the background (Stalwart waits up to 300 s inline) */
	{"delivery", "mta_sts_budget", CONF_T_DURATION_MS, OFF(mta_sts_budget), "3s", 0, 60000},
	/* one fetch, DNS included: RFC 8461 §3.3 suggests 60 s */
	{"delivery", "mta_sts_fetch_timeout", CONF_T_DURATION_MS, OFF(mta_sts_fetch_timeout), "60s", 100, 300000},
	{"delivery", "mta_sts_max_fetches", CONF_T_UINT, OFF(mta_sts_max_fetches), "16", 1, 1000},
	{"relay", "host", CONF_T_RELAY_HOST, OFF(relay_host), "", 0, 0},
	/* the default depends on the port (465: implicit, RFC 8314); set after loading */
	{"relay", "tls", CONF_T_RELAY_TLS, OFF(relay_tls), "starttls", 0, 0},
	{"relay", "auth_user", CONF_T_LOGIN, OFF(relay_auth_user), "", 0, 0},
	{"relay", "auth_password_file", CONF_T_SECRET_FILE, OFF(relay_auth_password), "", 0, 0},
	{"relay", "ca_file", CONF_T_PATH_OPT, OFF(relay_ca_file), "", 0, 0},
	{"throttle", NULL, CONF_T_THROTTLE, OFF(throttles), NULL, 0, 0},
	{"tls_policy", NULL, CONF_T_TLS_OVERRIDE, OFF(tls_policies), NULL, 0, 0},
	/* authenticated mail From a local domain with an active key is signed once, when queued */
	{"dkim", "sign", CONF_T_BOOL, OFF(dkim_sign), "yes", 0, 0},
	/* RFC 6376 §3.4: relaxed/relaxed survives the rewrapping mail systems do on the way */
	{"dkim", "canonicalization", CONF_T_DKIM_CANON, OFF(dkim_header_relaxed), "relaxed/relaxed", 0, 0},
	/* x= (RFC 6376 §3.5) this long after signing; 0: no expiry */
	{"dkim", "expiration", CONF_T_DURATION, OFF(dkim_expiration), "0", 0, 366 * 86400},
	/* RFC 9990 aggregate reports to the domains that ask for them (rua=) */
	{"dmarc", "reports", CONF_T_BOOL, OFF(dmarc_reports), "no", 0, 0},
	/* the From of the reports; empty: dmarc-reports@<hostname> */
	{"dmarc", "report_from", CONF_T_MAILBOX_OPT, OFF(dmarc_report_from), "", 0, 0},
	/* RFC 9990 asks for daily reports; shorter periods are for tests and busy domains that ask */
	{"dmarc", "report_interval", CONF_T_DURATION, OFF(dmarc_report_interval), "24h", 1, 7 * 86400},
	/* RFC 8460 TLS reports of our outbound sessions, to the domains that publish _smtp._tls; off by
	 * default like [dmarc] reports: the operator chooses to send reports to third parties */
	{"tlsrpt", "reports", CONF_T_BOOL, OFF(tlsrpt_reports), "no", 0, 0},
	/* the From and contact-info of the reports; empty: [dmarc] report_from, else tls-reports@<hostname> */
	{"tlsrpt", "report_from", CONF_T_MAILBOX_OPT, OFF(tlsrpt_report_from), "", 0, 0},
	/* RFC 8460 §4.1: one report per UTC day; shorter periods are for tests */
	{"tlsrpt", "report_interval", CONF_T_DURATION, OFF(tlsrpt_report_interval), "24h", 1, 86400},
	/* PEM CAs an https: rua's certificate may chain to, besides the system's (a private CA, tests) */
	{"tlsrpt", "ca_file", CONF_T_PATH_OPT, OFF(tlsrpt_ca_file), "", 0, 0},
	/* empty: the system's resolvers (/etc/resolv.conf); numeric only, so a typo fails at start-up */
	/* the HTTP API: a request's head and body must have arrived within this */
	{"api", "request_timeout", CONF_T_DURATION, OFF(api_request_timeout), "30s", 1, 3600},
	/* an idle kept-alive connection is closed after this */
	{"api", "keepalive_timeout", CONF_T_DURATION, OFF(api_keepalive_timeout), "60s", 1, 3600},
	/* requests per API key (token bucket); "none": no limit. Resend's default is 2/s per team; a
	 * server of one's own can afford more */
	{"api", "rate_limit", CONF_T_RATE, OFF(api_rate_limit), "100/s", 0, 0},
	/* a domain made through the API (POST /domains) sends only once its SPF and DKIM records have
	 * verified, so that mail sure to be refused is not sent; domains made with the CLI are the
	 * operator's and send at once */
	{"api", "verify_before_sending", CONF_T_BOOL, OFF(api_verify_before_sending), "yes", 0, 0},
	/* how often every domain that was checked (POST /domains/{id}/verify) is checked again, so that a
	 * record that breaks later is noticed; "0": never */
	{"api", "domain_recheck", CONF_T_DURATION, OFF(api_domain_recheck), "6h", 0, 30u * 86400},
	/* how long message records and events are kept */
	{"api", "retention", CONF_T_DURATION, OFF(api_retention), "30d", 3600, 3650u * 86400},
	/* API mail leaves with the return path bounces+ID@LABEL.DOMAIN (VERP), so that a bounce that
	 * comes days later names its message; LABEL.DOMAIN needs an MX record pointing here (mailwerk
	 * dns records prints it) */
	{"api", "return_path_label", CONF_T_STRING, OFF(api_return_path_label), "bounces", 0, 0},
	/* ARF complaint reports (RFC 5965, from mailbox providers' feedback loops) sent to this address
	 * become complained events; "": none */
	{"api", "complaint_address", CONF_T_MAILBOX_OPT, OFF(api_complaint_address), "", 0, 0},
	/* where recipients reach the API from outside, for one-click unsubscribe links, e.g.
	 * https://mail.example.com; "": this server's host name and its API listener's port */
	{"api", "public_url", CONF_T_STRING, OFF(api_public_url), "", 0, 0},
	/* attachments given by URL (path) are refused unless this is on */
	{"api", "fetch_attachment_urls", CONF_T_BOOL, OFF(api_fetch_attachment_urls), "no", 0, 0},
	/* the web dashboard at / of the API listener (src/http/dashboard.c): on unless turned off */
	{"api", "dashboard", CONF_T_BOOL, OFF(api_dashboard), "yes", 0, 0},
	/* webhooks may post to addresses that are not public (loopback, RFC 1918, link-local, CGNAT,
	 * unique-local, ...): off, so that an API user cannot make the server reach into its own network
	 * (SSRF); checked when connecting, after DNS. For tests and receivers on the same network. */
	{"webhooks", "allow_private", CONF_T_BOOL, OFF(webhook_allow_private), "no", 0, 0},
	/* posts in flight to one webhook at a time (Svix and Resend deliver in parallel, too) */
	{"webhooks", "max_concurrency", CONF_T_UINT, OFF(webhook_max_concurrency), "4", 1, 64},
	/* the waits after the 1st, 2nd, ... failed attempt (the first attempt is at once); after the
	 * last, the delivery has failed. Svix's schedule, which Resend's webhooks follow: immediately,
	 * 5s, 5m, 30m, 2h, 5h, 10h, 10h — eight attempts over about 28 hours */
	{"webhooks", "retry_schedule", CONF_T_SCHEDULE, OFF(webhook_retry_schedule), "5s,5m,30m,2h,5h,10h,10h", 0, 0},
	/* one post, connecting included; a receiver should answer at once and work later */
	{"webhooks", "timeout", CONF_T_DURATION, OFF(webhook_timeout), "10s", 1, 300},
	/* the MTA-STS policy served for each local domain at https://mta-sts.DOMAIN/ (RFC 8461 §3.2):
	 * start with testing, and enforce once TLS reports show every sender succeeding */
	{"mta_sts", "mode", CONF_T_STS_MODE, OFF(sts_mode), "testing", 0, 0},
	/* §3.2: how long senders cache it; weeks are recommended once enforced (at most 31557600) */
	{"mta_sts", "max_age", CONF_T_DURATION, OFF(sts_max_age), "7d", 1, 31557600},
	/* MX names besides [server] hostname that receive mail for the domains */
	{"mta_sts", "mx", CONF_T_MX_LIST, OFF(sts_mx), "", 0, 0},
	/* certificates by ACME (RFC 8555): off until a directory is given. Giving one agrees to the
	 * CA's terms of service (newAccount's termsOfServiceAgreed, §7.3), as certbot's
	 * --agree-tos does */
	{"acme", "directory", CONF_T_HTTPS_URL, OFF(acme_directory), "", 0, 0},
	{"acme", "contact", CONF_T_MAILBOX_OPT, OFF(acme_contact), "", 0, 0},
	/* "": [server] hostname */
	{"acme", "names", CONF_T_HOSTNAMES, OFF(acme_names), "", 0, 0},
	/* off: a name the CA cannot reach fails the whole order, so it is added once its DNS is there */
	{"acme", "mta_sts_names", CONF_T_BOOL, OFF(acme_mta_sts_names), "no", 0, 0},
	{"acme", "challenge", CONF_T_ACME_CHALLENGE, OFF(acme_challenge), "http-01", 0, 0},
	{"acme", "ca_file", CONF_T_PATH_OPT, OFF(acme_ca_file), "", 0, 0},
	/* waits after failed attempts to get a certificate; the last repeats. Let's Encrypt allows 5
	 * failed validations per name an hour: the first waits are far from that */
	{"acme", "retry_schedule", CONF_T_SCHEDULE, OFF(acme_retry_schedule), "5m,30m,2h,6h", 0, 0},
	{"dns", "resolver", CONF_T_RESOLVER, OFF(dns_resolver), "", 0, 0},
	/* DNSSEC validation (RFC 4035) needs an anchor, e.g. /usr/share/dns/root.key; empty: none */
	{"dns", "trust_anchor", CONF_T_PATH_OPT, OFF(dns_trust_anchor), "", 0, 0},
};
#define CONF_KEY_COUNT (sizeof(conf_keys) / sizeof(conf_keys[0]))

const char *conf_listener_str(enum conf_listener l)
{
	switch (l) {
	case CONF_LISTEN_SMTP: return "smtp";
	case CONF_LISTEN_SUBMISSION: return "submission";
	case CONF_LISTEN_SUBMISSIONS: return "submissions";
	case CONF_LISTEN_POP3: return "pop3";
	case CONF_LISTEN_POP3S: return "pop3s";
	case CONF_LISTEN_HTTP: return "http";
	case CONF_LISTEN_HTTPS: return "https";
	case CONF_LISTEN_COUNT: break;
	}
	return "?";
}

const char *conf_acme_challenge_str(enum conf_acme_challenge c)
{
	switch (c) {
	case CONF_ACME_HTTP01:
	case CONF_ACME_TLSALPN01: return acme_challenge_names[c];
	}
	return "?";
}

const char *conf_tls_policy_str(enum conf_tls_policy p)
{
	switch (p) {
	case CONF_TLS_OPPORTUNISTIC:
	case CONF_TLS_REQUIRED:
	case CONF_TLS_NONE: return tls_policy_names[p];
	}
	return "?";
}

const char *conf_sts_mode_str(enum conf_sts_mode m)
{
	switch (m) {
	case CONF_STS_TESTING:
	case CONF_STS_ENFORCE:
	case CONF_STS_NONE: return sts_mode_names[m];
	}
	return "?";
}

const char *conf_relay_tls_str(enum conf_relay_tls t)
{
	switch (t) {
	case CONF_RELAY_TLS_STARTTLS:
	case CONF_RELAY_TLS_IMPLICIT:
	case CONF_RELAY_TLS_NONE: return relay_tls_names[t];
	}
	return "?";
}

/* A file that must hold a PEM private key (only its public half is used, by `dns records`). NULL,
 * or a sentence in msg. */
static const char *conf_check_key_file(const char *path, char *msg, size_t msg_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		snprintf(msg, msg_size, "cannot open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return msg;
	}
	FILE *f = S_ISREG(sb.st_mode) && sb.st_size < 256 * 1024 ? fdopen(fd, "r") : NULL;
	if (f == NULL) {
		close(fd);
		snprintf(msg, msg_size, "%s is not a regular file of a key", path);
		return msg;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	if (k == NULL) {
		snprintf(msg, msg_size, "%s is not a PEM private key (without a passphrase)", path);
		return msg;
	}
	EVP_PKEY_free(k);
	return NULL;
}

/* The first line of path, without its CR/LF, into a new string; a sentence in msg on failure. */
static const char *conf_read_secret(const char *path, char **secret_r, char *msg, size_t msg_size)
{
	char buf[SECRET_MAX + 2];
	size_t n = 0;
	struct stat sb;
	const char *err = NULL;

	/* O_NONBLOCK: a FIFO put there by mistake must not hang start-up */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(msg, msg_size, "cannot open %s: %s", path, strerror(errno));
		return msg;
	}
	if (fstat(fd, &sb) != 0) {
		snprintf(msg, msg_size, "cannot read %s: %s", path, strerror(errno));
		close(fd);
		return msg;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(msg, msg_size, "%s is not a regular file", path);
		close(fd);
		return msg;
	}
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(msg, msg_size, "cannot read %s: %s", path, strerror(errno));
			err = msg;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (memchr(buf, '\n', n) != NULL)
			break;
	}
	close(fd);

	size_t len = 0;
	while (err == NULL && len < n && buf[len] != '\r' && buf[len] != '\n') {
		if (buf[len] == '\0') {
			snprintf(msg, msg_size, "the first line of %s contains a NUL byte", path);
			err = msg;
		}
		len++;
	}
	if (err == NULL && len > SECRET_MAX) {
		snprintf(msg, msg_size, "the first line of %s is longer than %d bytes", path, SECRET_MAX);
		err = msg;
	}
	if (err == NULL && len == 0) {
		snprintf(msg, msg_size, "the first line of %s is empty", path);
		err = msg;
	}
	if (err == NULL) {
		char *secret = strndup(buf, len);
		if (secret == NULL)
			err = "out of memory";
		else
			*secret_r = secret;
	}
	explicit_bzero(buf, sizeof(buf));
	return err;
}

static void conf_free_secret(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* A key the file or an override set, as written (for conf_show). */
struct conf_set_value {
	const struct conf_key *key;
	char name[256]; /* a [throttle] key's own name */
	char *value;
};

struct conf_load_state {
	struct conf *c;
	bool seen[CONF_KEY_COUNT];
	char error[512]; /* first error; inih reports its line */
	char msg[384];   /* an error sentence built for one value */
	/* conf_check_all: every problem goes to report, and reading goes on */
	const char *path;
	const int *line; /* the line being read (the reader's count) */
	conf_report_fn *report;
	void *report_arg;
	unsigned problems;
	int first_bad_line; /* the first line judged not a line (conf_line_ok), 0: none */
	/* conf_show: what was set, in order */
	bool keep_values;
	struct conf_set_value *values;
	size_t value_count;
};

/* One problem of conf_check_all, "FILE:LINE: what" (line 0: "FILE: what"). */
static void conf_problem(struct conf_load_state *st, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void conf_problem(struct conf_load_state *st, int line, const char *fmt, ...)
{
	char what[700], out[1100];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(out, sizeof(out), "%s:%d: %s", st->path, line, what);
	else
		snprintf(out, sizeof(out), "%s", what);
	st->problems++;
	st->report(out, st->report_arg);
}

/* A free section keyed by domain ([throttle], [tls_policy]): the key checked as a domain name, and
 * the index of its entry among count entries whose domain is at stride-sized steps from first
 * (*index_r == count: a new one, room for which has been made at the end; the caller fills it
 * and counts it). In the file a domain may appear once; an override replaces. */
static const char *conf_domain_entry(struct conf_load_state *st, const char *name, bool override, void **table,
				     size_t count, size_t stride, size_t *index_r, char **domain_r)
{
	const char *err = conf_parse_hostname(name);
	if (err != NULL) {
		snprintf(st->msg, sizeof(st->msg), "the key must be a domain name: %s", err);
		return st->msg;
	}
	*domain_r = NULL;
	for (size_t i = 0; i < count; i++) {
		const char *domain = *(char *const *)((const char *)*table + i * stride);
		if (strcasecmp(domain, name) == 0) {
			*index_r = i;
			return override ? NULL : "this domain is already in the section";
		}
	}
	if (count == CONF_THROTTLE_MAX)
		return "too many domains (at most 1000)";
	void *grown = realloc(*table, (count + 1) * stride);
	if (grown == NULL)
		return "out of memory";
	*table = grown;
	if ((*domain_r = strdup(name)) == NULL)
		return "out of memory";
	for (char *p = *domain_r; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	*index_r = count;
	return NULL;
}

/* [throttle] name = COUNT/PERIOD */
static const char *conf_set_throttle(struct conf_load_state *st, const char *name, const char *value, bool override)
{
	struct conf *c = st->c;
	unsigned count, period;
	size_t i;
	char *domain;
	const char *err = conf_parse_rate(value, &count, &period);
	if (err == NULL)
		err = conf_domain_entry(st, name, override, (void **)&c->throttles, c->throttle_count,
					sizeof(*c->throttles), &i, &domain);
	if (err != NULL)
		return err;
	if (i == c->throttle_count)
		c->throttles[c->throttle_count++] = (struct conf_throttle){domain, count, period};
	c->throttles[i].count = count;
	c->throttles[i].period = period;
	return NULL;
}

static const char *const tls_override_names[] = {
	[CONF_TLS_OVERRIDE_DANE_ONLY] = "dane-only", [CONF_TLS_OVERRIDE_VERIFY] = "verify",
	[CONF_TLS_OVERRIDE_ENCRYPT] = "encrypt",     [CONF_TLS_OVERRIDE_MAY] = "may",
	[CONF_TLS_OVERRIDE_NONE] = "none",
};

const char *conf_tls_override_str(enum conf_tls_override o)
{
	return o >= CONF_TLS_OVERRIDE_DANE_ONLY && o <= CONF_TLS_OVERRIDE_NONE ? tls_override_names[o] : "unset";
}

/* [tls_policy] name = dane-only | verify | encrypt | may | none */
static const char *conf_set_tls_policy(struct conf_load_state *st, const char *name, const char *value, bool override)
{
	struct conf *c = st->c;
	enum conf_tls_override level = 0;
	for (enum conf_tls_override o = CONF_TLS_OVERRIDE_DANE_ONLY; o <= CONF_TLS_OVERRIDE_NONE; o++)
		if (strcasecmp(value, tls_override_names[o]) == 0)
			level = o;
	if (level == 0)
		return "expected dane-only, verify, encrypt, may or none";
	size_t i;
	char *domain;
	const char *err = conf_domain_entry(st, name, override, (void **)&c->tls_policies, c->tls_policy_count,
					    sizeof(*c->tls_policies), &i, &domain);
	if (err != NULL)
		return err;
	if (i == c->tls_policy_count)
		c->tls_policies[c->tls_policy_count++] = (struct conf_tls_domain){domain, level};
	c->tls_policies[i].level = level;
	return NULL;
}

static const char *conf_set(struct conf_load_state *st, const struct conf_key *k, const char *name, const char *value,
			    bool override)
{
	struct conf *c = st->c;
	void *field = (char *)c + k->offset;
	const char *err = NULL;

	switch (k->type) {
	case CONF_T_TLS_POLICY:
		for (int i = 0; tls_policy_names[i] != NULL; i++) {
			if (strcasecmp(value, tls_policy_names[i]) == 0) {
				*(enum conf_tls_policy *)field = (enum conf_tls_policy)i;
				return NULL;
			}
		}
		return "expected opportunistic, required or none";
	case CONF_T_RELAY_TLS:
		for (int i = 0; relay_tls_names[i] != NULL; i++) {
			if (strcasecmp(value, relay_tls_names[i]) == 0) {
				*(enum conf_relay_tls *)field = (enum conf_relay_tls)i;
				return NULL;
			}
		}
		return "expected starttls, implicit or none";
	case CONF_T_STS_MODE:
		for (int i = 0; sts_mode_names[i] != NULL; i++) {
			if (strcasecmp(value, sts_mode_names[i]) == 0) {
				*(enum conf_sts_mode *)field = (enum conf_sts_mode)i;
				return NULL;
			}
		}
		return "expected testing, enforce or none";
	case CONF_T_MX_LIST:
		if ((err = conf_parse_mx_list(value, st->msg, sizeof(st->msg))) != NULL)
			return err;
		{
			char *dup = strdup(value);
			if (dup == NULL)
				return "out of memory";
			free(*(char **)field);
			*(char **)field = dup;
		}
		return NULL;
	case CONF_T_ACME_CHALLENGE:
		for (int i = 0; acme_challenge_names[i] != NULL; i++) {
			if (strcasecmp(value, acme_challenge_names[i]) == 0) {
				*(enum conf_acme_challenge *)field = (enum conf_acme_challenge)i;
				return NULL;
			}
		}
		return "expected http-01 or tls-alpn-01";
	case CONF_T_HTTPS_URL:
		if (k->type == CONF_T_HTTPS_URL && value[0] != '\0') {
			struct http_url u;
			if (http_url_parse(value, strlen(value), &u, &err) != HTTP_URL_OK)
				return err;
			if (!u.https)
				return "must be an https URL (RFC 8555 §6.1)";
		}
		goto string;
	case CONF_T_HOSTNAMES:
		if (value[0] != '\0') {
			char one[256];
			const char *p = value, *item;
			size_t n;
			while (list_next(&p, &item, &n)) {
				if (n == 0 || n >= sizeof(one))
					return "expected comma-separated host names";
				memcpy(one, item, n);
				one[n] = '\0';
				if ((err = conf_parse_hostname(one)) != NULL)
					return err;
			}
		}
		goto string;
	case CONF_T_DMARC_ACTION:
		for (int i = 0; dmarc_action_names[i] != NULL; i++) {
			if (strcasecmp(value, dmarc_action_names[i]) == 0) {
				*(enum conf_dmarc_action *)field = (enum conf_dmarc_action)i;
				return NULL;
			}
		}
		return "expected enforce or report";
	case CONF_T_DKIM_CANON: {
		/* RFC 6376 §3.5 c=: header/body; a single word names both here */
		const char *slash = strchr(value, '/');
		size_t hl = slash != NULL ? (size_t)(slash - value) : strlen(value);
		const char *body = slash != NULL ? slash + 1 : value;
		bool hr = hl == 7 && strncasecmp(value, "relaxed", 7) == 0;
		bool hs = hl == 6 && strncasecmp(value, "simple", 6) == 0;
		bool br = strcasecmp(body, "relaxed") == 0, bs = strcasecmp(body, "simple") == 0;
		if ((!hr && !hs) || (!br && !bs))
			return "expected relaxed/relaxed, relaxed/simple, simple/relaxed or simple/simple";
		c->dkim_header_relaxed = hr;
		c->dkim_body_relaxed = br;
		return NULL;
	}
	case CONF_T_RELAY_HOST: {
		char host[254] = "";
		unsigned port = 0;
		if (value[0] != '\0' && (err = conf_parse_relay_host(value, host, sizeof(host), &port)) != NULL)
			return err;
		char *dup = strdup(host);
		if (dup == NULL)
			return "out of memory";
		free(c->relay_host);
		c->relay_host = dup;
		c->relay_port = port != 0 ? port : RELAY_PORT_DEFAULT;
		return NULL;
	}
	case CONF_T_SECRET_FILE: {
		char *secret = NULL;
		if (value[0] != '\0' && value[0] != '/')
			return "must be an absolute path";
		if (value[0] == '\0')
			secret = strdup("");
		else if ((err = conf_read_secret(value, &secret, st->msg, sizeof(st->msg))) != NULL)
			return err;
		if (secret == NULL)
			return "out of memory";
		conf_free_secret(*(char **)field);
		*(char **)field = secret;
		return NULL;
	}
	case CONF_T_KEY_FILE_OPT:
		if (value[0] != '\0' && value[0] != '/')
			return "must be an absolute path";
		if (value[0] != '\0' && (err = conf_check_key_file(value, st->msg, sizeof(st->msg))) != NULL)
			return err;
		goto string;
	case CONF_T_THROTTLE:
		return conf_set_throttle(st, name, value, override);
	case CONF_T_TLS_OVERRIDE:
		return conf_set_tls_policy(st, name, value, override);
	case CONF_T_DELIMITERS:
		/* characters that start an address extension (user+tag); none of them may be part of an
		 * address's syntax that matters elsewhere */
		if (strlen(value) > 8 || strpbrk(value, "@\"\\ ,<>()[]:;") != NULL)
			return "expected up to 8 delimiter characters such as + or +-";
		/* fall through */
	case CONF_T_HOSTNAME:
		if (k->type == CONF_T_HOSTNAME && (err = conf_parse_hostname(value)) != NULL)
			return err;
		/* fall through */
	case CONF_T_RESOLVER:
		if (k->type == CONF_T_RESOLVER && value[0] != '\0') {
			char fwd[64];
			if (dns_resolver_parse(value, fwd, sizeof(fwd), &err) != DNS_PARSE_OK)
				return err;
		}
		/* fall through */
	case CONF_T_MAILBOX_OPT:
		if (k->type == CONF_T_MAILBOX_OPT && value[0] != '\0') {
			struct addr a;
			const char *aerr;
			if (addr_parse_mailbox(value, strlen(value), 0, &a, &aerr) != ADDR_OK)
				return aerr;
		}
		/* fall through */
	case CONF_T_LOGIN:
		/* sent base64-encoded in AUTH PLAIN or LOGIN; no control characters, a sane length */
		if (k->type == CONF_T_LOGIN) {
			if (strlen(value) > 255)
				return "user name too long (at most 255 bytes)";
			for (const char *p = value; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					return "user name contains a control character";
		}
		/* fall through */
	case CONF_T_STRING:
	case CONF_T_PATH:
	case CONF_T_PATH_OPT: {
	string:
		if ((k->type == CONF_T_PATH || (k->type == CONF_T_PATH_OPT && value[0] != '\0')) && value[0] != '/')
			return "must be an absolute path";
		char *dup = strdup(value);
		if (dup == NULL)
			return "out of memory";
		free(*(char **)field);
		*(char **)field = dup;
		return NULL;
	}
	case CONF_T_UINT:
	case CONF_T_SIZE: {
		uint64_t v;
		if (k->type == CONF_T_SIZE) {
			if ((err = conf_parse_size(value, &v)) != NULL)
				return err;
		} else {
			char *end;
			errno = 0;
			v = strtoull(value, &end, 10);
			if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno)
				return "expected a whole number";
		}
		if (v < k->min || v > k->max)
			return k->type == CONF_T_SIZE ? "size out of range (see the README)" : "number out of range (see the README)";
		if (k->type == CONF_T_SIZE)
			*(uint64_t *)field = v;
		else
			*(unsigned *)field = (unsigned)v;
		return NULL;
	}
	case CONF_T_DURATION: {
		unsigned v;
		if ((err = conf_parse_duration(value, &v)) != NULL)
			return err;
		if (v < k->min || v > k->max)
			return "duration out of range";
		*(unsigned *)field = v;
		return NULL;
	}
	case CONF_T_DURATION_MS: {
		unsigned v;
		if ((err = conf_parse_duration_ms(value, &v)) != NULL)
			return err;
		if (v < k->min || v > k->max)
			return "duration out of range";
		*(unsigned *)field = v;
		return NULL;
	}
	case CONF_T_BOOL:
		return conf_parse_bool(value, (bool *)field);
	case CONF_T_RATE: {
		struct conf_rate *r = field;
		if (strcmp(value, "none") == 0) {
			r->count = r->period = 0;
			return NULL;
		}
		return conf_parse_rate(value, &r->count, &r->period);
	}
	case CONF_T_SCHEDULE: {
		unsigned v[CONF_RETRY_MAX];
		size_t n;
		if ((err = conf_parse_schedule(value, v, &n)) != NULL)
			return err;
		/* the field is an array of CONF_RETRY_MAX, and its count (size_t) follows it */
		memcpy(field, v, sizeof(v));
		*(size_t *)(void *)((char *)field + sizeof(v)) = n;
		return NULL;
	}
	case CONF_T_LISTEN: {
		struct conf_listen *l = field;
		struct conf_addr *addrs;
		size_t count;
		if ((err = conf_parse_listen(value, &addrs, &count)) != NULL)
			return err;
		free(l->addrs);
		l->addrs = addrs;
		l->count = count;
		return NULL;
	}
	}
	return "internal: unknown key type";
}

static const struct conf_key *conf_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONF_KEY_COUNT; i++)
		if (strcmp(conf_keys[i].section, section) == 0 &&
		    (conf_keys[i].name == NULL || strcmp(conf_keys[i].name, name) == 0))
			return &conf_keys[i];
	return NULL;
}

static bool conf_section_known(const char *section)
{
	for (size_t i = 0; i < CONF_KEY_COUNT; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return true;
	return false;
}

static const char *conf_apply(struct conf_load_state *st, const char *section, const char *name, const char *value,
			      bool override)
{
	if (!conf_section_known(section))
		return "unknown section";
	const struct conf_key *k = conf_key_find(section, name);
	if (k == NULL)
		return "unknown key";
	size_t idx = (size_t)(k - conf_keys);
	const char *err = conf_set(st, k, name, value, override);
	if (err == NULL)
		st->seen[idx] = true;
	if (err == NULL && st->keep_values) {
		struct conf_set_value *g = realloc(st->values, (st->value_count + 1) * sizeof(*g));
		if (g == NULL)
			return "out of memory";
		st->values = g;
		struct conf_set_value *v = &st->values[st->value_count];
		v->key = k;
		snprintf(v->name, sizeof(v->name), "%s", name);
		if ((v->value = strdup(value)) == NULL)
			return "out of memory";
		st->value_count++;
	}
	return err;
}

static int conf_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_load_state *st = user;
	if (name == NULL)
		return 1; /* a section header on its own */
	const char *err = conf_apply(st, section, name, value, false);
	if (err == NULL)
		return 1;
	if (st->report != NULL) {
		conf_problem(st, *st->line, "[%s] %s = %s: %s", section, name, value, err);
		return 1; /* and on to the next line */
	}
	if (st->error[0] == '\0')
		snprintf(st->error, sizeof(st->error), "[%s] %s = %s: %s", section, name, value, err);
	return 0; /* inih then returns this line's number */
}

struct conf *conf_ref(struct conf *c)
{
	c->refs++;
	return c;
}

void conf_free(struct conf *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	free(c->path);
	free(c->hostname);
	free(c->data_dir);
	free(c->user);
	free(c->signer_user);
	for (int i = 0; i < CONF_LISTEN_COUNT; i++)
		free(c->listen[i].addrs);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_next_key);
	free(c->recipient_delimiter);
	free(c->dns_resolver);
	free(c->dns_trust_anchor);
	free(c->acme_directory);
	free(c->acme_contact);
	free(c->acme_names);
	free(c->acme_ca_file);
	free(c->relay_host);
	free(c->relay_auth_user);
	conf_free_secret(c->relay_auth_password);
	free(c->relay_ca_file);
	free(c->mta_sts_ca_file);
	free(c->delivery_ca_file);
	free(c->sts_mx);
	free(c->dmarc_report_from);
	free(c->tlsrpt_report_from);
	free(c->tlsrpt_ca_file);
	free(c->api_return_path_label);
	free(c->api_public_url);
	free(c->api_complaint_address);
	for (size_t i = 0; i < c->throttle_count; i++)
		free(c->throttles[i].domain);
	free(c->throttles);
	for (size_t i = 0; i < c->tls_policy_count; i++)
		free(c->tls_policies[i].domain);
	free(c->tls_policies);
	free(c);
}

enum conf_tls_override conf_tls_override_lookup(const struct conf_tls_domain *table, size_t count, const char *domain)
{
	for (size_t i = 0; i < count; i++)
		if (strcasecmp(table[i].domain, domain) == 0)
			return table[i].level;
	return 0;
}

enum conf_tls_override conf_tls_override_find(const struct conf *c, const char *domain)
{
	return conf_tls_override_lookup(c->tls_policies, c->tls_policy_count, domain);
}

const struct conf_throttle *conf_throttle_find(const struct conf *c, const char *domain)
{
	for (size_t i = 0; i < c->throttle_count; i++)
		if (strcasecmp(c->throttles[i].domain, domain) == 0)
			return &c->throttles[i];
	return NULL;
}

/* Rules that tie keys together, checked once every line, override and default is in. */
static bool conf_check(struct conf_load_state *st, const char *path, char *error_r, size_t error_size)
{
	struct conf *c = st->c;
	if (c->out_max_per_domain > c->out_max_connections) {
		snprintf(error_r, error_size,
			 "%s: [delivery] max_connections_per_domain = %u is larger than [delivery] max_connections = %u",
			 path, c->out_max_per_domain, c->out_max_connections);
		return false;
	}
	if (c->auth_delay_max < c->auth_delay_initial) {
		snprintf(error_r, error_size, "%s: [server] auth_delay_max (%u ms) is shorter than [server] auth_delay_initial (%u ms)",
			 path, c->auth_delay_max, c->auth_delay_initial);
		return false;
	}
	/* RFC 8314 §3.3: port 465 is implicit TLS; anything else starts in plain text and uses STARTTLS */
	if (!st->seen[conf_key_find("relay", "tls") - conf_keys])
		c->relay_tls = c->relay_port == 465 ? CONF_RELAY_TLS_IMPLICIT : CONF_RELAY_TLS_STARTTLS;
	/* one DNS label (RFC 1035 §2.3.1): letters, digits, inner hyphens, at most 63 */
	const char *lab = c->api_return_path_label;
	size_t lab_len = strlen(lab);
	bool lab_ok = lab_len >= 1 && lab_len <= 63 && lab[0] != '-' && lab[lab_len - 1] != '-';
	for (size_t i = 0; lab_ok && i < lab_len; i++)
		lab_ok = (lab[i] >= 'a' && lab[i] <= 'z') || (lab[i] >= 'A' && lab[i] <= 'Z') || (lab[i] >= '0' && lab[i] <= '9') ||
			 lab[i] == '-';
	if (!lab_ok) {
		snprintf(error_r, error_size, "%s: [api] return_path_label = %s is not one DNS label (letters, digits, hyphens)",
			 path, lab);
		return false;
	}
	if (c->acme_directory[0] != '\0' && c->acme_challenge == CONF_ACME_HTTP01 && c->listen[CONF_LISTEN_HTTP].count == 0) {
		snprintf(error_r, error_size, "%s: [acme] challenge = http-01 needs a [listen] http listener (port 80)", path);
		return false;
	}
	if (c->acme_directory[0] != '\0' && c->acme_challenge == CONF_ACME_TLSALPN01 &&
	    c->listen[CONF_LISTEN_HTTPS].count + c->listen[CONF_LISTEN_SUBMISSIONS].count + c->listen[CONF_LISTEN_POP3S].count == 0) {
		snprintf(error_r, error_size,
			 "%s: [acme] challenge = tls-alpn-01 needs an implicit-TLS listener ([listen] https on port 443)", path);
		return false;
	}
	bool user = c->relay_auth_user[0] != '\0', password = c->relay_auth_password[0] != '\0';
	if (user && c->relay_tls == CONF_RELAY_TLS_NONE) {
		snprintf(error_r, error_size,
			 "%s: [relay] tls = none with [relay] auth_user: the password would be sent in clear text", path);
		return false;
	}
	if (user && !password) {
		snprintf(error_r, error_size, "%s: [relay] auth_user is set but [relay] auth_password_file is not", path);
		return false;
	}
	if (password && !user) {
		snprintf(error_r, error_size, "%s: [relay] auth_password_file is set but [relay] auth_user is not", path);
		return false;
	}
	return true;
}

/* inih reads a line into a fixed buffer and would take the rest of a longer one as a line of its
 * own, after applying a cut-off value. This reader stops at such a line instead, so that it can be
 * reported as what it is. */
struct conf_reader {
	FILE *f;
	int line;
	int too_long; /* the line that did not fit, 0: none */
	int max;      /* characters that fit */
	struct conf_load_state *st; /* conf_check_all: each line's own syntax is judged here */
};

/* Whether inih takes the line: empty, a comment, [section], or name = value (or name: value). An
 * indented line may continue the value before it (inih's multi-line values): inih judges that one. */
static bool conf_line_ok(const char *line)
{
	if (*line == ' ' || *line == '\t')
		return true;
	if (*line == '\0' || *line == '\n' || *line == '\r' || *line == ';' || *line == '#')
		return true;
	if (*line == '[')
		return strchr(line, ']') != NULL;
	return strpbrk(line, "=:") != NULL;
}

static char *conf_read_line(char *str, int num, void *stream)
{
	struct conf_reader *r = stream;
	if (fgets(str, num, r->f) == NULL)
		return NULL;
	r->line++;
	size_t len = strlen(str);
	if (r->st != NULL && r->st->report != NULL && !conf_line_ok(str)) {
		conf_problem(r->st, r->line, "not a valid line (expected [section] or key = value)");
		if (r->st->first_bad_line == 0)
			r->st->first_bad_line = r->line;
	}
	if (len + 1 < (size_t)num || str[len - 1] == '\n')
		return str;
	int ch = fgetc(r->f);
	if (ch == EOF || ch == '\n')
		return str; /* it just fit */
	if (ch == '\r' && (ch = fgetc(r->f)) == '\n')
		return str;
	r->too_long = r->line;
	r->max = num - 1;
	return NULL;
}

/* conf_load, conf_check_all and conf_show: st says whether problems stop the reading (report
 * NULL: the first one is the answer, in error_r) or are all reported. */
static struct conf *conf_load_with(struct conf_load_state *st, const char *path, char *const *overrides,
				   size_t n_overrides, char *error_r, size_t error_size)
{
	struct conf *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(error_r, error_size, "%s: out of memory", path);
		return NULL;
	}
	st->c = c;
	st->path = path;
	c->refs = 1;
	c->path = strdup(path);
	/* each problem to report in report mode; else the first one, in error_r, ends the load */
#define PROBLEM(line, ...)                                                                                   \
	do {                                                                                                 \
		if (st->report != NULL)                                                                      \
			conf_problem(st, line, __VA_ARGS__);                                                  \
		else                                                                                         \
			snprintf(error_r, error_size, __VA_ARGS__);                                           \
	} while (0)

	FILE *f = fopen(path, "r");
	if (f == NULL) {
		PROBLEM(0, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	struct conf_reader reader = {.f = f, .st = st};
	st->line = &reader.line;
	int line = ini_parse_stream(conf_read_line, &reader, conf_ini_handler, st);
	fclose(f);
	st->line = NULL;
	if (reader.too_long != 0 && (line == 0 || line > reader.too_long || st->report != NULL)) {
		PROBLEM(0, "%s:%d: line too long (at most %d characters)", path, reader.too_long, reader.max);
		goto fail; /* the rest of the file was not read */
	}
	/* inih's first bad line, when it is not one judged above (an indented line with nothing to continue) */
	if (line != 0 && st->report != NULL && line != st->first_bad_line)
		conf_problem(st, line, "not a valid line (expected [section] or key = value)");
	if (line != 0 && st->report == NULL) {
		if (st->error[0] != '\0')
			snprintf(error_r, error_size, "%s:%d: %s", path, line, st->error);
		else
			snprintf(error_r, error_size, "%s:%d: not a valid line (expected [section] or key = value)", path, line);
		goto fail;
	}

	for (size_t i = 0; i < n_overrides; i++) {
		const char *o = overrides[i];
		const char *dot = strchr(o, '.');
		const char *eq = strchr(o, '=');
		char section[32], name[256]; /* [throttle] keys are domain names */
		size_t slen = dot != NULL ? (size_t)(dot - o) : 0, nlen = dot != NULL && eq != NULL ? (size_t)(eq - dot - 1) : 0;
		if (dot == NULL || eq == NULL || dot > eq || slen == 0 || slen >= sizeof(section) || nlen == 0 ||
		    nlen >= sizeof(name)) {
			PROBLEM(0, "-o %s: expected section.key=value", o);
			if (st->report == NULL)
				goto fail;
			continue;
		}
		memcpy(section, o, slen);
		section[slen] = '\0';
		memcpy(name, dot + 1, nlen);
		name[nlen] = '\0';
		const char *err = conf_apply(st, section, name, eq + 1, true);
		if (err != NULL) {
			PROBLEM(0, "-o %s: %s", o, err);
			if (st->report == NULL)
				goto fail;
		}
	}

	for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
		if (st->seen[i])
			continue;
		const struct conf_key *k = &conf_keys[i];
		if (k->name == NULL)
			continue; /* free keys have no default */
		if (k->def == NULL) {
			PROBLEM(0, "%s: [%s] %s is required", path, k->section, k->name);
			if (st->report == NULL)
				goto fail;
			continue;
		}
		const char *err = conf_set(st, k, k->name, k->def, false);
		if (err != NULL) { /* a broken default is a bug, but say it plainly */
			PROBLEM(0, "%s: default of [%s] %s: %s", path, k->section, k->name, err);
			goto fail;
		}
	}
#undef PROBLEM
	/* the rules between keys are judged once every key has its value */
	if (st->problems > 0)
		goto fail;
	if (!conf_check(st, path, error_r, error_size)) {
		if (st->report != NULL)
			conf_problem(st, 0, "%s", error_r);
		goto fail;
	}
	return c;
fail:
	conf_free(c);
	return NULL;
}

static void conf_values_free(struct conf_load_state *st)
{
	for (size_t i = 0; i < st->value_count; i++)
		free(st->values[i].value);
	free(st->values);
}

struct conf *conf_load(const char *path, char *const *overrides, size_t n_overrides, char *error_r, size_t error_size)
{
	struct conf_load_state st = {0};
	return conf_load_with(&st, path, overrides, n_overrides, error_r, error_size);
}

unsigned conf_check_all(const char *path, char *const *overrides, size_t n_overrides, conf_report_fn *report, void *arg)
{
	struct conf_load_state st = {.report = report, .report_arg = arg};
	char error[1024];
	conf_free(conf_load_with(&st, path, overrides, n_overrides, error, sizeof(error)));
	return st.problems;
}

int conf_show(const char *path, char *const *overrides, size_t n_overrides, bool non_default, conf_report_fn *line,
	      void *arg, char *error_r, size_t error_size)
{
	struct conf_load_state st = {.keep_values = true};
	struct conf *c = conf_load_with(&st, path, overrides, n_overrides, error_r, error_size);
	if (c == NULL) {
		conf_values_free(&st);
		return -1;
	}
	char out[1400];
	for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
		const struct conf_key *k = &conf_keys[i];
		/* each key once, with the value that won (the last one set); a free section's every key */
		for (size_t v = 0; v < st.value_count; v++) {
			const struct conf_set_value *sv = &st.values[v];
			if (sv->key != k)
				continue;
			bool later = false;
			for (size_t w = v + 1; w < st.value_count && !later; w++)
				later = st.values[w].key == k && strcasecmp(st.values[w].name, sv->name) == 0;
			if (later || (non_default && k->def != NULL && strcmp(sv->value, k->def) == 0))
				continue;
			snprintf(out, sizeof(out), "[%s] %s = %s", k->section, sv->name, sv->value);
			line(out, arg);
		}
		if (!non_default && k->name != NULL && !st.seen[i]) {
			snprintf(out, sizeof(out), "[%s] %s = %s", k->section, k->name, k->def != NULL ? k->def : "");
			line(out, arg);
		}
	}
	conf_values_free(&st);
	conf_free(c);
	return 0;
}

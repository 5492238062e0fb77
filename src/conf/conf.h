/* conf.h — the configuration: an INI file (inih) plus `-o section.key=value` overrides, validated
 * whole at load. A struct conf is immutable once loaded and passed explicitly; a reload builds a new
 * one. Every key is documented in the README. */
#ifndef MAILWERK_CONF_CONF_H
#define MAILWERK_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum conf_listener {
	CONF_LISTEN_SMTP = 0,    /* MX role: inbound mail for local domains (port 25 in production) */
	CONF_LISTEN_SUBMISSION,  /* RFC 6409 submission with STARTTLS + AUTH (587) */
	CONF_LISTEN_SUBMISSIONS, /* RFC 8314 submission over implicit TLS (465) */
	CONF_LISTEN_POP3,        /* RFC 1939 POP3 with STLS (110) */
	CONF_LISTEN_POP3S,       /* POP3 over implicit TLS (995, RFC 8314) */
	CONF_LISTEN_HTTP,        /* the HTTP API (Resend-compatible) */
	CONF_LISTEN_HTTPS,       /* the HTTP API over TLS */
	CONF_LISTEN_COUNT,
};
const char *conf_listener_str(enum conf_listener l);

struct conf_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64]; /* "127.0.0.1:2525" or "[::1]:2525" */
};

struct conf_listen {
	struct conf_addr *addrs;
	size_t count; /* 0: listener disabled */
};

#define CONF_RETRY_MAX 16

/* [delivery] tls: what outbound delivery to MX hosts does about STARTTLS */
enum conf_tls_policy {
	CONF_TLS_OPPORTUNISTIC = 0, /* STARTTLS (RFC 3207) when the server offers it, else plain text */
	CONF_TLS_REQUIRED,          /* STARTTLS or no delivery */
	CONF_TLS_NONE,              /* never STARTTLS */
};
const char *conf_tls_policy_str(enum conf_tls_policy p);

/* [relay] tls: how we talk to the smarthost */
enum conf_relay_tls {
	CONF_RELAY_TLS_STARTTLS = 0, /* RFC 3207 STARTTLS, required */
	CONF_RELAY_TLS_IMPLICIT,     /* RFC 8314 TLS from the first byte (port 465) */
	CONF_RELAY_TLS_NONE,         /* plain text; not allowed together with AUTH */
};
const char *conf_relay_tls_str(enum conf_relay_tls t);

/* [smtp] dmarc_action: what the MX listener does with a message that fails DMARC */
enum conf_acme_challenge {
	CONF_ACME_HTTP01 = 0,  /* RFC 8555 §8.3, on the http listener (port 80 in production) */
	CONF_ACME_TLSALPN01,   /* RFC 8737, on the implicit-TLS listeners (https: 443 in production) */
};
const char *conf_acme_challenge_str(enum conf_acme_challenge c);

enum conf_dmarc_action {
	CONF_DMARC_ENFORCE = 0, /* the domain's policy: reject → 550 5.7.1, quarantine → Junk (RFC 9989 §5.3.6) */
	CONF_DMARC_REPORT,      /* accept; the result is only in Authentication-Results */
};

/* [mta_sts] mode: the MTA-STS policy this server publishes for its domains (RFC 8461 §5) */
enum conf_sts_mode {
	CONF_STS_TESTING = 0, /* receivers report failures (RFC 8460) but deliver anyway */
	CONF_STS_ENFORCE,     /* receivers deliver only over verified TLS to the listed MX hosts */
	CONF_STS_NONE,        /* the policy is retired: senders drop what they cached */
};
const char *conf_sts_mode_str(enum conf_sts_mode m);

/* [throttle] DOMAIN = COUNT/PERIOD: at most COUNT deliveries to DOMAIN per PERIOD */
struct conf_throttle {
	char *domain; /* lower case */
	unsigned count;
	unsigned period; /* seconds */
};
#define CONF_THROTTLE_MAX 1000

/* [tls_policy] DOMAIN = dane-only | verify | encrypt | may | none: what outbound TLS mail to DOMAIN
 * gets, in place of its published DANE and MTA-STS policies (delivery/tls_decide.h, rows 5-10) */
enum conf_tls_override {
	CONF_TLS_OVERRIDE_DANE_ONLY = 1, /* only over TLS authenticated by DANE (RFC 7672) */
	CONF_TLS_OVERRIDE_VERIFY,        /* TLS with a certificate that verifies for the MX host name */
	CONF_TLS_OVERRIDE_ENCRYPT,       /* TLS, certificate not checked */
	CONF_TLS_OVERRIDE_MAY,           /* STARTTLS when offered */
	CONF_TLS_OVERRIDE_NONE,          /* never STARTTLS */
};
const char *conf_tls_override_str(enum conf_tls_override o);
struct conf_tls_domain {
	char *domain; /* lower case */
	enum conf_tls_override level;
};

/* COUNT per PERIOD seconds; count 0: no limit */
struct conf_rate {
	unsigned count;
	unsigned period;
};

struct conf {
	unsigned refs; /* sessions keep the conf they started with across a reload */
	char *path;
	/* [server] */
	char *hostname;
	char *data_dir;
	char *user; /* "": keep the identity serve was started with */
	char *signer_user; /* [server] signer_user: the DKIM signer's; "": user's */
	bool sandbox; /* [server] sandbox: the worker runs under its seccomp allow-list (server/sandbox.c) */
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned ipv6_prefix;          /* bits of an IPv6 client address that name one client */
	uint64_t max_memory_in_flight; /* message octets held in memory by all sessions together */
	uint64_t min_free_space;       /* octets free in data_dir below which MAIL is refused; 0: none */
	unsigned auth_delay_initial;   /* ms a client's first failed login waits; doubled per further one */
	unsigned auth_delay_max;       /* ms at most, >= auth_delay_initial */
	unsigned auth_ban_failures;    /* failures from a client that ban it; 0: no bans */
	unsigned auth_ban_time;        /* seconds a ban lasts */
	unsigned drain_timeout;        /* seconds an upgrade's old worker lets its sessions finish */
	/* [listen] */
	struct conf_listen listen[CONF_LISTEN_COUNT];
	/* [tls] */
	char *tls_cert;
	char *tls_key;
	char *tls_next_key;  /* "" or the key of the next certificate (RFC 7671 §8.1), for dns records */
	/* [smtp] */
	uint64_t max_message_size;
	unsigned max_recipients;
	bool allow_insecure_auth;
	unsigned command_timeout; /* seconds */
	unsigned data_timeout;    /* seconds */
	unsigned session_timeout; /* seconds one session may last; 0: no limit */
	unsigned min_data_rate;   /* octets per second DATA/BDAT content must keep up; 0: no floor */
	unsigned min_data_rate_window; /* seconds each judgement of min_data_rate covers */
	unsigned max_errors;
	bool auth_checks;                    /* SPF, DKIM, DMARC on the MX listener */
	unsigned dkim_max_signatures;        /* signatures verified per message */
	enum conf_dmarc_action dmarc_action;
	/* [pop3] */
	unsigned pop3_idle_timeout; /* seconds */
	unsigned pop3_session_timeout; /* seconds one session may last; 0: no limit */
	unsigned pop3_max_errors;
	/* [delivery] */
	char *recipient_delimiter; /* "user+tag@dom" delivers to user; "" disables */
	unsigned retry_schedule[CONF_RETRY_MAX]; /* seconds after the 1st, 2nd, ... failed attempt */
	size_t retry_count;                       /* the last one repeats */
	unsigned max_queue_lifetime;              /* seconds a recipient may stay deferred */
	bool delivery_hold;               /* keep what is queued; deliver nothing until a reload says no */
	unsigned remote_port;              /* SMTP port of MX hosts, default 25; for tests only */
	enum conf_tls_policy delivery_tls; /* default opportunistic */
	unsigned out_max_connections;      /* outbound SMTP connections in total */
	unsigned out_max_per_domain;       /* outbound SMTP connections to one domain; <= out_max_connections */
	unsigned delay_warning_time;       /* seconds deferred before the sender is told; 0: never */
	/* the outbound SMTP client's waits, in seconds (RFC 5321 §4.5.3.2): each bounds a whole reply */
	unsigned out_connect_timeout;      /* TCP connect */
	unsigned out_tls_timeout;          /* a TLS handshake (STARTTLS or implicit) */
	unsigned out_greeting_timeout;     /* the 220 greeting (§4.5.3.2.1) */
	unsigned out_command_timeout;      /* EHLO, HELO, STARTTLS, AUTH, RSET, MAIL, RCPT (§4.5.3.2.2, .3, .7) */
	unsigned out_data_init_timeout;    /* the 354 to DATA (§4.5.3.2.4) */
	unsigned out_data_timeout;         /* each write of message content that makes no progress (§4.5.3.2.5) */
	unsigned out_data_end_timeout;     /* the reply to the final "." (§4.5.3.2.6) */
	/* outbound MTA-STS (RFC 8461; delivery/mtasts_cache.h) */
	char *delivery_ca_file;         /* "": the system trust store only; else PEM CAs trusted besides it */
	char *mta_sts_ca_file;          /* "": the system trust store only; else PEM CAs trusted besides it */
	bool mta_sts_allow_private;     /* policy hosts on loopback, RFC 1918, ... addresses (tests) */
	unsigned mta_sts_budget;        /* ms a delivery waits for a domain's policy before going on without */
	unsigned mta_sts_fetch_timeout; /* ms one policy fetch may take, DNS included */
	unsigned mta_sts_max_fetches;   /* policy checks running at once */
	/* [relay]: a smarthost; when relay_host is set, all remote mail goes through it */
	char *relay_host;              /* "": none (deliver to MX hosts); else host name or IP address, no brackets */
	unsigned relay_port;           /* from "host:port"; 587 when no port is given */
	enum conf_relay_tls relay_tls; /* default: implicit when relay_port is 465, else starttls */
	char *relay_auth_user;         /* "": no AUTH */
	char *relay_auth_password;     /* the first line of [relay] auth_password_file; "" when none */
	char *relay_ca_file;           /* "": the system trust store; else PEM CA certificates for the smarthost */
	/* [throttle] */
	struct conf_throttle *throttles;
	size_t throttle_count;
	/* [tls_policy] */
	struct conf_tls_domain *tls_policies;
	size_t tls_policy_count;
	/* [dkim] */
	bool dkim_sign;
	bool dkim_header_relaxed, dkim_body_relaxed; /* c= */
	unsigned dkim_expiration;                   /* x= after this many seconds; 0: none */
	/* [dmarc] */
	bool dmarc_reports;
	char *dmarc_report_from;        /* "": dmarc-reports@<hostname> */
	unsigned dmarc_report_interval; /* seconds between aggregate reports */
	/* [api] */
	unsigned api_request_timeout;   /* seconds for a request's head and body */
	unsigned api_keepalive_timeout; /* seconds an idle connection stays open */
	struct conf_rate api_rate_limit; /* per key */
	unsigned api_retention;         /* seconds records and events are kept */
	bool api_fetch_attachment_urls;
	bool api_verify_before_sending; /* domains made by POST /domains send once SPF and DKIM verify */
	/* [webhooks] */
	bool webhook_allow_private;        /* endpoints on loopback, RFC 1918, link-local, ... addresses */
	unsigned webhook_max_concurrency;  /* posts in flight to one webhook */
	unsigned webhook_retry_schedule[CONF_RETRY_MAX]; /* seconds after the 1st, 2nd, ... failed attempt */
	size_t webhook_retry_count;        /* after the last one: failed (unlike [delivery], nothing repeats) */
	unsigned webhook_timeout;          /* seconds a post may take */
	unsigned api_domain_recheck;       /* [api]: seconds between checks of checked domains; 0: none */
	char *api_return_path_label;  /* VERP: bounces+ID@LABEL.DOMAIN */
	char *api_complaint_address;  /* "" or where ARF complaints arrive */
	char *api_public_url;         /* "" or the base of one-click unsubscribe URLs */
	bool api_dashboard;           /* the web dashboard is served at / of the API listener */
	/* [mta_sts]: the policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt */
	enum conf_sts_mode sts_mode;
	unsigned sts_max_age; /* seconds */
	char *sts_mx;         /* "" or comma-separated MX names (or *.patterns) besides [server] hostname */
	/* [acme]: certificates by ACME (RFC 8555, src/acme/); off while acme_directory is "" */
	char *acme_directory;   /* "" or the https URL of the CA's directory (RFC 8555 §7.1.1) */
	char *acme_contact;     /* "" or one address, sent as mailto: (RFC 8555 §7.3) */
	char *acme_names;       /* "" ([server] hostname) or comma-separated host names, checked */
	bool acme_mta_sts_names; /* add mta-sts.DOMAIN for each local domain (RFC 8461 §3.3) */
	enum conf_acme_challenge acme_challenge;
	char *acme_ca_file;     /* "": the system trust store; else PEM CAs trusted besides it */
	unsigned acme_retry_schedule[CONF_RETRY_MAX]; /* seconds after the 1st, 2nd, ... failed attempt */
	size_t acme_retry_count;                      /* the last one repeats */
	/* [dns] */
	char *dns_resolver;     /* "": the nameservers of /etc/resolv.conf; else "ADDR@PORT" to forward to */
	char *dns_trust_anchor; /* "": no DNSSEC validation; else a file of DS/DNSKEY records */
	/* [tlsrpt] */
	char *tlsrpt_report_from;        /* "": [dmarc] report_from, else tls-reports@<hostname> */
	char *tlsrpt_ca_file;            /* "": the system trust store only, for https: rua */
	unsigned tlsrpt_report_interval; /* seconds of one report's period (a day) */
	bool tlsrpt_reports;
};

/* Loads path, then applies overrides ("section.key=value"). On error returns NULL and writes one line
 * to error_r: "FILE:LINE: what is wrong", "-o section.key=value: what is wrong" or "FILE: what is wrong". */
struct conf *conf_load(const char *path, char *const *overrides, size_t n_overrides, char *error_r, size_t error_size);
/* mailwerk config check: every problem of path and the overrides, one line each to report ("FILE:LINE:
 * what", "-o ...: what" or "FILE: what"), reading on after each; the number of them (0: conf_load
 * would succeed). Rules between keys are judged only when every line was right. */
typedef void conf_report_fn(const char *line, void *arg);
unsigned conf_check_all(const char *path, char *const *overrides, size_t n_overrides, conf_report_fn *report, void *arg);
/* mailwerk config show: every key as "[section] key = value" in the reference's order, with the
 * value in effect; non_default: only those the file or an override set to other than the default
 * (Postfix's postconf -n). 0, or -1 with conf_load's sentence when the configuration does not load. */
int conf_show(const char *path, char *const *overrides, size_t n_overrides, bool non_default, conf_report_fn *line,
	      void *arg, char *error_r, size_t error_size);
/* Takes / drops a reference; the last conf_free() frees. Loop thread only. */
struct conf *conf_ref(struct conf *c);
void conf_free(struct conf *c);
/* The [tls_policy] level for domain (case-insensitive, exact: no parent domains); 0 when none. */
enum conf_tls_override conf_tls_override_find(const struct conf *c, const char *domain);
/* The same over a copy of the table (the delivery pool keeps one per configuration). */
enum conf_tls_override conf_tls_override_lookup(const struct conf_tls_domain *table, size_t count, const char *domain);
/* The [throttle] entry for domain (case-insensitive, exact: no parent domains); NULL when none. */
const struct conf_throttle *conf_throttle_find(const struct conf *c, const char *domain);

/* Value parsers, exported for the unit tests. Each returns NULL on success or a sentence. */
const char *conf_parse_size(const char *s, uint64_t *v_r);          /* "1048576", "512K", "25M", "1G" */
const char *conf_parse_duration(const char *s, unsigned *seconds_r); /* "300", "30s", "5m", "2h", "1d" */
const char *conf_parse_duration_ms(const char *s, unsigned *ms_r);   /* "250ms", "2", "2s", "1m", "1h" */
const char *conf_parse_bool(const char *s, bool *v_r);              /* yes/no, true/false, on/off, 1/0 */
/* comma-separated durations, e.g. "1m,5m,15m"; at least one, at most CONF_RETRY_MAX */
const char *conf_parse_schedule(const char *s, unsigned *v_r, size_t *count_r);
/* comma-separated "host:port", "[v6]:port"; empty = none. On success *addrs_r is malloc'd. */
const char *conf_parse_listen(const char *s, struct conf_addr **addrs_r, size_t *count_r);
/* "COUNT/PERIOD": "600/h", "10/m", "5/s", "1000/d", "100/10m"; PERIOD is a duration, a bare unit
 * letter meaning one of it. COUNT 1..1000000, PERIOD at least 1 second. */
const char *conf_parse_rate(const char *s, unsigned *count_r, unsigned *period_r);
/* "host", "host:port", "[address]", "[address]:port" ("[IPv6:address]" too; IPv6 addresses only
 * in brackets). host_r gets the name or address without brackets; *port_r is 0 when no port is
 * given. */
const char *conf_parse_relay_host(const char *s, char *host_r, size_t host_size, unsigned *port_r);

#endif

/* spf.h — SPF verification (RFC 7208): check_host() for the MAIL FROM or HELO identity as a pure
 * state machine on the auth_dns.h step protocol. It selects and parses the record (§4), evaluates
 * every mechanism and modifier (§5, §6) with the limits of §4.6.4, expands macros (§7, %{p} with
 * its own PTR and address lookups) and, on fail, the explanation (§6.2). */
#ifndef MAILWERK_AUTH_SPF_H
#define MAILWERK_AUTH_SPF_H

#include <time.h>

#include "auth/auth_dns.h"

/* §4.6.4 */
#define SPF_LOOKUP_LIMIT 10 /* DNS-querying terms (include, a, mx, ptr, exists, redirect) */
#define SPF_VOID_LIMIT 2    /* terms whose lookup found nothing (NXDOMAIN or no records) */
#define SPF_MX_LIMIT 10     /* MX names one "mx" may look up; more is a permerror */
#define SPF_PTR_LIMIT 10    /* PTR names looked at for "ptr" and %{p}; the others are ignored */
/* The longest MAIL FROM or HELO argument evaluated (an SMTP command line is at most 512 octets,
 * RFC 5321 §4.5.3.1.4); a longer one gives "none". */
#define SPF_INPUT_MAX 512
/* spf_eval_problem is at most this long, with its NUL. */
#define SPF_PROBLEM_SIZE 320

/* The results of RFC 7208 §2.6, as RFC 8601 §2.7.2 writes them. */
enum spf_result {
	SPF_RESULT_NONE = 0,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};
const char *spf_result_str(enum spf_result r);

enum spf_identity {
	SPF_IDENTITY_MAILFROM = 0, /* the MAIL FROM domain, or postmaster@<helo> when it is null (§2.4) */
	SPF_IDENTITY_HELO,         /* the HELO/EHLO name (§2.3) */
};
const char *spf_identity_str(enum spf_identity i);

/* The explanation used on fail when the record has no usable exp= (§6.2). It is an explain-string:
 * its macros are expanded. */
#define SPF_DEFAULT_EXPLANATION "%{i} is not allowed to send mail for %{o} (SPF)"

struct spf_request {
	struct dns_addr ip;       /* the SMTP client; an IPv4-mapped IPv6 address is evaluated as IPv4 (§5) */
	const char *mail_from;    /* MAIL FROM without brackets; "" for the null reverse-path */
	const char *helo;         /* the HELO/EHLO argument */
	const char *receiver;     /* our host name, for %{r}; NULL (or longer than 253 octets) for "unknown" */
	enum spf_identity identity;
	time_t now;               /* %{t} */
	const char *default_explanation; /* NULL = SPF_DEFAULT_EXPLANATION (§6.2) */
};

struct spf_eval;

/* Copies what it needs from req. NULL when out of memory. */
struct spf_eval *spf_eval_new(const struct spf_request *req);
/* The auth_step_fn of auth_dns.h. */
enum auth_step spf_eval_step(void *eval, const struct dns_result *answer, struct auth_query *q_r);

/* After AUTH_STEP_DONE: */
enum spf_result spf_eval_result(const struct spf_eval *e);
/* The <domain> checked (before any redirect=), as given without a trailing dot. */
const char *spf_eval_domain(const struct spf_eval *e);
/* The <sender>: postmaster@<helo> for the HELO identity and for a null MAIL FROM, and
 * postmaster@<domain> when MAIL FROM had no local part (§4.3). */
const char *spf_eval_sender(const struct spf_eval *e);
/* On fail: the expanded exp= text (§6.2), or the default explanation; else NULL. Printable US-ASCII. */
const char *spf_eval_explanation(const struct spf_eval *e);
/* One sentence for logs and Authentication-Results comments: what went wrong for permerror and
 * temperror, what decided the result otherwise. Names from DNS or the peer in it are cleaned to
 * printable US-ASCII without parentheses. */
const char *spf_eval_problem(const struct spf_eval *e);
/* DNS-querying terms counted so far (§4.6.4). */
unsigned spf_eval_lookups(const struct spf_eval *e);
/* Terms whose lookup found nothing, counted so far (§4.6.4). */
unsigned spf_eval_void_lookups(const struct spf_eval *e);
void spf_eval_free(struct spf_eval *e);

#endif

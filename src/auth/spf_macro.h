/* spf_macro.h — the macros of RFC 7208 §7: the syntax of macro-strings and explain-strings (§7.1,
 * §6.2), and their expansion (§7.2 letters, §7.3 transformers, delimiters and URL escaping), with
 * the rules for names that are queried (§7.3: a trailing dot is dropped, a name longer than 253
 * octets loses labels on the left). Pure and bounded: the caller looks up %{p} before expanding. */
#ifndef MAILWERK_AUTH_SPF_MACRO_H
#define MAILWERK_AUTH_SPF_MACRO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "net/dns_parse.h"

/* The longest value a letter stands for (the sender, the HELO name); longer values are cut. */
#define SPF_MACRO_VALUE_MAX 1024
/* An explanation is cut to this size with its NUL (§6.2: "Implementations MAY limit the length of
 * the resulting explanation string"); it has to fit an SMTP reply line (RFC 5321 §4.5.3.1.5). */
#define SPF_EXPLANATION_SIZE 400

enum spf_macro_ctx {
	SPF_MACRO_DOMAIN,   /* the domain-spec of a mechanism, redirect= or exp=: no c, r, t (§7.1) */
	SPF_MACRO_MODIFIER, /* the macro-string of an unknown modifier: checked, never expanded (§6) */
	SPF_MACRO_EXPLAIN,  /* an explain-string (§6.2): spaces, and the letters c, r, t */
};
const char *spf_macro_ctx_str(enum spf_macro_ctx c);

enum spf_macro_error {
	SPF_MACRO_OK = 0,
	SPF_MACRO_SYNTAX,   /* breaks the grammar of §7.1 */
	SPF_MACRO_LETTER,   /* a letter this context does not allow (§7.1: c, r, t only in explanations) */
	SPF_MACRO_BAD_NAME, /* expands to something that cannot be asked as a DNS name */
};
const char *spf_macro_error_str(enum spf_macro_error e);

struct spf_macro_info {
	bool uses_p; /* %{p} appears: the validated name of <ip> must be looked up first (§7.3) */
	size_t tail; /* where the literal text after the last macro-expand begins (len when none follows) */
};

/* Checks s (len octets, any of them hostile) against the grammar of ctx. info_r may be NULL. */
enum spf_macro_error spf_macro_check(const char *s, size_t len, enum spf_macro_ctx ctx,
				     struct spf_macro_info *info_r, const char **error_r);

/* What the letters stand for (§7.2). NULL strings expand to "" (r and p to "unknown"). */
struct spf_macro_env {
	const char *sender;        /* s: <sender>, "postmaster@" when it had no local part (§4.3) */
	const char *local;         /* l: its local part */
	const char *sender_domain; /* o: its domain */
	const char *domain;        /* d: the current <domain> */
	const struct dns_addr *ip; /* i, c, v: <ip>, an IPv4-mapped address already made IPv4 (§5) */
	const char *ptr_name;      /* p: the validated name of <ip>; NULL expands to "unknown" */
	const char *helo;          /* h: the HELO/EHLO argument as given */
	const char *receiver;      /* r: our host name */
	time_t now;                /* t */
};

/* Expands a domain-spec for a query (§7.3): the result has no trailing dot, is at most 253 octets
 * (labels are removed from the left until it fits) and is a name that can be asked: labels of 1-63
 * octets of printable US-ASCII (spaces included, backslashes not). SPF_MACRO_BAD_NAME otherwise;
 * out is then "". The syntax is checked again; ctx is SPF_MACRO_DOMAIN. */
enum spf_macro_error spf_macro_expand_domain(const char *s, size_t len, const struct spf_macro_env *env,
					     char out[DNS_HOST_SIZE], const char **error_r);

/* Expands an explain-string (§6.2) into out (out_size >= 1), cut at the end when longer. Octets
 * outside printable US-ASCII that a letter brings in become '?': an explanation goes into an SMTP
 * reply. */
enum spf_macro_error spf_macro_expand_text(const char *s, size_t len, const struct spf_macro_env *env,
					   char *out, size_t out_size, const char **error_r);

/* Whether name can be asked as it is: 1-253 octets, labels of 1-63 octets, printable US-ASCII
 * without backslashes (spaces are allowed: %_ makes them, §7.1); no trailing dot. */
bool spf_macro_name_ok(const char *name);

#endif

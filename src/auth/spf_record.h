/* spf_record.h — SPF records (RFC 7208 §4.5-§6): which TXT strings are SPF records, and the parse
 * of one record into its mechanisms and modifiers, with every syntax rule checked before anything
 * is evaluated (§4.6: "syntax errors anywhere in the record MUST be detected"). Pure; one
 * allocation per record, which holds its own copy of the text. */
#ifndef MAILWERK_AUTH_SPF_RECORD_H
#define MAILWERK_AUTH_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "net/dns_parse.h"

/* A record longer than this is refused (a permerror for its domain). §3.4 asks publishers to keep
 * records small enough for a 512-octet DNS answer; real ones stay well under 1 KiB. */
#define SPF_RECORD_MAX 4096

enum spf_qualifier {
	SPF_QUALIFIER_PASS = 0, /* "+", the default (§4.6.2) */
	SPF_QUALIFIER_FAIL,     /* "-" */
	SPF_QUALIFIER_SOFTFAIL, /* "~" */
	SPF_QUALIFIER_NEUTRAL,  /* "?" */
};
const char *spf_qualifier_str(enum spf_qualifier q);

enum spf_mech {
	SPF_MECH_ALL = 0, /* §5.1 */
	SPF_MECH_INCLUDE, /* §5.2 */
	SPF_MECH_A,       /* §5.3 */
	SPF_MECH_MX,      /* §5.4 */
	SPF_MECH_PTR,     /* §5.5 */
	SPF_MECH_IP4,     /* §5.6 */
	SPF_MECH_IP6,     /* §5.6 */
	SPF_MECH_EXISTS,  /* §5.7 */
};
const char *spf_mech_str(enum spf_mech m);
/* Whether the mechanism asks DNS, and so counts against the limit of 10 (§4.6.4). */
bool spf_mech_queries_dns(enum spf_mech m);

/* A domain-spec (§7.1) as written: a macro-string ending in a top label or a macro. */
struct spf_domain_spec {
	const char *text; /* into the record's copy; NULL when the term has none */
	size_t len;
	bool uses_p;      /* %{p} appears in it */
};

struct spf_term {
	enum spf_mech mech;
	enum spf_qualifier qualifier;
	const char *text; /* the whole term as written, for messages */
	size_t text_len;
	struct spf_domain_spec domain; /* include, exists: always; a, mx, ptr: when given */
	unsigned cidr4;   /* a, mx: 32 unless given; ip4: the prefix length */
	unsigned cidr6;   /* a, mx: 128 unless given; ip6: the prefix length */
	struct dns_addr net; /* ip4, ip6 */
};

struct spf_record {
	struct spf_domain_spec redirect; /* redirect= (§6.1); text NULL when absent */
	struct spf_domain_spec exp;      /* exp= (§6.2) */
	bool has_all;   /* §5.1: then redirect= is ignored, wherever the two stand */
	const char *text; /* the record as it came, NUL-terminated */
	size_t len;
	size_t nterms;  /* mechanisms, in order; modifiers are kept above */
	struct spf_term terms[];
};

enum spf_record_error {
	SPF_RECORD_OK = 0,
	SPF_RECORD_NOT_SPF,   /* does not begin with "v=spf1" and a space or the end (§4.5) */
	SPF_RECORD_TOO_LONG,  /* longer than SPF_RECORD_MAX */
	SPF_RECORD_SYNTAX,    /* a term breaks §4.6.1, §5, §6 or §7.1 */
	SPF_RECORD_DUPLICATE, /* redirect= or exp= twice (§6) */
	SPF_RECORD_NOMEM,
};
const char *spf_record_error_str(enum spf_record_error e);

/* §4.5: whether text (len octets, NULs allowed) is an SPF record — "v=spf1" in any case,
 * followed by a space or the end. */
bool spf_record_is_spf(const char *text, size_t len);

/* Parses one SPF record. On success *rec_r is the record (free with spf_record_free). On an error
 * *error_r is a sentence and, when error_at_r is not NULL, *error_at_r the offset in text of the
 * term at fault (len when none). */
enum spf_record_error spf_record_parse(const char *text, size_t len, struct spf_record **rec_r,
				       const char **error_r, size_t *error_at_r);
void spf_record_free(struct spf_record *rec);

/* Whether a domain-spec is valid (§7.1): a macro-string (ctx domain: no c, r, t) that ends in a
 * macro-expand or in "." toplabel [ "." ]. */
bool spf_domain_spec_valid(const char *s, size_t len, bool *uses_p_r, const char **error_r);

#endif

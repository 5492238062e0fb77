/* dns_parse.h — pure helpers for DNS answers: rdata parsers (RFC 1035 §3.3, RFC 3596 §2.2), the MX
 * order of RFC 5321 §5.1 with an injected random source, the RFC 7505 null-MX test, SMTP address
 * literals and the resolver setting. No I/O, no allocation; every byte from DNS is hostile input.
 * Shared by dns.c, mx.c, conf.c, the unit tests and the fuzzer. */
#ifndef MAILWERK_NET_DNS_PARSE_H
#define MAILWERK_NET_DNS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 1035 §2.3.4: a name is at most 255 octets on the wire, a label at most 63. */
#define DNS_NAME_WIRE_MAX 255
#define DNS_LABEL_MAX 63
/* Any wire name as presentation text: every octet may become "\DDD" (RFC 1035 §5.1), plus the dots. */
#define DNS_NAME_TEXT_SIZE 1024
/* A host name as text without the trailing dot: at most 253 octets (255 on the wire less the first
 * length octet and the root label), plus the NUL. */
#define DNS_HOST_SIZE 254

/* RR types we parse (RFC 1035 §3.2.2, RFC 3596 §2.1). */
enum dns_rrtype {
	DNS_RRTYPE_A = 1,
	DNS_RRTYPE_CNAME = 5,
	DNS_RRTYPE_PTR = 12,
	DNS_RRTYPE_MX = 15,
	DNS_RRTYPE_TXT = 16,
	DNS_RRTYPE_AAAA = 28,
	DNS_RRTYPE_TLSA = 52, /* RFC 6698 §7.1 */
};
const char *dns_rrtype_str(int rrtype);

enum dns_parse_error {
	DNS_PARSE_OK = 0,
	DNS_PARSE_TRUNCATED, /* rdata ends inside a field */
	DNS_PARSE_TRAILING,  /* octets left after the last field */
	DNS_PARSE_BAD_NAME,  /* a name that breaks RFC 1035 §3.1 (compression pointer, label type, length) */
	DNS_PARSE_NOT_HOST,  /* a name that is not a host name (RFC 5321 §2.3.5, §4.1.2 Domain) */
	DNS_PARSE_LENGTH,    /* wrong fixed length (A: 4, AAAA: 16) */
	DNS_PARSE_SYNTAX,    /* text input (literal, resolver setting) is malformed */
};
const char *dns_parse_error_str(enum dns_parse_error e);

struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* network order; 4 used for AF_INET */
};

/* RFC 1035 §3.3.12: a PTR record's name, lower case, no trailing dot; only host names are kept. */
struct dns_ptr {
	char name[DNS_HOST_SIZE];
};

/* RFC 6698 §2.1: a TLSA record; data points into the rdata it was parsed from. */
struct dns_tlsa {
	uint8_t usage, selector, mtype;
	const uint8_t *data; /* the certificate association data, len >= 1 */
	size_t len;
};

struct dns_mx {
	uint16_t pref;
	/* host name in lower case without the trailing dot; "." is the root (RFC 7505 null MX) */
	char exchange[DNS_HOST_SIZE];
};

/* The outcome of one lookup, as the resolver (net/dns.c) or a test double hands it over: a plain
 * value, so that the SPF/DKIM/DMARC evaluators stay pure. */
enum dns_status {
	DNS_STATUS_OK = 0,    /* records of the type asked for (count >= 1; some may be malformed) */
	DNS_STATUS_NXDOMAIN,  /* the name does not exist (RCODE 3, RFC 1035 §4.1.1) */
	DNS_STATUS_NODATA,    /* the name exists, without records of this type (RFC 2308 §2.2) */
	DNS_STATUS_TEMPFAIL,  /* SERVFAIL, REFUSED, timeout, network or resolver trouble: ask again later */
	DNS_STATUS_BOGUS,     /* DNSSEC validation failed (RFC 4035 §4.3): the answer cannot be used */
};
const char *dns_status_str(enum dns_status s);

struct dns_rdata {
	const uint8_t *data;
	size_t len;
};

struct dns_txt {
	const char *text; /* NUL-terminated; len excludes the NUL (the text may contain NULs itself) */
	size_t len;
};

/* Valid only during the callback. */
struct dns_result {
	enum dns_status status;
	bool secure;           /* DNSSEC-validated, data or proven absence (RFC 4035 §4.3 "secure") */
	int rrtype;
	const char *name;      /* as asked */
	const char *canonname; /* after unbound followed any CNAME chain (RFC 1034 §3.6.2); no trailing dot */
	const char *why;       /* TEMPFAIL, BOGUS: what went wrong, one sentence; "" otherwise */
	size_t count;          /* records of rrtype that parsed; the arrays below hold count entries */
	size_t malformed;      /* records left out because their rdata did not parse */
	size_t raw_count;      /* every record as it came (at most DNS_RECORDS_MAX) */
	const struct dns_rdata *raw;
	const struct dns_mx *mx;       /* DNS_RRTYPE_MX */
	const struct dns_addr *addrs;  /* DNS_RRTYPE_A, DNS_RRTYPE_AAAA */
	const struct dns_txt *txts;    /* DNS_RRTYPE_TXT */
	const struct dns_ptr *ptrs;    /* DNS_RRTYPE_PTR */
	const struct dns_tlsa *tlsas;  /* DNS_RRTYPE_TLSA */
};

/* An uncompressed wire name at the start of p (len octets available) to presentation text: labels
 * joined by dots, no trailing dot, "." for the root; octets other than letters, digits, '-' and '_'
 * are escaped as \DDD, and '.' / '\' inside a label as "\." / "\\" (RFC 1035 §5.1). *used_r is the
 * number of wire octets the name took. text_size must be at least DNS_NAME_TEXT_SIZE. */
enum dns_parse_error dns_name_parse(const uint8_t *p, size_t len, size_t *used_r, char *text_r,
				   size_t text_size, const char **error_r);

/* Whether text is a host name: LDH labels of 1-63 octets (RFC 1123 §2.1), at most 253 octets,
 * no trailing dot. */
bool dns_host_valid(const char *text);

/* RFC 1035 §3.3.9: PREFERENCE (16 bits) and EXCHANGE (a name, uncompressed as unbound hands it on).
 * The exchange must be a host name or the root; it comes back lower-cased. */
enum dns_parse_error dns_rdata_mx_parse(const uint8_t *rd, size_t len, struct dns_mx *mx_r, const char **error_r);
/* RFC 1035 §3.3.12: one name, which must be a host name; it comes back lower-cased. */
enum dns_parse_error dns_rdata_ptr_parse(const uint8_t *rd, size_t len, struct dns_ptr *ptr_r, const char **error_r);
/* RFC 6698 §2.1: usage, selector and matching type (one octet each), then at least one octet of
 * association data (§2.1.4 leaves its length to the matching type, which the caller checks: a
 * record of a length that does not fit its type is unusable, not malformed). data_r points into rd. */
enum dns_parse_error dns_rdata_tlsa_parse(const uint8_t *rd, size_t len, struct dns_tlsa *tlsa_r, const char **error_r);
/* RFC 6698 §2.2: t in presentation form, "3 1 1 ab12...", with at most max_octets of its data in
 * hex; out is always NUL-terminated and cut to size. Returns whether data was left out (more than
 * max_octets, or no room), for a caller that marks the cut. */
bool dns_tlsa_text(const struct dns_tlsa *t, size_t max_octets, char *out, size_t size);
/* RFC 1035 §3.4.1: exactly 4 octets. */
enum dns_parse_error dns_rdata_a_parse(const uint8_t *rd, size_t len, struct dns_addr *a_r, const char **error_r);
/* RFC 3596 §2.2: exactly 16 octets. */
enum dns_parse_error dns_rdata_aaaa_parse(const uint8_t *rd, size_t len, struct dns_addr *a_r, const char **error_r);
/* RFC 1035 §3.3.14: one or more <character-string>s, concatenated without separators (as SPF and
 * DKIM read them, RFC 7208 §3.3, RFC 6376 §3.6.2.2). out must hold len octets (the result is always
 * shorter than the rdata); it is NUL-terminated, and *out_len_r excludes the NUL (the text itself
 * may contain NULs). */
enum dns_parse_error dns_rdata_txt_parse(const uint8_t *rd, size_t len, char *out, size_t out_size,
					 size_t *out_len_r, const char **error_r);

/* A source of uniformly random 32-bit values (OpenSSL in production, a script in the unit tests). */
typedef uint32_t dns_random_fn(void *arg);

/* A uniform value in [0, n) from rnd (n >= 1). Rejection sampling, bounded: a source that keeps
 * returning values in the biased range ends with a modulo rather than a loop. */
uint32_t dns_random_below(dns_random_fn *rnd, void *arg, uint32_t n);

/* RFC 5321 §5.1: sorts by preference, lowest first, and shuffles hosts of equal preference
 * ("randomized to spread the load") with rnd. Duplicated exchanges keep only their most preferred
 * entry. Returns the number of entries left (a prefix of mx). */
size_t dns_mx_order(struct dns_mx *mx, size_t n, dns_random_fn *rnd, void *arg);

/* RFC 7505 §3: a null MX is the only MX record of a domain, preference 0 and exchange ".". */
bool dns_mx_is_null(const struct dns_mx *mx, size_t n);

/* RFC 5321 §4.1.3 address literals as the domain of an address: "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]" (tag case-insensitive). General literals ("[tag:...]") are a syntax error
 * here: we cannot route them. */
enum dns_parse_error dns_addr_literal_parse(const char *s, struct dns_addr *a_r, const char **error_r);

/* "192.0.2.1" or "2001:db8::1" into buf (at least 46 octets, INET6_ADDRSTRLEN). */
const char *dns_addr_str(const struct dns_addr *a, char *buf, size_t size);

/* The [dns] resolver setting: "ADDR" or "ADDR@PORT", ADDR numeric IPv4 or IPv6 ("::1@5353").
 * On success writes "ADDR@PORT" (port 53 when none was given) to out (at least 64 octets), the form
 * libunbound's ub_ctx_set_fwd takes. */
enum dns_parse_error dns_resolver_parse(const char *s, char *out, size_t out_size, const char **error_r);

#endif

/* mtasts.h — MTA-STS (RFC 8461): the policy text served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt
 * (§3.2), the _mta-sts TXT record (§3.1) and the choice among several TXT records, and the MX host
 * matcher (§4.1). Pure, no allocation, no I/O; every octet of a policy or a record is hostile.
 * Fetching, caching and applying a policy are other modules' business (tls_decide.h applies one).
 *
 * The policy (§3.2), as read here:
 * - Lines end in LF or CRLF (the sts-policy-term of the ABNF; erratum 6253 fixes the prose); a bare
 *   CR is a syntax error. The last line may lack its end.
 * - A line is `key:` then *WSP then the value; trailing WSP is dropped. No WSP before the colon and
 *   none at the start of a line (the ABNF has neither). Keys are case-sensitive (%s"mode" etc.):
 *   "Mode: enforce" is an unknown key, ignored, and the policy then has no mode.
 * - version: STSv1, mode: enforce|testing|none (case-sensitive), max_age: 1 to 10 digits, mx: one
 *   host-name pattern per line, as many lines as the policy needs (one or more unless mode is none).
 * - Fields may come in any order. The ABNF sets none, and a policy with version on its second line
 *   is valid; refusing it would turn a domain's enforce into "no policy" for nothing.
 * - Of a repeated version, mode or max_age the first is used and the others ignored, whatever they
 *   hold (§3.2: "all entries except for the first SHOULD be ignored"); they are counted.
 * - Unknown keys are ignored (§3.2) whatever their value holds, except control characters other than
 *   HTAB and ill-formed UTF-8 (the value is UTF-8 text without CTLs, §3.2 sts-policy-ext-value): a
 *   body with those is not a policy text.
 * - The only leniency beyond the ABNF: blank lines (empty, or WSP only) are skipped, and an mx pattern
 *   may end in one dot, which is dropped. A line that breaks the grammar in any other way makes the
 *   whole text invalid: a text we cannot read whole is not a policy we can apply in part.
 * - An mx value is ["*."] Domain (RFC 5321 §4.1.2: LDH labels of 1-63 octets, at most 253 octets),
 *   stored in lower case. Empty values and IP literals are refused: "[192.0.2.1]" and IPv6 by the
 *   grammar, a dotted quad because its last label is all digits (RFC 3696 §2: a top-level domain is
 *   never all-numeric, which is how a name is told from an address). Repeated patterns are kept once.
 * - In mode none the mx lines are not used, so an invalid or excess one does not make the policy
 *   invalid: a domain that publishes "mode: none" to retire its policy must be heard even with a typo.
 * - max_age above 31,557,600 s (one year) is capped there. §3.2 gives that number as the maximum but
 *   does not say what a larger value means; its ABNF admits ten digits. Capping keeps the policy (the
 *   domain asked for a long life) without trusting it for longer than the RFC allows.
 * - At most MTASTS_POLICY_MAX octets (64 KiB, the most a fetch reads); a longer text is refused whole
 *   rather than read in part. */
#ifndef MAILWERK_DELIVERY_MTASTS_H
#define MAILWERK_DELIVERY_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/dns_parse.h"

/* The largest policy text read: 64 KiB. */
#define MTASTS_POLICY_MAX 65536
/* RFC 8461 §3.2 max_age: "maximum value of 31557600" (365.25 days). */
#define MTASTS_MAX_AGE_MAX 31557600u
/* mx patterns kept; a policy with more distinct ones is refused (MTASTS_TOO_MANY_MX). */
#define MTASTS_MX_MAX 64
/* "*." plus a 253-octet name plus the NUL. */
#define MTASTS_MX_SIZE 256
/* RFC 8461 §3.1 id: 1*32(ALPHA / DIGIT). */
#define MTASTS_ID_MAX 32

/* RFC 8461 §5 */
enum mtasts_mode {
	MTASTS_MODE_NONE = 0, /* the domain has no active policy; a cached one is dropped */
	MTASTS_MODE_TESTING,  /* report failures (RFC 8460), deliver as if there were no policy */
	MTASTS_MODE_ENFORCE,  /* only matching MX hosts, only with a verified certificate */
};
const char *mtasts_mode_str(enum mtasts_mode m);

enum mtasts_error {
	MTASTS_OK = 0,
	MTASTS_TOO_LONG,    /* a policy over MTASTS_POLICY_MAX octets */
	MTASTS_SYNTAX,      /* a line (policy) or field (TXT) that breaks the grammar */
	MTASTS_VERSION,     /* policy: version missing or not STSv1; TXT: not beginning with v=STSv1 */
	MTASTS_MODE,        /* mode missing or not enforce, testing or none */
	MTASTS_MAX_AGE,     /* max_age missing or not 1 to 10 digits */
	MTASTS_MX,          /* an mx value that is not a host-name pattern (empty, IP literal, bad name) */
	MTASTS_NO_MX,       /* mode enforce or testing without an mx line */
	MTASTS_TOO_MANY_MX, /* more distinct mx patterns than MTASTS_MX_MAX */
	MTASTS_ID,          /* TXT: id missing or not 1 to 32 letters and digits */
	MTASTS_NO_RECORD,   /* TXT choice: no record beginning with v=STSv1 */
	MTASTS_MULTIPLE,    /* TXT choice: more than one record beginning with v=STSv1 */
};
const char *mtasts_error_str(enum mtasts_error e);

struct mtasts_policy {
	enum mtasts_mode mode;
	uint32_t max_age;    /* seconds, at most MTASTS_MAX_AGE_MAX */
	bool max_age_capped; /* the text said more than MTASTS_MAX_AGE_MAX */
	unsigned duplicates; /* repeated version, mode or max_age lines ignored */
	unsigned unknown;    /* lines with unknown keys ignored */
	unsigned line;       /* on an error: the line it was found on (1-based), or 0 for the whole text */
	size_t mx_count;
	char mx[MTASTS_MX_MAX][MTASTS_MX_SIZE]; /* lower case, no trailing dot; "*.example.com" or a name */
};

/* Reads a policy text (len octets, any octet). On MTASTS_OK *p holds it; otherwise *p is cleared but
 * for p->line, and *error_r says why in one sentence. */
enum mtasts_error mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p, const char **error_r);

/* RFC 8461 §3.1 TXT record, its strings already joined without separators (dns_rdata_txt_parse):
 *   sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
 *   sts-field-delim = *WSP ";" *WSP;  sts-version = %s"v=STSv1";  sts-id = %s"id=" 1*32(ALPHA / DIGIT)
 *   sts-extension   = sts-ext-name "=" sts-ext-value  (name: ALPHA/DIGIT then 31 of those, "_-.";
 *                     value: 1*(%x21-3A / %x3C / %x3E-7E))
 * read strictly, with trailing WSP allowed: a record we cannot read is "no policy" (§3.1), never a
 * guess. Unknown fields are ignored; of several id fields the first counts (as §3.2 rules for the
 * policy's fields), and it must be well-formed. */
struct mtasts_txt {
	char id[MTASTS_ID_MAX + 1];
	unsigned unknown; /* extension fields ignored */
};
enum mtasts_error mtasts_txt_parse(const char *txt, size_t len, struct mtasts_txt *r, const char **error_r);

/* Whether a TXT record counts as an MTA-STS record at all: it begins with v=STSv1 and that token ends
 * there (end, WSP or ";"), so "v=STSv10" does not count. §3.1's prose discards records not beginning
 * with "v=STSv1;" while its ABNF allows WSP before the ";" (erratum 6285); we count every record whose
 * first field is v=STSv1, so that a record we would read as MTA-STS is never left out of the count. */
bool mtasts_txt_is_sts(const char *txt, size_t len);

/* §3.1: of the TXT records at _mta-sts.DOMAIN only those beginning with v=STSv1 count; none is
 * MTASTS_NO_RECORD, two or more MTASTS_MULTIPLE (both mean: no policy available), one is parsed. */
enum mtasts_error mtasts_txt_select(const struct dns_txt *txts, size_t n, struct mtasts_txt *r, const char **error_r);

/* RFC 8461 §4.1: whether the MX host name matches one pattern: ASCII case-insensitive, one trailing
 * dot on the host ignored; "*.example.com" matches exactly one more label on the left
 * ("mail.example.com", not "example.com" nor "a.mail.example.com"). A host that is not a valid host
 * name matches nothing. */
bool mtasts_mx_match(const char *pattern, const char *host);

/* Whether host matches any of the policy's mx patterns. */
bool mtasts_policy_mx_match(const struct mtasts_policy *p, const char *host);

#endif

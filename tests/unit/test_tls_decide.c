/* test_tls_decide.c — the per-MX TLS decision, one table row per rule of tls_decide.h (the row number
 * and the rule in each row's name), plus the TLSA usability rules, hostile inputs and the promises
 * every decision keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "delivery/tls_decide.h"
#include "test_util.h"

/* policies, filled by main() before the tests run */
static struct mtasts_policy sts_enforce, sts_testing, sts_none;

static const uint8_t d32[32] = { 1 }, d64[64] = { 2 }, d20[20] = { 3 };

static const struct dns_tlsa tlsa_311[] = { { 3, 1, 1, d32, 32 } };
static const struct dns_tlsa tlsa_211[] = { { 2, 1, 1, d32, 32 } };
static const struct dns_tlsa tlsa_unusable[] = {
	{ 0, 0, 1, d32, 32 }, /* PKIX-TA */
	{ 1, 1, 1, d32, 32 }, /* PKIX-EE */
	{ 4, 1, 1, d32, 32 }, /* unknown usage */
	{ 3, 2, 1, d32, 32 }, /* unknown selector */
	{ 3, 1, 3, d32, 32 }, /* unknown matching type */
	{ 3, 1, 1, d20, 20 }, /* SHA2-256 of the wrong length */
	{ 3, 1, 2, d32, 32 }, /* SHA2-512 of the wrong length */
	{ 2, 0, 0, NULL, 0 }, /* empty full data */
};
static const struct dns_tlsa tlsa_mixed[] = {
	{ 1, 1, 1, d32, 32 },
	{ 3, 1, 2, d64, 64 },
	{ 3, 9, 1, d32, 32 },
	{ 2, 0, 0, d20, 20 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MX .mx_host = "mx1.example.com"
#define SECURE .mx_dnssec = TLS_DECIDE_DNSSEC_SECURE, .addr_dnssec = TLS_DECIDE_DNSSEC_SECURE
#define TLSA(a) .tlsa_state = TLS_DECIDE_TLSA_RECORDS, .tlsa = (a), .tlsa_count = N(a)
#define STS(p) .sts_state = TLS_DECIDE_STS_POLICY, .sts = &(p)

enum row_flag {
	F_CACHED = 1 << 0,
	F_TEST_MISMATCH = 1 << 1,
	F_TEST_VERIFY = 1 << 2,
};

struct row {
	const char *rule;
	struct tls_decide_input in;
	enum tls_decide_action action;
	enum tls_decide_reason reason;
	const char *status;
	enum tls_decide_policy policy;
	const char *names; /* space-separated, "" for none */
	size_t tlsa;       /* usable records handed on */
	unsigned flags;
};

#define A(x) TLS_DECIDE_##x
#define R(x) TLS_DECIDE_REASON_##x
#define P(x) TLS_DECIDE_POLICY_##x

static const struct row rows[] = {
	/* ---- the host's DNS ---- */
	{ "0: an MX name that is no host name is refused", { .mx_host = "", SECURE },
	  A(SKIP), R(INVALID_INPUT), "4.3.0", P(NONE), "", 0, 0 },
	{ "0: no MX name at all", { .mx_host = NULL }, A(SKIP), R(INVALID_INPUT), "4.3.0", P(NONE), "", 0, 0 },
	{ "0: a trailing dot is the caller's to strip", { .mx_host = "mx1.example.com." },
	  A(SKIP), R(INVALID_INPUT), "4.3.0", P(NONE), "", 0, 0 },
	{ "0: a TLSA base that is no host name", { MX, SECURE, .tlsa_base = "a..b", TLSA(tlsa_311) },
	  A(SKIP), R(INVALID_INPUT), "4.3.0", P(NONE), "", 0, 0 },
	{ "1: MX answer bogus: skip, 4.7.5 (RFC 7672 §2.1.1), whatever the settings",
	  { MX, .mx_dnssec = TLS_DECIDE_DNSSEC_BOGUS, .override = TLS_DECIDE_OVERRIDE_NONE },
	  A(SKIP), R(MX_BOGUS), "4.7.5", P(NONE), "", 0, 0 },
	{ "2: MX lookup error: skip, 4.4.3", { MX, .mx_dnssec = TLS_DECIDE_DNSSEC_ERROR },
	  A(SKIP), R(MX_LOOKUP_ERROR), "4.4.3", P(NONE), "", 0, 0 },
	{ "3: address answer bogus: skip, 4.7.5",
	  { MX, .mx_dnssec = TLS_DECIDE_DNSSEC_SECURE, .addr_dnssec = TLS_DECIDE_DNSSEC_BOGUS, TLSA(tlsa_311) },
	  A(SKIP), R(ADDR_BOGUS), "4.7.5", P(NONE), "", 0, 0 },
	{ "4: address lookup error: skip, 4.4.3", { MX, .addr_dnssec = TLS_DECIDE_DNSSEC_ERROR },
	  A(SKIP), R(ADDR_LOOKUP_ERROR), "4.4.3", P(NONE), "", 0, 0 },

	/* ---- the operator ---- */
	{ "5: override none beats DANE and MTA-STS enforce",
	  { MX, SECURE, TLSA(tlsa_311), STS(sts_enforce), .override = TLS_DECIDE_OVERRIDE_NONE },
	  A(CLEAR), R(OVERRIDE), NULL, P(NONE), "", 0, 0 },
	{ "6: override may beats DANE", { MX, SECURE, TLSA(tlsa_311), .override = TLS_DECIDE_OVERRIDE_MAY },
	  A(MAY), R(OVERRIDE), NULL, P(NONE), "", 0, 0 },
	{ "6: override may beats [delivery] tls = required",
	  { MX, .global = CONF_TLS_REQUIRED, .override = TLS_DECIDE_OVERRIDE_MAY },
	  A(MAY), R(OVERRIDE), NULL, P(NONE), "", 0, 0 },
	{ "7: override encrypt replaces an MTA-STS enforce that would skip this MX",
	  { .mx_host = "other.example.org", STS(sts_enforce), .override = TLS_DECIDE_OVERRIDE_ENCRYPT },
	  A(ENCRYPT), R(OVERRIDE), "4.7.5", P(NONE), "", 0, 0 },
	{ "7: override encrypt beats [delivery] tls = none",
	  { MX, .global = CONF_TLS_NONE, .override = TLS_DECIDE_OVERRIDE_ENCRYPT },
	  A(ENCRYPT), R(OVERRIDE), "4.7.5", P(NONE), "", 0, 0 },
	{ "8: override verify: the MX name, on insecure DNS too", { MX, .override = TLS_DECIDE_OVERRIDE_VERIFY },
	  A(VERIFY), R(OVERRIDE), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "8: override verify replaces DANE",
	  { MX, SECURE, TLSA(tlsa_311), .override = TLS_DECIDE_OVERRIDE_VERIFY },
	  A(VERIFY), R(OVERRIDE), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "9: override dane-only with usable TLSA: DANE",
	  { MX, SECURE, TLSA(tlsa_311), .override = TLS_DECIDE_OVERRIDE_DANE_ONLY },
	  A(DANE), R(OVERRIDE), "4.7.5", P(TLSA), "mx1.example.com", 1, 0 },
	{ "10: override dane-only, MX answer insecure: skip, 4.7.5",
	  { MX, .addr_dnssec = TLS_DECIDE_DNSSEC_SECURE, TLSA(tlsa_311), .override = TLS_DECIDE_OVERRIDE_DANE_ONLY },
	  A(SKIP), R(DANE_ONLY), "4.7.5", P(NONE), "", 0, 0 },
	{ "10: override dane-only, no TLSA proven: skip",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_NONE, .override = TLS_DECIDE_OVERRIDE_DANE_ONLY },
	  A(SKIP), R(DANE_ONLY), "4.7.5", P(NONE), "", 0, 0 },
	{ "10: override dane-only, TLSA all unusable: skip (no encrypt fallback)",
	  { MX, SECURE, TLSA(tlsa_unusable), .override = TLS_DECIDE_OVERRIDE_DANE_ONLY },
	  A(SKIP), R(DANE_ONLY), "4.7.5", P(NONE), "", 0, 0 },
	{ "10: override dane-only, TLSA lookup error: skip",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_ERROR, .override = TLS_DECIDE_OVERRIDE_DANE_ONLY },
	  A(SKIP), R(DANE_ONLY), "4.7.5", P(NONE), "", 0, 0 },

	/* ---- [delivery] tls = none and the message ---- */
	{ "11: [delivery] tls = none: clear, DANE and MTA-STS not consulted",
	  { MX, SECURE, TLSA(tlsa_311), STS(sts_enforce), .global = CONF_TLS_NONE },
	  A(CLEAR), R(CONFIG_NONE), NULL, P(NONE), "", 0, 0 },
	{ "11: [delivery] tls = none with a TLSA lookup error: clear",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_ERROR, .global = CONF_TLS_NONE },
	  A(CLEAR), R(CONFIG_NONE), NULL, P(NONE), "", 0, 0 },
	{ "12: TLS-Required: No sets aside an MTA-STS enforce mismatch (RFC 8689 §4.2.2)",
	  { .mx_host = "other.example.org", STS(sts_enforce), .tls_required_no = true },
	  A(MAY), R(TLS_REQUIRED_NO), NULL, P(NONE), "", 0, 0 },
	{ "12: TLS-Required: No sets aside DANE and a TLSA lookup error",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_ERROR, .tls_required_no = true },
	  A(MAY), R(TLS_REQUIRED_NO), NULL, P(NONE), "", 0, 0 },
	{ "12: TLS-Required: No sets aside [delivery] tls = required",
	  { MX, .global = CONF_TLS_REQUIRED, .tls_required_no = true },
	  A(MAY), R(TLS_REQUIRED_NO), NULL, P(NONE), "", 0, 0 },
	{ "12: TLS-Required: No does not relax an override",
	  { MX, .override = TLS_DECIDE_OVERRIDE_VERIFY, .tls_required_no = true },
	  A(VERIFY), R(OVERRIDE), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "12: TLS-Required: No is ignored with REQUIRETLS (RFC 8689 §4.2.2)",
	  { MX, SECURE, TLSA(tlsa_311), .tls_required_no = true, .requiretls = true },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "mx1.example.com", 1, 0 },

	/* ---- DANE (RFC 7672 §2.2) ---- */
	{ "DANE: MX RRset not secure: opportunistic, TLSA not consulted (§2.2.1)",
	  { MX, .addr_dnssec = TLS_DECIDE_DNSSEC_SECURE, TLSA(tlsa_311) },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "DANE: MX RRset not secure: a TLSA lookup error does not matter",
	  { MX, .tlsa_state = TLS_DECIDE_TLSA_ERROR }, A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "DANE: address not secure: opportunistic, TLSA not consulted (§2.2.3)",
	  { MX, .mx_dnssec = TLS_DECIDE_DNSSEC_SECURE, TLSA(tlsa_311) },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "13: TLSA lookup error: skip, 4.7.5", { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_ERROR },
	  A(SKIP), R(TLSA_LOOKUP_ERROR), "4.7.5", P(TLSA), "", 0, 0 },
	{ "13: TLSA never looked up behind secure DNS: fail closed", { MX, SECURE },
	  A(SKIP), R(TLSA_LOOKUP_ERROR), "4.7.5", P(TLSA), "", 0, 0 },
	{ "13: TLSA lookup error is not rescued by a matching MTA-STS policy (RFC 8461 §2)",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_ERROR, STS(sts_enforce) },
	  A(SKIP), R(TLSA_LOOKUP_ERROR), "4.7.5", P(TLSA), "", 0, 0 },
	{ "14: TLSA 3 1 1: DANE; a DANE failure then defers 4.7.5 after the next MX",
	  { MX, SECURE, TLSA(tlsa_311) }, A(DANE), R(DANE), "4.7.5", P(TLSA), "mx1.example.com", 1, 0 },
	{ "14: TLSA 2 1 1 behind a CNAME: the base domain and the MX name (§3.2.2)",
	  { MX, SECURE, .tlsa_base = "mail.provider.example", TLSA(tlsa_211) },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "mail.provider.example mx1.example.com", 1, 0 },
	{ "14: a TLSA base equal to the MX name is named once",
	  { MX, SECURE, .tlsa_base = "mx1.example.com", TLSA(tlsa_211) },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "mx1.example.com", 1, 0 },
	{ "14: only the usable records of a mixed RRset are handed on", { MX, SECURE, TLSA(tlsa_mixed) },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "mx1.example.com", 2, 0 },
	{ "14: DANE beats MTA-STS: a host missing from enforce's mx list is used (RFC 8461 §2)",
	  { .mx_host = "other.example.org", SECURE, TLSA(tlsa_311), STS(sts_enforce) },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "other.example.org", 1, 0 },
	{ "14: DANE beats MTA-STS testing: nothing to report for it",
	  { .mx_host = "other.example.org", SECURE, TLSA(tlsa_311), STS(sts_testing) },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "other.example.org", 1, 0 },
	{ "14: DANE beats [delivery] tls = required", { MX, SECURE, TLSA(tlsa_311), .global = CONF_TLS_REQUIRED },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "mx1.example.com", 1, 0 },
	{ "15: TLSA present, none usable: encrypt without authentication", { MX, SECURE, TLSA(tlsa_unusable) },
	  A(ENCRYPT), R(TLSA_UNUSABLE), "4.7.5", P(TLSA), "", 0, 0 },
	{ "15: a secure TLSA answer with no records at all is read as none usable",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_RECORDS },
	  A(ENCRYPT), R(TLSA_UNUSABLE), "4.7.5", P(TLSA), "", 0, 0 },
	{ "15: TLSA unusable, MTA-STS enforce matches: verify (MTA-STS raises it)",
	  { MX, SECURE, TLSA(tlsa_unusable), STS(sts_enforce) },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, 0 },
	{ "15: TLSA unusable, MTA-STS enforce does not match: skip",
	  { .mx_host = "other.example.org", SECURE, TLSA(tlsa_unusable), STS(sts_enforce) },
	  A(SKIP), R(STS_MX_MISMATCH), "4.7.5", P(STS), "", 0, 0 },
	{ "15: TLSA unusable, [delivery] tls = required: verify",
	  { MX, SECURE, TLSA(tlsa_unusable), .global = CONF_TLS_REQUIRED },
	  A(VERIFY), R(CONFIG_REQUIRED), "4.7.5", P(TLSA), "mx1.example.com", 0, 0 },
	{ "DANE: secure \"no TLSA\": opportunistic", { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_NONE },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "DANE: secure \"no TLSA\": MTA-STS applies",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_NONE, STS(sts_enforce) },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, 0 },
	{ "DANE: an insecure TLSA answer is no DANE", { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_INSECURE },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },

	/* ---- MTA-STS (RFC 8461) ---- */
	{ "16: enforce, MX matches: verify against the MX name (§4.2)", { MX, STS(sts_enforce) },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, 0 },
	{ "16: enforce, MX matches a wildcard pattern", { .mx_host = "mx7.example.net", STS(sts_enforce) },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx7.example.net", 0, 0 },
	{ "16: enforce, matching is case-insensitive", { .mx_host = "MX1.Example.COM", STS(sts_enforce) },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "MX1.Example.COM", 0, 0 },
	{ "16: a cached policy applies while a fetch is pending",
	  { MX, .sts_state = TLS_DECIDE_STS_PENDING, .sts = &sts_enforce },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, F_CACHED },
	{ "16: a cached policy applies when the fetch of a new id failed (§3.3)",
	  { MX, .sts_state = TLS_DECIDE_STS_FAILED, .sts = &sts_enforce },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, F_CACHED },
	{ "16: enforce and [delivery] tls = required agree on verify; the policy is named",
	  { MX, STS(sts_enforce), .global = CONF_TLS_REQUIRED },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, 0 },
	{ "17: enforce, MX matches no pattern: skip, 4.7.5 (§4.1)", { .mx_host = "evil.example", STS(sts_enforce) },
	  A(SKIP), R(STS_MX_MISMATCH), "4.7.5", P(STS), "", 0, 0 },
	{ "17: enforce, a wildcard matches one label only",
	  { .mx_host = "a.mx.example.net", STS(sts_enforce) },
	  A(SKIP), R(STS_MX_MISMATCH), "4.7.5", P(STS), "", 0, 0 },
	{ "17: enforce, the wildcard's own domain does not match", { .mx_host = "example.net", STS(sts_enforce) },
	  A(SKIP), R(STS_MX_MISMATCH), "4.7.5", P(STS), "", 0, 0 },
	{ "17: a cached enforce policy skips a mismatch while a fetch is pending",
	  { .mx_host = "evil.example", .sts_state = TLS_DECIDE_STS_PENDING, .sts = &sts_enforce },
	  A(SKIP), R(STS_MX_MISMATCH), "4.7.5", P(STS), "", 0, F_CACHED },
	{ "17: an insecure TLSA lookup error does not rescue a mismatch",
	  { .mx_host = "evil.example", .tlsa_state = TLS_DECIDE_TLSA_ERROR, STS(sts_enforce) },
	  A(SKIP), R(STS_MX_MISMATCH), "4.7.5", P(STS), "", 0, 0 },
	{ "18: testing, MX matches no pattern: delivered as if no policy, mismatch reported",
	  { .mx_host = "evil.example", STS(sts_testing) },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(STS), "", 0, F_TEST_MISMATCH },
	{ "18: testing mismatch under [delivery] tls = required: verify, and reported",
	  { .mx_host = "evil.example", STS(sts_testing), .global = CONF_TLS_REQUIRED },
	  A(VERIFY), R(CONFIG_REQUIRED), "4.7.5", P(STS), "evil.example", 0, F_TEST_MISMATCH },
	{ "19: testing, MX matches: delivered as if no policy, certificate checked for the report",
	  { MX, STS(sts_testing) }, A(MAY), R(OPPORTUNISTIC), NULL, P(STS), "mx1.example.com", 0, F_TEST_VERIFY },
	{ "19: testing from the cache", { MX, .sts_state = TLS_DECIDE_STS_FAILED, .sts = &sts_testing },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(STS), "mx1.example.com", 0, F_CACHED | F_TEST_VERIFY },
	{ "19: testing with TLSA unusable: encrypt, and the check reported",
	  { MX, SECURE, TLSA(tlsa_unusable), STS(sts_testing) },
	  A(ENCRYPT), R(TLSA_UNUSABLE), "4.7.5", P(STS), "mx1.example.com", 0, F_TEST_VERIFY },
	{ "MTA-STS: a fetch pending without a cached policy does not hold delivery up",
	  { .mx_host = "evil.example", .sts_state = TLS_DECIDE_STS_PENDING },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "MTA-STS: a failed fetch without a cached policy: as if no policy (§5.1)",
	  { .mx_host = "evil.example", .sts_state = TLS_DECIDE_STS_FAILED },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "MTA-STS: mode none is no policy (§5)", { .mx_host = "evil.example", STS(sts_none) },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "MTA-STS: state none ignores a policy handed in anyway",
	  { .mx_host = "evil.example", .sts_state = TLS_DECIDE_STS_NONE, .sts = &sts_enforce },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },

	/* ---- the defaults ---- */
	{ "20: [delivery] tls = required: verify against the MX name", { MX, .global = CONF_TLS_REQUIRED },
	  A(VERIFY), R(CONFIG_REQUIRED), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "21: opportunistic, no policy: may", { MX }, A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "21: opportunistic behind secure DNS without TLSA: may",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_NONE }, A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },

	/* ---- REQUIRETLS (RFC 8689 §4.2.1) ---- */
	{ "22: REQUIRETLS with DANE: DANE", { MX, SECURE, TLSA(tlsa_311), .requiretls = true },
	  A(DANE), R(DANE), "4.7.5", P(TLSA), "mx1.example.com", 1, 0 },
	{ "22: REQUIRETLS with MTA-STS enforce on insecure DNS: verify (the policy authenticates the MX)",
	  { MX, STS(sts_enforce), .requiretls = true },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, 0 },
	{ "22: REQUIRETLS with tls = required behind a secure MX answer: verify",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_NONE, .global = CONF_TLS_REQUIRED, .requiretls = true },
	  A(VERIFY), R(CONFIG_REQUIRED), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "23: REQUIRETLS behind a secure MX answer without TLSA: raised to verify",
	  { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_NONE, .requiretls = true },
	  A(VERIFY), R(REQUIRETLS), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "23: REQUIRETLS with MTA-STS testing matching: raised to verify",
	  { MX, STS(sts_testing), .requiretls = true },
	  A(VERIFY), R(REQUIRETLS), "4.7.5", P(STS), "mx1.example.com", 0, F_TEST_VERIFY },
	{ "23: REQUIRETLS with TLSA unusable: raised from encrypt to verify",
	  { MX, SECURE, TLSA(tlsa_unusable), .requiretls = true },
	  A(VERIFY), R(REQUIRETLS), "4.7.5", P(TLSA), "mx1.example.com", 0, 0 },
	{ "23: REQUIRETLS raises override may on a secure MX",
	  { MX, SECURE, .override = TLS_DECIDE_OVERRIDE_MAY, .requiretls = true },
	  A(VERIFY), R(REQUIRETLS), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "24: REQUIRETLS on insecure DNS without MTA-STS: skip, 4.7.30", { MX, .requiretls = true },
	  A(SKIP), R(REQUIRETLS_UNMET), "4.7.30", P(NONE), "", 0, 0 },
	{ "24: REQUIRETLS with tls = required on insecure DNS: the MX name is unauthenticated",
	  { MX, .global = CONF_TLS_REQUIRED, .requiretls = true },
	  A(SKIP), R(REQUIRETLS_UNMET), "4.7.30", P(NONE), "", 0, 0 },
	{ "24: REQUIRETLS with override verify on insecure DNS: skip",
	  { MX, .override = TLS_DECIDE_OVERRIDE_VERIFY, .requiretls = true },
	  A(SKIP), R(REQUIRETLS_UNMET), "4.7.30", P(NONE), "", 0, 0 },
	{ "24: REQUIRETLS with override none: skip, never in clear",
	  { MX, SECURE, .override = TLS_DECIDE_OVERRIDE_NONE, .requiretls = true },
	  A(SKIP), R(REQUIRETLS_UNMET), "4.7.30", P(NONE), "", 0, 0 },
	{ "24: REQUIRETLS with [delivery] tls = none: skip",
	  { MX, SECURE, .global = CONF_TLS_NONE, .requiretls = true },
	  A(SKIP), R(REQUIRETLS_UNMET), "4.7.30", P(NONE), "", 0, 0 },
	{ "24: REQUIRETLS with a testing mismatch on insecure DNS: skip, the mismatch still reported",
	  { .mx_host = "evil.example", STS(sts_testing), .requiretls = true },
	  A(SKIP), R(REQUIRETLS_UNMET), "4.7.30", P(STS), "", 0, F_TEST_MISMATCH },
	{ "24: REQUIRETLS does not turn an MTA-STS mismatch into a 4.7.30",
	  { .mx_host = "evil.example", STS(sts_enforce), .requiretls = true },
	  A(SKIP), R(STS_MX_MISMATCH), "4.7.5", P(STS), "", 0, 0 },

	/* ---- values outside the enums: the cautious neighbour ---- */
	{ "hostile: an unknown MX DNSSEC state is a lookup error", { MX, .mx_dnssec = (enum tls_decide_dnssec)99 },
	  A(SKIP), R(MX_LOOKUP_ERROR), "4.4.3", P(NONE), "", 0, 0 },
	{ "hostile: an unknown address DNSSEC state is a lookup error",
	  { MX, .addr_dnssec = (enum tls_decide_dnssec)-1 },
	  A(SKIP), R(ADDR_LOOKUP_ERROR), "4.4.3", P(NONE), "", 0, 0 },
	{ "hostile: an unknown TLSA state behind secure DNS is a lookup error",
	  { MX, SECURE, .tlsa_state = (enum tls_decide_tlsa_state)42 },
	  A(SKIP), R(TLSA_LOOKUP_ERROR), "4.7.5", P(TLSA), "", 0, 0 },
	{ "hostile: an unknown [delivery] tls value is required", { MX, .global = (enum conf_tls_policy)7 },
	  A(VERIFY), R(CONFIG_REQUIRED), "4.7.5", P(NONE), "mx1.example.com", 0, 0 },
	{ "hostile: an unknown override is unset", { MX, .override = (enum tls_decide_override)99 },
	  A(MAY), R(OPPORTUNISTIC), NULL, P(NONE), "", 0, 0 },
	{ "hostile: an unknown MTA-STS state with a policy is a failed fetch with a cache",
	  { MX, .sts_state = (enum tls_decide_sts_state)9, .sts = &sts_enforce },
	  A(VERIFY), R(STS_ENFORCE), "4.7.5", P(STS), "mx1.example.com", 0, F_CACHED },
	{ "hostile: TLSA records announced but no array", { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_RECORDS,
	  .tlsa = NULL, .tlsa_count = 5 },
	  A(ENCRYPT), R(TLSA_UNUSABLE), "4.7.5", P(TLSA), "", 0, 0 },
};

/* The names of a decision, space-separated. */
static void names_join(const struct tls_decision *d, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < d->name_count && i < TLS_DECIDE_NAMES_MAX; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i > 0 ? " " : "", d->names[i]);
}

/* What every decision promises, whatever its input. */
static void check_promises(const char *rule, const struct tls_decide_input *in, const struct tls_decision *d)
{
	if ((d->action == TLS_DECIDE_CLEAR || d->action == TLS_DECIDE_MAY) != (d->status == NULL))
		fail_msg("%s: status %s with %s", rule, d->status, tls_decide_action_str(d->action));
	if (d->status != NULL && d->status[0] != '4')
		fail_msg("%s: a TLS decision never bounces (status %s)", rule, d->status);
	if (d->why == NULL)
		fail_msg("%s: no sentence", rule);
	if ((d->action == TLS_DECIDE_DANE) != (d->tlsa_count > 0))
		fail_msg("%s: %zu TLSA records with %s", rule, d->tlsa_count, tls_decide_action_str(d->action));
	if ((d->action == TLS_DECIDE_VERIFY || d->action == TLS_DECIDE_DANE) && d->name_count == 0)
		fail_msg("%s: %s without names", rule, tls_decide_action_str(d->action));
	if ((d->action == TLS_DECIDE_SKIP || d->action == TLS_DECIDE_CLEAR) && d->name_count != 0)
		fail_msg("%s: names with %s", rule, tls_decide_action_str(d->action));
	if (in->requiretls && d->action != TLS_DECIDE_SKIP && d->action != TLS_DECIDE_VERIFY &&
	    d->action != TLS_DECIDE_DANE)
		fail_msg("%s: REQUIRETLS with %s", rule, tls_decide_action_str(d->action));
	if (d->action == TLS_DECIDE_DANE && (in->mx_dnssec != TLS_DECIDE_DNSSEC_SECURE ||
					     in->addr_dnssec != TLS_DECIDE_DNSSEC_SECURE))
		fail_msg("%s: DANE without secure MX and address answers", rule);
	for (size_t i = 0; i < d->tlsa_count; i++)
		if (!tls_decide_tlsa_usable(d->tlsa[i]))
			fail_msg("%s: an unusable TLSA record handed on", rule);
}

static void test_rows(void **state)
{
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *r = &rows[i];
		struct tls_decision d;
		char names[600];
		tls_decide_mx(&r->in, &d);
		names_join(&d, names, sizeof(names));
		unsigned flags = (d.sts_cached ? F_CACHED : 0) | (d.sts_testing_mismatch ? F_TEST_MISMATCH : 0) |
				 (d.sts_testing_verify ? F_TEST_VERIFY : 0);
		if (d.action != r->action || d.reason != r->reason || d.policy != r->policy ||
		    (d.status == NULL) != (r->status == NULL) ||
		    (d.status != NULL && strcmp(d.status, r->status) != 0) || strcmp(names, r->names) != 0 ||
		    d.tlsa_count != r->tlsa || flags != r->flags)
			fail_msg("row \"%s\": got %s reason=%s status=%s policy=%s names=\"%s\" tlsa=%zu flags=%u "
				 "(%s); want %s reason=%s status=%s policy=%s names=\"%s\" tlsa=%zu flags=%u",
				 r->rule, tls_decide_action_str(d.action), tls_decide_reason_str(d.reason),
				 d.status != NULL ? d.status : "-", tls_decide_policy_str(d.policy), names, d.tlsa_count,
				 flags, d.why, tls_decide_action_str(r->action), tls_decide_reason_str(r->reason),
				 r->status != NULL ? r->status : "-", tls_decide_policy_str(r->policy), r->names, r->tlsa,
				 r->flags);
		check_promises(r->rule, &r->in, &d);
	}
}

static void test_tlsa_usable(void **state)
{
	/* RFC 7672 §3.1, RFC 6698 §2.1 */
	static const struct {
		struct dns_tlsa r;
		bool usable;
	} t[] = {
		{ { 3, 1, 1, d32, 32 }, true },  { { 3, 0, 1, d32, 32 }, true },  { { 3, 1, 2, d64, 64 }, true },
		{ { 3, 1, 0, d20, 20 }, true },  { { 2, 0, 1, d32, 32 }, true },  { { 2, 1, 2, d64, 64 }, true },
		{ { 2, 0, 0, d64, 64 }, true },  { { 0, 0, 1, d32, 32 }, false }, { { 1, 1, 1, d32, 32 }, false },
		{ { 4, 1, 1, d32, 32 }, false }, { { 255, 1, 1, d32, 32 }, false }, { { 3, 2, 1, d32, 32 }, false },
		{ { 3, 255, 1, d32, 32 }, false }, { { 3, 1, 3, d32, 32 }, false }, { { 3, 1, 255, d32, 32 }, false },
		{ { 3, 1, 1, d32, 31 }, false }, { { 3, 1, 1, d64, 33 }, false }, { { 3, 1, 2, d32, 32 }, false },
		{ { 3, 1, 2, d64, 63 }, false }, { { 3, 1, 0, d32, 0 }, false }, { { 3, 1, 1, NULL, 32 }, false },
	};
	for (size_t i = 0; i < N(t); i++)
		if (tls_decide_tlsa_usable(&t[i].r) != t[i].usable)
			fail_msg("TLSA %u %u %u (%zu octets): want %s", t[i].r.usage, t[i].r.selector, t[i].r.mtype,
				 t[i].r.len, t[i].usable ? "usable" : "unusable");
}

static void test_tlsa_cap(void **state)
{
	/* a hostile RRset: at most TLS_DECIDE_TLSA_MAX records are handed on, the rest counted */
	struct dns_tlsa many[TLS_DECIDE_TLSA_MAX + 8];
	for (size_t i = 0; i < N(many); i++)
		many[i] = (struct dns_tlsa){ 3, 1, 1, d32, 32 };
	many[0].usage = 1; /* an unusable one is neither handed on nor counted as dropped */
	struct tls_decide_input in = { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_RECORDS, .tlsa = many,
				       .tlsa_count = N(many) };
	struct tls_decision d;
	tls_decide_mx(&in, &d);
	assert_int_equal(d.action, TLS_DECIDE_DANE);
	assert_int_equal(d.tlsa_count, TLS_DECIDE_TLSA_MAX);
	assert_int_equal(d.tlsa_dropped, 7);
	assert_ptr_equal(d.tlsa[0], &many[1]);
	check_promises("cap", &in, &d);
	/* and a decision that is not DANE hands on none */
	in.override = TLS_DECIDE_OVERRIDE_ENCRYPT;
	tls_decide_mx(&in, &d);
	assert_int_equal(d.tlsa_count, 0);
	assert_int_equal(d.tlsa_dropped, 0);
}

static void test_next_mx(void **state)
{
	/* "DANE failure → next MX, then defer": each MX is decided alone, so one host's TLSA lookup error
	 * or MTA-STS mismatch skips that host only, and the domain's other hosts still get their own
	 * decision; with none left, the runner defers with the skipped hosts' status */
	struct tls_decide_input mx1 = { MX, SECURE, .tlsa_state = TLS_DECIDE_TLSA_ERROR, STS(sts_enforce) };
	struct tls_decide_input mx2 = { .mx_host = "mx2.example.com", SECURE, TLSA(tlsa_311), STS(sts_enforce) };
	struct tls_decide_input mx3 = { .mx_host = "backup.example.org", SECURE,
					.tlsa_state = TLS_DECIDE_TLSA_NONE, STS(sts_enforce) };
	struct tls_decision d;
	tls_decide_mx(&mx1, &d);
	assert_int_equal(d.action, TLS_DECIDE_SKIP);
	assert_string_equal(d.status, "4.7.5");
	tls_decide_mx(&mx2, &d);
	assert_int_equal(d.action, TLS_DECIDE_DANE);
	assert_string_equal(d.status, "4.7.5"); /* what a DANE failure at mx2 defers with */
	tls_decide_mx(&mx3, &d);
	assert_int_equal(d.action, TLS_DECIDE_SKIP);
	assert_int_equal(d.reason, TLS_DECIDE_REASON_STS_MX_MISMATCH);
	assert_string_equal(d.status, "4.7.5");
}

static void test_every_input(void **state)
{
	/* every combination of the enums (and a few values outside them): the promises hold */
	static const struct dns_tlsa *sets[] = { NULL, tlsa_311, tlsa_unusable, tlsa_mixed };
	static const size_t set_n[] = { 0, N(tlsa_311), N(tlsa_unusable), N(tlsa_mixed) };
	static const struct mtasts_policy *pols[] = { NULL, &sts_enforce, &sts_testing, &sts_none };
	static const char *hosts[] = { "mx1.example.com", "evil.example" };
	unsigned n = 0;
	for (int mxd = 0; mxd <= 4; mxd++)
		for (int ad = 0; ad <= 4; ad++)
			for (int ts = 0; ts <= 5; ts++)
				for (size_t set = 0; set < N(sets); set++)
					for (int ss = 0; ss <= 4; ss++)
						for (size_t pol = 0; pol < N(pols); pol++)
							for (int flags = 0; flags < 4; flags++)
								for (int g = 0; g <= 3; g++)
									for (int o = 0; o <= 6; o++)
										for (size_t h = 0; h < N(hosts); h++) {
		struct tls_decide_input in = {
			.mx_host = hosts[h],
			.mx_dnssec = (enum tls_decide_dnssec)mxd,
			.addr_dnssec = (enum tls_decide_dnssec)ad,
			.tlsa_state = (enum tls_decide_tlsa_state)ts,
			.tlsa = sets[set],
			.tlsa_count = set_n[set],
			.sts_state = (enum tls_decide_sts_state)ss,
			.sts = pols[pol],
			.requiretls = (flags & 1) != 0,
			.tls_required_no = (flags & 2) != 0,
			.global = (enum conf_tls_policy)g,
			.override = (enum tls_decide_override)o,
		};
		struct tls_decision d;
		tls_decide_mx(&in, &d);
		check_promises("every input", &in, &d);
		/* an MTA-STS enforce mismatch is never delivered to, unless DANE or the operator or
		 * TLS-Required: No says so */
		if (pols[pol] == &sts_enforce && ss != TLS_DECIDE_STS_NONE && h == 1 && o == 0 &&
		    !(in.tls_required_no && !in.requiretls) && g != CONF_TLS_NONE)
			assert_true(d.action == TLS_DECIDE_SKIP || d.action == TLS_DECIDE_DANE);
		n++;
	}
	assert_true(n > 100000);
}

static void test_strings(void **state)
{
	for (int i = 0; i <= TLS_DECIDE_REASON_REQUIRETLS_UNMET; i++)
		assert_string_not_equal(tls_decide_reason_str((enum tls_decide_reason)i), "?");
	for (int i = 0; i <= TLS_DECIDE_DANE; i++)
		assert_string_not_equal(tls_decide_action_str((enum tls_decide_action)i), "?");
	for (int i = 0; i <= TLS_DECIDE_DNSSEC_ERROR; i++)
		assert_string_not_equal(tls_decide_dnssec_str((enum tls_decide_dnssec)i), "?");
	for (int i = 0; i <= TLS_DECIDE_TLSA_ERROR; i++)
		assert_string_not_equal(tls_decide_tlsa_state_str((enum tls_decide_tlsa_state)i), "?");
	for (int i = 0; i <= TLS_DECIDE_STS_FAILED; i++)
		assert_string_not_equal(tls_decide_sts_state_str((enum tls_decide_sts_state)i), "?");
	for (int i = 0; i <= TLS_DECIDE_OVERRIDE_NONE; i++)
		assert_string_not_equal(tls_decide_override_str((enum tls_decide_override)i), "?");
	assert_string_equal(tls_decide_policy_str(TLS_DECIDE_POLICY_NONE), "no-policy-found");
	assert_string_equal(tls_decide_policy_str(TLS_DECIDE_POLICY_TLSA), "tlsa");
	assert_string_equal(tls_decide_policy_str(TLS_DECIDE_POLICY_STS), "sts");
}

static void load(const char *text, struct mtasts_policy *p)
{
	const char *err;
	if (mtasts_policy_parse(text, strlen(text), p, &err) != MTASTS_OK)
		fail_msg("policy: %s", err);
}

int main(void)
{
	load("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: mx2.example.com\nmx: *.example.net\n"
	     "max_age: 604800\n",
	     &sts_enforce);
	load("version: STSv1\nmode: testing\nmx: mx1.example.com\nmax_age: 86400\n", &sts_testing);
	load("version: STSv1\nmode: none\nmax_age: 86400\n", &sts_none);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),    cmocka_unit_test(test_tlsa_usable), cmocka_unit_test(test_tlsa_cap),
		cmocka_unit_test(test_next_mx), cmocka_unit_test(test_every_input), cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_tls_decide.c — libFuzzer harness for src/delivery/tls_decide.c. The first 8 octets pick the
 * DNSSEC, TLSA and MTA-STS states, the settings and the message's flags (values outside the enums
 * included), the next octet the number of TLSA records, each then 4 octets (usage, selector, matching
 * type, length) and its data; the rest is "MX host\nTLSA base\npolicy text". The decision must keep
 * the promises of tls_decide.h whatever it is given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/tls_decide.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#define FUZZ_TLSA_MAX 48

static char *fuzz_line(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += nl != NULL ? n + 1 : n;
	return s;
}

static void fuzz_check(const struct tls_decide_input *in, const struct tls_decision *d)
{
	FUZZ_CHECK(d->action <= TLS_DECIDE_DANE);
	FUZZ_CHECK(d->reason <= TLS_DECIDE_REASON_REQUIRETLS_UNMET);
	FUZZ_CHECK(d->policy <= TLS_DECIDE_POLICY_STS);
	FUZZ_CHECK(d->why != NULL);
	FUZZ_CHECK((d->action == TLS_DECIDE_CLEAR || d->action == TLS_DECIDE_MAY) == (d->status == NULL));
	FUZZ_CHECK(d->status == NULL || d->status[0] == '4'); /* never a bounce */
	FUZZ_CHECK(d->name_count <= TLS_DECIDE_NAMES_MAX && d->tlsa_count <= TLS_DECIDE_TLSA_MAX);
	FUZZ_CHECK((d->action == TLS_DECIDE_DANE) == (d->tlsa_count > 0));
	FUZZ_CHECK(d->action == TLS_DECIDE_DANE || d->tlsa_dropped == 0);
	if (d->action == TLS_DECIDE_VERIFY || d->action == TLS_DECIDE_DANE)
		FUZZ_CHECK(d->name_count > 0);
	if (d->action == TLS_DECIDE_SKIP || d->action == TLS_DECIDE_CLEAR)
		FUZZ_CHECK(d->name_count == 0 && !d->sts_testing_verify);
	for (size_t i = 0; i < d->name_count; i++)
		FUZZ_CHECK(d->names[i] == in->mx_host || d->names[i] == in->tlsa_base);
	for (size_t i = 0; i < d->tlsa_count; i++) {
		FUZZ_CHECK(d->tlsa[i] >= in->tlsa && d->tlsa[i] < in->tlsa + in->tlsa_count);
		FUZZ_CHECK(tls_decide_tlsa_usable(d->tlsa[i]));
	}
	if (d->action != TLS_DECIDE_SKIP)
		FUZZ_CHECK(in->mx_host != NULL && dns_host_valid(in->mx_host));
	/* DANE only behind secure MX and address answers (RFC 7672 §2.2) */
	if (d->action == TLS_DECIDE_DANE)
		FUZZ_CHECK(in->mx_dnssec == TLS_DECIDE_DNSSEC_SECURE && in->addr_dnssec == TLS_DECIDE_DNSSEC_SECURE);
	/* REQUIRETLS: authenticated TLS or nothing (RFC 8689 §4.2.1) */
	if (in->requiretls)
		FUZZ_CHECK(d->action == TLS_DECIDE_SKIP || d->action == TLS_DECIDE_VERIFY || d->action == TLS_DECIDE_DANE);
	/* bogus or failed DNS is never used */
	if (in->mx_dnssec != TLS_DECIDE_DNSSEC_SECURE && in->mx_dnssec != TLS_DECIDE_DNSSEC_INSECURE)
		FUZZ_CHECK(d->action == TLS_DECIDE_SKIP);
	if (in->addr_dnssec != TLS_DECIDE_DNSSEC_SECURE && in->addr_dnssec != TLS_DECIDE_DNSSEC_INSECURE)
		FUZZ_CHECK(d->action == TLS_DECIDE_SKIP);
	/* an MTA-STS enforce policy's mismatch is not delivered to but under DANE, an override,
	 * TLS-Required: No or tls = none */
	const struct mtasts_policy *sts = in->sts_state != TLS_DECIDE_STS_NONE ? in->sts : NULL;
	if (sts != NULL && sts->mode == MTASTS_MODE_ENFORCE && d->action != TLS_DECIDE_SKIP &&
	    !mtasts_policy_mx_match(sts, in->mx_host))
		FUZZ_CHECK(d->action == TLS_DECIDE_DANE ||
			   (in->override > TLS_DECIDE_OVERRIDE_UNSET && in->override <= TLS_DECIDE_OVERRIDE_NONE) ||
			   (in->tls_required_no && !in->requiretls) || in->global == CONF_TLS_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 9)
		return 0;
	const uint8_t *p = data, *end = data + size;
	struct tls_decide_input in = {
		.mx_dnssec = (enum tls_decide_dnssec)(p[0] % 6),
		.addr_dnssec = (enum tls_decide_dnssec)(p[1] % 6),
		.tlsa_state = (enum tls_decide_tlsa_state)(p[2] % 7),
		.sts_state = (enum tls_decide_sts_state)(p[3] % 6),
		.global = (enum conf_tls_policy)(p[4] % 5),
		.override = (enum tls_decide_override)(p[5] % 8),
		.requiretls = (p[6] & 1) != 0,
		.tls_required_no = (p[6] & 2) != 0,
	};
	bool with_base = (p[6] & 4) != 0, with_policy = (p[6] & 8) != 0;
	(void)p[7]; /* spare */
	size_t n = p[8] % (FUZZ_TLSA_MAX + 1);
	p += 9;
	struct dns_tlsa tlsa[FUZZ_TLSA_MAX];
	size_t count = 0;
	while (count < n && end - p >= 4) {
		size_t len = p[3];
		tlsa[count] = (struct dns_tlsa){ p[0], p[1], p[2], NULL, 0 };
		p += 4;
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		tlsa[count].data = len > 0 ? p : NULL;
		tlsa[count].len = len;
		p += len;
		count++;
	}
	in.tlsa = count > 0 ? tlsa : NULL;
	in.tlsa_count = count;

	char *host = fuzz_line(&p, end);
	char *base = fuzz_line(&p, end);
	struct mtasts_policy *pol = malloc(sizeof(*pol));
	if (host == NULL || base == NULL || pol == NULL)
		goto out;
	const char *err;
	size_t rest = (size_t)(end - p);
	char *text = malloc(rest > 0 ? rest : 1);
	if (text == NULL)
		goto out;
	memcpy(text, p, rest);
	bool parsed = mtasts_policy_parse(text, rest, pol, &err) == MTASTS_OK;
	free(text);
	in.mx_host = host;
	in.tlsa_base = with_base ? base : NULL;
	in.sts = with_policy && parsed ? pol : NULL;

	struct tls_decision d, again;
	tls_decide_mx(&in, &d);
	fuzz_check(&in, &d);
	tls_decide_mx(&in, &again);
	FUZZ_CHECK(memcmp(&d, &again, sizeof(d)) == 0);
out:
	free(pol);
	free(base);
	free(host);
	return 0;
}

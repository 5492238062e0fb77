/* test_tlsrpt_note.c — one outbound session in RFC 8460 terms: every row of tlsrpt_note.h's result
 * table, what is not a TLS session, and the policy (tlsa records, the caller's sts, none). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <openssl/x509_vfy.h>
#include <string.h>

#include "delivery/tlsrpt_note.h"

struct note_case {
	const char *what;
	enum tls_decide_action action;
	enum tls_decide_reason reason;
	enum delivery_tls_policy client;
	bool connected;
	enum delivery_error error;
	bool tls, esmtp;
	long verify;
	bool want_session;
	enum tlsrpt_result want;
};

static const struct note_case cases[] = {
	{"TLSA lookup failed", TLS_DECIDE_SKIP, TLS_DECIDE_REASON_TLSA_LOOKUP_ERROR, DELIVERY_TLS_NONE, false, 0, false,
	 false, 0, true, TLSRPT_RESULT_DNSSEC_INVALID},
	{"MX bogus", TLS_DECIDE_SKIP, TLS_DECIDE_REASON_MX_BOGUS, DELIVERY_TLS_NONE, false, 0, false, false, 0, true,
	 TLSRPT_RESULT_DNSSEC_INVALID},
	{"dane-only without DANE", TLS_DECIDE_SKIP, TLS_DECIDE_REASON_DANE_ONLY, DELIVERY_TLS_NONE, false, 0, false, false,
	 0, true, TLSRPT_RESULT_DANE_REQUIRED},
	{"sts mx mismatch", TLS_DECIDE_SKIP, TLS_DECIDE_REASON_STS_MX_MISMATCH, DELIVERY_TLS_NONE, false, 0, false, false,
	 0, true, TLSRPT_RESULT_VALIDATION_FAILURE},
	{"requiretls unmet: no TLS question", TLS_DECIDE_SKIP, TLS_DECIDE_REASON_REQUIRETLS_UNMET, DELIVERY_TLS_NONE,
	 false, 0, false, false, 0, false, 0},
	{"MX lookup error: no TLS question", TLS_DECIDE_SKIP, TLS_DECIDE_REASON_MX_LOOKUP_ERROR, DELIVERY_TLS_NONE, false,
	 0, false, false, 0, false, 0},
	{"DANE success", TLS_DECIDE_DANE, TLS_DECIDE_REASON_DANE, DELIVERY_TLS_DANE, true, DELIVERY_ERR_NONE, true, true, 0,
	 true, TLSRPT_RESULT_SUCCESS},
	{"DANE no match", TLS_DECIDE_DANE, TLS_DECIDE_REASON_DANE, DELIVERY_TLS_DANE, true, DELIVERY_ERR_TLS_HANDSHAKE,
	 false, true, X509_V_ERR_DANE_NO_MATCH, true, TLSRPT_RESULT_TLSA_INVALID},
	{"DANE handshake broke", TLS_DECIDE_DANE, TLS_DECIDE_REASON_DANE, DELIVERY_TLS_DANE, true,
	 DELIVERY_ERR_TLS_HANDSHAKE, false, true, 0, true, TLSRPT_RESULT_VALIDATION_FAILURE},
	{"DANE, no STARTTLS", TLS_DECIDE_DANE, TLS_DECIDE_REASON_DANE, DELIVERY_TLS_DANE, true,
	 DELIVERY_ERR_TLS_UNAVAILABLE, false, true, 0, true, TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED},
	{"verify: name", TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_CONFIG_REQUIRED, DELIVERY_TLS_REQUIRED, true,
	 DELIVERY_ERR_TLS_HANDSHAKE, false, true, X509_V_ERR_HOSTNAME_MISMATCH, true,
	 TLSRPT_RESULT_CERT_HOST_MISMATCH},
	{"verify: expired", TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_CONFIG_REQUIRED, DELIVERY_TLS_REQUIRED, true,
	 DELIVERY_ERR_TLS_HANDSHAKE, false, true, X509_V_ERR_CERT_HAS_EXPIRED, true, TLSRPT_RESULT_CERT_EXPIRED},
	{"verify: self-signed", TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_CONFIG_REQUIRED, DELIVERY_TLS_REQUIRED, true,
	 DELIVERY_ERR_TLS_HANDSHAKE, false, true, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, true,
	 TLSRPT_RESULT_CERT_NOT_TRUSTED},
	{"verify: unknown issuer", TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_CONFIG_REQUIRED, DELIVERY_TLS_REQUIRED, true,
	 DELIVERY_ERR_TLS_HANDSHAKE, false, true, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, true,
	 TLSRPT_RESULT_CERT_NOT_TRUSTED},
	{"verify: other", TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_CONFIG_REQUIRED, DELIVERY_TLS_REQUIRED, true,
	 DELIVERY_ERR_TLS_HANDSHAKE, false, true, X509_V_ERR_CERT_SIGNATURE_FAILURE, true,
	 TLSRPT_RESULT_VALIDATION_FAILURE},
	{"opportunistic success", TLS_DECIDE_MAY, TLS_DECIDE_REASON_OPPORTUNISTIC, DELIVERY_TLS_OPPORTUNISTIC, true,
	 DELIVERY_ERR_NONE, true, true, 0, true, TLSRPT_RESULT_SUCCESS},
	{"opportunistic, not offered", TLS_DECIDE_MAY, TLS_DECIDE_REASON_OPPORTUNISTIC, DELIVERY_TLS_OPPORTUNISTIC, true,
	 DELIVERY_ERR_NONE, false, true, 0, true, TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED},
	{"opportunistic, not offered, rcpt refused", TLS_DECIDE_MAY, TLS_DECIDE_REASON_OPPORTUNISTIC,
	 DELIVERY_TLS_OPPORTUNISTIC, true, DELIVERY_ERR_MAIL, false, true, 0, true, TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED},
	{"opportunistic, lost before knowing", TLS_DECIDE_MAY, TLS_DECIDE_REASON_OPPORTUNISTIC,
	 DELIVERY_TLS_OPPORTUNISTIC, true, DELIVERY_ERR_LOST, false, true, 0, false, 0},
	{"opportunistic, HELO only", TLS_DECIDE_MAY, TLS_DECIDE_REASON_OPPORTUNISTIC, DELIVERY_TLS_OPPORTUNISTIC, true,
	 DELIVERY_ERR_NONE, false, false, 0, false, 0},
	{"connect failed", TLS_DECIDE_DANE, TLS_DECIDE_REASON_DANE, DELIVERY_TLS_DANE, true, DELIVERY_ERR_CONNECT, false,
	 false, 0, false, 0},
	{"greeting refused", TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_CONFIG_REQUIRED, DELIVERY_TLS_REQUIRED, true,
	 DELIVERY_ERR_GREETING, false, false, 0, false, 0},
	{"in clear by our policy", TLS_DECIDE_CLEAR, TLS_DECIDE_REASON_OVERRIDE, DELIVERY_TLS_NONE, true,
	 DELIVERY_ERR_NONE, false, true, 0, false, 0},
};

static void test_results(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct note_case *c = &cases[i];
		struct host_tls h;
		memset(&h, 0, sizeof(h));
		h.decision.action = c->action;
		h.decision.reason = c->reason;
		h.decision.why = "why";
		struct delivery_result r = {.error = c->error, .tls = c->tls, .esmtp = c->esmtp, .tls_verify_error = c->verify,
					    .error_text = "", .local_ip = "192.0.2.1"};
		struct sockaddr_in sin = {.sin_family = AF_INET};
		struct tlsrpt_note n = {
			.domain = "example.com", .mx_host = "mx.example.com", .htls = &h, .client_tls = c->client,
			.peer = c->connected ? (const struct sockaddr *)&sin : NULL, .r = c->connected ? &r : NULL,
		};
		enum tlsrpt_result got = TLSRPT_RESULT_COUNT;
		bool is = tlsrpt_note_result(&n, &got);
		if (is != c->want_session || (is && got != c->want))
			fail_msg("%s: got %s %s, want %s %s", c->what, is ? "session" : "none", is ? tlsrpt_result_str(got) : "",
				 c->want_session ? "session" : "none", c->want_session ? tlsrpt_result_str(c->want) : "");
	}
}

static void test_policies(void **state)
{
	(void)state;
	uint8_t d1[] = {0xab, 0x12}, d2[] = {0xff};
	struct dns_tlsa recs[] = {{3, 1, 1, d1, 2}, {2, 0, 1, d2, 1}};
	struct host_tls h;
	memset(&h, 0, sizeof(h));
	h.decision.action = TLS_DECIDE_DANE;
	h.decision.reason = TLS_DECIDE_REASON_DANE;
	h.decision.policy = TLS_DECIDE_POLICY_TLSA;
	h.records = recs;
	h.record_count = 2;
	struct delivery_result r = {.error = DELIVERY_ERR_NONE, .tls = true, .esmtp = true, .error_text = "",
				    .local_ip = "192.0.2.1"};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc6336401)};
	struct tlsrpt_note n = {.domain = "Example.COM", .mx_host = "mx.example.com", .htls = &h,
				.client_tls = DELIVERY_TLS_DANE, .peer = (const struct sockaddr *)&sin, .r = &r, .now = 100};
	struct tlsrpt_sessions l = {0};
	assert_true(tlsrpt_note_add(&l, &n));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].policy_type, TLSRPT_POLICY_TLSA);
	assert_string_equal(l.v[0].policy_strings, "3 1 1 ab12\n2 0 1 ff");
	assert_string_equal(l.v[0].mx_hosts, "mx.example.com");
	assert_string_equal(l.v[0].policy_domain, "example.com");
	/* a failure keeps the addresses */
	r.error = DELIVERY_ERR_TLS_HANDSHAKE;
	r.tls = false;
	r.tls_verify_error = X509_V_ERR_DANE_NO_MATCH;
	r.error_text = "TLS handshake failed";
	assert_true(tlsrpt_note_add(&l, &n));
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[1].result, TLSRPT_RESULT_TLSA_INVALID);
	assert_string_equal(l.v[1].receiving_ip, "198.51.100.1");
	assert_string_equal(l.v[1].sending_ip, "192.0.2.1");
	assert_string_equal(l.v[1].additional, "TLS handshake failed");
	/* the caller's MTA-STS policy wins and is recorded as sts */
	static const char *const lines[] = {"version: STSv1", "mode: enforce", "mx: *.example.com", "max_age: 86400"};
	static const char *const pats[] = {"*.example.com"};
	n.policy_type = TLSRPT_POLICY_STS;
	n.policy_strings = lines;
	n.policy_string_count = 4;
	n.mx_hosts = pats;
	n.mx_host_count = 1;
	n.sts_failure = TLSRPT_RESULT_STS_WEBPKI_INVALID;
	assert_true(tlsrpt_note_add(&l, &n));
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[2].policy_type, TLSRPT_POLICY_STS);
	assert_int_equal(l.v[2].result, TLSRPT_RESULT_STS_WEBPKI_INVALID);
	assert_string_equal(l.v[2].policy_strings, "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400");
	assert_string_equal(l.v[2].mx_hosts, "*.example.com");
	/* no policy */
	struct host_tls none;
	memset(&none, 0, sizeof(none));
	none.decision.action = TLS_DECIDE_MAY;
	struct tlsrpt_note m = {.domain = "example.org", .mx_host = "mx.example.org", .htls = &none,
				.client_tls = DELIVERY_TLS_OPPORTUNISTIC, .peer = (const struct sockaddr *)&sin, .r = &r};
	r.error = DELIVERY_ERR_NONE;
	r.tls = true;
	assert_true(tlsrpt_note_add(&l, &m));
	assert_int_equal(l.v[3].policy_type, TLSRPT_POLICY_NONE);
	assert_string_equal(l.v[3].policy_strings, "");
	assert_string_equal(l.v[3].mx_hosts, "");
	tlsrpt_sessions_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_policies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* auth_dns.h — how the SPF, DKIM and DMARC evaluators ask DNS questions. The evaluators are pure
 * state machines: each step either finishes or returns one question; whoever drives them (the loop
 * through net/dns.c, the CLI, a unit test's fake zone) answers it with a struct dns_result and calls
 * the step again. So the same code runs the RFC test suites and the server. */
#ifndef MAILWERK_AUTH_AUTH_DNS_H
#define MAILWERK_AUTH_AUTH_DNS_H

#include "net/dns_parse.h"

enum auth_step {
	AUTH_STEP_DONE = 0, /* the evaluation has its result */
	AUTH_STEP_QUERY,    /* answer *q_r, then call the step again with the answer */
};

struct auth_query {
	/* presentation form, no trailing dot; at most 253 octets (RFC 1035 §2.3.4 on the wire) */
	char name[DNS_HOST_SIZE];
	int rrtype; /* DNS_RRTYPE_* */
};

/* The shape every evaluator's step function has: answer is NULL on the first call and the answer to
 * the previous question afterwards (valid only during the call: copy what must be kept). */
typedef enum auth_step auth_step_fn(void *eval, const struct dns_result *answer, struct auth_query *q_r);

#endif

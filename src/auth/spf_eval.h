/* spf_eval.h — the state of one SPF evaluation, shared by spf.c (records, include stack,
 * modifiers, explanation) and spf_mech.c (mechanisms, PTR names and %{p}); not for use elsewhere:
 * callers see only spf.h. Each step either finishes or leaves one question in e->q, with e->wait
 * saying what its answer is for. Only the innermost check_host() (the top of the include stack)
 * evaluates at a time, so the state of the term in progress lives once in the evaluation; the PTR
 * names of <ip> and their validation are shared by every "ptr" and %{p}. */
#ifndef MAILWERK_AUTH_SPF_EVAL_H
#define MAILWERK_AUTH_SPF_EVAL_H

#include <string.h>

#include "auth/spf.h"
#include "auth/spf_macro.h"
#include "auth/spf_record.h"

/* The record checked first and one per include: each include counts against the 10 (§4.6.4). */
#define SPF_DEPTH_MAX (SPF_LOOKUP_LIMIT + 1)
/* The longest exp= TXT text (or default explanation) expanded; a longer one is not used. */
#define SPF_EXP_SOURCE_MAX 1024

enum spf_phase {
	SPF_PHASE_START,    /* initial processing (§4.3) */
	SPF_PHASE_RECORD,   /* ask for the innermost frame's record (§4.4) */
	SPF_PHASE_TERM,     /* evaluate the innermost frame's current term (§4.6.2, §5) */
	SPF_PHASE_REDIRECT, /* nothing matched: follow redirect= (§6.1) */
	SPF_PHASE_EXP,      /* the result is fail: find the explanation (§6.2) */
	SPF_PHASE_DONE,
};

/* Where the current term, redirect= or exp= stands. */
enum spf_mstep {
	SPF_MSTEP_BEGIN,     /* count it against the limit (§4.6.4) */
	SPF_MSTEP_TARGET,    /* %{p} known if needed, target expanded, first question asked */
	SPF_MSTEP_MX_NEXT,   /* mx: the address lookups of the MX names, one by one */
	SPF_MSTEP_PTR_FETCH, /* ptr: the PTR names of <ip> */
	SPF_MSTEP_PTR_CHECK, /* ptr: validating the names at or under the target */
	SPF_MSTEP_EXP_TEXT,  /* exp: expanding the text, once %{p} is known */
};

/* What the question outstanding is for. */
enum spf_wait {
	SPF_WAIT_NONE = 0,
	SPF_WAIT_RECORD,   /* TXT of the innermost frame's domain */
	SPF_WAIT_ADDR,     /* a: A or AAAA of the target */
	SPF_WAIT_EXISTS,   /* exists: A of the target */
	SPF_WAIT_MX,       /* mx: MX of the target */
	SPF_WAIT_MX_ADDR,  /* mx: A or AAAA of mx[mx_next] */
	SPF_WAIT_PTR,      /* ptr, %{p}: PTR of <ip> */
	SPF_WAIT_PTR_ADDR, /* ptr, %{p}: A or AAAA of ptrs.names[ptr_index] */
	SPF_WAIT_EXP,      /* TXT of the exp= target */
};

/* One check_host() (§4): the record checked first, an included one, or what redirect= led to. */
struct spf_frame {
	char domain[DNS_HOST_SIZE];
	struct spf_record *rec; /* NULL until fetched */
	size_t term;            /* the term being evaluated */
	bool redirected;        /* reached by redirect=: no record is then a permerror (§6.1) */
};

struct spf_eval {
	/* the request */
	struct dns_addr ip;
	time_t now;
	const char *bad_request; /* why the request cannot be evaluated (it gives none), or NULL */
	char helo[SPF_INPUT_MAX + 1];
	char local[SPF_INPUT_MAX + 1];
	char sender_domain[SPF_INPUT_MAX + 1];
	char sender[2 * SPF_INPUT_MAX + 2];
	char domain[SPF_INPUT_MAX + 1];
	char receiver[DNS_HOST_SIZE];
	char default_exp[SPF_EXP_SOURCE_MAX + 1];

	enum spf_phase phase;
	enum spf_mstep mstep;
	enum spf_wait wait;
	struct auth_query q;

	struct spf_frame frames[SPF_DEPTH_MAX];
	size_t depth;

	/* the term in progress */
	char target[DNS_HOST_SIZE];
	char mx[SPF_MX_LIMIT][DNS_HOST_SIZE];
	size_t mx_n, mx_next;

	/* §5.5, §7.3: the PTR names of <ip> (the first 10) and whether each is validated */
	struct {
		bool fetched;
		bool found_none; /* NXDOMAIN or no records: a void lookup for "ptr" */
		size_t n;
		char names[SPF_PTR_LIMIT][DNS_HOST_SIZE];
		signed char valid[SPF_PTR_LIMIT]; /* -1 not looked up yet, 0 no, 1 yes */
	} ptrs;
	size_t ptr_index;

	unsigned lookups, voids;

	char exp_src[SPF_EXP_SOURCE_MAX + 1];
	size_t exp_src_len;
	bool exp_uses_p;

	enum spf_result result;
	bool has_explanation;
	char explanation[SPF_EXPLANATION_SIZE];
	char problem[SPF_PROBLEM_SIZE];
};

/* spf.c */
/* Text from DNS or the peer, made fit for a log line or a header comment: printable US-ASCII
 * without parentheses or backslashes, cut at size. */
const char *spf_clean(const char *s, size_t len, char *buf, size_t size);
#define SPF_CLEAN(s, buf) spf_clean((s), strlen(s), (buf), sizeof(buf))
void spf_problem(struct spf_eval *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void spf_finish(struct spf_eval *e, enum spf_result r);
struct spf_frame *spf_top(struct spf_eval *e);
void spf_ask(struct spf_eval *e, enum spf_wait w, const char *name, int rrtype);
/* The target-name of a term, redirect= or exp= into e->target: 1 done, 0 a %{p} question asked,
 * -1 the expansion cannot be asked (*why_r says why). */
int spf_target(struct spf_eval *e, const struct spf_domain_spec *spec, const char **why_r);
void spf_frame_start(struct spf_eval *e, const char *domain, bool redirect);
void spf_matched(struct spf_eval *e);
void spf_next_term(struct spf_eval *e);
void spf_record_end(struct spf_eval *e);
bool spf_count_lookup(struct spf_eval *e, const char *prefix, const char *text, size_t len);
bool spf_count_void(struct spf_eval *e, const char *name);
void spf_dns_error(struct spf_eval *e, const struct dns_result *a, const char *section);

/* spf_mech.c */
/* Moves the current term on (SPF_PHASE_TERM). */
void spf_mech_step(struct spf_eval *e);
/* The answer to a question of a term, or of the PTR names and their validation. */
void spf_mech_answer(struct spf_eval *e, enum spf_wait w, const struct dns_result *a);
/* §7.3 %{p} for domain: true with *name_r (NULL for "unknown") once known, else false with the
 * next PTR or address question asked. */
bool spf_p_ready(struct spf_eval *e, const char *domain, const char **name_r);

#endif

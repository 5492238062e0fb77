/* job_answer.h — what a resource's worker job answers: made on the worker (an error in Resend's
 * shape, or a JSON body), sent on the loop to the session that asked, if it is still there. The
 * one way the resource files end their jobs (keys.c and domains.c, older, still answer by hand). */
#ifndef MAILWERK_HTTP_JOB_ANSWER_H
#define MAILWERK_HTTP_JOB_ANSWER_H

#include <stdint.h>

#include <jansson.h>

struct server;

struct http_job_answer {
	unsigned status;  /* of an error; 0: body is the answer */
	const char *name; /* the error's name (Resend's) */
	char message[512];
	json_t *body;
};

/* Sets the error (status, name and the sentence for the client). */
void http_job_fail(struct http_job_answer *a, unsigned status, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Loop thread: the answer to session session_id, with ok_status when it is the body (no error and
 * no body: a 500); then the body is freed. */
void http_job_send(struct server *srv, uint64_t session_id, struct http_job_answer *a, unsigned ok_status);

#endif

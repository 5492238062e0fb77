/* job_answer.c — a worker job's answer (job_answer.h). */
#include "http/job_answer.h"

#include <stdarg.h>
#include <stdio.h>

#include "http/session.h"

void http_job_fail(struct http_job_answer *a, unsigned status, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	a->status = status, a->name = name;
}

void http_job_send(struct server *srv, uint64_t session_id, struct http_job_answer *a, unsigned ok_status)
{
	struct http_session *s = http_session_find(srv, session_id);
	if (s != NULL) {
		if (a->status == 0 && a->body == NULL)
			http_job_fail(a, 500, "internal_server_error", "Out of memory.");
		if (a->status != 0)
			http_respond_json(s, a->status, http_error_json(a->status, a->name, a->message), NULL);
		else
			http_respond_json(s, ok_status, a->body, NULL), a->body = NULL;
	}
	json_decref(a->body);
	a->body = NULL;
}

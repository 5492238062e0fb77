/* control_status.c — what `status` tells of the server's health beside its activity (control_cmd.c
 * has the rest): the deliveries' outcomes of the last minute and the last hour.
 *
 * The outcomes come from the metrics' rings of time slots (util/metrics.h), fed where each outcome
 * is recorded in the queue, rather than from the events of queue.db (events/stats.h): those are
 * written for tracked mail only (sent through the API), so mail that came in over SMTP, local or
 * relayed, would be missing, and each status would cost a scan of the events. The rings are of
 * this node, in a fixed few KiB, and agree with /metrics' mailwerk_deliveries_total. */
#include "server/control_int.h"

#include "server/server.h"
#include "util/metrics.h"

/* {"local": {"delivered": N, "deferred": N, "failed": N}, "remote": {...}} */
static json_t *control_outcomes_json(const uint64_t n[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT])
{
	json_t *o = json_object();
	for (int r = 0; o != NULL && r < METRICS_ROUTE_COUNT; r++) {
		json_t *by = json_object();
		for (int k = 0; by != NULL && k < METRICS_OUTCOME_COUNT; k++)
			json_object_set_new(by, metrics_outcome_str(k), json_integer((json_int_t)n[r][k]));
		if (by == NULL || json_object_set_new(o, metrics_route_str(r), by) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* Recipients delivered, deferred (a temporary failure, tried again) and failed (for good: bounced)
 * in the last minute and the last hour, by route. */
static json_t *control_deliveries_json(const struct server *srv)
{
	struct metrics_recent_counts c;
	metrics_recent_read(srv->metrics, &c);
	return json_pack("{s:o, s:o}", "last_minute", control_outcomes_json(c.minute), "last_hour",
			 control_outcomes_json(c.hour));
}

int control_status_loop_add(struct control_job *j)
{
	const struct server *srv = j->ctl->srv;
	json_t *d = control_deliveries_json(srv);
	return d != NULL && json_object_set_new(j->status, "deliveries", d) == 0 ? 0 : -1;
}

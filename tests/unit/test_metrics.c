/* test_metrics.c — the counters (util/metrics.c) and their text (http/metrics.c's metrics_render):
 * HELP and TYPE before every family's samples, histograms cumulative with +Inf equal to _count and
 * an exact _sum, label values escaped, gauges left out when they could not be read (the queue's,
 * the webhook backlog), the webhook counters by result, and every counting call harmless on NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/metrics.h"
#include "util/metrics.h"

static const struct metrics_http_label labels[] = {
	{"/emails", "POST"},
	{"/emails/{id}", "GET"},
	{"/odd\"route\\with\nnewline", "GET"},
	{"other", "DELETE"},
};

static char *render(const struct metrics *m, const struct metrics_snapshot *g)
{
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(metrics_render(m, g, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	assert_true(len > 0 && text[len - 1] == '\n');
	return text;
}

/* Whether line (without its line feed) is a whole line of text. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static struct metrics_snapshot snapshot(void)
{
	struct metrics_snapshot g = {.version = "1.2.3", .http = labels, .http_count = sizeof(labels) / sizeof(labels[0])};
	return g;
}

/* Every sample belongs to the family whose HELP and TYPE came just before it (a histogram's with
 * _bucket, _sum or _count), each family is declared once, and the lines have the format's shape. */
static void check_grammar(const char *text)
{
	char family[128] = "", type[16] = "";
	char seen[64][128];
	size_t n_seen = 0;
	bool help_pending = false;
	const char *p = text;
	while (*p != '\0') {
		const char *end = strchr(p, '\n');
		assert_non_null(end);
		char line[512];
		size_t n = (size_t)(end - p);
		assert_true(n > 0 && n < sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		p = end + 1;
		if (strncmp(line, "# HELP ", 7) == 0) {
			char name[128];
			assert_int_equal(sscanf(line + 7, "%127s", name), 1);
			for (size_t i = 0; i < n_seen; i++)
				assert_string_not_equal(seen[i], name);
			assert_true(n_seen < 64);
			snprintf(seen[n_seen++], sizeof(seen[0]), "%s", name);
			snprintf(family, sizeof(family), "%s", name);
			assert_true(strncmp(family, "mailwerk_", 9) == 0);
			help_pending = true;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[128];
			assert_true(help_pending);
			assert_int_equal(sscanf(line + 7, "%127s %15s", name, type), 2);
			assert_string_equal(name, family);
			assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 || strcmp(type, "histogram") == 0);
			if (strcmp(type, "counter") == 0) /* the convention for counters */
				assert_true(strlen(family) > 6 && strcmp(family + strlen(family) - 6, "_total") == 0);
			help_pending = false;
			continue;
		}
		assert_true(line[0] != '#');
		assert_false(help_pending);
		/* name, optional {labels}, one space, a value */
		size_t name_len = strcspn(line, "{ ");
		char name[128];
		assert_true(name_len < sizeof(name));
		memcpy(name, line, name_len);
		name[name_len] = '\0';
		if (strcmp(type, "histogram") == 0) {
			size_t f = strlen(family);
			assert_true(strncmp(name, family, f) == 0);
			const char *suffix = name + f;
			assert_true(strcmp(suffix, "_bucket") == 0 || strcmp(suffix, "_sum") == 0 || strcmp(suffix, "_count") == 0);
		} else {
			assert_string_equal(name, family);
		}
		const char *rest = line + name_len;
		if (*rest == '{') {
			/* label="value" pairs; inside a value only \\, \" and \n escapes */
			rest++;
			while (*rest != '}') {
				while ((*rest >= 'a' && *rest <= 'z') || *rest == '_')
					rest++;
				assert_int_equal(*rest++, '=');
				assert_int_equal(*rest++, '"');
				while (*rest != '"') {
					assert_true(*rest != '\0');
					if (*rest == '\\') {
						rest++;
						assert_true(*rest == '\\' || *rest == '"' || *rest == 'n');
					}
					rest++;
				}
				rest++;
				if (*rest == ',')
					rest++;
			}
			rest++;
		}
		assert_int_equal(*rest++, ' ');
		char *vend;
		strtod(rest, &vend);
		assert_true(vend != rest && *vend == '\0');
	}
}

static void test_empty_render(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	assert_non_null(m);
	struct metrics_snapshot g = snapshot();
	char *text = render(m, &g);
	check_grammar(text);
	assert_true(has_line(text, "# TYPE mailwerk_build_info gauge"));
	assert_true(has_line(text, "mailwerk_build_info{version=\"1.2.3\"} 1"));
	assert_true(has_line(text, "# TYPE mailwerk_messages_accepted_total counter"));
	assert_true(has_line(text, "mailwerk_messages_accepted_total{listener=\"smtp\"} 0"));
	assert_true(has_line(text, "mailwerk_messages_accepted_total{listener=\"https\"} 0"));
	/* POP3 takes no messages: no series for it */
	assert_null(strstr(text, "accepted_total{listener=\"pop3\""));
	assert_true(has_line(text, "mailwerk_deliveries_total{route=\"remote\",result=\"failed\"} 0"));
	assert_true(has_line(text, "mailwerk_sessions_open{role=\"pop3s\"} 0"));
	assert_true(has_line(text, "mailwerk_delivery_latency_seconds_bucket{le=\"+Inf\"} 0"));
	assert_true(has_line(text, "mailwerk_delivery_latency_seconds_sum 0.000000"));
	assert_true(has_line(text, "mailwerk_dns_query_seconds_count 0"));
	/* the queue was not read: its gauges are absent, not 0 */
	assert_null(strstr(text, "mailwerk_queue_messages"));
	assert_null(strstr(text, "mailwerk_queue_oldest_seconds"));
	/* nor was the webhook outbox: no backlog, but its counters are there (at 0) */
	assert_null(strstr(text, "mailwerk_webhook_backlog"));
	assert_true(has_line(text, "# TYPE mailwerk_webhook_failures_total counter"));
	assert_true(has_line(text, "mailwerk_webhook_failures_total 0"));
	assert_true(has_line(text, "# TYPE mailwerk_webhook_attempts_total counter"));
	assert_true(has_line(text, "mailwerk_webhook_attempts_total{result=\"delivered\"} 0"));
	assert_true(has_line(text, "mailwerk_webhook_attempts_total{result=\"retry\"} 0"));
	assert_true(has_line(text, "mailwerk_webhook_attempts_total{result=\"failed\"} 0"));
	/* no request yet: the family is declared, without a sample */
	assert_true(has_line(text, "# TYPE mailwerk_http_requests_total counter"));
	assert_null(strstr(text, "mailwerk_http_requests_total{"));
	free(text);
	metrics_free(m);
}

static void test_histogram(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	/* 0.1 is on a bound (le is inclusive); -3 is a clock set back and counts as 0 */
	static const double obs[] = {0.05, 0.1, 0.7, 100000, -3, 299.5};
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		metrics_observe(m, METRICS_HIST_DELIVERY_LATENCY, obs[i]);
	metrics_observe(m, METRICS_HIST_DNS_QUERY, 0.0123);
	struct metrics_snapshot g = snapshot();
	char *text = render(m, &g);
	check_grammar(text);
	static const char *const want[] = {
		"# TYPE mailwerk_delivery_latency_seconds histogram",
		"mailwerk_delivery_latency_seconds_bucket{le=\"0.1\"} 3",
		"mailwerk_delivery_latency_seconds_bucket{le=\"0.5\"} 3",
		"mailwerk_delivery_latency_seconds_bucket{le=\"1\"} 4",
		"mailwerk_delivery_latency_seconds_bucket{le=\"60\"} 4",
		"mailwerk_delivery_latency_seconds_bucket{le=\"300\"} 5",
		"mailwerk_delivery_latency_seconds_bucket{le=\"86400\"} 5",
		"mailwerk_delivery_latency_seconds_bucket{le=\"+Inf\"} 6",
		"mailwerk_delivery_latency_seconds_sum 100300.350000",
		"mailwerk_delivery_latency_seconds_count 6",
		"mailwerk_dns_query_seconds_bucket{le=\"0.01\"} 0",
		"mailwerk_dns_query_seconds_bucket{le=\"0.025\"} 1",
		"mailwerk_dns_query_seconds_bucket{le=\"10\"} 1",
		"mailwerk_dns_query_seconds_bucket{le=\"+Inf\"} 1",
		"mailwerk_dns_query_seconds_sum 0.012300",
		"mailwerk_dns_query_seconds_count 1",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!has_line(text, want[i]))
			fail_msg("missing line: %s\n%s", want[i], text);
	/* the buckets are in ascending order of le, +Inf last, then _sum and _count */
	const char *b1 = strstr(text, "latency_seconds_bucket{le=\"0.1\"}");
	const char *b2 = strstr(text, "latency_seconds_bucket{le=\"86400\"}");
	const char *inf = strstr(text, "latency_seconds_bucket{le=\"+Inf\"}");
	const char *sum = strstr(text, "latency_seconds_sum");
	const char *count = strstr(text, "latency_seconds_count");
	assert_true(b1 < b2 && b2 < inf && inf < sum && sum < count);
	free(text);
	metrics_free(m);
}

static void test_counters_and_escaping(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	metrics_message_accepted(m, CONF_LISTEN_SMTP, 1);
	metrics_message_accepted(m, CONF_LISTEN_SMTP, 1);
	metrics_message_accepted(m, CONF_LISTEN_HTTP, 3);
	metrics_message_refused(m, CONF_LISTEN_SUBMISSION, METRICS_REFUSAL_MIN_FREE_SPACE, 1);
	metrics_delivery_count(m, METRICS_ROUTE_LOCAL, METRICS_OUTCOME_DELIVERED);
	metrics_delivery_count(m, METRICS_ROUTE_REMOTE, METRICS_OUTCOME_DEFERRED);
	metrics_outbound_count(m, true);
	metrics_outbound_count(m, false);
	metrics_outbound_count(m, false);
	metrics_http_count(m, 0, 200);
	metrics_http_count(m, 0, 200);
	metrics_http_count(m, 1, 404);
	metrics_http_count(m, 2, 599); /* not in the list: "other" */
	metrics_http_count(m, 3, 405);
	metrics_http_count(m, METRICS_HTTP_SLOTS, 200); /* out of range: ignored */
	metrics_webhook_count(m, METRICS_WEBHOOK_RETRY);
	metrics_webhook_count(m, METRICS_WEBHOOK_RETRY);
	metrics_webhook_count(m, METRICS_WEBHOOK_RETRY);
	metrics_webhook_count(m, METRICS_WEBHOOK_FAILED);
	metrics_webhook_count(m, METRICS_WEBHOOK_DELIVERED);
	metrics_webhook_count(m, METRICS_WEBHOOK_RESULT_COUNT); /* out of range: ignored */
	struct metrics_snapshot g = snapshot();
	g.version = "x\"y\\z";
	g.sessions[CONF_LISTEN_HTTP] = 2;
	g.sessions[CONF_LISTEN_POP3] = 1;
	g.queue_read = true;
	g.queue_messages = 7;
	g.queue_oldest_seconds = 42;
	g.webhooks_read = true;
	g.webhook_backlog = 5;
	char *text = render(m, &g);
	check_grammar(text);
	static const char *const want[] = {
		"mailwerk_build_info{version=\"x\\\"y\\\\z\"} 1",
		"mailwerk_messages_accepted_total{listener=\"smtp\"} 2",
		"mailwerk_messages_accepted_total{listener=\"http\"} 3",
		"mailwerk_messages_accepted_total{listener=\"submission\"} 0",
		"mailwerk_messages_refused_total{listener=\"submission\",reason=\"min_free_space\"} 1",
		"mailwerk_messages_refused_total{listener=\"submission\",reason=\"store_failed\"} 0",
		"mailwerk_deliveries_total{route=\"local\",result=\"delivered\"} 1",
		"mailwerk_deliveries_total{route=\"remote\",result=\"deferred\"} 1",
		"mailwerk_deliveries_total{route=\"local\",result=\"failed\"} 0",
		"mailwerk_outbound_connections_total{tls=\"yes\"} 1",
		"mailwerk_outbound_connections_total{tls=\"no\"} 2",
		"# TYPE mailwerk_queue_messages gauge",
		"mailwerk_queue_messages 7",
		"mailwerk_queue_oldest_seconds 42",
		"# TYPE mailwerk_webhook_backlog gauge",
		"mailwerk_webhook_backlog 5",
		/* given up: the failed attempts, one series of its own */
		"mailwerk_webhook_failures_total 1",
		"mailwerk_webhook_attempts_total{result=\"delivered\"} 1",
		"mailwerk_webhook_attempts_total{result=\"retry\"} 3",
		"mailwerk_webhook_attempts_total{result=\"failed\"} 1",
		"mailwerk_sessions_open{role=\"http\"} 2",
		"mailwerk_sessions_open{role=\"pop3\"} 1",
		"mailwerk_sessions_open{role=\"smtp\"} 0",
		"mailwerk_http_requests_total{route=\"/emails\",method=\"POST\",status=\"200\"} 2",
		"mailwerk_http_requests_total{route=\"/emails/{id}\",method=\"GET\",status=\"404\"} 1",
		/* the format's three escapes: backslash, double quote, line feed */
		"mailwerk_http_requests_total{route=\"/odd\\\"route\\\\with\\nnewline\",method=\"GET\",status=\"other\"} 1",
		"mailwerk_http_requests_total{route=\"other\",method=\"DELETE\",status=\"405\"} 1",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!has_line(text, want[i]))
			fail_msg("missing line: %s\n%s", want[i], text);
	/* only the series that happened */
	assert_null(strstr(text, "status=\"201\""));
	free(text);
	metrics_free(m);
}

static void test_status_list_and_names(void **state)
{
	(void)state;
	assert_int_equal(metrics_http_status_at(metrics_http_status_index(200)), 200);
	assert_int_equal(metrics_http_status_at(metrics_http_status_index(503)), 503);
	assert_int_equal(metrics_http_status_index(299), METRICS_HTTP_STATUSES - 1);
	assert_int_equal(metrics_http_status_at(METRICS_HTTP_STATUSES - 1), 0);
	for (size_t i = 0; i + 1 < METRICS_HTTP_STATUSES; i++)
		assert_int_equal(metrics_http_status_index(metrics_http_status_at(i)), i);
	assert_string_equal(metrics_refusal_str(METRICS_REFUSAL_STORE_FAILED), "store_failed");
	assert_string_equal(metrics_route_str(METRICS_ROUTE_REMOTE), "remote");
	assert_string_equal(metrics_outcome_str(METRICS_OUTCOME_DEFERRED), "deferred");
	assert_string_equal(metrics_webhook_result_str(METRICS_WEBHOOK_DELIVERED), "delivered");
	assert_string_equal(metrics_webhook_result_str(METRICS_WEBHOOK_FAILED), "failed");
	assert_string_equal(metrics_webhook_result_str(METRICS_WEBHOOK_RETRY), "retry");
	assert_string_equal(metrics_webhook_result_str(METRICS_WEBHOOK_RESULT_COUNT), "?");
}

static void test_null_is_not_counted(void **state)
{
	(void)state;
	/* the CLI's resolver and other holders without a server pass NULL */
	metrics_message_accepted(NULL, CONF_LISTEN_SMTP, 1);
	metrics_message_refused(NULL, CONF_LISTEN_SMTP, METRICS_REFUSAL_STORE_FAILED, 1);
	metrics_delivery_count(NULL, METRICS_ROUTE_LOCAL, METRICS_OUTCOME_DELIVERED);
	metrics_outbound_count(NULL, true);
	metrics_http_count(NULL, 0, 200);
	metrics_webhook_count(NULL, METRICS_WEBHOOK_FAILED);
	metrics_observe(NULL, METRICS_HIST_DNS_QUERY, 1.0);
	metrics_free(NULL);
	/* and out-of-range indexes are dropped, not written past the arrays */
	struct metrics *m = metrics_new();
	metrics_message_accepted(m, CONF_LISTEN_COUNT, 1);
	metrics_delivery_count(m, METRICS_ROUTE_COUNT, METRICS_OUTCOME_DELIVERED);
	metrics_observe(m, METRICS_HIST_COUNT, 1.0);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_render),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_counters_and_escaping),
		cmocka_unit_test(test_status_list_and_names),
		cmocka_unit_test(test_null_is_not_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

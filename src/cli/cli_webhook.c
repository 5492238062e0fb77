/* cli_webhook.c — owns `mailwerk webhook add|list|del|test|log`: the webhooks of the HTTP API and
 * their outbox in DATA_DIR/queue.db (events/webhooks_store.h). Safe next to a running server (WAL,
 * busy timeout); the server's sender reads the webhooks afresh on every round, so a change counts
 * within WEBHOOK_SENDER_TICK_MS. `test` posts a signed sample event from this process, through the
 * same HTTP client and address rules as the server, and records nothing. */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "conf/conf.h"
#include "events/webhook_payload.h"
#include "events/webhooks_store.h"
#include "net/http_client.h"
#include "net/http_url.h"
#include "util/date.h"

#define LOG_LIMIT_DEFAULT 50

/* what `add` subscribes to without --events: every event mailwerk posts */
static const char default_events[] = "email.sent,email.scheduled,email.delivered,email.delivery_delayed,"
				     "email.bounced,email.failed,email.suppressed,email.complained";

enum cli_webhook_cmd {
	CLI_WEBHOOK_ADD,
	CLI_WEBHOOK_LIST,
	CLI_WEBHOOK_DEL,
	CLI_WEBHOOK_TEST,
	CLI_WEBHOOK_LOG,
};

struct cli_webhook_args {
	enum cli_webhook_cmd cmd;
	const char *conf_path;
	const char *url;             /* add */
	const char *events;          /* add: comma-separated */
	char id[WEBHOOK_ID_LEN + 1]; /* del, test, log ("" for log: all) */
	unsigned limit;              /* log */
	bool json;                   /* list, log */
};

static void cli_webhook_usage(FILE *f)
{
	fputs("usage: mailwerk webhook add URL [--events TYPE,TYPE...] [-c FILE]\n"
	      "       mailwerk webhook list [--json] [-c FILE]\n"
	      "       mailwerk webhook del ID [-c FILE]\n"
	      "       mailwerk webhook test ID [-c FILE]\n"
	      "       mailwerk webhook log [ID] [--limit N] [--json] [-c FILE]\n"
	      "\n"
	      "Webhooks: signed POSTs (Standard Webhooks, as Resend sends them) of the events of messages\n"
	      "sent through the HTTP API. The same webhooks as POST /webhooks.\n"
	      "\n"
	      "  add    makes a webhook for URL (http or https) and prints its id and signing secret.\n"
	      "         Without --events it gets every event mailwerk posts:\n"
	      "         email.sent, email.scheduled, email.delivered, email.delivery_delayed, email.bounced,\n"
	      "         email.failed, email.suppressed, email.complained.\n"
	      "  list   every webhook, newest first.\n"
	      "  del    deletes the webhook and what it still had to deliver.\n"
	      "  test   posts a signed sample email.sent event to the webhook now and prints the answer;\n"
	      "         nothing is recorded.\n"
	      "  log    the newest deliveries (of one webhook, or all): when, which event, state, attempts,\n"
	      "         the last HTTP status and error.\n"
	      "\n"
	      "  -e, --events LIST   add: the event types, separated by commas\n"
	      "  -n, --limit N       log: how many deliveries (default 50)\n"
	      "      --json          list, log: one JSON object per line\n"
	      "  -c, --config FILE   configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help          show this help\n",
	      f);
}

static void time_fmt(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms <= 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "-");
}

static void json_line(json_t *o)
{
	char *line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (line != NULL)
		puts(line);
	free(line);
}

/* "a,b" as a JSON array of distinct known event names; NULL (error printed) when one is not. */
static char *events_json_of(const char *list)
{
	json_t *a = json_array();
	const char *p = list;
	while (a != NULL) {
		size_t n = strcspn(p, ",");
		char name[WEBHOOK_EVENT_NAME_MAX + 1];
		while (n > 0 && *p == ' ')
			p++, n--;
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 0 || n > WEBHOOK_EVENT_NAME_MAX) {
			cli_error("webhook add: --events wants event types separated by commas, such as "
				  "email.delivered,email.bounced");
			json_decref(a);
			return NULL;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		if (!webhook_event_known(name)) {
			cli_error("webhook add: \"%s\" is not an event type (see: mailwerk webhook --help)",
				  name);
			json_decref(a);
			return NULL;
		}
		bool seen = false;
		size_t i;
		json_t *v;
		json_array_foreach(a, i, v)
			seen = seen || strcmp(json_string_value(v), name) == 0;
		if (!seen)
			json_array_append_new(a, json_string(name));
		p += strcspn(p, ",");
		if (*p == '\0')
			break;
		p++;
	}
	char *text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return text;
}

/* The events of a webhook as "a, b" for the table. */
static void events_text(const char *events_json, char *buf, size_t size)
{
	json_t *a = json_loads(events_json != NULL ? events_json : "[]", 0, NULL);
	size_t i, o = 0;
	json_t *v;
	buf[0] = '\0';
	json_array_foreach(a, i, v) {
		int n = snprintf(buf + o, size - o, "%s%s", i > 0 ? "," : "", json_string_value(v));
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
	json_decref(a);
}

/* ---- commands ---- */

static int cli_webhook_add(struct webhooks_store *s, const struct conf *cf, const struct cli_webhook_args *a)
{
	struct http_url u;
	const char *why;
	if (http_url_parse(a->url, strlen(a->url), &u, &why) != HTTP_URL_OK) {
		cli_error("webhook add: %s is not a usable URL: %s", a->url, why);
		return CLI_EXIT_USAGE;
	}
	if (!cf->webhook_allow_private && u.host_kind != HTTP_URL_HOST_NAME) {
		enum http_url_addr_class cls = http_url_addr_classify((const struct sockaddr *)&u.addr);
		if (cls != HTTP_URL_ADDR_PUBLIC) {
			cli_error("webhook add: %s is a %s address; webhooks only go to public addresses unless "
				  "[webhooks] allow_private = yes",
				  u.host, http_url_addr_class_str(cls));
			return CLI_EXIT_USAGE;
		}
	}
	char *events = events_json_of(a->events != NULL ? a->events : default_events), err[512], list[512];
	if (events == NULL)
		return CLI_EXIT_USAGE;
	struct webhook w;
	int r = webhooks_store_create(s, a->url, events, &w, err, sizeof(err));
	free(events);
	if (r != 0) {
		cli_error("webhook add: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	events_text(w.events_json, list, sizeof(list));
	printf("id        %s\nsecret    %s\nendpoint  %s\nevents    %s\n", w.id, w.secret, w.endpoint, list);
	printf("Receivers check each request's webhook-signature (or svix-signature) with the secret.\n");
	webhook_clear(&w);
	return CLI_EXIT_OK;
}

static int cli_webhook_list(struct webhooks_store *s, bool json)
{
	struct webhook *w = NULL;
	size_t n = 0, total = 0;
	bool more = true;
	char err[512], after[WEBHOOK_ID_LEN + 1] = "", created[32], list[512];
	if (!json)
		printf("%-36s  %-8s  %-20s  %-40s  %s\n", "ID", "STATUS", "CREATED", "ENDPOINT", "EVENTS");
	while (more) {
		if (webhooks_store_list(s, 100, after[0] ? after : NULL, NULL, &w, &n, &more, err,
					sizeof(err)) != 1) {
			cli_error("webhook list: %s", err);
			return CLI_EXIT_RUNTIME;
		}
		for (size_t i = 0; i < n; i++) {
			time_fmt(w[i].created_at, created, sizeof(created));
			if (json) {
				json_t *ev = json_loads(w[i].events_json, 0, NULL);
				json_line(json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", w[i].id, "status",
						    w[i].enabled ? "enabled" : "disabled", "created_at",
						    created, "endpoint", w[i].endpoint, "events",
						    ev != NULL ? ev : json_array()));
			} else {
				events_text(w[i].events_json, list, sizeof(list));
				printf("%-36s  %-8s  %-20s  %-40s  %s\n", w[i].id,
				       w[i].enabled ? "enabled" : "disabled", created, w[i].endpoint, list);
			}
		}
		total += n;
		if (n > 0)
			snprintf(after, sizeof(after), "%s", w[n - 1].id);
		webhooks_free(w, n);
	}
	if (total == 0 && !json)
		puts("no webhooks; make one with: mailwerk webhook add URL");
	return CLI_EXIT_OK;
}

static int cli_webhook_del(struct webhooks_store *s, const char *id)
{
	char err[512];
	switch (webhooks_store_delete(s, id, err, sizeof(err))) {
	case 1: printf("deleted webhook %s\n", id); return CLI_EXIT_OK;
	case 0:
		cli_error("webhook del: no webhook with id %s (see: mailwerk webhook list)", id);
		return CLI_EXIT_RUNTIME;
	default: cli_error("webhook del: %s", err); return CLI_EXIT_RUNTIME;
	}
}

struct cli_webhook_test {
	bool done;
	long status;
	char error[512];
	char body[HTTP_CLIENT_KEEP + 1];
	unsigned elapsed_ms;
	struct event_base *base;
};

static void cli_webhook_test_done(void *arg, const struct http_client_result *r)
{
	struct cli_webhook_test *t = arg;
	t->done = true;
	t->status = r->status;
	t->elapsed_ms = r->elapsed_ms;
	snprintf(t->error, sizeof(t->error), "%s", r->error != NULL ? r->error : "");
	snprintf(t->body, sizeof(t->body), "%.*s", (int)r->body_len, r->body);
	event_base_loopbreak(t->base);
}

static int cli_webhook_test(struct webhooks_store *s, const struct conf *cf, const char *id)
{
	struct webhook w;
	char err[512];
	int r = webhooks_store_get(s, id, &w, err, sizeof(err));
	if (r != 1) {
		if (r == 0)
			cli_error("webhook test: no webhook with id %s (see: mailwerk webhook list)", id);
		else
			cli_error("webhook test: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	/* a sample in the shape of a real email.sent (webhook_payload.h); its ids are made up */
	char email_id[EMAIL_ID_LEN + 1], from[300], to[300], msg_id[WEBHOOK_MSG_ID_LEN + 1],
		sig[WEBHOOK_SIGNATURE_SIZE];
	email_id_new(email_id);
	snprintf(from, sizeof(from), "mailwerk <webhook-test@%s>", cf->hostname);
	snprintf(to, sizeof(to), "[\"delivered@%s\"]", cf->hostname);
	unsigned char raw[16];
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		webhook_clear(&w);
		cli_error("webhook test: no random numbers");
		return CLI_EXIT_RUNTIME;
	}
	memcpy(msg_id, "msg_", 4);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(msg_id + 4 + 2 * i, 3, "%02x", raw[i]);
	int64_t ms = date_now_ms();
	time_t now = (time_t)(ms / 1000);
	const struct webhook_event_in in = {
		.type = EMAIL_EVENT_SENT,
		.at_ms = ms,
		.email_id = email_id,
		.email_created_ms = ms,
		.from = from,
		.subject = "mailwerk webhook test",
		.message_id = "webhook-test@mailwerk",
		.to_json = to,
	};
	char *body = NULL;
	const char *why;
	if (webhook_payload_build(&in, &body, &why) != WEBHOOK_PAYLOAD_OK ||
	    webhook_sign(w.secret, msg_id, now, body, strlen(body), sig, &why) != WEBHOOK_SIGN_OK) {
		free(body);
		webhook_clear(&w);
		cli_error("webhook test: %s", why);
		return CLI_EXIT_RUNTIME;
	}
	char h[6][96];
	const char *names[2] = {"webhook", "svix"};
	for (int i = 0; i < 2; i++) {
		snprintf(h[3 * i], sizeof(h[0]), "%s-id: %s", names[i], msg_id);
		snprintf(h[3 * i + 1], sizeof(h[0]), "%s-timestamp: %lld", names[i], (long long)now);
		snprintf(h[3 * i + 2], sizeof(h[0]), "%s-signature: %s", names[i], sig);
	}
	const char *headers[] = {"Content-Type: application/json", h[0], h[1], h[2], h[3], h[4], h[5]};
	struct cli_webhook_test t = {.base = event_base_new()};
	struct http_client *c = t.base != NULL ? http_client_new(t.base, err, sizeof(err)) : NULL;
	const struct http_client_opts o = {.timeout_ms = cf->webhook_timeout * 1000,
					   .allow_private = cf->webhook_allow_private};
	int rc = CLI_EXIT_RUNTIME;
	if (c == NULL) {
		cli_error("webhook test: %s", t.base != NULL ? err : "cannot make an event loop");
	} else if (http_client_post(c, w.endpoint, headers, 7, body, strlen(body), &o, cli_webhook_test_done,
				    &t, err, sizeof(err)) != 0) {
		cli_error("webhook test: %s", err);
	} else {
		while (!t.done && event_base_dispatch(t.base) == 0)
			;
		if (t.error[0] != '\0') {
			cli_error("webhook test: %s: %s", w.endpoint, t.error);
		} else {
			printf("POST %s: HTTP %ld in %u ms\n", w.endpoint, t.status, t.elapsed_ms);
			if (t.body[0] != '\0')
				printf("%s\n", t.body);
			rc = t.status >= 200 && t.status <= 299 ? CLI_EXIT_OK : CLI_EXIT_RUNTIME;
		}
	}
	http_client_free(c);
	if (t.base != NULL)
		event_base_free(t.base);
	free(body);
	webhook_clear(&w);
	return rc;
}

static int cli_webhook_log(struct webhooks_store *s, const struct cli_webhook_args *a)
{
	struct webhook_log_entry *e;
	size_t n;
	char err[512], t[32], next[32];
	if (webhooks_store_log(s, a->id[0] ? a->id : NULL, a->limit, &e, &n, err, sizeof(err)) != 0) {
		cli_error("webhook log: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	if (!a->json)
		printf("%-20s  %-36s  %-22s  %-9s  %-8s  %-6s  %s\n", "TIME", "WEBHOOK", "EVENT", "STATE",
		       "ATTEMPTS", "STATUS", "ERROR");
	for (size_t i = 0; i < n; i++) {
		time_fmt(e[i].updated_at, t, sizeof(t));
		time_fmt(e[i].next_attempt, next, sizeof(next));
		if (a->json) {
			json_t *o =
				json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:i}", "time", t, "delivery",
					  (json_int_t)e[i].delivery_id, "webhook", e[i].webhook_id, "msg_id",
					  e[i].msg_id, "event", e[i].event_type, "email_id", e[i].email_id,
					  "state", e[i].state, "attempts", (int)e[i].attempts);
			json_object_set_new(o, "status",
					    e[i].last_status > 0 ? json_integer(e[i].last_status)
								 : json_null());
			json_object_set_new(o, "error",
					    e[i].last_error != NULL ? json_string(e[i].last_error)
								    : json_null());
			json_object_set_new(o, "next_attempt",
					    strcmp(e[i].state, "pending") == 0 ? json_string(next)
									       : json_null());
			json_line(o);
		} else {
			char status[8];
			snprintf(status, sizeof(status), "%d", e[i].last_status);
			printf("%-20s  %-36s  %-22s  %-9s  %-8u  %-6s  %s\n", t, e[i].webhook_id,
			       e[i].event_type, e[i].state, e[i].attempts,
			       e[i].last_status > 0 ? status : "-",
			       e[i].last_error != NULL ? e[i].last_error : "");
		}
	}
	webhook_log_free(e, n);
	return CLI_EXIT_OK;
}

/* ---- arguments ---- */

/* A UUID's shape into id_r, lower-cased; false when it is not one. */
static bool cli_webhook_id_parse(const char *s, char id_r[WEBHOOK_ID_LEN + 1])
{
	if (strlen(s) != WEBHOOK_ID_LEN)
		return false;
	for (size_t i = 0; i < WEBHOOK_ID_LEN; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (c >= 'A' && c <= 'F') {
			c = (char)(c - 'A' + 'a');
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
		id_r[i] = c;
	}
	id_r[WEBHOOK_ID_LEN] = '\0';
	return true;
}

static int cli_webhook_args_parse(int argc, char **argv, struct cli_webhook_args *a)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"events", required_argument, NULL, 'e'},
		{"limit", required_argument, NULL, 'n'},  {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	static const char *const names[] = {"add", "list", "del", "test", "log"};
	const char *limit = NULL;
	int c;
	memset(a, 0, sizeof(*a));
	a->limit = LOG_LIMIT_DEFAULT;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:e:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->conf_path = optarg; break;
		case 'e': a->events = optarg; break;
		case 'n': limit = optarg; break;
		case 'j': a->json = true; break;
		case 'h': cli_webhook_usage(stdout); return CLI_EXIT_OK;
		default: return cli_option_error("webhook", c, argv);
		}
	}
	int npos = argc - optind;
	if (npos < 1) {
		cli_error("missing command (add, list, del, test or log); see: mailwerk webhook --help");
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	size_t k = 0;
	while (k < sizeof(names) / sizeof(names[0]) && strcmp(cmd, names[k]) != 0)
		k++;
	if (k == sizeof(names) / sizeof(names[0])) {
		cli_error("unknown command \"%s\" (add, list, del, test or log); see: mailwerk webhook --help",
			  cmd);
		return CLI_EXIT_USAGE;
	}
	a->cmd = (enum cli_webhook_cmd)k;
	int min = a->cmd == CLI_WEBHOOK_LIST || a->cmd == CLI_WEBHOOK_LOG ? 0 : 1;
	int max = a->cmd == CLI_WEBHOOK_LIST ? 0 : 1;
	if (npos - 1 < min || npos - 1 > max) {
		cli_error("webhook %s: %s; see: mailwerk webhook --help", cmd,
			  npos - 1 < min ? (a->cmd == CLI_WEBHOOK_ADD ? "missing URL" : "missing ID")
					 : "too many arguments");
		return CLI_EXIT_USAGE;
	}
	if (a->events != NULL && a->cmd != CLI_WEBHOOK_ADD) {
		cli_error("webhook %s: --events applies to add only", cmd);
		return CLI_EXIT_USAGE;
	}
	if (a->json && a->cmd != CLI_WEBHOOK_LIST && a->cmd != CLI_WEBHOOK_LOG) {
		cli_error("webhook %s: --json applies to list and log only", cmd);
		return CLI_EXIT_USAGE;
	}
	if (limit != NULL) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(limit, &end, 10);
		if (a->cmd != CLI_WEBHOOK_LOG || *end != '\0' || limit[0] < '0' || limit[0] > '9' || errno ||
		    v < 1 || v > 100000) {
			cli_error("webhook: --limit applies to log and wants a number from 1 to 100000");
			return CLI_EXIT_USAGE;
		}
		a->limit = (unsigned)v;
	}
	if (npos == 2) {
		const char *arg = argv[optind + 1];
		if (a->cmd == CLI_WEBHOOK_ADD) {
			a->url = arg;
		} else if (!cli_webhook_id_parse(arg, a->id)) {
			cli_error(
				"webhook %s: \"%s\" is not a webhook id (a UUID, as mailwerk webhook list shows)",
				cmd, arg);
			return CLI_EXIT_USAGE;
		}
	}
	return -1;
}

int cli_webhook_main(int argc, char **argv)
{
	struct cli_webhook_args a;
	int rc = cli_webhook_args_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	struct conf *cf = cli_data_conf_load(a.conf_path);
	if (cf == NULL)
		return CLI_EXIT_RUNTIME;
	char err[512];
	struct webhooks_store *s = webhooks_store_open(cf->data_dir, err, sizeof(err));
	if (s == NULL) {
		cli_error("cannot open the webhooks in %s: %s", cf->data_dir, err);
		conf_free(cf);
		return CLI_EXIT_RUNTIME;
	}
	switch (a.cmd) {
	case CLI_WEBHOOK_ADD: rc = cli_webhook_add(s, cf, &a); break;
	case CLI_WEBHOOK_LIST: rc = cli_webhook_list(s, a.json); break;
	case CLI_WEBHOOK_DEL: rc = cli_webhook_del(s, a.id); break;
	case CLI_WEBHOOK_TEST: rc = cli_webhook_test(s, cf, a.id); break;
	case CLI_WEBHOOK_LOG: rc = cli_webhook_log(s, &a); break;
	}
	webhooks_store_close(s);
	conf_free(cf);
	/* a full disk or a closed pipe must not look like success to a script */
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		rc = CLI_EXIT_RUNTIME;
	}
	return rc;
}

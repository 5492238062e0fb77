/* cli_queue.c — owns `mailwerk queue`: list (text or JSON), show, delete and flush against
 * DATA_DIR/queue.db. Safe next to a running server: the store is in WAL mode with a busy timeout.
 * hold, release and bounce go through the running server when there is one (cli_queue_ops.c). */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_queue_ops.h"
#include "conf/conf.h"
#include "queue/queue.h"
#include "util/utf8.h"

enum cli_queue_cmd {
	CLI_QUEUE_LIST = 0,
	CLI_QUEUE_SHOW,
	CLI_QUEUE_DELETE,
	CLI_QUEUE_FLUSH,
	CLI_QUEUE_HOLD,
	CLI_QUEUE_RELEASE,
	CLI_QUEUE_BOUNCE,
};

static const struct cli_queue_cmd_def {
	const char *name;
	enum cli_queue_cmd cmd;
	int takes_id;
	bool takes_all; /* ID or --all */
	enum control_msg_type request; /* done by cli_queue_op_run (0: here) */
} cli_queue_cmds[] = {
	{ "list", CLI_QUEUE_LIST, 0, false, 0 },
	{ "show", CLI_QUEUE_SHOW, 1, false, 0 },
	{ "delete", CLI_QUEUE_DELETE, 1, false, 0 },
	{ "flush", CLI_QUEUE_FLUSH, 0, false, 0 },
	{ "hold", CLI_QUEUE_HOLD, 1, true, CONTROL_REQ_HOLD },
	{ "release", CLI_QUEUE_RELEASE, 1, true, CONTROL_REQ_RELEASE },
	{ "bounce", CLI_QUEUE_BOUNCE, 1, false, CONTROL_REQ_BOUNCE },
};

static void cli_queue_usage(FILE *f)
{
	fputs("usage: mailwerk queue list [--json] [-c FILE]\n"
		"       mailwerk queue show ID [-c FILE]\n"
		"       mailwerk queue delete ID [-c FILE]\n"
		"       mailwerk queue flush [-c FILE]\n"
		"       mailwerk queue hold ID|--all [-c FILE]\n"
		"       mailwerk queue release ID|--all [-c FILE]\n"
		"       mailwerk queue bounce ID [-c FILE]\n"
		"\n"
		"  list     every queued message: id, arrival (UTC), size, sender, recipient states\n"
		"  show     one message: envelope and each recipient's state, attempts, next attempt, last error\n"
		"  delete   remove a message and its recipients from the queue (no bounce is sent)\n"
		"  flush    make every pending or deferred recipient due now\n"
		"  hold     keep a message (--all: every one) queued and undelivered until released\n"
		"  release  let a held message (--all: every one) be delivered again\n"
		"  bounce   fail every remaining recipient now; the sender gets a delivery status notification\n"
		"           (refused while a delivery attempt is under way: it may still deliver the message)\n"
		"\n"
		"  -c, --config FILE  configuration file (default " CLI_DEFAULT_CONF ")\n"
		"      --json         list: print a JSON array instead of a table\n"
		"      --all          hold, release: every queued message\n"
		"  -h, --help         show this help\n",
		f);
}

/* ---- formatting ---- */

/* "2024-05-01T12:00:00Z" (ISO 8601, UTC) */
static void cli_queue_time_fmt(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "@%" PRId64, t);
}

/* "3d 4h", "4h 12m", "12m 5s", "45s": two units are enough to read at a glance */
static void cli_queue_duration_fmt(int64_t secs, char *buf, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(buf, size, "%" PRId64 "h %" PRId64 "m", secs / 3600, secs % 3600 / 60);
	else if (secs >= 60)
		snprintf(buf, size, "%" PRId64 "m %" PRId64 "s", secs / 60, secs % 60);
	else
		snprintf(buf, size, "%" PRId64 "s", secs);
}

/* A JSON string (RFC 8259 §7), or null. Invalid UTF-8 becomes U+FFFD so the output always parses:
 * last_error holds whatever a remote server sent. */
static void cli_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	const unsigned char *end = p + strlen(s);
	putc('"', f);
	while (*p != '\0') {
		size_t n;

		switch (*p) {
		case '"': fputs("\\\"", f); p++; continue;
		case '\\': fputs("\\\\", f); p++; continue;
		case '\n': fputs("\\n", f); p++; continue;
		case '\r': fputs("\\r", f); p++; continue;
		case '\t': fputs("\\t", f); p++; continue;
		}
		if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p);
			p++;
			continue;
		}
		n = utf8_len(p, (size_t)(end - p));
		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	putc('"', f);
}

/* Copies s for a terminal: control characters (C0, DEL and UTF-8-encoded C1, which some terminals
 * obey) and bytes that are not UTF-8 become \xNN, so a hostile address or remote error text cannot
 * move the cursor or retitle the window. Truncates with "..." when buf is too small. */
static const char *cli_queue_text_clean(const char *s, char *buf, size_t size)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	size_t o = 0;

	while (*p != '\0') {
		char esc[9];
		size_t n = utf8_len(p, (size_t)(end - p));
		size_t in = n;
		const char *out = (const char *)p;

		if (n == 0 || *p < 0x20 || *p == 0x7f || (*p == 0xC2 && p[1] <= 0x9F)) {
			/* one byte at a time: an escaped C1's second byte is escaped on the next turn */
			n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
			in = 1;
			out = esc;
		}
		if (o + n + 4 > size) {
			snprintf(buf + o, size - o, "...");
			return buf;
		}
		memcpy(buf + o, out, n);
		o += n;
		p += in;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- list ---- */

struct cli_queue_list {
	bool json;
	size_t count;
};

static void cli_queue_list_text(const struct queue_entry *e, struct cli_queue_list *l)
{
	unsigned counts[4] = { 0 };
	unsigned other = 0;
	char when[40], sender[300], clean[1100];
	const char *sep = "";

	if (l->count == 0)
		printf("%-20s  %-20s  %10s  %-32s  %s\n", "ID", "ARRIVAL (UTC)", "SIZE", "SENDER", "RECIPIENTS");
	cli_queue_time_fmt(e->arrival, when, sizeof(when));
	snprintf(sender, sizeof(sender), "<%s>", e->sender);
	printf("%-20s  %-20s  %10zu  %-32s  %zu", e->id, when, e->size,
		cli_queue_text_clean(sender, clean, sizeof(clean)), e->rcpt_count);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		if ((unsigned)e->rcpts[i].state < 4)
			counts[e->rcpts[i].state]++;
		else
			other++;
	}
	fputs(" (", stdout);
	for (unsigned s = 0; s < 4; s++) {
		if (counts[s] == 0)
			continue;
		printf("%s%u %s", sep, counts[s], queue_rcpt_state_str((enum queue_rcpt_state)s));
		sep = ", ";
	}
	if (other != 0) {
		printf("%s%u unknown", sep, other);
		sep = ", ";
	}
	fputs(*sep != '\0' ? ")" : "none)", stdout);
	fputs(e->held ? " held\n" : "\n", stdout);
}

/* RFC 3461 NOTIFY bits as the words of the parameter ("SUCCESS,FAILURE"); NULL when not given. */
static const char *cli_queue_notify_str(unsigned notify, char *buf, size_t size)
{
	if (notify == 0)
		return NULL;
	if (notify & QUEUE_NOTIFY_NEVER)
		return "NEVER";
	snprintf(buf, size, "%s%s%s%s%s", notify & QUEUE_NOTIFY_SUCCESS ? "SUCCESS" : "",
		 (notify & QUEUE_NOTIFY_SUCCESS) && (notify & (QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY)) ? "," : "",
		 notify & QUEUE_NOTIFY_FAILURE ? "FAILURE" : "",
		 (notify & QUEUE_NOTIFY_FAILURE) && (notify & QUEUE_NOTIFY_DELAY) ? "," : "",
		 notify & QUEUE_NOTIFY_DELAY ? "DELAY" : "");
	return buf;
}

static void cli_queue_list_json(const struct queue_entry *e, struct cli_queue_list *l)
{
	char when[40];

	fputs(l->count == 0 ? "[\n" : ",\n", stdout);
	fputs("{\"id\":", stdout);
	cli_json_str(stdout, e->id);
	fputs(",\"sender\":", stdout);
	cli_json_str(stdout, e->sender);
	fputs(",\"recipients\":[", stdout);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct queue_rcpt_info *r = &e->rcpts[i];

		fputs(i == 0 ? "{\"address\":" : ",{\"address\":", stdout);
		cli_json_str(stdout, r->addr);
		fputs(",\"state\":", stdout);
		cli_json_str(stdout, queue_rcpt_state_str(r->state));
		printf(",\"attempts\":%u,\"next_attempt\":", r->attempts);
		if (r->next_attempt != 0) {
			cli_queue_time_fmt(r->next_attempt, when, sizeof(when));
			cli_json_str(stdout, when);
		} else {
			fputs("null", stdout);
		}
		printf(",\"next_attempt_unix\":%" PRId64 ",\"last_error\":", r->next_attempt);
		cli_json_str(stdout, r->last_error);
		/* RFC 3461 as given on RCPT: NOTIFY words (null: not given) and ORCPT */
		fputs(",\"notify\":", stdout);
		char notify[40];
		cli_json_str(stdout, cli_queue_notify_str(r->dsn_notify, notify, sizeof(notify)));
		fputs(",\"orcpt\":", stdout);
		cli_json_str(stdout, r->dsn_orcpt);
		putchar('}');
	}
	cli_queue_time_fmt(e->arrival, when, sizeof(when));
	printf("],\"size\":%zu,\"arrival\":", e->size);
	cli_json_str(stdout, when);
	printf(",\"arrival_unix\":%" PRId64 ",\"auth_user\":", e->arrival);
	cli_json_str(stdout, e->auth_user);
	fputs(",\"client_ip\":", stdout);
	cli_json_str(stdout, e->client_ip);
	printf(",\"held\":%s", e->held ? "true" : "false");
	/* RFC 3461 RET and ENVID, RFC 8689 REQUIRETLS and TLS-Required: No */
	fputs(",\"ret\":", stdout);
	cli_json_str(stdout, e->dsn_ret == QUEUE_DSN_RET_FULL ? "FULL" : e->dsn_ret == QUEUE_DSN_RET_HDRS ? "HDRS" : NULL);
	fputs(",\"envid\":", stdout);
	cli_json_str(stdout, e->dsn_envid);
	printf(",\"requiretls\":%s,\"tls_required_no\":%s}", e->requiretls ? "true" : "false",
	       e->tls_required_no ? "true" : "false");
}

static void cli_queue_list_entry(const struct queue_entry *e, void *arg)
{
	struct cli_queue_list *l = arg;

	if (l->json)
		cli_queue_list_json(e, l);
	else
		cli_queue_list_text(e, l);
	l->count++;
}

static int cli_queue_list_run(struct queue *q, bool json)
{
	struct cli_queue_list l = { json, 0 };
	const char *err = NULL;

	if (queue_list(q, cli_queue_list_entry, &l, &err) != RESULT_OK) {
		/* finish what was started so a reader sees where it stopped */
		if (json && l.count > 0)
			fputs("\n]\n", stdout);
		fflush(stdout);
		cli_error("queue list: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	if (json)
		fputs(l.count == 0 ? "[]\n" : "\n]\n", stdout);
	else if (l.count == 0)
		puts("queue is empty");
	else
		printf("%zu message%s\n", l.count, l.count == 1 ? "" : "s");
	return CLI_EXIT_OK;
}

/* ---- show / delete / flush ---- */

static int cli_queue_show_run(struct queue *q, const char *id)
{
	struct queue_entry *e = NULL;
	const char *err = NULL;
	char when[40], age[40], clean[1100], addr[300];
	time_t now = time(NULL);

	switch (queue_show(q, id, &e, &err)) {
	case RESULT_OK:
		break;
	case RESULT_PERMFAIL:
		cli_error("no message %s in the queue", id);
		return CLI_EXIT_RUNTIME;
	case RESULT_TEMPFAIL:
		cli_error("queue show %s: %s", id, err);
		return CLI_EXIT_RUNTIME;
	}
	cli_queue_time_fmt(e->arrival, when, sizeof(when));
	cli_queue_duration_fmt((int64_t)now - e->arrival, age, sizeof(age));
	snprintf(addr, sizeof(addr), "<%s>", e->sender);
	printf("id:          %s\n", e->id);
	printf("sender:      %s\n", cli_queue_text_clean(addr, clean, sizeof(clean)));
	printf("arrival:     %s (%s ago)\n", when, age);
	printf("size:        %zu bytes\n", e->size);
	printf("client ip:   %s\n", e->client_ip != NULL ? cli_queue_text_clean(e->client_ip, clean, sizeof(clean)) : "-");
	printf("auth user:   %s\n", e->auth_user != NULL ? cli_queue_text_clean(e->auth_user, clean, sizeof(clean)) : "-");
	printf("held:        %s\n", e->held ? "yes (mailwerk queue release ID)" : "no");
	if (e->requiretls || e->tls_required_no)
		printf("tls:         %s\n", e->requiretls ? "REQUIRETLS (RFC 8689)" : "TLS-Required: No (RFC 8689)");
	if (e->dsn_ret != QUEUE_DSN_RET_UNSPECIFIED || e->dsn_envid != NULL)
		printf("dsn:         RET=%s ENVID=%s\n",
		       e->dsn_ret == QUEUE_DSN_RET_FULL ? "FULL" : e->dsn_ret == QUEUE_DSN_RET_HDRS ? "HDRS" : "-",
		       e->dsn_envid != NULL ? cli_queue_text_clean(e->dsn_envid, clean, sizeof(clean)) : "-");
	printf("recipients:  %zu\n", e->rcpt_count);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct queue_rcpt_info *r = &e->rcpts[i];

		snprintf(addr, sizeof(addr), "<%s>", r->addr);
		printf("  %s\n", cli_queue_text_clean(addr, clean, sizeof(clean)));
		printf("    state:        %s\n", queue_rcpt_state_str(r->state));
		printf("    attempts:     %u\n", r->attempts);
		if (r->next_attempt == 0) {
			puts("    next attempt: none");
		} else {
			cli_queue_time_fmt(r->next_attempt, when, sizeof(when));
			if (r->next_attempt <= (int64_t)now) {
				printf("    next attempt: %s (due)\n", when);
			} else {
				cli_queue_duration_fmt(r->next_attempt - (int64_t)now, age, sizeof(age));
				printf("    next attempt: %s (in %s)\n", when, age);
			}
		}
		printf("    last error:   %s\n",
			r->last_error != NULL ? cli_queue_text_clean(r->last_error, clean, sizeof(clean)) : "-");
	}
	queue_entry_free(e);
	return CLI_EXIT_OK;
}

static int cli_queue_delete_run(struct queue *q, const char *id)
{
	const char *err = NULL;

	switch (queue_delete(q, id, &err)) {
	case RESULT_OK:
		printf("deleted %s\n", id);
		return CLI_EXIT_OK;
	case RESULT_PERMFAIL:
		cli_error("no message %s in the queue", id);
		return CLI_EXIT_RUNTIME;
	case RESULT_TEMPFAIL:
		break;
	}
	cli_error("queue delete %s: %s", id, err);
	return CLI_EXIT_RUNTIME;
}

static int cli_queue_flush_run(struct queue *q)
{
	const char *err = NULL;
	unsigned n = 0;

	if (queue_flush(q, &n, &err) != RESULT_OK) {
		cli_error("queue flush: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	printf("%u recipient%s due now\n", n, n == 1 ? "" : "s");
	return CLI_EXIT_OK;
}

/* ---- entry point ---- */

int cli_queue_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_queue_cmd_def *def = NULL;
	const char *conf_path = NULL;
	const char *id = NULL;
	bool json = false, help = false, all = false;
	struct conf *conf;
	struct queue *q;
	const char *err = NULL;
	int c, npos, rc = CLI_EXIT_RUNTIME;

	optind = 0; /* glibc: re-initialise, since main() or another command may have used getopt */
	opterr = 0; /* our own one-line messages instead of getopt's */
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			help = true;
			break;
		default:
			return cli_option_error("queue", c, argv);
		}
	}
	if (help) {
		cli_queue_usage(stdout);
		return CLI_EXIT_OK;
	}
	npos = argc - optind;
	if (npos == 0) {
		cli_error("queue: missing subcommand: list, show, hold, release, bounce, delete or flush (try 'mailwerk queue --help')");
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(cli_queue_cmds) / sizeof(cli_queue_cmds[0]); i++) {
		if (strcmp(argv[optind], cli_queue_cmds[i].name) == 0)
			def = &cli_queue_cmds[i];
	}
	if (def == NULL) {
		cli_error("queue: unknown subcommand '%s': list, show, hold, release, bounce, delete or flush", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (all && !def->takes_all) {
		cli_error("queue %s: --all applies to hold and release only", def->name);
		return CLI_EXIT_USAGE;
	}
	if (npos != 1 + (def->takes_id && !all)) {
		if (def->takes_all)
			cli_error("queue %s: needs exactly one queue id, or --all", def->name);
		else if (def->takes_id)
			cli_error("queue %s: needs exactly one queue id", def->name);
		else
			cli_error("queue %s: takes no arguments", def->name);
		return CLI_EXIT_USAGE;
	}
	if (json && def->cmd != CLI_QUEUE_LIST) {
		cli_error("queue %s: --json applies to list only", def->name);
		return CLI_EXIT_USAGE;
	}
	if (def->takes_id && !all) {
		id = argv[optind + 1];
		if (!queue_id_valid(id)) {
			char clean[200];

			cli_error("queue %s: '%s' is not a queue id (%d characters of Crockford base32, upper case)",
				def->name, cli_queue_text_clean(id, clean, sizeof(clean)), QUEUE_ID_LEN);
			return CLI_EXIT_USAGE;
		}
	}

	conf = cli_data_conf_load(conf_path);
	if (conf == NULL)
		return CLI_EXIT_RUNTIME;
	if (def->request != 0) {
		rc = cli_queue_op_run(conf, def->request, id);
		conf_free(conf);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			cli_error("cannot write the output: %s", strerror(errno));
			return CLI_EXIT_RUNTIME;
		}
		return rc;
	}
	q = queue_open(conf->data_dir, &err);
	if (q == NULL) {
		cli_error("cannot open the queue in %s: %s", conf->data_dir, err);
		conf_free(conf);
		return CLI_EXIT_RUNTIME;
	}
	switch (def->cmd) {
	case CLI_QUEUE_LIST:
		rc = cli_queue_list_run(q, json);
		break;
	case CLI_QUEUE_SHOW:
		rc = cli_queue_show_run(q, id);
		break;
	case CLI_QUEUE_DELETE:
		rc = cli_queue_delete_run(q, id);
		break;
	case CLI_QUEUE_FLUSH:
		rc = cli_queue_flush_run(q);
		break;
	default: /* the requests: done above */
		break;
	}
	queue_close(q);
	conf_free(conf);
	/* a full disk or a closed pipe must not look like success to a script */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("cannot write the output: %s", strerror(errno));
		return CLI_EXIT_RUNTIME;
	}
	return rc;
}

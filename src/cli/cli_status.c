/* cli_status.c — owns `mailwerk status`: asks the running server through its control socket
 * (cli_control.h) and prints what it answers. Reads the configuration for data_dir and nothing
 * else: with no server there is nothing to report (exit CLI_EXIT_NOT_RUNNING). */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_control.h"
#include "cli/cli_dns.h"
#include "cli/cli_status.h"
#include "conf/conf.h"

static void cli_status_usage(FILE *f)
{
	fputs("usage: mailwerk status [--json] [--no-dns] [--resolver ADDR[@PORT]] [-c FILE]\n"
	      "\n"
	      "  what the running server is doing: version, worker pid, uptime, open sessions by\n"
	      "  listener, the queue, delivery connections, the sandbox, listeners, last reload,\n"
	      "  last upgrade\n"
	      "\n"
	      "  and of its health: recipients delivered, deferred and failed in the last minute and\n"
	      "  hour, the TLS certificate's days to expiry, whether DNS publishes each active DKIM\n"
	      "  key of the local domains, the free space in data_dir\n"
	      "\n"
	      "  -c, --config FILE  configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "      --json         print the server's answer as one JSON object\n"
	      "      --no-dns       do not look up the DKIM keys' records\n"
	      "      --resolver R   look them up at R (ADDR[@PORT]; default: [dns] resolver of the\n"
	      "                     configuration, else the system's)\n"
	      "  -h, --help         show this help\n"
	      "\n"
	      "exit status: 0 running, 1 error, 2 usage, 3 not running\n",
	      f);
}

const char *cli_status_clean(const char *s, char *buf, size_t size)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 1 < size; i++)
		buf[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

const char *cli_status_str(json_t *o, const char *key, char *buf, size_t size)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? cli_status_clean(s, buf, size) : "-";
}

long long cli_status_int(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

void cli_status_duration(long long secs, char *buf, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		snprintf(buf, size, "%lldd %lldh", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(buf, size, "%lldh %lldm", secs / 3600, secs % 3600 / 60);
	else if (secs >= 60)
		snprintf(buf, size, "%lldm %llds", secs / 60, secs % 60);
	else
		snprintf(buf, size, "%llds", secs);
}

static void cli_status_sessions(json_t *st)
{
	json_t *s = json_object_get(st, "sessions");
	const char *key;
	json_t *v;
	const char *sep = "";
	printf("sessions:    %lld open (", cli_status_int(st, "sessions_total"));
	json_object_foreach(s, key, v) {
		char clean[32];
		printf("%s%s %lld", sep, cli_status_clean(key, clean, sizeof(clean)), (long long)json_integer_value(v));
		sep = ", ";
	}
	puts(")");
}

static void cli_status_queue(json_t *st)
{
	json_t *q = json_object_get(st, "queue");
	char age[40];
	json_t *oldest = json_object_get(q, "oldest_age_seconds");
	if (json_is_integer(oldest))
		cli_status_duration((long long)json_integer_value(oldest), age, sizeof(age));
	printf("queue:       %lld messages (%lld held), %lld recipients due, %lld deferred, oldest %s\n",
	       cli_status_int(q, "messages"), cli_status_int(q, "held"), cli_status_int(q, "recipients_due"),
	       cli_status_int(q, "recipients_deferred"), json_is_integer(oldest) ? age : "-");
}

static void cli_status_listeners(json_t *st)
{
	json_t *a = json_object_get(st, "listeners");
	size_t i;
	json_t *l;
	fputs("listeners:  ", stdout);
	json_array_foreach(a, i, l) {
		char role[32], addr[80];
		printf(" %s %s%s", cli_status_str(l, "role", role, sizeof(role)),
		       cli_status_str(l, "address", addr, sizeof(addr)), i + 1 < json_array_size(a) ? "," : "");
	}
	puts(json_array_size(a) == 0 ? " none" : "");
}

/* The last upgrade this worker was told of (`serve --upgrade`): none, done or failed and why. */
static void cli_status_upgrade(json_t *st)
{
	json_t *u = json_object_get(st, "upgrade");
	char result[16], at[40], reason[256];
	if (!json_is_object(u)) {
		puts("upgrade:     none since this worker started");
		return;
	}
	cli_status_str(u, "result", result, sizeof(result));
	cli_status_str(u, "at", at, sizeof(at));
	if (strcmp(result, "done") == 0)
		printf("upgrade:     #%lld done at %s\n", cli_status_int(u, "seq"), at);
	else
		printf("upgrade:     #%lld %s at %s: %s\n", cli_status_int(u, "seq"), result, at,
		       cli_status_str(u, "reason", reason, sizeof(reason)));
}

static void cli_status_text(json_t *st)
{
	char ver[64], started[40], up[40], reload[40];
	json_t *d = json_object_get(st, "delivery");
	cli_status_duration(cli_status_int(st, "uptime_seconds"), up, sizeof(up));
	printf("mailwerk:    %s, running\n", cli_status_str(st, "version", ver, sizeof(ver)));
	printf("worker:      pid %lld (parent %lld), up %s since %s\n", cli_status_int(st, "pid"),
	       cli_status_int(st, "parent_pid"), up, cli_status_str(st, "started", started, sizeof(started)));
	cli_status_sessions(st);
	cli_status_queue(st);
	printf("delivery:    %lld of %lld connections in use\n", cli_status_int(d, "connections"),
	       cli_status_int(d, "max_connections"));
	cli_status_health_text(st);
	printf("sandbox:     %s\n", json_is_true(json_object_get(st, "sandbox")) ? "on" : "off");
	cli_status_listeners(st);
	const char *r = cli_status_str(st, "last_reload", reload, sizeof(reload));
	printf("last reload: %s\n", strcmp(r, "-") == 0 ? "never" : r);
	cli_status_upgrade(st);
}

static int cli_status_run(const struct conf *c, bool json, const struct cli_status_dns *dns)
{
	char err[600];
	int fd;
	switch (cli_control_connect(c->data_dir, &fd, err, sizeof(err))) {
	case CLI_CONTROL_CONNECTED:
		break;
	case CLI_CONTROL_NOT_RUNNING:
		cli_error("not running: no server answers on %s/%s", c->data_dir, CONTROL_SOCKET_NAME);
		return CLI_EXIT_NOT_RUNNING;
	case CLI_CONTROL_NO_PATH:
	case CLI_CONTROL_FAILED:
		cli_error("status: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	struct control_request req = {.type = CONTROL_REQ_STATUS};
	json_t *st;
	int rc = cli_control_call(fd, &req, &st, err, sizeof(err));
	close(fd);
	if (rc != 0) {
		cli_error("status: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	cli_status_dkim_check(c, dns, st);
	if (json) {
		char *s = json_dumps(st, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (s != NULL)
			puts(s);
		free(s);
	} else {
		cli_status_text(st);
	}
	json_decref(st);
	return CLI_EXIT_OK;
}

int cli_status_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"no-dns", no_argument, NULL, 'n'},
		{"resolver", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL;
	bool json = false;
	struct cli_status_dns dns = {0};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'n':
			dns.skip = true;
			break;
		case 'r':
			if (!cli_dns_resolver_ok(optarg))
				return CLI_EXIT_USAGE;
			dns.resolver = optarg;
			break;
		case 'h':
			cli_status_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("status", c, argv);
		}
	}
	if (optind < argc) {
		cli_error("status: takes no arguments");
		return CLI_EXIT_USAGE;
	}
	struct conf *cf = cli_conf_load(conf_path, NULL, 0);
	if (cf == NULL)
		return CLI_EXIT_RUNTIME;
	dns.conf_path = conf_path;
	int rc = cli_status_run(cf, json, &dns);
	conf_free(cf);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("cannot write the output: %s", strerror(errno));
		return CLI_EXIT_RUNTIME;
	}
	return rc;
}

/* cli_suppression.c — `mailwerk suppression list|add|del|import`: the suppression list in
 * DATA_DIR/queue.db (events/suppressions.h), next to a running server. */
#include "cli/cli_common.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "conf/conf.h"
#include "db/db.h"
#include "events/suppressions.h"
#include "queue/queue.h"
#include "util/addr.h"
#include "util/date.h"

#define CLI_SUPPRESSION_LINE_MAX 1024

static void cli_suppression_usage(FILE *out)
{
	fputs("usage: mailwerk suppression list [--origin ORIGIN] [-c FILE]\n"
	      "       mailwerk suppression add ADDRESS [--domain DOMAIN] [-c FILE]\n"
	      "       mailwerk suppression del ADDRESS|ID [-c FILE]\n"
	      "       mailwerk suppression import FILE [--domain DOMAIN] [-c FILE]\n"
	      "\n"
	      "Addresses on the list get no more mail: a send to one is recorded as suppressed and not\n"
	      "attempted. Hard bounces and complaints add to it by themselves. Without --domain an entry\n"
	      "holds for every sending domain. import reads one address per line (blank lines and lines\n"
	      "starting with # are skipped), all in one transaction.\n"
	      "\n"
	      "  --origin ORIGIN    list only bounce, complaint, unsubscribe or manual entries\n"
	      "  -d, --domain D     the sending domain the entry is for\n"
	      "  -c, --config FILE  configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help         show this help\n",
	      out);
}

static bool address_ok(const char *s)
{
	struct addr a;
	const char *err;
	return addr_parse_mailbox(s, strlen(s), ADDR_ALLOW_UTF8, &a, &err) == ADDR_OK;
}

static int cli_suppression_list(struct db *db, int origin)
{
	const char *after = NULL;
	char cursor[EMAIL_ID_LEN + 1];
	printf("%-36s  %-30s  %-12s  %-20s  %s\n", "ID", "ADDRESS", "ORIGIN", "DOMAIN", "SINCE");
	for (;;) {
		struct suppression *v;
		size_t n;
		bool more;
		if (suppression_list(db, 100, after, NULL, origin, &v, &n, &more) != 1) {
			cli_error("suppression list: cannot read the list: %s", sqlite3_errmsg(db_sqlite(db)));
			return CLI_EXIT_RUNTIME;
		}
		for (size_t i = 0; i < n; i++) {
			char when[32];
			time_t t = (time_t)(v[i].created_at / 1000);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("%-36s  %-30s  %-12s  %-20s  %s\n", v[i].id, v[i].email, suppression_origin_str(v[i].origin),
			       v[i].domain[0] ? v[i].domain : "*", when);
		}
		if (n > 0)
			snprintf(cursor, sizeof(cursor), "%s", v[n - 1].id);
		free(v);
		if (!more || n == 0)
			return CLI_EXIT_OK;
		after = cursor;
	}
}

static int cli_suppression_import(struct db *db, const char *path, const char *domain)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		cli_error("suppression import: cannot open %s", path);
		return CLI_EXIT_RUNTIME;
	}
	char line[CLI_SUPPRESSION_LINE_MAX];
	unsigned lineno = 0, added = 0, known = 0;
	int rc = sqlite3_exec(db_sqlite(db), "BEGIN IMMEDIATE", NULL, NULL, NULL), exit_code = CLI_EXIT_OK;
	int64_t now = date_now_ms();
	while (rc == SQLITE_OK && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
			cli_error("%s:%u: line too long", path, lineno);
			exit_code = CLI_EXIT_USAGE;
			break;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
			line[--len] = '\0';
		const char *a = line;
		while (*a == ' ' || *a == '\t')
			a++;
		if (*a == '\0' || *a == '#')
			continue;
		if (!address_ok(a)) {
			cli_error("%s:%u: not an email address: %s", path, lineno, a);
			exit_code = CLI_EXIT_USAGE;
			break;
		}
		struct suppression s;
		bool existed;
		rc = suppression_add(db, domain, a, SUPPRESSION_MANUAL, NULL, now, &s, &existed);
		existed ? known++ : added++;
	}
	if (f != stdin)
		fclose(f);
	if (rc == SQLITE_OK && exit_code == CLI_EXIT_OK)
		rc = sqlite3_exec(db_sqlite(db), "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK || exit_code != CLI_EXIT_OK) {
		if (rc != SQLITE_OK)
			cli_error("suppression import: %s", sqlite3_errmsg(db_sqlite(db)));
		sqlite3_exec(db_sqlite(db), "ROLLBACK", NULL, NULL, NULL);
		fprintf(stderr, "nothing imported\n");
		return exit_code != CLI_EXIT_OK ? exit_code : CLI_EXIT_RUNTIME;
	}
	printf("%u added, %u already on the list\n", added, known);
	return CLI_EXIT_OK;
}

int cli_suppression_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"domain", required_argument, NULL, 'd'},
		{"origin", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *domain = "", *origin_s = NULL;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":c:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			domain = optarg;
			break;
		case 'o':
			origin_s = optarg;
			break;
		case 'h':
			cli_suppression_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("suppression", c, argv);
		}
	}
	int npos = argc - optind;
	const char *cmd = npos > 0 ? argv[optind] : NULL;
	int want = cmd == NULL ? -1 : strcmp(cmd, "list") == 0 ? 0
		: strcmp(cmd, "add") == 0 || strcmp(cmd, "del") == 0 || strcmp(cmd, "import") == 0 ? 1 : -1;
	if (want < 0) {
		cli_error("missing or unknown command (list, add, del or import); see: mailwerk suppression --help");
		return CLI_EXIT_USAGE;
	}
	if (npos - 1 != want) {
		cli_error("suppression %s: expected %s; see: mailwerk suppression --help", cmd,
			  want == 0 ? "no argument" : "one argument");
		return CLI_EXIT_USAGE;
	}
	const char *arg = want ? argv[optind + 1] : NULL;
	int origin = -1;
	if (origin_s != NULL) {
		enum suppression_origin o;
		if (!suppression_origin_parse(origin_s, &o)) {
			cli_error("--origin: expected bounce, complaint, unsubscribe or manual");
			return CLI_EXIT_USAGE;
		}
		origin = (int)o;
	}
	const char *err = NULL;
	if (domain[0] != '\0' && addr_parse_domain(domain, strlen(domain), ADDR_ALLOW_UTF8, &err) != ADDR_OK) {
		cli_error("--domain: invalid domain \"%s\": %s", domain, err ? err : "syntax error");
		return CLI_EXIT_USAGE;
	}
	if (strcmp(cmd, "add") == 0 && !address_ok(arg)) {
		cli_error("suppression add: not an email address: %s", arg);
		return CLI_EXIT_USAGE;
	}
	struct conf *cf = cli_conf_load(conf_path, NULL, 0);
	if (cf == NULL)
		return CLI_EXIT_RUNTIME;
	struct queue *q = queue_open(cf->data_dir, &err);
	if (q == NULL) {
		cli_error("%s: %s", cf->data_dir, err);
		conf_free(cf);
		return CLI_EXIT_RUNTIME;
	}
	struct db *db = queue_db(q);
	int rc = CLI_EXIT_OK;
	if (strcmp(cmd, "list") == 0) {
		rc = cli_suppression_list(db, origin);
	} else if (strcmp(cmd, "import") == 0) {
		rc = cli_suppression_import(db, arg, domain);
	} else if (strcmp(cmd, "add") == 0) {
		struct suppression s;
		bool existed;
		if (suppression_add(db, domain, arg, SUPPRESSION_MANUAL, NULL, date_now_ms(), &s, &existed) != SQLITE_OK) {
			cli_error("suppression add: %s", sqlite3_errmsg(db_sqlite(db)));
			rc = CLI_EXIT_RUNTIME;
		} else {
			printf("%s %s\n", s.id, existed ? "(already on the list)" : "added");
		}
	} else {
		int n = suppression_remove(db, arg);
		if (n < 0) {
			cli_error("suppression del: %s", sqlite3_errmsg(db_sqlite(db)));
			rc = CLI_EXIT_RUNTIME;
		} else if (n == 0) {
			cli_error("suppression del: %s is not on the list", arg);
			rc = CLI_EXIT_RUNTIME;
		} else {
			printf("%d entr%s removed\n", n, n == 1 ? "y" : "ies");
		}
	}
	queue_close(q);
	conf_free(cf);
	return rc;
}

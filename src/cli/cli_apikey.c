/* cli_apikey.c — owns `mailwerk apikey create|list|revoke`: the HTTP API's keys in DATA_DIR/api.db
 * (keys/api_keys.h). Safe next to a running server: the file is in WAL mode with a busy timeout,
 * and the server notices the change (PRAGMA data_version) on its next request, without a restart. */
#include "cli/cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "conf/conf.h"
#include "keys/api_keys.h"

enum cli_apikey_cmd {
	CLI_APIKEY_CREATE,
	CLI_APIKEY_LIST,
	CLI_APIKEY_REVOKE,
};

struct cli_apikey_args {
	enum cli_apikey_cmd cmd;
	const char *conf_path;
	const char *name;            /* create */
	enum api_key_permission perm; /* create */
	bool perm_given;
	const char *domain;          /* create; NULL: every domain */
	bool quiet;                  /* create: the token alone */
	bool json;                   /* list */
	char id[API_KEY_ID_LEN + 1]; /* revoke, folded to lower case as ids are stored */
};

static void cli_apikey_usage(FILE *f)
{
	fputs("usage: mailwerk apikey create NAME [--permission full_access|sending_access] [--domain DOMAIN]\n"
	      "                      [--quiet] [-c FILE]\n"
	      "       mailwerk apikey list [--json] [-c FILE]\n"
	      "       mailwerk apikey revoke ID [-c FILE]\n"
	      "\n"
	      "Keys for the HTTP API (Authorization: Bearer TOKEN). A running server sees a new or revoked\n"
	      "key on its next request.\n"
	      "\n"
	      "  create   makes a key and prints its token on the first line of output. The token is shown\n"
	      "           only this once: mailwerk keeps nothing but its SHA-256 hash.\n"
	      "           NAME is 1 to 50 characters. full_access (the default) may use the whole API;\n"
	      "           sending_access may only send, from any domain or only from --domain DOMAIN\n"
	      "           (--domain alone implies sending_access).\n"
	      "  list     every key, newest first: id, name, permission, domain (* for any), created and\n"
	      "           last used (UTC). Tokens cannot be shown again.\n"
	      "  revoke   deletes the key with this id; requests with its token fail from then on.\n"
	      "\n"
	      "  -p, --permission P  create: full_access or sending_access\n"
	      "  -d, --domain D      create: only for sending from D\n"
	      "  -q, --quiet         create: print the token and nothing else\n"
	      "      --json          list: one JSON object per line instead of a table\n"
	      "  -c, --config FILE   configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help          show this help\n",
	      f);
}

/* ---- formatting ---- */

/* "2024-05-01T12:00:00Z" (UTC); with_ms adds ".123" (for JSON, where the precision is free) */
static void cli_apikey_time_fmt(int64_t ms, bool with_ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char sec[32];

	if (gmtime_r(&t, &tm) == NULL || strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, size, "@%" PRId64, ms);
		return;
	}
	if (with_ms)
		snprintf(buf, size, "%s.%03dZ", sec, (int)(ms % 1000));
	else
		snprintf(buf, size, "%sZ", sec);
}

/* Code points, not octets: the table's columns line up for names that are not ASCII. */
static size_t cli_apikey_width(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		n += (*p & 0xc0) != 0x80;
	return n;
}

static void cli_apikey_pad(const char *s, size_t width)
{
	fputs(s, stdout);
	for (size_t w = cli_apikey_width(s); w < width; w++)
		putchar(' ');
}

static void cli_apikey_list_text(const struct api_key *keys, size_t n)
{
	size_t name_w = strlen("NAME"), domain_w = strlen("DOMAIN");
	char created[40], used[40];

	if (n == 0) {
		puts("no API keys; make one with: mailwerk apikey create NAME");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (cli_apikey_width(keys[i].name) > name_w)
			name_w = cli_apikey_width(keys[i].name);
		if (cli_apikey_width(keys[i].domain) > domain_w)
			domain_w = cli_apikey_width(keys[i].domain);
	}
	printf("%-*s  ", API_KEY_ID_LEN, "ID");
	cli_apikey_pad("NAME", name_w);
	printf("  %-14s  ", "PERMISSION");
	cli_apikey_pad("DOMAIN", domain_w);
	printf("  %-20s  %s\n", "CREATED", "LAST USED");
	for (size_t i = 0; i < n; i++) {
		const struct api_key *k = &keys[i];

		cli_apikey_time_fmt(k->created_at, false, created, sizeof(created));
		if (k->last_used_at > 0)
			cli_apikey_time_fmt(k->last_used_at, false, used, sizeof(used));
		else
			snprintf(used, sizeof(used), "never");
		printf("%-*s  ", API_KEY_ID_LEN, k->id);
		cli_apikey_pad(k->name, name_w);
		printf("  %-14s  ", api_key_permission_str(k->permission));
		cli_apikey_pad(k->domain[0] != '\0' ? k->domain : "*", domain_w);
		printf("  %-20s  %s\n", created, used);
	}
}

/* One object per line (JSON Lines), so that `jq` or a line-reading script takes it as it comes. */
static int cli_apikey_list_json(const struct api_key *keys, size_t n)
{
	char created[40], used[40];

	for (size_t i = 0; i < n; i++) {
		const struct api_key *k = &keys[i];
		json_t *o;
		char *line;

		cli_apikey_time_fmt(k->created_at, true, created, sizeof(created));
		cli_apikey_time_fmt(k->last_used_at, true, used, sizeof(used));
		/* s? gives null: no domain limit, never used */
		o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s?}", "id", k->id, "name", k->name,
			      "permission", api_key_permission_str(k->permission),
			      "domain", k->domain[0] != '\0' ? k->domain : NULL,
			      "created_at", created, "last_used_at", k->last_used_at > 0 ? used : NULL);
		line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(o);
		if (line == NULL) {
			/* jansson refuses strings that are not UTF-8: a row this program did not write */
			cli_error("apikey list: cannot write key %s as JSON", k->id);
			return CLI_EXIT_RUNTIME;
		}
		puts(line);
		free(line);
	}
	return CLI_EXIT_OK;
}

/* ---- commands ---- */

static int cli_apikey_create_run(struct api_keys *ks, const struct cli_apikey_args *a)
{
	char token[API_KEY_TOKEN_LEN + 1], err[512];
	struct api_key key;
	bool bad_input = false;
	/* a domain limit is only allowed on sending keys: --domain alone means that */
	enum api_key_permission perm = a->perm_given || a->domain == NULL ? a->perm : API_KEY_SENDING_ACCESS;
	int rc = CLI_EXIT_OK;

	if (api_keys_create(ks, a->name, perm, a->domain, token, &key, &bad_input, err, sizeof(err)) != 0) {
		cli_error("apikey create: %s", err);
		return bad_input ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME;
	}
	/* the token first and on its own line: TOKEN=$(mailwerk apikey create NAME --quiet), or | head -1 */
	printf("%s\n", token);
	if (!a->quiet) {
		printf("id          %s\n", key.id);
		printf("name        %s\n", key.name);
		printf("permission  %s\n", api_key_permission_str(key.permission));
		printf("domain      %s\n", key.domain[0] != '\0' ? key.domain : "* (any)");
		printf("The token above is shown only this once; store it now (mailwerk keeps only its hash).\n");
	}
	/* A key whose token never reached anyone is no use to anybody but a thief of the terminal's
	 * scrollback: take it back rather than leave a live key nobody knows. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int saved = errno;

		if (api_keys_revoke(ks, key.id, err, sizeof(err)) >= 0)
			cli_error("cannot write the token (%s); the key was deleted again", strerror(saved));
		else
			cli_error("cannot write the token (%s), and deleting key %s failed: %s; revoke it",
				  strerror(saved), key.id, err);
		rc = CLI_EXIT_RUNTIME;
	}
	OPENSSL_cleanse(token, sizeof(token));
	return rc;
}

static int cli_apikey_list_run(struct api_keys *ks, bool json)
{
	struct api_key *keys = NULL;
	size_t n = 0;
	char err[512];
	int rc = CLI_EXIT_OK;

	if (api_keys_list(ks, &keys, &n, err, sizeof(err)) != 0) {
		cli_error("apikey list: %s", err);
		return CLI_EXIT_RUNTIME;
	}
	if (json)
		rc = cli_apikey_list_json(keys, n);
	else
		cli_apikey_list_text(keys, n);
	free(keys);
	return rc;
}

static int cli_apikey_revoke_run(struct api_keys *ks, const char *id)
{
	char err[512];

	switch (api_keys_revoke(ks, id, err, sizeof(err))) {
	case 1:
		printf("revoked API key %s\n", id);
		return CLI_EXIT_OK;
	case 0:
		cli_error("apikey revoke: no API key with id %s (see: mailwerk apikey list)", id);
		return CLI_EXIT_RUNTIME;
	default:
		cli_error("apikey revoke: %s", err);
		return CLI_EXIT_RUNTIME;
	}
}

/* ---- arguments ---- */

/* A UUID's shape (8-4-4-4-12 hex digits) into id_r, lower-cased; false when it is not one. */
static bool cli_apikey_id_parse(const char *s, char id_r[API_KEY_ID_LEN + 1])
{
	if (strlen(s) != API_KEY_ID_LEN)
		return false;
	for (size_t i = 0; i < API_KEY_ID_LEN; i++) {
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
	id_r[API_KEY_ID_LEN] = '\0';
	return true;
}

/* Parses argv into a. Returns -1 to go on, or the exit code (help printed, or a usage error). */
static int cli_apikey_args_parse(int argc, char **argv, struct cli_apikey_args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "permission", required_argument, NULL, 'p' },
		{ "domain", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *perm = NULL, *cmd;
	int c, npos;

	memset(a, 0, sizeof(*a));
	optind = 0; /* glibc: 0 re-initialises, so a second call in one process parses afresh */
	opterr = 0; /* our own one-line errors instead of getopt's */
	while ((c = getopt_long(argc, argv, ":c:p:d:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->conf_path = optarg;
			break;
		case 'p':
			perm = optarg;
			break;
		case 'd':
			a->domain = optarg;
			break;
		case 'q':
			a->quiet = true;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			cli_apikey_usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_option_error("apikey", c, argv);
		}
	}
	npos = argc - optind;
	if (npos < 1) {
		cli_error("missing command (create, list or revoke); see: mailwerk apikey --help");
		return CLI_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "create") == 0) {
		a->cmd = CLI_APIKEY_CREATE;
	} else if (strcmp(cmd, "list") == 0) {
		a->cmd = CLI_APIKEY_LIST;
	} else if (strcmp(cmd, "revoke") == 0) {
		a->cmd = CLI_APIKEY_REVOKE;
	} else {
		cli_error("unknown command \"%s\" (create, list or revoke); see: mailwerk apikey --help", cmd);
		return CLI_EXIT_USAGE;
	}
	int want = a->cmd == CLI_APIKEY_LIST ? 0 : 1;
	if (npos - 1 < want) {
		cli_error("apikey %s: missing %s; see: mailwerk apikey --help", cmd,
			  a->cmd == CLI_APIKEY_CREATE ? "NAME" : "ID");
		return CLI_EXIT_USAGE;
	}
	if (npos - 1 > want) {
		cli_error("apikey %s: unexpected argument \"%s\"%s; see: mailwerk apikey --help", cmd,
			  argv[optind + 1 + want],
			  a->cmd == CLI_APIKEY_CREATE ? " (quote a NAME with spaces)" : "");
		return CLI_EXIT_USAGE;
	}
	if (a->cmd != CLI_APIKEY_CREATE && (perm != NULL || a->domain != NULL || a->quiet)) {
		cli_error("apikey %s: --permission, --domain and --quiet apply to create only", cmd);
		return CLI_EXIT_USAGE;
	}
	if (a->cmd != CLI_APIKEY_LIST && a->json) {
		cli_error("apikey %s: --json applies to list only", cmd);
		return CLI_EXIT_USAGE;
	}
	if (perm != NULL) {
		if (!api_key_permission_parse(perm, &a->perm)) {
			cli_error("apikey create: unknown permission \"%s\" (full_access or sending_access)",
				  perm);
			return CLI_EXIT_USAGE;
		}
		a->perm_given = true;
	}
	if (a->cmd == CLI_APIKEY_CREATE)
		a->name = argv[optind + 1];
	if (a->cmd == CLI_APIKEY_REVOKE && !cli_apikey_id_parse(argv[optind + 1], a->id)) {
		cli_error("apikey revoke: \"%s\" is not an API key id (a UUID, as mailwerk apikey list shows)",
			  argv[optind + 1]);
		return CLI_EXIT_USAGE;
	}
	return -1;
}

int cli_apikey_main(int argc, char **argv)
{
	struct cli_apikey_args a;
	struct conf *cf;
	struct api_keys *ks;
	char err[512];
	int rc = cli_apikey_args_parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	cf = cli_data_conf_load(a.conf_path);
	if (cf == NULL)
		return CLI_EXIT_RUNTIME;
	ks = api_keys_open(cf->data_dir, err, sizeof(err));
	if (ks == NULL) {
		cli_error("cannot open the API keys in %s: %s", cf->data_dir, err);
		conf_free(cf);
		return CLI_EXIT_RUNTIME;
	}
	switch (a.cmd) {
	case CLI_APIKEY_CREATE:
		rc = cli_apikey_create_run(ks, &a);
		break;
	case CLI_APIKEY_LIST:
		rc = cli_apikey_list_run(ks, a.json);
		break;
	case CLI_APIKEY_REVOKE:
		rc = cli_apikey_revoke_run(ks, a.id);
		break;
	}
	api_keys_close(ks);
	conf_free(cf);
	/* a full disk or a closed pipe must not look like success to a script */
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		rc = CLI_EXIT_RUNTIME;
	}
	return rc;
}

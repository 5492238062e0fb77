/* cli_acme.c — `mailwerk acme renew [--force]` and `mailwerk acme revoke`: ask the running server
 * (through its control socket) for a new ACME certificate now, or to revoke the one in use
 * (RFC 8555 §7.6) and get a new one. The server does the work on its loop and logs its outcome
 * (event=acme_installed, or event=acme_failed reason=...); the command says whether it started. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_common.h"
#include "cli/cli_control.h"
#include "conf/conf.h"

static void acme_usage(FILE *f)
{
	fprintf(f, "usage: mailwerk acme renew [--force] [-c FILE]\n"
		   "       mailwerk acme revoke [-c FILE]\n");
}

int cli_acme_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL;
	int ch;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'f': break; /* renew always asks now; --force says so (the name certbot users know) */
		case 'h': acme_usage(stdout); return CLI_EXIT_OK;
		default: return cli_option_error("acme", ch, argv);
		}
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "renew") != 0 && strcmp(argv[optind], "revoke") != 0)) {
		acme_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	bool revoke = strcmp(argv[optind], "revoke") == 0;
	struct conf *c = cli_conf_load(conf_path, NULL, 0);
	if (c == NULL)
		return CLI_EXIT_RUNTIME;
	char err[600];
	int fd, rc = CLI_EXIT_RUNTIME;
	switch (cli_control_connect(c->data_dir, &fd, err, sizeof(err))) {
	case CLI_CONTROL_CONNECTED: {
		struct control_request req = {.type = revoke ? CONTROL_REQ_ACME_REVOKE : CONTROL_REQ_ACME_RENEW};
		json_t *o;
		if (cli_control_call(fd, &req, &o, err, sizeof(err)) != 0) {
			cli_error("acme %s: %s", argv[optind], err);
		} else {
			printf("%s started: the server logs event=acme_installed, or event=acme_failed with the reason\n",
			       revoke ? "revocation and a new certificate" : "a new certificate");
			json_decref(o);
			rc = CLI_EXIT_OK;
		}
		close(fd);
		break;
	}
	case CLI_CONTROL_NOT_RUNNING:
	case CLI_CONTROL_NO_PATH:
		cli_error("acme %s: no server is running (it asks for certificates itself when it starts)", argv[optind]);
		rc = CLI_EXIT_NOT_RUNNING;
		break;
	case CLI_CONTROL_FAILED:
		cli_error("acme %s: %s", argv[optind], err);
		break;
	}
	conf_free(c);
	return rc;
}

/* cli_route.c — `mailwerk route add|set|del|list`: the inbound routes, addresses of local domains
 * whose mail goes to the applications (GET /emails/receiving and the email.received webhook), the
 * same store as /inbound/routes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_common.h"
#include "mailbox/users.h"

enum cli_route_action {
	CLI_ROUTE_ADD,
	CLI_ROUTE_SET,
	CLI_ROUTE_DEL,
	CLI_ROUTE_LIST,
};

struct cli_route_args {
	enum cli_route_action action;
	const char *conf_path;
	const char *address;
	int mailbox; /* -1: not given */
};

static void cli_route_usage(FILE *out)
{
	fputs("usage: mailwerk route add ADDRESS [--mailbox] [-c FILE]\n"
	      "       mailwerk route set ADDRESS|ID --mailbox|--no-mailbox [-c FILE]\n"
	      "       mailwerk route del ADDRESS|ID [-c FILE]\n"
	      "       mailwerk route list [-c FILE]\n"
	      "\n"
	      "Mail to ADDRESS (local@domain, or *@domain for every address of the domain) is stored for the\n"
	      "applications: GET /emails/receiving shows it and an email.received webhook announces it. The\n"
	      "domain must be local and its receiving capability on. Without --mailbox the route takes the\n"
	      "mail instead of the user or alias the address would deliver to; with it, the mail goes there\n"
	      "as well. A route for an address wins over the domain's; a user or alias of the exact address\n"
	      "wins over the domain's route.\n"
	      "\n"
	      "  --mailbox          deliver to the address's mailbox or alias as well\n"
	      "  --no-mailbox       (set) to the applications only\n"
	      "  -c, --config FILE  configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "  -h, --help         show this help\n",
	      out);
}

static void cli_route_print(const struct users_route *r)
{
	printf("%s  %s%s\n", r->id, r->address, r->mailbox ? "  (and the mailbox)" : "");
}

static int cli_route_run(struct users *u, const void *arg)
{
	const struct cli_route_args *args = arg;
	const char *err = NULL;
	struct users_route r;
	enum result res = RESULT_OK;
	switch (args->action) {
	case CLI_ROUTE_ADD:
		if ((res = users_route_add(u, args->address, args->mailbox == 1, &r, &err)) == RESULT_OK) {
			printf("route ");
			cli_route_print(&r);
		}
		break;
	case CLI_ROUTE_SET:
		if ((res = users_route_set_mailbox(u, args->address, args->mailbox == 1, &err)) == RESULT_OK &&
		    (res = users_route_get(u, args->address, &r, &err)) == RESULT_OK) {
			printf("route ");
			cli_route_print(&r);
		}
		break;
	case CLI_ROUTE_DEL:
		if ((res = users_route_del(u, args->address, &err)) == RESULT_OK)
			printf("deleted route %s\n", args->address);
		break;
	case CLI_ROUTE_LIST: {
		/* newest first, a page at a time */
		char after[USERS_ROUTE_ID_LEN + 1] = "";
		bool more = true;
		while (res == RESULT_OK && more) {
			struct users_route *list;
			size_t n;
			res = users_route_page(u, 100, after[0] ? after : NULL, NULL, &list, &n, &more, &err);
			for (size_t i = 0; res == RESULT_OK && i < n; i++)
				cli_route_print(&list[i]);
			if (res == RESULT_OK && n > 0)
				snprintf(after, sizeof(after), "%s", list[n - 1].id);
			if (res == RESULT_OK)
				free(list);
			more = more && n > 0;
		}
		break;
	}
	}
	if (res != RESULT_OK) {
		cli_error("%s", err);
		return CLI_EXIT_RUNTIME;
	}
	return CLI_EXIT_OK;
}

int cli_route_main(int argc, char **argv)
{
	enum { OPT_MAILBOX = 256, OPT_NO_MAILBOX };
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"mailbox", no_argument, NULL, OPT_MAILBOX},
		{"no-mailbox", no_argument, NULL, OPT_NO_MAILBOX},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cli_route_args args = {.mailbox = -1};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (c == 'c') {
			args.conf_path = optarg;
		} else if (c == OPT_MAILBOX || c == OPT_NO_MAILBOX) {
			args.mailbox = c == OPT_MAILBOX;
		} else if (c == 'h') {
			cli_route_usage(stdout);
			return CLI_EXIT_OK;
		} else {
			return cli_option_error("route", c, argv);
		}
	}
	int npos = argc - optind;
	const char *cmd = npos > 0 ? argv[optind] : "";
	if (strcmp(cmd, "add") == 0 && npos == 2 && args.mailbox != 0) {
		args.action = CLI_ROUTE_ADD;
	} else if (strcmp(cmd, "set") == 0 && npos == 2 && args.mailbox >= 0) {
		args.action = CLI_ROUTE_SET;
	} else if (strcmp(cmd, "del") == 0 && npos == 2 && args.mailbox < 0) {
		args.action = CLI_ROUTE_DEL;
	} else if (strcmp(cmd, "list") == 0 && npos == 1 && args.mailbox < 0) {
		args.action = CLI_ROUTE_LIST;
	} else {
		cli_error("expected: route add ADDRESS [--mailbox], route set ADDRESS --mailbox|--no-mailbox, route del "
			  "ADDRESS or route list; see: mailwerk route --help");
		return CLI_EXIT_USAGE;
	}
	args.address = npos > 1 ? argv[optind + 1] : NULL;
	return cli_with_users(args.conf_path, cli_route_run, &args);
}

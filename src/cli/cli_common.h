/* cli_common.h — what every `mailwerk` command shares: exit codes, error output, finding the setup. */
#ifndef MAILWERK_CLI_COMMON_H
#define MAILWERK_CLI_COMMON_H

#include <stdbool.h>

struct conf;

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_RUNTIME = 1, /* the command was understood but failed */
	CLI_EXIT_USAGE = 2,   /* bad command line */
	CLI_EXIT_NOT_RUNNING = 3, /* `status`: no server answers on the control socket */
};

#define CLI_DEFAULT_CONF "./var/mailwerk.conf"

/* Prints "mailwerk: <message>" and a newline to stderr: errors are one clear line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* After getopt_long (with opterr = 0 and an optstring starting with ':') returned ':' or '?': prints
 * the one-line error for family's command and returns CLI_EXIT_USAGE. */
int cli_option_error(const char *family, int c, char **argv);

/* Loads the configuration (path NULL = CLI_DEFAULT_CONF) with -o overrides; prints the error and
 * returns NULL on failure. */
struct conf *cli_conf_load(const char *path, char *const *overrides, unsigned n_overrides);

/* For commands that touch the data directory: loads the configuration and, when [server] user is
 * set, becomes that user (from root), so that files SQLite creates belong to the server's user. */
struct conf *cli_data_conf_load(const char *path);

struct users;
/* Runs fn with the users database of the setup at conf_path (NULL = default), then makes sure what
 * fn printed really reached stdout: a full disk or closed pipe must not look like success. */
typedef int cli_users_fn(struct users *u, const void *arg);
int cli_with_users(const char *conf_path, cli_users_fn *fn, const void *arg);

/* Each command family: argv[0] is the family name ("user", "queue", ...). Options may come before or
 * after positional arguments (getopt_long permutes; callers reset optind = 0 first). Returns a
 * cli_exit code. */
int cli_init_main(int argc, char **argv);
int cli_serve_main(int argc, char **argv);
int cli_user_main(int argc, char **argv);
int cli_domain_main(int argc, char **argv);
int cli_alias_main(int argc, char **argv);
int cli_route_main(int argc, char **argv);
int cli_queue_main(int argc, char **argv);
int cli_resolve_main(int argc, char **argv);
int cli_dkim_main(int argc, char **argv);
int cli_spf_main(int argc, char **argv);
int cli_dns_main(int argc, char **argv);
int cli_tls_main(int argc, char **argv);
int cli_apikey_main(int argc, char **argv);
int cli_webhook_main(int argc, char **argv);
int cli_suppression_main(int argc, char **argv);
int cli_auth_main(int argc, char **argv);
int cli_config_main(int argc, char **argv);
int cli_status_main(int argc, char **argv);
int cli_acme_main(int argc, char **argv);

#endif

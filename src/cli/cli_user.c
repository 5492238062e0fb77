/* cli_user.c — `mailwerk user add|passwd|del|list|quota|admin`: accounts in DATA_DIR/mailwerk.db.
 * Owns where a new password comes from (stdin, a terminal prompt, an imported hash, or generated) and makes sure
 * no password is ever printed, except a generated one, once. */
#include "cli/cli_common.h"

#include <crypt.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "conf/conf.h"
#include "mailbox/users.h"
#include "util/addr.h"

/* The longest line --password-stdin accepts; crypt(3) itself stops below CRYPT_MAX_PASSPHRASE_SIZE. */
#define CLI_USER_PASSWORD_LINE_MAX 1024
#define CLI_USER_PASSWORD_BUF (CLI_USER_PASSWORD_LINE_MAX + 2) /* + '\r' of a CRLF, + NUL */

enum cli_user_action {
	CLI_USER_ADD,
	CLI_USER_PASSWD,
	CLI_USER_DEL,
	CLI_USER_LIST,
	CLI_USER_QUOTA,
	CLI_USER_ADMIN,
};

struct cli_user_args {
	enum cli_user_action action;
	const char *conf_path;
	const char *address;
	const char *import_hash; /* --password-hash */
	bool password_stdin;     /* --password-stdin */
	uint64_t quota;          /* user quota: octets, 0 = none */
	bool admin;              /* add --admin, or admin ADDRESS yes: may sign in to the dashboard */
};

static void cli_user_usage(FILE *out)
{
	fputs("usage: mailwerk user add ADDRESS [--admin] [--password-stdin | --password-hash HASH] [-c FILE]\n"
	      "       mailwerk user passwd ADDRESS [--password-stdin | --password-hash HASH] [-c FILE]\n"
	      "       mailwerk user del ADDRESS [-c FILE]\n"
	      "       mailwerk user list [-c FILE]\n"
	      "       mailwerk user quota ADDRESS SIZE|none [-c FILE]   (SIZE like 500M or 2G)\n"
	      "       mailwerk user admin ADDRESS yes|no [-c FILE]      (may sign in to the web dashboard)\n"
	      "\n"
	      "Without --password-stdin or --password-hash the password is asked for twice when stdin is a\n"
	      "terminal; otherwise a random one is generated and printed once.\n"
	      "\n"
	      "  -c, --config FILE         configuration file (default " CLI_DEFAULT_CONF ")\n"
	      "      --password-stdin      read the password from the first line of stdin\n"
	      "      --password-hash HASH  store an existing crypt hash: $y$ (yescrypt), $2b$ (bcrypt)\n"
	      "                            or $6$ (SHA-512 crypt)\n"
	      "      --admin               (add) the user may sign in to the web dashboard\n"
	      "  -h, --help                show this help\n",
	      out);
}

/* Empty on purpose: its only job is to make read(2) fail with EINTR (no SA_RESTART), so the prompt
 * can put the terminal's echo back before the process goes away. */
static void cli_user_signal_ignore(int sig)
{
	(void)sig;
}

static const char cli_user_interrupted[] = "password entry interrupted";

/* Reads one line from stdin into buf (size >= CLI_USER_PASSWORD_BUF), byte by byte so nothing after
 * the line is consumed and no stdio buffer keeps a copy. Strips "\n" or "\r\n". NULL on success. */
static const char *cli_user_line_read(char *buf, size_t size)
{
	size_t len = 0;
	for (;;) {
		char c;
		ssize_t n = read(STDIN_FILENO, &c, 1);
		if (n < 0 && errno == EINTR)
			return cli_user_interrupted;
		if (n < 0)
			return strerror(errno);
		if (n == 0 || c == '\n')
			break;
		if (c == '\0')
			return "the password contains a NUL byte";
		/* one byte over the limit may still be the '\r' of a CRLF */
		if (len + 1 >= size || len > CLI_USER_PASSWORD_LINE_MAX)
			return "the password is longer than 1024 bytes";
		buf[len++] = c;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (len > CLI_USER_PASSWORD_LINE_MAX)
		return "the password is longer than 1024 bytes";
	if (len == 0)
		return "the password is empty";
	/* libxcrypt refuses longer phrases; say so here rather than fail later with "cannot hash" */
	if (len >= CRYPT_MAX_PASSPHRASE_SIZE)
		return "the password is longer than crypt(3) accepts (511 bytes)";
	return NULL;
}

/* Prompts on stderr and reads a line from the terminal on stdin with echo off. The terminal settings
 * and the signal dispositions are restored whatever happens. NULL on success. */
static const char *cli_user_tty_read(const char *prompt, char *buf, size_t size)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction old_sa[sizeof(sigs) / sizeof(sigs[0])];
	struct termios old_tio, quiet;
	if (tcgetattr(STDIN_FILENO, &old_tio) != 0)
		return strerror(errno);
	quiet = old_tio;
	quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL; /* the Enter key still moves to the next line */

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_user_signal_ignore;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old_sa[i]);

	const char *err = NULL;
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
		err = strerror(errno);
	else
		err = cli_user_line_read(buf, size);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old_tio);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	if (err == cli_user_interrupted)
		fputc('\n', stderr); /* ECHONL did not run: end the prompt line */
	return err;
}

/* Produces hash_r for args: the imported hash, or a yescrypt hash of a password read from stdin,
 * asked for on the terminal, or generated (then copied to generated_r for the one-time print). */
static int cli_user_hash_obtain(const struct cli_user_args *args, char hash_r[USERS_HASH_MAX],
				char generated_r[USERS_PASSWORD_GEN_LEN + 1])
{
	generated_r[0] = '\0';
	if (args->import_hash) {
		/* validated while parsing the command line */
		snprintf(hash_r, USERS_HASH_MAX, "%s", args->import_hash);
		return CLI_EXIT_OK;
	}

	char pw[CLI_USER_PASSWORD_BUF];
	int rc = CLI_EXIT_OK;
	const char *err = NULL;
	if (args->password_stdin) {
		err = cli_user_line_read(pw, sizeof(pw));
		if (err) {
			cli_error("--password-stdin: %s", err);
			rc = CLI_EXIT_RUNTIME;
		}
	} else if (isatty(STDIN_FILENO)) {
		char again[sizeof(pw)];
		char prompt[ADDR_TEXT_MAX + 32];
		snprintf(prompt, sizeof(prompt), "New password for %s: ", args->address);
		err = cli_user_tty_read(prompt, pw, sizeof(pw));
		if (!err)
			err = cli_user_tty_read("Retype the password: ", again, sizeof(again));
		if (err) {
			cli_error("%s", err);
			rc = CLI_EXIT_RUNTIME;
		} else if (strcmp(pw, again) != 0) {
			cli_error("the passwords do not match; nothing was changed");
			rc = CLI_EXIT_RUNTIME;
		}
		OPENSSL_cleanse(again, sizeof(again));
	} else {
		if (users_password_generate(pw, USERS_PASSWORD_GEN_LEN + 1) != RESULT_OK) {
			cli_error("cannot generate a password: the random number generator failed");
			rc = CLI_EXIT_RUNTIME;
		} else {
			memcpy(generated_r, pw, USERS_PASSWORD_GEN_LEN + 1);
		}
	}
	if (rc == CLI_EXIT_OK && users_hash_password(pw, hash_r) != RESULT_OK) {
		cli_error("cannot hash the password (libcrypt failed)");
		rc = CLI_EXIT_RUNTIME;
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rc != CLI_EXIT_OK)
		OPENSSL_cleanse(generated_r, USERS_PASSWORD_GEN_LEN + 1);
	return rc;
}

static void cli_user_list_print(const char *name, void *arg)
{
	(void)arg;
	fputs(name, stdout);
	fputc('\n', stdout);
}

/* For messages only: the library folds the domain the same way when it stores it. */
static void cli_user_domain_fold(const char *domain, char out[ADDR_DOMAIN_MAX + 1])
{
	size_t i = 0;
	for (; domain[i] && i < ADDR_DOMAIN_MAX; i++)
		out[i] = (domain[i] >= 'A' && domain[i] <= 'Z') ? (char)(domain[i] - 'A' + 'a') : domain[i];
	out[i] = '\0';
}

static int cli_user_add(struct users *u, const struct cli_user_args *args)
{
	struct addr a;
	const char *err = NULL;
	if (addr_parse_mailbox(args->address, strlen(args->address), ADDR_ALLOW_UTF8, &a, &err) != ADDR_OK)
		return CLI_EXIT_USAGE; /* checked while parsing the command line */

	/* Check what can be checked before asking for a password nobody will use. */
	char domain[ADDR_DOMAIN_MAX + 1];
	cli_user_domain_fold(addr_domain(&a), domain);
	enum result r = users_domain_is_local(u, domain);
	if (r == RESULT_TEMPFAIL) {
		cli_error("cannot look up domain %s in the database", domain);
		return CLI_EXIT_RUNTIME;
	}
	if (r == RESULT_PERMFAIL) {
		cli_error("domain %s is not local; add it with: mailwerk domain add %s", domain, domain);
		return CLI_EXIT_RUNTIME;
	}
	char hash[USERS_HASH_MAX];
	r = users_user_hash(u, args->address, hash, sizeof(hash), NULL, &err);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (r == RESULT_OK) {
		cli_error("user %s already exists; to change its password: mailwerk user passwd %s", args->address,
			  args->address);
		return CLI_EXIT_RUNTIME;
	}
	if (r == RESULT_TEMPFAIL) {
		cli_error("%s", err);
		return CLI_EXIT_RUNTIME;
	}

	char generated[USERS_PASSWORD_GEN_LEN + 1];
	int rc = cli_user_hash_obtain(args, hash, generated);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = users_user_add(u, args->address, hash, &err);
	if (r == RESULT_OK && args->admin)
		r = users_user_set_admin(u, args->address, true, &err);
	if (r != RESULT_OK) {
		cli_error("%s", err);
		OPENSSL_cleanse(generated, sizeof(generated));
		return CLI_EXIT_RUNTIME;
	}
	printf("added user %.*s@%s%s\n", (int)a.local_len, a.text, domain, args->admin ? " (admin)" : "");
	if (generated[0])
		printf("password: %s\n", generated);
	OPENSSL_cleanse(generated, sizeof(generated));
	return CLI_EXIT_OK;
}

static int cli_user_passwd(struct users *u, const struct cli_user_args *args)
{
	const char *err = NULL;
	char hash[USERS_HASH_MAX];
	enum result r = users_user_hash(u, args->address, hash, sizeof(hash), NULL, &err);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (r != RESULT_OK) {
		cli_error("%s", err);
		return CLI_EXIT_RUNTIME;
	}
	char generated[USERS_PASSWORD_GEN_LEN + 1];
	int rc = cli_user_hash_obtain(args, hash, generated);
	if (rc != CLI_EXIT_OK)
		return rc;
	r = users_user_set_hash(u, args->address, hash, &err);
	if (r != RESULT_OK) {
		cli_error("%s", err);
		OPENSSL_cleanse(generated, sizeof(generated));
		return CLI_EXIT_RUNTIME;
	}
	printf("changed the password of %s\n", args->address);
	if (generated[0])
		printf("password: %s\n", generated);
	OPENSSL_cleanse(generated, sizeof(generated));
	return CLI_EXIT_OK;
}

static int cli_user_run(struct users *u, const void *arg)
{
	const struct cli_user_args *args = arg;
	const char *err = NULL;
	switch (args->action) {
	case CLI_USER_ADD:
		return cli_user_add(u, args);
	case CLI_USER_PASSWD:
		return cli_user_passwd(u, args);
	case CLI_USER_DEL:
		if (users_user_del(u, args->address, &err) != RESULT_OK) {
			cli_error("%s", err);
			return CLI_EXIT_RUNTIME;
		}
		printf("deleted user %s\n", args->address);
		return CLI_EXIT_OK;
	case CLI_USER_QUOTA:
		if (users_user_set_quota(u, args->address, args->quota, &err) != RESULT_OK) {
			cli_error("%s", err);
			return CLI_EXIT_RUNTIME;
		}
		if (args->quota == 0)
			printf("user %s has no quota\n", args->address);
		else
			printf("user %s: quota %llu octets\n", args->address, (unsigned long long)args->quota);
		return CLI_EXIT_OK;
	case CLI_USER_ADMIN:
		if (users_user_set_admin(u, args->address, args->admin, &err) != RESULT_OK) {
			cli_error("%s", err);
			return CLI_EXIT_RUNTIME;
		}
		printf("user %s %s sign in to the dashboard\n", args->address, args->admin ? "may" : "may not");
		return CLI_EXIT_OK;
	case CLI_USER_LIST:
		if (users_user_list(u, cli_user_list_print, NULL, &err) != RESULT_OK) {
			cli_error("%s", err);
			return CLI_EXIT_RUNTIME;
		}
		return CLI_EXIT_OK;
	}
	return CLI_EXIT_USAGE;
}

/* Parses argv into args. Returns -1 to go on, or the exit code (help printed, or a usage error). */
static int cli_user_args_parse(int argc, char **argv, struct cli_user_args *args)
{
	enum { OPT_PASSWORD_STDIN = 256, OPT_PASSWORD_HASH, OPT_ADMIN };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
		{ "password-hash", required_argument, NULL, OPT_PASSWORD_HASH },
		{ "admin", no_argument, NULL, OPT_ADMIN },
		{ NULL, 0, NULL, 0 },
	};
	memset(args, 0, sizeof(*args));
	optind = 0; /* glibc: 0 re-initialises, so a second call in one process parses afresh */
	opterr = 0; /* our own one-line errors instead of getopt's, which would start with "user:" */
	int c;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			args->conf_path = optarg;
			break;
		case 'h':
			cli_user_usage(stdout);
			return CLI_EXIT_OK;
		case OPT_PASSWORD_STDIN:
			args->password_stdin = true;
			break;
		case OPT_PASSWORD_HASH:
			args->import_hash = optarg;
			break;
		case OPT_ADMIN:
			args->admin = true;
			break;
		default:
			return cli_option_error("user", c, argv);
		}
	}

	int npos = argc - optind;
	if (npos < 1) {
		cli_error("missing command (add, passwd, del, list, quota or admin); see: mailwerk user --help");
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int want;
	if (strcmp(cmd, "add") == 0) {
		args->action = CLI_USER_ADD;
		want = 1;
	} else if (strcmp(cmd, "passwd") == 0) {
		args->action = CLI_USER_PASSWD;
		want = 1;
	} else if (strcmp(cmd, "del") == 0) {
		args->action = CLI_USER_DEL;
		want = 1;
	} else if (strcmp(cmd, "list") == 0) {
		args->action = CLI_USER_LIST;
		want = 0;
	} else if (strcmp(cmd, "quota") == 0) {
		args->action = CLI_USER_QUOTA;
		want = 2;
	} else if (strcmp(cmd, "admin") == 0) {
		args->action = CLI_USER_ADMIN;
		want = 2;
	} else {
		cli_error("unknown command \"%s\" (add, passwd, del, list, quota or admin); see: mailwerk user --help", cmd);
		return CLI_EXIT_USAGE;
	}
	if (npos - 1 < want) {
		cli_error("user %s: missing ADDRESS; see: mailwerk user --help", cmd);
		return CLI_EXIT_USAGE;
	}
	if (npos - 1 > want) {
		cli_error("user %s: unexpected argument \"%s\"; see: mailwerk user --help", cmd, argv[optind + 1 + want]);
		return CLI_EXIT_USAGE;
	}
	if (want)
		args->address = argv[optind + 1];
	if (args->action == CLI_USER_QUOTA) {
		const char *size = argv[optind + 2];
		const char *err = strcmp(size, "none") == 0 ? NULL : conf_parse_size(size, &args->quota);
		if (err != NULL) {
			cli_error("user quota: \"%s\": %s (or none)", size, err);
			return CLI_EXIT_USAGE;
		}
	}

	bool admin_option = args->admin;
	if (args->action == CLI_USER_ADMIN) {
		const char *v = argv[optind + 2];
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
			cli_error("user admin: \"%s\": say yes or no", v);
			return CLI_EXIT_USAGE;
		}
		args->admin = strcmp(v, "yes") == 0;
	}
	if (admin_option && args->action != CLI_USER_ADD) {
		cli_error("--admin belongs to user add; to change an existing user: mailwerk user admin ADDRESS yes|no");
		return CLI_EXIT_USAGE;
	}
	bool sets_password = args->action == CLI_USER_ADD || args->action == CLI_USER_PASSWD;
	if (!sets_password && (args->password_stdin || args->import_hash)) {
		cli_error("user %s takes no password option", cmd);
		return CLI_EXIT_USAGE;
	}
	if (args->password_stdin && args->import_hash) {
		cli_error("--password-stdin and --password-hash exclude each other");
		return CLI_EXIT_USAGE;
	}
	/* The hash is not echoed back: it is not a password, but it is still a secret worth guessing at. */
	if (args->import_hash && !users_hash_importable(args->import_hash)) {
		cli_error("--password-hash accepts only complete $y$ (yescrypt), $2b$ (bcrypt) or $6$ (SHA-512 crypt) hashes");
		return CLI_EXIT_USAGE;
	}
	if (args->action == CLI_USER_ADD) {
		struct addr a;
		const char *err = NULL;
		if (addr_parse_mailbox(args->address, strlen(args->address), ADDR_ALLOW_UTF8, &a, &err) != ADDR_OK) {
			cli_error("invalid address \"%s\": %s", args->address, err ? err : "syntax error");
			return CLI_EXIT_USAGE;
		}
		if (a.is_literal) {
			cli_error("invalid address \"%s\": an address literal cannot be a local domain", args->address);
			return CLI_EXIT_USAGE;
		}
	}
	return -1;
}

int cli_user_main(int argc, char **argv)
{
	struct cli_user_args args;
	int rc = cli_user_args_parse(argc, argv, &args);
	if (rc >= 0)
		return rc;
	return cli_with_users(args.conf_path, cli_user_run, &args);
}

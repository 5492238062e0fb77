/* test_conf.c — configuration loading: values, defaults, overrides, and errors that name file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

static char conf_path[64];

static const char base_conf[] = "[server]\n"
				"hostname = mx.example.org\n"
				"data_dir = /var/lib/mailwerk\n"
				"[tls]\n"
				"cert = /etc/mailwerk/cert.pem\n"
				"key = /etc/mailwerk/key.pem\n";

static void write_conf(const char *text)
{
	snprintf(conf_path, sizeof(conf_path), "/tmp/mailwerk_test_conf_%d.conf", (int)getpid());
	FILE *f = fopen(conf_path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct conf *load(const char *text, char *const *ov, size_t n, char *err)
{
	write_conf(text);
	struct conf *c = conf_load(conf_path, ov, n, err, 512);
	unlink(conf_path);
	return c;
}

static void test_defaults(void **state)
{
	(void)state;
	char err[512];
	struct conf *c = load(base_conf, NULL, 0, err);
	assert_non_null(c);
	assert_string_equal(c->hostname, "mx.example.org");
	assert_string_equal(c->user, "");
	assert_int_equal(c->max_message_size, 25 * 1024 * 1024);
	assert_int_equal(c->max_recipients, 100);
	assert_false(c->allow_insecure_auth);
	assert_int_equal(c->command_timeout, 300);
	assert_int_equal(c->listen[CONF_LISTEN_SMTP].count, 0);
	conf_free(c);
}

static void test_values_and_overrides(void **state)
{
	(void)state;
	char err[512];
	char text[1024];
	snprintf(text, sizeof(text), "%s[listen]\nsmtp = 127.0.0.1:2525, [::1]:2525\nsubmission = 127.0.0.1:2587\n"
		 "[smtp]\nmax_message_size = 10M\ncommand_timeout = 2m\nallow_insecure_auth = yes\n", base_conf);
	char *ov[] = {"listen.submission=", "smtp.max_recipients=250", "server.hostname=other.example"};
	struct conf *c = load(text, ov, 3, err);
	assert_non_null(c);
	assert_int_equal(c->listen[CONF_LISTEN_SMTP].count, 2);
	assert_string_equal(c->listen[CONF_LISTEN_SMTP].addrs[1].text, "[::1]:2525");
	assert_int_equal(c->listen[CONF_LISTEN_SUBMISSION].count, 0); /* disabled by -o */
	assert_int_equal(c->max_message_size, 10 * 1024 * 1024);
	assert_int_equal(c->command_timeout, 120);
	assert_true(c->allow_insecure_auth);
	assert_int_equal(c->max_recipients, 250);
	assert_string_equal(c->hostname, "other.example");
	conf_free(c);
}

/* Every error says FILE:LINE: and what is wrong. */
static void test_errors_name_file_and_line(void **state)
{
	(void)state;
	static const struct {
		const char *append;
		int line;
		const char *words;
	} cases[] = {
		{"[smtp]\nmax_recipients = lots\n", 8, "whole number"},
		{"[smtp]\nmax_recipients = 5\n", 8, "out of range"},
		{"[smtp]\nbogus_key = 1\n", 8, "unknown key"},
		{"[nosuch]\na = 1\n", 8, "unknown section"},
		{"[listen]\nsmtp = 127.0.0.1\n", 8, "address:port"},
		{"[listen]\nsmtp = 127.0.0.1:99999\n", 8, "port"},
		{"[listen]\nsmtp = localhost:25\n", 8, "numeric"},
		{"[listen]\nsmtp = ::1:25\n", 8, "[address]:port"},
		{"[listen]\nsmtp = 127.0.0.1:25,,127.0.0.2:25\n", 8, "empty address"},
		{"[smtp]\nallow_insecure_auth = maybe\n", 8, "yes or no"},
		{"[smtp]\nmax_message_size = 10X\n", 8, "size"},
		{"[smtp]\ncommand_timeout = -5\n", 8, "duration"},
		{"[smtp]\ncommand_timeout = 0\n", 8, "range"},
		{"[server]\ndata_dir = relative/path\n", 8, "absolute"},
		{"[server]\nhostname = bad host\n", 8, "host name"},
		{"this is not ini\n", 7, "not a valid line"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024], err[512] = "", want[128];
		snprintf(text, sizeof(text), "%s%s", base_conf, cases[i].append);
		struct conf *c = load(text, NULL, 0, err);
		assert_null(c);
		snprintf(want, sizeof(want), "%s:%d: ", conf_path, cases[i].line);
		if (strncmp(err, want, strlen(want)) != 0 || strstr(err, cases[i].words) == NULL)
			fail_msg("case %zu: got \"%s\", want prefix \"%s\" and \"%s\"", i, err, want, cases[i].words);
	}
}

static void test_missing_and_override_errors(void **state)
{
	(void)state;
	char err[512];
	assert_null(load("[server]\nhostname = a.example\n", NULL, 0, err));
	assert_non_null(strstr(err, "data_dir is required"));
	char *ov1[] = {"smtp.max_recipients"};
	assert_null(load(base_conf, ov1, 1, err));
	assert_non_null(strstr(err, "-o smtp.max_recipients: expected section.key=value"));
	char *ov2[] = {"smtp.nokey=1"};
	assert_null(load(base_conf, ov2, 1, err));
	assert_non_null(strstr(err, "unknown key"));
	assert_null(conf_load("/nonexistent/mailwerk.conf", NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/mailwerk.conf: cannot open"));
}

static void test_value_parsers(void **state)
{
	(void)state;
	uint64_t v;
	unsigned s;
	bool b;
	assert_null(conf_parse_size("512K", &v));
	assert_int_equal(v, 512 * 1024);
	assert_null(conf_parse_size("1G", &v));
	assert_int_equal(v, 1024ULL * 1024 * 1024);
	assert_non_null(conf_parse_size("", &v));
	assert_non_null(conf_parse_size("1KB", &v));
	assert_non_null(conf_parse_size("99999999999999999999999", &v));
	assert_non_null(conf_parse_size("18446744073709551615G", &v));
	assert_null(conf_parse_duration("1d", &s));
	assert_int_equal(s, 86400);
	assert_non_null(conf_parse_duration("5 m", &s));
	assert_non_null(conf_parse_duration("99999999999d", &s));
	assert_null(conf_parse_bool("ON", &b));
	assert_true(b);
	assert_non_null(conf_parse_bool("", &b));
	struct conf_addr *a;
	size_t n;
	assert_null(conf_parse_listen("", &a, &n));
	assert_int_equal(n, 0);
	assert_null(conf_parse_listen(" 127.0.0.1:25 ,[::1]:587", &a, &n));
	assert_int_equal(n, 2);
	free(a);
	assert_non_null(conf_parse_listen("[::1:25", &a, &n));
	assert_non_null(conf_parse_listen("127.0.0.1:", &a, &n));
	assert_non_null(conf_parse_listen("127.0.0.1:0", &a, &n));
	assert_non_null(conf_parse_listen("127.0.0.1:25x", &a, &n));
	assert_non_null(conf_parse_listen("300.0.0.1:25", &a, &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_and_overrides),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_missing_and_override_errors),
		cmocka_unit_test(test_value_parsers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

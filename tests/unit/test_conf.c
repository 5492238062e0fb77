/* test_conf.c — configuration loading: values, defaults, overrides, and errors that name file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "test_util.h"

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

/* A password file with exactly these octets; its path in path_r. */
static void write_secret(char path_r[64], const char *name, const char *bytes, size_t len)
{
	snprintf(path_r, 64, "/tmp/mailwerk_test_conf_%d_%s", (int)getpid(), name);
	FILE *f = fopen(path_r, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
}

/* base_conf plus append must fail with an error that starts with prefix and contains words. */
static void expect_error(const char *append, char *const *ov, size_t n, const char *prefix, const char *words)
{
	char text[2048], err[512] = "";
	snprintf(text, sizeof(text), "%s%s", base_conf, append);
	struct conf *c = load(text, ov, n, err);
	if (c != NULL) {
		conf_free(c);
		fail_msg("loaded, want an error with \"%s\" (%s)", words, append);
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, words) == NULL)
		fail_msg("got \"%s\", want prefix \"%s\" and \"%s\"", err, prefix, words);
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
	/* outbound delivery, with no [relay] or [throttle] section */
	assert_int_equal(c->remote_port, 25);
	assert_int_equal(c->delivery_tls, CONF_TLS_OPPORTUNISTIC);
	assert_int_equal(c->out_max_connections, 100);
	assert_int_equal(c->out_max_per_domain, 10);
	assert_int_equal(c->delay_warning_time, 4 * 3600);
	assert_string_equal(c->relay_host, "");
	assert_int_equal(c->relay_port, 587);
	assert_int_equal(c->relay_tls, CONF_RELAY_TLS_STARTTLS);
	assert_string_equal(c->relay_auth_user, "");
	assert_string_equal(c->relay_auth_password, "");
	assert_string_equal(c->relay_ca_file, "");
	assert_int_equal(c->throttle_count, 0);
	assert_null(conf_throttle_find(c, "example.com"));
	assert_string_equal(conf_tls_policy_str(c->delivery_tls), "opportunistic");
	assert_string_equal(conf_relay_tls_str(c->relay_tls), "starttls");
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

static void test_delivery_keys(void **state)
{
	(void)state;
	char err[512], text[1024];
	snprintf(text, sizeof(text), "%s[delivery]\nremote_port = 2526\ntls = Required\nmax_connections = 50\n"
		 "max_connections_per_domain = 50\ndelay_warning_time = 0\n", base_conf);
	struct conf *c = load(text, NULL, 0, err);
	assert_non_null(c);
	assert_int_equal(c->remote_port, 2526);
	assert_int_equal(c->delivery_tls, CONF_TLS_REQUIRED);
	assert_int_equal(c->out_max_connections, 50);
	assert_int_equal(c->out_max_per_domain, 50); /* equal is fine */
	assert_int_equal(c->delay_warning_time, 0);  /* disabled */
	conf_free(c);

	char *ov[] = {"delivery.tls=none", "delivery.delay_warning_time=1d", "delivery.max_connections=10000",
		      "delivery.max_connections_per_domain=1000", "delivery.remote_port=65535"};
	c = load(base_conf, ov, 5, err);
	assert_non_null(c);
	assert_int_equal(c->delivery_tls, CONF_TLS_NONE);
	assert_int_equal(c->delay_warning_time, 86400);
	assert_int_equal(c->out_max_connections, 10000);
	assert_int_equal(c->out_max_per_domain, 1000);
	assert_int_equal(c->remote_port, 65535);
	conf_free(c);
}

static void test_auth_keys(void **state)
{
	(void)state;
	char err[512], text[1024];
	snprintf(text, sizeof(text), "%s[smtp]\ndmarc_action = report\ndkim_max_signatures = 2\n"
		 "[dkim]\ncanonicalization = simple\nexpiration = 7d\n", base_conf);
	struct conf *c = load(text, NULL, 0, err);
	assert_non_null(c);
	assert_true(c->auth_checks);
	assert_int_equal(c->dmarc_action, CONF_DMARC_REPORT);
	assert_int_equal(c->dkim_max_signatures, 2);
	assert_true(c->dkim_sign);
	assert_false(c->dkim_header_relaxed);
	assert_false(c->dkim_body_relaxed);
	assert_int_equal(c->dkim_expiration, 7 * 86400);
	conf_free(c);

	char *ov[] = {"dkim.canonicalization=relaxed/simple", "smtp.dmarc_action=ENFORCE"};
	c = load(text, ov, 2, err);
	assert_non_null(c);
	assert_true(c->dkim_header_relaxed);
	assert_false(c->dkim_body_relaxed);
	assert_int_equal(c->dmarc_action, CONF_DMARC_ENFORCE);
	conf_free(c);

	c = load(base_conf, NULL, 0, err); /* the defaults */
	assert_non_null(c);
	assert_int_equal(c->dmarc_action, CONF_DMARC_ENFORCE);
	assert_true(c->dkim_header_relaxed && c->dkim_body_relaxed);
	assert_int_equal(c->dkim_max_signatures, 5);
	assert_int_equal(c->dkim_expiration, 0);
	assert_false(c->dmarc_reports);
	assert_string_equal(c->dmarc_report_from, "");
	assert_int_equal(c->dmarc_report_interval, 86400);
	conf_free(c);
	char *ov2[] = {"dmarc.reports=yes", "dmarc.report_from=reports@example.org", "dmarc.report_interval=10s"};
	c = load(base_conf, ov2, 3, err);
	assert_non_null(c);
	assert_true(c->dmarc_reports);
	assert_string_equal(c->dmarc_report_from, "reports@example.org");
	assert_int_equal(c->dmarc_report_interval, 10);
	conf_free(c);

	/* errors name the file, the line and what is wrong */
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "/tmp/mailwerk_test_conf_%d.conf:8:", (int)getpid());
	expect_error("[smtp]\ndmarc_action = drop\n", NULL, 0, prefix, "expected enforce or report");
	expect_error("[dkim]\ncanonicalization = relaxed/loose\n", NULL, 0, prefix, "expected relaxed/relaxed");
	expect_error("[dkim]\ncanonicalization = /relaxed\n", NULL, 0, prefix, "expected relaxed/relaxed");
	expect_error("[smtp]\ndkim_max_signatures = 0\n", NULL, 0, prefix, "dkim_max_signatures");
	expect_error("[dmarc]\nreport_from = not an address\n", NULL, 0, prefix, "report_from");
}

/* [tlsrpt]: TLS reports (RFC 8460) */
static void test_tlsrpt_keys(void **state)
{
	(void)state;
	char err[512];
	struct conf *c = load(base_conf, NULL, 0, err); /* the defaults */
	assert_non_null(c);
	assert_false(c->tlsrpt_reports);
	assert_string_equal(c->tlsrpt_report_from, "");
	assert_int_equal(c->tlsrpt_report_interval, 86400);
	assert_string_equal(c->tlsrpt_ca_file, "");
	conf_free(c);
	char *ov[] = {"tlsrpt.reports=yes", "tlsrpt.report_from=tls@example.org", "tlsrpt.report_interval=3s",
		      "tlsrpt.ca_file=/etc/ssl/test-ca.pem"};
	c = load(base_conf, ov, 4, err);
	assert_non_null(c);
	assert_true(c->tlsrpt_reports);
	assert_string_equal(c->tlsrpt_report_from, "tls@example.org");
	assert_int_equal(c->tlsrpt_report_interval, 3);
	assert_string_equal(c->tlsrpt_ca_file, "/etc/ssl/test-ca.pem");
	conf_free(c);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "/tmp/mailwerk_test_conf_%d.conf:8:", (int)getpid());
	expect_error("[tlsrpt]\nreports = sometimes\n", NULL, 0, prefix, "reports");
	expect_error("[tlsrpt]\nreport_from = not an address\n", NULL, 0, prefix, "report_from");
	expect_error("[tlsrpt]\nreport_interval = 2d\n", NULL, 0, prefix, "report_interval");
	expect_error("[tlsrpt]\nreport_interval = 0s\n", NULL, 0, prefix, "report_interval");
	expect_error("[tlsrpt]\nca_file = relative/ca.pem\n", NULL, 0, prefix, "absolute path");
	expect_error("[tlsrpt]\nbogus = 1\n", NULL, 0, prefix, "bogus");
}

/* [server] auth_*: the failed-login delays (milliseconds) and bans. */
static void test_login_penalty_keys(void **state)
{
	(void)state;
	char err[512], text[1024];
	struct conf *c = load(base_conf, NULL, 0, err); /* the defaults: Dovecot's 2 s to 15 s, ban after 10 for 1h */
	assert_non_null(c);
	assert_int_equal(c->auth_delay_initial, 2000);
	assert_int_equal(c->auth_delay_max, 15000);
	assert_int_equal(c->auth_ban_failures, 10);
	assert_int_equal(c->auth_ban_time, 3600);
	assert_int_equal(c->drain_timeout, 60); /* an upgrade's old sessions: a minute */
	conf_free(c);

	snprintf(text, sizeof(text), "%s[server]\nauth_delay_initial = 250ms\nauth_delay_max = 1m\nauth_ban_failures = 0\n"
		 "auth_ban_time = 30m\ndrain_timeout = 0\n", base_conf);
	c = load(text, NULL, 0, err);
	assert_non_null(c);
	assert_int_equal(c->auth_delay_initial, 250);
	assert_int_equal(c->auth_delay_max, 60000);
	assert_int_equal(c->auth_ban_failures, 0); /* no bans */
	assert_int_equal(c->auth_ban_time, 1800);
	assert_int_equal(c->drain_timeout, 0);
	conf_free(c);

	char *ov[] = {"server.auth_delay_initial=0", "server.auth_delay_max=0ms", "server.auth_ban_failures=100000",
		      "server.auth_ban_time=30d"};
	c = load(base_conf, ov, 4, err);
	assert_non_null(c);
	assert_int_equal(c->auth_delay_initial, 0);
	assert_int_equal(c->auth_delay_max, 0);
	assert_int_equal(c->auth_ban_failures, 100000);
	assert_int_equal(c->auth_ban_time, 30 * 86400);
	conf_free(c);
	char *ov2[] = {"server.auth_delay_initial=3", "server.auth_delay_max=300s"}; /* bare numbers are seconds */
	c = load(base_conf, ov2, 2, err);
	assert_non_null(c);
	assert_int_equal(c->auth_delay_initial, 3000);
	assert_int_equal(c->auth_delay_max, 300000);
	conf_free(c);

	char prefix[128];
	snprintf(prefix, sizeof(prefix), "/tmp/mailwerk_test_conf_%d.conf:8: [server] ", (int)getpid());
	static const struct {
		const char *line;
		const char *words;
	} cases[] = {
		{"auth_delay_initial = 61s", "out of range"},
		{"auth_delay_initial = 60001ms", "out of range"},
		{"auth_delay_max = 301s", "out of range"},
		{"auth_delay_max = 2h", "out of range"},
		{"auth_delay_initial = 1.5s", "expected a duration such as 250ms"},
		{"auth_delay_initial = -1s", "expected a duration"},
		{"auth_delay_initial = ms", "expected a duration"},
		{"auth_delay_initial = 2 s", "expected a duration"},
		{"auth_delay_initial = 2S", "expected a duration"},
		{"auth_delay_initial = 2d", "expected a duration"},
		{"auth_delay_initial = 2mss", "expected a duration"},
		{"auth_delay_initial = 0x10ms", "expected a duration"},
		{"auth_delay_initial = 4294967296ms", "too long"},
		{"auth_delay_initial = 99999999999999999999999s", "too long"},
		{"auth_delay_initial = 4294968s", "too long"},
		{"auth_ban_failures = 100001", "out of range"},
		{"auth_ban_failures = ten", "whole number"},
		{"auth_ban_time = 0", "out of range"},
		{"auth_ban_time = 31d", "out of range"},
		{"drain_timeout = 61m", "out of range"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[server]\n%s\n", cases[i].line); /* after base_conf: line 8 */
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}
	char file_prefix[128];
	snprintf(file_prefix, sizeof(file_prefix), "/tmp/mailwerk_test_conf_%d.conf: [server] ", (int)getpid());
	char *ov3[] = {"server.auth_delay_max=1s"};
	expect_error("", ov3, 1, file_prefix, "auth_delay_max (1000 ms) is shorter than [server] auth_delay_initial (2000 ms)");
	unsigned ms = 7;
	assert_null(conf_parse_duration_ms("250ms", &ms));
	assert_int_equal(ms, 250);
	assert_null(conf_parse_duration_ms("1h", &ms));
	assert_int_equal(ms, 3600000);
	assert_null(conf_parse_duration_ms("4294967295ms", &ms));
	assert_int_equal(ms, 4294967295u);
	assert_non_null(conf_parse_duration_ms("", &ms));
	assert_non_null(conf_parse_duration_ms("1194h", &ms)); /* past 2^32 ms */
	assert_non_null(conf_parse_duration_ms("5ms ", &ms));
}

static void test_relay_keys(void **state)
{
	(void)state;
	char err[512], text[1024], pw[64];
	write_secret(pw, "pw", "s3cret pass\r\nsecond line\n", 25);
	snprintf(text, sizeof(text), "%s[relay]\nhost = smtp.example.net:465\nauth_user = app@example.org\n"
		 "auth_password_file = %s\nca_file = /etc/mailwerk/relay-ca.pem\n", base_conf, pw);
	struct conf *c = load(text, NULL, 0, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->relay_host, "smtp.example.net");
	assert_int_equal(c->relay_port, 465);
	assert_int_equal(c->relay_tls, CONF_RELAY_TLS_IMPLICIT); /* the default on port 465 */
	assert_string_equal(c->relay_auth_user, "app@example.org");
	assert_string_equal(c->relay_auth_password, "s3cret pass"); /* the first line, without CR/LF */
	assert_string_equal(c->relay_ca_file, "/etc/mailwerk/relay-ca.pem");
	conf_free(c);

	/* -o works for every [relay] key, and the tls default follows the port it ends up with */
	char *ov1[] = {"relay.host=[2001:db8::25]:2525", "relay.auth_user=", "relay.auth_password_file="};
	c = load(text, ov1, 3, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->relay_host, "2001:db8::25");
	assert_int_equal(c->relay_port, 2525);
	assert_int_equal(c->relay_tls, CONF_RELAY_TLS_STARTTLS);
	assert_string_equal(c->relay_auth_user, "");
	assert_string_equal(c->relay_auth_password, "");
	conf_free(c);

	/* an explicit tls wins over the port's default; no port means 587 */
	char *ov2[] = {"relay.host=[192.0.2.7]", "relay.tls=implicit"};
	c = load(text, ov2, 2, err);
	assert_non_null(c);
	assert_string_equal(c->relay_host, "192.0.2.7");
	assert_int_equal(c->relay_port, 587);
	assert_int_equal(c->relay_tls, CONF_RELAY_TLS_IMPLICIT);
	conf_free(c);
	char *ov3[] = {"relay.tls=starttls"};
	c = load(text, ov3, 1, err);
	assert_non_null(c);
	assert_int_equal(c->relay_port, 465);
	assert_int_equal(c->relay_tls, CONF_RELAY_TLS_STARTTLS);
	conf_free(c);

	/* tls = none without credentials is allowed (a relay on a trusted network) */
	char *ov4[] = {"relay.host=relay.internal", "relay.tls=none", "relay.auth_user=", "relay.auth_password_file="};
	c = load(text, ov4, 4, err);
	assert_non_null(c);
	assert_string_equal(c->relay_host, "relay.internal");
	assert_int_equal(c->relay_tls, CONF_RELAY_TLS_NONE);
	assert_string_equal(conf_relay_tls_str(c->relay_tls), "none");
	conf_free(c);

	/* a password file without a line end, and one with a bare LF */
	write_secret(pw, "pw", "p@ss word ", 10);
	char *ov5[] = {"relay.host=smtp.example.net", "relay.auth_user=u", text};
	snprintf(text, sizeof(text), "relay.auth_password_file=%s", pw);
	c = load(base_conf, ov5, 3, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->relay_auth_password, "p@ss word "); /* spaces are part of it */
	conf_free(c);
	write_secret(pw, "pw", "x\ny\n", 4);
	c = load(base_conf, ov5, 3, err);
	assert_non_null(c);
	assert_string_equal(c->relay_auth_password, "x");
	conf_free(c);
	unlink(pw);
}

static void test_acme_keys(void **state)
{
	(void)state;
	char text[2048], err[512] = "";
	snprintf(text, sizeof(text), "%s[listen]\nhttp = 127.0.0.1:80\n[acme]\ndirectory = https://ca.example/dir\n"
		 "contact = ops@example.org\nnames = mx.example.org , mta-sts.example.org\nchallenge = TLS-ALPN-01\n"
		 "retry_schedule = 1s,1m\n", base_conf);
	char *ov[] = {"listen.https=127.0.0.1:443"};
	struct conf *c = load(text, ov, 1, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->acme_directory, "https://ca.example/dir");
	assert_string_equal(c->acme_contact, "ops@example.org");
	assert_string_equal(c->acme_names, "mx.example.org , mta-sts.example.org");
	assert_int_equal(c->acme_challenge, CONF_ACME_TLSALPN01);
	assert_int_equal(c->acme_retry_count, 2);
	assert_int_equal(c->acme_retry_schedule[1], 60);
	assert_false(c->acme_mta_sts_names);
	conf_free(c);
	/* off by default, and then no listener is needed */
	c = load(base_conf, NULL, 0, err);
	assert_non_null(c);
	assert_string_equal(c->acme_directory, "");
	assert_int_equal(c->acme_challenge, CONF_ACME_HTTP01);
	conf_free(c);
}

static void test_acme_errors(void **state)
{
	(void)state;
	char prefix[128];
	write_conf("");
	unlink(conf_path);
	snprintf(prefix, sizeof(prefix), "%s:8: [acme] ", conf_path);
	static const struct {
		const char *line;
		const char *words;
	} cases[] = {
		{"directory = http://ca.example/dir", "https"},
		{"directory = https://user@ca.example/dir", "user"},
		{"directory = ca.example", "http"},
		{"contact = not an address", ""},
		{"names = mx.example.org,,x.example.org", "comma-separated"},
		{"names = mx_example.org", ""},
		{"names = ,", "comma-separated"},
		{"challenge = dns-01", "http-01 or tls-alpn-01"},
		{"ca_file = relative.pem", "absolute"},
		{"retry_schedule = ", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char append[300];
		snprintf(append, sizeof(append), "[acme]\n%s\n", cases[i].line);
		expect_error(append, NULL, 0, prefix, cases[i].words);
	}
	/* a challenge without its listener: judged with every key in */
	char fprefix[128];
	snprintf(fprefix, sizeof(fprefix), "%s: [acme] challenge = ", conf_path);
	expect_error("[acme]\ndirectory = https://ca.example/dir\n", NULL, 0, fprefix, "[listen] http");
	expect_error("[acme]\ndirectory = https://ca.example/dir\nchallenge = tls-alpn-01\n", NULL, 0, fprefix,
		     "implicit-TLS listener");
}

/* [tls] next_key: empty by default; else a PEM private key, read at load, its file and line named */
static void test_tls_next_key(void **state)
{
	(void)state;
	char err[512] = "", key[64], junk[64], text[1024], prefix[128];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	snprintf(key, sizeof(key), "/tmp/mailwerk_test_conf_%d_next.pem", (int)getpid());
	FILE *f = fopen(key, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(k);
	static const char broken[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
	write_secret(junk, "junk", broken, sizeof(broken) - 1);
	char plain[64], plain_words[128];
	write_secret(plain, "plain", "hello\n", 6);
	snprintf(plain_words, sizeof(plain_words), "%s is not a PEM private key", plain);

	struct conf *c = load(base_conf, NULL, 0, err);
	assert_non_null(c);
	assert_string_equal(c->tls_next_key, "");
	conf_free(c);
	snprintf(text, sizeof(text), "%snext_key = %s\n", base_conf, key);
	c = load(text, NULL, 0, err);
	assert_non_null(c);
	assert_string_equal(c->tls_next_key, key);
	conf_free(c);
	char ov[128];
	snprintf(ov, sizeof(ov), "tls.next_key=%s", key);
	char *ovs[] = {ov};
	c = load(base_conf, ovs, 1, err);
	assert_non_null(c);
	assert_string_equal(c->tls_next_key, key);
	conf_free(c);

	write_conf("");
	unlink(conf_path);
	snprintf(prefix, sizeof(prefix), "%s:7: [tls] next_key = ", conf_path);
	char junk_words[128];
	snprintf(junk_words, sizeof(junk_words), "%s is not a PEM private key", junk);
	const struct {
		const char *value;
		const char *words;
	} cases[] = {
		{"next.pem", "must be an absolute path"},
		{"/nonexistent/next.pem", "cannot open /nonexistent/next.pem: No such file or directory"},
		{"/tmp", "/tmp is not a regular file of a key"},
		{junk, junk_words},
		{plain, plain_words},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "next_key = %s\n", cases[i].value);
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}
	unlink(key);
	unlink(junk);
	unlink(plain);
}

static void test_relay_errors(void **state)
{
	(void)state;
	char prefix[128], text[1024], pw[64], empty[64], longpw[64], nul[64];
	write_secret(pw, "pw", "secret\n", 7);
	write_secret(empty, "empty", "\nsecond line\n", 13);
	write_secret(nul, "nul", "sec\0ret\n", 8);
	char big[1100];
	memset(big, 'x', 1025);
	big[1025] = '\n';
	write_secret(longpw, "long", big, 1026);
	/* conf_path is known only after the first write; it is the same for every load */
	write_conf("");
	unlink(conf_path);
	snprintf(prefix, sizeof(prefix), "%s:8: [relay] ", conf_path);

	static const struct {
		const char *line;
		const char *words;
	} cases[] = {
		{"host = [::1", "']'"},
		{"host = [::1]x", "[address]:port"},
		{"host = 2001:db8::1", "brackets"},
		{"host = 2001:db8::1:25", "brackets"},
		{"host = smtp.example.com:0", "port must be 1-65535"},
		{"host = smtp.example.com:65536", "port must be 1-65535"},
		{"host = smtp.example.com:99999999999999999999", "port must be 1-65535"},
		{"host = smtp.example.com:", "port must be 1-65535"},
		{"host = smtp.example.com:-1", "port must be 1-65535"},
		{"host = smtp.example.com:25x", "port must be 1-65535"},
		{"host = :25", "host name"},
		{"host = smtp example.com", "host name"},
		{"host = smtp..example.com", "malformed"},
		{"host = [smtp.example.com]:587", "only IP addresses"},
		{"host = [IPv6:192.0.2.1]:25", "only IP addresses"},
		{"host = []:25", "only IP addresses"},
		{"host = [300.1.1.1]:25", "only IP addresses"},
		{"tls = ssl", "starttls, implicit or none"},
		{"auth_password_file = relative/pw", "absolute"},
		{"auth_password_file = /nonexistent/relay.pw", "cannot open /nonexistent/relay.pw: No such file or directory"},
		{"auth_password_file = /tmp", "/tmp is not a regular file"},
		{"ca_file = ca.pem", "absolute"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[relay]\n%s\n", cases[i].line);
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}

	/* the password file's first line must be there, short, and text */
	snprintf(text, sizeof(text), "[relay]\nauth_password_file = %s\n", empty);
	expect_error(text, NULL, 0, prefix, "is empty");
	snprintf(text, sizeof(text), "[relay]\nauth_password_file = %s\n", longpw);
	expect_error(text, NULL, 0, prefix, "longer than 1024 bytes");
	snprintf(text, sizeof(text), "[relay]\nauth_password_file = %s\n", nul);
	expect_error(text, NULL, 0, prefix, "NUL");
	if (geteuid() != 0) { /* root reads it anyway */
		chmod(pw, 0);
		snprintf(text, sizeof(text), "[relay]\nauth_password_file = %s\n", pw);
		char words[128];
		snprintf(words, sizeof(words), "cannot open %s: %s", pw, strerror(EACCES));
		expect_error(text, NULL, 0, prefix, words);
		chmod(pw, 0600);
	}

	/* rules between keys, checked once everything is in: they name the file and both keys */
	char file_prefix[128];
	snprintf(file_prefix, sizeof(file_prefix), "%s: [relay] ", conf_path);
	snprintf(text, sizeof(text), "[relay]\nhost = smtp.example.com\nauth_user = app\n");
	expect_error(text, NULL, 0, file_prefix, "auth_user is set but [relay] auth_password_file is not");
	snprintf(text, sizeof(text), "[relay]\nhost = smtp.example.com\nauth_password_file = %s\n", pw);
	expect_error(text, NULL, 0, file_prefix, "auth_password_file is set but [relay] auth_user is not");
	snprintf(text, sizeof(text), "[relay]\nhost = smtp.example.com\ntls = none\nauth_user = app\nauth_password_file = %s\n", pw);
	expect_error(text, NULL, 0, file_prefix, "clear text");
	/* the same reached by an override */
	snprintf(text, sizeof(text), "[relay]\nhost = smtp.example.com\nauth_user = app\nauth_password_file = %s\n", pw);
	char *ov1[] = {"relay.tls=none"};
	expect_error(text, ov1, 1, file_prefix, "clear text");
	char *ov2[] = {"relay.auth_password_file="};
	expect_error(text, ov2, 1, file_prefix, "auth_password_file is not");

	/* overrides: named in the error, hostile values refused */
	char *ov3[] = {"relay.host=[::1]:0"};
	expect_error("", ov3, 1, "-o relay.host=[::1]:0: ", "port");
	char *ov4[] = {"relay.auth_user=a\x01" "b"};
	expect_error("", ov4, 1, "-o relay.auth_user=", "control character");
	char longuser[300];
	snprintf(longuser, sizeof(longuser), "relay.auth_user=%0256d", 0);
	char *ov5[] = {longuser};
	expect_error("", ov5, 1, "-o relay.auth_user=", "too long");
	char longhost[400];
	memset(longhost, 'a', sizeof(longhost));
	memcpy(longhost, "relay.host=", 11);
	longhost[11 + 254] = '\0';
	char *ov6[] = {longhost};
	expect_error("", ov6, 1, "-o relay.host=", "too long");
	char *ov7[] = {"relay.host=smtp.example.com:25 "};
	expect_error("", ov7, 1, "-o relay.host=", "port must be 1-65535");
	char *ov8[] = {"relay.host=smtp.example.com :25"};
	expect_error("", ov8, 1, "-o relay.host=", "host name");

	unlink(pw);
	unlink(empty);
	unlink(longpw);
	unlink(nul);
}

static void test_delivery_errors(void **state)
{
	(void)state;
	write_conf("");
	unlink(conf_path);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s:8: [delivery] ", conf_path);
	static const struct {
		const char *line;
		const char *words;
	} cases[] = {
		{"remote_port = 0", "out of range"},
		{"remote_port = 65536", "out of range"},
		{"remote_port = 25x", "whole number"},
		{"tls = maybe", "opportunistic, required or none"},
		{"tls = ", "opportunistic, required or none"},
		{"max_connections = 0", "out of range"},
		{"max_connections = 10001", "out of range"},
		{"max_connections_per_domain = 0", "out of range"},
		{"max_connections_per_domain = 1001", "out of range"},
		{"delay_warning_time = 1w", "duration"},
		{"delay_warning_time = 91d", "out of range"},
		{"delay_warning_time = -1h", "duration"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), "[delivery]\n%s\n", cases[i].line);
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}
	char file_prefix[128];
	snprintf(file_prefix, sizeof(file_prefix), "%s: [delivery] ", conf_path);
	expect_error("[delivery]\nmax_connections = 5\n", NULL, 0, file_prefix,
		     "max_connections_per_domain = 10 is larger than [delivery] max_connections = 5");
	char *ov[] = {"delivery.max_connections_per_domain=101"};
	expect_error("", ov, 1, file_prefix, "max_connections_per_domain = 101 is larger than [delivery] max_connections = 100");
}

static void test_throttle_keys(void **state)
{
	(void)state;
	char err[512], text[1024];
	snprintf(text, sizeof(text), "%s[throttle]\nGMail.com = 600/h\nexample.net = 100/10m\nslow.example = 1000/d\n"
		 "fast.example = 5/s\nminute.example = 10/m\nsecs.example = 7/300\n", base_conf);
	struct conf *c = load(text, NULL, 0, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->throttle_count, 6);
	const struct conf_throttle *t = conf_throttle_find(c, "gmail.COM");
	assert_non_null(t);
	assert_string_equal(t->domain, "gmail.com"); /* stored in lower case */
	assert_int_equal(t->count, 600);
	assert_int_equal(t->period, 3600);
	t = conf_throttle_find(c, "example.net");
	assert_non_null(t);
	assert_int_equal(t->count, 100);
	assert_int_equal(t->period, 600);
	assert_int_equal(conf_throttle_find(c, "slow.example")->period, 86400);
	assert_int_equal(conf_throttle_find(c, "fast.example")->period, 1);
	assert_int_equal(conf_throttle_find(c, "minute.example")->period, 60);
	assert_int_equal(conf_throttle_find(c, "secs.example")->period, 300);
	/* exact: no parent or child domains, no trailing dot */
	assert_null(conf_throttle_find(c, "mail.gmail.com"));
	assert_null(conf_throttle_find(c, "com"));
	assert_null(conf_throttle_find(c, "gmail.com."));
	conf_free(c);

	/* -o: the section ends at the first dot, the rest is the domain; an override replaces */
	char domain253[300];
	memset(domain253, 'a', 253);
	for (int i = 63; i < 253; i += 64)
		domain253[i] = '.';
	domain253[253] = '\0';
	char ov_long[320];
	snprintf(ov_long, sizeof(ov_long), "throttle.%s=1/s", domain253);
	char *ov[] = {"throttle.example.com=10/m", "throttle.GMAIL.com=5/s", ov_long};
	c = load(text, ov, 3, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->throttle_count, 8);
	t = conf_throttle_find(c, "example.com");
	assert_non_null(t);
	assert_int_equal(t->count, 10);
	assert_int_equal(t->period, 60);
	t = conf_throttle_find(c, "gmail.com");
	assert_int_equal(t->count, 5);
	assert_int_equal(t->period, 1);
	assert_non_null(conf_throttle_find(c, domain253));
	conf_free(c);

	/* only -o: no [throttle] section in the file */
	c = load(base_conf, ov, 1, err);
	assert_non_null(c);
	assert_int_equal(c->throttle_count, 1);
	assert_string_equal(c->throttles[0].domain, "example.com");
	conf_free(c);
}

static void test_tls_policy(void **state)
{
	(void)state;
	char err[512], text[1024];
	snprintf(text, sizeof(text), "%s[tls_policy]\nBank.example = dane-only\npartner.example = Verify\n"
		 "old.example = encrypt\nbroken.example = may\nlegacy.example = none\n", base_conf);
	struct conf *c = load(text, NULL, 0, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->tls_policy_count, 5);
	assert_int_equal(conf_tls_override_find(c, "bank.EXAMPLE"), CONF_TLS_OVERRIDE_DANE_ONLY);
	assert_int_equal(conf_tls_override_find(c, "partner.example"), CONF_TLS_OVERRIDE_VERIFY);
	assert_int_equal(conf_tls_override_find(c, "old.example"), CONF_TLS_OVERRIDE_ENCRYPT);
	assert_int_equal(conf_tls_override_find(c, "broken.example"), CONF_TLS_OVERRIDE_MAY);
	assert_int_equal(conf_tls_override_find(c, "legacy.example"), CONF_TLS_OVERRIDE_NONE);
	assert_string_equal(conf_tls_override_str(CONF_TLS_OVERRIDE_DANE_ONLY), "dane-only");
	/* exact: no parent or child domains */
	assert_int_equal(conf_tls_override_find(c, "mx.bank.example"), 0);
	assert_int_equal(conf_tls_override_find(c, "example"), 0);
	conf_free(c);

	/* an override replaces, and adds */
	char *ov[] = {"tls_policy.bank.example=verify", "tls_policy.new.example=none"};
	c = load(text, ov, 2, err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->tls_policy_count, 6);
	assert_int_equal(conf_tls_override_find(c, "bank.example"), CONF_TLS_OVERRIDE_VERIFY);
	assert_int_equal(conf_tls_override_find(c, "new.example"), CONF_TLS_OVERRIDE_NONE);
	conf_free(c);

	/* errors name the file, the line and what is wrong */
	write_conf("");
	unlink(conf_path);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s:8: [tls_policy] ", conf_path);
	static const struct {
		const char *line;
		const char *words;
	} cases[] = {
		{"example.com = dane", "expected dane-only, verify"},
		{"example.com = ", "expected dane-only"},
		{"example.com = verify extra", "expected dane-only"},
		{"exa mple.com = verify", "domain name"},
		{"-bad.example = none", "domain name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[tls_policy]\n%s\n", cases[i].line);
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}
	char dup_prefix[128];
	snprintf(dup_prefix, sizeof(dup_prefix), "%s:9: [tls_policy] Example.COM = may: ", conf_path);
	expect_error("[tls_policy]\nexample.com = none\nExample.COM = may\n", NULL, 0, dup_prefix,
		     "already in the section");
}

static void test_throttle_errors(void **state)
{
	(void)state;
	write_conf("");
	unlink(conf_path);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s:8: [throttle] ", conf_path);
	static const struct {
		const char *line;
		const char *words;
	} cases[] = {
		{"example.com = 0/h", "count"},
		{"example.com = 1/0s", "at least 1 second"},
		{"example.com = 1/0", "at least 1 second"},
		{"example.com = -1/h", "count"},
		{"example.com = 999999999999/h", "count"},
		{"example.com = 99999999999999999999999999/h", "count"},
		{"example.com = 1000001/h", "count"},
		{"example.com = 10/", "COUNT/PERIOD"},
		{"example.com = /h", "COUNT/PERIOD"},
		{"example.com = 10", "COUNT/PERIOD"},
		{"example.com = ", "COUNT/PERIOD"},
		{"example.com = 10/x", "period"},
		{"example.com = 10/hh", "duration"},
		{"example.com = 10/ h", "period"},
		{"example.com = 10 /h", "count"},
		{"example.com = 10/h/h", "period"},
		{"example.com = 10/99999999999d", "too"},
		{"exa mple.com = 10/m", "domain name"},
		{".example.com = 10/m", "domain name"},
		{"example.com. = 10/m", "domain name"},
		{"exam_ple.com = 10/m", "domain name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), "[throttle]\n%s\n", cases[i].line);
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}
	/* a domain appears once in the file, in any spelling */
	char dup_prefix[128];
	snprintf(dup_prefix, sizeof(dup_prefix), "%s:9: [throttle] Example.COM = 2/s: ", conf_path);
	expect_error("[throttle]\nexample.com = 1/s\nExample.COM = 2/s\n", NULL, 0, dup_prefix, "already in the section");
	/* overrides */
	char *ov1[] = {"throttle.bad domain=1/m"};
	expect_error("", ov1, 1, "-o throttle.bad domain=1/m: ", "domain name");
	char *ov2[] = {"throttle.example.com=1/0s"};
	expect_error("", ov2, 1, "-o throttle.example.com=1/0s: ", "at least 1 second");
	char *ov3[] = {"throttle.=1/m"};
	expect_error("", ov3, 1, "-o throttle.=1/m: ", "section.key=value");
	char longkey[400];
	memset(longkey, 'a', sizeof(longkey));
	memcpy(longkey, "throttle.", 9);
	strcpy(longkey + 9 + 254, "=1/m");
	char *ov4[] = {longkey};
	expect_error("", ov4, 1, "-o throttle.", "domain name");
	memset(longkey + 9, 'a', 300);
	strcpy(longkey + 9 + 300, "=1/m");
	expect_error("", ov4, 1, "-o throttle.", "section.key=value");
}

/* inih reads lines into a fixed buffer; a longer line is refused, not cut and half applied. */
static void test_overlong_lines(void **state)
{
	(void)state;
	char text[2048], err[512], prefix[128];
	char host[260];
	memset(host, 'a', 240);
	strcpy(host + 240, ".example");
	snprintf(text, sizeof(text), "%s[relay]\nhost = %s\n", base_conf, host);
	assert_null(load(text, NULL, 0, err));
	snprintf(prefix, sizeof(prefix), "%s:8: line too long", conf_path);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("got \"%s\"", err);
	snprintf(text, sizeof(text), "%s[throttle]\n%s = 10/m\n", base_conf, host);
	assert_null(load(text, NULL, 0, err));
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("got \"%s\"", err);
	/* 199 characters still fit, with or without a line end */
	char key[200];
	memset(key, 'b', 192);
	key[192] = '\0';
	snprintf(text, sizeof(text), "%s[throttle]\n%s = 10/m\n", base_conf, key);
	struct conf *c = load(text, NULL, 0, err);
	if (c == NULL)
		fail_msg("%s", err);
	conf_free(c);
	snprintf(text, sizeof(text), "%s[throttle]\n%s = 10/m", base_conf, key);
	c = load(text, NULL, 0, err);
	assert_non_null(c);
	conf_free(c);
	/* an earlier error is still the one reported */
	snprintf(text, sizeof(text), "%s[smtp]\nmax_errors = 0\n[relay]\nhost = %s\n", base_conf, host);
	assert_null(load(text, NULL, 0, err));
	snprintf(prefix, sizeof(prefix), "%s:8: [smtp] max_errors", conf_path);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("got \"%s\"", err);
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

	static const struct {
		const char *in;
		unsigned count, period; /* 0: an error */
	} rates[] = {
		{"600/h", 600, 3600},
		{"10/m", 10, 60},
		{"5/s", 5, 1},
		{"1000/d", 1000, 86400},
		{"100/10m", 100, 600},
		{"1/1", 1, 1},
		{"1000000/s", 1000000, 1},
		{"3/2h", 3, 7200},
		{"0/h", 0, 0},
		{"1/0s", 0, 0},
		{"1/0", 0, 0},
		{"-1/h", 0, 0},
		{"+1/h", 0, 0},
		{"999999999999/h", 0, 0},
		{"1000001/s", 0, 0},
		{"18446744073709551617/s", 0, 0},
		{"10/", 0, 0},
		{"/h", 0, 0},
		{"/", 0, 0},
		{"", 0, 0},
		{"10", 0, 0},
		{"10/x", 0, 0},
		{"10/H", 0, 0},
		{"10/ms", 0, 0},
		{"10/m ", 0, 0},
		{" 10/m", 0, 0},
		{"10/ m", 0, 0},
		{"10 /m", 0, 0},
		{"1 0/m", 0, 0},
		{"10/m/h", 0, 0},
		{"10//h", 0, 0},
		{"0x10/h", 0, 0},
		{"10/99999999999999999999d", 0, 0},
		{"10/4294967296", 0, 0},
		{"10/1.5h", 0, 0},
	};
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		unsigned count = 12345, period = 12345;
		size_t len = strlen(rates[i].in);
		char *in = test_dup(rates[i].in, len + 1); /* ASan sees a read past the end */
		const char *e = conf_parse_rate(in, &count, &period);
		char esc[128];
		if (rates[i].count == 0 && e == NULL)
			fail_msg("rate \"%s\": accepted as %u/%u", test_escape(in, len, esc, sizeof(esc)), count, period);
		if (rates[i].count == 0 && (count != 12345 || period != 12345))
			fail_msg("rate \"%s\": outputs written on error", test_escape(in, len, esc, sizeof(esc)));
		if (rates[i].count != 0 && (e != NULL || count != rates[i].count || period != rates[i].period))
			fail_msg("rate \"%s\": %s %u/%u", test_escape(in, len, esc, sizeof(esc)), e ? e : "", count, period);
		free(in);
	}

	static const struct {
		const char *in;
		const char *host; /* NULL: an error */
		unsigned port;
	} hosts[] = {
		{"smtp.example.com", "smtp.example.com", 0},
		{"smtp.example.com:587", "smtp.example.com", 587},
		{"SMTP.Example.COM:1", "SMTP.Example.COM", 1},
		{"localhost:2525", "localhost", 2525},
		{"192.0.2.1:25", "192.0.2.1", 25},
		{"[192.0.2.1]:465", "192.0.2.1", 465},
		{"[192.0.2.1]", "192.0.2.1", 0},
		{"[2001:db8::1]:25", "2001:db8::1", 25},
		{"[2001:db8::1]", "2001:db8::1", 0},
		{"[IPv6:2001:db8::1]:65535", "2001:db8::1", 65535},
		{"[ipv6:::1]", "::1", 0},
		{"", NULL, 0},
		{"2001:db8::1", NULL, 0},
		{"::1", NULL, 0},
		{"[2001:db8::1]:", NULL, 0},
		{"[2001:db8::1]25", NULL, 0},
		{"[2001:db8::1", NULL, 0},
		{"[smtp.example.com]:25", NULL, 0},
		{"[IPv6:192.0.2.1]", NULL, 0},
		{"[IPv6:]", NULL, 0},
		{"smtp.example.com:587:1", NULL, 0},
		{"smtp.example.com:0587x", NULL, 0},
		{"smtp.example.com:000000", NULL, 0},
		{"smtp.example.com: 25", NULL, 0},
		{"smtp.example.com:+25", NULL, 0},
		{"smtp.example.com/25", NULL, 0},
		{"-smtp.example.com", NULL, 0},
		{"smtp.example.com.", NULL, 0},
		{"smtp\texample.com", NULL, 0},
	};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		char host[254] = "unset";
		unsigned port = 7;
		size_t len = strlen(hosts[i].in);
		char *in = test_dup(hosts[i].in, len + 1);
		const char *e = conf_parse_relay_host(in, host, sizeof(host), &port);
		char esc[128];
		if (hosts[i].host == NULL && e == NULL)
			fail_msg("host \"%s\": accepted as %s port %u", test_escape(in, len, esc, sizeof(esc)), host, port);
		if (hosts[i].host != NULL && (e != NULL || strcmp(host, hosts[i].host) != 0 || port != hosts[i].port))
			fail_msg("host \"%s\": %s %s %u", test_escape(in, len, esc, sizeof(esc)), e ? e : "", host, port);
		free(in);
	}
	/* the output buffer is respected */
	char small[8];
	unsigned port;
	assert_non_null(conf_parse_relay_host("smtp.example.com", small, sizeof(small), &port));
	assert_null(conf_parse_relay_host("a.b.c", small, sizeof(small), &port));
}

/* ---- conf_check_all and conf_show ---- */

struct lines {
	char text[16][600];
	size_t n;
};

static void collect(const char *line, void *arg)
{
	struct lines *l = arg;
	if (l->n < 16)
		snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", line);
}

/* Every problem, each with its line, the good lines between them read; the overrides too. */
static void test_check_all_reports_every_problem(void **state)
{
	(void)state;
	char text[2048];
	snprintf(text, sizeof(text), "%s[smtp]\nbogus = 1\nmax_message_size = huge\nthis is no line\n"
		 "max_recipients = 200\n[nosuch]\nx = 1\n", base_conf);
	write_conf(text);
	char *ov[] = {"smtp.max_recipients=many", "junk"};
	struct lines l = {0};
	unsigned n = conf_check_all(conf_path, ov, 2, collect, &l);
	for (size_t i = 0; i < l.n && n != 6; i++)
		print_message("problem: %s\n", l.text[i]);
	assert_int_equal(n, 6);
	assert_int_equal(l.n, 6);
	char want[6][160];
	snprintf(want[0], sizeof(want[0]), "%s:8: [smtp] bogus = 1: unknown key", conf_path);
	snprintf(want[1], sizeof(want[1]), "%s:9: [smtp] max_message_size = huge:", conf_path);
	snprintf(want[2], sizeof(want[2]), "%s:10: not a valid line", conf_path);
	snprintf(want[3], sizeof(want[3]), "%s:13: [nosuch] x = 1: unknown section", conf_path);
	snprintf(want[4], sizeof(want[4]), "-o smtp.max_recipients=many:");
	snprintf(want[5], sizeof(want[5]), "-o junk: expected section.key=value");
	for (int i = 0; i < 6; i++)
		if (strncmp(l.text[i], want[i], strlen(want[i])) != 0)
			fail_msg("problem %d is \"%s\", want \"%s...\"", i, l.text[i], want[i]);

	/* a good file has none; a missing required key and a rule between keys are problems too */
	write_conf(base_conf);
	l.n = 0;
	assert_int_equal(conf_check_all(conf_path, NULL, 0, collect, &l), 0);
	write_conf("[server]\nhostname = mx.example.org\n");
	l.n = 0;
	assert_int_equal(conf_check_all(conf_path, NULL, 0, collect, &l), 3); /* data_dir, cert, key */
	assert_non_null(strstr(l.text[0], "[server] data_dir is required"));
	snprintf(text, sizeof(text), "%s[delivery]\nmax_connections = 2\nmax_connections_per_domain = 5\n", base_conf);
	write_conf(text);
	l.n = 0;
	assert_int_equal(conf_check_all(conf_path, NULL, 0, collect, &l), 1);
	assert_non_null(strstr(l.text[0], "is larger than"));
	unlink(conf_path);
	l.n = 0;
	assert_int_equal(conf_check_all(conf_path, NULL, 0, collect, &l), 1);
	assert_non_null(strstr(l.text[0], "cannot open"));
}

/* Every key with the value in effect, or only those set to other than the default; an override
 * wins over the file; a free section's keys each. */
static void test_show(void **state)
{
	(void)state;
	char text[2048], err[512];
	snprintf(text, sizeof(text), "%s[smtp]\nmax_recipients = 100\nmax_message_size = 10M\n"
		 "[throttle]\ngmail.com = 600/h\n", base_conf);
	write_conf(text);
	char *ov[] = {"smtp.max_message_size=20M"};
	struct lines l = {0};
	assert_int_equal(conf_show(conf_path, ov, 1, true, collect, &l, err, sizeof(err)), 0);
	/* max_recipients = 100 is its default: left out */
	const char *want[] = {"[server] hostname = mx.example.org", "[server] data_dir = /var/lib/mailwerk",
			      "[tls] cert = /etc/mailwerk/cert.pem", "[tls] key = /etc/mailwerk/key.pem",
			      "[smtp] max_message_size = 20M", "[throttle] gmail.com = 600/h"};
	if (l.n != 6)
		fail_msg("%zu lines, want 6 (first: %s)", l.n, l.text[0]);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(l.text[i], want[i]);
	struct lines all = {0};
	assert_int_equal(conf_show(conf_path, NULL, 0, false, collect, &all, err, sizeof(err)), 0);
	assert_int_equal(all.n, 16); /* the collector keeps 16: there are more */
	unlink(conf_path);
	assert_int_equal(conf_show(conf_path, NULL, 0, true, collect, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
}


/* The outbound SMTP client's timeouts: RFC 5321 §4.5.3.2's values by default, any of them shorter or
 * longer within 1 s to 1 h, errors naming file and line; config show lists the ones changed. */
static void test_delivery_timeouts(void **state)
{
	(void)state;
	char err[512], text[1024];
	struct conf *c = load(base_conf, NULL, 0, err);
	assert_non_null(c);
	assert_int_equal(c->out_connect_timeout, 30);
	assert_int_equal(c->out_tls_timeout, 300);
	assert_int_equal(c->out_greeting_timeout, 300);   /* §4.5.3.2.1 */
	assert_int_equal(c->out_command_timeout, 300);    /* §4.5.3.2.2, .3, .7 */
	assert_int_equal(c->out_data_init_timeout, 120);  /* §4.5.3.2.4 */
	assert_int_equal(c->out_data_timeout, 180);       /* §4.5.3.2.5 */
	assert_int_equal(c->out_data_end_timeout, 600);   /* §4.5.3.2.6 */
	conf_free(c);

	snprintf(text, sizeof(text), "%s[delivery]\nconnect_timeout = 5\ntls_timeout = 10s\ngreeting_timeout = 3s\n"
		 "command_timeout = 1m\ndata_init_timeout = 1h\ndata_timeout = 90\ndata_end_timeout = 20m\n", base_conf);
	c = load(text, NULL, 0, err);
	assert_non_null(c);
	assert_int_equal(c->out_connect_timeout, 5);
	assert_int_equal(c->out_tls_timeout, 10);
	assert_int_equal(c->out_greeting_timeout, 3);
	assert_int_equal(c->out_command_timeout, 60);
	assert_int_equal(c->out_data_init_timeout, 3600);
	assert_int_equal(c->out_data_timeout, 90);
	assert_int_equal(c->out_data_end_timeout, 1200);
	conf_free(c);

	char *ov[] = {"delivery.greeting_timeout=1s", "delivery.command_timeout=2s"};
	c = load(base_conf, ov, 2, err);
	assert_non_null(c);
	assert_int_equal(c->out_greeting_timeout, 1);
	assert_int_equal(c->out_command_timeout, 2);
	assert_int_equal(c->out_data_end_timeout, 600);
	assert_int_equal(c->command_timeout, 300); /* [smtp] command_timeout is the server's own */
	conf_free(c);

	write_conf("");
	unlink(conf_path);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s:8: [delivery] ", conf_path);
	static const struct {
		const char *line;
		const char *words;
	} cases[] = {
		{"connect_timeout = 0", "out of range"},
		{"connect_timeout = 2h", "out of range"},
		{"tls_timeout = soon", "duration"},
		{"greeting_timeout = 0s", "out of range"},
		{"greeting_timeout = 500ms", "duration"},
		{"command_timeout = -5m", "duration"},
		{"data_init_timeout = 61m", "out of range"},
		{"data_timeout = 3w", "duration"},
		{"data_end_timeout = 1d", "out of range"},
		{"data_end_timeout = ", "duration"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[delivery]\n%s\n", cases[i].line);
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}
	char *bad[] = {"delivery.data_end_timeout=0"};
	expect_error("", bad, 1, "-o delivery.data_end_timeout=0: ", "out of range");

	/* config show --non-default: only what was changed, as written */
	snprintf(text, sizeof(text), "%s[delivery]\ngreeting_timeout = 5m\ncommand_timeout = 4s\n", base_conf);
	write_conf(text);
	struct lines l = {0};
	assert_int_equal(conf_show(conf_path, NULL, 0, true, collect, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.text[4], "[delivery] command_timeout = 4s");
	struct lines l2 = {0};
	bool seen = false;
	char *ov2[] = {"delivery.data_end_timeout=7m"};
	assert_int_equal(conf_show(conf_path, ov2, 1, true, collect, &l2, err, sizeof(err)), 0);
	for (size_t i = 0; i < l2.n; i++)
		seen = seen || strcmp(l2.text[i], "[delivery] data_end_timeout = 7m") == 0;
	assert_true(seen);
	unlink(conf_path);
}

/* The slow-client limits: session deadlines, the DATA rate floor; hostile values refused. */
static void test_slow_client_keys(void **state)
{
	(void)state;
	char err[512];
	struct conf *c = load(base_conf, NULL, 0, err);
	assert_non_null(c);
	assert_int_equal(c->session_timeout, 1800);
	assert_int_equal(c->min_data_rate, 500);
	assert_int_equal(c->min_data_rate_window, 30);
	assert_int_equal(c->pop3_session_timeout, 7200);
	conf_free(c);

	char *ov[] = {"smtp.session_timeout=0", "smtp.min_data_rate=0", "smtp.min_data_rate_window=1h",
		      "pop3.session_timeout=7d"};
	c = load(base_conf, ov, 4, err);
	assert_non_null(c);
	assert_int_equal(c->session_timeout, 0); /* no limit */
	assert_int_equal(c->min_data_rate, 0);   /* no floor */
	assert_int_equal(c->min_data_rate_window, 3600);
	assert_int_equal(c->pop3_session_timeout, 7 * 86400);
	conf_free(c);

	write_conf("");
	unlink(conf_path);
	static const struct {
		const char *section, *line, *words;
	} cases[] = {
		{"smtp", "session_timeout = 8d", "out of range"},
		{"smtp", "session_timeout = -1m", "duration"},
		{"smtp", "session_timeout = 30 m", "duration"},
		{"smtp", "session_timeout = 99999999999999999999d", "too large"},
		{"smtp", "session_timeout = 1e3", "duration"},
		{"smtp", "min_data_rate = 1000000001", "out of range"},
		{"smtp", "min_data_rate = -500", "whole number"},
		{"smtp", "min_data_rate = 500B", "whole number"},
		{"smtp", "min_data_rate = 0x1f4", "whole number"},
		{"smtp", "min_data_rate = 18446744073709551616", "whole number"},
		{"smtp", "min_data_rate = ", "whole number"},
		{"smtp", "min_data_rate_window = 0", "out of range"},
		{"smtp", "min_data_rate_window = 61m", "out of range"},
		{"smtp", "min_data_rate_window = 10ms", "duration"},
		{"pop3", "session_timeout = 8d", "out of range"},
		{"pop3", "session_timeout = forever", "duration"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256], prefix[160];
		snprintf(prefix, sizeof(prefix), "%s:8: [%s] ", conf_path, cases[i].section);
		snprintf(text, sizeof(text), "[%s]\n%s\n", cases[i].section, cases[i].line);
		expect_error(text, NULL, 0, prefix, cases[i].words);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_check_all_reports_every_problem),
		cmocka_unit_test(test_show),
		cmocka_unit_test(test_values_and_overrides),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_missing_and_override_errors),
		cmocka_unit_test(test_delivery_keys),
		cmocka_unit_test(test_auth_keys),
		cmocka_unit_test(test_tlsrpt_keys),
		cmocka_unit_test(test_login_penalty_keys),
		cmocka_unit_test(test_relay_keys),
		cmocka_unit_test(test_relay_errors),
		cmocka_unit_test(test_tls_next_key),
		cmocka_unit_test(test_acme_keys),
		cmocka_unit_test(test_acme_errors),
		cmocka_unit_test(test_delivery_errors),
		cmocka_unit_test(test_delivery_timeouts),
		cmocka_unit_test(test_throttle_keys),
		cmocka_unit_test(test_throttle_errors),
		cmocka_unit_test(test_tls_policy),
		cmocka_unit_test(test_overlong_lines),
		cmocka_unit_test(test_value_parsers),
		cmocka_unit_test(test_slow_client_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

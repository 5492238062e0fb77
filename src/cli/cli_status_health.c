/* cli_status_health.c — the lines of `mailwerk status` that tell of the server's health rather than
 * its activity: the deliveries' outcomes of the last minute and the last hour, the TLS
 * certificates served and their days to expiry, the free space in data_dir. */
#include "cli/cli_status.h"

#include <stdio.h>
#include <string.h>

/* "local 2 delivered, 0 deferred, 0 failed; remote 1 delivered, 3 deferred, 1 failed" */
static void cli_status_outcomes(const char *label, json_t *w)
{
	static const char *const routes[] = {"local", "remote"};
	printf("%-13s", label);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		json_t *r = json_object_get(w, routes[i]);
		printf("%s%s %lld delivered, %lld deferred, %lld failed", i > 0 ? "; " : "", routes[i],
		       cli_status_int(r, "delivered"), cli_status_int(r, "deferred"), cli_status_int(r, "failed"));
	}
	putchar('\n');
}

/* "certificate: mail.example.org (mail.example.org, example.org), until 2027-01-01T00:00:00Z,
 * 120 days left", or "..., EXPIRED" */
static void cli_status_cert(json_t *c)
{
	char subject[128], file[256], until[40], err[128];
	if (json_object_get(c, "error") != NULL) {
		printf("certificate: %s: %s\n", cli_status_str(c, "file", file, sizeof(file)),
		       cli_status_str(c, "error", err, sizeof(err)));
		return;
	}
	printf("certificate: %s (", cli_status_str(c, "subject", subject, sizeof(subject)));
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(c, "names"), i, n) {
		char name[128];
		printf("%s%s", i > 0 ? ", " : "", cli_status_clean(json_is_string(n) ? json_string_value(n) : "?", name,
								   sizeof(name)));
	}
	long long days = cli_status_int(c, "days_left");
	printf("), until %s, ", cli_status_str(c, "not_after", until, sizeof(until)));
	if (json_is_true(json_object_get(c, "expired")))
		puts("EXPIRED");
	else
		printf("%lld day%s left\n", days, days == 1 ? "" : "s");
}

/* 1536 as "1.5 KiB" (IEC 80000-13 binary prefixes) */
static const char *cli_status_octets(json_t *v, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double n = (double)json_integer_value(v);
	size_t u = 0;
	while (n >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		n /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%.0f B", n);
	else
		snprintf(buf, size, "%.1f %s", n, units[u]);
	return buf;
}

/* "disk:        31.2 GiB free of 49.1 GiB in /var/lib/mailwerk (min_free_space 100.0 MiB)" */
static void cli_status_disk(json_t *d)
{
	char path[256], err[128], free_s[32], total_s[32], min_s[32];
	json_t *min = json_object_get(d, "min_free_space");
	cli_status_str(d, "path", path, sizeof(path));
	if (!json_is_integer(json_object_get(d, "free_bytes"))) {
		printf("disk:        %s: %s\n", path, cli_status_str(d, "error", err, sizeof(err)));
		return;
	}
	printf("disk:        %s free of %s in %s", cli_status_octets(json_object_get(d, "free_bytes"), free_s, sizeof(free_s)),
	       cli_status_octets(json_object_get(d, "total_bytes"), total_s, sizeof(total_s)), path);
	if (json_is_true(json_object_get(d, "below_min_free_space")))
		printf(", BELOW min_free_space %s: new mail is refused\n", cli_status_octets(min, min_s, sizeof(min_s)));
	else if (json_integer_value(min) > 0)
		printf(" (min_free_space %s)\n", cli_status_octets(min, min_s, sizeof(min_s)));
	else
		puts(" (no min_free_space)");
}

void cli_status_health_text(json_t *st)
{
	json_t *d = json_object_get(st, "deliveries");
	if (json_is_object(d)) {
		cli_status_outcomes("last minute:", json_object_get(d, "last_minute"));
		cli_status_outcomes("last hour:", json_object_get(d, "last_hour"));
	}
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(st, "certificates"), i, c)
		cli_status_cert(c);
	if (json_is_object(json_object_get(st, "disk")))
		cli_status_disk(json_object_get(st, "disk"));
}

/* cli_status_health.c — the lines of `mailwerk status` that tell of the server's health rather than
 * its activity: the deliveries' outcomes of the last minute and the last hour, the TLS
 * certificates served and their days to expiry. */
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
}

/* cli_status_health.c — the lines of `mailwerk status` that tell of the server's health rather than
 * its activity: the deliveries' outcomes of the last minute and the last hour. */
#include "cli/cli_status.h"

#include <stdio.h>

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

void cli_status_health_text(json_t *st)
{
	json_t *d = json_object_get(st, "deliveries");
	if (json_is_object(d)) {
		cli_status_outcomes("last minute:", json_object_get(d, "last_minute"));
		cli_status_outcomes("last hour:", json_object_get(d, "last_hour"));
	}
}

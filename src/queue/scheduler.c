/* scheduler.c — the retry backoff. */
#include "queue/scheduler.h"

int64_t scheduler_next_attempt(const unsigned *schedule, size_t count, unsigned attempts, int64_t now)
{
	if (count == 0)
		return now + 60;
	size_t i = attempts == 0 ? 0 : attempts - 1;
	if (i >= count)
		i = count - 1;
	return now + schedule[i];
}

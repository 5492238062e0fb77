/* scheduler.h — when a failed delivery is tried again: pure arithmetic on the retry schedule. */
#ifndef MAILWERK_QUEUE_SCHEDULER_H
#define MAILWERK_QUEUE_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

/* The time of the next attempt after attempt number `attempts` (1 for the first) failed at now:
 * schedule[attempts - 1] seconds later, the last entry repeating once the schedule is used up. */
int64_t scheduler_next_attempt(const unsigned *schedule, size_t count, unsigned attempts, int64_t now);

#endif

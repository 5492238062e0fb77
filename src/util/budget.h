/* budget.h — a count of something held against a limit, such as the message octets all sessions
 * keep in memory together ([server] max_memory_in_flight). Loop thread only. */
#ifndef MAILWERK_UTIL_BUDGET_H
#define MAILWERK_UTIL_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct budget {
	uint64_t used;
	uint64_t limit; /* 0: no limit */
};

/* Takes n when it fits; false (nothing taken) when it would pass the limit. */
static inline bool budget_take(struct budget *b, uint64_t n)
{
	if (b->limit != 0 && (b->used > b->limit || n > b->limit - b->used))
		return false;
	b->used += n;
	return true;
}

/* Gives back n of what was taken. */
static inline void budget_give(struct budget *b, uint64_t n)
{
	b->used = n < b->used ? b->used - n : 0;
}

/* Whether the budget is (nearly) spent: less than an eighth of it left. Something new (a message)
 * is not begun then, so that what is under way can still finish. */
static inline bool budget_exhausted(const struct budget *b)
{
	return b->limit != 0 && b->used >= b->limit - b->limit / 8;
}

#endif

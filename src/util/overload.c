/* overload.c — the overload mode's watermarks and shrunken limits (see overload.h). */
#include "util/overload.h"

#include <stdint.h>

bool overload_next(bool on, unsigned sessions, unsigned limit)
{
	if (limit == 0)
		return false;
	/* in 64 bits: limit and sessions may each be near UINT_MAX */
	uint64_t used = (uint64_t)sessions * 100;
	if (!on)
		return used > (uint64_t)limit * OVERLOAD_ON_PERCENT;
	return used >= (uint64_t)limit * OVERLOAD_OFF_PERCENT;
}

unsigned overload_shrink(unsigned value)
{
	if (value == 0)
		return 0;
	unsigned v = value / OVERLOAD_DIVISOR;
	return v > 0 ? v : 1;
}

/* list.h — walking a comma-separated list of a configuration value ("a.example, b.example"). */
#ifndef MAILWERK_UTIL_LIST_H
#define MAILWERK_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* The next item at *p with the blanks around it trimmed (it may be empty: "a,,b" has three):
 * *item_r and *len_r, and *p past it and its comma (NULL after the last). false once *p is NULL.
 * Start with *p at the whole value. */
static inline bool list_next(const char **p, const char **item_r, size_t *len_r)
{
	if (*p == NULL)
		return false;
	const char *s = *p, *comma = strchr(s, ',');
	size_t n = comma != NULL ? (size_t)(comma - s) : strlen(s);
	while (n > 0 && *s == ' ')
		s++, n--;
	while (n > 0 && s[n - 1] == ' ')
		n--;
	*item_r = s;
	*len_r = n;
	*p = comma != NULL ? comma + 1 : NULL;
	return true;
}

#endif

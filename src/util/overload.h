/* overload.h — when the server counts as overloaded, and what that does to a session's limits: the
 * shape of Postfix's stress mode (smtpd_timeout = ${stress?10}${stress:300}s and the like). Past
 * OVERLOAD_ON_PERCENT of [server] max_connections the server is overloaded, and stays so until the
 * sessions fall below OVERLOAD_OFF_PERCENT (hysteresis: a load that hovers at the mark does not make
 * the mode flap). Sessions that start meanwhile get a quarter of the usual timeouts and errors, so
 * that idle or slow clients make room sooner. Pure. */
#ifndef MAILWERK_UTIL_OVERLOAD_H
#define MAILWERK_UTIL_OVERLOAD_H

#include <stdbool.h>

#define OVERLOAD_ON_PERCENT 80
#define OVERLOAD_OFF_PERCENT 60
#define OVERLOAD_DIVISOR 4

/* The mode after a change of the session count: on is the mode before, limit the connection
 * budget (0: no limit, never overloaded). */
bool overload_next(bool on, unsigned sessions, unsigned limit);
/* A timeout or error limit for a session started while overloaded: a quarter, at least 1 (0, which
 * means "none" for some limits, stays 0). */
unsigned overload_shrink(unsigned value);

#endif

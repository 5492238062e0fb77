/* diskspace.h — how much room a file system has left for us. */
#ifndef MAILWERK_UTIL_DISKSPACE_H
#define MAILWERK_UTIL_DISKSPACE_H

#include <stdbool.h>
#include <stdint.h>

/* Octets an unprivileged writer may still use on the file system holding path (statvfs f_bavail).
 * false when it cannot be told (then the caller should not refuse on its account). */
bool diskspace_available(const char *path, uint64_t *octets_r);
/* The same, and the file system's size (f_blocks), both in f_frsize units (POSIX statvfs). false,
 * with errno, when they cannot be told. */
bool diskspace_usage(const char *path, uint64_t *available_r, uint64_t *total_r);
/* Whether size more octets fit on path's file system and still leave min_free ([server]
 * min_free_space; 0: no check). true when it cannot be told. */
bool diskspace_has_room(const char *path, uint64_t min_free, uint64_t size);

#endif

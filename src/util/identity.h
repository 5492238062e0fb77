/* identity.h — the unprivileged account mailwerk runs as once its ports are bound (DESIGN.md §6). */
#ifndef MAILWERK_UTIL_IDENTITY_H
#define MAILWERK_UTIL_IDENTITY_H

#include <stddef.h>
#include <sys/types.h>

/* Finds user's uid and primary gid. 0, or -1 with a sentence in error_r. */
int identity_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, char *error_r, size_t error_size);

/* Becomes user for good: supplementary groups dropped, gid then uid set, and a switch back to root
 * checked to fail. From root only; a process already running as user succeeds without change. */
int identity_become(const char *user, char *error_r, size_t error_size);

#endif

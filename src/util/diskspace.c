/* diskspace.c — free space of a file system (see diskspace.h). */
#include "util/diskspace.h"

#include <sys/statvfs.h>

bool diskspace_available(const char *path, uint64_t *octets_r)
{
	struct statvfs st;
	if (statvfs(path, &st) != 0)
		return false;
	*octets_r = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	return true;
}

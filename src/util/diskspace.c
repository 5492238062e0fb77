/* diskspace.c — free space of a file system (see diskspace.h). */
#include "util/diskspace.h"

#include <sys/statvfs.h>

bool diskspace_usage(const char *path, uint64_t *available_r, uint64_t *total_r)
{
	struct statvfs st;
	if (statvfs(path, &st) != 0)
		return false;
	*available_r = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	*total_r = (uint64_t)st.f_blocks * (uint64_t)st.f_frsize;
	return true;
}

bool diskspace_available(const char *path, uint64_t *octets_r)
{
	uint64_t total;
	return diskspace_usage(path, octets_r, &total);
}

bool diskspace_has_room(const char *path, uint64_t min_free, uint64_t size)
{
	uint64_t avail;
	if (min_free == 0 || !diskspace_available(path, &avail))
		return true;
	return avail >= min_free && avail - min_free >= size;
}

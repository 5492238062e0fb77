/* identity.c — dropping root for the configured user. */
#include "util/identity.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int identity_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, char *error_r, size_t error_size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (res == NULL) {
		snprintf(error_r, error_size, "no user named '%s'%s%s", user, rc ? ": " : "", rc ? strerror(rc) : "");
		return -1;
	}
	*uid_r = pw.pw_uid;
	*gid_r = pw.pw_gid;
	return 0;
}

int identity_become(const char *user, char *error_r, size_t error_size)
{
	uid_t uid;
	gid_t gid;
	if (identity_lookup(user, &uid, &gid, error_r, error_size) != 0)
		return -1;
	if (getuid() == uid && geteuid() == uid)
		return 0;
	if (geteuid() != 0) {
		snprintf(error_r, error_size, "cannot switch to user '%s': not running as root", user);
		return -1;
	}
	/* glibc applies these to every thread of the process */
	if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		snprintf(error_r, error_size, "cannot switch to user '%s': %s", user, strerror(errno));
		return -1;
	}
	if (uid != 0 && setuid(0) == 0) {
		snprintf(error_r, error_size, "switched to user '%s' but could switch back to root", user);
		return -1;
	}
	return 0;
}

/* sandbox.c — the worker's seccomp allow-list (sandbox.h). The list is what the worker's own code
 * and its libraries (libevent, OpenSSL, SQLite, libunbound, libcurl, GMime, glibc) call once they
 * run: found by tracing the whole integration suite, then read call by call. A name this kernel
 * or architecture does not know is skipped. None of the peers sandboxes its network process this
 * way (Postfix, OpenSMTPD and Dovecot rely on users and chroots); systemd's SystemCallFilter in the
 * unit is the outer, coarser layer. */
#include "server/sandbox.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <seccomp.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

static const char *const sandbox_allowed[] = {
	/* descriptors and files: the stores, Maildirs, spool, TLS and configuration on reload */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "lseek", "close",
	"dup", "dup2", "dup3", "fcntl", "ioctl", "open", "openat", "stat", "fstat", "lstat", "newfstatat",
	"statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "getdents",
	"mkdir", "mkdirat", "rename", "renameat", "renameat2", "link", "linkat", "unlink", "unlinkat", "rmdir",
	"fsync", "fdatasync", "ftruncate", "fallocate", "fchmod", "fchown", "flock", "utimensat", "getcwd",
	"umask", "sendfile",
	/* memory */
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync", "mincore",
	/* network: accepting on the listeners handed over, connecting out (delivery, DNS, webhooks);
	 * bind stays for the resolver's UDP ports, listen does not */
	"accept", "accept4", "connect", "bind", "getsockname", "getpeername", "setsockopt", "getsockopt",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "socketpair",
	"pipe", "pipe2", "eventfd2", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll",
	"ppoll", "select", "pselect6", "timerfd_create", "timerfd_settime", "timerfd_gettime",
	/* threads, time, signals, the process itself */
	"futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "sched_yield",
	"sched_getaffinity", "gettid", "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid",
	"getgroups", "getresuid", "getresgid", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	"rt_sigtimedwait", "sigaltstack", "restart_syscall", "exit", "exit_group", "nanosleep",
	"clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom", "prlimit64",
	"getrlimit", "getrusage", "sysinfo", "uname", "prctl", "arch_prctl", "membarrier", "getpriority",
	"capget",
#ifdef SANDBOX_SANITIZER
	/* test builds: LeakSanitizer stops the threads with ptrace from a helper it clones at exit */
	"ptrace", "wait4", "waitid", "process_vm_readv", "sched_setaffinity", "kill",
#endif
};

/* The signer's: it reads and writes its key store (data_dir/dkim: new keys, the active lists) and
 * answers the worker on the socket it was started with; its threads exist before the filter, so it
 * makes none (no clone at all). */
static const char *const sandbox_signer_allowed[] = {
	"read", "write", "close", "fstat", "newfstatat", "stat", "statx", "lseek", "fcntl", "open", "openat",
	"mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "fsync", "fdatasync", "fchmod",
	"recvmsg", "sendmsg", "mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
	"futex", "set_robust_list", "rseq", "gettid", "getpid", "sched_yield", "rt_sigprocmask",
	"rt_sigreturn", "restart_syscall", "exit", "exit_group", "clock_gettime", "gettimeofday", "getrandom",
#ifdef SANDBOX_SANITIZER
	"ptrace", "wait4", "waitid", "process_vm_readv", "sched_setaffinity", "kill", "clone", "prctl",
	"sigaltstack", "getdents64", "getdents", "readlink", "sched_getaffinity", "getppid", "rt_sigaction",
	"tgkill", "nanosleep", "clock_nanosleep",
#endif
};

/* socket(2) for these families only: mail and DNS over IP, the service's own UNIX sockets, and
 * netlink, which glibc reads the interfaces' addresses through (getaddrinfo with AI_ADDRCONFIG) */
static const int sandbox_socket_families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};

static int sandbox_allow(scmp_filter_ctx ctx, const char *const *names, size_t n, const char **failed_r)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) {
			*failed_r = names[i];
			return -1;
		}
	}
	return 0;
}

static int sandbox_worker_rules(scmp_filter_ctx ctx, const char **failed_r)
{
	if (sandbox_allow(ctx, sandbox_allowed, sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]), failed_r) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(sandbox_socket_families) / sizeof(sandbox_socket_families[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sandbox_socket_families[i])) != 0) {
			*failed_r = "socket";
			return -1;
		}
#ifdef SANDBOX_SANITIZER
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 0) != 0) {
		*failed_r = "clone";
		return -1;
	}
#else
	/* threads, never processes: fork is a clone without CLONE_THREAD */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, (scmp_datum_t)CLONE_THREAD, (scmp_datum_t)CLONE_THREAD)) != 0) {
		*failed_r = "clone";
		return -1;
	}
#endif
	/* clone3 passes its flags in memory, which a filter cannot read: refused with ENOSYS, glibc
	 * then makes its threads with clone, whose flags are checked above */
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) {
		*failed_r = "clone3";
		return -1;
	}
	return 0;
}

static int sandbox_signer_rules(scmp_filter_ctx ctx, const char **failed_r)
{
	if (sandbox_allow(ctx, sandbox_signer_allowed, sizeof(sandbox_signer_allowed) / sizeof(sandbox_signer_allowed[0]),
			  failed_r) != 0)
		return -1;
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) {
		*failed_r = "clone3";
		return -1;
	}
	return 0;
}

static int sandbox_enter(int (*rules)(scmp_filter_ctx, const char **), char *error_r, size_t error_size)
{
	/* anything else: the whole process is killed (SIGSYS), never one thread of it */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		snprintf(error_r, error_size, "sandbox: libseccomp cannot start a filter");
		return -1;
	}
	const char *failed = NULL;
	int rc = 0;
	/* every thread, those already running included; PR_SET_NO_NEW_PRIVS is set on load */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0 || seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0)
		failed = "its attributes";
	else if (rules(ctx, &failed) == 0 && (rc = seccomp_load(ctx)) != 0)
		failed = "loading";
	seccomp_release(ctx);
	if (failed != NULL) {
		snprintf(error_r, error_size, "sandbox: the seccomp filter failed at %s%s%s ([server] sandbox = no turns it off)",
			 failed, rc != 0 ? ": " : "", rc != 0 ? strerror(-rc) : "");
		return -1;
	}
	return 0;
}

int sandbox_worker_enter(char *error_r, size_t error_size)
{
	return sandbox_enter(sandbox_worker_rules, error_r, error_size);
}

int sandbox_signer_enter(char *error_r, size_t error_size)
{
	return sandbox_enter(sandbox_signer_rules, error_r, error_size);
}

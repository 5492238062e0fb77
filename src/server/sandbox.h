/* sandbox.h — the seccomp filters of the worker and the signer. The worker's: once every store is open, every listener handed over and
 * every thread started, the worker sets PR_SET_NO_NEW_PRIVS and loads an allow-list of system calls
 * (libseccomp) on all its threads. Any other call kills the process (SIGSYS); the parent then
 * restarts it. What the list leaves out: starting programs (execve, fork), changing identity,
 * tracing or reading other processes' memory, loading modules or filters, mounting, rebooting,
 * binding new ports (the parent binds them). */
#ifndef MAILWERK_SERVER_SANDBOX_H
#define MAILWERK_SERVER_SANDBOX_H

#include <stddef.h>

/* 0, or -1 with a sentence (the kernel or libseccomp refused the filter). */
int sandbox_worker_enter(char *error_r, size_t error_size);

/* The DKIM signer's (signer.h), narrower still: its socket and its key store; no network, no
 * processes, no threads made after it. */
int sandbox_signer_enter(char *error_r, size_t error_size);

#endif

/* signer.h — the DKIM signer, the third role of `mailwerk serve` (`serve --role=signer`, started by
 * the parent, never by hand). It alone reads the DKIM private keys (data_dir/dkim, keys/dkim_store.h):
 * it runs as [server] signer_user (or [server] user), is not dumpable, has no network and runs
 * under its own seccomp allow-list. It serves one worker over one socketpair (signer_msg.h): the
 * worker hashes each message, the signer signs the digest. When the worker's end closes, the
 * signer exits; the parent starts a new one with the next worker, and again when one dies. */
#ifndef MAILWERK_SERVER_SIGNER_H
#define MAILWERK_SERVER_SIGNER_H

#include <stddef.h>

#include "conf/conf.h"

/* Where the signer finds its end of the socketpair to the worker: the parent puts it there. */
#define SIGNER_FD 3

/* Serves until the worker's end closes: 0; or -1 with a sentence (it could not start). */
int signer_run(const struct conf *c, char *error_r, size_t error_size);

#endif

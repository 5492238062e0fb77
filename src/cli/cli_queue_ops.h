/* cli_queue_ops.h — `mailwerk queue hold|release|bounce`: through the running server's control
 * socket when one answers (its scheduler sees the change at once), else on queue.db directly. */
#ifndef MAILWERK_CLI_QUEUE_OPS_H
#define MAILWERK_CLI_QUEUE_OPS_H

#include <stdbool.h>

#include "server/control_msg.h"

struct conf;

/* type is CONTROL_REQ_HOLD, _RELEASE or _BOUNCE; id NULL: every message (hold and release only).
 * Returns a cli_exit code. */
int cli_queue_op_run(const struct conf *c, enum control_msg_type type, const char *id);

#endif

/* cli_queue_ops.c — hold, release and bounce queued messages (cli_queue_ops.h). The same request
 * goes to the server, or is done here with the same queue and delivery calls the server makes. */
#include "cli/cli_queue_ops.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_common.h"
#include "cli/cli_control.h"
#include "conf/conf.h"
#include "delivery/operator.h"
#include "queue/queue.h"

static const char *cli_queue_op_verb(enum control_msg_type type)
{
	return type == CONTROL_REQ_HOLD ? "held" : type == CONTROL_REQ_RELEASE ? "released" : "bounced";
}

/* What was done, one line, whichever did it: n messages (hold/release) or recipients (bounce). */
static void cli_queue_op_print(enum control_msg_type type, const char *id, long long n, bool server)
{
	const char *by = server ? " (by the running server)" : "";
	if (type == CONTROL_REQ_BOUNCE)
		printf("bounced %s: %lld recipient%s failed%s\n", id, n, n == 1 ? "" : "s", by);
	else if (id != NULL)
		printf("%s %s%s\n", cli_queue_op_verb(type), id, by);
	else
		printf("%s %lld message%s%s\n", cli_queue_op_verb(type), n, n == 1 ? "" : "s", by);
}

static int cli_queue_op_remote(int fd, enum control_msg_type type, const char *id)
{
	struct control_request req = {.type = type, .all = id == NULL};
	char err[600];
	json_t *o;
	if (id != NULL)
		snprintf(req.queue_id, sizeof(req.queue_id), "%s", id);
	if (cli_control_call(fd, &req, &o, err, sizeof(err)) != 0) {
		cli_error("queue %s: %s", control_msg_type_str(type), err);
		return CLI_EXIT_RUNTIME;
	}
	json_t *n = json_object_get(o, type == CONTROL_REQ_BOUNCE ? "recipients" : "messages");
	cli_queue_op_print(type, id, (long long)json_integer_value(n), true);
	json_decref(o);
	return CLI_EXIT_OK;
}

static int cli_queue_op_local(const struct conf *c, enum control_msg_type type, const char *id)
{
	const char *err;
	unsigned n = 0;
	struct queue *q = queue_open(c->data_dir, &err);
	if (q == NULL) {
		cli_error("cannot open the queue in %s: %s", c->data_dir, err);
		return CLI_EXIT_RUNTIME;
	}
	enum result r = type == CONTROL_REQ_BOUNCE ? delivery_bounce_now(q, c->hostname, id, &n, &err)
						   : queue_hold(q, id, type == CONTROL_REQ_HOLD, &n, &err);
	queue_close(q);
	if (r == RESULT_PERMFAIL && strcmp(err, "no such message in the queue") == 0) {
		cli_error("no message %s in the queue", id);
		return CLI_EXIT_RUNTIME;
	}
	if (r != RESULT_OK) {
		cli_error("queue %s: %s", control_msg_type_str(type), err);
		return CLI_EXIT_RUNTIME;
	}
	cli_queue_op_print(type, id, n, false);
	return CLI_EXIT_OK;
}

int cli_queue_op_run(const struct conf *c, enum control_msg_type type, const char *id)
{
	char err[600];
	int fd;
	switch (cli_control_connect(c->data_dir, &fd, err, sizeof(err))) {
	case CLI_CONTROL_CONNECTED: {
		int rc = cli_queue_op_remote(fd, type, id);
		close(fd);
		return rc;
	}
	case CLI_CONTROL_NOT_RUNNING:
	case CLI_CONTROL_NO_PATH: /* a running server then notices the change itself (queue_data_version) */
		return cli_queue_op_local(c, type, id);
	case CLI_CONTROL_FAILED:
		break;
	}
	cli_error("queue %s: %s", control_msg_type_str(type), err);
	return CLI_EXIT_RUNTIME;
}

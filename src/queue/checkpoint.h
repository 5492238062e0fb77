/* checkpoint.h — WAL checkpoints of queue.db off the commit path. SQLite runs an automatic
 * checkpoint inside the COMMIT that passes wal_autocheckpoint pages, so one writer's commit in a
 * thousand also copies the WAL back into the database and waits for its fsync: the group-commit
 * writer stops accepting work meanwhile. Here the writer's connection has automatic checkpoints
 * off and tells a thread of its own, with its own connection, when the WAL has grown; that thread
 * runs PASSIVE checkpoints (sqlite.org/c3ref/wal_checkpoint_v2.html), which never block a writer. */
#ifndef MAILWERK_QUEUE_CHECKPOINT_H
#define MAILWERK_QUEUE_CHECKPOINT_H

#include <sqlite3.h>

struct queue_checkpointer;

/* Starts the thread for the database at path and hooks the writer's connection w (its WAL hook is
 * set, its automatic checkpoints turned off). NULL when it cannot: then w keeps SQLite's automatic
 * checkpoints, so nothing is lost but speed. */
struct queue_checkpointer *queue_checkpointer_start(const char *path, sqlite3 *w);
/* Stops the thread after a last checkpoint; before w is closed. NULL is fine. */
void queue_checkpointer_stop(struct queue_checkpointer *c, sqlite3 *w);

#endif

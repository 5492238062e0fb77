/* cli_upgrade.h — `mailwerk serve --upgrade`: asks the server running with a configuration to
 * upgrade to the binary on disk (SIGUSR2 to its parent, server/parent_upgrade.h) and waits for the
 * outcome, which the serving worker reports through the control socket (`mailwerk status`). */
#ifndef MAILWERK_CLI_CLI_UPGRADE_H
#define MAILWERK_CLI_CLI_UPGRADE_H

struct conf;

/* Prints the outcome. CLI_EXIT_OK when a new worker serves from the new binary, CLI_EXIT_RUNTIME
 * when the upgrade failed (the old worker serves on) or no outcome came in time, and
 * CLI_EXIT_NOT_RUNNING when no server answers. */
int cli_upgrade_run(const struct conf *c);

#endif

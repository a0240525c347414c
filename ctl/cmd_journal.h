/*
 * cmd_journal.h — mdreplctl's journal commands: notify (through
 * mdrepl-journald's control socket) and journal dump / journal status.
 */
#ifndef MDREPL_CMD_JOURNAL_H
#define MDREPL_CMD_JOURNAL_H

#include "conf.h"

/* argv[0] is the command word ("notify" / "journal"). Return an exit
 * status (0 success, 1 failure, 2 usage). */
int cmd_notify(const struct settings *s, int argc, char **argv);
int cmd_journal(const struct settings *s, int argc, char **argv);

#endif

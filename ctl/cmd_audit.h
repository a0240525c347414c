/*
 * cmd_audit.h — `mdreplctl audit`: compare this primary with its standby.
 */
#ifndef MDREPL_CMD_AUDIT_H
#define MDREPL_CMD_AUDIT_H

#include "conf.h"

/* Returns the exit status: 0 no differences (or this node is a standby),
 * 1 differences found, 2 an error or a usage error. */
int cmd_audit(const struct settings *s, int argc, char **argv);

#endif

/*
 * ctl.h — the commands of mdreplctl, one file each. Each takes the loaded
 * settings and its own arguments (argv[0] is the command name) and
 * returns the exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef MDREPL_CTL_H
#define MDREPL_CTL_H

#include "buf.h"
#include "conf.h"
#include "err.h"

int cmd_status(const struct settings *s, int argc, char **argv);

/* Asks a daemon's control socket (STATE_DIR/NAME.sock); the reply in out.
 * Returns 0, or -1 with a message naming the socket (daemon not running). */
int ctl_ask(const struct settings *s, const char *daemon, int argc, const char *const *argv,
	    struct buf *out, struct err *e);

#endif

/*
 * ctl.h — the commands of mdreplctl, one file each. Each takes the loaded
 * settings and its own arguments (argv[0] is the command name) and
 * returns the exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef MDREPL_CTL_H
#define MDREPL_CTL_H

#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "err.h"
#include "hooks.h"
#include "nodestate.h"

/* A role change that happened, but a hook failed (promote, demote,
 * rejoin, switchover). */
#define EXIT_HOOKS 3

int cmd_status(const struct settings *s, int argc, char **argv);
int cmd_promote(const struct settings *s, int argc, char **argv);
int cmd_demote(const struct settings *s, int argc, char **argv);
int cmd_rejoin(const struct settings *s, int argc, char **argv);
int cmd_switchover(const struct settings *s, int argc, char **argv);

/* The local half of a promotion (promote, switchover): fences the local
 * syncd, syncs the mail file system, becomes primary above peer_generation,
 * waits for journald, runs the promote hooks, printing each step (t0_ms:
 * when the command started, for the time it reports). Returns EXIT_OK,
 * EXIT_FAIL (not promoted) or EXIT_HOOKS. */
int ctl_promote_here(const struct settings *s, uint64_t peer_generation, uint64_t t0_ms);
/* Runs the hooks for ev with node's state and prints their report.
 * Returns 0 or -1 (a hook failed). */
int ctl_hooks(const struct settings *s, enum hook_event ev, const struct node_state *node);
/* Prints "usage: mdreplctl SYNOPSIS" to stderr; returns EXIT_USAGE. */
int ctl_usage(const char *synopsis);
/* Prints "mdreplctl: MESSAGE" to stderr; returns EXIT_FAIL. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Asks a daemon's control socket (STATE_DIR/NAME.sock); the reply in out.
 * Returns 0, or -1 with a message naming the socket (daemon not running). */
int ctl_ask(const struct settings *s, const char *daemon, int argc, const char *const *argv,
	    struct buf *out, struct err *e);

#endif

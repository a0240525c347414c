/*
 * hooks.h — the executables in [hooks] dir, run when this node's role
 * changes (promote, demote, rejoin) and around a planned switchover
 * (freeze, thaw), so that an operator's scripts move a service address
 * or stop and start the mail services (DESIGN §8).
 *
 * The hooks run one after the other, in bytewise name order (use
 * "10-vip", "20-dovecot", ...), each as `HOOK EVENT` with the caller's
 * environment plus
 *     MDREPL_EVENT       promote | demote | freeze | thaw | rejoin
 *     MDREPL_ROLE        the node's role after the event
 *     MDREPL_GENERATION  its generation after the event
 *     MDREPL_NODE_ID     its node id (32 hex digits)
 *     MDREPL_PEER        [peer] address
 * stdin from /dev/null, stdout and stderr captured (logged line by line
 * and kept for the caller's report), in a process group of its own and
 * with default signal handling. A hook that exits non-zero, dies of a
 * signal or is still running after the timeout (then its whole process
 * group is killed) has failed. Every hook runs even after an earlier one
 * failed: the caller decides what a failure means. A hook may leave a
 * daemon running; only the hook itself is waited for.
 *
 * Skipped without a word: names starting with '.', anything that is not
 * a regular file (after following a symlink), and files without any
 * execute bit. A missing directory means no hooks.
 *
 * SECURITY: hooks run with the caller's privileges (root). The directory
 * and every hook must be owned by root or the caller and not writable by
 * group or others; otherwise nothing in the directory runs (for the
 * directory) or that hook is refused and counts as failed.
 */
#ifndef MDREPL_HOOKS_H
#define MDREPL_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "nodestate.h"

#define HOOK_OUTPUT_MAX (64 * 1024) /* output kept per hook; the rest is logged only */

enum hook_event { HOOK_PROMOTE, HOOK_DEMOTE, HOOK_FREEZE, HOOK_THAW, HOOK_REJOIN };

const char *hook_event_name(enum hook_event ev);

struct hook_result {
	char *name;	   /* file name in the hooks directory */
	int status;	   /* exit status, or -1: signal, timeout, refused, not started */
	bool timed_out;	   /* killed after the timeout */
	bool refused;	   /* not run: permissions */
	uint64_t ms;	   /* how long it ran */
	struct buf output; /* stdout and stderr, at most HOOK_OUTPUT_MAX bytes */
};

struct hook_report {
	struct hook_result *v;
	size_t n;
	size_t failed; /* results with status != 0 */
};

struct hook_env {
	enum hook_event event;
	const struct node_state *node; /* role, generation, node id after the event */
	const char *peer;	       /* [peer] address */
};

/* Runs every hook in dir for env->event, each bounded by timeout_ms.
 * Returns 0 when all succeeded (or there are none), -1 when one failed
 * or the directory was refused (e says which; the results of the hooks
 * that ran are in *rep either way). rep is owned by the caller:
 * hook_report_free(). */
int hooks_run(const char *dir, uint64_t timeout_ms, const struct hook_env *env,
	      struct hook_report *rep, struct err *e);
void hook_report_free(struct hook_report *rep);
/* Appends one line per hook ("  10-vip: ok, 0.12 s"), then the last lines
 * of a failed hook's output indented; "  (no hooks)" when none ran. */
void hook_report_format(const struct hook_report *rep, struct buf *out);

#endif

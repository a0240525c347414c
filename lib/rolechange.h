/*
 * rolechange.h — the node-state half of promote, demote, rejoin and
 * fencing (DESIGN §8): each is a load-modify-save of STATE_DIR/node.state
 * under nodestate_lock (atomic rename), plus what must go with it. The
 * daemons notice within about a second (they re-read node.state);
 * rolechange_notify() makes mdrepl-journald act on it at once.
 *
 * Used by mdreplctl (promote, demote, rejoin, switchover), by
 * mdrepl-syncd (the demote a switchover asks of the primary, and a
 * primary learning that a peer outranks it) and by the rolling engine.
 */
#ifndef MDREPL_ROLECHANGE_H
#define MDREPL_ROLECHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "nodestate.h"

/* Makes this node the primary with generation
 *     max(generation, max_seen_generation, peer_generation) + 1
 * (peer_generation: the peer's, if known, else 0), not fenced. The
 * standby position is kept: it tells a rejoining old primary what this
 * node had. Returns 0, 1 if already primary (nothing changed), or -1.
 * before_r/after_r (either may be NULL) get the state around the change. */
int rolechange_promote(const struct settings *s, uint64_t peer_generation,
		       struct node_state *before_r, struct node_state *after_r, struct err *e);

/* Makes this node a standby, generation unchanged, not fenced, and forgets
 * its standby position (the next primary to connect does a full compare,
 * which is cheap when the trees agree and right when they do not).
 * Returns 0, 1 if already a standby (the position is still forgotten),
 * or -1. */
int rolechange_demote(const struct settings *s, struct node_state *before_r,
		      struct node_state *after_r, struct err *e);

/* Rejoin: a standby following a primary of the given generation (ours is
 * raised to it), not fenced, standby position forgotten. Returns 0 or -1. */
int rolechange_follow(const struct settings *s, uint64_t generation, struct node_state *before_r,
		      struct node_state *after_r, struct err *e);

/* Records that a peer with generation `by` outranks this primary (fenced;
 * a standby is never marked) or, with fenced = false, that it no longer
 * does. Also raises max_seen_generation to `by`. Returns 0 or -1. */
int rolechange_fenced(const struct settings *s, bool fenced, uint64_t by, struct err *e);

/* Asks the local mdrepl-journald to re-read node.state now and waits (up
 * to timeout_ms) until it has started or stopped journaling accordingly.
 * Returns 0, or -1 (not running, or too slow: it still re-reads node.state
 * every second by itself). */
int rolechange_notify(const struct settings *s, int timeout_ms, struct err *e);

#endif

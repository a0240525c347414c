/*
 * nodestate.h — a node's role, generation and identity (DESIGN §8).
 *
 * Kept in STATE_DIR/node.state, a small text file changed only by atomic
 * rename under an exclusive lock on STATE_DIR/node.lock, so a crash never
 * leaves it half written and two admins cannot interleave changes.
 *
 * The generation orders primaries: promote raises it above every
 * generation the node has seen, and a receiver refuses a sender whose
 * generation is lower than its own (fencing).
 */
#ifndef MDREPL_NODESTATE_H
#define MDREPL_NODESTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define NODE_ID_LEN 16

enum role { ROLE_STANDBY = 0, ROLE_PRIMARY = 1 };

struct node_state {
	enum role role;
	uint64_t generation;
	uint8_t node_id[NODE_ID_LEN];
	uint64_t max_seen_generation; /* highest generation seen from any peer */
	bool fenced;		      /* a peer with a higher generation refused us */
	uint64_t fenced_by;	      /* that peer's generation */
};

const char *role_name(enum role r);
int role_parse(const char *s, enum role *r);

/* Reads STATE_DIR/node.state, creating STATE_DIR and the file (with a new
 * random node id, generation 1 and initial_role) if it does not exist. */
int nodestate_load(const char *state_dir, const char *initial_role, struct node_state *st,
		   struct err *e);
/* Atomically replaces STATE_DIR/node.state. Hold the lock around
 * load-modify-save (nodestate_lock). */
int nodestate_save(const char *state_dir, const struct node_state *st, struct err *e);

/* Takes the exclusive state lock; returns its fd (close to release) or -1. */
int nodestate_lock(const char *state_dir, struct err *e);

/* Hex form of the node id into out (33 bytes). */
void node_id_hex(const uint8_t id[NODE_ID_LEN], char out[2 * NODE_ID_LEN + 1]);

#endif

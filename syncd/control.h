/*
 * control.h — what mdrepl-syncd does for role changes (DESIGN §8,
 * docs/protocol.md §5.3 and §6), kept apart from the replication session
 * itself: which sessions this node admits given its role, generation and
 * a promotion in progress; the journal head a primary reports to a probe;
 * and the CONTROL requests of a switchover (freeze, head, demote, thaw),
 * served in the session process.
 *
 * SECURITY: the peer has passed TLS authentication (the pair's private
 * CA) before any of this runs; a switchover session can run this node's
 * hooks and demote it, which is what the pair trusts each other with.
 */
#ifndef MDREPL_CONTROL_H
#define MDREPL_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "nodestate.h"
#include "session.h"
#include "wire.h"

/* Decides whether this node (state `node`) serves a session the peer
 * opened with HELLO h. Returns 0 to accept, or a wire_errcode with the
 * reason in text. A primary that meets a primary of a higher generation
 * records that it is fenced. */
uint32_t control_admit(const struct settings *s, const struct node_state *node,
		       const struct w_hello *h, const struct syncd_shared *sh, char *text,
		       size_t len);

/* True if the purpose takes the writer lock (mutations may follow). */
bool control_purpose_writes(uint32_t purpose);

/* This node's journal id and last LSN (0, 0 if it has no journal): from
 * mdrepl-journald, or read from the journal files if it does not answer. */
void control_journal_head(const struct settings *s, uint64_t *journal_id_r, uint64_t *head_r);

/* Serves one CONTROL request of a switchover session: runs it and fills
 * rep (its text points into text, owned by the caller). */
void control_request(const struct settings *s, const struct w_control *req,
		     struct w_control_rep *rep, struct buf *text);

#endif

/*
 * peer.h — short sessions with the other node's mdrepl-syncd for role
 * changes (docs/protocol.md §6): a probe, which learns the peer's role,
 * generation and position from its HELLO (a primary reports its own
 * journal and journal head, a standby its durable position), and a
 * switchover session, in which the standby sends its primary CONTROL
 * requests (freeze, head, demote, thaw) and reads their CONTROL_REPs.
 * Replication, rejoin and audit sessions use client.h instead.
 */
#ifndef MDREPL_PEER_H
#define MDREPL_PEER_H

#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "err.h"
#include "wire.h"

/* Connects to [peer] address and exchanges HELLO for PURPOSE_PROBE.
 * Returns 0 with the peer's HELLO in *h (its slices cleared), or -1: not
 * reachable (e->code an errno), or refused (ERR_REFUSED). */
int peer_probe(const struct settings *s, struct w_hello *h, struct err *e);

struct peer;

/* Opens a session of the given purpose, naming our journal (0 = none);
 * the peer's HELLO in *h. Returns the session (peer_free) or NULL. A
 * REJOIN session opened this way only reads the new primary's position
 * for our journal from its HELLO. */
struct peer *peer_open(const struct settings *s, uint32_t purpose, uint64_t journal_id,
		       struct w_hello *h, struct err *e);
/* Sends CONTROL(command) and waits up to timeout_ms for the answer.
 * Returns 0 with the reply in *rep (rep->text points into *text, which
 * the caller owns), or -1 when the session failed (lost, timed out, an
 * ERROR from the peer): whether the command took effect is then unknown. */
int peer_control(struct peer *p, const char *command, int timeout_ms, struct w_control_rep *rep,
		 struct buf *text, struct err *e);
const char *peer_name(const struct peer *p);
void peer_free(struct peer **p);

#endif

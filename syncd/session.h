/*
 * session.h — one connection to mdrepl-syncd, served in its own process:
 * TLS, HELLO, role and generation checks, then queries (digests,
 * listings, signatures, file reads) and batches of mutations applied
 * through apply.h and acknowledged once durable (docs/protocol.md).
 *
 * SECURITY: the peer is authenticated by TLS before a byte of protocol is
 * parsed; every frame is still treated as hostile (wire.c bounds, apply.c
 * confinement). A session runs in a child process, so a crash in it takes
 * down one connection, not the listener.
 */
#ifndef MDREPL_SESSION_H
#define MDREPL_SESSION_H

#include <stdint.h>

#include "conf.h"
#include "conn.h"
#include "maildir.h"

/* Status shared between the listener and its session processes
 * (an anonymous MAP_SHARED mapping made before the first fork). Integers
 * are written with atomic stores; strings are best effort. */
struct syncd_shared {
	uint64_t journal_id;
	uint64_t received_lsn, applied_lsn, durable_lsn;
	uint64_t batches, ops, content_bytes, needs, refused, errors;
	uint64_t last_batch_ns; /* wall clock of the last acknowledged batch */
	uint64_t last_commit_us, max_commit_us; /* time from BATCH_END to ACK */
	uint64_t sender_generation;
	int32_t writer_pid; /* session holding the writer lock, 0 if none */
	uint64_t fence_until_ns; /* a promotion is under way: writers end, none start */
	uint32_t sessions;
	char peer[160];
	char last_error[320];
	uint64_t last_error_ns;
};

struct session_env {
	const struct settings *set;
	struct tls_ctx *tls;
	int rootfd;
	const struct md_rules *rules;
	struct syncd_shared *shared;
};

/* Serves the accepted socket fd until the peer leaves or an error ends
 * the session. Returns the exit status for the session process. */
int session_run(int fd, const struct session_env *env);

/* Records an error in the shared status and the log. */
void shared_error(struct syncd_shared *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

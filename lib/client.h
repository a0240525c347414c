/*
 * client.h — the sending side of a session with the peer's mdrepl-syncd:
 * connect and HELLO, queries (digests, listings, signatures, file reads),
 * and mutations sent in pipelined batches with a window of batches in
 * flight, acknowledged once durable. One-shot sync, the rolling engine,
 * the audit and rejoin all use it, so there is one sending mechanism.
 *
 * Content comes from the local tree beneath a root fd: a PUT names a
 * local path and the client reads, hashes, deflates and chunks it when it
 * is sent. A file already gone is not sent (the journal or the next
 * compare carries its removal). Before sending content the client tries
 * not to: a file whose inode it already sent (a hard-linked copy) or whose
 * content it recently sent (same SHA-256: one message delivered to many
 * users) goes as a LINK, verified on the standby; a NEED in the ACK
 * (source missing there) makes the client send the content after all.
 *
 * Errors: functions return 0 or -1; -1 means the session is unusable
 * (connection lost, batch refused) and the caller reconnects.
 */
#ifndef MDREPL_CLIENT_H
#define MDREPL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "conn.h"
#include "err.h"
#include "maildir.h"
#include "nodestate.h"
#include "scan.h"
#include "wire.h"

struct client_opts {
	const struct settings *set;
	int rootfd; /* local mail root */
	const struct md_rules *rules;
	uint32_t purpose;    /* enum wire_purpose */
	uint64_t journal_id; /* local journal (0 if none) */
	bool dry_run;	     /* log mutations instead of sending them */
};

struct client_stats {
	uint64_t puts, put_bytes; /* files sent whole, their size */
	uint64_t renames, links, copies, unlinks, mkdirs, rmtrees, setattrs;
	uint64_t deltas, delta_bytes; /* metadata deltas, delta size */
	uint64_t dropped;	      /* content gone locally before it was sent */
	uint64_t needs;		      /* NEEDs answered with content */
	uint64_t batches, acked_batches;
	uint64_t query_bytes; /* listing/digest bytes received */
};

struct client;

/* Connects to [peer] address, HELLO with our node state. On success the
 * peer's HELLO (role, generation, positions) is in *peer_r. A refusal
 * (role, generation, version, busy) is an error with code ERR_REFUSED and
 * the peer's explanation. */
int client_connect(const struct client_opts *o, struct client **c_r, struct w_hello *peer_r,
		   struct err *e);
void client_free(struct client **c);
const char *client_peer(const struct client *c);

/* --- queries (each first closes the open batch, so the answer reflects
 * everything sent before it) --- */

typedef int client_digest_fn(const struct w_digest_entry *d, void *ctx);
int client_digests(struct client *c, const char *prefix, uint32_t flags, client_digest_fn *fn,
		   void *ctx, struct err *e);
/* The same, without waiting: the caller works meanwhile (the audit hashes
 * its side while the peer hashes its own), then client_wait() handles the
 * rest of the reply. Replies arriving before that are handled by any call
 * that reads (client_poll). fn and ctx must stay valid until then; no
 * other query may be sent in between. */
int client_digests_start(struct client *c, const char *prefix, uint32_t flags,
			 client_digest_fn *fn, void *ctx, struct err *e);
int client_wait(struct client *c, struct err *e);
/* Lists a folder on the peer; returns 0, 1 if it does not exist there, -1. */
int client_list(struct client *c, const char *folder, uint32_t flags, struct folder_list *out,
		struct err *e);
/* The peer's signature of path (empty if too large), its hash and size.
 * Returns 0, 1 if the file does not exist there, -1. */
int client_sig(struct client *c, const char *path, struct buf *sig, uint8_t sha_r[SHA256_LEN],
	       uint64_t *size_r, struct err *e);

/* --- mutations, in the current batch, each serving journal record lsn ---
 * Content-sending calls (client_put, client_meta, client_link) return 1
 * when the local file exists but cannot be read (permissions, I/O error):
 * nothing was sent, e says why, and the caller retries later without
 * holding up other work. */

int client_put(struct client *c, uint64_t lsn, const char *path, struct err *e);
/* A metadata file: a delta against (base_sha, sig) when given and worth it,
 * else a whole put. */
int client_meta(struct client *c, uint64_t lsn, const char *path, const uint8_t *base_sha,
		struct slice sig, struct err *e);
int client_rename(struct client *c, uint64_t lsn, const char *from, const char *to,
		  struct err *e);
/* Hard link (copy = false) or a copy of from's content (copy = true) on the
 * peer, with the local attributes of `to`. */
int client_link(struct client *c, uint64_t lsn, const char *from, const char *to, bool copy,
		struct err *e);
int client_unlink(struct client *c, uint64_t lsn, const char *path, struct err *e);
/* Creates a directory with the local directory's mode and owner. */
int client_mkdir(struct client *c, uint64_t lsn, const char *path, struct err *e);
int client_rmtree(struct client *c, uint64_t lsn, const char *path, struct err *e);
/* Sends the local mode, owner and mtime of path. */
int client_setattr(struct client *c, uint64_t lsn, const char *path, struct err *e);

/* Ends the current batch: every record <= lsn is covered by what was sent.
 * Waits while the window is full. Also sends an empty batch when lsn moved
 * past what the peer last heard, so its durable position follows. */
int client_commit(struct client *c, uint64_t lsn, struct err *e);
/* Waits until every batch is acknowledged (and NEEDs are resolved). */
int client_drain(struct client *c, int timeout_ms, struct err *e);
/* Reads and handles whatever the peer sent, waiting up to timeout_ms; for
 * event loops. Returns 0 or -1. */
int client_poll(struct client *c, int timeout_ms, struct err *e);
int client_fd(const struct client *c);
/* poll() events to wait for: POLLIN, and POLLOUT while output is queued. */
short client_events(const struct client *c);
/* Sends a PING if nothing was sent for keepalive_s. */
int client_keepalive(struct client *c, struct err *e);

/* True while batches await their ACK or NEEDs their content. */
bool client_busy(const struct client *c);
/* True while a batch ended by client_commit() awaits its ACK. Batches the
 * client ends by itself (cut at batch_max_ops or batch_max_bytes, before a
 * query, for NEEDs) do not count. */
bool client_awaiting_ack(const struct client *c);
/* Large files whose content is still being sent. */
size_t client_transfers(const struct client *c);
/* Positions as the peer last reported them. */
uint64_t client_durable_lsn(const struct client *c);
uint64_t client_received_lsn(const struct client *c);
uint64_t client_applied_lsn(const struct client *c);
/* Highest lsn handed to client_commit. */
uint64_t client_sent_lsn(const struct client *c);

const struct client_stats *client_get_stats(const struct client *c);
uint64_t client_wire_out(const struct client *c);
uint64_t client_wire_in(const struct client *c);

#endif

/*
 * wire.h — the replication protocol's messages and their codec.
 * docs/protocol.md is the normative description; this header mirrors it.
 *
 * A frame is
 *     u8 type | varint payload_len | payload | u32 crc32 (little endian)
 * where the CRC covers type, length and payload, so corruption on a
 * plaintext link is detected and the connection refused (TLS adds its own
 * integrity). payload_len <= WIRE_MAX_PAYLOAD.
 *
 * Payload fields: varint = unsigned LEB128 (at most 10 bytes, no
 * over-long encodings); i64 = zigzag varint; bool = one byte 0 or 1;
 * bytes/str = varint length + bytes; hash = 32 raw bytes; id = 16 raw
 * bytes. Decoders check every length against what is left before use and
 * reject trailing bytes. Decoded slices point into the frame: they live as
 * long as the frame buffer.
 *
 * SECURITY: everything here is parsed from the network. Paths are only
 * bounded here (WIRE_MAX_PATH); whoever uses one validates it with
 * sp_check() and resolves it through safepath.h.
 */
#ifndef MDREPL_WIRE_H
#define MDREPL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "hash.h"
#include "nodestate.h"

#define WIRE_MAGIC "MDREPL"	      /* first field of HELLO */
#define WIRE_VERSION_MIN 1	      /* oldest protocol version spoken */
#define WIRE_VERSION_MAX 1	      /* newest protocol version spoken */
#define WIRE_MAX_PAYLOAD (1u << 20)   /* 1 MiB per frame */
#define WIRE_CHUNK (256u * 1024)      /* content bytes per PUT/DATA frame */
#define WIRE_MAX_PATH 4095
#define WIRE_FRAME_OVERHEAD (1 + 10 + 4)
#define WIRE_DIGEST_LEN 16	      /* folder digest bytes on the wire */
#define WIRE_MAX_FILE (64ULL << 30)   /* largest file accepted: 64 GiB */

/* Capability bits exchanged in HELLO. */
#define CAP_DEFLATE (1ULL << 0) /* bodies may be deflated (zlib) */
#define CAP_DELTA (1ULL << 1)	/* librsync deltas for metadata files */
#define CAP_LINK (1ULL << 2)	/* LINK with hard link or local copy */
#define CAP_ALL (CAP_DEFLATE | CAP_DELTA | CAP_LINK)

enum wire_type {
	/* session */
	W_HELLO = 1,
	W_ERROR = 2,
	W_PING = 3,
	W_PONG = 4,
	/* role-change requests in a SWITCHOVER session (docs/protocol.md §6) */
	W_CONTROL = 5,
	W_CONTROL_REP = 6,
	/* queries: client request, server reply with the same id */
	W_DIGEST_REQ = 10,
	W_DIGEST_REP = 11,
	W_LIST_REQ = 12,
	W_LIST_REP = 13,
	W_SIG_REQ = 14,
	W_SIG_REP = 15,
	W_READ_REQ = 16, /* read a file from the peer (rejoin, audit repair) */
	W_READ_REP = 17,
	/* mutations, applied in order, made durable at BATCH_END */
	W_PUT = 20,
	W_DATA = 21,
	W_RENAME = 23, /* 22 is skipped: it is the first byte of a TLS handshake */
	W_LINK = 24,
	W_UNLINK = 25,
	W_MKDIR = 26,
	W_RMTREE = 27,
	W_DELTA = 28,
	W_SETATTR = 29,
	W_BATCH_END = 30,
	W_ACK = 31,
};

/* HELLO.purpose: what the client wants the session for. */
enum wire_purpose {
	PURPOSE_REPLICATE = 1,	/* rolling replication from the journal */
	PURPOSE_SYNC = 2,	/* one-shot full sync (--all/--user/--folder) */
	PURPOSE_AUDIT = 3,	/* read-only: digests and listings */
	PURPOSE_REJOIN = 4,	/* old primary merging into the new primary */
	PURPOSE_PROBE = 5,	/* status / promote --wait: HELLO exchange only */
	PURPOSE_SWITCHOVER = 6, /* the standby drives a planned swap: CONTROL requests */
};

/* ERROR codes (also used in ACK for failed batches). */
enum wire_errcode {
	WE_PROTOCOL = 1,   /* malformed or unexpected frame */
	WE_VERSION = 2,	   /* no common protocol version */
	WE_ROLE = 3,	   /* receiver is a primary: refuses replication */
	WE_GENERATION = 4, /* sender's generation is lower than ours: fenced */
	WE_BUSY = 5,	   /* another writer session is active */
	WE_PATH = 6,	   /* path refused (absolute, "..", symlink, outside root) */
	WE_NOSPACE = 7,	   /* ENOSPC/EDQUOT: batch not applied; retry later */
	WE_IO = 8,	   /* other I/O failure on the receiver */
	WE_INTEGRITY = 9,  /* content hash or size mismatch */
	WE_AUTH = 10,	   /* certificate or fingerprint refused */
	WE_LIMIT = 11,	   /* a size limit was exceeded */
	WE_NOTFOUND = 12,  /* query target does not exist */
};

/* PUT / DATA / DELTA flags */
#define WF_DEFLATE (1u << 0) /* body is zlib-deflated */
#define WF_CHUNKED (1u << 1) /* PUT: body follows in DATA frames */
#define WF_LAST (1u << 2)    /* DATA: last chunk of the transfer */
/* LINK flags */
#define WF_COPY (1u << 3) /* copy the content locally instead of hard-linking */
/* LIST_REQ / DIGEST_REQ flags */
#define WF_HASH (1u << 4) /* include content SHA-256 of messages (deep) */
/* DIGEST_REQ: prefix names a subtree to walk, "" = the whole mail root */

struct w_hello {
	struct slice magic; /* must equal WIRE_MAGIC */
	uint32_t ver_min, ver_max;
	uint64_t caps;
	uint8_t node_id[NODE_ID_LEN];
	uint32_t role; /* enum role */
	uint64_t generation;
	uint32_t purpose; /* enum wire_purpose */
	uint64_t journal_id;
	uint64_t received_lsn, durable_lsn, applied_lsn;
	struct slice software; /* e.g. "mdrepl 0.1.0" */
};

struct w_error {
	uint32_t code; /* enum wire_errcode */
	struct slice text;
};

struct w_ping {
	uint64_t token;
};

/* CONTROL: a request the standby sends its primary during a switchover
 * ("freeze", "head", "demote", "thaw"); answered by one CONTROL_REP with
 * the same id. */
struct w_control {
	uint32_t id;
	struct slice command;
};

struct w_control_rep {
	uint32_t id;
	uint32_t status;     /* 0, or a wire_errcode: the request failed (text says why) */
	uint32_t role;	     /* the server's role after the request */
	uint64_t generation; /* its generation after the request */
	uint64_t journal_id; /* its journal (0 = none) */
	uint64_t head_lsn;   /* the last LSN in that journal */
	struct slice text;   /* what was done: hook results, errors */
};

struct w_digest_req {
	uint32_t id;
	uint32_t flags;
	struct slice prefix;
};

/* One DIGEST_REP frame: a run of (folder, digest) entries; more frames with
 * the same id follow while `more` is set. Iterate with wire_digest_next(). */
struct w_digest_rep {
	uint32_t id;
	bool more;
	struct slice entries; /* encoded entries, opaque */
};

struct w_digest_entry {
	struct slice folder;
	uint8_t digest[WIRE_DIGEST_LEN];
};

struct w_list_req {
	uint32_t id;
	uint32_t flags;
	struct slice folder;
};

struct w_list_rep {
	uint32_t id;
	uint32_t status; /* 0, or WE_NOTFOUND if the folder does not exist */
	bool more;
	struct slice entries;
};

struct w_list_entry {
	struct slice name; /* relative to the folder: "cur/x:2,S", "new/y", "dovecot-uidlist" */
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode; /* full st_mode: file type and permission bits (scan.h) */
	uint32_t uid, gid;
	uint32_t nlink;
	bool has_hash;
	uint8_t sha256[SHA256_LEN];
};

struct w_sig_req {
	uint32_t id;
	struct slice path;
};

struct w_sig_rep {
	uint32_t id;
	uint32_t status; /* 0, or WE_NOTFOUND */
	uint64_t size;
	uint8_t sha256[SHA256_LEN];
	struct slice sig; /* librsync BLAKE2 signature */
};

struct w_read_req {
	uint32_t id;
	struct slice path;
};

/* READ_REP: file attributes, then its content in one or more frames. */
struct w_read_rep {
	uint32_t id;
	uint32_t status; /* 0, or WE_NOTFOUND */
	bool more;
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode, uid, gid;
	uint32_t flags; /* WF_DEFLATE */
	uint32_t raw_len;
	struct slice body;
};

/* Every mutation carries the journal LSN it serves (0 = not from the
 * journal, e.g. full sync). The receiver reports ops it could not apply
 * for want of content (NEED) by LSN and path in the ACK. */
struct w_put {
	uint64_t lsn;
	struct slice path;
	uint64_t size; /* whole file */
	int64_t mtime_ns;
	uint32_t mode, uid, gid;
	uint8_t sha256[SHA256_LEN];
	uint32_t flags;	  /* WF_DEFLATE, WF_CHUNKED */
	uint32_t xfer_id; /* WF_CHUNKED: DATA frames carry this id */
	uint32_t raw_len; /* bytes the body inflates to (== size unless chunked) */
	struct slice body;
};

struct w_data {
	uint32_t xfer_id;
	uint32_t flags; /* WF_DEFLATE, WF_LAST */
	uint32_t raw_len;
	struct slice body;
};

/* On the wire a rename's target is sent as (to_shared, to_tail): its first
 * to_shared bytes are from's, then to_tail — a flag change costs a few
 * bytes instead of a second path. Encoders fill `to` (the split is made
 * for them); decoders get to_shared and to_tail, `to` left empty: call
 * wire_rename_to() for the target. */
struct w_rename {
	uint64_t lsn;
	struct slice from, to;
	uint32_t to_shared;
	struct slice to_tail;
};

struct w_link {
	uint64_t lsn;
	struct slice from, to;
	uint32_t flags; /* WF_COPY */
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode, uid, gid;
	uint8_t sha256[SHA256_LEN]; /* expected content */
};

struct w_unlink {
	uint64_t lsn;
	struct slice path;
};

struct w_mkdir {
	uint64_t lsn;
	struct slice path;
	uint32_t mode, uid, gid;
};

struct w_rmtree {
	uint64_t lsn;
	struct slice path;
};

struct w_delta {
	uint64_t lsn;
	struct slice path;
	uint8_t base_sha256[SHA256_LEN];   /* what the delta applies to */
	uint8_t result_sha256[SHA256_LEN]; /* what it must produce */
	uint64_t result_size;
	int64_t mtime_ns;
	uint32_t mode, uid, gid;
	uint32_t flags;	  /* WF_DEFLATE */
	uint32_t raw_len; /* inflated delta length */
	struct slice delta;
};

struct w_setattr {
	uint64_t lsn;
	struct slice path;
	int64_t mtime_ns;
	uint32_t mode, uid, gid;
};

struct w_batch_end {
	uint64_t seq; /* increases by one per batch within a session */
	uint64_t lsn; /* every record <= lsn is covered by this and earlier batches */
};

/* ACK: the batch `seq` is durable (status 0) or was refused (status is a
 * wire_errcode, text says why, nothing of it is acknowledged). */
struct w_ack {
	uint64_t seq;
	uint32_t status;
	uint64_t received_lsn, durable_lsn, applied_lsn;
	struct slice text;
	struct slice needs; /* encoded (lsn, path) entries; wire_need_next() */
};

struct w_need {
	uint64_t lsn;
	struct slice path;
};

union w_msg {
	struct w_hello hello;
	struct w_error error;
	struct w_ping ping;
	struct w_control control;
	struct w_control_rep control_rep;
	struct w_digest_req digest_req;
	struct w_digest_rep digest_rep;
	struct w_list_req list_req;
	struct w_list_rep list_rep;
	struct w_sig_req sig_req;
	struct w_sig_rep sig_rep;
	struct w_read_req read_req;
	struct w_read_rep read_rep;
	struct w_put put;
	struct w_data data;
	struct w_rename rename;
	struct w_link link;
	struct w_unlink unlink;
	struct w_mkdir mkdir;
	struct w_rmtree rmtree;
	struct w_delta delta;
	struct w_setattr setattr;
	struct w_batch_end batch_end;
	struct w_ack ack;
};

/* A frame located in a receive buffer. */
struct w_frame {
	uint8_t type;
	const uint8_t *payload;
	size_t len;
};

/* Locates one frame at the start of p[0..len). Returns 1 and fills f and
 * *consumed when a whole frame is there, 0 if more bytes are needed, -1 on
 * an oversized length, a bad varint or a CRC mismatch. */
int wire_frame_parse(const uint8_t *p, size_t len, struct w_frame *f, size_t *consumed,
		     struct err *e);

/* Decodes a frame's payload by its type into m (slices point into the
 * frame). Returns 0, or -1 for an unknown type, a truncated or over-long
 * field, or trailing bytes. */
int wire_decode(const struct w_frame *f, union w_msg *m, struct err *e);

/* Appends one whole frame (header, payload, CRC) for message m of the
 * given type. Returns 0, or -1 if the payload would exceed
 * WIRE_MAX_PAYLOAD. */
int wire_encode(struct buf *out, uint8_t type, const union w_msg *m, struct err *e);

/* Entry lists inside DIGEST_REP, LIST_REP and ACK: appenders build the
 * encoded run, returning 0, or -1 (run unchanged) when the entry would not
 * fit wire_entries_room() or a path exceeds WIRE_MAX_PATH: send the frame,
 * start a new run and append again. Iterators walk a run, returning 1 per
 * entry, 0 at the end, -1 on malformed data (cannot happen on a run that
 * wire_decode() accepted: it validates every entry). *pos starts at 0. */
int wire_digest_append(struct buf *entries, const struct w_digest_entry *d);
int wire_digest_next(struct slice entries, size_t *pos, struct w_digest_entry *d,
		     struct err *e);
int wire_list_append(struct buf *entries, const struct w_list_entry *l);
int wire_list_next(struct slice entries, size_t *pos, struct w_list_entry *l, struct err *e);
int wire_need_append(struct buf *entries, const struct w_need *n);
int wire_need_next(struct slice entries, size_t *pos, struct w_need *n, struct err *e);
/* Bytes that may still be added to an entry run and fit one frame. */
size_t wire_entries_room(const struct buf *entries);

/* The protocol version two HELLOs agree on: the highest version inside
 * both [ver_min, ver_max] ranges, or 0 if there is none. */
uint32_t wire_version_pick(const struct w_hello *a, const struct w_hello *b);

/* The full target of a decoded rename into out (replacing it). */
int wire_rename_to(const struct w_rename *m, struct buf *out);

/* Name of a message type / error code, for logs ("PUT", "generation"). */
const char *wire_type_name(uint8_t type);
const char *wire_errcode_name(uint32_t code);

/* Body compression: deflates in into out if that saves at least 1/16;
 * returns 1 (deflated, use WF_DEFLATE), 0 (not worth it: send raw), -1. */
int wire_deflate(const uint8_t *in, size_t len, int level, struct buf *out);
/* Inflates exactly raw_len bytes; anything else is an error. */
int wire_inflate(struct slice in, size_t raw_len, struct buf *out, struct err *e);

#endif

/*
 * delta.h — librsync deltas for metadata files (DESIGN §4, §6).
 *
 * The standby sends the signature of what it has (SIG_REP); the primary
 * computes a delta from that signature to its current file (DELTA); the
 * standby patches its copy and checks the result's size and SHA-256.
 * Signatures are always RabinKarp + BLAKE2 (never MD4), and everything runs
 * over memory buffers and file descriptors through librsync's streaming
 * rs_job_iter() API.
 *
 * SECURITY: a signature (on the primary) and a delta (on the standby) come
 * from the peer. Signatures are checked before librsync sees them (format,
 * block and hash lengths, whole blocks); a delta's output is bounded by the
 * caller's maximum, and every copy it asks for is read with pread() from
 * the basis, within its size.
 */
#ifndef MDREPL_DELTA_H
#define MDREPL_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define DELTA_MAX_SIG	(16u << 20) /* largest signature accepted */
#define DELTA_MAX_BLOCK (1u << 20)  /* largest block length accepted in one */

/* Computes the signature of the file open at fd (read from offset 0) into
 * sig_r (its old contents are replaced). Returns 0, or -1 (read error). */
int delta_signature(int fd, struct buf *sig_r, struct err *e);
/* The same for content in memory. */
int delta_signature_buf(struct slice data, struct buf *sig_r, struct err *e);

/* Computes the delta that turns the file whose signature is sig into the
 * new content: data, or (delta_make_fd) the file open at fd, read from
 * offset 0. The delta replaces delta_r's contents. Returns 0; 1 if the delta
 * would be longer than max_len (send the whole file instead); -1 for a
 * malformed signature (e->code ERR_CORRUPT) or a read error (errno). */
int delta_make(struct slice sig, struct slice data, size_t max_len, struct buf *delta_r,
	       struct err *e);
int delta_make_fd(struct slice sig, int fd, size_t max_len, struct buf *delta_r, struct err *e);

/* Applies delta to the basis file open at basisfd, writing the result to
 * outfd (at its current offset). *size_r gets the bytes written. Returns 0,
 * or -1: e->code is ERR_CORRUPT for a malformed delta, EFBIG if the result
 * would exceed max_out bytes, or the errno of a failed read or write
 * (ENOSPC...). */
int delta_patch(int basisfd, struct slice delta, int outfd, uint64_t max_out, uint64_t *size_r,
		struct err *e);

#endif

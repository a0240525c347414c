/*
 * delta.c — librsync signatures, deltas and patches over buffers and file
 * descriptors (see delta.h).
 *
 * Every operation is one librsync job driven by drive(): refill the input
 * buffer from a source (memory or fd), run rs_job_iter(), hand the output
 * to a sink (memory with a maximum, or fd with a maximum), until RS_DONE.
 *
 * SECURITY: delta_make() parses a signature from the peer and
 * delta_patch() a delta from the peer. sig_check() validates the signature
 * header and length before librsync allocates anything for it (a huge
 * block length would otherwise size its buffers); patch output is bounded
 * by the caller's maximum and basis reads by the basis file's size.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librsync.h>

#include "delta.h"
#include "fsutil.h"
#include "log.h"
#include "xalloc.h"

#define IOBUF	   (64u * 1024)
#define SIG_HEADER 12
#define STRONG_MAX 32

/* Where a job's input comes from: a file (fd >= 0) or memory. */
struct src {
	int fd;
	struct slice mem;
	size_t pos;
};

/* Where a job's output goes: a buffer (b != NULL), a file (fd >= 0), or
 * nowhere (loading a signature produces nothing). */
struct sink {
	struct buf *b;
	int fd;
	uint64_t total, max;
};

/* The basis of a patch, read by librsync through copy_cb(). */
struct basis {
	int fd;
	int saved_errno;
};

static void trace_cb(rs_loglevel level, char const *msg)
{
	/* Failures reach the caller as return values; keep the library's own
	 * words for debugging only. */
	(void)level;
	log_debug("librsync: %s", msg);
}

static void delta_init(void)
{
	static bool done;

	if (!done) {
		rs_trace_to(trace_cb);
		done = true;
	}
}

static ssize_t src_read(struct src *s, char *out, size_t n)
{
	if (s->fd >= 0) {
		ssize_t r;

		do
			r = read(s->fd, out, n);
		while (r < 0 && errno == EINTR);
		return r;
	}
	if (n > s->mem.len - s->pos)
		n = s->mem.len - s->pos;
	memcpy(out, s->mem.p + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

/* Returns 0, 1 if the output would pass the maximum, or -1. */
static int sink_write(struct sink *k, const char *p, size_t n, struct err *e)
{
	if (n == 0)
		return 0;
	if (n > k->max - k->total)
		return 1;
	k->total += n;
	if (k->b != NULL)
		return buf_append(k->b, p, n) < 0 ? 1 : 0;
	if (k->fd >= 0 && fs_write_all(k->fd, p, n) < 0)
		return err_sys(e, "cannot write the patched file");
	return 0;
}

/* Runs job to completion. Returns 0, 1 if the sink's maximum was reached,
 * or -1 (e->code ERR_CORRUPT for bad input, else an errno). */
static int drive(rs_job_t *job, struct src *in, struct sink *out, const char *what, struct err *e)
{
	char *inbuf = xmalloc(IOBUF), *outbuf = xmalloc(IOBUF);
	rs_buffers_t b = {0};
	rs_result r;
	int ret = 0, stalls = 0;

	do {
		size_t before_in;
		ssize_t n;

		if (b.avail_in == 0 && !b.eof_in) {
			n = src_read(in, inbuf, IOBUF);
			if (n < 0) {
				ret = err_sys(e, "%s: read failed", what);
				break;
			}
			b.next_in = inbuf;
			b.avail_in = (size_t)n;
			b.eof_in = n == 0;
		}
		before_in = b.avail_in;
		b.next_out = outbuf;
		b.avail_out = IOBUF;
		r = rs_job_iter(job, &b);
		if (r != RS_DONE && r != RS_BLOCKED) {
			ret = err_set(e, ERR_CORRUPT, "%s: %s", what, rs_strerror(r));
			break;
		}
		ret = sink_write(out, outbuf, IOBUF - b.avail_out, e);
		if (ret != 0)
			break;
		/* A job that neither consumes nor produces after the end of
		 * its input would spin forever. */
		if (r == RS_BLOCKED && b.eof_in && b.avail_in == before_in &&
		    b.avail_out == IOBUF && ++stalls > 2) {
			ret = err_set(e, ERR_CORRUPT, "%s: input ended early", what);
			break;
		}
	} while (r != RS_DONE);
	free(inbuf);
	free(outbuf);
	return ret;
}

/* Signs what `in` yields (size bytes) into sig_r. */
static int sign(struct src *in, uint64_t size, struct buf *sig_r, struct err *e)
{
	rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
	size_t block_len = 0, strong_len = 0; /* recommended block, longest hash */
	struct sink out = {.b = sig_r, .fd = -1, .max = UINT64_MAX};
	rs_job_t *job;
	int r;

	delta_init();
	buf_reset(sig_r);
	if (rs_sig_args((rs_long_t)size, &magic, &block_len, &strong_len) != RS_DONE)
		return err_set(e, EINVAL, "rs_sig_args refused a file of %llu bytes",
			       (unsigned long long)size);
	job = rs_sig_begin(block_len, strong_len, magic);
	r = drive(job, in, &out, "signature", e);
	rs_job_free(job);
	if (r > 0)
		return err_set(e, EMSGSIZE, "signature longer than its buffer allows");
	return r;
}

int delta_signature(int fd, struct buf *sig_r, struct err *e)
{
	struct src in = {.fd = fd};
	struct stat st;

	if (fstat(fd, &st) < 0)
		return err_sys(e, "cannot stat the signature's basis");
	if (lseek(fd, 0, SEEK_SET) < 0)
		return err_sys(e, "cannot seek the signature's basis");
	return sign(&in, (uint64_t)st.st_size, sig_r, e);
}

int delta_signature_buf(struct slice data, struct buf *sig_r, struct err *e)
{
	struct src in = {.fd = -1, .mem = data};

	return sign(&in, data.len, sig_r, e);
}

static uint32_t be32(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Validates a peer's signature before librsync allocates for it. */
static int sig_check(struct slice sig, struct err *e)
{
	uint32_t magic, block_len, strong_len;

	if (sig.len < SIG_HEADER || sig.len > DELTA_MAX_SIG)
		return err_set(e, ERR_CORRUPT, "signature of %zu bytes refused", sig.len);
	magic = be32(sig.p);
	block_len = be32(sig.p + 4);
	strong_len = be32(sig.p + 8);
	if (magic != RS_RK_BLAKE2_SIG_MAGIC)
		return err_set(e, ERR_CORRUPT, "not a RabinKarp/BLAKE2 signature: magic 0x%08x",
			       magic);
	if (block_len == 0 || block_len > DELTA_MAX_BLOCK || strong_len == 0 ||
	    strong_len > STRONG_MAX)
		return err_set(e, ERR_CORRUPT, "signature block %u / hash %u bytes refused",
			       block_len, strong_len);
	if ((sig.len - SIG_HEADER) % (4 + strong_len) != 0)
		return err_set(e, ERR_CORRUPT, "signature ends inside a block");
	return 0;
}

static int make(struct slice sig, struct src *in, size_t max_len, struct buf *delta_r,
		struct err *e)
{
	struct src sigsrc = {.fd = -1, .mem = sig};
	struct sink none = {.fd = -1, .max = UINT64_MAX},
		    out = {.b = delta_r, .fd = -1, .max = max_len};
	rs_signature_t *sums = NULL;
	rs_job_t *job;
	int r;

	delta_init();
	buf_reset(delta_r);
	if (sig_check(sig, e) < 0)
		return -1;
	job = rs_loadsig_begin(&sums);
	r = drive(job, &sigsrc, &none, "loading the signature", e);
	rs_job_free(job);
	if (r == 0 && rs_build_hash_table(sums) != RS_DONE)
		r = err_set(e, ERR_CORRUPT, "cannot index the signature");
	if (r == 0) {
		job = rs_delta_begin(sums);
		r = drive(job, in, &out, "delta", e);
		rs_job_free(job);
	}
	if (sums != NULL)
		rs_free_sumset(sums);
	return r;
}

int delta_make(struct slice sig, struct slice data, size_t max_len, struct buf *delta_r,
	       struct err *e)
{
	struct src in = {.fd = -1, .mem = data};

	return make(sig, &in, max_len, delta_r, e);
}

int delta_make_fd(struct slice sig, int fd, size_t max_len, struct buf *delta_r, struct err *e)
{
	struct src in = {.fd = fd};

	if (lseek(fd, 0, SEEK_SET) < 0)
		return err_sys(e, "cannot seek the new content");
	return make(sig, &in, max_len, delta_r, e);
}

static rs_result copy_cb(void *arg, rs_long_t pos, size_t *len, void **buf)
{
	struct basis *b = arg;
	ssize_t n;

	if (pos < 0)
		return RS_CORRUPT;
	do
		n = pread(b->fd, *buf, *len, (off_t)pos);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		b->saved_errno = errno;
		return RS_IO_ERROR;
	}
	if (n == 0)
		return RS_INPUT_ENDED; /* a copy past the end of the basis */
	*len = (size_t)n;
	return RS_DONE;
}

int delta_patch(int basisfd, struct slice delta, int outfd, uint64_t max_out, uint64_t *size_r,
		struct err *e)
{
	struct basis basis = {.fd = basisfd};
	struct src in = {.fd = -1, .mem = delta};
	struct sink out = {.fd = outfd, .max = max_out};
	rs_job_t *job;
	int r;

	delta_init();
	*size_r = 0;
	job = rs_patch_begin(copy_cb, &basis);
	r = drive(job, &in, &out, "patch", e);
	rs_job_free(job);
	if (r > 0)
		return err_set(e, EFBIG, "delta result exceeds %llu bytes",
			       (unsigned long long)max_out);
	if (r < 0 && basis.saved_errno != 0) {
		errno = basis.saved_errno;
		return err_sys(e, "cannot read the delta's basis");
	}
	*size_r = out.total;
	return r;
}

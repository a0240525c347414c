/*
 * deflate.c — body compression for the wire (declared in wire.h):
 * per-frame zlib streams, used only when they save space.
 *
 * Each process keeps one deflate stream per strategy and one inflate
 * stream, reset between frames: zlib's set-up (some 270 KB of state for
 * deflate, with hash tables it zeroes) costs more than compressing a
 * typical 6 KB message — with compress2() per frame the full sync spent
 * five times longer in zlib. The daemons are single-threaded.
 *
 * Data that LZ77 cannot shrink much (base64 attachments, already
 * compressed formats) is Huffman-coded only: about four times faster
 * than level 1 and, on base64, as small. A sample from the middle of the
 * buffer decides, so that a message's text headers do not.
 *
 * SECURITY: wire_inflate() bounds the output by the declared raw length
 * (at most one frame's worth), so a "zip bomb" cannot make it allocate
 * more than that, and a stream that inflates to anything else is refused.
 */
#include "config.h"

#include <string.h>
#include <zlib.h>

#include "wire.h"

#define SAMPLE_MIN (16u * 1024) /* smaller bodies are deflated without a sample */
#define SAMPLE_LEN 4096u
#define SAMPLE_POOR 75		/* % of the sample left after LZ77: Huffman only */

struct zstate {
	z_stream s;
	bool ready;
	int level;
};

static struct zstate lz, huff, inf;

/* The deflate stream for level and strategy, reset; NULL on failure. */
static z_stream *deflater(struct zstate *z, int level, int strategy)
{
	if (z->ready && z->level != level) {
		deflateEnd(&z->s);
		z->ready = false;
	}
	if (!z->ready) {
		memset(&z->s, 0, sizeof(z->s));
		if (deflateInit2(&z->s, level, Z_DEFLATED, 15, 8, strategy) != Z_OK)
			return NULL;
		z->ready = true;
		z->level = level;
	} else if (deflateReset(&z->s) != Z_OK) {
		return NULL;
	}
	return &z->s;
}

/* Deflates in[0..len) into out (cap bytes); returns the length or 0. */
static size_t run_deflate(z_stream *s, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	s->next_in = (Bytef *)(uintptr_t)in;
	s->avail_in = (uInt)len;
	s->next_out = out;
	s->avail_out = (uInt)cap;
	return deflate(s, Z_FINISH) == Z_STREAM_END ? (size_t)s->total_out : 0;
}

/* True when LZ77 leaves most of a sample from the middle of in. */
static bool poorly_compressible(const uint8_t *in, size_t len, int level, uint8_t *scratch,
				size_t cap)
{
	z_stream *s;
	size_t n;

	if (len < SAMPLE_MIN)
		return false;
	s = deflater(&lz, level, Z_DEFAULT_STRATEGY);
	if (s == NULL)
		return false;
	n = run_deflate(s, in + len / 2 - SAMPLE_LEN / 2, SAMPLE_LEN, scratch, cap);
	return n == 0 || n * 100 > (size_t)SAMPLE_LEN * SAMPLE_POOR;
}

int wire_deflate(const uint8_t *in, size_t len, int level, struct buf *out)
{
	size_t cap = compressBound((uLong)len), n;
	uint8_t *space;
	z_stream *s;

	buf_reset(out);
	if (len < 64 || level <= 0)
		return 0; /* headers would eat the gain */
	if (level > 9)
		level = 9;
	space = buf_space(out, cap);
	if (space == NULL)
		return -1;
	if (poorly_compressible(in, len, level, space, cap))
		s = deflater(&huff, 1, Z_HUFFMAN_ONLY);
	else
		s = deflater(&lz, level, Z_DEFAULT_STRATEGY);
	if (s == NULL)
		return -1;
	n = run_deflate(s, in, len, space, cap);
	if (n == 0)
		return -1;
	if (n > len - len / 16)
		return 0;
	buf_commit(out, n);
	return 1;
}

int wire_inflate(struct slice in, size_t raw_len, struct buf *out, struct err *e)
{
	uint8_t *space;
	int r;

	buf_reset(out);
	if (raw_len > WIRE_MAX_PAYLOAD)
		return err_set(e, WE_LIMIT, "inflated length %zu exceeds %u", raw_len,
			       WIRE_MAX_PAYLOAD);
	space = buf_space(out, raw_len + 1);
	if (space == NULL)
		return err_set(e, WE_LIMIT, "inflate buffer limit");
	if (!inf.ready) {
		memset(&inf.s, 0, sizeof(inf.s));
		if (inflateInit(&inf.s) != Z_OK)
			return err_set(e, WE_IO, "zlib inflate set-up failed");
		inf.ready = true;
	} else if (inflateReset(&inf.s) != Z_OK) {
		return err_set(e, WE_IO, "zlib inflate reset failed");
	}
	inf.s.next_in = (Bytef *)(uintptr_t)in.p;
	inf.s.avail_in = (uInt)in.len;
	inf.s.next_out = space;
	/* One byte of slack: a stream longer than declared fills it and fails. */
	inf.s.avail_out = (uInt)raw_len + 1;
	r = inflate(&inf.s, Z_FINISH);
	if (r != Z_STREAM_END || inf.s.total_out != raw_len || inf.s.avail_in != 0)
		return err_set(e, WE_INTEGRITY,
			       "deflated body does not inflate to the declared %zu bytes", raw_len);
	buf_commit(out, raw_len);
	return 0;
}

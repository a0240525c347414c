/*
 * deflate.c — body compression for the wire (declared in wire.h):
 * per-frame zlib streams, used only when they save space.
 *
 * SECURITY: wire_inflate() bounds the output by the declared raw length
 * (at most one frame's worth), so a "zip bomb" cannot make it allocate
 * more than that, and a stream that inflates to anything else is refused.
 */
#include "config.h"

#include <zlib.h>

#include "wire.h"

int wire_deflate(const uint8_t *in, size_t len, int level, struct buf *out)
{
	uLongf cap = compressBound((uLong)len);
	uint8_t *space;

	buf_reset(out);
	if (len < 64 || level <= 0)
		return 0; /* headers would eat the gain */
	space = buf_space(out, cap);
	if (space == NULL)
		return -1;
	if (compress2(space, &cap, in, (uLong)len, level) != Z_OK)
		return -1;
	if (cap > len - len / 16)
		return 0;
	buf_commit(out, cap);
	return 1;
}

int wire_inflate(struct slice in, size_t raw_len, struct buf *out, struct err *e)
{
	uLongf got = (uLongf)raw_len;
	uint8_t *space;
	int r;

	buf_reset(out);
	if (raw_len > WIRE_MAX_PAYLOAD)
		return err_set(e, WE_LIMIT, "inflated length %zu exceeds %u", raw_len,
			       WIRE_MAX_PAYLOAD);
	space = buf_space(out, raw_len + 1);
	if (space == NULL)
		return err_set(e, WE_LIMIT, "inflate buffer limit");
	/* One byte of slack: a stream longer than declared fills it and fails. */
	got = (uLongf)raw_len + 1;
	r = uncompress(space, &got, (const Bytef *)in.p, (uLong)in.len);
	if (r != Z_OK || got != raw_len)
		return err_set(e, WE_INTEGRITY,
			       "deflated body does not inflate to the declared %zu bytes", raw_len);
	buf_commit(out, raw_len);
	return 0;
}

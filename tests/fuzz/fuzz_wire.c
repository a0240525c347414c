/*
 * fuzz_wire.c — libFuzzer target for the wire decoder (`make fuzz`, see
 * tests/fuzz/README).
 *
 * Each input is tried two ways: as a stream of frames (wire_frame_parse,
 * wire_decode, entry iterators, inflating deflated bodies), and as one
 * type byte followed by a payload handed to wire_decode directly, so that
 * mutations reach the field decoders without having to fix up a CRC.
 * Oracle beyond "no crash, no sanitizer report": the encoding is
 * canonical, so any payload the decoder accepts must re-encode to exactly
 * the same bytes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_entries(uint8_t type, const union w_msg *m)
{
	size_t pos = 0;
	int rc = 0;

	if (type == W_DIGEST_REP) {
		struct w_digest_entry d;
		while ((rc = wire_digest_next(m->digest_rep.entries, &pos, &d, NULL)) == 1)
			;
	} else if (type == W_LIST_REP) {
		struct w_list_entry l;
		while ((rc = wire_list_next(m->list_rep.entries, &pos, &l, NULL)) == 1)
			;
	} else if (type == W_ACK) {
		struct w_need n;
		while ((rc = wire_need_next(m->ack.needs, &pos, &n, NULL)) == 1)
			;
	}
	if (rc != 0)
		abort(); /* wire_decode validated every entry */
}

static void inflate_body(uint8_t type, const union w_msg *m)
{
	struct buf out = BUF_INIT;

	if (type == W_PUT && (m->put.flags & WF_DEFLATE))
		wire_inflate(m->put.body, m->put.raw_len, &out, NULL);
	else if (type == W_DATA && (m->data.flags & WF_DEFLATE))
		wire_inflate(m->data.body, m->data.raw_len, &out, NULL);
	else if (type == W_DELTA && (m->delta.flags & WF_DEFLATE))
		wire_inflate(m->delta.delta, m->delta.raw_len, &out, NULL);
	buf_free(&out);
}

static void check_canonical(const struct w_frame *f, const union w_msg *m)
{
	struct buf out = BUF_INIT;
	struct w_frame g;
	size_t used;

	if (wire_encode(&out, f->type, m, NULL) < 0 ||
	    wire_frame_parse(out.data, out.len, &g, &used, NULL) != 1 || used != out.len ||
	    g.len != f->len || memcmp(g.payload, f->payload, f->len) != 0)
		abort();
	buf_free(&out);
}

static void accepted(const struct w_frame *f)
{
	union w_msg m;

	if (wire_decode(f, &m, NULL) < 0)
		return;
	walk_entries(f->type, &m);
	inflate_body(f->type, &m);
	check_canonical(f, &m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct w_frame f;
	size_t used, off = 0;

	while (off < size && wire_frame_parse(data + off, size - off, &f, &used, NULL) == 1) {
		accepted(&f);
		off += used;
	}
	if (size >= 1 && size - 1 <= WIRE_MAX_PAYLOAD) {
		f.type = data[0];
		f.payload = data + 1;
		f.len = size - 1;
		accepted(&f);
	}
	return 0;
}

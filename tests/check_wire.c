/*
 * check_wire.c — the protocol codec: a byte-exact example frame, every
 * message type round-tripped field by field, entry runs (many entries,
 * the room limit), every class of malformed input refused (truncation at
 * every offset, CRC, lengths, varints, overflow, trailing bytes, unknown
 * types, bools, paths, magic, flags), and a seeded random-mutation loop
 * that must never crash (run it under ASan: scripts/test.sh --sanitize).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "wire.h"
#include "wiresamples.h"

/* ---------------------------------------------------------------- helpers */

static void put_varint(struct buf *b, uint64_t v)
{
	while (v >= 0x80) {
		buf_putc(b, (char)(v | 0x80));
		v >>= 7;
	}
	buf_putc(b, (char)v);
}

static void put_str(struct buf *b, const char *s, size_t n)
{
	put_varint(b, n);
	buf_append(b, s, n);
}

/* Frames a hand-made payload with a correct header and CRC. */
static void frame_raw(struct buf *out, uint8_t type, const struct buf *payload)
{
	size_t start = out->len;
	uint32_t crc;
	uint8_t le[4];

	buf_putc(out, (char)type);
	put_varint(out, payload->len);
	buf_append(out, payload->data, payload->len);
	crc = crc32_update(0, out->data + start, out->len - start);
	for (int i = 0; i < 4; i++)
		le[i] = (uint8_t)(crc >> (8 * i));
	buf_append(out, le, 4);
}

/* Parses exactly one whole frame out of b and decodes it. */
static int parse_decode(const struct buf *b, struct w_frame *f, union w_msg *m, struct err *e)
{
	size_t used = 0;
	int rc = wire_frame_parse(b->data, b->len, f, &used, e);

	if (rc != 1)
		return rc == 0 ? err_set(e, 0, "incomplete") : -1;
	ck_assert_uint_eq(used, b->len);
	return wire_decode(f, m, e);
}

/* Decodes a hand-made payload of the given type; returns wire_decode's result. */
static int decode_raw(uint8_t type, const struct buf *payload, struct err *e)
{
	struct buf fr = BUF_INIT;
	struct w_frame f;
	union w_msg m;
	int rc;

	frame_raw(&fr, type, payload);
	rc = parse_decode(&fr, &f, &m, e);
	buf_free(&fr);
	return rc;
}

#define EQ(x)  ck_assert_msg(a->x == b->x, "%s differs", #x)
#define SEQ(x) ck_assert_msg(slice_eq(a->x, b->x), "%s differs", #x)
#define HEQ(x) ck_assert_mem_eq(a->x, b->x, sizeof(a->x))

static void eq_session(uint8_t t, const union w_msg *a, const union w_msg *b)
{
	if (t == W_HELLO) {
		SEQ(hello.magic);
		EQ(hello.ver_min);
		EQ(hello.ver_max);
		EQ(hello.caps);
		HEQ(hello.node_id);
		EQ(hello.role);
		EQ(hello.generation);
		EQ(hello.purpose);
		EQ(hello.journal_id);
		EQ(hello.received_lsn);
		EQ(hello.durable_lsn);
		EQ(hello.applied_lsn);
		SEQ(hello.software);
	} else if (t == W_ERROR) {
		EQ(error.code);
		SEQ(error.text);
	} else if (t == W_PING || t == W_PONG) {
		EQ(ping.token);
	} else if (t == W_CONTROL) {
		EQ(control.id);
		SEQ(control.command);
	} else if (t == W_CONTROL_REP) {
		EQ(control_rep.id);
		EQ(control_rep.status);
		EQ(control_rep.role);
		EQ(control_rep.generation);
		EQ(control_rep.journal_id);
		EQ(control_rep.head_lsn);
		SEQ(control_rep.text);
	} else if (t == W_BATCH_END) {
		EQ(batch_end.seq);
		EQ(batch_end.lsn);
	} else if (t == W_ACK) {
		EQ(ack.seq);
		EQ(ack.status);
		EQ(ack.received_lsn);
		EQ(ack.durable_lsn);
		EQ(ack.applied_lsn);
		SEQ(ack.text);
		SEQ(ack.needs);
	}
}

static void eq_query(uint8_t t, const union w_msg *a, const union w_msg *b)
{
	switch (t) {
	case W_DIGEST_REQ:
		EQ(digest_req.id);
		EQ(digest_req.flags);
		SEQ(digest_req.prefix);
		break;
	case W_DIGEST_REP:
		EQ(digest_rep.id);
		EQ(digest_rep.more);
		SEQ(digest_rep.entries);
		break;
	case W_LIST_REQ:
		EQ(list_req.id);
		EQ(list_req.flags);
		SEQ(list_req.folder);
		break;
	case W_LIST_REP:
		EQ(list_rep.id);
		EQ(list_rep.status);
		EQ(list_rep.more);
		SEQ(list_rep.entries);
		break;
	case W_SIG_REQ:
		EQ(sig_req.id);
		SEQ(sig_req.path);
		break;
	case W_SIG_REP:
		EQ(sig_rep.id);
		EQ(sig_rep.status);
		EQ(sig_rep.size);
		HEQ(sig_rep.sha256);
		SEQ(sig_rep.sig);
		break;
	case W_READ_REQ:
		EQ(read_req.id);
		SEQ(read_req.path);
		break;
	case W_READ_REP:
		EQ(read_rep.id);
		EQ(read_rep.status);
		EQ(read_rep.more);
		EQ(read_rep.size);
		EQ(read_rep.mtime_ns);
		EQ(read_rep.mode);
		EQ(read_rep.uid);
		EQ(read_rep.gid);
		EQ(read_rep.flags);
		EQ(read_rep.raw_len);
		SEQ(read_rep.body);
		break;
	default: break;
	}
}

static void eq_mutation(uint8_t t, const union w_msg *a, const union w_msg *b)
{
	switch (t) {
	case W_PUT:
		EQ(put.lsn);
		SEQ(put.path);
		EQ(put.size);
		EQ(put.mtime_ns);
		EQ(put.mode);
		EQ(put.uid);
		EQ(put.gid);
		HEQ(put.sha256);
		EQ(put.flags);
		EQ(put.xfer_id);
		EQ(put.raw_len);
		SEQ(put.body);
		break;
	case W_DATA:
		EQ(data.xfer_id);
		EQ(data.flags);
		EQ(data.raw_len);
		SEQ(data.body);
		break;
	case W_RENAME: {
		struct buf to = BUF_INIT;

		EQ(rename.lsn);
		SEQ(rename.from);
		/* The decoded side carries the target split; join it. */
		ck_assert_int_eq(wire_rename_to(&b->rename, &to), 0);
		ck_assert(slice_eq(a->rename.to, buf_slice(&to)));
		buf_free(&to);
		break;
	}
	case W_LINK:
		EQ(link.lsn);
		SEQ(link.from);
		SEQ(link.to);
		EQ(link.flags);
		EQ(link.size);
		EQ(link.mtime_ns);
		EQ(link.mode);
		EQ(link.uid);
		EQ(link.gid);
		HEQ(link.sha256);
		break;
	case W_UNLINK:
		EQ(unlink.lsn);
		SEQ(unlink.path);
		break;
	case W_MKDIR:
		EQ(mkdir.lsn);
		SEQ(mkdir.path);
		EQ(mkdir.mode);
		EQ(mkdir.uid);
		EQ(mkdir.gid);
		break;
	case W_RMTREE:
		EQ(rmtree.lsn);
		SEQ(rmtree.path);
		break;
	case W_DELTA:
		EQ(delta.lsn);
		SEQ(delta.path);
		HEQ(delta.base_sha256);
		HEQ(delta.result_sha256);
		EQ(delta.result_size);
		EQ(delta.mtime_ns);
		EQ(delta.mode);
		EQ(delta.uid);
		EQ(delta.gid);
		EQ(delta.flags);
		EQ(delta.raw_len);
		SEQ(delta.delta);
		break;
	case W_SETATTR:
		EQ(setattr.lsn);
		SEQ(setattr.path);
		EQ(setattr.mtime_ns);
		EQ(setattr.mode);
		EQ(setattr.uid);
		EQ(setattr.gid);
		break;
	default: break;
	}
}

/* Encodes sample i into out; returns its type and leaves the message in m. */
static uint8_t encode_sample(size_t i, union w_msg *m, struct buf *out)
{
	struct err e;
	uint8_t t = ws_sample(i, m);

	buf_reset(out);
	ck_assert_msg(wire_encode(out, t, m, &e) == 0, "sample %zu: %s", i, e.msg);
	return t;
}

/* ---------------------------------------------------------------- core */

/* A flag change costs a few bytes for its target, and the split target
 * is checked: within the source, canonical, not too long, not empty. */
START_TEST(test_rename_compact)
{
	const char *from = "example.com/bob/Maildir/.Sent/cur/1700000000.M1P2.host,S=9,W=9:2,S";
	const char *to = "example.com/bob/Maildir/.Sent/cur/1700000000.M1P2.host,S=9,W=9:2,RS";
	union w_msg m = {.rename = {.lsn = 5, .from = slice_cstr(from), .to = slice_cstr(to)}};
	struct buf out = BUF_INIT, joined = BUF_INIT;
	struct w_frame f;
	union w_msg d;
	struct err e;
	size_t used;

	ck_assert_int_eq(wire_encode(&out, W_RENAME, &m, &e), 0);
	ck_assert_uint_lt(out.len, strlen(from) + 16);
	ck_assert_int_eq(wire_frame_parse(out.data, out.len, &f, &used, &e), 1);
	ck_assert_int_eq(wire_decode(&f, &d, &e), 0);
	ck_assert_uint_eq(d.rename.to.len, 0);
	ck_assert_int_eq(wire_rename_to(&d.rename, &joined), 0);
	ck_assert_str_eq(buf_cstr(&joined), to);

	/* Hand-made split fields, encoded as given (to left empty). */
	m.rename.to = (struct slice){"", 0};
	m.rename.to_shared = (uint32_t)strlen(from) + 1;
	m.rename.to_tail = SLICE_LIT("x");
	buf_reset(&out);
	ck_assert_int_eq(wire_encode(&out, W_RENAME, &m, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "exceeds the source"));
	m.rename.to_shared = 3; /* "exa" then "mple..." is not the longest prefix */
	m.rename.to_tail = SLICE_LIT("mple.org/x");
	ck_assert_int_eq(wire_encode(&out, W_RENAME, &m, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "longest"));
	m.rename.to_shared = 0;
	m.rename.to_tail = SLICE_LIT("");
	ck_assert_int_eq(wire_encode(&out, W_RENAME, &m, &e), -1);
	m.rename.to_shared = 7; /* "example" then "-org": fine */
	m.rename.to_tail = SLICE_LIT("-org/x");
	ck_assert_int_eq(wire_encode(&out, W_RENAME, &m, &e), 0);
	buf_free(&out);
	buf_free(&joined);
}
END_TEST

START_TEST(test_golden_ping)
{
	/* docs/protocol.md's example: PING token 300 = 03 02 ac 02 + CRC. */
	static const uint8_t want[] = {0x03, 0x02, 0xac, 0x02, 0x55, 0x36, 0xc9, 0xdc};
	union w_msg m = {.ping = {300}};
	struct buf out = BUF_INIT;
	uint32_t crc = crc32_update(0, want, 4);
	struct err e;

	ck_assert_int_eq(wire_encode(&out, W_PING, &m, &e), 0);
	ck_assert_uint_eq(out.len, sizeof(want));
	ck_assert_mem_eq(out.data, want, 4);
	ck_assert_uint_eq(
	    out.data[4] | out.data[5] << 8 | out.data[6] << 16 | (uint32_t)out.data[7] << 24, crc);
	ck_assert_mem_eq(out.data, want, sizeof(want));
	buf_free(&out);
}
END_TEST

START_TEST(test_roundtrip)
{
	struct buf out = BUF_INIT, again = BUF_INIT;
	union w_msg orig, got;
	struct w_frame f;
	struct err e;
	uint8_t t = encode_sample((size_t)_i, &orig, &out);

	ck_assert_msg(parse_decode(&out, &f, &got, &e) == 0, "sample %d (%s): %s", _i,
		      wire_type_name(t), e.msg);
	ck_assert_uint_eq(f.type, t);
	eq_session(t, &orig, &got);
	eq_query(t, &orig, &got);
	eq_mutation(t, &orig, &got);
	/* Re-encoding the decoded message gives the same bytes. */
	ck_assert_int_eq(wire_encode(&again, t, &got, &e), 0);
	ck_assert_uint_eq(again.len, out.len);
	ck_assert_mem_eq(again.data, out.data, out.len);
	buf_free(&out);
	buf_free(&again);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(wire_type_name(W_PUT), "PUT");
	ck_assert_str_eq(wire_type_name(W_BATCH_END), "BATCH_END");
	ck_assert_str_eq(wire_type_name(22), "unknown");
	ck_assert_str_eq(wire_type_name(255), "unknown");
	ck_assert_str_eq(wire_errcode_name(WE_GENERATION), "generation");
	ck_assert_str_eq(wire_errcode_name(WE_NOTFOUND), "notfound");
	ck_assert_str_eq(wire_errcode_name(0), "ok");
	ck_assert_str_eq(wire_errcode_name(9999), "unknown");
	for (size_t i = 0; i < ws_count(); i++) {
		union w_msg m;
		ck_assert_str_ne(wire_type_name(ws_sample(i, &m)), "unknown");
	}
}
END_TEST

START_TEST(test_version_pick)
{
	struct w_hello a = {.ver_min = 1, .ver_max = 3}, b = {.ver_min = 2, .ver_max = 5};

	ck_assert_uint_eq(wire_version_pick(&a, &b), 3);
	b.ver_min = 4;
	ck_assert_uint_eq(wire_version_pick(&a, &b), 0);
	b = (struct w_hello){.ver_min = 1, .ver_max = 1};
	ck_assert_uint_eq(wire_version_pick(&a, &b), 1);
}
END_TEST

START_TEST(test_stream_of_frames)
{
	/* Many frames back to back parse one after the other. */
	struct buf all = BUF_INIT, one = BUF_INIT;
	size_t pos = 0, n = 0;
	union w_msg m;
	struct w_frame f;
	struct err e;

	for (size_t i = 0; i < ws_count(); i++) {
		encode_sample(i, &m, &one);
		buf_append(&all, one.data, one.len);
	}
	while (pos < all.len) {
		size_t used;
		ck_assert_int_eq(wire_frame_parse(all.data + pos, all.len - pos, &f, &used, &e), 1);
		ck_assert_int_eq(wire_decode(&f, &m, &e), 0);
		pos += used;
		n++;
	}
	ck_assert_uint_eq(n, ws_count());
	buf_free(&all);
	buf_free(&one);
}
END_TEST

/* ---------------------------------------------------------------- entry runs */

START_TEST(test_entries_many)
{
	struct buf run = BUF_INIT, fr = BUF_INIT;
	char name[64];
	union w_msg m = {0}, got;
	struct w_list_entry l;
	struct w_frame f;
	size_t pos = 0, n = 0;
	struct err e;

	for (size_t i = 0; i < 5000; i++) {
		int len = snprintf(name, sizeof(name), "cur/%zu.M%zu:2,S", i, i * 7);
		struct w_list_entry in = {.name = {name, (size_t)len},
					  .size = i,
					  .mtime_ns = -(int64_t)i,
					  .mode = 0600,
					  .nlink = 1,
					  .has_hash = i % 3 == 0};
		memset(in.sha256, (int)(i & 0xff), SHA256_LEN);
		ck_assert_int_eq(wire_list_append(&run, &in), 0);
	}
	m.list_rep = (struct w_list_rep){1, 0, false, buf_slice(&run)};
	ck_assert_int_eq(wire_encode(&fr, W_LIST_REP, &m, &e), 0);
	ck_assert_int_eq(parse_decode(&fr, &f, &got, &e), 0);
	while (wire_list_next(got.list_rep.entries, &pos, &l, &e) == 1) {
		int len = snprintf(name, sizeof(name), "cur/%zu.M%zu:2,S", n, n * 7);
		uint8_t h[SHA256_LEN];
		ck_assert(slice_eq(l.name, (struct slice){name, (size_t)len}));
		ck_assert_uint_eq(l.size, n);
		ck_assert_int_eq(l.mtime_ns, -(int64_t)n);
		ck_assert_int_eq(l.has_hash, n % 3 == 0);
		memset(h, l.has_hash ? (int)(n & 0xff) : 0, SHA256_LEN);
		ck_assert_mem_eq(l.sha256, h, SHA256_LEN);
		n++;
	}
	ck_assert_uint_eq(n, 5000);
	ck_assert_uint_eq(pos, run.len);
	buf_free(&run);
	buf_free(&fr);
}
END_TEST

START_TEST(test_entries_room)
{
	/* Fill runs until the appender refuses; each run still makes a frame
	 * with its other fields, and nothing is lost across frames. */
	struct buf run = BUF_INIT, fr = BUF_INIT;
	struct w_need nd = {UINT64_MAX, {NULL, WIRE_MAX_PATH}};
	char *path = malloc(WIRE_MAX_PATH + 1);
	union w_msg m = {0};
	struct err e;
	size_t count = 0;

	memset(path, 'n', WIRE_MAX_PATH);
	nd.path.p = path;
	while (wire_need_append(&run, &nd) == 0)
		count++;
	ck_assert_uint_gt(count, 200);
	ck_assert_uint_lt(wire_entries_room(&run), 10 + 2 + WIRE_MAX_PATH);
	m.ack = (struct w_ack){UINT64_MAX, UINT32_MAX,	UINT64_MAX,	UINT64_MAX,
			       UINT64_MAX, {path, 500}, buf_slice(&run)};
	ck_assert_msg(wire_encode(&fr, W_ACK, &m, &e) == 0, "%s", e.msg);
	ck_assert_uint_le(fr.len, WIRE_MAX_PAYLOAD + WIRE_FRAME_OVERHEAD);
	/* A smaller entry still fits until the room is really gone. */
	nd.path.len = 10;
	while (wire_need_append(&run, &nd) == 0)
		;
	ck_assert_uint_lt(wire_entries_room(&run), 1 + 10 + 1 + 10);
	buf_reset(&fr);
	m.ack.needs = buf_slice(&run);
	ck_assert_int_eq(wire_encode(&fr, W_ACK, &m, &e), 0);
	/* Paths over the limit are refused outright. */
	buf_reset(&run);
	nd.path.len = WIRE_MAX_PATH + 1;
	path = realloc(path, WIRE_MAX_PATH + 2);
	nd.path.p = path;
	ck_assert_int_eq(wire_need_append(&run, &nd), -1);
	ck_assert_uint_eq(run.len, 0);
	free(path);
	buf_free(&run);
	buf_free(&fr);
}
END_TEST

START_TEST(test_entries_digest)
{
	struct buf run = BUF_INIT;
	struct w_digest_entry d = {SLICE_LIT("x/.Sent"), {0}}, o;
	size_t pos = 0;
	struct err e;

	memset(d.digest, 0xab, sizeof(d.digest));
	ck_assert_int_eq(wire_digest_append(&run, &d), 0);
	d.folder = SLICE_LIT("");
	ck_assert_int_eq(wire_digest_append(&run, &d), 0);
	ck_assert_int_eq(wire_digest_next(buf_slice(&run), &pos, &o, &e), 1);
	ck_assert(slice_eq_cstr(o.folder, "x/.Sent"));
	ck_assert_mem_eq(o.digest, d.digest, sizeof(d.digest));
	ck_assert_int_eq(wire_digest_next(buf_slice(&run), &pos, &o, &e), 1);
	ck_assert_uint_eq(o.folder.len, 0);
	ck_assert_int_eq(wire_digest_next(buf_slice(&run), &pos, &o, &e), 0);
	/* A truncated run is malformed at every cut inside an entry. */
	for (size_t cut = 1; cut < run.len; cut++) {
		struct slice s = {(const char *)run.data, cut};
		int rc;
		pos = 0;
		while ((rc = wire_digest_next(s, &pos, &o, &e)) == 1)
			;
		ck_assert_int_eq(rc, cut == 1 + 7 + WIRE_DIGEST_LEN ? 0 : -1);
	}
	buf_free(&run);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_truncation)
{
	/* Every prefix of a valid frame is "need more", never an error. */
	struct buf out = BUF_INIT, pl = BUF_INIT;
	union w_msg m;
	struct w_frame f;
	size_t used;
	struct err e;

	encode_sample((size_t)_i, &m, &out);
	for (size_t k = 0; k < out.len; k++) {
		uint8_t *copy = malloc(k + 1); /* exact size, so ASan sees overreads */
		memcpy(copy, out.data, k);
		ck_assert_int_eq(wire_frame_parse(copy, k, &f, &used, &e), 0);
		free(copy);
	}
	/* And every truncated payload, correctly framed, fails to decode. */
	ck_assert_int_eq(wire_frame_parse(out.data, out.len, &f, &used, &e), 1);
	for (size_t k = 0; k < f.len; k++) {
		buf_set(&pl, f.payload, k);
		ck_assert_msg(decode_raw(f.type, &pl, &e) == -1, "prefix %zu of %zu accepted", k,
			      f.len);
	}
	buf_free(&out);
	buf_free(&pl);
}
END_TEST

START_TEST(test_bad_crc)
{
	struct buf out = BUF_INIT;
	union w_msg m;
	struct w_frame f;
	size_t used;
	struct err e;

	encode_sample(16, &m, &out);
	for (size_t k = 0; k < out.len; k++) {
		out.data[k] ^= 0x20;
		ck_assert_int_ne(wire_frame_parse(out.data, out.len, &f, &used, &e), 1);
		out.data[k] ^= 0x20;
	}
	out.data[out.len - 1] ^= 1;
	ck_assert_int_eq(wire_frame_parse(out.data, out.len, &f, &used, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "CRC mismatch"));
	buf_free(&out);
}
END_TEST

START_TEST(test_bad_length)
{
	struct buf b = BUF_INIT;
	struct w_frame f;
	size_t used;
	struct err e;

	/* payload_len = max + 1: refused from the header alone. */
	buf_putc(&b, W_PUT);
	put_varint(&b, WIRE_MAX_PAYLOAD + 1);
	ck_assert_int_eq(wire_frame_parse(b.data, b.len, &f, &used, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "exceeds"));
	/* Exactly the maximum is only "need more". */
	buf_reset(&b);
	buf_putc(&b, W_PUT);
	put_varint(&b, WIRE_MAX_PAYLOAD);
	ck_assert_int_eq(wire_frame_parse(b.data, b.len, &f, &used, &e), 0);
	/* Three continuation bytes already exceed the limit. */
	buf_set(&b, "\x14\x80\x80\x80", 4);
	ck_assert_int_eq(wire_frame_parse(b.data, b.len, &f, &used, &e), -1);
	buf_set(&b, "\x14\xff\xff", 3);
	ck_assert_int_eq(wire_frame_parse(b.data, b.len, &f, &used, &e), 0);
	/* Non-minimal length: 0 written as 80 00. */
	buf_set(&b, "\x03\x80\x00\x00\x00\x00\x00", 7);
	ck_assert_int_eq(wire_frame_parse(b.data, b.len, &f, &used, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "non-minimal"));
	buf_free(&b);
}
END_TEST

START_TEST(test_bad_varints)
{
	struct buf p = BUF_INIT;
	struct err e;

	/* PING token: 11-byte varint. */
	buf_set(&p, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11);
	ck_assert_int_eq(decode_raw(W_PING, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "longer than 10"));
	/* 10th byte above 1 overflows 64 bits. */
	buf_set(&p, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
	ck_assert_int_eq(decode_raw(W_PING, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "overflows"));
	/* ... and exactly 2^64-1 is fine. */
	buf_set(&p, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
	ck_assert_int_eq(decode_raw(W_PING, &p, &e), 0);
	/* Non-minimal: 5 as 85 00. */
	buf_set(&p, "\x85\x00", 2);
	ck_assert_int_eq(decode_raw(W_PING, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "non-minimal"));
	/* u32 overflow: ERROR code 2^32. */
	buf_reset(&p);
	put_varint(&p, 1ULL << 32);
	put_str(&p, "x", 1);
	ck_assert_int_eq(decode_raw(W_ERROR, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "exceeds 32 bits"));
	ck_assert_ptr_nonnull(strstr(e.msg, "'code'"));
	buf_reset(&p);
	put_varint(&p, UINT32_MAX);
	put_str(&p, "x", 1);
	ck_assert_int_eq(decode_raw(W_ERROR, &p, &e), 0);
	buf_free(&p);
}
END_TEST

START_TEST(test_bad_fields)
{
	struct buf p = BUF_INIT;
	char *big = malloc(WIRE_MAX_PATH + 1);
	struct err e;

	/* Length beyond the payload. */
	put_varint(&p, 1);
	put_varint(&p, 100);
	buf_append(&p, "abc", 3);
	ck_assert_int_eq(decode_raw(W_ERROR, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "exceeds the remaining"));
	/* Trailing bytes. */
	buf_reset(&p);
	put_varint(&p, 7);
	buf_putc(&p, 0);
	ck_assert_int_eq(decode_raw(W_PING, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "trailing"));
	/* Unknown types, including 22 (a TLS handshake's first byte). */
	buf_reset(&p);
	put_varint(&p, 7);
	ck_assert_int_eq(decode_raw(W_PING, &p, &e), 0);
	ck_assert_int_eq(decode_raw(22, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown message type 22"));
	ck_assert_int_eq(decode_raw(0, &p, &e), -1);
	ck_assert_int_eq(decode_raw(255, &p, &e), -1);
	/* A bool that is neither 0 nor 1 (DIGEST_REP.more). */
	buf_reset(&p);
	put_varint(&p, 1);
	buf_putc(&p, 2);
	put_varint(&p, 0);
	ck_assert_int_eq(decode_raw(W_DIGEST_REP, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "bool"));
	/* Path longer than WIRE_MAX_PATH (UNLINK), and exactly the limit. */
	memset(big, 'a', WIRE_MAX_PATH + 1);
	buf_reset(&p);
	put_varint(&p, 1);
	put_str(&p, big, WIRE_MAX_PATH + 1);
	ck_assert_int_eq(decode_raw(W_UNLINK, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "WIRE_MAX_PATH"));
	buf_reset(&p);
	put_varint(&p, 1);
	put_str(&p, big, WIRE_MAX_PATH);
	ck_assert_int_eq(decode_raw(W_UNLINK, &p, &e), 0);
	/* Bad magic. */
	memset(big, 0, NODE_ID_LEN);
	buf_reset(&p);
	put_str(&p, "MDREPX", 6);
	put_varint(&p, 1);
	put_varint(&p, 1);
	put_varint(&p, 0);
	buf_append(&p, big, NODE_ID_LEN);
	for (int i = 0; i < 7; i++)
		put_varint(&p, 0);
	put_str(&p, "", 0);
	ck_assert_int_eq(decode_raw(W_HELLO, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "magic"));
	p.data[6] = 'L'; /* "MDREPL" */
	ck_assert_msg(decode_raw(W_HELLO, &p, &e) == 0, "%s", e.msg);
	free(big);
	buf_free(&p);
}
END_TEST

START_TEST(test_bad_entries)
{
	/* A malformed entry inside a run fails the whole frame's decode. */
	struct buf run = BUF_INIT, p = BUF_INIT;
	struct err e;

	put_str(&run, "cur/a", 5);
	put_varint(&run, 1);
	put_varint(&run, 0);
	put_varint(&run, 0600);
	put_varint(&run, 0);
	put_varint(&run, 0);
	put_varint(&run, 1);
	buf_putc(&run, 1); /* has_hash, but the hash is missing */
	put_varint(&p, 1);
	put_varint(&p, 0);
	buf_putc(&p, 0);
	put_str(&p, (const char *)run.data, run.len);
	ck_assert_int_eq(decode_raw(W_LIST_REP, &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "entry field 'sha256'"));
	/* Same entry with has_hash = 3: a bad bool. */
	run.data[run.len - 1] = 3;
	buf_reset(&p);
	put_varint(&p, 1);
	put_varint(&p, 0);
	buf_putc(&p, 0);
	put_str(&p, (const char *)run.data, run.len);
	ck_assert_int_eq(decode_raw(W_LIST_REP, &p, &e), -1);
	/* has_hash = 0 makes it valid. */
	run.data[run.len - 1] = 0;
	buf_reset(&p);
	put_varint(&p, 1);
	put_varint(&p, 0);
	buf_putc(&p, 0);
	put_str(&p, (const char *)run.data, run.len);
	ck_assert_msg(decode_raw(W_LIST_REP, &p, &e) == 0, "%s", e.msg);
	buf_free(&run);
	buf_free(&p);
}
END_TEST

START_TEST(test_rules)
{
	union w_msg m;
	struct buf out = BUF_INIT;
	struct err e;
	uint8_t t;

	/* Encoders refuse what decoders would refuse. */
	t = ws_sample(16, &m); /* PUT */
	m.put.flags = 1u << 7;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown flag"));
	t = ws_sample(16, &m);
	m.put.raw_len = 99;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(16, &m);
	m.put.xfer_id = 3;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(17, &m); /* chunked PUT */
	m.put.size = WIRE_MAX_FILE + 1;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(17, &m);
	m.put.xfer_id = 0;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(19, &m); /* DATA */
	m.data.xfer_id = 0;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(21, &m); /* LINK */
	m.link.flags = WF_DEFLATE;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(25, &m); /* DELTA */
	m.delta.raw_len = WIRE_MAX_PAYLOAD + 1;
	m.delta.flags = WF_DEFLATE;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(1, &m);
	m.hello.magic = SLICE_LIT("SMTP");
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	t = ws_sample(20, &m); /* RENAME with over-long paths */
	m.rename.to.len = WIRE_MAX_PATH + 1;
	ck_assert_int_eq(wire_encode(&out, t, &m, &e), -1);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_int_eq(wire_encode(&out, 22, &m, &e), -1);
	buf_free(&out);
}
END_TEST

START_TEST(test_payload_limit)
{
	uint8_t *body = calloc(1, WIRE_MAX_PAYLOAD);
	size_t n = WIRE_MAX_PAYLOAD - 8; /* + 1 + 1 + 3 + 3 bytes of fields = the limit */
	union w_msg m = {0};
	struct buf out = BUF_INIT;
	struct w_frame f;
	size_t used;
	struct err e;

	m.data = (struct w_data){1, 0, (uint32_t)n, {(const char *)body, n}};
	ck_assert_msg(wire_encode(&out, W_DATA, &m, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(wire_frame_parse(out.data, out.len, &f, &used, &e), 1);
	ck_assert_uint_eq(f.len, WIRE_MAX_PAYLOAD);
	ck_assert_uint_eq(out.len, WIRE_MAX_PAYLOAD + 1 + 3 + 4);
	ck_assert_int_eq(wire_decode(&f, &m, &e), 0);
	ck_assert_uint_eq(m.data.body.len, n);
	/* One byte more is refused, and nothing is appended. */
	buf_reset(&out);
	m.data = (struct w_data){1, 0, (uint32_t)n + 1, {(const char *)body, n + 1}};
	ck_assert_int_eq(wire_encode(&out, W_DATA, &m, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "exceeds"));
	ck_assert_uint_eq(out.len, 0);
	free(body);
	buf_free(&out);
}
END_TEST

/* ---------------------------------------------------------------- fuzz-like */

/* Parses and decodes whatever is in p, walking entry runs: must not crash. */
static void chew(const uint8_t *p, size_t len)
{
	struct w_frame f;
	union w_msg m;
	size_t used, pos = 0;
	struct err e;

	while (wire_frame_parse(p, len, &f, &used, &e) == 1) {
		if (wire_decode(&f, &m, &e) == 0) {
			struct w_list_entry l;
			struct w_digest_entry d;
			struct w_need n;
			if (f.type == W_LIST_REP)
				while (wire_list_next(m.list_rep.entries, &pos, &l, &e) == 1)
					;
			else if (f.type == W_DIGEST_REP)
				while (wire_digest_next(m.digest_rep.entries, &pos, &d, &e) == 1)
					;
			else if (f.type == W_ACK)
				while (wire_need_next(m.ack.needs, &pos, &n, &e) == 1)
					;
			pos = 0;
		}
		p += used;
		len -= used;
	}
}

/* Recomputes header length and CRC so mutations reach the decoder. */
static void reframe(struct buf *b)
{
	struct buf pl = BUF_INIT, out = BUF_INIT;
	size_t hdr = 1;

	if (b->len < 6)
		return;
	while (hdr < b->len && (b->data[hdr] & 0x80) && hdr < 4)
		hdr++;
	hdr++;
	if (hdr + 4 > b->len)
		return;
	buf_set(&pl, b->data + hdr, b->len - hdr - 4);
	frame_raw(&out, b->data[0], &pl);
	buf_set(b, out.data, out.len);
	buf_free(&pl);
	buf_free(&out);
}

START_TEST(test_random_mutations)
{
	unsigned seed = 12345;
	struct buf b = BUF_INIT;
	union w_msg m;

	for (int iter = 0; iter < 40000; iter++) {
		size_t i = (size_t)rand_r(&seed) % ws_count();
		int nmut = 1 + rand_r(&seed) % 4;
		uint8_t *exact;

		encode_sample(i, &m, &b);
		for (int k = 0; k < nmut && b.len > 0; k++) {
			size_t at = (size_t)rand_r(&seed) % b.len;
			switch (rand_r(&seed) % 5) {
			case 0: b.data[at] ^= (uint8_t)(1u << (rand_r(&seed) % 8)); break;
			case 1: b.data[at] = (uint8_t)rand_r(&seed); break;
			case 2: buf_truncate(&b, at); break;
			case 3: b.data[at] = 0xff; break;
			default: b.data[at] = 0x80; break;
			}
		}
		if (rand_r(&seed) % 4 != 0)
			reframe(&b);
		exact = malloc(b.len + 1);
		memcpy(exact, b.data, b.len);
		chew(exact, b.len);
		free(exact);
	}
	buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("wire");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"),
	      *errors = tcase_create("errors");

	tcase_add_test(core, test_rename_compact);
	tcase_add_test(core, test_golden_ping);
	tcase_add_loop_test(core, test_roundtrip, 0, (int)ws_count());
	tcase_add_test(core, test_names);
	tcase_add_test(core, test_version_pick);
	tcase_add_test(core, test_stream_of_frames);
	tcase_add_test(limits, test_entries_many);
	tcase_add_test(limits, test_entries_room);
	tcase_add_test(limits, test_entries_digest);
	tcase_add_test(limits, test_payload_limit);
	tcase_add_loop_test(errors, test_truncation, 0, (int)ws_count());
	tcase_add_test(errors, test_bad_crc);
	tcase_add_test(errors, test_bad_length);
	tcase_add_test(errors, test_bad_varints);
	tcase_add_test(errors, test_bad_fields);
	tcase_add_test(errors, test_bad_entries);
	tcase_add_test(errors, test_rules);
	tcase_add_test(errors, test_random_mutations);
	tcase_set_timeout(errors, 60);
	suite_add_tcase(su, core);
	suite_add_tcase(su, limits);
	suite_add_tcase(su, errors);
	return tu_run(su);
}

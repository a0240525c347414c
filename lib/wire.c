/*
 * wire.c — the replication protocol's codec (wire.h, docs/protocol.md).
 *
 * Every message is described once, as a table of fields in wire order;
 * one generic encoder, sizer and decoder walk those tables, so encoding
 * and decoding cannot drift apart. Per-type rules that go beyond the
 * field layout (allowed flags, raw_len, size limits, the HELLO magic) sit
 * in one check function that both directions run.
 *
 * SECURITY: wire_frame_parse() and wire_decode() parse bytes from the
 * network. Every length is compared with what is left before it is used,
 * varints are bounded to 10 bytes and must be minimal, a value must fit
 * its field, bools are 0 or 1, paths are bounded by WIRE_MAX_PATH and
 * trailing bytes are refused. Entry runs are validated entry by entry at
 * decode time, so iterators over a decoded message cannot fail later.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "wire.h"

/* Bytes kept free in a frame for the fields around an entry run (ids,
 * status, positions, ACK text). */
#define ENTRIES_MARGIN 1024u

enum fkind {
	F_U32,	   /* varint that must fit 32 bits */
	F_U64,	   /* varint */
	F_I64,	   /* zigzag varint */
	F_BOOL,	   /* one byte, 0 or 1 */
	F_STR,	   /* varint length + bytes (text, opaque bytes) */
	F_PATH,	   /* like F_STR, at most WIRE_MAX_PATH bytes */
	F_HASH,	   /* SHA256_LEN raw bytes */
	F_ID,	   /* NODE_ID_LEN raw bytes */
	F_DIGEST,  /* WIRE_DIGEST_LEN raw bytes */
	F_HASH_IF, /* SHA256_LEN raw bytes, present iff the bool at aux is true */
	F_DIGESTS, /* entry run of digest entries (F_STR layout) */
	F_LISTS,   /* entry run of list entries */
	F_NEEDS,   /* entry run of need entries */
};

struct field {
	uint8_t kind;
	uint16_t off; /* into the message or entry struct */
	uint16_t aux; /* F_HASH_IF: offset of the presence bool */
	const char *name;
};

#define FLD(k, st, f)                                                                              \
	{                                                                                          \
		k, offsetof(st, f), 0, #f                                                          \
	}

/* ---------------------------------------------------------------- layouts */

/* clang-format off: one field per line, in wire order */
#define M union w_msg
static const struct field hello_f[] = {
	FLD(F_STR, M, hello.magic),
	FLD(F_U32, M, hello.ver_min),
	FLD(F_U32, M, hello.ver_max),
	FLD(F_U64, M, hello.caps),
	FLD(F_ID, M, hello.node_id),
	FLD(F_U32, M, hello.role),
	FLD(F_U64, M, hello.generation),
	FLD(F_U32, M, hello.purpose),
	FLD(F_U64, M, hello.journal_id),
	FLD(F_U64, M, hello.received_lsn),
	FLD(F_U64, M, hello.durable_lsn),
	FLD(F_U64, M, hello.applied_lsn),
	FLD(F_STR, M, hello.software),
};
static const struct field error_f[] = {
	FLD(F_U32, M, error.code),
	FLD(F_STR, M, error.text),
};
static const struct field ping_f[] = {
	FLD(F_U64, M, ping.token),
};
static const struct field control_f[] = {
	FLD(F_U32, M, control.id),
	FLD(F_STR, M, control.command),
};
static const struct field control_rep_f[] = {
	FLD(F_U32, M, control_rep.id),
	FLD(F_U32, M, control_rep.status),
	FLD(F_U32, M, control_rep.role),
	FLD(F_U64, M, control_rep.generation),
	FLD(F_U64, M, control_rep.journal_id),
	FLD(F_U64, M, control_rep.head_lsn),
	FLD(F_STR, M, control_rep.text),
};
static const struct field digest_req_f[] = {
	FLD(F_U32, M, digest_req.id),
	FLD(F_U32, M, digest_req.flags),
	FLD(F_PATH, M, digest_req.prefix),
};
static const struct field digest_rep_f[] = {
	FLD(F_U32, M, digest_rep.id),
	FLD(F_BOOL, M, digest_rep.more),
	FLD(F_DIGESTS, M, digest_rep.entries),
};
static const struct field list_req_f[] = {
	FLD(F_U32, M, list_req.id),
	FLD(F_U32, M, list_req.flags),
	FLD(F_PATH, M, list_req.folder),
};
static const struct field list_rep_f[] = {
	FLD(F_U32, M, list_rep.id),
	FLD(F_U32, M, list_rep.status),
	FLD(F_BOOL, M, list_rep.more),
	FLD(F_LISTS, M, list_rep.entries),
};
static const struct field sig_req_f[] = {
	FLD(F_U32, M, sig_req.id),
	FLD(F_PATH, M, sig_req.path),
};
static const struct field sig_rep_f[] = {
	FLD(F_U32, M, sig_rep.id),
	FLD(F_U32, M, sig_rep.status),
	FLD(F_U64, M, sig_rep.size),
	FLD(F_HASH, M, sig_rep.sha256),
	FLD(F_STR, M, sig_rep.sig),
};
static const struct field read_req_f[] = {
	FLD(F_U32, M, read_req.id),
	FLD(F_PATH, M, read_req.path),
};
static const struct field read_rep_f[] = {
	FLD(F_U32, M, read_rep.id),
	FLD(F_U32, M, read_rep.status),
	FLD(F_BOOL, M, read_rep.more),
	FLD(F_U64, M, read_rep.size),
	FLD(F_I64, M, read_rep.mtime_ns),
	FLD(F_U32, M, read_rep.mode),
	FLD(F_U32, M, read_rep.uid),
	FLD(F_U32, M, read_rep.gid),
	FLD(F_U32, M, read_rep.flags),
	FLD(F_U32, M, read_rep.raw_len),
	FLD(F_STR, M, read_rep.body),
};
static const struct field put_f[] = {
	FLD(F_U64, M, put.lsn),
	FLD(F_PATH, M, put.path),
	FLD(F_U64, M, put.size),
	FLD(F_I64, M, put.mtime_ns),
	FLD(F_U32, M, put.mode),
	FLD(F_U32, M, put.uid),
	FLD(F_U32, M, put.gid),
	FLD(F_HASH, M, put.sha256),
	FLD(F_U32, M, put.flags),
	FLD(F_U32, M, put.xfer_id),
	FLD(F_U32, M, put.raw_len),
	FLD(F_STR, M, put.body),
};
static const struct field data_f[] = {
	FLD(F_U32, M, data.xfer_id),
	FLD(F_U32, M, data.flags),
	FLD(F_U32, M, data.raw_len),
	FLD(F_STR, M, data.body),
};
static const struct field rename_f[] = {
	FLD(F_U64, M, rename.lsn),
	FLD(F_PATH, M, rename.from),
	FLD(F_U32, M, rename.to_shared),
	FLD(F_PATH, M, rename.to_tail),
};
static const struct field link_f[] = {
	FLD(F_U64, M, link.lsn),
	FLD(F_PATH, M, link.from),
	FLD(F_PATH, M, link.to),
	FLD(F_U32, M, link.flags),
	FLD(F_U64, M, link.size),
	FLD(F_I64, M, link.mtime_ns),
	FLD(F_U32, M, link.mode),
	FLD(F_U32, M, link.uid),
	FLD(F_U32, M, link.gid),
	FLD(F_HASH, M, link.sha256),
};
static const struct field unlink_f[] = {
	FLD(F_U64, M, unlink.lsn),
	FLD(F_PATH, M, unlink.path),
};
static const struct field mkdir_f[] = {
	FLD(F_U64, M, mkdir.lsn),
	FLD(F_PATH, M, mkdir.path),
	FLD(F_U32, M, mkdir.mode),
	FLD(F_U32, M, mkdir.uid),
	FLD(F_U32, M, mkdir.gid),
};
static const struct field rmtree_f[] = {
	FLD(F_U64, M, rmtree.lsn),
	FLD(F_PATH, M, rmtree.path),
};
static const struct field delta_f[] = {
	FLD(F_U64, M, delta.lsn),
	FLD(F_PATH, M, delta.path),
	FLD(F_HASH, M, delta.base_sha256),
	FLD(F_HASH, M, delta.result_sha256),
	FLD(F_U64, M, delta.result_size),
	FLD(F_I64, M, delta.mtime_ns),
	FLD(F_U32, M, delta.mode),
	FLD(F_U32, M, delta.uid),
	FLD(F_U32, M, delta.gid),
	FLD(F_U32, M, delta.flags),
	FLD(F_U32, M, delta.raw_len),
	FLD(F_STR, M, delta.delta),
};
static const struct field setattr_f[] = {
	FLD(F_U64, M, setattr.lsn),
	FLD(F_PATH, M, setattr.path),
	FLD(F_I64, M, setattr.mtime_ns),
	FLD(F_U32, M, setattr.mode),
	FLD(F_U32, M, setattr.uid),
	FLD(F_U32, M, setattr.gid),
};
static const struct field batch_end_f[] = {
	FLD(F_U64, M, batch_end.seq),
	FLD(F_U64, M, batch_end.lsn),
};
static const struct field ack_f[] = {
	FLD(F_U64, M, ack.seq),
	FLD(F_U32, M, ack.status),
	FLD(F_U64, M, ack.received_lsn),
	FLD(F_U64, M, ack.durable_lsn),
	FLD(F_U64, M, ack.applied_lsn),
	FLD(F_STR, M, ack.text),
	FLD(F_NEEDS, M, ack.needs),
};
#undef M

static const struct field digest_entry_f[] = {
	FLD(F_PATH, struct w_digest_entry, folder),
	FLD(F_DIGEST, struct w_digest_entry, digest),
};
static const struct field list_entry_f[] = {
	FLD(F_PATH, struct w_list_entry, name),
	FLD(F_U64, struct w_list_entry, size),
	FLD(F_I64, struct w_list_entry, mtime_ns),
	FLD(F_U32, struct w_list_entry, mode),
	FLD(F_U32, struct w_list_entry, uid),
	FLD(F_U32, struct w_list_entry, gid),
	FLD(F_U32, struct w_list_entry, nlink),
	FLD(F_BOOL, struct w_list_entry, has_hash),
	/* present only when has_hash is 1 */
	{F_HASH_IF, offsetof(struct w_list_entry, sha256),
		offsetof(struct w_list_entry, has_hash), "sha256"},
};
static const struct field need_entry_f[] = {
	FLD(F_U64, struct w_need, lsn),
	FLD(F_PATH, struct w_need, path),
};
/* clang-format on */

#define NF(a) (sizeof(a) / sizeof((a)[0]))

struct msgdef {
	const char *name;
	const struct field *f;
	size_t n;
};

static const struct msgdef msgdefs[] = {
    [W_HELLO] = {"HELLO", hello_f, NF(hello_f)},
    [W_ERROR] = {"ERROR", error_f, NF(error_f)},
    [W_PING] = {"PING", ping_f, NF(ping_f)},
    [W_PONG] = {"PONG", ping_f, NF(ping_f)},
    [W_CONTROL] = {"CONTROL", control_f, NF(control_f)},
    [W_CONTROL_REP] = {"CONTROL_REP", control_rep_f, NF(control_rep_f)},
    [W_DIGEST_REQ] = {"DIGEST_REQ", digest_req_f, NF(digest_req_f)},
    [W_DIGEST_REP] = {"DIGEST_REP", digest_rep_f, NF(digest_rep_f)},
    [W_LIST_REQ] = {"LIST_REQ", list_req_f, NF(list_req_f)},
    [W_LIST_REP] = {"LIST_REP", list_rep_f, NF(list_rep_f)},
    [W_SIG_REQ] = {"SIG_REQ", sig_req_f, NF(sig_req_f)},
    [W_SIG_REP] = {"SIG_REP", sig_rep_f, NF(sig_rep_f)},
    [W_READ_REQ] = {"READ_REQ", read_req_f, NF(read_req_f)},
    [W_READ_REP] = {"READ_REP", read_rep_f, NF(read_rep_f)},
    [W_PUT] = {"PUT", put_f, NF(put_f)},
    [W_DATA] = {"DATA", data_f, NF(data_f)},
    [W_RENAME] = {"RENAME", rename_f, NF(rename_f)},
    [W_LINK] = {"LINK", link_f, NF(link_f)},
    [W_UNLINK] = {"UNLINK", unlink_f, NF(unlink_f)},
    [W_MKDIR] = {"MKDIR", mkdir_f, NF(mkdir_f)},
    [W_RMTREE] = {"RMTREE", rmtree_f, NF(rmtree_f)},
    [W_DELTA] = {"DELTA", delta_f, NF(delta_f)},
    [W_SETATTR] = {"SETATTR", setattr_f, NF(setattr_f)},
    [W_BATCH_END] = {"BATCH_END", batch_end_f, NF(batch_end_f)},
    [W_ACK] = {"ACK", ack_f, NF(ack_f)},
};

static const struct msgdef *msgdef(uint8_t type)
{
	if (type >= NF(msgdefs) || msgdefs[type].name == NULL)
		return NULL;
	return &msgdefs[type];
}

const char *wire_type_name(uint8_t type)
{
	const struct msgdef *d = msgdef(type);

	return d != NULL ? d->name : "unknown";
}

const char *wire_errcode_name(uint32_t code)
{
	static const char *const names[] = {
	    [0] = "ok",
	    [WE_PROTOCOL] = "protocol",
	    [WE_VERSION] = "version",
	    [WE_ROLE] = "role",
	    [WE_GENERATION] = "generation",
	    [WE_BUSY] = "busy",
	    [WE_PATH] = "path",
	    [WE_NOSPACE] = "nospace",
	    [WE_IO] = "io",
	    [WE_INTEGRITY] = "integrity",
	    [WE_AUTH] = "auth",
	    [WE_LIMIT] = "limit",
	    [WE_NOTFOUND] = "notfound",
	};

	return code < NF(names) ? names[code] : "unknown";
}

uint32_t wire_version_pick(const struct w_hello *a, const struct w_hello *b)
{
	uint32_t lo = a->ver_min > b->ver_min ? a->ver_min : b->ver_min;
	uint32_t hi = a->ver_max < b->ver_max ? a->ver_max : b->ver_max;

	return lo <= hi && hi > 0 ? hi : 0;
}

/* ---------------------------------------------------------------- varints */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t u)
{
	return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

/* Reads a varint at p[*pos..len). Returns 1 and advances *pos, 0 if the
 * bytes end inside it, -1 if it is longer than 10 bytes, overflows 64
 * bits or is not minimal (why says which). */
static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v_r, const char **why)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 10; i++) {
		uint8_t b;

		if (*pos + i >= len)
			return 0;
		b = p[*pos + i];
		if (i == 9 && (b & 0x80)) {
			*why = "varint longer than 10 bytes";
			return -1;
		}
		if (i == 9 && b > 1) {
			*why = "varint overflows 64 bits";
			return -1;
		}
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b == 0 && i > 0) {
				*why = "non-minimal varint";
				return -1;
			}
			*pos += i + 1;
			*v_r = v;
			return 1;
		}
	}
	return -1; /* not reached: the tenth byte ends the loop */
}

/* ---------------------------------------------------------------- encoding */

static const struct slice *fslice(const void *base, const struct field *f)
{
	return (const struct slice *)((const char *)base + f->off);
}

static uint64_t fuint(const void *base, const struct field *f)
{
	const char *p = (const char *)base + f->off;

	switch (f->kind) {
	case F_U32: return *(const uint32_t *)p;
	case F_U64: return *(const uint64_t *)p;
	case F_I64: return zigzag(*(const int64_t *)p);
	case F_BOOL: return *(const bool *)p ? 1 : 0;
	default: return 0;
	}
}

static size_t fixed_len(uint8_t kind)
{
	switch (kind) {
	case F_HASH:
	case F_HASH_IF: return SHA256_LEN;
	case F_ID: return NODE_ID_LEN;
	case F_DIGEST: return WIRE_DIGEST_LEN;
	default: return 0;
	}
}

static bool is_slice(uint8_t kind)
{
	return kind == F_STR || kind == F_PATH || kind == F_DIGESTS || kind == F_LISTS ||
	       kind == F_NEEDS;
}

static bool present(const void *base, const struct field *f)
{
	return f->kind != F_HASH_IF || *(const bool *)((const char *)base + f->aux);
}

/* Encoded size of the fields of base; SIZE_MAX if a path is too long,
 * more than WIRE_MAX_PAYLOAD if any slice is. */
static size_t encoded_len(const void *base, const struct field *fs, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		const struct field *f = &fs[i];

		if (is_slice(f->kind)) {
			size_t l = fslice(base, f)->len;
			if (f->kind == F_PATH && l > WIRE_MAX_PATH)
				return SIZE_MAX;
			if (l > WIRE_MAX_PAYLOAD)
				return (size_t)WIRE_MAX_PAYLOAD + 1;
			len += varint_len(l) + l;
		} else if (f->kind == F_BOOL) {
			len += 1;
		} else if (fixed_len(f->kind) > 0) {
			len += present(base, f) ? fixed_len(f->kind) : 0;
		} else {
			len += varint_len(fuint(base, f));
		}
	}
	return len;
}

/* Writes the fields of base at p, which has encoded_len() bytes. */
static size_t encode_fields(uint8_t *p, const void *base, const struct field *fs, size_t n)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		const struct field *f = &fs[i];
		size_t fl = fixed_len(f->kind);

		if (is_slice(f->kind)) {
			const struct slice *s = fslice(base, f);
			pos += put_varint(p + pos, s->len);
			if (s->len > 0)
				memcpy(p + pos, s->p, s->len);
			pos += s->len;
		} else if (f->kind == F_BOOL) {
			p[pos++] = (uint8_t)fuint(base, f);
		} else if (fl > 0) {
			if (present(base, f)) {
				memcpy(p + pos, (const char *)base + f->off, fl);
				pos += fl;
			}
		} else {
			pos += put_varint(p + pos, fuint(base, f));
		}
	}
	return pos;
}

/* Appends the encoding of base to out. Returns 0, or -1 for an over-long path. */
static int append_fields(struct buf *out, const void *base, const struct field *fs, size_t n)
{
	size_t len = encoded_len(base, fs, n);
	uint8_t *p;

	if (len > WIRE_MAX_PAYLOAD || (p = buf_space(out, len)) == NULL)
		return -1;
	buf_commit(out, encode_fields(p, base, fs, n));
	return 0;
}

/* ---------------------------------------------------------------- decoding */

struct rd {
	const uint8_t *p;
	size_t len, pos;
	const char *why;   /* what is wrong, for the error message */
	const char *field; /* which field */
	const char *sub;   /* which field of an entry inside it, or NULL */
};

static int entries_valid(struct slice run, uint8_t kind, struct rd *r);

/* "put.path" -> "path": message fields are named through the union. */
static const char *short_name(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot != NULL ? dot + 1 : name;
}

static int bad(struct rd *r, const struct field *f, const char *why)
{
	r->field = short_name(f->name);
	r->why = why;
	return -1;
}

static int decode_field(struct rd *r, void *base, const struct field *f)
{
	char *dst = (char *)base + f->off;
	size_t fl = fixed_len(f->kind);
	uint64_t v;
	int rc;

	if (fl > 0) {
		if (!present(base, f))
			return 0;
		if (r->len - r->pos < fl)
			return bad(r, f, "truncated");
		memcpy(dst, r->p + r->pos, fl);
		r->pos += fl;
		return 0;
	}
	if (f->kind == F_BOOL) {
		if (r->pos >= r->len)
			return bad(r, f, "truncated");
		if (r->p[r->pos] > 1)
			return bad(r, f, "bool is not 0 or 1");
		*(bool *)dst = r->p[r->pos++] == 1;
		return 0;
	}
	rc = get_varint(r->p, r->len, &r->pos, &v, &r->why);
	if (rc <= 0)
		return bad(r, f, rc == 0 ? "truncated" : r->why);
	switch (f->kind) {
	case F_U32:
		if (v > UINT32_MAX)
			return bad(r, f, "value exceeds 32 bits");
		*(uint32_t *)dst = (uint32_t)v;
		return 0;
	case F_U64: *(uint64_t *)dst = v; return 0;
	case F_I64: *(int64_t *)dst = unzigzag(v); return 0;
	default: break;
	}
	/* A length-prefixed field: v is its length. */
	if (v > r->len - r->pos)
		return bad(r, f, "length exceeds the remaining bytes");
	if (f->kind == F_PATH && v > WIRE_MAX_PATH)
		return bad(r, f, "path longer than WIRE_MAX_PATH");
	*(struct slice *)dst = (struct slice){(const char *)r->p + r->pos, (size_t)v};
	r->pos += (size_t)v;
	if (f->kind == F_STR || f->kind == F_PATH)
		return 0;
	if (entries_valid(*(struct slice *)dst, f->kind, r) < 0) {
		r->field = short_name(f->name);
		return -1;
	}
	return 0;
}

/* Decodes the fields into base from r; trailing bytes are the caller's
 * business (entries follow one another). */
static int decode_fields(struct rd *r, void *base, const struct field *fs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (decode_field(r, base, &fs[i]) < 0)
			return -1;
	return 0;
}

/* ---------------------------------------------------------------- entry runs */

static int append_entry(struct buf *entries, const void *ent, const struct field *fs, size_t n)
{
	size_t len = encoded_len(ent, fs, n);

	if (len > wire_entries_room(entries))
		return -1;
	return append_fields(entries, ent, fs, n);
}

/* One entry of a run at *pos: 1 and advances, 0 at the end, -1 (r->why). */
static int next_entry(struct slice run, size_t *pos, void *ent, const struct field *fs, size_t n,
		      struct rd *r)
{
	*r = (struct rd){(const uint8_t *)run.p, run.len, *pos, NULL, NULL, NULL};
	if (*pos >= run.len)
		return 0;
	if (decode_fields(r, ent, fs, n) < 0)
		return -1;
	*pos = r->pos;
	return 1;
}

static int entry_error(struct rd *r, const char *what, struct err *e)
{
	return err_set(e, ERR_PROTO, "malformed %s entry: field '%s': %s", what, r->field, r->why);
}

size_t wire_entries_room(const struct buf *entries)
{
	size_t cap = WIRE_MAX_PAYLOAD - ENTRIES_MARGIN;

	return entries->len >= cap ? 0 : cap - entries->len;
}

int wire_digest_append(struct buf *entries, const struct w_digest_entry *d)
{
	return append_entry(entries, d, digest_entry_f, NF(digest_entry_f));
}

int wire_digest_next(struct slice entries, size_t *pos, struct w_digest_entry *d, struct err *e)
{
	struct rd r;
	int rc = next_entry(entries, pos, d, digest_entry_f, NF(digest_entry_f), &r);

	return rc < 0 ? entry_error(&r, "digest", e) : rc;
}

int wire_list_append(struct buf *entries, const struct w_list_entry *l)
{
	return append_entry(entries, l, list_entry_f, NF(list_entry_f));
}

int wire_list_next(struct slice entries, size_t *pos, struct w_list_entry *l, struct err *e)
{
	struct rd r;
	int rc;

	memset(l->sha256, 0, sizeof(l->sha256));
	rc = next_entry(entries, pos, l, list_entry_f, NF(list_entry_f), &r);
	return rc < 0 ? entry_error(&r, "list", e) : rc;
}

int wire_need_append(struct buf *entries, const struct w_need *n)
{
	return append_entry(entries, n, need_entry_f, NF(need_entry_f));
}

int wire_need_next(struct slice entries, size_t *pos, struct w_need *n, struct err *e)
{
	struct rd r;
	int rc = next_entry(entries, pos, n, need_entry_f, NF(need_entry_f), &r);

	return rc < 0 ? entry_error(&r, "need", e) : rc;
}

/* Walks a whole run so that a malformed entry fails the frame's decode. */
static int entries_valid(struct slice run, uint8_t kind, struct rd *r)
{
	struct rd in;
	size_t pos = 0;
	int rc;

	do {
		union {
			struct w_digest_entry d;
			struct w_list_entry l;
			struct w_need n;
		} ent;

		memset(&ent, 0, sizeof(ent));
		if (kind == F_DIGESTS)
			rc = next_entry(run, &pos, &ent, digest_entry_f, NF(digest_entry_f), &in);
		else if (kind == F_LISTS)
			rc = next_entry(run, &pos, &ent, list_entry_f, NF(list_entry_f), &in);
		else
			rc = next_entry(run, &pos, &ent, need_entry_f, NF(need_entry_f), &in);
	} while (rc == 1);
	if (rc < 0) {
		r->why = in.why;
		r->sub = in.field;
	}
	return rc;
}

/* ---------------------------------------------------------------- rules */

static const char *check_body(uint32_t flags, uint32_t raw_len, struct slice body)
{
	if (raw_len > WIRE_MAX_PAYLOAD)
		return "raw_len exceeds WIRE_MAX_PAYLOAD";
	if (!(flags & WF_DEFLATE) && raw_len != body.len)
		return "raw_len differs from the length of an uncompressed body";
	return NULL;
}

static const char *check_flags(uint32_t flags, uint32_t allowed)
{
	return (flags & ~allowed) != 0 ? "unknown flag bits" : NULL;
}

static const char *check_put(const struct w_put *p)
{
	const char *why = check_flags(p->flags, WF_DEFLATE | WF_CHUNKED);

	if (why == NULL)
		why = check_body(p->flags, p->raw_len, p->body);
	if (why != NULL)
		return why;
	if (p->size > WIRE_MAX_FILE)
		return "size exceeds WIRE_MAX_FILE";
	if (p->flags & WF_CHUNKED) {
		if (p->xfer_id == 0)
			return "WF_CHUNKED without an xfer_id";
		if (p->raw_len > p->size)
			return "raw_len exceeds size";
	} else {
		if (p->xfer_id != 0)
			return "xfer_id without WF_CHUNKED";
		if (p->raw_len != p->size)
			return "raw_len differs from size in an unchunked PUT";
	}
	return NULL;
}

/* The rules beyond the field layout; NULL if m is acceptable. */
/* The target's shared prefix must lie within the source, be as long as
 * possible (one canonical encoding), and the target fit a path. */
static const char *check_rename(const struct w_rename *r)
{
	if (r->to_shared > r->from.len)
		return "to_shared exceeds the source path";
	if ((size_t)r->to_shared + r->to_tail.len > WIRE_MAX_PATH)
		return "target path exceeds WIRE_MAX_PATH";
	if (r->to_shared < r->from.len && r->to_tail.len > 0 &&
	    r->to_tail.p[0] == r->from.p[r->to_shared])
		return "to_shared is not the longest shared prefix";
	if ((size_t)r->to_shared + r->to_tail.len == 0)
		return "empty target path";
	return NULL;
}

int wire_rename_to(const struct w_rename *m, struct buf *out)
{
	buf_reset(out);
	if (buf_append(out, m->from.p, m->to_shared) < 0)
		return -1;
	return buf_put_slice(out, m->to_tail);
}

/* Fills a rename's wire fields from its target. */
static void rename_split(struct w_rename *r)
{
	size_t n = 0;

	while (n < r->from.len && n < r->to.len && r->from.p[n] == r->to.p[n])
		n++;
	r->to_shared = (uint32_t)n;
	r->to_tail = (struct slice){r->to.p + n, r->to.len - n};
}

static const char *check_msg(uint8_t type, const union w_msg *m)
{
	const char *why = NULL;

	switch (type) {
	case W_HELLO:
		if (!slice_eq_cstr(m->hello.magic, WIRE_MAGIC))
			return "bad magic (the peer does not speak the mdrepl protocol)";
		break;
	case W_DIGEST_REQ: return check_flags(m->digest_req.flags, WF_HASH);
	case W_LIST_REQ: return check_flags(m->list_req.flags, WF_HASH);
	case W_READ_REP:
		why = check_flags(m->read_rep.flags, WF_DEFLATE);
		if (why == NULL)
			why = check_body(m->read_rep.flags, m->read_rep.raw_len, m->read_rep.body);
		if (why == NULL && m->read_rep.size > WIRE_MAX_FILE)
			why = "size exceeds WIRE_MAX_FILE";
		break;
	case W_PUT: return check_put(&m->put);
	case W_RENAME: return check_rename(&m->rename);
	case W_DATA:
		why = check_flags(m->data.flags, WF_DEFLATE | WF_LAST);
		if (why == NULL)
			why = check_body(m->data.flags, m->data.raw_len, m->data.body);
		if (why == NULL && m->data.xfer_id == 0)
			why = "DATA without an xfer_id";
		break;
	case W_LINK:
		why = check_flags(m->link.flags, WF_COPY);
		if (why == NULL && m->link.size > WIRE_MAX_FILE)
			why = "size exceeds WIRE_MAX_FILE";
		break;
	case W_DELTA:
		why = check_flags(m->delta.flags, WF_DEFLATE);
		if (why == NULL)
			why = check_body(m->delta.flags, m->delta.raw_len, m->delta.delta);
		if (why == NULL && m->delta.result_size > WIRE_MAX_FILE)
			why = "result_size exceeds WIRE_MAX_FILE";
		break;
	default: break;
	}
	return why;
}

/* ---------------------------------------------------------------- frames */

int wire_decode(const struct w_frame *f, union w_msg *m, struct err *e)
{
	const struct msgdef *d = msgdef(f->type);
	struct rd r = {f->payload, f->len, 0, NULL, NULL, NULL};
	const char *why;

	if (d == NULL)
		return err_set(e, ERR_PROTO, "unknown message type %u", f->type);
	memset(m, 0, sizeof(*m));
	if (decode_fields(&r, m, d->f, d->n) < 0 && r.sub != NULL)
		return err_set(e, ERR_PROTO, "malformed %s: field '%s', entry field '%s': %s",
			       d->name, r.field, r.sub, r.why);
	if (r.why != NULL)
		return err_set(e, ERR_PROTO, "malformed %s: field '%s': %s", d->name, r.field,
			       r.why);
	if (r.pos != r.len)
		return err_set(e, ERR_PROTO, "malformed %s: %zu trailing bytes", d->name,
			       r.len - r.pos);
	why = check_msg(f->type, m);
	if (why != NULL)
		return err_set(e, ERR_PROTO, "malformed %s: %s", d->name, why);
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int wire_encode(struct buf *out, uint8_t type, const union w_msg *m, struct err *e)
{
	const struct msgdef *d = msgdef(type);
	union w_msg split;
	const char *why;
	size_t len, hdr;
	uint8_t *p;

	if (type == W_RENAME && m->rename.to.len > 0) {
		if (m->rename.to.len > WIRE_MAX_PATH)
			return err_set(e, ERR_PROTO, "refusing to encode RENAME: a path exceeds %u bytes",
				       WIRE_MAX_PATH);
		split = *m;
		rename_split(&split.rename);
		m = &split;
	}
	if (d == NULL)
		return err_set(e, ERR_PROTO, "cannot encode unknown message type %u", type);
	why = check_msg(type, m);
	if (why != NULL)
		return err_set(e, ERR_PROTO, "refusing to encode %s: %s", d->name, why);
	len = encoded_len(m, d->f, d->n);
	if (len == SIZE_MAX)
		return err_set(e, ERR_PROTO, "refusing to encode %s: a path exceeds %u bytes",
			       d->name, WIRE_MAX_PATH);
	if (len > WIRE_MAX_PAYLOAD)
		return err_set(e, ERR_PROTO, "%s payload of %zu bytes exceeds the %u byte limit",
			       d->name, len, WIRE_MAX_PAYLOAD);
	p = buf_space(out, 1 + 10 + len + 4);
	if (p == NULL)
		return err_set(e, EMSGSIZE, "output buffer full");
	p[0] = type;
	hdr = 1 + put_varint(p + 1, len);
	encode_fields(p + hdr, m, d->f, d->n);
	put_le32(p + hdr + len, crc32_update(0, p, hdr + len));
	buf_commit(out, hdr + len + 4);
	return 0;
}

int wire_frame_parse(const uint8_t *p, size_t len, struct w_frame *f, size_t *consumed,
		     struct err *e)
{
	size_t pos = 1;
	uint64_t plen;
	const char *why = NULL;
	int rc;

	if (len < 2)
		return 0;
	rc = get_varint(p, len, &pos, &plen, &why);
	/* Three bytes with continuation bits already mean >= 2^21: refuse the
	 * length before the payload arrives. */
	if (rc == 0 && len - 1 < 3)
		return 0;
	if (rc == 0)
		why = "frame length exceeds the limit";
	if (rc <= 0)
		return err_set(e, ERR_PROTO, "bad frame header: %s", why);
	if (plen > WIRE_MAX_PAYLOAD)
		return err_set(e, ERR_PROTO, "frame of %llu bytes exceeds the %u byte limit",
			       (unsigned long long)plen, WIRE_MAX_PAYLOAD);
	if (len - pos < plen + 4)
		return 0;
	if (crc32_update(0, p, pos + plen) != get_le32(p + pos + plen))
		return err_set(e, ERR_PROTO, "CRC mismatch in a %s frame of %llu bytes",
			       wire_type_name(p[0]), (unsigned long long)plen);
	f->type = p[0];
	f->payload = p + pos;
	f->len = (size_t)plen;
	*consumed = pos + (size_t)plen + 4;
	return 1;
}

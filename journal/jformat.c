/*
 * jformat.c — segment names and headers, the record codec and the segment
 * scanner (see jformat.h; the byte layout is in docs/journal.md).
 *
 * SECURITY: segment files are local state, but a damaged disk or a crash
 * can leave anything in them: every length is checked against the bytes
 * present and the format's bounds before it is used, and every record's
 * CRC is checked before any of its fields is trusted.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "jformat.h"
#include "xalloc.h"

#define SCAN_CHUNK (64 * 1024)

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void jseg_name(uint64_t first_lsn, char out[JSEG_NAME_SIZE])
{
	snprintf(out, JSEG_NAME_SIZE, "%016" PRIx64 JSEG_SUFFIX, first_lsn);
}

int jseg_parse_name(const char *name, uint64_t *first_lsn_r)
{
	uint64_t v = 0;

	if (strlen(name) != 16 + strlen(JSEG_SUFFIX) || strcmp(name + 16, JSEG_SUFFIX) != 0)
		return -1;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return -1;
		v = (v << 4) | (uint64_t)d;
	}
	*first_lsn_r = v;
	return 0;
}

/* Header: magic[8] version(4) header_len(4) journal_id(8) first_lsn(8)
 * created_ns(8) flags(4) crc(4) — CRC over the 44 bytes before it. */
void jseg_hdr_encode(const struct jseg_hdr *h, uint8_t out[JSEG_HDR_LEN])
{
	memset(out, 0, JSEG_HDR_LEN);
	memcpy(out, JSEG_MAGIC, 8);
	put_le32(out + 8, JSEG_VERSION);
	put_le32(out + 12, JSEG_HDR_LEN);
	put_le64(out + 16, h->journal_id);
	put_le64(out + 24, h->first_lsn);
	put_le64(out + 32, h->created_ns);
	put_le32(out + 40, 0);
	put_le32(out + 44, crc32_update(0, out, 44));
}

int jseg_hdr_read(int fd, const char *path, struct jseg_hdr *h, struct err *e)
{
	uint8_t b[JSEG_HDR_LEN];
	ssize_t n;
	uint32_t version;

	do
		n = pread(fd, b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_sys(e, "cannot read journal segment %s", path);
	if (n < (ssize_t)sizeof(b))
		return err_set(e, ERR_CORRUPT,
			       "journal corrupt: %s: offset 0: truncated header (%zd bytes)", path,
			       n);
	if (memcmp(b, JSEG_MAGIC, 8) != 0)
		return err_set(e, ERR_CORRUPT,
			       "journal corrupt: %s: offset 0: not a journal segment", path);
	version = get_le32(b + 8);
	if (version != JSEG_VERSION)
		return err_set(e, ERR_CORRUPT,
			       "%s: journal format version %" PRIu32
			       " is not supported (this mdrepl reads version %d)",
			       path, version, JSEG_VERSION);
	if (get_le32(b + 44) != crc32_update(0, b, 44) || get_le32(b + 12) != JSEG_HDR_LEN)
		return err_set(e, ERR_CORRUPT,
			       "journal corrupt: %s: offset 0: header fails its checksum", path);
	h->journal_id = get_le64(b + 16);
	h->first_lsn = get_le64(b + 24);
	h->created_ns = get_le64(b + 32);
	/* LSNs run from 1 (0 means "none") to JLSN_MAX: a header that checks
	 * out but claims 0 or one near 2^64 would have LSNs wrap. */
	if (h->first_lsn == 0 || h->first_lsn > JLSN_MAX)
		return err_set(e, ERR_CORRUPT,
			       "journal corrupt: %s: offset 24: a segment cannot start at LSN %" PRIu64,
			       path, h->first_lsn);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int jseg_list(int dirfd, const char *dir, uint64_t **v_r, size_t *n_r, struct err *e)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t *v = NULL, lsn;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dp;

	*v_r = NULL;
	*n_r = 0;
	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		err_sys(e, "cannot list journal directory %s", dir);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((d = readdir(dp)) != NULL) {
		if (jseg_parse_name(d->d_name, &lsn) < 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = lsn;
	}
	closedir(dp);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_u64);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* Record: len(4) crc(4) lsn(8) time_ns(8) type(2) path_len(2) path2_len(2)
 * reserved(2) flags(4) path path2. The CRC covers len and bytes 8..len. */
static uint32_t rec_crc(const uint8_t *p, uint32_t len)
{
	return crc32_update(crc32_update(0, p, 4), p + 8, len - 8);
}

void jrec_encode(struct buf *out, const struct jrec *r)
{
	uint32_t len = (uint32_t)(JREC_HDR_LEN + r->path.len + r->path2.len);
	uint8_t *p = buf_space(out, len);

	put_le32(p, len);
	put_le64(p + 8, r->lsn);
	put_le64(p + 16, r->time_ns);
	put_le16(p + 24, (uint16_t)r->type);
	put_le16(p + 26, (uint16_t)r->path.len);
	put_le16(p + 28, (uint16_t)r->path2.len);
	put_le16(p + 30, 0);
	put_le32(p + 32, r->flags);
	if (r->path.len > 0)
		memcpy(p + JREC_HDR_LEN, r->path.p, r->path.len);
	if (r->path2.len > 0)
		memcpy(p + JREC_HDR_LEN + r->path.len, r->path2.p, r->path2.len);
	put_le32(p + 4, rec_crc(p, len));
	buf_commit(out, len);
}

enum dec {
	DEC_OK,
	DEC_SHORT,   /* fewer bytes than the record needs */
	DEC_BADLEN,  /* the length field is out of bounds */
	DEC_BADCRC,  /* the record fails its checksum */
	DEC_INVALID, /* checksum fine, contents inconsistent */
};

static enum dec rec_decode(const uint8_t *p, size_t avail, struct jrec *r, uint32_t *len_r,
			   const char **why)
{
	uint32_t len;
	uint16_t pl, p2l, type;

	if (avail < 4)
		return DEC_SHORT;
	len = get_le32(p);
	*len_r = len;
	if (len < JREC_HDR_LEN || len > JREC_MAX_LEN)
		return DEC_BADLEN;
	if (avail < len)
		return DEC_SHORT;
	if (get_le32(p + 4) != rec_crc(p, len))
		return DEC_BADCRC;
	type = get_le16(p + 24);
	pl = get_le16(p + 26);
	p2l = get_le16(p + 28);
	if (pl > JREC_PATH_MAX || p2l > JREC_PATH_MAX || (uint32_t)JREC_HDR_LEN + pl + p2l != len) {
		*why = "path lengths do not match the record length";
		return DEC_INVALID;
	}
	if (type < JR_CREATE || type > JR_STOP) {
		*why = "unknown record type";
		return DEC_INVALID;
	}
	r->lsn = get_le64(p + 8);
	r->time_ns = get_le64(p + 16);
	r->type = (enum jrec_type)type;
	r->flags = get_le32(p + 32);
	r->path = (struct slice){(const char *)p + JREC_HDR_LEN, pl};
	r->path2 = (struct slice){(const char *)p + JREC_HDR_LEN + pl, p2l};
	return DEC_OK;
}

static int corrupt(struct jscan *s, uint64_t at, const char *why, struct err *e)
{
	return err_set(e, ERR_CORRUPT, "journal corrupt: %s: offset %" PRIu64 ": %s", s->path, at,
		       why);
}

/* Re-reads the file from the current record on, so that bytes a writer
 * replaced since (a torn tail truncated and rewritten) are never mixed
 * with what was read before. Returns the bytes now available, or -1. */
static ssize_t refill(struct jscan *s, size_t need, struct err *e)
{
	size_t want = need > SCAN_CHUNK ? need : SCAN_CHUNK, got = 0;
	uint8_t *space;

	s->off += s->pos;
	s->pos = 0;
	buf_reset(&s->buf);
	space = buf_space(&s->buf, want);
	while (got < want) {
		ssize_t n = pread(s->fd, space + got, want - got, (off_t)(s->off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(e, "cannot read journal segment %s", s->path);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf_commit(&s->buf, got);
	return (ssize_t)got;
}

/* 1 if every byte from off to the end of the file is zero, 0 if not, -1. */
static int rest_is_zero(struct jscan *s, uint64_t off, struct err *e)
{
	uint8_t chunk[8192];

	for (;;) {
		ssize_t n = pread(s->fd, chunk, sizeof(chunk), (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys(e, "cannot read journal segment %s", s->path);
		if (n == 0)
			return 1;
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] != 0)
				return 0;
		}
		off += (uint64_t)n;
	}
}

/* Stops at the current position: nothing more to read for now. The buffer
 * is dropped so that the next call reads the file afresh. */
static int at_tail(struct jscan *s, bool torn)
{
	s->tail_off = s->off + s->pos;
	s->torn = torn;
	s->off = s->tail_off;
	s->pos = 0;
	buf_reset(&s->buf);
	return 0;
}

/* A record that is not valid: a torn tail if nothing but zeros follows it
 * (a crash can leave zero-filled blocks past the last write), else
 * corruption. */
static int bad_record(struct jscan *s, enum dec st, uint32_t len, struct err *e)
{
	uint64_t at = s->off + s->pos;
	uint64_t from = st == DEC_BADLEN ? at + 4 : at + len;
	int z = rest_is_zero(s, from, e);

	if (z < 0)
		return -1;
	if (z == 1)
		return at_tail(s, true);
	return corrupt(s, at,
		       st == DEC_BADLEN ? "invalid record length, followed by more data"
					: "record fails its checksum, followed by more data",
		       e);
}

int jscan_next(struct jscan *s, struct jrec *r, struct err *e)
{
	bool fresh = false;

	for (;;) {
		size_t avail = s->buf.len - s->pos;
		const uint8_t *p = s->buf.data ? s->buf.data + s->pos : (const uint8_t *)"";
		const char *why = NULL;
		uint32_t len = 0;
		enum dec st = rec_decode(p, avail, r, &len, &why);
		ssize_t got;

		switch (st) {
		case DEC_OK:
			if (r->lsn != s->next_lsn) {
				char msg[96];

				snprintf(msg, sizeof(msg),
					 "record has LSN %" PRIu64 ", expected %" PRIu64, r->lsn,
					 s->next_lsn);
				return corrupt(s, s->off + s->pos, msg, e);
			}
			s->pos += len;
			s->next_lsn++;
			s->last_type = r->type;
			s->last_time_ns = r->time_ns;
			return 1;
		case DEC_INVALID: return corrupt(s, s->off + s->pos, why, e);
		case DEC_BADLEN:
		case DEC_BADCRC:
			if (fresh)
				return bad_record(s, st, len, e);
			break;
		case DEC_SHORT:
			if (fresh)
				return at_tail(s, avail > 0);
			break;
		}
		/* Read the file again from this record on before judging it. */
		got = refill(s, st == DEC_SHORT && len > 0 ? len : 0, e);
		if (got < 0)
			return -1;
		fresh = true;
	}
}

int jscan_open(struct jscan *s, int dirfd, const char *dir, uint64_t first_lsn, int oflags,
	       struct err *e)
{
	char name[JSEG_NAME_SIZE];

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	jseg_name(first_lsn, name);
	s->path = xasprintf("%s/%s", dir, name);
	s->fd = openat(dirfd, name, oflags | O_CLOEXEC | O_NOFOLLOW);
	if (s->fd < 0) {
		int saved = errno;

		err_sys(e, "cannot open journal segment %s", s->path);
		jscan_close(s);
		errno = saved;
		return -1;
	}
	if (jseg_hdr_read(s->fd, s->path, &s->hdr, e) < 0)
		goto fail;
	if (s->hdr.first_lsn != first_lsn) {
		err_set(e, ERR_CORRUPT,
			"journal corrupt: %s: offset 0: header says first LSN %" PRIu64, s->path,
			s->hdr.first_lsn);
		goto fail;
	}
	s->next_lsn = first_lsn;
	s->off = JSEG_HDR_LEN;
	s->tail_off = JSEG_HDR_LEN;
	return 0;
fail:
	jscan_close(s);
	errno = EINVAL;
	return -1;
}

void jscan_close(struct jscan *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->path);
	s->path = NULL;
	buf_free(&s->buf);
}

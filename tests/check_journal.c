/*
 * check_journal.c — the journal library: record round trips, a random
 * model test, torn tails cut at every byte, corruption with file and
 * offset, rotation and resuming anywhere, retention by the acked position
 * and by max_size (marker and gap), the marker protocol, group commit,
 * the boot-id rule, and readers at the live tail.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "jformat.h"
#include "journal.h"
#include "testutil.h"
#include "xalloc.h"

#define SEG_HDR	   48
#define REC_HDR	   36
#define PATH_MAX_J 4095

static char tdir[4096], jdir[4200];

static const struct journal_opts opts_default = {50, 1000, 64 * 1024 * 1024, 1ULL << 40};

static void setup(void)
{
	snprintf(tdir, sizeof(tdir), "%s", tu_mkdtemp());
	snprintf(jdir, sizeof(jdir), "%s/journal", tdir);
}

static void teardown(void)
{
	tu_rmtree(tdir);
}

static struct journal *open_ok(const struct journal_opts *o, bool *clean_r)
{
	struct err e;
	bool clean;
	struct journal *j = journal_open(jdir, o, &clean, &e);

	ck_assert_msg(j != NULL, "journal_open: %s", e.msg);
	if (clean_r)
		*clean_r = clean;
	return j;
}

static uint64_t append(struct journal *j, enum jrec_type t, uint32_t flags, const char *p,
		       const char *p2)
{
	struct err e;
	uint64_t lsn;

	ck_assert_msg(journal_append(j, t, flags, slice_cstr(p), slice_cstr(p2), &lsn, &e) == 0,
		      "append: %s", e.msg);
	return lsn;
}

static struct jreader *reader(uint64_t after, bool *gap_r)
{
	struct err e;
	bool gap;
	struct jreader *rd = jreader_open(jdir, after, &gap, &e);

	ck_assert_msg(rd != NULL, "jreader_open: %s", e.msg);
	if (gap_r)
		*gap_r = gap;
	return rd;
}

static int next(struct jreader *rd, struct jrec *r)
{
	struct err e;
	int rc = jreader_next(rd, r, &e);

	ck_assert_msg(rc >= 0, "jreader_next: %s", e.msg);
	return rc;
}

static void seg_path(uint64_t first, char *out, size_t n)
{
	snprintf(out, n, "%s/%016" PRIx64 ".seg", jdir, first);
}

static uint64_t file_size(const char *path)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return (uint64_t)sb.st_size;
}

static int count_segments(void)
{
	DIR *d = opendir(jdir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		n += len == 20 && strcmp(de->d_name + 16, ".seg") == 0;
	}
	closedir(d);
	return n;
}

START_TEST(test_roundtrip)
{
	static const enum jrec_type types[] = {JR_CREATE,	 JR_RENAME,	   JR_UNLINK,
					       JR_FOLDER_CREATE, JR_FOLDER_DELETE, JR_FOLDER_RENAME,
					       JR_META_CHANGED,	 JR_RESCAN,	   JR_START};
	char *longp = xmalloc(PATH_MAX_J + 1), *longq = xmalloc(PATH_MAX_J + 1);
	struct jreader *rd;
	struct journal *j;
	struct jrec r;
	bool clean, gap;
	struct err e;
	uint64_t before = now_real_ns();

	memset(longp, 'a', PATH_MAX_J);
	longp[PATH_MAX_J] = '\0';
	memset(longq, 'b', PATH_MAX_J);
	longq[PATH_MAX_J] = '\0';
	j = open_ok(&opts_default, &clean);
	ck_assert(clean);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		ck_assert_uint_eq(append(j, types[i], (uint32_t)i, "bob/Maildir/cur/1.M2:2,S",
					 i % 2 ? "bob/x" : ""),
				  i + 1);
	ck_assert_uint_eq(append(j, JR_RENAME, 0, longp, longq), 10);
	ck_assert_uint_eq(append(j, JR_CREATE, JR_F_SUBTREE, "", ""), 11);
	/* one byte over the bound is refused and consumes no LSN */
	{
		char *over = xasprintf("%sX", longp);

		ck_assert_int_eq(
		    journal_append(j, JR_CREATE, 0, slice_cstr(over), SLICE_LIT(""), NULL, &e), -1);
		ck_assert_int_eq(e.code, ENAMETOOLONG);
		free(over);
	}
	ck_assert_uint_eq(journal_head(j), 11);
	ck_assert_int_eq(journal_close_clean(&j, &e), 0);
	ck_assert_ptr_null(j);

	rd = reader(0, &gap);
	ck_assert(!gap);
	ck_assert_uint_ne(jreader_journal_id(rd), 0);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_uint_eq(r.lsn, i + 1);
		ck_assert_int_eq(r.type, types[i]);
		ck_assert_uint_eq(r.flags, i);
		ck_assert(slice_eq_cstr(r.path, "bob/Maildir/cur/1.M2:2,S"));
		ck_assert(slice_eq_cstr(r.path2, i % 2 ? "bob/x" : ""));
		ck_assert_uint_ge(r.time_ns, before);
		ck_assert_uint_le(r.time_ns, now_real_ns());
	}
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_int_eq(r.type, JR_RENAME);
	ck_assert_uint_eq(r.path.len, PATH_MAX_J);
	ck_assert_uint_eq(r.path2.len, PATH_MAX_J);
	ck_assert(memcmp(r.path.p, longp, PATH_MAX_J) == 0);
	ck_assert(memcmp(r.path2.p, longq, PATH_MAX_J) == 0);
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_uint_eq(r.path.len, 0);
	ck_assert_uint_eq(r.flags, JR_F_SUBTREE);
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_int_eq(r.type, JR_STOP);
	ck_assert_uint_eq(r.lsn, 12);
	ck_assert_int_eq(next(rd, &r), 0);
	jreader_free(&rd);
	ck_assert_ptr_null(rd);
	ck_assert_str_eq(jrec_type_name(JR_FOLDER_RENAME), "folder_rename");
	ck_assert_str_eq(jrec_type_name(JR_META_CHANGED), "meta_changed");

	/* A clean stop is reported as such; a crash (no JR_STOP) is not. */
	j = open_ok(&opts_default, &clean);
	ck_assert(clean);
	ck_assert_uint_eq(journal_head(j), 12);
	append(j, JR_START, 0, "clean", "");
	journal_free(&j);
	j = open_ok(&opts_default, &clean);
	ck_assert(!clean);
	ck_assert_uint_eq(journal_head(j), 13);
	journal_free(&j);
	free(longp);
	free(longq);
}
END_TEST

/* Records of a model journal: type and path derived from the LSN. */
static void model_record(uint64_t lsn, enum jrec_type *t, struct buf *p, struct buf *p2)
{
	uint64_t x = lsn * 2654435761u;
	size_t len = (x >> 8) % 7 == 0 ? (x % 4096) : (x % 80);

	*t = (enum jrec_type)(1 + x % 8);
	buf_reset(p);
	buf_reset(p2);
	for (size_t i = 0; i < len && i < PATH_MAX_J; i++)
		buf_putc(p, (char)('a' + (lsn + i) % 26));
	if (*t == JR_RENAME || *t == JR_FOLDER_RENAME)
		buf_printf(p2, "to/%" PRIu64, lsn);
}

static void check_model(struct jreader *rd, uint64_t from, uint64_t to)
{
	struct buf p = BUF_INIT, p2 = BUF_INIT;
	struct jrec r;
	enum jrec_type t;

	for (uint64_t lsn = from; lsn <= to; lsn++) {
		ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_uint_eq(r.lsn, lsn);
		model_record(lsn, &t, &p, &p2);
		ck_assert_int_eq(r.type, t);
		ck_assert(slice_eq(r.path, buf_slice(&p)));
		ck_assert(slice_eq(r.path2, buf_slice(&p2)));
	}
	buf_free(&p);
	buf_free(&p2);
}

START_TEST(test_model)
{
	struct journal_opts o = opts_default;
	struct buf p = BUF_INIT, p2 = BUF_INIT;
	struct journal *j;
	struct jreader *follow;
	uint64_t lsn, head = 0;
	enum jrec_type t;
	struct err e;

	srandom(1234);
	o.segment_size = 16 * 1024;
	j = open_ok(&o, NULL);
	follow = reader(0, NULL);
	for (int round = 0; round < 60; round++) {
		int n = (int)(random() % 40);

		for (int i = 0; i < n; i++) {
			model_record(head + 1, &t, &p, &p2);
			ck_assert_int_eq(
			    journal_append(j, t, 0, buf_slice(&p), buf_slice(&p2), &lsn, &e), 0);
			ck_assert_uint_eq(lsn, ++head);
		}
		if (random() % 3 == 0)
			ck_assert_int_ge(journal_sync(j, random() % 2, &e), -1);
		/* a follower sees everything appended so far, then "not yet" */
		check_model(follow, head - (uint64_t)n + 1, head);
		{
			struct jrec r;

			ck_assert_int_eq(next(follow, &r), 0);
		}
		/* a fresh cursor anywhere reads the same */
		if (head > 0) {
			uint64_t after = (uint64_t)random() % head;
			struct jreader *rd = reader(after, NULL);

			check_model(rd, after + 1, head);
			jreader_free(&rd);
		}
		if (random() % 10 == 0) { /* a crash and a restart */
			journal_free(&j);
			j = open_ok(&o, NULL);
			ck_assert_uint_eq(journal_head(j), head);
		}
	}
	ck_assert_int_gt(count_segments(), 5);
	jreader_free(&follow);
	journal_free(&j);
	buf_free(&p);
	buf_free(&p2);
}
END_TEST

START_TEST(test_live_tail)
{
	struct journal *j = open_ok(&opts_default, NULL);
	struct jreader *rd = reader(0, NULL);
	struct jrec r;

	ck_assert_int_eq(next(rd, &r), 0);
	append(j, JR_CREATE, 0, "a/new/1", "");
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert(slice_eq_cstr(r.path, "a/new/1"));
	ck_assert_int_eq(next(rd, &r), 0);
	ck_assert_int_eq(next(rd, &r), 0);
	append(j, JR_UNLINK, 0, "a/new/1", "");
	append(j, JR_UNLINK, 0, "a/new/2", "");
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert(slice_eq_cstr(r.path, "a/new/2"));
	ck_assert_int_eq(next(rd, &r), 0);
	jreader_free(&rd);
	journal_free(&j);
}
END_TEST

/* The newest segment's first LSN (the test journals have one segment). */
static void newest_segment(char *out, size_t n)
{
	seg_path(1, out, n);
}

/* Five records; the last one's path is long so many cuts are possible. */
static void write_five(uint64_t *last_off_r)
{
	struct journal *j = open_ok(&opts_default, NULL);
	char path[4300];

	append(j, JR_CREATE, 0, "u/new/1", "");
	append(j, JR_RENAME, 0, "u/new/1", "u/cur/1:2,S");
	append(j, JR_FOLDER_CREATE, 0, "u/.Sent", "");
	append(j, JR_UNLINK, 0, "u/cur/1:2,S", "");
	newest_segment(path, sizeof(path));
	*last_off_r = file_size(path);
	append(j, JR_META_CHANGED, 0, "u/dovecot-uidlist-with-a-longer-name", "");
	journal_free(&j);
}

START_TEST(test_torn_tail_every_offset)
{
	char path[4300];
	uint64_t last_off, full;

	write_five(&last_off);
	newest_segment(path, sizeof(path));
	full = file_size(path);
	for (uint64_t cut = last_off; cut < full; cut++) {
		struct journal *j;
		struct jreader *rd;
		struct jrec r;
		bool clean;

		tu_rmtree(jdir);
		write_five(&last_off);
		ck_assert_int_eq(truncate(path, (off_t)cut), 0);
		/* a reader treats the torn record as "not yet" */
		rd = reader(0, NULL);
		for (int i = 1; i <= 4; i++)
			ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_int_eq(next(rd, &r), 0);
		/* the writer cuts it off and continues with the next LSN */
		j = open_ok(&opts_default, &clean);
		ck_assert(!clean);
		ck_assert_uint_eq(journal_head(j), 4);
		ck_assert_uint_eq(file_size(path), last_off);
		ck_assert_uint_eq(append(j, JR_CREATE, 0, "u/new/2", ""), 5);
		ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_uint_eq(r.lsn, 5);
		ck_assert(slice_eq_cstr(r.path, "u/new/2"));
		jreader_free(&rd);
		journal_free(&j);
		rd = reader(0, NULL);
		for (int i = 1; i <= 5; i++) {
			ck_assert_int_eq(next(rd, &r), 1);
			ck_assert_uint_eq(r.lsn, (uint64_t)i);
		}
		ck_assert_int_eq(next(rd, &r), 0);
		jreader_free(&rd);
	}
}
END_TEST

START_TEST(test_zero_filled_tail)
{
	char path[4300], zeros[10000] = {0};
	uint64_t last_off, full;
	struct journal *j;
	int fd;

	write_five(&last_off);
	newest_segment(path, sizeof(path));
	full = file_size(path);
	/* a crash can leave zero-filled blocks after the last record */
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
	close(fd);
	j = open_ok(&opts_default, NULL);
	ck_assert_uint_eq(journal_head(j), 5);
	ck_assert_uint_eq(file_size(path), full);
	journal_free(&j);
}
END_TEST

static void flip(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x41;
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

START_TEST(test_corrupt_middle)
{
	char path[4300], want[4400];
	uint64_t last_off, rec2 = SEG_HDR + REC_HDR + 7, rec2_len = REC_HDR + 7 + 11;

	newest_segment(path, sizeof(path));
	for (uint64_t off = rec2; off < rec2 + rec2_len; off++) {
		struct jreader *rd;
		struct jrec r;
		struct err e;
		bool clean;

		tu_rmtree(jdir);
		write_five(&last_off);
		flip(path, off);
		snprintf(want, sizeof(want), "%s: offset %" PRIu64 ":", path, rec2);
		ck_assert_ptr_null(journal_open(jdir, &opts_default, &clean, &e));
		ck_assert_int_eq(e.code, ERR_CORRUPT);
		ck_assert_msg(strstr(e.msg, want) != NULL, "flip at %" PRIu64 ": %s", off, e.msg);
		rd = reader(0, NULL);
		ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_int_eq(jreader_next(rd, &r, &e), -1);
		ck_assert_int_eq(e.code, ERR_CORRUPT);
		ck_assert_msg(strstr(e.msg, want) != NULL, "reader, flip at %" PRIu64 ": %s", off,
			      e.msg);
		jreader_free(&rd);
	}
	/* a damaged header is corruption too */
	tu_rmtree(jdir);
	write_five(&last_off);
	flip(path, 20);
	{
		struct err e;
		bool clean, gap;

		ck_assert_ptr_null(journal_open(jdir, &opts_default, &clean, &e));
		ck_assert_ptr_nonnull(strstr(e.msg, "header fails its checksum"));
		ck_assert_ptr_null(jreader_open(jdir, 0, &gap, &e));
		ck_assert_ptr_nonnull(strstr(e.msg, "header fails its checksum"));
	}
	/* ...and so is one that checks out but starts at LSN 0 (found by
	 * fuzz_journal: the writer then gave its next record LSN 0, and a
	 * reader looked for a segment that was never written) */
	tu_rmtree(jdir);
	ck_assert_int_eq(mkdir(jdir, 0700), 0);
	{
		struct jseg_hdr h = {0x5f, 0, 1};
		uint8_t b[SEG_HDR + 35] = {0};
		char p0[4300];
		struct err e;
		bool clean, gap;

		jseg_hdr_encode(&h, b);
		seg_path(0, p0, sizeof(p0));
		tu_write(p0, b, sizeof(b));
		ck_assert_ptr_null(journal_open(jdir, &opts_default, &clean, &e));
		ck_assert_int_eq(e.code, ERR_CORRUPT);
		ck_assert_ptr_nonnull(strstr(e.msg, "cannot start at LSN 0"));
		ck_assert_ptr_null(jreader_open(jdir, 0, &gap, &e));
		ck_assert_ptr_nonnull(strstr(e.msg, "cannot start at LSN 0"));
		/* near 2^64 (found next): LSNs would wrap */
		tu_rmtree(jdir);
		ck_assert_int_eq(mkdir(jdir, 0700), 0);
		h.first_lsn = UINT64_MAX;
		jseg_hdr_encode(&h, b);
		seg_path(UINT64_MAX, p0, sizeof(p0));
		tu_write(p0, b, sizeof(b));
		ck_assert_ptr_null(journal_open(jdir, &opts_default, &clean, &e));
		ck_assert_ptr_nonnull(strstr(e.msg, "cannot start at LSN 18446744073709551615"));
		ck_assert_ptr_null(jreader_open(jdir, 0, &gap, &e));
		ck_assert_int_eq(e.code, ERR_CORRUPT);
	}
}
END_TEST

START_TEST(test_rotation)
{
	struct journal_opts o = opts_default;
	struct journal_stats st;
	struct journal *j;
	struct jreader *rd;
	struct jrec r;
	char name[64];

	o.segment_size = 1024;
	j = open_ok(&o, NULL);
	for (int i = 1; i <= 2000; i++) {
		snprintf(name, sizeof(name), "user%d/Maildir/new/%d.M%d", i % 50, i, i);
		append(j, JR_CREATE, 0, name, "");
	}
	journal_get_stats(j, &st);
	ck_assert_uint_gt(st.rotations, 50);
	ck_assert_uint_eq(st.segments, st.rotations + 1);
	ck_assert_uint_eq(st.fsyncs, st.rotations); /* each closed segment was synced */
	/* one pass across every segment */
	rd = reader(0, NULL);
	for (uint64_t lsn = 1; lsn <= 2000; lsn++) {
		ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_uint_eq(r.lsn, lsn);
	}
	ck_assert_int_eq(next(rd, &r), 0);
	/* the follower crosses into segments created after it reached the tail */
	for (int i = 0; i < 300; i++)
		append(j, JR_UNLINK, 0, "user1/Maildir/new/x", "");
	for (uint64_t lsn = 2001; lsn <= 2300; lsn++) {
		ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_uint_eq(r.lsn, lsn);
	}
	jreader_free(&rd);
	/* resume at arbitrary positions, including segment boundaries */
	for (uint64_t after = 0; after <= 2300; after += 37) {
		rd = reader(after, NULL);
		if (after < 2300) {
			ck_assert_int_eq(next(rd, &r), 1);
			ck_assert_uint_eq(r.lsn, after + 1);
		}
		jreader_free(&rd);
	}
	/* past the head: waits for what comes */
	rd = reader(5000, NULL);
	ck_assert_int_eq(next(rd, &r), 0);
	jreader_free(&rd);
	journal_free(&j);
}
END_TEST

START_TEST(test_retain_acked)
{
	struct journal_opts o = opts_default;
	struct journal *j;
	struct jreader *rd;
	struct err e;
	uint64_t id, lsn;
	bool gap;
	struct jrec r;
	int before, after;

	o.segment_size = 512;
	j = open_ok(&o, NULL);
	for (int i = 0; i < 200; i++)
		append(j, JR_CREATE, 0, "u/Maildir/new/123456789.M1P1.host", "");
	before = count_segments();
	ck_assert_int_gt(before, 10);
	/* no acked file: nothing goes */
	ck_assert_int_eq(journal_read_acked(jdir, &id, &lsn, &e), 0);
	ck_assert_uint_eq(id, 0);
	ck_assert_int_eq(journal_retain(j, &e), 0);
	ck_assert_int_eq(count_segments(), before);
	/* an acked position of another journal id is ignored */
	ck_assert_int_eq(journal_write_acked(jdir, journal_id(j) ^ 1, 150, &e), 0);
	ck_assert_int_eq(journal_retain(j, &e), 0);
	ck_assert_int_eq(count_segments(), before);
	/* acked 100: only segments wholly at or below 100 go */
	ck_assert_int_eq(journal_write_acked(jdir, journal_id(j), 100, &e), 0);
	ck_assert_int_eq(journal_read_acked(jdir, &id, &lsn, &e), 0);
	ck_assert_uint_eq(id, journal_id(j));
	ck_assert_uint_eq(lsn, 100);
	ck_assert_int_eq(journal_retain(j, &e), 0);
	after = count_segments();
	ck_assert_int_lt(after, before);
	rd = reader(100, &gap);
	ck_assert(!gap);
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_uint_eq(r.lsn, 101);
	jreader_free(&rd);
	rd = reader(0, &gap);
	ck_assert(gap);
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_uint_gt(r.lsn, 1);
	ck_assert_uint_le(r.lsn, 101);
	jreader_free(&rd);
	/* everything acked: only the current segment is left */
	ck_assert_int_eq(journal_write_acked(jdir, journal_id(j), 200, &e), 0);
	ck_assert_int_eq(journal_retain(j, &e), 0);
	ck_assert_int_eq(count_segments(), 1);
	ck_assert(!journal_needs_full_sync(jdir));
	append(j, JR_CREATE, 0, "u/new/x", "");
	ck_assert_uint_eq(journal_head(j), 201);
	journal_free(&j);
	/* a garbled acked file is an error, not a position */
	{
		char path[4300];

		snprintf(path, sizeof(path), "%s/acked", jdir);
		tu_write_str(path, "journal_id=zz\n");
		ck_assert_int_eq(journal_read_acked(jdir, &id, &lsn, &e), -1);
		ck_assert_int_eq(e.code, ERR_CORRUPT);
	}
}
END_TEST

START_TEST(test_max_size)
{
	struct journal_opts o = opts_default;
	struct journal *j;
	struct jreader *rd;
	struct err e;
	bool gap;
	struct jrec r;

	o.segment_size = 1024;
	o.max_size = 4096;
	j = open_ok(&o, NULL);
	for (int i = 0; i < 300; i++)
		append(j, JR_CREATE, 0, "u/Maildir/new/123456789.M1P1.host", "");
	ck_assert_int_eq(journal_write_acked(jdir, journal_id(j), 10, &e), 0);
	ck_assert(!journal_needs_full_sync(jdir));
	ck_assert_int_eq(journal_retain(j, &e), 0);
	ck_assert_uint_le(journal_size(j), 4096);
	ck_assert(journal_needs_full_sync(jdir));
	rd = reader(10, &gap);
	ck_assert(gap);
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_uint_gt(r.lsn, 11);
	jreader_free(&rd);
	/* the segment being written is never deleted, however small max_size */
	o.max_size = 1;
	journal_free(&j);
	j = open_ok(&o, NULL);
	ck_assert_int_eq(journal_retain(j, &e), 0);
	ck_assert_int_eq(count_segments(), 1);
	ck_assert_uint_eq(append(j, JR_CREATE, 0, "x", ""), 301);
	journal_free(&j);
}
END_TEST

START_TEST(test_marker)
{
	struct err e;
	char path[4300];

	ck_assert(!journal_needs_full_sync(jdir));
	ck_assert_int_eq(journal_claim_full_sync(jdir, &e), 0);
	ck_assert_int_eq(journal_finish_full_sync(jdir, &e), 0);
	ck_assert_int_eq(fs_mkdir_p(jdir, 0700, &e), 0);
	ck_assert_int_eq(journal_claim_full_sync(jdir, &e), 0);
	snprintf(path, sizeof(path), "%s/needs-full-sync", jdir);
	tu_write_str(path, "x\n");
	ck_assert(journal_needs_full_sync(jdir));
	ck_assert_int_eq(journal_claim_full_sync(jdir, &e), 1);
	ck_assert(journal_needs_full_sync(jdir)); /* claimed, not finished */
	ck_assert_int_eq(access(path, F_OK), -1);
	/* a crash during the compare: the claim is still there */
	ck_assert_int_eq(journal_claim_full_sync(jdir, &e), 1);
	/* marker set again while the claim is open: it survives the finish */
	tu_write_str(path, "again\n");
	ck_assert_int_eq(journal_finish_full_sync(jdir, &e), 0);
	ck_assert(journal_needs_full_sync(jdir));
	ck_assert_int_eq(journal_claim_full_sync(jdir, &e), 1);
	ck_assert_int_eq(journal_finish_full_sync(jdir, &e), 0);
	ck_assert(!journal_needs_full_sync(jdir));
	ck_assert_int_eq(journal_claim_full_sync(jdir, &e), 0);
}
END_TEST

START_TEST(test_group_commit)
{
	struct journal_opts o = opts_default;
	struct journal_stats st;
	struct journal *j;
	struct err e;
	uint64_t start = now_mono_ms(), elapsed;
	int n = 0, due;

	o.fsync_interval_ms = 50;
	o.fsync_records = 100000;
	j = open_ok(&o, NULL);
	ck_assert_int_eq(journal_sync(j, false, &e), -1); /* nothing waiting */
	while (now_mono_ms() - start < 400) {
		append(j, JR_CREATE, 0, "u/new/1", "");
		n++;
		due = journal_sync(j, false, &e);
		ck_assert_int_ge(due, -1);
		ck_assert_int_le(due, 50);
		if (n % 64 == 0)
			usleep(1000);
	}
	elapsed = now_mono_ms() - start;
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.appends, (uint64_t)n);
	ck_assert_int_gt(n, 200);
	ck_assert_msg(st.fsyncs <= elapsed / 50 + 2, "%" PRIu64 " fsyncs in %" PRIu64 " ms",
		      st.fsyncs, elapsed);
	ck_assert_uint_ge(st.fsyncs, 2);
	ck_assert_int_eq(journal_sync(j, true, &e), -1);
	ck_assert_uint_eq(journal_durable(j), journal_head(j));
	journal_free(&j);

	/* the record count triggers a sync too */
	tu_rmtree(jdir);
	o.fsync_records = 10;
	o.fsync_interval_ms = 100000;
	j = open_ok(&o, NULL);
	for (int i = 0; i < 9; i++)
		append(j, JR_CREATE, 0, "u/new/1", "");
	ck_assert_int_gt(journal_sync(j, false, &e), 0);
	append(j, JR_CREATE, 0, "u/new/1", "");
	ck_assert_int_eq(journal_sync(j, false, &e), -1);
	ck_assert_uint_eq(journal_durable(j), 10);
	journal_free(&j);

	/* interval 0: every record is synced as it is appended */
	tu_rmtree(jdir);
	o.fsync_interval_ms = 0;
	j = open_ok(&o, NULL);
	for (int i = 0; i < 20; i++) {
		append(j, JR_CREATE, 0, "u/new/1", "");
		ck_assert_uint_eq(journal_durable(j), journal_head(j));
	}
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.fsyncs, 20);
	journal_free(&j);
}
END_TEST

static void set_meta_boot_id(const char *boot)
{
	char path[4300], *text = xasprintf("journal_id=0\nboot_id=%s\n", boot);

	snprintf(path, sizeof(path), "%s/journal.meta", jdir);
	tu_write_str(path, text);
	free(text);
}

START_TEST(test_boot_id_rule)
{
	struct journal *j;
	struct jreader *rd;
	struct jrec r;
	struct err e;
	bool clean;
	uint64_t id;

	j = open_ok(&opts_default, NULL);
	id = journal_id(j);
	for (int i = 0; i < 5; i++)
		append(j, JR_CREATE, 0, "u/new/1", "");
	journal_free(&j);
	/* unclean, same boot: same journal, same id */
	j = open_ok(&opts_default, &clean);
	ck_assert(!clean);
	ck_assert_uint_eq(journal_id(j), id);
	journal_close_clean(&j, &e);
	/* clean stop, other boot: the journal is intact, same id */
	set_meta_boot_id("00000000-0000-0000-0000-000000000000");
	j = open_ok(&opts_default, &clean);
	ck_assert(clean);
	ck_assert_uint_eq(journal_id(j), id);
	append(j, JR_START, 0, "clean", "");
	ck_assert_uint_eq(journal_head(j), 7);
	journal_free(&j);
	/* a follower of the old journal is told the id changed */
	rd = reader(0, NULL);
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(next(rd, &r), 1);
	/* unclean stop across a reboot: new id, LSNs go on, old segments go */
	set_meta_boot_id("00000000-0000-0000-0000-000000000000");
	j = open_ok(&opts_default, &clean);
	ck_assert(!clean);
	ck_assert_uint_ne(journal_id(j), id);
	ck_assert_uint_eq(journal_head(j), 7);
	ck_assert_uint_eq(append(j, JR_START, 0, "unclean", ""), 8);
	ck_assert_int_eq(count_segments(), 1);
	ck_assert_int_eq(jreader_next(rd, &r, &e), -1);
	ck_assert_int_eq(e.code, ESTALE);
	jreader_free(&rd);
	{
		bool gap;

		rd = reader(3, &gap);
		ck_assert(gap);
		ck_assert_uint_eq(jreader_journal_id(rd), journal_id(j));
		ck_assert_int_eq(next(rd, &r), 1);
		ck_assert_uint_eq(r.lsn, 8);
		jreader_free(&rd);
	}
	journal_free(&j);
}
END_TEST

START_TEST(test_one_writer)
{
	struct journal *j = open_ok(&opts_default, NULL), *j2;
	struct err e;
	bool clean;

	j2 = journal_open(jdir, &opts_default, &clean, &e);
	ck_assert_ptr_null(j2);
	ck_assert_int_eq(e.code, EBUSY);
	ck_assert_ptr_nonnull(strstr(e.msg, "open for writing by another process"));
	journal_free(&j);
	j2 = open_ok(&opts_default, NULL);
	journal_free(&j2);
}
END_TEST

START_TEST(test_no_journal)
{
	struct err e;
	bool gap;

	ck_assert_ptr_null(jreader_open(jdir, 0, &gap, &e));
	ck_assert_int_eq(e.code, ENOENT);
	ck_assert_int_eq(fs_mkdir_p(jdir, 0700, &e), 0);
	ck_assert_ptr_null(jreader_open(jdir, 0, &gap, &e));
	ck_assert_int_eq(e.code, ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "no segments"));
}
END_TEST

START_TEST(test_reader_sees_rewritten_tail)
{
	char path[4300];
	uint64_t last_off;
	struct jreader *rd;
	struct journal *j;
	struct jrec r;
	int fd;

	write_five(&last_off);
	newest_segment(path, sizeof(path));
	/* half of a record, as a writer killed mid-write leaves it */
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, "\x40\x00\x00\x00\x12\x34\x56", 7), 7);
	close(fd);
	rd = reader(0, NULL);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_int_eq(next(rd, &r), 0);
	ck_assert_int_eq(next(rd, &r), 0);
	/* the writer restarts: cuts the torn bytes, appends anew */
	j = open_ok(&opts_default, NULL);
	append(j, JR_START, 0, "unclean", "");
	ck_assert_int_eq(next(rd, &r), 1);
	ck_assert_int_eq(r.type, JR_START);
	ck_assert_uint_eq(r.lsn, 6);
	jreader_free(&rd);
	journal_free(&j);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *core = tcase_create("core"), *recovery = tcase_create("recovery"),
	      *retention = tcase_create("retention"), *limits = tcase_create("limits");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(recovery, setup, teardown);
	tcase_add_checked_fixture(retention, setup, teardown);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_set_timeout(recovery, 60);
	tcase_set_timeout(core, 60);
	tcase_add_test(core, test_roundtrip);
	tcase_add_test(core, test_model);
	tcase_add_test(core, test_live_tail);
	tcase_add_test(core, test_rotation);
	tcase_add_test(core, test_group_commit);
	tcase_add_test(recovery, test_torn_tail_every_offset);
	tcase_add_test(recovery, test_zero_filled_tail);
	tcase_add_test(recovery, test_corrupt_middle);
	tcase_add_test(recovery, test_boot_id_rule);
	tcase_add_test(recovery, test_reader_sees_rewritten_tail);
	tcase_add_test(retention, test_retain_acked);
	tcase_add_test(retention, test_max_size);
	tcase_add_test(retention, test_marker);
	tcase_add_test(limits, test_no_journal);
	tcase_add_test(limits, test_one_writer);
	suite_add_tcase(s, core);
	suite_add_tcase(s, recovery);
	suite_add_tcase(s, retention);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	return tu_run(journal_suite());
}

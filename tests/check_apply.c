/*
 * check_apply.c — the standby's apply engine on a real tree: every
 * operation's effect and idempotency, the order of renames at commit
 * (watched with inotify), nothing partial ever visible, NEED cases,
 * integrity failures, hostile paths, attributes to the nanosecond,
 * chunked interleaved transfers, abort, crash leftovers, and (in a private
 * mount namespace) a full file system and targets below mount points.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "apply.h"
#include "delta.h"
#include "fsutil.h"
#include "hash.h"
#include "scan.h"
#include "testutil.h"

static char top[PATH_MAX], root[PATH_MAX + 8];
static int rootfd = -1;
static struct md_rules *rules;
static struct apply *ap;
static struct err e;

static const int64_t T1 = 1700000000123456789LL;

/* Absolute path of rel beneath the root; lasts for the next three calls. */
static const char *at(const char *rel)
{
	static char p[4][PATH_MAX + 300];
	static int next;
	char *r = p[next++ % 4];

	snprintf(r, sizeof(p[0]), "%s/%s", root, rel);
	return r;
}

static void open_engine(bool syncfs)
{
	struct apply_opts o = {
	    .rootfd = rootfd, .rules = rules, .preserve_owner = true, .use_syncfs = syncfs};

	apply_free(&ap);
	ap = apply_new(&o, &e);
	ck_assert_msg(ap != NULL, "%s", e.msg);
}

static void setup(void)
{
	rootfd = tu_mail_root(top, root);
	rules = md_rules_new(':', NULL);
	open_engine(true);
}

static void teardown(void)
{
	apply_free(&ap);
	ck_assert_ptr_null(ap);
	if (rootfd >= 0)
		close(rootfd);
	/* Mounts of the namespace tests (if any are left after a failure). */
	umount2(at("mnt"), MNT_DETACH);
	umount2(at("bind"), MNT_DETACH);
	umount2(root, MNT_DETACH);
	md_rules_free(&rules);
	tu_rmtree(top);
}

static bool present(const char *rel)
{
	struct stat st;

	return lstat(at(rel), &st) == 0;
}

static void expect_content(const char *rel, const char *want)
{
	size_t len;
	char *got = tu_read(at(rel), &len);

	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(got, want, len);
	free(got);
}

/* Entries in a directory beneath the root. */
static int entries(const char *rel)
{
	char cmd[PATH_MAX + 400];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ls -A '%s'", at(rel));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(cmd, sizeof(cmd), f) != NULL)
		n++;
	pclose(f);
	return n;
}

static int staged(void)
{
	return entries(APPLY_TMPDIR);
}

static int mkdir_op(const char *path, uint32_t mode)
{
	struct w_mkdir m = {.path = slice_cstr(path), .mode = mode, .uid = 0, .gid = 0};

	return apply_mkdir(ap, &m, &e);
}

static void maildir(const char *path)
{
	char p[PATH_MAX];
	const char *subs[] = {"cur", "new", "tmp"};

	for (size_t i = 0; i < strlen(path); i++) {
		if (path[i] == '/') {
			snprintf(p, sizeof(p), "%.*s", (int)i, path);
			ck_assert_msg(mkdir_op(p, 0755) == 0, "%s", e.msg);
		}
	}
	ck_assert_msg(mkdir_op(path, 0700) == 0, "%s", e.msg);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", path, subs[i]);
		ck_assert_msg(mkdir_op(p, 0700) == 0, "%s", e.msg);
	}
}

static struct w_put put_msg(const char *path, const char *data, size_t len)
{
	struct w_put m = {.path = slice_cstr(path),
			  .size = len,
			  .mtime_ns = T1,
			  .mode = 0640,
			  .uid = 1234,
			  .gid = 2345,
			  .raw_len = (uint32_t)len,
			  .body = {data, len}};

	sha256_buf(data, len, m.sha256);
	return m;
}

static int put(const char *path, const char *data)
{
	struct w_put m = put_msg(path, data, strlen(data));

	return apply_put(ap, &m, &e);
}

static void commit(void)
{
	ck_assert_msg(apply_commit(ap, &e) == 0, "%s", e.msg);
}

/* ---------------------------------------------------------------- core */

START_TEST(test_put)
{
	struct stat st, st2;
	const struct apply_stats *s = apply_get_stats(ap);

	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/cur/1.M1:2,S", "hello\n"), 0);
	ck_assert(!present("bob/Maildir/cur/1.M1:2,S")); /* not before the commit */
	ck_assert_int_eq(staged(), 1);
	commit();
	ck_assert_int_eq(staged(), 0);
	expect_content("bob/Maildir/cur/1.M1:2,S", "hello\n");
	ck_assert_int_eq(lstat(at("bob/Maildir/cur/1.M1:2,S"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_mtim.tv_sec, T1 / 1000000000);
	ck_assert_int_eq(st.st_mtim.tv_nsec, T1 % 1000000000);
	if (geteuid() == 0) {
		ck_assert_uint_eq(st.st_uid, 1234);
		ck_assert_uint_eq(st.st_gid, 2345);
	}
	ck_assert_uint_eq(s->files_written, 1);
	ck_assert_uint_eq(s->bytes_written, 6);

	/* The same PUT again changes nothing, not even the inode. */
	ck_assert_int_eq(put("bob/Maildir/cur/1.M1:2,S", "hello\n"), 0);
	commit();
	ck_assert_int_eq(lstat(at("bob/Maildir/cur/1.M1:2,S"), &st2), 0);
	ck_assert_uint_eq(st.st_ino, st2.st_ino);
	ck_assert_uint_eq(s->noops, 1);
	ck_assert_uint_eq(s->files_written, 1);

	/* A new version replaces it; a later PUT of the same path in one
	 * batch supersedes an earlier one. */
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", "v1\n"), 0);
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", "v2\n"), 0);
	ck_assert_int_eq(staged(), 1);
	commit();
	expect_content("bob/Maildir/dovecot-uidlist", "v2\n");

	/* Negative mtimes (before 1970) survive too. */
	{
		struct w_put m = put_msg("bob/Maildir/cur/old:2,", "x", 1);

		m.mtime_ns = -1500000001;
		ck_assert_int_eq(apply_put(ap, &m, &e), 0);
		commit();
		ck_assert_int_eq(lstat(at("bob/Maildir/cur/old:2,"), &st), 0);
		ck_assert_int_eq(st.st_mtim.tv_sec, -2);
		ck_assert_int_eq(st.st_mtim.tv_nsec, 499999999);
	}
}
END_TEST

/* A PUT whose directory is missing is a NEED: MKDIR comes first. */
START_TEST(test_put_need_dir)
{
	ck_assert_int_eq(put("nobody/Maildir/cur/1:2,S", "x"), 1);
	ck_assert_uint_eq(apply_get_stats(ap)->needs, 1);
	ck_assert_int_eq(mkdir_op("nobody/Maildir", 0700), 1);
	ck_assert_int_eq(staged(), 0);
}
END_TEST

static int rename_op(const char *from, const char *to)
{
	struct w_rename m = {.from = slice_cstr(from), .to = slice_cstr(to)};

	return apply_rename(ap, &m, &e);
}

START_TEST(test_rename)
{
	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/new/1.M1", "one"), 0);
	commit();
	/* new -> cur with flags, then the replay of it */
	ck_assert_int_eq(rename_op("bob/Maildir/new/1.M1", "bob/Maildir/cur/1.M1:2,S"), 0);
	ck_assert(!present("bob/Maildir/new/1.M1"));
	expect_content("bob/Maildir/cur/1.M1:2,S", "one");
	ck_assert_int_eq(rename_op("bob/Maildir/new/1.M1", "bob/Maildir/cur/1.M1:2,S"), 0);
	/* both missing: NEED */
	ck_assert_int_eq(rename_op("bob/Maildir/new/2.M2", "bob/Maildir/cur/2.M2:2,S"), 1);
	ck_assert_uint_eq(apply_get_stats(ap)->needs, 1);
	/* Target folder missing (the sender created it and renamed it away
	 * again before this was sent): NEED the target, and the source goes,
	 * since the sender no longer has it by that name; after the commit too. */
	ck_assert_int_eq(rename_op("bob/Maildir/cur/1.M1:2,S", "bob/Maildir/.X/cur/1.M1:2,S"), 1);
	ck_assert_uint_eq(apply_get_stats(ap)->needs, 2);
	ck_assert(!present("bob/Maildir/cur/1.M1:2,S"));
	commit();
	ck_assert(!present("bob/Maildir/cur/1.M1:2,S"));
	ck_assert(!present("bob/Maildir/.X"));
	/* The same with content still pending under the source name. */
	ck_assert_int_eq(put("bob/Maildir/new/3.M3", "three"), 0);
	ck_assert_int_eq(rename_op("bob/Maildir/new/3.M3", "bob/Maildir/.X/cur/3.M3:2,S"), 1);
	commit();
	ck_assert(!present("bob/Maildir/new/3.M3"));
	ck_assert_int_eq(staged(), 0);

	/* Renaming pending content retargets it, and the old name's file
	 * on disk goes (as it would applying the two in order). */
	ck_assert_int_eq(put("bob/Maildir/cur/1.M1:2,S", "one"), 0);
	commit();
	ck_assert_int_eq(put("bob/Maildir/cur/1.M1:2,S", "one v2"), 0);
	ck_assert_int_eq(rename_op("bob/Maildir/cur/1.M1:2,S", "bob/Maildir/cur/1.M1:2,RS"), 0);
	ck_assert(!present("bob/Maildir/cur/1.M1:2,S"));
	commit();
	ck_assert(!present("bob/Maildir/cur/1.M1:2,S"));
	expect_content("bob/Maildir/cur/1.M1:2,RS", "one v2");

	/* A rename over pending content replaces it. */
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", "pending"), 0);
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist.tmp", "x"), -1); /* not replicated */
	tu_write_str(at("bob/Maildir/dovecot-keywords"), "kw");
	ck_assert_int_eq(rename_op("bob/Maildir/dovecot-keywords", "bob/Maildir/dovecot-uidlist"),
			 0);
	commit();
	expect_content("bob/Maildir/dovecot-uidlist", "kw");

	/* A folder rename carries pending content beneath it along. */
	maildir("bob/Maildir/.Old");
	ck_assert_int_eq(put("bob/Maildir/.Old/cur/5.M5:2,", "five"), 0);
	ck_assert_int_eq(rename_op("bob/Maildir/.Old", "bob/Maildir/.New"), 0);
	commit();
	ck_assert(!present("bob/Maildir/.Old"));
	expect_content("bob/Maildir/.New/cur/5.M5:2,", "five");
	ck_assert_int_eq(rename_op("bob/Maildir/.Old", "bob/Maildir/.New"), 0); /* replay */
	ck_assert_uint_eq(apply_get_stats(ap)->renames, 4);
}
END_TEST

static int link_mtime(const char *from, const char *to, const char *data, uint32_t flags,
		      int64_t mtime_ns)
{
	struct w_link m = {.from = slice_cstr(from),
			   .to = slice_cstr(to),
			   .flags = flags,
			   .size = strlen(data),
			   .mtime_ns = mtime_ns,
			   .mode = 0600};

	sha256_buf(data, strlen(data), m.sha256);
	return apply_link(ap, &m, &e);
}

/* A hard link carries its source's mtime (put() gives T1); a copy its own. */
static int link_op(const char *from, const char *to, const char *data, uint32_t flags)
{
	return link_mtime(from, to, data, flags, flags & WF_COPY ? T1 + 7 : T1);
}

START_TEST(test_link)
{
	struct stat a, b;

	maildir("bob/Maildir");
	maildir("alice/Maildir");
	ck_assert_int_eq(put("bob/Maildir/new/1.M1", "shared"), 0);
	commit();
	ck_assert_int_eq(link_op("bob/Maildir/new/1.M1", "alice/Maildir/new/1.M1", "shared", 0), 0);
	ck_assert_int_eq(lstat(at("bob/Maildir/new/1.M1"), &a), 0);
	ck_assert_int_eq(lstat(at("alice/Maildir/new/1.M1"), &b), 0);
	ck_assert_uint_eq(a.st_ino, b.st_ino);
	/* replay; missing source; wrong size */
	ck_assert_int_eq(link_op("bob/Maildir/new/1.M1", "alice/Maildir/new/1.M1", "shared", 0), 0);
	ck_assert_int_eq(link_op("bob/Maildir/new/9.M9", "alice/Maildir/new/9.M9", "x", 0), 1);
	ck_assert_int_eq(link_op("bob/Maildir/new/1.M1", "carol/Maildir/new/1.M1", "shared", 0), 1);
	ck_assert_int_eq(link_op("bob/Maildir/new/1.M1", "alice/Maildir/new/2.M1", "sharex!", 0),
			 1);
	/* the same size but another mtime: not the file the primary linked */
	ck_assert_int_eq(
	    link_mtime("bob/Maildir/new/1.M1", "alice/Maildir/new/2.M1", "sharex", 0, T1 + 1), 1);
	ck_assert(!present("alice/Maildir/new/2.M1"));
	/* a local copy with its own attributes; the wrong hash is a NEED */
	ck_assert_int_eq(
	    link_op("bob/Maildir/new/1.M1", "alice/Maildir/cur/1.M1:2,S", "sharex", WF_COPY), 1);
	ck_assert_int_eq(
	    link_op("bob/Maildir/new/1.M1", "alice/Maildir/cur/1.M1:2,S", "shared", WF_COPY), 0);
	ck_assert(!present("alice/Maildir/cur/1.M1:2,S"));
	commit();
	ck_assert_int_eq(lstat(at("alice/Maildir/cur/1.M1:2,S"), &b), 0);
	ck_assert_uint_ne(a.st_ino, b.st_ino);
	ck_assert_uint_eq(b.st_mode & 07777, 0600);
	ck_assert_int_eq(b.st_mtim.tv_nsec, (T1 + 7) % 1000000000);
	expect_content("alice/Maildir/cur/1.M1:2,S", "shared");

	/* from pending content: a link and a copy of what is not yet there */
	ck_assert_int_eq(put("bob/Maildir/new/3.M3", "three"), 0);
	ck_assert_int_eq(
	    link_mtime("bob/Maildir/new/3.M3", "alice/Maildir/new/5.M3", "three", 0, T1 - 1), 1);
	ck_assert_int_eq(link_op("bob/Maildir/new/3.M3", "alice/Maildir/new/3.M3", "three", 0), 0);
	ck_assert_int_eq(
	    link_op("bob/Maildir/new/3.M3", "alice/Maildir/new/4.M3", "three", WF_COPY), 0);
	ck_assert(!present("alice/Maildir/new/3.M3"));
	commit();
	ck_assert_int_eq(lstat(at("bob/Maildir/new/3.M3"), &a), 0);
	ck_assert_int_eq(lstat(at("alice/Maildir/new/3.M3"), &b), 0);
	ck_assert_uint_eq(a.st_ino, b.st_ino);
	expect_content("alice/Maildir/new/4.M3", "three");
	ck_assert_uint_eq(apply_get_stats(ap)->links, 2);
	ck_assert_uint_eq(apply_get_stats(ap)->copies, 2);
}
END_TEST

static int unlink_op(const char *path)
{
	struct w_unlink m = {.path = slice_cstr(path)};

	return apply_unlink(ap, &m, &e);
}

static int rmtree_op(const char *path)
{
	struct w_rmtree m = {.path = slice_cstr(path)};

	return apply_rmtree(ap, &m, &e);
}

START_TEST(test_unlink_mkdir_rmtree)
{
	char p[PATH_MAX + 64];
	struct stat st;

	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/cur/1:2,S", "1"), 0);
	commit();
	ck_assert_int_eq(unlink_op("bob/Maildir/cur/1:2,S"), 0);
	ck_assert(!present("bob/Maildir/cur/1:2,S"));
	ck_assert_int_eq(unlink_op("bob/Maildir/cur/1:2,S"), 0);
	ck_assert_int_eq(unlink_op("gone/Maildir/cur/1:2,S"), 0);
	/* pending content is dropped */
	ck_assert_int_eq(put("bob/Maildir/cur/2:2,S", "2"), 0);
	ck_assert_int_eq(unlink_op("bob/Maildir/cur/2:2,S"), 0);
	commit();
	ck_assert(!present("bob/Maildir/cur/2:2,S"));
	ck_assert_int_eq(staged(), 0);
	/* directories are for RMTREE */
	ck_assert_int_eq(mkdir_op("bob/Maildir/courierimapkeywords", 0750), 0);
	ck_assert_int_eq(unlink_op("bob/Maildir/courierimapkeywords"), -1);
	ck_assert_int_eq(e.code, WE_PATH);

	/* MKDIR: again is fine and brings the mode along */
	ck_assert_int_eq(mkdir_op("bob/Maildir/courierimapkeywords", 0700), 0);
	ck_assert_int_eq(lstat(at("bob/Maildir/courierimapkeywords"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(mkdir(at("bob/Maildir/dovecot-uidlist"), 0700), 0);
	ck_assert_int_eq(unlink_op("bob/Maildir/dovecot-uidlist"), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_ptr_nonnull(strstr(e.msg, "RMTREE"));
	tu_write_str(at("bob/Maildir/.Sent"), "a file in the way");
	ck_assert_int_eq(mkdir_op("bob/Maildir/.Sent", 0700), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(mkdir_op("bob/Maildir/.Sent/cur", 0700), -1);
	/* no set-user-ID; set-group-ID stays on directories */
	ck_assert_int_eq(mkdir_op("bob/Maildir/.Drafts", 06755), 0);
	ck_assert_int_eq(lstat(at("bob/Maildir/.Drafts"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 02755);

	/* RMTREE removes a whole folder without following a symlink in it */
	maildir("bob/Maildir/.Trash");
	ck_assert_int_eq(put("bob/Maildir/.Trash/cur/1:2,T", "t"), 0);
	commit();
	snprintf(p, sizeof(p), "%s/outside", top);
	ck_assert_int_eq(symlink(p, at("bob/Maildir/.Trash/cur/link")), 0);
	ck_assert_int_eq(put("bob/Maildir/.Trash/new/pending", "p"), 0);
	ck_assert_int_eq(rmtree_op("bob/Maildir/.Trash"), 0);
	commit();
	ck_assert(!present("bob/Maildir/.Trash"));
	snprintf(p, sizeof(p), "%s/outside/secret", top);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_int_eq(rmtree_op("bob/Maildir/.Trash"), 0);
	ck_assert_int_eq(rmtree_op(""), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(rmtree_op(APPLY_TMPDIR), -1);
	ck_assert_uint_eq(apply_get_stats(ap)->rmtrees, 2);
	ck_assert_int_eq(staged(), 0);
}
END_TEST

static int delta_op(const char *path, const char *from, const char *to, bool deflate)
{
	struct buf sig = BUF_INIT, delta = BUF_INIT, z = BUF_INIT;
	struct w_delta m = {
	    .path = slice_cstr(path), .result_size = strlen(to), .mtime_ns = T1 + 3, .mode = 0600};
	char p[PATH_MAX + 64];
	int fd, r;

	snprintf(p, sizeof(p), "%s/basis", top);
	tu_write_str(p, from);
	fd = open(p, O_RDONLY);
	ck_assert_int_eq(delta_signature(fd, &sig, &e), 0);
	close(fd);
	ck_assert_int_eq(delta_make(buf_slice(&sig), slice_cstr(to), SIZE_MAX, &delta, &e), 0);
	sha256_buf(from, strlen(from), m.base_sha256);
	sha256_buf(to, strlen(to), m.result_sha256);
	m.delta = buf_slice(&delta);
	m.raw_len = (uint32_t)delta.len;
	if (deflate && wire_deflate(delta.data, delta.len, 6, &z) == 1) {
		m.delta = buf_slice(&z);
		m.flags = WF_DEFLATE;
	}
	r = apply_delta(ap, &m, &e);
	buf_free(&sig);
	buf_free(&delta);
	buf_free(&z);
	return r;
}

static void uidlist(struct buf *b, int n)
{
	buf_reset(b);
	buf_printf(b, "3 V1700000000 N%d\n", n + 1);
	for (int i = 1; i <= n; i++)
		buf_printf(b, "%d :1700%06d.M%dP%d.mail.example.org,S=%d\n", i, i, i, i, 2000 + i);
}

START_TEST(test_delta)
{
	struct buf v1 = BUF_INIT, v2 = BUF_INIT, v3 = BUF_INIT;
	struct stat st;

	uidlist(&v1, 300);
	uidlist(&v2, 302);
	uidlist(&v3, 303);
	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", buf_cstr(&v1)), 0);
	commit();
	ck_assert_int_eq(
	    delta_op("bob/Maildir/dovecot-uidlist", buf_cstr(&v1), buf_cstr(&v2), true), 0);
	expect_content("bob/Maildir/dovecot-uidlist", buf_cstr(&v1)); /* until the commit */
	commit();
	expect_content("bob/Maildir/dovecot-uidlist", buf_cstr(&v2));
	ck_assert_int_eq(lstat(at("bob/Maildir/dovecot-uidlist"), &st), 0);
	ck_assert_int_eq(st.st_mtim.tv_nsec, (T1 + 3) % 1000000000);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	/* replayed: nothing to do */
	ck_assert_int_eq(
	    delta_op("bob/Maildir/dovecot-uidlist", buf_cstr(&v1), buf_cstr(&v2), false), 0);
	ck_assert_uint_eq(apply_get_stats(ap)->noops, 1);
	/* against a base we do not have: NEED */
	ck_assert_int_eq(
	    delta_op("bob/Maildir/dovecot-uidlist", buf_cstr(&v3), buf_cstr(&v1), false), 1);
	ck_assert_int_eq(delta_op("bob/Maildir/dovecot-keywords", "", "kw", false), 1);
	/* on pending content, in the same batch */
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", buf_cstr(&v1)), 0);
	ck_assert_int_eq(
	    delta_op("bob/Maildir/dovecot-uidlist", buf_cstr(&v1), buf_cstr(&v3), false), 0);
	ck_assert_int_eq(staged(), 1);
	commit();
	expect_content("bob/Maildir/dovecot-uidlist", buf_cstr(&v3));
	ck_assert_uint_eq(apply_get_stats(ap)->deltas, 2);
	buf_free(&v1);
	buf_free(&v2);
	buf_free(&v3);
}
END_TEST

/* A delta that does not produce the promised file is a NEED (the sender
 * sends the file whole), never a change. */
START_TEST(test_delta_corrupt)
{
	struct buf v1 = BUF_INIT, v2 = BUF_INIT, sig = BUF_INIT, delta = BUF_INIT;
	struct w_delta m = {.path = SLICE_LIT("bob/Maildir/dovecot-uidlist"), .mode = 0600};
	char p[PATH_MAX + 64];
	int fd;

	uidlist(&v1, 100);
	uidlist(&v2, 101);
	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", buf_cstr(&v1)), 0);
	commit();
	snprintf(p, sizeof(p), "%s/basis", top);
	tu_write(p, v1.data, v1.len);
	fd = open(p, O_RDONLY);
	ck_assert_int_eq(delta_signature(fd, &sig, &e), 0);
	close(fd);
	ck_assert_int_eq(delta_make(buf_slice(&sig), buf_slice(&v2), SIZE_MAX, &delta, &e), 0);
	sha256_buf(v1.data, v1.len, m.base_sha256);
	sha256_buf(v2.data, v2.len, m.result_sha256);
	m.result_size = v2.len;
	m.delta = buf_slice(&delta);
	m.raw_len = (uint32_t)delta.len;
	delta.data[delta.len - 3] ^= 0x55; /* literal data: wrong result */
	ck_assert_int_eq(apply_delta(ap, &m, &e), 1);
	delta.data[delta.len - 3] ^= 0x55;
	delta.data[4] ^= 0x7f; /* a command byte */
	ck_assert_int_eq(apply_delta(ap, &m, &e), 1);
	delta.data[4] ^= 0x7f;
	m.result_size = v2.len - 1; /* a result bigger than announced */
	ck_assert_int_eq(apply_delta(ap, &m, &e), 1);
	ck_assert_int_eq(staged(), 0);
	commit();
	expect_content("bob/Maildir/dovecot-uidlist", buf_cstr(&v1));
	m.result_size = v2.len;
	ck_assert_int_eq(apply_delta(ap, &m, &e), 0);
	commit();
	expect_content("bob/Maildir/dovecot-uidlist", buf_cstr(&v2));
	buf_free(&v1);
	buf_free(&v2);
	buf_free(&sig);
	buf_free(&delta);
}
END_TEST

static int setattr_op(const char *path, uint32_t mode, int64_t mtime)
{
	struct w_setattr m = {.path = slice_cstr(path), .mode = mode, .mtime_ns = mtime};

	return apply_setattr(ap, &m, &e);
}

START_TEST(test_setattr)
{
	struct stat st;

	open_engine(false); /* fsync mode */
	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/cur/1:2,S", "1"), 0);
	commit();
	ck_assert_int_eq(setattr_op("bob/Maildir/cur/1:2,S", 04600, T1 + 99), 0);
	ck_assert_int_eq(lstat(at("bob/Maildir/cur/1:2,S"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600); /* no set-user-ID bit */
	ck_assert_int_eq(st.st_mtim.tv_nsec, (T1 + 99) % 1000000000);
	ck_assert_int_eq(setattr_op("bob/Maildir/cur", 0750, T1), 0);
	ck_assert_int_eq(lstat(at("bob/Maildir/cur"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0750);
	ck_assert_int_eq(setattr_op("bob/Maildir/cur/2:2,S", 0600, T1), 1);
	/* on pending content */
	ck_assert_int_eq(put("bob/Maildir/cur/3:2,S", "3"), 0);
	ck_assert_int_eq(setattr_op("bob/Maildir/cur/3:2,S", 0604, T1 + 5), 0);
	commit();
	ck_assert_int_eq(lstat(at("bob/Maildir/cur/3:2,S"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0604);
	ck_assert_int_eq(st.st_mtim.tv_nsec, (T1 + 5) % 1000000000);
	ck_assert_uint_eq(apply_get_stats(ap)->setattrs, 3);
}
END_TEST

/* A canonical description of the tree: every folder's deep listing with
 * inode numbers, so that "changed nothing" is checked strictly. */
static int describe_folder(const char *folder, void *ctx)
{
	struct buf *b = ctx;
	struct folder_list l;
	struct err fe;

	ck_assert_int_eq(scan_folder(rootfd, rules, folder, true, &l, &fe), 0);
	for (size_t i = 0; i < l.n; i++) {
		const struct scan_entry *en = &l.v[i];

		/* Directory mtimes move with any change inside: left out. */
		buf_printf(b, "%s/%s %o %llu %lld %llu ", folder, en->name, en->mode,
			   (unsigned long long)en->size,
			   S_ISDIR(en->mode) ? 0LL : (long long)en->mtime_ns,
			   (unsigned long long)en->ino);
		hex_append(b, en->sha256, en->has_hash ? SHA256_LEN : 0);
		buf_putc(b, '\n');
	}
	folder_list_free(&l);
	return 0;
}

static void describe(struct buf *b)
{
	buf_reset(b);
	ck_assert_int_eq(scan_walk(rootfd, rules, "", describe_folder, b, &e), 0);
}

/* One batch with every kind of operation. */
static void batch(void)
{
	struct buf v2 = BUF_INIT;

	maildir("bob/Maildir");
	maildir("bob/Maildir/.Archive");
	ck_assert_int_eq(put("bob/Maildir/new/1.M1", "one"), 0);
	ck_assert_int_eq(put("bob/Maildir/new/2.M2", "two"), 0);
	ck_assert_int_eq(put("bob/Maildir/cur/3.M3:2,S", "three"), 0);
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", "uidlist v1\n"), 0);
	ck_assert_int_lt(rename_op("bob/Maildir/new/1.M1", "bob/Maildir/cur/1.M1:2,"), 2);
	ck_assert_int_lt(
	    link_op("bob/Maildir/new/2.M2", "bob/Maildir/.Archive/cur/2.M2:2,S", "two", 0), 2);
	ck_assert_int_eq(unlink_op("bob/Maildir/cur/3.M3:2,S"), 0);
	buf_puts(&v2, "uidlist v1\n2 2.M2\n");
	ck_assert_int_eq(
	    delta_op("bob/Maildir/dovecot-uidlist", "uidlist v1\n", buf_cstr(&v2), false), 0);
	/* (A SETATTR of a file PUT in the same batch would make the replayed
	 * PUT differ from the file, and rewrite it: a new inode.) */
	ck_assert_int_eq(setattr_op("bob/Maildir/.Archive", 0750, T1 + 1), 0);
	ck_assert_int_eq(mkdir_op("bob/Maildir/.Gone", 0700), 0);
	ck_assert_int_eq(rmtree_op("bob/Maildir/.Gone"), 0);
	commit();
	buf_free(&v2);
}

START_TEST(test_replay)
{
	struct buf once = BUF_INIT, twice = BUF_INIT;
	uint64_t written;

	batch();
	describe(&once);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&once), "bob/Maildir/cur/1.M1:2,"));
	ck_assert_ptr_null(strstr(buf_cstr(&once), "3.M3"));
	written = apply_get_stats(ap)->files_written;
	/* After a crash the sender replays the batch: nothing changes. */
	open_engine(true);
	batch();
	describe(&twice);
	ck_assert_str_eq(buf_cstr(&once), buf_cstr(&twice));
	ck_assert_uint_eq(apply_get_stats(ap)->noops >= 2, 1);
	ck_assert_uint_eq(written, 4);
	buf_free(&once);
	buf_free(&twice);
}
END_TEST

/* --------------------------------------------------------------- order */

/* Renames at commit happen in arrival order: message files land before
 * the uidlist that names them. Watched with inotify, which also shows
 * that nothing but complete files ever appears in the folder. */
START_TEST(test_commit_order)
{
	const char *names[] = {"1.M1:2,", "2.M2:2,", "3.M3:2,", "4.M4:2,", "5.M5:2,"};
	char buf[8192] __attribute__((aligned(8)));
	char path[PATH_MAX];
	int ifd, w_folder, w_cur, seen = 0;
	ssize_t n;

	open_engine(false);
	maildir("bob/Maildir");
	commit();
	ifd = inotify_init1(IN_NONBLOCK);
	ck_assert_int_ge(ifd, 0);
	w_folder = inotify_add_watch(ifd, at("bob/Maildir"), IN_ALL_EVENTS);
	w_cur = inotify_add_watch(ifd, at("bob/Maildir/cur"), IN_ALL_EVENTS);
	ck_assert(w_folder >= 0 && w_cur >= 0);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "bob/Maildir/cur/%s", names[i]);
		ck_assert_int_eq(put(path, names[i]), 0);
	}
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", "3 V1 N6\n"), 0);
	ck_assert_int_eq(read(ifd, buf, sizeof(buf)), -1); /* nothing visible yet */
	commit();
	while ((n = read(ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->len == 0 || (ev->mask & (IN_OPEN | IN_CLOSE_NOWRITE | IN_ACCESS)))
				continue; /* the directories' own fsync opens */
			ck_assert_msg(ev->mask == IN_MOVED_TO, "event %#x on %s", ev->mask,
				      ev->name);
			if (seen < 5) {
				ck_assert_int_eq(ev->wd, w_cur);
				ck_assert_str_eq(ev->name, names[seen]);
			} else {
				ck_assert_int_eq(ev->wd, w_folder);
				ck_assert_str_eq(ev->name, "dovecot-uidlist");
			}
			seen++;
		}
	}
	ck_assert_int_eq(seen, 6);
	close(ifd);
}
END_TEST

/* A batch with content syncs twice (content, then names); one of renames
 * and unlinks only has no content to make durable first. */
START_TEST(test_sync_rounds)
{
	const struct apply_stats *s;

	for (int mode = 0; mode < 2; mode++) {
		uint64_t before;
		char from[64], to[64];

		open_engine(mode == 0);
		s = apply_get_stats(ap);
		snprintf(from, sizeof(from), "bob%d/Maildir/new/1.M1", mode);
		snprintf(to, sizeof(to), "bob%d/Maildir/cur/1.M1:2,S", mode);
		maildir(from[3] == '0' ? "bob0/Maildir" : "bob1/Maildir");
		commit();
		before = s->syncs;
		ck_assert_int_eq(put(from, "one"), 0);
		commit();
		ck_assert_uint_eq(s->syncs, before + 2);
		ck_assert_int_eq(rename_op(from, to), 0);
		commit();
		ck_assert_uint_eq(s->syncs, before + 3);
		ck_assert_int_eq(unlink_op(to), 0);
		commit();
		ck_assert_uint_eq(s->syncs, before + 4);
		commit(); /* nothing to do */
		ck_assert_uint_eq(s->syncs, before + 4);
		ck_assert(!present(to));
	}
}
END_TEST

static struct w_data data_msg(uint32_t id, const char *p, size_t len, uint32_t flags)
{
	return (struct w_data){
	    .xfer_id = id, .flags = flags, .raw_len = (uint32_t)len, .body = {p, len}};
}

/* Two chunked transfers interleaved, one of them deflated, one staying
 * open across a commit. */
START_TEST(test_chunked)
{
	size_t len = 3 * 100000 + 17;
	char *big = malloc(len), *other = malloc(len);
	struct w_put m1, m2;
	struct w_data d;
	struct buf z = BUF_INIT;
	char *got;
	size_t glen;

	for (size_t i = 0; i < len; i++) {
		big[i] = (char)('a' + i % 26);
		other[i] = (char)(i * 7919 >> 3);
	}
	maildir("bob/Maildir");
	m1 = put_msg("bob/Maildir/new/big.M1", big, len);
	m1.flags = WF_CHUNKED;
	m1.xfer_id = 1;
	m1.body = (struct slice){big, 100000};
	m1.raw_len = 100000;
	m2 = put_msg("bob/Maildir/new/other.M2", other, len);
	m2.flags = WF_CHUNKED;
	m2.xfer_id = 2;
	m2.body = (struct slice){"", 0};
	m2.raw_len = 0;
	ck_assert_int_eq(apply_put(ap, &m1, &e), 0);
	ck_assert_int_eq(apply_put(ap, &m2, &e), 0);
	ck_assert_int_eq(apply_put(ap, &m2, &e), -1); /* transfer 2 is open */
	ck_assert_int_eq(e.code, WE_PROTOCOL);
	for (int c = 0; c < 3; c++) {
		ck_assert_int_eq(
		    wire_deflate((const uint8_t *)big + 100000 + c * 66000, 66000, 6, &z), 1);
		d = data_msg(1, (const char *)z.data, z.len, WF_DEFLATE);
		d.raw_len = 66000;
		ck_assert_msg(apply_data(ap, &d, &e) == 0, "%s", e.msg);
		d = data_msg(2, other + c * 100000, 100000, 0);
		ck_assert_int_eq(apply_data(ap, &d, &e), 0);
		commit(); /* open transfers stay pending */
		ck_assert(!present("bob/Maildir/new/big.M1"));
	}
	d = data_msg(1, big + 298000, len - 298000, WF_LAST);
	ck_assert_int_eq(apply_data(ap, &d, &e), 0);
	d = data_msg(2, other + 300000, 17, WF_LAST);
	ck_assert_int_eq(apply_data(ap, &d, &e), 0);
	d = data_msg(2, "x", 1, WF_LAST);
	ck_assert_int_eq(apply_data(ap, &d, &e), -1); /* closed */
	ck_assert_int_eq(e.code, WE_PROTOCOL);
	commit();
	got = tu_read(at("bob/Maildir/new/big.M1"), &glen);
	ck_assert_uint_eq(glen, len);
	ck_assert_mem_eq(got, big, len);
	free(got);
	got = tu_read(at("bob/Maildir/new/other.M2"), &glen);
	ck_assert_uint_eq(glen, len);
	ck_assert_mem_eq(got, other, len);
	free(got);
	ck_assert_int_eq(staged(), 0);
	buf_free(&z);
	free(big);
	free(other);
}
END_TEST

/* -------------------------------------------------------------- errors */

START_TEST(test_integrity)
{
	struct w_put m;
	struct w_data d;
	struct buf z = BUF_INIT;
	const char *text = "a message that compresses, a message that compresses, a message "
			   "that compresses, a message that compresses";

	maildir("bob/Maildir");
	/* wrong hash */
	m = put_msg("bob/Maildir/cur/1:2,S", "hello", 5);
	m.sha256[0] ^= 1;
	ck_assert_int_eq(apply_put(ap, &m, &e), -1);
	ck_assert_int_eq(e.code, WE_INTEGRITY);
	apply_abort(ap);
	commit();
	ck_assert(!present("bob/Maildir/cur/1:2,S"));
	ck_assert_int_eq(staged(), 0);
	/* body and size disagree */
	m = put_msg("bob/Maildir/cur/1:2,S", "hello", 5);
	m.size = 6;
	ck_assert_int_eq(apply_put(ap, &m, &e), -1);
	ck_assert_int_eq(e.code, WE_INTEGRITY);
	/* deflate lying about raw_len */
	ck_assert_int_eq(wire_deflate((const uint8_t *)text, strlen(text), 6, &z), 1);
	m = put_msg("bob/Maildir/cur/2:2,S", text, strlen(text));
	m.flags = WF_DEFLATE;
	m.body = buf_slice(&z);
	m.raw_len = (uint32_t)strlen(text) - 1;
	ck_assert_int_eq(apply_put(ap, &m, &e), -1);
	ck_assert_int_eq(e.code, WE_INTEGRITY);
	m.raw_len = WIRE_MAX_PAYLOAD + 1;
	ck_assert_int_eq(apply_put(ap, &m, &e), -1);
	ck_assert_int_eq(e.code, WE_LIMIT);
	m.raw_len = (uint32_t)strlen(text);
	ck_assert_int_eq(apply_put(ap, &m, &e), 0);
	/* over the size limit */
	m = put_msg("bob/Maildir/cur/3:2,S", "", 0);
	m.size = WIRE_MAX_FILE + 1;
	m.flags = WF_CHUNKED;
	ck_assert_int_eq(apply_put(ap, &m, &e), -1);
	ck_assert_int_eq(e.code, WE_LIMIT);
	/* a chunked transfer with too many bytes, or too few */
	m = put_msg("bob/Maildir/cur/4:2,S", "abcd", 4);
	m.flags = WF_CHUNKED;
	m.xfer_id = 9;
	m.body = (struct slice){"ab", 2};
	ck_assert_int_eq(apply_put(ap, &m, &e), 0);
	d = data_msg(9, "cde", 3, WF_LAST);
	ck_assert_int_eq(apply_data(ap, &d, &e), -1);
	ck_assert_int_eq(e.code, WE_INTEGRITY);
	d = data_msg(9, "c", 1, WF_LAST); /* the failed transfer is gone */
	ck_assert_int_eq(apply_data(ap, &d, &e), -1);
	ck_assert_int_eq(e.code, WE_PROTOCOL);
	m.xfer_id = 10;
	ck_assert_int_eq(apply_put(ap, &m, &e), 0);
	d = data_msg(10, "c", 1, WF_LAST);
	ck_assert_int_eq(apply_data(ap, &d, &e), -1);
	ck_assert_int_eq(e.code, WE_INTEGRITY);
	ck_assert_ptr_nonnull(strstr(e.msg, "ended after 3 of 4 bytes"));
	d = data_msg(77, "c", 1, 0);
	ck_assert_int_eq(apply_data(ap, &d, &e), -1);
	ck_assert_int_eq(e.code, WE_PROTOCOL);
	/* the batch is refused: nothing of it becomes visible */
	apply_abort(ap);
	commit();
	ck_assert(!present("bob/Maildir/cur/2:2,S"));
	ck_assert(!present("bob/Maildir/cur/4:2,S"));
	ck_assert_int_eq(staged(), 0);
	buf_free(&z);
}
END_TEST

START_TEST(test_abort)
{
	struct w_put m;

	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/cur/1:2,S", "one"), 0);
	ck_assert_int_eq(put("bob/Maildir/dovecot-uidlist", "uidlist"), 0);
	m = put_msg("bob/Maildir/cur/2:2,S", "two", 3);
	m.flags = WF_CHUNKED;
	m.xfer_id = 3;
	m.body = (struct slice){"t", 1};
	ck_assert_int_eq(apply_put(ap, &m, &e), 0);
	ck_assert_int_eq(staged(), 3);
	apply_abort(ap);
	ck_assert_int_eq(staged(), 0);
	commit();
	ck_assert(!present("bob/Maildir/cur/1:2,S"));
	ck_assert(!present("bob/Maildir/dovecot-uidlist"));
	ck_assert(!present("bob/Maildir/cur/2:2,S"));
}
END_TEST

/* What a crash left in the staging directory goes at start-up, even a
 * symlink put there in its place. */
START_TEST(test_leftovers)
{
	char p[PATH_MAX + 64];
	struct stat st;

	apply_free(&ap);
	tu_write_str(at(APPLY_TMPDIR "/.mdrepl-1-1"), "half a message");
	tu_write_str(at(APPLY_TMPDIR "/sub/x"), "x");
	open_engine(true);
	ck_assert_int_eq(staged(), 0);
	ck_assert_int_eq(lstat(at(APPLY_TMPDIR), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	apply_free(&ap);
	tu_rmtree(at(APPLY_TMPDIR));
	snprintf(p, sizeof(p), "%s/outside", top);
	ck_assert_int_eq(symlink(p, at(APPLY_TMPDIR)), 0);
	open_engine(true);
	ck_assert_int_eq(lstat(at(APPLY_TMPDIR), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	snprintf(p, sizeof(p), "%s/outside/secret", top);
	ck_assert_int_eq(lstat(p, &st), 0);
}
END_TEST

/* ------------------------------------------------------------ security */

/* Paths refused for every operation; the two at the end are fine as
 * directory names (so MKDIR and the like may take them). */
static const char *const hostile[] = {
    "/etc/passwd",
    "../outside/secret",
    "bob/../../outside/secret",
    "bob/Maildir/../../../outside/x",
    "bob/./Maildir/cur/x",
    "bob//Maildir/cur/x",
    "bob/Maildir/tmp/1.M1",
    "bob/Maildir/tmp/cur/1.M1",
    "bob/Maildir/dovecot.index",
    "bob/Maildir/dovecot.index.cache",
    "bob/Maildir/dovecot-uidlist.lock",
    APPLY_TMPDIR "/x",
    APPLY_TMPDIR "/dovecot-uidlist",
    "bob/Maildir/cur/sub/1.M1",
    "bob/Maildir/cur/.hidden",
    "",
    "bob/Maildir/junk.txt",
    "bob/Maildir/cur",
};

/* Lists the outside directory, to see that nothing was written there. */
static void outside_state(struct buf *b)
{
	char cmd[PATH_MAX + 200];
	FILE *f;
	char line[512];

	snprintf(cmd, sizeof(cmd),
		 "cd %s/outside && find . -printf '%%p %%y %%m %%s %%T@\\n' | sort && cat secret",
		 top);
	buf_reset(b);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		buf_puts(b, line);
	pclose(f);
}

START_TEST(test_hostile_paths)
{
	const char *bad = hostile[_i];
	struct slice s = slice_cstr(bad);
	struct w_put m = put_msg(bad, "evil", 4);
	struct w_rename rn = {.from = SLICE_LIT("bob/Maildir/cur/ok:2,S"), .to = s};
	struct w_rename rn2 = {.from = s, .to = SLICE_LIT("bob/Maildir/cur/ok2:2,S")};
	struct w_link ln = {.from = SLICE_LIT("bob/Maildir/cur/ok:2,S"), .to = s, .size = 2};
	struct w_unlink un = {.path = s};
	struct w_mkdir mk = {.path = s, .mode = 0700};
	struct w_rmtree rt = {.path = s};
	struct w_delta dl = {.path = s};
	struct w_setattr sa = {.path = s, .mode = 0777};
	struct buf before = BUF_INIT, after = BUF_INIT;
	const bool dir_ok = _i >= (int)(sizeof(hostile) / sizeof(hostile[0])) - 3 && *bad != '\0';

	maildir("bob/Maildir");
	ck_assert_int_eq(put("bob/Maildir/cur/ok:2,S", "ok"), 0);
	commit();
	outside_state(&before);
	ck_assert_int_eq(apply_put(ap, &m, &e), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(apply_rename(ap, &rn, &e), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(apply_link(ap, &ln, &e), -1);
	ck_assert_int_eq(apply_unlink(ap, &un, &e), -1);
	ck_assert_int_eq(apply_delta(ap, &dl, &e), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	if (!dir_ok) {
		ck_assert_int_eq(apply_rename(ap, &rn2, &e), -1);
		ck_assert_int_eq(apply_mkdir(ap, &mk, &e), -1);
		ck_assert_int_eq(e.code, WE_PATH);
		ck_assert_int_eq(apply_rmtree(ap, &rt, &e), -1);
		ck_assert_int_eq(apply_setattr(ap, &sa, &e), -1);
		ck_assert_int_eq(e.code, WE_PATH);
	}
	commit();
	outside_state(&after);
	ck_assert_str_eq(buf_cstr(&before), buf_cstr(&after));
	expect_content("bob/Maildir/cur/ok:2,S", "ok");
	buf_free(&before);
	buf_free(&after);
}
END_TEST

START_TEST(test_nul_path)
{
	struct w_put m = put_msg("x", "evil", 4);
	static const char nul[] = "bob/Maildir/cur/a\0/../../../../outside/x";

	maildir("bob/Maildir");
	m.path = (struct slice){nul, sizeof(nul) - 1};
	ck_assert_int_eq(apply_put(ap, &m, &e), -1);
	ck_assert_int_eq(e.code, WE_PATH);
}
END_TEST

/* Symlinks planted in the tree: as a directory on the way, as the target,
 * as a folder. Nothing is written through them. */
START_TEST(test_symlinks)
{
	char out[PATH_MAX + 64];
	struct buf before = BUF_INIT, after = BUF_INIT;
	struct stat st;

	maildir("bob/Maildir");
	snprintf(out, sizeof(out), "%s/outside", top);
	{
		char cur[PATH_MAX + 80];

		snprintf(cur, sizeof(cur), "%s/cur", out);
		ck_assert_int_eq(mkdir(cur, 0755), 0);
	}
	ck_assert_int_eq(symlink(out, at("evil")), 0);
	ck_assert_int_eq(symlink(out, at("bob/Maildir/.Evil")), 0);
	ck_assert_int_eq(symlink("../../../../outside/secret", at("bob/Maildir/cur/t:2,S")), 0);
	outside_state(&before);

	ck_assert_int_eq(put("evil/cur/x:2,S", "evil"), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(put("bob/Maildir/.Evil/cur/x:2,S", "evil"), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(mkdir_op("bob/Maildir/.Evil/new", 0700), -1);
	ck_assert_int_eq(mkdir_op("bob/Maildir/.Evil", 0700), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(setattr_op("bob/Maildir/cur/t:2,S", 0777, T1), -1);
	ck_assert_int_eq(e.code, WE_PATH);
	ck_assert_int_eq(delta_op("bob/Maildir/cur/t:2,S", "secret\n", "secreT\n", false), -1);
	ck_assert_int_eq(link_op("bob/Maildir/cur/t:2,S", "bob/Maildir/cur/u:2,S", "secret\n", 0),
			 1);
	ck_assert_int_eq(
	    link_op("bob/Maildir/cur/t:2,S", "bob/Maildir/cur/u:2,S", "secret\n", WF_COPY), 1);
	ck_assert_int_eq(rename_op("bob/Maildir/cur/t:2,S", "bob/Maildir/cur/v:2,S"), -1);
	ck_assert_int_eq(rmtree_op("evil/cur"), -1);
	ck_assert_int_eq(unlink_op("evil/cur/x:2,S"), -1);
	/* A PUT over the symlink replaces the link itself. */
	ck_assert_int_eq(put("bob/Maildir/cur/t:2,S", "mine"), 0);
	/* RMTREE of a symlinked folder removes the link, not its target. */
	ck_assert_int_eq(rmtree_op("bob/Maildir/.Evil"), 0);
	commit();
	ck_assert_int_eq(lstat(at("bob/Maildir/cur/t:2,S"), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	expect_content("bob/Maildir/cur/t:2,S", "mine");
	ck_assert(!present("bob/Maildir/.Evil"));
	outside_state(&after);
	ck_assert_str_eq(buf_cstr(&before), buf_cstr(&after));
	buf_free(&before);
	buf_free(&after);
}
END_TEST

/* Many small files flush early past max_pending, still in order. */
START_TEST(test_max_pending)
{
	struct apply_opts o = {
	    .rootfd = rootfd, .rules = rules, .use_syncfs = true, .max_pending = 10};
	char p[64];

	apply_free(&ap);
	ap = apply_new(&o, &e);
	ck_assert_ptr_nonnull(ap);
	maildir("bob/Maildir");
	for (int i = 0; i < 25; i++) {
		snprintf(p, sizeof(p), "bob/Maildir/new/%d.M%d", i, i);
		ck_assert_int_eq(put(p, p), 0);
	}
	ck_assert_int_le(staged(), 10);
	ck_assert_uint_ge(apply_get_stats(ap)->commits, 2);
	commit();
	for (int i = 0; i < 25; i++) {
		snprintf(p, sizeof(p), "bob/Maildir/new/%d.M%d", i, i);
		expect_content(p, p);
	}
}
END_TEST

/* ------------------------------------------------- mounts (namespaces) */

/* Enters a private mount namespace, so that test mounts vanish with the
 * test process. Returns false (and says why) where that is not allowed. */
static bool private_mounts(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "SKIP: no private mount namespace here (%s): mount tests skipped\n",
			strerror(errno));
		return false;
	}
	return true;
}

/* Descriptors opened before a mount, or in another mount namespace, do
 * not see it: reopen the root (and the engine on it). */
static void reopen_root(void)
{
	apply_free(&ap);
	close(rootfd);
	rootfd = open(root, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(rootfd, 0);
	open_engine(true);
}

static bool mount_tmpfs(const char *dir, const char *opts)
{
	if (mount("tmpfs", dir, "tmpfs", 0, opts) < 0) {
		fprintf(stderr, "SKIP: cannot mount a tmpfs (%s): test skipped\n", strerror(errno));
		return false;
	}
	return true;
}

/* The mail root on a tiny tmpfs: ENOSPC is WE_NOSPACE, nothing of the
 * batch is visible, and once space is freed the same batch applies. */
START_TEST(test_nospace)
{
	char *big = malloc(80 * 1024);
	const char *paths[] = {"bob/Maildir/cur/1.M1:2,S", "bob/Maildir/cur/2.M2:2,S",
			       "bob/Maildir/dovecot-uidlist"};
	int r = 0;

	if (!private_mounts())
		return;
	apply_free(&ap);
	if (!mount_tmpfs(root, "size=256k,mode=0755"))
		return;
	reopen_root();
	maildir("bob/Maildir");
	commit();
	memset(big, 'm', 80 * 1024);
	tu_write(at("filler"), big, 80 * 1024);
	tu_write(at("filler2"), big, 40 * 1024);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3 && r == 0; i++) {
			struct w_put m = put_msg(paths[i], big, 70 * 1024);

			r = apply_put(ap, &m, &e);
		}
		if (round == 0) {
			ck_assert_int_eq(r, -1);
			ck_assert_msg(e.code == WE_NOSPACE, "code %d: %s", e.code, e.msg);
			ck_assert_ptr_nonnull(strstr(e.msg, "No space left"));
			apply_abort(ap);
			commit();
			for (int i = 0; i < 3; i++)
				ck_assert(!present(paths[i]));
			ck_assert_int_eq(staged(), 0);
			/* space comes back */
			ck_assert_int_eq(unlink(at("filler")), 0);
			ck_assert_int_eq(unlink(at("filler2")), 0);
			r = 0;
		}
	}
	ck_assert_msg(r == 0, "%s", e.msg);
	commit();
	for (int i = 0; i < 3; i++)
		ck_assert(present(paths[i]));
	apply_free(&ap);
	close(rootfd);
	rootfd = -1;
	umount2(root, MNT_DETACH);
	free(big);
}
END_TEST

/* Targets below mount points: a tmpfs (another file system) and a bind
 * mount (same file system, but rename across it fails with EXDEV). */
START_TEST(test_mount_points)
{
	struct stat st;

	if (!private_mounts())
		return;
	reopen_root();
	ck_assert_int_eq(mkdir_op("mnt", 0755), 0);
	maildir("bind/Maildir");
	if (!mount_tmpfs(at("mnt"), "size=1m"))
		return;
	ck_assert_int_eq(mount(at("bind"), at("bind"), NULL, MS_BIND, NULL), 0);
	reopen_root();
	maildir("mnt/dom/bob/Maildir");
	ck_assert_int_eq(put("mnt/dom/bob/Maildir/cur/1.M1:2,S", "on tmpfs"), 0);
	ck_assert_int_eq(put("mnt/dom/bob/Maildir/dovecot-uidlist", "uidlist"), 0);
	ck_assert_int_eq(put("bind/Maildir/cur/2.M2:2,S", "behind a bind mount"), 0);
	ck_assert_int_eq(
	    rename_op("mnt/dom/bob/Maildir/cur/1.M1:2,S", "mnt/dom/bob/Maildir/cur/1.M1:2,RS"), 0);
	commit();
	expect_content("mnt/dom/bob/Maildir/cur/1.M1:2,RS", "on tmpfs");
	expect_content("mnt/dom/bob/Maildir/dovecot-uidlist", "uidlist");
	expect_content("bind/Maildir/cur/2.M2:2,S", "behind a bind mount");
	ck_assert_int_eq(lstat(at("mnt/dom/bob/Maildir/cur/1.M1:2,RS"), &st), 0);
	ck_assert_int_eq(st.st_mtim.tv_nsec, T1 % 1000000000);
	ck_assert_int_eq(staged(), 0);
	ck_assert_int_eq(entries("mnt/dom/bob/Maildir/tmp"), 0);
	ck_assert_int_eq(entries("bind/Maildir/cur"), 1);
	apply_free(&ap);
	umount2(at("bind"), MNT_DETACH);
	umount2(at("mnt"), MNT_DETACH);
}
END_TEST

static Suite *apply_suite(void)
{
	Suite *s = suite_create("apply");
	TCase *core = tcase_create("core"), *order = tcase_create("order"),
	      *errors = tcase_create("errors"), *security = tcase_create("security"),
	      *limits = tcase_create("limits");
	TCase *all[] = {core, order, errors, security, limits};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		tcase_add_checked_fixture(all[i], setup, teardown);
		tcase_set_timeout(all[i], 30);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_test(core, test_put);
	tcase_add_test(core, test_put_need_dir);
	tcase_add_test(core, test_rename);
	tcase_add_test(core, test_link);
	tcase_add_test(core, test_unlink_mkdir_rmtree);
	tcase_add_test(core, test_delta);
	tcase_add_test(core, test_setattr);
	tcase_add_test(core, test_replay);
	tcase_add_test(order, test_commit_order);
	tcase_add_test(order, test_chunked);
	tcase_add_test(order, test_sync_rounds);
	tcase_add_test(errors, test_integrity);
	tcase_add_test(errors, test_delta_corrupt);
	tcase_add_test(errors, test_abort);
	tcase_add_test(errors, test_leftovers);
	tcase_add_loop_test(security, test_hostile_paths, 0, sizeof(hostile) / sizeof(hostile[0]));
	tcase_add_test(security, test_nul_path);
	tcase_add_test(security, test_symlinks);
	tcase_add_test(limits, test_max_pending);
	tcase_add_test(limits, test_nospace);
	tcase_add_test(limits, test_mount_points);
	return s;
}

int main(void)
{
	return tu_run(apply_suite());
}

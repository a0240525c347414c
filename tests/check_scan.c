/*
 * check_scan.c — folder listings (contents, order, what is left out,
 * symlinks), digests (what changes them and what does not), the folder
 * walk (order, confinement), the digest cache (hits, misses, the racy
 * window, persistence, corrupt files, message counts, rules changed),
 * hashing one entry, and listing under concurrent renames.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "scan.h"
#include "testutil.h"

static char top[PATH_MAX], root[PATH_MAX + 8];
static int rootfd;
static struct md_rules *rules;

static void setup(void)
{
	rootfd = tu_mail_root(top, root);
	rules = md_rules_new(':', NULL);
}

static void teardown(void)
{
	close(rootfd);
	md_rules_free(&rules);
	tu_rmtree(top);
}

/* Absolute path of rel; the result lasts for the next three calls. */
static const char *at(const char *rel)
{
	static char p[4][PATH_MAX + 300];
	static int next;
	char *r = p[next++ % 4];

	snprintf(r, sizeof(p[0]), "%s/%s", root, rel);
	return r;
}

static void mk(const char *rel, const char *content)
{
	tu_write_str(at(rel), content);
}

static void mkd(const char *rel)
{
	struct err e;

	ck_assert_msg(fs_mkdir_p(at(rel), 0755, &e) == 0, "%s", e.msg);
}

static void maildir(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/cur", rel);
	mkd(p);
	snprintf(p, sizeof(p), "%s/new", rel);
	mkd(p);
	snprintf(p, sizeof(p), "%s/tmp", rel);
	mkd(p);
}

static void set_mtime(const char *rel, int64_t ns)
{
	struct timespec ts[2] = {{ns / 1000000000, ns % 1000000000},
				 {ns / 1000000000, ns % 1000000000}};

	ck_assert_int_eq(utimensat(AT_FDCWD, at(rel), ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void digest_of(const char *folder, bool deep, uint8_t out[WIRE_DIGEST_LEN])
{
	struct folder_list l;
	struct err e;

	ck_assert_msg(scan_folder(rootfd, rules, folder, deep, &l, &e) == 0, "%s", e.msg);
	scan_digest(&l, deep, out);
	folder_list_free(&l);
}

/* A Maildir with one of everything, some of which must be left out. */
static void rich_tree(void)
{
	maildir("bob/Maildir");
	mk("bob/Maildir/cur/1700000001.M1P1.host,S=5:2,S", "hello");
	mk("bob/Maildir/new/1700000002.M2P2.host", "new mail\n");
	mk("bob/Maildir/tmp/1700000003.M3P3.host", "in delivery");
	mk("bob/Maildir/cur/.hidden", "dot file");
	mkd("bob/Maildir/cur/adir");
	mk("bob/Maildir/dovecot-uidlist", "3 V1 N3\n1 1700000001.M1P1.host\n");
	mk("bob/Maildir/dovecot-keywords", "0 Junk\n");
	mk("bob/Maildir/dovecot.index", "index");
	mk("bob/Maildir/dovecot.index.log", "log");
	mk("bob/Maildir/dovecot-uidlist.lock", "lock");
	mk("bob/Maildir/junk.txt", "not replicated");
	mk("bob/Maildir/courierimapkeywords/:list", "Junk\n");
	mk("bob/Maildir/courierimapkeywords/1700000001.M1P1.host", "0\n");
	ck_assert_int_eq(symlink("/etc/passwd", at("bob/Maildir/cur/evil:2,S")), 0);
	ck_assert_int_eq(symlink("../../outside/secret", at("bob/Maildir/subscriptions")), 0);
	ck_assert_int_eq(symlink("../../outside", at("bob/Maildir/new2")), 0);
	maildir("bob/Maildir/.Sent");
	mk("bob/Maildir/.Sent/cur/1700000009.M9P9.host:2,S", "sent");
	mk("bob/Maildir/.Sent/maildirfolder", "");
}

START_TEST(test_listing)
{
	static const char *const want[] = {
	    ".",
	    "courierimapkeywords",
	    "courierimapkeywords/1700000001.M1P1.host",
	    "courierimapkeywords/:list",
	    "cur",
	    "cur/1700000001.M1P1.host,S=5:2,S",
	    "dovecot-keywords",
	    "dovecot-uidlist",
	    "new",
	    "new/1700000002.M2P2.host",
	    "tmp",
	};
	struct folder_list l;
	uint8_t h[SHA256_LEN];
	struct err e;

	rich_tree();
	set_mtime("bob/Maildir/cur/1700000001.M1P1.host,S=5:2,S", 1600000000123456789LL);
	ck_assert_int_eq(chmod(at("bob/Maildir/cur/1700000001.M1P1.host,S=5:2,S"), 0640), 0);
	ck_assert_int_eq(scan_folder(rootfd, rules, "bob/Maildir", false, &l, &e), 0);
	ck_assert_uint_eq(l.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < l.n; i++) {
		const struct scan_entry *en = &l.v[i];
		bool meta = strncmp(en->name, "cur/", 4) != 0 && strncmp(en->name, "new/", 4) != 0;

		ck_assert_str_eq(en->name, want[i]);
		ck_assert_ptr_eq(folder_list_find(&l, slice_cstr(want[i])), en);
		ck_assert(!S_ISREG(en->mode) || en->has_hash == meta);
		ck_assert(S_ISREG(en->mode) || (S_ISDIR(en->mode) && en->size == 0));
	}
	ck_assert_ptr_null(folder_list_find(&l, SLICE_LIT("cur/evil:2,S")));
	ck_assert_ptr_null(folder_list_find(&l, SLICE_LIT("subscriptions")));
	ck_assert_ptr_null(folder_list_find(&l, SLICE_LIT("")));
	ck_assert_ptr_null(folder_list_find(&l, SLICE_LIT("zzz")));
	{
		const struct scan_entry *m =
		    folder_list_find(&l, SLICE_LIT("cur/1700000001.M1P1.host,S=5:2,S"));
		ck_assert_uint_eq(m->size, 5);
		ck_assert_int_eq(m->mtime_ns, 1600000000123456789LL);
		ck_assert_uint_eq(m->mode & 07777, 0640);
		ck_assert_uint_eq(m->nlink, 1);
	}
	sha256_buf("0\n", 2, h);
	ck_assert_mem_eq(l.v[2].sha256, h, SHA256_LEN);
	folder_list_free(&l);
	ck_assert_uint_eq(l.n, 0);

	/* deep: messages hashed too */
	ck_assert_int_eq(scan_folder(rootfd, rules, "bob/Maildir", true, &l, &e), 0);
	sha256_buf("hello", 5, h);
	ck_assert(l.v[5].has_hash);
	ck_assert_mem_eq(l.v[5].sha256, h, SHA256_LEN);
	folder_list_free(&l);

	/* The Maildir++ subfolder is a folder of its own. */
	ck_assert_int_eq(scan_folder(rootfd, rules, "bob/Maildir/.Sent", false, &l, &e), 0);
	ck_assert_uint_eq(l.n, 6);
	ck_assert_ptr_nonnull(folder_list_find(&l, SLICE_LIT("cur/1700000009.M9P9.host:2,S")));
	ck_assert_ptr_nonnull(folder_list_find(&l, SLICE_LIT("maildirfolder")));
	folder_list_free(&l);

	/* The root and a user directory: just themselves. */
	ck_assert_int_eq(scan_folder(rootfd, rules, "", false, &l, &e), 0);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.v[0].name, ".");
	folder_list_free(&l);
}
END_TEST

START_TEST(test_listing_absent)
{
	struct folder_list l;
	struct err e;

	rich_tree();
	ck_assert_int_eq(scan_folder(rootfd, rules, "nobody/Maildir", false, &l, &e), 1);
	ck_assert_uint_eq(l.n, 0);
	/* A symlink is not a folder, and is not followed. */
	ck_assert_int_eq(symlink("../outside", at("link")), 0);
	ck_assert_int_eq(scan_folder(rootfd, rules, "link", false, &l, &e), 1);
	ck_assert_int_eq(scan_folder(rootfd, rules, "bob/Maildir/new2", false, &l, &e), 1);
	ck_assert_int_eq(scan_folder(rootfd, rules, "bob/Maildir/dovecot-uidlist", false, &l, &e),
			 1);
	ck_assert_int_eq(scan_folder(rootfd, rules, "../outside", false, &l, &e), -1);
	ck_assert_int_eq(scan_folder(rootfd, rules, "/etc", false, &l, &e), -1);
}
END_TEST

START_TEST(test_digest)
{
	const char *msg = "bob/Maildir/cur/1700000001.M1P1.host,S=5:2,S";
	uint8_t d0[WIRE_DIGEST_LEN], d[WIRE_DIGEST_LEN], deep0[WIRE_DIGEST_LEN];
	const int64_t t = 1600000000000000001LL;

	rich_tree();
	set_mtime(msg, t);
	set_mtime("bob/Maildir/dovecot-uidlist", t);
	digest_of("bob/Maildir", false, d0);
	digest_of("bob/Maildir", true, deep0);
	ck_assert_mem_ne(d0, deep0, WIRE_DIGEST_LEN);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_eq(d, d0, WIRE_DIGEST_LEN);

	/* A flag change (rename), and back. */
	ck_assert_int_eq(rename(at(msg), at("bob/Maildir/cur/1700000001.M1P1.host,S=5:2,RS")), 0);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	ck_assert_int_eq(rename(at("bob/Maildir/cur/1700000001.M1P1.host,S=5:2,RS"), at(msg)), 0);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_eq(d, d0, WIRE_DIGEST_LEN); /* directory mtimes do not count */

	/* mtime, one nanosecond. */
	set_mtime(msg, t + 1);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	set_mtime(msg, t);

	/* size */
	mk(msg, "hello!");
	set_mtime(msg, t);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	mk(msg, "hello");
	set_mtime(msg, t);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_eq(d, d0, WIRE_DIGEST_LEN);

	/* One changed byte with size and mtime kept: only deep sees it. */
	mk(msg, "hellO");
	set_mtime(msg, t);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_eq(d, d0, WIRE_DIGEST_LEN);
	digest_of("bob/Maildir", true, d);
	ck_assert_mem_ne(d, deep0, WIRE_DIGEST_LEN);
	mk(msg, "hello");
	set_mtime(msg, t);
	digest_of("bob/Maildir", true, d);
	ck_assert_mem_eq(d, deep0, WIRE_DIGEST_LEN);

	/* Metadata content counts even when shallow. */
	mk("bob/Maildir/dovecot-uidlist", "3 V1 N3\n1 1700000001.M1P1.hosT\n");
	set_mtime("bob/Maildir/dovecot-uidlist", t);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	mk("bob/Maildir/dovecot-uidlist", "3 V1 N3\n1 1700000001.M1P1.host\n");
	set_mtime("bob/Maildir/dovecot-uidlist", t);

	/* Permission bits count, owners do not. */
	ck_assert_int_eq(chmod(at(msg), 0600), 0);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	ck_assert_int_eq(chmod(at(msg), 0644), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(at(msg), 4321, 4321), 0);
		digest_of("bob/Maildir", false, d);
		ck_assert_mem_eq(d, d0, WIRE_DIGEST_LEN);
	}

	/* New entries: a message, a metadata file, an empty subdirectory. */
	mk("bob/Maildir/new/x", "");
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	ck_assert_int_eq(unlink(at("bob/Maildir/new/x")), 0);
	mk("bob/Maildir/maildirsize", "");
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	ck_assert_int_eq(unlink(at("bob/Maildir/maildirsize")), 0);
	ck_assert_int_eq(unlink(at("bob/Maildir/tmp/1700000003.M3P3.host")), 0);
	ck_assert_int_eq(rmdir(at("bob/Maildir/tmp")), 0);
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_ne(d, d0, WIRE_DIGEST_LEN);
	mkd("bob/Maildir/tmp");

	/* Not part of the folder: excluded files, tmp/, subfolders. */
	mk("bob/Maildir/dovecot.index.cache", "x");
	mk("bob/Maildir/tmp/y", "y");
	maildir("bob/Maildir/.Drafts");
	digest_of("bob/Maildir", false, d);
	ck_assert_mem_eq(d, d0, WIRE_DIGEST_LEN);
}
END_TEST

/* The encoding is unambiguous: moving bytes between name and content
 * fields, or splitting an entry, gives a different digest. */
START_TEST(test_digest_encoding)
{
	struct scan_entry a[2] = {{.name = "ab", .mode = S_IFREG | 0644, .size = 1},
				  {.name = "c", .mode = S_IFREG | 0644, .size = 1}};
	struct scan_entry b[2] = {{.name = "a", .mode = S_IFREG | 0644, .size = 1},
				  {.name = "bc", .mode = S_IFREG | 0644, .size = 1}};
	struct folder_list la = {a, 2, 2}, lb = {b, 2, 2}, l1 = {a, 1, 1};
	uint8_t da[WIRE_DIGEST_LEN], db[WIRE_DIGEST_LEN], d1[WIRE_DIGEST_LEN];

	scan_digest(&la, false, da);
	scan_digest(&lb, false, db);
	scan_digest(&l1, false, d1);
	ck_assert_mem_ne(da, db, WIRE_DIGEST_LEN);
	ck_assert_mem_ne(da, d1, WIRE_DIGEST_LEN);
	a[1].mode = S_IFDIR | 0644;
	scan_digest(&la, false, db);
	ck_assert_mem_ne(da, db, WIRE_DIGEST_LEN);
}
END_TEST

struct calls {
	char seen[32][128];
	int n, stop_at;
};

static int record(const char *folder, void *ctx)
{
	struct calls *c = ctx;

	ck_assert_int_lt(c->n, 32);
	snprintf(c->seen[c->n++], sizeof(c->seen[0]), "%s", folder);
	return c->n == c->stop_at ? 7 : 0;
}

static void walk_expect(const char *prefix, const char *const *want, int n)
{
	struct calls c = {.stop_at = -1};
	struct err e;

	ck_assert_msg(scan_walk(rootfd, rules, prefix, record, &c, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(c.n, n);
	for (int i = 0; i < n; i++)
		ck_assert_str_eq(c.seen[i], want[i]);
}

START_TEST(test_walk)
{
	static const char *const all[] = {
	    "",
	    "a",
	    "a.b",
	    "a.b/Maildir",
	    "a/Maildir",
	    "a/Maildir/.Sent",
	    "a/Maildir/.Sent.Sub",
	    "empty",
	};
	static const char *const sub[] = {"a/Maildir", "a/Maildir/.Sent", "a/Maildir/.Sent.Sub"};
	struct calls c = {.stop_at = 2};
	struct err e;

	maildir("a/Maildir");
	maildir("a/Maildir/.Sent");
	maildir("a/Maildir/.Sent.Sub");
	maildir("a.b/Maildir");
	mkd("a/Maildir/cur/notafolder");
	mkd("a/Maildir/tmp/notafolder");
	mkd("a/Maildir/courierimapkeywords");
	mkd("a/Maildir/dovecot.index.d"); /* excluded pattern dovecot.index* */
	mkd(".mdrepl-tmp/x");
	mkd("empty");
	mk("file", "not a folder");
	ck_assert_int_eq(symlink("a", at("link")), 0);
	ck_assert_int_eq(symlink("../outside", at("a/Maildir/.Escape")), 0);
	ck_assert_int_eq(mkdir(at("../outside/Maildir"), 0755), 0);

	walk_expect("", all, sizeof(all) / sizeof(all[0]));
	walk_expect("a/Maildir", sub, 3);
	walk_expect("nobody", NULL, 0);
	walk_expect("link", NULL, 0);
	walk_expect("a/Maildir/.Escape", NULL, 0);
	walk_expect("a/Maildir/cur", NULL, 0);
	walk_expect(".mdrepl-tmp", NULL, 0);
	walk_expect("file", NULL, 0);
	ck_assert_int_eq(scan_walk(rootfd, rules, "../outside", record, &c, &e), -1);
	ck_assert_int_eq(scan_walk(rootfd, rules, "", record, &c, &e), 7);
	ck_assert_int_eq(c.n, 2);
}
END_TEST

static void age_tree(void)
{
	/* ctimes cannot be set back: wait out the racy window instead. */
	struct timespec ts = {2, 200 * 1000 * 1000};

	nanosleep(&ts, NULL);
}

static void cache_expect(struct digest_cache *c, const char *folder, uint64_t hits, uint64_t misses,
			 uint8_t out[WIRE_DIGEST_LEN])
{
	uint8_t fresh[WIRE_DIGEST_LEN];
	uint64_t h, m;
	struct err e;

	ck_assert_msg(digest_cache_get(c, rootfd, rules, folder, false, out, &e) == 0, "%s", e.msg);
	digest_of(folder, false, fresh);
	digest_cache_stats(c, &h, &m);
	ck_assert_msg(memcmp(out, fresh, WIRE_DIGEST_LEN) == 0, "stale digest folder=%s", folder);
	ck_assert_uint_eq(h, hits);
	ck_assert_uint_eq(m, misses);
}

/* Opens the cache at path, computes bob's digest (a miss, then a hit)
 * into out, saves and closes it. */
static void cache_fill(const char *path, uint8_t out[WIRE_DIGEST_LEN])
{
	struct digest_cache *c = digest_cache_open(path);
	struct err e;

	cache_expect(c, "bob/Maildir", 0, 1, out);
	cache_expect(c, "bob/Maildir", 1, 1, out);
	ck_assert_msg(digest_cache_save(c, &e) == 0, "%s", e.msg);
	digest_cache_free(&c);
}

START_TEST(test_cache)
{
	char path[PATH_MAX + 32];
	uint8_t d[WIRE_DIGEST_LEN], d2[WIRE_DIGEST_LEN];
	struct digest_cache *c;
	struct err e;
	int64_t t;

	snprintf(path, sizeof(path), "%s/digests", top);
	c = digest_cache_open(path);
	rich_tree();
	maildir("alice/Maildir");
	mk("alice/Maildir/cur/1.a:2,S", "a");
	mk("alice/Maildir/dovecot-uidlist", "uidlist v1");

	/* Inside the racy window nothing is stored. */
	cache_expect(c, "bob/Maildir", 0, 1, d);
	cache_expect(c, "bob/Maildir", 0, 2, d);
	age_tree();
	cache_expect(c, "bob/Maildir", 0, 3, d);
	cache_expect(c, "bob/Maildir", 1, 3, d2);
	ck_assert_mem_eq(d, d2, WIRE_DIGEST_LEN);
	cache_expect(c, "alice/Maildir", 1, 4, d);
	cache_expect(c, "alice/Maildir", 2, 4, d);
	cache_expect(c, "", 2, 5, d);

	/* Deep digests are always computed. */
	ck_assert_int_eq(digest_cache_get(c, rootfd, rules, "bob/Maildir", true, d, &e), 0);
	cache_expect(c, "bob/Maildir", 3, 6, d);

	/* Persisted and reloaded: still hits. */
	ck_assert_int_eq(digest_cache_save(c, &e), 0);
	digest_cache_free(&c);
	ck_assert_ptr_null(c);
	c = digest_cache_open(path);
	cache_expect(c, "bob/Maildir", 1, 0, d);
	cache_expect(c, "alice/Maildir", 2, 0, d);

	/* A rename in cur/: miss, with the new digest. */
	ck_assert_int_eq(rename(at("bob/Maildir/cur/1700000001.M1P1.host,S=5:2,S"),
				at("bob/Maildir/cur/1700000001.M1P1.host,S=5:2,FS")),
			 0);
	cache_expect(c, "bob/Maildir", 2, 1, d2);
	ck_assert_mem_ne(d, d2, WIRE_DIGEST_LEN);

	/* A metadata file rewritten in place, same size, mtime put back:
	 * its ctime still moves. */
	{
		struct stat st;
		cache_expect(c, "alice/Maildir", 3, 1, d);
		ck_assert_int_eq(stat(at("alice/Maildir/dovecot-uidlist"), &st), 0);
		t = ts_ns(st.st_mtim);
		mk("alice/Maildir/dovecot-uidlist", "uidlist v2");
		set_mtime("alice/Maildir/dovecot-uidlist", t);
		cache_expect(c, "alice/Maildir", 3, 2, d2);
		ck_assert_mem_ne(d, d2, WIRE_DIGEST_LEN);
	}

	/* A folder that went away. */
	tu_rmtree(at("alice"));
	ck_assert_int_eq(digest_cache_get(c, rootfd, rules, "alice/Maildir", false, d, &e), 1);
	ck_assert_int_eq(digest_cache_save(c, &e), 0);
	digest_cache_free(&c);
}
END_TEST

/* A damaged or foreign cache file is discarded, never trusted. */
START_TEST(test_cache_corrupt)
{
	char path[PATH_MAX + 32];
	uint8_t d[WIRE_DIGEST_LEN];
	struct digest_cache *c;
	struct err e;
	char *data;
	size_t len;

	snprintf(path, sizeof(path), "%s/digests", top);
	maildir("bob/Maildir");
	mk("bob/Maildir/cur/1:2,S", "x");
	age_tree();
	cache_fill(path, d);
	data = tu_read(path, &len);

	for (int i = 0; i < 4; i++) {
		char *bad = malloc(len);
		size_t blen = len;

		memcpy(bad, data, len);
		if (i == 0)
			bad[len / 2] ^= 0x10; /* a flipped bit */
		else if (i == 1)
			blen = len - 5; /* truncated */
		else if (i == 2)
			bad[9] = 99; /* another version */
		else
			memcpy(bad, "garbage", 7);
		tu_write(path, bad, blen);
		free(bad);
		c = digest_cache_open(path);
		cache_expect(c, "bob/Maildir", 0, 1, d);
		/* ...and the next save replaces it with a good one. */
		ck_assert_int_eq(digest_cache_save(c, &e), 0);
		digest_cache_free(&c);
		c = digest_cache_open(path);
		cache_expect(c, "bob/Maildir", 1, 0, d);
		digest_cache_free(&c);
	}
	free(data);
}
END_TEST

/* Counts come with the digest, from a listing or from the cache, and
 * survive a save; a cache file of version 1 (without them) is dropped. */
START_TEST(test_cache_counts)
{
	char path[PATH_MAX + 32];
	uint8_t d[WIRE_DIGEST_LEN], v1[4] = {0, 0, 0, 1};
	struct folder_counts n;
	struct digest_cache *c;
	uint64_t h, m;
	struct err e;
	char *data;
	size_t len;

	snprintf(path, sizeof(path), "%s/digests", top);
	rich_tree(); /* two messages: 5 + 9 bytes; the rest is not mail */
	age_tree();
	c = digest_cache_open(path);
	for (int round = 0; round < 2; round++) {
		memset(&n, 0xff, sizeof(n));
		ck_assert_int_eq(digest_cache_get_counted(c, rootfd, rules, "bob/Maildir", false, d,
							  &n, &e),
				 0);
		ck_assert_uint_eq(n.messages, 2);
		ck_assert_uint_eq(n.bytes, 14);
	}
	digest_cache_stats(c, &h, &m);
	ck_assert_uint_eq(h, 1);
	ck_assert_uint_eq(m, 1);
	ck_assert_int_eq(digest_cache_save(c, &e), 0);
	digest_cache_free(&c);

	c = digest_cache_open(path);
	memset(&n, 0, sizeof(n));
	ck_assert_int_eq(digest_cache_get_counted(c, rootfd, rules, "bob/Maildir", false, d, &n, &e),
			 0);
	ck_assert_uint_eq(n.messages, 2);
	ck_assert_uint_eq(n.bytes, 14);
	digest_cache_stats(c, &h, &m);
	ck_assert_uint_eq(h, 1);
	digest_cache_free(&c);

	/* Deep: never cached, still counted. */
	c = digest_cache_open(NULL);
	ck_assert_int_eq(digest_cache_get_counted(c, rootfd, rules, "bob/Maildir", true, d, &n, &e),
			 0);
	ck_assert_uint_eq(n.messages, 2);
	digest_cache_free(&c);

	data = tu_read(path, &len);
	memcpy(data + 6, v1, 4);
	tu_write(path, data, len);
	free(data);
	c = digest_cache_open(path);
	cache_expect(c, "bob/Maildir", 0, 1, d);
	digest_cache_free(&c);
}
END_TEST

/* Two processes sharing a cache file keep each other's entries; of two
 * entries for one folder the newer survives. */
START_TEST(test_cache_shared)
{
	char path[PATH_MAX + 32];
	uint8_t d[WIRE_DIGEST_LEN];
	struct digest_cache *a, *b, *c;
	struct err e;

	snprintf(path, sizeof(path), "%s/digests", top);
	maildir("bob/Maildir");
	maildir("eve/Maildir");
	mk("bob/Maildir/cur/1:2,S", "x");
	mk("eve/Maildir/cur/2:2,S", "y");
	age_tree();
	a = digest_cache_open(path);
	b = digest_cache_open(path);
	cache_expect(a, "bob/Maildir", 0, 1, d);
	ck_assert_int_eq(digest_cache_save(a, &e), 0);
	cache_expect(b, "eve/Maildir", 0, 1, d);
	ck_assert_int_eq(digest_cache_save(b, &e), 0); /* takes in bob's */
	c = digest_cache_open(path);
	cache_expect(c, "bob/Maildir", 1, 0, d);
	cache_expect(c, "eve/Maildir", 2, 0, d);
	digest_cache_free(&c);

	/* bob changes; a learns the new state; b still holds the old one and
	 * saves after a: a's newer entry stays. */
	mk("bob/Maildir/cur/3:2,S", "z");
	age_tree();
	cache_expect(a, "bob/Maildir", 0, 2, d);
	ck_assert_int_eq(digest_cache_save(a, &e), 0);
	cache_expect(b, "eve/Maildir", 1, 1, d);
	mk("eve/Maildir/cur/4:2,S", "w");
	age_tree();
	cache_expect(b, "eve/Maildir", 1, 2, d); /* dirty again */
	ck_assert_int_eq(digest_cache_save(b, &e), 0);
	c = digest_cache_open(path);
	cache_expect(c, "bob/Maildir", 1, 0, d);
	cache_expect(c, "eve/Maildir", 2, 0, d);
	digest_cache_free(&a);
	digest_cache_free(&b);
	digest_cache_free(&c);
}
END_TEST

/* A digest computed under other naming or exclude rules (the
 * configuration changed) is computed afresh, not taken from the cache. */
START_TEST(test_cache_rules)
{
	char path[PATH_MAX + 32], *pat[] = {"dovecot-keywords"};
	struct strlist ex = {pat, 1};
	uint8_t d[WIRE_DIGEST_LEN], d2[WIRE_DIGEST_LEN];
	struct digest_cache *c;
	struct err e;

	snprintf(path, sizeof(path), "%s/digests", top);
	rich_tree();
	age_tree();
	cache_fill(path, d);

	md_rules_free(&rules);
	rules = md_rules_new(':', &ex); /* dovecot-keywords no longer replicated */
	c = digest_cache_open(path);
	cache_expect(c, "bob/Maildir", 0, 1, d2); /* checks d2 is the fresh digest */
	ck_assert_mem_ne(d, d2, WIRE_DIGEST_LEN);
	cache_expect(c, "bob/Maildir", 1, 1, d2);
	ck_assert_int_eq(digest_cache_save(c, &e), 0);
	digest_cache_free(&c);
	c = digest_cache_open(path);
	cache_expect(c, "bob/Maildir", 1, 0, d2); /* kept under these rules */
	digest_cache_free(&c);
}
END_TEST

/* scan_hash_entry hashes what is there now, and says when it is gone. */
START_TEST(test_hash_entry)
{
	struct folder_list l;
	uint8_t want[SHA256_LEN];
	struct err e;
	int dfd;

	maildir("bob/Maildir");
	mk("bob/Maildir/cur/1:2,S", "first");
	mk("bob/Maildir/cur/2:2,S", "second");
	ck_assert_int_eq(scan_folder(rootfd, rules, "bob/Maildir", false, &l, &e), 0);
	ck_assert_int_eq(l.n, 6); /* . cur cur/1 cur/2 new tmp */
	ck_assert(!l.v[2].has_hash);
	mk("bob/Maildir/cur/1:2,S", "rewritten");
	ck_assert_int_eq(unlink(at("bob/Maildir/cur/2:2,S")), 0);
	dfd = open(at("bob/Maildir"), O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(scan_hash_entry(dfd, &l.v[2], &e), 0);
	sha256_buf("rewritten", 9, want);
	ck_assert(l.v[2].has_hash);
	ck_assert_mem_eq(l.v[2].sha256, want, SHA256_LEN);
	ck_assert_uint_eq(l.v[2].size, 9);
	ck_assert_int_eq(scan_hash_entry(dfd, &l.v[3], &e), 1);
	close(dfd);
	folder_list_free(&l);
}
END_TEST

#define NMSG 200

/* A child renames messages back and forth (a flag toggled) in bursts
 * while the parent lists: every listing must hold every message exactly
 * once. (A single listing without the re-listing fails this within a few
 * hundred scans.) */
START_TEST(test_concurrent_renames)
{
	char name[64];
	pid_t pid;
	int status, scans = 0;
	uint64_t until;

	maildir("bob/Maildir");
	for (int i = 0; i < NMSG; i++) {
		snprintf(name, sizeof(name), "bob/Maildir/cur/%04d.M%dP1.host:2,S", i, i);
		mk(name, "m");
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int cfd = openat(rootfd, "bob/Maildir/cur", O_RDONLY | O_DIRECTORY);
		char a[64], b[64];
		uint64_t stop = now_mono_ms() + 10000;

		for (unsigned n = 0; now_mono_ms() < stop; n++) {
			int i = (int)((n * 7919u) % NMSG);
			bool seen = (n / NMSG) % 2 == 0;

			snprintf(a, sizeof(a), "%04d.M%dP1.host:2,%s", i, i, seen ? "S" : "RS");
			snprintf(b, sizeof(b), "%04d.M%dP1.host:2,%s", i, i, seen ? "RS" : "S");
			renameat(cfd, a, cfd, b);
			if (n % 4 == 3)
				usleep(30000); /* bursts of four, like a client setting flags */
		}
		_exit(0);
	}
	until = now_mono_ms() + 2000;
	while (now_mono_ms() < until) {
		struct folder_list l;
		struct err e;
		int seen[NMSG] = {0};

		ck_assert_int_eq(scan_folder(rootfd, rules, "bob/Maildir", false, &l, &e), 0);
		for (size_t j = 0; j < l.n; j++) {
			int i;

			if (sscanf(l.v[j].name, "cur/%d.", &i) == 1)
				seen[i]++;
		}
		folder_list_free(&l);
		for (int i = 0; i < NMSG; i++)
			ck_assert_msg(seen[i] == 1, "scan %d: message %d listed %d times", scans, i,
				      seen[i]);
		scans++;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ck_assert_int_gt(scans, 10);
}
END_TEST

static Suite *scan_suite(void)
{
	Suite *s = suite_create("scan");
	TCase *core = tcase_create("core"), *cache = tcase_create("cache"),
	      *race = tcase_create("race");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(cache, setup, teardown);
	tcase_add_checked_fixture(race, setup, teardown);
	tcase_set_timeout(cache, 30);
	tcase_set_timeout(race, 30);
	tcase_add_test(core, test_listing);
	tcase_add_test(core, test_listing_absent);
	tcase_add_test(core, test_digest);
	tcase_add_test(core, test_digest_encoding);
	tcase_add_test(core, test_walk);
	tcase_add_test(core, test_hash_entry);
	tcase_add_test(cache, test_cache);
	tcase_add_test(cache, test_cache_corrupt);
	tcase_add_test(cache, test_cache_counts);
	tcase_add_test(cache, test_cache_shared);
	tcase_add_test(cache, test_cache_rules);
	tcase_add_test(race, test_concurrent_renames);
	suite_add_tcase(s, core);
	suite_add_tcase(s, cache);
	suite_add_tcase(s, race);
	return s;
}

int main(void)
{
	return tu_run(scan_suite());
}

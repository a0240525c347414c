/*
 * check_watch.c — journald's inotify watcher (watch.c, wtree.c) against
 * the real kernel: which records each Maildir operation produces (rename
 * pairs, unmatched halves, Dovecot's lock-and-rename of dovecot-uidlist,
 * tmp/ and excluded names ignored), new folders watched and listed,
 * renamed folders reporting their new path (also after a delete and
 * re-create under the same name), folders moved out, and the rescans
 * for what changed while journald was stopped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "maildir.h"
#include "testutil.h"
#include "watch.h"
#include "wtree.h"
#include "xalloc.h"

struct rec {
	enum jrec_type t;
	uint32_t flags;
	char *p, *p2;
};

static struct rec recs[4096];
static size_t nrecs;
static char root[1024], outside[1100];
static struct md_rules *rules;
static struct watcher *w;

static void on_record(void *ctx, enum jrec_type t, uint32_t flags, struct slice p, struct slice p2)
{
	(void)ctx;
	ck_assert_uint_lt(nrecs, sizeof(recs) / sizeof(recs[0]));
	recs[nrecs++] = (struct rec){t, flags, xstrndup(p.p, p.len), xstrndup(p2.p, p2.len)};
}

static void clear(void)
{
	for (size_t i = 0; i < nrecs; i++) {
		free(recs[i].p);
		free(recs[i].p2);
	}
	nrecs = 0;
}

static void path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void path(char *out, const char *fmt, ...)
{
	char rel[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(out, 4200, "%s/%s", root, rel);
}

static void mk(const char *rel)
{
	char p[4200];

	path(p, "%s", rel);
	ck_assert_msg(mkdir(p, 0700) == 0, "mkdir %s: %s", p, strerror(errno));
}

static void put(const char *rel, const char *text)
{
	char p[4200];

	path(p, "%s", rel);
	tu_write_str(p, text);
}

static void mv(const char *from, const char *to)
{
	char a[4200], b[4200];

	path(a, "%s", from);
	path(b, "%s", to);
	ck_assert_msg(rename(a, b) == 0, "rename %s: %s", a, strerror(errno));
}

static void mkfolder(const char *rel)
{
	char p[2048];

	mk(rel);
	snprintf(p, sizeof(p), "%s/cur", rel);
	mk(p);
	snprintf(p, sizeof(p), "%s/new", rel);
	mk(p);
	snprintf(p, sizeof(p), "%s/tmp", rel);
	mk(p);
}

/* Handles events until none came for 100 ms (bounded). */
static void settle(void)
{
	struct err e;
	uint64_t quiet_since = now_mono_ms(), end = now_mono_ms() + 5000;

	while (now_mono_ms() < end) {
		struct pollfd pfd = {watcher_fd(w), POLLIN, 0};

		if (poll(&pfd, 1, 10) > 0) {
			ck_assert_int_eq(watcher_process(w, &e), 0);
			quiet_since = now_mono_ms();
		}
		watcher_tick(w);
		if (now_mono_ms() - quiet_since >= 100 && watcher_timeout_ms(w) != 0)
			return;
	}
	ck_abort_msg("events did not settle");
}

/* Index of the first record (at or after from) of type t with path p
 * (and p2 unless NULL), or -1. */
static int find(size_t from, enum jrec_type t, const char *p, const char *p2)
{
	for (size_t i = from; i < nrecs; i++) {
		if (recs[i].t == t && strcmp(recs[i].p, p) == 0 &&
		    (p2 == NULL || strcmp(recs[i].p2, p2) == 0))
			return (int)i;
	}
	return -1;
}

static size_t count(enum jrec_type t)
{
	size_t n = 0;

	for (size_t i = 0; i < nrecs; i++)
		n += recs[i].t == t;
	return n;
}

static void dump(void)
{
	for (size_t i = 0; i < nrecs; i++)
		fprintf(stderr, "  %s %s %s\n", jrec_type_name(recs[i].t), recs[i].p, recs[i].p2);
}

#define EXPECT(t, p, p2)                                                                           \
	do {                                                                                       \
		if (find(0, t, p, p2) < 0) {                                                       \
			dump();                                                                    \
			ck_abort_msg("no %s %s %s", jrec_type_name(t), p, p2 ? p2 : "");           \
		}                                                                                  \
	} while (0)

static uint64_t watches(void)
{
	struct watcher_stats st;

	watcher_get_stats(w, &st);
	return st.watches;
}

static void start(uint64_t since)
{
	struct err e;

	w = watcher_new(root, rules, on_record, NULL, &e);
	ck_assert_msg(w != NULL, "%s", e.msg);
	ck_assert_int_eq(watcher_start(w, since, &e), 0);
}

static void setup(void)
{
	snprintf(root, sizeof(root), "%s/mail", tu_mkdtemp());
	snprintf(outside, sizeof(outside), "%.*s/outside", (int)(strlen(root) - 5), root);
	ck_assert_int_eq(mkdir(root, 0700), 0);
	ck_assert_int_eq(mkdir(outside, 0700), 0);
	mk("bob");
	mkfolder("bob/Maildir");
	mkfolder("bob/Maildir/.Sent");
	put("bob/Maildir/dovecot-uidlist", "3 V1 N1\n");
	rules = md_rules_new(':', NULL);
	nrecs = 0;
}

static void teardown(void)
{
	char top[4200];

	watcher_free(&w);
	md_rules_free(&rules);
	clear();
	snprintf(top, sizeof(top), "%.*s", (int)(strlen(root) - 5), root);
	tu_rmtree(top);
}

START_TEST(test_messages)
{
	start(0);
	/* root, bob, Maildir, cur, new, .Sent, .Sent/cur, .Sent/new: no tmp/ */
	ck_assert_uint_eq(watches(), 8);
	put("bob/Maildir/tmp/1.M1.h", "mail\n");
	mv("bob/Maildir/tmp/1.M1.h", "bob/Maildir/new/1.M1.h,S=5");
	mv("bob/Maildir/new/1.M1.h,S=5", "bob/Maildir/cur/1.M1.h,S=5:2,S");
	mv("bob/Maildir/cur/1.M1.h,S=5:2,S", "bob/Maildir/cur/1.M1.h,S=5:2,RS");
	mv("bob/Maildir/cur/1.M1.h,S=5:2,RS", "bob/Maildir/.Sent/cur/1.M1.h,S=5:2,RS");
	put("bob/Maildir/.Sent/cur/2.M2.h:2,S", "direct\n");
	{
		char p[4200];

		path(p, "bob/Maildir/.Sent/cur/2.M2.h:2,S");
		ck_assert_int_eq(unlink(p), 0);
	}
	settle();
	ck_assert_uint_eq(nrecs, 7);
	ck_assert_int_eq(find(0, JR_CREATE, "bob/Maildir/new/1.M1.h,S=5", NULL), 0);
	ck_assert_int_eq(
	    find(0, JR_RENAME, "bob/Maildir/new/1.M1.h,S=5", "bob/Maildir/cur/1.M1.h,S=5:2,S"), 1);
	ck_assert_int_eq(
	    find(0, JR_RENAME, "bob/Maildir/cur/1.M1.h,S=5:2,S", "bob/Maildir/cur/1.M1.h,S=5:2,RS"),
	    2);
	ck_assert_int_eq(find(0, JR_RENAME, "bob/Maildir/cur/1.M1.h,S=5:2,RS",
			      "bob/Maildir/.Sent/cur/1.M1.h,S=5:2,RS"),
			 3);
	/* created in place: on creation and again when written */
	ck_assert_int_eq(find(4, JR_CREATE, "bob/Maildir/.Sent/cur/2.M2.h:2,S", NULL), 4);
	ck_assert_int_eq(find(5, JR_CREATE, "bob/Maildir/.Sent/cur/2.M2.h:2,S", NULL), 5);
	ck_assert_int_eq(find(0, JR_UNLINK, "bob/Maildir/.Sent/cur/2.M2.h:2,S", NULL), 6);
}
END_TEST

START_TEST(test_unmatched_halves)
{
	char a[4200], b[4200];

	put("bob/Maildir/cur/1.M1.h:2,S", "x\n");
	start(0);
	path(a, "bob/Maildir/cur/1.M1.h:2,S");
	snprintf(b, sizeof(b), "%s/1.M1.h", outside);
	ck_assert_int_eq(rename(a, b), 0);
	settle();
	ck_assert_uint_eq(nrecs, 1);
	EXPECT(JR_UNLINK, "bob/Maildir/cur/1.M1.h:2,S", NULL);
	path(a, "bob/Maildir/new/1.M1.h");
	ck_assert_int_eq(rename(b, a), 0);
	settle();
	ck_assert_uint_eq(nrecs, 2);
	EXPECT(JR_CREATE, "bob/Maildir/new/1.M1.h", NULL);
}
END_TEST

START_TEST(test_metadata)
{
	start(0);
	/* Dovecot: write the lock file (excluded), rename it over */
	put("bob/Maildir/dovecot-uidlist.lock", "3 V1 N2\n");
	mv("bob/Maildir/dovecot-uidlist.lock", "bob/Maildir/dovecot-uidlist");
	settle();
	ck_assert_uint_eq(nrecs, 1);
	EXPECT(JR_META_CHANGED, "bob/Maildir/dovecot-uidlist", NULL);
	clear();
	/* in place (maildirsize is appended to) */
	put("bob/Maildir/maildirsize", "1000S\n");
	settle();
	EXPECT(JR_META_CHANGED, "bob/Maildir/maildirsize", NULL);
	ck_assert_uint_eq(count(JR_META_CHANGED), nrecs);
	clear();
	/* ignored: tmp/, index caches, other files */
	put("bob/Maildir/tmp/9.M9.h", "x");
	put("bob/Maildir/dovecot.index.cache", "x");
	put("bob/Maildir/.Sent/dovecot.index.log", "x");
	put("bob/Maildir/random-notes.txt", "x");
	settle();
	if (nrecs != 0)
		dump();
	ck_assert_uint_eq(nrecs, 0);
}
END_TEST

START_TEST(test_new_folder_listed)
{
	start(0);
	/* created with content faster than a watch can be added */
	mkfolder("bob/Maildir/.Lists");
	put("bob/Maildir/.Lists/cur/5.M5.h:2,S", "x\n");
	put("bob/Maildir/.Lists/dovecot-uidlist", "3 V1 N6\n");
	settle();
	EXPECT(JR_FOLDER_CREATE, "bob/Maildir/.Lists", NULL);
	EXPECT(JR_FOLDER_CREATE, "bob/Maildir/.Lists/cur", NULL);
	EXPECT(JR_FOLDER_CREATE, "bob/Maildir/.Lists/tmp", NULL);
	EXPECT(JR_CREATE, "bob/Maildir/.Lists/cur/5.M5.h:2,S", NULL);
	EXPECT(JR_META_CHANGED, "bob/Maildir/.Lists/dovecot-uidlist", NULL);
	ck_assert_uint_eq(watches(), 11);
	/* a new user, nested */
	clear();
	mk("carol");
	mkfolder("carol/Maildir");
	put("carol/Maildir/new/7.M7.h", "x\n");
	settle();
	EXPECT(JR_FOLDER_CREATE, "carol", NULL);
	EXPECT(JR_FOLDER_CREATE, "carol/Maildir", NULL);
	EXPECT(JR_CREATE, "carol/Maildir/new/7.M7.h", NULL);
	ck_assert_uint_eq(watches(), 15);
}
END_TEST

START_TEST(test_folder_rename)
{
	start(0);
	mv("bob/Maildir/.Sent", "bob/Maildir/.Sent Items");
	put("bob/Maildir/.Sent Items/cur/1.M1.h:2,S", "x\n");
	settle();
	ck_assert_int_eq(find(0, JR_FOLDER_RENAME, "bob/Maildir/.Sent", "bob/Maildir/.Sent Items"),
			 0);
	EXPECT(JR_CREATE, "bob/Maildir/.Sent Items/cur/1.M1.h:2,S", NULL);
	ck_assert_uint_eq(watches(), 8);
	/* deleted, created again under the same name, renamed: the new
	 * directory's events carry its new name (libinotifytools gets this
	 * one wrong) */
	clear();
	{
		char p[4200];

		path(p, "bob/Maildir/.Sent Items");
		tu_rmtree(p);
	}
	settle();
	EXPECT(JR_FOLDER_DELETE, "bob/Maildir/.Sent Items", NULL);
	EXPECT(JR_UNLINK, "bob/Maildir/.Sent Items/cur/1.M1.h:2,S", NULL);
	ck_assert_uint_eq(watches(), 5);
	mkfolder("bob/Maildir/.Sent Items");
	settle();
	mv("bob/Maildir/.Sent Items", "bob/Maildir/.Old");
	settle();
	put("bob/Maildir/.Old/new/2.M2.h", "x\n");
	settle();
	EXPECT(JR_FOLDER_RENAME, "bob/Maildir/.Sent Items", "bob/Maildir/.Old");
	EXPECT(JR_CREATE, "bob/Maildir/.Old/new/2.M2.h", NULL);
	ck_assert_int_lt(find(0, JR_CREATE, "bob/Maildir/.Sent Items/new/2.M2.h", NULL), 0);
}
END_TEST

START_TEST(test_folder_moved_out_and_in)
{
	char a[4200], b[4200];

	start(0);
	path(a, "bob/Maildir/.Sent");
	snprintf(b, sizeof(b), "%s/.Sent", outside);
	ck_assert_int_eq(rename(a, b), 0);
	settle();
	EXPECT(JR_FOLDER_DELETE, "bob/Maildir/.Sent", NULL);
	ck_assert_uint_eq(watches(), 5);
	/* what happens to it outside is not ours */
	clear();
	snprintf(a, sizeof(a), "%s/.Sent/cur/3.M3.h", outside);
	tu_write_str(a, "x\n");
	settle();
	ck_assert_uint_eq(nrecs, 0);
	/* moved back in: created, with what is in it */
	path(a, "bob/Maildir/.Back");
	ck_assert_int_eq(rename(b, a), 0);
	settle();
	EXPECT(JR_FOLDER_CREATE, "bob/Maildir/.Back", NULL);
	EXPECT(JR_CREATE, "bob/Maildir/.Back/cur/3.M3.h", NULL);
	ck_assert_uint_eq(watches(), 8);
	/* into tmp/ (unwatched) is out of the tree as well */
	clear();
	mv("bob/Maildir/.Back", "bob/Maildir/tmp/.Back");
	settle();
	EXPECT(JR_FOLDER_DELETE, "bob/Maildir/.Back", NULL);
	ck_assert_uint_eq(watches(), 5);
}
END_TEST

START_TEST(test_changed_while_stopped)
{
	uint64_t since;

	put("bob/Maildir/.Sent/cur/1.M1.h:2,S", "x\n");
	mk("carol");
	mkfolder("carol/Maildir");
	sleep(2); /* ctime is coarse; the rule allows 1 s of slack */
	since = now_real_ns();
	put("bob/Maildir/.Sent/new/2.M2.h", "x\n");
	put("bob/Maildir/dovecot-uidlist", "3 V1 N9\n");
	start(since);
	if (nrecs != 2)
		dump();
	ck_assert_uint_eq(nrecs, 2);
	ck_assert_int_ge(find(0, JR_RESCAN, "bob/Maildir/.Sent", ""), 0);
	ck_assert_int_ge(find(0, JR_META_CHANGED, "bob/Maildir/dovecot-uidlist", NULL), 0);
	ck_assert_uint_eq(recs[find(0, JR_RESCAN, "bob/Maildir/.Sent", "")].flags, 0);
	/* a user directory that changed: its whole subtree */
	watcher_free(&w);
	clear();
	mk("dave");
	start(since);
	EXPECT(JR_RESCAN, "", NULL);
	ck_assert_uint_eq(recs[0].flags, JR_F_SUBTREE);
}
END_TEST

static void count_drop(int wd, void *ctx)
{
	(void)wd;
	(*(int *)ctx)++;
}

START_TEST(test_wtree)
{
	struct wtree *t = wtree_new();
	struct wnode *r, *a, *b, *c;
	struct buf p = BUF_INIT;
	bool is_new;
	int dropped = 0;

	r = wtree_attach(t, NULL, "", 1, &is_new);
	ck_assert(is_new);
	a = wtree_attach(t, r, "a", 2, &is_new);
	b = wtree_attach(t, a, "b", 3, &is_new);
	ck_assert_int_eq(wtree_path(t, b, &p), 0);
	ck_assert_str_eq(buf_cstr(&p), "a/b");
	ck_assert_ptr_eq(wtree_child(t, a, "b"), b);
	ck_assert_ptr_eq(wtree_by_wd(t, 3), b);
	/* the same wd seen elsewhere: the node moves, with its subtree */
	c = wtree_attach(t, b, "c", 4, &is_new);
	ck_assert_ptr_eq(wtree_attach(t, r, "z", 2, &is_new), a);
	ck_assert(!is_new);
	ck_assert_int_eq(wtree_path(t, c, &p), 0);
	ck_assert_str_eq(buf_cstr(&p), "z/b/c");
	ck_assert_ptr_null(wtree_child(t, r, "a"));
	/* another directory under a taken name: the old one is detached */
	ck_assert_ptr_ne(wtree_attach(t, r, "z", 9, &is_new), a);
	ck_assert_int_eq(wtree_path(t, c, &p), -1);
	/* many nodes: the tables grow */
	for (int i = 0; i < 5000; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		wtree_attach(t, r, name, 100 + i, &is_new);
	}
	ck_assert_uint_eq(wtree_count(t), 5005);
	ck_assert_ptr_nonnull(wtree_child(t, r, "n4999"));
	/* a sweep removes what a walk did not mark, detached ones too */
	wtree_by_wd(t, 1)->mark = 7;
	wtree_by_wd(t, 9)->mark = 7;
	wtree_sweep(t, 7, count_drop, &dropped);
	ck_assert_int_eq(dropped, 5003);
	ck_assert_uint_eq(wtree_count(t), 2);
	ck_assert_ptr_eq(wtree_child(t, r, "z"), wtree_by_wd(t, 9));
	ck_assert_ptr_null(wtree_by_wd(t, 4));
	wtree_remove(t, r, count_drop, &dropped);
	ck_assert_uint_eq(wtree_count(t), 0);
	ck_assert_int_eq(dropped, 5005);
	buf_free(&p);
	wtree_free(&t);
}
END_TEST

static Suite *watch_suite(void)
{
	Suite *s = suite_create("watch");
	TCase *core = tcase_create("core"), *folders = tcase_create("folders"),
	      *tree = tcase_create("tree");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(folders, setup, teardown);
	tcase_set_timeout(folders, 30);
	tcase_add_test(core, test_messages);
	tcase_add_test(core, test_unmatched_halves);
	tcase_add_test(core, test_metadata);
	tcase_add_test(folders, test_new_folder_listed);
	tcase_add_test(folders, test_folder_rename);
	tcase_add_test(folders, test_folder_moved_out_and_in);
	tcase_add_test(folders, test_changed_while_stopped);
	tcase_add_test(tree, test_wtree);
	suite_add_tcase(s, core);
	suite_add_tcase(s, folders);
	suite_add_tcase(s, tree);
	return s;
}

int main(void)
{
	return tu_run(watch_suite());
}

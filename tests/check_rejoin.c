/*
 * check_rejoin.c — how rejoin judges a message only the old primary has,
 * from a real journal (ctl/rejoin.c): created after the new primary's
 * position L -> send; there at L -> expunged there; touched since a
 * stretch the journal did not watch (a restart, a rescan of its folder)
 * -> recovered, unless a record just before L shows it appearing; and
 * every way the journal cannot tell (no position, another journal, a
 * journal that ends before L, records deleted) -> recovered.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "journal.h"
#include "rejoin.h"
#include "testutil.h"

static char jdir[PATH_MAX];
static struct md_rules *rules;
static const struct journal_opts opts = {0, 1, 64 * 1024 * 1024, 1ULL << 40};
static const char *const U = "dom/bob/Maildir";

static void setup(void)
{
	snprintf(jdir, sizeof(jdir), "%s", tu_mkdtemp());
	rules = md_rules_new(':', NULL);
}

static void teardown(void)
{
	md_rules_free(&rules);
	tu_rmtree(jdir);
}

static struct journal *jopen(void)
{
	struct err e;
	bool clean;
	struct journal *j = journal_open(jdir, &opts, &clean, &e);

	ck_assert_msg(j != NULL, "%s", e.msg);
	return j;
}

static uint64_t rec(struct journal *j, enum jrec_type t, uint32_t flags, const char *a,
		    const char *b)
{
	uint64_t lsn;
	struct err e;

	ck_assert_msg(
	    journal_append(j, t, flags, slice_cstr(a), slice_cstr(b ? b : ""), &lsn, &e) == 0, "%s",
	    e.msg);
	return lsn;
}

static enum rj_fate judge(const struct rj_journal *rj, const char *folder, const char *base,
			  int64_t ctime_ns)
{
	return rj_judge(rj, slice_cstr(U), slice_cstr(base), folder, ctime_ns);
}

/* ---------------------------------------------------------------- core */

START_TEST(test_created_after_position)
{
	struct journal *j = jopen();
	uint64_t id = journal_id(j), L;
	struct rj_journal *rj;

	rec(j, JR_START, 0, "clean", NULL);
	rec(j, JR_CREATE, 0, "dom/bob/Maildir/new/old1.host", NULL);
	L = rec(j, JR_RENAME, 0, "dom/bob/Maildir/new/old1.host",
		"dom/bob/Maildir/cur/old1.host:2,S");
	rec(j, JR_CREATE, 0, "dom/bob/Maildir/new/new1.host,S=10", NULL);
	/* a copy under a new base, into another folder */
	rec(j, JR_CREATE, 0, "dom/bob/Maildir/.Sent/cur/new2.host:2,S", NULL);
	/* a flag change and a move keep the base: not a creation */
	rec(j, JR_RENAME, 0, "dom/bob/Maildir/cur/old1.host:2,S",
	    "dom/bob/Maildir/.Trash/cur/old1.host:2,ST");
	/* moved in from another user: appears for this one */
	rec(j, JR_RENAME, 0, "dom/amy/Maildir/cur/amy1.host:2,",
	    "dom/bob/Maildir/cur/amy1.host:2,");
	journal_free(&j);

	rj = rj_journal_read(jdir, rules, id, L, true);
	ck_assert_ptr_null(rj_journal_blind(rj));
	ck_assert_uint_eq(rj_journal_records(rj), 4);
	ck_assert_int_eq(judge(rj, U, "new1.host,S=10", 0), RJ_SEND);
	ck_assert_int_eq(judge(rj, "dom/bob/Maildir/.Sent", "new2.host", 0), RJ_SEND);
	ck_assert_int_eq(judge(rj, U, "amy1.host", 0), RJ_SEND);
	ck_assert_int_eq(judge(rj, "dom/bob/Maildir/.Trash", "old1.host", 0), RJ_EXPUNGED);
	ck_assert_int_eq(judge(rj, U, "never-journaled.host", INT64_MAX), RJ_EXPUNGED);
	/* Per user: the same base created for another user does not count. */
	ck_assert_int_eq(rj_judge(rj, SLICE_LIT("dom/amy/Maildir"), SLICE_LIT("new1.host,S=10"),
				  "dom/amy/Maildir", 0),
			 RJ_EXPUNGED);
	rj_journal_free(&rj);
}
END_TEST

START_TEST(test_gaps)
{
	struct journal *j = jopen();
	uint64_t id = journal_id(j), L;
	int64_t before, after;
	struct rj_journal *rj;

	rec(j, JR_START, 0, "clean", NULL);
	rec(j, JR_CREATE, 0, "dom/bob/Maildir/new/justbefore.host", NULL);
	L = rec(j, JR_CREATE, 0, "dom/amy/Maildir/new/x.host", NULL);
	before = (int64_t)now_real_ns() - 3 * RJ_SLACK_NS;
	usleep(10000);
	/* journald restarted after a crash: everything touched since is in doubt */
	rec(j, JR_START, 0, "unclean", NULL);
	rec(j, JR_RESCAN, JR_F_SUBTREE, "", NULL);
	after = (int64_t)now_real_ns();
	journal_free(&j);

	rj = rj_journal_read(jdir, rules, id, L, true);
	ck_assert_ptr_null(rj_journal_blind(rj));
	/* untouched since before the gap: the new primary had it */
	ck_assert_int_eq(judge(rj, U, "old.host", before), RJ_EXPUNGED);
	/* touched (or created) since: cannot tell */
	ck_assert_int_eq(judge(rj, U, "cutoff.host", after), RJ_RECOVER);
	/* appeared just before L: known to have reached it, touched or not */
	ck_assert_int_eq(judge(rj, U, "justbefore.host", after), RJ_EXPUNGED);
	rj_journal_free(&rj);
}
END_TEST

START_TEST(test_folder_rescan_and_journald_down)
{
	struct journal *j = jopen();
	uint64_t id = journal_id(j), L;
	int64_t now;
	struct rj_journal *rj;

	L = rec(j, JR_START, 0, "clean", NULL);
	rec(j, JR_RESCAN, 0, "dom/bob/Maildir/.Sent", NULL);
	journal_free(&j);
	now = (int64_t)now_real_ns();

	/* A rescan of one folder (not a subtree) covers that folder only. */
	rj = rj_journal_read(jdir, rules, id, L, true);
	ck_assert_int_eq(judge(rj, "dom/bob/Maildir/.Sent", "a.host", now), RJ_RECOVER);
	ck_assert_int_eq(judge(rj, "dom/bob/Maildir/.Sent.Old", "a.host", now), RJ_EXPUNGED);
	ck_assert_int_eq(judge(rj, U, "a.host", now), RJ_EXPUNGED);
	rj_journal_free(&rj);
	/* journald not journaling now: whatever was touched since the last
	 * record is in doubt. */
	rj = rj_journal_read(jdir, rules, id, L, false);
	ck_assert_int_eq(judge(rj, U, "a.host", now), RJ_RECOVER);
	ck_assert_int_eq(judge(rj, U, "a.host", now - 60 * RJ_SLACK_NS), RJ_EXPUNGED);
	rj_journal_free(&rj);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_blind)
{
	struct journal *j = jopen();
	uint64_t id = journal_id(j), L;
	struct rj_journal *rj;

	rec(j, JR_START, 0, "clean", NULL);
	L = rec(j, JR_CREATE, 0, "dom/bob/Maildir/new/a.host", NULL);
	rec(j, JR_CREATE, 0, "dom/bob/Maildir/new/b.host", NULL);
	journal_free(&j);

	/* No position for this journal on the new primary. */
	rj = rj_journal_read(jdir, rules, id, 0, true);
	ck_assert_ptr_nonnull(rj_journal_blind(rj));
	ck_assert_int_eq(judge(rj, U, "b.host", 0), RJ_RECOVER);
	rj_journal_free(&rj);
	/* The new primary followed another journal. */
	rj = rj_journal_read(jdir, rules, id + 1, L, true);
	ck_assert_ptr_nonnull(strstr(rj_journal_blind(rj), "another journal"));
	ck_assert_int_eq(judge(rj, U, "b.host", 0), RJ_RECOVER);
	rj_journal_free(&rj);
	/* It has more of the journal than is here: records lost in a crash. */
	rj = rj_journal_read(jdir, rules, id, L + 10, true);
	ck_assert_ptr_nonnull(strstr(rj_journal_blind(rj), "lost in a crash"));
	rj_journal_free(&rj);
	/* No journal at all. */
	tu_rmtree(jdir);
	rj = rj_journal_read(jdir, rules, id, L, true);
	ck_assert_ptr_nonnull(rj_journal_blind(rj));
	ck_assert_int_eq(judge(rj, U, "a.host", 0), RJ_RECOVER);
	rj_journal_free(&rj);
}
END_TEST

static Suite *rejoin_suite(void)
{
	Suite *s = suite_create("rejoin");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_test(core, test_created_after_position);
	tcase_add_test(core, test_gaps);
	tcase_add_test(core, test_folder_rescan_and_journald_down);
	tcase_add_test(errors, test_blind);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	return s;
}

int main(void)
{
	return tu_run(rejoin_suite());
}

/*
 * check_sentmap.c — what a sending session knows the standby holds: sent
 * names found by inode and content, names following renames and unlinks,
 * a rename or new content replacing what a name held, dropped names, and
 * the lossy tables staying correct (never a wrong name) under many keys.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "sentmap.h"
#include "testutil.h"

static void key_of(uint8_t key[SENTMAP_KEY_LEN], unsigned n, uint8_t tag)
{
	memset(key, 0, SENTMAP_KEY_LEN);
	memcpy(key, &n, sizeof(n));
	key[SENTMAP_KEY_LEN - 1] = tag;
}

START_TEST(test_sent_found)
{
	struct sentmap *m = sentmap_new();
	uint8_t ino[SENTMAP_KEY_LEN], sha[SENTMAP_KEY_LEN], other[SENTMAP_KEY_LEN];

	key_of(ino, 1, 'i');
	key_of(sha, 1, 's');
	key_of(other, 2, 's');
	sentmap_sent(m, "u/cur/a", ino, sha);
	ck_assert_str_eq(sentmap_by_inode(m, ino), "u/cur/a");
	ck_assert_str_eq(sentmap_by_content(m, sha), "u/cur/a");
	ck_assert_ptr_null(sentmap_by_content(m, other));
	ck_assert_ptr_null(sentmap_by_inode(m, sha)); /* the tables are separate */
	sentmap_sent(m, "u/cur/b", NULL, other);
	ck_assert_str_eq(sentmap_by_content(m, other), "u/cur/b");
	sentmap_free(&m);
	ck_assert_ptr_null(m);
	sentmap_free(&m);
}
END_TEST

/* Delivered to new/, flagged into cur/, moved to another folder: a copy
 * is linked from where the standby has it now. */
START_TEST(test_follows_renames)
{
	struct sentmap *m = sentmap_new();
	uint8_t ino[SENTMAP_KEY_LEN], sha[SENTMAP_KEY_LEN];

	key_of(ino, 7, 'i');
	key_of(sha, 7, 's');
	sentmap_sent(m, "u/new/m1", ino, sha);
	sentmap_renamed(m, "u/new/m1", "u/cur/m1:2,S");
	ck_assert_str_eq(sentmap_by_inode(m, ino), "u/cur/m1:2,S");
	sentmap_renamed(m, "u/cur/m1:2,S", "u/.Trash/cur/m1:2,S");
	ck_assert_str_eq(sentmap_by_content(m, sha), "u/.Trash/cur/m1:2,S");
	sentmap_renamed(m, "u/nothing", "u/other"); /* unknown: no effect */
	ck_assert_str_eq(sentmap_by_inode(m, ino), "u/.Trash/cur/m1:2,S");
	sentmap_unlinked(m, "u/.Trash/cur/m1:2,S");
	ck_assert_ptr_null(sentmap_by_inode(m, ino));
	ck_assert_ptr_null(sentmap_by_content(m, sha));
	sentmap_free(&m);
}
END_TEST

/* What a name held is gone once something else takes the name. */
START_TEST(test_replaced)
{
	struct sentmap *m = sentmap_new();
	uint8_t a[SENTMAP_KEY_LEN], b[SENTMAP_KEY_LEN], c[SENTMAP_KEY_LEN];

	key_of(a, 1, 's');
	key_of(b, 2, 's');
	key_of(c, 3, 's');
	sentmap_sent(m, "u/cur/x", NULL, a);
	sentmap_sent(m, "u/cur/x", NULL, b); /* new content, same name */
	ck_assert_ptr_null(sentmap_by_content(m, a));
	ck_assert_str_eq(sentmap_by_content(m, b), "u/cur/x");
	sentmap_sent(m, "u/cur/y", NULL, c);
	sentmap_renamed(m, "u/cur/y", "u/cur/x"); /* over x */
	ck_assert_ptr_null(sentmap_by_content(m, b));
	ck_assert_str_eq(sentmap_by_content(m, c), "u/cur/x");
	sentmap_renamed(m, "u/cur/x", "u/cur/x"); /* to itself: nothing changes */
	ck_assert_str_eq(sentmap_by_content(m, c), "u/cur/x");
	sentmap_free(&m);
}
END_TEST

START_TEST(test_dropped)
{
	struct sentmap *m = sentmap_new();
	uint8_t sha[SENTMAP_KEY_LEN];

	key_of(sha, 9, 's');
	ck_assert(!sentmap_take_dropped(m, "u/new/d"));
	sentmap_dropped(m, "u/new/d");
	ck_assert(sentmap_take_dropped(m, "u/new/d"));
	ck_assert(!sentmap_take_dropped(m, "u/new/d")); /* taken once */
	sentmap_dropped(m, "u/new/e");
	sentmap_sent(m, "u/new/e", NULL, sha); /* sent after all */
	ck_assert(!sentmap_take_dropped(m, "u/new/e"));
	sentmap_dropped(m, "u/new/f");
	sentmap_renamed(m, "u/new/f", "u/cur/f"); /* the standby lacks both */
	ck_assert(!sentmap_take_dropped(m, "u/new/f"));
	ck_assert(sentmap_take_dropped(m, "u/cur/f"));
	/* Dropping a name that was sent before keeps what it held. */
	sentmap_sent(m, "u/cur/g", NULL, sha);
	sentmap_dropped(m, "u/cur/g");
	ck_assert_str_eq(sentmap_by_content(m, sha), "u/cur/g");
	ck_assert(sentmap_take_dropped(m, "u/cur/g"));
	ck_assert_str_eq(sentmap_by_content(m, sha), "u/cur/g");
	sentmap_free(&m);
}
END_TEST

/* Far more names than slots, with renames: whatever is found is right. */
START_TEST(test_lossy_never_wrong)
{
	struct sentmap *m = sentmap_new();
	enum { N = 200000 };
	char path[64], want[64];
	uint8_t key[SENTMAP_KEY_LEN];
	unsigned found = 0;

	for (unsigned i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "u%u/new/m%u", i % 97, i);
		key_of(key, i, 's');
		sentmap_sent(m, path, NULL, key);
	}
	for (unsigned i = 0; i < N; i += 3) { /* renamed long after: many forgotten */
		snprintf(path, sizeof(path), "u%u/new/m%u", i % 97, i);
		snprintf(want, sizeof(want), "u%u/cur/m%u:2,S", i % 97, i);
		sentmap_renamed(m, path, want);
	}
	for (unsigned i = 0; i < N; i++) {
		const char *got;

		key_of(key, i, 's');
		if ((got = sentmap_by_content(m, key)) == NULL)
			continue;
		if (i % 3 == 0)
			snprintf(want, sizeof(want), "u%u/cur/m%u:2,S", i % 97, i);
		else
			snprintf(want, sizeof(want), "u%u/new/m%u", i % 97, i);
		ck_assert_str_eq(got, want);
		found++;
	}
	ck_assert_uint_gt(found, 10000); /* and it does remember a good share */
	sentmap_free(&m);
}
END_TEST

static Suite *sentmap_suite(void)
{
	Suite *s = suite_create("sentmap");
	TCase *core = tcase_create("core");

	tcase_add_test(core, test_sent_found);
	tcase_add_test(core, test_follows_renames);
	tcase_add_test(core, test_replaced);
	tcase_add_test(core, test_dropped);
	tcase_add_test(core, test_lossy_never_wrong);
	suite_add_tcase(s, core);
	return s;
}

int main(void)
{
	return tu_run(sentmap_suite());
}

/*
 * check_audit.c — the audit's classification of one folder's two listings
 * (every kind, pairing of renamed messages, deep and shallow content, the
 * mail root's paths, folders on one side only) and the second look that
 * keeps only settled differences.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "testutil.h"
#include "xalloc.h"

#define F 0100644 /* regular file */
#define D 0040755 /* directory */

/* Adds an entry; hash is a byte the SHA-256 is filled with (0: none). */
static void ent(struct folder_list *l, const char *name, uint32_t mode, uint64_t size,
		int64_t mtime, int hash)
{
	struct scan_entry *s;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	s = &l->v[l->n++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
	s->mode = mode;
	s->size = size;
	s->mtime_ns = mtime;
	s->has_hash = hash != 0;
	memset(s->sha256, hash, SHA256_LEN);
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_entry *)a)->name, ((const struct scan_entry *)b)->name);
}

static void sorted(struct folder_list *l)
{
	qsort(l->v, l->n, sizeof(*l->v), ent_cmp);
}

/* A folder both sides have alike: ".", cur, new, tmp, one message, a uidlist. */
static void base_folder(struct folder_list *l)
{
	memset(l, 0, sizeof(*l));
	ent(l, ".", D, 0, 1, 0);
	ent(l, "cur", D, 0, 1, 0);
	ent(l, "new", D, 0, 1, 0);
	ent(l, "tmp", D, 0, 1, 0);
	ent(l, "cur/100.M1.h,S=10:2,S", F, 10, 1000, 0);
	ent(l, "dovecot-uidlist", F, 40, 2000, 7);
}

static struct folder_list p, s;
static struct audit_diffs out;

static void setup(void)
{
	base_folder(&p);
	base_folder(&s);
	memset(&out, 0, sizeof(out));
}

static void teardown(void)
{
	folder_list_free(&p);
	folder_list_free(&s);
	audit_diffs_free(&out);
}

static void compare(bool deep)
{
	sorted(&p);
	sorted(&s);
	audit_diffs_free(&out);
	audit_compare("dom/bob/Maildir", &p, &s, ':', deep, &out);
	audit_diffs_sort(&out);
}

/* The only difference is kind at path (relative to the folder). */
static const struct audit_diff *only(enum audit_kind kind, const char *path)
{
	char want[512];

	snprintf(want, sizeof(want), "dom/bob/Maildir%s%s", path[0] ? "/" : "", path);
	ck_assert_msg(out.n == 1, "%zu differences, first %s %s", out.n,
		      out.n ? audit_kind_name(out.v[0].kind) : "-", out.n ? out.v[0].path : "-");
	ck_assert_str_eq(audit_kind_name(out.v[0].kind), audit_kind_name(kind));
	ck_assert_str_eq(out.v[0].path, want);
	ck_assert_str_eq(out.v[0].folder, "dom/bob/Maildir");
	return &out.v[0];
}

START_TEST(test_same)
{
	compare(false);
	ck_assert_uint_eq(out.n, 0);
	compare(true);
	ck_assert_uint_eq(out.n, 0);
}
END_TEST

START_TEST(test_messages)
{
	const struct audit_diff *d;

	ent(&p, "cur/200.M2.h:2,", F, 20, 1000, 0);
	compare(false);
	d = only(AK_MISSING, "cur/200.M2.h:2,");
	ck_assert(d->primary.present);
	ck_assert_uint_eq(d->primary.size, 20);
	ck_assert_ptr_null(d->standby_path);
	teardown();

	setup();
	ent(&s, "new/300.M3.h", F, 20, 1000, 0);
	compare(false);
	d = only(AK_EXTRA, "new/300.M3.h");
	ck_assert(!d->primary.present);
}
END_TEST

/* Same base, another name: a flag change or a move from new/ to cur/, one
 * difference; a base with no counterpart stays missing or extra. */
START_TEST(test_flags)
{
	const struct audit_diff *d;

	ent(&p, "cur/200.M2.h:2,FS", F, 20, 1000, 0);
	ent(&s, "cur/200.M2.h:2,S", F, 20, 1000, 0);
	compare(false);
	d = only(AK_FLAGS, "cur/200.M2.h:2,FS");
	ck_assert_str_eq(d->standby_path, "dom/bob/Maildir/cur/200.M2.h:2,S");
	teardown();

	setup();
	ent(&p, "cur/300.M3.h:2,S", F, 20, 1000, 0);
	ent(&s, "new/300.M3.h", F, 20, 1000, 0);
	compare(false);
	d = only(AK_FLAGS, "cur/300.M3.h:2,S");
	ck_assert_str_eq(d->standby_path, "dom/bob/Maildir/new/300.M3.h");
	teardown();

	/* Two copies under one base on the standby, one here: one pairs. */
	setup();
	ent(&p, "cur/400.M4.h:2,T", F, 20, 1000, 0);
	ent(&s, "cur/400.M4.h:2,S", F, 20, 1000, 0);
	ent(&s, "new/400.M4.h", F, 20, 1000, 0);
	ent(&p, "cur/500.M5.h:2,", F, 20, 1000, 0);
	compare(false);
	ck_assert_uint_eq(out.n, 3);
	ck_assert_int_eq(out.v[0].kind, AK_FLAGS);
	ck_assert_str_eq(out.v[0].path, "dom/bob/Maildir/cur/400.M4.h:2,T");
	ck_assert_int_eq(out.v[1].kind, AK_MISSING);
	ck_assert_str_eq(out.v[1].path, "dom/bob/Maildir/cur/500.M5.h:2,");
	ck_assert_int_eq(out.v[2].kind, AK_EXTRA);
	ck_assert(strstr(out.v[2].path, "/400.M4.h") != NULL);
}
END_TEST

START_TEST(test_content)
{
	const struct audit_diff *d;

	/* Another size: found without hashes. */
	s.v[4].size = 11;
	compare(false);
	d = only(AK_CONTENT, "cur/100.M1.h,S=10:2,S");
	ck_assert(!d->by_hash);
	teardown();

	/* Same size and mtime, other bytes: only deep listings tell. */
	setup();
	p.v[4].has_hash = s.v[4].has_hash = true;
	memset(p.v[4].sha256, 1, SHA256_LEN);
	memset(s.v[4].sha256, 2, SHA256_LEN);
	compare(false);
	ck_assert_uint_eq(out.n, 0);
	compare(true);
	d = only(AK_CONTENT, "cur/100.M1.h,S=10:2,S");
	ck_assert(d->by_hash);
	ck_assert(d->primary.has_hash);
	teardown();

	/* Deep, but the standby could not hash it (vanished): no verdict. */
	setup();
	p.v[4].has_hash = true;
	memset(p.v[4].sha256, 1, SHA256_LEN);
	compare(true);
	ck_assert_uint_eq(out.n, 0);
}
END_TEST

START_TEST(test_attributes)
{
	s.v[4].mtime_ns = 999;
	compare(false);
	only(AK_ATTRIBUTES, "cur/100.M1.h,S=10:2,S");
	teardown();

	setup();
	s.v[4].mode = 0100600;
	compare(false);
	only(AK_ATTRIBUTES, "cur/100.M1.h,S=10:2,S");
	teardown();

	/* The folder's own mode: the folder path itself. */
	setup();
	s.v[0].mode = 0040700;
	compare(false);
	only(AK_ATTRIBUTES, "");
	teardown();

	/* Directory mtimes and owners are not compared. */
	setup();
	s.v[1].mtime_ns = 12345;
	s.v[4].uid = 99;
	compare(false);
	ck_assert_uint_eq(out.n, 0);
}
END_TEST

START_TEST(test_metadata)
{
	/* Removed on the standby. */
	folder_list_free(&s);
	base_folder(&s);
	free(s.v[5].name);
	s.n--;
	compare(false);
	only(AK_METADATA, "dovecot-uidlist");
	teardown();

	/* Only on the standby. */
	setup();
	ent(&s, "subscriptions", F, 5, 10, 3);
	compare(false);
	ck_assert(!only(AK_METADATA, "subscriptions")->primary.present);
	teardown();

	/* Other content, same size (metadata is always hashed). */
	setup();
	memset(s.v[5].sha256, 8, SHA256_LEN);
	compare(false);
	only(AK_METADATA, "dovecot-uidlist");
	teardown();

	/* Same content, another mtime. */
	setup();
	s.v[5].mtime_ns = 1;
	compare(false);
	only(AK_ATTRIBUTES, "dovecot-uidlist");
}
END_TEST

START_TEST(test_folders)
{
	const struct audit_diff *d;

	/* A subdirectory on one side only. */
	free(s.v[3].name);
	s.v[3] = s.v[--s.n];
	ent(&s, "courierimapkeywords", D, 0, 1, 0);
	compare(false);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_int_eq(out.v[0].kind, AK_FOLDER_EXTRA);
	ck_assert_str_eq(out.v[0].path, "dom/bob/Maildir/courierimapkeywords");
	ck_assert_int_eq(out.v[1].kind, AK_FOLDER_MISSING);
	ck_assert_str_eq(out.v[1].path, "dom/bob/Maildir/tmp");

	/* Whole folders: one difference, the folder itself. */
	audit_diffs_free(&out);
	audit_compare("dom/bob/Maildir/.Sent", &p, NULL, ':', false, &out);
	ck_assert_uint_eq(out.n, 1);
	d = &out.v[0];
	ck_assert_int_eq(d->kind, AK_FOLDER_MISSING);
	ck_assert_str_eq(d->path, "dom/bob/Maildir/.Sent");
	ck_assert(d->primary.present);
	audit_diffs_free(&out);
	audit_compare("dom/eve", NULL, &s, ':', false, &out);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.v[0].kind, AK_FOLDER_EXTRA);
	ck_assert(!out.v[0].primary.present);
	audit_diffs_free(&out);
	audit_compare("x", NULL, NULL, ':', false, &out);
	ck_assert_uint_eq(out.n, 0);

	/* A file where the other side has a directory. */
	teardown();
	setup();
	free(s.v[2].name);
	s.v[2].name = xstrdup("new");
	s.v[2].mode = F;
	compare(false);
	only(AK_CONTENT, "new");
}
END_TEST

/* In the mail root the paths carry no leading slash; the separator is
 * configurable. */
START_TEST(test_root_and_separator)
{
	ent(&p, "cur/9.M9.h;2,S", F, 1, 1, 0);
	ent(&s, "cur/9.M9.h;2,", F, 1, 1, 0);
	sorted(&p);
	sorted(&s);
	audit_compare("", &p, &s, ';', false, &out);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.v[0].kind, AK_FLAGS);
	ck_assert_str_eq(out.v[0].path, "cur/9.M9.h;2,S");
	ck_assert_str_eq(out.v[0].folder, "");
	ck_assert_str_eq(out.v[0].standby_path, "cur/9.M9.h;2,");
	audit_diffs_free(&out);
	/* With ':' as the separator those are two different messages. */
	audit_compare("", &p, &s, ':', false, &out);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_str_eq(audit_kind_name(AK_FOLDER_EXTRA), "folder_extra");
	ck_assert_str_eq(audit_kind_name((enum audit_kind)99), "unknown");
}
END_TEST

/* --------------------------------------------------------- the second look */

static struct audit_diffs first, again;

static void look(struct audit_diffs *into)
{
	sorted(&p);
	sorted(&s);
	audit_compare("dom/bob/Maildir", &p, &s, ':', false, into);
	audit_diffs_sort(into);
}

static void confirm_setup(void)
{
	setup();
	memset(&first, 0, sizeof(first));
	memset(&again, 0, sizeof(again));
	ent(&p, "cur/200.M2.h:2,", F, 20, 1000, 0);   /* missing */
	ent(&s, "cur/300.M3.h:2,", F, 20, 1000, 0);   /* extra */
	ent(&p, "cur/400.M4.h:2,FS", F, 20, 1000, 0); /* flags */
	ent(&s, "cur/400.M4.h:2,S", F, 20, 1000, 0);
	s.v[5].mtime_ns = 1; /* uidlist: attributes */
	look(&first);
	ck_assert_uint_eq(first.n, 4);
}

static void confirm_teardown(void)
{
	audit_diffs_free(&first);
	audit_diffs_free(&again);
	teardown();
}

START_TEST(test_confirm_all)
{
	look(&again);
	audit_confirm(&first, &again);
	ck_assert_uint_eq(first.n, 4);
}
END_TEST

/* What replication fixed in between is gone; what the primary changed in
 * between is not judged, even if it still differs; a difference of
 * another kind on the same path is not the same difference. */
START_TEST(test_confirm_live)
{
	for (size_t i = 0; i < p.n; i++) {
		if (strcmp(p.v[i].name, "cur/200.M2.h:2,") == 0)
			ent(&s, p.v[i].name, F, 20, 1000, 0); /* replicated */
		if (strcmp(p.v[i].name, "dovecot-uidlist") == 0)
			p.v[i].size = 41; /* rewritten here: metadata now, not attributes */
		if (strcmp(p.v[i].name, "cur/400.M4.h:2,FS") == 0)
			p.v[i].mtime_ns = 5; /* touched here */
	}
	look(&again);
	ck_assert_uint_eq(again.n, 3);
	audit_confirm(&first, &again);
	ck_assert_uint_eq(first.n, 1);
	ck_assert_int_eq(first.v[0].kind, AK_EXTRA);
	ck_assert_str_eq(first.v[0].path, "dom/bob/Maildir/cur/300.M3.h:2,");
}
END_TEST

/* A flag difference that persists takes the standby's latest name. */
START_TEST(test_confirm_latest)
{
	for (size_t i = 0; i < s.n; i++) {
		if (strcmp(s.v[i].name, "cur/400.M4.h:2,S") == 0) {
			free(s.v[i].name);
			s.v[i].name = xstrdup("cur/400.M4.h:2,T");
		}
	}
	look(&again);
	audit_confirm(&first, &again);
	ck_assert_uint_eq(first.n, 4);
	for (size_t i = 0; i < first.n; i++) {
		if (first.v[i].kind == AK_FLAGS)
			ck_assert_str_eq(first.v[i].standby_path,
					 "dom/bob/Maildir/cur/400.M4.h:2,T");
	}
	audit_diffs_free(&again);
	audit_confirm(&first, &again); /* nothing the second time: nothing kept */
	ck_assert_uint_eq(first.n, 0);
}
END_TEST

/* ------------------------------------------------------------------ limits */

/* Many messages under other names: pairing is exact and quick. */
START_TEST(test_many)
{
	size_t kinds[AK_COUNT] = {0}, renamed = 0;
	char name[64];
	int n = 20000;

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "cur/%07d.M.h:2,%s", i, i % 2 ? "S" : "");
		ent(&p, name, F, 10, 1, 0);
		if (i % 5 == 0)
			continue; /* missing on the standby */
		snprintf(name, sizeof(name), "%s/%07d.M.h%s", i % 3 ? "cur" : "new", i,
			 i % 3 ? ":2,S" : "");
		ent(&s, name, F, 10, 1, 0);
		renamed += i % 2 == 0 || i % 3 == 0; /* without S here, or in new/ there */
	}
	compare(false);
	for (size_t i = 0; i < out.n; i++)
		kinds[out.v[i].kind]++;
	ck_assert_uint_eq(kinds[AK_MISSING], (size_t)n / 5);
	ck_assert_uint_eq(kinds[AK_FLAGS], renamed);
	ck_assert_uint_eq(out.n, (size_t)n / 5 + renamed);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *suite = suite_create("audit");
	TCase *core = tcase_create("core"), *confirm = tcase_create("confirm"),
	      *limits = tcase_create("limits");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(confirm, confirm_setup, confirm_teardown);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_set_timeout(limits, 30);
	tcase_add_test(core, test_same);
	tcase_add_test(core, test_messages);
	tcase_add_test(core, test_flags);
	tcase_add_test(core, test_content);
	tcase_add_test(core, test_attributes);
	tcase_add_test(core, test_metadata);
	tcase_add_test(core, test_folders);
	tcase_add_test(core, test_root_and_separator);
	tcase_add_test(confirm, test_confirm_all);
	tcase_add_test(confirm, test_confirm_live);
	tcase_add_test(confirm, test_confirm_latest);
	tcase_add_test(limits, test_many);
	suite_add_tcase(suite, core);
	suite_add_tcase(suite, confirm);
	suite_add_tcase(suite, limits);
	return suite;
}

int main(void)
{
	return tu_run(audit_suite());
}

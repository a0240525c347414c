/*
 * check_maildir.c — the Maildir name model: base/info split with either
 * separator, size hints, flags (canonical, random round trips against a
 * model), malformed names, path classification and the user of a folder.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "maildir.h"
#include "testutil.h"

START_TEST(test_parse_full)
{
	struct md_name n;
	struct err e;
	struct slice s = slice_cstr("1700000000.M1P2.host,S=1234,W=1260:2,RS");

	ck_assert_int_eq(md_name_parse(s, ':', &n, &e), 0);
	ck_assert(slice_eq_cstr(n.base, "1700000000.M1P2.host,S=1234,W=1260"));
	ck_assert(n.has_info);
	ck_assert(slice_eq_cstr(n.info, "2,RS"));
	ck_assert(n.has_size && n.size == 1234);
	ck_assert(n.has_vsize && n.vsize == 1260);
}
END_TEST

START_TEST(test_parse_variants)
{
	struct md_name n;
	struct err e;

	ck_assert_int_eq(md_name_parse(slice_cstr("123.abc.host"), ':', &n, &e), 0);
	ck_assert(!n.has_info && !n.has_size && !n.has_vsize);
	ck_assert(slice_eq_cstr(n.base, "123.abc.host"));
	/* The other separator is just part of the base. */
	ck_assert_int_eq(md_name_parse(slice_cstr("123.h;2,S"), ':', &n, &e), 0);
	ck_assert(!n.has_info);
	ck_assert_int_eq(md_name_parse(slice_cstr("123.h;2,S"), ';', &n, &e), 0);
	ck_assert(slice_eq_cstr(n.base, "123.h") && slice_eq_cstr(n.info, "2,S"));
	/* Empty info is kept as present-but-empty. */
	ck_assert_int_eq(md_name_parse(slice_cstr("x:"), ':', &n, &e), 0);
	ck_assert(n.has_info && n.info.len == 0);
	/* Malformed size hints are ignored, not misread. */
	ck_assert_int_eq(md_name_parse(slice_cstr("x,S=12a,W=,S=:2,"), ':', &n, &e), 0);
	ck_assert(!n.has_size && !n.has_vsize);
	ck_assert_int_eq(md_name_parse(slice_cstr("x,S=99999999999999999999999"), ':', &n, &e), 0);
	ck_assert(!n.has_size);
}
END_TEST

START_TEST(test_parse_malformed)
{
	struct md_name n;
	struct err e;
	static const char *const bad[] = {"", ".hidden", ":2,S", "a/b"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(md_name_parse(slice_cstr(bad[i]), ':', &n, &e) == -1, "%s", bad[i]);
	ck_assert_int_eq(md_name_parse((struct slice){"a\0b", 3}, ':', &n, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "invalid Maildir file name"));
}
END_TEST

START_TEST(test_flags)
{
	md_flags_t f;
	struct buf b = BUF_INIT;

	ck_assert_int_eq(md_flags_parse(slice_cstr("2,TSRaFSa"), &f), 0);
	ck_assert_int_eq(md_flags_format(f, &b), 0);
	ck_assert_str_eq(buf_cstr(&b), "2,FRSTa");
	ck_assert_int_eq(md_flags_parse(slice_cstr("2,"), &f), 0);
	ck_assert_uint_eq(f, 0);
	ck_assert_int_eq(md_flags_parse(slice_cstr("1,xyz"), &f), -1);
	ck_assert_int_eq(md_flags_parse(slice_cstr("2,S1"), &f), -1);
	ck_assert_int_eq(md_flags_parse(slice_cstr("2"), &f), -1);
	buf_reset(&b);
	ck_assert_int_eq(md_name_format(slice_cstr("base"), ';', f | 1u << ('S' - 'A'), &b), 0);
	ck_assert_str_eq(buf_cstr(&b), "base;2,S");
	buf_free(&b);
}
END_TEST

/* Random flag strings: canonical output is sorted, unique, and parses back. */
START_TEST(test_flags_random)
{
	unsigned seed = 99;
	struct buf b = BUF_INIT;

	for (int i = 0; i < 5000; i++) {
		char info[40] = "2,";
		int n = rand_r(&seed) % 30, seen[128] = {0};
		md_flags_t f, g;

		for (int j = 0; j < n; j++) {
			int k = rand_r(&seed) % 52;
			info[2 + j] = k < 26 ? (char)('A' + k) : (char)('a' + k - 26);
			seen[(unsigned char)info[2 + j]] = 1;
		}
		info[2 + n] = '\0';
		ck_assert_int_eq(md_flags_parse(slice_cstr(info), &f), 0);
		buf_reset(&b);
		md_flags_format(f, &b);
		const char *out = buf_cstr(&b) + 2;
		for (size_t j = 1; out[0] && j < strlen(out); j++)
			ck_assert_int_lt(out[j - 1], out[j]);
		for (int c = 0; c < 128; c++)
			ck_assert_int_eq(seen[c], strchr(out, c) != NULL && c != 0);
		ck_assert_int_eq(md_flags_parse(buf_slice(&b), &g), 0);
		ck_assert_uint_eq(f, g);
	}
	buf_free(&b);
}
END_TEST

START_TEST(test_same_base)
{
	ck_assert(md_same_base(slice_cstr("abc:2,S"), slice_cstr("abc"), ':'));
	ck_assert(md_same_base(slice_cstr("abc:2,S"), slice_cstr("abc:2,RS"), ':'));
	ck_assert(!md_same_base(slice_cstr("abc:2,S"), slice_cstr("abd:2,S"), ':'));
	ck_assert(!md_same_base(slice_cstr(":2,S"), slice_cstr(":2,S"), ':'));
}
END_TEST

struct class_case {
	const char *path;
	bool is_dir;
	enum md_kind kind;
	const char *folder;
	bool in_new;
};

static const struct class_case class_cases[] = {
	{"dom/bob/Maildir", true, MD_DIR, "dom/bob/Maildir", false},
	{"dom/bob/Maildir/.Sent", true, MD_DIR, "dom/bob/Maildir/.Sent", false},
	{"dom/bob/Maildir/cur", true, MD_SUBDIR, "dom/bob/Maildir", false},
	{"dom/bob/Maildir/new", true, MD_SUBDIR, "dom/bob/Maildir", true},
	{"bob/tmp", true, MD_SUBDIR, "bob", false},
	{"tmp", true, MD_SUBDIR, "", false},
	{"bob/cur/1.2.h:2,S", false, MD_MESSAGE, "bob", false},
	{"bob/new/1.2.h", false, MD_MESSAGE, "bob", true},
	{"bob/.Sent/cur/9.9.h:2,", false, MD_MESSAGE, "bob/.Sent", false},
	{"bob/cur/.hidden", false, MD_OTHER, "bob", false},
	{"bob/tmp/1.2.h", false, MD_TMPFILE, "bob", false},
	{"bob/dovecot-uidlist", false, MD_META, "bob", false},
	{"bob/.Sent/dovecot-uidlist", false, MD_META, "bob/.Sent", false},
	{"bob/dovecot-uidvalidity.5f3a1b2c", false, MD_META, "bob", false},
	{"bob/maildirfolder", false, MD_META, "bob", false},
	{"bob/courierimapkeywords", true, MD_META, "bob", false},
	{"bob/courierimapkeywords/:list", false, MD_META, "bob", false},
	{"bob/dovecot.index.cache", false, MD_EXCLUDED, "bob", false},
	{"bob/dovecot.list.index.log", false, MD_EXCLUDED, "bob", false},
	{"bob/dovecot-uidlist.lock", false, MD_EXCLUDED, "bob", false},
	{"bob/custom.junk", false, MD_EXCLUDED, "bob", false}, /* from the extra pattern */
	{"bob/.Junk", true, MD_EXCLUDED, "bob", false},	       /* excluded folder */
	{"bob/notes.txt", false, MD_OTHER, "bob", false},
	{"bob/cur/sub", true, MD_OTHER, "bob/cur", false},
};

START_TEST(test_classify)
{
	char *pats[] = {"*.junk", ".Junk"};
	struct strlist extra = {pats, 2};
	struct md_rules *r = md_rules_new(':', &extra);
	const struct class_case *c = &class_cases[_i];
	struct md_class mc;

	md_classify(r, slice_cstr(c->path), c->is_dir, &mc);
	ck_assert_msg(mc.kind == c->kind, "%s: kind %d, want %d", c->path, mc.kind, c->kind);
	ck_assert_msg(slice_eq_cstr(mc.folder, c->folder), "%s: folder '%.*s', want '%s'",
		      c->path, (int)mc.folder.len, mc.folder.p, c->folder);
	ck_assert_int_eq(mc.in_new, c->in_new);
	md_rules_free(&r);
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_user_of)
{
	ck_assert(slice_eq_cstr(md_user_of(slice_cstr("dom/bob/Maildir/.Sent")), "dom/bob/Maildir"));
	ck_assert(slice_eq_cstr(md_user_of(slice_cstr("dom/bob/Maildir/.a.b/.c")), "dom/bob/Maildir"));
	ck_assert(slice_eq_cstr(md_user_of(slice_cstr("bob")), "bob"));
	ck_assert(slice_eq_cstr(md_user_of(slice_cstr(".Sent")), ".Sent"));
	ck_assert(slice_eq_cstr(md_user_of(slice_cstr("bob/.")), "bob/."));
}
END_TEST

static Suite *maildir_suite(void)
{
	Suite *s = suite_create("maildir");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors"),
	      *model = tcase_create("model");

	tcase_add_test(core, test_parse_full);
	tcase_add_test(core, test_parse_variants);
	tcase_add_test(core, test_flags);
	tcase_add_test(core, test_same_base);
	tcase_add_loop_test(core, test_classify, 0, sizeof(class_cases) / sizeof(class_cases[0]));
	tcase_add_test(core, test_user_of);
	tcase_add_test(errors, test_parse_malformed);
	tcase_set_timeout(model, 30); /* a busy 2-core CI machine */
	tcase_add_test(model, test_flags_random);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return tu_run(maildir_suite());
}

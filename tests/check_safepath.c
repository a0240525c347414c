/*
 * check_safepath.c — confinement: path validation, and every operation
 * refusing symlinks planted in the last or an intermediate component,
 * both through openat2 and through the component walk (loop index 0/1).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safepath.h"
#include "testutil.h"

static char root[PATH_MAX], outside[PATH_MAX + 16];
static int rootfd;

static void setup(void)
{
	char p[PATH_MAX + 64];

	snprintf(root, sizeof(root), "%s", tu_mkdtemp());
	snprintf(outside, sizeof(outside), "%s/outside", root);
	snprintf(p, sizeof(p), "%s/secret", outside);
	tu_write_str(p, "secret\n");
	strcat(root, "/root"); /* the confinement root is a sibling of outside/ */
	snprintf(p, sizeof(p), "%s/bob/cur/1.msg:2,S", root);
	tu_write_str(p, "hello\n");
	snprintf(p, sizeof(p), "%s/bob/new/x", root);
	tu_write_str(p, "x");
	rootfd = open(root, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(rootfd, 0);
}

static void teardown(void)
{
	close(rootfd);
	*strrchr(root, '/') = '\0';
	tu_rmtree(root);
	sp_set_use_openat2(true);
}

static void plant(const char *target, const char *rel)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	ck_assert_int_eq(symlink(target, p), 0);
}

START_TEST(test_check)
{
	struct err e;
	static const char *const bad[] = {
		"", "/etc/passwd", "a//b", "a/", "/", "..", "a/../b", "a/./b", ".", "a/..",
	};
	char longp[SP_PATH_MAX + 10], longc[SP_NAME_MAX + 10];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sp_check(slice_cstr(bad[i]), &e) == -1, "accepted '%s'", bad[i]);
	ck_assert_int_eq(sp_check((struct slice){"a\0b", 3}, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "NUL"));
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(sp_check(slice_cstr(longp), &e), -1);
	memset(longc, 'b', sizeof(longc) - 1);
	longc[sizeof(longc) - 1] = '\0';
	ck_assert_int_eq(sp_check(slice_cstr(longc), &e), -1);
	ck_assert_int_eq(e.code, ENAMETOOLONG);
	ck_assert_int_eq(sp_check(slice_cstr("a/.b/..c/...d/cur/x:2,S"), &e), 0);
}
END_TEST

START_TEST(test_open_inside)
{
	struct err e;
	char buf[16] = {0};
	int fd;

	sp_set_use_openat2(_i == 0);
	fd = sp_open(rootfd, "bob/cur/1.msg:2,S", O_RDONLY, 0, &e);
	ck_assert_msg(fd >= 0, "%s", e.msg);
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 6);
	ck_assert_str_eq(buf, "hello\n");
	close(fd);
	fd = sp_open(rootfd, "bob/cur/missing", O_RDONLY, 0, &e);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(errno, ENOENT);
	fd = sp_open(rootfd, "../outside/secret", O_RDONLY, 0, &e);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_symlink_last_component)
{
	struct err e;
	char target[PATH_MAX + 64];

	sp_set_use_openat2(_i == 0);
	snprintf(target, sizeof(target), "%s/secret", outside);
	plant(target, "bob/cur/evil");
	ck_assert_int_eq(sp_open(rootfd, "bob/cur/evil", O_RDONLY, 0, &e), -1);
	ck_assert_int_eq(errno, ELOOP);
	ck_assert_ptr_nonnull(strstr(e.msg, "symlink"));
	/* Writing through it must not touch the target. */
	ck_assert_int_eq(sp_open(rootfd, "bob/cur/evil", O_WRONLY | O_TRUNC, 0, &e), -1);
	{
		char *data = tu_read(target, NULL);
		ck_assert_str_eq(data, "secret\n");
		free(data);
	}
}
END_TEST

START_TEST(test_symlink_intermediate)
{
	struct err e;

	sp_set_use_openat2(_i == 0);
	plant(outside, "bob/link");
	ck_assert_int_eq(sp_open(rootfd, "bob/link/secret", O_RDONLY, 0, &e), -1);
	ck_assert_int_eq(errno, ELOOP);
	ck_assert_int_eq(sp_open(rootfd, "bob/link/new", O_WRONLY | O_CREAT | O_EXCL, 0600, &e),
			 -1);
	ck_assert_int_eq(sp_mkdirs(rootfd, "bob/link/cur", 0700, &e), -1);
	ck_assert_int_eq(sp_rename(rootfd, "bob/cur/1.msg:2,S", "bob/link/stolen", &e), -1);
	ck_assert_int_eq(sp_unlink(rootfd, "bob/link/secret", &e), -1);
	ck_assert_int_eq(sp_link(rootfd, "bob/cur/1.msg:2,S", "bob/link/copy", &e), -1);
	{
		char p[PATH_MAX + 64];
		struct stat st;

		snprintf(p, sizeof(p), "%s/secret", outside);
		ck_assert_int_eq(stat(p, &st), 0); /* still there */
		snprintf(p, sizeof(p), "%s/stolen", outside);
		ck_assert_int_eq(stat(p, &st), -1);
		snprintf(p, sizeof(p), "%s/new", outside);
		ck_assert_int_eq(stat(p, &st), -1);
	}
}
END_TEST

START_TEST(test_symlink_root_component)
{
	struct err e;

	sp_set_use_openat2(_i == 0);
	plant(outside, "evil");
	ck_assert_int_eq(sp_open(rootfd, "evil/secret", O_RDONLY, 0, &e), -1);
	ck_assert_int_eq(errno, ELOOP);
}
END_TEST

START_TEST(test_operations)
{
	struct err e;
	struct stat st;
	char p[PATH_MAX + 64];
	int fd;

	sp_set_use_openat2(_i == 0);
	ck_assert_int_eq(sp_mkdirs(rootfd, "alice/.Sent/cur", 0700, &e), 0);
	ck_assert_int_eq(sp_mkdirs(rootfd, "alice/.Sent/cur", 0700, &e), 0); /* idempotent */
	ck_assert_int_eq(sp_mkdir(rootfd, "alice/.Sent/new", 0700, &e), 0);
	fd = sp_open(rootfd, "alice/.Sent/new/m1", O_WRONLY | O_CREAT | O_EXCL, 0600, &e);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(sp_rename(rootfd, "alice/.Sent/new/m1", "alice/.Sent/cur/m1:2,S", &e), 0);
	ck_assert_int_eq(sp_link(rootfd, "alice/.Sent/cur/m1:2,S", "bob/cur/m1:2,", &e), 0);
	snprintf(p, sizeof(p), "%s/bob/cur/m1:2,", root);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 2);
	ck_assert_int_eq(sp_unlink(rootfd, "bob/cur/m1:2,", &e), 0);
	ck_assert_int_eq(sp_unlink(rootfd, "bob/cur/m1:2,", &e), -1);
	ck_assert_int_eq(e.code, ENOENT);
	ck_assert_int_eq(sp_rmdir(rootfd, "alice/.Sent/new", &e), 0);
	/* mkdir over a file is an error, not silently accepted. */
	ck_assert_int_eq(sp_mkdir(rootfd, "bob/new/x", 0700, &e), -1);
	ck_assert_int_eq(e.code, EEXIST);
	/* Renaming a planted symlink renames the link, never its target. */
	plant(outside, "bob/cur/lnk");
	ck_assert_int_eq(sp_rename(rootfd, "bob/cur/lnk", "bob/cur/lnk2", &e), 0);
	snprintf(p, sizeof(p), "%s/bob/cur/lnk2", root);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(sp_unlink(rootfd, "bob/cur/lnk2", &e), 0);
	snprintf(p, sizeof(p), "%s/secret", outside);
	ck_assert_int_eq(stat(p, &st), 0);
}
END_TEST

static Suite *safepath_suite(void)
{
	Suite *s = suite_create("safepath");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_test(errors, test_check);
	tcase_add_loop_test(core, test_open_inside, 0, 2);
	tcase_add_loop_test(core, test_operations, 0, 2);
	tcase_add_loop_test(errors, test_symlink_last_component, 0, 2);
	tcase_add_loop_test(errors, test_symlink_intermediate, 0, 2);
	tcase_add_loop_test(errors, test_symlink_root_component, 0, 2);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	return s;
}

int main(void)
{
	return tu_run(safepath_suite());
}

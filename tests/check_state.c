/*
 * check_state.c — durable state files: fs_write_atomic/fs_read_file,
 * fs_rmtree_at confinement, and the node state (role, generation, node id)
 * created once, persisted, locked, and refused when corrupt.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "nodestate.h"
#include "testutil.h"

static char dir[PATH_MAX];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
}

static void teardown(void)
{
	tu_rmtree(dir);
}

START_TEST(test_atomic_write_read)
{
	struct buf b = BUF_INIT;
	struct err e;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct stat st;

	ck_assert_int_eq(fs_write_atomic(dfd, "f", "one\n", 4, 0600, &e), 0);
	ck_assert_int_eq(fs_write_atomic(dfd, "f", "two!!\n", 6, 0600, &e), 0);
	ck_assert_int_eq(fs_read_file(dfd, "f", &b, 100, &e), 0);
	ck_assert_str_eq(buf_cstr(&b), "two!!\n");
	ck_assert_int_eq(fstatat(dfd, "f", &st, 0), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	/* No temporary file is left behind. */
	ck_assert_int_eq(faccessat(dfd, "f.tmp", F_OK, 0), -1);
	/* Limits and missing files. */
	ck_assert_int_eq(fs_read_file(dfd, "f", &b, 3, &e), -1);
	ck_assert_int_eq(e.code, EFBIG);
	ck_assert_int_eq(fs_read_file(dfd, "nope", &b, 100, &e), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* A symlink in place of the file is not read through. */
	ck_assert_int_eq(symlinkat("/etc/passwd", dfd, "link"), 0);
	ck_assert_int_eq(fs_read_file(dfd, "link", &b, 100000, &e), -1);
	close(dfd);
	buf_free(&b);
}
END_TEST

START_TEST(test_rmtree_no_follow)
{
	char p[PATH_MAX + 64], outside[PATH_MAX + 64];
	struct err e;
	int dfd;

	snprintf(outside, sizeof(outside), "%s/outside/keep", dir);
	tu_write_str(outside, "keep");
	snprintf(p, sizeof(p), "%s/tree/a/b/file", dir);
	tu_write_str(p, "x");
	snprintf(p, sizeof(p), "%s/tree/a/link", dir);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	ck_assert_int_eq(symlink(outside, p), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(fs_rmtree_at(dfd, "tree", &e), 0);
	ck_assert_int_eq(faccessat(dfd, "tree", F_OK, 0), -1);
	ck_assert_int_eq(faccessat(dfd, "outside/keep", F_OK, 0), 0);
	ck_assert_int_eq(fs_rmtree_at(dfd, "tree", &e), 0); /* absent: fine */
	close(dfd);
}
END_TEST

START_TEST(test_mkdir_p)
{
	char p[PATH_MAX + 64];
	struct err e;
	struct stat st;

	snprintf(p, sizeof(p), "%s/a/b/c", dir);
	ck_assert_int_eq(fs_mkdir_p(p, 0700, &e), 0);
	ck_assert_int_eq(fs_mkdir_p(p, 0700, &e), 0);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	snprintf(p, sizeof(p), "%s/file", dir);
	tu_write_str(p, "");
	snprintf(p, sizeof(p), "%s/file/sub", dir);
	ck_assert_int_eq(fs_mkdir_p(p, 0700, &e), -1);
}
END_TEST

START_TEST(test_nodestate_create_and_persist)
{
	struct node_state a, b;
	struct err e;
	char sd[PATH_MAX + 16];

	snprintf(sd, sizeof(sd), "%s/state", dir);
	ck_assert_msg(nodestate_load(sd, "primary", &a, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(a.role, ROLE_PRIMARY);
	ck_assert_uint_eq(a.generation, 1);
	/* A second load reads the same identity; initial_role is ignored now. */
	ck_assert_int_eq(nodestate_load(sd, "standby", &b, &e), 0);
	ck_assert_int_eq(b.role, ROLE_PRIMARY);
	ck_assert_int_eq(memcmp(a.node_id, b.node_id, NODE_ID_LEN), 0);
	b.role = ROLE_STANDBY;
	b.generation = 7;
	b.fenced = true;
	b.fenced_by = 9;
	ck_assert_int_eq(nodestate_save(sd, &b, &e), 0);
	ck_assert_int_eq(nodestate_load(sd, "primary", &a, &e), 0);
	ck_assert_int_eq(a.role, ROLE_STANDBY);
	ck_assert_uint_eq(a.generation, 7);
	ck_assert_uint_eq(a.max_seen_generation, 7);
	ck_assert(a.fenced);
	ck_assert_uint_eq(a.fenced_by, 9);
}
END_TEST

START_TEST(test_nodestate_distinct_ids)
{
	struct node_state a, b;
	struct err e;
	char s1[PATH_MAX + 16], s2[PATH_MAX + 16];

	snprintf(s1, sizeof(s1), "%s/s1", dir);
	snprintf(s2, sizeof(s2), "%s/s2", dir);
	ck_assert_int_eq(nodestate_load(s1, "primary", &a, &e), 0);
	ck_assert_int_eq(nodestate_load(s2, "standby", &b, &e), 0);
	ck_assert_int_ne(memcmp(a.node_id, b.node_id, NODE_ID_LEN), 0);
}
END_TEST

START_TEST(test_nodestate_corrupt)
{
	struct node_state a;
	struct err e;
	char p[PATH_MAX + 32];

	snprintf(p, sizeof(p), "%s/node.state", dir);
	tu_write_str(p, "role=primary\ngeneration=x\nnode_id=00\n");
	ck_assert_int_eq(nodestate_load(dir, "primary", &a, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "node.state:2: malformed line"));
	tu_write_str(p, "role=primary\ngeneration=3\n");
	ck_assert_int_eq(nodestate_load(dir, "primary", &a, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "missing"));
	tu_write_str(p, "role=leader\ngeneration=3\nnode_id=000102030405060708090a0b0c0d0e0f\n");
	ck_assert_int_eq(nodestate_load(dir, "primary", &a, &e), -1);
	/* Unknown keys from a newer version are tolerated. */
	tu_write_str(p, "role=standby\ngeneration=3\nnode_id=000102030405060708090a0b0c0d0e0f\n"
			"future_key=1\n");
	ck_assert_int_eq(nodestate_load(dir, "primary", &a, &e), 0);
	ck_assert_uint_eq(a.node_id[15], 15);
}
END_TEST

START_TEST(test_nodestate_lock_excludes)
{
	struct err e;
	int fd = nodestate_lock(dir, &e), status;
	pid_t pid;

	ck_assert_int_ge(fd, 0);
	pid = fork();
	if (pid == 0) {
		char p[PATH_MAX + 32];
		int f;

		snprintf(p, sizeof(p), "%s/node.lock", dir);
		f = open(p, O_RDWR);
		_exit(flock(f, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	close(fd);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_test(core, test_atomic_write_read);
	tcase_add_test(core, test_mkdir_p);
	tcase_add_test(core, test_nodestate_create_and_persist);
	tcase_add_test(core, test_nodestate_distinct_ids);
	tcase_add_test(core, test_nodestate_lock_excludes);
	tcase_add_test(errors, test_rmtree_no_follow);
	tcase_add_test(errors, test_nodestate_corrupt);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	return s;
}

int main(void)
{
	return tu_run(state_suite());
}

/*
 * check_hooks.c — the hooks runner against real executables: name order,
 * arguments and environment, output capture, skipped entries, a failing
 * hook reported while the others still run, the timeout killing a hook
 * and its process group, a background child that keeps the output pipe
 * open, and the permission checks on the directory and on each hook.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "hooks.h"
#include "testutil.h"

static char dir[PATH_MAX], hdir[PATH_MAX + 16];
static struct node_state node;
static struct hook_env env = {.event = HOOK_PROMOTE, .node = &node, .peer = "peer.example:7870"};

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	snprintf(hdir, sizeof(hdir), "%s/hooks.d", dir);
	ck_assert_int_eq(mkdir(hdir, 0755), 0);
	memset(&node, 0, sizeof(node));
	node.role = ROLE_PRIMARY;
	node.generation = 7;
	memset(node.node_id, 0xab, NODE_ID_LEN);
}

static void teardown(void)
{
	chmod(hdir, 0755);
	tu_rmtree(dir);
}

/* Writes an executable shell script hooks.d/name with the given body. */
static void hook(const char *name, const char *body, mode_t mode)
{
	char path[PATH_MAX + 64], *text;

	snprintf(path, sizeof(path), "%s/%s", hdir, name);
	text = NULL;
	ck_assert_int_ge(asprintf(&text, "#!/bin/sh\n%s\n", body), 0);
	tu_write_str(path, text);
	free(text);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static char *read_out(const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return tu_read(path, NULL);
}

/* True while pid runs (a zombie waiting for its reaper counts as gone). */
static bool alive(int pid)
{
	char path[64], line[512] = "", *paren;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	paren = strrchr(line, ')');
	return paren != NULL && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* ---------------------------------------------------------------- core */

START_TEST(test_order_env_output)
{
	char body[PATH_MAX * 2];
	struct hook_report rep;
	struct buf txt = BUF_INIT;
	struct err e;
	char *log, *envtxt;

	snprintf(body, sizeof(body), "echo \"$(basename \"$0\") $1\" >>%s/order", dir);
	hook("20-second", body, 0755);
	hook("10-first", body, 0700);
	hook("3-third", body, 0750); /* bytewise: "3" sorts after "2" */
	snprintf(body, sizeof(body),
		 "env | grep '^MDREPL_' | sort >%s/env; echo to-stdout; echo to-stderr >&2", dir);
	hook("50-env", body, 0755);
	ck_assert_int_eq(hooks_run(hdir, 5000, &env, &rep, &e), 0);
	ck_assert_uint_eq(rep.n, 4);
	ck_assert_uint_eq(rep.failed, 0);
	log = read_out("order");
	ck_assert_str_eq(log, "10-first promote\n20-second promote\n3-third promote\n");
	envtxt = read_out("env");
	ck_assert_str_eq(envtxt, "MDREPL_EVENT=promote\n"
				 "MDREPL_GENERATION=7\n"
				 "MDREPL_NODE_ID=abababababababababababababababab\n"
				 "MDREPL_PEER=peer.example:7870\n"
				 "MDREPL_ROLE=primary\n");
	ck_assert_str_eq(rep.v[3].name, "50-env");
	ck_assert_str_eq(buf_cstr(&rep.v[3].output), "to-stdout\nto-stderr\n");
	ck_assert_int_eq(rep.v[3].status, 0);
	hook_report_format(&rep, &txt);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&txt), "  10-first: ok"));
	free(log);
	free(envtxt);
	buf_free(&txt);
	hook_report_free(&rep);
}
END_TEST

START_TEST(test_skipped_and_missing)
{
	char path[PATH_MAX + 64];
	struct hook_report rep;
	struct buf txt = BUF_INIT;
	struct err e;

	hook(".hidden", "exit 1", 0755);
	hook("README", "exit 1", 0644); /* not executable */
	snprintf(path, sizeof(path), "%s/subdir", hdir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	hook("ok", "exit 0", 0755);
	ck_assert_int_eq(hooks_run(hdir, 5000, &env, &rep, &e), 0);
	ck_assert_uint_eq(rep.n, 1);
	ck_assert_str_eq(rep.v[0].name, "ok");
	hook_report_free(&rep);
	/* A missing directory: no hooks, success. */
	snprintf(path, sizeof(path), "%s/none", dir);
	ck_assert_int_eq(hooks_run(path, 5000, &env, &rep, &e), 0);
	ck_assert_uint_eq(rep.n, 0);
	hook_report_format(&rep, &txt);
	ck_assert_str_eq(buf_cstr(&txt), "  (no hooks)\n");
	buf_free(&txt);
	hook_report_free(&rep);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_failing_hook_reported)
{
	char body[PATH_MAX * 2];
	struct hook_report rep;
	struct buf txt = BUF_INIT;
	struct err e;
	char *log;

	snprintf(body, sizeof(body), "echo \"$(basename \"$0\")\" >>%s/ran", dir);
	hook("10-a", body, 0755);
	hook("20-fails", "echo 'the VIP is busy' >&2; exit 3", 0755);
	hook("30-c", body, 0755);
	ck_assert_int_eq(hooks_run(hdir, 5000, &env, &rep, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "20-fails"));
	ck_assert_uint_eq(rep.n, 3);
	ck_assert_uint_eq(rep.failed, 1);
	ck_assert_int_eq(rep.v[1].status, 3);
	ck_assert(!rep.v[1].timed_out);
	/* The hooks after the failing one still ran. */
	log = read_out("ran");
	ck_assert_str_eq(log, "10-a\n30-c\n");
	hook_report_format(&rep, &txt);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&txt), "20-fails: FAILED, exit status 3"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&txt), "      the VIP is busy\n"));
	free(log);
	buf_free(&txt);
	hook_report_free(&rep);
}
END_TEST

START_TEST(test_timeout_kills_group)
{
	char body[PATH_MAX * 2], *pid;
	struct hook_report rep;
	struct err e;
	uint64_t t0 = now_mono_ms();

	/* The hook starts a child in its process group, then hangs. */
	snprintf(body, sizeof(body), "sleep 30 & echo $! >%s/child; sleep 30", dir);
	hook("slow", body, 0755);
	hook("after", "exit 0", 0755);
	ck_assert_int_eq(hooks_run(hdir, 300, &env, &rep, &e), -1);
	ck_assert_uint_lt(now_mono_ms() - t0, 5000);
	ck_assert_uint_eq(rep.n, 2);
	ck_assert_str_eq(rep.v[1].name, "slow");
	ck_assert(rep.v[1].timed_out);
	ck_assert_int_eq(rep.v[1].status, -1);
	ck_assert_int_eq(rep.v[0].status, 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "killed after its timeout"));
	/* Its child was killed with it (give the kernel a moment to reap). */
	pid = read_out("child");
	for (int i = 0; i < 100 && alive(atoi(pid)); i++)
		usleep(10000);
	ck_assert(!alive(atoi(pid)));
	free(pid);
	hook_report_free(&rep);
}
END_TEST

START_TEST(test_background_child_does_not_stall)
{
	char body[PATH_MAX * 2], *pid;
	struct hook_report rep;
	struct err e;
	uint64_t t0 = now_mono_ms();

	/* A hook that starts a daemon which keeps stdout open, and exits. */
	snprintf(body, sizeof(body), "echo started; sleep 20 & echo $! >%s/daemon; exit 0", dir);
	hook("starts-daemon", body, 0755);
	ck_assert_int_eq(hooks_run(hdir, 10000, &env, &rep, &e), 0);
	ck_assert_uint_lt(now_mono_ms() - t0, 3000);
	ck_assert_str_eq(buf_cstr(&rep.v[0].output), "started\n");
	/* The daemon was left running. */
	pid = read_out("daemon");
	ck_assert(alive(atoi(pid)));
	kill(atoi(pid), SIGKILL);
	free(pid);
	hook_report_free(&rep);
}
END_TEST

START_TEST(test_refused_permissions)
{
	char body[PATH_MAX * 2];
	struct hook_report rep;
	struct buf txt = BUF_INIT;
	struct err e;
	char *log;

	snprintf(body, sizeof(body), "echo \"$(basename \"$0\")\" >>%s/ran", dir);
	hook("10-ok", body, 0755);
	hook("20-groupwritable", body, 0775);
	hook("30-worldwritable", body, 0757);
	ck_assert_int_eq(hooks_run(hdir, 5000, &env, &rep, &e), -1);
	ck_assert_uint_eq(rep.n, 3);
	ck_assert_uint_eq(rep.failed, 2);
	ck_assert(rep.v[1].refused);
	ck_assert(rep.v[2].refused);
	log = read_out("ran");
	ck_assert_str_eq(log, "10-ok\n");
	free(log);
	hook_report_format(&rep, &txt);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&txt), "20-groupwritable: REFUSED"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&txt), "writable by group or others"));
	hook_report_free(&rep);
	buf_free(&txt);
	/* A directory others can write to: nothing runs at all. */
	ck_assert_int_eq(chmod(hdir, 0777), 0);
	ck_assert_int_eq(hooks_run(hdir, 5000, &env, &rep, &e), -1);
	ck_assert_uint_eq(rep.n, 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "no hook was run"));
	log = read_out("ran");
	ck_assert_str_eq(log, "10-ok\n");
	free(log);
	hook_report_free(&rep);
}
END_TEST

/* ---------------------------------------------------------------- limits */

START_TEST(test_output_bounded)
{
	char path[PATH_MAX + 64];
	struct hook_report rep;
	struct err e;

	/* 200 KB of output: the hook is not blocked, 64 KiB are kept. */
	hook("chatty", "head -c 200000 /dev/zero | tr '\\0' x; echo", 0755);
	ck_assert_int_eq(hooks_run(hdir, 10000, &env, &rep, &e), 0);
	ck_assert_uint_eq(rep.v[0].output.len, HOOK_OUTPUT_MAX);
	hook_report_free(&rep);
	/* A hook that cannot be executed (bad interpreter) fails cleanly. */
	snprintf(path, sizeof(path), "%s/chatty", hdir);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/broken", hdir);
	tu_write_str(path, "#!/nonexistent/interpreter\n");
	ck_assert_int_eq(chmod(path, 0755), 0);
	ck_assert_int_eq(hooks_run(hdir, 5000, &env, &rep, &e), -1);
	ck_assert_int_eq(rep.v[0].status, 127);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rep.v[0].output), "cannot run"));
	hook_report_free(&rep);
}
END_TEST

static Suite *hooks_suite(void)
{
	Suite *s = suite_create("hooks");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors"),
	      *limits = tcase_create("limits");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_add_test(core, test_order_env_output);
	tcase_add_test(core, test_skipped_and_missing);
	tcase_add_test(errors, test_failing_hook_reported);
	tcase_add_test(errors, test_timeout_kills_group);
	tcase_add_test(errors, test_background_child_does_not_stall);
	tcase_add_test(errors, test_refused_permissions);
	tcase_add_test(limits, test_output_bounded);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	return tu_run(hooks_suite());
}

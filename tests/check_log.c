/*
 * check_log.c — logging: levels, the stderr formats (plain and journald
 * priority prefixes), %m, truncation of long messages, level parsing.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"

/* Runs fn with stderr redirected to a file; returns what was written. */
static char *capture(void (*fn)(void))
{
	const char *dir = tu_mkdtemp();
	char path[4096];
	int saved = dup(2), fd;
	char *out;

	snprintf(path, sizeof(path), "%s/stderr", dir);
	fflush(stderr);
	ck_assert_ptr_nonnull(freopen(path, "w", stderr));
	fn();
	fflush(stderr);
	fd = dup2(saved, 2);
	ck_assert_int_eq(fd, 2);
	close(saved);
	out = tu_read(path, NULL);
	tu_rmtree(dir);
	return out;
}

static void log_some(void)
{
	log_init("/usr/sbin/mdrepl-test", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	log_debug("hidden debug %d", 1);
	log_info("applied batch lsn=%d", 42);
	errno = ENOSPC;
	log_error("write failed: %m user=%s", "bob");
}

START_TEST(test_plain_format)
{
	char *out;

	unsetenv("JOURNAL_STREAM");
	out = capture(log_some);
	ck_assert_ptr_null(strstr(out, "hidden debug"));
	ck_assert_ptr_nonnull(strstr(out, "mdrepl-test["));
	ck_assert_ptr_nonnull(strstr(out, "]: info: applied batch lsn=42\n"));
	ck_assert_ptr_nonnull(strstr(out, "error: write failed: No space left on device user=bob"));
	ck_assert_ptr_null(strstr(out, "/usr/sbin"));
	free(out);
}
END_TEST

START_TEST(test_journal_prefix)
{
	char *out;

	setenv("JOURNAL_STREAM", "8:1234", 1);
	out = capture(log_some);
	ck_assert_ptr_nonnull(strstr(out, "<6>info: applied batch lsn=42\n"));
	ck_assert_ptr_nonnull(strstr(out, "<3>error: write failed"));
	free(out);
	unsetenv("JOURNAL_STREAM");
}
END_TEST

static void log_long(void)
{
	char big[5000];

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_init("t", LOG_TARGET_STDERR, LOG_LEVEL_DEBUG);
	log_warn("%s", big);
	log_debug("now visible");
}

START_TEST(test_truncation_and_debug)
{
	char *out = capture(log_long);

	ck_assert_ptr_nonnull(strstr(out, "yyy...\n"));
	ck_assert_uint_lt(strlen(out), 2200);
	ck_assert_ptr_nonnull(strstr(out, "debug: now visible"));
	free(out);
}
END_TEST

START_TEST(test_level_parse)
{
	enum log_level l;

	ck_assert_int_eq(log_level_parse("debug", &l), 0);
	ck_assert_int_eq(l, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(log_level_parse("warn", &l), 0);
	ck_assert_int_eq(l, LOG_LEVEL_WARN);
	ck_assert_int_eq(log_level_parse("verbose", &l), -1);
	log_set_level(LOG_LEVEL_ERROR);
	ck_assert(!log_enabled(LOG_LEVEL_WARN));
	ck_assert(log_enabled(LOG_LEVEL_ERROR));
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, test_plain_format);
	tcase_add_test(core, test_journal_prefix);
	tcase_add_test(core, test_level_parse);
	tcase_add_test(limits, test_truncation_and_debug);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	return tu_run(log_suite());
}

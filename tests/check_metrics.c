/*
 * check_metrics.c — Prometheus text from status objects: gauges, counters
 * with _total, booleans as 0/1, strings as labels of one info metric
 * (escaped), nested members skipped, malformed input refused; the file is
 * written whole.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "testutil.h"

START_TEST(test_render)
{
	struct buf out = BUF_INIT;
	struct err e;
	const char *json = "{\"daemon\":\"syncd\",\"role\":\"standby\",\"durable_lsn\":42,"
			   "\"lag_seconds\":0.25,\"connected\":true,\"batches\":7,"
			   "\"peer\":\"a \\\"b\\\" \\\\ c\",\"nested\":{\"x\":1,\"s\":\"}\"},"
			   "\"maybe\":null,\"fenced\":false}";

	ck_assert_msg(metrics_render("syncd", json, &out, &e) == 0, "%s", e.msg);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "# TYPE mdrepl_syncd_durable_lsn gauge\n"
						    "mdrepl_syncd_durable_lsn 42\n"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "mdrepl_syncd_lag_seconds 0.25\n"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "mdrepl_syncd_connected 1\n"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "mdrepl_syncd_fenced 0\n"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out), "# TYPE mdrepl_syncd_batches_total counter\n"
						    "mdrepl_syncd_batches_total 7\n"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&out),
				     "mdrepl_syncd_info{daemon=\"syncd\",role=\"standby\","
				     "peer=\"a \\\"b\\\" \\\\ c\"} 1\n"));
	ck_assert_ptr_null(strstr(buf_cstr(&out), "nested"));
	ck_assert_ptr_null(strstr(buf_cstr(&out), "maybe"));
	buf_free(&out);
}
END_TEST

START_TEST(test_malformed)
{
	struct buf out = BUF_INIT;
	struct err e;
	static const char *const bad[] = {"", "[]", "{\"a\"", "{\"a\":\"x", "{a:1}",
					  "{\"n\":{\"x\":1}"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(metrics_render("x", bad[i], &out, &e) == -1, "accepted %s", bad[i]);
	buf_free(&out);
}
END_TEST

START_TEST(test_write)
{
	const char *dir = tu_mkdtemp();
	char path[4200];
	struct err e;
	char *text;

	ck_assert_int_eq(metrics_write(dir, "journald", "{\"head_lsn\":5}", &e), 0);
	snprintf(path, sizeof(path), "%s/mdrepl_journald.prom", dir);
	text = tu_read(path, NULL);
	ck_assert_ptr_nonnull(strstr(text, "mdrepl_journald_head_lsn 5\n"));
	ck_assert_ptr_nonnull(strstr(text, "mdrepl_journald_info{} 1\n"));
	free(text);
	tu_rmtree(dir);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors");

	tcase_add_test(core, test_render);
	tcase_add_test(core, test_write);
	tcase_add_test(errors, test_malformed);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	return s;
}

int main(void)
{
	return tu_run(metrics_suite());
}

/*
 * check_json.c — the JSON writer: nesting and commas, escaping of quotes,
 * control characters and invalid UTF-8, numbers; output checked against
 * exact expected strings.
 */
#include "config.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "json.h"
#include "testutil.h"

START_TEST(test_nesting)
{
	struct buf b = BUF_INIT;
	struct json j;

	json_init(&j, &b);
	json_begin_obj(&j);
	json_key_str(&j, "role", "primary");
	json_key_u64(&j, "lsn", 18446744073709551615ULL);
	json_key_i64(&j, "delta", -5);
	json_key_bool(&j, "fenced", false);
	json_key(&j, "list");
	json_begin_arr(&j);
	json_u64(&j, 1);
	json_begin_obj(&j);
	json_end_obj(&j);
	json_begin_arr(&j);
	json_end_arr(&j);
	json_null(&j);
	json_end_arr(&j);
	json_key(&j, "obj");
	json_begin_obj(&j);
	json_key_double(&j, "lag", 0.25);
	json_key_double(&j, "nan", NAN);
	json_end_obj(&j);
	json_end_obj(&j);
	ck_assert_str_eq(buf_cstr(&b),
			 "{\"role\":\"primary\",\"lsn\":18446744073709551615,\"delta\":-5,"
			 "\"fenced\":false,\"list\":[1,{},[],null],\"obj\":{\"lag\":0.25,\"nan\":null}}");
	buf_free(&b);
}
END_TEST

START_TEST(test_escaping)
{
	struct buf b = BUF_INIT;
	struct json j;
	const char raw[] = "q\"b\\n\nt\tc\x01 \xc3\xa9 bad\xff\xc3 end";

	json_init(&j, &b);
	json_strn(&j, raw, sizeof(raw) - 1);
	ck_assert_str_eq(buf_cstr(&b),
			 "\"q\\\"b\\\\n\\nt\\tc\\u0001 \xc3\xa9 bad\\u00ff\\u00c3 end\"");
	buf_free(&b);
}
END_TEST

START_TEST(test_lookup)
{
	struct buf b = BUF_INIT, v = BUF_INIT;
	struct json j;

	json_init(&j, &b);
	json_begin_obj(&j);
	json_key_str(&j, "peer", "a \"quoted\" \\ name\n");
	json_key(&j, "nested");
	json_begin_obj(&j);
	json_key_u64(&j, "lag", 99);
	json_end_obj(&j);
	json_key_u64(&j, "lag", 7);
	json_key_double(&j, "secs", 0.5);
	json_key_bool(&j, "connected", true);
	json_key_str(&j, "decoy", "\"lag\":1");
	json_end_obj(&j);
	ck_assert_int_eq(json_lookup(buf_cstr(&b), "peer", &v), 0);
	ck_assert_str_eq(buf_cstr(&v), "a \"quoted\" \\ name\n");
	/* The top-level member, not the nested one or one inside a string. */
	ck_assert(json_lookup_num(buf_cstr(&b), "lag", -1) == 7);
	ck_assert(json_lookup_num(buf_cstr(&b), "secs", -1) == 0.5);
	ck_assert(json_lookup_bool(buf_cstr(&b), "connected"));
	ck_assert(!json_lookup_bool(buf_cstr(&b), "missing"));
	ck_assert_int_eq(json_lookup(buf_cstr(&b), "missing", &v), -1);
	ck_assert(json_lookup_num(buf_cstr(&b), "peer", -1) == -1);
	buf_free(&b);
	buf_free(&v);
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_names.c): a "\\u" escape cut short
 * by the end of the text made json_lookup read past the terminating NUL.
 * The text ends right before an inaccessible page, so an over-read
 * crashes even without AddressSanitizer. */
START_TEST(test_lookup_truncated_escape)
{
	static const char *const cases[] = {"{\"k\":\"\\u", "{\"k\":\"\\u0", "{\"k\":\"\\u00",
					    "{\"k\":\"\\u004", "{\"k\":\"\\u00zz\"}"};
	long page = sysconf(_SC_PAGESIZE);
	char *mem = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct buf v = BUF_INIT;

	ck_assert_ptr_ne(mem, MAP_FAILED);
	ck_assert_int_eq(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i]) + 1;
		char *text = mem + page - n;

		memcpy(text, cases[i], n);
		ck_assert_int_eq(json_lookup(text, "k", &v), -1);
	}
	memcpy(mem + page - 15, "{\"k\":\"\\u0041\"}", 15);
	ck_assert_int_eq(json_lookup(mem + page - 15, "k", &v), 0);
	ck_assert_str_eq(buf_cstr(&v), "A");
	munmap(mem, 2 * (size_t)page);
	buf_free(&v);
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *core = tcase_create("core");

	tcase_add_test(core, test_nesting);
	tcase_add_test(core, test_escaping);
	tcase_add_test(core, test_lookup);
	tcase_add_test(core, test_lookup_truncated_escape);
	suite_add_tcase(s, core);
	return s;
}

int main(void)
{
	return tu_run(json_suite());
}

/*
 * check_buf.c — the byte buffer: growth, NUL termination, maxima, and a
 * random-operation comparison against a plain array model.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "testutil.h"

START_TEST(test_append_and_cstr)
{
	struct buf b = BUF_INIT;

	ck_assert_str_eq(buf_cstr(&b), "");
	ck_assert_int_eq(buf_puts(&b, "hello"), 0);
	ck_assert_int_eq(buf_putc(&b, ' '), 0);
	ck_assert_int_eq(buf_printf(&b, "%s %d", "world", 42), 0);
	ck_assert_str_eq(buf_cstr(&b), "hello world 42");
	ck_assert_uint_eq(b.len, 14);
	buf_truncate(&b, 5);
	ck_assert_str_eq(buf_cstr(&b), "hello");
	buf_consume(&b, 2);
	ck_assert_str_eq(buf_cstr(&b), "llo");
	buf_consume(&b, 100);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(buf_cstr(&b), "");
	buf_free(&b);
}
END_TEST

START_TEST(test_binary_safe)
{
	struct buf b = BUF_INIT;
	const char bin[] = {'a', '\0', 'b', '\0'};

	ck_assert_int_eq(buf_append(&b, bin, sizeof(bin)), 0);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_int_eq(memcmp(b.data, bin, 4), 0);
	ck_assert_int_eq(b.data[4], '\0');
	buf_free(&b);
}
END_TEST

START_TEST(test_printf_grows)
{
	struct buf b = BUF_INIT;
	char big[5000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(buf_printf(&b, "<%s>", big), 0);
	ck_assert_uint_eq(b.len, sizeof(big) + 1);
	ck_assert_int_eq(b.data[0], '<');
	ck_assert_int_eq(b.data[b.len - 1], '>');
	buf_free(&b);
}
END_TEST

START_TEST(test_max_enforced)
{
	struct buf b;

	buf_init(&b, 8);
	ck_assert_int_eq(buf_append(&b, "12345678", 8), 0);
	errno = 0;
	ck_assert_int_eq(buf_putc(&b, '9'), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_str_eq(buf_cstr(&b), "12345678"); /* unchanged on failure */
	ck_assert_int_eq(buf_printf(&b, "%d", 1), -1);
	ck_assert_str_eq(buf_cstr(&b), "12345678");
	ck_assert_ptr_null(buf_space(&b, 1));
	buf_reset(&b);
	ck_assert_int_eq(buf_printf(&b, "%s", "123456789"), -1);
	ck_assert_uint_eq(b.len, 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_reserve_overflow)
{
	struct buf b = BUF_INIT;

	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX - 2), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	buf_free(&b);
}
END_TEST

START_TEST(test_space_commit)
{
	struct buf b = BUF_INIT;
	uint8_t *p = buf_space(&b, 10);

	ck_assert_ptr_nonnull(p);
	memcpy(p, "abc", 3);
	buf_commit(&b, 3);
	ck_assert_str_eq(buf_cstr(&b), "abc");
	buf_free(&b);
}
END_TEST

START_TEST(test_set_from_itself)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "prefix:value");
	ck_assert_int_eq(buf_set(&b, b.data + 7, 5), 0);
	ck_assert_str_eq(buf_cstr(&b), "value");
	buf_free(&b);
}
END_TEST

START_TEST(test_slices)
{
	struct slice a = SLICE_LIT("abc"), b = slice_cstr("abd");

	ck_assert(slice_eq_cstr(a, "abc"));
	ck_assert(!slice_eq(a, b));
	ck_assert_int_lt(slice_cmp(a, b), 0);
	ck_assert_int_lt(slice_cmp(SLICE_LIT("ab"), a), 0);
	ck_assert_int_eq(slice_cmp(a, a), 0);
	ck_assert(slice_starts_with(a, "ab"));
	ck_assert(!slice_starts_with(a, "abcd"));
}
END_TEST

/* Random appends, truncations and consumes against a plain array. */
START_TEST(test_random_model)
{
	static char model[70000];
	size_t mlen = 0;
	struct buf b;
	unsigned seed = 12345;

	buf_init(&b, sizeof(model) - 1);
	for (int i = 0; i < 20000; i++) {
		int op = rand_r(&seed) % 4;
		size_t n = (size_t)rand_r(&seed) % 300;
		char chunk[300];

		for (size_t j = 0; j < n; j++)
			chunk[j] = (char)rand_r(&seed);
		if (op <= 1) {
			int r = buf_append(&b, chunk, n);
			if (mlen + n > sizeof(model) - 1) {
				ck_assert_int_eq(r, -1);
			} else {
				ck_assert_int_eq(r, 0);
				memcpy(model + mlen, chunk, n);
				mlen += n;
			}
		} else if (op == 2) {
			size_t t = mlen ? (size_t)rand_r(&seed) % (mlen + 1) : 0;
			buf_truncate(&b, t);
			mlen = t;
		} else {
			size_t c = n < mlen ? n : mlen;
			buf_consume(&b, c);
			memmove(model, model + c, mlen - c);
			mlen -= c;
		}
		ck_assert_uint_eq(b.len, mlen);
		ck_assert(mlen == 0 || memcmp(b.data, model, mlen) == 0);
		ck_assert(b.data == NULL || b.data[b.len] == '\0');
	}
	buf_free(&b);
}
END_TEST

static Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits"),
	      *model = tcase_create("model");

	tcase_add_test(core, test_append_and_cstr);
	tcase_add_test(core, test_binary_safe);
	tcase_add_test(core, test_printf_grows);
	tcase_add_test(core, test_space_commit);
	tcase_add_test(core, test_slices);
	tcase_add_test(core, test_set_from_itself);
	tcase_add_test(limits, test_max_enforced);
	tcase_add_test(limits, test_reserve_overflow);
	tcase_set_timeout(model, 60); /* a busy 2-core CI machine */
	tcase_add_test(model, test_random_model);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return tu_run(buf_suite());
}

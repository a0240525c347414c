/*
 * check_delta.c — librsync helpers: round trips on dovecot-uidlist-like
 * files with small edits, delta size, hostile signatures and deltas,
 * output bounds, empty files.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delta.h"
#include "hash.h"
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

/* A dovecot-uidlist with n message lines. */
static void uidlist(struct buf *b, unsigned n)
{
	buf_reset(b);
	buf_printf(b, "3 V1700000000 N%u G3085f01b8f7e5d6a1d000000a1b2c3d4\n", n + 1);
	for (unsigned i = 1; i <= n; i++)
		buf_printf(b, "%u :1700%06u.M%uP%u.mail.example.org,S=%u,W=%u\n", i, i,
			   i * 7919 % 1000003, 1000 + i % 30000, 2000 + i % 9000, 2050 + i % 9000);
}

/* Opens a scratch file holding data, positioned at 0. */
static int file_with(const char *name, struct slice data)
{
	char p[PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	tu_write(p, data.p, data.len);
	fd = open(p, O_RDWR);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static int empty_file(const char *name)
{
	char p[PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Signature of basis, delta to target, patch; checks the result and
 * returns the delta's length. */
static size_t round_trip(struct slice basis, struct slice target)
{
	struct buf sig = BUF_INIT, delta = BUF_INIT, fdelta = BUF_INIT;
	int bfd = file_with("basis", basis), nfd = file_with("new", target);
	int ofd = empty_file("out");
	uint64_t size;
	size_t len;
	struct err e;
	char *got;
	char p[PATH_MAX + 64];

	ck_assert_int_eq(delta_signature(bfd, &sig, &e), 0);
	ck_assert_int_ge(sig.len, 12);
	ck_assert_int_eq(delta_make(buf_slice(&sig), target, SIZE_MAX, &delta, &e), 0);
	ck_assert_int_eq(delta_make_fd(buf_slice(&sig), nfd, SIZE_MAX, &fdelta, &e), 0);
	ck_assert(slice_eq(buf_slice(&delta), buf_slice(&fdelta)));
	ck_assert_msg(delta_patch(bfd, buf_slice(&delta), ofd, target.len, &size, &e) == 0, "%s",
		      e.msg);
	ck_assert_uint_eq(size, target.len);
	snprintf(p, sizeof(p), "%s/out", dir);
	got = tu_read(p, &len);
	ck_assert_uint_eq(len, target.len);
	ck_assert(len == 0 || memcmp(got, target.p, len) == 0);
	free(got);
	len = delta.len;
	close(bfd);
	close(nfd);
	close(ofd);
	buf_free(&sig);
	buf_free(&delta);
	buf_free(&fdelta);
	return len;
}

static const unsigned sizes[] = {80, 8000, 60000}; /* ~5 KB, ~500 KB, ~3.7 MB */

START_TEST(test_append_lines)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t dlen;

	uidlist(&a, sizes[_i]);
	uidlist(&b, sizes[_i] + 5); /* header changes (N), five lines appended */
	dlen = round_trip(buf_slice(&a), buf_slice(&b));
	ck_assert_msg(dlen < 8192 && dlen * 4 < b.len, "delta %zu bytes for %zu", dlen, b.len);
	buf_free(&a);
	buf_free(&b);
}
END_TEST

START_TEST(test_change_line)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	char *mid;
	size_t dlen;

	uidlist(&a, sizes[_i]);
	buf_set(&b, a.data, a.len);
	mid = strchr((char *)b.data + b.len / 2, ':');
	ck_assert_ptr_nonnull(mid);
	memcpy(mid, ":1800", 5); /* one line changed in the middle */
	dlen = round_trip(buf_slice(&a), buf_slice(&b));
	ck_assert_msg(dlen < 8192 && dlen * 4 < b.len, "delta %zu bytes for %zu", dlen, b.len);
	buf_free(&a);
	buf_free(&b);
}
END_TEST

START_TEST(test_empty_files)
{
	struct buf a = BUF_INIT;

	uidlist(&a, 50);
	ck_assert_uint_ge(round_trip(SLICE_LIT(""), buf_slice(&a)), a.len); /* all literal */
	round_trip(buf_slice(&a), SLICE_LIT(""));
	round_trip(SLICE_LIT(""), SLICE_LIT(""));
	round_trip(buf_slice(&a), buf_slice(&a));
	buf_free(&a);
}
END_TEST

START_TEST(test_max_len)
{
	struct buf a = BUF_INIT, sig = BUF_INIT, delta = BUF_INIT;
	int fd = empty_file("basis");
	struct err e;

	uidlist(&a, 500);
	ck_assert_int_eq(delta_signature(fd, &sig, &e), 0);
	/* Against an empty basis the delta is the whole file: not worth it. */
	ck_assert_int_eq(delta_make(buf_slice(&sig), buf_slice(&a), a.len / 2, &delta, &e), 1);
	ck_assert_int_eq(delta_make(buf_slice(&sig), buf_slice(&a), a.len + 64, &delta, &e), 0);
	close(fd);
	buf_free(&a);
	buf_free(&sig);
	buf_free(&delta);
}
END_TEST

/* A delta whose output would exceed the receiver's maximum is stopped. */
START_TEST(test_output_bound)
{
	struct buf a = BUF_INIT, sig = BUF_INIT, delta = BUF_INIT;
	int bfd = empty_file("basis"), ofd = empty_file("out");
	uint64_t size;
	struct err e;

	uidlist(&a, 3000);
	ck_assert_int_eq(delta_signature(bfd, &sig, &e), 0);
	ck_assert_int_eq(delta_make(buf_slice(&sig), buf_slice(&a), SIZE_MAX, &delta, &e), 0);
	ck_assert_int_eq(delta_patch(bfd, buf_slice(&delta), ofd, 1000, &size, &e), -1);
	ck_assert_int_eq(e.code, EFBIG);
	ck_assert_int_le(lseek(ofd, 0, SEEK_END), 1000);
	ck_assert_int_eq(delta_patch(bfd, buf_slice(&delta), ofd, a.len - 1, &size, &e), -1);
	ck_assert_int_eq(e.code, EFBIG);
	close(bfd);
	close(ofd);
	buf_free(&a);
	buf_free(&sig);
	buf_free(&delta);
}
END_TEST

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

START_TEST(test_bad_signatures)
{
	struct buf a = BUF_INIT, sig = BUF_INIT, delta = BUF_INIT, bad = BUF_INIT;
	int fd;
	struct err e;

	uidlist(&a, 200);
	fd = file_with("basis", buf_slice(&a));
	ck_assert_int_eq(delta_signature(fd, &sig, &e), 0);
	/* MD4 signatures are refused outright. */
	buf_set(&bad, sig.data, sig.len);
	put_be32((char *)bad.data, 0x72730136);
	ck_assert_int_eq(delta_make(buf_slice(&bad), buf_slice(&a), SIZE_MAX, &delta, &e), -1);
	ck_assert_int_eq(e.code, ERR_CORRUPT);
	/* A block length that would make librsync allocate a lot. */
	buf_set(&bad, sig.data, sig.len);
	put_be32((char *)bad.data + 4, 0x7fffffff);
	ck_assert_int_eq(delta_make(buf_slice(&bad), buf_slice(&a), SIZE_MAX, &delta, &e), -1);
	buf_set(&bad, sig.data, sig.len);
	put_be32((char *)bad.data + 8, 64);
	ck_assert_int_eq(delta_make(buf_slice(&bad), buf_slice(&a), SIZE_MAX, &delta, &e), -1);
	/* Truncated: inside the header, inside a block. */
	ck_assert_int_eq(
	    delta_make((struct slice){(char *)sig.data, 7}, buf_slice(&a), SIZE_MAX, &delta, &e),
	    -1);
	ck_assert_int_eq(delta_make((struct slice){(char *)sig.data, sig.len - 3}, buf_slice(&a),
				    SIZE_MAX, &delta, &e),
			 -1);
	ck_assert_int_eq(e.code, ERR_CORRUPT);
	close(fd);
	buf_free(&a);
	buf_free(&sig);
	buf_free(&delta);
	buf_free(&bad);
}
END_TEST

/* Every single-byte corruption of a delta is either refused or yields a
 * result whose SHA-256 differs (which the caller rejects); none writes
 * past the bound or hangs. */
START_TEST(test_corrupt_delta)
{
	struct buf a = BUF_INIT, b = BUF_INIT, sig = BUF_INIT, delta = BUF_INIT;
	uint8_t want[SHA256_LEN], got[SHA256_LEN];
	int bfd, ofd;
	unsigned refused = 0, mismatched = 0;
	struct err e;

	uidlist(&a, 400);
	uidlist(&b, 405);
	bfd = file_with("basis", buf_slice(&a));
	sha256_buf(b.data, b.len, want);
	ck_assert_int_eq(delta_signature(bfd, &sig, &e), 0);
	ck_assert_int_eq(delta_make(buf_slice(&sig), buf_slice(&b), SIZE_MAX, &delta, &e), 0);
	for (size_t i = 0; i < delta.len; i++) {
		uint64_t size;
		int r;

		for (int bit = 0; bit < 8; bit += 3) {
			delta.data[i] ^= (uint8_t)(1u << bit);
			ofd = empty_file("out");
			r = delta_patch(bfd, buf_slice(&delta), ofd, b.len, &size, &e);
			if (r < 0) {
				ck_assert_msg(e.code == ERR_CORRUPT || e.code == EFBIG,
					      "code %d %s", e.code, e.msg);
				refused++;
			} else {
				ck_assert_uint_le(size, b.len);
				ck_assert_int_eq(sha256_fd(ofd, got, NULL, &e), 0);
				ck_assert_msg(memcmp(got, want, SHA256_LEN) != 0,
					      "corruption at %zu went unnoticed", i);
				mismatched++;
			}
			ck_assert_int_le(lseek(ofd, 0, SEEK_END), (off_t)b.len);
			close(ofd);
			delta.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_uint_gt(refused, 0);
	ck_assert_uint_gt(mismatched, 0);
	/* Truncated delta. */
	ofd = empty_file("out");
	ck_assert_int_eq(delta_patch(bfd, (struct slice){(char *)delta.data, delta.len / 2}, ofd,
				     b.len, &(uint64_t){0}, &e),
			 -1);
	close(ofd);
	close(bfd);
	buf_free(&a);
	buf_free(&b);
	buf_free(&sig);
	buf_free(&delta);
}
END_TEST

/* A delta asking to copy from past the end of a (shorter) basis. */
START_TEST(test_wrong_basis)
{
	struct buf a = BUF_INIT, b = BUF_INIT, sig = BUF_INIT, delta = BUF_INIT;
	int bfd, sfd, ofd;
	uint64_t size;
	struct err e;

	uidlist(&a, 4000);
	uidlist(&b, 4001);
	bfd = file_with("basis", buf_slice(&a));
	ck_assert_int_eq(delta_signature(bfd, &sig, &e), 0);
	ck_assert_int_eq(delta_make(buf_slice(&sig), buf_slice(&b), SIZE_MAX, &delta, &e), 0);
	sfd = file_with("short", (struct slice){(char *)a.data, 100});
	ofd = empty_file("out");
	ck_assert_int_eq(delta_patch(sfd, buf_slice(&delta), ofd, b.len, &size, &e), -1);
	ck_assert_int_eq(e.code, ERR_CORRUPT);
	close(bfd);
	close(sfd);
	close(ofd);
	buf_free(&a);
	buf_free(&b);
	buf_free(&sig);
	buf_free(&delta);
}
END_TEST

static Suite *delta_suite(void)
{
	Suite *s = suite_create("delta");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors"),
	      *limits = tcase_create("limits");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_set_timeout(core, 30);
	tcase_set_timeout(errors, 60);
	tcase_add_loop_test(core, test_append_lines, 0, 3);
	tcase_add_loop_test(core, test_change_line, 0, 3);
	tcase_add_test(core, test_empty_files);
	tcase_add_test(limits, test_max_len);
	tcase_add_test(limits, test_output_bound);
	tcase_add_test(errors, test_bad_signatures);
	tcase_add_test(errors, test_corrupt_delta);
	tcase_add_test(errors, test_wrong_basis);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	return tu_run(delta_suite());
}

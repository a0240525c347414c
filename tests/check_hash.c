/*
 * check_hash.c — lib/hash.c: CRC-32 against zlib's at every length,
 * alignment and start value (the carry-less path folds 64 and 16 bytes at
 * a time, so the lengths around those multiples matter), SHA-256 and
 * FNV-1a against known values.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hash.h"
#include "testutil.h"

static uint8_t *random_bytes(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);

	ck_assert_ptr_nonnull(p);
	srand(seed);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
	return p;
}

START_TEST(crc_matches_zlib_every_length)
{
	const uint32_t starts[] = {0, 1, 0xdcc93655u, 0xffffffffu};
	uint8_t *data = random_bytes(1100, 7);

	for (size_t off = 0; off < 16; off += 5) {
		for (size_t len = 0; len + off <= 1100; len++) {
			for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
				uint32_t want = (uint32_t)crc32_z(starts[s], data + off, len);
				uint32_t got = crc32_update(starts[s], data + off, len);

				ck_assert_msg(got == want, "len %zu off %zu start %08x: %08x, zlib %08x",
					      len, off, starts[s], got, want);
			}
		}
	}
	free(data);
}
END_TEST

START_TEST(crc_chains_over_large_buffers)
{
	size_t n = 5u << 20;
	uint8_t *data = random_bytes(n, 11);
	uint32_t whole = crc32_update(0, data, n), parts = 0;

	ck_assert_uint_eq(whole, (uint32_t)crc32_z(0, data, n));
	/* the same bytes in uneven pieces give the same CRC */
	for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 + 1) {
		size_t len = step < n - off ? step : n - off;

		parts = crc32_update(parts, data + off, len);
	}
	ck_assert_uint_eq(parts, whole);
	data[n / 2] ^= 0x10; /* and one flipped bit changes it */
	ck_assert_uint_ne(crc32_update(0, data, n), whole);
	free(data);
}
END_TEST

START_TEST(crc_known_values)
{
	static const uint8_t frame[] = {0x03, 0x02, 0xac, 0x02}; /* docs/protocol.md §2 */
	uint8_t zeros[4096] = {0};

	ck_assert_uint_eq(crc32_update(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(crc32_update(0, frame, sizeof(frame)), 0xdcc93655u);
	ck_assert_uint_eq(crc32_update(0, zeros, sizeof(zeros)), (uint32_t)crc32_z(0, zeros, 4096));
}
END_TEST

START_TEST(sha256_and_fnv1a_known_values)
{
	uint8_t h[SHA256_LEN];
	struct buf hex = BUF_INIT;

	sha256_buf("abc", 3, h);
	hex_append(&hex, h, SHA256_LEN);
	ck_assert_str_eq(buf_cstr(&hex),
			 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_uint_eq(fnv1a(FNV1A_INIT, "", 0), FNV1A_INIT);
	ck_assert_uint_eq(fnv1a(FNV1A_INIT, "a", 1), 0xaf63dc4c8601ec8cULL);
	ck_assert_uint_eq(fnv1a(fnv1a(FNV1A_INIT, "fo", 2), "o", 1), fnv1a(FNV1A_INIT, "foo", 3));
	buf_free(&hex);
}
END_TEST

static Suite *hash_suite(void)
{
	Suite *s = suite_create("hash");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, crc_matches_zlib_every_length);
	tcase_add_test(tc, crc_chains_over_large_buffers);
	tcase_add_test(tc, crc_known_values);
	tcase_add_test(tc, sha256_and_fnv1a_known_values);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(hash_suite());
}

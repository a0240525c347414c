/*
 * hash.c — SHA-256 through OpenSSL's EVP interface, CRC-32 by carry-less
 * multiplication or through zlib (see hash.h).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "hash.h"
#include "log.h"
#include "xalloc.h"

struct sha256 {
	EVP_MD_CTX *ctx;
};

struct sha256 *sha256_new(void)
{
	struct sha256 *h = xmalloc(sizeof(*h));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL)
		log_fatal("EVP_MD_CTX_new failed");
	sha256_reset(h);
	return h;
}

void sha256_free(struct sha256 **hp)
{
	if (*hp == NULL)
		return;
	EVP_MD_CTX_free((*hp)->ctx);
	free(*hp);
	*hp = NULL;
}

void sha256_reset(struct sha256 *h)
{
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		log_fatal("EVP_DigestInit_ex(sha256) failed");
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
		log_fatal("EVP_DigestUpdate failed");
}

void sha256_final(struct sha256 *h, uint8_t out[SHA256_LEN])
{
	unsigned n = SHA256_LEN;

	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != SHA256_LEN)
		log_fatal("EVP_DigestFinal_ex failed");
	sha256_reset(h);
}

void sha256_buf(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	unsigned n = SHA256_LEN;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		log_fatal("EVP_Digest failed");
}

int sha256_fd(int fd, uint8_t out[SHA256_LEN], uint64_t *size_r, struct err *e)
{
	struct sha256 *h = sha256_new();
	uint8_t chunk[65536];
	uint64_t total = 0;
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, chunk, sizeof(chunk), off)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sha256_free(&h);
			return err_sys(e, "read failed while hashing");
		}
		sha256_update(h, chunk, (size_t)n);
		off += n;
		total += (uint64_t)n;
	}
	sha256_final(h, out);
	sha256_free(&h);
	if (size_r != NULL)
		*size_r = total;
	return 0;
}

uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* CRC-32 by carry-less multiplication (PCLMULQDQ), where the CPU has it:
 * several times zlib's table-driven speed, and every frame on the wire is
 * checked with it at both ends. The data is folded 64 bytes at a time into
 * four 128-bit lanes: a lane's value times x^512 mod P stands for it 64
 * bytes on. The lanes are then folded into one, and zlib takes those last
 * 16 bytes and the tail (fewer than 16) from there. The constants are
 * x^(512±32) and x^(128±32) mod P for the reflected polynomial, shifted
 * left one bit for the reflected product; tests/check_hash.c compares the
 * result with zlib's at every length, offset and starting value. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CRC_CLMUL_MIN 128 /* below this, zlib is as fast */

__attribute__((target("pclmul,sse2"))) static __m128i crc_fold(__m128i x, __m128i k)
{
	return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}
__attribute__((target("pclmul,sse2"))) static uint32_t crc32_clmul(uint32_t crc, const uint8_t *p,
								size_t len)
{
	const __m128i k512 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
	const __m128i k128 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
	__m128i x0 = _mm_loadu_si128((const __m128i *)p), x1, x2, x3;
	uint8_t last[16];
	size_t off = 64;

	x1 = _mm_loadu_si128((const __m128i *)(p + 16));
	x2 = _mm_loadu_si128((const __m128i *)(p + 32));
	x3 = _mm_loadu_si128((const __m128i *)(p + 48));
	x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)~crc)); /* the start value */
	for (; len - off >= 64; off += 64) {
		x0 = _mm_xor_si128(crc_fold(x0, k512), _mm_loadu_si128((const __m128i *)(p + off)));
		x1 = _mm_xor_si128(crc_fold(x1, k512),
				   _mm_loadu_si128((const __m128i *)(p + off + 16)));
		x2 = _mm_xor_si128(crc_fold(x2, k512),
				   _mm_loadu_si128((const __m128i *)(p + off + 32)));
		x3 = _mm_xor_si128(crc_fold(x3, k512),
				   _mm_loadu_si128((const __m128i *)(p + off + 48)));
	}
	x0 = _mm_xor_si128(crc_fold(x0, k128), x1);
	x0 = _mm_xor_si128(crc_fold(x0, k128), x2);
	x0 = _mm_xor_si128(crc_fold(x0, k128), x3);
	for (; len - off >= 16; off += 16)
		x0 = _mm_xor_si128(crc_fold(x0, k128), _mm_loadu_si128((const __m128i *)(p + off)));
	_mm_storeu_si128((__m128i *)last, x0);
	/* last now stands for everything before the tail, from a zero start */
	crc = (uint32_t)crc32_z(0xffffffffu, last, sizeof(last));
	return (uint32_t)crc32_z(crc, p + off, len - off);
}

#endif

uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
#ifdef CRC_CLMUL_MIN
	if (len >= CRC_CLMUL_MIN && __builtin_cpu_supports("pclmul")) /* a load and a test */
		return crc32_clmul(crc, data, len);
#endif
	return (uint32_t)crc32_z(crc, data, len);
}

int hex_append(struct buf *out, const uint8_t *data, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		char two[2] = {digits[data[i] >> 4], digits[data[i] & 15]};
		if (buf_append(out, two, 2) < 0)
			return -1;
	}
	return 0;
}

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_parse(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;
	int hi = -1;

	for (; *s != '\0'; s++) {
		int v;

		if (*s == ':')
			continue;
		v = hex_value(*s);
		if (v < 0 || got == n)
			return -1;
		if (hi < 0) {
			hi = v;
		} else {
			out[got++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return got == n && hi < 0 ? 0 : -1;
}

/*
 * hash.c — SHA-256 through OpenSSL's EVP interface, CRC-32 through zlib
 * (see hash.h).
 */
#include "config.h"

#include <errno.h>
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

uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
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

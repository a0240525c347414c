/*
 * hash.h — SHA-256 (content identity, digests), CRC-32 (framing and
 * journal records) and FNV-1a (hash tables), with hex helpers.
 */
#ifndef MDREPL_HASH_H
#define MDREPL_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SHA256_LEN 32

struct sha256;

struct sha256 *sha256_new(void);
void sha256_free(struct sha256 **h);
void sha256_reset(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
void sha256_final(struct sha256 *h, uint8_t out[SHA256_LEN]);
/* One-shot. */
void sha256_buf(const void *data, size_t len, uint8_t out[SHA256_LEN]);
/* Hashes an open file from offset 0; returns 0 or -1. *size_r gets the length. */
int sha256_fd(int fd, uint8_t out[SHA256_LEN], uint64_t *size_r, struct err *e);

/* CRC-32 (zlib polynomial), chainable: crc = crc32_update(crc, p, n), start at 0. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

/* FNV-1a, chainable: h = fnv1a(FNV1A_INIT, p, n), then h = fnv1a(h, ...).
 * For hash tables, not for anything an attacker could aim at. */
#define FNV1A_INIT 14695981039346656037ULL
uint64_t fnv1a(uint64_t h, const void *data, size_t len);

/* Appends lowercase hex of n bytes. */
int hex_append(struct buf *out, const uint8_t *data, size_t n);
/* The value of one hex digit (either case), or -1. */
int hex_value(char c);
/* Parses exactly 2*n hex digits (colons ignored); returns 0 or -1. */
int hex_parse(const char *s, uint8_t *out, size_t n);

#endif

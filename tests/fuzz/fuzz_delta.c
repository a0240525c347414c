/*
 * fuzz_delta.c — libFuzzer target for librsync signatures and deltas as
 * they come from the peer (lib/delta.c), `make fuzz`, see
 * tests/fuzz/README.
 *
 * Input: byte 0 = mode, bytes 1..2 = length n of part A (little endian),
 * then A (n bytes), then B (the rest).
 *
 *   mode % 3 == 0: the primary gets a hostile signature: delta_make(sig=A,
 *                  data=B). No crash, no hang, no delta longer than asked.
 *   mode % 3 == 1: the standby gets a hostile delta: delta_patch(basis=A,
 *                  delta=B). The result is bounded by max_out, and the size
 *                  reported is what was written.
 *   mode % 3 == 2: round trip of honest peers: sign A, delta to B, patch A
 *                  with it: the result must be B exactly.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta.h"
#include "fsutil.h"
#include "fuzzutil.h"

#define MAX_OUT (256 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_scratch(); /* quiet logging */
	return 0;
}

static int mem_file(const char *name, struct slice content)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0 || fs_write_all(fd, content.p, content.len) < 0)
		abort();
	return fd;
}

/* Patches basis with delta; returns the result (caller frees) or NULL. */
static char *patch(struct slice basis, struct slice delta, uint64_t max_out, uint64_t *size_r)
{
	int bfd = mem_file("basis", basis), ofd = mem_file("out", (struct slice){"", 0});
	struct err e = {0};
	struct stat st;
	char *out = NULL;
	int r = delta_patch(bfd, delta, ofd, max_out, size_r, &e);

	if (fstat(ofd, &st) < 0 || (uint64_t)st.st_size > max_out)
		abort();
	if (r == 0) {
		if ((uint64_t)st.st_size != *size_r)
			abort();
		out = malloc(*size_r + 1);
		if (pread(ofd, out, *size_r, 0) != (ssize_t)*size_r)
			abort();
	} else if (e.code == 0) {
		abort();
	}
	close(bfd);
	close(ofd);
	return out;
}

static void hostile_sig(struct slice a, struct slice b)
{
	struct buf delta = BUF_INIT;
	struct err e = {0};
	int r = delta_make(a, b, MAX_OUT, &delta, &e);

	if ((r == 0 && delta.len > MAX_OUT) || (r < 0 && e.code != ERR_CORRUPT))
		abort();
	buf_free(&delta);
}

static void hostile_delta(struct slice a, struct slice b)
{
	uint64_t size = 0;
	char *out = patch(a, b, MAX_OUT, &size);

	free(out);
}

static void round_trip(struct slice a, struct slice b)
{
	struct buf sig = BUF_INIT, delta = BUF_INIT;
	struct err e = {0};
	uint64_t size = 0;
	char *out;

	if (delta_signature_buf(a, &sig, &e) < 0 ||
	    delta_make(buf_slice(&sig), b, 4 * b.len + 1024, &delta, &e) != 0)
		abort();
	out = patch(a, buf_slice(&delta), b.len, &size);
	if (out == NULL || size != b.len || memcmp(out, b.p, b.len) != 0)
		abort();
	free(out);
	buf_free(&sig);
	buf_free(&delta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice a, b;
	size_t n;

	if (size < 3)
		return 0;
	n = (size_t)data[1] | (size_t)data[2] << 8;
	if (n > size - 3)
		n = size - 3;
	a = (struct slice){(const char *)data + 3, n};
	b = (struct slice){(const char *)data + 3 + n, size - 3 - n};
	switch (data[0] % 3) {
	case 0: hostile_sig(a, b); break;
	case 1: hostile_delta(a, b); break;
	default: round_trip(a, b); break;
	}
	return 0;
}

/*
 * gen_corpus.c — writes the fuzz seed corpus (`make fuzz-corpus`): each
 * sample message of tests/wiresamples.c as a whole frame (frame-NN) and as
 * type byte + payload (msg-NN), and all frames back to back (stream).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "wiresamples.h"

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct buf frame = BUF_INIT, all = BUF_INIT;
	char name[32];

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	for (size_t i = 0; i < ws_count(); i++) {
		union w_msg m;
		struct w_frame f;
		size_t used;
		uint8_t t = ws_sample(i, &m);

		buf_reset(&frame);
		if (wire_encode(&frame, t, &m, NULL) < 0 ||
		    wire_frame_parse(frame.data, frame.len, &f, &used, NULL) != 1)
			abort();
		snprintf(name, sizeof(name), "frame-%02zu", i);
		write_file(argv[1], name, frame.data, frame.len);
		buf_append(&all, frame.data, frame.len);
		/* Type byte + payload: overwrite the header in place. */
		snprintf(name, sizeof(name), "msg-%02zu", i);
		frame.data[f.payload - frame.data - 1] = t;
		write_file(argv[1], name, f.payload - 1, f.len + 1);
	}
	write_file(argv[1], "stream", all.data, all.len);
	buf_free(&frame);
	buf_free(&all);
	return 0;
}

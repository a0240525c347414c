/*
 * rawclient.c — sends hand-made, hostile protocol input to a plaintext
 * mdrepl-syncd on 127.0.0.1 and prints what came back, for
 * tests/e2e/hostile.sh.
 *
 *   rawclient PORT SCENARIO
 *
 * Scenarios: dotdot, absolute, symlink-target (PUT through dom0/link),
 * oversize (a frame header announcing 100 MB), truncated (a PUT whose body
 * is shorter than its size), badcrc, badversion, badmagic, lowgen (HELLO
 * with generation 0), tmpdir (PUT into a tmp/ directory), fifo (SIG_REQ and
 * READ_REQ for dom0/user0/Maildir/cur/fifo:2, — a FIFO a local user
 * planted — then the end of the request stream).
 * Output: one line per frame received ("ACK status=7 text=..." /
 * "ERROR code=2 text=..." / "HELLO ...") then "EOF" when the server
 * closed the connection.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsutil.h"
#include "hash.h"
#include "wire.h"

static int sock_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(2);
	}
	return fd;
}

static void send_msg(int fd, uint8_t type, const union w_msg *m)
{
	struct buf out = BUF_INIT;
	struct err e;

	if (wire_encode(&out, type, m, &e) < 0) {
		fprintf(stderr, "encode: %s\n", e.msg);
		exit(2);
	}
	fs_write_all(fd, out.data, out.len);
	buf_free(&out);
}

static void hello(int fd, uint32_t vmin, uint32_t vmax, const char *magic, uint64_t gen)
{
	union w_msg m = {.hello = {.magic = slice_cstr(magic), .ver_min = vmin, .ver_max = vmax,
				   .role = ROLE_PRIMARY, .generation = gen,
				   .purpose = PURPOSE_SYNC, .software = SLICE_LIT("rawclient")}};

	memset(m.hello.node_id, 0x42, NODE_ID_LEN);
	send_msg(fd, W_HELLO, &m);
}

static void put(int fd, const char *path, const char *body, uint64_t size)
{
	union w_msg m = {.put = {.path = slice_cstr(path), .size = size, .mode = 0600,
				 .uid = UINT32_MAX, .gid = UINT32_MAX, .raw_len = (uint32_t)size,
				 .body = slice_cstr(body)}};
	union w_msg b = {.batch_end = {.seq = 1, .lsn = 0}};

	sha256_buf(body, strlen(body), m.put.sha256);
	send_msg(fd, W_PUT, &m);
	send_msg(fd, W_BATCH_END, &b);
}

/* A chunked PUT announcing 1000 bytes whose last chunk ends after 10. */
static void put_truncated(int fd, const char *path)
{
	union w_msg m = {.put = {.path = slice_cstr(path), .size = 1000, .mode = 0600,
				 .uid = UINT32_MAX, .gid = UINT32_MAX, .flags = WF_CHUNKED,
				 .xfer_id = 1}};
	union w_msg d = {.data = {.xfer_id = 1, .flags = WF_LAST, .raw_len = 10,
				  .body = SLICE_LIT("only ten!!")}};
	union w_msg b = {.batch_end = {.seq = 1, .lsn = 0}};

	send_msg(fd, W_PUT, &m);
	send_msg(fd, W_DATA, &d);
	send_msg(fd, W_BATCH_END, &b);
}

/* Asks for the signature and the content of a FIFO, then stops sending. */
static void query_fifo(int fd)
{
	union w_msg sig = {.sig_req = {.id = 1, .path = SLICE_LIT("dom0/user0/Maildir/cur/fifo:2,")}};
	union w_msg rd = {.read_req = {.id = 2, .path = sig.sig_req.path}};

	send_msg(fd, W_SIG_REQ, &sig);
	send_msg(fd, W_READ_REQ, &rd);
	shutdown(fd, SHUT_WR);
}

/* Prints every frame until the server closes (bounded by 10 s). */
static void print_replies(int fd)
{
	struct buf in = BUF_INIT;
	uint64_t deadline = now_mono_ms() + 10000;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		struct w_frame f;
		union w_msg m;
		struct err e;
		size_t used;
		uint8_t *space;
		ssize_t n;

		while (wire_frame_parse(in.data, in.len, &f, &used, &e) == 1) {
			if (wire_decode(&f, &m, &e) < 0)
				printf("UNDECODABLE %s\n", e.msg);
			else if (f.type == W_ERROR)
				printf("ERROR code=%u (%s) text=%.*s\n", m.error.code,
				       wire_errcode_name(m.error.code), (int)m.error.text.len,
				       m.error.text.p);
			else if (f.type == W_ACK)
				printf("ACK status=%u (%s) text=%.*s\n", m.ack.status,
				       wire_errcode_name(m.ack.status), (int)m.ack.text.len,
				       m.ack.text.p);
			else
				printf("%s\n", wire_type_name(f.type));
			buf_consume(&in, used);
		}
		if (now_mono_ms() > deadline) {
			printf("TIMEOUT\n");
			break;
		}
		if (poll(&p, 1, 200) <= 0)
			continue;
		space = buf_space(&in, 65536);
		n = read(fd, space, 65536);
		if (n <= 0) {
			printf("EOF\n");
			break;
		}
		buf_commit(&in, (size_t)n);
	}
	buf_free(&in);
}

int main(int argc, char **argv)
{
	const char *s;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: rawclient PORT SCENARIO\n");
		return 2;
	}
	s = argv[2];
	fd = sock_connect(atoi(argv[1]));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(s, "badversion") == 0) {
		hello(fd, 99, 99, WIRE_MAGIC, 1);
	} else if (strcmp(s, "badmagic") == 0) {
		hello(fd, 1, 1, "NOTUS!", 1);
	} else if (strcmp(s, "lowgen") == 0) {
		hello(fd, 1, 1, WIRE_MAGIC, 0);
	} else if (strcmp(s, "oversize") == 0) {
		/* type PUT, varint length 100 MB, and nothing more */
		const uint8_t hdr[] = {W_PUT, 0x80, 0x80, 0x80, 0x32};

		hello(fd, 1, 1, WIRE_MAGIC, 1000);
		fs_write_all(fd, hdr, sizeof(hdr));
	} else if (strcmp(s, "badcrc") == 0) {
		struct buf out = BUF_INIT;
		union w_msg m = {.ping = {.token = 7}};
		struct err e;

		hello(fd, 1, 1, WIRE_MAGIC, 1000);
		wire_encode(&out, W_PING, &m, &e);
		out.data[out.len - 1] ^= 0x5a;
		fs_write_all(fd, out.data, out.len);
		buf_free(&out);
	} else {
		hello(fd, 1, 1, WIRE_MAGIC, 1000);
		if (strcmp(s, "dotdot") == 0)
			put(fd, "dom0/../../escape-dotdot", "evil\n", 5);
		else if (strcmp(s, "absolute") == 0)
			put(fd, "/tmp/mdrepl-escape-absolute", "evil\n", 5);
		else if (strcmp(s, "symlink-target") == 0)
			put(fd, "dom0/link/cur/evil:2,", "evil\n", 5);
		else if (strcmp(s, "tmpdir") == 0)
			put(fd, "dom0/user0/Maildir/tmp/evil", "evil\n", 5);
		else if (strcmp(s, "fifo") == 0)
			query_fifo(fd);
		else if (strcmp(s, "truncated") == 0)
			put_truncated(fd, "dom0/user0/Maildir/cur/short:2,");
		else {
			fprintf(stderr, "unknown scenario %s\n", s);
			return 2;
		}
	}
	print_replies(fd);
	close(fd);
	return 0;
}

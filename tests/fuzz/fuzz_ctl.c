/*
 * fuzz_ctl.c — libFuzzer target for the control sockets' request reader
 * (lib/ctlsock.c: ctl_accept reading and splitting a request), `make
 * fuzz`, see tests/fuzz/README.
 *
 * Each input is sent as one request over a real Unix socket in the
 * scratch directory, the way mdreplctl sends one. Oracle beyond "no
 * crash": an accepted request is exactly its arguments, each followed by
 * a NUL byte, at most CTL_MAX_ARGS of them; anything else is refused.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlsock.h"
#include "fsutil.h"
#include "fuzzutil.h"

#define MAX_INPUT (64 * 1024) /* fits the socket buffer: no writer thread */

static char path[600];
static int lfd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct err e;

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "%s/ctl.sock", fz_scratch());
	lfd = ctl_listen(path, &e);
	if (lfd < 0) {
		fprintf(stderr, "%s\n", e.msg);
		abort();
	}
	return 0;
}

static int connect_and_send(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fs_write_all(fd, data, size) < 0 || shutdown(fd, SHUT_WR) < 0)
		abort();
	return fd;
}

static void check(const struct ctl_request *req, const uint8_t *data, size_t size)
{
	struct buf joined = BUF_INIT;

	if (req->argc < 1 || req->argc > CTL_MAX_ARGS || req->argv[req->argc] != NULL)
		abort();
	for (int i = 0; i < req->argc; i++)
		buf_append(&joined, req->argv[i], strlen(req->argv[i]) + 1);
	if (joined.len != size || memcmp(joined.data, data, size) != 0)
		abort();
	buf_free(&joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request req;
	struct err e = {0};
	size_t nuls = 0;
	int fd, cfd;

	if (size > MAX_INPUT)
		return 0;
	fd = connect_and_send(data, size);
	cfd = ctl_accept(lfd, &req, 1000, &e);
	for (size_t i = 0; i < size; i++)
		nuls += data[i] == 0;
	if (cfd >= 0) {
		check(&req, data, size);
		ctl_reply(cfd, "ok", 2);
		ctl_request_free(&req);
	} else if (size > 0 && data[size - 1] == 0 && nuls <= CTL_MAX_ARGS) {
		fprintf(stderr, "well-formed request refused: %s\n", e.msg);
		abort();
	}
	close(fd);
	return 0;
}

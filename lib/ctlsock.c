/*
 * ctlsock.c — local control sockets (see ctlsock.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlsock.h"
#include "fsutil.h"

static int make_addr(const char *path, struct sockaddr_un *sa, struct err *e)
{
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n >= sizeof(sa->sun_path))
		return err_set(e, ENAMETOOLONG,
			       "socket path %s is longer than %zu bytes; use a shorter state_dir",
			       path, sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

int ctl_path(const char *state_dir, const char *name, struct buf *out, struct err *e)
{
	struct sockaddr_un sa;

	buf_reset(out);
	buf_printf(out, "%s/%s", state_dir, name);
	return make_addr(buf_cstr(out), &sa, e);
}

int ctl_listen(const char *path, struct err *e)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd;

	if (make_addr(path, &sa, e) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_sys(e, "socket");
	unlink(path); /* a stale socket from a previous run */
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		err_sys(e, "cannot bind control socket %s", path);
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, 16) < 0) {
		err_sys(e, "listen on %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

void ctl_request_free(struct ctl_request *req)
{
	buf_free(&req->raw);
	req->argc = 0;
	req->argv[0] = NULL;
}

/* Reads until EOF or the deadline into req->raw. */
static int read_request(int cfd, struct ctl_request *req, int timeout_ms, struct err *e)
{
	uint64_t deadline = now_mono_ms() + (uint64_t)timeout_ms;

	for (;;) {
		uint8_t *space = buf_space(&req->raw, 4096);
		struct pollfd pfd = {cfd, POLLIN, 0};
		int64_t left = (int64_t)(deadline - now_mono_ms());
		ssize_t n;

		if (space == NULL)
			return err_set(e, EMSGSIZE, "control request larger than %d bytes",
				       CTL_MAX_REQUEST);
		if (left <= 0)
			return err_set(e, ETIMEDOUT, "control client sent no complete request");
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return err_sys(e, "poll");
		n = read(cfd, space, 4096);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return err_sys(e, "read from control client");
		}
		if (n == 0)
			return 0;
		buf_commit(&req->raw, (size_t)n);
	}
}

/* Splits the NUL-terminated strings of req->raw into argv. */
static int split_request(struct ctl_request *req, struct err *e)
{
	char *p = (char *)req->raw.data, *end = p + req->raw.len;

	req->argc = 0;
	if (req->raw.len == 0 || end[-1] != '\0')
		return err_set(e, ERR_PROTO, "malformed control request");
	while (p < end) {
		if (req->argc == CTL_MAX_ARGS)
			return err_set(e, ERR_PROTO, "too many arguments in control request");
		req->argv[req->argc++] = p;
		p += strlen(p) + 1;
	}
	req->argv[req->argc] = NULL;
	return 0;
}

int ctl_accept(int lfd, struct ctl_request *req, int timeout_ms, struct err *e)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int cfd;

	buf_init(&req->raw, CTL_MAX_REQUEST);
	req->argc = 0;
	req->argv[0] = NULL;
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return err_sys(e, "accept on control socket");
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		err_set(e, EPERM, "control client uid %ld refused", (long)cred.uid);
		close(cfd);
		return -1;
	}
	if (read_request(cfd, req, timeout_ms, e) < 0 || split_request(req, e) < 0) {
		close(cfd);
		buf_free(&req->raw);
		return -1;
	}
	return cfd;
}

void ctl_reply(int cfd, const void *data, size_t len)
{
	int flags = fcntl(cfd, F_GETFL);

	/* Blocking for the reply: it is small and the client is reading; the
	 * send timeout bounds a client that stops reading. */
	struct timeval tv = {2, 0};
	if (flags >= 0)
		fcntl(cfd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fs_write_all(cfd, data, len);
	close(cfd);
}

int ctl_call(const char *path, int argc, const char *const *argv, struct buf *out,
	     int timeout_ms, struct err *e)
{
	struct sockaddr_un sa;
	struct buf req = BUF_INIT;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int fd, r = -1;

	buf_reset(out);
	if (make_addr(path, &sa, e) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, "socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err_sys(e, "cannot connect to %s", path);
		goto out;
	}
	for (int i = 0; i < argc; i++)
		buf_append(&req, argv[i], strlen(argv[i]) + 1);
	if (fs_write_all(fd, req.data, req.len) < 0 || shutdown(fd, SHUT_WR) < 0) {
		err_sys(e, "cannot send request to %s", path);
		goto out;
	}
	for (;;) {
		uint8_t *space = buf_space(out, 4096);
		ssize_t n;

		if (space == NULL) {
			err_set(e, EMSGSIZE, "reply from %s too large", path);
			goto out;
		}
		n = read(fd, space, 4096);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_sys(e, "cannot read reply from %s", path);
			goto out;
		}
		if (n == 0)
			break;
		buf_commit(out, (size_t)n);
	}
	r = 0;
out:
	close(fd);
	buf_free(&req);
	return r;
}

/*
 * check_ctlsock.c — control sockets: binary-safe argument round trip
 * between processes, daemon-not-running errors, request limits and
 * timeouts, socket path length, the socket's mode and the peer uid check;
 * and systemd notification datagrams (daemon.c) received on a socket the
 * test owns, path and abstract.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlsock.h"
#include "daemon.h"
#include "testutil.h"

static char dir[PATH_MAX], sock[PATH_MAX + 32];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s", tu_mkdtemp());
	snprintf(sock, sizeof(sock), "%s/test.sock", dir);
}

static void teardown(void)
{
	tu_rmtree(dir);
}

/* Child: serves n requests, replying with the arguments joined by '|'. */
static pid_t serve(int n)
{
	struct err e;
	int lfd = ctl_listen(sock, &e);
	pid_t pid;

	ck_assert_msg(lfd >= 0, "%s", e.msg);
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < n; i++) {
			struct pollfd p = {lfd, POLLIN, 0};
			struct ctl_request req;
			struct buf out = BUF_INIT;
			int cfd;

			poll(&p, 1, 5000);
			cfd = ctl_accept(lfd, &req, 500, &e);
			if (cfd < 0)
				continue;
			for (int a = 0; a < req.argc; a++)
				buf_printf(&out, "%s%s", a ? "|" : "", req.argv[a]);
			ctl_reply(cfd, out.data, out.len);
			ctl_request_free(&req);
			buf_free(&out);
		}
		_exit(0);
	}
	close(lfd);
	return pid;
}

START_TEST(test_round_trip)
{
	const char *argv[] = {"notify", "dom/bob/cur/a b:2,S", "new\nline", ""};
	struct buf out = BUF_INIT;
	struct err e;
	pid_t pid = serve(1);

	ck_assert_msg(ctl_call(sock, 4, argv, &out, 2000, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(buf_cstr(&out), "notify|dom/bob/cur/a b:2,S|new\nline|");
	waitpid(pid, NULL, 0);
	buf_free(&out);
}
END_TEST

START_TEST(test_not_running)
{
	const char *argv[] = {"status"};
	struct buf out = BUF_INIT;
	struct err e;

	ck_assert_int_eq(ctl_call(sock, 1, argv, &out, 500, &e), -1);
	ck_assert_int_eq(e.code, ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "cannot connect to"));
	buf_free(&out);
}
END_TEST

START_TEST(test_silent_client_times_out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_request req;
	struct err e;
	int lfd = ctl_listen(sock, &e), c;

	ck_assert_int_ge(lfd, 0);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* Connected but sends nothing: accept gives up after the timeout. */
	ck_assert_int_eq(ctl_accept(lfd, &req, 200, &e), -1);
	ck_assert_int_eq(e.code, ETIMEDOUT);
	close(c);
	close(lfd);
}
END_TEST

START_TEST(test_oversized_request)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_request req;
	struct err e;
	int lfd = ctl_listen(sock, &e), c;
	pid_t pid;

	ck_assert_int_ge(lfd, 0);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	pid = fork();
	if (pid == 0) {
		static char big[CTL_MAX_REQUEST + 8192];

		c = socket(AF_UNIX, SOCK_STREAM, 0);
		connect(c, (struct sockaddr *)&sa, sizeof(sa));
		memset(big, 'a', sizeof(big));
		(void)!write(c, big, sizeof(big));
		_exit(0);
	}
	{
		struct pollfd p = {lfd, POLLIN, 0};
		poll(&p, 1, 5000);
	}
	ck_assert_int_eq(ctl_accept(lfd, &req, 3000, &e), -1);
	ck_assert_int_eq(e.code, EMSGSIZE);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(lfd);
}
END_TEST

/* The socket is created for its owner only (umask 0077), and even when
 * its permissions are opened up, a client with another uid (not root) is
 * refused by SO_PEERCRED. The second half needs root, to connect as
 * another user. */
START_TEST(test_other_uid_refused)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_request req;
	struct stat st;
	struct err e;
	int lfd = ctl_listen(sock, &e), status;
	pid_t pid;

	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert_uint_eq(st.st_mode & 077, 0);
	if (geteuid() != 0) {
		close(lfd);
		return;
	}
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(chmod(sock, 0666), 0);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	pid = fork();
	if (pid == 0) {
		int c;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		/* The server may have refused (closed) before the request is
		 * written: that is EPIPE here, not a death by SIGPIPE. */
		signal(SIGPIPE, SIG_IGN);
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(4);
		/* The server may close before this is written: no SIGPIPE. */
		(void)!send(c, "status", 7, MSG_NOSIGNAL);
		shutdown(c, SHUT_WR);
		/* Refused: the server closes (or resets) without a reply. */
		_exit(read(c, &st, 1) <= 0 ? 0 : 5);
	}
	{
		struct pollfd p = {lfd, POLLIN, 0};
		poll(&p, 1, 5000);
	}
	ck_assert_int_eq(ctl_accept(lfd, &req, 3000, &e), -1);
	ck_assert_int_eq(e.code, EPERM);
	ck_assert_ptr_nonnull(strstr(e.msg, "uid 65534 refused"));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client status %d", status);
	close(lfd);
}
END_TEST

START_TEST(test_path_too_long)
{
	struct buf p = BUF_INIT;
	struct err e;
	char longdir[300];

	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	ck_assert_int_eq(ctl_path(longdir, "syncd.sock", &p, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "use a shorter state_dir"));
	ck_assert_int_eq(ctl_path("/var/lib/mdrepl", "syncd.sock", &p, &e), 0);
	ck_assert_str_eq(buf_cstr(&p), "/var/lib/mdrepl/syncd.sock");
	buf_free(&p);
}
END_TEST

/* Binds a datagram socket at name (abstract if it starts with '@'). */
static int notify_socket(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)), 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char got[512];
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t n;

	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	n = recv(fd, got, sizeof(got) - 1, 0);
	ck_assert_int_gt(n, 0);
	got[n] = '\0';
	ck_assert_msg(strstr(got, want) != NULL, "datagram '%s' lacks '%s'", got, want);
}

START_TEST(test_sd_notify)
{
	char name[PATH_MAX + 32], abstract[64];
	int fd;

	snprintf(name, sizeof(name), "%s/notify", dir);
	fd = notify_socket(name);
	setenv("NOTIFY_SOCKET", name, 1);
	sd_notify_ready("serving");
	expect_datagram(fd, "READY=1");
	sd_notify_status("lag %d ms", 12);
	expect_datagram(fd, "STATUS=lag 12 ms");
	sd_notify_watchdog();
	expect_datagram(fd, "WATCHDOG=1");
	close(fd);

	snprintf(abstract, sizeof(abstract), "@mdrepl-test-%ld", (long)getpid());
	fd = notify_socket(abstract);
	setenv("NOTIFY_SOCKET", abstract, 1);
	sd_notify_stopping();
	expect_datagram(fd, "STOPPING=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");

	setenv("WATCHDOG_USEC", "3000000", 1);
	ck_assert_uint_eq(sd_watchdog_interval_ms(), 1500);
	setenv("WATCHDOG_PID", "1", 1);
	ck_assert_uint_eq(sd_watchdog_interval_ms(), 0); /* meant for another process */
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	ck_assert_uint_eq(sd_watchdog_interval_ms(), 0);
}
END_TEST

static Suite *ctlsock_suite(void)
{
	Suite *s = suite_create("ctlsock");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_test(core, test_round_trip);
	tcase_add_test(core, test_sd_notify);
	tcase_add_test(errors, test_not_running);
	tcase_add_test(errors, test_silent_client_times_out);
	tcase_add_test(errors, test_oversized_request);
	tcase_add_test(errors, test_path_too_long);
	tcase_add_test(errors, test_other_uid_refused);
	suite_add_tcase(s, core);
	suite_add_tcase(s, errors);
	return s;
}

int main(void)
{
	return tu_run(ctlsock_suite());
}

/*
 * daemon.c — signals, systemd notification, backgrounding, pid file
 * (see daemon.h).
 *
 * sd_notify: libsystemd's when configure found it, otherwise the
 * documented datagram protocol (one AF_UNIX datagram to $NOTIFY_SOCKET,
 * "@" meaning the abstract namespace).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "buf.h"
#include "daemon.h"
#include "fsutil.h"
#include "log.h"

int daemon_signals_init(struct err *e)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return err_sys(e, "sigprocmask");
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return err_sys(e, "signalfd");
	return fd;
}

enum daemon_signal daemon_signal_read(int sigfd)
{
	struct signalfd_siginfo si;

	if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return DSIG_NONE;
	switch (si.ssi_signo) {
	case SIGTERM:
	case SIGINT: return DSIG_TERM;
	case SIGHUP: return DSIG_HUP;
	case SIGCHLD: return DSIG_CHLD;
	default: return DSIG_OTHER;
	}
}

static int pidfile_path(const char *state_dir, const char *name, struct buf *out)
{
	buf_reset(out);
	return buf_printf(out, "%s/%s.pid", state_dir, name);
}

/* The pid file is locked (flock) for as long as its daemon lives: the
 * kernel drops the lock when the process dies, however it dies, so a
 * stale file or a recycled pid never looks like a running daemon. */
static int pidfile_fd = -1;

/* Opens and tries to lock the pid file. Returns the fd with the lock held,
 * or -1 (errno EWOULDBLOCK if another process holds it). */
static int lock_pidfile(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static long pid_in(const char *path)
{
	struct buf text = BUF_INIT;
	long pid = 0;

	if (fs_read_file(AT_FDCWD, path, &text, 64, NULL) == 0)
		pid = strtol(buf_cstr(&text), NULL, 10);
	buf_free(&text);
	return pid;
}

static int detach(struct err *e)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return err_sys(e, "fork");
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return err_sys(e, "setsid");
	pid = fork();
	if (pid < 0)
		return err_sys(e, "fork");
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		/* stderr stays: logging may go there until syslog takes over */
		if (fd > 2)
			close(fd);
	}
	return chdir("/") < 0 ? err_sys(e, "chdir /") : 0;
}

int daemon_check(const char *state_dir, const char *name, struct err *e)
{
	struct buf path = BUF_INIT;
	int fd, r = 0;

	if (pidfile_fd >= 0)
		return 0; /* we hold it ourselves */
	pidfile_path(state_dir, name, &path);
	fd = lock_pidfile(buf_cstr(&path));
	if (fd >= 0)
		close(fd); /* free: released again until daemon_start */
	else if (errno == EWOULDBLOCK)
		r = err_set(e, EEXIST, "%s is already running (pid %ld, %s)", name,
			    pid_in(buf_cstr(&path)), buf_cstr(&path));
	else
		r = err_sys(e, "cannot open %s", buf_cstr(&path));
	buf_free(&path);
	return r;
}

int daemon_start(const char *state_dir, const char *name, bool foreground, struct err *e)
{
	struct buf path = BUF_INIT, text = BUF_INIT;
	int r = -1;

	pidfile_path(state_dir, name, &path);
	if (daemon_check(state_dir, name, e) < 0)
		goto out;
	if (!foreground && detach(e) < 0)
		goto out;
	pidfile_fd = lock_pidfile(buf_cstr(&path));
	if (pidfile_fd < 0) {
		if (errno == EWOULDBLOCK)
			err_set(e, EEXIST, "%s is already running (%s)", name, buf_cstr(&path));
		else
			err_sys(e, "cannot open %s", buf_cstr(&path));
		goto out;
	}
	buf_printf(&text, "%ld\n", (long)getpid());
	if (ftruncate(pidfile_fd, 0) < 0 || fs_write_all(pidfile_fd, text.data, text.len) < 0) {
		err_sys(e, "cannot write %s", buf_cstr(&path));
		goto out;
	}
	r = 0;
out:
	buf_free(&path);
	buf_free(&text);
	return r;
}

void daemon_stop(const char *state_dir, const char *name)
{
	struct buf path = BUF_INIT;

	if (pidfile_fd >= 0) {
		pidfile_path(state_dir, name, &path);
		unlink(buf_cstr(&path));
		close(pidfile_fd);
		pidfile_fd = -1;
	}
	buf_free(&path);
}

#ifdef HAVE_LIBSYSTEMD
static void notify(const char *msg)
{
	sd_notify(0, msg);
}
#else
/* The sd_notify datagram protocol, for builds without libsystemd. */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	socklen_t salen;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		log_debug("sd_notify to %s failed: %m", path);
	close(fd);
}
#endif

void sd_notify_ready(const char *status)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
	notify(buf_cstr(&b));
	buf_free(&b);
}

void sd_notify_status(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	memcpy(line, "STATUS=", 7);
	va_start(ap, fmt);
	n = vsnprintf(line + 7, sizeof(line) - 7, fmt, ap);
	va_end(ap);
	if (n >= 0)
		notify(line);
}

void sd_notify_watchdog(void)
{
	notify("WATCHDOG=1");
}

void sd_notify_stopping(void)
{
	notify("STOPPING=1");
}

void sd_notify_reloading(void)
{
	notify("RELOADING=1");
}

uint64_t sd_watchdog_interval_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;

	if (usec == NULL)
		return 0;
	if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	v = strtoull(usec, NULL, 10);
	return v / 2000; /* half the timeout, in ms */
}

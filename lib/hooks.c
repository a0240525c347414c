/*
 * hooks.c — runs the hooks directory (see hooks.h).
 *
 * Each hook is a child process in its own process group; the parent
 * polls the hook's output pipe and a pidfd for its exit (a 50 ms poll
 * where pidfds are missing), so a hook that leaves a daemon holding the
 * pipe open does not stall the caller, and one that overruns its time is
 * killed with its whole group.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "hooks.h"
#include "log.h"
#include "xalloc.h"

extern char **environ;

#define POLL_FALLBACK_MS 50

const char *hook_event_name(enum hook_event ev)
{
	static const char *const names[] = {"promote", "demote", "freeze", "thaw", "rejoin"};

	return (unsigned)ev < sizeof(names) / sizeof(names[0]) ? names[ev] : "unknown";
}

/* ------------------------------------------------------------ checks */

/* Why st may not be trusted as (part of) a hook, or NULL. */
static const char *untrusted(const struct stat *st)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "owned by another user";
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return "writable by group or others";
	return NULL;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The candidate names in dir, sorted; *n_r set. Returns the array (caller
 * frees it and its strings), or NULL with *n_r = 0 (none, or an error in
 * e with code set). */
static char **list_hooks(const char *dir, size_t *n_r, struct err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	*n_r = 0;
	if (d == NULL) {
		if (errno != ENOENT)
			err_sys(e, "cannot read hooks directory %s", dir);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), name_cmp);
	*n_r = n;
	return v;
}

/* ------------------------------------------------------------ environment */

static char **build_env(const struct hook_env *env)
{
	char id[2 * NODE_ID_LEN + 1];
	size_t n = 0, k = 0;
	char **v;

	while (environ[n] != NULL)
		n++;
	v = xcalloc(n + 6, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "MDREPL_", 7) != 0)
			v[k++] = xstrdup(environ[i]);
	}
	node_id_hex(env->node->node_id, id);
	v[k++] = xasprintf("MDREPL_EVENT=%s", hook_event_name(env->event));
	v[k++] = xasprintf("MDREPL_ROLE=%s", role_name(env->node->role));
	v[k++] = xasprintf("MDREPL_GENERATION=%" PRIu64, env->node->generation);
	v[k++] = xasprintf("MDREPL_NODE_ID=%s", id);
	v[k++] = xasprintf("MDREPL_PEER=%s", env->peer ? env->peer : "");
	v[k] = NULL;
	return v;
}

static void free_env(char **v)
{
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* ------------------------------------------------------------ running */

/* In the child: a clean slate for the hook, then exec. */
static void __attribute__((noreturn))
exec_hook(const char *path, const char *event, int devnull, int out, char **envp)
{
	static const int reset[] = {SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGCHLD, SIGQUIT};
	char *argv[] = {(char *)path, (char *)event, NULL};
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
		signal(reset[i], SIG_DFL);
	setpgid(0, 0);
	if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	execve(path, argv, envp);
	dprintf(2, "cannot run %s: %s\n", path, strerror(errno));
	_exit(127);
}

static void keep_output(struct hook_result *r, const char *p, size_t n, uint64_t *dropped)
{
	size_t room = HOOK_OUTPUT_MAX - r->output.len;

	if (n > room) {
		*dropped += n - room;
		n = room;
	}
	buf_append(&r->output, p, n);
}

/* Reads what the pipe holds; returns 0 at EOF, 1 otherwise. */
static int read_output(int fd, struct hook_result *r, uint64_t *dropped)
{
	char chunk[4096];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n > 0) {
			keep_output(r, chunk, (size_t)n, dropped);
			continue;
		}
		if (n == 0)
			return 0;
		return errno == EINTR ? 1 : (errno == EAGAIN ? 1 : 0);
	}
}

/* Waits for the hook (and reads its output) until it exits or the
 * deadline passes; then kills its process group. Returns the wait status. */
static int supervise(pid_t pid, int rfd, uint64_t deadline, struct hook_result *r,
		     uint64_t *dropped)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), status = 0;

	for (;;) {
		struct pollfd p[2] = {{rfd, POLLIN, 0}, {pidfd, POLLIN, 0}};
		uint64_t now = now_mono_ms();
		int wait = now < deadline ? (int)(deadline - now) : 0;

		if (pidfd < 0 && wait > POLL_FALLBACK_MS)
			wait = POLL_FALLBACK_MS;
		if (poll(p, 2, wait) < 0 && errno != EINTR)
			break;
		if (rfd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    read_output(rfd, r, dropped) == 0)
			rfd = -1; /* EOF: p[0] is ignored from now on */
		if (waitpid(pid, &status, WNOHANG) == pid)
			goto out;
		if (now_mono_ms() >= deadline)
			break;
	}
	r->timed_out = true;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
out:
	if (pidfd >= 0)
		close(pidfd);
	return status;
}

static void log_output(const struct hook_result *r, uint64_t dropped)
{
	const char *p = buf_cstr(&r->output), *end = p + r->output.len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		log_info("hook %s: %.*s", r->name, (int)len, p);
		p += len + 1;
	}
	if (dropped > 0)
		log_info("hook %s: (%" PRIu64 " more bytes of output not kept)", r->name, dropped);
}

static void run_one(const char *path, const struct hook_env *env, char **envp, uint64_t timeout_ms,
		    struct hook_result *r)
{
	uint64_t t0 = now_mono_ms(), dropped = 0;
	int pfd[2], devnull, status;
	pid_t pid;

	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		buf_printf(&r->output, "cannot start: %s\n", strerror(errno));
		if (devnull >= 0)
			close(devnull);
		return;
	}
	pid = fork();
	if (pid == 0)
		exec_hook(path, hook_event_name(env->event), devnull, pfd[1], envp);
	close(pfd[1]);
	close(devnull);
	if (pid < 0) {
		buf_printf(&r->output, "cannot start: fork: %s\n", strerror(errno));
		close(pfd[0]);
		return;
	}
	setpgid(pid, pid); /* also here: a kill may come before the child's own call */
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	status = supervise(pid, pfd[0], t0 + timeout_ms, r, &dropped);
	read_output(pfd[0], r, &dropped); /* what is left, without waiting for EOF */
	close(pfd[0]);
	r->ms = now_mono_ms() - t0;
	r->status = !r->timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	log_output(r, dropped);
	if (r->timed_out)
		log_error("hook %s (%s) killed after %" PRIu64 " ms", r->name,
			  hook_event_name(env->event), timeout_ms);
	else if (r->status != 0)
		log_error("hook %s (%s) failed: %s %d", r->name, hook_event_name(env->event),
			  WIFEXITED(status) ? "exit status" : "signal",
			  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	else
		log_info("hook %s (%s) done in %" PRIu64 " ms", r->name,
			 hook_event_name(env->event), r->ms);
}

/* Adds a result for name; returns it. */
static struct hook_result *add_result(struct hook_report *rep, const char *name)
{
	struct hook_result *r;

	rep->v = xreallocarray(rep->v, rep->n + 1, sizeof(*rep->v));
	r = &rep->v[rep->n++];
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(name);
	r->status = -1;
	buf_init(&r->output, 0);
	return r;
}

/* Runs (or refuses, or skips) the hook dir/name. */
static void one_hook(const char *dir, const char *name, const struct hook_env *env, char **envp,
		     uint64_t timeout_ms, struct hook_report *rep)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct hook_result *r;
	const char *why;
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
		log_debug("hooks: skipping %s (not an executable file)", path);
		free(path);
		return;
	}
	r = add_result(rep, name);
	if ((why = untrusted(&st)) != NULL) {
		r->refused = true;
		buf_printf(&r->output, "refused: %s is %s (mode %04o)\n", path, why,
			   (unsigned)(st.st_mode & 07777));
		log_error("hook %s not run: %s is %s", name, path, why);
	} else {
		log_info("running hook %s (%s)", path, hook_event_name(env->event));
		run_one(path, env, envp, timeout_ms, r);
	}
	if (r->status != 0)
		rep->failed++;
	free(path);
}

int hooks_run(const char *dir, uint64_t timeout_ms, const struct hook_env *env,
	      struct hook_report *rep, struct err *e)
{
	struct stat st;
	const char *why;
	char **names, **envp;
	size_t n;

	memset(rep, 0, sizeof(*rep));
	err_clear(e);
	if (dir == NULL || dir[0] == '\0')
		return 0;
	if (stat(dir, &st) < 0)
		return errno == ENOENT ? 0 : err_sys(e, "hooks directory %s", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ENOTDIR, "hooks directory %s is not a directory", dir);
	if ((why = untrusted(&st)) != NULL)
		return err_set(e, EPERM, "hooks directory %s is %s (mode %04o): no hook was run",
			       dir, why, (unsigned)(st.st_mode & 07777));
	names = list_hooks(dir, &n, e);
	if (names == NULL)
		return e->code != 0 ? -1 : 0;
	envp = build_env(env);
	for (size_t i = 0; i < n; i++) {
		one_hook(dir, names[i], env, envp, timeout_ms, rep);
		free(names[i]);
	}
	free(names);
	free_env(envp);
	for (size_t i = 0; i < rep->n; i++) {
		const struct hook_result *r = &rep->v[i];

		if (r->status != 0)
			return err_set(e, ECHILD, "%s hook %s %s", hook_event_name(env->event),
				       r->name,
				       r->refused     ? "was refused (permissions)"
				       : r->timed_out ? "was killed after its timeout"
						      : "failed");
	}
	return 0;
}

void hook_report_free(struct hook_report *rep)
{
	for (size_t i = 0; i < rep->n; i++) {
		free(rep->v[i].name);
		buf_free(&rep->v[i].output);
	}
	free(rep->v);
	memset(rep, 0, sizeof(*rep));
}

/* Appends the last few lines of a failed hook's output, indented. */
static void tail_lines(const struct buf *out, struct buf *to)
{
	const char *s = buf_cstr(out), *end = s + out->len, *p;
	int lines = 0;

	while (end > s && end[-1] == '\n')
		end--;
	for (p = end; p > s; p--) {
		if (p[-1] == '\n' && ++lines == 5)
			break;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		buf_printf(to, "      %.*s\n", (int)len, p);
		p += len + 1;
	}
}

void hook_report_format(const struct hook_report *rep, struct buf *out)
{
	if (rep->n == 0) {
		buf_puts(out, "  (no hooks)\n");
		return;
	}
	for (size_t i = 0; i < rep->n; i++) {
		const struct hook_result *r = &rep->v[i];

		if (r->refused)
			buf_printf(out, "  %s: REFUSED\n", r->name);
		else if (r->timed_out)
			buf_printf(out, "  %s: FAILED, killed after %.1f s\n", r->name,
				   (double)r->ms / 1000.0);
		else if (r->status != 0)
			buf_printf(out, "  %s: FAILED, %s %d (%.2f s)\n", r->name,
				   r->status < 0 ? "signal or start failure" : "exit status",
				   r->status, (double)r->ms / 1000.0);
		else
			buf_printf(out, "  %s: ok (%.2f s)\n", r->name, (double)r->ms / 1000.0);
		if (r->status != 0)
			tail_lines(&r->output, out);
	}
}

/*
 * syncd.c — mdrepl-syncd: the receiver. Listens for the primary's
 * mdrepl-syncclient (and for audits and probes), serving each connection
 * in its own process (session.c), and answers `mdreplctl status` on its
 * control socket from the status the sessions share with it.
 *
 * SECURITY: the listener does no protocol parsing; it forks a session per
 * connection, which authenticates the peer (TLS) before anything else.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "conn.h"
#include "ctlsock.h"
#include "daemon.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "nodestate.h"
#include "session.h"
#include "standbypos.h"

#define MAX_SESSIONS  16
#define METRICS_EVERY_MS 5000
#define PROG	      "mdrepl-syncd"
#define FENCE_HOLD_NS (60 * 1000000000ULL) /* writers stay refused while a promotion runs */
#define FENCE_WAIT_MS 5000		   /* for the writer session to end by itself */

struct syncd {
	struct settings set;
	struct session_env env;
	int lfd, ctlfd, sigfd;
	unsigned port;
	pid_t children[MAX_SESSIONS];
	uint64_t started_ns;
	bool stopping;
};

static void usage(void)
{
	printf("Usage: %s [-c CONFIG] [-o SECTION.KEY=VALUE]... [-f]\n"
	       "Receive replication from the primary and apply it to mail_root (standby role).\n\n"
	       "  -c, --config FILE    configuration file (default %s)\n"
	       "  -o, --option S.K=V   override a configuration option\n"
	       "  -f, --foreground     stay in the foreground\n"
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n",
	       PROG, MDREPL_DEFAULT_CONFIG);
	exit(EXIT_OK);
}

static int nsessions(const struct syncd *d)
{
	int n = 0;

	for (int i = 0; i < MAX_SESSIONS; i++)
		n += d->children[i] > 0;
	return n;
}

static void reap(struct syncd *d)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_SESSIONS; i++) {
			if (d->children[i] == pid)
				d->children[i] = 0;
		}
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
			shared_error(d->env.shared, "session process %ld died of signal %d",
				     (long)pid, WTERMSIG(status));
		if (d->env.shared->writer_pid == pid)
			d->env.shared->writer_pid = 0;
	}
	d->env.shared->sessions = (uint32_t)nsessions(d);
}

/* Runs in the session process: drop the listener's resources, serve, exit. */
static void run_child(struct syncd *d, int fd)
{
	sigset_t all;

	close(d->lfd);
	close(d->ctlfd);
	close(d->sigfd);
	/* A session does not outlive its listener: a new syncd must not find an
	 * orphan still holding the writer lock. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	_exit(session_run(fd, &d->env));
}

static void accept_one(struct syncd *d)
{
	int fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
	int slot = -1;
	pid_t pid;

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("accept failed: %m");
		return;
	}
	for (int i = 0; i < MAX_SESSIONS && slot < 0; i++) {
		if (d->children[i] == 0)
			slot = i;
	}
	if (slot < 0) {
		log_warn("refusing a connection: %d sessions already running", MAX_SESSIONS);
		close(fd);
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork failed: %m");
		close(fd);
		return;
	}
	if (pid == 0)
		run_child(d, fd);
	close(fd);
	d->children[slot] = pid;
	d->env.shared->sessions = (uint32_t)nsessions(d);
}

static uint64_t load_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void status_json(struct syncd *d, struct buf *out)
{
	const struct syncd_shared *sh = d->env.shared;
	struct node_state node;
	struct standby_pos pos;
	struct json j;
	struct err e;
	char id[2 * NODE_ID_LEN + 1], jid[17];
	uint64_t now = now_real_ns(), last = load_u64(&sh->last_batch_ns);

	json_init(&j, out);
	json_begin_obj(&j);
	json_key_str(&j, "daemon", "syncd");
	if (nodestate_load(d->set.node.state_dir, d->set.node.initial_role, &node, &e) == 0) {
		node_id_hex(node.node_id, id);
		json_key_str(&j, "role", role_name(node.role));
		json_key_u64(&j, "generation", node.generation);
		json_key_str(&j, "node_id", id);
	}
	json_key_u64(&j, "port", d->port);
	json_key_u64(&j, "pid", (uint64_t)getpid());
	json_key_u64(&j, "uptime_s", (now - d->started_ns) / 1000000000ULL);
	json_key_u64(&j, "sessions", sh->sessions);
	json_key_bool(&j, "connected", sh->writer_pid != 0);
	json_key_str(&j, "peer", sh->writer_pid != 0 ? sh->peer : "");
	if (standbypos_load(d->set.node.state_dir, &pos, &e) == 0) {
		snprintf(jid, sizeof(jid), "%016" PRIx64, pos.journal_id);
		json_key_str(&j, "journal_id", jid);
		json_key_u64(&j, "durable_lsn", pos.durable_lsn);
		json_key_u64(&j, "primary_generation", pos.generation);
	}
	json_key_u64(&j, "received_lsn", load_u64(&sh->received_lsn));
	json_key_u64(&j, "applied_lsn", load_u64(&sh->applied_lsn));
	json_key_u64(&j, "batches", load_u64(&sh->batches));
	json_key_u64(&j, "ops", load_u64(&sh->ops));
	json_key_u64(&j, "content_bytes", load_u64(&sh->content_bytes));
	json_key_u64(&j, "needs", load_u64(&sh->needs));
	json_key_u64(&j, "refused", load_u64(&sh->refused));
	json_key_bool(&j, "fenced_for_promotion", load_u64(&sh->fence_until_ns) > now);
	json_key_u64(&j, "errors", load_u64(&sh->errors));
	json_key_u64(&j, "last_commit_us", load_u64(&sh->last_commit_us));
	json_key_u64(&j, "max_commit_us", load_u64(&sh->max_commit_us));
	json_key_double(&j, "last_batch_age_s", last ? (double)(now - last) / 1e9 : -1);
	json_key_str(&j, "last_error", sh->last_error);
	json_end_obj(&j);
	buf_putc(out, '\n');
}

static void write_metrics(struct syncd *d)
{
	struct buf json = BUF_INIT;
	struct err e;

	if (d->set.node.metrics_dir[0] == '\0')
		return;
	status_json(d, &json);
	if (metrics_write(d->set.node.metrics_dir, "syncd", buf_cstr(&json), &e) < 0)
		log_warn("metrics not written: %s", e.msg);
	buf_free(&json);
}

/* "fence": ends the writer session and refuses new ones for a while, so
 * that mdreplctl promote can change the role with nothing half applied
 * (the session ends between frames; an open batch is discarded).
 * "unfence": accepts writers again (a promotion that did not happen). */
static void fence(struct syncd *d, bool on, struct buf *out)
{
	struct syncd_shared *sh = d->env.shared;
	uint64_t deadline = now_mono_ms() + FENCE_WAIT_MS;
	pid_t pid = __atomic_load_n(&sh->writer_pid, __ATOMIC_RELAXED);

	__atomic_store_n(&sh->fence_until_ns, on ? now_real_ns() + FENCE_HOLD_NS : 0,
			 __ATOMIC_RELAXED);
	if (!on) {
		log_info("replication accepted again (unfenced)");
		buf_puts(out, "ok unfenced\n");
		return;
	}
	log_info("fenced for a promotion: ending the replication session%s",
		 pid ? "" : " (none running)");
	while (__atomic_load_n(&sh->writer_pid, __ATOMIC_RELAXED) != 0 &&
	       now_mono_ms() < deadline) {
		usleep(10000); /* the session notices within 50 ms */
		reap(d);
	}
	if (sh->writer_pid != 0) {
		log_warn("session %d did not end in time: killing it", (int)sh->writer_pid);
		kill(sh->writer_pid, SIGKILL);
		usleep(50000);
		reap(d);
	}
	if (pid != 0)
		buf_printf(out, "ok fenced: the replication session from %s ended\n", sh->peer);
	else
		buf_puts(out, "ok fenced: no replication session was running\n");
}

static void control(struct syncd *d)
{
	struct ctl_request req;
	struct buf out = BUF_INIT;
	struct err e;
	int cfd = ctl_accept(d->ctlfd, &req, 1000, &e);

	if (cfd < 0) {
		log_warn("control: %s", e.msg);
		return;
	}
	if (strcmp(req.argv[0], "status") == 0)
		status_json(d, &out);
	else if (strcmp(req.argv[0], "fence") == 0 || strcmp(req.argv[0], "unfence") == 0)
		fence(d, req.argv[0][0] == 'f', &out);
	else
		buf_printf(&out, "error: unknown command '%s' (status, fence, unfence)\n",
			   req.argv[0]);
	ctl_reply(cfd, out.data, out.len);
	ctl_request_free(&req);
	buf_free(&out);
}

static void reload(struct syncd *d)
{
	struct tls_ctx *t;
	struct err e;

	sd_notify_reloading();
	log_reopen();
	/* Certificates may have been renewed: new sessions use the new ones. */
	t = tls_ctx_new(&d->set, true, &e);
	if (t == NULL) {
		log_error("reload: keeping the old TLS settings: %s", e.msg);
	} else {
		tls_ctx_free(&d->env.tls);
		d->env.tls = t;
		log_info("reloaded");
	}
	sd_notify_ready("reloaded");
}

static void stop_children(struct syncd *d)
{
	uint64_t deadline = now_mono_ms() + 10000;

	for (int i = 0; i < MAX_SESSIONS; i++) {
		if (d->children[i] > 0)
			kill(d->children[i], SIGTERM);
	}
	while (nsessions(d) > 0 && now_mono_ms() < deadline) {
		usleep(20000); /* shutdown only: sessions end within moments */
		reap(d);
	}
	for (int i = 0; i < MAX_SESSIONS; i++) {
		if (d->children[i] > 0)
			kill(d->children[i], SIGKILL);
	}
	reap(d);
}

static void signal_event(struct syncd *d)
{
	enum daemon_signal sig;

	while ((sig = daemon_signal_read(d->sigfd)) != DSIG_NONE) {
		if (sig == DSIG_TERM)
			d->stopping = true;
		else if (sig == DSIG_HUP)
			reload(d);
		else if (sig == DSIG_CHLD)
			reap(d);
	}
}

static int run(struct syncd *d)
{
	uint64_t wd = sd_watchdog_interval_ms(), next_wd = now_mono_ms() + wd;
	uint64_t next_metrics = 0;

	while (!d->stopping) {
		struct pollfd p[3] = {{d->lfd, POLLIN, 0}, {d->ctlfd, POLLIN, 0}, {d->sigfd, POLLIN, 0}};
		int timeout = wd && wd < METRICS_EVERY_MS ? (int)wd : METRICS_EVERY_MS;

		if (poll(p, 3, timeout) < 0 && errno != EINTR)
			log_fatal("poll: %m");
		if (p[2].revents)
			signal_event(d);
		if (p[0].revents && !d->stopping)
			accept_one(d);
		if (p[1].revents)
			control(d);
		if (wd && now_mono_ms() >= next_wd) {
			sd_notify_watchdog();
			next_wd = now_mono_ms() + wd;
		}
		if (now_mono_ms() >= next_metrics) {
			write_metrics(d);
			next_metrics = now_mono_ms() + METRICS_EVERY_MS;
		}
	}
	sd_notify_stopping();
	log_info("stopping");
	stop_children(d);
	return 0;
}

static void setup(struct syncd *d)
{
	struct node_state node;
	struct buf path = BUF_INIT, portline = BUF_INIT;
	struct err e;

	if (nodestate_load(d->set.node.state_dir, d->set.node.initial_role, &node, &e) < 0 ||
	    daemon_check(d->set.node.state_dir, PROG, &e) < 0)
		log_fatal("%s", e.msg);
	d->env.rootfd = open(d->set.node.mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->env.rootfd < 0)
		log_fatal("cannot open mail_root %s: %m", d->set.node.mail_root);
	d->env.rules = md_rules_new(d->set.node.name_separator, &d->set.journal.exclude);
	d->env.set = &d->set;
	d->env.tls = tls_ctx_new(&d->set, true, &e);
	if (d->env.tls == NULL)
		log_fatal("%s", e.msg);
	d->env.shared = mmap(NULL, sizeof(struct syncd_shared), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (d->env.shared == MAP_FAILED)
		log_fatal("mmap: %m");
	d->sigfd = daemon_signals_init(&e);
	if (d->sigfd < 0)
		log_fatal("%s", e.msg);
	d->lfd = conn_listen(d->set.listen.address, &e);
	if (d->lfd < 0)
		log_fatal("%s", e.msg);
	d->port = (unsigned)conn_bound_port(d->lfd);
	if (ctl_path(d->set.node.state_dir, "syncd.sock", &path, &e) < 0 ||
	    (d->ctlfd = ctl_listen(buf_cstr(&path), &e)) < 0)
		log_fatal("%s", e.msg);
	/* Tests and the demo listen on port 0 and read the real port here. */
	buf_printf(&portline, "%u\n", d->port);
	buf_reset(&path);
	buf_printf(&path, "%s/syncd.port", d->set.node.state_dir);
	if (fs_write_atomic(AT_FDCWD, buf_cstr(&path), portline.data, portline.len, 0644, &e) < 0)
		log_fatal("%s", e.msg);
	d->started_ns = now_real_ns();
	log_info("listening on %s (port %u, %s) role=%s generation=%" PRIu64, d->set.listen.address,
		 d->port, tls_enabled(d->env.tls) ? "TLS" : "plaintext", role_name(node.role),
		 node.generation);
	buf_free(&path);
	buf_free(&portline);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_LONGOPTS, {NULL, 0, NULL, 0}};
	static struct syncd d;
	struct cli_opts o;
	struct err e;
	int opt, rc;

	cli_init(&o);
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
		if (cli_common_option(&o, opt, optarg))
			continue;
		if (opt == 'h')
			usage();
		if (opt == 'V')
			cli_version(PROG);
		cli_usage_error(PROG, "unknown option");
	}
	if (optind < argc)
		cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	cli_load_config(PROG, &o, &d.set);
	/* Open everything first, so that errors reach the terminal and the
	 * exit status; then detach. */
	setup(&d);
	if (daemon_start(d.set.node.state_dir, PROG, o.foreground, &e) < 0)
		log_fatal("%s", e.msg);
	sd_notify_ready("listening");
	rc = run(&d);
	daemon_stop(d.set.node.state_dir, PROG);
	conf_free(&d.set);
	cli_free(&o);
	return rc;
}

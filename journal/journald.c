/*
 * journald.c — mdrepl-journald: the journaling agent on the primary.
 *
 * Watches every folder under mail_root with inotify (watch.c) and appends
 * hint records to the journal (DESIGN §5). The role in STATE_DIR decides:
 * on a standby it stays idle but serves its control socket, and it starts
 * or stops journaling when node.state changes. One poll() loop handles
 * signals (signalfd), the control socket, inotify and the timers: group
 * commit, retention and role checks every second, the systemd watchdog.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctlsock.h"
#include "daemon.h"
#include "fsutil.h"
#include "journald.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define TICK_MS		1000
#define STATUS_EVERY_MS 5000
#define CTL_TIMEOUT_MS	1000
#define RETRY_START_MS	10000

static const char *prog = "mdrepl-journald";

static void usage(void)
{
	printf("Usage: %s [-c CONFIG] [-o SECTION.KEY=VALUE]... [-f]\n"
	       "Journal changes to the Maildir tree under mail_root (primary role).\n\n"
	       "  -c, --config FILE    configuration file (default %s)\n"
	       "  -o, --option S.K=V   override a configuration option\n"
	       "  -f, --foreground     stay in the foreground\n"
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n",
	       prog, MDREPL_DEFAULT_CONFIG);
	exit(EXIT_OK);
}

void jd_error(struct jd *jd, const char *msg)
{
	snprintf(jd->last_error, sizeof(jd->last_error), "%s", msg);
}

int jd_append(struct jd *jd, enum jrec_type t, uint32_t flags, struct slice path,
	      struct slice path2)
{
	struct err e;

	if (jd->j == NULL)
		return -1;
	if (jd->lost) {
		if (journal_append(jd->j, JR_RESCAN, JR_F_SUBTREE, SLICE_LIT(""), SLICE_LIT(""),
				   NULL, &e) < 0)
			goto fail;
		jd->lost = false;
		jd->records++;
		jd->rescans++;
		log_warn("the journal works again: journaled a full rescan for what was missed");
	}
	if (journal_append(jd->j, t, flags, path, path2, NULL, &e) < 0)
		goto fail;
	jd->records++;
	if (t == JR_RESCAN)
		jd->rescans++;
	return 0;
fail:
	if (!jd->lost)
		log_error("cannot journal %s %.*s: %s (a full rescan follows once the journal "
			  "works again)",
			  jrec_type_name(t), (int)path.len, path.p, e.msg);
	jd->lost = true;
	jd_error(jd, e.msg);
	return -1;
}

static void on_record(void *ctx, enum jrec_type t, uint32_t flags, struct slice path,
		      struct slice path2)
{
	jd_append(ctx, t, flags, path, path2);
}

/* The time of the JR_STOP that ended the last run (0 if unknown). */
static uint64_t last_stop_ns(struct jd *jd)
{
	uint64_t head = journal_head(jd->j), t = 0;
	struct jreader *rd;
	struct jrec r;
	struct err e;
	bool gap;

	rd = jreader_open(jd->jdir, head - 1, &gap, &e);
	if (rd != NULL && jreader_next(rd, &r, &e) == 1 && r.type == JR_STOP)
		t = r.time_ns;
	jreader_free(&rd);
	return t;
}

static int open_journal(struct jd *jd, bool *clean_r)
{
	const struct settings *s = jd->s;
	struct journal_opts o = {s->journal.fsync_interval_ms, s->journal.fsync_records,
				 s->journal.segment_size, s->journal.max_size};
	struct err e;

	jd->j = journal_open(jd->jdir, &o, clean_r, &e);
	if (jd->j != NULL)
		return 0;
	if (e.code == ERR_CORRUPT)
		log_error("%s; move %s aside to start a new journal (the standby then does a full "
			  "compare)",
			  e.msg, jd->jdir);
	else
		log_error("%s", e.msg);
	jd_error(jd, e.msg);
	return -1;
}

/* Starts journaling: journal first (a start record), then the watches,
 * then — after an unclean stop — a full rescan, which must come after
 * the watches so that nothing changed in between is missed. */
static int start_primary(struct jd *jd)
{
	uint64_t stop_ns = 0;
	struct err e;
	bool clean;

	if (open_journal(jd, &clean) < 0)
		return -1;
	if (clean && journal_head(jd->j) > 0)
		stop_ns = last_stop_ns(jd);
	jd_append(jd, JR_START, 0, clean ? SLICE_LIT("clean") : SLICE_LIT("unclean"),
		  SLICE_LIT(""));
	jd->w = watcher_new(jd->s->node.mail_root, jd->rules, on_record, jd, &e);
	if (jd->w == NULL || watcher_start(jd->w, stop_ns, &e) < 0) {
		log_error("%s", e.msg);
		jd_error(jd, e.msg);
		watcher_free(&jd->w);
		journal_free(&jd->j);
		return -1;
	}
	if (!clean)
		jd_append(jd, JR_RESCAN, JR_F_SUBTREE, SLICE_LIT(""), SLICE_LIT(""));
	journal_sync(jd->j, true, &e);
	log_info("journaling %s as primary: journal %016" PRIx64 ", head LSN %" PRIu64
		 ", previous stop %s",
		 jd->s->node.mail_root, journal_id(jd->j), journal_head(jd->j),
		 clean ? "clean" : "unclean (full rescan journaled)");
	return 0;
}

static void stop_primary(struct jd *jd)
{
	struct err e;

	if (jd->w != NULL)
		watcher_drain(jd->w); /* what happened before the stop is journaled */
	watcher_free(&jd->w);
	if (jd->j != NULL && journal_close_clean(&jd->j, &e) < 0)
		log_error("closing the journal failed: %s", e.msg);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reads node.state (creating it on a new node) if it changed since the
 * last read, or always if force. Returns 1 if read, 0 if unchanged, -1. */
static int load_role(struct jd *jd, bool force)
{
	const struct settings *s = jd->s;
	struct node_state ns;
	struct buf path = BUF_INIT;
	struct stat sb;
	struct err e;
	int r = 1;

	buf_printf(&path, "%s/node.state", s->node.state_dir);
	if (!force && stat(buf_cstr(&path), &sb) == 0 && same_file(&sb, &jd->role_st)) {
		r = 0;
	} else if (nodestate_load(s->node.state_dir, s->node.initial_role, &ns, &e) < 0) {
		log_error("cannot read the node state: %s", e.msg);
		jd_error(jd, e.msg);
		r = -1;
	} else {
		if (jd->role_st.st_ino != 0 && ns.role != jd->role)
			log_info("role changed: %s -> %s", role_name(jd->role), role_name(ns.role));
		if (stat(buf_cstr(&path), &sb) == 0)
			jd->role_st = sb;
		jd->role = ns.role;
	}
	buf_free(&path);
	return r;
}

void jd_check_role(struct jd *jd, bool force)
{
	int changed = load_role(jd, force);

	if (changed < 0)
		return;
	if (jd->role == ROLE_PRIMARY && jd->j == NULL &&
	    (changed == 1 || now_mono_ms() >= jd->retry_at_ms) && start_primary(jd) < 0) {
		jd->retry_at_ms = now_mono_ms() + RETRY_START_MS;
		log_warn("not journaling although primary; retrying in %d s",
			 RETRY_START_MS / 1000);
	} else if (jd->role == ROLE_STANDBY && jd->j != NULL) {
		stop_primary(jd);
	}
}

static void serve_ctl(struct jd *jd, int lfd)
{
	struct ctl_request req;
	struct buf out = BUF_INIT;
	struct err e;
	int cfd = ctl_accept(lfd, &req, CTL_TIMEOUT_MS, &e);

	if (cfd < 0) {
		log_warn("control socket: %s", e.msg);
		return;
	}
	jdctl_handle(jd, req.argc, req.argv, &out);
	ctl_reply(cfd, out.data, out.len);
	ctl_request_free(&req);
	buf_free(&out);
}

/* Writes the metrics file, if configured. */
static void write_metrics(struct jd *jd)
{
	struct buf json = BUF_INIT;
	struct err e;

	if (jd->s->node.metrics_dir[0] == '\0')
		return;
	jd_status_json(jd, &json);
	if (metrics_write(jd->s->node.metrics_dir, "journald", buf_cstr(&json), &e) < 0)
		log_warn("metrics not written: %s", e.msg);
	buf_free(&json);
}

static void send_status(struct jd *jd)
{
	struct watcher_stats ws = {0};

	write_metrics(jd);
	if (jd->w == NULL) {
		sd_notify_status("standby: idle");
		return;
	}
	watcher_get_stats(jd->w, &ws);
	sd_notify_status("primary: head LSN %" PRIu64 ", %" PRIu64 " watches, %" PRIu64
			 " records, %" PRIu64 " rescans",
			 journal_head(jd->j), ws.watches, jd->records, jd->rescans);
}

/* Timers that run once a second. */
static void tick(struct jd *jd, uint64_t *status_at)
{
	struct err e;

	jd_check_role(jd, false);
	if (jd->j != NULL && journal_retain(jd->j, &e) < 0) {
		log_error("journal retention failed: %s", e.msg);
		jd_error(jd, e.msg);
	}
	if (now_mono_ms() >= *status_at) {
		send_status(jd);
		*status_at = now_mono_ms() + STATUS_EVERY_MS;
	}
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* Returns when a stop was asked for (0) or on a fatal error (-1). */
static int run(struct jd *jd, int sigfd, int lfd)
{
	uint64_t wd_ms = sd_watchdog_interval_ms(), next_tick = now_mono_ms() + TICK_MS;
	uint64_t next_wd = now_mono_ms() + wd_ms, status_at = 0;

	for (;;) {
		struct pollfd pfd[3] = {{sigfd, POLLIN, 0},
					{lfd, POLLIN, 0},
					{jd->w ? watcher_fd(jd->w) : -1, POLLIN, 0}};
		uint64_t now = now_mono_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;
		struct err e;
		int due;

		if (jd->j != NULL && (due = journal_sync(jd->j, false, &e)) != -1) {
			if (due == -2) {
				log_error("%s: exiting, so that the restart journals a rescan",
					  e.msg);
				return -1;
			}
			timeout = min_timeout(timeout, due);
		}
		if (jd->w != NULL)
			timeout = min_timeout(timeout, watcher_timeout_ms(jd->w));
		if (wd_ms > 0)
			timeout = min_timeout(timeout, next_wd > now ? (int)(next_wd - now) : 0);
		if (poll(pfd, 3, timeout) < 0 && errno != EINTR)
			log_fatal("poll failed: %m");
		if (pfd[0].revents & POLLIN) {
			enum daemon_signal sig = daemon_signal_read(sigfd);

			if (sig == DSIG_TERM)
				return 0;
			if (sig == DSIG_HUP) {
				log_reopen();
				log_info("reloaded (log reopened)");
			}
		}
		if (jd->w != NULL && (pfd[2].revents & POLLIN) && watcher_process(jd->w, &e) < 0)
			log_fatal("%s", e.msg);
		if (pfd[1].revents & POLLIN)
			serve_ctl(jd, lfd);
		if (jd->w != NULL)
			watcher_tick(jd->w);
		now = now_mono_ms();
		if (now >= next_tick) {
			tick(jd, &status_at);
			next_tick = now + TICK_MS;
		}
		if (wd_ms > 0 && now >= next_wd) {
			sd_notify_watchdog();
			next_wd = now + wd_ms;
		}
	}
}

static void parse_args(int argc, char **argv, struct cli_opts *o)
{
	static const struct option longopts[] = {CLI_LONGOPTS, {NULL, 0, NULL, 0}};
	int opt;

	cli_init(o);
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
		if (cli_common_option(o, opt, optarg))
			continue;
		if (opt == 'h')
			usage();
		if (opt == 'V')
			cli_version(prog);
		cli_usage_error(prog, "unknown option");
	}
	if (optind < argc)
		cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
}

int main(int argc, char **argv)
{
	struct jd jd = {0};
	struct cli_opts o;
	struct settings s;
	struct buf b = BUF_INIT;
	struct err e;
	int sigfd, lfd, rc;

	parse_args(argc, argv, &o);
	cli_load_config(prog, &o, &s);
	jd.s = &s;
	jd.start_ms = now_mono_ms();
	jd.rules = md_rules_new(s.node.name_separator, &s.journal.exclude);
	jd.jdir = xasprintf("%s/journal", s.node.state_dir);
	if (ctl_path(s.node.state_dir, "journald.sock", &b, &e) < 0)
		log_fatal("%s", e.msg);
	jd.sock_path = buf_strdup(&b);
	jd.role = ROLE_STANDBY;
	if (load_role(&jd, true) < 0) /* creates the state directory on a new node */
		log_fatal("cannot start without the node state");
	if (daemon_start(s.node.state_dir, prog, o.foreground, &e) < 0)
		log_fatal("%s", e.msg);
	if ((sigfd = daemon_signals_init(&e)) < 0 || (lfd = ctl_listen(jd.sock_path, &e)) < 0) {
		daemon_stop(s.node.state_dir, prog);
		log_fatal("%s", e.msg);
	}
	if (jd.role == ROLE_PRIMARY && start_primary(&jd) < 0) {
		daemon_stop(s.node.state_dir, prog);
		log_fatal("cannot start journaling as primary (see above)");
	}
	sd_notify_ready(jd.role == ROLE_PRIMARY ? "primary: journaling" : "standby: idle");
	log_info("started as %s (control socket %s)", role_name(jd.role), jd.sock_path);
	rc = run(&jd, sigfd, lfd);
	sd_notify_stopping();
	stop_primary(&jd);
	close(lfd);
	unlink(jd.sock_path);
	daemon_stop(s.node.state_dir, prog);
	log_info("stopped");
	md_rules_free(&jd.rules);
	free(jd.jdir);
	free(jd.sock_path);
	buf_free(&b);
	conf_free(&s);
	cli_free(&o);
	return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

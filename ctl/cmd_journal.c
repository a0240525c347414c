/*
 * cmd_journal.c — `mdreplctl notify PATH...`, `mdreplctl journal dump
 * [--from LSN] [--follow]`, `mdreplctl journal status` and `mdreplctl
 * journal rescan [--deep] PATH...`.
 *
 * notify and status go through mdrepl-journald's control socket; dump
 * reads the journal files directly (any node, journald running or not).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "cmd_journal.h"
#include "ctlsock.h"
#include "journal.h"
#include "xalloc.h"

#define CALL_TIMEOUT_MS 10000
#define FOLLOW_POLL_MS	200

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sends argv to journald; prints the reply. Returns an exit status. */
static int call_journald(const struct settings *s, int argc, char **argv)
{
	struct buf path = BUF_INIT, out = BUF_INIT;
	struct err e;
	int rc = EXIT_FAIL;

	if (ctl_path(s->node.state_dir, "journald.sock", &path, &e) < 0) {
		fprintf(stderr, "mdreplctl: %s\n", e.msg);
		goto out;
	}
	if (ctl_call(buf_cstr(&path), argc, (const char *const *)argv, &out, CALL_TIMEOUT_MS, &e) <
	    0) {
		fprintf(stderr, "mdreplctl: cannot reach mdrepl-journald: %s (is it running?)\n",
			e.msg);
		goto out;
	}
	fwrite(out.data ? (const char *)out.data : "", 1, out.len, stdout);
	rc = out.len > 0 && strncmp(buf_cstr(&out), "error:", 6) != 0 &&
		     strstr(buf_cstr(&out), "\nerror:") == NULL
		 ? EXIT_OK
		 : EXIT_FAIL;
out:
	buf_free(&path);
	buf_free(&out);
	return rc;
}

int cmd_notify(const struct settings *s, int argc, char **argv)
{
	if (argc < 2)
		cli_usage_error("mdreplctl", "notify needs at least one PATH");
	return call_journald(s, argc, argv);
}

/* Appends p with bytes that are not printable ASCII as \xHH. */
static void put_escaped(struct buf *out, struct slice p)
{
	for (size_t i = 0; i < p.len; i++) {
		unsigned char c = (unsigned char)p.p[i];

		if (c == '\\')
			buf_puts(out, "\\\\");
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(out, "\\x%02x", c);
		else
			buf_putc(out, (char)c);
	}
}

static void format_record(const struct jrec *r, struct buf *out)
{
	time_t sec = (time_t)(r->time_ns / 1000000000u);
	char when[32];
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_reset(out);
	buf_printf(out, "%" PRIu64 " %s.%03uZ %s", r->lsn, when,
		   (unsigned)(r->time_ns / 1000000u % 1000u), jrec_type_name(r->type));
	if (r->type == JR_STOP)
		goto done;
	buf_putc(out, ' ');
	if (r->path.len == 0)
		buf_putc(out, '.'); /* mail_root itself */
	put_escaped(out, r->path);
	if (r->type == JR_RENAME || r->type == JR_FOLDER_RENAME) {
		buf_puts(out, " -> ");
		put_escaped(out, r->path2);
	}
	if (r->type == JR_RESCAN && (r->flags & JR_F_SUBTREE))
		buf_puts(out, " subtree");
	if (r->type == JR_RESCAN && (r->flags & JR_F_DEEP))
		buf_puts(out, " deep");
done:
	buf_putc(out, '\n');
}

static int dump(const char *jdir, uint64_t from, bool follow)
{
	struct buf line = BUF_INIT;
	struct jreader *rd;
	struct jrec r;
	struct err e;
	bool gap;
	int rc;

	rd = jreader_open(jdir, from > 0 ? from - 1 : 0, &gap, &e);
	if (rd == NULL) {
		fprintf(stderr, "mdreplctl: %s\n", e.msg);
		return EXIT_FAIL;
	}
	if (gap && from > 1)
		fprintf(stderr,
			"mdreplctl: records from LSN %" PRIu64
			" on were deleted by retention; starting at the oldest one left\n",
			from);
	while (!interrupted) {
		rc = jreader_next(rd, &r, &e);
		if (rc == 1) {
			format_record(&r, &line);
			fwrite(line.data, 1, line.len, stdout);
			continue;
		}
		fflush(stdout);
		if (rc < 0 && e.code == ESTALE && follow) {
			fprintf(stderr, "mdreplctl: %s\n", e.msg);
			jreader_free(&rd);
			rd = jreader_open(jdir, 0, &gap, &e);
			if (rd != NULL)
				continue;
		}
		if (rc < 0 || rd == NULL) {
			fprintf(stderr, "mdreplctl: %s\n", e.msg);
			jreader_free(&rd);
			buf_free(&line);
			return EXIT_FAIL;
		}
		if (!follow)
			break;
		nanosleep(&(struct timespec){0, FOLLOW_POLL_MS * 1000000L}, NULL);
	}
	fflush(stdout);
	jreader_free(&rd);
	buf_free(&line);
	return EXIT_OK;
}

static int cmd_dump(const struct settings *s, int argc, char **argv)
{
	static const struct option longopts[] = {{"from", required_argument, NULL, 'F'},
						 {"follow", no_argument, NULL, 'f'},
						 {NULL, 0, NULL, 0}};
	struct sigaction sa = {.sa_handler = on_sigint};
	uint64_t from = 0;
	bool follow = false;
	char *end, *jdir;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+F:f", longopts, NULL)) != -1) {
		if (opt == 'f') {
			follow = true;
		} else if (opt == 'F') {
			errno = 0;
			from = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg)
				cli_usage_error("mdreplctl", "--from needs an LSN, not '%s'",
						optarg);
		} else {
			cli_usage_error("mdreplctl", "journal dump [--from LSN] [--follow]");
		}
	}
	if (optind < argc)
		cli_usage_error("mdreplctl", "unexpected argument '%s'", argv[optind]);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL); /* --follow ends with ^C, exit 0 */
	sigaction(SIGTERM, &sa, NULL);
	jdir = xasprintf("%s/journal", s->node.state_dir);
	rc = dump(jdir, from, follow);
	free(jdir);
	return rc;
}

int cmd_journal(const struct settings *s, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "dump") == 0)
		return cmd_dump(s, argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[1], "status") == 0)
		return call_journald(s, 1, argv + 1);
	if (argc >= 3 && strcmp(argv[1], "rescan") == 0)
		return call_journald(s, argc - 1, argv + 1);
	cli_usage_error("mdreplctl",
			"usage: journal dump [--from LSN] [--follow] | journal status | "
			"journal rescan [--deep] PATH...");
}

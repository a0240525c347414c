/*
 * cmd_audit.c — mdreplctl audit [--user USER] [--deep] [--json] [--repair]
 * [--rate-limit RATE] (DESIGN §9, mdreplctl(8)).
 *
 * On the primary: opens a read-only session (PURPOSE_AUDIT) with the
 * standby's mdrepl-syncd and takes a first look (lib/audit.h). If that
 * found differences, in-flight replication settles first — the journal
 * head is read from mdrepl-journald, and mdrepl-syncclient is asked until
 * the standby is durable up to it, at most [audit] settle_timeout_s — then
 * a second look keeps only what both found. Without rolling replication
 * the second look follows a short pause, and the report says so.
 *
 * --repair journals a rescan of each differing folder through
 * mdrepl-journald (a deep one where only content hashes differ), so the
 * rolling engine reconciles them through the normal replication path, and
 * waits (bounded) until replication has passed those records.
 *
 * On a standby it says that the audit belongs on the primary and exits 0,
 * so that the nightly timer can be enabled on both nodes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "cmd_audit.h"
#include "ctl.h"
#include "fsutil.h"
#include "json.h"
#include "nodestate.h"
#include "safepath.h"
#include "xalloc.h"

#define MIN_IO_TIMEOUT_MS  600000u /* the standby hashes a large folder before it answers */
#define JOURNAL_PICKUP_MS  200	   /* for changes just made to reach the journal head */
#define UNSETTLED_PAUSE_MS 1000	   /* without replication: the pause before the second look */
#define POLL_MS		   100
#define RESCAN_BATCH	   256		/* paths per request to journald */
#define RESCAN_BYTES	   (128u << 10) /* and their bytes, well within CTL_MAX_REQUEST */

struct args {
	const char *user;
	bool deep, json, repair;
	uint64_t rate_limit;
};

/* How the wait for in-flight replication went. */
struct settle {
	bool checked; /* there was something to re-check */
	bool running; /* rolling replication was connected */
	bool settled; /* the standby became durable up to the journal head */
	uint64_t head, durable, ms;
	const char *why; /* why replication did not count as running */
};

struct repair {
	bool queued, running, caught_up;
	size_t folders, deep_folders;
	uint64_t head, durable;
	const char *why;
	struct err error; /* code 0: none */
};

struct run {
	const struct settings *s;
	struct settings conn_set; /* s, with a longer I/O timeout */
	struct args a;
	char *prefix;
	int rootfd;
	struct md_rules *rules;
	struct digest_cache *cache;
	struct client *c;
	struct w_hello peer;
	char *peer_name;
	struct audit *au;
	struct audit_diffs diffs;
	struct audit_stats st;
	struct settle settle;
	struct repair rep;
	uint64_t start_ms, wire_in, wire_out, last_progress_ms;
	bool tty;
};

/* ---------------------------------------------------------------- options */

static int parse_rate(const char *arg, uint64_t *rate_r)
{
	struct settings tmp;
	struct buf a = BUF_INIT;
	struct err e;
	int r;

	/* The configuration's own parser, so that K, M, G and the bounds agree. */
	conf_defaults(&tmp);
	buf_printf(&a, "audit.rate_limit=%s", arg);
	r = conf_override(&tmp, buf_cstr(&a), &e);
	if (r == 0)
		*rate_r = tmp.audit.rate_limit;
	conf_free(&tmp);
	buf_free(&a);
	return r;
}

static void parse_args(const struct settings *s, int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {{"user", required_argument, NULL, 'u'},
						 {"deep", no_argument, NULL, 'd'},
						 {"json", no_argument, NULL, 'j'},
						 {"repair", no_argument, NULL, 'r'},
						 {"rate-limit", required_argument, NULL, 'l'},
						 {NULL, 0, NULL, 0}};
	int opt;

	memset(a, 0, sizeof(*a));
	a->rate_limit = s->audit.rate_limit;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+u:djrl:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u': a->user = optarg; break;
		case 'd': a->deep = true; break;
		case 'j': a->json = true; break;
		case 'r': a->repair = true; break;
		case 'l':
			if (parse_rate(optarg, &a->rate_limit) < 0)
				cli_usage_error("mdreplctl",
						"--rate-limit needs bytes per second "
						"(K, M, G suffixes; 0 = no limit), not '%s'",
						optarg);
			break;
		default:
			cli_usage_error("mdreplctl", "usage: audit [--user USER] [--deep] [--json] "
						     "[--repair] [--rate-limit BYTES_PER_S]");
		}
	}
	if (optind < argc)
		cli_usage_error("mdreplctl", "audit: unexpected argument '%s'", argv[optind]);
}

/* --user as a folder path relative to mail_root ("" = everything); it
 * may be given absolute, under mail_root. */
static int user_prefix(const struct run *r, char **out, struct err *e)
{
	const char *root = r->s->node.mail_root, *p = r->a.user;
	size_t rootlen = strlen(root), len;

	*out = NULL;
	if (p == NULL) {
		*out = xstrdup("");
		return 0;
	}
	while (rootlen > 1 && root[rootlen - 1] == '/')
		rootlen--;
	if (p[0] == '/') {
		if (strncmp(p, root, rootlen) != 0 || (p[rootlen] != '/' && p[rootlen] != '\0'))
			return err_set(e, ERR_USAGE, "--user %s is not under mail_root %s",
				       r->a.user, root);
		p += rootlen;
	}
	while (*p == '/')
		p++;
	len = strlen(p);
	while (len > 0 && p[len - 1] == '/')
		len--;
	if (len > 0 && sp_check((struct slice){p, len}, e) < 0)
		return err_prefix(e, "--user %s", r->a.user);
	*out = xstrndup(p, len);
	return 0;
}

/* ------------------------------------------------------------- set-up */

static void progress(uint64_t done, uint64_t total, void *ctx)
{
	struct run *r = ctx;
	uint64_t now = now_mono_ms();

	if (!r->tty || (now - r->last_progress_ms < 200 && done < total))
		return;
	r->last_progress_ms = now;
	fprintf(stderr, "\r  audit: folders %" PRIu64 "/%" PRIu64 "   ", done, total);
	if (done == total)
		fputs("\r                                              \r", stderr);
}

static int setup(struct run *r, struct err *e)
{
	struct buf path = BUF_INIT;
	int fd;

	if (user_prefix(r, &r->prefix, e) < 0)
		return -1;
	r->rootfd = open(r->s->node.mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->rootfd < 0)
		return err_sys(e, "cannot open mail_root %s", r->s->node.mail_root);
	if (r->prefix[0] != '\0') {
		fd = sp_open(r->rootfd, r->prefix, O_RDONLY | O_DIRECTORY, 0, e);
		if (fd < 0)
			return err_prefix(e, "--user %s: no such folder under mail_root",
					  r->a.user);
		close(fd);
	}
	r->rules = md_rules_new(r->s->node.name_separator, &r->s->journal.exclude);
	/* Shared with the rolling engine and full syncs (scancache.c merges). */
	buf_printf(&path, "%s/digest.cache", r->s->node.state_dir);
	r->cache = digest_cache_open(buf_cstr(&path));
	buf_free(&path);
	r->tty = !r->a.json && isatty(STDERR_FILENO);
	return 0;
}

static int connect_peer(struct run *r, const struct node_state *node, struct err *e)
{
	struct client_opts o = {
	    .set = &r->conn_set, .rootfd = r->rootfd, .rules = r->rules, .purpose = PURPOSE_AUDIT};
	struct audit_opts ao = {.rootfd = r->rootfd,
				.rules = r->rules,
				.cache = r->cache,
				.prefix = r->prefix,
				.deep = r->a.deep,
				.rate_limit = r->a.rate_limit,
				.progress = progress,
				.progress_ctx = r};

	r->conn_set = *r->s;
	if (r->conn_set.peer.io_timeout_ms < MIN_IO_TIMEOUT_MS)
		r->conn_set.peer.io_timeout_ms = MIN_IO_TIMEOUT_MS;
	if (client_connect(&o, &r->c, &r->peer, e) < 0)
		return err_prefix(e, "cannot reach the standby");
	r->peer_name = xstrdup(client_peer(r->c));
	if (r->peer.role == ROLE_PRIMARY)
		return err_set(e, ERR_REFUSED,
			       "%s is a primary too (generation %" PRIu64
			       "): two primaries; see mdrepl(7) before anything else",
			       r->peer_name, r->peer.generation);
	if (r->peer.generation > node->generation)
		return err_set(e, ERR_REFUSED,
			       "%s follows a newer primary (generation %" PRIu64 ", ours %" PRIu64
			       "): this node is a stale primary; run "
			       "'mdreplctl rejoin'",
			       r->peer_name, r->peer.generation, node->generation);
	r->au = audit_new(r->c, &ao);
	return 0;
}

static void teardown(struct run *r)
{
	audit_free(&r->au);
	client_free(&r->c);
	audit_diffs_free(&r->diffs);
	digest_cache_free(&r->cache);
	md_rules_free(&r->rules);
	if (r->rootfd >= 0)
		close(r->rootfd);
	free(r->prefix);
	free(r->peer_name);
}

/* ------------------------------------------------- replication positions */

/* A local daemon's status object; -1 if it does not answer. */
static int status_of(const struct run *r, const char *daemon, struct buf *out)
{
	const char *req[] = {"status"};
	struct err e;

	buf_reset(out);
	if (ctl_ask(r->s, daemon, 1, req, out, &e) < 0 || out->len == 0 || out->data[0] != '{')
		return -1;
	return 0;
}

/* Waits ms, keeping the audit session (if still open) alive. */
static int pause_ms(struct run *r, uint64_t ms, struct err *e)
{
	if (r->au != NULL)
		return audit_pause(r->au, ms, e);
	poll(NULL, 0, (int)ms);
	return 0;
}

/* The rolling engine's position marker: it changes while it works. */
static void activity(const char *st, struct buf *mark)
{
	static const char *const keys[] = {"read_lsn", "sent_lsn", "durable_lsn", "wire_bytes_out",
					   "wire_bytes_in"};

	buf_reset(mark);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		buf_printf(mark, "%.0f,", json_lookup_num(st, keys[i], 0));
}

/* Waits until mdrepl-syncclient reports the standby durable at lsn, for
 * at most limit_ms (counted from its last sign of work when `idle`).
 * Returns 0 — *caught_r says whether it got there, *running_r whether
 * the syncclient kept answering — or -1 if the session failed. */
static int wait_durable(struct run *r, uint64_t lsn, uint64_t limit_ms, bool idle,
			uint64_t *durable_r, bool *caught_r, bool *running_r, struct err *e)
{
	struct buf st = BUF_INIT, mark = BUF_INIT, last = BUF_INIT;
	uint64_t deadline = now_mono_ms() + limit_ms;
	int rc = 0;

	*caught_r = false;
	*running_r = true;
	while (rc == 0) {
		if (status_of(r, "syncclient", &st) < 0 ||
		    !json_lookup_bool(buf_cstr(&st), "connected")) {
			*running_r = false;
			break;
		}
		*durable_r = (uint64_t)json_lookup_num(buf_cstr(&st), "durable_lsn", 0);
		if (*durable_r >= lsn) {
			*caught_r = true;
			break;
		}
		activity(buf_cstr(&st), &mark);
		if (idle && !slice_eq(buf_slice(&mark), buf_slice(&last))) {
			deadline = now_mono_ms() + limit_ms;
			buf_set(&last, mark.data, mark.len);
		}
		if (now_mono_ms() >= deadline)
			break;
		rc = pause_ms(r, POLL_MS, e);
	}
	buf_free(&st);
	buf_free(&mark);
	buf_free(&last);
	return rc;
}

/* The journal head, once changes just made had time to reach it.
 * Returns 0, 1 if mdrepl-journald does not answer or is not journaling,
 * or -1 if the session failed meanwhile. */
static int journal_head(struct run *r, uint64_t *head_r, struct err *e)
{
	struct buf st = BUF_INIT;
	int rc = 1;

	if (pause_ms(r, JOURNAL_PICKUP_MS, e) < 0)
		return -1;
	if (status_of(r, "journald", &st) == 0 && json_lookup_bool(buf_cstr(&st), "journaling")) {
		*head_r = (uint64_t)json_lookup_num(buf_cstr(&st), "head_lsn", 0);
		rc = 0;
	}
	buf_free(&st);
	return rc;
}

/* Lets in-flight replication settle before the second look. */
static int settle(struct run *r, struct err *e)
{
	struct settle *st = &r->settle;
	uint64_t start = now_mono_ms();
	struct buf sc = BUF_INIT;
	int rc = 0;

	st->checked = true;
	if (status_of(r, "syncclient", &sc) < 0)
		st->why = "mdrepl-syncclient is not running";
	else if (!json_lookup_bool(buf_cstr(&sc), "connected"))
		st->why = "mdrepl-syncclient is not connected to the standby";
	else if ((rc = journal_head(r, &st->head, e)) == 1)
		st->why = "mdrepl-journald is not journaling";
	buf_free(&sc);
	if (rc < 0)
		return -1;
	if (st->why != NULL)
		rc = pause_ms(r, UNSETTLED_PAUSE_MS, e);
	else
		rc = wait_durable(r, st->head, r->s->audit.settle_timeout_s * 1000, false,
				  &st->durable, &st->settled, &st->running, e);
	if (st->why == NULL && !st->running)
		st->why = "mdrepl-syncclient stopped answering";
	st->ms = now_mono_ms() - start;
	return rc;
}

/* ------------------------------------------------------------- repair */

struct target {
	const char *folder;
	bool deep;
};

static int target_cmp(const void *a, const void *b)
{
	return strcmp(((const struct target *)a)->folder, ((const struct target *)b)->folder);
}

/* Asks journald to journal rescans of paths; -1 if it refused any. */
static int ask_rescans(struct run *r, const char **paths, size_t n, bool deep, struct err *e)
{
	const char **argv = xcalloc(RESCAN_BATCH + 3, sizeof(*argv));
	struct buf out = BUF_INIT;
	size_t i = 0;
	int rc = 0;

	while (rc == 0 && i < n) {
		int argc = 0;
		size_t bytes = 0;

		argv[argc++] = "rescan";
		if (deep)
			argv[argc++] = "--deep";
		for (; i < n && argc < RESCAN_BATCH + 2 && bytes < RESCAN_BYTES; i++) {
			argv[argc++] = paths[i][0] ? paths[i] : ".";
			bytes += strlen(paths[i]) + 1;
		}
		if (ctl_ask(r->s, "journald", argc, argv, &out, e) < 0) {
			rc = err_prefix(e, "cannot queue the repair (is mdrepl-journald running?)");
		} else if (strncmp(buf_cstr(&out), "error:", 6) == 0 ||
			   strstr(buf_cstr(&out), "\nerror:") != NULL) {
			const char *l = strstr(buf_cstr(&out), "error:");

			rc = err_set(e, EIO, "mdrepl-journald refused the repair: %.*s",
				     (int)strcspn(l, "\n"), l);
		}
	}
	free(argv);
	buf_free(&out);
	return rc;
}

/* Journals a rescan of every differing folder, then waits for replication. */
static int repair(struct run *r, struct err *e)
{
	struct target *t = xcalloc(r->diffs.n, sizeof(*t));
	const char **plain = xcalloc(r->diffs.n, sizeof(*plain));
	const char **deep = xcalloc(r->diffs.n, sizeof(*deep));
	size_t n = 0, np = 0, nd = 0;
	int rc;

	for (size_t i = 0; i < r->diffs.n; i++)
		t[i] = (struct target){r->diffs.v[i].folder, r->diffs.v[i].by_hash};
	qsort(t, r->diffs.n, sizeof(*t), target_cmp);
	for (size_t i = 0; i < r->diffs.n; i++) {
		if (n > 0 && strcmp(t[n - 1].folder, t[i].folder) == 0)
			t[n - 1].deep |= t[i].deep;
		else
			t[n++] = t[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (t[i].deep)
			deep[nd++] = t[i].folder;
		else
			plain[np++] = t[i].folder;
	}
	r->rep.folders = n;
	r->rep.deep_folders = nd;
	rc = ask_rescans(r, plain, np, false, e);
	if (rc == 0)
		rc = ask_rescans(r, deep, nd, true, e);
	free(t);
	free(plain);
	free(deep);
	if (rc < 0)
		return -1;
	r->rep.queued = true;
	if ((rc = journal_head(r, &r->rep.head, e)) != 0)
		return rc == 1 ? err_set(e, EIO, "mdrepl-journald stopped answering") : -1;
	rc = wait_durable(r, r->rep.head, r->s->audit.settle_timeout_s * 1000, true,
			  &r->rep.durable, &r->rep.caught_up, &r->rep.running, e);
	if (!r->rep.running)
		r->rep.why = "mdrepl-syncclient is not running or not connected";
	return rc;
}

/* ------------------------------------------------------------- the run */

static int examine(struct run *r, struct err *e)
{
	if (audit_scan(r->au, &r->diffs, &r->st, e) < 0)
		return -1;
	if (r->prefix[0] != '\0' && r->st.folders == 0)
		return err_set(e, ERR_USAGE,
			       "--user %s is not a folder (a Maildir folder, or a directory above "
			       "some)",
			       r->a.user);
	if (r->diffs.n > 0) {
		if (settle(r, e) < 0 || audit_recheck(r->au, &r->diffs, e) < 0)
			return -1;
	}
	r->wire_in = client_wire_in(r->c);
	r->wire_out = client_wire_out(r->c);
	/* The session is done: a repair waits on the local daemons only. */
	audit_free(&r->au);
	client_free(&r->c);
	/* A repair that fails still leaves a report of what differs. */
	if (r->a.repair && r->diffs.n > 0 && repair(r, &r->rep.error) < 0 && r->rep.error.code == 0)
		r->rep.error.code = EIO;
	return 0;
}

/* -------------------------------------------------------------- reports */

static double mb(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* "812 B", "49.3 KB", "1.2 MB": so that a clean audit's few bytes show. */
static void human(uint64_t bytes, char *out, size_t len)
{
	static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* Paths as they are, except bytes a terminal would act on. */
static void put_path(const char *p)
{
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\\')
			fputs("\\\\", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void text_difference(const struct audit_diff *d)
{
	printf("%-15s ", audit_kind_name(d->kind));
	put_path(d->path[0] ? d->path : ".");
	if (d->standby_path != NULL) {
		fputs(" (standby: ", stdout);
		put_path(d->standby_path);
		putchar(')');
	}
	if (d->by_hash)
		fputs(" (same size, other SHA-256)", stdout);
	putchar('\n');
}

static void text_notes(const struct run *r)
{
	const struct settle *st = &r->settle;

	if (r->a.deep)
		printf("contents: %.1f MB hashed here, %.1f MB on the standby%s", mb(r->st.hashed),
		       mb(r->st.peer_hashed), r->a.rate_limit ? "" : "\n");
	if (r->a.deep && r->a.rate_limit)
		printf(", at most %.1f MB/s each (%.1f s waited)\n", mb(r->a.rate_limit),
		       (double)r->st.paced_ms / 1000.0);
	if (st->checked && st->why != NULL)
		printf("note: replication was not running (%s): differences were re-checked "
		       "after a pause, and some may be changes not yet replicated\n",
		       st->why);
	else if (st->checked && !st->settled)
		printf("note: the standby did not catch up with the journal within %" PRIu64
		       " s (durable lsn %" PRIu64 " of %" PRIu64
		       "): some differences may be changes still in flight\n",
		       r->s->audit.settle_timeout_s, st->durable, st->head);
}

static void text_repair(const struct run *r)
{
	const struct repair *p = &r->rep;

	if (!r->a.repair || r->diffs.n == 0)
		return;
	if (p->error.code != 0)
		printf("repair failed: %s\n", p->error.msg);
	else if (p->caught_up)
		printf("repaired %zu difference%s: %zu folder%s rescanned (%zu deep), replication "
		       "caught up at lsn %" PRIu64 "\n",
		       r->diffs.n, r->diffs.n == 1 ? "" : "s", p->folders,
		       p->folders == 1 ? "" : "s", p->deep_folders, p->head);
	else
		printf("repair queued: %zu folder%s rescanned (%zu deep) up to lsn %" PRIu64
		       ", but %s; run the audit again later\n",
		       p->folders, p->folders == 1 ? "" : "s", p->deep_folders, p->head,
		       p->why ? p->why : "replication has not caught up yet");
}

static void report_text(const struct run *r)
{
	double secs = (double)(now_mono_ms() - r->start_ms) / 1000.0;
	char wire[32];

	printf("audit%s", r->a.deep ? " (deep)" : "");
	if (r->prefix[0] != '\0') {
		fputs(" of ", stdout);
		put_path(r->prefix);
	}
	human(r->wire_in + r->wire_out, wire, sizeof(wire));
	printf(": %" PRIu64 " messages in %" PRIu64 " folders compared, %zu difference%s, "
	       "%s on the wire, %.1f s\n",
	       r->st.messages, r->st.folders, r->diffs.n, r->diffs.n == 1 ? "" : "s", wire, secs);
	text_notes(r);
	for (size_t i = 0; i < r->diffs.n; i++)
		text_difference(&r->diffs.v[i]);
	text_repair(r);
}

static void json_settle(struct json *j, const struct settle *st)
{
	json_key(j, "settle");
	if (!st->checked) {
		json_null(j);
		return;
	}
	json_begin_obj(j);
	json_key_bool(j, "replication_running", st->why == NULL);
	if (st->why != NULL)
		json_key_str(j, "why", st->why);
	json_key_bool(j, "settled", st->settled);
	json_key_u64(j, "head_lsn", st->head);
	json_key_u64(j, "durable_lsn", st->durable);
	json_key_double(j, "seconds", (double)st->ms / 1000.0);
	json_end_obj(j);
}

static void json_repair(struct json *j, const struct run *r)
{
	const struct repair *p = &r->rep;

	json_key(j, "repair");
	if (!r->a.repair || r->diffs.n == 0) {
		json_null(j);
		return;
	}
	json_begin_obj(j);
	json_key_u64(j, "folders", p->folders);
	json_key_u64(j, "deep_folders", p->deep_folders);
	json_key_u64(j, "lsn", p->head);
	json_key_bool(j, "caught_up", p->caught_up);
	json_key_u64(j, "durable_lsn", p->durable);
	if (p->why != NULL)
		json_key_str(j, "why", p->why);
	if (p->error.code != 0)
		json_key_str(j, "error", p->error.msg);
	json_end_obj(j);
}

static void json_items(struct json *j, const struct audit_diffs *d)
{
	json_key(j, "items");
	json_begin_arr(j);
	for (size_t i = 0; i < d->n; i++) {
		json_begin_obj(j);
		json_key_str(j, "kind", audit_kind_name(d->v[i].kind));
		json_key_str(j, "path", d->v[i].path);
		json_key_str(j, "folder", d->v[i].folder);
		if (d->v[i].standby_path != NULL)
			json_key_str(j, "standby_path", d->v[i].standby_path);
		if (d->v[i].kind == AK_CONTENT)
			json_key_bool(j, "by_hash", d->v[i].by_hash);
		json_end_obj(j);
	}
	json_end_arr(j);
}

static void report_json(const struct run *r)
{
	uint64_t hits = 0, misses = 0;
	struct buf out = BUF_INIT;
	struct json j;

	digest_cache_stats(r->cache, &hits, &misses);
	json_init(&j, &out);
	json_begin_obj(&j);
	json_key_str(&j, "role", "primary");
	json_key_str(&j, "peer", r->peer_name);
	json_key_str(&j, "user", r->prefix);
	json_key_bool(&j, "deep", r->a.deep);
	json_key_u64(&j, "folders", r->st.folders);
	json_key_u64(&j, "messages", r->st.messages);
	json_key_u64(&j, "message_bytes", r->st.bytes);
	json_key_u64(&j, "differences", r->diffs.n);
	json_key_u64(&j, "folders_listed", r->st.folders_listed);
	json_key_u64(&j, "client_wire_in", r->wire_in);
	json_key_u64(&j, "client_wire_out", r->wire_out);
	json_key_u64(&j, "digest_cache_hits", hits);
	json_key_u64(&j, "digest_cache_misses", misses);
	json_key_u64(&j, "hashed_bytes", r->st.hashed);
	json_key_u64(&j, "peer_hashed_bytes", r->st.peer_hashed);
	json_key_u64(&j, "rate_limit", r->a.rate_limit);
	json_key_double(&j, "paced_seconds", (double)r->st.paced_ms / 1000.0);
	json_key_double(&j, "seconds", (double)(now_mono_ms() - r->start_ms) / 1000.0);
	json_settle(&j, &r->settle);
	json_repair(&j, r);
	json_items(&j, &r->diffs);
	json_end_obj(&j);
	printf("%s\n", buf_cstr(&out));
	buf_free(&out);
}

/* On a standby, or a fenced primary, there is nothing to compare here. */
static int not_primary(const struct args *a, const struct node_state *node)
{
	const char *msg = node->role == ROLE_STANDBY
			      ? "this node is a standby; the audit runs on the primary"
			      : "this primary is fenced by a newer primary; audit from that one, "
				"and run 'mdreplctl rejoin' here";

	if (node->role != ROLE_STANDBY) {
		fprintf(stderr, "mdreplctl: audit: %s\n", msg);
		return EXIT_USAGE;
	}
	if (a->json)
		printf("{\"role\":\"standby\",\"differences\":0,\"message\":\"%s\"}\n", msg);
	else
		printf("audit: %s (nothing compared)\n", msg);
	return EXIT_OK;
}

int cmd_audit(const struct settings *s, int argc, char **argv)
{
	struct run r = {.s = s, .rootfd = -1, .start_ms = now_mono_ms()};
	struct node_state node;
	struct err e;
	int rc;

	parse_args(s, argc, argv, &r.a);
	if (nodestate_load(s->node.state_dir, s->node.initial_role, &node, &e) < 0) {
		fprintf(stderr, "mdreplctl: audit: %s\n", e.msg);
		return EXIT_USAGE;
	}
	if (node.role != ROLE_PRIMARY || node.fenced)
		return not_primary(&r.a, &node);
	if (setup(&r, &e) < 0 || connect_peer(&r, &node, &e) < 0 || examine(&r, &e) < 0) {
		fprintf(stderr, "mdreplctl: audit: %s\n", e.msg);
		rc = EXIT_USAGE;
	} else {
		if (r.a.json)
			report_json(&r);
		else
			report_text(&r);
		rc = r.rep.error.code != 0 ? EXIT_USAGE : r.diffs.n > 0 ? EXIT_FAIL : EXIT_OK;
	}
	fflush(stdout);
	teardown(&r);
	return rc;
}

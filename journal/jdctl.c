/*
 * jdctl.c — mdrepl-journald's control commands (over ctlsock.h):
 *   status            one JSON object
 *   notify PATH...    an MDA or IMAP server reports changed paths
 *   rescan [--deep] PATH...
 *                     ask for a compare of folders (subtrees); --deep: of
 *                     message contents too (what audit --deep found)
 *   role              re-read node.state now
 * Replies are "ok ..." / "error: ..." lines (one per path), JSON for status.
 *
 * SECURITY: the socket is reachable by root and journald's own uid only
 * (ctlsock.c), but paths are still checked: absolute ones must lie under
 * mail_root, relative ones are relative to it, no "..", no symlinks
 * followed when looking at them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "journald.h"
#include "json.h"
#include "safepath.h"

/* Turns arg into a path relative to mail_root ("" = mail_root itself).
 * Returns 0, or -1 with the reason in why. */
static int to_relative(const char *root, const char *arg, struct buf *rel, struct buf *why)
{
	size_t rootlen = strlen(root);
	const char *p = arg;
	struct err e;

	while (rootlen > 1 && root[rootlen - 1] == '/')
		rootlen--;
	if (arg[0] == '/') {
		if (strncmp(arg, root, rootlen) != 0 ||
		    (arg[rootlen] != '/' && arg[rootlen] != '\0')) {
			buf_printf(why, "not under mail_root %.*s", (int)rootlen, root);
			return -1;
		}
		p = arg + rootlen;
		while (*p == '/')
			p++;
	}
	buf_set(rel, p, strlen(p));
	while (rel->len > 0 && rel->data[rel->len - 1] == '/')
		buf_truncate(rel, rel->len - 1);
	if (rel->len == 0 || strcmp(buf_cstr(rel), ".") == 0) {
		buf_reset(rel);
		return 0;
	}
	if (sp_check(buf_slice(rel), &e) < 0) {
		buf_printf(why, "%s", e.msg);
		return -1;
	}
	return 0;
}

/* lstat of rel beneath rootfd. Returns 0, or -1 (errno ENOENT: missing). */
static int stat_rel(int rootfd, const char *rel, struct stat *sb)
{
	const char *name;
	int dfd, r;

	if (rel[0] == '\0')
		return fstat(rootfd, sb);
	dfd = sp_open_parent(rootfd, rel, &name, NULL);
	if (dfd < 0)
		return -1;
	r = fstatat(dfd, name, sb, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	return r;
}

/* Decides what a notified path means: a record type and its path. */
static const char *notify_kind(struct jd *jd, int rootfd, struct buf *rel, enum jrec_type *t)
{
	struct slice s = buf_slice(rel);
	struct md_class c;
	struct stat sb;

	if (stat_rel(rootfd, buf_cstr(rel), &sb) == 0) {
		md_classify(jd->rules, s, S_ISDIR(sb.st_mode), &c);
		*t = S_ISDIR(sb.st_mode) ? JR_RESCAN
		     : c.kind == MD_META ? JR_META_CHANGED
					 : JR_CREATE;
		if (rel->len == 0 || (S_ISDIR(sb.st_mode) && c.kind == MD_DIR))
			return NULL;
		if (S_ISDIR(sb.st_mode) && (c.kind == MD_SUBDIR || c.kind == MD_META)) {
			buf_truncate(rel, c.folder.len); /* its folder, a prefix of rel */
			return NULL;
		}
		if (!S_ISDIR(sb.st_mode) && (c.kind == MD_MESSAGE || c.kind == MD_META))
			return NULL;
		return "not replicated (tmp/, excluded, or not part of a Maildir)";
	}
	if (errno != ENOENT && errno != ENOTDIR)
		return strerror(errno);
	md_classify(jd->rules, s, false, &c);
	if (c.kind == MD_MESSAGE || c.kind == MD_META) {
		*t = JR_UNLINK;
		return NULL;
	}
	md_classify(jd->rules, s, true, &c);
	if (c.kind == MD_DIR || c.kind == MD_SUBDIR) {
		*t = JR_FOLDER_DELETE;
		return NULL;
	}
	return "does not exist and is not a replicated name";
}

/* notify and rescan: one reply line per path. */
static void paths_cmd(struct jd *jd, bool rescan, int argc, char **argv, struct buf *out)
{
	struct buf rel = BUF_INIT, why = BUF_INIT;
	uint32_t flags = rescan ? JR_F_SUBTREE : 0;
	int rootfd;

	if (rescan && argc >= 2 && strcmp(argv[1], "--deep") == 0) {
		flags |= JR_F_DEEP;
		argc--;
		argv++;
	}
	if (argc < 2) {
		buf_printf(out, "error: usage: %s PATH...\n", rescan ? "rescan [--deep]" : argv[0]);
		return;
	}
	rootfd = open(jd->s->node.mail_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		buf_printf(out, "error: cannot open mail_root %s: %s\n", jd->s->node.mail_root,
			   strerror(errno));
		return;
	}
	for (int i = 1; i < argc; i++) {
		enum jrec_type t = JR_RESCAN;
		const char *bad = NULL;

		buf_reset(&why);
		if (to_relative(jd->s->node.mail_root, argv[i], &rel, &why) < 0)
			bad = buf_cstr(&why);
		else if (!rescan)
			bad = notify_kind(jd, rootfd, &rel, &t);
		if (bad != NULL) {
			buf_printf(out, "error: %s: %s\n", argv[i], bad);
			continue;
		}
		if (jd_append(jd, t, flags, buf_slice(&rel), SLICE_LIT("")) < 0) {
			buf_printf(out, "error: %s: cannot journal it: %s\n", argv[i],
				   jd->last_error);
			continue;
		}
		buf_printf(out, "ok %s%s%s %s\n", jrec_type_name(t), rescan ? " subtree" : "",
			   flags & JR_F_DEEP ? " deep" : "",
			   rel.len > 0 ? buf_cstr(&rel) : "(mail_root)");
	}
	close(rootfd);
	buf_free(&rel);
	buf_free(&why);
}

void jd_status_json(struct jd *jd, struct buf *out)
{
	struct watcher_stats ws = {0};
	struct journal_stats js = {0};
	uint64_t acked_id = 0, acked = 0;
	struct json j;
	char id[17];

	if (jd->w != NULL)
		watcher_get_stats(jd->w, &ws);
	if (jd->j != NULL) {
		journal_get_stats(jd->j, &js);
		journal_read_acked(jd->jdir, &acked_id, &acked, NULL);
		snprintf(id, sizeof(id), "%016" PRIx64, journal_id(jd->j));
	}
	json_init(&j, out);
	json_begin_obj(&j);
	json_key_str(&j, "role", role_name(jd->role));
	json_key_bool(&j, "journaling", jd->w != NULL);
	json_key(&j, "journal_id");
	if (jd->j != NULL)
		json_str(&j, id);
	else
		json_null(&j);
	json_key_u64(&j, "head_lsn", jd->j ? journal_head(jd->j) : 0);
	json_key_u64(&j, "durable_lsn", jd->j ? journal_durable(jd->j) : 0);
	json_key_u64(&j, "size_bytes", jd->j ? journal_size(jd->j) : 0);
	json_key_u64(&j, "segments", js.segments);
	json_key_u64(&j, "acked_lsn", jd->j && acked_id == journal_id(jd->j) ? acked : 0);
	json_key_bool(&j, "needs_full_sync", journal_needs_full_sync(jd->jdir));
	json_key_u64(&j, "watches", ws.watches);
	json_key_u64(&j, "failed_watches", ws.failed);
	json_key_u64(&j, "events", ws.events);
	json_key_u64(&j, "records", jd->records);
	json_key_u64(&j, "fsyncs", js.fsyncs);
	json_key_u64(&j, "overflows", ws.overflows);
	json_key_u64(&j, "rescans", jd->rescans);
	json_key_str(&j, "last_error", jd->last_error);
	json_key_u64(&j, "uptime_s", (now_mono_ms() - jd->start_ms) / 1000);
	json_end_obj(&j);
	buf_putc(out, '\n');
}

void jdctl_handle(struct jd *jd, int argc, char **argv, struct buf *out)
{
	const char *cmd = argc > 0 ? argv[0] : "";

	if (strcmp(cmd, "status") == 0) {
		jd_status_json(jd, out);
	} else if (strcmp(cmd, "role") == 0) {
		jd_check_role(jd, true);
		buf_printf(out, "ok role %s\n", role_name(jd->role));
	} else if (strcmp(cmd, "notify") == 0 || strcmp(cmd, "rescan") == 0) {
		if (jd->j == NULL)
			buf_printf(out,
				   "error: this node is a %s: mdrepl-journald is not journaling\n",
				   role_name(jd->role));
		else
			paths_cmd(jd, cmd[0] == 'r', argc, argv, out);
	} else {
		buf_printf(out, "error: unknown command '%s' (status, notify, rescan, role)\n",
			   cmd);
	}
}

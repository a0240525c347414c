/*
 * gen_corpus.c — writes the seed corpora of the fuzz targets (`make
 * fuzz-corpus`, see tests/fuzz/README) into DIR/<target>/, from the real
 * writers wherever there is one: wire frames from tests/wiresamples.c,
 * journal segments from the journal writer, state files from their save
 * functions, signatures and deltas from librsync.
 *
 * Usage: gen_corpus DIR [TARGET...] (default: all targets).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "delta.h"
#include "fsutil.h"
#include "fuzz_apply.h"
#include "journal.h"
#include "maildir.h"
#include "nodestate.h"
#include "scan.h"
#include "standbypos.h"
#include "wiresamples.h"

static char outdir[4096];

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void write_file(const char *name, const void *p, size_t n)
{
	char path[8192];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die(path);
}

static void write_buf(const char *name, const struct buf *b)
{
	write_file(name, b->data, b->len);
}

/* A scratch directory for the writers; removed by the caller. */
static char *scratch_dir(void)
{
	char tmpl[] = "/tmp/mdrepl-gencorpus-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (d == NULL)
		die("mkdtemp");
	return strdup(d);
}

static void read_all(const char *dir, const char *name, struct buf *out)
{
	struct err e;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	buf_reset(out);
	if (fd < 0 || fs_read_file(fd, name, out, 64u << 20, &e) < 0) {
		fprintf(stderr, "%s/%s: %s\n", dir, name, e.msg);
		exit(1);
	}
	close(fd);
}

/* ---------------------------------------------------------------- wire */

static void gen_wire(void)
{
	struct buf frame = BUF_INIT, all = BUF_INIT;
	char name[32];

	for (size_t i = 0; i < ws_count(); i++) {
		union w_msg m;
		struct w_frame f;
		size_t used;
		uint8_t t = ws_sample(i, &m);

		buf_reset(&frame);
		if (wire_encode(&frame, t, &m, NULL) < 0 ||
		    wire_frame_parse(frame.data, frame.len, &f, &used, NULL) != 1)
			abort();
		snprintf(name, sizeof(name), "frame-%02zu", i);
		write_buf(name, &frame);
		buf_append(&all, frame.data, frame.len);
		/* Type byte + payload: overwrite the header in place. */
		snprintf(name, sizeof(name), "msg-%02zu", i);
		frame.data[f.payload - frame.data - 1] = t;
		write_file(name, f.payload - 1, f.len + 1);
	}
	write_buf("stream", &all);
	buf_free(&frame);
	buf_free(&all);
}

/* ------------------------------------------------------------- journal */

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_segment(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && strcmp(d->d_name + n - 4, ".seg") == 0;
}

/* Writes a fuzz_journal input: flags, [after], segments in LSN order. */
static void journal_seed(const char *name, const char *dir, uint8_t flags, uint64_t after,
			 size_t cut, int only_last)
{
	struct buf in = BUF_INIT, seg = BUF_INIT;
	struct dirent **v;
	int n = scandir(dir, &v, is_segment, by_name);

	if (n < 0)
		die(dir);
	buf_putc(&in, (char)flags);
	if (flags & 4) {
		for (int i = 0; i < 8; i++)
			buf_putc(&in, (char)(after >> (8 * i)));
	}
	for (int i = 0; i < n; i++) {
		if (!only_last || i == n - 1) {
			read_all(dir, v[i]->d_name, &seg);
			buf_append(&in, seg.data, seg.len);
		}
		free(v[i]);
	}
	free(v);
	buf_truncate(&in, in.len - cut);
	write_buf(name, &in);
	buf_free(&in);
	buf_free(&seg);
}

static void gen_journal(void)
{
	static const struct {
		enum jrec_type t;
		const char *p, *p2;
	} recs[] = {
	    {JR_FOLDER_CREATE, "u/Maildir/.Sent", ""},
	    {JR_CREATE, "u/Maildir/new/1700000000.M1P2.host,S=1234", ""},
	    {JR_RENAME, "u/Maildir/new/1700000000.M1P2.host,S=1234",
	     "u/Maildir/cur/1700000000.M1P2.host,S=1234:2,S"},
	    {JR_META_CHANGED, "u/Maildir/dovecot-uidlist", ""},
	    {JR_UNLINK, "u/Maildir/cur/1700000000.M1P2.host,S=1234:2,S", ""},
	    {JR_FOLDER_RENAME, "u/Maildir/.Sent", "u/Maildir/.Archive"},
	    {JR_RESCAN, "u/Maildir", ""},
	    {JR_FOLDER_DELETE, "u/Maildir/.Archive", ""},
	};
	struct journal_opts o = {.fsync_interval_ms = 50, .fsync_records = 1000,
				 .segment_size = 600, .max_size = 1 << 30};
	char *dir = scratch_dir();
	struct journal *j;
	struct err e;
	bool clean;

	j = journal_open(dir, &o, &clean, &e);
	if (j == NULL) {
		fprintf(stderr, "%s\n", e.msg);
		exit(1);
	}
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
			uint32_t flags = recs[i].t == JR_RESCAN ? JR_F_SUBTREE : 0;

			if (journal_append(j, recs[i].t, flags, slice_cstr(recs[i].p),
					   slice_cstr(recs[i].p2), NULL, &e) < 0)
				abort();
		}
	}
	if (journal_close_clean(&j, &e) < 0)
		abort();
	journal_seed("segments", dir, 0, 0, 0, 0);
	journal_seed("segments-write", dir, 2, 0, 0, 0);
	journal_seed("segments-fix-write", dir, 3, 0, 0, 0);
	journal_seed("after-5", dir, 4, 5, 0, 0);
	journal_seed("after-20-write", dir, 6, 20, 0, 0);
	journal_seed("torn-write", dir, 2, 0, 9, 0);
	journal_seed("torn-fix-write", dir, 3, 0, 30, 0);
	journal_seed("newest", dir, 2, 0, 0, 1);
	fs_rmtree_at(AT_FDCWD, dir, NULL);
	free(dir);
}

/* ---------------------------------------------------------------- conf */

static void gen_conf(void)
{
	struct settings s;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	conf_defaults(&s);
	conf_dump(&s, f);
	fclose(f);
	write_file("defaults", text, len);
	free(text);
	conf_free(&s);
	static const char *const seeds[][2] = {
	    {"example",
	     "# mdrepl.conf\n[node]\nmail_root = /var/vmail\nstate_dir = /var/lib/mdrepl\n"
	     "initial_role = primary\nname_separator = ;\n\n[journal]\nmax_size = 4GiB\n"
	     "exclude = dovecot.index*, *.tmp ; comment\n[listen]\naddress = [::1]:7870\n"
	     "[peer]\naddress = standby.example.net:7870\n[tls]\nca_file = /etc/mdrepl/ca.pem\n"
	     "cert_file = /etc/mdrepl/node.pem\nkey_file = /etc/mdrepl/node.key\n"
	     "peer_fingerprint = AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:"
	     "45:67:89:AB:CD:EF:01:23:45:67:89\ninsecure = no\n[sync]\nwindow = 8\n"
	     "apply_sync = fsync\n[audit]\nrate_limit = 10M\n[hooks]\ndir = \"/etc/mdrepl/hooks "
	     "d # not a comment \\\" \\\\\"\n[log]\nlevel = debug\ntarget = syslog\n"},
	    {"overrides", "[node]\nmail_root = /srv/mail\n%%\nnode.state_dir=/tmp/x\n"
			  "sync.window = 64\ntls.insecure=yes\njournal.exclude=\"a, b\"\n"
			  "listen.address=127.0.0.1:0\nnode.name_separator=\";\"\n"},
	    {"errors", "[node]\nmail_root = relative\n"},
	    {"crlf", "[node]\r\nmail_root = /m\r\n; comment\r\n"},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		write_file(seeds[i][0], seeds[i][1], strlen(seeds[i][1]));
}

/* --------------------------------------------------------------- delta */

static void delta_seed(const char *name, uint8_t mode, struct slice a, struct slice b)
{
	struct buf in = BUF_INIT;

	buf_putc(&in, (char)mode);
	buf_putc(&in, (char)(a.len & 0xff));
	buf_putc(&in, (char)(a.len >> 8));
	buf_put_slice(&in, a);
	buf_put_slice(&in, b);
	write_buf(name, &in);
	buf_free(&in);
}

static void gen_delta(void)
{
	struct buf v1 = BUF_INIT, v2 = BUF_INIT, sig = BUF_INIT, delta = BUF_INIT;
	struct err e;

	buf_puts(&v1, "3 V1700000000 N40 G3085f01b7f4f1e5e0a1d0000\n");
	for (int i = 1; i < 40; i++)
		buf_printf(&v1, "%d :1700000%03d.M%dP1.host,S=%d,W=%d\n", i, i, i, 1000 + i,
			   1020 + i);
	buf_set(&v2, v1.data, v1.len);
	buf_puts(&v2, "40 :1700000040.M40P1.host,S=1040,W=1060\n");
	if (delta_signature_buf(buf_slice(&v1), &sig, &e) < 0 ||
	    delta_make(buf_slice(&sig), buf_slice(&v2), 1 << 20, &delta, &e) != 0)
		abort();
	delta_seed("sig-uidlist", 0, buf_slice(&sig), buf_slice(&v2));
	delta_seed("patch-uidlist", 1, buf_slice(&v1), buf_slice(&delta));
	delta_seed("roundtrip-uidlist", 2, buf_slice(&v1), buf_slice(&v2));
	delta_seed("roundtrip-empty", 2, SLICE_LIT(""), SLICE_LIT("new\n"));
	buf_free(&v1);
	buf_free(&v2);
	buf_free(&sig);
	buf_free(&delta);
}

/* --------------------------------------------------------------- state */

static void state_seed(const char *name, uint8_t which, const char *dir, const char *file,
		       size_t drop_tail)
{
	struct buf in = BUF_INIT, b = BUF_INIT;

	read_all(dir, file, &b);
	buf_putc(&in, (char)which);
	buf_append(&in, b.data, b.len - drop_tail);
	write_buf(name, &in);
	buf_free(&in);
	buf_free(&b);
}

static void gen_state(void)
{
	char *dir = scratch_dir(), root[4200], cache[4200];
	struct node_state st = {.role = ROLE_PRIMARY, .generation = 7,
				.max_seen_generation = 9, .fenced = true, .fenced_by = 9};
	struct standby_pos pos = {.journal_id = 0x1234abcd5678ef90ULL, .durable_lsn = 42,
				  .generation = 7, .updated_ns = 1700000000123456789ULL};
	struct md_rules *rules = md_rules_new(':', NULL);
	struct digest_cache *c;
	uint8_t d[WIRE_DIGEST_LEN];
	struct err e;
	int rootfd;

	memset(st.node_id, 0xa5, NODE_ID_LEN);
	memset(pos.primary_id, 0x5a, NODE_ID_LEN);
	if (nodestate_save(dir, &st, &e) < 0 || standbypos_save(dir, &pos, &e) < 0 ||
	    journal_write_acked(dir, 0x1234abcd5678ef90ULL, 41, &e) < 0)
		abort();
	state_seed("node.state", 0, dir, "node.state", 0);
	state_seed("standby.pos", 1, dir, "standby.pos", 0);
	state_seed("acked", 2, dir, "acked", 0);

	/* A digest cache stores only folders untouched for two seconds. */
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(cache, sizeof(cache), "%s/digest.cache", dir);
	if (fs_mkdir_p(root, 0700, &e) < 0 || (rootfd = open(root, O_RDONLY | O_DIRECTORY)) < 0)
		abort();
	for (const char *const *p = (const char *const[]){"u", "u/Maildir", "u/Maildir/cur",
							 "u/Maildir/new", "u/Maildir/tmp",
							 "u/Maildir/.Sent", NULL};
	     *p != NULL; p++) {
		if (mkdirat(rootfd, *p, 0700) < 0)
			abort();
	}
	if (fs_write_atomic(rootfd, "u/Maildir/dovecot-uidlist", "3 V1 N1\n", 8, 0600, &e) < 0)
		abort();
	sleep(3);
	c = digest_cache_open(cache);
	for (const char *const *p = (const char *const[]){"", "u", "u/Maildir", "u/Maildir/.Sent",
							 NULL};
	     *p != NULL; p++) {
		if (digest_cache_get(c, rootfd, rules, *p, false, d, &e) < 0)
			abort();
	}
	if (digest_cache_save(c, &e) < 0)
		abort();
	digest_cache_free(&c);
	state_seed("digest.cache", 3, dir, "digest.cache", 0);
	state_seed("digest.cache-fixcrc", 3 | 0x10, dir, "digest.cache", 4);
	close(rootfd);
	md_rules_free(&rules);
	fs_rmtree_at(AT_FDCWD, dir, NULL);
	free(dir);
}

/* --------------------------------------------------------------- names */

static void gen_names(void)
{
	static const struct {
		const char *name;
		const char *data;
		size_t len;
	} seeds[] = {
#define S(n, d) {n, d, sizeof(d) - 1}
	    S("path-msg", "\0u/Maildir/cur/1700000000.M1P2.host,S=1234:2,RS"),
	    S("path-up", "\0a/up/a/file"),
	    S("path-esc", "\0esc/secret"),
	    S("path-link", "\0a/b/secret"),
	    S("path-abs-walk", "\x10" "a/abs/etc"),
	    S("path-loop-walk", "\x10" "a/b/loop/x"),
	    S("path-file-walk", "\x10" "a/file"),
	    S("path-dotdot", "\0a/../a/file"),
	    S("name-flags", "\1:1700000000.M1P2.host,S=1234,W=1260:2,RSabc"),
	    S("name-semicolon", "\1;1700000000.M1P2.host;2,"),
	    S("name-path", "\1:u/Maildir/.Sent/cur/1.host:2,S"),
	    S("json-status", "\2state\n{\"state\":\"connected\",\"peer\":\"x\\u0041\","
			     "\"lag\":1.5,\"ok\":true,\"v\":[1,{\"state\":2}]}"),
	    S("json-escapes", "\2peer\n{\"peer\":\"a\\\"b\\\\c\\n\\t\\u00ff\"}"),
#undef S
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		write_file(seeds[i].name, seeds[i].data, seeds[i].len);
}

/* ----------------------------------------------------------------- ctl */

static void gen_ctl(void)
{
	static const char status[] = "status", notify[] = "notify\0/var/vmail/u/new/1.host\0/x y\n",
			  dump[] = "journal\0dump";

	/* Each argument ends with a NUL: the literal's own ends the last. */
	write_file("status", status, sizeof(status));
	write_file("notify", notify, sizeof(notify));
	write_file("journal-dump", dump, sizeof(dump));
}

/* --------------------------------------------------------------- apply */

/* Appends m as type, u16 length, payload (the frame without header/CRC). */
static void apply_msg(struct buf *in, uint8_t t, const union w_msg *m)
{
	struct buf frame = BUF_INIT;
	struct w_frame f;
	size_t used;

	if (wire_encode(&frame, t, m, NULL) < 0 ||
	    wire_frame_parse(frame.data, frame.len, &f, &used, NULL) != 1 || f.len > 0xffff)
		abort();
	buf_putc(in, (char)t);
	buf_putc(in, (char)(f.len & 0xff));
	buf_putc(in, (char)(f.len >> 8));
	buf_append(in, f.payload, f.len);
	buf_free(&frame);
}

static void batch_end(struct buf *in)
{
	static uint64_t seq;
	union w_msg m = {.batch_end = {.seq = ++seq, .lsn = seq}};

	apply_msg(in, W_BATCH_END, &m);
}

static void put(struct buf *in, const char *path, const char *body)
{
	union w_msg m = {.put = {.path = slice_cstr(path), .size = strlen(body), .mode = 0600,
				 .mtime_ns = 1700000000123456789LL, .raw_len = strlen(body),
				 .body = slice_cstr(body)}};

	sha256_buf(body, strlen(body), m.put.sha256);
	apply_msg(in, W_PUT, &m);
}

static void mkdir_(struct buf *in, const char *path)
{
	union w_msg m = {.mkdir = {.path = slice_cstr(path), .mode = 0700}};

	apply_msg(in, W_MKDIR, &m);
}

static void rename_(struct buf *in, const char *from, const char *to)
{
	union w_msg m = {.rename = {.from = slice_cstr(from), .to = slice_cstr(to)}};

	apply_msg(in, W_RENAME, &m);
}

static void link_(struct buf *in, const char *from, const char *to, uint32_t flags)
{
	union w_msg m = {.link = {.from = slice_cstr(from), .to = slice_cstr(to),
				  .flags = flags, .mode = 0600}};

	apply_msg(in, W_LINK, &m);
}

static void path_op(struct buf *in, uint8_t t, const char *path)
{
	union w_msg m;

	memset(&m, 0, sizeof(m));
	if (t == W_UNLINK)
		m.unlink.path = slice_cstr(path);
	else if (t == W_RMTREE)
		m.rmtree.path = slice_cstr(path);
	else
		m.setattr = (struct w_setattr){.path = slice_cstr(path), .mode = 04777,
					       .mtime_ns = 1};
	apply_msg(in, t, &m);
}

static void delta_(struct buf *in, const char *path, const char *from, const char *to)
{
	struct buf sig = BUF_INIT, d = BUF_INIT;
	union w_msg m = {.delta = {.path = slice_cstr(path), .mode = 0600, .mtime_ns = 5}};
	struct err e;

	if (delta_signature_buf(slice_cstr(from), &sig, &e) < 0 ||
	    delta_make(buf_slice(&sig), slice_cstr(to), 1 << 16, &d, &e) != 0)
		abort();
	sha256_buf(from, strlen(from), m.delta.base_sha256);
	sha256_buf(to, strlen(to), m.delta.result_sha256);
	m.delta.result_size = strlen(to);
	m.delta.raw_len = (uint32_t)d.len;
	m.delta.delta = buf_slice(&d);
	apply_msg(in, W_DELTA, &m);
	buf_free(&sig);
	buf_free(&d);
}

static void chunked(struct buf *in, const char *path)
{
	union w_msg m = {.put = {.path = slice_cstr(path), .size = 8, .mode = 0600,
				 .flags = WF_CHUNKED, .xfer_id = 7, .raw_len = 3,
				 .body = SLICE_LIT("abc")}};

	sha256_buf("abcdefgh", 8, m.put.sha256);
	apply_msg(in, W_PUT, &m);
	m = (union w_msg){.data = {.xfer_id = 7, .flags = WF_LAST, .raw_len = 5,
				   .body = SLICE_LIT("defgh")}};
	apply_msg(in, W_DATA, &m);
}

static void gen_apply(void)
{
	struct buf in = BUF_INIT;

	/* An honest batch through every operation. */
	buf_putc(&in, FA_FIX);
	mkdir_(&in, "u/Maildir/.Fuzz");
	mkdir_(&in, "u/Maildir/.Fuzz/cur");
	mkdir_(&in, "u/Maildir/.Fuzz/new");
	put(&in, "u/Maildir/new/3.host", "Subject: three\n\nbody\n");
	rename_(&in, "u/Maildir/new/3.host", "u/Maildir/cur/3.host:2,S");
	link_(&in, "u/Maildir/cur/3.host:2,S", "u/Maildir/.Fuzz/cur/3.host:2,S", 0);
	link_(&in, FA_MSG, "u/Maildir/.Fuzz/cur/1.host:2,S", WF_COPY);
	delta_(&in, FA_UIDLIST, FA_UIDS, "3 V1 N4\n1 1.host\n3 3.host\n");
	path_op(&in, W_SETATTR, "u/Maildir/cur/3.host:2,S");
	path_op(&in, W_UNLINK, FA_MSG);
	chunked(&in, "u/Maildir/.Fuzz/new/4.host");
	batch_end(&in);
	rename_(&in, "u/Maildir/.Fuzz", "u/Maildir/.Fuzz2");
	path_op(&in, W_RMTREE, "u/Maildir/.Fuzz2");
	batch_end(&in);
	write_buf("honest", &in);

	/* What a compromised primary might try, one batch each. */
	buf_reset(&in);
	buf_putc(&in, FA_FIX | FA_WALK);
	put(&in, FA_EVIL_DIR "/cur/5.host", "x");
	batch_end(&in);
	put(&in, FA_EVIL_MSG, "x");
	batch_end(&in);
	put(&in, FA_EVIL_META, "x");
	batch_end(&in);
	delta_(&in, FA_EVIL_META, "secret\n", "owned\n");
	batch_end(&in);
	path_op(&in, W_SETATTR, FA_EVIL_MSG);
	batch_end(&in);
	path_op(&in, W_SETATTR, FA_MSG);
	batch_end(&in);
	rename_(&in, FA_EVIL_MSG, "u/Maildir/cur/9.host");
	batch_end(&in);
	link_(&in, FA_EVIL_MSG, "u/Maildir/cur/8.host", 0);
	batch_end(&in);
	put(&in, FA_EVIL_USER "/Maildir/cur/1.x", "x");
	batch_end(&in);
	put(&in, "u/Maildir/tmp/1.x", "x");
	batch_end(&in);
	put(&in, "u/Maildir/dovecot.index", "x");
	batch_end(&in);
	put(&in, "u/Maildir/cur/x/y", "x");
	batch_end(&in);
	mkdir_(&in, FA_EVIL_DIR "/cur");
	batch_end(&in);
	path_op(&in, W_RMTREE, FA_EVIL_USER);
	batch_end(&in);
	path_op(&in, W_RMTREE, FA_EVIL_DIR);
	batch_end(&in);
	rename_(&in, FA_MSG, FA_EVIL_MSG);
	batch_end(&in);
	rename_(&in, "u/Maildir", FA_EVIL_DIR "/x");
	batch_end(&in);
	write_buf("hostile", &in);
	buf_free(&in);
}

/* ---------------------------------------------------------------- main */

static const struct {
	const char *name;
	void (*gen)(void);
} targets[] = {
    {"wire", gen_wire},   {"journal", gen_journal}, {"conf", gen_conf},
    {"delta", gen_delta}, {"state", gen_state},     {"names", gen_names},
    {"ctl", gen_ctl},	  {"apply", gen_apply},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: gen_corpus DIR [TARGET...]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		bool wanted = argc == 2;

		for (int a = 2; a < argc; a++)
			wanted = wanted || strcmp(argv[a], targets[i].name) == 0;
		if (!wanted)
			continue;
		snprintf(outdir, sizeof(outdir), "%s/%s", argv[1], targets[i].name);
		if (mkdir(outdir, 0755) < 0 && errno != EEXIST)
			die(outdir);
		targets[i].gen();
	}
	return 0;
}

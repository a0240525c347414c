/*
 * fuzz_names.c — libFuzzer target for the string parsers that judge names
 * from outside (`make fuzz`, see tests/fuzz/README): path validation and
 * confinement (lib/safepath.c), Maildir names and classification
 * (lib/maildir.c), and the control sockets' JSON reader (lib/json.c).
 *
 * Input: byte 0 selects (% 3), the rest is the subject.
 *
 *   0  a path from the peer: sp_check() must agree with a simple model of
 *      the rules; a path it accepts is opened with sp_open() and
 *      sp_open_parent() beneath a root that holds symlinks pointing up,
 *      out and to themselves (bit 0x10 of byte 0: the component walk
 *      instead of openat2); whatever opens must lie beneath the root.
 *   1  a message name (byte 1 is the separator): md_name_parse() slices
 *      must rebuild the name; flags parse, format and parse back the
 *      same; md_classify() of a valid path gives slices of that path.
 *   2  JSON: the first line is a key, the rest an object to look it up
 *      in; and the rest, as a string value written by the JSON writer,
 *      must be read back by json_lookup() byte for byte.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzzutil.h"
#include "json.h"
#include "maildir.h"
#include "safepath.h"

static char root[512];
static int rootfd = -1;
static struct md_rules *rules;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char outside[600];

	(void)argc;
	(void)argv;
	snprintf(root, sizeof(root), "%s/root", fz_scratch());
	snprintf(outside, sizeof(outside), "%s/outside", fz_scratch());
	fz_empty_dir(root);
	fz_empty_dir(outside);
	fz_write(outside, "secret", "x", 1);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || mkdirat(rootfd, "a", 0700) < 0 || mkdirat(rootfd, "a/b", 0700) < 0 ||
	    symlinkat("..", rootfd, "a/up") < 0 || symlinkat("/", rootfd, "a/abs") < 0 ||
	    symlinkat("../outside", rootfd, "esc") < 0 || symlinkat("loop", rootfd, "a/b/loop") < 0 ||
	    symlinkat("../../outside/secret", rootfd, "a/b/secret") < 0)
		abort();
	fz_write(root, "a/file", "f", 1);
	rules = md_rules_new(':', NULL);
	return 0;
}

/* The rules of safepath.h, written out again as simply as possible. */
static bool model_ok(struct slice p)
{
	size_t start = 0;

	if (p.len == 0 || p.len > SP_PATH_MAX || p.p[0] == '/' || memchr(p.p, 0, p.len))
		return false;
	for (size_t i = 0; i <= p.len; i++) {
		if (i < p.len && p.p[i] != '/')
			continue;
		if (i == start || i - start > SP_NAME_MAX ||
		    (i - start == 1 && p.p[start] == '.') ||
		    (i - start == 2 && p.p[start] == '.' && p.p[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

static void check_beneath(int fd)
{
	char link[64], target[8192];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		abort();
	target[n] = '\0';
	if (strncmp(target, root, strlen(root)) != 0 ||
	    (target[strlen(root)] != '/' && target[strlen(root)] != '\0')) {
		fprintf(stderr, "opened %s, outside %s\n", target, root);
		abort();
	}
	close(fd);
}

static void paths(struct slice p, bool walk)
{
	char *path;
	const char *name;
	int fd;

	if ((sp_check(p, NULL) == 0) != model_ok(p))
		abort();
	if (!model_ok(p))
		return;
	path = strndup(p.p, p.len);
	sp_set_use_openat2(!walk);
	fd = sp_open(rootfd, path, O_PATH, 0, NULL);
	if (fd >= 0)
		check_beneath(fd);
	fd = sp_open(rootfd, path, O_RDONLY | O_NONBLOCK, 0, NULL);
	if (fd >= 0)
		check_beneath(fd);
	fd = sp_open_parent(rootfd, path, &name, NULL);
	if (fd >= 0) {
		if (name < path || name + strlen(name) != path + p.len || strchr(name, '/'))
			abort();
		check_beneath(fd);
	}
	free(path);
}

static bool within(struct slice in, struct slice s)
{
	return s.len == 0 || (s.p >= in.p && s.p + s.len <= in.p + in.len);
}

static void names(struct slice n, char sep)
{
	struct buf b = BUF_INIT;
	struct md_name m;
	struct md_class c;
	md_flags_t f, g;

	if (md_name_parse(n, sep, &m, NULL) == 0) {
		buf_put_slice(&b, m.base);
		if (m.has_info) {
			buf_putc(&b, sep);
			buf_put_slice(&b, m.info);
		}
		if (!slice_eq(buf_slice(&b), n) || m.base.len == 0 || !md_same_base(n, n, sep))
			abort();
		if (m.has_info && md_flags_parse(m.info, &f) == 0) {
			buf_reset(&b);
			if (md_flags_format(f, &b) < 0 || md_flags_parse(buf_slice(&b), &g) < 0 ||
			    f != g)
				abort();
		}
	}
	if (sp_check(n, NULL) == 0) {
		for (int dir = 0; dir < 2; dir++) {
			md_classify(rules, n, dir, &c);
			if (!within(n, c.folder) || !within(n, c.name) ||
			    !within(n, md_user_of(c.folder)))
				abort();
		}
	}
	buf_free(&b);
}

static void json(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	char *key, *obj;
	struct buf out = BUF_INIT, w = BUF_INIT;
	struct json j;

	if (nl == NULL)
		return;
	key = strndup(p, (size_t)(nl - p));
	obj = strndup(nl + 1, n - (size_t)(nl - p) - 1);
	json_lookup(obj, key, &out);
	json_lookup_num(obj, key, 0);
	json_lookup_bool(obj, key);
	/* What the writer writes, the reader reads back exactly. */
	json_init(&j, &w);
	json_begin_obj(&j);
	json_key(&j, "x");
	json_strn(&j, nl + 1, n - (size_t)(nl - p) - 1);
	json_key(&j, "k");
	json_strn(&j, nl + 1, n - (size_t)(nl - p) - 1);
	json_end_obj(&j);
	if (json_lookup(buf_cstr(&w), "k", &out) < 0 || out.len != n - (size_t)(nl - p) - 1 ||
	    (out.len > 0 && memcmp(out.data, nl + 1, out.len) != 0))
		abort();
	free(key);
	free(obj);
	buf_free(&out);
	buf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice s;

	if (size < 2)
		return 0;
	s = (struct slice){(const char *)data + 1, size - 1};
	switch (data[0] % 3) {
	case 0: paths(s, data[0] & 0x10); break;
	case 1: names((struct slice){s.p + 1, s.len - 1}, s.p[0]); break;
	default: json(s.p, s.len); break;
	}
	return 0;
}

/*
 * maildir.c — Maildir names, flags and path classification (see maildir.h).
 */
#include "config.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "maildir.h"
#include "xalloc.h"

static const char *const default_excludes[] = {
	"dovecot.index*", "dovecot.list.index*", "dovecot.mailbox.log*", "*.lock",
	".mdrepl-tmp", /* the standby's staging directory (apply.h) */
	NULL,
};

/* Replicated metadata files in a folder directory (DESIGN §4). */
static const char *const meta_names[] = {
	"dovecot-uidlist", "dovecot-keywords", "dovecot-uidvalidity", "dovecot-uidvalidity.*",
	"dovecot-acl", "dovecot-acl-list", "dovecot-shared", "subscriptions",
	"maildirsize", "maildirfolder", "courierimapuiddb", "courierimapacl",
	"courierimapsubscribed", NULL,
};

/* A directory whose files are all metadata (Courier keeps keywords there). */
#define COURIER_KEYWORDS_DIR "courierimapkeywords"

struct md_rules {
	char sep;
	char **patterns;
	size_t npatterns;
};

static bool valid_name_bytes(struct slice name)
{
	if (name.len == 0 || name.p[0] == '.')
		return false;
	for (size_t i = 0; i < name.len; i++) {
		if (name.p[i] == '/' || name.p[i] == '\0')
			return false;
	}
	return true;
}

/* Reads ",X=<digits>" fields out of the base. */
static void parse_size_hints(struct md_name *r)
{
	const char *p = r->base.p, *end = r->base.p + r->base.len;

	while ((p = memchr(p, ',', (size_t)(end - p))) != NULL) {
		const char *q;
		uint64_t v = 0;
		bool ok = true;

		p++;
		if (end - p < 3 || (p[0] != 'S' && p[0] != 'W') || p[1] != '=')
			continue;
		for (q = p + 2; q < end && *q != ','; q++) {
			if (*q < '0' || *q > '9' || v > (UINT64_MAX - 9) / 10) {
				ok = false;
				break;
			}
			v = v * 10 + (uint64_t)(*q - '0');
		}
		if (!ok || q == p + 2)
			continue;
		if (p[0] == 'S') {
			r->has_size = true;
			r->size = v;
		} else {
			r->has_vsize = true;
			r->vsize = v;
		}
	}
}

int md_name_parse(struct slice name, char sep, struct md_name *r, struct err *e)
{
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!valid_name_bytes(name))
		return err_set(e, ERR_PROTO, "invalid Maildir file name '%.*s'", (int)name.len,
			       name.p);
	s = memchr(name.p, sep, name.len);
	if (s == NULL) {
		r->base = name;
	} else {
		r->base = (struct slice){name.p, (size_t)(s - name.p)};
		r->info = (struct slice){s + 1, name.len - r->base.len - 1};
		r->has_info = true;
	}
	if (r->base.len == 0)
		return err_set(e, ERR_PROTO, "Maildir file name '%.*s' has an empty base",
			       (int)name.len, name.p);
	parse_size_hints(r);
	return 0;
}

int md_flags_parse(struct slice info, md_flags_t *flags_r)
{
	md_flags_t f = 0;

	if (info.len < 2 || info.p[0] != '2' || info.p[1] != ',')
		return -1;
	for (size_t i = 2; i < info.len; i++) {
		char c = info.p[i];

		if (c >= 'A' && c <= 'Z')
			f |= (md_flags_t)1 << (c - 'A');
		else if (c >= 'a' && c <= 'z')
			f |= (md_flags_t)1 << (26 + c - 'a');
		else
			return -1;
	}
	*flags_r = f;
	return 0;
}

int md_flags_format(md_flags_t flags, struct buf *out)
{
	if (buf_puts(out, "2,") < 0)
		return -1;
	for (int i = 0; i < 52; i++) {
		if (flags & ((md_flags_t)1 << i)) {
			char c = i < 26 ? (char)('A' + i) : (char)('a' + i - 26);
			if (buf_putc(out, c) < 0)
				return -1;
		}
	}
	return 0;
}

int md_name_format(struct slice base, char sep, md_flags_t flags, struct buf *out)
{
	if (buf_put_slice(out, base) < 0 || buf_putc(out, sep) < 0)
		return -1;
	return md_flags_format(flags, out);
}

bool md_same_base(struct slice a, struct slice b, char sep)
{
	const char *sa = memchr(a.p, sep, a.len), *sb = memchr(b.p, sep, b.len);
	struct slice ba = {a.p, sa ? (size_t)(sa - a.p) : a.len};
	struct slice bb = {b.p, sb ? (size_t)(sb - b.p) : b.len};

	return ba.len > 0 && slice_eq(ba, bb);
}

struct md_rules *md_rules_new(char sep, const struct strlist *exclude)
{
	struct md_rules *r = xcalloc(1, sizeof(*r));
	size_t nextra = exclude ? exclude->n : 0, ndef = 0;

	while (default_excludes[ndef] != NULL)
		ndef++;
	r->sep = sep;
	r->patterns = xcalloc(ndef + nextra, sizeof(char *));
	for (size_t i = 0; i < ndef; i++)
		r->patterns[r->npatterns++] = xstrdup(default_excludes[i]);
	for (size_t i = 0; i < nextra; i++)
		r->patterns[r->npatterns++] = xstrdup(exclude->v[i]);
	return r;
}

void md_rules_free(struct md_rules **rp)
{
	struct md_rules *r = *rp;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->npatterns; i++)
		free(r->patterns[i]);
	free(r->patterns);
	free(r);
	*rp = NULL;
}

char md_rules_sep(const struct md_rules *r)
{
	return r->sep;
}

uint64_t md_rules_id(const struct md_rules *r)
{
	uint64_t h = fnv1a(FNV1A_INIT, &r->sep, 1);

	for (size_t i = 0; i < r->npatterns; i++) /* each pattern NUL-ended */
		h = fnv1a(h, r->patterns[i], strlen(r->patterns[i]) + 1);
	return h;
}

static bool match_any(const char *const *patterns, size_t n, struct slice name)
{
	char tmp[256];

	if (name.len >= sizeof(tmp))
		return false;
	memcpy(tmp, name.p, name.len);
	tmp[name.len] = '\0';
	for (size_t i = 0; i < n && patterns[i] != NULL; i++) {
		if (fnmatch(patterns[i], tmp, 0) == 0)
			return true;
	}
	return false;
}

bool md_excluded(const struct md_rules *r, struct slice name)
{
	return match_any((const char *const *)r->patterns, r->npatterns, name);
}

bool md_is_meta_name(struct slice name)
{
	return match_any(meta_names, (size_t)-1, name);
}

/* Splits "a/b/c" into "a/b" and "c" ("" and "c" for a single component). */
static void split_last(struct slice path, struct slice *dir, struct slice *last)
{
	const char *slash = NULL;

	for (size_t i = path.len; i > 0; i--) {
		if (path.p[i - 1] == '/') {
			slash = path.p + i - 1;
			break;
		}
	}
	if (slash == NULL) {
		*dir = (struct slice){path.p, 0};
		*last = path;
	} else {
		*dir = (struct slice){path.p, (size_t)(slash - path.p)};
		*last = (struct slice){slash + 1, path.len - dir->len - 1};
	}
}

static int subdir_of(struct slice name)
{
	if (slice_eq_cstr(name, "cur"))
		return 'c';
	if (slice_eq_cstr(name, "new"))
		return 'n';
	if (slice_eq_cstr(name, "tmp"))
		return 't';
	return 0;
}

void md_classify(const struct md_rules *r, struct slice relpath, bool is_dir,
		 struct md_class *c)
{
	struct slice dir, name, pdir, pname;
	int sub;

	memset(c, 0, sizeof(*c));
	split_last(relpath, &dir, &name);
	c->name = name;
	c->folder = dir;
	split_last(dir, &pdir, &pname);
	sub = dir.len > 0 ? subdir_of(pname) : 0;

	if (is_dir) {
		int own = subdir_of(name);

		if (own != 0 && sub == 0) {
			c->kind = MD_SUBDIR;
			c->in_new = own == 'n';
		} else if (sub != 0 || md_excluded(r, name)) {
			/* Directories inside cur/new/tmp are not Maildir. */
			c->kind = sub != 0 ? MD_OTHER : MD_EXCLUDED;
		} else if (slice_eq_cstr(name, COURIER_KEYWORDS_DIR)) {
			c->kind = MD_META;
		} else {
			c->kind = MD_DIR;
			c->folder = relpath;
		}
		return;
	}
	if (sub == 't') {
		c->kind = MD_TMPFILE;
		c->folder = pdir;
	} else if (sub != 0) {
		c->kind = name.len > 0 && name.p[0] != '.' ? MD_MESSAGE : MD_OTHER;
		c->in_new = sub == 'n';
		c->folder = pdir;
	} else if (md_excluded(r, name)) {
		c->kind = MD_EXCLUDED;
	} else if (slice_eq_cstr(pname, COURIER_KEYWORDS_DIR) && dir.len > 0) {
		c->kind = MD_META;
		c->folder = pdir;
	} else if (md_is_meta_name(name)) {
		c->kind = MD_META;
	} else {
		c->kind = MD_OTHER;
	}
}

struct slice md_user_of(struct slice folder)
{
	struct slice dir, last;

	for (;;) {
		split_last(folder, &dir, &last);
		if (last.len < 2 || last.p[0] != '.' || dir.len == 0)
			return folder;
		folder = dir;
	}
}

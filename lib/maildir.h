/*
 * maildir.h — the Maildir name model (DESIGN §4).
 *
 * A message file is "<base>[<sep>2,<flags>]" in a folder's new/ or cur/.
 * The base identifies the message: a rename that keeps the base is a flag
 * change or a new->cur move and travels as a rename. The base may carry
 * ",S=<size>" and ",W=<vsize>" hints. Flags are letters: A-Z are the
 * standard ones (D F P R S T), a-z are Dovecot keywords; the canonical
 * form is sorted and de-duplicated.
 *
 * Classification maps any path relative to mail_root to what mdrepl does
 * with it, from the path alone (no file system access).
 *
 * SECURITY: names come from the local file system or from the peer; the
 * parsers check every byte and never read past the slice.
 */
#ifndef MDREPL_MAILDIR_H
#define MDREPL_MAILDIR_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "err.h"

struct md_name {
	struct slice base; /* up to the separator */
	struct slice info; /* after the separator ("2,FS"); empty if none */
	bool has_info;
	bool has_size, has_vsize;
	uint64_t size;	/* S= */
	uint64_t vsize; /* W= */
};

/* Parses a message file name. Rejects empty names, names with '/' or NUL,
 * names starting with '.', and an empty base. */
int md_name_parse(struct slice name, char sep, struct md_name *r, struct err *e);

/* Flag sets: bit i for 'A'+i (i < 26), bit 26+i for 'a'+i. */
typedef uint64_t md_flags_t;

/* Parses the flags of an info string "2,<letters>". Returns 0, or -1 if the
 * info is not version 2 or holds a character that is not a letter. */
int md_flags_parse(struct slice info, md_flags_t *flags_r);
/* Appends the canonical "2,<sorted letters>" for flags. */
int md_flags_format(md_flags_t flags, struct buf *out);
/* Appends "<base><sep>2,<flags>" (canonical). */
int md_name_format(struct slice base, char sep, md_flags_t flags, struct buf *out);
/* True if the two names carry the same base. */
bool md_same_base(struct slice a, struct slice b, char sep);

enum md_kind {
	MD_DIR,	     /* a directory: a folder, a user or domain directory */
	MD_SUBDIR,   /* a folder's cur/, new/ or tmp/ itself */
	MD_MESSAGE,  /* a file in cur/ or new/ */
	MD_TMPFILE,  /* a file in tmp/: never replicated */
	MD_META,     /* a per-folder metadata file: replicated, delta-able */
	MD_EXCLUDED, /* matches an exclusion pattern (index caches, locks) */
	MD_OTHER,    /* anything else: not replicated */
};

struct md_class {
	enum md_kind kind;
	struct slice folder; /* the folder the entry belongs to ("" = mail_root) */
	struct slice name;   /* last component */
	bool in_new;	     /* MD_MESSAGE in new/ (else cur/); MD_SUBDIR is new/ */
};

struct md_rules;

/* sep: name separator; exclude: extra patterns (fnmatch) added to defaults. */
struct md_rules *md_rules_new(char sep, const struct strlist *exclude);
void md_rules_free(struct md_rules **r);
char md_rules_sep(const struct md_rules *r);
/* A fingerprint of the rules (separator and exclude patterns, in order):
 * what was computed under other rules does not hold under these. */
uint64_t md_rules_id(const struct md_rules *r);

/* Classifies relpath (validated, relative to mail_root, no trailing '/'). */
void md_classify(const struct md_rules *r, struct slice relpath, bool is_dir,
		 struct md_class *c);
/* True if name (a last component) matches an exclusion pattern. */
bool md_excluded(const struct md_rules *r, struct slice name);
/* True if name is one of the replicated metadata files. */
bool md_is_meta_name(struct slice name);

/* The user a folder belongs to: the folder path with trailing Maildir++
 * ".Sub" components removed ("dom/bob/Maildir/.Sent" -> "dom/bob/Maildir"). */
struct slice md_user_of(struct slice folder);

#endif

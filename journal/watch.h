/*
 * watch.h — the inotify side of mdrepl-journald: watches every directory
 * of the Maildir tree (except tmp/ and excluded ones) and turns events
 * into journal records (DESIGN §5), which it hands to a callback.
 *
 * Rename pairs become one rename; unmatched halves become unlink/create;
 * new directories are watched and then listed, so nothing created in
 * between is missed; a queue overflow re-walks the tree (re-watching what
 * was missed, fixing paths of directories moved meanwhile) and then asks
 * for a full rescan; a directory that cannot be watched asks for a rescan
 * of its folder and is retried.
 */
#ifndef MDREPL_WATCH_H
#define MDREPL_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "journal.h"
#include "maildir.h"

/* Receives each record to journal; the slices are valid during the call. */
typedef void watch_emit_fn(void *ctx, enum jrec_type type, uint32_t flags, struct slice path,
			   struct slice path2);

struct watcher_stats {
	uint64_t events;    /* inotify events read */
	uint64_t overflows; /* queue overflows */
	uint64_t failed;    /* directories that could not be watched at the last walk */
	uint64_t watches;   /* directories watched now */
};

struct watcher;

/* Opens mail_root and an inotify instance; nothing is watched yet.
 * rules must outlive the watcher. Returns NULL on error. */
struct watcher *watcher_new(const char *mail_root, const struct md_rules *rules,
			    watch_emit_fn *emit, void *ctx, struct err *e);
/* The inotify descriptor, to poll for input. */
int watcher_fd(const struct watcher *w);
/* Watches the whole tree. changed_since_ns (restart after a clean stop;
 * 0 = none): also asks for a rescan of every folder whose directories or
 * metadata files changed since then, which the journal did not see.
 * Returns 0, or -1 if mail_root itself cannot be watched. */
int watcher_start(struct watcher *w, uint64_t changed_since_ns, struct err *e);
/* Reads and handles the events waiting (a bounded number of reads).
 * Returns 0, or -1 if the inotify descriptor failed. */
int watcher_process(struct watcher *w, struct err *e);
/* Milliseconds until watcher_tick() has work (an unmatched rename half
 * to settle, failed watches to retry), or -1. */
int watcher_timeout_ms(const struct watcher *w);
void watcher_tick(struct watcher *w);
/* Handles every event already queued and settles pending halves (at a
 * clean stop, so that nothing that happened before it is lost). */
void watcher_drain(struct watcher *w);
void watcher_get_stats(const struct watcher *w, struct watcher_stats *st);
void watcher_free(struct watcher **w);

#endif

/*
 * fullsync.h — one-shot synchronisation of the whole tree, a user or a
 * folder: reconcile.h over one session, with progress on a terminal and
 * a summary line at the end.
 */
#ifndef MDREPL_FULLSYNC_H
#define MDREPL_FULLSYNC_H

#include <stdbool.h>

#include "conf.h"

/* prefix: "" for --all, the user's or folder's path under mail_root.
 * Returns an exit status (0 done, 1 failed). */
int fullsync_run(const struct settings *s, const char *prefix, bool dry_run);

#endif

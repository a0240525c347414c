/*
 * rolling.h — rolling replication (DESIGN §5-§7): follow the journal from
 * the standby's durable LSN, coalesce, validate against the file system,
 * send in pipelined batches, advance the acknowledged position (which the
 * journal's retention follows), reconnect with backoff and resume exactly
 * where the standby's durable LSN says.
 *
 * Rescan records, folder records and the journal's needs-full-sync
 * marker all go through reconcile.h — the same compare as one-shot sync.
 * A file that exists but cannot be read is retried later without holding
 * up other users; only the acknowledged position waits for it.
 *
 * Runs as `mdrepl-syncclient --rolling`: working on a primary, idle on a
 * standby, fenced (journaling continues locally, nothing is sent) when the
 * peer has a higher generation.
 */
#ifndef MDREPL_ROLLING_H
#define MDREPL_ROLLING_H

#include <stdbool.h>

#include "conf.h"

/* Runs until SIGTERM; returns the process exit status. */
int rolling_main(const struct settings *s, bool foreground);

#endif

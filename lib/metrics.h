/*
 * metrics.h — Prometheus text-format metrics for node_exporter's textfile
 * collector, made from a daemon's status object (the same JSON that
 * `mdreplctl status --json` shows), so the two can never disagree.
 *
 * Every numeric or boolean member becomes a metric mdrepl_DAEMON_KEY
 * (counters get the _total suffix), and the string members (role, state,
 * peer, ...) become labels of one mdrepl_DAEMON_info metric of value 1.
 * Written as METRICS_DIR/mdrepl_DAEMON.prom by atomic rename, as the
 * collector requires.
 */
#ifndef MDREPL_METRICS_H
#define MDREPL_METRICS_H

#include "buf.h"
#include "err.h"

/* Renders a flat status object into out. Returns 0, or -1 if malformed. */
int metrics_render(const char *daemon, const char *status_json, struct buf *out,
		   struct err *e);
/* Renders and writes DIR/mdrepl_DAEMON.prom. */
int metrics_write(const char *dir, const char *daemon, const char *status_json, struct err *e);

#endif

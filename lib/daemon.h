/*
 * daemon.h — what every mdrepl daemon needs from its environment:
 * signals as a pollable fd, systemd notification (READY, STATUS,
 * WATCHDOG, STOPPING), backgrounding and a pid file.
 *
 * Signals are delivered through a signalfd, so an event loop reads them
 * like any other input and no handler runs in the middle of its work.
 */
#ifndef MDREPL_DAEMON_H
#define MDREPL_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

enum daemon_signal { DSIG_NONE, DSIG_TERM, DSIG_HUP, DSIG_CHLD, DSIG_OTHER };

/* Blocks SIGTERM, SIGINT, SIGHUP, SIGCHLD (and ignores SIGPIPE); returns a
 * signalfd that becomes readable when one arrives. */
int daemon_signals_init(struct err *e);
/* Reads one pending signal from the signalfd (non-blocking). */
enum daemon_signal daemon_signal_read(int sigfd);

/* Fails if another instance runs: STATE_DIR/NAME.pid is locked (flock)
 * by a live daemon for as long as it lives, so a stale pid file or a
 * recycled pid never blocks a start. Call before binding sockets, so a
 * second instance cannot disturb the first. */
int daemon_check(const char *state_dir, const char *name, struct err *e);
/* Detaches from the terminal (unless foreground), then takes the pid
 * file's lock and writes the pid into it. Returns 0 or -1. */
int daemon_start(const char *state_dir, const char *name, bool foreground, struct err *e);
/* Removes the pid file. */
void daemon_stop(const char *state_dir, const char *name);

/* systemd notification (no-op without NOTIFY_SOCKET). */
void sd_notify_ready(const char *status);
void sd_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sd_notify_watchdog(void);
void sd_notify_stopping(void);
void sd_notify_reloading(void);
/* Interval at which to send WATCHDOG=1 (half of WatchdogSec), in ms; 0 if
 * no watchdog is configured. */
uint64_t sd_watchdog_interval_ms(void);

#endif

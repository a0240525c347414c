/*
 * log.h — the one logging interface of every mdrepl program.
 *
 * Messages go to stderr (picked up by journald under systemd, with
 * "<N>" priority prefixes when JOURNAL_STREAM says stderr is the journal)
 * or to syslog. Write messages as "what failed: why" followed by
 * key=value pairs that help grep, e.g.
 *     log_error("rename(%s -> %s) failed: %m user=%s lsn=%llu", ...)
 * %m works on both targets (glibc expands it from errno).
 */
#ifndef MDREPL_LOG_H
#define MDREPL_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };

/* ident: program name. Safe to call again (e.g. after reading the config). */
void log_init(const char *ident, enum log_target target, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Re-opens the log target (SIGHUP). */
void log_reopen(void);
/* Parses "error"/"warn"/"info"/"debug"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *level_r);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
	do {                                                                  \
		if (log_enabled(LOG_LEVEL_DEBUG))                             \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                \
	} while (0)

/* Logs at error level and exits with status 1. For start-up failures and
 * broken invariants only. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

/*
 * log.c — logging to stderr or syslog (see log.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	char ident[64];
	enum log_target target;
	enum log_level level;
	bool journal; /* stderr is connected to systemd-journald */
	bool syslog_open;
} lg = {"mdrepl", LOG_TARGET_STDERR, LOG_LEVEL_INFO, false, false};

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void log_init(const char *ident, enum log_target target, enum log_level level)
{
	const char *slash = strrchr(ident, '/');

	snprintf(lg.ident, sizeof(lg.ident), "%s", slash ? slash + 1 : ident);
	lg.target = target;
	lg.level = level;
	/* systemd sets JOURNAL_STREAM when stderr is the journal. */
	lg.journal = getenv("JOURNAL_STREAM") != NULL;
	log_reopen();
}

void log_reopen(void)
{
	if (lg.syslog_open) {
		closelog();
		lg.syslog_open = false;
	}
	if (lg.target == LOG_TARGET_SYSLOG) {
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		lg.syslog_open = true;
	}
}

void log_set_level(enum log_level level)
{
	lg.level = level;
}

enum log_level log_get_level(void)
{
	return lg.level;
}

bool log_enabled(enum log_level level)
{
	return level <= lg.level;
}

int log_level_parse(const char *s, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	int saved = errno;
	char line[2048];
	int n;

	/* Format once, so %m and truncation behave the same on both targets. */
	errno = saved;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		snprintf(line, sizeof(line), "(unformattable log message: %s)", fmt);
	else if ((size_t)n >= sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);

	if (lg.target == LOG_TARGET_SYSLOG) {
		syslog(syslog_prio[level], "%s", line);
	} else if (lg.journal) {
		fprintf(stderr, "<%d>%s: %s\n", syslog_prio[level], level_names[level], line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%ld]: %s: %s\n", when, ts.tv_nsec / 1000000,
			lg.ident, (long)getpid(), level_names[level], line);
	}
	errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

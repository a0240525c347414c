/*
 * cli.c — common start-up of the mdrepl programs (see cli.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "xalloc.h"

void cli_init(struct cli_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->config_path = MDREPL_DEFAULT_CONFIG;
}

void cli_free(struct cli_opts *o)
{
	free(o->overrides);
	o->overrides = NULL;
	o->noverrides = 0;
}

bool cli_common_option(struct cli_opts *o, int opt, const char *arg)
{
	switch (opt) {
	case 'c':
		o->config_path = arg;
		return true;
	case 'o':
		o->overrides = xreallocarray(o->overrides, o->noverrides + 1, sizeof(char *));
		o->overrides[o->noverrides++] = arg;
		return true;
	case 'f':
		o->foreground = true;
		return true;
	default:
		return false;
	}
}

void cli_version(const char *prog)
{
	printf("%s (mdrepl) %s\n", prog, PACKAGE_VERSION);
	exit(EXIT_OK);
}

void cli_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	exit(EXIT_USAGE);
}

void cli_load_config(const char *prog, const struct cli_opts *o, struct settings *s)
{
	struct err e;
	enum log_level level = LOG_LEVEL_INFO;

	conf_defaults(s);
	if (conf_load(s, o->config_path, &e) < 0)
		goto fail;
	for (size_t i = 0; i < o->noverrides; i++) {
		if (conf_override(s, o->overrides[i], &e) < 0)
			goto fail;
	}
	if (conf_validate(s, &e) < 0) {
		err_prefix(&e, "%s", o->config_path);
		goto fail;
	}
	log_level_parse(s->log.level, &level);
	log_init(prog, strcmp(s->log.target, "syslog") == 0 ? LOG_TARGET_SYSLOG : LOG_TARGET_STDERR,
		 level);
	return;
fail:
	fprintf(stderr, "%s: %s\n", prog, e.msg);
	exit(EXIT_USAGE);
}

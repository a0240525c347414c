/*
 * cli.h — what every mdrepl program does the same way at start-up:
 * common options, loading and validating the config, exit codes.
 *
 * Exit status everywhere (DESIGN §11): 0 success, 1 failure, 2 usage or
 * configuration error.
 */
#ifndef MDREPL_CLI_H
#define MDREPL_CLI_H

#include <stdbool.h>

#include "conf.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Options common to all programs, filled by cli_common_option(). */
struct cli_opts {
	const char *config_path; /* -c, default MDREPL_DEFAULT_CONFIG */
	const char **overrides;	 /* -o section.key=value, in order */
	size_t noverrides;
	bool foreground; /* -f */
};

/* The getopt_long short options and long options every program accepts. */
#define CLI_SHORTOPTS "c:o:fhV"
#define CLI_LONGOPTS                                                                    \
	{"config", required_argument, NULL, 'c'}, {"option", required_argument, NULL, 'o'}, \
		{"foreground", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},   \
		{"version", no_argument, NULL, 'V'}

void cli_init(struct cli_opts *o);
void cli_free(struct cli_opts *o);

/* Handles one common option. Returns true if it was one (c, o, f); -h and
 * -V print and exit via the callbacks' conventions. usage prints help. */
bool cli_common_option(struct cli_opts *o, int opt, const char *arg);

/* Prints "PROG (mdrepl) VERSION" and exits 0. */
void cli_version(const char *prog) __attribute__((noreturn));
/* Prints "PROG: message" and a hint to use --help, exits 2. */
void cli_usage_error(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Loads defaults, the config file and -o overrides, validates, and sets up
 * logging from [log]. On any error prints it and exits 2. */
void cli_load_config(const char *prog, const struct cli_opts *o, struct settings *s);

#endif

/*
 * mdreplctl.c — the administration tool: status, promote, demote, rejoin,
 * switchover, audit, notify, journal dump, gen-certs, config.
 */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_audit.h"
#include "cmd_certs.h"
#include "ctl.h"
#include "cmd_journal.h"
#include "log.h"

static const char *prog = "mdreplctl";

static void usage(void)
{
	printf("Usage: %s [-c CONFIG] [-o S.K=V]... COMMAND [ARGS]\n"
	       "Administer an mdrepl node.\n\n"
	       "Commands:\n"
	       "  status [--json]                  role, generation, positions and lag\n"
	       "  promote [--wait[=SECONDS]] [--force]\n"
	       "                                   make this standby the primary\n"
	       "  demote [--force]                 make this primary a standby\n"
	       "  rejoin [--dry-run]               merge with the new primary, then follow it\n"
	       "  switchover [--wait=SECONDS]      planned, zero-loss role swap (on the standby)\n"
	       "  audit [--user USER] [--deep] [--json] [--repair] [--rate-limit RATE]\n"
	       "                                   compare primary and standby\n"
	       "  notify PATH...                   report changed paths to the journal\n"
	       "  journal dump [--from LSN] [--follow]\n"
	       "                                   print the journal's records\n"
	       "  journal status | rescan [--deep] PATH...\n"
	       "                                   journald's counters (JSON); ask for a compare\n"
	       "  gen-certs DIR [NODE...]          make a private CA and node certificates\n"
	       "  config                           print the effective configuration\n\n"
	       "Options:\n"
	       "  -c, --config FILE    configuration file (default %s)\n"
	       "  -o, --option S.K=V   override a configuration option\n"
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n",
	       prog, MDREPL_DEFAULT_CONFIG);
	exit(EXIT_OK);
}

static int cmd_config(const struct settings *s)
{
	conf_dump(s, stdout);
	return EXIT_OK;
}

int ctl_usage(const char *synopsis)
{
	fprintf(stderr, "usage: %s %s\n", prog, synopsis);
	return EXIT_USAGE;
}

int ctl_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cli_opts o;
	struct settings s;
	const char *cmd;
	int opt, rc;

	cli_init(&o);
	/* "+": stop at the command, whose own options follow it. */
	while ((opt = getopt_long(argc, argv, "+" CLI_SHORTOPTS, longopts, NULL)) != -1) {
		if (cli_common_option(&o, opt, optarg))
			continue;
		if (opt == 'h')
			usage();
		if (opt == 'V')
			cli_version(prog);
		cli_usage_error(prog, "unknown option");
	}
	if (optind >= argc)
		cli_usage_error(prog, "missing command");
	cmd = argv[optind];
	/* gen-certs prepares the files a config will name: it needs none. */
	if (strcmp(cmd, "gen-certs") == 0) {
		rc = cmd_gen_certs(prog, argc - optind, argv + optind);
		cli_free(&o);
		return rc;
	}
	cli_load_config(prog, &o, &s);
	if (strcmp(cmd, "config") == 0) {
		rc = cmd_config(&s);
	} else if (strcmp(cmd, "status") == 0) {
		rc = cmd_status(&s, argc - optind, argv + optind);
	} else if (strcmp(cmd, "promote") == 0) {
		rc = cmd_promote(&s, argc - optind, argv + optind);
	} else if (strcmp(cmd, "demote") == 0) {
		rc = cmd_demote(&s, argc - optind, argv + optind);
	} else if (strcmp(cmd, "rejoin") == 0) {
		rc = cmd_rejoin(&s, argc - optind, argv + optind);
	} else if (strcmp(cmd, "switchover") == 0) {
		rc = cmd_switchover(&s, argc - optind, argv + optind);
	} else if (strcmp(cmd, "notify") == 0) {
		rc = cmd_notify(&s, argc - optind, argv + optind);
	} else if (strcmp(cmd, "journal") == 0) {
		rc = cmd_journal(&s, argc - optind, argv + optind);
	} else if (strcmp(cmd, "audit") == 0) {
		rc = cmd_audit(&s, argc - optind, argv + optind);
	} else {
		fprintf(stderr, "%s: unknown command '%s'\nTry '%s --help' for more information.\n",
			prog, cmd, prog);
		rc = EXIT_USAGE;
	}
	conf_free(&s);
	cli_free(&o);
	return rc;
}

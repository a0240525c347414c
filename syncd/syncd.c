/*
 * syncd.c — mdrepl-syncd: the receiver on the standby.
 *
 * Listens for the primary, authenticates it, and applies its changes to
 * the standby's mail store (DESIGN §7).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "log.h"

static const char *prog = "mdrepl-syncd";

static void usage(void)
{
	printf("Usage: %s [-c CONFIG] [-o SECTION.KEY=VALUE]... [-f]\n"
	       "Receive replication from the primary and apply it to mail_root (standby role).\n\n"
	       "  -c, --config FILE    configuration file (default %s)\n"
	       "  -o, --option S.K=V   override a configuration option\n"
	       "  -f, --foreground     stay in the foreground\n"
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n",
	       prog, MDREPL_DEFAULT_CONFIG);
	exit(EXIT_OK);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cli_opts o;
	struct settings s;
	int opt;

	cli_init(&o);
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
		if (cli_common_option(&o, opt, optarg))
			continue;
		if (opt == 'h')
			usage();
		if (opt == 'V')
			cli_version(prog);
		cli_usage_error(prog, "unknown option");
	}
	if (optind < argc)
		cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
	cli_load_config(prog, &o, &s);
	log_error("the receiver is not built yet");
	conf_free(&s);
	cli_free(&o);
	return EXIT_FAIL;
}

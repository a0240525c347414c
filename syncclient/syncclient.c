/*
 * syncclient.c — mdrepl-syncclient: sends the primary's changes to the
 * standby, once (--all, --user, --folder) or continuously (--rolling).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "fullsync.h"
#include "rolling.h"
#include "log.h"

static const char *prog = "mdrepl-syncclient";

static void usage(void)
{
	printf("Usage: %s [-c CONFIG] [-o S.K=V]... (--rolling | --all | --user USER | --folder PATH) [--dry-run]\n"
	       "Replicate the Maildir tree under mail_root to the standby.\n\n"
	       "  -r, --rolling        run continuously, following the journal (daemon mode)\n"
	       "  -a, --all            synchronise every folder once, then exit\n"
	       "  -u, --user USER      synchronise one user's folders (path under mail_root)\n"
	       "  -F, --folder PATH    synchronise one folder (path under mail_root)\n"
	       "  -n, --dry-run        show what would be sent, change nothing\n"
	       "  -c, --config FILE    configuration file (default %s)\n"
	       "  -o, --option S.K=V   override a configuration option\n"
	       "  -f, --foreground     stay in the foreground (with --rolling)\n"
	       "  -h, --help           show this help\n"
	       "  -V, --version        show the version\n",
	       prog, MDREPL_DEFAULT_CONFIG);
	exit(EXIT_OK);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_LONGOPTS,
		{"rolling", no_argument, NULL, 'r'},
		{"all", no_argument, NULL, 'a'},
		{"user", required_argument, NULL, 'u'},
		{"folder", required_argument, NULL, 'F'},
		{"dry-run", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	struct cli_opts o;
	struct settings s;
	const char *prefix = "";
	bool rolling = false, dry_run = false;
	int opt, modes = 0, rc;

	cli_init(&o);
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS "rau:F:n", longopts, NULL)) != -1) {
		if (cli_common_option(&o, opt, optarg))
			continue;
		switch (opt) {
		case 'h': usage(); break;
		case 'V': cli_version(prog); break;
		case 'r': rolling = true; modes++; break;
		case 'a': modes++; break;
		case 'u': case 'F': prefix = optarg; modes++; break;
		case 'n': dry_run = true; break;
		default: cli_usage_error(prog, "unknown option");
		}
	}
	if (optind < argc)
		cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
	if (modes != 1)
		cli_usage_error(prog, "give exactly one of --rolling, --all, --user, --folder");
	cli_load_config(prog, &o, &s);
	if (rolling) {
		rc = rolling_main(&s, o.foreground);
	} else {
		rc = fullsync_run(&s, prefix, dry_run);
	}
	conf_free(&s);
	cli_free(&o);
	return rc;
}

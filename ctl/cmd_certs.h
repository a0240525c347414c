/*
 * cmd_certs.h — `mdreplctl gen-certs`: a private CA and node certificates.
 */
#ifndef MDREPL_CMD_CERTS_H
#define MDREPL_CMD_CERTS_H

/* Runs `gen-certs [--force|--add] [--install-dir DIR] DIR [NODE...]`;
 * argv[0] is "gen-certs". Needs no configuration file. Returns the exit
 * status (EXIT_OK, EXIT_FAIL, EXIT_USAGE). */
int cmd_gen_certs(const char *prog, int argc, char **argv);

#endif

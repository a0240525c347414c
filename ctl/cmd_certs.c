/*
 * cmd_certs.c — `mdreplctl gen-certs DIR [NODE...]`: makes a private CA
 * and a key and certificate per node (lib/certs.c), then tells the
 * operator which file goes where and which [tls] lines to paste into each
 * node's mdrepl.conf.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "certs.h"
#include "cli.h"
#include "cmd_certs.h"
#include "log.h"

#define DEFAULT_INSTALL_DIR SYSCONFDIR "/mdrepl/tls"

static const char *const default_nodes[] = {"primary", "standby"};

static void usage(const char *prog)
{
	printf("Usage: %s gen-certs [--force | --add] [--install-dir DIR] OUTDIR [NODE...]\n"
	       "Make a private CA and a key and certificate for each NODE (default: primary\n"
	       "standby) in OUTDIR, and print the [tls] settings for each node.\n\n"
	       "  --force            replace an existing CA and node files in OUTDIR\n"
	       "  --add              sign new NODE certificates with the CA already in OUTDIR\n"
	       "  --install-dir DIR  where the files will live on the nodes (default %s)\n",
	       prog, DEFAULT_INSTALL_DIR);
}

static void print_fingerprint(const char *outdir, const char *node)
{
	struct buf path = BUF_INIT, fp = BUF_INIT;
	struct err e;

	buf_printf(&path, "%s/%s.crt", outdir, node);
	if (certs_fingerprint(buf_cstr(&path), &fp, &e) == 0)
		printf("%s", buf_cstr(&fp));
	else
		printf("(%s)", e.msg);
	buf_free(&path);
	buf_free(&fp);
}

/* What to copy to a node and what to put in its config. peer names the
 * other node when there are exactly two, for the optional pin. */
static void print_node(const char *outdir, const char *inst, const char *node, const char *peer)
{
	printf("\n== %s ==\n", node);
	printf("Copy to %s (the key readable only by the user mdrepl runs as, mode 0600):\n", node);
	printf("  %s/ca.crt -> %s/ca.crt\n", outdir, inst);
	printf("  %s/%s.crt -> %s/%s.crt\n", outdir, node, inst, node);
	printf("  %s/%s.key -> %s/%s.key\n", outdir, node, inst, node);
	printf("and put this in %s's mdrepl.conf:\n\n", node);
	printf("[tls]\nca_file = %s/ca.crt\ncert_file = %s/%s.crt\nkey_file = %s/%s.key\n", inst,
	       inst, node, inst, node);
	if (peer != NULL) {
		printf("# optional: accept only %s's certificate\n# peer_fingerprint = ", peer);
		print_fingerprint(outdir, peer);
		printf("\n");
	}
}

int cmd_gen_certs(const char *prog, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"force", no_argument, NULL, 'F'},
	    {"add", no_argument, NULL, 'A'},
	    {"install-dir", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum certs_mode mode = CERTS_NEW;
	const char *inst = DEFAULT_INSTALL_DIR, *outdir;
	const char *const *nodes = default_nodes;
	size_t n = 2;
	struct err e;
	int opt;

	log_init(prog, LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'F': mode = CERTS_REPLACE; break;
		case 'A': mode = CERTS_ADD; break;
		case 'i': inst = optarg; break;
		case 'h': usage(prog); return EXIT_OK;
		default: cli_usage_error(prog, "gen-certs: unknown option");
		}
	}
	if (optind >= argc)
		cli_usage_error(prog, "gen-certs: missing the output directory");
	outdir = argv[optind++];
	if (optind < argc) {
		nodes = (const char *const *)(argv + optind);
		n = (size_t)(argc - optind);
	} else if (mode == CERTS_ADD) {
		cli_usage_error(prog, "gen-certs --add: name the nodes to add");
	}
	for (size_t i = 0; i < n; i++)
		if (certs_check_name(nodes[i], &e) < 0)
			cli_usage_error(prog, "gen-certs: %s", e.msg);
	if (certs_generate(outdir, nodes, n, mode, &e) < 0) {
		log_error("gen-certs: %s", e.msg);
		return EXIT_FAIL;
	}
	printf("%s in %s: ca.crt (install on every node), ca.key (keep it here, offline; only\n"
	       "`gen-certs --add` needs it) and a key and certificate per node.\n",
	       mode == CERTS_ADD ? "Signed new node certificates with the CA" : "Made a private CA",
	       outdir);
	for (size_t i = 0; i < n; i++)
		print_node(outdir, inst, nodes[i], n == 2 ? nodes[1 - i] : NULL);
	return EXIT_OK;
}

/*
 * check_conf.c — the config parser: a full valid file, each kind of error
 * with its file:line, quoting and comments, sizes and bounds, overrides,
 * cross-option validation, and dump/re-parse round trip.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "testutil.h"

static struct settings s;

static void setup(void)
{
	conf_defaults(&s);
}

static void teardown(void)
{
	conf_free(&s);
}

static int parse(const char *text, struct err *e)
{
	return conf_parse(&s, text, strlen(text), "test.conf", e);
}

START_TEST(test_defaults)
{
	ck_assert_str_eq(s.node.state_dir, LOCALSTATEDIR "/lib/mdrepl");
	ck_assert_str_eq(s.node.initial_role, "standby");
	ck_assert_int_eq(s.node.name_separator, ':');
	ck_assert_uint_eq(s.journal.fsync_interval_ms, 50);
	ck_assert_uint_eq(s.journal.max_size, 4ULL << 30);
	ck_assert_str_eq(s.listen.address, "127.0.0.1:7870");
	ck_assert(!s.tls.insecure);
	ck_assert_str_eq(s.node.mail_root, "");
}
END_TEST

START_TEST(test_full_file)
{
	struct err e;
	const char *text = "# mdrepl.conf\n"
			   "[node]\n"
			   "mail_root = /var/vmail   # trailing comment\n"
			   "state_dir=/var/lib/mdrepl-test\n"
			   "initial_role = primary\n"
			   "name_separator = ;\n"
			   "\n"
			   "; another comment style\n"
			   "[journal]\n"
			   "  fsync_interval_ms = 0\n"
			   "max_size = 512M\n"
			   "exclude = *.bak, tmp-* ,x\n"
			   "[peer]\n"
			   "address = [::1]:7999\n"
			   "[tls]\n"
			   "peer_fingerprint = \"AB:cd # not a comment \\\" \\\\\"\n"
			   "insecure = yes\n";

	ck_assert_msg(parse(text, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(s.node.mail_root, "/var/vmail");
	ck_assert_str_eq(s.node.state_dir, "/var/lib/mdrepl-test");
	ck_assert_str_eq(s.node.initial_role, "primary");
	ck_assert_int_eq(s.node.name_separator, ';');
	ck_assert_uint_eq(s.journal.fsync_interval_ms, 0);
	ck_assert_uint_eq(s.journal.max_size, 512ULL << 20);
	ck_assert_uint_eq(s.journal.exclude.n, 3);
	ck_assert_str_eq(s.journal.exclude.v[0], "*.bak");
	ck_assert_str_eq(s.journal.exclude.v[1], "tmp-*");
	ck_assert_str_eq(s.journal.exclude.v[2], "x");
	ck_assert_str_eq(s.peer.address, "[::1]:7999");
	ck_assert_str_eq(s.tls.peer_fingerprint, "AB:cd # not a comment \" \\");
	ck_assert(s.tls.insecure);
}
END_TEST

struct bad_case {
	const char *text;
	const char *expect; /* substring of the error */
};

static const struct bad_case bad_cases[] = {
	{"[node]\nmail_roto = /x\n", "test.conf:2: unknown key 'mail_roto' in section [node]"},
	{"[nod]\n", "test.conf:1: unknown section [nod]"},
	{"mail_root = /x\n", "test.conf:1: 'mail_root' is outside any [section]"},
	{"[node]\nmail_root = /a\nmail_root = /b\n", "test.conf:3: duplicate key 'mail_root'"},
	{"[node]\n\n\nmail_root = relative/path\n", "test.conf:4: node.mail_root must be an absolute path"},
	{"[journal]\nfsync_interval_ms = fast\n", "test.conf:2: journal.fsync_interval_ms must be a whole number"},
	{"[journal]\nfsync_interval_ms = 99999\n", "test.conf:2: journal.fsync_interval_ms = 99999 is out of range (0 to 10000)"},
	{"[journal]\nmax_size = 12Q\n", "test.conf:2: journal.max_size must be a size"},
	{"[journal]\nmax_size = 1K\n", "is out of range"},
	{"[journal]\nmax_size = 99999999999999999999G\n", "journal.max_size must be a size"},
	{"[tls]\ninsecure = maybe\n", "test.conf:2: tls.insecure must be yes or no, not 'maybe'"},
	{"[node]\ninitial_role = master\n", "node.initial_role must be one of primary, standby, not 'master'"},
	{"[node]\nname_separator = ab\n", "node.name_separator must be one punctuation character"},
	{"[node]\nname_separator = /\n", "node.name_separator must be one punctuation character"},
	{"[tls]\nca_file = \"/x\n", "test.conf:2: missing closing quote"},
	{"[tls]\nca_file = \"/x\" junk\n", "junk after closing quote"},
	{"[tls]\nca_file = /x\"y\n", "quote in the middle of a value"},
	{"[tls]\nca_file = \"\\n\"\n", "unknown escape"},
	{"[node\n", "missing ']'"},
	{"[node] x\n", "junk after section header"},
	{"[node]\njust some words\n", "test.conf:2: expected 'key = value'"},
	{"[node]\n = x\n", "missing key before '='"},
	{"[peer]\naddress = host:99999\n", "port must be 0-65535"},
	{"[peer]\naddress = ::1:80\n", "write IPv6 addresses as [address]:port"},
	{"[peer]\naddress = [::1\n", "missing ']'"},
	{"[journal]\nexclude = a,,b\n", "empty item"},
	{"[journal]\nexclude = a,\n", "empty item"},
};

START_TEST(test_bad_lines)
{
	struct err e;
	const struct bad_case *c = &bad_cases[_i];

	conf_free(&s);
	conf_defaults(&s);
	err_clear(&e);
	ck_assert_int_eq(parse(c->text, &e), -1);
	ck_assert_msg(strstr(e.msg, c->expect) != NULL, "case %d: got '%s', want '%s'", _i,
		      e.msg, c->expect);
}
END_TEST

START_TEST(test_long_line)
{
	struct err e;
	char *text = malloc(20000);

	/* A value longer than 4096 bytes, on a line short enough to be read. */
	memcpy(text, "[node]\nmail_root = /", 20);
	memset(text + 20, 'a', 9000);
	text[9020] = '\0';
	ck_assert_int_eq(parse(text, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "test.conf:2"));
	ck_assert_ptr_nonnull(strstr(e.msg, "node.mail_root: value longer than 4096 bytes"));
	/* A line too long to read at all. */
	memset(text + 20, 'a', 17000);
	text[17020] = '\0';
	ck_assert_int_eq(parse(text, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "test.conf:2: line longer than"));
	free(text);
}
END_TEST

/* Found by fuzz_conf: a list written compactly ("a,b,...") near the old
 * 4096-byte line limit, or set with -o, was printed by conf_dump (with
 * ", " between items) on a line too long to parse back. Whatever is
 * accepted must now print as a configuration that reads back the same. */
START_TEST(test_dump_long_list_parses_back)
{
	struct settings again;
	struct buf v = BUF_INIT, line = BUF_INIT;
	struct err e;
	char *dumped = NULL;
	size_t n = 0;
	FILE *f;

		for (int i = 0; i < 2047; i++)
		buf_printf(&v, "%s\\", i ? "," : "");
	buf_printf(&line, "journal.exclude=%s", buf_cstr(&v));
	ck_assert_msg(conf_override(&s, buf_cstr(&line), &e) == 0, "%s", e.msg);
	f = open_memstream(&dumped, &n);
	ck_assert_ptr_nonnull(f);
	conf_dump(&s, f);
	ck_assert_int_eq(fclose(f), 0);
	conf_defaults(&again);
	ck_assert_msg(conf_parse(&again, dumped, n, "dump", &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(again.journal.exclude.n, 2047);
	/* One byte more than a value may hold is refused, with its name. */
	buf_reset(&line);
	buf_printf(&line, "journal.exclude=%s,xxx", buf_cstr(&v));
	ck_assert_int_eq(conf_override(&s, buf_cstr(&line), &e), -1);
	ck_assert_msg(strstr(e.msg, "journal.exclude: value longer than 4096") != NULL, "%s", e.msg);
	free(dumped);
	buf_free(&v);
	buf_free(&line);
	conf_free(&s);
	conf_free(&again);
}
END_TEST

START_TEST(test_file_errors)
{
	struct err e;
	const char *dir = tu_mkdtemp();
	char path[4200];

	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	ck_assert_int_eq(conf_load(&s, path, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "cannot open config file"));
	ck_assert_ptr_nonnull(strstr(e.msg, "No such file"));
	ck_assert_int_eq(conf_load(&s, dir, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));
	snprintf(path, sizeof(path), "%s/bad.conf", dir);
	tu_write_str(path, "[node]\nbogus = 1\n");
	ck_assert_int_eq(conf_load(&s, path, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "bad.conf:2: unknown key 'bogus'"));
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_overrides)
{
	struct err e;

	ck_assert_int_eq(conf_override(&s, "node.mail_root=/srv/mail", &e), 0);
	ck_assert_str_eq(s.node.mail_root, "/srv/mail");
	ck_assert_int_eq(conf_override(&s, "journal.max_size = 2G", &e), -1); /* key has space */
	ck_assert_int_eq(conf_override(&s, "journal.max_size=2G", &e), 0);
	ck_assert_uint_eq(s.journal.max_size, 2ULL << 30);
	ck_assert_int_eq(conf_override(&s, "node.nope=1", &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown option 'node.nope'"));
	ck_assert_int_eq(conf_override(&s, "nodemail_root", &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "expected section.key=value"));
	ck_assert_int_eq(conf_override(&s, "tls.insecure=perhaps", &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "-o tls.insecure=perhaps: tls.insecure must be yes or no"));
}
END_TEST

START_TEST(test_validate)
{
	struct err e;

	ck_assert_int_eq(conf_validate(&s, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "mail_root is not set"));
	ck_assert_int_eq(parse("[node]\nmail_root=/m\n[tls]\ncert_file=/c\n", &e), 0);
	ck_assert_int_eq(conf_validate(&s, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "cert_file and key_file must be set together"));
	conf_free(&s);
	conf_defaults(&s);
	ck_assert_int_eq(parse("[node]\nmail_root=/m\n[tls]\npeer_fingerprint=abc\n", &e), 0);
	ck_assert_int_eq(conf_validate(&s, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "64 hex digits"));
	conf_free(&s);
	conf_defaults(&s);
	ck_assert_int_eq(parse("[node]\nmail_root=/m\n", &e), 0);
	ck_assert_int_eq(conf_validate(&s, &e), 0);
}
END_TEST

START_TEST(test_split_addr)
{
	char host[64];
	unsigned port;
	struct err e;

	ck_assert_int_eq(conf_split_addr("example.net", host, sizeof(host), &port, &e), 0);
	ck_assert_str_eq(host, "example.net");
	ck_assert_uint_eq(port, MDREPL_DEFAULT_PORT);
	ck_assert_int_eq(conf_split_addr("10.0.0.1:80", host, sizeof(host), &port, &e), 0);
	ck_assert_str_eq(host, "10.0.0.1");
	ck_assert_uint_eq(port, 80);
	ck_assert_int_eq(conf_split_addr("[fe80::1]:9", host, sizeof(host), &port, &e), 0);
	ck_assert_str_eq(host, "fe80::1");
	ck_assert_uint_eq(port, 9);
	ck_assert_int_eq(conf_split_addr(":80", host, sizeof(host), &port, &e), -1);
	ck_assert_int_eq(conf_split_addr("h:0", host, sizeof(host), &port, &e), 0);
	ck_assert_uint_eq(port, 0);
	ck_assert_int_eq(conf_split_addr("h:65536", host, sizeof(host), &port, &e), -1);
	ck_assert_int_eq(conf_split_addr("averyveryverylonghostnamethatdoesnotfit.example", host, 8,
				   &port, &e), -1);
}
END_TEST

/* What conf_dump prints parses back to the same settings. */
START_TEST(test_dump_roundtrip)
{
	struct settings t;
	struct err e;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(parse("[node]\nmail_root=/m\n[journal]\nexclude=a*,b\n"
			       "[tls]\npeer_fingerprint=\"x # y\"\n", &e), 0);
	f = open_memstream(&text, &len);
	conf_dump(&s, f);
	fclose(f);
	conf_defaults(&t);
	ck_assert_msg(conf_parse(&t, text, len, "dump", &e) == 0, "%s\n%s", e.msg, text);
	ck_assert_str_eq(t.node.mail_root, "/m");
	ck_assert_str_eq(t.tls.peer_fingerprint, "x # y");
	ck_assert_uint_eq(t.journal.exclude.n, 2);
	ck_assert_uint_eq(t.journal.max_size, s.journal.max_size);
	conf_free(&t);
	free(text);
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_conf.c): list items and a separator
 * that need quoting were printed bare, and the dump did not parse back. */
START_TEST(test_dump_quotes_lists_and_chars)
{
	struct settings t;
	struct err e;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(parse("[node]\nmail_root=/m\nname_separator=\"\\\"\"\n"
			       "[journal]\nexclude=\"a, x #y, q\\\"z\"\n", &e), 0);
	ck_assert_int_eq(s.node.name_separator, '"');
	ck_assert_uint_eq(s.journal.exclude.n, 3);
	f = open_memstream(&text, &len);
	conf_dump(&s, f);
	fclose(f);
	conf_defaults(&t);
	ck_assert_msg(conf_parse(&t, text, len, "dump", &e) == 0, "%s\n%s", e.msg, text);
	ck_assert_int_eq(t.node.name_separator, '"');
	ck_assert_uint_eq(t.journal.exclude.n, 3);
	ck_assert_str_eq(t.journal.exclude.v[1], "x #y");
	ck_assert_str_eq(t.journal.exclude.v[2], "q\"z");
	conf_free(&t);
	free(text);
}
END_TEST

START_TEST(test_table_complete)
{
	/* Every option has a meaning for the man page and a parseable default. */
	for (const struct opt_def *o = conf_table(); o->section != NULL; o++) {
		ck_assert_msg(o->help != NULL && strlen(o->help) > 10, "%s.%s has no help", o->section,
			      o->key);
		ck_assert_ptr_nonnull(o->def);
	}
}
END_TEST

static Suite *conf_suite(void)
{
	Suite *su = suite_create("conf");
	TCase *core = tcase_create("core"), *errors = tcase_create("errors"),
	      *limits = tcase_create("limits");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_add_test(core, test_defaults);
	tcase_add_test(core, test_full_file);
	tcase_add_test(core, test_overrides);
	tcase_add_test(core, test_split_addr);
	tcase_add_test(core, test_dump_roundtrip);
	tcase_add_test(core, test_dump_quotes_lists_and_chars);
	tcase_add_test(core, test_table_complete);
	tcase_add_loop_test(errors, test_bad_lines, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(errors, test_file_errors);
	tcase_add_test(errors, test_validate);
	tcase_add_test(limits, test_long_line);
	tcase_add_test(limits, test_dump_long_list_parses_back);
	suite_add_tcase(su, core);
	suite_add_tcase(su, errors);
	suite_add_tcase(su, limits);
	return su;
}

int main(void)
{
	return tu_run(conf_suite());
}

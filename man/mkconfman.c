/*
 * mkconfman.c — prints documentation made from the option table in
 * lib/conf.c, so that neither can drift from the code:
 *
 *     mkconfman            the OPTIONS section of mdrepl.conf(5) (roff)
 *     mkconfman --example  the body of mdrepl.conf.example: every section
 *                          and option, commented, with its default
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "conf.h"

#define EXAMPLE_WIDTH 76
#define MAN_WIDTH     72 /* roff source lines, before escapes */

/* Values shown in the example for options that have no default; the
 * configuration is incomplete without the required ones. */
static const struct example {
	const char *section, *key, *value;
	bool required;
} examples[] = {
    {"node", "mail_root", "/var/vmail", true},
    {"node", "metrics_dir", "/var/lib/prometheus/node-exporter", false},
    {"journal", "exclude", ".nfs*, *.bak", false},
    {"peer", "address", "other-node.example.net:7870", false},
    {"tls", "ca_file", SYSCONFDIR "/mdrepl/tls/ca.crt", false},
    {"tls", "cert_file", SYSCONFDIR "/mdrepl/tls/primary.crt", false},
    {"tls", "key_file", SYSCONFDIR "/mdrepl/tls/primary.key", false},
};

static const struct example *example_of(const struct opt_def *o)
{
	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		if (strcmp(examples[i].section, o->section) == 0 &&
		    strcmp(examples[i].key, o->key) == 0)
			return &examples[i];
	}
	return NULL;
}

/* Formats a byte count with the largest suffix that divides it exactly. */
static void size_str(uint64_t n, char *out, size_t len)
{
	static const char suffix[] = "KMGT";
	int i = -1;

	while (n != 0 && n % 1024 == 0 && i < 3) {
		n /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(out, len, "%" PRIu64, n);
	else
		snprintf(out, len, "%" PRIu64 "%c", n, suffix[i]);
}

/* The allowed range of a number or size ("" for other types). */
static void range_str(const struct opt_def *o, char *out, size_t len)
{
	char lo[32], hi[32];

	out[0] = '\0';
	if (o->type != OPT_UINT && o->type != OPT_SIZE)
		return;
	if (o->type == OPT_SIZE) {
		size_str(o->min, lo, sizeof(lo));
		size_str(o->max, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%" PRIu64, o->min);
		snprintf(hi, sizeof(hi), "%" PRIu64, o->max);
	}
	snprintf(out, len, "%s to %s", lo, hi);
}

/* Escapes the first n bytes of s for roff: backslashes, minus signs, and a
 * leading dot or quote (which would start a request). */
static void roff(const char *s, size_t n)
{
	if (n > 0 && (*s == '.' || *s == '\''))
		fputs("\\&", stdout);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\')
			fputs("\\e", stdout);
		else if (s[i] == '-')
			fputs("\\-", stdout);
		else
			putchar(s[i]);
	}
}

/* Length of the next line of at most width bytes of *s, broken at a space
 * (a longer word makes a longer line); advances *s past it and the spaces
 * after it. Returns 0 at the end. */
static size_t next_line(const char **s, size_t width)
{
	const char *p = *s;
	size_t n = strlen(p);

	if (n > width) {
		n = width;
		while (n > 0 && p[n] != ' ')
			n--;
		if (n == 0)
			n = strcspn(p, " ");
	}
	for (*s = p + n; **s == ' '; (*s)++)
		;
	return n;
}

static void print_man(void)
{
	const char *section = NULL;
	char range[80];

	for (const struct opt_def *o = conf_table(); o->section != NULL; o++) {
		if (section == NULL || strcmp(section, o->section) != 0) {
			printf(".SS [%s]\n", o->section);
			section = o->section;
		}
		range_str(o, range, sizeof(range));
		printf(".TP\n\\fB%s\\fR = \\fI%s\\fR", o->key, conf_type_name(o->type));
		if (range[0] != '\0')
			printf(", %s", range);
		printf(" (default: ");
		if (o->def[0] == '\0')
			printf("unset");
		else
			roff(o->def, strlen(o->def));
		printf(")\n");
		for (const char *h = o->help; *h != '\0';) {
			const char *line = h;
			size_t n = next_line(&h, MAN_WIDTH);

			roff(line, n);
			putchar('\n');
		}
		if (o->choices != NULL) {
			printf("One of:");
			for (const char *const *c = o->choices; *c != NULL; c++)
				printf(" \\fB%s\\fR%s", *c, c[1] ? "," : ".");
			putchar('\n');
		}
	}
}

/* Prints text as "# " comment lines of at most EXAMPLE_WIDTH columns. */
static void comment(const char *s)
{
	while (*s != '\0') {
		const char *line = s;
		size_t n = next_line(&s, EXAMPLE_WIDTH - 2);

		printf("# %.*s\n", (int)n, line);
	}
}

static void print_example(void)
{
	const char *section = NULL;
	char range[80];
	struct buf what = BUF_INIT;

	for (const struct opt_def *o = conf_table(); o->section != NULL; o++) {
		const struct example *ex = example_of(o);

		if (section == NULL || strcmp(section, o->section) != 0) {
			printf("\n[%s]\n", o->section);
			section = o->section;
		}
		putchar('\n');
		comment(o->help);
		range_str(o, range, sizeof(range));
		buf_reset(&what);
		buf_printf(&what, "%s%s%s", conf_type_name(o->type), range[0] ? ", " : "", range);
		for (const char *const *c = o->choices; c != NULL && *c != NULL; c++)
			buf_printf(&what, "%s%s", c == o->choices ? ": " : " | ", *c);
		if (o->def[0] != '\0')
			printf("# (%s; default %s)\n#%s = %s\n", buf_cstr(&what), o->def, o->key,
			       o->def);
		else if (ex != NULL)
			printf("# (%s; %s, for example:)\n#%s = %s\n", buf_cstr(&what),
			       ex->required ? "required" : "unset by default", o->key, ex->value);
		else
			printf("# (%s; unset by default)\n#%s =\n", buf_cstr(&what), o->key);
	}
	buf_free(&what);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--example") == 0) {
		print_example();
		return 0;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: mkconfman [--example]\n");
		return 2;
	}
	print_man();
	return 0;
}

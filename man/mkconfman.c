/*
 * mkconfman.c — prints the OPTIONS section of mdrepl.conf(5) from the
 * option table in lib/conf.c, so the manual cannot drift from the code.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"

/* Escapes text for roff: backslashes, and a leading dot or quote. */
static void roff(const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", stdout);
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\e", stdout);
		else if (*s == '-')
			fputs("\\-", stdout);
		else
			putchar(*s);
	}
}

int main(void)
{
	const char *section = NULL;

	for (const struct opt_def *o = conf_table(); o->section != NULL; o++) {
		if (section == NULL || strcmp(section, o->section) != 0) {
			printf(".SS [%s]\n", o->section);
			section = o->section;
		}
		printf(".TP\n\\fB%s\\fR = \\fI%s\\fR (default: ", o->key,
		       conf_type_name(o->type));
		if (o->def[0] == '\0')
			printf("unset");
		else
			roff(o->def);
		printf(")\n");
		roff(o->help);
		putchar('\n');
		if (o->choices != NULL) {
			printf("One of:");
			for (const char *const *c = o->choices; *c != NULL; c++)
				printf(" %s%s", *c, c[1] ? "," : ".");
			putchar('\n');
		}
	}
	return 0;
}

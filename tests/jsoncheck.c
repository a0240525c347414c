/*
 * jsoncheck.c — a strict JSON validator for the end-to-end tests (no
 * python or jq on a fresh machine): reads stdin, exits 0 if it is exactly
 * one valid JSON value (RFC 8259) followed by optional whitespace, else
 * prints where it went wrong and exits 1.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *p, *start;

static int fail(const char *why)
{
	fprintf(stderr, "jsoncheck: %s at offset %ld\n", why, (long)(p - start));
	exit(1);
}

static void ws(void)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
}

static void value(int depth);

static void string(void)
{
	if (*p++ != '"')
		fail("expected a string");
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			fail("control character in a string");
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						fail("bad \\u escape");
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || *p == '\0') {
				fail("bad escape");
			}
		}
		p++;
	}
	p++;
}

static void number(void)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (isdigit((unsigned char)*p))
		while (isdigit((unsigned char)*p))
			p++;
	else
		fail("bad number");
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			fail("bad fraction");
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			fail("bad exponent");
		while (isdigit((unsigned char)*p))
			p++;
	}
}

static void container(int depth, char close)
{
	p++;
	ws();
	if (*p == close) {
		p++;
		return;
	}
	for (;;) {
		if (close == '}') {
			string();
			ws();
			if (*p++ != ':')
				fail("expected ':'");
		}
		value(depth + 1);
		ws();
		if (*p == close) {
			p++;
			return;
		}
		if (*p++ != ',')
			fail("expected ',' or the end of the container");
		ws();
	}
}

static void value(int depth)
{
	if (depth > 64)
		fail("nested too deeply");
	ws();
	if (*p == '{')
		container(depth, '}');
	else if (*p == '[')
		container(depth, ']');
	else if (*p == '"')
		string();
	else if (strncmp(p, "true", 4) == 0)
		p += 4;
	else if (strncmp(p, "false", 5) == 0)
		p += 5;
	else if (strncmp(p, "null", 4) == 0)
		p += 4;
	else
		number();
}

int main(void)
{
	static char in[1 << 22];
	size_t n = fread(in, 1, sizeof(in) - 1, stdin);

	in[n] = '\0';
	p = start = in;
	value(0);
	ws();
	if (*p != '\0')
		fail("trailing data");
	return 0;
}

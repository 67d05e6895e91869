/* t_config.c - the key = value config file and -X overrides (config.h). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "tap.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char dir[] = "/tmp/t_config.XXXXXX";
static char logpath[256];
static int saved_stderr = -1;

/* Write text to dir/name and return the path (static storage, per call). */
static const char *file(const char *name, const char *text, size_t len)
{
	static char path[4][256];
	static int k;
	char *p = path[k++ % 4];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
		perror(p);
		exit(2);
	}
	return p;
}

/* Send stderr to a file for one call, so the test can read what was logged. */
static void capture(void)
{
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static const char *captured(void)
{
	static char text[4096];
	FILE *f;
	size_t n;

	dup2(saved_stderr, 2);
	close(saved_stderr);
	f = fopen(logpath, "r");
	n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
	if (f)
		fclose(f);
	text[n] = 0;
	return text;
}

static const char good[] =
    "# a comment\n"
    "\n"
    "   \t\n"
    "   # an indented comment\n"
    "timeout = 5s\n"
    "  retention=7d   \n"
    "plain = a value with spaces   # and a comment\n"
    "hash = a#b\n"
    "hash2 = #not-a-value?\n"
    "quoted = \"  padded # not a comment \"  # but this is\n"
    "escaped = \"say \\\"hi\\\" \\\\o/\"\n"
    "empty =\n"
    "emptyq = \"\"\n"
    "dup = first\n"
    "k.e-y_9 = ok\n"
    "dup = last\n"
    "crlf = yes\r\n"
    "size = 4k\n"
    "flag = On\n"
    "num = 18446744073709551615\n"
    "nocolon = a \"b\" c\n"
    "last = no newline at end";

static void load_tests(void)
{
	static const struct {
		const char *key, *want;
	} rows[] = {
	    {"timeout", "5s"},
	    {"retention", "7d"},
	    {"plain", "a value with spaces"},
	    {"hash", "a#b"},
	    {"hash2", ""},
	    {"quoted", "  padded # not a comment "},
	    {"escaped", "say \"hi\" \\o/"},
	    {"empty", ""},
	    {"emptyq", ""},
	    {"dup", "last"},
	    {"k.e-y_9", "ok"},
	    {"crlf", "yes"},
	    {"nocolon", "a \"b\" c"},
	    {"last", "no newline at end"},
	};
	struct hs_config c = HS_CONFIG_INIT;
	const char *path = file("good", good, sizeof(good) - 1);
	uint64_t u;
	int b;

	is_int(hs_config_load(&c, path, 1), 0,
	       "load a file with comments and quotes");
	for (size_t i = 0; i < N(rows); i++)
		is_str(hs_config_get(&c, rows[i].key), rows[i].want, "key '%s'",
		       rows[i].key);
	ok(hs_config_get(&c, "nosuch") == NULL, "an unset key is NULL");
	ok(hs_config_get(&c, "# a comment") == NULL, "comments are not keys");
	is_int(c.n, 17, "17 distinct keys (dup counted once)");

	is_int(hs_config_get_duration_ms(&c, "timeout", 1, &u), 0,
	       "typed duration");
	is_int(u, 5000, "timeout = 5s is 5000 ms");
	is_int(hs_config_get_duration_ms(&c, "unset", 250, &u), 0,
	       "duration default");
	is_int(u, 250, "the default is used");
	is_int(hs_config_get_size(&c, "size", 0, &u), 0, "typed size");
	is_int(u, 4096, "size = 4k is 4096");
	is_int(hs_config_get_u64(&c, "num", 0, &u), 0, "typed u64");
	ok(u == UINT64_MAX, "num is UINT64_MAX");
	is_int(hs_config_get_bool(&c, "flag", 0, &b), 0, "typed bool");
	is_int(b, 1, "flag = On is true");
	is_int(hs_config_get_bool(&c, "crlf", 0, &b), 0, "bool yes");
	is_int(b, 1, "yes is true");
	is_int(hs_config_get_bool(&c, "unset", 1, &b), 0, "bool default");
	is_int(b, 1, "bool default is used");

	/* Bad typed values: an error naming the key and where it was set. */
	u = 99;
	capture();
	is_int(hs_config_get_duration_ms(&c, "plain", 1, &u), -HS_ECONFIG,
	       "a bad duration is -HS_ECONFIG");
	ok(strstr(captured(),
		  ":7: invalid duration 'a value with spaces' for key 'plain'"),
	   "the log names FILE:LINE, the value and the key");
	is_int(u, 99, "a bad value leaves *out alone");
	capture();
	is_int(hs_config_get_size(&c, "timeout", 1, &u), -HS_ECONFIG,
	       "a bad size");
	ok(strstr(captured(), "for key 'timeout'"),
	   "the size error names the key");
	capture();
	is_int(hs_config_get_u64(&c, "size", 1, &u), -HS_ECONFIG, "a bad u64");
	ok(strstr(captured(), "invalid number '4k'"),
	   "the u64 error shows the value");
	capture();
	is_int(hs_config_get_bool(&c, "timeout", 0, &b), -HS_ECONFIG,
	       "a bad bool");
	ok(strstr(captured(), "invalid boolean '5s'"),
	   "the bool error shows the value");

	/* A second file layers on top; overrides applied last win. */
	path = file("more", "timeout = 9s\nnew = 1\n", 20);
	is_int(hs_config_load(&c, path, 0), 0, "load a second file");
	is_str(hs_config_get(&c, "timeout"), "9s", "the later file wins");
	is_str(hs_config_get(&c, "retention"), "7d", "earlier keys stay");
	is_int(hs_config_set(&c, "timeout=250ms"), 0, "-X timeout=250ms");
	is_str(hs_config_get(&c, "timeout"), "250ms", "the override wins");
	is_int(hs_config_set(&c, "  retention  =  1d  "), 0, "-X with spaces");
	is_str(hs_config_get(&c, "retention"), "1d", "override trimmed");
	is_int(hs_config_set(&c, "motd=a # b"), 0, "-X with a '#'");
	is_str(hs_config_get(&c, "motd"), "a # b", "'#' is text in -X");
	is_int(hs_config_set(&c, "q=\"x\\\"y\""), 0, "-X quoted");
	is_str(hs_config_get(&c, "q"), "x\"y", "-X unquoted value");
	is_int(hs_config_set(&c, "e="), 0, "-X empty value");
	is_str(hs_config_get(&c, "e"), "", "-X empty value is empty");
	is_int(hs_config_set(&c, "eq=a=b"), 0, "-X value with '='");
	is_str(hs_config_get(&c, "eq"), "a=b", "only the first '=' splits");
	capture();
	is_int(hs_config_get_duration_ms(&c, "motd", 0, &u), -HS_ECONFIG,
	       "bad -X value");
	ok(strstr(captured(), "-X: invalid duration 'a # b' for key 'motd'"),
	   "an -X value's error says -X");
	hs_config_free(&c);
	is_int(c.n, 0, "free empties");
	ok(hs_config_get(&c, "timeout") == NULL, "nothing after free");
	is_int(hs_config_set(&c, "a=1"), 0, "a freed config is reusable");
	hs_config_free(&c);
}

static void set_errors(void)
{
	static const char *bad[] = {
	    "",		 "novalue", "=x",    " = x",	 "Key=x",
	    "a b=x",	 "k\"=x",   "a/b=x", "k=\"open", "k=\"x\" junk",
	    "k=\"\\n\"", "k=\"\\",  "é=x",
	};
	struct hs_config c = HS_CONFIG_INIT;

	for (size_t i = 0; i < N(bad); i++)
		is_int(hs_config_set(&c, bad[i]), -HS_EUSAGE, "-X '%s' refused",
		       bad[i]);
	is_int(hs_config_set(&c, NULL), -HS_EUSAGE, "-X NULL refused");
	is_int(c.n, 0, "nothing was set");
	hs_config_free(&c);
}

static void syntax_errors(void)
{
	static const struct {
		const char *text, *log;
	} rows[] = {
	    {"a = 1\nb\n", ":2: expected '=' after the key"},
	    {"a = 1\n\n# c\nB = 2\n", ":4: expected KEY = VALUE"},
	    {"= 2\n", ":1: expected KEY = VALUE"},
	    {"a b = 2\n", ":1: expected '=' after the key"},
	    {"a = \"x\n", ":1: unterminated quoted value"},
	    {"a = \"x\" y\n", ":1: unexpected text after the closing quote"},
	    {"a = 1\na = \"\\t\"\n", ":2: unknown escape"},
	    {"a:1\n", ":1: expected KEY = VALUE"},
	    {"a = 1\nb = x\0y\n", ":2: NUL byte in line"},
	};
	struct hs_config c = HS_CONFIG_INIT;

	for (size_t i = 0; i < N(rows); i++) {
		size_t len = strlen(rows[i].text);
		const char *path, *log;
		char want[512];

		if (i == N(rows) - 1)
			len = 14; /* the NUL row carries a byte strlen cannot
				     see */
		path = file("bad", rows[i].text, len);
		snprintf(want, sizeof(want), "%s%s", path, rows[i].log);
		capture();
		is_int(hs_config_load(&c, path, 1), -HS_ECONFIG,
		       "syntax error %zu", i);
		log = captured();
		ok(strstr(log, want) != NULL, "logged '%s'", want);
		if (!strstr(log, want))
			printf("#   log: %s", log);
		hs_config_free(&c);
	}
}

static void missing_and_paths(void)
{
	struct hs_config c = HS_CONFIG_INIT;
	char path[300], buf[300];

	snprintf(path, sizeof(path), "%s/nosuch", dir);
	is_int(hs_config_load(&c, path, 1), -HS_ENOENT,
	       "a missing explicit file");
	is_int(hs_config_load(&c, path, 0), 0,
	       "a missing default file is fine");
	snprintf(path, sizeof(path), "%s/good/under-a-file", dir);
	is_int(hs_config_load(&c, path, 0), 0, "ENOTDIR counts as missing");
	capture();
	is_int(hs_config_load(&c, dir, 1), -HS_ECONFIG,
	       "a directory is an error");
	ok(strstr(captured(), dir) != NULL, "the error names the path");
	is_int(c.n, 0, "nothing loaded");

	setenv("XDG_CONFIG_HOME", "/x/conf", 1);
	setenv("HOME", "/home/u", 1);
	is_str(hs_config_default_path(buf, sizeof(buf)), "/x/conf/hs/config",
	       "XDG_CONFIG_HOME wins");
	setenv("XDG_CONFIG_HOME", "relative", 1);
	is_str(hs_config_default_path(buf, sizeof(buf)),
	       "/home/u/.config/hs/config",
	       "a relative XDG_CONFIG_HOME is ignored");
	unsetenv("XDG_CONFIG_HOME");
	is_str(hs_config_default_path(buf, sizeof(buf)),
	       "/home/u/.config/hs/config", "HOME fallback");
	ok(hs_config_default_path(buf, 10) == NULL,
	   "too small a buffer is NULL");
	unsetenv("HOME");
	ok(hs_config_default_path(buf, sizeof(buf)) == NULL,
	   "no HOME, no path");
	hs_config_free(&c);
}

int main(void)
{
	char cmd[300];
	int r;

	hs_log_init("t_config", HS_LOG_ERROR);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	load_tests();
	set_errors();
	syntax_errors();
	missing_and_paths();
	r = tap_done();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return r;
}

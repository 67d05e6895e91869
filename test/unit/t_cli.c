/* t_cli.c - settings from the configuration file as flags
 * (cli.h "CONFIGURATION", hs_cli_config_args). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "tap.h"

static char dir[] = "/tmp/t_cli.XXXXXX";
static char cfg[256];

enum { OPT_MIN_FREE = HS_OPT_FIRST_PRIVATE, OPT_WHOLE, OPT_TIER, OPT_PEER };

static const struct option longopts[] = {
	HS_CLI_LONGOPTS,
	{ "min-free", required_argument, NULL, OPT_MIN_FREE },
	{ "whole", no_argument, NULL, OPT_WHOLE },
	{ "tier", required_argument, NULL, OPT_TIER },
	{ "peer", required_argument, NULL, OPT_PEER },
	{ "count", required_argument, NULL, 'c' },
	{ "pidfile", required_argument, NULL, OPT_PEER + 1 },
	{ NULL, 0, NULL, 0 },
};
#define SHORTOPTS HS_CLI_SHORTOPTS "c:0"

static const struct hs_cli_env envs[] = { { "tier", "T_CLI_TIER" }, { NULL, NULL } };
/* --whole and --tier refused together; --count with two operands. */
static const char *const groups[] = { "whole tier", "count #2", NULL };

static void write_cfg(const char *text)
{
	FILE *f = fopen(cfg, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(cfg);
		exit(2);
	}
}

/* Run hs_cli_config_args as prog "t-cli" over the NULL-ended args and
 * return the rewritten command line joined by spaces (static storage), or
 * "status N". */
static const char *run(const char *config, const char *const *args, struct hs_cli *c)
{
	static char out[1024];
	char *argv[32];
	int argc = 0, st;
	char **av;

	write_cfg(config);
	argv[argc++] = "t-cli";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	hs_cli_init(c, "t-cli", 0, "usage: t-cli\n", "");
	c->config_path = cfg;
	av = argv;
	st = hs_cli_config_args(c, SHORTOPTS, longopts, envs, groups, &argc, &av);
	if (st) {
		snprintf(out, sizeof(out), "status %d", st);
		return out;
	}
	out[0] = 0;
	for (int i = 1; i < argc; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i > 1 ? " " : "",
			 av[i]);
	ok(av[argc] == NULL, "argv stays NULL-ended");
	return out;
}

#define CHECK(config, want, ...)                                                   \
	do {                                                                      \
		static const char *const a_[] = { __VA_ARGS__ };                  \
		struct hs_cli c_;                                                 \
		is_str(run(config, a_, &c_), want, "line %d: %s", __LINE__, want); \
		hs_cli_free(&c_);                                                 \
	} while (0)

int main(void)
{
	int fd;

	if (!mkdtemp(dir))
		return 2;
	snprintf(cfg, sizeof(cfg), "%s/config", dir);
	unsetenv("HS_ADDR");
	unsetenv("HS_TIMEOUT");
	unsetenv("T_CLI_TIER");
	/* Messages of the failing cases go nowhere. */
	fd = dup(2);
	freopen("/dev/null", "w", stderr);

	CHECK("", "s", "s", NULL);
	CHECK("t-cli.min-free = 1G\n", "--min-free=1G s", "s", NULL);
	/* The command line wins, in every spelling. */
	CHECK("t-cli.min-free = 1G\n", "--min-free 0 s", "--min-free", "0", "s", NULL);
	CHECK("t-cli.min-free = 1G\n", "--min-free=0 s", "--min-free=0", "s", NULL);
	CHECK("t-cli.min-free = 1G\n", "--min-f=0 s", "--min-f=0", "s", NULL);
	CHECK("t-cli.count = 5\n", "-c 3 s", "-c", "3", "s", NULL);
	CHECK("t-cli.count = 5\n", "-0c3 s", "-0c3", "s", NULL);
	CHECK("t-cli.count = 5\n", "--count=3", "--count=3", NULL);
	/* A flag's argument is not a flag; after "--" nothing is. */
	CHECK("t-cli.count = 5\n", "--count=5 -a --count", "-a", "--count", NULL);
	CHECK("t-cli.min-free = 1G\n", "--min-free=1G -- --min-free 0", "--", "--min-free", "0",
	      NULL);
	/* Operands anywhere (GNU permutation). */
	CHECK("t-cli.count = 5\n", "s -c 3", "s", "-c", "3", NULL);
	/* Common settings unscoped; the scoped one wins. */
	CHECK("timeout = 9s\naddr = unix:/x\n", "--addr=unix:/x --timeout=9s", NULL);
	CHECK("timeout = 9s\nt-cli.timeout = 2s\n", "--timeout=2s", NULL);
	CHECK("timeout = 9s\n", "-t1s", "-t1s", NULL);
	/* Only the common ones unscoped. */
	CHECK("min-free = 1G\n", "", NULL);
	/* Flags take booleans. */
	CHECK("t-cli.whole = yes\n", "--whole", NULL);
	CHECK("t-cli.whole = off\n", "", NULL);
	CHECK("t-cli.whole = maybe\n", "status 78", NULL);
	/* Typos and non-settings are errors, other programs' keys are not. */
	CHECK("t-cli.min-fre = 1G\n", "status 78", NULL);
	CHECK("t-cli.config = /etc/x\n", "status 78", NULL);
	CHECK("t-cli.help = true\n", "status 78", NULL);
	CHECK("hs-peer.min-fre = 1G\nother = 1\n", "", NULL);
	/* -X wins over the file and is found anywhere on the command line. */
	CHECK("t-cli.min-free = 1G\n", "--min-free=2G -X t-cli.min-free=2G",
	      "-X", "t-cli.min-free=2G", NULL);
	CHECK("t-cli.min-free = 1G\n", "--min-free=3G s -Xt-cli.min-free=3G", "s",
	      "-Xt-cli.min-free=3G", NULL);
	CHECK("", "status 64", "-X", "novalue", NULL);
	/* The environment wins over the file. */
	setenv("HS_TIMEOUT", "4s", 1);
	setenv("T_CLI_TIER", "file:///t", 1);
	CHECK("timeout = 9s\nt-cli.tier = file:///c\n", "", NULL);
	unsetenv("HS_TIMEOUT");
	unsetenv("T_CLI_TIER");
	CHECK("t-cli.tier = file:///c\nt-cli.peer = unix:/p\n",
	      "--tier=file:///c --peer=unix:/p", NULL);
	/* A syntax error is a configuration error. */
	CHECK("t-cli.min-free\n", "status 78", NULL);
	/* ... but --help and --version do not even read the file. */
	CHECK("t-cli.min-free\n", "--help", "--help", NULL);
	CHECK("t-cli.typo = 1\n", "-V", "-V", NULL);
	CHECK("t-cli.min-free = 1G\n", "-vh", "-vh", NULL);
	/* One process's own files are no settings. */
	CHECK("t-cli.pidfile = /run/x.pid\n", "status 78", NULL);
	/* Options refused together: the command line's wins. */
	CHECK("t-cli.whole = true\n", "--tier x", "--tier", "x", NULL);
	CHECK("t-cli.tier = file:///c\n", "--whole", "--whole", NULL);
	CHECK("t-cli.whole = true\nt-cli.min-free = 1G\n", "--min-free=1G --tier=x", "--tier=x",
	      NULL);
	CHECK("t-cli.count = 5\n", "--count=5 s", "s", NULL);
	CHECK("t-cli.count = 5\n", "s r", "s", "r", NULL);
	CHECK("t-cli.count = 5\n", "s -- r", "s", "--", "r", NULL);
	/* POSIXLY_CORRECT: options end at the first operand. */
	setenv("POSIXLY_CORRECT", "1", 1);
	CHECK("t-cli.min-free = 1G\n", "--min-free=1G s --min-free 0", "s", "--min-free", "0",
	      NULL);
	unsetenv("POSIXLY_CORRECT");
	/* An HS_TIMEOUT that does not parse is ignored: the file's applies. */
	setenv("HS_TIMEOUT", "soon", 1);
	CHECK("timeout = 9s\n", "--timeout=9s", NULL);
	unsetenv("HS_TIMEOUT");
	{
		/* Only the common settings when asked. */
		static const char *const a[] = { NULL };
		struct hs_cli c;
		char *argv[] = { "t-cli", NULL };
		char **av = argv;
		int argc = 1;

		write_cfg("t-cli.timeout = 3s\n");
		hs_cli_init(&c, "t-cli", 0, "usage: t-cli\n", "");
		c.config_path = cfg;
		c.config_common_only = 1;
		is_int(hs_cli_config_args(&c, SHORTOPTS, longopts, NULL, NULL, &argc, &av), 0,
		       "common only: timeout");
		is_int(argc, 2, "one setting");
		is_str(av[1], "--timeout=3s", "as a flag");
		hs_cli_free(&c);
		write_cfg("t-cli.min-free = 1G\n");
		hs_cli_init(&c, "t-cli", 0, "usage: t-cli\n", "");
		c.config_path = cfg;
		c.config_common_only = 1;
		av = argv;
		argc = 1;
		is_int(hs_cli_config_args(&c, SHORTOPTS, longopts, NULL, NULL, &argc, &av), EX_CONFIG,
		       "common only: min-free is no setting");
		hs_cli_free(&c);
		(void)a;
	}
	fflush(stderr);
	dup2(fd, 2);
	unlink(cfg);
	rmdir(dir);
	return tap_done();
}

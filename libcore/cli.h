/*
 * cli.h - what every HStore binary does the same way on its command line.
 *
 * Each binary keeps its own getopt_long table (its flags are its contract,
 * CLI.md) and passes unknown options here.  The common flags are:
 *   -a/--addr ADDR (HS_ADDR), --config FILE (HS_CONFIG), -X KEY=VAL,
 *   -t/--timeout DUR (HS_TIMEOUT), -v, -q (HS_LOG), -h/--help, -V/--version.
 * HS_CLI_LONGOPTS expands to their struct option entries; HS_CLI_SHORTOPTS
 * is their short-option string.  Nothing here calls exit(): a function that
 * wants the process to end returns the exit status and cmd/ exits.
 *
 * CONFIGURATION (config.h has the file's syntax).  A setting is a long
 * option: "hs-peer.min-free = 1G" is `hs-peer --min-free 1G`, and the
 * common "addr" and "timeout" may also be given unscoped, for every tool
 * ("timeout = 10s").  A flag without a value takes a boolean
 * ("hs-append.whole = true").  Precedence, highest first: the command
 * line, the environment (HS_ADDR, HS_TIMEOUT and the program's own, such
 * as HS_TIER_URL), "<prog>.<option>", "<option>", the built-in default.
 * hs_cli_config_args() does it before getopt by putting each setting the
 * command line and the environment leave open in front of argv as
 * "--option=value", so that every flag keeps one parser.  A key
 * "<prog>.<x>" naming no option of that program is an error (78): a typo
 * must not be silently ignored.  --config, --help, --version, --pidfile
 * and --ready-file (one process's own) cannot be set there.  Options a
 * program refuses together (-0 and --format...) are given as groups: a
 * setting is left out when another member of its group is on the command
 * line, so the command line wins there too.  With --help or --version on
 * the command line the file is not read at all (a broken file must not
 * hide the help).
 */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <getopt.h>
#include <stdint.h>

#include "config.h"

enum { HS_OPT_CONFIG = 0x1000, HS_OPT_FIRST_PRIVATE = 0x1100 };

#define HS_CLI_SHORTOPTS "a:t:X:vqhV"
#define HS_CLI_LONGOPTS                                          \
	{ "addr", required_argument, NULL, 'a' },                \
	{ "timeout", required_argument, NULL, 't' },             \
	{ "config", required_argument, NULL, HS_OPT_CONFIG },    \
	{ "verbose", no_argument, NULL, 'v' },                   \
	{ "quiet", no_argument, NULL, 'q' },                     \
	{ "help", no_argument, NULL, 'h' },                      \
	{ "version", no_argument, NULL, 'V' }

struct hs_cli {
	const char *prog;      /* basename of argv[0]; borrowed */
	const char *usage;     /* one-paragraph usage; static text */
	const char *help;      /* full --help text; static text */
	const char *addr;      /* -a or HS_ADDR or NULL; borrowed from argv/env */
	const char *config_path; /* --config or HS_CONFIG or NULL */
	uint64_t timeout_ms;   /* -t or HS_TIMEOUT, default 5000 */
	int verbosity;         /* +1 per -v, -1 per -q */
	struct hs_config config; /* owned; filled by hs_cli_finish() */
	const char *overrides[64]; /* -X values, borrowed from argv */
	int noverrides;
	int config_loaded;     /* by hs_cli_config_args: not again in finish */
	int config_common_only; /* set before hs_cli_config_args: only the
				 * common options (addr, timeout) are settings */
	char **argv;           /* owned: hs_cli_config_args' argv, NULL-ended */
	char **injected;       /* owned strings: the "--option=value" it added */
	int ninjected;
};

/* An option whose default comes from an environment variable: a setting
 * for it in the configuration file is used only when env is unset. */
struct hs_cli_env {
	const char *option; /* long option name */
	const char *env;
};

/* Start: name the program, set up logging at default level def, read the
 * HS_* environment defaults.  usage and help are borrowed for good. */
void hs_cli_init(struct hs_cli *c, const char *argv0, int def_level,
		 const char *usage, const char *help);

/* Handle one common option from getopt_long.  Returns -1 if opt is not a
 * common option, 0 if handled and the program goes on, or an exit status
 * (0 after --help/--version, 64 on a bad value, with the message printed)
 * in *status when the program must stop: then the return value is 1. */
int hs_cli_option(struct hs_cli *c, int opt, const char *arg, int *status);

/* Before option parsing (see CONFIGURATION): find --config and -X in
 * *argvp, load the configuration file (--config, else HS_CONFIG, else the
 * default path, which may be missing) and the -X overrides, and replace
 * *argcp and *argvp by argv[0], "--option=value" for every option of longopts
 * that the command line does not give and whose environment variable (the
 * common HS_ADDR and HS_TIMEOUT, and envs: NULL or ended by a NULL
 * option) is unset but that the configuration sets, then the original
 * arguments.  groups (NULL, or NULL-ended): strings of long option names
 * separated by spaces that the program refuses together, "#N" standing for
 * N or more operands ("last #2": -n and a RANGE); a setting is left out
 * when another member of one of its groups is on the command line.
 * shortopts is the program's whole getopt string (to tell a short option's
 * argument from the next flag).  The new array belongs to
 * c (hs_cli_free); its strings are argv's or c's.  Returns 0, or an exit
 * status after printing why: 78 for an unreadable file, a syntax error or
 * an unknown "<prog>.<x>" key, 64 for a bad -X. */
int hs_cli_config_args(struct hs_cli *c, const char *shortopts, const struct option *longopts,
		       const struct hs_cli_env *envs, const char *const *groups, int *argcp,
		       char ***argvp);

/* After option parsing: apply -v/-q, load the config file and -X overrides
 * (unless hs_cli_config_args did).  Returns 0 or an exit status (78 bad
 * config, 64 bad -X) after printing why. */
int hs_cli_finish(struct hs_cli *c);

/* Print "prog: message" and the short usage to stderr (and, when settings
 * came from the configuration file, which flags they became); returns 64
 * (EX_USAGE). */
int hs_cli_usage_error(struct hs_cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "prog: message" to stderr (no log prefix: this is for users of
 * clients).  Returns status, so callers can `return hs_cli_fail(...)`. */
int hs_cli_fail(struct hs_cli *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse a record count given to flag (e.g. "-c"): a decimal u64.  Returns 0
 * with *out set, or prints a usage error and returns 64. */
int hs_cli_count(struct hs_cli *c, const char *flag, const char *arg, uint64_t *out);

/* Parse the value of --durability (hs_durability_parse).  Returns 0 with
 * *out set, or prints a usage error and returns 64. */
int hs_cli_durability(struct hs_cli *c, const char *arg, uint8_t *out);

/* The rule of hs_stream_name_valid(), as users are told it. */
#define HS_NAME_RULE "1-255 of A-Z a-z 0-9 . _ -, not starting with '_'"

/* Check a stream or subscription name (hs_stream_name_valid).  Returns 0
 * if name[0..len) is valid, else prints the usage error "<where>invalid
 * <what> name 'NAME' (HS_NAME_RULE)" and returns 64.  what: "stream" or
 * "subscription"; where: a prefix such as "names.txt:3: ", or "". */
int hs_cli_check_name(struct hs_cli *c, const char *where, const char *what, const char *name,
		      size_t len);

void hs_cli_free(struct hs_cli *c);

#endif

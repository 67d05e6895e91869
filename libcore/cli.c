/* cli.c - see cli.h. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "err.h"
#include "log.h"
#include "parse.h"
#include "proto_client.h"

void hs_cli_init(struct hs_cli *c, const char *argv0, int def_level,
		 const char *usage, const char *help)
{
	const char *env;

	memset(c, 0, sizeof(*c));
	hs_log_init(argv0, def_level);
	c->prog = hs_log_prog();
	c->usage = usage;
	c->help = help;
	c->timeout_ms = 5000;
	env = getenv("HS_ADDR");
	if (env && *env)
		c->addr = env;
	env = getenv("HS_CONFIG");
	if (env && *env)
		c->config_path = env;
	env = getenv("HS_TIMEOUT");
	if (env && *env && hs_parse_duration_ms(env, &c->timeout_ms) < 0)
		hs_warn("ignoring HS_TIMEOUT='%s' (use e.g. 250ms, 5s, 2m)", env);
}

int hs_cli_option(struct hs_cli *c, int opt, const char *arg, int *status)
{
	switch (opt) {
	case 'a':
		c->addr = arg;
		return 0;
	case 't':
		if (hs_parse_duration_ms(arg, &c->timeout_ms) < 0 || !c->timeout_ms) {
			*status = hs_cli_usage_error(
				c, "invalid timeout '%s' (use e.g. 250ms, 5s, 2m)", arg);
			return 1;
		}
		return 0;
	case HS_OPT_CONFIG:
		c->config_path = arg;
		return 0;
	case 'X':
		if (c->config_loaded)
			return 0; /* taken by hs_cli_config_args already */
		if ((size_t)c->noverrides >= sizeof(c->overrides) / sizeof(c->overrides[0])) {
			*status = hs_cli_usage_error(c, "too many -X options");
			return 1;
		}
		c->overrides[c->noverrides++] = arg;
		return 0;
	case 'v':
		c->verbosity++;
		return 0;
	case 'q':
		c->verbosity--;
		return 0;
	case 'h':
		fputs(c->help, stdout);
		*status = fflush(stdout) ? EX_IOERR : 0;
		return 1;
	case 'V':
		printf("%s %s\n", c->prog, HS_VERSION);
		*status = fflush(stdout) ? EX_IOERR : 0;
		return 1;
	case '?':
	case ':':
		/* getopt_long has printed what was wrong. */
		fputs(c->usage, stderr);
		*status = EX_USAGE;
		return 1;
	default:
		return -1;
	}
}

/* Load the configuration file (c->config_path, else the default one) and
 * the -X overrides into c->config. */
static int config_load(struct hs_cli *c)
{
	char def[4096];
	const char *path = c->config_path;
	int r;

	if (!path)
		path = hs_config_default_path(def, sizeof(def));
	if (path) {
		r = hs_config_load(&c->config, path, c->config_path != NULL);
		if (r < 0) {
			if (r == -HS_ENOENT)
				return hs_cli_fail(c, EX_CONFIG, "cannot open config file '%s'",
						   path);
			return EX_CONFIG; /* hs_config_load logged FILE:LINE */
		}
	}
	for (int i = 0; i < c->noverrides; i++)
		if (hs_config_set(&c->config, c->overrides[i]) < 0)
			return hs_cli_usage_error(c, "invalid -X '%s' (use KEY=VALUE)",
						  c->overrides[i]);
	return 0;
}

int hs_cli_finish(struct hs_cli *c)
{
	hs_log_adjust(c->verbosity);
	return c->config_loaded ? 0 : config_load(c);
}

/* ---- settings as flags (cli.h "CONFIGURATION") ---------------------------- */

static int common_setting(const char *name)
{
	return !strcmp(name, "addr") || !strcmp(name, "timeout");
}

/* Options of c's program that are no setting: the file's own, the ones
 * that do not configure (help, version) and one process's own files. */
static int not_setting(const struct hs_cli *c, const char *name)
{
	return !strcmp(name, "config") || !strcmp(name, "help") || !strcmp(name, "version") ||
	       !strcmp(name, "pidfile") || !strcmp(name, "ready-file") ||
	       (c->config_common_only && !common_setting(name));
}

/* The long option named by name[0..n) (exact, else a unique prefix, as
 * getopt_long matches), or -1. */
static int long_index(const struct option *lo, const char *name, size_t n)
{
	int hit = -1;

	for (int i = 0; lo[i].name; i++) {
		if (strncmp(lo[i].name, name, n))
			continue;
		if (strlen(lo[i].name) == n)
			return i;
		hit = hit < 0 ? i : -2; /* two prefixes: ambiguous */
	}
	return hit < 0 ? -1 : hit;
}

/* What the command line holds, as far as settings are concerned. */
struct scan {
	char *given;   /* per long option: on the command line */
	int nops;      /* operands */
	int help;      /* --help or --version: the file is not read */
};

/* Walk argv as getopt_long will (GNU permutation: operands are skipped,
 * "--" ends the options; POSIXLY_CORRECT or a leading '+': the first
 * operand does) and mark in sc->given every long option the command line
 * sets, a short one marking the long options of the same value; count the
 * operands; note --config, -X, --help and --version on the way. */
static int scan_args(struct hs_cli *c, const char *shortopts, const struct option *lo,
		     int argc, char **argv, struct scan *sc)
{
	int posix = shortopts[0] == '+' || getenv("POSIXLY_CORRECT");
	char *given = sc->given;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			sc->nops += argc - i - 1;
			break;
		}
		if (a[0] != '-' || !a[1]) {
			if (posix) {
				sc->nops += argc - i;
				break;
			}
			sc->nops++;
			continue;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			int k = long_index(lo, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
			const char *val = eq ? eq + 1 : NULL;

			if (k < 0)
				continue;
			given[k] = 1;
			sc->help |= lo[k].val == 'h' || lo[k].val == 'V';
			if (lo[k].has_arg == required_argument && !val && i + 1 < argc)
				val = argv[++i];
			if (lo[k].val == HS_OPT_CONFIG && val)
				c->config_path = val;
			continue;
		}
		for (const char *p = a + 1; *p; p++) {
			const char *s = strchr(shortopts, *p);
			const char *val = NULL;

			if (!s || *p == ':' || *p == '+')
				break;
			sc->help |= *p == 'h' || *p == 'V';
			for (int k = 0; lo[k].name; k++)
				if (lo[k].val == *p)
					given[k] = 1;
			if (s[1] != ':')
				continue;
			val = p[1] ? p + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (*p == 'X' && val) {
				int status;

				if (hs_cli_option(c, 'X', val, &status))
					return status;
			}
			break;
		}
	}
	return 0;
}

/* Another member of one of option k's groups (cli.h) is on the command
 * line. */
static int group_given(const struct option *lo, int k, const char *const *groups,
		       const struct scan *sc)
{
	size_t n = strlen(lo[k].name);

	for (; groups && *groups; groups++) {
		const char *g = *groups, *t;
		int mine = 0, other = 0;

		for (t = g; *t; t += strcspn(t, " "), t += *t == ' ') {
			size_t tn = strcspn(t, " ");
			int j;

			if (tn == n && !strncmp(t, lo[k].name, n)) {
				mine = 1;
			} else if (*t == '#') {
				other |= sc->nops >= atoi(t + 1);
			} else {
				for (j = 0; lo[j].name; j++)
					if (strlen(lo[j].name) == tn && !strncmp(lo[j].name, t, tn))
						other |= sc->given[j];
			}
		}
		if (mine && other)
			return 1;
	}
	return 0;
}

/* The environment sets option name (so the configuration must not); an
 * HS_TIMEOUT that does not parse was ignored (hs_cli_init): not set. */
static int env_sets(const char *name, const struct hs_cli_env *envs)
{
	static const struct hs_cli_env common[] = {
		{ "addr", "HS_ADDR" }, { "timeout", "HS_TIMEOUT" }, { NULL, NULL }
	};

	for (int pass = 0; pass < 2; pass++) {
		const struct hs_cli_env *e = pass ? envs : common;

		for (; e && e->option; e++) {
			const char *v;

			if (strcmp(e->option, name))
				continue;
			v = getenv(e->env);
			if (v && *v) {
				uint64_t ms;

				if (!strcmp(e->env, "HS_TIMEOUT") && hs_parse_duration_ms(v, &ms) < 0)
					continue;
				return 1;
			}
		}
	}
	return 0;
}

/* Add "--name=value" (or "--name") to c->injected. */
static void inject(struct hs_cli *c, const char *name, const char *value)
{
	size_t n = strlen(name) + (value ? strlen(value) + 1 : 0) + 3;
	char *s = hs_xmalloc(n);

	snprintf(s, n, value ? "--%s=%s" : "--%s", name, value ? value : "");
	c->injected = hs_xrealloc(c->injected, (size_t)(c->ninjected + 1) * sizeof(char *));
	c->injected[c->ninjected++] = s;
}

int hs_cli_config_args(struct hs_cli *c, const char *shortopts, const struct option *lo,
		       const struct hs_cli_env *envs, const char *const *groups, int *argcp,
		       char ***argvp)
{
	size_t plen = strlen(c->prog), nlo = 0;
	struct scan sc = { 0 };
	char key[256];
	int r, argc = *argcp;

	while (lo[nlo].name)
		nlo++;
	sc.given = hs_xcalloc(nlo + 1, 1);
	r = scan_args(c, shortopts, lo, argc, *argvp, &sc);
	if (r)
		goto out;
	c->config_loaded = 1;
	if (sc.help)
		goto out; /* --help/--version: not even a broken file stops them */
	r = config_load(c);
	if (r)
		goto out;
	/* "<prog>.<x>" must name a setting of ours. */
	for (size_t i = 0; i < c->config.n; i++) {
		const struct hs_config_kv *kv = &c->config.kv[i];
		const char *x = kv->key + plen + 1;
		int k;

		if (strncmp(kv->key, c->prog, plen) || kv->key[plen] != '.')
			continue;
		k = long_index(lo, x, strlen(x));
		if (k >= 0 && !strcmp(lo[k].name, x) && not_setting(c, x) &&
		    !c->config_common_only) {
			r = hs_cli_fail(c, EX_CONFIG,
					"%s: '%s' cannot be set in the configuration (--%s "
					"only on the command line)",
					kv->origin, kv->key, x);
			goto out;
		}
		if (k < 0 || strcmp(lo[k].name, x) || not_setting(c, x)) {
			if (c->config_common_only)
				r = hs_cli_fail(c, EX_CONFIG,
						"%s: unknown setting '%s' (%s takes only addr and "
						"timeout from the configuration)",
						kv->origin, kv->key, c->prog);
			else
				r = hs_cli_fail(c, EX_CONFIG,
						"%s: unknown setting '%s' (%s has no --%s)",
						kv->origin, kv->key, c->prog, x);
			goto out;
		}
	}
	for (size_t k = 0; k < nlo; k++) {
		const char *v;
		int on;

		if (sc.given[k] || not_setting(c, lo[k].name) || env_sets(lo[k].name, envs) ||
		    group_given(lo, (int)k, groups, &sc))
			continue;
		snprintf(key, sizeof(key), "%s.%s", c->prog, lo[k].name);
		if (!hs_config_get(&c->config, key) && common_setting(lo[k].name))
			snprintf(key, sizeof(key), "%s", lo[k].name);
		v = hs_config_get(&c->config, key);
		if (!v)
			continue;
		if (lo[k].has_arg != no_argument) {
			inject(c, lo[k].name, v);
			continue;
		}
		if (hs_config_get_bool(&c->config, key, 0, &on) < 0) {
			r = EX_CONFIG; /* logged, naming the key and its origin */
			goto out;
		}
		if (on)
			inject(c, lo[k].name, NULL);
	}
	if (c->ninjected) {
		c->argv = hs_xmalloc((size_t)(argc + c->ninjected + 1) * sizeof(char *));
		c->argv[0] = (*argvp)[0];
		memcpy(c->argv + 1, c->injected, (size_t)c->ninjected * sizeof(char *));
		memcpy(c->argv + 1 + c->ninjected, *argvp + 1, (size_t)argc * sizeof(char *));
		*argcp = argc + c->ninjected;
		*argvp = c->argv;
	}
out:
	free(sc.given);
	return r;
}

static void vmsg(struct hs_cli *c, const char *fmt, va_list ap)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s: ", c->prog);

	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	strcat(line, "\n");
	fputs(line, stderr);
}

int hs_cli_usage_error(struct hs_cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
	va_end(ap);
	if (c->ninjected) {
		fprintf(stderr, "%s: (from the configuration:", c->prog);
		for (int i = 0; i < c->ninjected; i++)
			fprintf(stderr, " %s", c->injected[i]);
		fputs(")\n", stderr);
	}
	fputs(c->usage, stderr);
	return EX_USAGE;
}

int hs_cli_fail(struct hs_cli *c, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
	va_end(ap);
	return status;
}

int hs_cli_count(struct hs_cli *c, const char *flag, const char *arg, uint64_t *out)
{
	if (hs_parse_u64(arg, out) < 0)
		return hs_cli_usage_error(c, "invalid %s '%s' (use a number of records)", flag,
					  arg);
	return 0;
}

int hs_cli_durability(struct hs_cli *c, const char *arg, uint8_t *out)
{
	int d = hs_durability_parse(arg);

	if (d < 0)
		return hs_cli_usage_error(c, "invalid --durability '%s' (use sync, async or memory)",
					  arg);
	*out = (uint8_t)d;
	return 0;
}

int hs_cli_check_name(struct hs_cli *c, const char *where, const char *what, const char *name,
		      size_t len)
{
	if (hs_stream_name_valid(name, len))
		return 0;
	return hs_cli_usage_error(c, "%sinvalid %s name '%.*s' (" HS_NAME_RULE ")", where, what,
				  (int)(len > 300 ? 300 : len), name);
}

void hs_cli_free(struct hs_cli *c)
{
	for (int i = 0; i < c->ninjected; i++)
		free(c->injected[i]);
	free(c->injected);
	free(c->argv);
	c->injected = NULL;
	c->argv = NULL;
	c->ninjected = 0;
	hs_config_free(&c->config);
}

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

int hs_cli_finish(struct hs_cli *c)
{
	char def[4096];
	const char *path = c->config_path;
	int r;

	hs_log_adjust(c->verbosity);
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
	hs_config_free(&c->config);
}

/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "hs";
static int level = HS_LOG_WARN;
static const char *names[] = { "error", "warning", "info", "debug" };

void hs_log_init(const char *p, enum hs_log_level def)
{
	const char *env = getenv("HS_LOG");
	const char *slash = p ? strrchr(p, '/') : NULL;

	prog = slash ? slash + 1 : (p ? p : "hs");
	level = def;
	if (!env || !*env)
		return;
	for (int i = 0; i <= HS_LOG_DEBUG; i++)
		if (!strcmp(env, names[i]) || (env[0] == '0' + i && !env[1])) {
			level = i;
			return;
		}
	if (!strcmp(env, "warn")) {
		level = HS_LOG_WARN;
		return;
	}
	hs_warn("ignoring HS_LOG='%s' (use error, warn, info or debug)", env);
}

void hs_log_adjust(int delta)
{
	level += delta;
	if (level < HS_LOG_ERROR)
		level = HS_LOG_ERROR;
	if (level > HS_LOG_DEBUG)
		level = HS_LOG_DEBUG;
}

enum hs_log_level hs_log_level(void)
{
	return level;
}

const char *hs_log_prog(void)
{
	return prog;
}

void hs_log(enum hs_log_level lvl, const char *fmt, ...)
{
	char line[HS_LOG_LINE_MAX];
	int saved = errno;
	int n, m;
	va_list ap;

	if ((int)lvl > level)
		return;
	n = snprintf(line, sizeof(line), "%s[%ld]: %s: ", prog, (long)getpid(),
		     names[lvl]);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		n = 0;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
	errno = saved;
}

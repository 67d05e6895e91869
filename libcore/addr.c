/*
 * addr.c - default serve address and data directory, address lists.
 *
 * Everything here runs once per process start, so it favours plain code
 * over speed: a stat or two, snprintf, small allocations.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "err.h"

#define SOCK_NAME "/hs/serve.sock"

/* 1 if path is an absolute directory owned by us. */
static int own_dir(const char *path)
{
	struct stat st;

	return path[0] == '/' && !stat(path, &st) && S_ISDIR(st.st_mode) &&
	       st.st_uid == getuid();
}

const char *hs_addr_default(char *buf, size_t n)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	int len;

	/* The unix: prefix is not part of sun_path, the rest must fit. */
	if (x && *x && own_dir(x) && strlen(x) + strlen(SOCK_NAME) <= HS_SUN_PATH_MAX) {
		len = snprintf(buf, n, "unix:%s" SOCK_NAME, x);
		return len >= 0 && (size_t)len < n ? buf : NULL;
	}
	len = snprintf(buf, n, "unix:/tmp/hs-%u/serve.sock", (unsigned)getuid());
	return len >= 0 && (size_t)len < n ? buf : NULL;
}

const char *hs_addr_data_default(char *buf, size_t n)
{
	const char *x = getenv("XDG_DATA_HOME"), *home;
	struct passwd *pw;
	int len;

	if (x && x[0] == '/') {
		len = snprintf(buf, n, "%s/hs", x);
	} else {
		home = getenv("HOME");
		if (!home || home[0] != '/') {
			pw = getpwuid(getuid());
			home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
		}
		if (!home)
			return NULL;
		len = snprintf(buf, n, "%s/.local/share/hs", home);
	}
	return len >= 0 && (size_t)len < n ? buf : NULL;
}

/* The directory part of a unix address into dir; 0, 1 if addr is not a
 * unix address, or -HS_EUSAGE. */
static int sock_dir(const char *addr, char *dir, size_t n)
{
	const char *p, *slash;

	if (strncmp(addr, "unix:", 5))
		return 1;
	p = addr + 5;
	slash = strrchr(p, '/');
	if (!slash || (size_t)(slash - p) >= n)
		return -HS_EUSAGE;
	if (slash == p) {
		/* A socket directly in "/": nothing of ours to check there. */
		snprintf(dir, n, "/");
		return 0;
	}
	memcpy(dir, p, (size_t)(slash - p));
	dir[slash - p] = 0;
	return 0;
}

static int dir_ok(const char *dir)
{
	struct stat st;

	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != getuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return -HS_EPERM;
	return 0;
}

int hs_addr_dir_check(const char *addr)
{
	char dir[HS_ADDR_MAX_LEN];
	int rc = sock_dir(addr, dir, sizeof(dir));

	if (rc)
		return rc > 0 ? 0 : rc;
	return dir_ok(dir);
}

int hs_addr_dir_make(const char *addr)
{
	char dir[HS_ADDR_MAX_LEN];
	int rc = sock_dir(addr, dir, sizeof(dir));

	if (rc)
		return rc > 0 ? 0 : rc;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return dir_ok(dir);
}

/* Syntax check of one address (see net.h). */
static int addr_valid(const char *a)
{
	const char *colon, *host_end;
	unsigned long port;
	char *end;

	if (!strncmp(a, "unix:", 5))
		return a[5] != 0 && strlen(a + 5) <= HS_SUN_PATH_MAX;
	if (a[0] == '[') {
		host_end = strchr(a, ']');
		if (!host_end || host_end == a + 1 || host_end[1] != ':')
			return 0;
		colon = host_end + 1;
	} else {
		colon = strrchr(a, ':');
		if (!colon || colon == a || memchr(a, ':', (size_t)(colon - a)))
			return 0;
	}
	if (!isdigit((unsigned char)colon[1]))
		return 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	return !*end && !errno && port <= 65535;
}

void hs_addr_list_free(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

int hs_addr_list_parse(const char *s, char ***out)
{
	char **list;
	size_t cap = 1, n = 0;
	const char *p, *e, *comma;

	for (p = s; *p; p++)
		cap += *p == ',';
	list = hs_xcalloc(cap + 1, sizeof(*list));
	for (p = s;; p = comma + 1) {
		comma = strchr(p, ',');
		e = comma ? comma : p + strlen(p);
		while (p < e && isspace((unsigned char)*p))
			p++;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		if (e == p)
			goto out_bad;
		list[n] = hs_xmalloc((size_t)(e - p) + 1);
		memcpy(list[n], p, (size_t)(e - p));
		list[n][e - p] = 0;
		if (!addr_valid(list[n++]))
			goto out_bad;
		if (!comma)
			break;
	}
	*out = list;
	return (int)n;

out_bad:
	hs_addr_list_free(list);
	return -HS_EUSAGE;
}

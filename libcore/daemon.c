/* daemon.c - see daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync the directory holding path, so the rename itself is durable. */
static void sync_dir(const char *path)
{
	char *copy = hs_xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

int hs_daemon_ready_file(const char *path, const char *text)
{
	struct hs_buf tmp = HS_BUF_INIT, body = HS_BUF_INIT;
	int fd, r;

	hs_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	hs_buf_printf(&body, "%s\n", text);
	fd = open((char *)tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out_free;
	}
	r = write_all(fd, (char *)body.data, body.len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename((char *)tmp.data, path) < 0)
		r = -errno;
	if (r)
		unlink((char *)tmp.data);
	else
		sync_dir(path);
out_free:
	hs_buf_free(&tmp);
	hs_buf_free(&body);
	return r;
}

int hs_daemon_pidfile(const char *path)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	return hs_daemon_ready_file(path, pid);
}

int hs_daemon_pidfile_remove(const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int mkdir_one(const char *dir, mode_t mode)
{
	struct stat st;

	if (mkdir(dir, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (errno == EEXIST)
		errno = ENOTDIR;
	hs_error("cannot create directory '%s': %s", dir, strerror(errno));
	return -HS_ECREATE;
}

int hs_daemon_mkdirs(const char *dir, mode_t mode)
{
	char *p = hs_xstrdup(dir), *s;
	int r = 0;

	/* Each prefix ending before a '/' (skipping the root), then the whole. */
	for (s = p + 1; *s && !r; s++) {
		if (*s != '/' || s[-1] == '/')
			continue;
		*s = 0;
		r = mkdir_one(p, mode);
		*s = '/';
	}
	if (!r && *p)
		r = mkdir_one(p, mode);
	free(p);
	return r;
}

/*
 * daemon.h - the small pieces of the daemon contract (DESIGN.md §2):
 * ready files, pid files and data directories.
 *
 * Files are written atomically - a temporary file in the same directory,
 * fsync, rename over the target - so a test waiting for a ready file never
 * sees it half written.
 */
#ifndef HS_DAEMON_H
#define HS_DAEMON_H

#include <sys/types.h>

/* Write text (borrowed, NUL-terminated) plus "\n" to path atomically, mode
 * 0644.  Returns 0 or -errno (the temporary file is removed on failure). */
int hs_daemon_ready_file(const char *path, const char *text);

/* Write our pid and "\n" to path atomically.  0 or -errno. */
int hs_daemon_pidfile(const char *path);

/* Remove the pid file at path, on clean exit.  0, or -errno (a missing file
 * is not an error). */
int hs_daemon_pidfile_remove(const char *path);

/* mkdir -p dir with mode for the directories it creates.  0, or -HS_ECREATE
 * after logging which directory failed and why. */
int hs_daemon_mkdirs(const char *dir, mode_t mode);

#endif

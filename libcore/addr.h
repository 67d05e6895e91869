/*
 * addr.h - default addresses: where hs-serve listens and keeps its data
 * when started with no arguments, and where every client looks for it with
 * no flags (CLI.md).
 *
 * Serve socket, in this order:
 *   unix:$XDG_RUNTIME_DIR/hs/serve.sock  if XDG_RUNTIME_DIR is set to an
 *       absolute path that is a directory owned by the calling user, and
 *       the socket path fits sun_path (< 108 bytes);
 *   unix:/tmp/hs-$UID/serve.sock          otherwise.
 * Two users never collide (the uid is in the path, and XDG_RUNTIME_DIR is
 * per user).  hs-serve creates the socket's directory with mode 0700
 * (hs_addr_dir_make()).  /tmp is shared, so another user could create
 * /tmp/hs-$UID first and plant a socket there to receive our records:
 * a client therefore refuses a socket whose directory is not owned by
 * itself or is writable by group or others (hs_addr_dir_check(), -HS_EPERM,
 * exit 77), and the server refuses to listen in such a directory.
 *
 * HS_ADDR and -a are handled by the CLI layer (cli.h); these functions are
 * what applies when neither is given.
 */
#ifndef HS_ADDR_H
#define HS_ADDR_H

#include <stddef.h>

/* Longest sun_path content (sun_path is 108 bytes, NUL included). */
#define HS_SUN_PATH_MAX 107

/*
 * Write the default serve address ("unix:/...") to buf[0..n), NUL-terminated.
 * Returns buf, or NULL if n is too small (HS_ADDR_MAX_LEN is enough).
 * Reads XDG_RUNTIME_DIR and stats it; creates nothing.
 */
#define HS_ADDR_MAX_LEN 128
const char *hs_addr_default(char *buf, size_t n);

/*
 * Write the default data directory ${XDG_DATA_HOME:-$HOME/.local/share}/hs
 * to buf (a relative XDG_DATA_HOME is ignored, as the XDG spec says; HOME
 * unset falls back to the password database).  Returns buf, or NULL if n is
 * too small or no home directory is known.  Creates nothing.
 */
const char *hs_addr_data_default(char *buf, size_t n);

/*
 * Check the directory holding the unix socket of addr ("unix:/dir/sock";
 * other addresses pass): it must be owned by the calling user and not
 * writable by group or others.  Returns 0, -HS_EPERM (wrong owner or mode),
 * or -errno from stat (-ENOENT when the server never created it).
 */
int hs_addr_dir_check(const char *addr);

/*
 * Server side: create the directory of addr's unix socket with mode 0700
 * if it does not exist (the parent must exist: $XDG_RUNTIME_DIR or /tmp),
 * then hs_addr_dir_check() it.  Returns 0, -HS_EPERM, or -errno.
 */
int hs_addr_dir_make(const char *addr);

/*
 * Split a comma-separated address list ("-a A,B"): elements are trimmed of
 * blanks and must be "unix:/path" (path < 108 bytes) or "HOST:PORT" /
 * "[V6]:PORT" with a decimal port 0..65535.  On success *out is a
 * NULL-terminated array of copies (owned by the caller, free it with
 * hs_addr_list_free()) and the count (>= 1) is returned.  Returns
 * -HS_EUSAGE for an empty list, an empty element or a malformed address
 * (*out untouched).
 */
int hs_addr_list_parse(const char *s, char ***out);
void hs_addr_list_free(char **list);

#endif

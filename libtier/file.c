/*
 * file.c - the file:///DIR backend: each object is the regular file DIR/<key>;
 * '/' in a key makes subdirectories.
 *
 * Atomic put: the bytes go to a temp file ".tmp.<pid>.<rand>.<name>" in the
 * object's own directory (so the rename never crosses a file system), which
 * is fsynced, then renamed over the key (or, with HS_TIER_EXCL, hard-linked
 * to it, which fails if the key exists, and the temp unlinked); finally the
 * directory is fsynced so the new name survives a crash.  New directories
 * are fsynced into their parents as they are created.  A crash mid-put
 * leaves only a temp file: its name starts with '.', which no key may, so
 * list, get and head never see it.  delete unlinks and fsyncs the directory;
 * emptied directories are left in place, since removing them would race
 * with a concurrent put creating a file in them.
 *
 * Every path is resolved relative to a descriptor of DIR (openat family), so
 * a key can never escape it: keys are checked (no "..", no leading '/') by
 * the wrappers in backend.c before they reach this file.
 */
#include "backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "err.h"

struct ftier {
	struct hs_tier t; /* first: the vtable wrappers cast */
	char *root;       /* owned: the directory, for messages */
	int rootfd;
};

struct fput {
	struct hs_tier_put p; /* first */
	int fd;               /* the temp file */
	int dirfd;            /* its directory */
	char *tmp;            /* owned: temp name within dirfd */
	char *name;           /* owned: final name within dirfd */
	char *key;            /* owned: for messages */
	unsigned flags;
	int failed;           /* a write failed: put_end must not publish */
};

static const struct hs_tier_ops file_ops;

/* Map an errno from a file operation to the backend error codes. */
static int map_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return -HS_ENOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return -HS_EPERM;
	case ENOSPC:
	case EDQUOT:
		return -HS_ENOSPC;
	case EEXIST:
		return -HS_EEXIST;
	default:
		return -HS_EIO;
	}
}

static int fail(struct ftier *f, const char *op, const char *key, int e)
{
	return hs_tier_seterr(&f->t, map_errno(e), "%s '%s' in %s: %s", op, key,
			      f->root, strerror(e));
}

/* Open the directory holding key (creating it and its parents with mkdir -p
 * when create is set); *base points into key at the last component.
 * Returns a directory fd or a negative errno. */
static int open_parent(struct ftier *f, const char *key, int create,
		       const char **base)
{
	const char *slash = strrchr(key, '/');
	char path[HS_TIER_KEY_MAX + 1];
	int dfd, pfd, e;
	char *p;

	*base = slash ? slash + 1 : key;
	if (!slash) {
		dfd = openat(f->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return dfd < 0 ? -errno : dfd;
	}
	memcpy(path, key, slash - key);
	path[slash - key] = '\0';
	dfd = openat(f->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0 || errno != ENOENT || !create)
		return dfd < 0 ? -errno : dfd;
	/* mkdir -p, fsyncing each parent that gained an entry. */
	for (p = path;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdirat(f->rootfd, path, 0777) == 0) {
			char *ps = strrchr(path, '/');

			if (ps)
				*ps = '\0';
			pfd = openat(f->rootfd, ps ? path : ".",
				     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (ps)
				*ps = '/';
			if (pfd < 0 || fsync(pfd) < 0) {
				e = errno;
				if (pfd >= 0)
					close(pfd);
				return -e;
			}
			close(pfd);
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = c;
		if (!c)
			break;
	}
	dfd = openat(f->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dfd < 0 ? -errno : dfd;
}

static void fput_free(struct fput *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->tmp)
		unlinkat(p->dirfd, p->tmp, 0);
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p->tmp);
	free(p->name);
	free(p->key);
	free(p);
}

static int file_put_begin(struct hs_tier *t, const char *key, unsigned flags,
			  struct hs_tier_put **out)
{
	struct ftier *f = (struct ftier *)t;
	struct fput *p = hs_xcalloc(1, sizeof(*p));
	const char *base;
	char tmp[HS_TIER_KEY_MAX + 64];
	int e;

	p->p.t = t;
	p->fd = -1;
	p->flags = flags;
	p->key = hs_xstrdup(key);
	p->dirfd = open_parent(f, key, 1, &base);
	if (p->dirfd < 0) {
		e = -p->dirfd;
		goto out_fail;
	}
	p->name = hs_xstrdup(base);
	snprintf(tmp, sizeof(tmp), ".tmp.%ld.%08x.%s", (long)getpid(),
		 randombytes_random(), base);
	p->fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		       0644);
	if (p->fd < 0) {
		e = errno;
		goto out_fail;
	}
	p->tmp = hs_xstrdup(tmp);
	*out = &p->p;
	return 0;
out_fail:
	fput_free(p);
	return fail(f, "put", key, e);
}

static int file_put_write(struct hs_tier_put *hp, const void *data, size_t len)
{
	struct fput *p = (struct fput *)hp;
	struct ftier *f = (struct ftier *)hp->t;
	const char *c = data;
	ssize_t n;

	while (len) {
		n = write(p->fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			p->failed = 1;
			return fail(f, "put", p->key, errno);
		}
		c += n;
		len -= n;
	}
	return 0;
}

static int file_put_end(struct hs_tier_put *hp)
{
	struct fput *p = (struct fput *)hp;
	struct ftier *f = (struct ftier *)hp->t;
	const char *op = "put";
	int e = 0, err = 0;

	if (p->failed) {
		err = hs_tier_seterr(hp->t, -HS_EIO,
				     "put '%s' in %s: an earlier write failed",
				     p->key, f->root);
		goto out;
	}
	if (fsync(p->fd) < 0 || close(p->fd) < 0) {
		e = errno;
		p->fd = -1;
		goto out;
	}
	p->fd = -1;
	if (p->flags & HS_TIER_EXCL) {
		if (linkat(p->dirfd, p->tmp, p->dirfd, p->name, 0) < 0) {
			e = errno;
			goto out;
		}
	} else {
		if (renameat(p->dirfd, p->tmp, p->dirfd, p->name) < 0) {
			e = errno;
			goto out;
		}
		free(p->tmp);
		p->tmp = NULL;
	}
	if (p->tmp) {
		unlinkat(p->dirfd, p->tmp, 0);
		free(p->tmp);
		p->tmp = NULL;
	}
	op = "put (fsync of the directory)";
	if (fsync(p->dirfd) < 0)
		e = errno;
out:
	if (e)
		err = fail(f, op, p->key, e);
	fput_free(p);
	return err;
}

static void file_put_abort(struct hs_tier_put *hp)
{
	fput_free((struct fput *)hp);
}

static int file_get(struct hs_tier *t, const char *key, uint64_t off,
		    uint64_t len, struct hs_buf *out)
{
	struct ftier *f = (struct ftier *)t;
	struct stat st;
	uint64_t size;
	ssize_t n;
	int fd, e;

	fd = openat(f->rootfd, key, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(f, "get", key, errno);
	if (fstat(fd, &st) < 0) {
		e = errno;
		goto out_err;
	}
	if (!S_ISREG(st.st_mode)) {
		e = ENOENT;
		goto out_err;
	}
	size = (uint64_t)st.st_size;
	if (off >= size)
		goto out;
	if (len == 0 || len > size - off)
		len = size - off;
	hs_buf_reserve(out, len);
	while (out->len < len) {
		n = pread(fd, out->data + out->len, len - out->len,
			  (off_t)(off + out->len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			goto out_err;
		}
		if (n == 0)
			break; /* truncated under us: a short read */
		out->len += n;
	}
out:
	close(fd);
	return 0;
out_err:
	close(fd);
	return fail(f, "get", key, e);
}

static int file_head(struct hs_tier *t, const char *key, uint64_t *size)
{
	struct ftier *f = (struct ftier *)t;
	struct stat st;

	if (fstatat(f->rootfd, key, &st, 0) < 0)
		return fail(f, "head", key, errno);
	if (!S_ISREG(st.st_mode))
		return fail(f, "head", key, ENOENT);
	*size = (uint64_t)st.st_size;
	return 0;
}

struct lent {
	char *key;
	uint64_t size;
};

struct lstate {
	struct lent *v;
	size_t n, cap;
	const char *prefix;
	size_t plen;
};

/* Collect the keys under directory dir (relative to the root, "" = root)
 * that start with the prefix.  Entries whose name starts with '.' are temp
 * files or not ours. */
static int walk(struct ftier *f, struct lstate *ls, const char *dir)
{
	struct dirent *de;
	struct stat st;
	char path[HS_TIER_KEY_MAX + 2];
	size_t dlen = strlen(dir);
	DIR *d;
	int fd, err = 0;

	fd = openat(f->rootfd, dlen ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || dlen + 1 + n > HS_TIER_KEY_MAX)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", dir, dlen ? "/" : "",
			 de->d_name);
		/* Prune subtrees that cannot match the prefix. */
		n = strlen(path);
		if (strncmp(path, ls->prefix, n < ls->plen ? n : ls->plen))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* deleted meanwhile */
			err = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			err = walk(f, ls, path);
			if (err < 0)
				break;
		} else if (S_ISREG(st.st_mode) && n >= ls->plen &&
			   hs_tier_key_ok(path)) {
			if (ls->n == ls->cap) {
				ls->cap = ls->cap ? 2 * ls->cap : 64;
				ls->v = hs_xrealloc(ls->v, ls->cap * sizeof(*ls->v));
			}
			ls->v[ls->n].key = hs_xstrdup(path);
			ls->v[ls->n++].size = (uint64_t)st.st_size;
		}
	}
	if (!de && errno && !err)
		err = -errno;
	closedir(d);
	return err;
}

static int lent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lent *)a)->key, ((const struct lent *)b)->key);
}

static int file_list(struct hs_tier *t, const char *prefix, hs_tier_list_cb cb,
		     void *arg)
{
	struct ftier *f = (struct ftier *)t;
	struct lstate ls = { .prefix = prefix, .plen = strlen(prefix) };
	char dir[HS_TIER_KEY_MAX + 1];
	const char *slash = strrchr(prefix, '/');
	int err = 0;
	size_t i;

	/* Start at the deepest directory the prefix names in full. */
	if (ls.plen > HS_TIER_KEY_MAX)
		return 0;
	dir[0] = '\0';
	if (slash) {
		memcpy(dir, prefix, slash - prefix);
		dir[slash - prefix] = '\0';
		if (!hs_tier_key_ok(dir))
			return 0; /* no key can lie under it */
	}
	err = walk(f, &ls, dir);
	if (err < 0)
		err = fail(f, "list", prefix, -err);
	else
		qsort(ls.v, ls.n, sizeof(*ls.v), lent_cmp);
	for (i = 0; i < ls.n; i++) {
		if (!err)
			err = cb(arg, ls.v[i].key, ls.v[i].size);
		free(ls.v[i].key);
	}
	free(ls.v);
	return err;
}

static int file_del(struct hs_tier *t, const char *key)
{
	struct ftier *f = (struct ftier *)t;
	const char *base;
	int dfd, e = 0;

	dfd = open_parent(f, key, 0, &base);
	if (dfd == -ENOENT || dfd == -ENOTDIR)
		return 0;
	if (dfd < 0)
		return fail(f, "delete", key, -dfd);
	if (unlinkat(dfd, base, 0) < 0) {
		if (errno != ENOENT)
			e = errno;
	} else if (fsync(dfd) < 0) {
		e = errno;
	}
	close(dfd);
	return e ? fail(f, "delete", key, e) : 0;
}

static void file_close(struct hs_tier *t)
{
	struct ftier *f = (struct ftier *)t;

	close(f->rootfd);
	free(f->root);
	free(f);
}

static const struct hs_tier_ops file_ops = {
	.name = "file",
	.put_begin = file_put_begin,
	.put_write = file_put_write,
	.put_end = file_put_end,
	.put_abort = file_put_abort,
	.get = file_get,
	.head = file_head,
	.list = file_list,
	.del = file_del,
	.close = file_close,
};

int hs_tier_file_open(const struct hs_tier_url *u, const struct hs_tier_opts *o,
		      struct hs_tier **out)
{
	struct ftier *f;
	int fd;

	*out = NULL;
	if (sodium_init() < 0)
		return hs_tier_open_err(o, -HS_EINTERNAL, "libsodium failed to initialise");
	fd = open(u->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return hs_tier_open_err(o, map_errno(errno),
					"cannot open backend directory '%s': %s",
					u->path, strerror(errno));
	f = hs_xcalloc(1, sizeof(*f));
	f->t.ops = &file_ops;
	f->root = hs_xstrdup(u->path);
	f->rootfd = fd;
	*out = &f->t;
	return 0;
}

/* backend.c - URL parsing, dispatch to the backends, and the checked
 * wrappers around the vtable; see backend.h. */
#include "backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void hs_tier_url_free(struct hs_tier_url *u)
{
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

static char *xstrndup(const char *p, size_t n)
{
	char *s = hs_xmalloc(n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Copy [p, p+n) without trailing slashes (but keep a lone "/"). */
static char *strip_dup(const char *p, size_t n, int keep_root)
{
	while (n > (keep_root ? 1u : 0u) && p[n - 1] == '/')
		n--;
	return xstrndup(p, n);
}

int hs_tier_url_parse(const char *url, struct hs_tier_url *u)
{
	const char *p, *slash, *colon;
	char *end;
	long port;

	memset(u, 0, sizeof(*u));
	if (!strncmp(url, "file://", 7)) {
		p = url + 7;
		if (*p != '/')
			return -HS_EUSAGE; /* file://host/... is not ours */
		u->scheme = HS_TIER_FILE;
		u->path = strip_dup(p, strlen(p), 1);
		return 0;
	}
	if (!strncmp(url, "s3://", 5)) {
		p = url + 5;
		slash = strchr(p, '/');
		if (!slash)
			slash = p + strlen(p);
		if (slash == p)
			return -HS_EUSAGE;
		u->scheme = HS_TIER_S3;
		u->host = xstrndup(p, slash - p);
		while (*slash == '/')
			slash++;
		u->path = strip_dup(slash, strlen(slash), 0);
		return 0;
	}
	if (!strncmp(url, "webhdfs://", 10)) {
		p = url + 10;
		slash = strchr(p, '/');
		if (!slash || slash == p)
			return -HS_EUSAGE;
		colon = memchr(p, ':', slash - p);
		port = 9870;
		if (colon) {
			errno = 0;
			port = strtol(colon + 1, &end, 10);
			if (end != slash || colon + 1 == slash || port < 1 ||
			    port > 65535)
				return -HS_EUSAGE;
		} else {
			colon = slash;
		}
		if (colon == p)
			return -HS_EUSAGE;
		u->scheme = HS_TIER_WEBHDFS;
		u->host = xstrndup(p, colon - p);
		u->port = (int)port;
		u->path = strip_dup(slash, strlen(slash), 1);
		return 0;
	}
	return -HS_EUSAGE;
}

int hs_tier_open_err(const struct hs_tier_opts *o, int err, const char *fmt, ...)
{
	va_list ap;

	if (o && o->err) {
		va_start(ap, fmt);
		vsnprintf(o->err, HS_TIER_ERRLEN, fmt, ap);
		va_end(ap);
	}
	return err;
}

int hs_tier_open(const char *url, const struct hs_tier_opts *o,
		 struct hs_tier **out)
{
	static const struct hs_tier_opts defaults;
	struct hs_tier_url u;
	int err;

	*out = NULL;
	if (!o)
		o = &defaults;
	if (o->err)
		o->err[0] = '\0';
	err = hs_tier_url_parse(url, &u);
	if (err < 0)
		return hs_tier_open_err(o, err,
			"bad backend URL '%s' (want file:///DIR, s3://BUCKET/PREFIX or webhdfs://HOST:PORT/PATH)",
			url);
	switch (u.scheme) {
	case HS_TIER_FILE:
		err = hs_tier_file_open(&u, o, out);
		break;
	case HS_TIER_S3:
		err = hs_tier_s3_open(&u, o, out);
		break;
	case HS_TIER_WEBHDFS:
		err = hs_tier_webhdfs_open(&u, o, out);
		break;
	default:
		err = -HS_EINTERNAL;
	}
	hs_tier_url_free(&u);
	return err;
}

void hs_tier_close(struct hs_tier *t)
{
	if (t)
		t->ops->close(t);
}

int hs_tier_key_ok(const char *key)
{
	size_t n = strlen(key);
	const char *p;
	int start = 1; /* at the start of a component */

	if (n == 0 || n > HS_TIER_KEY_MAX)
		return 0;
	for (p = key; *p; p++) {
		char c = *p;

		if (c == '/') {
			if (start)
				return 0; /* empty component or leading '/' */
			start = 1;
			continue;
		}
		if (start && c == '.')
			return 0;
		start = 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return !start; /* no trailing '/' */
}

int hs_tier_seterr(struct hs_tier *t, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	return err;
}

static int check_key(struct hs_tier *t, const char *op, const char *key)
{
	t->err[0] = '\0';
	if (!hs_tier_key_ok(key))
		return hs_tier_seterr(t, -HS_EDATA, "%s '%s': invalid object key",
				      op, key);
	return 0;
}

int hs_tier_put_begin(struct hs_tier *t, const char *key, unsigned flags,
		      struct hs_tier_put **out)
{
	int err = check_key(t, "put", key);

	*out = NULL;
	if (err < 0)
		return err;
	return t->ops->put_begin(t, key, flags, out);
}

int hs_tier_put_write(struct hs_tier_put *p, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	return p->t->ops->put_write(p, data, len);
}

int hs_tier_put_end(struct hs_tier_put *p)
{
	return p->t->ops->put_end(p);
}

void hs_tier_put_abort(struct hs_tier_put *p)
{
	if (p)
		p->t->ops->put_abort(p);
}

int hs_tier_put(struct hs_tier *t, const char *key, const void *data,
		size_t len, unsigned flags)
{
	struct hs_tier_put *p;
	int err = check_key(t, "put", key);

	if (err < 0)
		return err;
	if (t->ops->put)
		return t->ops->put(t, key, data, len, flags);
	err = t->ops->put_begin(t, key, flags, &p);
	if (err < 0)
		return err;
	err = hs_tier_put_write(p, data, len);
	if (err < 0) {
		hs_tier_put_abort(p);
		return err;
	}
	return hs_tier_put_end(p);
}

int hs_tier_get(struct hs_tier *t, const char *key, uint64_t off, uint64_t len,
		struct hs_buf *out)
{
	int err = check_key(t, "get", key);

	hs_buf_reset(out);
	if (err < 0)
		return err;
	return t->ops->get(t, key, off, len, out);
}

int hs_tier_head(struct hs_tier *t, const char *key, uint64_t *size)
{
	int err = check_key(t, "head", key);

	if (err < 0)
		return err;
	return t->ops->head(t, key, size);
}

int hs_tier_list(struct hs_tier *t, const char *prefix, hs_tier_list_cb cb,
		 void *arg)
{
	t->err[0] = '\0';
	return t->ops->list(t, prefix, cb, arg);
}

int hs_tier_delete(struct hs_tier *t, const char *key)
{
	int err = check_key(t, "delete", key);

	if (err < 0)
		return err;
	return t->ops->del(t, key);
}

const char *hs_tier_error(const struct hs_tier *t)
{
	return t->err;
}

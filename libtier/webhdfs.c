/*
 * webhdfs.c - the webhdfs://HOST:PORT/PATH backend: Hadoop's WebHDFS REST
 * API (https://hadoop.apache.org/docs/r3.1.1/hadoop-project-dist/hadoop-hdfs/WebHDFS.html)
 * over libcurl, with simple authentication (user.name=).
 *
 * Tested only against test/webhdfs/fake.py, a protocol fake: no HDFS server
 * can be installed from Debian or npm.  Nothing here was run against a real
 * Hadoop cluster.
 *
 * Writes.  Every put goes to a temporary name in the key's directory,
 * ".hs-tmp.<basename>.<random>", then is published by RENAME, so readers
 * never see a partial object (a name starting with '.' can never be a key,
 * and list skips such names).  Data reaches the temporary file by the
 * two-step CREATE (PUT ?op=CREATE&overwrite=false with no body and no
 * redirect following; then PUT the bytes to the 307 Location, expecting
 * 201) and, for streams longer than one chunk, the same two-step APPEND
 * (POST; 307; POST the bytes, expecting 200).  The redirect is followed by
 * hand: libcurl cannot resend a read-callback body to a new location by
 * itself, and the DataNode URL is where the data must go.
 * RENAME never overwrites in HDFS: with HS_TIER_EXCL an existing key makes
 * it answer false and the put fails with -HS_EEXIST; without it, the old
 * object is deleted and the rename retried (a reader may then briefly see
 * no object, which backend.h allows, but never a partial one).
 *
 * Reads: OPEN with offset and length (redirects followed: GETs carry no
 * body).  Head: GETFILESTATUS.  List: LISTSTATUS, walked recursively from
 * the deepest directory the prefix names, children visited in the byte
 * order of "name" for files and "name/" for directories, so keys come out
 * in byte order.  Delete: DELETE with recursive=false.
 *
 * Errors come as JSON RemoteExceptions; their exception name and message
 * go into the error text.  404 -> -HS_ENOENT, SecurityException or
 * AccessControlException -> -HS_EPERM, FileAlreadyExistsException ->
 * -HS_EEXIST, 5xx (after retries) -> -HS_EUNAVAIL, others -> -HS_EIO.
 */
#include "backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "http.h"
#include "log.h"

#define CHUNK_SIZE (8u << 20) /* bytes buffered per CREATE/APPEND */
#define DEF_RETRIES 4
#define DEF_TIMEOUT_MS 30000

struct wh {
	struct hs_tier t;
	struct hs_http h;
	char *origin;  /* "http://host:port" */
	char *root;    /* absolute HDFS path of the root, no trailing '/';
			* "" for "/" */
	char *user;    /* percent-encoded user.name, or NULL */
	struct hs_buf url, resp, path;
};

struct wh_put {
	struct hs_tier_put p;
	char *key;
	char *tmp;      /* the temporary key */
	unsigned flags;
	int created;
	struct hs_buf buf;
};

struct entry {
	char *name;
	int dir;
	uint64_t len;
};

static const char *cstr(struct hs_buf *b)
{
	hs_buf_appendc(b, '\0');
	b->len--;
	return (const char *)b->data;
}

/* --- a little JSON -------------------------------------------------------- */

/* The value of "key" in [p, end): a string (unescaped into str, if given)
 * or a number/literal (its text into str).  Returns 1 if found.  Searching
 * by name is enough for the flat objects WebHDFS answers with. */
static int json_get(const char *p, const char *end, const char *key,
		    struct hs_buf *str)
{
	char pat[64];
	size_t n = (size_t)snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *q;

	hs_buf_reset(str);
	while ((q = memmem(p, end - p, pat, n))) {
		q += n;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
			q++;
		if (q >= end || *q != ':') {
			p = q;
			continue;
		}
		q++;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
			q++;
		if (q < end && *q == '"') {
			for (q++; q < end && *q != '"'; q++) {
				if (*q == '\\' && q + 1 < end) {
					q++;
					switch (*q) {
					case 'n': hs_buf_appendc(str, '\n'); break;
					case 't': hs_buf_appendc(str, '\t'); break;
					case 'u': /* keep it readable; names we
						   * compare are ASCII */
						hs_buf_appendc(str, '?');
						q += (end - q > 4) ? 4 : 0;
						break;
					default: hs_buf_appendc(str, *q);
					}
				} else {
					hs_buf_appendc(str, *q);
				}
			}
		} else {
			while (q < end && *q != ',' && *q != '}' && *q != ']' &&
			       *q != ' ' && *q != '\n')
				hs_buf_appendc(str, *q++);
		}
		cstr(str);
		return 1;
	}
	return 0;
}

/* The end of the JSON object starting at p ('{'), or NULL. */
static const char *json_obj_end(const char *p, const char *end)
{
	int depth = 0, in_str = 0;

	for (; p < end; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = 0;
		} else if (*p == '"') {
			in_str = 1;
		} else if (*p == '{') {
			depth++;
		} else if (*p == '}' && --depth == 0) {
			return p + 1;
		}
	}
	return NULL;
}

/* --- requests ---------------------------------------------------------------- */

/* The absolute HDFS path of rel ("" = the root) into s->path. */
static const char *abs_path(struct wh *s, const char *rel)
{
	hs_buf_reset(&s->path);
	hs_buf_printf(&s->path, "%s/%s", s->root, rel);
	if (s->path.len > 1 && !*rel)
		s->path.len--; /* no trailing '/' but "/" itself */
	return cstr(&s->path);
}

static const char *wh_url(struct wh *s, const char *rel, const char *op,
			  const char *extra)
{
	hs_buf_reset(&s->url);
	hs_buf_printf(&s->url, "%s/webhdfs/v1", s->origin);
	hs_http_encode(&s->url, abs_path(s, rel), 1);
	hs_buf_printf(&s->url, "?op=%s%s", op, extra ? extra : "");
	if (s->user)
		hs_buf_printf(&s->url, "&user.name=%s", s->user);
	return cstr(&s->url);
}

static int wh_fail(struct wh *s, const char *op, const char *key, long status,
		   const struct hs_buf *body)
{
	const char *p = (const char *)body->data, *end = p + body->len;
	struct hs_buf exc = HS_BUF_INIT, msg = HS_BUF_INIT;
	int err;

	if (p) {
		json_get(p, end, "exception", &exc);
		json_get(p, end, "message", &msg);
	}
	if (status == 404 || (exc.len && strstr(cstr(&exc), "FileNotFound")))
		err = -HS_ENOENT;
	else if (status == 401 || (exc.len && (strstr(cstr(&exc), "Security") ||
						strstr(cstr(&exc), "AccessControl") ||
						strstr(cstr(&exc), "Authentication"))))
		err = -HS_EPERM;
	else if (exc.len && strstr(cstr(&exc), "FileAlreadyExists"))
		err = -HS_EEXIST;
	else if (status >= 500)
		err = -HS_EUNAVAIL;
	else
		err = -HS_EIO;
	hs_tier_seterr(&s->t, err, "%s '%s': HTTP %ld %s%s%s", op, key, status,
		       exc.len ? cstr(&exc) : "(no RemoteException)",
		       msg.len ? ": " : "", msg.len ? cstr(&msg) : "");
	hs_buf_free(&exc);
	hs_buf_free(&msg);
	return err;
}

/* One request; on 0, *status and out (appended) hold the answer and
 * *redirect (if asked for, caller frees) the Location of a 3xx. */
static int wh_do(struct wh *s, const char *op, const char *key,
		 const char *method, const char *url, const void *body,
		 size_t len, int follow, struct hs_buf *out, long *status,
		 char **redirect)
{
	static const char *octet = "Content-Type: application/octet-stream";
	struct curl_slist *hdrs = NULL;
	struct hs_http_req rq = { method, url, NULL, body, len, NULL, follow };
	struct hs_http_resp rs = { 0, out, NULL };
	char why[CURL_ERROR_SIZE + 64];
	int err;

	if (body) {
		hdrs = curl_slist_append(NULL, octet);
		if (!hdrs)
			hs_oom();
		rq.headers = hdrs;
	}
	err = hs_http_do(&s->h, &rq, &rs, why, sizeof(why));
	curl_slist_free_all(hdrs);
	if (err < 0) {
		free(rs.redirect);
		return hs_tier_seterr(&s->t, err, "%s '%s': %s", op, key, why);
	}
	*status = rs.status;
	if (redirect)
		*redirect = rs.redirect;
	else
		free(rs.redirect);
	return 0;
}

/* A JSON {"boolean": X} answer: 1 true, 0 false, negative on error. */
static int wh_bool(struct wh *s, const char *op, const char *key,
		   const char *method, const char *url)
{
	struct hs_buf v = HS_BUF_INIT;
	long st;
	int err;

	hs_buf_reset(&s->resp);
	err = wh_do(s, op, key, method, url, NULL, 0, 0, &s->resp, &st, NULL);
	if (err < 0)
		return err;
	if (st != 200)
		return wh_fail(s, op, key, st, &s->resp);
	if (!s->resp.len ||
	    !json_get((const char *)s->resp.data,
		      (const char *)s->resp.data + s->resp.len, "boolean", &v))
		err = hs_tier_seterr(&s->t, -HS_EIO, "%s '%s': no boolean in the answer",
				     op, key);
	else
		err = !strcmp(cstr(&v), "true");
	hs_buf_free(&v);
	return err;
}

/* The two-step write: method (PUT for CREATE, POST for APPEND) without a
 * body, then the bytes to the Location of the 307. */
static int two_step(struct wh *s, const char *op, const char *key,
		    const char *method, const char *url, const void *data,
		    size_t len, long want)
{
	char *loc = NULL;
	long st;
	int err;

	hs_buf_reset(&s->resp);
	err = wh_do(s, op, key, method, url, NULL, 0, 0, &s->resp, &st, &loc);
	if (err < 0)
		return err;
	if (st != 307 || !loc) {
		free(loc);
		if (st / 100 == 2)
			return hs_tier_seterr(&s->t, -HS_EIO,
					      "%s '%s': HTTP %ld without a redirect to a datanode",
					      op, key, st);
		return wh_fail(s, op, key, st, &s->resp);
	}
	hs_buf_reset(&s->resp);
	err = wh_do(s, op, key, method, loc, data ? data : "", len, 0,
		    &s->resp, &st, NULL);
	free(loc);
	if (err < 0)
		return err;
	if (st != want)
		return wh_fail(s, op, key, st, &s->resp);
	return 0;
}

/* --- put -------------------------------------------------------------------- */

static int flush(struct wh *s, struct wh_put *h)
{
	int err;

	if (!h->created) {
		err = two_step(s, "put", h->key, "PUT",
			       wh_url(s, h->tmp, "CREATE", "&overwrite=false"),
			       h->buf.data, h->buf.len, 201);
		if (err == -HS_EEXIST) /* our random temp name: cannot be */
			err = hs_tier_seterr(&s->t, -HS_EIO,
					     "put '%s': temporary file %s exists",
					     h->key, h->tmp);
		if (err < 0)
			return err;
		h->created = 1;
	} else if (h->buf.len) {
		err = two_step(s, "put", h->key, "POST",
			       wh_url(s, h->tmp, "APPEND", NULL), h->buf.data,
			       h->buf.len, 200);
		if (err < 0)
			return err;
	}
	hs_buf_reset(&h->buf);
	return 0;
}

static void drop_tmp(struct wh *s, struct wh_put *h)
{
	char saved[HS_TIER_ERRLEN];

	if (!h->created)
		return;
	memcpy(saved, s->t.err, sizeof(saved));
	if (wh_bool(s, "delete", h->tmp, "DELETE",
		    wh_url(s, h->tmp, "DELETE", "&recursive=false")) < 0)
		hs_warn("webhdfs: cannot delete temporary %s: %s", h->tmp,
			s->t.err);
	memcpy(s->t.err, saved, sizeof(saved));
}

static void put_free(struct wh_put *h)
{
	free(h->key);
	free(h->tmp);
	hs_buf_free(&h->buf);
	free(h);
}

static int wh_put_begin(struct hs_tier *t, const char *key, unsigned flags,
			struct hs_tier_put **out)
{
	struct wh_put *h = hs_xcalloc(1, sizeof(*h));
	const char *slash = strrchr(key, '/');
	unsigned char rnd[8];
	char hex[17];
	struct hs_buf b = HS_BUF_INIT;

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	if (slash)
		hs_buf_printf(&b, "%.*s/.hs-tmp.%s.%s", (int)(slash - key), key,
			      slash + 1, hex);
	else
		hs_buf_printf(&b, ".hs-tmp.%s.%s", key, hex);
	h->p.t = t;
	h->key = hs_xstrdup(key);
	h->tmp = hs_xstrdup(cstr(&b));
	h->flags = flags;
	hs_buf_free(&b);
	*out = &h->p;
	return 0;
}

static int wh_put_write(struct hs_tier_put *p, const void *data, size_t len)
{
	struct wh_put *h = (struct wh_put *)p;
	const uint8_t *d = data;
	int err;

	while (len) {
		size_t n = CHUNK_SIZE - h->buf.len;

		if (n > len)
			n = len;
		hs_buf_append(&h->buf, d, n);
		d += n;
		len -= n;
		if (h->buf.len == CHUNK_SIZE &&
		    (err = flush((struct wh *)p->t, h)) < 0)
			return err;
	}
	return 0;
}

static int publish(struct wh *s, struct wh_put *h)
{
	struct hs_buf dest = HS_BUF_INIT, q = HS_BUF_INIT;
	int err, tries;

	hs_buf_printf(&dest, "%s", abs_path(s, h->key));
	hs_buf_printf(&q, "&destination=");
	hs_http_encode(&q, cstr(&dest), 1);
	for (tries = 0; tries < 3; tries++) {
		err = wh_bool(s, "put", h->key, "PUT",
			      wh_url(s, h->tmp, "RENAME", cstr(&q)));
		if (err != 0)
			break; /* renamed (1) or failed (< 0) */
		/* false: the key exists (or vanished parents, below). */
		if (h->flags & HS_TIER_EXCL) {
			uint64_t sz;

			err = s->t.ops->head(&s->t, h->key, &sz);
			if (err == 0)
				err = hs_tier_seterr(&s->t, -HS_EEXIST,
						     "put '%s': the key exists",
						     h->key);
			else if (err == -HS_ENOENT)
				err = hs_tier_seterr(&s->t, -HS_EIO,
						     "put '%s': RENAME of %s refused",
						     h->key, h->tmp);
			break;
		}
		err = wh_bool(s, "put", h->key, "DELETE",
			      wh_url(s, h->key, "DELETE", "&recursive=false"));
		if (err < 0)
			break;
	}
	if (err == 0)
		err = hs_tier_seterr(&s->t, -HS_EIO,
				     "put '%s': RENAME of %s kept failing",
				     h->key, h->tmp);
	hs_buf_free(&dest);
	hs_buf_free(&q);
	return err < 0 ? err : 0;
}

static int wh_put_end(struct hs_tier_put *p)
{
	struct wh_put *h = (struct wh_put *)p;
	struct wh *s = (struct wh *)p->t;
	int err;

	err = flush(s, h);
	if (!err)
		err = publish(s, h);
	if (err < 0)
		drop_tmp(s, h);
	put_free(h);
	return err;
}

static void wh_put_abort(struct hs_tier_put *p)
{
	struct wh_put *h = (struct wh_put *)p;

	drop_tmp((struct wh *)p->t, h);
	put_free(h);
}

/* --- head, get, delete -------------------------------------------------------- */

static int wh_head(struct hs_tier *t, const char *key, uint64_t *size)
{
	struct wh *s = (struct wh *)t;
	struct hs_buf v = HS_BUF_INIT;
	const char *p, *end;
	long st;
	int err;

	hs_buf_reset(&s->resp);
	err = wh_do(s, "head", key, "GET", wh_url(s, key, "GETFILESTATUS", NULL),
		    NULL, 0, 0, &s->resp, &st, NULL);
	if (err < 0)
		return err;
	if (st != 200)
		return wh_fail(s, "head", key, st, &s->resp);
	p = (const char *)s->resp.data;
	end = p + s->resp.len;
	if (!p || !json_get(p, end, "type", &v)) {
		err = hs_tier_seterr(t, -HS_EIO, "head '%s': no FileStatus", key);
	} else if (strcmp(cstr(&v), "FILE")) {
		err = hs_tier_seterr(t, -HS_ENOENT, "head '%s': not a file", key);
	} else if (!json_get(p, end, "length", &v) || !v.len) {
		err = hs_tier_seterr(t, -HS_EIO, "head '%s': no length", key);
	} else {
		*size = strtoull(cstr(&v), NULL, 10);
		err = 0;
	}
	hs_buf_free(&v);
	return err;
}

static int wh_get(struct hs_tier *t, const char *key, uint64_t off,
		  uint64_t len, struct hs_buf *out)
{
	struct wh *s = (struct wh *)t;
	char q[64];
	uint64_t size;
	long st;
	int err;

	hs_buf_reset(out);
	if (len)
		snprintf(q, sizeof(q), "&offset=%llu&length=%llu",
			 (unsigned long long)off, (unsigned long long)len);
	else
		snprintf(q, sizeof(q), "&offset=%llu", (unsigned long long)off);
	err = wh_do(s, "get", key, "GET", wh_url(s, key, "OPEN", q), NULL, 0, 1,
		    out, &st, NULL);
	if (err < 0)
		return err;
	if (st == 200)
		return 0;
	err = wh_fail(s, "get", key, st, out);
	hs_buf_reset(out);
	/* An offset past the end is an error for HDFS, an empty read for us. */
	if (off && err == -HS_EIO && wh_head(t, key, &size) == 0 && off >= size) {
		t->err[0] = '\0';
		return 0;
	}
	return err;
}

static int wh_del(struct hs_tier *t, const char *key)
{
	struct wh *s = (struct wh *)t;
	int err;

	/* false = nothing was there: fine (backend.h). */
	err = wh_bool(s, "delete", key, "DELETE",
		      wh_url(s, key, "DELETE", "&recursive=false"));
	return err < 0 ? err : 0;
}

/* --- list --------------------------------------------------------------------- */

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	size_t nx = strlen(x->name), ny = strlen(y->name);
	size_t n = nx < ny ? nx : ny;
	int c = memcmp(x->name, y->name, n);
	unsigned char cx, cy;

	if (c)
		return c;
	/* Compare as "name/" for directories: that is where their keys go. */
	cx = nx > n ? (unsigned char)x->name[n] : x->dir ? '/' : 0;
	cy = ny > n ? (unsigned char)y->name[n] : y->dir ? '/' : 0;
	return (int)cx - (int)cy;
}

static int starts(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static int walk(struct wh *s, const char *dir, const char *prefix,
		hs_tier_list_cb cb, void *arg)
{
	struct entry *ents = NULL;
	size_t n = 0, cap = 0, i;
	struct hs_buf name = HS_BUF_INIT, v = HS_BUF_INIT, rel = HS_BUF_INIT;
	const char *p, *end;
	long st;
	int err;

	hs_buf_reset(&s->resp);
	err = wh_do(s, "list", prefix, "GET", wh_url(s, dir, "LISTSTATUS", NULL),
		    NULL, 0, 0, &s->resp, &st, NULL);
	if (err < 0)
		return err;
	if (st == 404)
		return 0; /* a missing directory is an empty listing */
	if (st != 200)
		return wh_fail(s, "list", prefix, st, &s->resp);
	p = (const char *)s->resp.data;
	end = p + s->resp.len;
	p = p ? memmem(p, end - p, "\"FileStatus\"", 12) : NULL;
	if (!p) {
		err = hs_tier_seterr(&s->t, -HS_EIO, "list '%s': no FileStatuses",
				     prefix);
		goto out;
	}
	/* Each {...} in the array is one entry. */
	while ((p = memchr(p, '{', end - p))) {
		const char *oe = json_obj_end(p, end);

		if (!oe) {
			err = hs_tier_seterr(&s->t, -HS_EIO,
					     "list '%s': truncated answer", prefix);
			goto out;
		}
		if (json_get(p, oe, "pathSuffix", &name) && name.len &&
		    json_get(p, oe, "type", &v)) {
			int isdir = !strcmp(cstr(&v), "DIRECTORY");
			uint64_t len = 0;

			if (!isdir && json_get(p, oe, "length", &v))
				len = strtoull(cstr(&v), NULL, 10);
			if (n == cap) {
				cap = cap ? 2 * cap : 32;
				ents = hs_xrealloc(ents, cap * sizeof(*ents));
			}
			ents[n].name = hs_xstrdup(cstr(&name));
			ents[n].dir = isdir;
			ents[n].len = len;
			n++;
		}
		p = oe;
	}
	qsort(ents, n, sizeof(*ents), entry_cmp);
	for (i = 0; i < n && !err; i++) {
		if (ents[i].name[0] == '.') /* temporary files, never keys */
			continue;
		hs_buf_reset(&rel);
		hs_buf_printf(&rel, "%s%s%s%s", dir, *dir ? "/" : "",
			      ents[i].name, ents[i].dir ? "/" : "");
		if (!ents[i].dir) {
			if (starts(cstr(&rel), prefix))
				err = cb(arg, cstr(&rel), ents[i].len);
		} else if (starts(cstr(&rel), prefix) || starts(prefix, cstr(&rel))) {
			rel.len--; /* without the '/' */
			err = walk(s, cstr(&rel), prefix, cb, arg);
		}
	}
out:
	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	hs_buf_free(&name);
	hs_buf_free(&v);
	hs_buf_free(&rel);
	return err;
}

static int wh_list(struct hs_tier *t, const char *prefix, hs_tier_list_cb cb,
		   void *arg)
{
	const char *slash = strrchr(prefix, '/');
	char *dir = slash ? strndup(prefix, slash - prefix) : hs_xstrdup("");
	int err;

	if (!dir)
		hs_oom();
	err = walk((struct wh *)t, dir, prefix, cb, arg);
	free(dir);
	return err;
}

/* --- open and close ---------------------------------------------------------- */

static void wh_close(struct hs_tier *t)
{
	struct wh *s = (struct wh *)t;

	hs_http_fini(&s->h);
	free(s->origin);
	free(s->root);
	free(s->user);
	hs_buf_free(&s->url);
	hs_buf_free(&s->resp);
	hs_buf_free(&s->path);
	free(s);
}

static const struct hs_tier_ops wh_ops = {
	.name = "webhdfs",
	.put = NULL, /* the wrapper streams through put_begin/write/end */
	.put_begin = wh_put_begin,
	.put_write = wh_put_write,
	.put_end = wh_put_end,
	.put_abort = wh_put_abort,
	.get = wh_get,
	.head = wh_head,
	.list = wh_list,
	.del = wh_del,
	.close = wh_close,
};

int hs_tier_webhdfs_open(const struct hs_tier_url *u,
			 const struct hs_tier_opts *o, struct hs_tier **out)
{
	const char *user = o->user;
	struct wh *s;
	size_t n;
	int err;

	*out = NULL;
	if (!u->host || !*u->host || strpbrk(u->host, "/?#@ ") || !u->path ||
	    u->path[0] != '/')
		return hs_tier_open_err(o, -HS_EUSAGE,
					"bad webhdfs URL (want webhdfs://HOST:PORT/PATH)");
	s = hs_xcalloc(1, sizeof(*s));
	s->t.ops = &wh_ops;
	err = hs_http_init(&s->h, o->retries == 0 ? DEF_RETRIES : o->retries,
			   o->timeout_ms > 0 ? o->timeout_ms : DEF_TIMEOUT_MS);
	if (err < 0) {
		wh_close(&s->t);
		return hs_tier_open_err(o, err, "cannot initialise libcurl");
	}
	hs_buf_printf(&s->url, "http://%s:%d", u->host, u->port ? u->port : 9870);
	s->origin = hs_xstrdup(cstr(&s->url));
	n = strlen(u->path);
	while (n && u->path[n - 1] == '/')
		n--;
	s->root = strndup(u->path, n);
	if (!s->root)
		hs_oom();
	if (!user || !*user)
		user = getenv("USER");
	if (user && *user) {
		hs_buf_reset(&s->url);
		hs_http_encode(&s->url, user, 0);
		s->user = hs_xstrdup(cstr(&s->url));
	}
	hs_buf_reset(&s->url);
	*out = &s->t;
	return 0;
}

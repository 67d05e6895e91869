/*
 * backend.h - the Tier2 object store interface: one small vtable (put, ranged
 * get, head, list by prefix, delete) and three backends chosen by URL:
 *
 *   file:///abs/dir           objects are files under dir (file.c)
 *   s3://bucket[/prefix]      S3 or any S3-compatible store (s3.c)
 *   webhdfs://host:port/path  Hadoop WebHDFS REST (webhdfs.c)
 *
 * Keys.  A key is relative to the root the URL names: 1..1024 bytes of
 * [A-Za-z0-9._/-], '/'-separated components, none empty, none starting with
 * '.' (so ".", ".." and the file backend's temp files can never be keys), no
 * leading or trailing '/'.  hs_tier_key_ok() checks this; every backend
 * refuses other keys with -HS_EDATA before any I/O.  The same relative keys
 * give the same layout on every backend.
 *
 * Semantics every backend provides:
 * - put is atomic: a reader sees the old object, nothing, or the whole new
 *   object, never a prefix.  A failed or aborted put leaves nothing visible.
 *   A streaming put (put_begin/put_write/put_end) lets a 256 MiB segment be
 *   uploaded without holding it in memory; nothing is visible before put_end
 *   returns 0.  HS_TIER_EXCL makes put fail with -HS_EEXIST when the key
 *   exists (file: link(2); s3: If-None-Match: *, which some S3 servers
 *   ignore; webhdfs: RENAME never overwrites), for immutable manifests.
 * - get reads a byte range; its result may be shorter than asked only when
 *   the range passes the end of the object.
 * - list reports every key under a prefix with its size, in byte order of
 *   the keys, hiding the backend's pagination.
 * - delete of a missing key succeeds (sweeps must be idempotent; S3 itself
 *   answers 204 for a missing key).
 *
 * Errors (negative codes from err.h) mean the same on every backend:
 *   -HS_ENOENT   no such object (or bucket/directory)
 *   -HS_EPERM    bad credentials or permission denied (exit 77)
 *   -HS_EEXIST   HS_TIER_EXCL and the key exists
 *   -HS_EDATA    bad key or bad argument
 *   -HS_ETIMEOUT the request timed out after all retries
 *   -HS_EUNAVAIL the service cannot be reached or kept answering 5xx
 *   -HS_EIO      any other I/O or protocol failure
 *   -HS_ENOSPC   out of space
 * After any failure, hs_tier_error(t) holds one line naming the operation
 * and the key ("get 'logs/a/seg/x': HTTP 403 SignatureDoesNotMatch").
 *
 * Threads: a struct hs_tier is used by one thread at a time.
 *
 * Implementing a backend: embed struct hs_tier as the FIRST member of the
 * backend's own struct, fill t->ops, and report errors through
 * hs_tier_seterr().  A streaming put handle likewise embeds struct
 * hs_tier_put first.  The wrappers below check keys and clear the error text,
 * so backends needn't.
 */
#ifndef HS_TIER_BACKEND_H
#define HS_TIER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HS_TIER_ERRLEN 512
#define HS_TIER_KEY_MAX 1024

enum hs_tier_scheme { HS_TIER_FILE = 1, HS_TIER_S3, HS_TIER_WEBHDFS };

/* A parsed URL; every string is owned (hs_tier_url_free). */
struct hs_tier_url {
	enum hs_tier_scheme scheme;
	char *host;   /* s3: the bucket; webhdfs: the host; file: NULL */
	int port;     /* webhdfs: the port (default 9870); otherwise 0 */
	char *path;   /* file: the absolute directory, no trailing '/' (but "/"
		       * stays "/"); s3: the key prefix without leading or
		       * trailing '/', possibly ""; webhdfs: the absolute path,
		       * no trailing '/' */
};

/* Options for opening a backend; all optional (zero = default).  The struct
 * and its strings are borrowed for the duration of hs_tier_open only:
 * backends copy what they keep. */
struct hs_tier_opts {
	const char *endpoint;  /* s3: base URL, e.g. "http://127.0.0.1:9000";
				* NULL = https://s3.<region>.amazonaws.com */
	const char *region;    /* s3: NULL = $AWS_REGION, else "us-east-1" */
	int path_style;        /* s3: 1 = http://endpoint/bucket/key,
				* 0 = http://bucket.endpoint/key */
	const char *cred_file; /* s3: file with the access key id and secret;
				* NULL = $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY
				* (never argv) */
	const char *user;      /* webhdfs: user.name; NULL = $USER */
	int retries;           /* retries on 5xx and timeouts with backoff;
				* 0 = default (4), < 0 = none */
	int timeout_ms;        /* per request; 0 = default (30000) */
	char *err;             /* optional, caller-owned, HS_TIER_ERRLEN bytes:
				* hs_tier_open writes its failure text here */
};

#define HS_TIER_EXCL 1u /* put: fail with -HS_EEXIST if the key exists */

struct hs_tier;
struct hs_tier_put;

/* Called once per key by list, in byte order; key is borrowed until the
 * callback returns.  Return 0 to go on; any other value stops the listing
 * and is returned by hs_tier_list (use a positive value to tell it from an
 * error). */
typedef int (*hs_tier_list_cb)(void *arg, const char *key, uint64_t size);

/* The vtable.  Keys reaching it are already checked.  put may be NULL: the
 * wrapper then uses put_begin/put_write/put_end. */
struct hs_tier_ops {
	const char *name; /* "file", "s3", "webhdfs" */
	int (*put)(struct hs_tier *t, const char *key, const void *data,
		   size_t len, unsigned flags);
	int (*put_begin)(struct hs_tier *t, const char *key, unsigned flags,
			 struct hs_tier_put **out);
	int (*put_write)(struct hs_tier_put *p, const void *data, size_t len);
	int (*put_end)(struct hs_tier_put *p);   /* frees p, success or not */
	void (*put_abort)(struct hs_tier_put *p); /* frees p */
	int (*get)(struct hs_tier *t, const char *key, uint64_t off,
		   uint64_t len, struct hs_buf *out);
	int (*head)(struct hs_tier *t, const char *key, uint64_t *size);
	int (*list)(struct hs_tier *t, const char *prefix, hs_tier_list_cb cb,
		    void *arg);
	int (*del)(struct hs_tier *t, const char *key);
	void (*close)(struct hs_tier *t); /* frees t */
};

/* Opaque to users; backends embed it first in their own struct. */
struct hs_tier {
	const struct hs_tier_ops *ops;
	char err[HS_TIER_ERRLEN]; /* last error text, "" if none */
};

/* Opaque to users; backends embed it first in their own handle. */
struct hs_tier_put {
	struct hs_tier *t;
};

/* --- URLs and opening -------------------------------------------------- */

/* Parse url (borrowed) into *u (filled with owned strings).  Returns 0, or
 * -HS_EUSAGE for an unknown scheme or a malformed URL (file: needs an
 * absolute path; s3: needs a bucket; webhdfs: needs a host and an absolute
 * path).  On failure *u is left empty. */
int hs_tier_url_parse(const char *url, struct hs_tier_url *u);
void hs_tier_url_free(struct hs_tier_url *u);

/* Open the backend url names.  o may be NULL (defaults).  On success *out
 * is owned by the caller (hs_tier_close).  Errors: -HS_EUSAGE (bad URL),
 * -HS_ENOENT (file: the directory does not exist), -HS_EPERM (credentials
 * missing or unreadable), -HS_ECONFIG (bad options), or what the
 * backend's constructor returns; the text goes to o->err when given. */
int hs_tier_open(const char *url, const struct hs_tier_opts *o,
		 struct hs_tier **out);

/* The backend constructors hs_tier_open dispatches to.  u and o are
 * borrowed (o never NULL here); same contract as hs_tier_open. */
int hs_tier_file_open(const struct hs_tier_url *u, const struct hs_tier_opts *o,
		      struct hs_tier **out);
int hs_tier_s3_open(const struct hs_tier_url *u, const struct hs_tier_opts *o,
		    struct hs_tier **out);
int hs_tier_webhdfs_open(const struct hs_tier_url *u,
			 const struct hs_tier_opts *o, struct hs_tier **out);

/* Close and free t (NULL is fine).  Never fails: buffered state is only
 * ever committed by put/put_end. */
void hs_tier_close(struct hs_tier *t);

/* --- operations --------------------------------------------------------- */

/* Store len bytes at key, atomically.  data is borrowed.  flags: 0 or
 * HS_TIER_EXCL.  Returns 0 or an error above. */
int hs_tier_put(struct hs_tier *t, const char *key, const void *data,
		size_t len, unsigned flags);

/* Streaming put.  put_begin returns in *out a handle owned by the caller
 * until put_end or put_abort, which free it.  put_write appends (data
 * borrowed); after a put_write error the caller must still call put_abort.
 * put_end makes the object visible atomically and frees the handle even on
 * failure, leaving nothing visible then.  put_abort discards everything
 * and never fails. */
int hs_tier_put_begin(struct hs_tier *t, const char *key, unsigned flags,
		      struct hs_tier_put **out);
int hs_tier_put_write(struct hs_tier_put *p, const void *data, size_t len);
int hs_tier_put_end(struct hs_tier_put *p);
void hs_tier_put_abort(struct hs_tier_put *p);

/* Read len bytes at off of key (len 0 = to the end) into out, which is
 * reset first (out stays owned by the caller).  out->len is the count:
 * shorter than len only at the end of the object; 0 when off >= size.
 * Returns 0 or an error above (-HS_ENOENT for a missing key). */
int hs_tier_get(struct hs_tier *t, const char *key, uint64_t off, uint64_t len,
		struct hs_buf *out);

/* The size of key in *size.  Returns 0 or an error (-HS_ENOENT). */
int hs_tier_head(struct hs_tier *t, const char *key, uint64_t *size);

/* Call cb for every key starting with prefix ("" = all; a plain string
 * prefix, not only whole components), in byte order.  Returns 0, the
 * callback's non-zero value, or an error.  A missing root or prefix is an
 * empty listing, not an error. */
int hs_tier_list(struct hs_tier *t, const char *prefix, hs_tier_list_cb cb,
		 void *arg);

/* Delete key; a missing key is not an error.  Returns 0 or an error. */
int hs_tier_delete(struct hs_tier *t, const char *key);

/* The text of the last failure on t ("" if the last call succeeded), for
 * messages.  Borrowed: valid until the next call on t. */
const char *hs_tier_error(const struct hs_tier *t);

/* --- helpers for backends ----------------------------------------------- */

/* 1 if key is a valid key (see the top of this file), else 0. */
int hs_tier_key_ok(const char *key);

/* Set t's error text (printf-style) and return err, so a backend can write
 * `return hs_tier_seterr(t, -HS_EIO, "get '%s': %s", key, why);`. */
int hs_tier_seterr(struct hs_tier *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same for hs_tier_open failures: writes o->err if set; returns err. */
int hs_tier_open_err(const struct hs_tier_opts *o, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

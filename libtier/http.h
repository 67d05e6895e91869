/*
 * http.h - the small libcurl layer the S3 and WebHDFS backends share: one
 * request at a time on a reused easy handle (so connections are kept
 * alive), bodies from and to memory, the final response's headers kept for
 * lookup, and bounded retries with exponential backoff and jitter on
 * transport failures, timeouts, 429 and 5xx.
 *
 * Not thread-safe: a struct hs_http belongs to one backend instance, which
 * is used by one thread at a time (backend.h).
 */
#ifndef HS_TIER_HTTP_H
#define HS_TIER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "buf.h"

struct hs_http {
	CURL *c;           /* owned */
	int retries;       /* extra attempts after the first; >= 0 */
	long timeout_ms;   /* per attempt */
	const char *sigv4; /* CURLOPT_AWS_SIGV4 or NULL; borrowed from the owner */
	const char *userpwd; /* "access:secret" for SigV4 or NULL; borrowed */
	struct hs_buf hdrs;  /* raw headers of the last response (owned) */
	char curlerr[CURL_ERROR_SIZE];
};

struct hs_http_req {
	const char *method;          /* GET HEAD PUT POST DELETE */
	const char *url;             /* borrowed */
	struct curl_slist *headers;  /* borrowed; may be NULL */
	const void *body;            /* PUT/POST body, borrowed; may be NULL */
	size_t body_len;
	const char *range;           /* "A-B" or "A-" (sent as Range: bytes=...)
				      * or NULL */
	int follow;                  /* follow redirects (GET only) */
};

struct hs_http_resp {
	long status;     /* HTTP status of the final response */
	struct hs_buf *body; /* the caller's buffer; the body is appended to
			      * it (a retried attempt first truncates it back) */
	char *redirect;  /* owned (free()); the Location of a 3xx when not
			  * following, else NULL */
};

/* Set up h (curl_global_init happens once per process, here).  Returns 0 or
 * -HS_EIO if libcurl cannot make a handle. */
int hs_http_init(struct hs_http *h, int retries, long timeout_ms);
void hs_http_fini(struct hs_http *h);

/* Perform rq, retrying as described above.  On return 0 a response arrived
 * and rs->status holds its status, whatever it is (a 5xx only after the
 * retries ran out): the caller interprets it.  On a transport failure after
 * all retries returns -HS_ETIMEOUT (timed out), -HS_EUNAVAIL (cannot
 * connect) or -HS_EIO, with the reason in why (whylen bytes).  rs->redirect
 * must be freed by the caller. */
int hs_http_do(struct hs_http *h, const struct hs_http_req *rq,
	       struct hs_http_resp *rs, char *why, size_t whylen);

/* Copy the value of header name (case-insensitive) of the last response
 * into val (n bytes, NUL-terminated, surrounding blanks removed).  Returns
 * 1 if found, 0 if not. */
int hs_http_header(const struct hs_http *h, const char *name, char *val,
		   size_t n);

/* Append s to b percent-encoded as RFC 3986 (unreserved bytes kept; '/'
 * kept only when keep_slash), the form SigV4 signs and WebHDFS expects. */
void hs_http_encode(struct hs_buf *b, const char *s, int keep_slash);

#endif

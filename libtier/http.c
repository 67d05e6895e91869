/* http.c - libcurl requests with retries for the S3 and WebHDFS backends;
 * see http.h. */
#include "http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "err.h"
#include "log.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 5000

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;

static void global_init(void)
{
	global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK &&
		    sodium_init() >= 0;
}

int hs_http_init(struct hs_http *h, int retries, long timeout_ms)
{
	memset(h, 0, sizeof(*h));
	pthread_once(&global_once, global_init);
	if (!global_ok)
		return -HS_EIO;
	h->c = curl_easy_init();
	if (!h->c)
		return -HS_EIO;
	h->retries = retries < 0 ? 0 : retries;
	h->timeout_ms = timeout_ms;
	return 0;
}

void hs_http_fini(struct hs_http *h)
{
	if (h->c)
		curl_easy_cleanup(h->c);
	hs_buf_free(&h->hdrs);
	h->c = NULL;
}

/* The upload body: a cursor over borrowed memory that curl may rewind. */
struct src {
	const uint8_t *p;
	size_t len, off;
};

static size_t read_cb(char *dst, size_t size, size_t n, void *arg)
{
	struct src *s = arg;
	size_t k = size * n;

	if (k > s->len - s->off)
		k = s->len - s->off;
	memcpy(dst, s->p + s->off, k);
	s->off += k;
	return k;
}

static int seek_cb(void *arg, curl_off_t off, int origin)
{
	struct src *s = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > s->len)
		return CURL_SEEKFUNC_CANTSEEK;
	s->off = off;
	return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
	hs_buf_append(arg, p, size * n);
	return size * n;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct hs_buf *b = arg;

	/* A new status line (after 100 Continue or a followed redirect)
	 * starts a new set of headers: keep only the final response's. */
	if (size * n >= 5 && !memcmp(p, "HTTP/", 5))
		hs_buf_reset(b);
	hs_buf_append(b, p, size * n);
	return size * n;
}

static int transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return 1;
	default:
		return 0;
	}
}

static void backoff(int attempt)
{
	long ms = BACKOFF_BASE_MS;
	struct timespec ts;

	while (attempt-- > 0 && ms < BACKOFF_CAP_MS)
		ms *= 2;
	if (ms > BACKOFF_CAP_MS)
		ms = BACKOFF_CAP_MS;
	/* Full jitter in [ms/2, ms): clients retrying together spread out. */
	ms = ms / 2 + randombytes_uniform(ms / 2 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0)
		;
}

static CURLcode perform(struct hs_http *h, const struct hs_http_req *rq,
			struct hs_http_resp *rs, struct src *src)
{
	CURL *c = h->c;
	char range[64];
	char *loc = NULL;

	curl_easy_reset(c);
	hs_buf_reset(&h->hdrs);
	h->curlerr[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curlerr);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 h->timeout_ms < 10000 ? h->timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, rs->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h->hdrs);
	if (rq->headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, rq->headers);
	if (h->sigv4) {
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, h->sigv4);
		curl_easy_setopt(c, CURLOPT_USERPWD, h->userpwd);
	}
	if (rq->range) {
		snprintf(range, sizeof(range), "%s", rq->range);
		curl_easy_setopt(c, CURLOPT_RANGE, range);
	}
	if (rq->follow) {
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	}
	if (!strcmp(rq->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(rq->method, "PUT")) {
		/* A read-callback upload with a known size: no chunked
		 * encoding, and curl can rewind it on its own. */
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, src);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, src);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)rq->body_len);
	} else if (!strcmp(rq->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS,
				 rq->body ? (const char *)rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	}

	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		return rc;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
	if (!rq->follow && rs->status >= 300 && rs->status < 400 &&
	    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK &&
	    loc)
		rs->redirect = hs_xstrdup(loc);
	return CURLE_OK;
}

int hs_http_do(struct hs_http *h, const struct hs_http_req *rq,
	       struct hs_http_resp *rs, char *why, size_t whylen)
{
	size_t start = rs->body->len;
	struct src src = { rq->body, rq->body_len, 0 };
	CURLcode rc = CURLE_OK;
	int attempt;

	rs->status = 0;
	rs->redirect = NULL;
	for (attempt = 0;; attempt++) {
		src.off = 0;
		rs->body->len = start;
		free(rs->redirect);
		rs->redirect = NULL;
		rs->status = 0;
		rc = perform(h, rq, rs, &src);
		if (rc == CURLE_OK && rs->status < 500 && rs->status != 429)
			return 0;
		if (rc != CURLE_OK && !transient(rc))
			break;
		if (attempt >= h->retries)
			break;
		hs_debug("%s %s: %s; retrying", rq->method, rq->url,
			 rc != CURLE_OK ? (h->curlerr[0] ? h->curlerr :
					   curl_easy_strerror(rc)) :
					  "server error");
		backoff(attempt);
	}
	if (rc == CURLE_OK)
		return 0; /* a 5xx or 429 after all retries: the caller says it */
	snprintf(why, whylen, "%s", h->curlerr[0] ? h->curlerr :
						     curl_easy_strerror(rc));
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return -HS_ETIMEOUT;
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		return -HS_EUNAVAIL;
	return -HS_EIO;
}

int hs_http_header(const struct hs_http *h, const char *name, char *val,
		   size_t n)
{
	const char *p = (const char *)h->hdrs.data;
	const char *end = p + h->hdrs.len;
	size_t nl = strlen(name);

	while (p && p < end) {
		const char *eol = memchr(p, '\n', end - p);

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' &&
		    !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1, *e = eol;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && isspace((unsigned char)e[-1]))
				e--;
			if ((size_t)(e - v) >= n)
				e = v + n - 1;
			memcpy(val, v, e - v);
			val[e - v] = '\0';
			return 1;
		}
		p = eol + 1;
	}
	return 0;
}

void hs_http_encode(struct hs_buf *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = *s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
			hs_buf_appendc(b, ch);
		} else {
			hs_buf_appendc(b, '%');
			hs_buf_appendc(b, hex[ch >> 4]);
			hs_buf_appendc(b, hex[ch & 15]);
		}
	}
}

/* buf.c - see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hs_oom(void)
{
	static const char msg[] = "hs: out of memory\n";

	(void)!write(2, msg, sizeof(msg) - 1);
	abort();
}

void *hs_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		hs_oom();
	return p;
}

void *hs_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		hs_oom();
	return p;
}

void *hs_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		hs_oom();
	return p;
}

char *hs_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		hs_oom();
	return p;
}

uint8_t *hs_buf_reserve(struct hs_buf *b, size_t extra)
{
	if (b->cap - b->len < extra + 1) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap - b->len < extra + 1)
			cap *= 2;
		b->data = hs_xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

void hs_buf_append(struct hs_buf *b, const void *p, size_t n)
{
	if (!n)
		return;
	memcpy(hs_buf_reserve(b, n), p, n);
	b->len += n;
}

void hs_buf_appendc(struct hs_buf *b, uint8_t c)
{
	*hs_buf_reserve(b, 1) = c;
	b->len++;
}

void hs_buf_printf(struct hs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	hs_buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void hs_buf_consume(struct hs_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void hs_buf_free(struct hs_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

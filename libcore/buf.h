/*
 * buf.h - binary-safe growable byte buffers.
 *
 * A struct hs_buf owns its data (malloc'd).  An empty buffer is all zeroes
 * (HS_BUF_INIT), so buffers can live in zeroed structs.  Growth doubles, so
 * appends are amortised O(1); the hot paths reuse one buffer and reset it.
 * Allocation failure aborts the process with a message: every caller would
 * otherwise have to handle an error that Linux overcommit never reports.
 */
#ifndef HS_BUF_H
#define HS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct hs_buf {
	uint8_t *data; /* owned; NULL when cap == 0 */
	size_t len;
	size_t cap;
};

#define HS_BUF_INIT { NULL, 0, 0 }

/* Make room for at least extra more bytes; returns a pointer to the free tail. */
uint8_t *hs_buf_reserve(struct hs_buf *b, size_t extra);
void hs_buf_append(struct hs_buf *b, const void *p, size_t n);
void hs_buf_appendc(struct hs_buf *b, uint8_t c);
/* printf into the buffer (no NUL counted in len, but one is kept after data). */
void hs_buf_printf(struct hs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (n <= len). */
void hs_buf_consume(struct hs_buf *b, size_t n);
static inline void hs_buf_reset(struct hs_buf *b) { b->len = 0; }
/* Free the data and return to the empty state. */
void hs_buf_free(struct hs_buf *b);

/* Abort with a message: the allocation-failure policy of the project. */
void hs_oom(void) __attribute__((noreturn));
void *hs_xmalloc(size_t n);
void *hs_xcalloc(size_t n, size_t size);
void *hs_xrealloc(void *p, size_t n);
char *hs_xstrdup(const char *s);

#endif

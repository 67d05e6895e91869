/*
 * json.h - the byte-level codecs behind the JSON record format: UTF-8
 * validation, JSON string escaping and unescaping, and base64 (RFC 4648,
 * standard alphabet, with padding).  No parser of whole documents lives
 * here; format.c reads the one object shape it accepts.
 *
 * Everything is binary-safe (pointer + length, never strlen on data) and
 * appends to a caller-owned struct hs_buf, so one buffer is reused for every
 * record of a batch.
 */
#ifndef HS_JSON_H
#define HS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* 1 if p[0..n) is valid UTF-8 in the strict sense of RFC 3629: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequences.  NUL bytes are valid.  0 otherwise. */
int hs_utf8_valid(const uint8_t *p, size_t n);

/* Append p[0..n) to b as a quoted JSON string.  The bytes must be valid
 * UTF-8 (hs_utf8_valid); they are copied unchanged except '"' and '\\'
 * (backslash-escaped), \b \f \n \r \t, and the other control characters
 * U+0000..U+001F, written as \u00XX.  Non-ASCII text is not escaped. */
void hs_json_put_str(struct hs_buf *b, const uint8_t *p, size_t n);

/* Decode the body of a JSON string (the bytes between the quotes, quotes
 * excluded) and append the result to out.  Accepts the escapes \" \\ \/ \b
 * \f \n \r \t and \uXXXX, with surrogate pairs joined into one code point;
 * the result is UTF-8.  Errors (-HS_EDATA, *where set to the offset in p of
 * the offending byte, *why to a static phrase): unknown escape, bad hex,
 * lone or reversed surrogate, raw control character (< 0x20), a '"' not
 * escaped, invalid UTF-8.  out may hold partial output after an error. */
int hs_json_unescape(struct hs_buf *out, const uint8_t *p, size_t n,
		     size_t *where, const char **why);

/* Bytes base64 produces for n input bytes (padding included). */
static inline size_t hs_b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* Append the standard base64 of p[0..n) (alphabet A-Z a-z 0-9 + /, '='
 * padding) to b. */
void hs_b64_encode(struct hs_buf *b, const uint8_t *p, size_t n);

/* Decode strict base64 from s[0..n) and append the bytes to out.  n must be
 * a multiple of 4, padding must be present and only at the end, the unused
 * bits of the last group must be zero (so every byte string has exactly one
 * accepted encoding).  Returns 0, or -HS_EDATA with *where the offset of the
 * first bad character. */
int hs_b64_decode(struct hs_buf *out, const uint8_t *s, size_t n,
		  size_t *where);

/* The value of one hex digit (either case), or -1 if c is not one. */
int hs_hexval(uint8_t c);

#endif

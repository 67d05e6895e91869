/*
 * json.c - see json.h.
 *
 * The UTF-8 check follows the table in RFC 3629 §4 byte by byte instead of
 * decoding and range-checking code points: the second byte's allowed range
 * is what excludes overlong forms (E0 A0.., F0 90..), surrogates (ED ..9F)
 * and values past U+10FFFF (F4 ..8F), so no special cases are needed.
 */
#include "json.h"

#include <string.h>

#include "err.h"

/* Offset of the first byte that does not start a valid sequence, or n. */
static size_t utf8_bad(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t k, need;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return i;
		}
		if (n - i - 1 < need)
			return i;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (k = 2; k <= need; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += need + 1;
	}
	return n;
}

int hs_utf8_valid(const uint8_t *p, size_t n)
{
	return utf8_bad(p, n) == n;
}

static const char hexdig[] = "0123456789abcdef";

void hs_json_put_str(struct hs_buf *b, const uint8_t *p, size_t n)
{
	size_t i, run = 0;

	if (!n) { /* p may be NULL */
		hs_buf_append(b, "\"\"", 2);
		return;
	}
	hs_buf_reserve(b, n + 2);
	hs_buf_appendc(b, '"');
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];
		char esc[6];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		hs_buf_append(b, p + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hexdig[c >> 4];
			esc[5] = hexdig[c & 15];
			elen = 6;
		}
		hs_buf_append(b, esc, elen);
	}
	hs_buf_append(b, p + run, n - run);
	hs_buf_appendc(b, '"');
}

int hs_hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at p (n bytes available) into *u; -1 if not. */
static int hex4(const uint8_t *p, size_t n, unsigned *u)
{
	unsigned v = 0;
	size_t i;

	if (n < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		int h = hs_hexval(p[i]);

		if (h < 0)
			return -1;
		v = v << 4 | (unsigned)h;
	}
	*u = v;
	return 0;
}

static void put_utf8(struct hs_buf *out, unsigned cp)
{
	uint8_t s[4];
	size_t n;

	if (cp < 0x80) {
		s[0] = cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = 0xc0 | cp >> 6;
		s[1] = 0x80 | (cp & 0x3f);
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = 0xe0 | cp >> 12;
		s[1] = 0x80 | (cp >> 6 & 0x3f);
		s[2] = 0x80 | (cp & 0x3f);
		n = 3;
	} else {
		s[0] = 0xf0 | cp >> 18;
		s[1] = 0x80 | (cp >> 12 & 0x3f);
		s[2] = 0x80 | (cp >> 6 & 0x3f);
		s[3] = 0x80 | (cp & 0x3f);
		n = 4;
	}
	hs_buf_append(out, s, n);
}

int hs_json_unescape(struct hs_buf *out, const uint8_t *p, size_t n,
		     size_t *where, const char **why)
{
	size_t i = 0, run = 0, bad;
	unsigned u, lo;

	/* Escapes are ASCII, so validating the raw bytes as a whole is the
	 * same as validating each unescaped run. */
	bad = utf8_bad(p, n);
	while (i < n) {
		uint8_t c = p[i];

		if (i == bad) {
			*why = "invalid UTF-8";
			goto out_bad;
		}
		if (c >= 0x20 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c == '"') {
			*why = "unescaped '\"' in string";
			goto out_bad;
		}
		if (c < 0x20) {
			*why = "control character in string";
			goto out_bad;
		}
		hs_buf_append(out, p + run, i - run);
		if (i + 1 >= n) {
			*why = "truncated escape";
			goto out_bad;
		}
		switch (p[i + 1]) {
		case '"':
			hs_buf_appendc(out, '"');
			break;
		case '\\':
			hs_buf_appendc(out, '\\');
			break;
		case '/':
			hs_buf_appendc(out, '/');
			break;
		case 'b':
			hs_buf_appendc(out, '\b');
			break;
		case 'f':
			hs_buf_appendc(out, '\f');
			break;
		case 'n':
			hs_buf_appendc(out, '\n');
			break;
		case 'r':
			hs_buf_appendc(out, '\r');
			break;
		case 't':
			hs_buf_appendc(out, '\t');
			break;
		case 'u':
			if (hex4(p + i + 2, n - i - 2, &u)) {
				*why = "bad \\u escape";
				goto out_bad;
			}
			if (u >= 0xdc00 && u <= 0xdfff) {
				*why = "lone low surrogate";
				goto out_bad;
			}
			if (u >= 0xd800 && u <= 0xdbff) {
				if (n - i < 12 || p[i + 6] != '\\' ||
				    p[i + 7] != 'u' ||
				    hex4(p + i + 8, n - i - 8, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff) {
					*why =
					    "high surrogate without a low one";
					goto out_bad;
				}
				u = 0x10000 + ((u - 0xd800) << 10) +
				    (lo - 0xdc00);
				i += 6;
			}
			put_utf8(out, u);
			i += 4;
			break;
		default:
			*why = "invalid escape";
			goto out_bad;
		}
		i += 2;
		run = i;
	}
	hs_buf_append(out, p + run, n - run);
	return 0;
out_bad:
	*where = i;
	return -HS_EDATA;
}

static const char b64dig[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void hs_b64_encode(struct hs_buf *b, const uint8_t *p, size_t n)
{
	uint8_t *o = hs_buf_reserve(b, hs_b64_len(n));
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | p[i + 1] << 8 | p[i + 2];

		*o++ = b64dig[v >> 18];
		*o++ = b64dig[v >> 12 & 63];
		*o++ = b64dig[v >> 6 & 63];
		*o++ = b64dig[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		*o++ = b64dig[v >> 18];
		*o++ = b64dig[v >> 12 & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | p[i + 1] << 8;

		*o++ = b64dig[v >> 18];
		*o++ = b64dig[v >> 12 & 63];
		*o++ = b64dig[v >> 6 & 63];
		*o++ = '=';
	}
	b->len += hs_b64_len(n);
}

static int b64val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int hs_b64_decode(struct hs_buf *out, const uint8_t *s, size_t n, size_t *where)
{
	uint8_t *o;
	size_t i, k;

	if (n % 4) {
		*where = n;
		return -HS_EDATA;
	}
	o = hs_buf_reserve(out, n / 4 * 3);
	for (i = 0; i < n; i += 4) {
		uint32_t v = 0;
		int pad = 0, d;

		for (k = 0; k < 4; k++) {
			uint8_t c = s[i + k];

			/* '=' only as the last one or two characters. */
			if (c == '=' && i + 4 == n && k >= 2 &&
			    (k == 3 || s[i + 3] == '=')) {
				pad++;
				v <<= 6;
				continue;
			}
			d = b64val(c);
			if (d < 0 || pad) {
				*where = i + k;
				return -HS_EDATA;
			}
			v = v << 6 | (uint32_t)d;
		}
		/* Nonzero bits under the padding would decode to the same
		 * bytes as the canonical form: refuse them. */
		if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))) {
			*where = i + 3 - pad;
			return -HS_EDATA;
		}
		*o++ = v >> 16;
		if (pad < 2)
			*o++ = v >> 8;
		if (pad < 1)
			*o++ = v;
	}
	out->len = o - out->data;
	return 0;
}

/*
 * format_in.c - the input side of format.h: splitting chunks into records.
 *
 * RAW and JSON share one line splitter (JSON lines end with '\n' and are
 * then parsed).  A line wholly inside the chunk is handled in place; the
 * part of a line that ends a chunk is copied into in->acc and completed
 * from the next chunk(s).  So a copy happens only for records that straddle
 * a read(2) boundary, and acc never holds more than one record.
 *
 * NETSTRING is a byte-at-a-time state machine for the length and the
 * trailing ',', and a bulk copy (or no copy) for the payload.  The payload
 * is handed out only after its ',' has been seen, so a malformed record is
 * never delivered.
 *
 * JSON is parsed by hand for the one object shape format.h describes; the
 * only general JSON code is the value skipper for ignored fields.  Errors
 * carry "line L, column C" (1-based, C in bytes) since JSON Lines are
 * edited and grepped by line.
 */
#include "format.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "json.h"

enum { NS_LEN0, NS_ZERO, NS_LEN, NS_DATA, NS_COMMA };

/* Nesting allowed inside an ignored field's value ("lsn": [[[...]]]). */
#define JSON_DEPTH_MAX 64

static int fail(struct hs_fmt_in *in, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct hs_fmt_in *in, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(in->msg, sizeof(in->msg), fmt, ap);
	va_end(ap);
	in->err = err;
	return err;
}

static int too_big(struct hs_fmt_in *in)
{
	return fail(in, -HS_ETOOBIG, "record %llu is larger than %zu bytes",
		    (unsigned long long)in->records + 1, in->max_record);
}

static int deliver(struct hs_fmt_in *in, const uint8_t *p, size_t n,
		   uint64_t ts, hs_record_cb *cb, void *arg)
{
	struct hs_record r = {0, ts, p, n};
	int rc;

	if (n > in->max_record)
		return too_big(in);
	in->records++;
	rc = cb(arg, &r);
	if (rc < 0) {
		in->msg[0] = '\0';
		in->err = rc;
	}
	return rc < 0 ? rc : 0;
}

int hs_fmt_in_init(struct hs_fmt_in *in, enum hs_fmt kind, uint8_t delim,
		   size_t max_record)
{
	memset(in, 0, sizeof(*in));
	switch (kind) {
	case HS_FMT_RAW:
	case HS_FMT_WHOLE:
	case HS_FMT_NETSTRING:
		break;
	case HS_FMT_JSON:
		delim = '\n';
		break;
	default:
		return -HS_EUSAGE;
	}
	in->kind = kind;
	in->delim = delim;
	in->max_record = max_record ? max_record : SIZE_MAX;
	/* \u00XX is the longest encoding of a byte; the slack covers the
	 * field names, "ts" and ignored fields. */
	if (in->max_record > (SIZE_MAX - 4096) / 6)
		in->max_line = SIZE_MAX;
	else
		in->max_line = in->max_record * 6 + 4096;
	in->line = 1;
	in->ns_state = NS_LEN0;
	return 0;
}

/* ---- JSON lines -----------------------------------------------------------
 */

struct jp {
	struct hs_fmt_in *in;
	const uint8_t *p;
	size_t n;
	size_t i;
};

static int jfail(struct jp *j, const char *why)
{
	return fail(j->in, -HS_EDATA, "line %llu, column %zu: %s",
		    (unsigned long long)j->in->line, j->i + 1, why);
}

static void jws(struct jp *j)
{
	while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' ||
			       j->p[j->i] == '\r' || j->p[j->i] == '\n'))
		j->i++;
}

/* Expect the byte c (after white space). */
static int jexpect(struct jp *j, uint8_t c, const char *why)
{
	jws(j);
	if (j->i >= j->n || j->p[j->i] != c)
		return jfail(j, j->i >= j->n ? "unexpected end of line" : why);
	j->i++;
	return 0;
}

/* The string starting at j->i ('"'): its raw body in *s and *len, whether it
 * has escapes in *esc; j->i moves past the closing quote.  Nothing is
 * validated yet. */
static int jstr_span(struct jp *j, const uint8_t **s, size_t *len, int *esc)
{
	size_t k;

	if (j->i >= j->n || j->p[j->i] != '"')
		return jfail(j, j->i >= j->n ? "unexpected end of line"
					     : "expected a string");
	*esc = 0;
	for (k = j->i + 1; k < j->n; k++) {
		if (j->p[k] == '\\') {
			*esc = 1;
			k++;
		} else if (j->p[k] == '"') {
			*s = j->p + j->i + 1;
			*len = k - j->i - 1;
			j->i = k + 1;
			return 0;
		}
	}
	return jfail(j, "unterminated string");
}

/* Decode the string body s (a span of the line) into out, or borrow it
 * (*res points into the line) when it has no escapes. */
static int jstr_decode(struct jp *j, const uint8_t *s, size_t len, int esc,
		       struct hs_buf *out, const uint8_t **res)
{
	const char *why = NULL;
	size_t where = 0, k;

	if (!esc) {
		for (k = 0; k < len; k++)
			if (s[k] < 0x20)
				break;
		if (k == len && hs_utf8_valid(s, len)) {
			*res = s;
			return 0;
		}
	}
	out->len = 0;
	if (hs_json_unescape(out, s, len, &where, &why)) {
		j->i = (size_t)(s - j->p) + where;
		return jfail(j, why);
	}
	*res = out->data;
	return 0;
}

static int jstr_skip(struct jp *j)
{
	const uint8_t *s, *res;
	size_t len;
	int esc, rc;

	rc = jstr_span(j, &s, &len, &esc);
	if (!rc)
		rc = jstr_decode(j, s, len, esc, &j->in->tmp, &res);
	return rc;
}

static int is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* A JSON number per RFC 8259 §6. */
static int jnum_skip(struct jp *j)
{
	const uint8_t *p = j->p;
	size_t n = j->n;

	if (j->i < n && p[j->i] == '-')
		j->i++;
	if (j->i >= n || !is_digit(p[j->i]))
		return jfail(j, "invalid number");
	if (p[j->i] == '0')
		j->i++;
	else
		while (j->i < n && is_digit(p[j->i]))
			j->i++;
	if (j->i < n && p[j->i] == '.') {
		j->i++;
		if (j->i >= n || !is_digit(p[j->i]))
			return jfail(j, "invalid number");
		while (j->i < n && is_digit(p[j->i]))
			j->i++;
	}
	if (j->i < n && (p[j->i] == 'e' || p[j->i] == 'E')) {
		j->i++;
		if (j->i < n && (p[j->i] == '+' || p[j->i] == '-'))
			j->i++;
		if (j->i >= n || !is_digit(p[j->i]))
			return jfail(j, "invalid number");
		while (j->i < n && is_digit(p[j->i]))
			j->i++;
	}
	return 0;
}

/* Skip any JSON value (for fields that are read but ignored). */
static int jvalue_skip(struct jp *j, int depth)
{
	static const char *const lits[] = {"true", "false", "null"};
	uint8_t c, close;
	size_t k;
	int rc;

	jws(j);
	if (j->i >= j->n)
		return jfail(j, "unexpected end of line");
	if (depth > JSON_DEPTH_MAX)
		return jfail(j, "nested too deeply");
	c = j->p[j->i];
	if (c == '"')
		return jstr_skip(j);
	if (c == '-' || is_digit(c))
		return jnum_skip(j);
	for (k = 0; k < 3; k++) {
		size_t l = strlen(lits[k]);

		if (c == (uint8_t)lits[k][0]) {
			if (j->n - j->i < l || memcmp(j->p + j->i, lits[k], l))
				return jfail(j, "invalid literal");
			j->i += l;
			return 0;
		}
	}
	if (c != '{' && c != '[')
		return jfail(j, "unexpected character");
	close = c == '{' ? '}' : ']';
	j->i++;
	jws(j);
	if (j->i < j->n && j->p[j->i] == close) {
		j->i++;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			jws(j);
			if ((rc = jstr_skip(j)) ||
			    (rc = jexpect(j, ':', "expected ':'")))
				return rc;
		}
		if ((rc = jvalue_skip(j, depth + 1)))
			return rc;
		jws(j);
		if (j->i >= j->n)
			return jfail(j, "unexpected end of line");
		if (j->p[j->i] == close) {
			j->i++;
			return 0;
		}
		if (j->p[j->i] != ',')
			return jfail(j, close == '}' ? "expected ',' or '}'"
						     : "expected ',' or ']'");
		j->i++;
	}
}

/* "ts": a non-negative integer (no fraction or exponent: milliseconds). */
static int jts(struct jp *j, uint64_t *ts)
{
	uint64_t v = 0;
	size_t start = j->i;

	jws(j);
	start = j->i;
	while (j->i < j->n && is_digit(j->p[j->i])) {
		unsigned d = j->p[j->i] - '0';

		if (v > (UINT64_MAX - d) / 10)
			return jfail(j, "\"ts\" is too large");
		v = v * 10 + d;
		j->i++;
	}
	if (j->i == start ||
	    (j->i < j->n && (j->p[j->i] == '.' || j->p[j->i] == 'e' ||
			     j->p[j->i] == 'E' || j->p[j->i] == '-')) ||
	    (j->p[start] == '0' && j->i - start > 1)) {
		j->i = start;
		return jfail(j,
			     "\"ts\" must be a whole number of milliseconds");
	}
	*ts = v;
	return 0;
}

enum {
	F_DATA = 1,
	F_B64 = 2,
	F_TS = 4,
	F_LSN = 8,
	F_STREAM = 16,
	F_GAP = 32,
	F_LO = 64,
	F_HI = 128,
};

static const struct {
	const char *name;
	int bit;
} fields[] = {
    {"data", F_DATA},	  {"data_b64", F_B64}, {"ts", F_TS}, {"lsn", F_LSN},
    {"stream", F_STREAM}, {"gap", F_GAP},      {"lo", F_LO}, {"hi", F_HI},
};

static int json_line(struct hs_fmt_in *in, const uint8_t *p, size_t n,
		     hs_record_cb *cb, void *arg)
{
	struct jp j = {in, p, n, 0};
	const uint8_t *key, *val = NULL, *res;
	size_t klen, vlen = 0, k, vat = 0, where;
	uint64_t ts = 0;
	int seen = 0, bit, esc, vesc = 0, rc;

	jws(&j);
	if (j.i == n)
		return 0; /* blank line */
	if ((rc = jexpect(&j, '{', "expected '{': one JSON object per line")))
		return rc;
	jws(&j);
	if (j.i < n && p[j.i] == '}') {
		j.i++;
		goto out_fields;
	}
	for (;;) {
		size_t kat;

		jws(&j);
		kat = j.i;
		if ((rc = jstr_span(&j, &key, &klen, &esc)))
			return rc;
		if (esc) {
			/* A key spelled with escapes ("d\u0061ta") is still
			 * that key. */
			if ((rc = jstr_decode(&j, key, klen, esc, &in->tmp,
					      &res)))
				return rc;
			key = res;
			klen = in->tmp.len;
		}
		bit = 0;
		for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			if (strlen(fields[k].name) == klen &&
			    !memcmp(fields[k].name, key, klen))
				bit = fields[k].bit;
		if (!bit || (seen & bit)) {
			j.i = kat;
			return jfail(&j,
				     bit ? "duplicate field" : "unknown field");
		}
		seen |= bit;
		if ((rc = jexpect(&j, ':', "expected ':'")))
			return rc;
		jws(&j);
		if (bit == F_DATA || bit == F_B64) {
			vat = j.i;
			if ((rc = jstr_span(&j, &val, &vlen, &vesc)))
				return rc;
		} else if (bit == F_TS) {
			if ((rc = jts(&j, &ts)))
				return rc;
		} else if ((rc = jvalue_skip(&j, 0))) {
			return rc;
		}
		jws(&j);
		if (j.i >= n)
			return jfail(&j, "unexpected end of line");
		if (p[j.i] == '}') {
			j.i++;
			break;
		}
		if (p[j.i] != ',')
			return jfail(&j, "expected ',' or '}'");
		j.i++;
	}
out_fields:
	jws(&j);
	if (j.i != n)
		return jfail(&j, "text after the object");
	j.i = 0;
	if (seen & F_GAP) {
		/* hs-cat --gaps output: nothing to append. */
		if (seen & (F_DATA | F_B64 | F_TS))
			return jfail(&j, "a gap has no payload or \"ts\"");
		return 0;
	}
	if (seen & (F_LO | F_HI))
		return jfail(&j, "\"lo\" and \"hi\" belong to gaps");
	if (!(seen & (F_DATA | F_B64)))
		return jfail(&j, "no \"data\" or \"data_b64\" field");
	if ((seen & (F_DATA | F_B64)) == (F_DATA | F_B64))
		return jfail(&j, "both \"data\" and \"data_b64\"");
	if (seen & F_DATA) {
		j.i = vat;
		if ((rc = jstr_decode(&j, val, vlen, vesc, &in->dec, &res)))
			return rc;
		vlen = res == val ? vlen : in->dec.len;
		val = res;
	} else {
		/* Base64 needs no JSON escapes, but they are legal JSON:
		 * unescape first when present. */
		if (vesc) {
			j.i = vat;
			if ((rc = jstr_decode(&j, val, vlen, vesc, &in->tmp,
					      &res)))
				return rc;
			val = res;
			vlen = in->tmp.len;
		}
		in->dec.len = 0;
		if (hs_b64_decode(&in->dec, val, vlen, &where)) {
			j.i = vat + 1 + (vesc ? 0 : where);
			return jfail(&j, "invalid base64 in \"data_b64\"");
		}
		val = in->dec.data;
		vlen = in->dec.len;
	}
	return deliver(in, val, vlen, ts, cb, arg);
}

/* ---- splitting ------------------------------------------------------------
 */

static int line_done(struct hs_fmt_in *in, const uint8_t *p, size_t n,
		     hs_record_cb *cb, void *arg)
{
	if (in->kind == HS_FMT_JSON)
		return json_line(in, p, n, cb, arg);
	return deliver(in, p, n, 0, cb, arg);
}

static int line_too_big(struct hs_fmt_in *in)
{
	if (in->kind != HS_FMT_JSON)
		return too_big(in);
	return fail(in, -HS_ETOOBIG,
		    "line %llu: longer than %zu bytes, too long for a "
		    "record of at most %zu bytes",
		    (unsigned long long)in->line, in->max_line, in->max_record);
}

static int split(struct hs_fmt_in *in, const uint8_t *p, size_t n,
		 hs_record_cb *cb, void *arg)
{
	size_t limit = in->kind == HS_FMT_JSON ? in->max_line : in->max_record;
	int rc;

	while (n) {
		const uint8_t *e = memchr(p, in->delim, n);
		size_t k = e ? (size_t)(e - p) : n;

		if (k > limit - in->acc.len)
			return line_too_big(in);
		if (!e) {
			hs_buf_append(&in->acc, p, n);
			in->off += n;
			return 0;
		}
		if (in->acc.len) {
			hs_buf_append(&in->acc, p, k);
			rc = line_done(in, in->acc.data, in->acc.len, cb, arg);
			in->acc.len = 0;
		} else {
			rc = line_done(in, p, k, cb, arg);
		}
		if (rc)
			return rc;
		in->off += k + 1;
		in->line++;
		p += k + 1;
		n -= k + 1;
	}
	return 0;
}

static int ns_feed(struct hs_fmt_in *in, const uint8_t *p, size_t n,
		   hs_record_cb *cb, void *arg)
{
	unsigned long long at;
	size_t i = 0, k;
	int rc;

	while (i < n) {
		uint8_t c = p[i];

		at = in->off + i;
		switch (in->ns_state) {
		case NS_LEN0:
			in->rec_start = at;
			if (!is_digit(c))
				return fail(in, -HS_EDATA,
					    "byte %llu: expected a netstring "
					    "length",
					    at);
			if ((size_t)(c - '0') > in->max_record)
				return too_big(in);
			in->ns_len = c - '0';
			in->ns_state = c == '0' ? NS_ZERO : NS_LEN;
			i++;
			break;
		case NS_ZERO:
		case NS_LEN:
			if (c == ':') {
				in->ns_state = NS_DATA;
				i++;
				break;
			}
			if (!is_digit(c))
				return fail(in, -HS_EDATA,
					    "byte %llu: expected ':' after "
					    "the netstring length",
					    at);
			if (in->ns_state == NS_ZERO)
				return fail(in, -HS_EDATA,
					    "byte %llu: leading zero in "
					    "netstring length",
					    at);
			/* No overflow: ns_len <= max_record / 10 first. */
			if (in->ns_len > in->max_record / 10 ||
			    (size_t)(c - '0') > in->max_record ||
			    in->ns_len * 10 > in->max_record - (c - '0'))
				return too_big(in);
			in->ns_len = in->ns_len * 10 + (c - '0');
			i++;
			break;
		case NS_DATA:
			if (!in->acc.len && n - i > in->ns_len) {
				/* Payload and ',' in this chunk: no copy. */
				if (p[i + in->ns_len] != ',')
					return fail(in, -HS_EDATA,
						    "byte %llu: expected ',' "
						    "after the netstring "
						    "payload",
						    at + in->ns_len);
				rc = deliver(in, p + i, in->ns_len, 0, cb, arg);
				if (rc)
					return rc;
				i += in->ns_len + 1;
				in->ns_state = NS_LEN0;
				break;
			}
			k = in->ns_len - in->acc.len;
			if (k > n - i)
				k = n - i;
			hs_buf_append(&in->acc, p + i, k);
			i += k;
			if (in->acc.len == in->ns_len)
				in->ns_state = NS_COMMA;
			break;
		case NS_COMMA:
			if (c != ',')
				return fail(in, -HS_EDATA,
					    "byte %llu: expected ',' after "
					    "the netstring payload",
					    at);
			i++;
			in->ns_state = NS_LEN0;
			rc = deliver(in, in->acc.data, in->acc.len, 0, cb, arg);
			in->acc.len = 0;
			if (rc)
				return rc;
			break;
		}
	}
	in->off += n;
	return 0;
}

int hs_fmt_in_feed(struct hs_fmt_in *in, const uint8_t *p, size_t n,
		   hs_record_cb *cb, void *arg)
{
	if (in->err)
		return in->err;
	switch (in->kind) {
	case HS_FMT_RAW:
	case HS_FMT_JSON:
		return split(in, p, n, cb, arg);
	case HS_FMT_NETSTRING:
		return ns_feed(in, p, n, cb, arg);
	case HS_FMT_WHOLE:
		if (n > in->max_record - in->acc.len)
			return too_big(in);
		hs_buf_append(&in->acc, p, n);
		in->off += n;
		return 0;
	default:
		return fail(in, -HS_EINTERNAL, "splitter not initialised");
	}
}

int hs_fmt_in_finish(struct hs_fmt_in *in, hs_record_cb *cb, void *arg)
{
	int rc = 0;

	if (in->err)
		return in->err;
	switch (in->kind) {
	case HS_FMT_RAW:
	case HS_FMT_JSON:
		if (in->acc.len)
			rc = line_done(in, in->acc.data, in->acc.len, cb, arg);
		break;
	case HS_FMT_WHOLE:
		rc = deliver(in, in->acc.data, in->acc.len, 0, cb, arg);
		break;
	case HS_FMT_NETSTRING:
		if (in->ns_state != NS_LEN0)
			rc = fail(in, -HS_EDATA,
				  "byte %llu: input ends inside this netstring",
				  (unsigned long long)in->rec_start);
		break;
	default:
		return fail(in, -HS_EINTERNAL, "splitter not initialised");
	}
	if (rc)
		return rc;
	in->acc.len = 0;
	in->records = 0;
	in->off = 0;
	in->line = 1;
	in->ns_state = NS_LEN0;
	return 0;
}

const char *hs_fmt_in_error(const struct hs_fmt_in *in)
{
	return in->err && in->msg[0] ? in->msg : NULL;
}

void hs_fmt_in_free(struct hs_fmt_in *in)
{
	hs_buf_free(&in->acc);
	hs_buf_free(&in->dec);
	hs_buf_free(&in->tmp);
	memset(in, 0, sizeof(*in));
}

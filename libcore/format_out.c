/*
 * format_out.c - the output side of format.h: records and gaps appended to
 * a caller's buffer.
 *
 * This runs once per record delivered to hs-cat / hs-tail, so it avoids
 * printf: numbers are converted by hand and a template is compiled once
 * into a list of ops (literal runs and directives) that rendering walks.
 */
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "pos.h"

enum tpl_kind {
	OP_LIT,
	OP_LSN,	    /* %l */
	OP_LSNDEC,  /* %L */
	OP_TS,	    /* %t */
	OP_TSRFC,   /* %T */
	OP_PAYLOAD, /* %p */
	OP_LEN,	    /* %s */
	OP_STREAM,  /* %S */
};

struct hs_fmt_tpl_op {
	enum tpl_kind kind;
	size_t off; /* OP_LIT: the text is lit[off .. off + len) */
	size_t len;
};

int hs_fmt_parse_name(const char *s, enum hs_fmt *out)
{
	if (!strcmp(s, "raw"))
		*out = HS_FMT_RAW;
	else if (!strcmp(s, "json"))
		*out = HS_FMT_JSON;
	else if (!strcmp(s, "netstring"))
		*out = HS_FMT_NETSTRING;
	else
		return -HS_EUSAGE;
	return 0;
}

/* One backslash escape at s (s[0] == '\\'): the byte in *c, the length of
 * the escape returned, or 0 if it is not a valid escape. */
static size_t unescape1(const char *s, uint8_t *c)
{
	switch (s[1]) {
	case 'n':
		*c = '\n';
		return 2;
	case 't':
		*c = '\t';
		return 2;
	case 'r':
		*c = '\r';
		return 2;
	case '0':
		*c = '\0';
		return 2;
	case '\\':
		*c = '\\';
		return 2;
	case 'x':
		if (hs_hexval((uint8_t)s[2]) < 0 || hs_hexval((uint8_t)s[3]) < 0)
			return 0;
		*c = (uint8_t)(hs_hexval((uint8_t)s[2]) << 4 | hs_hexval((uint8_t)s[3]));
		return 4;
	default:
		return 0;
	}
}

int hs_fmt_parse_delim(const char *s, uint8_t *out)
{
	uint8_t c;
	size_t k;

	if (!s[0])
		return -HS_EUSAGE;
	if (s[0] != '\\') {
		if (s[1])
			return -HS_EUSAGE;
		*out = (uint8_t)s[0];
		return 0;
	}
	k = unescape1(s, &c);
	if (!k || s[k])
		return -HS_EUSAGE;
	*out = c;
	return 0;
}

/* ---- numbers and times ----------------------------------------------------
 */

static void put_u64(struct hs_buf *b, uint64_t v)
{
	char s[20];
	size_t i = sizeof(s);

	do {
		s[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	hs_buf_append(b, s + i, sizeof(s) - i);
}

static void put_lsn(struct hs_buf *b, uint64_t lsn)
{
	hs_buf_appendc(b, 'e');
	put_u64(b, lsn >> 32);
	hs_buf_appendc(b, 'n');
	put_u64(b, (uint32_t)lsn);
}

static void put_2(struct hs_buf *b, unsigned v, size_t width)
{
	char s[4];
	size_t i = width;

	while (i--) {
		s[i] = '0' + v % 10;
		v /= 10;
	}
	hs_buf_append(b, s, width);
}

void hs_fmt_rfc3339_ms(struct hs_buf *b, uint64_t ms)
{
	/* civil_from_days (Howard Hinnant), for days >= 0 only. */
	uint64_t days = ms / 86400000, rem = ms % 86400000;
	uint64_t z = days + 719468;
	uint64_t era = z / 146097;
	uint64_t doe = z - era * 146097;
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint64_t y = yoe + era * 400;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint64_t mp = (5 * doy + 2) / 153;
	unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);

	y += m <= 2;
	if (y < 10000)
		put_2(b, (unsigned)y, 4);
	else
		put_u64(b, y);
	hs_buf_appendc(b, '-');
	put_2(b, m, 2);
	hs_buf_appendc(b, '-');
	put_2(b, d, 2);
	hs_buf_appendc(b, 'T');
	put_2(b, (unsigned)(rem / 3600000), 2);
	hs_buf_appendc(b, ':');
	put_2(b, (unsigned)(rem / 60000 % 60), 2);
	hs_buf_appendc(b, ':');
	put_2(b, (unsigned)(rem / 1000 % 60), 2);
	hs_buf_appendc(b, '.');
	put_2(b, (unsigned)(rem % 1000), 3);
	hs_buf_appendc(b, 'Z');
}

/* ---- templates ------------------------------------------------------------
 */

static void add_op(struct hs_fmt_tpl *t, size_t *cap, enum tpl_kind kind,
		   size_t off, size_t len)
{
	if (t->nops == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		t->ops = hs_xrealloc(t->ops, *cap * sizeof(*t->ops));
	}
	t->ops[t->nops].kind = kind;
	t->ops[t->nops].off = off;
	t->ops[t->nops].len = len;
	t->nops++;
}

int hs_fmt_template_parse(struct hs_fmt_tpl *t, const char *s, const char **why,
			  size_t *where)
{
	static const char dirs[] = "lLtTpsS";
	static const enum tpl_kind kinds[] = {
	    OP_LSN, OP_LSNDEC, OP_TS, OP_TSRFC, OP_PAYLOAD, OP_LEN, OP_STREAM};
	size_t len = strlen(s), i = 0, cap = 0, start = 0, k;
	const char *d;
	const char *w = NULL;
	uint8_t c;

	memset(t, 0, sizeof(*t));
	/* Escapes only shrink the text: len bytes always suffice. */
	t->lit = hs_xmalloc(len + 1);
	while (i < len) {
		if (s[i] == '\\') {
			k = unescape1(s + i, &c);
			if (!k) {
				w = "unknown escape (use \\n \\t \\r \\0 \\\\ "
				    "or \\xHH)";
				goto out_bad;
			}
			t->lit[t->litlen++] = c;
			i += k;
			continue;
		}
		if (s[i] != '%') {
			t->lit[t->litlen++] = (uint8_t)s[i++];
			continue;
		}
		if (s[i + 1] == '%') {
			t->lit[t->litlen++] = '%';
			i += 2;
			continue;
		}
		d = s[i + 1] ? strchr(dirs, s[i + 1]) : NULL;
		if (!d) {
			w = s[i + 1] ? "unknown directive (use %l %L %t %T %p "
				       "%s %S or %%)"
				     : "'%' at the end (write %% for a '%')";
			goto out_bad;
		}
		if (t->litlen > start)
			add_op(t, &cap, OP_LIT, start, t->litlen - start);
		start = t->litlen;
		add_op(t, &cap, kinds[d - dirs], 0, 0);
		i += 2;
	}
	if (t->litlen > start)
		add_op(t, &cap, OP_LIT, start, t->litlen - start);
	return 0;
out_bad:
	if (why)
		*why = w;
	if (where)
		*where = i;
	hs_fmt_template_free(t);
	return -HS_EUSAGE;
}

void hs_fmt_template_free(struct hs_fmt_tpl *t)
{
	free(t->ops);
	free(t->lit);
	memset(t, 0, sizeof(*t));
}

static void render(const struct hs_fmt_out *o, struct hs_buf *b,
		   const struct hs_record *r)
{
	const struct hs_fmt_tpl *t = &o->tpl;
	size_t i;

	for (i = 0; i < t->nops; i++) {
		const struct hs_fmt_tpl_op *op = &t->ops[i];

		switch (op->kind) {
		case OP_LIT:
			hs_buf_append(b, t->lit + op->off, op->len);
			break;
		case OP_LSN:
			put_lsn(b, r->lsn);
			break;
		case OP_LSNDEC:
			put_u64(b, r->lsn);
			break;
		case OP_TS:
			put_u64(b, r->ts_ms);
			break;
		case OP_TSRFC:
			hs_fmt_rfc3339_ms(b, r->ts_ms);
			break;
		case OP_PAYLOAD:
			hs_buf_append(b, r->data, r->len);
			break;
		case OP_LEN:
			put_u64(b, r->len);
			break;
		case OP_STREAM:
			hs_buf_append(b, o->stream, o->stream_len);
			break;
		}
	}
}

/* ---- writers --------------------------------------------------------------
 */

int hs_fmt_out_init(struct hs_fmt_out *o, enum hs_fmt kind, uint8_t delim)
{
	memset(o, 0, sizeof(*o));
	if (kind != HS_FMT_RAW && kind != HS_FMT_NETSTRING &&
	    kind != HS_FMT_JSON)
		return -HS_EUSAGE;
	o->kind = kind;
	o->delim = delim;
	return 0;
}

int hs_fmt_out_init_template(struct hs_fmt_out *o, const char *tpl,
			     const char **why, size_t *where)
{
	int rc;

	memset(o, 0, sizeof(*o));
	rc = hs_fmt_template_parse(&o->tpl, tpl, why, where);
	if (!rc)
		o->kind = HS_FMT_TEMPLATE;
	return rc;
}

void hs_fmt_out_set_stream(struct hs_fmt_out *o, const char *name)
{
	o->stream = name;
	o->stream_len = name ? strlen(name) : 0;
}

#define PUT_LIT(b, s) hs_buf_append((b), (s), sizeof(s) - 1)

/* Open an object: '{', then "stream":"NAME", when a stream is set. */
static void json_open(const struct hs_fmt_out *o, struct hs_buf *b)
{
	hs_buf_appendc(b, '{');
	if (o->stream) {
		PUT_LIT(b, "\"stream\":");
		hs_json_put_str(b, (const uint8_t *)o->stream, o->stream_len);
		hs_buf_appendc(b, ',');
	}
}

void hs_fmt_out_record(const struct hs_fmt_out *o, struct hs_buf *b,
		       const struct hs_record *r)
{
	switch (o->kind) {
	case HS_FMT_RAW:
		hs_buf_append(b, r->data, r->len);
		hs_buf_appendc(b, o->delim);
		break;
	case HS_FMT_NETSTRING:
		put_u64(b, r->len);
		hs_buf_appendc(b, ':');
		hs_buf_append(b, r->data, r->len);
		hs_buf_appendc(b, ',');
		break;
	case HS_FMT_JSON:
		json_open(o, b);
		if (r->lsn) {
			PUT_LIT(b, "\"lsn\":\"");
			put_lsn(b, r->lsn);
			PUT_LIT(b, "\",");
		}
		if (r->ts_ms) {
			PUT_LIT(b, "\"ts\":");
			put_u64(b, r->ts_ms);
			hs_buf_appendc(b, ',');
		}
		if (hs_utf8_valid(r->data, r->len)) {
			PUT_LIT(b, "\"data\":");
			hs_json_put_str(b, r->data, r->len);
		} else {
			PUT_LIT(b, "\"data_b64\":\"");
			hs_b64_encode(b, r->data, r->len);
			hs_buf_appendc(b, '"');
		}
		PUT_LIT(b, "}\n");
		break;
	case HS_FMT_TEMPLATE:
		render(o, b, r);
		break;
	default:
		break;
	}
}

const char *hs_fmt_gap_name(enum hs_fmt_gap_kind kind)
{
	switch (kind) {
	case HS_FMT_GAP_HOLE:
		return "HOLE";
	case HS_FMT_GAP_BRIDGE:
		return "BRIDGE";
	case HS_FMT_GAP_TRIM:
		return "TRIM";
	case HS_FMT_GAP_DATALOSS:
		return "DATALOSS";
	}
	return "?";
}

size_t hs_fmt_out_gap(const struct hs_fmt_out *o, struct hs_buf *b,
		      const struct hs_fmt_gap *g)
{
	size_t before = b->len;

	if (o->kind != HS_FMT_JSON)
		return 0;
	json_open(o, b);
	PUT_LIT(b, "\"gap\":\"");
	hs_buf_append(b, hs_fmt_gap_name(g->kind),
		      strlen(hs_fmt_gap_name(g->kind)));
	PUT_LIT(b, "\",\"lo\":\"");
	put_lsn(b, g->lo);
	PUT_LIT(b, "\",\"hi\":\"");
	put_lsn(b, g->hi);
	PUT_LIT(b, "\"}\n");
	return b->len - before;
}

int hs_fmt_gap_str(char *buf, size_t n, const struct hs_fmt_gap *g)
{
	char lo[HS_POS_FMT_MAX], hi[HS_POS_FMT_MAX];
	int len;

	hs_lsn_fmt(lo, sizeof(lo), g->lo);
	hs_lsn_fmt(hi, sizeof(hi), g->hi);
	len = snprintf(buf, n, "%s %s..%s", hs_fmt_gap_name(g->kind), lo, hi);
	if (len < 0 || (size_t)len >= n)
		return -HS_ETOOBIG;
	return len;
}

void hs_fmt_out_free(struct hs_fmt_out *o)
{
	if (o->kind == HS_FMT_TEMPLATE)
		hs_fmt_template_free(&o->tpl);
	memset(o, 0, sizeof(*o));
}

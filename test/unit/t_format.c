/* t_format.c - record formats (format.h) and their codecs (json.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "format.h"
#include "json.h"
#include "tap.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(s) (const uint8_t *)(s), sizeof(s) - 1
#define LSN(e, n) ((uint64_t)(e) << 32 | (uint32_t)(n))
#define TS 1795687200123ULL /* 2026-11-26T10:00:00.123Z */

/* ---- helpers --------------------------------------------------------------
 */

struct got {
	size_t n, cap;
	struct hs_record *r;  /* data owned (copied) */
	const uint8_t *chunk; /* the last chunk fed, to detect borrowing */
	size_t chunk_len;
	size_t borrowed; /* records whose data pointed into the chunk */
	int stop_after;	 /* > 0: return -HS_EAGAIN after this many records */
};

static int collect(void *arg, const struct hs_record *r)
{
	struct got *g = arg;
	uint8_t *d = malloc(r->len ? r->len : 1);

	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->r = realloc(g->r, g->cap * sizeof(*g->r));
	}
	if (r->len)
		memcpy(d, r->data, r->len);
	if (g->chunk && r->data >= g->chunk &&
	    r->data + r->len <= g->chunk + g->chunk_len)
		g->borrowed++;
	g->r[g->n] = *r;
	g->r[g->n].data = d;
	g->n++;
	if (g->stop_after && (int)g->n >= g->stop_after)
		return -HS_EAGAIN;
	return 0;
}

static void got_free(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free((void *)g->r[i].data);
	free(g->r);
	memset(g, 0, sizeof(*g));
}

/* Feed p[0..n) in chunks of `step` bytes (0: random 1..64, SIZE_MAX: all at
 * once), then finish.  Returns the first error. */
static int feed(struct hs_fmt_in *in, const uint8_t *p, size_t n, size_t step,
		struct got *g)
{
	size_t i = 0, k;
	int rc;

	while (i < n) {
		k = step == 0 ? 1 + (size_t)rand() % 64 : step;
		if (k > n - i)
			k = n - i;
		g->chunk = p + i;
		g->chunk_len = k;
		rc = hs_fmt_in_feed(in, p + i, k, collect, g);
		if (rc)
			return rc;
		i += k;
	}
	g->chunk = NULL;
	return hs_fmt_in_finish(in, collect, g);
}

/* A chunk size for test names. */
static const char *step_name(size_t step)
{
	static char s[4][40];
	static int k;
	char *o = s[k++ % 4];

	if (step == SIZE_MAX)
		return "whole input";
	if (step == 0)
		return "random chunks";
	snprintf(o, sizeof(s[0]), "%zu-byte chunks", step);
	return o;
}

static int same_records(const struct got *g, const struct hs_record *want,
			size_t n, int check_ts)
{
	size_t i;

	if (g->n != n)
		return 0;
	for (i = 0; i < n; i++) {
		if (g->r[i].len != want[i].len ||
		    (want[i].len &&
		     memcmp(g->r[i].data, want[i].data, want[i].len)))
			return 0;
		if (check_ts && g->r[i].ts_ms != want[i].ts_ms)
			return 0;
		if (g->r[i].lsn != 0)
			return 0;
	}
	return 1;
}

/* s[0..n) with non-printing bytes as \xHH, for test names (static). */
static const char *vis(const char *s, size_t n)
{
	static char out[4][256];
	static int k;
	char *o = out[k++ % 4];
	size_t i, j = 0;

	for (i = 0; i < n && j < sizeof(out[0]) - 5; i++) {
		uint8_t c = (uint8_t)s[i];

		if (c >= 0x20 && c < 0x7f)
			o[j++] = (char)c;
		else
			j += (size_t)snprintf(o + j, 5, "\\x%02x", c);
	}
	o[j] = '\0';
	return o;
}

static int buf_is(const struct hs_buf *b, const char *s, size_t n)
{
	return b->len == n && (!n || !memcmp(b->data, s, n));
}

#define BUF_IS(b, lit) buf_is((b), (lit), sizeof(lit) - 1)

/* ---- base64 and UTF-8 -----------------------------------------------------
 */

static void test_base64(void)
{
	static const char *const vec[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	static const char *const bad[] = {
	    "Zg=",	"Zh==", "Zm9=", "Z===", "Zg==Zg==",
	    "Zm9v!A==", "Zg=a", "====", "Zm 9"};
	static const uint8_t all[] = {0xfb, 0xff, 0xbf, 0x00, 0x3e};
	struct hs_buf b = HS_BUF_INIT;
	size_t i, where;

	for (i = 0; i < N(vec); i++) {
		b.len = 0;
		hs_b64_encode(&b, (const uint8_t *)vec[i][0],
			      strlen(vec[i][0]));
		ok(buf_is(&b, vec[i][1], strlen(vec[i][1])),
		   "base64 '%s' = '%s'", vec[i][0], vec[i][1]);
		b.len = 0;
		is_int(hs_b64_decode(&b, (const uint8_t *)vec[i][1],
				     strlen(vec[i][1]), &where),
		       0, "base64 decode '%s'", vec[i][1]);
		ok(buf_is(&b, vec[i][0], strlen(vec[i][0])), "... gives '%s'",
		   vec[i][0]);
	}
	b.len = 0;
	hs_b64_encode(&b, all, sizeof(all));
	ok(BUF_IS(&b, "+/+/AD4="), "base64 uses + and /");
	for (i = 0; i < N(bad); i++) {
		b.len = 0;
		is_int(hs_b64_decode(&b, (const uint8_t *)bad[i],
				     strlen(bad[i]), &where),
		       -HS_EDATA, "base64 rejects '%s'", bad[i]);
	}
	hs_buf_free(&b);
}

static void test_utf8(void)
{
	static const struct {
		const char *s;
		size_t n;
		int valid;
		const char *name;
	} v[] = {
	    {"", 0, 1, "empty"},
	    {"h\xc3\xa9llo", 6, 1, "h\xc3\xa9llo"},
	    {"a\0b", 3, 1, "NUL"},
	    {"\xc2\x80", 2, 1, "U+0080"},
	    {"\xed\x9f\xbf", 3, 1, "U+D7FF"},
	    {"\xee\x80\x80", 3, 1, "U+E000"},
	    {"\xef\xbf\xbf", 3, 1, "U+FFFF"},
	    {"\xf0\x9f\x98\x80", 4, 1, "U+1F600"},
	    {"\xf4\x8f\xbf\xbf", 4, 1, "U+10FFFF"},
	    {"\xc0\x80", 2, 0, "overlong NUL"},
	    {"\xc1\xbf", 2, 0, "overlong 2-byte"},
	    {"\xe0\x80\xaf", 3, 0, "overlong 3-byte"},
	    {"\xf0\x80\x80\xaf", 4, 0, "overlong 4-byte"},
	    {"\xed\xa0\x80", 3, 0, "surrogate U+D800"},
	    {"\xed\xbf\xbf", 3, 0, "surrogate U+DFFF"},
	    {"\xf4\x90\x80\x80", 4, 0, "U+110000"},
	    {"\xf5\x80\x80\x80", 4, 0, "F5 lead"},
	    {"\x80", 1, 0, "lone continuation"},
	    {"\xe2\x82", 2, 0, "truncated 3-byte"},
	    {"a\xff", 2, 0, "0xff"},
	    {"\xc3\x28", 2, 0, "bad continuation"},
	};
	size_t i;

	for (i = 0; i < N(v); i++)
		is_int(hs_utf8_valid((const uint8_t *)v[i].s, v[i].n),
		       v[i].valid, "utf8 %s: %s",
		       v[i].valid ? "valid" : "invalid", v[i].name);
}

static void test_json_str(void)
{
	struct hs_buf b = HS_BUF_INIT;
	size_t where = 0;
	const char *why = NULL;

	hs_json_put_str(&b, S("a\"b\\c\n\t\r\b\f\x01\x1f\x7f/h\xc3\xa9"));
	ok(BUF_IS(&b,
		  "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f/h\xc3\xa9\""),
	   "json escapes only quote, backslash and controls");
	b.len = 0;
	is_int(hs_json_unescape(&b, S("\\u00e9\\ud83d\\ude00\\/\\u0000x"),
				&where, &why),
	       0, "json unescape \\u, surrogate pair, \\/, \\u0000");
	ok(BUF_IS(&b, "\xc3\xa9\xf0\x9f\x98\x80/\0x"), "... decodes to UTF-8");
	b.len = 0;
	is_int(hs_json_unescape(&b, S("ab\\ud800\\u0041"), &where, &why),
	       -HS_EDATA, "high surrogate + non-surrogate rejected");
	is_int(where, 2, "... at the escape");
	hs_buf_free(&b);
}

/* ---- output ---------------------------------------------------------------
 */

static void test_out(void)
{
	struct hs_fmt_out o;
	struct hs_buf b = HS_BUF_INIT;
	struct hs_record r = {LSN(3, 1207), 1764151200000ULL,
			      S("h\xc3\xa9llo")};
	struct hs_record bin = {LSN(3, 1208), 0, S("\xff\x00z")};
	struct hs_record empty = {0, 0, NULL, 0};
	struct hs_fmt_gap gap = {LSN(3, 5), LSN(3, 9), HS_FMT_GAP_HOLE};
	char s[64];

	hs_fmt_out_init(&o, HS_FMT_JSON, 0);
	hs_fmt_out_record(&o, &b, &r);
	ok(BUF_IS(&b, "{\"lsn\":\"e3n1207\",\"ts\":1764151200000,"
		      "\"data\":\"h\xc3\xa9llo\"}\n"),
	   "json record: UTF-8 stays readable");
	b.len = 0;
	hs_fmt_out_record(&o, &b, &bin);
	ok(BUF_IS(&b, "{\"lsn\":\"e3n1208\",\"data_b64\":\"/wB6\"}\n"),
	   "json record: binary is base64, ts 0 omitted");
	b.len = 0;
	hs_fmt_out_record(&o, &b, &empty);
	ok(BUF_IS(&b, "{\"data\":\"\"}\n"), "json record: empty, no lsn");
	b.len = 0;
	hs_fmt_out_set_stream(&o, "orders");
	hs_fmt_out_record(&o, &b, &r);
	ok(BUF_IS(&b, "{\"stream\":\"orders\",\"lsn\":\"e3n1207\",\"ts\":"
		      "1764151200000,"
		      "\"data\":\"h\xc3\xa9llo\"}\n"),
	   "json record with a stream name");
	b.len = 0;
	is_int(hs_fmt_out_gap(&o, &b, &gap), b.len,
	       "json gap: returns its length");
	ok(BUF_IS(&b, "{\"stream\":\"orders\",\"gap\":\"HOLE\",\"lo\":\"e3n5\","
		      "\"hi\":\"e3n9\"}\n"),
	   "json gap");
	hs_fmt_out_set_stream(&o, NULL);
	b.len = 0;
	gap.kind = HS_FMT_GAP_DATALOSS;
	hs_fmt_out_gap(&o, &b, &gap);
	ok(BUF_IS(&b,
		  "{\"gap\":\"DATALOSS\",\"lo\":\"e3n5\",\"hi\":\"e3n9\"}\n"),
	   "json gap without stream");
	hs_fmt_out_free(&o);

	b.len = 0;
	hs_fmt_out_init(&o, HS_FMT_NETSTRING, 0);
	hs_fmt_out_record(&o, &b, &r);
	hs_fmt_out_record(&o, &b, &empty);
	hs_fmt_out_record(&o, &b, &bin);
	ok(BUF_IS(&b, "6:h\xc3\xa9llo,0:,3:\xff\0z,"), "netstring records");
	is_int(hs_fmt_out_gap(&o, &b, &gap), 0,
	       "netstring: gaps write nothing");
	hs_fmt_out_free(&o);

	b.len = 0;
	hs_fmt_out_init(&o, HS_FMT_RAW, '\0');
	hs_fmt_out_record(&o, &b, &r);
	hs_fmt_out_record(&o, &b, &empty);
	ok(BUF_IS(&b, "h\xc3\xa9llo\0\0"), "raw records with -0");
	is_int(hs_fmt_out_gap(&o, &b, &gap), 0, "raw: gaps write nothing");
	hs_fmt_out_free(&o);
	is_int(hs_fmt_out_init(&o, HS_FMT_WHOLE, 0), -HS_EUSAGE,
	       "whole is not an output format");

	gap.kind = HS_FMT_GAP_BRIDGE;
	is_int(hs_fmt_gap_str(s, sizeof(s), &gap), 17, "gap_str length");
	is_str(s, "BRIDGE e3n5..e3n9", "gap_str text");
	is_str(hs_fmt_gap_name(HS_FMT_GAP_TRIM), "TRIM", "gap name TRIM");
	is_int(hs_fmt_gap_str(s, 5, &gap), -HS_ETOOBIG, "gap_str too small");
	hs_buf_free(&b);
}

static void test_rfc3339(void)
{
	static const struct {
		uint64_t ms;
		const char *s;
	} v[] = {
	    {0, "1970-01-01T00:00:00.000Z"},
	    {951782400000ULL, "2000-02-29T00:00:00.000Z"},
	    {1709251199999ULL, "2024-02-29T23:59:59.999Z"},
	    {TS, "2026-11-26T10:00:00.123Z"},
	    {253402300799999ULL, "9999-12-31T23:59:59.999Z"},
	    {253402300800000ULL, "10000-01-01T00:00:00.000Z"},
	};
	struct hs_buf b = HS_BUF_INIT;
	size_t i;

	for (i = 0; i < N(v); i++) {
		b.len = 0;
		hs_fmt_rfc3339_ms(&b, v[i].ms);
		ok(buf_is(&b, v[i].s, strlen(v[i].s)), "rfc3339 %llu = %s",
		   (unsigned long long)v[i].ms, v[i].s);
	}
	hs_buf_free(&b);
}

static void test_template(void)
{
	static const struct {
		const char *tpl;
		const char *why;
		size_t where;
	} bad[] = {
	    {"%l %q", "unknown directive", 3}, {"abc%", "'%' at the end", 3},
	    {"a\\qb", "unknown escape", 1},    {"\\x4", "unknown escape", 0},
	    {"\\x4g", "unknown escape", 0},    {"%p\\", "unknown escape", 2},
	};
	static const char want[] =
	    "e3n1207|12884903095|1795687200123|2026-11-26T10:00:00.123Z|"
	    "h\0\xffi|4|orders|%|\t\\A\0\n";
	struct hs_record r = {LSN(3, 1207), TS, S("h\0\xffi")};
	struct hs_fmt_out o;
	struct hs_buf b = HS_BUF_INIT;
	const char *why = NULL;
	size_t where = 99, i;

	is_int(
	    hs_fmt_out_init_template(
		&o, "%l|%L|%t|%T|%p|%s|%S|%%|\\t\\\\\\x41\\0\\n", &why, &where),
	    0, "template with every directive parses");
	hs_fmt_out_set_stream(&o, "orders");
	hs_fmt_out_record(&o, &b, &r);
	ok(BUF_IS(&b, want), "template renders every directive and escape");
	b.len = 0;
	hs_fmt_out_set_stream(&o, NULL);
	r.len = 0;
	hs_fmt_out_record(&o, &b, &r);
	ok(BUF_IS(&b,
		  "e3n1207|12884903095|1795687200123|2026-11-26T10:00:00.123Z|"
		  "|0||%|\t\\A\0\n"),
	   "template: empty payload, no stream");
	is_int(
	    hs_fmt_out_gap(&o, &b, &(struct hs_fmt_gap){1, 2, HS_FMT_GAP_HOLE}),
	    0, "template: gaps write nothing");
	hs_fmt_out_free(&o);

	b.len = 0;
	is_int(hs_fmt_out_init_template(&o, "", &why, &where), 0,
	       "empty template");
	hs_fmt_out_record(&o, &b, &r);
	is_int(b.len, 0, "... renders nothing");
	hs_fmt_out_free(&o);
	is_int(hs_fmt_out_init_template(&o, "%p", &why, &where), 0,
	       "%%p alone");
	r.len = 4;
	hs_fmt_out_record(&o, &b, &r);
	ok(BUF_IS(&b, "h\0\xffi"), "... is the payload, nothing added");
	hs_fmt_out_free(&o);

	for (i = 0; i < N(bad); i++) {
		why = NULL;
		where = 99;
		is_int(hs_fmt_out_init_template(&o, bad[i].tpl, &why, &where),
		       -HS_EUSAGE, "template '%s' rejected", bad[i].tpl);
		ok(why && !strncmp(why, bad[i].why, strlen(bad[i].why)),
		   "... because: %s", why ? why : "(null)");
		is_int(where, bad[i].where, "... at offset %zu", bad[i].where);
	}
	hs_buf_free(&b);
}

static void test_names(void)
{
	enum hs_fmt f = 0;
	uint8_t d = 0;

	is_int(hs_fmt_parse_name("json", &f), 0, "name json");
	is_int(f, HS_FMT_JSON, "... is HS_FMT_JSON");
	is_int(hs_fmt_parse_name("netstring", &f), 0, "name netstring");
	is_int(hs_fmt_parse_name("raw", &f), 0, "name raw");
	is_int(f, HS_FMT_RAW, "... is HS_FMT_RAW");
	is_int(hs_fmt_parse_name("JSON", &f), -HS_EUSAGE,
	       "names are lowercase");
	is_int(hs_fmt_parse_name("%p", &f), -HS_EUSAGE,
	       "a template is not a name");
	is_int(hs_fmt_parse_delim(",", &d), 0, "delim ','");
	is_int(d, ',', "... is ','");
	is_int(hs_fmt_parse_delim("\\t", &d), 0, "delim \\t");
	is_int(d, '\t', "... is TAB");
	is_int(hs_fmt_parse_delim("\\0", &d), 0, "delim \\0");
	is_int(d, 0, "... is NUL");
	is_int(hs_fmt_parse_delim("\\x1e", &d), 0, "delim \\x1e");
	is_int(d, 0x1e, "... is 0x1e");
	is_int(hs_fmt_parse_delim("\\\\", &d), 0, "delim \\\\");
	is_int(d, '\\', "... is a backslash");
	is_int(hs_fmt_parse_delim("", &d), -HS_EUSAGE, "empty delim rejected");
	is_int(hs_fmt_parse_delim("ab", &d), -HS_EUSAGE,
	       "two-byte delim rejected");
	is_int(hs_fmt_parse_delim("\\q", &d), -HS_EUSAGE,
	       "unknown escape rejected");
	is_int(hs_fmt_parse_delim("\\x1", &d), -HS_EUSAGE,
	       "short \\x rejected");
	is_int(hs_fmt_parse_delim("\\nx", &d), -HS_EUSAGE,
	       "escape + byte rejected");
}

/* ---- input: raw and whole -------------------------------------------------
 */

static void test_raw_in(void)
{
	static const size_t steps[] = {1, 2, 7, SIZE_MAX};
	struct hs_record want[] = {
	    {0, 0, S("a")}, {0, 0, S("")}, {0, 0, S("b")}};
	struct hs_fmt_in in;
	struct got g = {0};
	size_t i;

	for (i = 0; i < N(steps); i++) {
		hs_fmt_in_init(&in, HS_FMT_RAW, '\n', 0);
		is_int(feed(&in, S("a\n\nb\n"), steps[i], &g), 0,
		       "raw feed, %s", step_name(steps[i]));
		ok(same_records(&g, want, 3, 0),
		   "... 'a\\n\\nb\\n' is a, '', b");
		got_free(&g);
		is_int(feed(&in, S("a\n\nb"), steps[i], &g), 0,
		       "raw without final delimiter, %s", step_name(steps[i]));
		ok(same_records(&g, want, 3, 0), "... still three records");
		got_free(&g);
		hs_fmt_in_free(&in);
	}
	hs_fmt_in_init(&in, HS_FMT_RAW, '\n', 0);
	is_int(feed(&in, S(""), 1, &g), 0, "raw empty input");
	is_int(g.n, 0, "... is zero records");
	got_free(&g);
	is_int(feed(&in, S("\n"), 1, &g), 0, "raw '\\n'");
	ok(same_records(&g, want + 1, 1, 0), "... is one empty record");
	got_free(&g);
	is_int(feed(&in, S("a\nb\nc\n"), SIZE_MAX, &g), 0, "raw in one chunk");
	is_int(g.borrowed, 3,
	       "... every record borrowed from the chunk (no copy)");
	got_free(&g);
	hs_fmt_in_free(&in);

	hs_fmt_in_init(&in, HS_FMT_RAW, '\0', 0);
	is_int(feed(&in, S("a\0\0b\n\0"), 2, &g), 0, "raw -0");
	ok(g.n == 3 && g.r[2].len == 2 && !memcmp(g.r[2].data, "b\n", 2),
	   "... NUL-separated, '\\n' is data");
	got_free(&g);
	hs_fmt_in_free(&in);

	/* A callback error stops the feed and sticks. */
	hs_fmt_in_init(&in, HS_FMT_RAW, '\n', 0);
	g.stop_after = 2;
	is_int(hs_fmt_in_feed(&in, S("a\nb\nc\n"), collect, &g), -HS_EAGAIN,
	       "callback error is returned");
	is_int(g.n, 2, "... after the record that returned it");
	is_int(hs_fmt_in_finish(&in, collect, &g), -HS_EAGAIN,
	       "... and sticks");
	ok(hs_fmt_in_error(&in) == NULL, "... with no format message");
	got_free(&g);
	hs_fmt_in_free(&in);

	hs_fmt_in_init(&in, HS_FMT_WHOLE, 0, 0);
	is_int(feed(&in, S("a\nb\0\n"), 2, &g), 0, "whole");
	ok(g.n == 1 && g.r[0].len == 5 && !memcmp(g.r[0].data, "a\nb\0\n", 5),
	   "... is one record with every byte");
	got_free(&g);
	is_int(feed(&in, S(""), 1, &g), 0, "whole, second input empty");
	ok(g.n == 1 && g.r[0].len == 0, "... is one empty record");
	got_free(&g);
	hs_fmt_in_free(&in);
	is_int(hs_fmt_in_init(&in, HS_FMT_TEMPLATE, 0, 0), -HS_EUSAGE,
	       "template is not an input format");
}

/* ---- input: malformed netstrings ------------------------------------------
 */

static void test_netstring_bad(void)
{
	static const struct {
		const char *in;
		size_t n;
		size_t good; /* records delivered before the error */
		const char *msg;
	} v[] = {
	    {"01:a,", 5, 0, "byte 1: leading zero in netstring length"},
	    {"00:,", 4, 0, "byte 1: leading zero in netstring length"},
	    {"2:ab,1:ab", 9, 1,
	     "byte 8: expected ',' after the netstring payload"},
	    {"2:ab\n", 5, 0,
	     "byte 4: expected ',' after the netstring payload"},
	    {"x", 1, 0, "byte 0: expected a netstring length"},
	    {"1:a,\n", 5, 1, "byte 4: expected a netstring length"},
	    {"-1:", 3, 0, "byte 0: expected a netstring length"},
	    {":a,", 3, 0, "byte 0: expected a netstring length"},
	    {"1a:", 3, 0, "byte 1: expected ':' after the netstring length"},
	    {"1 :a,", 5, 0, "byte 1: expected ':' after the netstring length"},
	    {"3:ab", 4, 0, "byte 0: input ends inside this netstring"},
	    {"1:a,3:abc", 9, 1, "byte 4: input ends inside this netstring"},
	    {"12", 2, 0, "byte 0: input ends inside this netstring"},
	    {"0:", 2, 0, "byte 0: input ends inside this netstring"},
	    {"99999999999999999999999:", 24, 0, "record 1 is larger than"},
	};
	static const size_t steps[] = {1, 3, SIZE_MAX};
	struct hs_fmt_in in;
	struct got g = {0};
	size_t i, s;
	int rc;

	for (i = 0; i < N(v); i++) {
		for (s = 0; s < N(steps); s++) {
			const char *m;

			hs_fmt_in_init(&in, HS_FMT_NETSTRING, 0, 0);
			rc = feed(&in, (const uint8_t *)v[i].in, v[i].n,
				  steps[s], &g);
			m = hs_fmt_in_error(&in);
			ok(rc == (v[i].msg[0] == 'r' ? -HS_ETOOBIG
						     : -HS_EDATA) &&
			       g.n == v[i].good && m &&
			       !strncmp(m, v[i].msg, strlen(v[i].msg)),
			   "netstring '%s' %s: %s", vis(v[i].in, v[i].n),
			   step_name(steps[s]), v[i].msg);
			if (!m || strncmp(m, v[i].msg, strlen(v[i].msg)))
				printf("#   got rc %d, %zu records, '%s'\n", rc,
				       g.n, m ? m : "(null)");
			got_free(&g);
			hs_fmt_in_free(&in);
		}
	}
}

/* ---- input: JSON ----------------------------------------------------------
 */

static void test_json_in_ok(void)
{
	static const char in_text[] =
	    "{\"lsn\":\"e3n1207\",\"ts\":1764151200000,\"data\":"
	    "\"h\xc3\xa9llo\"}\n"
	    "\n"
	    "  { \"data\" : \"a\\u0000\\ud83d\\ude00\\n\" , \"ts\" : 0 }  \r\n"
	    "{\"stream\":\"s\",\"gap\":\"HOLE\",\"lo\":\"e3n5\",\"hi\":"
	    "\"e3n9\"}\n"
	    "{\"d\\u0061ta_b64\":\"/w\\/"
	    "6\",\"lsn\":[1,{\"x\":null},true,-1.5e3],"
	    "\"stream\":\"x\"}\n"
	    "{\"data\":\"\"}";
	struct hs_record want[] = {
	    {0, 1764151200000ULL, S("h\xc3\xa9llo")},
	    {0, 0, S("a\0\xf0\x9f\x98\x80\n")},
	    {0, 0, S("\xff\x0f\xfa")},
	    {0, 0, S("")},
	};
	static const size_t steps[] = {1, 7, 0, SIZE_MAX};
	struct hs_fmt_in in;
	struct got g = {0};
	size_t i;

	for (i = 0; i < N(steps); i++) {
		hs_fmt_in_init(&in, HS_FMT_JSON, 0, 0);
		is_int(feed(&in, S(in_text), steps[i], &g), 0,
		       "json input variety, %s", step_name(steps[i]));
		ok(same_records(&g, want, N(want), 1),
		   "... escapes, blank line, gap skipped, escaped key, ignored "
		   "values, last line without newline");
		if (hs_fmt_in_error(&in))
			printf("#   %s\n", hs_fmt_in_error(&in));
		got_free(&g);
		hs_fmt_in_free(&in);
	}
	hs_fmt_in_init(&in, HS_FMT_JSON, 0, 0);
	is_int(feed(&in, S("{\"data\":\"abc\"}\n{\"data\":\"x\\ty\"}\n"),
		    SIZE_MAX, &g),
	       0, "json in one chunk");
	is_int(g.borrowed, 1, "... a payload without escapes is borrowed");
	got_free(&g);
	hs_fmt_in_free(&in);
}

static void test_json_in_bad(void)
{
	static const struct {
		const char *line;
		const char *msg; /* after "line 2, column " */
	} v[] = {
	    {"not json", "1: expected '{'"},
	    {"[1]", "1: expected '{'"},
	    {"{\"data\":\"a\"", "12: unexpected end of line"},
	    {"{\"data\":\"a\"}x", "13: text after the object"},
	    {"{\"data\":\"a\"},", "13: text after the object"},
	    {"{\"data\":\"\\q\"}", "10: invalid escape"},
	    {"{\"data\":\"\\ud800\"}", "10: high surrogate without a low one"},
	    {"{\"data\":\"\\udc00\"}", "10: lone low surrogate"},
	    {"{\"data\":\"\\u12\"}", "10: bad \\u escape"},
	    {"{\"data\":\"\\u12g4\"}", "10: bad \\u escape"},
	    {"{\"data\":\"a\x01\"}", "11: control character in string"},
	    {"{\"data\":\"a\xff\"}", "11: invalid UTF-8"},
	    {"{\"data\":\"\xc0\x80\"}", "10: invalid UTF-8"},
	    {"{\"data\":\"\xed\xa0\x80\"}", "10: invalid UTF-8"},
	    {"{\"data\":\"a", "9: unterminated string"},
	    {"{\"data\":\"a\",\"data\":\"b\"}", "13: duplicate field"},
	    {"{\"foo\":1,\"data\":\"a\"}", "2: unknown field"},
	    {"{}", "1: no \"data\" or \"data_b64\" field"},
	    {"{\"ts\":5}", "1: no \"data\" or \"data_b64\" field"},
	    {"{\"data\":\"a\",\"data_b64\":\"YQ==\"}",
	     "1: both \"data\" and \"data_b64\""},
	    {"{\"data_b64\":\"YQ=\"}", "17: invalid base64"},
	    {"{\"data_b64\":\"Y!==\"}", "15: invalid base64"},
	    {"{\"data\":5}", "9: expected a string"},
	    {"{\"data\":\"a\",\"ts\":1.5}",
	     "18: \"ts\" must be a whole number"},
	    {"{\"data\":\"a\",\"ts\":-1}", "18: \"ts\" must be a whole number"},
	    {"{\"data\":\"a\",\"ts\":01}", "18: \"ts\" must be a whole number"},
	    {"{\"data\":\"a\",\"ts\":\"5\"}",
	     "18: \"ts\" must be a whole number"},
	    {"{\"data\":\"a\",\"ts\":99999999999999999999}",
	     "37: \"ts\" is too large"},
	    {"{\"data\":\"a\" \"ts\":1}", "13: expected ',' or '}'"},
	    {"{\"data\" \"a\"}", "9: expected ':'"},
	    {"{data:\"a\"}", "2: expected a string"},
	    {"{\"data\":\"a\",}", "13: expected a string"},
	    {"{\"data\":\"a\",\"lsn\":[1,{\"x\":tru}]}", "27: invalid literal"},
	    {"{\"data\":\"a\",\"lsn\":[1 2]}", "22: expected ',' or ']'"},
	    {"{\"data\":\"a\",\"lsn\":01}", "20: expected ',' or '}'"},
	    {"{\"data\":\"a\",\"lsn\":1.}", "21: invalid number"},
	    {"{\"data\":\"a\",\"lsn\":x}", "19: unexpected character"},
	    {"{\"data\":\"a\",\"stream\":\"\\x\"}", "23: invalid escape"},
	    {"{\"gap\":\"HOLE\",\"data\":\"a\"}", "1: a gap has no payload"},
	    {"{\"data\":\"a\",\"lo\":\"e1n1\"}",
	     "1: \"lo\" and \"hi\" belong to gaps"},
	};
	static const size_t steps[] = {1, SIZE_MAX};
	struct hs_fmt_in in;
	struct hs_buf b = HS_BUF_INIT;
	struct got g = {0};
	char want[128];
	size_t i, s;
	int rc;

	for (i = 0; i < N(v); i++) {
		snprintf(want, sizeof(want), "line 2, column %s", v[i].msg);
		for (s = 0; s < N(steps); s++) {
			const char *m;

			b.len = 0;
			hs_buf_append(&b, "{\"data\":\"ok\"}\n", 14);
			hs_buf_append(&b, v[i].line, strlen(v[i].line));
			hs_buf_append(&b, "\n{\"data\":\"after\"}\n", 18);
			hs_fmt_in_init(&in, HS_FMT_JSON, 0, 0);
			rc = feed(&in, b.data, b.len, steps[s], &g);
			m = hs_fmt_in_error(&in);
			ok(rc == -HS_EDATA && g.n == 1 && m &&
			       !strncmp(m, want, strlen(want)),
			   "json rejects '%s' (%s): %s",
			   vis(v[i].line, strlen(v[i].line)),
			   step_name(steps[s]), want);
			if (!m || strncmp(m, want, strlen(want)))
				printf("#   got rc %d, %zu records, '%s'\n", rc,
				       g.n, m ? m : "(null)");
			got_free(&g);
			hs_fmt_in_free(&in);
		}
	}
	/* A truncated last line (no newline) is an error at finish. */
	hs_fmt_in_init(&in, HS_FMT_JSON, 0, 0);
	is_int(feed(&in, S("{\"data\":\"ok\"}\n{\"data\":\"tr"), 5, &g),
	       -HS_EDATA, "json truncated at EOF");
	is_str(hs_fmt_in_error(&in), "line 2, column 9: unterminated string",
	       "... with its position");
	got_free(&g);
	hs_fmt_in_free(&in);
	hs_buf_free(&b);
}

/* ---- maximum record size --------------------------------------------------
 */

static void test_max(void)
{
	static const struct {
		enum hs_fmt kind;
		const char *in;
		size_t n;
		size_t good;
		const char *msg;
	} v[] = {
	    {HS_FMT_RAW, "abc\n\nabcd\nx\n", 12, 2,
	     "record 3 is larger than 3 bytes"},
	    {HS_FMT_RAW, "abc\nabcdefgh", 12, 1,
	     "record 2 is larger than 3 bytes"},
	    {HS_FMT_NETSTRING, "3:abc,0:,4:abcd,", 16, 2, "record 3 is larger"},
	    {HS_FMT_NETSTRING, "3:abc,10:", 9, 1, "record 2 is larger"},
	    {HS_FMT_NETSTRING, "3:abc,9", 7, 1, "record 2 is larger"},
	    {HS_FMT_JSON, "{\"data\":\"abc\"}\n{\"data_b64\":\"YWJjZA==\"}\n",
	     40, 1, "record 2 is larger"},
	    {HS_FMT_JSON,
	     "{\"data\":\"\\u0000\\u0000\\u0000\"}\n{\"data\":\"abcd\"}", 45, 1,
	     "record 2 is larger"},
	    {HS_FMT_WHOLE, "abcd", 4, 0, "record 1 is larger than 3 bytes"},
	};
	static const size_t steps[] = {1, SIZE_MAX};
	struct hs_fmt_in in;
	struct got g = {0};
	size_t i, s;
	int rc;

	for (i = 0; i < N(v); i++) {
		for (s = 0; s < N(steps); s++) {
			const char *m;

			hs_fmt_in_init(&in, v[i].kind, '\n', 3);
			rc = feed(&in, (const uint8_t *)v[i].in, v[i].n,
				  steps[s], &g);
			m = hs_fmt_in_error(&in);
			ok(rc == -HS_ETOOBIG && g.n == v[i].good && m &&
			       !strncmp(m, v[i].msg, strlen(v[i].msg)),
			   "max 3, format %d, '%s' %s: %zu records, then %s",
			   v[i].kind, vis(v[i].in, v[i].n), step_name(steps[s]),
			   v[i].good, v[i].msg);
			if (!m || strncmp(m, v[i].msg, strlen(v[i].msg)) ||
			    g.n != v[i].good)
				printf("#   got rc %d, %zu records, '%s'\n", rc,
				       g.n, m ? m : "(null)");
			got_free(&g);
			hs_fmt_in_free(&in);
		}
	}
	/* The over-size record is refused before it is all buffered. */
	hs_fmt_in_init(&in, HS_FMT_RAW, '\n', 3);
	is_int(hs_fmt_in_feed(&in, S("ab"), collect, &g), 0,
	       "raw partial 2 bytes");
	is_int(hs_fmt_in_feed(&in, S("cd"), collect, &g), -HS_ETOOBIG,
	       "... 4th byte without a delimiter fails at once");
	got_free(&g);
	hs_fmt_in_free(&in);
	/* A json line is bounded too, before its newline arrives. */
	hs_fmt_in_init(&in, HS_FMT_JSON, 0, 1);
	{
		static uint8_t line[5000];

		memset(line, ' ', sizeof(line));
		is_int(hs_fmt_in_feed(&in, line, sizeof(line), collect, &g),
		       -HS_ETOOBIG, "json line too long for max_record 1");
		ok(hs_fmt_in_error(&in) && !strncmp(hs_fmt_in_error(&in),
						    "line 1: longer than", 19),
		   "... says which line: %s", hs_fmt_in_error(&in));
	}
	got_free(&g);
	hs_fmt_in_free(&in);
	/* Each input starts again at line 1. */
	hs_fmt_in_init(&in, HS_FMT_JSON, 0, 0);
	is_int(feed(&in, S("{\"data\":\"a\"}\n"), 1, &g), 0,
	       "json first input");
	is_int(feed(&in, S("{}"), 1, &g), -HS_EDATA, "json second input bad");
	is_str(hs_fmt_in_error(&in),
	       "line 1, column 1: no \"data\" or \"data_b64\" field",
	       "... line numbers restart per input");
	got_free(&g);
	hs_fmt_in_free(&in);
	hs_fmt_in_init(&in, HS_FMT_RAW, '\n', 3);
	is_int(feed(&in, S("abc\n"), 1, &g), 0,
	       "exactly max_record bytes is fine");
	got_free(&g);
	hs_fmt_in_free(&in);
}

/* ---- round trips ----------------------------------------------------------
 */

static void fill_random(uint8_t *p, size_t n, int kind)
{
	static const char *const text[] = {
	    "h\xc3\xa9llo",	" ", "\"",   "\\",	     "\n", "\t",
	    "\xf0\x9f\x98\x80", "x", "\x01", "\xe2\x82\xac", "/",  "\x7f"};
	size_t i = 0;

	if (kind == 0) { /* arbitrary bytes: NUL, 0xff, invalid UTF-8 */
		for (i = 0; i < n; i++)
			p[i] = (uint8_t)rand();
		return;
	}
	/* Valid UTF-8 with characters that need escaping. */
	while (i < n) {
		const char *t = text[rand() % N(text)];
		size_t l = strlen(t);

		if (l > n - i)
			t = "a", l = 1;
		memcpy(p + i, t, l);
		i += l;
	}
}

/* Build a record set: fixed corner cases plus random ones. */
static size_t make_records(struct hs_record *r, uint8_t **store, size_t max,
			   int big)
{
	static const struct {
		const char *s;
		size_t n;
	} fixed[] = {
	    {"", 0},
	    {"\0", 1},
	    {"\xff", 1},
	    {"a\0b", 3},
	    {"\xc0\x80", 2},
	    {"\xed\xa0\x80", 3},
	    {"h\xc3\xa9llo", 6},
	    {"\\u0041\"", 7},
	    {"1:a,", 4},
	    {"{\"data\":1}", 10},
	    {"\r", 1},
	    {"", 0},
	};
	size_t n = 0, i, len;

	for (i = 0; i < N(fixed) && n < max; i++, n++) {
		store[n] = malloc(fixed[i].n + 1);
		memcpy(store[n], fixed[i].s, fixed[i].n);
		r[n] = (struct hs_record){0, n * 1000, store[n], fixed[i].n};
	}
	while (n < max) {
		len = (size_t)rand() % 300;
		if (big && n == max - 1)
			len = 1 << 20; /* 1 MiB */
		else if (big && n == max - 2)
			len = (1 << 20) - 1;
		store[n] = malloc(len + 1);
		/* The two 1 MiB records: one binary, one escaped text. */
		fill_random(store[n], len,
			    big && n == max - 1	  ? 0
			    : big && n == max - 2 ? 1
						  : rand() % 2);
		r[n] =
		    (struct hs_record){0, (uint64_t)rand() * 7, store[n], len};
		n++;
	}
	return n;
}

static void round_trip(enum hs_fmt kind, uint8_t delim, int big)
{
	enum { NREC = 60 };
	static const size_t steps[] = {1, 7, 0, SIZE_MAX};
	struct hs_record r[NREC];
	uint8_t *store[NREC];
	struct hs_fmt_out o;
	struct hs_fmt_in in;
	struct hs_buf b = HS_BUF_INIT;
	struct got g = {0};
	size_t n, i, s, k;
	const char *name = kind == HS_FMT_JSON	      ? "json"
			   : kind == HS_FMT_NETSTRING ? "netstring"
			   : delim		      ? "raw"
						      : "raw -0";

	n = make_records(r, store, NREC, big);
	if (kind == HS_FMT_RAW) /* raw cannot carry its own delimiter */
		for (i = 0; i < n; i++)
			for (k = 0; k < r[i].len; k++)
				if (store[i][k] == delim)
					store[i][k] = 'D';
	hs_fmt_out_init(&o, kind, delim);
	for (i = 0; i < n; i++) {
		r[i].lsn = LSN(2, i + 1);
		hs_fmt_out_record(&o, &b, &r[i]);
		r[i].lsn = 0; /* input never knows the LSN */
	}
	hs_fmt_out_free(&o);
	for (s = 0; s < N(steps); s++) {
		/* 1-byte steps over 2 MiB of json are slow and add nothing
		 * over 7-byte ones. */
		if (big && steps[s] == 1)
			continue;
		hs_fmt_in_init(&in, kind, delim, 1 << 20);
		is_int(feed(&in, b.data, b.len, steps[s], &g), 0,
		       "%s round trip%s, %s: no error", name,
		       big ? " (1 MiB records)" : "", step_name(steps[s]));
		if (hs_fmt_in_error(&in))
			printf("#   %s\n", hs_fmt_in_error(&in));
		ok(same_records(&g, r, n, kind == HS_FMT_JSON),
		   "... the same %zu records back", n);
		got_free(&g);
		hs_fmt_in_free(&in);
	}
	for (i = 0; i < n; i++)
		free(store[i]);
	hs_buf_free(&b);
}

static void test_round_trips(void)
{
	round_trip(HS_FMT_RAW, '\n', 0);
	round_trip(HS_FMT_RAW, '\0', 0);
	round_trip(HS_FMT_NETSTRING, 0, 0);
	round_trip(HS_FMT_JSON, 0, 0);
	round_trip(HS_FMT_RAW, '\n', 1);
	round_trip(HS_FMT_NETSTRING, 0, 1);
	round_trip(HS_FMT_JSON, 0, 1);
}

/* Every split point of a small json and netstring stream, fed as two
 * chunks: boundaries inside lengths, escapes and surrogate pairs. */
static void test_every_split(void)
{
	static const char js[] =
	    "{\"ts\":12,\"data\":\"a\\\"\\\\\\u00e9\\ud83d\\ude00\\n\"}\n"
	    "{\"data_b64\":\"/wB6\"}\n";
	static const char ns[] = "12:hello world!,0:,3:\xff\0z,";
	struct hs_fmt_in in;
	struct got g = {0};
	size_t cut, bad_js = 0, bad_ns = 0;

	for (cut = 0; cut <= sizeof(js) - 1; cut++) {
		hs_fmt_in_init(&in, HS_FMT_JSON, 0, 0);
		if (hs_fmt_in_feed(&in, (const uint8_t *)js, cut, collect,
				   &g) ||
		    hs_fmt_in_feed(&in, (const uint8_t *)js + cut,
				   sizeof(js) - 1 - cut, collect, &g) ||
		    hs_fmt_in_finish(&in, collect, &g) || g.n != 2 ||
		    g.r[0].ts_ms != 12 || g.r[0].len != 10 ||
		    memcmp(g.r[0].data, "a\"\\\xc3\xa9\xf0\x9f\x98\x80\n",
			   10) ||
		    g.r[1].len != 3 || memcmp(g.r[1].data, "\xff\0z", 3))
			bad_js++;
		got_free(&g);
		hs_fmt_in_free(&in);
	}
	is_int(bad_js, 0, "json split at each of %zu points", sizeof(js));
	for (cut = 0; cut <= sizeof(ns) - 1; cut++) {
		hs_fmt_in_init(&in, HS_FMT_NETSTRING, 0, 0);
		if (hs_fmt_in_feed(&in, (const uint8_t *)ns, cut, collect,
				   &g) ||
		    hs_fmt_in_feed(&in, (const uint8_t *)ns + cut,
				   sizeof(ns) - 1 - cut, collect, &g) ||
		    hs_fmt_in_finish(&in, collect, &g) || g.n != 3 ||
		    g.r[0].len != 12 || g.r[1].len != 0 || g.r[2].len != 3 ||
		    memcmp(g.r[2].data, "\xff\0z", 3))
			bad_ns++;
		got_free(&g);
		hs_fmt_in_free(&in);
	}
	is_int(bad_ns, 0, "netstring split at each of %zu points", sizeof(ns));
}

int main(void)
{
	srand(20261126);
	test_base64();
	test_utf8();
	test_json_str();
	test_out();
	test_rfc3339();
	test_template();
	test_names();
	test_raw_in();
	test_netstring_bad();
	test_json_in_ok();
	test_json_in_bad();
	test_max();
	test_round_trips();
	test_every_split();
	return tap_done();
}

/* t_pos.c - positions and ranges (pos.h). */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "err.h"
#include "pos.h"
#include "tap.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1795687200000LL /* 2026-11-26T10:00:00Z, the fixed "now" */
#define L(e, n) ((uint64_t)(e) << 32 | (uint32_t)(n))
#define U64MAX 18446744073709551615ULL

enum {
	BAD = 0,
	LSN = HS_POS_LSN,
	HEAD = HS_POS_HEAD,
	TAIL = HS_POS_TAIL,
	TIME = HS_POS_TIME
};

/* One expected position: kind and the value of its field (lsn, offset or
 * time_ms, by kind). */
struct want {
	int kind;
	int64_t v;
	uint64_t lsn;
};

/* clang-format off */
#define NO { BAD, 0, 0 }
/* clang-format on */

static const struct {
	const char *in;
	struct want w;
} pos_rows[] = {
    /* LSNs */
    {"e3n1207", {LSN, 0, L(3, 1207)}},
    {"e1n1", {LSN, 0, L(1, 1)}},
    {"e03n007", {LSN, 0, L(3, 7)}},
    {"e4294967295n4294967295", {LSN, 0, U64MAX}},
    {"e4294967295n1", {LSN, 0, L(4294967295u, 1)}},
    {"e1n4294967295", {LSN, 0, L(1, 4294967295u)}},
    {"4294967297", {LSN, 0, L(1, 1)}},
    {"12884903095", {LSN, 0, L(3, 1207)}},
    {"18446744073709551615", {LSN, 0, U64MAX}},
    {"e4294967296n1", NO},
    {"e1n4294967296", NO},
    {"e0n5", NO},
    {"e3n0", NO},
    {"e0n0", NO},
    {"e3n", NO},
    {"en5", NO},
    {"e3", NO},
    {"e", NO},
    {"e3n5x", NO},
    {"e3n5n6", NO},
    {"E3N5", NO},
    {"e-3n5", NO},
    {"e3n-5", NO},
    {"e3n+5", NO},
    {"e99999999999999999999n1", NO},
    {"0", NO},
    {"5", NO},		/* epoch 0 */
    {"4294967296", NO}, /* e1n0 */
    {"18446744073709551616", NO},
    {"-1", NO},
    {"12x", NO},
    /* head and tail */
    {"head", {HEAD, 0, 0}},
    {"tail", {TAIL, 0, 0}},
    {"head+0", {HEAD, 0, 0}},
    {"head+10", {HEAD, 10, 0}},
    {"tail-0", {TAIL, 0, 0}},
    {"tail-100", {TAIL, -100, 0}},
    {"head+9223372036854775807", {HEAD, INT64_MAX, 0}},
    {"tail-9223372036854775807", {TAIL, -INT64_MAX, 0}},
    {"head+9223372036854775808", NO},
    {"tail-9223372036854775808", NO},
    {"head-5", NO},
    {"tail+5", NO},
    {"head+", NO},
    {"tail-", NO},
    {"head+x", NO},
    {"head+5x", NO},
    {"head++5", NO},
    {"heads", NO},
    {"Head", NO},
    {"TAIL", NO},
    {"head +1", NO},
    {"hea", NO},
    /* RFC 3339 */
    {"@2026-11-26T10:00:00Z", {TIME, NOW, 0}},
    {"@2026-11-26t10:00:00z", {TIME, NOW, 0}},
    {"@2026-11-26T15:30:00+05:30", {TIME, NOW, 0}},
    {"@2026-11-26T02:00:00-08:00", {TIME, NOW, 0}},
    {"@2026-11-25T23:00:00-11:00", {TIME, NOW, 0}},
    {"@2026-11-26T10:00:00+00:00", {TIME, NOW, 0}},
    {"@2026-11-26T10:00:00-00:00", {TIME, NOW, 0}},
    {"@2026-11-27T09:59:00+23:59", {TIME, NOW, 0}},
    {"@2026-11-26T10:00:00.123Z", {TIME, NOW + 123, 0}},
    {"@2026-11-26T10:00:00.1Z", {TIME, NOW + 100, 0}},
    {"@2026-11-26T10:00:00.12Z", {TIME, NOW + 120, 0}},
    {"@2026-11-26T10:00:00.123999Z", {TIME, NOW + 123, 0}},
    {"@2026-11-26T15:30:00.5+05:30", {TIME, NOW + 500, 0}},
    {"@2026-11-26T10:00:60Z", {TIME, NOW + 60000, 0}}, /* leap second */
    {"@1970-01-01T00:00:00Z", {TIME, 0, 0}},
    {"@1969-12-31T23:59:59Z", {TIME, -1000, 0}},
    {"@2000-01-01T00:00:00Z", {TIME, 946684800000LL, 0}},
    {"@2024-02-29T12:00:00Z", {TIME, 1709208000000LL, 0}},
    {"@2000-02-29T00:00:00Z", {TIME, 951782400000LL, 0}},
    {"@2025-11-26T10:00:00Z", {TIME, 1764151200000LL, 0}},
    {"@2026-12-31T23:59:59.999Z", {TIME, 1798761599999LL, 0}},
    {"@0000-01-01T00:00:00Z", {TIME, -62167219200000LL, 0}},
    {"@9999-12-31T23:59:59.999Z", {TIME, 253402300799999LL, 0}},
    {"@2023-02-29T00:00:00Z", NO},
    {"@1900-02-29T00:00:00Z", NO},
    {"@2026-02-30T00:00:00Z", NO},
    {"@2026-04-31T00:00:00Z", NO},
    {"@2026-13-01T00:00:00Z", NO},
    {"@2026-00-10T00:00:00Z", NO},
    {"@2026-11-00T00:00:00Z", NO},
    {"@2026-11-26T24:00:00Z", NO},
    {"@2026-11-26T10:60:00Z", NO},
    {"@2026-11-26T10:00:61Z", NO},
    {"@2026-11-26T10:00:00", NO},
    {"@2026-11-26T10:00:00.Z", NO},
    {"@2026-11-26T10:00Z", NO},
    {"@2026-11-26", NO},
    {"@2026-11-26 10:00:00Z", NO},
    {"@2026-11-26T10:00:00+05:3", NO},
    {"@2026-11-26T10:00:00+0530", NO},
    {"@2026-11-26T10:00:00+24:00", NO},
    {"@2026-11-26T10:00:00+05:60", NO},
    {"@2026-11-26T10:00:00Zjunk", NO},
    {"@26-11-26T10:00:00Z", NO},
    {"@2026-1-26T10:00:00Z", NO},
    /* unix ms and relative */
    {"@1795687200000", {TIME, NOW, 0}},
    {"@0", {TIME, 0, 0}},
    {"@253402300799999", {TIME, 253402300799999LL, 0}},
    {"@253402300800000", NO},
    {"@9223372036854775808", NO},
    {"@-1h", {TIME, NOW - 3600000, 0}},
    {"@-30s", {TIME, NOW - 30000, 0}},
    {"@-250ms", {TIME, NOW - 250, 0}},
    {"@-1h30m", {TIME, NOW - 5400000, 0}},
    {"@-7d", {TIME, NOW - 604800000LL, 0}},
    {"@+0s", {TIME, NOW, 0}},
    {"@-0", {TIME, NOW, 0}},
    {"@+2m", {TIME, NOW + 120000, 0}},
    {"@-5", NO},
    {"@-", NO},
    {"@+", NO},
    {"@--1h", NO},
    {"@-1x", NO},
    {"@-1000000000d", NO},
    {"@", NO},
    {"@abc", NO},
    {"@now", NO},
    {"@12x", NO},
    /* junk */
    {"", NO},
    {"x", NO},
    {" head", NO},
    {"e3n5 ", NO},
    {"now", NO},
    {"e3n5..e3n9", NO},
};

static int same(const struct hs_pos *p, const struct want *w)
{
	if ((int)p->kind != w->kind)
		return 0;
	switch (w->kind) {
	case LSN:
		return p->lsn == w->lsn;
	case HEAD:
	case TAIL:
		return p->offset == w->v;
	case TIME:
		return p->time_ms == w->v;
	}
	return 0;
}

static void pos_tests(void)
{
	char buf[HS_POS_FMT_MAX];

	for (size_t i = 0; i < N(pos_rows); i++) {
		const char *in = pos_rows[i].in;
		const struct want *w = &pos_rows[i].w;
		struct hs_pos p = {.kind = 99}, q;
		int r = hs_pos_parse(in, NOW, &p);

		if (w->kind == BAD) {
			is_int(r, -HS_EUSAGE, "pos '%s' refused", in);
			ok(p.kind == 99, "pos '%s' leaves *out alone", in);
			ok(hs_pos_error(in, NOW) != NULL,
			   "pos '%s' has a reason: %s", in,
			   hs_pos_error(in, NOW));
			continue;
		}
		is_int(r, 0, "pos '%s' parses", in);
		ok(same(&p, w),
		   "pos '%s' value (kind %d lsn %llu off %lld t %lld)", in,
		   p.kind, (unsigned long long)p.lsn, (long long)p.offset,
		   (long long)p.time_ms);
		ok(hs_pos_error(in, NOW) == NULL, "pos '%s' has no error", in);
		r = hs_pos_fmt(buf, sizeof(buf), &p);
		ok(r > 0 && !hs_pos_parse(buf, 0, &q) && same(&q, w),
		   "pos '%s' formats as '%s' and parses back", in, buf);
	}
}

static void fmt_tests(void)
{
	static const struct {
		struct hs_pos p;
		const char *want;
	} rows[] = {
	    {{.kind = HS_POS_LSN, .lsn = L(3, 1207)}, "e3n1207"},
	    {{.kind = HS_POS_LSN, .lsn = U64MAX}, "e4294967295n4294967295"},
	    {{.kind = HS_POS_HEAD}, "head"},
	    {{.kind = HS_POS_HEAD, .offset = 10}, "head+10"},
	    {{.kind = HS_POS_TAIL}, "tail"},
	    {{.kind = HS_POS_TAIL, .offset = -100}, "tail-100"},
	    {{.kind = HS_POS_TAIL, .offset = INT64_MIN},
	     "tail-9223372036854775808"},
	    {{.kind = HS_POS_TIME, .time_ms = NOW}, "@2026-11-26T10:00:00Z"},
	    {{.kind = HS_POS_TIME, .time_ms = NOW + 7},
	     "@2026-11-26T10:00:00.007Z"},
	    {{.kind = HS_POS_TIME, .time_ms = -1}, "@1969-12-31T23:59:59.999Z"},
	    {{.kind = HS_POS_TIME, .time_ms = 951782400000LL},
	     "@2000-02-29T00:00:00Z"},
	};
	struct hs_pos bad = {.kind = 42};
	char buf[HS_POS_FMT_MAX];

	for (size_t i = 0; i < N(rows); i++) {
		int r = hs_pos_fmt(buf, sizeof(buf), &rows[i].p);

		is_int(r, strlen(rows[i].want), "fmt '%s' length",
		       rows[i].want);
		is_str(buf, rows[i].want, "fmt '%s'", rows[i].want);
	}
	is_int(hs_pos_fmt(buf, 4, &rows[0].p), -HS_ETOOBIG,
	       "fmt into a small buffer");
	is_int(hs_pos_fmt(buf, sizeof(buf), &bad), -HS_EUSAGE,
	       "fmt a bad kind");
	bad = (struct hs_pos){.kind = HS_POS_TIME, .time_ms = INT64_MAX};
	is_int(hs_pos_fmt(buf, sizeof(buf), &bad), -HS_EUSAGE,
	       "fmt a time past 9999");
	is_int(hs_lsn_fmt(buf, sizeof(buf), L(3, 1207)), 7, "lsn_fmt length");
	is_str(buf, "e3n1207", "lsn_fmt");
	is_int(hs_lsn_fmt(buf, 7, L(3, 1207)), -HS_ETOOBIG,
	       "lsn_fmt too small");
}

static void lsn_tests(void)
{
	static const struct {
		const char *in;
		uint64_t want;
	} rows[] = {
	    {"e3n1207", L(3, 1207)},
	    {"12884903095", L(3, 1207)},
	    {"e4294967295n4294967295", U64MAX},
	    {"e1n1", L(1, 1)},
	    {"head", 0},
	    {"tail", 0},
	    {"@0", 0},
	    {"e0n1", 0},
	    {"e1n0", 0},
	    {"0", 0},
	    {"", 0},
	    {"e3n5..", 0},
	};
	uint64_t v;

	for (size_t i = 0; i < N(rows); i++) {
		v = 77;
		if (rows[i].want) {
			is_int(hs_lsn_parse(rows[i].in, &v), 0, "lsn '%s'",
			       rows[i].in);
			ok(v == rows[i].want, "lsn '%s' value", rows[i].in);
		} else {
			is_int(hs_lsn_parse(rows[i].in, &v), -HS_EUSAGE,
			       "lsn '%s' refused", rows[i].in);
			ok(v == 77, "lsn '%s' leaves *out alone", rows[i].in);
		}
	}
	is_int(hs_lsn_parse(NULL, &v), -HS_EUSAGE, "lsn NULL refused");
}

static void error_tests(void)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
	    {"e0n5", "epoch must be 1..4294967295"},
	    {"e3n0", "esn must be 1..4294967295"},
	    {"4294967296", "esn must be 1..4294967295"},
	    {"0", "LSN 0 is invalid (the first LSN is e1n1)"},
	    {"@2026-02-30T00:00:00Z", "no such date"},
	    {"@2026-11-26T25:00:00Z", "no such time of day"},
	    {"@2026-11-26T10:00:00",
	     "a time needs 'Z' or an offset like +05:30"},
	    {"head-1", "head counts forward: use head+N"},
	    {"tail+1", "tail counts backward: use tail-N"},
	    {"", "empty position"},
	    {"18446744073709551616",
	     "LSN out of range (the largest is 18446744073709551615)"},
	    {"e99999999999999999999n1", "epoch must be 1..4294967295"},
	    {"e1n99999999999999999999", "esn must be 1..4294967295"},
	    {"@9223372036854775808", "time out of range (years 0000 to 9999)"},
	    {"@-1000000000d", "time out of range (years 0000 to 9999)"},
	    {"@2026-11-26T10:00:00.Z",
	     "expected digits after the '.' of the seconds"},
	};

	for (size_t i = 0; i < N(rows); i++)
		is_str(hs_pos_error(rows[i].in, NOW), rows[i].want,
		       "reason for '%s'", rows[i].in);
	is_str(hs_range_error("e3n9..e3n5", NOW),
	       "the range ends before it starts",
	       "reason for an inverted range");
	is_str(hs_range_error("e3n5..e3n6..e3n7", NOW),
	       "a range has one '..': FROM..TO", "reason for two separators");
	ok(hs_range_error("e3n5..", NOW) == NULL,
	   "no reason for a valid range");
}

static const struct {
	const char *in;
	struct want from, to;
	int has_to;
} range_rows[] = {
    {"e3n5..e3n9", {LSN, 0, L(3, 5)}, {LSN, 0, L(3, 9)}, 1},
    {"e3n5..e3n5", {LSN, 0, L(3, 5)}, {LSN, 0, L(3, 5)}, 1},
    {"e3n5..", {LSN, 0, L(3, 5)}, {TAIL, 0, 0}, 0},
    {"e3n5", {LSN, 0, L(3, 5)}, {TAIL, 0, 0}, 0},
    {"..e3n9", {HEAD, 0, 0}, {LSN, 0, L(3, 9)}, 1},
    {"..", {HEAD, 0, 0}, {TAIL, 0, 0}, 0},
    {"head..tail", {HEAD, 0, 0}, {TAIL, 0, 0}, 1},
    {"head+10..tail-10", {HEAD, 10, 0}, {TAIL, -10, 0}, 1},
    {"tail-100..", {TAIL, -100, 0}, {TAIL, 0, 0}, 0},
    {"tail-100", {TAIL, -100, 0}, {TAIL, 0, 0}, 0},
    {"tail-5..tail-1", {TAIL, -5, 0}, {TAIL, -1, 0}, 1},
    {"head..head+5", {HEAD, 0, 0}, {HEAD, 5, 0}, 1},
    {"e1n1..e4294967295n4294967295", {LSN, 0, L(1, 1)}, {LSN, 0, U64MAX}, 1},
    {"4294967297..12884903095", {LSN, 0, L(1, 1)}, {LSN, 0, L(3, 1207)}, 1},
    {"@2026-11-26T10:00:00Z..tail", {TIME, NOW, 0}, {TAIL, 0, 0}, 1},
    {"@2026-11-26T10:00:00Z..", {TIME, NOW, 0}, {TAIL, 0, 0}, 0},
    {"@2026-11-26T10:00:00.5Z..@2026-11-26T11:00:00.25Z",
     {TIME, NOW + 500, 0},
     {TIME, NOW + 3600250, 0},
     1},
    {"@2026-11-26T15:30:00.5+05:30..", {TIME, NOW + 500, 0}, {TAIL, 0, 0}, 0},
    {"..@2026-11-26T10:00:00.999Z", {HEAD, 0, 0}, {TIME, NOW + 999, 0}, 1},
    {"@-1h..", {TIME, NOW - 3600000, 0}, {TAIL, 0, 0}, 0},
    {"@-1h", {TIME, NOW - 3600000, 0}, {TAIL, 0, 0}, 0},
    {"@-1h..@+0s", {TIME, NOW - 3600000, 0}, {TIME, NOW, 0}, 1},
    {"@-2h..@-1h", {TIME, NOW - 7200000, 0}, {TIME, NOW - 3600000, 0}, 1},
    {"@1795687200000..e9n1", {TIME, NOW, 0}, {LSN, 0, L(9, 1)}, 1},
    {"e9n1..@-1h", {LSN, 0, L(9, 1)}, {TIME, NOW - 3600000, 0}, 1},
    {"tail..head",
     {TAIL, 0, 0},
     {HEAD, 0, 0},
     1}, /* kinds differ: the server decides */
    {"e3n9..e3n5", NO, NO, 0},
    {"tail-1..tail-5", NO, NO, 0},
    {"head+9..head+5", NO, NO, 0},
    {"@+0s..@-1h", NO, NO, 0},
    {"e3n5...e3n9", NO, NO, 0},
    {"e3n5....e3n9", NO, NO, 0},
    {"e3n5..e3n9..e4n1", NO, NO, 0},
    {"...", NO, NO, 0},
    {"....", NO, NO, 0},
    {"", NO, NO, 0},
    {"x..", NO, NO, 0},
    {"..x", NO, NO, 0},
    {"e3n5 ..e3n9", NO, NO, 0},
    {"e3n5.. e3n9", NO, NO, 0},
    {"e3n5.e3n9", NO, NO, 0},
    {"0..e3n9", NO, NO, 0},
    {"e3n5..0", NO, NO, 0},
    {"@2026-11-26T10:00:00.Z..tail", NO, NO, 0},
    {"@2026-11-26T10:00:00..tail", NO, NO, 0},
    {"e3n5..@-", NO, NO, 0},
    {"head-1..", NO, NO, 0},
};

static void range_tests(void)
{
	char longpos[300];

	for (size_t i = 0; i < N(range_rows); i++) {
		const char *in = range_rows[i].in;
		struct hs_pos f = {.kind = 99}, t = {.kind = 99};
		int has_to = 7;
		int r = hs_range_parse(in, NOW, &f, &t, &has_to);

		if (range_rows[i].from.kind == BAD) {
			is_int(r, -HS_EUSAGE, "range '%s' refused", in);
			ok(f.kind == 99 && t.kind == 99 && has_to == 7,
			   "range '%s' leaves outputs alone", in);
			ok(hs_range_error(in, NOW) != NULL,
			   "range '%s' has a reason: %s", in,
			   hs_range_error(in, NOW));
			continue;
		}
		is_int(r, 0, "range '%s' parses", in);
		ok(same(&f, &range_rows[i].from), "range '%s' from", in);
		ok(same(&t, &range_rows[i].to), "range '%s' to", in);
		is_int(has_to, range_rows[i].has_to, "range '%s' has_to", in);
	}
	ok(!hs_range_parse("e3n5..", NOW, &(struct hs_pos){0},
			   &(struct hs_pos){0}, NULL),
	   "has_to may be NULL");
	memset(longpos, '1', sizeof(longpos) - 3);
	strcpy(longpos + sizeof(longpos) - 3, "..");
	ok(hs_range_parse(longpos, NOW, &(struct hs_pos){0},
			  &(struct hs_pos){0}, NULL) == -HS_EUSAGE,
	   "an overlong FROM is refused");
}

/* hs_civil_to_ms against the C library, over 400 years of midnights and a
 * spread of times of day. */
static void civil_tests(void)
{
	int bad = 0;

	srand(1);
	for (int64_t day = -25567 * 2; day < 25567 * 4 && !bad; day += 7) {
		time_t t = (time_t)day * 86400 + rand() % 86400;
		struct tm tm;

		gmtime_r(&t, &tm);
		if (hs_civil_to_ms(tm.tm_year + 1900LL, tm.tm_mon + 1,
				   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				   0) != (int64_t)t * 1000)
			bad = 1;
	}
	ok(!bad, "hs_civil_to_ms agrees with gmtime_r from 1830 to 2250");
}

int main(void)
{
	pos_tests();
	fmt_tests();
	lsn_tests();
	error_tests();
	range_tests();
	civil_tests();
	return tap_done();
}

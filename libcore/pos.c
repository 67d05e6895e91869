/*
 * pos.c - see pos.h.
 *
 * Every parser here works on a NUL-terminated string and reports failure
 * through a static reason phrase (why), which the public *_error() functions
 * expose; the normal entry points drop it so that their signatures stay the
 * plain "0 or -HS_EUSAGE" every tool expects.  Dates are converted with
 * Howard Hinnant's days-from-civil arithmetic rather than timegm(): it is
 * exact for every year 0000..9999, needs no struct tm range games, and its
 * result cannot depend on TZ or the C library.
 */
#include "pos.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "parse.h"

#define LSN_OF(epoch, esn) ((uint64_t)(epoch) << 32 | (uint32_t)(esn))
#define POS_TEXT_MAX 128

/* The earliest and latest instants hs_pos_fmt can print as RFC 3339. */
#define TIME_MIN (-62167219200000LL) /* 0000-01-01T00:00:00Z */
#define TIME_MAX (253402300799999LL) /* 9999-12-31T23:59:59.999Z */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A u64 from the digits at s; *end is set past them.  -1 when there are
 * no digits, -2 on overflow. */
static int prefix_u64(const char *s, const char **end, uint64_t *v)
{
	uint64_t x = 0;
	const char *p = s;

	for (; is_digit(*p); p++) {
		unsigned d = *p - '0';

		if (x > (UINT64_MAX - d) / 10)
			return -2;
		x = x * 10 + d;
	}
	if (p == s)
		return -1;
	*end = p;
	*v = x;
	return 0;
}

int64_t hs_civil_to_ms(int64_t year, int month, int day, int hour, int min,
		       int sec, int ms)
{
	int64_t y = year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;

	return ((days * 24 + hour) * 60 + min) * 60000 + (int64_t)sec * 1000 +
	       ms;
}

static void ms_to_civil(int64_t t, int64_t *year, int *month, int *day,
			int *hour, int *min, int *sec, int *ms)
{
	int64_t days = t / 86400000, rem = t % 86400000;
	int64_t z, era, doe, yoe, doy, mp;

	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*day = doy - (153 * mp + 2) / 5 + 1;
	*month = mp < 10 ? mp + 3 : mp - 9;
	*year = yoe + era * 400 + (*month <= 2);
	*hour = rem / 3600000;
	*min = rem / 60000 % 60;
	*sec = rem / 1000 % 60;
	*ms = rem % 1000;
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30,
				 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* Exactly width digits at *p. */
static int fixed(const char **p, int width, int *v)
{
	int x = 0;

	for (int i = 0; i < width; i++) {
		if (!is_digit((*p)[i]))
			return -1;
		x = x * 10 + (*p)[i] - '0';
	}
	*p += width;
	return *v = x, 0;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm). */
static int parse_rfc3339(const char *s, int64_t *out, const char **why)
{
	int y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 0;
	const char *p = s;

	*why = "expected @YYYY-MM-DDTHH:MM:SSZ or an offset like +05:30";
	if (fixed(&p, 4, &y) || expect(&p, '-') || fixed(&p, 2, &mo) ||
	    expect(&p, '-') || fixed(&p, 2, &d))
		return -1;
	if (*p != 'T' && *p != 't')
		return -1;
	p++;
	if (fixed(&p, 2, &h) || expect(&p, ':') || fixed(&p, 2, &mi) ||
	    expect(&p, ':') || fixed(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		int n = 0;

		/* Milliseconds are our resolution: keep three digits and
		 * truncate the rest: 10:00:00.9999Z is 10:00:00.999. */
		for (p++; is_digit(*p); p++, n++)
			if (n < 3)
				ms = ms * 10 + *p - '0';
		if (!n) {
			*why = "expected digits after the '.' of the seconds";
			return -1;
		}
		for (; n < 3; n++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (fixed(&p, 2, &oh) || expect(&p, ':') || fixed(&p, 2, &om))
			return -1;
	} else {
		*why = "a time needs 'Z' or an offset like +05:30";
		return -1;
	}
	if (*p)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) {
		*why = "no such date";
		return -1;
	}
	/* 60 is a leap second: read as the first second of the next minute. */
	if (h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59) {
		*why = "no such time of day";
		return -1;
	}
	*out = hs_civil_to_ms(y, mo, d, h, mi, sec, ms) -
	       sign * ((int64_t)oh * 3600000 + (int64_t)om * 60000);
	return 0;
}

static int parse_time(const char *s, int64_t now_ms, int64_t *out,
		      const char **why)
{
	uint64_t v;
	const char *end;
	int r;

	if (*s == '-' || *s == '+') {
		if (hs_parse_duration_ms(s + 1, &v) < 0) {
			*why = "expected a duration after @- or @+ "
			       "(" HS_DURATION_SYNTAX ")";
			return -1;
		}
		if (v > (uint64_t)(TIME_MAX - TIME_MIN) ||
		    (*s == '-' ? now_ms - (int64_t)v < TIME_MIN
			       : now_ms + (int64_t)v > TIME_MAX)) {
			*why = "time out of range (years 0000 to 9999)";
			return -1;
		}
		*out = *s == '-' ? now_ms - (int64_t)v : now_ms + (int64_t)v;
		return 0;
	}
	r = prefix_u64(s, &end, &v);
	if (r == -2 || (!r && !*end)) {
		if (r == -2 || v > (uint64_t)TIME_MAX) {
			*why = "time out of range (years 0000 to 9999)";
			return -1;
		}
		*out = (int64_t)v;
		return 0;
	}
	return parse_rfc3339(s, out, why);
}

static int lsn_parse(const char *s, uint64_t *lsn, const char **why)
{
	uint64_t epoch, esn = 0;
	const char *p;
	int r;

	if (*s == 'e') {
		*why = "expected e<epoch>n<esn>, like e3n1207";
		r = prefix_u64(s + 1, &p, &epoch);
		if (r == -2)
			epoch = UINT64_MAX; /* reported as out of range below */
		else if (r || *p != 'n')
			return -1;
		else if ((r = prefix_u64(p + 1, &p, &esn)) == -2)
			esn = UINT64_MAX;
		else if (r || *p)
			return -1;
	} else {
		*why = "expected an LSN: e<epoch>n<esn> or a decimal number";
		r = prefix_u64(s, &p, &epoch);
		if (r == -2)
			*why = "LSN out of range (the largest is "
			       "18446744073709551615)";
		if (r || *p)
			return -1;
		if (!epoch) {
			*why = "LSN 0 is invalid (the first LSN is e1n1)";
			return -1;
		}
		esn = (uint32_t)epoch;
		epoch >>= 32;
	}
	if (epoch < 1 || epoch > UINT32_MAX) {
		*why = "epoch must be 1..4294967295";
		return -1;
	}
	if (esn < 1 || esn > UINT32_MAX) {
		*why = "esn must be 1..4294967295";
		return -1;
	}
	*lsn = LSN_OF(epoch, esn);
	return 0;
}

/* "+N" / "-N" after head / tail. */
static int rel_count(const char *s, char sign, int64_t *off, const char **why)
{
	uint64_t v;
	const char *end;

	if (!*s) {
		*off = 0;
		return 0;
	}
	if (*s == '+' || *s == '-') {
		if (*s != sign) {
			*why = sign == '+' ? "head counts forward: use head+N"
					   : "tail counts backward: use tail-N";
			return -1;
		}
		if (!prefix_u64(s + 1, &end, &v) && !*end && v <= INT64_MAX) {
			*off = sign == '+' ? (int64_t)v : -(int64_t)v;
			return 0;
		}
	}
	*why =
	    sign == '+' ? "expected head or head+N" : "expected tail or tail-N";
	return -1;
}

static int pos_parse(const char *s, int64_t now_ms, struct hs_pos *out,
		     const char **why)
{
	struct hs_pos p = {0};

	if (!s || !*s) {
		*why = "empty position";
		return -HS_EUSAGE;
	}
	if (!strncmp(s, "head", 4)) {
		p.kind = HS_POS_HEAD;
		if (rel_count(s + 4, '+', &p.offset, why))
			return -HS_EUSAGE;
	} else if (!strncmp(s, "tail", 4)) {
		p.kind = HS_POS_TAIL;
		if (rel_count(s + 4, '-', &p.offset, why))
			return -HS_EUSAGE;
	} else if (*s == '@') {
		p.kind = HS_POS_TIME;
		if (parse_time(s + 1, now_ms, &p.time_ms, why))
			return -HS_EUSAGE;
	} else if (*s == 'e' || is_digit(*s)) {
		p.kind = HS_POS_LSN;
		if (lsn_parse(s, &p.lsn, why))
			return -HS_EUSAGE;
	} else {
		*why = "expected " HS_POS_SYNTAX;
		return -HS_EUSAGE;
	}
	*out = p;
	return 0;
}

static int range_parse(const char *s, int64_t now_ms, struct hs_pos *from,
		       struct hs_pos *to, int *has_to, const char **why)
{
	struct hs_pos f = {.kind = HS_POS_HEAD}, t = {.kind = HS_POS_TAIL};
	char left[POS_TEXT_MAX];
	const char *sep, *right;
	int explicit_to = 0;
	size_t n;

	if (!s || !*s) {
		*why = "empty range";
		return -HS_EUSAGE;
	}
	/* No position contains "..", so the first one is the separator. */
	sep = strstr(s, "..");
	n = sep ? (size_t)(sep - s) : strlen(s);
	right = sep ? sep + 2 : "";
	if (n >= sizeof(left)) {
		*why = "position too long";
		return -HS_EUSAGE;
	}
	memcpy(left, s, n);
	left[n] = 0;
	if ((sep && strstr(right, "..")) || *right == '.') {
		*why = "a range has one '..': FROM..TO";
		return -HS_EUSAGE;
	}
	if (n && pos_parse(left, now_ms, &f, why))
		return -HS_EUSAGE;
	if (*right) {
		if (pos_parse(right, now_ms, &t, why))
			return -HS_EUSAGE;
		explicit_to = 1;
	}
	if (f.kind == t.kind &&
	    ((f.kind == HS_POS_LSN && f.lsn > t.lsn) ||
	     (f.kind == HS_POS_TIME && f.time_ms > t.time_ms) ||
	     ((f.kind == HS_POS_HEAD || f.kind == HS_POS_TAIL) &&
	      f.offset > t.offset))) {
		*why = "the range ends before it starts";
		return -HS_EUSAGE;
	}
	*from = f;
	*to = t;
	if (has_to)
		*has_to = explicit_to;
	return 0;
}

int hs_pos_parse(const char *s, int64_t now_ms, struct hs_pos *out)
{
	const char *why;

	return pos_parse(s, now_ms, out, &why);
}

int hs_range_parse(const char *s, int64_t now_ms, struct hs_pos *from,
		   struct hs_pos *to, int *has_to)
{
	const char *why;

	return range_parse(s, now_ms, from, to, has_to, &why);
}

const char *hs_pos_error(const char *s, int64_t now_ms)
{
	const char *why = NULL;
	struct hs_pos p;

	return pos_parse(s, now_ms, &p, &why) ? why : NULL;
}

const char *hs_range_error(const char *s, int64_t now_ms)
{
	const char *why = NULL;
	struct hs_pos f, t;

	return range_parse(s, now_ms, &f, &t, NULL, &why) ? why : NULL;
}

int hs_lsn_parse(const char *s, uint64_t *lsn)
{
	const char *why;

	if (!s || !*s)
		return -HS_EUSAGE;
	return lsn_parse(s, lsn, &why) ? -HS_EUSAGE : 0;
}

static int fit(int r, size_t n)
{
	if (r < 0)
		return -HS_EINTERNAL;
	return (size_t)r >= n ? -HS_ETOOBIG : r;
}

int hs_lsn_fmt(char *buf, size_t n, uint64_t lsn)
{
	return fit(snprintf(buf, n, "e%un%u", (unsigned)(lsn >> 32),
			    (unsigned)(uint32_t)lsn),
		   n);
}

int hs_pos_fmt(char *buf, size_t n, const struct hs_pos *p)
{
	int64_t y;
	int mo, d, h, mi, s, ms;

	switch (p->kind) {
	case HS_POS_LSN:
		return hs_lsn_fmt(buf, n, p->lsn);
	case HS_POS_HEAD:
		if (!p->offset)
			return fit(snprintf(buf, n, "head"), n);
		return fit(snprintf(buf, n, "head+%lld", (long long)p->offset),
			   n);
	case HS_POS_TAIL:
		if (!p->offset)
			return fit(snprintf(buf, n, "tail"), n);
		/* -INT64_MIN overflows; print the magnitude unsigned. */
		return fit(snprintf(buf, n, "tail-%llu",
				    0ULL - (unsigned long long)p->offset),
			   n);
	case HS_POS_TIME:
		if (p->time_ms < TIME_MIN || p->time_ms > TIME_MAX)
			return -HS_EUSAGE;
		ms_to_civil(p->time_ms, &y, &mo, &d, &h, &mi, &s, &ms);
		if (ms)
			return fit(
			    snprintf(buf, n,
				     "@%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
				     (long long)y, mo, d, h, mi, s, ms),
			    n);
		return fit(snprintf(buf, n, "@%04lld-%02d-%02dT%02d:%02d:%02dZ",
				    (long long)y, mo, d, h, mi, s),
			   n);
	}
	return -HS_EUSAGE;
}

/* parse.c - see parse.h. */
#include "parse.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

/* Read a run of decimal digits at *p into *v; returns the digit count, or
 * -1 on overflow.  *p is advanced past the digits. */
static int digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	int n = 0;

	for (; *s >= '0' && *s <= '9'; s++, n++) {
		unsigned d = *s - '0';

		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*p = s;
	*v = x;
	return n;
}

static int mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Finish an snprintf into buf[n]: its length, or -HS_ETOOBIG if cut. */
static int fit(int r, size_t n)
{
	if (r < 0)
		return -HS_EINTERNAL;
	return (size_t)r >= n ? -HS_ETOOBIG : r;
}

int hs_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v;
	int n;

	if (!s)
		return -HS_EUSAGE;
	n = digits(&s, &v);
	if (n <= 0 || *s)
		return -HS_EUSAGE;
	*out = v;
	return 0;
}

int hs_parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {
	    /* "ms" before "m": the longest unit name wins. */
	    {"ms", 1},	    {"s", 1000},     {"m", 60000},
	    {"h", 3600000}, {"d", 86400000},
	};
	uint64_t total = 0;

	if (!s || !*s)
		return -HS_EUSAGE;
	if (s[0] == '0' && !s[1]) {
		*ms = 0;
		return 0;
	}
	while (*s) {
		uint64_t v, part;
		size_t i, len = 0;

		if (digits(&s, &v) <= 0)
			return -HS_EUSAGE;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			const char *u = units[i].name;

			for (len = 0; u[len] && s[len] == u[len]; len++)
				;
			if (!u[len] && !(s[len] >= 'a' && s[len] <= 'z'))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -HS_EUSAGE;
		if (!mul_ok(v, units[i].ms, &part) ||
		    __builtin_add_overflow(total, part, &total))
			return -HS_EUSAGE;
		s += len;
	}
	*ms = total;
	return 0;
}

int hs_parse_size(const char *s, uint64_t *bytes)
{
	static const char prefixes[] = "kmgtp";
	uint64_t v, mult = 1, base = 1024;
	const char *p;
	int n, k = 0;

	if (!s)
		return -HS_EUSAGE;
	n = digits(&s, &v);
	if (n <= 0)
		return -HS_EUSAGE;
	if (*s && (p = strchr(prefixes, lower(*s)))) {
		k = p - prefixes + 1;
		s++;
		if (lower(s[0]) == 'i' && lower(s[1]) == 'b')
			s += 2;
		else if (lower(s[0]) == 'b') {
			base = 1000;
			s++;
		}
	} else if (lower(*s) == 'b') {
		s++;
	}
	if (*s)
		return -HS_EUSAGE;
	while (k-- > 0)
		mult *= base;
	if (!mul_ok(v, mult, &v))
		return -HS_EUSAGE;
	*bytes = v;
	return 0;
}

int hs_fmt_duration(char *buf, size_t n, uint64_t ms)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {
	    {"d", 86400000}, {"h", 3600000}, {"m", 60000},
	    {"s", 1000},     {"ms", 1},
	};
	size_t len = 0;
	int r;

	if (!ms)
		return fit(snprintf(buf, n, "0s"), n);
	if (n)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t q = ms / units[i].ms;

		if (!q)
			continue;
		ms -= q * units[i].ms;
		r = snprintf(buf + len, len < n ? n - len : 0, "%llu%s",
			     (unsigned long long)q, units[i].name);
		if (r < 0)
			return -HS_EINTERNAL;
		len += r;
	}
	return len >= n ? -HS_ETOOBIG : (int)len;
}

int hs_fmt_size(char *buf, size_t n, uint64_t bytes)
{
	static const char *names[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};

	for (int k = 5; k >= 1 && bytes; k--) {
		uint64_t unit = (uint64_t)1 << (10 * k);

		if (bytes % unit == 0)
			return fit(snprintf(buf, n, "%llu%s",
					    (unsigned long long)(bytes / unit),
					    names[k - 1]),
				   n);
	}
	return fit(snprintf(buf, n, "%llu", (unsigned long long)bytes), n);
}

int hs_fmt_size_human(char *buf, size_t n, uint64_t bytes)
{
	static const char *names[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	int k = -1;

	if (bytes < 1024)
		return fit(snprintf(buf, n, "%lluB", (unsigned long long)bytes),
			   n);
	/* Stop below 1023.95 so rounding never prints "1024.0KiB". */
	while (v >= 1023.95 && k < 5) {
		v /= 1024;
		k++;
	}
	return fit(snprintf(buf, n, "%.1f%s", v, names[k]), n);
}

int hs_durability_parse(const char *s)
{
	if (!strcmp(s, "sync"))
		return HS_DUR_SYNC;
	if (!strcmp(s, "async"))
		return HS_DUR_ASYNC;
	if (!strcmp(s, "memory"))
		return HS_DUR_MEMORY;
	return -HS_EUSAGE;
}

const char *hs_durability_name(int d)
{
	switch (d) {
	case 0:
	case HS_DUR_SYNC:
		return "sync";
	case HS_DUR_ASYNC:
		return "async";
	case HS_DUR_MEMORY:
		return "memory";
	default:
		return "?";
	}
}

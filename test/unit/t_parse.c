/* t_parse.c - u64, duration and size parsers and formatters (parse.h). */
#include <stdint.h>

#include "err.h"
#include "parse.h"
#include "tap.h"

#define BAD UINT64_MAX /* marks a row that must be refused */

struct row {
	const char *in;
	uint64_t want;
	int ok;
};

static void run(const char *what, int (*fn)(const char *, uint64_t *),
		const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 12345;
		int r = fn(rows[i].in, &v);

		if (rows[i].ok) {
			is_int(r, 0, "%s '%s' parses", what, rows[i].in);
			ok(v == rows[i].want, "%s '%s' = %llu (got %llu)", what,
			   rows[i].in, (unsigned long long)rows[i].want,
			   (unsigned long long)v);
		} else {
			is_int(r, -HS_EUSAGE, "%s '%s' refused", what,
			       rows[i].in);
			ok(v == 12345, "%s '%s' leaves *out alone", what,
			   rows[i].in);
		}
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct row u64_rows[] = {
    {"0", 0, 1},
    {"1", 1, 1},
    {"007", 7, 1},
    {"4294967296", 4294967296ULL, 1},
    {"18446744073709551615", UINT64_MAX, 1},
    {"18446744073709551616", BAD, 0},
    {"99999999999999999999", BAD, 0},
    {"", BAD, 0},
    {"-1", BAD, 0},
    {"+1", BAD, 0},
    {" 1", BAD, 0},
    {"1 ", BAD, 0},
    {"1x", BAD, 0},
    {"0x10", BAD, 0},
    {"1.5", BAD, 0},
};

static const struct row dur_rows[] = {
    {"0", 0, 1},
    {"0s", 0, 1},
    {"0ms", 0, 1},
    {"250ms", 250, 1},
    {"5s", 5000, 1},
    {"2m", 120000, 1},
    {"1h", 3600000, 1},
    {"7d", 604800000, 1},
    {"1h30m", 5400000, 1},
    {"1m30s500ms", 90500, 1},
    {"1d2h3m4s5ms", 93784005, 1},
    {"90s", 90000, 1},
    {"18446744073709551615ms", UINT64_MAX, 1},
    {"18446744073709551616ms", BAD, 0},
    {"18446744073709552s", BAD, 0},
    {"18446744073709551615ms1ms", BAD, 0},
    {"5", BAD, 0},
    {"00", BAD, 0},
    {"", BAD, 0},
    {"s", BAD, 0},
    {"-5s", BAD, 0},
    {"+5s", BAD, 0},
    {"1.5s", BAD, 0},
    {"5S", BAD, 0},
    {"5sec", BAD, 0},
    {"5min", BAD, 0},
    {"5w", BAD, 0},
    {"5y", BAD, 0},
    {"1h30", BAD, 0},
    {"1h 30m", BAD, 0},
    {" 5s", BAD, 0},
    {"5s ", BAD, 0},
    {"5mss", BAD, 0},
};

static const struct row size_rows[] = {
    {"0", 0, 1},
    {"100", 100, 1},
    {"100B", 100, 1},
    {"100b", 100, 1},
    {"4k", 4096, 1},
    {"4K", 4096, 1},
    {"4KiB", 4096, 1},
    {"4kib", 4096, 1},
    {"1M", 1048576, 1},
    {"1MiB", 1048576, 1},
    {"2G", 2147483648ULL, 1},
    {"2GiB", 2147483648ULL, 1},
    {"1T", 1099511627776ULL, 1},
    {"1P", 1125899906842624ULL, 1},
    {"4kB", 4000, 1},
    {"4KB", 4000, 1},
    {"10MB", 10000000, 1},
    {"2GB", 2000000000, 1},
    {"3TB", 3000000000000ULL, 1},
    {"16383P", 16383ULL << 50, 1},
    {"16384P", BAD, 0},
    {"18446744073709551615", UINT64_MAX, 1},
    {"18446744073709551616", BAD, 0},
    {"", BAD, 0},
    {"K", BAD, 0},
    {"-1", BAD, 0},
    {"1.5M", BAD, 0},
    {"4 k", BAD, 0},
    {"4kx", BAD, 0},
    {"4KiBB", BAD, 0},
    {"4Ki", BAD, 0},
    {"4X", BAD, 0},
    {"4E", BAD, 0},
    {"4BB", BAD, 0},
};

static void fmt_tests(void)
{
	static const struct {
		uint64_t ms;
		const char *want;
	} d[] = {
	    {0, "0s"},
	    {1, "1ms"},
	    {250, "250ms"},
	    {1000, "1s"},
	    {1500, "1s500ms"},
	    {60000, "1m"},
	    {5400000, "1h30m"},
	    {86400000, "1d"},
	    {93784005, "1d2h3m4s5ms"},
	    {604800000, "7d"},
	    {UINT64_MAX, "213503982334d14h25m51s615ms"},
	};
	static const struct {
		uint64_t b;
		const char *want, *human;
	} z[] = {
	    {0, "0", "0B"},
	    {1000, "1000", "1000B"},
	    {1024, "1KiB", "1.0KiB"},
	    {1536, "1536", "1.5KiB"},
	    {4096, "4KiB", "4.0KiB"},
	    {1048576, "1MiB", "1.0MiB"},
	    {1048575, "1048575", "1.0MiB"},
	    {3ULL << 30, "3GiB", "3.0GiB"},
	    {1ULL << 40, "1TiB", "1.0TiB"},
	    {5ULL << 50, "5PiB", "5.0PiB"},
	    {UINT64_MAX, "18446744073709551615", "16.0EiB"},
	};
	char buf[HS_DURATION_FMT_MAX];
	uint64_t back;

	for (size_t i = 0; i < N(d); i++) {
		int r = hs_fmt_duration(buf, sizeof(buf), d[i].ms);

		is_int(r, strlen(d[i].want), "fmt_duration %llu length",
		       (unsigned long long)d[i].ms);
		is_str(buf, d[i].want, "fmt_duration %llu",
		       (unsigned long long)d[i].ms);
		ok(!hs_parse_duration_ms(buf, &back) && back == d[i].ms,
		   "duration '%s' round-trips", buf);
	}
	for (size_t i = 0; i < N(z); i++) {
		hs_fmt_size(buf, sizeof(buf), z[i].b);
		is_str(buf, z[i].want, "fmt_size %llu",
		       (unsigned long long)z[i].b);
		ok(!hs_parse_size(buf, &back) && back == z[i].b,
		   "size '%s' round-trips", buf);
		hs_fmt_size_human(buf, sizeof(buf), z[i].b);
		is_str(buf, z[i].human, "fmt_size_human %llu",
		       (unsigned long long)z[i].b);
	}
	is_int(hs_fmt_duration(buf, 4, 5400000), -HS_ETOOBIG,
	       "fmt_duration too small");
	ok(strlen(buf) == 3, "fmt_duration truncates and terminates");
	is_int(hs_fmt_duration(buf, 6, 5400000), 5, "fmt_duration exact fit");
	is_int(hs_fmt_size(buf, 3, 4096), -HS_ETOOBIG, "fmt_size too small");
	is_int(hs_fmt_duration(NULL, 0, 5), -HS_ETOOBIG, "fmt_duration n=0");
}

int main(void)
{
	uint64_t v = 7;

	run("u64", hs_parse_u64, u64_rows, N(u64_rows));
	run("duration", hs_parse_duration_ms, dur_rows, N(dur_rows));
	run("size", hs_parse_size, size_rows, N(size_rows));
	is_int(hs_parse_u64(NULL, &v), -HS_EUSAGE, "u64 NULL refused");
	is_int(hs_parse_duration_ms(NULL, &v), -HS_EUSAGE,
	       "duration NULL refused");
	is_int(hs_parse_size(NULL, &v), -HS_EUSAGE, "size NULL refused");
	fmt_tests();
	return tap_done();
}

/*
 * parse.h - the number, duration and size notations shared by every tool.
 *
 * One syntax everywhere (command line, environment, config file), documented
 * in hs-positions(7):
 *
 *   u64       decimal digits only: no sign, no spaces, no trailing junk.
 *   duration  one or more NUMBER UNIT pairs, UNIT one of ms s m h d, summed:
 *             "250ms" "5s" "2m" "1h" "7d" "1h30m".  A bare "0" is the only
 *             unitless duration: a bare "5" is refused rather than guessed.
 *   size      NUMBER [SUFFIX]; no suffix or "B" is bytes; K M G T P (either
 *             case, optionally followed by "iB") are powers of 1024; "kB",
 *             "MB", "GB", "TB", "PB" (prefix in either case, then "B") are
 *             powers of 1000: "4096" "4k" "4KiB" "1M" "2G" "1T" "10MB".
 *
 * Every parser is pure: it writes *out only on success and returns 0, or
 * returns -HS_EUSAGE (empty, junk, unknown unit, overflow) leaving *out
 * untouched.  Parsers do not log; the caller names the flag or key and can
 * append HS_DURATION_SYNTAX / HS_SIZE_SYNTAX, e.g.
 *   "invalid duration '%s' (use " HS_DURATION_SYNTAX ")".
 */
#ifndef HS_PARSE_H
#define HS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HS_DURATION_SYNTAX "250ms, 5s, 2m, 1h or 7d"
#define HS_SIZE_SYNTAX "4096, 4k, 1M, 2G, 1T or 10MB"

/* Room for any hs_fmt_duration / hs_fmt_size output, NUL included. */
#define HS_DURATION_FMT_MAX 48
#define HS_SIZE_FMT_MAX 32

/* Parse a decimal u64 into *out.  Errors: -HS_EUSAGE (s NULL or empty,
 * non-digit, overflow past 18446744073709551615). */
int hs_parse_u64(const char *s, uint64_t *out);

/* Parse a duration into milliseconds (*ms).  Errors: -HS_EUSAGE (empty, no
 * unit, unknown unit, sign, fraction, overflow of u64 milliseconds). */
int hs_parse_duration_ms(const char *s, uint64_t *ms);

/* Parse a size into bytes.  Errors: -HS_EUSAGE (empty, unknown suffix,
 * sign, fraction, overflow). */
int hs_parse_size(const char *s, uint64_t *bytes);

/* Format ms as the shortest compound duration that parses back to the same
 * value: 0 -> "0s", 5400000 -> "1h30m", 1500 -> "1s500ms".  Writes a
 * NUL-terminated string into buf (n bytes; HS_DURATION_FMT_MAX always fits).
 * Returns its length, or -HS_ETOOBIG if n is too small (buf then holds a
 * truncated string if n > 0). */
int hs_fmt_duration(char *buf, size_t n, uint64_t ms);

/* Format bytes exactly, so that it parses back: the largest power of 1024
 * that divides it ("4KiB", "1GiB"), else plain bytes ("1000").  Returns as
 * hs_fmt_duration. */
int hs_fmt_size(char *buf, size_t n, uint64_t bytes);

/* Format bytes for humans, rounded to one decimal ("1.5GiB", "512B"); does
 * not always parse back.  Returns as hs_fmt_duration. */
int hs_fmt_size_human(char *buf, size_t n, uint64_t bytes);

/*
 * Durability of a stream's appends (DESIGN.md §6).  The values travel in
 * STREAM_CREATE attributes and are stored in stream records, so they are
 * fixed; 0 means "not given" (the default, sync).
 *   sync    the peer's WAL is fsynced before the append is acknowledged
 *   async   the WAL is written, and synced in the background (~100 ms)
 *   memory  no WAL on a peer started so (benchmarks only, unsafe)
 */
enum hs_durability { HS_DUR_SYNC = 1, HS_DUR_ASYNC = 2, HS_DUR_MEMORY = 3 };

/* "sync", "async" or "memory" to its value; -HS_EUSAGE otherwise. */
int hs_durability_parse(const char *s);
/* The name of a value ("sync" for 0, the default); "?" if unknown. */
const char *hs_durability_name(int d);

#endif

/*
 * pos.h - positions (POS) and ranges (FROM..TO): the notation every tool
 * uses to say where in a stream to start and stop.  The user-facing
 * description is hs-positions(7); this is its one implementation.
 *
 * An LSN is epoch << 32 | esn, both parts 1..2^32-1 (DESIGN.md §3); it is
 * written e<epoch>n<esn> ("e3n1207") or as the raw decimal u64.
 *
 * POS is one of
 *   e3n1207 | 12884903095     an LSN (0, epoch 0 and esn 0 are refused)
 *   head | head+N             oldest retained record, or N records after it
 *   tail | tail-N             the next LSN to be written, or N records before
 *   @2026-11-26T10:00:00Z     RFC 3339 ('Z' or +hh:mm/-hh:mm offset,
 *                             optional fraction, 'T'/'Z' in either case)
 *   @1764151200000            unix time in milliseconds
 *   @-1h | @+0s               now minus/plus a duration (parse.h syntax)
 * A time position means "the first record whose timestamp is >= T".
 *
 * The parser cannot know where head and tail are, nor which record has a
 * timestamp: the result is resolved later, by the server, when a read or a
 * trim starts.  Relative times (@-1h) are resolved here, against now_ms, so
 * every position that reaches the server is absolute.
 *
 * RANGE is FROM..TO, half-open ([FROM, TO)); "FROM.." and a bare "FROM" end
 * at tail (pinned when the read starts), "..TO" starts at head, ".." is
 * head..tail.
 */
#ifndef HS_POS_H
#define HS_POS_H

#include <stddef.h>
#include <stdint.h>

enum hs_pos_kind {
	HS_POS_LSN = 1,
	HS_POS_HEAD,
	HS_POS_TAIL,
	HS_POS_TIME,
};

struct hs_pos {
	enum hs_pos_kind kind;
	int64_t offset;	 /* HEAD: records after head (>= 0); TAIL: records
			  * before tail, negative (tail-100 => -100) */
	uint64_t lsn;	 /* HS_POS_LSN */
	int64_t time_ms; /* HS_POS_TIME: absolute unix ms */
};

/* For messages: "invalid position '%s' (use " HS_POS_SYNTAX ")". */
#define HS_POS_SYNTAX                                                          \
	"eNnM, an LSN, head, head+N, tail, tail-N, @RFC3339, @MS or @-1h"

/* Room for any hs_pos_fmt / hs_lsn_fmt output, NUL included. */
#define HS_POS_FMT_MAX 48

/* Parse a position.  s is borrowed; *out is written only on success.
 * now_ms (unix ms) anchors relative times.  Returns 0, or -HS_EUSAGE
 * (hs_pos_error() says why). */
int hs_pos_parse(const char *s, int64_t now_ms, struct hs_pos *out);

/* Parse a range.  from and to are always both set on success (missing ends
 * become head and tail); *has_to (may be NULL) is 1 when TO was written
 * explicitly, 0 when it defaulted to tail ("FROM..", bare "FROM", "..").
 * Obviously inverted ranges of the same kind (e3n9..e3n5, two times, head+9..
 * head+5, tail-1..tail-5) are refused; empty ones (e3n5..e3n5) are allowed.
 * Returns 0 or -HS_EUSAGE (hs_range_error() says why). */
int hs_range_parse(const char *s, int64_t now_ms, struct hs_pos *from,
		   struct hs_pos *to, int *has_to);

/* Why s is not a valid position / range: a static lowercase phrase such as
 * "epoch must be 1..4294967295" or "no such date", or NULL if it is valid.
 * For messages after a failed parse: "invalid position '%s': %s". */
const char *hs_pos_error(const char *s, int64_t now_ms);
const char *hs_range_error(const char *s, int64_t now_ms);

/* Parse an LSN only: "eNnM" or a decimal u64, both parts nonzero.  Returns 0
 * or -HS_EUSAGE. */
int hs_lsn_parse(const char *s, uint64_t *lsn);

/* Format an LSN as "e<epoch>n<esn>" (no validation: e0n0 prints as such).
 * Returns the length, or -HS_ETOOBIG if n is too small. */
int hs_lsn_fmt(char *buf, size_t n, uint64_t lsn);

/* Format a position in the syntax hs_pos_parse() accepts: "e3n1207",
 * "head", "head+10", "tail-100", "@2026-11-26T10:00:00Z" (".123" added when
 * the milliseconds are nonzero; always UTC).  Returns the length, or
 * -HS_ETOOBIG if n is too small, -HS_EUSAGE for an invalid kind. */
int hs_pos_fmt(char *buf, size_t n, const struct hs_pos *p);

/* Unix ms for a UTC civil date and time, without timegm() or the TZ
 * environment.  No range checks: callers validate. */
int64_t hs_civil_to_ms(int64_t year, int month, int day, int hour, int min,
		       int sec, int ms);

#endif

/*
 * format.h - record formats: how hs-append splits its input into records and
 * how hs-cat / hs-tail write records out.  The user-facing description is
 * hs-formats(5); this module is its one implementation.
 *
 * FORMATS (input and output use the same names and the same bytes)
 *
 *   raw        payload DELIM, DELIM one byte (default '\n', -0 = NUL).
 *              On input a final record without DELIM is still a record,
 *              "" is zero records and "a\n\nb\n" is three (one empty).
 *   whole      input only: each input (FILE) is exactly one record, even
 *              when empty.
 *   netstring  LEN ":" payload ",", LEN decimal without leading zeros
 *              ("0" alone is fine), no separators between records:
 *              "5:hello,0:,".
 *   json       one object per line ('\n'), fields in this order:
 *                {"stream":"s","lsn":"e3n1207","ts":1764151200000,"data":"..."}
 *              "stream" only when the writer set a stream name, "lsn" and
 *              "ts" only when nonzero.  The payload is "data" (a JSON string)
 *              when it is valid UTF-8, else "data_b64" (base64, RFC 4648).
 *              A gap is {"gap":"HOLE","lo":"e3n5","hi":"e3n9"}.
 *              The reader accepts exactly one of data / data_b64, an
 *              optional integer "ts", ignores "lsn" and "stream" (any JSON
 *              value), skips gap objects and blank lines, and rejects
 *              unknown or duplicate fields: silently dropping a field
 *              would not be a lossless copy.
 *   template   output only: printf-like, see hs_fmt_template_parse().
 *
 * Records are binary-safe everywhere (NUL, invalid UTF-8) and empty records
 * are records, never skipped.  The json output is read back by the json
 * input unchanged, which is what makes
 *   hs-cat --format json s | hs-append --format json t
 * a lossless copy of the payloads and timestamps.
 *
 * INPUT splits arbitrary chunks (what read(2) returned) incrementally.  A
 * record that lies entirely inside one chunk is handed to the callback as a
 * pointer into that chunk (no copy, no allocation); only a record that spans
 * chunks is assembled, in one buffer the splitter reuses for the next one.
 * json payloads without escapes are also borrowed from the line.  A maximum
 * record size bounds that buffer: an over-size record fails as soon as it
 * is known to be too big, before the splitter holds it all, and every
 * record before it has already been delivered.
 *
 * OUTPUT appends to a caller-owned struct hs_buf so the caller can write a
 * whole batch with one write(2); nothing here does I/O.
 */
#ifndef HS_FORMAT_H
#define HS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* One record as the tools see it.  lsn and ts_ms are 0 when unknown (input
 * without "ts", or any raw input).  data is borrowed: see each function. */
struct hs_record {
	uint64_t lsn;
	uint64_t ts_ms;	     /* unix milliseconds */
	const uint8_t *data; /* may be NULL when len == 0 */
	size_t len;
};

enum hs_fmt {
	HS_FMT_RAW = 1,
	HS_FMT_WHOLE, /* input only */
	HS_FMT_NETSTRING,
	HS_FMT_JSON,
	HS_FMT_TEMPLATE, /* output only */
};

/* Kinds of gaps a reader reports instead of records (DESIGN.md §4). */
enum hs_fmt_gap_kind {
	HS_FMT_GAP_HOLE =
	    1,		   /* never acknowledged: no record will ever be here */
	HS_FMT_GAP_BRIDGE, /* the rest of an epoch after its last record */
	HS_FMT_GAP_TRIM,   /* below the trim point or retention */
	HS_FMT_GAP_DATALOSS, /* every copy of the records was lost */
};

/* The gap [lo, hi] (both ends inclusive). */
struct hs_fmt_gap {
	uint64_t lo;
	uint64_t hi;
	enum hs_fmt_gap_kind kind;
};

/* Called for each record.  r and r->data are borrowed for the duration of
 * the call only.  Return 0 to go on, or a negative code to stop: the feed
 * or finish call then returns that code. */
typedef int hs_record_cb(void *arg, const struct hs_record *r);

/* "raw", "json", "netstring" (the --format names; "whole" is --whole, a
 * template is anything containing '%').  Returns 0 and sets *out, or
 * -HS_EUSAGE. */
int hs_fmt_parse_name(const char *s, enum hs_fmt *out);

/* Parse a -d DELIM argument: exactly one byte, or one escape: \n \t \r \0
 * \\ \xHH.  Returns 0 and sets *out, or -HS_EUSAGE (empty, several bytes,
 * unknown escape). */
int hs_fmt_parse_delim(const char *s, uint8_t *out);

/* ---- input --------------------------------------------------------------- */

/* A splitter.  The struct is public so it can live on the stack; treat its
 * fields as private except `records`, the number of records delivered from
 * the current input (so an -HS_ETOOBIG record is number records + 1,
 * counting from 1). */
struct hs_fmt_in {
	enum hs_fmt kind;
	uint8_t delim;
	size_t max_record;
	size_t max_line;    /* json: longest line that can hold max_record */
	int err;	    /* sticky: 0 or the code returned by the failure */
	uint64_t records;   /* records delivered from the current input */
	uint64_t off;	    /* bytes of the current input consumed */
	uint64_t line;	    /* json: 1-based number of the current line */
	uint64_t rec_start; /* netstring: offset of the record being read */
	int ns_state;
	size_t ns_len;
	struct hs_buf acc; /* owned: a record or line spanning chunks */
	struct hs_buf dec; /* owned: json: decoded payload */
	struct hs_buf tmp; /* owned: json: decoded key */
	char msg[200];
};

/* Set up a splitter for kind (RAW, WHOLE, NETSTRING or JSON).  delim is the
 * RAW delimiter (ignored otherwise).  max_record is the largest accepted
 * payload in bytes; 0 means no limit.  Returns 0, or -HS_EUSAGE for a kind
 * that is not an input format. */
int hs_fmt_in_init(struct hs_fmt_in *in, enum hs_fmt kind, uint8_t delim,
		   size_t max_record);

/* Feed the next n bytes of the input (p borrowed for the call).  Calls cb
 * for each record completed by these bytes, in order.  Returns 0, or the
 * callback's negative code, or:
 *   -HS_EDATA    malformed netstring or json; hs_fmt_in_error() gives the
 *                position: "byte 17: ..." or "line 3, column 9: ...";
 *   -HS_ETOOBIG  a record is over max_record: "record 12: ...".
 * Errors are sticky: every later feed or finish returns the same code.
 * Records before the failing one have all been passed to cb. */
int hs_fmt_in_feed(struct hs_fmt_in *in, const uint8_t *p, size_t n,
		   hs_record_cb *cb, void *arg);

/* End of the current input: deliver its last record (raw without a final
 * delimiter, json without a final newline, the one whole record), then
 * reset the splitter for the next input (offsets, lines and `records`
 * start again; buffers are kept).  Returns as hs_fmt_in_feed, and
 * -HS_EDATA when the input stops inside a netstring or a json line is
 * incomplete. */
int hs_fmt_in_finish(struct hs_fmt_in *in, hs_record_cb *cb, void *arg);

/* The message for the last error ("line 3, column 9: invalid escape '\q'"),
 * or NULL when there was none.  Borrowed: valid until the next call on in. */
const char *hs_fmt_in_error(const struct hs_fmt_in *in);

/* Free the buffers; in is zeroed (calling it twice is harmless). */
void hs_fmt_in_free(struct hs_fmt_in *in);

/* ---- output -------------------------------------------------------------- */

/* A compiled template.  Fields private. */
struct hs_fmt_tpl_op;
struct hs_fmt_tpl {
	struct hs_fmt_tpl_op *ops; /* owned */
	size_t nops;
	uint8_t *lit; /* owned: literal text of every op */
	size_t litlen;
};

/* Compile a template once.  Directives: %l LSN as eNnM, %L LSN as a decimal
 * u64, %t timestamp in ms, %T timestamp as RFC 3339 UTC with milliseconds
 * (2026-11-26T10:00:00.123Z), %p payload bytes, %s payload length, %S stream
 * name (empty when none), %% a '%'.  Escapes: \n \t \r \0 \\ \xHH.  Nothing
 * is appended implicitly: write the "\n" yourself.  s is borrowed.  Returns
 * 0, or -HS_EUSAGE with *why (may be NULL) set to a static phrase such as
 * "unknown directive" and *where to the offset in s. */
int hs_fmt_template_parse(struct hs_fmt_tpl *t, const char *s, const char **why,
			  size_t *where);
void hs_fmt_template_free(struct hs_fmt_tpl *t);

/* A writer.  Public so it can live on the stack; stream may be set directly
 * (see hs_fmt_out_set_stream). */
struct hs_fmt_out {
	enum hs_fmt kind;
	uint8_t delim;
	const char *stream; /* borrowed; NULL = no stream name */
	size_t stream_len;
	struct hs_fmt_tpl tpl; /* owned when kind == HS_FMT_TEMPLATE */
};

/* Set up a writer for kind RAW (records end with delim), NETSTRING or JSON.
 * Returns 0 or -HS_EUSAGE (WHOLE and TEMPLATE are not valid here). */
int hs_fmt_out_init(struct hs_fmt_out *o, enum hs_fmt kind, uint8_t delim);

/* Set up a writer for a template (compiled with hs_fmt_template_parse).
 * Returns as hs_fmt_template_parse; *o is unusable after an error. */
int hs_fmt_out_init_template(struct hs_fmt_out *o, const char *tpl,
			     const char **why, size_t *where);

/* The stream name written in json ("stream") and by %S, or NULL for none.
 * name is borrowed: it must outlive every following hs_fmt_out_* call (a
 * multi-stream reader sets it before each record or batch). */
void hs_fmt_out_set_stream(struct hs_fmt_out *o, const char *name);

/* Append one formatted record to b.  Cannot fail (allocation failure
 * aborts).  r and its data are borrowed for the call. */
void hs_fmt_out_record(const struct hs_fmt_out *o, struct hs_buf *b,
		       const struct hs_record *r);

/* Append a gap to b: one json object line in JSON; nothing in the other
 * formats, whose bytes are payloads only (use hs_fmt_gap_str for a message
 * on stderr).  Returns the number of bytes appended. */
size_t hs_fmt_out_gap(const struct hs_fmt_out *o, struct hs_buf *b,
		      const struct hs_fmt_gap *g);

/* "HOLE", "BRIDGE", "TRIM", "DATALOSS", or "?" for an unknown kind. */
const char *hs_fmt_gap_name(enum hs_fmt_gap_kind kind);

/* A gap for humans: "HOLE e3n5..e3n9".  Writes a NUL-terminated string;
 * returns its length, or -HS_ETOOBIG if n is too small (64 is enough). */
int hs_fmt_gap_str(char *buf, size_t n, const struct hs_fmt_gap *g);

/* RFC 3339 UTC with milliseconds, "2026-11-26T10:00:00.123Z" (24 bytes),
 * appended to b.  For years past 9999 the year has more digits. */
void hs_fmt_rfc3339_ms(struct hs_buf *b, uint64_t ms);

/* Free what o owns (the template); o is zeroed. */
void hs_fmt_out_free(struct hs_fmt_out *o);

#endif

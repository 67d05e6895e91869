/*
 * fuzz_fmt.c - libFuzzer target for the input format splitters (format.h
 * hs_fmt_in_*: raw, whole, netstring, json) with a small max_record.
 * Built by test/fuzz/run.
 *
 * Input: byte 0 picks the format, byte 1 the max_record (0..63, 0 = no
 * limit), byte 2 the raw delimiter, byte 3 seeds the chunking; the rest is
 * the input, split twice: in one piece and in random chunks of 1..16 bytes,
 * each chunk an exact-size heap copy (over-reads are caught).  Both
 * splittings must deliver the same records and end with the same code -
 * the splitter's promise that chunk boundaries do not matter.  Each is fed
 * twice (two inputs) so the reset in hs_fmt_in_finish is exercised.
 */
#include "fuzz.h"

#include "err.h"
#include "format.h"
#include "wire.h"

static const enum hs_fmt kinds[] = { HS_FMT_RAW, HS_FMT_WHOLE, HS_FMT_NETSTRING,
				     HS_FMT_JSON };

struct sink {
	struct hs_buf out; /* len | ts | bytes of every record */
	size_t max;
};

static int rec_cb(void *arg, const struct hs_record *r)
{
	struct sink *s = arg;

	if (s->max)
		CHECK(r->len <= s->max);
	if (r->len)
		fz_touch(r->data, r->len);
	hs_w64(&s->out, r->len);
	hs_w64(&s->out, r->ts_ms);
	if (r->len)
		hs_buf_append(&s->out, r->data, r->len);
	return 0;
}

/* Split p[0..n) twice (two inputs); chunk sizes from *seed, 0 = one
 * piece.  Returns the first error or 0. */
static int split(enum hs_fmt kind, uint8_t delim, size_t max, const uint8_t *p, size_t n,
		 uint32_t seed, struct sink *s)
{
	struct hs_fmt_in in;
	int err = 0;

	CHECK(hs_fmt_in_init(&in, kind, delim, max) == 0);
	for (int pass = 0; pass < 2 && !err; pass++) {
		size_t off = 0;

		while (off < n && !err) {
			size_t k = n - off;
			uint8_t *c;

			if (seed) {
				seed ^= seed << 13;
				seed ^= seed >> 17;
				seed ^= seed << 5;
				if (k > 1 + seed % 16)
					k = 1 + seed % 16;
			}
			c = fz_dup(p + off, k);
			err = hs_fmt_in_feed(&in, c, k, rec_cb, s);
			free(c);
			off += k;
		}
		if (!err)
			err = hs_fmt_in_finish(&in, rec_cb, s);
		if (err)
			CHECK(hs_fmt_in_error(&in) != NULL);
	}
	/* Sticky errors. */
	if (err)
		CHECK(hs_fmt_in_feed(&in, (const uint8_t *)"x\n", 2, rec_cb, s) == err);
	hs_fmt_in_free(&in);
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink a = { HS_BUF_INIT, 0 }, b = { HS_BUF_INIT, 0 };
	enum hs_fmt kind;
	uint8_t delim;
	int ea, eb;

	if (size < 4)
		return 0;
	kind = kinds[data[0] % 4];
	a.max = b.max = data[1] % 64;
	delim = data[2];
	ea = split(kind, delim, a.max, data + 4, size - 4, 0, &a);
	eb = split(kind, delim, b.max, data + 4, size - 4, data[3] | 1u, &b);
	CHECK(ea == 0 || ea == -HS_EDATA || ea == -HS_ETOOBIG);
	if (ea != eb || a.out.len != b.out.len ||
	    (a.out.len && memcmp(a.out.data, b.out.data, a.out.len))) {
		fprintf(stderr, "one piece: %d, %zu bytes of records; chunked: %d, %zu\n",
			ea, a.out.len, eb, b.out.len);
		CHECK(!"the chunking changed the result");
	}
	hs_buf_free(&a.out);
	hs_buf_free(&b.out);
	return 0;
}

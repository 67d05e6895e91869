/*
 * fuzz_pos.c - libFuzzer target for positions and ranges (pos.h):
 * hs_pos_parse, hs_range_parse, hs_lsn_parse and their error helpers, on a
 * NUL-terminated copy of the input.  Built by test/fuzz/run.
 *
 * Oracles: a parse succeeds exactly when the matching *_error() says
 * nothing; a parsed position formats (hs_pos_fmt) to text that parses back
 * to the same position; ranges have both ends set.
 */
#include "fuzz.h"

#include "err.h"
#include "pos.h"

#define NOW_MS 1764151200000LL /* 2025-11-26T10:00:00Z: fixed, reproducible */

static void same(const struct hs_pos *a, const struct hs_pos *b)
{
	CHECK(a->kind == b->kind);
	switch (a->kind) {
	case HS_POS_LSN: CHECK(a->lsn == b->lsn); break;
	case HS_POS_HEAD:
	case HS_POS_TAIL: CHECK(a->offset == b->offset); break;
	case HS_POS_TIME: CHECK(a->time_ms == b->time_ms); break;
	}
}

static void roundtrip(const struct hs_pos *p)
{
	char buf[HS_POS_FMT_MAX];
	struct hs_pos q;
	int n;

	CHECK(p->kind >= HS_POS_LSN && p->kind <= HS_POS_TIME);
	n = hs_pos_fmt(buf, sizeof(buf), p);
	CHECK(n > 0 && (size_t)n < sizeof(buf) && strlen(buf) == (size_t)n);
	if (hs_pos_parse(buf, NOW_MS, &q)) {
		fprintf(stderr, "'%s' does not parse back\n", buf);
		CHECK(!"format/parse round trip");
	}
	same(p, &q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_pos p, from, to;
	char *s = malloc(size + 1);
	uint64_t lsn;
	int has_to = -1, e;

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	e = hs_pos_parse(s, NOW_MS, &p);
	CHECK(e == 0 || e == -HS_EUSAGE);
	CHECK((e == 0) == (hs_pos_error(s, NOW_MS) == NULL));
	if (!e)
		roundtrip(&p);

	e = hs_range_parse(s, NOW_MS, &from, &to, &has_to);
	CHECK(e == 0 || e == -HS_EUSAGE);
	CHECK((e == 0) == (hs_range_error(s, NOW_MS) == NULL));
	if (!e) {
		CHECK(has_to == 0 || has_to == 1);
		roundtrip(&from);
		roundtrip(&to);
	}

	e = hs_lsn_parse(s, &lsn);
	CHECK(e == 0 || e == -HS_EUSAGE);
	if (!e) {
		char buf[HS_POS_FMT_MAX];
		uint64_t back;

		CHECK(lsn >> 32 && (uint32_t)lsn);
		CHECK(hs_lsn_fmt(buf, sizeof(buf), lsn) > 0);
		CHECK(hs_lsn_parse(buf, &back) == 0 && back == lsn);
	}
	free(s);
	return 0;
}

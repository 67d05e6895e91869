/*
 * fuzz_run.c - libFuzzer target for the run codec (run.h): hs_run_parse,
 * iteration and hs_run_slice.  Built by test/fuzz/run.
 *
 * Input: byte 0 and 1 choose a slice (from, n), the rest is a run whose
 * last 4 bytes are overwritten with the right CRC32C (a random CRC never
 * matches, which would stop the fuzzer at the first check).  A run that
 * parses is walked to its end; every slice of it must parse again, with
 * the same header and the same records.
 */
#include "fuzz.h"

#include "crc32c.h"
#include "run.h"
#include "wire.h"

struct rec {
	uint64_t ts;
	const uint8_t *p;
	uint32_t len;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_buf s = HS_BUF_INIT;
	struct hs_run r, r2;
	struct hs_run_iter it;
	struct rec *recs = NULL, x;
	uint32_t from, n, i = 0;
	uint8_t *run;
	size_t len;

	if (size < 2)
		return 0;
	len = size - 2;
	run = fz_dup(data + 2, len);
	if (len >= 4)
		hs_put32(run + len - 4, hs_crc32c(0, run, len - 4));
	if (hs_run_parse(run, len, &r))
		goto out;
	CHECK(r.base == run && r.len == len && r.end == run + len - 4);
	for (int k = 0; k < r.ncopyset; k++)
		hs_run_copyset(&r, k);
	/* A record takes at least HS_RUN_REC_HDR bytes, which bounds the
	 * array no matter what count the header claims. */
	CHECK(r.nrecords <= len / HS_RUN_REC_HDR);
	recs = calloc(r.nrecords + 1, sizeof(*recs));
	hs_run_iter_init(&it, &r);
	while (hs_run_next(&it, &x.ts, &x.p, &x.len)) {
		CHECK(i < r.nrecords);
		fz_touch(x.p, x.len);
		recs[i++] = x;
	}
	CHECK(i == r.nrecords && it.p == r.end);

	from = data[0] % (r.nrecords + 1);
	n = data[1] % (r.nrecords + 2);
	if (hs_run_slice(&r, from, n, &s)) {
		CHECK(n == 0 || (uint64_t)from + n > r.nrecords);
		CHECK(s.len == 0);
		goto out;
	}
	CHECK(n > 0 && (uint64_t)from + n <= r.nrecords);
	CHECK(hs_run_parse(s.data, s.len, &r2) == 0);
	CHECK(r2.nrecords == n && r2.flags == r.flags && r2.lng == r.lng &&
	      r2.wave == r.wave && r2.ncopyset == r.ncopyset);
	CHECK(!memcmp(r2.copyset, r.copyset, 4u * r.ncopyset));
	hs_run_iter_init(&it, &r2);
	for (i = from; hs_run_next(&it, &x.ts, &x.p, &x.len); i++)
		CHECK(x.ts == recs[i].ts && x.len == recs[i].len &&
		      !memcmp(x.p, recs[i].p, x.len));
	CHECK(i == from + n);
out:
	hs_buf_free(&s);
	free(recs);
	free(run);
	return 0;
}

/* t_meta.c - the log record codec (meta.h): version 3 with the live
 * epoch's owner, version 2 and 1 records still decoding, malformed ones
 * refused; the stream record: version 2 with offload_size, version 1
 * still decoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "meta.h"
#include "tap.h"

static void sample(struct hs_lrec *r)
{
	struct hs_lepoch e = { .epoch = 7, .r = 2, .nn = 3, .nodes = { 1, 2, 3 } };

	memset(r, 0, sizeof(*r));
	r->epoch = 7;
	r->trim = 42;
	r->lce = 5;
	hs_lrec_put_epoch(r, &e);
	r->owner = 4711;
	snprintf(r->owner_addr, sizeof(r->owner_addr), "unix:/tmp/x/s.sock");
}

int main(void)
{
	struct hs_lrec r, d;
	struct hs_buf b = { 0 };
	size_t full;

	sample(&r);
	hs_lrec_enc(&r, &b);
	full = b.len;
	is_int(b.data[0], 3, "encodes version 3");
	is_int(hs_lrec_dec(b.data, b.len, &d), 1, "decodes");
	is_int(d.epoch, 7, "epoch");
	is_int(d.trim, 42, "trim");
	is_int(d.lce, 5, "lce");
	is_int(d.nepochs, 1, "one entry");
	is_int(d.epochs[0].nodes[2], 3, "nodeset");
	is_int(d.owner, 4711, "owner id");
	is_str(d.owner_addr, "unix:/tmp/x/s.sock", "owner address");
	hs_lrec_free(&d);

	/* Every shorter prefix of the owner section is malformed. */
	for (size_t n = full - 1; n >= full - 9 - strlen(r.owner_addr); n--) {
		if (hs_lrec_dec(b.data, n, &d) != -HS_EDATA) {
			ok(0, "a record cut at %zu of %zu bytes is malformed", n, full);
			break;
		}
		if (n == full - 9 - strlen(r.owner_addr))
			ok(1, "every cut owner section is malformed");
	}

	/* Version 2: the same bytes without the owner section. */
	b.data[0] = 2;
	is_int(hs_lrec_dec(b.data, full - 9 - strlen(r.owner_addr), &d), 1, "version 2 decodes");
	is_int(d.owner, 0, "version 2: no owner");
	is_str(d.owner_addr, "", "version 2: no address");
	is_int(d.nepochs, 1, "version 2: entries kept");
	/* Re-encoding a version 2 record writes version 3 with no owner. */
	hs_buf_reset(&b);
	hs_lrec_enc(&d, &b);
	hs_lrec_free(&d);
	is_int(b.data[0], 3, "re-encoded as version 3");
	is_int(hs_lrec_dec(b.data, b.len, &d), 1, "and decodes");
	is_int(d.owner, 0, "still no owner");
	hs_lrec_free(&d);

	/* An empty address encodes and decodes. */
	r.owner_addr[0] = 0;
	hs_buf_reset(&b);
	hs_lrec_enc(&r, &b);
	is_int(hs_lrec_dec(b.data, b.len, &d), 1, "owner without address");
	is_int(d.owner, 4711, "its id");
	is_str(d.owner_addr, "", "no address");
	hs_lrec_free(&d);

	/* Version 1 and unknown versions. */
	{
		uint8_t v1[16] = { 1, 0, 0, 0, 9, 0, 0, 0, 3 };

		is_int(hs_lrec_dec(v1, sizeof(v1), &d), 1, "version 1 decodes");
		is_int(d.epoch, 9, "version 1 epoch");
		is_int(d.owner, 0, "version 1: no owner");
		hs_lrec_free(&d);
		v1[0] = 4;
		is_int(hs_lrec_dec(v1, sizeof(v1), &d), -HS_EDATA, "version 4 refused");
		hs_lrec_free(&d);
	}
	/* Stream records: version 2 round trip, version 1 decodes with no
	 * size policy, short or unknown ones are refused. */
	{
		struct hs_srec s = { .flags = HS_SREC_DELETED, .replication = 3, .durability = 2,
				     .log = 77, .retention_ms = 86400000,
				     .offload_after_ms = 3600000, .created_ms = 1234,
				     .offload_size = 64ull << 20 }, t;

		hs_buf_reset(&b);
		hs_srec_enc(&s, &b);
		is_int(b.len, HS_SREC_LEN, "srec: 48 bytes");
		is_int(b.data[0], 2, "srec: version 2");
		is_int(hs_srec_dec(b.data, b.len, &t), 1, "srec: decodes");
		ok(t.flags == s.flags && t.replication == 3 && t.durability == 2 && t.log == 77 &&
		   t.retention_ms == s.retention_ms && t.offload_after_ms == s.offload_after_ms &&
		   t.created_ms == 1234 && t.offload_size == s.offload_size,
		   "srec: every field round-trips");
		is_int(hs_srec_dec(b.data, b.len - 1, &t), -HS_EDATA, "srec v2: short refused");
		/* version 1: the same first 40 bytes */
		b.data[0] = 1;
		is_int(hs_srec_dec(b.data, HS_SREC_V1_LEN, &t), 1, "srec v1: decodes");
		is_int(t.log, 77, "srec v1: log");
		is_int(t.offload_after_ms, 3600000, "srec v1: offload_after");
		is_int(t.created_ms, 1234, "srec v1: created");
		is_int(t.offload_size, 0, "srec v1: no size policy");
		is_int(hs_srec_dec(b.data, HS_SREC_V1_LEN - 1, &t), -HS_EDATA,
		       "srec v1: short refused");
		b.data[0] = 3;
		is_int(hs_srec_dec(b.data, b.len, &t), -HS_EDATA, "srec: version 3 refused");
		is_int(hs_srec_dec(b.data, 0, &t), 0, "srec: absent");
	}
	hs_lrec_free(&r);
	hs_buf_free(&b);
	return tap_done();
}

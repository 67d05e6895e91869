/* t_meta.c - the log record codec (meta.h): version 3 with the live
 * epoch's owner, version 2 and 1 records still decoding, malformed ones
 * refused. */
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
	hs_lrec_free(&r);
	hs_buf_free(&b);
	return tap_done();
}

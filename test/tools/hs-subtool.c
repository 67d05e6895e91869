/*
 * hs-subtool - a deliberately bad subscriber for the subscription tests
 * (test/bats/24-subs.bats): it subscribes and never acknowledges.
 *
 *   hs-subtool ADDR SUB MS [ACK_FIRST]
 *
 * Connects to hs-serve at ADDR, sends SUBSCRIBE for SUB (window 0:
 * unlimited credit) and for MS milliseconds prints one line per delivered
 * record, "LSN PAYLOAD" (LSN as a decimal u64), redeliveries included, then
 * exits 0.  With ACK_FIRST = N it acknowledges the first N distinct records
 * it sees (to test a partial acknowledgement) and nothing after them.  A
 * READ_END ends it early: exit 0 for status 0, else 1 with the status on
 * stderr.  Exit 2 for usage or connection errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "err.h"
#include "frame.h"
#include "proto_client.h"
#include "run.h"
#include "syncconn.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct hs_sconn c = { .fd = -1 };
	struct hs_subscribe m = { .read_id = 1 };
	char msg[256];
	long long end;
	unsigned long long ack_first = 0, acked = 0, seen_hi = 0;
	int r;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: hs-subtool ADDR SUB MS [ACK_FIRST]\n");
		return 2;
	}
	if (argc == 5)
		ack_first = strtoull(argv[4], NULL, 10);
	m.sub = argv[2];
	m.sub_len = (uint8_t)strlen(argv[2]);
	end = now_ms() + atoll(argv[3]);
	r = hs_client_connect(&c, argv[1], 5000, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "hs-subtool: %s\n", msg);
		return 2;
	}
	hs_msg_subscribe_enc(hs_sconn_out(&c), hs_client_next_id(), &m);
	if (hs_sconn_flush(&c) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		struct hs_frame f;
		struct hs_clist l;
		struct hs_deliver_ent e;
		struct hs_read_end re;
		long long left = end - now_ms();

		if (left <= 0)
			break;
		r = hs_sconn_wait(&c, (int)left);
		if (r <= 0)
			break;
		r = hs_sconn_recv(&c, &f);
		if (r <= 0) {
			fprintf(stderr, "hs-subtool: connection lost\n");
			return 2;
		}
		if (f.type == HS_MSG_READ_END) {
			if (hs_msg_read_end_dec(f.body, f.body_len, &re) == 0 && re.status) {
				fprintf(stderr, "hs-subtool: READ_END %s\n", hs_strerror(re.status));
				return 1;
			}
			return 0;
		}
		if (f.type != HS_MSG_DELIVER ||
		    hs_msg_clist_dec(f.type, f.body, f.body_len, &l) < 0)
			continue;
		while (hs_deliver_next(&l, &e) == 1) {
			struct hs_run run;
			struct hs_run_iter it;
			const uint8_t *p;
			uint64_t ts, lsn = e.first_lsn;
			uint32_t len;

			if (hs_run_parse(e.run, e.run_len, &run) < 0)
				return 2;
			hs_run_iter_init(&it, &run);
			while (hs_run_next(&it, &ts, &p, &len)) {
				printf("%llu %.*s\n", (unsigned long long)lsn, (int)len,
				       (const char *)p);
				if (acked < ack_first && lsn > seen_hi) {
					struct hs_msg_wr w;

					hs_msg_ack_begin(&w, hs_sconn_out(&c), hs_client_next_id(),
							 m.sub, m.sub_len);
					hs_msg_ack_add(&w, lsn, lsn);
					hs_msg_wr_end(&w);
					acked++;
				}
				if (lsn > seen_hi)
					seen_hi = lsn;
				lsn++;
			}
		}
		if (hs_sconn_flush(&c) < 0)
			return 2;
	}
	hs_sconn_close(&c);
	return 0;
}

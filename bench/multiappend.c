/*
 * multiappend - benchmark driver: append records spread over many streams
 * through one client connection, the way a multiplexing producer (a log
 * shipper, a gateway) would, and report the throughput.  Used by bench/serve.
 *
 * usage: multiappend -a ADDR --prefix P --streams N --count TOTAL
 *                    [--per-entry K] [--frame-records R] [--inflight F]
 *                    [--size S]
 *
 * Streams P000000 .. P<N-1> (six digits) must exist.  Records go round-robin
 * over the streams, K per APPEND entry (one run per stream per entry), R per
 * APPEND frame (fewer if the server's max frame is smaller), at most F frames
 * unacknowledged.  Every APPENDED entry must report status 0 and its count,
 * else the driver fails.  Records carry timestamp 0 (the server stamps them)
 * and an S-byte payload.
 *
 * Output, one line on stdout:
 *   appended TOTAL records to N streams in T s: X records/s
 * Exit status 0, 1 on any failure (with a message on stderr), 64 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "client.h"
#include "err.h"
#include "proto.h"
#include "proto_client.h"
#include "run.h"
#include "syncconn.h"

struct opts {
	const char *addr, *prefix;
	uint64_t streams, count, per_entry, frame_records, inflight, size;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: multiappend -a ADDR --prefix P --streams N --count TOTAL "
			"[--per-entry K] [--frame-records R] [--inflight F] [--size S]\n");
	return 64;
}

static int num(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || !*v ? -1 : 0;
}

/*
 * Build one APPEND frame of at most `want` records on c's output, starting
 * at stream *next (advanced round-robin).  Returns the records added.
 */
static uint64_t build(struct hs_sconn *c, const struct opts *o, uint64_t id, uint64_t want,
		      uint64_t *next, const uint8_t *payload)
{
	struct hs_msg_wr w;
	struct hs_run_builder rb;
	char name[HS_NAME_MAX + 1];
	uint64_t added = 0;
	/* Leave room for one more entry: its records (12 bytes of header
	 * each), name, entry header and run header/CRC, and the frame CRC. */
	size_t entry = o->per_entry * (o->size + 12) + strlen(o->prefix) + 7 + 12 + 40 + 64;
	size_t room = c->max_out > 2 * entry ? c->max_out - entry : entry;

	hs_msg_append_begin(&w, hs_sconn_out(c), id);
	while (added < want && hs_msg_wr_size(&w) < room) {
		int len = snprintf(name, sizeof(name), "%s%06" PRIu64, o->prefix, *next);
		uint64_t k;

		hs_msg_append_run_open(&w, name, (uint8_t)len, 0);
		hs_run_begin(&rb, w.b, 0, 0, 0, NULL, 0);
		for (k = 0; k < o->per_entry && added < want; k++, added++)
			hs_run_add(&rb, 0, payload, (uint32_t)o->size);
		hs_run_end(&rb);
		hs_msg_wr_run_close(&w);
		*next = (*next + 1) % o->streams;
	}
	hs_msg_wr_end(&w);
	return added;
}

/* Check one APPENDED: every entry status 0; returns the records acked or
 * -1 with a message printed. */
static int64_t check(const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_appended_ent e;
	int64_t n = 0;
	int r;

	if (f->type != HS_MSG_APPENDED ||
	    hs_msg_clist_dec(HS_MSG_APPENDED, f->body, f->body_len, &l) < 0) {
		fprintf(stderr, "multiappend: unexpected answer %s\n", hs_msg_name(f->type));
		return -1;
	}
	while ((r = hs_appended_next(&l, &e)) == 1) {
		if (e.status) {
			fprintf(stderr, "multiappend: append failed: %s: %.*s\n",
				hs_strerror(e.status), (int)e.text_len, e.text);
			return -1;
		}
		n += e.count;
	}
	if (r < 0) {
		fprintf(stderr, "multiappend: malformed APPENDED\n");
		return -1;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "streams", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "per-entry", required_argument, NULL, 'k' },
		{ "frame-records", required_argument, NULL, 'r' },
		{ "inflight", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .per_entry = 1, .frame_records = 8192, .inflight = 16, .size = 100 };
	struct hs_sconn c;
	struct hs_frame f;
	char msg[512];
	uint8_t *payload;
	uint64_t sent = 0, acked = 0, inflight = 0, next = 0, id = 1;
	double t0, dt;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "a:", lo, NULL)) != -1) {
		uint64_t *v = NULL;

		switch (ch) {
		case 'a': o.addr = optarg; continue;
		case 'p': o.prefix = optarg; continue;
		case 's': v = &o.streams; break;
		case 'n': v = &o.count; break;
		case 'k': v = &o.per_entry; break;
		case 'r': v = &o.frame_records; break;
		case 'f': v = &o.inflight; break;
		case 'z': v = &o.size; break;
		default: return usage();
		}
		if (num(optarg, v) < 0)
			return usage();
	}
	if (optind != argc || !o.addr || !o.prefix || !o.streams || !o.count ||
	    o.streams > 999999 || o.size > 65536)
		return usage();

	r = hs_client_connect(&c, o.addr, 30000, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "multiappend: %s\n", msg);
		return 1;
	}
	payload = hs_xmalloc(o.size);
	memset(payload, 'x', o.size);

	t0 = now_s();
	while (acked < o.count) {
		while (sent < o.count && inflight < o.inflight) {
			uint64_t want = o.count - sent;

			if (want > o.frame_records)
				want = o.frame_records;
			sent += build(&c, &o, id++, want, &next, payload);
			inflight++;
		}
		r = hs_sconn_recv(&c, &f);
		if (r <= 0) {
			fprintf(stderr, "multiappend: connection to hs-serve failed: %s\n",
				r ? hs_strerror(r) : "closed");
			goto out_fail;
		}
		int64_t n = check(&f);

		if (n < 0)
			goto out_fail;
		acked += (uint64_t)n;
		inflight--;
	}
	dt = now_s() - t0;
	printf("appended %" PRIu64 " records to %" PRIu64 " streams in %.3f s: %.0f records/s\n",
	       acked, o.streams, dt, acked / dt);
	free(payload);
	hs_sconn_close(&c);
	return 0;

out_fail:
	free(payload);
	hs_sconn_close(&c);
	return 1;
}

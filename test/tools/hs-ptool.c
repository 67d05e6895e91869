/*
 * hs-ptool - a scriptable client of the serve<->peer protocol (proto.h), for
 * tests and benchmarks of hs-peer.  It speaks over one blocking connection
 * (libcore/syncconn.h); results go to stdout, diagnostics to stderr, and the
 * exit status follows hs_exit_status() (76 for a version mismatch, 75 for a
 * sealed refusal, 69 for a lost connection...).
 *
 *   hs-ptool -a ADDR store --log L --epoch E --count N [--esn-start N]
 *            [--run R] [--size S] [--inflight K] [--rate R] [--recovery B]
 *            [--acks FILE] [--payload-file F | --stdin]
 *       N records at LSNs eE n<esn-start>.., in runs of R records, one run
 *       per STORE, K STOREs in flight.  Payloads: "<lsn>:" then letters,
 *       S bytes (deterministic), or one line per record from F / stdin.
 *       --acks appends "FIRST LAST" per acknowledged run, written as soon as
 *       its STORED arrives.  Prints one summary line with throughput and
 *       STORED latency percentiles.  Exit status non-zero if any run was
 *       refused.
 *   hs-ptool -a ADDR read --log L [--from LSN] [--until LSN] [--window N]
 *            [--no-refill] [--ignore-released] [--count N] [--idle-exit DUR]
 *            [--format line|hex|lsn|payload]
 *       One read stream; records as "LSN<TAB>payload" (line: raw bytes;
 *       hex), "LSN" (lsn) or the payload alone (payload); gaps as
 *       "GAP LO HI REASON" (on stderr with --format payload, so the payload
 *       stream stays clean).  LSNs must strictly increase (exit 65 if not).
 *       Ends at END, after --count records, or --idle-exit after the
 *       stream went quiet.
 *   seal --log L --epoch E [--soft] [--lce N] | release --log L --lsn X |
 *   trim --log L --lsn X | meta --log L | stats | hello --version V |
 *   raw [--frame TYPE] --hex HEX [--no-hello] | garbage N [--no-hello]
 *       Send bytes (raw; with --frame wrapped in a valid frame of that type,
 *       id 2) after the handshake or before it, then print "closed" if the
 *       peer closed the connection within the timeout, else "open".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "pos.h"
#include "proto.h"
#include "run.h"
#include "syncconn.h"
#include "wire.h"

static const char usage_text[] =
	"usage: hs-ptool [-a ADDR] [-t DUR] COMMAND [options]\n"
	"  store --log L --epoch E --count N [--esn-start N] [--run R] [--size S]\n"
	"        [--inflight K] [--rate R] [--recovery BALLOT] [--acks FILE]\n"
	"        [--payload-file F | --stdin]\n"
	"  read --log L [--from LSN] [--until LSN] [--window N] [--no-refill]\n"
	"       [--ignore-released] [--count N] [--idle-exit DUR] [--format F]\n"
	"  seal --log L --epoch E [--soft] [--lce N]\n"
	"  release --log L --lsn LSN | trim --log L --lsn LSN | meta --log L | stats\n"
	"  hello --version V | raw [--frame TYPE] --hex HEX [--no-hello]\n"
	"  garbage N [--no-hello]\n";

static const char help_text[] =
	"hs-ptool - test client of the hs-peer protocol\n"
	"\n"
	"usage: hs-ptool [-a ADDR] [-t DUR] COMMAND [options]\n"
	"\n"
	"commands: store, read, seal, release, trim, meta, stats, hello, raw, garbage\n"
	"\n"
	"      --log L              log id\n"
	"      --epoch E            epoch of the stored LSNs / of the seal\n"
	"      --esn-start N        first ESN to store (default 1)\n"
	"      --count N            records to store / to read before exiting\n"
	"      --run R              records per run (default 100)\n"
	"      --size S             payload bytes (default 100)\n"
	"      --inflight K         STORE frames in flight (default 8)\n"
	"      --rate R             offered load in records/s (default: as fast as possible)\n"
	"      --recovery BALLOT    store recovery runs with this ballot\n"
	"      --acks FILE          append \"FIRST LAST\" per acknowledged run\n"
	"      --payload-file F     one payload per line of F\n"
	"      --stdin              one payload per line of stdin\n"
	"      --from LSN           first LSN to read (default e1n1... i.e. 1)\n"
	"      --until LSN          last LSN to read (inclusive)\n"
	"      --window N           records of credit (default 10000; 0 = unlimited)\n"
	"      --no-refill          never grant more credit\n"
	"      --ignore-released    read beyond the released point\n"
	"      --idle-exit DUR      exit 0 after the stream was quiet for DUR\n"
	"      --format F           line, hex, lsn or payload\n"
	"      --soft               soft seal\n"
	"      --lce N              last clean epoch for SEAL (default 0)\n"
	"      --lsn LSN            LSN for release and trim\n"
	"      --version V          (hello) protocol version to announce\n"
	"      --hex HEX            (raw) bytes to send\n"
	"      --frame TYPE         (raw) wrap the --hex bytes in a valid frame of TYPE\n"
	"      --no-hello           (raw, garbage) send before the handshake\n"
	"  -a, --addr ADDR          peer address (HS_ADDR)\n"
	"  -t, --timeout DUR        per wait (default 5s)\n"
	"  -v, -q, -h, -V           verbose, quiet, help, version\n";

enum {
	OPT_LOG = HS_OPT_FIRST_PRIVATE, OPT_EPOCH, OPT_ESN_START, OPT_COUNT, OPT_RUN,
	OPT_SIZE, OPT_INFLIGHT, OPT_RATE, OPT_RECOVERY, OPT_ACKS, OPT_PAYLOAD_FILE,
	OPT_STDIN, OPT_FROM, OPT_UNTIL, OPT_WINDOW, OPT_NO_REFILL, OPT_IGNORE_RELEASED,
	OPT_IDLE_EXIT, OPT_FORMAT, OPT_SOFT, OPT_LCE, OPT_LSN, OPT_PVERSION, OPT_HEX,
	OPT_NO_HELLO, OPT_FRAME,
};

enum fmt { FMT_LINE, FMT_HEX, FMT_LSN, FMT_PAYLOAD };

struct opts {
	const char *cmd;
	const char *arg;          /* garbage N */
	uint64_t log;
	int has_log;
	uint64_t epoch;
	uint64_t esn_start;
	uint64_t count;
	int has_count;
	uint64_t run, size, inflight;
	uint64_t rate;
	uint64_t ballot;
	int recovery;
	const char *acks, *payload_file;
	int use_stdin;
	uint64_t from, until;
	uint64_t window;
	int no_refill, ignore_released;
	uint64_t idle_ms;
	enum fmt fmt;
	int soft;
	uint64_t lce, lsn;
	int has_lsn;
	uint64_t version;
	const char *hex;
	int no_hello;
	int has_frame;
	uint64_t frame_type;
};

static struct hs_cli cli;
static struct opts o;

static void lsnstr(char *buf, size_t n, uint64_t lsn)
{
	if (lsn == 0)
		snprintf(buf, n, "0");
	else if (lsn == UINT64_MAX)
		snprintf(buf, n, "max");
	else
		hs_lsn_fmt(buf, n, lsn);
}

static int fail_conn(int r, const char *what, struct hs_sconn *c)
{
	if (r == 0)
		return hs_cli_fail(&cli, EX_UNAVAILABLE, "%s: the peer closed the connection", what);
	if ((r == -HS_EPROTO || r == -HS_ETOOBIG) && c->why)
		return hs_cli_fail(&cli, hs_exit_status(r), "%s: %s", what, c->why);
	return hs_cli_fail(&cli, hs_exit_status(r), "%s: %s", what, hs_strerror(r));
}

static int connect_peer(struct hs_sconn *c, int hello)
{
	char msg[512];
	int r;

	if (!cli.addr)
		return hs_cli_usage_error(&cli, "no peer address: use -a ADDR or HS_ADDR");
	r = hs_sconn_open(c, cli.addr, (int)cli.timeout_ms);
	if (r < 0)
		return hs_cli_fail(&cli, hs_exit_status(r), "cannot connect to '%s': %s", cli.addr,
				   hs_strerror(r));
	if (!hello)
		return 0;
	r = hs_sconn_hello(c, (uint16_t)o.version, HS_ROLE_TOOL, 0, msg, sizeof(msg));
	if (r < 0 && msg[0])
		return hs_cli_fail(&cli, hs_exit_status(r), "peer refused HELLO: %s", msg);
	if (r < 0)
		return fail_conn(r, "HELLO", c);
	return 0;
}

/* Wait for the reply to request id, skipping nothing else: the simple
 * commands have one request in flight. */
static int wait_reply(struct hs_sconn *c, uint64_t id, uint16_t type, struct hs_frame *f,
		      const char *what)
{
	int r = hs_sconn_recv(c, f);

	if (r <= 0)
		return fail_conn(r, what, c);
	if (f->id != id)
		return hs_cli_fail(&cli, EX_PROTOCOL, "%s: reply with id %llu, expected %llu", what,
				   (unsigned long long)f->id, (unsigned long long)id);
	if (f->type == HS_MSG_RESULT && type != HS_MSG_RESULT) {
		struct hs_result res;

		if (hs_msg_result_dec(f->body, f->body_len, &res) == 0 && res.status < 0)
			return hs_cli_fail(&cli, hs_exit_status(res.status), "%s: %.*s", what,
					   (int)res.msg_len, res.msg);
	}
	if (f->type != type)
		return hs_cli_fail(&cli, EX_PROTOCOL, "%s: unexpected %s reply", what,
				   hs_msg_name(f->type));
	return 0;
}

/* ---- store ---------------------------------------------------------------- */

struct inflight {
	uint64_t id, first, last;
	uint64_t t_us;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The deterministic payload of lsn: "<lsn>:" then letters, size bytes. */
static void gen_payload(struct hs_buf *b, uint64_t lsn, size_t size)
{
	char pre[HS_POS_FMT_MAX + 1];
	int n = hs_lsn_fmt(pre, sizeof(pre) - 1, lsn);

	pre[n++] = ':';
	hs_buf_reset(b);
	hs_buf_reserve(b, size);
	for (size_t i = 0; i < size; i++)
		b->data[i] = i < (size_t)n ? (uint8_t)pre[i] : (uint8_t)('a' + (lsn + i) % 26);
	b->len = size;
}

static int cmd_store(void)
{
	struct hs_sconn c;
	struct hs_buf pay = HS_BUF_INIT;
	struct inflight *fl;
	uint32_t *lat;
	uint64_t nframes, sent = 0, acked = 0, nlat = 0, next_id = 2, t0, bytes = 0;
	uint64_t total = o.count, esn = o.esn_start;
	uint32_t copyset[1] = { 1 };
	size_t nfl = 0;
	FILE *in = NULL;
	char *line = NULL;
	size_t linecap = 0;
	int acks_fd = -1, refused = 0, status, r, eof = 0;

	if (!o.has_log || !o.epoch || (!o.has_count && !o.use_stdin && !o.payload_file))
		return hs_cli_usage_error(&cli, "store needs --log, --epoch and --count");
	if (o.epoch > UINT32_MAX || !o.esn_start || o.esn_start > UINT32_MAX || !o.run ||
	    o.run > UINT32_MAX || !o.inflight)
		return hs_cli_usage_error(&cli, "store: bad --epoch, --esn-start, --run or --inflight");
	if (o.use_stdin)
		in = stdin;
	else if (o.payload_file && !(in = fopen(o.payload_file, "r")))
		return hs_cli_fail(&cli, EX_NOINPUT, "cannot open '%s': %s", o.payload_file,
				   strerror(errno));
	if (!o.has_count)
		total = UINT64_MAX;
	if (o.acks) {
		acks_fd = open(o.acks, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (acks_fd < 0)
			return hs_cli_fail(&cli, EX_CANTCREAT, "cannot open '%s': %s", o.acks,
					   strerror(errno));
	}
	status = connect_peer(&c, 1);
	if (status)
		goto out;
	nframes = in ? 1024 : (total + o.run - 1) / o.run;
	lat = hs_xmalloc(nframes * sizeof(*lat));
	fl = hs_xcalloc(o.inflight, sizeof(*fl));
	t0 = hs_now_us();

	while (!eof || nfl) {
		struct hs_frame f;
		struct hs_stored_rd rd;

		/* Send while the window allows and the rate is not ahead. */
		while (!eof && nfl < o.inflight) {
			struct hs_msg_wr w;
			struct hs_run_builder rb;
			uint64_t first = HS_LSN(o.epoch, esn), n = 0, ts = hs_wall_ms();

			if (sent >= total || esn > UINT32_MAX) {
				eof = 1;
				break;
			}
			if (o.rate) {
				uint64_t due = t0 + sent * 1000000 / o.rate, now = hs_now_us();

				if (now < due) {
					if (nfl)
						break; /* read replies meanwhile */
					usleep((useconds_t)(due - now));
				}
			}
			hs_msg_store_begin(&w, hs_sconn_out(&c), next_id);
			hs_msg_store_run_open(&w, o.log, first);
			hs_run_begin(&rb, hs_sconn_out(&c), o.recovery ? HS_RUN_RECOVERY : 0, 0,
				     o.recovery ? (uint32_t)o.ballot : 1, copyset, 1);
			while (n < o.run && sent + n < total && esn + n <= UINT32_MAX) {
				if (in) {
					ssize_t len = getline(&line, &linecap, in);

					if (len < 0) {
						eof = 1;
						break;
					}
					if (len && line[len - 1] == '\n')
						len--;
					hs_run_add(&rb, ts, line, (uint32_t)len);
					bytes += (uint64_t)len;
				} else {
					gen_payload(&pay, first + n, o.size);
					hs_run_add(&rb, ts, pay.data, (uint32_t)pay.len);
					bytes += pay.len;
				}
				n++;
			}
			if (!n) {
				/* Nothing read: take the empty frame back out. */
				hs_buf_reset(hs_sconn_out(&c));
				break;
			}
			hs_run_end(&rb);
			hs_msg_wr_run_close(&w);
			hs_msg_wr_end(&w);
			r = hs_sconn_flush(&c);
			if (r < 0) {
				status = fail_conn(r, "STORE", &c);
				goto out_free;
			}
			fl[nfl].id = next_id++;
			fl[nfl].first = first;
			fl[nfl].last = first + n - 1;
			fl[nfl].t_us = hs_now_us();
			nfl++;
			sent += n;
			esn += n;
			/* Collect replies that are already here, for honest latencies. */
			if (hs_sconn_wait(&c, 0) > 0)
				break;
		}
		if (!nfl)
			continue;
		if (o.rate && !eof && nfl < o.inflight && hs_sconn_wait(&c, 1) == 0)
			continue;
		r = hs_sconn_recv(&c, &f);
		if (r <= 0) {
			status = fail_conn(r, "waiting for STORED", &c);
			goto out_free;
		}
		if (f.type == HS_MSG_RESULT) {
			struct hs_result res;

			if (hs_msg_result_dec(f.body, f.body_len, &res) == 0)
				status = hs_cli_fail(&cli, hs_exit_status(res.status), "STORE: %.*s",
						     (int)res.msg_len, res.msg);
			else
				status = EX_PROTOCOL;
			goto out_free;
		}
		if (f.type != HS_MSG_STORED || hs_msg_stored_dec(f.body, f.body_len, &rd) < 0) {
			status = hs_cli_fail(&cli, EX_PROTOCOL, "unexpected %s reply to STORE",
					     hs_msg_name(f.type));
			goto out_free;
		}
		for (size_t i = 0; i < nfl; i++) {
			int32_t st;
			uint32_t seal;
			char a[HS_POS_FMT_MAX], b[HS_POS_FMT_MAX];

			if (fl[i].id != f.id)
				continue;
			if (nlat == nframes) {
				nframes *= 2;
				lat = hs_xrealloc(lat, nframes * sizeof(*lat));
			}
			lat[nlat++] = (uint32_t)(hs_now_us() - fl[i].t_us);
			lsnstr(a, sizeof(a), fl[i].first);
			lsnstr(b, sizeof(b), fl[i].last);
			if (hs_stored_next(&rd, &st, &seal) != 1) {
				status = hs_cli_fail(&cli, EX_PROTOCOL, "empty STORED");
				goto out_free;
			}
			if (st < 0) {
				fprintf(stderr, "%s: run %s..%s refused: %s (seal %u)\n", cli.prog, a,
					b, hs_strerror(st), seal);
				if (!refused)
					refused = st;
			} else {
				acked += fl[i].last - fl[i].first + 1;
				if (acks_fd >= 0)
					dprintf(acks_fd, "%s %s\n", a, b);
			}
			fl[i] = fl[--nfl];
			break;
		}
	}
	{
		double secs = (double)(hs_now_us() - t0) / 1e6;

		qsort(lat, nlat, sizeof(*lat), cmp_u32);
		if (secs <= 0)
			secs = 1e-6;
		printf("stored %llu records in %.3f s: %.0f records/s, %.1f MB/s, "
		       "STORED p50 %u us p99 %u us\n",
		       (unsigned long long)acked, secs, (double)acked / secs,
		       (double)bytes / secs / 1e6, nlat ? lat[nlat / 2] : 0,
		       nlat ? lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] : 0);
	}
	status = refused ? hs_exit_status(refused) : 0;
out_free:
	free(fl);
	free(lat);
out:
	hs_sconn_close(&c);
	if (acks_fd >= 0)
		close(acks_fd);
	if (in && in != stdin)
		fclose(in);
	free(line);
	hs_buf_free(&pay);
	return status;
}

/* ---- read ----------------------------------------------------------------- */

static const char *gap_name(uint8_t reason)
{
	switch (reason) {
	case HS_GAP_TRIM: return "TRIM";
	case HS_GAP_NORECORDS: return "NORECORDS";
	case HS_GAP_CHECKSUM: return "CHECKSUM";
	}
	return "?";
}

static void put_hex(FILE *out, const uint8_t *p, uint32_t n)
{
	static const char hx[] = "0123456789abcdef";

	for (uint32_t i = 0; i < n; i++) {
		putc(hx[p[i] >> 4], out);
		putc(hx[p[i] & 15], out);
	}
}

static int cmd_read(void)
{
	struct hs_sconn c;
	struct hs_start st = { 0 };
	uint64_t got = 0, granted_used = 0, last = 0;
	int status, r;

	if (!o.has_log)
		return hs_cli_usage_error(&cli, "read needs --log");
	if (o.window > UINT32_MAX)
		return hs_cli_usage_error(&cli, "--window too large");
	status = connect_peer(&c, 1);
	if (status)
		goto out;
	st.stream = 1;
	st.log = o.log;
	st.from = o.from ? o.from : 1;
	st.until = o.until ? o.until : UINT64_MAX;
	st.win_records = (uint32_t)o.window;
	st.flags = o.ignore_released ? HS_READ_IGNORE_RELEASED : 0;
	hs_msg_start_enc(hs_sconn_out(&c), 2, &st);
	if (o.idle_ms)
		c.timeout_ms = (int)o.idle_ms;
	for (;;) {
		struct hs_frame f;

		r = hs_sconn_recv(&c, &f);
		if (r == -HS_ETIMEOUT && o.idle_ms) {
			status = 0;
			break;
		}
		if (r <= 0) {
			status = fail_conn(r, "read", &c);
			break;
		}
		if (f.type == HS_MSG_RECORDS) {
			struct hs_records m;
			const uint8_t *runb;
			uint64_t first;
			size_t len;

			if (hs_msg_records_dec(f.body, f.body_len, &m) < 0) {
				status = hs_cli_fail(&cli, EX_PROTOCOL, "malformed RECORDS");
				break;
			}
			while (hs_records_next(&m, &first, &runb, &len) == 1) {
				struct hs_run run;
				struct hs_run_iter it;
				const uint8_t *p;
				uint32_t plen;
				uint64_t lsn = first;

				r = hs_run_parse(runb, len, &run);
				if (r < 0) {
					status = hs_cli_fail(&cli, hs_exit_status(r),
							     "received a bad run at %llu: %s",
							     (unsigned long long)first, hs_strerror(r));
					goto out;
				}
				hs_run_iter_init(&it, &run);
				while (hs_run_next(&it, NULL, &p, &plen)) {
					char ls[HS_POS_FMT_MAX];

					if (lsn <= last) {
						lsnstr(ls, sizeof(ls), lsn);
						status = hs_cli_fail(&cli, EX_DATAERR,
								     "LSN %s not after the last one", ls);
						goto out;
					}
					last = lsn;
					lsnstr(ls, sizeof(ls), lsn);
					switch (o.fmt) {
					case FMT_LINE:
						fputs(ls, stdout);
						putc('\t', stdout);
						fwrite(p, 1, plen, stdout);
						putc('\n', stdout);
						break;
					case FMT_HEX:
						fputs(ls, stdout);
						putc('\t', stdout);
						put_hex(stdout, p, plen);
						putc('\n', stdout);
						break;
					case FMT_LSN:
						fputs(ls, stdout);
						putc('\n', stdout);
						break;
					case FMT_PAYLOAD:
						fwrite(p, 1, plen, stdout);
						putc('\n', stdout);
						break;
					}
					lsn++;
					got++;
					granted_used++;
					if (o.has_count && got >= o.count) {
						status = 0;
						goto out;
					}
				}
			}
			if (fflush(stdout)) {
				status = EX_IOERR;
				goto out;
			}
			if (o.window && !o.no_refill && granted_used >= o.window / 2) {
				struct hs_window w = { .stream = 1,
						       .add_records = (uint32_t)granted_used };

				hs_msg_window_enc(hs_sconn_out(&c), 3, &w);
				granted_used = 0;
			}
		} else if (f.type == HS_MSG_GAP) {
			struct hs_gap g;
			char a[HS_POS_FMT_MAX], b[HS_POS_FMT_MAX];

			if (hs_msg_gap_dec(f.body, f.body_len, &g) < 0) {
				status = hs_cli_fail(&cli, EX_PROTOCOL, "malformed GAP");
				break;
			}
			if (g.lo <= last) {
				status = hs_cli_fail(&cli, EX_DATAERR, "GAP not after the last LSN");
				break;
			}
			last = g.hi;
			lsnstr(a, sizeof(a), g.lo);
			lsnstr(b, sizeof(b), g.hi);
			fprintf(o.fmt == FMT_PAYLOAD ? stderr : stdout, "GAP %s %s %s\n", a, b,
				gap_name(g.reason));
			fflush(stdout);
		} else if (f.type == HS_MSG_END) {
			struct hs_end e;

			if (hs_msg_end_dec(f.body, f.body_len, &e) < 0) {
				status = hs_cli_fail(&cli, EX_PROTOCOL, "malformed END");
				break;
			}
			status = e.status < 0 ? hs_cli_fail(&cli, hs_exit_status(e.status),
							    "stream ended: %s", hs_strerror(e.status))
					      : 0;
			break;
		} else if (f.type == HS_MSG_RESULT) {
			struct hs_result res;

			if (hs_msg_result_dec(f.body, f.body_len, &res) == 0 && res.status < 0) {
				status = hs_cli_fail(&cli, hs_exit_status(res.status), "read: %.*s",
						     (int)res.msg_len, res.msg);
				break;
			}
		} else {
			status = hs_cli_fail(&cli, EX_PROTOCOL, "unexpected %s frame",
					     hs_msg_name(f.type));
			break;
		}
	}
out:
	if (fflush(stdout) && !status)
		status = EX_IOERR;
	hs_sconn_close(&c);
	return status;
}

/* ---- simple requests ------------------------------------------------------ */

static int cmd_seal(void)
{
	struct hs_sconn c;
	struct hs_seal m = { 0 };
	struct hs_sealed sd;
	struct hs_frame f;
	uint32_t e;
	uint64_t lng, max;
	int status;

	if (!o.has_log || !o.epoch || o.epoch > UINT32_MAX || o.lce > UINT32_MAX)
		return hs_cli_usage_error(&cli, "seal needs --log and --epoch");
	status = connect_peer(&c, 1);
	if (status)
		goto out;
	m.log = o.log;
	m.epoch = (uint32_t)o.epoch;
	m.soft = (uint8_t)o.soft;
	m.lce = (uint32_t)o.lce;
	hs_msg_seal_enc(hs_sconn_out(&c), 2, &m);
	status = wait_reply(&c, 2, HS_MSG_SEALED, &f, "SEAL");
	if (status)
		goto out;
	if (hs_msg_sealed_dec(f.body, f.body_len, &sd) < 0) {
		status = hs_cli_fail(&cli, EX_PROTOCOL, "malformed SEALED");
		goto out;
	}
	if (sd.status < 0) {
		status = hs_cli_fail(&cli, hs_exit_status(sd.status), "SEAL: %s",
				     hs_strerror(sd.status));
		goto out;
	}
	printf("seal=%u\nsoft_seal=%u\ntrim=%llu\n", sd.seal, sd.soft_seal,
	       (unsigned long long)sd.trim);
	while (hs_sealed_next(&sd, &e, &lng, &max) == 1) {
		char a[HS_POS_FMT_MAX], b[HS_POS_FMT_MAX];

		lsnstr(a, sizeof(a), lng);
		lsnstr(b, sizeof(b), max);
		printf("epoch %u lng %s max_lsn %s\n", e, a, b);
	}
out:
	hs_sconn_close(&c);
	return status;
}

static int cmd_release_trim(int trim)
{
	struct hs_sconn c;
	struct hs_frame f;
	struct hs_result res;
	int status;

	if (!o.has_log || !o.has_lsn)
		return hs_cli_usage_error(&cli, "%s needs --log and --lsn", o.cmd);
	status = connect_peer(&c, 1);
	if (status)
		goto out;
	if (trim) {
		struct hs_trim m = { .log = o.log, .trim = o.lsn };

		hs_msg_trim_enc(hs_sconn_out(&c), 2, &m);
	} else {
		struct hs_msg_wr w;

		hs_msg_release_begin(&w, hs_sconn_out(&c), 2);
		hs_msg_release_add(&w, o.log, o.lsn);
		hs_msg_wr_end(&w);
	}
	status = wait_reply(&c, 2, HS_MSG_RESULT, &f, trim ? "TRIM" : "RELEASE");
	if (status)
		goto out;
	if (hs_msg_result_dec(f.body, f.body_len, &res) < 0) {
		status = hs_cli_fail(&cli, EX_PROTOCOL, "malformed RESULT");
		goto out;
	}
	if (res.status < 0)
		status = hs_cli_fail(&cli, hs_exit_status(res.status), "%s: %.*s", o.cmd,
				     (int)res.msg_len, res.msg);
out:
	hs_sconn_close(&c);
	return status;
}

static int cmd_meta(void)
{
	struct hs_sconn c;
	struct hs_getmeta g = { .log = o.log };
	struct hs_meta m;
	struct hs_frame f;
	char a[HS_POS_FMT_MAX], b[HS_POS_FMT_MAX], d[HS_POS_FMT_MAX];
	int status;

	if (!o.has_log)
		return hs_cli_usage_error(&cli, "meta needs --log");
	status = connect_peer(&c, 1);
	if (status)
		goto out;
	hs_msg_getmeta_enc(hs_sconn_out(&c), 2, &g);
	status = wait_reply(&c, 2, HS_MSG_META, &f, "GETMETA");
	if (status)
		goto out;
	if (hs_msg_meta_dec(f.body, f.body_len, &m) < 0) {
		status = hs_cli_fail(&cli, EX_PROTOCOL, "malformed META");
		goto out;
	}
	if (m.status < 0) {
		status = hs_cli_fail(&cli, hs_exit_status(m.status), "GETMETA: %s",
				     hs_strerror(m.status));
		goto out;
	}
	lsnstr(a, sizeof(a), m.released);
	lsnstr(b, sizeof(b), m.trim);
	lsnstr(d, sizeof(d), m.max_lsn);
	printf("seal=%u\nsoft_seal=%u\nlce=%u\nreleased=%s\ntrim=%s\nmax_lsn=%s\n", m.seal,
	       m.soft_seal, m.lce, a, b, d);
out:
	hs_sconn_close(&c);
	return status;
}

static int cmd_stats(void)
{
	struct hs_sconn c;
	struct hs_statsreply m;
	struct hs_frame f;
	int status;

	status = connect_peer(&c, 1);
	if (status)
		goto out;
	hs_msg_stats_enc(hs_sconn_out(&c), 2);
	status = wait_reply(&c, 2, HS_MSG_STATSREPLY, &f, "STATS");
	if (status)
		goto out;
	hs_msg_statsreply_dec(f.body, f.body_len, &m);
	fwrite(m.text, 1, m.len, stdout);
out:
	hs_sconn_close(&c);
	return status;
}

static int cmd_hello(void)
{
	struct hs_sconn c;
	int status = connect_peer(&c, 1);

	if (!status)
		printf("version=%u role=%u node_id=%u max_frame=%u\n", c.hello.version,
		       c.hello.role, c.hello.node_id, c.hello.max_frame);
	hs_sconn_close(&c);
	return status;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Send raw bytes, then report whether the peer closed the connection
 * within the timeout: prints "closed" or "open". */
static int cmd_raw(int garbage)
{
	struct hs_sconn c;
	struct hs_buf *out;
	uint64_t n = 0;
	int status, r;

	if (garbage) {
		if (!o.arg || hs_parse_u64(o.arg, &n) < 0 || n < 4 || n > (64u << 20))
			return hs_cli_usage_error(&cli, "garbage N: N is 4..64M bytes");
	} else if ((!o.hex && !o.has_frame) || (o.hex && strlen(o.hex) % 2)) {
		return hs_cli_usage_error(&cli, "raw needs --hex with an even number of digits");
	}
	status = connect_peer(&c, !o.no_hello);
	if (status)
		goto out;
	out = hs_sconn_out(&c);
	if (garbage) {
		uint64_t x = 0x9e3779b97f4a7c15ull;

		/* Random bytes behind a length field that covers exactly them,
		 * so the peer has a whole frame to reject (bad CRC), not a
		 * partial one to wait for. */
		hs_w32(out, (uint32_t)n);
		for (uint64_t i = 4; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			hs_w8(out, (uint8_t)x);
		}
	} else {
		size_t start = 0;

		if (o.has_frame)
			start = hs_frame_begin(out, (uint16_t)o.frame_type, 0, 2);
		for (const char *p = o.hex ? o.hex : ""; *p; p += 2) {
			int hi = hexval(p[0]), lo = hexval(p[1]);

			if (hi < 0 || lo < 0) {
				status = hs_cli_usage_error(&cli, "--hex: bad digit in '%s'", o.hex);
				goto out;
			}
			hs_w8(out, (uint8_t)(hi << 4 | lo));
		}
		if (o.has_frame)
			hs_frame_end(out, start);
	}
	r = hs_sconn_flush(&c);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
		status = fail_conn(r, "send", &c);
		goto out;
	}
	for (;;) {
		struct hs_frame f;

		r = r < 0 ? r : hs_sconn_recv(&c, &f);
		if (r == 1) {
			hs_debug("received %s", hs_msg_name(f.type));
			continue;
		}
		break;
	}
	if (r == -HS_ETIMEOUT) {
		puts("open");
	} else {
		puts("closed");
	}
out:
	hs_sconn_close(&c);
	return status;
}

/* ---- main ------------------------------------------------------------------ */

static int num(const char *flag, const char *arg, uint64_t *v)
{
	if (hs_parse_u64(arg, v) < 0)
		return hs_cli_usage_error(&cli, "invalid %s '%s' (a decimal number)", flag, arg);
	return 0;
}

static int lsnarg(const char *flag, const char *arg, uint64_t *v)
{
	if (!strcmp(arg, "max")) {
		*v = UINT64_MAX;
		return 0;
	}
	if (hs_lsn_parse(arg, v) < 0)
		return hs_cli_usage_error(&cli, "invalid %s '%s' (eNnM or a decimal LSN)", flag,
					  arg);
	return 0;
}

static int parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_LONGOPTS,
		{ "log", required_argument, NULL, OPT_LOG },
		{ "epoch", required_argument, NULL, OPT_EPOCH },
		{ "esn-start", required_argument, NULL, OPT_ESN_START },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "run", required_argument, NULL, OPT_RUN },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "inflight", required_argument, NULL, OPT_INFLIGHT },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "recovery", required_argument, NULL, OPT_RECOVERY },
		{ "acks", required_argument, NULL, OPT_ACKS },
		{ "payload-file", required_argument, NULL, OPT_PAYLOAD_FILE },
		{ "stdin", no_argument, NULL, OPT_STDIN },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "no-refill", no_argument, NULL, OPT_NO_REFILL },
		{ "ignore-released", no_argument, NULL, OPT_IGNORE_RELEASED },
		{ "idle-exit", required_argument, NULL, OPT_IDLE_EXIT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "soft", no_argument, NULL, OPT_SOFT },
		{ "lce", required_argument, NULL, OPT_LCE },
		{ "lsn", required_argument, NULL, OPT_LSN },
		{ "proto-version", required_argument, NULL, OPT_PVERSION },
		{ "hex", required_argument, NULL, OPT_HEX },
		{ "no-hello", no_argument, NULL, OPT_NO_HELLO },
		{ "frame", required_argument, NULL, OPT_FRAME },
		{ NULL, 0, NULL, 0 },
	};
	int opt, status, r = 0;

	o.esn_start = 1;
	o.run = 100;
	o.size = 100;
	o.inflight = 8;
	o.window = 10000;
	o.version = HS_PROTO_VERSION;
	/* "hello --version V" reads naturally; -V/--version elsewhere is the
	 * common flag, so rewrite it before getopt sees it. */
	if (argc > 1) {
		for (int i = 1; i < argc - 1; i++)
			if (!strcmp(argv[i], "hello"))
				for (int j = i + 1; j < argc; j++)
					if (!strcmp(argv[j], "--version"))
						argv[j] = "--proto-version";
	}
	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS, longopts, NULL)) != -1) {
		switch (hs_cli_option(&cli, opt, optarg, &status)) {
		case 0:
			continue;
		case 1:
			return status ? status : -1; /* --help, --version: done */
		}
		switch (opt) {
		case OPT_LOG: r = num("--log", optarg, &o.log); o.has_log = 1; break;
		case OPT_EPOCH: r = num("--epoch", optarg, &o.epoch); break;
		case OPT_ESN_START: r = num("--esn-start", optarg, &o.esn_start); break;
		case OPT_COUNT: r = num("--count", optarg, &o.count); o.has_count = 1; break;
		case OPT_RUN: r = num("--run", optarg, &o.run); break;
		case OPT_SIZE:
			if (hs_parse_size(optarg, &o.size) < 0 || o.size > (16u << 20))
				r = hs_cli_usage_error(&cli, "invalid --size '%s'", optarg);
			break;
		case OPT_INFLIGHT: r = num("--inflight", optarg, &o.inflight); break;
		case OPT_RATE: r = num("--rate", optarg, &o.rate); break;
		case OPT_RECOVERY:
			r = num("--recovery", optarg, &o.ballot);
			o.recovery = 1;
			break;
		case OPT_ACKS: o.acks = optarg; break;
		case OPT_PAYLOAD_FILE: o.payload_file = optarg; break;
		case OPT_STDIN: o.use_stdin = 1; break;
		case OPT_FROM: r = lsnarg("--from", optarg, &o.from); break;
		case OPT_UNTIL: r = lsnarg("--until", optarg, &o.until); break;
		case OPT_WINDOW: r = num("--window", optarg, &o.window); break;
		case OPT_NO_REFILL: o.no_refill = 1; break;
		case OPT_IGNORE_RELEASED: o.ignore_released = 1; break;
		case OPT_IDLE_EXIT:
			if (hs_parse_duration_ms(optarg, &o.idle_ms) < 0 || !o.idle_ms ||
			    o.idle_ms > INT32_MAX)
				r = hs_cli_usage_error(&cli, "invalid --idle-exit '%s'", optarg);
			break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "line")) o.fmt = FMT_LINE;
			else if (!strcmp(optarg, "hex")) o.fmt = FMT_HEX;
			else if (!strcmp(optarg, "lsn")) o.fmt = FMT_LSN;
			else if (!strcmp(optarg, "payload")) o.fmt = FMT_PAYLOAD;
			else r = hs_cli_usage_error(&cli, "invalid --format '%s'", optarg);
			break;
		case OPT_SOFT: o.soft = 1; break;
		case OPT_LCE: r = num("--lce", optarg, &o.lce); break;
		case OPT_LSN: r = lsnarg("--lsn", optarg, &o.lsn); o.has_lsn = 1; break;
		case OPT_PVERSION:
			r = num("--version", optarg, &o.version);
			if (!r && o.version > UINT16_MAX)
				r = hs_cli_usage_error(&cli, "--version must be 0..65535");
			break;
		case OPT_HEX: o.hex = optarg; break;
		case OPT_NO_HELLO: o.no_hello = 1; break;
		case OPT_FRAME:
			r = num("--frame", optarg, &o.frame_type);
			if (!r && o.frame_type > UINT16_MAX)
				r = hs_cli_usage_error(&cli, "--frame must be 0..65535");
			o.has_frame = 1;
			break;
		default: r = hs_cli_usage_error(&cli, "unexpected option"); break;
		}
		if (r)
			return r;
	}
	if (optind >= argc)
		return hs_cli_usage_error(&cli, "no command");
	o.cmd = argv[optind++];
	if (optind < argc)
		o.arg = argv[optind++];
	if (optind < argc)
		return hs_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
	return hs_cli_finish(&cli);
}

int main(int argc, char **argv)
{
	int status;

	hs_cli_init(&cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	status = parse(argc, argv);
	if (status) {
		if (status < 0) /* --help or --version */
			status = 0;
		goto out;
	}
	if (!strcmp(o.cmd, "store"))
		status = cmd_store();
	else if (!strcmp(o.cmd, "read"))
		status = cmd_read();
	else if (!strcmp(o.cmd, "seal"))
		status = cmd_seal();
	else if (!strcmp(o.cmd, "release"))
		status = cmd_release_trim(0);
	else if (!strcmp(o.cmd, "trim"))
		status = cmd_release_trim(1);
	else if (!strcmp(o.cmd, "meta"))
		status = cmd_meta();
	else if (!strcmp(o.cmd, "stats"))
		status = cmd_stats();
	else if (!strcmp(o.cmd, "hello"))
		status = cmd_hello();
	else if (!strcmp(o.cmd, "raw"))
		status = cmd_raw(0);
	else if (!strcmp(o.cmd, "garbage"))
		status = cmd_raw(1);
	else
		status = hs_cli_usage_error(&cli, "unknown command '%s'", o.cmd);
out:
	hs_cli_free(&cli);
	return status;
}

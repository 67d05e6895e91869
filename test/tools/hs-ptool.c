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
 *   clean --log L --epoch E --recovery BALLOT [--lng LSN] [--end LSN]
 *       CLEAN (proto.h): the recovery of BALLOT finished epoch E with
 *       (lng, end] (both default 0: an empty epoch).
 *   seal --log L --epoch E [--soft] [--lce N] | release --log L --lsn X |
 *   trim --log L --lsn X | meta --log L | stats | hello --version V |
 *   raw [--frame TYPE] --hex HEX [--no-hello] | garbage N [--no-hello]
 *       Send bytes (raw; with --frame wrapped in a valid frame of that type,
 *       id 2) after the handshake or before it, then print "closed" if the
 *       peer closed the connection within the timeout, else "open".
 *   reg --peers A1,A2,... [--q1 N] [--q2 N] [--proposer-id N] [--attempts N]
 *       [--phase-timeout DUR] incr KEY [--count N] [--inflight K]
 *       | read KEY | cas KEY OLD NEW
 *       Drive the real CASPaxos proposer (libpaxos/register.h) over every
 *       listed peer (the acceptors), on the libcore event loop, with one
 *       reconnecting connection per peer.  incr adds 1 to the decimal
 *       counter in KEY (absent = 0) N times, K changes queued at a time
 *       (1: strictly sequential), and prints the final value; read prints
 *       the value; cas sets NEW iff the value is OLD (absent = ""), else
 *       exit 1.  No quorum: exit 69; quorums that do not intersect (q1 + q2
 *       <= peers): exit 78; an outcome unknown: exit 75.  incr goes on after
 *       an increment with an unknown outcome (contention can cause one; it
 *       is applied at most once) and then exits 75 saying "N acknowledged,
 *       U with unknown outcome"; the no-quorum message gives the same two
 *       counts.
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
#include "conn.h"
#include "net.h"
#include "pos.h"
#include "proto.h"
#include "register.h"
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
	"  clean --log L --epoch E --recovery BALLOT [--lng LSN] [--end LSN]\n"
	"  release --log L --lsn LSN | trim --log L --lsn LSN | meta --log L | stats\n"
	"  hello --version V | raw [--frame TYPE] --hex HEX [--no-hello]\n"
	"  garbage N [--no-hello]\n"
	"  reg --peers A1,A2,.. [--q1 N] [--q2 N] [--proposer-id N] [--attempts N]\n"
	"      [--phase-timeout DUR] incr KEY [--count N] [--inflight K] | read KEY\n"
	"      | cas KEY OLD NEW\n";

static const char help_text[] =
	"hs-ptool - test client of the hs-peer protocol\n"
	"\n"
	"usage: hs-ptool [-a ADDR] [-t DUR] COMMAND [options]\n"
	"\n"
	"commands: store, read, seal, clean, release, trim, meta, stats, hello, raw, garbage, reg\n"
	"\n"
	"      --log L              log id\n"
	"      --epoch E            epoch of the stored LSNs / of the seal\n"
	"      --esn-start N        first ESN to store (default 1)\n"
	"      --count N            records to store / to read before exiting\n"
	"      --run R              records per run (default 100)\n"
	"      --size S             payload bytes (default 100)\n"
	"      --inflight K         STORE frames in flight (default 8)\n"
	"      --rate R             offered load in records/s (default: as fast as possible)\n"
	"      --recovery BALLOT    store recovery runs with this ballot; (clean) its ballot\n"
	"      --lng LSN, --end LSN (clean) the recovered epoch's LNG and last LSN\n"
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
	"      --peers A1,A2,...    (reg) the acceptors: every peer of the register set\n"
	"      --q1 N, --q2 N       (reg) phase-1/phase-2 quorums (default: majority);\n"
	"                           q1 + q2 must exceed the number of peers\n"
	"      --proposer-id N      (reg) unique per run (default: from pid and time)\n"
	"      --attempts N         (reg) rounds per change before giving up (1..16, default 8)\n"
	"      --phase-timeout DUR  (reg) wait per phase before a retry (default 500ms)\n"
	"  -a, --addr ADDR          peer address (HS_ADDR)\n"
	"  -t, --timeout DUR        per wait (default 5s)\n"
	"  -v, -q, -h, -V           verbose, quiet, help, version\n";

enum {
	OPT_LOG = HS_OPT_FIRST_PRIVATE, OPT_EPOCH, OPT_ESN_START, OPT_COUNT, OPT_RUN,
	OPT_SIZE, OPT_INFLIGHT, OPT_RATE, OPT_RECOVERY, OPT_ACKS, OPT_PAYLOAD_FILE,
	OPT_STDIN, OPT_FROM, OPT_UNTIL, OPT_WINDOW, OPT_NO_REFILL, OPT_IGNORE_RELEASED,
	OPT_IDLE_EXIT, OPT_FORMAT, OPT_SOFT, OPT_LCE, OPT_LSN, OPT_PVERSION, OPT_HEX,
	OPT_NO_HELLO, OPT_FRAME, OPT_PEERS, OPT_Q1, OPT_Q2, OPT_PROPOSER_ID, OPT_ATTEMPTS,
	OPT_PHASE_TIMEOUT, OPT_LNG, OPT_END,
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
	const char *args[4];      /* positional arguments after the command */
	int nargs;
	int has_inflight;
	const char *peers;
	uint64_t q1, q2, proposer_id, attempts, phase_ms;
	uint64_t lng, end;        /* clean */
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

static int cmd_clean(void)
{
	struct hs_sconn c;
	struct hs_clean m = { 0 };
	struct hs_frame f;
	struct hs_result res;
	int status;

	if (!o.has_log || !o.epoch || o.epoch > UINT32_MAX || !o.recovery ||
	    o.ballot > UINT32_MAX)
		return hs_cli_usage_error(&cli, "clean needs --log, --epoch and --recovery");
	status = connect_peer(&c, 1);
	if (status)
		goto out;
	m.log = o.log;
	m.epoch = (uint32_t)o.epoch;
	m.ballot = (uint32_t)o.ballot;
	m.lng = o.lng;
	m.end = o.end;
	hs_msg_clean_enc(hs_sconn_out(&c), 2, &m);
	status = wait_reply(&c, 2, HS_MSG_RESULT, &f, "CLEAN");
	if (status)
		goto out;
	if (hs_msg_result_dec(f.body, f.body_len, &res) < 0) {
		status = hs_cli_fail(&cli, EX_PROTOCOL, "malformed RESULT");
		goto out;
	}
	if (res.status < 0)
		status = hs_cli_fail(&cli, hs_exit_status(res.status), "clean: %.*s",
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

/* ---- reg ------------------------------------------------------------------- */

#define REG_RECONNECT_MS 200

struct racc {
	struct rctx *x;
	int idx;
	char addr[HS_NET_ADDR_MAX];
	struct hs_conn *c;        /* NULL while down */
	uint64_t retry;           /* reconnect timer id, 0 = none */
	int warned;
};

struct rctx {
	struct hs_loop *loop;
	struct hs_reg_proposer *prop;
	struct racc acc[HS_REG_MAX_ACCEPTORS];
	int nacc;
	uint64_t timer;           /* the proposer's timer id, 0 = none */
	const char *key;
	size_t klen;
	uint64_t todo;            /* incr: changes not yet queued */
	uint64_t inflight;        /* changes queued, not completed */
	uint64_t acked;           /* incr: increments applied */
	uint64_t unknown;         /* incr: outcome unknown (applied at most once) */
	int status;               /* first failure, 0 if none */
	const char *old, *new_;   /* cas */
	struct hs_buf val;        /* the value after the last completed change */
	int have_val;
};

static void racc_connect(struct racc *a);

static void racc_on_retry(struct hs_loop *l, void *arg)
{
	struct racc *a = arg;

	a->retry = 0;
	racc_connect(a);
}

static void racc_down(struct racc *a)
{
	if (!a->retry)
		a->retry = hs_loop_timer(a->x->loop, REG_RECONNECT_MS, racc_on_retry, a);
}

static void racc_frame(struct hs_conn *c, const struct hs_frame *f, void *arg)
{
	struct racc *a = arg;
	struct hs_result res;

	switch (f->type) {
	case HS_MSG_HELLO:
		return;
	case HS_MSG_REG_PROMISE:
	case HS_MSG_REG_ACCEPTED:
		if (hs_reg_proposer_on_reply(a->x->prop, a->idx, f->type, f->body,
					     f->body_len) < 0) {
			hs_warn("%s: malformed %s; reconnecting", a->addr, hs_msg_name(f->type));
			hs_conn_close(c, -HS_EPROTO);
		}
		return;
	case HS_MSG_RESULT:
		if (hs_msg_result_dec(f->body, f->body_len, &res) == 0 && res.status < 0) {
			hs_warn("%s: refused: %.*s", a->addr, (int)res.msg_len, res.msg);
			hs_conn_close(c, res.status);
		}
		return;
	default:
		hs_warn("%s: unexpected %s frame", a->addr, hs_msg_name(f->type));
		hs_conn_close(c, -HS_EPROTO);
	}
}

static void racc_closed(struct hs_conn *c, int err, void *arg)
{
	struct racc *a = arg;

	a->c = NULL;
	if (!a->warned)
		hs_info("%s: connection lost (%s); reconnecting", a->addr,
			err ? hs_strerror(err) : "closed");
	a->warned = 1;
	racc_down(a);
}

static const struct hs_conn_ops racc_ops = {
	.frame = racc_frame,
	.closed = racc_closed,
};

/* Connect without blocking and queue HELLO: requests sent before its reply
 * follow it on the same connection, which the peer serves in order. */
static void racc_connect(struct racc *a)
{
	struct hs_hello h = { .version = HS_PROTO_VERSION, .role = HS_ROLE_TOOL,
			      .max_frame = HS_FRAME_MAX_DEFAULT };
	int fd = hs_net_connect(a->addr, 1);

	if (fd < 0) {
		if (!a->warned)
			hs_info("%s: cannot connect (%s); retrying", a->addr, hs_strerror(fd));
		a->warned = 1;
		racc_down(a);
		return;
	}
	a->c = hs_conn_new(a->x->loop, fd, &racc_ops, a);
	if (!a->c) {
		racc_down(a);
		return;
	}
	hs_msg_hello_enc(hs_conn_out(a->c), 1, &h);
}

static void rop_send(void *arg, int idx, const uint8_t *frame, size_t len)
{
	struct rctx *x = arg;
	struct racc *a = &x->acc[idx];

	/* Best effort: a frame for a peer that is down is lost, which costs
	 * the proposer a timeout at worst. */
	if (a->c && !hs_conn_closing(a->c))
		hs_buf_append(hs_conn_out(a->c), frame, len);
}

static uint64_t rop_now(void *arg)
{
	return hs_now_ms();
}

static uint32_t rop_rand(void *arg)
{
	return (uint32_t)random();
}

static void rop_on_timer(struct hs_loop *l, void *arg)
{
	struct rctx *x = arg;

	x->timer = 0;
	hs_reg_proposer_on_timer(x->prop);
}

static void rop_timer(void *arg, uint64_t at_ms)
{
	struct rctx *x = arg;
	uint64_t now = hs_now_ms();

	hs_loop_timer_cancel(x->loop, x->timer);
	x->timer = hs_loop_timer(x->loop, at_ms > now ? at_ms - now : 0, rop_on_timer, x);
}

/* The value as a counter: absent = 0; anything but a decimal number fails. */
static int counter_of(const uint8_t *cur, size_t len, uint64_t *v)
{
	char buf[32];

	*v = 0;
	if (!len)
		return 0;
	if (len >= sizeof(buf))
		return -HS_EDATA;
	memcpy(buf, cur, len);
	buf[len] = 0;
	return hs_parse_u64(buf, v) < 0 ? -HS_EDATA : 0;
}

static int fn_incr(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		   struct hs_buf *out)
{
	uint64_t v;

	if (counter_of(cur, len, &v) < 0 || v == UINT64_MAX)
		return -HS_EDATA;
	hs_buf_printf(out, "%llu", (unsigned long long)(v + 1));
	return 0;
}

static int fn_cas(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		  struct hs_buf *out)
{
	struct rctx *x = arg;
	size_t ol = strlen(x->old), nl = strlen(x->new_);

	if (len != ol || memcmp(cur, x->old, ol))
		return -HS_EEXIST;
	if (nl == ol && !memcmp(x->old, x->new_, ol))
		return HS_REG_SAME;
	hs_buf_append(out, x->new_, nl);
	return 0;
}

static void reg_done(void *arg, int status, const uint8_t *value, size_t len,
		     uint64_t version);

static void reg_queue(struct rctx *x)
{
	hs_reg_fn fn = !strcmp(o.args[0], "incr") ? fn_incr : fn_cas;
	int r;

	while (x->todo && (!o.inflight || x->inflight < o.inflight) && !x->status) {
		if (!strcmp(o.args[0], "read"))
			r = hs_reg_read(x->prop, x->key, x->klen, reg_done, x);
		else
			r = hs_reg_change(x->prop, x->key, x->klen, fn, reg_done, x);
		if (r < 0) {
			x->status = r;
			return;
		}
		x->todo--;
		x->inflight++;
	}
}

static void reg_done(void *arg, int status, const uint8_t *value, size_t len,
		     uint64_t version)
{
	struct rctx *x = arg;

	x->inflight--;
	if (status == -HS_ETIMEOUT && !strcmp(o.args[0], "incr")) {
		/* Contention can leave an increment's outcome unknown (another
		 * proposer may have built on its partly accepted round); it is
		 * never applied twice, so go on with the others. */
		x->unknown++;
		reg_queue(x);
		return;
	}
	if (status < 0) {
		if (!x->status)
			x->status = status;
		return;
	}
	if (!strcmp(o.args[0], "incr"))
		x->acked++;
	hs_buf_reset(&x->val);
	hs_buf_append(&x->val, value, len);
	x->have_val = 1;
	reg_queue(x);
}

static void reg_turn(struct hs_loop *l, void *arg)
{
	struct rctx *x = arg;

	hs_reg_proposer_flush(x->prop);
	if (!x->inflight && (!x->todo || x->status))
		hs_loop_stop(l);
}

static int cmd_reg(void)
{
	struct rctx *x;
	struct hs_reg_cfg cfg = { 0 };
	struct hs_reg_ops ops = { rop_send, rop_now, rop_rand, rop_timer };
	const char *sub = o.nargs ? o.args[0] : "";
	const char *p;
	int status = 0, r, want = !strcmp(sub, "cas") ? 4 : 2;

	if (strcmp(sub, "incr") && strcmp(sub, "read") && strcmp(sub, "cas"))
		return hs_cli_usage_error(&cli, "reg: use incr KEY, read KEY or cas KEY OLD NEW");
	if (o.nargs != want)
		return hs_cli_usage_error(&cli, "reg %s: %s", sub,
					  want == 4 ? "needs KEY OLD NEW" : "needs KEY");
	if (!o.peers)
		return hs_cli_usage_error(&cli, "reg needs --peers ADDR1,ADDR2,...");
	if (!*o.args[1] || strlen(o.args[1]) > HS_REG_KEY_MAX)
		return hs_cli_usage_error(&cli, "reg: KEY must be 1..%d bytes", HS_REG_KEY_MAX);
	if (o.attempts > HS_REG_MAX_ATTEMPTS || (o.has_inflight && !o.inflight))
		return hs_cli_usage_error(&cli, "reg: --attempts is 1..%d, --inflight >= 1",
					  HS_REG_MAX_ATTEMPTS);

	x = hs_xcalloc(1, sizeof(*x));
	for (p = o.peers; *p;) {
		size_t n = strcspn(p, ",");

		if (!n || n >= HS_NET_ADDR_MAX || x->nacc == HS_REG_MAX_ACCEPTORS) {
			status = hs_cli_usage_error(&cli, "reg: bad --peers list (1..%d addresses)",
						    HS_REG_MAX_ACCEPTORS);
			goto out;
		}
		memcpy(x->acc[x->nacc].addr, p, n);
		x->acc[x->nacc].addr[n] = 0;
		x->acc[x->nacc].x = x;
		x->acc[x->nacc].idx = x->nacc;
		x->nacc++;
		p += n;
		if (*p == ',')
			p++;
	}
	cfg.nacc = x->nacc;
	cfg.q1 = (int)o.q1;
	cfg.q2 = (int)o.q2;
	if (o.q1 > (uint64_t)x->nacc || o.q2 > (uint64_t)x->nacc ||
	    (cfg.q1 ? cfg.q1 : x->nacc / 2 + 1) + (cfg.q2 ? cfg.q2 : x->nacc / 2 + 1) <= x->nacc) {
		status = hs_cli_fail(&cli, EX_CONFIG,
				     "reg: quorums q1 %d + q2 %d must be at most %d each and add up "
				     "to more than %d peers (every phase-1 quorum must meet every "
				     "phase-2 quorum)",
				     cfg.q1 ? cfg.q1 : x->nacc / 2 + 1, cfg.q2 ? cfg.q2 : x->nacc / 2 + 1,
				     x->nacc, x->nacc);
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)(getpid() ^ hs_now_us()));
	cfg.proposer_id = o.proposer_id
		? (uint32_t)o.proposer_id
		: ((uint32_t)getpid() << 12 ^ (uint32_t)hs_wall_ms()) | 1;
	cfg.timeout_ms = (uint32_t)o.phase_ms;
	cfg.max_attempts = (int)o.attempts;
	r = hs_reg_proposer_new(&cfg, &ops, x, &x->prop);
	if (r < 0) {
		status = hs_cli_fail(&cli, hs_exit_status(r), "reg: bad proposer configuration: %s",
				     hs_strerror(r));
		goto out;
	}
	x->loop = hs_loop_new();
	if (!x->loop) {
		status = hs_cli_fail(&cli, EX_OSERR, "cannot create the event loop: %s",
				     strerror(errno));
		goto out;
	}
	hs_loop_before_sleep(x->loop, reg_turn, x);
	x->key = o.args[1];
	x->klen = strlen(x->key);
	x->old = o.args[2];
	x->new_ = o.args[3];
	x->todo = !strcmp(sub, "incr") && o.has_count ? o.count : 1;
	if (!o.has_inflight)
		o.inflight = 1;
	for (int i = 0; i < x->nacc; i++)
		racc_connect(&x->acc[i]);
	reg_queue(x);
	r = hs_loop_run(x->loop);
	if (r < 0) {
		status = hs_cli_fail(&cli, EX_OSERR, "event loop failed: %s", hs_strerror(r));
		goto out;
	}
	if (x->status == -HS_EEXIST) {
		status = hs_cli_fail(&cli, 1, "reg cas %s: the value is not '%s'", x->key, x->old);
	} else if (x->status == -HS_EDATA) {
		status = hs_cli_fail(&cli, EX_DATAERR, "reg %s %s: the value is not a decimal counter",
				     sub, x->key);
	} else if (x->status == -HS_EUNAVAIL) {
		status = hs_cli_fail(&cli, EX_UNAVAILABLE,
				     "reg %s %s: no quorum of acceptors (q1 %d, q2 %d of %d peers) "
				     "after %llu attempts: not applied (%llu acknowledged, %llu with "
				     "unknown outcome before)",
				     sub, x->key, cfg.q1 ? cfg.q1 : x->nacc / 2 + 1,
				     cfg.q2 ? cfg.q2 : x->nacc / 2 + 1, x->nacc,
				     (unsigned long long)(o.attempts ? o.attempts : 8),
				     (unsigned long long)x->acked, (unsigned long long)x->unknown);
	} else if (x->status == -HS_ETIMEOUT) {
		status = hs_cli_fail(&cli, EX_TEMPFAIL,
				     "reg %s %s: gave up without a quorum; the change may or may "
				     "not be applied, never twice",
				     sub, x->key);
	} else if (x->status) {
		status = hs_cli_fail(&cli, hs_exit_status(x->status), "reg %s %s: %s", sub, x->key,
				     hs_strerror(x->status));
	} else if (x->unknown) {
		status = hs_cli_fail(&cli, EX_TEMPFAIL,
				     "reg incr %s: %llu acknowledged, %llu with unknown outcome "
				     "(each applied at most once); value after the last "
				     "acknowledged one: %.*s",
				     x->key, (unsigned long long)x->acked,
				     (unsigned long long)x->unknown, (int)x->val.len,
				     x->val.data ? (const char *)x->val.data : "");
	} else {
		fwrite(x->val.data, 1, x->val.len, stdout);
		putchar('\n');
		if (fflush(stdout) != 0)
			status = hs_cli_fail(&cli, EX_IOERR, "cannot write the output");
	}
out:
	if (x->prop)
		hs_reg_proposer_free(x->prop);
	for (int i = 0; i < x->nacc; i++)
		if (x->acc[i].c)
			hs_conn_close(x->acc[i].c, 0);
	if (x->loop)
		hs_loop_free(x->loop);
	hs_buf_free(&x->val);
	free(x);
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
		{ "peers", required_argument, NULL, OPT_PEERS },
		{ "q1", required_argument, NULL, OPT_Q1 },
		{ "q2", required_argument, NULL, OPT_Q2 },
		{ "proposer-id", required_argument, NULL, OPT_PROPOSER_ID },
		{ "attempts", required_argument, NULL, OPT_ATTEMPTS },
		{ "phase-timeout", required_argument, NULL, OPT_PHASE_TIMEOUT },
		{ "lng", required_argument, NULL, OPT_LNG },
		{ "end", required_argument, NULL, OPT_END },
		{ NULL, 0, NULL, 0 },
	};
	int opt, status, r = 0;

	o.esn_start = 1;
	o.run = 100;
	o.size = 100;
	o.inflight = 8;
	o.window = 10000;
	o.version = HS_PROTO_VERSION;
	o.phase_ms = 500;
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
		case OPT_INFLIGHT:
			r = num("--inflight", optarg, &o.inflight);
			o.has_inflight = 1;
			break;
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
		case OPT_PEERS: o.peers = optarg; break;
		case OPT_Q1: r = num("--q1", optarg, &o.q1); break;
		case OPT_Q2: r = num("--q2", optarg, &o.q2); break;
		case OPT_PROPOSER_ID:
			r = num("--proposer-id", optarg, &o.proposer_id);
			if (!r && (!o.proposer_id || o.proposer_id > UINT32_MAX))
				r = hs_cli_usage_error(&cli, "--proposer-id must be 1..4294967295");
			break;
		case OPT_ATTEMPTS: r = num("--attempts", optarg, &o.attempts); break;
		case OPT_LNG: r = lsnarg("--lng", optarg, &o.lng); break;
		case OPT_END: r = lsnarg("--end", optarg, &o.end); break;
		case OPT_PHASE_TIMEOUT:
			if (hs_parse_duration_ms(optarg, &o.phase_ms) < 0 || !o.phase_ms ||
			    o.phase_ms > UINT32_MAX)
				r = hs_cli_usage_error(&cli, "invalid --phase-timeout '%s'", optarg);
			break;
		default: r = hs_cli_usage_error(&cli, "unexpected option"); break;
		}
		if (r)
			return r;
	}
	if (optind >= argc)
		return hs_cli_usage_error(&cli, "no command");
	o.cmd = argv[optind++];
	while (optind < argc && o.nargs < (int)(sizeof(o.args) / sizeof(o.args[0])))
		o.args[o.nargs++] = argv[optind++];
	o.arg = o.args[0];
	if (optind < argc || (o.nargs > 1 && strcmp(o.cmd, "reg")))
		return hs_cli_usage_error(&cli, "unexpected argument '%s'",
					  optind < argc ? argv[optind] : o.args[1]);
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
	else if (!strcmp(o.cmd, "clean"))
		status = cmd_clean();
	else if (!strcmp(o.cmd, "stats"))
		status = cmd_stats();
	else if (!strcmp(o.cmd, "hello"))
		status = cmd_hello();
	else if (!strcmp(o.cmd, "raw"))
		status = cmd_raw(0);
	else if (!strcmp(o.cmd, "garbage"))
		status = cmd_raw(1);
	else if (!strcmp(o.cmd, "reg"))
		status = cmd_reg();
	else
		status = hs_cli_usage_error(&cli, "unknown command '%s'", o.cmd);
out:
	hs_cli_free(&cli);
	return status;
}

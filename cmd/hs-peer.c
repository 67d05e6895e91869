/*
 * hs-peer - one Tier1 storage node (DESIGN.md §2, §6).
 *
 * One single-threaded event loop (libcore/loop.h) owns one store
 * (libcore/store.h, RocksDB keeps its own threads) and serves the serve<->peer
 * protocol of libcore/proto.h on every accepted connection.
 *
 * GROUP COMMIT.  Frame callbacks never sync.  STORE, SEAL, RELEASE, TRIM and
 * CLEAN only *stage* their effect into the store's WriteBatch and queue a
 * pending reply (connection, request id, per-run statuses) in one array
 * reused across turns.  The loop's before-sleep hook, run once per turn after
 * every ready connection was read, does ONE hs_store_commit() for all of it
 * and only then encodes the replies; the connections flush them in one send
 * each at the end of the turn.  So N concurrent writers cost one WAL sync per
 * turn, not N.  GETMETA is answered after the commit too, so it never shows
 * state that is not durable yet.
 *
 * DURABILITY PER STREAM.  A STORE flagged HS_STORE_NOSYNC (proto.h) carries
 * runs of async streams.  A turn is committed without fsync (WAL written)
 * when nothing in it needs one: every STORE was NOSYNC, and there was no
 * hard SEAL, TRIM, CLEAN or GETMETA (register writes are always fsynced by the
 * store).  RELEASE and soft seals need no fsync of their own: a lost
 * released point only holds readers back until the next RELEASE.  The
 * store does not even write a released point by itself (store.h, struct
 * hs_log_meta): after a crash it falls back to the LNG carried by the
 * log's last stored run, and hs-serve re-sends release points on HELLO.
 * Nor does it write a log's highest LSN per run: it is found again from
 * the runs.  So a STORE costs one RocksDB Put per run.  After a
 * commit left unsynced, a one-shot timer fsyncs the WAL within
 * ASYNC_SYNC_MS; any synced commit in between covers it.  --durability
 * async makes every commit unsynced; --durability memory keeps no WAL.
 *
 * FAILURE.  If the commit fails (an fsync error puts RocksDB in its permanent
 * background-error state; a disk that filled up despite --min-free),
 * nothing staged in that turn is acknowledged: the pending replies are
 * dropped unsent, the error is logged
 * ("store failed: <reason>; exiting") and the process exits 74.  RocksDB
 * replays its WAL at the next start, so everything acknowledged before is
 * still there.  A peer that cannot promise durability must not stay up
 * pretending it can.
 *
 * METADATA REGISTERS.  hs-peer is an acceptor of the CASPaxos registers
 * (libpaxos/register.h, proto.h 96..99).  REG_PREPARE and REG_ACCEPT go
 * through the same group commit: each entry loads the key's acceptor state
 * (from the turn's table of touched keys, else from the store), applies the
 * acceptor rule and encodes its reply entry at once into a per-turn reply
 * buffer, so later entries for the same key in the same turn see its
 * effect; changed states are staged (one Put per key) just before the
 * turn's commit, which then fsyncs, and the reply frames are copied to
 * their connections only after the commit succeeded.  No state is cached
 * across turns: a point read in the meta column family is cheap next to
 * the fsync, and the store stays the only authority.
 *
 * READ STREAMS.  START opens a stream (log, next LSN, until, flags, credit).
 * Streams that can make progress sit in a FIFO ready queue; the hook serves
 * them after the commit, each producing at most one RECORDS frame (~256 KiB,
 * many runs, runs sliced at the edges) per pass and all of them together at
 * most TURN_BUDGET bytes per turn, so a fast reader never starves writers.
 * Each pass uses a fresh store iterator (it sees exactly what is committed),
 * so a stream never holds a RocksDB snapshot between turns.  A stream stops
 * producing when out of credit (WINDOW resumes it), when its connection's
 * output backlog is above the high-water mark (the conn's writable callback
 * resumes it), or when it has caught up with the released point: it then
 * reports GAP NORECORDS up to that point and is parked until a RELEASE of its
 * log (or, for HS_READ_IGNORE_RELEASED streams without a bound, any STORE)
 * wakes it.  A window of 0 records or 0 bytes in START means "no limit" on
 * that count.
 *
 * CLEAN (proto.h) records a recovery's result for one epoch and, in the
 * same commit, deletes the copies of that epoch the recovery did not write
 * (hs_store_stage_clean), so this peer never ships a stale tail of it.
 *
 * NEARLY FULL DISK.  Running out of space is handled before RocksDB hits
 * it: a timer does one statvfs(2) of the data directory every
 * SPACE_CHECK_MS (and once before the listeners open, so a peer started on
 * a nearly full disk refuses from its first STORE); below --min-free bytes
 * available (default 64M, about one memtable flush; 0 disables) the peer is
 * "low on space" and answers every ordinary append run of a STORE with
 * -HS_ENOSPC in STORED, writing nothing (a run the seal refuses still gets
 * -HS_ESEALED, so fencing works on a full peer too).  Everything else goes
 * on: a recovery's runs (flag RECOVERY: recovery must be able to finish an
 * epoch; they re-store at most the unreleased tail, so on a disk that is
 * really full they can still reach the hard path below), SEAL, CLEAN,
 * RELEASE, TRIM (it frees space), register writes and reads.  hs-serve leaves a peer that answered -HS_ENOSPC out
 * of its copysets for a while (libpaxos/seq.c), so the refusals are cheap
 * and rare.  The state is logged once on entry (warning) and once on exit
 * (info) and shown in STATS (low_space, free_bytes as of the last check,
 * runs_refused_nospace).  The hard path below stays as the last resort when
 * the disk fills faster than the check.
 *
 * Exit statuses: 0 after SIGTERM/SIGINT, 64 usage, 73 cannot create the data
 * directory or a listening socket, 74 store I/O failure, 75 store locked by
 * another process, 78 bad configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "conn.h"
#include "daemon.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "parse.h"
#include "proto.h"
#include "register.h"
#include "run.h"
#include "store.h"

#define MAX_LISTEN 16
#define RECORDS_FRAME_TARGET (256u << 10) /* bytes per RECORDS frame */
#define TURN_BUDGET (4u << 20)            /* stream bytes per loop turn */
#define ASYNC_SYNC_MS 100                 /* max delay of the WAL sync after an unsynced commit */
#define ACCEPT_BATCH 64
#define SPACE_CHECK_MS 1000               /* statvfs of the data directory so often */
#define MIN_FREE_DEFAULT (64ull << 20)    /* --min-free default */

static const char usage_text[] =
	"usage: hs-peer --data DIR --listen ADDR [--listen ADDR]... [--ready-file FILE]\n"
	"               [--pidfile FILE] [--durability sync|async|memory] [--node-id N]\n"
	"               [--partition-duration DUR] [--partition-size SIZE] [--max-frame SIZE]\n"
	"               [--min-free SIZE]\n"
	"       hs-peer -h | --help | -V | --version\n";

static const char help_text[] =
	"hs-peer - HStore storage node: one RocksDB log store served over the peer protocol\n"
	"\n"
	"usage: hs-peer --data DIR --listen ADDR [options]\n"
	"\n"
	"      --data DIR                 data directory (created if missing)\n"
	"      --listen ADDR              unix:PATH or HOST:PORT (port 0: the kernel picks);\n"
	"                                 repeatable\n"
	"      --ready-file FILE          write the actual address there once serving\n"
	"      --pidfile FILE             write the process id there; removed on clean exit\n"
	"      --durability MODE          sync (fsync the WAL before replying, except to\n"
	"                                 STOREs flagged NOSYNC; default), async (WAL\n"
	"                                 synced within 100ms) or memory (no WAL: unsafe,\n"
	"                                 for benchmarks only)\n"
	"      --node-id N                node id announced in HELLO (default 0)\n"
	"      --partition-duration DUR   start a new time partition after DUR (default 15m)\n"
	"      --partition-size SIZE      ... or after SIZE bytes (default 1G)\n"
	"      --max-frame SIZE           largest frame accepted (default 64M, minimum 4k)\n"
	"      --min-free SIZE            refuse new records (STORED status ENOSPC) while\n"
	"                                 the data directory's disk has less than SIZE\n"
	"                                 available (checked every second; default 64M,\n"
	"                                 0 disables); recovery, seals, trims and reads\n"
	"                                 go on\n"
	"  -a, --addr ADDR                (common; unused by hs-peer)\n"
	"  -t, --timeout DUR              (common; unused by hs-peer)\n"
	"      --config FILE              configuration file (default ~/.config/hs/config)\n"
	"  -X KEY=VAL                     override one configuration key\n"
	"  -v, --verbose                  log more (repeatable); HS_LOG=debug|info|warn|error\n"
	"  -q, --quiet                    log less\n"
	"  -h, --help                     show this help and exit\n"
	"  -V, --version                  show the version and exit\n"
	"\n"
	"Signals: SIGTERM/SIGINT finish the current commit, close the store and exit 0;\n"
	"SIGHUP is ignored.  Exit status: 0 clean stop, 64 usage, 73 cannot create the\n"
	"data directory or socket, 74 store I/O failure, 75 data directory in use, 78\n"
	"bad configuration.\n";

enum {
	OPT_DATA = HS_OPT_FIRST_PRIVATE,
	OPT_LISTEN,
	OPT_READY,
	OPT_PIDFILE,
	OPT_DURABILITY,
	OPT_NODE_ID,
	OPT_PART_DURATION,
	OPT_PART_SIZE,
	OPT_MAX_FRAME,
	OPT_MIN_FREE,
};

struct peer;
struct pconn;

/* One read stream (START .. END/STOP). */
struct stream {
	struct pconn *pc;
	uint32_t id;          /* the reader's stream number */
	uint64_t req;         /* START's request id: RECORDS/GAP/END carry it */
	uint64_t log;
	uint64_t next;        /* next LSN to deliver */
	uint64_t until;       /* inclusive bound */
	uint32_t flags;       /* HS_READ_* */
	int64_t cred_rec;     /* records the reader still accepts */
	int64_t cred_bytes;   /* run bytes the reader still accepts */
	int unl_rec, unl_bytes; /* window of 0 at START: no limit */
	int queued;           /* in the peer's ready queue */
	int parked;           /* caught up: waiting for RELEASE/STORE */
	TAILQ_ENTRY(stream) rlink;
	LIST_ENTRY(stream) clink;  /* in pc->streams */
	LIST_ENTRY(stream) alink;  /* in peer->streams */
};

struct pconn {
	struct peer *p;
	struct hs_conn *c;
	int hello;            /* HELLO exchanged */
	size_t max_out;       /* largest frame the other side accepts */
	LIST_HEAD(, stream) streams;
	LIST_ENTRY(pconn) link;
};

/* A reply that waits for the turn's commit. */
struct pending {
	struct pconn *pc;     /* NULL if the connection closed meanwhile */
	uint64_t id;
	uint16_t type;        /* request type */
	int32_t status;       /* staging result (SEAL, RELEASE, TRIM, GETMETA) */
	uint64_t log;         /* SEAL, GETMETA */
	uint32_t lce;         /* SEAL */
	size_t st_off, st_n;  /* STORE: its statuses in peer->sts */
	size_t ro_off, ro_len; /* REG_*: the encoded reply frame in peer->regout */
};

/* One register key touched in this turn, with its latest acceptor state. */
struct regst {
	uint8_t key[HS_REG_KEY_MAX];
	uint8_t klen;
	uint8_t dirty;        /* changed: stage it before the commit */
	struct hs_reg_acc acc;
};

struct run_status {
	int32_t status;
	uint32_t seal;
};

struct peer {
	struct hs_cli cli;
	struct hs_loop *loop;
	struct hs_store *store;
	struct hs_store_opts sopts;

	const char *ready_file, *pidfile;
	const char *listen[MAX_LISTEN];
	int nlisten;
	int lfd[MAX_LISTEN];
	char actual[MAX_LISTEN][HS_NET_ADDR_MAX];
	uint32_t node_id;
	uint64_t max_frame;
	uint64_t maintain_ms;
	uint64_t min_free;    /* --min-free bytes, 0: no check */
	uint64_t free_bytes;  /* available at the last check */
	int low_space;        /* below min_free: ordinary appends are refused */
	int space_err;        /* statvfs failing: logged once */

	/* group commit: reused across turns */
	struct pending *pend;
	size_t npend, cappend;
	struct run_status *sts;
	size_t nsts, capsts;
	uint64_t *rel;        /* logs released this turn */
	size_t nrel, caprel;
	int stored_this_turn;
	int trimmed_this_turn;
	int maintain_due, sync_due;
	int turn_sync;        /* something staged this turn must be fsynced */
	int sync_armed;       /* the WAL sync timer is armed */
	/* registers touched this turn: regs[0..nregs) (their value buffers are
	 * kept for reuse), indexed by an open-addressed table of index + 1 */
	struct regst *regs;
	size_t nregs, capregs;
	uint32_t *regidx;
	size_t regidx_cap;
	struct hs_buf regout;   /* the turn's REG_PROMISE/ACCEPTED frames */
	struct hs_buf regenc;   /* scratch for hs_reg_acc_enc */

	/* connections and streams */
	LIST_HEAD(, pconn) conns;
	LIST_HEAD(, stream) streams;
	TAILQ_HEAD(, stream) ready;
	uint64_t nconns, nstreams;

	/* counters for STATS */
	uint64_t conns_total, frames_in, stores_in, stores_nosync, runs_in, runs_refused;
	uint64_t records_out, runs_out, bytes_out, gaps_out, maintain_drops;
	uint64_t reg_frames, reg_entries, reg_refused;
	uint64_t cleans_in, clean_purged;
	uint64_t runs_nospace;

	int exit_status;
};

/* ---- small helpers ------------------------------------------------------ */

static void grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;

	if (need <= *cap)
		return;
	n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	*p = hs_xrealloc(*p, n * elem);
	*cap = n;
}

static struct pending *pend_add(struct peer *p, struct pconn *pc, uint64_t id, uint16_t type)
{
	struct pending *pe;

	grow((void **)&p->pend, &p->cappend, p->npend + 1, sizeof(*p->pend));
	pe = &p->pend[p->npend++];
	memset(pe, 0, sizeof(*pe));
	pe->pc = pc;
	pe->id = id;
	pe->type = type;
	return pe;
}

static void proto_close(struct pconn *pc, const char *fmt, const char *what)
{
	char why[256];

	snprintf(why, sizeof(why), fmt, what);
	hs_warn("closing connection from %s: %s", hs_conn_peer_name(pc->c), why);
	hs_conn_close(pc->c, -HS_EPROTO);
}

/* ---- read streams ------------------------------------------------------- */

static void stream_queue(struct peer *p, struct stream *s)
{
	s->parked = 0;
	if (s->queued)
		return;
	s->queued = 1;
	TAILQ_INSERT_TAIL(&p->ready, s, rlink);
}

static void stream_free(struct peer *p, struct stream *s)
{
	if (s->queued)
		TAILQ_REMOVE(&p->ready, s, rlink);
	LIST_REMOVE(s, clink);
	LIST_REMOVE(s, alink);
	p->nstreams--;
	free(s);
}

static struct stream *stream_find(struct pconn *pc, uint32_t id)
{
	struct stream *s;

	LIST_FOREACH(s, &pc->streams, clink)
		if (s->id == id)
			return s;
	return NULL;
}

static void send_gap(struct peer *p, struct stream *s, uint64_t lo, uint64_t hi, uint8_t reason)
{
	struct hs_gap g = { .stream = s->id, .lo = lo, .hi = hi, .reason = reason };

	hs_msg_gap_enc(hs_conn_out(s->pc->c), s->req, &g);
	p->gaps_out++;
}

static void stream_end(struct peer *p, struct stream *s, int status)
{
	struct hs_end e = { .stream = s->id, .status = status };

	hs_msg_end_enc(hs_conn_out(s->pc->c), s->req, &e);
	stream_free(p, s);
}

/* Move s->next past hi; returns 1 if that passes s->until (or the LSN space). */
static int advance(struct stream *s, uint64_t hi)
{
	if (hi >= s->until || hi == UINT64_MAX) {
		s->next = hi == UINT64_MAX ? hi : hi + 1;
		return 1;
	}
	s->next = hi + 1;
	return 0;
}

static int out_of_credit(const struct stream *s)
{
	return (!s->unl_rec && s->cred_rec <= 0) || (!s->unl_bytes && s->cred_bytes <= 0);
}

/*
 * Serve stream s for one pass.  Returns 1 if it has more to send right now
 * (requeue it), 0 if it is blocked (credit, back-pressure), parked or freed.
 * *budget is decreased by the bytes produced.
 */
static int stream_produce(struct peer *p, struct stream *s, int64_t *budget)
{
	struct hs_conn *c = s->pc->c;
	struct hs_buf *out;
	struct hs_log_meta m;
	struct hs_store_iter *it = NULL;
	struct hs_msg_wr w;
	size_t frame_max;
	uint64_t limit;
	int open = 0, more = 0, r;

	if (hs_conn_closing(c) || out_of_credit(s) ||
	    hs_conn_out_pending(c) >= HS_CONN_HIGH_WATER)
		return 0;
	out = hs_conn_out(c);
	r = hs_store_meta(p->store, s->log, &m);
	if (r < 0) {
		stream_end(p, s, r);
		return 0;
	}
	if (s->next <= m.trim) {
		uint64_t hi = m.trim < s->until ? m.trim : s->until;

		send_gap(p, s, s->next, hi, HS_GAP_TRIM);
		if (advance(s, hi)) {
			stream_end(p, s, 0);
			return 0;
		}
	}
	if (s->next > s->until) {
		stream_end(p, s, 0);
		return 0;
	}
	limit = (s->flags & HS_READ_IGNORE_RELEASED) ? UINT64_MAX : m.released;
	if (limit > s->until)
		limit = s->until;
	if (s->next > limit) {
		s->parked = 1;
		return 0;
	}

	frame_max = s->pc->max_out < RECORDS_FRAME_TARGET ? s->pc->max_out : RECORDS_FRAME_TARGET;
	r = hs_store_iter_new(p->store, s->log, s->next, &it);
	if (r < 0) {
		stream_end(p, s, r);
		return 0;
	}
	for (;;) {
		struct hs_run run;
		const uint8_t *bytes;
		size_t len, before;
		uint64_t first, last, lo, hi, n;
		uint32_t nrec;
		int bad;

		if (s->next > limit) {
			/* Delivered up to the limit exactly: nothing to report. */
			s->parked = 1;
			break;
		}
		r = hs_store_iter_next(it, &first, &bytes, &len);
		if (r == -HS_EIO || (r < 0 && r != -HS_ECHECKSUM)) {
			if (open)
				hs_msg_wr_end(&w);
			hs_store_iter_free(it);
			hs_error("log %llu: read failed: %s", (unsigned long long)s->log,
				 hs_strerror(r));
			stream_end(p, s, r);
			return 0;
		}
		bad = r == -HS_ECHECKSUM;
		if (r == 0 || first > limit) {
			/* Nothing more up to the limit on this peer. */
			if (open)
				hs_msg_wr_end(&w);
			open = 0;
			if (limit != UINT64_MAX && s->next <= limit) {
				send_gap(p, s, s->next, limit, HS_GAP_NORECORDS);
				if (advance(s, limit)) {
					hs_store_iter_free(it);
					stream_end(p, s, 0);
					return 0;
				}
			}
			s->parked = 1;
			break;
		}
		if (hs_run_parse_nocrc(bytes, len, &run) == 0)
			nrec = run.nrecords;
		else
			nrec = 1, bad = 1; /* length unknown: report its first LSN */
		last = first + nrec - 1;
		if (last < s->next)
			continue;
		lo = first > s->next ? first : s->next;
		hi = last < limit ? last : limit;
		if (bad) {
			if (open)
				hs_msg_wr_end(&w);
			open = 0;
			hs_warn("log %llu: run at %llu failed its checksum; reported as a gap",
				(unsigned long long)s->log, (unsigned long long)first);
			send_gap(p, s, lo, hi, HS_GAP_CHECKSUM);
			if (advance(s, hi)) {
				hs_store_iter_free(it);
				stream_end(p, s, 0);
				return 0;
			}
			continue;
		}
		n = hi - lo + 1;
		if (!s->unl_rec && (uint64_t)s->cred_rec < n)
			n = (uint64_t)s->cred_rec;
		/* One frame per pass, so streams take turns; a run larger than
		 * the frame target still goes alone in one frame. */
		if (open && hs_msg_wr_size(&w) + len + 12 > frame_max) {
			more = 1;
			break;
		}
		if (!open) {
			hs_msg_records_begin(&w, out, s->req, s->id, s->log);
			open = 1;
		}
		before = out->len;
		if (lo == first && n == nrec) {
			hs_msg_records_run(&w, first, bytes, len);
		} else {
			hs_msg_records_run_open(&w, lo);
			hs_run_slice(&run, (uint32_t)(lo - first), (uint32_t)n, out);
			hs_msg_wr_run_close(&w);
		}
		s->cred_rec -= (int64_t)n;
		s->cred_bytes -= (int64_t)(out->len - before);
		*budget -= (int64_t)(out->len - before);
		p->records_out += n;
		p->runs_out++;
		p->bytes_out += out->len - before;
		if (advance(s, lo + n - 1)) {
			hs_msg_wr_end(&w);
			hs_store_iter_free(it);
			stream_end(p, s, 0);
			return 0;
		}
		if (out_of_credit(s) || hs_conn_out_pending(c) >= HS_CONN_HIGH_WATER)
			break;
		if (*budget <= 0) {
			more = 1;
			break;
		}
		if (n < hi - lo + 1)
			break; /* cannot happen without a credit limit; be safe */
	}
	if (open)
		hs_msg_wr_end(&w);
	hs_store_iter_free(it);
	return more;
}

static void streams_produce(struct peer *p)
{
	int64_t budget = TURN_BUDGET;
	uint64_t n = 0, queued = 0;
	struct stream *s;

	TAILQ_FOREACH(s, &p->ready, rlink)
		queued++;
	/* One pass over what was queued at the start: a requeued stream goes
	 * to the tail and waits for the next turn. */
	while (n < queued && budget > 0 && (s = TAILQ_FIRST(&p->ready))) {
		n++;
		TAILQ_REMOVE(&p->ready, s, rlink);
		s->queued = 0;
		if (stream_produce(p, s, &budget))
			stream_queue(p, s);
	}
	if (!TAILQ_EMPTY(&p->ready))
		hs_loop_wake_now(p->loop);
}

static void wake_log(struct peer *p, uint64_t log)
{
	struct stream *s;

	LIST_FOREACH(s, &p->streams, alink)
		if (s->parked && s->log == log)
			stream_queue(p, s);
}

static void wake_unbounded(struct peer *p)
{
	struct stream *s;

	LIST_FOREACH(s, &p->streams, alink)
		if (s->parked && (s->flags & HS_READ_IGNORE_RELEASED))
			stream_queue(p, s);
}

/* ---- group commit ------------------------------------------------------- */

static void reply_sealed(struct peer *p, struct hs_buf *out, const struct pending *pe)
{
	struct hs_log_meta m;
	struct hs_sealed sd = { .status = pe->status };
	struct hs_msg_wr w;
	uint64_t last, e;
	int r;

	r = pe->status ? pe->status : hs_store_meta(p->store, pe->log, &m);
	if (r < 0) {
		sd.status = r;
		hs_msg_sealed_begin(&w, out, pe->id, &sd);
		hs_msg_wr_end(&w);
		return;
	}
	sd.seal = m.seal;
	sd.soft_seal = m.soft_seal;
	sd.trim = m.trim;
	hs_msg_sealed_begin(&w, out, pe->id, &sd);
	/* Epochs in (lce, seal]; none above the highest stored can hold records. */
	last = m.seal > m.soft_seal ? m.seal : m.soft_seal;
	if (last > HS_LSN_EPOCH(m.max_lsn))
		last = HS_LSN_EPOCH(m.max_lsn);
	for (e = (uint64_t)pe->lce + 1; e <= last; e++) {
		uint64_t lng, max_lsn;

		if (hs_store_epoch_info(p->store, pe->log, (uint32_t)e, &lng, &max_lsn) == 1)
			hs_msg_sealed_add(&w, (uint32_t)e, lng, max_lsn);
	}
	hs_msg_wr_end(&w);
}

static void reply_meta(struct peer *p, struct hs_buf *out, const struct pending *pe)
{
	struct hs_log_meta m;
	struct hs_meta mm = { 0 };
	int r = hs_store_meta(p->store, pe->log, &m);

	mm.status = r;
	if (r == 0) {
		mm.seal = m.seal;
		mm.soft_seal = m.soft_seal;
		mm.lce = m.lce;
		mm.released = m.released;
		mm.trim = m.trim;
		mm.max_lsn = m.max_lsn;
	}
	hs_msg_meta_enc(out, pe->id, &mm);
}

static void send_replies(struct peer *p)
{
	for (size_t i = 0; i < p->npend; i++) {
		const struct pending *pe = &p->pend[i];
		struct hs_buf *out;
		struct hs_msg_wr w;

		if (!pe->pc)
			continue;
		out = hs_conn_out(pe->pc->c);
		switch (pe->type) {
		case HS_MSG_STORE:
			hs_msg_stored_begin(&w, out, pe->id);
			for (size_t j = 0; j < pe->st_n; j++)
				hs_msg_stored_add(&w, p->sts[pe->st_off + j].status,
						  p->sts[pe->st_off + j].seal);
			hs_msg_wr_end(&w);
			break;
		case HS_MSG_SEAL:
			reply_sealed(p, out, pe);
			break;
		case HS_MSG_GETMETA:
			reply_meta(p, out, pe);
			break;
		case HS_MSG_REG_PREPARE:
		case HS_MSG_REG_ACCEPT:
			hs_buf_append(out, p->regout.data + pe->ro_off, pe->ro_len);
			break;
		default: /* RELEASE, TRIM, CLEAN */
			if (pe->status)
				hs_msg_result_encf(out, pe->id, pe->status, "%s",
						   hs_strerror(pe->status));
			else
				hs_msg_result_encf(out, pe->id, 0, "%s", "");
			break;
		}
	}
}

/* ---- metadata registers ------------------------------------------------ */

static uint32_t key_hash(const uint8_t *k, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

static void reg_turn_reset(struct peer *p)
{
	if (p->nregs)
		memset(p->regidx, 0, p->regidx_cap * sizeof(*p->regidx));
	p->nregs = 0;
	hs_buf_reset(&p->regout);
}

static void regidx_put(struct peer *p, size_t i)
{
	size_t m = p->regidx_cap - 1;
	size_t j = key_hash(p->regs[i].key, p->regs[i].klen) & m;

	while (p->regidx[j])
		j = (j + 1) & m;
	p->regidx[j] = (uint32_t)i + 1;
}

/*
 * The acceptor state of key as of now in this turn: from the turn's table,
 * else loaded from the store (a new, zero state if absent).  Returns 0 with
 * *out (valid until the next call), or a store error (-HS_EIO, or
 * -HS_ECHECKSUM/-HS_EDATA for a corrupt state: that key is then refused
 * until repaired, never silently reset, since a reset acceptor could break
 * a promise it gave).
 */
static int reg_state(struct peer *p, const uint8_t *key, uint8_t klen, struct regst **out)
{
	size_t m, j;
	struct regst *r;
	int rc;

	if (p->regidx_cap) {
		m = p->regidx_cap - 1;
		for (j = key_hash(key, klen) & m; p->regidx[j]; j = (j + 1) & m) {
			r = &p->regs[p->regidx[j] - 1];
			if (r->klen == klen && !memcmp(r->key, key, klen)) {
				*out = r;
				return 0;
			}
		}
	}
	if (p->nregs == p->capregs) {
		size_t ncap = p->capregs ? 2 * p->capregs : 64;

		p->regs = hs_xrealloc(p->regs, ncap * sizeof(*p->regs));
		memset(p->regs + p->capregs, 0, (ncap - p->capregs) * sizeof(*p->regs));
		p->capregs = ncap;
	}
	r = &p->regs[p->nregs];
	rc = hs_store_reg_get(p->store, key, klen, &p->regenc);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		r->acc.promised = r->acc.accepted = r->acc.tag = (struct hs_reg_ballot){ 0, 0 };
		r->acc.version = 0;
		hs_buf_reset(&r->acc.value);
	} else if ((rc = hs_reg_acc_dec(p->regenc.data, p->regenc.len, &r->acc)) < 0) {
		hs_error("register state of a key is corrupt (%s); refusing it", hs_strerror(rc));
		return rc;
	}
	memcpy(r->key, key, klen);
	r->klen = klen;
	r->dirty = 0;
	p->nregs++;
	/* Keep the index at most half full. */
	if (2 * p->nregs > p->regidx_cap) {
		free(p->regidx);
		p->regidx_cap = p->regidx_cap ? 2 * p->regidx_cap : 128;
		p->regidx = hs_xcalloc(p->regidx_cap, sizeof(*p->regidx));
		for (size_t i = 0; i < p->nregs; i++)
			regidx_put(p, i);
	} else {
		regidx_put(p, p->nregs - 1);
	}
	*out = r;
	return 0;
}

/* Stage every state changed this turn (one Put per key).  0 or <0. */
static int reg_stage(struct peer *p)
{
	for (size_t i = 0; i < p->nregs; i++) {
		struct regst *r = &p->regs[i];
		int rc;

		if (!r->dirty)
			continue;
		hs_buf_reset(&p->regenc);
		hs_reg_acc_enc(&r->acc, &p->regenc);
		rc = hs_store_stage_reg(p->store, r->key, r->klen, p->regenc.data, p->regenc.len);
		if (rc < 0)
			return rc;
		r->dirty = 0;
	}
	return 0;
}

static void on_reg(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	int accept = f->type == HS_MSG_REG_ACCEPT;
	struct hs_reg_rd rd;
	struct hs_reg_entry e, re;
	struct hs_msg_wr w;
	struct pending *pe;
	size_t off = p->regout.len;

	if (hs_msg_reg_dec(f->type, f->body, f->body_len, &rd) < 0) {
		proto_close(pc, "malformed %s body", hs_msg_name(f->type));
		return;
	}
	p->reg_frames++;
	if (accept)
		hs_msg_reg_accepted_begin(&w, &p->regout, f->id);
	else
		hs_msg_reg_promise_begin(&w, &p->regout, f->id);
	while (hs_reg_next(&rd, &e) == 1) {
		struct regst *r = NULL;
		int rc = reg_state(p, e.key, e.key_len, &r);

		p->reg_entries++;
		if (rc == 0) {
			rc = accept ? hs_reg_acc_accept(&r->acc, &e.ballot, &e.val)
				    : hs_reg_acc_prepare(&r->acc, &e.ballot);
			if (rc == 1) {
				r->dirty = 1;
				rc = 0;
			}
		}
		if (rc < 0)
			p->reg_refused++;
		if (accept) {
			static const struct hs_reg_ballot none = { 0, 0 };
			int have = rc == 0 || rc == -HS_ESEALED;

			hs_msg_reg_accepted_add(&w, e.key, e.key_len, &e.ballot, rc,
						have ? &r->acc.promised : &none);
		} else if (rc == 0 || rc == -HS_ESEALED) {
			hs_reg_acc_promise_entry(&r->acc, e.key, e.key_len, &e.ballot, rc, &re);
			hs_msg_reg_promise_add(&w, &re);
		} else {
			memset(&re, 0, sizeof(re));
			re.key = e.key;
			re.key_len = e.key_len;
			re.ballot = e.ballot;
			re.status = rc;
			hs_msg_reg_promise_add(&w, &re);
		}
	}
	hs_msg_wr_end(&w);
	pe = pend_add(p, pc, f->id, f->type);
	pe->ro_off = off;
	pe->ro_len = p->regout.len - off;
}

static void store_fail(struct peer *p, int err)
{
	const char *why = hs_store_failed(p->store);

	hs_error("store failed: %s; exiting", why ? why : hs_strerror(err));
	/* Nothing staged in this turn is acknowledged: drop the replies. */
	p->npend = 0;
	p->nsts = 0;
	reg_turn_reset(p);
	p->exit_status = EX_IOERR;
	hs_loop_stop(p->loop);
}

static void do_maintain(struct peer *p)
{
	int r = hs_store_maintain(p->store, hs_wall_ms());

	if (r > 0) {
		p->maintain_drops += (uint64_t)r;
		hs_info("dropped %d partition(s) behind the trim points", r);
	} else if (r == -HS_ESTOREFAIL) {
		store_fail(p, r);
	} else if (r < 0 && r != -HS_EAGAIN) {
		hs_warn("store maintenance: %s", hs_strerror(r));
	}
}

static void on_sync_timer(struct hs_loop *l, void *arg)
{
	struct peer *p = arg;

	p->sync_armed = 0;
	p->sync_due = 1;
}

static void before_sleep(struct hs_loop *l, void *arg)
{
	struct peer *p = arg;
	int r;

	if (p->exit_status)
		return;
	if (p->npend) {
		r = reg_stage(p);
		if (r == 0)
			r = hs_store_commit_opts(p->store, p->turn_sync);
		p->turn_sync = 0;
		if (r < 0) {
			store_fail(p, r);
			return;
		}
		if (hs_store_unsynced(p->store) && !p->sync_armed) {
			p->sync_armed = 1;
			hs_loop_timer(l, ASYNC_SYNC_MS, on_sync_timer, p);
		}
		send_replies(p);
		for (size_t i = 0; i < p->nrel; i++)
			wake_log(p, p->rel[i]);
		if (p->stored_this_turn)
			wake_unbounded(p);
		p->npend = p->nsts = p->nrel = 0;
		p->stored_this_turn = 0;
		reg_turn_reset(p);
		if (p->trimmed_this_turn) {
			p->trimmed_this_turn = 0;
			p->maintain_due = 1;
		}
	}
	if (p->sync_due) {
		p->sync_due = 0;
		r = hs_store_sync_wal(p->store);
		if (r < 0) {
			store_fail(p, r);
			return;
		}
	}
	if (p->maintain_due) {
		p->maintain_due = 0;
		do_maintain(p);
		if (p->exit_status)
			return;
	}
	streams_produce(p);
}

/* ---- requests ------------------------------------------------------------ */

/*
 * While low on space: 0 if the run may still be staged (a recovery's run:
 * its records, HOLEs and BRIDGE all carry HS_RUN_RECOVERY; or one too
 * short to tell: hs_store_stage_run judges it),
 * -HS_ESEALED (with *seal) for an ordinary run the seal refuses anyway,
 * so a fenced sequencer learns it here too; else -HS_ENOSPC.
 */
static int refuse_low_space(struct peer *p, uint64_t log, uint64_t first, const uint8_t *run,
			    size_t len, uint32_t *seal)
{
	struct hs_log_meta m;

	if (len < 2 || (run[1] & HS_RUN_RECOVERY))
		return 0;
	if (hs_store_meta(p->store, log, &m) == 0) {
		*seal = m.seal > m.soft_seal ? m.seal : m.soft_seal;
		if (HS_LSN_EPOCH(first) <= *seal)
			return -HS_ESEALED;
		*seal = 0;
	}
	return -HS_ENOSPC;
}

static void on_store(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_store_rd rd;
	struct pending *pe;
	const uint8_t *run;
	uint64_t log, first;
	size_t len;

	if (hs_msg_store_dec(f->body, f->body_len, &rd) < 0) {
		proto_close(pc, "malformed %s body", "STORE");
		return;
	}
	p->stores_in++;
	if (f->flags & HS_STORE_NOSYNC)
		p->stores_nosync++;
	else
		p->turn_sync = 1;
	grow((void **)&p->sts, &p->capsts, p->nsts + rd.nruns, sizeof(*p->sts));
	pe = pend_add(p, pc, f->id, HS_MSG_STORE);
	pe->st_off = p->nsts;
	pe->st_n = rd.nruns;
	while (hs_store_next(&rd, &log, &first, &run, &len) == 1) {
		struct run_status *st = &p->sts[p->nsts++];
		struct hs_log_meta m;

		st->seal = 0;
		if (p->low_space &&
		    (st->status = refuse_low_space(p, log, first, run, len, &st->seal))) {
			p->runs_refused++;
			if (st->status == -HS_ENOSPC)
				p->runs_nospace++;
			continue;
		}
		st->status = hs_store_stage_run(p->store, log, first, run, len);
		if (st->status == 0) {
			p->runs_in++;
			p->stored_this_turn = 1;
			continue;
		}
		p->runs_refused++;
		if (st->status == -HS_ESEALED && hs_store_meta(p->store, log, &m) == 0)
			st->seal = m.seal > m.soft_seal ? m.seal : m.soft_seal;
		else
			hs_debug("log %llu: run at %llu refused: %s", (unsigned long long)log,
				 (unsigned long long)first, hs_strerror(st->status));
	}
}

static void on_seal(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_seal m;
	struct pending *pe;

	if (hs_msg_seal_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "SEAL");
		return;
	}
	pe = pend_add(p, pc, f->id, HS_MSG_SEAL);
	pe->log = m.log;
	pe->lce = m.lce;
	pe->status = hs_store_stage_seal(p->store, m.log, m.epoch, m.soft);
	if (!m.soft)
		p->turn_sync = 1; /* a hard seal is durable before SEALED */
}

/* CLEAN: record the recovery's result and purge the epoch's copies it did
 * not write (store.h, hs_store_stage_clean), in this turn's commit, synced
 * like a hard seal; RESULT after the commit. */
static void on_clean(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_clean m;
	struct pending *pe;
	uint64_t purged = 0;

	if (hs_msg_clean_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "CLEAN");
		return;
	}
	pe = pend_add(p, pc, f->id, HS_MSG_CLEAN);
	pe->status = hs_store_stage_clean(p->store, m.log, m.epoch, m.ballot, m.lng, m.end,
					  &purged);
	p->turn_sync = 1;
	if (pe->status == 0) {
		p->cleans_in++;
		p->clean_purged += purged;
	}
	if (pe->status)
		hs_info("log %llu: CLEAN of epoch %u (ballot %u) refused: %s",
			(unsigned long long)m.log, m.epoch, m.ballot, hs_strerror(pe->status));
	else
		hs_debug("log %llu: epoch %u clean (ballot %u, lng %llx, end %llx): "
			 "%llu runs purged",
			 (unsigned long long)m.log, m.epoch, m.ballot, (unsigned long long)m.lng,
			 (unsigned long long)m.end, (unsigned long long)purged);
}

static void on_release(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_release_rd rd;
	struct pending *pe;
	uint64_t log, lsn;

	if (hs_msg_release_dec(f->body, f->body_len, &rd) < 0) {
		proto_close(pc, "malformed %s body", "RELEASE");
		return;
	}
	pe = pend_add(p, pc, f->id, HS_MSG_RELEASE);
	grow((void **)&p->rel, &p->caprel, p->nrel + rd.n, sizeof(*p->rel));
	while (hs_release_next(&rd, &log, &lsn) == 1) {
		int r = hs_store_stage_release(p->store, log, lsn);

		if (r < 0 && !pe->status)
			pe->status = r;
		p->rel[p->nrel++] = log;
	}
}

static void on_trim(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_trim m;
	struct pending *pe;

	if (hs_msg_trim_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "TRIM");
		return;
	}
	pe = pend_add(p, pc, f->id, HS_MSG_TRIM);
	pe->status = hs_store_stage_trim(p->store, m.log, m.trim);
	p->trimmed_this_turn = 1;
	p->turn_sync = 1;
	/* Streams positioned below the new trim point report it as a gap. */
	grow((void **)&p->rel, &p->caprel, p->nrel + 1, sizeof(*p->rel));
	p->rel[p->nrel++] = m.log;
}

static void on_getmeta(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_getmeta m;
	struct pending *pe;

	if (hs_msg_getmeta_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "GETMETA");
		return;
	}
	pe = pend_add(p, pc, f->id, HS_MSG_GETMETA);
	pe->log = m.log;
	p->turn_sync = 1; /* it never shows state that is not durable */
}

static void on_stats(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_store_stats st;
	struct hs_buf t = HS_BUF_INIT;
	char names[4096];

	if (hs_msg_stats_dec(f->body, f->body_len) < 0) {
		proto_close(pc, "malformed %s body", "STATS");
		return;
	}
	hs_store_stats(p->store, &st);
	hs_store_partitions(p->store, names, sizeof(names));
	hs_buf_printf(&t, "partitions %llu\n", (unsigned long long)st.partitions);
	hs_buf_printf(&t, "partition_names %s\n", names);
	hs_buf_printf(&t, "partitions_dropped %llu\n", (unsigned long long)st.dropped);
	hs_buf_printf(&t, "commits %llu\n", (unsigned long long)st.commits);
	hs_buf_printf(&t, "commits_sync %llu\n", (unsigned long long)st.commits_sync);
	hs_buf_printf(&t, "commits_nosync %llu\n", (unsigned long long)st.commits_nosync);
	hs_buf_printf(&t, "wal_syncs %llu\n", (unsigned long long)st.wal_syncs);
	hs_buf_printf(&t, "store_frames_nosync %llu\n", (unsigned long long)p->stores_nosync);
	hs_buf_printf(&t, "runs_stored %llu\n", (unsigned long long)st.runs);
	hs_buf_printf(&t, "bytes_stored %llu\n", (unsigned long long)st.bytes);
	hs_buf_printf(&t, "runs_refused %llu\n", (unsigned long long)p->runs_refused);
	hs_buf_printf(&t, "store_frames %llu\n", (unsigned long long)p->stores_in);
	hs_buf_printf(&t, "connections %llu\n", (unsigned long long)p->nconns);
	hs_buf_printf(&t, "connections_total %llu\n", (unsigned long long)p->conns_total);
	hs_buf_printf(&t, "streams %llu\n", (unsigned long long)p->nstreams);
	hs_buf_printf(&t, "records_sent %llu\n", (unsigned long long)p->records_out);
	hs_buf_printf(&t, "runs_sent %llu\n", (unsigned long long)p->runs_out);
	hs_buf_printf(&t, "bytes_sent %llu\n", (unsigned long long)p->bytes_out);
	hs_buf_printf(&t, "gaps_sent %llu\n", (unsigned long long)p->gaps_out);
	hs_buf_printf(&t, "frames_received %llu\n", (unsigned long long)p->frames_in);
	hs_buf_printf(&t, "reg_frames %llu\n", (unsigned long long)p->reg_frames);
	hs_buf_printf(&t, "reg_entries %llu\n", (unsigned long long)p->reg_entries);
	hs_buf_printf(&t, "reg_refused %llu\n", (unsigned long long)p->reg_refused);
	/* CLEANs applied (refused ones are not counted) */
	hs_buf_printf(&t, "cleans %llu\n", (unsigned long long)p->cleans_in);
	hs_buf_printf(&t, "clean_purged_runs %llu\n", (unsigned long long)p->clean_purged);
	hs_buf_printf(&t, "durability %s\n",
		      hs_durability_name(p->sopts.durability));
	hs_buf_printf(&t, "min_free %llu\n", (unsigned long long)p->min_free);
	hs_buf_printf(&t, "free_bytes %llu\n", (unsigned long long)p->free_bytes);
	hs_buf_printf(&t, "low_space %d\n", p->low_space);
	hs_buf_printf(&t, "runs_refused_nospace %llu\n", (unsigned long long)p->runs_nospace);
	hs_msg_statsreply_enc(hs_conn_out(pc->c), f->id, (const char *)t.data, t.len);
	hs_buf_free(&t);
}

static void on_locate(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_locate m;
	struct hs_located a = { 0 };

	if (hs_msg_locate_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "LOCATE");
		return;
	}
	a.status = hs_store_locate(p->store, m.log, m.from, m.until, m.time_ms, &a.lsn);
	hs_msg_located_enc(hs_conn_out(pc->c), f->id, &a);
}

struct list_ctx {
	struct hs_msg_wr w;
	struct hs_reg_acc acc;
	size_t max_bytes;
	int rc;
};

static int list_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct list_ctx *x = arg;
	struct hs_reg_entry e;

	if (hs_msg_wr_size(&x->w) + klen + vlen + 64 > x->max_bytes)
		return -E2BIG; /* the rest in the next page */
	if (hs_reg_acc_dec(val, vlen, &x->acc) < 0)
		return 0; /* a corrupt state is not listed (reg_state refuses it) */
	memset(&e, 0, sizeof(e));
	e.key = key;
	e.key_len = (uint8_t)klen;
	e.accepted = x->acc.accepted;
	e.val.version = x->acc.version;
	e.val.tag = x->acc.tag;
	e.val.data = x->acc.value.data;
	e.val.len = (uint32_t)x->acc.value.len;
	hs_msg_reg_listed_add(&x->w, &e);
	return 0;
}

/* REG_LIST: answered at once from committed states. */
static void on_reg_list(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_reg_list m;
	struct list_ctx x;
	struct hs_buf *out;
	size_t start;
	int r;

	if (hs_msg_reg_list_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "REG_LIST");
		return;
	}
	memset(&x, 0, sizeof(x));
	x.acc = (struct hs_reg_acc)HS_REG_ACC_INIT;
	x.max_bytes = pc->max_out;
	out = hs_conn_out(pc->c);
	start = out->len;
	hs_msg_reg_listed_begin(&x.w, out, f->id, 0);
	r = hs_store_reg_scan(p->store, m.prefix, m.prefix_len, m.after, m.after_len, m.max,
			      list_one, &x);
	if (r < 0 && r != -E2BIG) {
		out->len = start;
		hs_msg_reg_listed_begin(&x.w, out, f->id, r);
		hs_msg_wr_end(&x.w);
	} else {
		hs_msg_reg_listed_more(&x.w, r != 0);
		hs_msg_wr_end(&x.w);
	}
	hs_reg_acc_free(&x.acc);
}

static void on_start(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_start m;
	struct stream *s;

	if (hs_msg_start_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "START");
		return;
	}
	if (stream_find(pc, m.stream)) {
		hs_msg_result_encf(hs_conn_out(pc->c), f->id, -HS_EEXIST,
				   "read stream %u is already open", m.stream);
		return;
	}
	s = hs_xcalloc(1, sizeof(*s));
	s->pc = pc;
	s->id = m.stream;
	s->req = f->id;
	s->log = m.log;
	s->next = m.from ? m.from : 1;
	s->until = m.until;
	s->flags = m.flags;
	s->cred_rec = m.win_records;
	s->cred_bytes = m.win_bytes;
	s->unl_rec = m.win_records == 0;
	s->unl_bytes = m.win_bytes == 0;
	LIST_INSERT_HEAD(&pc->streams, s, clink);
	LIST_INSERT_HEAD(&p->streams, s, alink);
	p->nstreams++;
	if (s->next > s->until) {
		stream_end(p, s, 0);
		return;
	}
	stream_queue(p, s);
}

static void on_window(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_window m;
	struct stream *s;

	if (hs_msg_window_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "WINDOW");
		return;
	}
	s = stream_find(pc, m.stream);
	if (!s)
		return; /* it may have ended while the WINDOW was in flight */
	s->cred_rec += m.add_records;
	s->cred_bytes += m.add_bytes;
	if (!s->parked)
		stream_queue(p, s);
}

static void on_stop(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_stop m;
	struct stream *s;

	if (hs_msg_stop_dec(f->body, f->body_len, &m) < 0) {
		proto_close(pc, "malformed %s body", "STOP");
		return;
	}
	s = stream_find(pc, m.stream);
	if (s)
		stream_free(p, s);
	hs_msg_result_encf(hs_conn_out(pc->c), f->id, s ? 0 : -HS_ENOENT, "%s",
			   s ? "" : "no such read stream");
}

static void on_hello(struct peer *p, struct pconn *pc, const struct hs_frame *f)
{
	struct hs_hello h, me = { 0 };

	if (hs_msg_hello_dec(f->body, f->body_len, &h) < 0) {
		proto_close(pc, "malformed %s body", "HELLO");
		return;
	}
	if (h.version != HS_PROTO_VERSION) {
		hs_warn("closing connection from %s: protocol version %u, this peer speaks %u",
			hs_conn_peer_name(pc->c), h.version, HS_PROTO_VERSION);
		hs_msg_result_encf(hs_conn_out(pc->c), f->id, -HS_EVERSION,
				   "protocol version %u not supported: hs-peer speaks version %u",
				   h.version, HS_PROTO_VERSION);
		hs_conn_close(pc->c, -HS_EVERSION);
		return;
	}
	pc->hello = 1;
	pc->max_out = h.max_frame < HS_FRAME_MAX_MIN ? HS_FRAME_MAX_MIN : h.max_frame;
	me.version = HS_PROTO_VERSION;
	me.role = HS_ROLE_PEER;
	me.max_frame = (uint32_t)p->max_frame;
	me.node_id = p->node_id;
	hs_msg_hello_enc(hs_conn_out(pc->c), f->id, &me);
}

static void on_frame(struct hs_conn *c, const struct hs_frame *f, void *arg)
{
	struct pconn *pc = arg;
	struct peer *p = pc->p;

	p->frames_in++;
	if (!pc->hello) {
		if (f->type == HS_MSG_HELLO)
			on_hello(p, pc, f);
		else
			proto_close(pc, "%s frame before HELLO", hs_msg_name(f->type));
		return;
	}
	switch (f->type) {
	case HS_MSG_STORE:
		on_store(p, pc, f);
		break;
	case HS_MSG_SEAL:
		on_seal(p, pc, f);
		break;
	case HS_MSG_CLEAN:
		on_clean(p, pc, f);
		break;
	case HS_MSG_RELEASE:
		on_release(p, pc, f);
		break;
	case HS_MSG_TRIM:
		on_trim(p, pc, f);
		break;
	case HS_MSG_GETMETA:
		on_getmeta(p, pc, f);
		break;
	case HS_MSG_STATS:
		on_stats(p, pc, f);
		break;
	case HS_MSG_START:
		on_start(p, pc, f);
		break;
	case HS_MSG_WINDOW:
		on_window(p, pc, f);
		break;
	case HS_MSG_STOP:
		on_stop(p, pc, f);
		break;
	case HS_MSG_REG_PREPARE:
	case HS_MSG_REG_ACCEPT:
		on_reg(p, pc, f);
		break;
	case HS_MSG_LOCATE:
		on_locate(p, pc, f);
		break;
	case HS_MSG_REG_LIST:
		on_reg_list(p, pc, f);
		break;
	default:
		proto_close(pc, "unexpected %s frame", hs_msg_name(f->type));
		break;
	}
}

static void on_writable(struct hs_conn *c, void *arg)
{
	struct pconn *pc = arg;
	struct stream *s;

	LIST_FOREACH(s, &pc->streams, clink)
		if (!s->parked)
			stream_queue(pc->p, s);
}

static void on_closed(struct hs_conn *c, int err, void *arg)
{
	struct pconn *pc = arg;
	struct peer *p = pc->p;

	/* Replies queued for this turn have nowhere to go. */
	for (size_t i = 0; i < p->npend; i++)
		if (p->pend[i].pc == pc)
			p->pend[i].pc = NULL;
	while (!LIST_EMPTY(&pc->streams))
		stream_free(p, LIST_FIRST(&pc->streams));
	if (err && err != -HS_EPROTO && err != -HS_ETOOBIG && err != -HS_EVERSION)
		hs_debug("connection from %s closed: %s", hs_conn_peer_name(c), hs_strerror(err));
	LIST_REMOVE(pc, link);
	p->nconns--;
	free(pc);
}

static const struct hs_conn_ops conn_ops = {
	.frame = on_frame,
	.closed = on_closed,
	.writable = on_writable,
};

/* ---- listeners, timers, signals ----------------------------------------- */

static void on_accept(struct hs_loop *l, int lfd, uint32_t revents, void *arg)
{
	struct peer *p = arg;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct pconn *pc;
		int fd = hs_net_accept(lfd);

		if (fd == -EAGAIN)
			return;
		if (fd < 0) {
			/* EMFILE and friends: try again at the next event. */
			hs_warn("accept: %s", hs_strerror(fd));
			return;
		}
		pc = hs_xcalloc(1, sizeof(*pc));
		pc->p = p;
		pc->max_out = HS_FRAME_MAX_MIN;
		LIST_INIT(&pc->streams);
		pc->c = hs_conn_new(l, fd, &conn_ops, pc);
		if (!pc->c) {
			hs_warn("cannot register a new connection");
			free(pc);
			continue;
		}
		hs_conn_set_max_frame(pc->c, p->max_frame);
		LIST_INSERT_HEAD(&p->conns, pc, link);
		p->nconns++;
		p->conns_total++;
	}
}

static void close_listeners(struct peer *p)
{
	for (int i = 0; i < p->nlisten; i++) {
		if (p->lfd[i] < 0)
			continue;
		hs_loop_del_fd(p->loop, p->lfd[i]);
		close(p->lfd[i]);
		p->lfd[i] = -1;
		if (!strncmp(p->actual[i], "unix:", 5))
			unlink(p->actual[i] + 5);
	}
}

static void on_signal(struct hs_loop *l, int signo, void *arg)
{
	struct peer *p = arg;

	if (signo == SIGHUP) {
		hs_info("SIGHUP ignored (nothing to reopen)");
		return;
	}
	hs_info("%s: finishing the current commit and exiting", strsignal(signo));
	close_listeners(p);
	/* The hooks and flushes of this turn still run: pending replies go out. */
	hs_loop_stop(l);
}

static void on_maintain_timer(struct hs_loop *l, void *arg)
{
	struct peer *p = arg;

	p->maintain_due = 1;
	hs_loop_timer(l, p->maintain_ms, on_maintain_timer, p);
}

/* One statvfs of the data directory: enter or leave the low-space state
 * (logged once each way).  A failing statvfs leaves the state as it was. */
static void space_check(struct peer *p)
{
	char want[HS_SIZE_FMT_MAX];
	struct statvfs v;

	if (!p->min_free)
		return;
	if (statvfs(p->sopts.dir, &v) < 0) {
		if (!p->space_err)
			hs_warn("cannot check the free space of '%s': %s", p->sopts.dir,
				strerror(errno));
		p->space_err = 1;
		return;
	}
	p->space_err = 0;
	p->free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
	if (!p->low_space && p->free_bytes < p->min_free) {
		p->low_space = 1;
		hs_fmt_size(want, sizeof(want), p->min_free);
		hs_warn("disk of %s nearly full: %llu bytes free, below --min-free %s; "
			"refusing new records", p->sopts.dir, (unsigned long long)p->free_bytes,
			want);
	} else if (p->low_space && p->free_bytes >= p->min_free) {
		p->low_space = 0;
		hs_info("disk of %s has %llu bytes free again; accepting new records",
			p->sopts.dir, (unsigned long long)p->free_bytes);
	}
}

static void on_space_timer(struct hs_loop *l, void *arg)
{
	struct peer *p = arg;

	space_check(p);
	hs_loop_timer(l, SPACE_CHECK_MS, on_space_timer, p);
}

/* ---- main ---------------------------------------------------------------- */

static int parse_args(struct peer *p, int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_LONGOPTS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "ready-file", required_argument, NULL, OPT_READY },
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ "durability", required_argument, NULL, OPT_DURABILITY },
		{ "node-id", required_argument, NULL, OPT_NODE_ID },
		{ "partition-duration", required_argument, NULL, OPT_PART_DURATION },
		{ "partition-size", required_argument, NULL, OPT_PART_SIZE },
		{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
		{ "min-free", required_argument, NULL, OPT_MIN_FREE },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli *c = &p->cli;
	uint64_t v;
	int opt, status;

	status = hs_cli_config_args(c, HS_CLI_SHORTOPTS, longopts, NULL, NULL, &argc, &argv);
	if (status)
		return status;
	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS, longopts, NULL)) != -1) {
		switch (hs_cli_option(c, opt, optarg, &status)) {
		case 0:
			continue;
		case 1:
			return status ? status : -1; /* --help, --version: done */
		}
		switch (opt) {
		case OPT_DATA:
			p->sopts.dir = optarg;
			break;
		case OPT_LISTEN:
			if (p->nlisten == MAX_LISTEN)
				return hs_cli_usage_error(c, "at most %d --listen addresses",
							  MAX_LISTEN);
			p->listen[p->nlisten++] = optarg;
			break;
		case OPT_READY:
			p->ready_file = optarg;
			break;
		case OPT_PIDFILE:
			p->pidfile = optarg;
			break;
		case OPT_DURABILITY: {
			uint8_t d;
			int st = hs_cli_durability(c, optarg, &d);

			if (st)
				return st;
			p->sopts.durability = (enum hs_durability)d;
			break;
		}
		case OPT_NODE_ID:
			if (hs_parse_u64(optarg, &v) < 0 || v > UINT32_MAX)
				return hs_cli_usage_error(c, "invalid --node-id '%s' (0..4294967295)",
							  optarg);
			p->node_id = (uint32_t)v;
			break;
		case OPT_PART_DURATION:
			if (hs_parse_duration_ms(optarg, &v) < 0 || !v)
				return hs_cli_usage_error(
					c, "invalid --partition-duration '%s' (use " HS_DURATION_SYNTAX ")",
					optarg);
			p->sopts.partition_ms = v;
			break;
		case OPT_PART_SIZE:
			if (hs_parse_size(optarg, &v) < 0 || !v)
				return hs_cli_usage_error(
					c, "invalid --partition-size '%s' (use " HS_SIZE_SYNTAX ")", optarg);
			p->sopts.partition_bytes = v;
			break;
		case OPT_MAX_FRAME:
			if (hs_parse_size(optarg, &v) < 0 || v < HS_FRAME_MAX_MIN || v > UINT32_MAX)
				return hs_cli_usage_error(
					c, "invalid --max-frame '%s' (4k..4G-1, use " HS_SIZE_SYNTAX ")",
					optarg);
			p->max_frame = v;
			break;
		case OPT_MIN_FREE:
			if (hs_parse_size(optarg, &v) < 0)
				return hs_cli_usage_error(
					c, "invalid --min-free '%s' (use " HS_SIZE_SYNTAX ", 0 disables)",
					optarg);
			p->min_free = v;
			break;
		default:
			return hs_cli_usage_error(c, "unexpected option");
		}
	}
	if (optind < argc)
		return hs_cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (!p->sopts.dir)
		return hs_cli_usage_error(c, "--data DIR is required");
	if (!p->nlisten)
		return hs_cli_usage_error(c, "--listen ADDR is required");
	return hs_cli_finish(c);
}

static int open_listeners(struct peer *p)
{
	for (int i = 0; i < p->nlisten; i++) {
		int fd = hs_net_listen(p->listen[i], p->actual[i], sizeof(p->actual[i]));

		if (fd < 0) {
			hs_error("cannot listen on '%s': %s", p->listen[i], hs_strerror(fd));
			return fd == -HS_EUSAGE || fd == -ENAMETOOLONG ? EX_USAGE : EX_CANTCREAT;
		}
		p->lfd[i] = fd;
		if (hs_loop_add_fd(p->loop, fd, HS_EV_READ, on_accept, p) < 0) {
			hs_error("cannot watch the socket for '%s'", p->listen[i]);
			return EX_OSERR;
		}
		hs_info("listening on %s", p->actual[i]);
	}
	return 0;
}

static int write_ready(struct peer *p)
{
	struct hs_buf b = HS_BUF_INIT;
	int r;

	/* One address per line; the first is the one tests and supervisors use. */
	for (int i = 0; i < p->nlisten; i++)
		hs_buf_printf(&b, "%s%s", i ? "\n" : "", p->actual[i]);
	r = hs_daemon_ready_file(p->ready_file, (const char *)b.data);
	hs_buf_free(&b);
	if (r < 0)
		hs_error("cannot write ready file '%s': %s", p->ready_file, hs_strerror(r));
	return r;
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct peer p;
	int status, r;

	memset(&p, 0, sizeof(p));
	for (int i = 0; i < MAX_LISTEN; i++)
		p.lfd[i] = -1;
	p.max_frame = HS_FRAME_MAX_DEFAULT;
	p.min_free = MIN_FREE_DEFAULT;
	p.sopts.durability = HS_DUR_SYNC;
	LIST_INIT(&p.conns);
	LIST_INIT(&p.streams);
	TAILQ_INIT(&p.ready);
	hs_cli_init(&p.cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	status = parse_args(&p, argc, argv);
	if (status) {
		if (status < 0) /* --help or --version */
			status = 0;
		goto out_cli;
	}
	signal(SIGPIPE, SIG_IGN);

	p.loop = hs_loop_new();
	if (!p.loop) {
		hs_error("cannot create the event loop: %s", strerror(errno));
		status = EX_OSERR;
		goto out_cli;
	}
	/* Block the signals before RocksDB starts its threads. */
	r = hs_loop_signals(p.loop, sigs, 3, on_signal, &p);
	if (r < 0) {
		hs_error("cannot set up signals: %s", hs_strerror(r));
		status = EX_OSERR;
		goto out_loop;
	}
	r = hs_store_open(&p.sopts, &p.store);
	if (r < 0) {
		fprintf(stderr, "%s: cannot open the store in '%s': %s\n", p.cli.prog,
			p.sopts.dir, hs_strerror(r));
		status = hs_exit_status(r);
		goto out_loop;
	}
	/* Before the first STORE can arrive: a nearly full disk refuses it. */
	space_check(&p);
	if (p.min_free)
		hs_loop_timer(p.loop, SPACE_CHECK_MS, on_space_timer, &p);
	status = open_listeners(&p);
	if (status)
		goto out_listen;
	hs_loop_before_sleep(p.loop, before_sleep, &p);
	p.maintain_ms = p.sopts.partition_ms ? p.sopts.partition_ms / 4 : 60000;
	if (p.maintain_ms < 100)
		p.maintain_ms = 100;
	if (p.maintain_ms > 60000)
		p.maintain_ms = 60000;
	hs_loop_timer(p.loop, p.maintain_ms, on_maintain_timer, &p);
	if (p.sopts.durability == HS_DUR_MEMORY)
		hs_warn("--durability memory: nothing is written to disk, acknowledged "
			"records are lost on exit; for benchmarks only");

	if (p.pidfile && (r = hs_daemon_pidfile(p.pidfile)) < 0) {
		hs_error("cannot write pid file '%s': %s", p.pidfile, hs_strerror(r));
		status = EX_CANTCREAT;
		goto out_listen;
	}
	if (p.ready_file && write_ready(&p) < 0) {
		status = EX_CANTCREAT;
		goto out_pidfile;
	}
	hs_info("serving %s (durability %s)", p.sopts.dir,
		hs_durability_name(p.sopts.durability));

	r = hs_loop_run(p.loop);
	if (r < 0) {
		hs_error("event loop failed: %s", hs_strerror(r));
		status = EX_OSERR;
	} else {
		status = p.exit_status;
	}

out_pidfile:
	if (p.pidfile)
		hs_daemon_pidfile_remove(p.pidfile);
out_listen:
	close_listeners(&p);
	/* Every connection gets one last non-blocking send of its output. */
	while (!LIST_EMPTY(&p.conns))
		hs_conn_close(LIST_FIRST(&p.conns)->c, 0);
	hs_store_close(p.store);
	for (size_t i = 0; i < p.capregs; i++)
		hs_reg_acc_free(&p.regs[i].acc);
	free(p.regs);
	free(p.regidx);
	hs_buf_free(&p.regout);
	hs_buf_free(&p.regenc);
out_loop:
	hs_loop_free(p.loop);
out_cli:
	hs_cli_free(&p.cli);
	return status;
}

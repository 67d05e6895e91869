/*
 * hs-serve - the front door of HStore (DESIGN.md §2): clients talk only to
 * it; it sequences appends, keeps the stream directory in the metadata
 * registers, and serves reads from its peers.
 *
 * PROCESSES.  With no --peer, hs-serve spawns --local-peers hs-peer
 * children (default 1; the binary next to /proc/self/exe, else in PATH),
 * data in DIR/peer<i>, sockets next to the serve socket (or in a private
 * directory under /tmp when that path would not fit sun_path), and
 * supervises them: a child that exits is logged and restarted after a
 * backoff (100 ms doubling to 5 s, reset after 10 s of good health).
 * Children get PR_SET_PDEATHSIG(SIGTERM), so a killed hs-serve does not
 * leave them holding their stores.  --peer ADDR (repeatable) uses external
 * peers instead.
 *
 * METADATA (libpaxos/meta.h).  One CASPaxos proposer (libpaxos/register.h)
 * over M = every peer, majority quorums.  Its id is (a random 16-bit node
 * number kept in DIR/serve.id) << 16 | a boot counter kept there too, so
 * every incarnation has its own ballots.  A create is one register change
 * of "s/<name>" (the proposer sends all keys changed in a turn in one
 * frame per acceptor, so 1000 creates cost one or two round trips); log ids
 * are random below 2^62.  A stream's log record "l/<id>" is created by its
 * first activation.  Listing asks every peer (REG_LIST, proto.h) and merges
 * by highest accepted ballot; it is not linearizable against concurrent
 * creates (a create racing a list may or may not appear).
 *
 * SEQUENCER.  This round every stream has replication 1 on the data peer,
 * the first peer (issue 4 adds R > 1, copysets and recovery).  A stream
 * has in-memory state only while active (struct sstream, in a bounded LRU:
 * idle ones beyond MAX_ACTIVE are dropped).  Activation on first use after
 * start: one register change bumps l/<id>.epoch to e (so a restarted
 * hs-serve gets a new epoch whose LSNs exceed all earlier ones), then SEAL
 * (e - 1) on the data peer, which reports per epoch the highest LSN it
 * holds.  With one peer, STOREs sent in LSN order over one connection and
 * re-sent in order after a reconnect, the records a peer holds for an
 * epoch are a prefix of it, so everything it holds below epoch e is
 * complete: hs-serve releases up to e<<32 (all earlier epochs) at once,
 * which is safe because the seal stops any older sequencer from adding
 * more.  Appends get ESNs 1, 2, ... of epoch e.
 *
 * APPEND PATH.  Each client run is rebuilt as a STORE run with copyset
 * {data peer's node id} and the LNG (hs_run_begin, one memcpy of the
 * records section, timestamps of 0 stamped with the wall clock, hs_run_end)
 * into the turn's STORE frame: ONE STORE per peer per loop turn carries
 * every run of every stream produced in the turn (a new frame only when the
 * peer's frame limit is reached) - or two when the turn has runs of both
 * sync streams and async (or memory) streams: the async ones go in a STORE
 * flagged HS_STORE_NOSYNC, which the peer commits without waiting for an
 * fsync when nothing else in its turn needs one (proto.h).  Per-stream
 * memory is NOSYNC too: only a peer started with --durability memory keeps
 * no WAL.  The client gets APPENDED only after
 * STORED OK; runs are released in LSN order (the stored prefix), in ONE
 * RELEASE per peer per turn.  Unacknowledged STORE frames are kept and sent
 * again, in order, when the link comes back (a restarted peer).
 * Back-pressure: at most STREAM_WINDOW bytes in flight per stream (later
 * appends wait in order), and a client connection with more than
 * CONN_BUDGET bytes of appends in flight is not read until it falls below
 * half of that - so memory is bounded by the number of connections.
 *
 * READ PATH.  READ resolves its positions when it starts, on the active
 * sequencer: tail = the next LSN (pinned), head = the first retained LSN,
 * head+N/tail-N count records over the epochs' dense ranges (known from
 * SEALED and the current epoch), @time asks the data peer (LOCATE).  Then
 * a peer read stream (START) from..until-1 is forwarded: RECORDS runs
 * become DELIVER runs (sliced to the range and the limit), TRIM gaps
 * become READ_GAP TRIM, a checksum gap DATALOSS (the only copy is bad);
 * NORECORDS gaps only move the position.  Credit: the peer is granted at
 * most what the client granted (and at most READ_CAP records/bytes in
 * flight) and only while the client connection's output is below its
 * high-water mark, so nothing is buffered here.  FOLLOW keeps the peer
 * stream open; the peer parks it at the released point and RELEASE wakes
 * it - until the follower is caught up: see below.  Not done this round:
 * R > 1.
 *
 * FOLLOWING FROM MEMORY (DESIGN §11).  While a stream has follow reads
 * (FOLLOW READs and subscription sessions; not redeliveries), it keeps a
 * window of released runs: at STORED OK each run's exact STORE bytes are
 * copied out of the batch frame (one memcpy per run), and at release they
 * join the stream's window in LSN order, so the window always holds every
 * LSN in [win_lo, released] and nothing else.  A run without a copy (its
 * STORE failed, or it was stored before the first follower came) restarts
 * the window after it.  The window is capped at FOLLOW_WIN_STREAM bytes
 * per stream (its newest run always stays) and FOLLOW_WIN_TOTAL over all
 * streams, evicting the oldest release first; it is dropped when the last
 * follower leaves, so unfollowed and idle streams cost nothing.  A follow
 * read whose next LSN is in the window is served from it: at the end of
 * every turn that released runs, each such follower gets one DELIVER
 * (split at FOLLOW_FRAME_TARGET) built straight into its connection's
 * output from the window's bytes (runs sliced at its next LSN and to its
 * credit) - followers hold no copies.  It respects exactly what the peer
 * path does: the client's record and payload-byte credit (one record past
 * a positive byte credit, as a peer sends one run), limit and until, the
 * subscription's max_unacked room (and hs_subwin_delivered() for every
 * run), and the connection's high-water mark; READ_WINDOW, ACK and the
 * writable callback resume it.  Never beyond the released point: the
 * window ends there.  Switches keep the order with no duplicates because
 * the read's next LSN is the only position: a follower whose next LSN is
 * evicted (it was slow, out of credit, or stopped reading), or lands
 * below a restarted window, or that is trimmed, or whose stream is no
 * longer active, starts a peer read stream from its next LSN; a peer-read
 * follower moves to memory (STOP, and the peer's frames still in flight
 * are dropped with the registration) when, after a RECORDS or a GAP
 * (NORECORDS is sent when the peer catches up), its next LSN is in the
 * newer half of the window or past the released point - the half, so that
 * a follower at the window's old edge does not flip on every eviction.
 * Memory is therefore bounded by the window caps, whatever the followers
 * do; a subscriber that stops reading is still dropped by the stuck rule
 * below.  STATS: follow_mem_delivered (records), follow_mem_frames,
 * follow_mem_switches (peer -> memory), follow_peer_fallbacks (memory ->
 * peer), follow_window_bytes, follow_window_evicted (runs),
 * follow_window_resets; per stream followers and follow_window_bytes.
 *
 * SUBSCRIPTIONS (DESIGN §7).  A named subscription is the register
 * "u/<name>" (meta.h: stream, log id, ack timeout, max unacked,
 * checkpoint).  SUBSCRIBE is a READ in follow mode from the checkpoint,
 * with the same DELIVER/READ_GAP forwarding and credit, plus a session
 * (struct ssub, in memory only while a session, a lookup or a checkpoint
 * write needs it): the ack window of libpaxos/sub.h (LSN ranges only, never
 * payloads), one session per subscription (a second one ends at once with
 * -HS_ELOCKED), and a 50 ms tick that (1) writes the checkpoint to the
 * register when it moved and SUB_PERSIST_MS passed (at once after
 * SUB_PERSIST_ACKS acknowledged records, and at session end); the write
 * never moves it back; (2) redelivers the oldest range unacknowledged for
 * ack_timeout by a second, bounded peer read of just that range sent under
 * the session's read id (one such read at a time); (3) drops a subscriber
 * whose connection output stayed above the high-water mark for longer than
 * max(ack_timeout, SUB_STUCK_MIN_MS): READ_END -HS_ETIMEOUT, logged.  The
 * forward read's peer credit is capped so that records granted plus records
 * unacknowledged never exceed max_unacked: delivery pauses there and
 * resumes as acknowledgements arrive.  Gaps (trimmed, holes, empty LSNs)
 * count as acknowledged.  When a session ends its window is dropped: the
 * next one starts from the checkpoint, so records delivered after the
 * first unacknowledged one are delivered again (at-least-once).  @time
 * positions are not accepted by SUB_CREATE this round (-HS_EUSAGE).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "cli.h"
#include "conn.h"
#include "daemon.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "meta.h"
#include "net.h"
#include "parse.h"
#include "peers.h"
#include "proto.h"
#include "proto_client.h"
#include "register.h"
#include "run.h"
#include "sub.h"

#define MAX_LISTEN 16
#define MAX_PEERS 32
#define MAX_ACTIVE 10000               /* active streams kept when idle */
#define STREAM_WINDOW (32u << 20)      /* append bytes in flight per stream */
#define CONN_BUDGET (32u << 20)        /* append bytes in flight per client */
#define READ_CAP_REC 65536u            /* peer read credit in flight */
#define READ_CAP_BYTES (4u << 20)
#define LIST_PAGE 1000
#define STOP_GRACE_MS 10000
#define SUB_TICK_MS 50                 /* subscription session housekeeping */
#define SUB_PERSIST_MS 100             /* checkpoint writes at most this often */
#define SUB_PERSIST_ACKS 1000          /* ... unless this many records were acked */
#define SUB_STUCK_MIN_MS 1000          /* shortest wait before dropping a stuck subscriber */
#define FOLLOW_WIN_STREAM (16u << 20)  /* released run bytes kept per followed stream */
#define FOLLOW_WIN_TOTAL (256u << 20)  /* ... and over all streams */
#define FOLLOW_FRAME_TARGET (1u << 20) /* DELIVER bytes per frame from memory */

static const char usage_text[] =
	"usage: hs-serve [--data DIR] [--listen ADDR]... [--peer ADDR]... [--local-peers N]\n"
	"                [--replication R] [--durability sync|async|memory]\n"
	"                [--ready-file FILE] [--pidfile FILE]\n"
	"       hs-serve -h | --help | -V | --version\n";

static const char help_text[] =
	"hs-serve - HStore server: streams, appends and reads over a set of hs-peer nodes\n"
	"\n"
	"usage: hs-serve [options]\n"
	"\n"
	"      --data DIR            data directory (default ${XDG_DATA_HOME:-~/.local/share}/hs)\n"
	"      --listen ADDR         unix:PATH or HOST:PORT (loopback only; port 0: the\n"
	"                            kernel picks); repeatable; default: the per-user socket\n"
	"      --peer ADDR           use this hs-peer instead of spawning local ones;\n"
	"                            repeatable (the first one holds the data this release)\n"
	"      --local-peers N       spawn and supervise N local hs-peer processes (default 1)\n"
	"      --replication R       default replication factor of new streams (only 1 this\n"
	"                            release)\n"
	"      --durability MODE     default durability of new streams: sync (default),\n"
	"                            async or memory; spawned peers run sync, or memory\n"
	"                            (no WAL at all) with memory\n"
	"      --ready-file FILE     write the actual address there once serving\n"
	"      --pidfile FILE        write the process id there; removed on clean exit\n"
	"  -a, --addr ADDR           (common; unused by hs-serve)\n"
	"  -t, --timeout DUR         (common; unused by hs-serve)\n"
	"      --config FILE         configuration file (default ~/.config/hs/config)\n"
	"  -X KEY=VAL                override one configuration key\n"
	"  -v, --verbose             log more (repeatable); HS_LOG=debug|info|warn|error\n"
	"  -q, --quiet               log less\n"
	"  -h, --help                show this help and exit\n"
	"  -V, --version             show the version and exit\n"
	"\n"
	"Signals: SIGTERM/SIGINT stop accepting, finish the appends in flight, stop the\n"
	"local peers and exit 0.  Exit status: 0 clean stop, 64 usage (also a\n"
	"non-loopback TCP address: no authentication yet), 69 peers unreachable at\n"
	"start, 70 internal error, 73 cannot create the data directory or socket, 78\n"
	"bad configuration.\n";

enum {
	OPT_DATA = HS_OPT_FIRST_PRIVATE,
	OPT_LISTEN,
	OPT_PEER,
	OPT_LOCAL_PEERS,
	OPT_REPLICATION,
	OPT_DURABILITY,
	OPT_READY,
	OPT_PIDFILE,
};

struct serve;
struct sstream;
struct cconn;
struct ssub;

/* Something waiting for a stream to become active (or fail). */
struct wait {
	TAILQ_ENTRY(wait) link;
	int append;               /* an append entry: subject to the window */
	size_t bytes;             /* its run bytes */
	void (*fn)(struct serve *sv, struct sstream *s, struct wait *w, int status);
};
TAILQ_HEAD(waitq, wait);

/* One APPEND (or admin list request) from a client, settled entry by entry. */
struct cres {
	int32_t status;
	uint64_t first_lsn;
	uint32_t count, detail;
	const char *text;         /* static */
};
struct creq {
	struct serve *sv;
	struct cconn *cc;         /* NULL once the connection closed */
	uint64_t id;
	uint16_t type;            /* HS_MSG_APPEND, STREAM_CREATE, ... */
	uint32_t n, left;
	size_t bytes;             /* APPEND: run bytes counted on cc */
	struct cres *res;
	LIST_ENTRY(creq) link;
};

/* One append entry from arrival until STORED. */
struct pent {
	struct wait w;
	struct creq *rq;
	uint32_t idx;
	int create;
	uint8_t *run;             /* the client's run (copied), then freed */
	size_t len;
	uint32_t nrec;
	int stamp;                /* has records with timestamp 0 */
	/* once sent */
	struct sstream *s;
	uint64_t first_lsn;
	size_t roff, rlen;        /* the STORE run inside its batch's frame */
	struct mrun *mr;          /* its copy for the follow window, or NULL */
	int done;                 /* STORED (ok or not) */
	TAILQ_ENTRY(pent) flink;  /* s->inflight, LSN order */
};
TAILQ_HEAD(pentq, pent);

/* A STORE frame and its runs, kept until STORED (re-sent after a reconnect). */
enum { SB_SYNC, SB_NOSYNC, SB_KINDS };
struct sbatch {
	uint64_t id;
	struct hs_buf frame;
	struct pent **runs;
	size_t n, cap;
	int sent;
	TAILQ_ENTRY(sbatch) link;
};
TAILQ_HEAD(sbatchq, sbatch);

struct oepoch {
	uint32_t epoch;
	uint64_t max_lsn;
};

enum { S_LOOKUP, S_ACTIVATING, S_SEALING, S_ACTIVE, S_DEAD };

/* A released run kept in its stream's follow window (design comment:
 * FOLLOWING FROM MEMORY): the exact STORE run bytes. */
struct mrun {
	struct sstream *s;
	uint64_t first;
	uint32_t nrec;
	size_t len;
	TAILQ_ENTRY(mrun) slink;  /* s->win, LSN order */
	TAILQ_ENTRY(mrun) glink;  /* sv->win, release order */
	uint8_t bytes[];
};
TAILQ_HEAD(mrunq, mrun);

struct sstream {
	struct serve *sv;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
	int state;
	int want_create;          /* the lookup may create it */
	struct hs_stream_attrs cattrs; /* attributes for that create */
	struct hs_srec rec;
	uint32_t epoch, next_esn;
	uint64_t released;        /* last released LSN */
	uint64_t trim;
	struct oepoch *olde;      /* earlier epochs holding records */
	size_t nolde;
	int rel_dirty;
	struct waitq wq;
	struct pentq inflight;
	size_t inflight_bytes;
	int refs;                 /* reads and lookups holding it */
	uint64_t appends, records, bytes;
	/* follow window, kept while nfollow > 0: every LSN in [win_lo,
	 * released] is in win, nothing else */
	struct mrunq win;
	uint64_t win_lo;
	size_t win_bytes;
	int nfollow;
	LIST_HEAD(, cread) followers;
	int mem_dirty;            /* on sv->memdirty */
	struct sstream *hnext;
	TAILQ_ENTRY(sstream) lru;
};
TAILQ_HEAD(sstreamq, sstream);

enum { R_WAIT, R_LOCATE, R_RUN, R_DONE };

struct cread {
	struct serve *sv;
	struct cconn *cc;
	struct sstream *s;
	struct wait w;
	uint64_t req;             /* READ's request id */
	uint32_t read_id, flags;
	struct hs_pos pfrom, puntil;
	uint64_t limit, sent;
	int64_t cl_rec, cl_bytes;
	int unl_rec, unl_bytes;
	int64_t out_rec, out_bytes;  /* granted to the peer, not yet received */
	uint64_t from, until;     /* resolved: [from, until), until 0 = none */
	uint64_t next;            /* READ_END's next_lsn */
	uint64_t peer_req;
	uint32_t sid;
	int state, locating;
	int queued;               /* w is on a stream's wait queue */
	struct ssub *sub;         /* SUBSCRIBE session (or its redelivery) */
	int child;                /* a redelivery read: not on cc->reads */
	int loading;              /* the subscription register is being read */
	int following;            /* on s->followers */
	int mem;                  /* served from s->win, no peer stream */
	struct mrun *mcur;        /* mem: the run holding next, NULL = look it up */
	LIST_ENTRY(cread) flink;
	LIST_ENTRY(cread) link;
};

struct cconn {
	struct serve *sv;
	struct hs_conn *c;
	int hello;
	size_t inflight;          /* append bytes not yet settled */
	int held;
	LIST_HEAD(, creq) reqs;
	LIST_HEAD(, cread) reads;
	LIST_HEAD(, inforeq) infos;
	LIST_HEAD(, listreq) lists;
	LIST_HEAD(, subreq) subreqs;
	LIST_ENTRY(cconn) link;
};

struct child {
	pid_t pid;
	char data[PATH_MAX];
	char sock[HS_NET_ADDR_MAX];
	uint64_t backoff, started;
	uint64_t timer;
	int restarts;
};

struct serve {
	struct hs_cli cli;
	struct hs_loop *loop;
	const char *data_dir;
	char data_buf[PATH_MAX];
	const char *ready_file, *pidfile;
	const char *listen[MAX_LISTEN];
	int nlisten;
	int lfd[MAX_LISTEN];
	char actual[MAX_LISTEN][HS_NET_ADDR_MAX];
	char defaddr[HS_ADDR_MAX_LEN];
	const char *peer_arg[MAX_PEERS];
	int npeer_arg;
	int local_peers;
	uint8_t replication;
	uint8_t durability;       /* 1 sync, 2 async, 3 memory */
	char peer_bin[PATH_MAX + 16];
	char rundir[PATH_MAX];
	int own_rundir;
	struct child children[MAX_PEERS];
	int nchildren;

	struct hs_peers *peers;
	int npeers;
	struct hs_reg_proposer *prop;
	uint64_t prop_timer;
	int reg_dirty;
	uint32_t proposer_id;

	/* streams */
	struct sstream **tab;
	size_t nb, nstreams;
	struct sstreamq lru;
	/* the turn's STOREs (per SB_* kind) and the unacknowledged ones */
	struct sbatch *cur[SB_KINDS];
	struct hs_msg_wr sw[SB_KINDS];
	struct sbatchq unacked;
	size_t unacked_n;
	struct sstream **reldirty;
	size_t nrel, caprel;
	/* follow windows: every kept run, oldest release first */
	struct mrunq win;
	size_t win_bytes;
	struct sstream **memdirty;
	size_t nmem, capmem;

	LIST_HEAD(, cconn) conns;
	uint32_t next_sid;
	LIST_HEAD(, ssub) subs;   /* subscriptions in memory */

	int ready_written, meta_ok, stopping;
	uint64_t stop_deadline;
	int exit_status;

	/* counters */
	uint64_t conns_total, appends, append_records, append_bytes, stores_sent;
	uint64_t creates, deletes, reads, records_delivered, activations;
	uint64_t sub_sessions, sub_redelivered, sub_dropped, sub_ckpt_writes;
	uint64_t follow_mem_delivered, follow_mem_frames, follow_mem_switches;
	uint64_t follow_peer_fallbacks, follow_win_evicted, follow_win_resets;
};

static struct serve *g_sv; /* for the SIGCHLD path only */

/* ---- helpers --------------------------------------------------------------- */

static void grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;

	if (need <= *cap)
		return;
	n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	*p = hs_xrealloc(*p, n * elem);
	*cap = n;
}

static uint32_t name_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

static uint64_t rand64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = hs_now_us() * 6364136223846793005ull ^ (uint64_t)getpid() << 32;
	return v;
}

static int data_peer(struct serve *sv)
{
	return 0;
}

static void proto_close(struct cconn *cc, const char *what)
{
	hs_warn("closing connection from %s: %s", hs_conn_peer_name(cc->c), what);
	hs_conn_close(cc->c, -HS_EPROTO);
}

/* ---- register proposer glue ---------------------------------------------- */

static void rop_send(void *arg, int idx, const uint8_t *frame, size_t len)
{
	struct serve *sv = arg;
	struct hs_buf *out = hs_peers_out(sv->peers, idx);

	/* Best effort: a lost frame costs the proposer a timeout. */
	if (out)
		hs_buf_append(out, frame, len);
}

static uint64_t rop_now(void *arg)
{
	return hs_now_ms();
}

static uint32_t rop_rand(void *arg)
{
	return (uint32_t)rand64();
}

static void rop_on_timer(struct hs_loop *l, void *arg)
{
	struct serve *sv = arg;

	sv->prop_timer = 0;
	hs_reg_proposer_on_timer(sv->prop);
}

static void rop_timer(void *arg, uint64_t at_ms)
{
	struct serve *sv = arg;
	uint64_t now = hs_now_ms();

	hs_loop_timer_cancel(sv->loop, sv->prop_timer);
	sv->prop_timer = hs_loop_timer(sv->loop, at_ms > now ? at_ms - now : 0, rop_on_timer, sv);
}

static int reg_change(struct serve *sv, const uint8_t *key, size_t klen, hs_reg_fn fn,
		      hs_reg_done_fn done, void *arg)
{
	sv->reg_dirty = 1;
	return hs_reg_change(sv->prop, key, klen, fn, done, arg);
}

/* ---- streams: table and LRU ------------------------------------------------ */

static struct sstream *stream_find(struct serve *sv, const char *name, size_t n)
{
	struct sstream *s;

	if (!sv->nb)
		return NULL;
	for (s = sv->tab[name_hash(name, n) & (sv->nb - 1)]; s; s = s->hnext)
		if (s->nlen == n && !memcmp(s->name, name, n))
			return s;
	return NULL;
}

static void stream_unhash(struct serve *sv, struct sstream *s)
{
	struct sstream **pp = &sv->tab[name_hash(s->name, s->nlen) & (sv->nb - 1)];

	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	sv->nstreams--;
	TAILQ_REMOVE(&sv->lru, s, lru);
}

static void stream_hash(struct serve *sv, struct sstream *s)
{
	size_t i;

	if (sv->nstreams + 1 > sv->nb) {
		size_t nb = sv->nb ? sv->nb * 2 : 256;
		struct sstream **t = hs_xcalloc(nb, sizeof(*t));

		for (i = 0; i < sv->nb; i++) {
			struct sstream *x, *nx;

			for (x = sv->tab[i]; x; x = nx) {
				size_t j = name_hash(x->name, x->nlen) & (nb - 1);

				nx = x->hnext;
				x->hnext = t[j];
				t[j] = x;
			}
		}
		free(sv->tab);
		sv->tab = t;
		sv->nb = nb;
	}
	i = name_hash(s->name, s->nlen) & (sv->nb - 1);
	s->hnext = sv->tab[i];
	sv->tab[i] = s;
	sv->nstreams++;
	TAILQ_INSERT_HEAD(&sv->lru, s, lru);
}

static int stream_idle(const struct sstream *s)
{
	return !s->refs && TAILQ_EMPTY(&s->wq) && TAILQ_EMPTY(&s->inflight) && !s->rel_dirty &&
	       (s->state == S_ACTIVE || s->state == S_DEAD);
}

static void win_reset(struct serve *sv, struct sstream *s, uint64_t lo);

static void stream_free(struct serve *sv, struct sstream *s)
{
	if (s->mem_dirty) {
		for (size_t i = 0; i < sv->nmem; i++)
			if (sv->memdirty[i] == s)
				sv->memdirty[i] = sv->memdirty[--sv->nmem];
		s->mem_dirty = 0;
	}
	win_reset(sv, s, 0); /* empty: no followers hold it */
	stream_unhash(sv, s);
	free(s->olde);
	free(s);
}

/* Drop idle streams beyond the cap, least recently used first. */
static void streams_trim_cache(struct serve *sv)
{
	struct sstream *s, *prev;

	for (s = TAILQ_LAST(&sv->lru, sstreamq); s && sv->nstreams > MAX_ACTIVE; s = prev) {
		prev = TAILQ_PREV(s, sstreamq, lru);
		if (stream_idle(s))
			stream_free(sv, s);
	}
}

static void stream_touch(struct serve *sv, struct sstream *s)
{
	TAILQ_REMOVE(&sv->lru, s, lru);
	TAILQ_INSERT_HEAD(&sv->lru, s, lru);
}

static void stream_pump(struct serve *sv, struct sstream *s);
static void stream_lookup(struct serve *sv, struct sstream *s);
static void mem_mark(struct serve *sv, struct sstream *s);
static void win_check(struct serve *sv, struct sstream *s);
static void win_take(struct serve *sv, struct sstream *s, struct pent *pe);
static struct mrun *mrun_new(struct sstream *s, uint64_t first, uint32_t nrec,
			     const uint8_t *run, size_t len);

/* Fail everything waiting on s with status and forget s (once idle). */
static void stream_kill(struct serve *sv, struct sstream *s, int status)
{
	struct wait *w;

	s->state = S_DEAD;
	mem_mark(sv, s); /* its followers go back to the peer */
	while ((w = TAILQ_FIRST(&s->wq))) {
		TAILQ_REMOVE(&s->wq, w, link);
		w->fn(sv, s, w, status);
	}
	/* A dead stream is looked up again by its next user. */
	if (stream_idle(s))
		stream_free(sv, s);
}

/* Queue w on the stream named name; the stream is looked up (and, with
 * create, created with attrs) and activated as needed. */
static void stream_wait(struct serve *sv, const char *name, size_t n, int create,
			const struct hs_stream_attrs *attrs, struct wait *w)
{
	struct sstream *s = stream_find(sv, name, n);

	if (s && s->state == S_DEAD && stream_idle(s)) {
		stream_free(sv, s);
		s = NULL;
	}
	if (!s) {
		s = hs_xcalloc(1, sizeof(*s));
		s->sv = sv;
		memcpy(s->name, name, n);
		s->nlen = (uint8_t)n;
		TAILQ_INIT(&s->wq);
		TAILQ_INIT(&s->inflight);
		TAILQ_INIT(&s->win);
		LIST_INIT(&s->followers);
		stream_hash(sv, s);
		s->state = S_LOOKUP;
		TAILQ_INSERT_TAIL(&s->wq, w, link);
		if (create) {
			s->want_create = 1;
			if (attrs)
				s->cattrs = *attrs;
		}
		stream_lookup(sv, s);
		streams_trim_cache(sv);
		return;
	}
	stream_touch(sv, s);
	if (create && !s->want_create && s->state == S_LOOKUP) {
		/* The lookup in flight may not create it; the waiter will
		 * retry with create if it answers "no such stream". */
		s->want_create = 2;
		if (attrs)
			s->cattrs = *attrs;
	}
	TAILQ_INSERT_TAIL(&s->wq, w, link);
	if (s->state == S_ACTIVE)
		stream_pump(sv, s);
	else if (s->state == S_DEAD)
		stream_lookup(sv, s);
}

/* ---- lookup, create, activation ---------------------------------------- */

struct lookup_ctx {
	struct sstream *s;
	int create;
	uint64_t new_log;
	struct hs_stream_attrs attrs;
};

static void srec_from_attrs(struct serve *sv, const struct hs_stream_attrs *a, uint64_t log,
			    struct hs_srec *r)
{
	memset(r, 0, sizeof(*r));
	r->log = log;
	r->replication = a && (a->mask & HS_ATTR_REPLICATION) ? a->replication : sv->replication;
	r->durability = a && (a->mask & HS_ATTR_DURABILITY) ? a->durability : sv->durability;
	r->retention_ms = a && (a->mask & HS_ATTR_RETENTION) ? a->retention_ms : 0;
	r->offload_after_ms = a && (a->mask & HS_ATTR_OFFLOAD) ? a->offload_after_ms : 0;
	r->created_ms = hs_wall_ms();
}

static uint64_t new_log_id(void)
{
	uint64_t v;

	do
		v = rand64() & ((1ull << 62) - 1);
	while (!v);
	return v;
}

static int fn_lookup(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		     struct hs_buf *out)
{
	struct lookup_ctx *x = arg;
	struct serve *sv = x->s->sv;
	struct hs_srec r;
	int rc = hs_srec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 1 && !(r.flags & HS_SREC_DELETED))
		return HS_REG_SAME;
	if (!x->create)
		return -HS_ENOSTREAM;
	srec_from_attrs(sv, &x->attrs, x->new_log, &r);
	hs_srec_enc(&r, out);
	return 0;
}

static void activate(struct serve *sv, struct sstream *s);

static void lookup_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct lookup_ctx *x = arg;
	struct sstream *s = x->s;
	struct serve *sv = s->sv;

	free(x);
	s->refs--;
	if (status == -ECANCELED)
		return;
	if (status == 0 && hs_srec_dec(val, len, &s->rec) == 1) {
		activate(sv, s);
		return;
	}
	if (status == -HS_ENOSTREAM && s->want_create == 2) {
		/* A waiter arrived with create after this lookup started. */
		s->want_create = 1;
		stream_lookup(sv, s);
		return;
	}
	if (status == -HS_ETIMEOUT || status == -HS_EUNAVAIL)
		hs_warn("stream '%s': metadata lookup failed: %s", s->name, hs_strerror(status));
	stream_kill(sv, s, status ? status : -HS_EDATA);
}

static void stream_lookup(struct serve *sv, struct sstream *s)
{
	struct lookup_ctx *x = hs_xcalloc(1, sizeof(*x));
	uint8_t key[HS_REG_KEY_MAX + 2];
	size_t klen = hs_meta_skey(key, s->name, s->nlen);

	s->state = S_LOOKUP;
	x->s = s;
	x->create = s->want_create == 1;
	x->attrs = s->cattrs;
	x->new_log = new_log_id();
	s->refs++;
	if (reg_change(sv, key, klen, fn_lookup, lookup_done, x) < 0) {
		free(x);
		s->refs--;
		stream_kill(sv, s, -HS_ENOSTREAM);
	}
}

static int fn_bump_epoch(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct hs_lrec r;
	int rc = hs_lrec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (r.epoch == UINT32_MAX)
		return -HS_EINTERNAL;
	r.epoch++;
	hs_lrec_enc(&r, out);
	return 0;
}

static void seal_send(struct serve *sv, struct sstream *s);

static void activate_done(void *arg, int status, const uint8_t *val, size_t len,
			  uint64_t version)
{
	struct sstream *s = arg;
	struct serve *sv = s->sv;
	struct hs_lrec r;

	s->refs--;
	if (status == -ECANCELED)
		return;
	if (status == 0 && hs_lrec_dec(val, len, &r) == 1) {
		s->epoch = r.epoch;
		s->next_esn = 1;
		s->trim = r.trim;
		sv->activations++;
		hs_debug("stream '%s' (log %llu): epoch %u", s->name,
			 (unsigned long long)s->rec.log, s->epoch);
		s->state = S_SEALING;
		seal_send(sv, s);
		return;
	}
	hs_warn("stream '%s': cannot start a new epoch: %s", s->name,
		hs_strerror(status ? status : -HS_EDATA));
	stream_kill(sv, s, status == -HS_ETIMEOUT ? -HS_ETIMEOUT : -HS_EUNAVAIL);
}

static void activate(struct serve *sv, struct sstream *s)
{
	uint8_t key[16];
	size_t klen = hs_meta_lkey(key, s->rec.log);

	s->state = S_ACTIVATING;
	s->refs++;
	if (reg_change(sv, key, klen, fn_bump_epoch, activate_done, s) < 0) {
		s->refs--;
		stream_kill(sv, s, -HS_EINTERNAL);
	}
}

static void release_mark(struct serve *sv, struct sstream *s)
{
	if (s->rel_dirty)
		return;
	s->rel_dirty = 1;
	grow((void **)&sv->reldirty, &sv->caprel, sv->nrel + 1, sizeof(*sv->reldirty));
	sv->reldirty[sv->nrel++] = s;
}

static void on_sealed(void *arg, int idx, const struct hs_frame *f)
{
	struct sstream *s = arg;
	struct serve *sv = s->sv;
	struct hs_sealed m;
	uint32_t e;
	uint64_t lng, max_lsn;

	s->refs--;
	if (!f) {
		/* The link went down: seal again once it is back. */
		s->state = S_SEALING;
		if (s->state == S_SEALING && !sv->stopping)
			seal_send(sv, s);
		return;
	}
	if (f->type != HS_MSG_SEALED || hs_msg_sealed_dec(f->body, f->body_len, &m) < 0 ||
	    m.status < 0) {
		hs_warn("stream '%s': seal failed", s->name);
		stream_kill(sv, s, -HS_EUNAVAIL);
		return;
	}
	if (m.seal >= s->epoch) {
		/* Someone already sealed our epoch: another sequencer won. */
		stream_kill(sv, s, -HS_ESEALED);
		return;
	}
	free(s->olde);
	s->olde = NULL;
	s->nolde = 0;
	if (m.nepochs)
		s->olde = hs_xmalloc(m.nepochs * sizeof(*s->olde));
	while (hs_sealed_next(&m, &e, &lng, &max_lsn) == 1) {
		if (e >= s->epoch)
			continue;
		s->olde[s->nolde].epoch = e;
		s->olde[s->nolde].max_lsn = max_lsn;
		s->nolde++;
	}
	if (m.trim > s->trim)
		s->trim = m.trim;
	/* Everything below our epoch is final (see the design comment). */
	s->released = HS_LSN(s->epoch, 0);
	release_mark(sv, s);
	if (s->nfollow) {
		win_reset(sv, s, s->released + 1);
		win_check(sv, s);
	}
	s->state = S_ACTIVE;
	stream_pump(sv, s);
}

/* SEAL (epoch - 1) on the data peer; with the link down, wait for it. */
static void seal_send(struct serve *sv, struct sstream *s)
{
	int dp = data_peer(sv);
	struct hs_buf *out = hs_peers_out(sv->peers, dp);
	struct hs_seal m = { .log = s->rec.log, .epoch = s->epoch - 1, .soft = 0, .lce = 0 };
	uint64_t id;

	if (!out)
		return; /* peer_up() re-sends the seals of S_SEALING streams */
	id = hs_peers_next_id(sv->peers);
	s->refs++;
	hs_peers_expect(sv->peers, dp, id, on_sealed, s, 0);
	hs_msg_seal_enc(out, id, &m);
}

/* ---- append path --------------------------------------------------------- */

static void creq_settle(struct serve *sv, struct creq *rq, uint32_t idx, int32_t status,
			uint64_t first, uint32_t count, uint32_t detail, const char *text);

static void cc_budget(struct cconn *cc)
{
	if (!cc || hs_conn_closing(cc->c))
		return;
	if (!cc->held && cc->inflight > CONN_BUDGET) {
		cc->held = 1;
		hs_conn_hold_read(cc->c, 1);
	} else if (cc->held && cc->inflight < CONN_BUDGET / 2) {
		cc->held = 0;
		hs_conn_hold_read(cc->c, 0);
	}
}

static void pent_fail(struct serve *sv, struct pent *pe, int status)
{
	creq_settle(sv, pe->rq, pe->idx, status, 0, 0, 0, "");
	free(pe->run);
	free(pe);
}

/* Which of the turn's STOREs carries s's runs: async and memory streams
 * need no fsync before STORED. */
static int stream_kind(const struct sstream *s)
{
	return s->rec.durability == HS_DUR_ASYNC || s->rec.durability == HS_DUR_MEMORY
		       ? SB_NOSYNC
		       : SB_SYNC;
}

/* Close the turn's STORE of kind k (if any) and queue it for sending. */
static void batch_close(struct serve *sv, int k)
{
	if (!sv->cur[k])
		return;
	hs_msg_wr_end(&sv->sw[k]);
	TAILQ_INSERT_TAIL(&sv->unacked, sv->cur[k], link);
	sv->unacked_n++;
	sv->cur[k] = NULL;
}

static struct sbatch *batch_cur(struct serve *sv, int k, size_t need)
{
	int dp = data_peer(sv);
	size_t max = hs_peers_max_frame(sv->peers, dp);

	if (sv->cur[k] && hs_msg_wr_size(&sv->sw[k]) + need > max && sv->cur[k]->n)
		batch_close(sv, k);
	if (!sv->cur[k]) {
		sv->cur[k] = hs_xcalloc(1, sizeof(*sv->cur[k]));
		sv->cur[k]->id = hs_peers_next_id(sv->peers);
		hs_msg_store_begin(&sv->sw[k], &sv->cur[k]->frame, sv->cur[k]->id);
		/* The header's flags; hs_msg_wr_end() computes the CRC. */
		if (k == SB_NOSYNC)
			hs_put16(sv->cur[k]->frame.data + sv->sw[k].start + 6, HS_STORE_NOSYNC);
	}
	return sv->cur[k];
}

/* Sequence one append entry of an active stream into the turn's STORE. */
static void append_send(struct serve *sv, struct sstream *s, struct pent *pe)
{
	struct hs_run r;
	struct hs_run_builder rb;
	struct sbatch *b;
	uint32_t node = hs_peers_node_id(sv->peers, data_peer(sv));
	int k = stream_kind(s);
	size_t at;

	if (hs_run_parse_nocrc(pe->run, pe->len, &r) < 0 || (uint64_t)s->next_esn + r.nrecords > UINT32_MAX) {
		/* Parsed on arrival; an epoch full of ESNs needs a new epoch. */
		pent_fail(sv, pe, -HS_EAGAIN);
		return;
	}
	b = batch_cur(sv, k, pe->len + 64);
	pe->s = s;
	pe->first_lsn = HS_LSN(s->epoch, s->next_esn);
	s->next_esn += r.nrecords;
	hs_msg_store_run_open(&sv->sw[k], s->rec.log, pe->first_lsn);
	pe->roff = b->frame.len;
	hs_run_begin(&rb, &b->frame, 0, s->released, 0, &node, 1);
	at = b->frame.len;
	hs_buf_append(&b->frame, r.records, (size_t)(r.end - r.records));
	if (pe->stamp) {
		uint64_t now = hs_wall_ms();
		uint8_t *p = b->frame.data + at, *end = p + (r.end - r.records);

		while (p < end) {
			if (!hs_get64(p))
				hs_put64(p, now);
			p += HS_RUN_REC_HDR + hs_get32(p + 8);
		}
	}
	rb.n = r.nrecords;
	hs_run_end(&rb);
	hs_msg_wr_run_close(&sv->sw[k]);
	pe->rlen = b->frame.len - pe->roff;
	grow((void **)&b->runs, &b->cap, b->n + 1, sizeof(*b->runs));
	b->runs[b->n++] = pe;
	free(pe->run);
	pe->run = NULL;
	TAILQ_INSERT_TAIL(&s->inflight, pe, flink);
	s->inflight_bytes += pe->len;
	s->appends++;
	s->records += r.nrecords;
	s->bytes += pe->len;
	sv->append_records += r.nrecords;
	sv->append_bytes += pe->len;
}

static void stream_pump(struct serve *sv, struct sstream *s)
{
	struct wait *w;

	while (s->state == S_ACTIVE && (w = TAILQ_FIRST(&s->wq))) {
		if (w->append && !TAILQ_EMPTY(&s->inflight) &&
		    s->inflight_bytes + w->bytes > STREAM_WINDOW)
			return; /* window full: STORED reopens it */
		TAILQ_REMOVE(&s->wq, w, link);
		w->fn(sv, s, w, 0);
	}
}

static void pent_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct pent *pe = (struct pent *)w;

	if (status < 0) {
		pent_fail(sv, pe, status);
		return;
	}
	append_send(sv, s, pe);
}

/* Release the stored prefix of s. */
static void stream_advance(struct serve *sv, struct sstream *s)
{
	struct pent *pe;

	while ((pe = TAILQ_FIRST(&s->inflight)) && pe->done) {
		TAILQ_REMOVE(&s->inflight, pe, flink);
		s->inflight_bytes -= pe->len;
		if (pe->first_lsn + pe->nrec - 1 > s->released) {
			if (s->nfollow)
				win_take(sv, s, pe);
			s->released = pe->first_lsn + pe->nrec - 1;
			release_mark(sv, s);
		}
		free(pe->mr);
		free(pe);
	}
	stream_pump(sv, s);
}

static void on_stored(void *arg, int idx, const struct hs_frame *f)
{
	struct sbatch *b = arg;
	struct serve *sv = g_sv;
	struct hs_stored_rd rd;
	int32_t st;
	uint32_t seal;

	if (!f) {
		b->sent = 0; /* peer_up() sends it again */
		return;
	}
	if (f->type != HS_MSG_STORED || hs_msg_stored_dec(f->body, f->body_len, &rd) < 0 ||
	    rd.nruns != b->n) {
		hs_warn("peer %s: bad reply to STORE (%s); reconnecting",
			hs_peers_addr(sv->peers, idx), hs_msg_name(f->type));
		b->sent = 0;
		/* Re-register so the resend after the reconnect matches. */
		return;
	}
	TAILQ_REMOVE(&sv->unacked, b, link);
	sv->unacked_n--;
	for (size_t i = 0; i < b->n; i++) {
		struct pent *pe = b->runs[i];
		struct sstream *s = pe->s;

		hs_stored_next(&rd, &st, &seal);
		pe->done = 1;
		if (st == 0) {
			if (s->nfollow && !pe->mr)
				pe->mr = mrun_new(s, pe->first_lsn, pe->nrec,
						  b->frame.data + pe->roff, pe->rlen);
			creq_settle(sv, pe->rq, pe->idx, 0, pe->first_lsn, pe->nrec, 0, "");
		} else {
			creq_settle(sv, pe->rq, pe->idx, st, 0, 0, 0,
				    st == -HS_ESEALED ? "" : hs_strerror(st));
			if (st == -HS_ESEALED && s->state == S_ACTIVE) {
				hs_warn("stream '%s': epoch %u sealed by another sequencer",
					s->name, s->epoch);
				s->state = S_DEAD;
				mem_mark(sv, s); /* its followers go back to the peer */
			}
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		struct sstream *s = b->runs[i]->s;

		if (s)
			stream_advance(sv, s);
	}
	for (size_t i = 0; i < b->n; i++) {
		struct sstream *s = b->runs[i]->s;

		b->runs[i] = NULL;
		(void)s;
	}
	hs_buf_free(&b->frame);
	free(b->runs);
	free(b);
}

/* End of turn: close the turn's STORE, send every unsent batch in order,
 * and one RELEASE with every stream released this turn. */
static void batches_flush(struct serve *sv)
{
	int dp = data_peer(sv);
	struct hs_buf *out;
	struct sbatch *b;

	batch_close(sv, SB_SYNC);
	batch_close(sv, SB_NOSYNC);
	out = hs_peers_out(sv->peers, dp);
	if (out) {
		TAILQ_FOREACH(b, &sv->unacked, link) {
			if (b->sent)
				continue;
			b->sent = 1;
			hs_peers_expect(sv->peers, dp, b->id, on_stored, b, 0);
			hs_buf_append(out, b->frame.data, b->frame.len);
			sv->stores_sent++;
		}
	}
	if (sv->nrel && out) {
		struct hs_msg_wr w;
		size_t n = 0;

		hs_msg_release_begin(&w, out, hs_peers_next_id(sv->peers));
		for (size_t i = 0; i < sv->nrel; i++) {
			struct sstream *s = sv->reldirty[i];

			s->rel_dirty = 0;
			if (s->state != S_ACTIVE && s->state != S_DEAD)
				continue;
			hs_msg_release_add(&w, s->rec.log, s->released);
			n++;
		}
		/* The RESULT reply needs no callback: it lands in ops->frame. */
		hs_msg_wr_end(&w);
		for (size_t i = 0; i < sv->nrel; i++)
			if (stream_idle(sv->reldirty[i]) && sv->reldirty[i]->state == S_DEAD)
				stream_free(sv, sv->reldirty[i]);
		sv->nrel = 0;
		(void)n;
	}
}

/* ---- client requests: settle and reply ---------------------------------- */

static void creq_free(struct creq *rq)
{
	if (rq->cc)
		LIST_REMOVE(rq, link);
	free(rq->res);
	free(rq);
}

static void creq_reply(struct serve *sv, struct creq *rq)
{
	struct hs_buf *out;
	struct hs_msg_wr w;

	if (!rq->cc || hs_conn_closing(rq->cc->c)) {
		creq_free(rq);
		return;
	}
	out = hs_conn_out(rq->cc->c);
	if (rq->type == HS_MSG_ACK) {
		/* ACK of a subscription not in memory: RESULT, not STATUSES. */
		hs_msg_result_encf(out, rq->id, rq->res[0].status, "%s",
				   rq->res[0].status ? "no such subscription" : "");
		creq_free(rq);
		return;
	}
	if (rq->type == HS_MSG_APPEND) {
		hs_msg_appended_begin(&w, out, rq->id);
		for (uint32_t i = 0; i < rq->n; i++) {
			struct hs_appended_ent e = {
				.status = rq->res[i].status,
				.first_lsn = rq->res[i].first_lsn,
				.count = rq->res[i].count,
				.detail = rq->res[i].detail,
				.text = rq->res[i].text,
				.text_len = (uint16_t)strlen(rq->res[i].text),
			};
			hs_msg_appended_add(&w, &e);
		}
	} else {
		hs_msg_statuses_begin(&w, out, rq->id);
		for (uint32_t i = 0; i < rq->n; i++)
			hs_msg_statuses_add(&w, rq->res[i].status, rq->res[i].first_lsn);
	}
	hs_msg_wr_end(&w);
	if (rq->type == HS_MSG_APPEND) {
		rq->cc->inflight -= rq->bytes;
		cc_budget(rq->cc);
	}
	creq_free(rq);
}

static void creq_settle(struct serve *sv, struct creq *rq, uint32_t idx, int32_t status,
			uint64_t first, uint32_t count, uint32_t detail, const char *text)
{
	rq->res[idx].status = status;
	rq->res[idx].first_lsn = first;
	rq->res[idx].count = count;
	rq->res[idx].detail = detail;
	rq->res[idx].text = text ? text : "";
	if (--rq->left == 0)
		creq_reply(sv, rq);
}

static struct creq *creq_new(struct serve *sv, struct cconn *cc, uint64_t id, uint16_t type,
			     uint32_t n)
{
	struct creq *rq = hs_xcalloc(1, sizeof(*rq));

	rq->sv = sv;
	rq->cc = cc;
	rq->id = id;
	rq->type = type;
	rq->n = rq->left = n;
	rq->res = hs_xcalloc(n ? n : 1, sizeof(*rq->res));
	LIST_INSERT_HEAD(&cc->reqs, rq, link);
	return rq;
}

static void on_append(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_append_ent e;
	struct creq *rq;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_APPEND, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed APPEND body");
		return;
	}
	sv->appends++;
	rq = creq_new(sv, cc, f->id, HS_MSG_APPEND, l.n);
	if (!l.n) {
		creq_reply(sv, rq);
		return;
	}
	/* Settling may complete the request: hold it until every entry ran. */
	rq->left++;
	for (; hs_append_next(&l, &e) == 1; i++) {
		struct hs_run r;
		struct hs_run_iter it;
		const uint8_t *p;
		uint64_t ts;
		uint32_t len, k = 0;
		struct pent *pe;
		int stamp = 0, big = -1;

		if (hs_run_parse(e.run, e.run_len, &r) < 0 || hs_append_run_check(&r) < 0) {
			creq_settle(sv, rq, i, -HS_EPROTO, 0, 0, 0, "malformed run");
			continue;
		}
		if (e.stream_len > HS_META_NAME_MAX) {
			creq_settle(sv, rq, i, -HS_ENOSTREAM, 0, 0, 0, "stream name too long");
			continue;
		}
		hs_run_iter_init(&it, &r);
		while (hs_run_next(&it, &ts, &p, &len)) {
			if (!ts)
				stamp = 1;
			if (len > HS_RECORD_MAX_DEFAULT && big < 0)
				big = (int)k;
			k++;
		}
		if (big >= 0) {
			creq_settle(sv, rq, i, -HS_ETOOBIG, 0, 0, (uint32_t)big,
				    "record over the 1 MiB limit");
			continue;
		}
		if (sv->stopping) {
			creq_settle(sv, rq, i, -HS_EUNAVAIL, 0, 0, 0, "server shutting down");
			continue;
		}
		pe = hs_xcalloc(1, sizeof(*pe));
		pe->w.append = 1;
		pe->w.bytes = e.run_len;
		pe->w.fn = pent_ready;
		pe->rq = rq;
		pe->idx = i;
		pe->create = !!(e.flags & HS_APPEND_CREATE);
		pe->run = hs_xmalloc(e.run_len);
		memcpy(pe->run, e.run, e.run_len);
		pe->len = e.run_len;
		pe->nrec = r.nrecords;
		pe->stamp = stamp;
		rq->bytes += e.run_len;
		stream_wait(sv, e.stream, e.stream_len, pe->create, NULL, &pe->w);
	}
	cc->inflight += rq->bytes;
	cc_budget(cc);
	if (--rq->left == 0)
		creq_reply(sv, rq);
}

/* ---- stream admin ------------------------------------------------------- */

struct adm {
	struct serve *sv;
	struct creq *rq;
	uint32_t idx;
	uint64_t log;             /* new or existing log id */
	struct hs_stream_attrs attrs;
	struct wait w;            /* trim, info */
	struct hs_pos pos;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
};

static int fn_create(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		     struct hs_buf *out)
{
	struct adm *a = arg;
	struct hs_srec r;
	int rc = hs_srec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 1 && !(r.flags & HS_SREC_DELETED)) {
		a->log = r.log;
		return -HS_EEXIST;
	}
	srec_from_attrs(a->sv, &a->attrs, a->log, &r);
	hs_srec_enc(&r, out);
	return 0;
}

static void create_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct adm *a = arg;

	if (status != -ECANCELED)
		creq_settle(a->sv, a->rq, a->idx, status, status == 0 || status == -HS_EEXIST ? a->log : 0,
			    0, 0, "");
	free(a);
}

static void on_create(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_create_ent e;
	struct creq *rq;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_STREAM_CREATE, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed STREAM_CREATE body");
		return;
	}
	rq = creq_new(sv, cc, f->id, HS_MSG_STREAM_CREATE, l.n);
	if (!l.n) {
		creq_reply(sv, rq);
		return;
	}
	rq->left++;
	for (; hs_create_next(&l, &e) == 1; i++) {
		struct adm *a;
		uint8_t key[HS_REG_KEY_MAX + 2];

		if (e.stream_len > HS_META_NAME_MAX) {
			creq_settle(sv, rq, i, -HS_EDATA, 0, 0, 0, "");
			continue;
		}
		if ((e.attrs.mask & HS_ATTR_REPLICATION) && e.attrs.replication != 1) {
			/* Only R = 1 this release (issue 4 adds more). */
			creq_settle(sv, rq, i, -HS_ECONFIG, 0, 0, 0, "");
			continue;
		}
		a = hs_xcalloc(1, sizeof(*a));
		a->sv = sv;
		a->rq = rq;
		a->idx = i;
		a->attrs = e.attrs;
		a->log = new_log_id();
		if (reg_change(sv, key, hs_meta_skey(key, e.stream, e.stream_len), fn_create,
			       create_done, a) < 0) {
			free(a);
			creq_settle(sv, rq, i, -HS_EDATA, 0, 0, 0, "");
			continue;
		}
		sv->creates++;
	}
	if (--rq->left == 0)
		creq_reply(sv, rq);
}

static int fn_delete(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		     struct hs_buf *out)
{
	struct adm *a = arg;
	struct hs_srec r;
	int rc = hs_srec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 0 || (r.flags & HS_SREC_DELETED))
		return -HS_ENOSTREAM;
	a->log = r.log;
	r.flags |= HS_SREC_DELETED;
	hs_srec_enc(&r, out);
	return 0;
}

static void trim_peer(struct serve *sv, uint64_t log, uint64_t trim)
{
	struct hs_buf *out = hs_peers_out(sv->peers, data_peer(sv));
	struct hs_trim m = { .log = log, .trim = trim };

	/* With the link down the trim is lost: the register keeps the
	 * deleted flag and the trim point, so nothing reads it again. */
	if (out)
		hs_msg_trim_enc(out, hs_peers_next_id(sv->peers), &m);
}

static void delete_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct adm *a = arg;
	struct serve *sv = a->sv;

	if (status == -ECANCELED) {
		free(a);
		return;
	}
	if (status == 0) {
		struct sstream *s = stream_find(sv, a->name, a->nlen);

		trim_peer(sv, a->log, UINT64_MAX - 1);
		if (s && s->state != S_LOOKUP)
			stream_kill(sv, s, -HS_ENOSTREAM);
		sv->deletes++;
	}
	creq_settle(sv, a->rq, a->idx, status, 0, 0, 0, "");
	free(a);
}

static void on_delete(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_name_ent e;
	struct creq *rq;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_STREAM_DELETE, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed STREAM_DELETE body");
		return;
	}
	rq = creq_new(sv, cc, f->id, HS_MSG_STREAM_DELETE, l.n);
	if (!l.n) {
		creq_reply(sv, rq);
		return;
	}
	rq->left++;
	for (; hs_name_next(&l, &e) == 1; i++) {
		struct adm *a;
		uint8_t key[HS_REG_KEY_MAX + 2];

		if (e.name_len > HS_META_NAME_MAX) {
			creq_settle(sv, rq, i, -HS_ENOSTREAM, 0, 0, 0, "");
			continue;
		}
		a = hs_xcalloc(1, sizeof(*a));
		a->sv = sv;
		a->rq = rq;
		a->idx = i;
		memcpy(a->name, e.name, e.name_len);
		a->nlen = e.name_len;
		if (reg_change(sv, key, hs_meta_skey(key, e.name, e.name_len), fn_delete,
			       delete_done, a) < 0) {
			free(a);
			creq_settle(sv, rq, i, -HS_EDATA, 0, 0, 0, "");
		}
	}
	if (--rq->left == 0)
		creq_reply(sv, rq);
}

/* ---- positions ----------------------------------------------------------- */

/* The dense LSN ranges of s that hold retained records, oldest first:
 * earlier epochs [e n1, max_lsn], then the current [E n1, tail - 1]. */
static size_t stream_ranges(const struct sstream *s, uint64_t (*rg)[2], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i <= s->nolde && n < max; i++) {
		uint64_t lo, hi;

		if (i < s->nolde) {
			lo = HS_LSN(s->olde[i].epoch, 1);
			hi = s->olde[i].max_lsn;
		} else {
			lo = HS_LSN(s->epoch, 1);
			hi = HS_LSN(s->epoch, s->next_esn) - 1;
		}
		if (lo <= s->trim)
			lo = s->trim + 1;
		if (lo > hi)
			continue;
		rg[n][0] = lo;
		rg[n][1] = hi;
		n++;
	}
	return n;
}

static uint64_t stream_tail(const struct sstream *s)
{
	return HS_LSN(s->epoch, s->next_esn);
}

static void stream_ranges_alloc(const struct sstream *s, uint64_t (**rg)[2], size_t *n)
{
	*rg = hs_xmalloc((s->nolde + 1) * sizeof(**rg));
	*n = stream_ranges(s, *rg, s->nolde + 1);
}

static uint64_t stream_head(const struct sstream *s)
{
	uint64_t(*rg)[2], h;
	size_t n;

	stream_ranges_alloc(s, &rg, &n);
	h = n ? rg[0][0] : stream_tail(s);
	free(rg);
	return h;
}

static uint64_t stream_count(const struct sstream *s)
{
	uint64_t(*rg)[2], c = 0;
	size_t n;

	stream_ranges_alloc(s, &rg, &n);
	for (size_t i = 0; i < n; i++)
		c += rg[i][1] - rg[i][0] + 1;
	free(rg);
	return c;
}

/* Resolve a position that needs no peer (not TIME) to an LSN. */
static uint64_t resolve(const struct sstream *s, const struct hs_pos *p)
{
	uint64_t(*rg)[2], tail = stream_tail(s), v;
	size_t n;

	switch (p->kind) {
	case HS_POS_LSN:
		return p->lsn;
	case HS_POS_HEAD: {
		uint64_t k = (uint64_t)p->offset;

		stream_ranges_alloc(s, &rg, &n);
		v = tail;
		for (size_t i = 0; i < n; i++) {
			uint64_t len = rg[i][1] - rg[i][0] + 1;

			if (k < len) {
				v = rg[i][0] + k;
				break;
			}
			k -= len;
		}
		free(rg);
		return v;
	}
	case HS_POS_TAIL: {
		uint64_t k = (uint64_t)(-p->offset);

		if (!k)
			return tail;
		stream_ranges_alloc(s, &rg, &n);
		v = n ? rg[0][0] : tail;
		for (size_t i = n; i-- > 0;) {
			uint64_t len = rg[i][1] - rg[i][0] + 1;

			if (k <= len) {
				v = rg[i][1] + 1 - k;
				break;
			}
			k -= len;
		}
		free(rg);
		return v;
	}
	default:
		return 0;
	}
}

/* ---- stream info and trim ------------------------------------------------ */

static void fill_info(const struct sstream *s, struct hs_stream_info *in)
{
	memset(in, 0, sizeof(*in));
	in->log = s->rec.log;
	in->attrs.mask = HS_ATTR_ALL;
	in->attrs.replication = s->rec.replication ? s->rec.replication : 1;
	in->attrs.durability = s->rec.durability ? s->rec.durability : HS_DUR_SYNC;
	in->attrs.retention_ms = s->rec.retention_ms;
	in->attrs.offload_after_ms = s->rec.offload_after_ms;
	in->head = stream_head(s);
	in->tail = stream_tail(s);
	in->trim = s->trim;
	in->tier1_trim = s->trim;
	in->offload = 0;
	in->records = stream_count(s);
	in->bytes = UINT64_MAX;
	in->created_ms = s->rec.created_ms;
}

/* STREAM_INFO: one STREAMS reply for the whole request, built when every
 * entry is settled. */
struct inforeq {
	struct serve *sv;
	struct cconn *cc;
	uint64_t id;
	uint32_t n, left;
	struct infoent {
		struct adm a;
		int32_t status;
		struct hs_stream_info info;
	} *e;
	LIST_ENTRY(inforeq) link;
};

static void inforeq_done(struct serve *sv, struct inforeq *q)
{
	if (q->cc)
		LIST_REMOVE(q, link);
	if (q->cc && !hs_conn_closing(q->cc->c)) {
		struct hs_msg_wr w;

		hs_msg_streams_begin(&w, hs_conn_out(q->cc->c), q->id, 0);
		for (uint32_t i = 0; i < q->n; i++)
			hs_msg_streams_add(&w, q->e[i].status, q->e[i].a.name, q->e[i].a.nlen,
					   q->e[i].status ? NULL : &q->e[i].info);
		hs_msg_wr_end(&w);
	}
	free(q->e);
	free(q);
}

static void info_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct adm *a = (struct adm *)((char *)w - offsetof(struct adm, w));
	struct infoent *ie = (struct infoent *)a;
	struct inforeq *q = (struct inforeq *)a->rq;

	ie->status = status;
	if (!status)
		fill_info(s, &ie->info);
	if (--q->left == 0)
		inforeq_done(sv, q);
}

static void on_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_name_ent e;
	struct inforeq *q;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_STREAM_INFO, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed STREAM_INFO body");
		return;
	}
	q = hs_xcalloc(1, sizeof(*q));
	q->sv = sv;
	q->cc = cc; /* on_closed sets it to NULL */
	LIST_INSERT_HEAD(&cc->infos, q, link);
	q->id = f->id;
	q->n = l.n;
	q->left = l.n + 1;
	q->e = hs_xcalloc(l.n ? l.n : 1, sizeof(*q->e));
	for (; hs_name_next(&l, &e) == 1; i++) {
		struct adm *a = &q->e[i].a;

		a->sv = sv;
		a->rq = (struct creq *)q;
		a->idx = i;
		memcpy(a->name, e.name, e.name_len);
		a->nlen = e.name_len;
		a->w.fn = info_ready;
		if (e.name_len > HS_META_NAME_MAX) {
			q->e[i].status = -HS_ENOSTREAM;
			q->left--;
			continue;
		}
		stream_wait(sv, e.name, e.name_len, 0, NULL, &a->w);
	}
	if (--q->left == 0)
		inforeq_done(sv, q);
}

static int fn_trim(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		   struct hs_buf *out)
{
	struct adm *a = arg;
	struct hs_lrec r;
	int rc = hs_lrec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (r.trim >= a->log)
		return HS_REG_SAME;
	r.trim = a->log;
	hs_lrec_enc(&r, out);
	return 0;
}

static void trim_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct adm *a = arg;
	struct hs_lrec r;

	if (status == -ECANCELED) {
		free(a);
		return;
	}
	if (status == 0 && hs_lrec_dec(val, len, &r) == 1) {
		struct sstream *s = stream_find(a->sv, a->name, a->nlen);

		if (s && r.trim > s->trim) {
			s->trim = r.trim;
			mem_mark(a->sv, s); /* trimmed followers go to the peer */
		}
		trim_peer(a->sv, a->attrs.retention_ms /* the log id */, r.trim);
		creq_settle(a->sv, a->rq, a->idx, 0, r.trim, 0, 0, "");
	} else {
		creq_settle(a->sv, a->rq, a->idx, status ? status : -HS_EDATA, 0, 0, 0, "");
	}
	free(a);
}

static void trim_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct adm *a = (struct adm *)((char *)w - offsetof(struct adm, w));
	uint8_t key[16];
	uint64_t before, t;

	if (status < 0 || a->pos.kind == HS_POS_TIME) {
		creq_settle(sv, a->rq, a->idx, status < 0 ? status : -HS_EUSAGE, 0, 0, 0, "");
		free(a);
		return;
	}
	before = resolve(s, &a->pos);
	t = before ? before - 1 : 0;
	/* Never past what was written: the tail is the limit. */
	if (t >= stream_tail(s))
		t = stream_tail(s) - 1;
	if (t <= s->trim) {
		creq_settle(sv, a->rq, a->idx, 0, s->trim, 0, 0, "");
		free(a);
		return;
	}
	a->log = t;                        /* the new trim point, for fn_trim */
	a->attrs.retention_ms = s->rec.log; /* the log id, for trim_done */
	if (reg_change(sv, key, hs_meta_lkey(key, s->rec.log), fn_trim, trim_done, a) < 0) {
		creq_settle(sv, a->rq, a->idx, -HS_EINTERNAL, 0, 0, 0, "");
		free(a);
	}
}

static void on_trim(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_trim_ent e;
	struct creq *rq;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_STREAM_TRIM, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed STREAM_TRIM body");
		return;
	}
	rq = creq_new(sv, cc, f->id, HS_MSG_STREAM_TRIM, l.n);
	if (!l.n) {
		creq_reply(sv, rq);
		return;
	}
	rq->left++;
	for (; hs_trim_next(&l, &e) == 1; i++) {
		struct adm *a;

		if (e.stream_len > HS_META_NAME_MAX) {
			creq_settle(sv, rq, i, -HS_ENOSTREAM, 0, 0, 0, "");
			continue;
		}
		a = hs_xcalloc(1, sizeof(*a));
		a->sv = sv;
		a->rq = rq;
		a->idx = i;
		a->pos = e.before;
		memcpy(a->name, e.stream, e.stream_len);
		a->nlen = e.stream_len;
		a->w.fn = trim_ready;
		stream_wait(sv, e.stream, e.stream_len, 0, NULL, &a->w);
	}
	if (--rq->left == 0)
		creq_reply(sv, rq);
}

/* ---- reads --------------------------------------------------------------- */

/* Subscription hooks of the read path (see "subscriptions" below). */
static void sub_delivered(struct serve *sv, struct cread *r, uint64_t lo, uint64_t n,
			  uint64_t bytes);
static void sub_skipped(struct serve *sv, struct cread *r, uint64_t lo, uint64_t hi);
static void sub_read_ended(struct serve *sv, struct cread *r, int status);
static int64_t sub_room(const struct cread *r);
/* Following from memory (below the reads). */
static void mem_push(struct serve *sv, struct cread *r);
static int mem_can_take(const struct cread *r);
static void mem_take(struct serve *sv, struct cread *r);
static void mem_flush(struct serve *sv);
static void win_attach(struct serve *sv, struct cread *r);
static void win_detach(struct serve *sv, struct cread *r);

/* A subscription in memory: while a session runs, a lookup or a
 * checkpoint write is in flight. */
struct ssub {
	struct serve *sv;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
	struct hs_urec rec;       /* register as last read; .checkpoint: persisted */
	struct cread *sess;       /* the session's forward read, or NULL */
	struct cread *redo;       /* its redelivery read in flight, or NULL */
	struct hs_subwin win;     /* valid while live */
	int live;
	uint64_t want;            /* checkpoint still to persist */
	uint64_t writing;         /* checkpoint being written, 0 none */
	uint64_t last_write_ms, acks_since, stuck_since;
	uint64_t timer;
	int refs;                 /* lookups in flight */
	LIST_ENTRY(ssub) link;
};

static void read_end(struct serve *sv, struct cread *r, int status)
{
	struct hs_read_end m = { .read_id = r->read_id, .status = status, .next_lsn = r->next };

	if (r->state == R_DONE)
		return;
	if (r->state == R_RUN && !r->mem) {
		struct hs_buf *out = hs_peers_out(sv->peers, data_peer(sv));

		hs_peers_forget(sv->peers, data_peer(sv), r->peer_req);
		if (out) {
			struct hs_stop st = { .stream = r->sid };

			/* Its RESULT reply lands in ops->frame and is ignored. */
			hs_msg_stop_enc(out, hs_peers_next_id(sv->peers), &st);
		}
	}
	r->state = R_DONE;
	if (r->cc && !r->child) {
		if (!hs_conn_closing(r->cc->c))
			hs_msg_read_end_enc(hs_conn_out(r->cc->c), r->req, &m);
		LIST_REMOVE(r, link);
	}
	if (r->s) {
		win_detach(sv, r);
		r->s->refs--;
		r->s = NULL;
	}
	if (r->sub)
		sub_read_ended(sv, r, status);
	if (!r->locating && !r->queued && !r->loading)
		free(r);
}

static void read_grant(struct serve *sv, struct cread *r)
{
	int64_t want_r, want_b, add_r, add_b;
	struct hs_buf *out;

	if (r->mem) {
		mem_push(sv, r);
		return;
	}
	if (r->state != R_RUN || !r->cc || hs_conn_closing(r->cc->c) ||
	    hs_conn_out_pending(r->cc->c) >= HS_CONN_HIGH_WATER)
		return;
	want_r = r->unl_rec || r->cl_rec > READ_CAP_REC ? READ_CAP_REC : r->cl_rec;
	want_b = r->unl_bytes || r->cl_bytes > READ_CAP_BYTES ? READ_CAP_BYTES : r->cl_bytes;
	if (r->limit && (int64_t)(r->limit - r->sent) < want_r)
		want_r = (int64_t)(r->limit - r->sent);
	if (r->sub && sub_room(r) < want_r)
		want_r = sub_room(r);
	add_r = want_r - r->out_rec;
	add_b = want_b - (r->out_bytes > 0 ? r->out_bytes : 0);
	if (add_r < 0)
		add_r = 0;
	if (add_b < 0)
		add_b = 0;
	/* Grant in chunks, not record by record - unless the peer is out of
	 * credit, when any credit the client gave must be passed on. */
	if (r->out_rec > 0 && r->out_bytes > 0 && add_r < want_r / 4 && add_b < want_b / 4)
		return;
	if (!add_r && !add_b)
		return;
	out = hs_peers_out(sv->peers, data_peer(sv));
	if (!out)
		return;
	{
		struct hs_window m = { .stream = r->sid, .add_records = (uint32_t)add_r,
				       .add_bytes = (uint32_t)add_b };

		hs_msg_window_enc(out, r->peer_req, &m);
	}
	r->out_rec += add_r;
	if (r->out_bytes < 0)
		r->out_bytes = 0;
	r->out_bytes += add_b;
}

static void read_on_peer(void *arg, int idx, const struct hs_frame *f);

static void read_start_peer(struct serve *sv, struct cread *r)
{
	struct hs_buf *out = hs_peers_out(sv->peers, data_peer(sv));
	struct hs_start m = { 0 };

	if (!out) {
		read_end(sv, r, -HS_EUNAVAIL);
		return;
	}
	if (r->until && r->from >= r->until) {
		read_end(sv, r, 0);
		return;
	}
	r->sid = ++sv->next_sid;
	r->peer_req = hs_peers_next_id(sv->peers);
	r->state = R_RUN;
	r->next = r->from;
	m.stream = r->sid;
	m.log = r->s->rec.log;
	m.from = r->from;
	m.until = r->until ? r->until - 1 : UINT64_MAX;
	r->out_rec = r->unl_rec || r->cl_rec > READ_CAP_REC ? READ_CAP_REC : r->cl_rec;
	r->out_bytes = r->unl_bytes || r->cl_bytes > READ_CAP_BYTES ? READ_CAP_BYTES : r->cl_bytes;
	if (r->limit && r->limit < (uint64_t)r->out_rec)
		r->out_rec = (int64_t)r->limit;
	if (r->sub && sub_room(r) < r->out_rec)
		r->out_rec = sub_room(r) > 0 ? sub_room(r) : 0;
	m.win_records = (uint32_t)r->out_rec;
	m.win_bytes = (uint32_t)r->out_bytes;
	if (!m.win_records)
		m.win_records = 1; /* 0 would mean unlimited to the peer */
	if (!m.win_bytes)
		m.win_bytes = 1;
	hs_peers_expect(sv->peers, data_peer(sv), r->peer_req, read_on_peer, r, 1);
	hs_msg_start_enc(out, r->peer_req, &m);
}

static void read_gap(struct cread *r, uint64_t lo, uint64_t hi, uint8_t kind)
{
	struct hs_msg_wr w;

	if (!r->cc || hs_conn_closing(r->cc->c))
		return;
	hs_msg_read_gap_begin(&w, hs_conn_out(r->cc->c), r->req, r->read_id);
	hs_msg_read_gap_add(&w, lo, hi, kind);
	hs_msg_wr_end(&w);
}

static void read_on_peer(void *arg, int idx, const struct hs_frame *f)
{
	struct cread *r = arg;
	struct serve *sv = r->sv;

	if (!f) {
		/* The multi registration is gone with the link. */
		r->state = R_WAIT;
		read_end(sv, r, -HS_EUNAVAIL);
		return;
	}
	switch (f->type) {
	case HS_MSG_RECORDS: {
		struct hs_records m;
		struct hs_msg_wr w;
		struct hs_buf *out;
		uint64_t first;
		const uint8_t *run;
		size_t len;
		int open = 0, finished = 0;

		if (hs_msg_records_dec(f->body, f->body_len, &m) < 0)
			break;
		out = r->cc && !hs_conn_closing(r->cc->c) ? hs_conn_out(r->cc->c) : NULL;
		while (hs_records_next(&m, &first, &run, &len) == 1) {
			struct hs_run rr;
			uint64_t lo, hi, n;
			size_t before;

			if (hs_run_parse_nocrc(run, len, &rr) < 0)
				continue;
			/* The peer charges the entry header (u64 lsn, u32 len) too. */
			r->out_rec -= rr.nrecords;
			r->out_bytes -= (int64_t)len + 12;
			if (finished || (rr.flags & (HS_RUN_HOLE | HS_RUN_BRIDGE))) {
				if (!finished && (r->flags & HS_CREAD_GAPS) && out) {
					/* Reported as gaps in a separate frame. */
					if (open)
						hs_msg_wr_end(&w);
					open = 0;
					read_gap(r, first, first + rr.nrecords - 1,
						 rr.flags & HS_RUN_HOLE ? 1 : 2);
				}
				if (!finished)
					r->next = first + rr.nrecords;
				if (!finished && r->sub)
					sub_skipped(sv, r, first, first + rr.nrecords - 1);
				continue;
			}
			lo = first < r->from ? r->from : first;
			hi = first + rr.nrecords - 1;
			if (r->until && hi >= r->until)
				hi = r->until - 1;
			if (lo > hi)
				continue;
			n = hi - lo + 1;
			if (r->limit && n > r->limit - r->sent)
				n = r->limit - r->sent;
			if (!out)
				continue;
			if (!open) {
				hs_msg_deliver_begin(&w, out, r->req, r->read_id);
				open = 1;
			}
			before = out->len;
			if (lo == first && n == rr.nrecords) {
				hs_msg_deliver_run(&w, first, run, len);
			} else {
				hs_msg_deliver_run_open(&w, lo);
				hs_run_slice(&rr, (uint32_t)(lo - first), (uint32_t)n, out);
				hs_msg_wr_run_close(&w);
			}
			r->sent += n;
			r->cl_rec -= (int64_t)n;
			/* The client's byte credit counts payload bytes only. */
			r->cl_bytes -= (int64_t)(out->len - before - 12 - HS_RUN_HDR - 4 -
						 4 * (size_t)rr.ncopyset - HS_RUN_REC_HDR * n);
			sv->records_delivered += n;
			r->next = lo + n;
			if (r->sub)
				sub_delivered(sv, r, lo, n,
					      out->len - before - 12 - HS_RUN_HDR - 4 -
					      4 * (size_t)rr.ncopyset - HS_RUN_REC_HDR * n);
			if (r->limit && r->sent >= r->limit)
				finished = 1;
		}
		if (open)
			hs_msg_wr_end(&w);
		if (finished) {
			read_end(sv, r, 0);
			return;
		}
		if (mem_can_take(r)) {
			mem_take(sv, r);
			return;
		}
		read_grant(sv, r);
		return;
	}
	case HS_MSG_GAP: {
		struct hs_gap g;

		if (hs_msg_gap_dec(f->body, f->body_len, &g) < 0)
			break;
		if (g.reason == HS_GAP_TRIM)
			read_gap(r, g.lo < r->from ? r->from : g.lo, g.hi, 3);
		else if (g.reason == HS_GAP_CHECKSUM)
			read_gap(r, g.lo, g.hi, 4);
		r->next = g.hi + 1;
		if (r->sub)
			sub_skipped(sv, r, g.lo, g.hi);
		/* NORECORDS: the peer caught up with what it knows released. */
		if (mem_can_take(r))
			mem_take(sv, r);
		return;
	}
	case HS_MSG_END: {
		struct hs_end e;

		if (hs_msg_end_dec(f->body, f->body_len, &e) < 0)
			break;
		hs_peers_forget(sv->peers, data_peer(sv), r->peer_req);
		r->state = R_WAIT; /* no STOP needed */
		if (!e.status && r->until)
			r->next = r->until;
		read_end(sv, r, e.status);
		return;
	}
	case HS_MSG_RESULT: {
		struct hs_result res;

		if (hs_msg_result_dec(f->body, f->body_len, &res) == 0 && res.status < 0) {
			hs_peers_forget(sv->peers, data_peer(sv), r->peer_req);
			r->state = R_WAIT;
			read_end(sv, r, res.status);
		}
		return;
	}
	default:
		break;
	}
	hs_warn("read of '%s': unexpected %s from the peer", r->s ? r->s->name : "?",
		hs_msg_name(f->type));
	read_end(sv, r, -HS_EPROTO);
}

static void on_located(void *arg, int idx, const struct hs_frame *f);

static int read_locate(struct serve *sv, struct cread *r);

static void read_resolved(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;

	if (r->pfrom.kind != HS_POS_TIME)
		r->from = resolve(s, &r->pfrom);
	if (r->puntil.kind == HS_POS_NONE)
		r->until = (r->flags & HS_CREAD_FOLLOW) ? 0 : stream_tail(s);
	else if (r->puntil.kind != HS_POS_TIME)
		r->until = resolve(s, &r->puntil);
	if (r->from < HS_LSN(1, 1))
		r->from = HS_LSN(1, 1);
	if ((r->flags & HS_CREAD_FOLLOW) && !r->child) {
		win_attach(sv, r);
		/* From the tail (or anywhere in the window): straight from memory. */
		if (!(r->until && r->from >= r->until) && s->state == S_ACTIVE &&
		    r->from >= s->win_lo && r->from > s->trim) {
			r->state = R_RUN;
			r->next = r->from;
			r->mem = 1;
			mem_push(sv, r);
			return;
		}
	}
	read_start_peer(sv, r);
}

static void read_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct cread *r = (struct cread *)((char *)w - offsetof(struct cread, w));

	r->queued = 0;
	if (r->state == R_DONE) {
		/* Cancelled, or its connection closed, while it waited. */
		free(r);
		return;
	}
	/* Hold the stream while the read lives (read_end lets it go). */
	r->s = s;
	s->refs++;
	if (status == 0 && r->sub && r->sub->rec.log != s->rec.log)
		status = -HS_ENOSTREAM; /* the subscription's stream was deleted */
	if (status < 0) {
		read_end(sv, r, status);
		return;
	}
	if (r->pfrom.kind == HS_POS_TIME || r->puntil.kind == HS_POS_TIME) {
		if (read_locate(sv, r) < 0)
			read_end(sv, r, -HS_EUNAVAIL);
		return;
	}
	read_resolved(sv, r);
}

/* @time: ask the data peer for the first LSN whose record is at or after
 * the time (LOCATE, proto.h); both ends may need it. */
static int read_locate(struct serve *sv, struct cread *r)
{
	struct hs_buf *out = hs_peers_out(sv->peers, data_peer(sv));
	struct hs_locate m = { 0 };
	uint64_t id;

	if (!out)
		return -HS_EUNAVAIL;
	m.log = r->s->rec.log;
	m.from = stream_head(r->s);
	m.until = stream_tail(r->s);
	r->state = R_LOCATE;
	for (int i = 0; i < 2; i++) {
		const struct hs_pos *p = i ? &r->puntil : &r->pfrom;

		if (p->kind != HS_POS_TIME)
			continue;
		m.time_ms = p->time_ms < 0 ? 0 : (uint64_t)p->time_ms;
		id = hs_peers_next_id(sv->peers);
		hs_peers_expect(sv->peers, data_peer(sv), id, on_located, r, 0);
		hs_msg_locate_enc(out, id, &m);
		r->locating |= 1 << i;
	}
	return 0;
}

static void on_located(void *arg, int idx, const struct hs_frame *f)
{
	struct cread *r = arg;
	struct serve *sv = r->sv;
	struct hs_located m;
	int which = r->locating & 1 ? 0 : 1;

	r->locating &= ~(1 << which);
	if (r->state == R_DONE) {
		if (!r->locating)
			free(r);
		return;
	}
	if (!f || f->type != HS_MSG_LOCATED || hs_msg_located_dec(f->body, f->body_len, &m) < 0 ||
	    m.status < 0) {
		if (!r->locating)
			read_end(sv, r, f && f->type == HS_MSG_LOCATED ? -HS_EIO : -HS_EUNAVAIL);
		else
			r->state = R_DONE; /* ended when the other answer comes */
		return;
	}
	/* 0: no record at or after the time: the tail. */
	if (which == 0)
		r->from = m.lsn ? m.lsn : stream_tail(r->s);
	else
		r->until = m.lsn ? m.lsn : stream_tail(r->s);
	if (r->locating)
		return;
	r->state = R_WAIT;
	if (r->pfrom.kind == HS_POS_TIME)
		r->pfrom.kind = HS_POS_LSN, r->pfrom.lsn = r->from;
	if (r->puntil.kind == HS_POS_TIME)
		r->puntil.kind = HS_POS_LSN, r->puntil.lsn = r->until;
	read_resolved(sv, r);
}

static void on_read(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_cread m;
	struct cread *r;

	if (hs_msg_read_dec(f->body, f->body_len, &m) < 0) {
		proto_close(cc, "malformed READ body");
		return;
	}
	sv->reads++;
	r = hs_xcalloc(1, sizeof(*r));
	r->sv = sv;
	r->cc = cc;
	r->req = f->id;
	r->read_id = m.read_id;
	r->flags = m.flags;
	r->limit = m.limit;
	r->pfrom = m.from;
	r->puntil = m.until;
	r->cl_rec = m.win_records;
	r->cl_bytes = m.win_bytes;
	r->unl_rec = !m.win_records;
	r->unl_bytes = !m.win_bytes;
	r->w.fn = read_ready;
	LIST_INSERT_HEAD(&cc->reads, r, link);
	if (m.stream_len > HS_META_NAME_MAX || sv->stopping) {
		read_end(sv, r, sv->stopping ? -HS_EUNAVAIL : -HS_ENOSTREAM);
		return;
	}
	r->queued = 1;
	stream_wait(sv, m.stream, m.stream_len, 0, NULL, &r->w);
}

static struct cread *read_find(struct cconn *cc, uint32_t id)
{
	struct cread *r;

	LIST_FOREACH(r, &cc->reads, link)
		if (r->read_id == id)
			return r;
	return NULL;
}

static void on_read_window(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_read_window m;
	struct cread *r;

	if (hs_msg_read_window_dec(f->body, f->body_len, &m) < 0) {
		proto_close(cc, "malformed READ_WINDOW body");
		return;
	}
	r = read_find(cc, m.read_id);
	if (!r)
		return;
	r->cl_rec += m.add_records;
	r->cl_bytes += m.add_bytes;
	read_grant(sv, r);
}

static void on_read_cancel(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_read_cancel m;
	struct cread *r;

	if (hs_msg_read_cancel_dec(f->body, f->body_len, &m) < 0) {
		proto_close(cc, "malformed READ_CANCEL body");
		return;
	}
	r = read_find(cc, m.read_id);
	/* A read still queued on its stream is freed when its turn comes. */
	if (r && r->state != R_DONE)
		read_end(sv, r, -ECANCELED);
}

/* ---- following from memory (design comment: FOLLOWING FROM MEMORY) ------- */

static struct mrun *mrun_new(struct sstream *s, uint64_t first, uint32_t nrec,
			     const uint8_t *run, size_t len)
{
	struct mrun *m = hs_xmalloc(sizeof(*m) + len);

	m->s = s;
	m->first = first;
	m->nrec = nrec;
	m->len = len;
	memcpy(m->bytes, run, len);
	return m;
}

static size_t mrun_cost(const struct mrun *m)
{
	return sizeof(*m) + m->len;
}

/* Push to s's memory followers at the end of the turn (mem_flush). */
static void mem_mark(struct serve *sv, struct sstream *s)
{
	if (s->mem_dirty || !s->nfollow)
		return;
	s->mem_dirty = 1;
	grow((void **)&sv->memdirty, &sv->capmem, sv->nmem + 1, sizeof(*sv->memdirty));
	sv->memdirty[sv->nmem++] = s;
}

/* r leaves memory: a peer read stream from r->next takes over. */
static void mem_to_peer(struct serve *sv, struct cread *r)
{
	r->mem = 0;
	r->mcur = NULL;
	r->from = r->next;
	sv->follow_peer_fallbacks++;
	read_start_peer(sv, r);
}

/* Memory followers of s whose next LSN fell below the window (evicted,
 * or a hole reset it) go back to the peer. */
static void win_check(struct serve *sv, struct sstream *s)
{
	struct cread *r, *nx;

	for (r = LIST_FIRST(&s->followers); r; r = nx) {
		nx = LIST_NEXT(r, flink);
		if (r->mem && r->next < s->win_lo)
			mem_to_peer(sv, r);
	}
}

static void win_drop_head(struct serve *sv, struct sstream *s)
{
	struct mrun *m = TAILQ_FIRST(&s->win);

	TAILQ_REMOVE(&s->win, m, slink);
	TAILQ_REMOVE(&sv->win, m, glink);
	s->win_bytes -= mrun_cost(m);
	sv->win_bytes -= mrun_cost(m);
	s->win_lo = m->first + m->nrec;
	free(m);
}

/* Empty s's window; it holds LSNs from lo on.  The caller runs
 * win_check() when s may have memory followers. */
static void win_reset(struct serve *sv, struct sstream *s, uint64_t lo)
{
	while (!TAILQ_EMPTY(&s->win))
		win_drop_head(sv, s);
	s->win_lo = lo;
}

/* Keep s's window within FOLLOW_WIN_STREAM (but always its newest run)
 * and all windows within FOLLOW_WIN_TOTAL, oldest release first. */
static void win_evict(struct serve *sv, struct sstream *s)
{
	uint64_t n = 0;

	while (s->win_bytes > FOLLOW_WIN_STREAM &&
	       TAILQ_FIRST(&s->win) != TAILQ_LAST(&s->win, mrunq)) {
		win_drop_head(sv, s);
		n++;
	}
	if (n) {
		sv->follow_win_evicted += n;
		win_check(sv, s);
	}
	while (sv->win_bytes > FOLLOW_WIN_TOTAL) {
		/* The globally oldest run is the oldest of its stream. */
		struct sstream *x = TAILQ_FIRST(&sv->win)->s;

		while (sv->win_bytes > FOLLOW_WIN_TOTAL && !TAILQ_EMPTY(&x->win) &&
		       TAILQ_FIRST(&sv->win) == TAILQ_FIRST(&x->win)) {
			win_drop_head(sv, x);
			sv->follow_win_evicted++;
		}
		win_check(sv, x);
	}
}

/* pe is being released (s->released is still the LSN before it): its run
 * joins the window, or - without a copy (its STORE failed, or it was
 * stored before the first follower came) - the window restarts after it. */
static void win_take(struct serve *sv, struct sstream *s, struct pent *pe)
{
	struct mrun *m = pe->mr;

	pe->mr = NULL;
	if (!m || pe->first_lsn != s->released + 1 || s->win_lo > pe->first_lsn) {
		free(m);
		sv->follow_win_resets++;
		win_reset(sv, s, pe->first_lsn + pe->nrec);
		win_check(sv, s);
		return;
	}
	TAILQ_INSERT_TAIL(&s->win, m, slink);
	TAILQ_INSERT_TAIL(&sv->win, m, glink);
	s->win_bytes += mrun_cost(m);
	sv->win_bytes += mrun_cost(m);
	mem_mark(sv, s);
	win_evict(sv, s);
}

/* A follow read of s starts: s keeps a window from now on. */
static void win_attach(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;

	if (!s->nfollow++)
		win_reset(sv, s, s->released + 1);
	LIST_INSERT_HEAD(&s->followers, r, flink);
	r->following = 1;
}

static void win_detach(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;

	if (!r->following)
		return;
	r->following = 0;
	r->mem = 0;
	r->mcur = NULL;
	LIST_REMOVE(r, flink);
	if (!--s->nfollow)
		win_reset(sv, s, 0);
}

/* The run of s's window holding r->next, or NULL (not released yet). */
static struct mrun *mem_find(struct sstream *s, struct cread *r)
{
	struct mrun *m = r->mcur;

	if (m && r->next >= m->first && r->next - m->first < m->nrec)
		return m;
	/* Walk from the nearer end: a caught-up follower finds it at once. */
	if (r->next - s->win_lo < s->released - r->next) {
		TAILQ_FOREACH(m, &s->win, slink)
			if (r->next - m->first < m->nrec || r->next < m->first)
				break;
	} else {
		TAILQ_FOREACH_REVERSE(m, &s->win, mrunq, slink)
			if (m->first <= r->next)
				break;
	}
	if (m && (r->next < m->first || r->next - m->first >= m->nrec))
		m = NULL;
	r->mcur = m;
	return m;
}

/* How many of the n records of rr from index idx fit in credit payload
 * bytes - at least one, as the peer sends one run past a positive credit. */
static uint64_t fit_bytes(const struct hs_run *rr, uint32_t idx, uint64_t n, int64_t credit)
{
	const uint8_t *p = rr->records;
	int64_t pay = 0;
	uint64_t k = 0;

	if (!idx && n == rr->nrecords &&
	    (int64_t)((size_t)(rr->end - rr->records) - HS_RUN_REC_HDR * (size_t)n) <= credit)
		return n;
	for (uint32_t i = 0; i < idx; i++)
		p += HS_RUN_REC_HDR + hs_get32(p + 8);
	while (k < n) {
		pay += hs_get32(p + 8);
		if (k && pay > credit)
			break;
		k++;
		p += HS_RUN_REC_HDR + hs_get32(p + 8);
	}
	return k;
}

/*
 * Send r what s's window holds from r->next on, as far as its credit
 * (records, payload bytes, the subscription's max_unacked), its limit and
 * until, and its connection's high-water mark allow: one DELIVER (split at
 * FOLLOW_FRAME_TARGET) built straight into the connection's output.  A
 * follower that cannot be served from memory goes back to the peer.
 */
static void mem_push(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;
	struct hs_conn *c;
	struct hs_buf *out = NULL;
	struct hs_msg_wr w;
	int open = 0;

	if (!r->mem || r->state != R_RUN || !r->cc || hs_conn_closing(r->cc->c))
		return;
	c = r->cc->c;
	if (s->state != S_ACTIVE || r->next <= s->trim || r->next < s->win_lo) {
		mem_to_peer(sv, r);
		return;
	}
	while (r->next <= s->released) {
		struct hs_run rr;
		struct mrun *m;
		uint64_t n, room, pay;
		uint32_t idx;
		size_t before;

		if ((r->until && r->next >= r->until) || (r->limit && r->sent >= r->limit) ||
		    hs_conn_out_pending(c) >= HS_CONN_HIGH_WATER)
			break;
		room = r->unl_rec ? UINT64_MAX : r->cl_rec > 0 ? (uint64_t)r->cl_rec : 0;
		if (r->sub && (uint64_t)sub_room(r) < room)
			room = (uint64_t)sub_room(r);
		if (!room || (!r->unl_bytes && r->cl_bytes <= 0))
			break;
		m = mem_find(s, r);
		if (!m || hs_run_parse_nocrc(m->bytes, m->len, &rr) < 0) {
			/* Cannot happen while the window invariant holds. */
			hs_warn("read of '%s': LSN %llu missing from the follow window", s->name,
				(unsigned long long)r->next);
			if (open)
				hs_msg_wr_end(&w);
			mem_to_peer(sv, r);
			return;
		}
		idx = (uint32_t)(r->next - m->first);
		n = m->nrec - idx;
		if (n > room)
			n = room;
		if (r->limit && n > r->limit - r->sent)
			n = r->limit - r->sent;
		if (r->until && n > r->until - r->next)
			n = r->until - r->next;
		if (!r->unl_bytes)
			n = fit_bytes(&rr, idx, n, r->cl_bytes);
		if (open && hs_msg_wr_size(&w) + m->len + 12 > FOLLOW_FRAME_TARGET) {
			hs_msg_wr_end(&w);
			open = 0;
		}
		if (!open) {
			out = hs_conn_out(c);
			hs_msg_deliver_begin(&w, out, r->req, r->read_id);
			open = 1;
			sv->follow_mem_frames++;
		}
		before = out->len;
		if (!idx && n == m->nrec) {
			hs_msg_deliver_run(&w, m->first, m->bytes, m->len);
		} else {
			hs_msg_deliver_run_open(&w, r->next);
			hs_run_slice(&rr, idx, (uint32_t)n, out);
			hs_msg_wr_run_close(&w);
		}
		/* The client's byte credit counts payload bytes only. */
		pay = out->len - before - 12 - HS_RUN_HDR - 4 - 4 * (size_t)rr.ncopyset -
		      HS_RUN_REC_HDR * n;
		r->sent += n;
		r->cl_rec -= (int64_t)n;
		r->cl_bytes -= (int64_t)pay;
		sv->records_delivered += n;
		sv->follow_mem_delivered += n;
		if (r->sub)
			sub_delivered(sv, r, r->next, n, pay);
		r->next += n;
		r->mcur = r->next - m->first < m->nrec ? m : TAILQ_NEXT(m, slink);
	}
	if (open)
		hs_msg_wr_end(&w);
	if ((r->until && r->next >= r->until) || (r->limit && r->sent >= r->limit))
		read_end(sv, r, 0);
}

/* Should the peer-read follower r move to memory?  When the window holds
 * its next LSN and it is caught up or in the newer half of the window, so
 * that a follower at the window's old edge does not flip between memory
 * and peer on every eviction. */
static int mem_can_take(const struct cread *r)
{
	const struct sstream *s = r->s;

	if (!r->following || r->mem || r->state != R_RUN || s->state != S_ACTIVE ||
	    r->next < s->win_lo || r->next <= s->trim)
		return 0;
	return r->next > s->released || r->next - s->win_lo >= (s->released + 1 - s->win_lo) / 2;
}

/* Stop r's peer stream (its frames still in flight are dropped with the
 * registration) and serve it from memory. */
static void mem_take(struct serve *sv, struct cread *r)
{
	struct hs_buf *out = hs_peers_out(sv->peers, data_peer(sv));

	hs_peers_forget(sv->peers, data_peer(sv), r->peer_req);
	if (out) {
		struct hs_stop st = { .stream = r->sid };

		hs_msg_stop_enc(out, hs_peers_next_id(sv->peers), &st);
	}
	r->mem = 1;
	r->mcur = NULL;
	r->out_rec = r->out_bytes = 0;
	sv->follow_mem_switches++;
	mem_push(sv, r);
}

/* End of turn: every memory follower of a stream released this turn gets
 * its new records (one DELIVER each). */
static void mem_flush(struct serve *sv)
{
	for (size_t i = 0; i < sv->nmem; i++) {
		struct sstream *s = sv->memdirty[i];
		struct cread *r, *nx;

		s->mem_dirty = 0;
		for (r = LIST_FIRST(&s->followers); r; r = nx) {
			nx = LIST_NEXT(r, flink);
			if (r->mem)
				mem_push(sv, r);
		}
	}
	sv->nmem = 0;
}

/* ---- subscriptions (design comment: SUBSCRIPTIONS) ----------------------- */


static struct ssub *ssub_find(struct serve *sv, const char *name, size_t n)
{
	struct ssub *u;

	LIST_FOREACH(u, &sv->subs, link)
		if (u->nlen == n && !memcmp(u->name, name, n))
			return u;
	return NULL;
}

static struct ssub *ssub_get(struct serve *sv, const char *name, size_t n)
{
	struct ssub *u = ssub_find(sv, name, n);

	if (u)
		return u;
	u = hs_xcalloc(1, sizeof(*u));
	u->sv = sv;
	memcpy(u->name, name, n);
	u->nlen = (uint8_t)n;
	LIST_INSERT_HEAD(&sv->subs, u, link);
	return u;
}

static void ssub_maybe_free(struct ssub *u)
{
	if (u->sess || u->writing || u->refs || u->timer || u->want > u->rec.checkpoint)
		return;
	LIST_REMOVE(u, link);
	hs_subwin_free(&u->win);
	free(u);
}

static size_t sub_key(uint8_t *key, const char *name, size_t n)
{
	return hs_meta_ukey(key, name, n);
}

static int fn_sub_ckpt(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		       struct hs_buf *out)
{
	struct ssub *u = arg;
	struct hs_urec r;
	int rc = hs_urec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 0 || (r.flags & HS_UREC_DELETED) || r.created_ms != u->rec.created_ms)
		return -HS_ENOENT;
	if (r.checkpoint >= u->writing)
		return HS_REG_SAME; /* never backwards */
	r.checkpoint = u->writing;
	hs_urec_enc(&r, out);
	return 0;
}

static void sub_persist(struct ssub *u);

static void sub_ckpt_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct ssub *u = arg;
	struct serve *sv = u->sv;
	struct hs_urec r;

	if (status == -ECANCELED)
		return;
	u->writing = 0;
	if (status == 0 && hs_urec_dec(val, len, &r) == 1) {
		if (r.checkpoint > u->rec.checkpoint)
			u->rec.checkpoint = r.checkpoint;
		sv->sub_ckpt_writes++;
	} else if (status == -HS_ENOENT) {
		/* Deleted (or deleted and created again) meanwhile. */
		u->want = u->rec.checkpoint;
		if (u->sess)
			read_end(sv, u->sess, -HS_ENOENT);
	} else {
		hs_warn("subscription '%s': cannot write its checkpoint: %s", u->name,
			hs_strerror(status));
	}
	if (!u->sess)
		sub_persist(u); /* what moved during the write, or a retry */
	ssub_maybe_free(u);
}

/* Write the checkpoint to u/<name> if it moved (one write at a time). */
static void sub_persist(struct ssub *u)
{
	struct serve *sv = u->sv;
	uint8_t key[HS_REG_KEY_MAX + 2];
	uint64_t c = u->live ? hs_subwin_checkpoint(&u->win) : 0;

	if (c > u->want)
		u->want = c;
	if (u->writing || u->want <= u->rec.checkpoint || sv->stopping > 1)
		return;
	u->writing = u->want;
	u->last_write_ms = hs_now_ms();
	u->acks_since = 0;
	if (reg_change(sv, key, sub_key(key, u->name, u->nlen), fn_sub_ckpt, sub_ckpt_done, u) < 0)
		u->writing = 0;
}

static int64_t sub_room(const struct cread *r)
{
	const struct ssub *u = r->sub;
	int64_t room;

	if (r->child || !u->live)
		return INT64_MAX;
	room = (int64_t)u->rec.max_unacked - (int64_t)u->win.unacked;
	return room > 0 ? room : 0;
}

static void sub_delivered(struct serve *sv, struct cread *r, uint64_t lo, uint64_t n,
			  uint64_t bytes)
{
	struct ssub *u = r->sub;

	if (!u->live)
		return;
	if (r->child) {
		/* A redelivery spends the session's client credit: the
		 * client gives it back for every record it gets. */
		if (u->sess) {
			u->sess->cl_rec -= (int64_t)n;
			u->sess->cl_bytes -= (int64_t)bytes;
		}
		return;
	}
	hs_subwin_delivered(&u->win, lo, n, hs_now_ms());
}

static void sub_skipped(struct serve *sv, struct cread *r, uint64_t lo, uint64_t hi)
{
	struct ssub *u = r->sub;

	if (!u->live)
		return;
	if (r->child)
		hs_subwin_ack(&u->win, lo, hi); /* gone meanwhile (trimmed): nothing to wait for */
	else
		hs_subwin_advance(&u->win, hi + 1);
}

static void sub_read_ended(struct serve *sv, struct cread *r, int status)
{
	struct ssub *u = r->sub;

	r->sub = NULL;
	if (r->child) {
		if (u->redo == r)
			u->redo = NULL;
		return;
	}
	if (u->sess != r)
		return;
	if (u->redo) {
		struct cread *c = u->redo;

		c->cc = NULL;
		read_end(sv, c, -ECANCELED);
	}
	hs_loop_timer_cancel(sv->loop, u->timer);
	u->timer = 0;
	u->sess = NULL;
	if (u->live) {
		uint64_t c = hs_subwin_checkpoint(&u->win);

		if (c > u->want)
			u->want = c;
		hs_subwin_free(&u->win);
		u->live = 0;
	}
	if (status && status != -ECANCELED)
		hs_info("subscription '%s': session ended: %s", u->name, hs_strerror(status));
	sub_persist(u);
	ssub_maybe_free(u);
}

/* Read lo..hi again and send it under the session's read id. */
static void sub_redeliver(struct serve *sv, struct ssub *u, uint64_t lo, uint64_t hi)
{
	struct cread *m = u->sess, *c = hs_xcalloc(1, sizeof(*c));

	c->sv = sv;
	c->cc = m->cc;
	c->s = m->s;
	m->s->refs++;
	c->req = m->req;
	c->read_id = m->read_id;
	c->flags = m->flags & HS_CREAD_GAPS;
	c->from = lo;
	c->until = hi + 1;
	c->cl_rec = (int64_t)(hi - lo + 1);
	c->unl_bytes = 1;
	c->sub = u;
	c->child = 1;
	u->redo = c;
	sv->sub_redelivered += hi - lo + 1;
	hs_debug("subscription '%s': redelivering %llu..%llu", u->name, (unsigned long long)lo,
		 (unsigned long long)hi);
	read_start_peer(sv, c);
}

static void sub_tick(struct hs_loop *l, void *arg)
{
	struct ssub *u = arg;
	struct serve *sv = u->sv;
	struct cread *r = u->sess;
	uint64_t now = hs_now_ms(), tmo = u->rec.ack_timeout_ms, lo, hi;

	u->timer = 0;
	if (!r || !u->live)
		return;
	if (now - u->last_write_ms >= SUB_PERSIST_MS)
		sub_persist(u);
	if (r->cc && hs_conn_out_pending(r->cc->c) >= HS_CONN_HIGH_WATER) {
		uint64_t bound = tmo > SUB_STUCK_MIN_MS ? tmo : SUB_STUCK_MIN_MS;

		if (!u->stuck_since) {
			u->stuck_since = now;
		} else if (now - u->stuck_since > bound) {
			hs_warn("subscription '%s': the subscriber on %s has not read its output for "
				"%llu ms; dropping its session", u->name, hs_conn_peer_name(r->cc->c),
				(unsigned long long)(now - u->stuck_since));
			sv->sub_dropped++;
			read_end(sv, r, -HS_ETIMEOUT);
			return;
		}
	} else {
		u->stuck_since = 0;
	}
	if (!u->redo && r->state == R_RUN && hs_subwin_due(&u->win, now, tmo, &lo, &hi))
		sub_redeliver(sv, u, lo, hi);
	u->timer = hs_loop_timer(sv->loop, SUB_TICK_MS, sub_tick, u);
}

/* Lookups: absent or deleted is -HS_ENOENT. */
static int fn_sub_exists(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct hs_urec r;
	int rc = hs_urec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 0 || (r.flags & HS_UREC_DELETED))
		return -HS_ENOENT;
	return HS_REG_SAME;
}

struct subload {
	struct cread *r;
	struct ssub *u;
};

static void sub_load_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct subload *x = arg;
	struct cread *r = x->r;
	struct ssub *u = x->u;
	struct serve *sv = u->sv;
	struct hs_urec rec;
	uint64_t ckpt;

	free(x);
	if (status == -ECANCELED)
		return;
	u->refs--;
	r->loading = 0;
	if (r->state == R_DONE) {
		free(r);
		ssub_maybe_free(u);
		return;
	}
	if (status == 0 && hs_urec_dec(val, len, &rec) != 1)
		status = -HS_EDATA;
	if (status < 0) {
		read_end(sv, r, status);
		return;
	}
	if (u->rec.created_ms != rec.created_ms)
		u->want = 0; /* an earlier subscription of that name */
	u->rec = rec;
	ckpt = rec.checkpoint > u->want ? rec.checkpoint : u->want;
	hs_subwin_init(&u->win, ckpt);
	u->live = 1;
	u->last_write_ms = hs_now_ms();
	u->stuck_since = 0;
	u->acks_since = 0;
	u->timer = hs_loop_timer(sv->loop, SUB_TICK_MS, sub_tick, u);
	sv->sub_sessions++;
	r->pfrom = (struct hs_pos){ .kind = HS_POS_LSN, .lsn = ckpt };
	r->queued = 1;
	stream_wait(sv, rec.stream, rec.stream_len, 0, NULL, &r->w);
}

static void on_subscribe(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_subscribe m;
	struct cread *r;
	struct ssub *u;
	struct subload *x;
	uint8_t key[HS_REG_KEY_MAX + 2];

	if (hs_msg_subscribe_dec(f->body, f->body_len, &m) < 0) {
		proto_close(cc, "malformed SUBSCRIBE body");
		return;
	}
	sv->reads++;
	r = hs_xcalloc(1, sizeof(*r));
	r->sv = sv;
	r->cc = cc;
	r->req = f->id;
	r->read_id = m.read_id;
	r->flags = HS_CREAD_FOLLOW | (m.flags & HS_CREAD_GAPS);
	r->cl_rec = m.win_records;
	r->cl_bytes = m.win_bytes;
	r->unl_rec = !m.win_records;
	r->unl_bytes = !m.win_bytes;
	r->w.fn = read_ready;
	LIST_INSERT_HEAD(&cc->reads, r, link);
	if (m.sub_len > HS_META_NAME_MAX || sv->stopping || (m.flags & ~(uint32_t)HS_CREAD_GAPS)) {
		read_end(sv, r, sv->stopping ? -HS_EUNAVAIL
			 : m.sub_len > HS_META_NAME_MAX ? -HS_ENOENT : -HS_EUSAGE);
		return;
	}
	u = ssub_get(sv, m.sub, m.sub_len);
	if (u->sess) {
		ssub_maybe_free(u);
		read_end(sv, r, -HS_ELOCKED);
		return;
	}
	u->sess = r;
	r->sub = u;
	x = hs_xcalloc(1, sizeof(*x));
	x->r = r;
	x->u = u;
	u->refs++;
	r->loading = 1;
	if (reg_change(sv, key, sub_key(key, m.sub, m.sub_len), fn_sub_exists, sub_load_done, x) <
	    0) {
		free(x);
		u->refs--;
		r->loading = 0;
		read_end(sv, r, -HS_ENOENT);
	}
}

static void ack_exists_done(void *arg, int status, const uint8_t *val, size_t len,
			    uint64_t version)
{
	struct creq *rq = arg;

	if (status != -ECANCELED)
		creq_settle(rq->sv, rq, 0, status, 0, 0, 0, "");
}

static void on_ack(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_lsn_range e;
	struct ssub *u;
	struct creq *rq;
	uint8_t key[HS_REG_KEY_MAX + 2];

	if (hs_msg_clist_dec(HS_MSG_ACK, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed ACK body");
		return;
	}
	u = l.sub_len <= HS_META_NAME_MAX ? ssub_find(sv, l.sub, l.sub_len) : NULL;
	if (u && u->live) {
		uint64_t n = 0;

		while (hs_ack_next(&l, &e) == 1)
			n += hs_subwin_ack(&u->win, e.lo, e.hi);
		u->acks_since += n;
		if (u->acks_since >= SUB_PERSIST_ACKS)
			sub_persist(u);
		read_grant(sv, u->sess); /* max_unacked may have held it */
		hs_msg_result_encf(hs_conn_out(cc->c), f->id, 0, "%s", "");
		return;
	}
	/* No session here: nothing was delivered, so there is nothing to
	 * mark; only say whether the subscription exists. */
	rq = creq_new(sv, cc, f->id, HS_MSG_ACK, 1);
	if (l.sub_len > HS_META_NAME_MAX ||
	    reg_change(sv, key, sub_key(key, l.sub, l.sub_len), fn_sub_exists, ack_exists_done, rq) < 0)
		creq_settle(sv, rq, 0, -HS_ENOENT, 0, 0, 0, "");
}

/* SUB_CREATE: resolve `from` on the active stream, then create u/<sub>. */
struct subadm {
	struct wait w;            /* first: the stream wait */
	struct serve *sv;
	struct creq *rq;
	uint32_t idx;
	struct hs_pos from;
	struct hs_urec rec;       /* what to write */
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
};

static int fn_sub_create(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct subadm *a = arg;
	struct hs_urec r;
	int rc = hs_urec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 1 && !(r.flags & HS_UREC_DELETED))
		return -HS_EEXIST;
	hs_urec_enc(&a->rec, out);
	return 0;
}

static void subcreate_done(void *arg, int status, const uint8_t *val, size_t len,
			   uint64_t version)
{
	struct subadm *a = arg;

	if (status != -ECANCELED)
		creq_settle(a->sv, a->rq, a->idx, status, status ? 0 : a->rec.checkpoint, 0, 0, "");
	free(a);
}

static void subcreate_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct subadm *a = (struct subadm *)w;
	uint8_t key[HS_REG_KEY_MAX + 2];

	if (status >= 0 && a->from.kind == HS_POS_TIME)
		status = -HS_EUSAGE; /* @time: not this round (design comment) */
	if (status < 0) {
		creq_settle(sv, a->rq, a->idx, status, 0, 0, 0, "");
		free(a);
		return;
	}
	a->rec.log = s->rec.log;
	a->rec.checkpoint = a->from.kind == HS_POS_NONE ? stream_tail(s) : resolve(s, &a->from);
	if (a->rec.checkpoint < HS_LSN(1, 1))
		a->rec.checkpoint = HS_LSN(1, 1);
	a->rec.created_ms = hs_wall_ms();
	if (reg_change(sv, key, sub_key(key, a->name, a->nlen), fn_sub_create, subcreate_done, a) <
	    0) {
		creq_settle(sv, a->rq, a->idx, -HS_EINTERNAL, 0, 0, 0, "");
		free(a);
	}
}

static void on_sub_create(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_subcreate_ent e;
	struct creq *rq;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_SUB_CREATE, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed SUB_CREATE body");
		return;
	}
	rq = creq_new(sv, cc, f->id, HS_MSG_SUB_CREATE, l.n);
	if (!l.n) {
		creq_reply(sv, rq);
		return;
	}
	rq->left++;
	for (; hs_sub_create_next(&l, &e) == 1; i++) {
		struct subadm *a;

		if (e.sub_len > HS_META_NAME_MAX || e.stream_len > HS_META_NAME_MAX) {
			creq_settle(sv, rq, i, e.sub_len > HS_META_NAME_MAX ? -HS_EDATA
					       : -HS_ENOSTREAM, 0, 0, 0, "");
			continue;
		}
		a = hs_xcalloc(1, sizeof(*a));
		a->sv = sv;
		a->rq = rq;
		a->idx = i;
		a->from = e.from;
		memcpy(a->name, e.sub, e.sub_len);
		a->nlen = e.sub_len;
		a->rec.ack_timeout_ms = e.ack_timeout_ms ? e.ack_timeout_ms : HS_SUB_ACK_TIMEOUT_DEFAULT;
		a->rec.max_unacked = e.max_unacked ? e.max_unacked : HS_SUB_MAX_UNACKED_DEFAULT;
		memcpy(a->rec.stream, e.stream, e.stream_len);
		a->rec.stream_len = e.stream_len;
		a->w.fn = subcreate_ready;
		stream_wait(sv, e.stream, e.stream_len, 0, NULL, &a->w);
	}
	if (--rq->left == 0)
		creq_reply(sv, rq);
}

static int fn_sub_delete(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct hs_urec r;
	int rc = hs_urec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 0 || (r.flags & HS_UREC_DELETED))
		return -HS_ENOENT;
	r.flags |= HS_UREC_DELETED;
	hs_urec_enc(&r, out);
	return 0;
}

static void subdelete_done(void *arg, int status, const uint8_t *val, size_t len,
			   uint64_t version)
{
	struct subadm *a = arg;
	struct serve *sv = a->sv;

	if (status == -ECANCELED) {
		free(a);
		return;
	}
	if (status == 0) {
		struct ssub *u = ssub_find(sv, a->name, a->nlen);

		if (u) {
			/* Nothing more to persist for it. */
			u->want = u->rec.checkpoint;
			if (u->sess)
				read_end(sv, u->sess, -HS_ENOENT);
		}
	}
	creq_settle(sv, a->rq, a->idx, status, 0, 0, 0, "");
	free(a);
}

static void on_sub_delete(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_name_ent e;
	struct creq *rq;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_SUB_DELETE, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed SUB_DELETE body");
		return;
	}
	rq = creq_new(sv, cc, f->id, HS_MSG_SUB_DELETE, l.n);
	if (!l.n) {
		creq_reply(sv, rq);
		return;
	}
	rq->left++;
	for (; hs_name_next(&l, &e) == 1; i++) {
		struct subadm *a;
		uint8_t key[HS_REG_KEY_MAX + 2];

		if (e.name_len > HS_META_NAME_MAX) {
			creq_settle(sv, rq, i, -HS_ENOENT, 0, 0, 0, "");
			continue;
		}
		a = hs_xcalloc(1, sizeof(*a));
		a->sv = sv;
		a->rq = rq;
		a->idx = i;
		memcpy(a->name, e.name, e.name_len);
		a->nlen = e.name_len;
		if (reg_change(sv, key, sub_key(key, e.name, e.name_len), fn_sub_delete,
			       subdelete_done, a) < 0) {
			free(a);
			creq_settle(sv, rq, i, -HS_EDATA, 0, 0, 0, "");
		}
	}
	if (--rq->left == 0)
		creq_reply(sv, rq);
}

/* The info of a subscription: the register, with the session's figures
 * when one runs here. */
static void sub_fill_info(struct serve *sv, const char *name, size_t n, const struct hs_urec *rec,
			  struct hs_sub_info *in)
{
	struct ssub *u = ssub_find(sv, name, n);

	memset(in, 0, sizeof(*in));
	in->stream = rec->stream;
	in->stream_len = rec->stream_len;
	in->ack_timeout_ms = rec->ack_timeout_ms;
	in->max_unacked = rec->max_unacked;
	in->checkpoint = rec->checkpoint;
	if (!u || u->rec.created_ms != rec->created_ms)
		return;
	if (u->want > in->checkpoint)
		in->checkpoint = u->want;
	if (u->live) {
		uint64_t c = hs_subwin_checkpoint(&u->win);

		if (c > in->checkpoint)
			in->checkpoint = c;
		in->delivered = u->win.delivered;
		in->unacked = u->win.unacked > UINT32_MAX ? UINT32_MAX : (uint32_t)u->win.unacked;
	}
	in->consumers = u->sess ? 1 : 0;
}

/* SUB_INFO: one SUBS reply once every lookup is back. */
struct subreq {
	struct serve *sv;
	struct cconn *cc;         /* NULL once the connection closed */
	uint64_t id;
	uint32_t n, left;
	struct subent {
		struct subreq *q;
		int32_t status;
		struct hs_urec rec;
		char name[HS_NAME_MAX + 1];
		uint8_t nlen;
	} *e;
	LIST_ENTRY(subreq) link;
};

static void subreq_done(struct serve *sv, struct subreq *q)
{
	if (q->cc)
		LIST_REMOVE(q, link);
	if (q->cc && !hs_conn_closing(q->cc->c)) {
		struct hs_msg_wr w;

		hs_msg_subs_begin(&w, hs_conn_out(q->cc->c), q->id, 0);
		for (uint32_t i = 0; i < q->n; i++) {
			struct subent *e = &q->e[i];
			struct hs_sub_info in;

			if (!e->status)
				sub_fill_info(sv, e->name, e->nlen, &e->rec, &in);
			hs_msg_subs_add(&w, e->status, e->name, e->nlen, e->status ? NULL : &in);
		}
		hs_msg_wr_end(&w);
	}
	free(q->e);
	free(q);
}

static void subinfo_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct subent *e = arg;
	struct subreq *q = e->q;

	if (status == -ECANCELED)
		return;
	if (status == 0 && hs_urec_dec(val, len, &e->rec) != 1)
		status = -HS_EDATA;
	e->status = status;
	if (--q->left == 0)
		subreq_done(q->sv, q);
}

static void on_sub_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_name_ent ne;
	struct subreq *q;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_SUB_INFO, f->body, f->body_len, &l) < 0) {
		proto_close(cc, "malformed SUB_INFO body");
		return;
	}
	q = hs_xcalloc(1, sizeof(*q));
	q->sv = sv;
	q->cc = cc;
	LIST_INSERT_HEAD(&cc->subreqs, q, link);
	q->id = f->id;
	q->n = l.n;
	q->left = l.n + 1;
	q->e = hs_xcalloc(l.n ? l.n : 1, sizeof(*q->e));
	for (; hs_name_next(&l, &ne) == 1; i++) {
		struct subent *e = &q->e[i];
		uint8_t key[HS_REG_KEY_MAX + 2];

		e->q = q;
		memcpy(e->name, ne.name, ne.name_len);
		e->nlen = ne.name_len;
		if (ne.name_len > HS_META_NAME_MAX ||
		    reg_change(sv, key, sub_key(key, ne.name, ne.name_len), fn_sub_exists,
			       subinfo_done, e) < 0) {
			e->status = -HS_ENOENT;
			q->left--;
		}
	}
	if (--q->left == 0)
		subreq_done(sv, q);
}

/* ---- stream list (REG_LIST to every peer, merged) --------------------- */

struct lent {
	uint8_t key[HS_REG_KEY_MAX];
	uint8_t klen;
	struct hs_reg_ballot b;
	struct hs_srec rec;
	struct hs_urec urec;      /* SUB_LIST */
	int ok;                   /* decoded and not deleted */
};

struct listreq {
	struct serve *sv;
	struct cconn *cc;
	uint64_t id;
	uint32_t max;
	uint8_t flags;
	uint16_t type;            /* STREAM_LIST or SUB_LIST */
	char filter[HS_NAME_MAX + 1]; /* SUB_LIST: only this stream's */
	uint8_t filter_len;
	int waiting, replies, failed;
	struct lent *e;
	size_t n, cap;
	int cut_set;              /* some peer had more: only keys <= cut */
	uint8_t cut[HS_REG_KEY_MAX];
	uint8_t cutlen;
	LIST_ENTRY(listreq) link;
};

static int keycmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c ? c : (an > bn) - (an < bn);
}

static int lent_cmp(const void *x, const void *y)
{
	const struct lent *a = x, *b = y;
	int c = keycmp(a->key, a->klen, b->key, b->klen);

	return c ? c : -hs_reg_ballot_cmp(&a->b, &b->b); /* highest ballot first */
}

static void list_finish(struct serve *sv, struct listreq *q)
{
	int quorum = sv->npeers / 2 + 1;
	struct hs_msg_wr w;
	uint32_t sent = 0;
	int more = 0;

	if (q->cc)
		LIST_REMOVE(q, link);
	if (!q->cc || hs_conn_closing(q->cc->c))
		goto out;
	if (q->replies < quorum) {
		hs_msg_result_encf(hs_conn_out(q->cc->c), q->id, -HS_EUNAVAIL,
				   "no quorum of peers answered (%d of %d)", q->replies, sv->npeers);
		goto out;
	}
	qsort(q->e, q->n, sizeof(*q->e), lent_cmp);
	if (q->type == HS_MSG_SUB_LIST)
		hs_msg_subs_begin(&w, hs_conn_out(q->cc->c), q->id, 0);
	else
		hs_msg_streams_begin(&w, hs_conn_out(q->cc->c), q->id, 0);
	for (size_t i = 0; i < q->n; i++) {
		struct lent *e = &q->e[i];
		struct hs_stream_info in, *inp = NULL;

		if (i && e->klen == q->e[i - 1].klen && !memcmp(e->key, q->e[i - 1].key, e->klen))
			continue; /* a lower ballot of the same key */
		if (q->cut_set && keycmp(e->key, e->klen, q->cut, q->cutlen) > 0) {
			more = 1;
			break;
		}
		if (!e->ok)
			continue;
		if (sent == q->max) {
			more = 1;
			break;
		}
		if (q->type == HS_MSG_SUB_LIST) {
			struct hs_sub_info si;

			if (q->filter_len && (e->urec.stream_len != q->filter_len ||
					      memcmp(e->urec.stream, q->filter, q->filter_len)))
				continue;
			if (q->flags & HS_LIST_INFO)
				sub_fill_info(sv, (const char *)e->key + 2, e->klen - 2u, &e->urec, &si);
			hs_msg_subs_add(&w, 0, (const char *)e->key + 2, e->klen - 2u,
					q->flags & HS_LIST_INFO ? &si : NULL);
			sent++;
			continue;
		}
		if (q->flags & HS_LIST_INFO) {
			struct sstream *s = stream_find(sv, (const char *)e->key + 2, e->klen - 2u);

			if (s && s->state == S_ACTIVE && s->rec.log == e->rec.log) {
				fill_info(s, &in);
			} else {
				/* Not active here: what the record says; positions unknown. */
				memset(&in, 0, sizeof(in));
				in.log = e->rec.log;
				in.attrs.mask = HS_ATTR_ALL;
				in.attrs.replication = e->rec.replication;
				in.attrs.durability = e->rec.durability;
				in.attrs.retention_ms = e->rec.retention_ms;
				in.attrs.offload_after_ms = e->rec.offload_after_ms;
				in.records = in.bytes = UINT64_MAX;
				in.created_ms = e->rec.created_ms;
			}
			inp = &in;
		}
		hs_msg_streams_add(&w, 0, (const char *)e->key + 2, e->klen - 2u, inp);
		sent++;
	}
	if (more)
		w.b->data[w.start + HS_FRAME_HDR] = HS_LIST_MORE;
	hs_msg_wr_end(&w);
out:
	free(q->e);
	free(q);
}

static void on_listed(void *arg, int idx, const struct hs_frame *f)
{
	struct listreq *q = arg;
	struct hs_reg_listed m;
	struct hs_reg_entry e;
	const uint8_t *last = NULL;
	uint8_t lastlen = 0;

	if (f && f->type == HS_MSG_REG_LISTED && hs_msg_reg_listed_dec(f->body, f->body_len, &m) == 0 &&
	    m.status == 0) {
		q->replies++;
		while (hs_reg_listed_next(&m, &e) == 1) {
			struct lent *x;
			const uint8_t *d;
			size_t dl;

			grow((void **)&q->e, &q->cap, q->n + 1, sizeof(*q->e));
			x = &q->e[q->n++];
			memcpy(x->key, e.key, e.key_len);
			x->klen = e.key_len;
			x->b = e.accepted;
			if (q->type == HS_MSG_SUB_LIST)
				x->ok = e.key_len > 2 &&
					hs_reg_unwrap(e.val.data, e.val.len, &d, &dl) == 0 &&
					hs_urec_dec(d, dl, &x->urec) == 1 &&
					!(x->urec.flags & HS_UREC_DELETED);
			else
				x->ok = e.key_len > 2 &&
					hs_reg_unwrap(e.val.data, e.val.len, &d, &dl) == 0 &&
					hs_srec_dec(d, dl, &x->rec) == 1 &&
					!(x->rec.flags & HS_SREC_DELETED);
			last = e.key;
			lastlen = e.key_len;
		}
		if (m.more && last &&
		    (!q->cut_set || keycmp(last, lastlen, q->cut, q->cutlen) < 0)) {
			q->cut_set = 1;
			memcpy(q->cut, last, lastlen);
			q->cutlen = lastlen;
		}
	} else {
		q->failed++;
	}
	if (--q->waiting == 0)
		list_finish(q->sv, q);
}

static void on_list(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_list_req m;
	struct listreq *q;
	struct hs_reg_list rl = { 0 };
	uint8_t prefix[HS_REG_KEY_MAX + 2], after[HS_REG_KEY_MAX + 2];

	if ((f->type == HS_MSG_SUB_LIST ? hs_msg_sub_list_dec(f->body, f->body_len, &m)
					 : hs_msg_stream_list_dec(f->body, f->body_len, &m)) < 0) {
		proto_close(cc, f->type == HS_MSG_SUB_LIST ? "malformed SUB_LIST body"
							   : "malformed STREAM_LIST body");
		return;
	}
	q = hs_xcalloc(1, sizeof(*q));
	q->sv = sv;
	q->cc = cc;
	q->id = f->id;
	q->max = m.max && m.max < LIST_PAGE ? m.max : LIST_PAGE;
	q->flags = m.flags;
	q->type = f->type;
	LIST_INSERT_HEAD(&cc->lists, q, link);
	rl.prefix = prefix;
	rl.after = after;
	if (f->type == HS_MSG_SUB_LIST) {
		/* The filter is a stream name, checked per entry. */
		memcpy(q->filter, m.filter, m.filter_len);
		q->filter_len = m.filter_len;
		rl.prefix_len = (uint8_t)hs_meta_ukey(prefix, "", 0);
		rl.after_len = (uint8_t)hs_meta_ukey(after, m.cursor, m.cursor_len > HS_META_NAME_MAX ? HS_META_NAME_MAX : m.cursor_len);
	} else {
		rl.prefix_len = (uint8_t)hs_meta_skey(prefix, m.filter, m.filter_len > HS_META_NAME_MAX ? HS_META_NAME_MAX : m.filter_len);
		rl.after_len = (uint8_t)hs_meta_skey(after, m.cursor, m.cursor_len > HS_META_NAME_MAX ? HS_META_NAME_MAX : m.cursor_len);
	}
	/* One more than the page, so a full page knows whether more follow. */
	rl.max = q->max + 1;
	q->waiting = 1;
	for (int i = 0; i < sv->npeers; i++) {
		struct hs_buf *out = hs_peers_out(sv->peers, i);
		uint64_t id;

		if (!out)
			continue;
		id = hs_peers_next_id(sv->peers);
		q->waiting++;
		hs_peers_expect(sv->peers, i, id, on_listed, q, 0);
		hs_msg_reg_list_enc(out, id, &rl);
	}
	if (--q->waiting == 0)
		list_finish(sv, q);
}

/* ---- stats and status ---------------------------------------------------- */

static void on_admin_stats(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_admin_stats m;
	struct hs_msg_wr w;
	struct sstream *s;
	char scope[300];

	if (hs_msg_admin_stats_dec(f->body, f->body_len, &m) < 0) {
		proto_close(cc, "malformed ADMIN_STATS body");
		return;
	}
	if (!m.scopes)
		m.scopes = HS_STATS_SERVE | HS_STATS_STREAMS | HS_STATS_PEERS;
	hs_msg_admin_statsreply_begin(&w, hs_conn_out(cc->c), f->id);
	if (m.scopes & HS_STATS_SERVE) {
		uint64_t nconns = 0;
		struct cconn *x;

		LIST_FOREACH(x, &sv->conns, link)
			nconns++;
		hs_msg_kv_addu(&w, "serve", "connections", nconns);
		hs_msg_kv_addu(&w, "serve", "connections_total", sv->conns_total);
		hs_msg_kv_addu(&w, "serve", "active_streams", sv->nstreams);
		hs_msg_kv_addu(&w, "serve", "append_frames", sv->appends);
		hs_msg_kv_addu(&w, "serve", "append_records", sv->append_records);
		hs_msg_kv_addu(&w, "serve", "append_bytes", sv->append_bytes);
		hs_msg_kv_addu(&w, "serve", "store_frames", sv->stores_sent);
		hs_msg_kv_addu(&w, "serve", "store_frames_unacked", sv->unacked_n);
		hs_msg_kv_addu(&w, "serve", "creates", sv->creates);
		hs_msg_kv_addu(&w, "serve", "deletes", sv->deletes);
		hs_msg_kv_addu(&w, "serve", "reads", sv->reads);
		hs_msg_kv_addu(&w, "serve", "records_delivered", sv->records_delivered);
		hs_msg_kv_addu(&w, "serve", "activations", sv->activations);
		hs_msg_kv_addu(&w, "serve", "sub_sessions", sv->sub_sessions);
		hs_msg_kv_addu(&w, "serve", "sub_redelivered", sv->sub_redelivered);
		hs_msg_kv_addu(&w, "serve", "sub_dropped", sv->sub_dropped);
		hs_msg_kv_addu(&w, "serve", "sub_checkpoint_writes", sv->sub_ckpt_writes);
		hs_msg_kv_addu(&w, "serve", "follow_mem_delivered", sv->follow_mem_delivered);
		hs_msg_kv_addu(&w, "serve", "follow_mem_frames", sv->follow_mem_frames);
		hs_msg_kv_addu(&w, "serve", "follow_mem_switches", sv->follow_mem_switches);
		hs_msg_kv_addu(&w, "serve", "follow_peer_fallbacks", sv->follow_peer_fallbacks);
		hs_msg_kv_addu(&w, "serve", "follow_window_bytes", sv->win_bytes);
		hs_msg_kv_addu(&w, "serve", "follow_window_evicted", sv->follow_win_evicted);
		hs_msg_kv_addu(&w, "serve", "follow_window_resets", sv->follow_win_resets);
		hs_msg_kv_addu(&w, "serve", "proposer_id", sv->proposer_id);
		hs_msg_kv_addu(&w, "serve", "register_busy_keys", hs_reg_proposer_busy(sv->prop));
	}
	if (m.scopes & HS_STATS_STREAMS) {
		TAILQ_FOREACH(s, &sv->lru, lru) {
			if (s->state != S_ACTIVE)
				continue;
			if (m.prefix_len && (s->nlen < m.prefix_len || memcmp(s->name, m.prefix, m.prefix_len)))
				continue;
			snprintf(scope, sizeof(scope), "stream/%s", s->name);
			hs_msg_kv_addu(&w, scope, "log", s->rec.log);
			hs_msg_kv_addu(&w, scope, "epoch", s->epoch);
			hs_msg_kv_addu(&w, scope, "next_lsn", stream_tail(s));
			hs_msg_kv_addu(&w, scope, "last_released", s->released);
			hs_msg_kv_addu(&w, scope, "trim", s->trim);
			hs_msg_kv_addu(&w, scope, "appends", s->appends);
			hs_msg_kv_addu(&w, scope, "records", s->records);
			hs_msg_kv_addu(&w, scope, "bytes", s->bytes);
			hs_msg_kv_addu(&w, scope, "inflight_bytes", s->inflight_bytes);
			hs_msg_kv_addu(&w, scope, "followers", (uint64_t)s->nfollow);
			hs_msg_kv_addu(&w, scope, "follow_window_bytes", s->win_bytes);
		}
	}
	if (m.scopes & HS_STATS_PEERS) {
		for (int i = 0; i < sv->npeers; i++) {
			uint64_t connects, losses;

			hs_peers_counters(sv->peers, i, &connects, &losses);
			snprintf(scope, sizeof(scope), "peer/%u", hs_peers_node_id(sv->peers, i));
			hs_msg_kv_add(&w, scope, "address", hs_peers_addr(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "connected", hs_peers_is_up(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "node_id", hs_peers_node_id(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "connects", connects);
			hs_msg_kv_addu(&w, scope, "losses", losses);
			hs_msg_kv_addu(&w, scope, "queued_bytes", hs_peers_pending(sv->peers, i));
			if (i < sv->nchildren) {
				hs_msg_kv_addu(&w, scope, "pid", (uint64_t)sv->children[i].pid);
				hs_msg_kv_addu(&w, scope, "restarts", (uint64_t)sv->children[i].restarts);
			}
		}
	}
	hs_msg_wr_end(&w);
}

static void on_cluster_status(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_msg_wr w;
	int up = 0;

	if (hs_msg_cluster_status_dec(f->body, f->body_len) < 0) {
		proto_close(cc, "malformed CLUSTER_STATUS body");
		return;
	}
	for (int i = 0; i < sv->npeers; i++)
		up += hs_peers_is_up(sv->peers, i);
	hs_msg_cluster_statusreply_begin(&w, hs_conn_out(cc->c), f->id, 0,
					 up >= sv->npeers / 2 + 1 && hs_peers_is_up(sv->peers, data_peer(sv)),
					 sv->replication);
	for (int i = 0; i < sv->npeers; i++) {
		const char *a = hs_peers_addr(sv->peers, i);
		size_t al = strlen(a);

		hs_msg_peer_add(&w, hs_peers_node_id(sv->peers, i),
				hs_peers_is_up(sv->peers, i) ? HS_PEER_UP
				: (i < sv->nchildren ? HS_PEER_STARTING : HS_PEER_DOWN),
				a, (uint8_t)(al > 255 ? 255 : al));
	}
	hs_msg_wr_end(&w);
}

/* ---- client connections --------------------------------------------------- */

static void on_hello(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_hello h, me = { 0 };

	if (hs_msg_hello_dec(f->body, f->body_len, &h) < 0) {
		proto_close(cc, "malformed HELLO body");
		return;
	}
	if (h.version != HS_PROTO_VERSION) {
		hs_msg_result_encf(hs_conn_out(cc->c), f->id, -HS_EVERSION,
				   "protocol version %u not supported: hs-serve speaks version %u",
				   h.version, HS_PROTO_VERSION);
		hs_conn_close(cc->c, -HS_EVERSION);
		return;
	}
	cc->hello = 1;
	me.version = HS_PROTO_VERSION;
	me.role = HS_ROLE_SERVE;
	me.max_frame = HS_FRAME_MAX_DEFAULT;
	hs_msg_hello_enc(hs_conn_out(cc->c), f->id, &me);
}

static void on_client_frame(struct hs_conn *c, const struct hs_frame *f, void *arg)
{
	struct cconn *cc = arg;
	struct serve *sv = cc->sv;

	if (!cc->hello) {
		if (f->type == HS_MSG_HELLO)
			on_hello(sv, cc, f);
		else
			proto_close(cc, "frame before HELLO");
		return;
	}
	switch (f->type) {
	case HS_MSG_APPEND:
		on_append(sv, cc, f);
		break;
	case HS_MSG_STREAM_CREATE:
		on_create(sv, cc, f);
		break;
	case HS_MSG_STREAM_DELETE:
		on_delete(sv, cc, f);
		break;
	case HS_MSG_STREAM_LIST:
		on_list(sv, cc, f);
		break;
	case HS_MSG_STREAM_INFO:
		on_info(sv, cc, f);
		break;
	case HS_MSG_STREAM_TRIM:
		on_trim(sv, cc, f);
		break;
	case HS_MSG_READ:
		on_read(sv, cc, f);
		break;
	case HS_MSG_READ_WINDOW:
		on_read_window(sv, cc, f);
		break;
	case HS_MSG_READ_CANCEL:
		on_read_cancel(sv, cc, f);
		break;
	case HS_MSG_ADMIN_STATS:
		on_admin_stats(sv, cc, f);
		break;
	case HS_MSG_CLUSTER_STATUS:
		on_cluster_status(sv, cc, f);
		break;
	case HS_MSG_SUB_CREATE:
		on_sub_create(sv, cc, f);
		break;
	case HS_MSG_SUB_DELETE:
		on_sub_delete(sv, cc, f);
		break;
	case HS_MSG_SUB_LIST:
		on_list(sv, cc, f);
		break;
	case HS_MSG_SUB_INFO:
		on_sub_info(sv, cc, f);
		break;
	case HS_MSG_SUBSCRIBE:
		on_subscribe(sv, cc, f);
		break;
	case HS_MSG_ACK:
		on_ack(sv, cc, f);
		break;
	default:
		proto_close(cc, "unexpected frame type");
		break;
	}
}

static void on_client_writable(struct hs_conn *c, void *arg)
{
	struct cconn *cc = arg;
	struct cread *r, *nx;

	/* A read served from memory may end here (limit, until). */
	for (r = LIST_FIRST(&cc->reads); r; r = nx) {
		nx = LIST_NEXT(r, link);
		read_grant(cc->sv, r);
	}
}

static void on_client_closed(struct hs_conn *c, int err, void *arg)
{
	struct cconn *cc = arg;
	struct serve *sv = cc->sv;
	struct creq *rq;
	struct cread *r;
	struct inforeq *q;
	struct listreq *lq;
	struct subreq *sq;

	while ((sq = LIST_FIRST(&cc->subreqs))) {
		LIST_REMOVE(sq, link);
		sq->cc = NULL;
	}
	while ((rq = LIST_FIRST(&cc->reqs))) {
		LIST_REMOVE(rq, link);
		rq->cc = NULL;
	}
	while ((q = LIST_FIRST(&cc->infos))) {
		LIST_REMOVE(q, link);
		q->cc = NULL;
	}
	while ((lq = LIST_FIRST(&cc->lists))) {
		LIST_REMOVE(lq, link);
		lq->cc = NULL;
	}
	while ((r = LIST_FIRST(&cc->reads))) {
		LIST_REMOVE(r, link);
		r->cc = NULL;
		read_end(sv, r, -ECANCELED);
	}
	LIST_REMOVE(cc, link);
	free(cc);
}

static const struct hs_conn_ops client_ops = {
	.frame = on_client_frame,
	.closed = on_client_closed,
	.writable = on_client_writable,
};

static void on_accept(struct hs_loop *l, int lfd, uint32_t revents, void *arg)
{
	struct serve *sv = arg;

	for (int i = 0; i < 64; i++) {
		struct cconn *cc;
		int fd = hs_net_accept(lfd);

		if (fd == -EAGAIN)
			return;
		if (fd < 0) {
			hs_warn("accept: %s", hs_strerror(fd));
			return;
		}
		cc = hs_xcalloc(1, sizeof(*cc));
		cc->sv = sv;
		LIST_INIT(&cc->reqs);
		LIST_INIT(&cc->reads);
		LIST_INIT(&cc->infos);
		LIST_INIT(&cc->lists);
		LIST_INIT(&cc->subreqs);
		cc->c = hs_conn_new(l, fd, &client_ops, cc);
		if (!cc->c) {
			free(cc);
			continue;
		}
		LIST_INSERT_HEAD(&sv->conns, cc, link);
		sv->conns_total++;
	}
}

static void close_listeners(struct serve *sv)
{
	for (int i = 0; i < sv->nlisten; i++) {
		if (sv->lfd[i] < 0)
			continue;
		hs_loop_del_fd(sv->loop, sv->lfd[i]);
		close(sv->lfd[i]);
		sv->lfd[i] = -1;
		if (!strncmp(sv->actual[i], "unix:", 5))
			unlink(sv->actual[i] + 5);
	}
}

/* ---- peers: links, readiness ----------------------------------------------- */

static void meta_probe(struct serve *sv);

static void peer_up(void *arg, int idx, uint32_t node_id)
{
	struct serve *sv = arg;
	struct sstream *s;

	if (idx != data_peer(sv))
		goto probe;
	/* Seals that waited for the link; unacknowledged STOREs go out again
	 * in order from batches_flush() at the end of this turn. */
	TAILQ_FOREACH(s, &sv->lru, lru)
		if (s->state == S_SEALING && !s->refs)
			seal_send(sv, s);
	hs_loop_wake_now(sv->loop);
probe:
	if (!sv->meta_ok)
		meta_probe(sv);
}

static void peer_down(void *arg, int idx)
{
}

static void peer_frame(void *arg, int idx, const struct hs_frame *f)
{
	struct serve *sv = arg;
	struct hs_result res;

	switch (f->type) {
	case HS_MSG_REG_PROMISE:
	case HS_MSG_REG_ACCEPTED:
		if (hs_reg_proposer_on_reply(sv->prop, idx, f->type, f->body, f->body_len) < 0)
			hs_warn("peer %s: malformed %s", hs_peers_addr(sv->peers, idx),
				hs_msg_name(f->type));
		return;
	case HS_MSG_RESULT:
		/* RELEASE, TRIM and STOP answers: only failures matter. */
		if (hs_msg_result_dec(f->body, f->body_len, &res) == 0 && res.status < 0)
			hs_warn("peer %s: %.*s", hs_peers_addr(sv->peers, idx), (int)res.msg_len,
				res.msg);
		return;
	default:
		hs_debug("peer %s: unsolicited %s", hs_peers_addr(sv->peers, idx),
			 hs_msg_name(f->type));
	}
}

static const struct hs_peers_ops peer_ops = {
	.up = peer_up,
	.down = peer_down,
	.frame = peer_frame,
};

static int write_ready(struct serve *sv)
{
	struct hs_buf b = HS_BUF_INIT;
	int r;

	for (int i = 0; i < sv->nlisten; i++)
		hs_buf_printf(&b, "%s%s", i ? "\n" : "", sv->actual[i]);
	r = hs_daemon_ready_file(sv->ready_file, (const char *)b.data);
	hs_buf_free(&b);
	if (r < 0)
		hs_error("cannot write ready file '%s': %s", sv->ready_file, hs_strerror(r));
	return r;
}

static void check_ready(struct serve *sv)
{
	if (sv->ready_written || !sv->meta_ok || sv->stopping)
		return;
	for (int i = 0; i < sv->npeers; i++)
		if (!hs_peers_is_up(sv->peers, i))
			return;
	sv->ready_written = 1;
	hs_info("serving on %s with %d peer(s)", sv->actual[0], sv->npeers);
	if (sv->ready_file && write_ready(sv) < 0) {
		sv->exit_status = EX_CANTCREAT;
		hs_loop_stop(sv->loop);
	}
}

static void probe_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct serve *sv = arg;

	if (status == -ECANCELED)
		return;
	if (status == 0) {
		sv->meta_ok = 1;
		check_ready(sv);
		return;
	}
	hs_warn("metadata registers not readable yet: %s", hs_strerror(status));
	meta_probe(sv);
}

/* Read a register through a quorum: the metadata is usable. */
static void meta_probe(struct serve *sv)
{
	static const uint8_t key[] = "c/cluster";

	sv->reg_dirty = 1;
	hs_reg_read(sv->prop, key, sizeof(key) - 1, probe_done, sv);
}

/* ---- supervised local peers ------------------------------------------------ */

static void child_spawn(struct serve *sv, int i);

static void on_child_timer(struct hs_loop *l, void *arg)
{
	struct child *ch = arg;
	struct serve *sv = g_sv;

	ch->timer = 0;
	if (!sv->stopping)
		child_spawn(sv, (int)(ch - sv->children));
}

static void child_spawn(struct serve *sv, int i)
{
	struct child *ch = &sv->children[i];
	char node[16];
	/* Durability is per stream (NOSYNC STOREs); only memory is a mode of
	 * the peers themselves. */
	const char *dur = sv->durability == HS_DUR_MEMORY ? "memory" : "sync";
	pid_t ppid = getpid(), pid;

	snprintf(node, sizeof(node), "%d", i + 1);
	pid = fork();
	if (pid < 0) {
		hs_error("cannot start hs-peer %d: %s", i + 1, strerror(errno));
		ch->timer = hs_loop_timer(sv->loop, ch->backoff, on_child_timer, ch);
		return;
	}
	if (pid == 0) {
		sigset_t all;
		char *argv[] = { sv->peer_bin, "--data", ch->data, "--listen", ch->sock,
				 "--node-id", node, "--durability", (char *)dur, NULL, NULL };

		/* The loop blocked signals for its signalfd: unblock for the child. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != ppid)
			_exit(0);
		if (hs_log_level() >= HS_LOG_INFO)
			argv[9] = "-v";
		execv(sv->peer_bin, argv);
		_exit(127);
	}
	ch->pid = pid;
	ch->started = hs_now_ms();
	hs_info("started hs-peer %d (pid %d) on %s", i + 1, (int)pid, ch->sock);
	hs_peers_kick(sv->peers, i);
}

static void on_sigchld(struct serve *sv)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);

		if (pid <= 0)
			return;
		for (int i = 0; i < sv->nchildren; i++) {
			struct child *ch = &sv->children[i];

			if (ch->pid != pid)
				continue;
			ch->pid = 0;
			if (sv->stopping)
				break;
			if (WIFSIGNALED(st))
				hs_warn("hs-peer %d (pid %d) killed by signal %d; restarting it",
					i + 1, (int)pid, WTERMSIG(st));
			else
				hs_warn("hs-peer %d (pid %d) exited with status %d; restarting it",
					i + 1, (int)pid, WEXITSTATUS(st));
			ch->restarts++;
			if (hs_now_ms() - ch->started > 10000)
				ch->backoff = 100;
			ch->timer = hs_loop_timer(sv->loop, ch->backoff, on_child_timer, ch);
			ch->backoff = ch->backoff * 2 > 5000 ? 5000 : ch->backoff * 2;
		}
	}
}

static int children_alive(struct serve *sv)
{
	int n = 0;

	for (int i = 0; i < sv->nchildren; i++)
		n += sv->children[i].pid > 0;
	return n;
}

/* Where to find hs-peer: next to our own binary, else in PATH. */
static int find_peer_bin(struct serve *sv)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash, *path, *dir, *save = NULL;

	if (n > 0) {
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if ((size_t)snprintf(sv->peer_bin, sizeof(sv->peer_bin), "%s/hs-peer", self) <
				    sizeof(sv->peer_bin) &&
			    access(sv->peer_bin, X_OK) == 0)
				return 0;
		}
	}
	path = getenv("PATH");
	if (!path)
		return -1;
	path = hs_xstrdup(path);
	for (dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(sv->peer_bin, sizeof(sv->peer_bin), "%s/hs-peer", dir) <
			    sizeof(sv->peer_bin) &&
		    access(sv->peer_bin, X_OK) == 0) {
			free(path);
			return 0;
		}
	}
	free(path);
	return -1;
}

/* Peer sockets: "<serve socket>.p<i>" when it fits sun_path, else in a
 * private directory under /tmp. */
static int children_setup(struct serve *sv)
{
	const char *base = NULL;

	if (find_peer_bin(sv) < 0) {
		hs_error("cannot find the hs-peer program next to hs-serve or in PATH");
		return EX_UNAVAILABLE;
	}
	for (int i = 0; i < sv->nlisten; i++)
		if (!strncmp(sv->actual[i], "unix:", 5)) {
			base = sv->actual[i];
			break;
		}
	if (!base || strlen(base) + 8 > HS_SUN_PATH_MAX + 5) {
		snprintf(sv->rundir, sizeof(sv->rundir), "/tmp/hs-serve.XXXXXX");
		if (!mkdtemp(sv->rundir)) {
			hs_error("cannot create a directory for the peer sockets: %s", strerror(errno));
			return EX_CANTCREAT;
		}
		sv->own_rundir = 1;
	}
	for (int i = 0; i < sv->local_peers; i++) {
		struct child *ch = &sv->children[i];

		int n = sv->own_rundir
			? snprintf(ch->sock, sizeof(ch->sock), "unix:%s/p%d.sock", sv->rundir, i)
			: snprintf(ch->sock, sizeof(ch->sock), "%s.p%d", base, i);

		if (n < 0 || (size_t)n >= sizeof(ch->sock)) {
			hs_error("peer socket path too long");
			return EX_USAGE;
		}
		if ((size_t)snprintf(ch->data, sizeof(ch->data), "%s/peer%d", sv->data_dir, i) >=
		    sizeof(ch->data)) {
			hs_error("data directory path too long");
			return EX_USAGE;
		}
		ch->backoff = 100;
	}
	sv->nchildren = sv->local_peers;
	return 0;
}

/* ---- the turn, signals, shutdown ---------------------------------------- */

static void before_sleep(struct hs_loop *l, void *arg)
{
	struct serve *sv = arg;

	/* Register rounds first: their completions may append.  Replies and
	 * timers make rounds ready too, so flush every turn. */
	sv->reg_dirty = 1;
	for (int i = 0; i < 4 && sv->reg_dirty; i++) {
		sv->reg_dirty = 0;
		hs_reg_proposer_flush(sv->prop);
	}
	if (sv->reg_dirty)
		hs_loop_wake_now(l);
	mem_flush(sv);
	batches_flush(sv);
}

static int inflight_work(struct serve *sv)
{
	struct cconn *cc;

	if (!TAILQ_EMPTY(&sv->unacked) || sv->cur[SB_SYNC] || sv->cur[SB_NOSYNC])
		return 1;
	LIST_FOREACH(cc, &sv->conns, link)
		if (!LIST_EMPTY(&cc->reqs))
			return 1;
	return 0;
}

static void on_stop_timer(struct hs_loop *l, void *arg)
{
	struct serve *sv = arg;
	uint64_t now = hs_now_ms();

	if (sv->stopping == 1 && (!inflight_work(sv) || now > sv->stop_deadline)) {
		if (inflight_work(sv))
			hs_warn("stopping with appends still in flight");
		sv->stopping = 2;
		sv->stop_deadline = now + STOP_GRACE_MS;
		for (int i = 0; i < sv->nchildren; i++)
			if (sv->children[i].pid > 0)
				kill(sv->children[i].pid, SIGTERM);
	}
	if (sv->stopping == 2) {
		if (!children_alive(sv)) {
			hs_loop_stop(l);
			return;
		}
		if (now > sv->stop_deadline) {
			for (int i = 0; i < sv->nchildren; i++)
				if (sv->children[i].pid > 0) {
					hs_warn("hs-peer %d did not stop; killing it", i + 1);
					kill(sv->children[i].pid, SIGKILL);
				}
			sv->stop_deadline = now + 5000;
		}
	}
	hs_loop_timer(l, 20, on_stop_timer, sv);
}

static void on_signal(struct hs_loop *l, int signo, void *arg)
{
	struct serve *sv = arg;

	if (signo == SIGCHLD) {
		on_sigchld(sv);
		return;
	}
	if (signo == SIGHUP) {
		hs_info("SIGHUP ignored");
		return;
	}
	if (sv->stopping)
		return;
	hs_info("%s: finishing appends in flight and stopping", strsignal(signo));
	sv->stopping = 1;
	sv->stop_deadline = hs_now_ms() + STOP_GRACE_MS;
	close_listeners(sv);
	for (int i = 0; i < sv->nchildren; i++) {
		hs_loop_timer_cancel(l, sv->children[i].timer);
		sv->children[i].timer = 0;
	}
	on_stop_timer(l, sv);
}

/* The proposer id: a random node number kept in DIR/serve.id (16 bits)
 * and a boot counter bumped at every start (16 bits). */
static int proposer_id(struct serve *sv, uint32_t *out)
{
	char path[PATH_MAX], text[64];
	unsigned node = 0, boot = 0;
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/serve.id", sv->data_dir);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "node %u boot %u", &node, &boot) != 2)
			node = 0;
		fclose(f);
	}
	if (!node || node > 0xffff)
		node = (unsigned)(rand64() % 0xffff) + 1;
	boot = (boot + 1) & 0xffff;
	snprintf(text, sizeof(text), "node %u boot %u", node, boot);
	r = hs_daemon_ready_file(path, text);
	if (r < 0) {
		hs_error("cannot write '%s': %s", path, hs_strerror(r));
		return r;
	}
	*out = (uint32_t)node << 16 | boot;
	if (!*out)
		*out = 1;
	return 0;
}

/* ---- main ------------------------------------------------------------------ */

static int parse_args(struct serve *sv, int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_LONGOPTS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "peer", required_argument, NULL, OPT_PEER },
		{ "local-peers", required_argument, NULL, OPT_LOCAL_PEERS },
		{ "replication", required_argument, NULL, OPT_REPLICATION },
		{ "durability", required_argument, NULL, OPT_DURABILITY },
		{ "ready-file", required_argument, NULL, OPT_READY },
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli *c = &sv->cli;
	uint64_t v;
	int opt, status, has_local = 0;

	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS, longopts, NULL)) != -1) {
		switch (hs_cli_option(c, opt, optarg, &status)) {
		case 0:
			continue;
		case 1:
			return status ? status : -1;
		}
		switch (opt) {
		case OPT_DATA:
			sv->data_dir = optarg;
			break;
		case OPT_LISTEN:
			if (sv->nlisten == MAX_LISTEN)
				return hs_cli_usage_error(c, "at most %d --listen addresses", MAX_LISTEN);
			sv->listen[sv->nlisten++] = optarg;
			break;
		case OPT_PEER:
			if (sv->npeer_arg == MAX_PEERS)
				return hs_cli_usage_error(c, "at most %d --peer addresses", MAX_PEERS);
			sv->peer_arg[sv->npeer_arg++] = optarg;
			break;
		case OPT_LOCAL_PEERS:
			if (hs_parse_u64(optarg, &v) < 0 || v < 1 || v > MAX_PEERS)
				return hs_cli_usage_error(c, "invalid --local-peers '%s' (1..%d)", optarg,
							  MAX_PEERS);
			sv->local_peers = (int)v;
			has_local = 1;
			break;
		case OPT_REPLICATION:
			if (hs_parse_u64(optarg, &v) < 0 || v < 1 || v > HS_RUN_COPYSET_MAX)
				return hs_cli_usage_error(c, "invalid --replication '%s'", optarg);
			if (v != 1)
				return hs_cli_usage_error(
					c, "--replication %s: only 1 is supported by this release", optarg);
			sv->replication = (uint8_t)v;
			break;
		case OPT_DURABILITY:
			if (!strcmp(optarg, "sync"))
				sv->durability = HS_DUR_SYNC;
			else if (!strcmp(optarg, "async"))
				sv->durability = HS_DUR_ASYNC;
			else if (!strcmp(optarg, "memory"))
				sv->durability = HS_DUR_MEMORY;
			else
				return hs_cli_usage_error(
					c, "invalid --durability '%s' (use sync, async or memory)", optarg);
			break;
		case OPT_READY:
			sv->ready_file = optarg;
			break;
		case OPT_PIDFILE:
			sv->pidfile = optarg;
			break;
		default:
			return hs_cli_usage_error(c, "unexpected option");
		}
	}
	if (optind < argc)
		return hs_cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (has_local && sv->npeer_arg)
		return hs_cli_usage_error(c, "--local-peers and --peer exclude each other");
	for (int i = 0; i < sv->nlisten; i++)
		if (strncmp(sv->listen[i], "unix:", 5) && !hs_net_is_loopback(sv->listen[i])) {
			fprintf(stderr,
				"%s: refusing to listen on '%s': not a loopback address, and there "
				"is no authentication yet\n",
				c->prog, sv->listen[i]);
			return EX_USAGE;
		}
	return hs_cli_finish(c);
}

static int open_listeners(struct serve *sv)
{
	for (int i = 0; i < sv->nlisten; i++) {
		int fd;

		if (!strncmp(sv->listen[i], "unix:", 5) && !strcmp(sv->listen[i], sv->defaddr)) {
			int r = hs_addr_dir_make(sv->listen[i]);

			if (r < 0) {
				hs_error("cannot use the socket directory of '%s': %s", sv->listen[i],
					 hs_strerror(r));
				return r == -HS_EPERM ? EX_NOPERM : EX_CANTCREAT;
			}
		}
		fd = hs_net_listen(sv->listen[i], sv->actual[i], sizeof(sv->actual[i]));
		if (fd < 0) {
			hs_error("cannot listen on '%s': %s", sv->listen[i], hs_strerror(fd));
			return fd == -HS_EUSAGE || fd == -ENAMETOOLONG ? EX_USAGE : EX_CANTCREAT;
		}
		sv->lfd[i] = fd;
		if (hs_loop_add_fd(sv->loop, fd, HS_EV_READ, on_accept, sv) < 0) {
			hs_error("cannot watch the socket for '%s'", sv->listen[i]);
			return EX_OSERR;
		}
		hs_info("listening on %s", sv->actual[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	static struct serve svs;
	struct serve *sv = &svs;
	struct hs_reg_cfg cfg = { 0 };
	struct hs_reg_ops rops = { rop_send, rop_now, rop_rand, rop_timer };
	const char *paddrs[MAX_PEERS];
	int status, r;

	g_sv = sv;
	for (int i = 0; i < MAX_LISTEN; i++)
		sv->lfd[i] = -1;
	sv->local_peers = 1;
	sv->replication = 1;
	sv->durability = HS_DUR_SYNC;
	TAILQ_INIT(&sv->lru);
	TAILQ_INIT(&sv->unacked);
	TAILQ_INIT(&sv->win);
	LIST_INIT(&sv->conns);
	LIST_INIT(&sv->subs);
	hs_cli_init(&sv->cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	status = parse_args(sv, argc, argv);
	if (status) {
		if (status < 0)
			status = 0;
		goto out_cli;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!hs_addr_default(sv->defaddr, sizeof(sv->defaddr)))
		sv->defaddr[0] = 0;
	if (!sv->nlisten) {
		if (!sv->defaddr[0]) {
			status = hs_cli_usage_error(&sv->cli, "no default socket path: use --listen");
			goto out_cli;
		}
		sv->listen[sv->nlisten++] = sv->defaddr;
	}
	if (!sv->data_dir) {
		if (!hs_addr_data_default(sv->data_buf, sizeof(sv->data_buf))) {
			status = hs_cli_usage_error(&sv->cli, "no home directory: use --data DIR");
			goto out_cli;
		}
		sv->data_dir = sv->data_buf;
	}
	if (hs_daemon_mkdirs(sv->data_dir, 0700) < 0) {
		status = EX_CANTCREAT;
		goto out_cli;
	}
	if (proposer_id(sv, &sv->proposer_id) < 0) {
		status = EX_CANTCREAT;
		goto out_cli;
	}
	sv->loop = hs_loop_new();
	if (!sv->loop) {
		hs_error("cannot create the event loop: %s", strerror(errno));
		status = EX_OSERR;
		goto out_cli;
	}
	r = hs_loop_signals(sv->loop, sigs, 4, on_signal, sv);
	if (r < 0) {
		hs_error("cannot set up signals: %s", hs_strerror(r));
		status = EX_OSERR;
		goto out_loop;
	}
	status = open_listeners(sv);
	if (status)
		goto out_listen;
	if (sv->npeer_arg) {
		for (int i = 0; i < sv->npeer_arg; i++)
			paddrs[i] = sv->peer_arg[i];
		sv->npeers = sv->npeer_arg;
	} else {
		status = children_setup(sv);
		if (status)
			goto out_listen;
		for (int i = 0; i < sv->nchildren; i++)
			paddrs[i] = sv->children[i].sock;
		sv->npeers = sv->nchildren;
	}
	r = hs_peers_new(sv->loop, paddrs, sv->npeers, HS_FRAME_MAX_DEFAULT, &peer_ops, sv,
			 &sv->peers);
	if (r < 0) {
		status = EX_CONFIG;
		goto out_listen;
	}
	cfg.proposer_id = sv->proposer_id;
	cfg.nacc = sv->npeers;
	r = hs_reg_proposer_new(&cfg, &rops, sv, &sv->prop);
	if (r < 0) {
		hs_error("bad register configuration: %s", hs_strerror(r));
		status = EX_CONFIG;
		goto out_peers;
	}
	for (int i = 0; i < sv->nchildren; i++)
		child_spawn(sv, i);
	hs_loop_before_sleep(sv->loop, before_sleep, sv);
	if (sv->pidfile && (r = hs_daemon_pidfile(sv->pidfile)) < 0) {
		hs_error("cannot write pid file '%s': %s", sv->pidfile, hs_strerror(r));
		status = EX_CANTCREAT;
		goto out_prop;
	}
	meta_probe(sv);

	r = hs_loop_run(sv->loop);
	status = r < 0 ? EX_OSERR : sv->exit_status;

	if (sv->pidfile)
		hs_daemon_pidfile_remove(sv->pidfile);
out_prop:
	/* Children still running (an early failure): stop them. */
	for (int i = 0; i < sv->nchildren; i++)
		if (sv->children[i].pid > 0) {
			kill(sv->children[i].pid, SIGTERM);
			waitpid(sv->children[i].pid, NULL, 0);
		}
	while (!LIST_EMPTY(&sv->conns))
		hs_conn_close(LIST_FIRST(&sv->conns)->c, 0);
	hs_reg_proposer_free(sv->prop);
out_peers:
	hs_peers_free(sv->peers);
out_listen:
	close_listeners(sv);
	if (sv->own_rundir)
		rmdir(sv->rundir);
out_loop:
	hs_loop_free(sv->loop);
out_cli:
	hs_cli_free(&sv->cli);
	return status;
}

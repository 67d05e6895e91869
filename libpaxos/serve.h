/*
 * serve.h - the shared state of hs-serve (cmd/hs-serve.c), the front door
 * of HStore (DESIGN.md §2).  One module in three files, all working on the
 * one struct serve of the process, single-threaded on its event loop:
 *
 *   seq.c    the sequencer: the stream table and LRU, lookup, activation
 *            (new epoch with R and nodeset, then recovery.h), the append
 *            path (copysets, per-peer STORE batching, waves, STORED, LNG,
 *            RELEASE), peer up/down, client request settling, and the
 *            follow window (reads served from the sequencer's memory);
 *   read.c   the read path: position resolution, peer read streams,
 *            DELIVER/READ_GAP/READ_END, switching between peer and memory,
 *            and subscription sessions (SUBSCRIBE, ACK, checkpoints);
 *   admin.c  stream and subscription admin requests (create, delete, info,
 *            trim, list), ADMIN_STATS and CLUSTER_STATUS.
 *
 * cmd/hs-serve.c keeps main(), the options, the supervised local peers, the
 * register proposer's glue, listening and the client frame dispatch.  Each
 * .c file opens with the design of what it owns.
 *
 * OWNERSHIP.  struct serve is the caller's (main's, static); everything
 * hanging off it is owned by it: streams (sv->tab, sv->lru), STORE batches,
 * follow-window runs, connections (sv->conns) and subscriptions (sv->subs).
 * A struct cconn owns its requests and reads until the connection closes;
 * then their cc is set to NULL and they finish on their own (a request's
 * reply is dropped).  A struct sstream is freed when idle (no refs, nothing
 * waiting or in flight) and evicted from the LRU or dead.  Frames passed to
 * the on_* handlers are borrowed for the call.
 *
 * ERRORS.  The handlers (hs_serve_on_*) answer the client themselves: a
 * RESULT or a per-entry status with a negative -errno or -HS_E* code
 * (hs_strerror), or close the connection on a protocol violation
 * (hs_serve_proto_close).  They return nothing; memory allocation failure
 * aborts (buf.h).
 */
#ifndef HS_SERVE_H
#define HS_SERVE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "addr.h"
#include "buf.h"
#include "cli.h"
#include "conn.h"
#include "frame.h"
#include "loop.h"
#include "meta.h"
#include "net.h"
#include "peers.h"
#include "proto.h"
#include "proto_client.h"
#include "register.h"
#include "sub.h"

#define MAX_LISTEN 16
#define MAX_PEERS 32

struct serve;
struct sstream;
struct cconn;
struct ssub;
struct rpeer;

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

/* One append entry from arrival until every copy is STORED and released.
 * After sequencing, sr holds its STORE run (header with copyset, LNG and
 * wave, then the records, then the CRC); each wave patches the header and
 * appends sr to the STORE batch of every copyset member. */
struct pent {
	struct wait w;
	struct creq *rq;
	uint32_t idx;
	int create;
	uint8_t *run;             /* the client's run (copied), freed once sequenced */
	size_t len;               /* its length (window and budget accounting) */
	uint32_t nrec;
	int stamp;                /* has records with timestamp 0 */
	/* once sequenced */
	struct sstream *s;
	uint64_t first_lsn;
	uint8_t *sr;              /* the STORE run (owned), rlen bytes */
	size_t rlen;
	uint32_t wave;            /* 1 for the first copyset */
	uint8_t ncs;              /* copyset size (the stream's R) */
	uint8_t cs[HS_NODESET_MAX]; /* copyset: link indexes */
	uint32_t acked;           /* bit i: cs[i] answered STORED OK in this wave */
	int refs;                 /* batch entries naming it (sbent) */
	int stalled;              /* on sv->stalled: waiting for R peers */
	int dead;                 /* failed or fenced: later replies are ignored */
	struct mrun *mr;          /* its copy for the follow window, or NULL */
	int done;                 /* all R STORED OK (or failed): releasable */
	TAILQ_ENTRY(pent) flink;  /* s->inflight, LSN order */
	TAILQ_ENTRY(pent) slink;  /* sv->stalled */
};
TAILQ_HEAD(pentq, pent);

/* A STORE frame to one peer and the runs it carries, kept until its
 * STORED, the link's loss or STORE_TIMEOUT_MS (seq.c); frame is freed
 * once sent (a new wave rebuilds what a lost batch carried). */
enum { SB_SYNC, SB_NOSYNC, SB_KINDS };
struct sbent {
	struct pent *pe;          /* holds a ref */
	uint32_t wave;            /* pe's wave when sent: older replies are stale */
	uint8_t pos;              /* index of the peer in pe->cs */
};
struct sbatch {
	struct serve *sv;
	int peer;                 /* link index */
	uint64_t id;
	uint64_t timer;           /* STORE_TIMEOUT_MS timer, 0 none */
	int rearms;               /* times the timer was extended */
	struct hs_buf frame;
	struct sbent *ents;
	size_t n, cap;
	TAILQ_ENTRY(sbatch) link;
};
TAILQ_HEAD(sbatchq, sbatch);

/* seq.c's view of one peer link. */
struct speer {
	uint32_t node;            /* node id usable for data (nonzero, unique), 0 none */
	uint64_t fail_until;      /* ms: avoid in new copysets until then */
	uint64_t full_until;      /* ms: disk nearly full (-HS_ENOSPC): in no copyset */
	int rel_all;              /* came back: RELEASE every stream of its nodesets */
	struct sbatch *cur[SB_KINDS]; /* this turn's STOREs being built */
	struct hs_msg_wr sw[SB_KINDS];
};

/* S_PEERS: waiting (bounded) for R peers before activating; S_RECOVERING:
 * the epoch is activated and hs_recovery_start() runs (seq.c). */
enum { S_LOOKUP, S_PEERS, S_ACTIVATING, S_RECOVERING, S_ACTIVE, S_DEAD };

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

/* Another hs-serve that owned a stream's live epoch (log record owner),
 * and the result of its last probe (seq.c, docs/replication.md §7).  addr
 * is handed out as the text of -HS_EREDIRECT replies, so entries live in
 * sv->owners for the process's life (reused oldest first when full, never
 * while a probe is in flight).  A probe is a nonblocking connect and HELLO
 * on the loop, at most one per entry: the activations waiting for its
 * answer are queued on waiting and go on (redirect or takeover) when it
 * answers, fails or times out. */
#define OWNERS_MAX 16
struct act_ctx;
TAILQ_HEAD(actq, act_ctx);
struct sowner {
	struct serve *sv;
	uint64_t id;
	char addr[HS_LREC_ADDR_MAX + 1];
	uint64_t probed_ms;       /* when last probed, 0 never */
	int alive;                /* it answered HELLO and said it is healthy */
	struct hs_conn *c;        /* the probe in flight, NULL none */
	uint64_t timer;           /* its PROBE_MS deadline, 0 none */
	struct actq waiting;      /* activations waiting for its answer */
};

struct sstream {
	struct serve *sv;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
	int state;
	int want_create;          /* the lookup may create it */
	struct hs_stream_attrs cattrs; /* attributes for that create */
	struct hs_srec rec;
	/* the log record as this sequencer last wrote or read it: the epoch
	 * history (nodesets, recovery results) that reads and recovery use;
	 * lr.epochs is owned by the stream */
	struct hs_lrec lr;
	struct hs_recovery *recov; /* recovery.h, while recovering */
	uint32_t epoch, next_esn;
	uint64_t released;        /* last released LSN = LNG of the live epoch */
	uint64_t trim;
	/* the live epoch's replication and nodeset (node ids), as in its
	 * entry of lr, copied at activation */
	uint8_t r, nn;
	uint32_t ns[HS_NODESET_MAX];
	/* sticky copyset (link indexes) of new runs and the bytes sent on it */
	uint8_t ncs;
	uint8_t cs[HS_NODESET_MAX];
	size_t cs_bytes;
	uint64_t wait_timer;      /* S_PEERS deadline timer, 0 none */
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
	/* killed with -HS_EREDIRECT: the owner's address (in sv->owners) */
	const char *redirect;
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
	uint64_t peer_req;        /* unused since the merge (0): seq.c's mem_take */
	uint32_t sid;             /* STOPs them; read.c keeps its streams in rp */
	int state;
	int locating;             /* LOCATEs in flight */
	uint64_t loc_lsn[2];      /* smallest LSN located per end (0 none) */
	int loc_ok[2];            /* answers per end */
	struct rpeer *rp;         /* read.c: the merged peer read, or NULL */
	struct t2rd *t2;          /* t2read.c: the Tier2 read, or NULL */
	struct hs_msg_wr dw;      /* the DELIVER frame being built */
	int dw_open;
	uint64_t gap_lo, gap_hi;  /* the gap being coalesced (kind 0: none) */
	int gap_kind;
	int queued;               /* w is on a stream's wait queue */
	struct ssub *sub;         /* SUBSCRIBE session (or its redelivery) */
	int child;                /* a redelivery read: not on cc->reads */
	int loading;              /* the subscription register is being read */
	int following;            /* on s->followers */
	int mem;                  /* served from s->win, no peer stream */
	struct mrun *mcur;        /* mem: the run holding next, NULL = look it up */
	/* A resolve-only read (hs_serve_resolve_async): no client, ends once
	 * pfrom is resolved, calling res_done from hs_serve_read_end. */
	void (*res_done)(struct serve *sv, void *arg, int status, uint64_t lsn);
	void *res_arg;
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
	LIST_HEAD(gathers, gather) infos; /* STREAM_INFO in flight (admin.c) */
	LIST_HEAD(, listreq) lists;
	struct gathers subreqs;   /* SUB_INFO in flight (admin.c) */
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
	/* several hs-serve (docs/replication.md §7): our serve id (the random
	 * number of DIR/serve.id, proposer_id >> 16) and the client address
	 * written as owner of the epochs we activate ("" = none: --advertise,
	 * else the first listen address unless it is a wildcard) */
	uint64_t serve_id;
	char advertise[HS_LREC_ADDR_MAX + 1];
	struct sowner owners[OWNERS_MAX];
	uint64_t redirects, takeovers, owner_probes;

	/* streams */
	struct sstream **tab;
	size_t nb, nstreams;
	struct sstreamq lru;
	/* per link: node id, health and the turn's STOREs (seq.c) */
	struct speer sp[MAX_PEERS];
	/* STOREs sent and not answered; runs waiting for R peers up */
	struct sbatchq unacked;
	size_t unacked_n;
	struct pentq stalled;
	int stall_retry;          /* a peer came up or a full period ended: retry
				   * the stalled runs */
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
	struct hs_t2 *t2;         /* Tier2 reads (t2read.h), NULL: no --tier */

	int ready_written, meta_ok, stopping;
	uint64_t stop_deadline;
	int exit_status;

	/* counters */
	uint64_t conns_total, appends, append_records, append_bytes, stores_sent;
	uint64_t creates, deletes, reads, records_delivered, activations;
	uint64_t waves, store_timeouts, fenced;
	uint64_t sub_sessions, sub_redelivered, sub_dropped, sub_ckpt_writes;
	uint64_t follow_mem_delivered, follow_mem_frames, follow_mem_switches;
	uint64_t follow_peer_fallbacks, follow_win_evicted, follow_win_resets;
};

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

/* ---- seq.c: helpers -------------------------------------------------------- */

/* Grow the array *p of *cap elements of elem bytes to hold need (doubling);
 * *p stays the caller's.  Allocation failure aborts. */
void hs_serve_grow(void **p, size_t *cap, size_t need, size_t elem);
/* 64 random bits (getrandom, else the clock and pid); never fails. */
uint64_t hs_serve_rand64(void);
/* The link index of the peer announcing node id node, or -1 (unknown, 0,
 * or a duplicate id, which is not used for data). */
int hs_serve_peer_idx(struct serve *sv, uint32_t node);
/* Link idx finished HELLO announcing node_id / went down (hs-serve.c's
 * peer callbacks call these, then hs_recovery_peer_up/down): node ids,
 * waves of lost STOREs, stalled runs, activations waiting for peers, and
 * RELEASE to a returning peer. */
void hs_serve_peer_up(struct serve *sv, int idx, uint32_t node_id);
void hs_serve_peer_down(struct serve *sv, int idx);
/* Log what (a static string) and close cc's connection with -HS_EPROTO. */
void hs_serve_proto_close(struct cconn *cc, const char *what);
/* hs_reg_change() (register.h) on sv's proposer, marking it for a flush at
 * the end of the turn: same arguments, return value and ownership. */
int hs_serve_reg_change(struct serve *sv, const uint8_t *key, size_t klen, hs_reg_fn fn,
			hs_reg_done_fn done, void *arg);

/* ---- seq.c: streams and activation ----------------------------------------- */

/* The stream named name (n bytes) in memory, or NULL; borrowed: valid until
 * the stream is freed (idle and evicted, or dead and idle). */
struct sstream *hs_serve_stream_find(struct serve *sv, const char *name, size_t n);
/* Mark s dead, call every waiter's fn with status, and free s if idle. */
void hs_serve_stream_kill(struct serve *sv, struct sstream *s, int status);
/* Queue w on the stream named name (n bytes): it is looked up (with create,
 * created with attrs, copied; attrs may be NULL) and activated as needed;
 * w->fn is called once with 0 when it is active, else a negative code.  w
 * is the caller's and must stay valid until then. */
void hs_serve_stream_wait(struct serve *sv, const char *name, size_t n, int create,
			  const struct hs_stream_attrs *attrs, struct wait *w);
/* Fill *r, a new stream's record with log id log, from attrs (may be NULL:
 * sv's defaults). */
void hs_serve_srec_from_attrs(struct serve *sv, const struct hs_stream_attrs *a, uint64_t log,
			      struct hs_srec *r);
/* A new random log id, nonzero and below 2^62. */
uint64_t hs_serve_new_log_id(void);
/* The address to send clients of s to after s was killed with
 * -HS_EREDIRECT ("" if unknown); static storage (sv->owners). */
const char *hs_serve_redirect_addr(const struct sstream *s);
/* Mark s for the end-of-turn RELEASE of s->released to the UP peers of
 * its nodeset (recovery may call it). */
void hs_serve_release_mark(struct serve *sv, struct sstream *s);

/* ---- seq.c: the append path and client requests --------------------------- */

/* End of turn: retry stalled runs if a peer came up (or a full peer's
 * FULL_AVOID_MS ended), close and send the
 * turn's STOREs (at most one per kind per peer, each with its timeout),
 * and one RELEASE per peer with every stream of its nodesets released this
 * turn. */
void hs_serve_batches_flush(struct serve *sv);
/* A request of n entries of message type on cc (on cc's list; it survives
 * cc closing); freed by its reply.  Never fails. */
struct creq *hs_serve_creq_new(struct serve *sv, struct cconn *cc, uint64_t id, uint16_t type,
			       uint32_t n);
/* Settle entry idx of rq; text is static (NULL: "").  The last entry
 * settled sends the reply (APPENDED, STATUSES, or RESULT for an ACK) and
 * frees rq, so rq must not be used after the call that settles it. */
void hs_serve_creq_settle(struct serve *sv, struct creq *rq, uint32_t idx, int32_t status,
			  uint64_t first, uint32_t count, uint32_t detail, const char *text);
/* Send rq's reply now (dropped if its connection is gone) and free rq. */
void hs_serve_creq_reply(struct serve *sv, struct creq *rq);
/* APPEND: sequence every entry; APPENDED once each is STORED or failed. */
void hs_serve_on_append(struct serve *sv, struct cconn *cc, const struct hs_frame *f);

/* ---- seq.c: following from memory ----------------------------------------- */

/* Push to s's memory followers at the end of the turn (hs_serve_mem_flush). */
void hs_serve_mem_mark(struct serve *sv, struct sstream *s);
/* The follow read r starts on its stream, which keeps a window from now on. */
void hs_serve_win_attach(struct serve *sv, struct cread *r);
/* r stops following; the last follower drops the stream's window. */
void hs_serve_win_detach(struct serve *sv, struct cread *r);
/* Send r what its stream's window holds from r->next on, within r's credit,
 * limit, until, subscription room and its connection's high-water mark, as
 * DELIVER frames built into the connection's output; a follower that cannot
 * be served from memory goes back to a peer read stream. */
void hs_serve_mem_push(struct serve *sv, struct cread *r);
/* 1 if the peer-read follower r should move to memory (its next LSN is in
 * the newer half of the window or past the released point), else 0. */
int hs_serve_mem_can_take(const struct cread *r);
/* Stop r's peer stream (frames in flight are dropped) and serve it from
 * memory. */
void hs_serve_mem_take(struct serve *sv, struct cread *r);
/* End of turn: each memory follower of a stream released this turn gets
 * its new records. */
void hs_serve_mem_flush(struct serve *sv);

/* ---- read.c: positions ---------------------------------------------------- */

/* The tail of the active stream s as readers see it: one past its last
 * released LSN (every acknowledged record is below it).  Appends still in
 * flight are at or after it, so a read never waits for them: "tail" is
 * what is durable when a position is resolved, as in LogDevice, and a
 * follower from the tail gets every append acknowledged after it started. */
uint64_t hs_serve_stream_tail(const struct sstream *s);
/* The first retained LSN of s (its tail when it holds none). */
uint64_t hs_serve_stream_head(const struct sstream *s);
/* The number of retained records of s. */
uint64_t hs_serve_stream_count(const struct sstream *s);
/* Resolve p, a position that needs no peer (not TIME), to an LSN of s,
 * counting Tier1 only (hs_serve_resolve_async counts Tier2 too). */
uint64_t hs_serve_resolve(const struct sstream *s, const struct hs_pos *p);
/* Resolve p (any kind; HS_POS_NONE is the tail) on the active stream s as
 * READ resolves its start (the same code, read.c READ PATH): head+N and
 * tail-N over Tier2's slots and Tier1's, @time in Tier2 then by LOCATE to
 * the peers (the first record at or after the time; the tail if none).
 * done(sv, arg, status, lsn) is called exactly once (maybe before this
 * call returns) with status 0 and the LSN, or a negative code: -HS_EUNAVAIL
 * (no peer answered a LOCATE), Tier2's errors (t2read.h hs_t2_resolve).
 * s is held meanwhile and still held during done, but it may have died
 * (hs_serve_stream_kill: s->state is not S_ACTIVE then; the caller decides
 * whether to wait for the stream again).  p is copied; arg is the
 * caller's and must stay valid until done.  Not cancellable: a caller
 * whose client went away settles into nothing (creqs survive their
 * connection). */
void hs_serve_resolve_async(struct serve *sv, struct sstream *s, const struct hs_pos *p,
			    void (*done)(struct serve *sv, void *arg, int status, uint64_t lsn),
			    void *arg);

/* ---- read.c: reads -------------------------------------------------------- */

/* End r with status: STOP its peer stream, send READ_END (unless it is a
 * redelivery or its connection is gone), release its stream and its
 * subscription session; r is freed unless a lookup, a wait or a LOCATE
 * still holds it (they free it when they come back).  Safe to call twice. */
void hs_serve_read_end(struct serve *sv, struct cread *r, int status);
/* Pass the credit r's client gave on to the peer (or push from memory),
 * while its connection's output is below the high-water mark. */
void hs_serve_read_grant(struct serve *sv, struct cread *r);
/* Start r's merged peer read at r->from (libpaxos/merge.h: one START per
 * UP peer of each epoch's nodeset, walked epoch by epoch); ends r when the
 * range is empty (0), and with -HS_ETIMEOUT (-HS_EUNAVAIL when following)
 * when the peers that may hold the next slot stay down for the stall
 * timeout.  A peer read left over (r just came back from memory) is
 * stopped first. */
void hs_serve_read_start_peer(struct serve *sv, struct cread *r);
/* Stop r's peer read streams (frames in flight are dropped) and free its
 * merge; r stays as it is otherwise.  No-op without one.  Called by
 * hs_serve_mem_take() before serving r from memory. */
void hs_serve_read_stop_peer(struct serve *sv, struct cread *r);
/* READ, READ_WINDOW and READ_CANCEL from a client. */
void hs_serve_on_read(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_read_window(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_read_cancel(struct serve *sv, struct cconn *cc, const struct hs_frame *f);

/* ---- read.c: subscription sessions ---------------------------------------- */

/* The subscription named name (n bytes) in memory, or NULL; borrowed. */
struct ssub *hs_serve_ssub_find(struct serve *sv, const char *name, size_t n);
/* hs_meta_ukey() (meta.h): the register key "u/<name>" into key; its
 * length. */
size_t hs_serve_sub_key(uint8_t *key, const char *name, size_t n);
/* How many more records r (a subscription read) may be granted before
 * max_unacked is reached; INT64_MAX for redeliveries or when not live. */
int64_t hs_serve_sub_room(const struct cread *r);
/* r delivered n records from lo (bytes of payload): record them in the ack
 * window, or for a redelivery charge the session's client credit. */
void hs_serve_sub_delivered(struct serve *sv, struct cread *r, uint64_t lo, uint64_t n,
			    uint64_t bytes);
/* Register change function (hs_reg_fn) of lookups: absent or deleted is
 * -HS_ENOENT, the value unchanged. */
int hs_serve_fn_sub_exists(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			   struct hs_buf *out);
/* SUBSCRIBE and ACK from a client. */
void hs_serve_on_subscribe(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_ack(struct serve *sv, struct cconn *cc, const struct hs_frame *f);

/* ---- admin.c -------------------------------------------------------------- */

/* Decode a list request (hs_msg_clist_dec) of message type and open its
 * creq, held once more until hs_serve_list_end() so that entries settled
 * while the list is still being started cannot reply early.  Returns the
 * creq (owned by the request: freed by its reply), or NULL when the
 * request is answered already (a malformed body closes cc with the static
 * text malformed; an empty list replies at once).  *l borrows f's body. */
struct creq *hs_serve_list_begin(struct serve *sv, struct cconn *cc, const struct hs_frame *f,
				 uint16_t type, const char *malformed, struct hs_clist *l);
/* Release the hold of hs_serve_list_begin(); the last one replies. */
void hs_serve_list_end(struct serve *sv, struct creq *rq);

/* REDIRECTS (docs/replication.md §7): before a reply whose entries carry
 * no text (STATUSES, STREAMS, TIER_INFOS), a RESULT -HS_EREDIRECT naming
 * the sequencer, with the request's id, per address in entry order.  Start
 * with { out, id, "" }, then note every entry in order. */
struct hs_redirects {
	struct hs_buf *out;
	uint64_t id;
	const char *last;         /* the address named last */
};
/* Entry i of the reply, with its status and addr (the sequencer's for
 * -HS_EREDIRECT; NULL or "" when unknown; borrowed until the reply is
 * built): write its RESULT, unless it is no redirect or its address was
 * the last named. */
void hs_serve_redirect_note(struct hs_redirects *r, int status, const char *addr);

/* Decode a stream record "s/<name>" (hs_srec_dec) or a subscription's
 * "u/<name>" (hs_urec_dec) from p[0..len) into *r (the caller's): 1 if it
 * is there and not deleted, 0 if absent or deleted, or a negative code
 * when it does not decode.  What register change functions check first. */
int hs_serve_srec_live(const uint8_t *p, size_t len, struct hs_srec *r);
int hs_serve_urec_live(const uint8_t *p, size_t len, struct hs_urec *r);

/* STREAM_CREATE, STREAM_DELETE, STREAM_INFO, STREAM_TRIM, SUB_CREATE,
 * SUB_DELETE, SUB_INFO, STREAM_LIST and SUB_LIST (on_list), ADMIN_STATS and
 * CLUSTER_STATUS from a client. */
void hs_serve_on_create(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_delete(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_trim(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_sub_create(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_sub_delete(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_sub_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_list(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_admin_stats(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
void hs_serve_on_cluster_status(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
/* The connection cc is closing: its admin requests in flight (STREAM_INFO,
 * SUB_INFO, lists) finish without it and drop their replies.  cc stays
 * the caller's. */
void hs_serve_admin_detach(struct cconn *cc);

#endif

/*
 * peers.h - hs-serve's links to its peers (DESIGN.md §2, §4).
 *
 * One hs_conn per peer.  A link connects without blocking, sends HELLO
 * (role serve) and is UP once the peer's HELLO comes back; frames are only
 * handed out for UP links, so nothing is ever queued behind a connect.  A
 * lost link (EOF, error, malformed frame, refused HELLO) is DOWN: every
 * request still waiting on it is completed with a NULL frame, ops->down
 * runs, and the link reconnects after a backoff (25 ms doubling to 1 s,
 * reset once UP; hs_peers_kick() retries at once, e.g. after a supervised
 * peer was restarted).
 *
 * REQUESTS.  Request ids come from one counter shared by all links, so an id
 * names one request for the life of the process.  The caller registers a
 * reply callback for an id (hs_peers_expect) and appends the request frame
 * to hs_peers_out(); a reply frame whose id is registered goes to that
 * callback (once, or for every frame until hs_peers_forget() if `multi`,
 * for read streams whose RECORDS/GAP/END all carry START's id), any other
 * frame to ops->frame (the register proposer's REG_PROMISE/REG_ACCEPTED).
 *
 * Batching (one STORE and one RELEASE per peer per loop turn) is the
 * caller's: it builds the turn's frames and appends each with one call.
 */
#ifndef HS_PEERS_H
#define HS_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"
#include "loop.h"

struct hs_peers;

/* A reply for a registered id: f is borrowed for the call; f == NULL means
 * the link went down and the request is dropped (multi ones too). */
typedef void hs_peers_reply_fn(void *arg, int idx, const struct hs_frame *f);

struct hs_peers_ops {
	/* Link idx completed HELLO; node_id as the peer announced it. */
	void (*up)(void *arg, int idx, uint32_t node_id);
	/* Link idx went down (after its requests were completed with NULL). */
	void (*down)(void *arg, int idx);
	/* A frame with no registered id (f borrowed for the call). */
	void (*frame)(void *arg, int idx, const struct hs_frame *f);
};

/*
 * Create links to addrs[0..n) (copied; 1..64 addresses) on loop l
 * (borrowed) and start connecting.  ops is copied; arg is passed to every
 * callback.  max_frame is the largest frame we accept (announced in
 * HELLO).  Returns 0 and *out (owned; free with hs_peers_free), or
 * -HS_ECONFIG for a bad n.
 */
int hs_peers_new(struct hs_loop *l, const char *const *addrs, int n, size_t max_frame,
		 const struct hs_peers_ops *ops, void *arg, struct hs_peers **out);

/* Close every link (no callbacks run) and free.  NULL is a no-op. */
void hs_peers_free(struct hs_peers *ps);

/* The links are about to go (hs-serve stops its own peers): from now on
 * a lost link is logged at info level, not as a warning. */
void hs_peers_quiet(struct hs_peers *ps);

int hs_peers_count(const struct hs_peers *ps);
/* 1 if link idx is UP. */
int hs_peers_is_up(const struct hs_peers *ps, int idx);
/* Node id from the peer's HELLO (0 until the first HELLO). */
uint32_t hs_peers_node_id(const struct hs_peers *ps, int idx);
/* The address (static storage in ps). */
const char *hs_peers_addr(const struct hs_peers *ps, int idx);
/* Largest frame the peer accepts (from its HELLO). */
size_t hs_peers_max_frame(const struct hs_peers *ps, int idx);
/* Bytes queued to the peer and not yet sent (0 when down). */
size_t hs_peers_pending(const struct hs_peers *ps, int idx);

/* The output buffer of an UP link (borrowed for this loop turn: append
 * whole frames), or NULL if the link is down. */
struct hs_buf *hs_peers_out(struct hs_peers *ps, int idx);

/* A fresh request id (never 0, never reused). */
uint64_t hs_peers_next_id(struct hs_peers *ps);

/* Send replies with id on link idx to fn(arg, ...); see above for multi. */
void hs_peers_expect(struct hs_peers *ps, int idx, uint64_t id, hs_peers_reply_fn *fn, void *arg,
		     int multi);
/* Drop the registration of id (no callback).  Unknown ids are ignored. */
void hs_peers_forget(struct hs_peers *ps, int idx, uint64_t id);

/* If link idx is down, reconnect now instead of after its backoff. */
void hs_peers_kick(struct hs_peers *ps, int idx);

/* Counters for stats: connects attempted, link losses. */
void hs_peers_counters(const struct hs_peers *ps, int idx, uint64_t *connects, uint64_t *losses);
/* The last failure of link idx (a failed connect, a lost or refused link:
 * a negative code, err.h), 0 if none yet; *when_ms its wall-clock time in
 * unix ms (0 none).  Kept after the link comes back. */
int hs_peers_last_error(const struct hs_peers *ps, int idx, uint64_t *when_ms);
/* Record err (a negative code, err.h) as link idx's last failure, now:
 * for failures the peer reports in a reply rather than by losing the link
 * (-HS_ENOSPC: its disk is nearly full), so `hs-admin cluster status`
 * shows them too. */
void hs_peers_note_error(struct hs_peers *ps, int idx, int err);

#endif

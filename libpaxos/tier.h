/*
 * tier.h - hs-serve's Tier2 requests (libpaxos/tier.c): TIER_INFO,
 * TIER_PUBLISH and STREAM_ALTER (proto_client.h "TIER2").  Part of the
 * serve module (serve.h): single-threaded on hs-serve's event loop; the
 * handlers answer the client themselves (a TIER_INFOS or STATUSES reply,
 * or a closed connection for a malformed body) and return nothing.
 * Frames are borrowed for the call.  A connection closing while a request
 * is in flight drops its reply (the request finishes on its own).
 *
 * The manifest register "t/<log>" and its checks are libpaxos/manifest.h.
 */
#ifndef HS_TIER_H
#define HS_TIER_H

#include <stdint.h>

#include "serve.h"

/* TIER_INFO: per stream, its offload limit and the manifest register. */
void hs_serve_on_tier_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
/* TIER_PUBLISH: checked, idempotent changes of "t/<log>". */
void hs_serve_on_tier_publish(struct serve *sv, struct cconn *cc, const struct hs_frame *f);
/* STREAM_ALTER: retention and offload policies of existing streams. */
void hs_serve_on_stream_alter(struct serve *sv, struct cconn *cc, const struct hs_frame *f);

/* The last LSN of the active stream s that may be offloaded: its
 * released point, capped below the first epoch older than the active one
 * that its log record does not yet list as clean. */
uint64_t hs_serve_tier_limit(const struct sstream *s);

#endif

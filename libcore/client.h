/*
 * client.h - how a client tool (hs-append, hs-cat, hs-tail, hs-admin,
 * hs-offload) reaches hs-serve.
 *
 * The address is -a/HS_ADDR when given (a comma-separated list, tried in
 * order: the first that answers HELLO wins), else the per-user default
 * socket of addr.h, whose directory must belong to the user.  The
 * connection is a blocking struct hs_sconn (syncconn.h); the tools build
 * frames with the proto_client.h encoders and may pipeline freely.
 *
 * REDIRECTS AND FAILOVER (docs/replication.md §7).  Several hs-serve may
 * share the peers; one sequences each stream.  Another answers requests
 * for it with -HS_EREDIRECT and the sequencer's address: in an APPENDED
 * entry's text, or in a RESULT carrying the READ's (SUBSCRIBE's) request
 * id just before its READ_END (reader.h keeps it in rd->redirect).  A tool
 * follows a redirect once per request: it connects to that address
 * (hs_client_reconnect) and sends again what was refused (nothing of it
 * was appended).  When the connection is lost and -a lists several
 * addresses (hs_client_multi), it connects again through the list: reads
 * resume where they stopped; hs-append reports the appends in flight as
 * unknown (they may or may not be stored) and goes on with the rest.
 */
#ifndef HS_CLIENT_H
#define HS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "syncconn.h"

/*
 * Connect and say HELLO as a client.  addrs (borrowed) may be NULL for the
 * default.  On success returns 0 with c open.  On failure returns a
 * negative code and writes a one-line reason for the user into msg
 * (e.g. "cannot reach hs-serve at unix:/run/user/1000/hs/serve.sock: No such
 * file or directory (is hs-serve running?)"); c is then closed.
 * Codes: -HS_EUNAVAIL (nothing answered; exit 69), -HS_ERESOLVE (68),
 * -HS_EVERSION (76), -HS_EPERM (socket directory not ours; 77),
 * -HS_EUSAGE (malformed address; 64).
 */
int hs_client_connect(struct hs_sconn *c, const char *addrs, uint64_t timeout_ms,
		      char *msg, size_t msg_len);

/* Close c (open or not) and hs_client_connect() it to addrs: same
 * arguments, return values and messages. */
int hs_client_reconnect(struct hs_sconn *c, const char *addrs, uint64_t timeout_ms,
			char *msg, size_t msg_len);

/* 1 if addrs (borrowed; NULL or "" is the default) lists more than one
 * address, so losing one hs-serve is worth a failover; else 0. */
int hs_client_multi(const char *addrs);

/* A fresh request id for this process (1, 2, ...). */
uint64_t hs_client_next_id(void);

/*
 * Flush c's output and wait for the reply whose id is `id`, skipping
 * nothing: use it only when exactly one request is outstanding.  Returns 1
 * with *reply filled (body borrowed until the next receive), or a negative
 * code (-HS_ETIMEOUT, -HS_EUNAVAIL when the server closed the connection,
 * -HS_EPROTO for a reply with another id or a malformed frame).  A RESULT
 * reply is returned as is: use hs_client_result() to read its status.
 */
int hs_client_call(struct hs_sconn *c, uint64_t id, struct hs_frame *reply);

/* If f is a RESULT, return its status (<= 0) and copy its message into
 * msg; otherwise return 1.  msg may be NULL. */
int hs_client_result(const struct hs_frame *f, char *msg, size_t msg_len);

#endif

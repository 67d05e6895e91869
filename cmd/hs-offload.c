/*
 * hs-offload - move the released history of streams to Tier2 (DESIGN.md §8,
 * CLI.md; run from cron).
 *
 * ONE STREAM, ONE SEGMENT.  Ask hs-serve where the stream stands
 * (TIER_INFO: log id, offload limit, Tier1 trim, the manifest register).
 * Read (offload point, limit] through the normal read path with gaps
 * (READ with HS_CREAD_GAPS: HOLE, BRIDGE, TRIM and DATALOSS become explicit
 * gap entries of the segment), stopping at the first record younger than
 * the policy's age or when the segment is full, straight into a streaming
 * segment writer (libtier/segment.h) under a key holding a fresh random
 * attempt id.  Then:
 *   1. finish the upload (the object becomes visible atomically);
 *   2. verify it: HEAD for its size, open it (trailer, footer, index) and
 *      compare the footer's BLAKE2b-256 with the writer's;
 *   3. fold the register if it is full (write a manifest object, verify,
 *      TIER_PUBLISH FOLD);
 *   4. publish it (TIER_PUBLISH PUBLISH: hs-serve checks it is contiguous,
 *      released and new, and raises the offload point);
 *   5. only then trim Tier1 (STREAM_TRIM before last_lsn + 1).
 * A crash after 1 or 2 leaves an object no manifest names: invisible to
 * readers, deleted by a later sweep.  A crash after 4 leaves Tier1 holding
 * offloaded records: the next run sees offload > tier1_trim and trims
 * first.  Every step is idempotent, so re-running is always safe.
 *
 * POLICIES.  Each stream's record holds offload_after (age), offload_size
 * (backlog) and retention (hs-admin stream create/alter; STREAM_LIST
 * reports them); --older-than, --offload-size and --retention override
 * them one by one.  Records older than offload_after are offloaded; and
 * once at least offload_size payload bytes are released and not offloaded,
 * everything released is, whatever its age.  hs-serve keeps no byte counts
 * per LSN range, so that backlog is measured by reading it (without a
 * segment writer), stopping as soon as offload_size bytes were seen: at
 * most offload_size bytes read per stream and run, and none when the age
 * policy already takes everything.  --min-size is no trigger: it only
 * keeps any segment smaller than it from being written.
 *
 * RETENTION.  With a retention policy, whole objects (segments, or folded
 * manifest objects with all their segments) whose newest record is older
 * than it are dropped from the manifest (TIER_PUBLISH EXPIRE) and then
 * deleted.
 *
 * SWEEP.  Objects under logs/<log>/ that no manifest names (uploads of
 * crashed or refused runs, leftovers of an expiry) and that are older than
 * the grace period (their creation time is in their key) are deleted.  A
 * run over all streams (no --stream) also lists logs/ as a whole and
 * deletes the objects, older than the grace period, of every log that no
 * stream has any more (deleted streams: their log id is never reused).
 * The set of live logs is the STREAM_LIST taken before the listing, so a
 * stream created after it is missing from the set; but its log id is new
 * and its objects are written only after it exists, hence after that
 * STREAM_LIST, so they are younger than the grace period (for clocks
 * skewed by less than it) and stay.  A listing that did not give every
 * stream's log id, or no stream at all (a fresh cluster pointed at an old
 * destination?), disables this part.  The manifest register t/<log> of a
 * deleted stream stays (registers are never deleted); nothing reads it.
 *
 * REDIRECTS AND FAILOVER (client.h).  TIER_INFO, TIER_PUBLISH, STREAM_TRIM
 * and READ of a stream another hs-serve sequences are refused with
 * -HS_EREDIRECT and its address: hs-offload connects there and sends the
 * request again (once per request; a read resumes where it stopped) and
 * stays connected there for the following streams.  A lost connection,
 * with -a listing several addresses, is connected again through the list
 * and the request sent again: every request hs-offload makes is
 * idempotent.
 *
 * OUTPUT.  Silent on success (cron mails only failures); progress lines on
 * stderr only when stderr is a tty; -v prints one summary line; --dry-run
 * prints the plan on stdout and changes nothing.  One failed stream does
 * not stop the others; the exit status is the first failure's.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "backend.h"
#include "buf.h"
#include "cli.h"
#include "client.h"
#include "err.h"
#include "log.h"
#include "manifest.h"
#include "net.h"
#include "parse.h"
#include "pos.h"
#include "proto.h"
#include "proto_client.h"
#include "reader.h"
#include "segment.h"
#include "syncconn.h"

#define MAX_GLOBS 64
#define SEG_SIZE_DEFAULT (256ull << 20)
#define GRACE_DEFAULT (3600ull * 1000)
#define LIST_PAGE 1000
#define MAX_HOPS 4             /* redirects and failovers per read */

static const char usage_text[] =
	"usage: hs-offload [options] [--stream GLOB]... [--to URL] [--older-than DUR]\n"
	"                  [--offload-size SIZE] [--retention DUR] [--min-size SIZE]\n"
	"                  [--dry-run] [--lock FILE]\n"
	"       hs-offload [options] --sweep | --verify\n"
	"       hs-offload -h | --help | -V | --version\n";

static const char help_text[] =
	"hs-offload - move the released history of streams to Tier2 storage\n"
	"\n"
	"usage: hs-offload [options]\n"
	"\n"
	"Offloads every selected stream's released records older than its\n"
	"offload-after policy (or all of them once its offload-size is waiting) into\n"
	"segments at URL, publishes them in the stream's manifest, then trims them\n"
	"from Tier1; applies retention to Tier2 and sweeps orphaned objects and those\n"
	"of deleted streams.  Silent on success.\n"
	"\n"
	"options:\n"
	"      --stream GLOB          only streams matching GLOB (repeatable; default all)\n"
	"      --to URL               file:///DIR, s3://BUCKET/PREFIX, webhdfs://HOST:PORT/PATH\n"
	"                             (HS_TIER_URL)\n"
	"      --older-than DUR       offload records older than DUR (overrides the\n"
	"                             streams' offload-after; 0 = everything released)\n"
	"      --offload-size SIZE    offload everything released once SIZE bytes wait\n"
	"                             (overrides the streams' offload-size; 0 = no\n"
	"                             size trigger)\n"
	"      --retention DUR        delete Tier2 segments older than DUR (overrides\n"
	"                             the streams' retention; 0 = keep)\n"
	"      --min-size SIZE        write no segment with less than SIZE payload bytes\n"
	"      --segment-size SIZE    close a segment at SIZE payload bytes (default 256M)\n"
	"      --key-file FILE        encrypt segments with the 32-byte key in FILE\n"
	"      --endpoint URL         S3 endpoint (default AWS; HS_S3_ENDPOINT)\n"
	"      --region R             S3 region (AWS_REGION, else us-east-1)\n"
	"      --path-style           S3 path-style addressing\n"
	"      --credentials FILE     S3 key id and secret (else AWS_ACCESS_KEY_ID and\n"
	"                             AWS_SECRET_ACCESS_KEY)\n"
	"      --grace DUR            sweep only orphans older than DUR (default 1h)\n"
	"      --sweep                only sweep orphaned objects (and, without --stream,\n"
	"                             those of deleted streams)\n"
	"      --verify               only check every published segment end to end\n"
	"      --dry-run              print what would be done; change nothing\n"
	"      --lock FILE            hold an exclusive lock on FILE; exit 75 if held\n"
	"  -a, --addr ADDR[,ADDR]...  server: unix:PATH or HOST:PORT, a list fails over\n"
	"                             (HS_ADDR)\n"
	"  -t, --timeout DUR          per request, default 5s (HS_TIMEOUT)\n"
	"      --config FILE          configuration file (HS_CONFIG)\n"
	"  -X KEY=VAL                 override one configuration key\n"
	"  -v, --verbose              print one summary line (repeat for more)\n"
	"  -q, --quiet                less on stderr\n"
	"  -h, --help                 show this help and exit\n"
	"  -V, --version              show the version and exit\n"
	"\n"
	"Exit status: 0 done, 64 usage, 65 bad data, 66 no such stream, 69 server\n"
	"unreachable, 70 internal error, 74 I/O error or a damaged segment, 75 timeout\n"
	"or lock held, 76 protocol mismatch, 77 permission denied (bad credentials),\n"
	"78 bad configuration.\n";

enum {
	OPT_STREAM = HS_OPT_FIRST_PRIVATE,
	OPT_TO,
	OPT_OLDER,
	OPT_RETENTION,
	OPT_MIN_SIZE,
	OPT_SEG_SIZE,
	OPT_KEY_FILE,
	OPT_ENDPOINT,
	OPT_REGION,
	OPT_PATH_STYLE,
	OPT_CREDS,
	OPT_GRACE,
	OPT_SWEEP,
	OPT_VERIFY,
	OPT_DRY_RUN,
	OPT_LOCK,
	OPT_OFFLOAD_SIZE,
};

/* A stream to work on, from STREAM_LIST. */
struct target {
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
	uint64_t offload_after_ms, retention_ms, offload_size;
};

struct offload {
	struct hs_cli cli;
	const char *globs[MAX_GLOBS];
	int nglobs;
	const char *url, *key_file, *lock_path;
	struct hs_tier_opts topts;
	int64_t older_ms, retention_ms;   /* -1: the stream's policy */
	int64_t offload_size;             /* -1: the stream's policy */
	uint64_t min_size, seg_size, grace_ms;
	bool dry_run, sweep_only, verify_only, progress;
	const char *crash_at;             /* HS_OFFLOAD_CRASH_AT (tests only) */

	struct hs_tier *tier;
	uint8_t key[HS_SEG_KEYLEN];
	bool have_key;
	struct hs_sconn c;
	bool connected;
	struct hs_buf req;                /* the request, kept to send it again */
	char redirect[HS_NET_ADDR_MAX];   /* the last reply's RESULT -HS_EREDIRECT */
	int status;                       /* first failure's exit status */
	/* Every stream's log id (sorted), for the sweep of deleted streams;
	 * logs_ok when the listing gave them all. */
	uint64_t *logs;
	size_t nlogs;
	bool logs_ok;

	/* summary */
	uint64_t streams, segments, records, bytes, swept, expired, verified;
};

/* ---- small helpers ---------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Remember the first failure; say why.  Returns status. */
static int fail(struct offload *o, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct offload *o, int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", o->cli.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (!o->status)
		o->status = status;
	return status;
}

/* A backend failure on the tier: its one-line text. */
static int tier_fail(struct offload *o, int err, const char *what)
{
	const char *why = hs_tier_error(o->tier);

	return fail(o, hs_exit_status(err), "%s: %s", what, *why ? why : hs_strerror(err));
}

/* The test hook: HS_OFFLOAD_CRASH_AT=upload|publish|trim kills the process
 * right after that step, so the tests can show a crash there is safe. */
static void crash_point(struct offload *o, const char *step)
{
	if (o->crash_at && !strcmp(o->crash_at, step))
		raise(SIGKILL);
}

static void progress(struct offload *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void progress(struct offload *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->progress)
		return;
	fprintf(stderr, "%s: ", o->cli.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A valid LSN position at or after lsn (LSNs with esn 0 do not exist). */
static struct hs_pos lsn_pos(uint64_t lsn)
{
	struct hs_pos p = { .kind = HS_POS_LSN, .lsn = lsn };

	if (!HS_LSN_ESN(lsn))
		p.lsn = HS_LSN(HS_LSN_EPOCH(lsn), 1);
	return p;
}

/* eNnM for messages (in a static rotating buffer: up to 4 per call). */
static const char *lsn_str(uint64_t lsn)
{
	static char buf[4][HS_POS_FMT_MAX];
	static int i;

	i = (i + 1) % 4;
	if (!HS_LSN_EPOCH(lsn) || !HS_LSN_ESN(lsn))
		snprintf(buf[i], sizeof(buf[i]), "%" PRIu64, lsn);
	else
		hs_lsn_fmt(buf[i], sizeof(buf[i]), lsn);
	return buf[i];
}

static uint64_t random64(void)
{
	uint64_t v;

	randombytes_buf(&v, sizeof(v));
	return v;
}

/* ---- requests ------------------------------------------------------------------ */

static int transport_fail(struct offload *o, int r)
{
	if (r == 0 || r == -ECONNRESET || r == -EPIPE)
		r = -HS_EUNAVAIL;
	if (r == -HS_EUNAVAIL)
		return fail(o, hs_exit_status(r), "hs-serve closed the connection");
	return fail(o, hs_exit_status(r), "%s", hs_strerror(r));
}

/* Connect again to dest: a redirect's address (o->redirect or a reader's;
 * if it does not answer, -a's list instead) or -a's list (o->cli.addr)
 * after a lost connection.  Returns 0 or the exit status after saying
 * why. */
static int hop(struct offload *o, const char *why, const char *dest)
{
	char msg[512];
	bool redirect = dest != o->cli.addr;
	int r;

	if (o->cli.verbosity > 1 || o->progress)
		fprintf(stderr, "%s: %s; connecting to %s\n", o->cli.prog, why,
			dest ? dest : "the default address");
	r = hs_client_reconnect(&o->c, dest, o->cli.timeout_ms, msg, sizeof(msg));
	if (r < 0 && redirect)
		r = hs_client_reconnect(&o->c, o->cli.addr, o->cli.timeout_ms, msg, sizeof(msg));
	o->connected = r == 0;
	return r < 0 ? fail(o, hs_exit_status(r), "%s", msg) : 0;
}

/* Send o->req (built by the caller after hs_buf_reset; kept so that it
 * can be sent again) and wait for the reply of type want into *f.  The
 * RESULT -HS_EREDIRECT that precedes a reply whose entries were redirected
 * leaves its address in o->redirect (else it is ""): the caller follows it
 * with follow_redirect().  A lost connection, when -a lists several
 * addresses, is connected again through the list and the request sent
 * again, once.  Returns 0 or the exit status after saying why. */
static int call(struct offload *o, uint64_t id, uint16_t want, struct hs_frame *f)
{
	char msg[512];
	int r, st;

	o->redirect[0] = 0;
	for (bool again = true;; again = false) {
		if (!o->connected && (st = hop(o, "not connected", o->cli.addr)))
			return st;
		hs_buf_append(hs_sconn_out(&o->c), o->req.data, o->req.len);
		r = hs_client_call(&o->c, id, f);
		/* The first address named is the one followed. */
		while (r == 1 && f->type == HS_MSG_RESULT &&
		       hs_client_result(f, o->redirect[0] ? NULL : o->redirect,
					sizeof(o->redirect)) == -HS_EREDIRECT)
			r = hs_client_call(&o->c, id, f);
		if ((r == -HS_EUNAVAIL || r == -HS_ETIMEOUT) && again &&
		    hs_client_multi(o->cli.addr)) {
			if ((st = hop(o, r == -HS_ETIMEOUT ? hs_strerror(r)
						   : "hs-serve closed the connection",
				      o->cli.addr)))
				return st;
			continue;
		}
		break;
	}
	if (r < 0) {
		o->connected = false;
		return transport_fail(o, r);
	}
	if (f->type == want)
		return 0;
	r = hs_client_result(f, msg, sizeof(msg));
	if (r < 0)
		return fail(o, hs_exit_status(r), "%s", *msg ? msg : hs_strerror(r));
	return fail(o, EX_PROTOCOL, "protocol error: %s answered by %s", hs_msg_name(want),
		    hs_msg_name(f->type));
}

/* An entry of the last reply was refused with status: if it is the first
 * -HS_EREDIRECT of this request (*again) and the reply named the
 * sequencer, connect there and return 1 (send the request again); else
 * 0, or the exit status (< 0 never: *st holds it) after a failed hop. */
static int follow_redirect(struct offload *o, int32_t status, bool *again, int *st)
{
	char dest[sizeof(o->redirect)];

	*st = 0;
	if (status != -HS_EREDIRECT || !*again || !o->redirect[0])
		return 0;
	*again = false;
	memcpy(dest, o->redirect, sizeof(dest));
	*st = hop(o, "redirected to the stream's sequencer", dest);
	return *st ? 0 : 1;
}

/* One-entry STATUSES request already in o->req: its status and value. */
static int call_status(struct offload *o, uint64_t id, uint16_t type, int32_t *status,
		       uint64_t *value)
{
	struct hs_frame f;
	struct hs_clist l;
	struct hs_status_ent e;
	bool again = true;
	int st;

	do {
		if ((st = call(o, id, HS_MSG_STATUSES, &f)))
			return st;
		if (hs_msg_clist_dec(HS_MSG_STATUSES, f.body, f.body_len, &l) < 0 ||
		    hs_statuses_next(&l, &e) != 1)
			return fail(o, EX_PROTOCOL, "protocol error: malformed reply to %s",
				    hs_msg_name(type));
	} while (follow_redirect(o, e.status, &again, &st));
	if (st)
		return st;
	*status = e.status;
	*value = e.value;
	return 0;
}

/* The stream's Tier2 state: *ti (man copied into *man, owned).  Returns 0,
 * or an exit status after saying why. */
static int tier_info(struct offload *o, const struct target *t, struct hs_tier_info *ti,
		     struct hs_man *man)
{
	uint64_t id = hs_client_next_id();
	struct hs_msg_wr w;
	struct hs_frame f;
	struct hs_clist l;
	struct hs_tier_infos_ent e;
	bool again = true;
	int st, rc;

	hs_buf_reset(&o->req);
	hs_msg_tier_info_begin(&w, &o->req, id);
	hs_msg_name_add(&w, t->name, t->nlen);
	hs_msg_wr_end(&w);
	do {
		if ((st = call(o, id, HS_MSG_TIER_INFOS, &f)))
			return st;
		if (hs_msg_clist_dec(HS_MSG_TIER_INFOS, f.body, f.body_len, &l) < 0 ||
		    hs_tier_infos_next(&l, &e) != 1)
			return fail(o, EX_PROTOCOL, "protocol error: malformed TIER_INFOS");
	} while (follow_redirect(o, e.status, &again, &st));
	if (st)
		return st;
	if (e.status)
		return fail(o, hs_exit_status(e.status), "%s: %s", t->name,
			    hs_strerror(e.status));
	*ti = e.info;
	ti->man = NULL;
	rc = hs_man_dec(e.info.man, e.info.man_len, man);
	if (rc < 0) {
		hs_man_free(man);
		return fail(o, hs_exit_status(rc), "%s: the Tier2 manifest of log %" PRIu64
			    " is malformed", t->name, ti->log);
	}
	return 0;
}

static int publish(struct offload *o, const struct target *t, uint64_t log, uint8_t op,
		   const struct hs_buf *body, uint64_t *offload)
{
	uint64_t id = hs_client_next_id();
	struct hs_msg_wr w;
	struct hs_tier_pub_ent e = {
		.stream = t->name, .stream_len = t->nlen, .log = log, .op = op,
		.body = body->data, .body_len = (uint32_t)body->len,
	};
	int32_t status;
	int st;

	hs_buf_reset(&o->req);
	hs_msg_tier_publish_begin(&w, &o->req, id);
	hs_msg_tier_publish_add(&w, &e);
	hs_msg_wr_end(&w);
	if ((st = call_status(o, id, HS_MSG_TIER_PUBLISH, &status, offload)))
		return st;
	if (status)
		return fail(o, hs_exit_status(status), "%s: publishing to the Tier2 manifest: %s",
			    t->name, hs_strerror(status));
	return 0;
}

/* STREAM_TRIM every LSN <= last. */
static int trim_tier1(struct offload *o, const struct target *t, uint64_t last)
{
	uint64_t id = hs_client_next_id(), value;
	struct hs_msg_wr w;
	struct hs_pos before = lsn_pos(last + 1);
	int32_t status;
	int st;

	hs_buf_reset(&o->req);
	hs_msg_stream_trim_begin(&w, &o->req, id);
	hs_msg_stream_trim_add(&w, t->name, t->nlen, &before);
	hs_msg_wr_end(&w);
	if ((st = call_status(o, id, HS_MSG_STREAM_TRIM, &status, &value)))
		return st;
	if (status)
		return fail(o, hs_exit_status(status), "%s: trimming Tier1: %s", t->name,
			    hs_strerror(status));
	return 0;
}

static int logcmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every stream matching the globs, with its policies, into *out (owned);
 * every stream's log id into o->logs (o->logs_ok unless one had no info). */
static int list_streams(struct offload *o, struct target **out, size_t *n)
{
	char cursor[HS_NAME_MAX + 1] = "";
	uint8_t clen = 0;
	size_t cap = 0, capl = 0;

	*out = NULL;
	*n = 0;
	o->logs_ok = true;
	for (;;) {
		uint64_t id = hs_client_next_id();
		struct hs_list_req m = { .max = LIST_PAGE, .flags = HS_LIST_INFO,
					 .cursor = cursor, .cursor_len = clen };
		struct hs_frame f;
		struct hs_clist l;
		struct hs_streams_ent e;
		int st;

		hs_buf_reset(&o->req);
		hs_msg_stream_list_enc(&o->req, id, &m);
		if ((st = call(o, id, HS_MSG_STREAMS, &f)))
			return st;
		if (hs_msg_clist_dec(HS_MSG_STREAMS, f.body, f.body_len, &l) < 0)
			return fail(o, EX_PROTOCOL, "protocol error: malformed STREAMS");
		while (hs_streams_next(&l, &e) == 1) {
			struct target *t;
			bool match = !o->nglobs;

			memcpy(cursor, e.stream, e.stream_len);
			cursor[e.stream_len] = 0;
			clen = e.stream_len;
			for (int i = 0; i < o->nglobs && !match; i++)
				match = !fnmatch(o->globs[i], cursor, 0);
			if (e.status || !e.has_info) {
				o->logs_ok = false;
				continue;
			}
			if (o->nlogs == capl) {
				capl = capl ? capl * 2 : 64;
				o->logs = hs_xrealloc(o->logs, capl * sizeof(*o->logs));
			}
			o->logs[o->nlogs++] = e.info.log;
			if (!match)
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				*out = hs_xrealloc(*out, cap * sizeof(**out));
			}
			t = &(*out)[(*n)++];
			memcpy(t->name, cursor, clen + 1);
			t->nlen = clen;
			t->offload_after_ms = e.info.attrs.offload_after_ms;
			t->retention_ms = e.info.attrs.retention_ms;
			t->offload_size = e.info.attrs.offload_size;
		}
		if (!(l.flags & HS_LIST_MORE) || !l.n) {
			qsort(o->logs, o->nlogs, sizeof(*o->logs), logcmp);
			return 0;
		}
	}
}

/* ---- reading into a segment ------------------------------------------------------ */

struct seg_read {
	struct offload *o;
	struct hs_seg_writer *w;  /* NULL in a dry run */
	uint64_t cutoff_ms;       /* records with ts > cutoff stay; 0 none */
	uint64_t max_bytes;
	uint64_t first, last;     /* LSNs added, 0 none */
	uint64_t records, bytes;
	int err;                  /* a writer error */
};

static int on_record(void *arg, size_t idx, const struct hs_record *r)
{
	struct seg_read *s = arg;
	int rc;

	if (s->cutoff_ms && r->ts_ms > s->cutoff_ms)
		return HS_READER_STOP; /* too young: this and all after stay */
	if (s->w && (rc = hs_seg_add_record(s->w, r->lsn, r->ts_ms, r->data, r->len)) < 0) {
		s->err = rc;
		return rc;
	}
	if (!s->first)
		s->first = r->lsn;
	s->last = r->lsn;
	s->records++;
	s->bytes += r->len;
	return s->bytes >= s->max_bytes ? HS_READER_STOP : 0;
}

static int on_gap(void *arg, size_t idx, const struct hs_fmt_gap *g)
{
	struct seg_read *s = arg;
	int rc;

	if (s->w && (rc = hs_seg_add_gap(s->w, g->lo, g->hi, (unsigned)g->kind)) < 0) {
		s->err = rc;
		return rc;
	}
	if (!s->first)
		s->first = g->lo;
	s->last = g->hi;
	return 0;
}

static int on_flush(void *arg)
{
	return 0;
}

static const struct hs_reader_ops seg_ops = { on_record, on_gap, on_flush };

/* Read [from, limit] of t into s (the writer may be NULL).  Returns 0 or an
 * exit status after saying why. */
static int read_range(struct offload *o, const struct target *t, const struct hs_pos *from,
		      uint64_t limit, struct seg_read *s)
{
	struct hs_reader rd;
	struct hs_pos until = lsn_pos(limit + 1);
	int rc, st = 0;

	hs_reader_init(&rd, HS_CREAD_GAPS, HS_READER_WIN_RECORDS, HS_READER_WIN_BYTES,
		       (int)o->cli.timeout_ms, &seg_ops, s);
	hs_reader_add(&rd, t->name, from, &until, 0);
	for (int hops = 0;; hops++) {
		size_t idx;

		rd.redirect[0] = 0;
		rc = hs_reader_start(&rd, &o->c);
		if (rc == 0)
			rc = hs_reader_run(&rd, NULL, NULL);
		/* As hs-cat: follow a redirect, or fail over through an -a
		 * list; the read resumes where it stopped, so the segment
		 * goes on seamlessly. */
		if (hops >= MAX_HOPS || s->err)
			break;
		if (rc == -HS_EREDIRECT && rd.redirect[0]) {
			if ((st = hop(o, "redirected to the stream's sequencer", rd.redirect)))
				break;
		} else if ((rc == -HS_EUNAVAIL || rc == -HS_ETIMEOUT) &&
			   hs_client_multi(o->cli.addr) && hs_reader_status(&rd, &idx) != rc) {
			if ((st = hop(o, hs_strerror(rc), o->cli.addr)))
				break;
		} else {
			break;
		}
	}
	if (st) {
		hs_reader_free(&rd);
		return st;
	}
	if (rc == HS_READER_STOP) {
		/* Stopped early on purpose: end the read politely so the
		 * connection can carry the publish. */
		rc = hs_reader_finish(&rd, (int)o->cli.timeout_ms);
	}
	if (s->err)
		st = fail(o, hs_exit_status(s->err), "%s: writing the segment: %s", t->name,
			  *hs_tier_error(o->tier) ? hs_tier_error(o->tier) : hs_strerror(s->err));
	else if (rc < 0)
		st = fail(o, hs_exit_status(rc), "%s: reading: %s", t->name,
			  rd.why && rc == -HS_EPROTO ? rd.why : hs_strerror(rc));
	hs_reader_free(&rd);
	return st;
}

/* ---- one segment ------------------------------------------------------------------- */

/* Fold the first HS_MAN_FOLD_AT entries of man into a manifest object. */
static int fold(struct offload *o, const struct target *t, uint64_t log, struct hs_man *man)
{
	struct hs_buf obj = { 0 }, body = { 0 }, back = { 0 };
	struct hs_man_ref r = { 0 };
	char key[HS_MAN_KEY_MAX];
	uint64_t offload;
	int rc, st = 0;

	r.nentries = HS_MAN_FOLD_AT;
	r.first_lsn = man->entries[0].first_lsn;
	r.last_lsn = man->entries[HS_MAN_FOLD_AT - 1].last_lsn;
	r.created_ms = now_ms();
	r.attempt = random64();
	hs_man_obj_enc(log, t->name, man->entries, HS_MAN_FOLD_AT, r.created_ms, r.attempt, &obj);
	r.size = obj.len;
	crypto_generichash(r.hash, 32, obj.data, obj.len, NULL, 0);
	hs_man_obj_key(key, log, &r);
	if ((rc = hs_tier_put(o->tier, key, obj.data, obj.len, HS_TIER_EXCL)) < 0) {
		st = tier_fail(o, rc, "writing a manifest object");
		goto out;
	}
	if ((rc = hs_tier_get(o->tier, key, 0, 0, &back)) < 0) {
		st = tier_fail(o, rc, "reading back a manifest object");
		goto out;
	}
	if (back.len != obj.len || memcmp(back.data, obj.data, obj.len)) {
		st = fail(o, EX_IOERR, "manifest object '%s' reads back different", key);
		goto out;
	}
	hs_man_ref_enc(&r, &body);
	if ((st = publish(o, t, log, HS_TIER_OP_FOLD, &body, &offload)))
		goto out;
	if ((rc = hs_man_fold(man, &r)) < 0)
		st = fail(o, EX_SOFTWARE, "%s: folding the manifest: %s", t->name,
			  hs_strerror(rc));
out:
	hs_buf_free(&obj);
	hs_buf_free(&body);
	hs_buf_free(&back);
	return st;
}

/* Offload one segment of t from after man->offload.  *done is set when
 * nothing (more) is eligible.  Returns 0 or an exit status. */
static int one_segment(struct offload *o, const struct target *t,
		       const struct hs_tier_info *ti, struct hs_man *man, uint64_t cutoff_ms,
		       bool *done)
{
	uint64_t base = man->offload > ti->tier1_trim ? man->offload : ti->tier1_trim;
	struct hs_pos from = { .kind = HS_POS_HEAD };
	struct seg_read s = { .o = o, .cutoff_ms = cutoff_ms, .max_bytes = o->seg_size };
	struct hs_seg_wopts wo = { .key = o->have_key ? o->key : NULL };
	struct hs_man_entry e = { 0 };
	struct hs_seg_info info;
	struct hs_seg *seg = NULL;
	struct hs_seg_ropts ro = { .key = o->have_key ? o->key : NULL };
	struct hs_buf body = { 0 };
	char key[HS_MAN_KEY_MAX];
	uint64_t size, offload;
	int rc, st;

	*done = true;
	if (base >= ti->limit)
		return 0;
	if (base)
		from = lsn_pos(base + 1);
	if (o->dry_run) {
		if ((st = read_range(o, t, &from, ti->limit, &s)))
			return st;
		if (s.first && s.bytes >= o->min_size)
			printf("offload %s %s..%s records %" PRIu64 " bytes %" PRIu64 "\n",
			       t->name, lsn_str(s.first), lsn_str(s.last), s.records, s.bytes);
		return 0;
	}
	e.created_ms = now_ms();
	e.attempt = random64();
	hs_man_seg_key(key, ti->log, &e);
	if ((rc = hs_seg_writer_open(o->tier, key, &wo, &s.w)) < 0)
		return tier_fail(o, rc, "starting a segment");
	if ((st = read_range(o, t, &from, ti->limit, &s))) {
		hs_seg_abort(s.w);
		return st;
	}
	if (!s.first || s.bytes < o->min_size) {
		/* Nothing eligible, or less than the size threshold: wait for
		 * more rather than write a small segment. */
		hs_seg_abort(s.w);
		return 0;
	}
	if ((rc = hs_seg_finish(s.w, &info)) < 0)
		return tier_fail(o, rc, "uploading a segment");
	crash_point(o, "upload");

	/* Verify: the size the backend reports, then trailer, footer and
	 * index read back, and the footer's hash equal to the writer's. */
	if ((rc = hs_tier_head(o->tier, key, &size)) < 0)
		return tier_fail(o, rc, "verifying a segment");
	if (size != info.size)
		return fail(o, EX_IOERR, "segment '%s': %" PRIu64 " bytes stored, %" PRIu64
			    " written", key, size, info.size);
	ro.size = size;
	if ((rc = hs_seg_open(o->tier, key, &ro, &seg)) < 0)
		return tier_fail(o, rc, "verifying a segment");
	rc = memcmp(hs_seg_info(seg)->hash, info.hash, 32) ||
	     hs_seg_info(seg)->first_lsn != s.first || hs_seg_info(seg)->last_lsn != s.last;
	hs_seg_close(seg);
	if (rc)
		return fail(o, EX_IOERR, "segment '%s' reads back different", key);

	if (man->nentries >= HS_MAN_FOLD_AT && (st = fold(o, t, ti->log, man)))
		return st;

	/* The entry covers everything the read covered, from its start: LSNs
	 * in [base + 1, s.first) do not exist (no epoch or sequence number
	 * there), so the manifest stays contiguous. */
	e.first_lsn = base + 1;
	e.last_lsn = s.last;
	e.first_ts = info.first_ts;
	e.last_ts = info.last_ts;
	e.size = info.size;
	e.records = info.nrecords;
	memcpy(e.hash, info.hash, 32);
	hs_man_entry_enc(&e, &body);
	st = publish(o, t, ti->log, HS_TIER_OP_PUBLISH, &body, &offload);
	hs_buf_free(&body);
	if (st)
		return st;
	crash_point(o, "publish");
	if ((rc = hs_man_publish(man, &e, ti->tier1_trim, ti->limit)) < 0)
		return fail(o, EX_SOFTWARE, "%s: manifest out of step: %s", t->name,
			    hs_strerror(rc));
	if ((st = trim_tier1(o, t, s.last)))
		return st;
	crash_point(o, "trim");
	o->segments++;
	o->records += s.records;
	o->bytes += s.bytes;
	progress(o, "%s: offloaded %s..%s (%" PRIu64 " records, %" PRIu64 " bytes)", t->name,
		 lsn_str(s.first), lsn_str(s.last), s.records, s.bytes);
	*done = s.last >= ti->limit || s.bytes < o->seg_size;
	return 0;
}

/* Is at least size bytes of payload released and not offloaded?  Reads
 * (offload point, limit] without a writer and stops at size bytes, so it
 * costs at most size bytes.  Returns 0 with *yes set, or an exit status. */
static int backlog_reaches(struct offload *o, const struct target *t,
			   const struct hs_tier_info *ti, const struct hs_man *man, uint64_t size,
			   bool *yes)
{
	uint64_t base = man->offload > ti->tier1_trim ? man->offload : ti->tier1_trim;
	struct hs_pos from = { .kind = HS_POS_HEAD };
	struct seg_read s = { .o = o, .max_bytes = size };
	int st;

	*yes = false;
	if (base >= ti->limit)
		return 0;
	if (base)
		from = lsn_pos(base + 1);
	if ((st = read_range(o, t, &from, ti->limit, &s)))
		return st;
	*yes = s.bytes >= size;
	if (*yes)
		progress(o, "%s: at least %" PRIu64 " bytes wait for Tier2: offloading them all",
			 t->name, size);
	return 0;
}

/* ---- the whole manifest ------------------------------------------------------------ */

/* Fetch the manifest object of ref r, check its hash and decode it into
 * *obj (free with hs_man_obj_free, also after a failure). */
static int load_obj(struct offload *o, uint64_t log, const struct hs_man_ref *r,
		    struct hs_man_obj *obj)
{
	struct hs_buf b = { 0 };
	char key[HS_MAN_KEY_MAX];
	uint8_t h[32];
	int rc;

	memset(obj, 0, sizeof(*obj));
	hs_man_obj_key(key, log, r);
	if ((rc = hs_tier_get(o->tier, key, 0, 0, &b)) < 0) {
		rc = tier_fail(o, rc, "reading a manifest object");
		goto out;
	}
	crypto_generichash(h, 32, b.data, b.len, NULL, 0);
	if (b.len != r->size || memcmp(h, r->hash, 32)) {
		rc = fail(o, EX_IOERR, "manifest object '%s' is damaged (hash mismatch)", key);
		goto out;
	}
	if ((rc = hs_man_obj_dec(b.data, b.len, obj)) < 0 || obj->log != log ||
	    obj->nentries != r->nentries || obj->first_lsn != r->first_lsn ||
	    obj->last_lsn != r->last_lsn) {
		rc = fail(o, EX_IOERR, "manifest object '%s' is malformed", key);
		goto out;
	}
	rc = 0;
out:
	hs_buf_free(&b);
	return rc;
}

/* Every entry of the manifest, folded ones first, into *out (owned). */
static int all_entries(struct offload *o, uint64_t log, const struct hs_man *man,
		       struct hs_man_entry **out, size_t *n)
{
	size_t cap = man->nentries;
	int st;

	*n = 0;
	for (uint16_t i = 0; i < man->nrefs; i++)
		cap += man->refs[i].nentries;
	*out = hs_xcalloc(cap ? cap : 1, sizeof(**out));
	for (uint16_t i = 0; i < man->nrefs; i++) {
		struct hs_man_obj obj;

		st = load_obj(o, log, &man->refs[i], &obj);
		if (!st) {
			memcpy(*out + *n, obj.entries, obj.nentries * sizeof(**out));
			*n += obj.nentries;
		}
		hs_man_obj_free(&obj);
		if (st)
			return st;
	}
	memcpy(*out + *n, man->entries, man->nentries * sizeof(**out));
	*n += man->nentries;
	return 0;
}

/* ---- retention ---------------------------------------------------------------------- */

/* Drop from the manifest, then delete, the objects whose newest record is
 * older than cutoff: a prefix of whole refs, then whole entries. */
static int expire(struct offload *o, const struct target *t, uint64_t log, struct hs_man *man,
		  uint64_t cutoff)
{
	uint64_t lsn = 0, offload;
	uint16_t nr = 0, ne = 0;
	struct hs_buf body = { 0 };
	char key[HS_MAN_KEY_MAX];
	int st = 0, rc;

	/* A ref expires when its last segment does. */
	for (; nr < man->nrefs; nr++) {
		struct hs_man_obj obj;
		bool old;

		if ((st = load_obj(o, log, &man->refs[nr], &obj))) {
			hs_man_obj_free(&obj);
			return st;
		}
		old = obj.entries[obj.nentries - 1].last_ts < cutoff;
		hs_man_obj_free(&obj);
		if (!old)
			break;
		lsn = man->refs[nr].last_lsn;
	}
	if (nr == man->nrefs)
		for (; ne < man->nentries && man->entries[ne].last_ts < cutoff; ne++)
			lsn = man->entries[ne].last_lsn;
	if (!lsn)
		return 0;
	if (o->dry_run) {
		printf("expire %s ..%s objects %u\n", t->name, lsn_str(lsn), nr + ne);
		return 0;
	}
	hs_w64(&body, lsn);
	st = publish(o, t, log, HS_TIER_OP_EXPIRE, &body, &offload);
	hs_buf_free(&body);
	if (st)
		return st;
	/* Out of the manifest: delete them now (a failure leaves orphans for
	 * the sweep). */
	for (uint16_t i = 0; i < nr; i++) {
		struct hs_man_obj obj;

		if (load_obj(o, log, &man->refs[i], &obj) == 0)
			for (uint32_t j = 0; j < obj.nentries; j++) {
				hs_man_seg_key(key, log, &obj.entries[j]);
				if ((rc = hs_tier_delete(o->tier, key)) < 0)
					st = tier_fail(o, rc, "deleting an expired segment");
			}
		hs_man_obj_free(&obj);
		hs_man_obj_key(key, log, &man->refs[i]);
		if ((rc = hs_tier_delete(o->tier, key)) < 0)
			st = tier_fail(o, rc, "deleting an expired manifest object");
	}
	for (uint16_t i = 0; i < ne; i++) {
		hs_man_seg_key(key, log, &man->entries[i]);
		if ((rc = hs_tier_delete(o->tier, key)) < 0)
			st = tier_fail(o, rc, "deleting an expired segment");
	}
	o->expired += nr + ne;
	if ((rc = hs_man_expire(man, lsn)) < 0 && !st)
		st = fail(o, EX_SOFTWARE, "%s: manifest out of step: %s", t->name, hs_strerror(rc));
	return st;
}

/* ---- sweep ----------------------------------------------------------------------------- */

struct sweep {
	struct offload *o;
	char **keys;              /* sorted: every key the manifest names */
	size_t nkeys;
	bool dead_only;           /* only keys of logs not in o->logs */
	char **del;               /* orphans to delete (owned) */
	size_t ndel, capdel;
	uint64_t before_ms;       /* orphans created before this */
};

static int keycmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The creation time in an object key ("<prefix>/seg/<created>-<attempt>"
 * or "<prefix>/man/<first>-<last>-<created>-<attempt>"), or 0 if the key
 * is not one of ours. */
static uint64_t key_created(const char *key)
{
	const char *s = strrchr(key, '/'), *dash;
	unsigned long long v;
	char *end;
	int fields = 0;

	if (!s)
		return 0;
	s++;
	for (const char *p = s; *p; p++)
		fields += *p == '-';
	if (fields != 1 && fields != 3)
		return 0;
	dash = strrchr(s, '-');
	/* created is the field before the last one */
	for (s = dash - 1; s > key && s[-1] != '-' && s[-1] != '/'; s--)
		;
	v = strtoull(s, &end, 16);
	return end == dash ? (uint64_t)v : 0;
}

/* The log id of a key "logs/<16 hex digits>/...", or 0 if it is not one. */
static uint64_t key_log(const char *key)
{
	uint64_t v = 0;

	if (strncmp(key, "logs/", 5))
		return 0;
	key += 5;
	for (int i = 0; i < 16; i++, key++) {
		int d = *key >= '0' && *key <= '9' ? *key - '0'
			: *key >= 'a' && *key <= 'f' ? *key - 'a' + 10 : -1;

		if (d < 0)
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	return *key == '/' ? v : 0;
}

static int on_listed(void *arg, const char *key, uint64_t size)
{
	struct sweep *w = arg;
	const char *k = key;
	uint64_t created, log;

	if (w->dead_only && (!(log = key_log(key)) ||
			     bsearch(&log, w->o->logs, w->o->nlogs, sizeof(log), logcmp)))
		return 0;
	if (w->nkeys && bsearch(&k, w->keys, w->nkeys, sizeof(*w->keys), keycmp))
		return 0;
	if (!strstr(key, "/seg/") && !strstr(key, "/man/"))
		return 0;
	created = key_created(key);
	if (!created || created >= w->before_ms)
		return 0;
	if (w->ndel == w->capdel) {
		w->capdel = w->capdel ? 2 * w->capdel : 16;
		w->del = hs_xrealloc(w->del, w->capdel * sizeof(*w->del));
	}
	w->del[w->ndel++] = hs_xstrdup(key);
	return 0;
}

/* List prefix into w and delete the orphans found (name: the stream, for
 * messages).  Frees w->del.  Returns 0 or an exit status. */
static int sweep_list(struct offload *o, const char *name, const char *prefix, struct sweep *w)
{
	int st = 0, rc;

	if ((rc = hs_tier_list(o->tier, prefix, on_listed, w)) < 0)
		st = tier_fail(o, rc, "listing Tier2 objects");
	for (size_t i = 0; !st && i < w->ndel; i++) {
		if (o->dry_run) {
			printf("sweep %s %s\n", name, w->del[i]);
			continue;
		}
		if ((rc = hs_tier_delete(o->tier, w->del[i])) < 0) {
			st = tier_fail(o, rc, "deleting an orphaned object");
			break;
		}
		o->swept++;
		progress(o, "%s: swept '%s'", name, w->del[i]);
	}
	for (size_t i = 0; i < w->ndel; i++)
		free(w->del[i]);
	free(w->del);
	w->del = NULL;
	w->ndel = w->capdel = 0;
	return st;
}

static int sweep(struct offload *o, const struct target *t, uint64_t log,
		 const struct hs_man *man)
{
	struct sweep w = { .o = o, .before_ms = now_ms() - o->grace_ms };
	struct hs_man_entry *ents = NULL;
	size_t n = 0;
	char prefix[HS_MAN_KEY_MAX];
	int st;

	if (o->grace_ms > now_ms())
		w.before_ms = 0;
	if ((st = all_entries(o, log, man, &ents, &n)))
		goto out;
	w.keys = hs_xcalloc(n + man->nrefs + 1, sizeof(*w.keys));
	for (size_t i = 0; i < n; i++) {
		w.keys[w.nkeys] = hs_xmalloc(HS_MAN_KEY_MAX);
		hs_man_seg_key(w.keys[w.nkeys++], log, &ents[i]);
	}
	for (uint16_t i = 0; i < man->nrefs; i++) {
		w.keys[w.nkeys] = hs_xmalloc(HS_MAN_KEY_MAX);
		hs_man_obj_key(w.keys[w.nkeys++], log, &man->refs[i]);
	}
	qsort(w.keys, w.nkeys, sizeof(*w.keys), keycmp);
	hs_man_log_prefix(prefix, log);
	st = sweep_list(o, t->name, prefix, &w);
out:
	for (size_t i = 0; i < w.nkeys; i++)
		free(w.keys[i]);
	free(w.keys);
	free(ents);
	return st;
}

/* Every object of a log no stream has (a deleted stream's) that is older
 * than the grace period: see SWEEP above for why a stream created during
 * the run loses nothing.  Only after a run over every stream. */
static int sweep_deleted(struct offload *o)
{
	struct sweep w = { .o = o, .before_ms = now_ms() - o->grace_ms, .dead_only = true };

	if (o->grace_ms > now_ms())
		w.before_ms = 0;
	return sweep_list(o, "-", "logs/", &w);
}

/* ---- verify ------------------------------------------------------------------------------ */

/* Check every published segment end to end: the whole object's hash (and
 * its footer, trailer and index), equal to the manifest's. */
static int verify(struct offload *o, const struct target *t, uint64_t log,
		  const struct hs_man *man)
{
	struct hs_man_entry *ents = NULL;
	size_t n = 0;
	char key[HS_MAN_KEY_MAX];
	int st, rc;

	if ((st = all_entries(o, log, man, &ents, &n)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct hs_seg_info info;

		hs_man_seg_key(key, log, &ents[i]);
		rc = hs_seg_verify(o->tier, key, &info);
		if (rc == -HS_ECHECKSUM || rc == -HS_EDATA) {
			st = fail(o, hs_exit_status(rc), "%s: segment '%s' is damaged: %s", t->name,
				  key, hs_tier_error(o->tier));
			continue;
		}
		if (rc < 0) {
			st = tier_fail(o, rc, "verifying a segment");
			continue;
		}
		if (info.size != ents[i].size || memcmp(info.hash, ents[i].hash, 32) ||
		    info.first_lsn < ents[i].first_lsn || info.last_lsn != ents[i].last_lsn) {
			st = fail(o, EX_IOERR, "%s: segment '%s' does not match the manifest",
				  t->name, key);
			continue;
		}
		o->verified++;
	}
out:
	free(ents);
	return st;
}

/* ---- one stream ------------------------------------------------------------------------ */

static int do_stream(struct offload *o, const struct target *t)
{
	struct hs_tier_info ti = { 0 };
	struct hs_man man = { 0 };
	int64_t older = o->older_ms >= 0 ? o->older_ms : (int64_t)t->offload_after_ms;
	int64_t keep = o->retention_ms >= 0 ? o->retention_ms : (int64_t)t->retention_ms;
	int64_t size = o->offload_size >= 0 ? o->offload_size : (int64_t)t->offload_size;
	/* due: an offload pass is due - by age (offload_after 0 means never,
	 * unless --older-than says otherwise), or by size (below); all: of
	 * everything released, whatever its age. */
	bool due = o->older_ms >= 0 || older > 0, all = due && older == 0;
	int st;

	if ((st = tier_info(o, t, &ti, &man)))
		goto out;
	if (o->verify_only) {
		st = verify(o, t, ti.log, &man);
		goto out;
	}
	/* A run killed between publish and trim: finish its trim first. */
	if (!o->sweep_only && man.offload > ti.tier1_trim) {
		if (o->dry_run)
			printf("trim %s ..%s\n", t->name, lsn_str(man.offload));
		else if ((st = trim_tier1(o, t, man.offload)))
			goto out;
		else
			ti.tier1_trim = man.offload;
	}
	/* The size trigger: no need to measure when age takes everything. */
	if (!o->sweep_only && size > 0 && !all) {
		if ((st = backlog_reaches(o, t, &ti, &man, (uint64_t)size, &all)))
			goto out;
		due |= all;
	}
	if (!o->sweep_only && due) {
		uint64_t cutoff = all ? 0 : now_ms() - (uint64_t)older;
		bool done = false;

		while (!done)
			if ((st = one_segment(o, t, &ti, &man, cutoff, &done)))
				goto out;
	}
	if (!o->sweep_only && keep > 0 && (st = expire(o, t, ti.log, &man, now_ms() - (uint64_t)keep)))
		goto out;
	st = sweep(o, t, ti.log, &man);
out:
	hs_man_free(&man);
	o->streams++;
	return st;
}

/* ---- main ---------------------------------------------------------------------------------- */

static int parse_dur(struct offload *o, const char *flag, const char *arg, uint64_t *ms)
{
	if (hs_parse_duration_ms(arg, ms) < 0)
		return hs_cli_usage_error(&o->cli, "%s: invalid duration '%s' (use 250ms 5s 2m 1h 7d)",
					  flag, arg);
	return 0;
}

static int parse_size(struct offload *o, const char *flag, const char *arg, uint64_t *b)
{
	if (hs_parse_size(arg, b) < 0)
		return hs_cli_usage_error(&o->cli, "%s: invalid size '%s' (use 4096 64k 256M 1G)",
					  flag, arg);
	return 0;
}

static int parse_args(struct offload *o, int argc, char **argv, bool *done)
{
	static const struct option longopts[] = {
		{ "stream", required_argument, NULL, OPT_STREAM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "older-than", required_argument, NULL, OPT_OLDER },
		{ "offload-size", required_argument, NULL, OPT_OFFLOAD_SIZE },
		{ "retention", required_argument, NULL, OPT_RETENTION },
		{ "min-size", required_argument, NULL, OPT_MIN_SIZE },
		{ "segment-size", required_argument, NULL, OPT_SEG_SIZE },
		{ "key-file", required_argument, NULL, OPT_KEY_FILE },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "region", required_argument, NULL, OPT_REGION },
		{ "path-style", no_argument, NULL, OPT_PATH_STYLE },
		{ "credentials", required_argument, NULL, OPT_CREDS },
		{ "grace", required_argument, NULL, OPT_GRACE },
		{ "sweep", no_argument, NULL, OPT_SWEEP },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "lock", required_argument, NULL, OPT_LOCK },
		HS_CLI_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt, st;

	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS, longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_STREAM:
			if (o->nglobs == MAX_GLOBS)
				return hs_cli_usage_error(&o->cli, "too many --stream patterns");
			o->globs[o->nglobs++] = optarg;
			break;
		case OPT_TO: o->url = optarg; break;
		case OPT_OLDER:
			if ((st = parse_dur(o, "--older-than", optarg, &v)))
				return st;
			o->older_ms = (int64_t)v;
			break;
		case OPT_RETENTION:
			if ((st = parse_dur(o, "--retention", optarg, &v)))
				return st;
			o->retention_ms = (int64_t)v;
			break;
		case OPT_OFFLOAD_SIZE:
			if ((st = parse_size(o, "--offload-size", optarg, &v)))
				return st;
			if (v > INT64_MAX)
				return hs_cli_usage_error(&o->cli, "--offload-size is too large");
			o->offload_size = (int64_t)v;
			break;
		case OPT_MIN_SIZE:
			if ((st = parse_size(o, "--min-size", optarg, &o->min_size)))
				return st;
			break;
		case OPT_SEG_SIZE:
			if ((st = parse_size(o, "--segment-size", optarg, &o->seg_size)))
				return st;
			if (!o->seg_size)
				return hs_cli_usage_error(&o->cli, "--segment-size must be > 0");
			break;
		case OPT_KEY_FILE: o->key_file = optarg; break;
		case OPT_ENDPOINT: o->topts.endpoint = optarg; break;
		case OPT_REGION: o->topts.region = optarg; break;
		case OPT_PATH_STYLE: o->topts.path_style = 1; break;
		case OPT_CREDS: o->topts.cred_file = optarg; break;
		case OPT_GRACE:
			if ((st = parse_dur(o, "--grace", optarg, &o->grace_ms)))
				return st;
			break;
		case OPT_SWEEP: o->sweep_only = true; break;
		case OPT_VERIFY: o->verify_only = true; break;
		case OPT_DRY_RUN: o->dry_run = true; break;
		case OPT_LOCK: o->lock_path = optarg; break;
		default:
			switch (hs_cli_option(&o->cli, opt, optarg, &st)) {
			case 0:
				break;
			case 1:
				*done = true; /* --help, --version, or a bad value */
				return st;
			default:
				return hs_cli_usage_error(&o->cli, "unknown option");
			}
		}
	}
	if (optind < argc)
		return hs_cli_usage_error(&o->cli, "unexpected argument '%s'", argv[optind]);
	if (o->sweep_only && o->verify_only)
		return hs_cli_usage_error(&o->cli, "--sweep and --verify exclude each other");
	if (!o->url)
		o->url = getenv("HS_TIER_URL");
	if (!o->url || !*o->url)
		return hs_cli_usage_error(&o->cli, "no destination: give --to URL or set HS_TIER_URL");
	if (!o->topts.endpoint)
		o->topts.endpoint = getenv("HS_S3_ENDPOINT");
	return hs_cli_finish(&o->cli);
}

/* flock the lock file; 75 at once when another run holds it. */
static int take_lock(struct offload *o, int *fd)
{
	*fd = open(o->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return fail(o, hs_exit_status(-errno), "--lock %s: %s", o->lock_path,
			    strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK)
			return fail(o, hs_exit_status(-HS_ELOCKED),
				    "another hs-offload holds the lock %s", o->lock_path);
		return fail(o, EX_IOERR, "--lock %s: %s", o->lock_path, strerror(e));
	}
	return 0;
}

static int run(struct offload *o)
{
	char err[HS_TIER_ERRLEN] = "", msg[512];
	struct target *ts = NULL;
	size_t n = 0, i;
	int lockfd = -1, rc, st;

	if (o->lock_path && (st = take_lock(o, &lockfd)))
		return st;
	if (sodium_init() < 0)
		return fail(o, EX_SOFTWARE, "cannot initialise libsodium");
	if (o->key_file) {
		if ((rc = hs_seg_key_load(o->key_file, o->key)) < 0) {
			st = fail(o, hs_exit_status(rc), "--key-file %s: %s", o->key_file,
				  hs_strerror(rc));
			goto out;
		}
		o->have_key = true;
	}
	o->topts.err = err;
	if ((rc = hs_tier_open(o->url, &o->topts, &o->tier)) < 0) {
		st = fail(o, hs_exit_status(rc), "%s", *err ? err : hs_strerror(rc));
		goto out;
	}
	rc = hs_client_connect(&o->c, o->cli.addr, o->cli.timeout_ms, msg, sizeof(msg));
	if (rc < 0) {
		st = fail(o, hs_exit_status(rc), "%s", msg);
		goto out;
	}
	o->connected = true;
	if ((st = list_streams(o, &ts, &n)))
		goto out;
	if (!n && o->nglobs) {
		st = fail(o, EX_NOINPUT, "no stream matches the --stream patterns");
		goto out;
	}
	for (i = 0; i < n; i++) {
		st = do_stream(o, &ts[i]);
		/* A lost connection ends everything (unless -a lists others to
		 * fail over to: the next request connects again); other
		 * failures only their stream. */
		if (st == hs_exit_status(-HS_EUNAVAIL) && !hs_client_multi(o->cli.addr))
			break;
	}
	/* Deleted streams' objects: only when every stream was looked at, so
	 * o->logs is the whole set of live logs; and never for a cluster
	 * without streams, which is more likely a fresh one pointed at an
	 * old destination than one whose every stream was deleted. */
	if (i == n && !o->nglobs && !o->verify_only && o->logs_ok && o->nlogs)
		sweep_deleted(o);
	if (o->cli.verbosity > 0 && o->verify_only)
		fprintf(stderr, "%s: %" PRIu64 " streams, %" PRIu64 " segments verified\n",
			o->cli.prog, o->streams, o->verified);
	else if (o->cli.verbosity > 0)
		fprintf(stderr,
			"%s: %" PRIu64 " streams, %" PRIu64 " segments, %" PRIu64 " records, %" PRIu64
			" bytes offloaded, %" PRIu64 " objects expired, %" PRIu64 " orphans swept\n",
			o->cli.prog, o->streams, o->segments, o->records, o->bytes, o->expired,
			o->swept);
	st = o->status;
out:
	free(ts);
	free(o->logs);
	if (o->connected)
		hs_sconn_close(&o->c);
	hs_tier_close(o->tier);
	if (lockfd >= 0)
		close(lockfd);
	sodium_memzero(o->key, sizeof(o->key));
	return st ? st : o->status;
}

int main(int argc, char **argv)
{
	static struct offload o;
	int st;

	signal(SIGPIPE, SIG_IGN);
	hs_cli_init(&o.cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	o.older_ms = -1;
	o.retention_ms = -1;
	o.offload_size = -1;
	o.seg_size = SEG_SIZE_DEFAULT;
	o.grace_ms = GRACE_DEFAULT;
	o.crash_at = getenv("HS_OFFLOAD_CRASH_AT");
	o.progress = isatty(2);
	bool done = false;

	st = parse_args(&o, argc, argv, &done);
	if (st == 0 && !done)
		st = run(&o);
	hs_buf_free(&o.req);
	hs_cli_free(&o.cli);
	return st;
}

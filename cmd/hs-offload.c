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
 * The name object logs/<log>/name is never an orphan of a live log; a
 * deleted stream's is deleted with its other objects, once the creation
 * time inside it (its key has none: one GET each) is older than the grace.
 *
 * NAME OBJECT.  Before the first publish of a run for a log, a HEAD makes
 * sure logs/<log>/name exists (manifest.h: the stream's name, for a
 * rebuild); a missing one is put with HS_TIER_EXCL, so an existing one is
 * never replaced and logs offloaded before it existed get one too.
 *
 * REBUILD (--rebuild; docs/tier2.md "Rebuilding from the bucket").  After
 * losing a cluster: list logs/ once; per log, read its name object (else
 * a manifest object's name), every manifest object (crc32c, its own key,
 * every segment it names listed; of overlapping ones the newest chain,
 * from the highest backwards), then open every segment (trailer, footer,
 * index; hs_seg_verify when encrypted and no key) and chain those above
 * the last folded LSN: at each step the lowest start, and of several with
 * that start (the attempts of a crashed run, a longer retry) the one
 * reaching furthest that the next segment follows.  An entry starts right
 * after the previous one when the segment follows it (next LSN or first
 * of a later epoch), else at its footer's first LSN (a range trimmed
 * before it was offloaded).  More than HS_MAN_FOLD_AT entries are folded
 * into new manifest objects, as a run would have.  Then, on the cluster:
 * a missing stream is created with the same log id (STREAM_CREATE with
 * HS_ATTR_RESTORE: hs-serve claims the log record first, refusing a log
 * id in use, and makes Tier1 start after the offload point, so new LSNs
 * are above every restored one) and the manifest published (TIER_PUBLISH
 * RESTORE: taken only over an empty register or one further behind, so
 * a rebuild never undoes an offload and running it again is a no-op).  A
 * stream of that name with another log id, or a log id another stream
 * has, is refused (65) and the other logs go on.  Policies are not in the
 * bucket: the rebuilt streams have the server's defaults.
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
 * prints the plan on stdout and changes nothing (--rebuild: one "rebuild
 * NAME log LOG FIRST..LAST objects N segments M create|restore|current|
 * refused" line per log).  One failed stream does
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
	"       hs-offload [options] --rebuild [--stream GLOB]... [--to URL] [--dry-run]\n"
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
	"      --rebuild              rebuild the streams whose history is at URL on this\n"
	"                             cluster (same log ids), e.g. after losing it\n"
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
	OPT_REBUILD,
};

/* A stream to work on, from STREAM_LIST. */
struct target {
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
	uint64_t log;
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
	bool dry_run, sweep_only, verify_only, rebuild, progress;
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
	uint64_t named_log;               /* its name object is known to exist */

	/* summary */
	uint64_t streams, segments, records, bytes, swept, expired, verified, rebuilt;
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

/* The test hook: HS_OFFLOAD_CRASH_AT=upload|publish|trim (and create, for
 * --rebuild: after the stream was created, before its manifest) kills the process
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
			t->log = e.info.log;
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

/* Write entries[0..n) of log as a manifest object (put with HS_TIER_EXCL,
 * read back and compared) and describe it in *r.  Returns 0 or an exit
 * status. */
static int write_manobj(struct offload *o, uint64_t log, const char *name,
			const struct hs_man_entry *entries, uint32_t n, struct hs_man_ref *r)
{
	struct hs_buf obj = { 0 }, back = { 0 };
	char key[HS_MAN_KEY_MAX];
	int rc, st = 0;

	memset(r, 0, sizeof(*r));
	r->nentries = n;
	r->first_lsn = entries[0].first_lsn;
	r->last_lsn = entries[n - 1].last_lsn;
	r->created_ms = now_ms();
	r->attempt = random64();
	hs_man_obj_enc(log, name, entries, n, r->created_ms, r->attempt, &obj);
	r->size = obj.len;
	crypto_generichash(r->hash, 32, obj.data, obj.len, NULL, 0);
	hs_man_obj_key(key, log, r);
	if ((rc = hs_tier_put(o->tier, key, obj.data, obj.len, HS_TIER_EXCL)) < 0) {
		st = tier_fail(o, rc, "writing a manifest object");
		goto out;
	}
	if ((rc = hs_tier_get(o->tier, key, 0, 0, &back)) < 0) {
		st = tier_fail(o, rc, "reading back a manifest object");
		goto out;
	}
	if (back.len != obj.len || memcmp(back.data, obj.data, obj.len))
		st = fail(o, EX_IOERR, "manifest object '%s' reads back different", key);
out:
	hs_buf_free(&obj);
	hs_buf_free(&back);
	return st;
}

/* Fold the first HS_MAN_FOLD_AT entries of man into a manifest object. */
static int fold(struct offload *o, const struct target *t, uint64_t log, struct hs_man *man)
{
	struct hs_buf body = { 0 };
	struct hs_man_ref r;
	uint64_t offload;
	int rc, st;

	if ((st = write_manobj(o, log, t->name, man->entries, HS_MAN_FOLD_AT, &r)))
		goto out;
	hs_man_ref_enc(&r, &body);
	if ((st = publish(o, t, log, HS_TIER_OP_FOLD, &body, &offload)))
		goto out;
	if ((rc = hs_man_fold(man, &r)) < 0)
		st = fail(o, EX_SOFTWARE, "%s: folding the manifest: %s", t->name,
			  hs_strerror(rc));
out:
	hs_buf_free(&body);
	return st;
}

/* The name object logs/<log>/name (manifest.h), before the log's first
 * publish: what maps the log id back to its stream in a rebuild.  One
 * HEAD per stream and run that publishes; written only when missing (so
 * logs offloaded before it existed get one too), with HS_TIER_EXCL: an
 * existing one, or one a racing run wrote, is left alone. */
static int ensure_name(struct offload *o, const struct target *t, uint64_t log)
{
	struct hs_buf b = { 0 };
	char key[HS_MAN_KEY_MAX];
	uint64_t size;
	int rc;

	if (o->named_log == log)
		return 0;
	hs_man_name_key(key, log);
	rc = hs_tier_head(o->tier, key, &size);
	if (rc == -HS_ENOENT) {
		hs_man_name_enc(log, t->name, t->nlen, now_ms(), &b);
		rc = hs_tier_put(o->tier, key, b.data, b.len, HS_TIER_EXCL);
		hs_buf_free(&b);
		if (rc == -HS_EEXIST)
			rc = 0;
	}
	if (rc < 0)
		return tier_fail(o, rc, "writing the log's name object");
	o->named_log = log;
	return 0;
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

	if ((st = ensure_name(o, t, ti->log)))
		return st;
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
	char **names;             /* dead_only: name objects to age (owned) */
	size_t nnames, capnames;
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

static void push_key(char ***v, size_t *n, size_t *cap, const char *key)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*v = hs_xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = hs_xstrdup(key);
}

static int on_listed(void *arg, const char *key, uint64_t size)
{
	struct sweep *w = arg;
	const char *k = key;
	uint64_t created, log;
	size_t kl = strlen(key);

	if (w->dead_only && (!(log = key_log(key)) ||
			     bsearch(&log, w->o->logs, w->o->nlogs, sizeof(log), logcmp)))
		return 0;
	if (w->nkeys && bsearch(&k, w->keys, w->nkeys, sizeof(*w->keys), keycmp))
		return 0;
	/* A live log's name object is never an orphan (only seg/ and man/
	 * keys are); a deleted stream's goes once it is older than the grace
	 * period, which only its contents tell (sweep_list). */
	if (w->dead_only && kl == 5 + 16 + 5 && !strcmp(key + kl - 5, "/name")) {
		push_key(&w->names, &w->nnames, &w->capnames, key);
		return 0;
	}
	if (!strstr(key, "/seg/") && !strstr(key, "/man/"))
		return 0;
	created = key_created(key);
	if (!created || created >= w->before_ms)
		return 0;
	push_key(&w->del, &w->ndel, &w->capdel, key);
	return 0;
}

/* A deleted stream's name object is deleted once it is older than the
 * grace period by the creation time inside it (its key has none): a
 * stream created during the run is missing from o->logs, but its name
 * object is younger than that.  Unreadable ones stay. */
static bool name_expired(struct offload *o, const char *key, uint64_t before_ms)
{
	struct hs_buf b = { 0 };
	struct hs_man_name n;
	bool old;

	old = hs_tier_get(o->tier, key, 0, 0, &b) == 0 &&
	      hs_man_name_dec(b.data, b.len, &n) == 0 && n.log == key_log(key) &&
	      n.created_ms < before_ms;
	hs_buf_free(&b);
	return old;
}

/* List prefix into w and delete the orphans found (name: the stream, for
 * messages).  Frees w->del.  Returns 0 or an exit status. */
static int sweep_list(struct offload *o, const char *name, const char *prefix, struct sweep *w)
{
	int st = 0, rc;

	if ((rc = hs_tier_list(o->tier, prefix, on_listed, w)) < 0)
		st = tier_fail(o, rc, "listing Tier2 objects");
	for (size_t i = 0; !st && i < w->nnames; i++)
		if (name_expired(o, w->names[i], w->before_ms))
			push_key(&w->del, &w->ndel, &w->capdel, w->names[i]);
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
	for (size_t i = 0; i < w->nnames; i++)
		free(w->names[i]);
	free(w->names);
	w->names = NULL;
	w->nnames = w->capnames = 0;
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

/* ---- rebuild from the bucket ---------------------------------------------------- */

/* A manifest object or segment key found under logs/<log>/. */
struct rkey {
	char *key;
	uint64_t size;
};

/* What the listing of logs/ found for one log. */
struct rlog {
	uint64_t log;
	bool has_name;
	struct rkey *man, *seg;
	size_t nman, nseg, capman, capseg;
};

struct rlist {
	struct rlog *v;
	size_t n, cap;
};

/* A usable object: a verified manifest object (ref, obj) or segment (ent). */
struct rcand {
	uint64_t first, last;      /* footer range for a segment */
	struct hs_man_ref ref;
	struct hs_man_obj obj;
	struct hs_man_entry ent;
};

static void push_rkey(struct rkey **v, size_t *n, size_t *cap, const char *key, uint64_t size)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*v = hs_xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[*n].key = hs_xstrdup(key);
	(*v)[(*n)++].size = size;
}

/* Keys come in byte order, so one log's keys are consecutive. */
static int on_rebuild_listed(void *arg, const char *key, uint64_t size)
{
	struct rlist *l = arg;
	uint64_t log = key_log(key);
	struct rlog *g;
	const char *rest;

	if (!log)
		return 0;
	rest = key + 5 + 16 + 1; /* after "logs/<log>/" */
	if (!l->n || l->v[l->n - 1].log != log) {
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 16;
			l->v = hs_xrealloc(l->v, l->cap * sizeof(*l->v));
		}
		g = &l->v[l->n++];
		memset(g, 0, sizeof(*g));
		g->log = log;
	}
	g = &l->v[l->n - 1];
	if (!strcmp(rest, "name"))
		g->has_name = true;
	else if (!strncmp(rest, "man/", 4) && key_created(key))
		push_rkey(&g->man, &g->nman, &g->capman, key, size);
	else if (!strncmp(rest, "seg/", 4) && key_created(key))
		push_rkey(&g->seg, &g->nseg, &g->capseg, key, size);
	return 0;
}

static void rlist_free(struct rlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		for (size_t j = 0; j < l->v[i].nman; j++)
			free(l->v[i].man[j].key);
		for (size_t j = 0; j < l->v[i].nseg; j++)
			free(l->v[i].seg[j].key);
		free(l->v[i].man);
		free(l->v[i].seg);
	}
	free(l->v);
}

static int rkeycmp(const void *a, const void *b)
{
	return strcmp(((const struct rkey *)a)->key, ((const struct rkey *)b)->key);
}

static bool seg_listed(const struct rlog *g, const char *key)
{
	struct rkey k = { .key = (char *)key };

	return bsearch(&k, g->seg, g->nseg, sizeof(*g->seg), rkeycmp) != NULL;
}

/* The stream name of g: its name object's (or, for a log offloaded before
 * name objects existed, a manifest object's).  Returns 0 with name set,
 * or 1 when the bucket does not say. */
static int rebuild_name(struct offload *o, const struct rlog *g, char *name,
			const struct rcand *c, size_t nc)
{
	struct hs_buf b = { 0 };
	struct hs_man_name n;
	char key[HS_MAN_KEY_MAX];
	int rc = 1;

	hs_man_name_key(key, g->log);
	if (g->has_name && hs_tier_get(o->tier, key, 0, 0, &b) == 0 &&
	    hs_man_name_dec(b.data, b.len, &n) == 0 && n.log == g->log) {
		memcpy(name, n.name, n.nlen + 1);
		rc = 0;
	}
	hs_buf_free(&b);
	for (size_t i = 0; rc && i < nc; i++)
		if (c[i].obj.name[0]) {
			snprintf(name, HS_NAME_MAX + 1, "%s", c[i].obj.name);
			rc = 0;
		}
	return rc;
}

/* Every manifest object of g that decodes, names this log under its own
 * key, matches its key and whose segments are all listed, into *out. */
static void rebuild_objs(struct offload *o, const struct rlog *g, struct rcand **out, size_t *n)
{
	*out = hs_xcalloc(g->nman ? g->nman : 1, sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < g->nman; i++) {
		struct rcand *c = &(*out)[*n];
		struct hs_buf b = { 0 };
		char key[HS_MAN_KEY_MAX];
		bool good = false;

		if (hs_tier_get(o->tier, g->man[i].key, 0, 0, &b) == 0 &&
		    hs_man_obj_dec(b.data, b.len, &c->obj) == 0 && c->obj.log == g->log) {
			c->ref.first_lsn = c->obj.first_lsn;
			c->ref.last_lsn = c->obj.last_lsn;
			c->ref.size = b.len;
			c->ref.created_ms = c->obj.created_ms;
			c->ref.attempt = c->obj.attempt;
			c->ref.nentries = c->obj.nentries;
			crypto_generichash(c->ref.hash, 32, b.data, b.len, NULL, 0);
			hs_man_obj_key(key, g->log, &c->ref);
			good = !strcmp(key, g->man[i].key);
			for (uint32_t j = 0; good && j < c->obj.nentries; j++) {
				hs_man_seg_key(key, g->log, &c->obj.entries[j]);
				good = seg_listed(g, key);
			}
		}
		hs_buf_free(&b);
		if (!good) {
			if (o->cli.verbosity > 1)
				fprintf(stderr, "%s: skipping manifest object '%s'\n", o->cli.prog,
					g->man[i].key);
			hs_man_obj_free(&c->obj);
			continue;
		}
		c->first = c->ref.first_lsn;
		c->last = c->ref.last_lsn;
		(*n)++;
	}
}

static int cand_last_desc(const void *a, const void *b)
{
	const struct rcand *x = a, *y = b;

	return x->last > y->last ? -1 : x->last < y->last;
}

static int cand_first_asc(const void *a, const void *b)
{
	const struct rcand *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->last > y->last ? -1 : x->last < y->last;
}

/* Does start follow last directly (the next LSN, or the first of a later
 * epoch: the LSNs between do not exist)? */
static bool adjacent(uint64_t last, uint64_t start)
{
	return start == last + 1 ||
	       (HS_LSN_EPOCH(start) > HS_LSN_EPOCH(last) && HS_LSN_ESN(start) == 1);
}

/* Every segment of g above folded whose trailer, footer and index check,
 * into *out (first/last: the footer's range). */
static void rebuild_segs(struct offload *o, const struct rlog *g, uint64_t folded,
			 struct rcand **out, size_t *n)
{
	struct hs_seg_ropts ro = { .key = o->have_key ? o->key : NULL };

	*out = hs_xcalloc(g->nseg ? g->nseg : 1, sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < g->nseg; i++) {
		struct rcand *c = &(*out)[*n];
		const char *k = strrchr(g->seg[i].key, '/') + 1;
		char key[HS_MAN_KEY_MAX];
		unsigned long long created, attempt;
		struct hs_seg_info info;
		struct hs_seg *seg;
		int rc, len = 0;

		if (sscanf(k, "%16llx-%16llx%n", &created, &attempt, &len) != 2 || k[len])
			continue;
		c->ent.created_ms = created;
		c->ent.attempt = attempt;
		hs_man_seg_key(key, g->log, &c->ent);
		if (strcmp(key, g->seg[i].key))
			continue;
		ro.size = g->seg[i].size;
		rc = hs_seg_open(o->tier, key, &ro, &seg);
		if (rc == 0) {
			info = *hs_seg_info(seg);
			hs_seg_close(seg);
		} else if (rc == -HS_EPERM && !o->have_key) {
			/* Encrypted, and no --key-file: the whole-object check
			 * needs no key. */
			rc = hs_seg_verify(o->tier, key, &info);
		}
		if (rc < 0 || !info.first_lsn || info.first_lsn <= folded) {
			if (rc < 0 && o->cli.verbosity > 1)
				fprintf(stderr, "%s: skipping segment '%s': %s\n", o->cli.prog, key,
					*hs_tier_error(o->tier) ? hs_tier_error(o->tier)
								: hs_strerror(rc));
			continue;
		}
		c->first = info.first_lsn;
		c->last = info.last_lsn;
		c->ent.last_lsn = info.last_lsn;
		c->ent.first_ts = info.first_ts;
		c->ent.last_ts = info.last_ts;
		c->ent.size = info.size;
		c->ent.records = info.nrecords;
		memcpy(c->ent.hash, info.hash, 32);
		(*n)++;
	}
}

static bool name_selected(const struct offload *o, const char *name)
{
	bool match = !o->nglobs;

	for (int i = 0; i < o->nglobs && !match; i++)
		match = !fnmatch(o->globs[i], name, 0);
	return match;
}

/* The register value of g rebuilt from the bucket into *m, its name into
 * name.  Returns 0, 1 (not selected by --stream, or nothing usable:
 * skipped) or an exit status. */
static int rebuild_man(struct offload *o, const struct rlog *g, char *name, struct hs_man *m,
		       size_t *nsegs)
{
	struct rcand *objs = NULL, *segs = NULL;
	size_t nobj = 0, nseg = 0, nref = 0, nent = 0;
	uint64_t cur = 0;
	int st = 0;

	memset(m, 0, sizeof(*m));
	*nsegs = 0;
	rebuild_objs(o, g, &objs, &nobj);
	if (rebuild_name(o, g, name, objs, nobj)) {
		st = fail(o, EX_DATAERR, "log %016" PRIx64 ": no name object: not rebuilt",
			  g->log);
		goto out;
	}
	if (!name_selected(o, name)) {
		st = 1;
		goto out;
	}
	/* Manifest objects: the newest first, then each older one that ends
	 * before the one chosen after it (equal ranges are the same entries
	 * written by two attempts: one is enough). */
	qsort(objs, nobj, sizeof(*objs), cand_last_desc);
	for (size_t i = 0; i < nobj; i++) {
		if (nref && objs[i].last >= objs[nref - 1].first)
			continue;
		if (nref != i) {
			struct rcand t = objs[nref];

			objs[nref] = objs[i];
			objs[i] = t;
		}
		nref++;
	}
	if (nref > HS_MAN_REFS_MAX) {
		hs_warn("log %016" PRIx64 ": %zu manifest objects: keeping the newest %d", g->log,
			nref, HS_MAN_REFS_MAX);
		nref = HS_MAN_REFS_MAX;
	}
	/* Oldest first now. */
	for (size_t i = 0; i < nref / 2; i++) {
		struct rcand t = objs[i];

		objs[i] = objs[nref - 1 - i];
		objs[nref - 1 - i] = t;
	}
	if (nref)
		cur = objs[nref - 1].last;

	/* Segments after the last folded LSN, in order: at each step the
	 * lowest start above what is covered; of several with that start
	 * (attempts of the same range, or a longer retry of a crashed one),
	 * the one reaching furthest that the next segment follows. */
	rebuild_segs(o, g, cur, &segs, &nseg);
	qsort(segs, nseg, sizeof(*segs), cand_first_asc);
	m->entries = hs_xcalloc(nseg ? nseg : 1, sizeof(*m->entries));
	for (size_t i = 0; i < nseg;) {
		size_t j = i, pick = i;
		bool found = false;

		if (segs[i].first <= cur) {
			i++;
			continue;
		}
		for (; j < nseg && segs[j].first == segs[i].first; j++) {
			/* The next step after j: the lowest start above its end. */
			size_t lo = j + 1, hi = nseg;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (segs[mid].first <= segs[j].last)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (!found && (lo == nseg || adjacent(segs[j].last, segs[lo].first))) {
				pick = j; /* sorted by last descending: the furthest */
				found = true;
			}
		}
		segs[pick].ent.first_lsn =
		    cur ? (adjacent(cur, segs[pick].first) ? cur + 1 : segs[pick].first)
			: (segs[pick].first == HS_LSN(1, 1) ? 1 : segs[pick].first);
		m->entries[nent++] = segs[pick].ent;
		cur = segs[pick].last;
		i = j;
	}
	*nsegs = nent;
	for (size_t i = 0; i < nref; i++)
		*nsegs += objs[i].ref.nentries;
	if (!nref && !nent) {
		st = 1;
		if (o->cli.verbosity > 0)
			fprintf(stderr, "%s: log %016" PRIx64 " (%s): no segment: nothing to rebuild\n",
				o->cli.prog, g->log, name);
		goto out;
	}
	if (nent > UINT16_MAX) {
		st = fail(o, EX_DATAERR, "log %016" PRIx64 ": too many segments for one manifest",
			  g->log);
		goto out;
	}
	/* Room for the refs rebuild_fold() may add. */
	m->refs = hs_xcalloc(nref + nent / HS_MAN_FOLD_AT + 1, sizeof(*m->refs));
	for (size_t i = 0; i < nref; i++)
		m->refs[m->nrefs++] = objs[i].ref;
	m->nentries = (uint16_t)nent;
	m->offload = cur;
	m->expired = (m->nrefs ? m->refs[0].first_lsn : m->entries[0].first_lsn) - 1;
	m->gen = 1;
out:
	for (size_t i = 0; i < nobj; i++)
		hs_man_obj_free(&objs[i].obj);
	free(objs);
	free(segs);
	return st;
}

/* The register holds at most HS_MAN_FOLD_AT entries after a fold, as the
 * offloader keeps it: fold the oldest entries of m into new manifest
 * objects, written only if write (else only counted, for the plan).
 * Returns 0 or an exit status. */
static int rebuild_fold(struct offload *o, uint64_t log, const char *name, struct hs_man *m,
			bool write)
{
	size_t skip = 0;
	int st = 0;

	while (m->nentries - skip > HS_MAN_FOLD_AT && m->nrefs < HS_MAN_REFS_MAX) {
		struct hs_man_ref r = { .first_lsn = m->entries[skip].first_lsn,
					.last_lsn = m->entries[skip + HS_MAN_FOLD_AT - 1].last_lsn,
					.nentries = HS_MAN_FOLD_AT };

		if (write &&
		    (st = write_manobj(o, log, name, m->entries + skip, HS_MAN_FOLD_AT, &r)))
			break;
		m->refs[m->nrefs++] = r;
		skip += HS_MAN_FOLD_AT;
	}
	memmove(m->entries, m->entries + skip, (m->nentries - skip) * sizeof(*m->entries));
	m->nentries = (uint16_t)(m->nentries - skip);
	if (!st && m->nentries > HS_MAN_ENTRIES_MAX)
		st = fail(o, EX_DATAERR, "%s: too many segments for one manifest", name);
	return st;
}

/* STREAM_CREATE name with HS_ATTR_RESTORE (log id log, Tier1 after
 * offload).  Returns 0 with *status and *value, or an exit status. */
static int create_restored(struct offload *o, const struct target *t, uint64_t log,
			   uint64_t offload, int32_t *status, uint64_t *value)
{
	uint64_t id = hs_client_next_id();
	struct hs_msg_wr w;
	struct hs_stream_attrs a = { .mask = HS_ATTR_RESTORE, .restore_log = log,
				     .restore_lsn = offload };

	hs_buf_reset(&o->req);
	hs_msg_stream_create_begin(&w, &o->req, id);
	hs_msg_stream_create_add(&w, t->name, t->nlen, &a);
	hs_msg_wr_end(&w);
	return call_status(o, id, HS_MSG_STREAM_CREATE, status, value);
}

/* Rebuild one log: its register value from the bucket, then the stream
 * on the cluster (see REBUILD above). */
static int rebuild_log(struct offload *o, const struct rlog *g, const struct target *ts,
		       size_t nts)
{
	struct target t = { 0 };
	struct hs_man m, cur = { 0 };
	struct hs_tier_info ti;
	struct hs_buf val = { 0 };
	const struct target *have = NULL;
	const char *action;
	size_t nsegs;
	uint64_t value, offload;
	int32_t status;
	int st, rc;

	st = rebuild_man(o, g, t.name, &m, &nsegs);
	if (st) {
		st = st == 1 ? 0 : st;
		goto out;
	}
	t.nlen = (uint8_t)strlen(t.name);
	t.log = g->log;
	for (size_t i = 0; i < nts && !have; i++)
		if (!strcmp(ts[i].name, t.name))
			have = &ts[i];
	if (have && have->log != g->log) {
		st = fail(o, EX_DATAERR,
			  "%s: the stream exists with log %016" PRIx64 ", the bucket has log %016"
			  PRIx64 ": not rebuilt", t.name, have->log, g->log);
		action = "refused";
	} else if (!have && bsearch(&g->log, o->logs, o->nlogs, sizeof(g->log), logcmp)) {
		st = fail(o, EX_DATAERR, "%s: log %016" PRIx64 " is another stream's here: not rebuilt",
			  t.name, g->log);
		action = "refused";
	} else if (have) {
		if ((st = tier_info(o, &t, &ti, &cur)))
			goto out;
		action = cur.offload >= m.offload ? "current" : "restore";
	} else {
		action = "create";
	}
	/* New manifest objects only for a manifest that will be published. */
	if (!st && (rc = rebuild_fold(o, g->log, t.name, &m,
				      !o->dry_run && strcmp(action, "current") != 0)))
		st = rc;
	hs_man_enc(&m, &val);
	if (!st && val.len > HS_REG_VALUE_MAX)
		st = fail(o, EX_DATAERR, "%s: the rebuilt manifest is too large", t.name);
	if (!st) {
		/* What hs-serve will check: a consistent value. */
		struct hs_man chk;

		if (hs_man_dec(val.data, val.len, &chk) < 0)
			st = fail(o, EX_SOFTWARE, "%s: the rebuilt manifest is inconsistent", t.name);
		hs_man_free(&chk);
	}
	if (o->dry_run || o->cli.verbosity > 0 || o->progress)
		fprintf(o->dry_run ? stdout : stderr,
			"%s%s %s log %016" PRIx64 " %s..%s objects %u segments %zu %s\n",
			o->dry_run ? "" : o->cli.prog, o->dry_run ? "rebuild" : ": rebuild", t.name,
			g->log, lsn_str(m.expired + 1), lsn_str(m.offload), m.nrefs, nsegs, action);
	if (o->dry_run || st || !strcmp(action, "current"))
		goto out;
	if (!strcmp(action, "create")) {
		if ((st = create_restored(o, &t, g->log, m.offload, &status, &value)))
			goto out;
		if (status == -HS_EEXIST && value != g->log) {
			st = fail(o, EX_DATAERR, "%s: created meanwhile with log %016" PRIx64
				  ": not rebuilt", t.name, value);
			goto out;
		}
		if (status == -HS_EDATA) {
			st = fail(o, EX_DATAERR, "%s: log %016" PRIx64 " is in use here: not rebuilt",
				  t.name, g->log);
			goto out;
		}
		if (status && status != -HS_EEXIST) {
			st = fail(o, hs_exit_status(status), "%s: creating the stream: %s", t.name,
				  hs_strerror(status));
			goto out;
		}
		crash_point(o, "create");
	}
	if ((st = publish(o, &t, g->log, HS_TIER_OP_RESTORE, &val, &offload)))
		goto out;
	if (offload < m.offload) {
		rc = -HS_EINTERNAL;
		st = fail(o, hs_exit_status(rc), "%s: the manifest stayed at %s", t.name,
			  lsn_str(offload));
		goto out;
	}
	o->rebuilt++;
out:
	hs_man_free(&m);
	hs_man_free(&cur);
	hs_buf_free(&val);
	return st;
}

static int rebuild(struct offload *o, const struct target *ts, size_t nts)
{
	struct rlist l = { 0 };
	int rc, st = 0;

	if ((rc = hs_tier_list(o->tier, "logs/", on_rebuild_listed, &l)) < 0) {
		st = tier_fail(o, rc, "listing Tier2 objects");
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		st = rebuild_log(o, &l.v[i], ts, nts);
		if (st == hs_exit_status(-HS_EUNAVAIL) && !hs_client_multi(o->cli.addr))
			break;
	}
out:
	rlist_free(&l);
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
		{ "rebuild", no_argument, NULL, OPT_REBUILD },
		HS_CLI_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	static const struct hs_cli_env envs[] = {
		{ "to", "HS_TIER_URL" }, { "endpoint", "HS_S3_ENDPOINT" }, { NULL, NULL }
	};
	uint64_t v;
	int opt, st;

	static const char *const groups[] = { "sweep verify rebuild", NULL };

	st = hs_cli_config_args(&o->cli, HS_CLI_SHORTOPTS, longopts, envs, groups, &argc, &argv);
	if (st)
		return st;
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
		case OPT_REBUILD: o->rebuild = true; break;
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
	if (o->sweep_only + o->verify_only + o->rebuild > 1)
		return hs_cli_usage_error(&o->cli, "--sweep, --verify and --rebuild exclude each other");
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
	if (o->rebuild) {
		rebuild(o, ts, n);
		if (o->cli.verbosity > 0)
			fprintf(stderr, "%s: %" PRIu64 " streams rebuilt\n", o->cli.prog, o->rebuilt);
		st = o->status;
		goto out;
	}
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

/*
 * hs-admin - manage the streams of an HStore server and look at its state
 * (CLI.md "Clients"; the messages are those of proto_client.h).
 *
 * COMMANDS are NOUN VERB: stream create|alter|delete|list|info|exists|trim,
 * sub create|delete|list|info, cluster status, stats.  One getopt_long table holds every flag, GNU
 * permutation lets flags follow the names, and each verb says which flags
 * it takes, so a flag given to the wrong verb is a usage error rather than
 * silently ignored.
 *
 * BATCHING.  STREAM_CREATE, STREAM_ALTER, STREAM_DELETE, STREAM_TRIM,
 * STREAM_INFO and SUB_CREATE, SUB_DELETE, SUB_INFO are lists, all sent by
 * the one pipeline(): names are sent BATCH to a frame (fewer if the frame
 * would exceed the server's max frame) with up to WINDOW frames in flight
 * on the one connection, and replies are matched to batches by request
 * id, so bulk creation (--from-file) costs one round trip per WINDOW *
 * BATCH names.  Lookups whose output follows the input order (info) use a
 * window of 1.  Every entry is done on its own: a failure is reported on
 * stderr, the others go on, and the exit status is that of the first
 * failure.
 *
 * REDIRECTS.  With several hs-serve (docs/replication.md §7), stream info,
 * exists, trim and sub create sent to one that does not sequence the
 * stream get -HS_EREDIRECT entries, their reply preceded by a RESULT
 * -HS_EREDIRECT naming the sequencer.  The refused entries are kept, and
 * once the rest is done they are sent again, once, to the first address
 * named (hs_client_reconnect); their output then follows the others'.
 *
 * OUTPUT is data only, built in one buffer and written with one write(2)
 * per page or batch; SIGPIPE is ignored and EPIPE on stdout ends the
 * program quietly with status 0, as `cat | head` does.  Tables are for
 * ttys; --names and --json are the stable contract for scripts.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "net.h"
#include "parse.h"
#include "pos.h"
#include "proto.h"
#include "proto_client.h"
#include "syncconn.h"

#define BATCH 1000            /* names per list frame */
#define WINDOW 8              /* list frames in flight */
#define HEALTH_POLL_MS 100    /* cluster status --wait-healthy */
#define FAIL_SHOWN 20          /* per-entry failures reported one by one */
#define ST_EPIPE 256          /* internal: stdout reader gone, exit 0 */
#define ENTRY_MAX (1 + HS_NAME_MAX + 24 + HS_POS_WIRE) /* one list entry */

static const char usage_text[] =
	"usage: hs-admin [options] stream create NAME... [--replication R] [--retention DUR]\n"
	"                          [--offload-after DUR] [--offload-size SIZE]\n"
	"                          [--durability MODE] [--exist-ok]\n"
	"       hs-admin [options] stream create --from-file FILE|- [attribute options]\n"
	"       hs-admin [options] stream alter NAME... [--retention DUR] [--offload-after DUR]\n"
	"                          [--offload-size SIZE]\n"
	"       hs-admin [options] stream delete NAME... [-f]\n"
	"       hs-admin [options] stream list [--names | --json] [--prefix P]\n"
	"       hs-admin [options] stream info NAME... [--json]\n"
	"       hs-admin [options] stream exists NAME...\n"
	"       hs-admin [options] stream trim NAME... --before POS\n"
	"       hs-admin [options] sub create SUB --stream NAME [--from POS]\n"
	"                          [--ack-timeout DUR] [--max-unacked N]\n"
	"       hs-admin [options] sub list [--names | --json] [--stream NAME]\n"
	"       hs-admin [options] sub info SUB... [--json]\n"
	"       hs-admin [options] sub delete SUB... [-f]\n"
	"       hs-admin [options] cluster status [--wait-healthy] [--json]\n"
	"       hs-admin [options] stats [--json] [--stream PREFIX]\n"
	"       hs-admin -h | --help | -V | --version\n";

static const char help_text[] =
	"hs-admin - manage HStore streams and look at the server's state\n"
	"\n"
	"usage: hs-admin [options] COMMAND [arguments]\n"
	"\n"
	"commands:\n"
	"  stream create NAME...      create streams (exit 65 if one exists, unless --exist-ok)\n"
	"  stream alter NAME...       change the retention and offload policies of streams\n"
	"  stream delete NAME...      delete streams and their data (asks on a tty, else -f)\n"
	"  stream list                list streams: a table on a tty, names otherwise\n"
	"  stream info NAME...        show a stream's attributes, epoch, nodeset, LNG and\n"
	"                             positions in both tiers\n"
	"  stream exists NAME...      exit 0 if every stream exists, 1 if one does not\n"
	"  stream trim NAME... --before POS   drop every record before POS\n"
	"  sub create SUB --stream NAME   create a named subscription (a durable cursor)\n"
	"  sub delete SUB...          delete subscriptions (asks on a tty, else -f)\n"
	"  sub list                   list subscriptions\n"
	"  sub info SUB...            show a subscription's checkpoint and progress\n"
	"  cluster status             show health, peers and streams (exit 1 unhealthy)\n"
	"  stats                      show the server's counters, per stream and per peer\n"
	"\n"
	"options:\n"
	"      --replication R        copies of each record, 1..127 (create)\n"
	"      --retention DUR        drop records older than DUR; 0 = forever (create, alter)\n"
	"      --offload-after DUR    offload records older than DUR; 0 = never (create,\n"
	"                             alter; hs-offload applies it)\n"
	"      --offload-size SIZE    also offload, whatever its age, once SIZE bytes are\n"
	"                             waiting in Tier1; 0 = no size trigger (create, alter)\n"
	"      --durability MODE      sync, async or memory (create)\n"
	"      --from-file FILE       read names to create, one per line; - is stdin\n"
	"      --exist-ok             an existing stream is not an error (create)\n"
	"  -f, --force                delete without asking (delete)\n"
	"      --names                one name per line (list)\n"
	"      --json                 one JSON object per line (list, info, status, stats)\n"
	"      --prefix P             only names starting with P (list)\n"
	"      --before POS           trim point: head, tail-N, eNnM, @TIME... (trim)\n"
	"      --wait-healthy         wait up to the timeout for a healthy cluster (status)\n"
	"      --stream NAME          the stream (sub create), only its subscriptions (sub\n"
	"                             list), or a name prefix (stats)\n"
	"      --from POS             where a subscription starts (sub create; default tail)\n"
	"      --ack-timeout DUR      redeliver what is unacknowledged after DUR (sub create;\n"
	"                             default 30s)\n"
	"      --max-unacked N        pause delivery at N unacknowledged records (sub create;\n"
	"                             default 10000)\n"
	"  -a, --addr ADDR            server: unix:PATH or HOST:PORT (HS_ADDR)\n"
	"  -t, --timeout DUR          per request, default 5s (HS_TIMEOUT)\n"
	"      --config FILE          configuration file (HS_CONFIG)\n"
	"  -X KEY=VAL                 override one configuration key\n"
	"  -v, --verbose              more on stderr (repeatable)\n"
	"  -q, --quiet                less on stderr\n"
	"  -h, --help                 show this help and exit\n"
	"  -V, --version              show the version and exit\n"
	"\n"
	"Exit status: 0 done, 1 negative answer (exists: no; status: unhealthy),\n"
	"64 usage, 65 bad input or stream already exists, 66 no such stream, subscription\n"
	"or file, 68 cannot resolve, 69 server unreachable, 75 timeout or subscription in\n"
	"use, 76 protocol mismatch.\n";

enum {
	OPT_REPLICATION = HS_OPT_FIRST_PRIVATE,
	OPT_RETENTION,
	OPT_OFFLOAD,
	OPT_DURABILITY,
	OPT_FROM_FILE,
	OPT_EXIST_OK,
	OPT_NAMES,
	OPT_JSON,
	OPT_PREFIX,
	OPT_BEFORE,
	OPT_WAIT_HEALTHY,
	OPT_STREAM,
	OPT_FROM,
	OPT_ACK_TIMEOUT,
	OPT_MAX_UNACKED,
	OPT_OFFLOAD_SIZE,
};

/* Which verb-specific flags were given (struct cmd.flags: which are allowed). */
enum {
	F_REPLICATION = 1 << 0,
	F_RETENTION = 1 << 1,
	F_OFFLOAD = 1 << 2,
	F_DURABILITY = 1 << 3,
	F_FROM_FILE = 1 << 4,
	F_EXIST_OK = 1 << 5,
	F_FORCE = 1 << 6,
	F_NAMES = 1 << 7,
	F_JSON = 1 << 8,
	F_PREFIX = 1 << 9,
	F_BEFORE = 1 << 10,
	F_WAIT = 1 << 11,
	F_STREAM = 1 << 12,
	F_FROM = 1 << 13,
	F_ACK_TIMEOUT = 1 << 14,
	F_MAX_UNACKED = 1 << 15,
	F_OFFLOAD_SIZE = 1 << 16,
};

static const char *const flag_names[] = {
	"--replication", "--retention", "--offload-after", "--durability", "--from-file",
	"--exist-ok", "--force", "--names", "--json", "--prefix", "--before",
	"--wait-healthy", "--stream", "--from", "--ack-timeout", "--max-unacked",
	"--offload-size",
};

struct name {
	const char *p;
	uint8_t len;
};

struct admin {
	struct hs_cli cli;
	struct hs_sconn c;
	bool connected;
	unsigned flags;            /* F_* given */
	struct hs_stream_attrs attrs;
	const char *from_file, *prefix, *stats_prefix, *before_arg;
	struct hs_pos before;
	struct hs_pos sub_from;    /* sub create --from (kind 0: tail) */
	uint32_t ack_timeout_ms, max_unacked;
	struct hs_buf out;         /* stdout, written once per batch */
	struct hs_buf req;         /* request frames */
	int first_err;             /* exit status of the first failed entry */
	size_t nfailed;            /* entries that failed */
	size_t done, total;        /* progress of a batched verb */
	uint16_t type;             /* the request type pipeline() sends */
	bool progress;             /* stderr is a tty and the work is long */
	bool printed;              /* info: a stream was shown (blank line before the next) */
	/* REDIRECTS: the first sequencer address a RESULT -HS_EREDIRECT
	 * named, the entries refused with -HS_EREDIRECT, kept to be sent
	 * there, and whether that was done (once per command) */
	char redirect[HS_NET_ADDR_MAX];
	struct name *redo;
	size_t nredo, capredo;
	bool redirected;
};

/* ---- output ------------------------------------------------------------ */

/* Write a->out to stdout.  0, ST_EPIPE when the reader has gone, or
 * EX_IOERR after saying why. */
static int out_flush(struct admin *a)
{
	size_t off = 0;

	while (off < a->out.len) {
		ssize_t n = write(STDOUT_FILENO, a->out.data + off, a->out.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			hs_buf_reset(&a->out);
			if (errno == EPIPE)
				return ST_EPIPE;
			return hs_cli_fail(&a->cli, EX_IOERR, "cannot write to stdout: %s",
					   strerror(errno));
		}
		off += (size_t)n;
	}
	hs_buf_reset(&a->out);
	return 0;
}

/* A JSON string from bytes that should be UTF-8 (server-supplied text);
 * invalid bytes become '?' rather than producing invalid JSON. */
static void json_str(struct hs_buf *b, const char *p, size_t n)
{
	char *tmp;

	if (hs_utf8_valid((const uint8_t *)p, n)) {
		hs_json_put_str(b, (const uint8_t *)p, n);
		return;
	}
	tmp = hs_xmalloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		tmp[i] = (unsigned char)p[i] < 0x80 ? p[i] : '?';
	hs_json_put_str(b, (const uint8_t *)tmp, n);
	free(tmp);
}

/* An LSN as "eNnM", or "-" / null when 0 (none). */
static void put_lsn(struct hs_buf *b, uint64_t lsn, bool json)
{
	char s[HS_POS_FMT_MAX];

	if (!lsn) {
		hs_buf_append(b, json ? "null" : "-", json ? 4 : 1);
		return;
	}
	hs_lsn_fmt(s, sizeof(s), lsn);
	if (json)
		hs_buf_printf(b, "\"%s\"", s);
	else
		hs_buf_append(b, s, strlen(s));
}

/* RFC 3339 UTC of unix ms, without the '@' of the position syntax. */
static const char *fmt_time(char *s, size_t n, uint64_t ms)
{
	struct hs_pos p = { .kind = HS_POS_TIME, .time_ms = (int64_t)ms };

	if (!ms || hs_pos_fmt(s, n, &p) < 0)
		return "-";
	return s + 1;
}

static void put_count(struct hs_buf *b, uint64_t v, bool json)
{
	if (v == UINT64_MAX)
		hs_buf_printf(b, "%s", json ? "null" : "-");
	else
		hs_buf_printf(b, "%llu", (unsigned long long)v);
}

/* A nodeset as "1,2,3" ("-" when empty, [1,2,3] in JSON). */
static void put_nodes(struct hs_buf *b, const uint32_t *nodes, uint8_t nn, bool json)
{
	if (!nn && !json) {
		hs_buf_appendc(b, '-');
		return;
	}
	if (json)
		hs_buf_appendc(b, '[');
	for (uint8_t i = 0; i < nn; i++)
		hs_buf_printf(b, "%s%u", i ? "," : "", nodes[i]);
	if (json)
		hs_buf_appendc(b, ']');
}

/* One stream as a JSON object; tiers: STREAM_INFO's Tier2 fields are
 * real (STREAM_LIST leaves them 0, so list omits them). */
static void info_json(struct hs_buf *b, const char *name, size_t len,
		      const struct hs_stream_info *in, bool tiers)
{
	hs_buf_append(b, "{\"name\":", 8);
	json_str(b, name, len);
	/* Log ids use all 64 bits: a string, since JSON readers such as jq
	 * keep numbers as doubles (exact only below 2^53). */
	hs_buf_printf(b, ",\"log\":\"%llu\",\"replication\":%u,\"durability\":\"%s\","
		      "\"retention_ms\":%llu,\"offload_after_ms\":%llu,\"offload_size\":%llu,"
		      "\"head\":",
		      (unsigned long long)in->log, in->attrs.replication,
		      hs_durability_name(in->attrs.durability),
		      (unsigned long long)in->attrs.retention_ms,
		      (unsigned long long)in->attrs.offload_after_ms,
		      (unsigned long long)in->attrs.offload_size);
	put_lsn(b, in->head, true);
	hs_buf_append(b, ",\"tail\":", 8);
	put_lsn(b, in->tail, true);
	hs_buf_append(b, ",\"trim\":", 8);
	put_lsn(b, in->trim, true);
	hs_buf_append(b, ",\"tier1_trim\":", 14);
	put_lsn(b, in->tier1_trim, true);
	if (tiers) {
		hs_buf_append(b, ",\"offload\":", 11);
		put_lsn(b, in->offload, true);
		hs_buf_printf(b, ",\"tier2_segments\":%u,\"tier2_expired\":", in->tier2_segments);
		put_lsn(b, in->tier2_expired, true);
	}
	hs_buf_printf(b, ",\"epoch\":%u,\"epoch_replication\":%u,\"nodeset\":", in->epoch,
		      in->r);
	put_nodes(b, in->nodes, in->nn, true);
	hs_buf_append(b, ",\"lng\":", 7);
	put_lsn(b, in->epoch ? in->released : 0, true);
	hs_buf_append(b, ",\"last_released\":", 17);
	put_lsn(b, in->epoch ? in->released : 0, true);
	hs_buf_printf(b, ",\"lce\":%u", in->lce);
	hs_buf_append(b, ",\"records\":", 11);
	put_count(b, in->records, true);
	hs_buf_append(b, ",\"bytes\":", 9);
	put_count(b, in->bytes, true);
	hs_buf_printf(b, ",\"created_ms\":%llu}\n", (unsigned long long)in->created_ms);
}

static void put_dur(struct hs_buf *b, uint64_t ms, const char *zero)
{
	char s[HS_DURATION_FMT_MAX];

	if (!ms) {
		hs_buf_printf(b, "%s", zero);
		return;
	}
	hs_fmt_duration(s, sizeof(s), ms);
	hs_buf_printf(b, "%s", s);
}

/* "key value" lines, one stream after another separated by a blank line. */
static void info_text(struct hs_buf *b, const char *name, size_t len,
		      const struct hs_stream_info *in)
{
	char t[HS_POS_FMT_MAX], sz[HS_SIZE_FMT_MAX];

	hs_buf_printf(b, "name          %.*s\nlog           %llu\nreplication   %u\n"
		      "durability    %s\nretention     ", (int)len, name,
		      (unsigned long long)in->log, in->attrs.replication,
		      hs_durability_name(in->attrs.durability));
	put_dur(b, in->attrs.retention_ms, "forever");
	hs_buf_printf(b, "\noffload-after ");
	put_dur(b, in->attrs.offload_after_ms, "never");
	hs_buf_printf(b, "\noffload-size  ");
	if (in->attrs.offload_size) {
		hs_fmt_size(sz, sizeof(sz), in->attrs.offload_size);
		hs_buf_printf(b, "%s", sz);
	} else {
		hs_buf_printf(b, "none");
	}
	if (in->epoch) {
		hs_buf_printf(b, "\nepoch         %u\nepoch-r       %u\nnodeset       ",
			      in->epoch, in->r);
		put_nodes(b, in->nodes, in->nn, false);
		hs_buf_printf(b, "\nlng           ");
		put_lsn(b, in->released, false);
		hs_buf_printf(b, "\nlast-released ");
		put_lsn(b, in->released, false);
	} else {
		hs_buf_printf(b, "\nepoch         - (not active on this server)");
	}
	hs_buf_printf(b, "\nlce           %u", in->lce);
	hs_buf_printf(b, "\nhead          ");
	put_lsn(b, in->head, false);
	hs_buf_printf(b, "\ntail          ");
	put_lsn(b, in->tail, false);
	hs_buf_printf(b, "\ntrim          ");
	put_lsn(b, in->trim, false);
	hs_buf_printf(b, "\ntier1-trim    ");
	put_lsn(b, in->tier1_trim, false);
	hs_buf_printf(b, "\noffload       ");
	put_lsn(b, in->offload, false);
	hs_buf_printf(b, "\ntier2         %u segments", in->tier2_segments);
	hs_buf_printf(b, "\ntier2-expired ");
	put_lsn(b, in->tier2_expired, false);
	hs_buf_printf(b, "\nrecords       ");
	put_count(b, in->records, false);
	hs_buf_printf(b, "\nbytes         ");
	if (in->bytes == UINT64_MAX) {
		hs_buf_printf(b, "-");
	} else {
		hs_fmt_size_human(sz, sizeof(sz), in->bytes);
		hs_buf_printf(b, "%llu (%s)", (unsigned long long)in->bytes, sz);
	}
	hs_buf_printf(b, "\ncreated       %s\n", fmt_time(t, sizeof(t), in->created_ms));
}

/* ---- connection and replies ------------------------------------------- */

static int connect_server(struct admin *a, bool quiet)
{
	char msg[512];
	int r;

	if (a->connected)
		return 0;
	r = hs_client_connect(&a->c, a->cli.addr, a->cli.timeout_ms, msg, sizeof(msg));
	if (r < 0) {
		if (quiet)
			return hs_exit_status(r);
		return hs_cli_fail(&a->cli, hs_exit_status(r), "%s", msg);
	}
	a->connected = true;
	return 0;
}

static void disconnect(struct admin *a)
{
	if (a->connected)
		hs_sconn_close(&a->c);
	a->connected = false;
}

/* The exit status for a failed transport call, after saying why. */
static int transport_fail(struct admin *a, int r)
{
	if (r == 0 || r == -ECONNRESET || r == -EPIPE)
		r = -HS_EUNAVAIL;
	if (r == -HS_EPROTO && a->c.why)
		return hs_cli_fail(&a->cli, hs_exit_status(r), "protocol error: %s", a->c.why);
	if (r == -HS_EUNAVAIL)
		return hs_cli_fail(&a->cli, hs_exit_status(r), "hs-serve closed the connection");
	return hs_cli_fail(&a->cli, hs_exit_status(r), "%s", hs_strerror(r));
}

/* A reply frame f to a request that expected `want`: 0 if it is one, else
 * the exit status after saying why (a whole-request RESULT error, or a
 * reply of another type). */
static int check_reply(struct admin *a, const struct hs_frame *f, uint16_t want)
{
	char msg[512];
	int r;

	if (f->type == want)
		return 0;
	r = hs_client_result(f, msg, sizeof(msg));
	if (r < 0)
		return hs_cli_fail(&a->cli, hs_exit_status(r), "%s", *msg ? msg : hs_strerror(r));
	return hs_cli_fail(&a->cli, EX_PROTOCOL, "protocol error: %s answered by %s",
			   hs_msg_name(want), hs_msg_name(f->type));
}

/* 1 if f is a RESULT -HS_EREDIRECT, which precedes a reply with entries
 * refused by a server that does not sequence their stream: the first
 * address named is kept in a->redirect.  Else 0. */
static int note_redirect(struct admin *a, const struct hs_frame *f)
{
	char msg[sizeof(a->redirect)];

	if (f->type != HS_MSG_RESULT || hs_client_result(f, msg, sizeof(msg)) != -HS_EREDIRECT)
		return 0;
	if (!a->redirect[0] && msg[0])
		snprintf(a->redirect, sizeof(a->redirect), "%s", msg);
	return 1;
}

/* An entry refused with -HS_EREDIRECT: keep it for the redirect (1), or
 * 0 when none is to be followed (already done, or no address named). */
static int keep_redo(struct admin *a, const char *name, size_t len, int status)
{
	if (status != -HS_EREDIRECT || a->redirected || !a->redirect[0])
		return 0;
	if (a->nredo == a->capredo) {
		a->capredo = a->capredo ? 2 * a->capredo : 16;
		a->redo = hs_xrealloc(a->redo, a->capredo * sizeof(*a->redo));
	}
	a->redo[a->nredo].p = name;
	a->redo[a->nredo++].len = (uint8_t)len;
	return 1;
}

/* Connect to the redirect's address for the entries kept in a->redo
 * (a->redirected from now on).  0, or the exit status after saying why. */
static int follow_redirect(struct admin *a)
{
	char msg[512];
	int r;

	a->redirected = true;
	hs_info("%zu entr%s sequenced at %s: sending %s there", a->nredo,
		a->nredo == 1 ? "y" : "ies", a->redirect, a->nredo == 1 ? "it" : "them");
	r = hs_client_reconnect(&a->c, a->redirect, a->cli.timeout_ms, msg, sizeof(msg));
	if (r < 0) {
		a->connected = false;
		return hs_cli_fail(&a->cli, hs_exit_status(r), "%s", msg);
	}
	a->connected = true;
	return 0;
}

/* Send the frame in a->req (request id) and wait for its reply of type want
 * (noting a redirect that precedes it). */
static int call(struct admin *a, uint64_t id, uint16_t want, struct hs_frame *f)
{
	int r;

	hs_buf_append(hs_sconn_out(&a->c), a->req.data, a->req.len);
	hs_buf_reset(&a->req);
	do {
		r = hs_client_call(&a->c, id, f);
		if (r < 0)
			return transport_fail(a, r);
	} while (note_redirect(a, f));
	return check_reply(a, f, want);
}

/* call() for a reply that is a list: 0 with it decoded into *l (borrowing
 * *f), or the exit status after saying why. */
static int call_list(struct admin *a, uint64_t id, uint16_t want, struct hs_frame *f,
		     struct hs_clist *l)
{
	int st = call(a, id, want, f);

	if (st)
		return st;
	if (hs_msg_clist_dec(f->type, f->body, f->body_len, l) < 0)
		return hs_cli_fail(&a->cli, EX_PROTOCOL, "protocol error: bad %s",
				   hs_msg_name(want));
	return 0;
}

/* One page of STREAM_LIST or SUB_LIST (type): the names after cursor that
 * filter selects (with their info if asked), as call_list(). */
static int list_page(struct admin *a, uint16_t type, bool info, const char *filter,
		     size_t flen, const char *cursor, struct hs_frame *f, struct hs_clist *l)
{
	struct hs_list_req req = {
		.flags = info ? HS_LIST_INFO : 0,
		.filter = filter,
		.filter_len = (uint8_t)flen,
		.cursor = cursor,
		.cursor_len = (uint8_t)strlen(cursor),
	};
	uint64_t id = hs_client_next_id();

	if (type == HS_MSG_SUB_LIST)
		hs_msg_sub_list_enc(&a->req, id, &req);
	else
		hs_msg_stream_list_enc(&a->req, id, &req);
	return call_list(a, id, type == HS_MSG_SUB_LIST ? HS_MSG_SUBS : HS_MSG_STREAMS, f, l);
}

/* Count one failed entry (unless kept for a redirect) and remember the
 * first failure's status: true if it is to be reported, as the first
 * FAIL_SHOWN are (a bulk creation run twice must not print 100,000 lines). */
static bool fail_shown(struct admin *a, const char *name, size_t len, int status)
{
	if (keep_redo(a, name, len, status))
		return false;
	if (!a->first_err)
		a->first_err = hs_exit_status(status);
	return a->nfailed++ < FAIL_SHOWN;
}

/* Report one failed entry, a stream's or (the SUB_* requests) a
 * subscription's (fail_shown). */
static void entry_fail(struct admin *a, const char *name, size_t len, int status)
{
	bool sub = a->type == HS_MSG_SUB_CREATE || a->type == HS_MSG_SUB_DELETE ||
		   a->type == HS_MSG_SUB_INFO;
	const char *what = sub ? "subscription" : "stream";
	int st = hs_exit_status(status);

	if (!fail_shown(a, name, len, status))
		return;
	if (status == (sub ? -HS_ENOENT : -HS_ENOSTREAM))
		hs_cli_fail(&a->cli, st, "no such %s '%.*s'", what, (int)len, name);
	else if (status == -HS_EEXIST)
		hs_cli_fail(&a->cli, st, "%s '%.*s' already exists", what, (int)len, name);
	else if (sub && status == -HS_ENOSTREAM)
		hs_cli_fail(&a->cli, st, "subscription '%.*s': no such stream '%s'", (int)len,
			    name, a->stats_prefix ? a->stats_prefix : "?");
	else if (sub && status == -HS_EUSAGE)
		/* Servers before @time support for SUB_CREATE answer so. */
		hs_cli_fail(&a->cli, EX_USAGE, "subscription '%.*s': the server does not "
			    "accept this position", (int)len, name);
	else
		hs_cli_fail(&a->cli, st, "%s '%.*s': %s", what, (int)len, name,
			    hs_strerror(status));
}

static void show_progress(struct admin *a, bool last)
{
	if (a->progress)
		fprintf(stderr, "\r%zu/%zu%s", a->done, a->total, last ? "\n" : "");
}

/* ---- batched list requests -------------------------------------------- */

typedef int (*reply_fn)(struct admin *a, struct hs_clist *l, const struct name *names,
			size_t n);

/* Add the entry of request `type` for name nm: the name with what the
 * options say. */
static void add_entry(struct admin *a, struct hs_msg_wr *w, uint16_t type,
		      const struct name *nm)
{
	struct hs_subcreate_ent e;

	switch (type) {
	case HS_MSG_STREAM_CREATE:
	case HS_MSG_STREAM_ALTER:
		hs_msg_stream_create_add(w, nm->p, nm->len, &a->attrs);
		break;
	case HS_MSG_STREAM_TRIM:
		hs_msg_stream_trim_add(w, nm->p, nm->len, &a->before);
		break;
	case HS_MSG_SUB_CREATE: /* sub create checked --stream */
		e = (struct hs_subcreate_ent){
			.sub = nm->p,
			.sub_len = nm->len,
			.stream = a->stats_prefix,
			.stream_len = (uint8_t)strlen(a->stats_prefix),
			.from = a->sub_from,
			.ack_timeout_ms = a->ack_timeout_ms,
			.max_unacked = a->max_unacked,
		};
		hs_msg_sub_create_add(w, &e);
		break;
	default:
		hs_msg_name_add(w, nm->p, nm->len);
		break;
	}
}

/* Encode names[0..n) (at most BATCH, within the server's frame limit) as
 * one request of type `type` into a->c's output; returns how many went. */
static size_t encode_batch(struct admin *a, uint16_t type, uint64_t id,
			   const struct name *names, size_t n)
{
	struct hs_buf *b = hs_sconn_out(&a->c);
	/* A SUB_CREATE entry holds two names. */
	size_t emax = type == HS_MSG_SUB_CREATE ? 2 * ENTRY_MAX : ENTRY_MAX;
	struct hs_msg_wr w;
	size_t k;

	switch (type) {
	case HS_MSG_STREAM_CREATE:
		hs_msg_stream_create_begin(&w, b, id);
		break;
	case HS_MSG_STREAM_DELETE:
		hs_msg_stream_delete_begin(&w, b, id);
		break;
	case HS_MSG_STREAM_TRIM:
		hs_msg_stream_trim_begin(&w, b, id);
		break;
	case HS_MSG_STREAM_ALTER:
		hs_msg_stream_alter_begin(&w, b, id);
		break;
	case HS_MSG_SUB_CREATE:
		hs_msg_sub_create_begin(&w, b, id);
		break;
	case HS_MSG_SUB_DELETE:
		hs_msg_sub_delete_begin(&w, b, id);
		break;
	case HS_MSG_SUB_INFO:
		hs_msg_sub_info_begin(&w, b, id);
		break;
	default:
		hs_msg_stream_info_begin(&w, b, id);
		break;
	}
	for (k = 0; k < n && k < BATCH; k++) {
		if (k && hs_msg_wr_size(&w) + emax > a->c.max_out)
			break;
		add_entry(a, &w, type, &names[k]);
	}
	hs_msg_wr_end(&w);
	return k;
}

/*
 * Send names[0..n) as requests of `type` with up to `window` frames in
 * flight; fn handles each reply (STREAMS to STREAM_INFO, SUBS to SUB_INFO,
 * else STATUSES, already decoded into l, with as many entries as its
 * batch) with the batch's names.  Returns 0 or the exit status of a
 * failure that stops everything (transport, protocol, a whole-request
 * RESULT); per-entry failures go through entry_fail().
 */
static int pipeline(struct admin *a, uint16_t type, const struct name *names, size_t n,
		    int window, reply_fn fn)
{
	uint16_t want = type == HS_MSG_STREAM_INFO ? HS_MSG_STREAMS :
			type == HS_MSG_SUB_INFO ? HS_MSG_SUBS : HS_MSG_STATUSES;
	struct { uint64_t id; size_t first, n; } fl[WINDOW];
	size_t sent = 0;
	int nfl = 0, r;

	a->type = type;
	a->done = 0;
	a->total = n;
	while (a->done < n) {
		struct hs_frame f;
		struct hs_clist l;
		int i;

		while (nfl < window && sent < n) {
			uint64_t id = hs_client_next_id();
			size_t k = encode_batch(a, type, id, names + sent, n - sent);

			fl[nfl].id = id;
			fl[nfl].first = sent;
			fl[nfl].n = k;
			nfl++;
			sent += k;
		}
		r = hs_sconn_recv(&a->c, &f); /* flushes the requests first */
		if (r <= 0)
			return transport_fail(a, r);
		for (i = 0; i < nfl && fl[i].id != f.id; i++)
			;
		if (i == nfl)
			return hs_cli_fail(&a->cli, EX_PROTOCOL,
					   "protocol error: reply to unknown request %llu",
					   (unsigned long long)f.id);
		if (note_redirect(a, &f))
			continue; /* the reply follows */
		r = check_reply(a, &f, want);
		if (r)
			return r;
		if (hs_msg_clist_dec(f.type, f.body, f.body_len, &l) < 0 || l.n != fl[i].n)
			return hs_cli_fail(&a->cli, EX_PROTOCOL, "protocol error: bad %s",
					   hs_msg_name(f.type));
		r = fn(a, &l, names + fl[i].first, fl[i].n);
		if (r)
			return r;
		a->done += fl[i].n;
		fl[i] = fl[--nfl];
		show_progress(a, a->done == n);
	}
	return 0;
}

/* STATUSES (to every request but the info ones): report the failed
 * entries, say what was done with the others. */
static int on_statuses(struct admin *a, struct hs_clist *l, const struct name *names, size_t n)
{
	struct hs_status_ent e;
	char s[HS_POS_FMT_MAX];

	for (size_t i = 0; i < n && hs_statuses_next(l, &e) == 1; i++) {
		const char *p = names[i].p;
		int len = names[i].len;

		if (e.status == -HS_EEXIST && (a->flags & F_EXIST_OK))
			continue; /* stream create --exist-ok */
		if (e.status < 0) {
			entry_fail(a, p, len, e.status);
		} else if (a->type == HS_MSG_STREAM_CREATE) {
			hs_debug("created stream '%.*s' (log %llu)", len, p,
				 (unsigned long long)e.value);
		} else if (a->type == HS_MSG_STREAM_DELETE) {
			hs_info("deleted stream '%.*s'", len, p);
		} else if (a->type == HS_MSG_STREAM_TRIM) {
			hs_lsn_fmt(s, sizeof(s), e.value);
			hs_info("stream '%.*s' trimmed through %s", len, p, e.value ? s : "nothing");
		} else if (a->type == HS_MSG_SUB_CREATE) {
			hs_lsn_fmt(s, sizeof(s), e.value);
			hs_info("created subscription '%.*s' at %s", len, p, s);
		}
	}
	return 0;
}

static int on_exists(struct admin *a, struct hs_clist *l, const struct name *names, size_t n)
{
	struct hs_streams_ent e;

	for (size_t i = 0; i < n && hs_streams_next(l, &e) == 1; i++) {
		if (e.status == -HS_ENOSTREAM) {
			if (!a->first_err)
				a->first_err = 1;
		} else if (e.status < 0) {
			entry_fail(a, names[i].p, names[i].len, e.status);
		}
	}
	return 0;
}

/* info: a blank line between two entries' text. */
static void info_sep(struct admin *a)
{
	if (a->printed)
		hs_buf_appendc(&a->out, '\n');
	a->printed = true;
}

static int on_info(struct admin *a, struct hs_clist *l, const struct name *names, size_t n)
{
	struct hs_streams_ent e;

	/* The server answers in the names' order, one entry each. */
	for (size_t i = 0; i < n && hs_streams_next(l, &e) == 1; i++) {
		if (e.status < 0 || !e.has_info) {
			entry_fail(a, names[i].p, names[i].len, e.status < 0 ? e.status : -HS_EPROTO);
			continue;
		}
		if (a->flags & F_JSON) {
			info_json(&a->out, e.stream, e.stream_len, &e.info, true);
		} else {
			info_sep(a);
			info_text(&a->out, e.stream, e.stream_len, &e.info);
		}
	}
	return out_flush(a);
}

/* ---- names from argv or a file ---------------------------------------- */

static int check_name(struct admin *a, const char *p, size_t len, const char *where)
{
	return hs_cli_check_name(&a->cli, where, "stream", p, len);
}

static int names_from_argv(struct admin *a, char **argv, int argc, struct name **out)
{
	struct name *v = hs_xcalloc(argc ? argc : 1, sizeof(*v));
	int st;

	for (int i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]);

		st = check_name(a, argv[i], len, "");
		if (st) {
			free(v);
			return st;
		}
		v[i].p = argv[i];
		v[i].len = (uint8_t)len;
	}
	*out = v;
	return 0;
}

/* Read FILE (or stdin for "-") whole into data and split it into names,
 * one per line; blank lines are skipped, a bad name is bad input (65). */
static int names_from_file(struct admin *a, const char *path, struct hs_buf *data,
			   struct name **out, size_t *count)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	struct name *v = NULL;
	size_t n = 0, cap = 0, line = 0;
	uint8_t *p, *end;

	if (fd < 0)
		return hs_cli_fail(&a->cli, errno == ENOENT ? EX_NOINPUT : EX_IOERR,
				   "cannot open '%s': %s", path, strerror(errno));
	for (;;) {
		ssize_t r = read(fd, hs_buf_reserve(data, 1 << 16), 1 << 16);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			if (fd != STDIN_FILENO)
				close(fd);
			return hs_cli_fail(&a->cli, EX_IOERR, "cannot read '%s': %s", path,
					   strerror(e));
		}
		if (!r)
			break;
		data->len += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	p = data->data;
	end = p + data->len;
	while (p && p < end) {
		uint8_t *nl = memchr(p, '\n', end - p);
		size_t len = (nl ? nl : end) - p;

		line++;
		if (len && p[len - 1] == '\r')
			len--;
		if (len) {
			if (!hs_stream_name_valid((const char *)p, len)) {
				free(v);
				return hs_cli_fail(&a->cli, EX_DATAERR,
						   "%s:%zu: invalid stream name '%.*s'", path,
						   line, (int)(len > 300 ? 300 : len), (char *)p);
			}
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				v = hs_xrealloc(v, cap * sizeof(*v));
			}
			v[n].p = (const char *)p;
			v[n].len = (uint8_t)len;
			n++;
		}
		p = nl ? nl + 1 : end;
	}
	*out = v;
	*count = n;
	return 0;
}

/* ---- stream verbs ----------------------------------------------------- */

static int finish(struct admin *a, int st)
{
	if (a->nfailed > FAIL_SHOWN)
		hs_cli_fail(&a->cli, 0, "%zu failures in all, %zu not shown", a->nfailed,
			    a->nfailed - FAIL_SHOWN);
	return st ? st : a->first_err;
}

/* Connect and send names[0..n) as requests of `type` (pipeline()), then
 * once more the entries refused with -HS_EREDIRECT, to the sequencer
 * named (REDIRECTS).  Frees names; returns the verb's exit status. */
static int send_names(struct admin *a, struct name *names, size_t n, uint16_t type,
		      int window, reply_fn fn)
{
	int st = connect_server(a, false);

	if (!st)
		st = pipeline(a, type, names, n, window, fn);
	if (!st && a->nredo && !(st = follow_redirect(a)))
		st = pipeline(a, type, a->redo, a->nredo, window, fn);
	free(names);
	return finish(a, st);
}

static int cmd_create(struct admin *a, int argc, char **argv)
{
	struct hs_buf data = HS_BUF_INIT;
	struct name *names = NULL;
	size_t n = 0;
	int st;

	if (a->from_file && argc)
		return hs_cli_usage_error(&a->cli, "give names or --from-file, not both");
	if (!a->from_file && !argc)
		return hs_cli_usage_error(&a->cli, "stream create needs a NAME or --from-file");
	if (a->from_file) {
		st = names_from_file(a, a->from_file, &data, &names, &n);
	} else {
		st = names_from_argv(a, argv, argc, &names);
		n = (size_t)argc;
	}
	if (st) {
		free(names);
	} else {
		a->progress = n > 10 * BATCH && isatty(STDERR_FILENO);
		st = send_names(a, names, n, HS_MSG_STREAM_CREATE, WINDOW, on_statuses);
	}
	hs_buf_free(&data);
	return st;
}

static int cmd_alter(struct admin *a, int argc, char **argv)
{
	struct name *names;
	int st;

	if (!argc)
		return hs_cli_usage_error(&a->cli, "stream alter needs a NAME");
	if (!(a->flags & (F_RETENTION | F_OFFLOAD | F_OFFLOAD_SIZE)))
		return hs_cli_usage_error(
			&a->cli, "stream alter needs --retention, --offload-after or --offload-size");
	st = names_from_argv(a, argv, argc, &names);
	if (st)
		return st;
	return send_names(a, names, (size_t)argc, HS_MSG_STREAM_ALTER, WINDOW, on_statuses);
}

/* Without -f: ask on a tty (stdin and stderr), refuse otherwise, before
 * deleting names[0..n), streams or (sub) subscriptions.  Returns 0 to go
 * on, 1 when the user said no, or a usage status. */
static int confirm_delete(struct admin *a, const struct name *names, size_t n, bool sub)
{
	char answer[16];

	if (a->flags & F_FORCE)
		return 0;
	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
		return hs_cli_fail(&a->cli, EX_USAGE, "refusing to delete without -f "
				   "(stdin is not a terminal to ask)");
	if (sub)
		fprintf(stderr, "delete %zu subscription(s) and their checkpoints? [y/N] ", n);
	else if (n == 1)
		fprintf(stderr, "delete stream '%.*s' and all its records? [y/N] ",
			names[0].len, names[0].p);
	else
		fprintf(stderr, "delete %zu streams and all their records? [y/N] ", n);
	if (!fgets(answer, sizeof(answer), stdin) || (strcmp(answer, "y\n") &&
						       strcmp(answer, "yes\n")))
		return 1;
	return 0;
}

static int cmd_delete(struct admin *a, int argc, char **argv)
{
	struct name *names;
	int st;

	if (!argc)
		return hs_cli_usage_error(&a->cli, "stream delete needs a NAME");
	st = names_from_argv(a, argv, argc, &names);
	if (st)
		return st;
	st = confirm_delete(a, names, (size_t)argc, false);
	if (st) {
		free(names);
		return st;
	}
	return send_names(a, names, (size_t)argc, HS_MSG_STREAM_DELETE, WINDOW, on_statuses);
}

static int cmd_trim(struct admin *a, int argc, char **argv)
{
	struct name *names;
	int st;

	if (!argc)
		return hs_cli_usage_error(&a->cli, "stream trim needs a NAME");
	if (!a->before_arg)
		return hs_cli_usage_error(&a->cli, "stream trim needs --before POS");
	if (hs_pos_parse(a->before_arg, (int64_t)time(NULL) * 1000, &a->before) < 0)
		return hs_cli_usage_error(&a->cli, "invalid position '%s': %s (use %s)",
					  a->before_arg,
					  hs_pos_error(a->before_arg, (int64_t)time(NULL) * 1000),
					  HS_POS_SYNTAX);
	st = names_from_argv(a, argv, argc, &names);
	if (st)
		return st;
	return send_names(a, names, (size_t)argc, HS_MSG_STREAM_TRIM, WINDOW, on_statuses);
}

static int cmd_info_exists(struct admin *a, int argc, char **argv, bool exists)
{
	struct name *names;
	int st;

	if (!argc)
		return hs_cli_usage_error(&a->cli, "stream %s needs a NAME",
					  exists ? "exists" : "info");
	st = names_from_argv(a, argv, argc, &names);
	if (st)
		return st;
	return send_names(a, names, (size_t)argc, HS_MSG_STREAM_INFO, exists ? WINDOW : 1,
			  exists ? on_exists : on_info);
}

static int cmd_info(struct admin *a, int argc, char **argv)
{
	return cmd_info_exists(a, argc, argv, false);
}

static int cmd_exists(struct admin *a, int argc, char **argv)
{
	return cmd_info_exists(a, argc, argv, true);
}

/* One row of the tty table (list), kept until the widths are known. */
struct row {
	char *name;
	struct hs_stream_info info;
};

/* The RECORDS and BYTES cells of a table row ("-" when unknown). */
static int cell_records(char *s, size_t n, const struct hs_stream_info *in)
{
	if (in->records == UINT64_MAX)
		return snprintf(s, n, "-");
	return snprintf(s, n, "%llu", (unsigned long long)in->records);
}

static int cell_bytes(char *s, size_t n, const struct hs_stream_info *in)
{
	if (in->bytes == UINT64_MAX)
		return snprintf(s, n, "-");
	return hs_fmt_size_human(s, n, in->bytes);
}

static void table(struct admin *a, const struct row *rows, size_t n)
{
	int wn = 4, wr = 7, wb = 5, wh = 4, wt = 4, l;
	char s[HS_POS_FMT_MAX], h[HS_POS_FMT_MAX], t[HS_POS_FMT_MAX], r[24], b[HS_SIZE_FMT_MAX];

	for (size_t i = 0; i < n; i++) {
		const struct hs_stream_info *in = &rows[i].info;

		l = (int)strlen(rows[i].name);
		wn = l > wn ? l : wn;
		l = cell_records(r, sizeof(r), in);
		wr = l > wr ? l : wr;
		l = cell_bytes(b, sizeof(b), in);
		wb = l > wb ? l : wb;
		l = hs_lsn_fmt(h, sizeof(h), in->head);
		wh = l > wh ? l : wh;
		l = hs_lsn_fmt(t, sizeof(t), in->tail);
		wt = l > wt ? l : wt;
	}
	hs_buf_printf(&a->out, "%-*s  %*s  %*s  %-*s  %-*s  %s\n", wn, "NAME", wr, "RECORDS",
		      wb, "BYTES", wh, "HEAD", wt, "TAIL", "CREATED");
	for (size_t i = 0; i < n; i++) {
		const struct hs_stream_info *in = &rows[i].info;

		cell_records(r, sizeof(r), in);
		cell_bytes(b, sizeof(b), in);
		hs_lsn_fmt(h, sizeof(h), in->head);
		hs_lsn_fmt(t, sizeof(t), in->tail);
		hs_buf_printf(&a->out, "%-*s  %*s  %*s  %-*s  %-*s  %s\n", wn, rows[i].name, wr,
			      r, wb, b, wh, h, wt, t, fmt_time(s, sizeof(s), in->created_ms));
	}
}

static int cmd_list(struct admin *a, int argc, char **argv)
{
	bool json = a->flags & F_JSON;
	bool tab = !json && !(a->flags & F_NAMES) && isatty(STDOUT_FILENO);
	char cursor[HS_NAME_MAX + 1] = "";
	struct row *rows = NULL;
	size_t nrows = 0, caprows = 0;
	struct hs_frame f;
	struct hs_clist l;
	struct hs_streams_ent e;
	size_t plen = a->prefix ? strlen(a->prefix) : 0;
	int st;

	if (argc)
		return hs_cli_usage_error(&a->cli, "stream list takes no NAME (use --prefix)");
	if (json && (a->flags & F_NAMES))
		return hs_cli_usage_error(&a->cli, "--names and --json exclude each other");
	if (plen && (plen > HS_NAME_MAX || !hs_stream_prefix_valid(a->prefix, plen)))
		return hs_cli_usage_error(&a->cli, "invalid --prefix '%s'", a->prefix);
	st = connect_server(a, false);
	if (st)
		return st;
	for (;;) {
		st = list_page(a, HS_MSG_STREAM_LIST, json || tab, a->prefix, plen, cursor, &f, &l);
		if (st)
			goto out;
		while (hs_streams_next(&l, &e) == 1) {
			/* The cursor moves over every entry, shown or not. */
			memcpy(cursor, e.stream, e.stream_len);
			cursor[e.stream_len] = 0;
			if (e.status < 0 || ((json || tab) && !e.has_info))
				continue;
			if (json) {
				info_json(&a->out, e.stream, e.stream_len, &e.info, false);
			} else if (tab) {
				if (nrows == caprows) {
					caprows = caprows ? 2 * caprows : 64;
					rows = hs_xrealloc(rows, caprows * sizeof(*rows));
				}
				rows[nrows].name = hs_xstrdup(cursor);
				rows[nrows++].info = e.info;
			} else {
				hs_buf_append(&a->out, e.stream, e.stream_len);
				hs_buf_appendc(&a->out, '\n');
			}
		}
		st = out_flush(a);
		if (st)
			goto out;
		/* An empty page with MORE would loop for ever on the same cursor. */
		if (!(l.flags & HS_LIST_MORE) || !l.n)
			break;
	}
	if (tab) {
		table(a, rows, nrows);
		st = out_flush(a);
	}
out:
	for (size_t i = 0; i < nrows; i++)
		free(rows[i].name);
	free(rows);
	return st;
}

/* ---- subscriptions ------------------------------------------------------ */

static void sub_info_json(struct hs_buf *b, const char *name, size_t len,
			  const struct hs_sub_info *in)
{
	hs_buf_append(b, "{\"name\":", 8);
	json_str(b, name, len);
	hs_buf_append(b, ",\"stream\":", 10);
	json_str(b, in->stream, in->stream_len);
	hs_buf_printf(b, ",\"ack_timeout_ms\":%u,\"max_unacked\":%u,\"checkpoint\":",
		      in->ack_timeout_ms, in->max_unacked);
	put_lsn(b, in->checkpoint, true);
	hs_buf_append(b, ",\"delivered\":", 13);
	put_lsn(b, in->delivered, true);
	hs_buf_printf(b, ",\"unacked\":%u,\"consumers\":%u}\n", in->unacked, in->consumers);
}

static void sub_info_text(struct hs_buf *b, const char *name, size_t len,
			  const struct hs_sub_info *in)
{
	hs_buf_printf(b, "name          %.*s\nstream        %.*s\nack-timeout   ", (int)len, name,
		      (int)in->stream_len, in->stream);
	put_dur(b, in->ack_timeout_ms, "0");
	hs_buf_printf(b, "\nmax-unacked   %u\ncheckpoint    ", in->max_unacked);
	put_lsn(b, in->checkpoint, false);
	hs_buf_printf(b, "\ndelivered     ");
	put_lsn(b, in->delivered, false);
	hs_buf_printf(b, "\nunacked       %u\nconsumers     %u\n", in->unacked, in->consumers);
}

static int sub_names(struct admin *a, int argc, char **argv, const char *verb,
		     struct name **names)
{
	if (!argc)
		return hs_cli_usage_error(&a->cli, "sub %s needs a SUB", verb);
	if ((size_t)argc > BATCH)
		return hs_cli_usage_error(&a->cli, "at most %d subscriptions at once", BATCH);
	return names_from_argv(a, argv, argc, names);
}

static int on_sub_info(struct admin *a, struct hs_clist *l, const struct name *names, size_t n)
{
	struct hs_subs_ent e;

	for (size_t i = 0; i < n && hs_subs_next(l, &e) == 1; i++) {
		if (e.status < 0 || !e.has_info) {
			entry_fail(a, names[i].p, names[i].len, e.status < 0 ? e.status : -HS_EPROTO);
			continue;
		}
		if (a->flags & F_JSON) {
			sub_info_json(&a->out, e.sub, e.sub_len, &e.info);
		} else {
			info_sep(a);
			sub_info_text(&a->out, e.sub, e.sub_len, &e.info);
		}
	}
	return out_flush(a);
}

static int cmd_sub_create(struct admin *a, int argc, char **argv)
{
	struct name *names;
	int st;

	if (!a->stats_prefix)
		return hs_cli_usage_error(&a->cli, "sub create needs --stream NAME");
	if ((st = check_name(a, a->stats_prefix, strlen(a->stats_prefix), "--stream: ")))
		return st;
	if ((st = sub_names(a, argc, argv, "create", &names)))
		return st;
	return send_names(a, names, (size_t)argc, HS_MSG_SUB_CREATE, WINDOW, on_statuses);
}

static int cmd_sub_delete(struct admin *a, int argc, char **argv)
{
	struct name *names;
	int st;

	if ((st = sub_names(a, argc, argv, "delete", &names)))
		return st;
	st = confirm_delete(a, names, (size_t)argc, true);
	if (st) {
		free(names);
		return st;
	}
	return send_names(a, names, (size_t)argc, HS_MSG_SUB_DELETE, WINDOW, on_statuses);
}

static int cmd_sub_info(struct admin *a, int argc, char **argv)
{
	struct name *names;
	int st;

	if ((st = sub_names(a, argc, argv, "info", &names)))
		return st;
	/* A window of 1: the output follows the input order. */
	return send_names(a, names, (size_t)argc, HS_MSG_SUB_INFO, 1, on_sub_info);
}

static int cmd_sub_list(struct admin *a, int argc, char **argv)
{
	bool json = a->flags & F_JSON;
	bool tab = !json && !(a->flags & F_NAMES) && isatty(STDOUT_FILENO);
	char cursor[HS_NAME_MAX + 1] = "";
	struct hs_frame f;
	struct hs_clist l;
	struct hs_subs_ent e;
	size_t slen = a->stats_prefix ? strlen(a->stats_prefix) : 0;
	int st;

	if (argc)
		return hs_cli_usage_error(&a->cli, "sub list takes no SUB (use --stream)");
	if (json && (a->flags & F_NAMES))
		return hs_cli_usage_error(&a->cli, "--names and --json exclude each other");
	if (slen && (st = check_name(a, a->stats_prefix, slen, "--stream: ")))
		return st;
	st = connect_server(a, false);
	if (st)
		return st;
	if (tab)
		hs_buf_printf(&a->out, "%-24s  %-24s  %-14s  %s\n", "NAME", "STREAM", "CHECKPOINT",
			      "CONSUMERS");
	for (;;) {
		st = list_page(a, HS_MSG_SUB_LIST, json || tab, a->stats_prefix, slen, cursor, &f,
			       &l);
		if (st)
			return st;
		while (hs_subs_next(&l, &e) == 1) {
			memcpy(cursor, e.sub, e.sub_len);
			cursor[e.sub_len] = 0;
			if (e.status < 0 || ((json || tab) && !e.has_info))
				continue;
			if (json) {
				sub_info_json(&a->out, e.sub, e.sub_len, &e.info);
			} else if (tab) {
				char s[HS_POS_FMT_MAX] = "-";

				if (e.info.checkpoint)
					hs_lsn_fmt(s, sizeof(s), e.info.checkpoint);
				hs_buf_printf(&a->out, "%-24s  %-24.*s  %-14s  %u\n", cursor,
					      (int)e.info.stream_len, e.info.stream, s,
					      e.info.consumers);
			} else {
				hs_buf_append(&a->out, e.sub, e.sub_len);
				hs_buf_appendc(&a->out, '\n');
			}
		}
		st = out_flush(a);
		if (st)
			return st;
		if (!(l.flags & HS_LIST_MORE) || !l.n)
			break;
	}
	return 0;
}

/* ---- cluster status and stats ----------------------------------------- */

static const char *peer_state(uint8_t s)
{
	switch (s) {
	case HS_PEER_UP:
		return "up";
	case HS_PEER_DOWN:
		return "down";
	case HS_PEER_STARTING:
		return "starting";
	case HS_PEER_DRAINING:
		return "draining";
	}
	return "unknown";
}

static const char *cstream_state(uint8_t s)
{
	switch (s) {
	case HS_CSTREAM_ACTIVE:
		return "active";
	case HS_CSTREAM_RECOVERING:
		return "recovering";
	case HS_CSTREAM_WAITING:
		return "waiting";
	}
	return "unknown";
}

/* A peer's last error: "-", or "TEXT (TIME)"; in s (n bytes). */
static const char *peer_error(char *s, size_t n, const struct hs_peer_ent *p)
{
	char t[HS_POS_FMT_MAX];

	if (!p->last_error)
		return "-";
	snprintf(s, n, "%s (%s)", hs_strerror(p->last_error),
		 fmt_time(t, sizeof(t), p->last_error_ms));
	return s;
}

static void status_json(struct admin *a, struct hs_clist *l)
{
	struct hs_peer_ent p;
	struct hs_cstream_ent c;
	struct hs_buf *b = &a->out;
	int i = 0;

	hs_buf_printf(b, "{\"cluster_id\":\"%016llx\",\"healthy\":%s,\"replication\":%u,"
		      "\"peers\":[", (unsigned long long)l->cluster_id,
		      l->healthy ? "true" : "false", l->replication);
	while (hs_peer_next(l, &p) == 1) {
		hs_buf_printf(b, "%s{\"node_id\":%u,\"state\":\"%s\",\"up\":%s,\"data\":%s,"
			      "\"addr\":", i++ ? "," : "", p.node_id, peer_state(p.state),
			      p.state == HS_PEER_UP ? "true" : "false",
			      p.flags & HS_PEERF_DATA ? "true" : "false");
		json_str(b, p.addr, p.addr_len);
		hs_buf_printf(b, ",\"pending_bytes\":%llu,\"connects\":%llu,\"losses\":%llu,"
			      "\"last_error\":", (unsigned long long)p.pending_bytes,
			      (unsigned long long)p.connects, (unsigned long long)p.losses);
		if (p.last_error) {
			const char *m = hs_strerror(p.last_error);

			json_str(b, m, strlen(m));
		} else {
			hs_buf_append(b, "null", 4);
		}
		hs_buf_printf(b, ",\"last_error_ms\":%llu}", (unsigned long long)p.last_error_ms);
	}
	hs_buf_printf(b, "],\"streams_active\":%u,\"streams\":[", l->streams_active);
	i = 0;
	while (hs_cstream_next(l, &c) == 1) {
		hs_buf_printf(b, "%s{\"name\":", i++ ? "," : "");
		json_str(b, c.stream, c.stream_len);
		hs_buf_printf(b, ",\"state\":\"%s\",\"epoch\":%u,\"replication\":%u,"
			      "\"nodeset\":", cstream_state(c.state), c.epoch, c.r);
		put_nodes(b, c.nodes, c.nn, true);
		hs_buf_append(b, ",\"lng\":", 7);
		put_lsn(b, c.released, true);
		hs_buf_append(b, ",\"last_released\":", 17);
		put_lsn(b, c.released, true);
		hs_buf_printf(b, ",\"lce\":%u,\"tail\":", c.lce);
		put_lsn(b, c.tail, true);
		hs_buf_append(b, ",\"trim\":", 8);
		put_lsn(b, c.trim, true);
		hs_buf_appendc(b, '}');
	}
	hs_buf_append(b, "]}\n", 3);
}

/* Width of the longest cell of a column: at least the header's. */
#define WIDEN(w, n) ((w) = (int)(n) > (w) ? (int)(n) : (w))

static void status_text(struct admin *a, struct hs_clist *l)
{
	struct hs_clist l2 = *l;   /* a second walk for the column widths */
	struct hs_peer_ent p;
	struct hs_cstream_ent c;
	struct hs_buf *b = &a->out;
	char e[160], ns[HS_INFO_NODESET_MAX * 11 + 1], lng[HS_POS_FMT_MAX], tail[HS_POS_FMT_MAX];
	struct hs_buf nb = { 0 };
	int wa = 7, wn = 6, ws = 5;

	hs_buf_printf(b, "cluster     %016llx\nhealthy     %s\nreplication %u\n",
		      (unsigned long long)l->cluster_id, l->healthy ? "yes" : "no",
		      l->replication);
	while (hs_peer_next(&l2, &p) == 1)
		WIDEN(wa, p.addr_len);
	while (hs_cstream_next(&l2, &c) == 1) {
		WIDEN(wn, c.stream_len);
		hs_buf_reset(&nb);
		put_nodes(&nb, c.nodes, c.nn, false);
		WIDEN(ws, nb.len);
	}
	hs_buf_printf(b, "\n%-4s %-4s %-8s %-4s %-*s %12s %8s %6s  %s\n", "PEER", "NODE", "STATE",
		      "DATA", wa, "ADDRESS", "PENDING", "CONNECTS", "LOSSES", "LAST-ERROR");
	while (hs_peer_next(l, &p) == 1)
		hs_buf_printf(b, "peer %-4u %-8s %-4s %-*.*s %12llu %8llu %6llu  %s\n", p.node_id,
			      peer_state(p.state), p.flags & HS_PEERF_DATA ? "yes" : "no", wa,
			      p.addr_len, p.addr, (unsigned long long)p.pending_bytes,
			      (unsigned long long)p.connects, (unsigned long long)p.losses,
			      peer_error(e, sizeof(e), &p));
	hs_buf_printf(b, "\nstreams     %u active on this server", l->streams_active);
	if (l->nstreams < l->streams_active)
		hs_buf_printf(b, " (the %u most recently used shown)", l->nstreams);
	hs_buf_appendc(b, '\n');
	if (!l->nstreams) {
		hs_buf_free(&nb);
		return;
	}
	hs_buf_printf(b, "%-*s %-10s %6s %3s %-*s %6s %-14s %s\n", wn, "STREAM", "STATE",
		      "EPOCH", "R", ws, "NODESET", "LCE", "LNG", "TAIL");
	while (hs_cstream_next(l, &c) == 1) {
		hs_buf_reset(&nb);
		put_nodes(&nb, c.nodes, c.nn, false);
		snprintf(ns, sizeof(ns), "%.*s", (int)nb.len, (const char *)nb.data);
		if (c.released)
			hs_lsn_fmt(lng, sizeof(lng), c.released);
		else
			snprintf(lng, sizeof(lng), "-");
		if (c.tail)
			hs_lsn_fmt(tail, sizeof(tail), c.tail);
		else
			snprintf(tail, sizeof(tail), "-");
		hs_buf_printf(b, "%-*.*s %-10s %6u %3u %-*s %6u %-14s %s\n", wn, c.stream_len,
			      c.stream, cstream_state(c.state), c.epoch, c.r, ws, ns, c.lce, lng,
			      tail);
	}
	hs_buf_free(&nb);
}

static void status_out(struct admin *a, struct hs_clist *l)
{
	if (a->flags & F_JSON)
		status_json(a, l);
	else
		status_text(a, l);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One CLUSTER_STATUS: 0 with *l decoded (borrowing *f), or an exit status. */
static int status_once(struct admin *a, struct hs_frame *f, struct hs_clist *l, bool quiet)
{
	uint64_t id = hs_client_next_id();
	int st = connect_server(a, quiet);

	if (st)
		return st;
	hs_msg_cluster_status_enc(&a->req, id);
	return call_list(a, id, HS_MSG_CLUSTER_STATUSREPLY, f, l);
}

static int cmd_status(struct admin *a, int argc, char **argv)
{
	uint64_t deadline = now_ms() + a->cli.timeout_ms;
	struct hs_frame f;
	struct hs_clist l;
	int st;

	if (argc)
		return hs_cli_usage_error(&a->cli, "cluster status takes no arguments");
	if (!(a->flags & F_WAIT)) {
		st = status_once(a, &f, &l, false);
		if (st)
			return st;
		status_out(a, &l);
		st = out_flush(a);
		return st ? st : l.healthy ? 0 : 1;
	}
	/* --wait-healthy also waits for hs-serve itself to come up, so
	 * `hs-serve & hs-admin cluster status --wait-healthy` just works. */
	for (;;) {
		st = status_once(a, &f, &l, true);
		if (!st && l.healthy)
			break;
		if (st && st != EX_UNAVAILABLE)
			return status_once(a, &f, &l, false); /* say why */
		if (st)
			disconnect(a);
		if (now_ms() >= deadline) {
			if (st)
				return status_once(a, &f, &l, false);
			status_out(a, &l);
			st = out_flush(a);
			return st ? st : hs_cli_fail(&a->cli, EX_TEMPFAIL,
						     "cluster not healthy after %llums",
						     (unsigned long long)a->cli.timeout_ms);
		}
		usleep(HEALTH_POLL_MS * 1000);
	}
	status_out(a, &l);
	return out_flush(a);
}

/* A decimal that every JSON reader keeps exactly (below 10^15 < 2^53). */
static bool json_safe_int(const char *p, size_t n)
{
	if (!n || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return !(n > 1 && p[0] == '0');
}

static int cmd_stats(struct admin *a, int argc, char **argv)
{
	struct hs_admin_stats req = { 0 };
	uint64_t id = hs_client_next_id();
	bool json = a->flags & F_JSON;
	const char *scope = NULL;
	uint8_t scope_len = 0;
	struct hs_frame f;
	struct hs_clist l;
	struct hs_kv_ent e;
	int st;

	if (argc)
		return hs_cli_usage_error(&a->cli, "stats takes no arguments (use --stream)");
	if (a->stats_prefix) {
		size_t n = strlen(a->stats_prefix);

		if (n > HS_NAME_MAX || !hs_stream_prefix_valid(a->stats_prefix, n))
			return hs_cli_usage_error(&a->cli, "invalid --stream '%s'",
						  a->stats_prefix);
		req.scopes = HS_STATS_STREAMS;
		req.prefix = a->stats_prefix;
		req.prefix_len = (uint8_t)n;
	}
	st = connect_server(a, false);
	if (st)
		return st;
	hs_msg_admin_stats_enc(&a->req, id, &req);
	st = call_list(a, id, HS_MSG_ADMIN_STATSREPLY, &f, &l);
	if (st)
		return st;
	/* JSON: one object per run of entries with the same scope. */
	while (hs_kv_next(&l, &e) == 1) {
		if (!json) {
			hs_buf_printf(&a->out, "%.*s %.*s %.*s\n", e.scope_len, e.scope,
				      e.key_len, e.key, e.val_len, e.val);
			continue;
		}
		if (!scope || scope_len != e.scope_len || memcmp(scope, e.scope, scope_len)) {
			if (scope)
				hs_buf_append(&a->out, "}\n", 2);
			hs_buf_append(&a->out, "{\"scope\":", 9);
			json_str(&a->out, e.scope, e.scope_len);
			scope = e.scope;
			scope_len = e.scope_len;
		}
		hs_buf_appendc(&a->out, ',');
		json_str(&a->out, e.key, e.key_len);
		hs_buf_appendc(&a->out, ':');
		if (json_safe_int(e.val, e.val_len))
			hs_buf_append(&a->out, e.val, e.val_len);
		else
			json_str(&a->out, e.val, e.val_len);
	}
	if (scope)
		hs_buf_append(&a->out, "}\n", 2);
	return out_flush(a);
}

/* ---- command line ----------------------------------------------------- */

struct cmd {
	const char *noun, *verb;   /* verb NULL: the noun alone (stats) */
	int (*fn)(struct admin *a, int argc, char **argv);
	unsigned flags;            /* F_* this verb accepts */
};

#define F_ATTRS (F_REPLICATION | F_RETENTION | F_OFFLOAD | F_OFFLOAD_SIZE | F_DURABILITY)

static const struct cmd cmds[] = {
	{ "stream", "create", cmd_create, F_ATTRS | F_FROM_FILE | F_EXIST_OK },
	{ "stream", "alter", cmd_alter, F_RETENTION | F_OFFLOAD | F_OFFLOAD_SIZE },
	{ "stream", "delete", cmd_delete, F_FORCE },
	{ "stream", "list", cmd_list, F_NAMES | F_JSON | F_PREFIX },
	{ "stream", "info", cmd_info, F_JSON },
	{ "stream", "exists", cmd_exists, 0 },
	{ "stream", "trim", cmd_trim, F_BEFORE },
	{ "sub", "create", cmd_sub_create, F_STREAM | F_FROM | F_ACK_TIMEOUT | F_MAX_UNACKED },
	{ "sub", "delete", cmd_sub_delete, F_FORCE },
	{ "sub", "list", cmd_sub_list, F_NAMES | F_JSON | F_STREAM },
	{ "sub", "info", cmd_sub_info, F_JSON },
	{ "cluster", "status", cmd_status, F_WAIT | F_JSON },
	{ "stats", NULL, cmd_stats, F_JSON | F_STREAM },
};

static int parse_dur(struct admin *a, const char *flag, const char *arg, uint64_t *ms)
{
	if (hs_parse_duration_ms(arg, ms) < 0)
		return hs_cli_usage_error(&a->cli, "invalid %s '%s' (use %s)", flag, arg,
					  HS_DURATION_SYNTAX);
	return 0;
}

/* Parse argv; on success returns 0 with argv[*first..argc) the operands. */
static int parse_args(struct admin *a, int argc, char **argv, int *first)
{
	static const struct option longopts[] = {
		HS_CLI_LONGOPTS,
		{ "replication", required_argument, NULL, OPT_REPLICATION },
		{ "retention", required_argument, NULL, OPT_RETENTION },
		{ "offload-after", required_argument, NULL, OPT_OFFLOAD },
		{ "offload-size", required_argument, NULL, OPT_OFFLOAD_SIZE },
		{ "durability", required_argument, NULL, OPT_DURABILITY },
		{ "from-file", required_argument, NULL, OPT_FROM_FILE },
		{ "exist-ok", no_argument, NULL, OPT_EXIST_OK },
		{ "force", no_argument, NULL, 'f' },
		{ "names", no_argument, NULL, OPT_NAMES },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "prefix", required_argument, NULL, OPT_PREFIX },
		{ "before", required_argument, NULL, OPT_BEFORE },
		{ "wait-healthy", no_argument, NULL, OPT_WAIT_HEALTHY },
		{ "stream", required_argument, NULL, OPT_STREAM },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT },
		{ "max-unacked", required_argument, NULL, OPT_MAX_UNACKED },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli *c = &a->cli;
	uint64_t v;
	int opt, status;

	/* Only -a and -t are settings: the other flags belong to one verb. */
	c->config_common_only = 1;
	status = hs_cli_config_args(c, HS_CLI_SHORTOPTS "f", longopts, NULL, NULL, &argc, &argv);
	if (status)
		return status;
	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS "f", longopts, NULL)) != -1) {
		switch (hs_cli_option(c, opt, optarg, &status)) {
		case 0:
			continue;
		case 1:
			return status ? status : -1; /* --help, --version: done */
		}
		switch (opt) {
		case OPT_REPLICATION:
			if (hs_parse_u64(optarg, &v) < 0 || v < 1 || v > 127)
				return hs_cli_usage_error(c, "invalid --replication '%s' (1..127)",
							  optarg);
			a->attrs.replication = (uint8_t)v;
			a->attrs.mask |= HS_ATTR_REPLICATION;
			a->flags |= F_REPLICATION;
			break;
		case OPT_RETENTION:
			if ((status = parse_dur(a, "--retention", optarg, &a->attrs.retention_ms)))
				return status;
			a->attrs.mask |= HS_ATTR_RETENTION;
			a->flags |= F_RETENTION;
			break;
		case OPT_OFFLOAD:
			if ((status = parse_dur(a, "--offload-after", optarg,
						&a->attrs.offload_after_ms)))
				return status;
			a->attrs.mask |= HS_ATTR_OFFLOAD;
			a->flags |= F_OFFLOAD;
			break;
		case OPT_OFFLOAD_SIZE:
			if (hs_parse_size(optarg, &a->attrs.offload_size) < 0)
				return hs_cli_usage_error(
					c, "invalid --offload-size '%s' (use 0 4096 64M 1G)", optarg);
			a->attrs.mask |= HS_ATTR_OFFLOAD_SIZE;
			a->flags |= F_OFFLOAD_SIZE;
			break;
		case OPT_DURABILITY:
			if ((status = hs_cli_durability(c, optarg, &a->attrs.durability)))
				return status;
			a->attrs.mask |= HS_ATTR_DURABILITY;
			a->flags |= F_DURABILITY;
			break;
		case OPT_FROM_FILE:
			a->from_file = optarg;
			a->flags |= F_FROM_FILE;
			break;
		case OPT_EXIST_OK:
			a->flags |= F_EXIST_OK;
			break;
		case 'f':
			a->flags |= F_FORCE;
			break;
		case OPT_NAMES:
			a->flags |= F_NAMES;
			break;
		case OPT_JSON:
			a->flags |= F_JSON;
			break;
		case OPT_PREFIX:
			a->prefix = optarg;
			a->flags |= F_PREFIX;
			break;
		case OPT_BEFORE:
			a->before_arg = optarg;
			a->flags |= F_BEFORE;
			break;
		case OPT_WAIT_HEALTHY:
			a->flags |= F_WAIT;
			break;
		case OPT_STREAM:
			a->stats_prefix = optarg;
			a->flags |= F_STREAM;
			break;
		case OPT_FROM:
			if (hs_pos_parse(optarg, (int64_t)time(NULL) * 1000, &a->sub_from) < 0)
				return hs_cli_usage_error(c, "invalid --from '%s': %s (use %s)", optarg,
							  hs_pos_error(optarg, (int64_t)time(NULL) * 1000),
							  HS_POS_SYNTAX);
			a->flags |= F_FROM;
			break;
		case OPT_ACK_TIMEOUT:
			if ((status = parse_dur(a, "--ack-timeout", optarg, &v)))
				return status;
			if (!v || v > UINT32_MAX)
				return hs_cli_usage_error(c, "invalid --ack-timeout '%s' (1ms..49d)",
							  optarg);
			a->ack_timeout_ms = (uint32_t)v;
			a->flags |= F_ACK_TIMEOUT;
			break;
		case OPT_MAX_UNACKED:
			if (hs_parse_u64(optarg, &v) < 0 || !v || v > UINT32_MAX)
				return hs_cli_usage_error(c, "invalid --max-unacked '%s' (1..%u)",
							  optarg, UINT32_MAX);
			a->max_unacked = (uint32_t)v;
			a->flags |= F_MAX_UNACKED;
			break;
		default:
			return hs_cli_usage_error(c, "unhandled option");
		}
	}
	*first = optind;
	return hs_cli_finish(c);
}

static int run(struct admin *a, int argc, char **argv)
{
	const struct cmd *cmd = NULL;
	const char *noun, *verb;
	int skip;

	if (argc < 1)
		return hs_cli_usage_error(&a->cli, "no command given");
	noun = argv[0];
	verb = argc > 1 ? argv[1] : NULL;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].noun, noun))
			continue;
		if (!cmds[i].verb || (verb && !strcmp(cmds[i].verb, verb))) {
			cmd = &cmds[i];
			break;
		}
	}
	if (!cmd) {
		if (!strcmp(noun, "stream") || !strcmp(noun, "cluster") || !strcmp(noun, "sub"))
			return hs_cli_usage_error(&a->cli, "unknown command '%s %s'", noun,
						  verb ? verb : "");
		return hs_cli_usage_error(&a->cli, "unknown command '%s'", noun);
	}
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if ((a->flags & (1u << i)) && !(cmd->flags & (1u << i)))
			return hs_cli_usage_error(&a->cli, "%s is not an option of '%s%s%s'",
						  flag_names[i], cmd->noun, cmd->verb ? " " : "",
						  cmd->verb ? cmd->verb : "");
	skip = cmd->verb ? 2 : 1;
	return cmd->fn(a, argc - skip, argv + skip);
}

int main(int argc, char **argv)
{
	struct admin a;
	int status, first = 0;

	memset(&a, 0, sizeof(a));
	hs_cli_init(&a.cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	/* EPIPE on stdout ends quietly (out_flush); sockets use MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	status = parse_args(&a, argc, argv, &first);
	if (status) {
		if (status < 0) /* --help or --version */
			status = 0;
		goto out;
	}
	if (a.cli.argv) { /* settings from the configuration file came first */
		argv = a.cli.argv;
		argc += a.cli.ninjected;
	}
	status = run(&a, argc - first, argv + first);
	if (status == ST_EPIPE)
		status = 0;
out:
	disconnect(&a);
	hs_buf_free(&a.out);
	hs_buf_free(&a.req);
	free(a.redo);
	hs_cli_free(&a.cli);
	return status;
}

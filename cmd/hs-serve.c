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
 * leave them holding their stores; they get node ids 1..N (--node-id), which
 * the replication needs distinct (docs/replication.md §1).  --peer ADDR
 * (repeatable) uses external peers instead.  --replication R (the default
 * of new streams) must not exceed the number of peers.
 *
 * METADATA (libpaxos/meta.h).  One CASPaxos proposer (libpaxos/register.h)
 * over M = every peer, majority quorums.  Its id is (a random 16-bit node
 * number kept in DIR/serve.id) << 16 | a boot counter kept there too, so
 * every incarnation has its own ballots.  Creates, deletes and listing:
 * libpaxos/admin.c.  The node number is also the serve id written, with
 * the --advertise address, as the owner of the epochs this server
 * activates, so that other hs-serve redirect to it (docs/replication.md
 * §7, libpaxos/seq.c OWNERSHIP).
 *
 * LAYOUT.  This file keeps main(), the options, the supervised local peers,
 * the register proposer's glue, listening and the client frame dispatch;
 * the server itself is libpaxos/serve.h: the sequencer and the append path
 * (seq.c), the read path and subscription sessions (read.c), and the admin
 * requests (admin.c), each with its design comment.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "cli.h"
#include "conn.h"
#include "daemon.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "parse.h"
#include "peers.h"
#include "proto.h"
#include "recovery.h"
#include "run.h"
#include "serve.h"
#include "t2read.h"
#include "tier.h"

#define STOP_GRACE_MS 10000

static const char usage_text[] =
	"usage: hs-serve [--data DIR] [--listen ADDR]... [--peer ADDR]... [--local-peers N]\n"
	"                [--replication R] [--durability sync|async|memory]\n"
	"                [--ready-file FILE] [--pidfile FILE]\n"
	"                [--advertise ADDR]\n"
	"                [--tier URL [--tier-key-file FILE] [--tier-cache SIZE]]\n"
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
	"                            repeatable (each started with its own node id)\n"
	"      --local-peers N       spawn and supervise N local hs-peer processes, node\n"
	"                            ids 1..N (default 1)\n"
	"      --replication R       default replication factor of new streams: copies\n"
	"                            of each record, 1..number of peers (default 1)\n"
	"      --durability MODE     default durability of new streams: sync (default),\n"
	"                            async or memory; spawned peers run sync, or memory\n"
	"                            (no WAL at all) with memory\n"
	"      --ready-file FILE     write the actual address there once serving\n"
	"      --pidfile FILE        write the process id there; removed on clean exit\n"
	"      --advertise ADDR      the address other hs-serve send clients to for the\n"
	"                            streams this one sequences (default: the first\n"
	"                            --listen address as bound; \"\" for none)\n"
	"      --tier URL            serve reads below the Tier1 trim point from the\n"
	"                            segments hs-offload wrote there: file:///DIR,\n"
	"                            s3://BUCKET/PREFIX, webhdfs://HOST:PORT/PATH\n"
	"                            (HS_TIER_URL)\n"
	"      --tier-key-file FILE  the 32-byte key of encrypted segments\n"
	"      --tier-cache SIZE     Tier2 block cache in memory (default 64M)\n"
	"      --tier-endpoint URL   S3 endpoint (default AWS; HS_S3_ENDPOINT)\n"
	"      --tier-region R       S3 region (AWS_REGION, else us-east-1)\n"
	"      --tier-path-style     S3 path-style addressing\n"
	"      --tier-credentials FILE  S3 key id and secret (else AWS_ACCESS_KEY_ID\n"
	"                            and AWS_SECRET_ACCESS_KEY)\n"
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
	OPT_ADVERTISE,
};

static struct serve *g_sv; /* for the child restart timers only */
static const char *advertise_arg; /* --advertise, NULL: the first listen address */

/* Tier2 reads (t2read.h): --tier and its options, as hs-offload's. */
enum {
	OPT_TIER = HS_OPT_FIRST_PRIVATE + 64,
	OPT_TIER_KEY,
	OPT_TIER_CACHE,
	OPT_TIER_ENDPOINT,
	OPT_TIER_REGION,
	OPT_TIER_PATH_STYLE,
	OPT_TIER_CREDS,
};
static struct hs_t2_cfg tier_cfg;
/* ---- register proposer glue ---------------------------------------------- */

/* The proposer's frame ids start at PROPOSER_ID_BASE, far above the ids of
 * hs_peers_next_id() (which start at 1): its replies (matched by ballot,
 * not by id) must never land on a STORE's, SEAL's or read's registration,
 * so they always reach peer_frame(). */
#define PROPOSER_ID_BASE (1ull << 63)

static void rop_send(void *arg, int idx, const uint8_t *frame, size_t len)
{
	struct serve *sv = arg;
	struct hs_buf *out = hs_peers_out(sv->peers, idx);

	/* Best effort: a lost frame costs the proposer a timeout. */
	if (!out || len < HS_FRAME_HDR + 4)
		return;
	hs_buf_append(out, frame, len);
}

static uint64_t rop_now(void *arg)
{
	return hs_now_ms();
}

static uint32_t rop_rand(void *arg)
{
	return (uint32_t)hs_serve_rand64();
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

/* ---- client connections --------------------------------------------------- */

static void on_hello(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_hello h, me = { 0 };

	if (hs_msg_hello_dec(f->body, f->body_len, &h) < 0) {
		hs_serve_proto_close(cc, "malformed HELLO body");
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
			hs_serve_proto_close(cc, "frame before HELLO");
		return;
	}
	switch (f->type) {
	case HS_MSG_APPEND:
		hs_serve_on_append(sv, cc, f);
		break;
	case HS_MSG_STREAM_CREATE:
		hs_serve_on_create(sv, cc, f);
		break;
	case HS_MSG_STREAM_DELETE:
		hs_serve_on_delete(sv, cc, f);
		break;
	case HS_MSG_STREAM_LIST:
		hs_serve_on_list(sv, cc, f);
		break;
	case HS_MSG_STREAM_INFO:
		hs_serve_on_info(sv, cc, f);
		break;
	case HS_MSG_STREAM_TRIM:
		hs_serve_on_trim(sv, cc, f);
		break;
	case HS_MSG_READ:
		hs_serve_on_read(sv, cc, f);
		break;
	case HS_MSG_READ_WINDOW:
		hs_serve_on_read_window(sv, cc, f);
		break;
	case HS_MSG_READ_CANCEL:
		hs_serve_on_read_cancel(sv, cc, f);
		break;
	case HS_MSG_ADMIN_STATS:
		hs_serve_on_admin_stats(sv, cc, f);
		break;
	case HS_MSG_CLUSTER_STATUS:
		hs_serve_on_cluster_status(sv, cc, f);
		break;
	case HS_MSG_SUB_CREATE:
		hs_serve_on_sub_create(sv, cc, f);
		break;
	case HS_MSG_SUB_DELETE:
		hs_serve_on_sub_delete(sv, cc, f);
		break;
	case HS_MSG_SUB_LIST:
		hs_serve_on_list(sv, cc, f);
		break;
	case HS_MSG_SUB_INFO:
		hs_serve_on_sub_info(sv, cc, f);
		break;
	case HS_MSG_SUBSCRIBE:
		hs_serve_on_subscribe(sv, cc, f);
		break;
	case HS_MSG_ACK:
		hs_serve_on_ack(sv, cc, f);
		break;
	case HS_MSG_TIER_INFO:
		hs_serve_on_tier_info(sv, cc, f);
		break;
	case HS_MSG_TIER_PUBLISH:
		hs_serve_on_tier_publish(sv, cc, f);
		break;
	case HS_MSG_STREAM_ALTER:
		hs_serve_on_stream_alter(sv, cc, f);
		break;
	default:
		hs_serve_proto_close(cc, "unexpected frame type");
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
		hs_serve_read_grant(cc->sv, r);
	}
}

static void on_client_closed(struct hs_conn *c, int err, void *arg)
{
	struct cconn *cc = arg;
	struct serve *sv = cc->sv;
	struct creq *rq;
	struct cread *r;

	hs_serve_admin_detach(cc);
	while ((rq = LIST_FIRST(&cc->reqs))) {
		LIST_REMOVE(rq, link);
		rq->cc = NULL;
	}
	while ((r = LIST_FIRST(&cc->reads))) {
		LIST_REMOVE(r, link);
		r->cc = NULL;
		hs_serve_read_end(sv, r, -ECANCELED);
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
static void check_ready(struct serve *sv);

static void peer_up(void *arg, int idx, uint32_t node_id)
{
	struct serve *sv = arg;

	/* Stalled runs, activations waiting for peers, RELEASE to it. */
	hs_serve_peer_up(sv, idx, node_id);
	hs_recovery_peer_up(sv, idx);
	if (!sv->meta_ok)
		meta_probe(sv);
	else
		check_ready(sv);
}

static void peer_down(void *arg, int idx)
{
	struct serve *sv = arg;

	hs_serve_peer_down(sv, idx);
	hs_recovery_peer_down(sv, idx);
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
	int up = 0;

	if (sv->ready_written || !sv->meta_ok || sv->stopping)
		return;
	/* Serving needs the metadata (a register quorum, above) and enough
	 * peers for the default replication; the others may join later. */
	for (int i = 0; i < sv->npeers; i++)
		up += hs_peers_is_up(sv->peers, i);
	if (up < sv->replication)
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
		/* Our configuration file and -X overrides go along: the
		 * peers' settings (hs-peer.*) are there too. */
		char *argv[16 + 2 * (sizeof(sv->cli.overrides) / sizeof(sv->cli.overrides[0]))] = {
			sv->peer_bin, "--data", ch->data, "--listen", ch->sock,
			"--node-id", node, "--durability", (char *)dur
		};
		int n = 9;

		/* The loop blocked signals for its signalfd: unblock for the child. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != ppid)
			_exit(0);
		if (hs_log_level() >= HS_LOG_INFO)
			argv[n++] = "-v";
		if (sv->cli.config_path) {
			argv[n++] = "--config";
			argv[n++] = (char *)sv->cli.config_path;
		}
		for (int k = 0; k < sv->cli.noverrides; k++) {
			argv[n++] = "-X";
			argv[n++] = (char *)sv->cli.overrides[k];
		}
		argv[n] = NULL;
		execv(sv->peer_bin, argv);
		_exit(127);
	}
	ch->pid = pid;
	ch->started = hs_now_ms();
	hs_info("started hs-peer %d (pid %d) on %s", i + 1, (int)pid, ch->sock);
	hs_peers_kick(sv->peers, i);
}

static void serve_stop(struct serve *sv);

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
			if (WIFEXITED(st) &&
			    (WEXITSTATUS(st) == EX_USAGE || WEXITSTATUS(st) == EX_CONFIG)) {
				/* Its flags or hs-peer.* settings (our --config
				 * and -X) are wrong: restarting cannot help. */
				hs_error("hs-peer %d exited with status %d (usage or configuration, "
					 "see above); stopping", i + 1, WEXITSTATUS(st));
				sv->exit_status = EX_CONFIG;
				serve_stop(sv);
				break;
			}
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
	hs_serve_mem_flush(sv);
	hs_serve_batches_flush(sv);
}

static int inflight_work(struct serve *sv)
{
	struct cconn *cc;

	if (!TAILQ_EMPTY(&sv->unacked) || !TAILQ_EMPTY(&sv->stalled))
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
		if (sv->nchildren)
			hs_peers_quiet(sv->peers); /* our own peers stopping */
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
	serve_stop(sv);
}

/* Finish the appends in flight, stop our peers, then the loop. */
static void serve_stop(struct serve *sv)
{
	struct hs_loop *l = sv->loop;

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
		node = (unsigned)(hs_serve_rand64() % 0xffff) + 1;
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
		{ "advertise", required_argument, NULL, OPT_ADVERTISE },
		{ "tier", required_argument, NULL, OPT_TIER },
		{ "tier-key-file", required_argument, NULL, OPT_TIER_KEY },
		{ "tier-cache", required_argument, NULL, OPT_TIER_CACHE },
		{ "tier-endpoint", required_argument, NULL, OPT_TIER_ENDPOINT },
		{ "tier-region", required_argument, NULL, OPT_TIER_REGION },
		{ "tier-path-style", no_argument, NULL, OPT_TIER_PATH_STYLE },
		{ "tier-credentials", required_argument, NULL, OPT_TIER_CREDS },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli *c = &sv->cli;
	uint64_t v;
	static const struct hs_cli_env envs[] = {
		{ "tier", "HS_TIER_URL" }, { "tier-endpoint", "HS_S3_ENDPOINT" }, { NULL, NULL }
	};
	static const char *const groups[] = { "local-peers peer", NULL };
	int opt, status, has_local = 0;

	status = hs_cli_config_args(c, HS_CLI_SHORTOPTS, longopts, envs, groups, &argc, &argv);
	if (status)
		return status;
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
			if (hs_parse_u64(optarg, &v) < 0 || v < 1 || v > HS_NODESET_MAX)
				return hs_cli_usage_error(c, "invalid --replication '%s' (1..%d)",
							  optarg, HS_NODESET_MAX);
			sv->replication = (uint8_t)v;
			break;
		case OPT_DURABILITY:
			if ((status = hs_cli_durability(c, optarg, &sv->durability)))
				return status;
			break;
		case OPT_READY:
			sv->ready_file = optarg;
			break;
		case OPT_PIDFILE:
			sv->pidfile = optarg;
			break;
		case OPT_ADVERTISE:
			if (strlen(optarg) > HS_LREC_ADDR_MAX)
				return hs_cli_usage_error(c, "--advertise address over %d bytes",
							  HS_LREC_ADDR_MAX);
			advertise_arg = optarg; /* "" means none */
			break;
		case OPT_TIER:
			tier_cfg.url = optarg;
			break;
		case OPT_TIER_KEY:
			tier_cfg.key_file = optarg;
			break;
		case OPT_TIER_CACHE:
			if (hs_parse_size(optarg, &v) < 0 || v < (1u << 20))
				return hs_cli_usage_error(c, "invalid --tier-cache '%s' (at least 1M)",
							  optarg);
			tier_cfg.cache_bytes = v;
			break;
		case OPT_TIER_ENDPOINT:
			tier_cfg.topts.endpoint = optarg;
			break;
		case OPT_TIER_REGION:
			tier_cfg.topts.region = optarg;
			break;
		case OPT_TIER_PATH_STYLE:
			tier_cfg.topts.path_style = 1;
			break;
		case OPT_TIER_CREDS:
			tier_cfg.topts.cred_file = optarg;
			break;
		default:
			return hs_cli_usage_error(c, "unexpected option");
		}
	}
	if (optind < argc)
		return hs_cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (!tier_cfg.url && getenv("HS_TIER_URL") && *getenv("HS_TIER_URL"))
		tier_cfg.url = getenv("HS_TIER_URL");
	if (tier_cfg.url && !tier_cfg.topts.endpoint)
		tier_cfg.topts.endpoint = getenv("HS_S3_ENDPOINT");
	if (!tier_cfg.url && (tier_cfg.key_file || tier_cfg.cache_bytes))
		return hs_cli_usage_error(c, "--tier-key-file and --tier-cache need --tier");
	if (has_local && sv->npeer_arg)
		return hs_cli_usage_error(c, "--local-peers and --peer exclude each other");
	if (sv->replication > (sv->npeer_arg ? sv->npeer_arg : sv->local_peers))
		return hs_cli_usage_error(c, "--replication %u needs at least %u peers (have %d)",
					  sv->replication, sv->replication,
					  sv->npeer_arg ? sv->npeer_arg : sv->local_peers);
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
	TAILQ_INIT(&sv->stalled);
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
	sv->serve_id = sv->proposer_id >> 16; /* the node number of DIR/serve.id */
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
	if (!advertise_arg)
		advertise_arg = sv->actual[0];
	memcpy(sv->advertise, advertise_arg, strnlen(advertise_arg, HS_LREC_ADDR_MAX));
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
	cfg.id_base = PROPOSER_ID_BASE;
	cfg.nacc = sv->npeers;
	r = hs_reg_proposer_new(&cfg, &rops, sv, &sv->prop);
	if (r < 0) {
		hs_error("bad register configuration: %s", hs_strerror(r));
		status = EX_CONFIG;
		goto out_peers;
	}
	if (tier_cfg.url) {
		char why[HS_TIER_ERRLEN + 64];

		/* After hs_loop_signals: the workers start with them blocked. */
		r = hs_t2_new(sv, &tier_cfg, &sv->t2, why, sizeof(why));
		if (r < 0) {
			hs_error("%s", why);
			status = r == -HS_EUSAGE ? EX_USAGE : hs_exit_status(r);
			goto out_prop;
		}
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
	hs_t2_free(sv->t2); /* after every read ended with its connection */
	sv->t2 = NULL;
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

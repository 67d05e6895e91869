/*
 * hs-tail - follow one or more streams (CLI.md, hs-tail(1)).
 *
 * One READ with HS_CREAD_FOLLOW per stream, all on one connection; the
 * server pushes DELIVER frames as records are released and the output is
 * interleaved in arrival order.  libcore/reader.h writes each DELIVER with
 * one write(2) as soon as it arrives (no stdio buffering, no -u needed) and
 * returns the credit after the write.
 *
 * SIGINT and SIGTERM are blocked except inside the reader's ppoll(), where
 * the handler only sets a flag: the batch being written is finished, then
 * hs-tail exits 0.  With -F (--retry) a lost connection, an unreachable
 * server or a stream that does not exist yet is waited out: the reader
 * resends a missing stream's READ every RETRY_MS, and a new connection
 * resumes every read after the last record or gap it printed, so nothing is
 * printed twice and nothing released in between is skipped (except for a
 * read that had printed nothing yet: it starts again from its position,
 * e.g. the tail at the reconnection).
 *
 * --sub SUB follows a named subscription instead (SUBSCRIBE, reader.h
 * "SUBSCRIPTIONS"): the server pushes from the subscription's checkpoint,
 * and every batch is acknowledged right after its write(2) returned, so a
 * killed hs-tail loses nothing (what it had not acknowledged is delivered
 * again).  At -c, SIGINT or SIGTERM it cancels and waits (up to -t) for the
 * answers to its acknowledgements before exiting, so the next subscriber
 * starts after what was printed.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "loop.h"
#include "err.h"
#include "format.h"
#include "log.h"
#include "pos.h"
#include "proto_client.h"
#include "reader.h"

#define RETRY_MS 250          /* -F: resend a missing stream's READ */
#define BACKOFF_MIN_MS 100    /* -F: first wait before reconnecting */
#define MAX_HOPS 4            /* without -F: failovers through an -a list */
#define BACKOFF_MAX_MS 2000

static const char usage_text[] =
	"usage: hs-tail [-n N | --from POS] [--until POS] [-c N] [-F]\n"
	"               [-0 | -d DELIM | --format FMT] [--gaps] STREAM...\n"
	"       hs-tail --sub SUB [-c N] [-F] [-0 | -d DELIM | --format FMT] [--gaps]\n"
	"       hs-tail -h | --help | -V | --version\n";

static const char help_text[] =
	"hs-tail - follow streams: print new records as they are appended\n"
	"\n"
	"usage: hs-tail [options] STREAM...\n"
	"\n"
	"Starts at the tail (only new records) unless -n or --from says otherwise and\n"
	"runs until --until, -c, or SIGINT/SIGTERM.  Several streams are followed at\n"
	"once; their records are interleaved in arrival order (json carries \"stream\",\n"
	"templates may use %S).  Every delivered batch is written at once.\n"
	"\n"
	"  -n, --last N          start N records before the tail of each stream\n"
	"      --from POS        start at POS (e3n1207, head, head+N, tail-N, @TIME...)\n"
	"      --until POS       stop before POS (exit 0)\n"
	"  -c, --count N         stop after N records in all (exit 0)\n"
	"      --sub SUB         follow the named subscription SUB (no STREAM): start at\n"
	"                        its checkpoint and acknowledge every batch once written\n"
	"  -F, --retry           keep trying when hs-serve is unreachable or goes away,\n"
	"                        and wait for streams that do not exist yet\n"
	"  -0, --null            end each record with NUL instead of newline\n"
	"  -d, --delimiter DELIM end each record with DELIM (one byte or \\n \\t \\0 \\xHH)\n"
	"      --format FMT      raw (default), json, netstring, or a template such as\n"
	"                        '%S %l %p\\n' (%l LSN, %L LSN as u64, %t ms, %T time,\n"
	"                        %p payload, %s length, %S stream, %% '%')\n"
	"      --gaps            also report HOLE and BRIDGE gaps (json: gap objects;\n"
	"                        else lines on stderr); TRIM and DATALOSS always are\n"
	"  -a, --addr ADDR       hs-serve address (unix:PATH or HOST:PORT); HS_ADDR\n"
	"  -t, --timeout DUR     longest wait to connect (default 5s); HS_TIMEOUT\n"
	"      --config FILE     configuration file (default ~/.config/hs/config)\n"
	"  -X KEY=VAL            override one configuration key\n"
	"  -v, --verbose         log more (repeatable); HS_LOG=debug|info|warn|error\n"
	"  -q, --quiet           log less\n"
	"  -h, --help            show this help and exit\n"
	"  -V, --version         show the version and exit\n"
	"\n"
	"Exit status: 0 stopped by --until, -c, SIGINT/SIGTERM, or a closed stdout;\n"
	"64 usage, 66 no such stream or subscription, 68 cannot resolve the address,\n"
	"69 hs-serve unreachable or gone, 74 output error or DATALOSS gap, 75 the\n"
	"subscription is in use by another subscriber, 76 protocol mismatch.\n";

enum {
	OPT_FROM = HS_READOPT_NEXT,
	OPT_UNTIL,
	OPT_SUB,
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	stop_flag = sig;
}

static int parse_pos(struct hs_cli *cli, const char *flag, const char *arg, struct hs_pos *p)
{
	if (hs_pos_parse(arg, (int64_t)hs_wall_ms(), p) == 0)
		return 0;
	return hs_cli_usage_error(cli, "invalid %s position '%s': %s", flag, arg,
				  hs_pos_error(arg, (int64_t)hs_wall_ms()));
}

/* Sleep ms unless a stopping signal comes first. */
static void nap(int ms, const sigset_t *waitmask)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	ppoll(NULL, 0, &ts, waitmask);
}

/* Connection-level failures that -F waits out. */
static int transient(int r)
{
	return r == -HS_EUNAVAIL || r == -HS_ETIMEOUT || r == -ECONNRESET || r == -EPIPE ||
	       r == -HS_EREDIRECT ||
	       r == -ECONNREFUSED || r == -ENOENT || r == -HS_ERESOLVE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_LONGOPTS,
		HS_READOPT_LONGOPTS,
		{ "from", required_argument, NULL, OPT_FROM },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "retry", no_argument, NULL, 'F' },
		{ "sub", required_argument, NULL, OPT_SUB },
		{ NULL, 0, NULL, 0 },
	};
	/* What hs-tail refuses together (settings yield to the command line). */
	static const char *const groups[] = { "null delimiter format", "last from", "sub #1",
					      "sub last", "sub from", "sub until", NULL };
	struct hs_cli cli;
	struct hs_fmt_out fmt;
	struct hs_reader rd;
	struct hs_reader_sink sink;
	struct hs_sconn conn = { .fd = -1 };
	struct hs_pos from = { .kind = HS_POS_TAIL }, until = { 0 };
	struct sigaction sa;
	sigset_t block, waitmask;
	struct hs_readopts o = { 0 };
	const char *sub = NULL;
	int have_from = 0, have_until = 0, retry = 0, opt, status, r;
	int backoff = BACKOFF_MIN_MS, warned = 0, followed = 0, hops = 0;
	char msg[512], redirect[256] = "";
	size_t idx;

	hs_cli_init(&cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	status = hs_cli_config_args(&cli, HS_CLI_SHORTOPTS HS_READOPT_SHORTOPTS "F", longopts, NULL,
				    groups, &argc, &argv);
	if (status)
		goto out_cli;
	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS HS_READOPT_SHORTOPTS "F", longopts,
				  NULL)) != -1) {
		r = hs_cli_option(&cli, opt, optarg, &status);
		if (r > 0)
			goto out_cli;
		if (r == 0)
			continue;
		if ((r = hs_readopts_option(&o, &cli, opt, optarg)) >= 0) {
			if ((status = r))
				goto out_cli;
			continue;
		}
		switch (opt) {
		case OPT_FROM:
			if ((status = parse_pos(&cli, "--from", optarg, &from)))
				goto out_cli;
			have_from = 1;
			break;
		case OPT_UNTIL:
			if ((status = parse_pos(&cli, "--until", optarg, &until)))
				goto out_cli;
			have_until = 1;
			break;
		case OPT_SUB:
			sub = optarg;
			break;
		case 'F':
			retry = 1;
			break;
		}
	}
	if (sub) {
		if (optind < argc) {
			status = hs_cli_usage_error(&cli, "--sub takes no STREAM (the subscription "
						    "names its stream)");
			goto out_cli;
		}
		if (o.have_last || have_from || have_until) {
			status = hs_cli_usage_error(&cli, "--sub starts at the subscription's "
						    "checkpoint: -n, --from and --until do not apply");
			goto out_cli;
		}
		if ((status = hs_cli_check_name(&cli, "", "subscription", sub, strlen(sub))))
			goto out_cli;
	} else if (optind >= argc) {
		status = hs_cli_usage_error(&cli, "missing STREAM");
		goto out_cli;
	}
	for (int i = optind; i < argc; i++)
		if ((status = hs_cli_check_name(&cli, "", "stream", argv[i], strlen(argv[i]))))
			goto out_cli;
	if (o.have_last && have_from) {
		status = hs_cli_usage_error(&cli, "-n and --from cannot be used together");
		goto out_cli;
	}
	if (o.have_last)
		from = (struct hs_pos){ .kind = HS_POS_TAIL, .offset = -(int64_t)o.last };
	if ((status = hs_readopts_fmt(&o, &cli, &fmt)))
		goto out_cli;
	if ((status = hs_cli_finish(&cli)))
		goto out_fmt;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGTERM);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	hs_reader_init(&rd, HS_CREAD_FOLLOW | (o.gaps ? HS_CREAD_GAPS : 0), HS_READER_WIN_RECORDS,
		       HS_READER_WIN_BYTES, -1, &hs_reader_sink_ops, &sink);
	rd.retry_ms = retry ? RETRY_MS : 0;
	if (o.have_count && !o.count)
		until = from; /* -c 0: an empty read, not "no limit" */
	if (sub && o.have_count && !o.count)
		goto out_reader; /* nothing wanted: not even a session */
	if (sub)
		hs_reader_subscribe(&rd, sub, o.count);
	for (int i = optind; i < argc; i++)
		hs_reader_add(&rd, argv[i], &from, &until, o.count);
	hs_reader_sink_init(&sink, &fmt, &rd, 1, cli.prog);
	sink.names = fmt.kind == HS_FMT_TEMPLATE || rd.n > 1;
	sink.show_gaps = o.gaps;
	sink.max = o.count;

	status = 0;
	while (!stop_flag) {
		/* A redirect (docs/replication.md §7) is followed once, at once;
		 * otherwise the -a list, which fails over in order. */
		r = hs_client_connect(&conn, redirect[0] ? redirect : cli.addr, cli.timeout_ms,
				      msg, sizeof(msg));
		if (r < 0 && redirect[0]) /* gone since: back to the list */
			r = hs_client_connect(&conn, cli.addr, cli.timeout_ms, msg, sizeof(msg));
		followed = redirect[0] != 0;
		redirect[0] = 0;
		if (r < 0) {
			if (!retry || !transient(r)) {
				status = hs_cli_fail(&cli, hs_exit_status(r), "%s", msg);
				break;
			}
			if (!warned++)
				hs_cli_fail(&cli, 0, "%s; retrying", msg);
			nap(backoff, &waitmask);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		if (warned)
			hs_info("connected again");
		warned = 0;
		backoff = BACKOFF_MIN_MS;
		rd.redirect[0] = 0;
		r = hs_reader_start(&rd, &conn);
		if (r >= 0)
			r = hs_reader_run(&rd, &stop_flag, &waitmask);
		if (r == -HS_EREDIRECT && rd.redirect[0] && !followed) {
			hs_sconn_close(&conn);
			hs_info("%s; connecting to %s", rd.why, rd.redirect);
			snprintf(redirect, sizeof(redirect), "%s", rd.redirect);
			continue;
		}
		if (r < 0 && r == -HS_EUNAVAIL && rd.why)
			snprintf(msg, sizeof(msg), "%s", rd.why);
		else if (r < 0)
			snprintf(msg, sizeof(msg), "%s", rd.why ? rd.why : hs_strerror(r));
		if (r == HS_READER_STOP && rd.sub) {
			/* Wait for the acknowledgements' answers: the next
			 * subscriber starts after what was printed. */
			int fr = hs_reader_finish(&rd, cli.timeout_ms);

			if (fr < 0)
				hs_cli_fail(&cli, 0, "acknowledgements not confirmed: %s%s",
					    hs_strerror(fr),
					    fr == -HS_ENOENT ? "" : " (they will be delivered again)");
		} else if (r == HS_READER_STOP && stop_flag) {
			hs_reader_cancel(&rd);
		}
		hs_sconn_close(&conn);
		if (r >= 0 || sink.write_err)
			break; /* ended (--until), -c, a signal, or a closed stdout */
		if (hs_reader_status(&rd, &idx) == r) {
			if (rd.sub && r == -HS_ENOENT)
				status = hs_cli_fail(&cli, EX_NOINPUT, "no such subscription '%s'",
						     sub);
			else if (rd.sub && r == -HS_ELOCKED)
				status = hs_cli_fail(&cli, EX_TEMPFAIL,
						     "subscription '%s' is in use by another "
						     "subscriber", sub);
			else if (rd.sub && r == -HS_ENOSTREAM)
				status = hs_cli_fail(&cli, EX_NOINPUT,
						     "the stream of subscription '%s' no longer "
						     "exists", sub);
			else if (r == -HS_ENOSTREAM)
				status = hs_cli_fail(&cli, EX_NOINPUT, "no such stream '%s'",
						     rd.s[idx].name);
			else
				status = hs_cli_fail(&cli, hs_exit_status(r),
						     "cannot read '%s': %s", rd.s[idx].name,
						     hs_strerror(r));
			break;
		}
		/* Without -F, an -a list still fails over a few times. */
		if (!(retry || (hs_client_multi(cli.addr) && hops++ < MAX_HOPS)) ||
		    !transient(r)) {
			status = hs_cli_fail(&cli,
					     r == -HS_EREDIRECT ? EX_TEMPFAIL
					     : transient(r)     ? EX_UNAVAILABLE
								: hs_exit_status(r),
					     "lost the connection to hs-serve: %s", msg);
			break;
		}
		hs_cli_fail(&cli, 0, "lost the connection to hs-serve: %s; retrying", msg);
		warned = 1;
		nap(backoff, &waitmask);
	}
	if (sink.write_err && sink.write_err != -EPIPE)
		status = hs_cli_fail(&cli, EX_IOERR, "cannot write the output: %s",
				     hs_strerror(sink.write_err));
	else if (!status && sink.dataloss)
		status = hs_cli_fail(&cli, EX_IOERR, "records were lost (DATALOSS)");
out_reader:
	hs_sconn_close(&conn);
	hs_reader_sink_free(&sink);
	hs_reader_free(&rd);
out_fmt:
	hs_fmt_out_free(&fmt);
out_cli:
	hs_cli_free(&cli);
	return status;
}

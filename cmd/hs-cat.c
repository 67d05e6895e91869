/*
 * hs-cat - print a range of a stream and exit (CLI.md, hs-cat(1)).
 *
 * One READ without HS_CREAD_FOLLOW: the server resolves the range when the
 * read starts (the tail is pinned then), so hs-cat never waits for new
 * records.  libcore/reader.h does the protocol and the output: records are
 * formatted into one buffer per DELIVER frame and written with one write(2),
 * and the read's credit is returned only after that write, so memory stays
 * bounded whatever the speed of stdout.  EPIPE on stdout (`hs-cat s | head
 * -1`) ends quietly with status 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "loop.h"
#include "err.h"
#include "format.h"
#include "log.h"
#include "parse.h"
#include "pos.h"
#include "proto_client.h"
#include "reader.h"

static const char usage_text[] =
	"usage: hs-cat [-c N] [-n N] [-0 | -d DELIM | --format FMT] [--gaps] STREAM [RANGE]\n"
	"       hs-cat -h | --help | -V | --version\n";

static const char help_text[] =
	"hs-cat - print the records of a stream in a range, then exit\n"
	"\n"
	"usage: hs-cat [options] STREAM [RANGE]\n"
	"\n"
	"RANGE is FROM..TO (half-open), FROM.., ..TO or FROM; the default is head..tail,\n"
	"with the tail pinned when the read starts.  Positions: e3n1207, an LSN, head,\n"
	"head+N, tail, tail-N, @2026-11-26T10:00:00Z, @MS, @-1h (see hs-positions(7)).\n"
	"\n"
	"  -c, --count N         print at most N records\n"
	"  -n, --last N          print the last N records (tail-N..tail); no RANGE\n"
	"  -0, --null            end each record with NUL instead of newline\n"
	"  -d, --delimiter DELIM end each record with DELIM (one byte or \\n \\t \\0 \\xHH)\n"
	"      --format FMT      raw (default), json, netstring, or a template such as\n"
	"                        '%l %T %p\\n' (%l LSN, %L LSN as u64, %t ms, %T time,\n"
	"                        %p payload, %s length, %S stream, %% '%')\n"
	"      --gaps            also report HOLE and BRIDGE gaps (json: gap objects;\n"
	"                        else lines on stderr); TRIM and DATALOSS always are\n"
	"  -a, --addr ADDR       hs-serve address (unix:PATH or HOST:PORT); HS_ADDR\n"
	"  -t, --timeout DUR     longest wait for the server (default 5s); HS_TIMEOUT\n"
	"      --config FILE     configuration file (default ~/.config/hs/config)\n"
	"  -X KEY=VAL            override one configuration key\n"
	"  -v, --verbose         log more (repeatable); HS_LOG=debug|info|warn|error\n"
	"  -q, --quiet           log less\n"
	"  -h, --help            show this help and exit\n"
	"  -V, --version         show the version and exit\n"
	"\n"
	"Exit status: 0 done (also when stdout is closed early), 64 usage, 66 no such\n"
	"stream, 68 cannot resolve the address, 69 hs-serve unreachable, 74 output\n"
	"error or DATALOSS gap, 75 timeout, 76 protocol mismatch.\n";

#define MAX_HOPS 4       /* redirects and failovers per run */
#define HOP_PAUSE_MS 250 /* before the second and later ones */

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_LONGOPTS,
		HS_READOPT_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	/* What hs-cat refuses together (settings yield to the command line). */
	static const char *const groups[] = { "null delimiter format", "last #2", NULL };
	struct hs_cli cli;
	struct hs_fmt_out fmt;
	struct hs_reader rd;
	struct hs_reader_sink sink;
	struct hs_sconn conn;
	struct hs_pos from, to;
	struct hs_readopts o = { 0 };
	const char *stream, *range = NULL;
	int has_to = 0, opt, status, r;
	char msg[512];
	size_t idx;

	hs_cli_init(&cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	status = hs_cli_config_args(&cli, HS_CLI_SHORTOPTS HS_READOPT_SHORTOPTS, longopts, NULL,
				    groups, &argc, &argv);
	if (status)
		goto out_cli;
	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS HS_READOPT_SHORTOPTS, longopts,
				  NULL)) != -1) {
		r = hs_cli_option(&cli, opt, optarg, &status);
		if (r > 0)
			goto out_cli;
		if (r < 0 && (status = hs_readopts_option(&o, &cli, opt, optarg)) > 0)
			goto out_cli;
	}
	if (optind >= argc) {
		status = hs_cli_usage_error(&cli, "missing STREAM");
		goto out_cli;
	}
	stream = argv[optind++];
	if (optind < argc)
		range = argv[optind++];
	if (optind < argc) {
		status = hs_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
		goto out_cli;
	}
	if ((status = hs_cli_check_name(&cli, "", "stream", stream, strlen(stream))))
		goto out_cli;
	if (o.have_last && range) {
		status = hs_cli_usage_error(&cli, "-n and a RANGE cannot be used together");
		goto out_cli;
	}
	if (o.have_last) {
		from = (struct hs_pos){ .kind = HS_POS_TAIL, .offset = -(int64_t)o.last };
	} else if (hs_range_parse(range ? range : "..", (int64_t)hs_wall_ms(), &from, &to, &has_to) < 0) {
		const char *why = hs_range_error(range, (int64_t)hs_wall_ms());

		status = hs_cli_usage_error(&cli, "invalid range '%s': %s", range,
					    why ? why : "?");
		goto out_cli;
	}
	if ((status = hs_readopts_fmt(&o, &cli, &fmt)))
		goto out_cli;
	if ((status = hs_cli_finish(&cli)))
		goto out_fmt;

	/* EPIPE instead of a signal: the write path ends quietly. */
	signal(SIGPIPE, SIG_IGN);
	r = hs_client_connect(&conn, cli.addr, cli.timeout_ms, msg, sizeof(msg));
	if (r < 0) {
		status = hs_cli_fail(&cli, hs_exit_status(r), "%s", msg);
		goto out_fmt;
	}
	hs_reader_init(&rd, o.gaps ? HS_CREAD_GAPS : 0, HS_READER_WIN_RECORDS, HS_READER_WIN_BYTES,
		       (int)cli.timeout_ms, &hs_reader_sink_ops, &sink);
	/* An explicit TO travels as is; a defaulted one is "none": the tail
	 * pinned when the read starts. */
	if (o.have_count && !o.count) {
		/* -c 0: limit 0 would mean "no limit"; an empty range still
		 * checks that the stream exists. */
		to = from;
		has_to = 1;
	}
	hs_reader_add(&rd, stream, &from, has_to ? &to : NULL, o.count);
	hs_reader_sink_init(&sink, &fmt, &rd, 1, cli.prog);
	sink.names = fmt.kind == HS_FMT_TEMPLATE;
	sink.show_gaps = o.gaps;
	sink.max = o.count;

	for (int hops = 0;; hops++) {
		const char *dest;

		rd.redirect[0] = 0;
		r = hs_reader_start(&rd, &conn);
		if (r >= 0)
			r = hs_reader_run(&rd, NULL, NULL);
		/* A redirect is followed; a lost hs-serve of an -a list is
		 * failed over (the read resumes after what was printed); at
		 * most MAX_HOPS times, and a redirect whose address does not
		 * answer goes back to the list. */
		if (hops >= MAX_HOPS || sink.write_err)
			break;
		if (r == -HS_EREDIRECT && rd.redirect[0])
			dest = rd.redirect;
		else if ((r == -HS_EUNAVAIL || r == -HS_ETIMEOUT) && hs_client_multi(cli.addr) &&
			 hs_reader_status(&rd, &idx) != r) /* not the read's own end */
			dest = cli.addr;
		else
			break;
		if (hops)
			usleep(HOP_PAUSE_MS * 1000);
		hs_info("%s; connecting to %s", rd.why ? rd.why : hs_strerror(r), dest);
		r = hs_client_reconnect(&conn, dest, cli.timeout_ms, msg, sizeof(msg));
		if (r < 0 && dest == rd.redirect)
			r = hs_client_reconnect(&conn, cli.addr, cli.timeout_ms, msg, sizeof(msg));
		if (r < 0) {
			status = hs_cli_fail(&cli, hs_exit_status(r), "%s", msg);
			goto out_conn;
		}
	}
	status = 0;
	if (sink.write_err == -EPIPE) {
		/* stdout's reader is gone: like cat | head, not an error. */
	} else if (sink.write_err) {
		status = hs_cli_fail(&cli, EX_IOERR, "cannot write the output: %s",
				     hs_strerror(sink.write_err));
	} else if (r < 0 && hs_reader_status(&rd, &idx) == r) {
		if (r == -HS_ENOSTREAM)
			status = hs_cli_fail(&cli, EX_NOINPUT, "no such stream '%s'", stream);
		else
			status = hs_cli_fail(&cli, hs_exit_status(r), "cannot read '%s': %s",
					     stream, hs_strerror(r));
	} else if (r == -HS_EUNAVAIL) {
		status = hs_cli_fail(&cli, EX_UNAVAILABLE, "lost the connection to hs-serve%s%s",
				     rd.why ? ": " : "", rd.why ? rd.why : "");
	} else if (r == -HS_EPROTO || r == -HS_ECHECKSUM || r == -HS_ETOOBIG) {
		status = hs_cli_fail(&cli, hs_exit_status(r), "bad answer from hs-serve: %s",
				     rd.why ? rd.why : hs_strerror(r));
	} else if (r == -HS_ETIMEOUT) {
		char d[HS_DURATION_FMT_MAX];

		hs_fmt_duration(d, sizeof(d), cli.timeout_ms);
		status = hs_cli_fail(&cli, EX_TEMPFAIL, "no answer from hs-serve within %s (--timeout)",
				     d);
	} else if (r == -HS_EREDIRECT) {
		status = hs_cli_fail(&cli, EX_TEMPFAIL, "'%s' is sequenced by another hs-serve%s%s",
				     stream, rd.redirect[0] ? ": " : "", rd.redirect);
	} else if (r < 0) {
		status = hs_cli_fail(&cli, EX_UNAVAILABLE, "connection to hs-serve: %s",
				     hs_strerror(r));
	} else if (sink.dataloss) {
		status = hs_cli_fail(&cli, EX_IOERR, "records of '%s' were lost (DATALOSS)",
				     stream);
	}
out_conn:
	hs_sconn_close(&conn);
	hs_reader_sink_free(&sink);
	hs_reader_free(&rd);
out_fmt:
	hs_fmt_out_free(&fmt);
out_cli:
	hs_cli_free(&cli);
	return status;
}

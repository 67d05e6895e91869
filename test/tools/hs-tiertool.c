/*
 * hs-tiertool - a command-line client of libtier (backend.h), for tests and
 * for poking at a Tier2 store by hand.
 *
 *   hs-tiertool [OPTIONS] URL put KEY FILE|-   [--excl]
 *   hs-tiertool [OPTIONS] URL get KEY [--offset N] [--length N]
 *   hs-tiertool [OPTIONS] URL head KEY          prints the size
 *   hs-tiertool [OPTIONS] URL list [PREFIX]     prints "KEY<TAB>SIZE" lines
 *   hs-tiertool [OPTIONS] URL delete KEY
 *
 * URL is file:///DIR, s3://BUCKET[/PREFIX] or webhdfs://HOST:PORT/PATH.
 * Options: --endpoint URL, --region R, --path-style (s3), --credentials FILE
 * (s3; else $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY - secrets never on the
 * command line), --user NAME (webhdfs user.name), --retries N, -v.
 * put streams its input (put_begin/put_write/put_end), so a large object
 * goes up as a multipart upload on S3 without being held in memory.
 * Diagnostics go to stderr; the exit status follows hs_exit_status()
 * (66 no such object, 77 bad credentials, 65 the key exists with --excl,
 * 64 usage, 69/75 unreachable or timed out).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "err.h"
#include "log.h"

#define CHUNK (1u << 20)

static void usage(void)
{
	fprintf(stderr,
		"usage: hs-tiertool [--endpoint URL] [--region R] [--path-style]\n"
		"                   [--credentials FILE] [--user NAME] [--retries N] [-v]\n"
		"                   URL put KEY FILE|- [--excl] | get KEY [--offset N] [--length N]\n"
		"                   | head KEY | list [PREFIX] | delete KEY\n");
	exit(hs_exit_status(-HS_EUSAGE));
}

static uint64_t num(const char *s, const char *what)
{
	unsigned long long v;
	char *e;

	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno || e == s || *e || *s == '-') {
		fprintf(stderr, "hs-tiertool: bad %s '%s'\n", what, s);
		usage();
	}
	return v;
}

static int write_all(const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(1, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= w;
	}
	return 0;
}

static int print_key(void *arg, const char *key, uint64_t size)
{
	printf("%s\t%llu\n", key, (unsigned long long)size);
	return 0;
}

static int do_put(struct hs_tier *t, const char *key, const char *path,
		  unsigned flags)
{
	struct hs_tier_put *p;
	FILE *in = stdin;
	char *buf;
	size_t n;
	int err;

	if (strcmp(path, "-") && !(in = fopen(path, "rb"))) {
		fprintf(stderr, "hs-tiertool: %s: %s\n", path, strerror(errno));
		return -HS_ENOENT;
	}
	err = hs_tier_put_begin(t, key, flags, &p);
	if (err < 0)
		goto out_close;
	buf = hs_xmalloc(CHUNK);
	while ((n = fread(buf, 1, CHUNK, in)) > 0) {
		err = hs_tier_put_write(p, buf, n);
		if (err < 0)
			break;
	}
	if (!err && ferror(in)) {
		fprintf(stderr, "hs-tiertool: reading %s: %s\n", path,
			strerror(errno));
		err = -HS_EIO;
	}
	free(buf);
	if (err < 0)
		hs_tier_put_abort(p);
	else
		err = hs_tier_put_end(p);
out_close:
	if (in != stdin)
		fclose(in);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "region", required_argument, NULL, 'r' },
		{ "path-style", no_argument, NULL, 'p' },
		{ "credentials", required_argument, NULL, 'c' },
		{ "user", required_argument, NULL, 'u' },
		{ "retries", required_argument, NULL, 'R' },
		{ "offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		{ "excl", no_argument, NULL, 'x' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_tier_opts o = { 0 };
	char openerr[HS_TIER_ERRLEN];
	uint64_t off = 0, len = 0, size;
	unsigned flags = 0;
	struct hs_tier *t;
	const char *cmd;
	int c, err, nargs;

	hs_log_init("hs-tiertool", HS_LOG_WARN);
	o.err = openerr;
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case 'e': o.endpoint = optarg; break;
		case 'r': o.region = optarg; break;
		case 'p': o.path_style = 1; break;
		case 'c': o.cred_file = optarg; break;
		case 'u': o.user = optarg; break;
		case 'R': o.retries = (int)num(optarg, "retry count");
			  if (!o.retries)
				  o.retries = -1; /* 0 means "default" in the struct */
			  break;
		case 'o': off = num(optarg, "offset"); break;
		case 'l': len = num(optarg, "length"); break;
		case 'x': flags |= HS_TIER_EXCL; break;
		case 'v': hs_log_adjust(1); break;
		default: usage();
		}
	}
	if (argc - optind < 2)
		usage();
	cmd = argv[optind + 1];
	nargs = argc - optind - 2;
	if ((!strcmp(cmd, "put") && nargs != 2) ||
	    ((!strcmp(cmd, "get") || !strcmp(cmd, "head") ||
	      !strcmp(cmd, "delete")) && nargs != 1) ||
	    (!strcmp(cmd, "list") && nargs > 1))
		usage();
	if (strcmp(cmd, "put") && strcmp(cmd, "get") && strcmp(cmd, "head") &&
	    strcmp(cmd, "list") && strcmp(cmd, "delete"))
		usage();

	err = hs_tier_open(argv[optind], &o, &t);
	if (err < 0) {
		fprintf(stderr, "hs-tiertool: %s\n",
			openerr[0] ? openerr : hs_strerror(err));
		return hs_exit_status(err);
	}
	if (!strcmp(cmd, "put")) {
		err = do_put(t, argv[optind + 2], argv[optind + 3], flags);
	} else if (!strcmp(cmd, "get")) {
		struct hs_buf b = HS_BUF_INIT;

		err = hs_tier_get(t, argv[optind + 2], off, len, &b);
		if (!err && (err = write_all(b.data, b.len)) < 0)
			fprintf(stderr, "hs-tiertool: stdout: %s\n",
				strerror(-err));
		hs_buf_free(&b);
	} else if (!strcmp(cmd, "head")) {
		err = hs_tier_head(t, argv[optind + 2], &size);
		if (!err)
			printf("%llu\n", (unsigned long long)size);
	} else if (!strcmp(cmd, "list")) {
		err = hs_tier_list(t, nargs ? argv[optind + 2] : "", print_key,
				   NULL);
	} else {
		err = hs_tier_delete(t, argv[optind + 2]);
	}
	if (err < 0 && hs_tier_error(t)[0])
		fprintf(stderr, "hs-tiertool: %s\n", hs_tier_error(t));
	else if (err < 0)
		fprintf(stderr, "hs-tiertool: %s: %s\n", cmd, hs_strerror(err));
	hs_tier_close(t);
	if (fflush(stdout) != 0 && !err)
		err = -HS_EIO;
	return hs_exit_status(err);
}

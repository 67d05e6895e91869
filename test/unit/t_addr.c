/* t_addr.c - default serve address and data directory, socket directory
 * checks, address lists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "tap.h"

static char tmp[] = "/tmp/t_addr.XXXXXX";

static void test_default(void)
{
	char buf[HS_ADDR_MAX_LEN], want[300], fallback[64], deep[256], file[300];
	FILE *fp;

	snprintf(fallback, sizeof(fallback), "unix:/tmp/hs-%u/serve.sock", (unsigned)getuid());
	unsetenv("XDG_RUNTIME_DIR");
	is_str(hs_addr_default(buf, sizeof(buf)), fallback, "XDG_RUNTIME_DIR unset: /tmp/hs-UID");
	setenv("XDG_RUNTIME_DIR", "", 1);
	is_str(hs_addr_default(buf, sizeof(buf)), fallback, "XDG_RUNTIME_DIR empty: fallback");

	setenv("XDG_RUNTIME_DIR", tmp, 1);
	snprintf(want, sizeof(want), "unix:%s/hs/serve.sock", tmp);
	is_str(hs_addr_default(buf, sizeof(buf)), want, "XDG_RUNTIME_DIR set: under it");
	ok(hs_addr_default(buf, strlen(want)) == NULL, "buffer one byte short: NULL");
	ok(hs_addr_default(buf, strlen(want) + 1) == buf, "exact buffer fits");

	/* 107 bytes of sun_path is the most that fits. */
	snprintf(deep, sizeof(deep), "%s/", tmp);
	while (strlen(deep) + strlen("/hs/serve.sock") < 107)
		strcat(deep, "d");
	ok(!mkdir(deep, 0700), "made %zu-byte dir", strlen(deep));
	setenv("XDG_RUNTIME_DIR", deep, 1);
	snprintf(want, sizeof(want), "unix:%s/hs/serve.sock", deep);
	is_str(hs_addr_default(buf, sizeof(buf)), want, "socket path of 107 bytes: used");
	strcat(deep, "e");
	ok(!mkdir(deep, 0700), "made %zu-byte dir", strlen(deep));
	setenv("XDG_RUNTIME_DIR", deep, 1);
	is_str(hs_addr_default(buf, sizeof(buf)), fallback, "socket path of 108 bytes: fallback");

	snprintf(file, sizeof(file), "%s/file", tmp);
	fp = fopen(file, "w");
	ok(fp && !fclose(fp), "made a file");
	setenv("XDG_RUNTIME_DIR", file, 1);
	is_str(hs_addr_default(buf, sizeof(buf)), fallback, "XDG_RUNTIME_DIR a file: fallback");
	setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
	is_str(hs_addr_default(buf, sizeof(buf)), fallback, "XDG_RUNTIME_DIR relative: fallback");
	setenv("XDG_RUNTIME_DIR", "/nonexistent-hs-test", 1);
	is_str(hs_addr_default(buf, sizeof(buf)), fallback, "XDG_RUNTIME_DIR missing: fallback");
	if (getuid() != 0) {
		setenv("XDG_RUNTIME_DIR", "/", 1);
		is_str(hs_addr_default(buf, sizeof(buf)), fallback,
		       "XDG_RUNTIME_DIR owned by another user: fallback");
	} else {
		char other[300];

		snprintf(other, sizeof(other), "%s/other", tmp);
		ok(!mkdir(other, 0700) && !chown(other, 65534, 65534), "root: made a dir of uid 65534");
		setenv("XDG_RUNTIME_DIR", other, 1);
		is_str(hs_addr_default(buf, sizeof(buf)), fallback,
		       "XDG_RUNTIME_DIR owned by another user: fallback");
		rmdir(other);
	}
	unsetenv("XDG_RUNTIME_DIR");
}

static void test_data(void)
{
	char buf[256];

	setenv("XDG_DATA_HOME", "/data/x", 1);
	is_str(hs_addr_data_default(buf, sizeof(buf)), "/data/x/hs", "XDG_DATA_HOME set");
	ok(hs_addr_data_default(buf, 10) == NULL, "data dir: small buffer NULL");
	setenv("HOME", "/home/u", 1);
	setenv("XDG_DATA_HOME", "rel", 1);
	is_str(hs_addr_data_default(buf, sizeof(buf)), "/home/u/.local/share/hs",
	       "relative XDG_DATA_HOME ignored");
	unsetenv("XDG_DATA_HOME");
	is_str(hs_addr_data_default(buf, sizeof(buf)), "/home/u/.local/share/hs",
	       "XDG_DATA_HOME unset: HOME");
	unsetenv("HOME");
	ok(hs_addr_data_default(buf, sizeof(buf)) == NULL ||
	   (buf[0] == '/' && strstr(buf, "/.local/share/hs")), "HOME unset: password database");
}

static void test_dirs(void)
{
	char addr[300], dir[256];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/hs", tmp);
	snprintf(addr, sizeof(addr), "unix:%s/serve.sock", dir);
	is_int(hs_addr_dir_check(addr), -ENOENT, "check: missing dir -ENOENT");
	is_int(hs_addr_dir_make(addr), 0, "make: creates the dir");
	ok(!stat(dir, &st) && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
	   "made dir has mode 0700");
	is_int(hs_addr_dir_make(addr), 0, "make: existing dir is fine");
	is_int(hs_addr_dir_check(addr), 0, "check: own 0700 dir passes");
	ok(!chmod(dir, 0770), "chmod 0770");
	is_int(hs_addr_dir_check(addr), -HS_EPERM, "check: group-writable refused");
	is_int(hs_addr_dir_make(addr), -HS_EPERM, "make: group-writable refused");
	ok(!chmod(dir, 0757), "chmod 0757");
	is_int(hs_addr_dir_check(addr), -HS_EPERM, "check: world-writable refused");
	ok(!chmod(dir, 0700), "chmod back");
	if (getuid() != 0)
		is_int(hs_addr_dir_check("unix:/etc/serve.sock"), -HS_EPERM,
		       "check: dir of another user refused");
	else if (!chown(dir, 65534, 65534))
		is_int(hs_addr_dir_check(addr), -HS_EPERM, "check: dir of another user refused");
	is_int(hs_addr_dir_check("127.0.0.1:4000"), 0, "check: TCP addresses pass");
	is_int(hs_addr_dir_check("unix:nodir"), -HS_EUSAGE, "check: unix path without a dir");
	rmdir(dir);
}

static void test_list(void)
{
	static const char *bad[] = {
		"", ",", "a:1,", ",a:1", "a:1,,b:2", "a", "a:", "a:x", "a:65536", "a:-1",
		"unix:", ":5", "[::1]", "[]:5", "[::1]5", "a:b:5", " , ",
	};
	char **l = NULL;
	char longp[200];
	int n;

	n = hs_addr_list_parse("unix:/run/hs.sock,localhost:7000", &l);
	ok(n == 2 && l && !strcmp(l[0], "unix:/run/hs.sock") && !strcmp(l[1], "localhost:7000") &&
	   !l[2], "two addresses");
	hs_addr_list_free(l);
	n = hs_addr_list_parse(" 10.0.0.1:0 ,\t[::1]:65535 ", &l);
	ok(n == 2 && !strcmp(l[0], "10.0.0.1:0") && !strcmp(l[1], "[::1]:65535") && !l[2],
	   "blanks trimmed, port 0 and 65535, IPv6");
	hs_addr_list_free(l);
	n = hs_addr_list_parse("h:1", &l);
	ok(n == 1 && !strcmp(l[0], "h:1") && !l[1], "one address");
	hs_addr_list_free(l);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		l = (char **)1;
		n = hs_addr_list_parse(bad[i], &l);
		ok(n == -HS_EUSAGE && l == (char **)1, "refused: '%s'", bad[i]);
	}
	memset(longp, 'p', sizeof(longp));
	memcpy(longp, "unix:/", 6);
	longp[5 + 108] = 0;
	is_int(hs_addr_list_parse(longp, &l), -HS_EUSAGE, "refused: unix path of 108 bytes");
	longp[5 + 107] = 0;
	is_int(hs_addr_list_parse(longp, &l), 1, "unix path of 107 bytes");
	hs_addr_list_free(l);
	hs_addr_list_free(NULL);
}

int main(void)
{
	char cmd[64];

	if (!mkdtemp(tmp)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	chmod(tmp, 0700);
	test_default();
	test_data();
	test_dirs();
	test_list();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd))
		printf("# cleanup of %s failed\n", tmp);
	return tap_done();
}

#!/usr/bin/env bats
# 52-scen-fsync: fdatasync/fsync start failing on one peer under load
# (libfiu, TESTING.md "Disk"), on a peer of the stream's copyset.  That
# peer must stop acknowledging and exit 74 (RocksDB's background error is
# permanent); with R=2 over 3 peers the appends go on on the other two; the
# peer restarts clean and the final reads hold every acknowledged record.
# At R=1 (while hs-serve refuses R>1) peer 1 holds every record: appends
# stall until it is back.

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

# wal_bytes I: the bytes in peer I's WAL files.
wal_bytes() {
	cat "$HS_T/p$1.d"/*.log 2>/dev/null | wc -c
}

@test "fdatasync failures on one peer under load: it exits 74, restarts, nothing lost" {
	command -v fiu-run >/dev/null || skip "fiu-run (fiu-utils) is not installed"
	cl_need_r 2 1
	CL_NPEERS=3
	# Every peer runs under fiu-run; faults are enabled later, on one peer
	# only (failing syncs while RocksDB opens would only test that it
	# refuses to start).
	for i in 1 2 3; do
		cl_peer_start_fiu "$i"
	done
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_append_start 2 "$(cl_addr s)" --batch 4 --inflight 8
	cl_wait_acks 500 15
	# The victim: a peer of the current copyset (a stream keeps its copyset
	# for 1 MiB, longer than this test), i.e. one whose WAL grows.
	for i in 1 2 3; do
		b0[$i]=$(wal_bytes "$i")
	done
	sleep 1
	v=1 best=-1
	for i in 1 2 3; do
		g=$(($(wal_bytes "$i") - b0[i]))
		[ "$g" -gt "$best" ] && v=$i best=$g
	done
	echo "# syncs fail on p$v (its WAL grew $best bytes in 1 s)" >&3
	timeout 10 fiu-ctrl -f "$HS_T/fc$v" \
		-c 'enable_random name=posix/io/sync/fdatasync,probability=0.1' \
		-c 'enable_random name=posix/io/sync/fsync,probability=0.1' "$(hs_daemon_pid "p$v")"
	hs_daemon_wait_exit "p$v" 30 || {
		echo "# p$v still running 30 s after its syncs began failing" >&3
		false
	}
	[ "$HS_EXIT" -eq 74 ]
	grep -q 'error: store failed: .*; exiting' "$HS_T/p$v.err"
	if [ "$CL_R" -gt 1 ]; then
		# The two healthy peers are R: appends go on without it.
		cl_wait_acks 400 20
	fi
	cl_peer_start "$v"
	cl_wait_acks 400 20
	cl_append_stop
	cl_check "$(cl_addr s)" 900
	cl_stop s
	cl_stop "p$v"
	# The others still run under fiu-run, whose control thread (-f) does
	# not block SIGTERM as hs-peer's threads do: a SIGTERM kills them
	# before hs-peer sees it (status 143), so their clean stop is not
	# tested here.
	for i in 1 2 3; do
		[ "$i" = "$v" ] || cl_kill9 "p$i"
	done
}

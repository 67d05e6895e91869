#!/usr/bin/env bats
# 12-peer-faults: no acknowledged record is lost (DESIGN.md §10.1) when the
# peer is killed with SIGKILL mid-stream, or when fdatasync/fsync start
# failing under it (libfiu): then it must stop acknowledging, exit non-zero,
# and come back clean on restart with every acknowledged record readable.

load helpers

setup_file() {
	hs_tmpdir
}

teardown_file() {
	local st=0
	for d in k s f; do
		hs_daemon_stop "$d" || st=1
	done
	[ "$st" -eq 0 ] && hs_tmpdir_remove
	return "$st"
}

@test "kill -9 during a stream of STOREs loses nothing acknowledged" {
	peer_start k
	timeout 60 "$HS_TOOLS/hs-ptool" -a "$PEER_ADDR" store --log 1 --epoch 1 \
		--count 3000000 --run 100 --inflight 4 --acks "$HS_T/k.acks" \
		>"$HS_T/k.store" 2>&1 3>&- &
	spid=$!
	deadline=$((SECONDS + 20))
	until [ -s "$HS_T/k.acks" ] && [ "$(wc -l <"$HS_T/k.acks")" -ge 200 ]; do
		[ "$SECONDS" -lt "$deadline" ] || { hs_show "$HS_T/k.store"; false; }
		sleep 0.01
	done
	hs_daemon_kill9 k
	st=0
	wait "$spid" || st=$?
	[ "$st" -ne 0 ] # the writer saw the connection go
	peer_start k
	run check_acks k "$HS_T/k.acks"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^acked\ ([0-9]+)\ missing\ 0\ bad\ 0$ ]]
	[ "${BASH_REMATCH[1]}" -ge 20000 ]
	hs_daemon_stop k
}

@test "SIGTERM during a stream of STOREs exits 0 and loses nothing acknowledged" {
	peer_start s
	timeout 60 "$HS_TOOLS/hs-ptool" -a "$PEER_ADDR" store --log 1 --epoch 1 \
		--count 3000000 --run 100 --inflight 8 --acks "$HS_T/s.acks" \
		>"$HS_T/s.store" 2>&1 3>&- &
	spid=$!
	deadline=$((SECONDS + 20))
	until [ -s "$HS_T/s.acks" ] && [ "$(wc -l <"$HS_T/s.acks")" -ge 100 ]; do
		[ "$SECONDS" -lt "$deadline" ] || { hs_show "$HS_T/s.store"; false; }
		sleep 0.01
	done
	hs_daemon_stop s
	st=0
	wait "$spid" || st=$?
	[ "$st" -ne 0 ]
	[ ! -e "$HS_T/s.sock" ]
	peer_start s
	run check_acks s "$HS_T/s.acks"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^acked\ ([0-9]+)\ missing\ 0\ bad\ 0$ ]]
	hs_daemon_stop s
}

@test "failing fdatasync: the peer stops acknowledging, exits 74, restarts clean" {
	command -v fiu-run >/dev/null || skip "fiu-run (fiu-utils) is not installed"
	# Enable the faults once the peer is up: failing syncs while RocksDB
	# opens would only test that it refuses to start.
	hs_daemon_start f fiu-run -x -f "$HS_T/fc" "$HS_BIN/hs-peer" --data "$HS_T/f.d" \
		--listen "unix:$HS_T/f.sock"
	PEER_ADDR=$(cat "$HS_T/f.ready")
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --count 1000 --run 100 \
		--acks "$HS_T/f.acks"
	[ "$status" -eq 0 ]
	timeout 10 fiu-ctrl -f "$HS_T/fc" \
		-c 'enable_random name=posix/io/sync/fdatasync,probability=0.05' \
		-c 'enable_random name=posix/io/sync/fsync,probability=0.05' "$(hs_daemon_pid f)"
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --esn-start 1001 --count 1000000 \
		--run 100 --inflight 4 --acks "$HS_T/f.acks"
	[ "$status" -ne 0 ]
	hs_daemon_wait_exit f 20
	[ "$HS_EXIT" -eq 74 ]
	grep -q 'error: store failed: .*; exiting' "$HS_T/f.err"
	[ ! -e "$HS_T/f.pid" ]

	# Restart without faults: RocksDB recovers its WAL, every ack is there.
	peer_start f
	run check_acks f "$HS_T/f.acks"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^acked\ ([0-9]+)\ missing\ 0\ bad\ 0$ ]]
	[ "${BASH_REMATCH[1]}" -ge 1000 ]
	# It accepts writes again.
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 2 --count 10 --run 10
	[ "$status" -eq 0 ]
	hs_daemon_stop f
}

#!/usr/bin/env bats
# 10-peer: hs-peer's command line, and the peer protocol end to end through
# hs-ptool: store/read, the released point, read windows, seals, malformed
# input and version mismatch.  One peer serves the whole file.

load helpers

setup_file() {
	hs_tmpdir
	peer_start p
}

teardown_file() {
	hs_daemon_stop p
	local st=$?
	[ "$st" -eq 0 ] && hs_tmpdir_remove
	return "$st"
}

@test "hs-peer --help lists every flag on stdout and exits 0" {
	run --separate-stderr timeout 5 "$HS_BIN/hs-peer" --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	for f in --data --listen --ready-file --pidfile --durability --node-id \
		--partition-duration --partition-size --max-frame --addr --timeout \
		--config --verbose --quiet --help --version; do
		grep -qE -- "^  (-[a-zA-Z], |    )$f" <<<"$output" || { echo "missing $f"; false; }
	done
	grep -qE -- '^  -X KEY=VAL' <<<"$output"
}

@test "hs-peer --version prints its name and version" {
	run timeout 5 "$HS_BIN/hs-peer" --version
	[ "$status" -eq 0 ]
	[ "$output" = "hs-peer 0.1.0" ]
}

@test "usage errors exit 64 with a message and the short usage on stderr" {
	run --separate-stderr timeout 5 "$HS_BIN/hs-peer" --no-such-flag
	[ "$status" -eq 64 ]
	[ -z "$output" ]
	[[ "$stderr" == *no-such-flag* ]]
	[[ "$stderr" == *"usage: hs-peer"* ]]

	run --separate-stderr timeout 5 "$HS_BIN/hs-peer" --listen "unix:$HS_T/x.sock"
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"--data DIR is required"* ]]

	run --separate-stderr timeout 5 "$HS_BIN/hs-peer" --data "$HS_T/x.d"
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"--listen ADDR is required"* ]]

	run --separate-stderr timeout 5 "$HS_BIN/hs-peer" --data "$HS_T/x.d" \
		--listen "unix:$HS_T/x.sock" --durability sometimes
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"invalid --durability 'sometimes'"* ]]
	[ ! -e "$HS_T/x.d" ]
}

@test "an unwritable data directory exits 73 naming the directory" {
	run --separate-stderr timeout 10 "$HS_BIN/hs-peer" --data /proc/hs-no/data \
		--listen "unix:$HS_T/y.sock"
	[ "$status" -eq 73 ]
	[[ "$stderr" == *"/proc/hs-no"* ]]
	[ ! -e "$HS_T/y.sock" ]
}

@test "the ready file holds the address and the pidfile the daemon's pid" {
	[ "$(cat "$HS_T/p.ready")" = "unix:$HS_T/p.sock" ]
	[ "$(cat "$HS_T/p.pid")" = "$(hs_daemon_pid p)" ]
	run ptool -a "$PEER_ADDR" hello
	[ "$status" -eq 0 ]
	[[ "$output" == "version=1 role=3 "* ]]
}

@test "1,000,000 records of 100 bytes are stored and read back byte for byte" {
	awk 'BEGIN { for (i = 1; i <= 1000000; i++) printf "%0100d\n", i * 7919 }' >"$HS_T/big.in"
	want=$(sha256sum <"$HS_T/big.in")
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --run 1000 --inflight 8 --stdin \
		<"$HS_T/big.in"
	[ "$status" -eq 0 ]
	[[ "$output" == "stored 1000000 records in "*" s: "*" records/s, "*" MB/s, STORED p50 "*" us p99 "*" us" ]]
	run ptool -a "$PEER_ADDR" release --log 1 --lsn e1n1000000
	[ "$status" -eq 0 ]
	got=$(ptool -a "$PEER_ADDR" read --log 1 --until e1n1000000 --format payload | sha256sum)
	[ "$got" = "$want" ]
	# The LSNs are consecutive and the first and last are where they belong.
	run ptool -a "$PEER_ADDR" read --log 1 --from e1n999998 --until e1n1000000
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "e1n999998	$(sed -n 999998p "$HS_T/big.in")" ]
	[ "${#lines[@]}" -eq 3 ]
	rm -f "$HS_T/big.in"
}

@test "a stalled reader is paced by back-pressure; others are still served" {
	# No window: only the connection's output backlog holds the peer back
	# while the reader's stdout is stuck behind a sleeping pipe.
	ptool -a "$PEER_ADDR" read --log 1 --window 0 --until e1n1000000 --format lsn \
		2>"$HS_T/slow.err" 3>&- | { sleep 2; cat; } >"$HS_T/slow.out" 3>&- &
	spid=$!
	sleep 0.5
	run ptool -t 1s -a "$PEER_ADDR" store --log 9 --epoch 1 --count 1000 --run 100
	[ "$status" -eq 0 ]
	run ptool -t 1s -a "$PEER_ADDR" stats
	[ "$status" -eq 0 ]
	grep -qx 'streams 1' <<<"$output"
	wait "$spid"
	[ "$(wc -l <"$HS_T/slow.out")" -eq 1000000 ]
	[ "$(tail -n 1 "$HS_T/slow.out")" = e1n1000000 ]
	rm -f "$HS_T/slow.out"
}

@test "reads stop at the released point and resume after RELEASE" {
	run ptool -a "$PEER_ADDR" store --log 2 --epoch 1 --count 100 --run 10
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 2 --format lsn --idle-exit 500ms
	[ "$status" -eq 0 ]
	[ -z "$output" ]

	run ptool -a "$PEER_ADDR" release --log 2 --lsn e1n40
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 2 --format lsn --idle-exit 500ms
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 40 ]
	[ "${lines[0]}" = e1n1 ]
	[ "${lines[39]}" = e1n40 ]

	# A parked reader is woken by the next RELEASE.
	ptool -a "$PEER_ADDR" read --log 2 --format lsn --count 100 >"$HS_T/r2.out" 2>&1 3>&- &
	rpid=$!
	sleep 0.3
	[ "$(wc -l <"$HS_T/r2.out")" -eq 40 ]
	run ptool -a "$PEER_ADDR" release --log 2 --lsn e1n100
	[ "$status" -eq 0 ]
	wait "$rpid"
	[ "$(wc -l <"$HS_T/r2.out")" -eq 100 ]
	[ "$(tail -n 1 "$HS_T/r2.out")" = e1n100 ]

	# Ignoring the released point is explicit.
	run ptool -a "$PEER_ADDR" store --log 2 --epoch 1 --esn-start 101 --count 5 --run 5
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 2 --from e1n99 --until e1n105 --ignore-released --format lsn
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 7 ]
	[ "${lines[6]}" = e1n105 ]
}

@test "a peer that holds nothing up to the released point says so with a NORECORDS gap" {
	run ptool -a "$PEER_ADDR" store --log 5 --epoch 1 --count 10 --run 10
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" release --log 5 --lsn e1n20
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 5 --format lsn --idle-exit 500ms
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 11 ]
	[ "${lines[10]}" = "GAP e1n11 e1n20 NORECORDS" ]
	# until inside the released range: records, then END.
	run ptool -a "$PEER_ADDR" read --log 5 --from e1n3 --until e1n4 --format lsn
	[ "$status" -eq 0 ]
	[ "$output" = "e1n3
e1n4" ]
}

@test "overlapping runs are sliced: each LSN once, in order, never past the released point" {
	run ptool -a "$PEER_ADDR" store --log 10 --epoch 1 --count 10 --run 10
	[ "$status" -eq 0 ]
	# A recovery copy of e1n5..e1n14 overlaps the first run.
	run ptool -a "$PEER_ADDR" store --log 10 --epoch 1 --esn-start 5 --count 10 --run 10 \
		--recovery 1
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" release --log 10 --lsn e1n10
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 10 --format lsn --idle-exit 500ms
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'e1n%d\n' $(seq 10))" ]
	run ptool -a "$PEER_ADDR" release --log 10 --lsn e1n14
	run ptool -a "$PEER_ADDR" read --log 10 --from e1n9 --until e1n14
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 6 ]
	[[ "${lines[5]}" == "e1n14	e1n14:"* ]]
}

@test "the window bounds the records sent before more credit" {
	run ptool -a "$PEER_ADDR" store --log 3 --epoch 1 --count 500 --run 100
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" release --log 3 --lsn e1n500
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 3 --window 50 --no-refill --format lsn --idle-exit 700ms
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 50 ]
	[ "${lines[49]}" = e1n50 ]
	run ptool -a "$PEER_ADDR" read --log 3 --window 7 --format lsn --until e1n500
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 500 ]
}

@test "seals refuse older epochs; a recovery store at ballot >= seal raises the seal" {
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 1 --count 10 --run 10
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" seal --log 4 --epoch 2
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = seal=2 ]
	[[ "$output" == *"epoch 1 lng 0 max_lsn e1n10"* ]]

	# Epoch <= seal is refused with the seal in the reply.
	run --separate-stderr ptool -a "$PEER_ADDR" store --log 4 --epoch 2 --count 10 --run 10
	[ "$status" -eq 75 ]
	[[ "$stderr" == *"run e2n1..e2n10 refused: sealed by a newer epoch (seal 2)"* ]]
	[[ "$output" == "stored 0 records"* ]]
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 1 --esn-start 11 --count 1 --run 1
	[ "$status" -eq 75 ]
	# A newer epoch is accepted.
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 3 --count 10 --run 10
	[ "$status" -eq 0 ]

	# Recovery below the seal is refused; at or above it, accepted and the
	# seal rises to the ballot.
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 2 --count 5 --run 5 --recovery 1
	[ "$status" -eq 75 ]
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 2 --count 5 --run 5 --recovery 5
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" meta --log 4
	[ "$status" -eq 0 ]
	[[ "$output" == *"seal=5"* ]]
	[[ "$output" == *"max_lsn=e3n10"* ]]
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 4 --count 1 --run 1
	[ "$status" -eq 75 ]
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 6 --count 1 --run 1
	[ "$status" -eq 0 ]

	# A soft seal refuses the same way; seals never go down.
	run ptool -a "$PEER_ADDR" seal --log 4 --epoch 7 --soft
	[ "$status" -eq 0 ]
	[[ "$output" == *"soft_seal=7"* ]]
	run ptool -a "$PEER_ADDR" store --log 4 --epoch 7 --count 1 --run 1
	[ "$status" -eq 75 ]
	run ptool -a "$PEER_ADDR" seal --log 4 --epoch 3
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = seal=5 ]
}

@test "STATS reports partitions, commits, runs and connections" {
	run ptool -a "$PEER_ADDR" stats
	[ "$status" -eq 0 ]
	for k in partitions partition_names commits runs_stored bytes_stored connections \
		connections_total streams; do
		grep -qE "^$k " <<<"$output" || { echo "no $k"; false; }
	done
	grep -qx 'partitions 1' <<<"$output"
	grep -qE '^connections [1-9]' <<<"$output"
	grep -qx 'durability sync' <<<"$output"
}

@test "garbage, oversized and out-of-order frames close that connection only" {
	run ptool -t 3s -a "$PEER_ADDR" garbage 1000
	[ "$status" -eq 0 ]
	[ "$output" = closed ]
	grep -q 'closing connection from unix: bad frame checksum' "$HS_T/p.err"

	# Length field 0xfffffff0: refused from the first four bytes.
	run ptool -t 3s -a "$PEER_ADDR" raw --hex f0ffffff100000000000000000000000
	[ "$status" -eq 0 ]
	[ "$output" = closed ]
	grep -q 'frame of 4294967280 bytes over the 67108864 limit' "$HS_T/p.err"

	run ptool -t 3s -a "$PEER_ADDR" raw --no-hello --frame 24
	[ "$output" = closed ]
	grep -q 'STATS frame before HELLO' "$HS_T/p.err"

	run ptool -t 3s -a "$PEER_ADDR" raw --frame 16 --hex 01000000
	[ "$output" = closed ]
	grep -q 'malformed STORE body' "$HS_T/p.err"

	run ptool -t 3s -a "$PEER_ADDR" raw --frame 999
	[ "$output" = closed ]
	grep -q 'unknown message type 999' "$HS_T/p.err"

	# A well-formed request on the same terms keeps the connection open.
	run ptool -t 1s -a "$PEER_ADDR" raw --frame 24
	[ "$output" = open ]

	# The process is still serving.
	run ptool -a "$PEER_ADDR" store --log 6 --epoch 1 --count 10 --run 10
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 6 --ignore-released --until e1n10 --format lsn
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 10 ]
	kill -0 "$(hs_daemon_pid p)"
}

@test "a HELLO with another protocol version is refused: exit 76" {
	run --separate-stderr ptool -a "$PEER_ADDR" hello --version 99
	[ "$status" -eq 76 ]
	[[ "$stderr" == *"peer refused HELLO: protocol version 99 not supported"* ]]
	grep -q 'protocol version 99, this peer speaks 1' "$HS_T/p.err"
}

@test "SIGHUP is ignored" {
	kill -HUP "$(hs_daemon_pid p)"
	sleep 0.1
	run ptool -a "$PEER_ADDR" meta --log 1
	[ "$status" -eq 0 ]
	[[ "$output" == *"released=e1n1000000"* ]]
}

@test "durability async and memory serve the same protocol" {
	for mode in async memory; do
		peer_start "$mode" --durability "$mode"
		run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --count 10000 --run 100
		[ "$status" -eq 0 ]
		run ptool -a "$PEER_ADDR" release --log 1 --lsn e1n10000
		[ "$status" -eq 0 ]
		run ptool -a "$PEER_ADDR" read --log 1 --from e1n9999 --until e1n10000 --format lsn
		[ "$output" = "e1n9999
e1n10000" ]
		run ptool -a "$PEER_ADDR" stats
		grep -qx "durability $mode" <<<"$output"
		hs_daemon_stop "$mode"
	done
	grep -q 'durability memory: nothing is written to disk' "$HS_T/memory.err"
}

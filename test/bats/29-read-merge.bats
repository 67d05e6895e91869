#!/usr/bin/env bats
# 29-read-merge: reads merge the peers of each epoch's nodeset
# (docs/replication.md §6, libpaxos/merge.h).  With R=2 over 3 peers the
# records are spread over the copysets; hs-cat reads them back
# byte-identical and in order; with one peer killed it still does; with
# two of three down the read waits and then fails with a timeout - a down
# peer proves nothing, so never DATALOSS; with two of three peers wiped
# (they answer, holding nothing) the records only they held are reported
# as DATALOSS and hs-cat exits 74 after printing everything else.

load helpers

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	hs_tmpdir
	HS_ADDR=unix:$HS_T/s.sock
	export HS_T HS_ADDR
	peer_start p1 --node-id 1
	peer_start p2 --node-id 2
	peer_start p3 --node-id 3
	# A read blocked on down peers fails after 2 s instead of 10.
	HS_READ_STALL_MS=2000 serve_start --peer "unix:$HS_T/p1.sock" \
		--peer "unix:$HS_T/p2.sock" --peer "unix:$HS_T/p3.sock" --replication 2
	# 200,000 records of 100 bytes: ~20 MiB, so about 20 copysets.
	seq -f '%099.0f' 1 200000 >"$HS_T/in"
	timeout 120 "$HS_BIN/hs-append" -c m "$HS_T/in" >/dev/null
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	local st=0 d
	for d in serve p1 p2 p3; do
		hs_daemon_stop $d || st=1
	done
	hs_tmpdir_remove
	return $st
}

cat_() {
	timeout 60 "$HS_BIN/hs-cat" "$@"
}

# held ADDR: how many records of stream m's log the peer holds.
held() {
	local log
	log=$(timeout 30 "$HS_BIN/hs-admin" stats | awk '$1 == "stream/m" && $2 == "log" { print $3 }')
	# Recovery's BRIDGE run (one empty record) is not a record.
	ptool -a "$1" read --log "$log" --ignore-released --idle-exit 1s --format line |
		awk -F '\t' '$2 != ""' | wc -l
}

@test "R=2 over 3 peers: the merged read is byte-identical and in order" {
	local a n total=0
	for a in p1 p2 p3; do
		n=$(held "unix:$HS_T/$a.sock")
		# Spread: no peer holds everything, every peer holds some.
		[ "$n" -gt 0 ] && [ "$n" -lt 200000 ]
		total=$((total + n))
	done
	[ "$total" -eq 400000 ]
	cat_ m >"$HS_T/out"
	cmp "$HS_T/in" "$HS_T/out"
	# Ranges and limits cut the merged read like any other.
	cat_ -c 5 m head+1000.. >"$HS_T/out5"
	sed -n '1001,1005p' "$HS_T/in" | cmp - "$HS_T/out5"
	cat_ m tail-3.. | cmp - <(tail -n 3 "$HS_T/in")
}

@test "epochs: hs-serve killed and restarted; the read crosses the recovered epoch, exit 0" {
	seq -f 'x%.0f' 1 50000 >"$HS_T/x1"
	timeout 60 "$HS_BIN/hs-append" -c ep "$HS_T/x1" >/dev/null
	hs_daemon_kill9 serve
	HS_READ_STALL_MS=2000 serve_start --peer "unix:$HS_T/p1.sock" \
		--peer "unix:$HS_T/p2.sock" --peer "unix:$HS_T/p3.sock" --replication 2
	seq -f 'y%.0f' 1 50000 >"$HS_T/x2"
	timeout 60 "$HS_BIN/hs-append" ep "$HS_T/x2" >/dev/null
	run --separate-stderr cat_ ep
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	cat "$HS_T/x1" "$HS_T/x2" | cmp - <(printf '%s\n' "$output")
	# With --gaps: one BRIDGE between the epochs, and still exit 0.
	run --separate-stderr cat_ --gaps --format json ep
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c '"gap":"BRIDGE"')" -ge 1 ]
	[ "$(printf '%s\n' "$output" | grep -c '"gap":"DATALOSS"')" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -vc '"gap"')" -eq 100000 ]
	# A read from inside the first epoch to inside the second.
	cat_ ep head+49990..head+50010 | cmp - <(cat "$HS_T/x1" "$HS_T/x2" | sed -n '49991,50010p')
	# The first stream is still whole.
	cat_ m | cmp - "$HS_T/in"
}

@test "kill -9 one of 3 peers: reads still complete, exit 0" {
	hs_daemon_kill9 p2
	run --separate-stderr cat_ m
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	cmp "$HS_T/in" <(printf '%s\n' "$output")
	# A follower from the head catches up through the two peers left.
	timeout 60 "$HS_BIN/hs-tail" --from head -c 200000 m >"$HS_T/tail.out"
	cmp "$HS_T/in" "$HS_T/tail.out"
}

@test "2 of 3 peers down with R=2: the read waits, then times out - no DATALOSS" {
	hs_daemon_kill9 p1
	local t0=$SECONDS
	run --separate-stderr cat_ m
	[ "$status" -eq 75 ]
	[[ "$stderr" != *DATALOSS* ]]
	[[ "$stderr" == *"timed out"* ]]
	[ $((SECONDS - t0)) -ge 2 ]
	# What it printed before is a prefix of the stream, in order.
	printf '%s\n' "$output" | grep -c . >"$HS_T/n" || true
	head -n "$(cat "$HS_T/n")" "$HS_T/in" | cmp - <(printf '%s\n' "$output" | grep .)
	# Peers back: the same read completes.
	peer_start p1 --node-id 1
	peer_start p2 --node-id 2
	sleep 0.5
	cat_ m | cmp - "$HS_T/in"
}

@test "2 of 3 peers killed during a read, one back within the stall: the read completes" {
	# The reader stalls on its output for 3 s with most of the stream
	# still on the peers; meanwhile two peers die and one comes back.
	( cat_ m | (sleep 3; cat) >"$HS_T/mid.out"; echo "${PIPESTATUS[0]}" >"$HS_T/mid.rc" ) 3>&- &
	sleep 0.5
	hs_daemon_kill9 p1
	hs_daemon_kill9 p2
	sleep 0.5
	peer_start p1 --node-id 1
	local deadline=$((SECONDS + 60))
	while ! [ -s "$HS_T/mid.rc" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	[ "$(cat "$HS_T/mid.rc")" = 0 ]
	cmp "$HS_T/in" "$HS_T/mid.out"
	peer_start p2 --node-id 2
}

@test "2 of 3 peers wiped (they answer, holding nothing): DATALOSS, exit 74, the rest intact" {
	local n3
	n3=$(held "unix:$HS_T/p3.sock")
	hs_daemon_kill9 p1
	hs_daemon_kill9 p2
	rm -rf "$HS_T/p1.d" "$HS_T/p2.d"
	peer_start p1 --node-id 1
	peer_start p2 --node-id 2
	sleep 0.5
	run --separate-stderr cat_ m
	[ "$status" -eq 74 ]
	[[ "$stderr" == *DATALOSS* ]]
	# Exactly what p3 holds was printed, in order.
	[ "${#lines[@]}" -eq "$n3" ] || { echo "printed ${#lines[@]}, p3 holds $n3"; echo "$stderr" | head; false; }
	printf '%s\n' "$output" | sort -c
	printf '%s\n' "$output" | comm -23 - "$HS_T/in" | wc -l | grep -qx 0
	# json --gaps shows the DATALOSS gap objects in place.
	run --separate-stderr cat_ --format json --gaps m
	[ "$status" -eq 74 ]
	[[ "$output" == *'"gap":"DATALOSS"'* ]]
}

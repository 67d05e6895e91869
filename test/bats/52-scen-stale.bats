#!/usr/bin/env bats
# 52-scen-stale: a peer that missed a recovery never ships its stale tail
# (issue 4, docs/replication.md §5 step 5 and §6).  The sequencer dies with
# its epoch E unclean; one peer then holds records of E past every
# acknowledged slot that no other peer has (planted with hs-ptool: what a
# STORE to that peer alone, the rest of its wave lost, leaves behind), and
# is down while the next sequencer seals the other N-R+1 peers and ends E
# before them with a BRIDGE.  The peer comes back: no read may deliver its
# stale records (the checker would call them `unexpected'), before or
# after the next recovery.  And a tail of R copies with a gap before it: the
# recovery keeps the copies, plugs the gap with a HOLE and ends the epoch
# with a BRIDGE, as every later reader sees.

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

@test "a peer down during recovery keeps a stale tail of the old epoch: never read" {
	cl_need_r 2
	cl_peers_start 4
	cl_serve_start a
	cl_append_start 1 "$(cl_addr a)" --inflight 8
	cl_wait_acks 400 15
	cl_append_stop
	log=$(timeout 10 "$HS_BIN/hs-admin" -a "$(cl_addr a)" stream info "$CL_STREAM" |
		awk '$1 == "log" { print $2 }')
	last=$(sed -n 's/^ok \(e[0-9]*n[0-9]*\) .*/\1/p' "$HS_T/w1" | tail -n 1)
	e=${last%n*} e=${e#e} m=${last#*n}
	echo "# log $log: last acknowledged e${e}n$m" >&3
	cl_kill9 a
	# Slots m+1..m+20 of epoch e on p4 only, sequencer-written (wave 1).
	seq 20 | sed 's/^/stale-/' >"$HS_T/stale"
	run ptool -a "$(cl_peer_addr 4)" store --log "$log" --epoch "$e" --esn-start $((m + 1)) \
		--count 20 --run 20 --payload-file "$HS_T/stale"
	echo "$output"
	[ "$status" -eq 0 ]
	cl_kill9 p4
	# B seals p1..p3 (exactly N-R+1) and ends epoch e at m.
	cl_serve_start b
	cl_append_start 2 "$(cl_addr b)" --inflight 8
	cl_wait_acks 200 20 2
	cl_peer_start 4
	cl_wait_acks 200 20 2
	cl_append_stop
	cl_check "$(cl_addr b)" 800
	# And once more after another recovery, with p4 up and sealed this time.
	cl_kill9 b
	cl_check_fresh c 800
	cl_stop c
}

@test "an unacknowledged tail with a gap on R peers: recovery keeps it, plugs a HOLE, ends with a BRIDGE" {
	cl_need_r 2
	cl_peers_start 4
	cl_serve_start a
	cl_append_start 1 "$(cl_addr a)" --inflight 8
	cl_wait_acks 400 15
	cl_append_stop
	log=$(timeout 10 "$HS_BIN/hs-admin" -a "$(cl_addr a)" stream info "$CL_STREAM" |
		awk '$1 == "log" { print $2 }')
	last=$(sed -n 's/^ok \(e[0-9]*n[0-9]*\) .*/\1/p' "$HS_T/w1" | tail -n 1)
	e=${last%n*} e=${e#e} m=${last#*n}
	cl_kill9 a
	# Slots m+2..m+5 of epoch e on p3 and p4 (R copies: what a wave that
	# was never acknowledged leaves), slot m+1 nowhere.  Writer 50's
	# history says their outcome is unknown, so reading them is allowed.
	for i in 2 3 4 5; do
		echo "w50-$i"
	done >"$HS_T/tail"
	for i in 2 3 4 5; do
		printf 'invoke w50-%s\ninfo w50-%s\n' "$i" "$i"
	done >"$HS_T/w50"
	for p in 3 4; do
		run ptool -a "$(cl_peer_addr "$p")" store --log "$log" --epoch "$e" \
			--esn-start $((m + 2)) --count 4 --run 4 --payload-file "$HS_T/tail"
		echo "$output"
		[ "$status" -eq 0 ]
	done
	cl_check_fresh b 400
	# The recovery's decision, as every reader sees it.
	grep -qx "e${e}n$((m + 1))..e${e}n$((m + 1)) HOLE" "$HS_T/r1"
	grep -qx "e${e}n$((m + 2)) DATA w50-2" "$HS_T/r1"
	grep -qx "e${e}n$((m + 5)) DATA w50-5" "$HS_T/r1"
	grep -q "^e${e}n$((m + 6))\.\..* BRIDGE\$" "$HS_T/r1"
	# The recovery wrote its copies to R peers: with p3 or p4 gone, the
	# same records (the readers above are partial readers now: any other
	# answer at those LSNs is `divergent').
	cl_kill9 p4
	cl_check "$(cl_addr b)" 400
	cl_peer_start 4
	cl_kill9 p3
	cl_check "$(cl_addr b)" 400
	cl_stop b
}

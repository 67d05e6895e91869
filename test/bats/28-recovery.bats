#!/usr/bin/env bats
# 28-recovery: epoch recovery (docs/replication.md §5).  First the peer side
# of CLEAN with hs-ptool: the clean record, the purge of the copies the
# recovery did not write, refusals, persistence.  Then end to end: three
# external hs-peer (node ids 1..3) under one hs-serve, appenders under load
# (test/tools/hs-wl), kill -9 of hs-serve mid-append, restart: the new
# epoch's recovery must leave every acknowledged record readable exactly
# once and in order (test/workload/check), and the epoch must advance; also
# with a peer down during the recovery, and with a recovery that cannot
# finish (its successor recovers both epochs).  Last, a deterministic digest
# (R = 1, so all three peers are sealed) with leftovers planted by hs-ptool:
# the exact decision (records, HOLEs, BRIDGE) and the CLEAN purge; and a
# peer that missed the recovery (no CLEAN) coming back with a stale tail,
# which reads through hs-serve must never show.

load helpers

WL=$BATS_TEST_DIRNAME/../workload
CHECK=$WL/check

setup() {
	hs_tmpdir
}

teardown() {
	[ -n "${HS_T:-}" ] || return 0
	local pid pids
	if [ -f "$HS_T/appenders" ]; then
		read -r -a pids <"$HS_T/appenders"
		for pid in "${pids[@]}"; do
			kill -TERM "$pid" 2>/dev/null || true
		done
		for pid in "${pids[@]}"; do
			wait "$pid" 2>/dev/null || true
		done
	fi
	hs_daemon_stop serve || true
	for n in p1 p2 p3; do
		hs_daemon_stop "$n" || true
	done
	hs_tmpdir_remove
}

peers3() {
	for i in 1 2 3; do
		peer_start "p$i" --node-id "$i" || return 1
	done
}

serve3() {
	serve_start --peer "unix:$HS_T/p1.sock" --peer "unix:$HS_T/p2.sock" \
		--peer "unix:$HS_T/p3.sock" -v
}

# serve3_nowait: as serve3 while a peer is down: hs-serve writes its ready
# file only once every peer is up, so start it as hs_daemon_start does but
# wait only for its socket (the appenders reconnect by themselves).
serve3_nowait() {
	local i
	rm -f "$HS_T/serve.ready" "$HS_T/serve.pid"
	"$HS_BIN/hs-serve" --data "$HS_T/serve.d" --listen "unix:$HS_T/s.sock" \
		--peer "unix:$HS_T/p1.sock" --peer "unix:$HS_T/p2.sock" \
		--peer "unix:$HS_T/p3.sock" -v --ready-file "$HS_T/serve.ready" \
		--pidfile "$HS_T/serve.pid" >>"$HS_T/serve.out" 2>>"$HS_T/serve.err" 3>&- &
	echo "$! $BASHPID" >"$HS_T/serve.bgpid"
	for i in $(seq 100); do
		[ -S "$HS_T/s.sock" ] && [ -s "$HS_T/serve.pid" ] && return 0
		sleep 0.05
	done
	return 1
}

# lsns NAME: the LSNs peer NAME holds of log 1 (epoch 1), one line.
lsns() {
	ptool -a "unix:$HS_T/$1.sock" read --log 1 --ignore-released --until e1n100 \
		--format lsn 2>/dev/null | grep -v '^GAP' | tr '\n' ' '
}

@test "CLEAN on a peer: records the epoch, purges what the recovery did not write" {
	peer_start p1
	a=unix:$HS_T/p1.sock
	# The dead sequencer's runs e1n1..5, 6..10, 11..15, then a recovery
	# (ballot 2) decided slots 4..7 (lng 3, end 7).
	ptool -a "$a" store --log 1 --epoch 1 --count 15 --run 5 --size 20
	ptool -a "$a" store --log 1 --epoch 1 --esn-start 4 --count 4 --run 4 --recovery 2 \
		--size 20
	run ptool -a "$a" clean --log 1 --epoch 1 --recovery 1 --lng e1n3 --end e1n7
	[ "$status" -eq 75 ] # ballot 1 < the seal the recovery write raised (2)
	ptool -a "$a" clean --log 1 --epoch 1 --recovery 2 --lng e1n3 --end e1n7
	# Left: 1..3 of the first run (cut at lng) and the recovery's 4..7;
	# the sequencer's 6..10 and everything after end + 1 are gone.
	[ "$(lsns p1)" = "e1n1 e1n2 e1n3 e1n4 e1n5 e1n6 e1n7 " ]
	ptool -a "$a" stats | grep -qx 'cleans 1'
	ptool -a "$a" stats | grep -qx 'clean_purged_runs 3'
	# The same CLEAN again is harmless; a peer holding nothing just records.
	ptool -a "$a" clean --log 1 --epoch 1 --recovery 2 --lng e1n3 --end e1n7
	ptool -a "$a" clean --log 9 --epoch 4 --recovery 5
	# An empty epoch (lng = end = 0) purges every copy.
	ptool -a "$a" store --log 2 --epoch 1 --count 3 --run 3 --size 20
	ptool -a "$a" clean --log 2 --epoch 1 --recovery 1
	[ -z "$(ptool -a "$a" read --log 2 --ignore-released --until e1n10 --format lsn \
		2>/dev/null | grep -v '^GAP')" ]
	# Persistent, and a newer seal refuses a late CLEAN.
	hs_daemon_stop p1
	peer_start p1
	[ "$(lsns p1)" = "e1n1 e1n2 e1n3 e1n4 e1n5 e1n6 e1n7 " ]
	ptool -a "$a" seal --log 1 --epoch 3 >/dev/null
	run ptool -a "$a" clean --log 1 --epoch 1 --recovery 2 --lng e1n3 --end e1n7
	[ "$status" -eq 75 ]
	run ptool -a "$a" raw --frame 28 --hex 00
	[ "$output" = closed ] # a malformed CLEAN closes the connection
	hs_daemon_stop p1
}

# run_crash R MODE: stream "rc" with replication R over the 3 peers, two
# appenders, kill -9 of hs-serve mid-run, restart, then a final read and the
# checker.  MODE:
#   plain     just that;
#   peerdown  p3 is killed with hs-serve and restarted 2 s later (recovery
#             seals and re-replicates with 2 of 3);
#   blocked   (R=1: f-majority 3) p3 is killed with hs-serve; the new
#             hs-serve activates epoch 2 but its recovery waits for p3; it is
#             killed too, p3 comes back, and the third hs-serve's epoch 3
#             recovers epochs 1 and 2.
run_crash() {
	local r=$1 mode=$2 s1=0 s2=0 e n c
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	[ -x "$HS_TOOLS/hs-wl" ] || skip "no hs-wl built"
	peers3
	serve3
	timeout 10 "$HS_BIN/hs-admin" stream create rc --replication "$r"
	timeout -k 5 40 "$WL/append-client" -t 2000 --stream rc --writer 1 --count 1000000 \
		--rate 400 >"$HS_T/w1" 2>"$HS_T/w1.err" 3>&- &
	a1=$!
	timeout -k 5 40 "$WL/append-client" -t 2000 --stream rc --writer 2 --count 1000000 \
		--rate 400 --batch 3 --inflight 8 >"$HS_T/w2" 2>"$HS_T/w2.err" 3>&- &
	a2=$!
	echo "$a1 $a2" >"$HS_T/appenders"
	sleep 1.5
	case $mode in
	plain)
		hs_daemon_kill9 serve
		serve3
		;;
	peerdown)
		hs_daemon_kill9 p3
		hs_daemon_kill9 serve
		rm -f "$HS_T/s.sock"
		serve3_nowait
		sleep 2
		peer_start p3 --node-id 3
		;;
	blocked)
		hs_daemon_kill9 p3
		hs_daemon_kill9 serve
		rm -f "$HS_T/s.sock"
		serve3_nowait
		sleep 1.5
		grep -q 'epoch 2 recovers 1 earlier' "$HS_T/serve.err"
		hs_daemon_kill9 serve
		rm -f "$HS_T/s.sock"
		serve3_nowait
		sleep 0.5
		peer_start p3 --node-id 3
		;;
	esac
	sleep 2
	kill -TERM "$a1" "$a2"
	wait "$a1" || s1=$?
	wait "$a2" || s2=$?
	rm -f "$HS_T/appenders"
	cat "$HS_T/w1.err" "$HS_T/w2.err"
	[ "$s1" -eq 0 ] && [ "$s2" -eq 0 ]
	grep -h 'recover\|decided' "$HS_T/serve.err" | sed 's/^/# /' >&3 || true
	HS_WL_TIMEOUT=30 "$WL/read-client" rc >"$HS_T/r1"
	run timeout 60 "$CHECK" -w "$HS_T/w1" -w "$HS_T/w2" -r "$HS_T/r1"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "# $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["stats"])' "$output")" >&3
	# Acks in two epochs or more, and plenty of them.
	for w in w1 w2; do
		[ "$(sed -n 's/^ok e\([0-9]*\)n.*/\1/p' "$HS_T/$w" | sort -u | wc -l)" -ge 2 ]
		[ "$(grep -c '^ok ' "$HS_T/$w")" -ge 300 ]
	done
	# The epoch advanced (past the blocked one's too).
	e=$(timeout 10 "$HS_BIN/hs-admin" stream info rc | sed -n 's/^tail *e\([0-9]*\)n.*/\1/p')
	[ "$e" -ge 2 ]
	[ "$mode" != blocked ] || [ "$e" -ge 3 ]
	[ "$mode" != blocked ] || grep -q 'epoch 3 recovers 2 earlier' "$HS_T/serve.err"
	# The recovery CLEANed the peers it could reach.
	n=0
	for i in 1 2 3; do
		c=$(ptool -a "unix:$HS_T/p$i.sock" stats | sed -n 's/^cleans //p')
		n=$((n + c))
	done
	[ "$n" -ge 2 ]
	hs_daemon_stop serve
	for i in 1 2 3; do
		hs_daemon_stop "p$i"
	done
}

@test "recovery: R=2 over 3 peers, kill -9 of hs-serve under load; every ack read once, in order" {
	run_crash 2 plain
}

@test "recovery: R=3 over 3 peers, kill -9 of hs-serve under load" {
	run_crash 3 plain
}

@test "recovery: R=2, one peer dies with hs-serve; recovery with the other two" {
	run_crash 2 peerdown
}

@test "recovery: R=1 (f-majority 3) blocked on a dead peer, hs-serve killed again; the next epoch recovers both" {
	run_crash 1 blocked
}

@test "recovery: holes plugged, unacknowledged leftovers decided, stale copies purged" {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	peers3
	serve3
	# R=1 over 3 peers: the recovery seals all three (f = 3), so its
	# digest, and thus its decision, is deterministic.
	timeout 10 "$HS_BIN/hs-admin" stream create h --replication 1
	seq 1 4 | timeout 10 "$HS_BIN/hs-append" h
	log=$(timeout 10 "$HS_BIN/hs-admin" stream info h | sed -n 's/^log *//p')
	hs_daemon_kill9 serve
	# What a dead sequencer may leave behind, unacknowledged: slot 10 on
	# p1, slots 12..13 on p2, nothing of 5..9 and 11 anywhere.
	ptool -a "unix:$HS_T/p1.sock" store --log "$log" --epoch 1 --esn-start 10 --count 1 \
		--run 1 --size 12 >/dev/null
	ptool -a "unix:$HS_T/p2.sock" store --log "$log" --epoch 1 --esn-start 12 --count 2 \
		--run 2 --size 12 >/dev/null
	serve3
	seq 5 6 | timeout 10 "$HS_BIN/hs-append" h
	timeout 10 "$HS_BIN/hs-cat" h --gaps --format json >"$HS_T/cat.json"
	python3 -c '
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    print(o["gap"] + " " + o["lo"] + " " + o["hi"] if "gap" in o else o["lsn"] + " " + o["data"])
' "$HS_T/cat.json" >"$HS_T/cat.txt"
	cat "$HS_T/cat.txt"
	# Every slot after the LNG that some sealed peer held is kept (the
	# highest-precedence copy), the slots between are HOLEs, the epoch
	# ends with a BRIDGE after the last kept slot.
	diff - "$HS_T/cat.txt" <<-EOF
	e1n1 1
	e1n2 2
	e1n3 3
	e1n4 4
	HOLE e1n5 e1n9
	e1n10 e1n10:mnopqr
	HOLE e1n11 e1n11
	e1n12 e1n12:opqrst
	e1n13 e1n13:pqrstu
	BRIDGE e1n14 e1n4294967295
	e2n1 5
	e2n2 6
	EOF
	grep -q 'epoch 1 decided: lng 0, end 13, 5 ranges' "$HS_T/serve.err"
	# The recovery wrote epoch 1 to one peer; CLEAN purged the others'
	# copies it did not write, so epoch 1 is on exactly one peer now.
	n=0
	for i in 1 2 3; do
		c=$(ptool -a "unix:$HS_T/p$i.sock" read --log "$log" --ignore-released \
			--until e1n20 --format lsn 2>/dev/null | grep -vc '^GAP' || true)
		[ "$c" -eq 0 ] || [ "$c" -eq 14 ]
		[ "$c" -eq 0 ] || n=$((n + 1))
	done
	[ "$n" -eq 1 ]
	hs_daemon_stop serve
	for i in 1 2 3; do
		hs_daemon_stop "p$i"
	done
}

@test "recovery: a peer that missed the recovery comes back with a stale tail; reads never show it" {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	peers3
	serve3
	timeout 10 "$HS_BIN/hs-admin" stream create st --replication 2
	seq 1 4 | timeout 10 "$HS_BIN/hs-append" st
	log=$(timeout 10 "$HS_BIN/hs-admin" stream info st | sed -n 's/^log *//p')
	hs_daemon_kill9 serve
	# p3 holds an unacknowledged tail e1n10..12 and is down while the new
	# hs-serve recovers epoch 1 with p1 and p2 (f = 3 - 2 + 1 = 2).
	ptool -a "unix:$HS_T/p3.sock" store --log "$log" --epoch 1 --esn-start 10 --count 3 \
		--run 3 --size 12 >/dev/null
	hs_daemon_stop p3
	rm -f "$HS_T/s.sock"
	serve3_nowait
	# The first append activates epoch 2, which recovers epoch 1.
	seq 5 6 | timeout 10 "$HS_BIN/hs-append" st
	grep -q 'epoch 1 decided: lng [0-9]*, end 4,' "$HS_T/serve.err"
	peer_start p3 --node-id 3
	# hs-serve writes its ready file once every peer is up: p3 is in the
	# read below.
	for i in $(seq 100); do
		[ -s "$HS_T/serve.ready" ] && break
		sleep 0.1
	done
	[ -s "$HS_T/serve.ready" ]
	# p3 never got the CLEAN: it still holds its tail ...
	[ "$(ptool -a "unix:$HS_T/p3.sock" read --log "$log" --ignore-released --from e1n10 \
		--until e1n12 --format lsn 2>/dev/null | grep -vc '^GAP')" -eq 3 ]
	# ... but a read merging all three peers follows the log record.
	run timeout 10 "$HS_BIN/hs-cat" st
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '%s\n' 1 2 3 4 5 6)" ]
	hs_daemon_stop serve
	for i in 1 2 3; do
		hs_daemon_stop "p$i"
	done
}

#!/usr/bin/env bats
# 13-peer-register: hs-peer as an acceptor of the CASPaxos metadata registers
# (DESIGN.md §5, libpaxos/register.h), driven by the real proposer in
# `hs-ptool reg` over real peer processes: linearizable increments from
# concurrent proposers, progress with a minority down, a clean refusal
# without a quorum, durable promises and accepts across kill -9, and
# flexible quorums.

load helpers

setup_file() {
	hs_tmpdir
	for d in a b c; do
		peer_start "$d"
	done
	PEERS="unix:$HS_T/a.sock,unix:$HS_T/b.sock,unix:$HS_T/c.sock"
	export PEERS
}

teardown_file() {
	local st=0
	for d in a b c d; do
		hs_daemon_stop "$d" || st=1
	done
	[ "$st" -eq 0 ] && hs_tmpdir_remove
	return "$st"
}

reg() {
	ptool reg --peers "$PEERS" "$@"
}

# counts FILE: "ACKED UNKNOWN" of an incr that exited 0 (all acknowledged) or
# 75 (some outcomes unknown: contention can cause that, see register.h).
counts() {
	local n=$1 st=$2 f=$3
	if [ "$st" -eq 0 ]; then
		echo "$n 0"
	elif [ "$st" -eq 75 ]; then
		sed -n 's/.*: \([0-9]*\) acknowledged, \([0-9]*\) with unknown outcome.*/\1 \2/p' "$f"
	else
		return 1
	fi
}

@test "two concurrent proposers: 200 + 200 increments give exactly 400" {
	timeout 60 "$HS_TOOLS/hs-ptool" reg --peers "$PEERS" --proposer-id 11 \
		--attempts 16 incr n --count 200 >"$HS_T/p1.out" 2>"$HS_T/p1.err" 3>&- &
	p1=$!
	timeout 60 "$HS_TOOLS/hs-ptool" reg --peers "$PEERS" --proposer-id 12 \
		--attempts 16 incr n --count 200 >"$HS_T/p2.out" 2>"$HS_T/p2.err" 3>&- &
	p2=$!
	s1=0 s2=0
	wait "$p1" || s1=$?
	wait "$p2" || s2=$?
	read -r a1 u1 < <(counts 200 "$s1" "$HS_T/p1.err") || { hs_show "$HS_T/p1.err"; false; }
	read -r a2 u2 < <(counts 200 "$s2" "$HS_T/p2.err") || { hs_show "$HS_T/p2.err"; false; }
	[ "$((a1 + u1))" -eq 200 ] && [ "$((a2 + u2))" -eq 200 ]
	run -0 reg read n
	# Every acknowledged increment is in, none twice; with no unknown
	# outcome (the usual case) that is exactly 400.
	echo "# acked $a1 + $a2, unknown $u1 + $u2, value $output" >&3
	[ "$output" -ge "$((a1 + a2))" ] && [ "$output" -le 400 ]
	if [ "$((u1 + u2))" -eq 0 ]; then
		[ "$output" = 400 ]
	fi
	# Later tests count from 400.
	if [ "$output" -lt 400 ]; then
		run -0 reg incr n --count "$((400 - output))"
		[ "$output" = 400 ]
	fi
	run -0 ptool -a "unix:$HS_T/a.sock" stats
	[[ "$output" == *"reg_entries "* ]]
}

@test "pipelined increments and cas" {
	run -0 reg incr m --count 100 --inflight 10
	[ "$output" = 100 ]
	run -0 reg cas m 100 hello
	[ "$output" = hello ]
	run -1 reg cas m 100 again
	[[ "$output" == *"the value is not '100'"* ]]
	run -0 reg read m
	[ "$output" = hello ]
	run -65 reg incr m
	[[ "$output" == *"not a decimal counter"* ]]
	run -0 reg read nothing-here
	[ "$output" = "" ]
}

@test "kill -9 of one peer: increments still succeed on the majority" {
	hs_daemon_kill9 c
	run -0 reg incr n --count 20
	[ "$output" = 420 ]
	run -0 reg read n
	[ "$output" = 420 ]
}

@test "a restarted peer catches up" {
	peer_start c
	run -0 reg incr n
	[ "$output" = 421 ]
	# Without a: the quorum {b, c} must still hold every acknowledged change.
	hs_daemon_kill9 a
	run -0 reg read n
	[ "$output" = 421 ]
	run -0 reg incr n --count 9
	[ "$output" = 430 ]
	peer_start a
	run -0 reg read n
	[ "$output" = 430 ]
}

@test "two peers down: incr fails in bounded time, nothing is invented" {
	run -0 reg read n
	v0=$output
	hs_daemon_kill9 a
	hs_daemon_kill9 b
	start=$SECONDS
	run reg --phase-timeout 200ms incr n --count 3
	[ "$((SECONDS - start))" -le 20 ]
	[ "$status" -eq 69 ] || [ "$status" -eq 75 ]
	[[ "$output" == *"no quorum of acceptors"* ]] || [[ "$output" == *"with unknown outcome"* ]]
	[[ "$output" == *"(0 acknowledged, "* ]] || [[ "$output" == *": 0 acknowledged, "* ]]
	unknown=$(echo "$output" | sed -n 's/.* \([0-9]*\) with unknown outcome.*/\1/p')
	[ -n "$unknown" ]
	peer_start a
	peer_start b
	run -0 reg read n
	[ "$output" -ge "$v0" ] && [ "$output" -le "$((v0 + unknown))" ]
	run -0 reg incr n
	[ "$output" -ge "$((v0 + 1))" ] && [ "$output" -le "$((v0 + 1 + unknown))" ]
	# Later tests count from a known value again.
	run -0 reg cas n "$output" 1000
	[ "$output" = 1000 ]
}

@test "kill -9 of every peer right after an acknowledged increment keeps it" {
	for i in 1 2 3; do
		run -0 reg incr n
		v=$output
		for d in a b c; do
			hs_daemon_kill9 "$d"
		done
		for d in a b c; do
			peer_start "$d"
		done
		run -0 reg read n
		[ "$output" = "$v" ]
	done
}

@test "flexible quorums: 4 peers, q1 3 q2 2 works with one down; q1 2 q2 2 is refused" {
	peer_start d
	P4="$PEERS,unix:$HS_T/d.sock"
	run -0 ptool reg --peers "$P4" --q1 3 --q2 2 incr f --count 5
	[ "$output" = 5 ]
	hs_daemon_kill9 d
	run -0 ptool reg --peers "$P4" --q1 3 --q2 2 incr f --count 5
	[ "$output" = 10 ]
	hs_daemon_kill9 a
	# Phase 1 now lacks its 3 answers among the 2 left.
	run -69 ptool reg --peers "$P4" --q1 3 --q2 2 --phase-timeout 100ms read f
	peer_start a
	run -0 ptool reg --peers "$P4" --q1 3 --q2 2 read f
	[ "$output" = 10 ]
	run -78 ptool reg --peers "$P4" --q1 2 --q2 2 incr f
	[[ "$output" == *"add up to more than 4 peers"* ]]
	run -64 ptool reg --peers "$P4" incr
	peer_start d
	run -0 ptool reg --peers "$P4" read f
	[ "$output" = 10 ]
}

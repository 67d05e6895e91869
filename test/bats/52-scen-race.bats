#!/usr/bin/env bats
# 52-scen-race: two recoveries racing (issue 4, docs/replication.md §5, §7).
# The sequencer is killed (-9) under load, leaving its epoch unclean; two
# new hs-serve on the same peers get an append at the same moment, so both
# try to take the stream over: the register lets one, the other redirects
# its clients there (twice: the second time with the loser's state to sort
# out too).  Then two recoveries really at once: the first new sequencer is
# paused (SIGSTOP) during its recovery, so the second one's probe goes
# unanswered and it takes over and recovers the same epochs; the first
# wakes mid-recovery and must give up.  Whatever wins, the final reads
# (through a fresh hs-serve) hold every acknowledged record exactly once.
# Then reads through either of two hs-serve (the one that lost the stream
# must not serve a stale prefix as the whole stream).

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

@test "two hs-serve recovering the same stream at once: one wins, nothing lost" {
	cl_need_r 2 1
	cl_peers_start 4
	cl_serve_start a
	cl_append_start 1 "$(cl_addr a)" --inflight 8
	cl_append_start 2 "$(cl_addr a)" --batch 4 --inflight 8
	cl_wait_acks 600 15
	cl_kill9 a
	cl_append_stop
	w=3
	for round in 1 2; do
		# Both idle until the appenders start together: both try to
		# take the dead owner's place at once; the register lets one.
		cl_serve_start "b$round"
		cl_serve_start "c$round"
		cl_append_start "$w" "$(cl_addr "b$round")" --inflight 8
		cl_append_start "$((w + 1))" "$(cl_addr "c$round")" --inflight 8
		cl_wait_acks 200 25 "$w" "$((w + 1))"
		sleep 1
		echo "# round $round: b acked $(cl_ok_lines "$w") (epochs $(cl_epochs "$w")), c acked $(cl_ok_lines $((w + 1))) (epochs $(cl_epochs $((w + 1))))" >&3
		cl_kill9 "b$round"
		cl_kill9 "c$round"
		cl_append_stop
		w=$((w + 2))
	done
	# Two recoveries really running at once: b3 takes the stream over and
	# is paused 0-90 ms into its recovery; c3's probe of b3 goes unanswered,
	# so c3 takes over too and recovers the same epochs (and b3's); then b3
	# wakes in the middle of its own recovery.
	cl_serve_start b3
	cl_serve_start c3
	cl_append_start 7 "$(cl_addr b3)" --inflight 8
	sleep "0.0$((RANDOM % 10))"
	cl_pause b3
	cl_append_start 8 "$(cl_addr c3)" --inflight 8
	cl_wait_acks 100 25 8
	cl_resume b3
	cl_wait_acks 200 25 7 8
	echo "# round 3: b acked $(cl_ok_lines 7) (epochs $(cl_epochs 7)), c acked $(cl_ok_lines 8) (epochs $(cl_epochs 8))" >&3
	cl_append_stop
	cl_stop b3
	cl_stop c3
	cl_check_fresh d 1000
	cl_stop d
}

@test "two hs-serve on the same peers: a read through either sees every acknowledged record" {
	# Before redirects (docs/replication.md §7) a read through the hs-serve
	# that lost the stream ended at its own last epoch, exit 0, the newer
	# epochs missing (checker: `lost'); now it is sent to the sequencer.
	cl_need_r 2 1
	cl_peers_start 4
	cl_serve_start a
	cl_serve_start b
	cl_append_start 1 "$(cl_addr a)" --inflight 8
	cl_wait_acks 300 15
	cl_append_start 2 "$(cl_addr b)" --inflight 8
	cl_wait_acks 300 15
	cl_append_stop
	# Reads through A and through B (redirected to the sequencer), then
	# more appends through A and a read through B.
	cl_check "$(cl_addr a)" 600
	cl_append_start 3 "$(cl_addr a)" --inflight 8
	cl_wait_acks 100 15
	cl_append_stop
	cl_check "$(cl_addr b)" 700
	cl_stop a
	cl_stop b
}

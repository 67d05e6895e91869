#!/usr/bin/env bats
# 52-scen-seq-kill: kill -9 the sequencer (hs-serve) under load, twice, and
# restart it on the same peers (issue 4, DESIGN.md §10).  Each restart takes
# a new epoch, seals and recovers the one it killed; the appenders reconnect
# by themselves, and the final reads hold every acknowledged record, none of
# the definitely failed ones, and no silent skip across the epochs; then a
# clean stop (SIGTERM) under load and a restart.  Also: a restart while a
# peer is down, and kills during the restarted sequencer's recovery.  Runs at
# R=2 over 4 peers, or R=1 while hs-serve refuses R>1.

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

@test "kill -9 the sequencer under load, restart it (twice, then SIGTERM): nothing lost" {
	cl_need_r 2 1
	cl_peers_start 4
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_append_start 2 "$(cl_addr s)" --batch 4 --inflight 8
	cl_wait_acks 500 15
	for round in 1 2; do
		cl_kill9 s
		t0=$(date +%s%N)
		cl_serve_start s
		cl_wait_acks 1 15
		echo "# round $round: first ack $((($(date +%s%N) - t0) / 1000000)) ms after the restart began" >&3
		cl_wait_acks 400 15
	done
	# And a clean stop under load (SIGTERM: finish what is in flight, exit
	# 0), restart.
	cl_stop s
	cl_serve_start s
	cl_wait_acks 300 15
	cl_append_stop
	# Both writers got acknowledgements in four epochs at least.
	[ "$(cl_epochs 1)" -ge 4 ]
	[ "$(cl_epochs 2)" -ge 4 ]
	cl_check "$(cl_addr s)" 1600
	cl_stop s
}

@test "kill -9 the sequencer while a peer is down (R=2 of 4): it restarts and serves" {
	# At R=1 the first --peer holds every record: hs-serve needs it.
	cl_need_r 2
	cl_peers_start 4
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_wait_acks 300 15
	cl_kill9 p4
	cl_wait_acks 200 20
	cl_kill9 s
	# 3 of 4 peers up are enough to take a new epoch and recover (seal
	# N-R+1 = 3), and hs-serve says it serves (its ready file: a
	# supervisor waits for it).
	cl_serve_start s
	cl_wait_acks 300 20
	cl_append_stop
	cl_check "$(cl_addr s)" 800
	cl_peer_start 4
	cl_check "$(cl_addr s)" 800
	cl_stop s
}

@test "kill -9 the sequencer during its own recoveries, 5 times in a row: nothing lost" {
	cl_need_r 2 1
	cl_peers_start 4
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_append_start 2 "$(cl_addr s)" --batch 4 --inflight 8
	cl_wait_acks 500 15
	# Each incarnation gets an append at once (writer 10+i: the appenders'
	# reconnect backoff would come late) and dies 0-90 ms later: during its
	# seal, digest or re-replication of the epochs before it, leaving
	# recovery copies of several ballots for the next one to sort out.
	for i in 1 2 3 4 5; do
		cl_kill9 s
		cl_serve_start s
		HS_ADDR=$(cl_addr s) timeout -k 2 10 "$CL_WL/append-client" -t 3000 \
			--stream "$CL_STREAM" --writer $((10 + i)) --count 1 \
			>"$HS_T/w$((10 + i))" 2>/dev/null 3>&- &
		sleep "0.0$((RANDOM % 10))"
		cl_kill9 s
		wait $! || true
		cl_serve_start s
		sleep 0.3
	done
	cl_kill9 s
	cl_serve_start s
	cl_wait_acks 400 20
	cl_append_stop
	cl_check "$(cl_addr s)" 900
	cl_stop s
}

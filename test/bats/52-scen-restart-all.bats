#!/usr/bin/env bats
# 52-scen-restart-all: kill -9 every process of the cluster at once (4 peers
# and the sequencer: a power cut), start them all again (issue 4, DESIGN.md
# §10).  A read straight after the restart, before any new append, already
# holds every acknowledged record; then appends resume and the final reads
# hold everything.  R=2 over 4 peers, or R=1 while hs-serve refuses R>1.

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

@test "kill -9 everything at once, start everything: nothing acknowledged is lost" {
	cl_need_r 2 1
	cl_peers_start 4
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_append_start 2 "$(cl_addr s)" --batch 4 --inflight 8
	cl_wait_acks 800 15
	pids=()
	for d in s p1 p2 p3 p4; do
		pids+=("$(hs_daemon_pid "$d")")
	done
	kill -KILL "${pids[@]}"
	for d in s p1 p2 p3 p4; do
		hs_daemon_wait_exit "$d" 10
	done
	cl_append_stop
	cl_peers_start 4
	cl_serve_start s
	# A read-only restart: the stream is read before anything is appended.
	cl_check "$(cl_addr s)" 800
	cl_append_start 3 "$(cl_addr s)" --inflight 8
	cl_wait_acks 300 15 3
	cl_append_stop
	cl_check "$(cl_addr s)" 1100
	cl_stop s
}

#!/usr/bin/env bats
# 52-scen-peer-kill: kill -9 one peer under load, R=2 over 4 peers (issue 4,
# DESIGN.md §10).  Appends keep flowing on the other peers (new waves, new
# copysets), a read merges the nodeset while the peer is still down, and
# after it comes back (it missed records, it holds records of the waves it
# took part in) the final reads hold every acknowledged record exactly once,
# also with another peer paused (SIGSTOP: silent, not gone).

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

@test "kill -9 one peer of 4 under load (R=2): appends go on, reads merge, nothing lost" {
	cl_need_r 2
	cl_peers_start 4
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)"
	cl_append_start 2 "$(cl_addr s)" --batch 3 --inflight 8
	cl_wait_acks 600 15
	# A member of the current copyset: its runs in flight need a new wave.
	read -r a _ <<<"$(cl_busy_order)"
	echo "# kill -9 p$a" >&3
	cl_kill9 "p$a"
	# Any R of the nodeset keep appends going.
	cl_wait_acks 600 20
	read -r b _ <<<"$(cl_busy_order)"
	echo "# kill -9 p$b" >&3
	cl_kill9 "p$b"
	cl_wait_acks 300 20
	cl_peer_start "$b"
	cl_wait_acks 300 20
	cl_append_stop
	# Read with p$a still down: the merge finds every record on its other
	# copy.
	cl_check "$(cl_addr s)" 1500
	cl_peer_start "$a"
	cl_check "$(cl_addr s)" 1500
	# A silent peer (SIGSTOP) must not hold a read up either: every record
	# has a copy on another peer.
	cl_pause "p$b"
	cl_check "$(cl_addr s)" 1500
	cl_resume "p$b"
	cl_stop s
}

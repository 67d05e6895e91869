#!/usr/bin/env bats
# 52-scen-partition: the sequencer cut off from peers (issue 4).  With
# exactly R peers reachable appends continue; with R-1 they stall and none
# is acknowledged; after healing they resume and the final reads hold every
# acknowledged record.  The members of the current copyset are cut first.
#
# First with network namespaces (TESTING.md "Faults"): every peer and the
# sequencer in a namespace of its own on a bridge, peers on TCP
# 10.77.0.I:7000, a cut is the peer's bridge port going down (packets
# dropped, connections silent, no reset).  Then the same on loopback with
# SIGSTOP of the cut peers, which also runs where namespaces are refused.

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

cut() {
	if [ -n "$CL_NS" ]; then cl_link_down "$1"; else cl_pause "p$1"; fi
}

heal() {
	if [ -n "$CL_NS" ]; then cl_link_up "$1"; else cl_resume "p$1"; fi
}

partition_run() {
	local i a0 a1
	cl_peers_start 4
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_append_start 2 "$(cl_addr s)" --batch 4 --inflight 8
	cl_wait_acks 500 15
	# The peers in the order they are cut: with R>1 the current copyset's
	# members first (their runs in flight need new waves); at R=1 the first
	# --peer holds every record, so it stays for last.
	if [ "$CL_R" -gt 1 ]; then
		read -r -a order <<<"$(cl_busy_order)"
	else
		order=(4 3 2 1)
	fi
	# Exactly R peers reachable: appends continue.
	for i in "${order[@]:0:$((4 - CL_R))}"; do
		cut "$i"
	done
	echo "# cut ${order[*]:0:$((4 - CL_R))}: R=$CL_R peers reachable" >&3
	cl_wait_acks 500 25
	# R-1 reachable: appends stall, nothing is acknowledged.  Acks whose
	# STOREDs were already on the way may land just after the cut.
	cut "${order[$((4 - CL_R))]}"
	sleep 1.5
	a0=$(cl_acks)
	sleep 4
	a1=$(cl_acks)
	echo "# cut ${order[$((4 - CL_R))]} too: acks $a0 -> $a1 in 4 s" >&3
	[ "$a1" -eq "$a0" ]
	for i in "${order[@]:0:$((5 - CL_R))}"; do
		heal "$i"
	done
	cl_wait_acks 400 30
	cl_append_stop
	cl_check "$(cl_addr s)" 1400
	cl_stop s
}

@test "partition (network namespaces): R peers reachable go on, R-1 stall, heal" {
	cl_need_r 2 1
	command -v ip >/dev/null || skip "no ip(8)"
	cl_netns_setup 4 || skip "ip netns add is refused here: see the SIGSTOP variant"
	partition_run
}

@test "partition emulated by SIGSTOP of peers: R peers reachable go on, R-1 stall, heal" {
	cl_need_r 2 1
	partition_run
}
